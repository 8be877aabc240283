//! What each binlog event means for a transaction, read the same way by the archiver (to cut
//! segments only between transactions), by replay and by `binlog find`.

use mysql_common::binlog::consts::{BinlogChecksumAlg, BinlogVersion, EventFlags, EventType};
use mysql_common::binlog::events::{Event, QueryEvent, RotateEvent};

use super::position::Position;
use crate::error::{Error, Result};

/// MariaDB's own event types, which mysql_common does not parse.
pub(crate) const MARIADB_ANNOTATE_ROWS: u8 = 0xa0;
pub(crate) const MARIADB_GTID: u8 = 0xa2;
pub(crate) const MARIADB_START_ENCRYPTION: u8 = 0xa4;
/// MariaDB's compressed query and rows events (`log_bin_compress=ON`): 0xa5 to 0xab.
const MARIADB_COMPRESSED: std::ops::RangeInclusive<u8> = 0xa5..=0xab;
const MARIADB_GTID_STANDALONE: u8 = 0x01;

/// One event's part in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// A GTID event: a transaction starts. `standalone`: one statement follows, no COMMIT.
    Start {
        gtid: Option<String>,
        standalone: bool,
    },
    /// `BEGIN`.
    Begin,
    /// XID, `COMMIT` or `ROLLBACK`: the transaction ends with this event.
    Commit,
    /// Any other statement: DDL, or (inside BEGIN) a statement such as SAVEPOINT.
    Statement,
    /// Table maps and row changes.
    Rows,
    /// Other events that belong to a transaction (annotations, user variables).
    Inside,
    /// Log bookkeeping outside any transaction (GTID lists, checkpoints, heartbeats).
    Outside,
    Rotate,
    FormatDescription,
}

/// The event's role, or a clear refusal for what this tool cannot replay faithfully.
pub(crate) fn role(event: &Event) -> Result<Role> {
    let kind = event.header().event_type_raw();
    let refuse = |what: &str, fix: &str| Error::BinlogUnsupported {
        detail: format!("{what} (event type {kind:#04x}); {fix}"),
    };
    Ok(match kind {
        k if k == EventType::GTID_EVENT as u8
            || k == EventType::ANONYMOUS_GTID_EVENT as u8
            || k == EventType::GTID_TAGGED_LOG_EVENT as u8 =>
        {
            let gtid = (k != EventType::ANONYMOUS_GTID_EVENT as u8)
                .then(|| mysql_gtid(event))
                .flatten();
            Role::Start {
                gtid,
                standalone: false,
            }
        }
        MARIADB_GTID => {
            let data = event.data();
            if data.len() < 13 {
                return Err(refuse(
                    "a MariaDB GTID event cut short",
                    "the segment is damaged",
                ));
            }
            let sequence = u64::from_le_bytes(data[0..8].try_into().unwrap_or_default());
            let domain = u32::from_le_bytes(data[8..12].try_into().unwrap_or_default());
            Role::Start {
                gtid: Some(format!(
                    "{domain}-{}-{sequence}",
                    event.header().server_id()
                )),
                standalone: data[12] & MARIADB_GTID_STANDALONE != 0,
            }
        }
        k if k == EventType::QUERY_EVENT as u8 => {
            let query = event.read_event::<QueryEvent>().map_err(|e| {
                refuse(
                    &format!("an unreadable query event: {e}"),
                    "the segment is damaged",
                )
            })?;
            let text = query.query();
            let word = text.trim().to_ascii_uppercase();
            match word.as_str() {
                "BEGIN" => Role::Begin,
                "COMMIT" | "ROLLBACK" => Role::Commit,
                _ if word.starts_with("XA ") => {
                    return Err(refuse(
                        "an XA transaction",
                        "XA transactions cannot be replayed by this tool",
                    ))
                }
                _ => Role::Statement,
            }
        }
        k if k == EventType::XID_EVENT as u8 => Role::Commit,
        k if k == EventType::TABLE_MAP_EVENT as u8
            || k == EventType::WRITE_ROWS_EVENT_V1 as u8
            || k == EventType::UPDATE_ROWS_EVENT_V1 as u8
            || k == EventType::DELETE_ROWS_EVENT_V1 as u8
            || k == EventType::WRITE_ROWS_EVENT as u8
            || k == EventType::UPDATE_ROWS_EVENT as u8
            || k == EventType::DELETE_ROWS_EVENT as u8 =>
        {
            Role::Rows
        }
        k if k == EventType::PARTIAL_UPDATE_ROWS_EVENT as u8 => {
            return Err(refuse(
                "a partial JSON update",
                "set binlog_row_value_options='' on the server",
            ))
        }
        k if k == EventType::TRANSACTION_PAYLOAD_EVENT as u8 => {
            return Err(refuse(
                "a compressed transaction",
                "set binlog_transaction_compression=OFF on the server",
            ))
        }
        k if k == EventType::XA_PREPARE_LOG_EVENT as u8 => {
            return Err(refuse(
                "an XA transaction",
                "XA transactions cannot be replayed by this tool",
            ))
        }
        MARIADB_START_ENCRYPTION => {
            return Err(refuse(
                "an encrypted binlog",
                "set encrypt_binlog=OFF on the server (S3 and KMS encrypt the archive)",
            ))
        }
        k if MARIADB_COMPRESSED.contains(&k) => {
            return Err(refuse(
                "a compressed event",
                "set log_bin_compress=OFF on the server",
            ))
        }
        k if k == EventType::ROTATE_EVENT as u8 => Role::Rotate,
        k if k == EventType::FORMAT_DESCRIPTION_EVENT as u8 => Role::FormatDescription,
        k if k == EventType::INTVAR_EVENT as u8
            || k == EventType::RAND_EVENT as u8
            || k == EventType::USER_VAR_EVENT as u8
            || k == EventType::ROWS_QUERY_EVENT as u8
            || k == MARIADB_ANNOTATE_ROWS =>
        {
            Role::Inside
        }
        _ => Role::Outside,
    })
}

