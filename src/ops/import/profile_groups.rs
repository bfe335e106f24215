//! Apps whose Machines flyctl made from fly.toml's `[processes]`: every Machine carries
//! `fly_process_group`. When the groups' Machines differ only in what a process group
//! can say (its command, Fly's `init.cmd`; count, services, checks, size, memory, env),
//! the app's profile is the shared settings plus one `process_groups` leaf; otherwise
//! a note says why, and the app is profiled as one group of Machines.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::profile::{Leaf, Profile, compare_siblings, leaf, machine_leaves};
use crate::resource::META_FLY_PROCESS_GROUP;
use crate::spec::decl;
use crate::wire::api as fly;

/// Machines by process group, when every Machine names one and there are two groups
/// or more. flyctl tags the Machines of an app without `[processes]` with one group
/// (`app`): those stay one set of Machines, with their command as `init.cmd`, named
/// and adopted as before.
fn by_group<'m>(machines: &[&'m fly::Machine]) -> Option<BTreeMap<String, Vec<&'m fly::Machine>>> {
    let mut out: BTreeMap<String, Vec<&fly::Machine>> = BTreeMap::new();
    for m in machines {
        let g = m
            .config
            .metadata
            .get(META_FLY_PROCESS_GROUP)
            .filter(|g| !g.is_empty())?;
        out.entry(g.clone()).or_default().push(m);
    }
    (out.len() >= 2).then_some(out)
}

/// The unit a leaf belongs to for a group: `None` for a leaf every group must share;
/// the top-level key for size, memory, services and checks (a group's replaces the
/// entry's); `env.NAME` (a group's env merges by name); `init.cmd` (the group's `cmd`).
fn group_unit(l: &Leaf) -> Option<Leaf> {
    let top = l.first().map(String::as_str)?;
    let depth = match top {
        t if t == decl::SIZE.key
            || t == decl::MEMORY.key
            || t == decl::SERVICES.key
            || t == decl::CHECKS.key =>
        {
            1
        }
        t if t == decl::ENV.key => 2,
        _ if *l == leaf(decl::INIT_CMD.key) => 2,
        _ => return None,
    };
    Some(l.iter().take(depth).cloned().collect())
}

fn is_idle(l: &Leaf) -> bool {
    l.first().map(String::as_str) == Some(decl::IDLE.key)
}

/// Fills `p` from the process groups of `machines` and returns `true`; `false` when
/// the Machines are no groups or the groups cannot be declared (with a note).
pub fn profile_groups(machines: &[&fly::Machine], p: &mut Profile) -> bool {
    let Some(groups) = by_group(machines) else {
        return false;
    };
    if let Some(m) = machines.iter().find(|m| !m.config.mounts.is_empty()) {
        p.notes.push(format!(
            "Machine {} of process group `{}` mounts a volume, which process groups cannot declare; the spec describes the app's Machines as one group",
            m.name,
            m.config.metadata.get(META_FLY_PROCESS_GROUP).map_or("", String::as_str)
        ));
        return false;
    }
    let mut each: Vec<(String, usize, BTreeMap<Leaf, Value>)> = Vec::new();
    let mut notes = Vec::new();
    for (name, ms) in &groups {
        let Some((first, rest)) = ms.split_first() else {
            continue;
        };
        let mut gp = Profile {
            app: p.app.clone(),
            leaves: BTreeMap::new(),
            machines: Vec::new(),
            volumes: Vec::new(),
            notes: Vec::new(),
            groups: Vec::new(),
        };
        machine_leaves(first, &mut gp);
        compare_siblings(first, rest, &mut gp);
        notes.extend(gp.notes);
        each.push((name.clone(), ms.len(), gp.leaves));
    }
    if let Some(why) = shared_difference(&each) {
        p.notes.push(why);
        return false;
    }
    p.notes.extend(notes);
    p.leaves = entry_leaves(&each);
    let mut declared = Map::new();
    for (name, count, leaves) in &each {
        declared.insert(name.clone(), group_value(*count, leaves, &p.leaves));
    }
    p.leaves
        .insert(leaf(decl::PROCESS_GROUPS.key), Value::Object(declared));
    p.groups = each.iter().map(|(n, c, _)| (n.clone(), *c)).collect();
    true
}

