//! toc-sis-backup: consistent, verified backups of the TOC-SIS database.
//!
//! Everything that is not an entry point lives here; the Lambda functions and the `toc-backup`
//! command line in `functions/` only parse input, build clients and call one job.

pub mod aws;
pub mod binlog;
pub mod catalog;
pub mod config;
pub mod cost;
pub mod credentials;
pub mod defaults;
pub mod deploy;
pub mod dump;
pub mod env;
pub mod error;
pub mod files;
pub mod incremental;
pub mod job;
pub mod lambda;
pub mod layout;
pub mod manifest;
pub mod memory;
pub mod monitor;
pub mod mysql;
pub mod notify;
pub mod restore;
pub mod retention;
pub mod sample_data;
pub mod store;
pub mod table_files;
pub mod verify;

#[cfg(test)]
mod hostile_names;

pub use error::{Error, Result};
