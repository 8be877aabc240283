//! The three database users the jobs connect as, each with exactly what its job needs, written
//! as lists the RDS master user can grant: it holds no SUPER, SET USER or DELETE HISTORY, so it
//! can neither `GRANT ALL` on a database nor give anyone the right to act as another account.
//! `toc-backup setup-users` runs these lists and `toc-backup doctor` checks each user against
//! them, so what is created and what is checked cannot drift apart.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use crate::error::{Error, Result};
use crate::mysql::grant::Grants;
use crate::mysql::{quote_ident, quote_str};

/// The server's SQL dialect of privileges: MariaDB names some of them differently from MySQL 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    MariaDb,
    MySql8,
}

impl Flavour {
    /// The flavour `VERSION()` names (`10.11.6-MariaDB-log`, `8.0.36`).
    pub fn of_version(version: &str) -> Flavour {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavour::MariaDb
        } else {
            Flavour::MySql8
        }
    }

    fn of(facts: &crate::restore::preflight::ServerFacts) -> Flavour {
        if facts.mariadb {
            Flavour::MariaDb
        } else {
            Flavour::MySql8
        }
    }
}

/// What a project user is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The dump and the incremental: reads everything in the database, changes nothing.
    Backup,
    /// The binlog archive: reads the server's binlog as a replica does, and no table.
    Binlog,
    /// The monthly restore test: creates, checks and drops scratch databases, nothing else.
    RestoreTest,
}

/// Where a privilege list applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `*.*`
    Server,
    /// The TOC-SIS database itself.
    Database,
    /// The restore test's scratch databases (`<prefix>_<time>_<random>`), as one LIKE pattern.
    ScratchDatabases,
    /// `mysql.proc`: stored routine bodies on MariaDB.
    RoutineBodies,
}

/// One `GRANT` of a user: privileges on a scope, and why the job needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privileges {
    pub scope: Scope,
    pub list: &'static [&'static str],
    pub why: &'static str,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Backup, Role::Binlog, Role::RestoreTest];

    /// The account name the functions' secrets and the README use.
    pub fn user(self) -> &'static str {
        match self {
            Role::Backup => "toc_backup",
            Role::Binlog => "toc_binlog",
            Role::RestoreTest => "toc_restore_test",
        }
    }

    /// The variable `setup-users` reads this user's password from.
    pub fn password_variable(self) -> &'static str {
        match self {
            Role::Backup => "TOC_BACKUP_PASSWORD",
            Role::Binlog => "TOC_BINLOG_PASSWORD",
            Role::RestoreTest => "TOC_RESTORE_TEST_PASSWORD",
        }
    }

    /// The Secrets Manager secret the stack creates for this user (`infra/template.yaml`).
    pub fn secret_name(self, stack: &str) -> String {
        let suffix = match self {
            Role::Backup => "backup",
            Role::Binlog => "binlog",
            Role::RestoreTest => "restore-test",
        };
        format!("{stack}/database/{suffix}")
    }

    /// The jobs that connect as this user.
    pub fn jobs(self) -> &'static str {
        match self {
            Role::Backup => "dump, incremental",
            Role::Binlog => "binlog archive",
            Role::RestoreTest => "restore test",
        }
    }

    /// Exactly what the user is granted; everything else is revoked first.
    pub fn privileges(self, flavour: Flavour) -> Vec<Privileges> {
        let data_readers = Privileges {
            scope: Scope::Database,
            list: &["SELECT", "SHOW VIEW", "TRIGGER", "EVENT"],
            why: "rows; without SHOW VIEW, TRIGGER and EVENT views, triggers and events are \
                  hidden and the dump refuses to run",
        };
        match (self, flavour) {
            (Role::Backup, Flavour::MariaDb) => vec![
                data_readers,
                Privileges {
                    scope: Scope::RoutineBodies,
                    list: &["SELECT"],
                    why: "stored routine bodies (MariaDB shows them to readers of mysql.proc)",
                },
                Privileges {
                    scope: Scope::Server,
                    list: &["BINLOG MONITOR"],
                    why: "the binlog position beside the snapshot (REPLICATION CLIENT before \
                          MariaDB 10.5)",
                },
            ],
            (Role::Backup, Flavour::MySql8) => vec![
                data_readers,
                Privileges {
                    scope: Scope::Server,
                    list: &["SHOW_ROUTINE", "REPLICATION CLIENT"],
                    why: "stored routine bodies; the binlog position beside the snapshot",
                },
            ],
            (Role::Binlog, Flavour::MariaDb) => vec![Privileges {
                scope: Scope::Server,
                list: &["REPLICATION SLAVE", "BINLOG MONITOR"],
                why: "streams the binlog as a replica does and reads which files the server \
                      still holds (SHOW BINARY LOGS); it cannot read a table",
            }],
            (Role::Binlog, Flavour::MySql8) => vec![Privileges {
                scope: Scope::Server,
                list: &["REPLICATION SLAVE", "REPLICATION CLIENT"],
                why: "streams the binlog as a replica does and reads which files the server \
                      still holds (SHOW BINARY LOGS); it cannot read a table",
            }],
            (Role::RestoreTest, _) => vec![Privileges {
                scope: Scope::ScratchDatabases,
                list: &[
                    "SELECT",
                    "INSERT",
                    "UPDATE",
                    "DELETE",
                    "CREATE",
                    "DROP",
                    "ALTER",
                    "INDEX",
                    "REFERENCES",
                    // A column without a DEFAULT is recreated through a temporary table
                    // (shared/mysql/create_table.rs).
                    "CREATE TEMPORARY TABLES",
                    "CREATE VIEW",
                    "SHOW VIEW",
                    "CREATE ROUTINE",
                    "ALTER ROUTINE",
                    "TRIGGER",
                    "EVENT",
                ],
                why: "loads, verifies and drops its scratch databases; it creates every object \
                      as itself (--definer current) and holds nothing on the server, the live \
                      database or mysql.*: no SET USER or SUPER, with which a routine it \
                      created as root could grant anything",
            }],
        }
    }
}

