//! Observed state: a snapshot of what exists in a Fly organization, and its
//! interpretation against a desired state.
//!
//! A [`Snapshot`] holds the API's own objects (apps with their Machines, volumes and
//! secret digests), exactly as the live observer lists them; a `--state FILE` is this
//! JSON. [`interpret`] decides, purely, which of those objects flotilla owns and at which
//! address:
//!
//! - an app is managed when the spec's naming produces its name, or when its Machines
//!   carry `flotilla_managed=true` (a tenant removed from the spec);
//! - a Machine is managed when it carries flotilla's metadata; a Machine without it is
//!   *adopted* when it fills an empty slot of a managed app (same name, or the only
//!   candidate in an allowed region) — the plan then shows the metadata it will add;
//! - a volume is managed when its name is a declared volume name of a managed app, or
//!   when a managed Machine mounts it;
//! - a secret is managed when it is declared, or listed in a managed Machine's
//!   `flotilla_secrets` metadata.
//!
//! Everything else is reported as unmanaged and never touched.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::fly::types as fly;
use crate::platform::{self, CpuKind};
use crate::resource::{
    Address, AppSpec, BackupSpec, Check, Concurrency, DEFAULT_FLEET, Desired, Guest, IdleMode,
    IdlePolicy, META_FLEET, META_INDEX, META_MANAGED, META_PROTECT, META_ROLE, META_SECRETS,
    META_TENANT, MachineSpec, Mount, Owner, Port, Resource, ResourceSet, SecretSource, SecretSpec,
    Service, Spec, VolumeSpec, is_name,
};

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
    pub app: fly::App,
    #[serde(default)]
    pub machines: Vec<fly::Machine>,
    #[serde(default)]
    pub volumes: Vec<fly::Volume>,
    #[serde(default)]
    pub secrets: Vec<fly::Secret>,
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

/// An object flotilla saw but does not own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub app: String,
    pub kind: String,
    pub id: String,
    pub name: String,
    pub reason: String,
}

/// The observed state, at the same addresses as the desired one.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub resources: ResourceSet,
    /// Addresses matched without flotilla metadata (adoption).
    pub adopted: HashSet<Address>,
    pub unmanaged: Vec<Unmanaged>,
    /// The raw Machines and volumes, by address, for the executor.
    pub machines: HashMap<Address, fly::Machine>,
    pub volumes: HashMap<Address, fly::Volume>,
    /// `sha256:…` of the managed resources: changes when anything flotilla manages changes.
    pub fingerprint: String,
}

fn is_gone(state: &str) -> bool {
    matches!(state, "destroyed" | "destroying" | "pending_destroy")
}

fn carries_flotilla(m: &fly::Machine) -> bool {
    m.config.metadata.get(META_MANAGED).map(String::as_str) == Some("true")
}

/// Managed by flotilla for this fleet (a Machine without a fleet key is `default`'s).
fn is_managed(m: &fly::Machine, fleet: &str) -> bool {
    carries_flotilla(m)
        && m.config
            .metadata
            .get(META_FLEET)
            .map(String::as_str)
            .unwrap_or(DEFAULT_FLEET)
            == fleet
}

/// The address a managed Machine's metadata points at.
fn machine_address(app: &str, m: &fly::Machine) -> Option<Address> {
    let md = &m.config.metadata;
    let index: u32 = md.get(META_INDEX)?.parse().ok()?;
    let owner = match md.get(META_TENANT) {
        Some(t) if is_name(t) => Owner::Tenant(t),
        Some(_) => return None,
        None => Owner::SharedApp(app),
    };
    Some(Address::machine(&owner, index))
}

/// Desired-side lookups for one app.
#[derive(Default)]
struct AppIndex<'d> {
    app: Option<&'d Resource>,
    machines_by_name: HashMap<&'d str, &'d Resource>,
    machines: Vec<&'d Resource>,
    volumes_by_name: HashMap<&'d str, &'d Resource>,
    secrets: HashMap<&'d str, &'d Resource>,
}

