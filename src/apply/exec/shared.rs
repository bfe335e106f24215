//! What the operations of one run share: the client, the desired and observed states,
//! the secret values, and what earlier operations learned (Fly IDs of created
//! resources, regions of new volumes, whether an app's secrets changed on Fly).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::{ExecOptions, OpError};
use crate::apply::journal::Journal;
use crate::apply::ops::{Op, OpKind};
use crate::fly::client::Client;
use crate::resource::{Address, Resource, ResourceSet, Spec};
use crate::secrets::SecretValues;
use crate::state::Observed;

/// Everything operations share.
pub struct Shared {
    pub client: Client,
    pub org: String,
    pub desired: ResourceSet,
    pub observed: Observed,
    pub secrets: SecretValues,
    pub opts: ExecOptions,
    pub journal: Option<Journal>,
    pub cancel: Arc<AtomicBool>,
    /// Fly IDs of volumes and Machines by address: observed ones, then created ones.
    ids: Mutex<HashMap<Address, String>>,
    /// Regions of volumes created in this run.
    regions: Mutex<HashMap<Address, String>>,
    /// Addresses of the operations of each rollout wave (for the gates).
    wave_members: HashMap<usize, Vec<Address>>,
    /// Apps whose secrets changed on Fly in this run (their Machines must restart).
    secrets_changed: Mutex<HashMap<String, bool>>,
    /// Fly's digest of each observed secret, by app and name.
    observed_digests: HashMap<String, HashMap<String, String>>,
    /// Fly's digests after this run set an app's secrets, by app and name.
    set_digests: Mutex<HashMap<String, HashMap<String, String>>>,
    /// Snapshot retention of each desired volume that has a backup policy.
    retention: HashMap<Address, u32>,
    /// Volumes being moved: the Fly ID of the volume each new one is copied from.
    forks: Mutex<HashMap<Address, String>>,
    /// Removed tenants exported first: the fleet's name and, per tenant, its export
    /// credentials as read when the apply started (or why they could not be).
    removal_exports: RemovalExports,
}

/// The export credentials of the tenants an apply exports before removing them.
#[derive(Default)]
pub struct RemovalExports {
    pub fleet: String,
    pub credentials: HashMap<String, Result<crate::ops::backup::Credentials, String>>,
}

