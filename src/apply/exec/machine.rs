//! Creating and destroying Machines. A create goes where its volume is (or to the first
//! region with capacity, moving a volume made for it a moment ago along), is looked up
//! by its flotilla metadata after a lost response, and is done once the Machine has
//! started. A destroy happens under the Machine's lease and is done once Fly reports the
//! Machine destroyed.

use std::collections::HashMap;

use serde_json::Value;

use super::confirm::{Acted, NotActed, act_confirmed};
use super::health::{Age, wait_started};
use super::lease::MachineLease;
use super::poll::{Check, Pause, Until, poll_until};
use super::volume::{create_in, regions_for, wait_detached};
use super::{OpError, OpResult, Shared};
use crate::apply::ops::Op;
use crate::fly::client::ApiError;
use crate::fly::convert::{create_machine_body, machine_config};
use crate::fly::errors::CapacityError;
use crate::resource::{Address, META_INDEX, META_ROLE, META_TENANT, MachineSpec};

/// Creates attempted when every outcome is unknown.
const ATTEMPTS: u32 = 4;

pub(super) async fn create(sh: &Shared, op: &Op) -> OpResult {
    let r = sh.resource(&op.address)?;
    let m = r
        .machine()
        .ok_or_else(|| OpError::internal("not a Machine"))?;
    let app = r.app.as_str();
    let standby = standby_spec(sh, app, &op.address, m).await?;
    let m = standby.as_ref().unwrap_or(m);
    wait_for_kept_volumes(sh, app, m).await?;
    // One attempt per region: a capacity error moves on to the next candidate.
    let mut tried: Vec<String> = Vec::new();
    loop {
        let volume_ids = volume_ids(sh, m);
        if volume_ids.len() != m.mounts.len() {
            return Err(OpError::internal("a volume this Machine mounts has no ID"));
        }
        let Some(region) = next_region(sh, m, &tried) else {
            return Err(OpError::failed(format!(
                "no capacity for Machine {} in {}",
                m.name,
                tried.join(", ")
            ))
            .with_hint("add fallback_regions, or try again later"));
        };
        let mut config = machine_config(m, &volume_ids, None);
        sh.record_secret_digests(app, m, &mut config.metadata);
        record_applied_at(&mut config.metadata);
        let body = create_machine_body(m, &region, &config);
        match create_once(sh, app, m, &body).await {
            Ok(id) => {
                sh.set_id(&op.address, &id);
                if let Some(schedule) = &m.config.schedule {
                    // Created stopped (`skip_launch`): Fly starts it on its schedule.
                    return Ok(format!("{id} in {region}, not started (runs {schedule})"));
                }
                if let Some(primary) = m.config.standbys.first() {
                    // Created stopped: Fly starts it when its primary's host fails.
                    return Ok(format!("{id} in {region}, stopped (standby for {primary})"));
                }
                wait_started(sh, app, &id, false, Age::New).await?;
                return Ok(format!("{id} in {region}"));
            }
            Err(NotActed::Refused(e)) => match e.capacity() {
                Some(c) if c.falls_back() => {
                    tried.push(region.clone());
                    move_new_volume(sh, app, m, &region, &tried, e, c).await?;
                }
                Some(_) => return Err(quota_error(&format!("Machine {}", m.name), &region, e)),
                None => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
}

/// A standby's spec with its primary's Fly ID in `standbys` (the primary was observed,
/// or created earlier in this run: the create waits for it), tried first in the region
/// the primary runs in (a primary made in a fallback region takes its standbys along);
/// `None` for a primary.
async fn standby_spec(
    sh: &Shared,
    app: &str,
    address: &Address,
    m: &MachineSpec,
) -> Result<Option<MachineSpec>, OpError> {
    let Some(primary) = address.primary() else {
        return Ok(None);
    };
    let id = sh.known_id(&primary, "primary Machine")?;
    let mut s = m.clone();
    let region = match sh.observed.machines.get(&primary).filter(|o| o.id == id) {
        Some(o) => Some(o.region.clone()),
        None => sh.client.get_machine(app, &id).await?.map(|p| p.region),
    };
    if let Some(r) = region.filter(|r| *r != s.region && s.fallback_regions.contains(r)) {
        // The declared region stays a fallback of the standby.
        s.fallback_regions.retain(|f| *f != r);
        s.fallback_regions
            .insert(0, std::mem::replace(&mut s.region, r));
    }
    s.config.standbys = vec![id];
    Ok(Some(s))
}

/// A create refused by the organization's quota in `region`: not a full region, so no
/// fallback; the API's answer stays in the message.
pub(super) fn quota_error(what: &str, region: &str, e: ApiError) -> OpError {
    OpError::failed(format!(
        "{what} not created: the organization is over its memory quota in {region} ({e})"
    ))
    .with_hint(format!(
        "a quota is an account limit, not a full region, so fallback_regions are not tried; ask Fly to raise the quota in {region}, or free memory there (smaller or fewer Machines), then apply again"
    ))
}

/// A kept volume that its old Machine (replaced) still holds must detach first.
async fn wait_for_kept_volumes(sh: &Shared, app: &str, m: &MachineSpec) -> Result<(), OpError> {
    for mt in &m.mounts {
        if let Some(v) = sh.observed.volumes.get(&mt.volume)
            && v.attached_machine_id.is_some()
            && !sh.created_now(&mt.volume)
        {
            wait_detached(sh, app, &v.id).await?;
        }
    }
    Ok(())
}

/// The Fly IDs of the volumes the Machine mounts (those known so far).
pub(super) fn volume_ids(sh: &Shared, m: &MachineSpec) -> HashMap<Address, String> {
    m.mounts
        .iter()
        .filter_map(|mt| sh.id_of(&mt.volume).map(|id| (mt.volume.clone(), id)))
        .collect()
}

/// Where to try next: with a volume, where the volume is; else the first region of the
/// primary and fallbacks not tried yet.
fn next_region(sh: &Shared, m: &MachineSpec, tried: &[String]) -> Option<String> {
    let mount_region = m.mounts.first().and_then(|mt| {
        sh.created_region(&mt.volume).or_else(|| {
            sh.observed
                .volumes
                .get(&mt.volume)
                .map(|v| v.region.clone())
        })
    });
    match mount_region {
        Some(r) => Some(r),
        None => regions_for(&m.region, &m.fallback_regions)
            .into_iter()
            .find(|r| !tried.contains(r)),
    }
}

/// After a capacity error in `region`: the volume and the Machine move together, so a
/// volume made for this Machine a moment ago (still empty) is re-created in the next
/// region. An existing volume cannot move.
async fn move_new_volume(
    sh: &Shared,
    app: &str,
    m: &MachineSpec,
    region: &str,
    tried: &[String],
    e: ApiError,
    why: CapacityError,
) -> Result<(), OpError> {
    let Some(mt) = m.mounts.first() else {
        return Ok(());
    };
    if !sh.created_now(&mt.volume) {
        let hint = match why {
            CapacityError::VolumeHost => format!(
                "the host of the Machine's existing volume in {region} is full; try again later, or change the tenant's region (a region move forks the volume onto another host)"
            ),
            _ => format!(
                "the Machine's existing volume is in {region}, which has no capacity now; try again later"
            ),
        };
        return Err(OpError::from(e).with_hint(hint));
    }
    let old = sh.id_of(&mt.volume).unwrap_or_default();
    sh.client.delete_volume(app, &old).await?;
    let (id, r2) = create_in(sh, &mt.volume, tried).await?;
    sh.note(
        &mt.volume,
        &format!("moved from {region} to {r2} (no Machine capacity in {region}): {old} → {id}"),
    );
    Ok(())
}

/// One create, with lookups after unknown outcomes. Returns the Machine's ID.
async fn create_once(
    sh: &Shared,
    app: &str,
    m: &MachineSpec,
    body: &Value,
) -> Result<String, NotActed> {
    // Right after its app or volume was created, Fly may not know them yet (404).
    let parents_new = sh.app_is_new(app) || m.mounts.iter().any(|mt| sh.created_now(&mt.volume));
    act_confirmed(
        ATTEMPTS,
        || async move {
            let create = || sh.client.create_machine(app, body);
            let made = if parents_new {
                sh.client.fresh(create).await
            } else {
                create().await
            };
            made.map(|x| x.id)
        },
        || async move { find_created(sh, app, m).await },
    )
    .await
    .map(Acted::into_inner)
}

/// After a lost create response: a live Machine with this one's identity and name.
async fn find_created(sh: &Shared, app: &str, m: &MachineSpec) -> Result<Option<String>, ApiError> {
    let ident = identity(m);
    let pairs: Vec<(&str, &str)> = ident.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let found = sh.client.find_machines(app, &pairs).await?;
    Ok(found
        .into_iter()
        .find(|x| !matches!(x.state.as_str(), "destroyed" | "destroying") && x.name == m.name)
        .map(|x| x.id))
}

/// The metadata that identifies the Machine at an address (for finding it again).
fn identity(m: &MachineSpec) -> Vec<(&'static str, String)> {
    let mut v = vec![
        (META_INDEX, m.index.to_string()),
        (META_ROLE, m.role.clone()),
    ];
    if let Some(t) = m.metadata.get(META_TENANT) {
        v.push((META_TENANT, t.clone()));
    }
    for k in [crate::resource::META_GROUP, crate::resource::META_STANDBY] {
        if let Some(g) = m.metadata.get(k) {
            v.push((k, g.clone()));
        }
    }
    v
}

/// Destroys a Machine under its lease (refused when it changed since the plan). A lost
/// answer is confirmed from Fly: a Machine gone or being destroyed took the request.
pub(super) async fn delete(sh: &Shared, op: &Op, id: &str) -> OpResult {
    let app = op.app.as_str();
    let already = match sh.client.get_machine(app, id).await? {
        None => return Ok(format!("Machine {id} destroyed")),
        Some(m) => is_destroyed(&m.state),
    };
    if !already {
        let lease = MachineLease::take(sh, app, id).await?;
        let sent = match lease.current(sh, &op.address).await {
            Ok(_) => send_delete(sh, app, id, &lease).await,
            Err(e) => Err(e),
        };
        lease.release().await;
        sent?;
    }
    wait_destroyed(sh, app, id).await?;
    Ok(format!("Machine {id} destroyed"))
}

fn is_destroyed(state: &str) -> bool {
    matches!(state, "destroyed" | "destroying")
}

pub(super) async fn send_delete(
    sh: &Shared,
    app: &str,
    id: &str,
    lease: &MachineLease,
) -> Result<(), OpError> {
    let Err(e) = sh.client.delete_machine(app, id, Some(lease.lease())).await else {
        return Ok(());
    };
    // A repeat after a lost answer finds the Machine being destroyed: that is done.
    match sh.client.get_machine(app, id).await? {
        None => Ok(()),
        Some(m) if is_destroyed(&m.state) => Ok(()),
        Some(_) => Err(e.into()),
    }
}

pub(super) async fn wait_destroyed(sh: &Shared, app: &str, id: &str) -> Result<(), OpError> {
    let until = Until {
        deadline: sh.deadline(),
        pause: Pause::MachineState {
            app,
            id,
            state: "destroyed",
        },
    };
    poll_until(&sh.client, until, || async move {
        match sh.client.get_machine(app, id).await? {
            None => Ok(Check::Reached(())),
            Some(m) if m.state == "destroyed" => Ok(Check::Reached(())),
            Some(_) => Ok(Check::Awaiting(OpError::timed_out(format!(
                "Machine {id} was not destroyed within {} s",
                sh.wait_secs()
            )))),
        }
    })
    .await
}

/// Records in the config being sent when this apply wrote it (`status` shows it; plans
/// do not compare it).
pub(super) fn record_applied_at(metadata: &mut crate::resource::StrMap) {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    metadata.insert(crate::resource::META_APPLIED_AT.to_string(), now);
}
