use std::str::FromStr;

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::fixtures::{app, backup, fleet, machine, usage, volume};
use super::*;
use crate::cost::engine::SCHEDULE_RULE;
use crate::money::to_cents;
use crate::pricing::Catalog;
use crate::resource::{IdleMode, ResourceSet, Spec, Usage};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn table(date: &str) -> PriceTable {
    let c = Catalog::embedded().unwrap();
    c.at(NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap())
        .unwrap()
        .clone()
}

fn report(date: &str, resources: Vec<Resource>) -> CostReport {
    let set = ResourceSet::new(resources);
    price_set(&table(date), &set, &Usage::default()).unwrap()
}

/// Exact equality up to the 28-digit precision of `Decimal` (repeating decimals such as
/// 10.69 × 4 / 24 cannot be represented exactly).
fn assert_close(a: Decimal, b: Decimal) {
    assert!((a - b).abs() < d("0.000000000001"), "{a} != {b}");
}

const NOW: &str = "2026-02-01";

// ---- Hand-computed checks (prices of pricing/fly/2026-01-01) ----

#[test]
fn always_on_shared_1x_2gb_in_iad_is_10_70() {
    // Preset shared-cpu-1x includes 256 MB: $0.00000075/s × 2,592,000 s = $1.944 per 30 days.
    // Additional RAM: 2048 − 256 = 1792 MB = 1.75 GB × ($0.00000193 × 2,592,000 = $5.00256)
    // = $8.75448.
    // Region iad multiplier 1, always on (idle: off): 720 of 720 h.
    // 1.944 + 8.75448 = $10.69848 → $10.70 (Fly lists $10.70).
    let m = machine(
        Some("a"),
        0,
        "iad",
        "shared-cpu-1x",
        2048,
        IdleMode::Off,
        None,
    );
    let r = report(NOW, vec![m]);
    assert_eq!(r.total, d("10.69848"));
    assert_eq!(to_cents(r.total), d("10.70"));
    assert_eq!(r.by_item["compute"], d("1.944"));
    assert_eq!(r.by_item["ram"], d("8.75448"));
    // The only warning: Fly's docs show newer prices without an effective date.
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("Fly's docs show newer prices since 2026-09-24"),
        "{:?}",
        r.warnings
    );
}

/// The always-on Machine of the test above, run by Fly on `schedule`.
fn scheduled(schedule: &str, u: Option<Usage>) -> Resource {
    let mut m = machine(Some("a"), 0, "iad", "shared-cpu-1x", 2048, IdleMode::Off, u);
    if let Spec::Machine(s) = &mut m.spec {
        s.config.schedule = Some(schedule.into());
    }
    m
}

#[test]
fn a_daily_scheduled_machine_is_started_one_hour_a_run() {
    // shared-cpu-1x 2 GB in iad: $10.69848 for 720 started hours (above). Daily without
    // usage.active_hours_per_day: 30 runs of one hour = 30 h: 10.69848 × 30/720 =
    // $0.44577 (compute 1.944/24 = 0.081, RAM 8.75448/24 = 0.36477); the other 690 h
    // pay rootfs: 1 GB × $0.15 × 690/720 = $0.14375. Total $0.58952 → $0.59.
    let r = report(NOW, vec![scheduled("daily", None)]);
    assert_eq!(r.by_item["compute"], d("0.081"));
    assert_eq!(r.by_item["ram"], d("0.36477"));
    assert_eq!(r.by_item["rootfs"], d("0.14375"));
    assert_eq!(r.total, d("0.58952"));
    assert_eq!(to_cents(r.total), d("0.59"));
    assert!(r.assumptions.rules.iter().any(|x| x == SCHEDULE_RULE));
    let note = r
        .lines
        .iter()
        .flat_map(|l| &l.assumptions)
        .find(|a| a.contains("schedule"));
    assert!(
        note.is_some_and(|n| n.contains("started 30 h of 720")),
        "{note:?}"
    );
    // Declared 2 h/day: 60 h: 10.69848 × 60/720 = 0.89154; rootfs 0.15 × 660/720 = 0.1375.
    let declared = Usage {
        active_hours_declared: true,
        ..usage(2)
    };
    let r = report(NOW, vec![scheduled("daily", Some(declared))]);
    assert_eq!(r.total, d("1.02904"));
    // A usage left at the spec's default (24 h, undeclared) gives the schedule's hours.
    assert_eq!(
        report(NOW, vec![scheduled("daily", Some(usage(24)))]).total,
        d("0.58952")
    );
    // Monthly: 1 h: 10.69848/720 = 0.0148590; rootfs 0.15 × 719/720 = 0.1497916…
    let r = report(NOW, vec![scheduled("monthly", None)]);
    assert_close(r.total, d("0.014859") + d("0.15") * d("719") / d("720"));
    // Hourly: started all 720 h, as an always-on Machine; unscheduled rules unchanged.
    assert_eq!(
        report(NOW, vec![scheduled("hourly", None)]).total,
        d("10.69848")
    );
    let plain = machine(
        Some("a"),
        0,
        "iad",
        "shared-cpu-1x",
        2048,
        IdleMode::Off,
        None,
    );
    let r = report(NOW, vec![plain]);
    assert!(!r.assumptions.rules.iter().any(|x| x == SCHEDULE_RULE));
}

#[test]
fn a_spec_that_declares_active_hours_prices_its_scheduled_machine_by_them() {
    // As above: the tenant without usage 30 h ($0.58952), the one with 2 h/day 60 h
    // ($1.02904).
    let spec = "version: 1\norg: o\ndefaults:\n  image: i\n  region: iad\n  memory: 2gb\n  schedule: daily\ntenants:\n  - name: a\n  - name: b\n    usage: { active_hours_per_day: 2 }\n";
    let l = crate::spec::load_bytes(spec.as_bytes(), "s.yaml").unwrap();
    let r = price_set(&table(NOW), &l.desired.resources, &l.desired.default_usage).unwrap();
    assert_eq!(r.by_tenant["a"], d("0.58952"));
    assert_eq!(r.by_tenant["b"], d("1.02904"));
}

