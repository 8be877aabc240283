//! `manifest.json`: the record that makes a set of files a backup.
//!
//! Written last, after every file it lists has been stored and re-read. It carries a SHA-256 of
//! its own content, so a flipped byte in the manifest is caught like one in any other file.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
// The kinds of schema object are the database's; a manifest lists them.
pub use crate::mysql::objects::{object_key, ObjectKind};

pub const FORMAT: &str = "toc-sis-backup/manifest";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub backup_id: String,
    pub kind: BackupKind,
    pub label: Option<String>,
    /// Incrementals: the link this one follows (a full backup or an incremental).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Incrementals: the full backup the chain starts at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_root: Option<String>,
    pub database: String,
    pub started_at: String,
    pub finished_at: String,
    pub tool_version: String,
    pub server: ServerInfo,
    pub snapshot: SnapshotPosition,
    /// Tables whose engine cannot take part in a consistent snapshot (MyISAM, Aria, …): their
    /// rows may be from a slightly different moment than the rest.
    pub not_snapshot_consistent: Vec<String>,
    pub files: Vec<FileEntry>,
    pub tables: Vec<TableEntry>,
    pub objects: Vec<ObjectEntry>,
    /// Why the accounts file is missing from a full backup (the backup user cannot read the
    /// grant tables); absent when it was recorded, and in backups from before accounts were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts_not_recorded: Option<String>,
    /// The key states (`Stage::State` files) live under `database/key-states/<id>/`, not with
    /// the backup, and may be gone: only the chain's next incremental reads them, and rebuilds
    /// a table's when it is. Absent (false) in older backups, whose states are in their folder.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub key_states_apart: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    Full,
    Incremental,
}

