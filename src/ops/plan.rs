//! `plan`: observe (a state file, the simulator or the API, or an empty organization),
//! interpret, fingerprint secrets when their values are available, diff, price, and
//! assemble the plan document; optionally save it for `apply` and write the observed
//! state. The same planning step serves [`crate::ops::apply`].

use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use crate::ops::pricing::PricingOptions;
use crate::ops::target::{Session, TargetOptions, secret_values};
use crate::ops::{Error, check_tenants, load_spec_checked};
use crate::plan::Plan;
use crate::plan::saved::{PlanDocument, PlanKey, PlanMeta};
use crate::resource::Desired;
use crate::secret_files::FilePolicy;
use crate::secrets::SecretValues;
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
    pub pricing: PricingOptions,
    /// Authenticate the saved plan with this key (`FLOTILLA_PLAN_KEY`): its MAC is added
    /// to the seal, and `apply` then needs the same key.
    pub plan_key: Option<PlanKey>,
    /// Where `file:` secrets may be and how large (`--secrets-dir`, `--secret-max-bytes`).
    pub secret_files: FilePolicy,
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
    /// Where the plan was saved, when `out` was given.
    pub saved: Option<PathBuf>,
    /// The spec's warnings (shown first).
    pub spec_warnings: Diagnostics,
    /// Warnings of planning (secret values, prices), and errors that did not stop it.
    pub diagnostics: Diagnostics,
}

impl Outcome {
    /// Problems that make the plan impossible to apply.
    pub fn has_errors(&self) -> bool {
        !self.document.errors.is_empty()
    }

    pub fn has_changes(&self) -> bool {
        self.document.summary.changes() > 0
    }
}

/// The plan of `desired` against `observed`, with costs when prices are available (a
/// plan without prices is still made; `diagnostics` says why).
pub fn compute(
    desired: &Desired,
    observed: &Observed,
    tenants: &[String],
    pricing: &PricingOptions,
    diagnostics: &mut Diagnostics,
) -> Plan {
    let mut plan = crate::plan::plan(desired, observed, tenants);
    let without_costs = Diagnostic::warning("the plan is shown without costs");
    match pricing.table() {
        Ok(table) => {
            if let Err(e) =
                crate::cost::annotate_plan(&mut plan, &table, desired, &observed.resources)
            {
                diagnostics.extend(e.to_diagnostics());
                diagnostics.push(without_costs.hint("fix the errors above"));
            }
        }
        Err(e) => {
            diagnostics.extend(e.diagnostics);
            diagnostics.push(without_costs);
        }
    }
    plan
}

/// Reads an observed-state file.
pub fn load_state(path: &Path) -> Result<Snapshot, Diagnostic> {
    let file = path.display().to_string();
    let bytes = crate::spec::read_limited(path).map_err(|d| d.file(file.clone()))?;
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
    values: Option<SecretValues>,
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
        });
    }
    if !opts.target.is_live() {
        return Ok(Observation {
            snapshot: Snapshot::empty(&desired.org),
            source: Source::Empty,
            values: None,
        });
    }
    let (snapshot, source) = {
        let session = Session::connect(&opts.target)?;
        let snapshot = session.observe(desired)?;
        (snapshot, session.target().source.clone())
    };
    // Secret values, when available, let the plan show value changes.
    let scope = crate::ops::target::secrets_scope(desired, &opts.tenants);
    let values = match secret_values(&scope, dir, &opts.secret_files, opts.target.placeholders()) {
        Ok((v, warnings)) => {
            diagnostics.extend(warnings);
            Some(v)
        }
        Err(d) => {
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
    })
}

/// Writes the observed state as JSON (the format `--state` reads).
pub fn write_state(snapshot: &Snapshot, path: &Path) -> Result<(), Error> {
    let json = crate::ops::to_json_pretty(snapshot, "the observed state")?;
    std::fs::write(path, json).map_err(|e| {
        Error::new(Diagnostic::error(format!(
            "cannot write {}: {e}",
            path.display()
        )))
    })
}

/// `plan SPEC`.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    let loaded = load_spec_checked(&opts.spec, &opts.secret_files)?;
    let spec_warnings = loaded.warnings;
    let mut diagnostics = Diagnostics::new();
    let planned = (|| {
        check_tenants(&loaded.desired, &opts.tenants, Some(&opts.spec))?;
        let seen = observe(opts, &loaded.desired, &loaded.dir, &mut diagnostics)?;
        if let Some(path) = &opts.show_state {
            write_state(&seen.snapshot, path)?;
        }
        check_org(&seen.snapshot, &loaded.desired)?;
        Ok(seen)
    })();
    let seen = planned.map_err(|e: Error| e.after(&diagnostics).after(&spec_warnings))?;
    let mut desired = loaded.desired;
    if let Some(v) = &seen.values {
        crate::secrets::apply_fingerprints(&mut desired, v);
    }
    crate::plan::names::keep_observed_volume_names(&mut desired, &seen.snapshot);
    let observed = interpret(&seen.snapshot, &desired);
    let plan = compute(
        &desired,
        &observed,
        &opts.tenants,
        &opts.pricing,
        &mut diagnostics,
    );
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
    if let Some(out) = &opts.out {
        // A saved plan carries the (narrowed) desired state that `apply` will execute.
        document.desired = Some(crate::plan::filter_tenants(
            &desired.resources,
            &opts.tenants,
        ));
        let saved = document.save_with(out, opts.plan_key.as_ref());
        document.desired = None;
        saved.map_err(|d| Error::new(d).after(&diagnostics).after(&spec_warnings))?;
    }
    Ok(Outcome {
        document,
        desired,
        observed,
        source: seen.source,
        saved: opts.out.clone(),
        spec_warnings,
        diagnostics,
    })
}
