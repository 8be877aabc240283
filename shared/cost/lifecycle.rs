//! What objects cost to keep under the bucket's lifecycle: the days an object spends in each
//! storage class, the per-object minimums and overheads of Standard-IA and the archive classes,
//! and the GB-months they add up to.

use super::bill::GB;

/// Standard-IA bills every object as at least 128 KB.
pub(super) const IA_MINIMUM_OBJECT: f64 = 128.0 * 1024.0;
/// Glacier and Deep Archive add 32 KB at their own rate and 8 KB at Standard's per object.
const ARCHIVE_INDEX: f64 = 32.0 * 1024.0;
const ARCHIVE_NAME: f64 = 8.0 * 1024.0;

/// Days a daily object spends in Standard, Standard-IA, Glacier, Deep Archive (lifecycle:
/// IA at 30, Glacier at 90, Deep Archive at 365, expired at 2557).
pub(super) const DAILY_DAYS: [f64; 4] = [30.0, 60.0, 275.0, 2192.0];
/// Incrementals: Standard 30 days, Standard-IA until day 90.
pub(super) const INCREMENTAL_DAYS: [f64; 4] = [30.0, 60.0, 0.0, 0.0];

/// Stored GB-months per class for objects written `per_day`, of `bytes` in `objects` objects.
pub(super) fn stored(days: [f64; 4], bytes_per_day: f64, objects_per_day: f64) -> [f64; 4] {
    let mut gb = [0.0; 4];
    let mean = if objects_per_day > 0.0 {
        bytes_per_day / objects_per_day
    } else {
        0.0
    };
    for class in 0..4 {
        let objects = objects_per_day * days[class];
        let mut bytes = bytes_per_day * days[class];
        if class == 1 {
            bytes += objects * (IA_MINIMUM_OBJECT - mean).max(0.0);
        }
        if class >= 2 {
            bytes += objects * ARCHIVE_INDEX;
            gb[0] += objects * ARCHIVE_NAME / GB;
        }
        gb[class] += bytes / GB;
    }
    gb
}

pub(super) fn add(a: [f64; 4], b: [f64; 4]) -> [f64; 4] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
}
