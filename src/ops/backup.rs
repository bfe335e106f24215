//! `backup export` and `backup restore`: off-site copies of the tenants' volumes
//! (`backups.export`). Fly's API cannot export a snapshot (data leaves only through a
//! Machine that mounts it), so per volume, under the fleet lock: the volume is forked
//! (`source_volume_id`, same region: the tenant's Machine keeps running on the
//! original), a one-shot Machine (`auto_destroy`, restart `no`) runs the export image
//! with the fork mounted, its exit status is read from its `exit` event, and the fork
//! is deleted whatever happened. `backup restore` runs the same image in restore mode
//! into a new volume and swaps it in as `restore` does ([`crate::ops::restore::swap_in`]).
//!
//! # The export image contract
//!
//! Environment (in the Machine config; no credentials): `FLOTILLA_BACKUP_MODE`
//! (`export` | `restore`), `FLOTILLA_BACKUP_URL` (`s3://BUCKET/PREFIX/VOLUME-INDEX`),
//! `FLOTILLA_BACKUP_ID` (the export id; `latest` on restore means the newest there),
//! `FLOTILLA_BACKUP_KEEP` (exports to keep under the URL, oldest pruned),
//! `FLOTILLA_BACKUP_PATH` (the mount path), `FLOTILLA_BACKUP_ENDPOINT` (when set) and
//! `FLOTILLA_BACKUP_ENCRYPTED` (`true` when an encryption key is given). The object is
//! `URL/ID`. Credentials arrive as app secrets `FLOTILLA_BACKUP_CRED_<NAME>` (the image
//! exports each as `<NAME>`) and `FLOTILLA_BACKUP_ENCRYPTION_KEY`. Exit status 0 is
//! success, anything else a failure. The image may report the bytes it wrote by setting
//! metadata key `flotilla_export_bytes` on its own Machine before it exits.
//!
//! # Why credentials are app secrets
//!
//! A Machine's config (env, files with raw values) is readable by anyone who can list
//! the app's Machines, and Fly keeps it with the Machine's events; app secrets are
//! write-only through the API (names and digests only) and injected at boot. So the
//! credentials are set as app secrets under the `FLOTILLA_BACKUP_` prefix just before
//! the run and deleted right after it (and any left by an interrupted run are deleted
//! first). The trade-off: while they exist, any Machine of the tenant's app that boots
//! sees them too; flotilla does not restart the tenant's Machine, so only a crash or a
//! manual restart inside that window exposes them to the tenant's own code.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use serde_json::json;

use crate::apply::lock::LockOptions;
use crate::cost::job::JobCost;
use crate::diag::Diagnostic;
use crate::fly::client::{Client, JobStatus};
use crate::ops::Error;
use crate::ops::data::{self, Fleet, TenantVolume};
use crate::ops::restore::OldVolume;
use crate::ops::target::TargetOptions;
use crate::resource::{ExportConfig, SecretSource};
use crate::secret_files::FilePolicy;
use crate::secrets::SecretValue;

/// The prefix of the app secrets and environment variables of the contract.
pub const PREFIX: &str = "FLOTILLA_BACKUP_";
/// The metadata key an export image reports its bytes under.
pub const BYTES_KEY: &str = "flotilla_export_bytes";
/// Where the export Machine mounts the volume.
pub const MOUNT_PATH: &str = "/data";
/// The export Machine's size (priced from `pricing/`).
pub const PRESET: &str = "shared-cpu-1x";
const MEMORY_MB: u32 = 256;
/// API seconds an export or restore job may run.
pub const JOB_TIMEOUT_SECS: u64 = 6 * 3600;
/// API seconds between two looks at a running job.
const POLL_SECS: u64 = 2;
/// Attempts at a request that failed after the client's own retries (fork, Machine).
const ATTEMPTS: u32 = 3;