impl BackupKind {
    pub fn label(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Incremental => "incremental",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerInfo {
    pub version: String,
    pub default_character_set: String,
    pub default_collation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SnapshotPosition {
    /// The database clock when the snapshot was opened (UTC).
    pub database_time: String,
    pub binlog_file: Option<String>,
    pub binlog_position: Option<u64>,
    pub gtid: Option<String>,
    /// True when the position is the snapshot's own (MariaDB `binlog_snapshot_*`), false when
    /// it was read next to it and may be slightly later.
    pub position_is_exact: bool,
    /// True when `gtid` is the snapshot's own GTID set (MariaDB's exact position, or MySQL's
    /// `gtid_executed` unchanged across the opening of the snapshots).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gtid_is_exact: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Schema,
    Data,
    Routines,
    Views,
    Triggers,
    Events,
    /// Incrementals: rows deleted or about to be rewritten, removed by key.
    Deletes,
    /// Incrementals: inserted and changed rows.
    Changes,
    /// A table's key state (not SQL; read by the next incremental).
    State,
    /// The accounts and grants on the database (loaded only by `restore --with-accounts`).
    Accounts,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Schema,
        Stage::Data,
        Stage::Routines,
        Stage::Views,
        Stage::Triggers,
        Stage::Events,
    ];

    /// The digit that makes file names sort into restore order.
    pub fn digit(self) -> u8 {
        self as u8
    }

    pub fn label(self) -> &'static str {
        match self {
            Stage::Schema => "schema",
            Stage::Data => "data",
            Stage::Routines => "routines",
            Stage::Views => "views",
            Stage::Triggers => "triggers",
            Stage::Events => "events",
            Stage::Deletes => "deletes",
            Stage::Changes => "changes",
            Stage::State => "state",
            Stage::Accounts => "accounts",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub name: String,
    pub stage: Stage,
    pub table: Option<String>,
    pub bytes: u64,
    pub uncompressed_bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableEntry {
    pub name: String,
    pub engine: String,
    pub rows: u64,
    /// Order-independent hash of every dumped row's values; see `mysql::fingerprint`.
    pub fingerprint: String,
    /// The row hash `fingerprint` (and the table's key state) was made with; absent in
    /// manifests written before it was recorded, which used SHA-256 (see [`Self::row_hash`]).
    /// Absent stays absent when re-serialized: the manifest's checksum is over its
    /// re-serialization, so a field added with a default would break every older manifest.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "row_hash")]
    pub recorded_row_hash: Option<crate::mysql::fingerprint::RowHash>,
    pub definition_sha256: String,
    /// The table's shape (`mysql::shape`), which an upgraded server reads the same where its
    /// `SHOW CREATE` text differs; absent in manifests written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape_sha256: Option<String>,
    /// A system-versioned table (its rows include history): what the binlog archive, which
    /// cannot read the schema as its least-privileged user, knows a deletion in it means.
    /// Absent (false) stays absent, for the checksum of older manifests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system_versioned: bool,
}

impl TableEntry {
    /// How this table's rows were hashed.
    pub fn row_hash(&self) -> crate::mysql::fingerprint::RowHash {
        self.recorded_row_hash.unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectEntry {
    pub kind: ObjectKind,
    pub name: String,
    pub definition_sha256: String,
    /// The same hash with the DEFINER clause taken out: what a restore with `--definer
    /// current` is compared with (absent in backups made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_sha256_any_definer: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Integrity {
    pub sha256: String,
}

impl Manifest {
    /// Where this backup's files live in the store.
    pub fn prefix(&self) -> String {
        match self.kind {
            BackupKind::Full => crate::layout::backup_prefix(&self.backup_id),
            BackupKind::Incremental => crate::layout::incremental_prefix(&self.backup_id),
        }
    }

    /// Where `file` of this backup is stored.
    pub fn file_key(&self, file: &FileEntry) -> String {
        match (file.stage, self.key_states_apart) {
            (Stage::State, true) => {
                format!(
                    "{}{}",
                    crate::layout::key_state_prefix(&self.backup_id),
                    file.name
                )
            }
            _ => format!("{}{}", self.prefix(), file.name),
        }
    }

    /// The files a restore, a verification and the years-long archive need: every file but
    /// the key states kept apart (which may be gone by design).
    pub fn kept_files(&self) -> impl Iterator<Item = &FileEntry> {
        self.files
            .iter()
            .filter(|f| !(self.key_states_apart && f.stage == Stage::State))
    }

    /// The backup's size: its kept files (key states kept apart are not the backup).
    pub fn total_bytes(&self) -> u64 {
        self.kept_files().map(|f| f.bytes).sum()
    }

    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    fn content_hash(&self) -> Result<String> {
        let mut unsealed = self.clone();
        unsealed.integrity = None;
        let bytes = serde_json::to_vec(&unsealed).map_err(|e| Error::InvalidManifest {
            key: self.backup_id.clone(),
            reason: e.to_string(),
        })?;
        Ok(hex::encode(Sha256::digest(bytes)))
    }

    /// Serializes with the self-checksum filled in.
    pub fn seal(mut self) -> Result<Vec<u8>> {
        self.integrity = Some(Integrity {
            sha256: self.content_hash()?,
        });
        let mut bytes = serde_json::to_vec_pretty(&self).map_err(|e| Error::InvalidManifest {
            key: self.backup_id.clone(),
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// Parses and checks a stored manifest; `key` names it in errors.
    pub fn open(key: &str, bytes: &[u8]) -> Result<Manifest> {
        let invalid = |reason: String| Error::InvalidManifest {
            key: key.to_string(),
            reason,
        };
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("unreadable JSON: {e}")))?;
        if manifest.format != FORMAT {
            return Err(invalid(format!(
                "format {:?}, expected {FORMAT:?}",
                manifest.format
            )));
        }
        if manifest.version != VERSION {
            return Err(invalid(format!(
                "version {}, this tool reads version {VERSION}",
                manifest.version
            )));
        }
        let recorded = manifest
            .integrity
            .as_ref()
            .ok_or_else(|| invalid("no integrity checksum".into()))?
            .sha256
            .clone();
        let actual = manifest.content_hash()?;
        if recorded != actual {
            // The checksum is over what this tool re-serializes; fields it does not know
            // (written by a newer version) are dropped on the way, which is not damage.
            if let Some(field) = unknown_field(bytes, &manifest) {
                return Err(invalid(format!(
                    "it was written by a newer toc-backup (field `{field}` is unknown to version {}); upgrade toc-backup to read it",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            return Err(invalid(format!(
                "checksum mismatch (recorded {recorded}, content hashes to {actual}): the manifest was altered or damaged"
            )));
        }
        Ok(manifest)
    }
}

/// The first field path in the stored JSON that this tool's model of it lacks.
fn unknown_field(bytes: &[u8], parsed: &Manifest) -> Option<String> {
    fn walk(stored: &serde_json::Value, known: &serde_json::Value, path: &str) -> Option<String> {
        use serde_json::Value;
        match (stored, known) {
            (Value::Object(stored), Value::Object(known)) => {
                stored.iter().find_map(|(key, value)| {
                    let here = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match known.get(key) {
                        None => Some(here),
                        Some(known_value) => walk(value, known_value, &here),
                    }
                })
            }
            (Value::Array(stored), Value::Array(known)) => stored
                .iter()
                .zip(known)
                .find_map(|(s, k)| walk(s, k, &format!("{path}[]"))),
            _ => None,
        }
    }
    let stored: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let known = serde_json::to_value(parsed).ok()?;
    walk(&stored, &known, "")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            backup_id: "20261126T020000Z-abcd".into(),
            kind: BackupKind::Full,
            label: None,
            parent: None,
            chain_root: None,
            database: "toc_sis".into(),
            started_at: "2026-11-26T02:00:00Z".into(),
            finished_at: "2026-11-26T02:01:00Z".into(),
            tool_version: "0.1.0".into(),
            server: ServerInfo {
                version: "10.11".into(),
                default_character_set: "utf8mb4".into(),
                default_collation: "utf8mb4_general_ci".into(),
            },
            snapshot: SnapshotPosition {
                database_time: "2026-11-26 02:00:00".into(),
                binlog_file: Some("mysql-bin.000001".into()),
                binlog_position: Some(42),
                gtid: None,
                position_is_exact: true,
                gtid_is_exact: false,
            },
            not_snapshot_consistent: vec![],
            files: vec![FileEntry {
                name: "0-00000-000000-schema.sql.gz".into(),
                stage: Stage::Schema,
                table: None,
                bytes: 10,
                uncompressed_bytes: 20,
                sha256: "00".into(),
            }],
            tables: vec![],
            objects: vec![],
            accounts_not_recorded: None,
            key_states_apart: false,
            integrity: None,
        }
    }

    #[test]
    fn key_states_kept_apart_are_found_apart_and_are_not_the_backup() {
        let mut manifest = sample();
        let state = FileEntry {
            name: "state-00001-t.keys.gz".into(),
            stage: Stage::State,
            table: Some("t".into()),
            bytes: 10,
            uncompressed_bytes: 20,
            sha256: "0".repeat(64),
        };
        manifest.files.push(state.clone());
        let before = manifest.total_bytes();
        assert_eq!(
            manifest.file_key(&state),
            format!(
                "database/daily/{}/state-00001-t.keys.gz",
                manifest.backup_id
            )
        );
        assert!(manifest.kept_files().any(|f| f.stage == Stage::State));
        manifest.key_states_apart = true;
        assert_eq!(
            manifest.file_key(&state),
            format!(
                "database/key-states/{}/state-00001-t.keys.gz",
                manifest.backup_id
            )
        );
        assert!(!manifest.kept_files().any(|f| f.stage == Stage::State));
        assert_eq!(manifest.total_bytes(), before - 10);
        // Older manifests have no such field and keep their checksum.
        let sealed = sample().seal().expect("seal");
        assert!(!String::from_utf8_lossy(&sealed).contains("key_states_apart"));
    }

    #[test]
    fn sealed_manifest_round_trips() {
        let bytes = sample().seal().unwrap();
        let opened = Manifest::open("m", &bytes).unwrap();
        assert_eq!(opened.backup_id, "20261126T020000Z-abcd");
    }

    #[test]
    fn any_changed_value_is_detected() {
        let bytes = sample().seal().unwrap();
        let text = String::from_utf8(bytes)
            .unwrap()
            .replace("\"bytes\": 10", "\"bytes\": 11");
        let error = Manifest::open("m", text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.contains("checksum mismatch"), "{error}");
    }

    /// A manifest written before the row hash, the DEFINER-free object hash and the GTID
    /// exactness were recorded must still open: its checksum is over its re-serialization, so
    /// fields added since must re-serialize to nothing when absent.
    #[test]
    fn a_manifest_from_before_the_newer_fields_still_opens() {
        let mut old = sample();
        old.tables = vec![serde_json::from_str(
            r#"{"name":"t","engine":"InnoDB","rows":1,"fingerprint":"00","definition_sha256":"00"}"#,
        )
        .unwrap()];
        old.objects =
            vec![
                serde_json::from_str(r#"{"kind":"view","name":"v","definition_sha256":"00"}"#)
                    .unwrap(),
            ];
        let bytes = old.seal().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        for newer in ["row_hash", "definition_sha256_any_definer", "gtid_is_exact"] {
            assert!(
                !text.contains(newer),
                "{newer} written for an old manifest:\n{text}"
            );
        }
        let opened = Manifest::open("m", &bytes).unwrap();
        assert_eq!(
            opened.tables[0].row_hash(),
            crate::mysql::fingerprint::RowHash::Sha256
        );
    }

    /// A newer tool seals a manifest with a field this one does not know: the checksum then
    /// covers bytes this tool cannot re-serialize, and the error must say so, not "damaged".
    #[test]
    fn a_manifest_from_a_newer_version_is_named_as_such_not_as_damaged() {
        #[derive(Serialize)]
        struct Newer {
            #[serde(flatten)]
            base: Manifest,
            from_the_future: u32,
        }
        let mut newer = Newer {
            base: sample(),
            from_the_future: 1,
        };
        let hash = hex::encode(Sha256::digest(serde_json::to_vec(&newer).unwrap()));
        newer.base.integrity = Some(Integrity { sha256: hash });
        let bytes = serde_json::to_vec_pretty(&newer).unwrap();
        let error = Manifest::open("m", &bytes).unwrap_err().to_string();
        assert!(
            error.contains("written by a newer toc-backup") && error.contains("from_the_future"),
            "{error}"
        );
        let damaged = String::from_utf8(sample().seal().unwrap())
            .unwrap()
            .replace("\"rows\": 0", "\"rows\": 1")
            .replace("\"bytes\": 10", "\"bytes\": 11");
        let error = Manifest::open("m", damaged.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(error.contains("altered or damaged"), "{error}");
    }

    /// Manifests written before the row hash was recorded were all SHA-256.
    #[test]
    fn a_table_without_a_recorded_row_hash_was_hashed_with_sha256() {
        use crate::mysql::fingerprint::RowHash;
        let old: TableEntry = serde_json::from_str(
            r#"{"name":"t","engine":"InnoDB","rows":1,"fingerprint":"00","definition_sha256":"00"}"#,
        )
        .unwrap();
        assert_eq!(old.row_hash(), RowHash::Sha256);
        let new = TableEntry {
            recorded_row_hash: Some(RowHash::CURRENT),
            ..old
        };
        let text = serde_json::to_string(&new).unwrap();
        assert!(text.contains(r#""row_hash":"xxh3-128""#), "{text}");
    }
}
