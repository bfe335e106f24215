//! Architecture cost models. At one usage point (active fraction, active hours, region
//! mix, price table), an architecture is a list of *units* — the resources of one tenant,
//! of one active session, of one pool Machine, of the shared tier — each priced once by
//! the cost engine ([`Pricer`]) and multiplied by a count that depends on the number of
//! tenants `N`:
//!
//! | count | value |
//! |---|---|
//! | fixed | 1 (shared tier, the shared app) |
//! | tenants | `N × w` (the region's weight `w`) |
//! | active | `N × w × f` (egress of active tenants) |
//! | active Machines | `ceil(N × w × f)` (hybrid sessions) |
//! | pool Machines | `max(min, ceil(load / tenants per Machine))`, cheapest size at that `N` |
//!
//! A report at `N` multiplies each unit's engine lines by its count (exact decimals) and
//! hands them to [`Pricer::finish`], which applies the organization's free allowances
//! (snapshot GB, certificates) once, to the whole fleet — never once per unit. The fast
//! path [`ArchModel::cost`] applies the same arithmetic without building lines; tests
//! check that both agree.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use rust_decimal::Decimal;

use crate::cost::{CostError, CostReport, Coverable, Item, LineItem, Pricer};
use crate::money::Usd;
use crate::platform::{CpuKind, PlanChoice};
use crate::pricing::PriceTable;
use crate::resource::{
    Address, AppSpec, BackupSpec, Guest, IdleMode, IdlePolicy, MachineSpec, Owner, Resource,
    ResourceSet, Spec, Usage, VolumeSpec,
};

use super::capacity::{Candidate, MemoryModel, platform_candidates};
use super::scenario::{
    ArchKind, Architecture, Placement, RegionMix, Scenario, SharedMachine, SharedTier,
};

/// A usage point: one value of each sweep axis but the tenants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Point {
    pub fraction: Decimal,
    pub hours: Decimal,
    /// Index into the sweep's region mixes.
    pub region: usize,
    /// Index into the price tables.
    pub table: usize,
}

/// Resources priced once by the engine, counted many times.
#[derive(Debug, Clone)]
pub struct Unit {
    pub label: String,
    pub lines: Vec<LineItem>,
    pub total: Usd,
    /// Snapshot GB-month of one copy (for the organization's free GB).
    pub snapshot_gb: Decimal,
    /// What the plan's free allowances could cover of one copy.
    pub coverable: Coverable,
    /// Single-hostname certificates of one copy (for the free certificates).
    pub certificates: Decimal,
    /// Compute and RAM of always-on Machines, per region and CPU class: what reservation
    /// blocks can cover.
    pub reservable: Vec<((String, CpuKind), Usd)>,
    pub machines: Decimal,
    pub always_on: Decimal,
}

/// How many copies of a unit a fleet of `N` tenants has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Fixed(Decimal),
    /// `N × w`.
    Tenants(Decimal),
    /// `N × w × f`.
    Active(Decimal),
    /// `ceil(N × w × f)`.
    ActiveCeil(Decimal),
}

impl Count {
    pub fn at(self, n: u64) -> Decimal {
        let n = Decimal::from(n);
        match self {
            Count::Fixed(k) => k,
            Count::Tenants(w) | Count::Active(w) => n * w,
            Count::ActiveCeil(w) => (n * w).ceil(),
        }
    }
}

/// A size a pool may use, with its capacity and the units of one Machine.
#[derive(Debug, Clone)]
pub struct PoolChoice {
    pub cand: Candidate,
    pub tenants_per_machine: u64,
    /// One of the `min` Machines kept running.
    pub on: Rc<Unit>,
    /// One of the Machines started only in the active window.
    pub window: Rc<Unit>,
}

/// A shared pool in one region: the sizes worth considering (no size on this list is both
/// dearer and smaller than another), cheapest first.
#[derive(Debug, Clone)]
pub struct PoolRegion {
    pub region: String,
    /// Tenants (pinned) or active tenants (session) per tenant of the fleet.
    pub load: Decimal,
    pub min: u64,
    pub max: Option<u64>,
    pub front: Vec<PoolChoice>,
    pub placement: Placement,
}

/// The pool's pick at one `N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPick {
    pub best: usize,
    pub runner_up: Option<usize>,
    pub machines: u64,
    pub runner_up_machines: u64,
    pub cost: Usd,
    pub runner_up_cost: Option<Usd>,
}

impl PoolRegion {
    fn machines(&self, n: u64, choice: &PoolChoice) -> u64 {
        use rust_decimal::prelude::ToPrimitive;
        let load = Decimal::from(n) * self.load;
        let need = (load / Decimal::from(choice.tenants_per_machine.max(1)))
            .ceil()
            .to_u64()
            .unwrap_or(u64::MAX);
        need.max(self.min)
    }

    fn cost_with(&self, m: u64, choice: &PoolChoice) -> Usd {
        let on = self.min.min(m);
        Decimal::from(on) * choice.on.total + Decimal::from(m - on) * choice.window.total
    }