/// Which tenants to export.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub spec: PathBuf,
    /// Only these tenants (empty: all with `backups.export`).
    pub tenants: Vec<String>,
    pub target: TargetOptions,
    pub lock: LockOptions,
    /// The confinement of `file:` credential references.
    pub secret_files: FilePolicy,
}

/// One volume's export.
#[derive(Debug, Clone, Serialize)]
pub struct Exported {
    pub volume: TenantVolume,
    /// The export id (the object is `destination/id`).
    pub export_id: String,
    pub destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fork: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// What the image reported, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// API seconds from the fork's creation to its deletion.
    pub duration_secs: u64,
    /// API seconds the export Machine ran.
    pub machine_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<JobCost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `backup export` did, per volume, with warnings.
#[derive(Debug, Clone, Serialize)]
pub struct ExportOutcome {
    pub exports: Vec<Exported>,
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

impl ExportOutcome {
    pub fn failures(&self) -> usize {
        self.exports.iter().filter(|e| e.error.is_some()).count()
    }
}

/// Which export `backup restore` brings back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ExportChoice {
    /// The newest at the destination (the image resolves it).
    #[default]
    Latest,
    Id(String),
}

impl ExportChoice {
    pub fn parse(s: &str) -> ExportChoice {
        if s == "latest" {
            ExportChoice::Latest
        } else {
            ExportChoice::Id(s.to_string())
        }
    }

