//! `unlock`: clears a fleet's lock by hand, for when its holder is known to be gone and
//! waiting for the lease to expire is not wanted. It releases whatever lease the fleet's
//! sentinel Machine carries, whoever took it.

use std::path::PathBuf;

use crate::apply::lock::{Unlocked, sentinel_app};
use crate::diag::Diagnostic;
use crate::ops::target::{Session, TargetOptions};
use crate::ops::{Error, load_spec};

/// Whose lock to clear.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The spec naming the org and the fleet.
    pub spec: PathBuf,
    pub target: TargetOptions,
}

/// What was found and done.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub org: String,
    pub fleet: String,
    /// The sentinel app.
    pub app: String,
    pub result: Unlocked,
}

pub fn run(opts: &Options) -> Result<Outcome, Error> {
    if !opts.target.is_live() {
        return Err(Error::new(
            Diagnostic::error("unlock needs an organization to act on")
                .hint("use --sim for the local simulator, or set FLY_API_TOKEN"),
        ));
    }
    let loaded = load_spec(&opts.spec)?;
    let org = loaded.desired.org.clone();
    let fleet = loaded.desired.fleet.clone();
    let app = sentinel_app(&org, &fleet);
    let session = Session::connect(&opts.target)?;
    let result = session
        .block_on(crate::apply::lock::unlock(
            &session.target().client,
            &org,
            &fleet,
        ))
        .map_err(|e| {
            Error::new(
                Diagnostic::error(format!("cannot clear the lock of fleet `{fleet}`: {e}"))
                    .address(app.clone())
                    .hint("check the token's access to the org; the lock also expires by itself once its holder stops renewing it (--lock-ttl)"),
            )
        })?;
    Ok(Outcome {
        org,
        fleet,
        app,
        result,
    })
}
