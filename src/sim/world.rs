//! The simulated world: apps, Machines, volumes and secrets, and the Machine state
//! machine. Time-driven changes are stored as deadlines (real Unix milliseconds) and
//! applied lazily when an entity is read or changed, so the world needs no timers and
//! persists as plain data.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::clock::{rfc3339_millis, rfc3339_secs};
use super::error::ApiError;
use super::model::{Autostop, ImageRef, MachineConfig, MachineEvent};

/// Fly's Machine states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineState {
    Created,
    Starting,
    Started,
    Stopping,
    Stopped,
    Suspending,
    Suspended,
    Replacing,
    Destroying,
    Destroyed,
    Failed,
}

impl MachineState {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineState::Created => "created",
            MachineState::Starting => "starting",
            MachineState::Started => "started",
            MachineState::Stopping => "stopping",
            MachineState::Stopped => "stopped",
            MachineState::Suspending => "suspending",
            MachineState::Suspended => "suspended",
            MachineState::Replacing => "replacing",
            MachineState::Destroying => "destroying",
            MachineState::Destroyed => "destroyed",
            MachineState::Failed => "failed",
        }
    }

    /// Running or about to run: the states an app delete without `force` refuses.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            MachineState::Starting
                | MachineState::Started
                | MachineState::Stopping
                | MachineState::Suspending
                | MachineState::Replacing
        )
    }
}

/// A deleted volume as the volume list still shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DeletedVolume {
    /// The volume as listed, `state` `pending_destroy`.
    pub listed: serde_json::Value,
    /// When it is gone from the list.
    pub until_ms: i64,
}

/// Real-time durations (milliseconds) derived from the configuration and time scale.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub create: i64,
    pub start: i64,
    pub resume: i64,
    pub stop: i64,
    pub suspend: i64,
    pub replace: i64,
    pub destroy: i64,
    pub detach: i64,
    pub idle: i64,
    pub restore: i64,
    /// How long a deleted volume is still listed (`pending_destroy`).
    pub volume_gone: i64,
    pub snapshot: i64,
    /// How long a one-shot Machine runs before it exits.
    pub job: i64,
    /// One simulated day (snapshot retention).
    pub day: i64,
    pub auto_idle: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Step {
    pub at_ms: i64,
    pub state: MachineState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Lease {
    pub nonce: String,
    pub owner: String,
    pub description: String,
    pub expires_at_ms: i64,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Machine {
    pub id: String,
    pub name: String,
    pub region: String,
    pub instance_id: String,
    pub private_ip: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub seq: u64,
    pub state: MachineState,
    pub steps: VecDeque<Step>,
    pub config: MachineConfig,
    pub image_ref: ImageRef,
    /// Newest first.
    pub events: Vec<MachineEvent>,
    pub cordoned: bool,
    pub lease: Option<Lease>,
    /// The app secrets version this Machine booted (or was updated) with.
    pub secrets_seen: Option<u64>,
    pub idle_at_ms: Option<i64>,
    /// The current image crashes at boot (the `bad_image` fault): boots end `failed`.
    #[serde(default)]
    pub boot_fails: bool,
    /// How many times this Machine reached `started` (for tests of what wakes it).
    #[serde(default)]
    pub starts: u64,
    /// A one-shot Machine whose image fails (the `job_fail` fault): it exits with 1.
    #[serde(default)]
    pub job_fails: bool,
    /// Events recorded so far (the sequence part of event ids).
    #[serde(default)]
    pub event_seq: u64,
    /// The time part of the newest event id (ids never go back in time).
    #[serde(default)]
    pub last_event_ms: i64,
    /// Earlier versions (config and `instance_id`), newest first, at most
    /// [`MAX_VERSIONS`]; the current one is `instance_id` and `config`.
    #[serde(default)]
    pub versions: Vec<PastVersion>,
    /// When the current version was created (`None`: at `created_at_ms`).
    #[serde(default)]
    pub version_at_ms: Option<i64>,
    /// The signal number that ended the Machine's process, reported in the next exit
    /// event.
    #[serde(default)]
    pub exit_signal: Option<i32>,
    /// What a one-shot Machine running an export image does to data when it exits
    /// successfully ([`Job`]); taken by the app when it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
    /// A job that exited successfully, for the app to carry out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_job: Option<Job>,
}

/// A version a Machine ran before its latest update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PastVersion {
    pub version: String,
    pub config: MachineConfig,
    pub created_at_ms: i64,
}

/// The metadata key an export image sets on its own Machine with the bytes it wrote
/// (the contract `ops::backup` documents).
pub(crate) const EXPORT_BYTES_KEY: &str = "flotilla_export_bytes";

/// The data effect of an export image, as the simulator plays it: the image's contract
/// is in `ops::backup` (environment `FLOTILLA_BACKUP_*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Job {
    /// Copies the mounted volume's content to the object store under `key`.
    Export { object: StoredObject },
    /// Writes `content` (read from the store when the Machine was created) to the
    /// mounted volume.
    Restore { content: String },
}

