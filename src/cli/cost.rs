//! `flotilla cost SPEC [--base SPEC]`: the monthly cost of a fleet, or the change between
//! two specs (a pull-request cost preview), with budget guardrails (exit code 3).

use std::path::PathBuf;

use clap::Args;

use super::Exit;
use super::common::{Format, eprint_diag, eprint_diags, print_out};
use super::pricing::PricingOpts;
use crate::cost::{self, Budget, IncreaseLimit};
use crate::diag::Diagnostic;
use crate::money::parse_usd;
use crate::ops::Error;
use crate::ops::cost::Options;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla cost specs/jarvis.yaml
  flotilla cost specs/jarvis.yaml --format json
  flotilla cost specs/jarvis.yaml --pricing-date 2025-06-01
  flotilla cost specs/jarvis.yaml --base base/specs/jarvis.yaml --format markdown
  flotilla cost specs/jarvis.yaml --max-monthly 500
  flotilla cost specs/jarvis.yaml --base base/specs/jarvis.yaml --max-increase 10%
  flotilla cost specs/jarvis.yaml --usage-template > usage.yaml
  flotilla cost specs/jarvis.yaml --usage usage.yaml

Exit codes: 0 ok, 1 error, 3 a budget guardrail was exceeded.
Every rule of the cost model is in COSTS.md; every price in `flotilla pricing show`.")]
pub struct CostArgs {
    /// The spec to price.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// Compare with this spec (e.g. the spec on the base branch): the delta by tenant
    /// and by resource.
    #[arg(long, value_name = "SPEC")]
    pub base: Option<PathBuf>,
    /// Output format: text for a terminal, json (the contract in ARCHITECTURE.md), or
    /// markdown for a pull-request comment.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub pricing: PricingOpts,
    /// Fail (exit 3) when the monthly cost exceeds this many dollars.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_monthly: Option<rust_decimal::Decimal>,
    /// Fail (exit 3) when the monthly cost rises over the base by more than this many
    /// dollars, or this percentage (e.g. 25 or 10%). Needs --base.
    #[arg(long, value_name = "USD|PCT%", value_parser = clap::value_parser!(IncreaseLimit))]
    pub max_increase: Option<IncreaseLimit>,
    /// Usage assumptions overriding the spec's `usage:` (YAML: defaults, tiers, tenants,
    /// resources; precedence resource > tenant > tier > defaults > spec). See COSTS.md.
    #[arg(long, value_name = "FILE")]
    pub usage: Option<PathBuf>,
    /// Print a usage file with every usage key at the spec's current assumptions
    /// (commented out) instead of pricing.
    #[arg(long, conflicts_with_all = ["usage", "base", "max_monthly", "max_increase"])]
    pub usage_template: bool,
}

impl clap::builder::ValueParserFactory for IncreaseLimit {
    type Parser = fn(&str) -> Result<IncreaseLimit, String>;
    fn value_parser() -> Self::Parser {
        |s| s.parse()
    }
}

impl CostArgs {
    fn options(&self) -> Options {
        Options {
            spec: self.spec.clone(),
            base: self.base.clone(),
            pricing: self.pricing.options(),
            budget: Budget {
                max_monthly: self.max_monthly,
                max_increase: self.max_increase,
            },
            usage: self.usage.clone(),
        }
    }
}

pub fn run(args: CostArgs) -> Result<Exit, Error> {
    if args.usage_template {
        print_out(&crate::ops::cost::usage_template(&args.spec)?);
        return Ok(Exit::Ok);
    }
    let outcome = crate::ops::cost::run(&args.options())?;
    eprint_diags(&outcome.spec_warnings);
    let view = outcome.view();
    print_out(&match args.format {
        Format::Text => cost::render::text(&view),
        Format::Json => cost::render::json_string(&view)?,
        Format::Markdown => cost::render::markdown(&view),
    });
    for w in &outcome.report.warnings {
        eprint_diag(&Diagnostic::warning(w.clone()));
    }
    match outcome.exceeded() {
        Some(reason) => Err(Error::budget(reason)),
        None => Ok(Exit::Ok),
    }
}
