//! `plan` guardrails, as on `cost`: `--max-monthly`, `--max-increase` (over the current
//! fleet) and `--deny-destroy` end a plan with exit code 3 and one line naming the limit
//! and the figures; the plan is still printed.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::plain_bin;

const PRICING_DATE: &str = "2026-02-01";

/// Runs `plan specs/jarvis.yaml` against `state` (an empty org when `None`) with the
/// extra arguments: (exit code, stdout, stderr).
fn plan(state: Option<&str>, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = plain_bin();
    cmd.args(["plan", "specs/jarvis.yaml", "--pricing-date", PRICING_DATE]);
    if let Some(s) = state {
        cmd.args(["--state", &format!("tests/states/{s}")]);
    }
    let out = cmd.args(extra).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn max_monthly_exceeded_exits_3_naming_limit_and_cost() {
    let (code, stdout, stderr) = plan(None, &["--max-monthly", "100"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stdout.contains("Plan:"),
        "the plan is still shown: {stdout}"
    );
    assert!(
        stderr.contains("monthly cost $159.90 exceeds --max-monthly $100.00"),
        "{stderr}"
    );
    assert!(stderr.contains("guardrail exceeded:"), "{stderr}");
}

#[test]
fn max_monthly_within_exits_0() {
    let (code, _, stderr) = plan(None, &["--max-monthly", "200"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("exceeded"), "{stderr}");
}

#[test]
fn max_increase_is_over_the_current_fleet() {
    // An empty org costs nothing yet: any increase exceeds a percentage.
    let (code, _, stderr) = plan(None, &["--max-increase", "10%"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("monthly increase +$159.90 (from $0.00) exceeds --max-increase 10%"),
        "{stderr}"
    );
    let (code, _, stderr) = plan(None, &["--max-increase", "$150"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("exceeds --max-increase $150.00"),
        "{stderr}"
    );
    // The drifted fleet costs more than the spec's: the plan lowers the cost.
    let (code, _, stderr) = plan(Some("jarvis-drift.json"), &["--max-increase", "0%"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn deny_destroy_refuses_deletes_and_replaces() {
    let (code, stdout, stderr) = plan(Some("jarvis-drift.json"), &["--deny-destroy"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stdout.contains("destroy"), "{stdout}");
    assert!(
        stderr.contains("the plan deletes or replaces 9 resources ("),
        "{stderr}"
    );
    assert!(stderr.contains("refused by --deny-destroy"), "{stderr}");
    assert!(stderr.contains("and 4 more"), "{stderr}");
    // Updates alone pass.
    let (code, _, stderr) = plan(Some("jarvis-shrink.json"), &["--deny-destroy"]);
    assert_eq!(
        code, 1,
        "a shrink is a plan error, not a guardrail: {stderr}"
    );
    let (code, _, stderr) = plan(Some("jarvis-applied.json"), &["--deny-destroy"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn guardrails_combine_into_one_line_and_win_over_detailed_exitcode() {
    let (code, _, stderr) = plan(
        Some("jarvis-drift.json"),
        &[
            "--deny-destroy",
            "--max-monthly",
            "10",
            "--detailed-exitcode",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 3, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("guardrail exceeded"))
        .unwrap();
    assert!(
        line.contains("exceeds --max-monthly $10.00; the plan deletes"),
        "{line}"
    );
}
