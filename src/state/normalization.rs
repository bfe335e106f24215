//! Normalization: the owned Fly objects as resources at their addresses — the app,
//! volumes with their snapshot policies, Machines (through
//! [`crate::fly::convert::normalize_machine`]), secrets with the fingerprint the
//! app's Machines recorded, IP assignments and certificates — and `prevent_destroy`
//! recorded on Machines spread to everything of their owner.

use std::collections::{HashMap, HashSet};

use super::{AppView, Context, Observed, Unmanaged, UnmanagedKind};
use crate::fly::convert::normalize_machine;
use crate::platform;
use crate::resource::{
    Address, AppSpec, BackupSpec, CertSpec, CertStatus, IpKind, IpSpec, Kind, META_PROTECT,
    META_SECRETS, META_TENANT, Owner, Resource, SecretSource, SecretSpec, Spec, VolumeSpec,
    is_name,
};
use crate::wire as fly;

/// Everything of one owned app, in order: the app, volumes and their snapshot
/// policies, Machines, secrets.
pub(super) fn app_resources(
    cx: &Context<'_>,
    view: &AppView<'_>,
    out: &mut Observed,
    resources: &mut Vec<Resource>,
) {
    resources.push(app_resource(cx, view));
    volume_resources(cx, view, out, resources);
    machine_resources(cx, view, out, resources);
    secret_resources(cx, view, out, resources);
    network_resources(view, resources);
}

/// The app's IP assignments (the first of each kind at `OWNER.ip#KIND`, further ones at
/// `OWNER.ip#KIND@IP`; egress addresses are not managed) and certificates.
fn network_resources(view: &AppView<'_>, resources: &mut Vec<Resource>) {
    let Some(owner) = view.app_address.owner() else {
        return;
    };
    let mut seen: HashSet<IpKind> = HashSet::new();
    for a in view.snap.ips.iter().filter(|a| !a.egress) {
        let kind = IpKind::of_assignment(&a.ip, a.shared);
        let address = if seen.insert(kind) {
            Address::ip(&owner, kind)
        } else {
            Address::extra_ip(&owner, kind, &a.ip)
        };
        let network = a
            .network
            .as_ref()
            .map(|n| n.name.clone())
            .filter(|n| !n.is_empty());
        resources.push(network_resource(
            view,
            address,
            Some(a.ip.clone()),
            Spec::Ip(Box::new(IpSpec {
                ip_kind: kind,
                network,
                ip: Some(a.ip.clone()),
            })),
        ));
    }
    for c in &view.snap.certificates {
        resources.push(network_resource(
            view,
            Address::certificate(&owner, &c.hostname),
            Some(c.hostname.clone()),
            Spec::Certificate(Box::new(CertSpec {
                hostname: c.hostname.clone(),
                status: Some(CertStatus::from_fly(&c.status, c.configured)),
            })),
        ));
    }
}

fn network_resource(
    view: &AppView<'_>,
    address: Address,
    id: Option<String>,
    spec: Spec,
) -> Resource {
    Resource {
        address,
        tenant: view.app_tenant.clone(),
        app: view.name.to_string(),
        prevent_destroy: false,
        id,
        usage: None,
        spec,
    }
}

fn app_resource(cx: &Context<'_>, view: &AppView<'_>) -> Resource {
    let a = &view.snap.app;
    Resource {
        address: view.app_address.clone(),
        tenant: view.app_tenant.clone(),
        app: view.name.to_string(),
        prevent_destroy: view.idx.app.is_some_and(|r| r.prevent_destroy),
        id: (!a.id.is_empty()).then(|| a.id.clone()),
        usage: None,
        spec: Spec::App(Box::new(AppSpec {
            name: view.name.to_string(),
            org: cx.org.to_string(),
            shared: view.shared,
        })),
    }
}

