//! Point-in-time recovery to the second: a continuous archive of the server's binlog in the
//! store, and its replay on top of a restored full backup.
//!
//! The archive is a chain of sealed segments, each starting exactly where the one before it
//! ended, the first at a full backup's snapshot position. A stretch the server purged before it
//! was archived is a gap: reported, never stitched over; a newer full backup starts a new chain.

pub mod archive;
pub(crate) mod events;
pub mod position;
pub mod segment;
pub mod server;

pub use archive::{run_archive, run_archive_alerting, ArchiveOptions, ArchiveReport};
pub use position::{Gtid, GtidSet, Position};
mod batch;
pub mod plan;
pub mod replay;
pub(crate) mod sql;
pub(crate) mod statement;

pub use plan::{plan, ReplayPlan, Stop};
pub use replay::{create_deferred, replay, Checkpoint, Deferred, Journal, LeftOut, ReplayReport};
pub mod find;
