//! `/v1/apps/{app}/machines`: create, list, get, update, delete, lifecycle actions,
//! wait, leases, metadata and events.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{
    AppState, Entity, Pairs, check_lease, check_not_destroyed, check_region, lease_nonce, ok_json,
    ok_serialized, ok_true, query, query_flag, status_json, with_entity,
};
use crate::sim::clock::now_ms;
use crate::sim::error::{ApiError, ApiResult, parse_body, parse_optional_body};
use crate::sim::model::{
    CreateMachineRequest, LeaseRequest, MetadataValue, StopRequest, UpdateMetadataRequest,
};
use crate::sim::normalize::{image_ref, normalize_config};
use crate::sim::ratelimit::Action;
use crate::sim::server::{Sim, lock};
use crate::sim::world::{App, Lease, Machine, MachineState as S, Timing};

type MachinePath = Path<(String, String)>;

/// A lifecycle action: rate limit, lease check, then `f` on the Machine.
fn action(
    sim: &Sim,
    act: Action,
    (app, id): (String, String),
    headers: &HeaderMap,
    f: impl FnOnce(&mut Machine, i64, &Timing) -> Result<Response, ApiError>,
) -> ApiResult {
    sim.rate_limit(act, &id)?;
    let resp = with_entity(sim, &app, Entity::Machine, &id, |a, t| {
        let m = a.machine_mut(&id)?;
        check_lease(m, headers)?;
        check_not_destroyed(m)?;
        f(m, t, &sim.timing)
    })?;
    sim.mutated();
    Ok(resp)
}

/// Longest lease a request may ask for, in seconds.
const MAX_LEASE_TTL_SECS: u64 = 3600;

/// A lease TTL (`field`: the lease endpoint's `ttl`, or `lease_ttl` on create) is
/// 1 to 3600 seconds; anything else is a 400.
fn check_lease_ttl(field: &str, ttl: u64) -> Result<(), ApiError> {
    if ttl == 0 || ttl > MAX_LEASE_TTL_SECS {
        return Err(ApiError::bad_request(format!(
            "invalid {field} {ttl}: expected 1 to {MAX_LEASE_TTL_SECS} seconds"
        )));
    }
    Ok(())
}

fn busy(m: &Machine) -> ApiError {
    ApiError::conflict(format!(
        "machine {} is {}; retry once it settles",
        m.id,
        m.state.as_str()
    ))
}

/// Attaches `vol` to `machine_id` (clearing any pending detach).
fn attach(a: &mut App, vol: Option<&str>, machine_id: &str) {
    if let Some(v) = vol.and_then(|v| a.volumes.get_mut(v)) {
        v.attached_machine_id = Some(machine_id.to_string());
        v.detach_at_ms = None;
    }
}