    /// The cheapest size at `n` tenants and the runner-up (ties: fewer Machines, then the
    /// cheaper Machine).
    pub fn pick(&self, n: u64) -> Option<PoolPick> {
        let mut best: Option<(Usd, u64, usize)> = None;
        let mut second: Option<(Usd, u64, usize)> = None;
        for (i, c) in self.front.iter().enumerate() {
            let m = self.machines(n, c);
            let cost = self.cost_with(m, c);
            let key = (cost, m, i);
            if best.is_none_or(|b| key < b) {
                second = best;
                best = Some(key);
            } else if second.is_none_or(|s| key < s) {
                second = Some(key);
            }
        }
        best.map(|(cost, machines, i)| PoolPick {
            best: i,
            runner_up: second.map(|s| s.2),
            machines,
            runner_up_machines: second.map(|s| s.1).unwrap_or(0),
            cost,
            runner_up_cost: second.map(|s| s.0),
        })
    }
}

/// One architecture at one usage point.
#[derive(Debug, Clone)]
pub struct ArchModel<'t> {
    pub arch: usize,
    pub units: Vec<(Rc<Unit>, Count)>,
    pub pools: Vec<PoolRegion>,
    /// The per-tenant Machine size when the capacity model chose it.
    pub auto_size: Option<Candidate>,
    pub extras_fixed: Usd,
    pub extras_per_tenant: Usd,
    snapshot: (Usd, Decimal),
    certificate: (Usd, Decimal),
    /// The price table and the organization's plan, when the plan has a fee, included
    /// usage or free allowances in it.
    plan: Option<(&'t PriceTable, PlanChoice)>,
}

/// A fleet of `N` tenants priced through the engine, with what the capacity model chose.
#[derive(Debug, Clone)]
pub struct Priced {
    pub report: CostReport,
    /// The engine's total plus the scenario's extras.
    pub total: Usd,
    pub extras: Usd,
    pub machines: Decimal,
    pub always_on: Decimal,
    pub picks: Vec<Option<PoolPick>>,
    /// Always-on compute and RAM spend per region and CPU class.
    pub reservable: BTreeMap<(String, CpuKind), Usd>,
}

