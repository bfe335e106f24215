//! `flotilla validate SPEC`: check a spec and report every problem at once.

use std::path::PathBuf;

use clap::Args;

use super::common::{Format, eprint_diags, print_out};
use crate::resource::Kind;

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
}

pub fn run(args: ValidateArgs) -> i32 {
    let mut code = super::EXIT_OK;
    let mut reports = Vec::new();
    for path in &args.specs {
        match crate::spec::load_file(path) {
            Ok(l) => {
                let d = &l.desired;
                let r = &d.resources;
                if args.format == Format::Json {
                    reports.push(serde_json::json!({
                        "file": path.display().to_string(), "valid": true,
                        "diagnostics": l.warnings,
                        "tenants": d.tenants.len(), "apps": r.count(Kind::App), "machines": r.count(Kind::Machine),
                        "volumes": r.count(Kind::Volume), "secrets": r.count(Kind::Secret),
                    }));
                } else {
                    eprint_diags(&l.warnings);
                    print_out(&format!(
                        "{} is valid: {} tenants, {} apps, {} machines, {} volumes, {} secrets ({} resources).\n",
                        path.display(),
                        d.tenants.len(),
                        r.count(Kind::App),
                        r.count(Kind::Machine),
                        r.count(Kind::Volume),
                        r.count(Kind::Secret),
                        r.len()
                    ));
                }
            }
            Err(diags) => {
                code = super::EXIT_ERROR;
                if args.format == Format::Json {
                    reports.push(serde_json::json!({"file": path.display().to_string(), "valid": false, "diagnostics": diags}));
                } else {
                    eprint_diags(&diags);
                    let n = diags.error_count();
                    eprintln!(
                        "\n{} is not valid: {n} error{}.",
                        path.display(),
                        if n == 1 { "" } else { "s" }
                    );
                }
            }
        }
    }
    if args.format == Format::Json {
        print_out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&reports).unwrap_or_default()
        ));
    }
    code
}
