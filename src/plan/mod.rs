//! The plan: `diff(desired, observed)` as a pure function.
//!
//! Each address gets one action — create, update in place, replace, move, delete or no-op —
//! with field-level before/after values and the reasons. Fly's semantics are built in:
//! volumes grow (extend) but never shrink; a region or mount change replaces a Machine,
//! but a region change of a volume moves it (and its Machine) with the data;
//! image, guest, env and service changes update and restart it; a secret change updates
//! the Machines of that app; metadata changes need no restart. Only declared fields are
//! compared, so server-filled defaults never show up as changes.

pub mod capacity;
pub mod field;
pub mod group;
pub mod idle;
mod machine_config;
pub mod names;
pub mod procs;
pub mod removal;
pub mod rollout;
pub mod saved;
mod standby;
pub mod targets;
pub mod verify;

use foldhash::{HashMap, HashMapExt, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::money::Usd;
use crate::resource::{
    Address, Desired, Kind, MachineSpec, Owner, Resource, ResourceSet, SecretSpec, Service, Spec,
    natural_cmp,
};
use crate::state::Observed;

pub use field::{FieldChange, FieldPath, GuestField, MetadataOp, Section, SubPath};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Replace,
    /// A volume, and the Machine mounting it, carried into another region with their
    /// data (snapshot, copy into the new region, new Machine, old ones retired).
    Move,
    Delete,
    Noop,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Move => "move",
            Action::Delete => "delete",
            Action::Noop => "noop",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub kind: Kind,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub app: String,
    /// Fly's ID of the existing resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
    /// Why: replace causes, secret restarts, adoption, volume extend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// An update that restarts the Machine (config change); metadata-only updates don't.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
    /// A restarting update of a stopped or suspended Machine: sent without starting it,
    /// it takes effect at the Machine's next start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stays_idle: bool,
    /// The resource exists but carries no flotilla metadata yet: it is adopted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// Destroys a volume's data (delete or replace of a volume).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_loss: bool,
    /// Destroys or replaces something under `lifecycle.prevent_destroy`: apply refuses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prevent_destroy: bool,
    /// A region move's expected downtime in seconds: an estimate from what the move does
    /// (stop, snapshot, copy, start), set on the moved Machine's change.
    #[serde(
        rename = "expected_downtime_secs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub downtime_secs: Option<u64>,
    /// A volume of a removed tenant that apply first exports off-site with this
    /// configuration (the spec's `defaults.backups.export` rendered for the tenant):
    /// deleting the tenant's app deletes the volume's snapshots, the export keeps the
    /// data. Its deletion waits for the export and does not happen if the export fails.
    #[serde(
        rename = "export_before_delete",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub export_first: Option<Box<crate::resource::ExportConfig>>,
    #[serde(
        rename = "monthly_cost_before_usd",
        default,
        with = "crate::money::usd_opt"
    )]
    pub monthly_cost_before: Option<Usd>,
    #[serde(
        rename = "monthly_cost_after_usd",
        default,
        with = "crate::money::usd_opt"
    )]
    pub monthly_cost_after: Option<Usd>,
}

impl Change {
    fn new(r: &Resource, action: Action) -> Change {
        Change {
            address: r.address.clone(),
            kind: r.kind(),
            action,
            tenant: r.tenant.clone(),
            app: r.app.clone(),
            id: r.id.clone(),
            fields: Vec::new(),
            reasons: Vec::new(),
            restart: false,
            stays_idle: false,
            adopt: false,
            data_loss: false,
            prevent_destroy: false,
            downtime_secs: None,
            export_first: None,
            monthly_cost_before: None,
            monthly_cost_after: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    /// Region moves (volumes and their Machines); absent from JSON when there are none.
    #[serde(rename = "move", default, skip_serializing_if = "is_zero")]
    pub moves: usize,
    pub delete: usize,
    pub noop: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    /// The counts of `changes` by action.
    pub fn of(changes: &[Change]) -> Summary {
        let mut summary = Summary::default();
        for c in changes {
            match c.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::Move => summary.moves += 1,
                Action::Delete => summary.delete += 1,
                Action::Noop => summary.noop += 1,
            }
        }
        summary
    }

    pub fn changes(&self) -> usize {
        self.create + self.update + self.replace + self.moves + self.delete
    }
}

/// The cost side of a plan, filled by the cost engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCost {
    pub pricing_version: String,
    #[serde(rename = "monthly_before_usd", with = "crate::money::usd")]
    pub monthly_before: Usd,
    #[serde(rename = "monthly_after_usd", with = "crate::money::usd")]
    pub monthly_after: Usd,
    /// `monthly_after - monthly_before`.
    #[serde(rename = "delta_usd", with = "crate::money::usd")]
    pub delta: Usd,
    /// Assumptions the figures rest on (30-day month, usage), one sentence each.
    #[serde(default)]
    pub assumptions: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The fleet lock's sentinel, included in `monthly_after` (and in `monthly_before`
    /// when it exists already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_lock: Option<FleetLockCost>,
}

