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
                Need::Secrets { .. } => false,
            })
        })
        .map(|r| (r.address.clone(), reason.clone()))
        .collect()
}
