//! `apply`: make an organization match a spec or a saved plan, in two steps so that the
//! caller can show the plan and ask before anything changes:
//!
//! 1. [`prepare`] checks a saved plan's seal and re-validates its desired state (before
//!    any request), connects, observes, refuses a stale saved plan, reads the secret
//!    values, plans (the same step as `plan`) and builds the operation graph;
//! 2. [`Prepared::readiness`] says whether there is anything to do (or why not), and
//!    [`Prepared::execute`] carries the operations out, journaled, and summarizes.
//!
//! Progress lines during execution come from `apply::progress` (off with `quiet`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::apply::exec::{ExecOptions, Shared};
use crate::apply::journal::Journal;
use crate::apply::ops::{BuildOptions, Op, Refusal};
use crate::apply::progress::{Progress, watch_ctrl_c};
use crate::apply::{DEFAULT_CONCURRENCY, DEFAULT_WAIT, Summary};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ops::pricing::PricingOptions;
use crate::ops::target::{Session, TargetOptions, fingerprint_keying, secret_values};
use crate::ops::{Error, check_tenants, load_spec};
use crate::plan::Plan;
use crate::plan::saved::{Authenticity, PlanDocument, PlanKey, PlanMeta};
use crate::resource::{Desired, ResourceSet};
use crate::secrets::{FingerprintKey, SecretValues};
use crate::state::{Observed, interpret};

/// What to apply, where, and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// A spec file, or a saved plan (`*.json`, from `plan --out`).
    pub input: PathBuf,
    /// The organization to act on (required: the simulator or an API).
    pub target: TargetOptions,
    /// Only these tenants (empty: a saved plan's own, else the whole fleet).
    pub tenants: Vec<String>,
    /// Allow deleting managed resources that are no longer declared.
    pub allow_destroy: bool,
    /// Allow destroying volumes (and their data).
    pub allow_data_loss: bool,
    /// Roll restarting updates out to this many tenants first.
    pub canary: usize,
    /// After the canary, at most this many tenants per wave (0: one wave).
    pub max_parallel_updates: usize,
    /// Operations in flight at once (default [`DEFAULT_CONCURRENCY`]; at least 1).
    pub concurrency: usize,
    /// The journal file (default `.flotilla/journal/RUN.jsonl`).
    pub journal: Option<PathBuf>,
    /// API time to wait for a Machine to start, a volume to detach or a snapshot to
    /// finish (default [`DEFAULT_WAIT`]; at least one second).
    pub wait_timeout: Duration,
    pub pricing: PricingOptions,
    /// No progress lines.
    pub quiet: bool,
    /// Show a progress bar rather than lines (stderr is a terminal).
    pub progress_bar: bool,
    /// Stop starting operations on Ctrl-C (and quit on a second one). Off by default,
    /// since it installs a process-wide signal handler.
    pub handle_ctrl_c: bool,
    /// The key saved plans are authenticated with (`FLOTILLA_PLAN_KEY`): with it, a saved
    /// plan must carry its MAC; without it, only plans without a MAC are accepted.
    pub plan_key: Option<PlanKey>,
    /// The key secret fingerprints are computed under (`FLOTILLA_FINGERPRINT_KEY`), unless
    /// the spec (or saved plan) names its own; see [`crate::ops::plan::Options`].
    pub fingerprint_key: Option<FingerprintKey>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            input: PathBuf::new(),
            target: TargetOptions::default(),
            tenants: Vec::new(),
            allow_destroy: false,
            allow_data_loss: false,
            canary: 0,
            max_parallel_updates: 0,
            concurrency: DEFAULT_CONCURRENCY,
            journal: None,
            wait_timeout: DEFAULT_WAIT,
            pricing: PricingOptions::default(),
            quiet: false,
            progress_bar: false,
            handle_ctrl_c: false,
            plan_key: None,
            fingerprint_key: None,
        }
    }
}

/// Whether a saved plan's file name is given (rather than a spec).
pub fn is_plan_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "json")
}

