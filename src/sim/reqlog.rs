//! Request counters and the JSON-lines request log. Neither ever records a header or a
//! body, so tokens and secret values cannot leak into them.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;

/// Counts of the API requests served (control endpoints under `/__sim` excluded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every API request.
    pub requests: u64,
    /// Requests by HTTP method (`OTHER` for a non-standard one).
    pub by_method: BTreeMap<String, u64>,
    /// Requests by status answered (`0`: the connection was dropped unanswered).
    pub by_status: BTreeMap<u16, u64>,
    /// Requests by `"METHOD STATUS"`, e.g. `"POST 200"`.
    pub by_method_status: BTreeMap<String, u64>,
    /// Requests with a method other than GET and HEAD.
    pub mutating: u64,
    /// 429 answers sent by the rate limiter (injected 429s count as faults).
    pub rate_limited: u64,
    /// Every injected fault.
    pub faults: u64,
    /// Injected faults by kind (`500`, `503@after`, `timeout`, `lost_response`, …).
    pub faults_by_kind: BTreeMap<String, u64>,
}

/// One served request, as counted and logged.
pub(crate) struct Record<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// What the handler answered when the response was then lost.
    pub handler_status: Option<u16>,
    pub latency_ms: f64,
    pub fault: Option<&'a str>,
    pub rate_limited: bool,
}

pub(crate) fn is_mutating(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD")
}

/// The method as counted: a standard HTTP method, or `OTHER` for any other token, so
/// that clients cannot grow the counters without bound with made-up methods.
fn method_key(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

impl Counters {
    pub(crate) fn record(&mut self, r: &Record<'_>) {
        self.requests += 1;
        let method = method_key(r.method);
        *self.by_method.entry(method.to_string()).or_default() += 1;
        *self.by_status.entry(r.status).or_default() += 1;
        *self
            .by_method_status
            .entry(format!("{method} {}", r.status))
            .or_default() += 1;
        if is_mutating(r.method) {
            self.mutating += 1;
        }
        if r.rate_limited {
            self.rate_limited += 1;
        }
        if let Some(kind) = r.fault {
            self.faults += 1;
            *self.faults_by_kind.entry(kind.to_string()).or_default() += 1;
        }
    }
}

/// Appends one JSON object per request to a file, one `write` per complete line (no
/// buffering), so that a simulator killed at any moment leaves only whole lines.
pub(crate) struct RequestLog {
    out: File,
}

impl RequestLog {
    pub fn open(path: &Path) -> std::io::Result<RequestLog> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(RequestLog { out: file })
    }

    pub fn write(&mut self, r: &Record<'_>) {
        let mut line = json!({
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "method": r.method,
            "path": r.path,
            "status": r.status,
            "latency_ms": (r.latency_ms * 1000.0).round() / 1000.0,
            "fault": r.fault,
            "mutating": is_mutating(r.method),
        });
        if let (Some(s), Some(obj)) = (r.handler_status, line.as_object_mut()) {
            obj.insert("handler_status".into(), s.into());
        }
        // A failing log write must not fail the request it describes.
        let Ok(mut bytes) = serde_json::to_vec(&line) else {
            return;
        };
        bytes.push(b'\n');
        let _ = self.out.write_all(&bytes);
    }

    /// Lines are written whole as they come; nothing is held back.
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let mut c = Counters::default();
        c.record(&Record {
            method: "POST",
            path: "/v1/apps",
            status: 201,
            handler_status: None,
            latency_ms: 1.0,
            fault: None,
            rate_limited: false,
        });
        c.record(&Record {
            method: "GET",
            path: "/v1/apps",
            status: 503,
            handler_status: None,
            latency_ms: 1.0,
            fault: Some("503"),
            rate_limited: false,
        });
        assert_eq!(c.requests, 2);
        assert_eq!(c.mutating, 1);
        assert_eq!(c.by_method_status["GET 503"], 1);
        assert_eq!(c.faults_by_kind["503"], 1);
    }

    #[test]
    fn unknown_methods_count_as_other() {
        let mut c = Counters::default();
        for method in ["BREW", "PROPFIND", "X-ANYTHING-AT-ALL", "DELETE"] {
            c.record(&Record {
                method,
                path: "/v1/apps",
                status: 405,
                handler_status: None,
                latency_ms: 1.0,
                fault: None,
                rate_limited: false,
            });
        }
        assert_eq!(
            c.by_method.keys().collect::<Vec<_>>(),
            vec!["DELETE", "OTHER"]
        );
        assert_eq!(c.by_method["OTHER"], 3);
        assert_eq!(c.by_method_status["OTHER 405"], 3);
        assert_eq!(c.mutating, 4);
    }
}
