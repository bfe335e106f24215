//! `flotilla import` against the simulator, seeded the way a provisioning script would
//! build situation 1 (one app per tenant, made by plain API calls, no flotilla
//! metadata): 14 tenant apps in three shapes and one odd app. The imported spec is
//! valid, and planning it against the same org creates, replaces and deletes nothing —
//! only adoption metadata is written.

// Tests may panic on a broken fixture.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reconcile_common;

use reconcile_common::{Org, text};
use serde_json::{Value, json};

const ORG: &str = "my-jarvis";
const IMAGE: &str = "registry.fly.io/my-jarvis:1.4.43";

/// Tenants and their shape: (cpus, memory MB, NODE_ENV).
fn tenants() -> Vec<(&'static str, u32, u32, &'static str)> {
    let mut t: Vec<(&str, u32, u32, &str)> = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    ]
    .iter()
    .map(|n| (*n, 1, 2048, "production"))
    .collect();
    t.push(("mallory", 2, 4096, "production"));
    t.push(("niaj", 2, 4096, "production"));
    t.push(("dev", 1, 1024, "development"));
    t.push(("staging", 1, 1024, "development"));
    t
}

fn ok(org: &Org, method: &str, path: &str, body: Value) -> Value {
    let (status, v) = org.api(method, path, Some(body));
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {v}"
    );
    v
}

/// What the provisioning script does for one tenant.
fn provision(org: &Org, tenant: &str, cpus: u32, memory_mb: u32, node_env: &str) {
    provision_with(org, tenant, (cpus, memory_mb, node_env), "workspace");
}

/// [`provision`] with the volume's name.
fn provision_with(
    org: &Org,
    tenant: &str,
    (cpus, memory_mb, node_env): (u32, u32, &str),
    volume: &str,
) {
    let app = format!("my-jarvis-{tenant}");
    ok(
        org,
        "POST",
        "/apps",
        json!({"app_name": app, "org_slug": ORG}),
    );
    let vol = ok(
        org,
        "POST",
        &format!("/apps/{app}/volumes"),
        json!({"name": volume, "region": "iad", "size_gb": 3, "snapshot_retention": 14}),
    );
    for s in ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "JWT_SECRET"] {
        let value = format!("script-set-{}-{tenant}", s.len());
        ok(
            org,
            "POST",
            &format!("/apps/{app}/secrets/{s}"),
            json!({ "value": value }),
        );
    }
    let config = json!({
        "image": IMAGE,
        "guest": {"cpu_kind": "shared", "cpus": cpus, "memory_mb": memory_mb},
        "env": {"USER_ID": tenant, "NODE_ENV": node_env, "PORT": "10000"},
        "services": [{
            "protocol": "tcp", "internal_port": 10000,
            "ports": [
                {"port": 80, "handlers": ["http"], "force_https": true},
                {"port": 443, "handlers": ["tls", "http"]}
            ],
            "concurrency": {"type": "connections", "soft_limit": 200, "hard_limit": 250}
        }],
        "checks": {"alive": {"type": "http", "port": 10000, "path": "/health", "interval": "15s", "timeout": "5s"}},
        "mounts": [{"volume": vol["id"], "path": "/home/node"}],
        "metadata": {"product": "jarvis"}
    });
    ok(
        org,
        "POST",
        &format!("/apps/{app}/machines"),
        json!({"name": format!("web-{tenant}"), "region": "iad", "config": config}),
    );
}

/// The odd one: an admin console with another image, its own command (`init.cmd`),
/// and a volume nothing mounts.
fn provision_odd(org: &Org) {
    let app = "jarvis-admin";
    ok(
        org,
        "POST",
        "/apps",
        json!({"app_name": app, "org_slug": ORG}),
    );
    ok(
        org,
        "POST",
        &format!("/apps/{app}/volumes"),
        json!({"name": "scratch", "region": "iad", "size_gb": 1}),
    );
    let config = json!({
        "image": "registry.fly.io/jarvis-admin:0.9.1",
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
        "env": {"ADMIN": "1"},
        "init": {"cmd": ["/bin/admin", "--serve"]}
    });
    ok(
        org,
        "POST",
        &format!("/apps/{app}/machines"),
        json!({"name": "console", "region": "iad", "config": config}),
    );
}

fn seeded() -> Org {
    let org = Org::with(100.0, |c| c.rate_limits = false);
    for (t, cpus, mem, env) in tenants() {
        provision(&org, t, cpus, mem, env);
    }
    provision_odd(&org);
    // An app of another product the pattern leaves out.
    ok(
        &org,
        "POST",
        "/apps",
        json!({"app_name": "billing", "org_slug": ORG}),
    );
    org
}

