//! Machine health: waiting until a Machine is started (and, when asked, its checks
//! pass), failing early when it crashed; the check states the rollout gates read.

use std::time::Duration;

use super::poll::{Check, Pause, Until, poll_until};
use super::{OpError, Shared};
use crate::wire::api as fly;

/// The state of a Machine's health checks.
pub(super) enum Checks {
    Passing,
    /// The names of the checks not passing.
    Critical(String),
}

pub(super) fn checks_status(m: &fly::Machine) -> Checks {
    let Some(list) = &m.checks else {
        return Checks::Passing;
    };
    let bad: Vec<&str> = list
        .iter()
        .filter(|c| c.status != "passing")
        .map(|c| c.name.as_str())
        .collect();
    if bad.is_empty() {
        Checks::Passing
    } else {
        Checks::Critical(bad.join(", "))
    }
}

/// How long ago a Machine came to be, for how its 404s read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Age {
    /// Created a moment ago: Fly may not show it yet, so a 404 is retried (bounded).
    New,
    /// Existing: a 404 means it is gone.
    Known,
}

/// Waits until a Machine is started (and its checks pass, with `check_health`); fails
/// early when it crashed.
pub(super) async fn wait_started(
    sh: &Shared,
    app: &str,
    id: &str,
    check_health: bool,
    age: Age,
) -> Result<(), OpError> {
    let until = Until {
        deadline: sh.deadline(),
        pause: Pause::Sleep(Duration::from_secs(1)),
    };
    poll_until(&sh.client, until, || async move {
        let (reached, m) = match age {
            Age::New => (
                sh.client.wait_new(app, id, "started", 60).await?,
                sh.client.get_new_machine(app, id).await?,
            ),
            Age::Known => (
                sh.client.wait(app, id, "started", None, 60).await?,
                get(sh, app, id).await?,
            ),
        };
        if m.state == "failed" {
            return Err(OpError::failed(format!(
                "Machine {id} failed to boot (state failed)"
            )));
        }
        if reached && m.state == "started" {
            match (check_health, checks_status(&m)) {
                (false, _) | (true, Checks::Passing) => return Ok(Check::Reached(())),
                (true, Checks::Critical(names)) => {
                    return Ok(Check::Awaiting(OpError::timed_out(format!(
                        "Machine {id}: checks not passing: {names}"
                    ))));
                }
            }
        }
        Ok(Check::Awaiting(OpError::timed_out(format!(
            "Machine {id} did not start within {} s (state {})",
            sh.wait_secs(),
            m.state
        ))))
    })
    .await
}

/// The Machine as Fly reports it now; gone is an error.
pub(super) async fn get(sh: &Shared, app: &str, id: &str) -> Result<fly::Machine, OpError> {
    sh.client
        .get_machine(app, id)
        .await?
        .ok_or_else(|| OpError::failed(format!("Machine {id} disappeared")))
}
