//! The kinds of schema object besides tables, and how the server tells their names apart.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    View,
    Procedure,
    Function,
    Trigger,
    Event,
}

impl ObjectKind {
    pub fn label(self) -> &'static str {
        match self {
            ObjectKind::View => "view",
            ObjectKind::Procedure => "procedure",
            ObjectKind::Function => "function",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Event => "event",
        }
    }
}

/// Whether the server compares names of this kind (a label of [`ObjectKind::label`], or
/// "table") ignoring case: events, procedures and functions do; tables, views and triggers
/// follow the file system on Linux, and do not.
fn name_ignores_case(kind: &str) -> bool {
    matches!(kind, "event" | "procedure" | "function")
}

/// An object's kind and name as the server tells objects apart (see [`name_ignores_case`]).
pub fn object_key(kind: &str, name: &str) -> (String, String) {
    let name = if name_ignores_case(kind) {
        name.to_lowercase()
    } else {
        name.to_string()
    };
    (kind.to_string(), name)
}