/// One object in the simulated off-site store (standing for an S3 bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// `s3://BUCKET/PREFIX/VOLUME/ID`.
    pub key: String,
    /// The volume's content tag when it was exported.
    pub content: String,
    pub bytes: u64,
    /// Whether a client-side encryption key was given.
    pub encrypted: bool,
    /// Newest exports kept under the same prefix.
    #[serde(default)]
    pub keep: u32,
}

const MAX_EVENTS: usize = 20;

/// How many earlier versions a Machine keeps for `GET /versions`.
pub(crate) const MAX_VERSIONS: usize = 10;

/// Crockford's base32 alphabet, as ULIDs use.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A 26-character ULID-shaped id: 48 bits of milliseconds, then 80 bits made of 40
/// bits of `salt` (the Machine) and 40 bits of `seq`. Sorting the strings sorts by
/// time, then sequence.
pub(crate) fn event_id(ms: i64, salt: u64, seq: u64) -> String {
    let ms = u128::from(ms.max(0) as u64 & ((1 << 48) - 1));
    let low = (u128::from(salt & ((1 << 40) - 1)) << 40) | u128::from(seq & ((1 << 40) - 1));
    let v = (ms << 80) | low;
    (0..26)
        .rev()
        .map(|i| char::from(CROCKFORD[((v >> (i * 5)) & 31) as usize]))
        .collect()
}

