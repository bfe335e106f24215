//! Live reconcile against the simulator over loopback, driving the real binary:
//! convergence, idempotence, adoption, data safety, staleness, secrets and rollouts.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reconcile_common;

use reconcile_common::{ANTHROPIC, JWT, OPENAI, Org, changed_addresses, text};
use serde_json::{Value, json};

const SCALE: f64 = 40.0;

#[test]
fn every_spec_converges_and_a_second_apply_sends_no_writes() {
    let org = Org::new(SCALE);
    for spec in [
        "specs/jarvis.yaml",
        "specs/workspaces.yaml",
        "specs/hybrid.yaml",
    ] {
        org.apply_ok(spec, &[]);
        let (plan, code) = org.plan_json(spec, &[]);
        assert_eq!(
            code, 0,
            "{spec}: plan after apply must be empty: {}",
            plan["summary"]
        );
        assert_eq!(plan["summary"]["create"], 0);
        let before = org.counters().mutating;
        let out = org.apply_ok(spec, &[]);
        assert!(text(&out).contains("No changes."), "{}", text(&out));
        // The fleet lock's lease, taken and handed back, are its only writes.
        assert_eq!(
            org.counters().mutating,
            before + 2,
            "{spec}: a second apply must send no mutating request but the lock's"
        );
    }
    // Jarvis: 14 apps, one Machine and one volume each; every Machine started, carrying
    // flotilla's metadata and the fingerprints of its secrets.
    let apps: Vec<String> = org
        .apps("my-jarvis")
        .into_iter()
        .filter(|a| {
            a.starts_with("my-jarvis-")
                && a != "my-jarvis-desktop"
                && !a.contains("sessions")
                && !a.contains("gateway")
                && !a.contains("backend")
        })
        .collect();
    assert_eq!(apps.len(), 14, "{apps:?}");
    for app in &apps {
        let ms = org.machines(app);
        assert_eq!(ms.len(), 1, "{app}");
        assert_eq!(ms[0]["state"], "started");
        let md = &ms[0]["config"]["metadata"];
        assert_eq!(md["flotilla_managed"], "true");
        assert!(
            md["flotilla_secrets"]
                .as_str()
                .unwrap()
                .contains("ANTHROPIC_API_KEY:")
        );
        assert_eq!(org.volumes(app).len(), 1, "{app}");
        assert_eq!(
            ms[0]["config"]["mounts"][0]["volume"],
            org.volumes(app)[0]["id"]
        );
    }
    // Workspaces: one shared app, one web Machine and 100 user Machines.
    assert_eq!(org.machines("my-jarvis-desktop").len(), 101);
    assert_eq!(org.volumes("my-jarvis-desktop").len(), 100);
}

