//! Splits a stream of SQL text into statements the way the `mariadb` client does: honouring
//! quotes, comments and `DELIMITER` lines, so a statement's own `;` (inside a string or a
//! routine body) never ends it early. Quotes and comments are read by the one lexer
//! ([`super::lexer`]), in the dialect the session is in: a `SET SESSION sql_mode = '…'` the
//! splitter passes changes how backslashes and double quotes are read after it, as the
//! client's own reading changes when the server reports the new mode.

use super::lexer::{self, Dialect, Kind, QuoteEnd};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Quoted(u8),
}

/// One statement and the dialect it is to be read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: Vec<u8>,
    pub dialect: Dialect,
}

pub struct Splitter {
    pending: Vec<u8>,
    /// Where the statement being read starts in `pending`.
    start: usize,
    /// How far `pending` has been scanned.
    scan: usize,
    state: State,
    delimiter: Vec<u8>,
    dialect: Dialect,
    /// Whether the statement so far holds anything but white space and comments.
    has_content: bool,
    at_line_start: bool,
    /// A `/*` comment ran to the end of the input.
    cut_in_comment: bool,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            pending: Vec::new(),
            start: 0,
            scan: 0,
            state: State::Normal,
            delimiter: b";".to_vec(),
            dialect: Dialect::default(),
            has_content: false,
            at_line_start: true,
            cut_in_comment: false,
        }
    }
}

impl Splitter {
    /// Feeds more text; complete statements are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Statement>) {
        if self.start > 0 && self.start * 2 >= self.pending.len() {
            self.pending.drain(..self.start);
            self.scan -= self.start;
            self.start = 0;
        }
        self.pending.extend_from_slice(chunk);
        self.run(out, false);
    }

    /// Ends the input: a last statement without a delimiter is returned; text ending inside a
    /// quote or comment is an error (the file was cut short).
    pub fn finish(mut self, out: &mut Vec<Statement>) -> Result<(), String> {
        self.run(out, true);
        if let State::Quoted(q) = self.state {
            return Err(format!("it ends inside a {} quote", q as char));
        }
        if self.cut_in_comment {
            return Err("it ends inside a /* comment".into());
        }
        if self.has_content {
            let sql = trim(&self.pending[self.start..]).to_vec();
            out.push(Statement {
                sql,
                dialect: self.dialect,
            });
        }
        Ok(())
    }

    fn emit(&mut self, end: usize, out: &mut Vec<Statement>) {
        let sql = trim(&self.pending[self.start..end]).to_vec();
        let dialect = self.dialect;
        if let Some(mode) = sql_mode_set_by(&sql, dialect) {
            self.dialect = Dialect::from_sql_mode(&mode);
        }
        out.push(Statement { sql, dialect });
    }

    fn run(&mut self, out: &mut Vec<Statement>, at_end: bool) {
        let len = self.pending.len();
        while self.scan < len {
            let i = self.scan;
            if let State::Quoted(quote) = self.state {
                match lexer::quote_end(&self.pending, i, quote, self.dialect, at_end) {
                    QuoteEnd::Closed(end) => {
                        self.state = State::Normal;
                        self.scan = end;
                        self.at_line_start = false;
                        continue;
                    }
                    QuoteEnd::Open(resume) => {
                        self.scan = resume;
                        return;
                    }
                }
            }
            let byte = self.pending[i];
            if self.at_line_start && !self.has_content && matches!(byte, b'D' | b'd') {
                match self.try_delimiter_line(i, at_end) {
                    Some(true) => continue,
                    Some(false) => {}
                    None => return,
                }
            }
            if byte == b'\n' {
                self.at_line_start = true;
                self.scan += 1;
                continue;
            }
            self.at_line_start = false;
            if self.pending[i..].starts_with(&self.delimiter) {
                if self.has_content {
                    self.emit(i, out);
                }
                self.scan = i + self.delimiter.len();
                self.start = self.scan;
                self.has_content = false;
                continue;
            }
            if !at_end && self.delimiter.starts_with(&self.pending[i..]) {
                return; // maybe a delimiter cut by the chunk boundary
            }
            if matches!(byte, b'\'' | b'"' | b'`') {
                self.state = State::Quoted(byte);
                self.has_content = true;
                self.scan = i + 1;
                continue;
            }
            if byte.is_ascii_whitespace() {
                self.scan += 1;
                continue;
            }
            if !matches!(byte, b'#' | b'-' | b'/') {
                // Words one byte at a time: a delimiter may start inside one (`1$$`).
                self.has_content = true;
                self.scan += 1;
                continue;
            }
            match lexer::token_at(&self.pending, i, self.dialect, at_end) {
                None => return, // the comment may go on in the next chunk
                Some((Kind::Comment, end)) => {
                    let comment = &self.pending[i..end];
                    if comment.starts_with(b"/*")
                        && (comment.len() < 4 || !comment.ends_with(b"*/"))
                    {
                        self.cut_in_comment = true;
                    }
                    self.scan = end;
                }
                Some((Kind::Executable, end)) => {
                    self.has_content = true;
                    self.scan = end;
                }
                Some(_) => {
                    self.has_content = true;
                    self.scan += 1;
                }
            }
        }
    }

    /// At a line start outside any statement: `Some(true)` if a DELIMITER line was consumed,
    /// `Some(false)` if this is not one, `None` if more input is needed to tell.
    fn try_delimiter_line(&mut self, i: usize, at_end: bool) -> Option<bool> {
        const WORD: &[u8] = b"delimiter";
        let rest = &self.pending[i..];
        let line_end = memchr::memchr(b'\n', rest);
        if line_end.is_none() && !at_end && rest.len() < 4096 {
            return None;
        }
        let line = &rest[..line_end.unwrap_or(rest.len())];
        if line.len() <= WORD.len()
            || !line[..WORD.len()].eq_ignore_ascii_case(WORD)
            || !line[WORD.len()].is_ascii_whitespace()
        {
            return Some(false);
        }
        let value = trim(&line[WORD.len()..]);
        if value.is_empty() {
            return Some(false);
        }
        self.delimiter = value.to_vec();
        self.scan = i + line.len() + usize::from(line_end.is_some());
        self.start = self.scan;
        self.at_line_start = true;
        Some(true)
    }
}

