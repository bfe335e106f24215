//! Standby Machines (`standbys: COUNT`) against the in-process simulator: declared for
//! a tier and one tenant, applied (each primary gets stopped standbys whose config names
//! its ID), re-planned empty; an image change updates primaries and standbys, the
//! standbys staying stopped; `standbys: 0` removes them (with --allow-destroy); a
//! removed primary takes its standby along; a moved primary replaces its standby
//! (through saved plans); a standby goes where its primary fell back; a host failure
//! starts a standby, which plans leave running; a lone unmanaged Machine is not taken
//! for a standby; a volume with standbys is refused at its position; standbys are
//! priced as stopped Machines; status names them `standby`.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod libsim;
mod reconcile_common;

use std::path::Path;

use flotilla::ops;
use flotilla::plan::Action;
use flotilla::resource::Address;
use libsim::{apply, plan, target};
use serde_json::json;

const SPEC: &str = r#"
version: 1
org: stb
defaults:
  image: registry.fly.io/stb:1.0.0
  region: iad
  services: [{ internal_port: 8080, ports: [{ port: 443, handlers: [tls, http] }] }]
tiers:
  ha:
    standbys: 1
tenants:
  - name: alice
    tier: ha
  - name: bob
    tier: ha
    count: 2
  - name: carl
  - name: dave
    standbys: 2
"#;

/// Plans into a file and applies that saved plan (its re-validation reads the standbys'
/// addresses and metadata).
fn apply_saved(spec: &Path, dir: &Path) {
    let saved = dir.join("fleet.plan.json");
    ops::plan::run(&ops::plan::Options {
        spec: spec.to_path_buf(),
        target: target(dir),
        out: Some(saved.clone()),
        ..Default::default()
    })
    .unwrap();
    apply(&saved, dir, false);
}

fn a(s: &str) -> Address {
    s.parse().unwrap()
}

/// Every primary has its standbys, stopped, named after it, standing by for its ID.
fn assert_standbys(out: &ops::plan::Outcome, image: &str) {
    let machines = &out.observed.machines;
    let expected = [
        ("tenant.alice.machine[0]", 1),
        ("tenant.bob.machine[0]", 1),
        ("tenant.bob.machine[1]", 1),
        ("tenant.carl.machine[0]", 0),
        ("tenant.dave.machine[0]", 2),
    ];
    for (primary, n) in expected {
        let p = &machines[&a(primary)];
        assert_eq!(p.state, "started", "{primary}");
        assert_eq!(p.config.image, image);
        for k in 0..n {
            let at = a(primary).standby(k).unwrap();
            let s = machines
                .get(&at)
                .unwrap_or_else(|| panic!("no standby {at}"));
            assert_eq!(s.state, "stopped", "{at} is never started");
            assert_eq!(s.name, format!("{}-standby-{k}", p.name));
            assert_eq!(s.config.extra["standbys"], json!([p.id]), "{at}");
            assert_eq!(s.config.image, image, "{at} has its primary's config");
            assert_eq!(
                serde_json::to_value(&s.config.services).unwrap(),
                serde_json::to_value(&p.config.services).unwrap()
            );
        }
        assert!(machines.get(&a(primary).standby(n).unwrap()).is_none());
    }
    assert!(
        out.observed.unmanaged.is_empty(),
        "standbys are not unmanaged: {:?}",
        out.observed.unmanaged
    );
}

