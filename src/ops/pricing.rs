//! `pricing`: the price catalog (embedded or from a directory), the version in force on a
//! date, and the list / show / diff / export operations over it. [`PricingOptions`] is
//! also how `plan`, `cost` and `whatif` say which prices to use.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::cost::{CostDelta, CostReport};
use crate::diag::{Diagnostic, Diagnostics};
use crate::ops::Error;
use crate::pricing::{Catalog, PriceTable, TableDiff};

/// Today's date (UTC): the default pricing date.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Which price tables to use.
#[derive(Debug, Clone, Default)]
pub struct PricingOptions {
    /// Read the tables from this directory instead of the embedded ones (`--pricing`).
    pub dir: Option<PathBuf>,
    /// Price with the version in force on this date (`--pricing-date`; default today).
    pub date: Option<NaiveDate>,
}

impl PricingOptions {
    /// The pricing date: the one given, else today.
    pub fn date(&self) -> NaiveDate {
        self.date.unwrap_or_else(today)
    }

    /// Every version, validated.
    pub fn catalog(&self) -> Result<Catalog, Error> {
        Catalog::load(self.dir.as_deref()).map_err(|e| Error::new(e.to_diagnostic()))
    }

    /// The version in force on [`PricingOptions::date`].
    pub fn table(&self) -> Result<PriceTable, Error> {
        version_at(&self.catalog()?, self.date())
    }
}

/// The version in force on `date`.
pub fn version_at(catalog: &Catalog, date: NaiveDate) -> Result<PriceTable, Error> {
    catalog
        .at(date)
        .cloned()
        .map_err(|e| Error::new(e.to_diagnostic()))
}

/// The versions, and the date that decides which is in force.
pub struct Listing {
    pub catalog: Catalog,
    pub today: NaiveDate,
}

/// `pricing list`.
pub fn list(opts: &PricingOptions) -> Result<Listing, Error> {
    Ok(Listing {
        catalog: opts.catalog()?,
        today: today(),
    })
}

/// `pricing show [DATE]`: the version in force on `date`, else on the options' date.
pub fn show(opts: &PricingOptions, date: Option<NaiveDate>) -> Result<PriceTable, Error> {
    let catalog = opts.catalog()?;
    version_at(&catalog, date.or(opts.date).unwrap_or_else(today))
}

/// A spec priced under the two versions of a diff.
pub struct FleetImpact {
    /// The spec, as named.
    pub title: String,
    pub before: CostReport,
    pub after: CostReport,
    pub delta: CostDelta,
}

/// `pricing diff`: what changed between two versions, and what it does to a spec.
pub struct DiffOutcome {
    pub date_a: NaiveDate,
    pub date_b: NaiveDate,
    pub before: PriceTable,
    pub after: PriceTable,
    pub diff: TableDiff,
    pub fleet: Option<FleetImpact>,
    /// Warnings of the spec, when one was priced.
    pub spec_warnings: Diagnostics,
}

impl DiffOutcome {
    /// A warning when both dates fall under the same version (shown after the diff).
    pub fn same_version(&self) -> Option<Diagnostic> {
        (self.before.version() == self.after.version()).then(|| {
            Diagnostic::warning(format!(
                "{} and {} fall under the same pricing version ({})",
                self.date_a,
                self.date_b,
                self.before.version()
            ))
        })
    }
}

/// `pricing diff DATE_A DATE_B [--spec SPEC]`.
pub fn diff(
    opts: &PricingOptions,
    date_a: NaiveDate,
    date_b: NaiveDate,
    spec: Option<&Path>,
) -> Result<DiffOutcome, Error> {
    let catalog = opts.catalog()?;
    // Both dates are checked, so that both are reported when neither has a version.
    let (before, after) = match (version_at(&catalog, date_a), version_at(&catalog, date_b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(mut ea), Err(eb)) => {
            ea.diagnostics.extend(eb.diagnostics);
            return Err(ea);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let diff = crate::pricing::diff(&before, &after);
    let mut spec_warnings = Diagnostics::new();
    let fleet = match spec {
        None => None,
        Some(path) => {
            let loaded = crate::ops::load_spec(path)?;
            spec_warnings = loaded.warnings.clone();
            // One version after the other: a resource neither can price is reported once.
            let ra = crate::ops::cost::price_spec(&before, &loaded, path)
                .map_err(|e| e.after(&spec_warnings))?;
            let rb = crate::ops::cost::price_spec(&after, &loaded, path)
                .map_err(|e| e.after(&spec_warnings))?;
            Some(FleetImpact {
                title: path.display().to_string(),
                delta: crate::cost::delta(&ra, &rb),
                before: ra,
                after: rb,
            })
        }
    };
    Ok(DiffOutcome {
        date_a,
        date_b,
        before,
        after,
        diff,
        fleet,
        spec_warnings,
    })
}

/// `pricing export DIR`: writes the embedded tables; returns the files written.
pub fn export(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    crate::pricing::export_embedded(dir).map_err(|e| Error::new(e.to_diagnostic()))
}
