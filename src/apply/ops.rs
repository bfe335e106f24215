//! From a plan to a graph of operations. Pure: no I/O.
//!
//! Each change becomes one or two operations with explicit dependencies, so that the
//! executor can pipeline per tenant (a tenant's Machine starts as soon as its own app,
//! secrets and volume exist) and delete in reverse order (Machine → volume → app).
//! Safety checks (destroy, data loss, `prevent_destroy`) happen here, before anything
//! runs.
//!
//! [`build`] runs in phases, in this order (it fixes the operations' indices): refusals,
//! app creations, secrets (one operation per app), Machine deletions, volumes, snapshot
//! policies, Machine creations and updates, app deletions, rollout waves and gates.
//! Which operation waits for which is derived from the resource dependency rules in
//! [`crate::graph::needs`]: an operation that brings a resource into being waits for the
//! operations that bring its prerequisites into being, and a deletion waits for the
//! deletions of what needs the deleted resource. What is specific to operations stays
//! here: the new half of a replace waits for the old half, secrets are set per app,
//! and the waves are gated one after the other.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::graph::{Need, needs};
use crate::plan::{Action, Change, Plan};
use crate::resource::{Address, Kind, Owner, Resource, ResourceSet, Spec};
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
    /// A removed tenant's volumes exported off-site (fork + one-shot Machine, as
    /// `backup export`) before anything of the tenant is deleted: every deletion in its
    /// app waits for it, so a failed export keeps the tenant.
    ExportVolumes {
        tenant: String,
        config: Box<crate::resource::ExportConfig>,
        volumes: Vec<Address>,
    },
    /// A region move's first half (on the volume): the Machine mounting volume `id` is
    /// stopped, the volume snapshotted (waited for) and copied into the new region.
    MoveVolume {
        id: String,
        machine: Option<String>,
    },
    /// A region move's second half (on the Machine): the new Machine on the copy, started
    /// with its checks passing; then the old Machine `old` is destroyed and the old
    /// volume retired (kept), or deleted with `delete_old_volume`. A new Machine that
    /// does not start is rolled back: the old one is started again on the old volume.
    MoveMachine {
        old: String,
        old_volume: String,
        delete_old_volume: bool,
    },
    /// Rollout gate: the previous wave's Machines are started and their checks pass.
    Gate {
        wave: usize,
    },
    /// Assigns the app an IP address of the kind its address names.
    AssignIp,
    /// Releases an IP address (a dedicated IPv4 cannot be had back).
    ReleaseIp {
        ip: String,
    },
    /// Adds a custom domain and starts ACME issuance of its certificate.
    CreateCertificate {
        hostname: String,
    },
    /// Removes a custom domain and its certificates.
    DeleteCertificate {
        hostname: String,
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
            OpKind::ExportVolumes { .. } => "export volumes",
            OpKind::MoveVolume { .. } => "move volume",
            OpKind::MoveMachine { .. } => "move machine",
            OpKind::Gate { .. } => "rollout gate",
            OpKind::AssignIp => "assign ip",
            OpKind::ReleaseIp { .. } => "release ip",
            OpKind::CreateCertificate { .. } => "create certificate",
            OpKind::DeleteCertificate { .. } => "delete certificate",
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
    /// Tenants chosen as the canary wave (by name, tier or label); when any of them has
    /// a restarting update, they are the first wave instead of the first `canary`
    /// tenants in spec order.
    pub canary_tenants: Vec<String>,
}

/// Why an apply is refused before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub address: Address,
    pub reason: String,
}

/// Per app: secrets to set, secrets to delete, and the changes they come from.
type AppSecrets<'a> = (Vec<(String, Address)>, Vec<String>, Vec<&'a Change>);

/// A restarting Machine update (its operation) and its tenant, for the rollout waves.
type Update = (usize, Option<String>);

