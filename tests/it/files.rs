//! Issue 7: Tier 3 file backups through the real `toc-backup` binary on a local store, and
//! retention with garbage collection while a backup runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::tree::{self, application_tree, describe, without_excluded, Node};
use crate::common::*;
use toc_sis_backup::files::lock::{lock_for_backup, lock_for_collect};
use toc_sis_backup::files::{
    list_snapshots, prune_and_collect, restore_snapshot, run_file_backup_until, select_snapshot,
    FileBackupOptions, FileRestoreOptions,
};
use toc_sis_backup::notify::LogNotifier;
use toc_sis_backup::retention::RetentionPolicy;
use toc_sis_backup::store::local::LocalStore;
use toc_sis_backup::store::ObjectStore;

fn files(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["files"];
    all.extend_from_slice(args);
    let output = run_cli(&all, &[]);
    assert_ok(&output);
    if args.contains(&"--json") {
        serde_json::from_slice(&output.stdout).expect("JSON on stdout")
    } else {
        serde_json::Value::Null
    }
}

fn backup(store: &Path, from: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "backup",
        "--store",
        store.to_str().expect("utf-8 path"),
        "--from",
        from.to_str().expect("utf-8 path"),
        "--name",
        "application",
        "--application-excludes",
        "--json",
    ];
    args.extend_from_slice(extra);
    files(&args)
}

fn store_bytes(store: &Path) -> u64 {
    walk(&store.join("files/blobs"))
        .iter()
        .map(|p| std::fs::metadata(p).expect("blob").len())
        .sum()
}

#[test]
fn a_generated_tree_round_trips_byte_for_byte_without_its_excluded_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (source, store, restored) = (
        dir.path().join("src"),
        dir.path().join("store"),
        dir.path().join("restored"),
    );
    std::fs::create_dir_all(&store).expect("store");
    application_tree(&source, 50);
    let report = backup(&store, &source, &[]);
    assert!(
        report["problems"].as_array().expect("problems").is_empty(),
        "{report}"
    );
    assert_eq!(report["new_bytes"], store_bytes(&store));

    files(&[
        "restore",
        "--store",
        store.to_str().unwrap(),
        "--to",
        restored.to_str().unwrap(),
    ]);
    let expected = without_excluded(describe(&source), tree::EXCLUDED);
    let actual = describe(&restored);
    assert_eq!(
        actual
            .keys()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>(),
        expected
            .keys()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>()
    );
    for (path, node) in &expected {
        assert_eq!(
            actual.get(path),
            Some(node),
            "{}",
            String::from_utf8_lossy(path)
        );
    }
    // The excluded folders' parents stay, empty, as tar's `dir/*` keeps them.
    for kept_empty in [
        "storage/logs",
        "storage/framework/sessions",
        "storage/app/empty folder",
    ] {
        let folder = restored.join(kept_empty);
        assert!(folder.is_dir(), "{kept_empty}");
        assert_eq!(
            std::fs::read_dir(&folder).unwrap().count(),
            0,
            "{kept_empty}"
        );
    }
    assert!(matches!(
        expected.get(b"storage/app/big/lecture.mp4".as_slice()),
        Some(Node::File { size, .. }) if *size == 50 << 20
    ));
    // Folder times come back too (set after their contents were written).
    let source_time = std::fs::metadata(source.join("app/Models"))
        .unwrap()
        .modified()
        .unwrap();
    let restored_time = std::fs::metadata(restored.join("app/Models"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(source_time, restored_time);
}

#[test]
fn a_second_run_stores_about_the_changed_file_and_an_unchanged_tree_is_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (source, store) = (dir.path().join("src"), dir.path().join("store"));
    std::fs::create_dir_all(&store).expect("store");
    application_tree(&source, 20);
    let first = backup(&store, &source, &[]);
    let files_in_tree = first["files"].as_u64().unwrap();
    let after_first = store_bytes(&store);

    // Unchanged: nothing new, no file read again, a small manifest.
    let unchanged = backup(&store, &source, &[]);
    assert_eq!(unchanged["new_bytes"], 0, "{unchanged}");
    assert_eq!(
        unchanged["unchanged_not_read"], files_in_tree,
        "{unchanged}"
    );
    assert!(
        unchanged["manifest_bytes"].as_u64().unwrap() < 4096,
        "{unchanged}"
    );

    // One 300 KB file changed: about 300 KB stored, no more.
    let changed = tree::write(
        &source,
        b"storage/app/uploads/2026/transcript \"final\".pdf",
        &tree::bytes(9, 300_000),
    );
    let second = backup(&store, &source, &[]);
    assert_eq!(second["new_blobs"], 1, "{second}");
    assert_eq!(second["new_bytes"], 300_000, "{second}");
    assert_eq!(store_bytes(&store) - after_first, 300_000);

    // Same size, same modification time, new content (a tool that puts the old time back):
    // the change time still gives it away.
    let before = std::fs::metadata(&changed).unwrap();
    std::fs::write(&changed, tree::bytes(10, 300_000)).unwrap();
    filetime::set_file_mtime(
        &changed,
        filetime::FileTime::from_last_modification_time(&before),
    )
    .unwrap();
    let third = backup(&store, &source, &[]);
    assert_eq!(third["new_blobs"], 1, "{third}");
    let restored = dir.path().join("restored");
    files(&[
        "restore",
        "--store",
        store.to_str().unwrap(),
        "--to",
        restored.to_str().unwrap(),
        "--path",
        "storage/app/uploads/2026/transcript \"final\".pdf",
    ]);
    assert_eq!(
        std::fs::read(restored.join("storage/app/uploads/2026/transcript \"final\".pdf")).unwrap(),
        tree::bytes(10, 300_000)
    );
}

