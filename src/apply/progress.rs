//! Progress of an apply: a bar with counts, rate and ETA on a terminal (indicatif),
//! plain lines otherwise, and the notice of a Ctrl-C. Written to stderr: the one output
//! of an operation that is not returned to the caller, since it happens while the
//! operation runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::apply::ops::Op;

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// Progress over `total` operations: nothing when `quiet`, a bar when `bar` (stderr
    /// is a terminal), else one line per finished operation.
    pub fn new(total: usize, quiet: bool, bar: bool) -> Progress {
        let bar = (!quiet && bar).then(|| {
            let b = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} ops · {per_sec} · ETA {eta} · {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { bar, quiet }
    }

    pub fn started(&self, op: &Op) {
        if let Some(b) = &self.bar {
            b.set_message(format!("{} {}", op.kind.label(), op.address));
        }
    }

    pub fn finished(&self, op: &Op, ok: bool, detail: &str, took: Duration) {
        match &self.bar {
            Some(b) => {
                b.inc(1);
                if !ok {
                    b.println(format!("✗ {} {}: {detail}", op.kind.label(), op.address));
                }
            }
            None if !self.quiet => {
                let mark = if ok { "ok" } else { "FAILED" };
                eprintln!(
                    "{mark:>6} {} {} ({:.1}s): {detail}",
                    op.kind.label(),
                    op.address,
                    took.as_secs_f64()
                );
            }
            None => {}
        }
    }

    pub fn note(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// A line on stderr outside of a run's progress display (waiting for the fleet lock).
pub fn notice(msg: &str) {
    eprintln!("{msg}");
}

/// On Ctrl-C, sets `cancel` (no new operations start; those in flight finish) and says
/// so; a second Ctrl-C quits at once (exit code 130).
pub async fn watch_ctrl_c(cancel: Arc<AtomicBool>) {
    if tokio::signal::ctrl_c().await.is_ok() {
        cancel.store(true, Ordering::SeqCst);
        eprintln!(
            "\nInterrupted: no new operations start; waiting for those in flight (Ctrl-C again to quit now)…"
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    }
}
