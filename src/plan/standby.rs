//! Standby Machines (`standbys:`) follow their primary. A standby's config names its
//! primary's Fly ID (`standbys: [ID]`), which only exists once the primary does, so a
//! standby whose primary is created, replaced or moved in this plan is replaced too,
//! and so is one whose observed config names another Machine (its primary was replaced
//! by hand, or an interrupted apply left it behind). Its other fields are diffed like
//! any Machine's: an update of the primary is the same update of its standbys, which
//! stay stopped (`plan::idle`).

use std::collections::HashMap;

use super::{Action, Change};
use crate::resource::{Address, Kind};
use crate::state::Observed;

/// Turns the updates (and no-ops) of standbys whose primary changes identity into
/// replaces, with the reason.
pub(super) fn cascade_standbys(changes: &mut [Change], observed: &Observed) {
    if !changes
        .iter()
        .any(|c| c.kind == Kind::Machine && c.address.standby_index().is_some())
    {
        return;
    }
    let renewed: HashMap<Address, Action> = changes
        .iter()
        .filter(|c| c.kind == Kind::Machine && c.address.standby_index().is_none())
        .filter(|c| matches!(c.action, Action::Create | Action::Replace | Action::Move))
        .map(|c| (c.address.clone(), c.action))
        .collect();
    for c in changes.iter_mut().filter(|c| c.kind == Kind::Machine) {
        let Some(primary) = c.address.primary() else {
            continue;
        };
        if c.action == Action::Create {
            c.reasons.push(format!(
                "standby for {primary}: created stopped; Fly starts it when the primary's host fails"
            ));
            continue;
        }
        if !matches!(c.action, Action::Noop | Action::Update) {
            continue;
        }
        let why = match renewed.get(&primary) {
            Some(Action::Create) => Some(format!("its primary {primary} is created anew")),
            Some(Action::Move) => Some(format!("its primary {primary} moves")),
            Some(_) => Some(format!("its primary {primary} is replaced")),
            None => stale_primary(observed, &c.address, &primary),
        };
        if let Some(why) = why {
            c.action = Action::Replace;
            c.restart = false;
            c.stays_idle = false;
            c.reasons
                .push(format!("{why}: the standby is made again for its new ID"));
        }
    }
}

/// Why an observed standby does not stand by for its observed primary, if it does not.
fn stale_primary(observed: &Observed, standby: &Address, primary: &Address) -> Option<String> {
    let ids = &observed.resources.get(standby)?.machine()?.config.standbys;
    let primary_id = observed.resources.get(primary).and_then(|r| r.id.clone());
    match primary_id {
        Some(id) if ids.len() == 1 && ids[0] == id => None,
        Some(id) => Some(format!(
            "it stands by for {} rather than its primary's {id}",
            shown(ids)
        )),
        None => Some(format!("its primary {primary} does not exist")),
    }
}

fn shown(ids: &[String]) -> String {
    if ids.is_empty() {
        "no Machine".to_string()
    } else {
        ids.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::{Action, diff};
    use crate::resource::{Address, Resource, ResourceSet, Spec};
    use crate::state::Observed;

    const SPEC: &str = "version: 1\norg: o\ndefaults: { image: 'img:1', region: iad, standbys: 1 }\ntenants: [{ name: alice }]\n";

    fn desired() -> ResourceSet {
        crate::spec::load_bytes(SPEC.as_bytes(), "t.yaml")
            .unwrap()
            .desired
            .resources
    }

    /// The desired resources as observed, the standby standing by for `stands_by`.
    fn observed(stands_by: &str) -> Observed {
        let mut rs: Vec<Resource> = desired().iter().cloned().collect();
        for r in &mut rs {
            r.id = Some(match r.address.standby_index() {
                Some(_) => "m2".to_string(),
                None => "m1".to_string(),
            });
            if let (Some(_), Spec::Machine(m)) = (r.address.standby_index(), &mut r.spec) {
                m.config.standbys = vec![stands_by.to_string()];
            }
        }
        Observed {
            resources: ResourceSet::new(rs),
            ..Observed::default()
        }
    }

    fn action(plan: &crate::plan::Plan, at: &str) -> Action {
        let at: Address = at.parse().unwrap();
        plan.get(&at).unwrap().action
    }

    #[test]
    fn a_standby_of_its_primary_is_unchanged() {
        let p = diff(&desired(), &observed("m1"));
        assert!(!p.has_changes(), "{:#?}", p.changes);
    }

    #[test]
    fn a_standby_naming_another_machine_is_replaced() {
        let p = diff(&desired(), &observed("m9"));
        assert_eq!(action(&p, "tenant.alice.machine[0]"), Action::Noop);
        let at = "tenant.alice.machine[0].standby[0]";
        assert_eq!(action(&p, at), Action::Replace);
        let c = p.get(&at.parse().unwrap()).unwrap();
        assert!(
            c.reasons
                .iter()
                .any(|r| r.contains("stands by for m9 rather than its primary's m1")),
            "{:?}",
            c.reasons
        );
    }

    #[test]
    fn a_missing_primary_makes_its_standby_again() {
        let mut o = observed("m1");
        let rs: Vec<Resource> = o
            .resources
            .iter()
            .filter(|r| r.address.to_string() != "tenant.alice.machine[0]")
            .cloned()
            .collect();
        o.resources = ResourceSet::new(rs);
        let p = diff(&desired(), &o);
        assert_eq!(action(&p, "tenant.alice.machine[0]"), Action::Create);
        assert_eq!(
            action(&p, "tenant.alice.machine[0].standby[0]"),
            Action::Replace
        );
    }
}
