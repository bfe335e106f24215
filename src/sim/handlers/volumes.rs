//! `/v1/apps/{app}/volumes`: create (also from a snapshot or as a fork), list, get,
//! update, extend (grow only), delete (refused while attached), snapshots.

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{AppState, Entity, check_region, ok_json, with_entity};
use crate::platform::{
    SNAPSHOT_RETENTION_DEFAULT, SNAPSHOT_RETENTION_MAX, SNAPSHOT_RETENTION_MIN, VOLUME_MAX_GB,
    VOLUME_MIN_GB,
};
use crate::sim::clock::{now_ms, rfc3339_millis};
use crate::sim::error::{ApiError, ApiResult, parse_body, parse_optional_body};
use crate::sim::ids::digest;
use crate::sim::model::{CreateVolumeRequest, ExtendVolumeRequest, UpdateVolumeRequest};
use crate::sim::ratelimit::Action;
use crate::sim::server::lock;
use crate::sim::world::{App, DeletedVolume, MachineState, Snapshot, Volume, VolumeOrigin};

type VolumePath = Path<(String, String)>;

/// Zones per region a volume can land in (for `require_unique_zone`).
const ZONES_PER_REGION: usize = 16;

fn check_retention(days: u32) -> Result<u32, ApiError> {
    if (SNAPSHOT_RETENTION_MIN..=SNAPSHOT_RETENTION_MAX).contains(&days) {
        Ok(days)
    } else {
        Err(ApiError::bad_request(format!(
            "invalid snapshot_retention {days}: expected {SNAPSHOT_RETENTION_MIN} to {SNAPSHOT_RETENTION_MAX} days"
        )))
    }
}

fn check_size(gb: u32) -> Result<u32, ApiError> {
    if (VOLUME_MIN_GB..=VOLUME_MAX_GB).contains(&gb) {
        Ok(gb)
    } else {
        Err(ApiError::bad_request(format!(
            "invalid size_gb {gb}: expected {VOLUME_MIN_GB} to {VOLUME_MAX_GB}"
        )))
    }
}

/// A snapshot of one of the app's volumes, deleted ones included, that has not expired;
/// with the id of the volume it was taken of.
fn find_snapshot<'a>(
    a: &'a App,
    snapshot_id: &str,
    now: i64,
    day: i64,
) -> Option<(&'a str, &'a Snapshot)> {
    let live = a
        .volumes
        .values()
        .flat_map(|v| v.snapshots.iter().map(move |s| (v.id.as_str(), s)));
    let retired = a
        .retired_snapshots
        .iter()
        .flat_map(|(vid, snaps)| snaps.iter().map(move |s| (vid.as_str(), s)));
    live.chain(retired)
        .find(|(_, s)| s.id == snapshot_id && !s.expired(now, day))
}

/// A snapshot for a volume create in `app`: the app's own first, then those of the
/// organization's other apps (flotilla's `volume.restore_from` copies one tenant's data
/// into another tenant's app).
fn snapshot_for(
    world: &crate::sim::world::World,
    app: &str,
    snapshot_id: &str,
    now: i64,
    day: i64,
) -> Option<(String, Snapshot)> {
    let own = world.apps.get(app)?;
    let found = find_snapshot(own, snapshot_id, now, day).or_else(|| {
        world
            .apps
            .values()
            .filter(|a| a.name != app && a.org_slug == own.org_slug)
            .find_map(|a| find_snapshot(a, snapshot_id, now, day))
    });
    found.map(|(vid, s)| (vid.to_string(), s.clone()))
}

