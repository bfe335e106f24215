//! What-if reports as text (terminal), JSON (the contract in ARCHITECTURE.md), Markdown
//! and a self-contained HTML page (inline CSS and SVG charts, no scripts). Rendering only:
//! every figure comes computed in the [`Report`]. Text, Markdown and HTML share one list
//! of tables; Markdown and HTML are minijinja templates.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Value, json};

use super::charts;
use super::report::{BreakEven, Breakdown, FitTable, PoolRow, Report, ReservationAdvice, Row, pct};
use crate::money::{Usd, fmt_usd, json_decimal, json_usd};
use crate::pricing::render::{md_table, text_table};

const MD_TEMPLATE: &str = include_str!("templates/report.md");
const HTML_TEMPLATE: &str = include_str!("templates/report.html");
/// Rows of the full table shown in text, Markdown and HTML (JSON has them all).
pub const MAX_LISTED_ROWS: usize = 400;

/// A titled table shared by the text, Markdown and HTML renderings.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub id: &'static str,
    pub title: String,
    pub intro: String,
    pub headers: Vec<String>,
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
    /// The column to emphasise in each row (the cheapest architecture).
    pub strong: Vec<Option<usize>>,
    pub notes: Vec<String>,
}

impl Table {
    fn new(
        id: &'static str,
        title: impl Into<String>,
        headers: Vec<String>,
        right: Vec<bool>,
    ) -> Self {
        Table {
            id,
            title: title.into(),
            intro: String::new(),
            headers,
            right,
            rows: Vec::new(),
            strong: Vec::new(),
            notes: Vec::new(),
        }
    }
    fn push(&mut self, row: Vec<String>, strong: Option<usize>) {
        self.rows.push(row);
        self.strong.push(strong);
    }
}

fn num(v: Decimal) -> String {
    v.round_dp(2).normalize().to_string()
}

fn count(v: Decimal) -> String {
    let r = v.round_dp(1).normalize();
    if r.fract().is_zero() {
        group(r.trunc().to_string())
    } else {
        r.to_string()
    }
}

/// `10,000`.
fn group(digits: String) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    crate::money::write_grouped(&mut out, &digits);
    out
}

fn tenants(n: u64) -> String {
    crate::money::fmt_count(n)
}

/// `$1,234.56`: the one money formatter.
fn usd(v: Usd) -> String {
    fmt_usd(v)
}

/// Per-tenant amounts below a dollar keep a tenth of a cent.
fn usd_small(v: Usd) -> String {
    if v.abs() < Decimal::ONE && !v.is_zero() {
        format!("${}", v.round_dp(3))
    } else {
        usd(v)
    }
}

fn arch_name(r: &Report, i: usize) -> String {
    r.architectures
        .get(i)
        .map(|a| a.name.clone())
        .unwrap_or_default()
}

fn cheapest<'a>(rows: impl Iterator<Item = &'a Row>) -> Option<&'a Row> {
    rows.min_by(|a, b| a.monthly.cmp(&b.monthly).then(a.arch.cmp(&b.arch)))
}

/// The rows of one usage point at one tenant count, by architecture.
fn at(r: &Report, point: usize, n: u64) -> Vec<&Row> {
    let mut v: Vec<&Row> = r
        .rows
        .iter()
        .filter(|x| x.point == point && x.tenants == n)
        .collect();
    v.sort_by_key(|x| x.arch);
    v
}

fn cost_table(r: &Report, point: usize, id: &'static str, title: String) -> Table {
    let mut headers = vec!["tenants".to_string()];
    headers.extend(r.architectures.iter().map(|a| a.name.clone()));
    headers.push("cheapest".into());
    let mut right = vec![true; headers.len()];
    if let Some(last) = right.last_mut() {
        *last = false;
    }
    let mut t = Table::new(id, title, headers, right);
    t.intro = "Monthly cost (per tenant in brackets).".into();
    for &n in &r.tenants {
        let rows = at(r, point, n);
        let win = cheapest(rows.iter().copied());
        let mut cells = vec![tenants(n)];
        cells.extend(
            rows.iter()
                .map(|x| format!("{} ({})", usd(x.monthly), usd_small(x.per_tenant))),
        );
        cells.push(win.map(|w| arch_name(r, w.arch)).unwrap_or_default());
        t.push(cells, win.map(|w| w.arch + 1));
    }
    t
}

