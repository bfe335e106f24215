//! The Fly Machines API client (reqwest with rustls, on tokio).
//!
//! - Base URL from `--api`, `FLY_API_HOSTNAME` or `https://api.machines.dev`; token from
//!   `FLY_API_TOKEN`. The token is only ever placed in a header marked sensitive; it is
//!   never printed, logged or part of an error.
//! - Every request first takes a token from the client-side [`Limiter`].
//! - Retries with exponential backoff and full jitter: 429 (honouring `Retry-After`),
//!   5xx, timeouts and connection errors — except that a non-idempotent write (a create)
//!   whose outcome is unknown (5xx, timeout, dropped connection) is never repeated: it
//!   returns [`ApiError::Unknown`] and the caller re-reads and decides.
//! - An API that cannot be reached (connection refused, DNS failure, connect timeout)
//!   is reported within seconds: connecting times out after [`CONNECT_TIMEOUT`] and is
//!   retried [`CONNECT_RETRIES`] times with short backoff, then the call fails with one
//!   error naming the API's URL and the attempts. 429 and 5xx answers from an API that
//!   is reachable keep the longer retry budget (`max_retries`).
//! - Failed calls carry method, path, status and body.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::Rng;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::fly::ratelimit::{Act, Limiter};
use crate::secrets::SecretValue;
use crate::wire::api as fly;

pub const DEFAULT_API: &str = "https://api.machines.dev";
/// How long establishing a connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// Attempts after the first when the API cannot be connected to at all.
pub const CONNECT_RETRIES: u32 = 2;
pub const LEASE_HEADER: &str = "fly-machine-lease-nonce";
/// The longest lease Fly grants (seconds).
const MAX_LEASE_SECS: u64 = 3600;
/// The shortest real time a lease lasts (see [`Client::lease_ttl`]).
const MIN_LEASE_REAL_SECS: f64 = 5.0;

/// An API token: never displayed.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(t: String) -> Token {
        Token(t)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://api.machines.dev` or a simulator's `http://127.0.0.1:PORT`.
    pub base_url: String,
    pub token: Token,
    /// Divides backoff delays and rate-limit windows (a time-scaled simulator only).
    pub time_scale: f64,
    /// Mirror Fly's rate limits on the client.
    pub rate_limits: bool,
    /// Timeout of one request (waits get their own).
    pub request_timeout: Duration,
    /// Attempts after the first for retryable failures.
    pub max_retries: u32,
    /// Log every request (method, path, status, time) to stderr; never the token.
    pub debug: bool,
}

impl ClientConfig {
    pub fn new(base_url: &str, token: Token) -> ClientConfig {
        ClientConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            token,
            time_scale: 1.0,
            rate_limits: true,
            request_timeout: Duration::from_secs(30),
            // With backoff capped at 5 s this rides out about a minute of failures: a
            // read or a repeatable write whose answers keep getting lost still lands.
            max_retries: 16,
            debug: false,
        }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// The API answered with an error status.
    Status {
        method: String,
        path: String,
        status: u16,
        body: String,
    },
    /// A write may or may not have taken effect (timeout, dropped connection, 5xx on a
    /// create): re-read before deciding.
    Unknown {
        method: String,
        path: String,
        cause: String,
    },
    /// The request never got an answer after all retries (nothing is known to have
    /// changed), or a response could not be read.
    Transport {
        method: String,
        path: String,
        cause: String,
    },
}

impl ApiError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether (and how) Fly had no room for this create: see
    /// [`crate::fly::errors::CapacityError`].
    pub fn capacity(&self) -> Option<crate::fly::errors::CapacityError> {
        crate::fly::errors::CapacityError::of(self)
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, ApiError::Unknown { .. })
    }

    /// An app create refused because the name exists (Fly answers 422
    /// `{"error":"Name has already been taken"}`; the simulator adds `"status":"name_taken"`).
    pub fn is_name_taken(&self) -> bool {
        matches!(self, ApiError::Status { status: 422, body, .. }
            if body.contains("name_taken") || body.to_ascii_lowercase().contains("already been taken"))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Status {
                method,
                path,
                status,
                body,
            } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                let body = if body.trim().is_empty() {
                    "(empty body)".to_string()
                } else {
                    truncate(body, 600)
                };
                write!(f, "{method} {path} → {status} {reason}: {body}")
            }
            ApiError::Unknown {
                method,
                path,
                cause,
            } => write!(f, "{method} {path}: outcome unknown ({cause})"),
            ApiError::Transport {
                method,
                path,
                cause,
            } => write!(f, "{method} {path}: {cause}"),
        }
    }
}

impl std::error::Error for ApiError {}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.trim().to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", s[..end].trim(), s.len())
}

/// Request counters, shared by clones of a client.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub mutating: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
    pub unknown_outcomes: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub mutating: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub unknown_outcomes: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            mutating: self.mutating.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            unknown_outcomes: self.unknown_outcomes.load(Ordering::Relaxed),
        }
    }
}

