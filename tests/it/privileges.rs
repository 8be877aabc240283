//! Issue 13: the project's own least-privilege users on a binlog-on server, as RDS has them.
//! `toc-backup setup-users` is run as a user with exactly the RDS for
//! MariaDB master user's privileges; the dump runs as `toc_backup`, the restore test as
//! `toc_restore_test`, a disaster-recovery restore as a master-like user without SUPER. Each
//! either ends verified or refuses before creating anything, naming what to change.
//! Issue 26, item 4: the restore-test user is confined to its scratch databases and cannot act
//! as another account (the DEFINER=root escalation fails); the restore test creates the
//! objects as itself and still verifies them.

use std::path::Path;

use crate::common::private_server::PrivateServer;
use crate::common::*;

/// The password `backup-users.sql` sets (a placeholder the file tells operators to replace).
const PLACEHOLDER_PASSWORD: &str = "CHANGE-ME-or-use-IAM";

/// The RDS-like master user (RDS for MariaDB's privileges, no SUPER or SET USER) the tests
/// apply `backup-users.sql` as, and its password.
const MASTER: &str = "rds_master";
const MASTER_PASSWORD: &str = "master-password";

/// What the restore-test user holds on its scratch databases, and nothing else.
const RESTORE_TEST_PRIVILEGES: [&str; 16] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "REFERENCES",
    "INDEX",
    "ALTER",
    "CREATE TEMPORARY TABLES",
    "CREATE VIEW",
    "SHOW VIEW",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EVENT",
    "TRIGGER",
];

fn stdout_and_stderr(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn manifest_objects(store: &Path) -> usize {
    let text = std::fs::read_to_string(find_file(store, "manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    manifest["objects"].as_array().expect("objects").len()
}

/// A private server (binlog on, log_bin_trust_function_creators 0 by default) holding the
/// sample database as `toc_sis`, with `toc-backup setup-users` run by an
/// RDS-like master user.
fn sample_server_with_project_users() -> PrivateServer {
    let server = PrivateServer::start("");
    assert_ok(&run_cli(
        &[
            "sample-data",
            "--database-url",
            &server.url("root", "127.0.0.1", "toc_sis"),
        ],
        &[],
    ));
    server.create_rds_master(MASTER, MASTER_PASSWORD);
    if let Err(errors) = server.apply_project_users_as(MASTER, MASTER_PASSWORD) {
        panic!("backup-users.sql has statements the RDS master user cannot run:\n{errors}");
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_privilege_users_back_up_whole_and_restore_or_refuse_before_creating_anything() {
    let server = sample_server_with_project_users();
    server.root_sql(
        "USE toc_sis;
         CREATE PROCEDURE count_students() SELECT COUNT(*) FROM students;
         CREATE FUNCTION grade_points(g DECIMAL(5,2)) RETURNS INT DETERMINISTIC RETURN ROUND(g * 10);
         CREATE TRIGGER students_touch BEFORE UPDATE ON students FOR EACH ROW SET @touched = 1;
         CREATE VIEW student_count AS SELECT COUNT(*) AS n FROM students;
         CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO SET @nightly = 1;",
    );
    let password = [("DATABASE_PASSWORD", PLACEHOLDER_PASSWORD)];

    // The backup user's dump holds every object.
    let store = tempfile::tempdir().expect("store");
    let store_text = store.path().to_string_lossy().into_owned();
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &server.url("toc_backup", "127.0.0.1", "toc_sis"),
            "--store",
            &store_text,
        ],
        &password,
    ));
    let objects = object_count(&server, "toc_sis").await;
    assert!(objects >= 5);
    assert_eq!(
        manifest_objects(store.path()),
        objects,
        "every object is backed up"
    );

    // The restore test as its own user, creating the objects as itself (it has no SET USER):
    // refused before anything is created.
    let restore_test = |store: &str| {
        run_cli(
            &[
                "restore-test",
                "--database-url",
                &server.url("toc_restore_test", "127.0.0.1", ""),
                "--store",
                store,
                "--definer",
                "current",
            ],
            &password,
        )
    };
    let refused = restore_test(&store_text);
    assert!(!refused.status.success());
    let said = stdout_and_stderr(&refused);
    assert!(
        said.contains("toc_restore_test@%")
            && said.contains("log_bin_trust_function_creators = 1")
            && said.contains("nothing was created"),
        "{said}"
    );
    let scratch = scratch_databases(&server).await;
    assert!(scratch.is_empty(), "the refused test created {scratch:?}");

    // With the parameter set (on RDS: the DB parameter group) it passes.
    server.root_sql("SET GLOBAL log_bin_trust_function_creators = 1;");
    let passed = restore_test(&store_text);
    assert_ok(&passed);

    // A master-like user without SUPER or SET USER, as on a fresh RDS for MariaDB instance.
    server.create_rds_master("dr_admin", "dr-password");
    let restore = |definer: &str| {
        run_cli(
            &[
                "restore",
                "--database-url",
                &server.url("dr_admin", "127.0.0.1", ""),
                "--store",
                &store_text,
                "--target-database",
                "toc_sis_recovered",
                "--definer",
                definer,
            ],
            &[("DATABASE_PASSWORD", "dr-password")],
        )
    };
    let kept = restore("keep");
    assert!(!kept.status.success());
    let said = stdout_and_stderr(&kept);
    assert!(
        said.contains("SET USER") && said.contains("--definer current"),
        "{said}"
    );
    assert!(
        !database_exists(&server, "toc_sis_recovered").await,
        "refused before creating the target"
    );
    let current = restore("current");
    assert_ok(&current);
    let said = stdout_and_stderr(&current);
    assert!(
        said.contains(&format!("{objects} objects created as the restoring user")),
        "{said}"
    );
    let definers = definers(&server, "toc_sis_recovered").await;
    assert_eq!(definers, vec!["dr_admin@%".to_string()], "{definers:?}");
}

async fn root_connection(server: &PrivateServer) -> mysql_async::Conn {
    let url = toc_sis_backup::config::DatabaseUrl::parse(&server.url("root", "127.0.0.1", ""))
        .expect("url");
    toc_sis_backup::mysql::connect(&url, None)
        .await
        .expect("root connection")
}

async fn scratch_databases(server: &PrivateServer) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    root_connection(server)
        .await
        .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'toc\\_sis\\_restore\\_test\\_%'")
        .await
        .expect("schemata")
}

async fn database_exists(server: &PrivateServer, name: &str) -> bool {
    use mysql_async::prelude::Queryable;
    let found: Option<String> = root_connection(server)
        .await
        .exec_first(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (name,),
        )
        .await
        .expect("schemata");
    found.is_some()
}

async fn object_count(server: &PrivateServer, database: &str) -> usize {
    use mysql_async::prelude::Queryable;
    let count: Option<u64> = root_connection(server)
        .await
        .exec_first(
            "SELECT (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?)
                  + (SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?)
                  + (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?)
                  + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)",
            (database, database, database, database),
        )
        .await
        .expect("objects");
    count.unwrap_or_default() as usize
}

