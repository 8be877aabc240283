//! Before a restore creates anything: can the connected user create everything the backup
//! holds? Compares the backup's objects (kinds, definers, functions' declarations) with the
//! user's grants and the server's binlog settings, and refuses with every missing privilege,
//! parameter or option named, instead of failing after the data load (ERROR 1227 at the
//! routines of an RDS master user, ERROR 1419 on a binlog-on server).
//!
//! The grants are read from `SHOW GRANTS` (with the active roles' grants on MySQL 8), whose
//! text MariaDB and MySQL render alike: `GRANT priv[, priv…] ON db.* TO account`.

use std::collections::BTreeSet;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::definer::{definer_of, DefinerMode};
use crate::error::{Error, Result};
use crate::manifest::{Manifest, ObjectKind, Stage};
use crate::mysql::definition::object_head;
pub use crate::mysql::grant::Grants;
use crate::mysql::lexer::Dialect;
use crate::store::ObjectStore;

/// What the backup will ask the server to create.
#[derive(Debug, Default, Clone)]
pub struct Needs {
    pub kinds: BTreeSet<ObjectKindName>,
    /// Definer accounts (`user@host`) other than the restoring user's, with an example object.
    pub definers: BTreeSet<(String, String)>,
    /// Functions declared neither DETERMINISTIC, NO SQL nor READS SQL DATA.
    pub undeclared_functions: Vec<String>,
    /// `--with-accounts`: the backup's accounts and grants are recreated.
    pub accounts: bool,
}

/// An object kind, ordered, for sets.
pub type ObjectKindName = &'static str;

impl Needs {
    /// Adds one CREATE statement of `kind` named `name`.
    pub fn add(&mut self, kind: ObjectKind, name: &str, statement: &str, dialect: Dialect) {
        self.kinds.insert(kind.label());
        if let Some(definer) = definer_of(statement, dialect) {
            self.definers
                .insert((definer, format!("{} `{name}`", kind.label())));
        }
        if kind == ObjectKind::Function && !declares_safe_characteristic(statement) {
            self.undeclared_functions.push(name.to_string());
        }
    }
}

fn declares_safe_characteristic(statement: &str) -> bool {
    let upper = statement.to_ascii_uppercase();
    let deterministic = upper
        .match_indices("DETERMINISTIC")
        .any(|(at, _)| !upper[..at].trim_end().ends_with("NOT"));
    deterministic || upper.contains("NO SQL") || upper.contains("READS SQL DATA")
}

/// The server as the restoring user sees it.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    /// `user@host` of CURRENT_USER().
    pub current_user: String,
    pub mariadb: bool,
    pub log_bin: bool,
    pub trust_function_creators: bool,
    pub grants: Grants,
}

