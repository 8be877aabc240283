//! The DEFINER clause of the views, routines, triggers and events a backup holds: reading it
//! (whose accounts must the restoring user create objects for?) and removing it (`restore
//! --definer current`, where the server then makes the restoring user the definer).
//! The statements are read by [`crate::mysql::definition`].

use serde::{Deserialize, Serialize};

/// What to do with the objects' DEFINER clauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefinerMode {
    /// As in the backup: needs SUPER or SET USER / SET_USER_ID for other definers.
    #[default]
    Keep,
    /// Created as the restoring user (what a fresh RDS instance's master user can do).
    Current,
}

impl std::str::FromStr for DefinerMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "keep" => Ok(DefinerMode::Keep),
            "current" => Ok(DefinerMode::Current),
            other => Err(format!("{other:?} is not keep or current")),
        }
    }
}

pub use crate::mysql::definition::{definer_of, normalise_account, without_definer};
