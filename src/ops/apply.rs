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
//!
//! Between connecting and observing, `prepare` takes the fleet lock
//! ([`crate::apply::lock`]): a Machine lease on the fleet's sentinel, renewed in the
//! background and handed back when the apply ends (or the [`Prepared`] is dropped), so
//! two applies of one fleet never plan from the same observation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::apply::exec::{ExecOptions, Shared};
use crate::apply::journal::Journal;
use crate::apply::lock::{FleetLock, LockError, LockOptions};
use crate::apply::ops::{BuildOptions, Op, OpKind, Refusal};
use crate::apply::progress::{Abandoned, Progress, watch_ctrl_c};
use crate::apply::{DEFAULT_CONCURRENCY, DEFAULT_WAIT, DEFAULT_WAVE_SIZE, Summary};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ops::pricing::PricingOptions;
use crate::ops::target::{Session, TargetOptions, fingerprint_keying, secret_values};
use crate::ops::{Error, check_tenants, check_tenants_observed, load_spec_checked};
use crate::plan::Plan;
use crate::plan::rollout::{self, Decision};
use crate::plan::saved::{Authenticity, PlanDocument, PlanKey, PlanMeta};
use crate::resource::{Address, Desired, ResourceSet};
use crate::secret_files::FilePolicy;
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
    /// Only these resources and what they need that does not exist yet (empty: a saved
    /// plan's own, else all).
    pub targets: Vec<Address>,
    /// Allow deleting managed resources that are no longer declared.
    pub allow_destroy: bool,
    /// Allow destroying volumes (and their data).
    pub allow_data_loss: bool,
    /// Roll restarting updates out to this many tenants first.
    pub canary: usize,
    /// After the canary, at most this many tenants per wave (0: one wave; default
    /// [`DEFAULT_WAVE_SIZE`]).
    pub max_parallel_updates: usize,
    /// The canary wave chosen by tenant name, tier or Machine label (empty: the first
    /// `canary` tenants in spec order).
    pub canary_tenants: CanaryChoice,
    /// What to do with a rollout that stopped after a failed wave.
    pub rollout: Decision,
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
    /// Where `file:` secrets may be and how large (`--secrets-dir`, `--secret-max-bytes`).
    pub secret_files: FilePolicy,
    /// The fleet lock (`None`: apply without it — only for an org nobody else applies
    /// to).
    pub lock: Option<LockOptions>,
    /// The key secret fingerprints are computed under (`FLOTILLA_FINGERPRINT_KEY`), unless
    /// the spec (or saved plan) names its own; see [`crate::ops::plan::Options`].
    pub fingerprint_key: Option<FingerprintKey>,
    /// The pre-flight capacity check's threshold (see [`crate::ops::plan::Options`]).
    pub capacity_threshold: crate::plan::capacity::Threshold,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            input: PathBuf::new(),
            target: TargetOptions::default(),
            tenants: Vec::new(),
            targets: Vec::new(),
            allow_destroy: false,
            allow_data_loss: false,
            canary: 0,
            max_parallel_updates: DEFAULT_WAVE_SIZE,
            canary_tenants: CanaryChoice::default(),
            rollout: Decision::None,
            concurrency: DEFAULT_CONCURRENCY,
            journal: None,
            wait_timeout: DEFAULT_WAIT,
            pricing: PricingOptions::default(),
            quiet: false,
            progress_bar: false,
            handle_ctrl_c: false,
            plan_key: None,
            secret_files: FilePolicy::default(),
            lock: Some(LockOptions::default()),
            fingerprint_key: None,
            capacity_threshold: Default::default(),
        }
    }
}

/// The tenants of the canary wave, chosen by name, tier or a label their Machines carry
/// (together: the union).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CanaryChoice {
    pub tenants: Vec<String>,
    pub tier: Option<String>,
    /// `(key, value)` of a Machine metadata label.
    pub label: Option<(String, String)>,
}

