//! The pass-through Machine config fields (`stop_config`, `restart_max_retries`, `init`,
//! `dns`, `metrics`, `statics`, `auto_destroy`, `schedule`) against the in-process
//! simulator: declared in layers (with a template), applied, read back from the
//! Machines' configs as Fly normalizes them, re-planned without changes; then each
//! field changed, planned as an update naming that field, applied, re-planned empty.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod libsim;

use std::collections::BTreeSet;

use flotilla::ops;
use flotilla::plan::Action;
use flotilla::resource::Address;
use libsim::{apply, plan};
use serde_json::{Value, json};

const SPEC: &str = r#"
version: 1
org: mcfg
defaults:
  image: registry.fly.io/mcfg:1.0.0
  region: iad
  restart: on-failure
  restart_max_retries: 3
  stop_config: { signal: SIGTERM, timeout: 90s }
  init: { cmd: [serve, "--tenant={{ tenant.name }}"], tty: false, swap_size_mb: 512 }
  dns:
    skip_registration: false
    nameservers: [1.1.1.1]
    searches: [internal.example]
    options: [{ name: ndots, value: "2" }]
  metrics: { port: 9091, path: /metrics }
  statics: [{ guest_path: /app/public, url_prefix: /static, index_document: index.html }]
  auto_destroy: false
tiers:
  pro:
    stop_config: { timeout: 1m }
    init: { kernel_args: [quiet] }
  cron:
    schedule: daily
tenants:
  - name: alice
  - name: bob
    tier: pro
  - name: carl
    tier: cron
  - name: dave
    restart: always
    restart_max_retries: null
    auto_destroy: true
"#;

fn machine(tenant: &str) -> Address {
    format!("tenant.{tenant}.machine[0]").parse().unwrap()
}

/// The Machine's config as the simulator answers it, and its state.
fn live(out: &ops::plan::Outcome, tenant: &str) -> (Value, String) {
    let m = &out.observed.machines[&machine(tenant)];
    (serde_json::to_value(&m.config).unwrap(), m.state.clone())
}

fn assert_applied(out: &ops::plan::Outcome) {
    let (alice, state) = live(out, "alice");
    assert_eq!(state, "started");
    assert_eq!(
        alice["stop_config"],
        json!({"signal": "SIGTERM", "timeout": "1m30s"}),
        "90s is answered as Go writes it"
    );
    assert_eq!(
        alice["restart"],
        json!({"policy": "on-failure", "max_retries": 3})
    );
    assert_eq!(alice["init"]["cmd"], json!(["serve", "--tenant=alice"]));
    assert_eq!(alice["init"]["swap_size_mb"], 512);
    assert_eq!(alice["dns"]["nameservers"], json!(["1.1.1.1"]));
    assert_eq!(alice["dns"]["searches"], json!(["internal.example"]));
    assert_eq!(
        alice["dns"]["options"],
        json!([{"name": "ndots", "value": "2"}])
    );
    assert_eq!(alice["metrics"], json!({"port": 9091, "path": "/metrics"}));
    assert_eq!(
        alice["statics"],
        json!([{"guest_path": "/app/public", "url_prefix": "/static", "index_document": "index.html"}])
    );
    assert!(
        alice.get("auto_destroy").is_none(),
        "Fly drops auto_destroy: false"
    );

    let (bob, _) = live(out, "bob");
    assert_eq!(
        bob["stop_config"],
        json!({"signal": "SIGTERM", "timeout": "1m0s"}),
        "the tier's timeout over the defaults' signal"
    );
    assert_eq!(bob["init"]["kernel_args"], json!(["quiet"]));
    assert_eq!(bob["init"]["cmd"], json!(["serve", "--tenant=bob"]));

    let (carl, state) = live(out, "carl");
    assert_eq!(carl["schedule"], "daily");
    assert_eq!(state, "created", "a scheduled Machine is not started");

    let (dave, state) = live(out, "dave");
    assert_eq!(dave["auto_destroy"], true);
    assert_eq!(dave["restart"], json!({"policy": "always"}));
    assert_eq!(state, "started");
}

