//! The operations behind each command, as library calls: `validate`, `plan`, `apply`,
//! `cost`, `pricing`, `graph`, `whatif`, `sim`, `unlock` and `snapshot` (also `snapshots`,
//! sharing [`data`]), plus [`target`] (where the observed
//! state comes from).
//!
//! Each operation takes a plain options struct (no argument-parser types, no process
//! environment: the caller passes the API token, hostname and terminal facts in) and
//! returns a typed outcome with its diagnostics, or an [`Error`]. Operations never print;
//! the command line renders outcomes and maps errors to exit codes in one place. The
//! exceptions are by design: an apply's progress lines (`apply::progress`, off with
//! `quiet`) and the simulator's serve loop, which runs until a signal.
//!
//! Secret values are the one thing read from the process environment, at apply (or live
//! plan) time, through [`target::secret_from_env`].

pub mod apply;
pub mod cost;
pub mod data;
mod error;
pub mod graph;
pub mod plan;
pub mod pricing;
pub mod sim;
pub mod snapshot;
pub mod target;
pub mod unlock;
pub mod validate;
pub mod whatif;

use std::path::Path;

pub use error::{Error, ErrorKind, not_valid};

use crate::diag::{Diagnostic, suggest};
use crate::resource::Desired;
use crate::spec::Loaded;

/// Loads and validates a spec. An invalid spec is an [`Error`] carrying every problem and
/// the closing "SPEC is not valid: N errors." line.
pub fn load_spec(path: &Path) -> Result<Loaded, Error> {
    crate::spec::load_file(path).map_err(|d| Error::invalid(&path.display().to_string(), d))
}

/// Loads and validates a spec ([`load_spec`]) and checks its `file:` secret references
/// against `files` ([`crate::secret_files::check_references`]): a refused reference makes
/// the spec invalid, a missing file is a warning.
pub fn load_spec_checked(
    path: &Path,
    files: &crate::secret_files::FilePolicy,
) -> Result<Loaded, Error> {
    crate::secret_files::checked(load_spec(path)?, files)
        .map_err(|d| Error::invalid(&path.display().to_string(), d))
}

/// Checks that every name in `tenants` is a tenant of `desired`; the error names the
/// first unknown one with close matches. `file` is the spec named in the message, when
/// the desired state came from one.
pub fn check_tenants(
    desired: &Desired,
    tenants: &[String],
    file: Option<&Path>,
) -> Result<(), Error> {
    let Some(unknown) = tenants
        .iter()
        .find(|t| !desired.tenants.iter().any(|x| &x.name == *t))
    else {
        return Ok(());
    };
    let hint = suggest(
        unknown,
        desired.tenants.iter().map(|x| x.name.as_str()),
        "tenants",
    );
    let message = match file {
        Some(f) => format!("--tenant {unknown}: no such tenant in {}", f.display()),
        None => format!("--tenant {unknown}: no such tenant"),
    };
    Err(Error::new(Diagnostic::error(message).hint(hint)))
}

/// A multi-threaded tokio runtime, for the operations that talk to an API.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(Diagnostic::error(format!(
                "cannot start the async runtime: {e}"
            )))
        })
}

/// `value` as pretty JSON followed by a newline; a value that cannot be serialized is an
/// error naming `what`, never empty output.
pub fn to_json_pretty<T: serde::Serialize + ?Sized>(
    value: &T,
    what: &str,
) -> Result<String, Error> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| {
            Error::new(
                Diagnostic::error(format!("{what} cannot be written as JSON: {e}"))
                    .hint("this is a bug in flotilla; please report it with the input"),
            )
        })
}
