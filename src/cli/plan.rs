//! `flotilla plan SPEC`: what would change, and what it costs, with guardrails (exit 3).

use std::path::PathBuf;

use clap::Args;

use super::Exit;
use super::common::{Format, eprint_diags, print_out, print_streamed};
use super::env::Env;
use crate::ops::Error;
use crate::ops::plan::{Options, Outcome, Source};
use crate::render::{Layout, plan_json, plan_markdown, write_plan_text};

/// The text layout `--detail` chooses.
pub fn layout(detail: bool) -> Layout {
    if detail {
        Layout::Detail
    } else {
        Layout::Grouped
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla plan specs/jarvis.yaml
  flotilla plan specs/jarvis.yaml --state tests/states/jarvis-drift.json
  flotilla plan specs/jarvis.yaml --tenant alice --tenant bob
  flotilla plan specs/jarvis.yaml --target 'tenant.alice.machine[0]'
  flotilla plan specs/jarvis.yaml --format json --out plans/jarvis.plan.json
  flotilla plan specs/jarvis.yaml --detail              # every resource, ungrouped
  flotilla plan specs/jarvis.yaml --format markdown     # a pull-request comment
  flotilla plan specs/jarvis.yaml --detailed-exitcode   # exit 2 when there are changes
  flotilla plan specs/jarvis.yaml --sim                 # against the local simulator
  FLY_API_TOKEN=... flotilla plan specs/jarvis.yaml     # against your Fly organization
  flotilla plan specs/jarvis.yaml --sim --show-state state.json
  flotilla plan specs/jarvis.yaml --sim --max-increase 10% --deny-destroy   # exit 3 when exceeded

Where the observed state comes from: --state FILE; else --sim; else the Fly API when
--api, FLY_API_HOSTNAME or FLY_API_TOKEN is set; else an empty organization (offline).")]
pub struct PlanArgs {
    /// The spec file.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// Compare against an observed-state JSON file (the format --show-state writes).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["sim", "api"])]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    /// Also write the observed state to FILE (JSON, the format --state reads).
    #[arg(long, value_name = "FILE")]
    pub show_state: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Save the plan (with the desired state, spec hash and observed fingerprint) for
    /// `flotilla apply PLANFILE`.
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Only plan these tenants (repeatable).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    /// Only this resource, by address (repeatable), and what it needs that does not exist
    /// yet, e.g. `tenant.alice.machine[0]`.
    #[arg(long = "target", value_name = "ADDRESS")]
    pub targets: Vec<crate::resource::Address>,
    /// Print every resource's change (the default groups identical changes of many
    /// tenants into one block, after a summary).
    #[arg(long)]
    pub detail: bool,
    /// Never colour the text output (colours are used only on a terminal; NO_COLOR is honoured).
    #[arg(long)]
    pub no_color: bool,
    #[command(flatten)]
    pub pricing: super::pricing::PricingOpts,
    #[command(flatten)]
    pub secret_files: super::common::SecretFileArgs,
    /// Usage assumptions overriding the spec's `usage:` for the plan's costs (a usage
    /// file; see `flotilla cost --usage-template`).
    #[arg(long, value_name = "FILE")]
    pub usage: Option<std::path::PathBuf>,
    /// Fail (exit 3) when the fleet's monthly cost after the plan exceeds this many
    /// dollars.
    #[arg(long, value_name = "USD", value_parser = crate::money::parse_usd)]
    pub max_monthly: Option<rust_decimal::Decimal>,
    /// Fail (exit 3) when the plan raises the monthly cost by more than this many
    /// dollars, or this percentage of the current fleet's (e.g. 25 or 10%).
    #[arg(long, value_name = "USD|PCT%", value_parser = clap::value_parser!(crate::cost::IncreaseLimit))]
    pub max_increase: Option<crate::cost::IncreaseLimit>,
    /// Fail (exit 3) when the plan deletes or replaces anything.
    #[arg(long)]
    pub deny_destroy: bool,
    /// Check Fly's regional capacity (GET /v1/platform/regions) when the plan creates
    /// at least N Machines in one region, and warn when a region cannot take them (0: off).
    #[arg(long, value_name = "N", default_value_t = crate::plan::capacity::DEFAULT_THRESHOLD)]
    pub capacity_threshold: usize,
}

impl PlanArgs {
    fn options(&self, env: &Env) -> Options {
        Options {
            spec: self.spec.clone(),
            state: self.state.clone(),
            target: self.target.options(env),
            show_state: self.show_state.clone(),
            out: self.out.clone(),
            tenants: self.tenants.clone(),
            targets: self.targets.clone(),
            pricing: self.pricing.options(),
            plan_key: env.plan_key(),
            secret_files: self.secret_files.policy(),
            fingerprint_key: None,
            usage: self.usage.clone(),
            guardrails: crate::cost::PlanGuardrails {
                budget: crate::cost::Budget {
                    max_monthly: self.max_monthly,
                    max_increase: self.max_increase,
                },
                deny_destroy: self.deny_destroy,
            },
            capacity_threshold: crate::plan::capacity::Threshold(self.capacity_threshold),
        }
    }
}

pub fn run(args: PlanArgs, env: &Env) -> Result<Exit, Error> {
    let mut opts = args.options(env);
    opts.fingerprint_key = env.fingerprint_key()?;
    let outcome = crate::ops::plan::run(&opts)?;
    let result = render(&args, env, &outcome).and_then(|()| {
        if outcome.has_errors() {
            Err(Error::reported())
        } else if let Some(reason) = outcome.exceeded() {
            Err(Error::budget(reason))
        } else if args.detailed_exitcode && outcome.has_changes() {
            Ok(Exit::Changes)
        } else {
            Ok(Exit::Ok)
        }
    });
    // The process exits next: handing large structures back to the allocator one piece
    // at a time would only delay the exit.
    std::mem::forget(outcome);
    result
}

/// Notes on stderr, then the plan on stdout.
fn render(args: &PlanArgs, env: &Env, outcome: &Outcome) -> Result<(), Error> {
    eprint_diags(&outcome.spec_warnings);
    if outcome.source == Source::Empty {
        eprintln!(
            "(planning against an empty organization: use --sim, or set FLY_API_TOKEN, to compare with what exists)"
        );
    }
    eprint_diags(&outcome.diagnostics);
    if let Some(out) = &outcome.saved {
        eprintln!(
            "Saved the plan to {}; apply it with `flotilla apply {}`.",
            out.display(),
            out.display()
        );
    } else if let (Some(out), Some(_)) = (&args.out, outcome.exceeded()) {
        eprintln!(
            "Not saved to {}: the plan exceeds a guardrail.",
            out.display()
        );
    }
    let doc = &outcome.document;
    let desired = Some(&outcome.desired.resources);
    match args.format {
        Format::Text => print_streamed(|emit| {
            write_plan_text(
                doc,
                desired,
                env.style(args.no_color),
                layout(args.detail),
                emit,
            )
        }),
        Format::Json => print_out(&(plan_json(doc, desired)? + "\n")),
        Format::Markdown => print_out(&plan_markdown(doc, desired)),
    }
    Ok(())
}
