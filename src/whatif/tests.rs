//! What-if figures checked by hand (arithmetic in the comments), against `flotilla cost`,
//! and the scenario file's error messages.

use std::path::Path;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::report::{Report, RunOptions, run};
use super::scenario::{Scenario, load_bytes};
use crate::cost::Item;
use crate::money::to_cents;
use crate::pricing::Catalog;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()
}

fn scenario(yaml: &str) -> Scenario {
    match load_bytes(yaml.as_bytes(), "test.yaml", Path::new(".")) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn report(yaml: &str) -> Report {
    let catalog = Catalog::embedded().unwrap();
    let opts = RunOptions {
        pricing_date: Some(date()),
        today: date(),
        force: false,
    };
    match run(&scenario(yaml), &catalog, &opts) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

fn errors(yaml: &str) -> String {
    match load_bytes(yaml.as_bytes(), "bad.yaml", Path::new(".")) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.to_string(),
    }
}

/// The monthly cost of architecture `arch` at `n` tenants, usage point `point`.
fn cost(r: &Report, point: usize, arch: &str, n: u64) -> Decimal {
    let a = r.architectures.iter().position(|x| x.name == arch).unwrap();
    r.rows
        .iter()
        .find(|x| x.point == point && x.arch == a && x.tenants == n)
        .unwrap()
        .monthly
}

const FLEET: &str = r#"
version: 1
name: hand-checked
base:
  profile:
    size: shared-cpu-1x
    memory: 2gb
    idle: off
    region: iad
    volume_gb: 3
    rootfs_gb: 1
    egress_gb_month: 10
  memory_model: { base_mb: 300, agent_mb: 1100, agents_per_active_tenant: 1, headroom_pct: 50 }
sweep:
  tenants: [14, 1000]
  active_fraction: [0.1, 1]
  active_hours_per_day: [4]
architectures:
  - { kind: app-per-tenant, idle: off }
  - { kind: app-per-tenant, idle: suspend }
  - { kind: shared-pool, min_machines: 1 }
  - { kind: hybrid, idle: stop }
"#;

#[test]
fn app_per_tenant_always_on_to_the_cent() {
    let r = report(FLEET);
    // Point 1 = 100% active, 4 h/day. Per tenant (fly/2026-01-01, iad):
    //   compute shared-cpu-1x 0.00000075/s × 2,592,000 s = 1.944
    //   RAM (2048 − 256) MB = 1.75 GB × 5.00256 = 8.75448
    //   volume 3 GB × 0.15            0.45
    //   snapshots 3 GB × (1 + 0.05 × 4) = 3.6 GB × 0.08 = 0.288
    //   egress 10 GB × 1 (active) × 0.02 = 0.20
    //   = 11.63648; 14 tenants = 162.91072
    // Free snapshot GB once for the org: −min(14 × 3.6, 10) × 0.08 = −0.80 → 162.11072.
    assert_eq!(cost(&r, 1, "app-per-tenant (off)", 14), d("162.11072"));
    // 10% active: egress 10 × 0.1 × 0.02 = 0.02 per tenant → 11.45648 × 14 − 0.80 =
    // 159.59072.
    assert_eq!(
        to_cents(cost(&r, 0, "app-per-tenant (off)", 14)),
        d("159.59")
    );
}

#[test]
fn suspend_and_hybrid_to_the_cent() {
    let r = report(FLEET);
    // 10% active, 4 h/day: a tenant's Machine is started 0.1 × 4 = 0.4 h a day = 12 h a
    // month: 10.69848 × 12 / 720 = 0.178308; rootfs 1 GB × 0.15 × 708 / 720 = 0.1475;
    // volume 0.45, snapshots 0.288, egress 0.02 → 1.083808 × 14 = 15.173312 − 0.80
    // = 14.373312.
    assert_eq!(
        to_cents(cost(&r, 0, "app-per-tenant (suspend)", 14)),
        d("14.37")
    );
    // Hybrid, 1,000 tenants, 10% active, 4 h/day:
    //   ceil(1000 × 0.1) = 100 session Machines × (10.69848 × 4/24 + 0.15 × 20/24)
    //     = 100 × (1.78308 + 0.125)                    = 190.808
    //   router shared-cpu-1x 1 GB always on: 1.944 + 0.75 × 5.00256 = 5.69592
    //   volumes 1000 × 0.45 = 450; snapshots 1000 × 0.288 − 0.80 = 287.20
    //   egress 1000 × 0.1 × 10 GB × 0.02 = 20
    //   = 953.70392
    assert_eq!(to_cents(cost(&r, 0, "hybrid", 1000)), d("953.70"));
}

#[test]
fn shared_pool_to_the_cent() {
    let r = report(FLEET);
    // 14 tenants, 10% active, 4 h/day, 50% headroom. shared-cpu-2x 4 GB: 2,048 MB usable;
    // 3 tenants need 3 × 300 + ceil(0.3) × 1,100 = 2,000 MB (fits), 4 need 2,300: 3 per
    // Machine, ceil(14 / 3) = 5 Machines. Always-on: 3.888 + 3.5 GB × 5.00256 = 21.39696;
    // the 4 others run 4 h a day: 21.39696 × 4/24 + 0.15 × 20/24 = 3.56616 + 0.125
    // = 3.69116. Pool: 21.39696 + 4 × 3.69116 = 36.1616. Data: 14 × (0.45 + 0.288) − 0.80
    // = 9.532; egress 14 × 0.1 × 10 × 0.02 = 0.28. Total 45.9736.
    let row = r
        .rows
        .iter()
        .find(|x| x.point == 0 && x.tenants == 14 && r.architectures[x.arch].name == "shared-pool")
        .unwrap();
    assert_eq!(row.pools[0].size, "shared-cpu-2x 4 GB");
    assert_eq!(row.pools[0].tenants_per_machine, 3);
    assert_eq!(row.pools[0].machines, 5);
    assert_eq!(row.pools[0].cost, d("36.1616"));
    assert_eq!(row.monthly, d("45.9736"));
    assert!(row.pools[0].runner_up.is_some());
}

/// Price dates and organization plans the model is checked at: today (no allowances),
/// 2024-05-01 (Pay As You Go with free VMs, volumes and egress) and 2024-08-01 (Hobby:
/// a $5 fee including $5 of usage, with free allowances).
fn plan_variants() -> Vec<(NaiveDate, crate::platform::PlanChoice)> {
    use crate::platform::{OrgPlan, PlanChoice};
    let on = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    vec![
        (date(), PlanChoice::default()),
        (on(2024, 5, 1), PlanChoice::default()),
        (
            on(2024, 8, 1),
            PlanChoice {
                plan: OrgPlan::Hobby,
                legacy: false,
            },
        ),
    ]
}

#[test]
fn fast_path_matches_the_engine_report_and_allowances_apply_once() {
    let catalog = Catalog::embedded().unwrap();
    for (at, plan) in plan_variants() {
        let mut s = scenario(FLEET);
        s.org_plan = plan;
        let table = catalog.at(at).unwrap();
        let tables = [table];
        let ctx = super::model::Context::new(&s, &tables);
        for a in 0..s.architectures.len() {
            for f in ["0.1", "1"] {
                let p = super::model::Point {
                    fraction: d(f),
                    hours: d("4"),
                    region: 0,
                    table: 0,
                };
                let m = ctx.model(a, p).unwrap();
                for n in [1u64, 2, 3, 7, 14, 99, 1000, 4321] {
                    let priced = m.price(n, table);
                    let diff = (priced.total - m.cost(n)).abs();
                    assert!(diff < d("0.000000001"), "{at} arch {a} f {f} n {n}: {diff}");
                    for item in [Item::SnapshotAllowance, Item::PlanFee, Item::UsageCredit] {
                        let count = priced
                            .report
                            .lines
                            .iter()
                            .filter(|l| l.item == item)
                            .count();
                        assert!(count <= 1, "{at}: {item:?} applied {count} times");
                    }
                }
            }
        }
    }
}

#[test]
fn org_plan_fee_credit_and_free_vms_by_hand() {
    // Hobby at 2024-08-01, iad, shared-cpu-1x 256 MB always on, nothing else billed:
    // each Machine is 0.00000075 × 2,592,000 s = $1.944. Three run free; the next
    // $5 of usage is included in the $5 fee:
    //   N ≤ 3: 5;  N = 5: 2 × 1.944 = 3.888 ≤ 5 → 5;
    //   N = 10: 7 × 1.944 = 13.608, minus the $5 credit, plus the $5 fee = 13.608.
    // At 2026-02-01 Pay As You Go has no allowances: 10 × 1.944 = 19.44.
    let yaml = r#"
version: 1
name: hobby
org_plan: hobby
base:
  profile: { size: shared-cpu-1x, memory: 256mb, volume_gb: 0, region: iad, egress_gb_month: 0, rootfs_gb: 0 }
sweep:
  tenants: [1, 3, 5, 10]
  pricing_date: [2024-08-01]
architectures:
  - { kind: app-per-tenant, idle: off, name: A }
"#;
    let catalog = Catalog::embedded().unwrap();
    let opts = RunOptions {
        pricing_date: None,
        today: date(),
        force: false,
    };
    let s = scenario(yaml);
    assert_eq!(s.org_plan.plan, crate::platform::OrgPlan::Hobby);
    let r = run(&s, &catalog, &opts).unwrap();
    assert_eq!(cost(&r, 0, "A", 1), d("5"));
    assert_eq!(cost(&r, 0, "A", 3), d("5"));
    assert_eq!(cost(&r, 0, "A", 5), d("5"));
    assert_eq!(cost(&r, 0, "A", 10), d("13.608"));
    // At 10 tenants the breakdown adds up: compute net of the three free VMs
    // (19.44 − 5.832 = 13.608), the plan column fee − credit = 5 − 5 = 0 (not shown).
    let (_, b, total) = &r.breakdown[0];
    assert_eq!(b.compute, d("13.608"));
    assert_eq!(b.plan, d("0"));
    assert_eq!(b.values().iter().copied().sum::<Decimal>(), *total);
    let md = super::render::markdown(&r);
    assert!(!md.contains("| plan |"), "{md}");
    assert!(
        md.contains("Organization plan: Hobby, $5.00 a month including $5.00 of usage"),
        "{md}"
    );
    // At 1 tenant the free VM covers everything and no usage is left for the credit:
    // compute 0, plan 5, shown.
    let one = format!("{yaml}report: {{ breakdown_tenants: 1 }}\n");
    let r1 = run(&scenario(&one), &catalog, &opts).unwrap();
    let (_, b, total) = &r1.breakdown[0];
    assert_eq!((b.compute, b.plan, *total), (d("0"), d("5"), d("5")));
    assert!(super::render::markdown(&r1).contains("| plan |"));

    let today = yaml
        .replace("org_plan: hobby\n", "")
        .replace("2024-08-01", "2026-02-01");
    let r = run(&scenario(&today), &catalog, &opts).unwrap();
    assert_eq!(cost(&r, 0, "A", 10), d("19.44"));
    assert!(!super::render::markdown(&r).contains("| plan |"));
}

#[test]
fn a_plan_fly_no_longer_offers_needs_legacy_in_a_scenario() {
    let yaml = |extra: &str| {
        format!(
            "version: 1\nname: x\norg_plan: launch\n{extra}base:\n  profile: {{ size: shared-cpu-1x, memory: 256mb }}\nsweep:\n  tenants: [1, 10]\n  pricing_date: [2026-02-01]\narchitectures:\n  - {{ kind: app-per-tenant, name: A }}\n"
        )
    };
    let catalog = Catalog::embedded().unwrap();
    let opts = RunOptions {
        pricing_date: None,
        today: date(),
        force: false,
    };
    let err = run(&scenario(&yaml("")), &catalog, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("test.yaml:3:11"), "{err}");
    assert!(err.contains("no longer offers the Launch plan"), "{err}");
    assert!(err.contains("org_plan_legacy: true"), "{err}");
    let ok = run(&scenario(&yaml("org_plan_legacy: true\n")), &catalog, &opts);
    assert!(ok.is_ok());
    let bad =
        errors("version: 1\nname: x\norg_plan: free\nbase: {}\nsweep: {}\narchitectures: []\n");
    assert!(bad.contains("bad.yaml:3:11"), "{bad}");
}

#[test]
fn break_even_of_a_constructed_pair() {
    // A: an app per tenant, shared-cpu-1x 256 MB always on, no volume: 1.944 N.
    // B: a Machine per tenant stopped half the day (12 h): 1.944 × 0.5 + rootfs 1 GB × 0.15
    //    × 0.5 = 1.047 per tenant, plus a 5.69592 router: 5.69592 + 1.047 N.
    // A − B = 0.897 N − 5.69592 > 0 ⇔ N > 6.35: A is cheaper up to 6, B from 7.
    let r = report(
        r#"
version: 1
name: crossing
base:
  profile: { size: shared-cpu-1x, memory: 256mb, volume_gb: 0, rootfs_gb: 1 }
sweep:
  tenants: [1, 10000]
  active_hours_per_day: [12]
architectures:
  - { kind: app-per-tenant, idle: off, name: A }
  - { kind: machine-per-tenant, idle: stop, name: B }
"#,
    );
    assert_eq!(r.break_even.len(), 1, "{:?}", r.break_even);
    let b = &r.break_even[0];
    assert_eq!(b.tenants, 7);
    assert_eq!((b.cheaper_before, b.cheaper_from), (Some(0), Some(1)));
    // At 7: A = 7 × 1.944 = 13.608, B = 5.69592 + 7 × 1.047 = 13.02492.
    assert_eq!(b.cost_a, d("13.608"));
    assert_eq!(b.cost_b, d("13.02492"));
}

#[test]
fn whatif_and_cost_agree_on_situation_two() {
    // examples/costs/situation-2-2h.yaml priced by `flotilla cost` ($168.27) and the same
    // fleet as a what-if row.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let catalog = Catalog::embedded().unwrap();
    let table = catalog.at(date()).unwrap();
    let loaded = crate::spec::load_file(&root.join("examples/costs/situation-2-2h.yaml")).unwrap();
    let direct = crate::cost::price_set(
        table,
        &loaded.desired.resources,
        &loaded.desired.default_usage,
    )
    .unwrap()
    .total;
    let s = super::scenario::load_file(&root.join("examples/whatif/containers.yaml")).unwrap();
    let opts = RunOptions {
        pricing_date: Some(date()),
        today: date(),
        force: false,
    };
    let r = run(&s, &catalog, &opts).unwrap();
    let p = r.points.iter().position(|p| p.hours == d("2")).unwrap();
    let row = cost(&r, p, "estimate 1: 512 MB, 5 GB volume", 100);
    // The same figure, to far below a micro-dollar (the what-if multiplies one tenant's
    // lines by 100 where `cost` adds 100 copies).
    assert!(
        (row - direct).abs() < d("0.000000000001"),
        "{row} vs {direct}"
    );
    // 168.26792 → $168.27 (hand-computed in cost::tests::situation_2_at_100_users_2h_5gb).
    assert_eq!(to_cents(row), d("168.27"));
}

#[test]
fn bad_input_names_file_line_and_column() {
    let base = "version: 1\nname: x\nbase: { profile: { size: shared-cpu-1x } }\n";
    let e = errors(&format!(
        "{base}sweep:\n  tenants: []\narchitectures: [app-per-tenant]\n"
    ));
    assert!(
        e.contains("the sweep of `tenants` is empty") && e.contains("bad.yaml:5:12"),
        "{e}"
    );

    let e = errors(&format!(
        "{base}sweep:\n  tenants: [10]\n  active_fraction: [0.5, -0.1, 1.5]\narchitectures: [app-per-tenant]\n"
    ));
    assert!(
        e.contains("active fraction -0.1 is not above 0") && e.contains("bad.yaml:6:26"),
        "{e}"
    );
    assert!(
        e.contains("active fraction 1.5") && e.contains("bad.yaml:6:32"),
        "{e}"
    );

    let e = errors(&format!(
        "{base}sweep:\n  tenants: [10]\n  active_hours_per_day: [25]\narchitectures: [app-per-tenant]\n"
    ));
    assert!(
        e.contains("25 hours per day is not between 0 and 24") && e.contains("bad.yaml:6:26"),
        "{e}"
    );

    let e = errors(&format!(
        "{base}sweep:\n  tenants: [10]\narchitectures:\n  - kind: shared-pol\n"
    ));
    assert!(
        e.contains("unknown architecture `shared-pol`") && e.contains("`shared-pool`"),
        "{e}"
    );
    assert!(e.contains("bad.yaml:7:11"), "{e}");

    let e = errors(
        "version: 1\nname: x\nbase:\n  profile: { size: auto }\n  memory_model: { base_mb: 150000, agent_mb: 1000 }\nsweep: { tenants: [10] }\narchitectures: [shared-pool]\n",
    );
    assert!(e.contains("one tenant does not fit any Machine"), "{e}");
    assert!(e.contains("bad.yaml:5:17") && e.contains("hint:"), "{e}");

    let e = errors(&format!(
        "{base}sweep: {{ tenants: [10], regions: [{{ iad: 0.5, fra: 0.4 }}] }}\narchitectures: [app-per-tenant]\n"
    ));
    assert!(e.contains("the weights add up to 0.9, not 1"), "{e}");

    let e = errors(&format!(
        "{base}sweep: {{ tenants: [10] }}\narchitectures:\n  - {{ kind: hybrid, min_machines: 2, memory: 4gb, idle: suspend }}\n"
    ));
    assert!(
        e.contains("`min_machines` applies to shared-pool only"),
        "{e}"
    );
    assert!(e.contains("suspend only up to 2048 MB"), "{e}");

    let e = errors(&format!(
        "{base}sweep: {{ tenants: [10] }}\narchitectures:\n  - {{ kind: hybrid, shared: spec }}\n"
    ));
    assert!(
        e.contains("the base names no spec") && e.contains("bad.yaml:6:5"),
        "{e}"
    );
}

#[test]
fn huge_sweeps_need_force() {
    let tenants: Vec<String> = (1..=200).map(|n| n.to_string()).collect();
    let yaml = format!(
        "version: 1\nname: big\nbase: {{ profile: {{ size: shared-cpu-1x }} }}\nsweep:\n  tenants: [{}]\n  active_fraction: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]\n  active_hours_per_day: [1, 2, 3, 4, 5, 6]\narchitectures: [app-per-tenant, hybrid]\n",
        tenants.join(", ")
    );
    let s = scenario(&yaml);
    assert_eq!(s.row_count(1), 24_000);
    let catalog = Catalog::embedded().unwrap();
    let opts = RunOptions {
        pricing_date: Some(date()),
        today: date(),
        force: false,
    };
    let e = run(&s, &catalog, &opts).unwrap_err().to_string();
    assert!(
        e.contains("24000 rows") && e.contains("--force") && e.contains("test.yaml:5:"),
        "{e}"
    );
}

#[test]
fn renderings_hold_the_figures() {
    let r = report(FLEET);
    let text = super::render::text(&r);
    assert!(text.contains("$162.11"), "{text}");
    let md = super::render::markdown(&r);
    assert!(
        md.contains("| 14 |") && md.contains("## Break-even points"),
        "{md}"
    );
    let json = super::render::json(&r);
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4 * 2 * 2);
    for key in [
        "scenario",
        "architecture",
        "tenants",
        "monthly_usd",
        "per_tenant_usd",
        "machines",
    ] {
        assert!(rows[0].get(key).is_some(), "{key}");
    }
    assert_eq!(rows[0]["monthly_usd"].to_string(), "159.5907");
    assert!(json["break_even"].is_array());
}

