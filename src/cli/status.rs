//! `flotilla status SPEC`: per tenant the Machines' states, regions, images, checks, last
//! change and drift, with one summary line for the fleet; `--watch N` shows it again every
//! N seconds until Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::Exit;
use super::common::{eprint_diags, eprint_error, print_out};
use super::env::Env;
use crate::ops::Error;
use crate::ops::status::{Options, Outcome, Watch, render};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla status specs/jarvis.yaml --sim
  FLY_API_TOKEN=... flotilla status specs/jarvis.yaml --tenant alice --tenant bob
  flotilla status specs/jarvis.yaml --format json
  flotilla status specs/jarvis.yaml --watch 10      # every 10 s until Ctrl-C

Drift is the number of changes `flotilla plan` would make for the tenant.
Where the state comes from: as for `plan` (--state FILE, --sim, the Fly API).")]
pub struct StatusArgs {
    /// The spec file.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// Read an observed-state JSON file instead of a live API.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["sim", "api"])]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    /// Only these tenants (repeatable).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: StatusFormat,
    /// Show the status again every SECONDS (1–86400) until Ctrl-C.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub watch: Option<u64>,
    /// With --watch: stop after this many renderings.
    #[arg(long, value_name = "N", hide = true, requires = "watch")]
    pub watch_count: Option<u64>,
    #[command(flatten)]
    pub secret_files: super::common::SecretFileArgs,
}

impl StatusArgs {
    fn options(&self, env: &Env) -> Result<Options, Error> {
        Ok(Options {
            spec: self.spec.clone(),
            state: self.state.clone(),
            target: self.target.options(env),
            tenants: self.tenants.clone(),
            secret_files: self.secret_files.policy(),
            fingerprint_key: env.fingerprint_key()?,
        })
    }
}

pub fn run(args: StatusArgs, env: &Env) -> Result<Exit, Error> {
    let opts = args.options(env)?;
    let Some(every) = args.watch else {
        let outcome = crate::ops::status::run(&opts)?;
        return show(&args, &outcome).map(|()| Exit::Ok);
    };
    let watch = Watch {
        every: Duration::from_secs(every),
        count: args.watch_count,
    };
    let clear = env.stdout_tty && args.format == StatusFormat::Text;
    crate::ops::status::watch(&opts, watch, |result| {
        if clear {
            print_out("\x1b[2J\x1b[H");
        }
        match result.and_then(|o| show(&args, &o)) {
            Ok(()) => {}
            Err(e) => eprint_error(&e),
        }
    })?;
    Ok(Exit::Ok)
}

/// Warnings on stderr, the status on stdout.
fn show(args: &StatusArgs, o: &Outcome) -> Result<(), Error> {
    eprint_diags(&o.spec_warnings);
    eprint_diags(&o.diagnostics);
    print_out(&match args.format {
        StatusFormat::Text => render::text(o),
        StatusFormat::Json => render::json(o)?,
    });
    Ok(())
}
