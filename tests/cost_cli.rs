//! `flotilla cost` and the cost footer of `flotilla plan`, driven through the binary.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

const FIX: &str = "tests/fixtures/cost";

mod common;
use common::plain_bin as flotilla;

fn cost_json(args: &[&str]) -> Value {
    let out = flotilla()
        .arg("cost")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn usd(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

#[test]
fn always_on_machine_with_volume_is_11_14() {
    // 1.94 + 1.75 GB × 5.00 = 10.69; + 3 GB × 0.15 = 0.45 → 11.14.
    let j = cost_json(&[
        &format!("{FIX}/always-on.yaml"),
        "--pricing-date",
        "2026-02-01",
    ]);
    assert_eq!(j["monthly_usd"].to_string(), "11.14");
    assert_eq!(j["by_item"]["compute"].to_string(), "1.94");
    assert_eq!(j["by_item"]["ram"].to_string(), "8.75");
    assert_eq!(j["by_item"]["volume"].to_string(), "0.45");
}

#[test]
fn suspended_machine_is_1_91_plus_volume() {
    // 10.69 × 4/24 + 0.15 × 20/24 = 1.781666… + 0.125 = 1.906666…; + 0.45 = 2.356666…
    let j = cost_json(&[
        &format!("{FIX}/suspend.yaml"),
        "--pricing-date",
        "2026-02-01",
    ]);
    assert_eq!(j["monthly_usd"].to_string(), "2.3567");
    let machine: f64 = j["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["address"] == "tenant.alice.machine[0]")
        .map(|l| usd(&l["monthly_usd"]))
        .sum();
    assert!((machine - 1.9067).abs() < 0.0002, "{machine}");
}

#[test]
fn json_has_the_contract_fields_and_traceable_lines() {
    let j = cost_json(&["specs/jarvis.yaml"]);
    for k in [
        "pricing_version",
        "monthly_usd",
        "by_tenant",
        "by_kind",
        "lines",
        "assumptions",
    ] {
        assert!(j.get(k).is_some(), "missing {k}");
    }
    assert_eq!(j["assumptions"]["hours_per_month"], 720);
    assert_eq!(j["assumptions"]["month_days"], 30);
    let cites = j["citations"].as_object().unwrap();
    for l in j["lines"].as_array().unwrap() {
        for k in [
            "address",
            "kind",
            "tenant",
            "description",
            "monthly_usd",
            "quantity",
            "unit",
            "unit_price_usd",
        ] {
            assert!(l.get(k).is_some(), "line lacks {k}: {l}");
        }
        let sources = l["sources"].as_array().unwrap();
        assert!(!sources.is_empty(), "{l}");
        for s in sources {
            let c = &cites[s.as_str().unwrap()];
            assert!(c["url"].as_str().unwrap().starts_with("https://"), "{c}");
        }
    }
    // The lines add up to the total (to the cent after JSON's 4-decimal rounding).
    let sum: f64 = j["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| usd(&l["monthly_usd"]))
        .sum();
    assert!((sum - usd(&j["monthly_usd"])).abs() < 0.01);
    let tenants: f64 = j["by_tenant"].as_object().unwrap().values().map(usd).sum();
    assert!((tenants - usd(&j["monthly_usd"])).abs() < 0.0001);
}

#[test]
fn base_gives_the_delta_by_tenant() {
    let j = cost_json(&[
        &format!("{FIX}/head.yaml"),
        "--base",
        &format!("{FIX}/base.yaml"),
    ]);
    assert_eq!(j["base_monthly_usd"].to_string(), "22.28");
    assert_eq!(j["monthly_usd"].to_string(), "44.184");
    assert_eq!(j["delta_usd"].to_string(), "21.904");
    let changed: Vec<(String, String)> = j["changes"]["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [
            ("carol".to_string(), "added".to_string()),
            ("bob".to_string(), "changed".to_string()),
            ("(org)".to_string(), "changed".to_string())
        ]
    );
}

#[test]
fn guardrails_exit_3_with_a_one_line_reason() {
    let head = format!("{FIX}/head.yaml");
    let base = format!("{FIX}/base.yaml");
    let out = flotilla()
        .args(["cost", &head, "--base", &base, "--max-increase", "50%"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "budget exceeded: monthly increase +$21.90 (+98.3%) exceeds --max-increase 50%"
    );
    let out = flotilla()
        .args(["cost", &head, "--max-monthly", "40", "--format", "markdown"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("budget exceeded: monthly cost $44.18 exceeds --max-monthly $40.00"),
        "{md}"
    );
    // Within limits: exit 0.
    flotilla()
        .args([
            "cost",
            &head,
            "--base",
            &base,
            "--max-increase",
            "25",
            "--max-monthly",
            "$45",
        ])
        .assert()
        .code(0);
    // --max-increase needs a base.
    let out = flotilla()
        .args(["cost", &head, "--max-increase", "5%"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: --max-increase needs a base to compare with\n  = hint: pass --base"),
        "{err}"
    );
    // A bad limit is refused by the argument parser.
    flotilla()
        .args(["cost", &head, "--max-increase", "ten"])
        .assert()
        .code(1);
}

#[test]
fn markdown_is_a_pull_request_comment() {
    let out = flotilla()
        .args([
            "cost",
            &format!("{FIX}/head.yaml"),
            "--base",
            &format!("{FIX}/base.yaml"),
            "--format",
            "markdown",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.starts_with("<!-- flotilla-cost-preview -->"));
    assert!(
        md.contains("**Monthly cost: $22.28 → $44.18 per month (+$21.90, +98.3%)**"),
        "{md}"
    );
    assert!(
        md.contains("| carol | $0.00 | $11.43 | +$11.43 | added |"),
        "{md}"
    );
    assert!(md.contains("<details><summary>Full breakdown"));
    assert!(md.contains("<details><summary>Assumptions</summary>"));
    assert!(md.contains("pricing fly/"));
}

#[test]
fn pricing_date_changes_only_snapshot_charges() {
    let a = cost_json(&["specs/jarvis.yaml", "--pricing-date", "2025-06-01"]);
    let b = cost_json(&["specs/jarvis.yaml", "--pricing-date", "2026-02-01"]);
    assert_eq!(a["pricing_version"], "2024-11-01");
    assert_eq!(b["pricing_version"], "2026-01-01");
    let snap = |j: &Value| {
        usd(&j["by_item"]["snapshot"])
            + j["by_item"]
                .get("snapshot_allowance")
                .map(usd)
                .unwrap_or(0.0)
    };
    assert_eq!(snap(&a), 0.0);
    let diff = usd(&b["monthly_usd"]) - usd(&a["monthly_usd"]);
    assert!((diff - snap(&b)).abs() < 0.0001, "{diff} vs {}", snap(&b));
    for item in ["compute", "ram", "volume", "egress"] {
        assert_eq!(a["by_item"][item], b["by_item"][item], "{item}");
    }
}

/// Exports the embedded tables, edits the 2026-01-01 regions.csv, prices jarvis.yaml
/// with them, expects exit code 1 and returns stderr.
fn cost_with_edited_regions(edit: impl Fn(&str) -> String) -> String {
    let tmp = tempfile::tempdir().unwrap();
    flotilla()
        .args(["pricing", "export"])
        .arg(tmp.path())
        .assert()
        .success();
    let csv = tmp.path().join("fly/2026-01-01/regions.csv");
    std::fs::write(&csv, edit(&std::fs::read_to_string(&csv).unwrap())).unwrap();
    let out = flotilla()
        .args(["cost", "specs/jarvis.yaml", "--pricing"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn no_version_in_force_and_bad_tables_are_clear_errors() {
    let out = flotilla()
        .args(["cost", "specs/jarvis.yaml", "--pricing-date", "2020-01-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("no pricing version is in force on 2020-01-01"),
        "{e}"
    );

    let e = cost_with_edited_regions(|t| {
        t.replacen(
            "iad,Ashburn,north_america,1.00",
            "iad,Ashburn,north_america,one",
            1,
        )
    });
    assert!(
        e.contains("column `compute_multiplier`: `one` is not a number"),
        "{e}"
    );
    assert!(e.contains("fly/2026-01-01/regions.csv:10"), "{e}");
    assert!(e.contains("hint:"), "{e}");
}

#[test]
fn a_region_without_a_price_is_an_error_not_a_zero() {
    // A user table that lacks iad: pricing a Machine there fails, never costs $0.
    let e = cost_with_edited_regions(|t| {
        t.lines()
            .filter(|l| !l.starts_with("iad,"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    assert!(
        e.contains("region `iad` has no price in pricing 2026-01-01 (regions.csv)"),
        "{e}"
    );
    assert!(e.contains("tenant.alice.machine[0]"), "{e}");
}

#[test]
fn plan_ends_with_the_monthly_cost() {
    let out = flotilla()
        .args(["plan", "specs/jarvis.yaml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Cost: $0.00 → $159.38 per month (+$159.38)"),
        "{text}"
    );
    assert!(text.contains("a month is 30 days (720 h)"), "{text}");
    let out = flotilla()
        .args(["plan", "specs/jarvis.yaml", "--format", "json"])
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["cost"]["monthly_after_usd"].to_string(), "159.376");
    let m = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "tenant.alice.machine[0]")
        .unwrap();
    assert_eq!(m["monthly_cost_after_usd"].to_string(), "10.89");
}

#[test]
fn situation_2_examples_match_the_documented_figures() {
    // examples/costs/situation-2.md: $168.22 (claimed ≈ $81) and $115.16 (claimed ≈ $75).
    let a = cost_json(&[
        "examples/costs/situation-2-2h.yaml",
        "--pricing-date",
        "2026-02-01",
    ]);
    assert_eq!(a["monthly_usd"].to_string(), "168.2233");
    let b = cost_json(&[
        "examples/costs/situation-2-4h.yaml",
        "--pricing-date",
        "2026-02-01",
    ]);
    assert_eq!(b["monthly_usd"].to_string(), "115.1567");
}

#[test]
fn unknown_region_or_preset_lists_close_matches() {
    let out = flotilla()
        .args(["cost", &format!("{FIX}/bad-region.yaml")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("unknown region `sjx`") && e.contains("did you mean `sjc`"),
        "{e}"
    );
    assert!(
        e.contains("unknown size `shared-cpu-1`") && e.contains("`shared-cpu-1x`"),
        "{e}"
    );
}
