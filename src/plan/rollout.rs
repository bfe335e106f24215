//! Rollout memory, kept with the fleet on Fly. Each Machine a rollout updates records in
//! its metadata the rollout's target image (`flotilla_rollout`), the image it ran before
//! (`flotilla_rollout_from`), its wave and how it went (`flotilla_rollout_state`:
//! `updated`, `failed`, `rolled_back`). The executor writes them with the update itself
//! (the config carries the metadata) and marks a Machine `failed` when it does not come
//! up healthy. From these marks, with no local state:
//!
//! - a plan shows a failed Machine as unhealthy (never `No changes`), with what apply
//!   would do;
//! - an apply that would carry on with a stopped rollout (its target is still wanted, or
//!   failed Machines would be restarted) refuses until `--resume` (after fixing the
//!   cause) or `--rollback` (the Machines of the rollout go back to the image they ran
//!   before; nothing else rolls forward);
//! - the marks are bookkeeping, not spec: plans never diff them, and config updates keep
//!   them unless flotilla writes new ones.
//!
//! Pure: reads observed Machines, edits desired resources.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Action, Change, FieldPath, Plan};
use crate::resource::{Address, Kind, ResourceSet, Spec};
use crate::state::Observed;

pub use crate::resource::{
    META_ROLLOUT, META_ROLLOUT_FROM, META_ROLLOUT_STATE, META_ROLLOUT_WAVE, is_rollout_key,
};

/// How a Machine's last rollout went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkState {
    Updated,
    Failed,
    RolledBack,
}

impl MarkState {
    pub fn as_str(self) -> &'static str {
        match self {
            MarkState::Updated => "updated",
            MarkState::Failed => "failed",
            MarkState::RolledBack => "rolled_back",
        }
    }

    fn parse(s: &str) -> Option<MarkState> {
        match s {
            "updated" => Some(MarkState::Updated),
            "failed" => Some(MarkState::Failed),
            "rolled_back" => Some(MarkState::RolledBack),
            _ => None,
        }
    }
}

/// A Machine's rollout record, read from its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub target: String,
    pub from: String,
    pub state: MarkState,
}

/// The record in `metadata`, when it is complete.
pub fn mark_of(metadata: &crate::resource::StrMap) -> Option<Mark> {
    Some(Mark {
        target: metadata.get(META_ROLLOUT)?.clone(),
        from: metadata.get(META_ROLLOUT_FROM)?.clone(),
        state: MarkState::parse(metadata.get(META_ROLLOUT_STATE)?)?,
    })
}

/// The metadata that records `mark` (and its wave, when known).
pub fn mark_metadata(mark: &Mark, wave: Option<usize>) -> Vec<(String, String)> {
    let mut out = vec![
        (META_ROLLOUT.to_string(), mark.target.clone()),
        (META_ROLLOUT_FROM.to_string(), mark.from.clone()),
        (
            META_ROLLOUT_STATE.to_string(),
            mark.state.as_str().to_string(),
        ),
    ];
    if let Some(w) = wave {
        out.push((META_ROLLOUT_WAVE.to_string(), (w + 1).to_string()));
    }
    out
}

fn observed_mark(observed: &Observed, a: &Address) -> Option<Mark> {
    observed
        .machines
        .get(a)
        .and_then(|m| mark_of(&m.config.metadata))
}

fn observed_image<'o>(observed: &'o Observed, a: &Address) -> Option<&'o str> {
    observed
        .resources
        .get(a)
        .and_then(|r| r.machine())
        .map(|m| m.image.as_str())
}

/// Whether the Machine at `a` is unhealthy: Fly reports it `failed`, or its last
/// rollout failed and it still runs that rollout's target.
fn unhealthy(observed: &Observed, a: &Address) -> Option<String> {
    let m = observed.machines.get(a)?;
    let mark = mark_of(&m.config.metadata);
    let on_failed_target = mark.as_ref().is_some_and(|k| {
        k.state == MarkState::Failed && observed_image(observed, a) == Some(k.target.as_str())
    });
    if m.state != "failed" && !on_failed_target {
        return None;
    }
    let mut why = format!("unhealthy: Machine {} is {}", m.id, m.state);
    if let Some(k) = mark.filter(|_| on_failed_target) {
        why.push_str(&format!(
            "; the rollout to {} failed on it (it ran {} before)",
            k.target, k.from
        ));
    }
    Some(why)
}

