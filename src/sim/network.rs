//! The simulated world's networking: IP assignments per app, addresses drawn in order
//! from documentation ranges (shared IPv4 `203.0.113.N`, one per organization;
//! dedicated IPv4 `198.51.100.N` then `192.0.2.N`; IPv6 `2001:db8::N`; Flycast
//! `fdaa:0:db8::N`), certificates per hostname, and which hostnames' DNS records a test
//! has declared present (`POST /__sim/dns`): a certificate is issued once they are.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::clock::rfc3339_secs;
use super::error::ApiError;
use super::ids::digest;

/// One address of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IpRecord {
    pub ip: String,
    /// `shared_v4`, `v4`, `v6` or `private_v6`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    pub created_at_ms: i64,
}

impl IpRecord {
    pub fn to_json(&self, org: &str) -> Value {
        let mut v = json!({
            "ip": self.ip,
            "region": "global",
            "service_name": "",
            "shared": self.kind == "shared_v4",
            "egress": false,
            "created_at": rfc3339_secs(self.created_at_ms),
        });
        if self.kind == "private_v6" {
            v["network"] = json!({
                "name": self.network.clone().unwrap_or_default(),
                "org_slug": org,
            });
        }
        v
    }
}

/// One custom domain of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CertRecord {
    pub hostname: String,
    pub created_at_ms: i64,
}

/// An app's addresses and certificates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AppNet {
    #[serde(default)]
    pub ips: Vec<IpRecord>,
    #[serde(default)]
    pub certificates: BTreeMap<String, CertRecord>,
}

/// Organization-wide networking state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct WorldNet {
    /// Each organization's shared IPv4 address.
    #[serde(default)]
    pub shared_v4: BTreeMap<String, String>,
    #[serde(default)]
    pub next_v4: u32,
    #[serde(default)]
    pub next_v6: u32,
    #[serde(default)]
    pub next_flycast: u32,
    /// Hostnames whose DNS records are in place.
    #[serde(default)]
    pub dns_present: BTreeSet<String>,
}

/// Dedicated IPv4 addresses the two documentation ranges hold.
const V4_RANGE: u32 = 254;

impl WorldNet {
    /// The next address of `kind` (the organization's one for `shared_v4`).
    pub fn allocate(&mut self, org: &str, kind: &str) -> Result<String, ApiError> {
        match kind {
            "shared_v4" => {
                let n = self.shared_v4.len() + 1;
                let ip = self
                    .shared_v4
                    .entry(org.to_string())
                    .or_insert_with(|| format!("203.0.113.{n}"));
                Ok(ip.clone())
            }
            "v4" => {
                self.next_v4 += 1;
                match self.next_v4 {
                    n @ 1..=V4_RANGE => Ok(format!("198.51.100.{n}")),
                    n if n <= 2 * V4_RANGE => Ok(format!("192.0.2.{}", n - V4_RANGE)),
                    _ => Err(ApiError::new(
                        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                        "no dedicated IPv4 addresses left",
                    )),
                }
            }
            "v6" => {
                self.next_v6 += 1;
                Ok(format!("2001:db8::{:x}", self.next_v6))
            }
            "private_v6" => {
                self.next_flycast += 1;
                Ok(format!("fdaa:0:db8::{:x}", self.next_flycast))
            }
            other => Err(ApiError::bad_request(format!(
                "invalid IP type {other:?}: expected v4, v6, shared_v4 or private_v6"
            ))),
        }
    }

    /// Whether `hostname`'s DNS records are in place (so its certificate is issued).
    pub fn issued(&self, hostname: &str) -> bool {
        self.dns_present.contains(hostname)
    }
}

/// A certificate as Fly answers it: status, and the DNS records it waits for.
pub(crate) fn cert_json(app: &str, net: &AppNet, c: &CertRecord, issued: bool) -> Value {
    let base = c.hostname.strip_prefix("*.").unwrap_or(&c.hostname);
    let token = &digest(&["acme", app, base])[..8];
    let of = |v6: bool| -> Vec<&str> {
        net.ips
            .iter()
            .filter(|i| i.kind != "private_v6" && i.ip.contains(':') == v6)
            .map(|i| i.ip.as_str())
            .collect()
    };
    json!({
        "hostname": c.hostname,
        "configured": issued,
        "acme_requested": true,
        "status": if issued { "issued" } else { "pending" },
        "created_at": rfc3339_secs(c.created_at_ms),
        "dns_requirements": {
            "a": of(false),
            "aaaa": of(true),
            "cname": format!("{app}.fly.dev"),
            "acme_challenge": {
                "name": format!("_acme-challenge.{base}"),
                "target": format!("{base}.{token}.flydns.net"),
            },
        },
    })
}
