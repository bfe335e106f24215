//! The scenario file: a per-tenant base (a spec, an inline profile, or both), the sweep
//! axes and the architectures to compare. Read with the spec's positioned YAML reader and
//! checked with its schema checker, so every problem names file:line:column, the path, what
//! is wrong and a hint; all problems are reported together. Keys a scenario shares with
//! specs (size, memory, region, idle, volume and usage figures) take the spec's
//! declarations from `spec::decl` and its validators from `platform`, so both accept the
//! same values with the same messages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::diag::{Diagnostic, Diagnostics, Mark, suggest};
use crate::platform::{self, PlanChoice, SUSPEND_MAX_MEMORY_MB};
use crate::resource::{IdleMode, Kind, Resource, Usage};
use crate::spec::decl;
use crate::spec::schema::{Checker, Field, Ty, f, parse_decimal, parse_memory, req};
use crate::spec::yaml::{self, Node, Value};

use super::capacity::MemoryModel;

/// The most tenants a sweep may name.
pub const MAX_TENANTS: u64 = 1_000_000;
/// A sweep with more rows than this needs `--force`.
pub const MAX_ROWS: usize = 10_000;

/// The architectures flotilla compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchKind {
    /// One app, Machine and volume per tenant.
    AppPerTenant,
    /// One Machine and volume per tenant inside one shared app, behind a router tier.
    MachinePerTenant,
    /// Tenants packed onto shared Machines sized by the memory model.
    SharedPool,
    /// Always-on shared services plus on-demand Machines for the active tenants.
    Hybrid,
}

impl ArchKind {
    pub const ALL: [ArchKind; 4] = [
        ArchKind::AppPerTenant,
        ArchKind::MachinePerTenant,
        ArchKind::SharedPool,
        ArchKind::Hybrid,
    ];
    pub const NAMES: [&'static str; 4] = [
        "app-per-tenant",
        "machine-per-tenant",
        "shared-pool",
        "hybrid",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ArchKind::AppPerTenant => "app-per-tenant",
            ArchKind::MachinePerTenant => "machine-per-tenant",
            ArchKind::SharedPool => "shared-pool",
            ArchKind::Hybrid => "hybrid",
        }
    }

    fn parse(s: &str) -> Option<ArchKind> {
        ArchKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How tenants sit on a pool's Machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Every tenant lives on one Machine (its base memory resident, its data on that
    /// Machine's volume); the active ones add their agents.
    Pinned,
    /// Only active tenants take memory: sessions are placed on any Machine; tenant data
    /// lives outside the pool.
    Session,
}

/// A Machine size: a preset and memory, either of which may be left to the capacity model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizing {
    /// `None`: any preset (`size: auto`).
    pub preset: Option<String>,
    /// `None`: any memory the preset allows (`memory: auto`).
    pub memory_mb: Option<u32>,
}

impl Sizing {
    pub fn is_fixed(&self) -> bool {
        self.preset.is_some() && self.memory_mb.is_some()
    }
}

/// What one tenant needs, whatever the architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub sizing: Sizing,
    /// The per-tenant Machine's idle policy (the default of architectures that have one).
    pub idle: IdleMode,
    /// The region when the sweep names none.
    pub region: String,
    /// Provisioned volume per tenant (0: none).
    pub volume_gb: u32,
    pub snapshot_retention: u32,
    pub auto_backup: bool,
    /// rootfs, egress per active tenant, volume use and snapshot change, certificates and
    /// IPv4 per app; `active_hours_per_day` is the sweep's default.
    pub usage: Usage,
}

/// A region, or a mix of regions with weights adding up to 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionMix {
    pub label: String,
    pub parts: Vec<(String, Decimal)>,
}

impl RegionMix {
    pub fn single(region: &str) -> RegionMix {
        RegionMix {
            label: region.to_string(),
            parts: vec![(region.to_string(), Decimal::ONE)],
        }
    }
    /// The first region named (shared Machines default to it).
    pub fn primary(&self) -> &str {
        self.parts.first().map(|p| p.0.as_str()).unwrap_or("iad")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sweep {
    /// Ascending, distinct.
    pub tenants: Vec<u64>,
    pub active_fraction: Vec<Decimal>,
    pub active_hours_per_day: Vec<Decimal>,
    pub regions: Vec<RegionMix>,
    /// Empty: the `--pricing-date` (default today).
    pub pricing_date: Vec<NaiveDate>,
    pub pricing_date_marks: Vec<Mark>,
    pub mark: Mark,
}

/// A declared always-on Machine of a shared tier (router, API gateway, backend …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedMachine {
    pub name: String,
    pub count: u32,
    pub preset: String,
    pub memory_mb: u32,
    /// `None`: the first region of the sweep point's mix.
    pub region: Option<String>,
    pub volume_gb: u32,
    pub egress_gb_month: Decimal,
    pub certificates: u32,
    pub dedicated_ipv4: u32,
}

/// Where an architecture's always-on shared Machines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedTier {
    Declared(Vec<SharedMachine>),
    /// The shared apps of the base spec, priced as the spec declares them.
    Spec,
}

/// A cost outside Fly's price tables (managed Redis, a CDN …), as the scenario states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extra {
    pub name: String,
    pub monthly_usd: Decimal,
    pub per_tenant_usd: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    pub placement: Placement,
    /// Machines always running (per region).
    pub min_machines: u64,
    /// The most Machines the pool may scale to (per region); rows above it are flagged.
    pub max_machines: Option<u64>,
    /// Candidate sizes; empty: every preset of the price table.
    pub sizes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Architecture {
    pub name: String,
    pub kind: ArchKind,
    /// Idle policy of per-tenant Machines, or of the pool Machines above `min_machines`.
    pub idle: IdleMode,
    pub shared: SharedTier,
    pub pool: PoolOptions,
    /// The base profile with the architecture's overrides (`profile:`, `size`, `memory`).
    pub profile: Profile,
    pub extras: Vec<Extra>,
    pub mark: Mark,
}

