//! `flotilla cost` and the cost footer of `flotilla plan`, driven through the binary.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

const FIX: &str = "tests/fixtures/cost";

mod common;
use common::plain_bin as flotilla;

fn cost_json(args: &[&str]) -> Value {
    cost_json_and_stderr(args).0
}

/// A successful `cost … --format json`: the report and what it wrote to stderr.
fn cost_json_and_stderr(args: &[&str]) -> (Value, String) {
    let out = flotilla()
        .arg("cost")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn usd(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

#[test]
fn always_on_machine_with_volume_is_11_15() {
    // Per-second rates × 2,592,000 s: shared vCPU 0.00000075 → 1.944, RAM 0.00000193 per
    // GB-second → 5.00256. 1.944 + 1.75 GB × 5.00256 = 1.944 + 8.75448 = 10.69848;
    // + 3 GB × 0.15 = 0.45 → 11.14848; + the fleet lock sentinel, 0.005 GB of rootfs ×
    // 0.15 = 0.00075 → 11.14923 (JSON keeps 4 decimals: 11.1492).
    let j = cost_json(&[
        &format!("{FIX}/always-on.yaml"),
        "--pricing-date",
        "2026-02-01",
    ]);
    assert_eq!(j["monthly_usd"].to_string(), "11.1492");
    assert_eq!(j["by_item"]["compute"].to_string(), "1.944");
    assert_eq!(j["by_item"]["ram"].to_string(), "8.7545");
    assert_eq!(j["by_item"]["volume"].to_string(), "0.45");
}

#[test]
fn suspended_machine_is_1_91_plus_volume() {
    // 10.69848 × 4/24 + 0.15 × 20/24 = 1.78308 + 0.125 = 1.90808; + 0.45 = 2.35808;
    // + the fleet lock sentinel 0.00075 = 2.35883.
    let j = cost_json(&[
        &format!("{FIX}/suspend.yaml"),
        "--pricing-date",
        "2026-02-01",
    ]);
    assert_eq!(j["monthly_usd"].to_string(), "2.3588");
    let machine: f64 = j["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["address"] == "tenant.alice.machine[0]")
        .map(|l| usd(&l["monthly_usd"]))
        .sum();
    assert!((machine - 1.9081).abs() < 0.0002, "{machine}");
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
    // Each figure is rounded to 4 decimals in JSON: at most 0.00005 off apiece.
    let by_tenant = j["by_tenant"].as_object().unwrap();
    let tenants: f64 = by_tenant.values().map(usd).sum();
    let bound = 0.00005 * (by_tenant.len() + 1) as f64;
    assert!(
        (tenants - usd(&j["monthly_usd"])).abs() <= bound,
        "{tenants}"
    );
}

#[test]
fn base_gives_the_delta_by_tenant() {
    // base: 2 × 11.14848 = 22.29696. head: alice and carol 11.14848 each; bob on
    // shared-cpu-2x 4 GB: 2 × 1.944 + 3.5 GB × 5.00256 = 3.888 + 17.50896 = 21.39696,
    // + 0.45 = 21.84696; snapshots 10.8 GB − 10 free = 0.8 × 0.08 = 0.064.
    // 11.14848 + 21.84696 + 11.14848 + 0.064 = 44.20792; delta 21.91096. Both include
    // the fleet lock sentinel (0.00075): 22.29771 and 44.20867.
    let j = cost_json(&[
        &format!("{FIX}/head.yaml"),
        "--base",
        &format!("{FIX}/base.yaml"),
    ]);
    assert_eq!(j["base_monthly_usd"].to_string(), "22.2977");
    assert_eq!(j["monthly_usd"].to_string(), "44.2087");
    assert_eq!(j["delta_usd"].to_string(), "21.911");
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
    // The table's notice of newer prices comes first; the reason is one line.
    assert!(stderr.contains("warning: Fly's docs show newer prices since 2026-09-24"));
    assert_eq!(
        stderr.trim().lines().last(),
        // 21.91096 / 22.29696 = 98.27 %.
        Some("budget exceeded: monthly increase +$21.91 (+98.3%) exceeds --max-increase 50%")
    );
    let out = flotilla()
        .args(["cost", &head, "--max-monthly", "40", "--format", "markdown"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("budget exceeded: monthly cost $44.21 exceeds --max-monthly $40.00"),
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
        md.contains("**Monthly cost: $22.30 → $44.21 per month (+$21.91, +98.3%)**"),
        "{md}"
    );
    assert!(
        md.contains("| carol | $0.00 | $11.44 | +$11.44 | added |"),
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
            "iad,Ashburn,north_america,1,1",
            "iad,Ashburn,north_america,one,1",
            1,
        )
    });
    assert!(e.contains("column `markup`: `one` is not a number"), "{e}");
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
        // 12 customers: Machine 10.69848 + 10 GB × 0.02 = 10.89848, volume 0.45; 2 dev
        // tenants: 10.69848 + 1 GB × 0.02 = 10.71848, volume 0.45; snapshots
        // 12 × 1.65 + 2 × 1.2 = 22.2 GB − 10 free = 12.2 × 0.08 = 0.976.
        // 12 × 11.34848 + 2 × 11.16848 + 0.976 = 136.18176 + 22.33696 + 0.976 = 159.49472;
        // + the fleet lock sentinel it creates, 0.005 GB × 0.15 = 0.00075 → 159.49547;
        // + 14 certificates, 10 free: 4 × 0.10 = 0.40 → 159.89547.
        text.contains("Cost: $0.00 → $159.90 per month (+$159.90)"),
        "{text}"
    );
    assert!(text.contains("a month is 30 days (720 h)"), "{text}");
    let out = flotilla()
        .args(["plan", "specs/jarvis.yaml", "--format", "json"])
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["cost"]["monthly_after_usd"].to_string(), "159.8955");
    let m = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "tenant.alice.machine[0]")
        .unwrap();
    assert_eq!(m["monthly_cost_after_usd"].to_string(), "10.8985");
}