/// What the fleet lock's sentinel (a stopped Machine, never started) costs per month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetLockCost {
    /// The sentinel's app.
    pub app: String,
    #[serde(rename = "monthly_usd", with = "crate::money::usd")]
    pub monthly: Usd,
    /// It existed when the plan was made (else the next apply creates it).
    pub exists: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub summary: Summary,
    /// Problems that make the plan impossible to apply (e.g. a volume shrink).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<PlanCost>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.summary.changes() > 0
    }

    /// Changes other than no-ops.
    pub fn actionable(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action != Action::Noop)
    }

    pub fn get(&self, address: &Address) -> Option<&Change> {
        self.changes.iter().find(|c| &c.address == address)
    }
}

/// Keeps only the resources of the named tenants.
pub fn filter_tenants(set: &ResourceSet, tenants: &[String]) -> ResourceSet {
    if tenants.is_empty() {
        return set.clone();
    }
    ResourceSet::new(
        set.iter()
            .filter(|r| r.tenant.as_ref().is_some_and(|t| tenants.contains(t)))
            .cloned()
            .collect(),
    )
}

/// Computes the plan. `desired` and `observed` must already be narrowed the same way.
pub fn diff(desired: &ResourceSet, observed: &Observed) -> Plan {
    let mut changes: Vec<Change> = Vec::with_capacity(desired.len());
    let mut errors = Vec::new();
    let obs = &observed.resources;

    for d in desired.iter() {
        let Some(o) = obs.get(&d.address) else {
            let mut c = Change::new(d, Action::Create);
            if let Some(from) = d.volume().and_then(|v| v.restore_from.as_ref()) {
                c.reasons.push(format!("from {from}"));
            }
            changes.push(c);
            continue;
        };
        let mut c = Change::new(d, Action::Noop);
        c.id = o.id.clone();
        c.adopt = observed.adopted.contains(&d.address);
        match (&d.spec, &o.spec) {
            (Spec::App(_), Spec::App(_)) => {}
            (Spec::Secret(ds), Spec::Secret(os)) => {
                // Never a value, never a fingerprint: only whether it changed, and why.
                if let Some(why) = secret_change(ds, os) {
                    c.fields.push(FieldChange {
                        path: FieldPath::Fingerprint,
                        before: Some(json!(why.before())),
                        after: Some(json!(SECRET_CHANGED)),
                        forces_replace: false,
                    });
                    c.reasons.push(why.reason().into());
                }
            }
            (Spec::Volume(dv), Spec::Volume(ov)) => {
                if dv.region != ov.region && !dv.fallback_regions.contains(&ov.region) {
                    c.fields.push(field(
                        FieldPath::Region,
                        json!(ov.region),
                        json!(dv.region),
                        true,
                    ));
                    c.reasons.push(format!(
                        "moves from {} to {} with its data: snapshot, then a copy in {} (the old volume is kept, retired, unless --allow-data-loss)",
                        ov.region, dv.region, dv.region
                    ));
                }
                if dv.encrypted != ov.encrypted {
                    c.fields.push(field(
                        FieldPath::Encrypted,
                        json!(ov.encrypted),
                        json!(dv.encrypted),
                        true,
                    ));
                    c.reasons.push("encryption cannot change on an existing volume: replaced (its data is lost)".into());
                }
                if dv.size_gb != ov.size_gb {
                    c.fields.push(field(
                        FieldPath::SizeGb,
                        json!(ov.size_gb),
                        json!(dv.size_gb),
                        false,
                    ));
                    if dv.size_gb > ov.size_gb {
                        c.reasons.push(format!(
                            "extend from {} GB to {} GB",
                            ov.size_gb, dv.size_gb
                        ));
                    } else {
                        errors.push(format!(
                            "{}: volumes cannot shrink ({} GB → {} GB); Fly only extends. Keep size_gb at {} or more, or replace the volume deliberately by giving it a new name",
                            d.address, ov.size_gb, dv.size_gb, ov.size_gb
                        ));
                    }
                }
            }
            (Spec::BackupPolicy(db), Spec::BackupPolicy(ob)) => {
                if db.snapshot_retention != ob.snapshot_retention {
                    c.fields.push(field(
                        FieldPath::SnapshotRetention,
                        json!(ob.snapshot_retention),
                        json!(db.snapshot_retention),
                        false,
                    ));
                }
                if db.auto_backup != ob.auto_backup {
                    c.fields.push(field(
                        FieldPath::AutoBackup,
                        json!(ob.auto_backup),
                        json!(db.auto_backup),
                        false,
                    ));
                }
            }
            (Spec::Machine(dm), Spec::Machine(om)) => diff_machine(dm, om, &mut c),
            (Spec::Ip(_), Spec::Ip(_)) => {}
            (Spec::Certificate(_), Spec::Certificate(oc)) => {
                if oc.status == Some(crate::resource::CertStatus::Pending) {
                    c.reasons.push(CERT_PENDING.into());
                }
            }
            _ => {
                c.fields.push(field(
                    FieldPath::Kind,
                    json!(o.kind().as_str()),
                    json!(d.kind().as_str()),
                    true,
                ));
                c.reasons
                    .push("the resource at this address changed kind".into());
            }
        }
        c.action = if c.fields.iter().any(|f| f.forces_replace) {
            Action::Replace
        } else if c.fields.is_empty() {
            // Adopting a volume or app changes nothing on Fly: they carry no metadata.
            Action::Noop
        } else {
            Action::Update
        };
        if c.adopt && c.action != Action::Noop {
            c.reasons
                .insert(0, "adopt: exists without flotilla metadata".into());
        }
        if c.action == Action::Replace && moves_only_region(&c) {
            c.action = Action::Move;
            for f in &mut c.fields {
                f.forces_replace = false;
            }
        } else if c.action == Action::Replace && c.kind == Kind::Volume {
            c.reasons.retain(|r| !r.starts_with("moves from "));
            if let Some(f) = c.fields.iter().find(|f| f.path == FieldPath::Region) {
                c.reasons.push(format!(
                    "a volume cannot move from {} to {} while it is replaced: its data is lost",
                    short_json(&f.before),
                    short_json(&f.after)
                ));
            }
        }
        if c.action == Action::Replace {
            c.data_loss = d.kind() == Kind::Volume;
            c.prevent_destroy = d.prevent_destroy || o.prevent_destroy;
        }
        changes.push(c);
    }

    for o in obs.iter() {
        if desired.get(&o.address).is_some() {
            continue;
        }
        let mut c = Change::new(o, Action::Delete);
        c.data_loss = o.kind() == Kind::Volume;
        c.prevent_destroy = o.prevent_destroy;
        if o.address.is_duplicate() {
            c.reasons.push(
                "a second resource for one declared slot (left by an interrupted apply)".into(),
            );
        } else {
            c.reasons
                .push("managed by flotilla but no longer declared".into());
        }
        changes.push(c);
    }

    cascade(&mut changes, desired);
    standby::cascade_standbys(&mut changes, observed);
    errors.extend(ownership_errors(&changes, &observed.foreign));
    rollout::note_unhealthy(&mut changes, observed);
    idle::note_idle_updates(&mut changes, observed);
    let changes = sort_changes(changes, desired);
    let summary = Summary::of(&changes);
    Plan {
        changes,
        summary,
        errors,
        cost: None,
    }
}

