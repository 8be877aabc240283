//! Issue 26: a hostile application user's names and definitions round-trip exactly through
//! every restore path, and no restore changes anything on the server but its target.
//!
//! On a private MariaDB with ROW binlogs and the project's users (`toc-backup setup-users`): the application
//! user `app`, allowed `toc_sis` only, creates tables, columns, indexes, views, routines,
//! triggers and events whose names hold newlines, backslashes, backticks, quotes, `*/`, `--`,
//! `#` and 64 multi-byte characters, definitions written under NO_BACKSLASH_ESCAPES and
//! ANSI_QUOTES, and rows that look like SQL. The dump runs as `toc_backup`, the archive as
//! `toc_binlog`, the restores as an RDS-like master user (no SUPER, no SET USER) with
//! `--definer current`, and the standard-tools recipe as root. Around each restore the whole
//! server (every other database's tables, rows and objects, and every account's grants) is
//! snapshot: only the target may differ.

use std::collections::BTreeMap;

use crate::common::private_server::PrivateServer;
use crate::common::*;

const PROJECT_PASSWORD: [(&str, &str); 1] = [("DATABASE_PASSWORD", "CHANGE-ME-or-use-IAM")];
const MASTER: &str = "college_admin";
const MASTER_PASSWORD: &str = "Master-pw-1";
const APP_PASSWORD: &str = "App-pw-1";

fn q(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn lit(text: &str) -> String {
    format!(
        "'{}'",
        text.replace('\\', "\\\\")
            .replace('\'', "''")
            .replace('\n', "\\n")
    )
}

const T_NEWLINE: &str = "t\nDROP DATABASE victim;\n--";
const T_BACKSLASH: &str = "a\\";
const T_TICKS: &str = "``é`'\"*/#";
const C_NEWLINE: &str = "c\n DROP DATABASE victim; -- x";
const V_NEWLINE: &str = "v\nDROP DATABASE victim;";
// Four backticks then é: the dump once sliced inside the é and panicked, every day.
const V_TICKS: &str = "````é";
const P_NEWLINE: &str = "p\nDROP DATABASE victim;#";
const F_ANSI: &str = "f\\";
const TR_QUALIFIED: &str = "tr\n-- x";
const E_NEWLINE: &str = "e\nDROP DATABASE victim;";
const TRACKED: &str = "g\n`'é\\";

fn long_name() -> String {
    "é".repeat(64)
}

/// The application's schema, as its own user `app` writes it.
fn hostile_schema() -> String {
    let long = long_name();
    let data = lit("x;\nDELIMITER ;\nDROP DATABASE victim;\n*/ -- ' \" ` \\");
    format!(
        "USE toc_sis;
CREATE TABLE {tn} (id INT PRIMARY KEY, {cn} VARCHAR(60) DEFAULT 'set DEFINER=admin here' COMMENT 'x */ -- # \\\\ DEFINER=`a`@`b` VIEW', KEY {idx} ({cn}));
CREATE TABLE {tb} (id INT PRIMARY KEY, {cb} INT);
CREATE TABLE {tt} (id INT PRIMARY KEY, v TEXT);
CREATE TABLE {tl} (id INT PRIMARY KEY);
CREATE TABLE {tr} (id INT PRIMARY KEY, note VARCHAR(100), updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6));
CREATE TABLE log_t (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(200));
INSERT INTO {tn} VALUES (1, {data}), (2, DEFAULT);
INSERT INTO {tb} VALUES (1, 1), (2, 2);
INSERT INTO {tt} VALUES (1, {data});
INSERT INTO {tl} VALUES (7);
INSERT INTO {tr} (id, note) VALUES (1, {data}), (2, 'plain');
CREATE VIEW {vn} AS SELECT '\\\\' AS `\\`, {cn} FROM {tn};
CREATE VIEW {vt} AS SELECT v FROM {tt};
SET sql_mode = 'NO_BACKSLASH_ESCAPES';
DELIMITER //
CREATE PROCEDURE {pn}() SELECT 'C:\\;; DROP DATABASE victim; -- ' AS path //
DELIMITER ;
SET sql_mode = 'ANSI_QUOTES';
CREATE FUNCTION \"{fa}\"() RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM \"{tbq}\");
SET sql_mode = DEFAULT;
CREATE TRIGGER toc_sis.{trq} BEFORE INSERT ON toc_sis.log_t FOR EACH ROW SET NEW.what = CONCAT('[', NEW.what, ']');
CREATE EVENT {en} ON SCHEDULE EVERY 1 DAY DO DELETE FROM victim.keep;
",
        tn = q(T_NEWLINE),
        cn = q(C_NEWLINE),
        idx = q("i\n*/--#"),
        tb = q(T_BACKSLASH),
        cb = q("d\\"),
        tt = q(T_TICKS),
        tl = q(&long),
        tr = q(TRACKED),
        vn = q(V_NEWLINE),
        vt = q(V_TICKS),
        pn = q(P_NEWLINE),
        fa = F_ANSI,
        tbq = T_BACKSLASH,
        trq = q(TR_QUALIFIED),
        en = q(E_NEWLINE),
    )
}

