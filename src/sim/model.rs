//! The simulator's own serde types for Fly's Machines API (requests and the parts of
//! responses that are typed). Unknown fields of a Machine config are kept and echoed.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// `services[].autostop`: Fly accepts a bool (old) or a string (new), and for
/// compatibility answers `false`/`true` for off/stop and `"suspend"` for suspend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Autostop {
    Off,
    Stop,
    Suspend,
}

impl Serialize for Autostop {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Autostop::Off => s.serialize_bool(false),
            Autostop::Stop => s.serialize_bool(true),
            Autostop::Suspend => s.serialize_str("suspend"),
        }
    }
}

impl<'de> Deserialize<'de> for Autostop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(false) => Ok(Autostop::Off),
            Value::Bool(true) => Ok(Autostop::Stop),
            Value::String(s) => match s.as_str() {
                "off" | "" => Ok(Autostop::Off),
                "stop" => Ok(Autostop::Stop),
                "suspend" => Ok(Autostop::Suspend),
                other => Err(de::Error::custom(format!(
                    "invalid autostop value {other:?}; expected \"off\", \"stop\" or \"suspend\""
                ))),
            },
            other => Err(de::Error::custom(format!(
                "invalid autostop value {other}; expected a string or a boolean"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Guest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Restart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_gb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_port: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostop: Option<Autostop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autostart: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_machines_running: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<Value>>,
    /// Fly always answers this key, `null` when unset.
    #[serde(default)]
    pub force_instance_key: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A Machine config. Typed where the simulator acts on a field; the rest is echoed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Fly always answers `init`, `{}` when unset.
    #[serde(default, deserialize_with = "null_as_default")]
    pub init: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest: Option<Guest>,
    /// Deprecated preset name; resolved into `guest` and dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<Service>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Restart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_destroy: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The Machines this one stands by for: it stays stopped, and Fly starts it when
    /// one of theirs hosts fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standbys: Option<Vec<String>>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl MachineConfig {
    /// The autostop mode the Fly Proxy would apply: the first service with one set.
    pub fn autostop(&self) -> Autostop {
        self.services
            .iter()
            .flatten()
            .filter_map(|s| s.autostop)
            .find(|a| *a != Autostop::Off)
            .unwrap_or(Autostop::Off)
    }

    pub fn memory_mb(&self) -> u32 {
        self.guest.as_ref().and_then(|g| g.memory_mb).unwrap_or(256)
    }

    /// A one-shot Machine: destroyed when it exits, never restarted.
    pub fn is_one_shot(&self) -> bool {
        self.auto_destroy == Some(true)
            && self
                .restart
                .as_ref()
                .and_then(|r| r.policy.as_deref())
                .is_some_and(|p| p == "no")
    }

    /// A standby Machine (`standbys` names a Machine): never started by a create or an
    /// update.
    pub fn is_standby(&self) -> bool {
        self.standbys.as_ref().is_some_and(|s| !s.is_empty())
    }

    pub fn mounted_volume(&self) -> Option<&str> {
        self.mounts
            .iter()
            .flatten()
            .find_map(|m| m.volume.as_deref())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateAppRequest {
    #[serde(default)]
    pub app_name: Option<String>,
    /// Fly's Go client sends `name`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub org_slug: Option<String>,
    #[serde(default)]
    pub network: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateMachineRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub config: Option<MachineConfig>,
    #[serde(default)]
    pub skip_launch: Option<bool>,
    #[serde(default)]
    pub skip_service_registration: Option<bool>,
    #[serde(default)]
    pub lease_ttl: Option<u64>,
    #[serde(default)]
    pub current_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LeaseRequest {
    #[serde(default)]
    pub ttl: Option<u64>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MetadataValue {
    pub value: String,
}

/// `updateMetadataRequest`: keys to set (`null` or `""` removes one), optionally
/// guarded by the Machine's version.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdateMetadataRequest {
    #[serde(default)]
    pub metadata: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub machine_version: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CreateVolumeRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub size_gb: Option<u32>,
    #[serde(default)]
    pub encrypted: Option<bool>,
    #[serde(default)]
    pub snapshot_retention: Option<u32>,
    #[serde(default)]
    pub auto_backup_enabled: Option<bool>,
    #[serde(default)]
    pub fstype: Option<String>,
    #[serde(default)]
    pub require_unique_zone: Option<bool>,
    #[serde(default)]
    pub snapshot_id: Option<String>,
    #[serde(default)]
    pub source_volume_id: Option<String>,
    /// Parsed only so that a wrongly typed `compute` is a 400.
    #[serde(default)]
    #[allow(dead_code)]
    pub compute: Option<Guest>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdateVolumeRequest {
    #[serde(default)]
    pub snapshot_retention: Option<u32>,
    #[serde(default)]
    pub auto_backup_enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExtendVolumeRequest {
    pub size_gb: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SetSecretRequest {
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UpdateSecretsRequest {
    pub values: BTreeMap<String, Option<String>>,
}

/// `StopRequest`: both fields optional; a signal must be one Fly knows and the timeout
/// a duration.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StopRequest {
    #[serde(default)]
    pub signal: Option<Value>,
    #[serde(default)]
    pub timeout: Option<Value>,
}

impl StopRequest {
    pub(crate) fn check(&self) -> Result<(), super::error::ApiError> {
        if let Some(sig) = self.signal.as_ref().filter(|s| s.as_str() != Some(""))
            && super::gotypes::signal(sig).is_none()
        {
            return Err(super::error::ApiError::bad_request(format!(
                "invalid signal {sig}: expected one of {}",
                super::gotypes::SIGNALS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if let Some(t) = self.timeout.as_ref().filter(|t| t.as_str() != Some("")) {
            super::gotypes::check_duration("timeout", t)?;
        }
        Ok(())
    }
}

/// `fly.MachineEvent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineEvent {
    /// Unique within the Machine and ordered like the events (a ULID-shaped id: the
    /// time, then a per-Machine sequence); `wait?from_event_id=` compares them. Empty
    /// for events saved by an older simulator.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub source: String,
    pub timestamp: i64,
    /// `{"exit_event": {"exit_code": N, ...}}` on the exit of a one-shot Machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
}

/// `ImageRef`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    pub digest: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autostop_accepts_bool_and_string_and_answers_compat() {
        let s: Service = serde_json::from_str(r#"{"autostop":"stop"}"#).unwrap();
        assert_eq!(s.autostop, Some(Autostop::Stop));
        let out = serde_json::to_value(&s).unwrap();
        assert_eq!(out["autostop"], Value::Bool(true));
        assert_eq!(out["force_instance_key"], Value::Null);
        let s: Service = serde_json::from_str(r#"{"autostop":"suspend"}"#).unwrap();
        assert_eq!(serde_json::to_value(&s).unwrap()["autostop"], "suspend");
        let s: Service = serde_json::from_str(r#"{"autostop":false}"#).unwrap();
        assert_eq!(s.autostop, Some(Autostop::Off));
        assert!(serde_json::from_str::<Service>(r#"{"autostop":"sleep"}"#).is_err());
        assert!(serde_json::from_str::<Service>(r#"{"autostop":3}"#).is_err());
    }

    #[test]
    fn config_keeps_unknown_fields_and_always_has_init() {
        let c: MachineConfig = serde_json::from_str(
            r#"{"image":"nginx","stop_config":{"signal":"SIGTERM"},"init":null}"#,
        )
        .unwrap();
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["stop_config"]["signal"], "SIGTERM");
        assert_eq!(v["init"], serde_json::json!({}));
        assert!(serde_json::from_str::<MachineConfig>(r#"{"guest":{"cpus":"two"}}"#).is_err());
    }
}