#[test]
fn situation_2_examples_match_the_documented_figures() {
    // examples/costs/situation-2.md: $168.27 (claimed ≈ $81) and $115.24 (claimed ≈ $75).
    // 2 h: web 1.944 + 0.75 × 5.00256 = 5.69592; per user 512 MB: 1.944 + 0.25 × 5.00256
    // = 3.19464 × 2/24 = 0.26622, rootfs 0.15 × 22/24 = 0.1375, volume 5 × 0.15 = 0.75;
    // snapshots 100 × 6 GB − 10 = 590 × 0.08 = 47.2.
    // 5.69592 + 100 × 1.15372 + 47.2 = 168.26792; + the fleet lock sentinel 0.00075.
    let a = cost_json(&[
        "examples/costs/situation-2-2h.yaml",
        "--pricing-date",
        "2026-02-01",
    ]);
    assert_eq!(a["monthly_usd"].to_string(), "168.2687");
    // 4 h: per user 3.19464 × 4/24 = 0.53244, rootfs 0.15 × 20/24 = 0.125, egress
    // 10 × 0.02 = 0.2, volume 0.15; snapshots 100 × 1.2 − 10 = 110 × 0.08 = 8.8.
    // 5.69592 + 100 × 1.00744 + 8.8 = 115.23992; + the fleet lock sentinel 0.00075.
    let b = cost_json(&[
        "examples/costs/situation-2-4h.yaml",
        "--pricing-date",
        "2026-02-01",
    ]);
    assert_eq!(b["monthly_usd"].to_string(), "115.2407");
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

#[test]
fn a_removed_region_is_priced_at_its_date_with_a_hint_today() {
    // sea (Seattle) was listed until Fly removed it on 2025-10-16; at 2024-11-15
    // (fly/2024-11-01, markup 1.25 billed in full): (1.944 + 1.75 × 5.00256) × 1.25 =
    // 10.69848 × 1.25 = 13.3731; + 3 GB × 0.15 = 0.45 → 13.8231; + the fleet lock
    // sentinel 0.00075 → 13.82385.
    let sea = format!("{FIX}/sea.yaml");
    let (j, warn) = cost_json_and_stderr(&[&sea, "--pricing-date", "2024-11-15"]);
    assert_eq!(j["pricing_version"], "2024-11-01");
    assert_eq!(j["monthly_usd"].to_string(), "13.8239");
    assert!(
        warn.contains("region `sea` (Seattle) was removed by Fly on 2025-10-16"),
        "{warn}"
    );
    // Today: not priced, and the error says which date still prices it.
    let out = flotilla().args(["cost", &sea]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("Fly removed it from its price list on 2025-10-16")
            && e.contains("pass --pricing-date 2025-10-15 or earlier"),
        "{e}"
    );
    // A spec in a removed region validates, with the warning.
    let out = flotilla().args(["validate", &sea]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint: move to a current region"));
}

#[test]
fn lax_phase_in_follows_fly_s_example_month_by_month() {
    // Fly's example: shared-cpu-1x (256 MB) in lax costs $1.94, $2.04, $2.14, $2.23, $2.33
    // from July to November 2024. Rule: 1.944 × (1 + k × (1.199519231 − 1)):
    //   k = 0    → 1.944
    //   k = 0.25 → 1.944 × 1.04987980775 = 2.0409663…
    //   k = 0.5  → 1.944 × 1.0997596155  = 2.1379326…
    //   k = 0.75 → 1.944 × 1.14963942325 = 2.2348990…
    //   k = 1    → 1.944 × 1.199519231   = 2.3318653…
    let months = [
        ("2024-07-25", "2024-07-22", "1.944", "1.94"),
        ("2024-08-15", "2024-08-01", "2.041", "2.04"),
        ("2024-09-15", "2024-09-01", "2.1379", "2.14"),
        ("2024-10-15", "2024-10-07", "2.2349", "2.23"),
        ("2024-11-15", "2024-11-01", "2.3319", "2.33"),
    ];
    for (date, version, exact, cents) in months {
        let j = cost_json(&[&format!("{FIX}/lax-256.yaml"), "--pricing-date", date]);
        assert_eq!(j["pricing_version"], version, "{date}");
        // The Machine's own cost (the total adds the fleet lock sentinel's 0.00075).
        let machine = &j["by_kind"]["machine"];
        assert_eq!(machine.to_string(), exact, "{date}");
        assert_eq!(format!("{:.2}", usd(machine)), cents, "{date}");
        // The sentinel's $0.00075 shows as 0.0007 or 0.0008: the 4-decimal breakdown is
        // allocated so that it adds up to the total shown.
        let org = j["by_kind"]["org"].to_string();
        assert!(org == "0.0007" || org == "0.0008", "{date}: {org}");
        // In units of $0.0001, the two shown amounts add up to the total shown.
        let units = |v: &Value| (usd(v) * 10_000.0).round() as i64;
        assert_eq!(
            units(machine) + units(&j["by_kind"]["org"]),
            units(&j["monthly_usd"]),
            "{date}"
        );
    }
}

#[test]
fn reservation_blocks_and_static_ips_only_from_their_launch_dates() {
    let show = |date: &str| -> Value {
        let out = flotilla()
            .args(["pricing", "show", date, "--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let count = |j: &Value, table: &str| j["tables"][table].as_array().unwrap().len();
    let has_static_ip = |j: &Value| {
        j["tables"]["network.csv"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["item"] == "static_egress_ip")
    };
    // Reservation blocks launched on 2024-07-22; static egress IPs were first priced on
    // 2024-09-24.
    assert_eq!(count(&show("2024-07-21"), "reservations.csv"), 0);
    assert_eq!(count(&show("2024-07-22"), "reservations.csv"), 6);
    assert!(!has_static_ip(&show("2024-09-23")));
    assert!(has_static_ip(&show("2024-09-24")));
}

/// `cents` of a JSON money value, exactly (4 decimals at most).
fn units(v: &Value) -> i64 {
    let s = v.to_string();
    let d: rust_decimal::Decimal = s.parse().unwrap();
    (d * rust_decimal::Decimal::from(10_000))
        .try_into()
        .unwrap()
}

#[test]
fn json_breakdowns_sum_exactly_to_the_total() {
    // 100 users: every line, resource, tenant, kind and item, as printed, adds up to
    // `monthly_usd` as printed (no float arithmetic: units of $0.0001).
    let j = cost_json(&[
        "examples/costs/situation-2-4h.yaml",
        "--pricing-date",
        "2026-02-01",
    ]);
    let total = units(&j["monthly_usd"]);
    let sum = |vals: Vec<&Value>| vals.into_iter().map(units).sum::<i64>();
    let lines = j["lines"].as_array().unwrap();
    assert_eq!(
        sum(lines.iter().map(|l| &l["monthly_usd"]).collect()),
        total
    );
    let resources = j["resources"].as_array().unwrap();
    assert_eq!(
        sum(resources.iter().map(|r| &r["monthly_usd"]).collect()),
        total
    );
    for r in resources {
        let parts = r["components"].as_array().unwrap();
        assert_eq!(
            sum(parts.iter().map(|c| &c["monthly_usd"]).collect()),
            units(&r["monthly_usd"]),
            "{r}"
        );
    }
    for key in ["by_tenant", "by_kind", "by_item"] {
        let m = j[key].as_object().unwrap();
        assert_eq!(sum(m.values().collect()), total, "{key}");
    }
    // Region and CPU class travel with compute lines.
    let compute = lines.iter().find(|l| l["item"] == "compute").unwrap();
    assert!(
        compute["region"].is_string() && compute["cpu_kind"] == "shared",
        "{compute}"
    );
}

#[test]
fn text_keeps_its_warnings_on_stdout() {
    let out = flotilla()
        .args([
            "cost",
            &format!("{FIX}/always-on.yaml"),
            "--pricing-date",
            "2026-11-01",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\nWarnings:\n  - Fly's docs show newer prices"),
        "{text}"
    );
    assert!(
        text.contains("(this figure rests on 1 warning: see below)"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: Fly's docs show newer prices"));
}

#[test]
fn a_table_of_ones_own_is_what_the_hint_shows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    let export = flotilla()
        .args(["pricing", "export"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(export.status.success());
    let version = dir.join("fly/2026-01-01");
    let out = flotilla()
        .args(["cost", &format!("{FIX}/always-on.yaml"), "--pricing"])
        .arg(&version)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "`flotilla pricing show 2026-01-01 --pricing {}`",
            version.display()
        )),
        "{text}"
    );
}

#[test]
fn the_usage_template_round_trips_and_the_file_changes_costs() {
    let spec = format!("{FIX}/head.yaml");
    let out = flotilla()
        .args(["cost", &spec, "--usage-template"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("usage.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let plain = cost_json(&[&spec]);
    let again = cost_json(&[&spec, "--usage", file.to_str().unwrap()]);
    assert_eq!(plain, again);
    // tests/fixtures/cost/usage.yaml: egress 20 + 20 + 40 GB × $0.02 = $1.60 and carol's
    // dedicated IPv4 $2.00, plus the fleet lock sentinel's $0.00075:
    // 44.2079 + 3.60 + 0.00075 = 47.80865 → 47.8087 at 4 decimals.
    let used = cost_json(&[&spec, "--usage", &format!("{FIX}/usage.yaml")]);
    assert_eq!(used["monthly_usd"].to_string(), "47.8087");
    // A misspelt key is refused with its position and a suggestion.
    std::fs::write(&file, "defaults:\n  egres_gb_month: 3\n").unwrap();
    let bad = flotilla()
        .args(["cost", &spec, "--usage"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(
        e.contains("usage.yaml:2:3") && e.contains("did you mean `egress_gb_month`"),
        "{e}"
    );
}

#[test]
fn plan_takes_the_usage_file_too() {
    let out = flotilla()
        .args([
            "plan",
            &format!("{FIX}/head.yaml"),
            "--usage",
            &format!("{FIX}/usage.yaml"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // 44.2079 + 3.60 = 47.8079 → $47.81.
    assert!(text.contains("Cost: $0.00 → $47.81 per month"), "{text}");
}

/// `always-on.yaml` with `extra` appended at the top level, in a temporary directory.
fn always_on_with(extra: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(format!("{FIX}/always-on.yaml")).unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    let p = path.to_str().unwrap().to_string();
    (dir, p)
}

#[test]
fn free_allowances_by_date_and_plan() {
    // always-on.yaml: shared-cpu-1x 2 GB in iad, always on, 3 GB volume, no egress.
    //   compute 1.944 + RAM 1.75 × 5.00256 = 8.75448 + volume 3 × 0.15 = 0.45
    //   + the fleet lock sentinel 0.005 GB × 0.15 = 0.00075   → 11.14923 on demand.
    // 2024-05-01 (version 2024-04-25): every organization has 3 free shared-cpu-1x
    // 256 MB Machines and 3 GB of volumes: −1.944 (the preset's 720 h) − 0.45
    //   → 11.14923 − 2.394 = 8.75523.
    let (_d, payg) = always_on_with("");
    let may = cost_json(&[&payg, "--pricing-date", "2024-05-01"]);
    assert_eq!(may["monthly_usd"].to_string(), "8.7552");
    // 2024-08-01: Pay As You Go has no allowances any more → 11.14923.
    let aug = cost_json(&[&payg, "--pricing-date", "2024-08-01"]);
    assert_eq!(aug["monthly_usd"].to_string(), "11.1492");
    // Hobby at 2024-08-01: the same free Machines and volume (−2.394), then $5 of
    // included usage (the bill left is 8.75523, so all of it: −5), then the $5 fee:
    //   11.14923 − 2.394 − 5 + 5 = 8.75523.
    let (_h, hobby) = always_on_with("org_plan: hobby\n");
    let aug_hobby = cost_json(&[&hobby, "--pricing-date", "2024-08-01"]);
    assert_eq!(aug_hobby["monthly_usd"].to_string(), "8.7552");
    // The plan's footer prices the same plan: after the plan 8.75523; before it, the
    // empty organization pays the $5 fee (its $5 credit has nothing to cover).
    let out = flotilla()
        .args([
            "plan",
            &hobby,
            "--pricing-date",
            "2024-08-01",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["cost"]["monthly_after_usd"].to_string(), "8.7552");
    assert_eq!(plan["cost"]["monthly_before_usd"].to_string(), "5");
    // Today Hobby is only for organizations that already had it.
    let out = flotilla().args(["cost", &hobby]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("org_plan_legacy"), "{err}");
    // A legacy Hobby organization today: 11.14923 on demand (its snapshots, 3.6 GB, sit
    // inside the organization's free 10 GB), minus the free Machine and volume, minus
    // the $5 credit, plus the $5 fee → 8.75523.
    let (_l, legacy) = always_on_with("org_plan: hobby\norg_plan_legacy: true\n");
    let today = cost_json(&[&legacy]);
    assert_eq!(today["monthly_usd"].to_string(), "8.7552");
    // Pay As You Go today: no allowances.
    assert_eq!(cost_json(&[&payg])["monthly_usd"].to_string(), "11.1492");
}

#[test]
fn reservation_advice_only_where_blocks_exist() {
    let (_d, spec) = always_on_with("");
    // Before 2024-07-22 no reservation blocks exist: no advice.
    let before = cost_json(&[&spec, "--pricing-date", "2024-07-01"]);
    let none = &before["reservation_advice"];
    assert!(none.is_null() || none == &serde_json::json!([]), "{none}");
    // 2024-08-01: the always-on compute is 1.944 + 8.75448 = 10.69848 a month in iad
    // (shared). Shared blocks: $36 a year for $5 of credit a month. Two blocks cost
    // 2 × 36 / 12 = $6 a month and cover $10: 6 + 0.69848 = 6.69848 → saving $4.00;
    // break-even 6 / 10.69848 = 0.5608 (the share of the month the Machine must run).
    let after = cost_json(&[&spec, "--pricing-date", "2024-08-01"]);
    let a = &after["reservation_advice"][0];
    assert_eq!(a["region"], "iad");
    assert_eq!(a["cpu_kind"], "shared");
    assert_eq!(a["blocks"][0]["count"], 2);
    assert_eq!(a["blocks"][0]["upfront_per_year_usd"], 36);
    assert_eq!(a["savings_monthly_usd"].to_string(), "4");
    assert_eq!(a["break_even_utilisation"].to_string(), "0.5608");
}
