//! flotilla: declare per-tenant Fly.io stacks in YAML, see a plan with its monthly cost,
//! and apply it idempotently.
//!
//! The pipeline, top to bottom (see ARCHITECTURE.md):
//! spec YAML → [`spec`] (parse, validate, expand) → desired [`resource`]s →
//! [`graph`] → [`plan`] (diff against observed [`state`]) → [`render`].
//!
//! [`ops`] runs each command as a library call (options in, typed outcome out); the
//! [`cli`] only parses arguments, calls one operation, renders and picks the exit code.

// Diagnostics are rich (file, position, path, address, hint) and only travel on error
// paths, where their size does not matter.
#![allow(clippy::result_large_err)]

pub mod apply;
pub mod cli;
pub mod cost;
pub mod diag;
pub mod fly;
pub mod fsutil;
pub mod graph;
pub mod machine_files;
pub mod money;
pub mod ops;
pub mod plan;
pub mod platform;
pub mod pricing;
pub mod render;
pub mod resource;
pub mod secret_files;
pub mod secrets;
pub mod sim;
pub mod spec;
pub mod state;
pub mod whatif;
pub mod wire;