#[test]
fn break_even_search_matches_brute_force() {
    // Every pair of FLEET's architectures (affine, ceil steps, a pool), 1..=1500 tenants:
    // the crossings found by the search are exactly those of a scan of every count.
    let s = scenario(FLEET);
    let catalog = Catalog::embedded().unwrap();
    let table = catalog.at(date()).unwrap();
    let tables = [table];
    let ctx = super::model::Context::new(&s, &tables);
    for f in ["0.1", "1"] {
        let p = super::model::Point {
            fraction: d(f),
            hours: d("4"),
            region: 0,
            table: 0,
        };
        let models: Vec<_> = (0..s.architectures.len())
            .map(|a| ctx.model(a, p).unwrap())
            .collect();
        let costs: Vec<Vec<Decimal>> = models
            .iter()
            .map(|m| (0..=1500).map(|n| m.cost(n).round_dp(6)).collect())
            .collect();
        for a in 0..models.len() {
            for b in a + 1..models.len() {
                let slope = |l: u64| {
                    let (alo, ahi) = models[a].increments(l);
                    let (blo, bhi) = models[b].increments(l);
                    (alo - bhi, ahi - blo)
                };
                let found = super::breakeven::crossings(
                    |n| costs[a][n as usize],
                    |n| costs[b][n as usize],
                    &slope,
                    1,
                    1500,
                    1_000_000,
                );
                let mut brute = Vec::new();
                for n in 2..=1500usize {
                    let before = costs[a][n - 1].cmp(&costs[b][n - 1]);
                    let after = costs[a][n].cmp(&costs[b][n]);
                    if before != after {
                        brute.push(n as u64);
                    }
                }
                let got: Vec<u64> = found.crossings.iter().map(|c| c.tenants).collect();
                assert_eq!(got, brute, "f {f}, {a} vs {b}");
                // The search evaluates far fewer counts than the scan.
                assert!(
                    found.evaluations < 150,
                    "f {f}, {a} vs {b}: {}",
                    found.evaluations
                );
            }
        }
    }
}