impl Architecture {
    pub fn uses_memory_model(&self) -> bool {
        self.kind == ArchKind::SharedPool || !self.profile.sizing.is_fixed()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    pub focus_fraction: Decimal,
    pub focus_hours: Decimal,
    /// The scale of the stacked breakdown, the reservation advice and the sensitivity.
    pub breakdown_tenants: u64,
    pub sensitivity_hours: Vec<Decimal>,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The path as given.
    pub file: String,
    pub dir: PathBuf,
    pub name: String,
    pub description: String,
    /// The base spec's path as written, if any.
    pub base_spec: Option<String>,
    pub profile: Profile,
    pub memory: Option<MemoryModel>,
    pub memory_mark: Mark,
    pub sweep: Sweep,
    pub architectures: Vec<Architecture>,
    pub report: ReportOptions,
    /// The shared apps of the base spec (resources without a tenant).
    pub spec_shared: Vec<Resource>,
    /// The organization's plan: the scenario's `org_plan`/`org_plan_legacy`, else the base
    /// spec's, else Pay As You Go.
    pub org_plan: PlanChoice,
    /// Where the plan was declared (the scenario's key, or the top of the file).
    pub org_plan_mark: Mark,
}

impl Scenario {
    /// Rows the sweep produces (architectures × every axis).
    pub fn row_count(&self, dates: usize) -> usize {
        let s = &self.sweep;
        [
            self.architectures.len(),
            s.tenants.len(),
            s.active_fraction.len(),
            s.active_hours_per_day.len(),
            s.regions.len(),
            dates.max(1),
        ]
        .iter()
        .fold(1usize, |a, b| a.saturating_mul(*b))
    }
}

/// Numbers whose range is checked afterwards, with a hint.
const NUM: Ty = Ty::Decimal {
    min: -1_000_000_000_000,
    max: 1_000_000_000_000,
};
const INT: Ty = Ty::Int {
    min: i64::MIN,
    max: i64::MAX,
};
const STR: Ty = Ty::Str;
const TEXT: Ty = Ty::Text;
const IDLE: Ty = Ty::Enum(decl::IDLE_MODES);
/// Provisioned volume in GB; 0 for none, else within Fly's volume sizes.
const VOLUME_GB: Field = Field {
    name: "volume_gb",
    doc: "provisioned volume per tenant in GB (0: none)",
    ..decl::VOLUME_SIZE_GB.field
};

const PROFILE_FIELDS: &[Field] = &[
    decl::SIZE.field,
    f("memory", Ty::Text),
    f("idle", IDLE),
    decl::REGION.field,
    VOLUME_GB,
    decl::VOLUME_SNAPSHOT_RETENTION.field,
    decl::VOLUME_AUTO_BACKUP.field,
    f("active_hours_per_day", NUM),
    decl::USAGE_ROOTFS_GB.field,
    decl::USAGE_EGRESS_GB.field,
    decl::USAGE_PRIVATE_EGRESS_GB.field,
    decl::USAGE_VOLUME_USED_GB.field,
    decl::USAGE_SNAPSHOT_DAILY_CHANGE.field,
    decl::USAGE_CERTIFICATES.field,
    decl::USAGE_DEDICATED_IPV4.field,
];

const MEMORY_FIELDS: &[Field] = &[
    req("base_mb", NUM),
    req("agent_mb", NUM),
    f("agents_per_active_tenant", NUM),
    f("peak_factor", NUM),
    f("headroom_pct", NUM),
    f("max_tenants_per_machine", INT),
    f("agents_per_cpu", NUM),
];

const BASE_FIELDS: &[Field] = &[
    f("spec", Ty::Str),
    f("tenant", Ty::Str),
    f("profile", Ty::Struct(PROFILE_FIELDS)),
    f("memory_model", Ty::Struct(MEMORY_FIELDS)),
];

/// `regions` is read separately (a code or a mapping of code → weight).
const SWEEP_FIELDS: &[Field] = &[
    req("tenants", Ty::List(&INT)),
    req("active_fraction", Ty::List(&NUM)),
    req("active_hours_per_day", Ty::List(&NUM)),
    req("regions", Ty::Text),
    req("pricing_date", Ty::List(&TEXT)),
];

const SHARED_FIELDS: &[Field] = &[
    req("name", Ty::Str),
    f(
        "count",
        Ty::Int {
            min: 1,
            max: decl::MAX_MACHINES_PER_ENTRY as i64,
        },
    ),
    decl::SIZE.field,
    decl::MEMORY.field,
    decl::REGION.field,
    VOLUME_GB,
    decl::USAGE_EGRESS_GB.field,
    decl::USAGE_CERTIFICATES.field,
    decl::USAGE_DEDICATED_IPV4.field,
];

const EXTRA_FIELDS: &[Field] = &[
    req("name", Ty::Str),
    f(
        "monthly_usd",
        Ty::Decimal {
            min: 0,
            max: 1_000_000_000,
        },
    ),
    f(
        "per_tenant_usd",
        Ty::Decimal {
            min: 0,
            max: 1_000_000,
        },
    ),
];

/// `kind` and `shared` are read separately.
const ARCH_FIELDS: &[Field] = &[
    req("kind", Ty::Text),
    f("name", Ty::Str),
    f("idle", IDLE),
    f("size", Ty::Str),
    f("memory", Ty::Text),
    req("shared", Ty::Text),
    f("extras", Ty::List(&Ty::Struct(EXTRA_FIELDS))),
    f("placement", Ty::Enum(&["pinned", "session"])),
    f("min_machines", INT),
    f("max_machines", INT),
    f("sizes", Ty::List(&STR)),
    f("profile", Ty::Struct(PROFILE_FIELDS)),
];
const POOL_ONLY: &[&str] = &["placement", "min_machines", "max_machines", "sizes"];

const FOCUS_FIELDS: &[Field] = &[f("active_fraction", NUM), f("active_hours_per_day", NUM)];
const REPORT_FIELDS: &[Field] = &[
    f("focus", Ty::Struct(FOCUS_FIELDS)),
    f("breakdown_tenants", INT),
    f("sensitivity_hours", Ty::List(&NUM)),
];

const TOP_FIELDS: &[Field] = &[
    req("version", Ty::Int { min: 1, max: 1 }),
    req("name", Ty::Str),
    f("description", Ty::Str),
    req("base", Ty::Struct(BASE_FIELDS)),
    req("sweep", Ty::Text),
    req("architectures", Ty::Text),
    f("report", Ty::Struct(REPORT_FIELDS)),
    decl::ORG_PLAN.field,
    decl::ORG_PLAN_LEGACY.field,
];

/// A copy of a mapping without some keys (read separately from the schema check).
fn without(node: &Node, keys: &[&str]) -> Node {
    match &node.value {
        Value::Map(entries) => Node {
            mark: node.mark,
            value: Value::Map(
                entries
                    .iter()
                    .filter(|(k, _)| !k.scalar_text().is_some_and(|t| keys.contains(&t)))
                    .cloned()
                    .collect(),
            ),
        },
        _ => node.clone(),
    }
}

/// Collects diagnostics for one file.
struct Reader {
    file: String,
    diags: Diagnostics,
}

impl Reader {
    fn err(&mut self, mark: Mark, path: &str, msg: impl Into<String>, hint: impl Into<String>) {
        let hint = hint.into();
        let mut d = Diagnostic::error(msg).file(self.file.clone()).at(mark);
        if !path.is_empty() {
            d = d.path(path);
        }
        if !hint.is_empty() {
            d = d.hint(hint);
        }
        self.diags.push(d);
    }

    fn checker(&mut self, c: Checker) {
        for d in c.diags {
            self.diags.push(d.file(self.file.clone()));
        }
    }

    fn dec(node: &Node) -> Option<Decimal> {
        node.scalar_text().and_then(parse_decimal)
    }

    /// A number of `node[key]` that the schema accepted, with its mark.
    fn num(node: &Node, key: &str) -> Option<(Decimal, Mark)> {
        let v = node.get(key)?;
        Reader::dec(v).map(|d| (d, v.mark))
    }

    fn int(node: &Node, key: &str) -> Option<(i64, Mark)> {
        let v = node.get(key)?;
        v.as_i64().map(|i| (i, v.mark))
    }

    fn str<'a>(node: &'a Node, key: &str) -> Option<(&'a str, Mark)> {
        let v = node.get(key)?;
        v.as_str().map(|s| (s, v.mark))
    }
}

fn idle_mode(s: &str) -> IdleMode {
    decl::idle_mode(s).unwrap_or(IdleMode::Off)
}

