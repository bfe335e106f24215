//! The `/__sim` control and inspection surface (same bearer token as the API; never
//! rate limited, faulted, counted or logged), and its Rust twin [`SimControl`].
//!
//! | method and path                      | does                                           |
//! |--------------------------------------|------------------------------------------------|
//! | `GET /__sim/health`                  | `{"ok": true}`                                  |
//! | `GET /__sim/counters`                | request counters ([`Counters`])                 |
//! | `POST /__sim/counters/reset`         | zeroes the counters                             |
//! | `GET /__sim/faults`                  | `{"spec": "...", "config": {...}}`              |
//! | `PUT /__sim/faults`                  | body `{"spec": "500=0.1,..."}`; 400 if invalid  |
//! | `PUT /__sim/rate-limits`             | body `{"enabled": false}`                       |
//! | `POST /__sim/idle`                   | body `{"app"?, "machine_id"?, "immediate"?}`    |
//! | `POST /__sim/host-failure`           | body `{"app", "machine_id"}`: the Machine's host fails (it is `failed`), and Fly starts the stopped Machines standing by for it; answers their ids |
//! | `GET /__sim/apps/{app}/machines`     | per-Machine state, secrets version seen, metadata and lease description |
//! | `GET /__sim/apps/{app}/volumes`      | per-volume origin, content tag and snapshots    |
//! | `PUT /__sim/apps/{app}/volumes/{id}/content` | body `{"content": "..."}`: the data's tag |
//! | `GET /__sim/objects`                | the off-site store export images write (`StoredObject`s) |
//! | `POST /__sim/save`                   | writes the state file now                       |
//! | `POST /__sim/dns`                    | body `{"hostname", "present"?}`: DNS in place   |
//! | `PUT /__sim/exec`                    | body `{"app", "machine_id"?, "command"?, "stdout"?, "stderr"?, "exit_code"?}`: what `exec` answers |
//! | `GET /__sim/exec`, `DELETE /__sim/exec` | the exec rules; clears them                  |
//! | `PUT /__sim/regions/capacity`        | body `{"region", "size", "capacity"}` (`null` resets) |
//! | `GET /__sim/regions/capacity`        | the capacities set                              |

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{AppState, ok_json, ok_true};
use crate::sim::SimError;
use crate::sim::clock::now_ms;
use crate::sim::error::{ApiError, ApiResult, parse_body, parse_optional_body};
use crate::sim::faults::FaultConfig;
use crate::sim::model::Autostop;
use crate::sim::reqlog::Counters;
use crate::sim::server::{Sim, lock};
use crate::sim::world::MachineState;

/// What the simulator knows about one Machine beyond Fly's API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineInfo {
    pub id: String,
    pub state: String,
    pub instance_id: String,
    pub cordoned: bool,
    /// The app secrets version the Machine booted (or was last updated) with.
    pub secrets_version_seen: Option<u64>,
    /// True when the app's secrets changed since: the Machine needs an update or restart.
    pub secrets_stale: bool,
    /// How many times the Machine reached `started`.
    #[serde(default)]
    pub starts: u64,
    /// The Machine's metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The description of the lease held on the Machine, if one is.
    #[serde(default)]
    pub lease_description: Option<String>,
}

/// The simulator's view of an app's Machines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppMachines {
    pub app: String,
    pub secrets_version: u64,
    pub machines: Vec<MachineInfo>,
}

/// Inspection and control of a running simulator from Rust.
#[derive(Clone)]
pub struct SimControl {
    pub(crate) sim: Arc<Sim>,
}

impl SimControl {
    /// Counters of the API requests served so far.
    pub fn counters(&self) -> Counters {
        lock(&self.sim.counters).clone()
    }

    /// Writes buffered request-log lines to the file.
    pub fn flush_log(&self) {
        self.sim.flush_log();
    }

    pub fn reset_counters(&self) {
        *lock(&self.sim.counters) = Counters::default();
    }

