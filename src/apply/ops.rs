//! From a plan to a graph of operations. Pure: no I/O.
//!
//! Each change becomes one or two operations with explicit dependencies, so that the
//! executor can pipeline per tenant (a tenant's Machine starts as soon as its own app,
//! secrets and volume exist) and delete in reverse order (Machine → volume → app).
//! Safety checks (destroy, data loss, `prevent_destroy`) happen here, before anything
//! runs.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::plan::{Action, Change, Plan};
use crate::resource::{Address, Kind, Owner, ResourceSet, Spec};
use crate::state::Observed;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    CreateApp {
        app: String,
    },
    /// Sets (and deletes) an app's secrets in one request.
    SetSecrets {
        app: String,
        set: Vec<(String, Address)>,
        delete: Vec<String>,
    },
    CreateVolume,
    ExtendVolume {
        size_gb: u32,
    },
    /// Snapshot retention and daily backups of a volume.
    UpdateBackup {
        volume: Address,
    },
    CreateMachine,
    /// `restart`: a config update; otherwise only metadata keys change.
    /// `secrets_only`: the restart is only for the app's secrets — skipped when setting
    /// them changed nothing on Fly (an adopted app already holding these values).
    UpdateMachine {
        restart: bool,
        secrets_only: bool,
        metadata: Vec<(String, Option<String>)>,
    },
    DeleteMachine {
        id: String,
    },
    DeleteVolume {
        id: String,
        snapshot: bool,
    },
    DeleteApp {
        app: String,
    },
    /// Rollout gate: the previous wave's Machines are started and their checks pass.
    Gate {
        wave: usize,
    },
}

impl OpKind {
    pub fn label(&self) -> &'static str {
        match self {
            OpKind::CreateApp { .. } => "create app",
            OpKind::SetSecrets { .. } => "set secrets",
            OpKind::CreateVolume => "create volume",
            OpKind::ExtendVolume { .. } => "extend volume",
            OpKind::UpdateBackup { .. } => "update snapshot policy",
            OpKind::CreateMachine => "create machine",
            OpKind::UpdateMachine { restart: true, .. } => "update machine",
            OpKind::UpdateMachine { restart: false, .. } => "update machine metadata",
            OpKind::DeleteMachine { .. } => "destroy machine",
            OpKind::DeleteVolume { .. } => "destroy volume",
            OpKind::DeleteApp { .. } => "destroy app",
            OpKind::Gate { .. } => "rollout gate",
        }
    }

    /// Lower runs first among ready operations: app creation is the longest chain
    /// (Fly allows about one per second per organization), so it never waits.
    pub fn priority(&self) -> u8 {
        match self {
            OpKind::CreateApp { .. } => 0,
            OpKind::Gate { .. } => 1,
            OpKind::SetSecrets { .. } | OpKind::CreateVolume => 2,
            OpKind::CreateMachine => 3,
            _ => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub index: usize,
    pub kind: OpKind,
    /// The resource it acts on (for gates and secrets: the app's address).
    pub address: Address,
    pub tenant: Option<String>,
    pub app: String,
    pub deps: Vec<usize>,
    /// The rollout wave of a restarting Machine update.
    pub wave: Option<usize>,
    /// The plan's change this operation (partly) carries out.
    pub change: Option<Address>,
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub allow_destroy: bool,
    pub allow_data_loss: bool,
    /// Tenants updated (and checked) first.
    pub canary: usize,
    /// Tenants per later wave (0: all at once).
    pub max_parallel_updates: usize,
}

/// Why an apply is refused before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub address: Address,
    pub reason: String,
}

struct Builder {
    ops: Vec<Op>,
}

impl Builder {
    fn push(&mut self, kind: OpKind, c: &Change, deps: Vec<usize>) -> usize {
        let index = self.ops.len();
        self.ops.push(Op {
            index,
            kind,
            address: c.address.clone(),
            tenant: c.tenant.clone(),
            app: c.app.clone(),
            deps,
            wave: None,
            change: Some(c.address.clone()),
        });
        index
    }
}

/// Per app: secrets to set, secrets to delete, and the changes they come from.
type AppSecrets<'a> = (Vec<(String, Address)>, Vec<String>, Vec<&'a Change>);