fn server() -> PrivateServer {
    let server = PrivateServer::start("--log-bin-trust-function-creators=1");
    server.root_sql(
        "CREATE DATABASE toc_sis; CREATE DATABASE victim; CREATE DATABASE other;
         CREATE TABLE victim.keep (id INT PRIMARY KEY); INSERT INTO victim.keep VALUES (1), (2);
         CREATE TABLE other.keep (id INT PRIMARY KEY); INSERT INTO other.keep VALUES (3);",
    );
    server.create_rds_master(MASTER, MASTER_PASSWORD);
    server
        .apply_project_users_as(MASTER, MASTER_PASSWORD)
        .expect("the project's users, as the RDS master");
    server
        .sql_as(
            MASTER,
            MASTER_PASSWORD,
            &format!(
                "CREATE USER app@'%' IDENTIFIED BY '{APP_PASSWORD}'; GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES, CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EXECUTE, TRIGGER, EVENT ON toc_sis.* TO app@'%';"
            ),
        )
        .expect("the application's user");
    server
        .sql_as("app", APP_PASSWORD, &hostile_schema())
        .expect("the hostile schema, as the application");
    server
}

fn rows(server: &PrivateServer, database: Option<&str>, sql: &str) -> Vec<String> {
    server
        .root_query(database, sql)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A table's CHECKSUM TABLE and SHOW CREATE TABLE (HEX, so any name survives the client).
fn table_state(server: &PrivateServer, database: &str, table_hex: &str) -> String {
    let name = String::from_utf8(hex::decode(table_hex).expect("hex")).expect("utf8");
    let qualified = format!("{}.{}", q(database), q(&name));
    let sum = server.root_query(None, &format!("CHECKSUM TABLE {qualified}"));
    let create = server
        .try_root_query(None, &format!("SHOW CREATE TABLE {qualified}"))
        .unwrap_or_default();
    format!(
        "{} {}",
        sum.split('\t').nth(1).unwrap_or_default().trim(),
        create.split_once('\t').map_or("", |(_, c)| c)
    )
}

/// What a database holds: each table's rows and definition, each object's body (a view's
/// with its own database's name taken out; not its definer or status, which `--definer current` and a copy's disabled events change).
fn content(server: &PrivateServer, database: &str) -> BTreeMap<String, String> {
    let schema = lit(database);
    let mut found = BTreeMap::new();
    for table in rows(
        server,
        None,
        &format!("SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = {schema} AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE '\\_restore%'"),
    ) {
        found.insert(format!("table {table}"), table_state(server, database, &table));
    }
    for (kind, query) in [
        ("view", format!("SELECT HEX(TABLE_NAME), HEX(REPLACE(VIEW_DEFINITION, CONCAT('`', REPLACE(TABLE_SCHEMA, '`', '``'), '`.'), '')) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {schema}")),
        ("routine", format!("SELECT HEX(ROUTINE_NAME), HEX(CONCAT(ROUTINE_TYPE, ROUTINE_DEFINITION, SQL_MODE)) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {schema}")),
        ("trigger", format!("SELECT HEX(TRIGGER_NAME), HEX(CONCAT(EVENT_OBJECT_TABLE, ACTION_STATEMENT)) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {schema}")),
        ("event", format!("SELECT HEX(EVENT_NAME), HEX(EVENT_DEFINITION) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {schema}")),
    ] {
        for line in rows(server, None, &query) {
            let (name, body) = line.split_once('\t').unwrap_or((&line, ""));
            found.insert(format!("{kind} {name}"), body.to_string());
        }
    }
    found
}

/// The whole server but `except`: every database's content with definers and event states,
/// and every account with its grants.
fn snapshot(server: &PrivateServer, except: &str) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for database in rows(
        server,
        None,
        "SELECT HEX(SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('information_schema', 'performance_schema', 'mysql', 'sys')",
    ) {
        let name = String::from_utf8(hex::decode(&database).expect("hex")).expect("utf8");
        if name == except {
            continue;
        }
        for (key, value) in content(server, &name) {
            all.insert(format!("{name}: {key}"), value);
        }
    }
    for line in rows(
        server,
        None,
        "SELECT CONCAT(HEX(ROUTINE_SCHEMA), ' ', HEX(ROUTINE_NAME), ' ', DEFINER) FROM information_schema.ROUTINES \
         UNION ALL SELECT CONCAT(HEX(TABLE_SCHEMA), ' ', HEX(TABLE_NAME), ' ', DEFINER) FROM information_schema.VIEWS \
         UNION ALL SELECT CONCAT(HEX(EVENT_SCHEMA), ' ', HEX(EVENT_NAME), ' ', DEFINER, ' ', STATUS) FROM information_schema.EVENTS \
         UNION ALL SELECT CONCAT(HEX(TRIGGER_SCHEMA), ' ', HEX(TRIGGER_NAME), ' ', DEFINER) FROM information_schema.TRIGGERS",
    ) {
        let schema_hex = line.split(' ').next().unwrap_or_default();
        if hex::decode(schema_hex).ok().as_deref() != Some(except.as_bytes()) {
            all.insert(format!("owner {line}"), String::new());
        }
    }
    for account in rows(
        server,
        None,
        "SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user",
    ) {
        // An account without grants (root@vm under skip-name-resolve) is recorded as such.
        let grants = server
            .try_root_query(None, &format!("SHOW GRANTS FOR {account}"))
            .unwrap_or_else(|error| error);
        all.insert(format!("account {account}"), grants);
    }
    all
}