fn volume_resources(
    cx: &Context<'_>,
    view: &AppView<'_>,
    out: &mut Observed,
    resources: &mut Vec<Resource>,
) {
    for v in &view.live_vols {
        let Some(addr) = view.vol_addr.get(v.id.as_str()) else {
            continue;
        };
        let desired_vol = cx.desired.resources.get(addr);
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
            app: view.name.to_string(),
            prevent_destroy: prevent,
            id: Some(v.id.clone()),
            usage: None,
            spec: Spec::Volume(Box::new(VolumeSpec {
                name: v.name.clone(),
                region: v.region.clone(),
                fallback_regions: Vec::new(),
                size_gb: v.size_gb,
                encrypted: v.encrypted,
                machine,
                attached_machine_id: v.attached_machine_id.clone(),
                aliases: Vec::new(),
                restore_from: None,
            })),
        });
        if let Some(baddr) = addr.backup_of_volume() {
            let policy = backup_policy(cx, v, addr, &baddr);
            resources.push(Resource {
                address: baddr,
                tenant,
                app: view.name.to_string(),
                prevent_destroy: prevent,
                id: Some(v.id.clone()),
                usage: None,
                spec: Spec::BackupPolicy(Box::new(policy)),
            });
        }
        out.volumes.insert(addr.clone(), (*v).clone());
    }
}

fn backup_policy(
    cx: &Context<'_>,
    v: &fly::Volume,
    volume: &Address,
    address: &Address,
) -> BackupSpec {
    let before_destroy = cx
        .desired
        .resources
        .get(address)
        .and_then(|r| match &r.spec {
            Spec::BackupPolicy(b) => Some(b.snapshot_before_destroy),
            _ => None,
        });
    BackupSpec {
        volume: volume.clone(),
        snapshot_retention: v
            .snapshot_retention
            .unwrap_or(platform::SNAPSHOT_RETENTION_DEFAULT),
        auto_backup: v.auto_backup_enabled.unwrap_or(true),
        // Client-side policy, not observable: the declared value, else on.
        snapshot_before_destroy: before_destroy.unwrap_or(true),
    }
}

/// Machines into resources (after volumes, so mounts resolve to addresses).
fn machine_resources(
    cx: &Context<'_>,
    view: &AppView<'_>,
    out: &mut Observed,
    resources: &mut Vec<Resource>,
) {
    let vol_by_id: HashMap<&str, (&Address, &str)> = view
        .live_vols
        .iter()
        .filter_map(|v| {
            view.vol_addr
                .get(v.id.as_str())
                .map(|a| (v.id.as_str(), (a, v.name.as_str())))
        })
        .collect();
    let all = view
        .slots
        .iter()
        .chain(view.extra_machines.iter().map(|(a, m)| (a, m)));
    for (addr, m) in all {
        let d = cx.desired.resources.get(addr);
        let spec = normalize_machine(m, &vol_by_id);
        resources.push(Resource {
            address: addr.clone(),
            tenant: d
                .and_then(|r| r.tenant.clone())
                .or_else(|| m.config.metadata.get(META_TENANT).cloned()),
            app: view.name.to_string(),
            prevent_destroy: d.is_some_and(|r| r.prevent_destroy),
            id: Some(m.id.clone()),
            usage: None,
            spec: Spec::Machine(Box::new(spec)),
        });
        out.machines.insert(addr.clone(), (*m).clone());
    }
}

/// The secret names any owned Machine lists in `flotilla_secrets`.
fn listed_secret_names(view: &AppView<'_>) -> HashSet<String> {
    let all = view
        .slots
        .values()
        .chain(view.extra_machines.iter().map(|(_, m)| m));
    let mut names = HashSet::new();
    for m in all {
        if let Some(list) = m.config.metadata.get(META_SECRETS) {
            for item in list.split(',') {
                if let Some((n, _)) = item.split_once(':') {
                    names.insert(n.to_string());
                }
            }
        }
    }
    names
}

/// The managed Machines in slots: the ones whose records count.
fn managed_in_slots<'v>(view: &AppView<'v>, fleet: &str) -> Vec<&'v fly::Machine> {
    view.slots
        .values()
        .copied()
        .filter(|m| super::ownership::is_managed(m, fleet))
        .collect()
}

