//! Turning values read over the binary protocol into SQL literals that load back bit for bit.
//!
//! The binary protocol is used on purpose: it hands FLOAT and DOUBLE over as IEEE bits, where the
//! text protocol rounds them for display (`mariadb-dump` loses FLOAT precision that way).

use std::io::Write;

use mysql_async::Value;

/// How a column's values are written, decided from `information_schema.COLUMNS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Integer,
    /// DECIMAL: exact digits, written unquoted as the server sent them.
    Decimal,
    Float,
    Double,
    /// Character data in the connection's utf8mb4.
    Text,
    /// Bytes with no character set (BINARY, BLOB, geometry): written as `_binary'…'`.
    Binary,
    Bit,
    Date,
    DateTime,
    Time,
    Year,
}

impl ColumnKind {
    pub fn from_information_schema(data_type: &str, character_set: Option<&str>) -> ColumnKind {
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" => {
                ColumnKind::Integer
            }
            "decimal" | "numeric" | "dec" | "fixed" => ColumnKind::Decimal,
            "float" => ColumnKind::Float,
            "double" | "real" | "double precision" => ColumnKind::Double,
            "bit" => ColumnKind::Bit,
            "date" => ColumnKind::Date,
            "datetime" | "timestamp" => ColumnKind::DateTime,
            "time" => ColumnKind::Time,
            "year" => ColumnKind::Year,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
            | "geometry" | "point" | "linestring" | "polygon" | "multipoint"
            | "multilinestring" | "multipolygon" | "geometrycollection" => ColumnKind::Binary,
            _ => match character_set {
                Some(cs) if !cs.eq_ignore_ascii_case("binary") => ColumnKind::Text,
                // A string type without a character set holds bytes.
                Some(_) => ColumnKind::Binary,
                None => ColumnKind::Text,
            },
        }
    }
}

/// A FLOAT's shortest literal that still brings its exact bits back. Exponent notation makes the
/// server read the literal as a DOUBLE (correctly rounded) and then store it as a FLOAT, which
/// is exactly `literal.parse::<f64>() as f32`: the shortest f32 digits pass that check almost
/// always (and compress far better than 17 digits); when they do not, the f32 widened to f64 is
/// written, which is exact by construction.
fn write_float(out: &mut Vec<u8>, f: f32) {
    let start = out.len();
    let _ = write!(out, "{f:e}");
    let round_trips = std::str::from_utf8(&out[start..])
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .is_some_and(|back| (back as f32).to_bits() == f.to_bits());
    if !round_trips {
        out.truncate(start);
        let _ = write!(out, "{:e}", f64::from(f));
    }
}

fn is_year_zero(text: &[u8]) -> bool {
    !text.is_empty() && text.iter().all(|&b| b == b'0')
}

/// Appends `value` as a SQL literal for a column of `kind`.
pub fn write_literal(out: &mut Vec<u8>, kind: ColumnKind, value: &Value) {
    match value {
        Value::NULL => out.extend_from_slice(b"NULL"),
        // YEAR 0000 as a string: a bare 0 is 0000 to INSERT but 2000 to LOAD DATA, which the
        // restore turns the rows into (and `'0'` is 2000 to both).
        Value::Int(0) | Value::UInt(0) if kind == ColumnKind::Year => {
            out.extend_from_slice(b"'0000'")
        }
        Value::Bytes(bytes) if kind == ColumnKind::Year && is_year_zero(bytes) => {
            out.extend_from_slice(b"'0000'")
        }
        Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::UInt(u) => out.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes()),
        Value::Float(f) => write_float(out, *f),
        Value::Double(d) => {
            let _ = write!(out, "{d:e}");
        }
        Value::Bytes(bytes) => match kind {
            ColumnKind::Decimal | ColumnKind::Integer | ColumnKind::Year
                if is_plain_number(bytes) =>
            {
                out.extend_from_slice(bytes)
            }
            ColumnKind::Bit => {
                out.extend_from_slice(b"0x");
                out.extend_from_slice(hex::encode(bytes).as_bytes());
                if bytes.is_empty() {
                    out.extend_from_slice(b"0");
                }
            }
            ColumnKind::Binary => {
                out.extend_from_slice(b"_binary'");
                escape_into(out, bytes);
                out.push(b'\'');
            }
            _ => {
                out.push(b'\'');
                escape_into(out, bytes);
                out.push(b'\'');
            }
        },
        Value::Date(year, month, day, hour, minute, second, micros) => {
            // Written digit by digit: a date per row is hot, and `write!`'s padding machinery
            // was a visible share of the dump's CPU.
            out.push(b'\'');
            push_digits(out, u32::from(*year), 4);
            out.push(b'-');
            push_digits(out, u32::from(*month), 2);
            out.push(b'-');
            push_digits(out, u32::from(*day), 2);
            if kind != ColumnKind::Date {
                out.push(b' ');
                push_digits(out, u32::from(*hour), 2);
                out.push(b':');
                push_digits(out, u32::from(*minute), 2);
                out.push(b':');
                push_digits(out, u32::from(*second), 2);
                if *micros != 0 {
                    out.push(b'.');
                    push_digits(out, *micros, 6);
                }
            }
            out.push(b'\'');
        }
        Value::Time(negative, days, hours, minutes, seconds, micros) => {
            let sign = if *negative { "-" } else { "" };
            let total_hours = u64::from(*days) * 24 + u64::from(*hours);
            let _ = if *micros == 0 {
                write!(out, "'{sign}{total_hours:02}:{minutes:02}:{seconds:02}'")
            } else {
                write!(
                    out,
                    "'{sign}{total_hours:02}:{minutes:02}:{seconds:02}.{micros:06}'"
                )
            };
        }
    }
}

