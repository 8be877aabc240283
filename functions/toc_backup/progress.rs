//! Progress a person can read: a bar with bytes, rate and time left on a terminal; otherwise
//! (a file, a pipe, `--log-format json`) one log line every few seconds. Neither changes what
//! the command prints at the end or its exit status.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use toc_sis_backup::job::headway::Headway;

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
        let update = move |drawn: &ProgressBar, rows: &mut Option<bool>| {
            let reading = headway.read();
            if *rows != Some(reading.counts_rows) {
                *rows = Some(reading.counts_rows);
                drawn.set_style(style(if reading.counts_rows {
                    ROWS_TEMPLATE
                } else {
                    BAR_TEMPLATE
                }));
            }
            drawn.set_length(reading.bytes_total);
            drawn.set_position(reading.bytes_done.min(reading.bytes_total));
            drawn.set_message(reading.phase);
        };
        // Drawn once now: a job shorter than the task's first turn still shows its bar.
        let mut rows = None;
        update(&bar, &mut rows);
        bar.tick();
        let drawn = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                update(&drawn, &mut rows);
            }
        });
        return Progress {
            task,
            bar: Some(bar),
        };
    }
    let task = headway.log_every(every);
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
