//! Persistence across restarts, the request log, the blocking start API and the real
//! `flotilla sim serve` binary.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod simkit;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flotilla::sim::{SimConfig, SimError, start, start_blocking};
use serde_json::{Value, json};
use simkit::*;

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".flotilla").join("sim.json");
    let cfg = SimConfig {
        state_file: Some(state.clone()),
        ..fast_config()
    };
    let sim = start_with(cfg.clone()).await;
    sim.create_app("keep").await;
    sim.post("/v1/apps/keep/secrets/K", json!({"value": "v"}))
        .await;
    let vid = sim.create_volume("keep", "data", "sjc").await;
    let m = sim
        .create_machine(
            "keep",
            json!({"region": "sjc", "config": {"image": "nginx",
                "mounts": [{"volume": vid, "path": "/d"}]}}),
        )
        .await;
    let mid = id(&m);
    sim.wait_state("keep", &mid, "started").await;
    let before = sim.machine("keep", &mid).await;
    sim.handle.shutdown().await;
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(!text.contains("\"v\""), "secret values are never stored");
    let leftovers = std::fs::read_dir(state.parent().unwrap())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("tmp")
        })
        .count();
    assert_eq!(leftovers, 0);

    let sim = start_with(cfg).await;
    let after = sim.machine("keep", &mid).await;
    assert_eq!(after["instance_id"], before["instance_id"]);
    assert_eq!(after["state"], "started");
    assert_eq!(after["config"], before["config"]);
    let vols = sim.get("/v1/apps/keep/volumes").await.body;
    assert_eq!(vols[0]["attached_machine_id"], mid.as_str());
    let secrets = sim.get("/v1/apps/keep/secrets").await.body;
    assert_eq!(secrets["secrets"][0]["name"], "K");
    // New ids do not collide with reloaded ones.
    let m2 = sim.create_machine("keep", machine_body("nginx")).await;
    assert_ne!(id(&m2), mid);
    sim.handle.shutdown().await;
}

/// A destroy still under way when the state is saved completes after a restart, and
/// the app's Machine count follows without any Machine being read.
#[tokio::test]
async fn a_pending_destroy_completes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SimConfig {
        state_file: Some(dir.path().join("sim.json")),
        // 100 s / 100: the destroy takes 1 s of real time.
        destroy_delay: Duration::from_secs(100),
        ..fast_config()
    };
    let sim = start_with(cfg.clone()).await;
    sim.create_app("going").await;
    let m = sim
        .create_machine(
            "going",
            json!({"region": "sjc", "skip_launch": true, "config": {"image": "nginx"}}),
        )
        .await;
    let r = sim
        .delete(&format!("/v1/apps/going/machines/{}", id(&m)))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    sim.handle.shutdown().await;

    let sim = start_with(cfg).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let app = sim.get("/v1/apps/going").await.body;
    assert_eq!(app["machine_count"], 0, "{app}");
    assert_eq!(app["status"], "pending");
    sim.handle.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_state_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    std::fs::write(&state, "{ not json").unwrap();
    let cfg = SimConfig {
        state_file: Some(state.clone()),
        ..fast_config()
    };
    let err = start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .err()
        .expect("must fail");
    assert!(matches!(err, SimError::State { .. }), "{err}");
    assert!(err.to_string().contains("sim.json"));
    // The file is left as it was.
    assert_eq!(std::fs::read_to_string(&state).unwrap(), "{ not json");
}