/// What to apply: the spec's desired state, or a saved plan's.
struct Input {
    desired: Desired,
    spec_file: String,
    spec_hash: String,
    dir: PathBuf,
    saved: Option<PlanDocument>,
    warnings: Diagnostics,
}

fn read_input(path: &Path, key: Option<&PlanKey>) -> Result<Input, Error> {
    if is_plan_file(path) {
        let (doc, warnings) = load_saved(path, key)?;
        return Ok(Input {
            desired: doc.desired_state(),
            spec_file: doc.spec_file.clone(),
            spec_hash: doc.spec_hash.clone(),
            dir: doc.spec_dir(),
            saved: Some(doc),
            warnings,
        });
    }
    let l = load_spec(path)?;
    Ok(Input {
        desired: l.desired,
        spec_file: l.file,
        spec_hash: l.spec_hash,
        dir: l.dir,
        saved: None,
        warnings: l.warnings,
    })
}

/// A saved plan whose seal holds and whose desired state passes the spec's rules, with a
/// warning when it is not authenticated.
fn load_saved(path: &Path, key: Option<&PlanKey>) -> Result<(PlanDocument, Diagnostics), Error> {
    let file = path.display().to_string();
    let (doc, authenticity) = PlanDocument::load_with(path, key)?;
    let problems = crate::plan::verify::check(&doc, path);
    if problems.has_errors() {
        let summary = format!(
            "{file} cannot be applied: {} problem(s) in the saved plan; nothing was sent.",
            problems.error_count()
        );
        return Err(Error::from(problems).with_summary(summary));
    }
    let mut warnings = Diagnostics::new();
    if authenticity == Authenticity::Unauthenticated {
        warnings.push(
            Diagnostic::warning(
                "the saved plan is not authenticated: its digest holds, but anyone can make one",
            )
            .file(file)
            .hint("set FLOTILLA_PLAN_KEY when planning and applying to authenticate saved plans"),
        );
    }
    Ok((doc, warnings))
}

/// Whether there is anything to carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The organization already matches.
    NothingToDo,
    /// This many operations are ready.
    Ready { operations: usize },
}

/// What planning decided.
enum Step {
    PlanErrors,
    NothingToDo,
    Refused(Vec<Refusal>),
    Ready(Vec<Op>),
}

/// A planned apply, connected and ready to run. Dropping it without executing shuts the
/// simulator down (saving its state); do not drop it inside async code.
pub struct Prepared {
    /// The plan document (without the desired state).
    pub document: PlanDocument,
    /// The desired state, with secret fingerprints.
    pub desired: Desired,
    /// The input's warnings (shown first).
    pub spec_warnings: Diagnostics,
    /// Warnings of planning (secret placeholders, prices).
    pub diagnostics: Diagnostics,
    plan: Plan,
    observed: Observed,
    narrowed: ResourceSet,
    values: SecretValues,
    step: Step,
    from_saved_plan: bool,
    opts: Options,
    session: Session,
}

/// Connects, observes and plans; builds the operations when there are changes.
pub fn prepare(opts: &Options) -> Result<Prepared, Error> {
    if !opts.target.is_live() {
        return Err(Error::new(
            Diagnostic::error("apply needs an organization to act on")
                .hint("use --sim for the local simulator, or set FLY_API_TOKEN (and --api or FLY_API_HOSTNAME for another endpoint)"),
        ));
    }
    let input = read_input(&opts.input, opts.plan_key.as_ref())?;
    let warnings = input.warnings.clone();
    plan_input(opts, input).map_err(|e| e.after(&warnings))
}

