//! `flotilla snapshot SPEC` (take on-demand snapshots of the tenants' volumes) and
//! `flotilla snapshots SPEC` (list them with the retention left), plus the
//! `--tenant` / lock arguments the data commands share.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::Exit;
use super::env::Env;
use crate::apply::lock::LockOptions;
use crate::ops::Error;
use crate::ops::data::days_hours;
use crate::ops::snapshot::{ListOutcome, Options, TakeOutcome};

/// The spec, tenant filter, target and lock arguments of the data commands.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The spec naming the fleet.
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// Only this tenant (repeatable; default: every tenant).
    #[arg(long = "tenant", value_name = "NAME")]
    pub tenants: Vec<String>,
    #[command(flatten)]
    pub target: super::target::TargetArgs,
    /// Seconds to wait for the fleet lock while an apply holds it.
    #[arg(long, value_name = "SECS", default_value_t = crate::apply::lock::DEFAULT_TIMEOUT.as_secs())]
    pub lock_timeout: u64,
}

impl DataArgs {
    pub fn lock(&self, env: &Env) -> LockOptions {
        LockOptions {
            timeout: Duration::from_secs(self.lock_timeout),
            holder: env.holder(),
            ..LockOptions::default()
        }
    }

    fn options(&self, env: &Env) -> Options {
        Options {
            spec: self.spec.clone(),
            tenants: self.tenants.clone(),
            target: self.target.options(env),
            lock: self.lock(env),
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla snapshot specs/jarvis.yaml --tenant acme --sim
  flotilla snapshot specs/jarvis.yaml                  # every tenant's volumes

Takes the fleet lock, then one snapshot per volume, each waited for until complete.")]
pub struct SnapshotArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  flotilla snapshots specs/jarvis.yaml --tenant acme --sim
  flotilla snapshots specs/jarvis.yaml --format json")]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

pub fn run_take(args: SnapshotArgs, env: &Env) -> Result<Exit, Error> {
    let outcome = crate::ops::snapshot::take(&args.data.options(env))?;
    for w in &outcome.warnings {
        super::common::eprint_diag(w);
    }
    print!("{}", take_text(&outcome));
    match outcome.failures() {
        0 => Ok(Exit::Ok),
        n => Err(Error::line(format!("{n} snapshot(s) failed."))),
    }
}

pub fn run_list(args: SnapshotsArgs, env: &Env) -> Result<Exit, Error> {
    let outcome = crate::ops::snapshot::list(&args.data.options(env))?;
    match args.format {
        ListFormat::Text => print!("{}", list_text(&outcome)),
        ListFormat::Json => print!(
            "{}",
            crate::ops::to_json_pretty(&outcome, "the snapshot list")?
        ),
    }
    Ok(Exit::Ok)
}

/// One line per volume: the new snapshot, or the error.
pub fn take_text(o: &TakeOutcome) -> String {
    let mut out = String::new();
    for t in &o.taken {
        let v = &t.volume;
        let _ = match (&t.snapshot, &t.error) {
            (Some(s), _) => writeln!(
                out,
                "{} ({} in {}): snapshot {} complete, {} bytes, kept {} days",
                v.address,
                v.id,
                v.region,
                s.id,
                s.size_bytes,
                s.retention_days.unwrap_or_default()
            ),
            (None, e) => writeln!(
                out,
                "{} ({} in {}): no snapshot: {}",
                v.address,
                v.id,
                v.region,
                e.as_deref().unwrap_or("unknown error")
            ),
        };
    }
    let done = o.taken.len() - o.failures();
    let _ = writeln!(out, "{done} of {} snapshot(s) taken.", o.taken.len());
    out
}

/// Per volume, a table of its snapshots, oldest first.
pub fn list_text(o: &ListOutcome) -> String {
    let mut out = String::new();
    if o.volumes.is_empty() {
        out.push_str("No volumes.\n");
    }
    for l in &o.volumes {
        let v = &l.volume;
        let _ = writeln!(
            out,
            "{} ({}, {} GB in {}, app {})",
            v.address, v.id, v.size_gb, v.region, v.app
        );
        if let Some(e) = &l.error {
            let _ = writeln!(out, "  cannot list snapshots: {e}");
            continue;
        }
        if l.snapshots.is_empty() {
            out.push_str("  no snapshots\n");
            continue;
        }
        let _ = writeln!(
            out,
            "  {:<30} {:<8} {:<20} {:>14} {:>10}",
            "ID", "STATUS", "CREATED (UTC)", "SIZE (BYTES)", "KEPT FOR"
        );
        for s in &l.snapshots {
            let created = s
                .created_at
                .map(|c| c.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into());
            let left = s
                .retention_left_hours
                .map(days_hours)
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "  {:<30} {:<8} {:<20} {:>14} {:>10}",
                s.id, s.status, created, s.size_bytes, left
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::data::{SnapshotRow, TenantVolume};
    use crate::ops::snapshot::{Listed, Taken};

    fn volume(tenant: &str) -> TenantVolume {
        TenantVolume::sample(tenant)
    }

    fn row(id: &str, status: &str, left: Option<i64>) -> SnapshotRow {
        SnapshotRow {
            id: id.into(),
            status: status.into(),
            created_at: chrono::DateTime::parse_from_rfc3339("2026-03-01T08:30:00Z")
                .ok()
                .map(|d| d.with_timezone(&chrono::Utc)),
            size_bytes: 36_000_000,
            retention_days: Some(5),
            retention_left_hours: left,
        }
    }

    #[test]
    fn the_snapshot_report_names_each_volume() {
        let o = TakeOutcome {
            taken: vec![
                Taken {
                    volume: volume("acme"),
                    snapshot: Some(row("vs_new", "created", Some(120))),
                    error: None,
                },
                Taken {
                    volume: volume("globex"),
                    snapshot: None,
                    error: Some(
                        "POST /apps/jarvis-globex/volumes/vol_globex/snapshots: 503".into(),
                    ),
                },
            ],
            warnings: Vec::new(),
        };
        insta::assert_snapshot!(take_text(&o));
    }

    #[test]
    fn the_snapshot_listing_shows_retention_left() {
        let o = ListOutcome {
            volumes: vec![
                Listed {
                    volume: volume("acme"),
                    snapshots: vec![
                        row("vs_a", "created", Some(99)),
                        row("vs_b", "running", Some(120)),
                    ],
                    error: None,
                },
                Listed {
                    volume: volume("globex"),
                    snapshots: Vec::new(),
                    error: None,
                },
            ],
        };
        insta::assert_snapshot!(list_text(&o));
        let json = crate::ops::to_json_pretty(&o, "x").unwrap();
        assert!(json.contains("\"retention_left_hours\": 99"));
    }
}