/// The reason on a declared certificate Fly has not issued yet (its DNS records are
/// missing): shown as pending, not as a change.
pub const CERT_PENDING: &str =
    "pending: waiting for the DNS records (`flotilla dns SPEC` lists them)";

impl Change {
    /// A declared certificate still waiting for its DNS records.
    pub fn is_pending_certificate(&self) -> bool {
        self.kind == Kind::Certificate
            && self.action == Action::Noop
            && self.reasons.iter().any(|r| r == CERT_PENDING)
    }
}

/// What a plan shows as the new state of a secret that will be set.
pub const SECRET_CHANGED: &str = "(changed)";

/// Why a declared secret will be set again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretChange {
    /// Fly's digest differs from the one recorded when flotilla last set the value.
    ChangedOutside,
    /// The Machines recorded no fingerprint (or disagree).
    NotRecorded,
    /// The recorded fingerprint was made under another key (a rotation): set once.
    OtherKey,
    /// The value differs from the one flotilla last set.
    ValueChanged,
}

impl SecretChange {
    /// The plan's "before" for this change (never a value or a fingerprint).
    pub fn before(self) -> &'static str {
        match self {
            SecretChange::ChangedOutside => "(changed outside flotilla)",
            SecretChange::NotRecorded => "(not recorded)",
            SecretChange::OtherKey => "(recorded under another fingerprint key)",
            SecretChange::ValueChanged => "(as flotilla last set it)",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            SecretChange::ChangedOutside => {
                "changed outside flotilla (Fly's digest differs from the one recorded when flotilla last set it): set the declared value again"
            }
            SecretChange::NotRecorded => "the value was never recorded by flotilla: set it once",
            SecretChange::OtherKey => {
                "recorded under another fingerprint key: set once; Machines restart only if Fly's value changes"
            }
            SecretChange::ValueChanged => "the value changed: set it once",
        }
    }
}

