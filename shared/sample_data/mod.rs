//! A realistic, deterministic TOC-SIS database for demos, tests and the benchmark.
//!
//! Scale 1 is a small college (1,000 students, a few MB); the data grows linearly with the
//! scale. The same seed and scale always give the same rows.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use serde::Serialize;

use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::mysql::splitter::Splitter;
use crate::mysql::values::{write_literal, ColumnKind};
use crate::mysql::{self as db, quote_ident};

mod activity;
mod generate;
mod values;

pub const SCHEMA_SQL: &str = include_str!("schema.sql");

#[derive(Debug, Clone, Serialize)]
pub struct SampleReport {
    pub database: String,
    pub scale: u32,
    pub seed: u64,
    pub students: u64,
    pub grade_records: u64,
    pub rows: u64,
}

/// Creates the sample database named in `url` (it must not hold tables unless `replace`).
pub async fn create_sample(
    url: &DatabaseUrl,
    scale: u32,
    seed: u64,
    replace: bool,
) -> Result<SampleReport> {
    if scale == 0 {
        return Err(Error::InvalidValue {
            what: "scale",
            value: "0".into(),
            expected: "a whole number of at least 1".into(),
        });
    }
    let database = url.require_database()?.to_string();
    let mut admin = db::connect(url, None).await?;
    let existing: Option<u64> = admin
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
            (&database,),
        )
        .await
        .map_err(|e| Error::database("inspecting the target database", e))?;
    if existing.unwrap_or(0) > 0 {
        if !replace {
            return Err(Error::TargetNotEmpty {
                database,
                flag: "--replace",
            });
        }
        admin
            .query_drop(format!("DROP DATABASE {}", quote_ident(&database)))
            .await
            .map_err(|e| Error::database(format!("dropping `{database}`"), e))?;
    }
    admin
        .query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            quote_ident(&database)
        ))
        .await
        .map_err(|e| Error::database(format!("creating `{database}`"), e))?;
    let _ = admin.disconnect().await;

    let mut conn = db::connect(url, Some(&database)).await?;
    run_script(&mut conn, "sample_data/schema.sql", SCHEMA_SQL).await?;
    db::run_all(
        &mut conn,
        &[
            "SET SESSION foreign_key_checks = 0",
            "SET SESSION time_zone = '+00:00'",
        ],
    )
    .await?;
    let report = generate::generate(&mut conn, scale, seed, &database).await?;
    let _ = conn.disconnect().await;
    Ok(report)
}

/// Runs a script of statements (DELIMITER-aware) on one connection.
pub async fn run_script(conn: &mut Conn, name: &str, script: &str) -> Result<()> {
    let mut splitter = Splitter::default();
    let mut statements = Vec::new();
    splitter.push(script.as_bytes(), &mut statements);
    splitter
        .finish(&mut statements)
        .map_err(|reason| Error::MalformedSql {
            file: name.into(),
            reason,
        })?;
    for (index, statement) in statements.into_iter().enumerate() {
        conn.query_drop(statement.sql)
            .await
            .map_err(|source| Error::Statement {
                file: name.into(),
                index: index + 1,
                source,
            })?;
    }
    Ok(())
}

/// Collects rows into multi-row INSERTs of about half a megabyte.
pub(crate) struct Inserter<'a> {
    conn: &'a mut Conn,
    prefix: String,
    kinds: Vec<ColumnKind>,
    buffer: Vec<u8>,
    rows: u64,
}

impl<'a> Inserter<'a> {
    pub(crate) fn new(conn: &'a mut Conn, table: &str, columns: &[(&str, ColumnKind)]) -> Self {
        let names: Vec<String> = columns.iter().map(|(n, _)| quote_ident(n)).collect();
        Inserter {
            conn,
            prefix: format!(
                "INSERT INTO {} ({}) VALUES ",
                quote_ident(table),
                names.join(",")
            ),
            kinds: columns.iter().map(|(_, k)| *k).collect(),
            buffer: Vec::new(),
            rows: 0,
        }
    }

    pub(crate) async fn row(&mut self, values: Vec<Value>) -> Result<()> {
        if self.buffer.is_empty() {
            self.buffer.extend_from_slice(self.prefix.as_bytes());
        } else {
            self.buffer.push(b',');
        }
        self.buffer.push(b'(');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.buffer.push(b',');
            }
            write_literal(&mut self.buffer, self.kinds[i], value);
        }
        self.buffer.push(b')');
        self.rows += 1;
        if self.buffer.len() > 512 * 1024 {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let statement = std::mem::take(&mut self.buffer);
        self.conn
            .query_drop(statement)
            .await
            .map_err(|e| Error::database("inserting sample rows", e))
    }

    pub(crate) async fn done(mut self) -> Result<u64> {
        self.flush().await?;
        Ok(self.rows)
    }
}
