//! Property tests: every function that handles a name or SQL text from the database takes any
//! Unicode name (newlines, NUL, quotes, backticks, backslashes, `*/`, `--`, `#`, multi-byte and
//! combining characters, 64 of them) without panicking, and quoting then lexing gives the name
//! back. Random names from a fixed seed, many cases (issue 26).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::binlog::statement::{statement_table, verdict, without_secrets, Verdict};
use crate::manifest::ObjectKind;
use crate::mysql::definition::{
    definer_of, event_with_status, object_head, without_database_name, without_database_names,
    without_definer,
};
use crate::mysql::lexer::{self, Dialect, Kind};
use crate::mysql::schema::strip_auto_increment;
use crate::mysql::splitter::Splitter;
use crate::mysql::{quote_ident, quote_str};

const CASES: u64 = 3000;

const PIECES: &[&str] = &[
    "`",
    "``",
    "'",
    "\"",
    "\\",
    "\n",
    "\r",
    "\0",
    "\t",
    " ",
    ";",
    ";;",
    "$$",
    "*/",
    "/*",
    "/*!",
    "--",
    "-- ",
    "#",
    "@",
    ".",
    ",",
    "(",
    ")",
    "é",
    "😀",
    "\u{301}",
    "ß",
    "DEFINER=`a`@`b`",
    "VIEW",
    "TRIGGER",
    "ON",
    "DO",
    "ENABLE",
    "a",
    "1",
    "x y",
];

fn random_name(rng: &mut ChaCha8Rng) -> String {
    let mut name = String::new();
    for _ in 0..rng.random_range(1..20) {
        if rng.random_range(0..6) == 0 {
            // Any scalar value at all.
            if let Some(c) = char::from_u32(rng.random_range(1..0x11_0000)) {
                name.push(c);
            }
        } else {
            name.push_str(PIECES[rng.random_range(0..PIECES.len())]);
        }
    }
    // At most 64 characters, as the server allows.
    name.chars().take(64).collect()
}

fn dialects() -> [Dialect; 4] {
    [
        Dialect::default(),
        Dialect::from_sql_mode("NO_BACKSLASH_ESCAPES"),
        Dialect::from_sql_mode("ANSI_QUOTES"),
        Dialect::from_sql_mode("ANSI,NO_BACKSLASH_ESCAPES"),
    ]
}

#[test]
fn a_quoted_name_is_one_token_that_gives_the_name_back() {
    let mut rng = ChaCha8Rng::seed_from_u64(26);
    for _ in 0..CASES {
        let name = random_name(&mut rng);
        let quoted = quote_ident(&name);
        for dialect in dialects() {
            let tokens: Vec<_> = lexer::tokens(&quoted, dialect).collect();
            assert_eq!(tokens.len(), 1, "{name:?} in {dialect:?}: {tokens:?}");
            assert_eq!(tokens[0].kind, Kind::QuotedName);
            assert_eq!(tokens[0].name().as_deref(), Some(name.as_str()));
        }
        // A string literal (backslash escapes on, as every file we write sets).
        let literal = quote_str(&name);
        let tokens: Vec<_> = lexer::tokens(&literal, Dialect::default()).collect();
        assert_eq!(tokens.len(), 1, "{name:?}: {tokens:?}");
        assert_eq!(tokens[0].kind, Kind::Str(b'\''));
    }
}

