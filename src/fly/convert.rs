//! The mapping between resources and Fly's shapes, both directions. Pure functions.
//!
//! Desired resources → Fly request bodies, used by the executor (and to describe what a
//! perfect apply leaves behind): an update starts from the Machine's current config, so
//! fields flotilla does not manage (DNS, Fly's own metadata …) are
//! sent back unchanged. Processes and files are mapped in [`super::procs`].
//!
//! Fly Machines → resources ([`normalize_machine`]), used by `state::interpret`: the
//! fields a spec can declare, read from the server-normalized config.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::platform::{self, CpuKind};
use crate::resource::{
    Address, Check, CheckKind, Concurrency, ConcurrencyKind, Guest, IdleMode, IdlePolicy,
    META_INDEX, META_ROLE, META_SECRETS, MachineSpec, Mount, Port, Protocol, RestartPolicy,
    Service,
};
use crate::wire as fly;

/// The Machine config to send for `m`. `volume_ids` maps volume addresses to Fly IDs;
/// `base` is the current config when updating.
pub fn machine_config(
    m: &MachineSpec,
    volume_ids: &HashMap<Address, String>,
    base: Option<&fly::MachineConfig>,
) -> fly::MachineConfig {
    let mut c = base.cloned().unwrap_or_default();
    c.image = m.image.clone();
    let mut guest = c.guest.take().unwrap_or_default();
    guest.cpu_kind = m.guest.cpu_kind.as_str().to_string();
    guest.cpus = m.guest.cpus;
    guest.memory_mb = m.guest.memory_mb;
    c.guest = Some(guest);
    c.env = m.env.clone();
    if let Some(services) = &m.services {
        c.services = services
            .iter()
            .enumerate()
            .map(|(i, s)| {
                // Keep server-side extras of the service at the same position.
                let extra = base
                    .and_then(|b| b.services.get(i))
                    .map(|b| b.extra.clone())
                    .unwrap_or_default();
                fly::Service {
                    protocol: s.protocol.to_string(),
                    internal_port: s.internal_port,
                    ports: s
                        .ports
                        .iter()
                        .map(|p| fly::Port {
                            port: Some(p.port),
                            handlers: p.handlers.clone(),
                            force_https: p.force_https,
                            extra: Map::new(),
                        })
                        .collect(),
                    autostop: Some(m.idle.mode.as_str().to_string()),
                    autostart: Some(m.idle.autostart),
                    min_machines_running: Some(m.idle.min_running),
                    concurrency: s.concurrency.as_ref().map(|x| fly::Concurrency {
                        kind: x.kind.to_string(),
                        soft_limit: x.soft_limit,
                        hard_limit: x.hard_limit,
                    }),
                    extra,
                }
            })
            .collect();
    }
    if let Some(checks) = &m.checks {
        c.checks = checks
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    fly::Check {
                        kind: Some(v.kind.to_string()),
                        port: Some(v.port),
                        path: v.path.clone(),
                        method: v.method.clone(),
                        interval: v.interval.clone(),
                        timeout: v.timeout.clone(),
                        grace_period: v.grace_period.clone(),
                        extra: Map::new(),
                    },
                )
            })
            .collect();
    }
    c.mounts = m
        .mounts
        .iter()
        .map(|mt| fly::Mount {
            volume: volume_ids.get(&mt.volume).cloned().unwrap_or_default(),
            path: mt.path.clone(),
            name: Some(mt.volume_name.clone()),
            extra: Map::new(),
        })
        .collect();
    // Metadata: keep what others set, replace flotilla's own keys (except the secrets
    // fingerprint, which the executor manages, and the rollout record, replaced only
    // when the desired Machine carries a new one) and the declared ones.
    c.metadata.retain(|k, _| {
        !k.starts_with("flotilla_")
            || k == META_SECRETS
            || k == crate::resource::META_RETIRED
            || k == crate::resource::META_APPLIED_AT
            || crate::resource::is_rollout_key(k)
    });
    for (k, v) in &m.metadata {
        c.metadata.insert(k.clone(), v.clone());
    }
    if let Some(policy) = &m.restart {
        let mut r = c.restart.take().unwrap_or_default();
        r.policy = Some(policy.to_string());
        c.restart = Some(r);
    }
    crate::fly::machine_config::apply_extras(&m.config, &mut c);
    super::procs::write_run(&m.run, &mut c);
    c
}

/// The body of `POST /v1/apps/{app}/machines`. A scheduled or standby Machine is
/// created without starting it (`skip_launch`): Fly starts it on its schedule, or when
/// its primary's host fails.
pub fn create_machine_body(m: &MachineSpec, region: &str, config: &fly::MachineConfig) -> Value {
    let mut body = serde_json::json!({ "name": m.name, "region": region, "config": config });
    if m.started_by_fly() {
        body["skip_launch"] = Value::Bool(true);
    }
    body
}

/// The body of `POST /v1/apps/{app}/volumes`.
pub fn create_volume_body(
    name: &str,
    region: &str,
    size_gb: u32,
    encrypted: bool,
    snapshot_retention: u32,
) -> Value {
    serde_json::json!({
        "name": name, "region": region, "size_gb": size_gb, "encrypted": encrypted,
        "snapshot_retention": snapshot_retention,
    })
}