/// Each field changed in the spec, and the field paths the plan must name.
const EDITS: &[(&str, &str)] = &[
    (
        "stop_config: { signal: SIGTERM, timeout: 90s }",
        "stop_config: { signal: SIGINT, timeout: 30s }",
    ),
    ("restart_max_retries: 3", "restart_max_retries: 5"),
    (
        "tty: false, swap_size_mb: 512",
        "tty: true, swap_size_mb: 1024",
    ),
    ("nameservers: [1.1.1.1]", "nameservers: [8.8.8.8]"),
    ("value: \"2\"", "value: \"3\""),
    ("port: 9091", "port: 9092"),
    ("url_prefix: /static", "url_prefix: /assets"),
    ("auto_destroy: false", "auto_destroy: true"),
    ("schedule: daily", "schedule: weekly"),
];

const ALICE_PATHS: &[&str] = &[
    "stop_config.signal",
    "stop_config.timeout",
    "restart.max_retries",
    "init.tty",
    "init.swap_size_mb",
    "dns.nameservers[0]",
    "dns.options[0].value",
    "metrics.port",
    "statics[0].url_prefix",
    "auto_destroy",
];

/// The change plan as text, every resource (the cost lines after it depend on the
/// price table in force, not on these fields).
fn snapshot_plan(out: &ops::plan::Outcome) {
    use flotilla::render::{Layout, Style, plan_text};
    let desired = Some(&out.desired.resources);
    let text = plan_text(&out.document, desired, Style::plain(), Layout::Detail);
    let changes = text.split("\nCost:").next().unwrap();
    insta::with_settings!({filters => vec![(r"\b[0-9a-f]{14}\b", "[id]")]}, {
        insta::assert_snapshot!("machine_config_update_text", changes);
    });
}

fn changed_paths(out: &ops::plan::Outcome, tenant: &str) -> BTreeSet<String> {
    let c = out
        .document
        .changes
        .iter()
        .find(|c| c.address == machine(tenant))
        .unwrap_or_else(|| panic!("no change for {tenant}"));
    assert_eq!(c.action, Action::Update);
    assert!(c.restart, "a config change restarts the Machine");
    c.fields.iter().map(|f| f.path.to_string()).collect()
}

#[test]
fn every_field_round_trips_and_each_change_is_one_field_update() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    apply(&spec, dir.path(), false);
    let again = plan(&spec, dir.path());
    assert!(
        !again.has_changes(),
        "re-plan after apply: {:#?}",
        again.document.changes
    );
    assert_applied(&again);

    let mut edited = SPEC.to_string();
    for (from, to) in EDITS {
        assert!(edited.contains(from), "{from}");
        edited = edited.replacen(from, to, 1);
    }
    std::fs::write(&spec, &edited).unwrap();
    let changed = plan(&spec, dir.path());
    let alice = changed_paths(&changed, "alice");
    let want: BTreeSet<String> = ALICE_PATHS.iter().map(|s| s.to_string()).collect();
    assert_eq!(alice, want);
    let carl = changed_paths(&changed, "carl");
    assert!(carl.contains("schedule"), "{carl:?}");
    let carl_change = changed
        .document
        .changes
        .iter()
        .find(|c| c.address == machine("carl"))
        .unwrap();
    assert!(carl_change.stays_idle, "a scheduled Machine is not started");

    snapshot_plan(&changed);

    apply(&spec, dir.path(), false);
    let after = plan(&spec, dir.path());
    assert!(
        !after.has_changes(),
        "re-plan after the update: {:#?}",
        after.document.changes
    );
    let (alice, _) = live(&after, "alice");
    assert_eq!(
        alice["stop_config"],
        json!({"signal": "SIGINT", "timeout": "30s"})
    );
    assert_eq!(alice["auto_destroy"], true);
    assert_eq!(alice["statics"][0]["url_prefix"], "/assets");
    assert_eq!(
        alice["init"]["cmd"],
        json!(["serve", "--tenant=alice"]),
        "an unchanged list is sent as it was"
    );
    let (carl, state) = live(&after, "carl");
    assert_eq!(carl["schedule"], "weekly");
    assert_eq!(state, "created", "updated without starting it");
}
