//! Which tables an incremental tracks, and by which change-tracking column.

use crate::error::{Error, Result};

/// The strategy document's Tier 1 (critical academic records, RPO 1 h) and Tier 2 (student
/// information, RPO 4 h) tables: a daily full backup alone cannot meet either objective, and its
/// hourly script already tracks students, users, programmes and modules.
pub const DEFAULT_TABLES: &[&str] = &[
    "student_grade_records",
    "enrolments",
    "transcripts",
    "extensions_deferrals",
    "assessment_components",
    "students",
    "users",
    "programmes",
    "modules",
    "email_logs",
];
pub const DEFAULT_TRACKING_COLUMN: &str = "updated_at";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedTable {
    pub name: String,
    pub tracking_column: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub tables: Vec<ScopedTable>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            tables: DEFAULT_TABLES
                .iter()
                .map(|t| ScopedTable {
                    name: t.to_string(),
                    tracking_column: DEFAULT_TRACKING_COLUMN.into(),
                })
                .collect(),
        }
    }
}

impl Scope {
    /// `tables`: comma-separated names (default: the Tier 1 tables); `tracking`: the default
    /// change-tracking column; `per_table`: `table=column,…` exceptions.
    pub fn parse(
        tables: Option<&str>,
        tracking: Option<&str>,
        per_table: Option<&str>,
    ) -> Result<Scope> {
        let tracking = tracking
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_TRACKING_COLUMN);
        let names: Vec<String> = match tables {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            None => DEFAULT_TABLES.iter().map(|t| t.to_string()).collect(),
        };
        if names.is_empty() {
            return Err(Error::InvalidValue {
                what: "incremental table list",
                value: tables.unwrap_or_default().to_string(),
                expected: "one or more comma-separated table names".into(),
            });
        }
        let mut scope = Scope {
            tables: names
                .into_iter()
                .map(|name| ScopedTable {
                    name,
                    tracking_column: tracking.to_string(),
                })
                .collect(),
        };
        for pair in per_table
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let Some((table, column)) = pair
                .split_once('=')
                .filter(|(t, c)| !t.trim().is_empty() && !c.trim().is_empty())
            else {
                return Err(Error::InvalidValue {
                    what: "per-table tracking column",
                    value: pair.to_string(),
                    expected: "table=column".into(),
                });
            };
            let entry = scope
                .tables
                .iter_mut()
                .find(|t| t.name == table.trim())
                .ok_or_else(|| Error::InvalidValue {
                    what: "per-table tracking column",
                    value: pair.to_string(),
                    expected: "a table that is in the incremental's table list".into(),
                })?;
            entry.tracking_column = column.trim().to_string();
        }
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let scope = Scope::parse(None, None, None).unwrap();
        assert_eq!(scope.tables.len(), 10);
        let scope = Scope::parse(Some("a, b"), Some("changed"), Some("b=modified")).unwrap();
        assert_eq!(
            scope.tables[0],
            ScopedTable {
                name: "a".into(),
                tracking_column: "changed".into()
            }
        );
        assert_eq!(scope.tables[1].tracking_column, "modified");
        assert!(Scope::parse(Some("a"), None, Some("c=x"))
            .unwrap_err()
            .to_string()
            .contains("c=x"));
        assert!(Scope::parse(Some(" , "), None, None).is_err());
    }
}
