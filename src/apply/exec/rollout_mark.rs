//! Recording a failed rollout on the Machine itself. A Machine updated by a rollout
//! carries the rollout's record in its metadata (written with the update); when it does
//! not come up healthy, or a gate finds it unhealthy, its state becomes `failed`, so a
//! later apply — from any checkout, with no local state — knows the rollout stopped
//! (see `plan::rollout`).

use super::lease::MachineLease;
use super::{OpError, Shared};
use crate::plan::rollout::{META_ROLLOUT, META_ROLLOUT_STATE, MarkState};
use crate::resource::MachineSpec;

/// Marks Machine `id` failed when `m` (the desired Machine) carries a rollout record,
/// under `lease` (the caller's) or a lease taken for the write; the error is returned
/// with a hint when the mark cannot be written.
pub(super) async fn failed(
    sh: &Shared,
    (app, id): (&str, &str),
    m: &MachineSpec,
    lease: Option<&MachineLease>,
    err: OpError,
) -> OpError {
    if !m.metadata.contains_key(META_ROLLOUT) {
        return err;
    }
    let written = match lease {
        Some(l) => mark(sh, app, id, l).await,
        None => match MachineLease::take(sh, app, id).await {
            Ok(l) => {
                let r = mark(sh, app, id, &l).await;
                l.release().await;
                r
            }
            Err(e) => Err(e.message),
        },
    };
    match written {
        Ok(()) => err,
        Err(e) => err.with_hint(format!(
            "the failure could not be recorded on Machine {id} ({e}); check it before applying again"
        )),
    }
}

async fn mark(sh: &Shared, app: &str, id: &str, lease: &MachineLease) -> Result<(), String> {
    sh.client
        .set_metadata(
            app,
            id,
            META_ROLLOUT_STATE,
            MarkState::Failed.as_str(),
            Some(lease.lease()),
        )
        .await
        .map_err(|e| e.to_string())
}