#[test]
fn one_file_or_folder_restores_alone_and_export_is_a_standard_tar_gz() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (source, store) = (dir.path().join("src"), dir.path().join("store"));
    std::fs::create_dir_all(&store).expect("store");
    application_tree(&source, 1);
    backup(&store, &source, &[]);
    let store_arg = store.to_str().unwrap();

    let one = dir.path().join("one");
    files(&[
        "restore",
        "--store",
        store_arg,
        "--to",
        one.to_str().unwrap(),
        "--path",
        "app/Models/Grade Record.php",
    ]);
    let restored: Vec<_> = walk(&one);
    assert_eq!(restored, vec![one.join("app/Models/Grade Record.php")]);
    assert_eq!(
        std::fs::read(&restored[0]).unwrap(),
        std::fs::read(source.join("app/Models/Grade Record.php")).unwrap()
    );
    let folder = dir.path().join("folder");
    files(&[
        "restore",
        "--store",
        store_arg,
        "--to",
        folder.to_str().unwrap(),
        "--path",
        "storage/app/uploads/",
    ]);
    assert_eq!(walk(&folder).len(), 3);
    // Restoring over existing files needs --overwrite; a path not in the snapshot is named.
    let again = run_cli(
        &[
            "files",
            "restore",
            "--store",
            store_arg,
            "--to",
            folder.to_str().unwrap(),
            "--path",
            "storage/app/uploads",
        ],
        &[],
    );
    assert!(text(&again).contains("--overwrite"), "{}", text(&again));
    let missing = run_cli(
        &[
            "files",
            "restore",
            "--store",
            store_arg,
            "--to",
            folder.to_str().unwrap(),
            "--path",
            "no/such.pdf",
        ],
        &[],
    );
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("\"no/such.pdf\""),
        "{}",
        text(&missing)
    );

    let shown = files(&["show", "--store", store_arg, "--json"]);
    let mut expected: Vec<String> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    let archive = dir.path().join("export.tar.gz");
    files(&[
        "export",
        "--store",
        store_arg,
        "--output",
        archive.to_str().unwrap(),
    ]);
    let listing = std::process::Command::new("tar")
        .args(["--quoting-style=literal", "-tzf"])
        .arg(&archive)
        .output()
        .expect("run tar");
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let mut listed: Vec<String> = listing
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let text = String::from_utf8_lossy(l).trim_end_matches('/').to_string();
            // The manifest writes non-UTF-8 names as hex: compare like with like.
            match std::str::from_utf8(l) {
                Ok(_) => text,
                Err(_) => format!("hex:{}", hex::encode(l)),
            }
        })
        .collect();
    expected.sort();
    listed.sort();
    assert_eq!(listed, expected);
    assert!(
        listed.iter().any(|p| p.starts_with("hex:")),
        "the non-UTF-8 name is exported"
    );

    // And what tar extracts is the tree.
    let extracted = dir.path().join("extracted");
    std::fs::create_dir_all(&extracted).unwrap();
    let status = std::process::Command::new("tar")
        .args(["-xzf"])
        .arg(&archive)
        .arg("-C")
        .arg(&extracted)
        .status()
        .unwrap();
    assert!(status.success());
    let want = without_excluded(describe(&source), tree::EXCLUDED);
    let got = describe(&extracted);
    for (path, node) in &want {
        if let Node::File { content_sha, .. } = node {
            match got.get(path) {
                Some(Node::File {
                    content_sha: got_sha,
                    ..
                }) => assert_eq!(got_sha, content_sha),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(path)),
            }
        }
    }
}

