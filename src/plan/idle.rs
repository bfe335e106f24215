//! Idle stays idle. A restarting update of a stopped or suspended Machine is sent with
//! Fly's `skip_launch`: the config changes, the Machine is not started, and the new
//! config takes effect at its next start (Fly discards a suspended Machine's snapshot on
//! an update, so it is stopped afterwards). The plan says so; the executor reads the
//! same state before it updates.

use super::{Action, Change};
use crate::resource::Kind;
use crate::state::Observed;

/// A Fly Machine state in which an update must not start the Machine.
pub fn is_idle_state(state: &str) -> bool {
    matches!(state, "stopped" | "suspended")
}

/// A scheduled Machine (Fly's `schedule`) not running its job now: Fly starts it on
/// its schedule, so apply neither starts it nor waits for it to run.
pub fn waits_for_schedule(scheduled: bool, state: &str) -> bool {
    scheduled && !matches!(state, "started" | "starting")
}

/// Whether an observed Machine's config has a `schedule`.
pub fn has_schedule(m: &crate::wire::Machine) -> bool {
    m.config.extra.get("schedule").is_some_and(|v| !v.is_null())
}

/// Whether an observed Machine's config names Machines it stands by for (`standbys`):
/// Fly starts it when their host fails.
pub fn has_standbys(m: &crate::wire::Machine) -> bool {
    m.config
        .extra
        .get("standbys")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|l| !l.is_empty())
}

/// Marks the restarting Machine updates whose Machine is idle now.
pub(super) fn note_idle_updates(changes: &mut [Change], observed: &Observed) {
    for c in changes
        .iter_mut()
        .filter(|c| c.kind == Kind::Machine && c.action == Action::Update && c.restart)
    {
        let Some(m) = observed.machines.get(&c.address) else {
            continue;
        };
        let by_fly = has_schedule(m) || has_standbys(m);
        if is_idle_state(&m.state) || waits_for_schedule(by_fly, &m.state) {
            c.stays_idle = true;
            c.reasons.push(format!(
                "the Machine is {}: updated without starting it; takes effect at next start",
                m.state
            ));
        }
    }
}
