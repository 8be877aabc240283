//! How long a restore will take, said before it starts: the operator at 3 a.m. decides from it
//! whether to restore the whole database or one table into a scratch copy, and tells the
//! college how long the system stays down.
//!
//! Two kinds of work, each at a rate: the data files of the full backup and its incrementals
//! (their uncompressed bytes, from the manifests), and the binlog row changes a replay applies
//! (counted by the segments' manifests). The data rate is the newest restore test's (it restores
//! the latest backup, checks and verifies it, on the deployment's own server); the replay rate
//! is `scripts/bench-binlog`'s, as nothing on a deployment measures one.

use serde::{Deserialize, Serialize};

use super::point::Point;
use crate::catalog::restore_tests::RestoreTestReport;
use crate::layout::RESTORE_TEST_LATEST_KEY as LATEST_KEY;
use crate::manifest::{Manifest, Stage};
use crate::store::ObjectStore;

const MIB: f64 = 1024.0 * 1024.0;

/// When no restore test has recorded a rate: BENCHMARKS.md's `scripts/bench-memory` table
/// (977 MiB of InnoDB data) restored and verified in 19.98 s (2026-11-28). Its dump holds
/// 287 bytes of SQL a row (measured on the same table at a tenth of the rows), 960 MiB for its
/// 3,495,253 rows: 48 MiB/s of the bytes an estimate counts.
pub const BENCHMARK_DATA_BYTES_PER_SECOND: f64 = 48.0 * MIB;

/// BENCHMARKS.md, `scripts/bench-binlog` (2026-12-05, statements sent together): 999,902 row
/// changes in 1,002 transactions replayed in 22.8 s, and 19,999 single-row transactions in 3.9 s. Both are
/// needed: a transaction costs its COMMIT and the replay's checkpoint besides its rows, so rows
/// alone would promise a day of one-row grade updates five times too fast.
const BENCH_BULK: (f64, f64, f64) = (999_902.0, 1_002.0, 22.8);
const BENCH_SINGLE: (f64, f64) = (19_999.0, 3.9);

/// The replay's cost a row and a transaction, solved from the two benchmark runs:
/// rows × row + transactions × transaction = seconds, for each.
pub fn benchmark_replay_rate() -> ReplayRate {
    let (bulk_rows, bulk_transactions, bulk_seconds) = BENCH_BULK;
    let (single_transactions, single_seconds) = BENCH_SINGLE;
    // A single-row transaction is one row and one transaction.
    let row_and_transaction = single_seconds / single_transactions;
    let row =
        (bulk_seconds - bulk_transactions * row_and_transaction) / (bulk_rows - bulk_transactions);
    ReplayRate {
        rows_per_second: 1.0 / row,
        seconds_per_transaction: row_and_transaction - row,
        source: "BENCHMARKS.md".into(),
    }
}

/// What a restore will do, in the units the rates count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Work {
    /// Uncompressed bytes of the data and definition files loaded.
    pub data_bytes: u64,
    pub binlog_row_changes: u64,
    pub binlog_transactions: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataRate {
    pub bytes_per_second: f64,
    /// Where the rate comes from, as the printed line says it.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplayRate {
    pub rows_per_second: f64,
    pub seconds_per_transaction: f64,
    pub source: String,
}

/// The estimate, as printed before a restore and carried in its `--json` report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub seconds: f64,
    pub data_bytes: u64,
    pub data_bytes_per_second: f64,
    pub data_rate_source: String,
    pub binlog_row_changes: u64,
    pub binlog_transactions: u64,
    pub replay_rows_per_second: f64,
    pub replay_seconds_per_transaction: f64,
    pub replay_rate_source: String,
    /// The line printed: `estimated time: about …`.
    pub text: String,
}

/// The estimate of `work` at the rates given. No binlog part is said when nothing is replayed.
pub fn estimate(work: Work, data: &DataRate, replay: &ReplayRate) -> Estimate {
    let data_seconds = work.data_bytes as f64 / data.bytes_per_second.max(1.0);
    let replay_seconds = work.binlog_row_changes as f64 / replay.rows_per_second.max(1.0)
        + work.binlog_transactions as f64 * replay.seconds_per_transaction.max(0.0);
    let seconds = data_seconds + replay_seconds;
    let mut text = format!(
        "estimated time: about {} ({} of data at {}/s {}",
        duration(seconds),
        size(work.data_bytes),
        rate(data.bytes_per_second),
        data.source
    );
    if work.binlog_row_changes > 0 || work.binlog_transactions > 0 {
        text.push_str(&format!(
            "; {} binlog row changes in {} transactions at {} rows/s + {:.2} ms a transaction, {}",
            grouped(work.binlog_row_changes),
            grouped(work.binlog_transactions),
            grouped(replay.rows_per_second.round() as u64),
            replay.seconds_per_transaction * 1000.0,
            replay.source
        ));
    }
    text.push(')');
    Estimate {
        seconds: (seconds * 10.0).round() / 10.0,
        data_bytes: work.data_bytes,
        data_bytes_per_second: data.bytes_per_second.round(),
        data_rate_source: data.source.clone(),
        binlog_row_changes: work.binlog_row_changes,
        binlog_transactions: work.binlog_transactions,
        replay_rows_per_second: replay.rows_per_second.round(),
        replay_seconds_per_transaction: replay.seconds_per_transaction,
        replay_rate_source: replay.source.clone(),
        text,
    }
}