#[test]
fn with_a_3gb_volume_it_is_11_15() {
    // 10.69848 + 3 GB × $0.15 = 10.69848 + 0.45 = $11.14848 → $11.15.
    // Snapshots (Fly's default 5-day retention, no backup policy declared):
    // 3 GB used × (1 + 0.05 × 4) = 3.6 GB × $0.08 = $0.288, all inside the
    // organization's free 10 GB, so the org line deducts $0.288 again.
    let m = machine(
        Some("a"),
        0,
        "iad",
        "shared-cpu-1x",
        2048,
        IdleMode::Off,
        None,
    );
    let v = volume("a", "data", "iad", 3, None);
    let r = report(NOW, vec![m, v]);
    assert_eq!(r.total, d("11.14848"));
    assert_eq!(r.by_item["volume"], d("0.45"));
    assert_eq!(r.by_item["snapshot"], d("0.288"));
    assert_eq!(r.by_item["snapshot_allowance"], d("-0.288"));
    // 11.14848 + 0.288 = 11.43648
    assert_eq!(r.by_tenant["a"], d("11.43648"));
    assert_eq!(r.by_tenant[ORG], d("-0.288"));
}

#[test]
fn suspended_4_hours_a_day_is_1_91_plus_volume() {
    // Started 4 h/day × 30 = 120 h of 720: 10.69848 × 120/720 = 10.69848 × 4/24 = 1.78308.
    // Suspended the other 600 h: rootfs 1 GB × $0.15 × 600/720 = 0.125.
    // Total 1.90808 → $1.91.  Exactly: total × 24 = 10.69848 × 4 + 0.15 × 20 = 45.79392.
    let m = machine(
        Some("a"),
        0,
        "iad",
        "shared-cpu-1x",
        2048,
        IdleMode::Suspend,
        Some(usage(4)),
    );
    let r = report(NOW, vec![m.clone()]);
    assert_close(r.total * d("24"), d("45.79392"));
    assert_eq!(to_cents(r.total), d("1.91"));
    assert_eq!(r.by_item["rootfs"], d("0.125"));
    // Plus the 3 GB volume: 3 × 0.15 = $0.45 (snapshots inside the free 10 GB).
    let r = report(NOW, vec![m, volume("a", "data", "iad", 3, None)]);
    // 1.90808 + 0.45 = 2.35808 → $2.36.
    assert_close(r.total * d("24"), d("45.79392") + d("0.45") * d("24"));
    assert_eq!(to_cents(r.total), d("2.36"));
}

/// Situation 2 of USERS_AND_SCENARIOS.md: one always-on router Machine (shared-cpu-1x,
/// 1 GB) plus, per user, a shared-cpu-1x 512 MB Machine that suspends when idle, with its
/// own volume and Fly's default 5-day snapshots; priced in iad.
fn situation_2(users: usize, hours: u32, volume_gb: u32, egress_gb: u32) -> Vec<Resource> {
    let mut v = vec![machine(
        None,
        0,
        "iad",
        "shared-cpu-1x",
        1024,
        IdleMode::Off,
        Some(usage(24)),
    )];
    for i in 0..users {
        let t = format!("user-{i}");
        let u = Usage {
            egress_gb_month: Decimal::from(egress_gb),
            ..usage(hours)
        };
        v.push(machine(
            Some(&t),
            0,
            "iad",
            "shared-cpu-1x",
            512,
            IdleMode::Suspend,
            Some(u),
        ));
        v.push(volume(&t, "data", "iad", volume_gb, None));
        v.push(backup(&t, "data", 5, true));
    }
    v
}

#[test]
fn situation_2_at_100_users_2h_5gb() {
    // Per user: compute+RAM 512 MB = 1.944 + 0.25 GB × 5.00256 = 3.19464 per 30 days,
    //   × 2/24 h = 0.26622; rootfs 1 GB × 0.15 × 22/24 = 0.1375;
    //   volume 5 × 0.15 = 0.75; snapshots 5 GB × (1 + 0.05 × 4) = 6 GB × 0.08 = 0.48.
    //   Sum 1.63372 × 100 users = 163.372 (× 3 = 490.116).
    // Router: 1.944 + 0.75 × 5.00256 = 5.69592. Free snapshots: −10 GB × 0.08 = −0.80.
    // Total = 163.372 + 5.69592 − 0.80 = 168.26792 → $168.27 (users claimed ≈ $81).
    let r = report(NOW, situation_2(100, 2, 5, 0));
    assert_close(
        r.total * d("3"),
        d("490.116") + (d("5.69592") - d("0.80")) * d("3"),
    );
    assert_eq!(to_cents(r.total), d("168.27"));
    assert_eq!(r.by_item["snapshot"], d("48"));
    assert_eq!(r.by_item["volume"], d("75"));
    assert_eq!(r.by_item["rootfs"], d("13.75"));
}

#[test]
fn situation_2_at_100_users_4h_1gb_10gb_egress() {
    // Per user: 3.19464 × 4/24 = 0.53244; rootfs 0.15 × 20/24 = 0.125; volume 0.15;
    //   snapshots 1 × 1.2 = 1.2 GB × 0.08 = 0.096; egress 10 GB × 0.02 = 0.20.
    //   Sum 1.10344 × 100 = 110.344 (× 3 = 331.032).
    // Router 5.69592; free snapshots −0.80. Total 115.23992 → $115.24 (users claimed ≈ $75).
    let r = report(NOW, situation_2(100, 4, 1, 10));
    assert_close(
        r.total * d("3"),
        d("331.032") + (d("5.69592") - d("0.80")) * d("3"),
    );
    assert_eq!(to_cents(r.total), d("115.24"));
    assert_eq!(r.by_item["egress"], d("20"));
}

