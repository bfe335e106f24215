//! Progress of an apply: a bar with counts, rate and ETA on a terminal (indicatif),
//! plain lines otherwise. Written to stderr.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::apply::ops::Op;

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    pub fn new(total: usize, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
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
