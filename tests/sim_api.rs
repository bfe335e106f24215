//! Every simulated Fly endpoint over loopback HTTP: apps, Machines, volumes, secrets,
//! with Fly's normalization, asynchronous states, leases, auth and bad input.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod simkit;

use reqwest::Method;
use serde_json::json;
use simkit::*;

#[tokio::test]
async fn apps_create_get_list_delete() {
    let sim = start_sim().await;
    let r = sim.get("/v1/apps?org_slug=personal").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"total_apps": 0, "apps": []}));

    let r = sim
        .post(
            "/v1/apps",
            json!({"app_name": "alpha", "org_slug": "personal"}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert!(r.body["id"].is_string() && r.body["created_at"].is_i64());
    // Fly's Go client sends `name`.
    let r = sim
        .post("/v1/apps", json!({"name": "beta", "org_slug": "other"}))
        .await;
    assert_eq!(r.status, 201);

    let r = sim
        .post(
            "/v1/apps",
            json!({"app_name": "alpha", "org_slug": "other"}),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["status"], "name_taken");

    let r = sim.get("/v1/apps/alpha").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["organization"]["slug"], "personal");
    assert_eq!(r.body["status"], "pending");

    let r = sim.get("/v1/apps?org_slug=personal").await;
    assert_eq!(r.body["total_apps"], 1);
    assert_eq!(r.body["apps"][0]["name"], "alpha");
    assert_eq!(r.body["apps"][0]["machine_count"], 0);
    assert_eq!(r.body["apps"][0]["network"], "default");

    assert_eq!(sim.get("/v1/apps").await.status, 400);
    assert_eq!(sim.get("/v1/apps/nope").await.status, 404);
    assert_eq!(
        sim.get("/v1/apps/nope").await.body["error"],
        "app not found"
    );

    let r = sim.delete("/v1/apps/alpha").await;
    assert_eq!(r.status, 202);
    assert_eq!(sim.get("/v1/apps/alpha").await.status, 404);
    assert_eq!(sim.delete("/v1/apps/alpha").await.status, 404);
}

