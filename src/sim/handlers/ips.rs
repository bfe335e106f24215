//! `/v1/apps/{app}/ip_assignments`: list, assign (`{type, org_slug?, network?}`) and
//! release by address. Addresses come from documentation ranges (see `sim::network`);
//! assigning a kind the app already has adds another address of that kind, as on Fly.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, ok_json, status_json};
use crate::sim::clock::now_ms;
use crate::sim::error::{ApiError, ApiResult, parse_body};
use crate::sim::network::IpRecord;
use crate::sim::ratelimit::Action;
use crate::sim::server::Sim;

#[derive(Debug, Deserialize)]
struct AssignRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    network: Option<String>,
}

pub(crate) fn routes() -> Router<std::sync::Arc<Sim>> {
    Router::new()
        .route("/v1/apps/{app}/ip_assignments", get(list).post(assign))
        .route("/v1/apps/{app}/ip_assignments/{ip}", delete(release))
}

async fn list(State(sim): AppState, Path(app): Path<String>) -> ApiResult {
    sim.rate_limit(Action::IpList, &app)?;
    let world = sim.world();
    let a = world.apps.get(&app).ok_or_else(ApiError::app_not_found)?;
    let ips: Vec<_> = a.net.ips.iter().map(|i| i.to_json(&a.org_slug)).collect();
    Ok(ok_json(json!({ "ips": ips })))
}

async fn assign(State(sim): AppState, Path(app): Path<String>, body: Bytes) -> ApiResult {
    let req: AssignRequest = parse_body(&body)?;
    sim.rate_limit(Action::IpAssign, &app)?;
    let mut guard = sim.world();
    let world = &mut *guard;
    let a = world
        .apps
        .get_mut(&app)
        .ok_or_else(ApiError::app_not_found)?;
    if req.kind == "shared_v4" && a.net.ips.iter().any(|i| i.kind == "shared_v4") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the app already has the organization's shared IPv4 address",
        ));
    }
    let ip = world.net.allocate(&a.org_slug, &req.kind)?;
    let network = (req.kind == "private_v6")
        .then(|| req.network.clone().filter(|n| !n.is_empty()))
        .flatten();
    let record = IpRecord {
        ip,
        kind: req.kind,
        network,
        created_at_ms: now_ms(),
    };
    let out = record.to_json(&a.org_slug);
    a.net.ips.push(record);
    drop(guard);
    sim.mutated();
    Ok(status_json(StatusCode::OK, out))
}

async fn release(State(sim): AppState, Path((app, ip)): Path<(String, String)>) -> ApiResult {
    sim.rate_limit(Action::IpRelease, &app)?;
    let mut world = sim.world();
    let a = world.app_mut(&app)?;
    let before = a.net.ips.len();
    a.net.ips.retain(|i| i.ip != ip);
    if a.net.ips.len() == before {
        return Err(ApiError::not_found("ip assignment not found"));
    }
    drop(world);
    sim.mutated();
    // Fly's document: 204 No Content.
    Ok(StatusCode::NO_CONTENT.into_response())
}
