//! Applying one backup file: stream it from the store, check its hash, split it into
//! statements off the async threads, and run them in order on one connection.

use std::collections::VecDeque;
use std::io::{self, Read};

use bytes::Bytes;
use futures::StreamExt;

use flate2::read::MultiGzDecoder;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use super::definer::DefinerMode;
use super::infile;
use super::progress;
use crate::error::{Error, Result};
use crate::manifest::FileEntry;
use crate::mysql::definition;
use crate::mysql::splitter::{Splitter, Statement};
use crate::store::ObjectStore;
use crate::verify::HashingReader;

const READ_CHUNK: usize = 256 * 1024;

/// How an object's CREATE statement is made for the target (see [`made_for_the_target`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectRewrite {
    pub definer: DefinerMode,
    /// Events are created DISABLE (a restore into another database than the backup's).
    pub events_disabled: bool,
}

/// What the reading thread hands the connection: statements to run, or rows for a LOAD DATA.
enum Item {
    Statement(Statement),
    /// Starts a LOAD DATA (the statement); the `Rows` after it are its input.
    Load(Vec<u8>),
    Rows(Vec<u8>),
}

/// How statements reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loading {
    /// Every statement as written.
    Statements,
    /// Runs of the dump's INSERTs into one table as one `LOAD DATA LOCAL INFILE` each (the
    /// server must allow `local_infile`), other statements as written.
    LoadData,
}

/// Loads `file` on `conn`. With a `step`, the file's completion is recorded in the restore's
/// progress table inside the file's own transaction, just before its COMMIT; returns whether
/// that happened (files without a transaction of their own are recorded by the caller).
/// An object's CREATE statement is made for the connection's database (see
/// [`made_for_the_target`]); `DefinerMode::Current` also takes its DEFINER clause out,
/// counting each in `rewritten`.
#[allow(clippy::too_many_arguments)]
pub async fn apply_file(
    store: &dyn ObjectStore,
    prefix: &str,
    file: &FileEntry,
    conn: &mut Conn,
    step: Option<&str>,
    rewrite: ObjectRewrite,
    rewritten: &mut usize,
    loading: Loading,
) -> Result<bool> {
    let key = format!("{prefix}{}", file.name);
    let reader = store.open(&key).await?;
    let (to_runner, mut items) = mpsc::channel::<Result<Vec<Item>>>(4);
    let expected_sha = file.sha256.clone();
    let expected_bytes = file.bytes;
    let name = file.name.clone();

    let reading = tokio::task::spawn_blocking(move || {
        let outcome = (|| -> Result<()> {
            let io_error = |e: io::Error| Error::CorruptFile {
                file: name.clone(),
                detail: format!("cannot be read as gzip: {e}"),
            };
            let hashing = HashingReader::new(SyncIoBridge::new(reader));
            let mut decoder = MultiGzDecoder::new(hashing);
            let mut splitter = Splitter::default();
            let mut buffer = vec![0u8; READ_CHUNK];
            let mut statements = Vec::new();
            let mut converter = Converter::new(loading);
            loop {
                let n = decoder.read(&mut buffer).map_err(io_error)?;
                if n == 0 {
                    break;
                }
                splitter.push(&buffer[..n], &mut statements);
                if !statements.is_empty()
                    && to_runner
                        .blocking_send(Ok(converter.items(std::mem::take(&mut statements))))
                        .is_err()
                {
                    return Ok(()); // the runner stopped and reports why
                }
            }
            splitter
                .finish(&mut statements)
                .map_err(|reason| Error::MalformedSql {
                    file: name.clone(),
                    reason,
                })?;
            // The file was verified before loading; this catches a change since.
            decoder
                .into_inner()
                .check(&name, expected_bytes, &expected_sha)?;
            if !statements.is_empty() {
                let _ = to_runner.blocking_send(Ok(converter.items(statements)));
            }
            Ok(())
        })();
        if let Err(e) = outcome {
            let _ = to_runner.blocking_send(Err(e));
        }
    });

    let mut index = 0usize;
    let mut recorded = false;
    let mut pending: VecDeque<Item> = VecDeque::new();
    let statement_error = |index: usize| {
        move |source| Error::Statement {
            file: file.name.clone(),
            index,
            source,
        }
    };
    while let Some(item) = next_item(&mut pending, &mut items).await? {
        index += 1;
        match item {
            Item::Statement(Statement { sql, dialect }) => {
                if let Some(step) = step.filter(|_| sql.eq_ignore_ascii_case(b"COMMIT")) {
                    progress::mark(conn, step, None).await?;
                    recorded = true;
                }
                let sql = made_for_the_target(sql, dialect, rewrite, rewritten);
                conn.query_drop(sql).await.map_err(statement_error(index))?;
            }
            Item::Load(statement) => {
                load_rows(conn, statement, &mut pending, &mut items)
                    .await
                    .map_err(|e| match e {
                        LoadFailure::Server(source) => statement_error(index)(source),
                        LoadFailure::Input(e) => e,
                    })?;
                if conn.get_warnings() > 0 {
                    refuse_changed_rows(conn, &file.name, index).await?;
                }
            }
            Item::Rows(_) => {
                return Err(Error::Task(format!(
                    "rows for LOAD DATA without their statement in {}",
                    file.name
                )))
            }
        }
    }
    reading.await?;
    Ok(recorded)
}

