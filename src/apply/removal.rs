//! Crash-safe removals. Destroying a tenant's app takes several steps (its Machines,
//! then its volumes, then the app with its secrets); once its Machines are gone nothing
//! in the app says it is flotilla's, so an apply killed between those steps used to
//! leave an app with volumes and secrets that no plan showed.
//!
//! Before the first step, the app is marked as being removed on the fleet's sentinel
//! Machine (metadata `flotilla_removing_APP = ADDRESS`, under the fleet lock); the mark
//! is cleared once the app is gone. The observer reads the marks, and `state` treats a
//! marked app and what is left in it as this fleet's, so the next plan shows the rest
//! of the removal and the next apply finishes it. Marks of apps that no longer exist
//! or that the spec declares again are cleared when the next apply starts.

use std::collections::HashSet;

use crate::apply::lock::FleetLock;
use crate::apply::ops::{Op, OpKind};
use crate::fly::client::{ApiError, Client};
use crate::resource::{META_REMOVING, removal_marks};

/// Marks the apps `ops` delete, and clears stale marks (apps gone, or declared again).
pub async fn mark(
    client: &Client,
    lock: &FleetLock,
    ops: &[Op],
    declared: &HashSet<String>,
) -> Result<(), ApiError> {
    let s = lock.sentinel();
    let lease = Some(lock.lease());
    let deleting: Vec<&Op> = ops
        .iter()
        .filter(|o| matches!(o.kind, OpKind::DeleteApp { .. }))
        .collect();
    if let Some(m) = client.get_machine(&s.app, &s.machine).await? {
        for (app, _) in removal_marks(&m.config.metadata) {
            let again = declared.contains(app) && !deleting.iter().any(|o| o.app == app);
            if again || client.get_app(app).await?.is_none() {
                let key = format!("{META_REMOVING}{app}");
                client
                    .delete_metadata(&s.app, &s.machine, &key, lease)
                    .await?;
            }
        }
    }
    for op in deleting {
        let key = format!("{META_REMOVING}{}", op.app);
        let address = op.address.to_string();
        client
            .set_metadata(&s.app, &s.machine, &key, &address, lease)
            .await?;
    }
    Ok(())
}

/// After the run: clears the marks of the `apps` that are gone (an app whose deletion
/// failed or did not run keeps its mark).
pub async fn unmark_gone(
    client: &Client,
    lock: &FleetLock,
    apps: &[String],
) -> Result<(), ApiError> {
    let s = lock.sentinel();
    for app in apps {
        if client.get_app(app).await?.is_none() {
            let key = format!("{META_REMOVING}{app}");
            client
                .delete_metadata(&s.app, &s.machine, &key, Some(lock.lease()))
                .await?;
        }
    }
    Ok(())
}

/// The apps `ops` delete.
pub fn deleted_apps(ops: &[Op]) -> Vec<String> {
    ops.iter()
        .filter(|o| matches!(o.kind, OpKind::DeleteApp { .. }))
        .map(|o| o.app.clone())
        .collect()
}