/// Failed Machines are never `No changes`: each unhealthy Machine's change becomes a
/// restarting update (or keeps the update it has) that says why and what apply does.
pub(super) fn note_unhealthy(changes: &mut [Change], observed: &Observed) {
    for c in changes
        .iter_mut()
        .filter(|c| c.kind == Kind::Machine && matches!(c.action, Action::Noop | Action::Update))
    {
        let Some(why) = unhealthy(observed, &c.address) else {
            continue;
        };
        c.action = Action::Update;
        c.restart = true;
        c.reasons.push(why);
        c.reasons.push(
            "apply restarts it on the spec's version with --resume (after fixing the cause), or returns it to the version it ran before with --rollback".into(),
        );
    }
}

/// The changes a rollout covers: restarting Machine updates with a new image, and
/// restarts of unhealthy Machines.
fn is_rollout_change(c: &Change) -> bool {
    c.kind == Kind::Machine
        && c.action == Action::Update
        && c.restart
        && (c.fields.iter().any(|f| f.path == FieldPath::Image)
            || c.reasons.iter().any(|r| r.starts_with("unhealthy:")))
}

/// A rollout that stopped: its target and the Machines that failed or were rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub target: String,
    pub failed: Vec<Address>,
    pub rolled_back: Vec<Address>,
}

/// The stopped rollouts among the observed Machines in `scope`, by target.
pub fn stopped(observed: &Observed, scope: &ResourceSet) -> Vec<Stopped> {
    let mut by_target: BTreeMap<String, Stopped> = BTreeMap::new();
    for (a, m) in &observed.machines {
        if scope.get(a).is_none() {
            continue;
        }
        let Some(mark) = mark_of(&m.config.metadata) else {
            continue;
        };
        let entry = by_target.entry(mark.target.clone()).or_insert(Stopped {
            target: mark.target.clone(),
            failed: Vec::new(),
            rolled_back: Vec::new(),
        });
        match mark.state {
            MarkState::Failed => entry.failed.push(a.clone()),
            MarkState::RolledBack => entry.rolled_back.push(a.clone()),
            MarkState::Updated => {}
        }
    }
    by_target
        .into_values()
        .filter(|s| !s.failed.is_empty() || !s.rolled_back.is_empty())
        .map(|mut s| {
            s.failed.sort();
            s.rolled_back.sort();
            s
        })
        .collect()
}

/// What the user said about a stopped rollout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Decision {
    /// Nothing: a stopped rollout is not continued.
    #[default]
    None,
    /// `--resume`: the cause is fixed; carry on.
    Resume,
    /// `--rollback`: return the rollout's Machines to the version they ran before.
    Rollback,
}

/// Why an apply may not continue a stopped rollout: (address, reason) for each change
/// that would continue one. Empty with `--resume` or `--rollback`.
pub fn refusals(
    plan: &Plan,
    desired: &ResourceSet,
    stopped: &[Stopped],
    decision: Decision,
) -> Vec<(Address, String)> {
    if decision != Decision::None || stopped.is_empty() {
        return Vec::new();
    }
    let targets: HashMap<&str, &Stopped> = stopped.iter().map(|s| (s.target.as_str(), s)).collect();
    let mut out = Vec::new();
    for c in plan.changes.iter().filter(|c| is_rollout_change(c)) {
        let image = desired
            .get(&c.address)
            .and_then(|r| r.machine())
            .map(|m| m.image.as_str());
        let retry = c.reasons.iter().any(|r| r.starts_with("unhealthy:"));
        let s = image.and_then(|i| targets.get(i).copied()).or_else(|| {
            retry
                .then(|| stopped.iter().find(|s| s.failed.contains(&c.address)))
                .flatten()
        });
        if let Some(s) = s {
            out.push((c.address.clone(), stopped_reason(s)));
        }
    }
    out
}

