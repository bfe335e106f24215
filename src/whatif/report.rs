//! Runs a scenario: the sweep's rows, break-even points, reservation advice, the
//! sensitivity of the winner to active hours, pool fit tables and dense cost curves for
//! the charts. Pure: the price tables come in, a [`Report`] goes out.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::cost::{CostError, ReservationPlan, cheapest_reservation};
use crate::diag::{Diagnostic, Diagnostics, Mark};
use crate::money::Usd;
use crate::pricing::{Catalog, PriceTable};

use super::breakeven;
use super::capacity::{Candidate, fmt_mb};
use super::model::{ArchModel, Context, Point, Priced};
use super::scenario::{ArchKind, MAX_ROWS, Placement, Scenario};

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--pricing-date`: replaces the scenario's pricing dates.
    pub pricing_date: Option<NaiveDate>,
    /// The date used when neither the scenario nor the options name one.
    pub today: NaiveDate,
    /// Allow sweeps of more than [`MAX_ROWS`] rows.
    pub force: bool,
}

/// Evaluations of one architecture's model per crossing search (pairs share a cache).
const SEARCH_BUDGET: usize = 4_000;
/// Crossings kept per pair and usage point.
const MAX_CROSSINGS: usize = 50;
/// Points per dense cost curve.
const CURVE_POINTS: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchInfo {
    pub name: String,
    pub kind: ArchKind,
    pub idle: &'static str,
    /// What the architecture is made of, in a sentence.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointInfo {
    pub fraction: Decimal,
    pub hours: Decimal,
    pub regions: String,
    pub pricing_version: NaiveDate,
    pub label: String,
}

/// Monthly cost by what it pays for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breakdown {
    /// Started hours: preset and additional RAM.
    pub compute: Usd,
    pub rootfs: Usd,
    pub volumes: Usd,
    /// Snapshot storage net of the organization's free GB.
    pub snapshots: Usd,
    pub egress: Usd,
    /// Dedicated IPv4 and certificates, net of the free certificates.
    pub network: Usd,
    /// The scenario's extras (outside Fly's tables).
    pub other: Usd,
    /// The organization's plan: its fee less the usage it includes (its free allowances
    /// are taken off compute, volumes and egress).
    pub plan: Usd,
}

impl Breakdown {
    pub const NAMES: [&'static str; 8] = [
        "compute",
        "rootfs",
        "volumes",
        "snapshots",
        "egress",
        "network",
        "other",
        "plan",
    ];
    /// The index of `plan` in [`Breakdown::NAMES`].
    pub const PLAN: usize = 7;

    pub fn values(&self) -> [Usd; 8] {
        [
            self.compute,
            self.rootfs,
            self.volumes,
            self.snapshots,
            self.egress,
            self.network,
            self.other,
            self.plan,
        ]
    }

    /// The columns a table of these rows shows: every one but `plan`, which only when
    /// the organization's plan adds a fee or included usage to some row.
    pub fn shown<'b>(rows: impl IntoIterator<Item = &'b Breakdown>) -> Vec<usize> {
        let with_plan = rows.into_iter().any(|b| !b.plan.is_zero());
        (0..Breakdown::NAMES.len())
            .filter(|i| *i != Breakdown::PLAN || with_plan)
            .collect()
    }
}

/// A pool's sizing at one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRow {
    pub region: String,
    pub size: String,
    pub tenants_per_machine: u64,
    pub machines: u64,
    pub min_machines: u64,
    pub cost: Usd,
    pub runner_up: Option<RunnerUp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerUp {
    pub size: String,
    pub tenants_per_machine: u64,
    pub machines: u64,
    pub cost: Usd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub point: usize,
    pub arch: usize,
    pub tenants: u64,
    pub monthly: Usd,
    pub per_tenant: Usd,
    pub machines: Decimal,
    pub always_on: Decimal,
    pub breakdown: Breakdown,
    pub pools: Vec<PoolRow>,
    /// Compute and RAM of always-on Machines (what reservation blocks can cover).
    pub always_on_compute: Usd,
    /// Monthly saving of the cheapest reservation blocks for that spend.
    pub reservation_savings: Usd,
    /// The per-tenant Machine chosen by the capacity model.
    pub auto_size: Option<String>,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakEven {
    pub point: usize,
    pub a: usize,
    pub b: usize,
    pub tenants: u64,
    /// The cheaper architecture just below and from `tenants` on (`None`: equal cost).
    pub cheaper_before: Option<usize>,
    pub cheaper_from: Option<usize>,
    pub cost_a: Usd,
    pub cost_b: Usd,
}

/// A pair whose crossings could not all be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakEvenNote {
    pub point: usize,
    pub a: usize,
    pub b: usize,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationAdvice {
    pub arch: usize,
    pub tenants: u64,
    pub always_on_compute: Usd,
    pub plans: Vec<ReservationPlan>,
    pub savings: Usd,
    pub monthly: Usd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sensitivity {
    pub tenants: u64,
    pub point: usize,
    pub hours: Vec<Decimal>,
    /// `costs[i][a]`: architecture `a` at `hours[i]`.
    pub costs: Vec<Vec<Usd>>,
    pub winners: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitRow {
    pub size: String,
    pub always_on_monthly: Usd,
    pub usable_mb: Decimal,
    pub tenants_per_machine: u64,
    /// Concurrent agents with that many tenants at the focus active fraction.
    pub agents: Decimal,
    /// Tenants resident for `agents_that_fit`: the breakdown scale, at most a Machine's.
    pub resident: u64,
    /// Concurrent agents that fit beside `resident` tenants.
    pub agents_that_fit: u64,
}

/// How many tenants and agents fit on each size a pool considers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitTable {
    pub arch: usize,
    pub region: String,
    pub fraction: Decimal,
    pub placement: Placement,
    pub rows: Vec<FitRow>,
    /// Per-Machine limits that ruled sizes out.
    pub notes: Vec<String>,
}

/// Dense samples of one architecture's cost at the focus point, for the charts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Curve {
    pub arch: usize,
    pub points: Vec<(u64, Usd)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub scenario: String,
    pub file: String,
    pub description: String,
    pub base_spec: Option<String>,
    pub architectures: Vec<ArchInfo>,
    pub points: Vec<PointInfo>,
    pub tenants: Vec<u64>,
    pub rows: Vec<Row>,
    pub break_even: Vec<BreakEven>,
    pub break_even_notes: Vec<BreakEvenNote>,
    pub reservations: Vec<ReservationAdvice>,
    pub sensitivity: Sensitivity,
    pub fits: Vec<FitTable>,
    pub curves: Vec<Curve>,
    /// Rows of the focus point at `breakdown_tenants`, by architecture.
    pub breakdown: Vec<(usize, Breakdown, Usd)>,
    pub focus: usize,
    pub breakdown_tenants: u64,
    pub pricing: Vec<(NaiveDate, String)>,
    pub warnings: Vec<String>,
    /// The organization's plan at the breakdown's point, when it has a fee, included usage
    /// or free allowances there.
    pub org_plan: Option<crate::cost::PlanNote>,
}

impl Report {
    /// Rows of one usage point and architecture, by tenants.
    pub fn series(&self, point: usize, arch: usize) -> impl Iterator<Item = &Row> {
        self.rows
            .iter()
            .filter(move |r| r.point == point && r.arch == arch)
    }
}

/// The price tables of the run: the `--pricing-date`, else the scenario's dates, else
/// today; one per distinct version.
fn tables<'a>(
    s: &Scenario,
    catalog: &'a Catalog,
    opts: &RunOptions,
) -> Result<Vec<&'a PriceTable>, Diagnostics> {
    let dates: Vec<(NaiveDate, Option<Mark>)> = match opts.pricing_date {
        Some(d) => vec![(d, None)],
        None if !s.sweep.pricing_date.is_empty() => s
            .sweep
            .pricing_date
            .iter()
            .zip(&s.sweep.pricing_date_marks)
            .map(|(d, m)| (*d, Some(*m)))
            .collect(),
        None => vec![(opts.today, None)],
    };
    let mut out: Vec<&PriceTable> = Vec::new();
    let mut diags = Diagnostics::new();
    for (date, mark) in dates {
        match catalog.at(date) {
            Ok(t) => {
                if let Some(e) = crate::cost::plan_problem(t, s.org_plan) {
                    let mut d = e.to_diagnostic().file(s.file.clone()).at(s.org_plan_mark);
                    d = d.path("org_plan");
                    diags.push(d);
                }
                if !out.iter().any(|x| x.version() == t.version()) {
                    out.push(t);
                }
            }
            Err(e) => {
                let mut d = e.to_diagnostic();
                if let Some(m) = mark {
                    d = d.file(s.file.clone()).at(m).path("sweep.pricing_date");
                }
                diags.push(d);
            }
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// A memo of one model's costs (shared by the pairs it takes part in), to the
/// micro-dollar: two architectures whose costs differ by less (the same fleet reached by
/// different arithmetic) cost the same. Rounding keeps costs non-decreasing in `N`.
struct Memo<'m> {
    model: &'m ArchModel<'m>,
    seen: RefCell<HashMap<u64, Usd>>,
}

impl Memo<'_> {
    fn cost(&self, n: u64) -> Usd {
        if let Some(v) = self.seen.borrow().get(&n) {
            return *v;
        }
        let v = self.model.cost(n).round_dp(6);
        self.seen.borrow_mut().insert(n, v);
        v
    }
}

/// A fraction as a percentage, e.g. `0.125` as `12.5%`.
pub(super) fn pct(v: Decimal) -> String {
    format!("{}%", (v * Decimal::from(100)).round_dp(2).normalize())
}

fn point_label(fraction: Decimal, hours: Decimal, regions: &str, version: NaiveDate) -> String {
    format!(
        "{} active, {} h/day, {regions}, fly/{version}",
        pct(fraction),
        hours.normalize()
    )
}

/// Runs the scenario against the catalog.
pub fn run(s: &Scenario, catalog: &Catalog, opts: &RunOptions) -> Result<Report, Diagnostics> {
    let tables = tables(s, catalog, opts)?;
    let rows_needed = s.row_count(tables.len());
    check_sweep_size(s, rows_needed, tables.len(), opts.force)?;
    let ctx = Context::new(s, &tables);
    let (points, infos) = usage_points(s, &tables);
    let focus = focus_point(s, &points);
    let models = build_models(&ctx, &points)?;
    let (rows, warnings) = sweep_rows(s, &tables, &points, &models, rows_needed);
    let (lo, hi) = (
        s.sweep.tenants.first().copied().unwrap_or(1),
        s.sweep.tenants.last().copied().unwrap_or(1),
    );
    let (break_even, notes) = break_evens(&models, lo, hi);
    let nb = s.report.breakdown_tenants;
    let fp = points[focus];
    let (reservations, breakdown, org_plan) =
        focus_advice(&models[focus], focus, nb, tables[fp.table]);
    let sensitivity = sensitivity(&ctx, &points, &models, focus, nb)?;
    Ok(Report {
        scenario: s.name.clone(),
        file: s.file.clone(),
        description: s.description.clone(),
        base_spec: s.base_spec.clone(),
        architectures: arch_infos(s, &models[focus]),
        points: infos,
        tenants: s.sweep.tenants.clone(),
        rows,
        break_even,
        break_even_notes: notes,
        reservations,
        sensitivity,
        fits: fit_tables(s, &models[focus], fp, nb),
        curves: curves(&models[focus], lo, hi, &s.sweep.tenants),
        breakdown,
        focus,
        breakdown_tenants: nb,
        pricing: tables
            .iter()
            .map(|t| (t.version(), t.origin.clone()))
            .collect(),
        warnings,
        org_plan,
    })
}

/// Refuses sweeps of more than [`MAX_ROWS`] rows unless forced.
fn check_sweep_size(
    s: &Scenario,
    rows_needed: usize,
    n_tables: usize,
    force: bool,
) -> Result<(), Diagnostics> {
    if rows_needed <= MAX_ROWS || force {
        return Ok(());
    }
    Err(Diagnostics::one(
        Diagnostic::error(format!(
            "this sweep makes {rows_needed} rows ({} architectures × {} tenant counts × {} active fractions × {} hour settings × {} region mixes × {n_tables} price tables), more than {MAX_ROWS}",
            s.architectures.len(),
            s.sweep.tenants.len(),
            s.sweep.active_fraction.len(),
            s.sweep.active_hours_per_day.len(),
            s.sweep.regions.len(),
        ))
        .file(s.file.clone())
        .at(s.sweep.mark)
        .path("sweep")
        .hint("pass --force to run it anyway, or narrow the sweep"),
    ))
}

/// A model error names a synthetic resource (`tenant.each.machine[0]`): point at the
/// architecture it was built from.
fn model_error(s: &Scenario, a: usize) -> impl Fn(CostError) -> Diagnostics + '_ {
    move |e: CostError| {
        Diagnostics::one(
            e.to_diagnostic()
                .file(s.file.clone())
                .at(s.architectures[a].mark)
                .path(format!("architectures[{a}]")),
        )
    }
}

/// Usage points: price table, region mix, active fraction, active hours (in that
/// nesting), with their descriptions.
fn usage_points(s: &Scenario, tables: &[&PriceTable]) -> (Vec<Point>, Vec<PointInfo>) {
    let mut points = Vec::new();
    let mut infos = Vec::new();
    for (ti, t) in tables.iter().enumerate() {
        for (ri, mix) in s.sweep.regions.iter().enumerate() {
            for f in &s.sweep.active_fraction {
                for h in &s.sweep.active_hours_per_day {
                    points.push(Point {
                        fraction: *f,
                        hours: *h,
                        region: ri,
                        table: ti,
                    });
                    infos.push(PointInfo {
                        fraction: *f,
                        hours: *h,
                        regions: mix.label.clone(),
                        pricing_version: t.version(),
                        label: point_label(*f, *h, &mix.label, t.version()),
                    });
                }
            }
        }
    }
    (points, infos)
}

/// The point the report focuses on: the scenario's focus fraction and hours in the
/// first region mix and price table, else the first point.
fn focus_point(s: &Scenario, points: &[Point]) -> usize {
    points
        .iter()
        .position(|p| {
            p.fraction == s.report.focus_fraction
                && p.hours == s.report.focus_hours
                && p.region == 0
                && p.table == 0
        })
        .unwrap_or(0)
}

/// Every architecture's model at every point, `[point][arch]`.
fn build_models<'a>(
    ctx: &Context<'a>,
    points: &[Point],
) -> Result<Vec<Vec<ArchModel<'a>>>, Diagnostics> {
    let n_arch = ctx.scenario.architectures.len();
    let mut models = Vec::with_capacity(points.len());
    for p in points {
        let mut v = Vec::with_capacity(n_arch);
        for a in 0..n_arch {
            v.push(ctx.model(a, *p).map_err(model_error(ctx.scenario, a))?);
        }
        models.push(v);
    }
    Ok(models)
}

/// Every row of the sweep, one warning per unpublished price they use, and each price
/// table's notice of newer prices.
fn sweep_rows(
    s: &Scenario,
    tables: &[&PriceTable],
    points: &[Point],
    models: &[Vec<ArchModel>],
    rows_needed: usize,
) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::with_capacity(rows_needed);
    let mut unpublished: BTreeMap<(String, u32), String> = BTreeMap::new();
    for (pi, p) in points.iter().enumerate() {
        let table = tables[p.table];
        for (ai, m) in models[pi].iter().enumerate() {
            for &n in &s.sweep.tenants {
                let priced = m.price(n, table);
                for u in &priced.report.unpublished {
                    let c = &u.citation;
                    unpublished
                        .entry((c.file.clone(), c.line))
                        .or_insert_with(|| c.unpublished_warning(None));
                }
                rows.push(make_row(table, pi, ai, n, m, &priced));
            }
        }
    }
    let mut warnings: Vec<String> = unpublished.into_values().collect();
    for t in tables {
        if let Some(w) = t.staleness_warning()
            && !warnings.contains(&w)
        {
            warnings.push(w);
        }
    }
    (rows, warnings)
}

/// Break-even points between every pair of architectures, at every usage point.
fn break_evens(
    models: &[Vec<ArchModel>],
    lo: u64,
    hi: u64,
) -> (Vec<BreakEven>, Vec<BreakEvenNote>) {
    let mut break_even = Vec::new();
    let mut notes = Vec::new();
    for (pi, ms) in models.iter().enumerate() {
        let memos: Vec<Memo<'_>> = ms
            .iter()
            .map(|m| Memo {
                model: m,
                seen: RefCell::new(HashMap::new()),
            })
            .collect();
        for a in 0..ms.len() {
            for b in a + 1..ms.len() {
                let pair = Pair { point: pi, a, b };
                let found = pair.search(&memos, lo, hi);
                break_even.extend(pair.crossings(&found));
                notes.extend(pair.notes(&found, lo, hi));
            }
        }
    }
    (break_even, notes)
}

/// Two architectures `a < b` compared at usage point `point`.
#[derive(Clone, Copy)]
struct Pair {
    point: usize,
    a: usize,
    b: usize,
}

impl Pair {
    /// The exact crossing search between the pair's costs over `lo..=hi`.
    fn search(self, memos: &[Memo<'_>], lo: u64, hi: u64) -> breakeven::Search {
        let (ma, mb) = (memos[self.a].model, memos[self.b].model);
        let slope = |l: u64| {
            let (alo, ahi) = ma.increments(l);
            let (blo, bhi) = mb.increments(l);
            (alo - bhi, ahi - blo)
        };
        breakeven::crossings(
            |n| memos[self.a].cost(n),
            |n| memos[self.b].cost(n),
            &slope,
            lo,
            hi,
            SEARCH_BUDGET,
        )
    }

    fn winner(self, o: Ordering) -> Option<usize> {
        match o {
            Ordering::Less => Some(self.a),
            Ordering::Greater => Some(self.b),
            Ordering::Equal => None,
        }
    }

    /// The first [`MAX_CROSSINGS`] crossings.
    fn crossings(self, found: &breakeven::Search) -> Vec<BreakEven> {
        found
            .crossings
            .iter()
            .take(MAX_CROSSINGS)
            .map(|c| BreakEven {
                point: self.point,
                a: self.a,
                b: self.b,
                tenants: c.tenants,
                cheaper_before: self.winner(c.before),
                cheaper_from: self.winner(c.after),
                cost_a: c.cost_a,
                cost_b: c.cost_b,
            })
            .collect()
    }

    fn note(self, text: String) -> BreakEvenNote {
        BreakEvenNote {
            point: self.point,
            a: self.a,
            b: self.b,
            text,
        }
    }

    /// What the crossings do not say: crossings left unlisted, equal costs throughout,
    /// or a stretch too close to call.
    fn notes(self, found: &breakeven::Search, lo: u64, hi: u64) -> Vec<BreakEvenNote> {
        let mut notes = Vec::new();
        let total = found.crossings.len();
        if total > MAX_CROSSINGS {
            let last = found.crossings.last().map(|c| c.tenants).unwrap_or(hi);
            notes.push(self.note(format!(
                "the cheaper of the two changes {total} times between {} and {last} tenants (step changes); the first {MAX_CROSSINGS} are listed",
                found.crossings[0].tenants
            )));
        }
        if found.all_equal {
            notes.push(self.note(format!(
                "the two cost the same at every tenant count tried ({} between {lo} and {hi})",
                found.evaluations
            )));
        } else if let (false, Some((l, r))) = (found.complete, found.unresolved) {
            notes.push(self.note(format!(
                "the two cost nearly the same between {l} and {r} tenants: crossings there are not listed"
            )));
        }
        notes
    }
}

/// Reservation advice and the cost breakdown of every architecture at the focus point
/// and `nb` tenants.
/// The focus point's reservation advice and breakdown per architecture, and the
/// organization plan's note.
type FocusAdvice = (
    Vec<ReservationAdvice>,
    Vec<(usize, Breakdown, Usd)>,
    Option<crate::cost::PlanNote>,
);

fn focus_advice(models: &[ArchModel], focus: usize, nb: u64, ftable: &PriceTable) -> FocusAdvice {
    let mut reservations = Vec::new();
    let mut breakdown = Vec::new();
    let mut org_plan = None;
    for (ai, m) in models.iter().enumerate() {
        let priced = m.price(nb, ftable);
        if org_plan.is_none() {
            org_plan = priced.report.plan.clone();
        }
        let row = make_row(ftable, focus, ai, nb, m, &priced);
        let plans: Vec<ReservationPlan> = priced
            .reservable
            .iter()
            .map(|((region, kind), spend)| cheapest_reservation(ftable, region, *kind, *spend))
            .collect();
        reservations.push(ReservationAdvice {
            arch: ai,
            tenants: nb,
            always_on_compute: row.always_on_compute,
            savings: plans.iter().map(|p| p.savings_monthly).sum(),
            plans,
            monthly: row.monthly,
        });
        breakdown.push((ai, row.breakdown, row.monthly));
    }
    (reservations, breakdown, org_plan)
}

/// The cost of every architecture at `nb` tenants for each of the scenario's
/// sensitivity hours (at the focus point otherwise), and the cheapest at each.
fn sensitivity(
    ctx: &Context<'_>,
    points: &[Point],
    models: &[Vec<ArchModel>],
    focus: usize,
    nb: u64,
) -> Result<Sensitivity, Diagnostics> {
    let s = ctx.scenario;
    let n_arch = s.architectures.len();
    let fp = points[focus];
    let mut sens = Sensitivity {
        tenants: nb,
        point: focus,
        hours: s.report.sensitivity_hours.clone(),
        costs: Vec::new(),
        winners: Vec::new(),
    };
    for h in &s.report.sensitivity_hours {
        let p = Point { hours: *h, ..fp };
        let costs: Vec<Usd> = match points.iter().position(|q| *q == p) {
            Some(i) => models[i].iter().map(|m| m.cost(nb)).collect(),
            None => (0..n_arch)
                .map(|a| {
                    ctx.model(a, p)
                        .map(|m| m.cost(nb))
                        .map_err(model_error(s, a))
                })
                .collect::<Result<_, _>>()?,
        };
        let win = (0..n_arch)
            .min_by(|x, y| costs[*x].cmp(&costs[*y]).then(x.cmp(y)))
            .unwrap_or(0);
        sens.costs.push(costs);
        sens.winners.push(win);
    }
    Ok(sens)
}

/// Dense cost curves of every architecture at the focus point, for the charts.
fn curves(models: &[ArchModel], lo: u64, hi: u64, sampled: &[u64]) -> Vec<Curve> {
    models
        .iter()
        .enumerate()
        .map(|(ai, m)| Curve {
            arch: ai,
            points: grid(lo, hi, sampled)
                .into_iter()
                .map(|n| (n, m.cost(n)))
                .collect(),
        })
        .collect()
}

/// Name, kind, idle mode and a one-line summary of every architecture.
fn arch_infos(s: &Scenario, focus_models: &[ArchModel]) -> Vec<ArchInfo> {
    s.architectures
        .iter()
        .enumerate()
        .map(|(i, a)| ArchInfo {
            name: a.name.clone(),
            kind: a.kind,
            idle: a.idle.as_str(),
            summary: summary(s, i, focus_models.get(i).and_then(|m| m.auto_size)),
        })
        .collect()
}

/// Tenant counts for a smooth curve: a geometric grid from `lo` to `hi` plus the sweep's.
fn grid(lo: u64, hi: u64, sampled: &[u64]) -> Vec<u64> {
    let mut v: Vec<u64> = sampled.to_vec();
    if hi > lo {
        let (l, h) = (lo as f64, hi as f64);
        for i in 0..=CURVE_POINTS {
            let x = l * (h / l).powf(i as f64 / CURVE_POINTS as f64);
            v.push((x.round() as u64).clamp(lo, hi));
        }
    }
    v.sort_unstable();
    v.dedup();
    v
}

fn make_row(
    table: &PriceTable,
    point: usize,
    arch: usize,
    n: u64,
    m: &ArchModel,
    priced: &Priced,
) -> Row {
    let (pools, flags) = pool_rows(m, priced);
    let always_on_compute: Usd = priced.reservable.values().sum();
    let savings: Usd = priced
        .reservable
        .iter()
        .map(|((region, kind), spend)| {
            cheapest_reservation(table, region, *kind, *spend).savings_monthly
        })
        .sum();
    Row {
        point,
        arch,
        tenants: n,
        monthly: priced.total,
        per_tenant: priced.total / Decimal::from(n.max(1)),
        machines: priced.machines,
        always_on: priced.always_on,
        breakdown: breakdown_of(priced),
        pools,
        always_on_compute,
        reservation_savings: savings,
        auto_size: m.auto_size.map(|c| c.label()),
        flags,
    }
}

/// The engine's totals by item, grouped into the report's breakdown columns.
fn breakdown_of(priced: &Priced) -> Breakdown {
    let by = |items: &[&str]| -> Usd {
        items
            .iter()
            .filter_map(|i| priced.report.by_item.get(*i))
            .sum()
    };
    Breakdown {
        compute: by(&["compute", "ram", "vm_allowance"]),
        rootfs: by(&["rootfs"]),
        volumes: by(&["volume", "volume_allowance"]),
        snapshots: by(&["snapshot", "snapshot_allowance"]),
        egress: by(&["egress", "private_egress", "egress_allowance"]),
        network: by(&[
            "dedicated_ipv4",
            "certificate",
            "wildcard_certificate",
            "certificate_allowance",
        ]),
        other: priced.extras,
        plan: by(&["usage_credit", "plan_fee"]),
    }
}

/// The size picked in each pool region with its runner-up, and flags for regions no
/// size fits or that need more Machines than allowed.
fn pool_rows(m: &ArchModel, priced: &Priced) -> (Vec<PoolRow>, Vec<String>) {
    let mut flags = Vec::new();
    let mut pools = Vec::new();
    for (p, pick) in m.pools.iter().zip(&priced.picks) {
        let Some(pick) = pick else {
            flags.push(format!("no size holds a tenant in {}", p.region));
            continue;
        };
        let best = &p.front[pick.best];
        if let Some(max) = p.max
            && pick.machines > max
        {
            flags.push(format!(
                "needs {} Machines in {}, above max_machines {max}",
                pick.machines, p.region
            ));
        }
        pools.push(PoolRow {
            region: p.region.clone(),
            size: best.cand.label(),
            tenants_per_machine: best.tenants_per_machine,
            machines: pick.machines,
            min_machines: p.min,
            cost: pick.cost,
            runner_up: pick.runner_up.map(|i| {
                let r = &p.front[i];
                RunnerUp {
                    size: r.cand.label(),
                    tenants_per_machine: r.tenants_per_machine,
                    machines: pick.runner_up_machines,
                    cost: pick.runner_up_cost.unwrap_or_default(),
                }
            }),
        });
    }
    (pools, flags)
}

fn fit_tables(s: &Scenario, models: &[ArchModel], point: Point, nb: u64) -> Vec<FitTable> {
    let Some(mm) = &s.memory else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (ai, m) in models.iter().enumerate() {
        for p in &m.pools {
            // Per preset, the largest memory worth considering; plus every size the pool
            // picks at the sweep's tenant counts.
            let picked: Vec<usize> = s
                .sweep
                .tenants
                .iter()
                .filter_map(|n| p.pick(*n).map(|k| k.best))
                .collect();
            let rows = p
                .front
                .iter()
                .enumerate()
                .filter(|(i, c)| {
                    picked.contains(i)
                        || p.front
                            .get(i + 1)
                            .is_none_or(|next| next.cand.preset != c.cand.preset)
                })
                .map(|(_, c)| {
                    let cand: Candidate = c.cand;
                    let resident = nb.min(c.tenants_per_machine);
                    FitRow {
                        size: cand.label(),
                        always_on_monthly: c.on.total,
                        usable_mb: mm.usable_mb(&cand),
                        tenants_per_machine: c.tenants_per_machine,
                        agents: mm.agents(c.tenants_per_machine, p.placement, point.fraction),
                        resident,
                        agents_that_fit: mm.agents_that_fit(&cand, resident),
                    }
                })
                .collect();
            let a = &s.architectures[ai];
            let mut notes = Vec::new();
            if a.idle == crate::resource::IdleMode::Suspend {
                notes.push(format!(
                    "Fly suspends Machines of at most {} MB: larger sizes are left out (idle `stop` considers them).",
                    crate::platform::SUSPEND_MAX_MEMORY_MB
                ));
            }
            let shared_fits = p
                .front
                .iter()
                .any(|c| c.cand.cpu_kind == crate::platform::CpuKind::Shared);
            if !shared_fits
                && (a.pool.sizes.is_empty() || a.pool.sizes.iter().any(|n| n.starts_with("shared")))
            {
                notes.push("No shared-CPU size holds a tenant: shared CPUs take at most 2 GB per vCPU (16 GB on shared-cpu-8x), so only performance sizes fit.".into());
            }
            if let Some(largest) = p.front.last()
                && largest.tenants_per_machine >= mm.max_tenants_per_machine
            {
                notes.push(format!(
                    "max_tenants_per_machine ({}) caps the larger sizes.",
                    mm.max_tenants_per_machine
                ));
            }
            out.push(FitTable {
                arch: ai,
                region: p.region.clone(),
                fraction: point.fraction,
                placement: p.placement,
                rows,
                notes,
            });
        }
    }
    out
}

/// What an architecture is made of, in a sentence.
fn summary(s: &Scenario, arch: usize, auto: Option<Candidate>) -> String {
    let a = &s.architectures[arch];
    let p = &a.profile;
    let size = match (&p.sizing.preset, p.sizing.memory_mb, auto) {
        (Some(pr), Some(mb), _) => format!("{pr} {}", fmt_mb(mb)),
        (_, _, Some(c)) => format!("{} (auto)", c.label()),
        _ => "auto-sized".into(),
    };
    let vol = if p.volume_gb > 0 {
        format!(", a {} GB volume", p.volume_gb)
    } else {
        String::new()
    };
    let tier = match &a.shared {
        super::scenario::SharedTier::Spec => " plus the base spec's shared apps".to_string(),
        super::scenario::SharedTier::Declared(v) if v.is_empty() => String::new(),
        super::scenario::SharedTier::Declared(v) => format!(
            " plus an always-on shared tier ({})",
            v.iter()
                .map(|m| format!("{} × {} {}", m.count, m.preset, fmt_mb(m.memory_mb)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let extras = if a.extras.is_empty() {
        String::new()
    } else {
        format!(
            "; extras: {}",
            a.extras
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let body = match a.kind {
        ArchKind::AppPerTenant => format!(
            "one app per tenant with one {size} Machine (idle {}){vol}",
            a.idle.as_str()
        ),
        ArchKind::MachinePerTenant => format!(
            "one shared app with one {size} Machine per tenant (idle {}){vol}",
            a.idle.as_str()
        ),
        ArchKind::SharedPool => format!(
            "tenants {} on pool Machines sized by the memory model, {} kept running per region, the rest started in the active window (idle {}){}",
            match a.pool.placement {
                Placement::Pinned => "pinned",
                Placement::Session => "placed per session",
            },
            a.pool.min_machines,
            a.idle.as_str(),
            if a.pool.placement == Placement::Pinned && p.volume_gb > 0 {
                format!(
                    ", {} GB of tenant data each on the pool's volumes",
                    p.volume_gb
                )
            } else {
                String::new()
            }
        ),
        ArchKind::Hybrid => format!(
            "a {size} session Machine for each active tenant (idle {}){vol} for every tenant",
            a.idle.as_str()
        ),
    };
    format!("{body}{tier}{extras}")
}
