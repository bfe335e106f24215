//! Command-line wiring (clap). Each subcommand's arguments and handler live in their own
//! file under `src/cli/`: it turns the arguments into an operation's options, calls the
//! operation (`crate::ops`), renders the outcome and returns an [`Exit`] or the
//! operation's error. This file reads the environment once ([`env::Env`]), dispatches,
//! and maps results to exit codes in one place ([`exit_code`]).
//!
//! Exit codes: 0 ok / no changes; 1 error; 2 changes present (`--detailed-exitcode`);
//! 3 budget guardrail exceeded.

use clap::{Parser, Subcommand};

mod apply;
mod backup;
mod comment;
pub mod common;
mod completions;
mod cost;
mod dns;
pub mod env;
mod graph;
mod import;
mod plan;
pub mod pricing;
mod restore;
mod schema;
mod sim;
mod snapshot;
mod status;
pub mod target;
mod unlock;
mod validate;
mod whatif;

/// Exit code: success, or no changes.
pub const EXIT_OK: i32 = 0;
/// Exit code: an error the user can act on.
pub const EXIT_ERROR: i32 = 1;
/// Exit code: the plan has changes (with `--detailed-exitcode`).
pub const EXIT_CHANGES: i32 = 2;
/// Exit code: a budget guardrail was exceeded.
pub const EXIT_BUDGET: i32 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "flotilla",
    version,
    about = "Plan, cost and apply fleets of per-tenant stacks on Fly.io from one YAML spec",
    long_about = None,
    after_help = "Examples:\n  flotilla validate specs/jarvis.yaml\n  flotilla plan specs/jarvis.yaml\n  flotilla plan specs/jarvis.yaml --state tests/states/jarvis-drift.json --format json\n  flotilla graph specs/jarvis.yaml --format dot\n  flotilla cost specs/jarvis.yaml --base base/specs/jarvis.yaml --format markdown\n  flotilla pricing diff 2025-06-01 2026-02-01\n  flotilla whatif examples/whatif/hybrid.yaml --format html --out report.html"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Check a spec and report every problem (file:line:column, path, what, hint).
    Validate(validate::ValidateArgs),
    /// Show what would change, per resource, with the monthly cost before and after.
    Plan(plan::PlanArgs),
    /// Make the organization match the spec (or a saved plan): create, update, replace
    /// and delete, idempotently.
    Apply(apply::ApplyArgs),
    /// Show the dependency graph of a spec's resources.
    Graph(graph::GraphArgs),
    /// Run a local Fly Machines API simulator (try flotilla without a Fly account).
    Sim(sim::SimArgs),
    /// Price a spec per tenant, kind and line; with --base, the change between two specs
    /// (a pull-request cost preview); with budget guardrails (exit 3).
    Cost(cost::CostArgs),
    /// List, show and compare the versioned price tables.
    Pricing(pricing::PricingArgs),
    /// Compare architectures across tenant counts and usage patterns: cost, Machines,
    /// break-even points, reservation advice (text, JSON, Markdown, HTML with charts).
    Whatif(whatif::WhatifArgs),
    /// Clear a fleet's apply lock whose holder is gone (it also expires by itself).
    Unlock(unlock::UnlockArgs),
    /// Print the spec's JSON Schema (for editors through yaml-language-server).
    Schema(schema::SchemaArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    Completions(completions::CompletionsArgs),
    /// Take an on-demand snapshot of the tenants' volumes (under the fleet lock).
    Snapshot(snapshot::SnapshotArgs),
    /// List the snapshots of the tenants' volumes: id, time, size, retention left.
    Snapshots(snapshot::SnapshotsArgs),
    /// Restore a tenant's volume from a snapshot (new volume, Machine remounted).
    Restore(restore::RestoreArgs),
    /// Post plan and cost markdown as one pull-request comment (found again by a hidden
    /// marker, updated in place).
    Comment(comment::CommentArgs),
    /// Per tenant: Machines' states, regions, images, checks, last change and drift; one
    /// summary line for the fleet (`--watch N` to follow it).
    Status(status::StatusArgs),
    /// Show the DNS records each custom domain needs and its certificate's status.
    Dns(dns::DnsArgs),
    /// Export the tenants' volumes off-site (S3-compatible) and restore from there.
    Backup(backup::BackupArgs),
    /// Write a spec for an existing organization (apps made by scripts or by hand), so
    /// planning it adopts them and changes nothing else.
    Import(import::ImportArgs),
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done; no changes (or changes without `--detailed-exitcode`).
    Ok,
    /// The plan has changes (`--detailed-exitcode`).
    Changes,
}

/// The exit code of a command's result; prints the error, if any. The one place where
/// outcomes and errors become exit codes.
pub fn exit_code(result: Result<Exit, crate::ops::Error>) -> i32 {
    match result {
        Ok(Exit::Ok) => EXIT_OK,
        Ok(Exit::Changes) => EXIT_CHANGES,
        Err(e) => {
            common::eprint_error(&e);
            match e.kind {
                crate::ops::ErrorKind::Failed => EXIT_ERROR,
                crate::ops::ErrorKind::Budget => EXIT_BUDGET,
            }
        }
    }
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    let env = env::Env::read();
    exit_code(run(cli, &env))
}

/// Runs a parsed command in `env`.
pub fn run(cli: Cli, env: &env::Env) -> Result<Exit, crate::ops::Error> {
    match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Plan(a) => plan::run(a, env),
        Command::Apply(a) => apply::run(a, env),
        Command::Graph(a) => graph::run(a),
        Command::Sim(a) => sim::run(a),
        Command::Cost(a) => cost::run(a),
        Command::Pricing(a) => pricing::run(a),
        Command::Whatif(a) => whatif::run(a),
        Command::Unlock(a) => unlock::run(a, env),
        Command::Schema(a) => schema::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Snapshot(a) => snapshot::run_take(a, env),
        Command::Snapshots(a) => snapshot::run_list(a, env),
        Command::Restore(a) => restore::run(a, env),
        Command::Comment(a) => comment::run(a, env),
        Command::Status(a) => status::run(a, env),
        Command::Dns(a) => dns::run(a, env),
        Command::Backup(a) => backup::run(a, env),
        Command::Import(a) => import::run(a, env),
    }
}
