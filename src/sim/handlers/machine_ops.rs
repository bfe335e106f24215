//! The Machine operations that look inside a Machine: `exec` (answered by a
//! configurable responder, since nothing really runs), `ps`, `signal` and the version
//! history (`versions`), plus the `/__sim/exec` control that sets what `exec` answers.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::put;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AppState, Entity, Pairs, check_not_destroyed, ok_json, ok_true, query, with_entity};
use crate::sim::clock::rfc3339_secs;
use crate::sim::error::{ApiError, ApiResult, parse_body, parse_optional_body};
use crate::sim::gotypes;
use crate::sim::ratelimit::Action;
use crate::sim::server::{Sim, lock};
use crate::sim::world::{Machine, MachineState as S};

type MachinePath = Path<(String, String)>;

/// What `exec` answers for one command (or any command) on one app or Machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecRule {
    pub app: String,
    /// Only this Machine; `None`: every Machine of the app.
    #[serde(default)]
    pub machine_id: Option<String>,
    /// The command, its words joined by single spaces; `None`: any command.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    #[serde(default)]
    pub exit_code: i32,
}

/// The rules `exec` answers from. Without a matching rule a command succeeds with
/// exit code 0 and no output.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecResponder {
    rules: Vec<ExecRule>,
}

impl ExecResponder {
    /// Adds `rule`, replacing the one with the same app, Machine and command.
    pub fn set(&mut self, rule: ExecRule) {
        self.rules.retain(|r| {
            (&r.app, &r.machine_id, &r.command) != (&rule.app, &rule.machine_id, &rule.command)
        });
        self.rules.push(rule);
    }

    /// The most specific rule: this Machine and command, this Machine, this app and
    /// command, this app.
    pub fn answer(&self, app: &str, machine: &str, command: &str) -> Option<&ExecRule> {
        let rank = |r: &ExecRule| -> Option<u8> {
            if r.app != app {
                return None;
            }
            let on_machine = match r.machine_id.as_deref() {
                Some(m) if m == machine => true,
                Some(_) => return None,
                None => false,
            };
            let exact = match r.command.as_deref() {
                Some(c) if c == command => true,
                Some(_) => return None,
                None => false,
            };
            Some(u8::from(on_machine) * 2 + u8::from(exact))
        };
        self.rules
            .iter()
            .filter_map(|r| rank(r).map(|k| (k, r)))
            .max_by_key(|(k, _)| *k)
            .map(|(_, r)| r)
    }
}

/// `MachineExecRequest`: `command` (argv) or the deprecated `cmd` (one string).
#[derive(Debug, Default, Deserialize)]
struct ExecRequest {
    #[serde(default)]
    cmd: Option<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    /// Seconds; validated, never reached (commands answer at once).
    #[serde(default)]
    timeout: Option<u64>,
}

/// Longest `exec` timeout accepted, in seconds.
const MAX_EXEC_TIMEOUT_SECS: u64 = 3600;

impl ExecRequest {
    fn command_line(&self) -> Result<String, ApiError> {
        let line = match (&self.command, &self.cmd) {
            (Some(argv), _) if !argv.is_empty() => argv.join(" "),
            (_, Some(cmd)) => cmd.trim().to_string(),
            _ => String::new(),
        };
        if line.trim().is_empty() {
            return Err(ApiError::bad_request(
                "invalid request: command (or the deprecated cmd) is required",
            ));
        }
        if self.timeout.is_some_and(|t| t > MAX_EXEC_TIMEOUT_SECS) {
            return Err(ApiError::bad_request(format!(
                "invalid timeout: at most {MAX_EXEC_TIMEOUT_SECS} seconds"
            )));
        }
        Ok(line)
    }
}

/// A 412 for an operation that needs a running Machine.
fn not_running(m: &Machine, what: &str) -> ApiError {
    ApiError::precondition(format!(
        "machine {} is {}; {what} needs a started machine",
        m.id,
        m.state.as_str()
    ))
}

/// `POST /v1/apps/{app}/machines/{id}/exec` → `{stdout, stderr, exit_code}`.
pub(crate) async fn exec(
    State(sim): AppState,
    Path((app, id)): MachinePath,
    body: Bytes,
) -> ApiResult {
    let req: ExecRequest = parse_body(&body)?;
    let line = req.command_line()?;
    sim.rate_limit(Action::MachineExec, &id)?;
    with_entity(&sim, &app, Entity::Machine, &id, |a, _| {
        let m = a.machine_mut(&id)?;
        if m.state != S::Started {
            return Err(not_running(m, "exec"));
        }
        Ok(())
    })?;
    let exec = lock(&sim.exec);
    let out = match exec.answer(&app, &id, &line) {
        Some(r) => json!({ "stdout": r.stdout, "stderr": r.stderr, "exit_code": r.exit_code }),
        None => json!({ "stdout": "", "stderr": "", "exit_code": 0 }),
    };
    Ok(ok_json(out))
}

