//! Reconcile benchmark against the simulator with Fly's documented rate limits on:
//!
//! 1. apply N new tenants (app + volume + Machine + 2 secrets each) with the release
//!    binary, and compare its wall time (scaled back to API time) with the lower bound
//!    the rate limits impose;
//! 2. observe the resulting N apps in-process, and compare with the time the simulator
//!    needs to answer the same read requests fired by an unthrottled load generator.
//!
//! Run: `cargo bench --bench reconcile_scale` (`-- --tenants N --scale S`).

// A benchmark harness over generated data: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// As in the shipped binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flotilla::fly::client::{Client, ClientConfig, Token};
use flotilla::sim::{SimConfig, start_blocking};
use futures::stream::{self, StreamExt};

const TOKEN: &str = "bench-token";

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn spec(n: usize) -> String {
    format!(
        r#"version: 1
org: bench
fleet: bench
naming: {{ app: "bench-{{{{ tenant.name }}}}" }}
defaults:
  image: registry.fly.io/bench:1.0
  region: iad
  size: shared-cpu-1x
  memory: 512mb
  volume: {{ name: data, size_gb: 1, mount: /data }}
  secrets: {{ API_KEY: {{ env: BENCH_API_KEY }}, JWT_SECRET: {{ env: BENCH_JWT }} }}
tenants:
  - generate: {{ count: {n}, name: "t{{{{ i | pad(5) }}}}" }}
"#
    )
}

fn main() {
    let n = arg("--tenants", 1000.0) as usize;
    let scale = arg("--scale", 25.0);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let status = std::process::Command::new("cargo")
        .args(["build", "--release", "--quiet"])
        .current_dir(&root)
        .status()
        .expect("cargo");
    assert!(status.success());
    let bin = root.join("target/release/flotilla");
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let spec_path = dir.join(format!("reconcile-{n}.yaml"));
    std::fs::write(&spec_path, spec(n)).expect("spec");

    let cfg = SimConfig {
        token: TOKEN.into(),
        time_scale: scale,
        seed: 1,
        rate_limits: true,
        ..SimConfig::default()
    };
    let boot = (cfg.create_delay + cfg.start_delay).as_secs_f64();
    let sim = start_blocking(cfg, "127.0.0.1:0".parse().expect("addr")).expect("sim");
    let base = sim.base_url();

    // 1. Apply.
    let t = Instant::now();
    let out = std::process::Command::new(&bin)
        .current_dir(&dir)
        .args(["apply"])
        .arg(&spec_path)
        .args([
            "--api",
            &base,
            "--time-scale",
            &scale.to_string(),
            "--yes",
            "--quiet",
            "--json-summary",
            "--journal",
            "bench-journal.jsonl",
        ])
        .env("FLY_API_TOKEN", TOKEN)
        .env("BENCH_API_KEY", "bench-api-key-value")
        .env("BENCH_JWT", "bench-jwt-value")
        .env("NO_COLOR", "1")
        .output()
        .expect("run flotilla");
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = stdout
        .find("{\n")
        .and_then(|i| serde_json::from_str(&stdout[i..]).ok())
        .unwrap_or_default();
    let api_time = wall.as_secs_f64() * scale;
    // App creation is one chain: a burst of 3, then 1 per second per organization. The
    // last app's tenant still needs its secrets and volume (in parallel), its Machine
    // create, and the Machine's boot (create + start delay).
    let bound = (n as f64 - 3.0).max(0.0) + boot;
    let counters = sim.control().counters();
    println!(
        "apply {n} tenants ({} resources): {:.1} s wall at time scale {scale} = {:.0} s of API time",
        n * 6,
        wall.as_secs_f64(),
        api_time
    );
    println!(
        "  lower bound from the rate limits: {bound:.0} s (({n} - 3) app creates at 1/s + {boot:.1} s boot of the last Machine)"
    );
    println!("  ratio: {:.3} (target <= 1.15)", api_time / bound);
    println!(
        "  requests: {} sent by flotilla ({} mutating), 429s received: {}; simulator answered {} requests, {} rate-limited",
        summary["requests"],
        summary["mutating_requests"],
        summary["rate_limited"],
        counters.requests,
        counters.rate_limited
    );

    // 2. Observe, in-process, against the raw cost of the same reads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let declared: HashSet<String> = (1..=n).map(|i| format!("bench-t{i:05}")).collect();
    let mut ccfg = ClientConfig::new(&base, Token::new(TOKEN.into()));
    ccfg.time_scale = scale;
    let client = Client::new(ccfg).expect("client");
    let (mut observe_times, mut fetch_times, mut decode_times) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        // Let the simulator's read buckets refill between rounds.
        std::thread::sleep(Duration::from_secs_f64(4.0 / scale));
        let t = Instant::now();
        let snap = rt
            .block_on(flotilla::fly::observe::observe(
                &client,
                "bench",
                &declared,
                flotilla::fly::observe::CONCURRENCY,
            ))
            .expect("observe");
        observe_times.push(t.elapsed());
        assert_eq!(snap.apps.len(), n);
        std::thread::sleep(Duration::from_secs_f64(4.0 / scale));
        let t = Instant::now();
        rt.block_on(raw_reads(&base, n, false));
        fetch_times.push(t.elapsed());
        std::thread::sleep(Duration::from_secs_f64(4.0 / scale));
        let t = Instant::now();
        rt.block_on(raw_reads(&base, n, true));
        decode_times.push(t.elapsed());
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (obs, fetch, decode) = (
        median(observe_times),
        median(fetch_times),
        median(decode_times),
    );
    println!(
        "observe {n} apps ({} requests): {:.3} s (median of 5)",
        1 + 3 * n,
        obs.as_secs_f64()
    );
    println!(
        "  the documented read limits (1/s, bursts of 3, per app and action) do not bind: every app's lists"
    );
    println!(
        "  have their own buckets. The bound is the simulator answering the same {} reads for an",
        1 + 3 * n
    );
    println!(
        "  unthrottled generator ({} in flight), the responses decoded into the same types: {:.3} s",
        flotilla::fly::observe::CONCURRENCY,
        decode.as_secs_f64()
    );
    println!(
        "  ratio: {:.3} (target <= 1.2); against fetching without decoding ({:.3} s): {:.3}",
        obs.as_secs_f64() / decode.as_secs_f64(),
        fetch.as_secs_f64(),
        obs.as_secs_f64() / fetch.as_secs_f64()
    );
}

