//! `plan`: observe (a state file, the simulator or the API, or an empty organization),
//! interpret, fingerprint secrets when their values are available, diff, price, and
//! assemble the plan document; optionally save it for `apply` and write the observed
//! state. The same planning step serves [`crate::ops::apply`].

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use crate::ops::pricing::PricingOptions;
use crate::ops::target::{Session, TargetOptions, fingerprint_keying, secret_values};
use crate::ops::{Error, check_tenants_observed, load_spec_checked};
use crate::plan::saved::{PlanDocument, PlanKey, PlanMeta};
use crate::plan::{Action, Plan};
use crate::resource::{Address, Desired};
use crate::secret_files::FilePolicy;
use crate::secrets::{FingerprintKey, Keying, SecretValues};
use crate::state::{Observed, Snapshot, interpret};

/// What to plan, against what.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The spec file.
    pub spec: PathBuf,
    /// Compare against this observed-state file; wins over `target`.
    pub state: Option<PathBuf>,
    /// The API or simulator to observe when there is no state file; with neither, the
    /// plan is made against an empty organization.
    pub target: TargetOptions,
    /// Also write the observed state (JSON, the format `state` reads) here.
    pub show_state: Option<PathBuf>,
    /// Save the plan, with its desired state, here (for `apply PLANFILE`).
    pub out: Option<PathBuf>,
    /// Only these tenants (empty: the whole fleet).
    pub tenants: Vec<String>,
    /// Only these resources, and what they need that does not exist yet (empty: all).
    pub targets: Vec<Address>,
    pub pricing: PricingOptions,
    /// Authenticate the saved plan with this key (`FLOTILLA_PLAN_KEY`): its MAC is added
    /// to the seal, and `apply` then needs the same key.
    pub plan_key: Option<PlanKey>,
    /// Where `file:` secrets may be and how large (`--secrets-dir`, `--secret-max-bytes`).
    pub secret_files: FilePolicy,
    /// The key secret fingerprints are computed under (`FLOTILLA_FINGERPRINT_KEY`), unless
    /// the spec names its own (`fingerprint_key:`); without either, the public
    /// derivation, with a warning.
    pub fingerprint_key: Option<FingerprintKey>,
    /// A usage file overriding the spec's usage assumptions for the plan's costs
    /// (`--usage FILE`, see [`crate::cost::usage_file`]).
    pub usage: Option<PathBuf>,
    /// `--max-monthly`, `--max-increase` (over the current fleet) and `--deny-destroy`:
    /// checked after planning; an exceeded guardrail is in [`Outcome::verdict`].
    pub guardrails: crate::cost::PlanGuardrails,
    /// Read Fly's regional capacity when the plan creates at least this many Machines in
    /// a region (`--capacity-threshold`; live targets only).
    pub capacity_threshold: crate::plan::capacity::Threshold,
}

/// Where the observed state came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Nothing was named: an empty organization.
    Empty,
    /// A state file.
    State(PathBuf),
    /// A live API: `sim:PATH` or `api:URL`.
    Live(String),
}

impl Source {
    /// How saved plans record it: `empty`, `state:FILE`, `sim:PATH`, `api:URL`.
    pub fn label(&self) -> String {
        match self {
            Source::Empty => "empty".to_string(),
            Source::State(p) => format!("state:{}", p.display()),
            Source::Live(s) => s.clone(),
        }
    }
}

/// A plan and what it was made from.
pub struct Outcome {
    /// The plan document (what `--format json` prints); without the desired state.
    pub document: PlanDocument,
    /// The desired state planned, with secret fingerprints when values were available.
    pub desired: Desired,
    /// The interpreted observed state.
    pub observed: Observed,
    pub source: Source,
    /// Where the plan was saved, when `out` was given and the plan exceeds no guardrail
    /// (an exceeding plan is not written; a file already at `out` is left as it was).
    pub saved: Option<PathBuf>,
    /// The spec's warnings (shown first).
    pub spec_warnings: Diagnostics,
    /// Warnings of planning (secret values, prices), and errors that did not stop it.
    pub diagnostics: Diagnostics,
    /// Set when guardrails were given.
    pub verdict: Option<crate::cost::Verdict>,
}

impl Outcome {
    /// Problems that make the plan impossible to apply.
    pub fn has_errors(&self) -> bool {
        !self.document.errors.is_empty()
    }

