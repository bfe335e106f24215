//! The executor: runs the operation graph against the Fly API with bounded concurrency.
//!
//! Ready operations start as soon as their dependencies finish (app creation first: it is
//! the longest chain), up to `concurrency` at once. A failed operation skips everything
//! that depends on it and nothing else, so one tenant's failure does not stop the others.
//! Creates whose outcome is unknown are looked up before they are retried, so a lost
//! response never makes a second Machine or volume. Ctrl-C stops new work; operations in
//! flight finish.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinSet;

use crate::apply::journal::Journal;
use crate::apply::ops::{Op, OpKind};
use crate::apply::progress::Progress;
use crate::fly::client::{ApiError, Client, Lease};
use crate::fly::convert::{create_machine_body, create_volume_body, machine_config};
use crate::fly::types as fly;
use crate::resource::{
    Address, META_INDEX, META_ROLE, META_TENANT, MachineSpec, Resource, ResourceSet, Spec,
};
use crate::secrets::SecretValues;
use crate::state::Observed;

#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Operations in flight at once.
    pub concurrency: usize,
    /// How long (API time) to wait for a Machine to start, a volume to detach, a
    /// snapshot to finish.
    pub wait_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending,
    Done(String),
    Failed(String),
    Skipped(String),
}

/// What happened to each operation.
#[derive(Debug, Clone)]
pub struct ExecReport {
    pub ops: Vec<Op>,
    pub status: Vec<Status>,
    pub wall: Duration,
    pub interrupted: bool,
}

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
    /// Snapshot retention of each desired volume that has a backup policy.
    retention: HashMap<Address, u32>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

type OpResult = Result<String, String>;

/// App creations in flight at once (Fly allows a burst of 3, then one a second).
const APP_LANE: usize = 4;

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
        let mut ids = HashMap::new();
        for (a, m) in &observed.machines {
            ids.insert(a.clone(), m.id.clone());
        }
        for (a, v) in &observed.volumes {
            ids.insert(a.clone(), v.id.clone());
        }
        let mut observed_digests: HashMap<String, HashMap<String, String>> = HashMap::new();
        for r in observed.resources.iter() {
            if let Spec::Secret(s) = &r.spec {
                observed_digests
                    .entry(r.app.clone())
                    .or_default()
                    .insert(s.name.clone(), s.digest.clone().unwrap_or_default());
            }
        }
        let mut retention = HashMap::new();
        for r in desired.iter() {
            if let Spec::BackupPolicy(bp) = &r.spec {
                // The first policy of a volume counts.
                retention
                    .entry(bp.volume.clone())
                    .or_insert(bp.snapshot_retention);
            }
        }
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
            retention,
        }
    }

    fn id_of(&self, a: &Address) -> Option<String> {
        lock(&self.ids).get(a).cloned()
    }

    fn set_id(&self, a: &Address, id: &str) {
        lock(&self.ids).insert(a.clone(), id.to_string());
    }

    fn resource(&self, a: &Address) -> Result<&Resource, String> {
        self.desired
            .get(a)
            .ok_or_else(|| format!("{a} is not in the desired state"))
    }

    /// A deadline `wait_timeout` of API time from now.
    fn deadline(&self) -> Instant {
        Instant::now() + self.opts.wait_timeout.div_f64(self.client.time_scale())
    }
}

