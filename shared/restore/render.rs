//! Restoring onto another server version: `SHOW CREATE` of the same DDL reads differently from
//! one version to the next (MySQL 8.0.30 writes `utf8` as `utf8mb3`, 8.0.19 drops integer
//! display widths, MariaDB 11 changes defaults), so the source's definition hashes cannot be
//! compared with the restored ones. Instead the stored DDL is loaded, without rows, into an
//! empty scratch schema on the target and the restored definitions are compared with what
//! this server rendered there: the same statements, the same renderer.

use super::apply;
use super::chain::ExpectedState;
use super::definer::DefinerMode;
use crate::config::DatabaseUrl;
use crate::error::Result;
use crate::manifest::{Manifest, Stage};
use crate::mysql::schema;
use crate::mysql::{self as db, quote_ident};
use crate::store::ObjectStore;

/// The scratch schema's name: the target's with a suffix (so a user allowed a pattern of
/// scratch databases may create it), at most 64 characters.
fn render_name(target: &str) -> String {
    let mut name: String = target.chars().take(56).collect();
    name.push_str("_render");
    name
}

/// `expected` with every table's and object's definition hash replaced by what this server
/// renders for the backup's stored DDL.
pub(super) async fn rendered_expectations(
    store: &dyn ObjectStore,
    root: &Manifest,
    url: &DatabaseUrl,
    target: &str,
    definer: DefinerMode,
    mut expected: ExpectedState,
) -> Result<ExpectedState> {
    let scratch = render_name(target);
    let mut admin = db::connect(url, None).await?;
    let drop = format!("DROP DATABASE IF EXISTS {}", quote_ident(&scratch));
    let create = format!(
        "CREATE DATABASE {} CHARACTER SET utf8mb4",
        quote_ident(&scratch)
    );
    db::run_all(&mut admin, &[drop.as_str(), create.as_str()]).await?;
    let rendered = render(store, root, url, &scratch, definer).await;
    let dropped = db::drop_database(&mut admin, &scratch).await;
    let _ = admin.disconnect().await;
    let (tables, objects) = rendered?;
    dropped?;
    for entry in &mut expected.tables {
        if let Some(table) = tables.iter().find(|t| t.name == entry.name) {
            entry.definition_sha256 = table.definition_sha256();
        }
    }
    for entry in &mut expected.objects {
        if let Some(object) = objects
            .iter()
            .find(|o| o.kind == entry.kind && o.name == entry.name)
        {
            // Rendered disabled; compared as enabled (the check accepts a target's event
            // that differs only by being disabled).
            let object = object.enabled_event().unwrap_or_else(|| object.clone());
            entry.definition_sha256 = object.definition_sha256();
            entry.definition_sha256_any_definer = Some(object.definition_sha256_any_definer());
        }
    }
    tracing::info!(
        source_version = %root.server.version,
        "the backup was made on another server version: definitions are compared with what this server renders for the stored DDL"
    );
    Ok(expected)
}

async fn render(
    store: &dyn ObjectStore,
    root: &Manifest,
    url: &DatabaseUrl,
    scratch: &str,
    definer: DefinerMode,
) -> Result<(Vec<schema::Table>, Vec<schema::StoredObject>)> {
    let mut conn = db::connect(url, Some(scratch)).await?;
    let prefix = root.prefix();
    for stage in [
        Stage::Schema,
        Stage::Routines,
        Stage::Views,
        Stage::Triggers,
        Stage::Events,
    ] {
        for file in root.files.iter().filter(|f| f.stage == stage) {
            apply::apply_file(
                store,
                &prefix,
                file,
                &mut conn,
                None,
                // A scratch schema: its events never run.
                apply::ObjectRewrite {
                    definer,
                    events_disabled: true,
                },
                &mut 0,
                apply::Loading::Statements,
            )
            .await?;
        }
    }
    db::run_all(&mut conn, db::DUMP_SESSION).await?;
    let mut tables = Vec::new();
    let mut views = Vec::new();
    for summary in schema::list_tables(&mut conn, scratch).await? {
        if summary.table_type == "VIEW" {
            views.push(summary.name.clone());
        } else {
            tables.push(schema::describe_table(&mut conn, scratch, &summary).await?);
        }
    }
    let objects = schema::stored_objects(&mut conn, scratch, &views).await?;
    let _ = conn.disconnect().await;
    Ok((tables, objects))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scratch_schema_name_fits() {
        assert_eq!(render_name(&"x".repeat(64)).len(), 63);
    }
}