/// The command line the Machine's main process runs.
fn main_command(m: &Machine) -> String {
    let words = |key: &str| -> Option<String> {
        let list = m.config.init.get(key)?.as_array()?;
        let words: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
        (!words.is_empty()).then(|| words.join(" "))
    };
    words("exec")
        .or_else(|| {
            let ep = words("entrypoint");
            let cmd = words("cmd");
            match (ep, cmd) {
                (Some(e), Some(c)) => Some(format!("{e} {c}")),
                (e, c) => e.or(c),
            }
        })
        .unwrap_or_else(|| {
            let image = m.config.image.as_deref().unwrap_or("app");
            let name = image.rsplit('/').next().unwrap_or(image);
            let name = name.split([':', '@']).next().unwrap_or(name);
            format!("/usr/local/bin/{name}")
        })
}

/// The processes of a started Machine: init, the SSH server and the main process
/// (listening on the services' internal ports).
fn processes(m: &Machine, now: i64) -> Vec<Value> {
    let up_ms = (now - m.updated_at_ms).max(0) as u64;
    let started = m.updated_at_ms.max(0) as u64;
    let mem = u64::from(m.config.memory_mb()) * 1024 * 1024;
    let sockets: Vec<Value> = m
        .config
        .services
        .iter()
        .flatten()
        .filter_map(|s| {
            let port = s.internal_port?;
            let proto = s.protocol.as_deref().unwrap_or("tcp");
            Some(json!({ "proto": proto, "address": format!("0.0.0.0:{port}") }))
        })
        .collect();
    let proc = |pid: u32, command: String, dir: &str, cpu: u64, rss: u64, listen: Vec<Value>| {
        json!({
            "pid": pid,
            "command": command,
            "directory": dir,
            "cpu": cpu,
            "rss": rss,
            "rtime": up_ms,
            "stime": started,
            "listen_sockets": listen,
        })
    };
    vec![
        proc(
            1,
            "/.fly/init".into(),
            "/",
            up_ms / 1000,
            2 * 1024 * 1024,
            vec![],
        ),
        proc(
            313,
            "/.fly/hallpass".into(),
            "/",
            up_ms / 2000,
            6 * 1024 * 1024,
            vec![json!({ "proto": "tcp", "address": format!("[{}]:22", m.private_ip) })],
        ),
        proc(322, main_command(m), "/app", up_ms / 100, mem / 8, sockets),
    ]
}

/// Sorts `ps` rows by `sort_by` (pid, cpu, rss, rtime, stime, command) in `order`.
fn sort_processes(
    rows: &mut [Value],
    sort_by: Option<&str>,
    order: Option<&str>,
) -> Result<(), ApiError> {
    let key = sort_by.filter(|s| !s.is_empty()).unwrap_or("pid");
    if !["pid", "cpu", "rss", "rtime", "stime", "command"].contains(&key) {
        return Err(ApiError::bad_request(format!(
            "invalid sort_by {key:?}: expected pid, cpu, rss, rtime, stime or command"
        )));
    }
    let desc = match order.filter(|s| !s.is_empty()) {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "invalid order {o:?}: expected asc or desc"
            )));
        }
    };
    rows.sort_by(|a, b| {
        let ord = if key == "command" {
            a[key].as_str().cmp(&b[key].as_str())
        } else {
            a[key].as_u64().cmp(&b[key].as_u64())
        };
        if desc { ord.reverse() } else { ord }
    });
    Ok(())
}

/// `GET /v1/apps/{app}/machines/{id}/ps`: the processes of a started Machine; a 412
/// for a Machine that runs nothing.
pub(crate) async fn ps(State(sim): AppState, Path((app, id)): MachinePath, q: Pairs) -> ApiResult {
    sim.rate_limit(Action::MachinePs, &id)?;
    let mut rows = with_entity(&sim, &app, Entity::Machine, &id, |a, t| {
        let m = a.machine_mut(&id)?;
        if m.state != S::Started {
            return Err(not_running(m, "ps"));
        }
        Ok(processes(m, t))
    })?;
    sort_processes(&mut rows, query(&q, "sort_by"), query(&q, "order"))?;
    Ok(ok_json(Value::Array(rows)))
}

#[derive(Debug, Default, Deserialize)]
struct SignalRequest {
    #[serde(default)]
    signal: Option<Value>,
}

