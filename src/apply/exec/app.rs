//! Apps: creating one (looked up by name after a lost response; a taken name is ours
//! only when the app belongs to this organization) and destroying one — never while it
//! holds another fleet's Machines.

use super::confirm::{Acted, NotActed, act_confirmed};
use super::{OpError, OpResult, Shared};
use crate::resource::{META_FLEET, META_MANAGED};

/// Creates attempted when every outcome is unknown.
const ATTEMPTS: u32 = 4;

pub(super) async fn create(sh: &Shared, app: &str) -> OpResult {
    let acted = act_confirmed(
        ATTEMPTS,
        || async move { sh.client.create_app(app, &sh.org).await },
        || async move { Ok(sh.client.get_new_app(app).await?.map(|_| ())) },
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
    match sh.client.get_new_app(app).await {
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

/// Destroys an app (Fly destroys what is left in it), unless it holds a flotilla
/// Machine this run did not observe as its own: another fleet's, which would go too.
pub(super) async fn delete(sh: &Shared, app: &str) -> OpResult {
    let strangers: Vec<String> = sh
        .client
        .list_machines(app)
        .await?
        .into_iter()
        .filter(|m| !matches!(m.state.as_str(), "destroyed" | "destroying"))
        .filter(|m| m.config.metadata.get(META_MANAGED).map(String::as_str) == Some("true"))
        .filter(|m| !sh.observed.machines.values().any(|o| o.id == m.id))
        .map(|m| {
            let fleet = m
                .config
                .metadata
                .get(META_FLEET)
                .cloned()
                .unwrap_or_default();
            format!("{} (fleet `{fleet}`)", m.id)
        })
        .collect();
    if !strangers.is_empty() {
        return Err(OpError::failed(format!(
            "app {app} holds Machines this fleet does not own: {}; not deleting it",
            strangers.join(", ")
        ))
        .with_hint("remove them with their own fleet's spec first, then apply again"));
    }
    sh.client.delete_app(app).await?;
    Ok(format!("app {app} destroyed"))
}