/// The app's Machine count and status follow Machines that finish being destroyed
/// while nobody reads them (only app reads happen in between).
#[tokio::test]
async fn app_count_and_status_follow_destroys_without_machine_reads() {
    // Destroying takes 100 s / 100 = 1 s of real time here.
    let sim = start_with(flotilla::sim::SimConfig {
        destroy_delay: std::time::Duration::from_secs(100),
        ..fast_config()
    })
    .await;
    sim.create_app("counted").await;
    let m = sim.create_machine("counted", machine_body("nginx")).await;
    let keep = sim.create_machine("counted", machine_body("nginx")).await;
    let app = sim.get("/v1/apps/counted").await.body;
    assert_eq!(app["machine_count"], 2);
    assert_eq!(app["status"], "deployed");

    let gone = id(&m);
    let r = sim
        .delete(&format!("/v1/apps/counted/machines/{gone}?force=true"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Still destroying: still counted.
    assert_eq!(sim.get("/v1/apps/counted").await.body["machine_count"], 2);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let app = sim.get("/v1/apps/counted").await.body;
    assert_eq!(app["machine_count"], 1, "{app}");
    assert_eq!(app["status"], "deployed");
    let list = sim.get("/v1/apps?org_slug=personal").await.body;
    assert_eq!(list["apps"][0]["machine_count"], 1, "{list}");
    // Reading the Machine afterwards does not count its destroy twice.
    assert_eq!(sim.machine("counted", &gone).await["state"], "destroyed");
    assert_eq!(sim.get("/v1/apps/counted").await.body["machine_count"], 1);

    // The last Machine: the app goes back to pending, in the list too.
    let last = id(&keep);
    let r = sim
        .delete(&format!("/v1/apps/counted/machines/{last}?force=true"))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let list = sim.get("/v1/apps?org_slug=personal").await.body;
    assert_eq!(list["apps"][0]["machine_count"], 0, "{list}");
    let app = sim.get("/v1/apps/counted").await.body;
    assert_eq!(app["machine_count"], 0, "{app}");
    assert_eq!(app["status"], "pending");
    let again = sim.create_machine("counted", machine_body("nginx")).await;
    assert!(again["id"].is_string());
    assert_eq!(sim.get("/v1/apps/counted").await.body["machine_count"], 1);
}

#[tokio::test]
async fn app_names_are_validated() {
    let sim = start_sim().await;
    for bad in ["Upper", "", "-dash", "has_underscore", &"a".repeat(64)] {
        let r = sim
            .post("/v1/apps", json!({"app_name": bad, "org_slug": "personal"}))
            .await;
        assert_eq!(r.status, 422, "{bad}");
        assert!(
            r.body["error"]
                .as_str()
                .unwrap()
                .contains("invalid app name")
        );
    }
    let r = sim.post("/v1/apps", json!({"app_name": "x"})).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn deleting_an_app_with_running_machines_needs_force() {
    let sim = start_with_app("busy").await;
    let vol = sim.create_volume("busy", "data", "sjc").await;
    let m = sim
        .create_machine(
            "busy",
            json!({"region": "sjc", "config": {"image": "nginx",
                "mounts": [{"volume": vol, "path": "/data"}]}}),
        )
        .await;
    sim.wait_state("busy", &id(&m), "started").await;
    let r = sim.delete("/v1/apps/busy").await;
    assert_eq!(r.status, 412, "{:?}", r.body);
    assert_eq!(sim.delete("/v1/apps/busy?force=true").await.status, 202);
    assert_eq!(sim.get("/v1/apps/busy/volumes").await.status, 404);
    // The name is free again.
    sim.create_app("busy").await;
}

#[tokio::test]
async fn auth_is_required_with_flys_error_shape() {
    let sim = start_sim().await;
    let url = format!("{}/v1/apps?org_slug=personal", sim.base);
    let r = sim.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body, json!({"error": "unauthorized"}));
    let r = sim
        .client
        .get(&url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = sim
        .client
        .get(&url)
        .header("Authorization", "Basic dGVzdA==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Control endpoints need the token too.
    let r = sim
        .client
        .get(format!("{}/__sim/counters", sim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Unknown routes (authenticated) are JSON 404s; wrong methods JSON 405s.
    let r = sim.get("/v1/nothing/here").await;
    assert_eq!(r.status, 404);
    assert!(r.body["error"].is_string());
    let r = sim.send(Method::PATCH, "/v1/apps", None, &[]).await;
    assert_eq!(r.status, 405);
    assert!(r.body["error"].is_string());
}

#[tokio::test]
async fn malformed_input_is_a_fly_shaped_4xx() {
    let sim = start_with_app("bad").await;
    let url = format!("{}/v1/apps/bad/machines", sim.base);
    for raw in [
        "{",
        "[]",
        "null",
        "{\"config\": 5}",
        "{\"config\": {\"image\": 7}}",
    ] {
        let r = sim
            .client
            .post(&url)
            .bearer_auth(TOKEN)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{raw}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error"].is_string(), "{raw}");
    }
    let cases = [
        json!({"config": {}}),
        json!({}),
        json!({"region": "xyz", "config": {"image": "nginx"}}),
        json!({"config": {"image": "nginx", "size": "gigantic"}}),
        json!({"config": {"image": "nginx", "guest": {"cpus": 3, "cpu_kind": "shared"}}}),
        json!({"config": {"image": "nginx", "guest": {"cpus": 1, "memory_mb": 100000}}}),
        json!({"config": {"image": "nginx", "guest": {"cpus": -1}}}),
        json!({"name": "Bad Name", "config": {"image": "nginx"}}),
        json!({"config": {"image": "nginx", "services": [{"internal_port": 70000}]}}),
        json!({"config": {"image": "nginx", "services": [{"internal_port": 80, "autostop": "nap"}]}}),
        json!({"config": {"image": "nginx", "mounts": [{"volume": "vol_missing", "path": "/d"}]}}),
    ];
    for body in cases {
        let r = sim.post("/v1/apps/bad/machines", body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {:?}", r.body);
        assert!(r.body["error"].is_string());
    }
    // Oversized body.
    let big = "x".repeat(2 * 1024 * 1024);
    let r = sim
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .body(format!("{{\"name\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"].is_string());
    // Unknown resources.
    assert_eq!(sim.get("/v1/apps/bad/machines/0000").await.status, 404);
    assert_eq!(sim.get("/v1/apps/bad/volumes/vol_x").await.status, 404);
    assert_eq!(sim.get("/v1/apps/none/machines").await.status, 404);
    assert_eq!(
        sim.get("/v1/apps/bad/machines?include_deleted=maybe")
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn machine_config_is_normalized_like_fly() {
    let sim = start_with_app("norm").await;
    let m = sim
        .create_machine(
            "norm",
            json!({"region": "fra", "config": {
                "image": "registry.fly.io/my-jarvis:1.4.43",
                "size": "shared-cpu-2x",
                "env": {"B": "2", "A": "1"},
                "services": [
                    {"internal_port": 10000, "autostop": "stop", "autostart": true,
                     "ports": [{"port": 443, "handlers": ["tls", "http"]}]},
                    {"internal_port": 10001, "autostop": "suspend"},
                    {"internal_port": 10002, "autostop": "off"}
                ],
                "stop_config": {"signal": "SIGTERM", "timeout": "10s"}
            }}),
        )
        .await;
    let c = &m["config"];
    assert_eq!(m["state"], "created");
    assert_eq!(m["region"], "fra");
    assert_eq!(c["init"], json!({}));
    assert_eq!(
        c["restart"],
        json!({"policy": "on-failure", "max_retries": 10})
    );
    assert_eq!(
        c["guest"],
        json!({"cpu_kind": "shared", "cpus": 2, "memory_mb": 512})
    );
    assert!(c.get("size").is_none());
    assert_eq!(c["services"][0]["autostop"], json!(true));
    assert_eq!(c["services"][1]["autostop"], json!("suspend"));
    assert_eq!(c["services"][2]["autostop"], json!(false));
    assert_eq!(c["services"][0]["protocol"], "tcp");
    assert_eq!(c["services"][0]["force_instance_key"], json!(null));
    assert_eq!(c["stop_config"]["signal"], "SIGTERM");
    let keys: Vec<_> = c["env"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, vec!["A", "B"]);
    assert_eq!(m["image_ref"]["registry"], "registry.fly.io");
    assert_eq!(m["image_ref"]["repository"], "my-jarvis");
    assert_eq!(m["image_ref"]["tag"], "1.4.43");
    assert!(
        m["image_ref"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(m["instance_id"].as_str().unwrap().len(), 26);
    assert!(m["private_ip"].as_str().unwrap().starts_with("fdaa:"));
    assert!(m["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(m["events"][0]["type"], "launch");
    assert!(m["name"].is_string());

    // An update with the same config yields a new instance_id: a raw diff sees a change.
    let before = m["instance_id"].clone();
    let mid = id(&m);
    sim.wait_state("norm", &mid, "started").await;
    let r = sim
        .post(
            &format!("/v1/apps/norm/machines/{mid}"),
            json!({"config": m["config"].clone()}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_ne!(r.body["instance_id"], before);
    assert_eq!(r.body["config"], m["config"]);
}

#[tokio::test]
async fn machine_lifecycle_goes_through_async_states() {
    let sim = start_with_app("life").await;
    let m = sim.create_machine("life", machine_body("nginx")).await;
    let mid = id(&m);
    let path = format!("/v1/apps/life/machines/{mid}");
    assert_eq!(m["state"], "created");
    sim.wait_state("life", &mid, "started").await;
    assert_eq!(sim.machine("life", &mid).await["state"], "started");

    // Starting a started Machine is refused as on Fly.
    let r = sim.post_empty(&format!("{path}/start")).await;
    assert_eq!(r.status, 412);

    assert_eq!(
        sim.post(&format!("{path}/stop"), json!({"signal": "SIGINT"}))
            .await
            .status,
        200
    );
    let s = sim.machine("life", &mid).await["state"].clone();
    assert!(s == "stopping" || s == "stopped", "{s}");
    sim.wait_state("life", &mid, "stopped").await;

    let r = sim.post_empty(&format!("{path}/start")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["previous_state"], "stopped");
    sim.wait_state("life", &mid, "started").await;

    assert_eq!(sim.post_empty(&format!("{path}/suspend")).await.status, 200);
    sim.wait_state("life", &mid, "suspended").await;
    assert_eq!(sim.post_empty(&format!("{path}/start")).await.status, 200);
    sim.wait_state("life", &mid, "started").await;

    let instance = sim.machine("life", &mid).await["instance_id"].clone();
    assert_eq!(sim.post_empty(&format!("{path}/restart")).await.status, 200);
    sim.wait_state("life", &mid, "started").await;
    let after = sim.machine("life", &mid).await;
    assert_eq!(after["instance_id"], instance);
    // Newest first: the reboot's start follows the restart request.
    assert_eq!(after["events"][0]["status"], "started");
    assert!(
        after["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "restart")
    );

    assert_eq!(sim.post_empty(&format!("{path}/cordon")).await.status, 200);
    assert_eq!(sim.machine("life", &mid).await["cordoned"], true);
    assert_eq!(
        sim.post_empty(&format!("{path}/uncordon")).await.status,
        200
    );
    assert_eq!(sim.machine("life", &mid).await["cordoned"], false);

    // A running Machine is not destroyed without force.
    assert_eq!(sim.delete(&path).await.status, 412);
    assert_eq!(sim.delete(&format!("{path}?force=true")).await.status, 200);
    sim.wait_state("life", &mid, "destroyed").await;
    assert_eq!(sim.delete(&path).await.status, 404);

    // Events, newest first.
    let ev = sim.get(&format!("{path}/events")).await;
    assert_eq!(ev.status, 200);
    let events = ev.body.as_array().unwrap();
    assert_eq!(events[0]["status"], "destroyed");
    assert_eq!(events.last().unwrap()["type"], "launch");

    // Destroyed Machines are listed only with include_deleted.
    let list = sim.get("/v1/apps/life/machines").await.body;
    assert_eq!(list.as_array().unwrap().len(), 0);
    let list = sim
        .get("/v1/apps/life/machines?include_deleted=true")
        .await
        .body;
    assert_eq!(list[0]["state"], "destroyed");
}

#[tokio::test]
async fn skip_launch_and_stopped_deletes() {
    let sim = start_with_app("skip").await;
    let m = sim
        .create_machine(
            "skip",
            json!({"config": {"image": "nginx"}, "skip_launch": true, "region": "ord"}),
        )
        .await;
    let mid = id(&m);
    // It stays created: the wait for started times out with 408.
    let r = sim
        .get(&format!(
            "/v1/apps/skip/machines/{mid}/wait?state=started&timeout=1"
        ))
        .await;
    assert_eq!(r.status, 408);
    assert_eq!(sim.machine("skip", &mid).await["state"], "created");
    assert_eq!(sim.machine("skip", &mid).await["region"], "ord");
    // A created Machine can be destroyed without force.
    assert_eq!(
        sim.delete(&format!("/v1/apps/skip/machines/{mid}"))
            .await
            .status,
        200
    );
    let r = sim
        .get(&format!("/v1/apps/skip/machines/{mid}/wait?state=nonsense"))
        .await;
    assert_eq!(r.status, 400);
    let r = sim
        .get(&format!("/v1/apps/skip/machines/{mid}/wait?timeout=soon"))
        .await;
    assert_eq!(r.status, 400);
    // Default region.
    let m = sim
        .create_machine("skip", json!({"config": {"image": "nginx"}}))
        .await;
    assert_eq!(m["region"], "iad");
}

#[tokio::test]
async fn list_filters_by_region_and_metadata() {
    let sim = start_with_app("filt").await;
    for (region, tenant) in [("sjc", "a"), ("sjc", "b"), ("fra", "a")] {
        sim.create_machine(
            "filt",
            json!({"region": region, "config": {"image": "nginx",
                "metadata": {"tenant": tenant, "role": "app"}}}),
        )
        .await;
    }
    let count = |v: &serde_json::Value| v.as_array().unwrap().len();
    assert_eq!(count(&sim.get("/v1/apps/filt/machines").await.body), 3);
    assert_eq!(
        count(&sim.get("/v1/apps/filt/machines?region=sjc").await.body),
        2
    );
    assert_eq!(
        count(
            &sim.get("/v1/apps/filt/machines?metadata.tenant=a")
                .await
                .body
        ),
        2
    );
    assert_eq!(
        count(
            &sim.get("/v1/apps/filt/machines?metadata.tenant=a&region=fra&metadata.role=app")
                .await
                .body
        ),
        1
    );
    assert_eq!(
        count(
            &sim.get("/v1/apps/filt/machines?metadata.tenant=zzz")
                .await
                .body
        ),
        0
    );
}

#[tokio::test]
async fn metadata_changes_without_restart() {
    let sim = start_with_app("meta").await;
    let m = sim.create_machine("meta", machine_body("nginx")).await;
    let mid = id(&m);
    sim.wait_state("meta", &mid, "started").await;
    let before = sim.machine("meta", &mid).await;
    let p = format!("/v1/apps/meta/machines/{mid}/metadata");
    let r = sim
        .post(&format!("{p}/owner"), json!({"value": "team-a"}))
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(sim.get(&p).await.body, json!({"owner": "team-a"}));
    let after = sim.machine("meta", &mid).await;
    assert_eq!(after["state"], "started");
    assert_eq!(after["instance_id"], before["instance_id"]);
    assert_eq!(after["config"]["metadata"]["owner"], "team-a");
    assert_eq!(
        sim.post(&format!("{p}/owner"), json!({"value": 3}))
            .await
            .status,
        400
    );
    assert_eq!(sim.delete(&format!("{p}/owner")).await.status, 204);
    assert_eq!(sim.get(&p).await.body, json!({}));
}

#[tokio::test]
async fn leases_guard_changes() {
    let sim = start_with_app("lease").await;
    let m = sim
        .create_machine(
            "lease",
            json!({"region": "sjc", "config": {"image": "nginx"}, "lease_ttl": 60}),
        )
        .await;
    let mid = id(&m);
    let nonce = m["nonce"].as_str().unwrap().to_string();
    let p = format!("/v1/apps/lease/machines/{mid}");
    sim.wait_state("lease", &mid, "started").await;
    let cfg = json!({"config": {"image": "nginx:2"}});

    // Held: no nonce → 409, wrong nonce → 412, right nonce → ok.
    let r = sim.post(&p, cfg.clone()).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    let r = sim
        .send(
            Method::POST,
            &p,
            Some(cfg.clone()),
            &[("fly-machine-lease-nonce", "bad")],
        )
        .await;
    assert_eq!(r.status, 412);
    let r = sim.post(&format!("{p}/lease"), json!({"ttl": 30})).await;
    assert_eq!(r.status, 409);
    let r = sim.get(&format!("{p}/lease")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["data"]["nonce"], nonce.as_str());
    assert!(r.body["data"]["expires_at"].is_i64());
    let r = sim
        .send(
            Method::POST,
            &p,
            Some(cfg.clone()),
            &[("fly-machine-lease-nonce", &nonce)],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Release needs the nonce.
    assert_eq!(sim.delete(&format!("{p}/lease")).await.status, 400);
    let r = sim
        .send(
            Method::DELETE,
            &format!("{p}/lease"),
            None,
            &[("fly-machine-lease-nonce", &nonce)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(sim.get(&format!("{p}/lease")).await.status, 404);

    // Acquire, then refresh with the nonce to a short TTL, then it expires (TTLs are
    // scaled: 60 s / 100 = 600 ms, then 10 ms).
    let r = sim
        .post(
            &format!("{p}/lease"),
            json!({"ttl": 60, "description": "deploy"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let n2 = r.body["data"]["nonce"].as_str().unwrap().to_string();
    let r = sim
        .send(
            Method::POST,
            &format!("{p}/lease?ttl=1"),
            None,
            &[("fly-machine-lease-nonce", &n2)],
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["data"]["nonce"], n2.as_str());
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(sim.get(&format!("{p}/lease")).await.status, 404);
    assert_eq!(sim.post(&p, cfg).await.status, 200);
}

/// `lease_ttl` on create is held to the lease endpoint's 1–3600 s, with the same 400.
#[tokio::test]
async fn lease_ttl_on_create_is_checked_like_the_lease_endpoint() {
    let sim = start_with_app("ttl").await;
    let m = sim.create_machine("ttl", machine_body("nginx")).await;
    let lease = format!("/v1/apps/ttl/machines/{}/lease", id(&m));
    for bad in [json!(0), json!(3601), json!(u64::MAX)] {
        let created = sim
            .post(
                "/v1/apps/ttl/machines",
                json!({"region": "sjc", "config": {"image": "nginx"}, "lease_ttl": bad}),
            )
            .await;
        let leased = sim.post(&lease, json!({ "ttl": bad })).await;
        for r in [&created, &leased] {
            assert_eq!(r.status, 400, "lease_ttl {bad}: {:?}", r.body);
            let err = r.body["error"].as_str().unwrap();
            assert!(err.contains("expected 1 to 3600 seconds"), "{err}");
        }
        assert!(
            created.body["error"]
                .as_str()
                .unwrap()
                .contains("lease_ttl"),
            "{:?}",
            created.body
        );
        assert_eq!(
            created.body.as_object().unwrap().keys().collect::<Vec<_>>(),
            leased.body.as_object().unwrap().keys().collect::<Vec<_>>()
        );
    }
    // Nothing was created by the refused requests; the bounds themselves are accepted.
    let list = sim.get("/v1/apps/ttl/machines").await.body;
    assert_eq!(list.as_array().unwrap().len(), 1);
    for ok in [1, 3600] {
        let r = sim
            .post(
                "/v1/apps/ttl/machines",
                json!({"region": "sjc", "config": {"image": "nginx"}, "lease_ttl": ok}),
            )
            .await;
        assert_eq!(r.status, 200, "lease_ttl {ok}: {:?}", r.body);
        assert!(r.body["nonce"].is_string());
    }
}

/// Counters key made-up HTTP methods as `OTHER`.
#[tokio::test]
async fn unknown_methods_are_counted_as_other() {
    let sim = start_sim().await;
    for m in [&b"BREW"[..], b"PROPFIND", b"X-RANDOM-1"] {
        let method = Method::from_bytes(m).unwrap();
        let r = sim.send(method, "/v1/apps", None, &[]).await;
        assert!(r.status >= 400, "{}", r.status);
    }
    let c = sim.handle.control().counters();
    assert_eq!(c.by_method.get("OTHER"), Some(&3), "{:?}", c.by_method);
    assert_eq!(c.by_method.len(), 1, "{:?}", c.by_method);
    assert!(c.by_method_status.keys().all(|k| k.starts_with("OTHER ")));
}

#[tokio::test]
async fn update_conflicts_and_preconditions() {
    let sim = start_with(scaled(10.0)).await;
    sim.create_app("upd").await;
    let m = sim.create_machine("upd", machine_body("nginx")).await;
    let mid = id(&m);
    let p = format!("/v1/apps/upd/machines/{mid}");
    sim.wait_state("upd", &mid, "started").await;
    let r = sim
        .post(
            &p,
            json!({"config": {"image": "nginx:2"}, "current_version": "stale"}),
        )
        .await;
    assert_eq!(r.status, 412);
    let r = sim
        .post(&p, json!({"config": {"image": "nginx:2"}, "region": "fra"}))
        .await;
    assert_eq!(r.status, 400);
    // Two updates at once: the second finds the Machine replacing → 409.
    let (a, b) = tokio::join!(
        sim.post(&p, json!({"config": {"image": "nginx:2"}})),
        sim.post(&p, json!({"config": {"image": "nginx:3"}}))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{:?} {:?}", a.body, b.body);
    assert!(a.body["error"].is_string() || b.body["error"].is_string());
    sim.wait_state("upd", &mid, "started").await;
    assert_eq!(sim.post(&p, json!({})).await.status, 400);
    // Updating a stopped Machine starts it unless skip_launch.
    sim.post_empty(&format!("{p}/stop")).await;
    sim.wait_state("upd", &mid, "stopped").await;
    let r = sim
        .post(
            &p,
            json!({"config": {"image": "nginx:4"}, "skip_launch": true}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["state"], "stopped");
    let r = sim.post(&p, json!({"config": {"image": "nginx:5"}})).await;
    assert_eq!(r.body["state"], "starting");
    sim.wait_state("upd", &mid, "started").await;
}

/// A deleted volume is still listed, `pending_destroy`, for the volume destroy delay (as
/// Fly lists deleted volumes for a while), then it is gone; GET by id answers 404 at
/// once.
#[tokio::test]
async fn a_deleted_volume_is_listed_as_pending_destroy_for_a_while() {
    // 40 s / 100 = 0.4 s of real time.
    let sim = start_with(flotilla::sim::SimConfig {
        volume_destroy_delay: std::time::Duration::from_secs(40),
        ..fast_config()
    })
    .await;
    sim.create_app("lingers").await;
    let v = sim
        .post(
            "/v1/apps/lingers/volumes",
            json!({"name": "data", "region": "sjc", "size_gb": 1}),
        )
        .await;
    let vid = v.body["id"].as_str().unwrap().to_string();
    let r = sim.delete(&format!("/v1/apps/lingers/volumes/{vid}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let listed = sim.get("/v1/apps/lingers/volumes").await.body;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], vid.as_str());
    assert_eq!(listed[0]["state"], "pending_destroy");
    assert_eq!(
        sim.get(&format!("/v1/apps/lingers/volumes/{vid}"))
            .await
            .status,
        404
    );
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        if sim.get("/v1/apps/lingers/volumes").await.body == json!([]) {
            gone = true;
            break;
        }
    }
    assert!(
        gone,
        "the deleted volume is still listed after its destroy delay"
    );
}

#[tokio::test]
async fn volumes_create_list_update_extend_snapshot_delete() {
    let sim = start_with_app("vols").await;
    let r = sim
        .post(
            "/v1/apps/vols/volumes",
            json!({"name": "data", "region": "sjc"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = r.body.clone();
    assert_eq!(v["size_gb"], 1);
    assert_eq!(v["encrypted"], true);
    assert_eq!(v["snapshot_retention"], 5);
    assert_eq!(v["auto_backup_enabled"], true);
    assert_eq!(v["attached_machine_id"], json!(null));
    assert_eq!(v["state"], "created");
    let vid = id(&v);
    // Names are not unique; ids are, and zones differ for same-named volumes.
    let v2 = sim
        .post(
            "/v1/apps/vols/volumes",
            json!({"name": "data", "region": "sjc", "size_gb": 2}),
        )
        .await
        .body;
    assert_ne!(v2["id"], v["id"]);
    assert_ne!(v2["zone"], v["zone"]);
    assert_eq!(
        sim.get("/v1/apps/vols/volumes")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        sim.get(&format!("/v1/apps/vols/volumes/{vid}")).await.body["name"],
        "data"
    );

    let r = sim
        .put(
            &format!("/v1/apps/vols/volumes/{vid}"),
            json!({"snapshot_retention": 14, "auto_backup_enabled": false}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["snapshot_retention"], 14);
    assert_eq!(r.body["auto_backup_enabled"], false);
    let r = sim
        .put(
            &format!("/v1/apps/vols/volumes/{vid}"),
            json!({"snapshot_retention": 99}),
        )
        .await;
    assert_eq!(r.status, 400);

    let r = sim
        .put(
            &format!("/v1/apps/vols/volumes/{vid}/extend"),
            json!({"size_gb": 5}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["volume"]["size_gb"], 5);
    assert_eq!(r.body["needs_restart"], false);
    for bad in [5, 2, 501] {
        let r = sim
            .put(
                &format!("/v1/apps/vols/volumes/{vid}/extend"),
                json!({"size_gb": bad}),
            )
            .await;
        assert_eq!(r.status, 400, "{bad}");
    }

    // Snapshots: listed at once, complete later; a new volume restores from one.
    let r = sim
        .post_empty(&format!("/v1/apps/vols/volumes/{vid}/snapshots"))
        .await;
    assert_eq!(r.status, 200);
    let snap_id = r.body["Msg"]["backup"]["graph_id"]
        .as_str()
        .unwrap()
        .to_string();
    let snaps = sim
        .get(&format!("/v1/apps/vols/volumes/{vid}/snapshots"))
        .await
        .body;
    assert_eq!(snaps[0]["id"], snap_id.as_str());
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    let snaps = sim
        .get(&format!("/v1/apps/vols/volumes/{vid}/snapshots"))
        .await
        .body;
    assert_eq!(snaps[0]["status"], "created");
    let r = sim
        .post(
            "/v1/apps/vols/volumes",
            json!({"name": "restored", "region": "sjc", "snapshot_id": snap_id}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["state"], "restoring");
    assert_eq!(r.body["size_gb"], 5);
    let rid = id(&r.body);
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    assert_eq!(
        sim.get(&format!("/v1/apps/vols/volumes/{rid}")).await.body["state"],
        "created"
    );
    let r = sim
        .post(
            "/v1/apps/vols/volumes",
            json!({"name": "x", "region": "sjc", "snapshot_id": "vs_nope"}),
        )
        .await;
    assert_eq!(r.status, 404);

    let r = sim.delete(&format!("/v1/apps/vols/volumes/{vid}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["state"], "destroyed");
    assert_eq!(
        sim.get(&format!("/v1/apps/vols/volumes/{vid}"))
            .await
            .status,
        404
    );

    for bad in [
        json!({"name": "Bad-Name", "region": "sjc"}),
        json!({"name": "ok", "region": "nowhere"}),
        json!({"name": "ok"}),
        json!({"name": "ok", "region": "sjc", "size_gb": 0}),
        json!({"name": "ok", "region": "sjc", "size_gb": 501}),
        json!({"name": "ok", "region": "sjc", "size_gb": "big"}),
        json!({"name": "ok", "region": "sjc", "snapshot_retention": 0}),
        json!({"name": "ok", "region": "sjc", "fstype": "zfs"}),
    ] {
        let r = sim.post("/v1/apps/vols/volumes", bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn attached_volume_detaches_only_after_a_delay() {
    let sim = start_with(flotilla::sim::SimConfig {
        detach_delay: std::time::Duration::from_secs(60),
        ..fast_config()
    })
    .await;
    sim.create_app("att").await;
    let vid = sim.create_volume("att", "data", "sjc").await;
    let m = sim
        .create_machine(
            "att",
            json!({"region": "sjc", "config": {"image": "nginx",
                "mounts": [{"volume": vid, "path": "/data"}]}}),
        )
        .await;
    let mid = id(&m);
    let mount = &m["config"]["mounts"][0];
    assert_eq!(mount["name"], "data");
    assert_eq!(mount["size_gb"], 3);
    assert_eq!(mount["encrypted"], true);
    let v = sim.get(&format!("/v1/apps/att/volumes/{vid}")).await.body;
    assert_eq!(v["attached_machine_id"], mid.as_str());
    // A second Machine cannot mount it, nor one in another region.
    let r = sim
        .post(
            "/v1/apps/att/machines",
            json!({"region": "sjc", "config": {"image": "nginx",
                "mounts": [{"volume": vid, "path": "/data"}]}}),
        )
        .await;
    assert_eq!(r.status, 412);
    let r = sim
        .post(
            "/v1/apps/att/machines",
            json!({"region": "fra", "config": {"image": "nginx",
                "mounts": [{"volume": vid, "path": "/data"}]}}),
        )
        .await;
    assert_eq!(r.status, 400);
    // Extending an attached volume of a running Machine needs a restart.
    sim.wait_state("att", &mid, "started").await;
    let r = sim
        .put(
            &format!("/v1/apps/att/volumes/{vid}/extend"),
            json!({"size_gb": 4}),
        )
        .await;
    assert_eq!(r.body["needs_restart"], true);
    assert_eq!(
        sim.machine("att", &mid).await["config"]["mounts"][0]["size_gb"],
        4
    );

    assert_eq!(
        sim.delete(&format!("/v1/apps/att/volumes/{vid}"))
            .await
            .status,
        412
    );
    assert_eq!(
        sim.delete(&format!("/v1/apps/att/machines/{mid}?force=true"))
            .await
            .status,
        200
    );
    sim.wait_state("att", &mid, "destroyed").await;
    // Destroyed, but the attachment has not cleared yet (60 s / 100 = 600 ms).
    let v = sim.get(&format!("/v1/apps/att/volumes/{vid}")).await.body;
    assert_eq!(v["attached_machine_id"], mid.as_str());
    let r = sim.delete(&format!("/v1/apps/att/volumes/{vid}")).await;
    assert_eq!(r.status, 412);
    let mut cleared = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let v = sim.get(&format!("/v1/apps/att/volumes/{vid}")).await.body;
        if v["attached_machine_id"].is_null() {
            cleared = true;
            break;
        }
    }
    assert!(cleared, "the volume never detached");
    assert_eq!(
        sim.delete(&format!("/v1/apps/att/volumes/{vid}"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn secrets_list_set_delete_bulk_without_values() {
    let sim = start_with_app("sec").await;
    let r = sim.get("/v1/apps/sec/secrets").await;
    assert_eq!(r.body, json!({"secrets": []}));
    let r = sim
        .post("/v1/apps/sec/secrets/API_KEY", json!({"value": "hunter2"}))
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["name"], "API_KEY");
    assert_eq!(r.body["version"], 1);
    let digest = r.body["digest"].as_str().unwrap().to_string();
    assert!(!r.body.to_string().contains("hunter2"));
    // Same value: no new version.
    let r = sim
        .post("/v1/apps/sec/secrets/API_KEY", json!({"value": "hunter2"}))
        .await;
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["digest"], digest.as_str());
    let r = sim.get("/v1/apps/sec/secrets/API_KEY").await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("value").is_none());

    let r = sim
        .post(
            "/v1/apps/sec/secrets",
            json!({"values": {"API_KEY": "new", "DB_URL": "postgres://x", "NOPE": null}}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["secrets"].as_array().unwrap().len(), 2);
    assert_ne!(r.body["secrets"][0]["digest"], digest.as_str());
    let list = sim.get("/v1/apps/sec/secrets").await.body;
    assert!(!list.to_string().contains("postgres://x"));
    let r = sim
        .post("/v1/apps/sec/secrets", json!({"values": {"DB_URL": null}}))
        .await;
    assert_eq!(r.body["version"], 3);
    assert_eq!(r.body["secrets"].as_array().unwrap().len(), 1);
    let r = sim.delete("/v1/apps/sec/secrets/API_KEY").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["version"], 4);
    assert_eq!(sim.delete("/v1/apps/sec/secrets/API_KEY").await.status, 404);
    assert_eq!(sim.get("/v1/apps/sec/secrets/API_KEY").await.status, 404);
    assert_eq!(
        sim.post("/v1/apps/sec/secrets/1BAD", json!({"value": "v"}))
            .await
            .status,
        400
    );
    assert_eq!(
        sim.post("/v1/apps/sec/secrets/OK", json!({"value": 1}))
            .await
            .status,
        400
    );
    assert_eq!(
        sim.post("/v1/apps/sec/secrets", json!({"values": {"A-B": "v"}}))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn secrets_reach_machines_only_at_boot_or_update() {
    let sim = start_with_app("boot").await;
    sim.post("/v1/apps/boot/secrets/TOKEN_A", json!({"value": "1"}))
        .await;
    let m1 = id(&sim.create_machine("boot", machine_body("nginx")).await);
    let m2 = id(&sim.create_machine("boot", machine_body("nginx")).await);
    sim.wait_state("boot", &m1, "started").await;
    sim.wait_state("boot", &m2, "started").await;
    let view = sim.handle.control().machines("boot").unwrap();
    assert_eq!(view.secrets_version, 1);
    assert!(
        view.machines
            .iter()
            .all(|m| m.secrets_version_seen == Some(1) && !m.secrets_stale)
    );

    sim.post("/v1/apps/boot/secrets/TOKEN_A", json!({"value": "2"}))
        .await;
    let r = sim.get("/__sim/apps/boot/machines").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["secrets_version"], 2);
    assert!(
        r.body["machines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["secrets_stale"] == true)
    );

    // Restart m1, update m2: both pick up version 2.
    sim.post_empty(&format!("/v1/apps/boot/machines/{m1}/restart"))
        .await;
    let cfg = sim.machine("boot", &m2).await["config"].clone();
    sim.post(
        &format!("/v1/apps/boot/machines/{m2}"),
        json!({"config": cfg}),
    )
    .await;
    sim.wait_state("boot", &m1, "started").await;
    sim.wait_state("boot", &m2, "started").await;
    let view = sim.handle.control().machines("boot").unwrap();
    assert!(
        view.machines
            .iter()
            .all(|m| m.secrets_version_seen == Some(2) && !m.secrets_stale)
    );
    assert_eq!(sim.get("/__sim/apps/nope/machines").await.status, 404);
}