/// Everything missing for restoring `needs` into `database`; empty when the restore can go on.
pub fn refusals(
    needs: &Needs,
    server: &ServerFacts,
    database: &str,
    definer: DefinerMode,
) -> Vec<String> {
    let grants = &server.grants;
    let mut missing = Vec::new();
    let mut require = |privilege: &str, why: &str| {
        if !grants.has(database, privilege) {
            missing.push(format!("the {privilege} privilege on `{database}` ({why})"));
        }
    };
    for (privilege, why) in [
        ("CREATE", "to create the tables"),
        ("INSERT", "to load the rows"),
        ("ALTER", "to add the indexes back after the load"),
        ("INDEX", "to add the indexes back after the load"),
    ] {
        require(privilege, why);
    }
    let has_kind = |kind: ObjectKind| needs.kinds.contains(kind.label());
    if has_kind(ObjectKind::Procedure) || has_kind(ObjectKind::Function) {
        require("CREATE ROUTINE", "the backup has stored routines");
    }
    if has_kind(ObjectKind::View) {
        require("CREATE VIEW", "the backup has views");
        require("SHOW VIEW", "to verify the views");
    }
    if has_kind(ObjectKind::Trigger) {
        require("TRIGGER", "the backup has triggers");
    }
    if has_kind(ObjectKind::Event) {
        require("EVENT", "the backup has events");
    }

    if needs.accounts {
        if !grants.has_global("CREATE USER") {
            missing.push(
                "the global CREATE USER privilege, to recreate the backup's accounts (--with-accounts)"
                    .to_string(),
            );
        }
        if !grants.has(database, "GRANT OPTION") {
            missing.push(format!(
                "the GRANT OPTION on `{database}`, to give the recreated accounts their grants (--with-accounts)"
            ));
        }
    }
    let super_user = grants.has_global("SUPER");
    // The check after the load reads every routine's body back; the server shows a body only
    // to its definer or to readers of mysql.proc (MariaDB) / holders of SHOW_ROUTINE (MySQL).
    let routines_of_others = needs.definers.iter().any(|(account, example)| {
        (example.starts_with("procedure") || example.starts_with("function"))
            && !same_account(account, &server.current_user)
    });
    if routines_of_others && definer == DefinerMode::Keep {
        let can_read = if server.mariadb {
            grants.has_on_table("mysql", "proc", "SELECT")
        } else {
            grants.has_global("SHOW_ROUTINE") || grants.has_global("SELECT")
        };
        if !can_read {
            missing.push(if server.mariadb {
                "SELECT on mysql.proc, to verify the bodies of restored routines whose DEFINER \
                 is another account (or restore with --definer current)"
                    .to_string()
            } else {
                "the SHOW_ROUTINE privilege, to verify the bodies of restored routines whose \
                 DEFINER is another account (or restore with --definer current)"
                    .to_string()
            });
        }
    }
    let foreign: Vec<&(String, String)> = needs
        .definers
        .iter()
        .filter(|(account, _)| !same_account(account, &server.current_user))
        .collect();
    let set_user = if server.mariadb {
        grants.has_global("SET USER")
    } else {
        grants.has_global("SET_USER_ID") || grants.has_global("SET_ANY_DEFINER")
    };
    if definer == DefinerMode::Keep && !foreign.is_empty() && !super_user && !set_user {
        let accounts: Vec<String> = foreign
            .iter()
            .map(|(account, example)| format!("{account} (e.g. {example})"))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .take(5)
            .collect();
        let privilege = if server.mariadb {
            "SET USER"
        } else {
            "SET_USER_ID (MySQL 8.2+: SET_ANY_DEFINER)"
        };
        missing.push(format!(
            "the {privilege} or SUPER privilege, to create objects whose DEFINER is another \
             account: {}; or restore with --definer current to create them as {}",
            accounts.join(", "),
            server.current_user
        ));
    }

    let binlog_checks = server.log_bin && !server.trust_function_creators;
    if binlog_checks && !super_user {
        let kinds: Vec<&str> = [ObjectKind::Function, ObjectKind::Trigger]
            .into_iter()
            .filter(|k| has_kind(*k))
            .map(|k| k.label())
            .collect();
        if !kinds.is_empty() {
            missing.push(format!(
                "log_bin_trust_function_creators = 1 (the binary log is on and {} lacks SUPER, \
                 so the server refuses to create {}s; on RDS set it in the DB parameter group)",
                server.current_user,
                kinds.join("s and ")
            ));
        }
    } else if binlog_checks && !needs.undeclared_functions.is_empty() {
        missing.push(format!(
            "log_bin_trust_function_creators = 1 (the binary log is on and function(s) {} are \
             declared neither DETERMINISTIC, NO SQL nor READS SQL DATA)",
            needs.undeclared_functions.join(", ")
        ));
    }
    missing
}