/// `POST /v1/apps/{app}/machines/{id}/signal`: SIGKILL ends the Machine at once,
/// SIGTERM and SIGINT after the stop time (both with an exit event naming the
/// signal); any other signal is delivered and recorded as a `signal` event.
pub(crate) async fn signal(
    State(sim): AppState,
    Path((app, id)): MachinePath,
    body: Bytes,
) -> ApiResult {
    let req: SignalRequest = parse_optional_body(&body)?;
    let raw = req
        .signal
        .ok_or_else(|| ApiError::bad_request("invalid request: signal is required"))?;
    let (name, number) = gotypes::signal(&raw).ok_or_else(|| {
        ApiError::bad_request(format!(
            "invalid signal {raw}: expected one of {}",
            gotypes::SIGNALS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    sim.rate_limit(Action::MachineSignal, &id)?;
    with_entity(&sim, &app, Entity::Machine, &id, |a, t| {
        let m = a.machine_mut(&id)?;
        check_not_destroyed(m)?;
        if !matches!(m.state, S::Started | S::Starting) {
            return Err(not_running(m, "signal"));
        }
        m.event("signal", m.state.as_str(), "user", t);
        if let Some(e) = m.events.first_mut() {
            e.request = Some(json!({ "signal": name }));
        }
        if gotypes::stops_machine(number) {
            let after = if number == 9 { 0 } else { sim.timing.stop };
            m.exit_signal = Some(number);
            m.schedule(t, S::Stopping, &[(after, S::Stopped)]);
        }
        Ok(())
    })?;
    sim.mutated();
    Ok(ok_true())
}

/// `GET /v1/apps/{app}/machines/{id}/versions`: the current version and the ones
/// before it, newest first.
pub(crate) async fn versions(State(sim): AppState, Path((app, id)): MachinePath) -> ApiResult {
    sim.rate_limit(Action::MachineVersions, &id)?;
    let out = with_entity(&sim, &app, Entity::Machine, &id, |a, _| {
        let m = a.machine_mut(&id)?;
        let current = json!({
            "version": m.instance_id,
            "user_config": m.config,
            "created_at": rfc3339_secs(m.version_at_ms.unwrap_or(m.created_at_ms)),
        });
        let mut list = vec![current];
        list.extend(m.versions.iter().map(|v| {
            json!({
                "version": v.version,
                "user_config": v.config,
                "created_at": rfc3339_secs(v.created_at_ms),
            })
        }));
        Ok(Value::Array(list))
    })?;
    Ok(ok_json(out))
}

/// `PUT /__sim/exec`: body an [`ExecRule`].
async fn exec_put(State(sim): AppState, body: Bytes) -> ApiResult {
    let rule: ExecRule = parse_body(&body)?;
    if rule.app.is_empty() {
        return Err(ApiError::bad_request("app is required"));
    }
    lock(&sim.exec).set(rule.clone());
    Ok(ok_json(json!(rule)))
}

/// `GET /__sim/exec`: the rules in force.
async fn exec_get(State(sim): AppState) -> ApiResult {
    Ok(ok_json(json!({ "rules": lock(&sim.exec).rules })))
}

/// `DELETE /__sim/exec`: back to the default answer.
async fn exec_clear(State(sim): AppState) -> ApiResult {
    lock(&sim.exec).rules.clear();
    Ok(ok_true())
}

pub(crate) fn control_routes() -> Router<Arc<Sim>> {
    Router::new().route(
        "/__sim/exec",
        put(exec_put).get(exec_get).delete(exec_clear),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(machine: Option<&str>, command: Option<&str>, out: &str) -> ExecRule {
        ExecRule {
            app: "a".into(),
            machine_id: machine.map(str::to_string),
            command: command.map(str::to_string),
            stdout: out.into(),
            stderr: String::new(),
            exit_code: 0,
        }
    }

    #[test]
    fn the_most_specific_rule_answers() {
        let mut r = ExecResponder::default();
        assert!(r.answer("a", "m1", "ls").is_none());
        r.set(rule(None, None, "app-any"));
        r.set(rule(None, Some("ls"), "app-ls"));
        r.set(rule(Some("m1"), None, "m1-any"));
        r.set(rule(Some("m1"), Some("ls"), "m1-ls"));
        assert_eq!(r.answer("a", "m1", "ls").unwrap().stdout, "m1-ls");
        assert_eq!(r.answer("a", "m1", "pwd").unwrap().stdout, "m1-any");
        assert_eq!(r.answer("a", "m2", "ls").unwrap().stdout, "app-ls");
        assert_eq!(r.answer("a", "m2", "pwd").unwrap().stdout, "app-any");
        assert!(r.answer("b", "m1", "ls").is_none());
        r.set(rule(None, None, "replaced"));
        assert_eq!(r.answer("a", "m2", "pwd").unwrap().stdout, "replaced");
        assert_eq!(r.rules.len(), 4);
    }
}
