//! What the data commands (`snapshot`, `snapshots`) share: the selected tenants'
//! volumes as observed (with the Machine mounting each), the fleet lock around their
//! changes, Fly's snapshot listings read into typed rows, and the bounded wait for a
//! snapshot.
//!
//! Fly keeps a volume's snapshots after the volume is deleted (they stay listable and
//! restorable by the volume's id for their retention), but deleting the app deletes
//! them with it: the rule flotilla follows is in README ("Backups and restore").

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::apply::lock::{FleetLock, LockOptions};
use crate::diag::Diagnostic;
use crate::fly::client::{ApiError, Client};
use crate::ops::target::{Session, TargetOptions};
use crate::ops::{Error, check_tenants, load_spec};
use crate::resource::Address;
use crate::spec::Loaded;
use crate::state::Observed;

/// How long (API seconds) a data command waits for one snapshot.
pub const WAIT_SECS: u64 = 300;

/// A connected, observed fleet.
pub(crate) struct Fleet {
    pub session: Session,
    pub loaded: Loaded,
    pub observed: Observed,
}

/// One of a tenant's volumes, as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantVolume {
    pub tenant: String,
    pub address: Address,
    pub app: String,
    /// Fly's id (`vol_…`).
    pub id: String,
    pub name: String,
    pub region: String,
    pub size_gb: u32,
    /// The Machine it is attached to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

#[cfg(test)]
impl TenantVolume {
    /// A tenant's `data` volume in `ams`, attached to Machine `m1` (rendering tests).
    pub fn sample(tenant: &str) -> TenantVolume {
        TenantVolume {
            tenant: tenant.into(),
            address: format!("tenant.{tenant}.volume.data[0]")
                .parse()
                .unwrap_or_else(|e| panic!("{e}")),
            app: format!("jarvis-{tenant}"),
            id: format!("vol_{tenant}"),
            name: "data".into(),
            region: "ams".into(),
            size_gb: 3,
            machine: Some("m1".into()),
        }
    }
}

/// One snapshot as Fly lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotRow {
    pub id: String,
    /// `created` once complete (`running`, `waiting` before).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// Stored size in bytes, as Fly reports it.
    pub size_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Hours until Fly expires it (`created_at` + retention − now), never below zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_left_hours: Option<i64>,
}

impl SnapshotRow {
    /// Reads one entry of `GET /volumes/{id}/snapshots`; `None` without an id.
    pub fn from_json(v: &Value, now: DateTime<Utc>) -> Option<SnapshotRow> {
        let id = v.get("id")?.as_str()?.to_string();
        let created_at = v
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc));
        let retention_days = v
            .get("retention_days")
            .and_then(Value::as_u64)
            .and_then(|d| u32::try_from(d).ok());
        let retention_left_hours = match (created_at, retention_days) {
            (Some(c), Some(d)) => {
                let ends = c + chrono::Duration::days(i64::from(d));
                Some((ends - now).num_hours().max(0))
            }
            _ => None,
        };
        Some(SnapshotRow {
            id,
            status: v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("created")
                .to_string(),
            created_at,
            size_bytes: v.get("size").and_then(Value::as_u64).unwrap_or(0),
            retention_days,
            retention_left_hours,
        })
    }

    pub fn is_complete(&self) -> bool {
        self.status == "created"
    }
}

/// Connects and observes the spec's org. Data commands need a live API.
pub(crate) fn open(
    spec: &Path,
    target: &TargetOptions,
    tenants: &[String],
    command: &str,
) -> Result<Fleet, Error> {
    if !target.is_live() {
        return Err(Error::new(
            Diagnostic::error(format!("{command} needs an organization to act on"))
                .hint("use --sim for the local simulator, or set FLY_API_TOKEN"),
        ));
    }
    let loaded = load_spec(spec)?;
    check_tenants(&loaded.desired, tenants, Some(spec))?;
    let session = Session::connect(target)?;
    let snap = session.observe(&loaded.desired)?;
    let observed = crate::state::interpret(&snap, &loaded.desired);
    Ok(Fleet {
        session,
        loaded,
        observed,
    })
}

impl Fleet {
    pub fn client(&self) -> &Client {
        &self.session.target().client
    }