pub(crate) async fn create(
    State(sim): AppState,
    Path(app): Path<String>,
    body: Bytes,
) -> ApiResult {
    let req: CreateMachineRequest = parse_body(&body)?;
    sim.rate_limit(Action::MachineCreate, &app)?;
    sim.check_visible(&app, None)?;
    let config = req
        .config
        .ok_or_else(|| ApiError::bad_request("config is required"))?;
    let region = req.region.unwrap_or_else(|| sim.default_region.clone());
    check_region(&region)?;
    if let Some(ttl) = req.lease_ttl {
        check_lease_ttl("lease_ttl", ttl)?;
    }
    if let Some(name) = &req.name
        && let Some(problem) = crate::platform::machine_name_problem(name)
    {
        return Err(ApiError::bad_request(format!(
            "invalid machine name {name:?}: {problem}"
        )));
    }
    let t = now_ms();
    let mut world = sim.world();
    world.app_mut(&app)?;
    super::platform::check_room(&sim, &world, &region, &config)?;
    let a = world.app_mut(&app)?;
    sim.check_machine_capacity(&region, config.mounted_volume().is_some())?;
    if let Some(vol) = config.mounted_volume().map(str::to_string) {
        a.advance_volume(&vol, t, &sim.timing);
    }
    let config = normalize_config(config, a, &region, None)?;
    let (id, instance_id, private_ip, name, nonce) = {
        let mut ids = lock(&sim.ids);
        let mut id = ids.machine_id();
        while a.machines.contains_key(&id) {
            id = ids.machine_id();
        }
        let name = req.name.clone().unwrap_or_else(|| ids.machine_name());
        (id, ids.instance_id(), ids.private_ip(), name, ids.nonce())
    };
    let seq = a.seq();
    let mut m = Machine {
        id: id.clone(),
        name,
        region,
        instance_id: instance_id.clone(),
        private_ip,
        created_at_ms: t,
        updated_at_ms: t,
        seq,
        state: S::Created,
        steps: Default::default(),
        image_ref: image_ref(config.image.as_deref().unwrap_or_default()),
        config,
        events: Vec::new(),
        cordoned: req.skip_service_registration.unwrap_or(false),
        lease: None,
        secrets_seen: None,
        idle_at_ms: None,
        boot_fails: false,
        starts: 0,
        job_fails: false,
        event_seq: 0,
        last_event_ms: 0,
        versions: Vec::new(),
        version_at_ms: None,
        exit_signal: None,
        job: None,
        finished_job: None,
    };
    m.boot_fails = sim.boot_fails(&m.config);
    m.job_fails = sim.job_fails(&m.config);
    if m.config.is_one_shot() {
        match super::jobs::job_of(&mut world, &app, &m.config) {
            Ok(job) => m.job = job,
            // The image would find nothing to restore: it exits with a failure.
            Err(()) => m.job_fails = true,
        }
    }
    let a = world.app_mut(&app)?;
    m.event("launch", "created", "user", t);
    if m.config.is_standby() {
        // A standby is made and stays stopped until its primary's host fails.
        m.schedule(t, S::Created, &[(sim.timing.create, S::Stopped)]);
    } else if !req.skip_launch.unwrap_or(false) {
        let tm = &sim.timing;
        m.schedule(
            t,
            S::Created,
            &[(tm.create, S::Starting), (tm.start, S::Started)],
        );
    }
    if let Some(ttl) = req.lease_ttl {
        m.lease = Some(Lease {
            nonce: nonce.clone(),
            owner: "flotilla-sim".into(),
            description: String::new(),
            expires_at_ms: t.saturating_add(sim.scale.secs_ms(ttl as f64)),
            version: instance_id,
        });
    }
    let mut view = m.view();
    if m.lease.is_some() {
        view.nonce = Some(&nonce);
    }
    let out = ok_serialized(&view)?;
    let vol = m.config.mounted_volume().map(str::to_string);
    a.insert_machine(m);
    attach(a, vol.as_deref(), &id);
    drop(world);
    sim.created(&app, Some(&id));
    sim.mutated();
    Ok(out)
}

pub(crate) async fn list(State(sim): AppState, Path(app): Path<String>, q: Pairs) -> ApiResult {
    let include_deleted = query_flag(&q, "include_deleted")?;
    let region = query(&q, "region").filter(|r| !r.is_empty());
    let meta: Vec<(&str, &str)> = q
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("metadata.").map(|k| (k, v.as_str())))
        .collect();
    sim.rate_limit(Action::MachineList, &app)?;
    let t = now_ms();
    let mut world = sim.world();
    let a = world.app_mut(&app)?;
    let ids: Vec<String> = a.machines.keys().cloned().collect();
    for id in &ids {
        a.advance_machine(id, t, &sim.timing);
    }
    let mut selected: Vec<&Machine> = a
        .machines
        .values()
        .filter(|m| include_deleted || m.state != S::Destroyed)
        .filter(|m| region.is_none_or(|r| m.region == r))
        .filter(|m| {
            meta.iter().all(|(k, v)| {
                m.config
                    .metadata
                    .as_ref()
                    .and_then(|md| md.get(*k))
                    .is_some_and(|x| x == v)
            })
        })
        .collect();
    selected.sort_by_key(|m| m.seq);
    let views: Vec<_> = selected.iter().map(|m| m.view()).collect();
    ok_serialized(&views)
}

