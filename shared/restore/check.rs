//! Proving a restore: recompute what the backup recorded and compare.

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::chain::ExpectedState;
use super::definer::DefinerMode;
use super::on_connections;
use super::progress::PROGRESS_TABLE;
use super::session::retrying;
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::manifest::object_key;
use crate::mysql::fingerprint::{Fingerprint, RowHash};
use crate::mysql::schema::{self, Table};
use crate::mysql::{self as db, quote_ident};

/// Recomputes row counts, fingerprints and definition hashes in the restored database and
/// compares them with the manifest.
pub async fn verify_restored(
    url: &DatabaseUrl,
    database: &str,
    manifest: &ExpectedState,
    jobs: usize,
    definer: DefinerMode,
) -> Result<()> {
    let mut conn = db::connect(url, Some(database)).await?;
    db::run_all(&mut conn, db::DUMP_SESSION).await?;
    let mut summaries = schema::list_tables(&mut conn, database).await?;
    // An unfinished restore's bookkeeping, not restored content (dropped once this passes).
    summaries.retain(|s| s.name != PROGRESS_TABLE);
    let mut tables = Vec::new();
    let mut views = Vec::new();
    for summary in &summaries {
        if summary.table_type == "VIEW" {
            views.push(summary.name.clone());
        } else {
            tables.push(schema::describe_table(&mut conn, database, summary).await?);
        }
    }
    let objects = schema::stored_objects(&mut conn, database, &views).await?;
    let _ = conn.disconnect().await;

    let mut problems = Vec::new();
    let restored: BTreeMap<&str, &Table> = tables.iter().map(|t| (t.name.as_str(), t)).collect();
    for expected in &manifest.tables {
        if manifest.unchecked.contains(&expected.name) {
            continue;
        }
        match restored.get(expected.name.as_str()) {
            None => problems.push(format!("table `{}` is missing", expected.name)),
            Some(table) if table.definition_sha256() != expected.definition_sha256 => problems
                .push(format!(
                    "table `{}` has a different definition",
                    expected.name
                )),
            Some(_) => {}
        }
    }
    for table in &tables {
        if !manifest.tables.iter().any(|t| t.name == table.name)
            && !manifest.unchecked.contains(&table.name)
        {
            problems.push(format!("table `{}` is not in the backup", table.name));
        }
    }
    // Created as the restoring user, objects are compared without their DEFINER clause.
    // Keyed as the server tells names apart; each keeps its name as written for messages.
    let expected_objects: BTreeMap<(String, String), (&str, Option<&str>)> = manifest
        .objects
        .iter()
        .map(|o| {
            let hash = match definer {
                DefinerMode::Keep => Some(o.definition_sha256.as_str()),
                DefinerMode::Current => o.definition_sha256_any_definer.as_deref(),
            };
            (object_key(o.kind.label(), &o.name), (o.name.as_str(), hash))
        })
        .collect();
    let hash_of = |o: &schema::StoredObject| match definer {
        DefinerMode::Keep => o.definition_sha256(),
        DefinerMode::Current => o.definition_sha256_any_definer(),
    };
    // An event restored into another database is created disabled: it also matches as the
    // enabled event it was.
    let actual_objects: BTreeMap<(String, String), (&str, String, Option<String>)> = objects
        .iter()
        .map(|o| {
            let enabled = o.enabled_event().map(|e| hash_of(&e));
            (
                object_key(o.kind.label(), &o.name),
                (o.name.as_str(), hash_of(o), enabled),
            )
        })
        .collect();
    let mut unchecked = 0;
    // What the replayed binlog made of an object: there or gone, as it left it.
    for ((kind, name), exists) in &manifest.replayed {
        let there = if kind == "table" {
            restored.contains_key(name.as_str())
        } else {
            actual_objects.contains_key(&object_key(kind, name))
        };
        match (exists, there) {
            (true, false) => problems.push(format!(
                "{kind} `{name}` is missing (a statement of the replayed binlog left it there)"
            )),
            (false, true) => problems.push(format!(
                "{kind} `{name}` is there, but a statement of the replayed binlog dropped it"
            )),
            _ => {}
        }
    }
    let replayed_keys: BTreeSet<(String, String)> = manifest
        .replayed
        .keys()
        .map(|(kind, name)| object_key(kind, name))
        .collect();
    let replayed = |kind: &str, name: &str| replayed_keys.contains(&object_key(kind, name));
    for (key, (name, hash)) in &expected_objects {
        let kind = &key.0;
        if replayed(kind, name) {
            continue;
        }
        let Some(hash) = hash else {
            // A backup older than the DEFINER-free hash: present is all that can be said.
            unchecked += usize::from(actual_objects.contains_key(key));
            if !actual_objects.contains_key(key) {
                problems.push(format!("{kind} `{name}` is missing"));
            }
            continue;
        };
        match actual_objects.get(key) {
            None => problems.push(format!("{kind} `{name}` is missing")),
            Some((_, actual, enabled)) if actual != hash && enabled.as_deref() != Some(*hash) => {
                problems.push(format!("{kind} `{name}` has a different definition"))
            }
            Some(_) => {}
        }
    }
    if unchecked > 0 {
        tracing::warn!(
            objects = unchecked,
            "the backup predates DEFINER-free definition hashes: these objects, created as the restoring user, were checked for presence only"
        );
    }
    for (key, (name, _, _)) in &actual_objects {
        let kind = &key.0;
        if !expected_objects.contains_key(key) && !replayed(kind, name) {
            problems.push(format!("{kind} `{name}` is not in the backup"));
        }
    }

    // Each table is hashed the way its backup hashed it.
    let to_scan: Vec<(Table, RowHash)> = tables
        .into_iter()
        .filter_map(|t| {
            let expected = manifest.tables.iter().find(|m| m.name == t.name)?;
            (!manifest.unchecked.contains(&t.name)).then(|| (t, expected.row_hash()))
        })
        .collect();
    let fingerprints = on_connections(
        url,
        database,
        jobs,
        to_scan,
        |mut session, (table, row_hash)| async move {
            let what = format!("reading table {}", quote_ident(&table.name));
            let outcome = retrying!(session, &what, |conn, _attempt| async {
                db::run_all(conn, db::DUMP_SESSION).await?;
                let fingerprint = scan_fingerprint(conn, &table, row_hash).await?;
                Ok((table.name.clone(), fingerprint))
            });
            (session, outcome)
        },
    )
    .await?;
    let fingerprints: BTreeMap<String, Fingerprint> = fingerprints.into_iter().collect();
    for expected in &manifest.tables {
        if let Some(actual) = fingerprints.get(&expected.name) {
            if actual.rows() != expected.rows {
                problems.push(format!(
                    "table `{}` has {} rows, the backup has {}",
                    expected.name,
                    actual.rows(),
                    expected.rows
                ));
            } else if actual.to_hex() != expected.fingerprint
                && !manifest.rows_only.contains(&expected.name)
            {
                problems.push(format!(
                    "table `{}` has different content than the backup",
                    expected.name
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::RestoreMismatch(problems))
    }
}

async fn scan_fingerprint(
    conn: &mut Conn,
    table: &Table,
    row_hash: RowHash,
) -> Result<Fingerprint> {
    let mut fingerprint = Fingerprint::new(row_hash);
    let mut scratch = Vec::new();
    let context = || {
        format!(
            "reading the rows of restored table {}",
            quote_ident(&table.name)
        )
    };
    let mut rows = conn
        .exec_iter(table.select_sql(), ())
        .await
        .map_err(|e| Error::database(context(), e))?;
    while let Some(row) = rows
        .next()
        .await
        .map_err(|e| Error::database(context(), e))?
    {
        fingerprint.add_row(&table.stored_values(row.unwrap()), &mut scratch);
    }
    Ok(fingerprint)
}

/// What a restored database must hold after a binlog replay on top of `expected`: tables the
/// replay changed row by row keep their definition and have the backup's rows plus those the
/// replay inserted less those it deleted; tables a statement redefined, and those a foreign
/// key's action may have changed (not in the binlog), are not compared.
pub fn after_replay(
    mut expected: ExpectedState,
    report: &crate::binlog::ReplayReport,
) -> ExpectedState {
    for name in report.redefined.iter().chain(&report.cascaded) {
        expected.unchecked.insert(name.clone());
    }
    for (kind, names) in &report.objects {
        for (name, exists) in names {
            if kind == "table" {
                expected.unchecked.insert(name.clone());
            }
            expected
                .replayed
                .insert((kind.clone(), name.clone()), *exists);
        }
    }
    for (name, changes) in &report.tables {
        if expected.unchecked.contains(name) {
            continue;
        }
        if let Some(table) = expected.tables.iter_mut().find(|t| &t.name == name) {
            // A sequence's one row is its state, which a logged insert replaces.
            if !report.sequences.contains(name) {
                table.rows = (table.rows as i64 + changes.net_rows()).max(0) as u64;
            }
            expected.rows_only.insert(name.clone());
        }
    }
    expected
}