impl ArchModel<'_> {
    /// The monthly cost at `n` tenants (exact; same arithmetic as [`ArchModel::price`]).
    pub fn cost(&self, n: u64) -> Usd {
        let t = self.tally(n);
        self.org_billed(&t)
            + self.plan_effect(&t).monthly
            + self.extras_fixed
            + Decimal::from(n) * self.extras_per_tenant
    }

    /// The engine's bill after the organization's snapshot and certificate allowances
    /// (what the plan's included usage applies to), as [`Pricer::finish`] orders them.
    fn org_billed(&self, t: &Tally) -> Usd {
        t.total
            - allowance(self.snapshot, t.snapshot_gb)
            - allowance(self.certificate, t.certificates)
    }

    /// What the organization's plan adds to the bill (nothing without a plan).
    fn plan_effect(&self, t: &Tally) -> crate::cost::PlanEffect {
        match self.plan {
            Some((table, choice)) => {
                crate::cost::plan_effect(table, choice, &t.coverable, self.org_billed(t))
            }
            None => Default::default(),
        }
    }

    /// Engine cost before the organization's allowances, with what they apply to.
    fn tally(&self, n: u64) -> Tally {
        let mut t = Tally::default();
        let with_plan = self.plan.is_some();
        let mut add = |u: &Unit, k: Decimal| {
            t.total += k * u.total;
            t.snapshot_gb += k * u.snapshot_gb;
            t.certificates += k * u.certificates;
            if with_plan {
                t.coverable.add_scaled(&u.coverable, k);
            }
        };
        for (u, c) in &self.units {
            add(u, c.at(n));
        }
        for p in &self.pools {
            if let Some(pick) = p.pick(n) {
                let ch = &p.front[pick.best];
                let on = p.min.min(pick.machines);
                // The pick's cost is the engine total of these copies.
                add(&ch.on, Decimal::from(on));
                add(&ch.window, Decimal::from(pick.machines - on));
            }
        }
        t
    }

    /// Bounds on `cost(N + 1) − cost(N)` for every `N ≥ from`: the exact per-tenant slope
    /// of the affine parts, widened by the steps (`ceil`, pool Machines) and, while the
    /// organization's free allowances are not used up at `from`, by their change.
    pub fn increments(&self, from: u64) -> (Usd, Usd) {
        let (mut lo, mut hi) = (self.extras_per_tenant, self.extras_per_tenant);
        let (mut snap_hi, mut certs_hi) = (Decimal::ZERO, Decimal::ZERO);
        for (u, c) in &self.units {
            let (klo, khi) = match *c {
                Count::Fixed(_) => (Decimal::ZERO, Decimal::ZERO),
                Count::Tenants(w) | Count::Active(w) => (w, w),
                Count::ActiveCeil(x) => (x.floor(), x.ceil()),
            };
            lo += klo * u.total;
            hi += khi * u.total;
            snap_hi += khi * u.snapshot_gb;
            certs_hi += khi * u.certificates;
        }
        for p in &self.pools {
            let mut jump = Decimal::ZERO;
            for c in &p.front {
                let most = (p.load / Decimal::from(c.tenants_per_machine.max(1))).ceil();
                jump = jump.max(most * c.window.total);
                snap_hi = snap_hi.max(most * c.window.snapshot_gb);
                certs_hi = certs_hi.max(most * c.window.certificates);
            }
            hi += jump;
        }
        let t = self.tally(from);
        if t.snapshot_gb < self.snapshot.1 {
            lo -= snap_hi * self.snapshot.0;
        }
        if t.certificates < self.certificate.1 {
            lo -= certs_hi * self.certificate.0;
        }
        let plan = self.plan_effect(&t);
        // A free allowance can take off at most what one more tenant adds to the lines it
        // covers. Pools may switch sizes (and so what is coverable) at any count, so with
        // pools that holds whether or not the allowance is used up at `from`.
        if plan.allowance_left || (self.plan.is_some() && !self.pools.is_empty()) {
            lo -= self.coverable_step();
        }
        // A pool that switches sizes may leave less for an allowance to cover: the cost
        // can then rise by up to what the allowances were taking off.
        if let Some((table, choice)) = self.plan
            && !self.pools.is_empty()
        {
            hi += crate::cost::free_value_cap(table, choice, self.max_coverable_price());
        }
        // Included usage not used up: the next tenant may cost nothing.
        if plan.credit_left {
            lo = lo.min(Decimal::ZERO);
        }
        (lo, hi)
    }

    /// The dearest unit price of any line a free allowance could cover.
    fn max_coverable_price(&self) -> Decimal {
        let units = self.units.iter().map(|(u, _)| u.coverable.max_price());
        let pools = self.pools.iter().flat_map(|p| {
            p.front.iter().map(|c| {
                c.on.coverable
                    .max_price()
                    .max(c.window.coverable.max_price())
            })
        });
        units.chain(pools).max().unwrap_or_default()
    }

    /// The most one more tenant can add to the value of the lines a free allowance covers.
    fn coverable_step(&self) -> Usd {
        let mut step = Decimal::ZERO;
        for (u, c) in &self.units {
            let k = match *c {
                Count::Fixed(_) => Decimal::ZERO,
                Count::Tenants(w) | Count::Active(w) => w,
                Count::ActiveCeil(x) => x.ceil(),
            };
            step += k * u.coverable.value();
        }
        for p in &self.pools {
            let mut jump = Decimal::ZERO;
            for c in &p.front {
                let most = (p.load / Decimal::from(c.tenants_per_machine.max(1))).ceil();
                jump = jump.max(most * c.window.coverable.value().max(c.on.coverable.value()));
            }
            step += jump;
        }
        step
    }

    /// The fleet at `n` tenants as a full engine report.
    pub fn price(&self, n: u64, table: &PriceTable) -> Priced {
        let mut lines = Vec::new();
        let mut machines = Decimal::ZERO;
        let mut always_on = Decimal::ZERO;
        let mut reservable: BTreeMap<(String, CpuKind), Usd> = BTreeMap::new();
        let mut add = |u: &Unit, k: Decimal, lines: &mut Vec<LineItem>| {
            if k.is_zero() {
                return;
            }
            machines += k * u.machines;
            always_on += k * u.always_on;
            for (key, v) in &u.reservable {
                *reservable.entry(key.clone()).or_default() += k * v;
            }
            lines.extend(u.lines.iter().map(|l| scaled(l, k)));
        };
        for (u, c) in &self.units {
            add(u, c.at(n), &mut lines);
        }
        let mut picks = Vec::new();
        for p in &self.pools {
            let pick = p.pick(n);
            if let Some(pk) = &pick {
                let ch = &p.front[pk.best];
                let on = p.min.min(pk.machines);
                add(&ch.on, Decimal::from(on), &mut lines);
                add(&ch.window, Decimal::from(pk.machines - on), &mut lines);
            }
            picks.push(pick);
        }
        let empty = ResourceSet::default();
        let fallback = Usage::default();
        let mut pricer = Pricer::new(table, &empty, &fallback);
        if let Some((_, choice)) = self.plan {
            pricer = pricer.with_plan(choice);
        }
        let report = pricer.finish(lines);
        let extras = self.extras_fixed + Decimal::from(n) * self.extras_per_tenant;
        Priced {
            total: report.total + extras,
            report,
            extras,
            machines,
            always_on,
            picks,
            reservable,
        }
    }
}

/// A fleet's engine totals before the organization's allowances, and what they apply to.
#[derive(Default)]
struct Tally {
    total: Usd,
    snapshot_gb: Decimal,
    certificates: Decimal,
    /// Filled only when the organization's plan has free allowances to apply.
    coverable: Coverable,
}

fn allowance((price, free): (Usd, Decimal), used: Decimal) -> Usd {
    let f = used.min(free);
    if f.is_zero() || price.is_zero() {
        Decimal::ZERO
    } else {
        f * price
    }
}

/// `k` copies of a line.
fn scaled(l: &LineItem, k: Decimal) -> LineItem {
    let mut s = l.clone();
    s.quantity = l.quantity * k;
    s.monthly = l.monthly * k;
    if k != Decimal::ONE {
        s.description = format!("{} × {}", k.round_dp(4).normalize(), l.description);
    }
    s
}

