//! Which tables an incremental tracks, and by which change-tracking column.

use crate::error::{Error, Result};
use crate::mysql::schema::Table;
use crate::mysql::values::ColumnKind;

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

/// The column each table's changes are tracked by: `default` unless `per_table` names another.
/// A full dump keeps key states only for tables that have theirs, the tables an incremental
/// can track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingColumns {
    default: String,
    per_table: Vec<(String, String)>,
}

impl Default for TrackingColumns {
    fn default() -> Self {
        TrackingColumns {
            default: DEFAULT_TRACKING_COLUMN.into(),
            per_table: Vec::new(),
        }
    }
}

impl TrackingColumns {
    /// `tracking`: the default change-tracking column; `per_table`: `table=column,…` exceptions.
    pub fn parse(tracking: Option<&str>, per_table: Option<&str>) -> Result<Self> {
        let default = tracking
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_TRACKING_COLUMN)
            .to_string();
        let mut columns = TrackingColumns {
            default,
            per_table: Vec::new(),
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
            columns
                .per_table
                .push((table.trim().to_string(), column.trim().to_string()));
        }
        Ok(columns)
    }

    pub fn column_for(&self, table: &str) -> &str {
        self.per_table
            .iter()
            .rev()
            .find(|(t, _)| t == table)
            .map_or(self.default.as_str(), |(_, c)| c.as_str())
    }
}

/// Where `column` is among `table`'s dumped columns, if it can track changes (a DATETIME,
/// TIMESTAMP or DATE); otherwise why not.
pub fn tracking_index(table: &Table, column: &str) -> std::result::Result<usize, String> {
    if table.system_versioned {
        // Its history rows repeat the primary key: one key, one row does not hold.
        return Err("it is system-versioned (its history rows share their keys)".into());
    }
    let index = table
        .columns
        .iter()
        .position(|c| c.name == column)
        .ok_or_else(|| format!("it has no change-tracking column `{column}`"))?;
    if matches!(
        table.columns[index].kind,
        ColumnKind::DateTime | ColumnKind::Date
    ) {
        Ok(index)
    } else {
        Err(format!(
            "its tracking column `{column}` is not a DATETIME or TIMESTAMP"
        ))
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
        let columns = TrackingColumns::parse(tracking, per_table)?;
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
        if let Some((table, column)) = columns
            .per_table
            .iter()
            .find(|(table, _)| !names.contains(table))
        {
            return Err(Error::InvalidValue {
                what: "per-table tracking column",
                value: format!("{table}={column}"),
                expected: "a table that is in the incremental's table list".into(),
            });
        }
        Ok(Scope {
            tables: names
                .into_iter()
                .map(|name| ScopedTable {
                    tracking_column: columns.column_for(&name).to_string(),
                    name,
                })
                .collect(),
        })
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

    #[test]
    fn tracking_columns_name_each_tables_column() {
        let columns = TrackingColumns::parse(Some("changed"), Some("logs=created_at")).unwrap();
        assert_eq!(columns.column_for("logs"), "created_at");
        assert_eq!(columns.column_for("grades"), "changed");
        assert_eq!(TrackingColumns::default().column_for("x"), "updated_at");
        let error = TrackingColumns::parse(None, Some("logs"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("logs") && error.contains("table=column"),
            "{error}"
        );
    }
}
