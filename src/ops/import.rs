//! `import`: writes a spec for an organization that scripts or hands built, so flotilla
//! can take it over without touching it. It observes the org's apps (those matching
//! `--app-pattern`), their Machines, volumes, secrets' names, IPs and certificates, and
//! factors them into `defaults`, tiers for recurring variants and one small entry per
//! tenant, with naming templates inferred from the names. Secrets become references
//! (`{ env: NAME }`); values are never read. Planning the result against the same org
//! creates, replaces and deletes nothing: only adoption metadata is written.
//!
//! The observation needs the network; profiling ([`profile`]), factoring ([`factor`])
//! and writing ([`emit`]) are pure, and [`from_snapshot`] runs them.

mod emit;
mod factor;
pub mod flytoml;
mod pattern;
mod profile;
mod profile_config;
mod profile_groups;

use std::collections::HashSet;

pub use pattern::AppPattern;

use crate::diag::Diagnostic;
use crate::ops::Error;
use crate::ops::target::{Session, TargetOptions, observe_error};
use crate::state::Snapshot;

/// What to import.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The Fly organization slug.
    pub org: String,
    /// Only apps whose names match (`*`, `?`); all apps when `None`.
    pub app_pattern: Option<AppPattern>,
    /// The API or simulator to read.
    pub target: TargetOptions,
}

/// Something of the org the spec does not say, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unexpressed {
    /// The app it concerns; `None` for the org as a whole.
    pub app: Option<String>,
    pub what: String,
}

impl std::fmt::Display for Unexpressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.app {
            Some(a) => write!(f, "{a}: {}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

/// The generated spec.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The spec, YAML with comments where something could not be expressed.
    pub spec: String,
    /// What the spec does not express (also written as comments in it).
    pub unexpressed: Vec<Unexpressed>,
    /// Apps imported.
    pub apps: usize,
    /// Of them, tenants (the others are shared apps).
    pub tenants: usize,
    /// Tiers found.
    pub tiers: usize,
}

/// `import --org ORG`.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    if opts.org.trim().is_empty() {
        return Err(Diagnostic::error("--org is empty")
            .hint("give the organization's slug, as `fly orgs list` shows it")
            .into());
    }
    let session = Session::connect(&opts.target)?;
    let target = session.target();
    let snapshot = session.block_on(async {
        let apps = target.client.list_apps(&opts.org).await?;
        let chosen: HashSet<String> = apps
            .into_iter()
            .map(|a| a.name)
            .filter(|n| opts.app_pattern.as_ref().is_none_or(|p| p.matches(n)))
            .collect();
        crate::fly::observe::observe(
            &target.client,
            &opts.org,
            &chosen,
            crate::fly::observe::CONCURRENCY,
        )
        .await
    });
    let snapshot = snapshot.map_err(|e| observe_error(&opts.org, &target.source, &e))?;
    from_snapshot(&snapshot, opts.app_pattern.as_ref())
}

/// The spec for the apps of `snapshot` that match `pattern`. Pure.
pub fn from_snapshot(snapshot: &Snapshot, pattern: Option<&AppPattern>) -> Result<Outcome, Error> {
    let mut apps: Vec<&crate::wire::AppSnapshot> = snapshot
        .apps
        .iter()
        .filter(|a| pattern.is_none_or(|p| p.matches(&a.app.name)))
        .collect();
    apps.sort_by(|a, b| a.app.name.cmp(&b.app.name));
    let mut managed = Vec::new();
    apps.retain(|a| match managed_by(a) {
        Some(why) => {
            managed.push(Unexpressed {
                app: Some(a.app.name.clone()),
                what: format!("{why}; left out"),
            });
            false
        }
        None => true,
    });
    if apps.is_empty() {
        let which = pattern.map_or(String::new(), |p| format!(" matching `{p}`"));
        return Err(
            Diagnostic::error(format!("org {} has no apps{which}", snapshot.org))
                .hint("check --org and --app-pattern (`*` matches any run of characters, `?` one)")
                .into(),
        );
    }
    let profiles: Vec<profile::Profile> = apps.iter().map(|a| profile::profile(a)).collect();
    let doc = factor::factor(profiles);
    let managed_notes = managed.clone();
    let mut unexpressed: Vec<Unexpressed> = managed;
    unexpressed.extend(doc.notes.iter().map(|n| Unexpressed {
        app: None,
        what: n.clone(),
    }));
    for e in doc.tenants.iter().chain(&doc.apps) {
        unexpressed.extend(e.notes.iter().map(|n| Unexpressed {
            app: Some(e.app.clone()),
            what: n.clone(),
        }));
    }
    let mut header = header(&snapshot.org, pattern, apps.len());
    header.extend(managed_notes.iter().map(ToString::to_string));
    Ok(Outcome {
        spec: emit::write(&snapshot.org, &header, &doc),
        apps: apps.len(),
        tenants: doc.tenants.len(),
        tiers: doc.tiers.len(),
        unexpressed,
    })
}

