//! `toc-backup catalog rebuild`: the catalog index written afresh from the manifests.

use clap::{Args, Subcommand};
use toc_sis_backup::{catalog, Error};

use super::{print, store};
use crate::flags::StoreArg;

#[derive(Subcommand)]
pub(crate) enum CatalogCommand {
    /// Write the index afresh from every manifest in the store (after it was reported damaged,
    /// or after backups were added or removed by hand).
    Rebuild(CatalogArgs),
}

#[derive(Args)]
pub(crate) struct CatalogArgs {
    #[command(flatten)]
    store: StoreArg,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(command: CatalogCommand) -> Result<(), Error> {
    let CatalogCommand::Rebuild(args) = command;
    let store = store(&args.store).await?;
    let report = catalog::index::rebuild(store.as_ref()).await?;
    print(args.json, &report, |r| {
        let before = match (&r.previous, &r.previous_problem) {
            (Some(n), _) => format!("it listed {n}"),
            (None, Some(problem)) => format!("before: {problem}"),
            (None, None) => String::new(),
        };
        format!(
            "catalog of {} rebuilt: {} complete backups ({before})",
            r.store, r.entries
        )
    });
    Ok(())
}