/// An object's CREATE statement as it is run on a connection to the target database: the
/// database names in its head taken out (a trigger recorded as `CREATE TRIGGER app.x … ON
/// app.t` would otherwise be created in `app`, not in the target), with
/// `DefinerMode::Current` its DEFINER clause too, and an event DISABLE where asked. Any other
/// statement (a table's, data) is run byte for byte.
fn made_for_the_target(
    sql: Vec<u8>,
    dialect: crate::mysql::lexer::Dialect,
    rewrite: ObjectRewrite,
    rewritten: &mut usize,
) -> Vec<u8> {
    // Object statements start with CREATE (or a comment); data statements (most of a
    // restore) never do, and are not read again.
    if !matches!(sql.first(), Some(b'C' | b'c' | b'-' | b'#' | b'/')) {
        return sql;
    }
    // A definition written in its own client character set (not UTF-8) is read byte by byte.
    let (text, utf8) = crate::mysql::lexer::text_of(&sql);
    let text = text.as_str();
    let mut changed = definition::without_database_names(text, dialect);
    if rewrite.events_disabled {
        let current = changed.as_deref().unwrap_or(text);
        if let Some(disabled) = definition::event_with_status(current, dialect, false) {
            changed = Some(disabled);
        }
    }
    if rewrite.definer == DefinerMode::Current {
        let current = changed.as_deref().unwrap_or(text);
        if let Some(stripped) = definition::without_definer(current, dialect) {
            *rewritten += 1;
            changed = Some(stripped);
        }
    }
    match changed {
        Some(text) => crate::mysql::lexer::bytes_of(&text, utf8),
        None => sql,
    }
}

/// Fails with the warnings of the LOAD DATA just run, if any is more than a note. LOAD DATA
/// LOCAL reads a row the server refuses (a value out of range, a NULL made a new
/// AUTO_INCREMENT number) as a warning and skips or changes the row, where the INSERT it
/// stands for would have failed.
async fn refuse_changed_rows(conn: &mut Conn, file: &str, index: usize) -> Result<()> {
    let warnings: Vec<(String, u32, String)> = conn
        .query("SHOW WARNINGS LIMIT 5")
        .await
        .map_err(|e| Error::database(format!("reading the warnings of loading {file}"), e))?;
    let serious: Vec<String> = warnings
        .into_iter()
        .filter(|(level, _, _)| !level.eq_ignore_ascii_case("Note"))
        .map(|(level, code, message)| format!("{level} {code}: {message}"))
        .collect();
    if serious.is_empty() {
        return Ok(());
    }
    Err(Error::RowsChangedByLoad {
        file: file.to_string(),
        index,
        warnings: serious.join("; "),
    })
}

/// The next item: from `pending` (items received but not used yet), else the next batch.
async fn next_item(
    pending: &mut VecDeque<Item>,
    items: &mut mpsc::Receiver<Result<Vec<Item>>>,
) -> Result<Option<Item>> {
    loop {
        if let Some(item) = pending.pop_front() {
            return Ok(Some(item));
        }
        match items.recv().await {
            Some(batch) => pending.extend(batch?),
            None => return Ok(None),
        }
    }
}

enum LoadFailure {
    Server(mysql_async::Error),
    Input(Error),
}