/// The estimate of restoring `point` (with `--tables`, only those tables' rows), at the newest
/// passing restore test's data and replay rates when one is recorded (the benchmark's
/// otherwise). Never fails: an unreadable report only means the benchmark's rate.
pub async fn of_point(
    store: &dyn ObjectStore,
    point: &Point,
    tables: Option<&[String]>,
) -> Estimate {
    of_point_at(store, point, tables, None).await
}

/// [`of_point`], at the caller's replay rate when it gives one (the monitor's, where the
/// deployment says its server replays at another rate).
pub async fn of_point_at(
    store: &dyn ObjectStore,
    point: &Point,
    tables: Option<&[String]>,
    replay: Option<&ReplayRate>,
) -> Estimate {
    let (measured_data, measured_replay) = measured_rates(store, replay.is_none()).await;
    let data_rate = measured_data.unwrap_or_else(|| DataRate {
        bytes_per_second: BENCHMARK_DATA_BYTES_PER_SECOND,
        source: "from BENCHMARKS.md (no restore test has recorded a rate)".into(),
    });
    let replay = match replay {
        Some(given) => given.clone(),
        None => measured_replay.unwrap_or_else(benchmark_replay_rate),
    };
    estimate(work_of(point, tables), &data_rate, &replay)
}

/// Uncompressed bytes a restore of `chain` loads: every file but the key state (read by the
/// next incremental, never loaded), under `--tables` only those tables' rows. The restore test
/// records the same count, so its rate and an estimate count alike.
pub fn data_bytes(chain: &[Manifest], tables: Option<&[String]>) -> u64 {
    chain
        .iter()
        .flat_map(|m| m.files.iter())
        .filter(|f| f.stage != Stage::State && super::in_scope(tables, f))
        .map(|f| f.uncompressed_bytes)
        .sum()
}

/// What restoring `point` does. A segment counts its row changes table by table; those of the
/// source database (and of `tables`) are replayed. Its transactions are not split by database,
/// so they are taken in the share of its row changes that is replayed. The first and last
/// segments may reach past the replay's ends: an estimate a little long, never short.
pub fn work_of(point: &Point, tables: Option<&[String]>) -> Work {
    let mut work = Work {
        data_bytes: data_bytes(&point.chain, tables),
        ..Work::default()
    };
    let (Some(plan), Some(root)) = (&point.replay, point.chain.first()) else {
        return work;
    };
    let prefix = format!("{}.", root.database);
    for segment in &plan.segments {
        let rows: u64 = segment
            .tables
            .iter()
            .filter(|(name, _)| {
                name.strip_prefix(&prefix)
                    .is_some_and(|table| tables.is_none_or(|only| only.iter().any(|t| t == table)))
            })
            .map(|(_, changes)| changes.total())
            .sum();
        work.binlog_row_changes += rows;
        if segment.row_changes > 0 {
            work.binlog_transactions += (segment.transactions * rows).div_ceil(segment.row_changes);
        }
    }
    work
}

/// The newest passing restore test's data rate and (when `want_replay`) replay rate: the
/// latest report, else the dated ones newest first (a year of monthly tests at most), skipping
/// failures and reports written before tests recorded them. Reading stops once both are found
/// (usually at the latest report: the monitor asks every 15 minutes).
async fn measured_rates(
    store: &dyn ObjectStore,
    want_replay: bool,
) -> (Option<DataRate>, Option<ReplayRate>) {
    const FOLDER: &str = crate::layout::RESTORE_TESTS_PREFIX;
    const LOOK_BACK: usize = 12;
    let mut keys = vec![LATEST_KEY.to_string()];
    match store.list(FOLDER).await {
        Ok(listed) => {
            let mut dated: Vec<String> = listed
                .into_iter()
                .map(|o| o.key)
                .filter(|k| k != LATEST_KEY && k.ends_with(".json"))
                .collect();
            // Named by the test's time (`%Y%m%dT%H%M%SZ`): the newest sorts last.
            dated.sort_unstable_by(|a, b| b.cmp(a));
            keys.extend(dated.into_iter().take(LOOK_BACK));
        }
        Err(e) => tracing::warn!("cannot list the restore tests' reports for the estimate: {e}"),
    }
    let (mut data, mut replay) = (None, None);
    for key in keys {
        if data.is_some() && (replay.is_some() || !want_replay) {
            break;
        }
        let report = match store.get(&key).await {
            Ok(Some(bytes)) => serde_json::from_slice::<RestoreTestReport>(&bytes).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("cannot read {key} for the estimate: {e}");
                None
            }
        };
        if let Some(report) = report {
            data = data.or_else(|| rate_of(&report));
            if want_replay {
                replay = replay.or_else(|| replay_rate_of(&report));
            }
        }
    }
    (data, replay)
}

