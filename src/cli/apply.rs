//! `flotilla apply SPEC|PLANFILE`: make the organization match.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::Exit;
use super::common::{eprint_diags, print_out};
use super::env::Env;
use crate::diag::Diagnostic;
use crate::ops::apply::{Options, Readiness};
use crate::ops::{Error, to_json_pretty};
use crate::render::plan_text;

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

impl ApplyArgs {
    fn options(&self, env: &Env) -> Options {
        Options {
            input: self.input.clone(),
            target: self.target.options(env),
            tenants: self.tenants.clone(),
            allow_destroy: self.allow_destroy,
            allow_data_loss: self.allow_data_loss,
            canary: self.canary,
            max_parallel_updates: self.max_parallel_updates,
            concurrency: self.concurrency,
            journal: self.journal.clone(),
            wait_timeout: Duration::from_secs(self.wait_timeout),
            pricing: self.pricing.options(),
            quiet: self.quiet,
            progress_bar: env.stderr_tty,
            handle_ctrl_c: true,
            plan_key: env.plan_key(),
            fingerprint_key: None,
        }
    }
}

pub fn run(args: ApplyArgs, env: &Env) -> Result<Exit, Error> {
    let mut opts = args.options(env);
    opts.fingerprint_key = env.fingerprint_key()?;
    let prepared = crate::ops::apply::prepare(&opts)?;
    eprint_diags(&prepared.spec_warnings);
    eprint_diags(&prepared.diagnostics);
    print_out(&plan_text(
        &prepared.document,
        Some(&prepared.desired.resources),
        env.style(args.no_color),
    ));
    if prepared.readiness()? == Readiness::NothingToDo {
        return Ok(Exit::Ok);
    }
    if !args.yes && prepared.needs_confirmation() {
        confirm(env, prepared.org())?;
    }
    let report = prepared.execute()?;
    eprint!("\n{}", report.summary.text());
    eprint_diags(&report.diagnostics);
    if args.json_summary {
        print_out(&to_json_pretty(&report.summary, "the apply summary")?);
    }
    if report.ok() {
        Ok(Exit::Ok)
    } else {
        Err(Error::reported())
    }
}

/// Asks on the terminal; without one, refuses (`--yes` is needed).
fn confirm(env: &Env, org: &str) -> Result<(), Error> {
    if !env.stdin_tty {
        return Err(Error::new(
            Diagnostic::error("refusing to apply without confirmation")
                .hint("review the plan above and pass --yes"),
        ));
    }
    eprint!("\nApply these changes to org {org}? Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::line("Apply cancelled; nothing was changed."))
    }
}