/// Builds resources for units.
struct Build<'a> {
    org: &'a str,
}

impl Build<'_> {
    fn app(&self, owner: &Owner<'_>, name: &str, shared: bool, usage: Usage) -> Resource {
        Resource {
            address: Address::app(owner),
            tenant: tenant_of(owner),
            app: name.to_string(),
            prevent_destroy: false,
            id: None,
            usage: Some(usage.into()),
            spec: Spec::App(Box::new(AppSpec {
                name: name.to_string(),
                org: self.org.to_string(),
                shared,
            })),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn machine(
        &self,
        owner: &Owner<'_>,
        app: &str,
        index: u32,
        region: &str,
        c: &Candidate,
        idle: IdlePolicy,
        usage: Usage,
        role: &str,
    ) -> Resource {
        Resource {
            address: Address::machine(owner, index),
            tenant: tenant_of(owner),
            app: app.to_string(),
            prevent_destroy: false,
            id: None,
            usage: Some(usage.into()),
            spec: Spec::Machine(Box::new(MachineSpec {
                name: format!("{role}-{index}"),
                region: region.to_string(),
                fallback_regions: Vec::new(),
                image: "whatif".into(),
                size: c.preset.to_string(),
                guest: Guest {
                    cpu_kind: c.cpu_kind,
                    cpus: c.cpus,
                    memory_mb: c.memory_mb,
                },
                env: crate::resource::StrMap::default(),
                services: None,
                checks: None,
                metadata: crate::resource::StrMap::default(),
                mounts: Vec::new(),
                idle,
                restart: None,
                config: Default::default(),
                secrets: Vec::new(),
                role: role.to_string(),
                index,
                run: Default::default(),
            })),
        }
    }

    /// A volume and, with automatic snapshots, its backup policy.
    #[allow(clippy::too_many_arguments)]
    fn volume(
        &self,
        owner: &Owner<'_>,
        app: &str,
        name: &str,
        index: u32,
        region: &str,
        size_gb: u32,
        retention: u32,
        auto_backup: bool,
        usage: Usage,
    ) -> Vec<Resource> {
        let address = Address::volume(owner, name, index);
        let mut v = vec![Resource {
            address: address.clone(),
            tenant: tenant_of(owner),
            app: app.to_string(),
            prevent_destroy: false,
            id: None,
            usage: Some(usage.into()),
            spec: Spec::Volume(Box::new(VolumeSpec {
                name: name.to_string(),
                region: region.to_string(),
                fallback_regions: Vec::new(),
                size_gb,
                encrypted: true,
                machine: None,
                attached_machine_id: None,
                aliases: Vec::new(),
                restore_from: None,
            })),
        }];
        v.push(Resource {
            address: Address::backup(owner, name, index),
            tenant: tenant_of(owner),
            app: app.to_string(),
            prevent_destroy: false,
            id: None,
            usage: None,
            spec: Spec::BackupPolicy(Box::new(BackupSpec {
                volume: address,
                snapshot_retention: retention,
                auto_backup,
                snapshot_before_destroy: false,
            })),
        });
        v
    }
}

fn tenant_of(owner: &Owner<'_>) -> Option<String> {
    match owner {
        Owner::Tenant(t) => Some(t.to_string()),
        Owner::SharedApp(_) => None,
    }
}

/// Prices a set of resources once: their lines (no organization allowances), totals and
/// what reservation blocks could cover.
pub fn price_unit(
    table: &PriceTable,
    label: String,
    resources: Vec<Resource>,
) -> Result<Unit, CostError> {
    let set = ResourceSet::new(resources);
    let fallback = Usage::default();
    let pricer = Pricer::new(table, &set, &fallback);
    let mut lines = Vec::new();
    let mut reservable: Vec<((String, CpuKind), Usd)> = Vec::new();
    let (mut machines, mut always_on) = (Decimal::ZERO, Decimal::ZERO);
    for r in set.iter() {
        let rc = pricer.price(r)?;
        if let Some(m) = r.machine() {
            machines += Decimal::ONE;
            // The engine's rule: idle off, or an index below min_running, runs all month.
            if m.idle.mode == IdleMode::Off || m.index < m.idle.min_running {
                always_on += Decimal::ONE;
                for l in rc.lines.iter().filter(|l| l.item.is_reservable()) {
                    if let (Some(region), Some(kind)) = (&l.region, l.cpu_kind) {
                        match reservable
                            .iter_mut()
                            .find(|(k, _)| k.0 == *region && k.1 == kind)
                        {
                            Some((_, v)) => *v += l.monthly,
                            None => reservable.push(((region.clone(), kind), l.monthly)),
                        }
                    }
                }
            }
        }
        lines.extend(rc.lines);
    }
    let mut unit = Unit {
        label,
        lines,
        total: Decimal::ZERO,
        snapshot_gb: Decimal::ZERO,
        coverable: Coverable::default(),
        certificates: Decimal::ZERO,
        reservable,
        machines,
        always_on,
    };
    unit.keep_lines(|_| true);
    Ok(unit)
}

impl Unit {
    /// Keeps the lines `keep` accepts and recomputes what is derived from them (total,
    /// snapshot GB, certificates, what the plan's allowances could cover).
    fn keep_lines(&mut self, keep: impl Fn(&LineItem) -> bool) {
        self.lines.retain(|l| keep(l));
        let sum = |item: Item| -> Decimal {
            self.lines
                .iter()
                .filter(|l| l.item == item)
                .map(|l| l.quantity)
                .sum()
        };
        self.total = self.lines.iter().map(|l| l.monthly).sum();
        self.snapshot_gb = sum(Item::Snapshot);
        self.certificates = sum(Item::Certificate);
        self.coverable = Coverable::of_lines(&self.lines);
    }
}

/// Every size with its always-on monthly price, cheapest first.
type RankedSizes = Rc<Vec<(Candidate, Usd)>>;

/// Caches shared by the models of one run: the always-on price of every size in a region
/// (to rank sizes), and the shared tier of the base spec.
pub struct Context<'a> {
    pub scenario: &'a Scenario,
    pub tables: &'a [&'a PriceTable],
    sizes: RefCell<HashMap<(usize, String), RankedSizes>>,
}

