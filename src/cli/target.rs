//! The `--sim` / `--api` / `--time-scale` / `--debug` arguments shared by `plan` and
//! `apply`, and their translation into [`TargetOptions`] with the environment's token
//! and hostname. Connecting and observing live in `crate::ops::target`.

use std::path::PathBuf;

use clap::Args;

use super::env::Env;
use crate::ops::target::{DEFAULT_SIM_STATE, TargetOptions};

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Use the local Fly simulator, persisted to STATE (default .flotilla/sim.json):
    /// try flotilla without a Fly account.
    #[arg(long, value_name = "STATE", num_args = 0..=1, default_missing_value = DEFAULT_SIM_STATE, conflicts_with = "api")]
    pub sim: Option<PathBuf>,
    /// Fly Machines API base URL (default: $FLY_API_HOSTNAME, else https://api.machines.dev).
    /// The token comes from FLY_API_TOKEN.
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// How much faster than real time the API's clock runs (only for a simulator started
    /// with --time-scale).
    #[arg(long, value_name = "N", default_value_t = 1.0, hide_short_help = true)]
    pub time_scale: f64,
    /// Log every HTTP request (method, path, status, time) to stderr; never the token.
    #[arg(long)]
    pub debug: bool,
}

impl TargetArgs {
    /// The options, with the token and hostname from `env`.
    pub fn options(&self, env: &Env) -> TargetOptions {
        TargetOptions {
            sim: self.sim.clone(),
            api: self.api.clone(),
            api_hostname: env.fly_api_hostname.clone(),
            api_token: env.fly_api_token.clone(),
            time_scale: self.time_scale,
            debug: self.debug,
        }
    }
}