fn options(source: &Path) -> FileBackupOptions {
    let mut options = FileBackupOptions::new("uploads", source.to_str().unwrap());
    options.jobs = 2;
    options
}

fn keep_newest(n: usize) -> RetentionPolicy {
    RetentionPolicy {
        keep_days: 0,
        keep_min: n,
        ..RetentionPolicy::default()
    }
}

/// Every snapshot still in the store restores with every hash checked.
async fn all_snapshots_restore(store: &Arc<dyn ObjectStore>, scratch: &Path) -> usize {
    let snapshots = list_snapshots(store.as_ref(), None).await.unwrap();
    for (i, snapshot) in snapshots.iter().enumerate() {
        let loaded = snapshot.load(store.as_ref()).await.unwrap();
        let target = scratch.join(format!("check-{:08x}-{i}", rand::random::<u32>()));
        restore_snapshot(
            store.as_ref(),
            &loaded,
            &FileRestoreOptions {
                headway: Default::default(),
                target,
                paths: vec![],
                overwrite: false,
                jobs: 2,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("snapshot {} no longer restores: {e}", snapshot.snapshot_id));
    }
    snapshots.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_waits_for_backups_and_never_breaks_a_kept_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("src");
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(&store_dir));
    for i in 0..40u64 {
        tree::write(
            &source,
            format!("doc-{i}.pdf").as_bytes(),
            &tree::bytes(i, 50_000),
        );
    }
    let never = std::future::pending::<String>;
    run_file_backup_until(store.clone(), &LogNotifier, &options(&source), never())
        .await
        .unwrap();

    // The old content is now only in the first snapshot; a second snapshot replaces it.
    for i in 0..40u64 {
        tree::write(
            &source,
            format!("doc-{i}.pdf").as_bytes(),
            &tree::bytes(100 + i, 50_000),
        );
    }
    run_file_backup_until(store.clone(), &LogNotifier, &options(&source), never())
        .await
        .unwrap();

    // While a backup holds its lock, collection removes old snapshots but no content.
    let running = lock_for_backup(store.clone(), "test backup", Duration::from_secs(1))
        .await
        .unwrap();
    let blocked = prune_and_collect(store.clone(), Some(&keep_newest(1)), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(blocked.pruned.len(), 1, "{blocked:?}");
    assert_eq!(blocked.blobs_deleted, 0, "{blocked:?}");
    assert!(
        blocked
            .skipped
            .as_deref()
            .unwrap_or("")
            .contains("test backup"),
        "{blocked:?}"
    );
    running.release().await;
    let collected = prune_and_collect(store.clone(), Some(&keep_newest(1)), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(collected.blobs_deleted, 40, "{collected:?}");
    assert_eq!(collected.blobs_kept, 40, "{collected:?}");
    assert_eq!(all_snapshots_restore(&store, dir.path()).await, 1);

    // A backup that starts while collection holds its lock waits for it.
    let collecting = lock_for_collect(store.clone(), "test collection")
        .await
        .unwrap()
        .unwrap();
    let started = Instant::now();
    let waiting = tokio::spawn({
        let store = store.clone();
        let options = options(&source);
        async move { run_file_backup_until(store, &LogNotifier, &options, std::future::pending()).await }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !waiting.is_finished(),
        "the backup must wait for the collection"
    );
    collecting.release().await;
    waiting.await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));

    // Backups and collections racing: old content is made unreferenced before every backup,
    // and whatever survives must restore.
    let racing_store = store.clone();
    let collector = tokio::spawn(async move {
        let mut runs = 0;
        let deadline = Instant::now() + Duration::from_secs(6);
        while Instant::now() < deadline {
            prune_and_collect(
                racing_store.clone(),
                Some(&keep_newest(1)),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
            runs += 1;
        }
        runs
    });
    for round in 0..6u64 {
        for i in 0..40u64 {
            // Half the files flip between two contents: each backup finds the content of the
            // snapshot before last still stored (unreferenced once that snapshot is pruned) and
            // reuses it, exactly what a collection could delete under it.
            let seed = match (i % 2, round % 2) {
                (0, _) => i,
                (_, 0) => 2000 + i,
                _ => 3000 + i,
            };
            tree::write(
                &source,
                format!("doc-{i}.pdf").as_bytes(),
                &tree::bytes(seed, 50_000),
            );
        }
        run_file_backup_until(store.clone(), &LogNotifier, &options(&source), never())
            .await
            .unwrap();
    }
    assert!(collector.await.unwrap() > 1);
    assert!(all_snapshots_restore(&store, dir.path()).await >= 1);
    let latest = select_snapshot(store.as_ref(), Some("uploads"), "latest")
        .await
        .unwrap();
    let restored = dir.path().join("latest");
    restore_snapshot(
        store.as_ref(),
        &latest,
        &FileRestoreOptions {
            headway: Default::default(),
            target: restored.clone(),
            paths: vec![],
            overwrite: false,
            jobs: 2,
        },
    )
    .await
    .unwrap();
    assert_eq!(describe(&restored), describe(&source));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_keeps_changing_is_reported_not_stored_torn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("src");
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(&store_dir));
    tree::write(&source, b"steady.pdf", b"steady\n");
    let busy = tree::write(&source, b"being-written.log", &tree::bytes(1, 8 << 20));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = std::thread::spawn({
        let stop = stop.clone();
        move || {
            use std::io::{Seek, SeekFrom, Write};
            let mut file = std::fs::OpenOptions::new().write(true).open(&busy).unwrap();
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                file.seek(SeekFrom::Start((i * 7919) % (8 << 20))).unwrap();
                file.write_all(&i.to_le_bytes()).unwrap();
                i += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    });
    let report = run_file_backup_until(
        store.clone(),
        &LogNotifier,
        &options(&source),
        std::future::pending(),
    )
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert_eq!(report.problems[0].path.to_string(), "being-written.log");
    assert!(
        report.problems[0]
            .reason
            .contains("changed while being read"),
        "{report:?}"
    );
    let snapshot = select_snapshot(store.as_ref(), None, "latest")
        .await
        .unwrap();
    assert_eq!(snapshot.entries.len(), 1);
    assert_eq!(snapshot.problems, report.problems);
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let store_arg = store.to_str().unwrap();
    for (args, fragment) in [
        (
            vec!["backup", "--store", store_arg, "--from", "/no/such/folder"],
            "\"/no/such/folder\"",
        ),
        (
            vec![
                "backup",
                "--store",
                store_arg,
                "--from",
                dir.path().to_str().unwrap(),
                "--name",
                "bad name",
            ],
            "\"bad name\"",
        ),
        (
            vec![
                "backup",
                "--store",
                store_arg,
                "--from",
                dir.path().to_str().unwrap(),
                "--exclude",
                "[oops",
            ],
            "\"[oops\"",
        ),
        (
            vec!["restore", "--store", store_arg, "--to", "/tmp/x"],
            "not found",
        ),
        (
            vec![
                "backup",
                "--store",
                "/no/such/store",
                "--from",
                dir.path().to_str().unwrap(),
            ],
            "/no/such/store",
        ),
    ] {
        let mut all = vec!["files"];
        all.extend(args);
        let output = run_cli(&all, &[]);
        assert!(!output.status.success(), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(fragment), "{fragment}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

// Issue 26 item 5: a files restore writes and changes modes only inside its target, whatever
// links the target already holds (from an earlier snapshot, or planted there).

/// Backs `source` up as `uploads` and returns that very snapshot (not `latest`: two snapshots
/// taken in the same second would make that ambiguous).
async fn snapshot_of(
    store: &Arc<dyn ObjectStore>,
    source: &Path,
) -> toc_sis_backup::files::Snapshot {
    let report = run_file_backup_until(
        store.clone(),
        &LogNotifier,
        &options(source),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    select_snapshot(store.as_ref(), Some("uploads"), &report.snapshot_id)
        .await
        .unwrap()
}

async fn restore_into(
    store: &Arc<dyn ObjectStore>,
    snapshot: &toc_sis_backup::files::Snapshot,
    target: &Path,
    paths: &[&str],
    overwrite: bool,
) -> toc_sis_backup::error::Result<toc_sis_backup::files::FileRestoreReport> {
    restore_snapshot(
        store.as_ref(),
        snapshot,
        &FileRestoreOptions {
            headway: Default::default(),
            target: target.to_path_buf(),
            paths: paths
                .iter()
                .map(|p| toc_sis_backup::files::RawPath::from(*p))
                .collect(),
            overwrite,
            jobs: 2,
        },
    )
    .await
}

/// Everything a restore could change outside its target: every path below `dir` (content,
/// mode, modification time, link target) and the folder's own mode and times.
fn outside_state(dir: &Path) -> (std::collections::BTreeMap<Vec<u8>, Node>, u32, i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).unwrap();
    (
        describe(dir),
        meta.mode() & 0o7777,
        meta.mtime(),
        meta.mtime_nsec(),
    )
}

/// A folder outside every restore target, with a file, a subfolder and odd modes a chmod
/// through a link would change.
fn outside_folder(root: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let outside = root.join("outside");
    let file = tree::write(&outside, b"a.pdf", b"outside: must stay as it is\n");
    tree::write(&outside, b"kept/notes.txt", b"outside notes\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o700)).unwrap();
    filetime::set_file_mtime(&outside, filetime::FileTime::from_unix_time(1_000_000, 0)).unwrap();
    outside
}

/// The source every link test backs up: `docs/` (mode 0o750) with `a.pdf` (0o644) and
/// `sub/b.txt`.
fn docs_source(source: &Path) {
    use std::os::unix::fs::PermissionsExt;
    tree::write(source, b"docs/a.pdf", &tree::bytes(7, 10_000));
    tree::write(source, b"docs/sub/b.txt", b"snapshot content\n");
    std::fs::set_permissions(
        source.join("docs/a.pdf"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(source.join("docs"), std::fs::Permissions::from_mode(0o750)).unwrap();
}

/// A link test's folders: a source, a store, a target, and a folder outside them with its
/// state before the restore (which must not change).
struct LinkCase {
    dir: tempfile::TempDir,
    source: PathBuf,
    target: PathBuf,
    store: Arc<dyn ObjectStore>,
    store_dir: PathBuf,
    outside: PathBuf,
    before: (std::collections::BTreeMap<Vec<u8>, Node>, u32, i64, i64),
}

impl LinkCase {
    fn new() -> LinkCase {
        let dir = tempfile::tempdir().expect("tempdir");
        let (source, store_dir, target) = (
            dir.path().join("src"),
            dir.path().join("store"),
            dir.path().join("target"),
        );
        std::fs::create_dir_all(&store_dir).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(&store_dir));
        let outside = outside_folder(dir.path());
        let before = outside_state(&outside);
        LinkCase {
            dir,
            source,
            target,
            store,
            store_dir,
            outside,
            before,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_a_folder_outside_left_by_an_earlier_snapshot_is_replaced_not_followed() {
    let LinkCase {
        dir: _dir,
        source,
        target,
        store,
        outside,
        before,
        ..
    } = LinkCase::new();

    // An earlier snapshot held `docs` as a link to a folder outside; restoring it puts the
    // link in the target, as it should.
    std::fs::create_dir_all(&source).unwrap();
    std::os::unix::fs::symlink(&outside, source.join("docs")).unwrap();
    let earlier = snapshot_of(&store, &source).await;
    restore_into(&store, &earlier, &target, &[], false)
        .await
        .unwrap();
    assert_eq!(std::fs::read_link(target.join("docs")).unwrap(), outside);

    // A later snapshot holds `docs` as a folder: without --overwrite the link is named and
    // nothing is written anywhere; with it the link is replaced by the folder.
    std::fs::remove_file(source.join("docs")).unwrap();
    docs_source(&source);
    let later = snapshot_of(&store, &source).await;
    let refused = restore_into(&store, &later, &target, &[], false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&target.join("docs").display().to_string()) && refused.contains("link"),
        "{refused}"
    );
    assert_eq!(outside_state(&outside), before, "outside changed");

    restore_into(&store, &later, &target, &[], true)
        .await
        .unwrap();
    assert_eq!(outside_state(&outside), before, "outside changed");
    assert!(std::fs::symlink_metadata(target.join("docs"))
        .unwrap()
        .is_dir());
    assert_eq!(describe(&target), describe(&source));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_where_a_file_goes_is_replaced_and_the_file_it_points_to_is_untouched() {
    let LinkCase {
        dir,
        source,
        target,
        store,
        outside,
        before,
        ..
    } = LinkCase::new();
    docs_source(&source);
    let snapshot = snapshot_of(&store, &source).await;

    // Planted: the file's name links to a file outside, a missing file's name to a path
    // outside that does not exist yet, and the folder `docs` itself to a file outside.
    std::fs::create_dir_all(target.join("docs/sub")).unwrap();
    std::os::unix::fs::symlink(outside.join("a.pdf"), target.join("docs/a.pdf")).unwrap();
    std::os::unix::fs::symlink(outside.join("new.txt"), target.join("docs/sub/b.txt")).unwrap();
    let refused = restore_into(&store, &snapshot, &target, &["docs/a.pdf"], false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&target.join("docs/a.pdf").display().to_string()),
        "{refused}"
    );
    restore_into(&store, &snapshot, &target, &[], true)
        .await
        .unwrap();
    assert_eq!(outside_state(&outside), before, "outside changed");
    assert_eq!(describe(&target), describe(&source));

    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::os::unix::fs::symlink(outside.join("a.pdf"), other.join("docs")).unwrap();
    restore_into(&store, &snapshot, &other, &[], true)
        .await
        .unwrap();
    assert_eq!(outside_state(&outside), before, "outside changed");
    assert_eq!(describe(&other), describe(&source));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_above_a_restored_path_is_refused_by_name() {
    let LinkCase {
        dir: _dir,
        source,
        target,
        store,
        store_dir,
        outside,
        before,
        ..
    } = LinkCase::new();
    docs_source(&source);
    let snapshot = snapshot_of(&store, &source).await;

    // One file or folder restored alone: its parent folders are not in the selection, so a
    // link among them is the target's own, never replaced and never followed, even with
    // --overwrite.
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&outside, target.join("docs")).unwrap();
    for path in ["docs/sub/b.txt", "docs/sub"] {
        for overwrite in [false, true] {
            let refused = restore_into(&store, &snapshot, &target, &[path], overwrite)
                .await
                .unwrap_err()
                .to_string();
            assert!(
                refused.contains(&target.join("docs").display().to_string())
                    && refused.contains("link"),
                "{path}: {refused}"
            );
            assert_eq!(outside_state(&outside), before, "{path}: outside changed");
        }
    }
    assert_eq!(std::fs::read_link(target.join("docs")).unwrap(), outside);

    // Through the command line too, with the path in the one error line.
    let output = run_cli(
        &[
            "files",
            "restore",
            "--store",
            store_dir.to_str().unwrap(),
            "--to",
            target.to_str().unwrap(),
            "--path",
            "docs/sub/b.txt",
            "--overwrite",
        ],
        &[],
    );
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&target.join("docs").display().to_string()),
        "{}",
        text(&output)
    );
    assert_eq!(outside_state(&outside), before, "outside changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_the_restore_itself_made_is_never_followed() {
    use toc_sis_backup::files::snapshot::{Entry, EntryKind};
    use toc_sis_backup::files::RawPath;
    let LinkCase {
        dir: _dir,
        source,
        target,
        store,
        outside,
        before,
        ..
    } = LinkCase::new();
    docs_source(&source);
    let mut snapshot = snapshot_of(&store, &source).await;

    // A hand-made manifest: a link `escape` to the outside folder, then a link below it.
    let link = |path: &str, to: &[u8]| Entry {
        path: RawPath::from(path),
        kind: EntryKind::Symlink,
        size: 0,
        mode: 0o777,
        mtime_ns: 0,
        sha256: None,
        target: Some(RawPath::from_bytes(to)),
        change: None,
    };
    snapshot.entries.push(link(
        "escape",
        std::os::unix::ffi::OsStrExt::as_bytes(outside.as_os_str()),
    ));
    snapshot
        .entries
        .push(link("escape/planted", b"/etc/passwd"));
    let refused = restore_into(&store, &snapshot, &target, &[], false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&target.join("escape").display().to_string()),
        "{refused}"
    );
    assert_eq!(outside_state(&outside), before, "outside changed");
    // The snapshot's own link is restored as a link.
    assert_eq!(std::fs::read_link(target.join("escape")).unwrap(), outside);
}
