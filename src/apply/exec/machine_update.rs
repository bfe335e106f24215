//! Updating a Machine in place, always under its lease ([`super::lease`]): the Machine
//! is re-read under the lease and left alone when it changed since the plan.
//! Metadata-only changes go through the metadata endpoint (no restart). A restarting
//! update builds the config from the Machine's current one (so fields flotilla does not
//! manage are sent back unchanged), sends it only onto that version (`current_version`),
//! confirms a lost answer from the Machine's version, waits until it is started again
//! (with its checks, when it has any) and hands the lease back.

use std::time::Duration;

use super::health::{Age, get, wait_started};
use super::lease::MachineLease;
use super::machine::volume_ids;
use super::{OpError, OpResult, Shared};
use crate::apply::ops::Op;
use crate::fly::convert::machine_config;
use crate::plan::idle::is_idle_state;
use crate::resource::MachineSpec;
use crate::wire::api as fly;

/// Updates sent while every outcome is unknown and the Machine keeps its old version.
const UPDATE_ATTEMPTS: u64 = 4;

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
    let lease = MachineLease::take(sh, app, &id).await?;
    let result = match lease.current(sh, &op.address).await {
        Ok(_) if !restart => set_metadata(sh, app, &id, metadata, &lease).await,
        Ok(current) => reconfigure(sh, app, &current, m, &lease).await,
        Err(e) => Err(e),
    };
    let result = match result {
        Err(e) => Err(super::rollout_mark::failed(sh, (app, &id), m, Some(&lease), e).await),
        ok => ok,
    };
    // Always hand the lease back (it also expires on its own).
    lease.release().await;
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
    let mut records = crate::resource::StrMap::default();
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
    lease: &MachineLease,
) -> OpResult {
    let l = Some(lease.lease());
    for (k, v) in metadata {
        match v {
            Some(v) => sh.client.set_metadata(app, id, k, v, l).await?,
            None => sh.client.delete_metadata(app, id, k, l).await?,
        }
    }
    let keys: Vec<&str> = metadata.iter().map(|(k, _)| k.as_str()).collect();
    Ok(format!("{id}: metadata {} (no restart)", keys.join(", ")))
}

/// Sends the new config under the lease (only onto the version just read) and waits for
/// the restart.
async fn reconfigure(
    sh: &Shared,
    app: &str,
    current: &fly::Machine,
    m: &MachineSpec,
    lease: &MachineLease,
) -> OpResult {
    let id = current.id.as_str();
    let mut config = machine_config(m, &volume_ids(sh, m), Some(&current.config));
    sh.record_secret_digests(app, m, &mut config.metadata);
    super::machine::record_applied_at(&mut config.metadata);
    if is_idle_state(&current.state)
        || crate::plan::idle::waits_for_schedule(m.started_by_fly(), &current.state)
    {
        // A stopped or suspended Machine stays so (a scheduled one waits for its
        // schedule, a standby for its primary's host to fail): its config is updated without
        // starting it and takes effect at its next start.
        send_update(sh, app, current, &config, lease, true).await?;
        return Ok(format!(
            "{id} updated without starting it (was {}; {} takes effect at next start)",
            current.state, config.image
        ));
    }
    send_update(sh, app, current, &config, lease, false).await?;
    let check_health = m.checks.as_ref().is_some_and(|c| !c.is_empty());
    wait_started(sh, app, id, check_health, Age::Known).await?;
    Ok(format!("{id} updated and restarted ({})", m.image))
}

/// The update (`skip_launch` for an idle Machine), confirmed from Fly when its answer is
/// lost: a new version means it took effect (a repeat would find the Machine
/// `replacing`, or at the new version); the old version in a settled state means it did
/// not, and it is sent again.
async fn send_update(
    sh: &Shared,
    app: &str,
    current: &fly::Machine,
    config: &fly::MachineConfig,
    lease: &MachineLease,
    skip_launch: bool,
) -> Result<(), OpError> {
    let id = current.id.as_str();
    let version = current.instance_id.as_deref();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let l = Some(lease.lease());
        let sent = if skip_launch {
            sh.client
                .update_machine_idle(app, id, config, l, version)
                .await
        } else {
            sh.client.update_machine(app, id, config, l, version).await
        };
        let e = match sent {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let busy = e.status() == Some(409) && attempt > 1;
        let moved = e.status() == Some(412) && attempt > 1;
        if !(e.is_unknown() || busy || moved) {
            return Err(e.into());
        }
        let now = get(sh, app, id).await?;
        if now.instance_id.as_deref() != version {
            return Ok(());
        }
        if attempt >= UPDATE_ATTEMPTS {
            return Err(OpError::from(e).with_hint(
                "the update's outcome is unknown and the Machine still runs its old version; run the apply again",
            ));
        }
        sh.client.sleep(Duration::from_secs(attempt)).await;
    }
}