/// `value` in decimal, zero-padded to at least `width` digits (as `{:0width$}` would).
fn push_digits(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(value);
    for _ in text.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(text.as_bytes());
}

/// Digits, signs, a point and an exponent only: a number as the server wrote it, safe to write
/// (and read back) unquoted.
pub(crate) fn is_plain_number(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// Escapes the bytes that would end or corrupt a quoted literal, or that a client would treat
/// specially (NUL, CR, LF, Ctrl-Z); every other byte passes through untouched.
pub fn escape_into(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let replacement: &[u8] = match b {
            b'\'' => b"\\'",
            b'\\' => b"\\\\",
            0 => b"\\0",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0x1a => b"\\Z",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(replacement);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(kind: ColumnKind, value: Value) -> String {
        let mut out = Vec::new();
        write_literal(&mut out, kind, &value);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn every_float_literal_brings_its_bits_back() {
        // A spread of bit patterns over every exponent, plus the edges.
        let mut bits = 0u32;
        let mut checked = 0;
        while let Some(next) = bits.checked_add(40_503) {
            bits = next;
            let f = f32::from_bits(bits);
            if !f.is_finite() {
                continue;
            }
            let text = literal(ColumnKind::Float, Value::Float(f));
            let back = text.parse::<f64>().unwrap() as f32;
            assert_eq!(back.to_bits(), f.to_bits(), "{f:e} written as {text}");
            checked += 1;
        }
        assert!(checked > 100_000);
        for f in [f32::MIN, f32::MAX, f32::MIN_POSITIVE, 1e-45, -0.0, 83.04655] {
            let text = literal(ColumnKind::Float, Value::Float(f));
            assert_eq!(
                (text.parse::<f64>().unwrap() as f32).to_bits(),
                f.to_bits(),
                "{text}"
            );
        }
        assert_eq!(
            literal(ColumnKind::Float, Value::Float(83.04655)),
            "8.304655e1"
        );
    }

    #[test]
    fn floats_keep_every_bit() {
        let text = literal(ColumnKind::Float, Value::Float(16777217.0_f32));
        assert_eq!(text.parse::<f64>().unwrap() as f32, 16777217.0_f32);
        let tenth = literal(ColumnKind::Float, Value::Float(0.1_f32));
        assert_eq!(tenth.parse::<f64>().unwrap() as f32, 0.1_f32);
        let d = literal(ColumnKind::Double, Value::Double(0.1 + 0.2));
        assert_eq!(d.parse::<f64>().unwrap(), 0.1 + 0.2);
    }

    #[test]
    fn strings_and_bytes_are_escaped() {
        assert_eq!(
            literal(ColumnKind::Text, Value::Bytes(b"O'Brien\\\n".to_vec())),
            "'O\\'Brien\\\\\\n'"
        );
        assert_eq!(
            literal(ColumnKind::Binary, Value::Bytes(vec![0, 0x1a, 0xff])),
            "_binary'\\0\\Z\u{fffd}'"
        );
        assert_eq!(literal(ColumnKind::Text, Value::NULL), "NULL");
        assert_eq!(
            literal(ColumnKind::Text, Value::Bytes(b"NULL".to_vec())),
            "'NULL'"
        );
    }

    #[test]
    fn temporal_values() {
        assert_eq!(
            literal(ColumnKind::Date, Value::Date(0, 0, 0, 0, 0, 0, 0)),
            "'0000-00-00'"
        );
        assert_eq!(
            literal(ColumnKind::DateTime, Value::Date(2026, 1, 2, 3, 4, 5, 60)),
            "'2026-01-02 03:04:05.000060'"
        );
        assert_eq!(
            literal(ColumnKind::Time, Value::Time(true, 1, 2, 3, 4, 0)),
            "'-26:03:04'"
        );
        assert_eq!(
            literal(
                ColumnKind::DateTime,
                Value::Date(9999, 12, 31, 23, 59, 59, 0)
            ),
            "'9999-12-31 23:59:59'"
        );
        assert_eq!(
            literal(
                ColumnKind::DateTime,
                Value::Date(1970, 1, 1, 0, 0, 1, 999_999)
            ),
            "'1970-01-01 00:00:01.999999'"
        );
        assert_eq!(
            literal(ColumnKind::Integer, Value::Int(i64::MIN)),
            i64::MIN.to_string()
        );
        assert_eq!(
            literal(ColumnKind::Integer, Value::UInt(u64::MAX)),
            u64::MAX.to_string()
        );
    }

    #[test]
    fn kinds_from_information_schema() {
        assert_eq!(
            ColumnKind::from_information_schema("varchar", Some("utf8mb4")),
            ColumnKind::Text
        );
        assert_eq!(
            ColumnKind::from_information_schema("longblob", None),
            ColumnKind::Binary
        );
        assert_eq!(
            ColumnKind::from_information_schema("DECIMAL", None),
            ColumnKind::Decimal
        );
        assert_eq!(
            ColumnKind::from_information_schema("uuid", None),
            ColumnKind::Text
        );
    }
}