#[test]
fn break_even_search_matches_brute_force_on_the_examples() {
    // Every usage point and pair of the four example scenarios over their first 1,000
    // tenant counts: the search finds exactly the crossings of a full scan.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let catalog = Catalog::embedded().unwrap();
    for (at, plan, name) in plan_variants().into_iter().flat_map(|(at, plan)| {
        ["today", "containers", "hybrid", "shared-server"].map(|name| (at, plan, name))
    }) {
        let table = catalog.at(at).unwrap();
        let tables = [table];
        let mut s =
            super::scenario::load_file(&root.join(format!("examples/whatif/{name}.yaml"))).unwrap();
        s.org_plan = plan;
        let ctx = super::model::Context::new(&s, &tables);
        let lo = s.sweep.tenants[0];
        let hi = (*s.sweep.tenants.last().unwrap()).min(1000);
        for f in &s.sweep.active_fraction {
            for h in &s.sweep.active_hours_per_day {
                let p = super::model::Point {
                    fraction: *f,
                    hours: *h,
                    region: 0,
                    table: 0,
                };
                let models: Vec<_> = (0..s.architectures.len())
                    .map(|a| ctx.model(a, p).unwrap())
                    .collect();
                let costs: Vec<Vec<Decimal>> = models
                    .iter()
                    .map(|m| (0..=hi).map(|n| m.cost(n).round_dp(6)).collect())
                    .collect();
                // The increment bounds hold at every count.
                for m in &models {
                    let (flo, fhi) = m.increments(lo);
                    for n in lo..hi {
                        let step = m.cost(n + 1) - m.cost(n);
                        let (nlo, nhi) = m.increments(n);
                        // (to 1e-12: the last of 28 digits may round either way)
                        let e = d("0.000000000001");
                        assert!(
                            flo - e <= step
                                && step <= fhi + e
                                && nlo - e <= step
                                && step <= nhi + e,
                            "{name}: {step} at {n} not in {flo}..{fhi} / {nlo}..{nhi}"
                        );
                    }
                }
                for a in 0..models.len() {
                    for b in a + 1..models.len() {
                        let slope = |l: u64| {
                            let (alo, ahi) = models[a].increments(l);
                            let (blo, bhi) = models[b].increments(l);
                            (alo - bhi, ahi - blo)
                        };
                        let found = super::breakeven::crossings(
                            |n| costs[a][n as usize],
                            |n| costs[b][n as usize],
                            &slope,
                            lo,
                            hi,
                            1_000_000,
                        );
                        let brute: Vec<u64> = (lo + 1..=hi)
                            .filter(|n| {
                                let n = *n as usize;
                                costs[a][n - 1].cmp(&costs[b][n - 1])
                                    != costs[a][n].cmp(&costs[b][n])
                            })
                            .collect();
                        let got: Vec<u64> = found.crossings.iter().map(|c| c.tenants).collect();
                        assert_eq!(got, brute, "{name} f {f} h {h}: {a} vs {b}");
                    }
                }
            }
        }
    }
}

