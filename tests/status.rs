//! `flotilla status` against the simulator over loopback: a fleet is applied, one
//! Machine is stopped, one tenant runs another image and one is added to the spec; the
//! text and JSON renderings (insta snapshots) show per tenant the states, regions,
//! images, checks, last change and drift, and the fleet's summary line.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use flotilla::ops;
use flotilla::ops::target::TargetOptions;
use flotilla::sim::{BlockingSimHandle, SimConfig, start_blocking};
use serde_json::Value;

const SPEC: &str = "\
version: 1
org: status-ops
defaults:
  image: registry.fly.io/status-ops:1.0.0
  region: ams
  size: shared-cpu-1x
  memory: 256mb
  checks:
    alive: { type: http, port: 8080, path: /health, interval: 15s, timeout: 5s }
tenants:
  - name: alice
  - name: bob
    region: fra
  - name: carol
    image: registry.fly.io/status-ops:1.1.0
";

const TIME_SCALE: f64 = 50.0;

struct Fixture {
    _dir: tempfile::TempDir,
    spec: PathBuf,
    sim: BlockingSimHandle,
    token: String,
}

impl Fixture {
    fn target(&self) -> TargetOptions {
        TargetOptions {
            api: Some(self.sim.base_url()),
            api_token: Some(self.token.clone()),
            time_scale: TIME_SCALE,
            ..TargetOptions::default()
        }
    }

    /// `flotilla status SPEC --api SIM ARGS…`: (exit code, stdout, stderr).
    fn status(&self, args: &[&str]) -> (i32, String, String) {
        let out = common::plain_bin()
            .env("FLY_API_TOKEN", &self.token)
            .env_remove("FLY_API_HOSTNAME")
            .arg("status")
            .arg(&self.spec)
            .args(["--api", &self.sim.base_url(), "--time-scale", "50"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

/// Sends one request to the simulator's Machines API.
fn sim_request(f: &Fixture, method: reqwest::Method, path: &str) -> Value {
    let url = format!("{}{path}", f.sim.base_url());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .request(method, url)
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    })
}

/// The fleet applied, bob's Machine stopped, and dave added to the spec (not applied).
fn fleet() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let token = ["status", "-", "test"].concat();
    let sim = start_blocking(
        SimConfig {
            token: token.clone(),
            time_scale: TIME_SCALE,
            rate_limits: false,
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let f = Fixture {
        _dir: dir,
        spec,
        sim,
        token,
    };
    let prepared = ops::apply::prepare(&ops::apply::Options {
        input: f.spec.clone(),
        target: f.target(),
        quiet: true,
        ..Default::default()
    })
    .unwrap();
    let report = prepared.execute().unwrap();
    assert!(report.ok(), "{}", report.summary.text());
    let app = "/v1/apps/status-ops-bob/machines";
    let machines = sim_request(&f, reqwest::Method::GET, app);
    let id = machines[0]["id"].as_str().unwrap().to_string();
    // Fly answers a wait for `stopped` only with the version expected to stop.
    let version = machines[0]["instance_id"].as_str().unwrap().to_string();
    sim_request(&f, reqwest::Method::POST, &format!("{app}/{id}/stop"));
    sim_request(
        &f,
        reqwest::Method::GET,
        &format!("{app}/{id}/wait?state=stopped&instance_id={version}&timeout=60"),
    );
    std::fs::write(&f.spec, format!("{SPEC}  - name: dave\n")).unwrap();
    f
}

fn redacted(f: impl FnOnce()) {
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[time]"),
        (r"api:http://127\.0\.0\.1:\d+", "api:[sim]"),
        (r#""id": "[0-9a-z]+""#, r#""id": "[id]""#),
    ]}, { f() });
}

#[test]
fn status_shows_states_versions_checks_and_drift() {
    let f = fleet();
    let (code, text, stderr) = f.status(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.contains(
            "4 tenants, 3 Machines: 2 started, 1 stopped, 0 suspended, 0 failed; \
             versions: status-ops:1.0.0 ×2, status-ops:1.1.0 ×1; drift:"
        ),
        "{text}"
    );
    redacted(|| insta::assert_snapshot!("status_text", text));

    let (code, json, stderr) = f.status(&["--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&json).unwrap();
    let groups = v["groups"].as_array().unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob", "carol", "dave"]);
    assert_eq!(groups[0]["drift"], 0);
    assert!(
        groups[3]["drift"].as_u64().unwrap() > 0,
        "dave is to be created"
    );
    assert_eq!(groups[1]["machines"][0]["state"], "stopped");
    assert_eq!(groups[1]["machines"][0]["region"], "fra");
    assert_eq!(groups[2]["machines"][0]["version"], "1.1.0");
    assert!(groups[0]["machines"][0]["updated_at"].is_string());
    assert_eq!(v["summary"]["stopped"], 1);
    redacted(|| insta::assert_snapshot!("status_json", json));
}

#[test]
fn status_of_some_tenants_and_watch_bounded() {
    let f = fleet();
    let (code, text, stderr) = f.status(&["--tenant", "bob", "--tenant", "dave"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("tenant bob: 1 Machine, no drift"), "{text}");
    assert!(text.contains("tenant dave: no Machines, drift:"), "{text}");
    assert!(!text.contains("tenant alice"), "{text}");
    assert!(
        text.contains("2 tenants, 1 Machine: 0 started, 1 stopped"),
        "{text}"
    );

    let (code, _, stderr) = f.status(&["--tenant", "zed"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--tenant zed: no such tenant"), "{stderr}");

    let (code, text, stderr) =
        f.status(&["--tenant", "alice", "--watch", "1", "--watch-count", "2"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        text.matches("Fleet default (org status-ops)").count(),
        2,
        "{text}"
    );
}

#[test]
fn the_last_apply_comes_from_flotillas_metadata_and_plans_ignore_it() {
    let f = fleet();
    // bob's Machine was stopped after the apply: Fly's updated_at moved on, the apply
    // time flotilla recorded did not.
    let app = "/v1/apps/status-ops-bob/machines";
    let machine = sim_request(&f, reqwest::Method::GET, app)[0].clone();
    let recorded = machine["config"]["metadata"]["flotilla_applied_at"]
        .as_str()
        .expect("apply records its time in the config")
        .to_string();
    assert!(
        chrono::DateTime::parse_from_rfc3339(&recorded).is_ok(),
        "{recorded}"
    );
    let (code, json, stderr) = f.status(&["--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&json).unwrap();
    let bob = &v["groups"][1]["machines"][0];
    assert_eq!(bob["applied_at"], recorded.as_str());
    let (_, text, _) = f.status(&["--tenant", "bob"]);
    assert!(
        text.contains(&format!("applied {recorded}")),
        "the text shows the apply time: {text}"
    );
    assert!(!text.contains("no apply recorded"), "{text}");

    // Planning the applied spec again changes nothing: the record is not compared.
    std::fs::write(&f.spec, SPEC).unwrap();
    let planned = ops::plan::run(&ops::plan::Options {
        spec: f.spec.clone(),
        target: f.target(),
        ..Default::default()
    })
    .unwrap();
    assert!(!planned.has_changes(), "{:?}", planned.document.changes);
    let doc = serde_json::to_string(&planned.document).unwrap();
    assert!(!doc.contains("flotilla_applied_at"), "{doc}");
}