/// Whether (and why) a declared secret must be set: an out-of-band change on Fly shows
/// without values; the others need the values' fingerprints.
pub fn secret_change(ds: &SecretSpec, os: &SecretSpec) -> Option<SecretChange> {
    if let (Some(recorded), Some(now)) = (&os.set_digest, &os.digest)
        && &crate::secrets::digest_tag(now) != recorded
    {
        return Some(SecretChange::ChangedOutside);
    }
    let fp = ds.fingerprint.as_ref()?;
    let Some(recorded) = &os.fingerprint else {
        return Some(SecretChange::NotRecorded);
    };
    if os.fingerprint_key.is_none() || os.fingerprint_key != ds.fingerprint_key {
        return Some(SecretChange::OtherKey);
    }
    (recorded != fp).then_some(SecretChange::ValueChanged)
}

/// Whether a volume's change forces a new volume only because its region changes: then
/// it moves with its data instead of being replaced empty.
fn moves_only_region(c: &Change) -> bool {
    c.kind == Kind::Volume
        && c.fields
            .iter()
            .filter(|f| f.forces_replace)
            .all(|f| f.path == FieldPath::Region)
}

fn short_json(v: &Option<Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "(none)".into(),
    }
}

/// Turns a Machine mounting a moved volume into a move: a new Machine in the volume's
/// new region, with the expected downtime.
fn move_machine(c: &mut Change, m: &MachineSpec, size_gb: u32) {
    c.action = Action::Move;
    // Nothing is destroyed that cannot be had back: the Machine is made again from the
    // spec, and the old volume is kept (a protected tenant's even with
    // --allow-data-loss).
    c.prevent_destroy = false;
    for f in &mut c.fields {
        f.forces_replace = false;
    }
    c.reasons.retain(|r| !r.ends_with(": replaced"));
    let secs = crate::platform::move_downtime_secs(size_gb);
    c.reasons.push(format!(
        "moves to {} with its volume: stop, snapshot, copy the volume, start there; expected downtime about {} (an estimate)",
        m.region,
        crate::platform::short_duration(secs)
    ));
    c.downtime_secs = Some(secs);
}

/// Follow-on changes: a replaced volume replaces the Machine that mounts it, a moved one
/// moves it; a changed secret restarts the Machines of its app.
fn cascade(changes: &mut [Change], desired: &ResourceSet) {
    for (i, effect) in cascade_effects(changes, desired) {
        let c = &mut changes[i];
        match effect {
            Cascade::Move(size) => {
                if let Some(m) = desired.get(&c.address).and_then(Resource::machine) {
                    move_machine(c, m, size);
                }
            }
            Cascade::Replace(reason) => {
                c.action = Action::Replace;
                c.reasons.push(reason);
            }
            Cascade::Restart(reason) => {
                c.action = Action::Update;
                c.restart = true;
                c.reasons.push(reason);
            }
        }
    }
}

/// What [`cascade`] does to one Machine's change.
enum Cascade {
    /// Its volume moves (of this size in GB): the Machine moves with it.
    Move(u32),
    /// Its volume is replaced.
    Replace(String),
    /// Its app's secrets change: it restarts to load them.
    Restart(String),
}