/// A stable 40-bit number from a Machine id (FNV-1a).
fn id_salt(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Machine {
    pub fn event(&mut self, kind: &str, status: &str, source: &str, at_ms: i64) {
        self.event_seq = self.event_seq.saturating_add(1);
        self.last_event_ms = self.last_event_ms.max(at_ms);
        let id = event_id(self.last_event_ms, id_salt(&self.id), self.event_seq);
        self.events.insert(
            0,
            MachineEvent {
                id,
                kind: kind.into(),
                status: status.into(),
                source: source.into(),
                timestamp: at_ms,
                request: None,
            },
        );
        self.events.truncate(MAX_EVENTS);
    }

    /// Replaces the current version with a new one (`instance_id` and `config`),
    /// keeping the old one in the history.
    pub fn new_version(&mut self, instance_id: String, config: MachineConfig, at_ms: i64) {
        let old = PastVersion {
            version: std::mem::replace(&mut self.instance_id, instance_id),
            config: std::mem::replace(&mut self.config, config),
            created_at_ms: self.version_at_ms.unwrap_or(self.created_at_ms),
        };
        self.versions.insert(0, old);
        self.versions.truncate(MAX_VERSIONS);
        self.version_at_ms = Some(at_ms);
    }

    /// Whether `version` is a version this Machine ran before its current one.
    pub fn is_past_version(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v.version == version)
    }

    /// Puts the Machine in `now_state` and queues the following states, each `offset`
    /// milliseconds after the previous one.
    pub fn schedule(&mut self, now: i64, now_state: MachineState, then: &[(i64, MachineState)]) {
        self.state = now_state;
        self.updated_at_ms = now;
        self.steps.clear();
        let mut at = now;
        for (offset, state) in then {
            at = at.saturating_add((*offset).max(0));
            self.steps.push_back(Step {
                at_ms: at,
                state: *state,
            });
        }
        if now_state != MachineState::Started {
            self.idle_at_ms = None;
        }
    }

    /// When the queued `destroyed` state is reached, if one is queued.
    pub fn destroy_at_ms(&self) -> Option<i64> {
        self.steps
            .iter()
            .find(|s| s.state == MachineState::Destroyed)
            .map(|s| s.at_ms)
    }

    /// When the next queued change happens, if any.
    pub fn next_change_ms(&self) -> Option<i64> {
        self.steps.front().map(|s| s.at_ms).or(self
            .idle_at_ms
            .filter(|_| self.state == MachineState::Started))
    }

    fn enter(&mut self, state: MachineState, at: i64, secrets_version: u64, t: &Timing) {
        self.state = state;
        self.updated_at_ms = at;
        match state {
            MachineState::Started if self.boot_fails => {
                self.state = MachineState::Failed;
                self.event("exit", "failed", "flyd", at);
            }
            MachineState::Started => {
                self.starts += 1;
                self.secrets_seen = Some(secrets_version);
                self.event("start", "started", "flyd", at);
                if self.config.is_one_shot() {
                    self.run_job(at, t);
                }
                if t.auto_idle && self.config.autostop() != Autostop::Off {
                    self.idle_at_ms = Some(at.saturating_add(t.idle));
                }
            }
            MachineState::Starting => {}
            MachineState::Stopped if self.config.is_one_shot() => self.job_exit(at, t),
            MachineState::Stopped => {
                self.event("exit", "stopped", "flyd", at);
                if let Some(signal) = self.exit_signal.take()
                    && let Some(e) = self.events.first_mut()
                {
                    e.request = Some(json!({
                        "exit_event": {
                            "exit_code": 128 + signal,
                            "signal": signal,
                            "requested_stop": false,
                            "restarting": false,
                            "oom_killed": false,
                            "exited_at": rfc3339_millis(at),
                        }
                    }));
                }
            }
            MachineState::Suspended => self.event("suspend", "suspended", "flyd", at),
            MachineState::Destroyed => {
                self.event("destroy", "destroyed", "flyd", at);
                self.lease = None;
            }
            _ => {}
        }
    }

    /// A one-shot Machine just started: it runs for the job time, then exits.
    fn run_job(&mut self, at: i64, t: &Timing) {
        self.steps.push_back(Step {
            at_ms: at.saturating_add(t.job),
            state: MachineState::Stopped,
        });
    }

    /// A one-shot Machine exited: its exit status in the event, then its destroy.
    fn job_exit(&mut self, at: i64, t: &Timing) {
        let code = i32::from(self.job_fails);
        if !self.job_fails {
            self.finished_job = self.job.take();
            if let Some(Job::Export { object }) = &self.finished_job {
                // The image reports what it wrote (the documented contract).
                self.config
                    .metadata
                    .get_or_insert_with(Default::default)
                    .insert(EXPORT_BYTES_KEY.into(), object.bytes.to_string());
            }
        }
        self.event("exit", "stopped", "flyd", at);
        if let Some(e) = self.events.first_mut() {
            e.request = Some(json!({
                "exit_event": {
                    "exit_code": code,
                    "requested_stop": false,
                    "restarting": false,
                    "oom_killed": false,
                    "exited_at": rfc3339_millis(at),
                }
            }));
        }
        self.steps.push_back(Step {
            at_ms: at.saturating_add(t.destroy),
            state: MachineState::Destroyed,
        });
    }

    /// Applies every change due by `now`. Returns when the Machine was destroyed, if
    /// that happened in this call.
    pub fn advance(&mut self, now: i64, secrets_version: u64, t: &Timing) -> Option<i64> {
        let mut destroyed = None;
        if self.lease.as_ref().is_some_and(|l| l.expires_at_ms <= now) {
            self.lease = None;
        }
        loop {
            if let Some(step) = self.steps.front().cloned()
                && step.at_ms <= now
            {
                self.steps.pop_front();
                self.enter(step.state, step.at_ms, secrets_version, t);
                if step.state == MachineState::Destroyed {
                    destroyed = Some(step.at_ms);
                }
                continue;
            }
            if self.steps.is_empty()
                && self.state == MachineState::Started
                && let Some(at) = self.idle_at_ms.filter(|at| *at <= now)
            {
                self.idle_at_ms = None;
                self.idle_stop(at, t);
                continue;
            }
            return destroyed;
        }
    }

    /// The Fly Proxy's autostop: suspend when asked and possible, else stop.
    pub fn idle_stop(&mut self, at: i64, t: &Timing) {
        match self.config.autostop() {
            Autostop::Off => {}
            Autostop::Suspend
                if self.config.memory_mb() <= crate::platform::SUSPEND_MAX_MEMORY_MB =>
            {
                self.event("suspend", "suspending", "fly-proxy", at);
                self.schedule(
                    at,
                    MachineState::Suspending,
                    &[(t.suspend, MachineState::Suspended)],
                );
            }
            _ => {
                self.event("stop", "stopping", "fly-proxy", at);
                self.schedule(
                    at,
                    MachineState::Stopping,
                    &[(t.stop, MachineState::Stopped)],
                );
            }
        }
    }

    pub fn lease_json(&self) -> Option<Value> {
        self.lease.as_ref().map(|l| {
            json!({
                "status": "success",
                "data": {
                    "nonce": l.nonce,
                    "expires_at": l.expires_at_ms / 1000,
                    "owner": l.owner,
                    "description": l.description,
                    "version": l.version,
                }
            })
        })
    }

    /// The Machine as Fly answers it, borrowed for direct serialization.
    pub fn view(&self) -> MachineView<'_> {
        let checks = self
            .config
            .checks
            .as_ref()
            .filter(|c| !c.is_empty())
            .map(|c| {
                let status = if self.state == MachineState::Started {
                    "passing"
                } else {
                    "critical"
                };
                c.keys()
                    .map(|name| CheckView {
                        name,
                        status,
                        output: "",
                        updated_at: rfc3339_secs(self.updated_at_ms),
                    })
                    .collect()
            });
        MachineView {
            id: &self.id,
            name: &self.name,
            state: self.state.as_str(),
            region: &self.region,
            image_ref: &self.image_ref,
            instance_id: &self.instance_id,
            version: &self.instance_id,
            private_ip: &self.private_ip,
            created_at: rfc3339_secs(self.created_at_ms),
            updated_at: rfc3339_secs(self.updated_at_ms),
            config: &self.config,
            events: &self.events,
            checks,
            host_status: "ok",
            cordoned: self.cordoned,
            nonce: None,
        }
    }
}