fn mysql_gtid(event: &Event) -> Option<String> {
    use mysql_common::binlog::events::EventData;
    match event.read_data().ok()?? {
        EventData::GtidEvent(gtid) => {
            let sid = gtid.sid();
            let hex = hex::encode(sid);
            Some(format!(
                "{}-{}-{}-{}-{}:{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32],
                gtid.gno()
            ))
        }
        _ => None,
    }
}

/// Where a transaction stands after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    /// Outside any transaction, before and after.
    Between,
    /// The event opened a transaction (and may also have closed it: see `ended`).
    Started { ended: bool },
    /// Inside an open transaction.
    Within,
    /// The event closed the open transaction.
    Ended,
}

/// Follows transaction boundaries through a stream of roles.
#[derive(Debug, Default)]
pub(crate) struct Transactions {
    open: bool,
    begun: bool,
}

impl Transactions {
    pub(crate) fn open(&self) -> bool {
        self.open
    }

    pub(crate) fn step(&mut self, role: &Role) -> Edge {
        match role {
            Role::Start { .. } => {
                // A start while one is open means the last one had no end event (a
                // non-transactional engine's statement): it ended there.
                self.open = true;
                self.begun = false;
                Edge::Started { ended: false }
            }
            Role::Begin => {
                self.begun = true;
                if self.open {
                    Edge::Within
                } else {
                    self.open = true;
                    Edge::Started { ended: false }
                }
            }
            Role::Commit => {
                let was_open = self.open;
                self.open = false;
                self.begun = false;
                if was_open {
                    Edge::Ended
                } else {
                    Edge::Started { ended: true }
                }
            }
            Role::Statement => match (self.open, self.begun) {
                (true, true) => Edge::Within,
                (true, false) => {
                    self.open = false;
                    Edge::Ended
                }
                (false, _) => Edge::Started { ended: true },
            },
            Role::Rows | Role::Inside => {
                if self.open {
                    Edge::Within
                } else {
                    self.open = true;
                    Edge::Started { ended: false }
                }
            }
            Role::Outside | Role::Rotate | Role::FormatDescription => {
                if self.open {
                    Edge::Within
                } else {
                    Edge::Between
                }
            }
        }
    }
}

