//! The observer: lists what exists in an organization and returns it as a
//! [`Snapshot`] — the same JSON a `--state FILE` holds — for `state::interpret`.
//!
//! It lists the org's apps, then concurrently (bounded, and within the client's rate
//! limits) each app's Machines; for the apps flotilla may own (the spec's app names, and
//! apps whose Machines carry `flotilla_managed=true`, the fleets' sentinel apps and the
//! apps their sentinels mark as being removed) it also lists volumes and secrets (names
//! and digests only), IP assignments and certificates. Other apps are not looked into
//! further.

use std::collections::HashSet;

use futures::stream::{self, StreamExt};

use crate::fly::client::{ApiError, Client};
use crate::resource::{META_LOCK, META_MANAGED, removal_marks};
use crate::wire as fly_app;
use crate::wire::{AppSnapshot, STATE_FORMAT_VERSION, Snapshot};

/// Requests in flight at once.
pub const CONCURRENCY: usize = 64;

enum Listed {
    Volumes(usize, Vec<crate::wire::Volume>),
    Secrets(usize, Vec<crate::wire::Secret>),
    Ips(usize, Vec<crate::wire::IpAssignment>),
    Certificates(usize, Vec<crate::wire::Certificate>),
}

/// What to list of an owned app.
#[derive(Clone, Copy)]
enum Job {
    Volumes,
    Secrets,
    Ips,
    Certificates,
}

impl Job {
    const ALL: [Job; 4] = [Job::Volumes, Job::Secrets, Job::Ips, Job::Certificates];
}

/// One listing of app `i`.
async fn list(client: &Client, i: usize, name: &str, job: Job) -> Result<Listed, ApiError> {
    Ok(match job {
        Job::Volumes => Listed::Volumes(i, client.list_volumes(name).await?),
        Job::Secrets => Listed::Secrets(i, client.list_secrets(name).await?),
        Job::Ips => Listed::Ips(i, client.list_ips(name).await?),
        Job::Certificates => Listed::Certificates(i, client.list_certificates(name).await?),
    })
}

/// Observes `org`. `declared` are the app names the spec manages.
pub async fn observe(
    client: &Client,
    org: &str,
    declared: &HashSet<String>,
    concurrency: usize,
) -> Result<Snapshot, ApiError> {
    let concurrency = concurrency.max(1);
    let apps = client.list_apps(org).await?;
    // Every app's Machines (they say whether flotilla manages an app it did not name).
    let listed: Vec<Result<(fly_app::App, Vec<crate::wire::Machine>), ApiError>> =
        stream::iter(apps)
            .map(|app| async move { client.list_machines(&app.name).await.map(|m| (app, m)) })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let listed: Vec<(fly_app::App, Vec<crate::wire::Machine>)> =
        listed.into_iter().collect::<Result<_, _>>()?;
    // Apps a fleet's sentinel marks as being removed (an interrupted removal).
    let removing: HashSet<&str> = listed
        .iter()
        .flat_map(|(_, ms)| ms)
        .filter(|m| m.config.metadata.contains_key(META_LOCK))
        .flat_map(|m| removal_marks(&m.config.metadata))
        .map(|(app, _)| app)
        .collect();
    let removing: HashSet<String> = removing.into_iter().map(str::to_string).collect();
    let mut owned: Vec<AppSnapshot> = Vec::new();
    for (app, machines) in listed {
        let managed = machines.iter().any(|m| {
            m.config.metadata.get(META_MANAGED).map(String::as_str) == Some("true")
                || m.config.metadata.contains_key(META_LOCK)
        });
        if managed || declared.contains(&app.name) || removing.contains(&app.name) {
            owned.push(AppSnapshot {
                app,
                machines,
                ..AppSnapshot::default()
            });
        }
    }
    // Volumes, secrets, addresses and certificates of the apps flotilla may own, as one
    // flat stream of requests.
    let names: Vec<String> = owned.iter().map(|a| a.app.name.clone()).collect();
    let jobs = (0..names.len()).flat_map(|i| Job::ALL.map(|j| (i, j)));
    let results: Vec<Result<Listed, ApiError>> = stream::iter(jobs)
        .map(|(i, job)| list(client, i, &names[i], job))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        match r? {
            // Fly lists a deleted volume for a while (`pending_destroy`, `destroyed`):
            // it is gone for every reader of the observation.
            Listed::Volumes(i, v) => {
                owned[i].volumes = v
                    .into_iter()
                    .filter(|v| !crate::wire::api::is_gone(&v.state))
                    .collect()
            }
            Listed::Secrets(i, s) => owned[i].secrets = s,
            Listed::Ips(i, ips) => owned[i].ips = ips,
            Listed::Certificates(i, c) => owned[i].certificates = c,
        }
    }
    let mut out = owned;
    out.sort_by(|a, b| a.app.name.cmp(&b.app.name));
    for a in &mut out {
        a.machines.sort_by(|x, y| x.id.cmp(&y.id));
        a.volumes.sort_by(|x, y| x.id.cmp(&y.id));
        a.secrets.sort_by(|x, y| x.name.cmp(&y.name));
        a.ips.sort_by(|x, y| x.ip.cmp(&y.ip));
        a.certificates.sort_by(|x, y| x.hostname.cmp(&y.hostname));
    }
    Ok(Snapshot {
        format_version: STATE_FORMAT_VERSION,
        org: org.to_string(),
        observed_at: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        apps: out,
    })
}
