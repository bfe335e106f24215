//! Resource kinds shared by the desired state (expanded from a spec) and the observed
//! state (read from Fly, the simulator or a `--state` file), with stable addresses
//! ([`address`]: the typed [`Address`] and its grammar).
//!
//! `Desired` and `Observed` hold the same [`Resource`] type so that a plan is a plain
//! comparison. Nothing here knows about YAML or HTTP.

pub mod address;
pub mod dns;
pub mod machine_config;
pub mod network;
pub mod procs;
pub mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::platform::CpuKind;

pub use address::{Address, AddressError, AddressForm, Owner, is_name, natural_cmp};
pub use machine_config::MachineExtras;
pub use network::{CertSpec, CertStatus, IpKind, IpSpec};
pub use values::{CheckKind, ConcurrencyKind, Protocol, RestartPolicy};

/// A small map of strings, in key order: a Machine's env and metadata (and those of its
/// Fly config). A sorted vector rather than a `BTreeMap`: these maps hold a few entries,
/// and a `BTreeMap`'s first node alone takes some 540 bytes. Two per Machine made
/// 10.9 MB of the 74 MB a 10,000-tenant plan holds at its peak (BENCHMARKS.md, "Plan").
pub type StrMap = litemap::LiteMap<String, String>;

/// Metadata keys that mark a Machine as managed by flotilla.
pub const META_MANAGED: &str = "flotilla_managed";
pub const META_TENANT: &str = "flotilla_tenant";
pub const META_ROLE: &str = "flotilla_role";
pub const META_INDEX: &str = "flotilla_index";
/// The process group (`process_groups:`) of a Machine, which its address names
/// (`OWNER.machine.GROUP[N]`); absent on Machines of tenants without groups.
pub const META_GROUP: &str = "flotilla_process_group";
/// flyctl's record of a Machine's process group, set beside [`META_GROUP`] so that
/// flyctl still understands the app.
pub const META_FLY_PROCESS_GROUP: &str = "fly_process_group";
/// On a standby Machine (`standbys:`): which of its slot's standbys it is (`0`, `1` …);
/// its address is `SLOT.standby[K]`, the slot named by [`META_INDEX`] and [`META_GROUP`].
pub const META_STANDBY: &str = "flotilla_standby";
/// On a standby Machine: the slot of its primary as status shows it (`machine[0]`,
/// `machine.web[1]`), for people and tools reading the metadata.
pub const META_STANDBY_FOR: &str = "flotilla_standby_for";
/// The keyed fingerprint of the app secrets a Machine was last updated with.
pub const META_SECRETS: &str = "flotilla_secrets";
/// The fleet (spec) that manages a Machine: specs with different fleets share an org
/// without touching each other's resources.
pub const META_FLEET: &str = "flotilla_fleet";
/// `lifecycle.prevent_destroy` recorded on the Machines of a tenant or shared app, so the
/// protection holds even after the tenant is removed from the spec.
pub const META_PROTECT: &str = "flotilla_prevent_destroy";
/// The volumes `restore` replaced on this Machine and kept (`vol_…,vol_…`): unattached
/// leftovers with a declared name that are neither adopted nor duplicates. Bookkeeping,
/// like the secrets' records: kept by updates, never shown in a plan.
pub const META_RETIRED: &str = "flotilla_retired_volumes";
/// On a fleet's sentinel Machine (`apply::lock`): the fleet it locks. Sentinels carry no
/// `flotilla_managed`, so they are never planned.
pub const META_LOCK: &str = "flotilla_lock";
/// On a fleet's sentinel Machine: `flotilla_removing_APP = ADDRESS` while the fleet is
/// removing app APP (at ADDRESS, e.g. `tenant.dev.app`), set before the first of its
/// resources is destroyed and cleared once the app is gone, so an interrupted removal
/// stays visible to the next plan.
pub const META_REMOVING: &str = "flotilla_removing_";

/// On a fleet's sentinel Machine: `flotilla_owns_N = TAG,TAG,…`, the apps the fleet
/// created or adopted, each as [`app_owner_tag`] (12 hex digits), at most
/// [`OWNED_TAGS_PER_KEY`] per key (under 1 KiB per value; 1,000 apps take 13 keys, about
/// 13 KB). Another fleet reads them, so an app without Machines is still known as owned.
pub const META_OWNS: &str = "flotilla_owns_";
/// Tags per `flotilla_owns_N` value.
pub const OWNED_TAGS_PER_KEY: usize = 78;

