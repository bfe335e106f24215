//! `processes:` and `files:` end to end, as a library against the in-process simulator:
//! declared, planned, saved, applied from the saved plan, and planned again with nothing
//! left to do; a changed local file planned as a change of that file alone, shown by
//! digest and size in text and JSON, never by its content (which no saved plan holds).

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod libsim;

use std::path::{Path, PathBuf};

use flotilla::ops;
use flotilla::render::{Layout, Style, plan_json, plan_text};

const SPEC: &str = "\
version: 1
org: procs
defaults:
  image: registry.fly.io/procs:1.0.0
  region: iad
  secrets:
    TLS_KEY: { file: tls.key }
  processes:
    - name: app
      cmd: [serve, \"--tenant={{ tenant.name }}\"]
      env: { MODE: web }
      user: app
  files:
    - { guest_path: /etc/app/tenant.conf, raw_value: \"conf-of {{ tenant.name }}\\n\" }
    - { guest_path: /etc/app/app.toml, local_file: conf/app.toml }
    - { guest_path: /etc/app/tls.key, secret_name: TLS_KEY }
tenants:
  - name: alice
  - name: bob
    processes: [{ name: worker, exec: [/bin/worker, --queue=bob] }]
";

/// The text of the local file (unique, so that its absence from outputs means something).
const LOCAL: &str = "listen = \"0.0.0.0:8080\" # local-file-marker-1\n";
const RAW_MARKER: &str = "conf-of alice";

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/app.toml"), LOCAL).unwrap();
    std::fs::write(dir.path().join("tls.key"), "tls-key-for-tests\n").unwrap();
    (dir, spec)
}

fn b64(s: &str) -> String {
    flotilla::resource::procs::base64_encode(s.as_bytes())
}

#[test]
fn processes_and_files_round_trip_through_the_simulator() {
    let (dir, spec) = scratch();
    let saved = dir.path().join("fleet.plan.json");
    let plan_opts = ops::plan::Options {
        spec: spec.clone(),
        target: libsim::target(dir.path()),
        out: Some(saved.clone()),
        // A fixed price table, so a new one does not change the snapshots.
        pricing: ops::pricing::PricingOptions {
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 1),
            ..Default::default()
        },
        ..Default::default()
    };
    let planned = ops::plan::run(&plan_opts).unwrap();
    assert!(planned.has_changes());
    let plan_file = std::fs::read_to_string(&saved).unwrap();
    for content in [
        LOCAL.trim_end(),
        RAW_MARKER,
        &b64(LOCAL),
        "local-file-marker",
    ] {
        assert!(
            !plan_file.contains(content),
            "the saved plan holds {content}"
        );
    }
    assert!(
        plan_file.contains("\"digest\": \"sha256:"),
        "digests are saved"
    );

    let apply_opts = ops::apply::Options {
        input: saved,
        target: libsim::target(dir.path()),
        journal: Some(dir.path().join("journal.jsonl")),
        quiet: true,
        ..Default::default()
    };
    let report = ops::apply::prepare(&apply_opts).unwrap().execute().unwrap();
    assert!(report.ok(), "{}", report.summary.text());

    // What the simulator holds: the processes and files as Fly's config has them.
    let sim = std::fs::read_to_string(dir.path().join("sim.json")).unwrap();
    for want in [
        "\"processes\"",
        "--tenant=alice",
        "/bin/worker",
        "\"secret_name\":\"TLS_KEY\"",
    ] {
        assert!(
            sim.replace(": ", ":").contains(want),
            "the simulator has no {want}"
        );
    }
    assert!(sim.contains(&b64(LOCAL)), "local_file sent as raw_value");
    assert!(
        sim.contains(&b64("conf-of alice\n")),
        "raw_value sent base64"
    );

    let again = ops::plan::run(&ops::plan::Options {
        out: None,
        ..plan_opts.clone()
    })
    .unwrap();
    assert!(
        !again.has_changes(),
        "{:#?}",
        again.document.actionable().collect::<Vec<_>>()
    );

    // A changed local file: one change per Machine, of that file, without its content.
    std::fs::write(
        dir.path().join("conf/app.toml"),
        "listen = \"0.0.0.0:9090\" # local-file-marker-2\n",
    )
    .unwrap();
    let changed = ops::plan::run(&ops::plan::Options {
        out: None,
        ..plan_opts
    })
    .unwrap();
    let changes: Vec<_> = changed.document.actionable().collect();
    assert_eq!(changes.len(), 2, "{changes:#?}");
    for c in &changes {
        let paths: Vec<String> = c.fields.iter().map(|f| f.path.to_string()).collect();
        assert_eq!(paths, vec!["files[/etc/app/app.toml]"]);
    }
    let text = plan_text(
        &changed.document,
        Some(&changed.desired.resources),
        Style::plain(),
        Layout::Detail,
    );
    let json = plan_json(&changed.document, Some(&changed.desired.resources)).unwrap();
    for out in [&text, &json] {
        assert!(!out.contains("local-file-marker"), "{out}");
        assert!(!out.contains("9090"), "{out}");
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.add_filter(r#""created_at": "[^"]+""#, r#""created_at": "[timestamp]""#);
    settings.add_filter(r"sim:[^\s\x22]+", "sim:[path]");
    settings.add_filter(r#""spec_file": "[^"]+""#, r#""spec_file": "[path]""#);
    settings.add_filter(r"/tmp/[^\s\x22]+", "[tmp]");
    settings.add_filter(r"\b[0-9a-f]{14}\b", "[machine-id]");
    settings.add_filter(r#""id": "[0-9a-z]{16}""#, r#""id": "[app-id]""#);
    // It hashes the observed state, simulator-assigned ids included.
    settings.add_filter(
        r#""observed_fingerprint": "[^"]+""#,
        r#""observed_fingerprint": "[fingerprint]""#,
    );
    settings.bind(|| {
        insta::assert_snapshot!("plan_files_change_text", text);
        insta::assert_snapshot!("plan_files_change_json", json);
    });
}

#[test]
fn a_saved_plan_is_refused_when_its_local_file_changed() {
    let (dir, spec) = scratch();
    let saved = dir.path().join("fleet.plan.json");
    ops::plan::run(&ops::plan::Options {
        spec,
        target: libsim::target(dir.path()),
        out: Some(saved.clone()),
        ..Default::default()
    })
    .unwrap();
    std::fs::write(dir.path().join("conf/app.toml"), "changed after review\n").unwrap();
    let Err(e) = ops::apply::prepare(&ops::apply::Options {
        input: saved,
        target: libsim::target(dir.path()),
        quiet: true,
        ..Default::default()
    }) else {
        panic!("a saved plan with a changed local file must be refused");
    };
    let text = format!("{}", e.diagnostics);
    assert!(text.contains("not what the plan was made with"), "{text}");
    assert!(!text.contains("changed after review"), "{text}");
}

const GROUPS: &str = "\
version: 1
org: groups
defaults:
  image: registry.fly.io/groups:1.0.0
  region: iad
  env: { APP_ENV: production }
tenants:
  - name: alice
    process_groups:
      web:
        cmd: [bundle, exec, puma]
        count: 2
        size: shared-cpu-2x
        services: [{ internal_port: 8080, ports: [{ port: 443, handlers: [tls, http] }] }]
        checks: { alive: { type: tcp, port: 8080, interval: 15s } }
      worker:
        cmd: [bundle, exec, sidekiq]
        env: { QUEUE: default }
  - name: bob
";

#[test]
fn process_groups_round_trip_through_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("groups.yaml");
    std::fs::write(&spec, GROUPS).unwrap();
    let saved = dir.path().join("groups.plan.json");
    let plan_opts = ops::plan::Options {
        spec: spec.clone(),
        target: libsim::target(dir.path()),
        ..Default::default()
    };
    let planned = ops::plan::run(&ops::plan::Options {
        out: Some(saved.clone()),
        ..plan_opts.clone()
    })
    .unwrap();
    let machines: Vec<String> = planned
        .document
        .actionable()
        .filter(|c| c.kind == flotilla::resource::Kind::Machine)
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(
        machines,
        vec![
            "tenant.alice.machine.web[0]",
            "tenant.alice.machine.web[1]",
            "tenant.alice.machine.worker[0]",
            "tenant.bob.machine[0]"
        ]
    );
    // Through the saved plan: its re-validation accepts the groups' addresses and tags.
    let report = ops::apply::prepare(&ops::apply::Options {
        input: saved,
        target: libsim::target(dir.path()),
        journal: Some(dir.path().join("journal.jsonl")),
        quiet: true,
        ..Default::default()
    })
    .unwrap()
    .execute()
    .unwrap();
    assert!(report.ok(), "{}", report.summary.text());

    // The simulator's Machines carry flyctl's group tag and the group's command.
    let sim: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("sim.json")).unwrap())
            .unwrap();
    let mut groups: Vec<(String, String)> = Vec::new();
    collect_groups(&sim, &mut groups);
    groups.sort();
    assert_eq!(
        groups,
        vec![
            ("web".to_string(), "bundle exec puma".to_string()),
            ("web".to_string(), "bundle exec puma".to_string()),
            ("worker".to_string(), "bundle exec sidekiq".to_string()),
        ]
    );

    let again = ops::plan::run(&plan_opts).unwrap();
    assert!(
        !again.has_changes(),
        "{:#?}",
        again.document.actionable().collect::<Vec<_>>()
    );
}

/// (fly_process_group, init.cmd joined) of every Machine config in the simulator's state.
fn collect_groups(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(g) = m
                .get("metadata")
                .and_then(|md| md.get("fly_process_group"))
                .and_then(|g| g.as_str())
            {
                let cmd: Vec<&str> = m["init"]["cmd"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default();
                out.push((g.to_string(), cmd.join(" ")));
            }
            m.values().for_each(|x| collect_groups(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_groups(x, out)),
        _ => {}
    }
}

#[test]
fn each_group_is_priced_by_its_own_size_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let grouped = dir.path().join("groups.yaml");
    std::fs::write(&grouped, GROUPS).unwrap();
    // The same Machines without groups: alice's web Machines as one tenant, its worker
    // as another.
    let plain = dir.path().join("plain.yaml");
    std::fs::write(
        &plain,
        GROUPS
            .split("tenants:")
            .next()
            .map(|head| {
                format!("{head}tenants:\n  - {{ name: web, size: shared-cpu-2x, count: 2 }}\n  - {{ name: worker }}\n")
            })
            .unwrap(),
    )
    .unwrap();
    let price = |spec: &Path| {
        ops::cost::run(&ops::cost::Options {
            spec: spec.to_path_buf(),
            base: None,
            pricing: ops::pricing::PricingOptions {
                date: chrono::NaiveDate::from_ymd_opt(2026, 11, 1),
                ..Default::default()
            },
            budget: Default::default(),
            usage: None,
        })
        .unwrap()
        .report
    };
    let g = price(&grouped);
    let p = price(&plain);
    let at = |r: &flotilla::cost::CostReport, a: &str| r.by_address[&a.parse().unwrap()];
    assert_eq!(
        at(&g, "tenant.alice.machine.web[0]"),
        at(&p, "tenant.web.machine[0]")
    );
    assert_eq!(
        at(&g, "tenant.alice.machine.web[1]"),
        at(&p, "tenant.web.machine[1]")
    );
    assert_eq!(
        at(&g, "tenant.alice.machine.worker[0]"),
        at(&p, "tenant.worker.machine[0]")
    );
    assert!(at(&g, "tenant.alice.machine.web[0]") > at(&g, "tenant.alice.machine.worker[0]"));
    let alice = g.by_tenant["alice"];
    assert_eq!(alice, p.by_tenant["web"] + p.by_tenant["worker"]);
}

#[test]
fn validate_refuses_a_local_file_outside_the_spec_tree() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("spec");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(top.path().join("outside.txt"), "not for Machines\n").unwrap();
    let spec = dir.join("fleet.yaml");
    std::fs::write(&spec, SPEC.replace("conf/app.toml", "../outside.txt")).unwrap();
    std::fs::write(dir.join("tls.key"), "k\n").unwrap();
    let out = ops::validate::run(&ops::validate::Options {
        specs: vec![spec],
        ..Default::default()
    });
    let errors = out.files[0].result.as_ref().unwrap_err().to_string();
    assert!(
        errors.contains("defaults.files[1].local_file: local file `../outside.txt` leaves"),
        "{errors}"
    );
    assert!(errors.contains("fleet.yaml:15:52"), "{errors}");
    assert!(!errors.contains("not for Machines"), "{errors}");
}

#[test]
fn a_plan_creates_each_groups_machines() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("groups.yaml");
    std::fs::write(&spec, GROUPS).unwrap();
    let planned = ops::plan::run(&ops::plan::Options {
        spec,
        pricing: ops::pricing::PricingOptions {
            date: chrono::NaiveDate::from_ymd_opt(2026, 11, 1),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let text = plan_text(
        &planned.document,
        Some(&planned.desired.resources),
        Style::plain(),
        Layout::Detail,
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("plan_process_groups_create_text", text));
}
