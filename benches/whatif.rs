//! What-if benchmark (no harness): a sweep of 4 architectures × 8 tenant counts × 5 active
//! fractions × 3 hour settings (480 rows), run and rendered as HTML, timing each phase.
//! Run with `cargo bench --bench whatif`; figures go to BENCHMARKS.md (## What-if).

// A benchmark harness over generated data: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use flotilla::pricing::Catalog;
use flotilla::whatif::{self, RunOptions, render};

const SCENARIO: &str = r#"
version: 1
name: benchmark sweep
base:
  profile:
    size: shared-cpu-1x
    memory: 1gb
    idle: suspend
    region: iad
    volume_gb: 3
    rootfs_gb: 1
    egress_gb_month: 5
  memory_model: { base_mb: 300, agent_mb: 800, agents_per_active_tenant: 1, headroom_pct: 40 }
sweep:
  tenants: [14, 50, 100, 500, 1000, 2500, 5000, 10000]
  active_fraction: [0.05, 0.1, 0.25, 0.5, 1]
  active_hours_per_day: [2, 8, 24]
  pricing_date: [2026-02-01]
architectures:
  - { kind: app-per-tenant, idle: off }
  - { kind: machine-per-tenant, idle: suspend }
  - { kind: shared-pool, min_machines: 1 }
  - { kind: hybrid, idle: stop, shared: [{ name: gateway, count: 2, size: shared-cpu-2x, memory: 1gb }] }
"#;

fn time<T>(what: &str, runs: u32, mut f: impl FnMut() -> T) -> (T, Duration) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        out = Some(v);
    }
    println!(
        "{what:<48} {:>9.1} ms (best of {runs})",
        best.as_secs_f64() * 1000.0
    );
    match out {
        Some(v) => (v, best),
        None => unreachable!("runs > 0"),
    }
}

fn main() {
    let runs = 5;
    let date = NaiveDate::from_ymd_opt(2026, 2, 1).expect("a date");
    let opts = RunOptions {
        pricing_date: Some(date),
        today: date,
        force: false,
    };
    let (catalog, t_catalog) = time("load embedded pricing", runs, || {
        Catalog::embedded().expect("embedded pricing loads")
    });
    let (scenario, t_load) = time("parse and validate the scenario", runs, || {
        whatif::load_bytes(SCENARIO.as_bytes(), "bench.yaml", Path::new(".")).expect("valid")
    });
    let (report, t_run) = time("run: 480 rows, break-even, advice", runs, || {
        whatif::run(&scenario, &catalog, &opts).expect("runs")
    });
    println!(
        "  {} rows, {} break-even points, {} usage points",
        report.rows.len(),
        report.break_even.len(),
        report.points.len()
    );
    let (html, t_html) = time("render HTML (4 SVG charts)", runs, || render::html(&report));
    println!("  {} KB of HTML", html.len() / 1024);
    time("render JSON", runs, || {
        render::json_string(&report).map_or(0, |s| s.len())
    });
    time("render Markdown", runs, || render::markdown(&report));
    time("render text", runs, || render::text(&report));
    let (_, t_all) = time("end to end (parse + run + HTML)", runs, || {
        let s =
            whatif::load_bytes(SCENARIO.as_bytes(), "bench.yaml", Path::new(".")).expect("valid");
        let r = whatif::run(&s, &catalog, &opts).expect("runs");
        render::html(&r).len()
    });
    let sum = t_catalog + t_load + t_run + t_html;
    println!(
        "sum of phases {:.1} ms; end to end {:.1} ms (target ≤ 1000 ms)",
        sum.as_secs_f64() * 1000.0,
        t_all.as_secs_f64() * 1000.0
    );
}
