//! Saved plans are untrusted input: `flotilla apply PLANFILE` checks the plan's seal
//! (digest, and MAC under `FLOTILLA_PLAN_KEY`) and re-validates its desired state with
//! the spec's rules before it sends a single request. Each tampering below is refused
//! with exit 1 and a message naming what failed, and the simulator's request counter
//! does not move; an untampered plan still applies.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reconcile_common;

use std::process::Output;

use flotilla::plan::saved::seal_json;
use reconcile_common::{Org, text};
use serde_json::{Value, json};

const SCALE: f64 = 40.0;
const PLAN: &str = "plans/small.plan.json";
const KEY_VAR: &str = "FLOTILLA_PLAN_KEY";

const SPEC: &str = "\
version: 1
org: my-jarvis
fleet: integrity
naming:
  app: \"integrity-{{ tenant.name }}\"
defaults:
  image: registry.fly.io/integrity:1.0.0
  region: iad
  size: shared-cpu-1x
  memory: 256mb
  env: { LOG_LEVEL: info }
  secrets:
    JWT_SECRET: { file: secrets/jwt.txt }
  volume: { name: data, size_gb: 1, mount: /data }
tenants:
  - name: alice
";

/// A simulator, the small spec, and its plan saved under `key` (none: digest only).
fn planned(key: Option<&str>) -> Org {
    let org = Org::new(SCALE);
    org.write("specs/small.yaml", SPEC);
    let mut cmd = org.cmd("plan", &["specs/small.yaml", "--out", PLAN]);
    cmd.env_remove(KEY_VAR);
    if let Some(k) = key {
        cmd.env(KEY_VAR, k);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    if let Some(k) = key {
        // The key authenticates the plan; it is never printed nor saved in it.
        assert!(
            !text(&out).contains(k),
            "plan printed the key: {}",
            text(&out)
        );
        let saved = std::fs::read_to_string(org.path(PLAN)).unwrap();
        assert!(!saved.contains(k), "the saved plan holds the key");
    }
    org
}

/// `apply PLAN` with `key` (none: unset), asserting that it sent no request when it fails.
fn apply(org: &Org, key: Option<&str>) -> Output {
    let before = org.counters().requests;
    let mut cmd = org.cmd("apply", &[PLAN, "--yes", "--quiet"]);
    cmd.env_remove(KEY_VAR);
    if let Some(k) = key {
        cmd.env(KEY_VAR, k);
    }
    let out = cmd.output().unwrap();
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    if let Some(k) = key {
        assert!(
            !text(&out).contains(k),
            "apply printed the key: {}",
            text(&out)
        );
    }
    if !out.status.success() {
        assert_eq!(
            org.counters().requests,
            before,
            "a refused plan must send no request: {}",
            text(&out)
        );
    }
    out
}

fn refused(org: &Org, key: Option<&str>, expect: &[&str]) {
    let out = apply(org, key);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "expected {expect:?}:\n{t}");
    assert!(t.contains(PLAN), "the plan file is named: {t}");
    for e in expect {
        assert!(t.contains(e), "expected `{e}` in:\n{t}");
    }
}

fn read(org: &Org) -> Value {
    serde_json::from_str(&std::fs::read_to_string(org.path(PLAN)).unwrap()).unwrap()
}

/// Writes an edited plan as it is, seal untouched.
fn write_raw(org: &Org, doc: &Value) {
    org.write(PLAN, &serde_json::to_string_pretty(doc).unwrap());
}

/// Writes an edited plan re-sealed with a fresh digest (what anyone can compute), so
/// that only the re-validation stands between it and the organization.
fn write_resealed(org: &Org, doc: Value) {
    org.write(PLAN, &seal_json(doc, None).unwrap());
}

/// The index in `desired` of the first resource of `kind`.
fn first(doc: &Value, kind: &str) -> usize {
    doc["desired"]
        .as_array()
        .unwrap()
        .iter()
        .position(|r| r["kind"] == kind)
        .unwrap()
}

fn machine(doc: &mut Value) -> &mut Value {
    let i = first(doc, "machine");
    &mut doc["desired"][i]
}

/// A Fly-token-shaped string, assembled at run time.
fn token_shaped() -> String {
    let tail: String = (0..24).map(|i| char::from(b"aZ3kQ9xT"[i % 8])).collect();
    format!("{}{}{tail}", "fm", "2_")
}

#[test]
fn an_untampered_plan_applies_with_a_note_that_it_is_unauthenticated() {
    let org = planned(None);
    let out = apply(&org, None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("not authenticated"), "{}", text(&out));
    assert_eq!(org.apps("my-jarvis"), vec!["integrity-alice".to_string()]);
}

