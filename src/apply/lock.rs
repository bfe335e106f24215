//! The fleet lock: one apply at a time per fleet, kept in Fly itself.
//!
//! Every fleet has a *sentinel*: a small Machine in the app [`sentinel_app`]`(org,
//! fleet)`, created stopped (`skip_launch`) on the first apply and never started, so it
//! costs only its root filesystem. The lock is a Machine lease on it: `apply` takes the
//! lease before it observes, a background task renews it every third of its TTL while
//! the apply runs, and the apply hands it back at the end. A crashed apply's lease runs
//! out by itself after the TTL; `flotilla unlock` clears it by hand. The lease's
//! description says who holds it (`flotilla apply by HOST (CI run) since TIME`), so a
//! second apply can say whom it is waiting for.
//!
//! There is no lock server and no state file: the org is the only shared state, and a
//! lease is Fly's own compare-and-set. Different fleets have different sentinels and
//! never wait for each other; `plan` takes no lock.
//!
//! A lost response to the lease request is not retried blindly: the lease is read back
//! and recognised by the unique tag in its description (Fly returns the nonce to the
//! caller of `GET …/lease`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::fly::client::{ApiError, Client, Lease, LeaseInfo};
use crate::wire::api as fly;

pub use crate::resource::META_LOCK;
/// The sentinel Machine's name.
pub const SENTINEL_NAME: &str = "flotilla-lock";
/// The sentinel's image: never started, so only its root filesystem is billed.
pub const SENTINEL_IMAGE: &str = "docker.io/library/busybox:1.36";
/// How long the lock lasts when its holder stops renewing it (API seconds).
pub const DEFAULT_TTL: Duration = Duration::from_secs(90);
/// How long a second apply waits for the lock by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Pause between attempts while the lock is held by someone else (API time).
const WAIT_PAUSE: Duration = Duration::from_secs(3);
/// Attempts to take a free lease whose responses are all lost.
const TAKE_ATTEMPTS: u32 = 5;

/// The app holding `fleet`'s sentinel in `org`: `flotilla-lock-ORG-FLEET`, or, when that
/// is longer than an app name may be, `flotilla-lock-` and 16 hex digits of its SHA-256.
pub fn sentinel_app(org: &str, fleet: &str) -> String {
    let name = format!("flotilla-lock-{org}-{fleet}").to_ascii_lowercase();
    if crate::platform::APP_NAME.problem(&name).is_none() {
        return name;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{org}\n{fleet}").as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("flotilla-lock-{hex}")
}

/// How the lock is taken.
#[derive(Debug, Clone)]
pub struct LockOptions {
    /// The lease's lifetime when not renewed (API time; renewed every third of it).
    pub ttl: Duration,
    /// How long to wait for a lock someone else holds (zero: fail at once).
    pub timeout: Duration,
    /// Who is applying, as people should read it: host, CI run. Stored in the lease.
    pub holder: String,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            ttl: DEFAULT_TTL,
            timeout: DEFAULT_TIMEOUT,
            holder: "an unnamed host".into(),
        }
    }
}

/// Who holds a lock, as its lease says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBy {
    /// The lease's description (`flotilla apply by HOST (CI) since TIME [tag]`).
    pub description: String,
    /// Fly's idea of the taker (the token's user).
    pub owner: String,
    /// When the lease runs out unless renewed (Unix seconds).
    pub expires_at: i64,
}

impl std::fmt::Display for HeldBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = strip_tag(&self.description);
        let who = if who.is_empty() {
            format!("lease owner {}", self.owner)
        } else {
            who.to_string()
        };
        write!(f, "{who}")?;
        if let Some(t) = chrono::DateTime::from_timestamp(self.expires_at, 0) {
            write!(
                f,
                "; the lease expires at {} unless renewed",
                t.to_rfc3339()
            )?;
        }
        Ok(())
    }
}

/// The description without its trailing `[tag]`.
fn strip_tag(d: &str) -> &str {
    match d.rfind(" [") {
        Some(i) if d.ends_with(']') => &d[..i],
        _ => d,
    }
}

