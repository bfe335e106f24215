//! Pricing resources into line items, and line items into a report.

use foldhash::{HashMap, HashMapExt, HashSet};
use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::allowance::{self, Coverable};
use super::{
    Assumptions, CostError, CostErrors, CostReport, Item, LineItem, ORG_KIND, ResourceCost,
    Unpublished, UsageRate,
};
use crate::money::{HOURS_PER_MONTH, Usd};
use crate::platform::{CpuKind, PlanChoice, SNAPSHOT_RETENTION_DEFAULT};
use crate::pricing::{
    BandwidthRow, Citation, ComputeRow, LookupError, MemoryRow, PriceTable, RegionRow, Row,
    SourceRef, Status,
};
use crate::resource::{
    Address, AppSpec, BackupSpec, IdleMode, MachineSpec, Resource, ResourceSet, Spec, Usage,
    VolumeSpec,
};

/// Prices resources against one pricing version, with a set of resources as context (a
/// backup policy's volume, whether a volume has a policy) and a fallback usage.
///
/// Build it once per set and call [`Pricer::price`] per resource, [`Pricer::report`] for
/// every line of the set, or [`Pricer::summary`] for its totals only (a plan's before and
/// after, where tens of thousands of line items would be built only to be added up).
pub struct Pricer<'a> {
    table: &'a PriceTable,
    context: Context<'a>,
    fallback: &'a Usage,
    /// Where a resource that declares no usage borrows it from (its counterpart at the
    /// same address), before falling back to `fallback`.
    usage_from: Option<&'a ResourceSet>,
    /// Volumes that have a backup policy in the context.
    backed_up: HashSet<&'a Address>,
    /// Apps that declare IP addresses in the context: their dedicated IPv4 is priced
    /// from those resources, not from `usage.dedicated_ipv4`.
    with_ips: HashSet<&'a str>,
    /// Apps that declare certificates in the context: theirs are priced from those
    /// resources, not from `usage.certificates` / `usage.wildcard_certificates`.
    with_certs: HashSet<&'a str>,
    /// Lines already computed for resources with the same parameters (fleets repeat
    /// the same Machine and volume many times): reused with the resource's identity.
    templates: RefCell<HashMap<Template, Vec<LineItem>>>,
    /// The app of the fleet lock's sentinel Machine, priced as one organization line
    /// ([`Pricer::with_fleet_lock`]).
    fleet_lock: Option<&'a str>,
    /// The organization's plan (fee, included usage, free allowances).
    plan: PlanChoice,
}

/// The resources a pricer prices: a whole set, or references assembled from several
/// sets (a fleet after a plan: observed resources with desired ones in their place).
enum Context<'a> {
    Set(&'a ResourceSet),
    List {
        items: Vec<&'a Resource>,
        /// Each address's first item, built by the first lookup that the neighbours do
        /// not answer: in a plan's list nearly every lookup is answered by them.
        index: OnceCell<HashMap<&'a Address, &'a Resource>>,
    },
}

/// How far either side of a backup policy [`Context::get_near`] looks for its volume
/// before it asks the index: a tenant's volume is expanded a few resources before its
/// policy.
const NEAR: usize = 8;

impl<'a> Context<'a> {
    fn iter(&self) -> impl Iterator<Item = &'a Resource> + '_ {
        let (set, list) = match self {
            Context::Set(s) => (Some(s.iter()), None),
            Context::List { items, .. } => (None, Some(items.iter().copied())),
        };
        set.into_iter().flatten().chain(list.into_iter().flatten())
    }

    fn len(&self) -> usize {
        match self {
            Context::Set(s) => s.len(),
            Context::List { items, .. } => items.len(),
        }
    }

    fn get(&self, a: &Address) -> Option<&'a Resource> {
        match self {
            Context::Set(s) => s.get(a),
            Context::List { items, index } => index
                .get_or_init(|| {
                    let mut index = HashMap::with_capacity(items.len());
                    for r in items {
                        index.entry(&r.address).or_insert(*r);
                    }
                    index
                })
                .get(a)
                .copied(),
        }
    }

    fn item(&self, i: usize) -> Option<&'a Resource> {
        match self {
            Context::Set(s) => s.resources.get(i),
            Context::List { items, .. } => items.get(i).copied(),
        }
    }

    /// [`Context::get`], looking first at the items within [`NEAR`] of position `at`
    /// (the resource that asks): in a large fleet the index is a cache miss, the
    /// neighbours are not. The answer is the same, because no two different resources
    /// of a context share an address (a set holds each address once; see
    /// [`Pricer::over`]).
    fn get_near(&self, a: &Address, at: Option<usize>) -> Option<&'a Resource> {
        if let Some(at) = at {
            let near = (at.saturating_sub(NEAR)..at.saturating_add(NEAR + 1))
                .filter_map(|i| self.item(i))
                .find(|r| r.address == *a);
            if near.is_some() {
                return near;
            }
        }
        self.get(a)
    }
}

/// Running totals of line items.
#[derive(Default)]
struct Totals {
    total: Decimal,
    by_item: HashMap<Item, Decimal>,
    quantities: HashMap<Item, Decimal>,
    used: HashMap<SourceRef, usize>,
    /// What the plan's free allowances can cover.
    coverable: Coverable,
}

impl Totals {
    fn add(&mut self, l: &LineItem) {
        self.total += l.monthly;
        *self.by_item.entry(l.item).or_default() += l.monthly;
        *self.quantities.entry(l.item).or_default() += l.quantity;
        self.coverable.add(l);
        for s in &l.sources {
            *self.used.entry(*s).or_insert(0) += 1;
        }
    }
}

/// The totals of a set without its line items: what a plan shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary<'a> {
    pub total: Usd,
    /// Monthly cost of each resource of the set, in the set's order (zero for one
    /// without lines, e.g. a secret): a caller that knows where a resource is reads its
    /// cost without a lookup. [`Summary::by_address`] gives them by address.
    pub by_position: Vec<(&'a Address, Usd)>,
    pub by_item: BTreeMap<&'static str, Usd>,
    /// Warnings about unpublished figures the set depends on.
    pub warnings: Vec<String>,
}

