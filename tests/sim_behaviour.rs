//! Rate limits, injected faults, time scaling and idle (autostop) transitions.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod simkit;

use std::time::{Duration, Instant};

use flotilla::sim::{FaultConfig, SimConfig};
use serde_json::json;
use simkit::*;

fn retry_after(r: &Resp) -> f64 {
    r.headers
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn rate_limits_per_action_and_identifier() {
    // Time runs 10x slower here, so a loaded machine cannot refill a bucket mid-test.
    let sim = start_with(SimConfig {
        time_scale: 0.1,
        rate_limits: true,
        ..fast_config()
    })
    .await;
    sim.create_app("rl").await;
    let m = sim
        .create_machine(
            "rl",
            json!({"config": {"image": "nginx"}, "skip_launch": true}),
        )
        .await;
    let mid = id(&m);
    let cordon = format!("/v1/apps/rl/machines/{mid}/cordon");
    for _ in 0..3 {
        assert_eq!(sim.post_empty(&cordon).await.status, 200);
    }
    let r = sim.post_empty(&cordon).await;
    assert_eq!(r.status, 429);
    assert!(r.body["error"].is_string());
    let wait = retry_after(&r);
    assert!(wait > 0.0 && wait <= 10.0, "{wait}");
    // Other actions on the same Machine have their own budget.
    assert_eq!(
        sim.post_empty(&format!("/v1/apps/rl/machines/{mid}/uncordon"))
            .await
            .status,
        200
    );

    // Get Machine: bursts of 10.
    let get = format!("/v1/apps/rl/machines/{mid}");
    for _ in 0..10 {
        assert_eq!(sim.get(&get).await.status, 200);
    }
    assert_eq!(sim.get(&get).await.status, 429);

    // App deletes: 100 per minute.
    for i in 0..100 {
        assert_eq!(sim.delete(&format!("/v1/apps/nope-{i}")).await.status, 404);
    }
    let r = sim.delete("/v1/apps/nope-x").await;
    assert_eq!(r.status, 429);
    assert!(retry_after(&r) > 0.0);

    let counters = sim.handle.control().counters();
    assert_eq!(counters.rate_limited, 3);
    assert_eq!(counters.by_status[&429], 3);

    // Turned off at runtime: no more 429s.
    let r = sim
        .put("/__sim/rate-limits", json!({"enabled": false}))
        .await;
    assert_eq!(r.status, 200);
    for _ in 0..5 {
        assert_eq!(sim.post_empty(&cordon).await.status, 200);
    }
}

#[tokio::test]
async fn time_scale_shortens_rate_limit_windows() {
    let sim = start_with(SimConfig {
        time_scale: 100.0,
        rate_limits: true,
        ..fast_config()
    })
    .await;
    let mut limited = None;
    for i in 0..20 {
        let r = sim
            .post(
                "/v1/apps",
                json!({"app_name": format!("ts-{i}"), "org_slug": "personal"}),
            )
            .await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the burst limit applies");
    // Whole API seconds, as Fly sends; at 100x they pass in a hundredth of the time.
    let wait = retry_after(&r);
    assert_eq!(wait, 1.0, "whole-second Retry-After");
    tokio::time::sleep(Duration::from_secs_f64(wait / 100.0 + 0.005)).await;
    let r = sim
        .post(
            "/v1/apps",
            json!({"app_name": "ts-after", "org_slug": "personal"}),
        )
        .await;
    assert_eq!(r.status, 201);
}

#[tokio::test]
async fn rate_limits_off_by_config() {
    let sim = start_with_app("free").await;
    for _ in 0..30 {
        assert_eq!(sim.get("/v1/apps/free").await.status, 200);
    }
    assert_eq!(sim.handle.control().counters().rate_limited, 0);
}

#[tokio::test]
async fn status_faults_hit_before_the_change() {
    let sim = start_sim().await;
    for status in [429u16, 500, 502, 503] {
        let r = sim
            .put("/__sim/faults", json!({"spec": format!("{status}=1")}))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let name = format!("before-{status}");
        let r = sim
            .post(
                "/v1/apps",
                json!({"app_name": name, "org_slug": "personal"}),
            )
            .await;
        assert_eq!(r.status, status);
        assert!(r.body["error"].is_string());
        if status == 429 || status == 503 {
            assert!(r.headers.get("retry-after").is_some());
        }
        sim.handle.control().set_faults(FaultConfig::default());
        assert_eq!(sim.get(&format!("/v1/apps/{name}")).await.status, 404);
    }
    let c = sim.handle.control().counters();
    for kind in ["429", "500", "502", "503"] {
        assert_eq!(c.faults_by_kind[kind], 1, "{kind}");
    }
    assert_eq!(c.rate_limited, 0);
    assert_eq!(
        sim.put("/__sim/faults", json!({"spec": "418=1"}))
            .await
            .status,
        400
    );
    assert_eq!(
        sim.put("/__sim/faults", json!({"spec": "500=2"}))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn after_faults_apply_the_change_then_fail() {
    let sim = start_sim().await;
    sim.handle
        .control()
        .set_faults("503@after=1".parse().unwrap());
    let r = sim
        .post(
            "/v1/apps",
            json!({"app_name": "applied", "org_slug": "personal"}),
        )
        .await;
    assert_eq!(r.status, 503);
    sim.handle.control().set_faults(FaultConfig::default());
    assert_eq!(sim.get("/v1/apps/applied").await.status, 200);
    assert_eq!(
        sim.handle.control().counters().faults_by_kind["503@after"],
        1
    );
}

#[tokio::test]
async fn lost_response_applies_the_change_but_drops_the_connection() {
    let sim = start_with_app("lost").await;
    let r = sim.get("/__sim/faults").await;
    assert_eq!(r.body["spec"], "none");
    sim.put("/__sim/faults", json!({"spec": "lost_response=1"}))
        .await;
    let err = sim
        .client
        .post(format!("{}/v1/apps/lost/machines", sim.base))
        .bearer_auth(TOKEN)
        .json(&machine_body("nginx"))
        .send()
        .await;
    assert!(err.is_err(), "the client must not get an answer: {err:?}");
    sim.put("/__sim/faults", json!({"spec": "none"})).await;
    // The create took effect: a naive retry would now make a duplicate.
    let list = sim.get("/v1/apps/lost/machines").await.body;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let c = sim.handle.control().counters();
    assert_eq!(c.faults_by_kind["lost_response"], 1);
    assert_eq!(c.by_status[&0], 1);
}

#[tokio::test]
async fn timeouts_hang_then_drop_without_the_change() {
    let sim = start_with_faults(1.0, "timeout=1,hang=200ms").await;
    let started = Instant::now();
    let err = sim
        .client
        .post(format!("{}/v1/apps", sim.base))
        .bearer_auth(TOKEN)
        .json(&json!({"app_name": "hung", "org_slug": "personal"}))
        .send()
        .await;
    assert!(err.is_err());
    assert!(started.elapsed() >= Duration::from_millis(200));
    sim.handle.control().set_faults(FaultConfig::default());
    assert_eq!(sim.get("/v1/apps/hung").await.status, 404);
    // A client with a shorter timeout gives up first.
    sim.handle
        .control()
        .set_faults("timeout=1,hang=5s".parse().unwrap());
    let r = sim
        .client
        .get(format!("{}/v1/apps/hung", sim.base))
        .bearer_auth(TOKEN)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
}

#[tokio::test]
async fn latency_is_added() {
    let sim = start_with_faults(1.0, "latency=40ms..60ms").await;
    let started = Instant::now();
    let r = sim.get("/v1/apps?org_slug=personal").await;
    assert_eq!(r.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(40));
    assert_eq!(sim.handle.control().counters().faults_by_kind["latency"], 1);
}

#[tokio::test]
async fn capacity_errors_for_named_regions() {
    let sim = start_with_faults(100.0, "capacity=sjc+gru").await;
    sim.create_app("cap").await;
    let r = sim
        .post("/v1/apps/cap/machines", machine_body("nginx"))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["status"], "insufficient_capacity");
    let r = sim
        .post(
            "/v1/apps/cap/volumes",
            json!({"name": "d", "region": "gru"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["status"], "insufficient_capacity");
    let r = sim
        .post(
            "/v1/apps/cap/machines",
            json!({"region": "fra", "config": {"image": "nginx"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        sim.get("/v1/apps/cap/machines")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        sim.handle.control().counters().faults_by_kind["capacity"],
        2
    );
}

#[tokio::test]
async fn bad_images_crash_at_boot() {
    let sim = start_with_faults(100.0, "bad_image=:broken").await;
    sim.create_app("img").await;
    let good = sim
        .post("/v1/apps/img/machines", json!({"region": "iad", "config": {"image": "app:1", "checks": {"alive": {"type": "tcp", "port": 80}}}}))
        .await;
    assert_eq!(good.status, 200);
    let id = good.body["id"].as_str().unwrap().to_string();
    let r = sim
        .get(&format!(
            "/v1/apps/img/machines/{id}/wait?state=started&timeout=10"
        ))
        .await;
    assert_eq!(r.status, 200);
    // Updating to a bad image: the Machine crashes at boot and its checks go critical.
    let r = sim
        .post(&format!("/v1/apps/img/machines/{id}"), json!({"config": {"image": "app:broken", "checks": {"alive": {"type": "tcp", "port": 80}}}}))
        .await;
    assert_eq!(r.status, 200);
    let r = sim
        .get(&format!(
            "/v1/apps/img/machines/{id}/wait?state=started&timeout=5"
        ))
        .await;
    assert_eq!(r.status, 408, "a crashing Machine never reaches started");
    let m = sim.get(&format!("/v1/apps/img/machines/{id}")).await;
    assert_eq!(m.body["state"], "failed");
    assert_eq!(m.body["checks"][0]["status"], "critical");
    // Back to a good image: it boots again.
    let r = sim
        .post(
            &format!("/v1/apps/img/machines/{id}"),
            json!({"config": {"image": "app:2"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = sim
        .get(&format!(
            "/v1/apps/img/machines/{id}/wait?state=started&timeout=10"
        ))
        .await;
    assert_eq!(r.status, 200);
    assert!("bad_image=".parse::<flotilla::sim::FaultConfig>().is_err());
}

#[tokio::test]
async fn fail_after_n_requests() {
    let sim = start_with_faults(100.0, "fail_after=3").await;
    for _ in 0..3 {
        assert_eq!(sim.get("/v1/apps?org_slug=personal").await.status, 200);
    }
    for _ in 0..3 {
        assert_eq!(sim.get("/v1/apps?org_slug=personal").await.status, 503);
    }
    // Control endpoints keep working.
    assert_eq!(sim.get("/__sim/health").await.status, 200);
    assert_eq!(
        sim.handle.control().counters().faults_by_kind["fail_after"],
        3
    );
}

#[tokio::test]
async fn faults_are_deterministic_per_seed() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let mut cfg = fast_config();
        cfg.seed = seed;
        cfg.faults = "500=0.3,502=0.2".parse().unwrap();
        let sim = start_with(cfg).await;
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(sim.get("/v1/apps?org_slug=personal").await.status);
        }
        out
    }
    let a = statuses(11).await;
    assert_eq!(a, statuses(11).await);
    assert_ne!(a, statuses(12).await);
    assert!(a.contains(&500) && a.contains(&502) && a.contains(&200));
}

#[tokio::test]
async fn idle_machines_stop_or_suspend_by_their_autostop() {
    let sim = start_with(SimConfig {
        idle_period: Duration::from_secs(2),
        ..fast_config()
    })
    .await;
    sim.create_app("idle").await;
    let svc = |mode: &str| json!([{"internal_port": 8080, "autostop": mode}]);
    let mk = |mode: &str, size: &str| json!({"region": "sjc", "config": {"image": "nginx", "size": size, "services": svc(mode)}});
    let stop = id(&sim
        .create_machine("idle", mk("stop", "shared-cpu-1x"))
        .await);
    let susp = id(&sim
        .create_machine("idle", mk("suspend", "shared-cpu-1x"))
        .await);
    let big = id(&sim
        .create_machine("idle", mk("suspend", "performance-2x"))
        .await);
    let off = id(&sim.create_machine("idle", mk("off", "shared-cpu-1x")).await);
    for m in [&stop, &susp, &big, &off] {
        sim.wait_state("idle", m, "started").await;
    }
    let r = sim.post("/__sim/idle", json!({"app": "idle"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["machines"].as_array().unwrap().len(), 3);
    sim.wait_state("idle", &stop, "stopped").await;
    sim.wait_state("idle", &susp, "suspended").await;
    // Too much memory to suspend: Fly falls back to a stop.
    sim.wait_state("idle", &big, "stopped").await;
    assert_eq!(sim.machine("idle", &off).await["state"], "started");
    let ev = sim
        .get(&format!("/v1/apps/idle/machines/{stop}/events"))
        .await
        .body;
    assert!(
        ev.as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "fly-proxy")
    );
}

#[tokio::test]
async fn auto_idle_stops_machines_after_the_idle_period() {
    let sim = start_with(SimConfig {
        idle_period: Duration::from_secs(1),
        auto_idle: true,
        ..fast_config()
    })
    .await;
    sim.create_app("auto").await;
    let m = id(&sim
        .create_machine(
            "auto",
            json!({"region": "sjc", "config": {"image": "nginx",
                "services": [{"internal_port": 80, "autostop": true}]}}),
        )
        .await);
    sim.wait_state("auto", &m, "stopped").await;
    assert_eq!(
        sim.handle.control().trigger_idle(Some("auto"), None, true),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn time_scale_keeps_the_ratios() {
    // At 1000x a full cycle with a 10 s detach runs in milliseconds; at 1x a Machine
    // observed right after create has not booted yet.
    let fast = start_with(scaled(1000.0)).await;
    fast.create_app("fast").await;
    let vid = fast.create_volume("fast", "d", "sjc").await;
    let m = id(&fast
        .create_machine(
            "fast",
            json!({"region": "sjc", "config": {"image": "nginx",
                "mounts": [{"volume": vid, "path": "/d"}]}}),
        )
        .await);
    fast.wait_state("fast", &m, "started").await;
    fast.delete(&format!("/v1/apps/fast/machines/{m}?force=true"))
        .await;
    fast.wait_state("fast", &m, "destroyed").await;
    let mut deleted = false;
    for _ in 0..200 {
        if fast
            .delete(&format!("/v1/apps/fast/volumes/{vid}"))
            .await
            .status
            == 200
        {
            deleted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(deleted);

    let slow = start_with(scaled(1.0)).await;
    slow.create_app("slow").await;
    let m = id(&slow.create_machine("slow", machine_body("nginx")).await);
    assert_eq!(slow.machine("slow", &m).await["state"], "created");
    let r = slow
        .get(&format!(
            "/v1/apps/slow/machines/{m}/wait?state=started&timeout=1"
        ))
        .await;
    assert_eq!(r.status, 408, "a 1.8 s boot does not fit a 1 s wait");
}