pub(crate) async fn get(State(sim): AppState, Path((app, id)): MachinePath) -> ApiResult {
    sim.rate_limit(Action::MachineGet, &id)?;
    sim.check_visible(&app, Some(&id))?;
    with_entity(&sim, &app, Entity::Machine, &id, |a, _| {
        ok_serialized(&a.machine_mut(&id)?.view())
    })
}

/// Full-config update: a new `instance_id`, and a restart of a running Machine.
pub(crate) async fn update(
    State(sim): AppState,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req: CreateMachineRequest = parse_body(&body)?;
    sim.rate_limit(Action::MachineUpdate, &id)?;
    let out = with_entity(&sim, &app, Entity::Machine, &id, |a, t| {
        let (region, old_vol) = {
            let m = a.machine_mut(&id)?;
            check_lease(m, &headers)?;
            check_not_destroyed(m)?;
            if matches!(m.state, S::Replacing | S::Stopping | S::Suspending) {
                return Err(busy(m));
            }
            if let Some(cv) = req.current_version.as_deref().filter(|v| !v.is_empty())
                && cv != m.instance_id
            {
                return Err(ApiError::precondition(format!(
                    "current_version {cv} does not match the machine's version {}",
                    m.instance_id
                )));
            }
            if let Some(r) = req.region.as_deref().filter(|r| !r.is_empty())
                && r != m.region
            {
                return Err(ApiError::bad_request(
                    "region cannot be changed; create a new machine in the other region",
                ));
            }
            if let Some(n) = req.name.as_deref().filter(|n| !n.is_empty())
                && n != m.name
            {
                return Err(ApiError::bad_request("name cannot be changed"));
            }
            (
                m.region.clone(),
                m.config.mounted_volume().map(str::to_string),
            )
        };
        let config = req
            .config
            .clone()
            .ok_or_else(|| ApiError::bad_request("config is required"))?;
        if let Some(vol) = config.mounted_volume().map(str::to_string) {
            a.advance_volume(&vol, t, &sim.timing);
        }
        let config = normalize_config(config, a, &region, Some(&id))?;
        let new_vol = config.mounted_volume().map(str::to_string);
        let version = a.secrets_version;
        let instance_id = lock(&sim.ids).instance_id();
        let tm = &sim.timing;
        let m = a.machine_mut(&id)?;
        m.image_ref = image_ref(config.image.as_deref().unwrap_or_default());
        m.boot_fails = sim.boot_fails(&config);
        m.job_fails = sim.job_fails(&config);
        m.new_version(instance_id, config, t);
        m.updated_at_ms = t;
        if let Some(c) = req.skip_service_registration {
            m.cordoned = c;
        }
        m.event("update", "replacing", "user", t);
        match m.state {
            S::Started | S::Starting => m.schedule(
                t,
                S::Replacing,
                &[(tm.replace, S::Starting), (tm.start, S::Started)],
            ),
            _ if req.skip_launch.unwrap_or(false) || m.config.is_standby() => {
                // The new version captures the secrets of now, and boots with them later.
                m.secrets_seen = Some(version);
                if m.state == S::Suspended {
                    m.schedule(t, S::Stopped, &[]);
                }
            }
            _ => m.schedule(t, S::Starting, &[(tm.start, S::Started)]),
        }
        let out = ok_serialized(&m.view())?;
        if old_vol != new_vol {
            if let Some(old) = old_vol {
                a.start_detach(&id, t);
                a.advance_volume(&old, t, &sim.timing);
            }
            attach(a, new_vol.as_deref(), &id);
        }
        Ok(out)
    })?;
    sim.mutated();
    Ok(out)
}

