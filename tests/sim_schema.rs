//! Validates the simulator traffic of `simkit::record::session` (the session the newest
//! document is checked with in `sim_openapi`) against Fly's 2024 Swagger spec: request
//! and response bodies of every operation that spec knows, and every one of its
//! operations exercised.
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

use serde_json::{Map, Value, json};
use simkit::record::{segments_match, session};

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

#[tokio::test]
async fn recorded_traffic_validates_against_flys_swagger_spec() {
    let spec = spec();
    let mut defs = spec["definitions"].as_object().unwrap().clone();
    patch(&mut defs);
    let paths = spec["paths"].as_object().unwrap();
    // The check has teeth: a wrongly typed Machine is rejected.
    let machine = validator(&json!({"$ref": "#/definitions/Machine"}), &defs);
    assert!(!machine.is_valid(&json!({"id": 5, "events": [{"timestamp": "x"}]})));
    // The session the newest document is checked with (`simkit::record`); the 2024
    // spec knows a subset of its operations.
    let log = session().await;

    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for ex in &log {
        let method = ex.method.as_str().to_lowercase();
        let Some((template, op)) = paths
            .iter()
            .find(|(t, ops)| matches(t, &ex.path) && ops.get(&method).is_some())
            .map(|(t, ops)| (t, &ops[&method]))
        else {
            continue;
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