/// An event's bytes as the server wrote them, checked against the checksum the server sent
/// (mysql_common never checks it, and rebuilding the bytes would make a fresh, valid one).
pub(crate) fn verified_bytes(event: &Event) -> Result<Vec<u8>> {
    let header = event.header();
    let mut bytes = Vec::with_capacity(header.event_size() as usize);
    event
        .write(BinlogVersion::Version4, &mut bytes)
        .map_err(|e| Error::BinlogUnsupported {
            detail: format!("an event could not be re-encoded: {e}"),
        })?;
    let checksummed = matches!(
        event.footer().get_checksum_alg(),
        Ok(Some(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32))
    );
    if checksummed {
        let expected = event.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32);
        if event.checksum() != Some(expected.to_le_bytes()) {
            return Err(Error::BinlogUnsupported {
                detail: format!(
                    "event at {} (type {:#04x}) fails its CRC32: the stream is damaged",
                    header.log_pos(),
                    header.event_type_raw()
                ),
            });
        }
    }
    if bytes.len() != header.event_size() as usize {
        return Err(Error::BinlogUnsupported {
            detail: format!(
                "event at {} re-encodes to {} bytes, the server sent {}",
                header.log_pos(),
                bytes.len(),
                header.event_size()
            ),
        });
    }
    Ok(bytes)
}

/// Where an event starts and ends in `file` (its header names only the end).
pub(crate) fn span(event: &Event, file: &str) -> (Position, Position) {
    let header = event.header();
    let end = u64::from(header.log_pos());
    (
        Position::new(file, end.saturating_sub(u64::from(header.event_size()))),
        Position::new(file, end),
    )
}

pub(crate) fn is_artificial(event: &Event) -> bool {
    let header = event.header();
    header.flags().contains(EventFlags::LOG_EVENT_ARTIFICIAL_F) || header.log_pos() == 0
}

/// The file a ROTATE event names and the offset it names in it.
pub(crate) fn rotation(event: &Event) -> Option<(String, u64)> {
    let rotate = event.read_event::<RotateEvent>().ok()?;
    Some((rotate.name().into_owned(), rotate.position()))
}

/// MariaDB's binlog types of COMPRESSED columns (`column_compression`), unknown to
/// mysql_common; their row values are laid out as a VARCHAR's and a BLOB's.
const BLOB_COMPRESSED: u8 = 140;
const VARCHAR_COMPRESSED: u8 = 141;
const TABLE_MAP: u8 = 19;