/// Every table of the report, in reading order.
pub fn tables(r: &Report) -> Vec<Table> {
    let flabel = point_label(r, r.focus);
    let mut out = vec![cost_table(
        r,
        r.focus,
        "summary",
        format!("Monthly cost at {flabel}"),
    )];
    out.push(break_even_table(r));
    out.push(breakdown_table(r, &flabel));
    out.push(reservations_table(r));
    out.push(sensitivity_table(r));
    out.extend(capacity_table(r, &flabel));
    out.extend(r.fits.iter().map(|ft| fit_table(r, ft)));
    out.extend(other_point_tables(r));
    out.push(all_rows_table(r));
    out
}

/// Owned column headers.
fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The label of usage point `point` (empty when out of range).
fn point_label(r: &Report, point: usize) -> String {
    r.points
        .get(point)
        .map(|p| p.label.clone())
        .unwrap_or_default()
}

/// The winner's name, or `(equal)` for a tie.
fn name_or_tie(r: &Report, w: Option<usize>) -> String {
    w.map(|i| arch_name(r, i))
        .unwrap_or_else(|| "(equal)".into())
}

fn break_even_table(r: &Report) -> Table {
    let mut be = Table::new(
        "break_even",
        "Break-even points",
        strings(&[
            "usage",
            "architectures",
            "tenants",
            "cheaper below",
            "cheaper from",
            "cost at that count",
        ]),
        vec![false, false, true, false, false, false],
    );
    let (lo, hi) = (
        r.tenants.first().copied().unwrap_or(0),
        r.tenants.last().copied().unwrap_or(0),
    );
    be.intro = format!(
        "Tenant counts between {} and {} where the cheaper of two architectures changes, found exactly (integer search over the cost model; see examples/whatif/README.md).",
        tenants(lo),
        tenants(hi)
    );
    break_even_rows(r, &mut be);
    if lo == hi {
        be.intro = "The sweep has one tenant count: list two or more to find break-even points between them.".into();
    } else if r.break_even.is_empty() {
        be.notes
            .push("No architecture overtakes another in this range.".into());
    }
    be.notes.extend(break_even_notes(r));
    be
}

/// One row per crossing; runs of more than three crossings of one pair (steps
/// alternating around a line) collapse into one row: where the alternation starts and
/// ends, and who wins after.
fn break_even_rows(r: &Report, be: &mut Table) {
    let mut i = 0;
    while i < r.break_even.len() {
        let b = &r.break_even[i];
        let run = r.break_even[i..]
            .iter()
            .take_while(|x| x.point == b.point && x.a == b.a && x.b == b.b)
            .count();
        let last = &r.break_even[i + run - 1];
        let usage = point_label(r, b.point);
        let pair = format!("{} vs {}", arch_name(r, b.a), arch_name(r, b.b));
        if run > 3 {
            be.push(
                vec![
                    usage,
                    pair,
                    format!("{}–{}", tenants(b.tenants), tenants(last.tenants)),
                    name_or_tie(r, b.cheaper_before),
                    format!(
                        "{} (after {run} changes)",
                        name_or_tie(r, last.cheaper_from)
                    ),
                    format!("{} vs {}", usd(last.cost_a), usd(last.cost_b)),
                ],
                None,
            );
        } else {
            for b in &r.break_even[i..i + run] {
                be.push(
                    vec![
                        usage.clone(),
                        pair.clone(),
                        tenants(b.tenants),
                        name_or_tie(r, b.cheaper_before),
                        name_or_tie(r, b.cheaper_from),
                        format!("{} vs {}", usd(b.cost_a), usd(b.cost_b)),
                    ],
                    None,
                );
            }
        }
        i += run;
    }
}