/// Per secret, the entry every managed Machine in a slot recorded in the `NAME:VALUE`
/// list under metadata `key` (fingerprints, digests), when they all recorded the same one.
fn agreed_entries(managed: &[&fly::Machine], key: &str) -> HashMap<String, String> {
    let mut recorded: HashMap<String, HashSet<String>> = HashMap::new();
    let mut recorded_by: HashMap<String, usize> = HashMap::new();
    for m in managed {
        if let Some(list) = m.config.metadata.get(key) {
            for (n, fp) in crate::secrets::decode(list) {
                *recorded_by.entry(n.clone()).or_default() += 1;
                recorded.entry(n).or_default().insert(fp);
            }
        }
    }
    recorded
        .into_iter()
        .filter(|(n, fps)| fps.len() == 1 && recorded_by.get(n) == Some(&managed.len()))
        .filter_map(|(n, fps)| fps.into_iter().next().map(|fp| (n, fp)))
        .collect()
}

/// The fingerprint key id every managed Machine recorded (`public` for none), when they
/// agree.
fn agreed_key_id(managed: &[&fly::Machine]) -> Option<String> {
    let ids: HashSet<&str> = managed
        .iter()
        .map(|m| {
            m.config
                .metadata
                .get(crate::secrets::META_SECRETS_KEY)
                .map_or(crate::secrets::PUBLIC_KEY_ID, String::as_str)
        })
        .collect();
    match ids.len() {
        1 => ids.into_iter().next().map(str::to_string),
        _ => None,
    }
}

fn secret_resources(
    cx: &Context<'_>,
    view: &AppView<'_>,
    out: &mut Observed,
    resources: &mut Vec<Resource>,
) {
    let listed = listed_secret_names(view);
    let managed = managed_in_slots(view, cx.fleet);
    let fingerprints = agreed_entries(&managed, META_SECRETS);
    let set_digests = agreed_entries(&managed, crate::secrets::META_SECRET_DIGESTS);
    let key_id = agreed_key_id(&managed);
    let name = view.name;
    // A removed owner's app: every secret is its.
    let orphaned = view.idx.app.is_none()
        && (!view.managed.is_empty() || view.removing)
        && !cx.hosting_apps.contains(name);
    for s in &view.snap.secrets {
        let addr = match view.idx.secrets.get(s.name.as_str()) {
            Some(r) => r.address.clone(),
            None if is_name(&s.name) && (listed.contains(&s.name) || orphaned) => {
                match &view.app_tenant {
                    Some(t) if !view.shared => Address::secret(&Owner::Tenant(t), &s.name),
                    _ => Address::secret(&Owner::SharedApp(name), &s.name),
                }
            }
            None => {
                out.unmanaged.push(Unmanaged {
                    app: name.to_string(),
                    kind: UnmanagedKind::Secret,
                    id: s.name.clone(),
                    name: s.name.clone(),
                    reason: "not declared in the spec; left alone".into(),
                });
                continue;
            }
        };
        resources.push(Resource {
            address: addr,
            tenant: view.app_tenant.clone(),
            app: name.to_string(),
            prevent_destroy: false,
            id: None,
            usage: None,
            spec: Spec::Secret(Box::new(SecretSpec {
                name: s.name.clone(),
                source: SecretSource::Unknown,
                digest: Some(s.digest.clone()),
                fingerprint: fingerprints.get(&s.name).cloned(),
                // A key id only beside a fingerprint (the observed state's hash is
                // unchanged for Machines that record none).
                fingerprint_key: fingerprints.get(&s.name).and(key_id.clone()),
                set_digest: set_digests.get(&s.name).cloned(),
            })),
        });
    }
}

/// Protection recorded on Machines outlives the spec: it covers everything of their
/// owner (tenant or shared app), declared or not.
pub(super) fn spread_protection(out: &Observed, resources: &mut [Resource]) {
    let protected: HashSet<Owner<'_>> = out
        .machines
        .iter()
        .filter(|(_, m)| m.config.metadata.get(META_PROTECT).map(String::as_str) == Some("true"))
        .filter_map(|(a, _)| a.owner())
        .collect();
    if protected.is_empty() {
        return;
    }
    for r in resources {
        let app_of_protected_tenant = r.kind() == Kind::App
            && r.tenant
                .as_ref()
                .is_some_and(|t| protected.contains(&Owner::Tenant(t)));
        if app_of_protected_tenant || r.address.owner().is_some_and(|o| protected.contains(&o)) {
            r.prevent_destroy = true;
        }
    }
}