/// A passed restore test's data rate: its data bytes over its whole time (checks of the files,
/// the load and the verification) less its replay, as a restore spends it.
fn rate_of(report: &RestoreTestReport) -> Option<DataRate> {
    let seconds = report.rto_seconds - report.replay_seconds.max(0.0);
    if !report.passed || report.data_bytes == 0 || seconds <= 0.0 {
        return None;
    }
    Some(DataRate {
        bytes_per_second: report.data_bytes as f64 / seconds,
        source: format!("measured by the restore test of {}", day_of(report)),
    })
}

/// A passed restore test's replay rate: the benchmark's two rates (a row, a transaction)
/// scaled so that they give the time its replay took, which one replay alone cannot split.
fn replay_rate_of(report: &RestoreTestReport) -> Option<ReplayRate> {
    if !report.passed || report.replay_row_changes == 0 || report.replay_seconds <= 0.0 {
        return None;
    }
    let benchmark = benchmark_replay_rate();
    let predicted = report.replay_row_changes as f64 / benchmark.rows_per_second
        + report.replay_transactions as f64 * benchmark.seconds_per_transaction;
    if predicted <= 0.0 {
        return None;
    }
    let slower = report.replay_seconds / predicted;
    Some(ReplayRate {
        rows_per_second: benchmark.rows_per_second / slower,
        seconds_per_transaction: benchmark.seconds_per_transaction * slower,
        source: format!("measured by the restore test of {}", day_of(report)),
    })
}

fn day_of(report: &RestoreTestReport) -> &str {
    report.tested_at.get(..10).unwrap_or(&report.tested_at)
}

/// "45 s", "4 min", "2 h 05 min": rounded as a person would say it.
fn duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0).round() as u64;
    if seconds < 90 {
        format!("{} s", seconds.max(1))
    } else if seconds < 90 * 60 {
        format!("{} min", (seconds + 30) / 60)
    } else {
        let minutes = (seconds + 30) / 60;
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    }
}

fn size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * MIB {
        format!("{:.1} GiB", b / (1024.0 * MIB))
    } else if b >= MIB {
        format!("{:.0} MiB", b / MIB)
    } else {
        format!("{:.0} KiB", (b / 1024.0).max(1.0))
    }
}

/// A tiny restore test's rate (its fixed costs over a few KiB) is still said in digits.
fn rate(bytes_per_second: f64) -> String {
    if bytes_per_second >= MIB {
        format!("{:.1} MiB", bytes_per_second / MIB)
    } else {
        format!("{:.1} KiB", bytes_per_second / 1024.0)
    }
}

