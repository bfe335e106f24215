//! `cost`: the monthly cost of a spec's fleet, or the change from a base spec, with the
//! budget verdict. Exceeding a guardrail is part of the outcome (it is still shown);
//! the command line turns it into [`Error::budget`](crate::ops::Error::budget).

use std::path::{Path, PathBuf};

use crate::cost::render::View;
use crate::cost::{self, Budget, CostDelta, CostReport, Verdict};
use crate::diag::Diagnostics;
use crate::ops::pricing::PricingOptions;
use crate::ops::{Error, load_spec};
use crate::pricing::PriceTable;
use crate::spec::Loaded;

/// What to price.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The spec to price.
    pub spec: PathBuf,
    /// A spec to compare with (e.g. the base branch's): adds the delta.
    pub base: Option<PathBuf>,
    pub pricing: PricingOptions,
    /// Guardrails (none by default).
    pub budget: Budget,
}

/// The priced fleet, the comparison and the verdict.
pub struct Outcome {
    /// The fleet's name in reports: the spec path.
    pub title: String,
    pub report: CostReport,
    /// The base report and the change from it to `report`.
    pub base: Option<(CostReport, CostDelta)>,
    /// Set when a guardrail was given.
    pub verdict: Option<Verdict>,
    /// Warnings of the specs (head, then base).
    pub spec_warnings: Diagnostics,
}

impl Outcome {
    /// The view the renderings take.
    pub fn view(&self) -> View<'_> {
        View {
            title: &self.title,
            report: &self.report,
            base: self.base.as_ref().map(|(r, d)| (r, d)),
            verdict: self.verdict.as_ref(),
        }
    }

    /// The reason, when a guardrail was exceeded.
    pub fn exceeded(&self) -> Option<&str> {
        match &self.verdict {
            Some(Verdict::Exceeded { reason }) => Some(reason),
            _ => None,
        }
    }
}

/// Prices a loaded spec; the error lists every resource that could not be priced,
/// naming the spec.
pub fn price_spec(table: &PriceTable, loaded: &Loaded, spec: &Path) -> Result<CostReport, Error> {
    let d = &loaded.desired;
    cost::Pricer::new(table, &d.resources, &d.default_usage)
        .with_plan(d.org_plan)
        .report()
        .map_err(|e| {
            let file = spec.display().to_string();
            Error::from(Diagnostics(
                e.0.iter()
                    .map(|err| err.to_diagnostic().file(file.clone()))
                    .collect(),
            ))
        })
}

/// Loads and prices one spec, adding its warnings to `warnings`.
fn load_and_price(
    table: &PriceTable,
    spec: &Path,
    warnings: &mut Diagnostics,
) -> Result<CostReport, Error> {
    let loaded = load_spec(spec).map_err(|e| e.after(warnings))?;
    warnings.extend(loaded.warnings.clone());
    price_spec(table, &loaded, spec).map_err(|e| e.after(warnings))
}

/// `cost SPEC [--base SPEC]`.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    let table = opts.pricing.table()?;
    let mut spec_warnings = Diagnostics::new();
    let report = load_and_price(&table, &opts.spec, &mut spec_warnings)?;
    let base = match &opts.base {
        Some(b) => Some(load_and_price(&table, b, &mut spec_warnings)?),
        None => None,
    };
    let verdict = if opts.budget.is_empty() {
        None
    } else {
        let v = cost::check_budget(&opts.budget, report.total, base.as_ref().map(|b| b.total))
            .map_err(|e| Error::new(e.to_diagnostic()).after(&spec_warnings))?;
        Some(v)
    };
    let base = base.map(|b| {
        let d = cost::delta(&b, &report);
        (b, d)
    });
    Ok(Outcome {
        title: opts.spec.display().to_string(),
        report,
        base,
        verdict,
        spec_warnings,
    })
}
