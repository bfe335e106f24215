//! Region moves and `volume.restore_from` against the simulator over loopback.
//!
//! A tenant whose region changes is planned as a move (never as data loss): apply stops
//! its Machine, snapshots the volume, copies it into the new region, starts a new Machine
//! there and retires the old volume (kept, recorded on the new Machine); the data's
//! content tag arrives in the new region and the next plan is empty. A new Machine that
//! does not start is rolled back onto the old volume. A new tenant's volume declared
//! with `restore_from` starts with the source tenant's snapshot. The move plan's text,
//! JSON and Markdown renderings are pinned with insta.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod simorg;

use std::path::{Path, PathBuf};

use flotilla::ops;
use flotilla::plan::Action;
use simorg::SimOrg as Fixture;

const IMAGE: &str = "registry.fly.io/move-ops:1.0.0";

fn spec(alice: &str, extra_tenant: &str) -> String {
    format!(
        "\
version: 1
org: move-ops
defaults:
  image: {IMAGE}
  region: ams
  size: shared-cpu-1x
  memory: 256mb
  volume: {{ name: data, size_gb: 2, mount: /data }}
tenants:
  - name: alice{alice}
  - name: bob
{extra_tenant}"
    )
}

fn applied(text: &str) -> Fixture {
    let f = Fixture::start(text, "move");
    let summary = f.apply();
    assert!(summary.ok(), "{}", summary.text());
    f
}

const ALICE: &str = "move-ops-alice";

/// alice's only volume's id, after giving it a content tag.
fn tagged_volume(f: &Fixture, tag: &str) -> String {
    let vols = f.volumes(ALICE);
    assert_eq!(vols.len(), 1, "{vols:?}");
    let id = vols[0]["id"].as_str().unwrap().to_string();
    f.set_content(ALICE, &id, tag);
    id
}

#[test]
fn a_region_move_carries_the_data_and_keeps_the_old_volume() {
    let f = applied(&spec("", ""));
    let old_vol = tagged_volume(&f, "orders-v1");
    let old_machine = f.machines(ALICE)[0]["id"].as_str().unwrap().to_string();

    f.write_spec(&spec("\n    region: fra", ""));
    let planned = f.plan();
    let doc = &planned.document;
    let moved: Vec<(&str, Action, bool)> = doc
        .actionable()
        .map(|c| (c.address.as_str(), c.action, c.data_loss))
        .collect();
    assert_eq!(
        moved,
        [
            ("tenant.alice.volume.data[0]", Action::Move, false),
            ("tenant.alice.machine[0]", Action::Move, false),
        ]
    );
    assert_eq!(doc.summary.moves, 2);
    let machine = doc
        .actionable()
        .find(|c| c.kind.as_str() == "machine")
        .unwrap();
    assert!(machine.downtime_secs.is_some_and(|s| s > 0));

    // No --allow-data-loss: a move destroys nothing.
    let summary = f.apply();
    assert!(summary.ok(), "{}", summary.text());
    assert_eq!(summary.moved, 2, "{}", summary.text());

    let machines = f.machines(ALICE);
    assert_eq!(
        machines.len(),
        1,
        "the old Machine is destroyed: {machines:?}"
    );
    let m = &machines[0];
    assert_ne!(m["id"], old_machine.as_str());
    assert_eq!(m["region"], "fra");
    assert_eq!(m["state"], "started");
    assert_eq!(
        m["config"]["metadata"]["flotilla_retired_volumes"],
        old_vol.as_str()
    );
    let vols = f.volumes(ALICE);
    assert_eq!(vols.len(), 2, "the old volume is kept: {vols:?}");
    let new_id = m["config"]["mounts"][0]["volume"].as_str().unwrap();
    let by_id = |id: &str| vols.iter().find(|v| v["id"] == id).unwrap().clone();
    let new = by_id(new_id);
    assert_eq!(new["region"], "fra");
    assert_eq!(new["content"], "orders-v1", "the data arrived: {vols:?}");
    let old = by_id(&old_vol);
    assert_eq!(old["region"], "ams");
    assert_eq!(old["content"], "orders-v1");
    assert!(old["attached_machine_id"].is_null(), "{vols:?}");
    assert!(
        !old["snapshots"].as_array().unwrap().is_empty(),
        "a snapshot was taken before the copy: {old:?}"
    );

    let again = f.plan();
    assert_eq!(again.document.summary.changes(), 0, "re-plan is empty");
    let kept = again
        .observed
        .unmanaged
        .iter()
        .find(|u| u.id == old_vol)
        .unwrap();
    assert!(kept.reason.contains("region move"), "{}", kept.reason);
    // bob was never touched.
    assert_eq!(f.machines("move-ops-bob")[0]["region"], "ams");
}

#[test]
fn a_move_falls_back_to_another_region_without_capacity() {
    let f = applied(&spec("", ""));
    tagged_volume(&f, "orders-v1");
    f.sim.control().set_faults("capacity=fra".parse().unwrap());
    f.write_spec(&spec("\n    region: fra\n    fallback_regions: [cdg]", ""));
    let summary = f.apply();
    assert!(summary.ok(), "{}", summary.text());
    let m = &f.machines(ALICE)[0];
    assert_eq!(m["region"], "cdg");
    let vols = f.volumes(ALICE);
    let new = vols
        .iter()
        .find(|v| v["id"] == m["config"]["mounts"][0]["volume"])
        .unwrap();
    assert_eq!(
        (new["region"].as_str(), new["content"].as_str()),
        (Some("cdg"), Some("orders-v1"))
    );
    assert_eq!(f.plan().document.summary.changes(), 0);
}