/// Every distinct DEFINER of the database's routines, views, triggers and events.
async fn definers(server: &PrivateServer, database: &str) -> Vec<String> {
    use mysql_async::prelude::Queryable;
    root_connection(server)
        .await
        .exec(
            "SELECT DISTINCT d FROM (
               SELECT DEFINER AS d FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
               UNION SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
               UNION SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
               UNION SELECT DEFINER FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?) all_definers",
            (database, database, database, database),
        )
        .await
        .expect("definers")
}

/// Issue 13, item 6: the accounts and grants that reach the database are recorded apart from
/// the SQL and recreated only with `restore --with-accounts` (locked, without a credential).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_recorded_apart_and_recreated_locked_on_request() {
    use mysql_async::prelude::Queryable;
    let server = sample_server_with_project_users();
    server.root_sql(
        "CREATE USER 'registrar'@'%' IDENTIFIED BY 'registrar-secret';
         GRANT SELECT, UPDATE ON toc_sis.* TO 'registrar'@'%';
         GRANT INSERT ON toc_sis.students TO 'registrar'@'%';",
    );

    // The least-privilege backup user cannot read the grant tables: said, not hidden.
    let least = tempfile::tempdir().expect("store");
    let least_text = least.path().to_string_lossy().into_owned();
    let dumped = run_cli(
        &[
            "dump",
            "--database-url",
            &server.url("toc_backup", "127.0.0.1", "toc_sis"),
            "--store",
            &least_text,
        ],
        &[("DATABASE_PASSWORD", PLACEHOLDER_PASSWORD)],
    );
    assert_ok(&dumped);
    assert!(
        stdout_and_stderr(&dumped).contains("accounts not recorded"),
        "{}",
        stdout_and_stderr(&dumped)
    );
    let restore_with_accounts = |store: &str, target: &str| {
        run_cli(
            &[
                "restore",
                "--database-url",
                &server.url("root", "127.0.0.1", ""),
                "--store",
                store,
                "--target-database",
                target,
                "--with-accounts",
            ],
            &[],
        )
    };
    let refused = restore_with_accounts(&least_text, "toc_sis_no_accounts");
    assert!(!refused.status.success());
    assert!(
        stdout_and_stderr(&refused).contains("has no accounts to restore")
            && stdout_and_stderr(&refused).contains("grant it SELECT ON mysql.*"),
        "{}",
        stdout_and_stderr(&refused)
    );

    // An administrator's dump records them; a plain restore leaves them alone.
    let full = tempfile::tempdir().expect("store");
    let full_text = full.path().to_string_lossy().into_owned();
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &server.url("root", "127.0.0.1", "toc_sis"),
            "--store",
            &full_text,
        ],
        &[],
    ));
    let accounts_file = find_file(full.path(), "accounts.gz");
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(accounts_file).expect("open")),
        &mut text,
    )
    .expect("gunzip");
    assert!(text.contains("'registrar'@'%' ACCOUNT LOCK"), "{text}");
    assert!(
        !text
            .lines()
            .any(|line| !line.starts_with("--") && line.contains("IDENTIFIED")),
        "no credential without --with-password-hashes:\n{text}"
    );

    server.root_sql("DROP USER 'registrar'@'%';");
    assert_ok(&restore_with_accounts(&full_text, "toc_sis_accounts"));
    let mut root = root_connection(&server).await;
    let grants: Vec<String> = root
        .query("SHOW GRANTS FOR 'registrar'@'%'")
        .await
        .expect("the account exists again");
    let all = grants.join("\n");
    assert!(
        all.contains("GRANT SELECT, UPDATE ON `toc_sis_accounts`.*")
            && all.contains("GRANT INSERT ON `toc_sis_accounts`.`students`"),
        "{all}"
    );
    let locked: Option<String> = root
        .query_first("SHOW CREATE USER 'registrar'@'%'")
        .await
        .expect("show create user");
    assert!(
        locked
            .as_deref()
            .is_some_and(|c| c.contains("ACCOUNT LOCK")),
        "{locked:?}"
    );
}

