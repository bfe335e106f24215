//! The library's operations against the in-process simulator kept in a scratch
//! directory (`DIR/sim.json`, time scaled 50×), for the tests that need no process
//! boundary: one target, one plan, one apply.
#![allow(dead_code)]

use std::path::Path;

use flotilla::ops;
use flotilla::ops::target::TargetOptions;

/// The simulator persisted in `dir`, 50 times faster than Fly.
pub fn target(dir: &Path) -> TargetOptions {
    TargetOptions {
        sim: Some(dir.join("sim.json")),
        time_scale: 50.0,
        ..TargetOptions::default()
    }
}

/// Plans `spec` against the simulator in `dir`; the plan has no errors.
pub fn plan(spec: &Path, dir: &Path) -> ops::plan::Outcome {
    let out = ops::plan::run(&ops::plan::Options {
        spec: spec.to_path_buf(),
        target: target(dir),
        ..Default::default()
    })
    .unwrap();
    assert!(!out.has_errors(), "{:?}", out.document.errors);
    out
}

/// Applies `input` (a spec or a saved plan) to the simulator in `dir`; every operation
/// succeeds.
pub fn apply(input: &Path, dir: &Path, allow_destroy: bool) {
    let prepared = ops::apply::prepare(&ops::apply::Options {
        input: input.to_path_buf(),
        target: target(dir),
        quiet: true,
        allow_destroy,
        ..Default::default()
    })
    .unwrap();
    let report = prepared.execute().unwrap();
    assert!(report.ok(), "{}", report.summary.text());
}
