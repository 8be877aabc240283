//! Done-means 1: a nasty schema round-trips exactly, through `toc-backup restore` and through
//! `cat | gunzip | mariadb`.

use std::path::Path;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nasty_schema_round_trips_exactly_through_both_restore_paths() {
    let source = unique_name("nasty");
    create_database(&source).await;
    load_script(
        &source,
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/nasty.sql"
        )),
    );
    let store = tempfile::tempdir().expect("temp dir");

    let output = dump(&source, store.path());
    assert_ok(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("legacy_myisam"),
        "the MyISAM table must be reported as not snapshot-consistent:\n{stderr}"
    );

    let ours = unique_name("nasty_restored");
    assert_ok(&restore(store.path(), "latest", &ours));

    let plain = unique_name("nasty_plain");
    create_database(&plain).await;
    restore_with_standard_tools(&only_backup_dir(store.path()), &plain);

    let expected_sums = checksums(&source).await;
    let expected_definitions = definitions(&source).await;
    assert!(
        expected_sums.len() >= 6,
        "fixture tables: {expected_sums:?}"
    );
    assert!(expected_definitions.keys().any(|k| k.starts_with("EVENT")));
    assert!(expected_definitions
        .keys()
        .any(|k| k.starts_with("TRIGGER")));
    for copy in [&ours, &plain] {
        assert_eq!(
            checksums(copy).await,
            expected_sums,
            "CHECKSUM TABLE differs in {copy}"
        );
        let actual = definitions(copy).await;
        for (name, definition) in &expected_definitions {
            assert_eq!(
                actual.get(name),
                Some(definition),
                "SHOW CREATE {name} differs in {copy}"
            );
        }
        assert_eq!(
            actual.len(),
            expected_definitions.len(),
            "object sets differ in {copy}"
        );
    }

    // FLOAT/DOUBLE values the text protocol would round come back bit for bit.
    let float_query = "SELECT id, HEX(CAST(f AS DOUBLE)), HEX(d) FROM `every type` ORDER BY id";
    let floats = |db: String| async move {
        let mut conn = connect_to(&db).await;
        let rows: Vec<(i64, Option<String>, Option<String>)> =
            mysql_async::prelude::Queryable::query(&mut conn, float_query)
                .await
                .expect("query");
        rows
    };
    let expected_floats = floats(source.clone()).await;
    assert!(expected_floats.iter().any(|(_, f, _)| f.is_some()));
    assert_eq!(floats(ours.clone()).await, expected_floats);

    for db in [&source, &ours, &plain] {
        drop_database(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_non_empty_target_without_force() {
    let source = unique_name("small");
    create_database(&source).await;
    let mut conn = connect_to(&source).await;
    mysql_async::prelude::Queryable::query_drop(
        &mut conn,
        "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO t VALUES (1, 'one'), (2, 'two')",
    )
    .await
    .expect("fixture");
    let store = tempfile::tempdir().expect("temp dir");
    assert_ok(&dump(&source, store.path()));

    let refused = restore(store.path(), "latest", &source);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("`{source}` is not empty")),
        "{stderr}"
    );
    assert!(stderr.contains("--force"), "{stderr}");

    mysql_async::prelude::Queryable::query_drop(&mut conn, "INSERT INTO t VALUES (3, 'extra')")
        .await
        .expect("change");
    // The monthly restore test records its rate; the restore below estimates its time at it,
    // and says so before loading anything.
    let store_text = store.path().to_str().unwrap_or_default();
    assert_ok(&run_cli(
        &[
            "restore-test",
            "--database-url",
            &server_url(),
            "--store",
            store_text,
        ],
        &[],
    ));
    let forced = run_cli(
        &[
            "restore",
            "--database-url",
            &server_url(),
            "--store",
            store.path().to_str().unwrap_or_default(),
            "--target-database",
            &source,
            "--force",
        ],
        &[],
    );
    assert_ok(&forced);
    let stderr = String::from_utf8_lossy(&forced.stderr);
    let estimated = stderr.find("estimated time: about ");
    let loading = stderr.find("checking every file before loading anything");
    assert!(
        estimated.is_some() && loading.is_some() && estimated < loading,
        "the estimate comes before the restore starts: {stderr}"
    );
    // The test ran moments ago: today, or yesterday when this ran across midnight (UTC).
    let now = chrono::Utc::now();
    let dates = [now, now - chrono::Duration::days(1)].map(|d| d.format("%Y-%m-%d").to_string());
    assert!(
        dates.iter().any(|date| {
            stderr.contains(&format!("iB/s measured by the restore test of {date})"))
        }),
        "the data rate is the restore test's, without a binlog part: {stderr}"
    );
    let count: Option<u64> = mysql_async::prelude::Queryable::query_first(
        &mut connect_to(&source).await,
        "SELECT COUNT(*) FROM t",
    )
    .await
    .expect("count");
    assert_eq!(
        count,
        Some(2),
        "--force replaces the contents with the backup's"
    );
    drop_database(&source).await;
}

