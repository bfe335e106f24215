//! Snapshot tests of every user-facing rendering, driven through the real binary: `plan`
//! (text, Markdown, JSON) for create, update, replace, delete, adoption, unmanaged and
//! blocked cases; `cost` (text, Markdown); `validate` for every invalid example; what-if
//! reports; apply summaries against the simulator. They pin the output byte for byte, so
//! a change to any rendering shows up as a reviewable diff in `tests/snapshots/`.
//!
//! Each snapshot holds the exit code, standard output and standard error of one run.
//! Only what varies between runs is redacted (timestamps, run ids, durations, request
//! counts, simulator-assigned ids, temporary paths). Review or update snapshots with
//! `cargo insta review`, or `INSTA_UPDATE=always cargo test --test snapshots` and read
//! the diff.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::{plain_bin, root};

/// A date every run prices with, so a new price table does not change these renderings.
const PRICING_DATE: &str = "2026-11-01";

/// The binary with colours off and no credentials or secret values from the environment.
fn flotilla() -> assert_cmd::Command {
    let mut c = plain_bin();
    for var in [
        "FLY_API_TOKEN",
        "FLY_API_HOSTNAME",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
    ] {
        c.env_remove(var);
    }
    c
}

/// Exit code, stdout and stderr of one run, as one reviewable text.
fn transcript(out: &Output) -> String {
    let code = out
        .status
        .code()
        .map_or_else(|| "signal".to_string(), |c| c.to_string());
    format!(
        "exit: {code}\n--- stdout ---\n{}--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(args: &[&str]) -> String {
    transcript(&flotilla().args(args).output().unwrap())
}

/// Escapes `s` for use as a literal in an insta filter.
fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Snapshots `value` under `name` with the given (regex, replacement) filters.
fn snap(name: &str, value: &str, filters: &[(&str, &str)]) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    for (re, with) in filters {
        settings.add_filter(re, *with);
    }
    settings.bind(|| insta::assert_snapshot!(name, value));
}

// ---------------------------------------------------------------- plan