#[test]
fn standbys_follow_their_primaries() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.yaml");
    std::fs::write(&spec, SPEC).unwrap();

    let first = plan(&spec, dir.path());
    let creates = first
        .document
        .changes
        .iter()
        .filter(|c| c.address.standby_index().is_some())
        .inspect(|c| assert_eq!(c.action, Action::Create))
        .count();
    assert_eq!(creates, 5);
    snapshot_plan("standbys_create_text", &first);

    apply(&spec, dir.path(), false);
    let again = plan(&spec, dir.path());
    assert!(
        !again.has_changes(),
        "re-plan after apply: {:#?}",
        again.document.changes
    );
    assert_standbys(&again, "registry.fly.io/stb:1.0.0");

    // A new image: primaries restart with it; standbys get it and stay stopped.
    let edited = SPEC.replace("stb:1.0.0", "stb:1.1.0");
    std::fs::write(&spec, &edited).unwrap();
    let changed = plan(&spec, dir.path());
    let standby = changed
        .document
        .changes
        .iter()
        .find(|c| c.address == a("tenant.alice.machine[0].standby[0]"))
        .unwrap();
    assert_eq!(standby.action, Action::Update);
    assert!(
        standby.stays_idle,
        "a standby is updated without starting it"
    );
    snapshot_plan("standbys_image_update_text", &changed);
    apply(&spec, dir.path(), false);
    let after = plan(&spec, dir.path());
    assert!(!after.has_changes(), "{:#?}", after.document.changes);
    assert_standbys(&after, "registry.fly.io/stb:1.1.0");

    // Fewer Machines and no standbys for dave: the standbys go with them.
    let fewer = edited
        .replace("    count: 2\n", "")
        .replace("standbys: 2", "standbys: 0");
    std::fs::write(&spec, &fewer).unwrap();
    let shrink = plan(&spec, dir.path());
    let mut deleted: Vec<String> = shrink
        .document
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.address.to_string())
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "tenant.bob.machine[1]",
            "tenant.bob.machine[1].standby[0]",
            "tenant.dave.machine[0].standby[0]",
            "tenant.dave.machine[0].standby[1]",
        ]
    );
    apply(&spec, dir.path(), true);
    let last = plan(&spec, dir.path());
    assert!(!last.has_changes(), "{:#?}", last.document.changes);
    let live = &last.observed.machines;
    assert!(live.contains_key(&a("tenant.bob.machine[0].standby[0]")));
    assert!(
        !live
            .keys()
            .any(|k| k.tenant() == Some("dave") && k.standby_index().is_some())
    );

    status_names_standbys(dir.path(), &spec);
}

/// The change plan as text, for alice (the other tenants' changes are alike), without
/// the cost lines (which depend on the price table in force).
fn snapshot_plan(name: &str, out: &ops::plan::Outcome) {
    use flotilla::render::{Layout, Style, plan_text};
    let mut doc = out.document.clone();
    doc.changes.retain(|c| c.tenant.as_deref() == Some("alice"));
    doc.summary = flotilla::plan::Summary::of(&doc.changes);
    let desired = Some(&out.desired.resources);
    let text = plan_text(&doc, desired, Style::plain(), Layout::Detail);
    let changes = text.split("\nCost:").next().unwrap();
    insta::with_settings!({filters => vec![(r"\b[0-9a-f]{14}\b", "[id]")]}, {
        insta::assert_snapshot!(name, changes);
    });
}

/// `flotilla status` lists a stopped standby as `standby`, not stopped.
fn status_names_standbys(dir: &Path, spec: &Path) {
    let out = ops::status::run(&ops::status::Options {
        spec: spec.to_path_buf(),
        target: target(dir),
        ..Default::default()
    })
    .unwrap();
    let alice = out.groups.iter().find(|g| g.name == "alice").unwrap();
    let slots: Vec<(&str, &str)> = alice
        .machines
        .iter()
        .map(|m| (m.slot.as_str(), m.state.as_str()))
        .collect();
    assert_eq!(
        slots,
        [
            ("machine[0]", "started"),
            ("machine[0].standby[0]", "standby")
        ]
    );
    assert_eq!(out.summary.other.get("standby"), Some(&2));
    assert_eq!(out.summary.stopped, 0);
    let text = ops::status::render::text(&out);
    let filters = vec![
        (r"\b[0-9a-f]{14}\b", "[id]"),
        (r"\d{4}-\d\d-\d\dT[0-9:.]+Z", "[time]"),
        (r"sim:\S+", "sim:[path]"),
    ];
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!("standbys_status_text", text);
    });
}

