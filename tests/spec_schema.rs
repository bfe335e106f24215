//! `flotilla schema` describes the spec as validation does: the JSON Schema accepts
//! every spec that validates (shipped specs, examples, cost fixtures) and rejects the
//! shape errors of `examples/invalid/`; `completions` and `graph --format json` work.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{bin, root};
use flotilla::spec::yaml::{self, Node, Value as YamlValue};
use serde_json::{Map, Value, json};

fn schema() -> jsonschema::Validator {
    let out = bin().arg("schema").output().unwrap();
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::validator_for(&schema).unwrap()
}

/// A YAML 1.2 core-schema reading of the document, as an editor's language server has.
fn to_json(n: &Node) -> Value {
    match &n.value {
        YamlValue::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        YamlValue::Map(entries) => {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(k.scalar_text().unwrap_or_default().to_string(), to_json(v));
            }
            Value::Object(m)
        }
        YamlValue::Scalar { text, plain } => {
            if !plain {
                json!(text)
            } else if n.is_null() {
                Value::Null
            } else if let Some(b) = n.as_bool() {
                json!(b)
            } else if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Ok(f) = text.parse::<f64>()
                && text
                    .chars()
                    .all(|c| c.is_ascii_digit() || ".-+eE".contains(c))
            {
                json!(f)
            } else {
                json!(text)
            }
        }
    }
}

fn document(p: &Path) -> Value {
    to_json(&yaml::parse(&std::fs::read(p).unwrap()).unwrap())
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_spec_that_validates_is_accepted_by_the_schema() {
    let v = schema();
    let mut checked = 0;
    for dir in ["specs", "examples/costs", "tests/fixtures/cost"] {
        for p in yaml_files(dir) {
            let valid = bin().arg("validate").arg(&p).output().unwrap();
            if !valid.status.success() {
                continue;
            }
            let doc = document(&p);
            let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{}: {errors:?}", p.display());
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} specs checked");
}

#[test]
fn shape_errors_of_the_invalid_examples_are_rejected_by_the_schema() {
    let v = schema();
    for name in [
        "unknown-key",
        "wrong-type",
        "plaintext-secret",
        "missing-version",
        "machine-config",
    ] {
        let p = root().join(format!("examples/invalid/{name}.yaml"));
        let doc = document(&p);
        assert!(!v.is_valid(&doc), "{name} passes the schema");
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_flotilla()"),
        ("zsh", "#compdef flotilla"),
        ("fish", "complete -c flotilla"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell}: no {marker}");
        assert!(text.contains("plan"), "{shell}: subcommands missing");
    }
}

#[test]
fn graph_json_lists_every_resource_and_its_prerequisites() {
    let out = bin()
        .args(["graph", "specs/jarvis.yaml", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let g: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = g["nodes"].as_array().unwrap();
    // `validate` counts 140 resources for jarvis (with its addresses and certificates).
    assert_eq!(nodes.len(), 140);
    let level_of = |addr: &str| {
        nodes
            .iter()
            .find(|n| n["address"] == addr)
            .and_then(|n| n["level"].as_u64())
    };
    for e in g["edges"].as_array().unwrap() {
        let (from, to) = (e["from"].as_str().unwrap(), e["to"].as_str().unwrap());
        assert!(
            level_of(from).unwrap() < level_of(to).unwrap(),
            "{from} must come before {to}"
        );
    }
    assert!(
        g["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["relation"] == "mounts")
    );
}

#[test]
fn the_shipped_specs_point_editors_at_the_committed_schema() {
    // specs/flotilla.schema.json is what `flotilla schema` prints: regenerate it with
    // `flotilla schema > specs/flotilla.schema.json` when a declaration changes.
    let out = bin().arg("schema").output().unwrap();
    let committed = std::fs::read(root().join("specs/flotilla.schema.json")).unwrap();
    assert!(
        out.stdout == committed,
        "specs/flotilla.schema.json is stale: run `flotilla schema > specs/flotilla.schema.json`"
    );
    for spec in yaml_files("specs") {
        let text = std::fs::read_to_string(&spec).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=./flotilla.schema.json\n"),
            "{} has no yaml-language-server modeline on its first line",
            spec.display()
        );
    }
}