#[tokio::test]
async fn request_log_has_one_line_per_request_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let sim = start_with(SimConfig {
        request_log: Some(log.clone()),
        token: "s3cr3t-token".into(),
        ..fast_config()
    })
    .await;
    let client = &sim.client;
    let url = |p: &str| format!("{}{p}", sim.base);
    client
        .post(url("/v1/apps"))
        .bearer_auth("s3cr3t-token")
        .json(&json!({"app_name": "logged", "org_slug": "personal"}))
        .send()
        .await
        .unwrap();
    client
        .post(url("/v1/apps/logged/secrets/DB"))
        .bearer_auth("s3cr3t-token")
        .json(&json!({"value": "p4ssw0rd-value"}))
        .send()
        .await
        .unwrap();
    client
        .get(url("/v1/apps?org_slug=personal"))
        .bearer_auth("s3cr3t-token")
        .send()
        .await
        .unwrap();
    client.get(url("/v1/apps/logged")).send().await.unwrap();
    sim.handle.control().set_faults("500=1".parse().unwrap());
    client
        .get(url("/v1/apps/logged"))
        .bearer_auth("s3cr3t-token")
        .send()
        .await
        .unwrap();
    // Control requests are not logged.
    client
        .get(url("/__sim/counters"))
        .bearer_auth("s3cr3t-token")
        .send()
        .await
        .unwrap();
    sim.handle.shutdown().await;

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("s3cr3t-token"));
    assert!(!text.contains("p4ssw0rd-value"));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for l in &lines {
        for key in [
            "time",
            "method",
            "path",
            "status",
            "latency_ms",
            "fault",
            "mutating",
        ] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
        assert!(chrono::DateTime::parse_from_rfc3339(l["time"].as_str().unwrap()).is_ok());
    }
    assert_eq!(lines[0]["method"], "POST");
    assert_eq!(lines[0]["status"], 201);
    assert_eq!(lines[0]["mutating"], true);
    assert_eq!(lines[0]["fault"], Value::Null);
    assert_eq!(lines[2]["path"], "/v1/apps?org_slug=personal");
    assert_eq!(lines[2]["mutating"], false);
    assert_eq!(lines[3]["status"], 401);
    assert_eq!(lines[4]["status"], 500);
    assert_eq!(lines[4]["fault"], "500");
}

#[test]
fn start_blocking_runs_outside_async_code() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    let sim = start_blocking(
        SimConfig {
            state_file: Some(state.clone()),
            ..fast_config()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = sim.base_url();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{base}/v1/apps"))
            .bearer_auth(TOKEN)
            .json(&json!({"app_name": "blocking", "org_slug": "personal"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    });
    assert_eq!(sim.control().counters().requests, 1);
    sim.shutdown();
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("blocking")
    );
    // Dropping a handle also stops it.
    let again = start_blocking(fast_config(), "127.0.0.1:0".parse().unwrap()).unwrap();
    drop(again);
    // A bad configuration is an error, not a panic.
    let bad = start_blocking(
        SimConfig {
            time_scale: 0.0,
            ..fast_config()
        },
        "127.0.0.1:0".parse().unwrap(),
    );
    assert!(matches!(bad, Err(SimError::Config(_))));
}

fn binary() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("flotilla")
}

/// A running `flotilla sim serve`; killed and reaped on drop, so a test that fails
/// early leaves no server behind.
struct Served {
    child: std::process::Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        // Both fail harmlessly when the process has already exited and been reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `flotilla sim serve` on an ephemeral port; returns the server and base URL.
/// Its stderr goes to the test's, where a failure shows.
fn serve(args: &[&str]) -> (Served, String) {
    let mut served = Served {
        child: Command::new(binary())
            .args(["sim", "serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    };
    let stdout = served.child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("flotilla sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (served, url)
}

fn interrupt_and_wait(mut served: Served) -> std::process::ExitStatus {
    let child = &mut served.child;
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            panic!("flotilla sim serve did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn the_binary_serves_persists_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    let state_arg = state.to_str().unwrap();
    let (server, url) = serve(&["--state", state_arg, "--time-scale", "100"]);
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{url}/v1/apps?org_slug=personal"))
        .bearer_auth("test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"total_apps": 0, "apps": []})
    );
    let r = client
        .post(format!("{url}/v1/apps"))
        .bearer_auth("test")
        .json(&json!({"app_name": "from-cli", "org_slug": "personal"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(interrupt_and_wait(server).success());

    // A second invocation sees the same org.
    let (server, url) = serve(&["--state", state_arg]);
    let r: Value = client
        .get(format!("{url}/v1/apps?org_slug=personal"))
        .bearer_auth("test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        r["apps"][0]["name"],
        "from-cli",
        "state file: {:?}",
        std::fs::read_to_string(&state)
    );
    assert!(interrupt_and_wait(server).success());
}

#[test]
fn the_binary_rejects_bad_faults_and_corrupt_state() {
    let out = Command::new(binary())
        .args(["sim", "serve", "--addr", "127.0.0.1:0", "--faults", "500=2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--faults") && err.contains("between 0 and 1"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    std::fs::write(&state, "garbage").unwrap();
    let out = Command::new(binary())
        .args(["sim", "serve", "--addr", "127.0.0.1:0", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sim.json") && err.contains("not valid JSON"),
        "{err}"
    );
    assert!(!err.contains("panicked"));

    let out = Command::new(binary())
        .args(["sim", "serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Examples:") && help.contains("lost_response"));
}
