//! `cost`: the monthly cost of a spec's fleet, or the change from a base spec, with the
//! budget verdict. Exceeding a guardrail is part of the outcome (it is still shown);
//! the command line turns it into [`Error::budget`](crate::ops::Error::budget).

use std::path::{Path, PathBuf};

use crate::cost::render::View;
use crate::cost::usage_file::{self, UsageFile};
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
    /// A usage file overriding the specs' usage assumptions (`--usage FILE`).
    pub usage: Option<PathBuf>,
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
    let lock_app = crate::apply::lock::sentinel_app(&d.org, &d.fleet);
    cost::Pricer::new(table, &d.resources, &d.default_usage)
        .with_fleet_lock(&lock_app)
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

/// Reads a usage file (bounded, a regular file) and checks its keys.
pub fn read_usage_file(path: &Path) -> Result<UsageFile, Error> {
    let file = path.display().to_string();
    let bytes = crate::spec::read_limited(path).map_err(|d| {
        Error::from(Diagnostics::one(d.file(file.clone()).hint(
            "check the path; `flotilla cost SPEC --usage-template` writes a usage file",
        )))
    })?;
    usage_file::parse(&bytes, &file).map_err(Error::from)
}

/// Loads and prices one spec with the usage file applied (`strict`: every tier, tenant
/// and address the file names must exist in the spec), adding its warnings to `warnings`.
fn load_and_price(
    table: &PriceTable,
    spec: &Path,
    usage: Option<(&UsageFile, bool)>,
    warnings: &mut Diagnostics,
) -> Result<CostReport, Error> {
    let mut loaded = load_spec(spec).map_err(|e| e.after(warnings))?;
    warnings.extend(loaded.warnings.clone());
    if let Some((u, strict)) = usage {
        if strict {
            u.check(&loaded.desired)
                .map_err(|d| Error::from(d).after(warnings))?;
        }
        u.apply(&mut loaded.desired);
    }
    price_spec(table, &loaded, spec).map_err(|e| e.after(warnings))
}

/// `cost SPEC --usage-template`: a usage file with every key at the spec's current
/// assumptions, commented out.
pub fn usage_template(spec: &Path) -> Result<String, Error> {
    let loaded = load_spec(spec)?;
    Ok(usage_file::template(
        &loaded.desired,
        &spec.display().to_string(),
    ))
}

/// `cost SPEC [--base SPEC]`.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    let table = opts.pricing.table()?;
    let usage = opts.usage.as_deref().map(read_usage_file).transpose()?;
    let mut spec_warnings = Diagnostics::new();
    let report = load_and_price(
        &table,
        &opts.spec,
        usage.as_ref().map(|u| (u, true)),
        &mut spec_warnings,
    )?;
    // The base gets the same assumptions; names it lacks are no error there.
    let base = match &opts.base {
        Some(b) => Some(load_and_price(
            &table,
            b,
            usage.as_ref().map(|u| (u, false)),
            &mut spec_warnings,
        )?),
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
