//! Updating a Machine in place. Metadata-only changes go through the metadata endpoint
//! (no restart). A restarting update takes a lease, builds the config from the
//! Machine's current one (so fields flotilla does not manage are sent back unchanged),
//! waits until it is started again (with its checks, when it has any) and hands the
//! lease back.

use std::time::Duration;

use super::health::{get, wait_started};
use super::machine::volume_ids;
use super::{OpError, OpResult, Shared};
use crate::apply::ops::Op;
use crate::fly::client::{ApiError, Lease};
use crate::fly::convert::machine_config;
use crate::resource::MachineSpec;

/// Lease attempts before giving up on a Machine someone else holds.
const LEASE_ATTEMPTS: u64 = 10;
/// How long a lease lasts if it is never handed back (seconds).
const LEASE_TTL_SECS: u64 = 120;

pub(super) async fn update(
    sh: &Shared,
    op: &Op,
    restart: bool,
    metadata: &[(String, Option<String>)],
) -> OpResult {
    let r = sh.resource(&op.address)?;
    let m = r
        .machine()
        .ok_or_else(|| OpError::internal("not a Machine"))?;
    let id = sh.known_id(&op.address, "Machine")?;
    let app = r.app.as_str();
    if !restart {
        return set_metadata(sh, app, &id, metadata).await;
    }
    let lease = take_lease(sh, app, &id).await?;
    let result = reconfigure(sh, app, &id, m, &lease).await;
    // Always hand the lease back (it also expires on its own).
    let _ = sh.client.release_lease(app, &id, &lease).await;
    result
}

/// The secrets' records a Machine gets when its restart for them is skipped: the
/// fingerprints and key id it is planned with, and Fly's digests.
pub(super) fn secret_records(
    sh: &Shared,
    op: &Op,
) -> Result<Vec<(String, Option<String>)>, OpError> {
    let r = sh.resource(&op.address)?;
    let m = r
        .machine()
        .ok_or_else(|| OpError::internal("not a Machine"))?;
    let mut records = std::collections::BTreeMap::new();
    for k in crate::secrets::SECRET_METADATA {
        if let Some(v) = m.metadata.get(k) {
            records.insert(k.to_string(), v.clone());
        }
    }
    sh.record_secret_digests(&r.app, m, &mut records);
    // A record to remove is removed only where the Machine has it.
    let has = |k: &str| {
        sh.observed
            .machines
            .get(&op.address)
            .is_some_and(|o| o.config.metadata.contains_key(k))
    };
    Ok(crate::secrets::SECRET_METADATA
        .iter()
        .filter_map(|k| match records.get(*k) {
            Some(v) => Some((k.to_string(), Some(v.clone()))),
            None => has(k).then(|| (k.to_string(), None)),
        })
        .collect())
}

async fn set_metadata(
    sh: &Shared,
    app: &str,
    id: &str,
    metadata: &[(String, Option<String>)],
) -> OpResult {
    for (k, v) in metadata {
        match v {
            Some(v) => sh.client.set_metadata(app, id, k, v).await?,
            None => sh.client.delete_metadata(app, id, k).await?,
        }
    }
    let keys: Vec<&str> = metadata.iter().map(|(k, _)| k.as_str()).collect();
    Ok(format!("{id}: metadata {} (no restart)", keys.join(", ")))
}

/// Sends the new config under the lease and waits for the restart.
async fn reconfigure(sh: &Shared, app: &str, id: &str, m: &MachineSpec, lease: &Lease) -> OpResult {
    let current = get(sh, app, id).await?;
    let mut config = machine_config(m, &volume_ids(sh, m), Some(&current.config));
    sh.record_secret_digests(app, m, &mut config.metadata);
    sh.client
        .update_machine(app, id, &config, Some(lease))
        .await?;
    let check_health = m.checks.as_ref().is_some_and(|c| !c.is_empty());
    wait_started(sh, app, id, check_health).await?;
    Ok(format!("{id} updated and restarted ({})", m.image))
}

/// Takes the Machine's lease. Fly (and the simulator) answer 409 while another party
/// holds it: wait 2 s × attempt and try again. An unknown outcome waits 5 s and tries
/// again: a lease cannot be looked up (only its taker learns the nonce), so a lost
/// acquire that took effect shows up as a 409 until it expires. This is a bounded retry
/// with growing pauses rather than a wait for a state, so it keeps its own loop.
async fn take_lease(sh: &Shared, app: &str, id: &str) -> Result<Lease, OpError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let e = match sh.client.acquire_lease(app, id, LEASE_TTL_SECS).await {
            Ok(l) => return Ok(l),
            Err(e) => e,
        };
        let held = e.status() == Some(409);
        if attempt >= LEASE_ATTEMPTS || !(held || e.is_unknown()) {
            return Err(lease_error(e));
        }
        let pause = if held { 2 * attempt } else { 5 };
        sh.client.sleep(Duration::from_secs(pause)).await;
    }
}

fn lease_error(e: ApiError) -> OpError {
    let held = e.status() == Some(409);
    let err = OpError::from(e);
    if held {
        err.with_hint(
            "someone else holds a lease on this Machine; try again when their change is done",
        )
    } else {
        err
    }
}