/// Runs `ops`, reporting progress and journaling every mutation.
pub async fn execute(mut shared: Shared, ops: Vec<Op>, progress: &Progress) -> ExecReport {
    let started = Instant::now();
    for op in &ops {
        if let (Some(w), OpKind::UpdateMachine { restart: true, .. }) = (op.wave, &op.kind) {
            shared
                .wave_members
                .entry(w)
                .or_default()
                .push(op.address.clone());
        }
    }
    let shared = Arc::new(shared);
    let n = ops.len();
    let mut waiting: Vec<usize> = ops.iter().map(|o| o.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for o in &ops {
        for d in &o.deps {
            dependents[*d].push(o.index);
        }
    }
    let mut status = vec![Status::Pending; n];
    let mut ready: BinaryHeap<Reverse<(u8, usize)>> = ops
        .iter()
        .filter(|o| o.deps.is_empty())
        .map(|o| Reverse((o.kind.priority(), o.index)))
        .collect();
    let ops = Arc::new(ops);
    let mut running: JoinSet<(usize, OpResult, Duration)> = JoinSet::new();
    let mut task_op: HashMap<tokio::task::Id, usize> = HashMap::new();
    let limit = shared.opts.concurrency.max(1);
    let mut interrupted = false;
    let mut apps_running = 0usize;
    loop {
        let mut deferred = Vec::new();
        while running.len() < limit {
            if shared.cancel.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            let Some(Reverse((prio, i))) = ready.pop() else {
                break;
            };
            // App creations queue on Fly's per-organization limit (about one a second):
            // keep only a few in flight so the slots go to tenants already under way.
            let is_app = matches!(ops[i].kind, OpKind::CreateApp { .. });
            if is_app && apps_running >= APP_LANE {
                deferred.push(Reverse((prio, i)));
                continue;
            }
            if is_app {
                apps_running += 1;
            }
            let sh = Arc::clone(&shared);
            let ops2 = Arc::clone(&ops);
            progress.started(&ops[i]);
            let handle = running.spawn(async move {
                let op = &ops2[i];
                let t = Instant::now();
                if let Some(j) = &sh.journal {
                    j.record(op, "started", "", t.elapsed());
                }
                let r = run(&sh, op).await;
                let d = t.elapsed();
                if let Some(j) = &sh.journal {
                    match &r {
                        Ok(detail) => j.record(op, "ok", detail, d),
                        Err(e) => j.record(op, "failed", e, d),
                    }
                }
                (i, r, d)
            });
            task_op.insert(handle.id(), i);
        }
        ready.extend(deferred);
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (i, r, d) = match joined {
            Ok((id, x)) => {
                task_op.remove(&id);
                x
            }
            Err(e) => {
                // A panicking operation is a bug; it fails alone (with what depends on it).
                let Some(i) = task_op.remove(&e.id()) else {
                    continue;
                };
                (i, Err(format!("internal error: {e}")), Duration::ZERO)
            }
        };
        if matches!(ops[i].kind, OpKind::CreateApp { .. }) {
            apps_running = apps_running.saturating_sub(1);
        }
        match r {
            Ok(detail) => {
                progress.finished(&ops[i], true, &detail, d);
                status[i] = Status::Done(detail);
                for &k in &dependents[i] {
                    waiting[k] -= 1;
                    if waiting[k] == 0 && status[k] == Status::Pending {
                        ready.push(Reverse((ops[k].kind.priority(), k)));
                    }
                }
            }
            Err(e) => {
                progress.finished(&ops[i], false, &e, d);
                status[i] = Status::Failed(e);
                // Skip everything downstream.
                let mut stack = dependents[i].clone();
                while let Some(k) = stack.pop() {
                    if status[k] == Status::Pending {
                        status[k] = Status::Skipped(format!("{} failed", ops[i].address));
                        if let Some(j) = &shared.journal {
                            j.record(
                                &ops[k],
                                "skipped",
                                &format!("{} failed", ops[i].address),
                                Duration::ZERO,
                            );
                        }
                        stack.extend(dependents[k].iter().copied());
                    }
                }
            }
        }
    }
    for (k, s) in status.iter_mut().enumerate() {
        if *s == Status::Pending {
            *s = Status::Skipped(if interrupted {
                "interrupted before it started".into()
            } else {
                "not reached".into()
            });
            if let Some(j) = &shared.journal {
                j.record(&ops[k], "skipped", "not started", Duration::ZERO);
            }
        }
    }
    ExecReport {
        ops: (*ops).clone(),
        status,
        wall: started.elapsed(),
        interrupted,
    }
}

fn err(e: ApiError) -> String {
    e.to_string()
}

async fn run(sh: &Shared, op: &Op) -> OpResult {
    match &op.kind {
        OpKind::CreateApp { app } => create_app(sh, app).await,
        OpKind::SetSecrets { app, set, delete } => set_secrets(sh, app, set, delete).await,
        OpKind::CreateVolume => create_volume(sh, &op.address, None)
            .await
            .map(|(id, region)| format!("{id} in {region}")),
        OpKind::ExtendVolume { size_gb } => {
            let id = sh.id_of(&op.address).ok_or("the volume's ID is unknown")?;
            sh.client
                .extend_volume(&op.app, &id, *size_gb)
                .await
                .map_err(err)?;
            Ok(format!("{id} extended to {size_gb} GB"))
        }
        OpKind::UpdateBackup { volume } => update_backup(sh, &op.address, volume, &op.app).await,
        OpKind::CreateMachine => create_machine(sh, op).await,
        OpKind::UpdateMachine {
            restart,
            secrets_only,
            metadata,
        } => {
            let unchanged = *secrets_only && lock(&sh.secrets_changed).get(&op.app) == Some(&false);
            update_machine(sh, op, *restart && !unchanged, metadata).await
        }
        OpKind::DeleteMachine { id } => delete_machine(sh, &op.app, id).await,
        OpKind::DeleteVolume { id, snapshot } => delete_volume(sh, &op.app, id, *snapshot).await,
        OpKind::DeleteApp { app } => {
            sh.client.delete_app(app).await.map_err(err)?;
            Ok(format!("app {app} destroyed"))
        }
        OpKind::Gate { wave } => gate(sh, *wave).await,
    }
}

async fn create_app(sh: &Shared, app: &str) -> OpResult {
    for _ in 0..4 {
        match sh.client.create_app(app, &sh.org).await {
            Ok(()) => return Ok(format!("app {app}")),
            Err(e) if e.is_unknown() => {
                if sh.client.get_app(app).await.map_err(err)?.is_some() {
                    return Ok(format!("app {app} (created; its response was lost)"));
                }
            }
            Err(e) if e.is_name_taken() => {
                // Taken: by an earlier attempt of ours, or by someone else?
                return if app_is_ours(sh, app).await? {
                    Ok(format!("app {app} (already existed)"))
                } else {
                    Err(format!(
                        "{e}\n  hint: the name {app} is taken by another organization; change naming.app"
                    ))
                };
            }
            Err(e) => return Err(err(e)),
        }
    }
    Err(format!(
        "app {app}: creation kept failing with an unknown outcome"
    ))
}

/// Whether the app `app` (whose name is taken) belongs to this run's organization.
async fn app_is_ours(sh: &Shared, app: &str) -> Result<bool, String> {
    match sh.client.get_app(app).await {
        Ok(Some(a)) => match a.organization {
            Some(o) => Ok(o.slug == sh.org),
            // No owner in the answer: look for it among the organization's apps.
            None => Ok(sh
                .client
                .list_apps(&sh.org)
                .await
                .map_err(err)?
                .iter()
                .any(|a| a.name == app)),
        },
        // Not visible to this token: someone else's.
        Ok(None) => Ok(false),
        Err(e) if matches!(e.status(), Some(401 | 403)) => Ok(false),
        Err(e) => Err(err(e)),
    }
}

async fn set_secrets(
    sh: &Shared,
    app: &str,
    set: &[(String, Address)],
    delete: &[String],
) -> OpResult {
    let mut values = BTreeMap::new();
    for (name, addr) in set {
        let v = sh
            .secrets
            .values
            .get(addr)
            .ok_or_else(|| format!("the value of secret {name} was not loaded"))?;
        values.insert(name.clone(), Some(v));
    }
    for name in delete {
        values.insert(name.clone(), None);
    }
    let after = sh.client.update_secrets(app, &values).await.map_err(err)?;
    // Did anything change on Fly? Compare Fly's digests before and after (equal digests,
    // equal values), so Machines restart only when their secrets really changed.
    let before = sh.observed_digests.get(app);
    let now: HashMap<&str, &str> = after
        .iter()
        .map(|s| (s.name.as_str(), s.digest.as_str()))
        .collect();
    let changed = !delete.is_empty()
        || set.iter().any(|(name, _)| {
            let now = now.get(name.as_str()).copied();
            now.is_none() || before.and_then(|b| b.get(name)).map(String::as_str) != now
        });
    lock(&sh.secrets_changed).insert(app.to_string(), changed);
    let names: Vec<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
    let mut detail = format!(
        "set {}{}",
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        },
        if changed { "" } else { " (values unchanged)" }
    );
    if !delete.is_empty() {
        detail.push_str(&format!("; removed {}", delete.join(", ")));
    }
    Ok(detail)
}

