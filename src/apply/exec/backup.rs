//! Snapshot policies: a volume's retention and daily snapshots. A volume created in this
//! run already got its retention at creation (and daily snapshots are on by default),
//! so it needs no second request.

use super::{OpError, OpResult, Shared};
use crate::resource::{Address, Spec};

pub(super) async fn update(
    sh: &Shared,
    address: &Address,
    volume: &Address,
    app: &str,
) -> OpResult {
    let Some(Spec::BackupPolicy(b)) = sh.desired.get(address).map(|r| &r.spec) else {
        return Err(OpError::internal("not a snapshot policy"));
    };
    let id = sh.known_id(volume, "volume")?;
    if sh.created_now(volume) && b.auto_backup {
        return Ok(format!(
            "{id}: retention {} days, daily snapshots on (set at creation)",
            b.snapshot_retention
        ));
    }
    sh.client
        .update_volume(app, &id, b.snapshot_retention, b.auto_backup)
        .await?;
    Ok(format!(
        "{id}: retention {} days, daily snapshots {}",
        b.snapshot_retention,
        if b.auto_backup { "on" } else { "off" }
    ))
}
