//! The accounts and grants that reach the database, recorded for disaster recovery in their
//! own file (`accounts.gz`: not `*.sql.gz`, so neither the standard-tools recipe nor a plain
//! restore loads it; `restore --with-accounts` does).
//!
//! An account is recorded when `mysql.db`, `mysql.tables_priv` or `mysql.procs_priv` grants it
//! something in the database. Without `--with-password-hashes` it is recreated locked (`ACCOUNT
//! LOCK`), with no credential: it exists for its grants and for DEFINERs, and an administrator
//! gives it a password and unlocks it. Reading other accounts needs SELECT on the `mysql`
//! schema, which the least-privilege backup user does not have: the manifest then says the
//! accounts were not recorded and why.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{Error, Result};
use crate::mysql::{quote_str, server_code};
use crate::table_files::sql_file::StoredFile;
use crate::table_files::FileNamer;

/// What recording the accounts gave.
pub(super) enum Accounts {
    Recorded {
        file: StoredFile,
        accounts: usize,
    },
    /// Why not (named in the manifest and logged).
    NotRecorded(String),
}

const ACCOUNTS_QUERY: &str = "SELECT User, Host FROM mysql.db WHERE ? LIKE Db \
     UNION SELECT User, Host FROM mysql.tables_priv WHERE Db = ? \
     UNION SELECT User, Host FROM mysql.procs_priv WHERE Db = ? ORDER BY 1, 2";

pub(super) async fn write_accounts(
    conn: &mut Conn,
    namer: &FileNamer,
    database: &str,
    with_password_hashes: bool,
) -> Result<Accounts> {
    let accounts: Vec<(String, String)> =
        match conn.exec(ACCOUNTS_QUERY, (database, database, database)).await {
            Ok(accounts) => accounts,
            // ER_TABLEACCESS_DENIED_ERROR, ER_DBACCESS_DENIED_ERROR
            Err(e) if matches!(server_code(&e), Some(1142 | 1044)) => {
                return Ok(Accounts::NotRecorded(format!(
                    "the backup user cannot read the mysql schema's grant tables ({e}); grant it SELECT ON mysql.* to record accounts"
                )))
            }
            Err(e) => return Err(Error::database("listing the accounts granted on the database", e)),
        };
    let mut text = format!(
        "-- toc-sis-backup {}: accounts and grants on the database (restore --with-accounts)\n",
        env!("CARGO_PKG_VERSION")
    );
    for (user, host) in &accounts {
        let account = format!("{}@{}", quote_str(user), quote_str(host));
        let is_role = host.is_empty();
        if is_role {
            text.push_str(&format!("CREATE ROLE IF NOT EXISTS {};\n", quote_str(user)));
        } else if with_password_hashes {
            let create: String = conn
                .query_first(format!("SHOW CREATE USER {account}"))
                .await
                .map_err(|e| Error::database(format!("reading account {account}"), e))?
                .unwrap_or_default();
            let create = create
                .strip_prefix("CREATE USER ")
                .map(|rest| format!("CREATE USER IF NOT EXISTS {rest}"))
                .unwrap_or(create);
            text.push_str(&create);
            text.push_str(";\n");
        } else {
            text.push_str(&format!(
                "-- no credential recorded (dump --with-password-hashes): give the next account one with ALTER USER … IDENTIFIED BY '…' ACCOUNT UNLOCK\n\
                 CREATE USER IF NOT EXISTS {account} ACCOUNT LOCK;\n"
            ));
        }
        let target = if is_role {
            quote_str(user)
        } else {
            account.clone()
        };
        let grants: Vec<String> = conn
            .query(format!("SHOW GRANTS FOR {target}"))
            .await
            .map_err(|e| Error::database(format!("reading the grants of {target}"), e))?;
        for grant in grants {
            if grants_on(&grant, database) {
                text.push_str(&grant);
                text.push_str(";\n");
            }
        }
    }
    let mut file = namer.create_accounts().await?;
    file.buffer().extend_from_slice(text.as_bytes());
    Ok(Accounts::Recorded {
        file: file.finish().await?,
        accounts: accounts.len(),
    })
}

/// Whether a `SHOW GRANTS` line grants something in `database` (by name or by a pattern the
/// name matches), as opposed to global rights or rights elsewhere.
pub(crate) fn grants_on(grant: &str, database: &str) -> bool {
    use crate::mysql::grant::{parse_grant, Target};
    match parse_grant(grant).map(|g| g.target) {
        Some(Target::Database(name)) => name == database || crate::mysql::like(&name, database),
        Some(Target::Object { database: name, .. }) => name == database,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_grants_in_the_database_are_kept() {
        let db = "toc_sis";
        assert!(grants_on(
            "GRANT SELECT, UPDATE ON `toc_sis`.* TO `registrar`@`%`",
            db
        ));
        assert!(grants_on(
            "GRANT SELECT ON `toc_sis`.`students` TO `r`@`%`",
            db
        ));
        assert!(grants_on(
            "GRANT EXECUTE ON PROCEDURE `toc_sis`.`p` TO `r`@`%`",
            db
        ));
        assert!(grants_on("GRANT SELECT ON `toc\\_%`.* TO `r`@`%`", db));
        assert!(!grants_on(
            "GRANT USAGE ON *.* TO `r`@`%` IDENTIFIED BY PASSWORD '*AB'",
            db
        ));
        assert!(!grants_on("GRANT SELECT ON `other`.* TO `r`@`%`", db));
        assert!(!grants_on("GRANT `role1` TO `r`@`%`", db));
        assert!(!grants_on("GRANT SELECT ON `toc_sis``.x`.* TO `r`@`%`", db));
    }
}