/// Makes a table map event readable by mysql_common: each COMPRESSED column's type becomes
/// VARCHAR or BLOB in the frame. Returns the table id and which columns were compressed
/// (their values are undone by `decompressed`), or None for any other event or one without
/// a compressed column.
pub(crate) fn uncompressed_table_map(frame: &mut [u8]) -> Option<(u64, Vec<bool>)> {
    if frame.get(4) != Some(&TABLE_MAP) {
        return None;
    }
    let mut id = [0u8; 8];
    id[..6].copy_from_slice(frame.get(HEADER_LEN..HEADER_LEN + 6)?);
    // After the table id and flags: the database's and the table's names, each with its
    // length before it and a NUL after it.
    let mut at = HEADER_LEN + 8;
    at += usize::from(*frame.get(at)?) + 2;
    at += usize::from(*frame.get(at)?) + 2;
    let (count, width) = match *frame.get(at)? {
        n @ 0..=250 => (usize::from(n), 1),
        252 => (
            usize::from(u16::from_le_bytes([
                *frame.get(at + 1)?,
                *frame.get(at + 2)?,
            ])),
            3,
        ),
        253 => (
            usize::from(*frame.get(at + 1)?)
                | usize::from(*frame.get(at + 2)?) << 8
                | usize::from(*frame.get(at + 3)?) << 16,
            4,
        ),
        _ => return None,
    };
    at += width;
    let types = frame.get_mut(at..at + count)?;
    let compressed: Vec<bool> = types
        .iter()
        .map(|&t| t == VARCHAR_COMPRESSED || t == BLOB_COMPRESSED)
        .collect();
    if !compressed.contains(&true) {
        return None;
    }
    for t in types.iter_mut() {
        if *t == VARCHAR_COMPRESSED {
            *t = mysql_common::constants::ColumnType::MYSQL_TYPE_VARCHAR as u8;
        } else if *t == BLOB_COMPRESSED {
            *t = mysql_common::constants::ColumnType::MYSQL_TYPE_BLOB as u8;
        }
    }
    Some((u64::from_le_bytes(id), compressed))
}

/// A COMPRESSED column's stored value as the server reads it back: a header byte (high
/// nibble 0: the value follows as it is; 8: zlib, the low three bits the length of the
/// big-endian original length after it, bit 3 set for a raw deflate stream), then the data.
pub(crate) fn decompressed(stored: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use std::io::Read;
    let Some((&header, rest)) = stored.split_first() else {
        return Ok(Vec::new());
    };
    match header >> 4 {
        0 => Ok(rest.to_vec()),
        8 => {
            let width = usize::from(header & 0x07);
            let (length, data) = (rest.get(..width), rest.get(width..));
            let (Some(length), Some(data)) = (length, data) else {
                return Err("a compressed value cut short".into());
            };
            let length = length
                .iter()
                .fold(0usize, |n, &b| (n << 8) | usize::from(b));
            let mut out = Vec::with_capacity(length.min(1 << 24));
            let read = if header & 0x08 != 0 {
                flate2::read::DeflateDecoder::new(data).read_to_end(&mut out)
            } else {
                flate2::read::ZlibDecoder::new(data).read_to_end(&mut out)
            };
            read.map_err(|e| format!("a compressed value cannot be inflated: {e}"))?;
            if out.len() != length {
                return Err(format!(
                    "a compressed value inflates to {} bytes, its header says {length}",
                    out.len()
                ));
            }
            Ok(out)
        }
        method => Err(format!("a value compressed by unknown method {method}")),
    }
}

/// The segment file format: binlog's own magic, then whole events.
pub(crate) const MAGIC: &[u8; 4] = b"\xfebin";
const HEADER_LEN: usize = 19;

/// Splits a segment's bytes into events without trusting any length: mysql_common's reader
/// panics on an event cut short, so every event is framed and bounds-checked here first.
pub(crate) struct Frames<R> {
    input: R,
    offset: u64,
    /// The format description says events end in a CRC32: none can be shorter than its
    /// header and checksum (the event reader would slice before its start).
    checksummed: bool,
}

impl<R: std::io::Read> Frames<R> {
    pub(crate) fn new(mut input: R, what: &str) -> Result<Frames<R>> {
        let mut magic = [0u8; 4];
        input
            .read_exact(&mut magic)
            .map_err(|e| damaged(what, 0, &format!("no binlog header: {e}")))?;
        if &magic != MAGIC {
            return Err(damaged(what, 0, "it does not start with the binlog magic"));
        }
        Ok(Frames {
            input,
            offset: 4,
            checksummed: false,
        })
    }