impl CanaryChoice {
    fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.tier.is_none() && self.label.is_none()
    }

    /// The chosen tenants in spec order; a named tenant or a tier the spec does not
    /// declare, or a choice that selects nobody, is an error.
    fn resolve(&self, desired: &Desired) -> Result<Vec<String>, Error> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        check_tenants(desired, &self.tenants, None)?;
        if let Some(t) = &self.tier
            && !desired.tenants.iter().any(|i| i.tier.as_ref() == Some(t))
        {
            return Err(Error::new(
                Diagnostic::error(format!(
                    "--canary-tier {t}: no tenant of the spec has this tier"
                ))
                .hint("name a tier the spec's tenants use"),
            ));
        }
        let labelled = |tenant: &str| {
            self.label.as_ref().is_some_and(|(k, v)| {
                desired.resources.iter().any(|r| {
                    r.tenant.as_deref() == Some(tenant)
                        && r.machine().is_some_and(|m| m.metadata.get(k) == Some(v))
                })
            })
        };
        let chosen: Vec<String> = desired
            .tenants
            .iter()
            .filter(|i| {
                self.tenants.contains(&i.name)
                    || (self.tier.is_some() && i.tier == self.tier)
                    || labelled(&i.name)
            })
            .map(|i| i.name.clone())
            .collect();
        if chosen.is_empty() {
            return Err(Error::new(
                Diagnostic::error("the canary choice selects no tenant")
                    .hint("check --canary-label KEY=VALUE against the spec's metadata"),
            ));
        }
        Ok(chosen)
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

fn read_input(path: &Path, key: Option<&PlanKey>, files: &FilePolicy) -> Result<Input, Error> {
    if is_plan_file(path) {
        let (doc, warnings) = load_saved(path, key)?;
        let mut desired = doc.desired_state();
        crate::machine_files::fill_saved(&mut desired, &doc.spec_file, &doc.spec_hash, files)
            .map_err(|d| Error::invalid(&path.display().to_string(), d))?;
        return Ok(Input {
            desired,
            spec_file: doc.spec_file.clone(),
            spec_hash: doc.spec_hash.clone(),
            dir: doc.spec_dir(),
            saved: Some(doc),
            warnings,
        });
    }
    let l = load_spec_checked(path, files)?;
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
    /// The spec's directory (where `file:` references are).
    dir: PathBuf,
    step: Step,
    from_saved_plan: bool,
    opts: Options,
    /// Declared before the session: released while its runtime still runs.
    lock: Option<FleetLock>,
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
    let input = read_input(&opts.input, opts.plan_key.as_ref(), &opts.secret_files)?;
    let warnings = input.warnings.clone();
    // Before connecting: nothing can be created in a region Fly removed (among the
    // selected tenants' resources).
    let tenants = match &input.saved {
        Some(doc) if opts.tenants.is_empty() => &doc.tenants,
        _ => &opts.tenants,
    };
    let selected = crate::plan::filter_tenants(&input.desired.resources, tenants);
    crate::ops::check_current_regions(&selected, &opts.input.display().to_string())
        .map_err(|e| e.after(&warnings))?;
    plan_input(opts, input).map_err(|e| e.after(&warnings))
}