/// Builds the operations of a plan, or the reasons it may not run.
pub fn build(
    plan: &Plan,
    desired: &ResourceSet,
    observed: &Observed,
    opts: &BuildOptions,
) -> Result<Vec<Op>, Vec<Refusal>> {
    let refusals = refusals(plan, opts);
    if !refusals.is_empty() {
        return Err(refusals);
    }
    let changes: Vec<&Change> = plan.actionable().collect();
    let mut b = Builder::new(desired, observed, &changes);
    b.allow_data_loss = opts.allow_data_loss;
    b.create_apps(&changes);
    b.set_secrets(&changes);
    b.removal_exports(&changes);
    b.delete_machines(&changes);
    b.volumes(&changes);
    b.backup_policies(&changes);
    let updates = b.machines(&changes);
    b.network(&changes);
    b.delete_apps(&changes);
    let mut ops = b.ops;
    waves(&mut ops, &updates, opts);
    Ok(ops)
}

/// Why the plan may not run: destroys under `prevent_destroy`, and deletes or data loss
/// not allowed by a flag.
fn refusals(plan: &Plan, opts: &BuildOptions) -> Vec<Refusal> {
    let mut out = Vec::new();
    for c in plan.actionable() {
        let refuse = |reason: String| Refusal {
            address: c.address.clone(),
            reason,
        };
        let destroys = matches!(c.action, Action::Delete | Action::Replace);
        if destroys && c.prevent_destroy {
            out.push(refuse(format!(
                "{} is under lifecycle.prevent_destroy",
                c.action.as_str()
            )));
        }
        if c.action == Action::Delete && !opts.allow_destroy {
            out.push(refuse(delete_refusal(c)));
        }
        if c.data_loss && !opts.allow_data_loss {
            out.push(refuse(format!("{} destroys the volume's data and needs --allow-data-loss (a snapshot is taken first)", c.action.as_str())));
        }
    }
    out
}

/// Why a delete needs `--allow-destroy`; a dedicated IPv4 says that it is gone for good.
fn delete_refusal(c: &Change) -> String {
    if c.kind == Kind::Ip && c.address.ip_kind() == Some(crate::resource::IpKind::V4) {
        let ip = c.id.as_deref().unwrap_or("(unknown)");
        return format!(
            "releasing dedicated IPv4 {ip} is irreversible (Fly does not give a released address back; DNS records pointing at it stop working) and needs --allow-destroy"
        );
    }
    "deleting a managed resource no longer in the spec needs --allow-destroy".into()
}

/// The operations so far, and which operation brings each resource into being or
/// takes it away (for the dependencies of later ones).
struct Builder<'a> {
    desired: &'a ResourceSet,
    observed: &'a Observed,
    ops: Vec<Op>,
    /// Apps deleted by the plan (their secrets go with them).
    deleted_apps: HashSet<&'a str>,
    /// The operation creating each app.
    app_created: HashMap<&'a str, usize>,
    /// The operation setting each app's secrets.
    secrets_set: HashMap<&'a str, usize>,
    /// The operation destroying each Machine (also the old half of a replace).
    machine_gone: HashMap<&'a Address, usize>,
    /// The operation creating each volume (also the new half of a replace).
    volume_ready: HashMap<&'a Address, usize>,
    /// The operation creating each Machine (also the new half of a replace): its
    /// standbys wait for it.
    machine_created: HashMap<&'a Address, usize>,
    /// The export of each removed tenant's app its deletions wait for.
    exports: HashMap<&'a str, usize>,
    /// Which observed Machines mount each volume (the reverse of their mounts).
    mounted_by: HashMap<&'a Address, Vec<&'a Address>>,
    /// `--allow-data-loss`: a region move deletes the old volume instead of keeping it.
    allow_data_loss: bool,
}

