//! `flotilla apply SPEC|PLANFILE`: make the organization match.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;

use super::common::{eprint_diag, eprint_diags, load_spec, print_out};
use crate::apply::exec::{ExecOptions, Shared};
use crate::apply::journal::Journal;
use crate::apply::ops::BuildOptions;
use crate::apply::progress::Progress;
use crate::diag::{Diagnostic, suggest};
use crate::plan::saved::{PlanDocument, PlanMeta};
use crate::render::{Style, plan_text};
use crate::resource::Desired;
use crate::state::interpret;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla apply specs/jarvis.yaml --sim --yes          # against the local simulator
  FLY_API_TOKEN=... flotilla apply specs/jarvis.yaml     # against Fly, asks to confirm
  flotilla plan specs/jarvis.yaml --out plans/jarvis.plan.json && flotilla apply plans/jarvis.plan.json
  flotilla apply specs/jarvis.yaml --canary 2 --max-parallel-updates 5   # roll an image out in waves
  flotilla apply specs/jarvis.yaml --allow-destroy --allow-data-loss     # allow deletes and volume loss

An apply re-observes the organization, plans, and carries the plan out: it is safe to run
again after any failure or interruption — it continues from what exists.")]
pub struct ApplyArgs {
    /// A spec file, or a saved plan (`*.plan.json`, from `flotilla plan --out`).
    #[arg(value_name = "SPEC|PLANFILE")]
    pub input: PathBuf,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Operations in flight at once.
    #[arg(long, value_name = "N", default_value_t = crate::apply::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Allow deleting managed resources that are no longer declared.
    #[arg(long)]
    pub allow_destroy: bool,
    /// Allow destroying volumes (and their data); a snapshot is taken first when the
    /// volume's backups say so (the default).
    #[arg(long)]
    pub allow_data_loss: bool,
    /// Roll restarting updates out to N tenants first, check them, then the rest.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub canary: usize,
    /// After the canary, update at most N tenants per wave (0: all in one wave).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_parallel_updates: usize,
    /// Only these tenants (repeatable).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    /// The journal file (JSON lines; default .flotilla/journal/RUN.jsonl).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Seconds (of API time) to wait for a Machine to start, a volume to detach or a
    /// snapshot to finish.
    #[arg(long, value_name = "SECS", default_value_t = crate::apply::DEFAULT_WAIT.as_secs())]
    pub wait_timeout: u64,
    /// Print the summary as JSON on stdout (after the plan).
    #[arg(long)]
    pub json_summary: bool,
    /// No progress lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Never colour the output.
    #[arg(long)]
    pub no_color: bool,
    #[command(flatten)]
    pub pricing: super::pricing::PricingOpts,
}

/// What to apply: the spec's desired state, or a saved plan's.
struct Input {
    desired: Desired,
    spec_file: String,
    spec_hash: String,
    dir: PathBuf,
    saved: Option<PlanDocument>,
}

fn is_plan_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "json")
}

