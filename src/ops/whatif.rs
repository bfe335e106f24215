//! `whatif`: read a scenario and run its sweep into a report (the command line renders it
//! as text, JSON, Markdown or HTML).

use std::path::PathBuf;

use crate::ops::Error;
use crate::ops::pricing::{PricingOptions, today};
use crate::whatif::{self, Report, RunOptions};

/// Which scenario, with which prices.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub scenario: PathBuf,
    /// `date` replaces the scenario's pricing dates.
    pub pricing: PricingOptions,
    /// Run sweeps of more than `whatif::MAX_ROWS` rows.
    pub force: bool,
}

/// `whatif SCENARIO`. An invalid scenario is an error with the "is not valid" line.
pub fn run(opts: &Options) -> Result<Report, Error> {
    let scenario = whatif::load_file(&opts.scenario)
        .map_err(|d| Error::invalid(&opts.scenario.display().to_string(), d))?;
    let catalog = opts.pricing.catalog()?;
    let run = RunOptions {
        pricing_date: opts.pricing.date,
        today: today(),
        force: opts.force,
    };
    Ok(whatif::run(&scenario, &catalog, &run)?)
}
