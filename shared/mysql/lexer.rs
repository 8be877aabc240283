//! The one SQL lexer: where a quoted string, a quoted name and a comment end, by the rules of
//! the server and the `mariadb` client. Everything that reads SQL text that came out of a
//! database (the restore's splitter, DEFINER clauses, object names, logged statements) reads it
//! through these tokens, so a hostile name or routine body is read the way the server reads it.
//!
//! The rules (checked against the `mariadb` client by `tests/lexer.rs`):
//! - `'…'` and `"…"` are strings; a doubled quote stays inside; a backslash escapes the next
//!   byte unless the session's sql_mode has NO_BACKSLASH_ESCAPES.
//! - `` `…` `` is a name; only a doubled backtick stays inside (never a backslash escape).
//!   Under ANSI_QUOTES `"…"` is a name too, with the same rule.
//! - `-- ` (two dashes then white space, vertical tab included, or the end), `#` to the end of
//!   the line, and `/* … */`
//!   are comments; `/*!…` and `/*M!…` are not: the server runs their text, and the client
//!   reads quotes and delimiters inside them as anywhere else.

/// How the session the text is run in reads quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub backslash_escapes: bool,
    pub ansi_quotes: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            backslash_escapes: true,
            ansi_quotes: false,
        }
    }
}

impl Dialect {
    /// The dialect of a session whose `sql_mode` is `mode` (composite modes included: ANSI,
    /// ORACLE, DB2, … set ANSI_QUOTES).
    pub fn from_sql_mode(mode: &str) -> Dialect {
        let mut dialect = Dialect::default();
        for part in mode.split(',').map(|p| p.trim().to_ascii_uppercase()) {
            match part.as_str() {
                "NO_BACKSLASH_ESCAPES" => dialect.backslash_escapes = false,
                "ANSI_QUOTES" | "ANSI" | "ORACLE" | "DB2" | "MSSQL" | "POSTGRESQL" | "MAXDB" => {
                    dialect.ansi_quotes = true
                }
                _ => {}
            }
        }
        dialect
    }

    /// Whether `quote` opens a name (as opposed to a string).
    pub fn quotes_a_name(self, quote: u8) -> bool {
        quote == b'`' || (quote == b'"' && self.ansi_quotes)
    }

    fn escapes_in(self, quote: u8) -> bool {
        self.backslash_escapes && !self.quotes_a_name(quote)
    }
}

/// How far a quoted token reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteEnd {
    /// Just after the closing quote.
    Closed(usize),
    /// The text ends first; scanning may resume at this index once more text is appended.
    Open(usize),
}

/// Scans a token quoted with `quote` whose body starts at `from` (just after the opening
/// quote). With `at_end` false, a quote or backslash at the very end is left for more text.
pub fn quote_end(text: &[u8], from: usize, quote: u8, dialect: Dialect, at_end: bool) -> QuoteEnd {
    let escapes = dialect.escapes_in(quote);
    let mut i = from;
    loop {
        let found = if escapes {
            memchr::memchr2(quote, b'\\', &text[i..])
        } else {
            memchr::memchr(quote, &text[i..])
        };
        let Some(offset) = found else {
            return QuoteEnd::Open(text.len());
        };
        let at = i + offset;
        if at + 1 >= text.len() && !at_end {
            // An escape, or a doubled quote, may continue in the next chunk.
            return QuoteEnd::Open(at);
        }
        if text[at] == b'\\' {
            i = (at + 2).min(text.len());
            if at + 1 >= text.len() {
                return QuoteEnd::Open(text.len());
            }
        } else if text.get(at + 1) == Some(&quote) {
            i = at + 2;
        } else {
            return QuoteEnd::Closed(at + 1);
        }
    }
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Space,
    /// `-- …`, `# …` or `/* … */` (not `/*!`).
    Comment,
    /// A string literal, quoted with the byte given.
    Str(u8),
    /// A quoted name (`` `…` ``, or `"…"` under ANSI_QUOTES).
    QuotedName,
    /// A run of letters, digits, `_`, `$` and non-ASCII characters: a keyword, a bare name
    /// or a number.
    Word,
    /// `/*!` or `/*M!` with its version digits: the text after it is run.
    Executable,
    /// Any other single character.
    Punct,
}