/// Decides what in `snap` flotilla owns and maps it to addresses.
pub fn interpret(snap: &Snapshot, desired: &Desired) -> Observed {
    if snap.apps.is_empty() {
        let resources = ResourceSet::default();
        return Observed {
            fingerprint: fingerprint(&resources),
            resources,
            ..Observed::default()
        };
    }
    let mut by_app: HashMap<&str, AppIndex<'_>> = HashMap::new();
    for r in desired.resources.iter() {
        let e = by_app.entry(r.app.as_str()).or_default();
        match &r.spec {
            Spec::App(_) => e.app = Some(r),
            Spec::Machine(m) => {
                e.machines_by_name.insert(m.name.as_str(), r);
                e.machines.push(r);
            }
            Spec::Volume(v) => {
                e.volumes_by_name.insert(v.name.as_str(), r);
            }
            Spec::Secret(s) => {
                e.secrets.insert(s.name.as_str(), r);
            }
            Spec::BackupPolicy(_) => {}
        }
    }
    let empty = AppIndex::default();
    let mut out = Observed::default();
    let mut resources: Vec<Resource> = Vec::new();

    let declared_apps: HashSet<&str> = desired.apps.iter().map(String::as_str).collect();
    let hosting_apps: HashSet<&str> = desired.tenants.iter().map(|t| t.app.as_str()).collect();
    for a in &snap.apps {
        let name = a.app.name.as_str();
        let idx = by_app.get(name).unwrap_or(&empty);
        let live: Vec<&fly::Machine> = a.machines.iter().filter(|m| !is_gone(&m.state)).collect();
        let fleet = desired.fleet.as_str();
        let managed: Vec<&fly::Machine> = live
            .iter()
            .copied()
            .filter(|m| is_managed(m, fleet))
            .collect();
        let declared = declared_apps.contains(name);
        if !declared && managed.is_empty() || !is_name(name) {
            continue; // not ours: never listed, never touched
        }

        // The app itself.
        let (app_address, app_tenant, shared) = match idx.app {
            Some(r) => (
                r.address.clone(),
                r.tenant.clone(),
                matches!(&r.spec, Spec::App(s) if s.shared),
            ),
            None => {
                // Declared only as the host of tenants, or removed from the spec.
                let tenants: HashSet<&str> = managed
                    .iter()
                    .filter_map(|m| m.config.metadata.get(META_TENANT).map(String::as_str))
                    .filter(|t| is_name(t))
                    .collect();
                let all_tenant_role = managed.iter().all(|m| {
                    m.config.metadata.get(META_ROLE).map(String::as_str) == Some("tenant")
                });
                let hosted = hosting_apps.contains(name);
                if !hosted && all_tenant_role && tenants.len() == 1 {
                    let t = tenants
                        .iter()
                        .next()
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    (Address::app(&Owner::Tenant(&t)), Some(t), false)
                } else {
                    (Address::app(&Owner::SharedApp(name)), None, true)
                }
            }
        };
        let app_prevent = idx.app.is_some_and(|r| r.prevent_destroy);
        resources.push(Resource {
            address: app_address,
            tenant: app_tenant.clone(),
            app: name.to_string(),
            prevent_destroy: app_prevent,
            id: (!a.app.id.is_empty()).then(|| a.app.id.clone()),
            usage: None,
            spec: Spec::App(AppSpec {
                name: name.to_string(),
                org: snap.org.clone(),
                shared,
            }),
        });

        // Machines: managed ones by metadata, duplicates of a slot kept apart.
        let mut slots: BTreeMap<Address, &fly::Machine> = BTreeMap::new();
        let mut extra_machines: Vec<(Address, &fly::Machine)> = Vec::new();
        let mut sorted = managed.clone();
        sorted.sort_by(|x, y| (&x.created_at, &x.id).cmp(&(&y.created_at, &y.id)));
        for m in sorted {
            match machine_address(name, m) {
                Some(addr) if !slots.contains_key(&addr) => {
                    slots.insert(addr, m);
                }
                Some(addr) => {
                    let dup = addr.duplicate(&m.id).unwrap_or(addr);
                    extra_machines.push((dup, m));
                }
                None => extra_machines.push((
                    Address::unindexed_machine(&Owner::SharedApp(name), &m.id),
                    m,
                )),
            }
        }
        // Adoption of Machines without metadata into empty declared slots.
        // Machines of another fleet are never adopted nor touched.
        for m in live
            .iter()
            .filter(|m| carries_flotilla(m) && !is_managed(m, fleet))
        {
            let other = m
                .config
                .metadata
                .get(META_FLEET)
                .map(String::as_str)
                .unwrap_or(DEFAULT_FLEET);
            out.unmanaged.push(Unmanaged {
                app: name.to_string(),
                kind: "machine".into(),
                id: m.id.clone(),
                name: m.name.clone(),
                reason: format!("managed by fleet `{other}`; left alone"),
            });
        }
        let mut unmanaged_machines: Vec<&fly::Machine> = live
            .iter()
            .copied()
            .filter(|m| !carries_flotilla(m))
            .collect();
        let empty_slots: Vec<&Resource> = idx
            .machines
            .iter()
            .copied()
            .filter(|r| !slots.contains_key(&r.address))
            .collect();
        let mut still_empty = Vec::new();
        for slot in empty_slots {
            if let Some(pos) = unmanaged_machines.iter().position(|m| {
                idx.machines_by_name
                    .get(m.name.as_str())
                    .is_some_and(|r| r.address == slot.address)
            }) {
                let m = unmanaged_machines.remove(pos);
                out.adopted.insert(slot.address.clone());
                slots.insert(slot.address.clone(), m);
            } else {
                still_empty.push(slot);
            }
        }
        if still_empty.len() == 1 && unmanaged_machines.len() == 1 {
            let slot = still_empty[0];
            let m = unmanaged_machines[0];
            let fits = slot
                .machine()
                .is_some_and(|d| d.region == m.region || d.fallback_regions.contains(&m.region));
            if fits {
                out.adopted.insert(slot.address.clone());
                slots.insert(slot.address.clone(), m);
                unmanaged_machines.clear();
            }
        }
        for m in unmanaged_machines {
            let collides = idx.machines_by_name.contains_key(m.name.as_str());
            out.unmanaged.push(Unmanaged {
                app: name.to_string(),
                kind: "machine".into(),
                id: m.id.clone(),
                name: m.name.clone(),
                reason: if collides {
                    "has a declared Machine's name but no flotilla metadata and a different shape; left alone".into()
                } else {
                    "no flotilla metadata; left alone".into()
                },
            });
        }

        // Volumes: by declared name, preferring the one attached to the slot's Machine.
        let machine_ids: HashMap<&str, &Address> = slots
            .iter()
            .map(|(addr, m)| (m.id.as_str(), addr))
            .collect();
        let mut vol_addr: HashMap<&str, Address> = HashMap::new();
        let live_vols: Vec<&fly::Volume> =
            a.volumes.iter().filter(|v| !is_gone(&v.state)).collect();
        let mut taken: HashSet<&str> = HashSet::new();
        for (vname, r) in &idx.volumes_by_name {
            let Some(spec) = r.volume() else { continue };
            let slot_machine = spec
                .machine
                .as_ref()
                .and_then(|ma| slots.get(ma))
                .map(|m| m.id.as_str());
            let mut candidates: Vec<&fly::Volume> = live_vols
                .iter()
                .copied()
                .filter(|v| v.name == *vname && !taken.contains(v.id.as_str()))
                .collect();
            candidates.sort_by(|x, y| {
                let rank = |v: &fly::Volume| match (&v.attached_machine_id, slot_machine) {
                    (Some(att), Some(sm)) if att == sm => 0,
                    (None, _) => 1,
                    _ => 2,
                };
                (rank(x), &x.created_at, &x.id).cmp(&(rank(y), &y.created_at, &y.id))
            });
            if let Some(v) = candidates.first() {
                // A volume attached to some other Machine is not this slot's volume.
                let attached_elsewhere = v
                    .attached_machine_id
                    .as_deref()
                    .is_some_and(|att| Some(att) != slot_machine && machine_ids.contains_key(att));
                if !attached_elsewhere {
                    taken.insert(v.id.as_str());
                    vol_addr.insert(v.id.as_str(), r.address.clone());
                    if !is_managed_volume(v, &slots, fleet) {
                        out.adopted.insert(r.address.clone());
                    }
                }
            }
        }
        for v in &live_vols {
            if taken.contains(v.id.as_str()) {
                continue;
            }
            // Mounted by a managed Machine: ours, at that Machine's slot.
            let owner_slot = v
                .attached_machine_id
                .as_deref()
                .and_then(|att| machine_ids.get(att))
                .map(|a| (*a).clone())
                .or_else(|| {
                    slots
                        .iter()
                        .chain(extra_machines.iter().map(|(a, m)| (a, m)))
                        .find_map(|(addr, m)| {
                            m.config
                                .mounts
                                .iter()
                                .any(|mt| mt.volume == v.id)
                                .then(|| addr.clone())
                        })
                });
            let slot_volume = owner_slot
                .filter(|_| is_name(&v.name))
                .and_then(|maddr| maddr.slot_volume(&v.name));
            match slot_volume {
                Some(plain) => {
                    let addr = if vol_addr.values().any(|a| a == &plain) {
                        plain.duplicate(&v.id).unwrap_or(plain)
                    } else {
                        plain
                    };
                    taken.insert(v.id.as_str());
                    vol_addr.insert(v.id.as_str(), addr);
                }
                None => out.unmanaged.push(Unmanaged {
                    app: name.to_string(),
                    kind: "volume".into(),
                    id: v.id.clone(),
                    name: v.name.clone(),
                    reason: "not a declared volume name and not mounted by a managed Machine; left alone".into(),
                }),
            }
        }
        for v in &live_vols {
            let Some(addr) = vol_addr.get(v.id.as_str()) else {
                continue;
            };
            let desired_vol = desired.resources.get(addr);
            let machine = desired_vol
                .and_then(|r| r.volume())
                .and_then(|s| s.machine.clone());
            let tenant = desired_vol
                .and_then(|r| r.tenant.clone())
                .or_else(|| addr.tenant().map(str::to_string));
            let prevent = desired_vol.is_some_and(|r| r.prevent_destroy);
            resources.push(Resource {
                address: addr.clone(),
                tenant: tenant.clone(),
                app: name.to_string(),
                prevent_destroy: prevent,
                id: Some(v.id.clone()),
                usage: None,
                spec: Spec::Volume(VolumeSpec {
                    name: v.name.clone(),
                    region: v.region.clone(),
                    fallback_regions: Vec::new(),
                    size_gb: v.size_gb,
                    encrypted: v.encrypted,
                    machine,
                    attached_machine_id: v.attached_machine_id.clone(),
                }),
            });
            let Some(baddr) = addr.backup_of_volume() else {
                continue;
            };
            let before_destroy = desired.resources.get(&baddr).and_then(|r| match &r.spec {
                Spec::BackupPolicy(b) => Some(b.snapshot_before_destroy),
                _ => None,
            });
            resources.push(Resource {
                address: baddr,
                tenant,
                app: name.to_string(),
                prevent_destroy: prevent,
                id: Some(v.id.clone()),
                usage: None,
                spec: Spec::BackupPolicy(BackupSpec {
                    volume: addr.clone(),
                    snapshot_retention: v
                        .snapshot_retention
                        .unwrap_or(platform::SNAPSHOT_RETENTION_DEFAULT),
                    auto_backup: v.auto_backup_enabled.unwrap_or(true),
                    // Client-side policy, not observable: the declared value, else on.
                    snapshot_before_destroy: before_destroy.unwrap_or(true),
                }),
            });
            out.volumes.insert(addr.clone(), (*v).clone());
        }

        // Machines into resources (after volumes, so mounts resolve to addresses).
        let vol_by_id: HashMap<&str, (&Address, &str)> = live_vols
            .iter()
            .filter_map(|v| {
                vol_addr
                    .get(v.id.as_str())
                    .map(|a| (v.id.as_str(), (a, v.name.as_str())))
            })
            .collect();
        let mut secret_names_listed: HashSet<String> = HashSet::new();
        // Fingerprints the managed Machines recorded, per secret: known when they agree.
        let mut recorded: HashMap<String, HashSet<String>> = HashMap::new();
        let managed_slots = slots.values().filter(|m| is_managed(m, fleet)).count();
        let mut recorded_by: HashMap<String, usize> = HashMap::new();
        for m in slots.values().filter(|m| is_managed(m, fleet)) {
            if let Some(list) = m.config.metadata.get(META_SECRETS) {
                for (n, fp) in crate::secrets::decode(list) {
                    *recorded_by.entry(n.clone()).or_default() += 1;
                    recorded.entry(n).or_default().insert(fp);
                }
            }
        }
        for (addr, m) in slots
            .iter()
            .map(|(a, m)| (a.clone(), *m))
            .chain(extra_machines.iter().map(|(a, m)| (a.clone(), *m)))
        {
            if let Some(list) = m.config.metadata.get(META_SECRETS) {
                for item in list.split(',') {
                    if let Some((n, _)) = item.split_once(':') {
                        secret_names_listed.insert(n.to_string());
                    }
                }
            }
            let d = desired.resources.get(&addr);
            let spec = normalize_machine(m, &vol_by_id);
            resources.push(Resource {
                address: addr.clone(),
                tenant: d
                    .and_then(|r| r.tenant.clone())
                    .or_else(|| m.config.metadata.get(META_TENANT).cloned()),
                app: name.to_string(),
                prevent_destroy: d.is_some_and(|r| r.prevent_destroy),
                id: Some(m.id.clone()),
                usage: None,
                spec: Spec::Machine(Box::new(spec)),
            });
            out.machines.insert(addr, m.clone());
        }

        // Secrets.
        for s in &a.secrets {
            let addr = match idx.secrets.get(s.name.as_str()) {
                Some(r) => r.address.clone(),
                None if is_name(&s.name)
                    && (secret_names_listed.contains(&s.name)
                        || idx.app.is_none()
                            && !managed.is_empty()
                            && !hosting_apps.contains(name)) =>
                {
                    match &app_tenant {
                        Some(t) if !shared => Address::secret(&Owner::Tenant(t), &s.name),
                        _ => Address::secret(&Owner::SharedApp(name), &s.name),
                    }
                }
                None => {
                    out.unmanaged.push(Unmanaged {
                        app: name.to_string(),
                        kind: "secret".into(),
                        id: s.name.clone(),
                        name: s.name.clone(),
                        reason: "not declared in the spec; left alone".into(),
                    });
                    continue;
                }
            };
            resources.push(Resource {
                address: addr,
                tenant: app_tenant.clone(),
                app: name.to_string(),
                prevent_destroy: false,
                id: None,
                usage: None,
                spec: Spec::Secret(SecretSpec {
                    name: s.name.clone(),
                    source: SecretSource::Unknown,
                    digest: Some(s.digest.clone()),
                    fingerprint: recorded
                        .get(&s.name)
                        .filter(|fps| {
                            fps.len() == 1 && recorded_by.get(&s.name) == Some(&managed_slots)
                        })
                        .and_then(|fps| fps.iter().next().cloned()),
                }),
            });
        }
    }
    // Protection recorded on Machines outlives the spec: it covers everything of their
    // owner (tenant or shared app), declared or not.
    let protected: HashSet<Owner<'_>> = out
        .machines
        .iter()
        .filter(|(_, m)| m.config.metadata.get(META_PROTECT).map(String::as_str) == Some("true"))
        .filter_map(|(a, _)| a.owner())
        .collect();
    if !protected.is_empty() {
        for r in &mut resources {
            if r.address.owner().is_some_and(|o| protected.contains(&o))
                || (r.kind() == crate::resource::Kind::App
                    && r.tenant
                        .as_ref()
                        .is_some_and(|t| protected.contains(&Owner::Tenant(t))))
            {
                r.prevent_destroy = true;
            }
        }
    }
    out.resources = ResourceSet::new(resources);
    out.fingerprint = fingerprint(&out.resources);
    out
}

