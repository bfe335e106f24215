//! `flotilla import --org ORG`: write a spec for an existing organization to stdout, and
//! a summary of what it could not express to stderr.

use clap::Args;

use super::Exit;
use super::common::print_out;
use super::env::Env;
use crate::ops::Error;
use crate::ops::import::{AppPattern, Options, Outcome};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla import --org my-jarvis --app-pattern 'my-jarvis-*' > specs/jarvis.yaml
  flotilla import --org my-jarvis --sim                          # against the local simulator

The spec goes to stdout; what it could not express is listed on stderr and as comments
in the spec. Planning it against the same org creates, replaces and deletes nothing.")]
pub struct ImportArgs {
    /// The Fly organization slug.
    #[arg(long, value_name = "ORG")]
    pub org: String,
    /// Only apps whose names match PATTERN (`*` any run of characters, `?` one).
    #[arg(long, value_name = "PATTERN")]
    pub app_pattern: Option<String>,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
}

pub fn run(args: ImportArgs, env: &Env) -> Result<Exit, Error> {
    let outcome = crate::ops::import::run(&Options {
        org: args.org,
        app_pattern: args.app_pattern.as_deref().map(AppPattern::new),
        target: args.target.options(env),
    })?;
    print_out(&outcome.spec);
    eprint!("{}", summary(&outcome));
    Ok(Exit::Ok)
}

/// The stderr summary: counts, then each thing not expressed.
pub fn summary(o: &Outcome) -> String {
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let mut s = format!(
        "Imported {}: {}, {}, {}.\n",
        n(o.apps, "app", "apps"),
        n(o.tenants, "tenant", "tenants"),
        n(o.apps - o.tenants, "shared app", "shared apps"),
        n(o.tiers, "tier", "tiers")
    );
    if o.unexpressed.is_empty() {
        s.push_str("Everything observed is expressed in the spec.\n");
    } else {
        s.push_str(&format!(
            "Not expressed ({}; also comments in the spec):\n",
            o.unexpressed.len()
        ));
        for u in &o.unexpressed {
            s.push_str(&format!("  - {u}\n"));
        }
    }
    s
}