    /// The next event's bytes, or None at a clean end.
    pub(crate) fn next(&mut self, what: &str) -> Result<Option<Vec<u8>>> {
        let mut header = [0u8; HEADER_LEN];
        let mut filled = 0;
        while filled < HEADER_LEN {
            let n = self
                .input
                .read(&mut header[filled..])
                .map_err(|e| damaged(what, self.offset, &e.to_string()))?;
            if n == 0 {
                return if filled == 0 {
                    Ok(None)
                } else {
                    Err(damaged(what, self.offset, "an event header is cut short"))
                };
            }
            filled += n;
        }
        let size = u32::from_le_bytes([header[9], header[10], header[11], header[12]]) as usize;
        if !(HEADER_LEN..=1 << 30).contains(&size) {
            return Err(damaged(
                what,
                self.offset,
                &format!("an event claims {size} bytes"),
            ));
        }
        let mut event = vec![0u8; size];
        event[..HEADER_LEN].copy_from_slice(&header);
        self.input
            .read_exact(&mut event[HEADER_LEN..])
            .map_err(|_| damaged(what, self.offset, "an event is cut short"))?;
        const FORMAT_DESCRIPTION: u8 = 15;
        const CRC32: u8 = 1;
        if header[4] == FORMAT_DESCRIPTION {
            // Its checksum algorithm is the byte before its own 4-byte checksum.
            self.checksummed = size >= HEADER_LEN + 5 && event[size - 5] == CRC32;
        } else if self.checksummed && size < HEADER_LEN + 4 {
            return Err(damaged(
                what,
                self.offset,
                &format!("an event of {size} bytes has no room for its checksum"),
            ));
        }
        self.offset += size as u64;
        Ok(Some(event))
    }
}

fn damaged(what: &str, offset: u64, detail: &str) -> Error {
    Error::CorruptFile {
        file: what.to_string(),
        detail: format!("at byte {offset}: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_end_at_commit_or_after_a_standalone_statement() {
        let mut t = Transactions::default();
        let start = Role::Start {
            gtid: Some("0-1-1".into()),
            standalone: false,
        };
        assert_eq!(t.step(&Role::Outside), Edge::Between);
        assert_eq!(t.step(&start), Edge::Started { ended: false });
        assert_eq!(t.step(&Role::Begin), Edge::Within);
        assert_eq!(t.step(&Role::Rows), Edge::Within);
        assert_eq!(
            t.step(&Role::Statement),
            Edge::Within,
            "SAVEPOINT inside BEGIN"
        );
        assert_eq!(t.step(&Role::Commit), Edge::Ended);
        // DDL: a GTID and one statement.
        assert_eq!(t.step(&start), Edge::Started { ended: false });
        assert_eq!(t.step(&Role::Statement), Edge::Ended);
        assert!(!t.open());
        // A statement with no GTID before it is a transaction of its own.
        assert_eq!(t.step(&Role::Statement), Edge::Started { ended: true });
    }

    #[test]
    fn compressed_values_inflate_to_what_was_stored() {
        use std::io::Write;
        assert_eq!(decompressed(b"\x00plain").unwrap(), b"plain");
        assert_eq!(decompressed(b"").unwrap(), b"");
        let text = b"compressed compressed compressed".to_vec();
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), Default::default());
        raw.write_all(&text).unwrap();
        let mut stored = vec![0x80 | 0x08 | 1, text.len() as u8];
        stored.extend(raw.finish().unwrap());
        assert_eq!(decompressed(&stored).unwrap(), text);
        stored[1] += 1;
        assert!(decompressed(&stored).unwrap_err().contains("header says"));
        assert!(decompressed(b"\x90x").is_err());
    }

    #[test]
    fn frames_refuse_a_cut_event_instead_of_panicking() {
        let mut bytes = MAGIC.to_vec();
        let mut header = [0u8; HEADER_LEN];
        header[9..13].copy_from_slice(&40u32.to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&[0u8; 10]);
        let mut frames = Frames::new(&bytes[..], "segment").unwrap();
        let error = frames.next("segment").unwrap_err().to_string();
        assert!(error.contains("cut short"), "{error}");
        assert!(Frames::new(&b"nope"[..], "segment").is_err());
    }
}