/// Why the lock was not taken.
#[derive(Debug, Clone)]
pub enum LockError {
    /// Someone else holds it (after waiting `waited`).
    Held {
        by: HeldBy,
        waited: Duration,
    },
    /// The sentinel app's name belongs to an app in another organization.
    Foreign {
        app: String,
    },
    /// Listing the org's apps failed (the token, the org, the API URL).
    Org(ApiError),
    Api(ApiError),
}

impl From<ApiError> for LockError {
    fn from(e: ApiError) -> Self {
        LockError::Api(e)
    }
}

/// Where a fleet's sentinel lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentinel {
    pub app: String,
    pub machine: String,
}

/// A held fleet lock. Renewed in the background until [`FleetLock::release`]; when a
/// renewal fails the lock counts as lost ([`FleetLock::lost`]).
pub struct FleetLock {
    client: Client,
    sentinel: Sentinel,
    lease: Lease,
    lost: Arc<AtomicBool>,
    lost_reason: Arc<Mutex<Option<String>>>,
    renewer: tokio::task::JoinHandle<()>,
}

impl FleetLock {
    /// Takes `fleet`'s lock in `org`, creating the sentinel on first use. While someone
    /// else holds it, `waiting` is told who (once per holder) and the attempt repeats
    /// until `opts.timeout` has passed.
    pub async fn acquire(
        client: &Client,
        org: &str,
        fleet: &str,
        opts: &LockOptions,
        waiting: &(dyn Fn(&HeldBy) + Sync),
    ) -> Result<FleetLock, LockError> {
        let description = describe(&opts.holder);
        let ttl = client.lease_ttl(opts.ttl.as_secs().max(3));
        let mut waited = Duration::ZERO;
        let mut told: Option<String> = None;
        loop {
            let sentinel = ensure_sentinel(client, org, fleet).await?;
            match take(client, &sentinel, ttl, &description).await? {
                Taken::Yes(lease) => {
                    if still_canonical(client, &sentinel, fleet).await? {
                        remove_extra_sentinels(client, &sentinel, fleet).await;
                        return Ok(FleetLock::start(client, sentinel, lease, ttl));
                    }
                    let _ = client
                        .release_lease(&sentinel.app, &sentinel.machine, &lease)
                        .await;
                }
                Taken::HeldBy(by) => {
                    if waited >= opts.timeout {
                        return Err(LockError::Held { by, waited });
                    }
                    if told.as_deref() != Some(by.description.as_str()) {
                        waiting(&by);
                        told = Some(by.description.clone());
                    }
                    client.sleep(WAIT_PAUSE).await;
                    waited += WAIT_PAUSE;
                }
            }
        }
    }

    fn start(client: &Client, sentinel: Sentinel, lease: Lease, ttl: u64) -> FleetLock {
        let lost = Arc::new(AtomicBool::new(false));
        let lost_reason = Arc::new(Mutex::new(None));
        let renewer = tokio::spawn(renew(
            client.clone(),
            sentinel.clone(),
            lease.clone(),
            ttl,
            Arc::clone(&lost),
            Arc::clone(&lost_reason),
        ));
        FleetLock {
            client: client.clone(),
            sentinel,
            lease,
            lost,
            lost_reason,
            renewer,
        }
    }

    pub fn sentinel(&self) -> &Sentinel {
        &self.sentinel
    }

    /// The lease on the sentinel (for writes to it while the lock is held).
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Set once a renewal failed: someone else may hold the lock now.
    pub fn lost(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.lost)
    }

    /// Why the lock was lost, if it was.
    pub fn lost_reason(&self) -> Option<String> {
        match self.lost_reason.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Stops renewing and hands the lease back.
    pub async fn release(self) -> Result<(), ApiError> {
        self.renewer.abort();
        self.client
            .release_lease(&self.sentinel.app, &self.sentinel.machine, &self.lease)
            .await
    }
}

impl Drop for FleetLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// The lease description: who, since when, and a unique tag to recognise it by.
fn describe(holder: &str) -> String {
    let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    format!(
        "flotilla apply by {holder} since {since} [{:016x}]",
        rand::random::<u64>()
    )
}

