//! Ownership: which apps and Machines of a snapshot are flotilla's (for this fleet),
//! and the slot each managed Machine's metadata claims — the oldest claimant keeps it.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{AppView, Context, Unmanaged, UnmanagedKind};
use crate::resource::{
    Address, DEFAULT_FLEET, Desired, Kind, META_FLEET, META_INDEX, META_LOCK, META_MANAGED,
    META_ROLE, META_TENANT, Owner, Resource, Spec, is_name, removal_marks as removal_marks_of,
};
use crate::wire::{self as fly, AppSnapshot, Snapshot};

/// Desired-side lookups for one app.
#[derive(Default)]
pub(super) struct AppIndex<'a> {
    pub app: Option<&'a Resource>,
    pub machines_by_name: HashMap<&'a str, &'a Resource>,
    pub machines: Vec<&'a Resource>,
    pub volumes_by_name: HashMap<&'a str, &'a Resource>,
    pub secrets: HashMap<&'a str, &'a Resource>,
}

/// The desired resources by app.
pub(super) fn index_desired(desired: &Desired) -> HashMap<&str, AppIndex<'_>> {
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
            Spec::BackupPolicy(_) | Spec::Ip(_) | Spec::Certificate(_) => {}
        }
    }
    by_app
}

pub(super) use crate::wire::api::is_gone;

pub(super) fn carries_flotilla(m: &fly::Machine) -> bool {
    m.config.metadata.get(META_MANAGED).map(String::as_str) == Some("true")
}

/// The fleet a Machine carrying flotilla's metadata belongs to (none named: `default`).
pub(super) fn fleet_of(m: &fly::Machine) -> &str {
    m.config
        .metadata
        .get(META_FLEET)
        .map(String::as_str)
        .unwrap_or(DEFAULT_FLEET)
}

/// Managed by flotilla for this fleet.
pub(super) fn is_managed(m: &fly::Machine, fleet: &str) -> bool {
    carries_flotilla(m) && fleet_of(m) == fleet
}

/// The slot a managed Machine's metadata points at.
fn machine_address(app: &str, m: &fly::Machine) -> Option<Address> {
    let md = &m.config.metadata;
    let index: u32 = md.get(META_INDEX)?.parse().ok()?;
    let owner = match md.get(META_TENANT) {
        Some(t) if is_name(t) => Owner::Tenant(t),
        Some(_) => return None,
        None => Owner::SharedApp(app),
    };
    let slot = match md.get(crate::resource::META_GROUP) {
        Some(g) if is_name(g) => Address::group_machine(&owner, g, index),
        Some(_) => return None,
        None => Address::machine(&owner, index),
    };
    // A standby (`flotilla_standby: K`) takes its own slot beside its primary's.
    match md.get(crate::resource::META_STANDBY) {
        Some(k) => slot.standby(k.parse().ok()?),
        None => Some(slot),
    }
}

/// An app of the snapshot as flotilla's, with its managed Machines in their slots;
/// `None` when the app is not ours (never listed, never touched).
pub(super) fn claim<'a>(cx: &'a Context<'a>, a: &'a AppSnapshot) -> Option<AppView<'a>> {
    let name = a.app.name.as_str();
    let live: Vec<&fly::Machine> = a.machines.iter().filter(|m| !is_gone(&m.state)).collect();
    let managed: Vec<&fly::Machine> = live
        .iter()
        .copied()
        .filter(|m| is_managed(m, cx.fleet))
        .collect();
    let declared = cx.declared_apps.contains(name);
    let removing = cx.removing.get(name);
    if !declared && managed.is_empty() && removing.is_none() || !is_name(name) {
        return None;
    }
    let idx = cx.index(name);
    let (app_address, app_tenant, shared) = match (idx.app, removing) {
        (Some(r), _) => (
            r.address.clone(),
            r.tenant.clone(),
            matches!(&r.spec, Spec::App(s) if s.shared),
        ),
        (None, Some(addr)) if managed.is_empty() => removed_app(addr),
        (None, _) => undeclared_app(cx, name, &managed),
    };
    let (slots, leftovers) = claim_slots(name, &managed);
    Some(AppView {
        snap: a,
        name,
        idx,
        app_address,
        app_tenant,
        shared,
        live_vols: a.volumes.iter().filter(|v| !is_gone(&v.state)).collect(),
        live,
        managed,
        removing: removing.is_some(),
        slots,
        leftovers,
        extra_machines: Vec::new(),
        vol_addr: HashMap::new(),
        taken: HashSet::new(),
    })
}

/// The apps `fleet`'s sentinel (in `snap`) marks as being removed, at the addresses the
/// marks name. A mark whose address does not parse, or is not an app's, is ignored.
pub(super) fn removal_marks<'a>(snap: &'a Snapshot, fleet: &str) -> HashMap<&'a str, Address> {
    snap.apps
        .iter()
        .flat_map(|a| &a.machines)
        .filter(|m| m.config.metadata.get(META_LOCK).map(String::as_str) == Some(fleet))
        .flat_map(|m| removal_marks_of(&m.config.metadata))
        .filter_map(|(app, addr)| {
            let addr: Address = addr.parse().ok()?;
            (addr.kind() == Some(Kind::App)).then_some((app, addr))
        })
        .collect()
}