fn same_account(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Which kind of object a CREATE statement makes, and its name (for messages); None for any
/// other statement (the files' SET lines).
fn kind_and_name(statement: &str, dialect: Dialect) -> Option<(ObjectKind, String)> {
    object_head(statement, dialect).map(|head| (head.kind, head.name))
}

/// The CREATE statements of the backup's views, routines, triggers and events (their files
/// are small), as [`Needs`].
pub async fn needs_of(store: &dyn ObjectStore, manifest: &Manifest) -> Result<Needs> {
    let mut needs = Needs::default();
    let prefix = manifest.prefix();
    for file in manifest.files.iter().filter(|f| {
        matches!(
            f.stage,
            Stage::Routines | Stage::Views | Stage::Triggers | Stage::Events
        )
    }) {
        let statements = super::apply::read_statements(store, &prefix, file).await?;
        for statement in statements {
            // As the restore reads it (a definition may be in its client's character set).
            let (text, _) = crate::mysql::lexer::text_of(&statement.sql);
            if let Some((kind, name)) = kind_and_name(&text, statement.dialect) {
                needs.add(kind, &name, &text, statement.dialect);
            }
        }
    }
    Ok(needs)
}

/// Refuses, before anything is created, when `conn`'s user cannot restore `needs` into
/// `database`.
pub async fn check(
    conn: &mut Conn,
    needs: &Needs,
    database: &str,
    definer: DefinerMode,
) -> Result<()> {
    let facts = server_facts(conn).await?;
    let missing = refusals(needs, &facts, database, definer);
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::CannotRestoreAsUser {
        user: facts.current_user,
        database: database.to_string(),
        missing,
    })
}

