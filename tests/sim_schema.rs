//! Records traffic through every simulated endpoint that Fly's 2024 Swagger spec
//! covers and validates request and response bodies against the spec's schemas.
//!
//! Three known differences between that spec and the live API are patched into the
//! schemas before checking (each is documented behaviour of the live API):
//! - `fly.MachineService.autostop` is typed bool; the live API also takes and answers
//!   the string `"suspend"`.
//! - `fly.Duration` is typed as an object; the live API and Fly's Go client use strings
//!   such as `"10s"`.
//! - The spec is generated from Go structs and has no nullable marker; Go pointer
//!   fields answer `null` (e.g. a volume's `attached_machine_id`), so properties with a
//!   primitive type also accept null.
//! - `exec` is documented as answering raw output bytes; the live API answers JSON
//!   `{stdout, stderr, exit_code}` (fly-go's `MachineExecResponse`, which flyctl
//!   decodes), so that is the shape checked.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod simkit;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Map, Value, json};
use simkit::record::{Exchange, Recorder, segments_match};
use simkit::*;

fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fly/fly-machines-openapi-2024.json"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("Fly's Swagger spec (vendored) is expected at {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Applies the documented live-API differences (see the module docs).
fn patch(defs: &mut Map<String, Value>) {
    defs["fly.MachineService"]["properties"]["autostop"] = json!({"type": ["boolean", "string"]});
    defs["fly.Duration"] = json!({"type": ["string", "object", "integer"]});
    for def in defs.values_mut() {
        let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for prop in props.values_mut() {
            if let Some(t) = prop.get("type").and_then(Value::as_str)
                && matches!(
                    t,
                    "string" | "integer" | "boolean" | "number" | "object" | "array"
                )
            {
                prop["type"] = json!([t, "null"]);
            }
        }
    }
}

fn validator(schema: &Value, defs: &Map<String, Value>) -> jsonschema::Validator {
    let mut root = schema.clone();
    root["definitions"] = Value::Object(defs.clone());
    jsonschema::draft4::new(&root).unwrap()
}

/// Matches a concrete path to a spec path template (`/apps/{app_name}/...`).
fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = path
        .trim_start_matches("/v1")
        .trim_start_matches('/')
        .split('/')
        .collect();
    segments_match(&t, &p)
}