    /// The fault configuration in force.
    pub fn faults(&self) -> FaultConfig {
        lock(&self.sim.faults).config.clone()
    }

    /// Replaces the fault configuration (and restarts the `fail_after` count).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.sim.set_faults(faults);
    }

    pub fn set_rate_limits(&self, enabled: bool) {
        self.sim.rate_limits.store(enabled, Ordering::Relaxed);
    }

    /// Tells the Fly Proxy the selected Machines went idle: each started Machine with
    /// `autostop` set stops or suspends after the idle period (at once if `immediate`).
    /// Returns the ids of the Machines concerned.
    pub fn trigger_idle(
        &self,
        app: Option<&str>,
        machine_id: Option<&str>,
        immediate: bool,
    ) -> Vec<String> {
        let t = now_ms();
        let timing = &self.sim.timing;
        let mut hit = Vec::new();
        let mut world = self.sim.world();
        for a in world.apps.values_mut() {
            if app.is_some_and(|n| n != a.name) {
                continue;
            }
            a.advance_all(t, timing);
            for m in a.machines.values_mut() {
                if machine_id.is_some_and(|id| id != m.id)
                    || m.state != MachineState::Started
                    || !m.steps.is_empty()
                    || m.config.autostop() == Autostop::Off
                {
                    continue;
                }
                m.idle_at_ms = Some(if immediate { t } else { t + timing.idle });
                hit.push(m.id.clone());
            }
            if immediate {
                a.advance_all(t, timing);
            }
        }
        drop(world);
        self.sim.mutated();
        hit
    }

    /// The host of Machine `id` in `app` fails: the Machine is `failed`, and the stopped
    /// Machines whose `standbys` name it are started, as Fly starts standbys. Returns
    /// their ids; `None` when the app or the Machine does not exist.
    pub fn fail_host(&self, app: &str, id: &str) -> Option<Vec<String>> {
        let t = now_ms();
        let timing = &self.sim.timing;
        let mut world = self.sim.world();
        let a = world.apps.get_mut(app)?;
        a.advance_all(t, timing);
        let m = a.machines.get_mut(id)?;
        m.event("exit", "failed", "flyd", t);
        m.schedule(t, MachineState::Failed, &[]);
        let mut started = Vec::new();
        for s in a.machines.values_mut() {
            let stands_by = s.config.standbys.iter().flatten().any(|p| p == id);
            let waiting = matches!(s.state, MachineState::Stopped | MachineState::Created);
            // A standby still being made (created, about to be stopped) starts as well.
            if stands_by && waiting {
                s.event("start", "starting", "flyd", t);
                s.schedule(
                    t,
                    MachineState::Starting,
                    &[(timing.start, MachineState::Started)],
                );
                started.push(s.id.clone());
            }
        }
        drop(world);
        self.sim.mutated();
        Some(started)
    }

    /// Per-Machine state and secrets freshness of `app`, if it exists.
    pub fn machines(&self, app: &str) -> Option<AppMachines> {
        let t = now_ms();
        let mut world = self.sim.world();
        let a = world.apps.get_mut(app)?;
        a.advance_all(t, &self.sim.timing);
        let mut ms: Vec<_> = a.machines.values().collect();
        ms.sort_by_key(|m| m.seq);
        Some(AppMachines {
            app: a.name.clone(),
            secrets_version: a.secrets_version,
            machines: ms
                .iter()
                .map(|m| MachineInfo {
                    id: m.id.clone(),
                    state: m.state.as_str().to_string(),
                    instance_id: m.instance_id.clone(),
                    cordoned: m.cordoned,
                    secrets_version_seen: m.secrets_seen,
                    secrets_stale: m.secrets_seen.is_none_or(|v| v < a.secrets_version),
                    starts: m.starts,
                    metadata: m.config.metadata.clone().unwrap_or_default(),
                    lease_description: m.lease.as_ref().map(|l| l.description.clone()),
                })
                .collect(),
        })
    }

    /// Writes the state file now (no-op without one).
    pub fn save(&self) -> Result<(), SimError> {
        self.sim.save()
    }
}