/// Privileges no project user may hold: each lets it act as another account, hand out rights
/// or change what it should only read. None is in any list above; `doctor` names a user that
/// holds one.
pub const FORBIDDEN_PRIVILEGES: [&str; 9] = [
    "ALL",
    "ALL PRIVILEGES",
    "SUPER",
    "SET USER",
    "SET_USER_ID",
    "SET_ANY_DEFINER",
    "GRANT OPTION",
    "CREATE USER",
    "DELETE HISTORY",
];

/// The names a deployment gives: the TOC-SIS database and the restore test's scratch prefix.
#[derive(Debug, Clone)]
pub struct Names {
    pub database: String,
    pub scratch_prefix: String,
}

impl Names {
    /// `db.*` for a grant. A database-level grant's name is a LIKE pattern, so `_` and `%` in
    /// it are escaped: `toc_sis` unescaped would also grant on `tocXsis`.
    pub fn target(&self, scope: Scope) -> String {
        match scope {
            Scope::Server => "*.*".into(),
            Scope::Database => format!("{}.*", quote_ident(&like_literal(&self.database))),
            Scope::ScratchDatabases => format!(
                "{}.*",
                quote_ident(&format!("{}\\_%", like_literal(&self.scratch_prefix)))
            ),
            Scope::RoutineBodies => "`mysql`.`proc`".into(),
        }
    }
}

