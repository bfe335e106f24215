//! `--target ADDRESS`: a plan narrowed to single resources. Pure.
//!
//! A targeted resource that is created brings along what it needs and does not exist
//! yet (its app, the volumes it mounts, the secrets it reads: the rules of
//! [`crate::graph::needs`]), each with the reason "included because X needs it". A
//! targeted deletion brings along the deletions of what needs the deleted resource (a
//! deleted app takes its Machines, volumes and secrets with it), since Fly would refuse
//! or do it anyway. Everything else leaves the plan; errors about resources that left it
//! leave with them.

use std::collections::{BTreeSet, HashSet};

use crate::diag::Diagnostic;
use crate::graph::{Need, needs};
use crate::plan::{Action, Change, Plan, Summary};
use crate::resource::{Address, ResourceSet, Spec};

/// Narrows `plan` to `targets` and what they bring along. `desired` and `observed` are
/// the sets the plan was made from. An address that names no resource of the plan is an
/// error naming the closest one.
pub fn restrict(
    plan: &mut Plan,
    desired: &ResourceSet,
    observed: &ResourceSet,
    targets: &[Address],
) -> Result<(), Vec<Diagnostic>> {
    if targets.is_empty() {
        return Ok(());
    }
    let unknown: Vec<Diagnostic> = targets
        .iter()
        .filter(|t| plan.get(t).is_none())
        .map(|t| unknown_target(t, plan))
        .collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let reasons = brought_along(plan, desired, observed, targets);
    let chosen: HashSet<&Address> = targets
        .iter()
        .chain(reasons.iter().map(|(a, _)| a))
        .collect();
    let chosen: HashSet<Address> = chosen.into_iter().cloned().collect();
    let left: Vec<Address> = plan
        .changes
        .iter()
        .filter(|c| !chosen.contains(&c.address))
        .map(|c| c.address.clone())
        .collect();
    plan.errors
        .retain(|e| !left.iter().any(|a| e.starts_with(&format!("{a}:"))));
    plan.changes.retain(|c| chosen.contains(&c.address));
    for (address, reason) in reasons {
        if let Some(c) = plan.changes.iter_mut().find(|c| c.address == address)
            && !c.reasons.contains(&reason)
        {
            c.reasons.push(reason);
        }
    }
    plan.summary = Summary::of(&plan.changes);
    Ok(())
}

fn unknown_target(target: &Address, plan: &Plan) -> Diagnostic {
    let wanted = target.to_string();
    let closest = plan
        .changes
        .iter()
        .map(|c| c.address.to_string())
        .min_by_key(|a| strsim::levenshtein(&wanted, a));
    let d = Diagnostic::error(format!(
        "--target {wanted}: no such resource in the spec or the organization"
    ))
    .address(wanted);
    match closest {
        Some(c) => d.hint(format!("did you mean `{c}`?")),
        None => d.hint("the plan has no resources to target"),
    }
}

/// Addresses outside `targets` that the targets bring along, each with its reason, in
/// the order found.
fn brought_along(
    plan: &Plan,
    desired: &ResourceSet,
    observed: &ResourceSet,
    targets: &[Address],
) -> Vec<(Address, String)> {
    let mut seen: BTreeSet<Address> = targets.iter().cloned().collect();
    let mut queue: Vec<Address> = targets.to_vec();
    let mut out = Vec::new();
    while let Some(at) = queue.pop() {
        let Some(change) = plan.get(&at) else {
            continue;
        };
        let found = match change.action {
            Action::Create | Action::Replace => missing_needs(plan, desired, &at),
            Action::Move => {
                let mut found = missing_needs(plan, desired, &at);
                found.extend(move_partner(plan, desired, &at));
                found
            }
            Action::Delete => deleted_with(plan, observed, change),
            Action::Update | Action::Noop => Vec::new(),
        };
        for (address, reason) in found {
            if seen.insert(address.clone()) {
                queue.push(address.clone());
                out.push((address, reason));
            }
        }
    }
    out
}

/// What the desired resource at `at` needs that the plan creates.
/// A moved volume and the Machine that mounts it move together (one operation carries
/// both): each brings the other along.
fn move_partner(plan: &Plan, desired: &ResourceSet, at: &Address) -> Vec<(Address, String)> {
    let reason = format!("included because it moves with {at}");
    let mounts = |m: &Address, v: &Address| {
        desired
            .get(m)
            .and_then(crate::resource::Resource::machine)
            .is_some_and(|spec| spec.mounts.iter().any(|mt| &mt.volume == v))
    };
    plan.changes
        .iter()
        .filter(|c| c.action == Action::Move && &c.address != at)
        .filter(|c| mounts(&c.address, at) || mounts(at, &c.address))
        .map(|c| (c.address.clone(), reason.clone()))
        .collect()
}

fn missing_needs(plan: &Plan, desired: &ResourceSet, at: &Address) -> Vec<(Address, String)> {
    let Some(r) = desired.get(at) else {
        return Vec::new();
    };
    let reason = format!("included because {at} needs it");
    let created = |c: &&Change| c.action == Action::Create;
    let mut out = Vec::new();
    for (_, need) in needs(r) {
        let found: Vec<&Change> = match need {
            Need::App(app) => plan
                .changes
                .iter()
                .filter(created)
                .filter(|c| c.app == app && c.kind == crate::resource::Kind::App)
                .collect(),
            Need::Volume(v) => plan.get(v).into_iter().filter(created).collect(),
            Need::Primary(m) => plan
                .get(&m)
                .into_iter()
                .filter(|c| matches!(c.action, Action::Create | Action::Replace))
                .collect(),
            Need::Secrets { app, names } => plan
                .changes
                .iter()
                .filter(created)
                .filter(|c| c.app == app && c.kind == crate::resource::Kind::Secret)
                .filter(|c| {
                    desired.get(&c.address).is_some_and(
                        |r| matches!(&r.spec, Spec::Secret(s) if names.contains(&s.name)),
                    )
                })
                .collect(),
        };
        out.extend(
            found
                .into_iter()
                .map(|c| (c.address.clone(), reason.clone())),
        );
    }
    out
}