fn plan_input(opts: &Options, input: Input) -> Result<Prepared, Error> {
    let tenants: Vec<String> = match &input.saved {
        Some(doc) if opts.tenants.is_empty() => doc.tenants.clone(),
        _ => opts.tenants.clone(),
    };
    let targets: Vec<Address> = match &input.saved {
        Some(doc) if opts.targets.is_empty() => doc.targets.clone(),
        _ => opts.targets.clone(),
    };
    let session = Session::connect(&opts.target)?;
    let mut desired = input.desired;
    let lock = take_lock(&session, &desired, opts)?;
    let snapshot = session.observe(&desired)?;
    crate::plan::names::keep_observed_volume_names(&mut desired, &snapshot);
    // `interpret` reads the desired state's addresses, names and placement, not the
    // secret fingerprints `apply_fingerprints` adds below: one interpretation serves both
    // the staleness check and the plan.
    let observed = interpret(&snapshot, &desired);
    // A tenant removed from the spec is a valid target while its resources exist.
    check_tenants_observed(&desired, &observed, &tenants, None)?;
    if let Some(doc) = &input.saved {
        check_fresh(doc, &observed, &opts.input)?;
    }
    let canary_tenants = opts.canary_tenants.resolve(&desired)?;
    if opts.rollout == Decision::Rollback {
        roll_back(&mut desired, &observed, input.saved.is_some())?;
    }
    // Only the selected tenants' secret values are read (and must be set).
    let scope = crate::ops::target::secrets_scope(&desired, &tenants);
    let (values, mut diagnostics) = secret_values(
        &scope,
        &input.dir,
        &opts.secret_files,
        opts.target.placeholders(),
    )
    .map_err(Error::from)?;
    let (keying, key_warnings) = fingerprint_keying(
        &desired,
        &input.dir,
        &opts.secret_files,
        opts.fingerprint_key.as_ref(),
        opts.target.placeholders(),
    )
    .map_err(Error::from)?;
    diagnostics.extend(key_warnings);
    crate::secrets::apply_fingerprints(&mut desired, &values, &keying);
    let plan = crate::ops::plan::compute(
        &desired,
        &observed,
        (&tenants, &targets),
        &opts.pricing,
        &mut diagnostics,
    )?;
    let meta = PlanMeta {
        org: &desired.org,
        spec_file: &input.spec_file,
        spec_hash: &input.spec_hash,
        observed_fingerprint: &observed.fingerprint,
        observed_source: &session.target().source,
        tenants: &tenants,
        created_at: chrono::Utc::now(),
    };
    let mut document = PlanDocument::new(plan.clone(), &meta, &observed.unmanaged, None);
    document.targets = targets;
    document.capacity = crate::ops::preflight::check(
        &session,
        &plan,
        &desired.resources,
        opts.capacity_threshold,
        opts.target.debug,
    );
    let mut narrowed = crate::plan::filter_tenants(&desired.resources, &tenants);
    let step = decide(&plan, &narrowed, &observed, opts, canary_tenants);
    if let Step::Ready(ops) = &step {
        rollout::annotate(
            &mut narrowed,
            &plan,
            &observed,
            &waves_of(ops),
            opts.rollout,
        );
    }
    Ok(Prepared {
        document,
        desired,
        spec_warnings: input.warnings,
        diagnostics,
        plan,
        observed,
        narrowed,
        values,
        dir: input.dir,
        step,
        from_saved_plan: input.saved.is_some(),
        opts: opts.clone(),
        lock,
        session,
    })
}

/// Takes the fleet lock (when `opts.lock` asks for it), telling the user whom it waits
/// for unless quiet.
fn take_lock(
    session: &Session,
    desired: &Desired,
    opts: &Options,
) -> Result<Option<FleetLock>, Error> {
    let Some(lock_opts) = &opts.lock else {
        return Ok(None);
    };
    let client = &session.target().client;
    let fleet = desired.fleet.as_str();
    let quiet = opts.quiet;
    let waiting = |by: &crate::apply::lock::HeldBy| {
        if !quiet {
            crate::apply::progress::notice(&format!(
                "Waiting for the lock of fleet `{fleet}` (up to {} s): held by {by}",
                lock_opts.timeout.as_secs()
            ));
        }
    };
    session
        .block_on(FleetLock::acquire(
            client,
            &desired.org,
            fleet,
            lock_opts,
            &waiting,
        ))
        .map(Some)
        .map_err(|e| lock_error(e, &desired.org, fleet, lock_opts, &session.target().source))
}

