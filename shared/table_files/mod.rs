//! Writing a table's rows into backup files, shared by the full dump and the incremental: the
//! snapshot they read, the one row loop, the INSERT files and key states it writes, which
//! tables an incremental can track (scope), and how the files are named.

pub mod data_files;
pub mod keys;
pub mod rows;
pub mod scope;
pub mod snapshot;
pub mod sql_file;
pub mod state;

use std::sync::Arc;

use crate::error::Result;
use crate::manifest::{FileEntry, Stage};
use crate::store::ObjectStore;
use sql_file::{SqlFile, StoredFile, Uploads};

pub(crate) fn entry(
    file: StoredFile,
    stage: Stage,
    table: Option<String>,
    prefix: &str,
) -> (FileEntry, StoredFile) {
    let name = file
        .key
        .strip_prefix(prefix)
        .unwrap_or(&file.key)
        .to_string();
    (
        FileEntry {
            name,
            stage,
            table,
            bytes: file.bytes,
            uncompressed_bytes: file.uncompressed_bytes,
            sha256: file.sha256.clone(),
        },
        file,
    )
}

/// Names files so that plain `ls` order is restore order in any locale: every SQL file name
/// starts with the same fixed-width run of digits (stage, table number, part number).
pub(crate) struct FileNamer {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: String,
    /// Where key states go: apart from the backup (`layout::key_state_prefix`).
    pub(crate) state_prefix: String,
    pub(crate) level: u32,
    pub(crate) uploads: Uploads,
}

impl FileNamer {
    pub(crate) async fn create(
        &self,
        digit: u8,
        table_number: usize,
        part: usize,
        label: &str,
    ) -> Result<SqlFile> {
        let name = format!(
            "{digit}-{table_number:05}-{part:06}-{}.sql.gz",
            safe_label(label)
        );
        self.create_named(&name).await
    }

    /// The accounts file; not `*.sql.gz`, so only `restore --with-accounts` loads it.
    pub(crate) async fn create_accounts(&self) -> Result<SqlFile> {
        self.create_named("accounts.gz").await
    }

    /// A table's key state, under the state prefix; not SQL either.
    pub(crate) async fn create_state(&self, table_number: usize, label: &str) -> Result<SqlFile> {
        let name = format!("state-{table_number:05}-{}.keys.gz", safe_label(label));
        self.create_under(&self.state_prefix, &name).await
    }

    async fn create_named(&self, name: &str) -> Result<SqlFile> {
        self.create_under(&self.prefix, name).await
    }

    async fn create_under(&self, prefix: &str, name: &str) -> Result<SqlFile> {
        SqlFile::create(
            self.store.clone(),
            format!("{prefix}{name}"),
            self.level,
            &self.uploads,
        )
        .await
    }
}

fn safe_label(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    if cleaned.is_empty() {
        "_".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_safe_file_name_parts() {
        assert_eq!(safe_label("student grade`records"), "student_grade_records");
        assert_eq!(safe_label("Ádh"), "_dh");
        assert_eq!(safe_label(""), "_");
    }
}