/// The primary region, then the fallbacks, without repeats.
fn regions_for(primary: &str, fallbacks: &[String]) -> Vec<String> {
    let mut out = vec![primary.to_string()];
    for r in fallbacks {
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    out
}

/// Creates a volume in its region or the first fallback with capacity (skipping
/// `not_in`). Returns its ID and region.
async fn create_volume(
    sh: &Shared,
    address: &Address,
    not_in: Option<&[String]>,
) -> Result<(String, String), String> {
    let r = sh.resource(address)?;
    let v = r.volume().ok_or("not a volume")?;
    let retention = sh
        .retention
        .get(address)
        .copied()
        .unwrap_or(crate::platform::SNAPSHOT_RETENTION_DEFAULT);
    let mut regions = regions_for(&v.region, &v.fallback_regions);
    if let Some(skip) = not_in {
        regions.retain(|r| !skip.contains(r));
    }
    let mut full = Vec::new();
    for region in &regions {
        let body = create_volume_body(&v.name, region, v.size_gb, v.encrypted, retention);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match sh.client.create_volume(&r.app, &body).await {
                Ok(vol) => {
                    sh.set_id(address, &vol.id);
                    lock(&sh.regions).insert(address.clone(), region.clone());
                    return Ok((vol.id, region.clone()));
                }
                Err(e) if e.is_capacity() => {
                    full.push(region.clone());
                    break;
                }
                Err(e) if e.is_unknown() && attempts < 4 => {
                    // Did it get created? A new, unattached volume of this name in this
                    // region that we did not know about is the one.
                    let known: HashSet<&str> = sh
                        .observed
                        .volumes
                        .values()
                        .map(|x| x.id.as_str())
                        .collect();
                    let found = sh
                        .client
                        .list_volumes(&r.app)
                        .await
                        .map_err(err)?
                        .into_iter()
                        .find(|x| {
                            x.name == v.name
                                && &x.region == region
                                && x.attached_machine_id.is_none()
                                && !known.contains(x.id.as_str())
                                && !matches!(
                                    x.state.as_str(),
                                    "destroyed" | "destroying" | "pending_destroy"
                                )
                        });
                    if let Some(x) = found {
                        sh.set_id(address, &x.id);
                        lock(&sh.regions).insert(address.clone(), region.clone());
                        return Ok((x.id, region.clone()));
                    }
                }
                Err(e) => return Err(err(e)),
            }
        }
    }
    Err(format!(
        "no capacity for volume {} in {}\n  hint: add fallback_regions, or try again later",
        v.name,
        full.join(", ")
    ))
}