/// Fly's `CheckStatus`.
#[derive(Debug, Serialize)]
pub(crate) struct CheckView<'a> {
    name: &'a str,
    status: &'static str,
    output: &'static str,
    updated_at: String,
}

/// Fly's `Machine` response, borrowing from the stored Machine.
#[derive(Debug, Serialize)]
pub(crate) struct MachineView<'a> {
    id: &'a str,
    name: &'a str,
    state: &'static str,
    region: &'a str,
    image_ref: &'a ImageRef,
    instance_id: &'a str,
    /// Fly's newer name for `instance_id` (the same value; `instance_id` is deprecated).
    version: &'a str,
    private_ip: &'a str,
    created_at: String,
    updated_at: String,
    config: &'a MachineConfig,
    events: &'a [MachineEvent],
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<Vec<CheckView<'a>>>,
    host_status: &'static str,
    cordoned: bool,
    /// Only on create with `lease_ttl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub id: String,
    pub size: u64,
    pub digest: String,
    pub created_at_ms: i64,
    pub ready_at_ms: i64,
    pub retention_days: u32,
    pub size_gb: u32,
    /// The data's tag, copied from the volume when the snapshot was taken.
    #[serde(default)]
    pub content: String,
}

/// Where a volume's data came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VolumeOrigin {
    /// Created empty.
    #[default]
    Empty,
    /// Restored from snapshot `snapshot_id` of volume `volume_id`.
    Snapshot {
        snapshot_id: String,
        volume_id: String,
    },
    /// A fork (copy) of volume `volume_id`.
    Fork { volume_id: String },
}

