//! Where an event sits in a server's binary log, and the GTIDs that name transactions.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A byte offset in a numbered binlog file (`mysql-bin.000012:4711`). Files sort by their
/// number, so positions of one server compare in log order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    pub file: String,
    pub pos: u64,
}

impl Position {
    pub fn new(file: impl Into<String>, pos: u64) -> Position {
        Position {
            file: file.into(),
            pos,
        }
    }

    /// `FILE:POS`, as `--before-position` takes it.
    pub fn parse(text: &str) -> Result<Position> {
        let bad = || Error::InvalidValue {
            what: "binlog position",
            value: text.to_string(),
            expected: "FILE:POS, e.g. mysql-bin.000012:4711".into(),
        };
        let (file, pos) = text.trim().rsplit_once(':').ok_or_else(bad)?;
        let pos = pos.parse().map_err(|_| bad())?;
        if file.is_empty() || file_number(file).is_none() {
            return Err(bad());
        }
        Ok(Position::new(file, pos))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// The sequence number after a binlog file's last dot (`mysql-bin.000012` → 12).
pub fn file_number(file: &str) -> Option<u64> {
    file.rsplit_once('.')?.1.parse().ok()
}

impl Ord for Position {
    fn cmp(&self, other: &Self) -> Ordering {
        let key = |p: &Position| (file_number(&p.file).unwrap_or(0), p.file.clone(), p.pos);
        key(self).cmp(&key(other))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One transaction's global id: MariaDB's `domain-server-sequence` or MySQL's `uuid:number`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Gtid {
    MariaDb {
        domain: u32,
        server: u32,
        sequence: u64,
    },
    MySql {
        uuid: String,
        number: u64,
    },
}

impl Gtid {
    pub fn parse(text: &str) -> Result<Gtid> {
        let text = text.trim();
        let bad = || Error::InvalidValue {
            what: "GTID",
            value: text.to_string(),
            expected: "MariaDB's DOMAIN-SERVER-SEQUENCE (0-1-42) or MySQL's UUID:NUMBER".into(),
        };
        if let Some((uuid, number)) = text.rsplit_once(':') {
            let uuid = uuid.to_ascii_lowercase();
            let valid_uuid = uuid.len() == 36
                && uuid.chars().enumerate().all(|(i, c)| {
                    matches!(i, 8 | 13 | 18 | 23) == (c == '-')
                        && (c == '-' || c.is_ascii_hexdigit())
                });
            let number = number.parse().map_err(|_| bad())?;
            return if valid_uuid {
                Ok(Gtid::MySql { uuid, number })
            } else {
                Err(bad())
            };
        }
        let parts: Vec<&str> = text.split('-').collect();
        match parts.as_slice() {
            [domain, server, sequence] => Ok(Gtid::MariaDb {
                domain: domain.parse().map_err(|_| bad())?,
                server: server.parse().map_err(|_| bad())?,
                sequence: sequence.parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gtid::MariaDb {
                domain,
                server,
                sequence,
            } => write!(f, "{domain}-{server}-{sequence}"),
            Gtid::MySql { uuid, number } => write!(f, "{uuid}:{number}"),
        }
    }
}

/// A MySQL `gtid_executed` set (`uuid:1-5:7,uuid2:1-3`): which transactions a snapshot holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidSet {
    ranges: Vec<(String, u64, u64)>,
}

impl GtidSet {
    pub fn parse(text: &str) -> Result<GtidSet> {
        let bad = |part: &str| Error::InvalidValue {
            what: "GTID set",
            value: part.to_string(),
            expected: "UUID:N[-M][:N[-M]…], entries separated by commas".into(),
        };
        let mut ranges = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.split(':');
            let uuid = parts.next().unwrap_or_default().to_ascii_lowercase();
            for interval in parts {
                let (low, high) = match interval.split_once('-') {
                    Some((low, high)) => (low, high),
                    None => (interval, interval),
                };
                let low: u64 = low.parse().map_err(|_| bad(entry))?;
                let high: u64 = high.parse().map_err(|_| bad(entry))?;
                ranges.push((uuid.clone(), low, high));
            }
        }
        Ok(GtidSet { ranges })
    }

    pub fn contains(&self, gtid: &Gtid) -> bool {
        match gtid {
            Gtid::MySql { uuid, number } => self
                .ranges
                .iter()
                .any(|(u, low, high)| u == uuid && (low..=high).contains(&number)),
            Gtid::MariaDb { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_file_number_then_offset() {
        let a = Position::new("mysql-bin.000009", 900);
        let b = Position::new("mysql-bin.000010", 4);
        let c = Position::new("mysql-bin.000010", 5);
        assert!(a < b && b < c);
        assert_eq!(Position::parse("mysql-bin.000010:5").unwrap(), c);
        let error = Position::parse("mysql-bin.000010").unwrap_err().to_string();
        assert!(error.contains("FILE:POS"), "{error}");
        assert!(Position::parse("nofile:5").is_err());
    }

    #[test]
    fn gtids_of_both_servers_parse_and_print_back() {
        for text in ["0-1-42", "3e11fa47-71ca-11e1-9e33-c80aa9429562:23"] {
            assert_eq!(Gtid::parse(text).unwrap().to_string(), text);
        }
        let error = Gtid::parse("0-1").unwrap_err().to_string();
        assert!(error.contains("DOMAIN-SERVER-SEQUENCE"), "{error}");
        assert!(Gtid::parse("not-a-uuid:3").is_err());
    }

    #[test]
    fn a_gtid_set_holds_exactly_its_intervals() {
        let set = GtidSet::parse(
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,\n 4e11fa47-71ca-11e1-9e33-c80aa9429562:2",
        )
        .unwrap();
        let gtid = |uuid: &str, number| Gtid::MySql {
            uuid: uuid.into(),
            number,
        };
        let first = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        assert!(set.contains(&gtid(first, 1)) && set.contains(&gtid(first, 5)));
        assert!(!set.contains(&gtid(first, 6)) && set.contains(&gtid(first, 7)));
        assert!(set.contains(&gtid("4e11fa47-71ca-11e1-9e33-c80aa9429562", 2)));
        assert!(!set.contains(&gtid("4e11fa47-71ca-11e1-9e33-c80aa9429562", 1)));
    }
}
