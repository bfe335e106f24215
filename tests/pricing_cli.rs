//! `flotilla pricing list | show | diff | export`, driven through the binary.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

mod common;
use common::plain_bin as flotilla;

fn stdout(args: &[&str]) -> String {
    let out = flotilla().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn list_shows_every_version() {
    let s = stdout(&["pricing", "list"]);
    for d in [
        "2024-04-25",
        "2024-07-18",
        "2024-07-22",
        "2024-08-01",
        "2024-09-01",
        "2024-06-17",
        "2024-09-24",
        "2024-10-01",
        "2024-10-07",
        "2024-11-01",
        "2025-10-16",
        "2026-01-01",
    ] {
        assert!(s.contains(d), "{d} missing in {s}");
    }
    let j: Value = serde_json::from_str(&stdout(&["pricing", "list", "--format", "json"])).unwrap();
    assert_eq!(j["versions"].as_array().unwrap().len(), 12);
}

#[test]
fn show_prints_rows_with_status_and_sources() {
    let s = stdout(&["pricing", "show", "2026-02-01"]);
    assert!(s.contains("Pricing fly/2026-01-01"), "{s}");
    assert!(s.contains("shared-cpu-1x"));
    assert!(s.contains("https://fly.io/docs/about/pricing/"));
    assert!(s.contains("published"));
    assert!(s.contains("newer prices since 2026-09-24"), "{s}");
    // Provenance per row family: statuses, sources and their retrieval dates.
    let family = s
        .lines()
        .find(|l| l.trim_start().starts_with("compute.csv") && l.contains("14 published"))
        .unwrap_or_else(|| panic!("no provenance line for compute.csv in {s}"));
    assert!(
        family.contains("fly-rates (retrieved 2026-12-01)"),
        "{family}"
    );
    assert!(s.contains("reservations.csv"), "{s}");
    let j: Value = serde_json::from_str(&stdout(&[
        "pricing",
        "show",
        "2025-06-01",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(j["pricing_version"], "2024-11-01");
    let snapshot = j["tables"]["storage.csv"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["item"] == "snapshot")
        .unwrap()
        .clone();
    assert_eq!(snapshot["price"], "0");
}

#[test]
fn diff_shows_the_snapshot_charge() {
    let s = stdout(&["pricing", "diff", "2025-11-01", "2026-02-01"]);
    assert!(s.contains("fly/2025-10-16 → fly/2026-01-01"), "{s}");
    let row = s.lines().find(|l| l.contains("storage.csv")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        ["storage.csv", "snapshot", "changed", "price", "0", "0.08"]
    );
    assert_eq!(s.matches("changed").count(), 2, "{s}"); // header count line + one row
    let s = stdout(&[
        "pricing",
        "diff",
        "2025-11-01",
        "2026-02-01",
        "--spec",
        "specs/jarvis.yaml",
    ]);
    // 12 × (10.89848 + 0.45) + 2 × (10.71848 + 0.45) = 158.51872; snapshots from
    // 2026-01-01: 22.2 GB − 10 free = 12.2 × 0.08 = 0.976 → 159.49472; both sides include
    // the fleet lock sentinel, 0.005 GB × 0.15 = 0.00075 → 158.51947 and 159.49547; and
    // 14 certificates, 10 free: 4 × 0.10 = 0.40 → 158.91947 and 159.89547.
    assert!(
        s.contains("Effect on specs/jarvis.yaml: $158.92 → $159.90 per month (+$0.98"),
        "{s}"
    );
    let j: Value = serde_json::from_str(&stdout(&[
        "pricing",
        "diff",
        "2025-11-01",
        "2026-02-01",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(j["changes"].as_array().unwrap().len(), 1);
    // Fly removed 17 regions from its list on 2025-10-16.
    let j: Value = serde_json::from_str(&stdout(&[
        "pricing",
        "diff",
        "2025-06-01",
        "2025-11-01",
        "--format",
        "json",
    ]))
    .unwrap();
    let removed: Vec<&str> = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 17, "{removed:?}");
    assert!(removed.contains(&"sea"), "{removed:?}");
}

#[test]
fn export_then_override_gives_the_same_prices() {
    let tmp = tempfile::tempdir().unwrap();
    flotilla()
        .args(["pricing", "export"])
        .arg(tmp.path())
        .assert()
        .success();
    let dir = tmp.path().to_str().unwrap();
    let a = stdout(&["cost", "specs/jarvis.yaml", "--format", "json"]);
    let b = stdout(&[
        "cost",
        "specs/jarvis.yaml",
        "--format",
        "json",
        "--pricing",
        dir,
    ]);
    let (a, b): (Value, Value) = (
        serde_json::from_str(&a).unwrap(),
        serde_json::from_str(&b).unwrap(),
    );
    assert_eq!(a["monthly_usd"], b["monthly_usd"]);
    assert_ne!(a["pricing_origin"], b["pricing_origin"]);
    // A single version directory also works, and dates before it have no prices.
    let one = format!("{dir}/fly/2024-11-01");
    let s = stdout(&["pricing", "list", "--pricing", &one]);
    assert!(s.contains("2024-11-01") && !s.contains("2026-01-01"), "{s}");
    let out = flotilla()
        .args(["pricing", "show", "2024-10-01", "--pricing", &one])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_dates_are_refused() {
    let out = flotilla()
        .args(["pricing", "show", "2026-13-01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a date"));
}

#[test]
fn diff_with_a_spec_names_the_spec_in_errors_once() {
    // Neither version can price the spec's region: each resource is reported once,
    // naming the spec.
    let tmp = tempfile::tempdir().unwrap();
    flotilla()
        .args(["pricing", "export"])
        .arg(tmp.path())
        .assert()
        .success();
    for v in std::fs::read_dir(tmp.path().join("fly")).unwrap() {
        let csv = v.unwrap().path().join("regions.csv");
        let text = std::fs::read_to_string(&csv).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("iad,")).collect();
        std::fs::write(&csv, kept.join("\n") + "\n").unwrap();
    }
    let out = flotilla()
        .args(["pricing", "diff", "2025-06-01", "2026-02-01"])
        .args(["--spec", "specs/jarvis.yaml", "--pricing"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let resources: Vec<&str> = err
        .lines()
        .filter_map(|l| l.trim().strip_prefix("= resource: "))
        .collect();
    assert!(!resources.is_empty(), "{err}");
    for r in &resources {
        assert_eq!(resources.iter().filter(|x| *x == r).count(), 1, "{err}");
    }
    let errors = err.matches("error: ").count();
    assert_eq!(errors, resources.len(), "{err}");
    assert_eq!(
        err.matches("--> specs/jarvis.yaml").count(),
        errors,
        "{err}"
    );
    assert!(err.contains("region `iad` has no price"), "{err}");
}