fn plan_input(opts: &Options, input: Input) -> Result<Prepared, Error> {
    let tenants: Vec<String> = match &input.saved {
        Some(doc) if opts.tenants.is_empty() => doc.tenants.clone(),
        _ => opts.tenants.clone(),
    };
    check_tenants(&input.desired, &tenants, None)?;
    let session = Session::connect(&opts.target)?;
    let mut desired = input.desired;
    let snapshot = session.observe(&desired)?;
    // `interpret` reads the desired state's addresses, names and placement, not the
    // secret fingerprints `apply_fingerprints` adds below: one interpretation serves both
    // the staleness check and the plan.
    let observed = interpret(&snapshot, &desired);
    if let Some(doc) = &input.saved {
        check_fresh(doc, &observed, &opts.input)?;
    }
    let (values, mut diagnostics) =
        secret_values(&desired, &input.dir, opts.target.placeholders()).map_err(Error::from)?;
    let (keying, key_warnings) = fingerprint_keying(
        &desired,
        &input.dir,
        opts.fingerprint_key.as_ref(),
        opts.target.placeholders(),
    )
    .map_err(Error::from)?;
    diagnostics.extend(key_warnings);
    crate::secrets::apply_fingerprints(&mut desired, &values, &keying);
    let plan = crate::ops::plan::compute(
        &desired,
        &observed,
        &tenants,
        &opts.pricing,
        &mut diagnostics,
    );
    let meta = PlanMeta {
        org: &desired.org,
        spec_file: &input.spec_file,
        spec_hash: &input.spec_hash,
        observed_fingerprint: &observed.fingerprint,
        observed_source: &session.target().source,
        tenants: &tenants,
        created_at: chrono::Utc::now(),
    };
    let document = PlanDocument::new(plan.clone(), &meta, &observed.unmanaged, None);
    let narrowed = crate::plan::filter_tenants(&desired.resources, &tenants);
    let step = decide(&plan, &narrowed, &observed, opts);
    Ok(Prepared {
        document,
        desired,
        spec_warnings: input.warnings,
        diagnostics,
        plan,
        observed,
        narrowed,
        values,
        step,
        from_saved_plan: input.saved.is_some(),
        opts: opts.clone(),
        session,
    })
}

/// A saved plan applies only to the org as it was when the plan was made.
fn check_fresh(doc: &PlanDocument, observed: &Observed, file: &Path) -> Result<(), Error> {
    if observed.fingerprint == doc.observed_fingerprint {
        return Ok(());
    }
    Err(Error::new(
        Diagnostic::error(format!(
            "plan is stale: org {} changed since the plan was made ({})",
            doc.org, doc.created_at
        ))
        .file(file.display().to_string())
        .hint("make a new plan (`flotilla plan SPEC --out …`) and review it"),
    ))
}

fn decide(plan: &Plan, narrowed: &ResourceSet, observed: &Observed, opts: &Options) -> Step {
    if !plan.errors.is_empty() {
        return Step::PlanErrors;
    }
    if !plan.has_changes() {
        return Step::NothingToDo;
    }
    let build = BuildOptions {
        allow_destroy: opts.allow_destroy,
        allow_data_loss: opts.allow_data_loss,
        canary: opts.canary,
        max_parallel_updates: opts.max_parallel_updates,
    };
    match crate::apply::ops::build(plan, narrowed, observed, &build) {
        Ok(ops) => Step::Ready(ops),
        Err(refusals) => Step::Refused(refusals),
    }
}

/// What an executed apply did.
#[derive(Debug, Clone)]
pub struct Report {
    pub summary: Summary,
    /// The journal written.
    pub journal: PathBuf,
    /// Problems after the operations ran (e.g. the journal's last record).
    pub diagnostics: Diagnostics,
}

impl Report {
    /// Every change carried out, nothing interrupted.
    pub fn ok(&self) -> bool {
        self.summary.ok() && !self.diagnostics.has_errors()
    }
}

impl Prepared {
    /// The organization acted on.
    pub fn org(&self) -> &str {
        &self.desired.org
    }

    /// Whether the user should confirm first: a saved plan was already reviewed.
    pub fn needs_confirmation(&self) -> bool {
        !self.from_saved_plan
    }

    /// Whether there is anything to do. A plan with errors is an error the plan document
    /// shows ([`Error::reported`]); changes that need a flag or are protected are refused.
    pub fn readiness(&self) -> Result<Readiness, Error> {
        match &self.step {
            Step::PlanErrors => Err(Error::reported()),
            Step::NothingToDo => Ok(Readiness::NothingToDo),
            Step::Ready(ops) => Ok(Readiness::Ready {
                operations: ops.len(),
            }),
            Step::Refused(refusals) => Err(refused(refusals)),
        }
    }

