//! `flotilla apply SPEC|PLANFILE`: make the organization match.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::Exit;
use super::common::{eprint_diags, print_out};
use super::env::Env;
use crate::apply::Summary;
use crate::apply::lock::LockOptions;
use crate::diag::Diagnostic;
use crate::ops::apply::{CanaryChoice, Options, Readiness};
use crate::ops::{Error, to_json_pretty};
use crate::plan::rollout::Decision;
use crate::render::{confirm_recap, plan_text};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla apply specs/jarvis.yaml --sim --yes          # against the local simulator
  FLY_API_TOKEN=... flotilla apply specs/jarvis.yaml     # against Fly, asks to confirm
  flotilla plan specs/jarvis.yaml --out plans/jarvis.plan.json && flotilla apply plans/jarvis.plan.json
  flotilla apply specs/jarvis.yaml --canary 2 --wave-size 5   # roll an image out in waves
  flotilla apply specs/jarvis.yaml --canary-tenants dev,staging   # these tenants first
  flotilla apply specs/jarvis.yaml --rollback   # undo a stopped rollout
  flotilla apply specs/jarvis.yaml --target 'tenant.alice.machine[0]'   # one resource
  flotilla apply specs/jarvis.yaml --tenant staging --allow-destroy   # remove a tenant dropped from the spec
  flotilla apply specs/jarvis.yaml --allow-destroy --allow-data-loss     # allow deletes and volume loss

One apply at a time per fleet: an apply takes the fleet's lock (a lease on a stopped
sentinel Machine in Fly) before it observes; another waits up to --lock-timeout, naming
the holder. `flotilla unlock SPEC` clears a lock whose holder is gone.

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
    /// After the canary, update at most N tenants per wave; `all` (or 0): every tenant
    /// in one wave.
    #[arg(
        long = "wave-size",
        alias = "max-parallel-updates",
        value_name = "N|all",
        default_value = "25",
        value_parser = parse_wave_size
    )]
    pub max_parallel_updates: usize,
    /// The canary wave: these tenants (comma-separated), whatever their order.
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    pub canary_tenants: Vec<String>,
    /// The canary wave: the tenants of this tier.
    #[arg(long, value_name = "TIER")]
    pub canary_tier: Option<String>,
    /// The canary wave: the tenants whose Machines carry this metadata label.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_label)]
    pub canary_label: Option<(String, String)>,
    /// Continue a rollout that stopped after a failed wave (once its cause is fixed).
    #[arg(long, conflicts_with = "rollback")]
    pub resume: bool,
    /// Return the Machines of a stopped rollout to the version they ran before; nothing
    /// else changes image.
    #[arg(long)]
    pub rollback: bool,
    /// Only these tenants (repeatable).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    /// Only this resource, by address (repeatable), and what it needs that does not exist
    /// yet, e.g. `tenant.alice.machine[0]`.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<crate::resource::Address>,
    /// The journal file (JSON lines; default .flotilla/journal/RUN.jsonl).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// Seconds (of API time) to wait for a Machine to start, a volume to detach or a
    /// snapshot to finish.
    #[arg(long, value_name = "SECS", default_value_t = crate::apply::DEFAULT_WAIT.as_secs())]
    pub wait_timeout: u64,
    /// Print the summary as JSON on stdout, and nothing else there (the plan goes to
    /// stderr); also when there is nothing to do.
    #[arg(long)]
    pub json_summary: bool,
    /// No progress lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Never colour the output.
    #[arg(long)]
    pub no_color: bool,
    /// Print every resource's change in the plan (the default groups identical changes
    /// of many tenants into one block, after a summary).
    #[arg(long)]
    pub detail: bool,
    /// Seconds to wait for the fleet lock while another apply of this fleet holds it
    /// (0: fail at once, naming the holder).
    #[arg(long, value_name = "SECS", default_value_t = crate::apply::lock::DEFAULT_TIMEOUT.as_secs())]
    pub lock_timeout: u64,
    /// Seconds (of API time) the fleet lock outlives a holder that stopped renewing it
    /// (a crashed apply); renewed every third of it.
    #[arg(long, value_name = "SECS", default_value_t = crate::apply::lock::DEFAULT_TTL.as_secs(), value_parser = clap::value_parser!(u64).range(3..=3600), hide_short_help = true)]
    pub lock_ttl: u64,
    #[command(flatten)]
    pub pricing: super::pricing::PricingOpts,
    #[command(flatten)]
    pub secret_files: super::common::SecretFileArgs,
    /// Check Fly's regional capacity (GET /v1/platform/regions) when the plan creates
    /// at least N Machines in one region, and warn when a region cannot take them (0: off).
    #[arg(long, value_name = "N", default_value_t = crate::plan::capacity::DEFAULT_THRESHOLD)]
    pub capacity_threshold: usize,
}