pub(crate) async fn delete(
    State(sim): AppState,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    q: Pairs,
) -> ApiResult {
    let force = query_flag(&q, "force")? || query_flag(&q, "kill")?;
    sim.rate_limit(Action::MachineDelete, &id)?;
    let resp = with_entity(&sim, &app, Entity::Machine, &id, |a, t| {
        let m = a.machine_mut(&id)?;
        if m.state == S::Destroyed {
            return Err(ApiError::machine_not_found());
        }
        check_lease(m, &headers)?;
        check_not_destroyed(m)?;
        if m.state.is_active() && !force {
            return Err(ApiError::precondition(
                "unable to destroy machine, not currently stopped, suspended or created; stop it first or pass force=true",
            ));
        }
        m.event("destroy", "destroying", "user", t);
        m.lease = None;
        m.schedule(t, S::Destroying, &[(sim.timing.destroy, S::Destroyed)]);
        a.track_destroy(&id);
        Ok(ok_true())
    })?;
    sim.mutated();
    Ok(resp)
}

pub(crate) async fn start(
    State(sim): AppState,
    Path(p): MachinePath,
    headers: HeaderMap,
) -> ApiResult {
    action(&sim, Action::MachineStart, p, &headers, |m, t, tm| {
        let previous = m.state;
        let boot = match previous {
            S::Created | S::Stopped | S::Failed => tm.start,
            S::Suspended => tm.resume,
            S::Started | S::Starting | S::Replacing => {
                return Err(ApiError::precondition(
                    "machine still active, refusing to start",
                ));
            }
            _ => return Err(busy(m)),
        };
        m.event("start", "starting", "user", t);
        m.boot_fails = sim.boot_fails(&m.config);
        m.job_fails = sim.job_fails(&m.config);
        m.schedule(t, S::Starting, &[(boot, S::Started)]);
        // The simulator never moves a Machine to another host on start.
        Ok(ok_json(json!({
            "previous_state": previous.as_str(),
            "migrated": false,
            "new_host": "",
        })))
    })
}

pub(crate) async fn stop(
    State(sim): AppState,
    Path(p): MachinePath,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let req: StopRequest = parse_optional_body(&body)?;
    req.check()?;
    action(&sim, Action::MachineStop, p, &headers, |m, t, tm| {
        match m.state {
            S::Started | S::Starting | S::Replacing | S::Suspending => {
                m.event("stop", "stopping", "user", t);
                m.schedule(t, S::Stopping, &[(tm.stop, S::Stopped)]);
            }
            S::Suspended => {
                m.event("exit", "stopped", "user", t);
                m.schedule(t, S::Stopped, &[]);
            }
            _ => {}
        }
        Ok(ok_true())
    })
}

pub(crate) async fn suspend(
    State(sim): AppState,
    Path(p): MachinePath,
    headers: HeaderMap,
) -> ApiResult {
    action(&sim, Action::MachineSuspend, p, &headers, |m, t, tm| {
        match m.state {
            S::Started => {
                let mem = m.config.memory_mb();
                if mem > crate::platform::SUSPEND_MAX_MEMORY_MB {
                    return Err(ApiError::precondition(format!(
                        "machine has {mem} MB of memory; suspend supports at most {} MB",
                        crate::platform::SUSPEND_MAX_MEMORY_MB
                    )));
                }
                m.event("suspend", "suspending", "user", t);
                m.schedule(t, S::Suspending, &[(tm.suspend, S::Suspended)]);
            }
            S::Suspended | S::Suspending => {}
            _ => {
                return Err(ApiError::precondition(format!(
                    "machine is {}, only a started machine can be suspended",
                    m.state.as_str()
                )));
            }
        }
        Ok(ok_true())
    })
}

pub(crate) async fn restart(
    State(sim): AppState,
    Path(p): MachinePath,
    headers: HeaderMap,
) -> ApiResult {
    action(&sim, Action::MachineRestart, p, &headers, |m, t, tm| {
        if m.state != S::Started {
            return Err(ApiError::precondition(format!(
                "machine is {}, only a started machine can be restarted",
                m.state.as_str()
            )));
        }
        m.event("restart", "stopping", "user", t);
        m.boot_fails = sim.boot_fails(&m.config);
        m.job_fails = sim.job_fails(&m.config);
        m.schedule(
            t,
            S::Stopping,
            &[(tm.stop, S::Starting), (tm.start, S::Started)],
        );
        Ok(ok_true())
    })
}