/// The only volatile part of a plan: when it was made.
const PLAN_FILTERS: &[(&str, &str)] =
    &[(r#""created_at": "[^"]+""#, r#""created_at": "[timestamp]""#)];

const FORMATS: [&str; 3] = ["text", "markdown", "json"];

fn plan(name: &str, spec: &str, state: Option<&str>, extra: &[&str]) {
    for format in FORMATS {
        let mut args = vec!["plan", spec, "--pricing-date", PRICING_DATE];
        if let Some(state) = state {
            args.extend(["--state", state]);
        }
        args.extend(extra);
        args.extend(["--format", format]);
        snap(&format!("plan_{name}_{format}"), &run(&args), PLAN_FILTERS);
    }
}

const DRIFT: &str = "tests/states/jarvis-drift.json";

#[test]
fn plan_create_into_an_empty_org() {
    plan("create_jarvis", "specs/jarvis.yaml", None, &[]);
    plan("create_hybrid", "specs/hybrid.yaml", None, &[]);
    plan("create_workspaces", "specs/workspaces.yaml", None, &[]);
}

#[test]
fn plan_without_changes() {
    let applied = Some("tests/states/jarvis-applied.json");
    plan("noop_jarvis", "specs/jarvis.yaml", applied, &[]);
}

#[test]
fn plan_drift_in_full() {
    // Updates, a replace, deletes, an adoption, an unmanaged Machine, prevent_destroy.
    plan("drift_jarvis", "specs/jarvis.yaml", Some(DRIFT), &[]);
}

#[test]
fn plan_detail_prints_every_resource() {
    let args = [
        "plan",
        "specs/jarvis.yaml",
        "--pricing-date",
        PRICING_DATE,
        "--state",
        DRIFT,
        "--detail",
    ];
    snap("plan_drift_jarvis_detail_text", &run(&args), PLAN_FILTERS);
}

#[test]
fn plan_drift_case_by_case() {
    let cases = [
        ("update_restart", "bob"),
        ("replace_blocked", "carol"),
        ("update_volume_extend", "dave"),
        ("update_backup_policy", "erin"),
        ("adoption", "frank"),
        ("unmanaged", "alice"),
    ];
    for (name, tenant) in cases {
        let spec = "specs/jarvis.yaml";
        plan(name, spec, Some(DRIFT), &["--tenant", tenant]);
    }
}

#[test]
fn plan_refuses_a_volume_shrink() {
    let out = run(&[
        "plan",
        "specs/jarvis.yaml",
        "--state",
        "tests/states/jarvis-shrink.json",
        "--pricing-date",
        PRICING_DATE,
    ]);
    snap("plan_volume_shrink_error", &out, &[]);
}

// ---------------------------------------------------------------- cost

#[test]
fn cost_reports() {
    let cases: [(&str, &[&str]); 7] = [
        ("jarvis", &["specs/jarvis.yaml"]),
        (
            "usage_file",
            &[
                "tests/fixtures/cost/head.yaml",
                "--usage",
                "tests/fixtures/cost/usage.yaml",
            ],
        ),
        ("hybrid", &["specs/hybrid.yaml"]),
        ("situation_2_4h", &["examples/costs/situation-2-4h.yaml"]),
        (
            "delta",
            &[
                "tests/fixtures/cost/head.yaml",
                "--base",
                "tests/fixtures/cost/base.yaml",
            ],
        ),
        (
            "over_budget",
            &["specs/jarvis.yaml", "--max-monthly", "100"],
        ),
        (
            "over_increase",
            &[
                "tests/fixtures/cost/head.yaml",
                "--base",
                "tests/fixtures/cost/base.yaml",
                "--max-increase",
                "10%",
            ],
        ),
    ];
    for (name, args) in cases {
        for format in ["text", "markdown"] {
            let mut all = vec!["cost"];
            all.extend(args);
            all.extend(["--pricing-date", PRICING_DATE, "--format", format]);
            snap(&format!("cost_{name}_{format}"), &run(&all), &[]);
        }
    }
}

/// The JSON contract of a delta (nested resources, allocated breakdowns, reasons) and
/// the usage template.
#[test]
fn cost_json_and_usage_template() {
    let json = run(&[
        "cost",
        "tests/fixtures/cost/head.yaml",
        "--base",
        "tests/fixtures/cost/base.yaml",
        "--usage",
        "tests/fixtures/cost/usage.yaml",
        "--pricing-date",
        PRICING_DATE,
        "--format",
        "json",
    ]);
    snap("cost_delta_usage_json", &json, &[]);
    let template = run(&["cost", "tests/fixtures/cost/head.yaml", "--usage-template"]);
    snap("cost_usage_template", &template, &[]);
}

// ---------------------------------------------------------------- validate

#[test]
fn validate_every_invalid_example() {
    let dir = root().join("examples/invalid");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 20, "{names:?}");
    for name in names {
        let file = format!("examples/invalid/{name}.yaml");
        let out = run(&["validate", &file]);
        snap(&format!("validate_{}", name.replace('-', "_")), &out, &[]);
    }
}

#[test]
fn validate_shipped_specs_and_json_diagnostics() {
    let specs = [
        "validate",
        "specs/hybrid.yaml",
        "specs/jarvis.yaml",
        "specs/workspaces.yaml",
    ];
    snap("validate_specs", &run(&specs), &[]);
    let json = [
        "validate",
        "examples/invalid/unknown-key.yaml",
        "examples/invalid/wrong-type.yaml",
        "--format",
        "json",
    ];
    snap("validate_json", &run(&json), &[]);
}

// ---------------------------------------------------------------- what-if

const WHATIF: [&str; 4] = ["containers", "hybrid", "shared-server", "today"];

#[test]
fn whatif_reports() {
    for name in WHATIF {
        let file = format!("examples/whatif/{name}.yaml");
        for format in ["markdown", "text"] {
            let out = run(&["whatif", &file, "--format", format]);
            let snapshot = format!("whatif_{}_{format}", name.replace('-', "_"));
            snap(&snapshot, &out, &[]);
        }
    }
    let json = ["whatif", "examples/whatif/hybrid.yaml", "--format", "json"];
    snap("whatif_hybrid_json", &run(&json), &[]);
}

// ---------------------------------------------------------------- apply

/// A scratch directory holding a copy of specs/jarvis.yaml and the simulator's state file.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("specs")).unwrap();
        std::fs::copy(
            root().join("specs/jarvis.yaml"),
            dir.path().join("specs/jarvis.yaml"),
        )
        .unwrap();
        Scratch { dir }
    }

    fn edit_spec(&self, edit: impl FnOnce(String) -> String) {
        let path = self.dir.path().join("specs/jarvis.yaml");
        let spec = std::fs::read_to_string(&path).unwrap();
        let edited = edit(spec.clone());
        assert_ne!(spec, edited, "the edit changed nothing");
        std::fs::write(path, edited).unwrap();
    }

    fn apply(&self, extra: &[&str]) -> String {
        let mut args = vec!["--yes"];
        args.extend(extra);
        self.apply_asking(&args)
    }

    /// An apply that asks for confirmation unless `extra` says `--yes` (without a
    /// terminal it refuses).
    fn apply_asking(&self, extra: &[&str]) -> String {
        let out = flotilla()
            .current_dir(self.dir.path())
            .args(["apply", "specs/jarvis.yaml", "--sim", "sim.json"])
            .args(["--quiet", "--time-scale", "1000"])
            .args(["--pricing-date", PRICING_DATE])
            .args(extra)
            .output()
            .unwrap();
        transcript(&out)
    }

    fn snap(&self, name: &str, value: &str) {
        let tmp = literal(&self.dir.path().to_string_lossy());
        let mut filters = apply_filters();
        filters.push((tmp.as_str(), "[tmp]"));
        snap(name, value, &filters);
    }
}

