//! The DEFINER clause of the views, routines, triggers and events a backup holds: reading it
//! (whose accounts must the restoring user create objects for?) and removing it (`restore
//! --definer current`, where the server then makes the restoring user the definer).
//!
//! Works on the statements as `SHOW CREATE` renders them (MariaDB and MySQL 8 alike):
//! `CREATE [OR REPLACE] [ALGORITHM=…] DEFINER=`user`@`host` [SQL SECURITY …] VIEW|PROCEDURE|…`.

use serde::{Deserialize, Serialize};

/// What to do with the objects' DEFINER clauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefinerMode {
    /// As in the backup: needs SUPER or SET USER / SET_USER_ID for other definers.
    #[default]
    Keep,
    /// Created as the restoring user (what a fresh RDS instance's master user can do).
    Current,
}

impl std::str::FromStr for DefinerMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "keep" => Ok(DefinerMode::Keep),
            "current" => Ok(DefinerMode::Current),
            other => Err(format!("{other:?} is not keep or current")),
        }
    }
}

/// Byte range of ` DEFINER=account` in a CREATE statement, and the account as written.
fn definer_clause(statement: &str) -> Option<(usize, usize, String)> {
    let create = start_of_create(statement)?;
    // The clause comes before the object keyword, within the statement's head.
    let head_end = statement[create..]
        .char_indices()
        .take(400)
        .last()
        .map_or(statement.len(), |(i, c)| create + i + c.len_utf8());
    let head = &statement[create..head_end];
    let upper = head.to_ascii_uppercase();
    let at = upper.find(" DEFINER=")?;
    let keyword_before = [
        " VIEW ",
        " PROCEDURE ",
        " FUNCTION ",
        " TRIGGER ",
        " EVENT ",
    ]
    .iter()
    .filter_map(|k| upper.find(k))
    .min()
    .unwrap_or(usize::MAX);
    if at > keyword_before {
        return None;
    }
    let account_start = at + " DEFINER=".len();
    let account_len = account_length(&head[account_start..])?;
    let account = head[account_start..account_start + account_len].to_string();
    Some((create + at, create + account_start + account_len, account))
}

/// Where the CREATE keyword starts, after leading white space and `--` / `/* */` comments.
pub(crate) fn start_of_create(statement: &str) -> Option<usize> {
    let mut rest = statement;
    loop {
        let trimmed = rest.trim_start();
        if let Some(comment) = trimmed.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = trimmed.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            rest = trimmed;
            break;
        }
    }
    let offset = statement.len() - rest.len();
    rest.get(..6)
        .filter(|word| word.eq_ignore_ascii_case("CREATE"))
        .map(|_| offset)
}

/// Length of `user@host`, each part quoted with backticks or quotes (doubled inside) or bare.
fn account_length(text: &str) -> Option<usize> {
    let user = part_length(text)?;
    let rest = &text[user..];
    if !rest.starts_with('@') {
        // CURRENT_USER or CURRENT_USER()
        return Some(user);
    }
    let host = part_length(&rest[1..])?;
    Some(user + 1 + host)
}

fn part_length(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let quote = *bytes.first()?;
    if quote == b'`' || quote == b'\'' || quote == b'"' {
        let mut i = 1;
        while i < bytes.len() {
            if bytes[i] == quote {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                    continue;
                }
                return Some(i + 1);
            }
            i += 1;
        }
        None
    } else {
        let len = bytes
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'(' | b')'))
            .count();
        (len > 0).then_some(len)
    }
}

/// The account in a CREATE statement's DEFINER clause, normalised to `user@host` without
/// quotes (so `root`@`localhost` and 'root'@'localhost' compare equal).
pub fn definer_of(statement: &str) -> Option<String> {
    definer_clause(statement).map(|(_, _, account)| normalise_account(&account))
}

/// The statement without its DEFINER clause; None when it has none.
pub fn without_definer(statement: &str) -> Option<String> {
    let (start, end, _) = definer_clause(statement)?;
    Some(format!("{}{}", &statement[..start], &statement[end..]))
}

/// `user@host` with quotes removed and doubled quotes undone.
pub fn normalise_account(account: &str) -> String {
    let unquote = |part: &str| -> String {
        let bytes = part.as_bytes();
        match bytes.first() {
            Some(&q @ (b'`' | b'\'' | b'"')) if part.len() >= 2 => {
                let inner = &part[1..part.len() - 1];
                let doubled = format!("{}{}", q as char, q as char);
                inner.replace(&doubled, &(q as char).to_string())
            }
            _ => part.to_string(),
        }
    };
    match part_length(account) {
        Some(user_len) if account[user_len..].starts_with('@') => format!(
            "{}@{}",
            unquote(&account[..user_len]),
            unquote(&account[user_len + 1..])
        ),
        _ => unquote(account),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definers_are_found_and_removed_in_every_kind_of_object() {
        let cases = [
            (
                "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS select 1 AS `x`",
                "root@localhost",
                "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1 AS `x`",
            ),
            (
                "-- procedure p\nCREATE DEFINER=`admin`@`%` PROCEDURE `p`()\nSELECT 'DEFINER=`x`@`y`'",
                "admin@%",
                "-- procedure p\nCREATE PROCEDURE `p`()\nSELECT 'DEFINER=`x`@`y`'",
            ),
            (
                "CREATE DEFINER=`o``brien`@`10.0.%` TRIGGER t BEFORE INSERT ON a FOR EACH ROW SET NEW.x = 1",
                "o`brien@10.0.%",
                "CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW SET NEW.x = 1",
            ),
            (
                "CREATE DEFINER='rdsadmin'@'localhost' EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1",
                "rdsadmin@localhost",
                "CREATE EVENT `e` ON SCHEDULE EVERY 1 DAY DO SELECT 1",
            ),
        ];
        for (statement, definer, stripped) in cases {
            assert_eq!(
                definer_of(statement).as_deref(),
                Some(definer),
                "{statement}"
            );
            assert_eq!(without_definer(statement).as_deref(), Some(stripped));
        }
    }

    #[test]
    fn statements_without_a_definer_are_left_alone() {
        for statement in [
            "CREATE TABLE t (id INT)",
            "INSERT INTO t VALUES ('CREATE DEFINER=`a`@`b` VIEW')",
            "CREATE PROCEDURE p() SELECT 'x DEFINER=`a`@`b`'",
        ] {
            assert_eq!(definer_of(statement), None, "{statement}");
            assert_eq!(without_definer(statement), None);
        }
    }
}