impl<'a> Builder<'a> {
    fn new(desired: &'a ResourceSet, observed: &'a Observed, changes: &[&'a Change]) -> Self {
        let deleted_apps = changes
            .iter()
            .filter(|c| c.kind == Kind::App && c.action == Action::Delete)
            .map(|c| c.app.as_str())
            .collect();
        Builder {
            desired,
            observed,
            ops: Vec::new(),
            deleted_apps,
            app_created: HashMap::new(),
            secrets_set: HashMap::new(),
            machine_gone: HashMap::new(),
            volume_ready: HashMap::new(),
            machine_created: HashMap::new(),
            exports: HashMap::new(),
            mounted_by: mounted_by(observed),
            allow_data_loss: false,
        }
    }

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

    /// The operations that bring `r`'s prerequisites into being (none for those that
    /// already exist).
    fn prerequisites(&self, r: &Resource) -> Vec<usize> {
        let mut deps: Vec<usize> = Vec::new();
        for (_, need) in needs(r) {
            let op = match need {
                Need::App(app) => self.app_created.get(app),
                Need::Volume(v) => self.volume_ready.get(v),
                // A standby is created with its primary's ID.
                Need::Primary(m) => self.machine_created.get(&m),
                // One request sets (and removes) all of an app's secrets.
                Need::Secrets { app, .. } => self.secrets_set.get(app),
            };
            if let Some(&i) = op
                && !deps.contains(&i)
            {
                deps.push(i);
            }
        }
        deps
    }

    /// [`Builder::prerequisites`] of the desired resource at `address`.
    fn prerequisites_of(&self, address: &Address) -> Vec<usize> {
        self.desired
            .get(address)
            .map(|r| self.prerequisites(r))
            .unwrap_or_default()
    }

    /// Apps first.
    fn create_apps(&mut self, changes: &[&'a Change]) {
        for c in changes
            .iter()
            .filter(|c| c.kind == Kind::App && c.action == Action::Create)
        {
            let i = self.push(OpKind::CreateApp { app: c.app.clone() }, c, vec![]);
            self.app_created.insert(c.app.as_str(), i);
        }
    }

    /// Secrets: one operation per app.
    fn set_secrets(&mut self, changes: &[&'a Change]) {
        let mut secrets: BTreeMap<&'a str, AppSecrets<'a>> = BTreeMap::new();
        for c in changes.iter().filter(|c| c.kind == Kind::Secret) {
            let name = secret_name(&c.address);
            let e = secrets.entry(c.app.as_str()).or_default();
            match c.action {
                Action::Delete if self.deleted_apps.contains(c.app.as_str()) => continue,
                Action::Delete => e.1.push(name),
                _ => e.0.push((name, c.address.clone())),
            }
            e.2.push(c);
        }
        for (app, (set, delete, cs)) in secrets {
            let Some(first) = cs.first() else { continue };
            let mut deps = Vec::new();
            for c in &cs {
                for d in self.prerequisites_of(&c.address) {
                    if !deps.contains(&d) {
                        deps.push(d);
                    }
                }
            }
            let index = self.ops.len();
            self.ops.push(Op {
                index,
                kind: OpKind::SetSecrets {
                    app: app.to_string(),
                    set,
                    delete,
                },
                address: secrets_address(&first.address, app),
                tenant: first.tenant.clone(),
                app: app.to_string(),
                deps,
                wave: None,
                change: None,
            });
            self.secrets_set.insert(app, index);
        }
    }

    /// Deletions of Machines (also the old half of a replace): nothing needs a Machine,
    /// so they wait for nothing.
    fn delete_machines(&mut self, changes: &[&'a Change]) {
        for c in changes.iter().filter(|c| {
            c.kind == Kind::Machine && matches!(c.action, Action::Delete | Action::Replace)
        }) {
            let id = c.id.clone().unwrap_or_default();
            let deps = self.export_of(c);
            let i = self.push(OpKind::DeleteMachine { id }, c, deps);
            self.machine_gone.insert(&c.address, i);
        }
    }

    /// A removed tenant's volumes that the plan exports first: one operation per app
    /// (the export credentials are set on the app once for all its volumes).
    fn removal_exports(&mut self, changes: &[&'a Change]) {
        let mut by_app: BTreeMap<&'a str, Vec<&'a Change>> = BTreeMap::new();
        for c in changes.iter().filter(|c| {
            c.kind == Kind::Volume && c.action == Action::Delete && c.export_first.is_some()
        }) {
            by_app.entry(c.app.as_str()).or_default().push(c);
        }
        for (app, vols) in by_app {
            let (Some(first), Some(tenant)) = (vols.first(), vols[0].tenant.clone()) else {
                continue;
            };
            let Some(config) = first.export_first.clone() else {
                continue;
            };
            let index = self.ops.len();
            self.ops.push(Op {
                index,
                kind: OpKind::ExportVolumes {
                    tenant: tenant.clone(),
                    config,
                    volumes: vols.iter().map(|c| c.address.clone()).collect(),
                },
                address: Address::app(&Owner::Tenant(&tenant)),
                tenant: Some(tenant.clone()),
                app: app.to_string(),
                deps: Vec::new(),
                wave: None,
                // Carried out for the app's removal: a failure fails that change.
                change: Some(Address::app(&Owner::Tenant(&tenant))),
            });
            self.exports.insert(app, index);
        }
    }

    /// The export a deletion in a removed tenant's app waits for (none elsewhere).
    fn export_of(&self, c: &Change) -> Vec<usize> {
        self.exports
            .get(c.app.as_str())
            .copied()
            .into_iter()
            .collect()
    }

    /// Volumes: creates, extends, deletions after the Machines that mount them, and
    /// replaces (the new volume after the old one is gone).
    fn volumes(&mut self, changes: &[&'a Change]) {
        for c in changes.iter().filter(|c| c.kind == Kind::Volume) {
            match c.action {
                Action::Create => {
                    let i = self.push(OpKind::CreateVolume, c, self.prerequisites_of(&c.address));
                    self.volume_ready.insert(&c.address, i);
                }
                Action::Update => {
                    let size_gb = self
                        .desired
                        .get(&c.address)
                        .and_then(|r| r.volume())
                        .map(|v| v.size_gb)
                        .unwrap_or_default();
                    let deps = self.prerequisites_of(&c.address);
                    self.push(OpKind::ExtendVolume { size_gb }, c, deps);
                }
                Action::Delete | Action::Replace => {
                    let id = c.id.clone().unwrap_or_default();
                    let snapshot = snapshot_first(self.desired, self.observed, &c.address);
                    let mut deps = self.machines_gone_from(&c.address);
                    deps.extend(self.export_of(c));
                    let d = self.push(OpKind::DeleteVolume { id, snapshot }, c, deps);
                    if c.action == Action::Replace {
                        let mut deps = self.prerequisites_of(&c.address);
                        deps.push(d);
                        let i = self.push(OpKind::CreateVolume, c, deps);
                        self.volume_ready.insert(&c.address, i);
                    }
                }
                Action::Move => {
                    let kind = OpKind::MoveVolume {
                        id: c.id.clone().unwrap_or_default(),
                        machine: self.observed_machine_of(&c.address),
                    };
                    let i = self.push(kind, c, self.prerequisites_of(&c.address));
                    self.volume_ready.insert(&c.address, i);
                }
                Action::Noop => {}
            }
        }
    }

    /// The Fly ID of the observed Machine mounting `volume`.
    fn observed_machine_of(&self, volume: &Address) -> Option<String> {
        self.mounted_by
            .get(volume)
            .into_iter()
            .flatten()
            .find_map(|m| self.observed.resources.get(m).and_then(|r| r.id.clone()))
    }

    /// The Fly ID of the observed volume a moved Machine mounts (its first mount).
    fn observed_volume_of(&self, machine: &Address) -> String {
        self.desired
            .get(machine)
            .and_then(Resource::machine)
            .and_then(|m| m.mounts.first())
            .and_then(|mt| self.observed.resources.get(&mt.volume))
            .and_then(|r| r.id.clone())
            .unwrap_or_default()
    }

    /// The deletions of the observed Machines that mount `volume`.
    fn machines_gone_from(&self, volume: &Address) -> Vec<usize> {
        self.mounted_by
            .get(volume)
            .into_iter()
            .flatten()
            .filter_map(|m| self.machine_gone.get(m).copied())
            .collect()
    }

    /// Snapshot policies, after their volume exists.
    fn backup_policies(&mut self, changes: &[&'a Change]) {
        for c in changes.iter().filter(|c| {
            c.kind == Kind::BackupPolicy && matches!(c.action, Action::Create | Action::Update)
        }) {
            let Some(r) = self.desired.get(&c.address) else {
                continue;
            };
            let Spec::BackupPolicy(bp) = &r.spec else {
                continue;
            };
            let deps = self.prerequisites(r);
            let volume = bp.volume.clone();
            self.push(OpKind::UpdateBackup { volume }, c, deps);
        }
    }

    /// Machines: creates (also the new half of a replace, after the old half) and
    /// updates. Returns the restarting updates, for the rollout waves.
    fn machines(&mut self, changes: &[&'a Change]) -> Vec<Update> {
        let mut updates = Vec::new();
        // Primaries before standbys, which wait for their primary's create.
        let (primaries, standbys): (Vec<&&'a Change>, Vec<&&'a Change>) = changes
            .iter()
            .filter(|c| c.kind == Kind::Machine)
            .partition(|c| c.address.standby_index().is_none());
        for c in primaries.into_iter().chain(standbys) {
            let Some(r) = self
                .desired
                .get(&c.address)
                .filter(|r| r.machine().is_some())
            else {
                continue;
            };
            let mut deps = self.prerequisites(r);
            match c.action {
                Action::Create => {
                    let i = self.push(OpKind::CreateMachine, c, deps);
                    self.machine_created.insert(&c.address, i);
                }
                Action::Replace => {
                    deps.extend(self.machine_gone.get(&c.address).copied());
                    let i = self.push(OpKind::CreateMachine, c, deps);
                    self.machine_created.insert(&c.address, i);
                }
                Action::Move => {
                    let kind = OpKind::MoveMachine {
                        old: c.id.clone().unwrap_or_default(),
                        old_volume: self.observed_volume_of(&c.address),
                        delete_old_volume: self.allow_data_loss
                            && !self
                                .desired
                                .get(&c.address)
                                .is_some_and(|r| r.prevent_destroy),
                    };
                    self.push(kind, c, deps);
                }
                Action::Update => {
                    let kind = OpKind::UpdateMachine {
                        restart: c.restart,
                        secrets_only: c.restart && secrets_only(c),
                        metadata: metadata_changes(c),
                    };
                    let i = self.push(kind, c, deps);
                    if c.restart {
                        updates.push((i, c.tenant.clone()));
                    }
                }
                _ => {}
            }
        }
        updates
    }

    /// IP assignments and certificates: created once their app exists, deleted unless
    /// their app is deleted (which takes them along).
    fn network(&mut self, changes: &[&'a Change]) {
        for c in changes
            .iter()
            .filter(|c| matches!(c.kind, Kind::Ip | Kind::Certificate))
        {
            let name = c.address.name().unwrap_or_default().to_string();
            let kind = match (c.kind, c.action) {
                (Kind::Ip, Action::Create) => OpKind::AssignIp,
                (Kind::Ip, Action::Delete) => OpKind::ReleaseIp {
                    ip: c.id.clone().unwrap_or_default(),
                },
                (Kind::Certificate, Action::Create) => OpKind::CreateCertificate { hostname: name },
                (Kind::Certificate, Action::Delete) => OpKind::DeleteCertificate { hostname: name },
                _ => continue,
            };
            if c.action == Action::Delete && self.deleted_apps.contains(c.app.as_str()) {
                continue;
            }
            let deps = self.prerequisites_of(&c.address);
            self.push(kind, c, deps);
        }
    }

    /// App deletions last: after everything that lives in the app is gone (the
    /// deletions of what needs the app; its secrets go with it).
    fn delete_apps(&mut self, changes: &[&'a Change]) {
        let mut deletions_in: HashMap<&str, Vec<usize>> = HashMap::new();
        for o in &self.ops {
            if !matches!(
                o.kind,
                OpKind::DeleteMachine { .. } | OpKind::DeleteVolume { .. }
            ) {
                continue;
            }
            let Some(r) = o
                .change
                .as_ref()
                .and_then(|a| self.observed.resources.get(a))
            else {
                continue;
            };
            for (_, need) in needs(r) {
                if let Need::App(app) = need
                    && let Some(app) = self.deleted_apps.get(app)
                {
                    deletions_in.entry(app).or_default().push(o.index);
                }
            }
        }
        for c in changes
            .iter()
            .filter(|c| c.kind == Kind::App && c.action == Action::Delete)
        {
            let mut deps = deletions_in.remove(c.app.as_str()).unwrap_or_default();
            deps.extend(self.export_of(c));
            self.push(OpKind::DeleteApp { app: c.app.clone() }, c, deps);
        }
    }
}

/// Which observed Machines mount each volume: the reverse of their mount rules.
fn mounted_by(observed: &Observed) -> HashMap<&Address, Vec<&Address>> {
    let mut out: HashMap<&Address, Vec<&Address>> = HashMap::new();
    for r in observed
        .resources
        .iter()
        .filter(|r| r.kind() == Kind::Machine)
    {
        for (_, need) in needs(r) {
            if let Need::Volume(v) = need {
                out.entry(v).or_default().push(&r.address);
            }
        }
    }
    out
}

/// The secret's name, from its address (`….secret.NAME`).
fn secret_name(address: &Address) -> String {
    address.name().unwrap_or_default().to_string()
}

/// The address of an app's secrets operation: its secrets' owner, then `#secrets`.
fn secrets_address(first_secret: &Address, app: &str) -> Address {
    Address::secret_batch(&first_secret.owner().unwrap_or(Owner::SharedApp(app)))
}

/// The metadata keys a Machine update sets (`Some`) or removes (`None`).
fn metadata_changes(c: &Change) -> Vec<(String, Option<String>)> {
    c.fields
        .iter()
        .filter_map(|f| f.metadata_op())
        .map(|op| (op.key().to_string(), op.value().map(str::to_string)))
        .collect()
}

/// Whether a restarting update changes only metadata: metadata never restarts a Machine,
/// so its restart is only for the app's secrets (whose records the executor writes).
fn secrets_only(c: &Change) -> bool {
    c.fields.iter().all(|f| f.path.is_metadata())
}

/// The address of the gate after rollout wave `w`.
fn wave_address(w: usize) -> Address {
    Address::rollout_gate(w)
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
fn waves(ops: &mut Vec<Op>, updates: &[Update], opts: &BuildOptions) {
    if updates.is_empty()
        || (opts.canary == 0 && opts.max_parallel_updates == 0 && opts.canary_tenants.is_empty())
    {
        return;
    }
    let wave_of = tenant_waves(updates, opts);
    let waves = wave_of.values().copied().max().unwrap_or(0) + 1;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); waves];
    for (i, t) in updates {
        members[wave_of.get(t).copied().unwrap_or(0)].push(*i);
    }
    let gates = gates(ops, members);
    for (i, t) in updates {
        let w = wave_of.get(t).copied().unwrap_or(0);
        ops[*i].wave = Some(w);
        if w > 0 {
            ops[*i].deps.push(gates[w - 1]);
        }
    }
}

/// The wave of each tenant: the chosen canary tenants (else the first `canary` tenants)
/// make wave 0; the others fill the later waves in order of first appearance.
fn tenant_waves<'u>(
    updates: &'u [Update],
    opts: &BuildOptions,
) -> HashMap<&'u Option<String>, usize> {
    let chosen = |t: &Option<String>| {
        t.as_ref()
            .is_some_and(|t| opts.canary_tenants.iter().any(|c| c == t))
    };
    let mut wave_of: HashMap<&Option<String>, usize> = HashMap::new();
    for (_, t) in updates.iter().filter(|(_, t)| chosen(t)) {
        wave_of.insert(t, 0);
    }
    let picked = !wave_of.is_empty();
    let size_after = if opts.max_parallel_updates == 0 {
        usize::MAX
    } else {
        opts.max_parallel_updates
    };
    let mut wave = usize::from(picked);
    let mut in_wave = 0;
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
    wave_of
}

/// One gate per boundary between waves, after every update of the wave before it and
/// the previous gate. Returns the gates' operations.
fn gates(ops: &mut Vec<Op>, members: Vec<Vec<usize>>) -> Vec<usize> {
    let boundaries = members.len().saturating_sub(1);
    let mut gates: Vec<usize> = Vec::new();
    for (w, mut deps) in members.into_iter().enumerate().take(boundaries) {
        let index = ops.len();
        deps.extend(gates.last().copied());
        ops.push(Op {
            index,
            kind: OpKind::Gate { wave: w },
            address: wave_address(w),
            tenant: None,
            app: String::new(),
            deps,
            wave: Some(w),
            change: None,
        });
        gates.push(index);
    }
    gates
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;

    fn desired() -> ResourceSet {
        crate::graph::tests::fleet(&["a", "b"])
    }

    /// The resources an operation brings into being (a secrets operation: its app's).
    fn resources_of<'o>(op: &'o Op, set: &'o ResourceSet) -> Vec<&'o Address> {
        match &op.kind {
            OpKind::SetSecrets { set: s, .. } => s.iter().map(|(_, a)| a).collect(),
            _ => set
                .get(&op.address)
                .map(|r| vec![&r.address])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn creations_wait_for_exactly_their_prerequisites_in_the_graph() {
        let set = desired();
        let plan = crate::plan::diff(&set, &Observed::default());
        let ops = build(&plan, &set, &Observed::default(), &BuildOptions::default()).unwrap();
        let graph = Graph::build(&set).unwrap();
        for op in &ops {
            let mut from_ops: Vec<&Address> = op
                .deps
                .iter()
                .flat_map(|d| resources_of(&ops[*d], &set))
                .collect();
            from_ops.sort();
            from_ops.dedup();
            let mut from_graph: Vec<&Address> = resources_of(op, &set)
                .into_iter()
                .flat_map(|a| graph.dependencies(a))
                .collect();
            from_graph.sort();
            from_graph.dedup();
            assert_eq!(from_ops, from_graph, "{}", op.address);
        }
        let machine = ops
            .iter()
            .find(|o| o.kind == OpKind::CreateMachine)
            .unwrap();
        let kinds: Vec<&str> = machine.deps.iter().map(|d| ops[*d].kind.label()).collect();
        assert_eq!(kinds, ["create app", "create volume", "set secrets"]);
    }

    #[test]
    fn a_standby_is_created_after_its_primary_and_its_old_self() {
        let spec = "version: 1\norg: o\ndefaults: { image: 'img:1', region: iad, standbys: 1 }\ntenants: [{ name: a }]\n";
        let set = crate::spec::load_bytes(spec.as_bytes(), "t.yaml")
            .unwrap()
            .desired
            .resources;
        let deps_of = |ops: &[Op], at: &str| -> Vec<String> {
            let op = ops
                .iter()
                .find(|o| o.kind == OpKind::CreateMachine && o.address.as_str() == at)
                .unwrap();
            op.deps
                .iter()
                .map(|d| format!("{} {}", ops[*d].kind.label(), ops[*d].address))
                .collect()
        };
        let plan = crate::plan::diff(&set, &Observed::default());
        let ops = build(&plan, &set, &Observed::default(), &BuildOptions::default()).unwrap();
        assert_eq!(
            deps_of(&ops, "tenant.a.machine[0].standby[0]"),
            [
                "create app tenant.a.app",
                "create machine tenant.a.machine[0]"
            ]
        );
        // Both replaced (a region change): the new standby waits for the new primary and
        // for its old self to be gone.
        let observed = observed_in(&set, "ams");
        let plan = crate::plan::diff(&set, &observed);
        let ops = build(&plan, &set, &observed, &BuildOptions::default()).unwrap();
        assert_eq!(
            deps_of(&ops, "tenant.a.machine[0].standby[0]"),
            [
                "create machine tenant.a.machine[0]",
                "destroy machine tenant.a.machine[0].standby[0]"
            ]
        );
    }

    /// `desired` as Fly would report it with every volume and Machine in `region`.
    fn observed_in(desired: &ResourceSet, region: &str) -> Observed {
        let resources = desired
            .iter()
            .cloned()
            .map(|mut r| {
                r.id = Some(format!("id-{}", r.address));
                match &mut r.spec {
                    Spec::Volume(v) => v.region = region.into(),
                    Spec::Machine(m) => m.region = region.into(),
                    _ => {}
                }
                r
            })
            .collect();
        Observed {
            resources: ResourceSet::new(resources),
            ..Observed::default()
        }
    }

    #[test]
    fn a_region_move_is_two_operations_without_data_loss() {
        let set = crate::graph::tests::fleet(&["a"]);
        let observed = observed_in(&set, "ams");
        let plan = crate::plan::diff(&set, &observed);
        let moved: Vec<(&str, Action, bool)> = plan
            .actionable()
            .map(|c| (c.address.as_str(), c.action, c.data_loss))
            .collect();
        assert_eq!(
            moved,
            [
                ("tenant.a.volume.data[0]", Action::Move, false),
                ("tenant.a.machine[0]", Action::Move, false)
            ]
        );
        let machine = plan.actionable().nth(1).unwrap();
        assert_eq!(
            machine.downtime_secs,
            Some(crate::platform::move_downtime_secs(1))
        );
        // Nothing to allow: no --allow-data-loss, no --allow-destroy.
        let ops = build(&plan, &set, &observed, &BuildOptions::default()).unwrap();
        let kinds: Vec<&str> = ops.iter().map(|o| o.kind.label()).collect();
        assert_eq!(kinds, ["move volume", "move machine"]);
        assert_eq!(ops[1].deps, [0], "the Machine moves after its volume");
        assert_eq!(
            ops[0].kind,
            OpKind::MoveVolume {
                id: "id-tenant.a.volume.data[0]".into(),
                machine: Some("id-tenant.a.machine[0]".into())
            }
        );
        assert_eq!(
            ops[1].kind,
            OpKind::MoveMachine {
                old: "id-tenant.a.machine[0]".into(),
                old_volume: "id-tenant.a.volume.data[0]".into(),
                delete_old_volume: false
            }
        );
    }

    #[test]
    fn a_region_and_encryption_change_is_still_a_replace_with_data_loss() {
        let set = crate::graph::tests::fleet(&["a"]);
        let mut observed = observed_in(&set, "ams");
        let resources = observed
            .resources
            .iter()
            .cloned()
            .map(|mut r| {
                if let Spec::Volume(v) = &mut r.spec {
                    v.encrypted = false;
                }
                r
            })
            .collect();
        observed.resources = ResourceSet::new(resources);
        let plan = crate::plan::diff(&set, &observed);
        let actions: Vec<(Action, bool)> =
            plan.actionable().map(|c| (c.action, c.data_loss)).collect();
        assert_eq!(actions, [(Action::Replace, true), (Action::Replace, false)]);
    }

    #[test]
    fn refusals_come_before_any_operation() {
        let set = desired();
        let mut plan = crate::plan::diff(&set, &Observed::default());
        plan.changes[0].action = Action::Delete;
        plan.changes[0].prevent_destroy = true;
        let r = build(&plan, &set, &Observed::default(), &BuildOptions::default()).unwrap_err();
        let reasons: Vec<&str> = r.iter().map(|x| x.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "delete is under lifecycle.prevent_destroy",
                "deleting a managed resource no longer in the spec needs --allow-destroy"
            ]
        );
    }

    #[test]
    fn chosen_canary_tenants_go_first_whatever_their_order() {
        let updates: Vec<Update> = ["a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, t)| (i, Some(t.to_string())))
            .collect();
        let opts = BuildOptions {
            canary_tenants: vec!["d".into(), "b".into(), "zz".into()],
            max_parallel_updates: 2,
            ..BuildOptions::default()
        };
        let w = tenant_waves(&updates, &opts);
        let of = |t: &str| w[&Some(t.to_string())];
        assert_eq!((of("d"), of("b")), (0, 0));
        assert_eq!((of("a"), of("c"), of("e")), (1, 1, 2));
        // None of the chosen tenants has an update: the first `canary` tenants lead.
        let opts = BuildOptions {
            canary_tenants: vec!["zz".into()],
            canary: 1,
            ..BuildOptions::default()
        };
        let w = tenant_waves(&updates, &opts);
        assert_eq!((w[&Some("a".into())], w[&Some("b".into())]), (0, 1));
    }

    #[test]
    fn wave_gates_chain_and_hold_back_later_waves() {
        let mut ops: Vec<Op> = (0..3)
            .map(|i| Op {
                index: i,
                kind: OpKind::UpdateMachine {
                    restart: true,
                    secrets_only: false,
                    metadata: Vec::new(),
                },
                address: Address::machine(&Owner::Tenant(&format!("t{i}")), 0),
                tenant: Some(format!("t{i}")),
                app: format!("app-{i}"),
                deps: Vec::new(),
                wave: None,
                change: None,
            })
            .collect();
        let updates: Vec<Update> = ops.iter().map(|o| (o.index, o.tenant.clone())).collect();
        let opts = BuildOptions {
            canary: 1,
            max_parallel_updates: 1,
            ..BuildOptions::default()
        };
        waves(&mut ops, &updates, &opts);
        let gates: Vec<(&str, &[usize])> = ops[3..]
            .iter()
            .map(|o| (o.address.as_str(), o.deps.as_slice()))
            .collect();
        assert_eq!(
            gates,
            [
                ("rollout.wave[0]", &[0][..]),
                ("rollout.wave[1]", &[1, 3][..])
            ]
        );
        assert_eq!(ops[1].deps, [3]);
        assert_eq!(ops[2].deps, [4]);
        assert_eq!(ops[2].wave, Some(2));
    }
}