/// `text` as a LIKE pattern that matches only itself.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '_' | '%' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A project user to create or update: its account name and password.
pub struct Account {
    pub role: Role,
    pub user: String,
    password: String,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("role", &self.role)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// The least length `setup-users` takes: the users read every grade record.
pub const MIN_PASSWORD_LENGTH: usize = 16;

impl Account {
    /// Refuses a password that is too short to guard every grade record, naming where it
    /// came from (never the password).
    pub fn new(role: Role, user: String, password: String, source: &str) -> Result<Account> {
        if user.is_empty() || user.len() > 80 {
            return Err(Error::InvalidValue {
                what: "user name",
                value: user,
                expected: format!("1 to 80 characters for the {} user", role.jobs()),
            });
        }
        let length = password.chars().count();
        if length < MIN_PASSWORD_LENGTH {
            return Err(Error::Config {
                variable: source.to_string(),
                reason: format!(
                    "is {length} characters long; expected at least {MIN_PASSWORD_LENGTH} \
                     (this user reads every grade record)"
                ),
            });
        }
        Ok(Account {
            role,
            user,
            password,
        })
    }
}

/// One statement of the setup: the text to run, and the text to show (no password).
#[derive(Debug, Clone)]
pub struct SetupStatement {
    pub sql: String,
    pub shown: String,
}

impl SetupStatement {
    fn plain(sql: String) -> SetupStatement {
        SetupStatement {
            shown: sql.clone(),
            sql,
        }
    }
}

/// The account as SQL names it: every project user connects from any host (`%`); the
/// functions' addresses change with each cold start.
fn account_name(user: &str) -> String {
    format!("{}@'%'", quote_str(user))
}

/// The statements that create or update each user and leave it with exactly its lists:
/// re-running them changes nothing but the passwords, and takes away anything granted by
/// hand or by an earlier version (the master may revoke everything from a user it did not
/// grant: `REVOKE ALL … FROM` needs only CREATE USER).
pub fn setup_statements(
    accounts: &[(Role, String, Option<&Account>)],
    names: &Names,
    flavour: Flavour,
) -> Vec<SetupStatement> {
    let mut out = Vec::new();
    for (role, user, account) in accounts {
        let name = account_name(user);
        let (password, shown) = match account {
            Some(account) => (quote_str(&account.password), "'…'".to_string()),
            None => {
                let placeholder = format!("'<{}>'", role.password_variable());
                (placeholder.clone(), placeholder)
            }
        };
        for verb in ["CREATE USER IF NOT EXISTS", "ALTER USER"] {
            out.push(SetupStatement {
                sql: format!("{verb} {name} IDENTIFIED BY {password}"),
                shown: format!("{verb} {name} IDENTIFIED BY {shown}"),
            });
        }
        out.push(SetupStatement::plain(format!(
            "REVOKE ALL PRIVILEGES, GRANT OPTION FROM {name}"
        )));
        for grant in role.privileges(flavour) {
            out.push(SetupStatement::plain(format!(
                "GRANT {} ON {} TO {name}",
                grant.list.join(", "),
                names.target(grant.scope)
            )));
        }
    }
    out
}

/// One line per privilege the connected (master) user would need and lacks to run the
/// setup: each grant needs its privileges WITH GRANT OPTION, and creating users CREATE USER.
pub fn missing_master_privileges(
    master: &Grants,
    roles: &[(Role, String)],
    names: &Names,
    flavour: Flavour,
) -> Vec<String> {
    let mut missing = Vec::new();
    if !master.has_global("CREATE USER") {
        missing.push(
            "CREATE USER on *.*: to create the users, set their passwords and revoke what they \
             should not hold"
                .to_string(),
        );
    }
    for (role, user) in roles {
        for grant in role.privileges(flavour) {
            let holds = |privilege: &str| match grant.scope {
                Scope::Server => master.has_global(privilege),
                Scope::Database => master.has(&names.database, privilege),
                // A grant on a pattern needs the privilege on all it may match: globally.
                Scope::ScratchDatabases => master.has_global(privilege),
                Scope::RoutineBodies => master.has_on_table("mysql", "proc", privilege),
            };
            for privilege in grant.list {
                if !holds(privilege) || !holds("GRANT OPTION") {
                    missing.push(format!(
                        "{privilege} WITH GRANT OPTION on {}: for {user} ({}: {})",
                        names.target(grant.scope),
                        role.jobs(),
                        grant.why
                    ));
                }
            }
        }
    }
    missing
}

/// The accounts with their passwords from `TOC_BACKUP_PASSWORD`, `TOC_BINLOG_PASSWORD` and
/// `TOC_RESTORE_TEST_PASSWORD` (`var` reads the environment), one error naming every
/// variable that is missing.
pub fn accounts_from_variables(
    roles: &[Role],
    var: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Account>> {
    let missing: Vec<&str> = roles
        .iter()
        .map(|r| r.password_variable())
        .filter(|v| var(v).filter(|p| !p.is_empty()).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Config {
            variable: missing.join(", "),
            reason: "not set: export each user's password (at least 16 characters), or pass \
                     --from-stack-secrets STACK to use the passwords the stack generated"
                .into(),
        });
    }
    roles
        .iter()
        .map(|role| {
            let variable = role.password_variable();
            Account::new(
                *role,
                role.user().to_string(),
                var(variable).unwrap_or_default(),
                variable,
            )
        })
        .collect()
}

/// The accounts from the secrets the stack generated (`STACK/database/backup`, …): each
/// secret names its user and holds its password, which thus never leaves AWS but for the
/// server. A user whose secret does not exist (the binlog archive not deployed) is returned
/// apart, to be named, not set up.
pub async fn accounts_from_stack_secrets(
    client: &aws_sdk_secretsmanager::Client,
    stack: &str,
    roles: &[Role],
) -> Result<(Vec<Account>, Vec<String>)> {
    let mut accounts = Vec::new();
    let mut absent = Vec::new();
    for role in roles {
        let secret = role.secret_name(stack);
        let Some(url) = crate::credentials::from_secret_if_exists(client, &secret, None).await?
        else {
            absent.push(secret);
            continue;
        };
        let password = url.password().unwrap_or_default().to_string();
        accounts.push(Account::new(
            *role,
            url.user.clone(),
            password,
            &format!("secret {secret}"),
        )?);
    }
    if accounts.is_empty() {
        return Err(Error::Secret {
            secret: absent.join(", "),
            reason: format!(
                "none exists: is {stack} the name of the deployed stack (its secrets are \
                 STACK/database/backup, …)?"
            ),
        });
    }
    Ok((accounts, absent))
}

/// What `setup-users --print` shows, changing nothing: a comment line for each privilege the
/// connected user would need and lacks, then the statements with the passwords as
/// placeholders (`'<TOC_BACKUP_PASSWORD>'`).
pub async fn printed_setup(conn: &mut Conn, roles: &[Role], names: &Names) -> Result<Vec<String>> {
    let facts = crate::restore::preflight::server_facts(conn).await?;
    let flavour = Flavour::of(&facts);
    let named: Vec<(Role, String)> = roles.iter().map(|r| (*r, r.user().into())).collect();
    let mut lines: Vec<String> = missing_master_privileges(&facts.grants, &named, names, flavour)
        .into_iter()
        .map(|line| format!("-- {} lacks {line}", facts.current_user))
        .collect();
    let plan: Vec<_> = named.into_iter().map(|(r, u)| (r, u, None)).collect();
    lines.extend(
        setup_statements(&plan, names, flavour)
            .into_iter()
            .map(|statement| format!("{};", statement.shown)),
    );
    Ok(lines)
}

/// What `setup-users` did to one user.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserReport {
    pub user: String,
    pub jobs: &'static str,
    pub created: bool,
    pub grants: Vec<String>,
}

