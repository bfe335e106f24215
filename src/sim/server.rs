//! The HTTP server: shared state, the middleware that authenticates, injects faults,
//! counts and logs, and a hyper accept loop that can drop a connection unanswered
//! (which axum's own server cannot), for the `timeout` and `lost_response` faults.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use super::clock::{Scale, now_ms};
use super::error::{ApiError, FaultMark};
use super::faults::{After, Before, FaultConfig, FaultState};
use super::handlers;
use super::handlers::machine_ops::ExecResponder;
use super::handlers::platform::RegionCapacity;
use super::ids::IdGen;
use super::model::MachineConfig;
use super::persist;
use super::ratelimit::{Action, RateLimiter};
use super::reqlog::{Counters, Record, RequestLog};
use super::world::{Timing, World};
use super::{SimConfig, SimError};

/// Largest request body accepted (larger ones get a 413).
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// Locks a mutex; a poisoned lock still holds consistent data here (no handler panics
/// while holding one), so recover it instead of failing every later request.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks a response whose connection must be dropped without answering.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Disconnect;

/// Everything the handlers share.
pub(crate) struct Sim {
    pub token: String,
    pub timing: Timing,
    pub scale: Scale,
    pub default_region: String,
    pub default_lease_ttl: u64,
    pub world: Mutex<World>,
    pub ids: Mutex<IdGen>,
    pub faults: Mutex<FaultState>,
    pub limiter: Mutex<RateLimiter>,
    pub rate_limits: AtomicBool,
    pub counters: Mutex<Counters>,
    pub log: Option<Mutex<RequestLog>>,
    pub changed: Notify,
    pub shutdown: watch::Receiver<bool>,
    pub dirty: AtomicBool,
    pub state_file: Option<PathBuf>,
    save_lock: Mutex<()>,
    /// Machines (`app/id`) and apps (`app`) the `eventual` fault hides, until when
    /// (real Unix milliseconds).
    hidden: Mutex<HashMap<String, i64>>,
    /// What `exec` answers (set through `/__sim/exec`).
    pub exec: Mutex<ExecResponder>,
    /// Regional capacity per Machine size (set through `/__sim/regions/capacity`).
    pub capacity: Mutex<RegionCapacity>,
}

/// How long (simulated) the `eventual` fault keeps a new Machine or app invisible.
const EVENTUAL_MOMENT: Duration = Duration::from_secs(2);