fn break_even_notes(r: &Report) -> Vec<String> {
    r.break_even_notes
        .iter()
        .map(|n| {
            format!(
                "{}, {} vs {}: {}.",
                r.points
                    .get(n.point)
                    .map(|p| p.label.as_str())
                    .unwrap_or(""),
                arch_name(r, n.a),
                arch_name(r, n.b),
                n.text
            )
        })
        .collect()
}

/// The cost breakdown at the chosen scale.
fn breakdown_table(r: &Report, flabel: &str) -> Table {
    let shown = Breakdown::shown(r.breakdown.iter().map(|(_, b, _)| b));
    let mut headers = vec!["architecture".to_string()];
    headers.extend(shown.iter().map(|i| Breakdown::NAMES[*i].to_string()));
    headers.push("total".into());
    let mut bd = Table::new(
        "breakdown",
        format!(
            "Cost breakdown at {} tenants ({flabel})",
            tenants(r.breakdown_tenants)
        ),
        headers,
        [false]
            .into_iter()
            .chain(std::iter::repeat_n(true, shown.len() + 1))
            .collect(),
    );
    bd.intro = "compute = started hours of the preset and its additional RAM; rootfs = stopped or suspended Machines' root filesystems; snapshots net of the organization's free GB; network = dedicated IPv4 and certificates; other = the scenario's extras (not Fly prices).".into();
    if shown.contains(&Breakdown::PLAN) {
        bd.intro.push_str(" plan = the organization's plan fee less the usage it includes; its free allowances are taken off compute, volumes and egress.");
    }
    for (a, b, total) in &r.breakdown {
        let mut cells = vec![arch_name(r, *a)];
        let values = b.values();
        cells.extend(shown.iter().map(|i| usd(values[*i])));
        cells.push(usd(*total));
        bd.push(cells, None);
    }
    bd
}

fn reservations_table(r: &Report) -> Table {
    let mut rs = Table::new(
        "reservations",
        format!(
            "Reservation blocks for the always-on compute at {} tenants",
            tenants(r.breakdown_tenants)
        ),
        strings(&[
            "architecture",
            "always-on compute",
            "cheapest blocks",
            "blocks per month",
            "saving per month",
            "monthly with blocks",
        ]),
        vec![false, true, false, true, true, true],
    );
    rs.intro = "Blocks are paid yearly up front for monthly credits 40% cheaper (CPU and additional RAM, per region and CPU class; unused credit is lost). Only Machines that run all month are counted.".into();
    for a in &r.reservations {
        rs.push(reservation_cells(r, a), None);
    }
    rs
}

fn reservation_cells(r: &Report, a: &ReservationAdvice) -> Vec<String> {
    let blocks: Vec<String> = a
        .plans
        .iter()
        .flat_map(|p| {
            p.blocks.iter().map(move |b| {
                format!(
                    "{} × {} ${}/yr in {}",
                    b.count,
                    p.cpu_kind.as_str(),
                    b.upfront_per_year.normalize(),
                    p.region
                )
            })
        })
        .collect();
    let amortized: Usd = a.plans.iter().map(|p| p.amortized_monthly).sum();
    vec![
        arch_name(r, a.arch),
        usd(a.always_on_compute),
        if blocks.is_empty() {
            "none pays off".into()
        } else {
            blocks.join(", ")
        },
        usd(amortized),
        usd(a.savings),
        usd(a.monthly - a.savings),
    ]
}