/// The privileges of `user@%` on `on` (as SHOW GRANTS writes it, e.g. "*.*"), by name.
fn grants_on(server: &PrivateServer, user: &str, on: &str) -> Vec<String> {
    let grants = server.root_query(None, &format!("SHOW GRANTS FOR '{user}'@'%'"));
    grants
        .lines()
        // The client's batch output doubles backslashes (`toc\\_sis…`): undone here.
        .map(|line| line.replace("\\\\", "\\"))
        .filter_map(|line| {
            let rest = line.strip_prefix("GRANT ")?;
            let (privileges, target) = rest.split_once(" ON ")?;
            let (target, _) = target.split_once(" TO ")?;
            (target == on).then(|| {
                privileges
                    .split(", ")
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
        })
        .flatten()
        .collect()
}

/// Issue 26 item 4, issue 27: `toc-backup setup-users` runs as the RDS for MariaDB master user
/// (no SUPER, SET USER or DELETE HISTORY, so no GRANT ALL on a database), run again it changes
/// nothing, and it takes away what the earlier users file granted the restore-test user.
#[test]
fn setup_users_runs_as_the_rds_master_and_leaves_the_restore_test_user_confined() {
    let server = PrivateServer::start("");
    // Installed from the earlier file on a self-managed server (run as root there).
    server.root_sql(
        "CREATE USER 'toc_restore_test'@'%' IDENTIFIED BY 'CHANGE-ME-or-use-IAM';
         GRANT ALL PRIVILEGES ON `toc\\_sis\\_restore\\_test\\_%`.* TO 'toc_restore_test'@'%';
         GRANT SET USER ON *.* TO 'toc_restore_test'@'%';
         GRANT SELECT ON `mysql`.`proc` TO 'toc_restore_test'@'%';",
    );
    server.create_rds_master(MASTER, MASTER_PASSWORD);
    for run in ["first", "second"] {
        if let Err(errors) = server.apply_project_users_as(MASTER, MASTER_PASSWORD) {
            panic!("{run} run: statements the RDS master user cannot run:\n{errors}");
        }
    }

    let global = grants_on(&server, "toc_restore_test", "*.*");
    assert_eq!(global, vec!["USAGE".to_string()], "no global privilege");
    let scratch = grants_on(
        &server,
        "toc_restore_test",
        "`toc\\_sis\\_restore\\_test\\_%`.*",
    );
    let mut expected: Vec<String> = RESTORE_TEST_PRIVILEGES
        .iter()
        .map(|p| p.to_string())
        .collect();
    expected.sort();
    let mut held = scratch;
    held.sort();
    assert_eq!(held, expected, "the scratch databases' explicit list");
    let all = server.root_query(None, "SHOW GRANTS FOR 'toc_restore_test'@'%'");
    assert_eq!(all.lines().count(), 2, "nothing but those two:\n{all}");
    for forbidden in [
        "SET USER",
        "SUPER",
        "ALL PRIVILEGES",
        "GRANT OPTION",
        "`mysql`",
    ] {
        assert!(!all.contains(forbidden), "{forbidden} in:\n{all}");
    }
    // The other users keep what they had.
    // The database name is a LIKE pattern in a grant: escaped, it matches `toc_sis` only.
    let mut backup = grants_on(&server, "toc_backup", "`toc\\_sis`.*");
    backup.sort();
    assert_eq!(backup, ["EVENT", "SELECT", "SHOW VIEW", "TRIGGER"]);
    assert_eq!(
        grants_on(&server, "toc_backup", "`mysql`.`proc`"),
        ["SELECT"]
    );
    assert_eq!(grants_on(&server, "toc_backup", "*.*"), ["BINLOG MONITOR"]);
    assert_eq!(
        grants_on(&server, "toc_binlog", "*.*"),
        ["REPLICATION SLAVE", "BINLOG MONITOR"]
    );
}

/// Issue 26 item 4: with the file's grants (applied as root, as on a self-managed server, so
/// that nothing but the file confines the user), the restore-test user cannot create an
/// object whose DEFINER is root, and so cannot run anything as root: no `evil` account appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restore_test_user_cannot_create_or_run_anything_as_root() {
    use mysql_async::prelude::Queryable;
    let server = PrivateServer::start("");
    // So that functions and triggers are refused for no reason but the definer.
    server.root_sql("SET GLOBAL log_bin_trust_function_creators = 1;");
    server.apply_project_users();
    let url = toc_sis_backup::config::DatabaseUrl::parse(&server.url(
        &format!("toc_restore_test:{PLACEHOLDER_PASSWORD}"),
        "127.0.0.1",
        "",
    ))
    .expect("url");
    let mut conn = toc_sis_backup::mysql::connect(&url, None)
        .await
        .expect("the restore-test user connects");
    let scratch = "toc_sis_restore_test_escalation";
    conn.query_drop(format!(
        "CREATE DATABASE {scratch}; CREATE TABLE {scratch}.t (id INT PRIMARY KEY)"
    ))
    .await
    .expect("its own scratch database");

    // Each object would run as root@localhost: a procedure and a function creating an account,
    // a trigger writing the grant tables, a view reading every password hash, an event.
    let make_evil = "INSERT INTO mysql.global_priv (Host, User, Priv) VALUES ('%', 'evil', '{}')";
    let attempts = [
        (
            "procedure",
            format!("CREATE DEFINER=root@localhost PROCEDURE {scratch}.p() SQL SECURITY DEFINER BEGIN CREATE USER evil@'%'; GRANT ALL ON *.* TO evil@'%' WITH GRANT OPTION; END"),
            format!("CALL {scratch}.p()"),
        ),
        (
            "function",
            format!("CREATE DEFINER=root@localhost FUNCTION {scratch}.f() RETURNS INT MODIFIES SQL DATA SQL SECURITY DEFINER BEGIN {make_evil}; RETURN 1; END"),
            format!("SELECT {scratch}.f()"),
        ),
        (
            "trigger",
            format!("CREATE DEFINER=root@localhost TRIGGER {scratch}.tr BEFORE INSERT ON {scratch}.t FOR EACH ROW {make_evil}"),
            format!("INSERT INTO {scratch}.t VALUES (1)"),
        ),
        (
            "view",
            format!("CREATE DEFINER=root@localhost SQL SECURITY DEFINER VIEW {scratch}.v AS SELECT User, Priv FROM mysql.global_priv"),
            format!("SELECT * FROM {scratch}.v"),
        ),
        (
            "event",
            format!("CREATE DEFINER=root@localhost EVENT {scratch}.e ON SCHEDULE AT CURRENT_TIMESTAMP DO CREATE USER evil@'%'"),
            "DO 1".to_string(),
        ),
    ];
    let mut created = Vec::new();
    for (kind, create, run) in &attempts {
        match conn.query_drop(create).await {
            // 1227: needs SET USER or SUPER (the view may be refused first for reading
            // mysql.*, 1142).
            Err(e) => assert!(
                e.to_string().contains("SET USER")
                    || (*kind == "view" && e.to_string().contains("denied")),
                "the {kind} was refused for another reason: {e}"
            ),
            Ok(()) => {
                created.push(*kind);
                // Created: it must still not run as root.
                let _ = conn.query_drop(run).await;
            }
        }
    }
    // Its own procedure runs as itself: no CREATE USER.
    conn.query_drop(format!(
        "CREATE PROCEDURE {scratch}.own() SQL SECURITY DEFINER BEGIN CREATE USER evil@'%'; END"
    ))
    .await
    .expect("a procedure of its own");
    let refused = conn.query_drop(format!("CALL {scratch}.own()")).await;
    assert!(refused.is_err(), "CREATE USER ran as the restore-test user");
    conn.query_drop(format!("DROP DATABASE {scratch}"))
        .await
        .expect("drops its scratch database");
    let _ = conn.disconnect().await;

    let evil = server.root_query(
        None,
        "SELECT COUNT(*) FROM mysql.global_priv WHERE User = 'evil'",
    );
    assert_eq!(
        evil.trim(),
        "0",
        "the restore-test user created `evil` (created as root: {created:?})"
    );
    assert!(
        created.is_empty(),
        "objects with DEFINER=root@localhost were created: {created:?}"
    );
}

/// Issue 26 item 4: the restore-test function, as `toc_restore_test` with the file's grants
/// (applied by the RDS-like master), passes on a database whose views, routines, triggers and
/// events are defined by another account (`app@%`): by default it creates them as itself and
/// verifies them without the DEFINER clause. `RESTORE_DEFINER=keep` is still honoured (and
/// refused before anything is created: the user cannot create objects for `app`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_restore_test_function_passes_as_its_user_on_objects_of_another_definer() {
    use std::collections::HashMap;
    use std::time::{Duration, SystemTime};
    use toc_sis_backup::lambda::restore_test::RestoreTestFunction;
    use toc_sis_backup::lambda::Env;

    let server = sample_server_with_project_users();
    server.root_sql(
        "SET GLOBAL log_bin_trust_function_creators = 1;
         CREATE USER 'app'@'%' IDENTIFIED BY 'app-password';
         GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON toc_sis.* TO 'app'@'%';
         USE toc_sis;
         CREATE DEFINER='app'@'%' SQL SECURITY DEFINER VIEW student_count AS SELECT COUNT(*) AS n FROM students;
         CREATE DEFINER='app'@'%' PROCEDURE count_students() SQL SECURITY DEFINER SELECT COUNT(*) FROM students;
         CREATE DEFINER='app'@'%' FUNCTION grade_points(g DECIMAL(5,2)) RETURNS INT DETERMINISTIC RETURN ROUND(g * 10);
         CREATE DEFINER='app'@'%' TRIGGER students_touch BEFORE UPDATE ON students FOR EACH ROW SET @touched = 1;
         CREATE DEFINER='app'@'%' EVENT nightly ON SCHEDULE EVERY 1 DAY DO SET @nightly = 1;",
    );
    // The sample database's own objects are root's; these are app's.
    let defined_by = definers(&server, "toc_sis").await;
    assert!(defined_by.contains(&"app@%".to_string()), "{defined_by:?}");
    let objects = object_count(&server, "toc_sis").await;
    let accounts_before = server.root_query(
        None,
        "SELECT User, Host, Priv FROM mysql.global_priv ORDER BY User, Host",
    );

    let bucket = aws::bucket("toc-privileges").await;
    let store = format!("s3://{bucket}/college");
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &server.url("toc_backup", "127.0.0.1", "toc_sis"),
            "--store",
            &store,
        ],
        &[("DATABASE_PASSWORD", PLACEHOLDER_PASSWORD)],
    ));
    assert_eq!(manifest_objects_in_s3(&bucket).await, objects);

    let event: serde_json::Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/events/restore-test-scheduled.json"
        ))
        .expect("event"),
    )
    .expect("JSON");
    let function = |definer: Option<&str>| {
        let mut env: HashMap<String, String> = [
            ("BACKUP_STORE", store.clone()),
            (
                "DATABASE_URL",
                server.url("toc_restore_test", "127.0.0.1", ""),
            ),
            ("DATABASE_PASSWORD", PLACEHOLDER_PASSWORD.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(definer) = definer {
            env.insert("RESTORE_DEFINER".into(), definer.into());
        }
        async move {
            RestoreTestFunction::from_env(&env as &dyn Env, aws::config().await)
                .await
                .expect("restore-test config")
        }
    };
    let deadline = || Some(SystemTime::now() + Duration::from_secs(900));

    let passed = function(None)
        .await
        .handle(event.clone(), deadline())
        .await
        .expect("the restore test passes as toc_restore_test");
    assert_eq!(passed["passed"], true, "{passed}");
    assert!(passed["tables"].as_u64().unwrap_or(0) > 0, "{passed}");

    let kept = function(Some("keep"))
        .await
        .handle(event, deadline())
        .await
        .expect_err("keeping app@% as the definer needs SET USER");
    let said = kept.to_string();
    assert!(
        said.contains("SET USER") && said.contains("--definer current"),
        "{said}"
    );

    let scratch = scratch_databases(&server).await;
    assert!(scratch.is_empty(), "left behind: {scratch:?}");
    let accounts_after = server.root_query(
        None,
        "SELECT User, Host, Priv FROM mysql.global_priv ORDER BY User, Host",
    );
    assert_eq!(
        accounts_before, accounts_after,
        "the restore test changed an account"
    );
}

/// The number of objects (views, routines, triggers, events) in the one manifest in `bucket`.
async fn manifest_objects_in_s3(bucket: &str) -> usize {
    let keys = aws::keys(bucket, "college/").await;
    let key = keys
        .iter()
        .find(|k| k.ends_with("/manifest.json"))
        .unwrap_or_else(|| panic!("a manifest in {keys:?}"));
    let object = aws::s3()
        .await
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get manifest");
    let bytes = object.body.collect().await.expect("read").into_bytes();
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).expect("manifest JSON");
    manifest["objects"].as_array().expect("objects").len()
}