impl<'a> Summary<'a> {
    /// The monthly cost of each address of the set; a repeated address sums its
    /// resources' costs, as [`CostReport::by_address`] does.
    pub fn by_address(&self) -> HashMap<&'a Address, Usd> {
        let mut out: HashMap<&'a Address, Usd> = HashMap::with_capacity(self.by_position.len());
        for (a, v) in &self.by_position {
            *out.entry(*a).or_default() += *v;
        }
        out
    }
}

/// Everything a resource's lines depend on besides its identity (address, tenant, app).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Template {
    Machine {
        region: String,
        size: String,
        guest: (CpuKind, u32, u32),
        mode: IdleMode,
        /// `(index, min_running)` when `min_running` keeps the Machine on.
        kept_on: Option<(u32, u32)>,
        /// The schedule, and whether `usage.active_hours_per_day` is declared.
        schedule: Option<(String, bool)>,
        /// A standby: stopped all month.
        standby: bool,
        usage: [Decimal; 4],
    },
    Volume {
        name: String,
        region: String,
        size_gb: u32,
        backed_up: bool,
        used: Option<Decimal>,
        change: Decimal,
    },
    Snapshot {
        name: String,
        size_gb: u32,
        retention: u32,
        used: Option<Decimal>,
        change: Decimal,
    },
}

/// The used rootfs of the fleet lock's sentinel (`apply::lock::SENTINEL_IMAGE`,
/// busybox 1.36: about 4.3 MB unpacked), rounded up to 5 MB.
pub const FLEET_LOCK_ROOTFS_GB: Decimal = Decimal::from_parts(5, 0, 0, false, 3);

fn hours_per_month() -> Decimal {
    Decimal::from(HOURS_PER_MONTH)
}

/// The rule for scheduled Machines, stated after [`RULES`] in reports that price one.
pub(crate) const SCHEDULE_RULE: &str = "A scheduled Machine (schedule:) is started active_hours_per_day x 30 hours when usage declares it, else one hour per run: hourly 720 h, daily 30 h, weekly 5 h, monthly 1 h.";

/// The rules of the model, stated in every report.
pub(crate) const RULES: &[&str] = &[
    "A month is 30 days = 720 hours (Fly's billing convention); every monthly figure is per 30 days.",
    "A Machine with idle: off, or whose index is below its app's min_running, is started all 720 hours; otherwise it is started active_hours_per_day x 30 hours.",
    "Started hours pay the preset price plus additional RAM beyond the preset, both x the region's compute multiplier.",
    "Hours not started pay rootfs storage (usage.rootfs_gb) at the rootfs price; stopped and suspended Machines are billed alike.",
    "Volumes pay their provisioned size whatever the Machine does.",
    "Snapshot storage is estimated as used GB x (1 + daily change x (retention days - 1)); used GB defaults to the provisioned size; the organization's free snapshot GB are deducted once, in an org line.",
    "Egress is usage.egress_gb_month per Machine at its region group's internet rate, private cross-region traffic at the private rate.",
    "Dedicated IPv4 addresses and certificates are per app; the organization's free certificates are deducted once, in an org line.",
    "Amounts are exact decimals; only display rounds, to cents.",
];

impl<'a> Pricer<'a> {
    pub fn new(table: &'a PriceTable, context: &'a ResourceSet, fallback: &'a Usage) -> Self {
        Self::with_context(table, Context::Set(context), fallback)
    }

    /// A pricer over resources held elsewhere, in the given order: a plan's resources
    /// after it, drawn from the observed and the desired set. An item may be listed
    /// twice (priced twice), but no two different resources may share an address, as
    /// within one set.
    pub fn over(table: &'a PriceTable, items: Vec<&'a Resource>, fallback: &'a Usage) -> Self {
        debug_assert!(
            {
                let mut first: HashMap<&Address, &Resource> = HashMap::new();
                items
                    .iter()
                    .all(|r| std::ptr::eq(*first.entry(&r.address).or_insert(*r), *r))
            },
            "two different resources share an address"
        );
        Self::with_context(
            table,
            Context::List {
                items,
                index: OnceCell::new(),
            },
            fallback,
        )
    }

    fn with_context(table: &'a PriceTable, context: Context<'a>, fallback: &'a Usage) -> Self {
        let backed_up = context
            .iter()
            .filter_map(|r| match &r.spec {
                Spec::BackupPolicy(b) => Some(&b.volume),
                _ => None,
            })
            .collect();
        let apps_with = |ips: bool| {
            context
                .iter()
                .filter(|r| match r.spec {
                    Spec::Ip(_) => ips,
                    Spec::Certificate(_) => !ips,
                    _ => false,
                })
                .map(|r| r.app.as_str())
                .collect()
        };
        let (with_ips, with_certs) = (apps_with(true), apps_with(false));
        Pricer {
            table,
            context,
            fallback,
            usage_from: None,
            backed_up,
            with_ips,
            with_certs,
            templates: RefCell::new(HashMap::new()),
            fleet_lock: None,
            plan: PlanChoice::default(),
        }
    }

    /// Adds the fleet lock's sentinel (a stopped Machine in `app`, never started: its
    /// rootfs only) as one organization line of the report and its totals.
    pub fn with_fleet_lock(mut self, app: &'a str) -> Self {
        self.fleet_lock = Some(app);
        self
    }

    /// The monthly amount of the sentinel's line (zero without one).
    pub fn fleet_lock_monthly(&self) -> Usd {
        self.fleet_lock_line()
            .map(|l| l.monthly)
            .unwrap_or_default()
    }

    /// The sentinel's line: [`FLEET_LOCK_ROOTFS_GB`] at the rootfs price of the table
    /// (zero where the table charges nothing for it).
    fn fleet_lock_line(&self) -> Option<LineItem> {
        let app = self.fleet_lock?;
        let row = &self.table.storage.rootfs;
        let gb = FLEET_LOCK_ROOTFS_GB;
        Some(LineItem {
            address: Address::org_line("fleet-lock"),
            kind: ORG_KIND,
            tenant: None,
            app: Some(app.to_string()),
            item: Item::Rootfs,
            description: format!(
                "fleet lock sentinel: stopped Machine in {app}, rootfs {} GB",
                gb.normalize()
            ),
            quantity: gb,
            unit: "GB-month",
            unit_price: row.price,
            monthly: row.price * gb,
            pricing_version: self.table.version(),
            region: None,
            cpu_kind: None,
            sources: vec![row.source_ref()],
            assumptions: vec![format!(
                "the sentinel is never started, so only its rootfs is billed; its busybox image is counted as {} GB",
                gb.normalize()
            )],
        })
    }