async fn update_backup(sh: &Shared, address: &Address, volume: &Address, app: &str) -> OpResult {
    let Some(Spec::BackupPolicy(b)) = sh.desired.get(address).map(|r| &r.spec) else {
        return Err("not a snapshot policy".into());
    };
    let id = sh.id_of(volume).ok_or("the volume's ID is unknown")?;
    let created_now = lock(&sh.regions).contains_key(volume);
    if created_now && b.auto_backup {
        // Created with this retention a moment ago; daily snapshots are on by default.
        return Ok(format!(
            "{id}: retention {} days, daily snapshots on (set at creation)",
            b.snapshot_retention
        ));
    }
    sh.client
        .update_volume(app, &id, b.snapshot_retention, b.auto_backup)
        .await
        .map_err(err)?;
    Ok(format!(
        "{id}: retention {} days, daily snapshots {}",
        b.snapshot_retention,
        if b.auto_backup { "on" } else { "off" }
    ))
}

/// Waits until a Machine is started; fails early when it crashed.
async fn wait_started(sh: &Shared, app: &str, id: &str, check_health: bool) -> Result<(), String> {
    let deadline = sh.deadline();
    loop {
        let reached = sh.client.wait(app, id, "started", 60).await.map_err(err)?;
        let m = sh
            .client
            .get_machine(app, id)
            .await
            .map_err(err)?
            .ok_or_else(|| format!("Machine {id} disappeared"))?;
        if m.state == "failed" {
            return Err(format!("Machine {id} failed to boot (state failed)"));
        }
        if reached && m.state == "started" {
            if !check_health {
                return Ok(());
            }
            match checks_status(&m) {
                Checks::Passing => return Ok(()),
                Checks::Critical(names) if Instant::now() >= deadline => {
                    return Err(format!("Machine {id}: checks not passing: {names}"));
                }
                _ => {}
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "Machine {id} did not start within {} s (state {})",
                sh.opts.wait_timeout.as_secs(),
                m.state
            ));
        }
        sh.client.sleep(Duration::from_secs(1)).await;
    }
}

