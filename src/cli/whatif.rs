//! `flotilla whatif SCENARIO`: what each architecture costs, and which Machines it needs,
//! across a sweep of tenant counts and usage patterns; text, JSON, Markdown or HTML.

use std::path::PathBuf;

use clap::Args;

use super::common::{eprint_diag, eprint_diags, print_out};
use super::pricing::{PricingOpts, today};
use crate::diag::Diagnostic;
use crate::whatif::{self, RunOptions, render};

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

pub fn run(args: WhatifArgs) -> i32 {
    let scenario = match whatif::load_file(&args.scenario) {
        Ok(s) => s,
        Err(d) => {
            eprint_diags(&d);
            let n = d.error_count();
            eprintln!(
                "\n{} is not valid: {n} error{}.",
                args.scenario.display(),
                if n == 1 { "" } else { "s" }
            );
            return super::EXIT_ERROR;
        }
    };
    let catalog = match args.pricing.catalog() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let opts = RunOptions {
        pricing_date: args.pricing.pricing_date,
        today: today(),
        force: args.force,
    };
    let report = match whatif::run(&scenario, &catalog, &opts) {
        Ok(r) => r,
        Err(d) => {
            eprint_diags(&d);
            return super::EXIT_ERROR;
        }
    };
    let text = match args.format {
        WhatifFormat::Text => render::text(&report),
        WhatifFormat::Json => render::json_string(&report),
        WhatifFormat::Markdown => render::markdown(&report),
        WhatifFormat::Html => render::html(&report),
    };
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprint_diag(
                    &Diagnostic::error(format!("cannot write the report: {e}"))
                        .file(path.display().to_string())
                        .hint("check that the directory exists and is writable"),
                );
                return super::EXIT_ERROR;
            }
            eprintln!(
                "wrote {} ({} rows, {} architectures)",
                path.display(),
                report.rows.len(),
                report.architectures.len()
            );
        }
        None => print_out(&text),
    }
    for w in &report.warnings {
        eprint_diag(&Diagnostic::warning(w.clone()));
    }
    super::EXIT_OK
}
