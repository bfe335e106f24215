//! Fly Machines API wire types, as the API returns them. In a Machine's config (and its
//! parts), fields flotilla does not model are kept in `extra`, so that an update sends
//! back what it did not mean to change; elsewhere unknown fields are ignored.

use std::collections::BTreeMap;

use litemap::LiteMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// Whether a Machine or volume state is one Fly still lists after a delete: the object
/// is gone for every purpose but the listing.
pub fn is_gone(state: &str) -> bool {
    matches!(state, "destroyed" | "destroying" | "pending_destroy")
}

/// `GET /v1/apps?org_slug=…`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AppList {
    #[serde(default)]
    pub total_apps: u64,
    #[serde(default)]
    pub apps: Vec<App>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct App {
    #[serde(default)]
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Value>,
    /// The owning organization (`GET /v1/apps/{name}` only; lists omit it). Never
    /// written into an observed state, so its fingerprint does not depend on it.
    #[serde(default, skip_serializing)]
    pub organization: Option<AppOrg>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AppOrg {
    #[serde(default)]
    pub slug: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Guest {
    #[serde(default)]
    pub cpu_kind: String,
    #[serde(default)]
    pub cpus: u32,
    #[serde(default)]
    pub memory_mb: u32,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Port {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_https: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Concurrency {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub soft_limit: u32,
    #[serde(default)]
    pub hard_limit: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub internal_port: u16,
    #[serde(default)]
    pub ports: Vec<Port>,
    /// `off`, `stop` or `suspend` (older API versions send a boolean).
    #[serde(
        default,
        deserialize_with = "autostop_de",
        skip_serializing_if = "Option::is_none"
    )]
    pub autostop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_machines_running: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn autostop_de<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(true)) => Some("stop".to_string()),
        Some(Value::Bool(false)) => Some("off".to_string()),
        Some(Value::String(s)) => Some(s),
        _ => None,
    })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Check {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(
        default,
        deserialize_with = "duration_de",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<String>,
    #[serde(
        default,
        deserialize_with = "duration_de",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<String>,
    #[serde(
        default,
        deserialize_with = "duration_de",
        skip_serializing_if = "Option::is_none"
    )]
    pub grace_period: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Durations come as Go strings (`15s`) or as nanoseconds.
fn duration_de<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => n.as_u64().map(|ns| {
            if ns % 1_000_000_000 == 0 {
                format!("{}s", ns / 1_000_000_000)
            } else {
                format!("{}ms", ns / 1_000_000)
            }
        }),
        _ => None,
    })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(default)]
    pub volume: String,
    #[serde(default)]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Restart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineConfig {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<Guest>,
    #[serde(default, skip_serializing_if = "LiteMap::is_empty")]
    pub env: LiteMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, Check>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "LiteMap::is_empty")]
    pub metadata: LiteMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Restart>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageRef {
    #[serde(default)]
    pub registry: String,
    #[serde(default)]
    pub repository: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub digest: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    #[serde(default)]
    pub config: MachineConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<ImageRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Health-check results (`[{name, status, output, updated_at}]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<CheckStatus>>,
}

/// One health check's latest result, as a Machine reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub size_gb: u32,
    #[serde(default)]
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(default)]
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_machine_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_retention: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_backup_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// An app secret as listed: name and Fly's opaque digest, never the value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    pub name: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_round_trips_unknown_fields() {
        let json = r#"{"id":"m1","name":"a","state":"started","region":"iad",
          "config":{"image":"img:1","init":{},"guest":{"cpu_kind":"shared","cpus":1,"memory_mb":256},
            "services":[{"protocol":"tcp","internal_port":80,"autostop":true,"ports":[{"port":443,"handlers":["tls","http"]}]}],
            "checks":{"c":{"type":"http","port":80,"interval":15000000000}},
            "restart":{"policy":"always"}},
          "nonce":"x"}"#;
        let m: Machine = serde_json::from_str(json).unwrap();
        assert_eq!(m.config.services[0].autostop.as_deref(), Some("stop"));
        assert_eq!(m.config.checks["c"].interval.as_deref(), Some("15s"));
        assert!(m.config.extra.contains_key("init"));
        let back = serde_json::to_value(&m).unwrap();
        assert_eq!(back["config"]["init"], serde_json::json!({}));
    }
}