enum Checks {
    Passing,
    Critical(String),
}

fn checks_status(m: &fly::Machine) -> Checks {
    let Some(list) = &m.checks else {
        return Checks::Passing;
    };
    let bad: Vec<&str> = list
        .iter()
        .filter(|c| c.status != "passing")
        .map(|c| c.name.as_str())
        .collect();
    if bad.is_empty() {
        Checks::Passing
    } else {
        Checks::Critical(bad.join(", "))
    }
}

/// Waits until a volume is no longer attached (Fly clears it a while after its Machine
/// is destroyed).
async fn wait_detached(sh: &Shared, app: &str, id: &str) -> Result<(), String> {
    let deadline = sh.deadline();
    loop {
        match sh.client.get_volume(app, id).await.map_err(err)? {
            None => return Ok(()),
            Some(v) if v.attached_machine_id.is_none() => return Ok(()),
            Some(v) => {
                if Instant::now() >= deadline {
                    return Err(format!(
                        "volume {id} is still attached to {} after {} s",
                        v.attached_machine_id.unwrap_or_default(),
                        sh.opts.wait_timeout.as_secs()
                    ));
                }
            }
        }
        sh.client.sleep(Duration::from_secs(1)).await;
    }
}

/// The metadata that identifies the Machine at `address` (for finding it again).
fn identity(m: &MachineSpec) -> Vec<(&'static str, String)> {
    let mut v = vec![
        (META_INDEX, m.index.to_string()),
        (META_ROLE, m.role.clone()),
    ];
    if let Some(t) = m.metadata.get(META_TENANT) {
        v.push((META_TENANT, t.clone()));
    }
    v
}