fn assert_only_target_changed(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    what: &str,
) {
    for (key, value) in before {
        assert_eq!(after.get(key), Some(value), "{what} changed {key:?}");
    }
    for key in after.keys() {
        assert!(before.contains_key(key), "{what} created {key:?}");
    }
}

fn assert_same_content(server: &PrivateServer, source: &str, target: &str, what: &str) {
    let expected = content(server, source);
    assert!(
        expected.len() >= 12,
        "the corpus is all there: {expected:?}"
    );
    let actual = content(server, target);
    for (key, value) in &expected {
        assert_eq!(
            actual.get(key),
            Some(value),
            "{what}: {key} differs in {target:?}"
        );
    }
    assert_eq!(actual.len(), expected.len(), "{what}: object sets differ");
}

/// `toc-backup restore` of `point` into `target`, as the RDS-like master with `--definer
/// current` (what it can do without SET USER).
fn restore_as_master(
    server: &PrivateServer,
    store: &str,
    point: [&str; 2],
    target: &str,
) -> std::process::Output {
    let url = server.url(MASTER, "127.0.0.1", "");
    run_cli(
        &[
            "restore",
            "--database-url",
            &url,
            "--store",
            store,
            point[0],
            point[1],
            "--target-database",
            target,
            "--definer",
            "current",
        ],
        &[("DATABASE_PASSWORD", MASTER_PASSWORD)],
    )
}