pub(crate) async fn cordon(
    State(sim): AppState,
    Path(p): MachinePath,
    headers: HeaderMap,
) -> ApiResult {
    action(&sim, Action::MachineCordon, p, &headers, |m, t, _| {
        m.cordoned = true;
        m.updated_at_ms = t;
        Ok(ok_true())
    })
}

pub(crate) async fn uncordon(
    State(sim): AppState,
    Path(p): MachinePath,
    headers: HeaderMap,
) -> ApiResult {
    action(&sim, Action::MachineUncordon, p, &headers, |m, t, _| {
        m.cordoned = false;
        m.updated_at_ms = t;
        Ok(ok_true())
    })
}

/// Longest wait a single request may ask for, in (simulated) seconds; Fly refuses
/// more (`range [1s, 1m0s]`) and reads 0 (or no timeout) as this default.
const MAX_WAIT_SECS: u64 = 60;

/// What a wait request waits for.
#[derive(Debug)]
struct WaitFor {
    states: Vec<S>,
    /// The `instance_id` (or `version`) the wait is about.
    version: Option<String>,
    /// Only state changes recorded after this event count.
    from_event: Option<String>,
    timeout: u64,
}

/// The states a `state` value stands for: one, or for `settled` every state a Machine
/// rests in (no transition under way).
fn wait_state(s: &str) -> Result<&'static [S], ApiError> {
    match s {
        "started" => Ok(&[S::Started]),
        "stopped" => Ok(&[S::Stopped]),
        "suspended" => Ok(&[S::Suspended]),
        "destroyed" => Ok(&[S::Destroyed]),
        "failed" => Ok(&[S::Failed]),
        "settled" => Ok(SETTLED),
        other => Err(ApiError::bad_request(format!(
            "invalid state {other:?}: expected started, stopped, suspended, destroyed, failed or settled"
        ))),
    }
}

/// The states `state=settled` waits for.
const SETTLED: &[S] = &[
    S::Started,
    S::Stopped,
    S::Suspended,
    S::Failed,
    S::Destroyed,
];

fn wait_timeout(q: &[(String, String)]) -> Result<u64, ApiError> {
    let Some(s) = query(q, "timeout").filter(|s| !s.is_empty()) else {
        return Ok(MAX_WAIT_SECS);
    };
    let secs = s
        .strip_suffix('s')
        .unwrap_or(s)
        .parse::<u64>()
        .map_err(|_| ApiError::bad_request(format!("invalid timeout {s:?}: expected seconds")))?;
    match secs {
        0 => Ok(MAX_WAIT_SECS),
        1..=MAX_WAIT_SECS => Ok(secs),
        _ => Err(ApiError::bad_request(format!(
            "invalid_argument: invalid timeout {s}: must be in range [1s, 1m0s]"
        ))),
    }
}

/// Reads the wait query: every `state` (repeated or comma-separated; any of them
/// satisfies), `instance_id`/`version`, `from_event_id` and `timeout`.
fn wait_for(q: &[(String, String)]) -> Result<WaitFor, ApiError> {
    let mut states = Vec::new();
    let mut stopped_asked = false;
    for (_, v) in q.iter().filter(|(k, _)| k == "state") {
        for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            states.extend_from_slice(wait_state(s)?);
            stopped_asked |= s == "stopped";
        }
    }
    if states.is_empty() {
        states.push(S::Started);
    }
    let instance = query(q, "instance_id").filter(|s| !s.is_empty());
    let version = query(q, "version").filter(|s| !s.is_empty());
    if let (Some(i), Some(v)) = (instance, version)
        && i != v
    {
        return Err(ApiError::bad_request(format!(
            "instance_id {i:?} and version {v:?} disagree"
        )));
    }
    let version = instance.or(version).map(str::to_string);
    if stopped_asked && version.is_none() {
        return Err(ApiError::bad_request(
            "invalid_argument: instance_id is required when waiting for the stopped state",
        ));
    }
    let from_event = query(q, "from_event_id").filter(|s| !s.is_empty());
    if let Some(e) = from_event
        && (e.len() != 26 || !e.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return Err(ApiError::bad_request(format!(
            "invalid from_event_id {e:?}: expected an event id"
        )));
    }
    Ok(WaitFor {
        states,
        version,
        from_event: from_event.map(|e| e.to_ascii_uppercase()),
        timeout: wait_timeout(q)?,
    })
}