async fn create_machine(sh: &Shared, op: &Op) -> OpResult {
    let r = sh.resource(&op.address)?;
    let m = r.machine().ok_or("not a Machine")?;
    let app = r.app.as_str();
    // A kept volume that its old Machine (replaced) still holds must detach first.
    for mt in &m.mounts {
        if let Some(v) = sh.observed.volumes.get(&mt.volume)
            && v.attached_machine_id.is_some()
            && !lock(&sh.regions).contains_key(&mt.volume)
        {
            wait_detached(sh, app, &v.id).await?;
        }
    }
    let mut tried: Vec<String> = Vec::new();
    loop {
        let volume_ids: HashMap<Address, String> = m
            .mounts
            .iter()
            .filter_map(|mt| sh.id_of(&mt.volume).map(|id| (mt.volume.clone(), id)))
            .collect();
        if volume_ids.len() != m.mounts.len() {
            return Err("a volume this Machine mounts has no ID".into());
        }
        // With a volume, the Machine goes where the volume is.
        let mount_region = m.mounts.first().and_then(|mt| {
            lock(&sh.regions).get(&mt.volume).cloned().or_else(|| {
                sh.observed
                    .volumes
                    .get(&mt.volume)
                    .map(|v| v.region.clone())
            })
        });
        let candidates: Vec<String> = match &mount_region {
            Some(r) => vec![r.clone()],
            None => regions_for(&m.region, &m.fallback_regions)
                .into_iter()
                .filter(|r| !tried.contains(r))
                .collect(),
        };
        let Some(region) = candidates.first().cloned() else {
            return Err(format!(
                "no capacity for Machine {} in {}\n  hint: add fallback_regions, or try again later",
                m.name,
                tried.join(", ")
            ));
        };
        let config = machine_config(m, &volume_ids, None);
        let body = create_machine_body(m, &region, &config);
        match create_once(sh, app, m, &body).await {
            Ok(id) => {
                sh.set_id(&op.address, &id);
                wait_started(sh, app, &id, false).await?;
                return Ok(format!("{id} in {region}"));
            }
            Err(e) if e.is_capacity() => {
                tried.push(region.clone());
                // The volume and the Machine move together: a volume made for this
                // Machine a moment ago (still empty) is moved to the next region.
                let Some(mt) = m.mounts.first() else { continue };
                if !lock(&sh.regions).contains_key(&mt.volume) {
                    return Err(format!(
                        "{e}\n  hint: the Machine's existing volume is in {region}, which has no capacity now; try again later"
                    ));
                }
                let old = sh.id_of(&mt.volume).unwrap_or_default();
                sh.client.delete_volume(app, &old).await.map_err(err)?;
                let (id, r2) = create_volume(sh, &mt.volume, Some(&tried)).await?;
                if let Some(j) = &sh.journal {
                    j.note(&mt.volume, &format!("moved from {region} to {r2} (no Machine capacity in {region}): {old} → {id}"));
                }
            }
            Err(e) => return Err(err(e)),
        }
    }
}