/// The follow-on effects by change position. Created Machines have none: they are made
/// with their volume and secrets as they will be.
fn cascade_effects(changes: &[Change], desired: &ResourceSet) -> Vec<(usize, Cascade)> {
    let moved_volumes: HashMap<&Address, u32> = changes
        .iter()
        .filter(|c| c.kind == Kind::Volume && c.action == Action::Move)
        .map(|c| {
            let size = desired
                .get(&c.address)
                .and_then(Resource::volume)
                .map_or(0, |v| v.size_gb);
            (&c.address, size)
        })
        .collect();
    let replaced_volumes: HashSet<&Address> = changes
        .iter()
        .filter(|c| c.kind == Kind::Volume && c.action == Action::Replace)
        .map(|c| &c.address)
        .collect();
    // Only a Machine that exists and stays can restart for its app's secrets.
    let restartable = changes
        .iter()
        .any(|c| c.kind == Kind::Machine && matches!(c.action, Action::Noop | Action::Update));
    let mut secret_apps: HashMap<&str, Vec<&Change>> = HashMap::new();
    for c in changes
        .iter()
        .filter(|c| restartable && c.kind == Kind::Secret && c.action != Action::Noop)
    {
        secret_apps.entry(c.app.as_str()).or_default().push(c);
    }
    let mut effects = Vec::new();
    for (i, c) in changes.iter().enumerate() {
        if c.kind != Kind::Machine || c.action == Action::Create {
            continue;
        }
        let Some(m) = desired.get_near(&c.address, i).and_then(Resource::machine) else {
            continue;
        };
        if let Some(size) = m.mounts.iter().find_map(|mt| moved_volumes.get(&mt.volume)) {
            effects.push((i, Cascade::Move(*size)));
            continue;
        }
        let mut action = c.action;
        if matches!(action, Action::Noop | Action::Update)
            && let Some(v) = m
                .mounts
                .iter()
                .find(|mt| replaced_volumes.contains(&mt.volume))
        {
            action = Action::Replace;
            effects.push((
                i,
                Cascade::Replace(format!("its volume {} is replaced", v.volume)),
            ));
        }
        if matches!(action, Action::Noop | Action::Update)
            && let Some(secrets) = secret_apps.get(c.app.as_str())
        {
            let list: Vec<String> = secrets
                .iter()
                .map(|s| {
                    let name = s.address.name().unwrap_or_default();
                    [name, " (", s.action.as_str(), ")"].concat()
                })
                .collect();
            effects.push((
                i,
                Cascade::Restart(format!(
                    "app secrets changed ({}): restart to load them",
                    list.join(", ")
                )),
            ));
        }
    }
    effects
}

/// What changes are grouped by: their owner, or (for an address without one) the
/// address itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Group<'a> {
    Owner(Owner<'a>),
    Alone(&'a Address),
}

impl<'a> Group<'a> {
    fn of(a: &'a Address) -> Group<'a> {
        a.owner().map_or(Group::Alone(a), Group::Owner)
    }

    /// The natural order of the groups' address prefixes (`tenant.alice`, `app.router`).
    fn natural_cmp(&self, other: &Group<'_>) -> std::cmp::Ordering {
        match (self, other) {
            (Group::Owner(a), Group::Owner(b)) => a.natural_cmp(b),
            _ => natural_cmp(&self.to_string(), &other.to_string()),
        }
    }
}

impl std::fmt::Display for Group<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Group::Owner(o) => o.fmt(f),
            Group::Alone(a) => a.fmt(f),
        }
    }
}