#[test]
fn mutated_scenarios_never_panic() {
    // Every value of every example scenario replaced by hostile ones: each load either
    // fails with diagnostics or yields a scenario that runs (a sample is run in full).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("examples/whatif");
    let catalog = Catalog::embedded().unwrap();
    let opts = RunOptions {
        pricing_date: Some(date()),
        today: date(),
        force: false,
    };
    let hostile = [
        "-1",
        "0",
        "1e309",
        "null",
        "[]",
        "{}",
        "99999999999999999999",
        "auto",
        "[0]",
        "2tb",
    ];
    let (mut loads, mut runs) = (0, 0);
    for name in ["today", "containers", "hybrid", "shared-server"] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.yaml"))).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(colon) = line.find(": ") else {
                continue;
            };
            if line.trim_start().starts_with('#') {
                continue;
            }
            // Four of the hostile values per line, rotating.
            for k in (0..4).map(|j| (i + 3 * j) % hostile.len()) {
                let h = hostile[k];
                let mut m = lines.clone();
                let mutated = format!("{}: {h}", &line[..colon]);
                m[i] = &mutated;
                let yaml = m.join("\n");
                loads += 1;
                if let Ok(s) = load_bytes(yaml.as_bytes(), "m.yaml", &dir)
                    && (i + k) % 23 == 0
                    && s.row_count(1) <= 200
                {
                    runs += 1;
                    let _ = run(&s, &catalog, &opts);
                }
            }
        }
    }
    assert!(loads > 500 && runs >= 3, "{loads} loads, {runs} runs");
}

/// The breakdown chart labels each architecture's row once (no empty extra row named
/// after the first one), and leaves room on the right for its legend.
#[test]
fn breakdown_chart_has_one_labelled_row_per_architecture() {
    let r = report(FLEET);
    let svg = super::charts::breakdown(&r);
    assert!(!r.breakdown.is_empty());
    for (a, _, _) in &r.breakdown {
        let name = &r.architectures[*a].name;
        // The SVG backend writes each text's content on a line of its own.
        let labels = svg.lines().filter(|l| l.trim() == name).count();
        assert_eq!(labels, 1, "{name}: {labels} labels");
    }
}

/// The sensitivity chart's cost axis is logarithmic, so lines an order of magnitude
/// apart are all readable.
#[test]
fn sensitivity_chart_uses_a_log_cost_axis() {
    let r = report(FLEET);
    let svg = super::charts::sensitivity(&r);
    assert!(svg.contains("USD per month (log scale)"), "{svg}");
}