fn control(sim: &Arc<Sim>) -> SimControl {
    SimControl { sim: sim.clone() }
}

#[derive(Deserialize)]
struct FaultsBody {
    spec: String,
}

#[derive(Deserialize)]
struct RateLimitsBody {
    enabled: bool,
}

#[derive(Deserialize, Default)]
struct IdleBody {
    #[serde(default)]
    app: Option<String>,
    #[serde(default)]
    machine_id: Option<String>,
    #[serde(default)]
    immediate: bool,
}

fn faults_json(c: &FaultConfig) -> serde_json::Value {
    json!({ "spec": c.to_string(), "config": c })
}

async fn counters(State(sim): AppState) -> ApiResult {
    Ok(ok_json(json!(control(&sim).counters())))
}

async fn counters_reset(State(sim): AppState) -> ApiResult {
    control(&sim).reset_counters();
    Ok(ok_true())
}

async fn faults_get(State(sim): AppState) -> ApiResult {
    Ok(ok_json(faults_json(&control(&sim).faults())))
}

async fn faults_put(State(sim): AppState, body: Bytes) -> ApiResult {
    let req: FaultsBody = parse_body(&body)?;
    let cfg: FaultConfig = req
        .spec
        .parse()
        .map_err(|e: crate::sim::faults::FaultSpecError| ApiError::bad_request(e.to_string()))?;
    control(&sim).set_faults(cfg.clone());
    Ok(ok_json(faults_json(&cfg)))
}

async fn rate_limits_put(State(sim): AppState, body: Bytes) -> ApiResult {
    let req: RateLimitsBody = parse_body(&body)?;
    control(&sim).set_rate_limits(req.enabled);
    Ok(ok_json(json!({ "enabled": req.enabled })))
}

async fn idle(State(sim): AppState, body: Bytes) -> ApiResult {
    let req: IdleBody = parse_optional_body(&body)?;
    let hit =
        control(&sim).trigger_idle(req.app.as_deref(), req.machine_id.as_deref(), req.immediate);
    Ok(ok_json(json!({ "machines": hit })))
}

#[derive(Deserialize)]
struct HostFailureBody {
    app: String,
    machine_id: String,
}

async fn host_failure(State(sim): AppState, body: Bytes) -> ApiResult {
    let req: HostFailureBody = parse_body(&body)?;
    let started = control(&sim)
        .fail_host(&req.app, &req.machine_id)
        .ok_or_else(|| ApiError::not_found("app or machine not found"))?;
    Ok(ok_json(json!({ "started_standbys": started })))
}

async fn machines(State(sim): AppState, Path(app): Path<String>) -> ApiResult {
    let view = control(&sim)
        .machines(&app)
        .ok_or_else(ApiError::app_not_found)?;
    Ok(ok_json(json!(view)))
}

async fn save(State(sim): AppState) -> ApiResult {
    let sim2 = sim.clone();
    tokio::task::spawn_blocking(move || control(&sim2).save())
        .await
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(ok_true())
}

pub(crate) fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/__sim/health", get(|| async { ok_true() }))
        .route("/__sim/counters", get(counters))
        .route("/__sim/counters/reset", post(counters_reset))
        .route("/__sim/faults", get(faults_get).put(faults_put))
        .route("/__sim/rate-limits", put(rate_limits_put))
        .route("/__sim/idle", post(idle))
        .route("/__sim/host-failure", post(host_failure))
        .route("/__sim/apps/{app}/machines", get(machines))
        .route("/__sim/save", post(save))
        .merge(super::volumes::control_routes())
        .merge(super::machine_ops::control_routes())
        .merge(super::platform::control_routes())
        .merge(super::jobs::control_routes())
        .merge(super::certificates::control_routes())
}
