//! `restore`: puts a tenant's volume back to one of its snapshots. Under the fleet lock,
//! per volume: a new volume is made from the snapshot (same name, region and at least
//! the old size, so the spec still matches it), the Machine is stopped under its lease,
//! remounted on the new volume (the rest of its config untouched) and started; only once
//! it runs (checks passing) is the old volume retired: kept and recorded on the Machine
//! ([`META_RETIRED`]) so the next plan neither adopts nor duplicates it, or deleted with
//! `allow_data_loss`. A Machine that does not start is put back on the old volume.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;

use crate::apply::lock::LockOptions;
use crate::diag::Diagnostic;
use crate::fly::client::{Client, Lease};
use crate::fly::steps::{WAIT_SECS, retired_with, wait_machine, wait_volume};
use crate::ops::Error;
use crate::ops::data::{self, Fleet, SnapshotRow, TenantVolume};
use crate::ops::target::TargetOptions;
use crate::resource::META_RETIRED;
use crate::wire::api as fly;

/// Which snapshot to restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Choice {
    /// The newest complete snapshot of each of the tenant's volumes.
    #[default]
    Latest,
    /// This snapshot (of one of the tenant's volumes).
    Id(String),
}

impl Choice {
    /// `latest` or a snapshot id.
    pub fn parse(s: &str) -> Choice {
        if s == "latest" {
            Choice::Latest
        } else {
            Choice::Id(s.to_string())
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub spec: PathBuf,
    pub tenant: String,
    pub snapshot: Choice,
    /// Delete the old volume instead of keeping it.
    pub allow_data_loss: bool,
    pub target: TargetOptions,
    pub lock: LockOptions,
}

/// One volume to restore, and from what.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub volume: TenantVolume,
    pub snapshot: SnapshotRow,
}

/// What became of the old volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OldVolume {
    /// Still mounted: the restore did not get that far, or was rolled back.
    InUse,
    /// Unattached and recorded as retired on the Machine.
    Kept,
    Deleted,
}

/// One volume's restore.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub step: Step,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_volume: Option<String>,
    pub machine: String,
    pub old_volume: OldVolume,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub restored: Vec<Restored>,
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

impl Outcome {
    pub fn failures(&self) -> usize {
        self.restored.iter().filter(|r| r.error.is_some()).count()
    }
}

/// A restore worked out (snapshots picked) but not started.
pub struct Prepared {
    fleet: Fleet,
    opts: Options,
    pub steps: Vec<Step>,
}

/// Picks the snapshot of each of the tenant's volumes; changes nothing.
pub fn prepare(opts: &Options) -> Result<Prepared, Error> {
    let tenants = vec![opts.tenant.clone()];
    let fleet = data::open(&opts.spec, &opts.target, &tenants, "restore")?;
    let volumes = fleet.volumes(&tenants);
    if volumes.is_empty() {
        return Err(Error::new(
            Diagnostic::error(format!("tenant {} has no volumes to restore", opts.tenant))
                .hint("apply the spec first; `flotilla snapshots SPEC` lists what exists"),
        ));
    }
    let client = fleet.client();
    let listed = fleet.session.block_on(async {
        let mut out = Vec::new();
        for v in volumes {
            let retired = retired_of(&fleet, &v);
            out.push((
                v.clone(),
                snapshots_with_retired(client, &v, &retired).await,
            ));
        }
        out
    });
    let mut all = Vec::new();
    for (v, rows) in listed {
        let rows = rows.map_err(|e| {
            Error::new(
                Diagnostic::error(format!(
                    "{}: cannot list the snapshots of {}: {e}",
                    v.address, v.id
                ))
                .address(v.address.to_string())
                .hint("nothing was changed; check the API token's access to the app and run restore again"),
            )
        })?;
        all.push((v, rows));
    }
    let steps = pick(&all, &opts.snapshot, &opts.tenant)?;
    Ok(Prepared {
        fleet,
        opts: opts.clone(),
        steps,
    })
}