/// The session sql_mode a statement sets, when it is `SET [SESSION|LOCAL] sql_mode = '…'` (or
/// `@@sql_mode`, `@@session.sql_mode`) with a literal: the form every file we write uses.
fn sql_mode_set_by(sql: &[u8], dialect: Dialect) -> Option<String> {
    // Data statements are most of a file: rejected without lexing.
    if sql.len() > 4096 || !sql.windows(8).any(|w| w.eq_ignore_ascii_case(b"sql_mode")) {
        return None;
    }
    let text = std::str::from_utf8(sql).ok()?;
    let tokens = lexer::significant(text, dialect);
    if !tokens.first()?.is_keyword("SET") {
        return None;
    }
    let mut i = 1;
    let word = |i: usize| tokens.get(i).filter(|t| t.kind == Kind::Word);
    if word(i).is_some_and(|t| t.is_keyword("SESSION") || t.is_keyword("LOCAL")) {
        i += 1;
    } else if tokens.get(i).is_some_and(|t| t.is_punct('@'))
        && tokens.get(i + 1).is_some_and(|t| t.is_punct('@'))
    {
        i += 2;
        if word(i).is_some_and(|t| t.is_keyword("SESSION") || t.is_keyword("LOCAL"))
            && tokens.get(i + 1).is_some_and(|t| t.is_punct('.'))
        {
            i += 2;
        }
    }
    if !word(i).is_some_and(|t| t.is_keyword("sql_mode")) {
        return None;
    }
    i += 1;
    if tokens.get(i).is_some_and(|t| t.is_punct(':')) {
        i += 1;
    }
    if !tokens.get(i).is_some_and(|t| t.is_punct('=')) {
        return None;
    }
    let value = tokens.get(i + 1)?;
    // One assignment only: `SET sql_mode = 'x', other = 1` still sets it, but anything after
    // the literal other than another assignment is not this form.
    if !matches!(value.kind, Kind::Str(_)) || tokens.get(i + 2).is_some_and(|t| !t.is_punct(',')) {
        return None;
    }
    value.name()
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_in_chunks(text: &str, chunk: usize) -> Vec<String> {
        let mut splitter = Splitter::default();
        let mut out = Vec::new();
        for piece in text.as_bytes().chunks(chunk) {
            splitter.push(piece, &mut out);
        }
        splitter.finish(&mut out).unwrap();
        out.into_iter()
            .map(|s| String::from_utf8(s.sql).unwrap())
            .collect()
    }

    const SCRIPT: &str = "-- banner; with a semicolon\n\
        SET NAMES utf8mb4;\n\
        INSERT INTO `a;b` VALUES ('x;y','it''s','back\\\\slash\\';'),(\"q;\");\n\
        /* block; comment */\n\
        DELIMITER ;;\n\
        CREATE PROCEDURE p() BEGIN SELECT 1; SELECT ';;' ; END;;\n\
        DELIMITER ;\n\
        # hash comment;\n\
        SELECT 2 -- trailing;\n;\n\
        SELECT 3-1;\n\
        SELECT /*!40101 1 */;";

    #[test]
    fn splits_like_the_mysql_client_whatever_the_chunking() {
        let expected = vec![
            "-- banner; with a semicolon\nSET NAMES utf8mb4",
            "INSERT INTO `a;b` VALUES ('x;y','it''s','back\\\\slash\\';'),(\"q;\")",
            "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT ';;' ; END",
            "# hash comment;\nSELECT 2 -- trailing;",
            "SELECT 3-1",
            "SELECT /*!40101 1 */",
        ];
        for chunk in [1, 2, 3, 5, 7, 64, 4096] {
            assert_eq!(
                split_in_chunks(SCRIPT, chunk),
                expected,
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn a_file_cut_inside_a_string_is_an_error() {
        let mut splitter = Splitter::default();
        let mut out = Vec::new();
        splitter.push(b"INSERT INTO t VALUES ('unfinished", &mut out);
        assert!(splitter.finish(&mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn quotes_are_read_in_the_dialect_the_session_is_in() {
        let script = "INSERT INTO `a\\` VALUES ('b\\'c');\n\
            -- a comment first, as the object files write\n\
            SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES';\n\
            DELIMITER ;;\n\
            CREATE PROCEDURE p() SELECT 'C:\\';;\n\
            DELIMITER ;\n\
            SET @@session.sql_mode = 'ANSI';\n\
            SELECT \"x\\\" FROM t;\n\
            SET sql_mode = '';\n\
            SELECT 'd\\';';\n\
            SELECT /*! 1; */";
        for chunk in [1, 2, 3, 7, 4096] {
            let mut splitter = Splitter::default();
            let mut out = Vec::new();
            for piece in script.as_bytes().chunks(chunk) {
                splitter.push(piece, &mut out);
            }
            splitter.finish(&mut out).unwrap();
            let texts: Vec<(String, Dialect)> = out
                .into_iter()
                .map(|s| (String::from_utf8(s.sql).unwrap(), s.dialect))
                .collect();
            let no_escapes = Dialect::from_sql_mode("NO_BACKSLASH_ESCAPES");
            let ansi = Dialect::from_sql_mode("ANSI");
            assert_eq!(
                texts,
                vec![
                    (
                        "INSERT INTO `a\\` VALUES ('b\\'c')".into(),
                        Dialect::default()
                    ),
                    (
                        "-- a comment first, as the object files write\nSET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_BACKSLASH_ESCAPES'".into(),
                        Dialect::default()
                    ),
                    ("CREATE PROCEDURE p() SELECT 'C:\\'".into(), no_escapes),
                    ("SET @@session.sql_mode = 'ANSI'".into(), no_escapes),
                    ("SELECT \"x\\\" FROM t".into(), ansi),
                    ("SET sql_mode = ''".into(), ansi),
                    ("SELECT 'd\\';'".into(), Dialect::default()),
                    ("SELECT /*! 1".into(), Dialect::default()),
                    ("*/".into(), Dialect::default()),
                ],
                "chunk size {chunk}"
            );
        }
    }

    #[test]
    fn a_file_cut_inside_a_comment_is_an_error() {
        for text in ["SELECT 1; /* unfinished", "SELECT 1 /*/"] {
            let mut splitter = Splitter::default();
            let mut out = Vec::new();
            splitter.push(text.as_bytes(), &mut out);
            assert_eq!(
                splitter.finish(&mut out),
                Err("it ends inside a /* comment".to_string()),
                "{text}"
            );
        }
    }
}
