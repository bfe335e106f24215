//! Where the observed state comes from: the Fly API, the local simulator, a state file,
//! or (offline) an empty organization. Shared by `plan` and `apply`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::diag::Diagnostic;
use crate::fly::client::{Client, ClientConfig, DEFAULT_API, Token};
use crate::resource::{Desired, Spec};
use crate::secrets::SecretValues;
use crate::sim::{SimConfig, SimHandle};

pub const DEFAULT_SIM_STATE: &str = ".flotilla/sim.json";

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

/// A connected API.
pub struct Target {
    pub client: Client,
    /// The in-process simulator, when `--sim` (shut it down to save its state).
    pub sim: Option<SimHandle>,
    /// `sim:PATH` or `api:URL`.
    pub source: String,
}

impl TargetArgs {
    /// Whether a live API is named: `--sim`, `--api`, or the FLY_API_* environment.
    pub fn is_live(&self) -> bool {
        self.sim.is_some()
            || self.api.is_some()
            || env_set("FLY_API_HOSTNAME")
            || env_set("FLY_API_TOKEN")
    }

    fn base_url(&self) -> String {
        let raw = self
            .api
            .clone()
            .or_else(|| {
                std::env::var("FLY_API_HOSTNAME")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_API.to_string());
        if raw.contains("://") {
            raw
        } else {
            format!("https://{raw}")
        }
    }

    /// Connects: starts the in-process simulator for `--sim`, else checks the token.
    pub async fn connect(&self) -> Result<Target, Diagnostic> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(Diagnostic::error("--time-scale must be a positive number"));
        }
        if let Some(state) = &self.sim {
            if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    Diagnostic::error(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let token = format!("sim-{:016x}", rand::random::<u64>());
            let cfg = SimConfig {
                token: token.clone(),
                time_scale: self.time_scale,
                seed: rand::random(),
                state_file: Some(state.clone()),
                ..SimConfig::default()
            };
            let handle = crate::sim::start(cfg, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| {
                    Diagnostic::error(format!("cannot start the simulator: {e}")).hint(format!(
                        "if {} is damaged, move it away to start from an empty org",
                        state.display()
                    ))
                })?;
            let client = self.client(&handle.base_url(), Token::new(token))?;
            return Ok(Target {
                client,
                source: format!("sim:{}", state.display()),
                sim: Some(handle),
            });
        }
        let base = self.base_url();
        let token = std::env::var("FLY_API_TOKEN").ok().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            Diagnostic::error("FLY_API_TOKEN is not set").hint("export a token (`fly tokens create org`), or use --sim to try flotilla against the local simulator")
        })?;
        let client = self.client(&base, Token::new(token.trim().to_string()))?;
        Ok(Target {
            client,
            sim: None,
            source: format!("api:{base}"),
        })
    }

    fn client(&self, base: &str, token: Token) -> Result<Client, Diagnostic> {
        let mut cfg = ClientConfig::new(base, token);
        cfg.time_scale = self.time_scale;
        cfg.debug = self.debug;
        Client::new(cfg).map_err(Diagnostic::error)
    }
}

fn env_set(k: &str) -> bool {
    std::env::var_os(k).is_some_and(|v| !v.is_empty())
}

/// The app names a desired state manages (for the observer).
pub fn declared_apps(d: &Desired) -> HashSet<String> {
    d.apps.iter().cloned().collect()
}

/// Secret values for `desired`. Against the simulator, values that are not set are
/// replaced by stable placeholders (with a warning), so a sandbox needs no real keys.
pub fn secret_values(
    desired: &Desired,
    dir: &Path,
    sim: bool,
) -> Result<SecretValues, crate::diag::Diagnostics> {
    let env = |k: &str| std::env::var(k).ok();
    match crate::secrets::load_values(desired, dir, &env) {
        Ok(v) => Ok(v),
        Err(diags) if sim => {
            let mut values = SecretValues::default();
            let mut substituted = Vec::new();
            for r in desired.resources.iter() {
                let Spec::Secret(s) = &r.spec else { continue };
                let real = match &s.source {
                    crate::resource::SecretSource::Env(v) => env(v).filter(|x| !x.is_empty()),
                    crate::resource::SecretSource::File(f) => std::fs::read_to_string(dir.join(f))
                        .ok()
                        .map(|x| x.trim_end_matches(['\n', '\r']).to_string())
                        .filter(|x| !x.is_empty()),
                    crate::resource::SecretSource::Unknown => None,
                };
                let v = match real {
                    Some(v) => v,
                    None => {
                        if !substituted.contains(&s.name) {
                            substituted.push(s.name.clone());
                        }
                        format!(
                            "flotilla-sim-placeholder-{}",
                            crate::secrets::fingerprint(
                                &desired.org,
                                &r.app,
                                &s.name,
                                "placeholder"
                            )
                        )
                    }
                };
                values
                    .values
                    .insert(r.address.clone(), crate::secrets::SecretValue::new(v));
            }
            drop(diags);
            super::common::eprint_diag(
                &Diagnostic::warning(format!("secrets not set, replaced by placeholders in the simulator: {}", substituted.join(", ")))
                    .hint("export them (or create their files) to use real values; against Fly they are required"),
            );
            Ok(values)
        }
        Err(diags) => Err(diags),
    }
}
