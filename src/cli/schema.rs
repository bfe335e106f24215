//! `flotilla schema`: print the spec's JSON Schema.

use clap::Args;

use super::Exit;
use super::common::print_out;
use crate::ops::Error;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  flotilla schema > flotilla.schema.json\n  # first line of a spec, for yaml-language-server (VS Code, Neovim, Helix …):\n  # yaml-language-server: $schema=../flotilla.schema.json"
)]
pub struct SchemaArgs {}

pub fn run(_: SchemaArgs) -> Result<Exit, Error> {
    print_out(&crate::ops::schema::run()?);
    Ok(Exit::Ok)
}