/// Groups changes by owner (tenant or shared app) in the order the spec declares them
/// (owners only observed, i.e. deleted, come last in natural order), then in creation
/// order within a group.
fn sort_changes(mut changes: Vec<Change>, desired: &ResourceSet) -> Vec<Change> {
    let (rank, rank_at) = owner_ranks(desired);
    // Changes are made in the desired set's order: position `i` is checked first.
    let at: Vec<Option<usize>> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| desired.position_near(&c.address, i))
        .collect();
    let mut gone: Vec<Group<'_>> = changes
        .iter()
        .zip(&at)
        .filter(|(_, p)| p.is_none())
        .map(|(c, _)| Group::of(&c.address))
        .filter(|g| !rank.contains_key(g))
        .collect();
    gone.sort_by(|a, b| a.natural_cmp(b));
    gone.dedup();
    let base = rank.len();
    let gone_rank: HashMap<Group<'_>, usize> = gone
        .into_iter()
        .enumerate()
        .map(|(i, o)| (o, base + i))
        .collect();
    let keys: Vec<(usize, Kind, usize)> = changes
        .iter()
        .zip(&at)
        .enumerate()
        .map(|(i, (c, p))| match p {
            Some(p) => (rank_at[*p], c.kind, *p),
            None => {
                let g = Group::of(&c.address);
                let r = rank.get(&g).or_else(|| gone_rank.get(&g)).copied();
                (
                    r.unwrap_or(usize::MAX),
                    c.kind,
                    usize::MAX - changes.len() + i,
                )
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.sort_by(|a, b| {
        keys[*a]
            .cmp(&keys[*b])
            .then_with(|| changes[*a].address.cmp(&changes[*b].address))
    });
    permute(&mut changes, order);
    changes
}

/// Each owner's rank (the order of its first resource in the desired set) and the rank
/// at each position. An owner's resources are consecutive (but for a shared app's
/// secrets, added after every tenant): an owner is looked up once per run of them.
fn owner_ranks(desired: &ResourceSet) -> (HashMap<Group<'_>, usize>, Vec<usize>) {
    let mut rank: HashMap<Group<'_>, usize> = HashMap::new();
    let mut rank_at = Vec::with_capacity(desired.len());
    let mut last: Option<(Group<'_>, usize)> = None;
    for r in desired.iter() {
        let g = Group::of(&r.address);
        let n = match last {
            Some((l, n)) if l == g => n,
            _ => {
                let next = rank.len();
                let n = *rank.entry(g).or_insert(next);
                last = Some((g, n));
                n
            }
        };
        rank_at.push(n);
    }
    (rank, rank_at)
}

/// Reorders `items` in place so that position `k` holds what was at `order[k]`
/// (`order` a permutation of the positions), by following each cycle with swaps: no
/// second vector of the (large) items.
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..order.len() {
        let mut k = start;
        while order[k] != start {
            let from = order[k];
            order[k] = k;
            items.swap(k, from);
            k = from;
        }
        order[k] = k;
    }
}

fn field(path: FieldPath, before: Value, after: Value, forces_replace: bool) -> FieldChange {
    FieldChange {
        path,
        before: Some(before),
        after: Some(after),
        forces_replace,
    }
}

/// The service fields a spec declares, with the idle policy Fly keeps per service.
fn service_view(s: &Service, m: &MachineSpec) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.insert("autostop".into(), json!(m.idle.mode.as_str()));
        o.insert("autostart".into(), json!(m.idle.autostart));
        o.insert("min_machines_running".into(), json!(m.idle.min_running));
    }
    v
}

/// Field-level diff of what `desired` declares against `observed`.
fn diff_machine(d: &MachineSpec, o: &MachineSpec, c: &mut Change) {
    let mut restart = false;
    if d.region != o.region && !d.fallback_regions.contains(&o.region) {
        c.fields.push(field(
            FieldPath::Region,
            json!(o.region),
            json!(d.region),
            true,
        ));
        c.reasons.push(format!(
            "a Machine cannot move from {} to {}: replaced",
            o.region, d.region
        ));
    }
    let dm: Vec<Value> = d
        .mounts
        .iter()
        .map(|m| json!({"volume": m.volume, "path": m.path}))
        .collect();
    let om: Vec<Value> = o
        .mounts
        .iter()
        .map(|m| json!({"volume": m.volume, "path": m.path}))
        .collect();
    if dm != om {
        c.fields.push(field(
            FieldPath::Mounts,
            Value::Array(om),
            Value::Array(dm),
            true,
        ));
        c.reasons.push("its mounts change: replaced".into());
    }
    let before = c.fields.len();
    if d.image != o.image {
        c.fields.push(field(
            FieldPath::Image,
            json!(o.image),
            json!(d.image),
            false,
        ));
    }
    if d.guest.cpu_kind != o.guest.cpu_kind {
        c.fields.push(field(
            FieldPath::Guest(GuestField::CpuKind),
            json!(o.guest.cpu_kind),
            json!(d.guest.cpu_kind),
            false,
        ));
    }
    if d.guest.cpus != o.guest.cpus {
        c.fields.push(field(
            FieldPath::Guest(GuestField::Cpus),
            json!(o.guest.cpus),
            json!(d.guest.cpus),
            false,
        ));
    }
    if d.guest.memory_mb != o.guest.memory_mb {
        c.fields.push(field(
            FieldPath::Guest(GuestField::MemoryMb),
            json!(o.guest.memory_mb),
            json!(d.guest.memory_mb),
            false,
        ));
    }
    diff_maps(FieldPath::Env, &d.env, &o.env, |_| true, &mut c.fields);
    if let Some(ds) = &d.services {
        let dv: Vec<Value> = ds.iter().map(|s| service_view(s, d)).collect();
        let ov: Vec<Value> = o
            .services
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|s| service_view(s, o))
            .collect();
        diff_json_subset(
            Section::Services,
            &SubPath::default(),
            &Value::Array(dv),
            &Value::Array(ov),
            &mut c.fields,
        );
    }
    if let Some(dc) = &d.checks {
        let dv = serde_json::to_value(dc).unwrap_or(Value::Null);
        let ov = serde_json::to_value(o.checks.clone().unwrap_or_default()).unwrap_or(Value::Null);
        diff_json_subset(
            Section::Checks,
            &SubPath::default(),
            &dv,
            &ov,
            &mut c.fields,
        );
    }
    if let Some(r) = &d.restart
        && Some(r) != o.restart.as_ref()
    {
        c.fields.push(FieldChange {
            path: FieldPath::RestartPolicy,
            before: o.restart.as_ref().map(|x| json!(x)),
            after: Some(json!(r)),
            forces_replace: false,
        });
    }
    machine_config::diff_extras(&d.config, &o.config, &mut c.fields);
    procs::diff_run(&d.run, &o.run, &mut c.fields);
    if c.fields.len() > before {
        restart = true;
    }
    // Metadata: declared keys and flotilla's own; others (Fly's) are left alone, and so
    // is flotilla's bookkeeping: the secrets' records (fingerprints, key id, digests)
    // follow the secrets' changes and are written by the executor, the rollout record
    // is kept by updates, and the apply time is written by the executor; a plan never
    // shows them.
    let ours = |k: &str| {
        !crate::secrets::SECRET_METADATA.contains(&k)
            && !rollout::is_rollout_key(k)
            && k != crate::resource::META_RETIRED
            && k != crate::resource::META_APPLIED_AT
            && (d.metadata.contains_key(k) || k.starts_with("flotilla_"))
    };
    diff_maps(
        FieldPath::Metadata,
        &d.metadata,
        &o.metadata,
        ours,
        &mut c.fields,
    );
    c.restart = restart;
}