    pub fn has_changes(&self) -> bool {
        self.document.summary.changes() > 0
    }

    /// The reason, when a guardrail was exceeded.
    pub fn exceeded(&self) -> Option<&str> {
        match &self.verdict {
            Some(crate::cost::Verdict::Exceeded { reason }) => Some(reason),
            _ => None,
        }
    }
}

/// The plan's verdict under `guards` (none without guardrails): the cost limits against
/// the fleet's cost before and after the plan, `--deny-destroy` against its deletes and
/// replaces.
pub fn check_guardrails(
    guards: &crate::cost::PlanGuardrails,
    plan: &PlanDocument,
) -> Result<Option<crate::cost::Verdict>, Error> {
    if guards.is_empty() {
        return Ok(None);
    }
    let costs = plan
        .cost
        .as_ref()
        .map(|c| (c.monthly_before, c.monthly_after));
    let destroyed: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        .map(|c| c.address.to_string())
        .collect();
    crate::cost::check_plan(guards, costs, &destroyed)
        .map(Some)
        .map_err(|e| Error::new(e.to_diagnostic()))
}

/// The plan of `desired` against `observed`, narrowed to `tenants` and then to
/// `targets` ([`crate::plan::targets::restrict`]: an unknown address is an error), with
/// costs when prices are available (a plan without prices is still made; `diagnostics`
/// says why).
pub fn compute(
    desired: &Desired,
    observed: &Observed,
    (tenants, targets): (&[String], &[Address]),
    pricing: &PricingOptions,
    diagnostics: &mut Diagnostics,
) -> Result<Plan, Error> {
    let mut plan = crate::plan::plan(desired, observed, tenants);
    crate::plan::targets::restrict(&mut plan, &desired.resources, &observed.resources, targets)
        .map_err(|d| Error::from(Diagnostics(d)))?;
    for w in crate::apply::removal::snapshot_loss_warnings(&plan.changes) {
        diagnostics.push(w);
    }
    let without_costs = Diagnostic::warning("the plan is shown without costs");
    match pricing.table() {
        Ok(table) => {
            let app = crate::apply::lock::sentinel_app(&desired.org, &desired.fleet);
            let lock = crate::cost::FleetLock {
                app: &app,
                exists: observed.fleet_lock,
            };
            if let Err(e) = crate::cost::annotate_plan_with(
                &mut plan,
                &table,
                desired,
                &observed.resources,
                Some(lock),
            ) {
                diagnostics.extend(e.to_diagnostics());
                diagnostics.push(without_costs.hint("fix the errors above"));
            }
        }
        Err(e) => {
            diagnostics.extend(e.diagnostics);
            diagnostics.push(without_costs);
        }
    }
    Ok(plan)
}

/// Reads an observed-state file.
pub fn load_state(path: &Path) -> Result<Snapshot, Diagnostic> {
    let file = path.display().to_string();
    let bytes = crate::spec::read_input(path, &crate::spec::InputFile::STATE)
        .map_err(|d| d.file(file.clone()))?;
    if let Some(d) = crate::spec::yaml::control_char_problem(&bytes) {
        return Err(d.file(file));
    }
    Snapshot::from_json(&bytes, &file)
}

/// Refuses an observed state of another organization.
pub fn check_org(snapshot: &Snapshot, desired: &Desired) -> Result<(), Error> {
    if snapshot.org == desired.org {
        return Ok(());
    }
    Err(Error::new(
        Diagnostic::error(format!(
            "the observed state is of org `{}` but the spec declares org `{}`",
            snapshot.org, desired.org
        ))
        .hint("observe the spec's organization, or fix `org:` in the spec"),
    ))
}

/// The observed state, where it came from, and the secret values when a live target
/// was observed and they are available.
struct Observation {
    snapshot: Snapshot,
    source: Source,
    values: Option<(SecretValues, Keying)>,
    /// The live target, kept for the pre-flight capacity read after the diff.
    session: Option<Session>,
}

