//! A spec in a temporary directory and a simulator on loopback (time scale 50, no rate
//! limits), driven through the library: plan, apply, and the simulator's API and control
//! endpoints. Shared by the tests of data operations (restore, region moves).
#![allow(dead_code)]
// Test helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use flotilla::ops;
use flotilla::ops::target::TargetOptions;
use flotilla::sim::{BlockingSimHandle, SimConfig, start_blocking};
use serde_json::{Value, json};

/// The simulator's time scale (API seconds per real second).
pub const TIME_SCALE: f64 = 50.0;

pub struct SimOrg {
    _dir: tempfile::TempDir,
    pub spec: PathBuf,
    pub sim: BlockingSimHandle,
    pub token: String,
    rt: tokio::runtime::Runtime,
}

impl SimOrg {
    /// `text` written as `fleet.yaml`, and a simulator whose token is `NAME-test`.
    pub fn start(text: &str, name: &str) -> SimOrg {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("fleet.yaml");
        std::fs::write(&spec, text).unwrap();
        let token = [name, "-", "test"].concat();
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
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        SimOrg {
            _dir: dir,
            spec,
            sim,
            token,
            rt,
        }
    }

    pub fn target(&self) -> TargetOptions {
        TargetOptions {
            api: Some(self.sim.base_url()),
            api_token: Some(self.token.clone()),
            time_scale: TIME_SCALE,
            ..TargetOptions::default()
        }
    }

    /// One request to the simulator; it must succeed.
    pub fn http(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.sim.base_url());
        self.rt.block_on(async {
            let mut req = reqwest::Client::new()
                .request(method, url)
                .bearer_auth(&self.token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            r.json().await.unwrap_or(Value::Null)
        })
    }

    /// The simulator's volume view of the app: id, region, attachment, origin, content.
    pub fn volumes(&self, app: &str) -> Vec<Value> {
        let v = self.http(
            reqwest::Method::GET,
            &format!("/__sim/apps/{app}/volumes"),
            None,
        );
        v["volumes"].as_array().cloned().unwrap_or_default()
    }

    pub fn machines(&self, app: &str) -> Vec<Value> {
        self.http(
            reqwest::Method::GET,
            &format!("/v1/apps/{app}/machines"),
            None,
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    /// Tags a volume's data (snapshots, restores and forks copy the tag).
    pub fn set_content(&self, app: &str, vol: &str, tag: &str) {
        self.http(
            reqwest::Method::PUT,
            &format!("/__sim/apps/{app}/volumes/{vol}/content"),
            Some(json!({ "content": tag })),
        );
    }

    pub fn write_spec(&self, text: &str) {
        std::fs::write(&self.spec, text).unwrap();
    }

    /// The plan of the spec against the simulator; it must have no errors.
    pub fn plan(&self) -> ops::plan::Outcome {
        let out = ops::plan::run(&ops::plan::Options {
            spec: self.spec.clone(),
            target: self.target(),
            ..Default::default()
        })
        .unwrap();
        assert!(!out.has_errors(), "{}", out.diagnostics);
        out
    }

    /// Applies the spec; the report's summary and diagnostics are the caller's to check.
    pub fn apply_report(&self) -> ops::apply::Report {
        let prepared = ops::apply::prepare(&ops::apply::Options {
            input: self.spec.clone(),
            target: self.target(),
            quiet: true,
            ..Default::default()
        })
        .unwrap();
        prepared.execute().unwrap()
    }

    pub fn apply(&self) -> flotilla::apply::Summary {
        self.apply_report().summary
    }
}