fn stopped_reason(s: &Stopped) -> String {
    let list = |v: &[Address]| {
        let shown: Vec<String> = v.iter().take(5).map(Address::to_string).collect();
        let more = v.len().saturating_sub(5);
        if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    };
    let what = if s.failed.is_empty() {
        format!("was rolled back ({})", list(&s.rolled_back))
    } else {
        format!(
            "stopped after a failed wave: {} Machine(s) failed ({})",
            s.failed.len(),
            list(&s.failed)
        )
    };
    format!(
        "the rollout to {} {what}; after fixing the cause pass --resume to continue it, or --rollback to return its Machines to the version they ran before",
        s.target
    )
}

/// `--rollback`: every Machine the rollouts in `desired`'s scope updated (recorded in
/// its metadata, still running the target) is wanted on the image it ran before, and no
/// other Machine changes image. Returns the Machines rolled back.
pub fn rollback_desired(desired: &mut ResourceSet, observed: &Observed) -> Vec<Address> {
    let mut back = Vec::new();
    for r in &mut desired.resources {
        let Spec::Machine(m) = &mut r.spec else {
            continue;
        };
        let Some(current) = observed_image(observed, &r.address) else {
            continue;
        };
        match observed_mark(observed, &r.address) {
            Some(k) if k.target == current && k.state != MarkState::RolledBack => {
                m.image = k.from;
                back.push(r.address.clone());
            }
            _ => m.image = current.to_string(),
        }
    }
    back
}

/// Records the rollout on each Machine a rollout change updates: the metadata goes into
/// the desired Machine (the update sends it with the config). `waves`: the wave of each
/// updated Machine.
pub fn annotate(
    desired: &mut ResourceSet,
    plan: &Plan,
    observed: &Observed,
    waves: &HashMap<Address, Option<usize>>,
    decision: Decision,
) {
    let covered: BTreeSet<&Address> = plan
        .changes
        .iter()
        .filter(|c| is_rollout_change(c))
        .map(|c| &c.address)
        .collect();
    for r in &mut desired.resources {
        if !covered.contains(&r.address) {
            continue;
        }
        let Spec::Machine(m) = &mut r.spec else {
            continue;
        };
        let before = observed_image(observed, &r.address).unwrap_or_default();
        let prior = observed_mark(observed, &r.address);
        let mark = match (decision, prior) {
            (Decision::Rollback, Some(k)) if k.target == before => Mark {
                target: k.target,
                from: k.from,
                state: MarkState::RolledBack,
            },
            // A retry of the same target keeps the version it ran before the rollout.
            (_, Some(k)) if k.target == m.image && k.target == before => Mark {
                target: k.target,
                from: k.from,
                state: MarkState::Updated,
            },
            _ => Mark {
                target: m.image.clone(),
                from: before.to_string(),
                state: MarkState::Updated,
            },
        };
        let wave = waves.get(&r.address).copied().flatten();
        m.metadata.extend(mark_metadata(&mark, wave));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(target: &str, from: &str, state: &str) -> crate::resource::StrMap {
        [
            (META_ROLLOUT, target),
            (META_ROLLOUT_FROM, from),
            (META_ROLLOUT_STATE, state),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn marks_round_trip_and_incomplete_ones_are_none() {
        let m = meta("img:2", "img:1", "failed");
        let mark = mark_of(&m).unwrap();
        assert_eq!(mark.state, MarkState::Failed);
        let back: crate::resource::StrMap = mark_metadata(&mark, Some(0)).into_iter().collect();
        assert_eq!(back.get(META_ROLLOUT_WAVE).map(String::as_str), Some("1"));
        assert_eq!(mark_of(&back), Some(mark));
        assert_eq!(mark_of(&meta("a", "b", "odd")), None);
        let mut partial = meta("a", "b", "updated");
        partial.remove(META_ROLLOUT_FROM);
        assert_eq!(mark_of(&partial), None);
        assert!(is_rollout_key(META_ROLLOUT_WAVE) && !is_rollout_key("flotilla_index"));
    }

    #[test]
    fn the_reason_names_the_target_and_both_ways_out() {
        let s = Stopped {
            target: "img:2".into(),
            failed: vec![Address::machine(&crate::resource::Owner::Tenant("a"), 0)],
            rolled_back: Vec::new(),
        };
        let r = stopped_reason(&s);
        assert!(r.contains("img:2") && r.contains("--resume") && r.contains("--rollback"));
        assert!(r.contains("tenant.a.machine[0]"), "{r}");
    }
}
