//! The observer: lists what exists in an organization and returns it as a
//! [`Snapshot`] — the same JSON a `--state FILE` holds — for `state::interpret`.
//!
//! It lists the org's apps, then concurrently (bounded, and within the client's rate
//! limits) each app's Machines; for the apps flotilla may own (the spec's app names, and
//! apps whose Machines carry `flotilla_managed=true`) it also lists volumes and secrets
//! (names and digests only). Other apps are not looked into further.

use std::collections::HashSet;

use futures::stream::{self, StreamExt};

use crate::fly::client::{ApiError, Client};
use crate::resource::META_MANAGED;
use crate::state::{AppSnapshot, STATE_FORMAT_VERSION, Snapshot};

/// Observes `org`. `declared` are the app names the spec manages.
pub async fn observe(
    client: &Client,
    org: &str,
    declared: &HashSet<String>,
    concurrency: usize,
) -> Result<Snapshot, ApiError> {
    let apps = client.list_apps(org).await?;
    let concurrency = concurrency.max(1);
    let results: Vec<Result<Option<AppSnapshot>, ApiError>> = stream::iter(apps)
        .map(|app| async move {
            let machines = client.list_machines(&app.name).await?;
            let managed = machines
                .iter()
                .any(|m| m.config.metadata.get(META_MANAGED).map(String::as_str) == Some("true"));
            if !managed && !declared.contains(&app.name) {
                return Ok(None);
            }
            let (volumes, secrets) = futures::try_join!(
                client.list_volumes(&app.name),
                client.list_secrets(&app.name)
            )?;
            Ok(Some(AppSnapshot {
                app,
                machines,
                volumes,
                secrets,
            }))
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut out = Vec::new();
    for r in results {
        if let Some(a) = r? {
            out.push(a);
        }
    }
    out.sort_by(|a, b| a.app.name.cmp(&b.app.name));
    for a in &mut out {
        a.machines.sort_by(|x, y| x.id.cmp(&y.id));
        a.volumes.sort_by(|x, y| x.id.cmp(&y.id));
        a.secrets.sort_by(|x, y| x.name.cmp(&y.name));
    }
    Ok(Snapshot {
        format_version: STATE_FORMAT_VERSION,
        org: org.to_string(),
        observed_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        apps: out,
    })
}