/// Issue 13, item 4: a backup made on another server version is verified against what the
/// target renders for its stored DDL (here the manifest says MySQL 8.0.36, so every definition
/// hash it holds is one this MariaDB cannot reproduce), and the scratch schema is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_from_another_server_version_is_verified_by_this_servers_rendering() {
    use mysql_async::prelude::Queryable;
    let source = unique_name("rendered");
    assert_ok(&run_cli(
        &["sample-data", "--database-url", &url_for(&source)],
        &[],
    ));
    let store = tempfile::tempdir().expect("store");
    assert_ok(&dump(&source, store.path()));
    let manifest_path = find_file(store.path(), "manifest.json");
    let bytes = std::fs::read(&manifest_path).expect("read manifest");
    let mut manifest =
        toc_sis_backup::manifest::Manifest::open("manifest.json", &bytes).expect("open");
    manifest.server.version = "8.0.36".into();
    // The source's hashes cannot match any more: as if rendered by another version.
    for object in &mut manifest.objects {
        object.definition_sha256 = "rendered elsewhere".into();
    }
    for table in &mut manifest.tables {
        table.definition_sha256 = "rendered elsewhere".into();
    }
    std::fs::write(&manifest_path, manifest.seal().expect("seal")).expect("write manifest");

    let copy = unique_name("rendered_copy");
    let restored = run_cli(
        &[
            "restore",
            "--database-url",
            &server_url(),
            "--store",
            &store.path().to_string_lossy(),
            "--target-database",
            &copy,
        ],
        &[],
    );
    assert_ok(&restored);
    let log = String::from_utf8_lossy(&restored.stderr);
    assert!(
        log.contains("compared with what this server renders"),
        "{log}"
    );
    assert_eq!(checksums(&copy).await, checksums(&source).await);
    let leftovers: Vec<String> = admin()
        .await
        .exec(
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (format!("{copy}_render"),),
        )
        .await
        .expect("schemata");
    assert!(
        leftovers.is_empty(),
        "the scratch schema was left: {leftovers:?}"
    );
    drop_database(&copy).await;
    drop_database(&source).await;
}

/// Issue 28: a table whose columns are all generated (VIRTUAL) has rows all the same: they
/// were dumped as none at all, and the restore said "verified" with the table empty. Each row
/// is now restored as `()` and counted; the standard-tools path loads the same file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_whose_columns_are_all_generated_keeps_its_rows() {
    let source = unique_name("allvirtual");
    create_database(&source).await;
    let mut conn = connect_to(&source).await;
    mysql_async::prelude::Queryable::query_drop(
        &mut conn,
        "CREATE TABLE only_virtual (a INT AS (1) VIRTUAL, b VARCHAR(10) AS ('x') VIRTUAL);
         INSERT INTO only_virtual () VALUES (), (), ();",
    )
    .await
    .expect("table");
    let store = tempfile::tempdir().expect("store");
    assert_ok(&dump(&source, store.path()));
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(find_file(store.path(), "manifest.json")).expect("manifest"),
    )
    .expect("JSON");
    let rows = manifest["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["name"] == "only_virtual")
        .map(|t| t["rows"].clone());
    assert_eq!(rows, Some(serde_json::json!(3)), "{manifest}");
    let target = unique_name("allvirtual_back");
    assert_ok(&restore(store.path(), "latest", &target));
    let count: Option<u64> = mysql_async::prelude::Queryable::query_first(
        &mut connect_to(&target).await,
        "SELECT COUNT(*) FROM only_virtual",
    )
    .await
    .expect("count");
    assert_eq!(count, Some(3));
    let plain = unique_name("allvirtual_plain");
    create_database(&plain).await;
    restore_with_standard_tools(&only_backup_dir(store.path()), &plain);
    let count: Option<u64> = mysql_async::prelude::Queryable::query_first(
        &mut connect_to(&plain).await,
        "SELECT COUNT(*) FROM only_virtual",
    )
    .await
    .expect("count");
    assert_eq!(count, Some(3));
    for database in [source, target, plain] {
        drop_database(&database).await;
    }
}

