//! The observed-state snapshot: what the observer saw in an organization, in Fly's own
//! shapes — the JSON a `--state FILE` holds and `plan --show-state` writes.

use serde::{Deserialize, Serialize};

use super::api;
use crate::diag::Diagnostic;

pub const STATE_FORMAT_VERSION: u32 = 1;

/// What the observer saw, in Fly's own shapes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format_version: u32,
    pub org: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    #[serde(default)]
    pub apps: Vec<AppSnapshot>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppSnapshot {
    #[serde(flatten)]
    pub app: api::App,
    #[serde(default)]
    pub machines: Vec<api::Machine>,
    #[serde(default)]
    pub volumes: Vec<api::Volume>,
    #[serde(default)]
    pub secrets: Vec<api::Secret>,
    /// IP assignments (apps flotilla may own; absent in older state files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<super::network::IpAssignment>,
    /// Certificates of custom domains (as `ips`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<super::network::Certificate>,
}

impl Snapshot {
    /// An organization with nothing in it.
    pub fn empty(org: &str) -> Self {
        Snapshot {
            format_version: STATE_FORMAT_VERSION,
            org: org.to_string(),
            observed_at: None,
            apps: Vec::new(),
        }
    }

    /// Parses a state file's bytes; errors carry the line and column of bad JSON.
    pub fn from_json(bytes: &[u8], file: &str) -> Result<Snapshot, Diagnostic> {
        let snap: Snapshot = serde_json::from_slice(bytes).map_err(|e| {
            crate::diag::json_error("not a valid observed-state file", &e)
                .file(file)
                .hint("a state file is JSON as written by `flotilla plan --show-state`; see ARCHITECTURE.md")
        })?;
        if snap.format_version != STATE_FORMAT_VERSION {
            return Err(Diagnostic::error(format!(
                "state format_version {} is not supported (this flotilla reads {STATE_FORMAT_VERSION})",
                snap.format_version
            ))
            .file(file)
            .hint("write the state again with this flotilla: `flotilla plan SPEC --sim|--api URL --show-state FILE`"));
        }
        Ok(snap)
    }
}