#[test]
fn an_object_head_of_hostile_names_is_read_exactly_and_made_for_the_target() {
    let mut rng = ChaCha8Rng::seed_from_u64(27);
    for _ in 0..CASES {
        let [user, host, database, name, table, value] =
            std::array::from_fn(|_| random_name(&mut rng));
        let statement = format!(
            "CREATE DEFINER={}@{} TRIGGER {}.{} BEFORE INSERT ON {}.{} FOR EACH ROW SET @a = {}",
            quote_ident(&user),
            quote_ident(&host),
            quote_ident(&database),
            quote_ident(&name),
            quote_ident(&database),
            quote_ident(&table),
            quote_str(&value)
        );
        let d = Dialect::default();
        let head = object_head(&statement, d).expect("a trigger's head");
        assert_eq!(
            (head.kind, head.name.as_str()),
            (ObjectKind::Trigger, name.as_str())
        );
        assert_eq!(definer_of(&statement, d), Some(format!("{user}@{host}")));
        let expected = format!(
            "CREATE TRIGGER {} BEFORE INSERT ON {} FOR EACH ROW SET @a = {}",
            quote_ident(&name),
            quote_ident(&table),
            quote_str(&value)
        );
        let retargeted = without_database_names(&statement, d).expect("qualified");
        assert_eq!(
            without_definer(&retargeted, d).as_deref(),
            Some(expected.as_str())
        );
        assert_eq!(
            without_database_name(&statement, d, &database),
            Some(retargeted.clone())
        );
        // A table's text is never touched, whatever its default value says.
        let table_sql = format!(
            "CREATE TABLE {} (a TEXT DEFAULT {}) AUTO_INCREMENT=5",
            quote_ident(&name),
            quote_str(&format!("{value} DEFINER=`x`@`y` VIEW AUTO_INCREMENT=1"))
        );
        assert_eq!(without_definer(&table_sql, d), None);
        assert_eq!(without_database_names(&table_sql, d), None);
        assert!(strip_auto_increment(&table_sql).ends_with(')'));
    }
}

#[test]
fn a_logged_statement_on_a_hostile_name_is_told_apart() {
    let mut rng = ChaCha8Rng::seed_from_u64(28);
    for _ in 0..CASES {
        let [source, other, table] = std::array::from_fn(|_| random_name(&mut rng));
        if source == other {
            continue;
        }
        let d = Dialect::default();
        let drop_other = format!("DROP TABLE {}.{}", quote_ident(&other), quote_ident(&table));
        assert_eq!(
            verdict(&drop_other, d, &source, "scratch"),
            Verdict::LeaveOut("a statement on another database"),
            "{drop_other}"
        );
        let alter_own = format!("ALTER TABLE {} ADD COLUMN x INT", quote_ident(&table));
        assert_eq!(verdict(&alter_own, d, &source, "scratch"), Verdict::Run);
        assert_eq!(statement_table(&alter_own, d), Some(table.clone()));
        let user = format!(
            "CREATE USER {}@'%' IDENTIFIED BY {}",
            quote_str(&table),
            quote_str("pw")
        );
        assert!(matches!(
            verdict(&user, d, &source, "scratch"),
            Verdict::LeaveOut(_)
        ));
        assert!(!without_secrets(&user, d).contains("'pw'"));
    }
}

#[test]
fn any_text_is_read_without_panicking() {
    let mut rng = ChaCha8Rng::seed_from_u64(29);
    for _ in 0..CASES {
        let text: String = (0..rng.random_range(1..6))
            .map(|_| random_name(&mut rng))
            .collect::<Vec<_>>()
            .join(["", " ", "CREATE ", " VIEW ", " ON ", " TABLE "][rng.random_range(0..6)]);
        for prefix in [
            "",
            "CREATE ",
            "CREATE DEFINER=",
            "CREATE EVENT ",
            "DROP TABLE ",
            "SET sql_mode = ",
        ] {
            let statement = format!("{prefix}{text}");
            for dialect in dialects() {
                let joined: String = lexer::tokens(&statement, dialect).map(|t| t.text).collect();
                assert_eq!(joined, statement);
                let _ = object_head(&statement, dialect);
                let _ = without_definer(&statement, dialect);
                let _ = without_database_names(&statement, dialect);
                let _ = event_with_status(&statement, dialect, false);
                let _ = verdict(&statement, dialect, "toc_sis", "scratch");
                let _ = statement_table(&statement, dialect);
                let _ = without_secrets(&statement, dialect);
            }
            let _ = strip_auto_increment(&statement);
            // Whole, or in chunks of any size: the same statements (or the same error).
            let whole = split(&statement, statement.len().max(1));
            let chunked = split(&statement, rng.random_range(1..8));
            assert_eq!(whole, chunked, "{statement:?}");
        }
    }
}

fn split(text: &str, chunk: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut splitter = Splitter::default();
    let mut out = Vec::new();
    for piece in text.as_bytes().chunks(chunk) {
        splitter.push(piece, &mut out);
    }
    splitter.finish(&mut out)?;
    Ok(out.into_iter().map(|s| s.sql).collect())
}