/// The event a Machine records on entering `state`.
fn entry_event(state: S) -> (&'static str, &'static str) {
    match state {
        S::Started => ("start", "started"),
        S::Stopped => ("exit", "stopped"),
        S::Suspended => ("suspend", "suspended"),
        S::Failed => ("exit", "failed"),
        _ => ("destroy", "destroyed"),
    }
}

/// What a satisfied wait answers (Fly's `WaitMachineResponse`).
fn wait_answer(state: &str, version: &str, event_id: &str) -> Value {
    json!({ "ok": true, "state": state, "version": version, "event_id": event_id })
}

/// The answer if the Machine satisfies the wait now, `None` if not yet; an error when
/// it never can.
fn wait_satisfied(m: &Machine, w: &WaitFor) -> Result<Option<Value>, ApiError> {
    let newest = m.events.first().map_or("", |e| e.id.as_str());
    if let Some(v) = &w.version
        && *v != m.instance_id
    {
        if !m.is_past_version(v) {
            return Err(ApiError::bad_request(format!(
                "invalid instance_id {v:?}: not a version of machine {}",
                m.id
            )));
        }
        // That version was replaced: it stopped for good.
        if w.states.contains(&S::Stopped) {
            return Ok(Some(wait_answer("stopped", v, newest)));
        }
        return Err(ApiError::precondition(format!(
            "machine {} now runs version {}, not {v}",
            m.id, m.instance_id
        )));
    }
    let Some(from) = &w.from_event else {
        let reached = w.states.contains(&m.state);
        return Ok(reached.then(|| wait_answer(m.state.as_str(), &m.instance_id, newest)));
    };
    // Events are newest first: the earliest matching change after `from` answers.
    let hit = m.events.iter().rev().find_map(|e| {
        let after = !e.id.is_empty() && e.id.as_str() > from.as_str();
        let state = w.states.iter().find(|s| {
            let (kind, status) = entry_event(**s);
            e.kind == kind && e.status == status
        });
        state.filter(|_| after).map(|s| (*s, e.id.as_str()))
    });
    Ok(hit.map(|(state, id)| wait_answer(state.as_str(), &m.instance_id, id)))
}

fn wait_timed_out(id: &str, w: &WaitFor) -> ApiError {
    let names: Vec<&str> = w.states.iter().map(|s| s.as_str()).collect();
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "deadline_exceeded: machine {id} did not reach state {} within {}s",
            names.join(" or "),
            w.timeout
        ),
    )
}

/// Blocks until the Machine satisfies the wait (see [`wait_for`]) or `timeout` seconds
/// (simulated) pass: then 408.
pub(crate) async fn wait(
    State(sim): AppState,
    Path((app, id)): MachinePath,
    q: Pairs,
) -> ApiResult {
    let w = wait_for(&q)?;
    sim.rate_limit(Action::MachineWait, &id)?;
    sim.check_visible(&app, Some(&id))?;
    let deadline =
        tokio::time::Instant::now() + sim.scale.real(std::time::Duration::from_secs(w.timeout));
    let mut shutdown = sim.shutdown.clone();
    loop {
        let notified = sim.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (answer, next_change) = with_entity(&sim, &app, Entity::Machine, &id, |a, _| {
            let m = a.machine_mut(&id)?;
            Ok((wait_satisfied(m, &w)?, m.next_change_ms()))
        })?;
        if let Some(answer) = answer {
            return Ok(ok_json(answer));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(wait_timed_out(&id, &w));
        }
        let until_change = next_change
            .map(|at| std::time::Duration::from_millis((at - now_ms()).max(0) as u64 + 1))
            .unwrap_or(std::time::Duration::from_secs(3600));
        let wake = tokio::time::Instant::now()
            .checked_add(until_change)
            .map_or(deadline, |w| w.min(deadline));
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(wake) => {}
            _ = shutdown.changed() => {
                return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "simulator is shutting down"));
            }
        }
    }
}