/// A lock that survives a panic elsewhere (the data are plain maps).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        org: String,
        desired: ResourceSet,
        observed: Observed,
        secrets: SecretValues,
        opts: ExecOptions,
        journal: Option<Journal>,
        cancel: Arc<AtomicBool>,
    ) -> Shared {
        let ids = observed_ids(&observed);
        let observed_digests = observed_digests(&observed);
        let retention = retention_by_volume(&desired);
        Shared {
            client,
            org,
            desired,
            observed,
            secrets,
            opts,
            journal,
            cancel,
            ids: Mutex::new(ids),
            regions: Mutex::new(HashMap::new()),
            wave_members: HashMap::new(),
            secrets_changed: Mutex::new(HashMap::new()),
            observed_digests,
            set_digests: Mutex::new(HashMap::new()),
            retention,
            forks: Mutex::new(HashMap::new()),
            removal_exports: RemovalExports::default(),
        }
    }

    /// The credentials of the removed tenants' exports (read before the run).
    pub fn with_removal_exports(mut self, exports: RemovalExports) -> Shared {
        self.removal_exports = exports;
        self
    }

    pub(super) fn removal_exports(&self) -> &RemovalExports {
        &self.removal_exports
    }

    /// The volume at `a` is created as a copy (fork) of volume `source` (a region move).
    pub(super) fn set_fork_source(&self, a: &Address, source: &str) {
        lock(&self.forks).insert(a.clone(), source.to_string());
    }

    /// The volume a new volume at `a` is copied from (`None`: created empty).
    pub(super) fn fork_source(&self, a: &Address) -> Option<String> {
        lock(&self.forks).get(a).cloned()
    }

    /// Remembers which Machines each rollout wave updates (before the run starts).
    pub(super) fn record_waves(&mut self, ops: &[Op]) {
        for op in ops {
            if let (Some(w), OpKind::UpdateMachine { restart: true, .. }) = (op.wave, &op.kind) {
                self.wave_members
                    .entry(w)
                    .or_default()
                    .push(op.address.clone());
            }
        }
    }

    pub(super) fn wave_members(&self, wave: usize) -> &[Address] {
        self.wave_members.get(&wave).map_or(&[], Vec::as_slice)
    }

    pub(super) fn id_of(&self, a: &Address) -> Option<String> {
        lock(&self.ids).get(a).cloned()
    }

    pub(super) fn set_id(&self, a: &Address, id: &str) {
        lock(&self.ids).insert(a.clone(), id.to_string());
    }

    /// The Fly ID of `a`, which an earlier operation or the observation must have found.
    pub(super) fn known_id(&self, a: &Address, what: &str) -> Result<String, OpError> {
        self.id_of(a)
            .ok_or_else(|| OpError::internal(format!("the {what}'s ID is unknown")))
    }

    /// A volume created in this run: its ID and region.
    pub(super) fn set_created_volume(&self, a: &Address, id: &str, region: &str) {
        self.set_id(a, id);
        lock(&self.regions).insert(a.clone(), region.to_string());
    }

    /// The region of a volume created in this run (`None`: not created in this run).
    pub(super) fn created_region(&self, a: &Address) -> Option<String> {
        lock(&self.regions).get(a).cloned()
    }

    pub(super) fn created_now(&self, a: &Address) -> bool {
        lock(&self.regions).contains_key(a)
    }

    /// Whether `app` did not exist when the run observed the organization (so it was
    /// created in this run, a moment ago): Fly may answer 404 for it for a while.
    pub(super) fn app_is_new(&self, app: &str) -> bool {
        !self
            .observed
            .resources
            .iter()
            .any(|r| matches!(r.spec, Spec::App(_)) && r.app == app)
    }

    pub(super) fn set_secrets_changed(&self, app: &str, changed: bool) {
        lock(&self.secrets_changed).insert(app.to_string(), changed);
    }

    /// Whether setting `app`'s secrets changed anything on Fly (`None`: not set yet).
    pub(super) fn secrets_changed(&self, app: &str) -> Option<bool> {
        lock(&self.secrets_changed).get(app).copied()
    }

    pub(super) fn observed_digests(&self, app: &str) -> Option<&HashMap<String, String>> {
        self.observed_digests.get(app)
    }

    /// Remembers Fly's digests after setting `app`'s secrets.
    pub(super) fn set_secret_digests(&self, app: &str, digests: HashMap<String, String>) {
        lock(&self.set_digests).insert(app.to_string(), digests);
    }

    /// Adds to a Machine's metadata the record of Fly's digests of its app's secrets as
    /// flotilla leaves them (those this run set, else the observed ones), so that a later
    /// change on Fly shows as a change outside flotilla.
    pub(super) fn record_secret_digests(
        &self,
        app: &str,
        m: &crate::resource::MachineSpec,
        metadata: &mut crate::resource::StrMap,
    ) {
        let set = lock(&self.set_digests);
        let mut tags = std::collections::BTreeMap::new();
        for name in &m.secrets {
            let digest = match set.get(app) {
                Some(after) => after.get(name),
                None => self.observed_digests.get(app).and_then(|d| d.get(name)),
            };
            if let Some(d) = digest.filter(|d| !d.is_empty()) {
                tags.insert(name.clone(), crate::secrets::digest_tag(d));
            }
        }
        let key = crate::secrets::META_SECRET_DIGESTS.to_string();
        if tags.is_empty() {
            metadata.remove(&key);
        } else {
            metadata.insert(key, crate::secrets::encode(&tags));
        }
    }

    /// The snapshot retention a new volume gets (its policy's, else Fly's default).
    pub(super) fn retention(&self, volume: &Address) -> u32 {
        self.retention
            .get(volume)
            .copied()
            .unwrap_or(crate::platform::SNAPSHOT_RETENTION_DEFAULT)
    }

    pub(super) fn resource(&self, a: &Address) -> Result<&Resource, OpError> {
        self.desired
            .get(a)
            .ok_or_else(|| OpError::internal(format!("{a} is not in the desired state")))
    }

    /// Writes a note about a resource to the journal.
    pub(super) fn note(&self, a: &Address, detail: &str) {
        if let Some(j) = &self.journal {
            j.note(a, detail);
        }
    }

    /// A deadline `wait_timeout` of API time from now.
    pub(super) fn deadline(&self) -> Instant {
        Instant::now() + self.opts.wait_timeout.div_f64(self.client.time_scale())
    }

    /// `wait_timeout` in whole seconds, for messages.
    pub(super) fn wait_secs(&self) -> u64 {
        self.opts.wait_timeout.as_secs()
    }
}

fn observed_ids(observed: &Observed) -> HashMap<Address, String> {
    let mut ids = HashMap::new();
    for (a, m) in &observed.machines {
        ids.insert(a.clone(), m.id.clone());
    }
    for (a, v) in &observed.volumes {
        ids.insert(a.clone(), v.id.clone());
    }
    ids
}

fn observed_digests(observed: &Observed) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    for r in observed.resources.iter() {
        if let Spec::Secret(s) = &r.spec {
            out.entry(r.app.clone())
                .or_default()
                .insert(s.name.clone(), s.digest.clone().unwrap_or_default());
        }
    }
    out
}

fn retention_by_volume(desired: &ResourceSet) -> HashMap<Address, u32> {
    let mut retention = HashMap::new();
    for r in desired.iter() {
        if let Spec::BackupPolicy(bp) = &r.spec {
            // The first policy of a volume counts.
            retention
                .entry(bp.volume.clone())
                .or_insert(bp.snapshot_retention);
        }
    }
    retention
}