pub(crate) fn lock_error(
    e: LockError,
    org: &str,
    fleet: &str,
    opts: &LockOptions,
    source: &str,
) -> Error {
    let app = crate::apply::lock::sentinel_app(org, fleet);
    let d = match e {
        LockError::Org(e) => crate::ops::target::observe_error(org, source, &e),
        LockError::Held { by, waited } => Diagnostic::error(format!(
            "fleet `{fleet}` in org {org} is locked by another apply (waited {} s): held by {by}",
            waited.as_secs()
        ))
        .hint(format!(
            "wait for it to finish, or pass --lock-timeout SECS to wait longer; if that apply is gone, the lock expires {} s after it stopped renewing, or clear it with `flotilla unlock SPEC`",
            opts.ttl.as_secs()
        )),
        LockError::Foreign { app } => Diagnostic::error(format!(
            "the fleet lock's app name {app} is taken by another organization"
        ))
        .hint("set a different `fleet:` name in the spec"),
        LockError::Api(e) => Diagnostic::error(format!("cannot take the fleet lock (app {app}): {e}"))
            .hint("check the token's access to the org; `flotilla plan` needs no lock"),
    };
    Error::new(d).with_summary("Nothing was changed.")
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

fn decide(
    plan: &Plan,
    narrowed: &ResourceSet,
    observed: &Observed,
    opts: &Options,
    canary_tenants: Vec<String>,
) -> Step {
    if !plan.errors.is_empty() {
        return Step::PlanErrors;
    }
    if !plan.has_changes() {
        return Step::NothingToDo;
    }
    let stopped = rollout::stopped(observed, narrowed);
    let held: Vec<Refusal> = rollout::refusals(plan, narrowed, &stopped, opts.rollout)
        .into_iter()
        .map(|(address, reason)| Refusal { address, reason })
        .collect();
    if !held.is_empty() {
        return Step::Refused(held);
    }
    let build = BuildOptions {
        allow_destroy: opts.allow_destroy,
        allow_data_loss: opts.allow_data_loss,
        canary: opts.canary,
        max_parallel_updates: opts.max_parallel_updates,
        canary_tenants,
    };
    match crate::apply::ops::build(plan, narrowed, observed, &build) {
        Ok(ops) => Step::Ready(ops),
        Err(refusals) => Step::Refused(refusals),
    }
}

/// `--rollback`: the Machines of stopped or finished rollouts go back to the version
/// they ran before, and nothing else changes image. Refused for a saved plan (its
/// reviewed content would change) and when no Machine records a rollout to undo.
fn roll_back(desired: &mut Desired, observed: &Observed, saved: bool) -> Result<(), Error> {
    if saved {
        return Err(Error::new(
            Diagnostic::error("--rollback applies to a spec, not to a saved plan")
                .hint("run `flotilla apply SPEC --rollback`, or plan the rollback with the previous image in the spec"),
        ));
    }
    if rollout::rollback_desired(&mut desired.resources, observed).is_empty() {
        return Err(Error::new(
            Diagnostic::error("--rollback: no Machine records a rollout to undo")
                .hint("a rollout is recorded in the metadata of the Machines it updated (flotilla_rollout)"),
        ));
    }
    Ok(())
}

/// The rollout wave of each restarting Machine update.
fn waves_of(ops: &[Op]) -> std::collections::HashMap<crate::resource::Address, Option<usize>> {
    ops.iter()
        .filter(|o| {
            matches!(
                o.kind,
                crate::apply::ops::OpKind::UpdateMachine { restart: true, .. }
            )
        })
        .map(|o| (o.address.clone(), o.wave))
        .collect()
}

/// What an executed apply did.
#[derive(Debug, Clone)]
pub struct Report {
    pub summary: Summary,
    /// The journal written.
    pub journal: PathBuf,
    /// Problems after the operations ran (e.g. the journal's last record).
    pub diagnostics: Diagnostics,
    /// When the apply changed IP addresses or certificates: the hostnames it created
    /// or whose certificate is not issued, with their DNS records (else empty).
    pub dns: Vec<crate::ops::dns::HostDns>,
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
                    dns: Vec::new(),
                });
            }
        };
        let run = crate::apply::run_id();
        let journal_path = self
            .opts
            .journal
            .clone()
            .unwrap_or_else(|| crate::apply::default_journal(&run));
        let target = &self.session.target().source;
        let header = serde_json::json!({"org": self.desired.org, "target": target, "spec": self.document.spec_file, "operations": ops.len()});
        let journal = Journal::start(&journal_path, &run, header).map_err(|e| {
            Error::new(Diagnostic::error(e).hint(
                "nothing was changed; pass --journal PATH to a writable file (the journal records every operation)",
            ))
        })?;
        let journal_failure = journal.failures();
        let values = std::mem::take(&mut self.values);
        let removed = crate::apply::removal::deleted_apps(&ops);
        let mut diagnostics = self.session.block_on(self.mark_removals(&ops));
        let summary = self
            .session
            .block_on(self.run_ops(ops, values, journal, &journal_path));
        let dns = match self.session.block_on(self.dns_after()) {
            Ok(d) => d,
            Err(d) => {
                diagnostics.push(d);
                Vec::new()
            }
        };
        diagnostics.extend(self.session.block_on(self.unmark_removals(&removed)));
        if let Some(e) = journal_failure.get() {
            diagnostics.extend(self.release_lock());
            return Err(Error::new(Diagnostic::error(e).hint(
                "the apply stopped: no operation was started after the failure (those in flight finished); fix the journal's disk and run apply again to converge",
            )));
        }
        diagnostics.extend(record_finish(&journal_path, &run, &summary));
        diagnostics.extend(self.release_lock());
        Ok(Report {
            summary,
            journal: journal_path,
            diagnostics,
            dns,
        })
    }

    /// After a plan that changed IP addresses or certificates: the hostnames it created
    /// and those whose certificate is not issued, read back with their DNS records.
    async fn dns_after(&self) -> Result<Vec<crate::ops::dns::HostDns>, Diagnostic> {
        use crate::resource::Kind;
        let networking = |c: &&crate::plan::Change| matches!(c.kind, Kind::Ip | Kind::Certificate);
        if !self.plan.actionable().any(|c| networking(&c)) {
            return Ok(Vec::new());
        }
        let created: std::collections::HashSet<&crate::resource::Address> = self
            .plan
            .actionable()
            .filter(|c| c.kind == Kind::Certificate && c.action == crate::plan::Action::Create)
            .map(|c| &c.address)
            .collect();
        let declared = crate::ops::dns::declared(&self.narrowed, &[]);
        let client = &self.session.target().client;
        let hosts = crate::ops::dns::read(client, &declared)
            .await
            .map_err(|e| {
                Diagnostic::warning(format!("cannot read the hostnames' DNS records back: {e}"))
                    .hint("`flotilla dns SPEC` lists them")
            })?;
        Ok(hosts
            .into_iter()
            .filter(|h| {
                created.contains(&h.address) || h.status != crate::ops::dns::HostStatus::Issued
            })
            .collect())
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
        // A lost fleet lock stops new operations, like Ctrl-C and a journal failure.
        let cancel = match &self.lock {
            Some(l) => l.lost(),
            None => Arc::new(AtomicBool::new(false)),
        };
        journal.stop_on_failure(Arc::clone(&cancel));
        let watcher = self.opts.handle_ctrl_c.then(|| {
            let abandoned = Abandoned {
                journal: journal_path.to_path_buf(),
                lock_ttl: self
                    .lock
                    .as_ref()
                    .and(self.opts.lock.as_ref())
                    .map(|l| l.ttl),
            };
            tokio::spawn(watch_ctrl_c(Arc::clone(&cancel), abandoned))
        });
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
        )
        .with_removal_exports(self.removal_exports(&ops));
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

