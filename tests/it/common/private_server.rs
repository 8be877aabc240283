//! A private MariaDB of a test's own, started by `scripts/private-mariadb` with extra server
//! options (TLS certificates, settings a test changes globally), stopped when dropped.

use std::path::Path;
use std::process::Command;

use toc_sis_backup::config::DatabaseUrl;

pub struct PrivateServer {
    data_dir: String,
    pub port: u16,
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/private-mariadb")
}

impl PrivateServer {
    pub fn start(server_options: &str) -> PrivateServer {
        let output = Command::new(script())
            .arg("start")
            .env("PRIVATE_MARIADB_PORT", "")
            .env("PRIVATE_MARIADB_ARGS", server_options)
            .output()
            .expect("scripts/private-mariadb");
        let exports = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "private server did not start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let value = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}='")))
                .and_then(|v| v.strip_suffix('\''))
                .unwrap_or_else(|| panic!("{name} in {exports}"))
                .to_string()
        };
        let url = DatabaseUrl::parse(&value("TEST_DATABASE_URL")).expect("url");
        PrivateServer {
            data_dir: value("PRIVATE_MARIADB_DIR"),
            port: url.port,
        }
    }

    /// `mysql://USER@HOST:PORT/DATABASE`.
    pub fn url(&self, user: &str, host: &str, database: &str) -> String {
        format!("mysql://{user}@{host}:{}/{database}", self.port)
    }

    /// Sets up the project's least-privilege users as root (`toc-backup setup-users`), each
    /// with the password [`PROJECT_USERS_PASSWORD`].
    pub fn apply_project_users(&self) {
        if let Err(errors) = self.apply_project_users_as("root", "") {
            panic!("setup-users as root failed:\n{errors}");
        }
    }

    /// Runs SQL (a script with `;`) as root through the `mariadb` client.
    pub fn root_sql(&self, sql: &str) {
        let output = super::run_with_input(
            Command::new("mariadb").args([
                "--no-defaults",
                "-h127.0.0.1",
                &format!("-P{}", self.port),
                "-uroot",
            ]),
            sql,
        );
        assert!(
            output.status.success(),
            "SQL failed: {}\n{sql}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl PrivateServer {
    /// Runs one query as root (in `database`, if given) and answers its rows as tab-separated
    /// lines, without column names.
    pub fn root_query(&self, database: Option<&str>, sql: &str) -> String {
        self.try_root_query(database, sql)
            .unwrap_or_else(|error| panic!("query failed: {error}\n{sql}"))
    }

    /// [`Self::root_query`], answering the client's error instead of failing the test.
    pub fn try_root_query(&self, database: Option<&str>, sql: &str) -> Result<String, String> {
        let output = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-h127.0.0.1",
                &format!("-P{}", self.port),
                "-uroot",
                "-N",
            ])
            .args(database)
            .args(["-e", sql])
            .output()
            .expect("mariadb client");
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// The privileges of the master user of an RDS for MariaDB instance, all held WITH GRANT
/// OPTION (no SUPER, SET USER or DELETE HISTORY: it can neither GRANT ALL nor SET USER).
pub const RDS_MARIADB_MASTER_PRIVILEGES: &str = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, \
    RELOAD, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, \
    LOCK TABLES, EXECUTE, REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, \
    ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, REPLICATION SLAVE";

impl PrivateServer {
    /// Creates `user@%` with exactly the RDS for MariaDB master user's privileges.
    pub fn create_rds_master(&self, user: &str, password: &str) {
        self.root_sql(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}';
             GRANT {RDS_MARIADB_MASTER_PRIVILEGES} ON *.* TO '{user}'@'%' WITH GRANT OPTION;"
        ));
    }

    /// Runs a script (statements ending in `;`) as `user` through the `mariadb` client, every
    /// statement even after a failure (`--force`): Ok with the output when each one succeeded,
    /// else Err with every failing statement and its error (the client prints both).
    pub fn sql_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let output = super::run_with_input(
            Command::new("mariadb")
                .args([
                    "--no-defaults",
                    "-h127.0.0.1",
                    &format!("-P{}", self.port),
                    &format!("-u{user}"),
                    "--force",
                ])
                .env("MYSQL_PWD", password),
            sql,
        );
        let errors = String::from_utf8_lossy(&output.stderr).into_owned();
        // With --force the client's exit status is only the last statement's: its error
        // output says whether any failed.
        if !output.status.success() || errors.contains("ERROR") {
            return Err(errors);
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Sets up the project's users with `toc-backup setup-users` connected as `user` (e.g. an
    /// RDS-like master user), each with the password [`PROJECT_USERS_PASSWORD`]: Ok with its
    /// output, Err with its output when it failed.
    pub fn apply_project_users_as(&self, user: &str, password: &str) -> Result<String, String> {
        let mut env = vec![
            ("TOC_BACKUP_PASSWORD", PROJECT_USERS_PASSWORD),
            ("TOC_BINLOG_PASSWORD", PROJECT_USERS_PASSWORD),
            ("TOC_RESTORE_TEST_PASSWORD", PROJECT_USERS_PASSWORD),
        ];
        if !password.is_empty() {
            env.push(("DATABASE_PASSWORD", password));
        }
        let output = super::run_cli(
            &[
                "setup-users",
                "--database-url",
                &self.url(user, "127.0.0.1", ""),
            ],
            &env,
        );
        let text = super::text(&output);
        if output.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }
}

/// The password the tests give every project user.
pub const PROJECT_USERS_PASSWORD: &str = "CHANGE-ME-or-use-IAM";

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", &self.data_dir])
            .status();
    }
}
