//! A table's key state: every primary key with a 64-bit hash of its row, in key order.
//!
//! Format 3 (`TOCKEYS3`) keeps 64 bits of each row's XXH3-128 hash; format 2 (`TOCKEYS2`) 64
//! bits of its SHA-256 (see `mysql::fingerprint`). A diff hashes rows the way the state it
//! reads did and writes the same format, so a chain never mixes algorithms; the next full
//! starts format 3. Either keeps 64 bits per row: with the strategy's sample workload (about
//! 20,000 row changes an hour) the chance that some changed row keeps its hash, and so is
//! missed, is about 1 in 10^11 a year (see the README). Format 1 (`TOCKEYS1`, 32 bits, written
//! before) is still read: its hashes are the low 32 bits of format 2's, so the first diff after
//! an upgrade compares those 32 bits and writes format 2.
//!
//! Each backup link stores one per table in scope; the next incremental streams it beside the
//! table (both in key order) to find inserted, changed and deleted rows without holding either
//! in memory. Keys are front-coded (sequential integer keys cost 2 to 3 bytes), so a
//! million-row table's state is a few MB.

use std::io::{self, Read, Write};

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};
use crate::mysql::fingerprint::RowHash;

const MAGIC_XXH3: &[u8; 8] = b"TOCKEYS3";
const MAGIC_SHA256: &[u8; 8] = b"TOCKEYS2";
const MAGIC_32_BIT: &[u8; 8] = b"TOCKEYS1";

fn magic(row_hash: RowHash) -> &'static [u8; 8] {
    match row_hash {
        RowHash::Xxh3 => MAGIC_XXH3,
        RowHash::Sha256 => MAGIC_SHA256,
    }
}

/// Encodes into the in-memory bytes of a state file; callers stream them out in chunks.
pub struct StateEncoder {
    previous: Vec<u8>,
    header_written: bool,
    row_hash: RowHash,
    pub rows: u64,
}

impl StateEncoder {
    pub fn new(row_hash: RowHash) -> Self {
        StateEncoder {
            previous: Vec::new(),
            header_written: false,
            row_hash,
            rows: 0,
        }
    }

    /// Appends one record; keys must arrive in strictly ascending order.
    pub fn push(&mut self, out: &mut Vec<u8>, key: &[u8], hash: u64) -> Result<()> {
        if !self.header_written {
            out.extend_from_slice(magic(self.row_hash));
            self.header_written = true;
        }
        if self.rows > 0 && key <= self.previous.as_slice() {
            return Err(Error::Task(
                "primary keys did not arrive in ascending order; the key state cannot be built"
                    .into(),
            ));
        }
        let shared = self
            .previous
            .iter()
            .zip(key)
            .take_while(|(a, b)| a == b)
            .count()
            .min(255);
        let suffix = &key[shared..];
        if suffix.len() > 255 {
            return Err(Error::Task(
                "a primary key longer than 255 bytes cannot be tracked".into(),
            ));
        }
        out.push(shared as u8);
        out.push(suffix.len() as u8);
        out.extend_from_slice(suffix);
        out.extend_from_slice(&hash.to_le_bytes());
        self.previous.clear();
        self.previous.extend_from_slice(key);
        self.rows += 1;
        Ok(())
    }

    /// The bytes of an empty state (a table with no rows still has a state).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            out.extend_from_slice(magic(self.row_hash));
            self.header_written = true;
        }
    }
}

/// Reads a gzip'd state file record by record.
pub struct StateReader<R: Read> {
    input: MultiGzDecoder<R>,
    key: Vec<u8>,
    name: String,
    hash_bytes: usize,
    row_hash: RowHash,
}

impl<R: Read> StateReader<R> {
    pub fn new(input: R, name: &str) -> Result<Self> {
        let mut input = MultiGzDecoder::new(input);
        let mut magic = [0u8; 8];
        input.read_exact(&mut magic).map_err(|e| corrupt(name, e))?;
        let (hash_bytes, row_hash) = match &magic {
            MAGIC_XXH3 => (8, RowHash::Xxh3),
            MAGIC_SHA256 => (8, RowHash::Sha256),
            MAGIC_32_BIT => (4, RowHash::Sha256),
            _ if magic.starts_with(b"TOCKEYS") => {
                return Err(Error::CorruptFile {
                    file: name.to_string(),
                    detail: format!(
                        "key state format {:?} is newer than this tool reads (formats 1 to 3); upgrade toc-backup",
                        String::from_utf8_lossy(&magic[7..])
                    ),
                })
            }
            _ => {
                return Err(Error::CorruptFile {
                    file: name.to_string(),
                    detail: "not a key state file".into(),
                })
            }
        };
        Ok(StateReader {
            input,
            key: Vec::new(),
            name: name.to_string(),
            hash_bytes,
            row_hash,
        })
    }

    /// How this state's rows were hashed; a diff against it must hash the same way.
    pub fn row_hash(&self) -> RowHash {
        self.row_hash
    }

    /// Bits of row hash this state keeps: 64, or 32 for a format-1 state.
    pub fn hash_bits(&self) -> u32 {
        self.hash_bytes as u32 * 8
    }

