//! Issue 28: the schemas and data MariaDB's own test suite builds (`tests/fixtures/peer-corpus`,
//! made by `scripts/peer-corpus convert`) through a full backup and restore and through binlog
//! replay, compared with the source. The whole corpus takes minutes (`scripts/peer-corpus run`,
//! README "Fidelity"); the suite runs the fast subset on every change.

use std::process::Command;

use crate::common::*;

#[test]
fn the_fast_peer_corpus_comes_back_exact_in_every_phase() {
    let server =
        std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL is set by scripts/test");
    let work = tempfile::tempdir().expect("work folder");
    let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/peer-corpus"))
        .args(["run", "--fast", "--work"])
        .arg(work.path())
        .env("TOC_BACKUP", BIN)
        .env("PEER_DATABASE_URL", server)
        .output()
        .expect("scripts/peer-corpus runs");
    assert!(
        output.status.success(),
        "not every phase was exact:\n{}",
        text(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("round trip") && stdout.contains("6 of 6 exact"),
        "{stdout}"
    );
}
