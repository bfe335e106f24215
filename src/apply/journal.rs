//! The apply journal: one JSON line per operation event (started, ok, failed, skipped),
//! appended and flushed as it happens, so an interrupted run can be inspected. It holds
//! addresses, actions, Fly IDs and error messages — never a secret value or the token
//! (operations never put values in their details, and API errors carry no request body).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::apply::ops::Op;
use crate::resource::Address;

pub struct Journal {
    run: String,
    file: Mutex<BufWriter<File>>,
}

impl Journal {
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
            file: Mutex::new(BufWriter::new(f)),
        })
    }

    fn write(&self, v: serde_json::Value) {
        let mut f = match self.file.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        let _ = writeln!(f, "{v}");
        let _ = f.flush();
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