impl Snapshot {
    /// Whether the snapshot outlived its retention by `now` (`day`: one simulated day).
    pub fn expired(&self, now: i64, day: i64) -> bool {
        let kept = day.saturating_mul(i64::from(self.retention_days));
        now >= self.created_at_ms.saturating_add(kept)
    }

    pub fn to_json(&self, now: i64) -> Value {
        json!({
            "id": self.id,
            "size": self.size,
            "digest": self.digest,
            "created_at": rfc3339_millis(self.created_at_ms),
            "status": if now >= self.ready_at_ms { "created" } else { "running" },
            "retention_days": self.retention_days,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Volume {
    pub id: String,
    pub name: String,
    pub region: String,
    pub zone: String,
    pub size_gb: u32,
    pub encrypted: bool,
    pub fstype: String,
    pub snapshot_retention: u32,
    pub auto_backup_enabled: bool,
    pub created_at_ms: i64,
    pub seq: u64,
    /// `restoring` until this time (created from a snapshot), then `created`.
    pub ready_at_ms: i64,
    pub attached_machine_id: Option<String>,
    /// When the attachment of a destroyed Machine clears.
    pub detach_at_ms: Option<i64>,
    pub snapshots: Vec<Snapshot>,
    /// Where the data came from (simulator only; not in Fly's answers).
    #[serde(default)]
    pub origin: VolumeOrigin,
    /// A tag standing for the data: empty volumes start with none, snapshots, restores
    /// and forks copy it, `PUT /__sim/apps/{app}/volumes/{id}/content` sets it.
    #[serde(default)]
    pub content: String,
}

impl Volume {
    pub fn state(&self, now: i64) -> &'static str {
        if now < self.ready_at_ms {
            "restoring"
        } else {
            "created"
        }
    }

    pub fn to_json(&self, now: i64) -> Value {
        let blocks = u64::from(self.size_gb) * 262_144;
        json!({
            "id": self.id,
            "name": self.name,
            "state": self.state(now),
            "size_gb": self.size_gb,
            "region": self.region,
            "zone": self.zone,
            "encrypted": self.encrypted,
            "attached_machine_id": self.attached_machine_id,
            "attached_alloc_id": null,
            "created_at": rfc3339_millis(self.created_at_ms),
            "blocks": blocks,
            "block_size": 4096,
            "blocks_free": blocks.saturating_sub(6),
            "blocks_avail": blocks.saturating_mul(95) / 100,
            "fstype": self.fstype,
            "snapshot_retention": self.snapshot_retention,
            "auto_backup_enabled": self.auto_backup_enabled,
            "host_dedication_key": "",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Secret {
    pub name: String,
    /// Opaque; derived from the value, which is never stored.
    pub digest: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Secret {
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "digest": self.digest,
            "created_at": rfc3339_millis(self.created_at_ms),
            "updated_at": rfc3339_millis(self.updated_at_ms),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct App {
    pub id: String,
    pub name: String,
    pub org_slug: String,
    pub network: String,
    pub created_at_ms: i64,
    pub machines: BTreeMap<String, Machine>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, Secret>,
    pub secrets_version: u64,
    pub next_seq: u64,
    /// Snapshots of deleted volumes, by volume id: as on Fly they can still be listed
    /// (with the volume's id) and restored within their retention; deleting the app
    /// deletes them with it.
    #[serde(default)]
    pub retired_snapshots: BTreeMap<String, Vec<Snapshot>>,
    /// Deleted volumes still listed (as `pending_destroy`) until their time is up, in
    /// the order they were deleted.
    #[serde(default)]
    pub deleted_volumes: Vec<DeletedVolume>,
    /// IP addresses and certificates.
    #[serde(default)]
    pub net: super::network::AppNet,
    /// Objects export images wrote, not yet moved to the world's store.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exported: Vec<StoredObject>,
    /// Machines not yet destroyed (kept so app reads stay O(1) with many Machines).
    /// Derived: rebuilt by [`App::reindex`] after loading.
    #[serde(skip)]
    live_machines: usize,
    /// `(when, Machine id)` of every queued destroy, so that app reads can apply the
    /// ones due without advancing every Machine. Derived like `live_machines`.
    #[serde(skip)]
    pending_destroys: BTreeSet<(i64, String)>,
}

impl App {
    pub fn new(id: String, name: String, org_slug: String, network: String, now: i64) -> App {
        App {
            id,
            name,
            org_slug,
            network,
            created_at_ms: now,
            machines: BTreeMap::new(),
            volumes: BTreeMap::new(),
            secrets: BTreeMap::new(),
            secrets_version: 0,
            next_seq: 0,
            retired_snapshots: BTreeMap::new(),
            deleted_volumes: Vec::new(),
            net: Default::default(),
            exported: Vec::new(),
            live_machines: 0,
            pending_destroys: BTreeSet::new(),
        }
    }

    pub fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Adds a new Machine.
    pub fn insert_machine(&mut self, m: Machine) {
        if m.state != MachineState::Destroyed {
            self.live_machines += 1;
        }
        self.machines.insert(m.id.clone(), m);
    }

    /// Notes a destroy just queued for Machine `id`, so app reads see it complete.
    pub fn track_destroy(&mut self, id: &str) {
        if let Some(at) = self.machines.get(id).and_then(Machine::destroy_at_ms) {
            self.pending_destroys.insert((at, id.to_string()));
        }
    }

    /// Applies the destroys due by `now` (cheap: only the Machines concerned), so that
    /// the app's Machine count and status are current.
    pub fn settle(&mut self, now: i64, t: &Timing) {
        while let Some((at, _)) = self.pending_destroys.first()
            && *at <= now
        {
            if let Some((_, id)) = self.pending_destroys.pop_first() {
                self.advance_machine(&id, now, t);
            }
        }
    }

    /// Advances one Machine and, when it is destroyed, starts the delayed detach of
    /// its volumes.
    pub fn advance_machine(&mut self, id: &str, now: i64, t: &Timing) {
        let version = self.secrets_version;
        let Some(m) = self.machines.get_mut(id) else {
            return;
        };
        let destroyed = m.advance(now, version, t);
        let finished = m
            .finished_job
            .take()
            .map(|j| (j, m.config.mounted_volume()));
        if let Some((job, vol)) = finished {
            let vol = vol.map(str::to_string);
            self.finish_job(job, vol.as_deref());
        }
        if let Some(at) = destroyed {
            self.live_machines = self.live_machines.saturating_sub(1);
            self.start_detach(id, at.saturating_add(t.detach));
        }
    }

    /// Carries out what a successful export image did: an object written (moved to
    /// the world's store by [`World::collect_exports`]) or a volume's data restored.
    fn finish_job(&mut self, job: Job, volume: Option<&str>) {
        match job {
            Job::Export { object } => self.exported.push(object),
            Job::Restore { content } => {
                if let Some(v) = volume.and_then(|id| self.volumes.get_mut(id)) {
                    v.content = content;
                }
            }
        }
    }

    /// Queues the detach of every volume attached to `machine_id` at `at`.
    pub fn start_detach(&mut self, machine_id: &str, at: i64) {
        for v in self.volumes.values_mut() {
            if v.attached_machine_id.as_deref() == Some(machine_id) && v.detach_at_ms.is_none() {
                v.detach_at_ms = Some(at);
            }
        }
    }

    /// Advances one volume (and the Machine it is attached to).
    pub fn advance_volume(&mut self, id: &str, now: i64, t: &Timing) {
        let attached = self
            .volumes
            .get(id)
            .and_then(|v| v.attached_machine_id.clone());
        if let Some(mid) = attached {
            self.advance_machine(&mid, now, t);
        }
        if let Some(v) = self.volumes.get_mut(id)
            && v.detach_at_ms.is_some_and(|at| at <= now)
        {
            v.detach_at_ms = None;
            v.attached_machine_id = None;
        }
    }

    /// Advances everything in the app (used before changes that read many entities).
    pub fn advance_all(&mut self, now: i64, t: &Timing) {
        let ids: Vec<String> = self.machines.keys().cloned().collect();
        for id in &ids {
            self.advance_machine(id, now, t);
        }
        let vids: Vec<String> = self.volumes.keys().cloned().collect();
        for id in &vids {
            self.advance_volume(id, now, t);
        }
    }

    /// Rebuilds the derived Machine count and destroy queue (after loading a state
    /// file).
    pub fn reindex(&mut self) {
        self.live_machines = self
            .machines
            .values()
            .filter(|m| m.state != MachineState::Destroyed)
            .count();
        self.pending_destroys = self
            .machines
            .values()
            .filter_map(|m| m.destroy_at_ms().map(|at| (at, m.id.clone())))
            .collect();
    }

    /// The app as `GET /v1/apps?org_slug=` lists it; [`App::settle`] it first.
    pub fn list_json(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "machine_count": self.live_machines,
            "volume_count": self.volumes.len(),
            "network": self.network,
        })
    }

    /// The app as `GET /v1/apps/{app}` answers it; [`App::settle`] it first.
    pub fn to_json(&self) -> Value {
        let status = if self.live_machines > 0 {
            "deployed"
        } else {
            "pending"
        };
        json!({
            "id": self.id,
            "name": self.name,
            "status": status,
            "organization": { "name": self.org_slug, "slug": self.org_slug },
            "machine_count": self.live_machines,
            "volume_count": self.volumes.len(),
            "network": self.network,
        })
    }

    /// A Machine by id, 404 if unknown.
    pub fn machine_mut(&mut self, id: &str) -> Result<&mut Machine, ApiError> {
        self.machines
            .get_mut(id)
            .ok_or_else(ApiError::machine_not_found)
    }

    pub fn volume_mut(&mut self, id: &str) -> Result<&mut Volume, ApiError> {
        self.volumes
            .get_mut(id)
            .ok_or_else(ApiError::volume_not_found)
    }
}

/// Everything the simulator knows; this is what the state file holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct World {
    pub apps: BTreeMap<String, App>,
    /// Bumped on every load so that a reloaded world draws fresh ids.
    pub epoch: u64,
    /// The server-side key secret digests are computed under (drawn on the first secret
    /// set), so that, as on Fly, a digest cannot be recomputed from a guessed value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest_key: String,
    /// Shared addresses, address counters and the DNS records tests declared present.
    #[serde(default)]
    pub net: super::network::WorldNet,
    /// The off-site object store export images write to and read from, by key. It is
    /// outside every app: deleting an app leaves it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, StoredObject>,
}

impl World {
    /// The key of secret digests, drawn the first time one is needed.
    pub fn digest_key(&mut self) -> String {
        if self.digest_key.is_empty() {
            self.digest_key = format!("{:032x}", rand::random::<u128>());
        }
        self.digest_key.clone()
    }

    /// Moves the objects export images wrote into the store, keeping the newest `keep`
    /// under each object's prefix (keys end in sortable export ids).
    pub fn collect_exports(&mut self) {
        let written: Vec<StoredObject> = self
            .apps
            .values_mut()
            .flat_map(|a| std::mem::take(&mut a.exported))
            .collect();
        for o in written {
            let prefix = object_prefix(&o.key).to_string();
            let keep = o.keep.max(1) as usize;
            self.objects.insert(o.key.clone(), o);
            let under: Vec<String> = self
                .objects
                .keys()
                .filter(|k| object_prefix(k) == prefix)
                .cloned()
                .collect();
            for k in under.iter().take(under.len().saturating_sub(keep)) {
                self.objects.remove(k);
            }
        }
    }

    /// The object an export image asked to restore: `id` under `url`, or the newest
    /// there for `latest`.
    pub fn find_object(&mut self, url: &str, id: &str) -> Option<&StoredObject> {
        self.collect_exports();
        let url = url.trim_end_matches('/');
        if id == "latest" {
            return self
                .objects
                .values()
                .rfind(|o| object_prefix(&o.key) == url);
        }
        self.objects.get(&format!("{url}/{id}"))
    }

    pub fn app_mut(&mut self, name: &str) -> Result<&mut App, ApiError> {
        self.apps.get_mut(name).ok_or_else(ApiError::app_not_found)
    }
}

/// An object key without its last segment (the export id).
fn object_prefix(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(p, _)| p)
}