/// Plans `specs/imported.yaml` against the org: nothing is created, replaced or
/// deleted; Machines only get adoption metadata, secrets their fingerprints. Returns
/// the adopted Machines' addresses.
fn adoption_only(org: &Org, spec: &str) -> Vec<String> {
    let (plan, _) = org.plan_json("specs/imported.yaml", &[]);
    let changes = plan["changes"].as_array().expect("a JSON plan");
    assert!(!changes.is_empty());
    for c in changes {
        let action = c["action"].as_str().unwrap();
        assert!(
            action == "noop" || action == "update",
            "{} would be {action}: {c}\n{spec}",
            c["address"]
        );
        // Adoption writes flotilla's metadata; a secret flotilla never set is set
        // once, so its fingerprint is recorded (the value is not known beforehand).
        let allowed = if c["kind"] == "secret" {
            "fingerprint"
        } else {
            "metadata."
        };
        for f in c["fields"].as_array().into_iter().flatten() {
            let path = f["path"].as_str().unwrap();
            assert!(
                path.starts_with(allowed),
                "{}: {path} changes: {c}",
                c["address"]
            );
        }
    }
    let adopted: Vec<String> = changes
        .iter()
        .filter(|c| c["action"] == "update" && c["kind"] == "machine")
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    adopted
}

#[test]
fn an_imported_org_plans_to_adoption_only() {
    let org = seeded();
    let out = org.run("import", &["--org", ORG, "--app-pattern", "*jarvis*"]);
    assert!(out.status.success(), "{}", text(&out));
    let spec = String::from_utf8(out.stdout.clone()).unwrap();
    let summary = String::from_utf8(out.stderr.clone()).unwrap();
    insta::with_settings!({filters => vec![(r"vol_[0-9a-z]+", "vol_[ID]")]}, {
        insta::assert_snapshot!("import_situation1_spec", spec);
        insta::assert_snapshot!("import_situation1_summary", summary);
    });
    assert!(!spec.contains("script-set"), "no secret value in the spec");
    assert!(!spec.contains("billing"));
    org.write("specs/imported.yaml", &spec);

    let v = std::process::Command::new(assert_cmd::cargo::cargo_bin("flotilla"))
        .current_dir(org.dir.path())
        .args(["validate", "specs/imported.yaml"])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}\n{spec}", text(&v));
    assert!(text(&v).contains("15 apps, 15 machines"), "{}", text(&v));

    let adopted = adoption_only(&org, &spec);
    assert_eq!(adopted.len(), 15, "every Machine is adopted: {adopted:?}");
    assert!(
        adopted.contains(&"app.jarvis-admin.machine[0]".to_string()),
        "{adopted:?}"
    );
}

#[test]
fn volumes_named_after_their_tenants_are_adopted_through_naming_volume() {
    let org = Org::with(100.0, |c| c.rate_limits = false);
    for t in ["alice", "bob-co", "carol"] {
        let volume = format!("{}_workspace", t.replace('-', "_"));
        provision_with(&org, t, (1, 2048, "production"), &volume);
    }
    let out = org.run("import", &["--org", ORG]);
    assert!(out.status.success(), "{}", text(&out));
    let spec = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        spec.contains("volume: \"{{ tenant.name | underscore }}_{{ volume.name }}{% if index > 0 %}_{{ index }}{% endif %}\""),
        "{spec}"
    );
    assert!(spec.contains("name: \"workspace\""), "{spec}");
    org.write("specs/imported.yaml", &spec);
    let adopted = adoption_only(&org, &spec);
    assert_eq!(adopted.len(), 3, "every Machine is adopted: {adopted:?}");
}

/// A tenant app whose Machine sets every pass-through config field, processes and
/// files (one from a secret; `raw_value` too when `raw_file`).
fn provision_configured(org: &Org, tenant: &str, schedule: Option<&str>, raw_file: bool) {
    let app = format!("shop-{tenant}");
    ok(
        org,
        "POST",
        "/apps",
        json!({"app_name": app, "org_slug": ORG}),
    );
    ok(
        org,
        "POST",
        &format!("/apps/{app}/secrets/TLS_KEY"),
        json!({ "value": format!("script-set-key-{tenant}") }),
    );
    let mut files = vec![json!({"guest_path": "/etc/tls/key.pem", "secret_name": "TLS_KEY"})];
    if raw_file {
        // "listen = 8080\n", base64.
        files.push(json!({"guest_path": "/etc/app.toml", "raw_value": "bGlzdGVuID0gODA4MAo="}));
    }
    let mut config = json!({
        "image": "registry.fly.io/shop:2.0",
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
        "env": {"PORT": "8080"},
        "restart": {"policy": "on-failure", "max_retries": 3},
        "stop_config": {"signal": "SIGTERM", "timeout": "30s"},
        "init": {"swap_size_mb": 512, "kernel_args": ["quiet"]},
        "dns": {"nameservers": ["1.1.1.1"], "searches": ["shop.internal"]},
        "metrics": {"port": 9091, "path": "/metrics"},
        "statics": [{"guest_path": "/app/public", "url_prefix": "/static"}],
        "processes": [{"name": "app", "cmd": ["serve", "--port=8080"], "env": {"MODE": "app"}}],
        "files": files,
    });
    if let Some(s) = schedule {
        config["schedule"] = json!(s);
        config["auto_destroy"] = json!(false);
    } else {
        config["auto_destroy"] = json!(true);
    }
    ok(
        org,
        "POST",
        &format!("/apps/{app}/machines"),
        json!({"name": format!("{tenant}-0"), "region": "iad", "config": config}),
    );
}