/// The tag an app's name is recorded under on its fleet's sentinel: 48 bits of a
/// domain-separated SHA-256 (a false match among thousands of apps is about one in
/// 10^8, and would only make a plan refuse, naming the other fleet).
pub fn app_owner_tag(app: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("flotilla-app-owner\n{app}").as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The owner tags a sentinel's metadata records.
pub fn owned_tags(metadata: &StrMap) -> std::collections::BTreeSet<&str> {
    metadata
        .iter()
        .filter(|(k, _)| k.starts_with(META_OWNS))
        .flat_map(|(_, v)| v.split(','))
        .filter(|t| !t.is_empty())
        .collect()
}

/// The `flotilla_owns_N` keys and values that record `tags` (sorted, chunked).
pub fn owned_records(tags: &std::collections::BTreeSet<String>) -> StrMap {
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    tags.chunks(OWNED_TAGS_PER_KEY)
        .enumerate()
        .map(|(i, c)| (format!("{META_OWNS}{i}"), c.join(",")))
        .collect()
}

/// The apps a sentinel Machine's metadata marks as being removed: (app, address text).
pub fn removal_marks(metadata: &StrMap) -> Vec<(&str, &str)> {
    metadata
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(META_REMOVING)?, v.as_str())))
        .filter(|(app, _)| !app.is_empty())
        .collect()
}

/// The rollout record a Machine carries (see `plan::rollout`): the target image of the
/// rollout that last updated it, the image it ran before, its wave (1-based) and how it
/// went (`updated`, `failed`, `rolled_back`).
pub const META_ROLLOUT: &str = "flotilla_rollout";
pub const META_ROLLOUT_FROM: &str = "flotilla_rollout_from";
pub const META_ROLLOUT_STATE: &str = "flotilla_rollout_state";
pub const META_ROLLOUT_WAVE: &str = "flotilla_rollout_wave";

/// When an apply last wrote the Machine's config (create or update), RFC 3339 UTC:
/// bookkeeping that plans do not compare and config updates keep; `status` shows it.
pub const META_APPLIED_AT: &str = "flotilla_applied_at";

/// A rollout record key: bookkeeping that plans do not compare and config updates keep.
pub fn is_rollout_key(key: &str) -> bool {
    key.starts_with(META_ROLLOUT)
}

/// The fleet name of a spec that does not set one.
pub const DEFAULT_FLEET: &str = "default";

/// The kinds of resources flotilla manages, in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    App,
    Secret,
    Volume,
    BackupPolicy,
    Machine,
    /// An IP address assigned to an app (`OWNER.ip#KIND`).
    Ip,
    /// A custom domain's TLS certificate on an app (`OWNER.cert#HOSTNAME`).
    Certificate,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Secret => "secret",
            Kind::Volume => "volume",
            Kind::BackupPolicy => "backup_policy",
            Kind::Machine => "machine",
            Kind::Ip => "ip",
            Kind::Certificate => "certificate",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Usage assumptions that drive the cost model (never sent to Fly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Hours per day a Machine with an idle policy is started (0–24).
    pub active_hours_per_day: Decimal,
    /// Whether the spec or a usage file sets `active_hours_per_day` (a scheduled
    /// Machine without it is priced by its schedule's default run). Known while the
    /// spec is loaded; not part of the serialized form (reports, saved plans).
    #[serde(skip)]
    pub active_hours_declared: bool,
    /// Used size of the root filesystem, billed while stopped or suspended.
    pub rootfs_gb: Decimal,
    /// Outbound internet traffic per Machine per month.
    pub egress_gb_month: Decimal,
    /// Private cross-region traffic per Machine per month.
    pub private_egress_gb_month: Decimal,
    /// Data stored on a volume (for snapshot storage); `None` = the provisioned size.
    pub volume_used_gb: Option<Decimal>,
    /// Share of a volume's data that changes per day (0–1), for incremental snapshots.
    pub snapshot_daily_change: Decimal,
    /// Dedicated IPv4 addresses per app.
    pub dedicated_ipv4: u32,
    /// Single-hostname certificates per app.
    pub certificates: u32,
    /// Wildcard certificates per app.
    pub wildcard_certificates: u32,
}

