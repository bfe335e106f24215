//! `flotilla unlock SPEC`: clear the fleet lock of a spec's fleet by hand.

use std::path::PathBuf;

use clap::Args;

use super::Exit;
use super::env::Env;
use crate::apply::lock::Unlocked;
use crate::ops::Error;
use crate::ops::unlock::{Options, Outcome};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla unlock specs/jarvis.yaml          # the apply holding the lock was killed

Only clear a lock whose holder is gone: the apply holding it keeps renewing it, and
a lock nobody renews expires by itself (apply --lock-ttl, default 90 s).")]
pub struct UnlockArgs {
    /// The spec whose fleet to unlock.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
}

pub fn run(args: UnlockArgs, env: &Env) -> Result<Exit, Error> {
    let outcome = crate::ops::unlock::run(&Options {
        spec: args.spec,
        target: args.target.options(env),
    })?;
    println!("{}", text(&outcome));
    Ok(Exit::Ok)
}

fn text(o: &Outcome) -> String {
    match &o.result {
        Unlocked::Cleared(by) => format!(
            "Cleared the lock of fleet `{}` in org {} (app {}); it was held by {by}.",
            o.fleet, o.org, o.app
        ),
        Unlocked::NotHeld => format!(
            "Fleet `{}` in org {} is not locked (app {}).",
            o.fleet, o.org, o.app
        ),
        Unlocked::NoSentinel => format!(
            "Fleet `{}` in org {} has no lock yet (no app {}): nothing to clear.",
            o.fleet, o.org, o.app
        ),
    }
}
