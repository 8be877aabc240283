//! The strategy document's recovery tiers: which tables each holds and how much data it may lose.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub name: String,
    pub rpo_minutes: i64,
    pub tables: Vec<String>,
    /// File snapshot sources the tier holds too; `*` is every source in the store.
    #[serde(default)]
    pub file_sources: Vec<String>,
}

/// In a tier's `file_sources`: every file source that has snapshots in the store.
pub const ALL_FILE_SOURCES: &str = "*";

impl Tier {
    pub fn rpo(&self) -> Duration {
        Duration::minutes(self.rpo_minutes)
    }
}

pub fn default_tiers() -> Vec<Tier> {
    let tier = |name: &str, rpo_minutes: i64, tables: &[&str]| Tier {
        name: name.into(),
        rpo_minutes,
        tables: tables.iter().map(|t| t.to_string()).collect(),
        // Uploaded documents are Tier 3 (daily), with the tables that index them.
        file_sources: if rpo_minutes == 1440 {
            vec![ALL_FILE_SOURCES.to_string()]
        } else {
            Vec::new()
        },
    };
    vec![
        tier(
            "Tier 1",
            60,
            &[
                "student_grade_records",
                "enrolments",
                "transcripts",
                "extensions_deferrals",
                "assessment_components",
            ],
        ),
        tier(
            "Tier 2",
            240,
            &["students", "users", "programmes", "modules", "email_logs"],
        ),
        tier(
            "Tier 3",
            1440,
            &[
                "email_templates",
                "notification_preferences",
                "system_logs",
                "file_uploads",
            ],
        ),
    ]
}

/// Tiers from JSON (`[{"name": …, "rpo_minutes": …, "tables": […]}]`), or the defaults.
pub fn parse_tiers(json: Option<&str>) -> Result<Vec<Tier>> {
    match json.map(str::trim).filter(|j| !j.is_empty()) {
        None => Ok(default_tiers()),
        Some(text) => {
            let tiers: Vec<Tier> = serde_json::from_str(text).map_err(|e| Error::Config {
                variable: "MONITOR_TIERS".into(),
                reason: format!(
                    "is not a JSON list of {{\"name\", \"rpo_minutes\", \"tables\", \"file_sources\"}}: {e}"
                ),
            })?;
            if tiers.is_empty()
                || tiers.iter().any(|t| {
                    // At most 100 years: a larger number is a typo, and would overflow.
                    t.rpo_minutes <= 0
                        || t.rpo_minutes > 100 * 366 * 24 * 60
                        || (t.tables.is_empty() && t.file_sources.is_empty())
                })
            {
                return Err(Error::Config {
                    variable: "MONITOR_TIERS".into(),
                    reason: "must list at least one tier, each with a positive rpo_minutes (at most 100 years) and some tables or file_sources".into(),
                });
            }
            Ok(tiers)
        }
    }
}