/// What the server holds and renders in a way of its own, as MariaDB's test suite builds it
/// (issue 28): the invalid-value ENUM index 0 beside a `''` member, YEAR 0000, dates stored
/// under ALLOW_INVALID_DATES, a plain key listed before a SPATIAL one, a nullable
/// AUTO_INCREMENT column holding NULL whose counter has run out (LOAD DATA made the NULL a
/// number out of range and skipped the row; an INSERT keeps it), nullable columns without a DEFAULT (CREATE … SELECT over an
/// outer join; declared, the same text means DEFAULT NULL), and a view and a procedure created
/// by a latin1 client (they came back utf8mb4), an event, routines and a trigger a cp1251
/// client wrote (utf8mb4 too, and the event renamed: the server renders its name
/// double-encoded), a non-ASCII procedure of a utf8 client with a latin1 connection collation
/// (`SET CHARACTER SET utf8`: the collation came back utf8mb4), and sjis and cp1251 bytes that Unicode has no
/// character for (they came back `?`). Each came back changed (or the restore failed its own check); now
/// the restore and the standard-tools path both bring back the same values and definitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_and_definitions_the_server_renders_its_own_way_come_back_exactly() {
    use mysql_async::prelude::Queryable;

    let source = unique_name("peerclasses");
    create_database(&source).await;
    let mut conn = connect_to(&source).await;
    conn.query_drop(
        "SET SESSION sql_mode = 'ALLOW_INVALID_DATES';
         CREATE TABLE v (id INT PRIMARY KEY, e ENUM('a',''), f ENUM('0','1'), y YEAR,
                         d DATETIME(6), g DATE, s SET('','a','b'));
         INSERT INTO v VALUES (1, 'zz', 'zz', 0, '2001-02-29 23:59:59.999999', '2001-02-30', 1),
                              (2, '', '0', '0000', NULL, NULL, 7),
                              (3, 'a', NULL, 2000, '2001-04-31 00:00:00', '2001-00-00', 6);
         CREATE TABLE k (id INT PRIMARY KEY, a INT, g GEOMETRY NOT NULL,
                         KEY a (a), SPATIAL KEY b (g));
         INSERT INTO k VALUES (1, 1, POINT(1, 1));
         CREATE TABLE n (a TINYINT AUTO_INCREMENT NULL, KEY (a));
         INSERT INTO n VALUES (1), (NULL), (127);
         CREATE TABLE src_a (id INT PRIMARY KEY);
         CREATE TABLE src_b (id INT PRIMARY KEY, y INT NOT NULL COMMENT 'no default');
         INSERT INTO src_a VALUES (1), (2);
         INSERT INTO src_b VALUES (1, 5);
         SET SESSION sql_mode = '';
         CREATE TABLE nd (z INT DEFAULT 7, KEY (y))
             SELECT src_b.y, src_a.id FROM src_a LEFT JOIN src_b USING (id);
         CREATE TABLE y2 (id INT PRIMARY KEY, y YEAR(2));
         INSERT INTO y2 VALUES (1, 2000), (2, 1970), (3, 2069);
         CREATE TABLE cs (id INT PRIMARY KEY, a CHAR(10) CHARACTER SET sjis,
                          b VARCHAR(10) CHARACTER SET cp1251);
         INSERT INTO cs VALUES (1, 0x878A, 0x98), (2, 'ab?', 'x'), (3, NULL, 0xE0);
         SET NAMES latin1;
         CREATE VIEW latin1_view AS SELECT 'x' AS x;
         CREATE PROCEDURE latin1_procedure() SELECT 'x';
         SET NAMES utf8mb4;
         SET NAMES utf8;
         SET SESSION collation_connection = latin1_swedish_ci;
         CREATE PROCEDURE latin1_literals() SELECT 'lâbel';
         SET NAMES utf8mb4;",
    )
    .await
    .expect("tables");
    // Objects a cp1251 client wrote: cp1251 bytes, the character set they are read in. The
    // server renders an event's name and a COMMENT double-encoded ("СЂСѓСѓС‚").
    conn.query_drop(
        b"SET NAMES cp1251;
          CREATE EVENT \xf0\xf3\xf3\xf2 ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00'
              COMMENT '\xf2\xee\xe2\xe0' DO SELECT '\xf2' INTO @x;
          CREATE PROCEDURE \xf0\xf4(a INT) COMMENT '\xea\xee\xec' SELECT LENGTH('\xf2\xee');
          CREATE FUNCTION f1251() RETURNS INT DETERMINISTIC RETURN LENGTH('\xf2\xee');
          CREATE TRIGGER cs_tr BEFORE INSERT ON cs FOR EACH ROW SET @t = '\xf2';
          SET NAMES utf8mb4;"
            .as_slice(),
    )
    .await
    .expect("cp1251 objects");
    async fn state(database: &str) -> Vec<String> {
        let mut conn = connect_to(database).await;
        let mut state: Vec<String> = conn
            .query(
                "SELECT CONCAT_WS('|', id, e + 0, f + 0, CAST(y AS CHAR), CAST(d AS CHAR), \
                 CAST(g AS CHAR), s + 0) FROM v ORDER BY id",
            )
            .await
            .expect("values");
        state.extend(
            conn.query::<String, _>("SELECT CONCAT_WS('|', a) FROM n ORDER BY a")
                .await
                .expect("n"),
        );
        // YEAR(2) shows 2000 and 0000 alike ("00"); only the stored row tells them apart.
        let (_, checksum): (String, Option<u64>) = conn
            .query_first("CHECKSUM TABLE y2 EXTENDED")
            .await
            .expect("checksum")
            .expect("a row");
        state.push(format!("y2 checksum {checksum:?}"));
        // Bytes Unicode has no character for (sjis 0x878A, cp1251 0x98) stay those bytes.
        state.extend(
            conn.query::<String, _>(
                "SELECT CONCAT_WS('|', id, HEX(a), HEX(b)) FROM cs ORDER BY id",
            )
            .await
            .expect("cs"),
        );
        // Objects keep the client character set they were created under, their names,
        // comments and the very bytes of their bodies.
        for query in [
            "SELECT CONCAT_WS('|', TABLE_NAME, CHARACTER_SET_CLIENT, COLLATION_CONNECTION) \
             FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()",
            "SELECT CONCAT_WS('|', ROUTINE_NAME, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, \
             ROUTINE_COMMENT, ROUTINE_DEFINITION) \
             FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1",
            "SELECT CONCAT_WS('|', EVENT_NAME, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, \
             EVENT_COMMENT, EVENT_DEFINITION) \
             FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()",
            "SELECT CONCAT_WS('|', TRIGGER_NAME, CHARACTER_SET_CLIENT, ACTION_STATEMENT) \
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
            "SELECT CONCAT_WS('|', name, HEX(body)) FROM mysql.proc WHERE db = DATABASE() \
             ORDER BY name",
            "SELECT CONCAT_WS('|', name, HEX(body)) FROM mysql.event WHERE db = DATABASE()",
        ] {
            state.extend(conn.query::<String, _>(query).await.expect(query));
        }
        for table in ["v", "k", "n", "nd"] {
            let (_, create): (String, String) = conn
                .query_first(format!("SHOW CREATE TABLE {table}"))
                .await
                .expect("show")
                .expect("a row");
            // The counter is not part of the definition (the restore's check leaves it out).
            let create = match create.find(" AUTO_INCREMENT=") {
                Some(at) => {
                    let digits = create[at + 16..]
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(create.len() - at - 16);
                    format!("{}{}", &create[..at], &create[at + 16 + digits..])
                }
                None => create,
            };
            state.push(create);
        }
        state
    }
    let expected = state(&source).await;
    assert!(expected[0].starts_with("1|0|0|0000|2001-02-29 23:59:59.999999|2001-02-30|1"));

    let store = tempfile::tempdir().expect("store");
    assert_ok(&dump(&source, store.path()));
    let target = unique_name("peerclasses_back");
    assert_ok(&restore(store.path(), "latest", &target));
    assert_eq!(state(&target).await, expected, "restored by toc-backup");
    // A copy's events never run: the cp1251 event too (its statement is not UTF-8).
    let statuses: Vec<String> = connect_to(&target)
        .await
        .query("SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE()")
        .await
        .expect("events");
    assert_eq!(statuses, ["DISABLED"]);
    let plain = unique_name("peerclasses_plain");
    create_database(&plain).await;
    restore_with_standard_tools(&only_backup_dir(store.path()), &plain);
    assert_eq!(
        state(&plain).await,
        expected,
        "restored by gunzip | mariadb"
    );
    for database in [source, target, plain] {
        drop_database(&database).await;
    }
}