#[test]
fn adoption_of_script_made_apps() {
    let org = Org::new(SCALE);
    let tenants = [
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
        "mallory", "niaj", "dev", "staging",
    ];
    // What the users' scripts made: app, volume, Machine (no flotilla metadata), secrets.
    for t in tenants {
        let app = format!("my-jarvis-{t}");
        assert_eq!(
            org.api(
                "POST",
                "/apps",
                Some(json!({"app_name": app, "org_slug": "my-jarvis"}))
            )
            .0,
            201
        );
        let (s, vol) = org.api(
            "POST",
            &format!("/apps/{app}/volumes"),
            Some(json!({"name": "workspace", "region": "iad", "size_gb": 3})),
        );
        assert_eq!(s, 200, "{vol}");
        let env = if t == "dev" || t == "staging" {
            "development"
        } else {
            "production"
        };
        let config = json!({
            "image": "registry.fly.io/my-jarvis:1.4.43",
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 2048},
            "env": {"USER_ID": t, "NODE_ENV": env, "PORT": "10000"},
            "services": [{"protocol": "tcp", "internal_port": 10000, "autostop": "off", "autostart": true, "min_machines_running": 0,
                "ports": [{"port": 80, "handlers": ["http"], "force_https": true}, {"port": 443, "handlers": ["tls", "http"]}],
                "concurrency": {"type": "connections", "soft_limit": 200, "hard_limit": 250}}],
            "checks": {"alive": {"type": "http", "port": 10000, "path": "/health", "interval": "15s", "timeout": "5s"}},
            "mounts": [{"volume": vol["id"], "path": "/home/node"}],
            "metadata": {"product": "jarvis"},
        });
        let (s, m) = org.api(
            "POST",
            &format!("/apps/{app}/machines"),
            Some(json!({"name": format!("{t}-0"), "region": "iad", "config": config})),
        );
        assert_eq!(s, 200, "{m}");
        let (s, _) = org.api("POST", &format!("/apps/{app}/secrets"), Some(json!({"values": {"ANTHROPIC_API_KEY": ANTHROPIC, "OPENAI_API_KEY": OPENAI, "JWT_SECRET": JWT}})));
        assert_eq!(s, 200);
        // The scripts also gave each app its addresses and domain.
        for kind in ["shared_v4", "v6"] {
            let (s, ip) = org.api(
                "POST",
                &format!("/apps/{app}/ip_assignments"),
                Some(json!({"type": kind, "org_slug": "my-jarvis"})),
            );
            assert!(s < 300, "{s} {ip}");
        }
        let (s, c) = org.api(
            "POST",
            &format!("/apps/{app}/certificates/acme"),
            Some(json!({"hostname": format!("{t}.myjarvis.io")})),
        );
        assert!(s < 300, "{s} {c}");
    }
    let instance_before: Vec<Value> = tenants
        .iter()
        .map(|t| org.machines(&format!("my-jarvis-{t}"))[0]["instance_id"].clone())
        .collect();

    let (plan, code) = org.plan_json("specs/jarvis.yaml", &[]);
    assert_eq!(code, 2);
    assert_eq!(
        plan["summary"]["create"], 0,
        "nothing that exists is created again: {}",
        plan["summary"]
    );
    for c in plan["changes"].as_array().unwrap() {
        if c["action"] == "noop" {
            continue;
        }
        match c["kind"].as_str().unwrap() {
            "machine" => {
                assert_eq!(c["adopt"], true, "{c}");
                assert!(
                    c["fields"].as_array().unwrap().iter().all(|f| f["path"]
                        .as_str()
                        .unwrap()
                        .starts_with("metadata.flotilla_")),
                    "{c}"
                );
            }
            "secret" => assert_eq!(
                c["action"], "update",
                "set once: flotilla has no record of them"
            ),
            "backup_policy" => {} // the scripts kept Fly's 5-day retention; the spec says 14 (or 5)
            other => panic!("unexpected change of a {other}: {c}"),
        }
    }
    org.apply_ok("specs/jarvis.yaml", &[]);
    // Same Machines, not restarted (the values Fly held were the spec's), now managed.
    for (t, before) in tenants.iter().zip(instance_before) {
        let ms = org.machines(&format!("my-jarvis-{t}"));
        assert_eq!(ms.len(), 1);
        assert_eq!(
            ms[0]["instance_id"], before,
            "{t}: adoption must not restart the Machine"
        );
        assert_eq!(ms[0]["config"]["metadata"]["flotilla_tenant"], *t);
        assert_eq!(org.volumes(&format!("my-jarvis-{t}")).len(), 1);
    }
    let (_, code) = org.plan_json("specs/jarvis.yaml", &[]);
    assert_eq!(code, 0);
}

