//! `apply`: carries out a plan against the Fly API — the only writer.
//!
//! [`ops::build`] turns the plan into an operation graph (refusing unsafe plans before
//! anything runs), [`exec::execute`] walks it with bounded concurrency, the
//! [`journal::Journal`] records every mutation, and [`summarize`] says what happened.

pub mod exec;
pub mod journal;
pub mod lock;
pub mod ops;
pub mod progress;
pub mod removal;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::plan::{Action, Plan};
use crate::resource::{Address, Kind, ResourceSet};
use crate::state::Observed;
use exec::{ExecReport, Status};
use ops::OpKind;

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The outcome of an apply, per planned change.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub replaced: usize,
    /// Region moves carried out (absent from JSON when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub moved: usize,
    pub deleted: usize,
    pub failed: usize,
    pub not_done: usize,
    pub wall_ms: u64,
    pub requests: u64,
    pub mutating_requests: u64,
    pub rate_limited: u64,
    pub retries: u64,
    pub interrupted: bool,
    /// (address, error) of each failed operation.
    pub failures: Vec<(String, String)>,
    /// (address, reason) of each change not carried out.
    pub skipped: Vec<(String, String)>,
    /// Which tenants run which image after a rollout that did not finish.
    pub rollout: Vec<String>,
    /// What happened to each operation; the counts add up to `operations.total`.
    pub operations: OperationCounts,
}

/// Operations by outcome. A done operation counts as the action of the planned change
/// it carries out (a replace's two halves as `replaced`, the snapshot policy of a new
/// volume as `created`), rollout gates as `checked`. `skipped`: not run because
/// something it depends on failed or the rollout stopped; `not_started`: not run because
/// the apply was interrupted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct OperationCounts {
    pub total: usize,
    pub created: usize,
    pub updated: usize,
    pub replaced: usize,
    /// Region moves (a volume and its Machine: one operation each).
    #[serde(skip_serializing_if = "is_zero")]
    pub moved: usize,
    pub destroyed: usize,
    pub checked: usize,
    pub failed: usize,
    pub skipped: usize,
    pub not_started: usize,
}

impl OperationCounts {
    /// Counts each operation's outcome; a done operation counts as the action of the
    /// planned change it carries out (`actions`, by address).
    fn count(report: &ExecReport, actions: &HashMap<&Address, Action>, plan: &Plan) -> Self {
        let mut n = OperationCounts {
            total: report.ops.len(),
            ..OperationCounts::default()
        };
        for (op, st) in report.ops.iter().zip(&report.status) {
            let slot = match st {
                Status::Failed(_) => &mut n.failed,
                Status::Skipped(why) if why == INTERRUPTED || why == NOT_REACHED => {
                    &mut n.not_started
                }
                Status::Pending => &mut n.not_started,
                Status::Skipped(_) => &mut n.skipped,
                Status::Done(_) => match done_as(op, actions, plan) {
                    Some(Action::Create) => &mut n.created,
                    Some(Action::Replace) => &mut n.replaced,
                    Some(Action::Move) => &mut n.moved,
                    Some(Action::Delete) => &mut n.destroyed,
                    Some(Action::Update | Action::Noop) => &mut n.updated,
                    None => &mut n.checked,
                },
            };
            *slot += 1;
        }
        n
    }