/// What varies between applies: run ids, timings, request counts (retries after a 429
/// depend on timing) and the ids the simulator assigns.
fn apply_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"journal/\d{8}T\d{6}\.\d{3}Z\.jsonl", "journal/[run].jsonl"),
        (r"· \d+\.\d s ·", "· [duration] ·"),
        (
            r"\d+ requests \(\d+ mutating, \d+ retried, \d+ rate-limited",
            "[n] requests ([n] mutating, [n] retried, [n] rate-limited",
        ),
        (
            r#""(wall_ms|requests|mutating_requests|rate_limited|retries)": \d+"#,
            r#""$1": "[n]""#,
        ),
        (r"\bvol_[0-9a-z]{16}\b", "vol_[id]"),
        (r"(in app [a-z0-9-]+) \([0-9a-z]{16}\)", "$1 ([app-id])"),
        (r"\b[0-9a-f]{14}\b", "[machine-id]"),
        // Addresses are drawn in the order the concurrent assignments arrive.
        (r"\b2001:db8::[0-9a-f]+\b", "2001:db8::[n]"),
        (r"\b198\.51\.100\.\d+\b", "198.51.100.[n]"),
    ]
}

#[test]
fn apply_summaries_against_the_simulator() {
    let s = Scratch::new();
    s.snap("apply_create_text", &s.apply(&[]));
    s.snap("apply_noop_text", &s.apply(&[]));

    s.edit_spec(|y| y.replace("my-jarvis:1.4.43", "my-jarvis:1.4.44"));
    let rollout = ["--canary", "2", "--max-parallel-updates", "6"];
    let mut args = rollout.to_vec();
    args.push("--json-summary");
    s.snap("apply_rollout_json_summary", &s.apply(&args));

    s.edit_spec(|y| y.replace("  - { name: staging, tier: dev }\n", ""));
    s.snap("apply_delete_refused_text", &s.apply(&[]));
    let allow = ["--allow-destroy", "--allow-data-loss", "--json-summary"];
    s.snap("apply_delete_json_summary", &s.apply(&allow));

    s.edit_spec(|y| y.replace("  - { name: niaj, tier: customer }\n", ""));
    let allow = ["--allow-destroy", "--allow-data-loss"];
    s.snap("apply_prevent_destroy_text", &s.apply(&allow));
}

#[test]
fn apply_repeats_the_warnings_beside_the_prompt() {
    let s = Scratch::new();
    s.apply(&[]);
    s.edit_spec(|y| {
        y.replace("my-jarvis:1.4.43", "my-jarvis:1.4.44")
            .replace("  - { name: staging, tier: dev }\n", "")
    });
    // Without a terminal the question cannot be asked: the recap, then the refusal.
    let allow = ["--allow-destroy", "--allow-data-loss"];
    s.snap("apply_confirm_recap_text", &s.apply_asking(&allow));
    let mut detail = allow.to_vec();
    detail.push("--detail");
    s.snap("apply_detail_refused_text", &s.apply_asking(&detail));
}

#[test]
fn apply_create_json_summary() {
    let s = Scratch::new();
    s.snap("apply_create_json_summary", &s.apply(&["--json-summary"]));
    assert!(Path::new(&s.dir.path().join("sim.json")).exists());
}