/// The flotilla view of a Fly Machine: the fields a spec can declare, read from the
/// server-normalized config (the diff compares only what the spec declares).
pub fn normalize_machine(
    m: &fly::Machine,
    volumes: &HashMap<&str, (&Address, &str)>,
) -> MachineSpec {
    let c = &m.config;
    let guest = c.guest.clone().unwrap_or_default();
    let cpu_kind = if guest.cpu_kind == "performance" {
        CpuKind::Performance
    } else {
        CpuKind::Shared
    };
    let cpus = guest.cpus.max(1);
    let size = platform::preset_for(cpu_kind, cpus)
        .map(|p| p.name.to_string())
        .unwrap_or_else(|| format!("{}-{cpus}x", guest.cpu_kind));
    let first = c.services.first();
    let idle = IdlePolicy {
        mode: first
            .and_then(|s| s.autostop.as_deref())
            .and_then(IdleMode::from_name)
            .unwrap_or(IdleMode::Off),
        autostart: first.and_then(|s| s.autostart).unwrap_or(true),
        min_running: first.and_then(|s| s.min_machines_running).unwrap_or(0),
    };
    let services = c
        .services
        .iter()
        .map(|s| Service {
            protocol: if s.protocol.is_empty() {
                Protocol::Tcp
            } else {
                Protocol::from(s.protocol.as_str())
            },
            internal_port: s.internal_port,
            ports: s
                .ports
                .iter()
                .filter_map(|p| {
                    Some(Port {
                        port: p.port?,
                        handlers: p.handlers.clone(),
                        force_https: p.force_https,
                    })
                })
                .collect(),
            concurrency: s.concurrency.as_ref().map(|x| Concurrency {
                kind: ConcurrencyKind::from(x.kind.as_str()),
                soft_limit: x.soft_limit,
                hard_limit: x.hard_limit,
            }),
        })
        .collect();
    let checks = c
        .checks
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Check {
                    kind: v.kind.as_deref().map_or(CheckKind::Http, CheckKind::from),
                    port: v.port.unwrap_or(0),
                    path: v.path.clone(),
                    method: v.method.clone(),
                    interval: v.interval.clone(),
                    timeout: v.timeout.clone(),
                    grace_period: v.grace_period.clone(),
                },
            )
        })
        .collect();
    let mounts = c
        .mounts
        .iter()
        .map(|mt| match volumes.get(mt.volume.as_str()) {
            Some((addr, name)) => Mount {
                volume: (*addr).clone(),
                volume_name: name.to_string(),
                path: mt.path.clone(),
            },
            None => Mount {
                volume: Address::foreign_volume(&mt.volume),
                volume_name: mt.name.clone().unwrap_or_default(),
                path: mt.path.clone(),
            },
        })
        .collect();
    let md = &c.metadata;
    MachineSpec {
        name: m.name.clone(),
        region: m.region.clone(),
        fallback_regions: Vec::new(),
        image: c.image.clone(),
        size,
        guest: Guest {
            cpu_kind,
            cpus,
            memory_mb: guest.memory_mb,
        },
        env: c.env.clone(),
        services: Some(services),
        checks: Some(checks),
        metadata: md.clone(),
        mounts,
        idle,
        restart: c
            .restart
            .as_ref()
            .and_then(|r| r.policy.as_deref())
            .map(RestartPolicy::from),
        config: crate::fly::machine_config::read_extras(c),
        secrets: Vec::new(),
        role: md.get(META_ROLE).cloned().unwrap_or_default(),
        index: md.get(META_INDEX).and_then(|i| i.parse().ok()).unwrap_or(0),
        run: super::procs::read_run(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_normalization() {
        let spec = br#"
version: 1
org: acme
defaults:
  image: img:1
  region: iad
  memory: 1gb
  idle: { mode: suspend, min_running: 0 }
  services: [{ internal_port: 8080, ports: [{ port: 443, handlers: [tls, http] }] }]
  checks: { alive: { port: 8080, path: /health, interval: 15s } }
  env: { A: "1" }
  volume: { name: data, size_gb: 1, mount: /data }
tenants: [{ name: a }]
"#;
        let d = crate::spec::load_bytes(spec, "t.yaml").unwrap().desired;
        let r = d.resources.iter().find(|r| r.machine().is_some()).unwrap();
        let m = r.machine().unwrap();
        let vol: Address = "tenant.a.volume.data[0]".parse().unwrap();
        let ids: HashMap<Address, String> = [(vol.clone(), "vol_1".to_string())].into();
        let mut base = fly::MachineConfig::default();
        base.metadata
            .insert("fly_platform_version".into(), "v2".into());
        base.extra.insert("init".into(), serde_json::json!({}));
        let c = machine_config(m, &ids, Some(&base));
        assert_eq!(
            c.metadata.get("fly_platform_version").map(String::as_str),
            Some("v2")
        );
        assert_eq!(c.extra["init"], serde_json::json!({}));
        assert_eq!(c.services[0].autostop.as_deref(), Some("suspend"));
        assert_eq!(c.mounts[0].volume, "vol_1");
        let machine = fly::Machine {
            id: "m1".into(),
            name: m.name.clone(),
            region: "iad".into(),
            state: "started".into(),
            config: c,
            ..Default::default()
        };
        let vols: HashMap<&str, (&Address, &str)> = [("vol_1", (&vol, "data"))].into();
        let back = normalize_machine(&machine, &vols);
        assert_eq!(back.image, m.image);
        assert_eq!(back.guest, m.guest);
        assert_eq!(back.idle, m.idle);
        assert_eq!(back.mounts, m.mounts);
        assert_eq!(back.env, m.env);
    }
}
