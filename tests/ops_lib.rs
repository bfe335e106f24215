//! The operations layer driven as a library, without the binary: validation, plans
//! against an empty organization and against state files, costs with a budget, and a
//! plan, a saved plan's apply and a re-plan against the in-process simulator over
//! loopback. Outcomes are asserted as typed values, not as text.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod libsim;

use std::path::PathBuf;

use flotilla::cost::Budget;
use flotilla::ops::apply::Readiness;
use flotilla::ops::plan::Source;
use flotilla::ops::{self, ErrorKind};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const SPEC: &str = "\
version: 1
org: ops-lib
defaults:
  image: registry.fly.io/ops-lib:1.0.0
  region: iad
  size: shared-cpu-1x
  memory: 256mb
  secrets:
    API_KEY: { file: api-key.txt }
    UNSET: { env: FLOTILLA_OPS_LIB_TEST_NEVER_SET }
  volume: { name: data, size_gb: 1, mount: /data }
tenants:
  - name: alice
  - name: bob
";

/// A scratch directory holding the small spec above and one of its secret files.
fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    std::fs::write(dir.path().join("api-key.txt"), "key-for-tests\n").unwrap();
    (dir, spec)
}

#[test]
fn validate_counts_a_valid_spec_and_reports_an_invalid_one() {
    let (dir, spec) = scratch();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\norg: x\ntenants: 3\n").unwrap();
    let out = ops::validate::run(&ops::validate::Options {
        specs: vec![spec, bad],
        ..Default::default()
    });
    assert!(!out.all_valid());
    let (counts, warnings) = out.files[0].result.as_ref().unwrap();
    assert_eq!((counts.tenants, counts.apps, counts.machines), (2, 2, 2));
    assert_eq!((counts.volumes, counts.secrets), (2, 4));
    assert!(warnings.is_empty(), "{warnings}");
    let errors = out.files[1].result.as_ref().unwrap_err();
    assert!(errors.has_errors());
}

#[test]
fn a_plan_against_an_empty_org_creates_everything() {
    let out = ops::plan::run(&ops::plan::Options {
        spec: root().join("specs/jarvis.yaml"),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(out.source, Source::Empty);
    assert_eq!(out.document.observed_source, "empty");
    assert!(out.has_changes() && !out.has_errors());
    let s = &out.document.summary;
    assert_eq!((s.update, s.replace, s.delete), (0, 0, 0));
    assert_eq!(s.create, 140);
    assert!(out.document.cost.is_some(), "{}", out.diagnostics);
    assert!(out.saved.is_none());
}

#[test]
fn plans_against_state_files() {
    let plan = |state: &str| {
        ops::plan::run(&ops::plan::Options {
            spec: root().join("specs/jarvis.yaml"),
            state: Some(root().join("tests/states").join(state)),
            ..Default::default()
        })
        .unwrap()
    };
    let applied = plan("jarvis-applied.json");
    assert!(matches!(&applied.source, Source::State(p) if p.ends_with("jarvis-applied.json")));
    assert!(!applied.has_changes());
    assert_eq!(applied.document.summary.noop, 140);
    let drift = plan("jarvis-drift.json");
    assert!(drift.has_changes());
    assert!(drift.document.actionable().count() > 0);
}

#[test]
fn planning_errors_are_typed() {
    let unknown = ops::plan::run(&ops::plan::Options {
        spec: root().join("specs/jarvis.yaml"),
        tenants: vec!["nobody-at-all".into()],
        ..Default::default()
    })
    .err()
    .unwrap();
    assert_eq!(unknown.kind, ErrorKind::Failed);
    // (after the spec's warning that its secret file is not there)
    assert!(
        unknown
            .diagnostics
            .errors()
            .any(|d| d.message.contains("--tenant nobody-at-all"))
    );

    let (dir, _) = scratch();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\norg: x\ntenants: 3\n").unwrap();
    let invalid = ops::plan::run(&ops::plan::Options {
        spec: bad,
        ..Default::default()
    })
    .err()
    .unwrap();
    assert!(invalid.summary.unwrap().contains("is not valid"));

    // Apply refuses to run without an organization to act on.
    let e = ops::apply::prepare(&ops::apply::Options {
        input: root().join("specs/jarvis.yaml"),
        ..Default::default()
    })
    .err()
    .unwrap();
    assert!(e.diagnostics.0[0].message.contains("needs an organization"));
}

#[test]
fn a_budget_guardrail_is_part_of_the_cost_outcome() {
    let out = ops::cost::run(&ops::cost::Options {
        spec: root().join("specs/jarvis.yaml"),
        budget: Budget {
            max_monthly: Some(rust_decimal::Decimal::ONE),
            max_increase: None,
        },
        ..Default::default()
    })
    .unwrap();
    assert!(out.report.total > rust_decimal::Decimal::ONE);
    assert!(out.exceeded().is_some());
}

#[test]
fn plan_then_apply_a_saved_plan_against_the_simulator() {
    let (dir, spec) = scratch();
    let saved = dir.path().join("fleet.plan.json");
    let plan_opts = ops::plan::Options {
        spec: spec.clone(),
        target: libsim::target(dir.path()),
        out: Some(saved.clone()),
        ..Default::default()
    };
    let planned = ops::plan::run(&plan_opts).unwrap();
    assert!(matches!(&planned.source, Source::Live(s) if s.starts_with("sim:")));
    assert_eq!(planned.document.summary.create, 12);
    assert_eq!(planned.saved.as_deref(), Some(saved.as_path()));
    // The unset secret is replaced by a placeholder in the simulator, with a warning.
    assert!(
        planned
            .diagnostics
            .0
            .iter()
            .any(|d| d.message.contains("placeholders")),
        "{}",
        planned.diagnostics
    );

    let apply_opts = ops::apply::Options {
        input: saved,
        target: libsim::target(dir.path()),
        journal: Some(dir.path().join("journal.jsonl")),
        quiet: true,
        ..Default::default()
    };
    let prepared = ops::apply::prepare(&apply_opts).unwrap();
    assert!(!prepared.needs_confirmation(), "a saved plan was reviewed");
    assert_eq!(prepared.org(), "ops-lib");
    assert!(matches!(
        prepared.readiness().unwrap(),
        Readiness::Ready { operations } if operations > 0
    ));
    let report = prepared.execute().unwrap();
    assert!(report.ok(), "{}", report.summary.text());
    assert_eq!(report.summary.created, 12);
    assert!(std::fs::metadata(&report.journal).unwrap().len() > 0);

    // The simulator kept its state: nothing is left to do.
    let again = ops::plan::run(&ops::plan::Options {
        out: None,
        ..plan_opts
    })
    .unwrap();
    assert!(!again.has_changes(), "{:?}", again.document.summary);
    let prepared = ops::apply::prepare(&ops::apply::Options {
        input: spec,
        ..apply_opts
    })
    .unwrap();
    assert!(prepared.needs_confirmation());
    assert_eq!(prepared.readiness().unwrap(), Readiness::NothingToDo);
}