#[test]
fn hostile_names_round_trip_through_every_restore_path_and_change_nothing_else() {
    let server = server();
    let store = tempfile::tempdir().expect("store");
    let store_text = store.path().to_string_lossy().into_owned();
    let backup_url = server.url("toc_backup", "127.0.0.1", "toc_sis");
    assert_ok(&run_cli(
        &[
            "dump",
            "--database-url",
            &backup_url,
            "--store",
            &store_text,
        ],
        &PROJECT_PASSWORD,
    ));

    // The monthly restore test, as its confined user: it passes on the hostile corpus and
    // leaves the server exactly as it found it.
    let before = snapshot(&server, "");
    let output = run_cli(
        &[
            "restore-test",
            "--database-url",
            &server.url("toc_restore_test", "127.0.0.1", ""),
            "--store",
            &store_text,
        ],
        &PROJECT_PASSWORD,
    );
    assert_ok(&output);
    assert_only_target_changed(&before, &snapshot(&server, ""), "the restore test");

    // Full backup -> restore, into a database whose own name is hostile.
    let target = "restore`\n'é#";
    let before = snapshot(&server, target);
    let output = restore_as_master(&server, &store_text, ["--backup", "latest"], target);
    assert_ok(&output);
    assert_only_target_changed(&before, &snapshot(&server, target), "restore");
    assert_same_content(&server, "toc_sis", target, "restore");
    assert_eq!(
        rows(
            &server,
            None,
            &format!(
                "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = {}",
                lit(target)
            )
        ),
        vec!["DISABLED".to_string()],
        "an event restored into a copy must not run on its schedule"
    );

    // The standard-tools recipe, as root, into a plain target.
    let plain = "toc_sis_plain";
    server.root_sql(&format!("CREATE DATABASE {plain}"));
    let before = snapshot(&server, plain);
    let backup_dir = only_backup_dir(store.path());
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail; cd '{}' && cat $(ls *.sql.gz) | gunzip | mariadb --no-defaults --comments -h127.0.0.1 -P{} -uroot {plain}",
            backup_dir.display(),
            server.port
        ))
        .output()
        .expect("bash");
    assert!(
        status.status.success(),
        "cat | gunzip | mariadb failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_only_target_changed(&before, &snapshot(&server, plain), "the standard tools");
    assert_same_content(&server, "toc_sis", plain, "the standard tools");

    // Incremental -> restore: the tracked hostile table changes, its chain restores.
    server
        .sql_as(
            "app",
            APP_PASSWORD,
            &format!(
                "USE toc_sis; UPDATE {t} SET note = {n} WHERE id = 2; INSERT INTO {t} (id, note) VALUES (3, 'new');",
                t = q(TRACKED),
                n = lit("changed;\n*/")
            ),
        )
        .expect("changes");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let scope = TRACKED.to_string();
    assert_ok(&run_cli(
        &[
            "incremental",
            "--database-url",
            &backup_url,
            "--store",
            &store_text,
            "--tables",
            &scope,
        ],
        &PROJECT_PASSWORD,
    ));
    let chained = "toc_sis_restore_test_chain";
    let before = snapshot(&server, chained);
    assert_ok(&restore_as_master(
        &server,
        &store_text,
        ["--backup", "latest"],
        chained,
    ));
    assert_only_target_changed(
        &before,
        &snapshot(&server, chained),
        "the incremental restore",
    );
    assert_eq!(
        content(&server, chained).get(&format!("table {}", hex::encode_upper(TRACKED))),
        content(&server, "toc_sis").get(&format!("table {}", hex::encode_upper(TRACKED))),
        "the tracked table after the incremental"
    );

    // Binlog archive -> restore --at: the application's changes come back; what an
    // administrator ran with toc_sis as the default database on other databases and accounts
    // is never run again.
    server
        .sql_as(
            "app",
            APP_PASSWORD,
            &format!(
                "USE toc_sis; INSERT INTO {tn} (id) VALUES (3); INSERT INTO log_t (what) VALUES ({w}); \
                 ALTER TABLE {tb} ADD COLUMN {c} INT DEFAULT 5; CREATE TABLE {nt} (id INT PRIMARY KEY); \
                 INSERT INTO {nt} VALUES (9);",
                tn = q(T_NEWLINE),
                tb = q(T_BACKSLASH),
                c = q("new\n`col"),
                nt = q("after\n-- the full"),
                w = lit("logged;\n'"),
            ),
        )
        .expect("the application's later changes");
    server.root_sql(
        "USE toc_sis;
         CREATE USER ghost@'%' IDENTIFIED BY 'ghost-pw';
         GRANT ALL ON *.* TO ghost@'%' WITH GRANT OPTION;
         CREATE TABLE other.fresh (id INT);
         DROP TABLE other.keep;
         DROP TABLE victim.keep;",
    );
    assert_ok(&run_cli(
        &[
            "binlog",
            "archive",
            "--database-url",
            &server.url("toc_binlog", "127.0.0.1", "toc_sis"),
            "--store",
            &store_text,
        ],
        &PROJECT_PASSWORD,
    ));
    // The administrator puts things back on the live server; a replay must not undo that.
    server.root_sql(
        "DROP USER ghost@'%'; DROP TABLE other.fresh;
         CREATE TABLE other.keep (id INT PRIMARY KEY); INSERT INTO other.keep VALUES (3);
         CREATE TABLE victim.keep (id INT PRIMARY KEY); INSERT INTO victim.keep VALUES (1), (2);",
    );
    let replayed = "toc_sis_restore_test_replay";
    let before = snapshot(&server, replayed);
    let at = chrono::Utc::now().to_rfc3339();
    let output = restore_as_master(&server, &store_text, ["--at", &at], replayed);
    assert_ok(&output);
    let said = text(&output);
    assert!(
        said.contains("5 logged statements were not replayed")
            && said.contains("GRANT ALL ON *.* TO ghost")
            && said.contains("DROP TABLE `victim`.`keep`")
            // MariaDB logs CREATE USER's password as typed: it is never shown.
            && !said.contains("ghost-pw"),
        "the report lists what was left out:\n{said}"
    );
    assert_only_target_changed(&before, &snapshot(&server, replayed), "the binlog replay");
    assert_same_content(&server, "toc_sis", replayed, "the binlog replay");
}

