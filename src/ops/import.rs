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
mod pattern;
mod profile;

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
    let mut unexpressed: Vec<Unexpressed> = doc
        .notes
        .iter()
        .map(|n| Unexpressed {
            app: None,
            what: n.clone(),
        })
        .collect();
    for e in doc.tenants.iter().chain(&doc.apps) {
        unexpressed.extend(e.notes.iter().map(|n| Unexpressed {
            app: Some(e.app.clone()),
            what: n.clone(),
        }));
    }
    let header = header(&snapshot.org, pattern, apps.len());
    Ok(Outcome {
        spec: emit::write(&snapshot.org, &header, &doc),
        apps: apps.len(),
        tenants: doc.tenants.len(),
        tiers: doc.tiers.len(),
        unexpressed,
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