/// Reads and validates a scenario file (and the base spec it names).
pub fn load_file(path: &Path) -> Result<Scenario, Diagnostics> {
    let file = path.display().to_string();
    let bytes = crate::spec::read_limited(path).map_err(|d| {
        Diagnostics::one(
            d.file(file.clone())
                .hint("check the path; the example scenarios live in examples/whatif/"),
        )
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_bytes(&bytes, &file, &dir)
}

/// Validates a scenario held in memory; `dir` resolves the base spec's path. Like a
/// spec, a scenario is scanned for credentials, and no diagnostic echoes one.
pub fn load_bytes(bytes: &[u8], file: &str, dir: &Path) -> Result<Scenario, Diagnostics> {
    read_scenario(bytes, file, dir).map_err(|mut d| {
        crate::spec::credentials::redact_all(&mut d);
        d
    })
}

fn read_scenario(bytes: &[u8], file: &str, dir: &Path) -> Result<Scenario, Diagnostics> {
    let root = yaml::parse(bytes).map_err(|mut d| {
        if d.message == "the file is empty" {
            d.hint = Some("start from one of the scenarios in examples/whatif/".into());
        }
        Diagnostics::one(d.file(file))
    })?;
    let mut r = Reader {
        file: file.to_string(),
        diags: Diagnostics::new(),
    };
    if root.as_map().is_none() {
        r.err(
            root.mark,
            "",
            format!(
                "a scenario is a mapping (version, name, base, sweep, architectures), found {}",
                root.type_name()
            ),
            "start from one of the scenarios in examples/whatif/",
        );
        return Err(r.diags);
    }
    let mut c = Checker::new();
    c.check_struct(
        &without(&root, &["sweep", "architectures"]),
        "",
        &[TOP_FIELDS],
    );
    r.checker(c);
    let source = std::str::from_utf8(bytes).unwrap_or_default();
    let scan =
        crate::spec::credentials::scan_document(&root, source.trim_start_matches('\u{feff}'));
    for d in scan.diagnostics {
        r.diags.push(d.file(file));
    }
    for key in ["version", "name", "base", "sweep", "architectures"] {
        if root.get(key).is_none() {
            r.err(
                Mark { line: 1, col: 1 },
                key,
                format!("the scenario has no `{key}`"),
                match key {
                    "version" => "add `version: 1` at the top",
                    "sweep" => "add e.g. `sweep: { tenants: [14, 100, 1000, 10000] }`",
                    "architectures" => {
                        "add e.g. `architectures: [{ kind: app-per-tenant }, { kind: hybrid }]`"
                    }
                    _ => "see examples/whatif/README.md for the scenario format",
                },
            );
        }
    }
    let name = Reader::str(&root, "name")
        .map(|s| s.0.to_string())
        .unwrap_or_default();
    let description = Reader::str(&root, "description")
        .map(|s| s.0.to_string())
        .unwrap_or_default();

    let empty = Node {
        mark: root.mark,
        value: Value::Map(Vec::new()),
    };
    let base = root
        .get("base")
        .filter(|b| b.as_map().is_some())
        .unwrap_or(&empty);
    let declared = root.get("base").is_some_and(|b| b.as_map().is_some());
    let BaseRead {
        profile,
        shared: spec_shared,
        spec: base_spec,
        org_plan: spec_plan,
    } = read_base(&mut r, base, dir, declared);
    let (org_plan, org_plan_mark) = read_org_plan(&root, spec_plan);
    let has_memory = base.get("memory_model").is_some();
    let (memory, memory_mark) = match base.get("memory_model") {
        Some(m) if m.as_map().is_some() => (read_memory(&mut r, m), m.mark),
        _ => (None, base.mark),
    };

    let sweep = match root.get("sweep") {
        Some(s) => read_sweep(&mut r, s, &profile),
        None => None,
    };
    let architectures = match root.get("architectures") {
        Some(a) => read_architectures(&mut r, a, &profile, has_memory),
        None => Vec::new(),
    };
    let (Some(sweep), false) = (sweep, r.diags.has_errors()) else {
        r.diags.sort();
        return Err(r.diags);
    };
    let report = read_report(&mut r, root.get("report"), &sweep);

    if base_spec.is_none() {
        for (i, a) in architectures.iter().enumerate() {
            if a.shared == SharedTier::Spec {
                r.err(
                    a.mark,
                    &format!("architectures[{i}].shared"),
                    "`shared: spec` takes the base spec's shared apps, and the base names no spec",
                    "add `base.spec`, or list the shared Machines: `shared: [{ name: router, size: shared-cpu-1x, memory: 1gb }]`",
                );
            }
        }
    }
    // Capacity checks that need the whole scenario.
    if let Some(m) = &memory {
        let worst = sweep
            .active_fraction
            .iter()
            .copied()
            .max()
            .unwrap_or(Decimal::ONE);
        for a in &architectures {
            check_fit(&mut r, m, memory_mark, a, worst);
        }
    }
    if r.diags.has_errors() {
        r.diags.sort();
        return Err(r.diags);
    }
    Ok(Scenario {
        file: file.to_string(),
        dir: dir.to_path_buf(),
        name,
        description,
        base_spec,
        profile,
        memory,
        memory_mark,
        sweep,
        architectures,
        report,
        spec_shared,
        org_plan,
        org_plan_mark,
    })
}

/// The scenario's organization plan: its own keys override the base spec's plan.
fn read_org_plan(root: &Node, spec: Option<PlanChoice>) -> (PlanChoice, Mark) {
    let declared = root
        .get(decl::ORG_PLAN.key)
        .or(root.get(decl::ORG_PLAN_LEGACY.key));
    let Some(node) = declared else {
        return (spec.unwrap_or_default(), Mark { line: 1, col: 1 });
    };
    let inherited = spec.unwrap_or_default();
    let plan = PlanChoice {
        plan: decl::ORG_PLAN
            .value(root)
            .and_then(platform::OrgPlan::from_code)
            .unwrap_or(inherited.plan),
        legacy: decl::ORG_PLAN_LEGACY
            .value(root)
            .unwrap_or(inherited.legacy),
    };
    (plan, node.mark)
}

/// What the scenario takes from its base.
struct BaseRead {
    profile: Profile,
    shared: Vec<Resource>,
    /// The base spec's path as written.
    spec: Option<String>,
    /// The base spec's organization plan.
    org_plan: Option<PlanChoice>,
}

/// The profile: the base spec's tenant (if any), overridden by `profile:`.
fn read_base(r: &mut Reader, base: &Node, dir: &Path, declared: bool) -> BaseRead {
    let mut profile = Profile {
        sizing: Sizing {
            preset: Some("shared-cpu-1x".into()),
            memory_mb: Some(256),
        },
        idle: IdleMode::Off,
        region: "iad".into(),
        volume_gb: 0,
        snapshot_retention: platform::SNAPSHOT_RETENTION_DEFAULT,
        auto_backup: true,
        usage: Usage::default(),
    };
    let mut shared = Vec::new();
    let mut base_spec = None;
    let mut org_plan = None;
    if let Some((spec, mark)) = Reader::str(base, "spec") {
        base_spec = Some(spec.to_string());
        let tenant = Reader::str(base, "tenant");
        match crate::spec::load_file(&dir.join(spec)) {
            Err(d) => {
                let n = d.error_count();
                r.diags.extend(d);
                r.err(
                    mark,
                    "base.spec",
                    format!("the base spec {spec} is not valid ({n} errors above)"),
                    "fix the spec, or check it with `flotilla validate`",
                );
            }
            Ok(loaded) => {
                let d = loaded.desired;
                org_plan = Some(d.org_plan);
                let pick = match tenant {
                    Some((t, tmark)) => match d.tenants.iter().find(|x| x.name == t) {
                        Some(x) => Some(x.name.clone()),
                        None => {
                            let names = d.tenants.iter().map(|x| x.name.as_str());
                            let hint = suggest(t, names, "tenants");
                            r.err(
                                tmark,
                                "base.tenant",
                                format!("the base spec has no tenant `{t}`"),
                                hint,
                            );
                            None
                        }
                    },
                    None => d.tenants.first().map(|x| x.name.clone()),
                };
                match pick {
                    Some(t) => profile_from_spec(&mut profile, &d, &t),
                    None if tenant.is_none() => r.err(
                        mark,
                        "base.spec",
                        format!("the base spec {spec} declares no tenant to take a profile from"),
                        "add a tenant to the spec, or describe one under `base.profile`",
                    ),
                    None => {}
                }
                shared = d
                    .resources
                    .iter()
                    .filter(|x| x.tenant.is_none())
                    .cloned()
                    .collect();
            }
        }
    } else if base.get("profile").is_none() && declared {
        r.err(
            base.mark,
            "base",
            "the base names neither a spec nor a profile",
            "add `spec: path/to/spec.yaml` or `profile: { size: shared-cpu-1x, memory: 1gb, volume_gb: 3 }`",
        );
    }
    if let Some(p) = base.get("profile").filter(|p| p.as_map().is_some()) {
        read_profile(r, p, &mut profile, "base.profile");
    }
    BaseRead {
        profile,
        shared,
        spec: base_spec,
        org_plan,
    }
}

/// Takes a tenant's Machine, volume, backup policy, app and usage from an expanded spec.
fn profile_from_spec(p: &mut Profile, d: &crate::resource::Desired, tenant: &str) {
    let mine: Vec<&Resource> = d
        .resources
        .iter()
        .filter(|x| x.tenant.as_deref() == Some(tenant))
        .collect();
    if let Some(m) = mine.iter().find_map(|x| x.machine()) {
        p.sizing = Sizing {
            preset: Some(m.size.clone()),
            memory_mb: Some(m.guest.memory_mb),
        };
        p.idle = m.idle.mode;
        p.region = m.region.clone();
    }
    if let Some(u) = mine
        .iter()
        .find(|x| x.kind() == Kind::Machine)
        .and_then(|x| x.usage.as_deref().cloned())
    {
        p.usage = u;
    } else {
        p.usage = d.default_usage.clone();
    }
    if let Some(v) = mine.iter().find_map(|x| x.volume()) {
        p.volume_gb = v.size_gb;
    }
    if let Some(b) = mine.iter().find_map(|x| match &x.spec {
        crate::resource::Spec::BackupPolicy(b) => Some(b),
        _ => None,
    }) {
        p.snapshot_retention = b.snapshot_retention;
        p.auto_backup = b.auto_backup;
    }
    if let Some(app_usage) = mine
        .iter()
        .find(|x| x.kind() == Kind::App)
        .and_then(|x| x.usage.as_ref())
    {
        p.usage.certificates = app_usage.certificates;
        p.usage.dedicated_ipv4 = app_usage.dedicated_ipv4;
        p.usage.wildcard_certificates = app_usage.wildcard_certificates;
    }
}

/// `size`, `memory` pair: `auto` leaves either to the capacity model.
fn read_sizing(r: &mut Reader, node: &Node, path: &str, current: &Sizing) -> Sizing {
    let mut s = current.clone();
    if let Some((size, mark)) = Reader::str(node, "size") {
        if size == "auto" {
            s.preset = None;
            if node.get("memory").is_none() {
                s.memory_mb = None;
            }
        } else {
            match platform::known_preset(size) {
                Ok(p) => {
                    if node.get("memory").is_none() && s.preset.as_deref() != Some(size) {
                        // A new size without a memory: the size's own.
                        s.memory_mb = Some(p.base_memory_mb);
                    }
                    s.preset = Some(size.to_string());
                }
                Err(problem) => r.err(
                    mark,
                    &format!("{path}.size"),
                    problem.message,
                    format!(
                        "{} (or `auto` to let the capacity model choose)",
                        problem.hint
                    ),
                ),
            }
        }
    }
    if let Some(m) = node.get("memory") {
        if m.scalar_text() == Some("auto") {
            s.memory_mb = None;
        } else {
            match parse_memory(m) {
                Ok(mb) => s.memory_mb = Some(mb),
                Err(msg) => r.err(
                    m.mark,
                    &format!("{path}.memory"),
                    msg,
                    "write memory as `512mb`, `2gb`, a number of MB, or `auto`",
                ),
            }
        }
    }
    let mark = node.get("memory").or(node.get("size")).map(|n| n.mark);
    if let (Some(preset), Some(mb), Some(mark)) = (&s.preset, s.memory_mb, mark) {
        check_memory(r, preset, mb, mark, &format!("{path}.memory"));
    }
    s
}

/// Memory must be a multiple of 256 MB within the preset's range (the spec's rule).
fn check_memory(r: &mut Reader, preset: &str, mb: u32, mark: Mark, path: &str) {
    let Some(p) = platform::preset(preset) else {
        return;
    };
    if let Some(problem) = platform::memory_problem(p, mb) {
        r.err(
            mark,
            path,
            problem.message,
            format!("{} (or `memory: auto`)", problem.hint),
        );
    }
}

fn read_profile(r: &mut Reader, node: &Node, p: &mut Profile, path: &str) {
    p.sizing = read_sizing(r, node, path, &p.sizing);
    if let Some((s, _)) = Reader::str(node, "idle") {
        p.idle = idle_mode(s);
    }
    if let Some((region, mark)) = Reader::str(node, "region")
        && check_region(r, region, mark, &format!("{path}.region"))
    {
        p.region = region.to_string();
    }
    if let Some(gb) = read_volume_gb(r, node, path) {
        p.volume_gb = gb;
    }
    let retention = &decl::VOLUME_SNAPSHOT_RETENTION;
    if let Some((days, mark)) = retention.leaf(node) {
        match platform::snapshot_retention_problem(days) {
            None => p.snapshot_retention = days,
            Some(msg) => r.err(
                mark,
                &format!("{path}.{}", retention.field.name),
                msg,
                "days Fly keeps daily snapshots",
            ),
        }
    }
    if let Some((b, _)) = decl::VOLUME_AUTO_BACKUP.leaf(node) {
        p.auto_backup = b;
    }
    read_usage(r, node, p, path);
}

/// `volume_gb`: 0 for no volume, else a size Fly offers.
fn read_volume_gb(r: &mut Reader, node: &Node, path: &str) -> Option<u32> {
    let (v, mark) = Reader::int(node, VOLUME_GB.name)?;
    let gb = u32::try_from(v).ok()?;
    if gb > 0
        && let Some(msg) = platform::volume_size_problem(gb)
    {
        r.err(
            mark,
            &format!("{path}.{}", VOLUME_GB.name),
            msg,
            "0 for no volume",
        );
        return None;
    }
    Some(gb)
}

/// The usage figures of a profile, under the spec's declarations of the same keys.
fn read_usage(r: &mut Reader, node: &Node, p: &mut Profile, path: &str) {
    let u = &mut p.usage;
    if let Some((h, mark)) = Reader::num(node, "active_hours_per_day")
        && check_hours(r, h, mark, &format!("{path}.active_hours_per_day"))
    {
        u.active_hours_per_day = h;
    }
    for (s, slot) in [
        (&decl::USAGE_ROOTFS_GB, &mut u.rootfs_gb),
        (&decl::USAGE_EGRESS_GB, &mut u.egress_gb_month),
        (
            &decl::USAGE_PRIVATE_EGRESS_GB,
            &mut u.private_egress_gb_month,
        ),
        (
            &decl::USAGE_SNAPSHOT_DAILY_CHANGE,
            &mut u.snapshot_daily_change,
        ),
    ] {
        if let Some((v, _)) = s.leaf(node) {
            *slot = v;
        }
    }
    if let Some((v, _)) = decl::USAGE_VOLUME_USED_GB.leaf(node) {
        u.volume_used_gb = Some(v);
    }
    for (s, slot) in [
        (&decl::USAGE_CERTIFICATES, &mut u.certificates),
        (&decl::USAGE_DEDICATED_IPV4, &mut u.dedicated_ipv4),
    ] {
        if let Some((v, _)) = s.leaf(node) {
            *slot = v;
        }
    }
    if let (Some(used), Some(v)) = (
        u.volume_used_gb,
        node.get(decl::USAGE_VOLUME_USED_GB.field.name),
    ) && used > Decimal::from(p.volume_gb)
    {
        r.err(
            v.mark,
            &format!("{path}.volume_used_gb"),
            format!(
                "{} GB used is more than the {} GB volume",
                used.normalize(),
                p.volume_gb
            ),
            "volume_used_gb is at most volume_gb",
        );
    }
}

fn check_region(r: &mut Reader, region: &str, mark: Mark, path: &str) -> bool {
    match platform::known_region(region) {
        Ok(_) => true,
        Err(problem) => {
            r.err(mark, path, problem.message, problem.hint);
            false
        }
    }
}

/// Active hours per day, within the spec's `usage.active_hours_per_day` range.
fn check_hours(r: &mut Reader, h: Decimal, mark: Mark, path: &str) -> bool {
    let (lo, hi) = decl::USAGE_ACTIVE_HOURS.range();
    if h < Decimal::from(lo) || h > Decimal::from(hi) {
        r.err(
            mark,
            path,
            format!(
                "{} hours per day is not between {lo} and {hi}",
                h.normalize()
            ),
            "active hours are per day: 0–24 (e.g. 2.4 for 10% of the day)",
        );
        return false;
    }
    true
}

fn read_memory(r: &mut Reader, node: &Node) -> Option<MemoryModel> {
    let mut ok = true;
    let mut get = |key: &str, default: Option<Decimal>, min: Decimal, max: Decimal, hint: &str| {
        let path = format!("base.memory_model.{key}");
        match Reader::num(node, key) {
            Some((v, mark)) => {
                if v < min || v > max {
                    r.err(
                        mark,
                        &path,
                        format!(
                            "{} is out of range ({}–{})",
                            v.normalize(),
                            min.normalize(),
                            max.normalize()
                        ),
                        hint,
                    );
                    ok = false;
                }
                v
            }
            None => default.unwrap_or(Decimal::ZERO),
        }
    };
    let big = Decimal::from(1_048_576);
    let base_mb = get(
        "base_mb",
        None,
        Decimal::ZERO,
        big,
        "base memory of one tenant in MB, e.g. 300",
    );
    let agent_mb = get(
        "agent_mb",
        None,
        Decimal::ZERO,
        big,
        "memory of one running agent in MB, e.g. 1100",
    );
    let agents = get(
        "agents_per_active_tenant",
        Some(Decimal::ONE),
        Decimal::ZERO,
        Decimal::from(1000),
        "concurrent agents of an active tenant, e.g. 1 or 2.5",
    );
    let peak = get(
        "peak_factor",
        Some(Decimal::ONE),
        Decimal::ONE,
        Decimal::from(100),
        "a multiplier of at least 1 on the working set, e.g. 1.5 for peaks 50% above it",
    );
    let headroom = get(
        "headroom_pct",
        Some(Decimal::ZERO),
        Decimal::ZERO,
        Decimal::from(95),
        "the share of each Machine's memory kept free, in percent (0–95), e.g. 50",
    );
    let apc = node.get("agents_per_cpu").map(|_| {
        get(
            "agents_per_cpu",
            None,
            Decimal::new(1, 2),
            Decimal::from(1000),
            "concurrent agents one vCPU can run, e.g. 2",
        )
    });
    let max_t = match Reader::int(node, "max_tenants_per_machine") {
        Some((v, mark)) if !(1..=100_000).contains(&v) => {
            r.err(
                mark,
                "base.memory_model.max_tenants_per_machine",
                format!("{v} is out of range (1–100000)"),
                "the most tenants one Machine may hold",
            );
            ok = false;
            1
        }
        Some((v, _)) => v as u64,
        None => 1000,
    };
    if base_mb.is_zero() && (agent_mb.is_zero() || agents.is_zero()) {
        r.err(
            node.mark,
            "base.memory_model",
            "a tenant needs no memory in this model (base_mb and agent memory are 0)",
            "set base_mb to the memory one tenant keeps resident, e.g. 300",
        );
        ok = false;
    }
    ok.then_some(MemoryModel {
        base_mb,
        agent_mb,
        agents_per_active_tenant: agents,
        peak_factor: peak,
        headroom_pct: headroom,
        max_tenants_per_machine: max_t,
        agents_per_cpu: apc,
    })
}

fn read_sweep(r: &mut Reader, node: &Node, profile: &Profile) -> Option<Sweep> {
    if node.as_map().is_none() {
        r.err(
            node.mark,
            "sweep",
            format!("expected a mapping, found {}", node.type_name()),
            "e.g. `sweep: { tenants: [14, 100, 1000, 10000], active_fraction: [0.1, 1] }`",
        );
        return None;
    }
    let mut c = Checker::new();
    c.check_struct(&without(node, &["regions"]), "sweep", &[SWEEP_FIELDS]);
    r.checker(c);
    let before = r.diags.error_count();
    let list = |r: &mut Reader, key: &str| -> Option<(&[Node], Mark)> {
        let v = node.get(key)?;
        let items = v.as_seq()?;
        if items.is_empty() {
            r.err(
                v.mark,
                &format!("sweep.{key}"),
                format!("the sweep of `{key}` is empty"),
                "list at least one value, or remove the key to use the default",
            );
            return None;
        }
        Some((items, v.mark))
    };

    let mut tenants = BTreeSet::new();
    match list(r, "tenants") {
        Some((items, _)) => {
            for (i, it) in items.iter().enumerate() {
                let path = format!("sweep.tenants[{i}]");
                match it.as_i64() {
                    Some(n) if n >= 1 && n as u64 <= MAX_TENANTS => {
                        tenants.insert(n as u64);
                    }
                    Some(n) => r.err(
                        it.mark,
                        &path,
                        format!("{n} tenants is out of range (1–{MAX_TENANTS})"),
                        "tenant counts are whole numbers from 1 up",
                    ),
                    None => {}
                }
            }
        }
        None if node.get("tenants").is_none() => r.err(
            node.mark,
            "sweep.tenants",
            "the sweep has no `tenants`",
            "add e.g. `tenants: [14, 100, 1000, 10000]`",
        ),
        None => {}
    }

    let mut fractions = Vec::new();
    match list(r, "active_fraction") {
        Some((items, _)) => {
            for (i, it) in items.iter().enumerate() {
                let Some(v) = Reader::dec(it) else { continue };
                if v <= Decimal::ZERO || v > Decimal::ONE {
                    r.err(
                        it.mark,
                        &format!("sweep.active_fraction[{i}]"),
                        format!(
                            "active fraction {} is not above 0 and at most 1",
                            v.normalize()
                        ),
                        "the share of tenants active on a day: e.g. 0.1 for 10%, 1 for all",
                    );
                } else if !fractions.contains(&v) {
                    fractions.push(v);
                }
            }
        }
        None if node.get("active_fraction").is_none() => fractions.push(Decimal::ONE),
        None => {}
    }

    let mut hours = Vec::new();
    match list(r, "active_hours_per_day") {
        Some((items, _)) => {
            for (i, it) in items.iter().enumerate() {
                let Some(v) = Reader::dec(it) else { continue };
                if check_hours(r, v, it.mark, &format!("sweep.active_hours_per_day[{i}]"))
                    && !hours.contains(&v)
                {
                    hours.push(v);
                }
            }
        }
        None if node.get("active_hours_per_day").is_none() => {
            hours.push(profile.usage.active_hours_per_day)
        }
        None => {}
    }

    let mut regions = Vec::new();
    match node.get("regions") {
        None => regions.push(RegionMix::single(&profile.region)),
        Some(v) => match v.as_seq() {
            Some([]) => r.err(
                v.mark,
                "sweep.regions",
                "the sweep of `regions` is empty",
                "list at least one region (`iad`) or mix (`{ iad: 0.7, fra: 0.3 }`)",
            ),
            Some(items) => {
                for (i, it) in items.iter().enumerate() {
                    if let Some(mix) = read_mix(r, it, &format!("sweep.regions[{i}]")) {
                        regions.push(mix);
                    }
                }
            }
            None => r.err(
                v.mark,
                "sweep.regions",
                format!("expected a list, found {}", v.type_name()),
                "e.g. `regions: [iad, { iad: 0.7, fra: 0.3 }]`",
            ),
        },
    }

    let mut dates = Vec::new();
    let mut date_marks = Vec::new();
    if let Some((items, _)) = list(r, "pricing_date") {
        for (i, it) in items.iter().enumerate() {
            let Some(text) = it.scalar_text() else {
                continue;
            };
            match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                Ok(d) if !dates.contains(&d) => {
                    dates.push(d);
                    date_marks.push(it.mark);
                }
                Ok(_) => {}
                Err(_) => r.err(
                    it.mark,
                    &format!("sweep.pricing_date[{i}]"),
                    format!("`{text}` is not a date"),
                    "write YYYY-MM-DD, e.g. 2026-02-01",
                ),
            }
        }
    }
    if r.diags.error_count() > before {
        return None;
    }
    Some(Sweep {
        tenants: tenants.into_iter().collect(),
        active_fraction: fractions,
        active_hours_per_day: hours,
        regions,
        pricing_date: dates,
        pricing_date_marks: date_marks,
        mark: node.mark,
    })
}

fn read_mix(r: &mut Reader, node: &Node, path: &str) -> Option<RegionMix> {
    if let Some(code) = node.as_str() {
        return check_region(r, code, node.mark, path).then(|| RegionMix::single(code));
    }
    let Some(entries) = node.as_map() else {
        r.err(
            node.mark,
            path,
            format!(
                "expected a region or a mapping of region → weight, found {}",
                node.type_name()
            ),
            "e.g. `iad` or `{ iad: 0.7, fra: 0.3 }`",
        );
        return None;
    };
    let mut parts: Vec<(String, Decimal)> = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let Some(code) = k.scalar_text() else {
            continue;
        };
        let sub = format!("{path}.{code}");
        ok &= check_region(r, code, k.mark, &sub);
        if parts.iter().any(|p| p.0 == code) {
            r.err(
                k.mark,
                &sub,
                "this region appears twice",
                "keep one of them",
            );
            ok = false;
        }
        match Reader::dec(v) {
            Some(w) if w > Decimal::ZERO && w <= Decimal::ONE => parts.push((code.to_string(), w)),
            _ => {
                r.err(
                    v.mark,
                    &sub,
                    format!(
                        "weight `{}` is not a share above 0 and at most 1",
                        v.scalar_text().unwrap_or("?")
                    ),
                    "weights are shares of the tenants, e.g. 0.7",
                );
                ok = false;
            }
        }
    }
    if parts.is_empty() {
        if ok {
            r.err(
                node.mark,
                path,
                "the region mix is empty",
                "e.g. `{ iad: 0.7, fra: 0.3 }`",
            );
        }
        return None;
    }
    let sum: Decimal = parts.iter().map(|p| p.1).sum();
    if ok && sum != Decimal::ONE {
        r.err(
            node.mark,
            path,
            format!("the weights add up to {}, not 1", sum.normalize()),
            "make the shares add up to exactly 1, e.g. 0.5, 0.3 and 0.2",
        );
        return None;
    }
    if !ok {
        return None;
    }
    let label = if parts.len() == 1 {
        parts[0].0.clone()
    } else {
        parts
            .iter()
            .map(|(c, w)| format!("{c} {}%", (w * Decimal::from(100)).normalize()))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    Some(RegionMix { label, parts })
}

fn read_architectures(
    r: &mut Reader,
    node: &Node,
    profile: &Profile,
    has_memory: bool,
) -> Vec<Architecture> {
    let Some(items) = node.as_seq() else {
        r.err(
            node.mark,
            "architectures",
            format!("expected a list, found {}", node.type_name()),
            "e.g. `architectures: [{ kind: app-per-tenant, idle: off }, { kind: hybrid }]`",
        );
        return Vec::new();
    };
    if items.is_empty() {
        r.err(
            node.mark,
            "architectures",
            "no architectures to compare",
            format!("list at least one of: {}", ArchKind::NAMES.join(", ")),
        );
    }
    let mut out: Vec<Architecture> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let path = format!("architectures[{i}]");
        if it.as_map().is_none() {
            if let Some(s) = it.scalar_text() {
                // A bare kind is accepted: `- hybrid`.
                let m = Node {
                    mark: it.mark,
                    value: Value::Map(vec![(
                        Node {
                            mark: it.mark,
                            value: Value::Scalar {
                                text: "kind".into(),
                                plain: true,
                            },
                        },
                        Node {
                            mark: it.mark,
                            value: Value::Scalar {
                                text: s.to_string(),
                                plain: true,
                            },
                        },
                    )]),
                };
                if let Some(a) = read_architecture(r, &m, &path, profile, has_memory) {
                    out.push(a);
                }
                continue;
            }
            r.err(
                it.mark,
                &path,
                format!("expected a mapping, found {}", it.type_name()),
                "e.g. `{ kind: shared-pool, min_machines: 1 }`",
            );
            continue;
        }
        if let Some(a) = read_architecture(r, it, &path, profile, has_memory) {
            out.push(a);
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for a in &out {
        if seen.contains(&a.name.as_str()) {
            r.err(
                a.mark,
                "architectures",
                format!("two architectures are named `{}`", a.name),
                "give each a distinct `name:`",
            );
        }
        seen.push(&a.name);
    }
    out
}

fn read_architecture(
    r: &mut Reader,
    node: &Node,
    path: &str,
    profile: &Profile,
    has_memory: bool,
) -> Option<Architecture> {
    let mut c = Checker::new();
    c.check_struct(&without(node, &["kind", "shared"]), path, &[ARCH_FIELDS]);
    r.checker(c);
    let kind = read_kind(r, node, path)?;
    if kind != ArchKind::SharedPool {
        check_pool_only(r, node, path, kind);
    }
    let profile = arch_profile(r, node, path, profile, kind);
    let idle = arch_idle(node, kind, &profile);
    let name = arch_label(node, kind, idle);
    check_arch_sizing(r, node, path, (kind, idle), &profile.sizing, has_memory);
    Some(Architecture {
        name,
        kind,
        idle,
        shared: read_shared_tier(r, node, path, kind),
        pool: read_pool(r, node, path),
        profile,
        extras: read_extras(node),
        mark: node.mark,
    })
}

/// `kind:`, one of the architectures flotilla compares.
fn read_kind(r: &mut Reader, node: &Node, path: &str) -> Option<ArchKind> {
    let kind_node = node.get("kind");
    match kind_node.and_then(Node::scalar_text) {
        Some(k) => match ArchKind::parse(k) {
            Some(k) => Some(k),
            None => {
                let hint = suggest(k, ArchKind::NAMES, "architectures");
                r.err(
                    kind_node.map(|n| n.mark).unwrap_or(node.mark),
                    &format!("{path}.kind"),
                    format!("unknown architecture `{k}`"),
                    hint,
                );
                None
            }
        },
        None => {
            r.err(
                node.mark,
                &format!("{path}.kind"),
                "the architecture has no `kind`",
                format!("add `kind:` with one of {}", ArchKind::NAMES.join(", ")),
            );
            None
        }
    }
}

/// Pool options on anything but a shared pool are mistakes.
fn check_pool_only(r: &mut Reader, node: &Node, path: &str, kind: ArchKind) {
    for key in POOL_ONLY {
        if let Some((k, _)) = node
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.scalar_text() == Some(key)))
        {
            r.err(
                k.mark,
                &format!("{path}.{key}"),
                format!(
                    "`{key}` applies to shared-pool only, not to {}",
                    kind.as_str()
                ),
                "remove it, or change `kind` to shared-pool",
            );
        }
    }
}

