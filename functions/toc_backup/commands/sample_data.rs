//! `toc-backup sample-data`: the sample TOC-SIS database.

use clap::Args;
use toc_sis_backup::{sample_data, Error};

use super::print;
use crate::flags::Connection;

#[derive(Args)]
pub(crate) struct SampleArgs {
    #[command(flatten)]
    connection: Connection,
    /// 1 is a small college (a few MB); the data grows linearly.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10000))]
    scale: u32,
    /// Seed of the random generator: the same seed makes the same data.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Drop the database first if it already has tables.
    #[arg(long)]
    replace: bool,
    /// Print the result as JSON (for scripts) instead of lines for people.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(args: SampleArgs) -> Result<(), Error> {
    let report = sample_data::create_sample(
        &args.connection.url().await?,
        args.scale,
        args.seed,
        args.replace,
    )
    .await?;
    print(args.json, &report, |r| {
        format!(
            "sample database {} created: scale {}, {} students, {} grade records, {} rows in all",
            r.database, r.scale, r.students, r.grade_records, r.rows
        )
    });
    Ok(())
}
