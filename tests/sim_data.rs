//! The simulator's data model: content tags that follow a volume's data into its
//! snapshots, restores and forks; snapshots of deleted volumes kept until the app is
//! deleted; one-shot Machines that run, exit with a status and are destroyed.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod simkit;

use std::time::Duration;

use serde_json::{Value, json};
use simkit::*;

async fn set_content(sim: &TestSim, app: &str, vol: &str, tag: &str) {
    let r = sim
        .put(
            &format!("/__sim/apps/{app}/volumes/{vol}/content"),
            json!({ "content": tag }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn view(sim: &TestSim, app: &str) -> Value {
    let r = sim.get(&format!("/__sim/apps/{app}/volumes")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
}

fn volume<'a>(view: &'a Value, id: &str) -> &'a Value {
    view["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no volume {id} in {view}"))
}

/// Takes a snapshot of `vol` and waits (bounded) until it is complete; returns its id.
async fn snapshot(sim: &TestSim, app: &str, vol: &str) -> String {
    let r = sim
        .post_empty(&format!("/v1/apps/{app}/volumes/{vol}/snapshots"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for _ in 0..200 {
        let r = sim
            .get(&format!("/v1/apps/{app}/volumes/{vol}/snapshots"))
            .await;
        if let Some(s) = r.body.as_array().and_then(|a| a.last())
            && s["status"] == "created"
        {
            return id(s);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("snapshot of {vol} never completed");
}

#[tokio::test]
async fn content_follows_snapshots_restores_and_forks() {
    let sim = start_with_app("data").await;
    let vol = sim.create_volume("data", "pg", "ams").await;
    assert_eq!(
        volume(&view(&sim, "data").await, &vol)["origin"]["kind"],
        "empty"
    );
    set_content(&sim, "data", &vol, "orders-v1").await;
    let sid = snapshot(&sim, "data", &vol).await;
    set_content(&sim, "data", &vol, "orders-v2").await;

    let r = sim
        .post(
            "/v1/apps/data/volumes",
            json!({"name": "pg", "region": "fra", "snapshot_id": sid, "size_gb": 5}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let restored = id(&r.body);
    let r = sim
        .post(
            "/v1/apps/data/volumes",
            json!({"name": "pg_fork", "region": "ams", "source_volume_id": vol}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let fork = id(&r.body);

    let v = view(&sim, "data").await;
    let r = volume(&v, &restored);
    assert_eq!(
        r["content"], "orders-v1",
        "the snapshot's data, not the newer one"
    );
    assert_eq!(r["region"], "fra");
    assert_eq!(r["origin"]["kind"], "snapshot");
    assert_eq!(r["origin"]["snapshot_id"], sid.as_str());
    assert_eq!(r["origin"]["volume_id"], vol.as_str());
    let f = volume(&v, &fork);
    assert_eq!(f["content"], "orders-v2");
    assert_eq!(f["origin"], json!({"kind": "fork", "volume_id": vol}));
    assert_eq!(volume(&v, &vol)["snapshots"][0]["content"], "orders-v1");
}

#[tokio::test]
async fn a_deleted_volumes_snapshots_survive_until_the_app_is_deleted() {
    let sim = start_with_app("keep").await;
    let vol = sim.create_volume("keep", "pg", "ams").await;
    set_content(&sim, "keep", &vol, "ledger").await;
    let sid = snapshot(&sim, "keep", &vol).await;
    let r = sim.delete(&format!("/v1/apps/keep/volumes/{vol}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Listed by the deleted volume's id, and restorable.
    let r = sim
        .get(&format!("/v1/apps/keep/volumes/{vol}/snapshots"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body[0]["id"], sid.as_str());
    let r = sim
        .post(
            "/v1/apps/keep/volumes",
            json!({"name": "pg", "region": "ams", "snapshot_id": sid}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let back = id(&r.body);
    assert_eq!(
        volume(&view(&sim, "keep").await, &back)["content"],
        "ledger"
    );
    assert_eq!(
        view(&sim, "keep").await["retired_snapshots"][&vol][0]["id"],
        sid.as_str()
    );

    // Deleting the app deletes them with it: a new app of that name has none.
    let r = sim.delete("/v1/apps/keep?force=true").await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    sim.create_app("keep").await;
    let r = sim
        .post(
            "/v1/apps/keep/volumes",
            json!({"name": "pg", "region": "ams", "snapshot_id": sid}),
        )
        .await;
    assert_eq!(r.status, 404, "{:?}", r.body);
}

#[tokio::test]
async fn a_snapshot_restores_into_another_app_of_the_org_only() {
    let sim = start_with_app("src").await;
    sim.create_app("dst").await;
    let r = sim
        .post(
            "/v1/apps",
            json!({"app_name": "elsewhere", "org_slug": "other-org"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let vol = sim.create_volume("src", "pg", "ams").await;
    set_content(&sim, "src", &vol, "shared-data").await;
    let sid = snapshot(&sim, "src", &vol).await;
    let body = json!({"name": "pg", "region": "ams", "snapshot_id": sid});

    // Another app of the same organization: the data arrives there.
    let r = sim.post("/v1/apps/dst/volumes", body.clone()).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let v = view(&sim, "dst").await;
    let restored = volume(&v, &id(&r.body));
    assert_eq!(restored["content"], "shared-data");
    assert_eq!(restored["origin"]["volume_id"], vol.as_str());
    // Another organization's app does not see the snapshot.
    let r = sim.post("/v1/apps/elsewhere/volumes", body).await;
    assert_eq!(r.status, 404, "{:?}", r.body);
}

fn one_shot(image: &str) -> Value {
    json!({"region": "ams", "config": {
        "image": image, "auto_destroy": true, "restart": {"policy": "no"}
    }})
}

async fn exit_code(sim: &TestSim, app: &str, mid: &str) -> i64 {
    sim.wait_state(app, mid, "destroyed").await;
    let r = sim
        .get(&format!("/v1/apps/{app}/machines/{mid}/events"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let exit = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "exit")
        .unwrap_or_else(|| panic!("no exit event in {}", r.body));
    exit["request"]["exit_event"]["exit_code"].as_i64().unwrap()
}

#[tokio::test]
async fn one_shot_machines_exit_with_a_status_and_are_destroyed() {
    let sim = start_with_faults(100.0, "job_fail=export-broken").await;
    sim.create_app("jobs").await;
    let ok = id(&sim
        .create_machine("jobs", one_shot("flotilla/export:1"))
        .await);
    let bad = id(&sim
        .create_machine("jobs", one_shot("flotilla/export-broken:1"))
        .await);
    assert_eq!(exit_code(&sim, "jobs", &ok).await, 0);
    assert_eq!(exit_code(&sim, "jobs", &bad).await, 1);
    // An ordinary Machine keeps running.
    let svc = id(&sim.create_machine("jobs", machine_body("nginx")).await);
    sim.wait_state("jobs", &svc, "started").await;
    assert_eq!(sim.machine("jobs", &svc).await["state"], "started");
}

#[tokio::test]
async fn job_fail_is_part_of_the_fault_grammar() {
    let c: flotilla::sim::FaultConfig = "job_fail=a+b".parse().unwrap();
    assert_eq!(c.failing_jobs, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(c.to_string(), "job_fail=a+b");
    assert!("job_fail=".parse::<flotilla::sim::FaultConfig>().is_err());
}