/// The base profile with the architecture's `profile:` and sizing overrides.
fn arch_profile(
    r: &mut Reader,
    node: &Node,
    path: &str,
    base: &Profile,
    kind: ArchKind,
) -> Profile {
    let mut profile = base.clone();
    if let Some(pn) = node.get("profile").filter(|p| p.as_map().is_some()) {
        if let Some((_, mark)) = Reader::str(pn, "region") {
            r.err(
                mark,
                &format!("{path}.profile.region"),
                "an architecture's profile cannot set the region",
                "regions are a sweep axis: list them under `sweep.regions`",
            );
        }
        read_profile(r, pn, &mut profile, &format!("{path}.profile"));
    }
    profile.sizing = if kind == ArchKind::SharedPool {
        Sizing {
            preset: None,
            memory_mb: None,
        }
    } else {
        read_sizing(r, node, path, &profile.sizing)
    };
    profile
}

/// The idle mode: as written, else the kind's default.
fn arch_idle(node: &Node, kind: ArchKind, profile: &Profile) -> IdleMode {
    let sizing = &profile.sizing;
    match node.get("idle").and_then(Node::scalar_text) {
        Some(s) => idle_mode(s),
        None => match kind {
            ArchKind::SharedPool => IdleMode::Stop,
            ArchKind::Hybrid | ArchKind::MachinePerTenant if profile.idle == IdleMode::Off => {
                if sizing.memory_mb.is_some_and(|m| m <= SUSPEND_MAX_MEMORY_MB) {
                    IdleMode::Suspend
                } else {
                    IdleMode::Stop
                }
            }
            _ => profile.idle,
        },
    }
}