/// Builds the operations of a plan, or the reasons it may not run.
pub fn build(
    plan: &Plan,
    desired: &ResourceSet,
    observed: &Observed,
    opts: &BuildOptions,
) -> Result<Vec<Op>, Vec<Refusal>> {
    let mut refusals = Vec::new();
    for c in plan.actionable() {
        let destroys = matches!(c.action, Action::Delete | Action::Replace);
        if destroys && c.prevent_destroy {
            refusals.push(Refusal {
                address: c.address.clone(),
                reason: format!("{} is under lifecycle.prevent_destroy", c.action.as_str()),
            });
        }
        if c.action == Action::Delete && !opts.allow_destroy {
            refusals.push(Refusal {
                address: c.address.clone(),
                reason: "deleting a managed resource no longer in the spec needs --allow-destroy"
                    .into(),
            });
        }
        if c.data_loss && !opts.allow_data_loss {
            refusals.push(Refusal {
                address: c.address.clone(),
                reason: format!("{} destroys the volume's data and needs --allow-data-loss (a snapshot is taken first)", c.action.as_str()),
            });
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }

    let mut b = Builder { ops: Vec::new() };
    let changes: Vec<&Change> = plan.actionable().collect();
    let deleted_apps: HashSet<&str> = changes
        .iter()
        .filter(|c| c.kind == Kind::App && c.action == Action::Delete)
        .map(|c| c.app.as_str())
        .collect();

    // Apps first.
    let mut create_app: HashMap<&str, usize> = HashMap::new();
    for c in changes
        .iter()
        .filter(|c| c.kind == Kind::App && c.action == Action::Create)
    {
        let i = b.push(OpKind::CreateApp { app: c.app.clone() }, c, vec![]);
        create_app.insert(c.app.as_str(), i);
    }
    let app_dep = |app: &str| {
        create_app
            .get(app)
            .copied()
            .into_iter()
            .collect::<Vec<usize>>()
    };

    // Secrets: one request per app.
    let mut secrets: BTreeMap<&str, AppSecrets<'_>> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.kind == Kind::Secret) {
        let name = c.address.name().unwrap_or_default().to_string();
        let e = secrets.entry(c.app.as_str()).or_default();
        match c.action {
            Action::Delete if deleted_apps.contains(&c.app.as_str()) => continue,
            Action::Delete => e.1.push(name),
            _ => e.0.push((name, c.address.clone())),
        }
        e.2.push(c);
    }
    let mut set_secrets: HashMap<&str, usize> = HashMap::new();
    for (app, (set, delete, cs)) in secrets {
        let Some(first) = cs.first() else { continue };
        let index = b.ops.len();
        b.ops.push(Op {
            index,
            kind: OpKind::SetSecrets {
                app: app.to_string(),
                set,
                delete,
            },
            address: Address::secret_batch(&first.address.owner().unwrap_or(Owner::SharedApp(app))),
            tenant: first.tenant.clone(),
            app: app.to_string(),
            deps: app_dep(app),
            wave: None,
            change: None,
        });
        set_secrets.insert(app, index);
    }

    // Deletions of Machines (also the old half of a replace).
    let mut machine_gone: HashMap<&Address, usize> = HashMap::new();
    for c in changes
        .iter()
        .filter(|c| c.kind == Kind::Machine && matches!(c.action, Action::Delete | Action::Replace))
    {
        let id = c.id.clone().unwrap_or_default();
        let i = b.push(OpKind::DeleteMachine { id }, c, vec![]);
        machine_gone.insert(&c.address, i);
    }
    // Which observed Machine mounts a volume (by volume id).
    let mounted_by: HashMap<&str, &Address> = observed
        .machines
        .iter()
        .flat_map(|(addr, m)| {
            m.config
                .mounts
                .iter()
                .map(move |mt| (mt.volume.as_str(), addr))
        })
        .collect();

    // Volumes.
    let mut volume_ready: HashMap<&Address, usize> = HashMap::new();
    for c in changes.iter().filter(|c| c.kind == Kind::Volume) {
        match c.action {
            Action::Create => {
                let i = b.push(OpKind::CreateVolume, c, app_dep(&c.app));
                volume_ready.insert(&c.address, i);
            }
            Action::Update => {
                let size_gb = desired
                    .get(&c.address)
                    .and_then(|r| r.volume())
                    .map(|v| v.size_gb)
                    .unwrap_or_default();
                b.push(OpKind::ExtendVolume { size_gb }, c, vec![]);
            }
            Action::Delete | Action::Replace => {
                let id = c.id.clone().unwrap_or_default();
                let snapshot = snapshot_first(desired, observed, &c.address);
                let deps: Vec<usize> = mounted_by
                    .get(id.as_str())
                    .and_then(|m| machine_gone.get(m))
                    .copied()
                    .into_iter()
                    .collect();
                let d = b.push(OpKind::DeleteVolume { id, snapshot }, c, deps);
                if c.action == Action::Replace {
                    let mut deps = app_dep(&c.app);
                    deps.push(d);
                    let i = b.push(OpKind::CreateVolume, c, deps);
                    volume_ready.insert(&c.address, i);
                }
            }
            Action::Noop => {}
        }
    }
    // Snapshot policies.
    for c in changes.iter().filter(|c| {
        c.kind == Kind::BackupPolicy && matches!(c.action, Action::Create | Action::Update)
    }) {
        let Some(Spec::BackupPolicy(bp)) = desired.get(&c.address).map(|r| &r.spec) else {
            continue;
        };
        let deps: Vec<usize> = volume_ready.get(&bp.volume).copied().into_iter().collect();
        b.push(
            OpKind::UpdateBackup {
                volume: bp.volume.clone(),
            },
            c,
            deps,
        );
    }

    // Machines: creates (also the new half of a replace) and updates.
    let mut updates: Vec<(usize, Option<String>)> = Vec::new();
    for c in changes.iter().filter(|c| c.kind == Kind::Machine) {
        let Some(m) = desired.get(&c.address).and_then(|r| r.machine()) else {
            continue;
        };
        let mut deps = app_dep(&c.app);
        deps.extend(set_secrets.get(c.app.as_str()).copied());
        for mt in &m.mounts {
            deps.extend(volume_ready.get(&mt.volume).copied());
        }
        match c.action {
            Action::Create => {
                b.push(OpKind::CreateMachine, c, deps);
            }
            Action::Replace => {
                deps.extend(machine_gone.get(&c.address).copied());
                b.push(OpKind::CreateMachine, c, deps);
            }
            Action::Update => {
                let metadata: Vec<(String, Option<String>)> = c
                    .fields
                    .iter()
                    .filter_map(|f| f.metadata_op())
                    .map(|op| (op.key().to_string(), op.value().map(str::to_string)))
                    .collect();
                let secrets_only = c.restart
                    && c.fields.iter().all(|f| f.path.is_metadata())
                    && c.fields
                        .iter()
                        .any(|f| f.path.is_metadata_key(crate::resource::META_SECRETS));
                let i = b.push(
                    OpKind::UpdateMachine {
                        restart: c.restart,
                        secrets_only,
                        metadata,
                    },
                    c,
                    deps,
                );
                if c.restart {
                    updates.push((i, c.tenant.clone()));
                }
            }
            _ => {}
        }
    }

    // App deletions last: after everything in the app is gone.
    let mut deletions_in: HashMap<String, Vec<usize>> = HashMap::new();
    for o in &b.ops {
        if matches!(
            o.kind,
            OpKind::DeleteMachine { .. } | OpKind::DeleteVolume { .. }
        ) && deleted_apps.contains(o.app.as_str())
        {
            deletions_in.entry(o.app.clone()).or_default().push(o.index);
        }
    }
    for c in changes
        .iter()
        .filter(|c| c.kind == Kind::App && c.action == Action::Delete)
    {
        let deps = deletions_in.remove(&c.app).unwrap_or_default();
        b.push(OpKind::DeleteApp { app: c.app.clone() }, c, deps);
    }

    waves(&mut b.ops, &updates, opts);
    Ok(b.ops)
}