    /// The observed volumes of the selected tenants (all tenants when `tenants` is
    /// empty), in address order.
    pub fn volumes(&self, tenants: &[String]) -> Vec<TenantVolume> {
        let mut out: Vec<TenantVolume> = self
            .observed
            .resources
            .resources
            .iter()
            .filter_map(|r| {
                let v = r.volume()?;
                let tenant = r.tenant.clone()?;
                if !tenants.is_empty() && !tenants.contains(&tenant) {
                    return None;
                }
                Some(TenantVolume {
                    tenant,
                    address: r.address.clone(),
                    app: r.app.clone(),
                    id: r.id.clone()?,
                    name: v.name.clone(),
                    region: v.region.clone(),
                    size_gb: v.size_gb,
                    machine: v.attached_machine_id.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.address.cmp(&b.address));
        out
    }

    /// Takes the fleet lock for `command` (waiting as `opts` says).
    pub fn lock(&self, opts: &LockOptions, command: &str) -> Result<FleetLock, Error> {
        let desired = &self.loaded.desired;
        let mut opts = opts.clone();
        opts.holder = format!("{} ({command})", opts.holder);
        self.session
            .block_on(FleetLock::acquire(
                self.client(),
                &desired.org,
                &desired.fleet,
                &opts,
                &|_| {},
            ))
            .map_err(|e| {
                crate::ops::apply::lock_error(
                    e,
                    &desired.org,
                    &desired.fleet,
                    &opts,
                    &self.session.target().source,
                )
            })
    }

    /// Hands the lock back; a failure is a warning (the lease expires by itself).
    pub fn unlock(&self, lock: FleetLock) -> Option<Diagnostic> {
        self.session.block_on(lock.release()).err().map(|e| {
            Diagnostic::warning(format!("cannot release the fleet lock: {e}"))
                .hint("it expires by itself; or run `flotilla unlock SPEC`")
        })
    }
}

/// The snapshots of volume `id`, oldest first.
pub(crate) async fn list_snapshots(
    client: &Client,
    app: &str,
    id: &str,
) -> Result<Vec<SnapshotRow>, ApiError> {
    let now = Utc::now();
    let mut rows: Vec<SnapshotRow> = client
        .list_snapshots(app, id)
        .await?
        .iter()
        .filter_map(|v| SnapshotRow::from_json(v, now))
        .collect();
    rows.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(rows)
}

/// Takes an on-demand snapshot of volume `id` and waits (at most [`WAIT_SECS`] of API
/// time) until it is complete. Returns it.
pub(crate) async fn take_snapshot(
    client: &Client,
    app: &str,
    id: &str,
) -> Result<SnapshotRow, String> {
    let before: Vec<String> = list_snapshots(client, app, id)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| s.id)
        .collect();
    client
        .create_snapshot(app, id)
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..WAIT_SECS {
        let rows = list_snapshots(client, app, id)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(new) = rows.into_iter().rev().find(|s| !before.contains(&s.id))
            && new.is_complete()
        {
            return Ok(new);
        }
        client.sleep(Duration::from_secs(1)).await;
    }
    Err(format!(
        "the snapshot of volume {id} did not complete within {WAIT_SECS} s"
    ))
}

/// Whole days and hours, as retention left is shown (`4d 3h`).
pub fn days_hours(hours: i64) -> String {
    let (d, h) = (hours / 24, hours % 24);
    match (d, h) {
        (0, h) => format!("{h}h"),
        (d, 0) => format!("{d}d"),
        (d, h) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_snapshot_and_its_retention_left() {
        let now = DateTime::parse_from_rfc3339("2026-03-03T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let v = serde_json::json!({
            "id": "vs_1", "size": 1234, "status": "created",
            "created_at": "2026-03-01T12:00:00.000Z", "retention_days": 5
        });
        let row = SnapshotRow::from_json(&v, now).unwrap();
        assert_eq!(row.retention_left_hours, Some(72));
        assert!(row.is_complete());
        assert_eq!(row.size_bytes, 1234);
        let old = serde_json::json!({"id": "vs_2", "created_at": "2026-01-01T00:00:00Z", "retention_days": 1, "status": "running"});
        let row = SnapshotRow::from_json(&old, now).unwrap();
        assert_eq!(row.retention_left_hours, Some(0));
        assert!(!row.is_complete());
        assert!(SnapshotRow::from_json(&serde_json::json!({"size": 1}), now).is_none());
    }

    #[test]
    fn retention_left_reads_in_days_and_hours() {
        assert_eq!(days_hours(99), "4d 3h");
        assert_eq!(days_hours(48), "2d");
        assert_eq!(days_hours(5), "5h");
    }
}