impl Prepared {
    /// The export credentials of the tenants `ops` export before removing them, read now
    /// (a missing one fails that tenant's export, and so keeps the tenant).
    fn removal_exports(&self, ops: &[Op]) -> crate::apply::exec::RemovalExports {
        let mut out = crate::apply::exec::RemovalExports {
            fleet: self.desired.fleet.clone(),
            ..Default::default()
        };
        for op in ops {
            if let OpKind::ExportVolumes { tenant, config, .. } = &op.kind {
                let creds = crate::ops::backup::Credentials::read(
                    config,
                    &self.dir,
                    &self.opts.secret_files,
                );
                out.credentials.insert(tenant.clone(), creds);
            }
        }
        out
    }

    /// Marks the apps to delete on the fleet's sentinel before anything is destroyed
    /// (`apply::removal`); without the mark an interrupted removal would leave leftovers
    /// no plan shows, so a failure is reported.
    async fn mark_removals(&self, ops: &[Op]) -> Diagnostics {
        let Some(lock) = &self.lock else {
            return Diagnostics::new();
        };
        let declared: std::collections::HashSet<String> =
            self.desired.apps.iter().cloned().collect();
        let client = &self.session.target().client;
        let mut out = Diagnostics::new();
        let owned = self
            .observed
            .resources
            .iter()
            .filter(|r| r.kind() == crate::resource::Kind::App)
            .map(|r| r.app.clone());
        let owned = crate::apply::removal::owned_after(owned, ops);
        if let Err(e) = crate::apply::removal::record_owned(client, lock, &owned).await {
            out.push(
                Diagnostic::warning(format!(
                    "the fleet's apps could not be recorded on its sentinel: {e}"
                ))
                .hint("another fleet whose naming produces the same app names sees them as taken only once they hold Machines"),
            );
        }
        out.extend(match crate::apply::removal::mark(client, lock, ops, &declared).await {
            Ok(()) => Diagnostics::new(),
            Err(e) => Diagnostics::one(
                Diagnostic::warning(format!(
                    "the apps being removed could not be marked on the fleet's sentinel: {e}"
                ))
                .hint("if this apply is interrupted, leftovers of those apps may not show in the next plan"),
            ),
        });
        out
    }