    /// Prices the organization's plan: its fee, included usage and free allowances
    /// (default: Pay As You Go).
    pub fn with_plan(mut self, plan: PlanChoice) -> Self {
        self.plan = plan;
        self
    }

    /// Why the plan cannot be priced with this version (a plan Fly no longer offers to
    /// new organizations, declared without `org_plan_legacy`).
    pub fn plan_problem(&self) -> Option<CostError> {
        allowance::plan_problem(self.table, self.plan)
    }

    /// Resources that declare no usage borrow the usage of the resource at the same
    /// address in `set` (observed resources priced with their desired counterpart's).
    pub fn borrow_usage_from(mut self, set: &'a ResourceSet) -> Self {
        self.usage_from = Some(set);
        self
    }

    /// The usage a resource of the context is priced with, and whether it is the
    /// fallback.
    fn usage_of<'b>(&'b self, r: &'b Resource) -> (&'b Usage, bool) {
        // A resource of the set itself would only find itself there (a set holds each
        // address once).
        let borrowed = || {
            self.usage_from
                .filter(|s| !s.holds(r))
                .and_then(|s| s.get(&r.address))
                .and_then(|d| d.usage.as_ref())
        };
        match r.usage.as_ref().or_else(borrowed) {
            Some(u) => (u, false),
            None => (self.fallback, true),
        }
    }

    /// Prices one resource with its own usage, else the usage it borrows (see
    /// [`Pricer::borrow_usage_from`]), else the fallback.
    pub fn price(&self, resource: &Resource) -> Result<ResourceCost, CostError> {
        let (usage, defaulted) = self.usage_of(resource);
        self.price_inner(resource, usage, defaulted)
    }

    fn price_inner(
        &self,
        r: &Resource,
        usage: &Usage,
        defaulted: bool,
    ) -> Result<ResourceCost, CostError> {
        let mut lines = Vec::new();
        self.lines_into((r, None), usage, defaulted, &mut lines, &mut Vec::new())?;
        let monthly = lines.iter().map(|l| l.monthly).sum();
        Ok(ResourceCost {
            address: r.address.clone(),
            lines,
            monthly,
        })
    }

    /// Appends the lines of one resource, with its identity, to `lines`. `at` is the
    /// resource's position in the context, when it is one of its items.
    fn lines_into(
        &self,
        (r, at): (&Resource, Option<usize>),
        usage: &Usage,
        defaulted: bool,
        lines: &mut Vec<LineItem>,
        scratch: &mut Vec<LineItem>,
    ) -> Result<(), CostError> {
        let start = lines.len();
        self.visit((r, at), usage, scratch, &mut |l| {
            lines.push(with_identity(l, r))
        })?;
        if defaulted {
            for l in &mut lines[start..] {
                l.assumptions
                    .push("usage: the spec's default (the resource declares none)".into());
            }
        }
        Ok(())
    }

    /// Calls `f` with each line of one resource. Lines of a resource whose parameters
    /// were priced before come from the template cache and carry the identity (address,
    /// tenant, app) of the first such resource; everything else in them is this
    /// resource's.
    fn visit(
        &self,
        (r, at): (&Resource, Option<usize>),
        usage: &Usage,
        scratch: &mut Vec<LineItem>,
        f: &mut dyn FnMut(&LineItem),
    ) -> Result<(), CostError> {
        scratch.clear();
        let key = match &r.spec {
            Spec::Machine(m) => Template::Machine {
                region: m.region.clone(),
                size: m.size.clone(),
                guest: (m.guest.cpu_kind, m.guest.cpus, m.guest.memory_mb),
                mode: m.idle.mode,
                kept_on: (m.idle.mode != IdleMode::Off && m.index < m.idle.min_running)
                    .then_some((m.index, m.idle.min_running)),
                schedule: m
                    .config
                    .schedule
                    .clone()
                    .map(|s| (s, usage.active_hours_declared)),
                standby: m.is_standby(),
                usage: [
                    usage.active_hours_per_day,
                    usage.rootfs_gb,
                    usage.egress_gb_month,
                    usage.private_egress_gb_month,
                ],
            },
            Spec::Volume(v) => Template::Volume {
                name: v.name.clone(),
                region: v.region.clone(),
                size_gb: v.size_gb,
                backed_up: self.backed_up.contains(&r.address),
                used: usage.volume_used_gb,
                change: usage.snapshot_daily_change,
            },
            Spec::BackupPolicy(b) => {
                if !b.auto_backup {
                    return Ok(());
                }
                let (v, vu) = self.backed_volume((r, at), b, usage)?;
                Template::Snapshot {
                    name: v.name.clone(),
                    size_gb: v.size_gb,
                    retention: b.snapshot_retention,
                    used: vu.volume_used_gb,
                    change: vu.snapshot_daily_change,
                }
            }
            Spec::App(a) => {
                self.app(r, a, usage, scratch)?;
                scratch.iter().for_each(&mut *f);
                return Ok(());
            }
            Spec::Secret(_) => return Ok(()),
            Spec::Ip(_) | Spec::Certificate(_) => {
                self.network_line(r, scratch);
                scratch.iter().for_each(&mut *f);
                return Ok(());
            }
        };
        if let Some(lines) = self.templates.borrow().get(&key) {
            lines.iter().for_each(&mut *f);
            return Ok(());
        }
        match &r.spec {
            Spec::Machine(m) => self.machine(r, m, usage, scratch)?,
            Spec::Volume(v) => self.volume(r, v, usage, scratch)?,
            Spec::BackupPolicy(b) => {
                let (v, vu) = self.backed_volume((r, at), b, usage)?;
                scratch.push(self.snapshot_line(r, v, vu, b.snapshot_retention)?);
            }
            Spec::App(_) | Spec::Secret(_) | Spec::Ip(_) | Spec::Certificate(_) => {}
        }
        scratch.iter().for_each(&mut *f);
        self.templates
            .borrow_mut()
            .insert(key, std::mem::take(scratch));
        Ok(())
    }

    /// Prices every resource of the context, then adds organization-level lines.
    pub fn report(&self) -> Result<CostReport, CostErrors> {
        let mut lines = Vec::new();
        let mut scratch = Vec::new();
        let mut errors: Vec<CostError> = self.plan_problem().into_iter().collect();
        for (at, r) in self.context.iter().enumerate() {
            let (usage, defaulted) = self.usage_of(r);
            if let Err(e) =
                self.lines_into((r, Some(at)), usage, defaulted, &mut lines, &mut scratch)
            {
                errors.push(e);
            }
        }
        if !errors.is_empty() {
            return Err(CostErrors(errors));
        }
        let mut report = self.finish(lines);
        report.usage_rates = self
            .context
            .iter()
            .flat_map(|r| self.usage_rates(r, self.usage_of(r).0))
            .collect();
        Ok(report)
    }

    /// The prices a resource would pay for usage it is assumed not to have (zero egress,
    /// no dedicated IPv4, no certificates).
    pub fn usage_rates(&self, r: &Resource, u: &Usage) -> Vec<UsageRate> {
        let rate = |item, unit, unit_price, usage_key, region: Option<&str>| UsageRate {
            address: r.address.clone(),
            item,
            unit,
            unit_price,
            usage_key,
            region: region.map(str::to_string),
        };
        let mut out = Vec::new();
        match &r.spec {
            Spec::Machine(m) => {
                let Some(bw) = self
                    .table
                    .region(&m.region)
                    .ok()
                    .and_then(|reg| self.table.bandwidth(reg.group).ok())
                else {
                    return out;
                };
                let region = Some(m.region.as_str());
                if u.egress_gb_month.is_zero() {
                    out.push(rate(
                        Item::Egress,
                        "GB",
                        bw.egress_per_gb,
                        "usage.egress_gb_month",
                        region,
                    ));
                }
                if u.private_egress_gb_month.is_zero() {
                    out.push(rate(
                        Item::PrivateEgress,
                        "GB",
                        bw.private_per_gb,
                        "usage.private_egress_gb_month",
                        region,
                    ));
                }
            }
            Spec::App(_) => {
                let net = &self.table.network;
                for (count, item, row, unit, key) in [
                    (
                        u.dedicated_ipv4,
                        Item::DedicatedIpv4,
                        &net.dedicated_ipv4,
                        "app-month",
                        "usage.dedicated_ipv4",
                    ),
                    (
                        u.certificates,
                        Item::Certificate,
                        &net.certificate,
                        "cert-month",
                        "usage.certificates",
                    ),
                    (
                        u.wildcard_certificates,
                        Item::WildcardCertificate,
                        &net.wildcard_certificate,
                        "cert-month",
                        "usage.wildcard_certificates",
                    ),
                ] {
                    if count == 0 && !self.declares(&r.app, item) {
                        out.push(rate(item, unit, row.price, key, None));
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// The totals [`Pricer::report`] would give (total, per resource, per item, warnings),
    /// without building the line items.
    pub fn summary(&self) -> Result<Summary<'a>, CostErrors> {
        let mut totals = Totals::default();
        let mut by_position = Vec::with_capacity(self.context.len());
        let mut scratch = Vec::new();
        let mut errors: Vec<CostError> = self.plan_problem().into_iter().collect();
        for (at, r) in self.context.iter().enumerate() {
            let (usage, _) = self.usage_of(r);
            let mut monthly = Decimal::ZERO;
            let visited = self.visit((r, Some(at)), usage, &mut scratch, &mut |l| {
                monthly += l.monthly;
                totals.add(l);
            });
            match visited {
                Ok(()) => by_position.push((&r.address, monthly)),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(CostErrors(errors));
        }
        if let Some(l) = self.fleet_lock_line() {
            totals.add(&l);
        }
        let org = self.allowances(&totals);
        org.iter().for_each(|l| totals.add(l));
        let (_, _, warnings) = self.citations(totals.used.into_iter().collect());
        Ok(Summary {
            total: totals.total,
            by_position,
            by_item: totals
                .by_item
                .into_iter()
                .map(|(k, v)| (k.as_str(), v))
                .collect(),
            warnings,
        })
    }

    /// The volume a backup policy backs up, and the usage that says how much data it
    /// holds (the volume's own, else the policy's).
    fn backed_volume<'b>(
        &'b self,
        (r, at): (&Resource, Option<usize>),
        b: &BackupSpec,
        u: &'b Usage,
    ) -> Result<(&'a VolumeSpec, &'b Usage), CostError> {
        let vol_res = self
            .context
            .get_near(&b.volume, at)
            .ok_or_else(|| CostError {
                address: r.address.clone(),
                message: format!("backs up volume {} which is not in the set", b.volume),
                hint: "declare the volume, or remove the backup policy".into(),
            })?;
        let Some(v) = vol_res.volume() else {
            return Err(CostError {
                address: r.address.clone(),
                message: format!("backs up {} which is not a volume", b.volume),
                hint: String::new(),
            });
        };
        Ok((v, vol_res.usage.as_deref().unwrap_or(u)))
    }

    /// Builds a report from resource lines: adds the organization's free allowances,
    /// totals, citations and warnings about unpublished figures.
    pub fn finish(&self, mut lines: Vec<LineItem>) -> CostReport {
        lines.extend(self.fleet_lock_line());
        let mut totals = Totals::default();
        lines.iter().for_each(|l| totals.add(l));
        let org = self.allowances(&totals);
        org.iter().for_each(|l| totals.add(l));
        lines.extend(org);
        let mut by_tenant: HashMap<&str, Decimal> = HashMap::new();
        let mut by_kind: HashMap<&str, Decimal> = HashMap::new();
        let mut by_address: std::collections::HashMap<Address, Decimal> =
            std::collections::HashMap::with_capacity(lines.len());
        // Lines of one resource are adjacent: sum them before touching the map.
        let mut current: Option<(&Address, Decimal)> = None;
        for l in &lines {
            *by_tenant.entry(l.bucket()).or_default() += l.monthly;
            *by_kind.entry(l.kind).or_default() += l.monthly;
            match &mut current {
                Some((a, v)) if *a == &l.address => *v += l.monthly,
                _ => {
                    if let Some((a, v)) = current.take() {
                        *by_address.entry(a.clone()).or_default() += v;
                    }
                    current = Some((&l.address, l.monthly));
                }
            }
        }
        if let Some((a, v)) = current {
            *by_address.entry(a.clone()).or_default() += v;
        }
        let owned = |m: HashMap<&str, Decimal>| -> BTreeMap<String, Decimal> {
            m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
        };
        let (by_tenant, by_kind) = (owned(by_tenant), owned(by_kind));
        let by_item = totals
            .by_item
            .into_iter()
            .map(|(k, v)| (k.as_str().to_string(), v))
            .collect();
        let (citations, unpublished, warnings) = self.citations(totals.used.into_iter().collect());
        let plan = allowance::plan_note(self.table, self.plan, &lines);
        let reservation_advice = super::advice::advise(self.table, &lines);
        CostReport {
            pricing_version: self.table.version(),
            lines,
            total: totals.total,
            by_tenant,
            by_kind,
            by_item,
            by_address,
            citations,
            unpublished,
            warnings,
            resources: self.context.iter().map(|r| r.address.clone()).collect(),
            usage_rates: Vec::new(),
            assumptions: Assumptions {
                month_days: 30,
                hours_per_month: HOURS_PER_MONTH,
                currency: "USD",
                pricing_version: self.table.version(),
                pricing_origin: self.table.origin.clone(),
                default_usage: self.fallback.clone(),
                rules: self.rules(),
            },
            plan,
            reservation_advice,
        }
    }

    /// [`RULES`], and [`SCHEDULE_RULE`] when the context holds a scheduled Machine.
    fn rules(&self) -> Vec<String> {
        let scheduled = self
            .context
            .iter()
            .any(|r| r.machine().is_some_and(|m| m.config.is_scheduled()));
        let extra = scheduled.then_some(SCHEDULE_RULE);
        RULES
            .iter()
            .copied()
            .chain(extra)
            .map(str::to_string)
            .collect()
    }

    /// The table rows the lines used, and a warning for each unpublished one.
    fn citations(
        &self,
        used: BTreeMap<SourceRef, usize>,
    ) -> (BTreeMap<SourceRef, Citation>, Vec<Unpublished>, Vec<String>) {
        let mut citations = BTreeMap::new();
        let mut unpublished = Vec::new();
        let mut warnings = Vec::new();
        for (sref, count) in used {
            let Some(c) = self.table.cite(sref) else {
                continue;
            };
            if c.status != Status::Published {
                warnings.push(c.unpublished_warning(Some(count)));
                unpublished.push(Unpublished {
                    citation: c.clone(),
                    lines: count,
                });
            }
            citations.insert(sref, c);
        }
        warnings.extend(self.table.staleness_warning());
        (citations, unpublished, warnings)
    }

    /// The organization's free allowances, applied once, for the snapshot GB-months and
    /// certificates `totals` counted.
    fn allowances(&self, totals: &Totals) -> Vec<LineItem> {
        let quantity = |item| totals.quantities.get(&item).copied().unwrap_or_default();
        let mut org = self.org_lines_for(quantity(Item::Snapshot), quantity(Item::Certificate));
        let billed = totals.total + org.iter().map(|l| l.monthly).sum::<Decimal>();
        org.extend(allowance::plan_lines(
            self.table,
            self.plan,
            &totals.coverable,
            billed,
        ));
        org
    }

    /// The allowance lines for the given snapshot GB-months and certificates used.
    fn org_lines_for(&self, snapshot_gb: Decimal, certificates: Decimal) -> Vec<LineItem> {
        let mut out = Vec::new();
        let snap = &self.table.storage.snapshot;
        let cert = &self.table.network.certificate;
        let allowances = [
            (
                snapshot_gb,
                Item::SnapshotAllowance,
                snap,
                "snapshot_allowance",
                "GB-month",
                "free snapshot storage per organization",
            ),
            (
                certificates,
                Item::CertificateAllowance,
                cert,
                "certificate_allowance",
                "cert-month",
                "free single-hostname certificates per organization",
            ),
        ];
        for (used, allowance, row, address, unit, what) in allowances {
            let free = used.min(row.free_per_org);
            if free.is_zero() || row.price.is_zero() {
                continue;
            }
            out.push(LineItem {
                address: Address::org_line(address),
                kind: ORG_KIND,
                tenant: None,
                app: None,
                item: allowance,
                description: format!(
                    "{what}: {} of {} {unit} used",
                    shown(free),
                    shown(used)
                ),
                quantity: free,
                unit,
                unit_price: -row.price,
                monthly: -(free * row.price),
                pricing_version: self.table.version(),
                region: None,
                cpu_kind: None,
                sources: vec![row.source_ref()],
                assumptions: vec![format!(
                    "the first {} {unit} per organization are free; applied once to the whole report",
                    row.free_per_org.normalize()
                )],
            });
        }
        out
    }

    fn line(
        &self,
        r: &Resource,
        item: Item,
        description: String,
        (quantity, unit): (Decimal, &'static str),
        (unit_price, monthly): (Usd, Usd),
    ) -> LineItem {
        LineItem {
            address: r.address.clone(),
            kind: r.kind().as_str(),
            tenant: r.tenant.clone(),
            app: Some(r.app.clone()),
            item,
            description,
            quantity,
            unit,
            unit_price,
            monthly,
            pricing_version: self.table.version(),
            region: None,
            cpu_kind: None,
            sources: Vec::new(),
            assumptions: Vec::new(),
        }
    }

    fn machine(
        &self,
        r: &Resource,
        m: &MachineSpec,
        u: &Usage,
        lines: &mut Vec<LineItem>,
    ) -> Result<(), CostError> {
        check_usage(r, u)?;
        let p = self.machine_prices(r, m, u)?;
        lines.push(self.compute_line(r, &p));
        if let Some(ram) = self.ram_line(r, m, &p) {
            lines.push(ram);
        }
        if let Some(rootfs) = self.rootfs_line(r, m, u, &p) {
            lines.push(rootfs);
        }
        if !m.is_standby() {
            // A stopped standby sends nothing.
            self.transfer_lines(r, u, &p, lines);
        }
        Ok(())
    }

    /// The rows that price a Machine and the hours it is started.
    fn machine_prices(
        &self,
        r: &Resource,
        m: &MachineSpec,
        u: &Usage,
    ) -> Result<MachinePrices<'_>, CostError> {
        let region = self.table.region(&m.region).map_err(|e| lookup(r, e))?;
        let preset = self.billed_preset(r, m)?;
        let mem = self
            .table
            .memory(preset.cpu_kind)
            .map_err(|e| lookup(r, e))?;
        let bw = self
            .table
            .bandwidth(region.group)
            .map_err(|e| lookup(r, e))?;
        let (started, idle_note) = started_hours(m, u);
        let region_note = format!(
            "region {} compute multiplier {} ({})",
            region.region,
            region.compute_multiplier,
            region.prov.status.as_str()
        );
        Ok(MachinePrices {
            region,
            preset,
            mem,
            bw,
            started,
            idle_note,
            region_note,
        })
    }

    /// Fly bills the guest it runs: if the guest's CPUs differ from the named preset,
    /// the preset that matches the guest.
    fn billed_preset(&self, r: &Resource, m: &MachineSpec) -> Result<&ComputeRow, CostError> {
        let named = self.table.preset(&m.size).map_err(|e| lookup(r, e))?;
        if named.cpu_kind == m.guest.cpu_kind && named.cpus == m.guest.cpus {
            return Ok(named);
        }
        self.table
            .preset_for(m.guest.cpu_kind, m.guest.cpus)
            .ok_or_else(|| CostError {
                address: r.address.clone(),
                message: format!(
                    "no preset in pricing {} has {} {} vCPUs (size `{}`)",
                    self.table.version(),
                    m.guest.cpus,
                    m.guest.cpu_kind.as_str(),
                    m.size
                ),
                hint: "use a preset size listed by `flotilla pricing show`".into(),
            })
    }

    /// Compute: preset price x multiplier x started / 720.
    fn compute_line(&self, r: &Resource, p: &MachinePrices<'_>) -> LineItem {
        let (preset, region, hpm) = (p.preset, p.region, hours_per_month());
        let mult = region.compute_multiplier;
        let mut compute = self.line(
            r,
            Item::Compute,
            format!(
                "{} ({} MB included) in {}, started {} h",
                preset.preset,
                preset.base_memory_mb,
                region.region,
                shown(p.started)
            ),
            (p.started, "h"),
            (
                preset.price_per_30d * mult / hpm,
                preset.price_per_30d * mult * p.started / hpm,
            ),
        );
        compute.region = Some(region.region.clone());
        compute.cpu_kind = Some(preset.cpu_kind);
        compute.sources = vec![preset.source_ref(), region.source_ref()];
        compute.assumptions = vec![p.idle_note.clone(), p.region_note.clone()];
        compute
    }

    /// Additional RAM beyond the preset, per GB-hour started.
    fn ram_line(&self, r: &Resource, m: &MachineSpec, p: &MachinePrices<'_>) -> Option<LineItem> {
        let (preset, region, hpm) = (p.preset, p.region, hours_per_month());
        let mult = region.compute_multiplier;
        let extra_mb = m.guest.memory_mb.saturating_sub(preset.base_memory_mb);
        if extra_mb == 0 {
            return None;
        }
        let extra_gb = Decimal::from(extra_mb) / Decimal::from(1024);
        let mut ram = self.line(
            r,
            Item::Ram,
            format!(
                "additional RAM {} GB ({} MB - {} MB) in {}, started {} h",
                shown(extra_gb),
                m.guest.memory_mb,
                preset.base_memory_mb,
                region.region,
                shown(p.started)
            ),
            (extra_gb * p.started, "GB-h"),
            (
                p.mem.price_per_gb_30d * mult / hpm,
                p.mem.price_per_gb_30d * extra_gb * mult * p.started / hpm,
            ),
        );
        ram.region = Some(region.region.clone());
        ram.cpu_kind = Some(preset.cpu_kind);
        ram.sources = vec![p.mem.source_ref(), region.source_ref()];
        ram.assumptions = vec![p.idle_note.clone(), p.region_note.clone()];
        Some(ram)
    }

    /// Rootfs storage for the hours not started.
    fn rootfs_line(
        &self,
        r: &Resource,
        m: &MachineSpec,
        u: &Usage,
        p: &MachinePrices<'_>,
    ) -> Option<LineItem> {
        let hpm = hours_per_month();
        let stopped = hpm - p.started;
        if stopped <= Decimal::ZERO || u.rootfs_gb <= Decimal::ZERO {
            return None;
        }
        let row = &self.table.storage.rootfs;
        let mut rootfs = self.line(
            r,
            Item::Rootfs,
            format!(
                "rootfs {} GB while {} for {} h",
                u.rootfs_gb.normalize(),
                if m.idle.mode == IdleMode::Suspend {
                    "suspended"
                } else {
                    "stopped"
                },
                shown(stopped)
            ),
            (u.rootfs_gb * stopped, "GB-h"),
            (row.price / hpm, row.price * u.rootfs_gb * stopped / hpm),
        );
        rootfs.sources = vec![row.source_ref()];
        rootfs.assumptions = vec![format!(
            "rootfs {} GB (usage.rootfs_gb), charged for the hours not started",
            u.rootfs_gb.normalize()
        )];
        Some(rootfs)
    }

    /// Data transfer by the region's bandwidth group.
    fn transfer_lines(
        &self,
        r: &Resource,
        u: &Usage,
        p: &MachinePrices<'_>,
        lines: &mut Vec<LineItem>,
    ) {
        let (region, bw) = (p.region, p.bw);
        let transfers = [
            (
                Item::Egress,
                u.egress_gb_month,
                bw.egress_per_gb,
                "outbound data to the internet",
                "usage.egress_gb_month",
            ),
            (
                Item::PrivateEgress,
                u.private_egress_gb_month,
                bw.private_per_gb,
                "private data to other regions",
                "usage.private_egress_gb_month",
            ),
        ];
        for (item, gb, price, what, field) in transfers {
            if gb <= Decimal::ZERO {
                continue;
            }
            let mut l = self.line(
                r,
                item,
                format!(
                    "{what}, {} GB from {} ({})",
                    gb.normalize(),
                    region.region,
                    region.group.code()
                ),
                (gb, "GB"),
                (price, gb * price),
            );
            l.region = Some(region.region.clone());
            // The rate is the bandwidth group's; the region row only names the group,
            // and its compute multiplier does not apply.
            l.sources = vec![bw.source_ref()];
            l.assumptions = vec![format!("{} GB per month ({field})", gb.normalize())];
            lines.push(l);
        }
    }

    fn volume(
        &self,
        r: &Resource,
        v: &VolumeSpec,
        u: &Usage,
        lines: &mut Vec<LineItem>,
    ) -> Result<(), CostError> {
        let row = &self.table.storage.volume;
        let size = Decimal::from(v.size_gb);
        let mut l = self.line(
            r,
            Item::Volume,
            format!("volume {} {} GB in {}", v.name, v.size_gb, v.region),
            (size, "GB-month"),
            (row.price, size * row.price),
        );
        l.region = Some(v.region.clone());
        l.sources = vec![row.source_ref()];
        l.assumptions = vec!["provisioned size, whatever the Machine does".into()];
        lines.push(l);
        if !self.backed_up.contains(&r.address) {
            // No backup policy declared: Fly's default daily snapshots apply.
            let mut snap = self.snapshot_line(r, v, u, SNAPSHOT_RETENTION_DEFAULT)?;
            snap.assumptions.push(format!(
                "no backup policy declared: Fly's default automatic daily snapshots, {SNAPSHOT_RETENTION_DEFAULT}-day retention"
            ));
            lines.push(snap);
        }
        Ok(())
    }

    fn snapshot_line(
        &self,
        r: &Resource,
        v: &VolumeSpec,
        u: &Usage,
        retention: u32,
    ) -> Result<LineItem, CostError> {
        let size = Decimal::from(v.size_gb);
        let used = u.volume_used_gb.unwrap_or(size);
        if used.is_sign_negative() || used > size {
            return Err(CostError {
                address: r.address.clone(),
                message: format!(
                    "usage.volume_used_gb is {} but volume {} holds {} GB",
                    used.normalize(),
                    v.name,
                    v.size_gb
                ),
                hint: "volume_used_gb must be between 0 and the volume's size_gb".into(),
            });
        }
        let change = u.snapshot_daily_change;
        if change.is_sign_negative() || change > Decimal::ONE {
            return Err(CostError {
                address: r.address.clone(),
                message: format!(
                    "usage.snapshot_daily_change is {} (a share of the data per day)",
                    change.normalize()
                ),
                hint: "use a fraction between 0 and 1, e.g. 0.05 for 5% a day".into(),
            });
        }
        let retention = retention.max(1);
        let stored = used * (Decimal::ONE + change * Decimal::from(retention - 1));
        let row = &self.table.storage.snapshot;
        let mut l = self.line(
            r,
            Item::Snapshot,
            format!(
                "snapshots of {} ({retention} day{} kept), about {} GB stored",
                v.name,
                if retention == 1 { "" } else { "s" },
                shown(stored)
            ),
            (stored, "GB-month"),
            (row.price, stored * row.price),
        );
        l.sources = vec![row.source_ref()];
        l.assumptions = vec![
            format!(
                "stored = {} GB used x (1 + {} daily change x ({retention} - 1)) = {} GB",
                shown(used),
                shown(change),
                shown(stored)
            ),
            if u.volume_used_gb.is_some() {
                "used GB from usage.volume_used_gb".to_string()
            } else {
                "used GB = the provisioned size (no usage.volume_used_gb)".to_string()
            },
        ];
        if row.price.is_zero() {
            l.assumptions.push(format!(
                "snapshot storage is free in pricing {}",
                self.table.version()
            ));
        }
        Ok(l)
    }

    fn app(
        &self,
        r: &Resource,
        a: &AppSpec,
        u: &Usage,
        lines: &mut Vec<LineItem>,
    ) -> Result<(), CostError> {
        let net = &self.table.network;
        let items = [
            (
                Item::DedicatedIpv4,
                u.dedicated_ipv4,
                &net.dedicated_ipv4,
                ("dedicated IPv4 address", "dedicated IPv4 addresses"),
                "usage.dedicated_ipv4",
            ),
            (
                Item::Certificate,
                u.certificates,
                &net.certificate,
                (
                    "single-hostname certificate",
                    "single-hostname certificates",
                ),
                "usage.certificates",
            ),
            (
                Item::WildcardCertificate,
                u.wildcard_certificates,
                &net.wildcard_certificate,
                ("wildcard certificate", "wildcard certificates"),
                "usage.wildcard_certificates",
            ),
        ];
        for (item, count, row, (one, many), field) in items {
            // What the app declares is priced from the declarations (`network_line`).
            if count == 0 || self.declares(&a.name, item) {
                continue;
            }
            let q = Decimal::from(count);
            let mut l = self.line(
                r,
                item,
                format!(
                    "{count} {} for app {}",
                    if count == 1 { one } else { many },
                    a.name
                ),
                (
                    q,
                    if item == Item::DedicatedIpv4 {
                        "app-month"
                    } else {
                        "cert-month"
                    },
                ),
                (row.price, q * row.price),
            );
            l.sources = vec![row.source_ref()];
            l.assumptions = vec![format!("{count} declared ({field})")];
            lines.push(l);
        }
        Ok(())
    }
}

impl Pricer<'_> {
    /// Whether `app` declares what `item` prices (IP addresses for a dedicated IPv4,
    /// certificates for either kind of certificate), so that the usage assumption for
    /// it does not apply.
    fn declares(&self, app: &str, item: Item) -> bool {
        match item {
            Item::DedicatedIpv4 => self.with_ips.contains(app),
            Item::Certificate | Item::WildcardCertificate => self.with_certs.contains(app),
            _ => false,
        }
    }

    /// The line of a declared IP address (dedicated IPv4 only: the others are free) or
    /// certificate (single-hostname or wildcard).
    fn network_line(&self, r: &Resource, lines: &mut Vec<LineItem>) {
        let net = &self.table.network;
        let (item, row, description, unit, declared) = match &r.spec {
            Spec::Ip(ip) if ip.ip_kind == crate::resource::IpKind::V4 => (
                Item::DedicatedIpv4,
                &net.dedicated_ipv4,
                format!("dedicated IPv4 address for app {}", r.app),
                "app-month",
                "ips: v4",
            ),
            Spec::Certificate(c) if c.is_wildcard() => (
                Item::WildcardCertificate,
                &net.wildcard_certificate,
                format!("wildcard certificate {} for app {}", c.hostname, r.app),
                "cert-month",
                "hostnames (wildcard)",
            ),
            Spec::Certificate(c) => (
                Item::Certificate,
                &net.certificate,
                format!("certificate {} for app {}", c.hostname, r.app),
                "cert-month",
                "hostnames",
            ),
            _ => return,
        };
        let mut l = self.line(
            r,
            item,
            description,
            (Decimal::ONE, unit),
            (row.price, row.price),
        );
        l.sources = vec![row.source_ref()];
        l.assumptions = vec![format!("declared ({declared})")];
        lines.push(l);
    }
}

/// A copy of a template line for resource `r`.
fn with_identity(t: &LineItem, r: &Resource) -> LineItem {
    LineItem {
        address: r.address.clone(),
        kind: t.kind,
        tenant: r.tenant.clone(),
        app: Some(r.app.clone()),
        item: t.item,
        description: t.description.clone(),
        quantity: t.quantity,
        unit: t.unit,
        unit_price: t.unit_price,
        monthly: t.monthly,
        pricing_version: t.pricing_version,
        region: t.region.clone(),
        cpu_kind: t.cpu_kind,
        sources: t.sources.clone(),
        assumptions: t.assumptions.clone(),
    }
}

/// The price rows a Machine is billed by, the hours it is started and the notes that
/// explain both.
struct MachinePrices<'t> {
    region: &'t RegionRow,
    preset: &'t ComputeRow,
    mem: &'t MemoryRow,
    bw: &'t BandwidthRow,
    started: Decimal,
    idle_note: String,
    region_note: String,
}

/// The hours a month a scheduled Machine is started when its usage does not say: one
/// hour per run Fly starts in a 30-day month (hourly 720 runs, so always started;
/// daily 30; weekly 5, since a 30-day month holds 4 2/7 weeks and so starts up to 5
/// weekly runs; monthly 1). An unknown schedule counts as always started.
pub fn scheduled_hours(schedule: &str) -> Decimal {
    Decimal::from(match schedule {
        "daily" => 30,
        "weekly" => 5,
        "monthly" => 1,
        _ => HOURS_PER_MONTH,
    })
}

/// A scheduled Machine's started hours: Fly starts it on its schedule whatever its
/// idle policy; `usage.active_hours_per_day` when declared, else the schedule's default.
fn scheduled_started(schedule: &str, u: &Usage) -> (Decimal, String) {
    if u.active_hours_declared {
        let started = u.active_hours_per_day * Decimal::from(30);
        let note = format!(
            "schedule: {schedule}, started {} h/day x 30 days = {} h of 720 (usage.active_hours_per_day)",
            shown(u.active_hours_per_day),
            shown(started)
        );
        return (started, note);
    }
    let started = scheduled_hours(schedule);
    let note = format!(
        "schedule: {schedule}, started {} h of 720: one hour per run (a scheduled Machine's default; set usage.active_hours_per_day to change it)",
        shown(started)
    );
    (started, note)
}

/// The hours a Machine is started in a month, and the note that says why.
fn started_hours(m: &MachineSpec, u: &Usage) -> (Decimal, String) {
    if m.is_standby() {
        return (
            Decimal::ZERO,
            "standby: stopped until Fly starts it when its primary's host fails, so started 0 h"
                .to_string(),
        );
    }
    if let Some(s) = m.config.schedule.as_deref() {
        return scheduled_started(s, u);
    }
    let hpm = hours_per_month();
    let always_on = m.idle.mode == IdleMode::Off || m.index < m.idle.min_running;
    let active = u.active_hours_per_day;
    let started = if always_on {
        hpm
    } else {
        active * Decimal::from(30)
    };
    let idle_note = if m.idle.mode == IdleMode::Off {
        "idle: off, so started all 720 h".to_string()
    } else if always_on {
        format!(
            "idle: {} but Machine index {} < min_running {}, so started all 720 h",
            m.idle.mode.as_str(),
            m.index,
            m.idle.min_running
        )
    } else {
        format!(
            "idle: {}, started {} h/day x 30 days = {} h of 720 (usage.active_hours_per_day)",
            m.idle.mode.as_str(),
            shown(active),
            shown(started)
        )
    };
    (started, idle_note)
}

/// A quantity in a description: at most 4 decimals, no trailing zeros (`0.1667`, not
/// 28 digits of a repeating decimal). The line's quantity keeps every digit.
fn shown(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .normalize()
}

fn lookup(r: &Resource, e: LookupError) -> CostError {
    let hint = match e.what {
        "region" => {
            "use a region listed by `flotilla pricing show`, or add it to regions.csv of a --pricing DIR"
        }
        "preset" => "use a preset listed by `flotilla pricing show`",
        _ => "",
    };
    CostError {
        address: r.address.clone(),
        message: e.to_string(),
        hint: hint.into(),
    }
}

fn check_usage(r: &Resource, u: &Usage) -> Result<(), CostError> {
    let bad = |field: &str, v: Decimal, hint: &str| CostError {
        address: r.address.clone(),
        message: format!("usage.{field} is {}", v.normalize()),
        hint: hint.into(),
    };
    if u.active_hours_per_day.is_sign_negative() || u.active_hours_per_day > Decimal::from(24) {
        return Err(bad(
            "active_hours_per_day",
            u.active_hours_per_day,
            "hours per day are between 0 and 24",
        ));
    }
    for (field, v) in [
        ("rootfs_gb", u.rootfs_gb),
        ("egress_gb_month", u.egress_gb_month),
        ("private_egress_gb_month", u.private_egress_gb_month),
    ] {
        if v.is_sign_negative() && !v.is_zero() {
            return Err(bad(field, v, "usage figures are never negative"));
        }
    }
    Ok(())
}
