//! `flotilla graph SPEC`: the dependency graph of the desired state.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::Exit;
use super::common::{eprint_diags, print_out};
use crate::ops::Error;
use crate::ops::graph::Options;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Json,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  flotilla graph specs/jarvis.yaml\n  flotilla graph specs/jarvis.yaml --tenant alice --format dot | dot -Tsvg > alice.svg\n  flotilla graph specs/jarvis.yaml --format json | jq '.edges | length'"
)]
pub struct GraphArgs {
    /// The spec file.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// `text` (creation order, one level per line group), `dot` (Graphviz) or `json`
    /// (nodes with their kind and creation level, edges with their relation).
    #[arg(long, value_enum, default_value = "text")]
    pub format: GraphFormat,
    /// Only these tenants' resources (repeatable).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
}

pub fn run(args: GraphArgs) -> Result<Exit, Error> {
    let outcome = crate::ops::graph::run(&Options {
        spec: args.spec,
        tenants: args.tenants,
    })?;
    eprint_diags(&outcome.spec_warnings);
    print_out(&match args.format {
        GraphFormat::Text => outcome.graph.to_text(),
        GraphFormat::Dot => outcome.graph.to_dot(),
        GraphFormat::Json => serde_json::to_string_pretty(&outcome.graph.to_json())
            .map(|s| s + "\n")
            .map_err(|e| Error::line(format!("error: the graph could not be serialized: {e}")))?,
    });
    Ok(Exit::Ok)
}