/// Renews every third of the TTL; a refused renewal marks the lock lost.
async fn renew(
    client: Client,
    s: Sentinel,
    lease: Lease,
    ttl: u64,
    lost: Arc<AtomicBool>,
    reason: Arc<Mutex<Option<String>>>,
) {
    let every = Duration::from_secs(ttl) / 3;
    loop {
        client.sleep(every).await;
        if let Err(e) = client.renew_lease(&s.app, &s.machine, &lease, ttl).await {
            if let Ok(mut r) = reason.lock() {
                *r = Some(format!("renewing the fleet lock failed: {e}"));
            }
            lost.store(true, Ordering::SeqCst);
            return;
        }
    }
}

enum Taken {
    Yes(Lease),
    HeldBy(HeldBy),
}

/// One attempt at the lease. A lost response is read back: the lease is ours when its
/// description is the one sent.
async fn take(
    client: &Client,
    s: &Sentinel,
    ttl: u64,
    description: &str,
) -> Result<Taken, ApiError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let e = match client
            .acquire_lease(&s.app, &s.machine, ttl, description)
            .await
        {
            Ok(l) => return Ok(Taken::Yes(l)),
            Err(e) => e,
        };
        if e.status() != Some(409) && !e.is_unknown() {
            return Err(e);
        }
        match client.get_lease(&s.app, &s.machine).await? {
            Some(info) if info.description == description => return Ok(Taken::Yes(info.lease)),
            Some(info) => return Ok(Taken::HeldBy(held_by(info))),
            // Expired or released in between: try again.
            None if attempt < TAKE_ATTEMPTS => {}
            None => return Err(e),
        }
    }
}

fn held_by(info: LeaseInfo) -> HeldBy {
    HeldBy {
        description: info.description,
        owner: info.owner,
        expires_at: info.expires_at,
    }
}

/// The fleet's sentinel Machines, oldest first (ties by ID): every applier picks the
/// same one.
fn sentinels<'a>(machines: &'a [fly::Machine], fleet: &str) -> Vec<&'a fly::Machine> {
    let mut v: Vec<&fly::Machine> = machines
        .iter()
        .filter(|m| m.config.metadata.get(META_LOCK).map(String::as_str) == Some(fleet))
        .filter(|m| !matches!(m.state.as_str(), "destroyed" | "destroying"))
        .collect();
    v.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    v
}

/// After taking the lease: is this still the sentinel everyone picks? (Two first
/// applies may both have created one.)
async fn still_canonical(client: &Client, s: &Sentinel, fleet: &str) -> Result<bool, ApiError> {
    let machines = client.list_machines(&s.app).await?;
    Ok(sentinels(&machines, fleet).first().map(|m| m.id.as_str()) == Some(s.machine.as_str()))
}

/// Destroys the sentinels two first applies made besides the one everyone picks (by the
/// holder of the lock; one another party still leases is left for later).
async fn remove_extra_sentinels(client: &Client, s: &Sentinel, fleet: &str) {
    let Ok(machines) = client.list_machines(&s.app).await else {
        return;
    };
    for m in sentinels(&machines, fleet).iter().skip(1) {
        let _ = client.delete_machine(&s.app, &m.id, None).await;
    }
}