/// Sensitivity of the winner to active hours.
fn sensitivity_table(r: &Report) -> Table {
    let s = &r.sensitivity;
    let mut headers = vec!["hours/day".to_string()];
    headers.extend(r.architectures.iter().map(|a| a.name.clone()));
    headers.push("cheapest".into());
    let n_cols = headers.len();
    let mut sn = Table::new(
        "sensitivity",
        format!(
            "Sensitivity of the winner to active hours per day ({} tenants, {} active, {})",
            tenants(s.tenants),
            r.points
                .get(s.point)
                .map(|p| pct(p.fraction))
                .unwrap_or_default(),
            r.points
                .get(s.point)
                .map(|p| p.regions.clone())
                .unwrap_or_default()
        ),
        headers,
        (0..n_cols).map(|i| i + 1 < n_cols).collect(),
    );
    for (i, h) in s.hours.iter().enumerate() {
        let mut cells = vec![num(*h)];
        cells.extend(s.costs[i].iter().map(|v| usd(*v)));
        let w = s.winners.get(i).copied().unwrap_or(0);
        cells.push(arch_name(r, w));
        sn.push(cells, Some(w + 1));
    }
    sn.notes.push(sensitivity_note(r));
    sn
}

/// Where the cheapest architecture changes as the hours grow.
fn sensitivity_note(r: &Report) -> String {
    let s = &r.sensitivity;
    let mut changes = Vec::new();
    for i in 1..s.winners.len() {
        if s.winners[i] != s.winners[i - 1] {
            changes.push(format!(
                "between {} and {} h/day the cheapest changes from {} to {}",
                num(s.hours[i - 1]),
                num(s.hours[i]),
                arch_name(r, s.winners[i - 1]),
                arch_name(r, s.winners[i])
            ));
        }
    }
    if changes.is_empty() {
        "The cheapest architecture is the same at every setting.".into()
    } else {
        format!("{}.", capitalise(&changes.join("; ")))
    }
}

/// Pools: the size chosen at each row of the focus point, and the runner-up (none when
/// no row has pools).
fn capacity_table(r: &Report, flabel: &str) -> Option<Table> {
    let pool_rows: Vec<&Row> = r
        .rows
        .iter()
        .filter(|x| x.point == r.focus && !x.pools.is_empty())
        .collect();
    if pool_rows.is_empty() {
        return None;
    }
    let mut cp = Table::new(
        "capacity",
        format!("Shared pool capacity at {flabel}"),
        strings(&[
            "architecture",
            "tenants",
            "region",
            "size",
            "tenants/Machine",
            "Machines (kept running)",
            "pool cost",
            "runner-up",
        ]),
        vec![false, true, false, false, true, true, true, false],
    );
    cp.intro = "The cheapest size that holds the load with the memory model's headroom, and the next cheapest.".into();
    for row in pool_rows {
        for p in &row.pools {
            cp.push(pool_cells(r, row, p), None);
        }
    }
    Some(cp)
}

fn pool_cells(r: &Report, row: &Row, p: &PoolRow) -> Vec<String> {
    vec![
        arch_name(r, row.arch),
        tenants(row.tenants),
        p.region.clone(),
        p.size.clone(),
        tenants(p.tenants_per_machine),
        format!(
            "{} ({})",
            tenants(p.machines),
            p.min_machines.min(p.machines)
        ),
        usd(p.cost),
        p.runner_up
            .as_ref()
            .map(|u| {
                format!(
                    "{}: {} × {} per Machine, {}",
                    u.size,
                    tenants(u.machines),
                    tenants(u.tenants_per_machine),
                    usd(u.cost)
                )
            })
            .unwrap_or_else(|| "—".into()),
    ]
}

