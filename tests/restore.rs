//! `restore` as a library call against the simulator over loopback: a snapshot is taken,
//! the volume's content changes, and restoring the latest snapshot puts the Machine on a
//! new volume holding the snapshot's content; the old volume is kept (unattached, never
//! adopted or duplicated by the next plan) or, with `allow_data_loss`, deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod simorg;

use flotilla::ops;
use flotilla::ops::restore::{Choice, OldVolume};
use serde_json::Value;
use simorg::SimOrg as Fixture;

const SPEC: &str = "\
version: 1
org: restore-ops
defaults:
  image: registry.fly.io/restore-ops:1.0.0
  region: ams
  size: shared-cpu-1x
  memory: 256mb
  volume: { name: data, size_gb: 2, mount: /data, snapshot_retention: 7 }
tenants:
  - name: alice
  - name: bob
";

/// The restore options for `tenant` against the fixture's simulator.
fn options(f: &Fixture, tenant: &str, snapshot: Choice) -> ops::restore::Options {
    ops::restore::Options {
        spec: f.spec.clone(),
        tenant: tenant.into(),
        snapshot,
        target: f.target(),
        ..Default::default()
    }
}

fn plan_changes(f: &Fixture) -> usize {
    f.plan().document.summary.changes()
}

fn applied() -> Fixture {
    let f = Fixture::start(SPEC, "restore");
    let report = f.apply_report();
    assert!(report.ok(), "{}", report.summary.text());
    f
}

/// alice's only volume (id) and its app.
fn alice_volume(f: &Fixture) -> (String, String) {
    let app = "restore-ops-alice".to_string();
    let vols = f.volumes(&app);
    assert_eq!(vols.len(), 1, "{vols:?}");
    (app, vols[0]["id"].as_str().unwrap().to_string())
}