/// Shown in place of a live value that a plan must not print.
pub const HIDDEN_VALUE: &str = "(hidden: not in the spec)";

/// A live env or metadata value as a plan may show it. Plans are printed, saved and
/// posted on pull requests, so a value the spec does not declare (set by hand or by a
/// script, e.g. a database URL with its password) or one that looks like a credential
/// is replaced by [`HIDDEN_VALUE`]; only the change is shown.
fn shown_live_value<'a>(key: &str, value: &'a str, declared: bool) -> &'a str {
    if declared && crate::spec::credentials::looks_like_credential(value, Some(key)).is_none() {
        value
    } else {
        HIDDEN_VALUE
    }
}

/// Compares two string maps key by key, for the keys `compare` selects.
fn diff_maps(
    path: impl Fn(String) -> FieldPath,
    d: &crate::resource::StrMap,
    o: &crate::resource::StrMap,
    compare: impl Fn(&str) -> bool,
    out: &mut Vec<FieldChange>,
) {
    let keys: std::collections::BTreeSet<&String> = d.keys().chain(o.keys()).collect();
    for k in keys {
        if !compare(k) {
            continue;
        }
        let (dv, ov) = (d.get(k), o.get(k));
        if dv != ov {
            out.push(FieldChange {
                path: path(k.clone()),
                before: ov.map(|v| json!(shown_live_value(k, v, dv.is_some()))),
                after: dv.map(|v| json!(v)),
                forces_replace: false,
            });
        }
    }
}

/// Compares the keys `desired` has against `observed` (objects: desired's keys only, so
/// server-added keys are ignored; arrays: element by element, a length change is one
/// change of the whole list; maps of named entries such as checks: by key).
pub fn diff_json_subset(
    section: Section,
    at: &SubPath,
    desired: &Value,
    observed: &Value,
    out: &mut Vec<FieldChange>,
) {
    let path = || FieldPath::section(section, at.clone());
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => {
            let named_map = section == Section::Checks && at.is_root();
            for (k, dv) in d {
                let p = at.key(k);
                match o.get(k) {
                    Some(ov) => diff_json_subset(section, &p, dv, ov, out),
                    None if dv.is_null() => {}
                    None => out.push(FieldChange {
                        path: FieldPath::section(section, p),
                        before: None,
                        after: Some(dv.clone()),
                        forces_replace: false,
                    }),
                }
            }
            if named_map {
                for (k, ov) in o {
                    if !d.contains_key(k) {
                        out.push(FieldChange {
                            path: FieldPath::section(section, at.key(k)),
                            before: Some(ov.clone()),
                            after: None,
                            forces_replace: false,
                        });
                    }
                }
            }
        }
        (Value::Array(d), Value::Array(o)) if d.len() == o.len() => {
            for (i, (dv, ov)) in d.iter().zip(o).enumerate() {
                diff_json_subset(section, &at.index(i), dv, ov, out);
            }
        }
        (Value::Array(d), Value::Array(o)) => {
            let strip: Vec<Value> = o
                .iter()
                .zip(d.iter().chain(std::iter::repeat(&Value::Null)))
                .map(|(ov, dv)| project(ov, dv))
                .collect();
            out.push(FieldChange {
                path: path(),
                before: Some(Value::Array(strip)),
                after: Some(desired.clone()),
                forces_replace: false,
            });
        }
        (d, o) if d != o => out.push(FieldChange {
            path: path(),
            before: Some(o.clone()),
            after: Some(d.clone()),
            forces_replace: false,
        }),
        _ => {}
    }
}

