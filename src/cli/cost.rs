//! `flotilla cost SPEC [--base SPEC]`: the monthly cost of a fleet, or the change between
//! two specs (a pull-request cost preview), with budget guardrails (exit code 3).

use std::path::{Path, PathBuf};

use clap::Args;

use super::common::{Format, eprint_diag, load_spec, print_out};
use super::pricing::PricingOpts;
use crate::cost::render::View;
use crate::cost::{self, Budget, CostReport, IncreaseLimit, Verdict};
use crate::money::parse_usd;
use crate::pricing::PriceTable;
use crate::spec::Loaded;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla cost specs/jarvis.yaml
  flotilla cost specs/jarvis.yaml --format json
  flotilla cost specs/jarvis.yaml --pricing-date 2025-06-01
  flotilla cost specs/jarvis.yaml --base base/specs/jarvis.yaml --format markdown
  flotilla cost specs/jarvis.yaml --max-monthly 500
  flotilla cost specs/jarvis.yaml --base base/specs/jarvis.yaml --max-increase 10%

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
}

impl clap::builder::ValueParserFactory for IncreaseLimit {
    type Parser = fn(&str) -> Result<IncreaseLimit, String>;
    fn value_parser() -> Self::Parser {
        |s| s.parse()
    }
}

fn price(table: &PriceTable, spec: &Path) -> Result<CostReport, i32> {
    let loaded = load_spec(spec)?;
    price_loaded(table, &loaded, spec)
}

/// Prices a loaded spec; on failure prints every resource that could not be priced,
/// naming the spec.
pub(super) fn price_loaded(
    table: &PriceTable,
    loaded: &Loaded,
    spec: &Path,
) -> Result<CostReport, i32> {
    let d = &loaded.desired;
    cost::price_set(table, &d.resources, &d.default_usage).map_err(|e| {
        for err in &e.0 {
            eprint_diag(&err.to_diagnostic().file(spec.display().to_string()));
        }
        super::EXIT_ERROR
    })
}

pub fn run(args: CostArgs) -> i32 {
    let table = match args.pricing.table() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let budget = Budget {
        max_monthly: args.max_monthly,
        max_increase: args.max_increase,
    };
    let head = match price(&table, &args.spec) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let base = match &args.base {
        Some(b) => match price(&table, b) {
            Ok(r) => Some(r),
            Err(code) => return code,
        },
        None => None,
    };
    let delta = base.as_ref().map(|b| cost::delta(b, &head));
    let verdict = if budget.is_empty() {
        None
    } else {
        match cost::check_budget(&budget, head.total, base.as_ref().map(|b| b.total)) {
            Ok(v) => Some(v),
            Err(e) => {
                eprint_diag(&e.to_diagnostic());
                return super::EXIT_ERROR;
            }
        }
    };
    let title = args.spec.display().to_string();
    let view = View {
        title: &title,
        report: &head,
        base: base.as_ref().zip(delta.as_ref()),
        verdict: verdict.as_ref(),
    };
    print_out(&match args.format {
        Format::Text => cost::render::text(&view),
        Format::Json => cost::render::json_string(&view),
        Format::Markdown => cost::render::markdown(&view),
    });
    for w in &head.warnings {
        eprint_diag(&crate::diag::Diagnostic::warning(w.clone()));
    }
    match verdict {
        Some(Verdict::Exceeded { reason }) => {
            eprintln!("{reason}");
            super::EXIT_BUDGET
        }
        _ => super::EXIT_OK,
    }
}