/// The first setting two groups' Machines differ in that no group can set apart.
fn shared_difference(each: &[(String, usize, BTreeMap<Leaf, Value>)]) -> Option<String> {
    let shared = |l: &BTreeMap<Leaf, Value>| -> BTreeMap<Leaf, Value> {
        l.iter()
            .filter(|(k, _)| group_unit(k).is_none() && !is_idle(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let (first, rest) = each.split_first()?;
    let base = shared(&first.2);
    let idle = |l: &BTreeMap<Leaf, Value>| -> Vec<(Leaf, Value)> {
        l.iter()
            .filter(|(k, _)| is_idle(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let idles: Vec<Vec<(Leaf, Value)>> = each
        .iter()
        .map(|g| idle(&g.2))
        .filter(|i| !i.is_empty())
        .collect();
    for (name, _, leaves) in rest {
        let other = shared(leaves);
        if other != base {
            let key = base
                .iter()
                .find(|(k, v)| other.get(*k) != Some(*v))
                .map(|(k, _)| k)
                .or_else(|| other.keys().find(|k| !base.contains_key(*k)))
                .map(|k| k.join("."))
                .unwrap_or_default();
            return Some(format!(
                "the Machines of process groups `{}` and `{name}` differ in `{key}`, which process groups share; the spec describes the app's Machines as one group",
                first.0
            ));
        }
    }
    if idles.windows(2).any(|w| w[0] != w[1]) {
        return Some(
            "the process groups' Machines stop and start differently (`idle`), which process groups share; the spec describes the app's Machines as one group".into(),
        );
    }
    None
}

/// The entry's settings: what the groups share, the idle policy of those with
/// services, and every group unit equal in all groups (except the command).
fn entry_leaves(each: &[(String, usize, BTreeMap<Leaf, Value>)]) -> BTreeMap<Leaf, Value> {
    let mut out: BTreeMap<Leaf, Value> = BTreeMap::new();
    for (_, _, leaves) in each {
        for (k, v) in leaves.iter().filter(|(k, _)| is_idle(k)) {
            out.insert(k.clone(), v.clone());
        }
    }
    let Some((_, _, first)) = each.first() else {
        return out;
    };
    for (k, v) in first {
        match group_unit(k) {
            None => {
                out.insert(k.clone(), v.clone());
            }
            Some(u) if u != leaf(decl::INIT_CMD.key) => {
                let same = each
                    .iter()
                    .all(|(_, _, l)| unit_of(l, &u) == unit_of(first, &u));
                if same {
                    out.insert(k.clone(), v.clone());
                }
            }
            Some(_) => {}
        }
    }
    out
}

fn unit_of<'a>(leaves: &'a BTreeMap<Leaf, Value>, unit: &Leaf) -> Vec<(&'a Leaf, &'a Value)> {
    leaves.iter().filter(|(k, _)| k.starts_with(unit)).collect()
}

/// One group's declaration: `cmd`, `count`, then the units the entry does not have.
fn group_value(
    count: usize,
    leaves: &BTreeMap<Leaf, Value>,
    entry: &BTreeMap<Leaf, Value>,
) -> Value {
    let mut o = Map::new();
    if let Some(cmd) = leaves.get(&leaf(decl::INIT_CMD.key)) {
        o.insert(decl::GROUP_CMD.key.into(), cmd.clone());
    }
    o.insert(decl::COUNT.key.into(), json!(count));
    for (k, v) in leaves {
        let own =
            group_unit(k).is_some_and(|u| u != leaf(decl::INIT_CMD.key)) && !entry.contains_key(k);
        if own {
            nest(&mut o, k, v.clone());
        }
    }
    Value::Object(o)
}

fn nest(o: &mut Map<String, Value>, path: &[String], v: Value) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        o.insert(head.clone(), v);
        return;
    }
    let slot = o
        .entry(head.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(child) = slot {
        nest(child, rest, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(name: &str, group: &str, image: &str) -> fly::Machine {
        serde_json::from_value(json!({
            "id": name, "name": name, "region": "iad", "state": "started",
            "config": {
                "image": image,
                "init": { "cmd": [group] },
                "env": { "MODE": group, "PORT": "8080" },
                "metadata": { "fly_process_group": group }
            }
        }))
        .unwrap()
    }

    fn empty() -> Profile {
        Profile {
            app: "a".into(),
            leaves: BTreeMap::new(),
            machines: Vec::new(),
            volumes: Vec::new(),
            notes: Vec::new(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn groups_differing_in_group_fields_become_process_groups() {
        let (w, k) = (
            machine("a-0-web", "web", "i"),
            machine("a-0-worker", "worker", "i"),
        );
        let mut p = empty();
        assert!(profile_groups(&[&w, &k], &mut p));
        assert_eq!(p.groups, vec![("web".into(), 1), ("worker".into(), 1)]);
        assert_eq!(p.leaves[&leaf("env.PORT")], json!("8080"));
        assert_eq!(
            p.leaves[&leaf("process_groups")],
            json!({
                "web": { "cmd": ["web"], "count": 1, "env": { "MODE": "web" } },
                "worker": { "cmd": ["worker"], "count": 1, "env": { "MODE": "worker" } }
            })
        );
        assert!(!p.leaves.contains_key(&leaf("init.cmd")));
    }

    #[test]
    fn groups_differing_elsewhere_are_a_note() {
        let (w, k) = (
            machine("a-0-web", "web", "i"),
            machine("a-0-worker", "worker", "j"),
        );
        let mut p = empty();
        assert!(!profile_groups(&[&w, &k], &mut p));
        assert!(p.notes[0].contains("differ in `image`"), "{:?}", p.notes);
        assert!(p.leaves.is_empty());
        let plain: fly::Machine = serde_json::from_value(json!({
            "id": "x", "name": "x", "region": "iad", "config": { "image": "i" }
        }))
        .unwrap();
        assert!(!profile_groups(&[&w, &plain], &mut empty()));
        let app = machine("a-0", "app", "i");
        assert!(!profile_groups(&[&app], &mut empty()), "flyctl's one group");
    }
}