/// What fits on each size, for one architecture.
fn fit_table(r: &Report, ft: &FitTable) -> Table {
    let mut t = Table::new(
        "fit",
        format!(
            "What fits on each size ({}, {} active, {})",
            arch_name(r, ft.arch),
            pct(ft.fraction),
            ft.region
        ),
        strings(&[
            "size",
            "always on per month",
            "usable memory",
            "tenants per Machine",
            "agents running then",
            "agents that fit beside N tenants",
        ]),
        vec![false, true, true, true, true, true],
    );
    t.intro = format!(
        "For each size, the largest memory worth considering and the sizes the pool picks. Usable memory = memory × (1 − headroom); N = {} tenants, or as many as the Machine holds.",
        tenants(r.breakdown_tenants)
    );
    t.notes.extend(ft.notes.iter().cloned());
    for fr in &ft.rows {
        t.push(
            vec![
                fr.size.clone(),
                usd(fr.always_on_monthly),
                format!(
                    "{} MB",
                    group(fr.usable_mb.round_dp(0).normalize().to_string())
                ),
                tenants(fr.tenants_per_machine),
                count(fr.agents),
                format!(
                    "{} (N = {})",
                    tenants(fr.agents_that_fit),
                    tenants(fr.resident)
                ),
            ],
            None,
        );
    }
    t
}

/// The cost table of every usage point but the focus (none with a single point).
fn other_point_tables(r: &Report) -> Vec<Table> {
    if r.points.len() <= 1 {
        return Vec::new();
    }
    r.points
        .iter()
        .enumerate()
        .filter(|(pi, _)| *pi != r.focus)
        .map(|(pi, p)| cost_table(r, pi, "point", format!("Monthly cost at {}", p.label)))
        .collect()
}

/// Every row, up to [`MAX_LISTED_ROWS`].
fn all_rows_table(r: &Report) -> Table {
    let mut all = Table::new(
        "rows",
        "All rows",
        strings(&[
            "architecture",
            "tenants",
            "active",
            "h/day",
            "regions",
            "pricing",
            "monthly",
            "per tenant",
            "Machines (always on)",
            "notes",
        ]),
        vec![
            false, true, true, true, false, false, true, true, true, false,
        ],
    );
    for row in r.rows.iter().take(MAX_LISTED_ROWS) {
        all.push(row_cells(r, row), None);
    }
    if r.rows.len() > MAX_LISTED_ROWS {
        all.notes.push(format!(
            "{} more rows in `--format json`.",
            r.rows.len() - MAX_LISTED_ROWS
        ));
    }
    all
}