/// One random script for the differential splitter test: statements of quoted strings and
/// names, comments and words full of `;`, quotes and backslashes, written well-formed for the
/// sql_mode in force where they stand (each `SET SESSION sql_mode` changes it), some under
/// `DELIMITER $$`.
fn random_script(rng: &mut rand_chacha::ChaCha8Rng) -> String {
    use rand::Rng;
    const ALPHABET: &[&str] = &[
        "a", "é", ";", "'", "\"", "`", "\\", "\n", " ", "#", "-", "*", "/", "!", "$", "😀", "\t",
        "\r", "\u{b}", "\u{1}",
    ];
    const MODES: &[&str] = &[
        "",
        "NO_BACKSLASH_ESCAPES",
        "ANSI_QUOTES",
        "ANSI,NO_BACKSLASH_ESCAPES",
        "STRICT_ALL_TABLES",
    ];
    let (mut escapes, mut ansi) = (true, false);
    let mut script = String::new();
    let mut delimiter = ";";
    let pick = |rng: &mut rand_chacha::ChaCha8Rng| ALPHABET[rng.random_range(0..ALPHABET.len())];
    let text = |rng: &mut rand_chacha::ChaCha8Rng, without: &[&str]| -> String {
        let len = rng.random_range(0..12);
        (0..len)
            .map(|_| pick(rng))
            .filter(|c| !without.contains(c))
            .collect()
    };
    for _ in 0..rng.random_range(5..30) {
        if rng.random_range(0..8) == 0 {
            let mode = MODES[rng.random_range(0..MODES.len())];
            script.push_str(&format!("SET SESSION sql_mode = '{mode}'{delimiter}\n"));
            escapes = !mode.contains("NO_BACKSLASH_ESCAPES");
            ansi = mode.contains("ANSI");
            continue;
        }
        if rng.random_range(0..10) == 0 {
            delimiter = if delimiter == ";" { "$$" } else { ";" };
            script.push_str(&format!("\nDELIMITER {delimiter}\n"));
        }
        let mut statement = String::from("SELECT");
        for _ in 0..rng.random_range(1..8) {
            statement.push(' ');
            match rng.random_range(0..11) {
                0..=2 => {
                    let quote = ['\'', '"', '`'][rng.random_range(0..3)];
                    let is_name = quote == '`' || (quote == '"' && ansi);
                    statement.push(quote);
                    for _ in 0..rng.random_range(0..10) {
                        let c = pick(rng);
                        if c.starts_with(quote) {
                            if escapes && !is_name && rng.random_bool(0.5) {
                                statement.push('\\');
                                statement.push(quote);
                            } else {
                                statement.push(quote);
                                statement.push(quote);
                            }
                        } else if c == "\\" && escapes && !is_name {
                            // An escaped backslash, or a backslash escaping the next character.
                            statement.push('\\');
                            statement.push_str(if rng.random_bool(0.5) { "\\" } else { "n" });
                        } else {
                            statement.push_str(c);
                        }
                    }
                    statement.push(quote);
                }
                3 => statement.push_str(&format!("-- {}\n", text(rng, &["\n"]))),
                4 => statement.push_str(&format!("#{}\n", text(rng, &["\n"]))),
                // A space first: `/*!` is not a comment (see 6).
                5 => statement.push_str(&format!("/* {}*/", text(rng, &["/"]))),
                6 => statement.push_str("/*! 1 */"),
                7 => {
                    statement.push_str(["1--1", "1--\u{b};\n", "1--\u{1};"][rng.random_range(0..3)])
                }
                _ => statement
                    .push_str(["a", "é", "1", ",", "+", "(", ")", "\n"][rng.random_range(0..8)]),
            }
        }
        script.push_str(&statement);
        script.push_str(delimiter);
        script.push('\n');
    }
    if delimiter != ";" {
        script.push_str("\nDELIMITER ;\n");
    }
    script
}

