//! A local, faithful Fly Machines API simulator (`flotilla sim serve`, or in-process).
//!
//! It serves Fly's paths (`/v1/apps`, `/v1/apps/{app}/machines`, …) so a client only
//! swaps its base URL, and it behaves like Fly where naive tools break: server-side
//! config normalization, asynchronous state changes, leases, delayed volume detach,
//! secrets reaching Machines only at boot, documented rate limits, and seeded faults
//! (errors, latency, timeouts, lost responses, capacity errors in Fly's forms, brief
//! invisibility of new entities). Besides the lifecycle it answers `exec`, `ps`,
//! `signal`, `versions` and the regions list.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flotilla::sim::SimError> {
//! use flotilla::sim::{SimConfig, start};
//! let cfg = SimConfig { time_scale: 100.0, rate_limits: false, ..SimConfig::default() };
//! let sim = start(cfg, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("Fly API at {}/v1", sim.base_url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Control endpoints under `/__sim` (see [`SimControl`]) inspect and steer it in tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

mod clock;
mod error;
mod faults;
mod gotypes;
mod handlers;
mod ids;
mod model;
mod network;
mod normalize;
mod persist;
mod ratelimit;
mod reqlog;
mod server;
mod world;

pub use faults::{FaultConfig, FaultSpecError, parse_duration};
pub use handlers::control::{AppMachines, MachineInfo, SimControl};
pub use handlers::volumes::{AppVolumes, SnapshotInfo, VolumeInfo};
pub use reqlog::Counters;
pub use world::{StoredObject, VolumeOrigin};

/// How to run the simulator. Delays are simulated time: each is divided by
/// `time_scale`. Defaults follow what Fly users observe (see each field).
///
/// Its `Debug` output redacts the token.
#[derive(Clone)]
pub struct SimConfig {
    /// The bearer token every request must carry. Default `test`.
    pub token: String,
    /// Divides every delay, wait timeout, lease TTL and rate-limit window. Default 1.
    pub time_scale: f64,
    /// Seeds ids and fault decisions.
    pub seed: u64,
    /// Apply Fly's documented rate limits. Default true.
    pub rate_limits: bool,
    /// Faults to inject. Default none.
    pub faults: FaultConfig,
    /// Persist the world here (JSON, written atomically) and reload it on start.
    pub state_file: Option<PathBuf>,
    /// Append one JSON line per API request here.
    pub request_log: Option<PathBuf>,
    /// Region for a Machine created without one (Fly picks the caller's nearest).
    pub default_region: String,
    /// Lease TTL when a lease request names none, in seconds. Default 30.
    pub default_lease_ttl_secs: u64,
    /// `created` → `starting` after launch. Default 300 ms.
    pub create_delay: Duration,
    /// `starting` → `started` (a cold boot). Default 1.5 s: Fly boots in about 1–2 s.
    pub start_delay: Duration,
    /// `starting` → `started` when resuming a suspended Machine. Default 300 ms.
    pub resume_delay: Duration,
    /// `stopping` → `stopped`. Default 1 s.
    pub stop_delay: Duration,
    /// `suspending` → `suspended`. Default 1 s.
    pub suspend_delay: Duration,
    /// `replacing` (an update of a running Machine) → `starting`. Default 1 s.
    pub replace_delay: Duration,
    /// `destroying` → `destroyed`. Default 1 s.
    pub destroy_delay: Duration,
    /// After a Machine is destroyed, until its volume's attachment clears. Default
    /// 10 s: long enough that deleting the volume right away fails as on Fly, where
    /// users report up to about a minute.
    pub detach_delay: Duration,
    /// Idle time before an `autostop` Machine stops or suspends. Default 5 min.
    pub idle_period: Duration,
    /// Start the idle clock on every boot of an `autostop` Machine (otherwise only
    /// `POST /__sim/idle` starts it). Default false.
    pub auto_idle: bool,
    /// A volume restored from a snapshot (or forked) stays `restoring` this long.
    /// Default 2 s.
    pub volume_restore_delay: Duration,
    /// A deleted volume is still listed, as `pending_destroy`, this long (Fly lists
    /// deleted volumes for a while before they are gone). Default 30 s.
    pub volume_destroy_delay: Duration,
    /// An on-demand snapshot completes after this long. Default 2 s.
    pub snapshot_delay: Duration,
    /// How long a one-shot Machine (`auto_destroy`, restart `no`) runs before it exits.
    /// Default 5 s.
    pub job_run: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            token: "test".into(),
            time_scale: 1.0,
            seed: 0,
            rate_limits: true,
            faults: FaultConfig::default(),
            state_file: None,
            request_log: None,
            default_region: "iad".into(),
            default_lease_ttl_secs: 30,
            create_delay: Duration::from_millis(300),
            start_delay: Duration::from_millis(1500),
            resume_delay: Duration::from_millis(300),
            stop_delay: Duration::from_secs(1),
            suspend_delay: Duration::from_secs(1),
            replace_delay: Duration::from_secs(1),
            destroy_delay: Duration::from_secs(1),
            detach_delay: Duration::from_secs(10),
            idle_period: Duration::from_secs(300),
            auto_idle: false,
            volume_restore_delay: Duration::from_secs(2),
            volume_destroy_delay: Duration::from_secs(30),
            snapshot_delay: Duration::from_secs(2),
            job_run: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field cannot be left out (or leak) unnoticed.
        let SimConfig {
            token: _,
            time_scale,
            seed,
            rate_limits,
            faults,
            state_file,
            request_log,
            default_region,
            default_lease_ttl_secs,
            create_delay,
            start_delay,
            resume_delay,
            stop_delay,
            suspend_delay,
            replace_delay,
            destroy_delay,
            detach_delay,
            idle_period,
            auto_idle,
            volume_restore_delay,
            volume_destroy_delay,
            snapshot_delay,
            job_run,
        } = self;
        f.debug_struct("SimConfig")
            .field("token", &"<redacted>")
            .field("time_scale", time_scale)
            .field("seed", seed)
            .field("rate_limits", rate_limits)
            .field("faults", faults)
            .field("state_file", state_file)
            .field("request_log", request_log)
            .field("default_region", default_region)
            .field("default_lease_ttl_secs", default_lease_ttl_secs)
            .field("create_delay", create_delay)
            .field("start_delay", start_delay)
            .field("resume_delay", resume_delay)
            .field("stop_delay", stop_delay)
            .field("suspend_delay", suspend_delay)
            .field("replace_delay", replace_delay)
            .field("destroy_delay", destroy_delay)
            .field("detach_delay", detach_delay)
            .field("idle_period", idle_period)
            .field("auto_idle", auto_idle)
            .field("volume_restore_delay", volume_restore_delay)
            .field("volume_destroy_delay", volume_destroy_delay)
            .field("snapshot_delay", snapshot_delay)
            .field("job_run", job_run)
            .finish()
    }
}

