//! `status`: what a fleet is doing right now, per tenant — its Machines' states,
//! regions, images, check results and last change, and how many changes a plan would make
//! for it (drift) — with one summary for the fleet. Made from the same observation and
//! plan as `plan` ([`crate::ops::plan::run`]), so the drift it counts is the plan's.
//!
//! The last apply is read from what the Machine carries: `flotilla_applied_at`, the time
//! an apply last wrote its config (create or update), and flotilla's rollout record
//! (`flotilla_rollout*` metadata: target image, state, wave) when a rollout wrote one.
//! A Machine no apply has written yet (one adopted, or made by another tool) shows Fly's
//! `updated_at` instead (its last change of any kind, a start or stop included), marked
//! as such.

pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::diag::Diagnostics;
use crate::ops::Error;
use crate::ops::target::TargetOptions;
use crate::plan::Action;
use crate::resource::{
    Address, META_APPLIED_AT, META_ROLLOUT, META_ROLLOUT_STATE, META_ROLLOUT_WAVE, Owner,
    natural_cmp,
};
use crate::secret_files::FilePolicy;
use crate::secrets::FingerprintKey;
use crate::wire::api as fly;

/// What to look at.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The spec file.
    pub spec: PathBuf,
    /// An observed-state file instead of a live target.
    pub state: Option<PathBuf>,
    /// The API or simulator (as for `plan`).
    pub target: TargetOptions,
    /// Only these tenants (empty: every tenant and shared app).
    pub tenants: Vec<String>,
    pub secret_files: FilePolicy,
    pub fingerprint_key: Option<FingerprintKey>,
}

/// One check's latest result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub status: String,
}

/// The rollout record a Machine carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rollout {
    /// The image the rollout moved the Machine to.
    pub image: String,
    /// `updated`, `failed` or `rolled_back`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wave: Option<String>,
}

/// One Machine as observed.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub address: Address,
    /// The slot as shown: `machine[0]` (`machine.GROUP[0]` in a process group,
    /// `machine[0].standby[0]` for a standby), or `machine[0]#ID` for a duplicate.
    pub slot: String,
    pub id: String,
    pub state: String,
    pub region: String,
    pub image: String,
    /// The image's tag (or digest), e.g. `1.4.2`.
    pub version: String,
    pub checks: Vec<Check>,
    /// When an apply last wrote the Machine's config (`flotilla_applied_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    /// Fly's `updated_at`: the last change to the Machine (an apply's update, or a start
    /// or stop since).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// A tenant's (or shared app's) status.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// `tenant` or `app`.
    pub kind: &'static str,
    pub name: String,
    /// Declared in the spec (a removed tenant is shown while its resources exist).
    pub declared: bool,
    pub machines: Vec<Machine>,
    /// Changes the plan would make for it.
    pub drift: usize,
}

/// The fleet in one line's worth of numbers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub tenants: usize,
    pub machines: usize,
    pub started: usize,
    pub stopped: usize,
    pub suspended: usize,
    pub failed: usize,
    /// Machines in any other state (`created`, `starting`, `standby` for a standby
    /// waiting stopped, …), by state.
    pub other: BTreeMap<String, usize>,
    /// Images in use and how many Machines run each, most used first.
    pub versions: Vec<VersionCount>,
    /// Changes the plan would make, and in how many tenants or shared apps.
    pub drift: usize,
    pub drifted: usize,
}

/// An image in use (`name:version`, without registry) and its Machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    pub image: String,
    pub machines: usize,
}

/// The fleet's status.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub org: String,
    pub fleet: String,
    /// Where the state came from: `empty`, `state:FILE`, `sim:…`, `api:URL`.
    pub source: String,
    pub groups: Vec<Group>,
    pub summary: Summary,
    /// Plan errors (the drift counts are still shown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(skip)]
    pub spec_warnings: Diagnostics,
    #[serde(skip)]
    pub diagnostics: Diagnostics,
}

