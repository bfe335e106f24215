//! Region moves: a Machine and its volume carried into another region with their data,
//! in two operations. [`volume`] (the volume's change): the Machine mounting it is
//! stopped under its lease, the volume is snapshotted (waited for: a restore point if
//! anything goes wrong later) and copied into the new region as a fork
//! (`source_volume_id` + `region`, the mechanism Fly documents for copying a volume into
//! another region; the region falls back as creates do on a capacity error). [`machine`]
//! (the Machine's change): the new Machine is created on the copy and must reach
//! `started` with its checks passing; then the old Machine is destroyed and the old
//! volume retired (kept, unattached, recorded on the new Machine as `restore` does) or,
//! with `--allow-data-loss`, deleted. A first half that fails, or a new Machine that does
//! not start, is rolled back: the new Machine and the copy are removed and the old
//! Machine is started again on the old volume; the error says so.

use super::health::{Age, wait_started};
use super::lease::MachineLease;
use super::machine::{send_delete, wait_destroyed};
use super::volume::{create_in, take_snapshot, wait_detached};
use super::{OpError, OpResult, Shared};
use crate::apply::ops::Op;
use crate::fly::steps::{retired_with, wait_machine, wait_volume};
use crate::resource::META_RETIRED;

/// The first half: stop, snapshot, copy into the new region.
pub(super) async fn volume(sh: &Shared, op: &Op, id: &str, machine: Option<&str>) -> OpResult {
    let app = op.app.as_str();
    if let Some(m) = machine {
        stop(sh, app, m).await?;
    }
    match copy(sh, op, id).await {
        Ok(detail) => Ok(detail),
        Err(e) => Err(match machine {
            Some(m) => restart_after(sh, app, m, id, e).await,
            None => e,
        }),
    }
}

/// Snapshot, then the fork in the new region (waited until created).
async fn copy(sh: &Shared, op: &Op, id: &str) -> OpResult {
    let app = op.app.as_str();
    let snapshot = take_snapshot(sh, app, id).await?;
    sh.set_fork_source(&op.address, id);
    let (new, region) = create_in(sh, &op.address, &[]).await?;
    wait_volume(&sh.client, app, &new, |v| v.state == "created")
        .await
        .map_err(OpError::timed_out)?;
    Ok(format!(
        "snapshot {snapshot} of {id} taken; {new} in {region} (a copy of {id})"
    ))
}

/// Stops the Machine under its lease and waits until it is stopped.
async fn stop(sh: &Shared, app: &str, id: &str) -> Result<(), OpError> {
    let lease = MachineLease::take(sh, app, id).await?;
    let sent = sh.client.stop_machine(app, id, Some(lease.lease())).await;
    lease.release().await;
    sent?;
    wait_machine(&sh.client, app, id, "stopped")
        .await
        .map_err(OpError::timed_out)
}

/// After a failed move: starts the old Machine again on the old volume, and says so in
/// the error.
async fn restart_after(sh: &Shared, app: &str, id: &str, volume: &str, e: OpError) -> OpError {
    let back = match sh.client.start_machine(app, id).await {
        Ok(()) => wait_machine(&sh.client, app, id, "started").await,
        Err(s) => Err(s.to_string()),
    };
    let note = match back {
        Ok(()) => format!("rolled back: Machine {id} started again on volume {volume}"),
        Err(b) => format!(
            "rolling back failed too: Machine {id} (volume {volume}) did not start again: {b}"
        ),
    };
    let hint = "nothing was lost: the old Machine and volume are as they were; fix the cause and apply again";
    OpError::failed(format!("{e}; {note}")).with_hint(hint)
}

/// The second half: the new Machine, then the old one destroyed and its volume retired.
pub(super) async fn machine(
    sh: &Shared,
    op: &Op,
    old: &str,
    old_volume: &str,
    delete_old_volume: bool,
) -> OpResult {
    let app = op.app.as_str();
    let started = start_new(sh, op).await;
    let new = match started {
        Ok(new) => new,
        Err(e) => {
            let e = remove_new(sh, op, old, e).await;
            return Err(restart_after(sh, app, old, old_volume, e).await);
        }
    };
    let retired_from = destroy_old(sh, app, old).await?;
    wait_detached(sh, app, old_volume).await?;
    let fate = if delete_old_volume {
        sh.client.delete_volume(app, old_volume).await?;
        format!("old volume {old_volume} deleted")
    } else {
        let record = retired_with(retired_from.as_deref(), old_volume);
        sh.client
            .set_metadata(app, &new, META_RETIRED, &record, None)
            .await?;
        format!("old volume {old_volume} retired (kept)")
    };
    Ok(format!("{new} started; Machine {old} destroyed; {fate}"))
}

/// Creates the Machine on the copy (its region follows the copy's) and waits until it
/// is started with its checks passing. Returns its ID.
async fn start_new(sh: &Shared, op: &Op) -> Result<String, OpError> {
    super::machine::create(sh, op).await?;
    let id = sh.known_id(&op.address, "new Machine")?;
    wait_started(sh, &op.app, &id, true, Age::New).await?;
    Ok(id)
}

/// After the new Machine failed: destroys it (when it was made) and the copy, so the
/// next plan sees the tenant as before the move.
async fn remove_new(sh: &Shared, op: &Op, old: &str, e: OpError) -> OpError {
    let app = op.app.as_str();
    let mut notes = Vec::new();
    if let Some(new) = sh.id_of(&op.address).filter(|id| id != old) {
        let gone = match sh.client.delete_machine(app, &new, None).await {
            Ok(()) => wait_destroyed(sh, app, &new).await,
            Err(x) => Err(x.into()),
        };
        if let Err(x) = gone {
            notes.push(format!("the new Machine {new} could not be destroyed: {x}"));
        }
    }
    let copies = sh
        .resource(&op.address)
        .ok()
        .and_then(|r| r.machine())
        .map(|m| m.mounts.clone())
        .unwrap_or_default();
    for mt in copies.iter().filter(|mt| sh.created_now(&mt.volume)) {
        if let Some(copy) = sh.id_of(&mt.volume) {
            let gone = match wait_detached(sh, app, &copy).await {
                Ok(()) => sh
                    .client
                    .delete_volume(app, &copy)
                    .await
                    .map_err(OpError::from),
                Err(x) => Err(x),
            };
            if let Err(x) = gone {
                notes.push(format!("the copy {copy} could not be deleted: {x}"));
            }
        }
    }
    if notes.is_empty() {
        e
    } else {
        OpError::failed(format!("{e}; {}", notes.join("; ")))
    }
}

/// Destroys the old Machine under its lease. Returns its retired-volumes record (carried
/// over to the new Machine).
async fn destroy_old(sh: &Shared, app: &str, old: &str) -> Result<Option<String>, OpError> {
    let Some(m) = sh.client.get_machine(app, old).await? else {
        return Ok(None);
    };
    let record = m.config.metadata.get(META_RETIRED).cloned();
    let lease = MachineLease::take(sh, app, old).await?;
    let sent = send_delete(sh, app, old, &lease).await;
    lease.release().await;
    sent?;
    wait_destroyed(sh, app, old).await?;
    Ok(record)
}