#[test]
fn pricing_date_changes_only_the_snapshot_charges() {
    // 2025-06-01 is priced with 2024-11-01, 2026-02-01 with 2026-01-01: the only
    // difference is the snapshot charge ($0 → $0.08 per GB-month, 10 GB free).
    let fleet = situation_2(20, 4, 3, 5);
    let before = report("2025-06-01", fleet.clone());
    let after = report("2026-02-01", fleet);
    assert_eq!(before.pricing_version.to_string(), "2024-11-01");
    assert_eq!(after.pricing_version.to_string(), "2026-01-01");
    let snapshot_charges: Decimal = after
        .lines
        .iter()
        .filter(|l| matches!(l.item, Item::Snapshot | Item::SnapshotAllowance))
        .map(|l| l.monthly)
        .sum();
    // 20 volumes × 3 GB × 1.2 = 72 GB; (72 − 10) × 0.08 = 4.96.
    assert_eq!(snapshot_charges, d("4.96"));
    assert_eq!(after.total - before.total, snapshot_charges);
    for (a, b) in before.lines.iter().zip(&after.lines) {
        if a.item != Item::Snapshot {
            assert_eq!(
                (a.address.clone(), a.monthly),
                (b.address.clone(), b.monthly)
            );
        }
    }
}

#[test]
fn min_running_keeps_low_indexes_on() {
    let mut m0 = machine(
        Some("a"),
        0,
        "iad",
        "shared-cpu-1x",
        256,
        IdleMode::Stop,
        Some(usage(0)),
    );
    let mut m1 = machine(
        Some("a"),
        1,
        "iad",
        "shared-cpu-1x",
        256,
        IdleMode::Stop,
        Some(usage(0)),
    );
    for m in [&mut m0, &mut m1] {
        if let crate::resource::Spec::Machine(ms) = &mut m.spec {
            ms.idle.min_running = 1;
        }
    }
    let r = report(NOW, vec![m0, m1]);
    // Machine 0 always on: 1.944. Machine 1 never started: compute 0, rootfs 0.15.
    assert_eq!(
        r.by_address[&"tenant.a.machine[0]"
            .parse::<crate::resource::Address>()
            .unwrap()],
        d("1.944")
    );
    assert_eq!(
        r.by_address[&"tenant.a.machine[1]"
            .parse::<crate::resource::Address>()
            .unwrap()],
        d("0.15")
    );
}