/// `status SPEC`.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    let planned = crate::ops::plan::run(&crate::ops::plan::Options {
        spec: opts.spec.clone(),
        state: opts.state.clone(),
        target: opts.target.clone(),
        tenants: opts.tenants.clone(),
        secret_files: opts.secret_files.clone(),
        fingerprint_key: opts.fingerprint_key.clone(),
        ..Default::default()
    })?;
    let mut groups = Groups::declared(&planned.desired, &opts.tenants);
    for r in planned.observed.resources.iter() {
        let Some(m) = planned.observed.machines.get(&r.address) else {
            continue;
        };
        if r.machine().is_none() {
            continue;
        }
        if let Some(g) = groups.of(&r.address) {
            g.machines.push(machine(&r.address, m));
        }
    }
    let actionable = planned.document.changes.iter();
    for c in actionable.filter(|c| c.action != Action::Noop) {
        if let Some(g) = groups.of(&c.address) {
            g.drift += 1;
        }
    }
    let mut groups = groups.list;
    for g in &mut groups {
        g.machines
            .sort_by(|a, b| natural_cmp(a.address.as_str(), b.address.as_str()));
    }
    let summary = summarize(&groups);
    Ok(Outcome {
        org: planned.desired.org.clone(),
        fleet: planned.desired.fleet.clone(),
        source: planned.source.label(),
        groups,
        summary,
        errors: planned.document.errors.clone(),
        spec_warnings: planned.spec_warnings,
        diagnostics: planned.diagnostics,
    })
}

/// How often, and how many times, [`watch`] shows the status.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    pub every: Duration,
    /// Stop after this many renderings (`None`: until interrupted).
    pub count: Option<u64>,
}

/// Runs [`run`] every `watch.every` and hands each outcome to `show`, until `count`
/// renderings were shown or Ctrl-C is pressed. A failed run is handed over too and does
/// not stop the loop (the API may be back next time).
pub fn watch(
    opts: &Options,
    watch: Watch,
    mut show: impl FnMut(Result<Outcome, Error>),
) -> Result<(), Error> {
    // One worker listens for Ctrl-C the whole time, also while a run is under way.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(crate::diag::Diagnostic::error(format!(
                "cannot start the runtime: {e}"
            )))
        })?;
    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (stop, stopped) = (stop.clone(), stopped.clone());
        rt.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stopped.store(true, std::sync::atomic::Ordering::SeqCst);
                stop.notify_one();
            }
        });
    }
    let mut shown = 0u64;
    loop {
        show(run(opts));
        shown += 1;
        if watch.count.is_some_and(|n| shown >= n)
            || stopped.load(std::sync::atomic::Ordering::SeqCst)
        {
            return Ok(());
        }
        let interrupted = rt.block_on(async {
            tokio::select! {
                _ = tokio::time::sleep(watch.every) => false,
                _ = stop.notified() => true,
            }
        });
        if interrupted {
            return Ok(());
        }
    }
}

/// The groups being filled, indexed by (kind, name).
struct Groups<'t> {
    list: Vec<Group>,
    index: HashMap<(&'static str, String), usize>,
    /// The `--tenant` filter (empty: everything).
    tenants: &'t [String],
}

impl<'t> Groups<'t> {
    /// One group per declared tenant (in spec order, narrowed to `tenants`), then one per
    /// shared app when no tenant is named.
    fn declared(desired: &crate::resource::Desired, tenants: &'t [String]) -> Groups<'t> {
        let mut g = Groups {
            list: Vec::new(),
            index: HashMap::new(),
            tenants,
        };
        for t in &desired.tenants {
            if tenants.is_empty() || tenants.contains(&t.name) {
                g.add("tenant", &t.name, true);
            }
        }
        if tenants.is_empty() {
            for r in desired.resources.iter() {
                if let Some(Owner::SharedApp(app)) = r.address.owner() {
                    g.add("app", app, true);
                }
            }
        }
        g
    }

    /// The group's index (added when new).
    fn add(&mut self, kind: &'static str, name: &str, declared: bool) -> usize {
        if let Some(i) = self.index.get(&(kind, name.to_string())) {
            return *i;
        }
        self.list.push(Group {
            kind,
            name: name.to_string(),
            declared,
            machines: Vec::new(),
            drift: 0,
        });
        self.index
            .insert((kind, name.to_string()), self.list.len() - 1);
        self.list.len() - 1
    }

    /// The group an address belongs to; an observed owner the spec no longer declares
    /// gets a group of its own (unless the tenant filter leaves it out).
    fn of(&mut self, address: &Address) -> Option<&mut Group> {
        let (kind, name) = match address.owner()? {
            Owner::Tenant(t) => ("tenant", t),
            Owner::SharedApp(a) => ("app", a),
        };
        let i = match self.index.get(&(kind, name.to_string())) {
            Some(i) => *i,
            None => {
                let selected = kind == "tenant" && self.tenants.iter().any(|t| t == name);
                if !self.tenants.is_empty() && !selected {
                    return None;
                }
                self.add(kind, name, false)
            }
        };
        self.list.get_mut(i)
    }
}

fn machine(address: &Address, m: &fly::Machine) -> Machine {
    let mut slot = crate::resource::slot_text(address);
    if let Some(id) = address.instance() {
        slot.push_str(&format!("#{id}"));
    }
    let meta = &m.config.metadata;
    Machine {
        address: address.clone(),
        slot,
        id: m.id.clone(),
        state: shown_state(address, &m.state),
        region: m.region.clone(),
        image: m.config.image.clone(),
        version: image_version(&m.config.image),
        checks: m
            .checks
            .iter()
            .flatten()
            .map(|c| Check {
                name: c.name.clone(),
                status: c.status.clone(),
            })
            .collect(),
        applied_at: meta.get(META_APPLIED_AT).cloned(),
        updated_at: m.updated_at.clone(),
        rollout: meta.get(META_ROLLOUT).map(|image| Rollout {
            image: image.clone(),
            state: meta.get(META_ROLLOUT_STATE).cloned(),
            wave: meta.get(META_ROLLOUT_WAVE).cloned(),
        }),
    }
}

/// A Machine's state as status shows it: a standby waiting stopped, as Fly keeps it, is
/// `standby` (neither idle nor down; Fly starts it when its primary's host fails).
fn shown_state(address: &Address, state: &str) -> String {
    if address.standby_index().is_some() && matches!(state, "stopped" | "created") {
        "standby".to_string()
    } else {
        state.to_string()
    }
}

/// An image's tag or digest: `registry.fly.io/app:1.4.2` → `1.4.2`; `…@sha256:ab…` →
/// `sha256:ab…`; no tag → `latest`.
pub fn image_version(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return digest.to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag.to_string(),
        None => "latest".to_string(),
    }
}

