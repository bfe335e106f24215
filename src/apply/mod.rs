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
use crate::resource::{Address, ResourceSet};
use crate::state::Observed;
use exec::{ExecReport, Status};
use ops::OpKind;

/// The outcome of an apply, per planned change.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub created: usize,
    pub updated: usize,
    pub replaced: usize,
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
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed == 0 && self.not_done == 0 && !self.interrupted
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "Apply {}: {} created, {} updated, {} replaced, {} deleted, {} failed, {} not done · {:.1} s · {} requests ({} mutating, {} retried, {} rate-limited (429))\n",
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
            self.deleted,
            self.failed,
            self.not_done,
            self.wall_ms as f64 / 1000.0,
            self.requests,
            self.mutating_requests,
            self.retries,
            self.rate_limited
        );
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
        let ops = by_change.get(&c.address).cloned().unwrap_or_default();
        let statuses: Vec<&Status> = ops.iter().map(|i| &report.status[*i]).collect();
        if statuses.iter().any(|st| matches!(st, Status::Failed(_))) {
            s.failed += 1;
        } else if statuses.iter().all(|st| matches!(st, Status::Done(_))) {
            match c.action {
                Action::Create => s.created += 1,
                Action::Update => s.updated += 1,
                Action::Replace => s.replaced += 1,
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
    s
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
/// Default time to wait for Machines to start, volumes to detach, snapshots to finish.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