impl<'a> Context<'a> {
    pub fn new(scenario: &'a Scenario, tables: &'a [&'a PriceTable]) -> Self {
        Context {
            scenario,
            tables,
            sizes: RefCell::new(HashMap::new()),
        }
    }

    /// Every size of the price table in `region`, with its always-on monthly price (compute
    /// and RAM, engine-priced), cheapest first.
    fn ranked_sizes(&self, table: usize, region: &str) -> Result<RankedSizes, CostError> {
        let key = (table, region.to_string());
        if let Some(v) = self.sizes.borrow().get(&key) {
            return Ok(v.clone());
        }
        let t = self.tables[table];
        let b = Build { org: "whatif" };
        let owner = Owner::SharedApp("sizes");
        let mut v = Vec::new();
        for c in platform_candidates(&[], None, IdleMode::Off) {
            if t.preset(c.preset).is_err() {
                continue;
            }
            let m = b.machine(
                &owner,
                "sizes",
                0,
                region,
                &c,
                IdlePolicy::default(),
                Usage::default(),
                "size",
            );
            let rc =
                crate::cost::price_resource(t, &m, &ResourceSet::default(), &Usage::default())?;
            v.push((c, rc.monthly));
        }
        v.sort_by(|a, b| {
            a.1.cmp(&b.1)
                .then(a.0.memory_mb.cmp(&b.0.memory_mb))
                .then(a.0.cpus.cmp(&b.0.cpus))
        });
        let v = Rc::new(v);
        self.sizes.borrow_mut().insert(key, v.clone());
        Ok(v)
    }

    /// Builds the model of architecture `arch` at `point`.
    pub fn model(&self, arch: usize, point: Point) -> Result<ArchModel<'a>, CostError> {
        let m = ModelBuild::new(self, arch, point);
        let mut parts = Parts::default();
        for (region, w) in &m.mix().parts {
            m.region_units(region, *w, &mut parts)?;
        }
        m.shared_units(&mut parts)?;
        Ok(m.finish(parts))
    }