/// Issue 27 item 1: a master user that cannot grant what the users need is refused before
/// anything changes, one line per missing privilege; `--print` shows the SQL with the
/// passwords as placeholders; a short password is refused by its variable; no password is
/// ever printed.
#[test]
fn setup_users_refuses_a_master_that_cannot_grant_and_never_prints_a_password() {
    let server = PrivateServer::start("");
    server.root_sql(
        "CREATE USER weak@'%' IDENTIFIED BY 'weak-password';
         GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, CREATE USER ON *.* TO weak@'%' WITH GRANT OPTION;",
    );
    let secret = "a-long-secret-password-1234";
    let env = [
        ("DATABASE_PASSWORD", "weak-password"),
        ("TOC_BACKUP_PASSWORD", secret),
        ("TOC_BINLOG_PASSWORD", secret),
        ("TOC_RESTORE_TEST_PASSWORD", secret),
    ];
    let url = server.url("weak", "127.0.0.1", "");
    let refused = run_cli(&["setup-users", "--database-url", &url], &env);
    let said = stdout_and_stderr(&refused);
    assert!(!refused.status.success(), "{said}");
    for missing in [
        "BINLOG MONITOR WITH GRANT OPTION on *.*: for toc_backup",
        "REPLICATION SLAVE WITH GRANT OPTION on *.*: for toc_binlog",
        "INSERT WITH GRANT OPTION on `toc\\_sis\\_restore\\_test\\_%`.*: for toc_restore_test",
    ] {
        assert!(said.contains(missing), "{missing} not named in:\n{said}");
    }
    assert!(!said.contains(secret), "{said}");
    let users = server.root_query(
        None,
        "SELECT COUNT(*) FROM mysql.user WHERE User LIKE 'toc\\_%'",
    );
    assert_eq!(users.trim(), "0", "nothing was created");

    let printed = run_cli(&["setup-users", "--database-url", &url, "--print"], &env);
    let printed_text = stdout_and_stderr(&printed);
    assert!(printed.status.success(), "{printed_text}");
    assert!(printed_text.contains(
        "CREATE USER IF NOT EXISTS 'toc_backup'@'%' IDENTIFIED BY '<TOC_BACKUP_PASSWORD>';"
    ));
    assert!(
        printed_text.contains("-- weak@% lacks REPLICATION SLAVE"),
        "{printed_text}"
    );
    assert!(!printed_text.contains(secret), "{printed_text}");

    let short = run_cli(
        &[
            "setup-users",
            "--database-url",
            &server.url("root", "127.0.0.1", ""),
        ],
        &[
            ("TOC_BACKUP_PASSWORD", "short"),
            ("TOC_BINLOG_PASSWORD", secret),
            ("TOC_RESTORE_TEST_PASSWORD", secret),
        ],
    );
    let short_text = stdout_and_stderr(&short);
    assert!(!short.status.success());
    assert!(
        short_text.contains("TOC_BACKUP_PASSWORD is 5 characters long; expected at least 16"),
        "{short_text}"
    );
    let none = run_cli(
        &[
            "setup-users",
            "--database-url",
            &server.url("root", "127.0.0.1", ""),
        ],
        &[],
    );
    assert!(
        stdout_and_stderr(&none).contains(
            "TOC_BACKUP_PASSWORD, TOC_BINLOG_PASSWORD, TOC_RESTORE_TEST_PASSWORD not set"
        ),
        "{}",
        stdout_and_stderr(&none)
    );
}

