//! The rows an archived event changed, counted per table for the segment's manifest, and the
//! table maps of tables with COMPRESSED columns read again made readable (the stream's own
//! reader cannot read their rows, and would count them wrong). Apart because it is event
//! decoding, not the stream's bookkeeping.

use std::collections::BTreeMap;

use mysql_common::binlog::events::{Event, EventData, TableMapEvent};

use crate::binlog::events;
use crate::binlog::segment::TableChanges;

/// Table maps of tables with COMPRESSED columns, read from a copy whose column types are made
/// readable (`events::uncompressed_table_map`); other tables are the stream's.
#[derive(Default)]
pub(super) struct ReadableMaps {
    reader: Option<mysql_common::binlog::EventStreamReader>,
    compressed: std::collections::BTreeSet<u64>,
}

impl ReadableMaps {
    pub(super) fn see(&mut self, format_description: Option<&[u8]>, event: &[u8]) {
        const TABLE_MAP: u8 = 19;
        if event.get(4) != Some(&TABLE_MAP) {
            return;
        }
        let mut copy = event.to_vec();
        match events::uncompressed_table_map(&mut copy) {
            Some((id, _)) => {
                let reader = self.reader.get_or_insert_with(|| {
                    let mut reader = mysql_common::binlog::EventStreamReader::new(
                        mysql_common::binlog::consts::BinlogVersion::Version4,
                    );
                    if let Some(fde) = format_description {
                        let _ = reader.read(fde);
                    }
                    reader
                });
                if matches!(reader.read(&copy[..]), Ok(Some(_))) {
                    self.compressed.insert(id);
                }
            }
            None if copy.len() >= 25 => {
                let mut id = [0u8; 8];
                id[..6].copy_from_slice(&copy[19..25]);
                self.compressed.remove(&u64::from_le_bytes(id));
            }
            None => {}
        }
    }

    pub(super) fn get(&self, id: u64) -> Option<&TableMapEvent<'static>> {
        if !self.compressed.contains(&id) {
            return None;
        }
        self.reader.as_ref()?.get_tme(id)
    }
}

/// Adds a rows event's row count to its table's changes.
pub(super) fn count_rows<'t>(
    event: &Event,
    tables: impl Fn(u64) -> Option<&'t TableMapEvent<'static>>,
    changes: &mut BTreeMap<String, TableChanges>,
) {
    let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() else {
        return;
    };
    let Some(table) = tables(rows.table_id()) else {
        return;
    };
    let count = rows.rows(table).count() as u64;
    changes
        .entry(format!("{}.{}", table.database_name(), table.table_name()))
        .or_default()
        .count(&rows, count);
}