/// The architecture's name in reports: as written, else from its kind (and idle mode).
fn arch_label(node: &Node, kind: ArchKind, idle: IdleMode) -> String {
    match node.get("name").and_then(Node::as_str) {
        Some(n) => n.to_string(),
        None => match kind {
            ArchKind::AppPerTenant | ArchKind::MachinePerTenant => {
                format!("{} ({})", kind.as_str(), idle.as_str())
            }
            _ => kind.as_str().to_string(),
        },
    }
}

/// Suspend only for small Machines; `auto` sizing and shared pools need a memory model.
fn check_arch_sizing(
    r: &mut Reader,
    node: &Node,
    path: &str,
    (kind, idle): (ArchKind, IdleMode),
    sizing: &Sizing,
    has_memory: bool,
) {
    let idle_node = node.get("idle");
    if idle == IdleMode::Suspend
        && let Some(mb) = sizing.memory_mb
        && let Some(msg) = platform::suspend_problem(mb)
    {
        r.err(
            idle_node.map(|n| n.mark).unwrap_or(node.mark),
            &format!("{path}.idle"),
            msg,
            "use `idle: stop`, or memory of 2gb or less",
        );
    }
    if !sizing.is_fixed() && kind != ArchKind::SharedPool && !has_memory {
        r.err(
            node.get("size")
                .or(node.get("memory"))
                .map(|n| n.mark)
                .unwrap_or(node.mark),
            &format!("{path}.size"),
            "`auto` sizing needs a memory model",
            "add `base.memory_model` (base_mb, agent_mb …), or give a size and memory",
        );
    }
    if kind == ArchKind::SharedPool && !has_memory {
        r.err(
            node.mark,
            path,
            "a shared pool is sized by the memory model, and the scenario has none",
            "add `base.memory_model: { base_mb: 300, agent_mb: 1100, headroom_pct: 50 }`",
        );
    }
}

