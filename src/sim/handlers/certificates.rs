//! `/v1/apps/{app}/certificates`: list, `acme` create, `{hostname}` get and delete, and
//! `{hostname}/check`. A certificate stays `pending` until a test declares its
//! hostname's DNS records present (`POST /__sim/dns`, or [`SimControl::set_dns`]);
//! from then on it reads `issued`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, ok_json, ok_true, status_json};
use crate::sim::SimControl;
use crate::sim::clock::now_ms;
use crate::sim::error::{ApiError, ApiResult, parse_body};
use crate::sim::network::{CertRecord, cert_json};
use crate::sim::ratelimit::Action;
use crate::sim::server::Sim;
use crate::sim::world::World;

#[derive(Debug, Deserialize)]
struct CreateRequest {
    hostname: String,
}

/// Body of `POST /__sim/dns`.
#[derive(Debug, Deserialize)]
struct DnsRequest {
    hostname: String,
    #[serde(default = "yes")]
    present: bool,
}

fn yes() -> bool {
    true
}

pub(crate) fn routes() -> Router<std::sync::Arc<Sim>> {
    const C: &str = "/v1/apps/{app}/certificates/{hostname}";
    Router::new()
        .route("/v1/apps/{app}/certificates", get(list))
        .route("/v1/apps/{app}/certificates/acme", post(create))
        .route(C, get(get_one).delete(remove))
        .route(&format!("{C}/check"), post(check))
}

/// The control route (no rate limit, fault or count).
pub(crate) fn control_routes() -> Router<std::sync::Arc<Sim>> {
    Router::new().route("/__sim/dns", post(dns))
}

/// One certificate of `app` as Fly answers it.
fn view(world: &World, app: &str, hostname: &str) -> Result<Value, ApiError> {
    let a = world.apps.get(app).ok_or_else(ApiError::app_not_found)?;
    let c = a
        .net
        .certificates
        .get(hostname)
        .ok_or_else(|| ApiError::not_found("certificate not found"))?;
    Ok(cert_json(app, &a.net, c, world.net.issued(hostname)))
}

async fn list(State(sim): AppState, Path(app): Path<String>) -> ApiResult {
    sim.rate_limit(Action::CertList, &app)?;
    let world = sim.world();
    let a = world.apps.get(&app).ok_or_else(ApiError::app_not_found)?;
    let certs: Vec<Value> = a
        .net
        .certificates
        .values()
        .map(|c| cert_json(&app, &a.net, c, world.net.issued(&c.hostname)))
        .collect();
    let total = certs.len();
    Ok(ok_json(
        json!({ "certificates": certs, "total_count": total }),
    ))
}

async fn create(State(sim): AppState, Path(app): Path<String>, body: Bytes) -> ApiResult {
    let req: CreateRequest = parse_body(&body)?;
    if req.hostname.is_empty() || req.hostname.len() > 253 || req.hostname.contains('/') {
        return Err(ApiError::bad_request(format!(
            "invalid hostname {:?}",
            req.hostname
        )));
    }
    sim.rate_limit(Action::CertCreate, &app)?;
    let mut world = sim.world();
    let a = world.app_mut(&app)?;
    a.net
        .certificates
        .entry(req.hostname.clone())
        .or_insert_with(|| CertRecord {
            hostname: req.hostname.clone(),
            created_at_ms: now_ms(),
        });
    let out = view(&world, &app, &req.hostname)?;
    drop(world);
    sim.mutated();
    Ok(status_json(StatusCode::CREATED, out))
}

async fn get_one(State(sim): AppState, Path((app, hostname)): Path<(String, String)>) -> ApiResult {
    sim.rate_limit(Action::CertGet, &app)?;
    let world = sim.world();
    Ok(ok_json(view(&world, &app, &hostname)?))
}

async fn check(State(sim): AppState, Path((app, hostname)): Path<(String, String)>) -> ApiResult {
    sim.rate_limit(Action::CertCheck, &app)?;
    let world = sim.world();
    Ok(ok_json(view(&world, &app, &hostname)?))
}

async fn remove(State(sim): AppState, Path((app, hostname)): Path<(String, String)>) -> ApiResult {
    sim.rate_limit(Action::CertDelete, &app)?;
    let mut world = sim.world();
    let a = world.app_mut(&app)?;
    if a.net.certificates.remove(&hostname).is_none() {
        return Err(ApiError::not_found("certificate not found"));
    }
    drop(world);
    sim.mutated();
    // Fly's document: 204 No Content.
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn dns(State(sim): AppState, body: Bytes) -> ApiResult {
    let req: DnsRequest = parse_body(&body)?;
    control(&sim).set_dns(&req.hostname, req.present);
    Ok(ok_true())
}

fn control(sim: &std::sync::Arc<Sim>) -> SimControl {
    SimControl { sim: sim.clone() }
}

impl SimControl {
    /// Declares `hostname`'s DNS records present (or gone): its certificates read
    /// `issued` (or `pending`) from now on.
    pub fn set_dns(&self, hostname: &str, present: bool) {
        {
            let mut world = self.sim.world();
            if present {
                world.net.dns_present.insert(hostname.to_string());
            } else {
                world.net.dns_present.remove(hostname);
            }
        }
        self.sim.mutated();
    }
}