impl Sim {
    pub(crate) fn new(
        cfg: &SimConfig,
        mut world: World,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Sim, SimError> {
        let scale = Scale(cfg.time_scale);
        let timing = Timing {
            create: scale.ms(cfg.create_delay),
            start: scale.ms(cfg.start_delay),
            resume: scale.ms(cfg.resume_delay),
            stop: scale.ms(cfg.stop_delay),
            suspend: scale.ms(cfg.suspend_delay),
            replace: scale.ms(cfg.replace_delay),
            destroy: scale.ms(cfg.destroy_delay),
            detach: scale.ms(cfg.detach_delay),
            idle: scale.ms(cfg.idle_period),
            restore: scale.ms(cfg.volume_restore_delay),
            volume_gone: scale.ms(cfg.volume_destroy_delay),
            snapshot: scale.ms(cfg.snapshot_delay),
            job: scale.ms(cfg.job_run),
            day: scale.ms(std::time::Duration::from_secs(86_400)),
            auto_idle: cfg.auto_idle,
        };
        world.epoch = world.epoch.wrapping_add(1);
        for app in world.apps.values_mut() {
            app.reindex();
        }
        let log = match &cfg.request_log {
            Some(path) => Some(Mutex::new(RequestLog::open(path).map_err(|e| {
                SimError::Config(format!("cannot open request log {}: {e}", path.display()))
            })?)),
            None => None,
        };
        Ok(Sim {
            token: cfg.token.clone(),
            scale,
            default_region: cfg.default_region.clone(),
            default_lease_ttl: cfg.default_lease_ttl_secs,
            ids: Mutex::new(IdGen::new(cfg.seed, world.epoch)),
            world: Mutex::new(world),
            faults: Mutex::new(FaultState::new(cfg.faults.clone(), cfg.seed)),
            limiter: Mutex::new(RateLimiter::new(cfg.time_scale)),
            rate_limits: AtomicBool::new(cfg.rate_limits),
            counters: Mutex::new(Counters::default()),
            log,
            changed: Notify::new(),
            shutdown,
            dirty: AtomicBool::new(false),
            state_file: cfg.state_file.clone(),
            save_lock: Mutex::new(()),
            hidden: Mutex::new(HashMap::new()),
            exec: Mutex::new(ExecResponder::default()),
            capacity: Mutex::new(RegionCapacity::default()),
            timing,
        })
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    /// Applies the rate limit of `action` on `id`.
    pub fn rate_limit(&self, action: Action, id: &str) -> Result<(), ApiError> {
        if !self.rate_limits.load(Ordering::Relaxed) {
            return Ok(());
        }
        lock(&self.limiter)
            .check(action, id, Instant::now())
            .map_err(|secs| {
                // The limiter counts real seconds; Fly's header speaks API seconds.
                ApiError::too_many_requests(
                    "rate limit exceeded: too many requests for this action; retry later",
                    secs * self.scale.0,
                )
            })
    }

    /// The injected capacity error (422, or the 400 form) for volume creates in
    /// `region`, if configured.
    pub fn check_capacity(&self, region: &str) -> Result<(), ApiError> {
        match lock(&self.faults).capacity_form(region, true, false) {
            Some(form) => Err(ApiError::capacity_form(region, form)),
            None => Ok(()),
        }
    }

    /// The injected capacity error (in its configured form) for a Machine create in
    /// `region`, or the regional capacity of its size running out.
    pub fn check_machine_capacity(
        &self,
        region: &str,
        mounts_volume: bool,
    ) -> Result<(), ApiError> {
        match lock(&self.faults).capacity_form(region, false, mounts_volume) {
            Some(form) => Err(ApiError::capacity_form(region, form)),
            None => Ok(()),
        }
    }

    /// Whether a Machine with this config crashes at boot (the `bad_image` fault).
    pub fn boot_fails(&self, config: &MachineConfig) -> bool {
        lock(&self.faults).image_fails(config.image.as_deref().unwrap_or_default())
    }

    /// Whether a one-shot Machine with this config exits with status 1 (`job_fail`).
    pub fn job_fails(&self, config: &MachineConfig) -> bool {
        lock(&self.faults).job_fails(config.image.as_deref().unwrap_or_default())
    }

    /// Notes a just-created app (`machine` `None`) or Machine: the `eventual` fault
    /// may hide it from reads for a short simulated moment.
    pub fn created(&self, app: &str, machine: Option<&str>) {
        if !lock(&self.faults).hides_new() {
            return;
        }
        let until = now_ms().saturating_add(self.scale.ms(EVENTUAL_MOMENT));
        let mut hidden = lock(&self.hidden);
        hidden.retain(|_, at| *at > now_ms());
        hidden.insert(hidden_key(app, machine), until);
    }

    /// The 404 a read of an entity the `eventual` fault still hides gets.
    pub fn check_visible(&self, app: &str, machine: Option<&str>) -> Result<(), ApiError> {
        let mut hidden = lock(&self.hidden);
        if hidden.is_empty() {
            return Ok(());
        }
        let key = hidden_key(app, machine);
        match hidden.get(&key) {
            Some(until) if *until > now_ms() => {
                let mut e = match machine {
                    Some(_) => ApiError::machine_not_found(),
                    None => ApiError::app_not_found(),
                };
                e.fault = Some("eventual");
                Err(e)
            }
            Some(_) => {
                hidden.remove(&key);
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn set_faults(&self, cfg: FaultConfig) {
        lock(&self.faults).replace(cfg);
    }

    /// Records that the world changed: wakes waiters and schedules a save.
    pub fn mutated(&self) {
        self.dirty.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Writes the state file now (if one is configured).
    pub fn save(&self) -> Result<(), SimError> {
        let Some(path) = &self.state_file else {
            return Ok(());
        };
        let _guard = lock(&self.save_lock);
        self.dirty.store(false, Ordering::Release);
        let bytes = persist::serialize(&self.world())?;
        persist::write_atomic(path, &bytes)
    }

    fn record(&self, r: &Record<'_>) {
        lock(&self.counters).record(r);
        if let Some(log) = &self.log {
            lock(log).write(r);
        }
    }

    pub fn flush_log(&self) {
        if let Some(log) = &self.log {
            lock(log).flush();
        }
    }

    /// Sleeps `d` of real time, or less if the simulator shuts down.
    pub async fn sleep(&self, d: Duration) {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = shutdown.changed() => {}
        }
    }
}

fn hidden_key(app: &str, machine: Option<&str>) -> String {
    match machine {
        Some(id) => format!("{app}/{id}"),
        None => app.to_string(),
    }
}

fn authorized(token: &str, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, given)) = value.trim().split_once(' ') else {
        return false;
    };
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("flyv1"))
        && given.trim() == token
}

fn injected(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let message = match status {
        429 => "rate limit exceeded",
        500 => "internal server error",
        502 => "bad gateway",
        _ => "service unavailable",
    };
    let mut err = ApiError::new(code, message);
    if status == 429 || status == 503 {
        err.retry_after = Some(1.0);
    }
    err.into_response()
}

/// Authentication, faults, counters and the request log for the Fly API routes.
async fn api_layer(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut fault: Option<&'static str> = None;
    let mut handler_status = None;
    let mut resp = if !authorized(&sim.token, req.headers()) {
        ApiError::unauthorized().into_response()
    } else {
        let (before, latency) = lock(&sim.faults).before();
        if let Some(l) = latency.filter(|l| !l.is_zero()) {
            sim.sleep(sim.scale.real(l)).await;
            fault = Some("latency");
        }
        match before {
            Before::Timeout => {
                let hang = lock(&sim.faults).config.hang;
                sim.sleep(sim.scale.real(hang)).await;
                fault = Some("timeout");
                let mut r = StatusCode::GATEWAY_TIMEOUT.into_response();
                r.extensions_mut().insert(Disconnect);
                r
            }
            Before::Error(status, kind) => {
                fault = Some(kind);
                injected(status)
            }
            Before::Proceed => {
                let resp = next.run(req).await;
                let after = lock(&sim.faults).after();
                match after {
                    After::Proceed => resp,
                    After::Error(status, kind) => {
                        fault = Some(kind);
                        injected(status)
                    }
                    After::Lost => {
                        fault = Some("lost_response");
                        handler_status = Some(resp.status().as_u16());
                        let mut r = resp;
                        r.extensions_mut().insert(Disconnect);
                        r
                    }
                }
            }
        }
    };
    if let Some(FaultMark(kind)) = resp.extensions().get::<FaultMark>().copied() {
        fault = Some(kind);
    }
    let dropped = resp.extensions().get::<Disconnect>().is_some();
    let status = if dropped { 0 } else { resp.status().as_u16() };
    sim.record(&Record {
        method: &method,
        path: &path,
        status,
        handler_status,
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        fault,
        rate_limited: status == 429 && fault.is_none(),
    });
    if dropped {
        // Nothing useful reaches the client; the hyper service drops the connection.
        *resp.body_mut() = Body::empty();
    } else {
        resp.headers_mut()
            .insert("fly-request-id", next_request_id());
    }
    resp
}

/// A request id for the `fly-request-id` header, unique within the process (not drawn
/// from the seeded ids, so it does not shift them).
fn next_request_id() -> axum::http::HeaderValue {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    axum::http::HeaderValue::from_str(&format!("sim{n:016x}-iad"))
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("sim"))
}

async fn control_auth(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    if !authorized(&sim.token, req.headers()) {
        return ApiError::unauthorized().into_response();
    }
    next.run(req).await
}

/// Turns any error answered without a JSON body (axum's own rejections: unknown route,
/// wrong method, oversized or unreadable body) into Fly's `{"error": "..."}` shape.
async fn error_shape(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if status.as_u16() < 400 {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || resp.extensions().get::<Disconnect>().is_some() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let mut out = ApiError::new(status, message).into_response();
    for (k, v) in parts.headers.iter() {
        out.headers_mut().entry(k).or_insert(v.clone());
    }
    out
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal simulator error",
    )
    .into_response()
}

pub(crate) fn router(sim: Arc<Sim>) -> Router {
    let api = handlers::api_routes()
        .fallback(|| async { ApiError::not_found("not found") })
        .layer(middleware::from_fn_with_state(sim.clone(), api_layer));
    let control = handlers::control::routes()
        .layer(middleware::from_fn_with_state(sim.clone(), control_auth));
    Router::new()
        .merge(control)
        .merge(api)
        .layer(middleware::from_fn(error_shape))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(sim)
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// Serves `router` on `listener` until `shutdown` turns true, then drains connections.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = hyper::server::conn::http1::Builder::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let router = router.clone();
                    async move {
                        let resp = match tower::ServiceExt::oneshot(router, req).await {
                            Ok(r) => r,
                            Err(e) => match e {},
                        };
                        if resp.extensions().get::<Disconnect>().is_some() {
                            Err(Dropped)
                        } else {
                            Ok::<_, Dropped>(resp)
                        }
                    }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = watched.await;
                });
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
    }
}

/// Saves the state file whenever the world changed, until shutdown.
pub(crate) async fn saver(sim: Arc<Sim>, mut shutdown: watch::Receiver<bool>) {
    if sim.state_file.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if sim.dirty.load(Ordering::Acquire) {
            let s = sim.clone();
            let _ = tokio::task::spawn_blocking(move || s.save()).await;
        }
    }
}