/// Runs one LOAD DATA, its input the `Rows` items that follow it (taken from `pending`, then
/// from `items`), ended by the first item that is not rows.
async fn load_rows(
    conn: &mut Conn,
    statement: Vec<u8>,
    pending: &mut VecDeque<Item>,
    items: &mut mpsc::Receiver<Result<Vec<Item>>>,
) -> std::result::Result<(), LoadFailure> {
    let (rows, input) = mpsc::channel::<io::Result<Bytes>>(4);
    conn.set_infile_handler(async move {
        Ok(futures::stream::unfold(input, |mut input| async move {
            input.recv().await.map(|chunk| (chunk, input))
        })
        .boxed())
    });
    let feed = async move {
        loop {
            match next_item(pending, items).await {
                Ok(Some(Item::Rows(bytes))) => {
                    if rows.send(Ok(Bytes::from(bytes))).await.is_err() {
                        return Ok(()); // the LOAD ended; its answer says why
                    }
                }
                Ok(Some(other)) => {
                    pending.push_front(other);
                    return Ok(());
                }
                Ok(None) => return Ok(()),
                Err(e) => {
                    // Cut the input short with an error: the server then ends the LOAD and
                    // the file's transaction is never committed.
                    let _ = rows.send(Err(io::Error::other(e.to_string()))).await;
                    return Err(e);
                }
            }
        }
    };
    let load = conn.query_drop(statement);
    tokio::pin!(feed);
    tokio::pin!(load);
    tokio::select! {
        // The server answered before its input ended: refused, or failed part way.
        answer = &mut load => answer.map_err(LoadFailure::Server),
        fed = &mut feed => {
            fed.map_err(LoadFailure::Input)?;
            load.await.map_err(LoadFailure::Server)
        }
    }
}

/// Turns statements into items: with `Loading::LoadData`, each run of convertible INSERTs into
/// the same table and columns becomes one LOAD DATA and its rows.
struct Converter {
    loading: Loading,
    /// The LOAD DATA statement of the run in progress.
    current: Option<Vec<u8>>,
}

impl Converter {
    fn new(loading: Loading) -> Self {
        Converter {
            loading,
            current: None,
        }
    }

    fn items(&mut self, statements: Vec<Statement>) -> Vec<Item> {
        let mut items = Vec::with_capacity(statements.len() + 1);
        for statement in statements {
            if self.loading == Loading::LoadData {
                if let Some(insert) = infile::parse_insert(&statement.sql) {
                    let mut rows = Vec::with_capacity(statement.sql.len());
                    if infile::rows_from_values(insert.values, &mut rows).is_some() {
                        let load = infile::load_statement(insert.table, insert.columns);
                        if self.current.as_ref() != Some(&load) {
                            self.current = Some(load.clone());
                            items.push(Item::Load(load));
                        }
                        items.push(Item::Rows(rows));
                        continue;
                    }
                }
            }
            self.current = None;
            items.push(Item::Statement(statement));
        }
        items
    }
}

/// A small stored file (object definitions, accounts) read whole, checked against its manifest
/// entry and split into statements, for the steps that look at statements before running
/// them.
pub(super) async fn read_statements(
    store: &dyn ObjectStore,
    prefix: &str,
    file: &FileEntry,
) -> Result<Vec<Statement>> {
    use tokio::io::AsyncReadExt;
    let mut compressed = Vec::new();
    store
        .open(&format!("{prefix}{}", file.name))
        .await?
        .read_to_end(&mut compressed)
        .await
        .map_err(|e| Error::CorruptFile {
            file: file.name.clone(),
            detail: format!("cannot be read: {e}"),
        })?;
    HashingReader::new(&compressed[..]).check(&file.name, file.bytes, &file.sha256)?;
    let mut text = Vec::new();
    MultiGzDecoder::new(&compressed[..])
        .read_to_end(&mut text)
        .map_err(|e| Error::CorruptFile {
            file: file.name.clone(),
            detail: format!("cannot be read as gzip: {e}"),
        })?;
    let mut statements = Vec::new();
    let mut splitter = Splitter::default();
    splitter.push(&text, &mut statements);
    splitter
        .finish(&mut statements)
        .map_err(|reason| Error::MalformedSql {
            file: file.name.clone(),
            reason,
        })?;
    Ok(statements)
}
