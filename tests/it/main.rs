//! Every integration test in one binary: one link of the crate instead of one per file
//! (each linked the whole library, ~96 MB apiece, and most of a clean CI run was linking).
//! One module per area; the shared helpers are `common`.

mod archive;
mod bad_input;
mod binlog;
mod catalog;
mod chaos;
mod common;
mod consistency;
mod corruption;
mod failures;
mod files;
mod hostile;
mod incremental;
mod infra;
mod lambda_dump;
mod lambda_files;
mod lambda_incremental;
mod lambda_runtime;
mod load_paths;
mod monitor;
mod peer_corpus;
mod privileges;
mod progress;
mod regions;
mod restore_resume;
mod restore_test_deadline;
mod round_trip;
mod runbook;
mod s3_dump;
mod s3_partial;
mod s3_retention;
mod sample_round_trip;
mod server_upgrade;
mod tls;
