//! `flotilla backup export SPEC` and `flotilla backup restore SPEC --tenant NAME`:
//! off-site copies of the tenants' volumes through one-shot Machines
//! ([`crate::ops::backup`]), reported per tenant and volume.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::env::Env;
use super::snapshot::{DataArgs, ListFormat};
use crate::ops::Error;
use crate::ops::backup::{ExportChoice, ExportOutcome, Exported, RestoreOptions, RestoreOutcome};
use crate::ops::restore::OldVolume;

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: BackupCommand,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Export the tenants' volumes to `backups.export.to` (fork, one-shot Machine, clean-up).
    Export(ExportArgs),
    /// Bring a tenant's export back into a new volume and remount its Machine on it.
    Restore(BackupRestoreArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla backup export specs/jarvis.yaml --sim
  flotilla backup export specs/jarvis.yaml --tenant acme --format json

Under the fleet lock, per volume: a fork of the volume, a one-shot Machine running the
export image on it, the fork deleted. The tenant's Machine keeps running.")]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla backup restore specs/jarvis.yaml --tenant acme --sim --yes
  flotilla backup restore specs/jarvis.yaml --tenant acme --export 20260301T020000000Z")]
pub struct BackupRestoreArgs {
    /// The spec naming the fleet.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// The tenant whose volume(s) to restore.
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// The export id (as `backup export` reported it), or `latest`.
    #[arg(long, value_name = "ID", default_value = "latest")]
    pub export: String,
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

pub fn run(args: BackupArgs, env: &Env) -> Result<Exit, Error> {
    match args.command {
        BackupCommand::Export(a) => run_export(a, env),
        BackupCommand::Restore(a) => run_restore(a, env),
    }
}

fn run_export(args: ExportArgs, env: &Env) -> Result<Exit, Error> {
    let opts = crate::ops::backup::Options {
        spec: args.data.spec.clone(),
        tenants: args.data.tenants.clone(),
        target: args.data.target.options(env),
        lock: args.data.lock(env),
        ..Default::default()
    };
    let outcome = crate::ops::backup::export(&opts)?;
    for w in &outcome.warnings {
        super::common::eprint_diag(w);
    }
    match args.format {
        ListFormat::Text => print!("{}", export_text(&outcome)),
        ListFormat::Json => print!(
            "{}",
            crate::ops::to_json_pretty(&outcome, "the export report")?
        ),
    }
    match outcome.failures() {
        0 => Ok(Exit::Ok),
        n => Err(Error::line(format!("{n} export(s) failed."))),
    }
}

fn run_restore(args: BackupRestoreArgs, env: &Env) -> Result<Exit, Error> {
    let opts = RestoreOptions {
        spec: args.spec.clone(),
        tenant: args.tenant.clone(),
        export: ExportChoice::parse(&args.export),
        allow_data_loss: args.allow_data_loss,
        target: args.target.options(env),
        lock: crate::apply::lock::LockOptions {
            timeout: std::time::Duration::from_secs(args.lock_timeout),
            holder: env.holder(),
            ..Default::default()
        },
        ..Default::default()
    };
    let prepared = crate::ops::backup::prepare_restore(&opts)?;
    for v in &prepared.volumes {
        eprintln!(
            "{} ({} in {}): restore export {} from {} into a new volume {:?}; Machine {} stopped, remounted and started; old volume {}",
            v.address,
            v.id,
            v.region,
            prepared.export_id(),
            prepared.source(v),
            v.name,
            v.machine.as_deref().unwrap_or("(the one mounting it)"),
            if args.allow_data_loss {
                "then DELETED (--allow-data-loss)"
            } else {
                "then kept, unattached"
            },
        );
    }
    if !args.yes {
        super::restore::confirm(env, prepared.org())?;
    }
    let outcome = prepared.execute()?;
    for w in &outcome.warnings {
        super::common::eprint_diag(w);
    }
    print!("{}", restore_text(&outcome));
    match outcome.failures() {
        0 => Ok(Exit::Ok),
        n => Err(Error::line(format!("{n} restore(s) failed."))),
    }
}

/// Per tenant, one line per volume: the export, its size, time and cost, or the error.
pub fn export_text(o: &ExportOutcome) -> String {
    let mut out = String::new();
    let mut tenant: Option<&str> = None;
    for e in &o.exports {
        if tenant != Some(e.volume.tenant.as_str()) {
            tenant = Some(&e.volume.tenant);
            let total: u64 = o
                .exports
                .iter()
                .filter(|x| x.volume.tenant == e.volume.tenant)
                .map(|x| x.duration_secs)
                .sum();
            let _ = writeln!(
                out,
                "tenant {} (app {}), {total} s:",
                e.volume.tenant, e.volume.app
            );
        }
        let _ = writeln!(out, "  {}", export_line(e));
    }
    let done = o.exports.len() - o.failures();
    let _ = writeln!(out, "{done} of {} volume(s) exported.", o.exports.len());
    out
}

fn export_line(e: &Exported) -> String {
    let v = &e.volume;
    let bytes = e
        .bytes
        .map_or_else(|| "size not reported".to_string(), |b| format!("{b} bytes"));
    let cost = e.cost.as_ref().map_or_else(String::new, |c| {
        format!(
            "; cost ${} (Machine {} s ${}, fork {} GB for {} s ${}; pricing {})",
            crate::cost::display::round(c.total, 6),
            e.machine_secs,
            crate::cost::display::round(c.machine, 6),
            v.size_gb,
            e.duration_secs,
            crate::cost::display::round(c.volume, 6),
            c.pricing_version
        )
    });
    match &e.error {
        None => format!(
            "{} ({}): export {} to {}, {bytes}, {} s{cost}",
            v.address, v.id, e.export_id, e.destination, e.duration_secs
        ),
        Some(err) => format!("{} ({}): export failed: {err}{cost}", v.address, v.id),
    }
}

/// One line per volume: the new volume and what became of the old one, or the error.
pub fn restore_text(o: &RestoreOutcome) -> String {
    let mut out = String::new();
    for r in &o.restored {
        let v = &r.volume;
        let new = r.new_volume.as_deref().unwrap_or("-");
        let old = match r.old_volume {
            OldVolume::Kept => "kept, unattached",
            OldVolume::Deleted => "deleted",
            OldVolume::InUse => "still in use",
        };
        let _ = match &r.error {
            None => writeln!(
                out,
                "{}: Machine {} runs on {new} (export {} from {}); old volume {} {old}",
                v.address, r.machine, r.export_id, r.source, v.id
            ),
            Some(e) => writeln!(
                out,
                "{}: restore failed (new volume {new}, old volume {} {old}): {e}",
                v.address, v.id
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
    use crate::cost::job::JobCost;
    use crate::ops::backup::RestoredExport;
    use crate::ops::data::TenantVolume;
    use rust_decimal::Decimal;

    fn volume(tenant: &str) -> TenantVolume {
        TenantVolume::sample(tenant)
    }

    fn exported(tenant: &str, error: Option<&str>) -> Exported {
        Exported {
            volume: volume(tenant),
            export_id: "20260301T020000000Z".into(),
            destination: format!("s3://backups/{tenant}/data-0"),
            fork: Some("vol_fork".into()),
            machine: Some("m_job".into()),
            exit_code: Some(if error.is_some() { 1 } else { 0 }),
            bytes: error.is_none().then_some(1_048_576),
            duration_secs: 12,
            machine_secs: 5,
            cost: Some(JobCost {
                machine: Decimal::new(3, 6),
                volume: Decimal::new(21, 7),
                total: Decimal::new(51, 7),
                pricing_version: "2026-01-01".into(),
            }),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn the_export_report_shows_each_tenant_volume_time_bytes_and_cost() {
        let o = ExportOutcome {
            exports: vec![
                exported("acme", None),
                exported(
                    "globex",
                    Some(
                        "tenant globex, volume data (vol_globex): the export image img exited with status 1; the fork was removed",
                    ),
                ),
            ],
            warnings: Vec::new(),
        };
        insta::assert_snapshot!("export", export_text(&o));
    }

    #[test]
    fn the_backup_restore_report_names_each_volume() {
        let o = RestoreOutcome {
            restored: vec![RestoredExport {
                volume: volume("acme"),
                export_id: "latest".into(),
                source: "s3://backups/acme/data-0".into(),
                new_volume: Some("vol_new".into()),
                machine: "m1".into(),
                old_volume: OldVolume::Kept,
                error: None,
            }],
            warnings: Vec::new(),
        };
        insta::assert_snapshot!("restore", restore_text(&o));
    }
}
