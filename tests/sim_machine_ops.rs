//! The Machine operations beyond the lifecycle (exec, ps, signal, versions), `wait` as
//! Fly documents it (several states, `instance_id`, `from_event_id`, the timeout
//! range), event ids, documented response shapes, the `eventual` and capacity-form
//! faults, the regions endpoint with its capacity, metadata read and updated by key
//! or several keys at once, and standbys (checked IDs, never started but when their
//! primary's host fails).

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod simkit;

use std::time::Duration;

use serde_json::{Value, json};
use simkit::*;

/// A started Machine (waited for) in app `app`; returns its id.
async fn started(sim: &TestSim, app: &str, config: Value) -> String {
    let m = sim.create_machine(app, json!({ "config": config })).await;
    let mid = id(&m);
    sim.wait_state(app, &mid, "started").await;
    mid
}

async fn instance(sim: &TestSim, app: &str, mid: &str) -> String {
    sim.machine(app, mid).await["instance_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn exec_answers_from_the_configured_responder() {
    let sim = start_with_app("ex").await;
    let a = started(&sim, "ex", json!({"image": "nginx"})).await;
    let b = started(&sim, "ex", json!({"image": "nginx"})).await;
    let exec = |mid: &str| format!("/v1/apps/ex/machines/{mid}/exec");

    // The default: success, no output.
    let r = sim.post(&exec(&a), json!({"command": ["ls", "/"]})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body, json!({"stdout": "", "stderr": "", "exit_code": 0}));

    // An app-wide answer for one command, a Machine's own answer for any command.
    let r = sim
        .put(
            "/__sim/exec",
            json!({"app": "ex", "command": "cat /etc/motd", "stdout": "hello\n"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = sim
        .put(
            "/__sim/exec",
            json!({"app": "ex", "machine_id": b, "stderr": "boom", "exit_code": 3}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = sim
        .post(&exec(&a), json!({"command": ["cat", "/etc/motd"]}))
        .await;
    assert_eq!(r.body["stdout"], "hello\n");
    // The deprecated `cmd` string names the same command.
    let r = sim
        .post(&exec(&a), json!({"cmd": "cat /etc/motd", "timeout": 5}))
        .await;
    assert_eq!(r.body["stdout"], "hello\n");
    let r = sim.post(&exec(&a), json!({"command": ["uptime"]})).await;
    assert_eq!(r.body["exit_code"], 0);
    let r = sim.post(&exec(&b), json!({"command": ["uptime"]})).await;
    assert_eq!(
        r.body,
        json!({"stdout": "", "stderr": "boom", "exit_code": 3})
    );
    assert_eq!(
        sim.get("/__sim/exec").await.body["rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // No command, or a Machine that is not running: refused.
    let r = sim.post(&exec(&a), json!({"timeout": 5})).await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("command"));
    sim.post_empty(&format!("/v1/apps/ex/machines/{a}/stop"))
        .await;
    sim.wait_state("ex", &a, "stopped").await;
    let r = sim.post(&exec(&a), json!({"command": ["ls"]})).await;
    assert_eq!(r.status, 412, "{:?}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("stopped"));

    // Cleared: the default again.
    assert_eq!(sim.delete("/__sim/exec").await.status, 200);
    let r = sim.post(&exec(&b), json!({"command": ["uptime"]})).await;
    assert_eq!(r.body["exit_code"], 0);
    assert_eq!(r.body["stderr"], "");
}

#[tokio::test]
async fn ps_lists_the_processes_of_a_started_machine() {
    let sim = start_with_app("ps").await;
    let config = json!({
        "image": "registry.example/shop:v2",
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
        "services": [{"protocol": "tcp", "internal_port": 8080}],
    });
    let mid = started(&sim, "ps", config).await;
    let ps = format!("/v1/apps/ps/machines/{mid}/ps");
    let r = sim.get(&ps).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rows = r.body.as_array().unwrap();
    assert!(rows.len() >= 2);
    let pids: Vec<u64> = rows.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert!(pids.windows(2).all(|w| w[0] < w[1]), "{pids:?}");
    let main = rows
        .iter()
        .find(|p| p["command"].as_str().unwrap().contains("shop"))
        .expect("the main process");
    assert_eq!(
        main["listen_sockets"],
        json!([{"proto": "tcp", "address": "0.0.0.0:8080"}])
    );
    for field in ["cpu", "rss", "rtime", "stime"] {
        assert!(main[field].is_u64(), "{field}: {main}");
    }
    let r = sim.get(&format!("{ps}?sort_by=rss&order=desc")).await;
    let rss: Vec<u64> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rss"].as_u64().unwrap())
        .collect();
    assert!(rss.windows(2).all(|w| w[0] >= w[1]), "{rss:?}");
    assert_eq!(sim.get(&format!("{ps}?sort_by=colour")).await.status, 400);
    assert_eq!(sim.get(&format!("{ps}?order=sideways")).await.status, 400);

    sim.post_empty(&format!("/v1/apps/ps/machines/{mid}/stop"))
        .await;
    sim.wait_state("ps", &mid, "stopped").await;
    let r = sim.get(&ps).await;
    assert_eq!(r.status, 412, "{:?}", r.body);
}

#[tokio::test]
async fn signals_stop_or_are_recorded() {
    let sim = start_with_app("sig").await;
    let mid = started(&sim, "sig", json!({"image": "nginx"})).await;
    let signal = format!("/v1/apps/sig/machines/{mid}/signal");

    let r = sim.post(&signal, json!({"signal": "SIGUSR1"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = sim.machine("sig", &mid).await;
    assert_eq!(m["state"], "started");
    let newest = &m["events"][0];
    assert_eq!(newest["type"], "signal");
    assert_eq!(newest["request"]["signal"], "SIGUSR1");

    for bad in [
        json!({"signal": "SIGWINCH"}),
        json!({"signal": 99}),
        json!({}),
    ] {
        let r = sim.post(&signal, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert!(r.body["error"].is_string());
    }

    // fly-go's Kill sends the number 9.
    let version = instance(&sim, "sig", &mid).await;
    let r = sim.post(&signal, json!({"signal": 9})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = sim
        .get(&format!(
            "/v1/apps/sig/machines/{mid}/wait?state=stopped&instance_id={version}&timeout=10"
        ))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = sim.machine("sig", &mid).await;
    let exit = &m["events"][0];
    assert_eq!(exit["type"], "exit");
    assert_eq!(exit["request"]["exit_event"]["signal"], 9);
    // A stopped Machine has no process to signal.
    let r = sim.post(&signal, json!({"signal": "SIGTERM"})).await;
    assert_eq!(r.status, 412);

    // SIGTERM stops a running Machine too.
    sim.post_empty(&format!("/v1/apps/sig/machines/{mid}/start"))
        .await;
    sim.wait_state("sig", &mid, "started").await;
    let r = sim.post(&signal, json!({"signal": "SIGTERM"})).await;
    assert_eq!(r.status, 200);
    sim.wait_state("sig", &mid, "stopped").await;
}

#[tokio::test]
async fn versions_follow_the_update_history() {
    let sim = start_with_app("ver").await;
    let m = sim
        .create_machine(
            "ver",
            json!({"config": {"image": "nginx:1"}, "skip_launch": true}),
        )
        .await;
    let mid = id(&m);
    let mut seen = vec![m["instance_id"].as_str().unwrap().to_string()];
    for image in ["nginx:2", "nginx:3"] {
        let r = sim
            .post(
                &format!("/v1/apps/ver/machines/{mid}"),
                json!({"config": {"image": image}, "skip_launch": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        seen.push(r.body["instance_id"].as_str().unwrap().to_string());
    }
    let r = sim
        .get(&format!("/v1/apps/ver/machines/{mid}/versions"))
        .await;
    assert_eq!(r.status, 200);
    let list = r.body.as_array().unwrap();
    let versions: Vec<&str> = list
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    seen.reverse();
    assert_eq!(
        versions,
        seen.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let images: Vec<&str> = list
        .iter()
        .map(|v| v["user_config"]["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["nginx:3", "nginx:2", "nginx:1"]);
    assert!(
        list.iter()
            .all(|v| v["created_at"].as_str().unwrap().ends_with('Z'))
    );
    assert_eq!(
        sim.get("/v1/apps/ver/machines/nope/versions").await.status,
        404
    );
}

#[tokio::test]
async fn wait_takes_several_states_and_an_instance() {
    let sim = start_with_app("w").await;
    let mid = started(&sim, "w", json!({"image": "nginx"})).await;
    let wait = |q: &str| format!("/v1/apps/w/machines/{mid}/wait?{q}");
    let v1 = instance(&sim, "w", &mid).await;

    // Any of several states satisfies, repeated or comma-separated.
    let r = sim
        .get(&wait("state=suspended&state=started&timeout=1"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(sim.get(&wait("state=destroyed,started")).await.status, 200);
    // timeout=0 means Fly's default (60 s), not "give up now".
    assert_eq!(sim.get(&wait("state=started&timeout=0")).await.status, 200);

    // Refusals: stopped without the version, timeouts out of range, bad values.
    let r = sim.get(&wait("state=stopped&timeout=1")).await;
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().contains("instance_id"));
    for q in [
        "timeout=61",
        "timeout=-1",
        "timeout=soon",
        "state=gone",
        "from_event_id=nope",
        "instance_id=a&version=b",
        "instance_id=01NOTAVERSION",
    ] {
        let r = sim.get(&wait(q)).await;
        assert_eq!(r.status, 400, "{q}: {:?}", r.body);
        assert!(r.body["error"].is_string(), "{q}");
    }
    let r = sim.get(&wait("timeout=61")).await;
    assert!(r.body["error"].as_str().unwrap().contains("[1s, 1m0s]"));

    // A state it does not reach: 408 in Fly's error shape.
    let r = sim
        .get(&wait(&format!("state=stopped&instance_id={v1}&timeout=1")))
        .await;
    assert_eq!(r.status, 408);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("deadline_exceeded")
    );

    // `version` is the same filter as `instance_id`.
    let r = sim
        .get(&wait(&format!("state=started&version={v1}&timeout=1")))
        .await;
    assert_eq!(r.status, 200);

    // After an update the old version has stopped for good; waiting for it to be
    // started can never succeed.
    let r = sim
        .post(
            &format!("/v1/apps/w/machines/{mid}"),
            json!({"config": {"image": "nginx:2"}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = sim
        .get(&wait(&format!("state=stopped&instance_id={v1}&timeout=1")))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = sim
        .get(&wait(&format!("state=started&instance_id={v1}&timeout=1")))
        .await;
    assert_eq!(r.status, 412, "{:?}", r.body);
}

#[tokio::test]
async fn wait_answers_the_state_reached_and_knows_failed_and_settled() {
    let sim = start_with_faults(100.0, "bad_image=broken").await;
    sim.create_app("ws").await;
    let mid = started(&sim, "ws", json!({"image": "nginx"})).await;
    let wait = |m: &str, q: &str| format!("/v1/apps/ws/machines/{m}/wait?{q}");
    let v1 = instance(&sim, "ws", &mid).await;
    let newest = sim.machine("ws", &mid).await["events"][0]["id"].clone();

    // Fly's `WaitMachineResponse`: the state reached, the version and the newest event.
    let r = sim.get(&wait(&mid, "state=started&timeout=1")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"ok": true, "state": "started", "version": v1, "event_id": newest})
    );
    // `settled`: any state a Machine rests in, without naming the version.
    let r = sim.get(&wait(&mid, "state=settled&timeout=1")).await;
    assert_eq!(r.body["state"], "started", "{:?}", r.body);

    // A Machine whose image crashes at boot ends `failed`, which `settled` also is.
    let m = sim
        .create_machine("ws", json!({"config": {"image": "registry/broken:1"}}))
        .await;
    let bad = id(&m);
    let r = sim.get(&wait(&bad, "state=failed&timeout=30")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["state"], "failed");
    let r = sim.get(&wait(&bad, "state=settled&timeout=1")).await;
    assert_eq!(r.body["state"], "failed", "{:?}", r.body);
    let r = sim.get(&wait(&bad, "state=started&timeout=1")).await;
    assert_eq!(r.status, 408, "{:?}", r.body);
}

#[tokio::test]
async fn wait_from_an_event_sees_only_later_changes() {
    let sim = start_with_app("fe").await;
    let mid = started(&sim, "fe", json!({"image": "nginx"})).await;
    let newest = sim.machine("fe", &mid).await["events"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let wait = format!("/v1/apps/fe/machines/{mid}/wait?state=started&from_event_id={newest}");
    // Started already, but not since that event.
    let r = sim.get(&format!("{wait}&timeout=1")).await;
    assert_eq!(r.status, 408, "{:?}", r.body);
    let r = sim
        .post_empty(&format!("/v1/apps/fe/machines/{mid}/restart"))
        .await;
    assert_eq!(r.status, 200);
    let r = sim.get(&format!("{wait}&timeout=30")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn events_carry_unique_ordered_stable_ids() {
    let sim = start_with_app("ev").await;
    let mid = started(&sim, "ev", json!({"image": "nginx"})).await;
    sim.post_empty(&format!("/v1/apps/ev/machines/{mid}/restart"))
        .await;
    sim.wait_state("ev", &mid, "started").await;
    let first = sim
        .get(&format!("/v1/apps/ev/machines/{mid}/events"))
        .await
        .body;
    let ids: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(ids.len() >= 4, "{ids:?}");
    assert!(ids.iter().all(|i| i.len() == 26), "{ids:?}");
    // Newest first, so the ids strictly decrease (which also makes them unique).
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let again = sim.machine("ev", &mid).await["events"].clone();
    assert_eq!(again, first, "the same events with the same ids");
    // Another Machine's ids differ.
    let other = started(&sim, "ev", json!({"image": "nginx"})).await;
    let theirs = sim.machine("ev", &other).await["events"][0]["id"].clone();
    assert!(!ids.contains(&theirs.as_str().unwrap()));
}

#[tokio::test]
async fn documented_response_shapes_and_body_validation() {
    let sim = start_with_app("shape").await;
    let m = sim
        .create_machine(
            "shape",
            json!({"config": {"image": "nginx"}, "skip_launch": true}),
        )
        .await;
    let mid = id(&m);
    let base = format!("/v1/apps/shape/machines/{mid}");
    let r = sim.post_empty(&format!("{base}/start")).await;
    assert_eq!(
        r.body,
        json!({"previous_state": "created", "migrated": false, "new_host": ""})
    );
    sim.wait_state("shape", &mid, "started").await;

    for bad in [
        json!({"signal": "SIGFOO"}),
        json!({"timeout": "soon"}),
        json!({"timeout": "-5s"}),
    ] {
        let r = sim.post(&format!("{base}/stop"), bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert!(r.body["error"].is_string());
    }
    assert_eq!(sim.machine("shape", &mid).await["state"], "started");
    let r = sim
        .post(
            &format!("{base}/stop"),
            json!({"signal": "SIGTERM", "timeout": "10s"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let lease = sim.post(&format!("{base}/lease"), json!({"ttl": 30})).await;
    let nonce = lease.body["data"]["nonce"].as_str().unwrap().to_string();
    let r = sim
        .send(
            reqwest::Method::DELETE,
            &format!("{base}/lease"),
            None,
            &[("fly-machine-lease-nonce", &nonce)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"status": "success", "data": {"ok": true}}));

    let r = sim
        .post(
            "/v1/apps/shape/machines",
            json!({"config": {"image": "nginx", "checks": {"alive": {"type": "tcp", "port": 80, "interval": "often"}}}}),
        )
        .await;
    assert_error(&r, 400, "config.checks.alive.interval");
    let r = sim
        .post(
            "/v1/apps/shape/machines",
            json!({"config": {"image": "nginx", "checks": {"alive": {"type": "tcp", "port": 80, "interval": "15s", "timeout": "2s"}}}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

#[tokio::test]
async fn retry_after_is_whole_seconds() {
    let sim = start_with_faults(100.0, "503=1").await;
    let r = sim.get("/v1/apps/any").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["retry-after"], "1");
}

/// Polls `path` until it answers 200 (bounded); returns how many 404s came first.
async fn not_found_until_visible(sim: &TestSim, path: &str) -> usize {
    let mut misses = 0;
    for _ in 0..2000 {
        match sim.get(path).await.status {
            200 => return misses,
            404 => misses += 1,
            other => panic!("{path}: {other}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("{path} never became visible");
}

#[tokio::test]
async fn eventual_fault_hides_new_machines_and_apps_briefly() {
    // At 10x the invisible moment lasts 200 ms of real time: ample for the reads that
    // follow a create to land inside it.
    let sim = start_with_faults(10.0, "eventual=1").await;
    sim.create_app("late").await;
    assert!(not_found_until_visible(&sim, "/v1/apps/late").await >= 1);
    let m = sim
        .create_machine("late", json!({"config": {"image": "nginx"}}))
        .await;
    let mid = id(&m);
    let r = sim
        .get(&format!("/v1/apps/late/machines/{mid}/wait?state=started"))
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
    assert!(not_found_until_visible(&sim, &format!("/v1/apps/late/machines/{mid}")).await >= 1);
    sim.wait_state("late", &mid, "started").await;
    assert!(sim.handle.control().counters().faults_by_kind["eventual"] >= 3);
    // Listing is not affected.
    let list = sim.get("/v1/apps/late/machines").await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn capacity_errors_come_in_flys_forms() {
    let sim = start_with_faults(100.0, "capacity=sjc:409+gru:403+bom:412+ams").await;
    sim.create_app("cf").await;
    let create = |region: &str, config: Value| json!({"region": region, "config": config});
    let nginx = json!({"image": "nginx"});
    let r = sim
        .post("/v1/apps/cf/machines", create("sjc", nginx.clone()))
        .await;
    assert_error(&r, 409, "insufficient memory available");
    let r = sim
        .post("/v1/apps/cf/machines", create("gru", nginx.clone()))
        .await;
    assert_error(&r, 403, "over the allowed quota");
    let r = sim
        .post("/v1/apps/cf/machines", create("ams", nginx.clone()))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["status"], "insufficient_capacity");
    // The 412 form only hits Machines that bring a volume.
    let r = sim
        .post("/v1/apps/cf/machines", create("bom", nginx.clone()))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let vol = sim.create_volume("cf", "data", "bom").await;
    let r = sim
        .post(
            "/v1/apps/cf/machines",
            create(
                "bom",
                json!({"image": "nginx", "mounts": [{"volume": vol, "path": "/data"}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 412, "{:?}", r.body);
    assert_eq!(r.body["status"], "volume_placement_capacity");
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("insufficient resources to create new machine with existing volume")
    );
    // Volume creates only see the plain form.
    sim.create_volume("cf", "more", "sjc").await;
    let r = sim
        .post(
            "/v1/apps/cf/volumes",
            json!({"name": "x", "region": "ams", "size_gb": 1}),
        )
        .await;
    assert_eq!(r.status, 422);
    let c = sim.handle.control().counters();
    assert_eq!(c.faults_by_kind["capacity"], 5);
    let spec = sim.get("/__sim/faults").await.body["spec"].clone();
    assert_eq!(spec, "capacity=sjc:409+gru:403+bom:412+ams");
}

#[tokio::test]
async fn regions_report_capacity_per_size() {
    let sim = start_with_app("reg").await;
    let r = sim.get("/v1/platform/regions").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let fra = |body: &Value| -> Value {
        body["Regions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == "fra")
            .cloned()
            .expect("fra is listed")
    };
    assert_eq!(fra(&r.body)["capacity"], 10_000);
    assert!(r.body["Nearest"].is_string());
    assert_eq!(
        sim.get("/v1/platform/regions?size=huge-cpu-99x")
            .await
            .status,
        400
    );

    let r = sim
        .put(
            "/__sim/regions/capacity",
            json!({"region": "fra", "size": "performance-2x", "capacity": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let perf = json!({"image": "nginx", "guest": {"cpu_kind": "performance", "cpus": 2, "memory_mb": 4096}});
    let r = sim
        .post(
            "/v1/apps/reg/machines",
            json!({"region": "fra", "config": perf}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = sim.get("/v1/platform/regions?size=performance-2x").await;
    assert_eq!(fra(&r.body)["capacity"], 0);
    let r = sim
        .post(
            "/v1/apps/reg/machines",
            json!({"region": "fra", "config": perf}),
        )
        .await;
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(r.body["status"], "insufficient_capacity");
    // Other sizes are unaffected; resetting restores the default.
    let r = sim.get("/v1/platform/regions?size=shared-cpu-1x").await;
    assert_eq!(fra(&r.body)["capacity"], 10_000);
    sim.put(
        "/__sim/regions/capacity",
        json!({"region": "fra", "size": "performance-2x", "capacity": null}),
    )
    .await;
    let r = sim.get("/v1/platform/regions?size=performance-2x").await;
    assert_eq!(fra(&r.body)["capacity"], 9_999);
    let r = sim
        .put(
            "/__sim/regions/capacity",
            json!({"region": "xyz", "size": "performance-2x", "capacity": 1}),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn metadata_keys_read_and_update_together() {
    let sim = start_with_app("md").await;
    let mid = started(
        &sim,
        "md",
        json!({"image": "nginx", "metadata": {"a": "1"}}),
    )
    .await;
    let md = format!("/v1/apps/md/machines/{mid}/metadata");
    let v1 = instance(&sim, "md", &mid).await;
    let patch = |body: Value| sim.send(reqwest::Method::PATCH, &md, Some(body), &[]);
    // Set one, remove one with null and one with "", leave the rest alone.
    assert_eq!(
        sim.post(&format!("{md}/b"), json!({"value": "2"}))
            .await
            .status,
        204
    );
    let r = patch(json!({"metadata": {"c": "3", "a": null, "b": ""}, "machine_version": v1})).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(sim.get(&md).await.body, json!({"c": "3"}));
    assert_eq!(
        sim.get(&format!("{md}/c")).await.body,
        json!({"value": "3"})
    );
    let r = sim.get(&format!("{md}/a")).await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"].is_string());
    // A version the Machine is no longer at: 412, nothing changes.
    let r = sim
        .post(
            &format!("/v1/apps/md/machines/{mid}"),
            json!({"config": {"image": "nginx:2", "metadata": {"c": "3"}}}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = patch(json!({"metadata": {"c": "4"}, "machine_version": v1})).await;
    assert_eq!(r.status, 412, "{:?}", r.body);
    assert_eq!(sim.get(&format!("{md}/c")).await.body["value"], "3");
}

#[tokio::test]
async fn standbys_name_live_machines_and_stay_stopped() {
    let sim = start_with_app("sb").await;
    let primary = started(&sim, "sb", json!({"image": "nginx"})).await;
    let machines = "/v1/apps/sb/machines";

    // A Machine the app does not have is refused, as Fly refuses it.
    let r = sim
        .post(
            machines,
            json!({"config": {"image": "nginx", "standbys": ["nope"]}}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("config.standbys"),
        "{:?}",
        r.body
    );

    // Created without skip_launch, a standby still does not start.
    let body = json!({"config": {"image": "nginx", "standbys": [primary]}});
    let s = sim.create_machine("sb", body).await;
    let sid = id(&s);
    sim.wait_state("sb", &sid, "stopped").await;
    let m = sim.machine("sb", &sid).await;
    assert_eq!(m["config"]["standbys"], json!([primary]));

    // Updated without skip_launch: a new version, still stopped.
    let v1 = instance(&sim, "sb", &sid).await;
    let r = sim
        .post(
            &format!("{machines}/{sid}"),
            json!({"config": {"image": "nginx:2", "standbys": [primary]}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = sim.machine("sb", &sid).await;
    assert_ne!(m["instance_id"].as_str().unwrap(), v1);
    assert_eq!(m["state"], "stopped");
    assert_eq!(m["config"]["image"], "nginx:2");

    // A Machine cannot stand by for itself.
    let r = sim
        .post(
            &format!("{machines}/{sid}"),
            json!({"config": {"image": "nginx:2", "standbys": [sid]}}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);

    // The primary's host fails: Fly starts its standby.
    let r = sim
        .post(
            "/__sim/host-failure",
            json!({"app": "sb", "machine_id": primary}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["started_standbys"], json!([sid]));
    assert_eq!(sim.machine("sb", &primary).await["state"], "failed");
    sim.wait_state("sb", &sid, "started").await;
    let r = sim
        .post(
            "/__sim/host-failure",
            json!({"app": "sb", "machine_id": "nope"}),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
}