impl ApplyArgs {
    fn options(&self, env: &Env) -> Options {
        Options {
            input: self.input.clone(),
            target: self.target.options(env),
            tenants: self.tenants.clone(),
            targets: self.targets.clone(),
            allow_destroy: self.allow_destroy,
            allow_data_loss: self.allow_data_loss,
            canary: self.canary,
            max_parallel_updates: self.max_parallel_updates,
            canary_tenants: CanaryChoice {
                tenants: self.canary_tenants.clone(),
                tier: self.canary_tier.clone(),
                label: self.canary_label.clone(),
            },
            rollout: if self.resume {
                Decision::Resume
            } else if self.rollback {
                Decision::Rollback
            } else {
                Decision::None
            },
            concurrency: self.concurrency,
            journal: self.journal.clone(),
            wait_timeout: Duration::from_secs(self.wait_timeout),
            pricing: self.pricing.options(),
            quiet: self.quiet,
            progress_bar: env.stderr_tty,
            handle_ctrl_c: true,
            plan_key: env.plan_key(),
            secret_files: self.secret_files.policy(),
            lock: Some(LockOptions {
                ttl: Duration::from_secs(self.lock_ttl),
                timeout: Duration::from_secs(self.lock_timeout),
                holder: env.holder(),
            }),
            fingerprint_key: None,
            capacity_threshold: crate::plan::capacity::Threshold(self.capacity_threshold),
        }
    }
}

/// `N` tenants per wave, or `all` (also `0`): one wave.
fn parse_wave_size(s: &str) -> Result<usize, String> {
    if s == "all" {
        return Ok(0);
    }
    s.parse::<usize>()
        .map_err(|_| format!("`{s}` is not a number of tenants or `all`"))
}

/// `KEY=VALUE`.
fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

pub fn run(args: ApplyArgs, env: &Env) -> Result<Exit, Error> {
    let mut opts = args.options(env);
    opts.fingerprint_key = env.fingerprint_key()?;
    let prepared = crate::ops::apply::prepare(&opts)?;
    eprint_diags(&prepared.spec_warnings);
    eprint_diags(&prepared.diagnostics);
    // With --json-summary, stdout holds the summary's JSON and nothing else.
    let plan = plan_text(
        &prepared.document,
        Some(&prepared.desired.resources),
        env.style(args.no_color),
        super::plan::layout(args.detail),
    );
    if args.json_summary {
        eprint!("{plan}");
    } else {
        print_out(&plan);
    }
    if prepared.readiness()? == Readiness::NothingToDo {
        if args.json_summary {
            print_out(&to_json_pretty(&Summary::default(), "the apply summary")?);
        }
        return Ok(Exit::Ok);
    }
    if !args.yes && prepared.needs_confirmation() {
        // What must not be missed, again, beside the question.
        eprint!(
            "{}",
            confirm_recap(
                &prepared.document,
                prepared
                    .spec_warnings
                    .warnings()
                    .chain(prepared.diagnostics.warnings()),
                env.style(args.no_color),
            )
        );
        confirm(env, prepared.org())?;
    }
    let spec = prepared.document.spec_file.clone();
    let report = prepared.execute()?;
    eprint!("\n{}", report.summary.text());
    eprint_diags(&report.diagnostics);
    let dns = crate::render::dns::after_apply(&spec, &report.dns);
    if args.json_summary {
        eprint!("{dns}");
    } else {
        print_out(&dns);
    }
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