fn observe(
    opts: &Options,
    desired: &Desired,
    dir: &Path,
    diagnostics: &mut Diagnostics,
) -> Result<Observation, Error> {
    if let Some(p) = &opts.state {
        return Ok(Observation {
            snapshot: load_state(p)?,
            source: Source::State(p.clone()),
            values: None,
            session: None,
        });
    }
    if !opts.target.is_live() {
        return Ok(Observation {
            snapshot: Snapshot::empty(&desired.org),
            source: Source::Empty,
            values: None,
            session: None,
        });
    }
    let session = Session::connect(&opts.target)?;
    let snapshot = session.observe(desired)?;
    let source = session.target().source.clone();
    // Secret values, when available, let the plan show value changes.
    let keying = fingerprint_keying(
        desired,
        dir,
        &opts.secret_files,
        opts.fingerprint_key.as_ref(),
        opts.target.placeholders(),
    );
    let scope = crate::ops::target::secrets_scope(desired, &opts.tenants);
    let values = match (
        secret_values(&scope, dir, &opts.secret_files, opts.target.placeholders()),
        keying,
    ) {
        (Ok((v, warnings)), Ok((keying, key_warnings))) => {
            diagnostics.extend(warnings);
            diagnostics.extend(key_warnings);
            Some((v, keying))
        }
        (Ok(_), Err(d)) => {
            for mut e in d.0 {
                e.severity = crate::diag::Severity::Warning;
                diagnostics.push(e);
            }
            diagnostics.push(
                Diagnostic::warning(
                    "without the fingerprint key, changes to secret values are not shown",
                )
                .hint("apply needs the key; export it to see value changes in the plan"),
            );
            None
        }
        (Err(d), _) => {
            diagnostics.push(
                Diagnostic::warning(format!(
                    "secret values are not available ({} missing): changes to them are not shown",
                    d.error_count()
                ))
                .hint("apply reads them; export them to see value changes in the plan"),
            );
            None
        }
    };
    Ok(Observation {
        snapshot,
        source: Source::Live(source),
        values,
        session: Some(session),
    })
}

/// Writes the observed state as JSON (the format `--state` reads), redacted as
/// [`redacted_state`] says.
pub fn write_state(snapshot: &Snapshot, desired: &Desired, path: &Path) -> Result<(), Error> {
    let shown = redacted_state(snapshot, desired);
    let json = crate::ops::to_json_pretty(&shown, "the observed state")?;
    std::fs::write(path, json).map_err(|e| {
        Error::new(Diagnostic::error(format!(
            "cannot write {}: {e}",
            path.display()
        )))
    })
}

/// The observed state as `--show-state` writes it: like a plan, it shows a live env or
/// metadata value only when the spec declares that key for the app and the value does
/// not look like a credential (else [`crate::plan::HIDDEN_VALUE`]); recorded secret
/// fingerprints keep their names only; any other string in a Machine's config that looks
/// like a credential (a file's `raw_value`, a process's env) is redacted. Planning
/// against the file gives the same plan, since a plan never shows what is hidden here.
pub fn redacted_state(snapshot: &Snapshot, desired: &Desired) -> Snapshot {
    use std::collections::{HashMap, HashSet};
    let mut declared: HashMap<&str, (HashSet<&str>, HashSet<&str>)> = HashMap::new();
    for r in desired.resources.iter() {
        if let Some(m) = r.machine() {
            let e = declared.entry(r.app.as_str()).or_default();
            e.0.extend(m.env.keys().map(String::as_str));
            e.1.extend(m.metadata.keys().map(String::as_str));
        }
    }
    let none = (HashSet::new(), HashSet::new());
    let shown = |map: &mut crate::resource::StrMap, keys: &HashSet<&str>, own: bool| {
        for (k, v) in map.iter_mut() {
            if k == crate::resource::META_SECRETS {
                *v = hidden_fingerprints(v);
                continue;
            }
            let ours = own && k.starts_with("flotilla_");
            let declared = ours || keys.contains(k.as_str());
            if !declared || crate::spec::credentials::looks_like_credential(v, Some(k)).is_some() {
                *v = crate::plan::HIDDEN_VALUE.to_string();
            }
        }
    };
    let mut out = snapshot.clone();
    for app in &mut out.apps {
        let (env, meta) = declared.get(app.app.name.as_str()).unwrap_or(&none);
        for m in &mut app.machines {
            shown(&mut m.config.env, env, false);
            shown(&mut m.config.metadata, meta, true);
            for v in m.config.extra.values_mut() {
                redact_json(v);
            }
        }
    }
    out
}

