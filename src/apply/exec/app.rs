//! Apps: creating one (looked up by name after a lost response; a taken name is ours
//! only when the app belongs to this organization) and destroying one.

use super::confirm::{Acted, NotActed, act_confirmed};
use super::{OpError, OpResult, Shared};

/// Creates attempted when every outcome is unknown.
const ATTEMPTS: u32 = 4;

pub(super) async fn create(sh: &Shared, app: &str) -> OpResult {
    let acted = act_confirmed(
        ATTEMPTS,
        || async move { sh.client.create_app(app, &sh.org).await },
        || async move { Ok(sh.client.get_app(app).await?.map(|_| ())) },
    )
    .await;
    match acted {
        Ok(Acted::Answered(())) => Ok(format!("app {app}")),
        Ok(Acted::Confirmed(())) => Ok(format!("app {app} (created; its response was lost)")),
        // Taken: by an earlier attempt of ours, or by someone else?
        Err(NotActed::Refused(e)) if e.is_name_taken() => {
            if is_ours(sh, app).await? {
                Ok(format!("app {app} (already existed)"))
            } else {
                Err(OpError::from(e).with_hint(format!(
                    "the name {app} is taken by another organization; change naming.app"
                )))
            }
        }
        Err(NotActed::Unconfirmed(_)) => Err(OpError::unknown_outcome(format!(
            "app {app}: creation kept failing with an unknown outcome"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Whether the app `app` (whose name is taken) belongs to this run's organization.
async fn is_ours(sh: &Shared, app: &str) -> Result<bool, OpError> {
    match sh.client.get_app(app).await {
        Ok(Some(a)) => match a.organization {
            Some(o) => Ok(o.slug == sh.org),
            // No owner in the answer: look for it among the organization's apps.
            None => Ok(sh
                .client
                .list_apps(&sh.org)
                .await?
                .iter()
                .any(|a| a.name == app)),
        },
        // Not visible to this token: someone else's.
        Ok(None) => Ok(false),
        Err(e) if matches!(e.status(), Some(401 | 403)) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn delete(sh: &Shared, app: &str) -> OpResult {
    sh.client.delete_app(app).await?;
    Ok(format!("app {app} destroyed"))
}
