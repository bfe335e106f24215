//! The data commands as library calls against the in-process simulator over loopback:
//! an applied fleet's volumes get on-demand snapshots (under the fleet lock), and the
//! listing shows them per tenant volume with their retention left.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use flotilla::ops;
use flotilla::ops::target::TargetOptions;

const SPEC: &str = "\
version: 1
org: data-ops
defaults:
  image: registry.fly.io/data-ops:1.0.0
  region: ams
  size: shared-cpu-1x
  memory: 256mb
  volume: { name: data, size_gb: 2, mount: /data, snapshot_retention: 7 }
tenants:
  - name: alice
  - name: bob
";

fn sim_target(dir: &Path) -> TargetOptions {
    TargetOptions {
        sim: Some(dir.join("sim.json")),
        time_scale: 50.0,
        ..TargetOptions::default()
    }
}

fn applied() -> (tempfile::TempDir, PathBuf) {
    applied_at(50.0)
}

/// An applied fleet on a simulator running `scale` API seconds per second.
fn applied_at(scale: f64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let prepared = ops::apply::prepare(&ops::apply::Options {
        input: spec.clone(),
        target: TargetOptions {
            time_scale: scale,
            ..sim_target(dir.path())
        },
        quiet: true,
        ..Default::default()
    })
    .unwrap();
    let report = prepared.execute().unwrap();
    assert!(report.ok(), "{}", report.summary.text());
    (dir, spec)
}

#[test]
fn snapshots_are_taken_per_tenant_volume_and_listed_with_retention_left() {
    let (dir, spec) = applied();
    let opts = ops::snapshot::Options {
        spec: spec.clone(),
        tenants: vec!["alice".into()],
        target: sim_target(dir.path()),
        ..Default::default()
    };
    let taken = ops::snapshot::take(&opts).unwrap();
    assert_eq!(taken.failures(), 0);
    assert_eq!(taken.taken.len(), 1, "only alice's volume");
    let t = &taken.taken[0];
    assert_eq!(t.volume.tenant, "alice");
    let snap = t.snapshot.as_ref().unwrap();
    assert!(snap.is_complete());
    assert_eq!(snap.retention_days, Some(7));

    let listed = ops::snapshot::list(&ops::snapshot::Options {
        tenants: Vec::new(),
        ..opts
    })
    .unwrap();
    assert_eq!(listed.volumes.len(), 2, "both tenants' volumes");
    let alice = &listed.volumes[0];
    assert_eq!(alice.volume.tenant, "alice");
    assert!(alice.snapshots.iter().any(|s| s.id == snap.id));
    let left = alice.snapshots[0].retention_left_hours.unwrap();
    assert!((167..=168).contains(&left), "{left}");
    assert!(
        listed.volumes[1].snapshots.is_empty(),
        "bob was not snapshotted"
    );
}

#[test]
fn retention_left_is_counted_on_the_simulators_scaled_clock() {
    // An API hour is a real second: the simulator expires the 7-day snapshot after 168
    // real seconds, and the listing counts down at the same pace.
    const SCALE: f64 = 3600.0;
    let (dir, spec) = applied_at(SCALE);
    let opts = ops::snapshot::Options {
        spec,
        tenants: vec!["alice".into()],
        target: TargetOptions {
            time_scale: SCALE,
            ..sim_target(dir.path())
        },
        ..Default::default()
    };
    let taken = ops::snapshot::take(&opts).unwrap();
    assert_eq!(taken.failures(), 0);
    // At least three API hours pass (a real clock would count three seconds).
    std::thread::sleep(std::time::Duration::from_secs(3));
    let listed = ops::snapshot::list(&opts).unwrap();
    let left = listed.volumes[0].snapshots[0].retention_left_hours.unwrap();
    assert!(left <= 165, "{left} hours left of 168 after 3 API hours");
}

#[test]
fn an_unknown_tenant_is_refused_before_connecting() {
    let (dir, spec) = applied();
    let e = ops::snapshot::take(&ops::snapshot::Options {
        spec,
        tenants: vec!["carol".into()],
        target: sim_target(dir.path()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        e.diagnostics.to_string().contains("--tenant carol"),
        "{}",
        e.diagnostics
    );
}
