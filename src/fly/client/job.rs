//! The client's view of a one-shot Machine's run: its state, the exit status from its
//! `exit` event and its metadata (what an export image reports). A child of `client` so
//! that it shares its request machinery.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ApiError, Client, enc};
use crate::fly::ratelimit::Act;

/// A one-shot Machine as far as its run goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStatus {
    pub state: String,
    /// The exit code of its last exit, once it exited.
    pub exit_code: Option<i64>,
    /// Milliseconds since the epoch of its last start and exit events.
    pub started_ms: Option<i64>,
    pub exited_ms: Option<i64>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    state: String,
    #[serde(default)]
    events: Vec<RawEvent>,
    #[serde(default)]
    config: RawConfig,
}

#[derive(Deserialize, Default)]
struct RawConfig {
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    request: Option<serde_json::Value>,
}

impl Client {
    /// The run of Machine `id` (destroyed Machines included, as Fly keeps answering for
    /// them a while); `None` once Fly no longer knows it.
    pub async fn job_status(&self, app: &str, id: &str) -> Result<Option<JobStatus>, ApiError> {
        let path = format!("/apps/{}/machines/{}", enc(app), enc(id));
        let raw: Option<Raw> = self.get_found(&path, Act::MachineGet, id).await?;
        Ok(raw.map(|r| {
            // Events are newest first.
            let newest = |kind: &str| r.events.iter().find(|e| e.kind == kind);
            let exit = newest("exit");
            JobStatus {
                state: r.state,
                exit_code: exit
                    .and_then(|e| e.request.as_ref())
                    .and_then(|q| q.pointer("/exit_event/exit_code"))
                    .and_then(serde_json::Value::as_i64),
                started_ms: newest("start").and_then(|e| e.timestamp),
                exited_ms: exit.and_then(|e| e.timestamp),
                metadata: r.config.metadata.unwrap_or_default(),
            }
        }))
    }
}