/// Creates or updates the users on the connected server, as the connected (master) user,
/// after checking that it can grant every privilege: a refusal names each missing one and
/// changes nothing.
pub async fn setup_users(
    conn: &mut Conn,
    accounts: &[Account],
    names: &Names,
) -> Result<Vec<UserReport>> {
    let facts = crate::restore::preflight::server_facts(conn).await?;
    let flavour = Flavour::of(&facts);
    let roles: Vec<(Role, String)> = accounts.iter().map(|a| (a.role, a.user.clone())).collect();
    let missing = missing_master_privileges(&facts.grants, &roles, names, flavour);
    if !missing.is_empty() {
        return Err(Error::Refused {
            what: format!("setting up the project users as {}", facts.current_user),
            reasons: missing,
        });
    }
    // The passwords are quoted with backslash escapes on, whatever the server's default mode.
    conn.query_drop("SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')")
        .await
        .map_err(|e| Error::database("setup-users: setting the session's sql_mode", e))?;
    let mut reports = Vec::new();
    for account in accounts {
        let existed: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = '%'",
                (account.user.as_str(),),
            )
            .await
            .map_err(|e| Error::database(format!("looking up user {}", account.user), e))?;
        let statements = setup_statements(
            &[(account.role, account.user.clone(), Some(account))],
            names,
            flavour,
        );
        for statement in &statements {
            conn.query_drop(&statement.sql)
                .await
                .map_err(|e| Error::database(format!("setup-users: {}", statement.shown), e))?;
        }
        reports.push(UserReport {
            user: account.user.clone(),
            jobs: account.role.jobs(),
            created: existed.unwrap_or(0) == 0,
            grants: account
                .role
                .privileges(flavour)
                .iter()
                .map(|g| format!("{} ON {}", g.list.join(", "), names.target(g.scope)))
                .collect(),
        });
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            database: "toc_sis".into(),
            scratch_prefix: "toc_sis_restore_test".into(),
        }
    }

    /// The RDS for MariaDB master user's grants, as `SHOW GRANTS` prints them (10.11).
    const RDS_MARIADB_MASTER: &str = "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, \
        RELOAD, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, CREATE TEMPORARY TABLES, \
        LOCK TABLES, EXECUTE, REPLICATION SLAVE, BINLOG MONITOR, CREATE VIEW, SHOW VIEW, \
        CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER ON *.* TO `admin`@`%` \
        WITH GRANT OPTION";

    #[test]
    fn the_rds_mariadb_master_can_grant_everything_the_users_need() {
        let master = Grants::parse([RDS_MARIADB_MASTER]);
        let roles: Vec<_> = Role::ALL.iter().map(|r| (*r, r.user().into())).collect();
        assert_eq!(
            missing_master_privileges(&master, &roles, &names(), Flavour::MariaDb),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_master_without_grant_option_or_replication_is_refused_one_line_each() {
        let master = Grants::parse([
            "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, CREATE USER ON *.* TO `ops`@`%`",
        ]);
        let roles = vec![(Role::Binlog, "toc_binlog".to_string())];
        let missing = missing_master_privileges(&master, &roles, &names(), Flavour::MariaDb);
        assert_eq!(missing.len(), 2, "{missing:#?}");
        assert!(
            missing[0].starts_with("REPLICATION SLAVE WITH GRANT OPTION on *.*: for toc_binlog")
        );
        assert!(missing[1].starts_with("BINLOG MONITOR WITH GRANT OPTION"));
    }

    #[test]
    fn no_user_is_given_anything_that_lets_it_act_as_another_account() {
        for flavour in [Flavour::MariaDb, Flavour::MySql8] {
            for role in Role::ALL {
                for grant in role.privileges(flavour) {
                    for privilege in grant.list {
                        assert!(
                            !FORBIDDEN_PRIVILEGES.contains(privilege),
                            "{role:?} gets {privilege}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn database_names_in_grants_are_literal_patterns() {
        let names = Names {
            database: "toc_sis%`x".into(),
            scratch_prefix: "a_b".into(),
        };
        assert_eq!(names.target(Scope::Database), "`toc\\_sis\\%``x`.*");
        assert_eq!(names.target(Scope::ScratchDatabases), "`a\\_b\\_%`.*");
        assert!(crate::mysql::like("toc\\_sis\\%`x", "toc_sis%`x"));
        assert!(!crate::mysql::like("toc\\_sis", "tocXsis"));
    }

    #[test]
    fn shown_statements_never_hold_the_password() {
        let account = Account::new(
            Role::Backup,
            "toc_backup".into(),
            "s3cret-'quote'-and-more".into(),
            "TOC_BACKUP_PASSWORD",
        )
        .unwrap();
        let statements = setup_statements(
            &[(Role::Backup, "toc_backup".into(), Some(&account))],
            &names(),
            Flavour::MariaDb,
        );
        assert!(statements[0].sql.contains("'s3cret-''quote''-and-more'"));
        for statement in &statements {
            assert!(!statement.shown.contains("s3cret"), "{}", statement.shown);
        }
        assert!(!format!("{account:?}").contains("s3cret"));
    }

    #[test]
    fn short_passwords_are_refused_by_their_variable() {
        let error = Account::new(
            Role::Binlog,
            "toc_binlog".into(),
            "short".into(),
            "TOC_BINLOG_PASSWORD",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("TOC_BINLOG_PASSWORD is 5 characters long"),
            "{error}"
        );
        assert!(!error.contains("short"), "{error}");
    }
}
