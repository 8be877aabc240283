//! `toc-backup completions SHELL`: shell completions to install.

use clap::CommandFactory;
use toc_sis_backup::Error;

use super::write_stdout;
use crate::args::Cli;

pub(crate) fn run(shell: clap_complete::Shell) -> Result<(), Error> {
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "toc-backup", &mut text);
    write_stdout(&text)
}
