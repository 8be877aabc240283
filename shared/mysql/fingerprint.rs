//! A table's content fingerprint: an order-independent hash of its rows.
//!
//! Each row's values are encoded canonically and hashed with SHA-256; the first 128 bits of
//! every row hash are added up (wrapping). The sum does not depend on the order rows are read
//! in, so a restore can recompute it with a plain scan, in parallel chunks if it likes, and a
//! table without a primary key gets a fingerprint too. A missing, extra, duplicated or changed
//! row changes the sum.

use mysql_async::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    sum: u128,
    rows: u64,
}

impl Fingerprint {
    /// Adds a row; returns 64 bits of its hash (bytes 16..24 of its SHA-256, little-endian),
    /// which key states keep per row. The low 32 bits are what format-1 key states kept.
    pub fn add_row(&mut self, values: &[Value], scratch: &mut Vec<u8>) -> u64 {
        scratch.clear();
        for value in values {
            encode(scratch, value);
        }
        let digest = Sha256::digest(&scratch[..]);
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
        self.rows += 1;
        let mut row_hash = [0u8; 8];
        row_hash.copy_from_slice(&digest[16..24]);
        u64::from_le_bytes(row_hash)
    }

    pub fn merge(&mut self, other: Fingerprint) {
        self.sum = self.sum.wrapping_add(other.sum);
        self.rows += other.rows;
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn to_hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

fn encode(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::NULL => out.push(0),
        Value::Bytes(bytes) => {
            out.push(1);
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        Value::Int(i) => {
            out.push(2);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::UInt(u) => {
            out.push(3);
            out.extend_from_slice(&u.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(4);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Double(d) => {
            out.push(5);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Value::Date(y, mo, d, h, mi, s, us) => {
            out.push(6);
            out.extend_from_slice(&y.to_le_bytes());
            out.extend_from_slice(&[*mo, *d, *h, *mi, *s]);
            out.extend_from_slice(&us.to_le_bytes());
        }
        Value::Time(neg, days, h, mi, s, us) => {
            out.push(7);
            out.push(u8::from(*neg));
            out.extend_from_slice(&days.to_le_bytes());
            out.extend_from_slice(&[*h, *mi, *s]);
            out.extend_from_slice(&us.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(rows: &[Vec<Value>]) -> Fingerprint {
        let mut fp = Fingerprint::default();
        let mut scratch = Vec::new();
        for row in rows {
            fp.add_row(row, &mut scratch);
        }
        fp
    }

    #[test]
    fn order_does_not_matter_but_content_does() {
        let a = vec![Value::Int(1), Value::Bytes(b"x".to_vec())];
        let b = vec![Value::Int(2), Value::NULL];
        assert_eq!(of(&[a.clone(), b.clone()]), of(&[b.clone(), a.clone()]));
        assert_ne!(of(std::slice::from_ref(&a)), of(&[a.clone(), a.clone()]));
        assert_ne!(
            of(&[vec![Value::NULL]]),
            of(&[vec![Value::Bytes(b"NULL".to_vec())]])
        );
        assert_ne!(of(&[vec![Value::NULL]]), of(&[vec![Value::Bytes(vec![])]]));
    }
}
