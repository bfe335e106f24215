//! `flotilla graph SPEC`: the dependency graph of the desired state.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::common::{eprint_diag, load_spec, print_out};
use crate::graph::Graph;
use crate::plan::filter_tenants;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  flotilla graph specs/jarvis.yaml\n  flotilla graph specs/jarvis.yaml --tenant alice --format dot | dot -Tsvg > alice.svg"
)]
pub struct GraphArgs {
    /// The spec file.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// `text` (creation order, one level per line group) or `dot` (Graphviz).
    #[arg(long, value_enum, default_value = "text")]
    pub format: GraphFormat,
    /// Only these tenants' resources (repeatable).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
}

pub fn run(args: GraphArgs) -> i32 {
    let loaded = match load_spec(&args.spec) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let set = filter_tenants(&loaded.desired.resources, &args.tenants);
    match Graph::build(&set) {
        Ok(g) => {
            print_out(&match args.format {
                GraphFormat::Text => g.to_text(),
                GraphFormat::Dot => g.to_dot(),
            });
            super::EXIT_OK
        }
        Err(d) => {
            eprint_diag(&d.file(args.spec.display().to_string()));
            super::EXIT_ERROR
        }
    }
}