/// Issue 28, part 3: sequences and system-versioned tables were refused at backup time, so a
/// database holding one had no backup at all. A sequence comes back with its definition and
/// continues where the source's would after a restart (its next uncached value), created
/// before a table whose DEFAULT calls it; a system-versioned table comes back with its
/// history rows and their original row start and end, implicit or declared. A table's DEFAULT
/// and a view calling the sequence call the copy's own (the server writes the database's name
/// into them, and the copy called the source's sequence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_and_system_versioned_history_come_back() {
    use mysql_async::prelude::Queryable;

    let source = unique_name("seqhist");
    create_database(&source).await;
    let mut conn = connect_to(&source).await;
    conn.query_drop(
        "CREATE SEQUENCE z_seq START WITH 10 INCREMENT BY 5 CACHE 3;
         CREATE TABLE a_t (id INT PRIMARY KEY DEFAULT NEXTVAL(z_seq), v INT);
         INSERT INTO a_t (v) VALUES (1), (2);
         CREATE VIEW nv AS SELECT NEXTVAL(z_seq) AS n, LASTVAL(z_seq) AS l;
         CREATE TABLE h (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING;
         INSERT INTO h VALUES (1, 1), (2, 2);
         UPDATE h SET v = v + 10 WHERE id = 1;
         DELETE FROM h WHERE id = 2;
         CREATE TABLE p (id INT PRIMARY KEY, v INT,
                         s TIMESTAMP(6) AS ROW START INVISIBLE,
                         e TIMESTAMP(6) AS ROW END INVISIBLE,
                         PERIOD FOR SYSTEM_TIME (s, e)) WITH SYSTEM VERSIONING;
         INSERT INTO p VALUES (1, 1);
         UPDATE p SET v = 2;",
    )
    .await
    .expect("objects");
    async fn state(database: &str) -> Vec<String> {
        let mut conn = connect_to(database).await;
        let mut state = Vec::new();
        for query in [
            "SELECT CONCAT_WS('|', id, v) FROM a_t ORDER BY id",
            "SELECT CONCAT_WS('|', id, v, ROW_START, ROW_END) FROM h FOR SYSTEM_TIME ALL ORDER BY id, ROW_END",
            "SELECT CONCAT_WS('|', id, v, s, e) FROM p FOR SYSTEM_TIME ALL ORDER BY id, e",
            "SELECT CONCAT_WS('|', next_not_cached_value, cycle_count) FROM z_seq",
        ] {
            state.extend(conn.query::<String, _>(query).await.expect(query));
        }
        for (show, name) in [("SEQUENCE", "z_seq"), ("TABLE", "h"), ("TABLE", "p")] {
            let (_, create): (String, String) = conn
                .query_first(format!("SHOW CREATE {show} {name}"))
                .await
                .expect("show")
                .expect("a row");
            state.push(create);
        }
        // The server names the sequence's database in these even when it is their own; the
        // copy's must name the copy's sequence, not the source's.
        for (show, name) in [("TABLE", "a_t"), ("VIEW", "nv")] {
            let row: mysql_async::Row = conn
                .query_first(format!("SHOW CREATE {show} {name}"))
                .await
                .expect("show")
                .expect("a row");
            let create: String = row.get(1).expect("the definition");
            state.push(create.replace(database, "DB"));
        }
        state
    }
    let expected = state(&source).await;
    assert_eq!(expected.iter().filter(|r| r.starts_with("1|")).count(), 4);
    assert!(
        expected.iter().any(|r| r.contains("nextval(`DB`.`z_seq`)")),
        "{expected:?}"
    );

    let store = tempfile::tempdir().expect("store");
    assert_ok(&dump(&source, store.path()));
    let target = unique_name("seqhist_back");
    assert_ok(&restore(store.path(), "latest", &target));
    assert_eq!(state(&target).await, expected, "restored by toc-backup");
    let plain = unique_name("seqhist_plain");
    create_database(&plain).await;
    restore_with_standard_tools(&only_backup_dir(store.path()), &plain);
    assert_eq!(
        state(&plain).await,
        expected,
        "restored by gunzip | mariadb"
    );
    // The restored sequence hands out what the source's would after a restart.
    let next: Option<i64> = connect_to(&target)
        .await
        .query_first("SELECT NEXTVAL(z_seq)")
        .await
        .expect("nextval");
    let source_next: Option<i64> = conn
        .query_first("SELECT next_not_cached_value FROM z_seq")
        .await
        .expect("state");
    assert_eq!(next, source_next);
    for database in [source, target, plain] {
        drop_database(&database).await;
    }
}