fn read_input(args: &ApplyArgs) -> Result<Input, i32> {
    if is_plan_file(&args.input) {
        let doc = PlanDocument::load(&args.input).map_err(|d| {
            eprint_diag(&d);
            super::EXIT_ERROR
        })?;
        let set = doc.desired.clone().unwrap_or_default();
        let dir = Path::new(&doc.spec_file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(Input {
            desired: Desired::from_resources(&doc.org, set),
            spec_file: doc.spec_file.clone(),
            spec_hash: doc.spec_hash.clone(),
            dir,
            saved: Some(doc),
        })
    } else {
        let l = load_spec(&args.input)?;
        Ok(Input {
            desired: l.desired,
            spec_file: l.file,
            spec_hash: l.spec_hash,
            dir: l.dir,
            saved: None,
        })
    }
}

fn confirm(org: &str) -> bool {
    eprint!("\nApply these changes to org {org}? Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes"
}

pub fn run(args: ApplyArgs) -> i32 {
    if !args.target.is_live() {
        eprint_diag(
            &Diagnostic::error("apply needs an organization to act on")
                .hint("use --sim for the local simulator, or set FLY_API_TOKEN (and --api or FLY_API_HOSTNAME for another endpoint)"),
        );
        return super::EXIT_ERROR;
    }
    let input = match read_input(&args) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let tenants: Vec<String> = match &input.saved {
        Some(doc) if args.tenants.is_empty() => doc.tenants.clone(),
        _ => args.tenants.clone(),
    };
    for t in &tenants {
        if !input.desired.tenants.iter().any(|x| &x.name == t) {
            let hint = suggest(
                t,
                input.desired.tenants.iter().map(|x| x.name.as_str()),
                "tenants",
            );
            eprint_diag(&Diagnostic::error(format!("--tenant {t}: no such tenant")).hint(hint));
            return super::EXIT_ERROR;
        }
    }
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(apply_async(args, input, tenants))
}

async fn apply_async(args: ApplyArgs, input: Input, tenants: Vec<String>) -> i32 {
    let target = match args.target.connect().await {
        Ok(t) => t,
        Err(d) => {
            eprint_diag(&d);
            return super::EXIT_ERROR;
        }
    };
    let code = apply_with(&args, input, &tenants, &target).await;
    if let Some(sim) = target.sim {
        sim.shutdown().await;
    }
    code
}

async fn apply_with(
    args: &ApplyArgs,
    input: Input,
    tenants: &[String],
    target: &super::target::Target,
) -> i32 {
    let mut desired = input.desired;
    let org = desired.org.clone();
    let client = &target.client;
    let snapshot = match target.observe(&desired).await {
        Ok(s) => s,
        Err(d) => {
            eprint_diag(&d);
            return super::EXIT_ERROR;
        }
    };
    // `interpret` reads the desired state's addresses, names and placement, not the
    // secret fingerprints `apply_fingerprints` adds below: one interpretation serves both
    // the staleness check and the plan.
    let observed = interpret(&snapshot, &desired);
    // A saved plan applies only to the org it was made against.
    if let Some(doc) = &input.saved
        && observed.fingerprint != doc.observed_fingerprint
    {
        eprint_diag(
            &Diagnostic::error(format!(
                "plan is stale: org {org} changed since the plan was made ({})",
                doc.created_at
            ))
            .file(args.input.display().to_string())
            .hint("make a new plan (`flotilla plan SPEC --out …`) and review it"),
        );
        return super::EXIT_ERROR;
    }
    let values = match super::target::secret_values(&desired, &input.dir, args.target.sim.is_some())
    {
        Ok(v) => v,
        Err(d) => {
            eprint_diags(&d);
            return super::EXIT_ERROR;
        }
    };
    crate::secrets::apply_fingerprints(&mut desired, &values);
    let plan = super::plan::compute_plan(&desired, &observed, tenants, &args.pricing);
    let meta = PlanMeta {
        org: &org,
        spec_file: &input.spec_file,
        spec_hash: &input.spec_hash,
        observed_fingerprint: &observed.fingerprint,
        observed_source: &target.source,
        tenants,
        created_at: chrono::Utc::now(),
    };
    let doc = PlanDocument::new(plan.clone(), &meta, &observed.unmanaged, None);
    let style = if args.no_color {
        Style::plain()
    } else {
        Style::detect()
    };
    print_out(&plan_text(&doc, Some(&desired.resources), style));
    if !plan.errors.is_empty() {
        return super::EXIT_ERROR;
    }
    if !plan.has_changes() {
        return super::EXIT_OK;
    }
    let narrowed = crate::plan::filter_tenants(&desired.resources, tenants);
    let build = BuildOptions {
        allow_destroy: args.allow_destroy,
        allow_data_loss: args.allow_data_loss,
        canary: args.canary,
        max_parallel_updates: args.max_parallel_updates,
    };
    let ops = match crate::apply::ops::build(&plan, &narrowed, &observed, &build) {
        Ok(ops) => ops,
        Err(refusals) => {
            for r in &refusals {
                eprint_diag(&Diagnostic::error(r.reason.clone()).address(r.address.to_string()));
            }
            eprintln!(
                "\nNothing was changed: {} change(s) need a flag or are protected.",
                refusals.len()
            );
            return super::EXIT_ERROR;
        }
    };
    let confirmed = args.yes || input.saved.is_some();
    if !confirmed {
        if !std::io::stdin().is_terminal() {
            eprint_diag(
                &Diagnostic::error("refusing to apply without confirmation")
                    .hint("review the plan above and pass --yes"),
            );
            return super::EXIT_ERROR;
        }
        if !confirm(&org) {
            eprintln!("Apply cancelled; nothing was changed.");
            return super::EXIT_ERROR;
        }
    }

    let run = crate::apply::run_id();
    let journal_path = args
        .journal
        .clone()
        .unwrap_or_else(|| crate::apply::default_journal(&run));
    let journal = match Journal::open(&journal_path, &run) {
        Ok(j) => j,
        Err(e) => {
            eprint_diag(&Diagnostic::error(e));
            return super::EXIT_ERROR;
        }
    };
    journal.event("apply started", serde_json::json!({"org": org, "target": target.source, "spec": input.spec_file, "operations": ops.len()}));
    let cancel = Arc::new(AtomicBool::new(false));
    let c2 = Arc::clone(&cancel);
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            c2.store(true, Ordering::SeqCst);
            eprintln!(
                "\nInterrupted: no new operations start; waiting for those in flight (Ctrl-C again to quit now)…"
            );
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    let progress = Progress::new(ops.len(), args.quiet);
    if !args.quiet {
        progress.note(&format!(
            "Applying {} operations ({}); journal: {}",
            ops.len(),
            crate::apply::describe_ops(&ops),
            journal_path.display()
        ));
    }
    let exec = ExecOptions {
        concurrency: args.concurrency.max(1),
        wait_timeout: Duration::from_secs(args.wait_timeout.max(1)),
    };
    let shared = Shared::new(
        client.clone(),
        org.clone(),
        narrowed.clone(),
        observed.clone(),
        values,
        exec,
        Some(journal),
        Arc::clone(&cancel),
    );
    let report = crate::apply::exec::execute(shared, ops, &progress).await;
    progress.finish();
    watcher.abort();
    let summary = crate::apply::summarize(&plan, &report, &narrowed, &observed, client.stats());
    if let Ok(j) = Journal::open(&journal_path, &run) {
        j.event(
            "apply finished",
            serde_json::to_value(&summary).unwrap_or_default(),
        );
    }
    eprint!("\n{}", summary.text());
    if args.json_summary {
        print_out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&summary).unwrap_or_default()
        ));
    }
    if summary.ok() {
        super::EXIT_OK
    } else {
        super::EXIT_ERROR
    }
}