/// The observer's requests, fired as fast as the simulator answers them; with `decode`,
/// each response is also decoded into the wire types the observer uses.
async fn raw_reads(base: &str, n: usize, decode: bool) {
    use flotilla::wire::api as fly;
    let http = reqwest::Client::new();
    let mut paths = vec![("apps", "/v1/apps?org_slug=bench".to_string())];
    for i in 1..=n {
        let app = format!("bench-t{i:05}");
        paths.push(("machines", format!("/v1/apps/{app}/machines")));
        paths.push(("volumes", format!("/v1/apps/{app}/volumes")));
        paths.push(("secrets", format!("/v1/apps/{app}/secrets")));
    }
    stream::iter(paths)
        .map(|(kind, p)| {
            let http = http.clone();
            let url = format!("{base}{p}");
            async move {
                let r = http
                    .get(url)
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .expect("request");
                assert!(r.status().is_success(), "{}", r.status());
                let body = r.bytes().await.expect("body");
                if decode {
                    let ok = match kind {
                        "apps" => serde_json::from_slice::<fly::AppList>(&body).is_ok(),
                        "machines" => serde_json::from_slice::<Vec<fly::Machine>>(&body).is_ok(),
                        "volumes" => serde_json::from_slice::<Vec<fly::Volume>>(&body).is_ok(),
                        _ => serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
                    };
                    assert!(ok, "{kind}: undecodable response");
                }
            }
        })
        .buffer_unordered(flotilla::fly::observe::CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
}