    /// The next (key, hash), or None at the end. A format-1 hash fills the low 32 bits.
    pub fn next_record(&mut self) -> Result<Option<(&[u8], u64)>> {
        let mut lengths = [0u8; 2];
        match self.input.read(&mut lengths[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(corrupt(&self.name, e)),
        }
        self.input
            .read_exact(&mut lengths[1..])
            .map_err(|e| corrupt(&self.name, e))?;
        let (shared, suffix) = (usize::from(lengths[0]), usize::from(lengths[1]));
        if shared > self.key.len() {
            return Err(Error::CorruptFile {
                file: self.name.clone(),
                detail: "a key shares more bytes than its predecessor has".into(),
            });
        }
        self.key.truncate(shared);
        let start = self.key.len();
        self.key.resize(start + suffix, 0);
        self.input
            .read_exact(&mut self.key[start..])
            .map_err(|e| corrupt(&self.name, e))?;
        let mut hash = [0u8; 8];
        self.input
            .read_exact(&mut hash[..self.hash_bytes])
            .map_err(|e| corrupt(&self.name, e))?;
        Ok(Some((&self.key, u64::from_le_bytes(hash))))
    }

    /// Hands back the underlying reader (to finish hashing the compressed stream).
    pub fn into_inner(self) -> R {
        self.input.into_inner()
    }
}

fn corrupt(name: &str, e: io::Error) -> Error {
    Error::CorruptFile {
        file: name.to_string(),
        detail: format!("key state unreadable: {e}"),
    }
}

/// Writes a state to a plain writer (tests and tools).
pub fn write_all<W: Write>(out: W, records: &[(Vec<u8>, u64)]) -> Result<W> {
    let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    let mut state = StateEncoder::new(RowHash::CURRENT);
    let mut buffer = Vec::new();
    for (key, hash) in records {
        state.push(&mut buffer, key, *hash)?;
    }
    state.finish(&mut buffer);
    encoder
        .write_all(&buffer)
        .and_then(|_| encoder.finish())
        .map_err(|e| Error::Task(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_stay_small() {
        let records: Vec<(Vec<u8>, u64)> = (0u64..100_000)
            .map(|i| {
                (
                    (i * 3).to_be_bytes().to_vec(),
                    i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                )
            })
            .collect();
        let bytes = write_all(Vec::new(), &records).unwrap();
        assert!(bytes.len() < 100_000 * 11, "{} bytes", bytes.len());
        let mut reader = StateReader::new(&bytes[..], "s").unwrap();
        for (key, hash) in &records {
            let (k, h) = reader.next_record().unwrap().unwrap();
            assert_eq!((k, h), (key.as_slice(), *hash));
        }
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn format_1_states_are_read_as_the_low_32_bits() {
        // A format-1 state as the previous version wrote it: magic, then per record the shared
        // prefix length, suffix length, suffix and a 4-byte hash.
        let mut raw = b"TOCKEYS1".to_vec();
        raw.extend_from_slice(&[0, 2, 0, 7]);
        raw.extend_from_slice(&0xDEAD_BEEFu32.to_le_bytes());
        raw.extend_from_slice(&[1, 1, 9]);
        raw.extend_from_slice(&0x0102_0304u32.to_le_bytes());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&raw).unwrap();
        let bytes = gz.finish().unwrap();
        let mut reader = StateReader::new(&bytes[..], "old").unwrap();
        assert_eq!(reader.hash_bits(), 32);
        assert_eq!(
            reader.next_record().unwrap().unwrap(),
            (&[0u8, 7][..], 0xDEAD_BEEFu64)
        );
        assert_eq!(
            reader.next_record().unwrap().unwrap(),
            (&[0u8, 9][..], 0x0102_0304u64)
        );
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn a_newer_format_is_refused_by_name() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"TOCKEYS9").unwrap();
        let bytes = gz.finish().unwrap();
        let message = StateReader::new(&bytes[..], "future")
            .err()
            .expect("refused")
            .to_string();
        assert!(
            message.contains("\"9\"") && message.contains("future"),
            "{message}"
        );
    }

    #[test]
    fn each_format_names_the_row_hash_it_was_made_with() {
        for (row_hash, magic) in [(RowHash::Xxh3, b"TOCKEYS3"), (RowHash::Sha256, b"TOCKEYS2")] {
            let mut state = StateEncoder::new(row_hash);
            let mut raw = Vec::new();
            state.push(&mut raw, &[1], 42).unwrap();
            assert_eq!(&raw[..8], magic);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&raw).unwrap();
            let bytes = gz.finish().unwrap();
            let mut reader = StateReader::new(&bytes[..], "s").unwrap();
            assert_eq!((reader.row_hash(), reader.hash_bits()), (row_hash, 64));
            assert_eq!(reader.next_record().unwrap().unwrap(), (&[1u8][..], 42));
        }
    }

    #[test]
    fn keys_out_of_order_are_refused() {
        let mut state = StateEncoder::new(RowHash::CURRENT);
        let mut out = Vec::new();
        state.push(&mut out, &[2], 0).unwrap();
        assert!(state.push(&mut out, &[1], 0).is_err());
        assert!(state.push(&mut out, &[2], 0).is_err());
    }
}