pub(crate) async fn create(
    State(sim): AppState,
    Path(app): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: CreateVolumeRequest = parse_body(&body)?;
    let name = req.name.clone().unwrap_or_default();
    if let Some(problem) = crate::platform::volume_name_problem(&name) {
        return Err(ApiError::bad_request(format!(
            "invalid volume name {name:?}: {problem}"
        )));
    }
    let region = req
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("region is required"))?;
    check_region(&region)?;
    let retention = check_retention(req.snapshot_retention.unwrap_or(SNAPSHOT_RETENTION_DEFAULT))?;
    if let Some(fs) = &req.fstype
        && fs != "ext4"
        && fs != "raw"
    {
        return Err(ApiError::bad_request(format!(
            "invalid fstype {fs:?}: expected ext4 or raw"
        )));
    }
    sim.rate_limit(Action::VolumeCreate, &app)?;
    sim.check_visible(&app, None)?;
    let t = now_ms();
    let mut world = sim.world();
    let snapshot = req
        .snapshot_id
        .as_ref()
        .map(|sid| snapshot_for(&world, &app, sid, t, sim.timing.day));
    let a = world.app_mut(&app)?;
    sim.check_capacity(&region)?;
    let mut size = req.size_gb.unwrap_or(VOLUME_MIN_GB);
    let mut ready_at = t;
    let mut origin = VolumeOrigin::Empty;
    let mut content = String::new();
    if let (Some(sid), Some(found)) = (&req.snapshot_id, snapshot) {
        let (vid, snap) =
            found.ok_or_else(|| ApiError::not_found(format!("snapshot {sid} not found")))?;
        if t < snap.ready_at_ms {
            return Err(ApiError::precondition(format!(
                "snapshot {sid} is not complete yet"
            )));
        }
        size = req.size_gb.unwrap_or(snap.size_gb);
        if size < snap.size_gb {
            return Err(ApiError::bad_request(format!(
                "size_gb {size} is smaller than the snapshot's {} GB",
                snap.size_gb
            )));
        }
        ready_at = t.saturating_add(sim.timing.restore);
        origin = VolumeOrigin::Snapshot {
            snapshot_id: sid.clone(),
            volume_id: vid,
        };
        content = snap.content.clone();
    }
    if let Some(src) = &req.source_volume_id {
        let source = a
            .volumes
            .get(src)
            .ok_or_else(|| ApiError::not_found(format!("source volume {src} not found")))?;
        size = size.max(source.size_gb);
        ready_at = t.saturating_add(sim.timing.restore);
        origin = VolumeOrigin::Fork {
            volume_id: src.clone(),
        };
        content = source.content.clone();
    }
    let size = check_size(size)?;
    let taken: Vec<&str> = a
        .volumes
        .values()
        .filter(|v| v.name == name && v.region == region)
        .map(|v| v.zone.as_str())
        .collect();
    let unique = req.require_unique_zone.unwrap_or(true);
    if unique && taken.len() >= ZONES_PER_REGION {
        return Err(ApiError::unprocessable(format!(
            "insufficient resources available to fulfill request: no zone in {region} without a volume named {name}"
        ))
        .with_code("insufficient_capacity"));
    }
    let (id, zone) = {
        let mut ids = lock(&sim.ids);
        let mut id = ids.volume_id();
        while a.volumes.contains_key(&id) {
            id = ids.volume_id();
        }
        let mut zone = ids.zone();
        while unique && taken.contains(&zone.as_str()) {
            zone = ids.zone();
        }
        (id, zone)
    };
    let seq = a.seq();
    let vol = Volume {
        id: id.clone(),
        name,
        region,
        zone,
        size_gb: size,
        encrypted: req.encrypted.unwrap_or(true),
        fstype: req.fstype.clone().unwrap_or_else(|| "ext4".into()),
        snapshot_retention: retention,
        auto_backup_enabled: req.auto_backup_enabled.unwrap_or(true),
        created_at_ms: t,
        seq,
        ready_at_ms: ready_at,
        attached_machine_id: None,
        detach_at_ms: None,
        snapshots: Vec::new(),
        origin,
        content,
    };
    let out = vol.to_json(t);
    a.volumes.insert(id, vol);
    drop(world);
    sim.mutated();
    Ok(ok_json(out))
}