/// Why an app is flotilla's already (a fleet's lock sentinel, or managed Machines).
fn managed_by(a: &crate::wire::AppSnapshot) -> Option<String> {
    use crate::resource::{META_FLEET, META_LOCK, META_MANAGED};
    a.machines.iter().find_map(|m| {
        let md = &m.config.metadata;
        if md.contains_key(META_LOCK) {
            Some("is a fleet's lock sentinel".to_string())
        } else if md.get(META_MANAGED).map(String::as_str) == Some("true") {
            let fleet = md.get(META_FLEET).map_or("?", String::as_str);
            Some(format!("is managed by flotilla already (fleet `{fleet}`)"))
        } else {
            None
        }
    })
}

fn header(org: &str, pattern: Option<&AppPattern>, apps: usize) -> Vec<String> {
    let which = pattern.map_or(String::new(), |p| format!(" matching `{p}`"));
    vec![
        format!("Imported by `flotilla import` from org {org}: {apps} apps{which}."),
        "Secrets are referenced from environment variables of the same name; their values were not read.".into(),
        "Planning this spec against the org adopts what exists: it writes flotilla's metadata and sets each secret once; it creates, replaces and deletes nothing.".into(),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::{Value, json};

    use super::{AppPattern, from_snapshot};
    use crate::plan::Action;
    use crate::state::Snapshot;

    fn machine(id: &str, name: &str, env: Value, mounts: Value) -> Value {
        json!({
            "id": id, "name": name, "state": "started", "region": "fra",
            "config": {
                "image": "registry.example/shop:2",
                "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 1024},
                "env": env, "mounts": mounts,
                "restart": {"policy": "on-failure", "max_retries": 10}
            }
        })
    }

    fn volume(id: &str, name: &str, attached: &str) -> Value {
        json!({"id": id, "name": name, "state": "created", "size_gb": 2, "region": "fra",
               "encrypted": true, "attached_machine_id": attached,
               "snapshot_retention": 5, "auto_backup_enabled": true})
    }

    fn app(name: &str, machines: Vec<Value>, volumes: Vec<Value>) -> Value {
        json!({"id": format!("app_{name}"), "name": name,
               "machines": machines, "volumes": volumes,
               "secrets": [{"name": "STRIPE_KEY", "digest": "d1"}]})
    }

    /// Three tenants with a volume (one with two Machines), one without, an env value
    /// that is a credential and one with template syntax, and an app outside the pattern.
    fn snapshot() -> Snapshot {
        let mounts = |v: &str| json!([{"volume": v, "path": "/data"}]);
        let env = |t: &str| json!({"SHOP": t, "MODE": "live"});
        let token = ["ghp", "_", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"].concat();
        let snap = json!({
            "format_version": crate::state::STATE_FORMAT_VERSION,
            "org": "acme",
            "apps": [
                app("shop-a", vec![machine("m1", "a-0", env("a"), mounts("v1"))], vec![volume("v1", "data", "m1")]),
                app("shop-b", vec![machine("m2", "b-0", env("b"), mounts("v2"))], vec![volume("v2", "data", "m2")]),
                app("shop-c", vec![
                    machine("m3", "c-0", env("c"), mounts("v3")),
                    machine("m4", "c-1", env("c"), mounts("v4")),
                ], vec![volume("v3", "data", "m3"), volume("v4", "data_1", "m4")]),
                app("shop-d", vec![machine("m5", "d-0",
                    json!({"SHOP": "d", "MODE": "live", "GH_TOKEN": token, "GREETING": "{{ hi }}"}),
                    json!([]))], vec![]),
                app("other", vec![machine("m6", "x", json!({}), json!([]))], vec![]),
                app("shop-zz", vec![json!({"id": "m7", "name": "zz-0", "region": "fra",
                    "config": {"image": "i", "metadata": {"flotilla_managed": "true", "flotilla_fleet": "blue"}}})], vec![]),
            ]
        });
        serde_json::from_value(snap).unwrap()
    }

    #[test]
    fn the_imported_spec_plans_no_create_replace_or_delete() {
        let snap = snapshot();
        let pattern = AppPattern::new("shop-*");
        let out = from_snapshot(&snap, Some(&pattern)).unwrap();
        let spec = &out.spec;
        assert!(spec.contains("app: \"shop-{{ tenant.name }}\""), "{spec}");
        assert!(spec.contains("SHOP: \"{{ tenant.name }}\""), "{spec}");
        assert!(spec.contains("volume: null"), "{spec}");
        assert!(
            spec.contains("STRIPE_KEY: { env: \"STRIPE_KEY\" }"),
            "{spec}"
        );
        assert!(
            !spec.contains("a1B2c3D4e5F6") && !spec.contains("{{ hi }}"),
            "{spec}"
        );
        assert!(!spec.contains("other"), "{spec}");
        assert!(
            spec.contains("# shop-zz: is managed by flotilla already"),
            "{spec}"
        );
        assert_eq!((out.apps, out.tenants), (4, 4));
        let notes: Vec<String> = out.unexpressed.iter().map(ToString::to_string).collect();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("shop-d:") && n.contains("GH_TOKEN")),
            "{notes:?}"
        );
        assert!(notes.iter().any(|n| n.contains("GREETING")), "{notes:?}");
        assert!(
            notes.contains(
                &"shop-zz: is managed by flotilla already (fleet `blue`); left out".to_string()
            ),
            "{notes:?}"
        );

        let plan = plan_adopting(spec, &snap);
        let machines = plan
            .changes
            .iter()
            .filter(|c| c.address.as_str().contains(".machine"))
            .count();
        assert_eq!(machines, 5, "{spec}");
    }

    /// The plan of the imported `spec` against the org it came from, held to creating,
    /// replacing and deleting nothing.
    fn plan_adopting(spec: &str, snap: &Snapshot) -> crate::plan::Plan {
        let loaded = crate::spec::load_bytes(spec.as_bytes(), "imported.yaml")
            .unwrap_or_else(|d| panic!("{d}\n{spec}"));
        let d = loaded.desired;
        let observed = crate::state::interpret(snap, &d);
        let plan = crate::plan::diff(&d.resources, &observed);
        assert!(plan.errors.is_empty(), "{:?}", plan.errors);
        for c in &plan.changes {
            assert!(
                matches!(c.action, Action::Noop | Action::Update),
                "{} would be {:?}: {:?}\n{spec}",
                c.address,
                c.action,
                c.fields
            );
        }
        plan
    }

    #[test]
    fn volume_names_around_the_tenants_become_naming_volume() {
        let mounts = |v: &str| json!([{"volume": v, "path": "/data"}]);
        let env = json!({"MODE": "live"});
        let snap: Snapshot = serde_json::from_value(json!({
            "format_version": crate::state::STATE_FORMAT_VERSION,
            "org": "acme",
            "apps": [
                app("shop-alpha", vec![machine("m1", "alpha-0", env.clone(), mounts("v1"))],
                    vec![volume("v1", "alpha_data", "m1")]),
                app("shop-big-co", vec![
                    machine("m2", "big-co-0", env.clone(), mounts("v2")),
                    machine("m3", "big-co-1", env.clone(), mounts("v3")),
                ], vec![volume("v2", "big_co_data", "m2"), volume("v3", "big_co_data_1", "m3")]),
                app("shop-gamma", vec![machine("m4", "gamma-0", env, mounts("v4"))],
                    vec![volume("v4", "gamma_data", "m4")]),
            ]
        }))
        .unwrap();
        let out = from_snapshot(&snap, None).unwrap();
        let spec = &out.spec;
        assert!(
            spec.contains(
                "volume: \"{{ tenant.name | underscore }}_{{ volume.name }}{% if index > 0 %}_{{ index }}{% endif %}\""
            ),
            "{spec}"
        );
        assert!(spec.contains("name: \"data\""), "{spec}");
        assert!(!spec.contains("alpha_data"), "{spec}");
        let plan = plan_adopting(spec, &snap);
        let volumes = plan
            .changes
            .iter()
            .filter(|c| c.address.as_str().contains(".volume."))
            .count();
        assert_eq!(volumes, 4, "every volume is adopted: {spec}");
    }

    #[test]
    fn no_matching_app_is_an_error_naming_the_pattern() {
        let e = from_snapshot(&snapshot(), Some(&AppPattern::new("nope-*"))).unwrap_err();
        assert!(e.to_string().contains("no apps matching `nope-*`"), "{e}");
    }
}