/// The token at `text[at..]`: its kind and where it ends; `None` when the text ends before the
/// token is known to end (only when `at_end` is false).
pub fn token_at(text: &[u8], at: usize, dialect: Dialect, at_end: bool) -> Option<(Kind, usize)> {
    let byte = *text.get(at)?;
    let next = text.get(at + 1).copied();
    let need_more = |len: usize| !at_end && at + len >= text.len();
    match byte {
        b'\'' | b'"' | b'`' => {
            let kind = if dialect.quotes_a_name(byte) {
                Kind::QuotedName
            } else {
                Kind::Str(byte)
            };
            match quote_end(text, at + 1, byte, dialect, at_end) {
                QuoteEnd::Closed(end) => Some((kind, end)),
                QuoteEnd::Open(_) if !at_end => None,
                QuoteEnd::Open(_) => Some((kind, text.len())),
            }
        }
        b'#' => line_comment(text, at, at_end),
        b'-' => {
            if need_more(2) {
                return None;
            }
            let after = text.get(at + 2).copied();
            // The client's rule (C isspace: vertical tab too, no other control character).
            if next == Some(b'-')
                && after.is_none_or(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
            {
                line_comment(text, at, at_end)
            } else {
                Some((Kind::Punct, at + 1))
            }
        }
        b'/' => {
            if need_more(3) {
                return None;
            }
            if next != Some(b'*') {
                return Some((Kind::Punct, at + 1));
            }
            let mut head = at + 2;
            if text.get(head) == Some(&b'M') && text.get(head + 1) == Some(&b'!') {
                head += 2;
            } else if text.get(head) == Some(&b'!') {
                head += 1;
            } else {
                return match memchr::memmem::find(&text[at + 2..], b"*/") {
                    Some(offset) => Some((Kind::Comment, at + 2 + offset + 2)),
                    None if at_end => Some((Kind::Comment, text.len())),
                    None => None,
                };
            }
            let digits = text[head..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if need_more(head - at + digits) {
                return None;
            }
            Some((Kind::Executable, head + digits))
        }
        b if b.is_ascii_whitespace() => {
            let len = text[at..]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            Some((Kind::Space, at + len))
        }
        b if is_word_byte(b) => {
            let len = text[at..].iter().take_while(|&&b| is_word_byte(b)).count();
            if need_more(len) {
                return None;
            }
            Some((Kind::Word, at + len))
        }
        _ => Some((Kind::Punct, at + 1)),
    }
}

fn line_comment(text: &[u8], at: usize, at_end: bool) -> Option<(Kind, usize)> {
    match memchr::memchr(b'\n', &text[at..]) {
        // The newline belongs to the white space after the comment.
        Some(offset) => Some((Kind::Comment, at + offset)),
        None if at_end => Some((Kind::Comment, text.len())),
        None => None,
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// One token of a complete statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: Kind,
    /// Byte offset in the statement.
    pub start: usize,
    pub text: &'a str,
}

impl Token<'_> {
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }

    /// A bare word equal to `keyword`, ignoring case.
    pub fn is_keyword(&self, keyword: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct && self.text.len() == c.len_utf8() && self.text.starts_with(c)
    }

    /// The name this token spells: a bare word as it is, a quoted name (or, where a name may
    /// be a string, as in `user@host`, a string without escapes) unquoted.
    pub fn name(&self) -> Option<String> {
        match self.kind {
            Kind::Word => Some(self.text.to_string()),
            Kind::QuotedName | Kind::Str(_) => {
                let quote = self.text.chars().next()?;
                let inner = self.text.get(1..self.text.len().checked_sub(1)?)?;
                let doubled = format!("{quote}{quote}");
                Some(inner.replace(&doubled, &quote.to_string()))
            }
            _ => None,
        }
    }
}

/// The tokens of a complete statement, white space and comments included.
pub fn tokens(statement: &str, dialect: Dialect) -> impl Iterator<Item = Token<'_>> {
    let bytes = statement.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        let (kind, end) = token_at(bytes, at, dialect, true)?;
        // Token ends fall on character boundaries (every rule stops at an ASCII byte or the
        // end); a `get` keeps that a checked fact rather than a panic.
        let text = statement.get(at..end)?;
        let token = Token {
            kind,
            start: at,
            text,
        };
        at = end;
        Some(token)
    })
}

/// The tokens of a complete statement as the server reads them: without white space and
/// comments, and with an executable comment's content as the code it is (`DROP /*!40005
/// TEMPORARY */ TABLE` reads `DROP TEMPORARY TABLE`), its `/*!…` and `*/` left out.
pub fn code(statement: &str, dialect: Dialect) -> impl Iterator<Item = Token<'_>> {
    let mut all = tokens(statement, dialect).peekable();
    let mut in_executable = false;
    std::iter::from_fn(move || loop {
        let token = all.next()?;
        match token.kind {
            Kind::Space | Kind::Comment => {}
            Kind::Executable => in_executable = true,
            Kind::Punct
                if in_executable
                    && token.text == "*"
                    && all
                        .peek()
                        .is_some_and(|n| n.text == "/" && n.start == token.end()) =>
            {
                all.next();
                in_executable = false;
            }
            _ => return Some(token),
        }
    })
}