/// The deletions of observed resources that need the deleted `gone`.
fn deleted_with(plan: &Plan, observed: &ResourceSet, gone: &Change) -> Vec<(Address, String)> {
    let Some(g) = observed.get(&gone.address) else {
        return Vec::new();
    };
    let reason = format!("included because deleting {} deletes it", gone.address);
    let is_app = g.kind() == crate::resource::Kind::App;
    plan.changes
        .iter()
        .filter(|c| c.action == Action::Delete && c.address != gone.address)
        .filter_map(|c| observed.get(&c.address))
        .filter(|r| {
            needs(r).iter().any(|(_, n)| match n {
                Need::App(app) => is_app && *app == g.app,
                Need::Volume(v) => **v == g.address,
                Need::Primary(m) => *m == g.address,
                Need::Secrets { .. } => false,
            })
        })
        .map(|r| (r.address.clone(), reason.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::fixtures::{app, machine, volume};
    use crate::resource::{IdleMode, Mount, Resource};
    use crate::state::Observed;

    fn mounted_machine(tenant: &str) -> Resource {
        let mut m = machine(
            Some(tenant),
            0,
            "iad",
            "shared-cpu-1x",
            256,
            IdleMode::Off,
            None,
        );
        if let Spec::Machine(ms) = &mut m.spec {
            ms.mounts.push(Mount {
                volume: volume(tenant, "data", "iad", 1, None).address,
                volume_name: "data".into(),
                path: "/data".into(),
            });
        }
        m
    }

    fn tenant(t: &str) -> Vec<Resource> {
        vec![
            app(t, None),
            volume(t, "data", "iad", 1, None),
            mounted_machine(t),
        ]
    }

    fn addresses(plan: &Plan) -> Vec<String> {
        let mut v: Vec<String> = plan.changes.iter().map(|c| c.address.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_moved_volume_brings_its_machine_along() {
        let observed = Observed {
            resources: ResourceSet::new(
                tenant("a")
                    .into_iter()
                    .map(|mut r| {
                        r.id = Some(format!("id-{}", r.address));
                        r
                    })
                    .collect(),
            ),
            ..Observed::default()
        };
        let desired = ResourceSet::new(
            tenant("a")
                .into_iter()
                .map(|mut r| {
                    match &mut r.spec {
                        Spec::Volume(v) => v.region = "fra".into(),
                        Spec::Machine(m) => m.region = "fra".into(),
                        _ => {}
                    }
                    r
                })
                .collect(),
        );
        let mut plan = crate::plan::diff(&desired, &observed);
        let target: Address = "tenant.a.volume.data[0]".parse().unwrap();
        restrict(&mut plan, &desired, &observed.resources, &[target]).unwrap();
        let moved: Vec<(String, Action)> = plan
            .actionable()
            .map(|c| (c.address.to_string(), c.action))
            .collect();
        assert_eq!(
            moved,
            [
                ("tenant.a.volume.data[0]".to_string(), Action::Move),
                ("tenant.a.machine[0]".to_string(), Action::Move)
            ]
        );
    }

    #[test]
    fn a_created_target_brings_its_app_and_volume_along_with_the_reason() {
        let desired = ResourceSet::new([tenant("a"), tenant("b")].concat());
        let observed = Observed::default();
        let mut plan = crate::plan::diff(&desired, &observed);
        let target: Address = "tenant.a.machine[0]".parse().unwrap();
        restrict(
            &mut plan,
            &desired,
            &observed.resources,
            std::slice::from_ref(&target),
        )
        .unwrap();
        assert_eq!(
            addresses(&plan),
            [
                "tenant.a.app",
                "tenant.a.machine[0]",
                "tenant.a.volume.data[0]"
            ]
        );
        assert_eq!(plan.summary.create, 3);
        let vol = plan
            .changes
            .iter()
            .find(|c| c.address.to_string() == "tenant.a.volume.data[0]");
        assert!(
            vol.unwrap()
                .reasons
                .contains(&"included because tenant.a.machine[0] needs it".to_string())
        );
    }

    #[test]
    fn a_deleted_app_takes_what_lives_in_it_and_an_unknown_target_names_the_closest() {
        let observed = Observed {
            resources: ResourceSet::new(tenant("a")),
            ..Observed::default()
        };
        let desired = ResourceSet::new(Vec::new());
        let mut plan = crate::plan::diff(&desired, &observed);
        let wrong: Address = "tenant.aa.app".parse().unwrap();
        let e = restrict(&mut plan.clone(), &desired, &observed.resources, &[wrong]).unwrap_err();
        assert!(
            e[0].hint
                .as_deref()
                .unwrap_or("")
                .contains("`tenant.a.app`"),
            "{e:?}"
        );
        let target: Address = "tenant.a.app".parse().unwrap();
        restrict(&mut plan, &desired, &observed.resources, &[target]).unwrap();
        assert_eq!(plan.summary.delete, 3, "{:?}", addresses(&plan));
    }
}
