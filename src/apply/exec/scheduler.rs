//! The scheduler: when each operation runs. It knows dependencies, priorities, the app
//! lane, the concurrency limit, failure isolation and Ctrl-C — and nothing about what
//! an operation does (that is [`super::run`] and the operation units).
//!
//! Ready operations run lowest [`OpKind::priority`] first, up to `concurrency` at once.
//! App creations queue on Fly's per-organization limit (about one a second), so only
//! [`APP_LANE`] of them are in flight and the other slots go to tenants already under
//! way. A failed operation marks everything downstream skipped; a panicking one fails
//! alone. Once `cancel` is set no operation starts; those in flight finish.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::task::{Id, JoinSet};

use super::{ExecReport, OpError, OpResult, Shared, Status};
use crate::apply::ops::{Op, OpKind};
use crate::apply::progress::Progress;

/// App creations in flight at once (Fly allows a burst of 3, then one a second).
const APP_LANE: usize = 4;

/// An operation's index, its outcome and how long it took.
type Finished = (usize, OpResult, Duration);

/// Runs `ops`, reporting progress and journaling every mutation.
pub async fn execute(mut shared: Shared, ops: Vec<Op>, progress: &Progress) -> ExecReport {
    let started = Instant::now();
    shared.record_waves(&ops);
    let mut run = Run::new(Arc::new(shared), ops, progress);
    loop {
        run.start_ready();
        let Some((i, r, d)) = run.join_next().await else {
            break;
        };
        run.finished(i, r, d);
    }
    run.skip_unstarted();
    ExecReport {
        ops: (*run.ops).clone(),
        status: run.status,
        wall: started.elapsed(),
        interrupted: run.interrupted,
    }
}

/// The state of one run.
struct Run<'p> {
    shared: Arc<Shared>,
    ops: Arc<Vec<Op>>,
    progress: &'p Progress,
    /// Unfinished dependencies of each operation.
    waiting: Vec<usize>,
    /// The operations that depend on each operation.
    dependents: Vec<Vec<usize>>,
    status: Vec<Status>,
    ready: BinaryHeap<Reverse<(u8, usize)>>,
    running: JoinSet<Finished>,
    task_op: HashMap<Id, usize>,
    apps_running: usize,
    interrupted: bool,
}

impl<'p> Run<'p> {
    fn new(shared: Arc<Shared>, ops: Vec<Op>, progress: &'p Progress) -> Run<'p> {
        let n = ops.len();
        let waiting: Vec<usize> = ops.iter().map(|o| o.deps.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for o in &ops {
            for d in &o.deps {
                dependents[*d].push(o.index);
            }
        }
        let ready = ops
            .iter()
            .filter(|o| o.deps.is_empty())
            .map(|o| Reverse((o.kind.priority(), o.index)))
            .collect();
        Run {
            shared,
            ops: Arc::new(ops),
            progress,
            waiting,
            dependents,
            status: vec![Status::Pending; n],
            ready,
            running: JoinSet::new(),
            task_op: HashMap::new(),
            apps_running: 0,
            interrupted: false,
        }
    }

    /// Starts ready operations while there are free slots (and no Ctrl-C).
    fn start_ready(&mut self) {
        let limit = self.shared.opts.concurrency.max(1);
        let mut deferred = Vec::new();
        while self.running.len() < limit {
            if self.shared.cancel.load(Ordering::Relaxed) {
                self.interrupted = true;
                break;
            }
            let Some(Reverse((prio, i))) = self.ready.pop() else {
                break;
            };
            let is_app = is_app_creation(&self.ops[i]);
            if is_app && self.apps_running >= APP_LANE {
                deferred.push(Reverse((prio, i)));
                continue;
            }
            if is_app {
                self.apps_running += 1;
            }
            self.spawn(i);
        }
        self.ready.extend(deferred);
    }

    fn spawn(&mut self, i: usize) {
        let sh = Arc::clone(&self.shared);
        let ops = Arc::clone(&self.ops);
        self.progress.started(&ops[i]);
        // Fly's request ids of the operation's writes, for its journal line.
        let handle = self
            .running
            .spawn(crate::fly::request_ids::scope(async move {
                let op = &ops[i];
                let t = Instant::now();
                if let Some(j) = &sh.journal {
                    j.record(op, "started", "", t.elapsed());
                }
                let r = super::run(&sh, op).await;
                let d = t.elapsed();
                if let Some(j) = &sh.journal {
                    match &r {
                        Ok(detail) => j.record(op, "ok", detail, d),
                        Err(e) => j.record(op, "failed", &e.to_string(), d),
                    }
                }
                (i, r, d)
            }));
        self.task_op.insert(handle.id(), i);
    }

    /// The next operation to finish; `None` when nothing is running.
    async fn join_next(&mut self) -> Option<Finished> {
        loop {
            let joined = self.running.join_next_with_id().await?;
            match joined {
                Ok((id, x)) => {
                    self.task_op.remove(&id);
                    return Some(x);
                }
                Err(e) => {
                    // A panicking operation is a bug; it fails alone (with what depends on it).
                    let Some(i) = self.task_op.remove(&e.id()) else {
                        continue;
                    };
                    let err = OpError::internal(format!("internal error: {e}"));
                    return Some((i, Err(err), Duration::ZERO));
                }
            }
        }
    }

    fn finished(&mut self, i: usize, r: OpResult, d: Duration) {
        if is_app_creation(&self.ops[i]) {
            self.apps_running = self.apps_running.saturating_sub(1);
        }
        match r {
            Ok(detail) => {
                self.progress.finished(&self.ops[i], true, &detail, d);
                self.status[i] = Status::Done(detail);
                self.release_dependents(i);
            }
            Err(e) => {
                self.progress
                    .finished(&self.ops[i], false, &e.to_string(), d);
                self.status[i] = Status::Failed(e);
                self.skip_downstream(i);
            }
        }
    }

    /// Dependents of a finished operation whose last dependency it was become ready.
    fn release_dependents(&mut self, i: usize) {
        for &k in &self.dependents[i] {
            self.waiting[k] -= 1;
            if self.waiting[k] == 0 && self.status[k] == Status::Pending {
                self.ready.push(Reverse((self.ops[k].kind.priority(), k)));
            }
        }
    }

    /// Everything downstream of a failed operation is skipped (and nothing else).
    fn skip_downstream(&mut self, i: usize) {
        let why = format!("{} failed", self.ops[i].address);
        let mut stack = self.dependents[i].clone();
        while let Some(k) = stack.pop() {
            if self.status[k] == Status::Pending {
                self.status[k] = Status::Skipped(why.clone());
                if let Some(j) = &self.shared.journal {
                    j.record(&self.ops[k], "skipped", &why, Duration::ZERO);
                }
                stack.extend(self.dependents[k].iter().copied());
            }
        }
    }

    /// What never started: interrupted, or waiting on something that never finished.
    fn skip_unstarted(&mut self) {
        for (k, s) in self.status.iter_mut().enumerate() {
            if *s == Status::Pending {
                *s = Status::Skipped(if self.interrupted {
                    crate::apply::INTERRUPTED.into()
                } else {
                    crate::apply::NOT_REACHED.into()
                });
                if let Some(j) = &self.shared.journal {
                    j.record(&self.ops[k], "skipped", "not started", Duration::ZERO);
                }
            }
        }
    }
}

fn is_app_creation(op: &Op) -> bool {
    matches!(op.kind, OpKind::CreateApp { .. })
}
