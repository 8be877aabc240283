//! Generated folder trees for the file-backup tests, and a byte-for-byte, metadata-for-metadata
//! comparison of two trees.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Deterministic, incompressible-looking bytes (so sizes stored are sizes read).
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(&(state >> 16).to_le_bytes()[..6]);
    }
    out.truncate(len);
    out
}

pub fn write(root: &Path, relative: &[u8], content: &[u8]) -> PathBuf {
    let path = root.join(OsStr::from_bytes(relative));
    std::fs::create_dir_all(path.parent().expect("parent")).expect("create parent");
    std::fs::write(&path, content).expect("write file");
    path
}

fn set_mtime(path: &Path, seconds: i64, nanos: u32) {
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(seconds, nanos))
        .expect("set mtime");
}

/// An application-like tree: nested folders, the strategy document's excluded folders, a
/// 0-byte file, a `big_mb` MiB file, names with spaces, quotes, Unicode and non-UTF-8 bytes,
/// a symlink, odd modes and old modification times.
pub fn application_tree(root: &Path, big_mb: usize) {
    write(root, b"app/Models/Student.php", b"<?php class Student {}\n");
    write(
        root,
        b"app/Models/Grade Record.php",
        b"<?php class GradeRecord {}\n",
    );
    write(
        root,
        b"storage/app/uploads/2026/transcript \"final\".pdf",
        &bytes(1, 40_000),
    );
    write(
        root,
        "storage/app/uploads/2026/Seán Ó Briain – CV.docx".as_bytes(),
        &bytes(2, 12_345),
    );
    write(
        root,
        b"storage/app/uploads/latin1-\xe9t\xe9.txt",
        b"not utf-8 name\n",
    );
    write(root, b"storage/app/empty.txt", b"");
    write(
        root,
        b"storage/app/big/lecture.mp4",
        &bytes(3, big_mb << 20),
    );
    write(root, b"storage/logs/laravel.log", b"excluded log\n");
    write(
        root,
        b"storage/framework/cache/data/ab/cd",
        b"excluded cache\n",
    );
    write(
        root,
        b"storage/framework/sessions/sess_1",
        b"excluded session\n",
    );
    write(
        root,
        b"storage/framework/views/compiled.php",
        b"excluded view\n",
    );
    write(root, b"node_modules/left-pad/index.js", b"excluded\n");
    write(root, b"resources/js/node_modules/x.js", b"excluded\n");
    write(root, b".git/HEAD", b"ref: refs/heads/main\n");
    write(
        root,
        b".github/workflows/ci.yml",
        b"kept: only .git is excluded\n",
    );
    let script = write(root, b"artisan", b"#!/usr/bin/env php\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let secret = write(root, b".env", b"APP_KEY=base64:not-a-real-key\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::create_dir_all(root.join("storage/app/empty folder")).expect("mkdir");
    std::os::unix::fs::symlink("storage/app/uploads", root.join("public-uploads"))
        .expect("symlink");
    set_mtime(
        &root.join("app/Models/Student.php"),
        1_600_000_000,
        123_456_789,
    );
    set_mtime(&root.join("storage/app/empty.txt"), 1_500_000_000, 0);
}

/// The paths the application excludes leave out (their folders stay, empty).
pub const EXCLUDED: &[&str] = &[
    "storage/logs/laravel.log",
    "storage/framework/cache/data",
    "storage/framework/sessions/sess_1",
    "storage/framework/views/compiled.php",
    "node_modules",
    "resources/js/node_modules",
    ".git",
];

#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    File {
        content_sha: String,
        size: u64,
        mode: u32,
        mtime: (i64, i64),
    },
    Dir {
        mode: u32,
    },
    Symlink {
        target: Vec<u8>,
    },
}

/// Every path below `root` with its content hash and metadata (folder times are left out:
/// restoring files into a folder is what sets them last, and they are checked separately).
pub fn describe(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    use sha2::Digest;
    let mut found = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.expect("walk");
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("below root")
            .as_os_str()
            .as_bytes()
            .to_vec();
        let meta = entry.path().symlink_metadata().expect("metadata");
        let node = if meta.file_type().is_symlink() {
            Node::Symlink {
                target: std::fs::read_link(entry.path())
                    .expect("readlink")
                    .as_os_str()
                    .as_bytes()
                    .to_vec(),
            }
        } else if meta.is_dir() {
            Node::Dir {
                mode: meta.mode() & 0o7777,
            }
        } else {
            let content = std::fs::read(entry.path()).expect("read");
            Node::File {
                content_sha: hex::encode(sha2::Sha256::digest(&content)),
                size: meta.len(),
                mode: meta.mode() & 0o7777,
                mtime: (meta.mtime(), meta.mtime_nsec()),
            }
        };
        found.insert(relative, node);
    }
    found
}

/// `describe` without the excluded paths.
pub fn without_excluded(
    mut tree: BTreeMap<Vec<u8>, Node>,
    excluded: &[&str],
) -> BTreeMap<Vec<u8>, Node> {
    tree.retain(|path, _| {
        !excluded.iter().any(|e| {
            path.as_slice() == e.as_bytes()
                || (path.starts_with(e.as_bytes()) && path.get(e.len()) == Some(&b'/'))
        })
    });
    tree
}