pub(crate) async fn list(State(sim): AppState, Path(app): Path<String>) -> ApiResult {
    sim.rate_limit(Action::VolumeList, &app)?;
    let t = now_ms();
    let mut world = sim.world();
    let a = world.app_mut(&app)?;
    let ids: Vec<String> = a.volumes.keys().cloned().collect();
    for id in &ids {
        a.advance_volume(id, t, &sim.timing);
    }
    let mut vols: Vec<&Volume> = a.volumes.values().collect();
    vols.sort_by_key(|v| v.seq);
    let mut listed: Vec<Value> = vols.iter().map(|v| v.to_json(t)).collect();
    // Deleted volumes stay listed, `pending_destroy`, for a while, as on Fly.
    a.deleted_volumes.retain(|d| d.until_ms > t);
    listed.extend(a.deleted_volumes.iter().map(|d| d.listed.clone()));
    Ok(ok_json(Value::Array(listed)))
}

pub(crate) async fn get(State(sim): AppState, Path((app, id)): VolumePath) -> ApiResult {
    sim.rate_limit(Action::VolumeGet, &id)?;
    let out = with_entity(&sim, &app, Entity::Volume, &id, |a, t| {
        Ok(a.volume_mut(&id)?.to_json(t))
    })?;
    Ok(ok_json(out))
}

/// `snapshot_retention` and `auto_backup_enabled`; other fields cannot change.
pub(crate) async fn update(
    State(sim): AppState,
    Path((app, id)): VolumePath,
    body: Bytes,
) -> ApiResult {
    let req: UpdateVolumeRequest = parse_optional_body(&body)?;
    if let Some(days) = req.snapshot_retention {
        check_retention(days)?;
    }
    sim.rate_limit(Action::VolumeUpdate, &id)?;
    let out = with_entity(&sim, &app, Entity::Volume, &id, |a, t| {
        let v = a.volume_mut(&id)?;
        if let Some(days) = req.snapshot_retention {
            v.snapshot_retention = days;
        }
        if let Some(b) = req.auto_backup_enabled {
            v.auto_backup_enabled = b;
        }
        Ok(v.to_json(t))
    })?;
    sim.mutated();
    Ok(ok_json(out))
}

/// Grows a volume; shrinking (or staying the same size) is a 400.
pub(crate) async fn extend(
    State(sim): AppState,
    Path((app, id)): VolumePath,
    body: Bytes,
) -> ApiResult {
    let req: ExtendVolumeRequest = parse_body(&body)?;
    sim.rate_limit(Action::VolumeExtend, &id)?;
    let out = with_entity(&sim, &app, Entity::Volume, &id, |a, t| {
        let attached = {
            let v = a.volume_mut(&id)?;
            if req.size_gb <= v.size_gb {
                return Err(ApiError::bad_request(format!(
                    "size_gb {} must be larger than the current size {} GB; volumes cannot shrink",
                    req.size_gb, v.size_gb
                )));
            }
            check_size(req.size_gb)?;
            v.size_gb = req.size_gb;
            v.attached_machine_id.clone()
        };
        let vol = a.volume_mut(&id)?.to_json(t);
        // The attached Machine (the only one mounting it) sees the new size in its config.
        let mut needs_restart = false;
        if let Some(m) = attached.and_then(|mid| a.machines.get_mut(&mid)) {
            needs_restart = m.state == MachineState::Started;
            for mount in m.config.mounts.iter_mut().flatten() {
                if mount.volume.as_deref() == Some(id.as_str()) {
                    mount.size_gb = Some(req.size_gb);
                }
            }
        }
        Ok(json!({ "volume": vol, "needs_restart": needs_restart }))
    })?;
    sim.mutated();
    Ok(ok_json(out))
}

