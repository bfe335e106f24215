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

use std::collections::{BTreeSet, HashSet};

use crate::apply::lock::FleetLock;
use crate::apply::ops::{Op, OpKind};
use crate::fly::client::{ApiError, Client};
use crate::resource::{META_OWNS, META_REMOVING, app_owner_tag, owned_records, removal_marks};

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

/// The pre-destroy rule: removing a tenant deletes its app and with it its volumes'
/// snapshots. One warning per tenant app a plan deletes that still holds volumes,
/// naming the command that copies them off Fly first.
pub fn snapshot_loss_warnings(changes: &[crate::plan::Change]) -> Vec<crate::diag::Diagnostic> {
    use crate::plan::Action;
    use crate::resource::Kind;
    changes
        .iter()
        .filter(|c| c.kind == Kind::App && c.action == Action::Delete)
        .filter_map(|c| {
            let tenant = c.tenant.as_deref()?;
            let volumes = changes
                .iter()
                .any(|v| v.kind == Kind::Volume && v.action == Action::Delete && v.app == c.app);
            volumes.then(|| {
                crate::diag::Diagnostic::warning(format!(
                    "removing tenant {tenant} deletes app {} and with it its volumes' snapshots",
                    c.app
                ))
                .address(c.address.to_string())
                .hint(format!(
                    "copy the data off Fly first: `flotilla backup export SPEC --tenant {tenant}` (needs `backups.export`; README, \"Off-site export\")"
                ))
            })
        })
        .collect()
}

/// The apps `ops` delete.
pub fn deleted_apps(ops: &[Op]) -> Vec<String> {
    ops.iter()
        .filter(|o| matches!(o.kind, OpKind::DeleteApp { .. }))
        .map(|o| o.app.clone())
        .collect()
}

/// The apps this fleet owns once `ops` ran: those `owned` now (observed as this fleet's)
/// and those `ops` create, less those they delete.
pub fn owned_after(owned: impl IntoIterator<Item = String>, ops: &[Op]) -> BTreeSet<String> {
    let deleted: HashSet<String> = deleted_apps(ops).into_iter().collect();
    owned
        .into_iter()
        .chain(
            ops.iter()
                .filter(|o| matches!(o.kind, OpKind::CreateApp { .. }))
                .map(|o| o.app.clone()),
        )
        .filter(|a| !deleted.contains(a))
        .collect()
}

/// Records `apps` as this fleet's on its sentinel (`flotilla_owns_N`, see
/// [`crate::resource::META_OWNS`]) before they are created, so that another fleet sees
/// them as owned even while they hold no Machine. Writes only the keys that differ.
pub async fn record_owned(
    client: &Client,
    lock: &FleetLock,
    apps: &BTreeSet<String>,
) -> Result<(), ApiError> {
    let s = lock.sentinel();
    let lease = Some(lock.lease());
    let tags: BTreeSet<String> = apps.iter().map(|a| app_owner_tag(a)).collect();
    let want = owned_records(&tags);
    let Some(m) = client.get_machine(&s.app, &s.machine).await? else {
        return Ok(());
    };
    let have = &m.config.metadata;
    for (k, v) in &want {
        if have.get(k) != Some(v) {
            client.set_metadata(&s.app, &s.machine, k, v, lease).await?;
        }
    }
    for k in have.keys().filter(|k| k.starts_with(META_OWNS)) {
        if !want.contains_key(k) {
            client.delete_metadata(&s.app, &s.machine, k, lease).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_apps_fit_in_thirteen_bounded_records_that_read_back() {
        let apps: BTreeSet<String> = (0..1000).map(|i| format!("tenant-app-{i}")).collect();
        let tags: BTreeSet<String> = apps.iter().map(|a| app_owner_tag(a)).collect();
        assert_eq!(tags.len(), 1000, "no two tags alike");
        let records = owned_records(&tags);
        assert_eq!(records.len(), 13);
        assert!(records.keys().all(|k| k.starts_with(META_OWNS)));
        assert!(records.values().all(|v| v.len() < 1024), "{records:?}");
        let read: BTreeSet<String> = crate::resource::owned_tags(&records)
            .into_iter()
            .map(str::to_string)
            .collect();
        assert_eq!(read, tags);
        assert_eq!(app_owner_tag("own-a").len(), 12);
    }
}
