//! `binlog find`: the archived transactions that changed one table, so the operator can name
//! the one to stop before.

use chrono::{DateTime, Duration, TimeZone, Utc};
use mysql_async::Value;
use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{EventData, QueryEvent};
use mysql_common::binlog::row::BinlogRow;
use mysql_common::binlog::value::BinlogValue;
use mysql_common::binlog::EventStreamReader;
use serde::Serialize;

use super::events::{self, Edge, Frames, Role, Transactions};
use super::segment::{self, SegmentManifest};
use super::statement::{dialect_of, statement_table};
use crate::error::{Error, Result};
use crate::store::ObjectStore;

#[derive(Debug, Clone)]
pub struct FindOptions {
    pub table: String,
    pub database: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only rows whose column had this value (as text) before or after.
    pub where_column: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FoundTransaction {
    pub commit: Option<DateTime<Utc>>,
    pub gtid: Option<String>,
    /// Where the transaction starts: what `restore --before-position` takes.
    pub position: String,
    /// Rows inserted, updated and deleted (flat in JSON: `inserted`, `updated`, `deleted`).
    #[serde(flatten)]
    pub changes: super::segment::TableChanges,
    /// The statement, for DDL.
    pub statement: Option<String>,
    pub segment: String,
}

impl FoundTransaction {
    pub fn kind(&self) -> String {
        if let Some(statement) = &self.statement {
            return statement
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
                .to_ascii_uppercase();
        }
        let mut kinds = Vec::new();
        for (n, word) in [
            (self.changes.inserted, "INSERT"),
            (self.changes.updated, "UPDATE"),
            (self.changes.deleted, "DELETE"),
        ] {
            if n > 0 {
                kinds.push(word);
            }
        }
        kinds.join("+")
    }
}

pub fn parse_where(text: &str) -> Result<(String, String)> {
    text.split_once('=')
        .filter(|(c, _)| !c.trim().is_empty())
        .map(|(c, v)| (c.trim().to_string(), v.to_string()))
        .ok_or_else(|| Error::InvalidValue {
            what: "--where-column",
            value: text.to_string(),
            expected: "COLUMN=VALUE, e.g. student_id=1042".into(),
        })
}

pub async fn find(store: &dyn ObjectStore, options: &FindOptions) -> Result<Vec<FoundTransaction>> {
    store.check().await?;
    let database = match &options.database {
        Some(d) => d.clone(),
        None => crate::catalog::load(store)
            .await?
            .complete
            .first()
            .map(|e| e.database.clone())
            .ok_or_else(|| Error::NoBackups(store.to_string()))?,
    };
    let qualified = format!("{database}.{}", options.table);
    let after = options
        .from
        .map(|t| (t - Duration::hours(2)).format("%Y%m%dT%H%M%S").to_string())
        .unwrap_or_default();
    let mut found = Vec::new();
    for id in segment::list_sealed(store, &after).await? {
        let manifest = segment::read_manifest(store, &id).await?;
        let in_time = options
            .from
            .is_none_or(|f| manifest.last_commit.is_none_or(|c| c >= f))
            && options
                .to
                .is_none_or(|t| manifest.first_commit.is_none_or(|c| c <= t));
        if !in_time || (!manifest.tables.contains_key(&qualified) && manifest.ddl_statements == 0) {
            continue;
        }
        scan(store, &manifest, &database, options, &mut found).await?;
    }
    Ok(found)
}

async fn scan(
    store: &dyn ObjectStore,
    manifest: &SegmentManifest,
    database: &str,
    options: &FindOptions,
    found: &mut Vec<FoundTransaction>,
) -> Result<()> {
    let what = manifest.data_key();
    let decoded = segment::read_events(store, manifest).await?;
    let corrupt = |e: std::io::Error| Error::CorruptFile {
        file: what.clone(),
        detail: e.to_string(),
    };
    let mut frames = Frames::new(&decoded[..], &what)?;
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut transactions = Transactions::default();
    let mut current: Option<FoundTransaction> = None;
    let mut touched = false;
    while let Some(mut frame) = frames.next(&what)? {
        events::uncompressed_table_map(&mut frame);
        let Some(event) = reader.read(&frame[..]).map_err(corrupt)? else {
            break;
        };
        let role = events::role(&event)?;
        if role == Role::FormatDescription {
            continue;
        }
        let header = event.header();
        let (begin, _) = events::span(&event, &manifest.start.file);
        let edge = transactions.step(&role);
        if matches!(edge, Edge::Started { .. }) {
            touched = false;
            current = Some(FoundTransaction {
                commit: None,
                gtid: match &role {
                    Role::Start { gtid, .. } => gtid.clone(),
                    _ => None,
                },
                position: begin.to_string(),
                changes: Default::default(),
                statement: None,
                segment: manifest.segment_id.clone(),
            });
        }
        let Some(transaction) = current.as_mut() else {
            continue;
        };
        match role {
            Role::Rows => {
                if let Some(EventData::RowsEvent(rows)) = event.read_data().map_err(corrupt)? {
                    let Some(table) = reader.get_tme(rows.table_id()) else {
                        continue;
                    };
                    if table.database_name() != database || table.table_name() != options.table {
                        continue;
                    }
                    for image in rows.rows(table) {
                        let (before, after) = image.map_err(corrupt)?;
                        if let Some((column, value)) = &options.where_column {
                            let matches = |row: &Option<BinlogRow>| {
                                row.as_ref().is_some_and(|r| has_value(r, column, value))
                            };
                            if !matches(&before) && !matches(&after) {
                                continue;
                            }
                        }
                        touched = true;
                        transaction.changes.count(&rows, 1);
                    }
                }
            }
            Role::Statement if matches!(edge, Edge::Ended | Edge::Started { ended: true }) => {
                let query = event.read_event::<QueryEvent>().map_err(corrupt)?;
                let text = query.query();
                if query.schema() == database
                    && statement_table(&text, dialect_of(&query)).as_deref()
                        == Some(options.table.as_str())
                    && options.where_column.is_none()
                {
                    touched = true;
                    transaction.statement =
                        Some(text.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            _ => {}
        }
        if matches!(edge, Edge::Ended | Edge::Started { ended: true }) {
            let commit = Utc.timestamp_opt(i64::from(header.timestamp()), 0).single();
            if let Some(mut transaction) = current.take() {
                transaction.commit = commit;
                let in_time = options.from.is_none_or(|f| commit.is_some_and(|c| c >= f))
                    && options.to.is_none_or(|t| commit.is_some_and(|c| c <= t));
                if touched && in_time {
                    found.push(transaction);
                }
            }
        }
    }
    Ok(())
}

fn has_value(row: &BinlogRow, column: &str, value: &str) -> bool {
    let Some(index) = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str() == column)
    else {
        return false;
    };
    match row.as_ref(index) {
        Some(BinlogValue::Value(Value::Bytes(b))) => b.as_slice() == value.as_bytes(),
        Some(BinlogValue::Value(Value::Int(i))) => i.to_string() == value,
        Some(BinlogValue::Value(Value::UInt(u))) => u.to_string() == value,
        Some(BinlogValue::Value(Value::NULL)) => value.eq_ignore_ascii_case("NULL"),
        Some(BinlogValue::Value(other)) => other.as_sql(true).trim_matches('\'') == value,
        _ => false,
    }
}