/// `observed` reduced to the keys `shape` has (for readable before-values).
fn project(observed: &Value, shape: &Value) -> Value {
    match (observed, shape) {
        (Value::Object(o), Value::Object(s)) => Value::Object(
            o.iter()
                .filter(|(k, _)| s.contains_key(*k))
                .map(|(k, v)| (k.clone(), project(v, &s[k])))
                .collect(),
        ),
        _ => observed.clone(),
    }
}

/// Apps of other fleets: one this spec's naming produces is never taken over, and one
/// holding another fleet's Machines is never deleted (that would destroy them too).
fn ownership_errors(changes: &[Change], foreign: &[crate::state::ForeignMachine]) -> Vec<String> {
    let mut errors = Vec::new();
    for c in changes.iter().filter(|c| c.kind == Kind::App) {
        let theirs: Vec<&crate::state::ForeignMachine> =
            foreign.iter().filter(|f| f.app == c.app).collect();
        let Some(first) = theirs.first() else {
            continue;
        };
        let ids: Vec<&str> = theirs.iter().map(|f| f.id.as_str()).collect();
        match c.action {
            Action::Create if first.recorded => errors.push(format!(
                "{}: app {} belongs to fleet `{}` (recorded on its lock sentinel, Machine {}; the app has no Machine yet); this spec's naming produces the same name. Change naming.app (or `fleet:`) so the fleets' app names differ",
                c.address, c.app, first.fleet, first.id
            )),
            Action::Create if first.owns_app => errors.push(format!(
                "{}: app {} belongs to fleet `{}` (its Machines {} carry flotilla_fleet={}); this spec's naming produces the same name. Change naming.app (or `fleet:`) so the fleets' app names differ",
                c.address, c.app, first.fleet, ids.join(", "), first.fleet
            )),
            Action::Delete => errors.push(format!(
                "{}: app {} also holds Machines of fleet `{}` ({}); deleting it would destroy them. Remove them with that fleet's spec first",
                c.address, c.app, first.fleet, ids.join(", ")
            )),
            _ => {}
        }
    }
    errors
}

/// Plans the whole desired state against an observed one, optionally narrowed to tenants.
pub fn plan(desired: &Desired, observed: &Observed, tenants: &[String]) -> Plan {
    let mut plan = plan_resources(desired, observed, tenants);
    removal::note_exports(&mut plan, desired);
    plan
}

fn plan_resources(desired: &Desired, observed: &Observed, tenants: &[String]) -> Plan {
    if tenants.is_empty() {
        return diff(&desired.resources, observed);
    }
    let d = filter_tenants(&desired.resources, tenants);
    // `diff` reads only the resources and what was adopted.
    let o = Observed {
        resources: filter_tenants(&observed.resources, tenants),
        adopted: observed.adopted.clone(),
        unmanaged: Vec::new(),
        foreign: observed.foreign.clone(),
        machines: Default::default(),
        volumes: Default::default(),
        fingerprint: observed.fingerprint.clone(),
        fleet_lock: observed.fleet_lock,
    };
    diff(&d, &o)
}

#[cfg(test)]
mod tests {
    use super::permute;
    use proptest::prelude::*;

    proptest! {
        /// Any permutation puts every item where the order says, each exactly once.
        #[test]
        fn permute_places_each_item_where_the_order_says(
            order in (0usize..64).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        ) {
            let items: Vec<String> = (0..order.len()).map(|i| format!("item {i}")).collect();
            let mut permuted = items.clone();
            permute(&mut permuted, order.clone());
            let expected: Vec<String> = order.iter().map(|&i| items[i].clone()).collect();
            prop_assert_eq!(permuted, expected);
        }
    }
}
