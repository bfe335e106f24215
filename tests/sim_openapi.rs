//! The simulator against Fly's newest vendored Machines API document (OpenAPI 3.1,
//! tests/fixtures/fly/fly-machines-openapi-2026.yml; its source is in the README beside
//! it). One session drives apps, Machines (with exec, ps, signal, versions, wait,
//! leases, events and metadata), volumes, snapshots, secrets, IP assignments,
//! certificates and the platform's regions, and every response body is validated
//! against the schema the document gives for that operation and status (`$ref`s resolve
//! to its components). A success status the document does not list for the operation
//! fails the test.
//!
//! A second test sends every operation of the document to a simulator holding nothing
//! and collects those it does not serve (its fallback 404 or a 405): README.md's list of
//! unserved operations must be exactly that list.
//!
//! Two known differences between the document and the live API are patched into the
//! schemas before checking:
//! - The document is generated from Go structs and has no nullable marker; Go pointer
//!   fields answer `null` (e.g. a volume's `attached_machine_id`), so properties with a
//!   primitive type also accept null.
//! - `fly.MachineService.autostop` is typed as a string, while its own description says
//!   responses answer `false`/`true` for `off`/`stop`: booleans are accepted too.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod simkit;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Map, Value, json};
use simkit::record::{Exchange, Recorder, segments_match};
use simkit::*;
use yaml_rust2::{Yaml, YamlLoader};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The vendored document as JSON.
fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fly/fly-machines-openapi-2026.yml"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("Fly's OpenAPI document (vendored) is expected at {path}: {e}"));
    let docs = YamlLoader::load_from_str(&text).unwrap();
    let spec = to_json(&docs[0]);
    assert_eq!(spec["openapi"], "3.1.0", "not the vendored document");
    spec
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => json!(s.parse::<f64>().unwrap()),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => panic!("unexpected key {other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("unexpected YAML node {other:?}"),
    }
}

/// The component schemas with the documented live-API differences applied (module docs).
fn schemas(spec: &Value) -> Map<String, Value> {
    let mut defs = spec["components"]["schemas"].as_object().unwrap().clone();
    let autostop = &mut defs["fly.MachineService"]["properties"]["autostop"];
    autostop["type"] = json!(["string", "boolean"]);
    autostop.as_object_mut().unwrap().remove("enum");
    for def in defs.values_mut() {
        let Some(props) = def.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for prop in props.values_mut() {
            if let Some(t) = prop.get("type").and_then(Value::as_str)
                && matches!(t, "string" | "integer" | "boolean" | "number")
            {
                prop["type"] = json!([t, "null"]);
                if let Some(e) = prop.get_mut("enum").and_then(Value::as_array_mut) {
                    e.push(Value::Null);
                }
            }
        }
    }
    defs
}

fn validator(schema: &Value, defs: &Map<String, Value>) -> jsonschema::Validator {
    let root = json!({
        "allOf": [schema],
        "components": { "schemas": defs },
    });
    jsonschema::draft202012::new(&root).unwrap()
}

/// Matches a concrete path (query dropped) to a template of the document.
fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    segments_match(&t, &p)
}

/// The template and operation of the document a request is, if any. Literal segments
/// win over placeholders (`…/certificates/acme` over `…/certificates/{hostname}`).
fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let method = method.to_lowercase();
    spec["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(t, ops)| matches(t, path) && ops.get(&method).is_some())
        .min_by_key(|(t, _)| t.matches('{').count())
        .map(|(t, ops)| (t.as_str(), &ops[&method]))
}