/// The volumes an earlier restore retired from the Machine mounting `v`.
fn retired_of(fleet: &Fleet, v: &TenantVolume) -> Vec<String> {
    fleet
        .observed
        .resources
        .resources
        .iter()
        .filter(|r| r.app == v.app && r.id.is_some() && r.id == v.machine)
        .filter_map(|r| r.machine()?.metadata.get(META_RETIRED))
        .flat_map(|list| list.split(',').map(str::to_string))
        .filter(|id| !id.is_empty() && id != &v.id)
        .collect()
}

/// The snapshots of `v` and of the volumes it replaced (still restorable: Fly keeps a
/// volume's snapshots after it is retired or deleted), oldest first.
async fn snapshots_with_retired(
    client: &Client,
    v: &TenantVolume,
    retired: &[String],
) -> Result<Vec<SnapshotRow>, crate::fly::client::ApiError> {
    let mut rows = data::list_snapshots(client, &v.app, &v.id).await?;
    for id in retired {
        // A retired volume deleted by hand since: its snapshots are Fly's to keep or not.
        if let Ok(more) = data::list_snapshots(client, &v.app, id).await {
            rows.extend(more);
        }
    }
    rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(rows)
}

/// The snapshot to restore per volume, as `choice` says.
pub fn pick(
    all: &[(TenantVolume, Vec<SnapshotRow>)],
    choice: &Choice,
    tenant: &str,
) -> Result<Vec<Step>, Error> {
    match choice {
        Choice::Id(id) => {
            let found = all.iter().find_map(|(v, rows)| {
                rows.iter()
                    .find(|s| &s.id == id)
                    .map(|s| (v.clone(), s.clone()))
            });
            match found {
                Some((volume, snapshot)) if snapshot.is_complete() => {
                    Ok(vec![Step { volume, snapshot }])
                }
                Some((_, s)) => Err(Error::new(
                    Diagnostic::error(format!("snapshot {id} is not complete ({})", s.status))
                        .hint("wait until `flotilla snapshots` shows it as created"),
                )),
                None => Err(unknown_snapshot(id, all, tenant)),
            }
        }
        Choice::Latest => all
            .iter()
            .map(|(v, rows)| {
                let newest = rows.iter().rev().find(|s| s.is_complete()).ok_or_else(|| {
                    Error::new(
                        Diagnostic::error(format!(
                            "{} ({}) has no complete snapshot to restore",
                            v.address, v.id
                        ))
                        .hint("take one with `flotilla snapshot SPEC --tenant NAME`"),
                    )
                })?;
                Ok(Step {
                    volume: v.clone(),
                    snapshot: newest.clone(),
                })
            })
            .collect(),
    }
}

fn unknown_snapshot(id: &str, all: &[(TenantVolume, Vec<SnapshotRow>)], tenant: &str) -> Error {
    let known: Vec<String> = all
        .iter()
        .flat_map(|(v, rows)| rows.iter().map(move |s| format!("{} ({})", s.id, v.id)))
        .collect();
    let hint = if known.is_empty() {
        "there are none; take one with `flotilla snapshot SPEC --tenant NAME`".to_string()
    } else {
        format!("available: {}", known.join(", "))
    };
    Error::new(
        Diagnostic::error(format!(
            "snapshot {id} is not a snapshot of tenant {tenant}'s volumes"
        ))
        .hint(hint),
    )
}

impl Prepared {
    pub fn org(&self) -> &str {
        &self.fleet.loaded.desired.org
    }

    /// Restores every step under the fleet lock, one volume at a time.
    pub fn execute(self) -> Result<Outcome, Error> {
        let lock = self.fleet.lock(&self.opts.lock, "restore")?;
        let client = self.fleet.client();
        let allow = self.opts.allow_data_loss;
        let restored = self.fleet.session.block_on(async {
            let mut out = Vec::new();
            for step in &self.steps {
                out.push(restore_one(client, step, allow).await);
            }
            out
        });
        let warnings = self.fleet.unlock(lock).into_iter().collect();
        Ok(Outcome { restored, warnings })
    }
}