/// A tenant app flyctl deployed from a fly.toml with `[processes]`: two web Machines
/// with a service and one worker, tagged `fly_process_group`.
fn provision_groups(org: &Org, tenant: &str) {
    let app = format!("shop-{tenant}");
    ok(
        org,
        "POST",
        "/apps",
        json!({"app_name": app, "org_slug": ORG}),
    );
    let groups = [
        ("web", 2, vec!["bundle", "exec", "puma"], true),
        ("worker", 1, vec!["bundle", "exec", "sidekiq"], false),
    ];
    for (group, count, cmd, served) in groups {
        for i in 0..count {
            let mut config = json!({
                "image": "registry.fly.io/shop:2.0",
                "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
                "env": {"PORT": "8080"},
                "init": {"cmd": cmd},
                "metadata": {"fly_process_group": group},
            });
            if served {
                config["services"] = json!([{
                    "protocol": "tcp", "internal_port": 8080,
                    "ports": [{"port": 443, "handlers": ["tls", "http"]}]
                }]);
            }
            ok(
                org,
                "POST",
                &format!("/apps/{app}/machines"),
                json!({"name": format!("{tenant}-{i}-{group}"), "region": "iad", "config": config}),
            );
        }
    }
}

#[test]
fn machine_config_settings_files_and_process_groups_are_imported() {
    let org = Org::with(100.0, |c| c.rate_limits = false);
    provision_configured(&org, "acme", None, false);
    provision_configured(&org, "globex", None, false);
    provision_configured(&org, "initech", Some("daily"), true);
    provision_groups(&org, "umbrella");
    let out = org.run("import", &["--org", ORG]);
    assert!(out.status.success(), "{}", text(&out));
    let spec = String::from_utf8(out.stdout.clone()).unwrap();
    insta::assert_snapshot!("import_machine_config_spec", spec);
    assert!(!spec.contains("script-set"), "no secret value in the spec");
    assert!(!spec.contains("bGlzdGVu"), "no file content in the spec");
    assert!(!spec.contains("has no spec setting"), "{spec}");
    org.write("specs/imported.yaml", &spec);
    let v = std::process::Command::new(assert_cmd::cargo::cargo_bin("flotilla"))
        .current_dir(org.dir.path())
        .args(["validate", "specs/imported.yaml"])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}\n{spec}", text(&v));
    let mut adopted = adoption_only(&org, &spec);
    adopted.sort();
    assert_eq!(
        adopted,
        [
            "tenant.acme.machine[0]",
            "tenant.globex.machine[0]",
            "tenant.initech.machine[0]",
            "tenant.umbrella.machine.web[0]",
            "tenant.umbrella.machine.web[1]",
            "tenant.umbrella.machine.worker[0]",
        ],
        "{spec}"
    );
    // Applied (adoption, the secret set once from its variable), the raw_value file is
    // kept: the imported spec leaves initech's files unmanaged. Then nothing changes.
    let files_before = org.machines("shop-initech")[0]["config"]["files"].clone();
    let mut apply = org.cmd("apply", &["specs/imported.yaml", "--yes"]);
    let out = apply.env("TLS_KEY", "k").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let after = org.machines("shop-initech");
    assert_eq!(after[0]["config"]["files"], files_before, "{after:?}");
    assert_eq!(files_before.as_array().map(Vec::len), Some(2));
    let (plan, code) = org.plan_json("specs/imported.yaml", &[]);
    assert_eq!(code, 0, "no change after adoption: {plan}");
    // The imported settings are compared, not ignored: changing one is an update.
    let edited = spec.replace("timeout: \"30s\"", "timeout: \"31s\"");
    assert_ne!(edited, spec);
    org.write("specs/edited.yaml", &edited);
    let (plan, _) = org.plan_json("specs/edited.yaml", &[]);
    let paths: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["fields"].as_array().into_iter().flatten())
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        paths
            .iter()
            .filter(|p| **p == "stop_config.timeout")
            .count(),
        3,
        "{paths:?}"
    );
}
