//! Issue 28: the schemas and data MariaDB's own test suite builds (`tests/fixtures/peer-corpus`,
//! made by `scripts/peer-corpus convert`) through a full backup and restore and through binlog
//! replay, compared with the source. The whole corpus takes minutes (`scripts/peer-corpus run`,
//! README "Fidelity"); the suite runs the fast subset (`run --fast`) on every change, one test
//! per database so they run side by side (each runner has its own databases and replica id).

use std::process::Command;

use crate::common::*;

/// Every phase of corpus database `name` (round trip, and three replays) comes back exact.
fn comes_back_exact_in_every_phase(name: &str) {
    let server =
        std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL is set by scripts/test");
    let work = tempfile::tempdir().expect("work folder");
    let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/peer-corpus"))
        .args(["run", "--work"])
        .arg(work.path())
        .arg(name)
        .env("TOC_BACKUP", BIN)
        .env("PEER_DATABASE_URL", server)
        .output()
        .expect("scripts/peer-corpus runs");
    assert!(
        output.status.success(),
        "not every phase of {name} was exact:\n{}",
        text(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let exact_phases = stdout
        .lines()
        .filter(|line| line.starts_with(name) && line.trim_end().ends_with(" exact"))
        .count();
    assert_eq!(exact_phases, 4, "{stdout}");
}

#[test]
fn bit_columns_come_back_exact() {
    comes_back_exact_in_every_phase("main__type_bit");
}

#[test]
fn float_columns_come_back_exact() {
    comes_back_exact_in_every_phase("main__type_float");
}

#[test]
fn high_resolution_timestamps_come_back_exact() {
    comes_back_exact_in_every_phase("main__type_timestamp_hires");
}

#[test]
fn utf16_text_comes_back_exact() {
    comes_back_exact_in_every_phase("main__ctype_utf16");
}

#[test]
fn range_partitions_come_back_exact() {
    comes_back_exact_in_every_phase("main__partition_range");
}

#[test]
fn generated_column_keys_come_back_exact() {
    comes_back_exact_in_every_phase("gcol__gcol_keys_innodb");
}