fn is_managed_volume(
    v: &fly::Volume,
    slots: &BTreeMap<Address, &fly::Machine>,
    fleet: &str,
) -> bool {
    slots.values().any(|m| {
        is_managed(m, fleet)
            && (v.attached_machine_id.as_deref() == Some(m.id.as_str())
                || m.config.mounts.iter().any(|mt| mt.volume == v.id))
    })
}

/// `sha256:…` of a resource set's canonical JSON (sorted by address, so the order the
/// API lists things in does not matter).
///
/// Should the set ever fail to serialize, the fingerprint is one that matches nothing,
/// so a saved plan is refused as stale rather than accepted against an unknown state.
pub fn fingerprint(set: &ResourceSet) -> String {
    match serde_json::to_vec(&set.sorted()) {
        Ok(json) => crate::spec::hash_bytes(&json),
        Err(e) => {
            static UNIQUE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = UNIQUE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("unavailable-{}-{n} ({e})", std::process::id())
        }
    }
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
        mode: match first.and_then(|s| s.autostop.as_deref()) {
            Some("stop") => IdleMode::Stop,
            Some("suspend") => IdleMode::Suspend,
            _ => IdleMode::Off,
        },
        autostart: first.and_then(|s| s.autostart).unwrap_or(true),
        min_running: first.and_then(|s| s.min_machines_running).unwrap_or(0),
    };
    let services = c
        .services
        .iter()
        .map(|s| Service {
            protocol: if s.protocol.is_empty() {
                "tcp".into()
            } else {
                s.protocol.clone()
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
                kind: x.kind.clone(),
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
                    kind: v.kind.clone().unwrap_or_else(|| "http".into()),
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
        restart: c.restart.as_ref().and_then(|r| r.policy.clone()),
        secrets: Vec::new(),
        role: md.get(META_ROLE).cloned().unwrap_or_default(),
        index: md.get(META_INDEX).and_then(|i| i.parse().ok()).unwrap_or(0),
    }
}