    /// The cheapest size that holds one tenant (per-tenant Machines with `size: auto`).
    fn auto_size(
        &self,
        table: usize,
        region: &str,
        a: &Architecture,
    ) -> Result<Candidate, CostError> {
        let s = self.scenario;
        let none = || CostError {
            address: Address::whatif(&a.name),
            message: "no Machine size in the price table holds one tenant".into(),
            hint: "check the memory model and the allowed sizes".into(),
        };
        let m = s.memory.as_ref().ok_or_else(none)?;
        let sizes = self.ranked_sizes(table, region)?;
        sizes
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| {
                allowed(
                    c,
                    &a.profile
                        .sizing
                        .preset
                        .clone()
                        .into_iter()
                        .collect::<Vec<_>>(),
                    a.profile.sizing.memory_mb,
                    a.idle,
                )
            })
            .find(|c| m.tenants_per_machine(c, Placement::Pinned, Decimal::ONE, 0) >= 1)
            .ok_or_else(none)
    }

    fn pool(
        &self,
        point: Point,
        a: &Architecture,
        m: &MemoryModel,
        region: &str,
        w: Decimal,
    ) -> Result<PoolRegion, CostError> {
        let placement = a.pool.placement;
        let front = self.pool_front(point, a, m, region)?;
        Ok(PoolRegion {
            region: region.to_string(),
            load: match placement {
                Placement::Pinned => w,
                Placement::Session => w * point.fraction,
            },
            min: a.pool.min_machines,
            max: a.pool.max_machines,
            front: self.pool_choices(point, a, region, front)?,
            placement,
        })
    }

    /// The sizes worth considering for a pool, cheapest first: a size is kept only if it
    /// holds more tenants than every cheaper one.
    fn pool_front(
        &self,
        point: Point,
        a: &Architecture,
        m: &MemoryModel,
        region: &str,
    ) -> Result<Vec<(Candidate, u64)>, CostError> {
        let placement = a.pool.placement;
        let volume = if placement == Placement::Pinned {
            a.profile.volume_gb
        } else {
            0
        };
        let sizes = self.ranked_sizes(point.table, region)?;
        let mut front: Vec<(Candidate, u64)> = Vec::new();
        let mut most = 0;
        for (c, _) in sizes.iter() {
            if !allowed(c, &a.pool.sizes, None, a.idle) {
                continue;
            }
            let t = m.tenants_per_machine(c, placement, point.fraction, volume);
            if t > most {
                most = t;
                front.push((*c, t));
            }
        }
        Ok(front)
    }

    /// Each size of the front priced as a Machine kept running (index 0) and as one
    /// started only in the active window (index `min_machines`).
    fn pool_choices(
        &self,
        point: Point,
        a: &Architecture,
        region: &str,
        front: Vec<(Candidate, u64)>,
    ) -> Result<Vec<PoolChoice>, CostError> {
        let table = self.tables[point.table];
        let b = Build { org: "whatif" };
        let owner = Owner::SharedApp("pool");
        let min = u32::try_from(a.pool.min_machines).unwrap_or(u32::MAX);
        let usage = Usage {
            active_hours_per_day: point.hours,
            rootfs_gb: a.profile.usage.rootfs_gb,
            ..Usage::default()
        };
        let idle = IdlePolicy {
            mode: a.idle,
            autostart: true,
            min_running: min,
        };
        let machine = |c: &Candidate, index: u32| {
            b.machine(
                &owner,
                "pool",
                index,
                region,
                c,
                idle.clone(),
                usage.clone(),
                "pool",
            )
        };
        let mut choices = Vec::new();
        for (c, t) in front {
            let on = machine(&c, 0);
            let win = machine(&c, min);
            choices.push(PoolChoice {
                cand: c,
                tenants_per_machine: t,
                on: Rc::new(price_unit(
                    table,
                    format!("pool Machine kept running in {region}"),
                    vec![on],
                )?),
                window: Rc::new(price_unit(
                    table,
                    format!("pool Machine in {region}"),
                    vec![win],
                )?),
            });
        }
        Ok(choices)
    }
}

/// The app every tenant shares in the architectures that are not an app per tenant.
const SHARED_APP: &str = "shared";

/// The units, pools and automatic size of one model, collected phase by phase.
#[derive(Default)]
struct Parts {
    units: Vec<(Rc<Unit>, Count)>,
    pools: Vec<PoolRegion>,
    auto_size: Option<Candidate>,
}

impl Parts {
    fn push(&mut self, unit: Unit, count: Count) {
        self.units.push((Rc::new(unit), count));
    }
}

/// What one model is built from: an architecture at a usage point, its price table and
/// the usages of its tenants' apps, volumes and Machines.
struct ModelBuild<'c, 'a> {
    ctx: &'c Context<'a>,
    arch: usize,
    a: &'a Architecture,
    point: Point,
    table: &'a PriceTable,
    b: Build<'static>,
    tenant: Owner<'static>,
    app_usage: Usage,
    vol_usage: Usage,
    idle: IdlePolicy,
}

impl<'c, 'a> ModelBuild<'c, 'a> {
    fn new(ctx: &'c Context<'a>, arch: usize, point: Point) -> Self {
        let a = &ctx.scenario.architectures[arch];
        let p = &a.profile;
        ModelBuild {
            ctx,
            arch,
            a,
            point,
            table: ctx.tables[point.table],
            b: Build { org: "whatif" },
            tenant: Owner::Tenant("each"),
            app_usage: Usage {
                certificates: p.usage.certificates,
                dedicated_ipv4: p.usage.dedicated_ipv4,
                wildcard_certificates: p.usage.wildcard_certificates,
                ..Usage::default()
            },
            vol_usage: Usage {
                volume_used_gb: p.usage.volume_used_gb,
                snapshot_daily_change: p.usage.snapshot_daily_change,
                ..Usage::default()
            },
            idle: IdlePolicy {
                mode: a.idle,
                autostart: true,
                min_running: 0,
            },
        }
    }

