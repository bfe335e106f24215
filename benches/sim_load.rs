//! Simulator throughput: 10,000 Machines stored, rate limits off, a bounded load of
//! simple GET requests from a fixed pool of concurrent clients over loopback.
//!
//! Run: `cargo bench --bench sim_load` (optionally `-- --requests N --concurrency C`).

// A benchmark harness over generated data: a failure should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flotilla::sim::{SimConfig, start_blocking};
use serde_json::{Value, json};

const MACHINES: usize = 10_000;

struct Args {
    requests: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        requests: 100_000,
        concurrency: 32,
    };
    let argv: Vec<String> = std::env::args().collect();
    for w in argv.windows(2) {
        match w[0].as_str() {
            "--requests" => a.requests = w[1].parse().unwrap_or(a.requests),
            "--concurrency" => a.concurrency = w[1].parse().unwrap_or(a.concurrency),
            _ => {}
        }
    }
    a
}

async fn populate(client: &reqwest::Client, base: &str) -> Vec<String> {
    let r = client
        .post(format!("{base}/v1/apps"))
        .bearer_auth("test")
        .json(&json!({"app_name": "bench", "org_slug": "personal"}))
        .send()
        .await
        .expect("create app");
    assert_eq!(r.status(), 201);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, base, next) = (client.clone(), base.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < MACHINES {
                let m: Value = client
                    .post(format!("{base}/v1/apps/bench/machines"))
                    .bearer_auth("test")
                    .json(
                        &json!({"region": "sjc", "config": {"image": "registry.fly.io/bench:1",
                        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
                        "services": [{"internal_port": 8080, "autostop": "stop",
                            "ports": [{"port": 443, "handlers": ["tls", "http"]}]}],
                        "env": {"TENANT": "t"}, "metadata": {"tenant": "t"}}}),
                    )
                    .send()
                    .await
                    .expect("create machine")
                    .json()
                    .await
                    .expect("machine json");
                ids.push(m["id"].as_str().expect("id").to_string());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.expect("populate task"));
    }
    ids
}

fn main() {
    let a = args();
    let cfg = SimConfig {
        rate_limits: false,
        time_scale: 1000.0,
        ..SimConfig::default()
    };
    let sim = start_blocking(cfg, "127.0.0.1:0".parse().expect("addr")).expect("start simulator");
    let base = sim.base_url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(a.concurrency)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let started = Instant::now();
        let ids = Arc::new(populate(&client, &base).await);
        let populate_secs = started.elapsed().as_secs_f64();
        println!(
            "populated {} machines in {populate_secs:.2} s ({:.0} creates/s)",
            ids.len(),
            ids.len() as f64 / populate_secs
        );

        for (label, per_id) in [("GET machine", true), ("GET app", false)] {
            let next = Arc::new(AtomicUsize::new(0));
            let started = Instant::now();
            let deadline = started + Duration::from_secs(120);
            let mut tasks = Vec::new();
            for _ in 0..a.concurrency {
                let (client, base, ids, next) =
                    (client.clone(), base.clone(), ids.clone(), next.clone());
                let total = a.requests;
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total || Instant::now() > deadline {
                            break;
                        }
                        let url = if per_id {
                            format!("{base}/v1/apps/bench/machines/{}", ids[(i * 7919) % ids.len()])
                        } else {
                            format!("{base}/v1/apps/bench")
                        };
                        let t = Instant::now();
                        let r = client.get(url).bearer_auth("test").send().await;
                        let ok = match r {
                            Ok(resp) => resp.status() == 200 && resp.bytes().await.is_ok(),
                            Err(_) => false,
                        };
                        assert!(ok, "request failed");
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    lat
                }));
            }
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(t.await.expect("load task"));
            }
            let secs = started.elapsed().as_secs_f64();
            lat.sort_by(|a, b| a.total_cmp(b));
            let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
            println!(
                "{label}: {} requests, {} clients, {secs:.2} s → {:.0} req/s (p50 {:.2} ms, p99 {:.2} ms)",
                lat.len(),
                a.concurrency,
                lat.len() as f64 / secs,
                pct(0.50),
                pct(0.99)
            );
        }
    });
    let c = sim.control().counters();
    println!("server counted {} requests", c.requests);
    sim.shutdown();
}