/// Through saved plans: created, then moved to another region with its standby.
#[test]
fn a_replaced_primary_replaces_its_standby() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.yaml");
    let one = "version: 1\norg: stb\ndefaults: { image: 'img:1', region: iad, standbys: 1 }\ntenants: [{ name: alice }]\n";
    std::fs::write(&spec, one).unwrap();
    apply_saved(&spec, dir.path());
    std::fs::write(&spec, one.replace("iad", "ord")).unwrap();
    let moved = plan(&spec, dir.path());
    let action = |s: &str| {
        moved
            .document
            .changes
            .iter()
            .find(|c| c.address == a(s))
            .unwrap()
            .action
    };
    assert_eq!(action("tenant.alice.machine[0]"), Action::Replace);
    assert_eq!(
        action("tenant.alice.machine[0].standby[0]"),
        Action::Replace
    );
    apply_saved(&spec, dir.path());
    let after = plan(&spec, dir.path());
    assert!(!after.has_changes(), "{:#?}", after.document.changes);
    let live = &after.observed.machines;
    let p = &live[&a("tenant.alice.machine[0]")];
    let s = &live[&a("tenant.alice.machine[0].standby[0]")];
    assert_eq!((p.region.as_str(), s.region.as_str()), ("ord", "ord"));
    assert_eq!(s.config.extra["standbys"], json!([p.id]));
    assert_eq!(s.state, "stopped");
}