    fn mix(&self) -> &'a RegionMix {
        &self.ctx.scenario.sweep.regions[self.point.region]
    }

    fn error(&self, message: String, hint: &str) -> CostError {
        CostError {
            address: Address::whatif(&self.a.name),
            message,
            hint: hint.into(),
        }
    }

    /// A tenant's Machine's usage at `hours` started hours per day.
    fn machine_usage(&self, hours: Decimal) -> Usage {
        Usage {
            active_hours_per_day: hours,
            rootfs_gb: self.a.profile.usage.rootfs_gb,
            egress_gb_month: Decimal::ZERO,
            private_egress_gb_month: Decimal::ZERO,
            ..Usage::default()
        }
    }

    /// The app a tenant's resources live in.
    fn tenant_app(&self) -> &'static str {
        if self.a.kind == ArchKind::AppPerTenant {
            "tenant"
        } else {
            SHARED_APP
        }
    }

    /// A tenant's volume and backup policy in `region` (none without a volume).
    fn storage(&self, region: &str) -> Vec<Resource> {
        let p = &self.a.profile;
        if p.volume_gb == 0 {
            return Vec::new();
        }
        self.b.volume(
            &self.tenant,
            self.tenant_app(),
            "data",
            0,
            region,
            p.volume_gb,
            p.snapshot_retention,
            p.auto_backup,
            self.vol_usage.clone(),
        )
    }

    /// A tenant's Machine size: the declared one, else the cheapest that holds a tenant.
    fn size(&self, region: &str) -> Result<Candidate, CostError> {
        let sizing = &self.a.profile.sizing;
        if let (Some(preset), Some(mb)) = (&sizing.preset, sizing.memory_mb)
            && let Some(pr) = crate::platform::preset(preset)
        {
            return Ok(Candidate {
                preset: pr.name,
                cpu_kind: pr.cpu_kind,
                cpus: pr.cpus,
                memory_mb: mb,
            });
        }
        self.ctx.auto_size(self.point.table, region, self.a)
    }

    /// The size of per-tenant or session Machines, remembered when chosen automatically.
    fn sized(&self, region: &str, parts: &mut Parts) -> Result<Candidate, CostError> {
        let c = self.size(region)?;
        if !self.a.profile.sizing.is_fixed() {
            parts.auto_size = Some(c);
        }
        Ok(c)
    }

    /// The units of the tenants in `region` (weight `w`), then their egress.
    fn region_units(&self, region: &str, w: Decimal, parts: &mut Parts) -> Result<(), CostError> {
        match self.a.kind {
            ArchKind::AppPerTenant | ArchKind::MachinePerTenant => {
                self.per_tenant_units(region, w, parts)?
            }
            ArchKind::Hybrid => self.hybrid_units(region, w, parts)?,
            ArchKind::SharedPool => self.pool_units(region, w, parts)?,
        }
        self.egress_unit(region, w, parts)
    }

    /// One unit per tenant: its app (app per tenant), Machine and storage.
    fn per_tenant_units(
        &self,
        region: &str,
        w: Decimal,
        parts: &mut Parts,
    ) -> Result<(), CostError> {
        let c = self.sized(region, parts)?;
        let tenant_app = self.tenant_app();
        let mut res = Vec::new();
        if self.a.kind == ArchKind::AppPerTenant {
            res.push(
                self.b
                    .app(&self.tenant, tenant_app, false, self.app_usage.clone()),
            );
        }
        res.push(self.b.machine(
            &self.tenant,
            tenant_app,
            0,
            region,
            &c,
            self.idle.clone(),
            self.machine_usage(self.point.fraction * self.point.hours),
            "tenant",
        ));
        res.extend(self.storage(region));
        let u = price_unit(self.table, format!("tenant in {region}"), res)?;
        parts.push(u, Count::Tenants(w));
        Ok(())
    }

    /// A volume per tenant and a session Machine per active tenant.
    fn hybrid_units(&self, region: &str, w: Decimal, parts: &mut Parts) -> Result<(), CostError> {
        let c = self.sized(region, parts)?;
        let st = self.storage(region);
        if !st.is_empty() {
            let u = price_unit(self.table, format!("tenant volume in {region}"), st)?;
            parts.push(u, Count::Tenants(w));
        }
        let m = self.b.machine(
            &self.tenant,
            SHARED_APP,
            0,
            region,
            &c,
            self.idle.clone(),
            self.machine_usage(self.point.hours),
            "session",
        );
        let u = price_unit(self.table, format!("session Machine in {region}"), vec![m])?;
        parts.push(u, Count::ActiveCeil(w * self.point.fraction));
        Ok(())
    }

    /// Pinned tenants' data on pool volumes, and the pool of Machines in `region`.
    fn pool_units(&self, region: &str, w: Decimal, parts: &mut Parts) -> Result<(), CostError> {
        let memory = self.ctx.scenario.memory.as_ref().ok_or_else(|| {
            self.error(
                "a shared pool needs a memory model".into(),
                "add base.memory_model",
            )
        })?;
        if self.a.pool.placement == Placement::Pinned {
            let st = self.storage(region);
            if !st.is_empty() {
                let what = format!("tenant data on pool volumes in {region}");
                parts.push(price_unit(self.table, what, st)?, Count::Tenants(w));
            }
        }
        let pool = self.ctx.pool(self.point, self.a, memory, region, w)?;
        parts.pools.push(pool);
        Ok(())
    }

    /// Egress of the active tenants, priced by the region's bandwidth group.
    fn egress_unit(&self, region: &str, w: Decimal, parts: &mut Parts) -> Result<(), CostError> {
        let usage = &self.a.profile.usage;
        if usage.egress_gb_month <= Decimal::ZERO && usage.private_egress_gb_month <= Decimal::ZERO
        {
            return Ok(());
        }
        let sizes = self.ctx.ranked_sizes(self.point.table, region)?;
        let probe_size = sizes.first().map(|x| x.0).ok_or_else(|| {
            self.error(
                format!("pricing {} has no Machine sizes", self.table.version()),
                "use a price table with compute.csv rows",
            )
        })?;
        let probe = self.b.machine(
            &self.tenant,
            self.tenant_app(),
            0,
            region,
            &probe_size,
            IdlePolicy::default(),
            Usage {
                egress_gb_month: usage.egress_gb_month,
                private_egress_gb_month: usage.private_egress_gb_month,
                ..Usage::default()
            },
            "egress",
        );
        let what = format!("egress of an active tenant in {region}");
        let mut u = price_unit(self.table, what, vec![probe])?;
        u.keep_lines(|l| matches!(l.item, Item::Egress | Item::PrivateEgress));
        u.reservable.clear();
        u.machines = Decimal::ZERO;
        u.always_on = Decimal::ZERO;
        parts.push(u, Count::Active(w * self.point.fraction));
        Ok(())
    }

    /// The shared app (its certificates and IPv4, once) and the shared tier.
    fn shared_units(&self, parts: &mut Parts) -> Result<(), CostError> {
        if self.a.kind != ArchKind::AppPerTenant {
            let owner = Owner::SharedApp(SHARED_APP);
            let app = self.b.app(&owner, SHARED_APP, true, self.app_usage.clone());
            let u = price_unit(self.table, "shared app".into(), vec![app])?;
            if !u.lines.is_empty() {
                parts.push(u, Count::Fixed(Decimal::ONE));
            }
        }
        let tier: Vec<Resource> = match &self.a.shared {
            SharedTier::Spec => self.ctx.scenario.spec_shared.clone(),
            SharedTier::Declared(list) => self.declared_tier(list),
        };
        if !tier.is_empty() {
            let u = price_unit(self.table, "shared tier".into(), tier)?;
            parts.push(u, Count::Fixed(Decimal::ONE));
        }
        Ok(())
    }

    /// The resources of a shared tier declared in the scenario: one app holding their
    /// certificates and IPv4, then each Machine (and its volume) `count` times.
    fn declared_tier(&self, list: &[SharedMachine]) -> Vec<Resource> {
        let mut res = Vec::new();
        let owner = Owner::SharedApp("tier");
        if !list.is_empty() {
            let usage = Usage {
                certificates: list.iter().map(|m| m.certificates).sum(),
                dedicated_ipv4: list.iter().map(|m| m.dedicated_ipv4).sum(),
                ..Usage::default()
            };
            res.push(self.b.app(&owner, "tier", true, usage));
        }
        let mut index = 0;
        for sm in list {
            let Some(pr) = crate::platform::preset(&sm.preset) else {
                continue;
            };
            let c = Candidate {
                preset: pr.name,
                cpu_kind: pr.cpu_kind,
                cpus: pr.cpus,
                memory_mb: sm.memory_mb,
            };
            let region = sm.region.as_deref().unwrap_or(self.mix().primary());
            for _ in 0..sm.count {
                res.extend(self.tier_machine(&owner, sm, &c, region, index));
                index += 1;
            }
        }
        res
    }

    /// One Machine of a declared shared tier, with its volume when it has one.
    fn tier_machine(
        &self,
        owner: &Owner<'_>,
        sm: &SharedMachine,
        c: &Candidate,
        region: &str,
        index: u32,
    ) -> Vec<Resource> {
        let usage = Usage {
            egress_gb_month: sm.egress_gb_month,
            rootfs_gb: self.a.profile.usage.rootfs_gb,
            ..Usage::default()
        };
        let mut res = vec![self.b.machine(
            owner,
            "tier",
            index,
            region,
            c,
            IdlePolicy::default(),
            usage,
            &sm.name,
        )];
        if sm.volume_gb > 0 {
            res.extend(self.b.volume(
                owner,
                "tier",
                &format!("{}_data", sm.name.replace('-', "_")),
                index,
                region,
                sm.volume_gb,
                crate::platform::SNAPSHOT_RETENTION_DEFAULT,
                true,
                Usage::default(),
            ));
        }
        res
    }

    /// The model from its parts, with the extras and the organization's allowances.
    fn finish(&self, parts: Parts) -> ArchModel<'a> {
        let st = &self.table.storage.snapshot;
        let ct = &self.table.network.certificate;
        ArchModel {
            arch: self.arch,
            units: parts.units,
            pools: parts.pools,
            auto_size: parts.auto_size,
            extras_fixed: self.a.extras.iter().map(|e| e.monthly_usd).sum(),
            extras_per_tenant: self.a.extras.iter().map(|e| e.per_tenant_usd).sum(),
            snapshot: (st.price, st.free_per_org),
            certificate: (ct.price, ct.free_per_org),
            plan: crate::cost::plan_applies(self.table, self.ctx.scenario.org_plan)
                .then_some((self.table, self.ctx.scenario.org_plan)),
        }
    }
}

/// Whether a size may be used: among `presets` (empty: any), of `memory` (none: any), and
/// at most 2 GB when the Machine suspends.
fn allowed(c: &Candidate, presets: &[String], memory: Option<u32>, idle: IdleMode) -> bool {
    (presets.is_empty() || presets.iter().any(|p| p == c.preset))
        && memory.is_none_or(|m| m == c.memory_mb)
        && !(idle == IdleMode::Suspend && c.memory_mb > crate::platform::SUSPEND_MAX_MEMORY_MB)
}
