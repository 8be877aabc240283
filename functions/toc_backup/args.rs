//! The command line: the global flags and the list of subcommands (each one's flags are in its
//! module in `commands`, the groups several share in `flags`), each also read from an
//! environment variable.

use clap::{Parser, Subcommand, ValueEnum};
use toc_sis_backup::defaults;

use crate::commands::binlog::BinlogCommand;
use crate::commands::catalog::CatalogCommand;
use crate::commands::cost::CostArgs;
use crate::commands::doctor::DoctorArgs;
use crate::commands::dump::DumpArgs;
use crate::commands::files::FilesCommand;
use crate::commands::incremental::IncrementalArgs;
use crate::commands::list::ListArgs;
use crate::commands::monitor::MonitorArgs;
use crate::commands::point::PinArgs;
use crate::commands::prune::PruneArgs;
use crate::commands::restore::RestoreArgs;
use crate::commands::restore_test::RestoreTestArgs;
use crate::commands::retrieve::RetrieveArgs;
use crate::commands::sample_data::SampleArgs;
use crate::commands::setup_users::SetupUsersArgs;
use crate::commands::verify::VerifyArgs;

/// The jobs by what a person wants to do; clap's full list with each one's line follows.
macro_rules! job_groups {
    () => {
        "\
Backup:       dump, incremental, binlog archive, files backup
Restore:      point, restore, retrieve, files restore, files export
Check:        verify, list, status, monitor, restore-test, binlog find, cost, files list, files show
Deploy:       setup-users, doctor
Maintenance:  prune, catalog rebuild, files prune, sample-data, completions, man"
    };
}

#[cfg(test)]
const JOB_GROUPS: &str = job_groups!();

const HELP_TEMPLATE: &str = concat!(
    "{before-help}{about-with-newline}\n{usage-heading} {usage}\n\n",
    job_groups!(),
    "\n\n{all-args}{after-help}"
);