/// `NAME:fp,…` with every fingerprint replaced: names stay (they say which secrets are
/// flotilla's), fingerprints are never written.
fn hidden_fingerprints(list: &str) -> String {
    list.split(',')
        .map(|item| match item.split_once(':') {
            Some((name, _)) => format!("{name}:hidden"),
            None => item.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Redacts every credential-shaped string inside a JSON value.
fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) => {
            if let std::borrow::Cow::Owned(r) = crate::spec::credentials::redact(s) {
                *s = r;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// `plan SPEC`.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    let mut loaded = load_spec_checked(&opts.spec, &opts.secret_files)?;
    if let Some(path) = &opts.usage {
        let usage = crate::ops::cost::read_usage_file(path)?;
        usage.check(&loaded.desired)?;
        usage.apply(&mut loaded.desired);
    }
    let spec_warnings = loaded.warnings;
    let mut diagnostics = Diagnostics::new();
    let planned = (|| {
        if opts.state.is_none() && opts.target.is_live() {
            let selected = crate::plan::filter_tenants(&loaded.desired.resources, &opts.tenants);
            crate::ops::check_current_regions(&selected, &loaded.file)?;
        }
        let seen = observe(opts, &loaded.desired, &loaded.dir, &mut diagnostics)?;
        if let Some(path) = &opts.show_state {
            write_state(&seen.snapshot, &loaded.desired, path)?;
        }
        check_org(&seen.snapshot, &loaded.desired)?;
        Ok(seen)
    })();
    let seen = planned.map_err(|e: Error| e.after(&diagnostics).after(&spec_warnings))?;
    let mut desired = loaded.desired;
    if let Some((v, keying)) = &seen.values {
        crate::secrets::apply_fingerprints(&mut desired, v, keying);
    }
    crate::plan::names::keep_observed_volume_names(&mut desired, &seen.snapshot);
    let observed = interpret(&seen.snapshot, &desired);
    // A tenant removed from the spec is a valid target while its resources exist.
    check_tenants_observed(&desired, &observed, &opts.tenants, Some(&opts.spec))
        .map_err(|e| e.after(&diagnostics).after(&spec_warnings))?;
    let plan = compute(
        &desired,
        &observed,
        (&opts.tenants, &opts.targets),
        &opts.pricing,
        &mut diagnostics,
    )
    .map_err(|e| e.after(&diagnostics).after(&spec_warnings))?;
    let capacity = match &seen.session {
        Some(session) => crate::ops::preflight::check(
            session,
            &plan,
            &desired.resources,
            opts.capacity_threshold,
            opts.target.debug,
        ),
        None => Vec::new(),
    };
    let source = seen.source.label();
    let meta = PlanMeta {
        org: &desired.org,
        spec_file: &loaded.file,
        spec_hash: &loaded.spec_hash,
        observed_fingerprint: &observed.fingerprint,
        observed_source: &source,
        tenants: &opts.tenants,
        created_at: chrono::Utc::now(),
    };
    let mut document = PlanDocument::new(plan, &meta, &observed.unmanaged, None);
    document.targets = opts.targets.clone();
    document.capacity = capacity;
    let verdict = check_guardrails(&opts.guardrails, &document)
        .map_err(|e| e.after(&diagnostics).after(&spec_warnings))?;
    // A plan that exceeds a guardrail is not saved: `apply PLAN` would carry it out
    // without the guardrail being checked again.
    let exceeded = matches!(verdict, Some(crate::cost::Verdict::Exceeded { .. }));
    let saved = opts.out.clone().filter(|_| !exceeded);
    if let Some(out) = &saved {
        // A saved plan carries the (narrowed) desired state that `apply` will execute.
        // Fingerprints stay out of it: `apply` computes them again from the values.
        let mut saved_set = crate::plan::filter_tenants(&desired.resources, &opts.tenants);
        crate::secrets::strip_fingerprints(&mut saved_set);
        document.desired = Some(saved_set);
        document.fingerprint_key = desired.fingerprint_key.clone();
        document.removal_export = desired.removal_export.clone();
        let saved = document.save_with(out, opts.plan_key.as_ref());
        document.desired = None;
        document.fingerprint_key = None;
        document.removal_export = None;
        saved.map_err(|d| Error::new(d).after(&diagnostics).after(&spec_warnings))?;
    }
    Ok(Outcome {
        document,
        desired,
        observed,
        source: seen.source,
        saved,
        spec_warnings,
        diagnostics,
        verdict,
    })
}