/// Why the simulator could not start or save.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("simulator state file {}: {message}", path.display())]
    State { path: PathBuf, message: String },
    #[error("simulator I/O error: {0}")]
    Io(#[from] std::io::Error),
}

fn validate(cfg: &SimConfig) -> Result<(), SimError> {
    if !cfg.time_scale.is_finite() || cfg.time_scale <= 0.0 {
        return Err(SimError::Config(format!(
            "time scale must be a positive number, not {}",
            cfg.time_scale
        )));
    }
    if cfg.token.is_empty() {
        return Err(SimError::Config("the token must not be empty".into()));
    }
    if crate::platform::region(&cfg.default_region).is_none() {
        return Err(SimError::Config(format!(
            "unknown default region {:?}",
            cfg.default_region
        )));
    }
    Ok(())
}

/// Where a running simulator listens, and its control surface. Both handle types
/// dereference to this, so `handle.addr()`, `handle.base_url()` and
/// `handle.control()` work on either.
#[derive(Clone)]
pub struct SimEndpoint {
    addr: SocketAddr,
    control: SimControl,
}

impl SimEndpoint {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: append `/v1/...` as with `https://api.machines.dev`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Inspection and control (counters, faults, idle, secrets freshness).
    pub fn control(&self) -> &SimControl {
        &self.control
    }
}

/// A running simulator (started with [`start`]).
pub struct SimHandle {
    endpoint: SimEndpoint,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::ops::Deref for SimHandle {
    type Target = SimEndpoint;
    fn deref(&self) -> &SimEndpoint {
        &self.endpoint
    }
}

impl SimHandle {
    /// Stops serving, then writes the state file and flushes the request log.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // The server task still saves and flushes if its runtime keeps running.
        let _ = self.stop.send(true);
    }
}

/// Starts the simulator on `addr` (port 0: an ephemeral port) in the current tokio
/// runtime. Loads `state_file` if it exists; a corrupt one is an error.
pub async fn start(cfg: SimConfig, addr: SocketAddr) -> Result<SimHandle, SimError> {
    validate(&cfg)?;
    let world = match &cfg.state_file {
        Some(path) => persist::load(path)?,
        None => Default::default(),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SimError::Bind { addr, source })?;
    let local = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let sim = Arc::new(server::Sim::new(&cfg, world, stopped.clone())?);
    // Write the state file at once, so a bad path fails now rather than at exit.
    sim.save()?;
    let router = server::router(sim.clone());
    let saver = tokio::spawn(server::saver(sim.clone(), stopped.clone()));
    let serving = sim.clone();
    let task = tokio::spawn(async move {
        server::serve(listener, router, stopped).await;
        let _ = saver.await;
        let s = serving.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = s.save();
            s.flush_log();
        })
        .await;
    });
    Ok(SimHandle {
        endpoint: SimEndpoint {
            addr: local,
            control: SimControl { sim },
        },
        stop,
        task: Some(task),
    })
}

/// A simulator running on its own runtime thread (from [`start_blocking`]); dropping
/// it stops it the same way as [`BlockingSimHandle::shutdown`].
pub struct BlockingSimHandle {
    endpoint: SimEndpoint,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for BlockingSimHandle {
    type Target = SimEndpoint;
    fn deref(&self) -> &SimEndpoint {
        &self.endpoint
    }
}

impl BlockingSimHandle {
    /// Stops serving, writes the state file, flushes the log and joins the thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BlockingSimHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Starts the simulator from non-async code: it runs on a thread with its own tokio
/// runtime until the returned handle is shut down or dropped.
pub fn start_blocking(cfg: SimConfig, addr: SocketAddr) -> Result<BlockingSimHandle, SimError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("flotilla-sim".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(SimError::Io(e)));
                    return;
                }
            };
            rt.block_on(async move {
                match start(cfg, addr).await {
                    Ok(handle) => {
                        let _ = ready_tx.send(Ok(handle.endpoint.clone()));
                        let _ = stop_rx.await;
                        handle.shutdown().await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })?;
    match ready_rx.recv() {
        Ok(Ok(endpoint)) => Ok(BlockingSimHandle {
            endpoint,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(SimError::Config(
                "the simulator thread exited before starting".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_token() {
        let cfg = SimConfig {
            token: "s3cr3t-token-value".into(),
            ..SimConfig::default()
        };
        for shown in [format!("{cfg:?}"), format!("{cfg:#?}")] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("token: \"<redacted>\""), "{shown}");
            assert!(shown.contains("time_scale: 1.0"), "{shown}");
            assert!(shown.contains("default_region: \"iad\""), "{shown}");
        }
    }
}
