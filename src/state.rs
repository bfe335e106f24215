//! Observed state: what exists in a Fly organization, interpreted against a desired
//! state.
//!
//! A [`Snapshot`] (in [`crate::wire`]) holds the API's own objects (apps with their
//! Machines, volumes and secret digests), exactly as the live observer lists them; a
//! `--state FILE` is this JSON. [`interpret`] decides, purely, which of those objects
//! flotilla owns and at which address, app by app in four phases:
//!
//! 1. [`ownership`] — an app is managed when the spec's naming produces its name, or
//!    when its Machines carry `flotilla_managed=true` (a tenant removed from the spec);
//!    a Machine is managed when it carries this fleet's metadata, and the oldest one
//!    claiming a slot holds it;
//! 2. [`adoption`] — a Machine without metadata is *adopted* when it fills an empty
//!    slot of a managed app (same name, or the only candidate in an allowed region) —
//!    the plan then shows the metadata it will add; a volume is matched when its name
//!    is a declared volume name of the app;
//! 3. [`duplicates`] — other managed Machines claiming a taken slot become
//!    `ADDRESS#ID`; a volume a managed Machine mounts is ours at that Machine's slot;
//! 4. [`normalization`] — the owned objects become resources; a secret is managed when
//!    it is declared, or listed in a managed Machine's `flotilla_secrets` metadata.
//!
//! Everything else is reported as unmanaged and never touched.

mod adoption;
mod duplicates;
mod normalization;
mod ownership;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::resource::{Address, Desired, ResourceSet};
use crate::wire as fly;

pub use crate::fly::convert::normalize_machine;
pub use crate::wire::{AppSnapshot, STATE_FORMAT_VERSION, Snapshot};

/// What kind of object an unmanaged entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnmanagedKind {
    Machine,
    Volume,
    Secret,
}

impl UnmanagedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UnmanagedKind::Machine => "machine",
            UnmanagedKind::Volume => "volume",
            UnmanagedKind::Secret => "secret",
        }
    }
}

impl fmt::Display for UnmanagedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An object flotilla saw but does not own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub app: String,
    pub kind: UnmanagedKind,
    pub id: String,
    pub name: String,
    pub reason: String,
}

/// A live Machine another fleet manages, in an app this fleet names or owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignMachine {
    pub app: String,
    pub id: String,
    /// The fleet its metadata names (`flotilla_fleet`).
    pub fleet: String,
    /// Whether the app holds no Machine of this fleet: it belongs to `fleet`.
    pub owns_app: bool,
    /// Known from `fleet`'s sentinel, which records the app as its own (`id` is then the
    /// sentinel Machine's): the app holds no Machine of either fleet.
    pub recorded: bool,
}

/// The observed state, at the same addresses as the desired one.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub resources: ResourceSet,
    /// Addresses matched without flotilla metadata (adoption).
    pub adopted: HashSet<Address>,
    pub unmanaged: Vec<Unmanaged>,
    /// Live Machines of other fleets in the apps this spec names or owns: such an app
    /// is never taken over, nor deleted with them.
    pub foreign: Vec<ForeignMachine>,
    /// The raw Machines and volumes, by address, for the executor.
    pub machines: HashMap<Address, fly::Machine>,
    pub volumes: HashMap<Address, fly::Volume>,
    /// `sha256:…` of the managed resources: changes when anything flotilla manages changes.
    pub fingerprint: String,
    /// The fleet lock's sentinel Machine (`flotilla_lock=FLEET`) exists.
    pub fleet_lock: bool,
}

/// What the phases read from the desired state.
struct Context<'a> {
    desired: &'a Desired,
    fleet: &'a str,
    org: &'a str,
    by_app: HashMap<&'a str, ownership::AppIndex<'a>>,
    empty: ownership::AppIndex<'a>,
    declared_apps: HashSet<&'a str>,
    hosting_apps: HashSet<&'a str>,
    /// Apps this fleet's sentinel marks as being removed, at their addresses.
    removing: HashMap<&'a str, Address>,
    /// Owner tags recorded on every fleet's sentinel: tag → (fleet, sentinel Machine ID).
    recorded: HashMap<&'a str, Vec<(&'a str, &'a str)>>,
}

