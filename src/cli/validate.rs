//! `flotilla validate SPEC`: check a spec and report every problem at once.

use std::path::PathBuf;

use clap::Args;

use super::Exit;
use super::common::{Format, eprint_diags, eprint_error, print_out};
use crate::ops::validate::{FileReport, Options, Outcome};
use crate::ops::{Error, to_json_pretty};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  flotilla validate specs/jarvis.yaml\n  flotilla validate specs/*.yaml\n  flotilla validate specs/jarvis.yaml --format json   # diagnostics for tooling"
)]
pub struct ValidateArgs {
    /// Spec files to check.
    #[arg(required = true, value_name = "SPEC")]
    pub specs: Vec<PathBuf>,
    /// `text` (default) or `json` (a list of diagnostics per file).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    #[command(flatten)]
    pub secret_files: super::common::SecretFileArgs,
}

pub fn run(args: ValidateArgs) -> Result<Exit, Error> {
    let outcome = crate::ops::validate::run(&Options {
        specs: args.specs.clone(),
        secret_files: args.secret_files.policy(),
    });
    if args.format == Format::Json {
        print_out(&json(&outcome)?);
    } else {
        outcome.files.iter().for_each(text);
    }
    if outcome.all_valid() {
        Ok(Exit::Ok)
    } else {
        Err(Error::reported())
    }
}

/// One file: warnings and the counts on success, else every problem and the count.
fn text(f: &FileReport) {
    let file = f.file.display().to_string();
    match &f.result {
        Ok((c, warnings)) => {
            eprint_diags(warnings);
            print_out(&format!(
                "{file} is valid: {} tenants, {} apps, {} machines, {} volumes, {} secrets ({} resources).\n",
                c.tenants, c.apps, c.machines, c.volumes, c.secrets, c.resources
            ));
        }
        Err(diags) => eprint_error(&Error::invalid(&file, diags.clone())),
    }
}

/// A list of diagnostics (and counts) per file.
fn json(outcome: &Outcome) -> Result<String, Error> {
    let reports: Vec<serde_json::Value> = outcome
        .files
        .iter()
        .map(|f| {
            let file = f.file.display().to_string();
            match &f.result {
                Ok((c, warnings)) => serde_json::json!({
                    "file": file, "valid": true,
                    "diagnostics": warnings,
                    "tenants": c.tenants, "apps": c.apps, "machines": c.machines,
                    "volumes": c.volumes, "secrets": c.secrets,
                }),
                Err(diags) => {
                    serde_json::json!({"file": file, "valid": false, "diagnostics": diags})
                }
            }
        })
        .collect();
    to_json_pretty(&reports, "the validation report")
}