/// `GET /secrets`: `{"secrets": [...]}` (current API) or a bare list (older one).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum SecretList {
    Wrapped { secrets: Vec<fly::Secret> },
    Bare(Vec<fly::Secret>),
}

/// `POST /secrets`: `{"secrets": [...], "version": N}`.
#[derive(serde::Deserialize)]
struct SecretsUpdated {
    #[serde(default)]
    secrets: Vec<fly::Secret>,
}

/// A lease on a Machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub nonce: String,
}

/// A lease as Fly describes it (`GET …/lease`, or the answer to taking one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseInfo {
    pub lease: Lease,
    /// Who took it, as Fly knows them (the token's user).
    pub owner: String,
    /// What the taker said it is for.
    pub description: String,
    /// When it runs out (Unix seconds; 0 when not given).
    pub expires_at: i64,
}

/// Reads `{"data": {nonce, owner, description, expires_at}}` (or the same flat).
fn lease_from(v: &Value) -> Option<LeaseInfo> {
    let d = v.get("data").unwrap_or(v);
    let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let nonce = d.get("nonce").and_then(Value::as_str)?.to_string();
    Some(LeaseInfo {
        lease: Lease { nonce },
        owner: text("owner"),
        description: text("description"),
        expires_at: d.get("expires_at").and_then(Value::as_i64).unwrap_or(0),
    })
}

/// The header that proves a request holds `lease` (none without one).
fn lease_headers(lease: Option<&Lease>) -> Vec<(&'static str, &str)> {
    lease
        .map(|l| (LEASE_HEADER, l.nonce.as_str()))
        .into_iter()
        .collect()
}

struct Inner {
    http: reqwest::Client,
    cfg: ClientConfig,
    auth: HeaderValue,
    limiter: Limiter,
    stats: Stats,
}

/// A Fly Machines API client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Whether a failed attempt may be repeated blindly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Reads, and writes whose repetition has the same effect.
    Safe,
    /// Creates: repeating after an unknown outcome could make a second resource.
    Once,
}

impl Client {
    pub fn new(cfg: ClientConfig) -> Result<Client, String> {
        // Macaroon tokens (`FlyV1 …`) carry their own scheme; others are bearer tokens.
        let scheme = if cfg.token.0.starts_with("FlyV1 ") {
            cfg.token.0.clone()
        } else {
            format!("Bearer {}", cfg.token.0)
        };
        let mut auth = HeaderValue::from_str(&scheme).map_err(|_| {
            "the API token contains characters that cannot be sent in a header".to_string()
        })?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("flotilla/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(cfg.request_timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let limiter = Limiter::new(cfg.time_scale, cfg.rate_limits);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                cfg,
                auth,
                limiter,
                stats: Stats::default(),
            }),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.inner.cfg.base_url
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// How much faster than real time the API's clock runs (1 except for a time-scaled
    /// simulator).
    pub fn time_scale(&self) -> f64 {
        let s = self.inner.cfg.time_scale;
        if s.is_finite() && s > 0.0 { s } else { 1.0 }
    }

    /// A lease TTL of at least `secs` API seconds that also lasts a few real seconds
    /// (against a time-scaled simulator a short TTL would run out between two renewals),
    /// within the hour Fly allows.
    pub fn lease_ttl(&self, secs: u64) -> u64 {
        let real_floor = (MIN_LEASE_REAL_SECS * self.time_scale()).ceil() as u64;
        secs.max(real_floor).clamp(1, MAX_LEASE_SECS)
    }

