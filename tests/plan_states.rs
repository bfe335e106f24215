//! Plans against observed-state snapshots: create, update, replace, delete, adopt, no-op,
//! and the plan document contract. Drives the real binary.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{app_mut, applied_snapshot, bin, check_fixture, load, root};
use flotilla::resource::META_MANAGED;
use flotilla::state::Snapshot;
use flotilla::wire::api as fly;
use serde_json::Value;

fn applied() -> Snapshot {
    applied_snapshot(&load("specs/jarvis.yaml"))
}

/// The drift scenario, documented in tests/states/README.md.
fn drift() -> Snapshot {
    let mut s = applied();
    // bob: new image, less memory, other env → update in place with restart.
    let bob = app_mut(&mut s, "my-jarvis-bob");
    let m = &mut bob.machines[0];
    m.config.image = "registry.fly.io/my-jarvis:1.4.42".into();
    if let Some(g) = m.config.guest.as_mut() {
        g.memory_mb = 1024;
    }
    m.config.env.insert("NODE_ENV".into(), "staging".into());
    // carol: Machine in a region outside region + fallbacks → replace.
    app_mut(&mut s, "my-jarvis-carol").machines[0].region = "sjc".into();
    // dave: volume smaller than declared → extend.
    app_mut(&mut s, "my-jarvis-dave").volumes[0].size_gb = 2;
    // erin: snapshot retention differs → backup policy update.
    app_mut(&mut s, "my-jarvis-erin").volumes[0].snapshot_retention = Some(5);
    // frank: made by a script, no flotilla metadata → adopted (metadata only, no restart).
    let frank = app_mut(&mut s, "my-jarvis-frank");
    frank.machines[0]
        .config
        .metadata
        .retain(|k, _| !k.starts_with("flotilla_"));
    // alice: an extra Machine someone started by hand → unmanaged, left alone.
    let alice = app_mut(&mut s, "my-jarvis-alice");
    let mut stray = alice.machines[0].clone();
    stray.id = "e2865013c1d908".into();
    stray.name = "debug-shell".into();
    stray.config.metadata.clear();
    stray.config.mounts.clear();
    alice.machines.push(stray);
    // oscar: a tenant removed from the spec → its app, Machine, volume, secret, addresses
    // and certificate deleted.
    let mut oscar = app_mut(&mut s, "my-jarvis-grace").clone();
    oscar.app.name = "my-jarvis-oscar".into();
    oscar.app.id = "app_0scar".into();
    for m in &mut oscar.machines {
        m.id = "3d8d9e1b2c4a77".into();
        m.name = "oscar-0".into();
        m.config
            .metadata
            .insert("flotilla_tenant".into(), "oscar".into());
        for mt in &mut m.config.mounts {
            mt.volume = "vol_0scar".into();
        }
    }
    for v in &mut oscar.volumes {
        v.id = "vol_0scar".into();
        v.attached_machine_id = Some("3d8d9e1b2c4a77".into());
    }
    oscar.secrets.retain(|x| x.name == "JWT_SECRET");
    // Its own domain and IPv6 address (the shared IPv4 is the organization's).
    for c in &mut oscar.certificates {
        c.hostname = "oscar.myjarvis.io".into();
    }
    for ip in oscar.ips.iter_mut().filter(|ip| ip.ip.contains(':')) {
        ip.ip = "2001:db8::ff".into();
    }
    oscar.machines[0]
        .config
        .metadata
        .insert("flotilla_secrets".into(), "JWT_SECRET:abc".into());
    s.apps.push(oscar);
    // Someone else's app in the same org: never touched, not even listed.
    s.apps.push(flotilla::state::AppSnapshot {
        app: fly::App {
            id: "app_other".into(),
            name: "billing-api".into(),
            ..Default::default()
        },
        machines: vec![fly::Machine {
            id: "1781973f2d5e89".into(),
            name: "billing".into(),
            state: "started".into(),
            region: "iad".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    s
}

fn shrink() -> Snapshot {
    let mut s = applied();
    app_mut(&mut s, "my-jarvis-alice").volumes[0].size_gb = 10;
    s
}

#[test]
fn fixtures_are_current() {
    let dir = root().join("tests/states");
    check_fixture(&dir.join("jarvis-applied.json"), &applied());
    check_fixture(&dir.join("jarvis-drift.json"), &drift());
    check_fixture(&dir.join("jarvis-shrink.json"), &shrink());
}

fn plan_json(args: &[&str]) -> (Value, i32) {
    let out = bin()
        .arg("plan")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (v, code)
}

fn change<'a>(plan: &'a Value, address: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == address)
        .unwrap_or_else(|| panic!("no change for {address}"))
}

#[test]
fn empty_org_creates_everything() {
    let out = bin().args(["plan", "specs/jarvis.yaml"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Plan: 140 to create, 0 to update, 0 to replace, 0 to delete."),
        "{text}"
    );
    // The same resources of 14 tenants: one block each, after the summary.
    assert!(
        text.contains(
            "Summary: 140 to create, 0 to update, 0 to replace, 0 to delete; 140 changes in 11 blocks."
        ),
        "{text}"
    );
    assert!(text.contains("  # app of 14 tenants (alice … staging) will be created\n  + app\n"));
    assert!(text.contains("+ volume workspace (3 GB, iad, encrypted)"));
    assert!(text.contains("+ secret JWT_SECRET (from file secrets/jwt.txt)"));
    assert!(!text.contains("tenant.alice"), "{text}");
    // --detail: every resource, by address.
    let out = bin()
        .args(["plan", "specs/jarvis.yaml", "--detail"])
        .output()
        .unwrap();
    let detail = String::from_utf8(out.stdout).unwrap();
    assert!(detail.contains("  # tenant.alice.app will be created\n  + app my-jarvis-alice\n"));
    assert_eq!(detail.matches(" will be created\n").count(), 140);
    assert!(!detail.contains("Summary:"));
    assert!(
        !text.contains("\x1b["),
        "no colours when stdout is not a terminal"
    );
    let (plan, _) = plan_json(&["specs/jarvis.yaml"]);
    let kinds = |k: &str| {
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == k && c["action"] == "create")
            .count()
    };
    assert_eq!(
        (
            kinds("app"),
            kinds("machine"),
            kinds("volume"),
            kinds("secret")
        ),
        (14, 14, 14, 42)
    );
}

#[test]
fn applied_state_has_no_changes() {
    let (plan, code) = plan_json(&[
        "specs/jarvis.yaml",
        "--state",
        "tests/states/jarvis-applied.json",
        "--detailed-exitcode",
    ]);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(
        plan["summary"],
        serde_json::json!({"create":0,"update":0,"replace":0,"delete":0,"noop":140})
    );
    let out = bin()
        .args([
            "plan",
            "specs/jarvis.yaml",
            "--state",
            "tests/states/jarvis-applied.json",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("No changes."));
}

#[test]
fn every_spec_converges_against_its_applied_state() {
    for spec in [
        "specs/jarvis.yaml",
        "specs/workspaces.yaml",
        "specs/hybrid.yaml",
    ] {
        let d = load(spec);
        let observed = flotilla::state::interpret(&applied_snapshot(&d), &d);
        let plan = flotilla::plan::plan(&d, &observed, &[]);
        assert!(
            !plan.has_changes(),
            "{spec}: {:#?}",
            plan.actionable().collect::<Vec<_>>()
        );
        assert!(
            observed.unmanaged.is_empty(),
            "{spec}: {:?}",
            observed.unmanaged
        );
    }
}

#[test]
fn drift_plans_update_replace_delete_and_adopt() {
    let (plan, code) = plan_json(&[
        "specs/jarvis.yaml",
        "--state",
        "tests/states/jarvis-drift.json",
        "--detailed-exitcode",
    ]);
    assert_eq!(code, 2, "changes present → 2");

    let bob = change(&plan, "tenant.bob.machine[0]");
    assert_eq!(bob["action"], "update");
    assert_eq!(bob["restart"], true);
    let fields: Vec<&str> = bob["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["image", "guest.memory_mb", "env.NODE_ENV"]);
    assert_eq!(
        bob["fields"][0]["before"],
        "registry.fly.io/my-jarvis:1.4.42"
    );
    assert_eq!(
        bob["fields"][0]["after"],
        "registry.fly.io/my-jarvis:1.4.43"
    );

    let carol = change(&plan, "tenant.carol.machine[0]");
    assert_eq!(carol["action"], "replace");
    assert!(
        carol["reasons"][0]
            .as_str()
            .unwrap()
            .contains("cannot move from sjc to iad")
    );

    let dave = change(&plan, "tenant.dave.volume.workspace[0]");
    assert_eq!(dave["action"], "update");
    assert_eq!(dave["reasons"][0], "extend from 2 GB to 3 GB");

    let erin = change(&plan, "tenant.erin.backup.workspace[0]");
    assert_eq!(erin["action"], "update");
    assert_eq!(erin["fields"][0]["path"], "snapshot_retention");

    let frank = change(&plan, "tenant.frank.machine[0]");
    assert_eq!(frank["action"], "update");
    assert_eq!(frank["adopt"], true);
    assert!(
        frank.get("restart").is_none(),
        "adoption only adds metadata: no restart"
    );
    assert!(frank["fields"].as_array().unwrap().iter().all(|f| {
        f["path"]
            .as_str()
            .unwrap()
            .starts_with("metadata.flotilla_")
    }));

    for a in [
        "tenant.oscar.app",
        "tenant.oscar.machine[0]",
        "tenant.oscar.secret.JWT_SECRET",
    ] {
        assert_eq!(change(&plan, a)["action"], "delete", "{a}");
    }
    let vol = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["address"]
                .as_str()
                .unwrap()
                .starts_with("tenant.oscar.volume.workspace[0]")
        })
        .unwrap();
    assert_eq!(vol["action"], "delete");
    assert_eq!(vol["data_loss"], true);
    assert_eq!(
        vol["prevent_destroy"],
        Value::Bool(true),
        "oscar was a protected customer: the protection recorded on its Machine outlives the spec"
    );

    assert!(
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["app"] != "billing-api"),
        "other apps are never touched"
    );
    let unmanaged = plan["unmanaged"].as_array().unwrap();
    assert_eq!(unmanaged.len(), 1);
    assert_eq!(unmanaged[0]["name"], "debug-shell");
    assert_eq!(
        plan["summary"],
        serde_json::json!({"create":0,"update":4,"replace":1,"delete":8,"noop":135})
    );

    let text = String::from_utf8(
        bin()
            .args([
                "plan",
                "specs/jarvis.yaml",
                "--state",
                "tests/states/jarvis-drift.json",
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        text.contains("-/+ machine in app my-jarvis-carol"),
        "{text}"
    );
    assert!(text.contains(
        "~ image: \"registry.fly.io/my-jarvis:1.4.42\" → \"registry.fly.io/my-jarvis:1.4.43\""
    ));
    assert!(text.contains("# tenant.frank.machine[0] will be adopted"));
    assert!(text.contains("! destroys the volume's data: apply needs --allow-data-loss"));
    assert!(text.contains("Not managed by flotilla (left alone):"));
    assert!(text.contains("Plan: 0 to create, 4 to update, 1 to replace, 8 to delete."));
}

#[test]
fn server_defaults_never_show_as_changes() {
    // The applied fixture carries init, dns, restart policy, image_ref, Fly's metadata
    // and service extras that the spec never declares.
    let raw = std::fs::read_to_string(root().join("tests/states/jarvis-applied.json")).unwrap();
    for noise in [
        "\"init\"",
        "fly_platform_version",
        "force_instance_key",
        "\"on-failure\"",
        "image_ref",
    ] {
        assert!(raw.contains(noise), "fixture lacks {noise}");
    }
    let (plan, _) = plan_json(&[
        "specs/jarvis.yaml",
        "--state",
        "tests/states/jarvis-applied.json",
    ]);
    assert_eq!(plan["summary"]["noop"], 140);
}

#[test]
fn volume_shrink_is_an_error_with_a_hint() {
    let out = bin()
        .args([
            "plan",
            "specs/jarvis.yaml",
            "--state",
            "tests/states/jarvis-shrink.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("tenant.alice.volume.workspace[0]: volumes cannot shrink (10 GB → 3 GB)"),
        "{text}"
    );
    assert!(text.contains("Keep size_gb at 10 or more"));
}

#[test]
fn json_contract_fields() {
    let (plan, code) = plan_json(&[
        "specs/jarvis.yaml",
        "--state",
        "tests/states/jarvis-drift.json",
    ]);
    assert_eq!(code, 0);
    assert_eq!(plan["format_version"], 1);
    for k in [
        "pricing_version",
        "summary",
        "changes",
        "spec_hash",
        "observed_fingerprint",
        "created_at",
    ] {
        assert!(plan.get(k).is_some(), "missing {k}");
    }
    for k in ["create", "update", "replace", "delete", "noop"] {
        assert!(plan["summary"][k].is_u64());
    }
    for c in plan["changes"].as_array().unwrap() {
        for k in [
            "address",
            "kind",
            "action",
            "app",
            "monthly_cost_before_usd",
            "monthly_cost_after_usd",
        ] {
            assert!(c.get(k).is_some(), "change lacks {k}: {c}");
        }
        assert!(
            c.get("fields").is_none()
                || c["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|f| f.get("path").is_some())
        );
    }
    assert!(
        plan.get("desired").is_none(),
        "printed plans do not carry the desired state"
    );
}

#[test]
fn saved_plan_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plans/jarvis.plan.json");
    let o = bin()
        .args([
            "plan",
            "specs/jarvis.yaml",
            "--state",
            "tests/states/jarvis-drift.json",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success());
    let doc = flotilla::plan::saved::PlanDocument::load(&out).unwrap();
    assert_eq!(doc.format_version, 1);
    assert!(doc.spec_hash.starts_with("sha256:"));
    assert!(doc.observed_fingerprint.starts_with("sha256:"));
    assert_eq!(doc.observed_source, "state:tests/states/jarvis-drift.json");
    assert_eq!(doc.desired.as_ref().unwrap().len(), 140);
    // Saving what was loaded gives the same bytes.
    let again = dir.path().join("again.plan.json");
    doc.save(&again).unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&again).unwrap()
    );
    // The saved plan holds secret references, never values.
    let raw = std::fs::read_to_string(&out).unwrap();
    assert!(raw.contains("\"env\": \"ANTHROPIC_API_KEY\""));
    // A printed JSON plan is not a saved plan.
    let printed = dir.path().join("printed.json");
    std::fs::write(
        &printed,
        bin()
            .args(["plan", "specs/jarvis.yaml", "--format", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let e = flotilla::plan::saved::PlanDocument::load(&printed).unwrap_err();
    assert!(e.to_string().contains("no desired state"), "{e}");
}

#[test]
fn tenant_filter_narrows_the_plan() {
    let (plan, _) = plan_json(&[
        "specs/jarvis.yaml",
        "--state",
        "tests/states/jarvis-drift.json",
        "--tenant",
        "bob",
        "--tenant",
        "oscarr",
    ]);
    assert!(
        plan.is_null(),
        "oscarr is neither declared nor observed: error"
    );
    // oscar left the spec but is observed: its removal alone is planned.
    let (plan, _) = plan_json(&[
        "specs/jarvis.yaml",
        "--state",
        "tests/states/jarvis-drift.json",
        "--tenant",
        "oscar",
    ]);
    assert_eq!(plan["summary"]["delete"], 8, "{}", plan["summary"]);
    let changes = plan["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    for c in changes {
        assert_eq!(c["action"], "delete", "{c}");
        assert_eq!(c["tenant"], "oscar", "{c}");
    }
    let (plan, code) = plan_json(&[
        "specs/jarvis.yaml",
        "--state",
        "tests/states/jarvis-drift.json",
        "--tenant",
        "bob",
    ]);
    assert_eq!(code, 0);
    assert!(
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["tenant"] == "bob")
    );
    assert_eq!(plan["summary"]["update"], 1);
    let out = bin()
        .args(["plan", "specs/jarvis.yaml", "--tenant", "bbo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `bob`?"));
}

#[test]
fn markdown_plan() {
    let out = bin()
        .args([
            "plan",
            "specs/jarvis.yaml",
            "--state",
            "tests/states/jarvis-drift.json",
            "--format",
            "markdown",
        ])
        .output()
        .unwrap();
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.starts_with("### flotilla plan for `specs/jarvis.yaml`"),
        "{md}"
    );
    assert!(md.contains("| **Plan** | 0 | 4 | 1 | 8 | $168.34 → $159.90 (**-$8.44**) |"));
    assert!(md.contains("| ♻️ | `tenant.carol.machine[0]` | must be replaced |"));
    assert!(md.contains("<details><summary>Every change (13 resources)</summary>"));
    // What must not be missed comes before the details.
    let details = md.find("<details>").unwrap();
    for above in [
        "**Destroys 8 resources:**",
        "**Destroys the data of 1 volume",
        "debug-shell",
        "**Cost:** Fly's docs show newer prices",
    ] {
        assert!(md.find(above).is_some_and(|i| i < details), "{above}: {md}");
    }
}

#[test]
fn bad_state_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.json");
    std::fs::write(&p, "{\"format_version\": 1,\n \"org\": 5}").unwrap();
    let out = bin()
        .args(["plan", "specs/jarvis.yaml", "--state"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a valid observed-state file") && err.contains("bad.json:2:"),
        "{err}"
    );

    let mut other = applied();
    other.org = "someone-else".into();
    std::fs::write(&p, serde_json::to_string(&other).unwrap()).unwrap();
    let out = bin()
        .args(["plan", "specs/jarvis.yaml", "--state"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("org `someone-else` but the spec declares org `my-jarvis`")
    );

    let out = bin()
        .args([
            "plan",
            "specs/jarvis.yaml",
            "--state",
            "tests/states/nope.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
}

#[test]
fn managed_machine_duplicates_are_deleted() {
    // An interrupted apply can leave two Machines claiming one slot: the newer is removed.
    let d = load("specs/jarvis.yaml");
    let mut s = applied_snapshot(&d);
    let alice = app_mut(&mut s, "my-jarvis-alice");
    let mut dup = alice.machines[0].clone();
    dup.id = "aaaa0000bbbb11".into();
    dup.created_at = Some("2026-11-02T10:00:00Z".into());
    dup.config.mounts.clear();
    assert_eq!(
        dup.config.metadata.get(META_MANAGED).map(String::as_str),
        Some("true")
    );
    alice.machines.push(dup);
    let observed = flotilla::state::interpret(&s, &d);
    let plan = flotilla::plan::plan(&d, &observed, &[]);
    let acts: Vec<(String, &str)> = plan
        .actionable()
        .map(|c| (c.address.to_string(), c.action.as_str()))
        .collect();
    assert_eq!(
        acts,
        vec![(
            "tenant.alice.machine[0]#aaaa0000bbbb11".to_string(),
            "delete"
        )]
    );
}

#[test]
fn live_values_the_spec_does_not_declare_are_never_printed() {
    // A Machine carries a database URL set by a script (not in the spec), and a declared
    // variable was overwritten by hand with an API key. The plan removes the first and
    // resets the second; neither live value may reach any rendering of the plan.
    let password = "SuperSecretPw123";
    // Built at run time so that no token-shaped literal is committed.
    let api_key = &format!("sk-{}-api03-AbCdEfGhIjKlMnOpQrStUvWx", "ant");
    let mut s = applied();
    let m = &mut app_mut(&mut s, "my-jarvis-bob").machines[0];
    m.config.env.insert(
        "DATABASE_URL".into(),
        format!("postgres://admin:{password}@db/x"),
    );
    m.config.env.insert("NODE_ENV".into(), api_key.clone());
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, serde_json::to_string(&s).unwrap()).unwrap();
    let saved = dir.path().join("bob.plan.json");
    let mut printed = String::new();
    for format in ["text", "json", "markdown"] {
        let out = bin()
            .args(["plan", "specs/jarvis.yaml", "--state"])
            .arg(&state)
            .args(["--format", format, "--out"])
            .arg(&saved)
            .output()
            .unwrap();
        printed += &String::from_utf8_lossy(&out.stdout);
        printed += &String::from_utf8_lossy(&out.stderr);
        printed += &std::fs::read_to_string(&saved).unwrap();
    }
    assert!(printed.contains("env.DATABASE_URL"), "{printed}");
    assert!(printed.contains("(hidden: not in the spec)"), "{printed}");
    assert!(!printed.contains(password), "a live env value was printed");
    assert!(
        !printed.contains(api_key.as_str()),
        "a live credential was printed"
    );
}