    fn id(&self) -> &str {
        match self {
            ExportChoice::Latest => "latest",
            ExportChoice::Id(id) => id,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    pub spec: PathBuf,
    pub tenant: String,
    pub export: ExportChoice,
    /// Delete the old volume instead of keeping it.
    pub allow_data_loss: bool,
    pub target: TargetOptions,
    pub lock: LockOptions,
    pub secret_files: FilePolicy,
}

/// One volume brought back from an export.
#[derive(Debug, Clone, Serialize)]
pub struct RestoredExport {
    pub volume: TenantVolume,
    pub export_id: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_volume: Option<String>,
    pub machine: String,
    pub old_volume: OldVolume,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreOutcome {
    pub restored: Vec<RestoredExport>,
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

impl RestoreOutcome {
    pub fn failures(&self) -> usize {
        self.restored.iter().filter(|r| r.error.is_some()).count()
    }
}

/// The credentials of one tenant's export, read (values redacted in `Debug`).
pub struct Credentials {
    values: BTreeMap<String, SecretValue>,
}

impl Credentials {
    /// Reads every reference of `cfg` (environment variables, files relative to `dir`).
    /// A missing value names the reference, never a value.
    pub(crate) fn read(
        cfg: &ExportConfig,
        dir: &std::path::Path,
        files: &FilePolicy,
    ) -> Result<Credentials, String> {
        let mut values = BTreeMap::new();
        let named = cfg
            .credentials
            .iter()
            .map(|(n, s)| (format!("{PREFIX}CRED_{n}"), s))
            .chain(
                cfg.encryption_key
                    .iter()
                    .map(|s| (format!("{PREFIX}ENCRYPTION_KEY"), s)),
            );
        for (name, src) in named {
            let v = match src {
                SecretSource::Env(var) => crate::ops::target::secret_from_env(var)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("environment variable {var} is not set or empty"))?,
                SecretSource::File(f) => files
                    .read(dir, f)
                    .map_err(|r| format!("credential file {}", r.message()))?,
                SecretSource::Unknown => continue,
            };
            values.insert(name, SecretValue::new(v));
        }
        Ok(Credentials { values })
    }
}

/// The export id of a run: its UTC start, sortable (`20260301T120000123Z`).
pub fn export_id(now: chrono::DateTime<Utc>) -> String {
    now.format("%Y%m%dT%H%M%S%3fZ").to_string()
}

/// Where volume `v`'s exports go under `to`.
pub fn destination(to: &str, v: &TenantVolume) -> String {
    let index = v.address.index().unwrap_or(0);
    format!("{}/{}-{index}", to.trim_end_matches('/'), v.name)
}

/// Exports every selected tenant's volumes.
pub fn export(opts: &Options) -> Result<ExportOutcome, Error> {
    let fleet = data::open(&opts.spec, &opts.target, &opts.tenants, "backup export")?;
    let plans = export_plans(&fleet, &opts.tenants)?;
    let mut creds = Vec::new();
    for (info, vols) in plans {
        let c = Credentials::read(&info.1, &fleet.loaded.dir, &opts.secret_files)
            .map_err(|e| credentials_error(&info.0, &e))?;
        creds.push((info, vols, c));
    }
    let lock = fleet.lock(&opts.lock, "backup export")?;
    let id = export_id(Utc::now());
    let pricing = pricing_table();
    let client = fleet.client();
    let exports = fleet.session.block_on(async {
        let mut out = Vec::new();
        for ((tenant, cfg), vols, c) in &creds {
            let job = Run {
                client,
                cfg,
                fleet: &fleet.loaded.desired.fleet,
                pricing: pricing.as_ref(),
            };
            out.extend(job.tenant(tenant, vols, c, &id).await);
        }
        out
    });
    let warnings = fleet.unlock(lock).into_iter().collect();
    Ok(ExportOutcome { exports, warnings })
}

/// Exports one tenant's volumes as `backup export` does (credentials set on its app,
/// a fork and a one-shot Machine per volume, everything removed after), for apply's
/// export before a tenant's removal. Every failure is in the results.
pub(crate) async fn export_tenant(
    client: &Client,
    cfg: &ExportConfig,
    fleet: &str,
    (tenant, vols): (&str, &[TenantVolume]),
    creds: &Credentials,
) -> Vec<Exported> {
    let pricing = pricing_table();
    let job = Run {
        client,
        cfg,
        fleet,
        pricing: pricing.as_ref(),
    };
    job.tenant(tenant, vols, creds, &export_id(Utc::now()))
        .await
}

type TenantPlan = ((String, ExportConfig), Vec<TenantVolume>);

/// The tenants to export (those selected that configure `backups.export`) with their
/// volumes.
fn export_plans(fleet: &Fleet, tenants: &[String]) -> Result<Vec<TenantPlan>, Error> {
    let mut out = Vec::new();
    for t in &fleet.loaded.desired.tenants {
        if !tenants.is_empty() && !tenants.contains(&t.name) {
            continue;
        }
        match &t.export {
            Some(cfg) => {
                let vols = fleet.volumes(std::slice::from_ref(&t.name));
                if !vols.is_empty() {
                    out.push(((t.name.clone(), cfg.clone()), vols));
                }
            }
            None if !tenants.is_empty() => return Err(not_configured(&t.name)),
            None => {}
        }
    }
    if out.is_empty() {
        return Err(Error::new(Diagnostic::error("no volumes to export").hint(
            "set `backups.export` for the tenants and apply the spec first",
        )));
    }
    Ok(out)
}

fn not_configured(tenant: &str) -> Error {
    Error::new(
        Diagnostic::error(format!("tenant {tenant} has no `backups.export`"))
            .address(format!("tenant.{tenant}.app"))
            .hint("add `backups.export: { to: \"s3://BUCKET/{{ tenant.name }}\", ... }` to the spec (README, \"Off-site export\")"),
    )
}

fn credentials_error(tenant: &str, e: &str) -> Error {
    Error::new(
        Diagnostic::error(format!("tenant {tenant}: cannot read the export credentials: {e}"))
            .hint("export the variable (or create the file) first; nothing was changed and the value is never printed"),
    )
}

/// The price table in force today; `None` (no cost shown) if the tables cannot load.
fn pricing_table() -> Option<crate::pricing::PriceTable> {
    let cat = crate::pricing::Catalog::embedded().ok()?;
    cat.at(Utc::now().date_naive()).ok().cloned()
}

/// What one tenant's jobs share.
struct Run<'a> {
    client: &'a Client,
    cfg: &'a ExportConfig,
    fleet: &'a str,
    pricing: Option<&'a crate::pricing::PriceTable>,
}

impl Run<'_> {
    /// Sets the credentials, exports each volume, removes the credentials.
    async fn tenant(
        &self,
        tenant: &str,
        vols: &[TenantVolume],
        creds: &Credentials,
        id: &str,
    ) -> Vec<Exported> {
        let Some(app) = vols.first().map(|v| v.app.clone()) else {
            return Vec::new();
        };
        let set = set_credentials(self.client, &app, creds).await;
        let mut out = Vec::new();
        for v in vols {
            let mut e = self.export_volume(v, id, set.as_ref().err()).await;
            if let Some(err) = &mut e.error {
                *err = format!("tenant {tenant}, volume {} ({}): {err}", v.name, v.id);
            }
            out.push(e);
        }
        if let Err(e) = remove_credentials(self.client, &app).await
            && let Some(last) = out.last_mut()
        {
            last.error = Some(format!(
                "the export credentials could not be removed from app {app}: {e}; run the export again to remove them"
            ));
        }
        out
    }

    /// One volume: fork, job, clean-up; every failure is in the result.
    async fn export_volume(&self, v: &TenantVolume, id: &str, setup: Option<&String>) -> Exported {
        let began = Instant::now();
        let mut e = Exported {
            volume: v.clone(),
            export_id: id.to_string(),
            destination: destination(&self.cfg.to, v),
            fork: None,
            machine: None,
            exit_code: None,
            bytes: None,
            duration_secs: 0,
            machine_secs: 0,
            cost: None,
            error: setup.map(|s| format!("the export credentials could not be set: {s}")),
        };
        if e.error.is_none() {
            let env = job_env("export", &e.destination, id, self.cfg);
            let result = self.fork_and_run(v, &env, &mut e).await;
            let cleaned = self.clean_up(v, &e).await;
            e.error = match (result, cleaned) {
                (Ok(()), Ok(())) => None,
                (Err(r), Ok(())) => Some(format!("{r}; the fork was removed")),
                (Ok(()), Err(c)) => Some(c),
                (Err(r), Err(c)) => Some(format!("{r}; {c}")),
            };
        }
        e.duration_secs = api_secs(self.client, began.elapsed());
        e.cost = self.cost(v, &e);
        e
    }

    async fn fork_and_run(
        &self,
        v: &TenantVolume,
        env: &BTreeMap<String, String>,
        e: &mut Exported,
    ) -> Result<(), String> {
        let body = json!({
            "name": fork_name(&v.name),
            "region": v.region,
            "size_gb": v.size_gb,
            "source_volume_id": v.id,
        });
        let fork = retried(self.client, || self.client.create_volume(&v.app, &body))
            .await
            .map_err(|err| format!("the fork could not be created: {err}"))?
            .id;
        e.fork = Some(fork.clone());
        crate::fly::steps::wait_volume(self.client, &v.app, &fork, |x| x.state == "created")
            .await?;
        let status = self
            .run_job(&v.app, &v.region, &fork, env, &mut e.machine)
            .await?;
        e.exit_code = status.exit_code;
        e.bytes = status.metadata.get(BYTES_KEY).and_then(|b| b.parse().ok());
        e.machine_secs = job_secs(self.client, &status);
        match status.exit_code {
            Some(0) => Ok(()),
            Some(code) => Err(format!(
                "the export image {} exited with status {code}",
                self.cfg.image
            )),
            None => Err("the export Machine ended without an exit status".into()),
        }
    }

    /// Creates the one-shot Machine mounting `volume` and waits for its exit.
    async fn run_job(
        &self,
        app: &str,
        region: &str,
        volume: &str,
        env: &BTreeMap<String, String>,
        machine: &mut Option<String>,
    ) -> Result<JobStatus, String> {
        let body = job_machine(region, volume, env, self.cfg, self.fleet);
        let m = retried(self.client, || self.client.create_machine(app, &body))
            .await
            .map_err(|err| format!("the export Machine could not be created: {err}"))?;
        *machine = Some(m.id.clone());
        wait_exit(self.client, app, &m.id).await
    }

    /// Destroys the job's Machine if it is still there and deletes the fork (once
    /// detached).
    async fn clean_up(&self, v: &TenantVolume, e: &Exported) -> Result<(), String> {
        if let Some(id) = &e.machine {
            destroy_machine(self.client, &v.app, id).await?;
        }
        if let Some(fork) = &e.fork {
            delete_detached(self.client, &v.app, fork)
                .await
                .map_err(|err| format!("the fork {fork} could not be deleted: {err}"))?;
        }
        Ok(())
    }

    fn cost(&self, v: &TenantVolume, e: &Exported) -> Option<JobCost> {
        let job = crate::cost::job::Job {
            region: &v.region,
            preset: PRESET,
            machine_secs: e.machine_secs,
            volume_gb: if e.fork.is_some() { v.size_gb } else { 0 },
            volume_secs: e.duration_secs,
        };
        crate::cost::job::price(self.pricing?, &job).ok()
    }
}

/// A fork's name: the volume's, marked (at most Fly's 30 characters).
fn fork_name(name: &str) -> String {
    let base: String = name.chars().take(25).collect();
    format!("{base}_exp")
}

/// The job's environment (the contract in the module doc): no credentials.
fn job_env(mode: &str, url: &str, id: &str, cfg: &ExportConfig) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        (format!("{PREFIX}MODE"), mode.to_string()),
        (format!("{PREFIX}URL"), url.to_string()),
        (format!("{PREFIX}ID"), id.to_string()),
        (format!("{PREFIX}KEEP"), cfg.keep.to_string()),
        (format!("{PREFIX}PATH"), MOUNT_PATH.to_string()),
        (
            format!("{PREFIX}ENCRYPTED"),
            cfg.encryption_key.is_some().to_string(),
        ),
    ]);
    if let Some(ep) = &cfg.endpoint {
        env.insert(format!("{PREFIX}ENDPOINT"), ep.clone());
    }
    env
}

