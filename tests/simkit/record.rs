//! A recorder of simulator traffic for the contract tests (`sim_schema` against Fly's
//! 2024 Swagger spec, `sim_openapi` against the newest OpenAPI document): every call
//! is kept with its request and response bodies, to be validated afterwards.

use reqwest::Method;
use serde_json::{Value, json};

use super::{TestSim, start_sim};

/// One request and its answer, the query dropped from the path.
pub struct Exchange {
    pub method: Method,
    pub path: String,
    pub request: Option<Value>,
    pub status: u16,
    pub response: Value,
}

/// A simulator and what was sent to it.
pub struct Recorder {
    pub sim: TestSim,
    pub log: Vec<Exchange>,
}

impl Recorder {
    pub async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Value {
        self.call_with(method, path, body, &[]).await
    }

    pub async fn call_with(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Value {
        let r = self
            .sim
            .send(method.clone(), path, body.clone(), headers)
            .await;
        assert!(r.status < 500, "{method} {path}: {:?}", r.body);
        self.log.push(Exchange {
            method,
            path: path.split('?').next().unwrap_or(path).to_string(),
            request: body,
            status: r.status,
            response: r.body.clone(),
        });
        r.body
    }
}

/// Whether a concrete path matches a document's path template, segment by segment
/// (`{placeholder}` matches any one segment).
pub fn segments_match(template: &[&str], path: &[&str]) -> bool {
    template.len() == path.len()
        && template
            .iter()
            .zip(path)
            .all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b)
}

