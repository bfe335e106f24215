//! `graph`: the dependency graph of a spec's desired resources (optionally one tenant's).

use std::path::PathBuf;

use crate::diag::Diagnostics;
use crate::graph::Graph;
use crate::ops::{Error, load_spec};
use crate::plan::filter_tenants;

/// Which spec, and which tenants (empty: all).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub spec: PathBuf,
    pub tenants: Vec<String>,
}

/// The graph, and the spec's warnings.
pub struct Outcome {
    pub graph: Graph,
    pub spec_warnings: Diagnostics,
}

/// `graph SPEC`.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    let loaded = load_spec(&opts.spec)?;
    let set = filter_tenants(&loaded.desired.resources, &opts.tenants);
    let graph = Graph::build(&set)
        .map_err(|d| Error::new(d.file(opts.spec.display().to_string())).after(&loaded.warnings))?;
    Ok(Outcome {
        graph,
        spec_warnings: loaded.warnings,
    })
}