/// Whether to snapshot a volume before destroying it (its backup policy; on by default).
fn snapshot_first(desired: &ResourceSet, observed: &Observed, volume: &Address) -> bool {
    let policy = |set: &ResourceSet| {
        set.iter().find_map(|r| match &r.spec {
            Spec::BackupPolicy(b) if &b.volume == volume => Some(b.snapshot_before_destroy),
            _ => None,
        })
    };
    policy(desired)
        .or_else(|| policy(&observed.resources))
        .unwrap_or(true)
}

/// Splits restarting Machine updates into rollout waves by tenant: the canary tenants,
/// then groups of `max_parallel_updates` tenants, each wave gated on the previous one.
fn waves(ops: &mut Vec<Op>, updates: &[(usize, Option<String>)], opts: &BuildOptions) {
    if updates.is_empty() || (opts.canary == 0 && opts.max_parallel_updates == 0) {
        return;
    }
    // Tenants fill the waves in order of first appearance.
    let mut wave_of: HashMap<&Option<String>, usize> = HashMap::new();
    let mut wave = 0;
    let mut in_wave = 0;
    let size_after = if opts.max_parallel_updates == 0 {
        usize::MAX
    } else {
        opts.max_parallel_updates
    };
    for (_, t) in updates {
        if wave_of.contains_key(t) {
            continue;
        }
        let limit = if wave == 0 && opts.canary > 0 {
            opts.canary
        } else {
            size_after
        };
        if in_wave >= limit {
            wave += 1;
            in_wave = 0;
        }
        wave_of.insert(t, wave);
        in_wave += 1;
    }
    let waves = wave + 1;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); waves];
    for (i, t) in updates {
        members[wave_of.get(t).copied().unwrap_or(0)].push(*i);
    }
    // One gate per boundary, depending on every update of the wave before it.
    let mut gates = Vec::new();
    for (w, mut d) in members.into_iter().enumerate().take(waves - 1) {
        let index = ops.len();
        if let Some(prev) = gates.last() {
            d.push(*prev);
        }
        ops.push(Op {
            index,
            kind: OpKind::Gate { wave: w },
            address: Address::rollout_gate(w),
            tenant: None,
            app: String::new(),
            deps: d,
            wave: Some(w),
            change: None,
        });
        gates.push(index);
    }
    for (i, t) in updates {
        let w = wave_of.get(t).copied().unwrap_or(0);
        ops[*i].wave = Some(w);
        if w > 0 {
            ops[*i].deps.push(gates[w - 1]);
        }
    }
}