/// The one-shot Machine's create body.
fn job_machine(
    region: &str,
    volume: &str,
    env: &BTreeMap<String, String>,
    cfg: &ExportConfig,
    fleet: &str,
) -> serde_json::Value {
    json!({
        "region": region,
        "config": {
            "image": cfg.image,
            "env": env,
            "guest": { "cpu_kind": "shared", "cpus": 1, "memory_mb": MEMORY_MB },
            "mounts": [{ "volume": volume, "path": MOUNT_PATH }],
            "auto_destroy": true,
            "restart": { "policy": "no" },
            "metadata": { "flotilla_job": "backup", "flotilla_job_fleet": fleet },
        }
    })
}

/// Runs `call` up to [`ATTEMPTS`] times while it fails (the client already retried
/// what is safe to retry), waiting longer each time.
async fn retried<T, F, Fut>(client: &Client, call: F) -> Result<T, crate::fly::client::ApiError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::fly::client::ApiError>>,
{
    let mut n = 1;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if n >= ATTEMPTS || e.is_unknown() => return Err(e),
            Err(_) => {
                client.sleep(Duration::from_secs(u64::from(2 * n))).await;
                n += 1;
            }
        }
    }
}

/// Waits (at most [`JOB_TIMEOUT_SECS`] of API time) until the Machine has exited.
async fn wait_exit(client: &Client, app: &str, id: &str) -> Result<JobStatus, String> {
    // Just created: Fly may not show it for a moment (a 404 is retried, bounded).
    client
        .get_new_machine(app, id)
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..JOB_TIMEOUT_SECS / POLL_SECS {
        let s = client
            .job_status(app, id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the export Machine {id} disappeared"))?;
        if s.exit_code.is_some() || s.state == "destroyed" || s.state == "failed" {
            return Ok(s);
        }
        client.sleep(Duration::from_secs(POLL_SECS)).await;
    }
    Err(format!(
        "the export Machine {id} did not exit within {JOB_TIMEOUT_SECS} s"
    ))
}

/// API seconds the job's Machine ran (start to exit events).
fn job_secs(client: &Client, s: &JobStatus) -> u64 {
    match (s.started_ms, s.exited_ms) {
        (Some(a), Some(b)) if b >= a => {
            let real = Duration::from_millis((b - a).unsigned_abs());
            api_secs(client, real).max(1)
        }
        _ => 0,
    }
}

/// Real time as API seconds (the simulator's time scale).
fn api_secs(client: &Client, d: Duration) -> u64 {
    (d.as_secs_f64() * client.time_scale()).round() as u64
}

async fn destroy_machine(client: &Client, app: &str, id: &str) -> Result<(), String> {
    match client.job_status(app, id).await {
        Ok(Some(s)) if s.state == "destroyed" => Ok(()),
        Ok(None) => Ok(()),
        _ => match client.delete_machine(app, id, None).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(format!(
                "the export Machine {id} could not be destroyed: {e}"
            )),
        },
    }
}