fn row_cells(r: &Report, row: &Row) -> Vec<String> {
    let p = &r.points[row.point];
    let mut notes: Vec<String> = Vec::new();
    if let Some(s) = &row.auto_size {
        notes.push(format!("size {s}"));
    }
    for pr in &row.pools {
        notes.push(format!(
            "{} × {} in {}",
            tenants(pr.machines),
            pr.size,
            pr.region
        ));
    }
    notes.extend(row.flags.iter().map(|f| format!("⚠ {f}")));
    vec![
        arch_name(r, row.arch),
        tenants(row.tenants),
        pct(p.fraction),
        num(p.hours),
        p.regions.clone(),
        p.pricing_version.to_string(),
        usd(row.monthly),
        usd_small(row.per_tenant),
        format!("{} ({})", count(row.machines), count(row.always_on)),
        notes.join("; "),
    ]
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The rules of the what-if model, stated in every report.
pub fn model_notes(r: &Report) -> Vec<String> {
    let mut v = vec![
        "A month is 30 days = 720 hours (Fly's billing convention); every figure is per month, in USD, priced by the same engine and tables as `flotilla cost`.".to_string(),
        "Active fraction f: the share of tenants that use the product on a day, all within one window of h active hours (the busiest case for capacity). A per-tenant Machine is started f × h hours a day on average; egress is per active tenant.".into(),
        "app-per-tenant and machine-per-tenant: every tenant has a Machine and a volume; Machines that stop or suspend pay rootfs storage while not started.".into(),
        "hybrid: every tenant keeps a volume; ceil(N × f) session Machines run h hours a day for the active tenants; the shared tier runs all month.".into(),
        "shared-pool: Machines sized by the memory model; min_machines run all month, the rest are started during the active window. The cheapest size at each tenant count is chosen, the runner-up shown.".into(),
        "The organization's free allowances (10 GB of snapshots, 10 certificates) are applied once to the whole fleet.".into(),
        "Break-even: exact integer search over the tenant count (costs never decrease with more tenants, so intervals where one architecture stays cheaper are skipped); step changes of pools are included.".into(),
    ];
    if let Some(p) = &r.org_plan {
        v.push(format!(
            "{} (at {}). Applied once to the whole fleet: the free allowances are taken off compute, volumes and egress; the plan column is the fee less the usage it includes.",
            p.terms(),
            r.points.get(r.focus).map(|x| x.label.as_str()).unwrap_or("the focus point")
        ));
    }
    if r.pricing
        .iter()
        .any(|(d, _)| d.to_string().as_str() < "2026-01-01")
    {
        v.push("Snapshot storage is free in price tables before 2026-01-01.".into());
    }
    v
}

fn header_lines(r: &Report) -> Vec<String> {
    let mut v = Vec::new();
    let pricing: Vec<String> = r.pricing.iter().map(|(d, _)| format!("fly/{d}")).collect();
    v.push(format!(
        "{} · pricing {} · a month is 30 days = 720 hours · USD",
        r.file,
        pricing.join(", ")
    ));
    if let Some(b) = &r.base_spec {
        v.push(format!("base spec: {b}"));
    }
    v
}

/// The terminal rendering.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "What-if: {}", r.scenario);
    if !r.description.is_empty() {
        let _ = writeln!(out, "{}", r.description.trim());
    }
    for l in header_lines(r) {
        let _ = writeln!(out, "  {l}");
    }
    out.push_str("\nArchitectures\n");
    for (i, a) in r.architectures.iter().enumerate() {
        let _ = writeln!(out, "  {}. {}: {}", i + 1, a.name, a.summary);
    }
    for t in tables(r) {
        let _ = writeln!(out, "\n{}", t.title);
        if !t.intro.is_empty() {
            let _ = writeln!(out, "  {}", t.intro);
        }
        if !t.rows.is_empty() {
            let headers: Vec<&str> = t.headers.iter().map(String::as_str).collect();
            out.push_str(&text_table(&headers, &t.right, &t.rows));
        }
        for n in &t.notes {
            let _ = writeln!(out, "  {n}");
        }
    }
    out.push_str("\nModel\n");
    for n in model_notes(r) {
        let _ = writeln!(out, "  - {n}");
    }
    if !r.warnings.is_empty() {
        out.push_str("\nUnpublished prices used\n");
        for w in &r.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    out
}

fn context(r: &Report, tables: &[Table]) -> Value {
    json!({
        "name": r.scenario,
        "description": r.description.trim(),
        "header": header_lines(r),
        "architectures": r.architectures.iter().enumerate().map(|(i, a)| json!({
            "name": a.name,
            "kind": a.kind.as_str(),
            "summary": a.summary,
            "color": charts::hex(i),
        })).collect::<Vec<_>>(),
        "tables": tables,
        "notes": model_notes(r),
        "warnings": r.warnings,
    })
}

/// Markdown (a committed report, a pull-request comment).
pub fn markdown(r: &Report) -> String {
    let ts = tables(r);
    let md: Vec<String> = ts
        .iter()
        .map(|t| {
            let rows: Vec<Vec<String>> = t
                .rows
                .iter()
                .zip(&t.strong)
                .map(|(row, s)| {
                    row.iter()
                        .enumerate()
                        .map(|(i, c)| {
                            if Some(i) == *s {
                                format!("**{c}**")
                            } else {
                                c.clone()
                            }
                        })
                        .collect()
                })
                .collect();
            let headers: Vec<&str> = t.headers.iter().map(String::as_str).collect();
            if rows.is_empty() {
                String::new()
            } else {
                md_table(&headers, &t.right, &rows)
            }
        })
        .collect();
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    let mut ctx = context(r, &ts);
    ctx["md"] = json!(md);
    env.render_str(MD_TEMPLATE, ctx)
        .unwrap_or_else(|e| format!("(markdown rendering failed: {e})\n"))
}

/// One self-contained HTML page: inline CSS, inline SVG charts, no scripts.
pub fn html(r: &Report) -> String {
    let ts = tables(r);
    let mut ctx = context(r, &ts);
    let focus = r.focus;
    let cards: Vec<Value> = r
        .tenants
        .iter()
        .filter_map(|&n| {
            let w = cheapest(r.rows.iter().filter(|x| x.point == focus && x.tenants == n))?;
            Some(json!({
                "tenants": tenants(n),
                "name": arch_name(r, w.arch),
                "color": charts::hex(w.arch),
                "monthly": usd(w.monthly),
                "per_tenant": usd_small(w.per_tenant),
            }))
        })
        .collect();
    ctx["cards"] = json!(cards);
    ctx["focus"] = json!(r.points.get(focus).map(|p| p.label.clone()));
    ctx["chart_total"] = json!(charts::cost_vs_tenants(r, false));
    ctx["chart_per_tenant"] = json!(charts::cost_vs_tenants(r, true));
    ctx["chart_breakdown"] = json!(charts::breakdown(r));
    ctx["chart_sensitivity"] = json!(charts::sensitivity(r));
    ctx["categories"] = json!(
        Breakdown::NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"name": n, "color": charts::category_hex(i)}))
            .collect::<Vec<_>>()
    );
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    if let Err(e) = env.add_template("report.html", HTML_TEMPLATE) {
        return format!("<!DOCTYPE html>\n<p>report template error: {e}</p>\n");
    }
    env.get_template("report.html")
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| format!("<!DOCTYPE html>\n<p>report rendering failed: {e}</p>\n"))
}

