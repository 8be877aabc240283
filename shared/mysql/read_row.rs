//! What the dump reads beside a column's value, for values whose text (over the utf8mb4
//! connection) does not load back as the same value, and how such a row is written.
//!
//! - An ENUM reads its invalid-value index 0 as `''`, the same text as a `''` member: its
//!   index is read too.
//! - A SET with a `''` member reads that member as nothing (`''`, or `,a` beside `a`), and its
//!   text loads back without it: its number is read too.
//! - Text in a character set with bytes Unicode has no character for (sjis's NEC and IBM
//!   extensions, cp1251's 0x98, …) reads those bytes as `?`: its bytes are read too, and a
//!   value whose text holds a `?` is written from them.
//!
//! The values read first stay what fingerprints and key states hash (older backups' hashes
//! keep matching); only the written literal changes.

use mysql_async::Value;

use super::quote_ident;

/// What is read beside a column's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlsoRead {
    Nothing,
    EnumIndex,
    SetNumber,
    /// The value's bytes, in this character set.
    Bytes(String),
}

impl AlsoRead {
    /// From information_schema's DATA_TYPE, COLUMN_TYPE (`set('','a')`) and
    /// CHARACTER_SET_NAME.
    pub fn of(data_type: &str, column_type: &str, charset: Option<&str>) -> AlsoRead {
        if data_type.eq_ignore_ascii_case("enum") {
            return AlsoRead::EnumIndex;
        }
        if data_type.eq_ignore_ascii_case("set") {
            let empty_member = super::lexer::significant(column_type, Default::default())
                .iter()
                .any(|t| matches!(t.kind, super::lexer::Kind::Str(_)) && t.text == "''");
            return if empty_member {
                AlsoRead::SetNumber
            } else {
                AlsoRead::Nothing
            };
        }
        match charset {
            Some(charset) if !reads_whole_as_unicode(charset) && super::is_plain_name(charset) => {
                AlsoRead::Bytes(charset.to_ascii_lowercase())
            }
            _ => AlsoRead::Nothing,
        }
    }

    /// The expression selected beside the column `name`, if any.
    pub fn expression(&self, name: &str) -> Option<String> {
        match self {
            AlsoRead::Nothing => None,
            AlsoRead::EnumIndex | AlsoRead::SetNumber => Some(format!("{}+0", quote_ident(name))),
            AlsoRead::Bytes(_) => Some(format!("CAST({} AS BINARY)", quote_ident(name))),
        }
    }
}

/// Character sets every stored value of which has a Unicode character for each of its
/// characters: their text is the value. (UTF-16/32 hold Unicode; MariaDB's latin1 maps all 256
/// bytes; binary columns are read as bytes anyway.)
fn reads_whole_as_unicode(charset: &str) -> bool {
    let charset = charset.to_ascii_lowercase();
    charset.starts_with("utf") || matches!(charset.as_str(), "ucs2" | "latin1" | "binary")
}

/// How a value is written when not as its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A member number (ENUM index, SET bits).
    Number(u64),
    /// Bytes in a character set: `_sjis X'…'`.
    Bytes { charset: String, bytes: Vec<u8> },
}

/// One row as the dump reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRow {
    pub values: Vec<Value>,
    /// Values written otherwise than by their value: (position, literal).
    pub written_as: Vec<(usize, Literal)>,
    /// Only a non-strict session stores one of them (an ENUM's index 0).
    pub lenient: bool,
}

