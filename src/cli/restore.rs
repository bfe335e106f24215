//! `flotilla restore SPEC --tenant NAME`: shows which volume goes back to which snapshot,
//! asks (as apply does), then restores and reports per volume.

use std::fmt::Write as _;
use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::Exit;
use super::env::Env;
use crate::apply::lock::LockOptions;
use crate::diag::Diagnostic;
use crate::ops::Error;
use crate::ops::restore::{Choice, OldVolume, Options, Outcome, Step};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla restore specs/jarvis.yaml --tenant acme --sim --yes
  flotilla restore specs/jarvis.yaml --tenant acme --snapshot vs_123   # asks to confirm

Under the fleet lock: a new volume from the snapshot, the Machine stopped, remounted on it
and started; the old volume is kept (unattached) unless --allow-data-loss deletes it.")]
pub struct RestoreArgs {
    /// The spec naming the fleet.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// The tenant whose volume(s) to restore.
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// The snapshot id, or `latest` (the newest complete one of each volume).
    #[arg(long, value_name = "ID", default_value = "latest")]
    pub snapshot: String,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Delete the old volume once the Machine runs on the restored one.
    #[arg(long)]
    pub allow_data_loss: bool,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    /// Seconds to wait for the fleet lock while an apply holds it.
    #[arg(long, value_name = "SECS", default_value_t = crate::apply::lock::DEFAULT_TIMEOUT.as_secs())]
    pub lock_timeout: u64,
}

pub fn run(args: RestoreArgs, env: &Env) -> Result<Exit, Error> {
    let opts = Options {
        spec: args.spec.clone(),
        tenant: args.tenant.clone(),
        snapshot: Choice::parse(&args.snapshot),
        allow_data_loss: args.allow_data_loss,
        target: args.target.options(env),
        lock: LockOptions {
            timeout: Duration::from_secs(args.lock_timeout),
            holder: env.holder(),
            ..LockOptions::default()
        },
    };
    let prepared = crate::ops::restore::prepare(&opts)?;
    eprint!("{}", plan_text(&prepared.steps, args.allow_data_loss));
    if !args.yes {
        confirm(env, prepared.org())?;
    }
    let outcome = prepared.execute()?;
    for w in &outcome.warnings {
        super::common::eprint_diag(w);
    }
    print!("{}", outcome_text(&outcome));
    match outcome.failures() {
        0 => Ok(Exit::Ok),
        n => Err(Error::line(format!("{n} restore(s) failed."))),
    }
}

pub(crate) fn confirm(env: &Env, org: &str) -> Result<(), Error> {
    if !env.stdin_tty {
        return Err(Error::new(
            Diagnostic::error("refusing to restore without confirmation")
                .hint("review what will happen above and pass --yes"),
        ));
    }
    eprint!("\nRestore in org {org}? Only 'yes' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim() == "yes" {
        Ok(())
    } else {
        Err(Error::line("Restore cancelled; nothing was changed."))
    }
}

/// What will happen, per volume.
pub fn plan_text(steps: &[Step], allow_data_loss: bool) -> String {
    let mut out = String::new();
    let old = if allow_data_loss {
        "then DELETED (--allow-data-loss)"
    } else {
        "then kept, unattached"
    };
    for s in steps {
        let v = &s.volume;
        let _ = writeln!(
            out,
            "{} ({} in {}, app {}): restore snapshot {} into a new volume {:?}; \
             Machine {} stopped, remounted and started; old volume {old}",
            v.address,
            v.id,
            v.region,
            v.app,
            s.snapshot.id,
            v.name,
            v.machine.as_deref().unwrap_or("(the one mounting it)"),
        );
    }
    out
}

/// One line per volume: the new volume and what became of the old one, or the error.
pub fn outcome_text(o: &Outcome) -> String {
    let mut out = String::new();
    for r in &o.restored {
        let v = &r.step.volume;
        let new = r.new_volume.as_deref().unwrap_or("-");
        let _ = match &r.error {
            None => writeln!(
                out,
                "{}: Machine {} runs on {new} (from snapshot {}); old volume {} {}",
                v.address,
                r.machine,
                r.step.snapshot.id,
                v.id,
                match r.old_volume {
                    OldVolume::Kept => "kept, unattached",
                    OldVolume::Deleted => "deleted",
                    OldVolume::InUse => "still in use",
                }
            ),
            Some(e) => writeln!(
                out,
                "{}: restore failed (new volume {new}, old volume {} {}): {e}",
                v.address,
                v.id,
                match r.old_volume {
                    OldVolume::InUse => "mounted",
                    OldVolume::Kept => "kept",
                    OldVolume::Deleted => "deleted",
                }
            ),
        };
    }
    let done = o.restored.len() - o.failures();
    let _ = writeln!(out, "{done} of {} volume(s) restored.", o.restored.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::data::{SnapshotRow, TenantVolume};
    use crate::ops::restore::Restored;

    fn step(tenant: &str) -> Step {
        Step {
            volume: TenantVolume::sample(tenant),
            snapshot: SnapshotRow {
                id: "vs_1".into(),
                status: "created".into(),
                created_at: None,
                size_bytes: 10,
                retention_days: Some(5),
                retention_left_hours: None,
            },
        }
    }

    #[test]
    fn the_restore_plan_and_report_name_each_volume() {
        insta::assert_snapshot!("plan", plan_text(&[step("acme")], false));
        insta::assert_snapshot!("plan_data_loss", plan_text(&[step("acme")], true));
        let o = Outcome {
            restored: vec![
                Restored {
                    step: step("acme"),
                    new_volume: Some("vol_new".into()),
                    machine: "m1".into(),
                    old_volume: OldVolume::Kept,
                    error: None,
                },
                Restored {
                    step: step("globex"),
                    new_volume: Some("vol_new2".into()),
                    machine: "m2".into(),
                    old_volume: OldVolume::InUse,
                    error: Some(
                        "Machine m2 failed to start; the Machine is back on volume vol_globex"
                            .into(),
                    ),
                },
            ],
            warnings: Vec::new(),
        };
        insta::assert_snapshot!("outcome", outcome_text(&o));
    }
}
