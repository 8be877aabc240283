//! How far a running job has got, readable from outside it: what a restore cut off by a
//! deadline reports, so the alert says where the time went, and what the command line draws as
//! a progress bar (or logs every few seconds).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Headway {
    phase: Mutex<String>,
    files_total: AtomicU64,
    files_loaded: AtomicU64,
    /// Bytes of the current phase's work, and how many are done.
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
    /// The phase counts rows (an estimate, for a dump), not bytes.
    counts_rows: std::sync::atomic::AtomicBool,
}

/// One reading of a [`Headway`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub phase: String,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub counts_rows: bool,
}

impl Headway {
    /// A phase whose work is `bytes` long: the byte count starts again from zero.
    pub fn measure(&self, phase: impl Into<String>, bytes: u64) {
        self.counts_rows.store(false, Ordering::Relaxed);
        self.phase(phase);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
    }

    /// A phase whose work is about `rows` rows (the server's estimate).
    pub fn measure_rows(&self, phase: impl Into<String>, rows: u64) {
        self.measure(phase, rows);
        self.counts_rows.store(true, Ordering::Relaxed);
    }

    pub fn bytes_done(&self, bytes: u64) {
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn read(&self) -> Reading {
        Reading {
            phase: self.phase.lock().map(|p| p.clone()).unwrap_or_default(),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
            counts_rows: self.counts_rows.load(Ordering::Relaxed),
        }
    }

    /// Logs a progress line every `every` (where no bar is drawn: a file, a pipe, JSON logs,
    /// Lambda) until the returned task is aborted.
    pub fn log_every(
        self: std::sync::Arc<Self>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut last = (std::time::Instant::now(), self.read().bytes_done);
            loop {
                tokio::time::sleep(every).await;
                let reading = self.read();
                let seconds = last.0.elapsed().as_secs_f64().max(0.001);
                let rate = reading.bytes_done.saturating_sub(last.1) as f64 / seconds;
                last = (std::time::Instant::now(), reading.bytes_done);
                let left = reading.bytes_total.saturating_sub(reading.bytes_done);
                let percent = if reading.bytes_total == 0 {
                    0.0
                } else {
                    reading.bytes_done as f64 * 100.0 / reading.bytes_total as f64
                };
                let unit = if reading.counts_rows { "rows" } else { "bytes" };
                tracing::info!(
                    phase = %reading.phase,
                    done = reading.bytes_done,
                    total = reading.bytes_total,
                    unit,
                    percent = (percent * 10.0).round() / 10.0,
                    per_second = rate.round(),
                    eta_seconds = (rate > 0.0).then(|| (left as f64 / rate).round()),
                    "progress"
                );
            }
        })
    }

    pub fn phase(&self, phase: impl Into<String>) {
        if let Ok(mut current) = self.phase.lock() {
            *current = phase.into();
        }
    }

    pub(crate) fn plan(&self, files: u64) {
        self.files_total.store(files, Ordering::Relaxed);
    }

    pub(crate) fn files_loaded(&self, files: u64) {
        self.files_loaded.fetch_add(files, Ordering::Relaxed);
    }

    /// E.g. "loading the data stage of 20261128T020000.000Z-ab12; 37 of 120 files loaded".
    pub fn describe(&self) -> String {
        let phase = self.phase.lock().map(|p| p.clone()).unwrap_or_default();
        let phase = if phase.is_empty() {
            "starting".to_string()
        } else {
            phase
        };
        let total = self.files_total.load(Ordering::Relaxed);
        if total == 0 {
            return phase;
        }
        format!(
            "{phase}; {} of {total} files loaded",
            self.files_loaded.load(Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_phase_and_the_files() {
        let headway = Headway::default();
        assert_eq!(headway.describe(), "starting");
        headway.phase("checking every file of the chain");
        assert_eq!(headway.describe(), "checking every file of the chain");
        headway.plan(3);
        headway.phase("loading the data stage of b1");
        headway.files_loaded(1);
        assert_eq!(
            headway.describe(),
            "loading the data stage of b1; 1 of 3 files loaded"
        );
    }
}