/// Deletes a volume; refused (412) while a Machine, even a destroyed one whose detach
/// has not completed, holds it.
pub(crate) async fn delete(State(sim): AppState, Path((app, id)): VolumePath) -> ApiResult {
    sim.rate_limit(Action::VolumeDelete, &id)?;
    let linger = sim.timing.volume_gone;
    let out = with_entity(&sim, &app, Entity::Volume, &id, |a, t| {
        let v = a.volume_mut(&id)?;
        if let Some(mid) = &v.attached_machine_id {
            return Err(ApiError::precondition(format!(
                "volume {id} is attached to machine {mid}; destroy the machine and wait for the volume to detach"
            )));
        }
        let mut out = v.to_json(t);
        let mut listed = out.clone();
        if let Some(obj) = out.as_object_mut() {
            obj.insert("state".into(), "destroyed".into());
        }
        if let Some(obj) = listed.as_object_mut() {
            obj.insert("state".into(), "pending_destroy".into());
        }
        a.deleted_volumes.push(DeletedVolume {
            listed,
            until_ms: t.saturating_add(linger),
        });
        if let Some(gone) = a.volumes.remove(&id)
            && !gone.snapshots.is_empty()
        {
            a.retired_snapshots.insert(id.clone(), gone.snapshots);
        }
        Ok(out)
    })?;
    sim.mutated();
    Ok(ok_json(out))
}

/// Lists a volume's snapshots that have not expired; as on Fly, a deleted volume's id
/// still lists its snapshots (until the app is deleted).
pub(crate) async fn snapshots(State(sim): AppState, Path((app, id)): VolumePath) -> ApiResult {
    sim.rate_limit(Action::SnapshotList, &id)?;
    let t = now_ms();
    let day = sim.timing.day;
    let mut world = sim.world();
    let a = world.app_mut(&app)?;
    a.advance_volume(&id, t, &sim.timing);
    let snaps = match a.volumes.get(&id) {
        Some(v) => &v.snapshots,
        None => a
            .retired_snapshots
            .get(&id)
            .ok_or_else(ApiError::volume_not_found)?,
    };
    Ok(ok_json(Value::Array(
        snaps
            .iter()
            .filter(|s| !s.expired(t, day))
            .map(|s| s.to_json(t))
            .collect(),
    )))
}

/// Takes an on-demand snapshot; it is listed at once and completes after a delay.
pub(crate) async fn snapshot_create(
    State(sim): AppState,
    Path((app, id)): VolumePath,
) -> ApiResult {
    sim.rate_limit(Action::SnapshotCreate, &id)?;
    let out = with_entity(&sim, &app, Entity::Volume, &id, |a, t| {
        let sid = lock(&sim.ids).snapshot_id();
        let v = a.volume_mut(&id)?;
        let snap = Snapshot {
            id: sid.clone(),
            size: u64::from(v.size_gb) * 12_000_000,
            digest: digest(&["snapshot", &sid])[..32].to_string(),
            created_at_ms: t,
            ready_at_ms: t.saturating_add(sim.timing.snapshot),
            retention_days: v.snapshot_retention,
            size_gb: v.size_gb,
            content: v.content.clone(),
        };
        v.snapshots.push(snap);
        Ok(json!({
            "Msg": {
                "backup": {
                    "volume_id": id,
                    "state": "prepare",
                    "type": "BACKUP_TYPE_ON_DEMAND",
                    "message": "",
                    "created_at": rfc3339_millis(t),
                    "updated_at": rfc3339_millis(t),
                    "finished_at": null,
                    "graph_id": sid,
                }
            }
        }))
    })?;
    sim.mutated();
    Ok(ok_json(out))
}

// ---- the `/__sim` view of volumes: where each one's data came from ----

/// What the simulator knows about one volume beyond Fly's API.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeInfo {
    pub id: String,
    pub name: String,
    pub region: String,
    pub size_gb: u32,
    pub state: String,
    pub attached_machine_id: Option<String>,
    /// Empty, restored from a snapshot of a volume, or a fork of a volume.
    pub origin: VolumeOrigin,
    /// The data's tag (see `PUT /__sim/apps/{app}/volumes/{id}/content`).
    pub content: String,
    pub snapshots: Vec<SnapshotInfo>,
}