/// Takes a snapshot of alice's volume with content `tag`, then changes the content.
fn snapshot_then_change(f: &Fixture, app: &str, vol: &str) -> String {
    f.set_content(app, vol, "orders-v1");
    let taken = ops::snapshot::take(&ops::snapshot::Options {
        spec: f.spec.clone(),
        tenants: vec!["alice".into()],
        target: f.target(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(taken.failures(), 0);
    f.set_content(app, vol, "orders-v2-broken");
    taken.taken[0].snapshot.as_ref().unwrap().id.clone()
}

#[test]
fn restoring_latest_remounts_the_machine_and_keeps_the_old_volume() {
    let f = applied();
    let (app, old) = alice_volume(&f);
    let snap = snapshot_then_change(&f, &app, &old);

    let prepared = ops::restore::prepare(&options(&f, "alice", Choice::Latest)).unwrap();
    assert_eq!(prepared.steps.len(), 1);
    assert_eq!(prepared.steps[0].snapshot.id, snap);
    let outcome = prepared.execute().unwrap();
    assert_eq!(outcome.failures(), 0, "{:?}", outcome.restored);
    let r = &outcome.restored[0];
    assert_eq!(r.old_volume, OldVolume::Kept);
    let new = r.new_volume.clone().unwrap();
    assert_ne!(new, old);

    let machines = f.machines(&app);
    assert_eq!(machines.len(), 1);
    let m = &machines[0];
    assert_eq!(m["state"], "started");
    assert_eq!(m["config"]["mounts"][0]["volume"], new.as_str());
    assert_eq!(m["config"]["image"], "registry.fly.io/restore-ops:1.0.0");

    let vols = f.volumes(&app);
    assert_eq!(vols.len(), 2, "the old volume is kept: {vols:?}");
    let by_id = |id: &str| vols.iter().find(|v| v["id"] == id).unwrap().clone();
    assert_eq!(by_id(&new)["content"], "orders-v1", "{vols:?}");
    assert_eq!(by_id(&new)["name"], "data");
    assert_eq!(by_id(&old)["content"], "orders-v2-broken");
    assert!(by_id(&old)["attached_machine_id"].is_null(), "{vols:?}");
    assert_eq!(
        m["config"]["metadata"]["flotilla_retired_volumes"],
        old.as_str(),
        "retired on the Machine once it ran"
    );

    assert_eq!(
        plan_changes(&f),
        0,
        "no duplicate, no replace after a restore"
    );
    let out = ops::plan::run(&ops::plan::Options {
        spec: f.spec.clone(),
        target: f.target(),
        ..Default::default()
    })
    .unwrap();
    let kept = out.observed.unmanaged.iter().find(|u| u.id == old).unwrap();
    assert!(
        kept.reason.contains("retired by restore"),
        "{}",
        kept.reason
    );

    // The replaced volume's snapshot can be restored again (after a second bad change).
    f.set_content(&app, &new, "orders-v3-broken");
    let again = ops::restore::prepare(&options(&f, "alice", Choice::Id(snap.clone())))
        .unwrap()
        .execute()
        .unwrap();
    assert_eq!(again.failures(), 0, "{:?}", again.restored);
    let third = again.restored[0].new_volume.clone().unwrap();
    let vols = f.volumes(&app);
    let by_id = |id: &str| vols.iter().find(|v| v["id"] == id).unwrap().clone();
    assert_eq!(by_id(&third)["content"], "orders-v1");
    let m = &f.machines(&app)[0];
    assert_eq!(
        m["config"]["metadata"]["flotilla_retired_volumes"],
        format!("{old},{new}")
    );
    assert_eq!(plan_changes(&f), 0, "two retired volumes, still no changes");
}

#[test]
fn allow_data_loss_deletes_the_old_volume() {
    let f = applied();
    let (app, old) = alice_volume(&f);
    let snap = snapshot_then_change(&f, &app, &old);
    let mut opts = options(&f, "alice", Choice::Id(snap));
    opts.allow_data_loss = true;
    let outcome = ops::restore::prepare(&opts).unwrap().execute().unwrap();
    assert_eq!(outcome.failures(), 0, "{:?}", outcome.restored);
    assert_eq!(outcome.restored[0].old_volume, OldVolume::Deleted);
    let vols = f.volumes(&app);
    let live: Vec<&Value> = vols
        .iter()
        .filter(|v| v["state"] != "destroyed" && v["state"] != "pending_destroy")
        .collect();
    assert_eq!(live.len(), 1, "{vols:?}");
    assert_eq!(live[0]["content"], "orders-v1");
    assert_eq!(plan_changes(&f), 0);
}

#[test]
fn an_unknown_snapshot_id_names_the_available_ones() {
    let f = applied();
    let (app, old) = alice_volume(&f);
    let snap = snapshot_then_change(&f, &app, &old);
    let e = ops::restore::prepare(&options(&f, "alice", Choice::Id("vs_nope".into())))
        .err()
        .unwrap();
    let text = e.diagnostics.to_string();
    assert!(text.contains("vs_nope") && text.contains(&snap), "{text}");
    assert_eq!(f.volumes(&app).len(), 1, "nothing was changed");
}

fn bin(dir: &std::path::Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("flotilla").unwrap();
    c.current_dir(dir)
        .env_remove("FLY_API_TOKEN")
        .env_remove("FLY_API_HOSTNAME")
        .env("NO_COLOR", "1");
    c
}

#[test]
fn the_command_asks_first_and_restores_with_yes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fleet.yaml"), SPEC).unwrap();
    let sim = ["--sim", "sim.json", "--time-scale", "50"];
    bin(dir.path())
        .args(["apply", "fleet.yaml", "--yes"])
        .args(sim)
        .assert()
        .success();
    bin(dir.path())
        .args(["snapshot", "fleet.yaml", "--tenant", "bob"])
        .args(sim)
        .assert()
        .success();
    let refused = bin(dir.path())
        .args(["restore", "fleet.yaml", "--tenant", "bob"])
        .args(sim)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&refused.get_output().stderr).to_string();
    assert!(err.contains("restore snapshot vs_"), "{err}");
    assert!(
        err.contains("refusing to restore without confirmation"),
        "{err}"
    );
    assert!(err.contains("--yes"), "{err}");

    let done = bin(dir.path())
        .args(["restore", "fleet.yaml", "--tenant", "bob", "--yes"])
        .args(sim)
        .assert()
        .success();
    let out = String::from_utf8_lossy(&done.get_output().stdout).to_string();
    assert!(out.contains("1 of 1 volume(s) restored."), "{out}");
    assert!(out.contains("kept, unattached"), "{out}");
}

#[test]
fn a_machine_that_does_not_start_goes_back_on_the_old_volume() {
    let f = applied();
    let (app, old) = alice_volume(&f);
    snapshot_then_change(&f, &app, &old);
    // Every boot of the fleet's image now crashes, so the restored Machine cannot start.
    f.sim
        .control()
        .set_faults("bad_image=restore-ops".parse().unwrap());
    let outcome = ops::restore::prepare(&options(&f, "alice", Choice::Latest))
        .unwrap()
        .execute()
        .unwrap();
    assert_eq!(outcome.failures(), 1);
    let r = &outcome.restored[0];
    assert_eq!(r.old_volume, OldVolume::InUse);
    let err = r.error.as_deref().unwrap();
    assert!(err.contains("failed to start"), "{err}");
    assert!(err.contains(&old), "{err}");
    let m = &f.machines(&app)[0];
    assert_eq!(
        m["config"]["mounts"][0]["volume"],
        old.as_str(),
        "mounted on the old volume again"
    );
    assert!(m["config"]["metadata"]["flotilla_retired_volumes"].is_null());
    let vols = f.volumes(&app);
    let kept = vols.iter().find(|v| v["id"] == old.as_str()).unwrap();
    assert_eq!(
        kept["content"], "orders-v2-broken",
        "the old data is untouched"
    );
}