/// The statements the real `mariadb` client sends for `script` (echoed by `-vvv`), trimmed.
fn client_statements(script: &str) -> Vec<String> {
    let output = run_with_input(
        mariadb_client(None).args(["--batch", "--force", "--comments", "-vvv"]),
        script,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut statements = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in stdout.split('\n') {
        if line == "--------------" {
            match current.take() {
                Some(lines) => statements.push(lines.join("\n").trim().to_string()),
                None => current = Some(Vec::new()),
            }
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    statements
}

/// Our splitter, fed in chunks of random sizes.
fn our_statements(script: &str, rng: &mut rand_chacha::ChaCha8Rng) -> Result<Vec<String>, String> {
    use rand::Rng;
    use toc_sis_backup::mysql::splitter::Splitter;
    let mut splitter = Splitter::default();
    let mut out = Vec::new();
    let mut rest = script.as_bytes();
    while !rest.is_empty() {
        let n = rng.random_range(1..=rest.len().min(64));
        splitter.push(&rest[..n], &mut out);
        rest = &rest[n..];
    }
    splitter.finish(&mut out)?;
    Ok(out
        .into_iter()
        .map(|s| String::from_utf8_lossy(&s.sql).trim().to_string())
        .collect())
}

/// Differential test of the one lexer: random scripts split by our splitter and by the real
/// `mariadb` client (which reads quotes in the sql_mode the server reports after each SET)
/// give the same statements. A fixed seed in CI; `scripts/fuzz-splitter` runs many more
/// (SPLITTER_CASES, SPLITTER_SEED).
#[test]
fn our_splitter_splits_exactly_where_the_mariadb_client_does() {
    use rand::SeedableRng;
    let cases: u64 = std::env::var("SPLITTER_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("SPLITTER_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(26);
    let started = std::time::Instant::now();
    let mut statements = 0;
    for case in 0..cases {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003) + case);
        let script = random_script(&mut rng);
        // Statement boundaries are compared, not bytes the client rewrites: it drops some
        // control characters outside strings (a \r before a newline, \x01), sends a comment
        // after a delimiter with the statement before it, and sends a statement of nothing but
        // a comment. Both sides are normalised alike: comments out, empty statements out.
        // Comments are read in the sql_mode in force, as the generator's SETs leave it.
        let normal = |statements: &[String]| -> Vec<String> {
            use toc_sis_backup::mysql::lexer::{tokens, Dialect, Kind};
            let mut dialect = Dialect::default();
            let mut out = Vec::new();
            for statement in statements {
                let s = statement.replace(['\r', '\u{1}'], "");
                let text = tokens(&s, dialect)
                    .filter(|t| t.kind != Kind::Comment)
                    .map(|t| t.text)
                    .collect::<String>()
                    .trim()
                    .to_string();
                if let Some(mode) = text
                    .strip_prefix("SET SESSION sql_mode = '")
                    .and_then(|m| m.strip_suffix('\''))
                {
                    dialect = Dialect::from_sql_mode(mode);
                }
                if !text.is_empty() {
                    out.push(text);
                }
            }
            out
        };
        let theirs = normal(&client_statements(&script));
        let ours = our_statements(&script, &mut rng).map(|statements| normal(&statements));
        assert_eq!(
            ours.as_ref(),
            Ok(&theirs),
            "case {case} of seed {seed} splits differently; the script:\n{script}"
        );
        statements += theirs.len();
    }
    println!(
        "splitter agreed with the mariadb client on {cases} scripts ({statements} statements, seed {seed}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