impl Recorder {
    /// Waits (outside the record) until the Machine is in `state`.
    async fn settle(&self, mp: &str, state: &str) {
        for _ in 0..200 {
            if self.sim.get(mp).await.body["state"] == state {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("{mp} never reached {state}");
    }
}

async fn apps_and_platform(r: &mut Recorder) {
    r.call(
        Method::POST,
        "/v1/apps",
        Some(json!({"name": "openapi", "org_slug": "personal", "network": "n1"})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/apps",
        Some(json!({"app_name": "openapi-spare", "org_slug": "personal"})),
    )
    .await;
    // A 422 with Fly's error shape: the name is taken.
    r.call(
        Method::POST,
        "/v1/apps",
        Some(json!({"name": "openapi", "org_slug": "personal"})),
    )
    .await;
    r.call(Method::GET, "/v1/apps?org_slug=personal", None)
        .await;
    r.call(Method::GET, "/v1/apps", None).await;
    r.call(Method::GET, "/v1/apps/openapi", None).await;
    r.call(Method::GET, "/v1/platform/regions", None).await;
}

async fn volumes(r: &mut Recorder, app: &str) -> String {
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
        Method::PUT,
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
    vid
}

fn machine_config(vid: &str) -> Value {
    json!({
        "image": "registry.fly.io/openapi:1",
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
    })
}

/// Create, wait, lease, update and metadata; returns the Machine's path.
async fn machine_lifecycle(r: &mut Recorder, app: &str, vid: &str) -> String {
    let config = machine_config(vid);
    let m = r
        .call(
            Method::POST,
            &format!("{app}/machines"),
            Some(
                json!({"name": "openapi-1", "region": "sjc", "config": config,
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
        Some(json!({"ttl": 60, "description": "openapi"})),
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    let mut updated = config.clone();
    updated["image"] = json!("registry.fly.io/openapi:2");
    r.call_with(
        Method::POST,
        &mp,
        Some(json!({"config": updated, "current_version": m["instance_id"].clone()})),
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    // A 400 with Fly's error shape: an update without a config.
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
    let role = r
        .call(Method::GET, &format!("{mp}/metadata/role"), None)
        .await;
    assert_eq!(role["value"], "web", "{role:?}");
    r.call(
        Method::PATCH,
        &format!("{mp}/metadata"),
        Some(json!({"metadata": {"tier": "gold", "role": ""}})),
    )
    .await;
    let md = r.call(Method::GET, &format!("{mp}/metadata"), None).await;
    assert_eq!(md, json!({"tenant": "t1", "tier": "gold"}));
    // A 412 with Fly's error shape: the Machine is no longer at that version.
    r.call(
        Method::PUT,
        &format!("{mp}/metadata"),
        Some(json!({"metadata": {"tier": ""}, "machine_version": m["instance_id"].clone()})),
    )
    .await;
    r.call(Method::DELETE, &format!("{mp}/metadata/tier"), None)
        .await;
    // A 404 with Fly's error shape: the key is gone.
    r.call(Method::GET, &format!("{mp}/metadata/tier"), None)
        .await;
    mp
}

/// exec, ps, versions, signal, stop, wait for stopped, start, suspend, events, destroy.
async fn machine_operations(r: &mut Recorder, app: &str, mp: &str) {
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
    let instance = r.call(Method::GET, mp, None).await["instance_id"]
        .as_str()
        .unwrap()
        .to_string();
    r.call(
        Method::GET,
        &format!("{mp}/wait?state=stopped&instance_id={instance}"),
        None,
    )
    .await;
    // A 400 with Fly's error shape: waiting for `stopped` without the version.
    r.call(Method::GET, &format!("{mp}/wait?state=stopped"), None)
        .await;
    r.call(Method::POST, &format!("{mp}/start"), None).await;
    r.settle(mp, "started").await;
    r.call(Method::POST, &format!("{mp}/suspend"), None).await;
    r.call(Method::GET, &format!("{mp}/wait?state=suspended"), None)
        .await;
    r.call(Method::GET, &format!("{mp}/events"), None).await;
    r.call(Method::DELETE, &format!("{mp}?force=true"), None)
        .await;
    r.call(
        Method::GET,
        &format!("{app}/machines?include_deleted=true"),
        None,
    )
    .await;
}

async fn secrets_ips_certificates(r: &mut Recorder, app: &str) {
    r.call(
        Method::POST,
        &format!("{app}/secrets"),
        Some(json!({"values": {"API_KEY": "k1", "OTHER": "o1"}})),
    )
    .await;
    r.call(Method::GET, &format!("{app}/secrets"), None).await;
    r.call(
        Method::POST,
        &format!("{app}/secrets/SESSION"),
        Some(json!({"value": "s1"})),
    )
    .await;
    r.call(Method::GET, &format!("{app}/secrets/SESSION"), None)
        .await;
    r.call(Method::DELETE, &format!("{app}/secrets/SESSION"), None)
        .await;

    let ip = r
        .call(
            Method::POST,
            &format!("{app}/ip_assignments"),
            Some(json!({"type": "v6"})),
        )
        .await;
    r.call(
        Method::POST,
        &format!("{app}/ip_assignments"),
        Some(json!({"type": "shared_v4"})),
    )
    .await;
    r.call(Method::GET, &format!("{app}/ip_assignments"), None)
        .await;
    let addr = ip["ip"].as_str().unwrap().to_string();
    r.call(
        Method::DELETE,
        &format!("{app}/ip_assignments/{addr}"),
        None,
    )
    .await;

    let host = "openapi.example.com";
    r.call(
        Method::POST,
        &format!("{app}/certificates/acme"),
        Some(json!({"hostname": host})),
    )
    .await;
    r.call(Method::GET, &format!("{app}/certificates"), None)
        .await;
    r.call(Method::GET, &format!("{app}/certificates/{host}"), None)
        .await;
    r.call(
        Method::POST,
        &format!("{app}/certificates/{host}/check"),
        None,
    )
    .await;
    r.call(Method::DELETE, &format!("{app}/certificates/{host}"), None)
        .await;
}

async fn teardown(r: &mut Recorder, app: &str, vid: &str) {
    r.settle_volume_detached(app, vid).await;
    r.call(Method::DELETE, &format!("{app}/volumes/{vid}"), None)
        .await;
    r.call(Method::DELETE, &format!("{app}?force=true"), None)
        .await;
    r.call(Method::DELETE, "/v1/apps/openapi-spare", None).await;
}

impl Recorder {
    /// Waits (outside the record) until the volume's attachment cleared.
    async fn settle_volume_detached(&self, app: &str, vid: &str) {
        for _ in 0..200 {
            let v = self.sim.get(&format!("{app}/volumes/{vid}")).await.body;
            if v["attached_machine_id"].is_null() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("volume {vid} stayed attached");
    }
}

async fn record() -> Vec<Exchange> {
    let mut r = Recorder {
        sim: start_sim().await,
        log: Vec::new(),
    };
    let app = "/v1/apps/openapi";
    apps_and_platform(&mut r).await;
    let vid = volumes(&mut r, app).await;
    let mp = machine_lifecycle(&mut r, app, &vid).await;
    machine_operations(&mut r, app, &mp).await;
    secrets_ips_certificates(&mut r, app).await;
    teardown(&mut r, app, &vid).await;
    r.sim.handle.shutdown().await;
    r.log
}

/// The schema the document gives for a request body, if any.
fn request_schema(op: &Value) -> Option<&Value> {
    op["requestBody"]["content"]["application/json"]
        .get("schema")
        .filter(|s| s.is_object())
}

/// What is wrong with one exchange, against its operation.
fn problems(ex: &Exchange, op: &Value, defs: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let what = format!("{} {} ({})", ex.method, ex.path, ex.status);
    if let (Some(body), Some(schema)) = (&ex.request, request_schema(op)) {
        for e in validator(schema, defs).iter_errors(body) {
            out.push(format!("request {what}: {e} at {}", e.instance_path()));
        }
    }
    let status = ex.status.to_string();
    let documented = &op["responses"][&status];
    if documented.is_null() && (200..300).contains(&ex.status) {
        let listed: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        out.push(format!(
            "response {what}: status not in the document ({listed:?})"
        ));
        return out;
    }
    // Errors the document does not list for the operation still have Fly's shape.
    let error_shape = json!({"$ref": "#/components/schemas/ErrorResponse"});
    let schema = match documented["content"]["application/json"].get("schema") {
        Some(s) => s,
        None if ex.status >= 400 => &error_shape,
        None => return out,
    };
    for e in validator(schema, defs).iter_errors(&ex.response) {
        out.push(format!("response {what}: {e} at {}", e.instance_path()));
    }
    out
}

#[tokio::test]
async fn recorded_traffic_validates_against_flys_newest_openapi_document() {
    let spec = spec();
    let defs = schemas(&spec);
    // The check has teeth: a wrongly typed Machine and a wait answer are rejected.
    let machine = validator(&json!({"$ref": "#/components/schemas/Machine"}), &defs);
    assert!(!machine.is_valid(&json!({"id": 5, "events": [{"timestamp": "x"}]})));
    let wait = validator(
        &json!({"$ref": "#/components/schemas/WaitMachineResponse"}),
        &defs,
    );
    assert!(!wait.is_valid(&json!({"ok": "yes"})));

    let log = record().await;
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for ex in &log {
        let Some((template, op)) = operation(&spec, ex.method.as_str(), &ex.path) else {
            panic!("{} {} is not in Fly's document", ex.method, ex.path);
        };
        covered.insert(format!("{} {template}", ex.method));
        failures.extend(problems(ex, op, &defs));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The session reaches every family the simulator serves.
    for want in [
        "GET /v1/apps/{app_name}/machines/{machine_id}/versions",
        "POST /v1/apps/{app_name}/machines/{machine_id}/exec",
        "GET /v1/apps/{app_name}/machines/{machine_id}/ps",
        "POST /v1/apps/{app_name}/machines/{machine_id}/signal",
        "GET /v1/apps/{app_name}/machines/{machine_id}/wait",
        "DELETE /v1/apps/{app_name}/machines/{machine_id}/lease",
        "GET /v1/apps/{app_name}/machines/{machine_id}/events",
        "PATCH /v1/apps/{app_name}/machines/{machine_id}/metadata",
        "GET /v1/apps/{app_name}/machines/{machine_id}/metadata/{key}",
        "POST /v1/apps/{app_name}/volumes/{volume_id}/snapshots",
        "POST /v1/apps/{app_name}/secrets",
        "DELETE /v1/apps/{app_name}/ip_assignments/{ip}",
        "POST /v1/apps/{app_name}/certificates/{hostname}/check",
        "GET /v1/platform/regions",
    ] {
        assert!(covered.contains(want), "{want} was not exercised");
    }
}

/// A concrete path for a template, naming things that do not exist.
fn probe_path(template: &str) -> String {
    template
        .split('/')
        .map(|seg| match seg {
            "{org_slug}" => "personal",
            s if s.starts_with('{') => "probe-missing",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The document's operations the simulator does not serve, as `METHOD /path`.
async fn unserved(spec: &Value) -> Vec<String> {
    let sim = start_sim().await;
    let mut out = Vec::new();
    for (template, ops) in spec["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| ops.get(**m).is_some()) {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (*method != "get" && *method != "delete").then(|| json!({}));
            let r = sim.send(m.clone(), &probe_path(template), body, &[]).await;
            let fallback = r.status == 404 && r.body == json!({"error": "not found"});
            if fallback || r.status == 405 {
                out.push(format!("{m} {template}"));
            }
        }
    }
    sim.handle.shutdown().await;
    out
}

#[tokio::test]
async fn readme_lists_exactly_the_operations_the_simulator_does_not_serve() {
    let spec = spec();
    let missing = unserved(&spec).await;
    let total: usize = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|ops| METHODS.iter().filter(|m| ops.get(**m).is_some()).count())
        .sum();
    // The probe has teeth: the simulator serves most of what flotilla needs.
    assert!(missing.len() < total, "{missing:?}");
    assert!(!missing.contains(&"GET /v1/apps/{app_name}/machines".to_string()));
    assert!(missing.contains(&"POST /v1/platform/placements".to_string()));

    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- unserved-operations:start -->")
        .expect("README marks the list of unserved operations");
    let end = readme
        .find("<!-- unserved-operations:end -->")
        .expect("README marks the end of that list");
    let listed: Vec<String> = readme[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert_eq!(
        listed,
        missing,
        "README's unserved operations differ from the probe; the list should be:\n{}",
        missing
            .iter()
            .map(|m| format!("- `{m}`"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