pub(crate) async fn events(State(sim): AppState, Path((app, id)): MachinePath) -> ApiResult {
    sim.rate_limit(Action::MachineEvents, &id)?;
    let out = with_entity(&sim, &app, Entity::Machine, &id, |a, _| {
        Ok(serde_json::to_value(&a.machine_mut(&id)?.events).unwrap_or(Value::Null))
    })?;
    Ok(ok_json(out))
}

pub(crate) async fn lease_get(State(sim): AppState, Path((app, id)): MachinePath) -> ApiResult {
    sim.rate_limit(Action::LeaseGet, &id)?;
    let out = with_entity(&sim, &app, Entity::Machine, &id, |a, _| {
        a.machine_mut(&id)?
            .lease_json()
            .ok_or_else(|| ApiError::not_found("lease not found"))
    })?;
    Ok(ok_json(out))
}

/// Acquires a lease (`ttl` in the body or the query, seconds), or refreshes the one
/// whose nonce the request carries. 409 when another party holds it.
pub(crate) async fn lease_create(
    State(sim): AppState,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
    q: Pairs,
    body: Bytes,
) -> ApiResult {
    let req: LeaseRequest = parse_optional_body(&body)?;
    let ttl =
        match query(&q, "ttl") {
            Some(s) => Some(s.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid ttl {s:?}: expected seconds"))
            })?),
            None => req.ttl,
        }
        .unwrap_or(sim.default_lease_ttl);
    check_lease_ttl("ttl", ttl)?;
    sim.rate_limit(Action::LeaseCreate, &id)?;
    let out = with_entity(&sim, &app, Entity::Machine, &id, |a, t| {
        let nonce = lock(&sim.ids).nonce();
        let m = a.machine_mut(&id)?;
        check_not_destroyed(m)?;
        let expires = t.saturating_add(sim.scale.secs_ms(ttl as f64));
        match &mut m.lease {
            Some(l) if lease_nonce(&headers) == Some(l.nonce.as_str()) => {
                l.expires_at_ms = expires;
            }
            Some(l) => {
                return Err(ApiError::conflict(format!(
                    "lease currently held by {}, expires at {}",
                    l.owner,
                    crate::sim::clock::rfc3339_secs(l.expires_at_ms)
                )));
            }
            None => {
                m.lease = Some(Lease {
                    nonce,
                    owner: "flotilla-sim".into(),
                    description: req.description.clone().unwrap_or_default(),
                    expires_at_ms: expires,
                    version: m.instance_id.clone(),
                });
            }
        }
        Ok(m.lease_json().unwrap_or(Value::Null))
    })?;
    sim.mutated();
    // Fly's document answers a lease create (or refresh) with 201 Created.
    Ok(status_json(StatusCode::CREATED, out))
}

pub(crate) async fn lease_release(
    State(sim): AppState,
    Path((app, id)): MachinePath,
    headers: HeaderMap,
) -> ApiResult {
    sim.rate_limit(Action::LeaseRelease, &id)?;
    with_entity(&sim, &app, Entity::Machine, &id, |a, _| {
        let m = a.machine_mut(&id)?;
        let Some(lease) = &m.lease else {
            return Err(ApiError::not_found("lease not found"));
        };
        match lease_nonce(&headers) {
            None => Err(ApiError::bad_request(format!(
                "the {} header is required to release a lease",
                super::LEASE_HEADER
            ))),
            Some(n) if n != lease.nonce => Err(ApiError::precondition("lease nonce mismatch")),
            Some(_) => {
                m.lease = None;
                Ok(())
            }
        }
    })?;
    sim.mutated();
    Ok(ok_json(
        json!({ "status": "success", "data": { "ok": true } }),
    ))
}