impl<'a> Context<'a> {
    fn new(snap: &'a Snapshot, desired: &'a Desired) -> Context<'a> {
        Context {
            desired,
            fleet: desired.fleet.as_str(),
            org: snap.org.as_str(),
            by_app: ownership::index_desired(desired),
            empty: ownership::AppIndex::default(),
            declared_apps: desired.apps.iter().map(String::as_str).collect(),
            hosting_apps: desired.tenants.iter().map(|t| t.app.as_str()).collect(),
            removing: ownership::removal_marks(snap, desired.fleet.as_str()),
            recorded: ownership::recorded_owners(snap),
        }
    }

    /// The desired resources of an app (none for an app the spec does not declare).
    fn index(&self, app: &str) -> &ownership::AppIndex<'a> {
        self.by_app.get(app).unwrap_or(&self.empty)
    }
}

/// One owned app while it is interpreted.
struct AppView<'a> {
    snap: &'a AppSnapshot,
    name: &'a str,
    idx: &'a ownership::AppIndex<'a>,
    app_address: Address,
    app_tenant: Option<String>,
    shared: bool,
    /// Machines not being destroyed, and those of them this fleet manages.
    live: Vec<&'a fly::Machine>,
    managed: Vec<&'a fly::Machine>,
    /// Each slot's Machine: its oldest claimant, or an adopted one.
    slots: BTreeMap<Address, &'a fly::Machine>,
    /// Managed Machines whose claim lost (or that claim no slot), with that claim.
    leftovers: Vec<(Option<Address>, &'a fly::Machine)>,
    /// The leftovers at their duplicate addresses.
    extra_machines: Vec<(Address, &'a fly::Machine)>,
    live_vols: Vec<&'a fly::Volume>,
    /// Whether this fleet started removing the app (its sentinel says so): what is left
    /// of it is this fleet's, whatever carries metadata.
    removing: bool,
    /// Owned volumes' addresses by Fly ID, and the IDs already placed.
    vol_addr: HashMap<&'a str, Address>,
    taken: HashSet<&'a str>,
}

/// Decides what in `snap` flotilla owns and maps it to addresses.
pub fn interpret(snap: &Snapshot, desired: &Desired) -> Observed {
    let mut out = Observed::default();
    if snap.apps.is_empty() {
        out.fingerprint = fingerprint(&out.resources);
        return out;
    }
    out.fleet_lock = has_fleet_lock(snap, &desired.fleet);
    let cx = Context::new(snap, desired);
    let mut resources = Vec::new();
    for a in &snap.apps {
        if ownership::foreign_machines(&cx, a, &mut out.foreign) {
            continue; // another fleet's app: named in the plan's errors, never touched
        }
        let Some(mut view) = ownership::claim(&cx, a) else {
            continue; // not ours: never listed, never touched
        };
        ownership::other_fleets(&view, cx.fleet, &mut out.unmanaged);
        adoption::adopt_machines(&mut view, &mut out);
        adoption::adopt_volumes(&mut view, cx.fleet, &mut out);
        duplicates::name_machines(&mut view);
        duplicates::name_removed_volumes(&mut view);
        duplicates::name_mounted_volumes(&mut view, &mut out);
        normalization::app_resources(&cx, &view, &mut out, &mut resources);
    }
    normalization::spread_protection(&out, &mut resources);
    out.resources = ResourceSet::new(resources);
    out.fingerprint = fingerprint(&out.resources);
    out
}

/// Whether `snap` holds `fleet`'s sentinel: a live Machine whose metadata names the
/// fleet in `flotilla_lock`.
fn has_fleet_lock(snap: &Snapshot, fleet: &str) -> bool {
    snap.apps.iter().flat_map(|a| &a.machines).any(|m| {
        !ownership::is_gone(&m.state)
            && m.config
                .metadata
                .get(crate::resource::META_LOCK)
                .map(String::as_str)
                == Some(fleet)
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
