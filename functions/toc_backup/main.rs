//! `toc-backup`: the backup jobs from a shell, against a local folder and the log by default.
//! This file sets up (logging, the runtime) and hands each subcommand to its module in
//! `commands`.

use std::process::ExitCode;

mod args;
mod commands;
mod flags;
mod progress;

use args::{Cli, Command, LogFormat};
use clap::Parser;
use commands::Console;
use toc_sis_backup::memory::Workload;
use toc_sis_backup::Error;

/// A closed pipe (`toc-backup list | head`) ends the command quietly, as it ends every Unix
/// tool: Rust ignores SIGPIPE, and printing into the closed pipe panicked.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn quiet_on_closed_pipe() {
    // SAFETY: restores one signal's default disposition, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn quiet_on_closed_pipe() {}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    toc_sis_backup::memory::configure_malloc(match cli.command {
        Command::Restore(_) | Command::RestoreTest(_) => Workload::Restore,
        _ => Workload::Other,
    });
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let console = Console {
        log_format: cli.log_format,
        progress_every: std::time::Duration::from_secs(cli.progress_seconds.max(1)),
    };
    match runtime.block_on(run(cli.command, console)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if matches!(console.log_format, LogFormat::Json) {
                tracing::error!(error = %e, "command failed");
            }
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour only for a person at a terminal, never into a file or a pipe.
        LogFormat::Human => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Runs one subcommand; the exit status is 0, or for `status`, `monitor` and `doctor` 1
/// (WARNING) and 2 (CRITICAL).
async fn run(command: Command, console: Console) -> Result<u8, Error> {
    use commands::*;
    let done = |()| 0;
    match command {
        Command::Dump(args) => dump::run(args, console).await.map(done),
        Command::Incremental(args) => incremental::run(args).await.map(done),
        Command::Restore(args) => restore::run(args, console).await.map(done),
        Command::Verify(args) => verify::run(args, console).await.map(done),
        Command::Retrieve(args) => retrieve::run(args).await.map(done),
        Command::Point(args) => point::run(args).await.map(done),
        Command::List(args) => list::run(args).await.map(done),
        Command::Prune(args) => prune::run(args).await.map(done),
        Command::Monitor(args) => monitor::run(args).await,
        Command::Status(args) => monitor::status(args).await,
        Command::RestoreTest(args) => restore_test::run(args, console).await.map(done),
        Command::Files { command } => files::run(command, console).await.map(done),
        Command::SetupUsers(args) => setup_users::run(args).await.map(done),
        Command::Doctor(args) => doctor::run(args).await,
        Command::Cost(args) => cost::run(args).await.map(done),
        Command::Catalog { command } => catalog::run(command).await.map(done),
        Command::Binlog { command } => binlog::run(command, console).await.map(done),
        Command::SampleData(args) => sample_data::run(args).await.map(done),
        Command::Completions { shell } => completions::run(shell).map(done),
        Command::Man => man::run().map(done),
    }
}