/// `shared:`: declared Machines, `spec` (the base spec's shared apps), or the kind's
/// default (a router for the kinds that need one).
fn read_shared_tier(r: &mut Reader, node: &Node, path: &str, kind: ArchKind) -> SharedTier {
    match node.get("shared") {
        None => SharedTier::Declared(match kind {
            ArchKind::MachinePerTenant | ArchKind::Hybrid => vec![SharedMachine {
                name: "router".into(),
                count: 1,
                preset: "shared-cpu-1x".into(),
                memory_mb: 1024,
                region: None,
                volume_gb: 0,
                egress_gb_month: Decimal::ZERO,
                certificates: 0,
                dedicated_ipv4: 0,
            }],
            _ => Vec::new(),
        }),
        Some(s) if s.scalar_text() == Some("spec") => SharedTier::Spec,
        Some(s) => match s.as_seq() {
            Some(items) => {
                let mut v = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    if let Some(m) = read_shared(r, it, &format!("{path}.shared[{i}]")) {
                        v.push(m);
                    }
                }
                SharedTier::Declared(v)
            }
            None => {
                r.err(
                    s.mark,
                    &format!("{path}.shared"),
                    format!("expected a list of Machines or `spec`, found {}", s.type_name()),
                    "e.g. `shared: [{ name: router, size: shared-cpu-1x, memory: 1gb }]`, or `shared: spec` for the base spec's shared apps",
                );
                SharedTier::Declared(Vec::new())
            }
        },
    }
}