#[test]
fn lax_multiplier_and_egress_groups() {
    // lax: 1.944 × 1.199519231 = 2.331865385064 (Fly lists $2.33); sin egress $0.04/GB.
    let m = machine(
        Some("a"),
        0,
        "lax",
        "shared-cpu-1x",
        256,
        IdleMode::Off,
        None,
    );
    let r = report(NOW, vec![m]);
    assert_eq!(r.total, d("2.331865385064"));
    assert_eq!(to_cents(r.total), d("2.33"));
    let u = Usage {
        egress_gb_month: d("10"),
        private_egress_gb_month: d("10"),
        ..Usage::default()
    };
    let m = machine(
        Some("b"),
        0,
        "sin",
        "shared-cpu-1x",
        256,
        IdleMode::Off,
        Some(u),
    );
    let r = report(NOW, vec![m]);
    assert_eq!(r.by_item["egress"], d("0.4"));
    assert_eq!(r.by_item["private_egress"], d("0.15"));
    // sin's markup (1.269230769) is published: nothing to warn about.
    assert!(r.unpublished.is_empty(), "{:?}", r.unpublished);
    assert!(
        r.warnings.iter().all(|w| w.contains("newer prices since")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn an_assumed_figure_is_warned_about_with_its_row() {
    // A table of one's own may still hold a placeholder; the report names its row.
    let mut t = table(NOW);
    let sin = t.regions.iter_mut().find(|r| r.region == "sin").unwrap();
    sin.prov.status = crate::pricing::Status::Assumed;
    sin.prov.note = "placeholder".into();
    let m = machine(
        Some("b"),
        0,
        "sin",
        "shared-cpu-1x",
        256,
        IdleMode::Off,
        None,
    );
    let set = ResourceSet::new(vec![m]);
    let r = price_set(&t, &set, &Usage::default()).unwrap();
    assert_eq!(r.unpublished.len(), 1);
    assert!(
        r.warnings[0].contains("regions.csv:16 `sin`"),
        "{}",
        r.warnings[0]
    );
    assert!(
        r.warnings[0].contains("assumed (placeholder)"),
        "{}",
        r.warnings[0]
    );
}

#[test]
fn app_addresses_and_certificates_with_free_allowance() {
    let u = Usage {
        dedicated_ipv4: 1,
        certificates: 4,
        wildcard_certificates: 1,
        ..Usage::default()
    };
    let apps: Vec<Resource> = (0..3)
        .map(|i| app(&format!("t{i}"), Some(u.clone())))
        .collect();
    let r = report(NOW, apps);
    // 3 × ($2 + 4 × $0.10 + $1) = 3 × 3.40 = 10.20; 12 certificates, 10 free: −1.00.
    assert_eq!(r.by_item["certificate_allowance"], d("-1"));
    assert_eq!(r.total, d("9.2"));
}

/// A certificate resource of tenant `t0`'s app.
fn cert_of_t0(hostname: &str) -> Resource {
    let owner = crate::resource::Owner::Tenant("t0");
    Resource {
        address: crate::resource::Address::certificate(&owner, hostname),
        tenant: Some("t0".into()),
        app: "app-t0".into(),
        prevent_destroy: false,
        id: None,
        usage: None,
        spec: crate::resource::Spec::Certificate(Box::new(crate::resource::CertSpec {
            hostname: hostname.into(),
            status: None,
        })),
    }
}

#[test]
fn declared_certificates_replace_only_the_certificate_assumptions() {
    let u = Usage {
        dedicated_ipv4: 1,
        certificates: 4,
        ..Usage::default()
    };
    // The app declares one hostname and no `ips`: the certificate is priced from the
    // declaration, the dedicated IPv4 still from `usage.dedicated_ipv4`.
    let r = report(NOW, vec![app("t0", Some(u)), cert_of_t0("t0.example.com")]);
    assert_eq!(r.by_item["dedicated_ipv4"], d("2"));
    assert_eq!(r.by_item["certificate"], d("0.1"));
    let keys: Vec<&str> = r.usage_rates.iter().map(|u| u.usage_key).collect();
    assert!(
        !keys.contains(&"usage.certificates") && !keys.contains(&"usage.wildcard_certificates"),
        "{keys:?}"
    );
}

/// Tenant `a`'s 100 GB volume `data` with 50 GB used, changing 10 % a day.
fn backed_volume() -> Resource {
    volume(
        "a",
        "data",
        "iad",
        100,
        Some(Usage {
            volume_used_gb: Some(d("50")),
            snapshot_daily_change: d("0.1"),
            ..Usage::default()
        }),
    )
}

#[test]
fn backup_policy_controls_snapshots() {
    let m = |retention, on| {
        report(
            NOW,
            vec![backed_volume(), backup("a", "data", retention, on)],
        )
    };
    // 50 GB × (1 + 0.1 × 13) = 115 GB × 0.08 = 9.20, minus 10 free GB (0.80).
    let r = m(14, true);
    assert_eq!(r.by_item["snapshot"], d("9.2"));
    assert_eq!(r.total, d("15") + d("9.2") - d("0.8"));
    // Automatic snapshots off: no snapshot line.
    let r = m(14, false);
    assert!(!r.by_item.contains_key("snapshot"));
    assert_eq!(r.total, d("15"));
}

#[test]
fn a_backup_policy_finds_its_volume_near_it_or_far_from_it() {
    // The policy looks beside itself first, then in the index: the snapshot is priced
    // wherever its volume is, in a set and in a list of references alike.
    let others = || {
        (0..20).map(|i| {
            machine(
                Some("b"),
                i,
                "iad",
                "shared-cpu-1x",
                256,
                IdleMode::Off,
                None,
            )
        })
    };
    let near = vec![backed_volume(), backup("a", "data", 14, true)];
    let far: Vec<Resource> = std::iter::once(backed_volume())
        .chain(others())
        .chain([backup("a", "data", 14, true)])
        .collect();
    let t = table(NOW);
    let fallback = Usage::default();
    for set in [ResourceSet::new(near), ResourceSet::new(far)] {
        let from_set = Pricer::new(&t, &set, &fallback).summary().unwrap();
        let from_list = Pricer::over(&t, set.iter().collect(), &fallback)
            .summary()
            .unwrap();
        for s in [&from_set, &from_list] {
            assert_eq!(s.by_item["snapshot"], d("9.2"), "{} resources", set.len());
        }
        assert_eq!(from_set.total, from_list.total);
    }
}

#[test]
fn every_line_is_traceable() {
    let r = report(NOW, situation_2(3, 4, 1, 10));
    for l in &r.lines {
        assert!(!l.sources.is_empty(), "{}", l.description);
        assert!(!l.assumptions.is_empty(), "{}", l.description);
        assert_eq!(l.pricing_version.to_string(), "2026-01-01");
        for s in &l.sources {
            let c = &r.citations[s];
            assert!(c.url.starts_with("https://"));
            assert!(c.file.starts_with("pricing/fly/2026-01-01/"));
        }
    }
}

#[test]
fn unknown_region_and_preset_are_errors_with_suggestions() {
    let set = ResourceSet::new(vec![
        machine(
            Some("a"),
            0,
            "sjx",
            "shared-cpu-1x",
            256,
            IdleMode::Off,
            None,
        ),
        machine(
            Some("b"),
            0,
            "iad",
            "shared-cpu-3x",
            256,
            IdleMode::Off,
            None,
        ),
    ]);
    let e = price_set(&table(NOW), &set, &Usage::default()).unwrap_err();
    assert_eq!(e.0.len(), 2);
    let s = e.to_string();
    assert!(
        s.contains(
            "error: region `sjx` has no price in pricing 2026-01-01 (regions.csv); did you mean sjc"
        ),
        "{s}"
    );
    assert!(s.contains("= resource: tenant.a.machine[0]"), "{s}");
    assert!(
        s.contains("error: preset `shared-cpu-3x` has no price"),
        "{s}"
    );
    assert!(s.contains("= resource: tenant.b.machine[0]"), "{s}");
}

#[test]
fn bad_usage_is_an_error() {
    let m = machine(
        Some("a"),
        0,
        "iad",
        "shared-cpu-1x",
        256,
        IdleMode::Stop,
        Some(usage(25)),
    );
    let set = ResourceSet::new(vec![m]);
    let e = price_set(&table(NOW), &set, &Usage::default()).unwrap_err();
    assert!(
        e.to_string().contains("usage.active_hours_per_day is 25"),
        "{e}"
    );
    let v = volume(
        "a",
        "data",
        "iad",
        3,
        Some(Usage {
            volume_used_gb: Some(d("4")),
            ..Usage::default()
        }),
    );
    let e = price_set(&table(NOW), &ResourceSet::new(vec![v]), &Usage::default()).unwrap_err();
    assert!(e.to_string().contains("volume_used_gb is 4"), "{e}");
}

#[test]
fn single_resource_pricing_for_plans() {
    let m = machine(
        Some("a"),
        0,
        "iad",
        "shared-cpu-1x",
        2048,
        IdleMode::Off,
        None,
    );
    let set = ResourceSet::new(vec![m.clone()]);
    let t = table(NOW);
    let c = price_resource(&t, &m, &set, &Usage::default()).unwrap();
    assert_eq!(c.monthly, d("10.69848"));
    assert_eq!(c.lines.len(), 2);
    // An observed resource without usage is priced with its desired counterpart's usage.
    let fallback = Usage::default();
    let mut stop = m.clone();
    if let crate::resource::Spec::Machine(ms) = &mut stop.spec {
        ms.idle.mode = IdleMode::Stop;
    }
    assert!(stop.usage.is_none());
    let desired = ResourceSet::new(vec![Resource {
        usage: Some(usage(12).into()),
        ..stop.clone()
    }]);
    let c = Pricer::new(&t, &set, &fallback)
        .borrow_usage_from(&desired)
        .price(&stop)
        .unwrap();
    // 10.69848 / 2 + 0.15 / 2 = 5.34924 + 0.075 = 5.42424
    assert_eq!(c.monthly, d("5.42424"));
    // The borrowed usage is not the fallback.
    assert!(
        c.lines
            .iter()
            .all(|l| l.assumptions.iter().all(|a| !a.contains("default"))),
        "{:?}",
        c.lines
    );
}

// ---- Deltas and budgets ----

#[test]
fn delta_by_tenant_and_address() {
    let base = report(NOW, situation_2(3, 2, 5, 0));
    let mut head_res = situation_2(3, 2, 5, 0);
    head_res.retain(|r| r.tenant.as_deref() != Some("user-2"));
    head_res.push(machine(
        Some("user-9"),
        0,
        "iad",
        "shared-cpu-1x",
        2048,
        IdleMode::Off,
        None,
    ));
    let head = report(NOW, head_res);
    let dl = delta(&base, &head);
    assert_eq!(dl.delta, head.total - base.total);
    let keys: Vec<(&str, ChangeStatus)> = dl
        .tenants
        .iter()
        .map(|c| (c.key.as_str(), c.status))
        .collect();
    assert!(keys.contains(&("user-9", ChangeStatus::Added)), "{keys:?}");
    assert!(
        keys.contains(&("user-2", ChangeStatus::Removed)),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|(k, _)| *k == "user-0"));
    // Tenant deltas add up to the total delta, to the micro-dollar.
    let sum: Decimal = dl.tenants.iter().map(|c| c.delta).sum();
    assert_eq!(sum.round_dp(6), dl.delta.round_dp(6));
}

#[test]
fn budget_verdicts() {
    let b = Budget {
        max_monthly: Some(d("100")),
        max_increase: None,
    };
    assert_eq!(
        check_budget(&b, d("100.004"), None).unwrap(),
        Verdict::Within
    );
    let v = check_budget(&b, d("100.01"), None).unwrap();
    assert_eq!(
        v,
        Verdict::Exceeded {
            reason: "budget exceeded: monthly cost $100.01 exceeds --max-monthly $100.00".into()
        }
    );
    let pct = Budget {
        max_monthly: None,
        max_increase: Some("10%".parse().unwrap()),
    };
    assert_eq!(
        check_budget(&pct, d("110"), Some(d("100"))).unwrap(),
        Verdict::Within
    );
    let v = check_budget(&pct, d("110.5"), Some(d("100"))).unwrap();
    assert!(v.exceeded());
    if let Verdict::Exceeded { reason } = v {
        assert_eq!(
            reason,
            "budget exceeded: monthly increase +$10.50 (+10.5%) exceeds --max-increase 10%"
        );
        assert!(!reason.contains('\n'));
    }
    let usd = Budget {
        max_monthly: None,
        max_increase: Some("$5".parse().unwrap()),
    };
    assert!(
        check_budget(&usd, d("10"), Some(d("4")))
            .unwrap()
            .exceeded()
    );
    assert!(!check_budget(&usd, d("9"), Some(d("4"))).unwrap().exceeded());
    assert!(
        check_budget(&pct, d("1"), Some(Decimal::ZERO))
            .unwrap()
            .exceeded()
    );
    assert_eq!(
        check_budget(&usd, d("1"), None),
        Err(BudgetError::IncreaseNeedsBase)
    );
    assert!("ten".parse::<IncreaseLimit>().is_err());
    assert!("-5%".parse::<IncreaseLimit>().is_err());
}

// ---- Reservation blocks ----

#[test]
fn reservation_blocks() {
    let t = table(NOW);
    // $10.69 of shared compute in iad: two $5 blocks ($36/yr each = $3/mo) cover $10,
    // $0.69 stays on demand: 6 + 0.69 = $6.69, saving $4.00.
    let p = cheapest_reservation(&t, "iad", crate::platform::CpuKind::Shared, d("10.69"));
    assert_eq!(p.blocks.len(), 1);
    assert_eq!(
        (p.blocks[0].credit_per_month, p.blocks[0].count),
        (d("5"), 2)
    );
    assert_eq!(p.monthly_with_blocks, d("6.69"));
    assert_eq!(p.savings_monthly, d("4"));
    // $1,000 of performance compute: blocks of $200 ×5 → $600/mo amortised.
    let p = cheapest_reservation(&t, "fra", crate::platform::CpuKind::Performance, d("1000"));
    assert_eq!(p.monthly_with_blocks, d("600"));
    assert_eq!(p.uncovered_monthly, Decimal::ZERO);
    // $2 of spend: a $5 block costs $3/mo, more than paying $2 on demand.
    let p = cheapest_reservation(&t, "iad", crate::platform::CpuKind::Shared, d("2"));
    assert!(p.blocks.is_empty());
    assert_eq!(p.savings_monthly, Decimal::ZERO);
    // Spend by region and class from a report: router 1.944 + 0.75 × 5.00256 = 5.69592,
    // two users always on at 1.944 + 0.25 × 5.00256 = 3.19464 each = 6.38928.
    let r = report(NOW, situation_2(2, 24, 1, 0));
    let spend = reservation_spend(&r);
    assert_eq!(
        spend[&("iad".to_string(), crate::platform::CpuKind::Shared)],
        d("5.69592") + d("6.38928")
    );
}

// ---- Rendering ----

#[test]
fn json_has_the_contract_fields() {
    let base = report(NOW, situation_2(2, 2, 5, 0));
    let head = report(NOW, situation_2(3, 2, 5, 0));
    let dl = delta(&base, &head);
    let verdict = Verdict::Exceeded {
        reason: "budget exceeded: x".into(),
    };
    let v = render::View {
        title: "t",
        report: &head,
        base: Some((&base, &dl)),
        verdict: Some(&verdict),
    };
    let j = render::json(&v).unwrap();
    for k in [
        "pricing_version",
        "monthly_usd",
        "by_tenant",
        "by_kind",
        "lines",
        "assumptions",
        "base_monthly_usd",
        "delta_usd",
        "budget",
    ] {
        assert!(j.get(k).is_some(), "missing {k}");
    }
    for k in ["address", "kind", "tenant", "description", "monthly_usd"] {
        assert!(j["lines"][0].get(k).is_some(), "missing line field {k}");
    }
    assert_eq!(j["pricing_version"], "2026-01-01");
    assert_eq!(j["assumptions"]["hours_per_month"], 720);
    assert_eq!(j["budget"]["exceeded"], true);
    // Money has at most 4 decimals.
    let total = j["monthly_usd"].to_string();
    assert!(
        total
            .split('.')
            .nth(1)
            .map(|f| f.len() <= 4)
            .unwrap_or(true),
        "{total}"
    );
    let md = render::markdown(&v);
    assert!(md.starts_with(render::MARKDOWN_MARKER));
    assert!(md.contains("budget exceeded: x"));
    assert!(md.contains("| user-2 |"), "{md}");
    assert!(md.contains("<details>"));
    assert!(md.contains("720 hours"));
    let tx = render::text(&v);
    assert!(tx.contains("720 hours"));
    assert!(tx.contains("user-2"));
}

// ---- Properties ----

fn arb_idle() -> impl Strategy<Value = IdleMode> {
    prop_oneof![
        Just(IdleMode::Off),
        Just(IdleMode::Stop),
        Just(IdleMode::Suspend)
    ]
}

fn arb_region() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("iad"),
        Just("lax"),
        Just("sin"),
        Just("jnb"),
        Just("fra")
    ]
}

