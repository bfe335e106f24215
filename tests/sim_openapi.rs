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
use simkit::record::{Exchange, segments_match, session};
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

    let log = session().await;
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for ex in &log {
        let Some((template, op)) = operation(&spec, ex.method.as_str(), &ex.path) else {
            // The 2024 spec's volume update (POST), which the newest document replaced
            // with PUT; `sim_schema` checks it.
            let volume = segments_match(
                &["", "v1", "apps", "{a}", "volumes", "{v}"],
                &ex.path.split('/').collect::<Vec<_>>(),
            );
            assert!(
                ex.method == Method::POST && volume,
                "{} {} is not in Fly's document",
                ex.method,
                ex.path
            );
            continue;
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