/// One snapshot and the data's tag it holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    pub id: String,
    pub content: String,
    pub complete: bool,
    pub expired: bool,
}

/// The simulator's view of an app's volumes, and the snapshots of its deleted ones.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppVolumes {
    pub app: String,
    pub volumes: Vec<VolumeInfo>,
    /// Deleted volume id → its snapshots (kept until they expire or the app is deleted).
    pub retired_snapshots: std::collections::BTreeMap<String, Vec<SnapshotInfo>>,
}

fn snapshot_info(s: &Snapshot, now: i64, day: i64) -> SnapshotInfo {
    SnapshotInfo {
        id: s.id.clone(),
        content: s.content.clone(),
        complete: now >= s.ready_at_ms,
        expired: s.expired(now, day),
    }
}

impl crate::sim::SimControl {
    /// Every volume of `app` with its origin and content tag, if the app exists.
    pub fn volumes(&self, app: &str) -> Option<AppVolumes> {
        let t = now_ms();
        let day = self.sim.timing.day;
        let mut world = self.sim.world();
        let a = world.apps.get_mut(app)?;
        a.advance_all(t, &self.sim.timing);
        let mut vols: Vec<&Volume> = a.volumes.values().collect();
        vols.sort_by_key(|v| v.seq);
        let infos = |snaps: &[Snapshot]| -> Vec<SnapshotInfo> {
            snaps.iter().map(|s| snapshot_info(s, t, day)).collect()
        };
        Some(AppVolumes {
            app: a.name.clone(),
            volumes: vols
                .iter()
                .map(|v| VolumeInfo {
                    id: v.id.clone(),
                    name: v.name.clone(),
                    region: v.region.clone(),
                    size_gb: v.size_gb,
                    state: v.state(t).to_string(),
                    attached_machine_id: v.attached_machine_id.clone(),
                    origin: v.origin.clone(),
                    content: v.content.clone(),
                    snapshots: infos(&v.snapshots),
                })
                .collect(),
            retired_snapshots: a
                .retired_snapshots
                .iter()
                .map(|(id, s)| (id.clone(), infos(s)))
                .collect(),
        })
    }

    /// Sets the content tag of volume `id` of `app` (standing for data written to it).
    /// False when there is no such volume.
    pub fn set_volume_content(&self, app: &str, id: &str, content: &str) -> bool {
        let mut world = self.sim.world();
        let Some(v) = world.apps.get_mut(app).and_then(|a| a.volumes.get_mut(id)) else {
            return false;
        };
        v.content = content.to_string();
        drop(world);
        self.sim.mutated();
        true
    }
}

#[derive(serde::Deserialize)]
struct ContentBody {
    content: String,
}

async fn control_volumes(State(sim): AppState, Path(app): Path<String>) -> ApiResult {
    let ctl = crate::sim::SimControl { sim: sim.clone() };
    let view = ctl.volumes(&app).ok_or_else(ApiError::app_not_found)?;
    Ok(ok_json(json!(view)))
}

async fn control_content(
    State(sim): AppState,
    Path((app, id)): VolumePath,
    body: Bytes,
) -> ApiResult {
    let req: ContentBody = parse_body(&body)?;
    let ctl = crate::sim::SimControl { sim: sim.clone() };
    if !ctl.set_volume_content(&app, &id, &req.content) {
        return Err(ApiError::volume_not_found());
    }
    Ok(ok_json(json!({ "id": id, "content": req.content })))
}

/// `GET /__sim/apps/{app}/volumes` and `PUT /__sim/apps/{app}/volumes/{id}/content`.
pub(crate) fn control_routes() -> axum::Router<std::sync::Arc<crate::sim::server::Sim>> {
    axum::Router::new()
        .route(
            "/__sim/apps/{app}/volumes",
            axum::routing::get(control_volumes),
        )
        .route(
            "/__sim/apps/{app}/volumes/{id}/content",
            axum::routing::put(control_content),
        )
}