fn one_machine(
    hours: u32,
    memory_mb: u32,
    rootfs_gb: u32,
    region: &str,
    idle: IdleMode,
) -> CostReport {
    let u = Usage {
        rootfs_gb: Decimal::from(rootfs_gb),
        ..usage(hours)
    };
    report(
        NOW,
        vec![machine(
            Some("a"),
            0,
            region,
            "shared-cpu-1x",
            memory_mb,
            idle,
            Some(u),
        )],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// More active hours never cost less (rootfs up to 8 GB is always cheaper per hour
    /// than the smallest started Machine: 8 × 0.15 = 1.20 < 1.94).
    #[test]
    fn monotone_in_active_hours(h in 0u32..24, mem in 1u32..=8, rootfs in 0u32..=8,
                                region in arb_region(), idle in arb_idle()) {
        let a = one_machine(h, mem * 256, rootfs, region, idle);
        let b = one_machine(h + 1, mem * 256, rootfs, region, idle);
        prop_assert!(b.total >= a.total, "{} h: {} > {} h: {}", h, a.total, h + 1, b.total);
    }

    #[test]
    fn monotone_in_memory(h in 0u32..=24, mem in 1u32..8, region in arb_region(), idle in arb_idle()) {
        let a = one_machine(h, mem * 256, 1, region, idle);
        let b = one_machine(h, (mem + 1) * 256, 1, region, idle);
        prop_assert!(b.total >= a.total);
    }

    #[test]
    fn monotone_in_volume_size(size in 1u32..200, extra in 1u32..50, used in proptest::option::of(0u32..=1)) {
        let u = used.map(|_| Usage { volume_used_gb: Some(Decimal::ONE), ..Usage::default() });
        let a = report(NOW, vec![volume("a", "data", "iad", size, u.clone())]);
        let b = report(NOW, vec![volume("a", "data", "iad", size + extra, u)]);
        prop_assert!(b.total > a.total);
    }

    /// The sum of line items equals the total, and every breakdown sums to it, to the
    /// micro-dollar (in fact exactly).
    #[test]
    fn lines_sum_to_total(specs in proptest::collection::vec(
        (0u32..=24, 1u32..=8, arb_region(), arb_idle(), 1u32..50, 0u32..30, 0u32..3), 1..25)) {
        let mut res = Vec::new();
        for (i, (h, mem, region, idle, vol, egress, certs)) in specs.into_iter().enumerate() {
            let t = format!("t{}", i % 7);
            let idx = (i / 7) as u32;
            let u = Usage {
                egress_gb_month: Decimal::from(egress),
                certificates: certs,
                ..usage(h)
            };
            let mut m = machine(Some(&t), idx, region, "shared-cpu-1x", mem * 256, idle, Some(u.clone()));
            m.address = crate::resource::Address::machine(&crate::resource::Owner::Tenant(&t), idx);
            let mut v = volume(&t, &format!("v{idx}"), region, vol, None);
            v.address =
                crate::resource::Address::volume(&crate::resource::Owner::Tenant(&t), &format!("v{idx}"), 0);
            res.push(m);
            res.push(v);
            if idx == 0 {
                res.push(app(&t, Some(u)));
            }
        }
        let r = report(NOW, res);
        let micro = |x: Decimal| x.round_dp(6);
        let lines: Decimal = r.lines.iter().map(|l| l.monthly).sum();
        prop_assert_eq!(micro(lines), micro(r.total));
        prop_assert_eq!(lines, r.total);
        for map in [&r.by_tenant, &r.by_kind, &r.by_item] {
            let s: Decimal = map.values().copied().sum();
            prop_assert_eq!(micro(s), micro(r.total));
        }
        let s: Decimal = r.by_address.values().copied().sum();
        prop_assert_eq!(micro(s), micro(r.total));
    }
}

// ---- Totals without line items (what a plan shows) ----

/// `summary` is `report` without the lines: same total, items, warnings and per-resource
/// amounts.
fn assert_summary_matches_report(set: &ResourceSet, fallback: &Usage) {
    let t = table(NOW);
    let report = price_set(&t, set, fallback).unwrap();
    let summary = Pricer::new(&t, set, fallback).summary().unwrap();
    assert_eq!(summary.total, report.total);
    assert_eq!(summary.warnings, report.warnings);
    let items: BTreeMap<String, Decimal> = summary
        .by_item
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(items, report.by_item);
    let by_address = summary.by_address();
    assert_eq!(summary.by_position.len(), set.len());
    assert_eq!(by_address.len(), set.len());
    for r in set.iter() {
        let from_report = report.by_address.get(&r.address).copied();
        assert_eq!(
            by_address[&r.address],
            from_report.unwrap_or_default(),
            "{}",
            r.address
        );
    }
}

#[test]
fn summary_matches_the_full_report() {
    // Regions with assumed multipliers (warnings), backups, templates reused across
    // tenants, always-on routers, apps with certificates (an org allowance line).
    assert_summary_matches_report(&fleet(40), &Usage::default());
    let mut v = situation_2(7, 3, 5, 2);
    let u = Usage {
        certificates: 6,
        dedicated_ipv4: 1,
        ..Usage::default()
    };
    v.extend((0..3).map(|i| app(&format!("user-{i}"), Some(u.clone()))));
    assert_summary_matches_report(&ResourceSet::new(v), &usage(5));
}

#[test]
fn a_pricer_over_borrowed_resources_borrows_usage_by_address() {
    // Observed resources carry no usage; priced over references with the desired set's
    // usage, they cost what the desired resources cost.
    let desired = fleet(12);
    let observed: Vec<Resource> = desired
        .iter()
        .map(|r| Resource {
            usage: None,
            ..r.clone()
        })
        .collect();
    let observed = ResourceSet::new(observed);
    let t = table(NOW);
    let fallback = usage(24);
    let want = price_set(&t, &desired, &fallback).unwrap();
    let got = Pricer::over(&t, observed.iter().collect(), &fallback)
        .borrow_usage_from(&desired)
        .summary()
        .unwrap();
    assert_eq!(got.total, want.total);
    // Without borrowing, the fallback (always started) applies and costs more.
    let unborrowed = Pricer::over(&t, observed.iter().collect(), &fallback)
        .summary()
        .unwrap();
    assert!(unborrowed.total > want.total, "{}", unborrowed.total);
}

#[test]
fn a_repeated_address_sums_in_summary_and_report() {
    let m = machine(
        Some("a"),
        0,
        "iad",
        "shared-cpu-1x",
        2048,
        IdleMode::Off,
        None,
    );
    let t = table(NOW);
    let fallback = Usage::default();
    let items = vec![&m, &m];
    let report = Pricer::over(&t, items.clone(), &fallback).report().unwrap();
    let summary = Pricer::over(&t, items, &fallback).summary().unwrap();
    // 2 × 10.69848 = 21.39696
    assert_eq!(report.by_address[&m.address], d("21.39696"));
    assert_eq!(summary.by_address()[&m.address], d("21.39696"));
    assert_eq!(summary.total, report.total);
}

#[test]
fn a_fleet_pays_its_lock_sentinel_s_rootfs_once_in_report_and_summary() {
    let t = table(NOW);
    let set = ResourceSet::new(vec![
        app("a", None),
        machine(
            Some("a"),
            0,
            "iad",
            "shared-cpu-1x",
            256,
            IdleMode::Off,
            None,
        ),
    ]);
    let fallback = Usage::default();
    let plain = price_set(&t, &set, &fallback).unwrap();
    let fleet = price_fleet(&t, &set, &fallback, "flotilla-lock-o-f").unwrap();
    let lock: Vec<&LineItem> = fleet
        .lines
        .iter()
        .filter(|l| l.address.to_string() == "org.fleet-lock")
        .collect();
    assert_eq!(lock.len(), 1);
    // 0.005 GB × $0.15 per GB-month (storage.csv rootfs) = $0.00075.
    assert_eq!(lock[0].monthly, d("0.00075"));
    assert_eq!(lock[0].unit_price, t.storage.rootfs.price);
    assert_eq!(lock[0].app.as_deref(), Some("flotilla-lock-o-f"));
    assert_eq!(fleet.total, plain.total + d("0.00075"));
    let summary = Pricer::new(&t, &set, &fallback)
        .with_fleet_lock("flotilla-lock-o-f")
        .summary()
        .unwrap();
    assert_eq!(summary.total, fleet.total);
}

// ---- Display figures add up; delta status and reasons ----

/// Every breakdown of `r`, as displayed at `dp` decimals, sums to the displayed total;
/// every resource's components sum to its displayed subtotal.
fn assert_breakdowns_add_up(r: &CostReport, dp: u32) {
    let s = display::Shown::new(r, dp);
    assert_eq!(s.total, display::round(r.total, dp));
    let sum = |v: &mut dyn Iterator<Item = Decimal>| v.sum::<Decimal>();
    assert_eq!(sum(&mut s.lines.iter().copied()), s.total, "lines");
    assert_eq!(
        sum(&mut s.resources.iter().map(|x| x.shown)),
        s.total,
        "resources"
    );
    for res in &s.resources {
        let parts = sum(&mut res.lines.iter().map(|&i| s.lines[i]));
        assert_eq!(parts, res.shown, "{}", res.address);
    }
    for (name, m) in [
        ("tenant", &s.by_tenant),
        ("kind", &s.by_kind),
        ("item", &s.by_item),
    ] {
        assert_eq!(sum(&mut m.values().copied()), s.total, "by {name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn every_breakdown_sums_to_its_total_at_display_precision(
        tenants in 1usize..40,
        dp in prop_oneof![Just(2u32), Just(4u32)],
    ) {
        // fleet(): 1-8 active hours, 0-19 GB egress and six regions: repeating decimals
        // (hours / 24 x a 9-decimal markup) in nearly every line.
        let set = fleet(tenants);
        let r = price_set(&table(NOW), &set, &Usage::default()).unwrap();
        assert_breakdowns_add_up(&r, dp);
    }
}

#[test]
fn a_hundred_identical_tenants_add_up_in_cents() {
    // 100 × (1.682233… per tenant) at display precision: rounded one by one the lines
    // would miss the total by cents; allocated they sum to it exactly.
    let r = report(NOW, situation_2(100, 2, 5, 0));
    assert_breakdowns_add_up(&r, 2);
    assert_breakdowns_add_up(&r, 4);
}

#[test]
fn a_new_ipv4_on_an_existing_app_is_a_change_with_its_reason() {
    let with_ip = Usage {
        dedicated_ipv4: 1,
        ..Usage::default()
    };
    let base = report(NOW, vec![app("alice", None)]);
    let head = report(NOW, vec![app("alice", Some(with_ip))]);
    let dl = delta(&base, &head);
    assert_eq!(dl.addresses.len(), 1, "{:?}", dl.addresses);
    let c = &dl.addresses[0];
    assert_eq!(c.key, "tenant.alice.app");
    assert_eq!(c.status, ChangeStatus::Changed);
    // 1 address × $2.00 per app-month.
    assert_eq!(c.reasons, vec!["dedicated IPv4 added (1 address): +$2.00"]);
    // And the reverse: the app stays, the address goes.
    let back = delta(&head, &base);
    assert_eq!(back.addresses[0].status, ChangeStatus::Changed);
    assert_eq!(
        back.addresses[0].reasons,
        vec!["dedicated IPv4 removed (1 address): -$2.00"]
    );
}

#[test]
fn a_removed_item_on_a_kept_machine_and_a_resized_one() {
    // Base: 2 GB always on, 10 GB egress. Head: 4 GB, no egress.
    let egress = Usage {
        egress_gb_month: d("10"),
        ..Usage::default()
    };
    let m = |mb, u| machine(Some("bob"), 0, "iad", "shared-cpu-1x", mb, IdleMode::Off, u);
    let base = report(NOW, vec![m(2048, Some(egress))]);
    let head = report(NOW, vec![m(4096, None)]);
    let dl = delta(&base, &head);
    let c = &dl.addresses[0];
    assert_eq!(c.status, ChangeStatus::Changed);
    // Memory: (4096 - 256) / 1024 = 3.75 GB vs 1.75 GB: 2 GB × $5.00256 = +$10.01.
    // Egress: 10 GB × $0.02 = $0.20 removed.
    assert_eq!(
        c.reasons,
        vec![
            "memory 1.75 GB → 3.75 GB: +$10.01",
            "egress removed (10 GB): -$0.20",
        ]
    );
    // A resource only in the head is added, one only in the base removed.
    let dl = delta(&report(NOW, vec![]), &base);
    assert_eq!(dl.addresses[0].status, ChangeStatus::Added);
    let dl = delta(&base, &report(NOW, vec![]));
    assert_eq!(dl.addresses[0].status, ChangeStatus::Removed);
}

#[test]
fn zero_usage_leaves_its_price_visible() {
    let r = report(NOW, vec![app("alice", None), m_iad()]);
    let keys: Vec<&str> = r.usage_rates.iter().map(|u| u.usage_key).collect();
    assert_eq!(
        keys,
        vec![
            "usage.dedicated_ipv4",
            "usage.certificates",
            "usage.wildcard_certificates",
            "usage.egress_gb_month",
            "usage.private_egress_gb_month",
        ]
    );
    let egress = &r.usage_rates[3];
    assert_eq!(egress.unit_price, d("0.02"));
    assert_eq!(egress.unit, "GB");
}

fn m_iad() -> Resource {
    machine(
        Some("alice"),
        0,
        "iad",
        "shared-cpu-1x",
        2048,
        IdleMode::Off,
        None,
    )
}

#[test]
fn an_assumed_multiplier_counts_only_the_lines_it_prices() {
    // sin assumed; a 2 GB Machine with 10 GB of egress has compute, ram and egress
    // lines: the multiplier prices compute and ram (2 lines), not egress.
    let mut t = table(NOW);
    let sin = t.regions.iter_mut().find(|r| r.region == "sin").unwrap();
    sin.prov.status = crate::pricing::Status::Assumed;
    sin.prov.note = "placeholder".into();
    let u = Usage {
        egress_gb_month: d("10"),
        ..Usage::default()
    };
    let m = machine(
        Some("b"),
        0,
        "sin",
        "shared-cpu-1x",
        2048,
        IdleMode::Off,
        Some(u),
    );
    let r = price_set(&t, &ResourceSet::new(vec![m]), &Usage::default()).unwrap();
    assert!(r.lines.iter().any(|l| l.item == Item::Egress));
    assert_eq!(r.unpublished[0].lines, 2);
    assert!(
        r.warnings[0].contains("2 line items use it"),
        "{}",
        r.warnings[0]
    );
}