/// A view the server can no longer use (a column it names is gone: MariaDB's test suite has
/// several) was dumped and made every restore fail creating it. It is now left out of the
/// backup with a warning naming it and the server's reason; the rest restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_view_is_left_out_with_a_warning_and_the_rest_restores() {
    use mysql_async::prelude::Queryable;

    let source = unique_name("brokenview");
    create_database(&source).await;
    connect_to(&source)
        .await
        .query_drop(
            "CREATE TABLE t1 (a INT);
             CREATE VIEW broken AS SELECT a <> 0xC0 AS a FROM t1;
             CREATE VIEW fine AS SELECT 1 AS b;
             CREATE OR REPLACE TABLE t1 (b INT);",
        )
        .await
        .expect("views");
    let store = tempfile::tempdir().expect("store");
    let output = dump(&source, store.path());
    assert_ok(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ALERT [TOC-SIS backup] WARNING")
            && stderr.contains("`broken`: ")
            && stderr.contains("1356"),
        "{stderr}"
    );
    let target = unique_name("brokenview_back");
    assert_ok(&restore(store.path(), "latest", &target));
    let views: Vec<String> = connect_to(&target)
        .await
        .query("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()")
        .await
        .expect("views");
    assert_eq!(views, vec!["fine".to_string()]);
    for database in [source, target] {
        drop_database(&database).await;
    }
}

