//! Factoring app profiles into a spec: tenant names and the app naming template from
//! the app names, the Machine naming template from the Machine names, the settings most
//! apps share into `defaults` (an explicit `null` where an app lacks them), recurring
//! variants into tiers, and what is left into each tenant's entry. Apps whose names do
//! not follow the template become shared apps with every setting written out.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::profile::{Leaf, Profile, leaf};
use crate::platform::TENANT_NAME;
use crate::spec::decl;

/// One entry of `tenants:` or `apps:`.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// The Fly app it came from.
    pub app: String,
    pub tier: Option<String>,
    /// Entry keys before the settings (`machines`, `machine_name` for shared apps).
    pub keys: Vec<(&'static str, Value)>,
    pub leaves: BTreeMap<Leaf, Value>,
    pub notes: Vec<String>,
}

/// The factored spec, ready to be written.
#[derive(Debug, Clone, Default)]
pub struct Document {
    pub naming: Vec<(&'static str, String)>,
    pub defaults: BTreeMap<Leaf, Value>,
    pub tiers: Vec<(String, BTreeMap<Leaf, Value>)>,
    pub tenants: Vec<Entry>,
    pub apps: Vec<Entry>,
    /// Notes about the whole org (naming that could not be expressed).
    pub notes: Vec<String>,
}

const TENANT_TEMPLATE: &str = "{{ tenant.name }}";

/// Factors the profiles (sorted by app name) into a document.
pub fn factor(profiles: Vec<Profile>) -> Document {
    let names: Vec<&str> = profiles.iter().map(|p| p.app.as_str()).collect();
    let prefix = app_prefix(&names);
    let mut doc = Document::default();
    doc.naming
        .push((decl::NAMING_APP.key, format!("{prefix}{TENANT_TEMPLATE}")));
    let mut tenants: Vec<(String, Profile)> = Vec::new();
    for p in profiles {
        match tenant_name(&p.app, &prefix) {
            Some(t) => tenants.push((t.to_string(), p)),
            None => doc.apps.push(shared_entry(p)),
        }
    }
    for (t, p) in &mut tenants {
        template_tenant_values(t, p);
    }
    machine_naming(&tenants, &mut doc);
    let shared_volumes = doc
        .apps
        .iter()
        .any(|a| a.leaves.contains_key(&leaf(decl::VOLUME_NAME.key)));
    volume_naming(&mut tenants, shared_volumes, &mut doc);
    doc.defaults = defaults(&tenants);
    let diffs: Vec<BTreeMap<Leaf, Value>> = tenants
        .iter()
        .map(|(_, p)| differences(&doc.defaults, &p.leaves))
        .collect();
    let (tiers, of) = tiers(&diffs, &doc.defaults);
    doc.tiers = tiers;
    for (((name, p), diff), tier) in tenants.into_iter().zip(diffs).zip(of) {
        let tier_leaves = tier
            .and_then(|i| doc.tiers.get(i))
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        let leaves = diff
            .into_iter()
            .filter(|(k, v)| tier_leaves.get(k) != Some(v))
            .collect();
        doc.tenants.push(Entry {
            name,
            app: p.app,
            tier: tier.and_then(|i| doc.tiers.get(i)).map(|(n, _)| n.clone()),
            keys: Vec::new(),
            leaves,
            notes: p.notes,
        });
    }
    doc
}

/// The longest prefix ending in `-` that more than half of the apps (at least two)
/// share with a valid tenant name after it; else none.
fn app_prefix(names: &[&str]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in names {
        for (i, _) in n.match_indices('-') {
            let prefix = &n[..=i];
            if tenant_name(n, prefix).is_some() {
                *counts.entry(prefix).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .filter(|(_, c)| *c >= 2 && c * 2 > names.len())
        .max_by_key(|(p, c)| (*c, p.len()))
        .map(|(p, _)| p.to_string())
        .unwrap_or_default()
}

fn tenant_name<'a>(app: &'a str, prefix: &str) -> Option<&'a str> {
    app.strip_prefix(prefix)
        .filter(|t| TENANT_NAME.problem(t).is_none())
}

/// Env and metadata values equal to the tenant's name become `{{ tenant.name }}`, so
/// they can be shared.
fn template_tenant_values(tenant: &str, p: &mut Profile) {
    for (k, v) in &mut p.leaves {
        let templated = matches!(k.first().map(String::as_str), Some("env" | "metadata"));
        if templated && v.as_str() == Some(tenant) {
            *v = json!(TENANT_TEMPLATE);
        }
    }
}

/// A Machine naming template candidate: how it is written and the name it gives.
type Candidate = (String, Box<dyn Fn(&str, &str, usize) -> String>);

fn machine_candidates(sample: Option<(&str, &str)>) -> Vec<Candidate> {
    let mut c: Vec<Candidate> = vec![
        (
            decl::DEFAULT_MACHINE_NAME.to_string(),
            Box::new(|t, _, i| format!("{t}-{i}")),
        ),
        (
            "{{ app }}-{{ index }}".into(),
            Box::new(|_, a, i| format!("{a}-{i}")),
        ),
        ("{{ app }}".into(), Box::new(|_, a, _| a.to_string())),
        (TENANT_TEMPLATE.into(), Box::new(|t, _, _| t.to_string())),
    ];
    // A name around the tenant's: `worker-acme-vm` → `worker-{{ tenant.name }}-vm`.
    if let Some((tenant, machine)) = sample
        && let Some((pre, post)) = machine.split_once(tenant)
        && !post.contains(tenant)
    {
        let (pre, post) = (pre.to_string(), post.to_string());
        c.push((
            format!("{pre}{TENANT_TEMPLATE}{post}"),
            Box::new(move |t, _, _| format!("{pre}{t}{post}")),
        ));
    }
    c
}

/// The names `render` gives an app's Machine slots: `count` of them, or each process
/// group's with `-GROUP` appended (as expansion does for a template without `group`).
fn slot_names(p: &Profile, render: impl Fn(usize) -> String) -> BTreeSet<String> {
    if p.groups.is_empty() {
        return (0..p.machines.len()).map(render).collect();
    }
    p.groups
        .iter()
        .flat_map(|(g, n)| {
            (0..*n)
                .map(|i| format!("{}-{g}", render(i)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The first candidate that names every tenant's Machines; the default stays implicit.
fn machine_naming(tenants: &[(String, Profile)], doc: &mut Document) {
    let with_machines: Vec<&(String, Profile)> = tenants
        .iter()
        .filter(|(_, p)| !p.machines.is_empty())
        .collect();
    let sample = with_machines
        .first()
        .and_then(|(t, p)| p.machines.first().map(|m| (t.as_str(), m.as_str())));
    let fits = |render: &dyn Fn(&str, &str, usize) -> String| {
        with_machines.iter().all(|(t, p)| {
            let want = slot_names(p, |i| render(t, &p.app, i));
            want.len() == p.machines.len() && want == p.machines.iter().cloned().collect()
        })
    };
    let found = machine_candidates(sample)
        .into_iter()
        .enumerate()
        .find(|(_, (_, render))| fits(render.as_ref()));
    match found {
        Some((0, _)) => {}
        Some((_, (template, _))) => doc.naming.push((decl::NAMING_MACHINE.key, template)),
        None if with_machines.iter().any(|(_, p)| p.machines.len() > 1) => doc.notes.push(
            "Machine names follow no one pattern: Machines of apps with several Machines are not adopted by name and would be created anew; rename them or set naming.machine".into(),
        ),
        None => doc.notes.push(
            "Machine names follow no one pattern; each app's only Machine is adopted by its region".into(),
        ),
    }
}

/// What naming.volume renders for a slot past the first, as the default does.
const INDEX_SUFFIX: &str = "{% if index > 0 %}_{{ index }}{% endif %}";
const TENANT_UNDERSCORE: &str = "{{ tenant.name | underscore }}";

/// A volume naming around the tenant's name, from one tenant's first volume
/// (`alice_data` → `{{ tenant.name | underscore }}_{{ volume.name }}…` with logical
/// name `data`): the template, the logical name, and the name it gives a tenant's slot.
struct VolumeTemplate {
    template: String,
    logical: String,
    pre: String,
    post: String,
}

impl VolumeTemplate {
    fn from_sample(tenant: &str, name: &str) -> Option<VolumeTemplate> {
        let t = tenant.replace(['-', '.'], "_");
        let (pre, post) = name.split_once(t.as_str())?;
        if post.contains(t.as_str()) {
            return None;
        }
        let (pre, post) = (pre.to_string(), post.to_string());
        let from_post = post.trim_matches('_');
        let logical = if from_post.is_empty() {
            pre.trim_matches('_')
        } else {
            from_post
        };
        let with_name = |part: &str| -> String {
            if logical.is_empty() {
                part.to_string()
            } else {
                part.replacen(logical, "{{ volume.name }}", 1)
            }
        };
        let (tpl_pre, tpl_post) = if !from_post.is_empty() {
            (pre.clone(), with_name(&post))
        } else {
            (with_name(&pre), post.clone())
        };
        let logical = if logical.is_empty() { "data" } else { logical };
        Some(VolumeTemplate {
            template: format!("{tpl_pre}{TENANT_UNDERSCORE}{tpl_post}{INDEX_SUFFIX}"),
            logical: logical.to_string(),
            pre,
            post,
        })
    }

    fn name(&self, tenant: &str, index: usize) -> String {
        let t = tenant.replace(['-', '.'], "_");
        let suffix = if index > 0 {
            format!("_{index}")
        } else {
            String::new()
        };
        format!("{}{t}{}{suffix}", self.pre, self.post)
    }
}

/// naming.volume when the tenants' volumes carry the tenant's name (the default, the
/// volume's own name, stays implicit); each tenant's `volume.name` becomes the logical
/// name, so it can be shared. Not for fleets whose shared apps have volumes: the
/// template names the tenant.
fn volume_naming(tenants: &mut [(String, Profile)], shared_volumes: bool, doc: &mut Document) {
    let with: Vec<usize> = (0..tenants.len())
        .filter(|i| !tenants[*i].1.volumes.is_empty())
        .collect();
    let default_fits = with.iter().all(|i| {
        let p = &tenants[*i].1;
        let first = &p.volumes[0];
        let want: BTreeSet<String> = (0..p.volumes.len())
            .map(|k| {
                if k == 0 {
                    first.clone()
                } else {
                    format!("{first}_{k}")
                }
            })
            .collect();
        want == p.volumes.iter().cloned().collect()
    });
    let Some(first) = with.first() else { return };
    let (t, p) = &tenants[*first];
    let candidate = VolumeTemplate::from_sample(t, &p.volumes[0]);
    let Some(vt) = candidate.filter(|vt| {
        with.iter().all(|i| {
            let (t, p) = &tenants[*i];
            let want: BTreeSet<String> = (0..p.volumes.len()).map(|k| vt.name(t, k)).collect();
            want.len() == p.volumes.len() && want == p.volumes.iter().cloned().collect()
        })
    }) else {
        if !default_fits {
            doc.notes.push(
                "volume names follow no one pattern: volumes whose names the spec does not give are not adopted and would be created anew; rename them or set naming.volume".into(),
            );
        }
        return;
    };
    // Every tenant named the same way: the default when it fits names them only when the
    // names are the same for all; a name around the tenant's is the template.
    let same_names = with
        .iter()
        .all(|i| tenants[*i].1.volumes[0] == tenants[with[0]].1.volumes[0]);
    if default_fits && same_names {
        return;
    }
    if shared_volumes {
        doc.notes.push(format!(
            "tenants' volume names follow `{}`, but naming.volume would also name the shared apps' volumes; each tenant's volume name is written out instead",
            vt.template
        ));
        return;
    }
    doc.naming
        .push((decl::NAMING_VOLUME.key, vt.template.clone()));
    for i in with {
        tenants[i]
            .1
            .leaves
            .insert(leaf(decl::VOLUME_NAME.key), json!(vt.logical));
    }
}

/// The value more than half of the tenants hold, for each leaf; leaves of a group
/// (`volume`, `idle`, one check) only where every tenant that has the group has them.
fn defaults(tenants: &[(String, Profile)]) -> BTreeMap<Leaf, Value> {
    let mut votes: BTreeMap<&Leaf, BTreeMap<String, (usize, &Value)>> = BTreeMap::new();
    for (_, p) in tenants {
        for (k, v) in &p.leaves {
            let e = votes
                .entry(k)
                .or_default()
                .entry(v.to_string())
                .or_insert((0, v));
            e.0 += 1;
        }
    }
    let mut out = BTreeMap::new();
    for (k, by_value) in votes {
        let best = by_value.into_values().max_by_key(|(c, _)| *c);
        if let Some((c, v)) = best
            && c * 2 > tenants.len()
        {
            out.insert(k.clone(), v.clone());
        }
    }
    out.retain(|k, _| {
        let g = group(k);
        tenants
            .iter()
            .all(|(_, p)| p.leaves.contains_key(k) || !p.leaves.keys().any(|l| l.starts_with(&g)))
    });
    out
}

/// Where a `null` resets what `leaf` belongs to: the whole `volume`, `idle`,
/// `services`; one check, env variable, metadata key or secret.
fn group(l: &Leaf) -> Leaf {
    let depth = match l.first().map(String::as_str) {
        Some("checks" | "env" | "metadata" | "secrets") => 2,
        _ => 1,
    };
    l.iter().take(depth).cloned().collect()
}

/// What a tenant changes from `defaults`: its own values, and `null` for groups the
/// defaults have and it lacks.
fn differences(
    defaults: &BTreeMap<Leaf, Value>,
    leaves: &BTreeMap<Leaf, Value>,
) -> BTreeMap<Leaf, Value> {
    let mut out: BTreeMap<Leaf, Value> = leaves
        .iter()
        .filter(|(k, v)| defaults.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Process groups carry their own counts: the entry's is not reset.
    let grouped = leaves.contains_key(&leaf(decl::PROCESS_GROUPS.key));
    for k in defaults.keys().filter(|k| !leaves.contains_key(*k)) {
        if grouped && *k == leaf(decl::COUNT.key) {
            continue;
        }
        out.insert(group(k), Value::Null);
    }
    out
}

/// Tiers: the recurring part of each tenant's differences (values two or more tenants
/// share), when two or more tenants have the same one. Returns the tiers and each
/// tenant's tier.
#[allow(clippy::type_complexity)]
fn tiers(
    diffs: &[BTreeMap<Leaf, Value>],
    defaults: &BTreeMap<Leaf, Value>,
) -> (Vec<(String, BTreeMap<Leaf, Value>)>, Vec<Option<usize>>) {
    let mut counts: BTreeMap<(&Leaf, String), usize> = BTreeMap::new();
    for d in diffs {
        for (k, v) in d {
            *counts.entry((k, v.to_string())).or_default() += 1;
        }
    }
    let recurring: Vec<BTreeMap<Leaf, Value>> = diffs
        .iter()
        .map(|d| {
            d.iter()
                .filter(|(k, v)| counts.get(&(*k, v.to_string())).is_some_and(|c| *c >= 2))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    let mut tiers: Vec<(String, BTreeMap<Leaf, Value>)> = Vec::new();
    let mut of = Vec::with_capacity(diffs.len());
    for r in &recurring {
        let shared = !r.is_empty() && recurring.iter().filter(|x| *x == r).count() >= 2;
        if !shared {
            of.push(None);
            continue;
        }
        let i = match tiers.iter().position(|(_, l)| l == r) {
            Some(i) => i,
            None => {
                let name = tier_name(r, defaults, &tiers);
                tiers.push((name, r.clone()));
                tiers.len() - 1
            }
        };
        of.push(Some(i));
    }
    (tiers, of)
}

/// A tier's name from its size and memory (`shared-cpu-2x-4gb`) when it changes
/// either, else `variant-N`.
fn tier_name(
    leaves: &BTreeMap<Leaf, Value>,
    defaults: &BTreeMap<Leaf, Value>,
    taken: &[(String, BTreeMap<Leaf, Value>)],
) -> String {
    let keys = [leaf(decl::SIZE.key), leaf(decl::MEMORY.key)];
    let sized = keys.iter().any(|k| leaves.contains_key(k));
    let parts: Vec<&str> = keys
        .iter()
        .filter_map(|k| {
            leaves
                .get(k)
                .or_else(|| defaults.get(k))
                .and_then(Value::as_str)
        })
        .collect();
    let base = if !sized || parts.is_empty() {
        format!("variant-{}", taken.len() + 1)
    } else {
        parts
            .join("-")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect()
    };
    let mut name = base.clone();
    let mut n = 2;
    while taken.iter().any(|(t, _)| *t == name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    name
}

/// An app whose name does not follow the template: a shared app with every setting
/// (shared apps do not inherit `defaults`), its Machine count and names.
fn shared_entry(mut p: Profile) -> Entry {
    let count = p.leaves.remove(&leaf(decl::COUNT.key));
    // Process groups carry their own counts.
    let mut keys = match count {
        Some(c) => vec![(decl::APP_MACHINES.key, c)],
        None if p.groups.is_empty() => vec![(decl::APP_MACHINES.key, json!(0))],
        None => Vec::new(),
    };
    let default_names = slot_names(&p, |i| format!("{}-{i}", p.app));
    let sorted: BTreeSet<String> = p.machines.iter().cloned().collect();
    if sorted != default_names {
        match p.machines.as_slice() {
            [only] if p.groups.is_empty() => {
                keys.push((decl::APP_MACHINE_NAME.key, json!(only)));
            }
            [] => {}
            _ => p.notes.push(
                "its Machines' names follow no pattern: they are not adopted by name and would be created anew".into(),
            ),
        }
    }
    Entry {
        name: p.app.clone(),
        app: p.app,
        tier: None,
        keys,
        leaves: p.leaves,
        notes: p.notes,
    }
}
