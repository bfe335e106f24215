//! Machine leases around every Machine write, and the stale-plan rule.
//!
//! [`MachineLease::take`] takes a Machine's lease (waiting a bounded while for another
//! holder), renews it in the background every third of its TTL for as long as the write
//! and the wait after it last, and hands it back on [`MachineLease::release`]. A lost
//! response to the lease request is read back and recognised by the unique tag in the
//! lease's description, so it never blocks the Machine until the lease expires.
//!
//! Under the lease the Machine is re-read ([`MachineLease::current`]) and compared with
//! the Machine the plan was computed from: when its version (`instance_id`) changed
//! since the observation, someone else changed it, and the write is refused with a hint
//! to plan again — it would otherwise overwrite their change without the plan showing it.

use std::time::Duration;

use super::health::get;
use super::{OpError, Shared};
use crate::fly::client::{ApiError, Client, Lease};
use crate::resource::Address;
use crate::wire::api as fly;

/// Lease attempts before giving up on a Machine someone else holds.
const ATTEMPTS: u64 = 10;
/// How long a lease lasts if it is never handed back, and is renewed to (API seconds).
const TTL_SECS: u64 = 60;

/// A held Machine lease, renewed until released (or dropped).
pub(super) struct MachineLease {
    client: Client,
    app: String,
    id: String,
    lease: Lease,
    renewer: tokio::task::JoinHandle<()>,
}

impl MachineLease {
    /// Takes the lease of Machine `id`. Another holder is waited for (2 s × attempt);
    /// a lost response is looked up.
    pub(super) async fn take(sh: &Shared, app: &str, id: &str) -> Result<MachineLease, OpError> {
        let description = format!("flotilla apply [{:016x}]", rand::random::<u64>());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let e = match acquire(&sh.client, app, id, &description).await {
                Ok(lease) => return Ok(MachineLease::hold(&sh.client, app, id, lease)),
                Err(e) => e,
            };
            let held = e.status() == Some(409);
            if attempt >= ATTEMPTS || !(held || e.is_unknown()) {
                return Err(lease_error(e));
            }
            sh.client.sleep(Duration::from_secs(2 * attempt)).await;
        }
    }

    fn hold(client: &Client, app: &str, id: &str, lease: Lease) -> MachineLease {
        let renewer = tokio::spawn(renew(
            client.clone(),
            app.to_string(),
            id.to_string(),
            lease.clone(),
        ));
        MachineLease {
            client: client.clone(),
            app: app.to_string(),
            id: id.to_string(),
            lease,
            renewer,
        }
    }

    pub(super) fn lease(&self) -> &Lease {
        &self.lease
    }

    /// The Machine as it is now, refused when it changed since the plan was made (the
    /// observed Machine at `address`; a Machine created in this run has none).
    pub(super) async fn current(
        &self,
        sh: &Shared,
        address: &Address,
    ) -> Result<fly::Machine, OpError> {
        let now = get(sh, &self.app, &self.id).await?;
        match sh.observed.machines.get(address) {
            Some(planned) => unchanged_since_plan(planned, &now).map(|()| now),
            None => Ok(now),
        }
    }

    /// Stops renewing and hands the lease back (it also expires on its own; a Machine
    /// destroyed under it has none left).
    pub(super) async fn release(self) {
        self.renewer.abort();
        let _ = self
            .client
            .release_lease(&self.app, &self.id, &self.lease)
            .await;
    }
}

impl Drop for MachineLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// One lease request; after an unknown outcome, the lease is read back and is ours when
/// it carries our description.
async fn acquire(
    client: &Client,
    app: &str,
    id: &str,
    description: &str,
) -> Result<Lease, ApiError> {
    let ttl = client.lease_ttl(TTL_SECS);
    let e = match client.acquire_lease(app, id, ttl, description).await {
        Ok(l) => return Ok(l),
        Err(e) if e.is_unknown() => e,
        Err(e) => return Err(e),
    };
    match client.get_lease(app, id).await? {
        Some(info) if info.description == description => Ok(info.lease),
        _ => Err(e),
    }
}

async fn renew(client: Client, app: String, id: String, lease: Lease) {
    let every = Duration::from_secs(TTL_SECS / 3);
    loop {
        client.sleep(every).await;
        // A failed renewal leaves the lease to expire; the write it protects is refused
        // by Fly (a wrong nonce) rather than done unprotected.
        if client
            .renew_lease(&app, &id, &lease, TTL_SECS)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// The stale-plan rule for one Machine: its version is the one the plan saw.
pub(super) fn unchanged_since_plan(
    planned: &fly::Machine,
    now: &fly::Machine,
) -> Result<(), OpError> {
    if planned.instance_id == now.instance_id {
        return Ok(());
    }
    let v = |m: &fly::Machine| m.instance_id.clone().unwrap_or_else(|| "none".into());
    Err(OpError::failed(format!(
        "Machine {} changed since the plan was made (version {} → {}); not overwriting it",
        now.id,
        v(planned),
        v(now)
    ))
    .with_hint("someone else changed it: run the apply again to plan from what exists"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(version: &str) -> fly::Machine {
        fly::Machine {
            id: "m1".into(),
            instance_id: Some(version.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_machine_changed_since_the_plan_is_not_overwritten() {
        assert!(unchanged_since_plan(&machine("v1"), &machine("v1")).is_ok());
        let e = unchanged_since_plan(&machine("v1"), &machine("v2")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Machine m1 changed since the plan was made (version v1 → v2); not overwriting it\n  hint: someone else changed it: run the apply again to plan from what exists"
        );
    }
}