#[derive(Parser)]
#[command(
    name = "toc-backup",
    version,
    about = "Consistent, verified backups of the TOC-SIS database",
    help_template = HELP_TEMPLATE
)]
pub(crate) struct Cli {
    /// Log format: human-readable lines, or one JSON object per line.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Human, global = true)]
    pub(crate) log_format: LogFormat,
    /// Without a terminal (or with --log-format json): log a progress line this often, in
    /// seconds (on a terminal a bar is drawn instead).
    #[arg(long, env = "PROGRESS_SECONDS", default_value_t = defaults::PROGRESS_SECONDS, global = true)]
    pub(crate) progress_seconds: u64,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Take a full, consistent backup of a database into a store.
    Dump(DumpArgs),
    /// Back up what changed in the Tier 1 and 2 tables since the chain's previous point.
    Incremental(IncrementalArgs),
    /// Load a backup into a database and verify it against the manifest.
    Restore(RestoreArgs),
    /// Re-read a backup and check every file's checksum.
    Verify(VerifyArgs),
    /// Ask S3 to bring an archived backup (Glacier, Deep Archive) back for a restore; run again
    /// to see each file's progress.
    Retrieve(RetrieveArgs),
    /// Pin the point a restore brings back: print the flags (--at, --before-position or
    /// --backup) that name the same data now and hours later, after the binlog archive and the
    /// backups have grown.
    Point(PinArgs),
    /// Show the backups in a store, newest first.
    List(ListArgs),
    /// Apply the retention policy: remove old daily backups.
    Prune(PruneArgs),
    /// Check every tier's freshness, integrity and anomalies, and alert on changes.
    Monitor(MonitorArgs),
    /// Print the monitor's checks for a person (no alerts).
    Status(MonitorArgs),
    /// Restore the latest backup into a scratch database, verify it, time it, drop it.
    RestoreTest(RestoreTestArgs),
    /// Tier 3 file backups: deduplicated snapshots of uploads and the application tree.
    Files {
        #[command(subcommand)]
        command: FilesCommand,
    },
    /// Create or update the three database users the jobs connect as (backup, binlog, restore
    /// test), with exactly the privileges each needs, as the RDS master user.
    SetupUsers(SetupUsersArgs),
    /// Check the whole deployment: server settings, the project users' grants, the bucket,
    /// the alert subscriptions and the RDS instance; one line per finding with its fix.
    /// Exit 0 OK, 1 WARNING, 2 CRITICAL.
    Doctor(DoctorArgs),
    /// Estimate the stack's monthly bill: S3 today, and at steady state what grows with the
    /// backups' real sizes and what the deployed stack pays whatever their size.
    Cost(CostArgs),
    /// The catalog index (`catalog/index.json.gz`) that list, status, incremental and restore read.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// The binlog archive for point-in-time restore: `archive` streams the server's binlog into
    /// the store; `find` lists the archived transactions that touched a table.
    Binlog {
        #[command(subcommand)]
        command: BinlogCommand,
    },
    /// Create the sample TOC-SIS database.
    SampleData(SampleArgs),
    /// Print shell completions to install (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to install as toc-backup.1.
    Man,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every flag of every command says what it does (its default and environment variable
    /// are printed by clap beside it).
    #[test]
    fn every_argument_of_every_command_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                if help.trim().is_empty() {
                    missing.push(format!("{path} --{}", arg.get_long().unwrap_or(id)));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no description)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "toc-backup", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without help:\n{}",
            missing.join("\n")
        );
    }

    /// Every `--flag` a message of the tool names (string literals in the library and the
    /// command line) is a real flag of some command: a hint must never send a tired person to
    /// an option that does not exist.
    #[test]
    fn every_flag_named_in_a_message_exists() {
        fn flags(command: &clap::Command, into: &mut std::collections::BTreeSet<String>) {
            for arg in command.get_arguments() {
                if let Some(long) = arg.get_long() {
                    into.insert(format!("--{long}"));
                }
            }
            for sub in command.get_subcommands() {
                flags(sub, into);
            }
        }
        let mut known = std::collections::BTreeSet::new();
        flags(&Cli::command(), &mut known);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut unknown = Vec::new();
        for dir in ["shared", "functions"] {
            for entry in walkdir::WalkDir::new(root.join(dir)) {
                let entry = entry.expect("source tree");
                if entry.path().extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(entry.path()).expect("source file");
                for (number, line) in text.lines().enumerate() {
                    let code = line.trim_start();
                    if code.starts_with("//") || !code.contains('"') {
                        continue;
                    }
                    let bytes = line.as_bytes();
                    let mut at = 0;
                    while let Some(found) = line[at..].find("--") {
                        let start = at + found;
                        at = start + 2;
                        let before_ok = start == 0
                            || !(bytes[start - 1].is_ascii_alphanumeric()
                                || bytes[start - 1] == b'-');
                        let name: String = line[start + 2..]
                            .chars()
                            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                            .collect();
                        if !before_ok
                            || name.is_empty()
                            || !name.starts_with(|c: char| c.is_ascii_lowercase())
                        {
                            continue;
                        }
                        let flag = format!("--{}", name.trim_end_matches('-'));
                        if !known.contains(&flag) {
                            unknown.push(format!(
                                "{}:{} {flag}",
                                entry.path().display(),
                                number + 1
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            unknown.is_empty(),
            "messages name flags no command has:\n{}",
            unknown.join("\n")
        );
    }

    /// The grouped overview names every job, and the template shows the same groups.
    #[test]
    fn the_job_groups_name_every_command() {
        let command = Cli::command();
        assert!(super::HELP_TEMPLATE.contains(super::JOB_GROUPS));
        for sub in command.get_subcommands() {
            let name = sub.get_name();
            let nested: Vec<&str> = sub.get_subcommands().map(|s| s.get_name()).collect();
            if nested.is_empty() {
                assert!(super::JOB_GROUPS.contains(name), "{name} is in no group");
            }
            for inner in nested {
                let full = format!("{name} {inner}");
                assert!(super::JOB_GROUPS.contains(&full), "{full} is in no group");
            }
        }
    }
}