#[test]
fn a_move_whose_new_machine_does_not_start_is_rolled_back() {
    let f = applied(&spec("", ""));
    let old_vol = tagged_volume(&f, "orders-v1");
    let old_machine = f.machines(ALICE)[0]["id"].as_str().unwrap().to_string();
    f.sim
        .control()
        .set_faults("bad_image=:broken".parse().unwrap());
    let moved = spec("\n    region: fra", "").replace(
        "    region: fra\n",
        "    region: fra\n    image: registry.fly.io/move-ops:broken\n",
    );
    f.write_spec(&moved);
    let summary = f.apply();
    assert!(!summary.ok());
    let (_, err) = summary
        .failures
        .iter()
        .find(|(a, _)| a == "tenant.alice.machine[0]")
        .unwrap();
    assert!(
        err.contains(&format!(
            "rolled back: Machine {old_machine} started again on volume {old_vol}"
        )),
        "{err}"
    );
    let machines = f.machines(ALICE);
    assert_eq!(machines.len(), 1, "the new Machine is gone: {machines:?}");
    assert_eq!(machines[0]["id"], old_machine.as_str());
    assert_eq!(machines[0]["state"], "started");
    assert_eq!(machines[0]["region"], "ams");
    let vols = f.volumes(ALICE);
    assert_eq!(vols.len(), 1, "the copy is deleted: {vols:?}");
    assert_eq!(vols[0]["content"], "orders-v1");
    assert_eq!(vols[0]["attached_machine_id"], old_machine.as_str());
    // Still planned as a move, so the next apply tries again.
    assert_eq!(f.plan().document.summary.moves, 2);
}

#[test]
fn restore_from_creates_a_new_tenants_volume_from_a_snapshot() {
    let f = applied(&spec("", ""));
    let vol = tagged_volume(&f, "orders-v1");
    let taken = ops::snapshot::take(&ops::snapshot::Options {
        spec: f.spec.clone(),
        tenants: vec!["alice".into()],
        target: f.target(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(taken.failures(), 0);
    f.set_content(ALICE, &vol, "orders-v2");

    let carol = "  - name: carol\n    volume: { restore_from: { tenant: alice } }\n";
    f.write_spec(&spec("", carol));
    let planned = f.plan();
    let created = planned
        .document
        .actionable()
        .find(|c| c.address.as_str() == "tenant.carol.volume.data[0]")
        .unwrap();
    assert_eq!(created.action, Action::Create);
    assert!(
        created
            .reasons
            .contains(&"from snapshot of alice (latest)".to_string()),
        "{:?}",
        created.reasons
    );
    let summary = f.apply();
    assert!(summary.ok(), "{}", summary.text());
    let vols = f.volumes("move-ops-carol");
    assert_eq!(vols.len(), 1);
    assert_eq!(
        vols[0]["content"], "orders-v1",
        "the snapshot's data: {vols:?}"
    );
    assert_eq!(
        f.plan().document.summary.changes(),
        0,
        "restore_from is ignored once the volume exists"
    );
}

#[test]
fn restore_from_an_unknown_tenant_is_an_error_at_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.yaml");
    let carol = "  - name: carol\n    volume: { restore_from: { tenant: alicee } }\n";
    std::fs::write(&path, spec("", carol)).unwrap();
    let out = ops::validate::run(&ops::validate::Options {
        specs: vec![path],
        ..Default::default()
    });
    let Err(d) = &out.files[0].result else {
        panic!("valid: {out:?}");
    };
    let text = d.to_string();
    assert!(text.contains("unknown tenant `alicee`"), "{text}");
    assert!(text.contains("fleet.yaml:13:39"), "{text}");
    assert!(text.contains("did you mean `alice`?"), "{text}");
}

// ---------------------------------------------------------------- renderings

/// `specs/jarvis.yaml` with alice in `fra`, planned against the state Fly reports after
/// applying the original spec.
fn moved_jarvis(dir: &Path) -> PathBuf {
    let root = common::root();
    let text = std::fs::read_to_string(root.join("specs/jarvis.yaml")).unwrap();
    let moved = text.replace(
        "- { name: alice, tier: customer }",
        "- { name: alice, tier: customer, region: fra }",
    );
    assert_ne!(moved, text);
    let path = dir.join("jarvis.yaml");
    std::fs::write(&path, moved).unwrap();
    std::fs::create_dir(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/jwt.txt"), "placeholder").unwrap();
    path
}

#[test]
fn the_move_plan_renders_as_a_move() {
    let dir = tempfile::tempdir().unwrap();
    let spec = moved_jarvis(dir.path());
    let state = common::root().join("tests/states/jarvis-applied.json");
    for format in ["text", "markdown", "json"] {
        let out = common::plain_bin()
            .args(["plan"])
            .arg(&spec)
            .arg("--state")
            .arg(&state)
            .args(["--tenant", "alice", "--pricing-date", "2026-11-01"])
            .args(["--format", format])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let text = format!(
            "exit: {:?}\n--- stdout ---\n{stdout}--- stderr ---\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.add_filter(r#""created_at": "[^"]+""#, r#""created_at": "[timestamp]""#);
        settings.add_filter(&regex_literal(&dir.path().display().to_string()), "[dir]");
        settings.add_filter(
            &regex_literal(&common::root().display().to_string()),
            "[root]",
        );
        settings.bind(|| insta::assert_snapshot!(format!("plan_region_move_{format}"), text));
    }
}

fn regex_literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
