//! `snapshot` and `snapshots`: on-demand snapshots of the tenants' volumes (under the
//! fleet lock, one volume at a time within Fly's rate limits, each waited for until
//! complete) and a listing of the snapshots each volume has, with the retention left.

use std::path::PathBuf;

use serde::Serialize;

use crate::apply::lock::LockOptions;
use crate::diag::Diagnostic;
use crate::ops::Error;
use crate::ops::data::{self, SnapshotRow, TenantVolume};
use crate::ops::target::TargetOptions;

/// Which volumes to snapshot or list.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub spec: PathBuf,
    /// Only these tenants (empty: all).
    pub tenants: Vec<String>,
    pub target: TargetOptions,
    /// The fleet lock (taking snapshots only).
    pub lock: LockOptions,
}

/// One volume's new snapshot, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct Taken {
    pub volume: TenantVolume,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `snapshot` did, per volume, with warnings (a lock that could not be released).
#[derive(Debug, Clone, Serialize)]
pub struct TakeOutcome {
    pub taken: Vec<Taken>,
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

impl TakeOutcome {
    pub fn failures(&self) -> usize {
        self.taken.iter().filter(|t| t.error.is_some()).count()
    }
}

/// One volume and its snapshots, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub volume: TenantVolume,
    pub snapshots: Vec<SnapshotRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `snapshots` found.
#[derive(Debug, Clone, Serialize)]
pub struct ListOutcome {
    pub volumes: Vec<Listed>,
}

/// Takes one snapshot of every selected volume and waits for each to complete.
pub fn take(opts: &Options) -> Result<TakeOutcome, Error> {
    let fleet = data::open(&opts.spec, &opts.target, &opts.tenants, "snapshot")?;
    let volumes = fleet.volumes(&opts.tenants);
    if volumes.is_empty() {
        return Err(no_volumes(&opts.tenants));
    }
    let lock = fleet.lock(&opts.lock, "snapshot")?;
    let client = fleet.client();
    let taken = fleet.session.block_on(async {
        let mut out = Vec::new();
        for v in volumes {
            let r = data::take_snapshot(client, &v.app, &v.id).await;
            out.push(match r {
                Ok(s) => Taken {
                    volume: v,
                    snapshot: Some(s),
                    error: None,
                },
                Err(e) => Taken {
                    volume: v,
                    snapshot: None,
                    error: Some(e),
                },
            });
        }
        out
    });
    let warnings = fleet.unlock(lock).into_iter().collect();
    Ok(TakeOutcome { taken, warnings })
}

/// Lists the snapshots of every selected volume.
pub fn list(opts: &Options) -> Result<ListOutcome, Error> {
    let fleet = data::open(&opts.spec, &opts.target, &opts.tenants, "snapshots")?;
    let client = fleet.client();
    let volumes = fleet.session.block_on(async {
        let mut out = Vec::new();
        for v in fleet.volumes(&opts.tenants) {
            let (snapshots, error) = match data::list_snapshots(client, &v.app, &v.id).await {
                Ok(s) => (s, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            out.push(Listed {
                volume: v,
                snapshots,
                error,
            });
        }
        out
    });
    Ok(ListOutcome { volumes })
}

fn no_volumes(tenants: &[String]) -> Error {
    let which = if tenants.is_empty() {
        "the fleet has".to_string()
    } else {
        format!("tenant(s) {} have", tenants.join(", "))
    };
    Error::new(
        Diagnostic::error(format!("{which} no volumes to snapshot"))
            .hint("apply the spec first; `flotilla snapshots SPEC` lists what exists"),
    )
}
