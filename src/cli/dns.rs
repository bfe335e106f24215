//! `flotilla dns SPEC`: the DNS records each declared custom domain needs and where its
//! certificate stands, as a table per tenant, JSON or a zone-file fragment.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::Exit;
use super::env::Env;
use crate::ops::Error;
use crate::ops::dns::Options;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DnsFormat {
    /// A table per tenant.
    Text,
    /// The complete outcome (fields in README, "Custom domains").
    Json,
    /// A zone-file fragment: FQDNs with trailing dots, TTL 300.
    Bind,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla dns specs/jarvis.yaml --sim
  flotilla dns specs/jarvis.yaml --tenant alice --format bind >> zone.txt
  flotilla dns specs/jarvis.yaml --format json

Reads the apps' IP addresses and certificates; changes nothing.")]
pub struct DnsArgs {
    /// The spec declaring the hostnames.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// Only this tenant's hostnames (repeatable; default: every declared hostname).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    #[arg(long, value_enum, default_value_t = DnsFormat::Text)]
    pub format: DnsFormat,
}

pub fn run(args: DnsArgs, env: &Env) -> Result<Exit, Error> {
    let outcome = crate::ops::dns::run(&Options {
        spec: args.spec.clone(),
        tenants: args.tenants.clone(),
        target: args.target.options(env),
    })?;
    let text = match args.format {
        DnsFormat::Text => crate::render::dns::text(&outcome.org, &outcome.hostnames),
        DnsFormat::Json => crate::ops::to_json_pretty(&outcome, "the DNS records")?,
        DnsFormat::Bind => {
            crate::render::dns::bind(&outcome.org, &outcome.fleet, &outcome.hostnames)
        }
    };
    print!("{text}");
    Ok(Exit::Ok)
}