    /// Sleep `d` of API time (shortened by the time scale).
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d.div_f64(self.time_scale())).await;
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let cap = 5_000f64;
        let base = (100f64 * 2f64.powi(attempt.min(10) as i32)).min(cap);
        let ms = rand::rng().random_range(0.0..=base);
        Duration::from_secs_f64(ms / 1000.0 / self.time_scale())
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        method: Method,
        path: &str,
        act: Act,
        id: &str,
        body: Option<&Value>,
        headers: &[(&'static str, &str)],
        repeat: Repeat,
        timeout: Option<Duration>,
    ) -> Result<(u16, Vec<u8>), ApiError> {
        let inner = &self.inner;
        let url = format!("{}/v1{path}", inner.cfg.base_url);
        let mut tries = Tries {
            method: method.to_string(),
            path,
            act,
            id,
            repeat,
            attempt: 0,
            connect_failures: 0,
            first: std::time::Instant::now(),
        };
        loop {
            inner.limiter.acquire(act, id).await;
            self.count_request(act);
            let req = self.request(method.clone(), &url, body, headers, timeout);
            let started = std::time::Instant::now();
            let outcome = send(req, act).await;
            if inner.cfg.debug {
                debug_line(&tries, &outcome, started);
            }
            match self.next_step(&mut tries, outcome) {
                Next::Retry(wait) => tokio::time::sleep(wait).await,
                Next::Done(result) => return result,
            }
            tries.attempt += 1;
        }
    }

    /// Counts a repeat decided outside the request loop (e.g. a 404 right after a
    /// create).
    fn count_retry(&self) {
        self.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
    }

    fn count_request(&self, act: Act) {
        let stats = &self.inner.stats;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        if !act.is_read() {
            stats.mutating.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One attempt's request: the token, the extra (sensitive) headers, the timeout and
    /// the JSON body.
    fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&'static str, &str)],
        timeout: Option<Duration>,
    ) -> reqwest::RequestBuilder {
        let inner = &self.inner;
        let mut req = inner
            .http
            .request(method, url)
            .header(AUTHORIZATION, inner.auth.clone());
        if !headers.is_empty() {
            let mut hm = HeaderMap::new();
            for (k, v) in headers {
                if let Ok(mut hv) = HeaderValue::from_str(v) {
                    hv.set_sensitive(true);
                    hm.insert(*k, hv);
                }
            }
            req = req.headers(hm);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req
    }

    /// What an attempt's outcome means: a retry after some wait, or the call's result.
    fn next_step(&self, tries: &mut Tries<'_>, outcome: Outcome) -> Next {
        let stats = &self.inner.stats;
        let retries_left = tries.attempt < self.inner.cfg.max_retries;
        match outcome {
            Ok((429, _, retry_after)) if retries_left => {
                Next::Retry(self.after_rate_limit(tries, retry_after))
            }
            Ok((status @ 500..=599, text, _)) => {
                self.after_server_error(tries, status, &text, retries_left)
            }
            Ok((status, text, _)) if status >= 400 => {
                if status == 429 {
                    stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                }
                Next::Done(Err(tries.status_error(status, &text)))
            }
            Ok((status, text, _)) => Next::Done(Ok((status, text))),
            Err(e) => self.after_transport_error(tries, &e, retries_left),
        }
    }

    /// A 429 with retries left: the server's Retry-After (whole API seconds, which a
    /// time-scaled simulator runs faster) or a backoff, also applied to the client's
    /// bucket, plus some jitter.
    fn after_rate_limit(&self, tries: &Tries<'_>, retry_after: Option<f64>) -> Duration {
        let inner = &self.inner;
        inner.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        inner.stats.retries.fetch_add(1, Ordering::Relaxed);
        let wait = retry_after
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(86_400.0)).div_f64(self.time_scale()))
            .unwrap_or_else(|| self.backoff(tries.attempt));
        inner.limiter.penalize(tries.act, tries.id, wait);
        let jitter = self.backoff(0) / 4;
        wait + jitter
    }

    /// A 5xx: a create's outcome is unknown; anything else is retried while retries
    /// are left.
    fn after_server_error(
        &self,
        tries: &Tries<'_>,
        status: u16,
        text: &[u8],
        retries_left: bool,
    ) -> Next {
        let stats = &self.inner.stats;
        if tries.repeat == Repeat::Once {
            stats.unknown_outcomes.fetch_add(1, Ordering::Relaxed);
            return Next::Done(Err(ApiError::Unknown {
                method: tries.method.clone(),
                path: tries.path.to_string(),
                cause: format!(
                    "{status}: {}",
                    truncate(&String::from_utf8_lossy(text), 200)
                ),
            }));
        }
        if !retries_left {
            return Next::Done(Err(tries.status_error(status, text)));
        }
        stats.retries.fetch_add(1, Ordering::Relaxed);
        Next::Retry(self.backoff(tries.attempt))
    }

    /// A transport error. Refused connections never reached the server and are retried
    /// [`CONNECT_RETRIES`] times; anything else may have reached it, so a create's
    /// outcome is unknown.
    fn after_transport_error(
        &self,
        tries: &mut Tries<'_>,
        e: &reqwest::Error,
        retries_left: bool,
    ) -> Next {
        let inner = &self.inner;
        let transport = |cause: String| ApiError::Transport {
            method: tries.method.clone(),
            path: tries.path.to_string(),
            cause,
        };
        let sent = !e.is_connect();
        if sent && tries.repeat == Repeat::Once {
            inner.stats.unknown_outcomes.fetch_add(1, Ordering::Relaxed);
            return Next::Done(Err(ApiError::Unknown {
                method: tries.method.clone(),
                path: tries.path.to_string(),
                cause: describe(e),
            }));
        }
        if e.is_connect() {
            tries.connect_failures += 1;
            if tries.connect_failures > CONNECT_RETRIES {
                return Next::Done(Err(transport(format!(
                    "the API at {} is unreachable ({}; {} attempts in {:.1} s)",
                    inner.cfg.base_url,
                    describe(e),
                    tries.connect_failures,
                    tries.first.elapsed().as_secs_f64()
                ))));
            }
        }
        if !retries_left {
            return Next::Done(Err(transport(describe(e))));
        }
        inner.stats.retries.fetch_add(1, Ordering::Relaxed);
        Next::Retry(self.backoff(tries.attempt))
    }

    /// A GET (safe to repeat).
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        act: Act,
        id: &str,
    ) -> Result<T, ApiError> {
        self.json(Method::GET, path, act, id, None, &[], Repeat::Safe)
            .await
    }

    /// A GET whose 404 means "not there": `None`.
    async fn get_found<T: DeserializeOwned>(
        &self,
        path: &str,
        act: Act,
        id: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.get(path, act, id).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        act: Act,
        id: &str,
        body: Option<&Value>,
        headers: &[(&'static str, &str)],
        repeat: Repeat,
    ) -> Result<T, ApiError> {
        let m = method.to_string();
        let (_, text) = self
            .call(method, path, act, id, body, headers, repeat, None)
            .await?;
        serde_json::from_slice(&text).map_err(|e| ApiError::Transport {
            method: m,
            path: path.to_string(),
            cause: format!(
                "unexpected response ({e}): {}",
                truncate(&String::from_utf8_lossy(&text), 300)
            ),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn unit(
        &self,
        method: Method,
        path: &str,
        act: Act,
        id: &str,
        body: Option<&Value>,
        headers: &[(&'static str, &str)],
        repeat: Repeat,
    ) -> Result<(), ApiError> {
        self.call(method, path, act, id, body, headers, repeat, None)
            .await
            .map(|_| ())
    }

    /// A DELETE (safe to repeat) whose 404 means the thing is already gone: done.
    async fn delete(
        &self,
        path: &str,
        act: Act,
        id: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<(), ApiError> {
        match self
            .unit(Method::DELETE, path, act, id, None, headers, Repeat::Safe)
            .await
        {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    // ---- apps ----

    pub async fn list_apps(&self, org: &str) -> Result<Vec<fly::App>, ApiError> {
        let path = format!("/apps?org_slug={}", enc(org));
        let list: fly::AppList = self.get(&path, Act::AppList, org).await?;
        Ok(list.apps)
    }

    pub async fn get_app(&self, app: &str) -> Result<Option<fly::App>, ApiError> {
        let path = format!("/apps/{}", enc(app));
        self.get_found(&path, Act::AppGet, app).await
    }

    pub async fn create_app(&self, app: &str, org: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "app_name": app, "org_slug": org });
        self.unit(
            Method::POST,
            "/apps",
            Act::AppCreate,
            org,
            Some(&body),
            &[],
            Repeat::Once,
        )
        .await
    }

    /// Deletes an app (with its Machines and volumes); one already gone is done.
    pub async fn delete_app(&self, app: &str) -> Result<(), ApiError> {
        let path = format!("/apps/{}?force=true", enc(app));
        self.delete(&path, Act::AppDelete, "*", &[]).await
    }

    // ---- machines ----

    pub async fn list_machines(&self, app: &str) -> Result<Vec<fly::Machine>, ApiError> {
        let path = format!("/apps/{}/machines", enc(app));
        self.get(&path, Act::MachineList, app).await
    }

    /// Machines carrying all of these metadata pairs.
    pub async fn find_machines(
        &self,
        app: &str,
        metadata: &[(&str, &str)],
    ) -> Result<Vec<fly::Machine>, ApiError> {
        let q: Vec<String> = metadata
            .iter()
            .map(|(k, v)| format!("metadata.{}={}", enc(k), enc(v)))
            .collect();
        let path = format!("/apps/{}/machines?{}", enc(app), q.join("&"));
        self.get(&path, Act::MachineList, app).await
    }

    pub async fn get_machine(&self, app: &str, id: &str) -> Result<Option<fly::Machine>, ApiError> {
        let path = format!("/apps/{}/machines/{}", enc(app), enc(id));
        self.get_found(&path, Act::MachineGet, id).await
    }

    /// Creates a Machine. An unknown outcome is returned as such: find it by metadata.
    pub async fn create_machine(&self, app: &str, body: &Value) -> Result<fly::Machine, ApiError> {
        let path = format!("/apps/{}/machines", enc(app));
        self.json(
            Method::POST,
            &path,
            Act::MachineCreate,
            app,
            Some(body),
            &[],
            Repeat::Once,
        )
        .await
    }

    /// Replaces a Machine's config (restarting it), under a lease when given, and only
    /// while the Machine is at `current_version` (its `instance_id`) when given: Fly
    /// answers 412 otherwise. Not repeated after an unknown outcome (a repeat would find
    /// the Machine `replacing`, or at another version): re-read the Machine instead.
    pub async fn update_machine(
        &self,
        app: &str,
        id: &str,
        config: &fly::MachineConfig,
        lease: Option<&Lease>,
        current_version: Option<&str>,
    ) -> Result<fly::Machine, ApiError> {
        let body = serde_json::json!({ "config": config });
        self.post_update(app, id, body, lease, current_version)
            .await
    }

    /// Updates a stopped or suspended Machine's config without starting it
    /// (`skip_launch`): the new config takes effect at its next start. Versions and
    /// unknown outcomes as for [`Client::update_machine`].
    pub async fn update_machine_idle(
        &self,
        app: &str,
        id: &str,
        config: &fly::MachineConfig,
        lease: Option<&Lease>,
        current_version: Option<&str>,
    ) -> Result<fly::Machine, ApiError> {
        let body = serde_json::json!({ "config": config, "skip_launch": true });
        self.post_update(app, id, body, lease, current_version)
            .await
    }

    async fn post_update(
        &self,
        app: &str,
        id: &str,
        mut body: Value,
        lease: Option<&Lease>,
        current_version: Option<&str>,
    ) -> Result<fly::Machine, ApiError> {
        let path = format!("/apps/{}/machines/{}", enc(app), enc(id));
        if let Some(v) = current_version {
            body["current_version"] = Value::String(v.to_string());
        }
        self.json(
            Method::POST,
            &path,
            Act::MachineUpdate,
            id,
            Some(&body),
            &lease_headers(lease),
            Repeat::Once,
        )
        .await
    }

    pub async fn delete_machine(
        &self,
        app: &str,
        id: &str,
        lease: Option<&Lease>,
    ) -> Result<(), ApiError> {
        let path = format!("/apps/{}/machines/{}?force=true", enc(app), enc(id));
        self.delete(&path, Act::MachineDelete, id, &lease_headers(lease))
            .await
    }

    pub async fn start_machine(&self, app: &str, id: &str) -> Result<(), ApiError> {
        self.start(app, id, None).await
    }

    /// Starts a Machine held under `lease` (a leased Machine refuses a start without it).
    pub async fn start_machine_leased(
        &self,
        app: &str,
        id: &str,
        lease: &Lease,
    ) -> Result<(), ApiError> {
        self.start(app, id, Some(lease)).await
    }

    async fn start(&self, app: &str, id: &str, lease: Option<&Lease>) -> Result<(), ApiError> {
        let path = format!("/apps/{}/machines/{}/start", enc(app), enc(id));
        let headers = lease_headers(lease);
        self.unit(
            Method::POST,
            &path,
            Act::MachineStart,
            id,
            None,
            &headers,
            Repeat::Safe,
        )
        .await
    }

    /// Stops a Machine (under a lease when given); one already stopped stays so.
    pub async fn stop_machine(
        &self,
        app: &str,
        id: &str,
        lease: Option<&Lease>,
    ) -> Result<(), ApiError> {
        let path = format!("/apps/{}/machines/{}/stop", enc(app), enc(id));
        let headers = lease_headers(lease);
        self.unit(
            Method::POST,
            &path,
            Act::MachineStop,
            id,
            None,
            &headers,
            Repeat::Safe,
        )
        .await
    }

    /// Waits until the Machine is in `state` (API seconds, at most 60). `Ok(false)` on
    /// timeout.
    /// Fly requires the `instance_id` of the version expected to stop when `state` is
    /// `stopped`.
    pub async fn wait(
        &self,
        app: &str,
        id: &str,
        state: &str,
        instance_id: Option<&str>,
        timeout_secs: u64,
    ) -> Result<bool, ApiError> {
        let t = timeout_secs.clamp(1, 60);
        let mut path = format!(
            "/apps/{}/machines/{}/wait?state={state}&timeout={t}",
            enc(app),
            enc(id)
        );
        if let Some(instance) = instance_id.filter(|i| !i.is_empty()) {
            path.push_str(&format!("&instance_id={}", enc(instance)));
        }
        let http_timeout =
            Duration::from_secs(t).div_f64(self.time_scale()) + Duration::from_secs(10);
        match self
            .call(
                Method::GET,
                &path,
                Act::MachineWait,
                id,
                None,
                &[],
                Repeat::Safe,
                Some(http_timeout),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(408) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes a Machine's lease for `ttl_secs`, described by `description` (Fly shows it
    /// to whoever finds the Machine leased). Not repeated after an unknown outcome: read
    /// the lease ([`Client::get_lease`]) and recognise the description.
    pub async fn acquire_lease(
        &self,
        app: &str,
        id: &str,
        ttl_secs: u64,
        description: &str,
    ) -> Result<Lease, ApiError> {
        let path = format!("/apps/{}/machines/{}/lease", enc(app), enc(id));
        let body = serde_json::json!({ "ttl": ttl_secs, "description": description });
        let v: Value = self
            .json(
                Method::POST,
                &path,
                Act::LeaseCreate,
                id,
                Some(&body),
                &[],
                Repeat::Once,
            )
            .await?;
        lease_from(&v).map(|l| l.lease).ok_or(ApiError::Transport {
            method: "POST".into(),
            path,
            cause: "the lease response has no nonce".into(),
        })
    }

    /// Extends a lease this client holds by `ttl_secs` from now (repeatable: the same
    /// nonce refreshes the same lease).
    pub async fn renew_lease(
        &self,
        app: &str,
        id: &str,
        lease: &Lease,
        ttl_secs: u64,
    ) -> Result<(), ApiError> {
        let path = format!("/apps/{}/machines/{}/lease", enc(app), enc(id));
        let body = serde_json::json!({ "ttl": ttl_secs });
        self.unit(
            Method::POST,
            &path,
            Act::LeaseCreate,
            id,
            Some(&body),
            &lease_headers(Some(lease)),
            Repeat::Safe,
        )
        .await
    }

    /// The Machine's current lease, if it has one.
    pub async fn get_lease(&self, app: &str, id: &str) -> Result<Option<LeaseInfo>, ApiError> {
        let path = format!("/apps/{}/machines/{}/lease", enc(app), enc(id));
        let v: Option<Value> = self.get_found(&path, Act::LeaseGet, id).await?;
        Ok(v.as_ref().and_then(lease_from))
    }

    pub async fn release_lease(&self, app: &str, id: &str, lease: &Lease) -> Result<(), ApiError> {
        let path = format!("/apps/{}/machines/{}/lease", enc(app), enc(id));
        self.delete(&path, Act::LeaseRelease, id, &lease_headers(Some(lease)))
            .await
    }

    /// Sets one metadata key without restarting the Machine (under a lease when given).
    pub async fn set_metadata(
        &self,
        app: &str,
        id: &str,
        key: &str,
        value: &str,
        lease: Option<&Lease>,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/apps/{}/machines/{}/metadata/{}",
            enc(app),
            enc(id),
            enc(key)
        );
        let body = serde_json::json!({ "value": value });
        self.unit(
            Method::POST,
            &path,
            Act::MetadataSet,
            id,
            Some(&body),
            &lease_headers(lease),
            Repeat::Safe,
        )
        .await
    }

    pub async fn delete_metadata(
        &self,
        app: &str,
        id: &str,
        key: &str,
        lease: Option<&Lease>,
    ) -> Result<(), ApiError> {
        let path = format!(
            "/apps/{}/machines/{}/metadata/{}",
            enc(app),
            enc(id),
            enc(key)
        );
        self.delete(&path, Act::MetadataSet, id, &lease_headers(lease))
            .await
    }

    // ---- volumes ----

    pub async fn list_volumes(&self, app: &str) -> Result<Vec<fly::Volume>, ApiError> {
        let path = format!("/apps/{}/volumes", enc(app));
        self.get(&path, Act::VolumeList, app).await
    }

    pub async fn get_volume(&self, app: &str, id: &str) -> Result<Option<fly::Volume>, ApiError> {
        let path = format!("/apps/{}/volumes/{}", enc(app), enc(id));
        self.get_found(&path, Act::VolumeGet, id).await
    }

    /// Creates a volume. An unknown outcome is returned as such: list and look for it.
    pub async fn create_volume(&self, app: &str, body: &Value) -> Result<fly::Volume, ApiError> {
        let path = format!("/apps/{}/volumes", enc(app));
        self.json(
            Method::POST,
            &path,
            Act::VolumeCreate,
            app,
            Some(body),
            &[],
            Repeat::Once,
        )
        .await
    }

    pub async fn update_volume(
        &self,
        app: &str,
        id: &str,
        snapshot_retention: u32,
        auto_backup: bool,
    ) -> Result<(), ApiError> {
        let path = format!("/apps/{}/volumes/{}", enc(app), enc(id));
        let body = serde_json::json!({ "snapshot_retention": snapshot_retention, "auto_backup_enabled": auto_backup });
        self.unit(
            Method::PUT,
            &path,
            Act::VolumeUpdate,
            id,
            Some(&body),
            &[],
            Repeat::Safe,
        )
        .await
    }

    pub async fn extend_volume(&self, app: &str, id: &str, size_gb: u32) -> Result<(), ApiError> {
        let path = format!("/apps/{}/volumes/{}/extend", enc(app), enc(id));
        let body = serde_json::json!({ "size_gb": size_gb });
        self.unit(
            Method::PUT,
            &path,
            Act::VolumeExtend,
            id,
            Some(&body),
            &[],
            Repeat::Safe,
        )
        .await
    }

    pub async fn delete_volume(&self, app: &str, id: &str) -> Result<(), ApiError> {
        let path = format!("/apps/{}/volumes/{}", enc(app), enc(id));
        self.delete(&path, Act::VolumeDelete, id, &[]).await
    }

    pub async fn list_snapshots(&self, app: &str, volume: &str) -> Result<Vec<Value>, ApiError> {
        let path = format!("/apps/{}/volumes/{}/snapshots", enc(app), enc(volume));
        self.get(&path, Act::SnapshotList, volume).await
    }

    /// Takes an on-demand snapshot. A repeated request only makes an extra snapshot.
    pub async fn create_snapshot(&self, app: &str, volume: &str) -> Result<(), ApiError> {
        let path = format!("/apps/{}/volumes/{}/snapshots", enc(app), enc(volume));
        self.unit(
            Method::POST,
            &path,
            Act::SnapshotCreate,
            volume,
            None,
            &[],
            Repeat::Safe,
        )
        .await
    }

    // ---- secrets ----

    pub async fn list_secrets(&self, app: &str) -> Result<Vec<fly::Secret>, ApiError> {
        let path = format!("/apps/{}/secrets", enc(app));
        let list: SecretList = self.get(&path, Act::SecretsList, app).await?;
        Ok(match list {
            SecretList::Wrapped { secrets } => secrets,
            SecretList::Bare(s) => s,
        })
    }

    /// Sets (`Some`) and deletes (`None`) app secrets in one request. Idempotent. The
    /// body carries values: it is never logged. Returns the app's secrets afterwards
    /// (names and digests).
    pub async fn update_secrets(
        &self,
        app: &str,
        values: &BTreeMap<String, Option<&SecretValue>>,
    ) -> Result<Vec<fly::Secret>, ApiError> {
        let path = format!("/apps/{}/secrets", enc(app));
        let map: serde_json::Map<String, Value> = values
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.map_or(Value::Null, |s| Value::String(s.expose().to_string())),
                )
            })
            .collect();
        let body = serde_json::json!({ "values": map });
        // A response that cannot be read is an error (like any other), not "no secrets":
        // that would count every secret as changed and restart every Machine.
        let updated: SecretsUpdated = self
            .json(
                Method::POST,
                &path,
                Act::SecretsUpdate,
                app,
                Some(&body),
                &[],
                Repeat::Safe,
            )
            .await?;
        Ok(updated.secrets)
    }
}

/// What stays unescaped in a path segment or query value: RFC 3986's unreserved
/// characters (letters, digits, `-`, `_`, `.`, `~`); every other byte is `%XX`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One attempt's outcome: status, body and Retry-After seconds, or a transport error.
type Outcome = Result<(u16, Vec<u8>, Option<f64>), reqwest::Error>;

/// A call's identity and its attempts so far.
struct Tries<'a> {
    method: String,
    path: &'a str,
    act: Act,
    id: &'a str,
    repeat: Repeat,
    attempt: u32,
    connect_failures: u32,
    first: std::time::Instant,
}

impl Tries<'_> {
    fn status_error(&self, status: u16, text: &[u8]) -> ApiError {
        ApiError::Status {
            method: self.method.clone(),
            path: self.path.to_string(),
            status,
            body: String::from_utf8_lossy(text).into_owned(),
        }
    }
}

/// What a call does after an attempt.
enum Next {
    /// Waits this long, then tries again.
    Retry(Duration),
    /// Returns this.
    Done(Result<(u16, Vec<u8>), ApiError>),
}

/// Sends one attempt and reads its whole body; a write's response also notes its
/// request id.
async fn send(req: reqwest::RequestBuilder, act: Act) -> Outcome {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    if !act.is_read() {
        super::request_ids::note(resp.headers());
    }
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok());
    let body = resp.bytes().await?;
    Ok((status, body.to_vec(), retry_after))
}

/// `--debug`: one line per attempt, with its status or error and its duration.
fn debug_line(tries: &Tries<'_>, outcome: &Outcome, started: std::time::Instant) {
    let what = match outcome {
        Ok((s, _, _)) => s.to_string(),
        Err(e) => format!("error: {}", describe(e)),
    };
    eprintln!(
        "[http] {} {} → {what} ({} ms)",
        tries.method,
        tries.path,
        started.elapsed().as_millis()
    );
}

/// Percent-encodes a path or query component.
fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the response was cut off"
    } else {
        "connection failed"
    };
    let mut msg = kind.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

/// IP assignments and certificates (`client/network.rs`).
mod job;
pub use job::JobStatus;
/// Reads right after a create, which Fly may not show yet (`client/fresh.rs`).
mod fresh;
mod network;
pub use fresh::{FRESH_READ_ATTEMPTS, fresh_delay};
/// Fly's region list with capacities (`client/platform.rs`).
mod platform;
pub use platform::RegionCapacity;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_show_method_path_status_and_body_not_the_token() {
        let e = ApiError::Status {
            method: "POST".into(),
            path: "/apps/a/volumes".into(),
            status: 422,
            body: "{\"error\":\"bad size\"}".into(),
        };
        assert_eq!(
            e.to_string(),
            "POST /apps/a/volumes → 422 Unprocessable Entity: {\"error\":\"bad size\"}"
        );
        let e = ApiError::Status {
            method: "GET".into(),
            path: "/apps/a".into(),
            status: 400,
            body: String::new(),
        };
        assert!(e.to_string().ends_with("400 Bad Request: (empty body)"));
        let t = Token::new("secret-token-value".into());
        assert_eq!(format!("{t:?}"), "Token(***)");
        let c = ClientConfig::new("http://x/", t);
        assert!(!format!("{c:?}").contains("secret-token-value"));
        assert_eq!(c.base_url, "http://x");
    }

    #[test]
    fn capacity_errors_are_recognised() {
        let e = ApiError::Status { method: "POST".into(), path: "/p".into(), status: 422, body: "{\"error\":\"insufficient capacity in region sjc\",\"status\":\"insufficient_capacity\"}".into() };
        assert_eq!(
            e.capacity(),
            Some(crate::fly::errors::CapacityError::Region)
        );
    }

    #[test]
    fn name_taken_is_told_apart_from_other_422s() {
        let e = |status: u16, body: &str| ApiError::Status {
            method: "POST".into(),
            path: "/apps".into(),
            status,
            body: body.into(),
        };
        assert!(e(422, "{\"error\":\"Name has already been taken\"}").is_name_taken());
        assert!(e(422, "{\"error\":\"x\",\"status\":\"name_taken\"}").is_name_taken());
        assert!(!e(422, "{\"error\":\"invalid app name \\\"A\\\"\"}").is_name_taken());
        assert!(!e(409, "{\"error\":\"Name has already been taken\"}").is_name_taken());
    }

    #[test]
    fn lease_header_only_with_a_lease() {
        assert!(lease_headers(None).is_empty());
        let l = Lease { nonce: "n1".into() };
        assert_eq!(lease_headers(Some(&l)), vec![(LEASE_HEADER, "n1")]);
    }

    /// A one-route server answering `status` with `body` to everything; its base URL.
    async fn serve(status: u16, body: &'static str) -> String {
        let app = axum::Router::new().fallback(move || async move {
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    fn client(base: &str) -> Client {
        let mut cfg = ClientConfig::new(base, Token::new("t".into()));
        cfg.rate_limits = false;
        cfg.max_retries = 0;
        Client::new(cfg).unwrap()
    }

    #[tokio::test]
    async fn an_unreadable_secrets_response_is_an_error_not_an_empty_list() {
        let v = SecretValue::new("s3cr3t-v4lue".into());
        let values = BTreeMap::from([("K".to_string(), Some(&v))]);
        for body in ["not json", "{\"secrets\": \"oops\"}"] {
            let c = client(&serve(200, body).await);
            let e = c.update_secrets("a", &values).await.unwrap_err();
            assert!(
                matches!(&e, ApiError::Transport { cause, .. } if cause.starts_with("unexpected response")),
                "{e}"
            );
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
        let c = client(
            &serve(
                200,
                "{\"secrets\":[{\"name\":\"K\",\"digest\":\"d\"}],\"version\":2}",
            )
            .await,
        );
        let got = c.update_secrets("a", &values).await.unwrap();
        assert_eq!((got[0].name.as_str(), got[0].digest.as_str()), ("K", "d"));
    }

    #[tokio::test]
    async fn deleting_what_is_gone_is_done_and_other_errors_are_not() {
        let gone = client(&serve(404, "{\"error\":\"not found\"}").await);
        let l = Lease { nonce: "n".into() };
        gone.delete_app("a").await.unwrap();
        gone.delete_machine("a", "m", Some(&l)).await.unwrap();
        gone.release_lease("a", "m", &l).await.unwrap();
        gone.delete_metadata("a", "m", "k", None).await.unwrap();
        gone.delete_volume("a", "v").await.unwrap();
        let refused = client(&serve(412, "{\"error\":\"attached\"}").await);
        assert_eq!(
            refused.delete_volume("a", "v").await.unwrap_err().status(),
            Some(412)
        );
        assert_eq!(
            refused.delete_app("a").await.unwrap_err().status(),
            Some(412)
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
        assert_eq!(enc("flotilla_tenant"), "flotilla_tenant");
        assert_eq!(enc("my-jarvis-alice"), "my-jarvis-alice");
        assert_eq!(enc("vol_8d1d3023622df2"), "vol_8d1d3023622df2");
        assert_eq!(enc("a.b~c"), "a.b~c");
        assert_eq!(enc("k=v&x?y#z%"), "k%3Dv%26x%3Fy%23z%25");
        assert_eq!(enc("é"), "%C3%A9");
        assert_eq!(enc(""), "");
    }

    /// Every byte encodes exactly as the unreserved-set rule says: kept when
    /// alphanumeric or one of `-_.~`, else `%XX` in upper-case hex.
    #[test]
    fn encoding_matches_the_unreserved_rule_for_every_character() {
        let by_rule = |s: &str| -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect()
        };
        let mut all: String = (0u8..128).map(char::from).collect();
        all.push_str("é€😀\u{7f}\u{80}\u{ff}");
        for c in all.chars() {
            let s = format!("a{c}b");
            assert_eq!(enc(&s), by_rule(&s), "{c:?}");
        }
        assert_eq!(enc(&all), by_rule(&all));
    }
}