fn refusal(spec: &str) -> String {
    match flotilla::spec::load_bytes(spec.as_bytes(), "fleet.yaml") {
        Ok(_) => panic!("not refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_volume_with_standbys_is_refused_at_its_position() {
    let spec = "version: 1\norg: stb\ndefaults:\n  image: img:1\n  region: iad\n  volume: { name: data, size_gb: 1, mount: /data }\ntiers:\n  ha:\n    standbys: 1\ntenants: [{ name: alice, tier: ha }]\n";
    let e = refusal(spec);
    assert!(e.contains("fleet.yaml:9:15"), "{e}");
    assert!(e.contains("tiers.ha.standbys"), "{e}");
    assert!(e.contains("cannot have standbys"), "{e}");
    assert!(e.contains("cannot mount its primary's volume"), "{e}");
    let many = "version: 1\norg: stb\ndefaults: { image: img:1, region: iad, standbys: 4 }\ntenants: [{ name: alice }]\n";
    let e = refusal(many);
    assert!(e.contains("standbys 4 is out of range (0–3)"), "{e}");
}

#[test]
fn a_standby_is_priced_as_a_stopped_machine() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.yaml");
    let one = "version: 1\norg: stb\ndefaults: { image: 'img:1', region: iad, standbys: 1 }\ntenants: [{ name: alice }]\n";
    std::fs::write(&spec, one).unwrap();
    let out = ops::cost::run(&ops::cost::Options {
        spec: spec.clone(),
        base: None,
        pricing: Default::default(),
        budget: Default::default(),
        usage: None,
    })
    .unwrap();
    let standby = a("tenant.alice.machine[0].standby[0]");
    let lines: Vec<_> = out
        .report
        .lines
        .iter()
        .filter(|l| l.address == standby)
        .collect();
    let items: Vec<String> = lines.iter().map(|l| format!("{:?}", l.item)).collect();
    assert_eq!(items, ["Compute", "Rootfs"], "no egress while stopped");
    assert!(lines[0].monthly.is_zero(), "never started: no compute");
    assert!(
        lines[0].description.contains("started 0 h"),
        "{}",
        lines[0].description
    );
    assert!(lines[0].assumptions[0].starts_with("standby: stopped"));
    assert!(
        lines[1].description.contains("stopped for 720 h"),
        "{}",
        lines[1].description
    );
    assert!(!lines[1].monthly.is_zero());
}

#[test]
fn a_lone_machine_without_metadata_is_not_taken_for_a_standby() {
    let spec = "version: 1\norg: stb\ndefaults: { image: 'img:1', region: iad, standbys: 1 }\ntenants: [{ name: alice }]\n";
    let d = flotilla::spec::load_bytes(spec.as_bytes(), "fleet.yaml")
        .unwrap()
        .desired;
    let mut snap = common::applied_snapshot(&d);
    let app = &mut snap.apps[0];
    assert_eq!(app.machines.len(), 2, "the primary and its standby");
    // The standby is gone; a Machine someone made by hand is in the app.
    let stray = app
        .machines
        .iter_mut()
        .find(|m| m.config.metadata.contains_key("flotilla_standby"))
        .unwrap();
    stray.name = "debug-shell".into();
    stray.config.metadata.clear();
    let observed = flotilla::state::interpret(&snap, &d);
    assert!(observed.adopted.is_empty(), "{:?}", observed.adopted);
    assert_eq!(observed.unmanaged.len(), 1);
    assert_eq!(observed.unmanaged[0].name, "debug-shell");
    let plan = flotilla::plan::diff(&d.resources, &observed);
    let standby = plan.get(&a("tenant.alice.machine[0].standby[0]")).unwrap();
    assert_eq!(standby.action, Action::Create);
}

/// A primary that runs in a fallback region (no capacity in its own when it was made)
/// takes its standby along: a standby stands by in its primary's region.
#[test]
fn a_standby_goes_where_its_primary_runs() {
    let org = reconcile_common::Org::new(40.0);
    let spec = "version: 1\norg: stb\nnaming: { app: \"stb-{{ tenant.name }}\" }\ndefaults: { image: 'img:1', region: sjc, fallback_regions: [iad, dfw] }\ntenants: [{ name: a }]\n";
    org.write("specs/fb.yaml", spec);
    org.set_faults("capacity=sjc");
    org.apply_ok("specs/fb.yaml", &[]);
    org.set_faults("none");
    let with_standby = spec.replace("dfw] }", "dfw], standbys: 1 }");
    org.write("specs/fb.yaml", &with_standby);
    org.apply_ok("specs/fb.yaml", &[]);
    let machines = org.machines("stb-a");
    let region = |name: &str| {
        machines
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["region"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(region("a-0"), "iad", "the primary fell back");
    assert_eq!(
        region("a-0-standby-0"),
        "iad",
        "sjc has room now, but the primary is in iad"
    );
    let (plan, code) = org.plan_json("specs/fb.yaml", &[]);
    assert_eq!(code, 0, "{}", plan["summary"]);
}

/// When the primary's host fails, Fly starts its standby: the plan restarts the failed
/// primary and leaves the running standby alone (neither drift nor stopped again).
#[test]
fn a_standby_fly_started_is_left_running() {
    let org = reconcile_common::Org::new(40.0);
    let spec = "version: 1\norg: stb\nnaming: { app: \"stb-{{ tenant.name }}\" }\ndefaults: { image: 'img:1', region: iad, standbys: 1 }\ntenants: [{ name: a }]\n";
    org.write("specs/hf.yaml", spec);
    org.apply_ok("specs/hf.yaml", &[]);
    let id_of = |name: &str| {
        org.machines("stb-a")
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let primary = id_of("a-0");
    let started = org.sim.control().fail_host("stb-a", &primary).unwrap();
    assert_eq!(started, [id_of("a-0-standby-0")]);

    let (plan, code) = org.plan_json("specs/hf.yaml", &[]);
    assert_eq!(code, 2, "{}", plan["summary"]);
    let changes = plan["changes"].as_array().unwrap();
    let actionable: Vec<(&str, &str)> = changes
        .iter()
        .filter(|c| c["action"] != "noop")
        .map(|c| {
            (
                c["address"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(actionable, [("tenant.a.machine[0]", "update")]);

    org.apply_ok("specs/hf.yaml", &[]);
    let (plan, code) = org.plan_json("specs/hf.yaml", &[]);
    assert_eq!(code, 0, "{}", plan["summary"]);
    let states: Vec<(String, String)> = org
        .machines("stb-a")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().into(),
                m["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        states.contains(&("a-0".into(), "started".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&("a-0-standby-0".into(), "started".into())),
        "{states:?}"
    );
}
