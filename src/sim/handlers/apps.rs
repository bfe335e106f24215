//! `/v1/apps`: create, get, list by organization, delete.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::{AppState, Pairs, ok_json, query, query_flag, status_json};
use crate::sim::clock::now_ms;
use crate::sim::error::{ApiError, ApiResult, parse_body};
use crate::sim::model::CreateAppRequest;
use crate::sim::ratelimit::Action;
use crate::sim::server::lock;
use crate::sim::world::App;

pub(crate) async fn list(axum::extract::State(sim): AppState, q: Pairs) -> ApiResult {
    let org = query(&q, "org_slug")
        .filter(|o| !o.is_empty())
        .ok_or_else(|| ApiError::bad_request("org_slug is required"))?
        .to_string();
    sim.rate_limit(Action::AppList, &org)?;
    let t = now_ms();
    let mut world = sim.world();
    let apps: Vec<_> = world
        .apps
        .values_mut()
        .filter(|a| a.org_slug == org)
        .map(|a| {
            a.settle(t, &sim.timing);
            a.list_json()
        })
        .collect();
    Ok(ok_json(json!({ "total_apps": apps.len(), "apps": apps })))
}

pub(crate) async fn create(axum::extract::State(sim): AppState, body: Bytes) -> ApiResult {
    let req: CreateAppRequest = parse_body(&body)?;
    let org = req
        .org_slug
        .filter(|o| !o.is_empty())
        .ok_or_else(|| ApiError::bad_request("org_slug is required"))?;
    sim.rate_limit(Action::AppCreate, &org)?;
    let name = req.app_name.or(req.name).unwrap_or_default();
    if let Some(problem) = crate::platform::app_name_problem(&name) {
        return Err(ApiError::unprocessable(format!(
            "invalid app name {name:?}: {problem}"
        )));
    }
    let t = now_ms();
    let mut world = sim.world();
    if world.apps.contains_key(&name) {
        return Err(ApiError::unprocessable("Name has already been taken").with_code("name_taken"));
    }
    let id = lock(&sim.ids).app_id();
    let created = name.clone();
    world.apps.insert(
        name.clone(),
        App::new(
            id.clone(),
            name,
            org,
            req.network
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".into()),
            t,
        ),
    );
    drop(world);
    sim.created(&created, None);
    sim.mutated();
    Ok(status_json(
        StatusCode::CREATED,
        json!({ "id": id, "created_at": t }),
    ))
}

pub(crate) async fn get(axum::extract::State(sim): AppState, Path(app): Path<String>) -> ApiResult {
    sim.rate_limit(Action::AppGet, &app)?;
    sim.check_visible(&app, None)?;
    let t = now_ms();
    let mut world = sim.world();
    let a = world.app_mut(&app)?;
    a.settle(t, &sim.timing);
    Ok(ok_json(a.to_json()))
}

/// Deletes the app with its Machines and volumes. Running Machines must be stopped
/// first unless `force=true`, as Fly documents.
pub(crate) async fn delete(
    axum::extract::State(sim): AppState,
    Path(app): Path<String>,
    q: Pairs,
) -> ApiResult {
    let force = query_flag(&q, "force")?;
    sim.rate_limit(Action::AppDelete, "*")?;
    let t = now_ms();
    let mut world = sim.world();
    let a = world.app_mut(&app)?;
    a.advance_all(t, &sim.timing);
    let running = a.machines.values().filter(|m| m.state.is_active()).count();
    if running > 0 && !force {
        return Err(ApiError::precondition(format!(
            "app {app} has {running} running machine(s); stop them first or pass force=true"
        )));
    }
    // What its export Machines wrote is off-site: it stays.
    world.collect_exports();
    world.apps.remove(&app);
    drop(world);
    sim.mutated();
    Ok(StatusCode::ACCEPTED.into_response())
}
