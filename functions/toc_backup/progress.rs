//! Progress a person can read: a bar with bytes, rate and time left on a terminal; otherwise
//! (a file, a pipe, `--log-format json`) one log line every few seconds. Neither changes what
//! the command prints at the end or its exit status.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use toc_sis_backup::restore::headway::Headway;

use crate::args::LogFormat;

pub(crate) struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
}

const BAR_TEMPLATE: &str =
    "{spinner} {wide_msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}";
/// Rows against the server's estimate (a dump).
const ROWS_TEMPLATE: &str =
    "{spinner} {wide_msg} [{bar:30}] {human_pos}/~{human_len} rows {rows_per_sec} ETA {eta}";

pub(crate) fn start(headway: Arc<Headway>, format: LogFormat, every: Duration) -> Progress {
    if matches!(format, LogFormat::Human) && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        let style = |template| {
            ProgressStyle::with_template(template)
                .map(|style| {
                    style.progress_chars("=> ").with_key(
                        "rows_per_sec",
                        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0}/s", state.per_sec());
                        },
                    )
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar())
        };
        let drawn = bar.clone();
        let task = tokio::spawn(async move {
            let mut rows = None;
            loop {
                let reading = headway.read();
                if rows != Some(reading.counts_rows) {
                    rows = Some(reading.counts_rows);
                    drawn.set_style(style(if reading.counts_rows {
                        ROWS_TEMPLATE
                    } else {
                        BAR_TEMPLATE
                    }));
                }
                drawn.set_length(reading.bytes_total);
                drawn.set_position(reading.bytes_done.min(reading.bytes_total));
                drawn.set_message(reading.phase);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        return Progress {
            task,
            bar: Some(bar),
        };
    }
    let task = tokio::spawn(async move {
        let mut last = (Instant::now(), headway.read().bytes_done);
        loop {
            tokio::time::sleep(every).await;
            let reading = headway.read();
            let seconds = last.0.elapsed().as_secs_f64().max(0.001);
            let rate = reading.bytes_done.saturating_sub(last.1) as f64 / seconds;
            last = (Instant::now(), reading.bytes_done);
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
    });
    Progress { task, bar: None }
}

impl Progress {
    pub(crate) fn finish(self) {
        self.task.abort();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
