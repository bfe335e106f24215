//! The operations behind each command, as library calls: `validate`, `plan`, `apply`,
//! `cost`, `pricing`, `graph`, `whatif`, `sim`, `unlock`, `schema`, `status`, `comment` and `snapshot` (also
//! `snapshots`, sharing [`data`]), plus [`target`] (where the observed
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
pub mod backup;
pub mod comment;
pub mod cost;
pub mod data;
pub mod dns;
mod error;
pub mod graph;
pub mod import;
pub mod plan;
pub mod preflight;
pub mod pricing;
pub mod restore;
pub mod schema;
pub mod sim;
pub mod snapshot;
pub mod status;
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
    check_tenant_names(desired, &[], tenants, file)
}

/// Like [`check_tenants`], but a tenant removed from the spec whose resources are still
/// `observed` is a valid target too (its removal is planned).
pub fn check_tenants_observed(
    desired: &Desired,
    observed: &crate::state::Observed,
    tenants: &[String],
    file: Option<&Path>,
) -> Result<(), Error> {
    let mut seen: Vec<&str> = observed
        .resources
        .iter()
        .filter_map(|r| r.tenant.as_deref())
        .filter(|t| !desired.tenants.iter().any(|x| x.name == *t))
        .collect();
    seen.sort_unstable();
    seen.dedup();
    check_tenant_names(desired, &seen, tenants, file)
}

fn check_tenant_names(
    desired: &Desired,
    observed: &[&str],
    tenants: &[String],
    file: Option<&Path>,
) -> Result<(), Error> {
    let known = || {
        desired
            .tenants
            .iter()
            .map(|x| x.name.as_str())
            .chain(observed.iter().copied())
    };
    let Some(unknown) = tenants.iter().find(|t| !known().any(|x| x == t.as_str())) else {
        return Ok(());
    };
    let hint = suggest(unknown, known(), "tenants");
    let message = match file {
        Some(f) => format!("--tenant {unknown}: no such tenant in {}", f.display()),
        None => format!("--tenant {unknown}: no such tenant"),
    };
    let message = if observed.is_empty() {
        message
    } else {
        format!("{message}, nor observed in org {}", desired.org)
    };
    Err(Error::new(Diagnostic::error(message).hint(hint)))
}

/// Refuses a desired state that places a Machine or volume in a region Fly removed
/// (`platform::REGIONS` entries with `removed`): such a spec validates and can be priced
/// at an earlier date, but nothing can be created there. Checked by `plan` against a
/// live target and by `apply` before any request; `file` names the spec or saved plan.
pub fn check_current_regions(
    desired: &crate::resource::ResourceSet,
    file: &str,
) -> Result<(), Error> {
    let mut errors = Vec::new();
    for r in desired.iter() {
        let (region, fallbacks) = match &r.spec {
            crate::resource::Spec::Machine(m) => (&m.region, &m.fallback_regions),
            crate::resource::Spec::Volume(v) => (&v.region, &v.fallback_regions),
            _ => continue,
        };
        for code in std::iter::once(region).chain(fallbacks) {
            let Some(p) = crate::platform::any_region(code).and_then(|g| g.removal_problem())
            else {
                continue;
            };
            let which = if code == region {
                "region"
            } else {
                "fallback region"
            };
            errors.push(
                Diagnostic::error(format!("{which}: {}", p.message))
                    .address(r.address.to_string())
                    .file(file.to_string())
                    .hint(
                        p.hint
                            .replace("move to a current region", "choose a current region"),
                    ),
            );
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let n = errors.len();
    Err(
        Error::from(crate::diag::Diagnostics(errors)).with_summary(format!(
            "Nothing was changed: {n} resource placement(s) name a region Fly removed."
        )),
    )
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
