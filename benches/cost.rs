//! Cost benchmark (no harness): prices the generated 10,000-tenant spec
//! (tests/fixtures/cost/fleet-10k.yaml) and a hand-built fleet of 40,000+ resources,
//! timing each phase. Run with `cargo bench --bench cost`; figures go to BENCHMARKS.md.

// A benchmark harness over generated data: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use flotilla::cost::{self, fixtures, render};
use flotilla::pricing::Catalog;
use flotilla::resource::Usage;

fn time<T>(what: &str, runs: u32, mut f: impl FnMut() -> T) -> T {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        out = Some(v);
    }
    println!(
        "{what:<52} {:>9.1} ms (best of {runs})",
        best.as_secs_f64() * 1000.0
    );
    match out {
        Some(v) => v,
        None => unreachable!("runs > 0"),
    }
}

fn main() {
    let runs = 5;
    let catalog = time("load embedded pricing (7 versions)", runs, || {
        Catalog::embedded().expect("embedded pricing loads")
    });
    let table = catalog.latest().expect("a version").clone();

    // Hand-built: 10,000 tenants × (app, Machine, volume, backup policy) + 2 routers.
    let set = fixtures::fleet(10_000);
    let fallback = Usage::default();
    let report = time(
        &format!("price_set, hand-built fleet ({} resources)", set.len()),
        runs,
        || cost::price_set(&table, &set, &fallback).expect("prices"),
    );
    println!("  {} lines, total {}", report.lines.len(), report.total);

    // The generated spec, end to end.
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cost/fleet-10k.yaml");
    let loaded = time(
        "spec::load_file fleet-10k.yaml (parse + expand)",
        runs,
        || flotilla::spec::load_file(&spec).expect("the spec loads"),
    );
    let d = &loaded.desired;
    let report = time(
        &format!("price_set fleet-10k ({} resources)", d.resources.len()),
        runs,
        || cost::price_set(&table, &d.resources, &d.default_usage).expect("prices"),
    );
    let view = render::View {
        title: "fleet-10k",
        report: &report,
        base: None,
        verdict: None,
    };
    time("render text", runs, || render::text(&view).len());
    time("render json (serialized)", runs, || {
        render::json_string(&view).map_or(0, |s| s.len())
    });
    time("render markdown", runs, || render::markdown(&view).len());
    time(
        "cost fleet-10k end to end (load + price + json)",
        runs,
        || {
            let l = flotilla::spec::load_file(&spec).expect("the spec loads");
            let r = cost::price_set(&table, &l.desired.resources, &l.desired.default_usage)
                .expect("prices");
            let v = render::View {
                title: "fleet-10k",
                report: &r,
                base: None,
                verdict: None,
            };
            render::json_string(&v).map_or(0, |s| s.len())
        },
    );
}