fn breakdown_json(b: &Breakdown) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in Breakdown::NAMES.iter().zip(b.values()) {
        m.insert(k.to_string(), json_usd(v));
    }
    Value::Object(m)
}

/// The JSON contract: `{"rows":[{"scenario","architecture","tenants","monthly_usd",
/// "per_tenant_usd","machines",…}], "break_even":[…], …}`.
pub fn json(r: &Report) -> Value {
    json!({
        "format_version": 1,
        "scenario": r.scenario,
        "file": r.file,
        "pricing_versions": r.pricing.iter().map(|(d, _)| d.to_string()).collect::<Vec<_>>(),
        "architectures": r.architectures.iter().map(|a| json!({
            "name": a.name, "kind": a.kind.as_str(), "idle": a.idle, "summary": a.summary,
        })).collect::<Vec<_>>(),
        "rows": r.rows.iter().map(|row| row_json(r, row)).collect::<Vec<_>>(),
        "break_even": r.break_even.iter().map(|b| break_even_json(r, b)).collect::<Vec<_>>(),
        "break_even_notes": r.break_even_notes.iter().map(|n| {
            let mut v = point_json(r, n.point);
            v["a"] = json!(arch_name(r, n.a));
            v["b"] = json!(arch_name(r, n.b));
            v["note"] = json!(n.text);
            v
        }).collect::<Vec<_>>(),
        "focus": point_json(r, r.focus),
        "breakdown_tenants": r.breakdown_tenants,
        "reservations": r.reservations.iter().map(|a| reservation_json(r, a)).collect::<Vec<_>>(),
        "sensitivity": sensitivity_json(r),
        "warnings": r.warnings,
    })
}