/// Costs outside Fly's price tables.
fn read_extras(node: &Node) -> Vec<Extra> {
    let mut extras = Vec::new();
    if let Some(items) = node.get("extras").and_then(Node::as_seq) {
        for it in items {
            if it.as_map().is_none() {
                continue;
            }
            extras.push(Extra {
                name: Reader::str(it, "name")
                    .map(|s| s.0.to_string())
                    .unwrap_or_default(),
                monthly_usd: Reader::num(it, "monthly_usd")
                    .map(|v| v.0)
                    .unwrap_or_default(),
                per_tenant_usd: Reader::num(it, "per_tenant_usd")
                    .map(|v| v.0)
                    .unwrap_or_default(),
            });
        }
    }
    extras
}

/// Shared-pool options: placement, Machine bounds, candidate sizes.
fn read_pool(r: &mut Reader, node: &Node, path: &str) -> PoolOptions {
    let mut pool = PoolOptions {
        placement: match node.get("placement").and_then(Node::scalar_text) {
            Some("session") => Placement::Session,
            _ => Placement::Pinned,
        },
        min_machines: 0,
        max_machines: None,
        sizes: Vec::new(),
    };
    if let Some((v, mark)) = Reader::int(node, "min_machines") {
        if (0..=10_000).contains(&v) {
            pool.min_machines = v as u64;
        } else {
            r.err(
                mark,
                &format!("{path}.min_machines"),
                format!("{v} is out of range (0–10000)"),
                "the Machines the pool keeps running in each region",
            );
        }
    }
    if let Some((v, mark)) = Reader::int(node, "max_machines") {
        if v >= 1 && v as u64 >= pool.min_machines && v <= 1_000_000 {
            pool.max_machines = Some(v as u64);
        } else {
            r.err(
                mark,
                &format!("{path}.max_machines"),
                format!("{v} is out of range ({}–1000000)", pool.min_machines.max(1)),
                "at least 1 and at least min_machines",
            );
        }
    }
    if let Some(items) = node.get("sizes").and_then(Node::as_seq) {
        for (i, it) in items.iter().enumerate() {
            let Some(s) = it.as_str() else { continue };
            match platform::known_preset(s) {
                Ok(_) => pool.sizes.push(s.to_string()),
                Err(problem) => r.err(
                    it.mark,
                    &format!("{path}.sizes[{i}]"),
                    problem.message,
                    problem.hint,
                ),
            }
        }
    }
    pool
}

