//! `/v1/apps/{app}/secrets`: names and opaque digests only; values are hashed on
//! arrival (under the world's own digest key, so a digest changes with the value but
//! cannot be recomputed from a guess) and never stored, logged or returned. Every change bumps the app's secrets
//! version; a Machine sees the version current when it last booted or was updated.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{AppState, ok_json, status_json};
use crate::sim::clock::now_ms;
use crate::sim::error::{ApiError, ApiResult, parse_body};
use crate::sim::ids::digest;
use crate::sim::model::{SetSecretRequest, UpdateSecretsRequest};
use crate::sim::ratelimit::Action;
use crate::sim::server::Sim;
use crate::sim::world::{App, Secret};

fn check_name(name: &str) -> Result<(), ApiError> {
    let mut chars = name.chars();
    let ok = name.len() <= 256
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid secret name {name:?}: use letters, digits and underscores, not starting with a digit"
        )))
    }
}

fn secret_digest(key: &str, app: &str, name: &str, value: &str) -> String {
    digest(&["secret", key, app, name, value])[..16].to_string()
}

/// Applies changes (`None` deletes); returns whether anything changed. The app's
/// Machines are brought up to date first so boots before now keep the old version.
fn apply(sim: &Sim, key: &str, a: &mut App, changes: &[(String, Option<String>)], t: i64) -> bool {
    a.advance_all(t, &sim.timing);
    let mut changed = false;
    for (name, value) in changes {
        match value {
            Some(v) => {
                let d = secret_digest(key, &a.name, name, v);
                match a.secrets.get_mut(name) {
                    Some(s) if s.digest == d => {}
                    Some(s) => {
                        s.digest = d;
                        s.updated_at_ms = t;
                        changed = true;
                    }
                    None => {
                        a.secrets.insert(
                            name.clone(),
                            Secret {
                                name: name.clone(),
                                digest: d,
                                created_at_ms: t,
                                updated_at_ms: t,
                            },
                        );
                        changed = true;
                    }
                }
            }
            None => changed |= a.secrets.remove(name).is_some(),
        }
    }
    if changed {
        a.secrets_version += 1;
    }
    changed
}

fn all(a: &App) -> Value {
    Value::Array(a.secrets.values().map(Secret::to_json).collect())
}

pub(crate) async fn list(State(sim): AppState, Path(app): Path<String>) -> ApiResult {
    sim.rate_limit(Action::SecretsList, &app)?;
    let world = sim.world();
    let a = world.apps.get(&app).ok_or_else(ApiError::app_not_found)?;
    Ok(ok_json(json!({ "secrets": all(a) })))
}

pub(crate) async fn get(
    State(sim): AppState,
    Path((app, name)): Path<(String, String)>,
) -> ApiResult {
    sim.rate_limit(Action::SecretGet, &app)?;
    let world = sim.world();
    let a = world.apps.get(&app).ok_or_else(ApiError::app_not_found)?;
    let s = a
        .secrets
        .get(&name)
        .ok_or_else(|| ApiError::not_found("secret not found"))?;
    Ok(ok_json(s.to_json()))
}

pub(crate) async fn set(
    State(sim): AppState,
    Path((app, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    check_name(&name)?;
    let req: SetSecretRequest = parse_body(&body)?;
    sim.rate_limit(Action::SecretSet, &app)?;
    let t = now_ms();
    let mut world = sim.world();
    let key = world.digest_key();
    let a = world.app_mut(&app)?;
    apply(&sim, &key, a, &[(name.clone(), Some(req.value))], t);
    let mut out = a
        .secrets
        .get(&name)
        .map(Secret::to_json)
        .unwrap_or(Value::Null);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("version".into(), a.secrets_version.into());
    }
    drop(world);
    sim.mutated();
    Ok(status_json(StatusCode::CREATED, out))
}

pub(crate) async fn delete(
    State(sim): AppState,
    Path((app, name)): Path<(String, String)>,
) -> ApiResult {
    sim.rate_limit(Action::SecretDelete, &app)?;
    let t = now_ms();
    let mut world = sim.world();
    let a = world.app_mut(&app)?;
    if !a.secrets.contains_key(&name) {
        return Err(ApiError::not_found("secret not found"));
    }
    apply(&sim, "", a, &[(name, None)], t);
    let version = a.secrets_version;
    drop(world);
    sim.mutated();
    Ok(ok_json(json!({ "version": version })))
}

/// Bulk update: `{"values": {"NAME": "value", "GONE": null}}`.
pub(crate) async fn update(
    State(sim): AppState,
    Path(app): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: UpdateSecretsRequest = parse_body(&body)?;
    for name in req.values.keys() {
        check_name(name)?;
    }
    sim.rate_limit(Action::SecretsUpdate, &app)?;
    sim.check_visible(&app, None)?;
    let t = now_ms();
    let mut world = sim.world();
    let key = world.digest_key();
    let a = world.app_mut(&app)?;
    let changes: Vec<(String, Option<String>)> = req.values.into_iter().collect();
    apply(&sim, &key, a, &changes, t);
    let out = json!({ "secrets": all(a), "version": a.secrets_version });
    drop(world);
    sim.mutated();
    Ok(ok_json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("DATABASE_URL").is_ok());
        assert!(check_name("_x1").is_ok());
        assert!(check_name("1X").is_err());
        assert!(check_name("A-B").is_err());
        assert!(check_name("").is_err());
        assert_ne!(
            secret_digest("k", "a", "K", "v1"),
            secret_digest("k", "a", "K", "v2")
        );
        assert_ne!(
            secret_digest("k1", "a", "K", "v1"),
            secret_digest("k2", "a", "K", "v1"),
            "a digest depends on the server's key"
        );
    }
}
