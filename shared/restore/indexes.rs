//! Secondary indexes built after the rows are in, not row by row while they arrive.
//!
//! InnoDB maintains every secondary index on each insert, in random order; building an index
//! over a loaded table sorts once and writes it in order, which is much faster. So after the
//! schema is created, the plain (non-unique) secondary keys of InnoDB tables are dropped from
//! the still-empty tables, and once the data is loaded they are added back, one `ALTER TABLE`
//! per table, tables in parallel. Unique keys stay (they are constraints), and so does any key a
//! foreign key needs (the server refuses to drop it), and every key before it. The keys are
//! added back in their original order, so `SHOW CREATE TABLE` reads as before, which the
//! restore's verification checks.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::on_connections;
use super::session::retrying;
use crate::config::DatabaseUrl;
use crate::error::{Error, Result};
use crate::mysql::quote_ident;

/// A table's keys taken off for the load, as `ADD KEY …` clauses in their original order.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct DeferredKeys {
    table: String,
    clauses: Vec<String>,
}

/// The plain secondary keys in a `SHOW CREATE TABLE` text that no other key follows:
/// (name, definition). Keys added back come after every key that stayed, so a plain key
/// listed before a SPATIAL, FULLTEXT or UNIQUE one must stay too, or the order changes.
fn plain_keys(create: &str) -> Vec<(String, String)> {
    let mut trailing = Vec::new();
    for line in create.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("KEY `") {
            let definition = line.trim_end_matches(',').to_string();
            if let Some((name, _)) = rest.split_once("` (") {
                trailing.push((name.replace("``", "`"), definition));
            }
        } else if is_other_key(line) {
            trailing.clear();
        }
    }
    trailing
}

/// A key line that is not a plain KEY: PRIMARY, UNIQUE, FULLTEXT, SPATIAL, VECTOR, ….
fn is_other_key(line: &str) -> bool {
    !line.starts_with('`')
        && line
            .split_once(' ')
            .is_some_and(|(_, rest)| rest.starts_with("KEY "))
}

fn is_innodb(create: &str) -> bool {
    create
        .lines()
        .last()
        .is_some_and(|line| line.contains("ENGINE=InnoDB"))
}

/// Drops the plain secondary keys of the (empty) `tables`, returning what to add back.
pub(crate) async fn defer(conn: &mut Conn, tables: &[String]) -> Result<Vec<DeferredKeys>> {
    let mut deferred = Vec::new();
    for table in tables {
        let row: Option<(String, String)> = conn
            .query_first(format!("SHOW CREATE TABLE {}", quote_ident(table)))
            .await
            .map_err(|e| Error::database(format!("reading the keys of `{table}`"), e))?;
        let Some((_, create)) = row else { continue };
        if !is_innodb(&create) {
            continue;
        }
        // Keys are listed in the order they were added, and added back after any that stay,
        // so only a run of keys at the end can go: dropped from the last one back, stopping at
        // the first that must stay (a key a foreign key relies on cannot be dropped).
        let mut clauses = Vec::new();
        for (name, definition) in plain_keys(&create).into_iter().rev() {
            let drop = format!(
                "ALTER TABLE {} DROP KEY {}",
                quote_ident(table),
                quote_ident(&name)
            );
            match conn.query_drop(drop).await {
                Ok(()) => clauses.push(format!("ADD {definition}")),
                Err(e) => {
                    tracing::debug!(%table, key = %name, "key kept during the load: {e}");
                    break;
                }
            }
        }
        clauses.reverse();
        if !clauses.is_empty() {
            deferred.push(DeferredKeys {
                table: table.clone(),
                clauses,
            });
        }
    }
    Ok(deferred)
}

/// Adds the deferred keys back, one table per connection at a time.
pub(crate) async fn rebuild(
    url: &DatabaseUrl,
    database: &str,
    jobs: usize,
    deferred: Vec<DeferredKeys>,
) -> Result<()> {
    if deferred.is_empty() {
        return Ok(());
    }
    tracing::info!(tables = deferred.len(), "building secondary indexes");
    on_connections(
        url,
        database,
        jobs,
        deferred,
        |mut session, keys| async move {
            let what = format!("building the indexes of {}", quote_ident(&keys.table));
            let outcome = retrying!(session, &what, |conn, _attempt| async {
                // One ALTER adds all of a table's keys or none: after a lost connection (or in
                // a resumed restore) the first key's presence says which.
                if keys_present(conn, &keys).await? {
                    return Ok(());
                }
                let statement = format!(
                    "ALTER TABLE {} {}",
                    quote_ident(&keys.table),
                    keys.clauses.join(", ")
                );
                conn.query_drop(statement).await.map_err(|e| {
                    Error::database(format!("building the indexes of `{}`", keys.table), e)
                })
            });
            (session, outcome)
        },
    )
    .await
    .map(|_| ())
}

async fn keys_present(conn: &mut Conn, keys: &DeferredKeys) -> Result<bool> {
    let row: Option<(String, String)> = conn
        .query_first(format!("SHOW CREATE TABLE {}", quote_ident(&keys.table)))
        .await
        .map_err(|e| Error::database(format!("reading the keys of `{}`", keys.table), e))?;
    let present: Vec<String> = row
        .map(|(_, create)| {
            plain_keys(&create)
                .into_iter()
                .map(|(name, _)| name)
                .collect()
        })
        .unwrap_or_default();
    Ok(keys.clauses.first().is_some_and(|clause| {
        present
            .iter()
            .any(|name| clause.starts_with(&format!("ADD KEY {}", quote_ident(name))))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_key_before_a_spatial_one_stays() {
        let create = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int(11) DEFAULT NULL,\n  `g` geometry NOT NULL,\n  PRIMARY KEY (`id`),\n  KEY `a` (`a`),\n  SPATIAL KEY `b` (`g`),\n  KEY `c` (`a`,`id`)\n) ENGINE=InnoDB";
        assert_eq!(
            plain_keys(create),
            vec![("c".to_string(), "KEY `c` (`a`,`id`)".to_string())]
        );
    }

    #[test]
    fn finds_plain_keys_only() {
        let create = "CREATE TABLE `g` (\n  `id` int(11) NOT NULL,\n  `a` int(11) DEFAULT NULL,\n  `b``c` varchar(10) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`a`),\n  KEY `by_a` (`a`),\n  KEY `odd``name` (`b``c`(5)) COMMENT 'x, y',\n  FULLTEXT KEY `f` (`b``c`),\n  CONSTRAINT `fk` FOREIGN KEY (`a`) REFERENCES `t` (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";
        // The FULLTEXT key after them keeps them where they are.
        assert!(plain_keys(create).is_empty());
        let create = create.replace("  FULLTEXT KEY `f` (`b``c`),\n", "");
        assert_eq!(
            plain_keys(&create),
            vec![
                ("by_a".to_string(), "KEY `by_a` (`a`)".to_string()),
                (
                    "odd`name".to_string(),
                    "KEY `odd``name` (`b``c`(5)) COMMENT 'x, y'".to_string()
                ),
            ]
        );
        assert!(is_innodb(&create));
        assert!(!is_innodb(
            "CREATE TABLE `m` (\n  `id` int\n) ENGINE=MyISAM"
        ));
    }
}