    async fn unmark_removals(&self, apps: &[String]) -> Diagnostics {
        let (Some(lock), false) = (&self.lock, apps.is_empty()) else {
            return Diagnostics::new();
        };
        let client = &self.session.target().client;
        match crate::apply::removal::unmark_gone(client, lock, apps).await {
            Ok(()) => Diagnostics::new(),
            Err(e) => Diagnostics::one(Diagnostic::warning(format!(
                "the removal marks on the fleet's sentinel could not be cleared: {e} (the next apply clears them)"
            ))),
        }
    }

    /// Hands the fleet lock back; a lock lost during the run (a renewal refused) is
    /// reported.
    fn release_lock(&mut self) -> Diagnostics {
        let Some(lock) = self.lock.take() else {
            return Diagnostics::new();
        };
        let mut out = Diagnostics::new();
        if let Some(reason) = lock.lost_reason() {
            out.push(
                Diagnostic::error(format!(
                    "the fleet lock was lost during the apply; no operation started after that: {reason}"
                ))
                .hint("run the apply again: it continues from what exists"),
            );
        }
        let sentinel = lock.sentinel().clone();
        if let Err(e) = self.session.block_on(lock.release()) {
            out.push(
                Diagnostic::warning(format!(
                    "the fleet lock (Machine {} in app {}) could not be handed back: {e}",
                    sentinel.machine, sentinel.app
                ))
                .hint("it expires by itself, or clear it with `flotilla unlock SPEC`"),
            );
        }
        out
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        let _ = self.release_lock();
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
    let failure = match Journal::open(path, run) {
        Ok(j) => {
            j.event("apply finished", detail);
            j.failure()
        }
        Err(e) => Some(e),
    };
    match failure {
        Some(e) => Diagnostics::one(Diagnostic::error(format!(
            "the apply summary cannot be written to the journal: {e}"
        ))),
        None => Diagnostics::new(),
    }
}