impl Default for Usage {
    fn default() -> Self {
        Usage {
            active_hours_per_day: Decimal::from(24),
            active_hours_declared: false,
            rootfs_gb: Decimal::ONE,
            egress_gb_month: Decimal::ZERO,
            private_egress_gb_month: Decimal::ZERO,
            volume_used_gb: None,
            snapshot_daily_change: Decimal::new(5, 2),
            dedicated_ipv4: 0,
            certificates: 0,
            wildcard_certificates: 0,
        }
    }
}

/// What a Machine does when idle (maps to Fly's per-service `autostop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleMode {
    Off,
    Stop,
    Suspend,
}

impl IdleMode {
    pub const ALL: [IdleMode; 3] = [IdleMode::Off, IdleMode::Stop, IdleMode::Suspend];

    /// `off`, `stop` or `suspend`: the spec's `idle.mode` and Fly's `autostop`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdleMode::Off => "off",
            IdleMode::Stop => "stop",
            IdleMode::Suspend => "suspend",
        }
    }

    /// The mode of that name (`as_str`'s inverse).
    pub fn from_name(s: &str) -> Option<IdleMode> {
        IdleMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for IdleMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdlePolicy {
    pub mode: IdleMode,
    /// Start on incoming traffic (Fly's `autostart`).
    pub autostart: bool,
    /// Machines kept running in the primary region (Fly's `min_machines_running`).
    pub min_running: u32,
}

impl Default for IdlePolicy {
    fn default() -> Self {
        IdlePolicy {
            mode: IdleMode::Off,
            autostart: true,
            min_running: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guest {
    pub cpu_kind: CpuKind,
    pub cpus: u32,
    pub memory_mb: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub port: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handlers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_https: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrency {
    #[serde(rename = "type")]
    pub kind: ConcurrencyKind,
    pub soft_limit: u32,
    pub hard_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub protocol: Protocol,
    pub internal_port: u16,
    pub ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    #[serde(rename = "type")]
    pub kind: CheckKind,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Go-style durations as Fly takes them (`15s`, `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Address of the volume resource mounted here.
    pub volume: Address,
    /// The volume's Fly name.
    pub volume_name: String,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: String,
    pub org: String,
    /// True for a shared (non-tenant) app declared under `apps:`.
    pub shared: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineSpec {
    pub name: String,
    pub region: String,
    /// Regions tried in order when `region` has no capacity; a Machine running in one of
    /// them satisfies the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_regions: Vec<String>,
    pub image: String,
    /// The Fly preset name (`shared-cpu-1x`).
    pub size: String,
    pub guest: Guest,
    pub env: StrMap,
    /// `None` when the spec declares no services (then they are not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<Service>>,
    /// `None` when the spec declares no checks (then they are not compared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<BTreeMap<String, Check>>,
    /// Declared metadata plus flotilla's ownership keys.
    pub metadata: StrMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    pub idle: IdlePolicy,
    /// Fly restart policy when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartPolicy>,
    /// Pass-through Machine config fields (`stop_config`, `init`, `dns` …) as declared.
    #[serde(default, skip_serializing_if = "MachineExtras::is_empty")]
    pub config: MachineExtras,
    /// Names of the app secrets this Machine sees (its app's secrets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    pub role: String,
    pub index: u32,
    /// Processes and files (`processes:`, `files:`), when declared.
    #[serde(default, flatten)]
    pub run: procs::MachineRun,
}

impl MachineSpec {
    /// A standby Machine (`standbys:`): it stays stopped and Fly starts it when its
    /// primary's host fails.
    pub fn is_standby(&self) -> bool {
        self.metadata.contains_key(META_STANDBY)
    }

    /// Fly, not apply, starts this Machine (on its schedule, or a standby when its
    /// primary's host fails): apply creates it without starting it, updates it without
    /// starting it, and does not wait for it to run.
    pub fn started_by_fly(&self) -> bool {
        self.config.is_scheduled() || self.is_standby()
    }
}

/// The slot of a Machine as status and the standby metadata show it: `machine[0]`,
/// `machine.web[1]`, `machine[0].standby[0]` (`machine` without an index).
pub fn slot_text(a: &Address) -> String {
    let mut slot = match (a.group(), a.index()) {
        (Some(g), Some(i)) => format!("machine.{g}[{i}]"),
        (None, Some(i)) => format!("machine[{i}]"),
        _ => "machine".to_string(),
    };
    if let Some(k) = a.standby_index() {
        slot.push_str(&format!(".standby[{k}]"));
    }
    slot
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: String,
    pub region: String,
    /// Regions the volume may be created in when `region` has no capacity (its
    /// Machine's); a volume in one of them satisfies the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_regions: Vec<String>,
    pub size_gb: u32,
    pub encrypted: bool,
    /// The Machine that mounts this volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<Address>,
    /// Fly volume ID of the Machine it is attached to (observed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attached_machine_id: Option<String>,
    /// Names this slot's volume may already carry from an earlier default naming (index
    /// 0 under `count > 1` was `NAME_0`). Observed names win: when the app has a volume
    /// under an alias and none under `name`, planning keeps the alias
    /// (`plan::names::keep_observed_volume_names`), so the volume is not replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `volume.restore_from`: a new volume is created from a snapshot of another
    /// tenant's volume. Read only when the volume is created; an existing volume ignores
    /// it (never compared, so never a diff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RestoreFrom>,
}

/// Which snapshot a new volume starts from (`volume.restore_from`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreFrom {
    /// The tenant whose volume's snapshot is used.
    pub tenant: String,
    /// The source volume's app (the tenant's app).
    pub app: String,
    /// The source tenant's volume of the same slot.
    pub volume: Address,
    /// `None`: the newest complete snapshot; else this snapshot id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

impl std::fmt::Display for RestoreFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.snapshot {
            None => write!(f, "snapshot of {} (latest)", self.tenant),
            Some(id) => write!(f, "snapshot of {} ({id})", self.tenant),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSpec {
    /// The volume whose snapshots this policy governs.
    pub volume: Address,
    /// Days Fly keeps automatic daily snapshots (1–60).
    pub snapshot_retention: u32,
    /// Fly's automatic daily snapshots.
    pub auto_backup: bool,
    /// Take an on-demand snapshot before the volume is destroyed (client-side policy).
    pub snapshot_before_destroy: bool,
}

/// Where a secret's value comes from at apply time. Values are never stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// An environment variable of the process running `apply`.
    Env(String),
    /// A file, resolved relative to the spec's directory.
    File(String),
    /// Observed on Fly; the source is unknown.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSpec {
    pub name: String,
    pub source: SecretSource,
    /// Fly's opaque digest (observed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Keyed fingerprint of the value (see `secrets`): of the value to set (desired, when
    /// values are known) or of the value the app's Machines recorded (observed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The id of the key `fingerprint` was made with (`public`: the public derivation);
    /// observed: the one every managed Machine recorded, `None` when they disagree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_key: Option<String>,
    /// Observed only: the tag of Fly's digest as it was right after flotilla last set the
    /// value ([`crate::secrets::digest_tag`]), as the Machines recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Spec {
    App(Box<AppSpec>),
    Secret(Box<SecretSpec>),
    Volume(Box<VolumeSpec>),
    BackupPolicy(Box<BackupSpec>),
    Machine(Box<MachineSpec>),
    Ip(Box<network::IpSpec>),
    Certificate(Box<network::CertSpec>),
}

/// One managed resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub address: Address,
    /// The tenant it belongs to; `None` for shared apps and their resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The Fly app it lives in (an app's own name for the app itself).
    pub app: String,
    /// Refuse to destroy or replace it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prevent_destroy: bool,
    /// Fly's ID, known once it exists (observed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Cost assumptions (desired only; observed resources borrow their counterpart's).
    /// Shared: every resource expanded from the same settings holds the same one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "shared_usage::serialize",
        deserialize_with = "shared_usage::deserialize"
    )]
    pub usage: Option<Arc<Usage>>,
    #[serde(flatten)]
    pub spec: Spec,
}

/// Serde for a shared usage: the same form as an owned one.
mod shared_usage {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Usage;

    pub fn serialize<S: Serializer>(u: &Option<Arc<Usage>>, s: S) -> Result<S::Ok, S::Error> {
        u.as_deref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<Usage>>, D::Error> {
        Ok(Option::<Usage>::deserialize(d)?.map(Arc::new))
    }
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match &self.spec {
            Spec::App(_) => Kind::App,
            Spec::Secret(_) => Kind::Secret,
            Spec::Volume(_) => Kind::Volume,
            Spec::BackupPolicy(_) => Kind::BackupPolicy,
            Spec::Machine(_) => Kind::Machine,
            Spec::Ip(_) => Kind::Ip,
            Spec::Certificate(_) => Kind::Certificate,
        }
    }

    pub fn machine(&self) -> Option<&MachineSpec> {
        match &self.spec {
            Spec::Machine(m) => Some(m),
            _ => None,
        }
    }

    pub fn volume(&self) -> Option<&VolumeSpec> {
        match &self.spec {
            Spec::Volume(v) => Some(v),
            _ => None,
        }
    }
}

/// A set of resources in a deterministic order (the order they were declared or
/// observed in), with an index by address. Serialized as a plain list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "ResourceList", into = "ResourceList")]
pub struct ResourceSet {
    /// Editable in place (names, fingerprints, files), but not reordered and no
    /// address replaced: the index below holds positions and addresses' identities.
    pub resources: Vec<Resource>,
    /// Positions in `resources`, hashed by their addresses, each with its address's
    /// [`Address::identity`]: a lookup by a clone of the address (a plan's changes, the
    /// cost engine) is answered from the table alone, without touching the resource.
    /// 16 bytes a slot rather than a map holding a second copy of every address (64).
    index: hashbrown::HashTable<Slot>,
    hasher: foldhash::fast::RandomState,
}

/// Where a walk through a [`ResourceSet`] expects its next resources
/// ([`ResourceSet::position_at`]): the positions after the two runs it follows, and which
/// of them answered last.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cursor {
    next: [usize; 2],
    last: usize,
}

/// One entry of [`ResourceSet`]'s index.
#[derive(Debug, Clone, Copy)]
struct Slot {
    identity: usize,
    at: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct ResourceList(Vec<Resource>);

impl From<ResourceList> for ResourceSet {
    fn from(l: ResourceList) -> Self {
        ResourceSet::new(l.0)
    }
}

impl From<ResourceSet> for ResourceList {
    fn from(s: ResourceSet) -> Self {
        ResourceList(s.resources)
    }
}

impl PartialEq for ResourceSet {
    fn eq(&self, other: &Self) -> bool {
        self.resources == other.resources
    }
}

impl ResourceSet {
    /// Keeps the given order. A repeated address keeps its first resource.
    pub fn new(mut resources: Vec<Resource>) -> Self {
        let hasher = foldhash::fast::RandomState::default();
        let mut index = hashbrown::HashTable::with_capacity(resources.len());
        let mut kept = Vec::new();
        let slot = |i: usize, r: &Resource| Slot {
            identity: r.address.identity(),
            at: i,
        };
        let rehash = |s: &Slot| hasher.hash_one(&resources[s.at].address);
        for (i, r) in resources.iter().enumerate() {
            let hash = hasher.hash_one(&r.address);
            let same = |s: &Slot| resources[s.at].address == r.address;
            match index.entry(hash, same, rehash) {
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(slot(i, r));
                }
                hashbrown::hash_table::Entry::Occupied(_) => {
                    // Repeated: marked here, removed below (the first one stays).
                    kept.resize(resources.len(), true);
                    kept[i] = false;
                }
            }
        }
        if kept.is_empty() {
            return ResourceSet {
                resources,
                index,
                hasher,
            };
        }
        // Keep each address's first resource, in place (no second copy of the set), and
        // index the positions after the removal.
        let mut at = 0;
        resources.retain(|_| {
            at += 1;
            kept[at - 1]
        });
        index.clear();
        for (i, r) in resources.iter().enumerate() {
            let hash = hasher.hash_one(&r.address);
            let s = Slot {
                identity: r.address.identity(),
                at: i,
            };
            index.insert_unique(hash, s, |s: &Slot| {
                hasher.hash_one(&resources[s.at].address)
            });
        }
        ResourceSet {
            resources,
            index,
            hasher,
        }
    }

    pub fn get(&self, address: &Address) -> Option<&Resource> {
        self.position(address).map(|i| &self.resources[i])
    }

    /// The position of `address`, checking `hint` first: callers walking something made
    /// in the set's order (a plan's changes) pass their own position and skip the lookup.
    pub fn position_near(&self, address: &Address, hint: usize) -> Option<usize> {
        match self.resources.get(hint) {
            Some(r) if r.address == *address => Some(hint),
            _ => self.position(address),
        }
    }

    /// [`ResourceSet::get`], checking position `hint` first (see [`ResourceSet::position_near`]).
    pub fn get_near(&self, address: &Address, hint: usize) -> Option<&Resource> {
        self.position_near(address, hint)
            .map(|i| &self.resources[i])
    }

    /// [`ResourceSet::position`] for a walk in nearly the set's order, such as a sorted
    /// plan's changes: the positions `cursor` expects are checked first. It follows two
    /// runs at once, because sorting interleaves a second run with the first (a shared
    /// app's secrets, added after every tenant, sort in with their app; an observed set
    /// is in the order Fly listed it); a miss moves the run that did not just answer.
    pub fn position_at(&self, address: &Address, cursor: &mut Cursor) -> Option<usize> {
        for (k, next) in cursor.next.iter_mut().enumerate() {
            if let Some(r) = self.resources.get(*next)
                && r.address == *address
            {
                *next += 1;
                cursor.last = k;
                return Some(*next - 1);
            }
        }
        let p = self.position(address)?;
        let stale = 1 - cursor.last;
        cursor.next[stale] = p + 1;
        cursor.last = stale;
        Some(p)
    }

    pub fn position(&self, address: &Address) -> Option<usize> {
        let hash = self.hasher.hash_one(address);
        let identity = address.identity();
        self.index
            .find(hash, |s| {
                s.identity == identity || self.resources[s.at].address == *address
            })
            .map(|s| s.at)
    }

    /// Whether `r` is one of this set's resources itself (not a copy, nor a resource at
    /// the same address elsewhere).
    pub fn holds(&self, r: &Resource) -> bool {
        self.resources
            .as_ptr_range()
            .contains(&std::ptr::from_ref(r))
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Resource> {
        self.resources.iter()
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    pub fn count(&self, kind: Kind) -> usize {
        self.resources.iter().filter(|r| r.kind() == kind).count()
    }

    /// The resources sorted by address (natural order), for canonical output.
    pub fn sorted(&self) -> Vec<&Resource> {
        let mut v: Vec<&Resource> = self.resources.iter().collect();
        v.sort_by(|a, b| a.address.cmp(&b.address));
        v
    }
}

/// A tenant as declared (after generators are expanded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The Fly app its Machines live in.
    pub app: String,
    /// Where its volumes are exported (`backups.export`), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportConfig>,
}

/// A tenant's `backups.export`, its destination rendered. Credentials are references
/// (environment variables, files), never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportConfig {
    /// `s3://BUCKET/PREFIX`.
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Variable name → where its value comes from.
    #[serde(default)]
    pub credentials: BTreeMap<String, SecretSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<SecretSource>,
    pub image: String,
    pub keep: u32,
}

impl ExportConfig {
    /// The export of a tenant no longer in the spec: `template` (the defaults'
    /// `backups.export`, destination unrendered) rendered for `tenant` (its tier is not
    /// known any more: `tenant.tier` is empty). Pure.
    pub fn for_removed(
        template: &ExportConfig,
        org: &str,
        tenant: &str,
    ) -> Result<ExportConfig, String> {
        let ctx = minijinja::context! {
            org => org,
            tenant => minijinja::context! { name => tenant, tier => Option::<String>::None },
        };
        let mut engine = crate::spec::templates::Templates::new();
        let to = engine
            .render(&template.to, &ctx)
            .map_err(|e| format!("cannot render `{}`: {}", template.to, e.unwrap_or_default()))?;
        if let Some(problem) = crate::spec::resolve::export_target_problem(&to) {
            return Err(format!("export destination `{to}` {problem}"));
        }
        Ok(ExportConfig {
            to,
            ..template.clone()
        })
    }
}

fn default_fleet() -> String {
    DEFAULT_FLEET.to_string()
}

impl Desired {
    /// Rebuilds a desired state from its resources (a saved plan carries only those).
    pub fn from_resources(org: &str, resources: ResourceSet) -> Desired {
        let fleet = resources
            .iter()
            .find_map(|r| {
                r.machine()
                    .and_then(|m| m.metadata.get(META_FLEET).cloned())
            })
            .unwrap_or_else(default_fleet);
        let mut apps: Vec<String> = resources.iter().map(|r| r.app.clone()).collect();
        apps.sort();
        apps.dedup();
        let mut tenants: Vec<TenantInfo> = Vec::new();
        for r in resources.iter() {
            if let (Some(t), Spec::Machine(_)) = (&r.tenant, &r.spec)
                && !tenants.iter().any(|x| &x.name == t)
            {
                tenants.push(TenantInfo {
                    name: t.clone(),
                    tier: None,
                    app: r.app.clone(),
                    export: None,
                });
            }
        }
        Desired {
            org: org.to_string(),
            fleet,
            resources,
            default_usage: Usage::default(),
            org_plan: Default::default(),
            tenants,
            apps,
            fingerprint_key: None,
            removal_export: None,
        }
    }
}

/// The desired state: everything a spec declares, fully resolved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    pub org: String,
    /// The fleet this spec manages (`fleet:`; default `default`).
    #[serde(default = "default_fleet")]
    pub fleet: String,
    pub resources: ResourceSet,
    /// The spec's default usage assumptions (used to price resources that are only
    /// observed, such as those about to be deleted).
    pub default_usage: Usage,
    /// The organization's plan (`org_plan:`, `org_plan_legacy:`), for its fee and free
    /// allowances.
    #[serde(default)]
    pub org_plan: crate::platform::PlanChoice,
    pub tenants: Vec<TenantInfo>,
    /// Every app name the spec manages (tenant apps and shared apps).
    pub apps: Vec<String>,
    /// Where the fingerprint key lives (`fingerprint_key:`), when the spec names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_key: Option<SecretSource>,
    /// `defaults.backups.export` with its destination still a template: what a tenant
    /// removed from the spec is exported with before its app (and with it its volumes'
    /// snapshots) is deleted ([`ExportConfig::for_removed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal_export: Option<ExportConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(tenant: &str, app: &str) -> Resource {
        Resource {
            address: Address::app(&Owner::Tenant(tenant)),
            tenant: Some(tenant.into()),
            app: app.into(),
            prevent_destroy: false,
            id: None,
            usage: None,
            spec: Spec::App(Box::new(AppSpec {
                name: app.into(),
                org: "o".into(),
                shared: false,
            })),
        }
    }

    #[test]
    fn a_set_indexes_positions_and_keeps_the_first_of_a_repeated_address() {
        let set = ResourceSet::new(vec![
            app("a", "first-a"),
            app("b", "b"),
            app("a", "second-a"),
            app("c", "c"),
            app("b", "second-b"),
        ]);
        let apps: Vec<&str> = set.iter().map(|r| r.app.as_str()).collect();
        assert_eq!(apps, ["first-a", "b", "c"]);
        for (i, t) in ["a", "b", "c"].iter().enumerate() {
            let address = Address::app(&Owner::Tenant(t));
            assert_eq!(set.position(&address), Some(i));
            assert_eq!(set.get(&address).map(|r| r.app.as_str()), Some(apps[i]));
        }
        assert_eq!(set.get(&Address::app(&Owner::Tenant("d"))), None);
        let json = serde_json::to_string(&set).unwrap();
        let back: ResourceSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        assert_eq!(back.position(&Address::app(&Owner::Tenant("c"))), Some(2));
    }

    proptest::proptest! {
        /// Whatever order a walk takes, and with addresses the set does not hold, a
        /// cursor answers what the index answers.
        #[test]
        fn a_cursor_answers_as_the_index_does(
            walk in proptest::collection::vec(0usize..40, 0..120)
        ) {
            let tenant = |i: usize| format!("t{i}");
            let set = ResourceSet::new((0..30).map(|i| app(&tenant(i), "a")).collect());
            let mut cursor = Cursor::default();
            for i in walk {
                let address = Address::app(&Owner::Tenant(&tenant(i)));
                proptest::prop_assert_eq!(
                    set.position_at(&address, &mut cursor),
                    set.position(&address)
                );
            }
        }
    }

    #[test]
    fn a_cursor_follows_two_interleaved_runs() {
        // Two runs, 0..10 and 10..20, interleaved: after the first of each, every
        // position is where the cursor expects it (checked by moving the index away).
        let tenant = |i: usize| format!("t{i}");
        let mut set = ResourceSet::new((0..20).map(|i| app(&tenant(i), "a")).collect());
        let mut cursor = Cursor::default();
        let first = [0, 10];
        for i in first {
            let address = Address::app(&Owner::Tenant(&tenant(i)));
            assert_eq!(set.position_at(&address, &mut cursor), Some(i));
        }
        set.index.clear();
        for k in 1..10 {
            for i in [k, 10 + k] {
                let address = Address::app(&Owner::Tenant(&tenant(i)));
                assert_eq!(set.position_at(&address, &mut cursor), Some(i), "{i}");
            }
        }
    }
}