/// Restores one volume; every failure is reported in the result, not raised.
async fn restore_one(client: &Client, step: &Step, allow_data_loss: bool) -> Restored {
    let v = &step.volume;
    let mut r = Restored {
        step: step.clone(),
        new_volume: None,
        machine: v.machine.clone().unwrap_or_default(),
        old_volume: OldVolume::InUse,
        error: None,
    };
    if let Err(e) = run(client, step, allow_data_loss, &mut r).await {
        r.error = Some(e);
    }
    r
}

async fn run(
    client: &Client,
    step: &Step,
    allow_data_loss: bool,
    r: &mut Restored,
) -> Result<(), String> {
    let v = &step.volume;
    let machine = find_machine(client, v).await?;
    r.machine = machine.id.clone();
    let new = create_from(client, v, &step.snapshot).await?;
    r.new_volume = Some(new.clone());
    wait_volume(client, &v.app, &new, |vol| vol.state == "created").await?;
    swap_in(
        client,
        v,
        &machine,
        &new,
        allow_data_loss,
        &mut r.old_volume,
    )
    .await
}

/// Puts the Machine mounting `v` on volume `new` (ready) under one lease, and retires
/// the old volume (`old` says what became of it); a Machine that does not start is put
/// back on the old volume. Shared with `backup restore`.
pub(crate) async fn swap_in(
    client: &Client,
    v: &TenantVolume,
    machine: &fly::Machine,
    new: &str,
    allow_data_loss: bool,
    old: &mut OldVolume,
) -> Result<(), String> {
    // One lease for the whole swap: a stop, a start and, on failure, both again.
    let ttl = client.lease_ttl(4 * WAIT_SECS);
    let lease = client
        .acquire_lease(&v.app, &machine.id, ttl, "flotilla restore")
        .await
        .map_err(|e| e.to_string())?;
    let result = swap(client, v, machine, new, &lease, allow_data_loss, old).await;
    let _ = client.release_lease(&v.app, &machine.id, &lease).await;
    result
}

/// The Machine mounting the volume.
pub(crate) async fn find_machine(
    client: &Client,
    v: &TenantVolume,
) -> Result<fly::Machine, String> {
    let machines = client
        .list_machines(&v.app)
        .await
        .map_err(|e| e.to_string())?;
    machines
        .into_iter()
        .find(|m| {
            v.machine.as_deref() == Some(m.id.as_str())
                || m.config.mounts.iter().any(|mt| mt.volume == v.id)
        })
        .ok_or_else(|| format!("no Machine mounts volume {}; nothing to restore onto", v.id))
}

/// A new volume from the snapshot, like the old one (name, region, size, retention).
async fn create_from(
    client: &Client,
    v: &TenantVolume,
    snap: &SnapshotRow,
) -> Result<String, String> {
    let old = client
        .get_volume(&v.app, &v.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("volume {} disappeared", v.id))?;
    let mut body = json!({
        "name": old.name,
        "region": old.region,
        "size_gb": old.size_gb.max(v.size_gb),
        "encrypted": old.encrypted,
        "snapshot_id": snap.id,
    });
    if let Some(days) = old.snapshot_retention {
        body["snapshot_retention"] = json!(days);
    }
    if let Some(auto) = old.auto_backup_enabled {
        body["auto_backup_enabled"] = json!(auto);
    }
    let created = client
        .create_volume(&v.app, &body)
        .await
        .map_err(|e| e.to_string())?;
    Ok(created.id)
}

