//! Test helpers: the binary under test, and observed-state fixtures built the way Fly
//! would report a fleet after a perfect apply (with the server-side defaults Fly adds).
#![allow(dead_code)]
// Test helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use flotilla::fly::convert::machine_config;
use flotilla::resource::{Address, Desired, Spec};
use flotilla::state::{AppSnapshot, Snapshot};
use flotilla::wire::api as fly;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("flotilla").expect("binary");
    c.current_dir(root());
    c.env_remove("NO_COLOR");
    c
}

/// The binary with colours off, run from the crate root.
pub fn plain_bin() -> assert_cmd::Command {
    let mut c = bin();
    c.env("NO_COLOR", "1");
    c
}

pub fn load(spec: &str) -> Desired {
    flotilla::spec::load_file(&root().join(spec))
        .expect("valid spec")
        .desired
}

fn short_id(prefix: &str, seed: &str) -> String {
    let h = flotilla::spec::hash_bytes(seed.as_bytes());
    format!("{prefix}{}", &h[7..21])
}

/// The org as Fly would list it after applying `desired` perfectly.
pub fn applied_snapshot(desired: &Desired) -> Snapshot {
    let mut apps: Vec<AppSnapshot> = Vec::new();
    let mut vol_ids: HashMap<Address, String> = HashMap::new();
    for r in desired.resources.iter() {
        if let Spec::Volume(_) = &r.spec {
            vol_ids.insert(r.address.clone(), short_id("vol_", r.address.as_str()));
        }
    }
    let mut machine_ids: HashMap<Address, String> = HashMap::new();
    for r in desired.resources.iter() {
        if r.machine().is_some() {
            machine_ids.insert(r.address.clone(), short_id("", r.address.as_str()));
        }
    }
    let app_of = |apps: &mut Vec<AppSnapshot>, name: &str| -> usize {
        if let Some(i) = apps.iter().position(|a| a.app.name == name) {
            return i;
        }
        apps.push(AppSnapshot {
            app: fly::App {
                id: short_id("app_", name),
                name: name.to_string(),
                status: Some("deployed".into()),
                ..Default::default()
            },
            ..Default::default()
        });
        apps.len() - 1
    };
    for r in desired.resources.iter() {
        let i = app_of(&mut apps, &r.app);
        match &r.spec {
            Spec::App(_) | Spec::BackupPolicy(_) => {}
            Spec::Ip(ip) => {
                let n = apps[i].ips.len() + 1;
                let addr = match ip.ip_kind {
                    flotilla::resource::IpKind::SharedV4 => "203.0.113.1".to_string(),
                    flotilla::resource::IpKind::V4 => format!("198.51.100.{n}"),
                    flotilla::resource::IpKind::V6 => format!("2001:db8::{n}"),
                    flotilla::resource::IpKind::PrivateV6 => format!("fdaa:0:db8::{n}"),
                };
                apps[i].ips.push(flotilla::wire::IpAssignment {
                    ip: addr,
                    shared: ip.ip_kind == flotilla::resource::IpKind::SharedV4,
                    network: ip
                        .network
                        .as_ref()
                        .map(|n| flotilla::wire::network::IpNetwork {
                            name: n.clone(),
                            org_slug: None,
                        }),
                    ..Default::default()
                });
            }
            Spec::Certificate(c) => apps[i].certificates.push(flotilla::wire::Certificate {
                hostname: c.hostname.clone(),
                configured: true,
                acme_requested: true,
                status: "issued".into(),
                dns_requirements: None,
            }),
            Spec::Secret(s) => apps[i].secrets.push(fly::Secret {
                name: s.name.clone(),
                digest: short_id("", &format!("secret:{}", r.address)),
                created_at: Some("2026-11-01T10:00:00Z".into()),
                updated_at: Some("2026-11-01T10:00:00Z".into()),
            }),
            Spec::Volume(v) => {
                let backup = desired.resources.iter().find_map(|b| match &b.spec {
                    Spec::BackupPolicy(bp) if bp.volume == r.address => Some(bp.clone()),
                    _ => None,
                });
                apps[i].volumes.push(fly::Volume {
                    id: vol_ids[&r.address].clone(),
                    name: v.name.clone(),
                    state: "created".into(),
                    size_gb: v.size_gb,
                    region: v.region.clone(),
                    zone: Some("a1b2".into()),
                    encrypted: v.encrypted,
                    attached_machine_id: v.machine.as_ref().map(|m| machine_ids[m].clone()),
                    snapshot_retention: backup.as_ref().map(|b| b.snapshot_retention),
                    auto_backup_enabled: backup.as_ref().map(|b| b.auto_backup),
                    created_at: Some("2026-11-01T10:00:00Z".into()),
                });
            }
            Spec::Machine(m) => {
                let mut config = machine_config(m, &vol_ids, None);
                // What Fly adds on its side.
                config.extra.insert("init".into(), serde_json::json!({}));
                config.extra.insert("dns".into(), serde_json::json!({}));
                config
                    .metadata
                    .insert("fly_platform_version".into(), "v2".into());
                config
                    .metadata
                    .insert("fly_process_group".into(), "app".into());
                if config.restart.is_none() {
                    config.restart = Some(fly::Restart {
                        policy: Some("on-failure".into()),
                        max_retries: Some(10),
                    });
                }
                for s in &mut config.services {
                    s.extra
                        .insert("force_instance_key".into(), serde_json::Value::Null);
                }
                let tag = m.image.rsplit(':').next().unwrap_or("latest").to_string();
                apps[i].machines.push(fly::Machine {
                    id: machine_ids[&r.address].clone(),
                    name: m.name.clone(),
                    state: "started".into(),
                    region: m.region.clone(),
                    instance_id: Some(short_id("01J", &format!("inst:{}", r.address))),
                    private_ip: Some("fdaa:0:1::3".into()),
                    config,
                    image_ref: Some(fly::ImageRef {
                        registry: "registry.fly.io".into(),
                        repository: m.image.split(':').next().unwrap_or_default().to_string(),
                        tag,
                        digest: format!(
                            "sha256:{}",
                            &flotilla::spec::hash_bytes(m.image.as_bytes())[7..]
                        ),
                    }),
                    created_at: Some("2026-11-01T10:00:00Z".into()),
                    updated_at: Some("2026-11-01T10:00:05Z".into()),
                    ..Default::default()
                });
            }
        }
    }
    for a in &mut apps {
        a.app.machine_count = Some(a.machines.len() as u64);
        a.app.volume_count = Some(a.volumes.len() as u64);
    }
    Snapshot {
        format_version: 1,
        org: desired.org.clone(),
        observed_at: Some("2026-11-01T12:00:00Z".into()),
        apps,
    }
}

pub fn app_mut<'a>(s: &'a mut Snapshot, name: &str) -> &'a mut AppSnapshot {
    s.apps
        .iter_mut()
        .find(|a| a.app.name == name)
        .expect("app in snapshot")
}

/// Writes a fixture when `UPDATE_FIXTURES=1`, else checks the committed one is current.
pub fn check_fixture(path: &Path, snap: &Snapshot) {
    let json = serde_json::to_string_pretty(snap).expect("json") + "\n";
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(path, &json).expect("write fixture");
        return;
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == json,
        "{} is out of date; regenerate with UPDATE_FIXTURES=1 cargo test --test plan_states",
        path.display()
    );
}