pub(crate) async fn metadata_get(State(sim): AppState, Path((app, id)): MachinePath) -> ApiResult {
    sim.rate_limit(Action::MetadataGet, &id)?;
    let out = with_entity(&sim, &app, Entity::Machine, &id, |a, _| {
        let m = a.machine_mut(&id)?;
        Ok(json!(m.config.metadata.clone().unwrap_or_default()))
    })?;
    Ok(ok_json(out))
}

fn check_metadata_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > 256 || key.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::bad_request(format!(
            "invalid metadata key {key:?}"
        )));
    }
    Ok(())
}

/// Sets one metadata key without restarting the Machine.
pub(crate) async fn metadata_set(
    State(sim): AppState,
    Path((app, id, key)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult {
    check_metadata_key(&key)?;
    let value: MetadataValue = parse_body(&body)?;
    sim.rate_limit(Action::MetadataSet, &id)?;
    with_entity(&sim, &app, Entity::Machine, &id, |a, t| {
        let m = a.machine_mut(&id)?;
        check_not_destroyed(m)?;
        m.config
            .metadata
            .get_or_insert_with(Default::default)
            .insert(key.clone(), value.value.clone());
        m.updated_at_ms = t;
        Ok(())
    })?;
    sim.mutated();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET …/metadata/{key}`: `{"value"}`, or 404 when the key is not set.
pub(crate) async fn metadata_get_key(
    State(sim): AppState,
    Path((app, id, key)): Path<(String, String, String)>,
) -> ApiResult {
    check_metadata_key(&key)?;
    sim.rate_limit(Action::MetadataGet, &id)?;
    let value = with_entity(&sim, &app, Entity::Machine, &id, |a, _| {
        let m = a.machine_mut(&id)?;
        Ok(m.config
            .metadata
            .as_ref()
            .and_then(|md| md.get(&key).cloned()))
    })?;
    match value {
        Some(v) => Ok(ok_json(json!({ "value": v }))),
        None => Err(ApiError::not_found(format!(
            "metadata key {key:?} not found"
        ))),
    }
}

/// `PATCH …/metadata` (and its deprecated `PUT` alias): sets several keys at once; a
/// `null` or empty value removes its key, keys not named are left alone. A
/// `machine_version` that is no longer the Machine's answers 412.
pub(crate) async fn metadata_update(
    State(sim): AppState,
    Path((app, id)): MachinePath,
    body: Bytes,
) -> ApiResult {
    let req: UpdateMetadataRequest = parse_body(&body)?;
    for key in req.metadata.keys() {
        check_metadata_key(key)?;
    }
    sim.rate_limit(Action::MetadataSet, &id)?;
    with_entity(&sim, &app, Entity::Machine, &id, |a, t| {
        let m = a.machine_mut(&id)?;
        check_not_destroyed(m)?;
        if let Some(v) = req.machine_version.as_deref().filter(|v| !v.is_empty())
            && v != m.instance_id
        {
            return Err(ApiError::precondition(format!(
                "machine {id} is at version {}, not {v}",
                m.instance_id
            )));
        }
        let md = m.config.metadata.get_or_insert_with(Default::default);
        for (key, value) in &req.metadata {
            match value.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => md.insert(key.clone(), v.to_string()),
                None => md.remove(key),
            };
        }
        if md.is_empty() {
            m.config.metadata = None;
        }
        m.updated_at_ms = t;
        Ok(())
    })?;
    sim.mutated();
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) async fn metadata_delete(
    State(sim): AppState,
    Path((app, id, key)): Path<(String, String, String)>,
) -> ApiResult {
    check_metadata_key(&key)?;
    sim.rate_limit(Action::MetadataDelete, &id)?;
    with_entity(&sim, &app, Entity::Machine, &id, |a, t| {
        let m = a.machine_mut(&id)?;
        check_not_destroyed(m)?;
        if let Some(md) = &mut m.config.metadata {
            md.remove(&key);
            if md.is_empty() {
                m.config.metadata = None;
            }
        }
        m.updated_at_ms = t;
        Ok(())
    })?;
    sim.mutated();
    Ok(StatusCode::NO_CONTENT.into_response())
}