/// Deletes volume `id` once no Machine holds it.
pub(crate) async fn delete_detached(client: &Client, app: &str, id: &str) -> Result<(), String> {
    if client
        .get_volume(app, id)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Ok(());
    }
    crate::fly::steps::wait_volume(client, app, id, |v| v.attached_machine_id.is_none()).await?;
    match client.delete_volume(app, id).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sets the credentials as app secrets, deleting any of the prefix an interrupted run
/// left.
async fn set_credentials(client: &Client, app: &str, c: &Credentials) -> Result<(), String> {
    let mut values: BTreeMap<String, Option<&SecretValue>> = stale(client, app)
        .await?
        .into_iter()
        .map(|n| (n, None))
        .collect();
    for (k, v) in &c.values {
        values.insert(k.clone(), Some(v));
    }
    if values.is_empty() {
        return Ok(());
    }
    client
        .update_secrets(app, &values)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Deletes every app secret of the prefix.
async fn remove_credentials(client: &Client, app: &str) -> Result<(), String> {
    let names = stale(client, app).await?;
    if names.is_empty() {
        return Ok(());
    }
    let values: BTreeMap<String, Option<&SecretValue>> =
        names.into_iter().map(|n| (n, None)).collect();
    client
        .update_secrets(app, &values)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn stale(client: &Client, app: &str) -> Result<Vec<String>, String> {
    Ok(client
        .list_secrets(app)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| s.name)
        .filter(|n| n.starts_with(PREFIX))
        .collect())
}

/// A restore worked out but not started.
pub struct PreparedRestore {
    fleet: Fleet,
    opts: RestoreOptions,
    cfg: ExportConfig,
    creds: Credentials,
    pub volumes: Vec<TenantVolume>,
}

/// Finds the tenant's volumes and reads the credentials; changes nothing.
pub fn prepare_restore(opts: &RestoreOptions) -> Result<PreparedRestore, Error> {
    let tenants = vec![opts.tenant.clone()];
    let fleet = data::open(&opts.spec, &opts.target, &tenants, "backup restore")?;
    let cfg = fleet
        .loaded
        .desired
        .tenants
        .iter()
        .find(|t| t.name == opts.tenant)
        .and_then(|t| t.export.clone())
        .ok_or_else(|| not_configured(&opts.tenant))?;
    let volumes = fleet.volumes(&tenants);
    if volumes.is_empty() {
        return Err(Error::new(
            Diagnostic::error(format!("tenant {} has no volumes to restore", opts.tenant))
                .hint("apply the spec first"),
        ));
    }
    let creds = Credentials::read(&cfg, &fleet.loaded.dir, &opts.secret_files)
        .map_err(|e| credentials_error(&opts.tenant, &e))?;
    Ok(PreparedRestore {
        fleet,
        opts: opts.clone(),
        cfg,
        creds,
        volumes,
    })
}

impl PreparedRestore {
    pub fn org(&self) -> &str {
        &self.fleet.loaded.desired.org
    }

    pub fn export_id(&self) -> &str {
        self.opts.export.id()
    }

    pub fn source(&self, v: &TenantVolume) -> String {
        destination(&self.cfg.to, v)
    }

    /// Restores every volume under the fleet lock, one at a time.
    pub fn execute(self) -> Result<RestoreOutcome, Error> {
        let lock = self.fleet.lock(&self.opts.lock, "backup restore")?;
        let client = self.fleet.client();
        let run = Run {
            client,
            cfg: &self.cfg,
            fleet: &self.fleet.loaded.desired.fleet,
            pricing: None,
        };
        let restored = self.fleet.session.block_on(async {
            let app = self
                .volumes
                .first()
                .map(|v| v.app.clone())
                .unwrap_or_default();
            let set = set_credentials(client, &app, &self.creds).await;
            let mut out = Vec::new();
            for v in &self.volumes {
                out.push(self.restore_one(&run, v, set.as_ref().err()).await);
            }
            if let Err(e) = remove_credentials(client, &app).await
                && let Some(last) = out.last_mut()
            {
                last.error = Some(format!(
                    "the export credentials could not be removed from app {app}: {e}"
                ));
            }
            out
        });
        let warnings = self.fleet.unlock(lock).into_iter().collect();
        Ok(RestoreOutcome { restored, warnings })
    }

    async fn restore_one(
        &self,
        run: &Run<'_>,
        v: &TenantVolume,
        setup: Option<&String>,
    ) -> RestoredExport {
        let mut r = RestoredExport {
            volume: v.clone(),
            export_id: self.export_id().to_string(),
            source: self.source(v),
            new_volume: None,
            machine: v.machine.clone().unwrap_or_default(),
            old_volume: OldVolume::InUse,
            error: setup.map(|s| format!("the export credentials could not be set: {s}")),
        };
        if r.error.is_none()
            && let Err(e) = self.fill_and_swap(run, v, &mut r).await
        {
            r.error = Some(format!(
                "tenant {}, volume {} ({}): {e}",
                v.tenant, v.name, v.id
            ));
        }
        r
    }

    /// A new volume like the old one, filled by the restore job, then swapped in. A new
    /// volume that was not swapped in is deleted.
    async fn fill_and_swap(
        &self,
        run: &Run<'_>,
        v: &TenantVolume,
        r: &mut RestoredExport,
    ) -> Result<(), String> {
        let client = run.client;
        let machine = crate::ops::restore::find_machine(client, v).await?;
        r.machine = machine.id.clone();
        let new = new_volume_like(client, v).await?;
        r.new_volume = Some(new.clone());
        let filled = self.fill(run, v, &new).await;
        if let Err(e) = filled {
            return Err(match delete_detached(client, &v.app, &new).await {
                Ok(()) => {
                    r.new_volume = None;
                    format!("{e}; the new volume was removed")
                }
                Err(d) => format!("{e}; the new volume {new} could not be deleted: {d}"),
            });
        }
        let swapped = crate::ops::restore::swap_in(
            client,
            v,
            &machine,
            &new,
            self.opts.allow_data_loss,
            &mut r.old_volume,
        )
        .await;
        let Err(e) = swapped else {
            return Ok(());
        };
        Err(
            match crate::ops::restore::discard_unused(client, &v.app, &machine.id, &new).await {
                Ok(true) => {
                    r.new_volume = None;
                    format!("{e}; the new volume {new} was deleted")
                }
                Ok(false) => e,
                Err(d) => format!(
                    "{e}; the new volume {new} could not be deleted ({d}): delete it by hand"
                ),
            },
        )
    }

    async fn fill(&self, run: &Run<'_>, v: &TenantVolume, new: &str) -> Result<(), String> {
        let env = job_env("restore", &self.source(v), self.export_id(), &self.cfg);
        let mut machine = None;
        let status = run
            .run_job(&v.app, &v.region, new, &env, &mut machine)
            .await;
        if let Some(id) = &machine {
            destroy_machine(run.client, &v.app, id).await?;
        }
        match status?.exit_code {
            // The job's Machine lets go of the volume a while after it is destroyed.
            Some(0) => {
                crate::fly::steps::wait_volume(run.client, &v.app, new, |x| {
                    x.attached_machine_id.is_none()
                })
                .await
            }
            Some(code) => Err(format!(
                "the restore image {} exited with status {code} (export {})",
                self.cfg.image,
                self.export_id()
            )),
            None => Err("the restore Machine ended without an exit status".into()),
        }
    }
}

/// An empty volume like `v` (name, region, size, encryption, retention), ready.
async fn new_volume_like(client: &Client, v: &TenantVolume) -> Result<String, String> {
    let old = client
        .get_volume(&v.app, &v.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("volume {} disappeared", v.id))?;
    let mut body = json!({
        "name": old.name,
        "region": old.region,
        "size_gb": old.size_gb.max(v.size_gb),
        "encrypted": old.encrypted,
    });
    if let Some(days) = old.snapshot_retention {
        body["snapshot_retention"] = json!(days);
    }
    let id = retried(client, || client.create_volume(&v.app, &body))
        .await
        .map_err(|e| format!("the new volume could not be created: {e}"))?
        .id;
    crate::fly::steps::wait_volume(client, &v.app, &id, |x| x.state == "created").await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol() -> TenantVolume {
        TenantVolume {
            tenant: "acme".into(),
            address: "tenant.acme.volume.data[1]".parse().unwrap(),
            app: "a".into(),
            id: "vol_1".into(),
            name: "data".into(),
            region: "ams".into(),
            size_gb: 1,
            machine: None,
        }
    }

    fn cfg() -> ExportConfig {
        ExportConfig {
            to: "s3://b/acme/".into(),
            endpoint: Some("https://r2.example".into()),
            credentials: BTreeMap::from([(
                "AWS_ACCESS_KEY_ID".to_string(),
                SecretSource::Env("K".into()),
            )]),
            encryption_key: None,
            image: "img".into(),
            keep: 7,
        }
    }

    #[test]
    fn the_job_environment_follows_the_contract_and_carries_no_credentials() {
        let env = job_env("export", &destination("s3://b/acme/", &vol()), "X", &cfg());
        assert_eq!(env["FLOTILLA_BACKUP_URL"], "s3://b/acme/data-1");
        assert_eq!(env["FLOTILLA_BACKUP_KEEP"], "7");
        assert_eq!(env["FLOTILLA_BACKUP_ENDPOINT"], "https://r2.example");
        assert_eq!(env["FLOTILLA_BACKUP_ENCRYPTED"], "false");
        assert!(
            env.keys()
                .all(|k| !k.contains("CRED") && !k.contains("AWS"))
        );
        let body = job_machine("ams", "vol_f", &env, &cfg(), "default");
        assert_eq!(body["config"]["auto_destroy"], true);
        assert_eq!(body["config"]["restart"]["policy"], "no");
    }

    #[test]
    fn export_ids_sort_by_time_and_fork_names_fit() {
        let a = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(export_id(a), "20260301T120000500Z");
        assert!(export_id(a) < export_id(a + chrono::Duration::seconds(1)));
        let long = "a".repeat(30);
        assert!(fork_name(&long).len() <= 30);
        assert_eq!(fork_name("data"), "data_exp");
        assert_eq!(ExportChoice::parse("latest").id(), "latest");
    }
}