#[test]
fn a_modified_or_truncated_plan_fails_its_integrity_check() {
    let org = planned(None);
    let good = read(&org);
    let mut swapped = good.clone();
    machine(&mut swapped)["image"] = json!("registry.example/evil:1");
    write_raw(&org, &swapped);
    refused(
        &org,
        None,
        &["integrity check failed", "SHA-256", "flotilla plan"],
    );

    let raw = serde_json::to_string_pretty(&good).unwrap();
    org.write(PLAN, &raw[..raw.len() * 2 / 3]);
    refused(&org, None, &["not a flotilla plan file"]);

    let mut unsealed = good.clone();
    unsealed.as_object_mut().unwrap().shift_remove("integrity");
    write_raw(&org, &unsealed);
    refused(
        &org,
        None,
        &["integrity check failed", "no `integrity` seal"],
    );

    let mut zeroed = good.clone();
    zeroed["spec_hash"] = json!(format!("sha256:{}", "0".repeat(64)));
    write_raw(&org, &zeroed);
    refused(&org, None, &["integrity check failed"]);

    // The original still applies.
    write_raw(&org, &good);
    let out = apply(&org, None);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_keyed_plan_is_refused_with_the_wrong_key_or_without_one() {
    let key = "plan-key-for-tests-1";
    let org = planned(Some(key));
    refused(
        &org,
        Some("another-key"),
        &["integrity check failed", "MAC does not match"],
    );
    refused(&org, None, &["no key is configured", KEY_VAR]);
    // An edit re-sealed without the key has no MAC: refused while a key is configured.
    let mut swapped = read(&org);
    machine(&mut swapped)["image"] = json!("registry.example/evil:1");
    write_resealed(&org, swapped);
    refused(&org, Some(key), &["integrity check failed", "has no MAC"]);
}

#[test]
fn a_keyed_plan_applies_with_its_key() {
    let key = "plan-key-for-tests-2";
    let org = planned(Some(key));
    let out = apply(&org, Some(key));
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("not authenticated"), "{}", text(&out));
}

/// Each edit, re-sealed, is refused by the re-validation with these words.
#[test]
fn a_resealed_plan_is_held_to_the_spec_rules() {
    let org = planned(None);
    let good = read(&org);
    type Edit = Box<dyn Fn(&mut Value)>;
    let token = token_shaped();
    let cases: Vec<(Edit, Vec<&str>)> = vec![
        (
            Box::new(move |d: &mut Value| machine(d)["env"]["LOG_LEVEL"] = json!(token.clone())),
            vec![
                "tenant.alice.machine[0]",
                "env.LOG_LEVEL looks like a Fly.io API token",
            ],
        ),
        (
            Box::new(|d: &mut Value| machine(d)["env"]["BAD-NAME"] = json!("1")),
            vec!["`BAD-NAME` is not a valid environment variable name"],
        ),
        (
            Box::new(|d: &mut Value| machine(d)["guest"]["memory_mb"] = json!(131072)),
            vec!["131072 MB is outside what shared-cpu-1x allows"],
        ),
        (
            Box::new(|d: &mut Value| machine(d)["size"] = json!("shared-cpu-99x")),
            vec!["unknown size `shared-cpu-99x`"],
        ),
        (
            Box::new(|d: &mut Value| machine(d)["region"] = json!("mars")),
            vec!["unknown region `mars`"],
        ),
        (
            Box::new(|d: &mut Value| {
                let i = first(d, "secret");
                d["desired"][i]["source"] = json!({"file": "/proc/self/environ"});
            }),
            vec!["tenant.alice.secret.JWT_SECRET", "is an absolute path"],
        ),
        (
            Box::new(|d: &mut Value| {
                let i = first(d, "secret");
                d["desired"][i]["source"] = json!({"file": "../../../proc/self/environ"});
            }),
            vec!["leaves the directory"],
        ),
        (
            Box::new(|d: &mut Value| {
                let i = first(d, "secret");
                d["desired"][i]["source"] = json!({"env": "FLY_API-TOKEN"});
            }),
            vec!["`FLY_API-TOKEN` is not a valid environment variable name"],
        ),
        (
            Box::new(|d: &mut Value| d["spec_hash"] = json!(format!("sha256:{}", "0".repeat(64)))),
            vec!["`spec_hash` is not a SHA-256"],
        ),
        (
            Box::new(|d: &mut Value| {
                let dup = d["desired"][0].clone();
                d["desired"].as_array_mut().unwrap().push(dup);
            }),
            vec!["tenant.alice.app", "listed twice"],
        ),
        (
            Box::new(|d: &mut Value| machine(d)["tenant"] = json!("bob")),
            vec!["does not belong to the resource's owner `bob`"],
        ),
        (
            Box::new(|d: &mut Value| machine(d)["app"] = json!("Evil_App")),
            vec!["app name `Evil_App`"],
        ),
        (
            Box::new(|d: &mut Value| {
                let i = first(d, "volume");
                d["desired"][i]["size_gb"] = json!(100000);
            }),
            vec!["volume size 100000 GB"],
        ),
        (
            Box::new(|d: &mut Value| machine(d)["metadata"]["fly_platform_version"] = json!("v2")),
            vec!["metadata key `fly_platform_version` is reserved"],
        ),
    ];
    for (edit, expect) in cases {
        let mut doc = good.clone();
        edit(&mut doc);
        write_resealed(&org, doc);
        let mut expect = expect;
        if !expect.contains(&"listed twice") {
            expect.push("cannot be applied");
        }
        refused(&org, None, &expect);
    }
    // No token-shaped value is echoed.
    let mut doc = good.clone();
    machine(&mut doc)["metadata"]["note"] = json!(token_shaped());
    write_resealed(&org, doc);
    let out = apply(&org, None);
    assert_eq!(out.status.code(), Some(1));
    assert!(!text(&out).contains(&token_shaped()), "{}", text(&out));
    // The untouched plan, re-sealed the same way, applies.
    write_resealed(&org, good);
    let out = apply(&org, None);
    assert!(out.status.success(), "{}", text(&out));
}
