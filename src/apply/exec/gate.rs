//! Rollout gates: between two waves, every Machine of the earlier wave must be started
//! with its checks passing, or the later waves do not start. A Machine that was stopped
//! or suspended before the apply was updated without starting it; it must still be
//! idle (not crashed), and it proves nothing about the new version.

use super::health::{Checks, checks_status};
use super::{OpError, OpResult, Shared};
use crate::plan::idle::is_idle_state;
use crate::resource::MachineSpec;

pub(super) async fn check(sh: &Shared, wave: usize) -> OpResult {
    let members = sh.wave_members(wave);
    for a in members {
        let (Some(id), Ok(r)) = (sh.id_of(a), sh.resource(a)) else {
            continue;
        };
        let m = sh
            .client
            .get_machine(&r.app, &id)
            .await?
            .ok_or_else(|| OpError::failed(format!("{a}: Machine {id} disappeared")))?;
        let was_idle = sh
            .observed
            .machines
            .get(a)
            .is_some_and(|o| is_idle_state(&o.state));
        if was_idle && is_idle_state(&m.state) {
            continue;
        }
        let scheduled = r.machine().is_some_and(MachineSpec::started_by_fly);
        if crate::plan::idle::waits_for_schedule(scheduled, &m.state) && m.state != "failed" {
            // Fly starts it on its schedule (a standby when its primary's host fails):
            // not running proves nothing either way.
            continue;
        }
        let problem = if m.state != "started" {
            Some(format!("{a}: Machine {id} is {}", m.state))
        } else if let Checks::Critical(names) = checks_status(&m) {
            Some(format!("{a}: checks not passing: {names}"))
        } else {
            None
        };
        if let Some(p) = problem {
            let err = OpError::failed(p);
            return Err(match r.machine() {
                Some(spec) => super::rollout_mark::failed(sh, (&r.app, &id), spec, None, err).await,
                None => err,
            });
        }
    }
    Ok(format!(
        "wave {} healthy ({} Machines)",
        wave + 1,
        members.len()
    ))
}