#[test]
fn dropping_a_volume_needs_flags_and_takes_a_snapshot_first() {
    let org = Org::new(SCALE);
    org.apply_ok("specs/jarvis.yaml", &[]);
    // Remove the `staging` tenant (not under prevent_destroy).
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml"))
        .unwrap()
        .replace("  - { name: staging, tier: dev }\n", "");
    org.write("specs/smaller.yaml", &spec);
    let vol_id = org.volumes("my-jarvis-staging")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let out = org.apply("specs/smaller.yaml", &[]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("needs --allow-destroy")
            && t.contains("needs --allow-data-loss")
            && t.contains("Nothing was changed"),
        "{t}"
    );
    let out = org.apply("specs/smaller.yaml", &["--allow-destroy"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "data loss still needs its own flag"
    );
    assert_eq!(
        org.volumes("my-jarvis-staging").len(),
        1,
        "nothing was touched"
    );

    org.apply_ok(
        "specs/smaller.yaml",
        &["--allow-destroy", "--allow-data-loss"],
    );
    assert!(
        !org.apps("my-jarvis")
            .contains(&"my-jarvis-staging".to_string())
    );
    // The snapshot was taken (and finished) before the volume was deleted.
    let reqs = org.requests();
    let snap = reqs.iter().position(|r| {
        r["method"] == "POST"
            && r["path"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/volumes/{vol_id}/snapshots"))
            && r["status"] == 200
    });
    let del = reqs.iter().position(|r| {
        r["method"] == "DELETE"
            && r["path"]
                .as_str()
                .unwrap()
                .contains(&format!("/volumes/{vol_id}"))
            && r["status"] == 200
    });
    let dbg: Vec<String> = reqs
        .iter()
        .filter(|r| r["path"].as_str().unwrap().contains("volumes"))
        .map(|r| format!("{} {} {}", r["method"], r["path"], r["status"]))
        .collect();
    let (snap, del) = (
        snap.unwrap_or_else(|| panic!("a snapshot request: {dbg:#?}")),
        del.expect("a delete request"),
    );
    assert!(snap < del, "snapshot at {snap}, delete at {del}");
    let polled = reqs[snap..del].iter().any(|r| {
        r["method"] == "GET"
            && r["path"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/volumes/{vol_id}/snapshots"))
    });
    assert!(
        polled,
        "flotilla waits for the snapshot to finish before deleting"
    );

    // Tenants under prevent_destroy are refused even with both flags.
    let spec = std::fs::read_to_string(org.path("specs/smaller.yaml"))
        .unwrap()
        .replace("  - { name: alice, tier: customer }\n", "");
    org.write("specs/no-alice.yaml", &spec);
    let out = org.apply(
        "specs/no-alice.yaml",
        &["--allow-destroy", "--allow-data-loss"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("lifecycle.prevent_destroy"),
        "{}",
        text(&out)
    );
    assert_eq!(org.machines("my-jarvis-alice").len(), 1);
}

#[test]
fn a_saved_plan_is_refused_after_an_out_of_band_change() {
    let org = Org::new(SCALE);
    org.apply_ok("specs/jarvis.yaml", &[]);
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml"))
        .unwrap()
        .replace("my-jarvis:1.4.43", "my-jarvis:1.4.44");
    org.write("specs/next.yaml", &spec);
    let out = org.run(
        "plan",
        &["specs/next.yaml", "--out", "plans/next.plan.json"],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Someone changes a Machine by hand.
    let m = &org.machines("my-jarvis-bob")[0];
    let mut config = m["config"].clone();
    config["env"]["DEBUG"] = json!("1");
    let (s, _) = org.api(
        "POST",
        &format!("/apps/my-jarvis-bob/machines/{}", m["id"].as_str().unwrap()),
        Some(json!({"config": config})),
    );
    assert_eq!(s, 200);
    let out = org.run("apply", &["plans/next.plan.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("plan is stale"), "{}", text(&out));
    // A fresh plan applies.
    let out = org.run(
        "plan",
        &["specs/next.yaml", "--out", "plans/next.plan.json"],
    );
    assert!(out.status.success());
    let out = org.run("apply", &["plans/next.plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        org.machines("my-jarvis-bob")[0]["config"]["image"]
            .as_str()
            .unwrap()
            .ends_with("1.4.44")
    );
}

#[test]
fn secrets_never_leak_and_a_change_restarts_only_that_app() {
    let mut org = Org::new(SCALE);
    let canary = "canary-secret-7f3a9c1e5b2d4f60";
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml"))
        .unwrap()
        .replace(
            "  - { name: bob, tier: customer }",
            "  - { name: bob, tier: customer, secrets: { BOB_TOKEN: { env: BOB_TOKEN } } }",
        );
    org.write("specs/bob.yaml", &spec);
    org.env.push(("BOB_TOKEN".into(), canary.into()));
    let mut outputs = String::new();
    // --debug logs every HTTP request to stderr: it must not carry values either.
    outputs += &text(&org.apply_ok(
        "specs/bob.yaml",
        &["--journal", "journal/one.jsonl", "--debug"],
    ));
    outputs += &text(&org.run(
        "plan",
        &[
            "specs/bob.yaml",
            "--out",
            "plans/bob.plan.json",
            "--format",
            "json",
        ],
    ));
    outputs += &text(&org.run("plan", &["specs/bob.yaml", "--show-state", "state.json"]));

    let before: Vec<(String, Value)> = org
        .apps("my-jarvis")
        .into_iter()
        .map(|a| {
            let m = org.machines(&a);
            (a, m[0]["instance_id"].clone())
        })
        .collect();
    // Change the value: only bob's app gets the secret, only bob's Machine restarts.
    let new_value = "canary-secret-second-9b8a7c6d5e";
    org.env.retain(|(k, _)| k != "BOB_TOKEN");
    org.env.push(("BOB_TOKEN".into(), new_value.into()));
    let (plan, _) = org.plan_json("specs/bob.yaml", &[]);
    let changed = changed_addresses(&plan);
    assert_eq!(
        changed,
        vec!["tenant.bob.secret.BOB_TOKEN", "tenant.bob.machine[0]"]
    );
    outputs += &text(&org.apply_ok(
        "specs/bob.yaml",
        &["--journal", "journal/two.jsonl", "--debug"],
    ));
    assert!(
        outputs.contains("[http] POST /apps/my-jarvis-bob/secrets"),
        "the debug log shows the secret requests (without values)"
    );
    for (app, inst) in before {
        let m = &org.machines(&app)[0];
        if app == "my-jarvis-bob" {
            assert_ne!(
                m["instance_id"], inst,
                "bob's Machine restarts to load the new value"
            );
        } else {
            assert_eq!(m["instance_id"], inst, "{app} must not restart");
        }
    }
    let sm = org.sim.control().machines("my-jarvis-bob").unwrap();
    assert!(
        !sm.machines[0].secrets_stale,
        "bob's Machine runs with the new secrets"
    );

    let files = org.all_files_text();
    let log = std::fs::read_to_string(&org.log).unwrap();
    assert!(log.lines().count() > 100, "the request log was written");
    for secret in [
        canary,
        new_value,
        ANTHROPIC,
        OPENAI,
        JWT,
        reconcile_common::TOKEN,
    ] {
        assert!(
            !outputs.contains(secret),
            "a secret value or the token appeared in the output"
        );
        assert!(
            !files.contains(secret),
            "a secret value or the token appeared in a journal, plan or state file"
        );
        assert!(
            !log.contains(secret),
            "a secret value or the token appeared in the request log"
        );
    }
    assert!(
        files.contains("\"action\":\"set secrets\""),
        "the journal records the secret operations (without values)"
    );
}

#[test]
fn a_bad_image_in_the_canary_wave_stops_the_rollout() {
    let org = Org::new(SCALE);
    let spec = r#"
version: 1
org: fleet
naming: { app: "fleet-{{ tenant.name }}" }
defaults:
  image: registry.fly.io/fleet:1.0
  region: iad
  memory: 512mb
  checks: { alive: { type: tcp, port: 8080 } }
tenants:
  - generate: { count: 6, name: "t{{ i }}" }
"#;
    org.write("specs/fleet.yaml", spec);
    org.apply_ok("specs/fleet.yaml", &[]);
    org.write(
        "specs/fleet.yaml",
        &spec.replace("fleet:1.0", "fleet:2.0-broken"),
    );
    org.set_faults("bad_image=broken");
    let out = org.apply(
        "specs/fleet.yaml",
        &["--canary", "1", "--max-parallel-updates", "2"],
    );
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("Rollout stopped"), "{t}");
    assert!(
        t.contains("tenant.t1.machine[0]: registry.fly.io/fleet:2.0-broken FAILED (wave 1)"),
        "{t}"
    );
    assert!(
        t.contains("tenant.t2.machine[0]: registry.fly.io/fleet:1.0 (not updated"),
        "{t}"
    );
    // Only the canary got the bad image; the others still run the old one.
    for i in 2..=6 {
        let m = &org.machines(&format!("fleet-t{i}"))[0];
        assert_eq!(m["config"]["image"], "registry.fly.io/fleet:1.0");
        assert_eq!(m["state"], "started");
    }
    assert_eq!(org.machines("fleet-t1")[0]["state"], "failed");
    // The stopped rollout is remembered: continuing needs --resume.
    org.set_faults("none");
    org.write("specs/fleet.yaml", &spec.replace("fleet:1.0", "fleet:2.1"));
    let out = org.apply(
        "specs/fleet.yaml",
        &["--canary", "1", "--max-parallel-updates", "2"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--resume"), "{}", text(&out));
    // A good image rolls out in waves: canary, then two tenants at a time.
    let out = org.apply_ok(
        "specs/fleet.yaml",
        &["--resume", "--canary", "1", "--max-parallel-updates", "2"],
    );
    assert!(text(&out).contains("Apply complete"));
    for i in 1..=6 {
        assert_eq!(
            org.machines(&format!("fleet-t{i}"))[0]["config"]["image"],
            "registry.fly.io/fleet:2.1"
        );
    }
    let gates = org
        .all_files_text()
        .matches("\"action\":\"rollout gate\",\"address\":\"rollout.wave")
        .count();
    assert!(
        gates >= 3 * 2,
        "canary gate and two wave gates, started and finished: {gates}"
    );
}

#[test]
fn capacity_errors_fall_back_to_the_next_region_with_the_volume() {
    let org = Org::new(SCALE);
    let spec = r#"
version: 1
org: cap
naming: { app: "cap-{{ tenant.name }}" }
defaults:
  image: registry.fly.io/cap:1
  region: sjc
  fallback_regions: [iad, dfw]
  memory: 512mb
  volume: { name: data, size_gb: 1, mount: /data }
tenants: [{ name: a }, { name: b }]
"#;
    org.write("specs/cap.yaml", spec);
    org.set_faults("capacity=sjc");
    org.apply_ok("specs/cap.yaml", &[]);
    for t in ["a", "b"] {
        let m = &org.machines(&format!("cap-{t}"))[0];
        let v = &org.volumes(&format!("cap-{t}"))[0];
        assert_eq!(m["region"], "iad");
        assert_eq!(v["region"], "iad", "the volume moves with the Machine");
        assert_eq!(m["config"]["mounts"][0]["volume"], v["id"]);
    }
    // Running in a fallback region satisfies the spec: no perpetual replace.
    org.set_faults("none");
    let (plan, code) = org.plan_json("specs/cap.yaml", &[]);
    assert_eq!(code, 0, "{}", plan["summary"]);
}

#[test]
fn updates_extend_volumes_and_change_snapshot_policies_in_place() {
    let org = Org::new(SCALE);
    org.apply_ok("specs/jarvis.yaml", &[]);
    let vol = org.volumes("my-jarvis-dev")[0].clone();
    let inst = org.machines("my-jarvis-dev")[0]["instance_id"].clone();
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml"))
        .unwrap()
        .replace("  dev:\n    env: { NODE_ENV: development }\n    volume: { snapshot_retention: 5 }", "  dev:\n    env: { NODE_ENV: development }\n    volume: { snapshot_retention: 30, size_gb: 10 }");
    org.write("specs/bigger.yaml", &spec);
    let (plan, _) = org.plan_json("specs/bigger.yaml", &[]);
    let acts: Vec<String> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "noop")
        .map(|c| {
            format!(
                "{} {}",
                c["address"].as_str().unwrap(),
                c["action"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        acts.contains(&"tenant.dev.volume.workspace[0] update".to_string()),
        "{acts:?}"
    );
    assert!(
        acts.contains(&"tenant.dev.backup.workspace[0] update".to_string()),
        "{acts:?}"
    );
    org.apply_ok("specs/bigger.yaml", &[]);
    let v = &org.volumes("my-jarvis-dev")[0];
    assert_eq!(v["id"], vol["id"], "extended in place, same volume");
    assert_eq!(v["size_gb"], 10);
    assert_eq!(v["snapshot_retention"], 30);
    assert_eq!(
        org.machines("my-jarvis-dev")[0]["instance_id"],
        inst,
        "no Machine change needed"
    );
    let (_, code) = org.plan_json("specs/bigger.yaml", &[]);
    assert_eq!(code, 0);
}

#[test]
fn crashes_and_faults_converge_without_duplicates_or_orphans() {
    use rand::{Rng, SeedableRng};
    let faults = "429=0.2,500=0.03,503=0.02,500@after=0.03,lost_response=0.05,timeout=0.02,hang=1s";
    let org = Org::with(SCALE, |cfg| cfg.faults = faults.parse().unwrap());
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // One app per tenant, then a hundred tenants in one shared app.
    for spec in ["specs/jarvis.yaml", "specs/workspaces.yaml"] {
        org.set_faults(faults);
        // Kill apply at random points, several times.
        for _ in 0..6 {
            let mut child = org
                .cmd("apply", &[spec, "--yes", "--quiet"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(rng.random_range(80..1500)));
            let _ = child.kill();
            let _ = child.wait();
        }
        // Then apply again (faults still on) until a run completes.
        let done = (0..20).any(|_| org.apply(spec, &["--quiet"]).status.success());
        assert!(done, "{spec}: repeated applies must converge");
        org.set_faults("none");
        let (plan, code) = org.plan_json(spec, &[]);
        assert_eq!(code, 0, "{spec} converged: {}", plan["summary"]);
    }
    let c = org.counters();
    for kind in ["lost_response", "429", "500@after", "timeout"] {
        assert!(
            c.faults_by_kind.get(kind).copied().unwrap_or(0) > 0,
            "{kind} faults were injected: {:?}",
            c.faults_by_kind
        );
    }
    // Exactly one Machine and one volume per declared slot; nothing orphaned.
    let apps: Vec<String> = org
        .apps("my-jarvis")
        .into_iter()
        .filter(|a| a != "my-jarvis-desktop")
        .collect();
    assert_eq!(apps.len(), 14, "{apps:?}");
    for app in apps {
        let ms: Vec<Value> = org
            .machines(&app)
            .into_iter()
            .filter(|m| m["state"] != "destroyed")
            .collect();
        let vs = org.volumes(&app);
        assert_eq!(ms.len(), 1, "{app}: {ms:#?}");
        assert_eq!(vs.len(), 1, "{app}: {vs:#?}");
        assert_eq!(
            ms[0]["config"]["mounts"][0]["volume"], vs[0]["id"],
            "{app}: the volume is the Machine's"
        );
        assert_eq!(ms[0]["state"], "started");
    }
    let ms: Vec<Value> = org
        .machines("my-jarvis-desktop")
        .into_iter()
        .filter(|m| m["state"] != "destroyed")
        .collect();
    let vs = org.volumes("my-jarvis-desktop");
    assert_eq!(
        (ms.len(), vs.len()),
        (101, 100),
        "one web Machine, one Machine and volume per user"
    );
    let mounted: std::collections::HashSet<&str> = ms
        .iter()
        .filter_map(|m| m["config"]["mounts"][0]["volume"].as_str())
        .collect();
    assert!(
        vs.iter()
            .all(|v| mounted.contains(v["id"].as_str().unwrap())),
        "no orphaned volume"
    );
}

#[test]
fn a_rejected_token_or_a_plain_http_api_says_what_to_check_without_the_token() {
    let org = Org::new(SCALE);
    let wrong = "wrong-token-5d1e8a7c93b2";
    for args in [
        &["plan", "specs/jarvis.yaml"][..],
        &["apply", "specs/jarvis.yaml", "--yes"][..],
    ] {
        let out = org
            .cmd(args[0], &args[1..])
            .env("FLY_API_TOKEN", wrong)
            .output()
            .unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {t}");
        assert!(
            t.contains("cannot observe org my-jarvis: GET /apps?org_slug=my-jarvis → 401"),
            "{args:?}: {t}"
        );
        assert!(
            t.contains("hint: check FLY_API_TOKEN") && t.contains("`org:` in the spec"),
            "{args:?}: {t}"
        );
        assert!(!t.contains(wrong), "{args:?}: the token was shown: {t}");
    }
    assert_eq!(org.counters().mutating, 0);
    // Plain http to another machine is refused before any request carries the token.
    let run = |api: Option<&str>, host: Option<&str>| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("flotilla"));
        c.current_dir(org.path("."))
            .args(["plan", "specs/jarvis.yaml"])
            .env("FLY_API_TOKEN", wrong)
            .env("NO_COLOR", "1")
            .env_remove("FLY_API_HOSTNAME");
        if let Some(a) = api {
            c.args(["--api", a]);
        }
        if let Some(h) = host {
            c.env("FLY_API_HOSTNAME", h);
        }
        let out = c.output().unwrap();
        (out.status.code(), text(&out))
    };
    for (code, t) in [
        run(Some("http://fly-api.invalid:4280"), None),
        run(None, Some("http://fly-api.invalid:4280")),
    ] {
        assert_eq!(code, Some(1), "{t}");
        assert!(
            t.contains("refusing to send FLY_API_TOKEN over plain http")
                && t.contains("hint: use https://"),
            "{t}"
        );
        assert!(!t.contains(wrong), "{t}");
    }
}

#[test]
fn the_embedded_simulator_works_from_a_fresh_checkout() {
    // What the README tells a newcomer: no account, no token, no secrets.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("specs")).unwrap();
    std::fs::copy(
        reconcile_common::root().join("specs/jarvis.yaml"),
        dir.path().join("specs/jarvis.yaml"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("flotilla"))
            .current_dir(dir.path())
            .args(args)
            .args(["--time-scale", "40"])
            .env_remove("FLY_API_TOKEN")
            .env_remove("FLY_API_HOSTNAME")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_API_KEY")
            .output()
            .unwrap();
        (out.status.code(), text(&out))
    };
    let (code, out) = run(&["apply", "specs/jarvis.yaml", "--sim", "--yes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Apply complete: 140 created"), "{out}");
    assert!(
        out.contains("replaced by placeholders in the simulator"),
        "{out}"
    );
    assert!(dir.path().join(".flotilla/sim.json").exists());
    let (code, out) = run(&["plan", "specs/jarvis.yaml", "--sim", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("No changes."), "{out}");
    // Without a target, apply refuses rather than guessing.
    let (code, out) = run(&["apply", "specs/jarvis.yaml", "--yes"]);
    assert_eq!(code, Some(1));
    assert!(out.contains("use --sim"), "{out}");
}

#[test]
fn ctrl_c_stops_new_work_and_says_what_was_done() {
    // A slow clock (time scale 4) so that the apply is still running when interrupted.
    let org = Org::new(4.0);
    let child = org
        .cmd(
            "apply",
            &[
                "specs/jarvis.yaml",
                "--yes",
                "--journal",
                "journal/interrupted.jsonl",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first app exists, then interrupt.
    for _ in 0..200 {
        if !org.apps("my-jarvis").is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("Interrupted: no new operations start"), "{t}");
    assert!(
        t.contains("Apply interrupted:") && t.contains("not done"),
        "{t}"
    );
    let created = org.apps("my-jarvis").len();
    assert!(
        created < 14,
        "the interrupted apply stopped early ({created} apps)"
    );
    let journal = std::fs::read_to_string(org.path("journal/interrupted.jsonl")).unwrap();
    assert!(
        journal.contains("\"outcome\":\"skipped\""),
        "operations not started are journaled as skipped: {journal}"
    );
    // Running it again finishes the job.
    org.apply_ok("specs/jarvis.yaml", &[]);
    assert_eq!(org.apps("my-jarvis").len(), 14);
}
