//! `toc-backup man`: the man page (roff) to install as toc-backup.1.

use clap::CommandFactory;
use toc_sis_backup::Error;

use super::write_stdout;
use crate::args::Cli;

pub(crate) fn run() -> Result<(), Error> {
    let mut text = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut text)
        .map_err(|e| Error::Task(format!("rendering the man page: {e}")))?;
    write_stdout(&text)
}