/// Stops the Machine, remounts it on `new`, starts it and checks it; on success retires
/// the old volume, on failure puts the Machine back on it.
async fn swap(
    client: &Client,
    v: &TenantVolume,
    machine: &fly::Machine,
    new: &str,
    lease: &Lease,
    allow_data_loss: bool,
    state: &mut OldVolume,
) -> Result<(), String> {
    let (app, old) = (&v.app, &v.id);
    let mut config = machine.config.clone();
    for mt in &mut config.mounts {
        if &mt.volume == old {
            mt.volume = new.to_string();
        }
    }
    let tried = remount(client, app, &machine.id, &config, lease).await;
    if let Err(e) = tried {
        let back = remount(client, app, &machine.id, &machine.config, lease).await;
        return Err(match back {
            Ok(()) => format!("{e}; the Machine is back on volume {old}"),
            Err(b) => format!("{e}; putting it back on volume {old} failed too: {b}"),
        });
    }
    wait_volume(client, app, old, |v| v.attached_machine_id.is_none()).await?;
    if allow_data_loss {
        client
            .delete_volume(app, old)
            .await
            .map_err(|e| format!("the old volume {old} could not be deleted: {e}"))?;
        *state = OldVolume::Deleted;
    } else {
        let retired = retired_with(
            machine
                .config
                .metadata
                .get(META_RETIRED)
                .map(String::as_str),
            old,
        );
        client
            .set_metadata(app, &machine.id, META_RETIRED, &retired, Some(lease))
            .await
            .map_err(|e| format!("the old volume {old} could not be recorded as retired: {e}"))?;
        *state = OldVolume::Kept;
    }
    Ok(())
}

/// Stops the Machine, sets `config` without launching, starts it and waits until it is
/// started with its checks passing.
async fn remount(
    client: &Client,
    app: &str,
    id: &str,
    config: &fly::MachineConfig,
    lease: &Lease,
) -> Result<(), String> {
    let err = |e: crate::fly::client::ApiError| e.to_string();
    client
        .stop_machine(app, id, Some(lease))
        .await
        .map_err(err)?;
    wait_machine(client, app, id, "stopped").await?;
    let current = client
        .get_machine(app, id)
        .await
        .map_err(err)?
        .ok_or_else(|| format!("Machine {id} disappeared"))?;
    client
        .update_machine_idle(app, id, config, Some(lease), current.instance_id.as_deref())
        .await
        .map_err(err)?;
    client
        .start_machine_leased(app, id, lease)
        .await
        .map_err(err)?;
    wait_machine(client, app, id, "started").await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol() -> TenantVolume {
        TenantVolume {
            tenant: "acme".into(),
            address: "tenant.acme.volume.data[0]".parse().unwrap(),
            app: "a".into(),
            id: "vol_1".into(),
            name: "data".into(),
            region: "ams".into(),
            size_gb: 1,
            machine: None,
        }
    }

    fn snap(id: &str, status: &str) -> SnapshotRow {
        SnapshotRow {
            id: id.into(),
            status: status.into(),
            created_at: None,
            size_bytes: 0,
            retention_days: None,
            retention_left_hours: None,
        }
    }

    #[test]
    fn latest_is_the_newest_complete_snapshot() {
        let all = vec![(
            vol(),
            vec![
                snap("vs_a", "created"),
                snap("vs_b", "created"),
                snap("vs_c", "running"),
            ],
        )];
        let steps = pick(&all, &Choice::Latest, "acme").unwrap();
        assert_eq!(steps[0].snapshot.id, "vs_b");
        assert_eq!(Choice::parse("latest"), Choice::Latest);
    }

    #[test]
    fn an_unknown_id_names_the_available_ones() {
        let all = vec![(vol(), vec![snap("vs_a", "created")])];
        let e = pick(&all, &Choice::parse("vs_zzz"), "acme").unwrap_err();
        let text = e.diagnostics.to_string();
        assert!(
            text.contains("vs_zzz") && text.contains("vs_a (vol_1)"),
            "{text}"
        );
    }
}
