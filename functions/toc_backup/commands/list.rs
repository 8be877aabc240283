//! `toc-backup list`: the backups in a store, newest first.

use clap::Args;
use toc_sis_backup::{catalog, Error};

use super::{mib, print, store};
use crate::flags::StoreArg;

#[derive(Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Also show unfinished or failed runs.
    #[arg(long)]
    all: bool,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: ListArgs) -> Result<(), Error> {
    let store = store(&args.store).await?;
    // `--all` shows whatever is there, leftovers of failed runs included, even nothing.
    if !args.all {
        catalog::require_backups(store.as_ref()).await?;
    }
    let listed = catalog::list(store.as_ref(), args.all).await?;
    print(args.json, &listed, |list| {
        if list.is_empty() {
            return "no backups".to_string();
        }
        let mut lines = vec![format!(
            "{:<26} {:<12} {:<10} {:<16} {:>7} {:>12} {:>12} {:<12}",
            "ID", "KIND", "STATUS", "DATABASE", "TABLES", "ROWS", "SIZE", "STORAGE"
        )];
        for b in list {
            lines.push(format!(
                "{:<26} {:<12} {:<10} {:<16} {:>7} {:>12} {:>12} {:<12}{}{}",
                b.id,
                b.kind,
                b.status,
                b.database.as_deref().unwrap_or("-"),
                b.tables.map_or("-".into(), |t| t.to_string()),
                b.rows.map_or("-".into(), |r| r.to_string()),
                mib(b.bytes),
                b.storage_class.as_deref().unwrap_or("-"),
                match (&b.problem, &b.parent) {
                    (Some(p), _) => format!("  ({p})"),
                    (None, Some(parent)) => format!("  (after {parent})"),
                    (None, None) => String::new(),
                },
                b.label
                    .as_deref()
                    .map(|label| format!("  \"{label}\""))
                    .unwrap_or_default()
            ));
        }
        lines.join("\n")
    });
    Ok(())
}