/// 130000 → "130,000".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay_rate() -> ReplayRate {
        ReplayRate {
            rows_per_second: 5000.0,
            seconds_per_transaction: 0.001,
            source: "BENCHMARKS.md".into(),
        }
    }

    #[test]
    fn the_estimate_adds_the_data_load_and_the_replay() {
        // 312 MiB at 9.75 MiB/s: 32 s; 130,000 rows at 5,000 rows/s: 26 s; 40,000
        // transactions at 1 ms: 40 s. 98 s in all: "2 min".
        let work = Work {
            data_bytes: 312 * 1024 * 1024,
            binlog_row_changes: 130_000,
            binlog_transactions: 40_000,
        };
        let data = DataRate {
            bytes_per_second: 9.75 * MIB,
            source: "measured by the restore test of 2026-11-02".into(),
        };
        let estimate = estimate(work, &data, &replay_rate());
        assert_eq!(estimate.seconds, 98.0);
        assert_eq!(
            estimate.text,
            "estimated time: about 2 min (312 MiB of data at 9.8 MiB/s measured by the restore \
             test of 2026-11-02; 130,000 binlog row changes in 40,000 transactions at 5,000 \
             rows/s + 1.00 ms a transaction, BENCHMARKS.md)"
        );
    }

    #[test]
    fn without_a_replay_only_the_data_is_said() {
        // 3 GiB at 48 MiB/s: 64 s.
        let work = Work {
            data_bytes: 3 * 1024 * 1024 * 1024,
            ..Work::default()
        };
        let data = DataRate {
            bytes_per_second: 48.0 * MIB,
            source: "from BENCHMARKS.md".into(),
        };
        let estimate = estimate(work, &data, &replay_rate());
        assert_eq!(estimate.seconds, 64.0);
        assert_eq!(
            estimate.text,
            "estimated time: about 64 s (3.0 GiB of data at 48.0 MiB/s from BENCHMARKS.md)"
        );
    }

    #[test]
    fn long_restores_are_said_in_hours_and_minutes() {
        assert_eq!(duration(0.2), "1 s");
        assert_eq!(duration(89.0), "89 s");
        assert_eq!(duration(150.0), "3 min");
        assert_eq!(duration(2.0 * 3600.0 + 5.0 * 60.0 + 10.0), "2 h 05 min");
        assert_eq!(rate(1536.0), "1.5 KiB");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }

    #[test]
    fn the_benchmark_replay_rate_reproduces_both_runs() {
        let rate = benchmark_replay_rate();
        let seconds = |rows: f64, transactions: f64| {
            rows / rate.rows_per_second + transactions * rate.seconds_per_transaction
        };
        assert!((seconds(999_902.0, 1_002.0) - 22.8).abs() < 0.01);
        assert!((seconds(19_999.0, 19_999.0) - 3.9).abs() < 0.01);
        // By hand: 44,190 rows/s and 0.172 ms a transaction.
        assert_eq!(rate.rows_per_second.round(), 44190.0);
        assert!((rate.seconds_per_transaction - 0.000_172).abs() < 0.000_001);
    }

    /// A passed restore test of 2026-11-02: 312 MiB in 32 s, no replay.
    fn passed_test() -> RestoreTestReport {
        RestoreTestReport {
            tested_at: "2026-11-02T03:00:00+00:00".into(),
            passed: true,
            backup_id: Some("b".into()),
            chain: vec!["b".into()],
            rto_seconds: 32.0,
            data_bytes: 312 * 1024 * 1024,
            tables: 1,
            rows: 1,
            scratch_database: "s".into(),
            error: None,
            timed_out: false,
            replay_row_changes: 0,
            replay_transactions: 0,
            replay_seconds: 0.0,
        }
    }

    #[test]
    fn a_restore_test_gives_its_rate_only_when_it_passed_with_its_bytes() {
        let mut report = passed_test();
        let rate = rate_of(&report).expect("a rate");
        assert_eq!(rate.bytes_per_second, 9.75 * MIB);
        assert_eq!(rate.source, "measured by the restore test of 2026-11-02");
        report.data_bytes = 0;
        assert_eq!(
            rate_of(&report),
            None,
            "written before tests recorded bytes"
        );
        report.data_bytes = 1;
        report.passed = false;
        assert_eq!(rate_of(&report), None);
    }

    #[test]
    fn a_restore_test_with_a_replay_gives_the_replay_rate_and_a_data_rate_without_it() {
        let benchmark = benchmark_replay_rate();
        // The benchmark would take 10 s for these; the test took 30: three times slower.
        let rows = 200_000.0;
        let transactions =
            ((10.0 - rows / benchmark.rows_per_second) / benchmark.seconds_per_transaction).round();
        let report = RestoreTestReport {
            tested_at: "2026-12-01T03:00:00+00:00".into(),
            rto_seconds: 62.0,
            replay_row_changes: rows as u64,
            replay_transactions: transactions as u64,
            replay_seconds: 30.0,
            ..passed_test()
        };
        let replay = replay_rate_of(&report).expect("a replay rate");
        assert!(
            (replay.rows_per_second * 3.0 / benchmark.rows_per_second - 1.0).abs() < 0.01,
            "{replay:?}"
        );
        assert!(
            (replay.seconds_per_transaction / (3.0 * benchmark.seconds_per_transaction) - 1.0)
                .abs()
                < 0.01
        );
        assert_eq!(replay.source, "measured by the restore test of 2026-12-01");
        // 312 MiB in the 32 s that were not the replay.
        assert_eq!(
            rate_of(&report).map(|r| r.bytes_per_second),
            Some(9.75 * MIB)
        );
        let without = RestoreTestReport {
            replay_row_changes: 0,
            ..report.clone()
        };
        assert_eq!(replay_rate_of(&without), None);
        let failed = RestoreTestReport {
            passed: false,
            ..report
        };
        assert_eq!(replay_rate_of(&failed), None);
    }
}