/// An image without its registry and path: `registry.fly.io/app:1.4.2` → `app:1.4.2`.
fn image_name(image: &str) -> &str {
    image.rsplit('/').next().unwrap_or(image)
}

fn summarize(groups: &[Group]) -> Summary {
    let mut s = Summary {
        tenants: groups.iter().filter(|g| g.kind == "tenant").count(),
        ..Summary::default()
    };
    let mut versions: BTreeMap<&str, usize> = BTreeMap::new();
    for m in groups.iter().flat_map(|g| &g.machines) {
        s.machines += 1;
        match m.state.as_str() {
            "started" => s.started += 1,
            "stopped" => s.stopped += 1,
            "suspended" => s.suspended += 1,
            "failed" => s.failed += 1,
            other => *s.other.entry(other.to_string()).or_default() += 1,
        }
        *versions.entry(image_name(&m.image)).or_default() += 1;
    }
    let mut versions: Vec<VersionCount> = versions
        .into_iter()
        .map(|(v, n)| VersionCount {
            image: v.to_string(),
            machines: n,
        })
        .collect();
    versions.sort_by(|a, b| {
        b.machines
            .cmp(&a.machines)
            .then_with(|| natural_cmp(&a.image, &b.image))
    });
    s.versions = versions;
    s.drift = groups.iter().map(|g| g.drift).sum();
    s.drifted = groups.iter().filter(|g| g.drift > 0).count();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_versions() {
        assert_eq!(image_version("registry.fly.io/app:1.4.2"), "1.4.2");
        assert_eq!(image_version("localhost:5000/app"), "latest");
        assert_eq!(image_version("localhost:5000/app:v2"), "v2");
        assert_eq!(image_version("app@sha256:abc"), "sha256:abc");
        assert_eq!(image_name("ghcr.io/acme/jarvis:1.0"), "jarvis:1.0");
    }

    #[test]
    fn slots_name_their_process_group() {
        let m = fly::Machine::default();
        let slot = |a: &str| machine(&a.parse().unwrap(), &m).slot;
        assert_eq!(slot("tenant.a.machine[1]"), "machine[1]");
        assert_eq!(slot("tenant.a.machine.web[1]"), "machine.web[1]");
        assert_eq!(slot("tenant.a.machine.web[1]#m9"), "machine.web[1]#m9");
        assert_eq!(
            slot("tenant.a.machine.web[1].standby[0]"),
            "machine.web[1].standby[0]"
        );
        let standby: Address = "tenant.a.machine[0].standby[0]".parse().unwrap();
        assert_eq!(shown_state(&standby, "stopped"), "standby");
        assert_eq!(shown_state(&standby, "started"), "started");
        assert_eq!(
            shown_state(&"tenant.a.machine[0]".parse().unwrap(), "stopped"),
            "stopped"
        );
    }
}