/// `toc-backup doctor --json` against `server` and `store`: its exit status and each check's
/// (name, status, reason).
fn doctor(
    server: &PrivateServer,
    store: &str,
    extra: &[&str],
) -> (i32, Vec<(String, String, String)>) {
    let url = server.url("root", "127.0.0.1", "");
    let mut args = vec!["doctor", "--json", "--database-url", &url, "--store", store];
    args.extend_from_slice(extra);
    let output = run_cli(&args, &[]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("doctor's JSON:\n{}", stdout_and_stderr(&output)));
    let checks = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (output.status.code().unwrap_or(-1), checks)
}

fn not_ok(checks: &[(String, String, String)]) -> Vec<String> {
    checks
        .iter()
        .filter(|(_, status, _)| status != "OK")
        .map(|(name, _, _)| name.clone())
        .collect()
}

/// Issue 27 item 2: `doctor` names each server setting and bucket protection that is missing,
/// each project user whose grants are wrong, and nothing once they are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_each_missing_setting_and_nothing_once_they_are_set() {
    use aws_sdk_s3::types::*;
    let server = PrivateServer::start("--binlog-row-metadata=MINIMAL");
    server.root_sql("SET GLOBAL log_bin_trust_function_creators = 0;");
    let bucket = crate::common::aws::bucket("doctor-bare").await;
    let store = format!("s3://{bucket}/prod/");

    let (code, checks) = doctor(&server, &store, &[]);
    assert_eq!(code, 2, "{checks:#?}");
    let named = not_ok(&checks);
    for expected in [
        "binlog_row_metadata",
        "log_bin_trust_function_creators",
        "user toc_backup",
        "user toc_binlog",
        "user toc_restore_test",
        "bucket versioning",
        "bucket Object Lock",
        "bucket encryption",
        "bucket replication",
        "bucket lifecycle",
    ] {
        assert!(
            named.contains(&expected.to_string()),
            "{expected} not named: {checks:#?}"
        );
    }
    let reason = |name: &str| {
        checks
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(reason("binlog_row_metadata").contains("set binlog_row_metadata=FULL"));
    assert!(reason("user toc_binlog").contains("run toc-backup setup-users"));

    // Fixed as the README says: the settings, the users, a bucket as the stack makes it (TLS
    // stays optional here: the tests' client connects in plain text, a WARNING).
    server.root_sql(
        "SET GLOBAL binlog_row_metadata = FULL; SET GLOBAL log_bin_trust_function_creators = 1;",
    );
    server.apply_project_users();
    // A user granted more than its list by hand is named again.
    server.root_sql("GRANT CREATE USER ON *.* TO 'toc_binlog'@'%';");
    let s3 = crate::common::aws::s3().await;
    let locked = format!("doctor-whole-{:08x}", rand::random::<u32>());
    s3.create_bucket()
        .bucket(&locked)
        .object_lock_enabled_for_bucket(true)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("bucket with Object Lock");
    s3.put_bucket_versioning()
        .bucket(&locked)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
    s3.put_object_lock_configuration()
        .bucket(&locked)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(35)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("lock default");
    let key = "arn:aws:kms:eu-west-1:123456789012:key/00000000-0000-0000-0000-000000000001";
    crate::common::aws::set_default_key(&s3, &locked, key).await;
    s3.put_bucket_replication()
        .bucket(&locked)
        .replication_configuration(
            ReplicationConfiguration::builder()
                .role("arn:aws:iam::123456789012:role/replication")
                .rules(
                    ReplicationRule::builder()
                        .id("database")
                        .status(ReplicationRuleStatus::Enabled)
                        .priority(1)
                        .filter(ReplicationRuleFilter::builder().prefix("database/").build())
                        .delete_marker_replication(
                            DeleteMarkerReplication::builder()
                                .status(DeleteMarkerReplicationStatus::Disabled)
                                .build(),
                        )
                        .destination(
                            Destination::builder()
                                .bucket("arn:aws:s3:::replica")
                                .build()
                                .expect("destination"),
                        )
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("replication"),
        )
        .send()
        .await
        .expect("replication");
    s3.put_bucket_lifecycle_configuration()
        .bucket(&locked)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("failed-runs")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("database/").build())
                        .expiration(LifecycleExpiration::builder().days(3).build())
                        .build()
                        .expect("rule"),
                )
                .build()
                .expect("lifecycle"),
        )
        .send()
        .await
        .expect("lifecycle");

    let (code, checks) = doctor(&server, &format!("s3://{locked}/prod/"), &[]);
    assert_eq!(
        not_ok(&checks),
        ["TLS required", "user toc_binlog", "alert subscriptions"],
        "{checks:#?}"
    );
    assert!(checks
        .iter()
        .any(|(n, _, r)| n == "user toc_binlog" && r.contains("holds CREATE USER")));
    assert_eq!(code, 2);
    server.apply_project_users();
    let (code, checks) = doctor(&server, &format!("s3://{locked}/prod/"), &[]);
    assert_eq!(
        not_ok(&checks),
        ["TLS required", "alert subscriptions"],
        "{checks:#?}"
    );
    assert_eq!(code, 1, "a WARNING: the alert topic was not given");

    // With RDS access: the instance's backup retention and its parameter group's values.
    let rds = aws_sdk_rds::Client::new(&crate::common::aws::config().await);
    let instance = format!("doctor-{:08x}", rand::random::<u32>());
    rds.create_db_instance()
        .db_instance_identifier(&instance)
        .db_instance_class("db.t3.micro")
        .engine("mysql")
        .master_username("admin")
        .master_user_password("not-a-real-secret-1")
        .allocated_storage(20)
        .backup_retention_period(3)
        .send()
        .await
        .expect("instance");
    let (_, checks) = doctor(
        &server,
        &format!("s3://{locked}/prod/"),
        &["--rds-instance", &instance],
    );
    let found = |name: &str| {
        checks
            .iter()
            .find(|(n, _, _)| n == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {checks:#?}"))
    };
    let retention = found("RDS backup retention");
    assert_eq!(retention.1, "WARNING", "{retention:?}");
    let parameters = found("RDS parameters");
    assert_eq!(parameters.1, "CRITICAL");
    assert!(
        parameters.2.contains("binlog_row_metadata"),
        "{parameters:?}"
    );
}

/// Issue 27 item 1: `setup-users --from-stack-secrets STACK` sets up each user with the
/// password the stack generated into `STACK/database/<user>`, and names (skips) a user whose
/// secret the stack did not create (the binlog archive off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_users_takes_the_passwords_the_stack_generated() {
    let server = PrivateServer::start("");
    server.create_rds_master(MASTER, MASTER_PASSWORD);
    let stack = format!("college-{:08x}", rand::random::<u32>());
    let client = aws_sdk_secretsmanager::Client::new(&crate::common::aws::config().await);
    let generated = "Gen3rated0Passw0rdOf32Characters";
    for (suffix, user) in [
        ("backup", "toc_backup"),
        ("restore-test", "toc_restore_test"),
    ] {
        client
            .create_secret()
            .name(format!("{stack}/database/{suffix}"))
            .secret_string(format!(
                r#"{{"username":"{user}","password":"{generated}","host":"127.0.0.1","port":{},"dbname":"toc_sis"}}"#,
                server.port
            ))
            .send()
            .await
            .expect("secret");
    }
    let output = run_cli(
        &[
            "setup-users",
            "--database-url",
            &server.url(MASTER, "127.0.0.1", ""),
            "--from-stack-secrets",
            &stack,
        ],
        &[("DATABASE_PASSWORD", MASTER_PASSWORD)],
    );
    let said = stdout_and_stderr(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "skipped: secret {stack}/database/binlog does not exist"
        )),
        "{said}"
    );
    assert!(!said.contains(generated), "{said}");
    // The backup user connects with the generated password; no binlog user was made.
    server
        .sql_as("toc_backup", generated, "SELECT 1;")
        .expect("toc_backup logs in with the stack's password");
    let binlog = server.root_query(
        None,
        "SELECT COUNT(*) FROM mysql.user WHERE User = 'toc_binlog'",
    );
    assert_eq!(binlog.trim(), "0");
}
