//! `flotilla whatif SCENARIO`: what each architecture costs, and which Machines it needs,
//! across a sweep of tenant counts and usage patterns; text, JSON, Markdown or HTML.

use std::path::PathBuf;

use clap::Args;

use super::Exit;
use super::common::{eprint_diag, print_out};
use super::pricing::PricingOpts;
use crate::diag::Diagnostic;
use crate::ops::whatif::Options;
use crate::ops::{Error, to_json_pretty};
use crate::whatif::{Report, render};

/// Output formats of `whatif`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WhatifFormat {
    Text,
    Json,
    Markdown,
    Html,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla whatif examples/whatif/hybrid.yaml
  flotilla whatif examples/whatif/hybrid.yaml --format html --out report.html
  flotilla whatif examples/whatif/today.yaml --format markdown --out today.md
  flotilla whatif examples/whatif/shared-server.yaml --format json
  flotilla whatif examples/whatif/hybrid.yaml --pricing-date 2025-06-01

The scenario format, the models and the four worked examples: examples/whatif/README.md.
Sweeps of more than 10,000 rows need --force. Exit codes: 0 ok, 1 error.")]
pub struct WhatifArgs {
    /// The scenario file: a base (spec and/or profile, memory model), sweep axes and the
    /// architectures to compare.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,
    /// Output format: text for a terminal, json (rows and break-even points), markdown,
    /// or html (one self-contained page with charts; use with --out).
    #[arg(long, value_enum, default_value = "text")]
    pub format: WhatifFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub pricing: PricingOpts,
    /// Run sweeps of more than 10,000 rows.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: WhatifArgs) -> Result<Exit, Error> {
    let report = crate::ops::whatif::run(&Options {
        scenario: args.scenario.clone(),
        pricing: args.pricing.options(),
        force: args.force,
    })?;
    let text = match args.format {
        WhatifFormat::Text => render::text(&report),
        WhatifFormat::Json => to_json_pretty(&render::json(&report), "the what-if report")?,
        WhatifFormat::Markdown => render::markdown(&report),
        WhatifFormat::Html => render::html(&report),
    };
    match &args.out {
        Some(path) => write_report(path, &text, &report)?,
        None => print_out(&text),
    }
    for w in &report.warnings {
        eprint_diag(&Diagnostic::warning(w.clone()));
    }
    Ok(Exit::Ok)
}

fn write_report(path: &std::path::Path, text: &str, report: &Report) -> Result<(), Error> {
    crate::fsutil::write_atomic(path, text.as_bytes()).map_err(|e| {
        Error::new(
            Diagnostic::error(format!("cannot write the report: {e}"))
                .file(path.display().to_string())
                .hint("check that the directory exists and is writable"),
        )
    })?;
    eprintln!(
        "wrote {} ({} rows, {} architectures)",
        path.display(),
        report.rows.len(),
        report.architectures.len()
    );
    Ok(())
}