fn read_shared(r: &mut Reader, node: &Node, path: &str) -> Option<SharedMachine> {
    let mut c = Checker::new();
    c.check_struct(node, path, &[SHARED_FIELDS]);
    let bad = !c.diags.is_empty();
    r.checker(c);
    if bad || node.as_map().is_none() {
        return None;
    }
    let sizing = read_sizing(
        r,
        node,
        path,
        &Sizing {
            preset: Some("shared-cpu-1x".into()),
            memory_mb: None,
        },
    );
    let preset = sizing.preset.unwrap_or_else(|| "shared-cpu-1x".into());
    if sizing.memory_mb.is_none()
        && node
            .get("memory")
            .is_some_and(|m| m.scalar_text() == Some("auto"))
    {
        r.err(
            node.mark,
            &format!("{path}.memory"),
            "a shared Machine needs a declared memory size",
            "e.g. `memory: 1gb`",
        );
    }
    let memory_mb = sizing
        .memory_mb
        .or_else(|| platform::preset(&preset).map(|p| p.base_memory_mb))
        .unwrap_or(256);
    let region = match decl::REGION.leaf(node) {
        Some((code, mark)) => {
            check_region(r, code, mark, &format!("{path}.region")).then(|| code.to_string())
        }
        None => None,
    };
    let (name, name_mark) = Reader::str(node, "name")
        .map(|(s, m)| (s.to_string(), Some(m)))
        .unwrap_or_default();
    if let Some(mark) = name_mark
        && let Some(problem) = platform::machine_name_problem(&name)
    {
        r.err(
            mark,
            &format!("{path}.name"),
            format!("machine name `{name}` {problem}"),
            "shared Machines follow Fly's Machine names: lowercase letters, digits, dashes and underscores",
        );
    }
    let volume_gb = read_volume_gb(r, node, path).unwrap_or(0);
    Some(SharedMachine {
        name,
        count: Reader::int(node, "count")
            .and_then(|v| u32::try_from(v.0).ok())
            .unwrap_or(1),
        preset,
        memory_mb,
        region,
        volume_gb,
        egress_gb_month: decl::USAGE_EGRESS_GB
            .leaf(node)
            .map(|v| v.0)
            .unwrap_or_default(),
        certificates: decl::USAGE_CERTIFICATES
            .leaf(node)
            .map(|v| v.0)
            .unwrap_or(0),
        dedicated_ipv4: decl::USAGE_DEDICATED_IPV4
            .leaf(node)
            .map(|v| v.0)
            .unwrap_or(0),
    })
}

fn read_report(r: &mut Reader, node: Option<&Node>, sweep: &Sweep) -> ReportOptions {
    let mut out = ReportOptions {
        focus_fraction: sweep
            .active_fraction
            .first()
            .copied()
            .unwrap_or(Decimal::ONE),
        focus_hours: sweep
            .active_hours_per_day
            .first()
            .copied()
            .unwrap_or(Decimal::from(24)),
        breakdown_tenants: sweep.tenants.last().copied().unwrap_or(1),
        sensitivity_hours: [1, 2, 4, 8, 12, 24]
            .into_iter()
            .map(Decimal::from)
            .collect(),
    };
    let Some(node) = node.filter(|n| n.as_map().is_some()) else {
        return out;
    };
    if let Some(focus) = node.get("focus") {
        for (key, axis, slot) in [
            (
                "active_fraction",
                &sweep.active_fraction,
                &mut out.focus_fraction,
            ),
            (
                "active_hours_per_day",
                &sweep.active_hours_per_day,
                &mut out.focus_hours,
            ),
        ] {
            if let Some((v, mark)) = Reader::num(focus, key) {
                if axis.contains(&v) {
                    *slot = v;
                } else {
                    r.err(
                        mark,
                        &format!("report.focus.{key}"),
                        format!("{} is not one of the sweep's values", v.normalize()),
                        format!(
                            "use one of {}",
                            axis.iter()
                                .map(|x| x.normalize().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
        }
    }
    if let Some((v, mark)) = Reader::int(node, "breakdown_tenants") {
        if v >= 1 && v as u64 <= MAX_TENANTS {
            out.breakdown_tenants = v as u64;
        } else {
            r.err(
                mark,
                "report.breakdown_tenants",
                format!("{v} tenants is out of range (1–{MAX_TENANTS})"),
                "the scale of the cost breakdown, e.g. 1000",
            );
        }
    }
    if let Some(items) = node.get("sensitivity_hours").and_then(Node::as_seq) {
        let mut hours = Vec::new();
        for (i, it) in items.iter().enumerate() {
            if let Some(v) = Reader::dec(it)
                && check_hours(r, v, it.mark, &format!("report.sensitivity_hours[{i}]"))
                && !hours.contains(&v)
            {
                hours.push(v);
            }
        }
        if hours.is_empty() {
            r.err(
                node.mark,
                "report.sensitivity_hours",
                "the list of hours is empty",
                "e.g. `sensitivity_hours: [1, 2, 4, 8, 12, 24]`",
            );
        } else {
            hours.sort();
            out.sensitivity_hours = hours;
        }
    }
    out
}

/// One tenant must fit some Machine the architecture may use.
fn check_fit(
    r: &mut Reader,
    m: &MemoryModel,
    mark: Mark,
    a: &Architecture,
    worst_fraction: Decimal,
) {
    let profile = &a.profile;
    if !a.uses_memory_model() {
        return;
    }
    let (sizing, placement, fraction, volume) = match a.kind {
        ArchKind::SharedPool => (
            Sizing {
                preset: None,
                memory_mb: None,
            },
            a.pool.placement,
            worst_fraction,
            profile.volume_gb,
        ),
        _ => (profile.sizing.clone(), Placement::Pinned, Decimal::ONE, 0),
    };
    let filter: Vec<String> = match (&sizing.preset, a.kind) {
        (Some(p), _) => vec![p.clone()],
        (None, ArchKind::SharedPool) => a.pool.sizes.clone(),
        _ => Vec::new(),
    };
    let cands = super::capacity::platform_candidates(&filter, sizing.memory_mb, a.idle);
    let fits = cands
        .iter()
        .any(|c| m.tenants_per_machine(c, placement, fraction, volume) >= 1);
    if !fits {
        let need = m.need_mb(1, placement, fraction);
        let largest = cands.iter().map(|c| c.memory_mb).max().unwrap_or(0);
        let why = if a.idle == IdleMode::Suspend {
            format!(" (idle `suspend` limits Machines to {SUSPEND_MAX_MEMORY_MB} MB)")
        } else {
            String::new()
        };
        r.err(
            mark,
            "base.memory_model",
            format!(
                "one tenant does not fit any Machine `{}` may use: it needs {} MB with {}% headroom, the largest allowed Machine has {largest} MB{why}",
                a.name,
                need.round_dp(0),
                m.headroom_pct.normalize(),
            ),
            "lower base_mb, agent_mb, agents_per_active_tenant, peak_factor or headroom_pct, or allow larger sizes",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(profile: &str, shared: &str) -> Result<Scenario, String> {
        let yaml = format!(
            "version: 1\nname: x\nbase:\n  profile: {profile}\nsweep: {{ tenants: [10] }}\narchitectures:\n  - {{ kind: hybrid, shared: {shared} }}\n"
        );
        load_bytes(yaml.as_bytes(), "s.yaml", Path::new(".")).map_err(|e| e.to_string())
    }

    const ROUTER: &str = "[{ name: router, memory: 1gb }]";

    #[test]
    fn shared_keys_take_the_spec_rules() {
        let e = load("{ volume_gb: 600, snapshot_retention: 90 }", ROUTER).unwrap_err();
        assert!(
            e.contains("volume size 600 GB is outside Fly's 1–500 GB"),
            "{e}"
        );
        assert!(
            e.contains("snapshot retention 90 days is outside Fly's 1–60"),
            "{e}"
        );

        let e = load("{ size: shared-cpu-1x, memory: 4gb }", ROUTER).unwrap_err();
        assert!(
            e.contains(
                "4096 MB is outside what shared-cpu-1x allows (256–2048 MB: 256–2048 MB per vCPU)"
            ),
            "{e}"
        );
        assert!(e.contains("(or `memory: auto`)"), "{e}");

        let e = load("{ region: frankfurt }", "[{ name: Router }]").unwrap_err();
        assert!(
            e.contains("unknown region `frankfurt`") && e.contains("`fra`"),
            "{e}"
        );
        assert!(e.contains("machine name `Router` contains 'R'"), "{e}");
    }

    #[test]
    fn usage_limits_are_the_specs() {
        let s = load(
            "{ certificates: 5000, dedicated_ipv4: 200, volume_gb: 0 }",
            ROUTER,
        )
        .unwrap();
        assert_eq!(s.profile.usage.certificates, 5000);
        assert_eq!(s.profile.usage.dedicated_ipv4, 200);
        assert_eq!(s.profile.volume_gb, 0);
    }
}
