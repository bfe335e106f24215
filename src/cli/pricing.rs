//! `flotilla pricing list | show [DATE] | diff DATE_A DATE_B [--spec SPEC] | export DIR`,
//! and the `--pricing DIR` / `--pricing-date DATE` options shared with `cost` and `plan`.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Format, eprint_diag, eprint_diags, print_out};
use crate::cost::{self, render::View};
use crate::ops::pricing::{DiffOutcome, PricingOptions, today};
use crate::ops::{Error, to_json_pretty};
use crate::pricing;

/// Parses `YYYY-MM-DD` (or `today`).
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    if s == "today" {
        return Ok(today());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; write YYYY-MM-DD, e.g. 2026-02-01"))
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
    /// The options these arguments name.
    pub fn options(&self) -> PricingOptions {
        PricingOptions {
            dir: self.pricing.clone(),
            date: self.pricing_date,
        }
    }
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

pub fn run(args: PricingArgs) -> Result<Exit, Error> {
    let opts = args.opts.options();
    match args.command {
        PricingCommand::List { format } => {
            let l = crate::ops::pricing::list(&opts)?;
            print_out(&match format {
                Format::Json => json_out(&pricing::render::list_json(&l.catalog, l.today))?,
                Format::Text => pricing::render::list(&l.catalog, l.today, false),
                Format::Markdown => pricing::render::list(&l.catalog, l.today, true),
            });
        }
        PricingCommand::Show { date, format } => {
            let t = crate::ops::pricing::show(&opts, date)?;
            print_out(&match format {
                Format::Json => json_out(&pricing::render::show_json(&t))?,
                Format::Text => pricing::render::show(&t, false),
                Format::Markdown => pricing::render::show(&t, true),
            });
        }
        PricingCommand::Diff {
            date_a,
            date_b,
            spec,
            format,
        } => diff(&opts, date_a, date_b, spec.as_deref(), format)?,
        PricingCommand::Export { dir } => {
            let files = crate::ops::pricing::export(&dir)?;
            eprintln!(
                "Wrote {} files under {}; edit them and pass --pricing {}.",
                files.len(),
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(Exit::Ok)
}

fn json_out(v: &serde_json::Value) -> Result<String, Error> {
    to_json_pretty(v, "the pricing report")
}

fn diff(
    opts: &PricingOptions,
    a: NaiveDate,
    b: NaiveDate,
    spec: Option<&Path>,
    format: Format,
) -> Result<(), Error> {
    let d = crate::ops::pricing::diff(opts, a, b, spec)?;
    eprint_diags(&d.spec_warnings);
    print_out(&render_diff(&d, format)?);
    if let Some(w) = d.same_version() {
        eprint_diag(&w);
    }
    Ok(())
}

fn render_diff(d: &DiffOutcome, format: Format) -> Result<String, Error> {
    let markdown = format == Format::Markdown;
    if format != Format::Json {
        let mut s = pricing::render::diff(&d.diff, &d.before, &d.after, markdown);
        if let Some(f) = &d.fleet {
            s.push_str(&cost::render::fleet_impact(&f.title, &f.delta, markdown));
        }
        return Ok(s);
    }
    let mut v = pricing::render::diff_json(&d.diff);
    if let (Some(f), Some(obj)) = (&d.fleet, v.as_object_mut()) {
        let view = View {
            title: &f.title,
            report: &f.after,
            base: Some((&f.before, &f.delta)),
            verdict: None,
        };
        obj.insert("fleet".into(), cost::render::json(&view)?);
    }
    json_out(&v)
}