/// One create, with lookups after unknown outcomes. Returns the Machine's ID.
async fn create_once(
    sh: &Shared,
    app: &str,
    m: &MachineSpec,
    body: &Value,
) -> Result<String, ApiError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        match sh.client.create_machine(app, body).await {
            Ok(machine) => return Ok(machine.id),
            Err(e) if e.is_unknown() && attempts < 4 => {
                let ident = identity(m);
                let pairs: Vec<(&str, &str)> =
                    ident.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let found = sh.client.find_machines(app, &pairs).await?;
                if let Some(x) = found.into_iter().find(|x| {
                    !matches!(x.state.as_str(), "destroyed" | "destroying") && x.name == m.name
                }) {
                    return Ok(x.id);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

async fn update_machine(
    sh: &Shared,
    op: &Op,
    restart: bool,
    metadata: &[(String, Option<String>)],
) -> OpResult {
    let r = sh.resource(&op.address)?;
    let m = r.machine().ok_or("not a Machine")?;
    let id = sh.id_of(&op.address).ok_or("the Machine's ID is unknown")?;
    let app = r.app.as_str();
    if !restart {
        for (k, v) in metadata {
            match v {
                Some(v) => sh.client.set_metadata(app, &id, k, v).await.map_err(err)?,
                None => sh.client.delete_metadata(app, &id, k).await.map_err(err)?,
            }
        }
        return Ok(format!(
            "{id}: metadata {} (no restart)",
            metadata
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let lease = take_lease(sh, app, &id).await?;
    let result = async {
        let current = sh
            .client
            .get_machine(app, &id)
            .await
            .map_err(err)?
            .ok_or_else(|| format!("Machine {id} disappeared"))?;
        let volume_ids: HashMap<Address, String> = m
            .mounts
            .iter()
            .filter_map(|mt| sh.id_of(&mt.volume).map(|v| (mt.volume.clone(), v)))
            .collect();
        let config = machine_config(m, &volume_ids, Some(&current.config));
        sh.client
            .update_machine(app, &id, &config, Some(&lease))
            .await
            .map_err(err)?;
        wait_started(
            sh,
            app,
            &id,
            m.checks.as_ref().is_some_and(|c| !c.is_empty()),
        )
        .await?;
        Ok(format!("{id} updated and restarted ({})", m.image))
    }
    .await;
    // Always hand the lease back (it also expires on its own).
    let _ = sh.client.release_lease(app, &id, &lease).await;
    result
}

async fn take_lease(sh: &Shared, app: &str, id: &str) -> Result<Lease, String> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match sh.client.acquire_lease(app, id, 120).await {
            Ok(l) => return Ok(l),
            Err(e) if e.status() == Some(409) && attempt < 10 => {
                sh.client.sleep(Duration::from_secs(2 * attempt)).await
            }
            Err(e) if e.is_unknown() && attempt < 10 => {
                sh.client.sleep(Duration::from_secs(5)).await
            }
            // Fly (and the simulator) answer 409 while another party holds the lease.
            Err(e) if e.status() == Some(409) => {
                return Err(format!(
                    "{e}\n  hint: someone else holds a lease on this Machine; try again when their change is done"
                ));
            }
            Err(e) => return Err(err(e)),
        }
    }
}

async fn delete_machine(sh: &Shared, app: &str, id: &str) -> OpResult {
    sh.client.delete_machine(app, id, None).await.map_err(err)?;
    let deadline = sh.deadline();
    loop {
        match sh.client.get_machine(app, id).await.map_err(err)? {
            None => break,
            Some(m) if m.state == "destroyed" => break,
            Some(_) if Instant::now() >= deadline => {
                return Err(format!(
                    "Machine {id} was not destroyed within {} s",
                    sh.opts.wait_timeout.as_secs()
                ));
            }
            Some(_) => {
                let _ = sh.client.wait(app, id, "destroyed", 60).await;
            }
        }
    }
    Ok(format!("Machine {id} destroyed"))
}

async fn delete_volume(sh: &Shared, app: &str, id: &str, snapshot: bool) -> OpResult {
    let mut detail = String::new();
    if snapshot {
        let before = sh.client.list_snapshots(app, id).await.map_err(err)?.len();
        sh.client.create_snapshot(app, id).await.map_err(err)?;
        let deadline = sh.deadline();
        loop {
            let snaps = sh.client.list_snapshots(app, id).await.map_err(err)?;
            let done = snaps.len() > before
                && snaps.iter().any(|s| {
                    matches!(
                        s.get("status").and_then(Value::as_str),
                        Some("created") | None
                    )
                });
            if done {
                let sid = snaps
                    .last()
                    .and_then(|s| s.get("id"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                detail = format!("snapshot {sid} taken first; ");
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the snapshot of volume {id} did not finish within {} s; the volume was kept",
                    sh.opts.wait_timeout.as_secs()
                ));
            }
            sh.client.sleep(Duration::from_secs(1)).await;
        }
    }
    wait_detached(sh, app, id).await?;
    let deadline = sh.deadline();
    loop {
        match sh.client.delete_volume(app, id).await {
            Ok(()) => break,
            // Still attached (detach lags): wait and try again.
            Err(e) if e.status() == Some(412) && Instant::now() < deadline => {
                sh.client.sleep(Duration::from_secs(2)).await
            }
            Err(e) => return Err(err(e)),
        }
    }
    Ok(format!("{detail}volume {id} destroyed"))
}

/// A rollout gate: every Machine of the wave is started and its checks pass.
async fn gate(sh: &Shared, wave: usize) -> OpResult {
    let members = sh.wave_members.get(&wave).cloned().unwrap_or_default();
    for a in &members {
        let (Some(id), Ok(r)) = (sh.id_of(a), sh.resource(a)) else {
            continue;
        };
        let m = sh
            .client
            .get_machine(&r.app, &id)
            .await
            .map_err(err)?
            .ok_or_else(|| format!("{a}: Machine {id} disappeared"))?;
        if m.state != "started" {
            return Err(format!("{a}: Machine {id} is {}", m.state));
        }
        if let Checks::Critical(names) = checks_status(&m) {
            return Err(format!("{a}: checks not passing: {names}"));
        }
    }
    Ok(format!(
        "wave {} healthy ({} Machines)",
        wave + 1,
        members.len()
    ))
}
