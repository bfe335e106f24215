//! The pass-through Machine config fields ([`MachineExtras`]) on the wire, both
//! directions: declared fields merged into a config before it is sent, and the fields
//! read back from an observed config with Fly's defaults filled in. Separate from
//! `fly::convert` so the group's mapping is in one place.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::resource::MachineExtras;
use crate::resource::machine_config::FLY_DEFAULT_MAX_RETRIES;
use crate::wire as fly;

/// Writes the declared fields of `e` into `c`. A declared mapping (`init`, `dns`,
/// `metrics`, `stop_config`) replaces the keys it declares and keeps the others Fly has;
/// a declared list or value replaces Fly's.
pub fn apply_extras(e: &MachineExtras, c: &mut fly::MachineConfig) {
    merge(&mut c.extra, "stop_config", e.stop_config.as_ref());
    merge(&mut c.extra, "init", e.init.as_ref());
    merge(&mut c.extra, "dns", e.dns.as_ref());
    merge(&mut c.extra, "metrics", e.metrics.as_ref());
    if let Some(s) = &e.statics {
        c.extra.insert("statics".into(), to_value(s));
    }
    if let Some(a) = e.auto_destroy {
        c.extra.insert("auto_destroy".into(), Value::Bool(a));
    }
    if let Some(s) = &e.schedule {
        c.extra.insert("schedule".into(), Value::String(s.clone()));
    }
    if !e.standbys.is_empty() {
        c.extra.insert("standbys".into(), to_value(&e.standbys));
    }
    if let Some(n) = e.restart_max_retries {
        c.restart.get_or_insert_with(Default::default).max_retries = Some(n);
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Sets the keys `declared` has over the mapping at `key` (created when absent).
fn merge<T: serde::Serialize>(extra: &mut Map<String, Value>, key: &str, declared: Option<&T>) {
    let Some(Value::Object(d)) = declared.map(to_value) else {
        return;
    };
    let slot = extra
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(o) = slot {
        o.extend(d);
    }
}

/// The group's fields as Fly has them, without what only restates Fly's defaults
/// (`init: {}`; see `MachineExtras::without_fly_defaults`; the diff fills them back in).
/// A value Fly sends in a shape flotilla does not read is left out (`None`): a declared
/// value then shows as a change.
pub fn read_extras(c: &fly::MachineConfig) -> MachineExtras {
    fn get<T: DeserializeOwned>(c: &fly::MachineConfig, key: &str) -> Option<T> {
        c.extra
            .get(key)
            .filter(|v| !v.is_null())
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
    MachineExtras {
        stop_config: get(c, "stop_config"),
        restart_max_retries: c.restart.as_ref().and_then(|r| {
            let on_failure = r.policy.as_deref().is_none_or(|p| p == "on-failure");
            r.max_retries
                .filter(|n| !(on_failure && *n == FLY_DEFAULT_MAX_RETRIES))
        }),
        init: get(c, "init"),
        dns: get(c, "dns"),
        metrics: get(c, "metrics"),
        statics: get(c, "statics"),
        auto_destroy: get(c, "auto_destroy"),
        schedule: get(c, "schedule"),
        standbys: get(c, "standbys").unwrap_or_default(),
    }
    .without_fly_defaults()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::machine_config::{GoDuration, Init, StopConfig};
    use serde_json::json;

    #[test]
    fn declared_keys_merge_over_flys_and_read_back() {
        let mut c = fly::MachineConfig::default();
        c.extra
            .insert("init".into(), json!({"swap_size_mb": 512, "cmd": ["old"]}));
        let e = MachineExtras {
            stop_config: Some(StopConfig {
                signal: Some("SIGTERM".into()),
                timeout: GoDuration::parse("90s"),
            }),
            init: Some(Init {
                cmd: Some(vec!["serve".into()]),
                ..Default::default()
            }),
            restart_max_retries: Some(3),
            auto_destroy: Some(false),
            ..Default::default()
        };
        apply_extras(&e, &mut c);
        assert_eq!(
            c.extra["stop_config"],
            json!({"signal": "SIGTERM", "timeout": "1m30s"})
        );
        assert_eq!(
            c.extra["init"],
            json!({"swap_size_mb": 512, "cmd": ["serve"]})
        );
        assert_eq!(c.restart.as_ref().and_then(|r| r.max_retries), Some(3));
        let back = read_extras(&c);
        assert_eq!(back.stop_config, e.stop_config);
        assert_eq!(back.init.as_ref().and_then(|i| i.swap_size_mb), Some(512));
        assert_eq!(back.dns, None, "Fly has no dns");
        assert_eq!(back.auto_destroy, None, "false is Fly's default");
    }

    #[test]
    fn timeouts_in_nanoseconds_read_as_durations() {
        let mut c = fly::MachineConfig::default();
        c.extra.insert(
            "stop_config".into(),
            json!({"signal": "SIGINT", "timeout": 30_000_000_000u64}),
        );
        let back = read_extras(&c);
        assert_eq!(
            back.stop_config.and_then(|s| s.timeout),
            Some(GoDuration::from_secs(30))
        );
    }
}
