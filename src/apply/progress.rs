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

/// What a second Ctrl-C abandons, said when it quits.
#[derive(Debug, Clone)]
pub struct Abandoned {
    /// The run's journal (what was started and finished).
    pub journal: std::path::PathBuf,
    /// The fleet lock's lease lifetime, when this run holds the lock.
    pub lock_ttl: Option<std::time::Duration>,
}

impl Abandoned {
    /// The lines printed when the second Ctrl-C quits.
    pub fn message(&self) -> String {
        let lock = match self.lock_ttl {
            Some(ttl) => format!(
                " The fleet lock is not released: it expires by itself within {} s (or run `flotilla unlock SPEC`).",
                ttl.as_secs()
            ),
            None => String::new(),
        };
        format!(
            "Quitting now: the operations in flight are abandoned and their outcome is unknown; the next plan shows what happened, and apply converges.{lock} Journal: {}",
            self.journal.display()
        )
    }
}

/// On Ctrl-C, sets `cancel` (no new operations start; those in flight finish) and says
/// so; a second Ctrl-C says what it abandons and quits at once (exit code 130).
pub async fn watch_ctrl_c(cancel: Arc<AtomicBool>, abandoned: Abandoned) {
    if tokio::signal::ctrl_c().await.is_ok() {
        cancel.store(true, Ordering::SeqCst);
        eprintln!(
            "\nInterrupted: no new operations start; waiting for those in flight (Ctrl-C again to quit now)…"
        );
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\n{}", abandoned.message());
            std::process::exit(130);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_ctrl_c_says_what_it_abandons() {
        let a = Abandoned {
            journal: "/tmp/j.jsonl".into(),
            lock_ttl: Some(std::time::Duration::from_secs(90)),
        };
        let m = a.message();
        assert!(m.contains("in flight are abandoned"), "{m}");
        assert!(
            m.contains("within 90 s") && m.contains("flotilla unlock"),
            "{m}"
        );
        assert!(m.ends_with("Journal: /tmp/j.jsonl"), "{m}");
        let m = Abandoned {
            lock_ttl: None,
            ..a
        }
        .message();
        assert!(!m.contains("fleet lock"), "{m}");
    }
}