/// Reads what [`refusals`] needs from the server, as the connected user.
pub async fn server_facts(conn: &mut Conn) -> Result<ServerFacts> {
    let context = |what: &str| format!("checking the restoring user's privileges ({what})");
    let (current_user, version, log_bin, trust): (String, String, i64, i64) = conn
        .query_first(
            "SELECT CURRENT_USER(), VERSION(), @@log_bin, @@log_bin_trust_function_creators",
        )
        .await
        .map_err(|e| Error::database(context("CURRENT_USER"), e))?
        .ok_or_else(|| Error::Task("the server answered no row for CURRENT_USER()".into()))?;
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let mut lines: Vec<String> = conn
        .query("SHOW GRANTS")
        .await
        .map_err(|e| Error::database(context("SHOW GRANTS"), e))?;
    if !mariadb {
        // MySQL 8 lists role memberships only; the active roles' privileges need USING.
        let roles: Option<String> = conn
            .query_first("SELECT CURRENT_ROLE()")
            .await
            .map_err(|e| Error::database(context("CURRENT_ROLE"), e))?;
        if let Some(roles) = roles.filter(|r| !r.is_empty() && r != "NONE") {
            lines = conn
                .query(format!("SHOW GRANTS FOR CURRENT_USER() USING {roles}"))
                .await
                .map_err(|e| Error::database(context("SHOW GRANTS … USING roles"), e))?;
        }
    }
    Ok(ServerFacts {
        current_user: current_user.clone(),
        mariadb,
        log_bin: log_bin != 0,
        trust_function_creators: trust != 0,
        grants: Grants::parse(lines.iter().map(String::as_str)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `SHOW GRANTS` of the restore-test user that an earlier users file (infra/sql) created, as
    /// MariaDB 10.11 prints it.
    const MARIADB_RESTORE_TEST: &[&str] = &[
        "GRANT SET USER ON *.* TO `toc_restore_test`@`%` IDENTIFIED BY PASSWORD '*00'",
        "GRANT ALL PRIVILEGES ON `toc\\_sis\\_restore\\_test\\_%`.* TO `toc_restore_test`@`%`",
        "GRANT SELECT ON `mysql`.`proc` TO `toc_restore_test`@`%`",
    ];

    /// An RDS for MySQL 8.0 master user (recorded; rdsadmin keeps SUPER to itself).
    const MYSQL8_RDS_MASTER: &[&str] = &[
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, REPLICATION CLIENT, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER ON *.* TO `admin`@`%` WITH GRANT OPTION",
        "GRANT BACKUP_ADMIN,CONNECTION_ADMIN,FLUSH_OPTIMIZER_COSTS,FLUSH_STATUS,FLUSH_TABLES,FLUSH_USER_RESOURCES,ROLE_ADMIN,SESSION_VARIABLES_ADMIN,SET_USER_ID,SHOW_ROUTINE,XA_RECOVER_ADMIN ON *.* TO `admin`@`%` WITH GRANT OPTION",
        "GRANT `rds_superuser_role`@`%` TO `admin`@`%`",
    ];

    fn needs_everything(definer: &str) -> Needs {
        let mut needs = Needs::default();
        needs.add(
            ObjectKind::Function,
            "grade_points",
            &format!("CREATE DEFINER={definer} FUNCTION `grade_points`(g DECIMAL(4,2)) RETURNS int(11)\n    DETERMINISTIC\nRETURN g * 10"),
            Dialect::default(),
        );
        needs.add(
            ObjectKind::Trigger,
            "audit",
            &format!("CREATE DEFINER={definer} TRIGGER audit BEFORE UPDATE ON t FOR EACH ROW SET NEW.x = 1"),
            Dialect::default(),
        );
        needs.add(
            ObjectKind::View,
            "v",
            &format!("CREATE ALGORITHM=UNDEFINED DEFINER={definer} SQL SECURITY DEFINER VIEW `v` AS select 1 AS `x`"),
            Dialect::default(),
        );
        needs
    }

    fn server(lines: &[&str], mariadb: bool, user: &str, trust: bool) -> ServerFacts {
        ServerFacts {
            current_user: user.into(),
            mariadb,
            log_bin: true,
            trust_function_creators: trust,
            grants: Grants::parse(lines.iter().copied()),
        }
    }

    /// `(query, result lines)` blocks of a file in tests/fixtures/mysql8/.
    fn recorded_blocks(text: &str) -> Vec<(String, Vec<String>)> {
        text.split("\n\n")
            .filter_map(|block| {
                let query = block
                    .lines()
                    .find_map(|l| l.strip_prefix("# query: "))?
                    .to_string();
                let lines = block
                    .lines()
                    .filter(|l| !l.starts_with("# "))
                    .map(str::to_string)
                    .collect();
                Some((query, lines))
            })
            .collect()
    }

    /// Real MySQL 8 `SHOW GRANTS` output from MySQL's own test results (see the fixture's
    /// README): static and dynamic privilege lines, column and routine grants, role lines.
    #[test]
    fn recorded_mysql8_grants_are_understood() {
        let blocks = recorded_blocks(include_str!("../../tests/fixtures/mysql8/show-grants.txt"));
        let grants_of = |query_part: &str| {
            let (_, lines) = blocks
                .iter()
                .find(|(query, _)| query.contains(query_part))
                .unwrap_or_else(|| panic!("no recorded block for {query_part}"));
            Grants::parse(lines.iter().map(String::as_str))
        };
        let everything = grants_of("non_sys_usr");
        for privilege in [
            "SUPER",
            "SET_ANY_DEFINER",
            "SHOW_ROUTINE",
            "TRIGGER",
            "CREATE ROUTINE",
        ] {
            assert!(everything.has_global(privilege), "{privilege}");
        }
        assert!(!everything.has_global("UPDATE"), "UPDATE was revoked");
        let sys = grants_of("CURRENT_USER()");
        assert!(sys.has_global("SET_USER_ID") && !sys.has_global("SUPER"));
        assert!(
            !sys.has("test", "EXECUTE"),
            "rights on one routine are not database-wide"
        );
        let test_user = grants_of("test_user@localhost");
        assert!(test_user.has("test", "CREATE ROUTINE") && !test_user.has("other", "CREATE"));
        let joe = grants_of("joe_schema_designer");
        assert!(joe.has("any", "CREATE") && joe.has("test", "UPDATE"));
        assert!(joe.has_on_table("db1", "t1", "SELECT") && !joe.has("db1", "SELECT"));

        // The MySQL 8.2+ account with SET_ANY_DEFINER may keep other definers.
        let facts = ServerFacts {
            current_user: "non_sys_usr@%".into(),
            mariadb: false,
            log_bin: true,
            trust_function_creators: false,
            grants: everything,
        };
        let needs = needs_everything("`root`@`localhost`");
        assert!(refusals(&needs, &facts, "toc_sis", DefinerMode::Keep).is_empty());
    }

    /// Real MySQL 8 `SHOW CREATE` output: the DEFINER is found and removed in each kind.
    #[test]
    fn recorded_mysql8_definitions_have_their_definer_found_and_removed() {
        let blocks = recorded_blocks(include_str!("../../tests/fixtures/mysql8/show-create.txt"));
        let mut kinds = BTreeSet::new();
        for (query, lines) in &blocks {
            let text = lines.join("\n");
            let start = text.find("CREATE ").expect("a CREATE statement");
            let statement = text[start..].split('\t').next().unwrap_or_default();
            let d = Dialect::default();
            let (kind, _) = kind_and_name(statement, d).unwrap_or_else(|| panic!("{query}"));
            kinds.insert(kind.label());
            let definer = definer_of(statement, d).unwrap_or_else(|| panic!("{query}"));
            assert!(definer.contains('@') && !definer.contains('`'), "{definer}");
            let stripped = super::super::definer::without_definer(statement, d).expect("stripped");
            assert!(!stripped.contains("DEFINER=`"), "{stripped}");
            assert_eq!(definer_of(&stripped, d), None);
        }
        assert_eq!(
            kinds.len(),
            5,
            "every kind of object is recorded: {kinds:?}"
        );
        let mut needs = Needs::default();
        for (_, lines) in &blocks {
            let text = lines.join("\n");
            let statement = &text[text.find("CREATE ").unwrap_or_default()..];
            let statement = statement.split('\t').next().unwrap_or_default();
            if let Some((kind, name)) = kind_and_name(statement, Dialect::default()) {
                needs.add(kind, &name, statement, Dialect::default());
            }
        }
        assert_eq!(
            needs.undeclared_functions,
            vec!["f1".to_string()],
            "RETURN 1 declares nothing"
        );
    }

    #[test]
    fn only_create_statements_are_objects() {
        let d = Dialect::default();
        assert!(kind_and_name("-- function f\nSET SESSION sql_mode = ''", d).is_none());
        assert_eq!(
            kind_and_name(
                "-- function f\nCREATE DEFINER=`a`@`%` FUNCTION `f`() RETURNS int RETURN 1",
                d
            ),
            Some((ObjectKind::Function, "f".to_string()))
        );
    }

    #[test]
    fn grant_lines_with_hostile_names_are_read_by_the_lexer() {
        let grants = Grants::parse([
            "GRANT SELECT ON `app`.`Café TO go` TO `restorer`@`%`",
            "GRANT INSERT ON `é.* TO x`.* TO `restorer`@`%`",
            "GRANT EXECUTE ON PROCEDURE `a`.`p` TO `restorer`@`%`",
            "GRANT `role` TO `restorer`@`%`",
        ]);
        assert!(grants.has("é.* TO x", "INSERT"));
        assert!(!grants.has("é", "INSERT"));
        assert_eq!(grants.tables.len(), 1);
        assert_eq!(
            (grants.tables[0].0.as_str(), grants.tables[0].1.as_str()),
            ("app", "Café TO go")
        );
    }

    #[test]
    fn grant_patterns_match_like_the_server_does() {
        let grants = Grants::parse(MARIADB_RESTORE_TEST.iter().copied());
        assert!(grants.has("toc_sis_restore_test_20261128", "CREATE ROUTINE"));
        assert!(!grants.has("toc_sis", "CREATE"));
        assert!(
            !grants.has("tocXsis_restore_test_1", "CREATE"),
            "\\_ is a literal _"
        );
        assert!(grants.has_global("SET USER"));
        assert!(!grants.has_global("SUPER"));
        let master = Grants::parse(MYSQL8_RDS_MASTER.iter().copied());
        assert!(master.has("anything", "TRIGGER"));
        assert!(master.has_global("SET_USER_ID"));
        assert!(master.has_global("SHOW_ROUTINE"));
    }

    #[test]
    fn the_restore_test_user_on_a_binlog_server_is_told_about_the_parameter() {
        let facts = server(MARIADB_RESTORE_TEST, true, "toc_restore_test@%", false);
        let needs = needs_everything("`root`@`localhost`");
        let missing = refusals(&needs, &facts, "toc_sis_restore_test_1", DefinerMode::Keep);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].contains("log_bin_trust_function_creators = 1")
                && missing[0].contains("functions and triggers")
                && missing[0].contains("DB parameter group"),
            "{missing:?}"
        );
        let trusting = server(MARIADB_RESTORE_TEST, true, "toc_restore_test@%", true);
        assert!(refusals(
            &needs,
            &trusting,
            "toc_sis_restore_test_1",
            DefinerMode::Keep
        )
        .is_empty());
        assert!(
            !refusals(&needs, &trusting, "toc_sis", DefinerMode::Keep).is_empty(),
            "outside its scratch databases it may create nothing"
        );
    }

    #[test]
    fn routine_bodies_of_other_definers_must_be_readable_to_verify_them() {
        let without_proc = &MARIADB_RESTORE_TEST[..2];
        let facts = server(without_proc, true, "toc_restore_test@%", true);
        let needs = needs_everything("`root`@`localhost`");
        let missing = refusals(&needs, &facts, "toc_sis_restore_test_1", DefinerMode::Keep);
        assert!(
            missing.len() == 1 && missing[0].starts_with("SELECT on mysql.proc"),
            "{missing:?}"
        );
        assert!(refusals(
            &needs,
            &facts,
            "toc_sis_restore_test_1",
            DefinerMode::Current
        )
        .is_empty());
    }

    #[test]
    fn foreign_definers_need_set_user_or_definer_current() {
        let mariadb_master = [
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER ON *.* TO `admin`@`%` WITH GRANT OPTION",
        ];
        let facts = server(&mariadb_master, true, "admin@%", true);
        let needs = needs_everything("`olddba`@`localhost`");
        let missing = refusals(&needs, &facts, "toc_sis", DefinerMode::Keep);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].contains("SET USER")
                && missing[0].contains("olddba@localhost")
                && missing[0].contains("--definer current"),
            "{missing:?}"
        );
        assert!(refusals(&needs, &facts, "toc_sis", DefinerMode::Current).is_empty());
        let own = needs_everything("`admin`@`%`");
        assert!(refusals(&own, &facts, "toc_sis", DefinerMode::Keep).is_empty());
        // MySQL 8's RDS master has SET_USER_ID: foreign definers are fine there.
        let mysql = server(MYSQL8_RDS_MASTER, false, "admin@%", true);
        assert!(refusals(&needs, &mysql, "toc_sis", DefinerMode::Keep).is_empty());
    }

    #[test]
    fn undeclared_functions_are_named_even_for_super() {
        let mut needs = Needs::default();
        needs.add(
            ObjectKind::Function,
            "f",
            "CREATE DEFINER=`root`@`localhost` FUNCTION `f`() RETURNS int(11)\n    NOT DETERMINISTIC\nRETURN 1",
            Dialect::default(),
        );
        let facts = server(
            &["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"],
            true,
            "root@localhost",
            false,
        );
        let missing = refusals(&needs, &facts, "db", DefinerMode::Keep);
        assert!(
            missing.len() == 1 && missing[0].contains("function(s) f are declared neither"),
            "{missing:?}"
        );
    }
}