    /// `N operations: a created, b updated, …` (only the outcomes that occurred).
    pub fn text(&self) -> String {
        let parts: Vec<String> = [
            (self.created, "created"),
            (self.updated, "updated"),
            (self.replaced, "replaced"),
            (self.moved, "moved"),
            (self.destroyed, "destroyed"),
            (self.checked, "checked"),
            (self.failed, "failed"),
            (self.skipped, "skipped"),
            (self.not_started, "not started"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        format!("Operations: {} ({})\n", self.total, parts.join(", "))
    }
}

/// What a done operation did, as a plan action; `None` for a rollout gate (a check).
/// An app's secrets operation creates when every secret change of the app is a
/// create, destroys when every one is a delete, and updates otherwise.
fn done_as(op: &ops::Op, actions: &HashMap<&Address, Action>, plan: &Plan) -> Option<Action> {
    if let Some(a) = op.change.as_ref().and_then(|c| actions.get(c)) {
        return Some(*a);
    }
    match &op.kind {
        OpKind::Gate { .. } => None,
        OpKind::SetSecrets { app, .. } => {
            let mut secret = plan
                .actionable()
                .filter(|c| c.kind == Kind::Secret && c.app == *app)
                .map(|c| c.action);
            let first = secret.next().unwrap_or(Action::Update);
            Some(if secret.all(|a| a == first) && first != Action::Replace {
                first
            } else {
                Action::Update
            })
        }
        OpKind::CreateApp { .. } | OpKind::CreateVolume | OpKind::CreateMachine => {
            Some(Action::Create)
        }
        OpKind::DeleteApp { .. } | OpKind::DeleteMachine { .. } | OpKind::DeleteVolume { .. } => {
            Some(Action::Delete)
        }
        _ => Some(Action::Update),
    }
}

/// Why the scheduler skipped an operation the interrupted apply never started.
pub const INTERRUPTED: &str = "interrupted before it started";
/// Why the scheduler skipped an operation left waiting on something that never finished.
pub const NOT_REACHED: &str = "not reached";

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.not_done == 0 && !self.interrupted
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "Apply {}: {} created, {} updated, {} replaced, {}{} deleted, {} failed, {} not done · {:.1} s · {} requests ({} mutating, {} retried, {} rate-limited (429))\n",
            if self.interrupted {
                "interrupted"
            } else if self.ok() {
                "complete"
            } else {
                "incomplete"
            },
            self.created,
            self.updated,
            self.replaced,
            if self.moved == 0 {
                String::new()
            } else {
                format!("{} moved, ", self.moved)
            },
            self.deleted,
            self.failed,
            self.not_done,
            self.wall_ms as f64 / 1000.0,
            self.requests,
            self.mutating_requests,
            self.retries,
            self.rate_limited
        );
        if self.operations.total > 0 {
            s.push_str(&self.operations.text());
        }
        for (a, e) in &self.failures {
            s.push_str(&format!("  failed: {a}: {e}\n"));
        }
        const SHOWN: usize = 20;
        for (a, why) in self.skipped.iter().take(SHOWN) {
            s.push_str(&format!("  not done: {a} ({why})\n"));
        }
        if self.skipped.len() > SHOWN {
            s.push_str(&format!(
                "  … and {} more not done (see the journal)\n",
                self.skipped.len() - SHOWN
            ));
        }
        if !self.rollout.is_empty() {
            s.push_str("Rollout stopped. Tenants and their versions:\n");
            for l in &self.rollout {
                s.push_str(&format!("  {l}\n"));
            }
        }
        if !self.ok() {
            s.push_str("Run `flotilla apply` again to continue: it picks up from what exists.\n");
        }
        s
    }
}