async fn record() -> Vec<Exchange> {
    let mut r = Recorder {
        sim: start_sim().await,
        log: Vec::new(),
    };
    let app = "/v1/apps/schema";
    r.call(
        Method::POST,
        "/v1/apps",
        Some(json!({"app_name": "schema", "org_slug": "personal", "network": "n1"})),
    )
    .await;
    r.call(Method::GET, "/v1/apps?org_slug=personal", None)
        .await;
    r.call(Method::GET, app, None).await;

    let vol = r
        .call(
            Method::POST,
            &format!("{app}/volumes"),
            Some(
                json!({"name": "data", "region": "sjc", "size_gb": 2, "encrypted": true,
                "snapshot_retention": 7, "require_unique_zone": true, "fstype": "ext4",
                "compute": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256}}),
            ),
        )
        .await;
    let vid = vol["id"].as_str().unwrap().to_string();
    let v = format!("{app}/volumes/{vid}");
    r.call(Method::GET, &format!("{app}/volumes"), None).await;
    r.call(Method::GET, &v, None).await;
    r.call(
        Method::POST,
        &v,
        Some(json!({"snapshot_retention": 10, "auto_backup_enabled": true})),
    )
    .await;
    r.call(
        Method::PUT,
        &format!("{v}/extend"),
        Some(json!({"size_gb": 4})),
    )
    .await;
    r.call(Method::POST, &format!("{v}/snapshots"), None).await;
    r.call(Method::GET, &format!("{v}/snapshots"), None).await;

    let config = json!({
        "image": "registry.fly.io/schema:1",
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
        "env": {"A": "1"},
        "metadata": {"tenant": "t1"},
        "services": [{"protocol": "tcp", "internal_port": 8080, "autostop": "suspend",
            "autostart": true, "min_machines_running": 0,
            "ports": [{"port": 443, "handlers": ["tls", "http"]}],
            "concurrency": {"type": "requests", "soft_limit": 20, "hard_limit": 25}}],
        "mounts": [{"volume": vid, "path": "/data"}],
        "checks": {"alive": {"type": "tcp", "port": 8080, "interval": "15s", "timeout": "2s"}},
        "restart": {"policy": "always"},
        "stop_config": {"signal": "SIGTERM", "timeout": "10s"},
        "init": {"cmd": ["serve"]},
        "auto_destroy": false
    });
    let m = r
        .call(
            Method::POST,
            &format!("{app}/machines"),
            Some(
                json!({"name": "schema-1", "region": "sjc", "config": config,
                "lease_ttl": 30, "skip_service_registration": false}),
            ),
        )
        .await;
    let mid = m["id"].as_str().unwrap().to_string();
    let nonce = m["nonce"].as_str().unwrap().to_string();
    let mp = format!("{app}/machines/{mid}");
    r.call(Method::GET, &format!("{app}/machines?region=sjc"), None)
        .await;
    r.call(
        Method::GET,
        &format!("{mp}/wait?state=started&timeout=30"),
        None,
    )
    .await;
    r.call(Method::GET, &mp, None).await;
    r.call(Method::GET, &format!("{mp}/lease"), None).await;
    r.call_with(
        Method::POST,
        &format!("{mp}/lease"),
        Some(json!({"ttl": 60, "description": "schema"})),
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    let mut updated = config.clone();
    updated["image"] = json!("registry.fly.io/schema:2");
    r.call_with(
        Method::POST,
        &mp,
        Some(
            json!({"config": updated, "current_version": m["instance_id"].clone(),
            "skip_launch": false}),
        ),
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    // A 400 with Fly's error shape.
    r.call_with(
        Method::POST,
        &mp,
        Some(json!({"region": "sjc"})),
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    r.call_with(
        Method::DELETE,
        &format!("{mp}/lease"),
        None,
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    r.call(Method::GET, &format!("{mp}/wait?state=started"), None)
        .await;
    r.call(Method::GET, &format!("{mp}/metadata"), None).await;
    r.call(
        Method::POST,
        &format!("{mp}/metadata/role"),
        Some(json!({"value": "web"})),
    )
    .await;
    r.call(Method::DELETE, &format!("{mp}/metadata/role"), None)
        .await;
    r.call(Method::POST, &format!("{mp}/cordon"), None).await;
    r.call(Method::POST, &format!("{mp}/uncordon"), None).await;
    r.call(Method::POST, &format!("{mp}/restart"), None).await;
    r.call(Method::GET, &format!("{mp}/wait?state=started"), None)
        .await;
    let out = r
        .call(
            Method::POST,
            &format!("{mp}/exec"),
            Some(json!({"command": ["ls", "/"], "timeout": 5})),
        )
        .await;
    assert_eq!(out["exit_code"], 0, "{out:?}");
    let ps = r
        .call(Method::GET, &format!("{mp}/ps?sort_by=pid"), None)
        .await;
    assert!(ps.as_array().is_some_and(|p| !p.is_empty()), "{ps:?}");
    let versions = r.call(Method::GET, &format!("{mp}/versions"), None).await;
    assert!(
        versions.as_array().is_some_and(|v| v.len() >= 2),
        "{versions:?}"
    );
    r.call(
        Method::POST,
        &format!("{mp}/signal"),
        Some(json!({"signal": "SIGUSR1"})),
    )
    .await;
    r.call(
        Method::POST,
        &format!("{mp}/stop"),
        Some(json!({"signal": "SIGTERM", "timeout": "5s"})),
    )
    .await;
    let instance = r.call(Method::GET, &mp, None).await["instance_id"]
        .as_str()
        .unwrap()
        .to_string();
    r.call(
        Method::GET,
        &format!("{mp}/wait?state=stopped&instance_id={instance}"),
        None,
    )
    .await;
    r.call(Method::POST, &format!("{mp}/start"), None).await;
    r.call(Method::GET, &format!("{mp}/events"), None).await;
    r.call(Method::DELETE, &format!("{mp}?force=true"), None)
        .await;
    r.call(
        Method::GET,
        &format!("{app}/machines?include_deleted=true"),
        None,
    )
    .await;
    let other = r
        .call(
            Method::POST,
            &format!("{app}/volumes"),
            Some(json!({"name": "spare", "region": "fra"})),
        )
        .await;
    r.call(
        Method::DELETE,
        &format!("{app}/volumes/{}", other["id"].as_str().unwrap()),
        None,
    )
    .await;
    r.call(Method::DELETE, &format!("{app}?force=true"), None)
        .await;
    r.sim.handle.shutdown().await;
    r.log
}

#[tokio::test]
async fn recorded_traffic_validates_against_flys_swagger_spec() {
    let spec = spec();
    let mut defs = spec["definitions"].as_object().unwrap().clone();
    patch(&mut defs);
    let paths = spec["paths"].as_object().unwrap();
    // The check has teeth: a wrongly typed Machine is rejected.
    let machine = validator(&json!({"$ref": "#/definitions/Machine"}), &defs);
    assert!(!machine.is_valid(&json!({"id": 5, "events": [{"timestamp": "x"}]})));
    let log = record().await;

    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for ex in &log {
        let method = ex.method.as_str().to_lowercase();
        let Some((template, op)) = paths
            .iter()
            .find(|(t, ops)| matches(t, &ex.path) && ops.get(&method).is_some())
            .map(|(t, ops)| (t, &ops[&method]))
        else {
            panic!("{} {} is not in Fly's spec", ex.method, ex.path);
        };
        covered.insert(format!("{} {template}", ex.method));
        if let Some(body) = &ex.request {
            let schema = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["in"] == "body")
                .map(|p| p["schema"].clone());
            if let Some(schema) = schema {
                let v = validator(&schema, &defs);
                for e in v.iter_errors(body) {
                    failures.push(format!(
                        "request {} {}: {e} at {}",
                        ex.method,
                        ex.path,
                        e.instance_path()
                    ));
                }
            }
        }
        let exec_schema = json!({
            "type": "object",
            "properties": {
                "stdout": {"type": "string"},
                "stderr": {"type": "string"},
                "exit_code": {"type": "integer"},
            },
            "required": ["stdout", "stderr", "exit_code"],
        });
        let response_schema = if template.ends_with("/exec") && ex.status == 200 {
            &exec_schema
        } else {
            &op["responses"][ex.status.to_string()]["schema"]
        };
        if response_schema.is_object() {
            let v = validator(response_schema, &defs);
            for e in v.iter_errors(&ex.response) {
                failures.push(format!(
                    "response {} {} ({}): {e} at {}",
                    ex.method,
                    ex.path,
                    ex.status,
                    e.instance_path()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every operation of the spec was exercised (the simulator implements them all).
    let mut missing = Vec::new();
    for (template, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let key = format!("{} {template}", method.to_uppercase());
            if !covered.contains(&key) {
                missing.push(key);
            }
        }
    }
    assert!(missing.is_empty(), "not exercised: {missing:?}");
    assert!(covered.len() >= 32, "{covered:?}");
}
