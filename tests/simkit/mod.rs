//! Shared helpers for the simulator integration tests: an in-process simulator on an
//! ephemeral 127.0.0.1 port and a small JSON client.
#![allow(dead_code)]

pub mod record;

use std::time::Duration;

use flotilla::sim::{SimConfig, SimHandle, start};
use reqwest::Method;
use serde_json::{Value, json};

pub const TOKEN: &str = "test";

pub struct TestSim {
    pub handle: SimHandle,
    pub client: reqwest::Client,
    pub base: String,
}

/// Fast defaults: time scaled by 100, rate limits off.
pub fn fast_config() -> SimConfig {
    SimConfig {
        time_scale: 100.0,
        rate_limits: false,
        seed: 42,
        ..SimConfig::default()
    }
}

/// [`fast_config`] with another time scale.
pub fn scaled(time_scale: f64) -> SimConfig {
    SimConfig {
        time_scale,
        ..fast_config()
    }
}

/// A simulator at the given time scale with faults injected from the start.
pub async fn start_with_faults(time_scale: f64, spec: &str) -> TestSim {
    let mut cfg = scaled(time_scale);
    cfg.faults = spec.parse().unwrap();
    start_with(cfg).await
}

/// A fast simulator that already has one app.
pub async fn start_with_app(app: &str) -> TestSim {
    let sim = start_sim().await;
    sim.create_app(app).await;
    sim
}

pub async fn start_sim() -> TestSim {
    start_with(fast_config()).await
}

pub async fn start_with(cfg: SimConfig) -> TestSim {
    let handle = start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = handle.base_url();
    TestSim {
        handle,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        base,
    }
}

/// The answer has `status` and Fly's error shape, its message containing `needle`.
pub fn assert_error(r: &Resp, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    let msg = r.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {:?}", r.body));
    assert!(msg.contains(needle), "{msg:?} does not say {needle:?}");
}

pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl TestSim {
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(TOKEN);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, &[]).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body), &[]).await
    }
    pub async fn post_empty(&self, path: &str) -> Resp {
        self.send(Method::POST, path, None, &[]).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body), &[]).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None, &[]).await
    }

    pub async fn create_app(&self, name: &str) {
        let r = self
            .post(
                "/v1/apps",
                json!({"app_name": name, "org_slug": "personal"}),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }

    /// Creates a Machine and returns its JSON.
    pub async fn create_machine(&self, app: &str, body: Value) -> Value {
        let r = self.post(&format!("/v1/apps/{app}/machines"), body).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    pub async fn machine(&self, app: &str, id: &str) -> Value {
        let r = self.get(&format!("/v1/apps/{app}/machines/{id}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }

    /// Waits (through the API) for a state; panics on anything but 200. A wait for
    /// `stopped` names the current version, as Fly requires.
    pub async fn wait_state(&self, app: &str, id: &str, state: &str) {
        let mut path = format!("/v1/apps/{app}/machines/{id}/wait?state={state}&timeout=60");
        if state == "stopped" {
            let m = self.machine(app, id).await;
            path.push_str(&format!(
                "&instance_id={}",
                m["instance_id"].as_str().unwrap()
            ));
        }
        let r = self.get(&path).await;
        assert_eq!(r.status, 200, "waiting for {state}: {:?}", r.body);
    }

    pub async fn create_volume(&self, app: &str, name: &str, region: &str) -> String {
        let r = self
            .post(
                &format!("/v1/apps/{app}/volumes"),
                json!({"name": name, "region": region, "size_gb": 3}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// A simple Machine create body.
pub fn machine_body(image: &str) -> Value {
    json!({"region": "sjc", "config": {"image": image}})
}