/// Issue 28: an object of a kind the tool cannot back up faithfully (a MariaDB PACKAGE, made
/// under sql_mode=ORACLE) makes the dump refuse, naming it, its kind and the way to back up
/// the rest; with BACKUP_SKIP_UNSUPPORTED (`--skip-unsupported`) the rest is backed up and a
/// WARNING names what was left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_object_is_refused_by_name_or_left_out_when_asked() {
    use mysql_async::prelude::Queryable;

    let source = unique_name("package");
    create_database(&source).await;
    connect_to(&source)
        .await
        .query_drop(
            "CREATE TABLE t (id INT PRIMARY KEY);
             INSERT INTO t VALUES (1), (2);
             SET SESSION sql_mode = 'ORACLE';
             CREATE PACKAGE grades_pkg AS FUNCTION f RETURN INT; END;
             CREATE PACKAGE BODY grades_pkg AS FUNCTION f RETURN INT AS BEGIN RETURN 1; END; END;",
        )
        .await
        .expect("package");
    let store = tempfile::tempdir().expect("store");
    let refused = dump(&source, store.path());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("`grades_pkg` is a package")
            && stderr.contains("--skip-unsupported")
            && stderr.contains("refusing to take a partial backup"),
        "{stderr}"
    );

    let store_text = store.path().to_string_lossy().into_owned();
    let output = dump_into(&source, &store_text, &[("BACKUP_SKIP_UNSUPPORTED", "true")]);
    assert_ok(&output);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ALERT [TOC-SIS backup] WARNING")
            && stderr.contains("`grades_pkg`: a package")
            && stderr.contains("`grades_pkg`: a package body"),
        "{stderr}"
    );
    let target = unique_name("package_back");
    assert_ok(&restore(store.path(), "latest", &target));
    let rows: Option<u64> = connect_to(&target)
        .await
        .query_first("SELECT COUNT(*) FROM t")
        .await
        .expect("rows");
    assert_eq!(rows, Some(2));
    for database in [source, target] {
        drop_database(&database).await;
    }
}
