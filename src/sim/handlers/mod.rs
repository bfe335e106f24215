//! Request handlers, one file per Fly resource, plus the `/__sim` control surface.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::Value;

use super::clock::now_ms;
use super::error::ApiError;
use super::server::Sim;
use super::world::{App, Machine, MachineState};

pub(crate) mod apps;
pub(crate) mod certificates;
pub(crate) mod control;
pub(crate) mod ips;
pub(crate) mod jobs;
pub(crate) mod machine_ops;
pub(crate) mod machines;
pub(crate) mod platform;
pub(crate) mod secrets;
pub(crate) mod volumes;

pub(crate) type AppState = axum::extract::State<Arc<Sim>>;

/// Query pairs in order, as sent (so `metadata.KEY=VALUE` filters can repeat).
pub(crate) type Pairs = axum::extract::Query<Vec<(String, String)>>;

pub(crate) const LEASE_HEADER: &str = "fly-machine-lease-nonce";

pub(crate) fn ok_json(v: Value) -> Response {
    (StatusCode::OK, Json(v)).into_response()
}

/// Serializes `v` straight into a 200 JSON response (no intermediate `Value`).
pub(crate) fn ok_serialized<T: serde::Serialize>(v: &T) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(v).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("serialization failed: {e}"),
        )
    })?;
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response())
}

pub(crate) fn status_json(status: StatusCode, v: Value) -> Response {
    (status, Json(v)).into_response()
}

pub(crate) fn ok_true() -> Response {
    ok_json(serde_json::json!({ "ok": true }))
}

pub(crate) fn query<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A boolean query flag (`true`/`1`); anything else but `false`/`0` is a 400.
pub(crate) fn query_flag(pairs: &[(String, String)], key: &str) -> Result<bool, ApiError> {
    match query(pairs, key) {
        None | Some("false") | Some("0") | Some("") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid query parameter {key}={other:?}: expected true or false"
        ))),
    }
}

pub(crate) fn lease_nonce(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(LEASE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Refuses a change to a leased Machine unless the request carries the lease's nonce:
/// 409 without a nonce, 412 with a wrong one.
pub(crate) fn check_lease(m: &Machine, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(lease) = &m.lease else {
        return Ok(());
    };
    match lease_nonce(headers) {
        None => Err(ApiError::conflict(format!(
            "machine {} is leased by {} until {}; pass the lease nonce in the {LEASE_HEADER} header",
            m.id,
            lease.owner,
            super::clock::rfc3339_secs(lease.expires_at_ms)
        ))),
        Some(n) if n != lease.nonce => Err(ApiError::precondition(format!(
            "lease nonce mismatch for machine {}",
            m.id
        ))),
        Some(_) => Ok(()),
    }
}

/// Refuses any change to a destroyed or destroying Machine.
pub(crate) fn check_not_destroyed(m: &Machine) -> Result<(), ApiError> {
    match m.state {
        MachineState::Destroyed | MachineState::Destroying => Err(ApiError::precondition(format!(
            "machine {} is {}",
            m.id,
            m.state.as_str()
        ))),
        _ => Ok(()),
    }
}

/// A kind of entity inside an app that handlers look up by id.
#[derive(Clone, Copy)]
pub(crate) enum Entity {
    Machine,
    Volume,
}

/// Locks the world, brings the entity up to date (404 if unknown) and runs `f` on
/// its app with the current time.
pub(crate) fn with_entity<R>(
    sim: &Sim,
    app: &str,
    kind: Entity,
    id: &str,
    f: impl FnOnce(&mut App, i64) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    let t = now_ms();
    let mut world = sim.world();
    let a = world.app_mut(app)?;
    let known = match kind {
        Entity::Machine => {
            a.advance_machine(id, t, &sim.timing);
            a.machines.contains_key(id)
        }
        Entity::Volume => {
            a.advance_volume(id, t, &sim.timing);
            a.volumes.contains_key(id)
        }
    };
    if !known {
        return Err(match kind {
            Entity::Machine => ApiError::machine_not_found(),
            Entity::Volume => ApiError::volume_not_found(),
        });
    }
    f(a, t)
}

pub(crate) fn check_region(region: &str) -> Result<(), ApiError> {
    if crate::platform::region(region).is_none() {
        return Err(ApiError::bad_request(format!(
            "invalid region {region:?}: not a Fly.io region"
        )));
    }
    Ok(())
}

/// The Fly Machines API routes (paths as on `api.machines.dev`).
pub(crate) fn api_routes() -> Router<Arc<Sim>> {
    const M: &str = "/v1/apps/{app}/machines/{id}";
    const V: &str = "/v1/apps/{app}/volumes/{id}";
    Router::new()
        .route("/v1/apps", get(apps::list).post(apps::create))
        .route("/v1/apps/{app}", get(apps::get).delete(apps::delete))
        .route(
            "/v1/apps/{app}/machines",
            get(machines::list).post(machines::create),
        )
        .route(
            M,
            get(machines::get)
                .post(machines::update)
                .delete(machines::delete),
        )
        .route(&format!("{M}/start"), post(machines::start))
        .route(&format!("{M}/stop"), post(machines::stop))
        .route(&format!("{M}/suspend"), post(machines::suspend))
        .route(&format!("{M}/restart"), post(machines::restart))
        .route(&format!("{M}/cordon"), post(machines::cordon))
        .route(&format!("{M}/uncordon"), post(machines::uncordon))
        .route(&format!("{M}/wait"), get(machines::wait))
        .route(&format!("{M}/events"), get(machines::events))
        .route(&format!("{M}/exec"), post(machine_ops::exec))
        .route(&format!("{M}/ps"), get(machine_ops::ps))
        .route(&format!("{M}/signal"), post(machine_ops::signal))
        .route(&format!("{M}/versions"), get(machine_ops::versions))
        .route(
            &format!("{M}/lease"),
            get(machines::lease_get)
                .post(machines::lease_create)
                .delete(machines::lease_release),
        )
        .route(
            &format!("{M}/metadata"),
            get(machines::metadata_get)
                .patch(machines::metadata_update)
                .put(machines::metadata_update),
        )
        .route(
            &format!("{M}/metadata/{{key}}"),
            get(machines::metadata_get_key)
                .post(machines::metadata_set)
                .delete(machines::metadata_delete),
        )
        .route(
            "/v1/apps/{app}/volumes",
            get(volumes::list).post(volumes::create),
        )
        .route(
            V,
            get(volumes::get)
                .put(volumes::update)
                .post(volumes::update)
                .delete(volumes::delete),
        )
        .route(&format!("{V}/extend"), put(volumes::extend))
        .route(
            &format!("{V}/snapshots"),
            get(volumes::snapshots).post(volumes::snapshot_create),
        )
        .route(
            "/v1/apps/{app}/secrets",
            get(secrets::list).post(secrets::update),
        )
        .route(
            "/v1/apps/{app}/secrets/{name}",
            get(secrets::get).post(secrets::set).delete(secrets::delete),
        )
        .merge(platform::routes())
        .merge(ips::routes())
        .merge(certificates::routes())
}