/// Text in a character set that need not be UTF-8 (a logged statement, a definition written
/// in its client's character set), as the lexer reads it: UTF-8 as it is, other bytes one
/// character each (every byte the lexer cares about is ASCII; the text is only ever in a
/// character set whose bytes below 0x80 are ASCII). Whether it was UTF-8 comes back with it,
/// for [`bytes_of`].
pub fn text_of(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), true),
        Err(_) => (bytes.iter().map(|&b| char::from(b)).collect(), false),
    }
}

/// The bytes of `text` read by [`text_of`] (`utf8`: it was UTF-8).
pub fn bytes_of(text: &str, utf8: bool) -> Vec<u8> {
    if utf8 {
        text.as_bytes().to_vec()
    } else {
        // Every char came from one byte (the rewrites made to statements add ASCII only).
        text.chars().map(|c| u32::from(c) as u8).collect()
    }
}

/// [`code`], collected.
pub fn significant(statement: &str, dialect: Dialect) -> Vec<Token<'_>> {
    code(statement, dialect).collect()
}

/// A possibly qualified name starting at `tokens[i]` (`name`, `db.name`): the qualifier, the
/// name and the index after it.
pub fn qualified_name(tokens: &[Token<'_>], i: usize) -> Option<(Option<String>, String, usize)> {
    let first = tokens.get(i)?;
    if !matches!(first.kind, Kind::Word | Kind::QuotedName) {
        return None;
    }
    let first_name = first.name()?;
    match (tokens.get(i + 1), tokens.get(i + 2)) {
        (Some(dot), Some(second))
            if dot.is_punct('.') && matches!(second.kind, Kind::Word | Kind::QuotedName) =>
        {
            Some((Some(first_name), second.name()?, i + 3))
        }
        _ => Some((None, first_name, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str, dialect: Dialect) -> Vec<(Kind, &str)> {
        tokens(text, dialect).map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn backslashes_escape_in_strings_but_never_in_backticks() {
        let t = kinds(r"'a\'b' `c\` x", Dialect::default());
        assert_eq!(t[0], (Kind::Str(b'\''), r"'a\'b'"));
        assert_eq!(t[2], (Kind::QuotedName, r"`c\`"));
        assert_eq!(t[4], (Kind::Word, "x"));
    }

    #[test]
    fn the_sql_mode_changes_what_quotes_mean() {
        let no_escapes = Dialect::from_sql_mode("STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES");
        assert_eq!(
            kinds(r"'C:\' x", no_escapes)[0],
            (Kind::Str(b'\''), r"'C:\'")
        );
        let ansi = Dialect::from_sql_mode("ANSI");
        assert_eq!(kinds(r#""a\" x"#, ansi)[0], (Kind::QuotedName, r#""a\""#));
        assert_eq!(
            kinds(r#""a\" x""#, Dialect::default())[0],
            (Kind::Str(b'"'), r#""a\" x""#)
        );
    }

    #[test]
    fn comments_are_the_clients() {
        let t = kinds(
            "--1 -- y\n# z\n/* w */ /*!40101 1 */ /*M!100100 2*/ --\u{1}",
            Dialect::default(),
        );
        let comments: Vec<&str> = t
            .iter()
            .filter(|(k, _)| *k == Kind::Comment)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(comments, vec!["-- y", "# z", "/* w */"]);
        assert_eq!(t[0], (Kind::Punct, "-"));
        assert!(t.contains(&(Kind::Executable, "/*!40101")));
        assert!(t.contains(&(Kind::Executable, "/*M!100100")));
    }

    #[test]
    fn names_are_unquoted() {
        let t = significant("`a``b`.\"c\" 'd''e'", Dialect::from_sql_mode("ANSI_QUOTES"));
        assert_eq!(t[0].name().as_deref(), Some("a`b"));
        assert_eq!(
            qualified_name(&t, 0).map(|(q, n, _)| (q, n)),
            Some((Some("a`b".to_string()), "c".to_string()))
        );
        assert_eq!(t[3].name().as_deref(), Some("d'e"));
    }

    #[test]
    fn any_text_lexes_without_panicking_and_covers_every_byte() {
        for text in ["`é", "'\\", "/*!", "-", "é`\u{1F600}'\"#-- /*", "`\u{0}`"] {
            for dialect in [
                Dialect::default(),
                Dialect::from_sql_mode("ANSI,NO_BACKSLASH_ESCAPES"),
            ] {
                let joined: String = tokens(text, dialect).map(|t| t.text).collect();
                assert_eq!(joined, text);
            }
        }
    }
}
