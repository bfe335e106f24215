//! `flotilla pricing list | show [DATE] | diff DATE_A DATE_B [--spec SPEC] | export DIR`,
//! and the `--pricing DIR` / `--pricing-date DATE` options shared with `cost` and `plan`.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::{Args, Subcommand};

use super::common::{Format, eprint_diag, load_spec, print_out};
use crate::cost::{self, render::View};
use crate::diag::Diagnostic;
use crate::pricing::{self, Catalog, PriceTable};

/// Parses `YYYY-MM-DD` (or `today`).
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    if s == "today" {
        return Ok(today());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; write YYYY-MM-DD, e.g. 2026-02-01"))
}

pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Which price tables to use.
#[derive(Debug, Clone, Default, Args)]
pub struct PricingOpts {
    /// Read price tables from DIR instead of the embedded ones: a directory holding
    /// manifest.yaml and the CSV tables, or one subdirectory per effective date
    /// (start one with `flotilla pricing export DIR`).
    #[arg(long, value_name = "DIR", global = true)]
    pub pricing: Option<PathBuf>,
    /// Price with the newest version in force on this date (YYYY-MM-DD; default today).
    #[arg(long, value_name = "DATE", value_parser = parse_date, global = true)]
    pub pricing_date: Option<NaiveDate>,
}

impl PricingOpts {
    pub fn date(&self) -> NaiveDate {
        self.pricing_date.unwrap_or_else(today)
    }

    pub fn catalog(&self) -> Result<Catalog, i32> {
        Catalog::load(self.pricing.as_deref()).map_err(|e| {
            eprint_diag(&e.to_diagnostic());
            super::EXIT_ERROR
        })
    }

    /// The version in force on `--pricing-date`.
    pub fn table(&self) -> Result<PriceTable, i32> {
        let catalog = self.catalog()?;
        version_at(&catalog, self.date())
    }
}

fn version_at(catalog: &Catalog, date: NaiveDate) -> Result<PriceTable, i32> {
    catalog.at(date).cloned().map_err(|e| {
        eprint_diag(&e.to_diagnostic());
        super::EXIT_ERROR
    })
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla pricing list
  flotilla pricing show                      # the version in force today
  flotilla pricing show 2025-06-01 --format markdown
  flotilla pricing diff 2025-06-01 2026-02-01
  flotilla pricing diff 2025-06-01 2026-02-01 --spec specs/jarvis.yaml
  flotilla pricing export my-pricing && flotilla cost specs/jarvis.yaml --pricing my-pricing")]
pub struct PricingArgs {
    #[command(subcommand)]
    pub command: PricingCommand,
    #[command(flatten)]
    pub opts: PricingOpts,
}

#[derive(Debug, Subcommand)]
pub enum PricingCommand {
    /// List the pricing versions and mark the one in force today.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show every row of the version in force on DATE (default today), with its status
    /// (published, derived, assumed), source and note.
    Show {
        /// Any date (YYYY-MM-DD): the version in force on it is shown.
        #[arg(value_name = "DATE", value_parser = parse_date)]
        date: Option<NaiveDate>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// What changed between the versions in force on DATE_A and DATE_B; with --spec,
    /// also what that does to the spec's monthly bill.
    Diff {
        /// The earlier date (YYYY-MM-DD); its version in force is the "before".
        #[arg(value_name = "DATE_A", value_parser = parse_date)]
        date_a: NaiveDate,
        /// The later date (YYYY-MM-DD); its version in force is the "after".
        #[arg(value_name = "DATE_B", value_parser = parse_date)]
        date_b: NaiveDate,
        /// Price this spec under both versions.
        #[arg(long, value_name = "SPEC")]
        spec: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Write the embedded tables to DIR (as DIR/fly/<date>/…), to start a table of your
    /// own, e.g. with the region multipliers from your invoice.
    Export {
        /// The directory to write (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

pub fn run(args: PricingArgs) -> i32 {
    match args.command {
        PricingCommand::List { format } => {
            let catalog = match args.opts.catalog() {
                Ok(c) => c,
                Err(code) => return code,
            };
            print_out(&match format {
                Format::Json => json_out(&pricing::render::list_json(&catalog, today())),
                Format::Text => pricing::render::list(&catalog, today(), false),
                Format::Markdown => pricing::render::list(&catalog, today(), true),
            });
            super::EXIT_OK
        }
        PricingCommand::Show { date, format } => {
            let catalog = match args.opts.catalog() {
                Ok(c) => c,
                Err(code) => return code,
            };
            let date = date.or(args.opts.pricing_date).unwrap_or_else(today);
            let t = match version_at(&catalog, date) {
                Ok(t) => t,
                Err(code) => return code,
            };
            print_out(&match format {
                Format::Json => json_out(&pricing::render::show_json(&t)),
                Format::Text => pricing::render::show(&t, false),
                Format::Markdown => pricing::render::show(&t, true),
            });
            super::EXIT_OK
        }
        PricingCommand::Diff {
            date_a,
            date_b,
            spec,
            format,
        } => diff(&args.opts, date_a, date_b, spec.as_deref(), format),
        PricingCommand::Export { dir } => match pricing::export_embedded(&dir) {
            Ok(files) => {
                eprintln!(
                    "Wrote {} files under {}; edit them and pass --pricing {}.",
                    files.len(),
                    dir.display(),
                    dir.display()
                );
                super::EXIT_OK
            }
            Err(e) => {
                eprint_diag(&e.to_diagnostic());
                super::EXIT_ERROR
            }
        },
    }
}

fn json_out(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

fn diff(
    opts: &PricingOpts,
    a: NaiveDate,
    b: NaiveDate,
    spec: Option<&Path>,
    format: Format,
) -> i32 {
    let catalog = match opts.catalog() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (ta, tb) = match (version_at(&catalog, a), version_at(&catalog, b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let d = pricing::diff(&ta, &tb);
    let fleet = match spec {
        None => None,
        Some(path) => {
            let loaded = match load_spec(path) {
                Ok(l) => l,
                Err(code) => return code,
            };
            // One version after the other: a resource neither can price is reported once.
            let ra = match super::cost::price_loaded(&ta, &loaded, path) {
                Ok(r) => r,
                Err(code) => return code,
            };
            let rb = match super::cost::price_loaded(&tb, &loaded, path) {
                Ok(r) => r,
                Err(code) => return code,
            };
            Some((path.display().to_string(), ra, rb))
        }
    };
    let markdown = format == Format::Markdown;
    let out = match format {
        Format::Json => {
            let mut v = pricing::render::diff_json(&d);
            if let (Some((title, ra, rb)), Some(obj)) = (&fleet, v.as_object_mut()) {
                let dl = cost::delta(ra, rb);
                let view = View {
                    title,
                    report: rb,
                    base: Some((ra, &dl)),
                    verdict: None,
                };
                obj.insert("fleet".into(), cost::render::json(&view));
            }
            json_out(&v)
        }
        _ => {
            let mut s = pricing::render::diff(&d, &ta, &tb, markdown);
            if let Some((title, ra, rb)) = &fleet {
                let dl = cost::delta(ra, rb);
                s.push_str(&cost::render::fleet_impact(title, &dl, markdown));
            }
            s
        }
    };
    print_out(&out);
    if ta.version() == tb.version() {
        eprint_diag(&Diagnostic::warning(format!(
            "{a} and {b} fall under the same pricing version ({})",
            ta.version()
        )));
    }
    super::EXIT_OK
}
