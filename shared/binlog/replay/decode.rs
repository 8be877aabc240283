//! A segment's events read ahead on a thread of their own: unpacked, framed, parsed, and the
//! row images of the source database's rows events decoded, while the replay waits on the
//! server for the statements of the events before. Decoding a row costs the client about as
//! much as applying it costs the server; done one after the other, the two add up.
//! Apart from the loop because nothing here touches the target.

use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{Event, EventData, TableMapEvent};
use mysql_common::binlog::row::BinlogRow;
use mysql_common::binlog::EventStreamReader;
use tokio::sync::mpsc;

use crate::binlog::events::{self, Frames};
use crate::error::{Error, Result};

/// A row change as logged: its before and after images (an insert has no before, a delete no
/// after).
pub(super) type RowImages = Vec<(Option<BinlogRow>, Option<BinlogRow>)>;

/// One event of the segment, read ahead.
pub(super) struct ReadAhead {
    pub(super) event: Event,
    /// A table map's COMPRESSED columns (its table id and which columns).
    pub(super) compressed: Option<(u64, Vec<bool>)>,
    pub(super) rows: RowsRead,
}

/// What a rows event holds, read ahead.
pub(super) enum RowsRead {
    /// Not a rows event, or rows of another database.
    None,
    /// Rows of a table no table map named: the segment is not what was archived.
    Unmapped,
    /// Rows of the source database: the table as the binlog mapped it, and the row images or
    /// why they cannot be read.
    Images(
        Box<TableMapEvent<'static>>,
        std::result::Result<RowImages, String>,
    ),
}

/// Events read ahead at most: enough to keep the server busy, few enough that memory stays
/// small (a rows event is 8 KiB by default).
const AHEAD: usize = 32;

/// Reads the gzip'd segment `compressed` on a blocking thread; its events arrive in order, an
/// error ends them.
pub(super) fn read_ahead(
    compressed: Vec<u8>,
    what: String,
    source_database: String,
) -> mpsc::Receiver<Result<ReadAhead>> {
    let (sender, receiver) = mpsc::channel(AHEAD);
    tokio::task::spawn_blocking(move || {
        let outcome = read_all(&compressed, &what, &source_database, &sender);
        if let Err(e) = outcome {
            // The loop may have stopped reading already: then nobody needs the error.
            let _ = sender.blocking_send(Err(e));
        }
    });
    receiver
}

fn read_all(
    compressed: &[u8],
    what: &str,
    source_database: &str,
    sender: &mpsc::Sender<Result<ReadAhead>>,
) -> Result<()> {
    let unpacked = flate2::read::GzDecoder::new(compressed);
    let mut frames = Frames::new(unpacked, what)?;
    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let corrupt = |detail: String| Error::CorruptFile {
        file: what.to_string(),
        detail,
    };
    while let Some(mut frame) = frames.next(what)? {
        let compressed = events::uncompressed_table_map(&mut frame);
        let event = reader
            .read(&frame[..])
            .map_err(|e| corrupt(e.to_string()))?
            .ok_or_else(|| corrupt("an empty event".into()))?;
        let mut rows = RowsRead::None;
        if let Ok(Some(EventData::RowsEvent(data))) = event.read_data() {
            match reader.get_tme(data.table_id()) {
                None => rows = RowsRead::Unmapped,
                Some(table) if table.database_name() == source_database => {
                    let images = data
                        .rows(table)
                        .collect::<std::io::Result<RowImages>>()
                        .map_err(|e| e.to_string());
                    rows = RowsRead::Images(Box::new(table.clone()), images);
                }
                Some(_) => {}
            }
        }
        let item = ReadAhead {
            event,
            compressed,
            rows,
        };
        if sender.blocking_send(Ok(item)).is_err() {
            // The loop stopped (a stop point, an error): nothing more is wanted.
            return Ok(());
        }
    }
    Ok(())
}
