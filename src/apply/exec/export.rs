//! A removed tenant's volumes exported off-site before anything of the tenant is
//! deleted: on Fly, deleting the tenant's app deletes its volumes' snapshots, so the
//! export (`defaults.backups.export`, the mechanism of `backup export`: fork, one-shot
//! Machine, clean-up) is what keeps the data. Every deletion in the tenant's app waits
//! for this operation, so when it fails the tenant is kept whole.

use super::{OpError, OpResult, Shared};
use crate::ops::data::tenant_volume;
use crate::resource::{Address, ExportConfig};

/// Exports the observed volumes at `volumes` with `cfg`; fails when any export fails.
pub(super) async fn before_removal(
    sh: &Shared,
    tenant: &str,
    cfg: &ExportConfig,
    volumes: &[Address],
) -> OpResult {
    let exports = sh.removal_exports();
    let creds = match exports.credentials.get(tenant) {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            return Err(OpError::failed(format!(
                "tenant {tenant} was not exported before its removal: cannot read the export credentials: {e}"
            ))
            .with_hint("set them and apply again; nothing of the tenant was deleted (the value is never printed)"));
        }
        None => {
            return Err(OpError::internal(format!(
                "the export credentials of tenant {tenant} were not read"
            )));
        }
    };
    let vols: Vec<_> = volumes
        .iter()
        .filter_map(|a| sh.observed.resources.get(a).and_then(tenant_volume))
        .collect();
    let done =
        crate::ops::backup::export_tenant(&sh.client, cfg, &exports.fleet, (tenant, &vols), creds)
            .await;
    let errors: Vec<&str> = done.iter().filter_map(|e| e.error.as_deref()).collect();
    if !errors.is_empty() {
        return Err(OpError::failed(format!(
            "export before removal failed: {}",
            errors.join("; ")
        ))
        .with_hint("tenant kept: nothing of it was deleted; fix the export (`flotilla backup export` runs the same job) and apply again"));
    }
    let to: Vec<String> = done
        .iter()
        .map(|e| format!("{}/{}", e.destination, e.export_id))
        .collect();
    Ok(format!("exported to {}", to.join(", ")))
}
