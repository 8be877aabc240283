//! Splits a stream of SQL text into statements the way the `mysql` client does: honouring
//! quotes, comments and `DELIMITER` lines, so a statement's own `;` (inside a string or a
//! routine body) never ends it early.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Normal,
    Quoted(u8),
    LineComment,
    BlockComment,
}

pub struct Splitter {
    pending: Vec<u8>,
    /// Where the statement being read starts in `pending`.
    start: usize,
    /// How far `pending` has been scanned.
    scan: usize,
    state: State,
    delimiter: Vec<u8>,
    /// Whether the statement so far holds anything but white space and comments.
    has_content: bool,
    at_line_start: bool,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            pending: Vec::new(),
            start: 0,
            scan: 0,
            state: State::Normal,
            delimiter: b";".to_vec(),
            has_content: false,
            at_line_start: true,
        }
    }
}

impl Splitter {
    /// Feeds more text; complete statements are appended to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Vec<u8>>) {
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
    pub fn finish(mut self, out: &mut Vec<Vec<u8>>) -> Result<(), String> {
        self.run(out, true);
        match self.state {
            State::Quoted(q) => Err(format!("it ends inside a {} quote", q as char)),
            State::BlockComment => Err("it ends inside a /* comment".into()),
            State::Normal | State::LineComment => {
                if self.has_content {
                    out.push(trim(&self.pending[self.start..]).to_vec());
                }
                Ok(())
            }
        }
    }

    fn run(&mut self, out: &mut Vec<Vec<u8>>, at_end: bool) {
        let len = self.pending.len();
        while self.scan < len {
            let i = self.scan;
            let byte = self.pending[i];
            match self.state {
                State::Quoted(quote) => {
                    // Jump to the next quote or backslash: data rows are mostly string bytes.
                    match memchr::memchr2(quote, b'\\', &self.pending[i..]) {
                        None => {
                            self.scan = len;
                        }
                        Some(offset) => {
                            let at = i + offset;
                            if self.pending[at] == b'\\' {
                                if at + 1 >= len && !at_end {
                                    self.scan = at;
                                    return;
                                }
                                self.scan = at + 2;
                            } else if at + 1 >= len && !at_end {
                                // A doubled quote may continue in the next chunk.
                                self.scan = at;
                                return;
                            } else if at + 1 < len && self.pending[at + 1] == quote {
                                self.scan = at + 2;
                            } else {
                                self.state = State::Normal;
                                self.scan = at + 1;
                            }
                        }
                    }
                    self.at_line_start = false;
                }
                State::LineComment => match memchr::memchr(b'\n', &self.pending[i..]) {
                    None => self.scan = len,
                    Some(offset) => {
                        self.scan = i + offset + 1;
                        self.state = State::Normal;
                        self.at_line_start = true;
                    }
                },
                State::BlockComment => match memchr::memmem::find(&self.pending[i..], b"*/") {
                    None => {
                        self.scan = len.saturating_sub(1).max(i);
                        return;
                    }
                    Some(offset) => {
                        self.scan = i + offset + 2;
                        self.state = State::Normal;
                    }
                },
                State::Normal => {
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
                            out.push(trim(&self.pending[self.start..i]).to_vec());
                        }
                        self.scan = i + self.delimiter.len();
                        self.start = self.scan;
                        self.has_content = false;
                        continue;
                    }
                    if !at_end && self.delimiter.starts_with(&self.pending[i..]) {
                        return; // maybe a delimiter cut by the chunk boundary
                    }
                    match byte {
                        b'\'' | b'"' | b'`' => {
                            self.state = State::Quoted(byte);
                            self.has_content = true;
                        }
                        b'#' => self.state = State::LineComment,
                        b'-' => {
                            if i + 2 >= len && !at_end {
                                return;
                            }
                            let next = self.pending.get(i + 1).copied();
                            let after = self.pending.get(i + 2).copied();
                            if next == Some(b'-') && after.is_none_or(|c| c.is_ascii_whitespace()) {
                                self.state = State::LineComment;
                            } else {
                                self.has_content = true;
                            }
                        }
                        b'/' => {
                            if i + 2 >= len && !at_end {
                                return;
                            }
                            if self.pending.get(i + 1) == Some(&b'*') {
                                // `/*!…*/` and `/*M!…*/` are executed by the server.
                                let third = self.pending.get(i + 2).copied();
                                if matches!(third, Some(b'!') | Some(b'M')) {
                                    self.has_content = true;
                                }
                                self.state = State::BlockComment;
                                self.scan = i + 2;
                                continue;
                            }
                            self.has_content = true;
                        }
                        c if c.is_ascii_whitespace() => {}
                        _ => self.has_content = true,
                    }
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
            .map(|s| String::from_utf8(s).unwrap())
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
}
