//! Harness for the reconcile tests: an in-process simulator on an ephemeral loopback
//! port (its own runtime thread), a scratch working directory holding copies of the
//! specs and their secret files, and the real `flotilla` binary pointed at the simulator.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use flotilla::sim::{BlockingSimHandle, Counters, FaultConfig, SimConfig, start_blocking};
use serde_json::Value;

pub const TOKEN: &str = "test-token-for-reconcile";
pub const ANTHROPIC: &str = "fake-anthropic-key-for-tests-0001";
pub const OPENAI: &str = "fake-openai-key-for-tests-0002";
pub const JWT: &str = "fake-jwt-secret-for-tests-0003";

pub struct Org {
    pub sim: BlockingSimHandle,
    pub dir: tempfile::TempDir,
    pub scale: f64,
    pub log: PathBuf,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    pub env: Vec<(String, String)>,
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Org {
    /// A simulator with Fly's rate limits on, its clock `scale` times faster.
    pub fn new(scale: f64) -> Org {
        Org::with(scale, |_| {})
    }

    pub fn with(scale: f64, tweak: impl FnOnce(&mut SimConfig)) -> Org {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let mut cfg = SimConfig {
            token: TOKEN.into(),
            time_scale: scale,
            seed: 7,
            rate_limits: true,
            request_log: Some(log.clone()),
            ..SimConfig::default()
        };
        tweak(&mut cfg);
        let sim = start_blocking(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
        std::fs::create_dir_all(dir.path().join("specs")).unwrap();
        std::fs::create_dir_all(dir.path().join("specs/secrets")).unwrap();
        for f in ["jarvis.yaml", "workspaces.yaml", "hybrid.yaml"] {
            std::fs::copy(
                root().join("specs").join(f),
                dir.path().join("specs").join(f),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("specs/secrets/jwt.txt"), format!("{JWT}\n")).unwrap();
        let env = [
            ("ANTHROPIC_API_KEY", ANTHROPIC),
            ("OPENAI_API_KEY", OPENAI),
            ("SESSION_SECRET", "fake-session-secret-0004"),
            ("SESSION_TOKEN_KEY", "fake-session-token-key-0005"),
            ("JWT_SECRET", "fake-jwt-env-0006"),
            ("DATABASE_URL", "postgres://fake:fake@db.internal/fake"),
            ("REDIS_URL", "redis://fake.internal:6379"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Org {
            sim,
            dir,
            scale,
            log,
            rt,
            http: reqwest::Client::new(),
            env,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(p, text).unwrap();
    }

    /// `flotilla SUBCOMMAND ARGS --api URL --time-scale N` in the scratch directory.
    pub fn cmd(&self, sub: &str, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("flotilla"));
        c.current_dir(self.dir.path()).arg(sub).args(args).args([
            "--api",
            &self.sim.base_url(),
            "--time-scale",
            &self.scale.to_string(),
        ]);
        c.env("FLY_API_TOKEN", TOKEN)
            .env_remove("FLY_API_HOSTNAME")
            .env("NO_COLOR", "1");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, sub: &str, args: &[&str]) -> Output {
        let out = self.cmd(sub, args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        out
    }

    pub fn apply(&self, spec: &str, extra: &[&str]) -> Output {
        let mut args = vec![spec, "--yes"];
        args.extend_from_slice(extra);
        self.run("apply", &args)
    }

    /// Applies and insists on success.
    pub fn apply_ok(&self, spec: &str, extra: &[&str]) -> Output {
        let out = self.apply(spec, extra);
        assert!(
            out.status.success(),
            "apply {spec} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn plan_json(&self, spec: &str, extra: &[&str]) -> (Value, i32) {
        let mut args = vec![spec, "--format", "json", "--detailed-exitcode"];
        args.extend_from_slice(extra);
        let out = self.run("plan", &args);
        (
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
            out.status.code().unwrap_or(-1),
        )
    }

    pub fn counters(&self) -> Counters {
        self.sim.control().counters()
    }

    pub fn set_faults(&self, spec: &str) {
        self.sim
            .control()
            .set_faults(spec.parse::<FaultConfig>().unwrap());
    }

    /// A plain API call (not through flotilla's client).
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}/v1{path}", self.sim.base_url());
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.rt.block_on(async {
            for _ in 0..50 {
                let mut r = self.http.request(m.clone(), &url).bearer_auth(TOKEN);
                if let Some(b) = &body {
                    r = r.json(b);
                }
                let resp = r.send().await.unwrap();
                let status = resp.status().as_u16();
                if status == 429 {
                    // Wait as Fly asks (whole API seconds, run `scale` times faster), so
                    // the harness does not take the tokens of the run it watches.
                    let secs = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .unwrap_or(1.0)
                        .clamp(0.0, 60.0);
                    let wait = Duration::from_secs_f64(secs / self.scale.max(1.0));
                    tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
                    continue;
                }
                let text = resp.text().await.unwrap_or_default();
                return (status, serde_json::from_str(&text).unwrap_or(Value::Null));
            }
            panic!("{method} {path}: rate limited");
        })
    }

    pub fn machines(&self, app: &str) -> Vec<Value> {
        let (s, v) = self.api("GET", &format!("/apps/{app}/machines"), None);
        assert_eq!(s, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// The app's volumes but those deleted (Fly lists them as `pending_destroy` for a
    /// while; see [`Org::listed_volumes`]).
    pub fn volumes(&self, app: &str) -> Vec<Value> {
        self.listed_volumes(app)
            .into_iter()
            .filter(|v| !flotilla::wire::api::is_gone(v["state"].as_str().unwrap_or("")))
            .collect()
    }

    /// The app's volumes as the API lists them, deleted ones included.
    pub fn listed_volumes(&self, app: &str) -> Vec<Value> {
        let (s, v) = self.api("GET", &format!("/apps/{app}/volumes"), None);
        assert_eq!(s, 200, "{v}");
        v.as_array().cloned().unwrap_or_default()
    }

    /// The org's apps but the fleet locks' sentinel apps (`flotilla-lock-…`, see
    /// [`Org::all_apps`]).
    pub fn apps(&self, org: &str) -> Vec<String> {
        self.all_apps(org)
            .into_iter()
            .filter(|a| !a.starts_with("flotilla-lock-"))
            .collect()
    }

    /// Every app of the org.
    pub fn all_apps(&self, org: &str) -> Vec<String> {
        let (_, v) = self.api("GET", &format!("/apps?org_slug={org}"), None);
        v["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Request log lines (JSON objects).
    pub fn requests(&self) -> Vec<Value> {
        self.sim.control().flush_log();
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Every file under the scratch directory, concatenated (journals, plans …).
    pub fn all_files_text(&self) -> String {
        self.sim.control().flush_log();
        fn walk(p: &Path, out: &mut String) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p, out);
                    } else if p.file_name().is_some_and(|n| n != "jwt.txt")
                        && !p.to_string_lossy().contains("/specs/")
                    {
                        out.push_str(&String::from_utf8_lossy(
                            &std::fs::read(&p).unwrap_or_default(),
                        ));
                    }
                }
            }
        }
        let mut s = String::new();
        walk(self.dir.path(), &mut s);
        s
    }
}

/// The addresses of a JSON plan's actionable changes (not `noop`), in plan order.
pub fn changed_addresses(plan: &Value) -> Vec<&str> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "noop")
        .map(|c| c["address"].as_str().unwrap())
        .collect()
}

pub fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