impl Recorder {
    /// Waits (outside the record) until the Machine is in `state`.
    async fn settle(&self, mp: &str, state: &str) {
        for _ in 0..200 {
            if self.sim.get(mp).await.body["state"] == state {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("{mp} never reached {state}");
    }
}

async fn apps_and_platform(r: &mut Recorder) {
    r.call(
        Method::POST,
        "/v1/apps",
        Some(json!({"name": "openapi", "org_slug": "personal", "network": "n1"})),
    )
    .await;
    r.call(
        Method::POST,
        "/v1/apps",
        Some(json!({"app_name": "openapi-spare", "org_slug": "personal"})),
    )
    .await;
    // A 422 with Fly's error shape: the name is taken.
    r.call(
        Method::POST,
        "/v1/apps",
        Some(json!({"name": "openapi", "org_slug": "personal"})),
    )
    .await;
    r.call(Method::GET, "/v1/apps?org_slug=personal", None)
        .await;
    r.call(Method::GET, "/v1/apps", None).await;
    r.call(Method::GET, "/v1/apps/openapi", None).await;
    r.call(Method::GET, "/v1/platform/regions", None).await;
}

async fn volumes(r: &mut Recorder, app: &str) -> String {
    let vol = r
        .call(
            Method::POST,
            &format!("{app}/volumes"),
            Some(
                json!({"name": "data", "region": "sjc", "size_gb": 2, "encrypted": true,
                "snapshot_retention": 7, "require_unique_zone": true, "fstype": "ext4",
                "compute": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256}}),
            ),
        )
        .await;
    let vid = vol["id"].as_str().unwrap().to_string();
    let v = format!("{app}/volumes/{vid}");
    r.call(Method::GET, &format!("{app}/volumes"), None).await;
    r.call(Method::GET, &v, None).await;
    // The newest document updates a volume with PUT, the 2024 spec with POST; the
    // simulator takes both.
    for method in [Method::PUT, Method::POST] {
        r.call(
            method,
            &v,
            Some(json!({"snapshot_retention": 10, "auto_backup_enabled": true})),
        )
        .await;
    }
    r.call(
        Method::PUT,
        &format!("{v}/extend"),
        Some(json!({"size_gb": 4})),
    )
    .await;
    r.call(Method::POST, &format!("{v}/snapshots"), None).await;
    r.call(Method::GET, &format!("{v}/snapshots"), None).await;
    vid
}

fn machine_config(vid: &str) -> Value {
    json!({
        "image": "registry.fly.io/openapi:1",
        "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 512},
        "env": {"A": "1"},
        "metadata": {"tenant": "t1"},
        "services": [{"protocol": "tcp", "internal_port": 8080, "autostop": "suspend",
            "autostart": true, "min_machines_running": 0,
            "ports": [{"port": 443, "handlers": ["tls", "http"]}],
            "concurrency": {"type": "requests", "soft_limit": 20, "hard_limit": 25}}],
        "mounts": [{"volume": vid, "path": "/data"}],
        "checks": {"alive": {"type": "tcp", "port": 8080, "interval": "15s", "timeout": "2s"}},
        "restart": {"policy": "always"},
        "stop_config": {"signal": "SIGTERM", "timeout": "10s"},
        "init": {"cmd": ["serve"]},
        "auto_destroy": false
    })
}

/// Create, wait, lease, update and metadata; returns the Machine's path.
async fn machine_lifecycle(r: &mut Recorder, app: &str, vid: &str) -> String {
    let config = machine_config(vid);
    let m = r
        .call(
            Method::POST,
            &format!("{app}/machines"),
            Some(
                json!({"name": "openapi-1", "region": "sjc", "config": config,
                "lease_ttl": 30, "skip_service_registration": false}),
            ),
        )
        .await;
    let mid = m["id"].as_str().unwrap().to_string();
    let nonce = m["nonce"].as_str().unwrap().to_string();
    let mp = format!("{app}/machines/{mid}");
    r.call(Method::GET, &format!("{app}/machines?region=sjc"), None)
        .await;
    r.call(
        Method::GET,
        &format!("{mp}/wait?state=started&timeout=30"),
        None,
    )
    .await;
    r.call(Method::GET, &mp, None).await;
    r.call(Method::GET, &format!("{mp}/lease"), None).await;
    r.call_with(
        Method::POST,
        &format!("{mp}/lease"),
        Some(json!({"ttl": 60, "description": "openapi"})),
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    let mut updated = config.clone();
    updated["image"] = json!("registry.fly.io/openapi:2");
    r.call_with(
        Method::POST,
        &mp,
        Some(json!({"config": updated, "current_version": m["instance_id"].clone()})),
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    // A 400 with Fly's error shape: an update without a config.
    r.call_with(
        Method::POST,
        &mp,
        Some(json!({"region": "sjc"})),
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    r.call_with(
        Method::DELETE,
        &format!("{mp}/lease"),
        None,
        &[("fly-machine-lease-nonce", &nonce)],
    )
    .await;
    r.call(Method::GET, &format!("{mp}/wait?state=started"), None)
        .await;
    r.call(Method::GET, &format!("{mp}/metadata"), None).await;
    r.call(
        Method::POST,
        &format!("{mp}/metadata/role"),
        Some(json!({"value": "web"})),
    )
    .await;
    let role = r
        .call(Method::GET, &format!("{mp}/metadata/role"), None)
        .await;
    assert_eq!(role["value"], "web", "{role:?}");
    r.call(
        Method::PATCH,
        &format!("{mp}/metadata"),
        Some(json!({"metadata": {"tier": "gold", "role": ""}})),
    )
    .await;
    let md = r.call(Method::GET, &format!("{mp}/metadata"), None).await;
    assert_eq!(md, json!({"tenant": "t1", "tier": "gold"}));
    // A 412 with Fly's error shape: the Machine is no longer at that version.
    r.call(
        Method::PUT,
        &format!("{mp}/metadata"),
        Some(json!({"metadata": {"tier": ""}, "machine_version": m["instance_id"].clone()})),
    )
    .await;
    r.call(Method::DELETE, &format!("{mp}/metadata/tier"), None)
        .await;
    // A 404 with Fly's error shape: the key is gone.
    r.call(Method::GET, &format!("{mp}/metadata/tier"), None)
        .await;
    mp
}

/// exec, ps, versions, signal, stop, wait for stopped, start, suspend, events, destroy.
async fn machine_operations(r: &mut Recorder, app: &str, mp: &str) {
    r.call(Method::POST, &format!("{mp}/cordon"), None).await;
    r.call(Method::POST, &format!("{mp}/uncordon"), None).await;
    r.call(Method::POST, &format!("{mp}/restart"), None).await;
    r.call(Method::GET, &format!("{mp}/wait?state=started"), None)
        .await;
    let out = r
        .call(
            Method::POST,
            &format!("{mp}/exec"),
            Some(json!({"command": ["ls", "/"], "timeout": 5})),
        )
        .await;
    assert_eq!(out["exit_code"], 0, "{out:?}");
    let ps = r
        .call(Method::GET, &format!("{mp}/ps?sort_by=pid"), None)
        .await;
    assert!(ps.as_array().is_some_and(|p| !p.is_empty()), "{ps:?}");
    let versions = r.call(Method::GET, &format!("{mp}/versions"), None).await;
    assert!(
        versions.as_array().is_some_and(|v| v.len() >= 2),
        "{versions:?}"
    );
    r.call(
        Method::POST,
        &format!("{mp}/signal"),
        Some(json!({"signal": "SIGUSR1"})),
    )
    .await;
    r.call(
        Method::POST,
        &format!("{mp}/stop"),
        Some(json!({"signal": "SIGTERM", "timeout": "5s"})),
    )
    .await;
    let instance = r.call(Method::GET, mp, None).await["instance_id"]
        .as_str()
        .unwrap()
        .to_string();
    r.call(
        Method::GET,
        &format!("{mp}/wait?state=stopped&instance_id={instance}"),
        None,
    )
    .await;
    // A 400 with Fly's error shape: waiting for `stopped` without the version.
    r.call(Method::GET, &format!("{mp}/wait?state=stopped"), None)
        .await;
    r.call(Method::POST, &format!("{mp}/start"), None).await;
    r.settle(mp, "started").await;
    r.call(Method::POST, &format!("{mp}/suspend"), None).await;
    r.call(Method::GET, &format!("{mp}/wait?state=suspended"), None)
        .await;
    r.call(Method::GET, &format!("{mp}/events"), None).await;
    r.call(Method::DELETE, &format!("{mp}?force=true"), None)
        .await;
    r.call(
        Method::GET,
        &format!("{app}/machines?include_deleted=true"),
        None,
    )
    .await;
}

async fn secrets_ips_certificates(r: &mut Recorder, app: &str) {
    r.call(
        Method::POST,
        &format!("{app}/secrets"),
        Some(json!({"values": {"API_KEY": "k1", "OTHER": "o1"}})),
    )
    .await;
    r.call(Method::GET, &format!("{app}/secrets"), None).await;
    r.call(
        Method::POST,
        &format!("{app}/secrets/SESSION"),
        Some(json!({"value": "s1"})),
    )
    .await;
    r.call(Method::GET, &format!("{app}/secrets/SESSION"), None)
        .await;
    r.call(Method::DELETE, &format!("{app}/secrets/SESSION"), None)
        .await;

    let ip = r
        .call(
            Method::POST,
            &format!("{app}/ip_assignments"),
            Some(json!({"type": "v6"})),
        )
        .await;
    r.call(
        Method::POST,
        &format!("{app}/ip_assignments"),
        Some(json!({"type": "shared_v4"})),
    )
    .await;
    r.call(Method::GET, &format!("{app}/ip_assignments"), None)
        .await;
    let addr = ip["ip"].as_str().unwrap().to_string();
    r.call(
        Method::DELETE,
        &format!("{app}/ip_assignments/{addr}"),
        None,
    )
    .await;

    let host = "openapi.example.com";
    r.call(
        Method::POST,
        &format!("{app}/certificates/acme"),
        Some(json!({"hostname": host})),
    )
    .await;
    r.call(Method::GET, &format!("{app}/certificates"), None)
        .await;
    r.call(Method::GET, &format!("{app}/certificates/{host}"), None)
        .await;
    r.call(
        Method::POST,
        &format!("{app}/certificates/{host}/check"),
        None,
    )
    .await;
    r.call(Method::DELETE, &format!("{app}/certificates/{host}"), None)
        .await;
}

async fn teardown(r: &mut Recorder, app: &str, vid: &str) {
    r.settle_volume_detached(app, vid).await;
    r.call(Method::DELETE, &format!("{app}/volumes/{vid}"), None)
        .await;
    r.call(Method::DELETE, &format!("{app}?force=true"), None)
        .await;
    r.call(Method::DELETE, "/v1/apps/openapi-spare", None).await;
}

impl Recorder {
    /// Waits (outside the record) until the volume's attachment cleared.
    async fn settle_volume_detached(&self, app: &str, vid: &str) {
        for _ in 0..200 {
            let v = self.sim.get(&format!("{app}/volumes/{vid}")).await.body;
            if v["attached_machine_id"].is_null() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("volume {vid} stayed attached");
    }
}

/// One session through every operation the simulator serves: apps and the platform's
/// regions, volumes and snapshots, a Machine's life (create, wait, lease, update,
/// metadata, stop, suspend, start, restart, cordon, exec, ps, signal, versions, events),
/// secrets, IP assignments and certificates, and the teardown. Returns every exchange.
pub async fn session() -> Vec<Exchange> {
    let mut r = Recorder {
        sim: start_sim().await,
        log: Vec::new(),
    };
    let app = "/v1/apps/openapi";
    apps_and_platform(&mut r).await;
    let vid = volumes(&mut r, app).await;
    let mp = machine_lifecycle(&mut r, app, &vid).await;
    machine_operations(&mut r, app, &mp).await;
    secrets_ips_certificates(&mut r, app).await;
    teardown(&mut r, app, &vid).await;
    r.sim.handle.shutdown().await;
    r.log
}
