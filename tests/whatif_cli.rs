//! `flotilla whatif` driven through the binary: the JSON contract, agreement with
//! `flotilla cost`, the committed example reports, and bad input.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::Value;

const EXAMPLES: [&str; 4] = ["today", "containers", "hybrid", "shared-server"];

mod common;
use common::plain_bin as flotilla;

fn json(args: &[&str]) -> Value {
    let out = flotilla()
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

fn row<'a>(j: &'a Value, arch: &str, tenants: u64, hours: u64) -> &'a Value {
    j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["architecture"] == arch
                && r["tenants"] == tenants
                && r["active_hours_per_day"] == hours
        })
        .unwrap_or_else(|| panic!("no row {arch} {tenants} {hours}"))
}

/// At most 4 decimals.
fn money_ok(v: &Value) -> bool {
    let s = v.to_string();
    v.is_number() && s.split('.').nth(1).is_none_or(|d| d.len() <= 4)
}

#[test]
fn json_contract_and_situation_one_by_hand() {
    let j = json(&["whatif", "examples/whatif/today.yaml"]);
    let rows = j["rows"].as_array().unwrap();
    // 4 architectures × 4 tenant counts × 2 fractions × 2 hour settings.
    assert_eq!(rows.len(), 64);
    for r in rows {
        for key in [
            "scenario",
            "architecture",
            "tenants",
            "monthly_usd",
            "per_tenant_usd",
            "machines",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert!(
            money_ok(&r["monthly_usd"]) && money_ok(&r["per_tenant_usd"]),
            "{r}"
        );
        assert_eq!(r["scenario"], "Situation 1: an app per tenant, today");
    }
    // Today's layout, 14 tenants, from specs/jarvis.yaml's tenant alice (fly/2026-01-01):
    //   shared-cpu-1x 0.00000075 × 2,592,000 = 1.944
    //   + (2048 − 256) MB = 1.75 GB × 0.00000193 × 2,592,000 (5.00256) = 8.75448 → 10.69848
    //   3 GB volume × 0.15 = 0.45
    //   egress 10 GB × 0.02 = 0.20 (everyone active)
    //   snapshots 1 GB used × (1 + 0.05 × 13) = 1.65 GB × 0.08 = 0.132
    //   = 11.48048 a tenant; × 14 = 160.72672; the org's free 10 GB of snapshots: −0.80
    //   = 159.92672 (JSON keeps 4 decimals: 159.9267)
    let r = row(&j, "today (always on)", 14, 4);
    assert_eq!(r["monthly_usd"].to_string(), "159.9267");
    assert_eq!(r["machines"].to_string(), "14");
    // 1,000 tenants: 11,480.48 − 0.80 = 11,479.68 (their belief: ~$15,000).
    assert_eq!(
        row(&j, "today (always on)", 1000, 4)["monthly_usd"].to_string(),
        "11479.68"
    );
    for b in j["break_even"].as_array().unwrap() {
        for key in [
            "a",
            "b",
            "tenants",
            "cheaper_below",
            "cheaper_from",
            "monthly_a_usd",
            "monthly_b_usd",
        ] {
            assert!(b.get(key).is_some(), "{key} missing in {b}");
        }
    }
    assert!(!j["break_even"].as_array().unwrap().is_empty());
}

#[test]
fn whatif_and_cost_agree() {
    // The operators' second estimate, priced by `flotilla cost` from its own spec.
    let cost = json(&[
        "cost",
        "examples/costs/situation-2-4h.yaml",
        "--pricing-date",
        "2026-02-01",
    ]);
    let w = json(&["whatif", "examples/whatif/containers.yaml"]);
    let r = row(&w, "estimate 2: 512 MB, 1 GB volume, 10 GB egress", 100, 4);
    // `cost` prices one fleet, with its fleet lock sentinel; what-if architectures leave it
    // out (it is the same for all of them).
    let lock = cost["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["address"] == "org.fleet-lock")
        .unwrap();
    assert_eq!(lock["monthly_usd"].to_string(), "0.0008");
    let fleet = cost["monthly_usd"].as_f64().unwrap() - lock["monthly_usd"].as_f64().unwrap();
    assert!(
        (r["monthly_usd"].as_f64().unwrap() - fleet).abs() < 1e-6,
        "{r} {cost}"
    );
    // As in cost_cli: 5.69592 + 100 × 1.00744 + 8.8 = 115.23992.
    assert_eq!(r["monthly_usd"].to_string(), "115.2399");
}

#[test]
fn committed_example_reports_are_current() {
    for name in EXAMPLES {
        let out = flotilla()
            .args([
                "whatif",
                &format!("examples/whatif/{name}.yaml"),
                "--format",
                "markdown",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let committed = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/whatif/{name}.md")),
        )
        .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout) == committed,
            "examples/whatif/{name}.md is stale: regenerate it with `flotilla whatif examples/whatif/{name}.yaml --format markdown --out examples/whatif/{name}.md`"
        );
    }
}

#[test]
fn text_and_out_file() {
    let out = flotilla()
        .args(["whatif", "examples/whatif/hybrid.yaml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "What-if: Situation 3",
        "Break-even points",
        // Today (always on) at 1,000 tenants, 10 % active 24 h: 1,000 × 10.69848 compute
        // + 1,000 × 0.45 volumes + (1,000 × 1.65 − 10) × 0.08 = 131.20 snapshots
        // + 100 active × 10 GB × 0.02 = 20 egress = 11,299.68.
        "$11,299.68",
        "Reservation blocks",
        "Sensitivity",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.md");
    let out = flotilla()
        .args([
            "whatif",
            "examples/whatif/shared-server.yaml",
            "--format",
            "markdown",
            "--out",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote"));
    let md = std::fs::read_to_string(&file).unwrap();
    assert!(md.starts_with("# What-if: Situation 4"));
    assert!(md.contains("What fits on each size"));
}

#[test]
fn bad_scenarios_fail_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "version: 1\nname: bad\nbase:\n  profile: { size: shared-cpu-1x }\nsweep:\n  tenants: [10, 100]\n  active_fraction: [2]\n  active_hours_per_day: [30]\narchitectures:\n  - kind: hybird\n",
    )
    .unwrap();
    let out = flotilla().arg("whatif").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:7:21") && err.contains("active fraction 2"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:8:26") && err.contains("30 hours per day"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:10:11") && err.contains("unknown architecture `hybird`"),
        "{err}"
    );
    assert!(err.contains("did you mean `hybrid`?"), "{err}");
    assert!(err.contains("is not valid: 3 errors"), "{err}");

    let out = flotilla()
        .args(["whatif", "no/such/scenario.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));

    let out = flotilla()
        .args([
            "whatif",
            "examples/whatif/today.yaml",
            "--pricing-date",
            "2020-01-01",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no pricing version is in force on 2020-01-01")
    );
}

#[test]
fn enormous_sweeps_ask_for_force() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    let tenants: Vec<String> = (1..=500).map(|n| n.to_string()).collect();
    std::fs::write(
        &big,
        format!(
            "version: 1\nname: big\nbase:\n  profile: {{ size: shared-cpu-1x }}\nsweep:\n  tenants: [{}]\n  active_fraction: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]\n  active_hours_per_day: [2, 4, 8]\narchitectures: [app-per-tenant]\n",
            tenants.join(", ")
        ),
    )
    .unwrap();
    let out = flotilla().arg("whatif").arg(&big).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("15000 rows") && err.contains("pass --force"),
        "{err}"
    );
    assert!(err.contains("big.yaml:6:"), "{err}");
}

#[test]
fn model_errors_point_at_the_architecture() {
    // A price table without the scenario's region: the model of each architecture fails
    // on a synthetic resource, and the error points at the architecture in the scenario.
    let dir = tempfile::tempdir().unwrap();
    let pricing = dir.path().join("pricing");
    flotilla()
        .args(["pricing", "export"])
        .arg(&pricing)
        .assert()
        .success();
    for v in std::fs::read_dir(pricing.join("fly")).unwrap() {
        let csv = v.unwrap().path().join("regions.csv");
        let text = std::fs::read_to_string(&csv).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("iad,")).collect();
        std::fs::write(&csv, kept.join("\n") + "\n").unwrap();
    }
    let scenario = dir.path().join("scenario.yaml");
    std::fs::write(
        &scenario,
        "version: 1\nname: no-iad\nbase:\n  profile: { size: shared-cpu-1x }\nsweep:\n  tenants: [10]\n  active_fraction: [1]\n  active_hours_per_day: [4]\n  regions: [iad]\narchitectures:\n  - kind: app-per-tenant\n",
    )
    .unwrap();
    let out = flotilla()
        .arg("whatif")
        .arg(&scenario)
        .arg("--pricing")
        .arg(&pricing)
        .args(["--pricing-date", "2026-02-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("region `iad` has no price"), "{err}");
    assert!(err.contains("architectures[0]: "), "{err}");
    // file:line:col of the architecture (line 11).
    let at = format!("--> {}:11:", scenario.display());
    let col = err
        .split_once(&at)
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).count());
    assert!(col.is_some_and(|n| n > 0), "{err}");
}
