//! Volumes: creating one in its region or the first fallback with capacity (looked up
//! by name, region and a not-yet-known ID after a lost response), extending one, and
//! destroying one — a snapshot first when its policy says so, then waiting for Fly to
//! clear the attachment of the Machine destroyed before it.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use super::confirm::{NotActed, act_confirmed};
use super::poll::{Check, Pause, Until, poll_until};
use super::{OpError, OpResult, Shared};
use crate::apply::ops::Op;
use crate::fly::convert::create_volume_body;
use crate::resource::{Address, VolumeSpec};
use crate::wire::api as fly;

/// Creates attempted in one region when every outcome is unknown.
const ATTEMPTS: u32 = 4;

pub(super) async fn create(sh: &Shared, address: &Address) -> OpResult {
    let (id, region) = create_in(sh, address, &[]).await?;
    Ok(format!("{id} in {region}"))
}

/// The primary region, then the fallbacks, without repeats.
pub(super) fn regions_for(primary: &str, fallbacks: &[String]) -> Vec<String> {
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
pub(super) async fn create_in(
    sh: &Shared,
    address: &Address,
    not_in: &[String],
) -> Result<(String, String), OpError> {
    let r = sh.resource(address)?;
    let v = r
        .volume()
        .ok_or_else(|| OpError::internal("not a volume"))?;
    let retention = sh.retention(address);
    let fork = sh.fork_source(address);
    let restore = match (&fork, &v.restore_from) {
        (None, Some(from)) => Some(restore_snapshot(sh, from).await?),
        _ => None,
    };
    let mut full = Vec::new();
    for region in regions_for(&v.region, &v.fallback_regions) {
        if not_in.contains(&region) {
            continue;
        }
        let mut body = create_volume_body(&v.name, &region, v.size_gb, v.encrypted, retention);
        // A region move copies the old volume (Fly documents forking into another
        // region: `source_volume_id` with the target `region`); `restore_from` starts
        // from a snapshot (`snapshot_id`).
        if let Some(src) = &fork {
            body["source_volume_id"] = Value::from(src.as_str());
        } else if let Some(sid) = &restore {
            body["snapshot_id"] = Value::from(sid.as_str());
        }
        let body = &body;
        let (app, at) = (r.app.as_str(), region.as_str());
        // In an app created a moment ago, Fly may answer 404 for a while.
        let app_new = sh.app_is_new(app);
        let acted = act_confirmed(
            ATTEMPTS,
            || async move {
                let create = || sh.client.create_volume(app, body);
                if app_new {
                    sh.client.fresh(create).await
                } else {
                    create().await
                }
            },
            || async move { find_created(sh, app, v, at).await },
        )
        .await;
        match acted {
            Ok(vol) => {
                let id = vol.into_inner().id;
                sh.set_created_volume(address, &id, &region);
                return Ok((id, region));
            }
            Err(NotActed::Refused(e)) => match e.capacity() {
                Some(c) if c.falls_back() => full.push(region),
                Some(_) => {
                    let what = format!("volume {}", v.name);
                    return Err(super::machine::quota_error(&what, &region, e));
                }
                None => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(OpError::failed(format!(
        "no capacity for volume {} in {}",
        v.name,
        full.join(", ")
    ))
    .with_hint("add fallback_regions, or try again later"))
}

/// The snapshot a `restore_from` volume starts from: the given id, or the source
/// volume's newest complete snapshot.
async fn restore_snapshot(
    sh: &Shared,
    from: &crate::resource::RestoreFrom,
) -> Result<String, OpError> {
    let source = sh.id_of(&from.volume).ok_or_else(|| {
        OpError::failed(format!(
            "{} (restore_from's source) does not exist yet",
            from.volume
        ))
        .with_hint("apply the source tenant first, or remove volume.restore_from")
    })?;
    let snaps = sh.client.list_snapshots(&from.app, &source).await?;
    let id_of = |s: &Value| s.get("id").and_then(Value::as_str).map(str::to_string);
    let found = match &from.snapshot {
        Some(id) => snaps
            .iter()
            .find(|s| id_of(s).as_deref() == Some(id.as_str())),
        None => snaps.iter().filter(|s| snapshot_done(s)).max_by_key(|s| {
            s.get("created_at")
                .and_then(Value::as_str)
                .map(str::to_string)
        }),
    };
    match found.and_then(id_of) {
        Some(id) if found.is_some_and(snapshot_done) => Ok(id),
        Some(id) => Err(
            OpError::failed(format!("snapshot {id} of {source} is not complete"))
                .with_hint("wait until `flotilla snapshots` shows it as created"),
        ),
        None => Err(OpError::failed(format!(
            "volume {source} of tenant {} has no {} to restore from",
            from.tenant,
            from.snapshot
                .as_ref()
                .map_or("complete snapshot".to_string(), |id| format!(
                    "snapshot {id}"
                ))
        ))
        .with_hint("take one with `flotilla snapshot SPEC --tenant NAME`")),
    }
}

/// After a lost create response: a new, unattached volume of this name in this region
/// that was not observed is the one.
async fn find_created(
    sh: &Shared,
    app: &str,
    v: &VolumeSpec,
    region: &str,
) -> Result<Option<fly::Volume>, crate::fly::client::ApiError> {
    let known: HashSet<&str> = sh
        .observed
        .volumes
        .values()
        .map(|x| x.id.as_str())
        .collect();
    Ok(sh.client.list_volumes(app).await?.into_iter().find(|x| {
        x.name == v.name
            && x.region == region
            && x.attached_machine_id.is_none()
            && !known.contains(x.id.as_str())
            && !crate::wire::api::is_gone(&x.state)
    }))
}

pub(super) async fn extend(sh: &Shared, op: &Op, size_gb: u32) -> OpResult {
    let id = sh.known_id(&op.address, "volume")?;
    sh.client.extend_volume(&op.app, &id, size_gb).await?;
    Ok(format!("{id} extended to {size_gb} GB"))
}

pub(super) async fn delete(sh: &Shared, app: &str, id: &str, snapshot: bool) -> OpResult {
    let detail = if snapshot {
        let sid = take_snapshot(sh, app, id).await?;
        format!("snapshot {sid} taken first; ")
    } else {
        String::new()
    };
    wait_detached(sh, app, id).await?;
    // Still attached for a moment after the wait (detach lags): try again.
    let until = Until {
        deadline: sh.deadline(),
        pause: Pause::Sleep(Duration::from_secs(2)),
    };
    poll_until(&sh.client, until, || async move {
        match sh.client.delete_volume(app, id).await {
            Ok(()) => Ok(Check::Reached(())),
            Err(e) if e.status() == Some(412) => Ok(Check::Awaiting(e.into())),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(format!("{detail}volume {id} destroyed"))
}

/// Takes a snapshot and waits until it is done. Returns its ID (`?` when Fly lists none).
pub(super) async fn take_snapshot(sh: &Shared, app: &str, id: &str) -> Result<String, OpError> {
    let before = sh.client.list_snapshots(app, id).await?.len();
    sh.client.create_snapshot(app, id).await?;
    let until = Until {
        deadline: sh.deadline(),
        pause: Pause::Sleep(Duration::from_secs(1)),
    };
    poll_until(&sh.client, until, || async move {
        let snaps = sh.client.list_snapshots(app, id).await?;
        if snaps.len() > before && snaps.iter().any(snapshot_done) {
            return Ok(Check::Reached(snapshot_id(&snaps)));
        }
        Ok(Check::Awaiting(OpError::timed_out(format!(
            "the snapshot of volume {id} did not finish within {} s; the volume was kept",
            sh.wait_secs()
        ))))
    })
    .await
}

fn snapshot_done(s: &Value) -> bool {
    matches!(
        s.get("status").and_then(Value::as_str),
        Some("created") | None
    )
}

fn snapshot_id(snaps: &[Value]) -> String {
    snaps
        .last()
        .and_then(|s| s.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string()
}

/// Waits until a volume is no longer attached (Fly clears it a while after its Machine
/// is destroyed).
pub(super) async fn wait_detached(sh: &Shared, app: &str, id: &str) -> Result<(), OpError> {
    let until = Until {
        deadline: sh.deadline(),
        pause: Pause::Sleep(Duration::from_secs(1)),
    };
    poll_until(&sh.client, until, || async move {
        match sh.client.get_volume(app, id).await? {
            None => Ok(Check::Reached(())),
            Some(v) => match v.attached_machine_id {
                None => Ok(Check::Reached(())),
                Some(m) => Ok(Check::Awaiting(OpError::timed_out(format!(
                    "volume {id} is still attached to {m} after {} s",
                    sh.wait_secs()
                )))),
            },
        }
    })
    .await
}