/// An app whose removal this fleet started and whose Machines are gone already.
fn removed_app(addr: &Address) -> (Address, Option<String>, bool) {
    let tenant = addr.tenant().map(str::to_string);
    let shared = tenant.is_none();
    (addr.clone(), tenant, shared)
}

/// The address of an app declared only as the host of tenants, or removed from the
/// spec: a tenant's when all its Machines are one tenant's, else a shared app's.
fn undeclared_app(
    cx: &Context<'_>,
    name: &str,
    managed: &[&fly::Machine],
) -> (Address, Option<String>, bool) {
    let tenants: HashSet<&str> = managed
        .iter()
        .filter_map(|m| m.config.metadata.get(META_TENANT).map(String::as_str))
        .filter(|t| is_name(t))
        .collect();
    let all_tenant_role = managed
        .iter()
        .all(|m| m.config.metadata.get(META_ROLE).map(String::as_str) == Some("tenant"));
    let hosted = cx.hosting_apps.contains(name);
    match tenants.iter().next() {
        Some(t) if !hosted && all_tenant_role && tenants.len() == 1 => {
            (Address::app(&Owner::Tenant(t)), Some(t.to_string()), false)
        }
        _ => (Address::app(&Owner::SharedApp(name)), None, true),
    }
}

/// Slots claimed by metadata, oldest Machine first; the others (a second claimant, or
/// a Machine whose metadata names no slot) are left over for [`super::duplicates`].
type Claims<'a> = (
    BTreeMap<Address, &'a fly::Machine>,
    Vec<(Option<Address>, &'a fly::Machine)>,
);

fn claim_slots<'a>(app: &str, managed: &[&'a fly::Machine]) -> Claims<'a> {
    let mut slots: BTreeMap<Address, &fly::Machine> = BTreeMap::new();
    let mut leftovers = Vec::new();
    let mut sorted = managed.to_vec();
    sorted.sort_by(|x, y| (&x.created_at, &x.id).cmp(&(&y.created_at, &y.id)));
    for m in sorted {
        match machine_address(app, m) {
            Some(addr) if !slots.contains_key(&addr) => {
                slots.insert(addr, m);
            }
            claim => leftovers.push((claim, m)),
        }
    }
    (slots, leftovers)
}

/// Records the live Machines of other fleets in an app this fleet names or manages, and
/// says whether the app is another fleet's: it holds their Machines and none of ours.
pub(super) fn foreign_machines(
    cx: &Context<'_>,
    a: &AppSnapshot,
    out: &mut Vec<super::ForeignMachine>,
) -> bool {
    let live = || a.machines.iter().filter(|m| !is_gone(&m.state));
    let ours = live().any(|m| is_managed(m, cx.fleet));
    if !ours && !cx.declared_apps.contains(a.app.name.as_str()) {
        return false;
    }
    let before = out.len();
    for m in live().filter(|m| carries_flotilla(m) && !is_managed(m, cx.fleet)) {
        out.push(super::ForeignMachine {
            app: a.app.name.clone(),
            id: m.id.clone(),
            fleet: fleet_of(m).to_string(),
            owns_app: !ours,
            recorded: false,
        });
    }
    if !ours && out.len() == before && !cx.removing.contains_key(a.app.name.as_str()) {
        recorded_elsewhere(cx, a, out);
    }
    !ours && out.len() > before
}

/// An app without flotilla Machines that another fleet's sentinel records as its own
/// (and this fleet's does not) is that fleet's.
fn recorded_elsewhere(cx: &Context<'_>, a: &AppSnapshot, out: &mut Vec<super::ForeignMachine>) {
    let tag = crate::resource::app_owner_tag(&a.app.name);
    let Some(owners) = cx.recorded.get(tag.as_str()) else {
        return;
    };
    if owners.iter().any(|(f, _)| *f == cx.fleet) {
        return;
    }
    if let Some((fleet, sentinel)) = owners.first() {
        out.push(super::ForeignMachine {
            app: a.app.name.clone(),
            id: sentinel.to_string(),
            fleet: fleet.to_string(),
            owns_app: true,
            recorded: true,
        });
    }
}

/// The owner tags every fleet's live sentinel records, with the fleet and the sentinel.
pub(super) fn recorded_owners(snap: &Snapshot) -> HashMap<&str, Vec<(&str, &str)>> {
    let mut out: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for m in snap.apps.iter().flat_map(|a| &a.machines) {
        let Some(fleet) = m.config.metadata.get(META_LOCK) else {
            continue;
        };
        if is_gone(&m.state) {
            continue;
        }
        for tag in crate::resource::owned_tags(&m.config.metadata) {
            out.entry(tag)
                .or_default()
                .push((fleet.as_str(), m.id.as_str()));
        }
    }
    out
}

/// Machines of another fleet are never adopted nor touched: listed as unmanaged.
pub(super) fn other_fleets(view: &AppView<'_>, fleet: &str, out: &mut Vec<Unmanaged>) {
    for m in view
        .live
        .iter()
        .filter(|m| carries_flotilla(m) && !is_managed(m, fleet))
    {
        out.push(Unmanaged {
            app: view.name.to_string(),
            kind: UnmanagedKind::Machine,
            id: m.id.clone(),
            name: m.name.clone(),
            reason: format!("managed by fleet `{}`; left alone", fleet_of(m)),
        });
    }
}