impl ReadRow {
    /// Splits a row read with the expressions of `also_read` (one per column, in order) after
    /// the columns' values.
    pub fn new<'a>(
        also_read: impl Iterator<Item = &'a AlsoRead> + Clone,
        mut values: Vec<Value>,
    ) -> ReadRow {
        let columns = also_read.clone().count();
        let extra = values.split_off(columns.min(values.len()));
        let mut row = ReadRow {
            values,
            written_as: Vec::new(),
            lenient: false,
        };
        let read_beside = also_read
            .enumerate()
            .filter(|(_, read)| **read != AlsoRead::Nothing);
        for ((position, read), beside) in read_beside.zip(extra) {
            match read {
                AlsoRead::EnumIndex if as_number(&beside) == Some(0) => {
                    row.written_as.push((position, Literal::Number(0)));
                    row.lenient = true;
                }
                AlsoRead::SetNumber => {
                    if let Some(number) = as_number(&beside) {
                        row.written_as.push((position, Literal::Number(number)));
                    }
                }
                AlsoRead::Bytes(charset) => {
                    let text_lost_some = matches!(
                        row.values.get(position),
                        Some(Value::Bytes(text)) if text.contains(&b'?')
                    );
                    if let (true, Value::Bytes(bytes)) = (text_lost_some, beside) {
                        row.written_as.push((
                            position,
                            Literal::Bytes {
                                charset: charset.clone(),
                                bytes,
                            },
                        ));
                    }
                }
                _ => {}
            }
        }
        row
    }
}

impl Literal {
    /// Appends the literal: an expression, not a plain number or string, so the restore runs
    /// its statement as the INSERT it is rather than as LOAD DATA rows (a LOAD DATA field `0`
    /// is the text '0', a member's name in `ENUM('0', …)`).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Literal::Number(number) => {
                out.extend_from_slice(b"CAST(");
                out.extend_from_slice(itoa::Buffer::new().format(*number).as_bytes());
                out.extend_from_slice(b" AS UNSIGNED)");
            }
            Literal::Bytes { charset, bytes } => {
                out.push(b'_');
                out.extend_from_slice(charset.as_bytes());
                out.extend_from_slice(b" X'");
                out.extend_from_slice(hex::encode(bytes).as_bytes());
                out.push(b'\'');
            }
        }
    }
}

fn as_number(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::UInt(n) => Some(*n),
        Value::Double(d) => Some(*d as u64),
        Value::Float(f) => Some(*f as u64),
        Value::Bytes(text) => std::str::from_utf8(text).ok()?.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_text_cannot_say_is_read_beside() {
        assert_eq!(
            AlsoRead::of("enum", "enum('a')", Some("utf8mb4")),
            AlsoRead::EnumIndex
        );
        assert_eq!(
            AlsoRead::of("set", "set('a','b')", Some("latin1")),
            AlsoRead::Nothing
        );
        assert_eq!(
            AlsoRead::of("set", "set('','a')", Some("latin1")),
            AlsoRead::SetNumber
        );
        assert_eq!(
            AlsoRead::of("set", "set('x''','a')", None),
            AlsoRead::Nothing
        );
        assert_eq!(
            AlsoRead::of("varchar", "varchar(5)", Some("utf8mb4")),
            AlsoRead::Nothing
        );
        assert_eq!(
            AlsoRead::of("char", "char(5)", Some("latin1")),
            AlsoRead::Nothing
        );
        assert_eq!(
            AlsoRead::of("char", "char(5)", Some("sjis")),
            AlsoRead::Bytes("sjis".into())
        );
        assert_eq!(AlsoRead::of("int", "int(11)", None), AlsoRead::Nothing);
    }

    #[test]
    fn a_value_whose_text_lost_characters_is_written_from_its_bytes() {
        let read = [AlsoRead::Nothing, AlsoRead::Bytes("sjis".into())];
        let row = ReadRow::new(
            read.iter(),
            vec![
                Value::Int(1),
                Value::Bytes(b"?".to_vec()),
                Value::Bytes(vec![0x87, 0x8a]),
            ],
        );
        assert_eq!(row.values.len(), 2);
        let mut out = Vec::new();
        row.written_as[0].1.write(&mut out);
        assert_eq!(out, b"_sjis X'878a'");
        let plain = ReadRow::new(
            read.iter(),
            vec![
                Value::Int(1),
                Value::Bytes(b"ab".to_vec()),
                Value::Bytes(b"ab".to_vec()),
            ],
        );
        assert!(plain.written_as.is_empty());
    }
}