/// What happened, per planned change, from the operations' outcomes.
pub fn summarize(
    plan: &Plan,
    report: &ExecReport,
    desired: &ResourceSet,
    observed: &Observed,
    stats: crate::fly::client::StatsSnapshot,
) -> Summary {
    let mut by_change: HashMap<&Address, Vec<usize>> = HashMap::new();
    for (i, op) in report.ops.iter().enumerate() {
        if let Some(c) = &op.change {
            by_change.entry(c).or_default().push(i);
        }
    }
    let mut s = Summary {
        wall_ms: report.wall.as_millis() as u64,
        requests: stats.requests,
        mutating_requests: stats.mutating,
        rate_limited: stats.rate_limited,
        retries: stats.retries,
        interrupted: report.interrupted,
        ..Summary::default()
    };
    for (i, st) in report.status.iter().enumerate() {
        if let Status::Failed(e) = st {
            s.failures
                .push((report.ops[i].address.to_string(), e.to_string()));
        }
    }
    for c in plan.actionable() {
        let ops = by_change
            .get(&c.address)
            .cloned()
            .unwrap_or_else(|| carried_by_app_op(report, c));
        let statuses: Vec<&Status> = ops.iter().map(|i| &report.status[*i]).collect();
        if statuses.iter().any(|st| matches!(st, Status::Failed(_))) {
            s.failed += 1;
        } else if !statuses.is_empty() && statuses.iter().all(|st| matches!(st, Status::Done(_))) {
            match c.action {
                Action::Create => s.created += 1,
                Action::Update => s.updated += 1,
                Action::Replace => s.replaced += 1,
                Action::Move => s.moved += 1,
                Action::Delete => s.deleted += 1,
                Action::Noop => {}
            }
        } else {
            s.not_done += 1;
            let why = statuses
                .iter()
                .find_map(|st| match st {
                    Status::Skipped(w) => Some(w.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "not started".into());
            s.skipped.push((c.address.to_string(), why));
        }
    }
    s.rollout = rollout_report(report, desired, observed);
    let actions: HashMap<&Address, Action> =
        plan.actionable().map(|c| (&c.address, c.action)).collect();
    s.operations = OperationCounts::count(report, &actions, plan);
    s
}

/// The operations that carry out a change with none of its own: a secret is set (or
/// removed) by its app's one secrets operation, or goes with its app's deletion; a
/// snapshot policy is created or destroyed with its volume. A change no operation
/// carries counts as not done, never as done.
fn carried_by_app_op(report: &ExecReport, c: &crate::plan::Change) -> Vec<usize> {
    report
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| match &o.kind {
            OpKind::SetSecrets { app, .. } => c.kind == Kind::Secret && *app == c.app,
            OpKind::DeleteApp { app } => c.action == Action::Delete && *app == c.app,
            OpKind::CreateVolume | OpKind::DeleteVolume { .. } => {
                c.kind == Kind::BackupPolicy
                    && o.address.backup_of_volume().as_ref() == Some(&c.address)
            }
            _ => false,
        })
        .map(|(i, _)| i)
        .collect()
}

/// After a rollout that stopped: each tenant with a restarting update, and the image
/// it now runs.
fn rollout_report(report: &ExecReport, desired: &ResourceSet, observed: &Observed) -> Vec<String> {
    let updates: Vec<usize> = report
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o.kind, OpKind::UpdateMachine { restart: true, .. }))
        .map(|(i, _)| i)
        .collect();
    let stopped = updates
        .iter()
        .any(|i| !matches!(report.status[*i], Status::Done(_)));
    if !stopped {
        return Vec::new();
    }
    let mut lines: BTreeMap<String, String> = BTreeMap::new();
    for i in updates {
        let op = &report.ops[i];
        let new = desired
            .get(&op.address)
            .and_then(|r| r.machine())
            .map(|m| m.image.clone())
            .unwrap_or_default();
        let old = observed
            .resources
            .get(&op.address)
            .and_then(|r| r.machine())
            .map(|m| m.image.clone())
            .unwrap_or_default();
        let wave = op
            .wave
            .map(|w| format!("wave {}", w + 1))
            .unwrap_or_default();
        let line = match &report.status[i] {
            Status::Done(_) => format!("{}: {new} (updated, {wave})", op.address),
            Status::Failed(e) => format!(
                "{}: {new} FAILED ({wave}): {}",
                op.address,
                e.message.lines().next().unwrap_or_default()
            ),
            _ => format!(
                "{}: {old} (not updated: the rollout stopped before {wave})",
                op.address
            ),
        };
        lines.insert(op.address.to_string(), line);
    }
    lines.into_values().collect()
}

/// Counts of a plan's actionable changes per kind, for messages.
pub fn describe_ops(ops: &[ops::Op]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in ops {
        *counts.entry(o.kind.label()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, v)| format!("{v} × {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The default journal path for a run.
pub fn default_journal(run: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(".flotilla")
        .join("journal")
        .join(format!("{run}.jsonl"))
}

/// A short identifier for a run (UTC time).
pub fn run_id() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// Default concurrency: enough to pipeline hundreds of tenants under Fly's limits.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Default tenants per rollout wave after the canary: a fleet larger than this is never
/// updated all at once unless asked (`--wave-size all`).
pub const DEFAULT_WAVE_SIZE: usize = 25;
/// Default time to wait for Machines to start, volumes to detach, snapshots to finish.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
