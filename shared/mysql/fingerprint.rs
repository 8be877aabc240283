//! A table's content fingerprint: an order-independent hash of its rows.
//!
//! Each row's values are encoded canonically and hashed; 128 bits of every row hash are added
//! up (wrapping). The sum does not depend on the order rows are read in, so a restore can
//! recompute it with a plain scan, in parallel chunks if it likes, and a table without a
//! primary key gets a fingerprint too. A missing, extra, duplicated or changed row changes the
//! sum.
//!
//! The row hash guards against accidents (a lost, doubled or altered row), not an adversary:
//! the files' SHA-256 in the manifest covers the bytes. So new backups use XXH3-128, about ten
//! times cheaper per row than SHA-256 (which was 7.5 % of the dump's CPU, see BENCHMARKS.md).
//! Backups made before record no algorithm and keep being checked with SHA-256.

use mysql_async::Value;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use twox_hash::XxHash3_128;

/// How a backup hashed its rows; recorded per table in the manifest and in each key state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowHash {
    /// Backups made before the algorithm was recorded: SHA-256, bytes 0..16 summed, bytes
    /// 16..24 kept per row in key states.
    #[default]
    #[serde(rename = "sha256")]
    Sha256,
    /// XXH3-128: all 128 bits summed, the high 64 kept per row in key states.
    #[serde(rename = "xxh3-128")]
    Xxh3,
}

impl RowHash {
    /// What new full backups use.
    pub const CURRENT: RowHash = RowHash::Xxh3;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    sum: u128,
    rows: u64,
    algorithm: RowHash,
}

impl Fingerprint {
    pub fn new(algorithm: RowHash) -> Self {
        Fingerprint {
            sum: 0,
            rows: 0,
            algorithm,
        }
    }

    pub fn algorithm(&self) -> RowHash {
        self.algorithm
    }

    /// Adds a row; returns the 64 bits of its hash that key states keep per row (for SHA-256,
    /// format-1 key states kept the low 32 of these).
    pub fn add_row(&mut self, values: &[Value], scratch: &mut Vec<u8>) -> u64 {
        scratch.clear();
        for value in values {
            encode(scratch, value);
        }
        self.rows += 1;
        match self.algorithm {
            RowHash::Xxh3 => {
                let hash = XxHash3_128::oneshot(scratch);
                self.sum = self.sum.wrapping_add(hash);
                (hash >> 64) as u64
            }
            RowHash::Sha256 => {
                let digest = Sha256::digest(&scratch[..]);
                let mut first = [0u8; 16];
                first.copy_from_slice(&digest[..16]);
                self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
                let mut row_hash = [0u8; 8];
                row_hash.copy_from_slice(&digest[16..24]);
                u64::from_le_bytes(row_hash)
            }
        }
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
        let mut fp = Fingerprint::new(RowHash::CURRENT);
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

    /// Backups made before the algorithm was recorded must keep verifying: these are the
    /// values the SHA-256 fingerprint has always given.
    #[test]
    fn sha256_fingerprints_are_unchanged_and_differ_from_xxh3() {
        let row = vec![Value::Int(7), Value::Bytes(b"Ada".to_vec()), Value::NULL];
        let mut sha = Fingerprint::new(RowHash::Sha256);
        let mut scratch = Vec::new();
        let sha_row = sha.add_row(&row, &mut scratch);
        let mut digest_input = Vec::new();
        for value in &row {
            encode(&mut digest_input, value);
        }
        let digest = Sha256::digest(&digest_input);
        assert_eq!(
            sha.to_hex(),
            format!(
                "{:032x}",
                u128::from_le_bytes(digest[..16].try_into().unwrap())
            )
        );
        assert_eq!(sha_row.to_le_bytes(), digest[16..24]);
        let mut xxh = Fingerprint::new(RowHash::Xxh3);
        let xxh_row = xxh.add_row(&row, &mut scratch);
        assert_ne!(xxh.to_hex(), sha.to_hex());
        assert_ne!(xxh_row, sha_row);
        assert_eq!(
            serde_json::to_string(&RowHash::Xxh3).unwrap(),
            "\"xxh3-128\""
        );
    }
}
