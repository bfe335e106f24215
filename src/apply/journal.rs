//! The apply journal: one JSON line per operation event (started, ok, failed, skipped),
//! appended and flushed as it happens, so an interrupted run can be inspected. It holds
//! addresses, actions, Fly IDs and error messages — never a secret value or the token
//! (operations never put values in their details, and API errors carry no request body).
//!
//! A journal that cannot be written stops the apply: [`Journal::start`] writes and
//! flushes the run's first line before any operation, so an unwritable journal (a full
//! disk, `/dev/full`, a read-only directory) changes nothing; a later write failure is
//! kept ([`Journal::failure`]) and raises the stop flag given to
//! [`Journal::stop_on_failure`], so no further operation starts.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::apply::ops::Op;
use crate::resource::Address;

pub struct Journal {
    run: String,
    path: String,
    file: Mutex<BufWriter<File>>,
    /// The first write failure.
    failure: Arc<Mutex<Option<String>>>,
    /// Raised on a write failure.
    stop: Mutex<Option<Arc<AtomicBool>>>,
}

/// The first write failure of a journal, readable after the journal was handed on.
#[derive(Clone)]
pub struct JournalFailure(Arc<Mutex<Option<String>>>);

impl JournalFailure {
    pub fn get(&self) -> Option<String> {
        match self.0.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

impl Journal {
    /// Opens (appends to) the journal of a run and writes its first line, `apply
    /// started` with `detail`, flushed: a journal that cannot be written is an error
    /// before anything is changed.
    pub fn start(path: &Path, run: &str, detail: serde_json::Value) -> Result<Journal, String> {
        let j = Journal::open(path, run)?;
        j.event("apply started", detail);
        match j.failure() {
            Some(e) => Err(e),
            None => Ok(j),
        }
    }

    /// Raise `flag` (the apply's stop flag) when a write fails.
    pub fn stop_on_failure(&self, flag: Arc<AtomicBool>) {
        if let Ok(mut s) = self.stop.lock() {
            *s = Some(flag);
        }
    }

    /// The first write failure, if any.
    pub fn failure(&self) -> Option<String> {
        self.failures().get()
    }

    /// A handle on the first write failure.
    pub fn failures(&self) -> JournalFailure {
        JournalFailure(Arc::clone(&self.failure))
    }

    /// Opens (appends to) a journal file, creating its folder.
    pub fn open(path: &Path, run: &str) -> Result<Journal, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open the journal {}: {e}", path.display()))?;
        Ok(Journal {
            run: run.to_string(),
            path: path.display().to_string(),
            file: Mutex::new(BufWriter::new(f)),
            failure: Arc::new(Mutex::new(None)),
            stop: Mutex::new(None),
        })
    }

    fn write(&self, v: serde_json::Value) {
        let mut f = match self.file.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        if let Err(e) = writeln!(f, "{v}").and_then(|()| f.flush()) {
            self.failed(format!("cannot write the journal {}: {e}", self.path));
        }
    }

    fn failed(&self, message: String) {
        let mut first = match self.failure.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if first.is_none() {
            *first = Some(message);
        }
        if let Ok(s) = self.stop.lock()
            && let Some(flag) = s.as_ref()
        {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// Records an operation event. Inside the operation's task, the line carries Fly's
    /// request ids of the writes it made since its previous line (`fly_request_ids`)
    /// beside flotilla's own `operation_id`.
    pub fn record(&self, op: &Op, outcome: &str, detail: &str, took: Duration) {
        let fly_ids = crate::fly::request_ids::take();
        self.write(serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "run": self.run,
            "operation_id": format!("{}-{}", self.run, op.index),
            "fly_request_ids": fly_ids,
            "op": op.index,
            "action": op.kind.label(),
            "address": op.address,
            "tenant": op.tenant,
            "app": op.app,
            "outcome": outcome,
            "detail": detail,
            "duration_ms": took.as_millis() as u64,
        }));
    }

    /// Records a note about a resource (e.g. a volume moved to a fallback region).
    pub fn note(&self, address: &Address, detail: &str) {
        self.write(serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "run": self.run,
            "address": address,
            "outcome": "note",
            "detail": detail,
        }));
    }

    /// Records the start or end of a run.
    pub fn event(&self, what: &str, detail: serde_json::Value) {
        self.write(serde_json::json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "run": self.run,
            "outcome": what,
            "detail": detail,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unwritable_journal_fails_at_the_start() {
        let e = Journal::start(Path::new("/dev/full"), "r1", serde_json::json!({}))
            .err()
            .unwrap();
        assert!(e.contains("/dev/full") && e.contains("cannot write"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let j = Journal::start(&path, "r1", serde_json::json!({"n": 1})).unwrap();
        assert!(j.failure().is_none());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("apply started") && text.ends_with('\n'),
            "{text}"
        );
    }

    #[test]
    fn a_later_failure_is_kept_and_raises_the_stop_flag() {
        let j = Journal::open(Path::new("/dev/full"), "r1").unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        j.stop_on_failure(Arc::clone(&flag));
        let handle = j.failures();
        j.event("x", serde_json::json!({}));
        assert!(flag.load(Ordering::Relaxed));
        assert!(
            handle
                .get()
                .unwrap()
                .contains("cannot write the journal /dev/full")
        );
    }
}