/// The sentinel app and Machine, created when missing.
pub async fn ensure_sentinel(
    client: &Client,
    org: &str,
    fleet: &str,
) -> Result<Sentinel, LockError> {
    let app = sentinel_app(org, fleet);
    ensure_app(client, org, &app).await?;
    for _ in 0..TAKE_ATTEMPTS {
        let machines = client.list_machines(&app).await?;
        if let Some(m) = sentinels(&machines, fleet).first() {
            return Ok(Sentinel {
                app,
                machine: m.id.clone(),
            });
        }
        // Right after `ensure_app` the app may be new, and Fly may not know it yet (404).
        let body = sentinel_body(fleet);
        match client.fresh(|| client.create_machine(&app, &body)).await {
            Ok(m) => return Ok(Sentinel { app, machine: m.id }),
            // A lost response: list again, it is found by its metadata.
            Err(e) if e.is_unknown() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(LockError::Api(ApiError::Transport {
        method: "POST".into(),
        path: format!("/apps/{app}/machines"),
        cause: "the fleet's sentinel Machine could not be created".into(),
    }))
}

/// The sentinel app, in `org`: listed there, or created. A taken name that is not in
/// the org's list belongs to someone else.
async fn ensure_app(client: &Client, org: &str, app: &str) -> Result<(), LockError> {
    let in_org = |apps: Vec<fly::App>| apps.iter().any(|a| a.name == app);
    if in_org(client.list_apps(org).await.map_err(LockError::Org)?) {
        return Ok(());
    }
    match client.create_app(app, org).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_name_taken() || e.is_unknown() => {
            if in_org(client.list_apps(org).await?) {
                Ok(())
            } else if e.is_name_taken() {
                Err(LockError::Foreign { app: app.into() })
            } else {
                Err(e.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// A stopped Machine that is never started: the smallest guest, the fleet in metadata.
fn sentinel_body(fleet: &str) -> serde_json::Value {
    json!({
        "name": SENTINEL_NAME,
        "skip_launch": true,
        "config": {
            "image": SENTINEL_IMAGE,
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
            "auto_destroy": false,
            "restart": {"policy": "no"},
            "metadata": {META_LOCK: fleet},
        }
    })
}

/// What `unlock` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlocked {
    /// A lease was cleared; it said this.
    Cleared(HeldBy),
    /// Nobody held the lock.
    NotHeld,
    /// The fleet has no sentinel yet (never applied).
    NoSentinel,
}

/// Clears `fleet`'s lock, whoever holds it.
pub async fn unlock(client: &Client, org: &str, fleet: &str) -> Result<Unlocked, ApiError> {
    let app = sentinel_app(org, fleet);
    if client.get_app(&app).await?.is_none() {
        return Ok(Unlocked::NoSentinel);
    }
    let machines = client.list_machines(&app).await?;
    let ids: Vec<String> = sentinels(&machines, fleet)
        .iter()
        .map(|m| m.id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(Unlocked::NoSentinel);
    }
    let mut cleared = None;
    for id in ids {
        if let Some(info) = client.get_lease(&app, &id).await? {
            client.release_lease(&app, &id, &info.lease).await?;
            cleared.get_or_insert(held_by(info));
        }
    }
    Ok(cleared.map_or(Unlocked::NotHeld, Unlocked::Cleared))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_names_are_app_names() {
        assert_eq!(sentinel_app("acme", "jarvis"), "flotilla-lock-acme-jarvis");
        let long = sentinel_app(&"o".repeat(40), &"f".repeat(40));
        assert!(
            long.starts_with("flotilla-lock-") && long.len() == 30,
            "{long}"
        );
        assert!(crate::platform::APP_NAME.problem(&long).is_none());
        assert_ne!(long, sentinel_app(&"o".repeat(40), &"g".repeat(40)));
    }

    #[test]
    fn holders_are_shown_without_their_tag() {
        let by = HeldBy {
            description:
                "flotilla apply by ci-7 (https://ci/run/9) since 2026-01-01T00:00:00Z [00ff]".into(),
            owner: "me@example.com".into(),
            expires_at: 1_767_225_690,
        };
        let shown = by.to_string();
        assert!(shown.starts_with("flotilla apply by ci-7 (https://ci/run/9) since 2026-01-01T00:00:00Z; the lease expires at 2026-01-01T00:01:30"), "{shown}");
        let anon = HeldBy {
            description: String::new(),
            ..by
        };
        assert!(anon.to_string().starts_with("lease owner me@example.com"));
    }

    #[test]
    fn every_applier_picks_the_oldest_sentinel() {
        let m = |id: &str, at: &str, fleet: &str| {
            let mut m = fly::Machine {
                id: id.into(),
                created_at: Some(at.into()),
                state: "created".into(),
                ..Default::default()
            };
            m.config.metadata.insert(META_LOCK.into(), fleet.into());
            m
        };
        let ms = vec![
            m("b", "2", "f"),
            m("a", "2", "f"),
            m("c", "1", "g"),
            m("d", "3", "f"),
        ];
        let ids: Vec<&str> = sentinels(&ms, "f").iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "d"]);
    }
}