    /// Carries the operations out. Without operations ready (see
    /// [`Prepared::readiness`]) this returns the same as `readiness`, or an empty report.
    pub fn execute(mut self) -> Result<Report, Error> {
        let ops = match std::mem::replace(&mut self.step, Step::NothingToDo) {
            Step::Ready(ops) => ops,
            other => {
                self.step = other;
                self.readiness()?;
                return Ok(Report {
                    summary: Summary::default(),
                    journal: PathBuf::new(),
                    diagnostics: Diagnostics::new(),
                });
            }
        };
        let run = crate::apply::run_id();
        let journal_path = self
            .opts
            .journal
            .clone()
            .unwrap_or_else(|| crate::apply::default_journal(&run));
        let journal =
            Journal::open(&journal_path, &run).map_err(|e| Error::new(Diagnostic::error(e)))?;
        let values = std::mem::take(&mut self.values);
        let summary = self
            .session
            .block_on(self.run_ops(ops, values, journal, &journal_path));
        let diagnostics = record_finish(&journal_path, &run, &summary);
        Ok(Report {
            summary,
            journal: journal_path,
            diagnostics,
        })
    }

    async fn run_ops(
        &self,
        ops: Vec<Op>,
        values: SecretValues,
        journal: Journal,
        journal_path: &Path,
    ) -> Summary {
        let target = self.session.target();
        let client = &target.client;
        journal.event("apply started", serde_json::json!({"org": self.desired.org, "target": target.source, "spec": self.document.spec_file, "operations": ops.len()}));
        let cancel = Arc::new(AtomicBool::new(false));
        let watcher = self
            .opts
            .handle_ctrl_c
            .then(|| tokio::spawn(watch_ctrl_c(Arc::clone(&cancel))));
        let progress = Progress::new(ops.len(), self.opts.quiet, self.opts.progress_bar);
        if !self.opts.quiet {
            progress.note(&format!(
                "Applying {} operations ({}); journal: {}",
                ops.len(),
                crate::apply::describe_ops(&ops),
                journal_path.display()
            ));
        }
        let exec = ExecOptions {
            concurrency: self.opts.concurrency.max(1),
            wait_timeout: self.opts.wait_timeout.max(Duration::from_secs(1)),
        };
        let shared = Shared::new(
            client.clone(),
            self.desired.org.clone(),
            self.narrowed.clone(),
            self.observed.clone(),
            values,
            exec,
            Some(journal),
            Arc::clone(&cancel),
        );
        let report = crate::apply::exec::execute(shared, ops, &progress).await;
        progress.finish();
        if let Some(w) = watcher {
            w.abort();
        }
        crate::apply::summarize(
            &self.plan,
            &report,
            &self.narrowed,
            &self.observed,
            client.stats(),
        )
    }
}

/// The error for changes that need a flag or are protected.
fn refused(refusals: &[Refusal]) -> Error {
    let diags = refusals
        .iter()
        .map(|r| Diagnostic::error(r.reason.clone()).address(r.address.to_string()))
        .collect();
    Error::from(Diagnostics(diags)).with_summary(format!(
        "Nothing was changed: {} change(s) need a flag or are protected.",
        refusals.len()
    ))
}

/// Journals the summary; a summary that cannot be recorded is reported, not dropped.
fn record_finish(path: &Path, run: &str, summary: &Summary) -> Diagnostics {
    let detail = match serde_json::to_value(summary) {
        Ok(v) => v,
        Err(e) => {
            return Diagnostics::one(Diagnostic::error(format!(
                "the apply summary cannot be written to the journal {}: {e}",
                path.display()
            )));
        }
    };
    if let Ok(j) = Journal::open(path, run) {
        j.event("apply finished", detail);
    }
    Diagnostics::new()
}
