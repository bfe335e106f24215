//! The executor: runs the operation graph against the Fly API with bounded concurrency.
//!
//! The [`scheduler`] decides *when* an operation runs: ready operations start as soon as
//! their dependencies finish (app creation first: it is the longest chain), up to
//! `concurrency` at once; a failed operation skips everything that depends on it and
//! nothing else, so one tenant's failure does not stop the others; Ctrl-C stops new
//! work while operations in flight finish.
//!
//! The operation units decide *what* an operation does, one unit per kind of resource:
//! [`app`], [`secrets`], [`volume`], [`backup`], [`machine`] (with [`health`] for the
//! started-and-passing checks), [`relocate`] (region moves with the data), [`network`] (IP addresses, certificates) and [`gate`]
//! (rollout waves). They share two helpers
//! instead of hand-written loops: [`confirm::act_confirmed`] (a create whose response
//! may be lost is looked up before it is retried or reported, so a lost response never
//! makes a second app, Machine or volume) and [`poll::poll_until`] (wait for a state
//! with a deadline and an interval). Every unit fails with an [`OpError`].

mod app;
mod backup;
mod confirm;
mod error;
mod gate;
mod health;
mod lease;
mod machine;
mod machine_update;
mod network;
mod poll;
mod relocate;
mod rollout_mark;
mod scheduler;
mod secrets;
mod shared;
mod volume;

use std::time::Duration;

use crate::apply::ops::{Op, OpKind};

pub use error::{OpError, OpErrorKind, OpResult};
pub use scheduler::execute;
pub use shared::Shared;

#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Operations in flight at once.
    pub concurrency: usize,
    /// How long (API time) to wait for a Machine to start, a volume to detach, a
    /// snapshot to finish.
    pub wait_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending,
    /// Done, with what was done (Fly IDs, regions, …).
    Done(String),
    Failed(OpError),
    /// Not run, and why.
    Skipped(String),
}

/// What happened to each operation.
#[derive(Debug, Clone)]
pub struct ExecReport {
    pub ops: Vec<Op>,
    pub status: Vec<Status>,
    pub wall: Duration,
    pub interrupted: bool,
}

/// Runs one operation: hands it to the unit of its kind.
async fn run(sh: &Shared, op: &Op) -> OpResult {
    match &op.kind {
        OpKind::CreateApp { app } => app::create(sh, app).await,
        OpKind::DeleteApp { app } => app::delete(sh, app).await,
        OpKind::SetSecrets { app, set, delete } => secrets::set(sh, app, set, delete).await,
        OpKind::CreateVolume => volume::create(sh, &op.address).await,
        OpKind::ExtendVolume { size_gb } => volume::extend(sh, op, *size_gb).await,
        OpKind::DeleteVolume { id, snapshot } => volume::delete(sh, &op.app, id, *snapshot).await,
        OpKind::UpdateBackup { volume } => backup::update(sh, &op.address, volume, &op.app).await,
        OpKind::CreateMachine => machine::create(sh, op).await,
        OpKind::UpdateMachine {
            restart,
            secrets_only,
            metadata,
        } => {
            // A restart only for secrets that turned out unchanged on Fly is skipped; the
            // Machine still records the secrets as flotilla left them.
            let unchanged = *secrets_only && sh.secrets_changed(&op.app) == Some(false);
            if unchanged {
                let records = machine_update::secret_records(sh, op)?;
                let all: Vec<_> = metadata.iter().cloned().chain(records).collect();
                return machine_update::update(sh, op, false, &all).await;
            }
            machine_update::update(sh, op, *restart, metadata).await
        }
        OpKind::DeleteMachine { id } => machine::delete(sh, op, id).await,
        OpKind::MoveVolume { id, machine } => {
            relocate::volume(sh, op, id, machine.as_deref()).await
        }
        OpKind::MoveMachine {
            old,
            old_volume,
            delete_old_volume,
        } => relocate::machine(sh, op, old, old_volume, *delete_old_volume).await,
        OpKind::Gate { wave } => gate::check(sh, *wave).await,
        OpKind::AssignIp => network::assign(sh, op).await,
        OpKind::ReleaseIp { ip } => network::release(sh, op, ip).await,
        OpKind::CreateCertificate { hostname } => {
            network::create_certificate(sh, op, hostname).await
        }
        OpKind::DeleteCertificate { hostname } => {
            network::delete_certificate(sh, op, hostname).await
        }
    }
}
