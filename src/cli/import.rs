//! `flotilla import --org ORG` / `--fly-toml FILE`: write a spec for an existing
//! organization, or for one app's fly.toml, to stdout, and a summary of what it could
//! not express to stderr.

use clap::Args;

use super::Exit;
use super::common::print_out;
use super::env::Env;
use crate::ops::Error;
use crate::ops::import::{AppPattern, Options, Outcome, flytoml};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla import --org my-jarvis --app-pattern 'my-jarvis-*' > specs/jarvis.yaml
  flotilla import --org my-jarvis --sim                          # against the local simulator
  flotilla import --fly-toml fly.toml --org my-org > specs/shop.yaml

The spec goes to stdout; what it could not express is listed on stderr and as comments
in the spec. Planning it against the same org creates, replaces and deletes nothing.
With --fly-toml, the app's fly.toml becomes the defaults of every tenant; --org then only
names the org written in the spec (default: personal).")]
pub struct ImportArgs {
    /// The Fly organization slug.
    #[arg(long, value_name = "ORG", required_unless_present = "fly_toml")]
    pub org: Option<String>,
    /// Convert this fly.toml instead of reading an org.
    #[arg(long, value_name = "FILE", conflicts_with = "app_pattern")]
    pub fly_toml: Option<std::path::PathBuf>,
    /// Only apps whose names match PATTERN (`*` any run of characters, `?` one).
    #[arg(long, value_name = "PATTERN")]
    pub app_pattern: Option<String>,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
}

pub fn run(args: ImportArgs, env: &Env) -> Result<Exit, Error> {
    if let Some(file) = args.fly_toml {
        let outcome = crate::ops::import::flytoml::run(&flytoml::Options {
            file,
            org: args.org,
        })?;
        print_out(&outcome.spec);
        eprint!("{}", fly_toml_summary(&outcome));
        return Ok(Exit::Ok);
    }
    let outcome = crate::ops::import::run(&Options {
        org: args.org.unwrap_or_default(),
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

/// The stderr summary of a fly.toml conversion: the settings written, then each key
/// not mapped.
pub fn fly_toml_summary(o: &flytoml::Outcome) -> String {
    let mut s = format!(
        "Converted the fly.toml{}: defaults {}.\n",
        o.app
            .as_ref()
            .map_or(String::new(), |a| format!(" of app {a}")),
        o.settings.join(", ")
    );
    if o.unmapped.is_empty() {
        s.push_str("Every key is mapped.\n");
    } else {
        s.push_str(&format!(
            "Not mapped ({}; also comments in the spec):\n",
            o.unmapped.len()
        ));
        for u in &o.unmapped {
            s.push_str(&format!("  - {u}\n"));
        }
    }
    s
}