/// One row of the sweep.
fn row_json(r: &Report, row: &Row) -> Value {
    let p = &r.points[row.point];
    json!({
        "scenario": r.scenario,
        "architecture": arch_name(r, row.arch),
        "kind": r.architectures[row.arch].kind.as_str(),
        "tenants": row.tenants,
        "active_fraction": json_decimal(p.fraction, 6),
        "active_hours_per_day": json_decimal(p.hours, 6),
        "regions": p.regions,
        "pricing_version": p.pricing_version,
        "monthly_usd": json_usd(row.monthly),
        "per_tenant_usd": json_usd(row.per_tenant),
        "machines": json_decimal(row.machines, 4),
        "machines_always_on": json_decimal(row.always_on, 4),
        "breakdown": breakdown_json(&row.breakdown),
        "always_on_compute_usd": json_usd(row.always_on_compute),
        "reservation_savings_usd": json_usd(row.reservation_savings),
        "size": row.auto_size,
        "pools": row.pools.iter().map(pool_json).collect::<Vec<_>>(),
        "flags": row.flags,
    })
}

fn pool_json(pl: &PoolRow) -> Value {
    json!({
        "region": pl.region,
        "size": pl.size,
        "tenants_per_machine": pl.tenants_per_machine,
        "machines": pl.machines,
        "min_machines": pl.min_machines,
        "monthly_usd": json_usd(pl.cost),
        "runner_up": pl.runner_up.as_ref().map(|u| json!({
            "size": u.size,
            "tenants_per_machine": u.tenants_per_machine,
            "machines": u.machines,
            "monthly_usd": json_usd(u.cost),
        })),
    })
}

/// The usage point `i`: fraction, hours, regions and price table.
fn point_json(r: &Report, i: usize) -> Value {
    let p = &r.points[i];
    json!({
        "active_fraction": json_decimal(p.fraction, 6),
        "active_hours_per_day": json_decimal(p.hours, 6),
        "regions": p.regions,
        "pricing_version": p.pricing_version,
    })
}

fn break_even_json(r: &Report, b: &BreakEven) -> Value {
    let name = |w: Option<usize>| w.map(|i| arch_name(r, i));
    let mut v = point_json(r, b.point);
    v["a"] = json!(arch_name(r, b.a));
    v["b"] = json!(arch_name(r, b.b));
    v["tenants"] = json!(b.tenants);
    v["cheaper_below"] = json!(name(b.cheaper_before));
    v["cheaper_from"] = json!(name(b.cheaper_from));
    v["monthly_a_usd"] = json_usd(b.cost_a);
    v["monthly_b_usd"] = json_usd(b.cost_b);
    v
}

fn reservation_json(r: &Report, a: &ReservationAdvice) -> Value {
    json!({
        "architecture": arch_name(r, a.arch),
        "tenants": a.tenants,
        "always_on_compute_usd": json_usd(a.always_on_compute),
        "savings_usd": json_usd(a.savings),
        "monthly_usd": json_usd(a.monthly),
        "blocks": a.plans.iter().flat_map(|p| p.blocks.iter().map(move |b| json!({
            "region": p.region,
            "cpu_kind": p.cpu_kind.as_str(),
            "upfront_per_year_usd": json_usd(b.upfront_per_year),
            "credit_per_month_usd": json_usd(b.credit_per_month),
            "count": b.count,
        }))).collect::<Vec<_>>(),
    })
}

fn sensitivity_json(r: &Report) -> Value {
    let s = &r.sensitivity;
    json!({
        "tenants": s.tenants,
        "hours": s.hours.iter().map(|h| json_decimal(*h, 6)).collect::<Vec<_>>(),
        "monthly_usd": s.costs.iter().map(|c| {
            let mut m = serde_json::Map::new();
            for (i, v) in c.iter().enumerate() {
                m.insert(arch_name(r, i), json_usd(*v));
            }
            Value::Object(m)
        }).collect::<Vec<_>>(),
        "cheapest": s.winners.iter().map(|w| arch_name(r, *w)).collect::<Vec<_>>(),
    })
}

/// The JSON report as text; a value that cannot be serialized is an error, never `{}`.
pub fn json_string(r: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(&json(r)).map(|s| s + "\n")
}
