//! Cost reports as text (terminal), JSON (the contract in ARCHITECTURE.md) and markdown
//! (a pull-request comment). Rendering only: every figure comes computed in the report.

use std::fmt::Write as _;

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::display::Shown;
use super::{
    Change, ChangeStatus, CostDelta, CostReport, LineItem, ORG, SHARED, UsageRate, Verdict,
};
use crate::money::{
    Usd, fmt_delta, fmt_percent, fmt_rate, fmt_usd, json_decimal, json_usd, shown_delta,
};
use crate::pricing::SourceRef;
use crate::pricing::render::{md_table, text_table};
use crate::resource::natural_cmp;

/// The hidden marker that lets CI find and update its own pull-request comment.
pub const MARKDOWN_MARKER: &str = "<!-- flotilla-cost-preview -->";

/// At most this many rows in each markdown table (GitHub caps a comment at 65,536
/// characters); the rest is summarised.
pub const MARKDOWN_MAX_ROWS: usize = 100;

/// What to render: the report, and optionally a base report with its delta and a budget
/// verdict.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// A name for the fleet (the spec path or organization).
    pub title: &'a str,
    pub report: &'a CostReport,
    pub base: Option<(&'a CostReport, &'a CostDelta)>,
    pub verdict: Option<&'a Verdict>,
}

fn source_id(r: &SourceRef) -> String {
    format!("{}:{}", r.table.file(), r.line)
}

/// Text and markdown show cents; JSON shows 4 decimals (see [`super::display`]).
pub const TEXT_DP: u32 = 2;
/// Decimals of money in JSON.
pub const JSON_DP: u32 = 4;

fn month_note(report: &CostReport) -> String {
    format!(
        "pricing fly/{} · a month is {} days = {} hours; Fly bills per second, per hour = per month / {}",
        report.pricing_version,
        report.assumptions.month_days,
        report.assumptions.hours_per_month,
        report.assumptions.hours_per_month
    )
}

/// The command that lists the rows a report used: the embedded tables by date, a
/// table of one's own (`--pricing DIR`) by its directory.
fn show_command(r: &CostReport) -> String {
    let embedded = format!("pricing/fly/{}", r.pricing_version);
    if r.assumptions.pricing_origin == embedded {
        format!("flotilla pricing show {}", r.pricing_version)
    } else {
        format!(
            "flotilla pricing show {} --pricing {}",
            r.pricing_version, r.assumptions.pricing_origin
        )
    }
}

/// A monthly amount's hourly figure, exact.
fn hourly(report: &CostReport, monthly: Usd) -> Usd {
    monthly / Decimal::from(report.assumptions.hours_per_month.max(1))
}

/// `1 tenant`, `2 tenants`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

const CHANGE_RIGHT: [bool; 5] = [false, true, true, true, false];

/// Rows of `key, amount`, keys in natural order (`user-2` before `user-10`).
fn money_rows<'a>(it: impl Iterator<Item = (&'a String, &'a Usd)>) -> Vec<Vec<String>> {
    let mut v: Vec<(&String, &Usd)> = it.collect();
    v.sort_by(|a, b| natural_cmp(a.0, b.0));
    v.into_iter()
        .map(|(k, v)| vec![k.clone(), fmt_usd(*v)])
        .collect()
}

fn change_rows(changes: &[Change], limit: usize) -> Vec<Vec<String>> {
    changes
        .iter()
        .take(limit)
        .map(|c| {
            vec![
                c.key.clone(),
                fmt_usd(c.before),
                fmt_usd(c.after),
                fmt_delta(shown_delta(c.before, c.after)),
                status_word(c.status).to_string(),
            ]
        })
        .collect()
}

fn status_word(s: ChangeStatus) -> &'static str {
    match s {
        ChangeStatus::Added => "added",
        ChangeStatus::Removed => "removed",
        ChangeStatus::Changed => "changed",
    }
}

fn line_quantity(l: &LineItem) -> String {
    format!("{} {}", l.quantity.round_dp(4).normalize(), l.unit)
}

/// `depends on usage: $0.02 per GB (usage.egress_gb_month is 0)`.
fn rate_text(u: &UsageRate) -> String {
    format!(
        "depends on usage: {} per {} ({} is 0)",
        fmt_rate(u.unit_price),
        u.unit,
        u.usage_key
    )
}

/// `$22.28 → $44.18 per month (+$21.90, +98.3%)`.
fn delta_headline(d: &CostDelta) -> String {
    format!(
        "{} → {} per month ({}{})",
        fmt_usd(d.base_total),
        fmt_usd(d.head_total),
        fmt_delta(shown_delta(d.base_total, d.head_total)),
        d.percent
            .map(|p| format!(", {}", fmt_percent(p)))
            .unwrap_or_default()
    )
}

fn headline(v: &View<'_>) -> String {
    match v.base {
        Some((_, d)) => delta_headline(d),
        None => format!("{} per month", fmt_usd(v.report.total)),
    }
}

/// `$0.061403 per hour`.
fn hourly_note(r: &CostReport) -> String {
    format!("{} per hour", fmt_rate(hourly(r, r.total)))
}

/// The caveat a headline carries when the report has warnings.
fn caveat(r: &CostReport) -> Option<String> {
    if r.warnings.is_empty() {
        return None;
    }
    Some(format!(
        "rests on {}: see below",
        count(r.warnings.len(), "warning", "warnings")
    ))
}

/// Per-component reasons of the changed resources, one block per resource.
fn text_reasons(out: &mut String, changes: &[Change]) {
    let with: Vec<&Change> = changes.iter().filter(|c| !c.reasons.is_empty()).collect();
    if with.is_empty() {
        return;
    }
    out.push('\n');
    let _ = writeln!(out, "Why they changed:");
    for c in with {
        let _ = writeln!(out, "  {}:", c.key);
        for r in &c.reasons {
            let _ = writeln!(out, "    - {r}");
        }
    }
}

fn text_delta(out: &mut String, r: &CostReport, base: &CostReport, d: &CostDelta) {
    if base.pricing_version != r.pricing_version {
        let _ = writeln!(out, "  (base priced with fly/{})", base.pricing_version);
    }
    out.push('\n');
    if d.tenants.is_empty() {
        let _ = writeln!(out, "No tenant's cost changed.");
    } else {
        let _ = writeln!(out, "Tenants whose cost changed:");
        out.push_str(&text_table(
            &["tenant", "before", "after", "change", ""],
            &CHANGE_RIGHT,
            &change_rows(&d.tenants, usize::MAX),
        ));
    }
    if !d.addresses.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "Resources whose cost changed:");
        out.push_str(&text_table(
            &["resource", "before", "after", "change", ""],
            &CHANGE_RIGHT,
            &change_rows(&d.addresses, usize::MAX),
        ));
        text_reasons(out, &d.addresses);
    }
}

/// The nested table: each resource with its subtotal, then its components and the
/// prices that depend on usage.
fn resource_rows<'a>(r: &'a CostReport, shown: &Shown<'a>) -> Vec<Vec<Cow<'a, str>>> {
    let mut rows = Vec::new();
    for res in &shown.resources {
        rows.push(vec![
            Cow::Borrowed(res.address.as_str()),
            Cow::Borrowed(""),
            Cow::Borrowed(""),
            Cow::Borrowed(""),
            Cow::Owned(fmt_usd(res.shown)),
            Cow::Owned(fmt_rate(hourly(r, res.exact))),
        ]);
        for &i in &res.lines {
            let l = &r.lines[i];
            rows.push(vec![
                Cow::Owned(format!("  {}", l.item)),
                Cow::Borrowed(l.description.as_str()),
                Cow::Owned(line_quantity(l)),
                Cow::Owned(fmt_rate(l.unit_price)),
                Cow::Owned(fmt_usd(shown.lines[i])),
                Cow::Borrowed(""),
            ]);
        }
        for &i in &res.rates {
            let u = &r.usage_rates[i];
            rows.push(vec![
                Cow::Owned(format!("  {}", u.item)),
                Cow::Owned(rate_text(u)),
                Cow::Owned(format!("0 {}", u.unit)),
                Cow::Owned(fmt_rate(u.unit_price)),
                Cow::Owned(fmt_usd(Decimal::ZERO)),
                Cow::Borrowed(""),
            ]);
        }
    }
    rows
}

fn text_assumptions(out: &mut String, r: &CostReport) {
    out.push('\n');
    let _ = writeln!(out, "Assumptions:");
    for rule in &r.assumptions.rules {
        let _ = writeln!(out, "  - {rule}");
    }
    let u = &r.assumptions.default_usage;
    let _ = writeln!(
        out,
        "  - Default usage: {} active h/day, rootfs {} GB, egress {} GB/month, snapshot daily change {}.",
        u.active_hours_per_day.normalize(),
        u.rootfs_gb.normalize(),
        u.egress_gb_month.normalize(),
        u.snapshot_daily_change.normalize()
    );
    let _ = writeln!(
        out,
        "  - Prices: {} (see `{}` for every row and source).",
        r.assumptions.pricing_origin,
        show_command(r)
    );
    let _ = writeln!(
        out,
        "  - Shown amounts are rounded to cents; breakdowns are allocated so that they add up to the total shown (COSTS.md)."
    );
}

/// The terminal report: totals, breakdowns, every resource with its components,
/// assumptions and warnings (on stdout, so that a saved report keeps them).
pub fn text(v: &View<'_>) -> String {
    let r = v.report;
    let shown = Shown::new(r, TEXT_DP);
    let mut out = String::new();
    let _ = writeln!(out, "Cost of {}: {}", v.title, headline(v));
    let _ = writeln!(out, "  ({}; {})", hourly_note(r), month_note(r));
    if let Some(c) = caveat(r) {
        let _ = writeln!(out, "  (this figure {c})");
    }
    if let Some((base, d)) = v.base {
        text_delta(&mut out, r, base, d);
    }
    for (title, key, map) in [
        ("By tenant:", "tenant", &shown.by_tenant),
        ("By kind:", "kind", &shown.by_kind),
        ("By item:", "item", &shown.by_item),
    ] {
        out.push('\n');
        let _ = writeln!(out, "{title}");
        out.push_str(&text_table(
            &[key, "monthly"],
            &[false, true],
            &money_rows(map.iter()),
        ));
    }
    out.push('\n');
    let _ = writeln!(out, "Resources:");
    out.push_str(&text_table(
        &[
            "resource / item",
            "what",
            "quantity",
            "unit price",
            "monthly",
            "hourly",
        ],
        &[false, false, true, true, true, true],
        &resource_rows(r, &shown),
    ));
    let _ = writeln!(
        out,
        "  total: {} ({})",
        fmt_usd(shown.total),
        hourly_note(r)
    );
    out.push_str(&super::allowance::text_section(r.plan.as_ref()));
    out.push_str(&super::advice::text_section(&r.reservation_advice));
    text_assumptions(&mut out, r);
    if !r.warnings.is_empty() {
        out.push('\n');
        let _ = writeln!(out, "Warnings:");
        for w in &r.warnings {
            let _ = writeln!(out, "  - {w}");
        }
    }
    if let Some(verdict) = v.verdict {
        out.push('\n');
        match verdict {
            Verdict::Within => {
                let _ = writeln!(out, "Budget: within limits.");
            }
            Verdict::Exceeded { reason } => {
                let _ = writeln!(out, "{reason}");
            }
        }
    }
    out
}

/// Money in JSON: a number in dollars with at most 4 decimals.
struct Money(Usd);

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        json_usd(self.0).serialize(s)
    }
}

/// A quantity or unit price in JSON: a number with at most 6 decimals.
struct Num6(Decimal);

impl Serialize for Num6 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        json_decimal(self.0, 6).serialize(s)
    }
}

/// A breakdown already allocated at 4 decimals.
struct MoneyMap(BTreeMap<String, Usd>);

impl Serialize for MoneyMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, Shown4(*v))))
    }
}

struct SourceIds<'a>(&'a [SourceRef]);

impl Serialize for SourceIds<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(source_id))
    }
}

#[derive(Serialize)]
struct JsonLine<'a> {
    address: &'a str,
    kind: &'a str,
    tenant: Option<&'a str>,
    app: Option<&'a str>,
    item: &'static str,
    description: &'a str,
    quantity: Num6,
    unit: &'a str,
    unit_price_usd: Num6,
    monthly_usd: Shown4,
    region: Option<&'a str>,
    cpu_kind: Option<&'static str>,
    pricing_version: NaiveDate,
    sources: SourceIds<'a>,
    assumptions: &'a [String],
}

/// An amount already allocated at 4 decimals (see [`super::display`]).
struct Shown4(Usd);

impl Serialize for Shown4 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        json_decimal(self.0, JSON_DP).serialize(s)
    }
}

struct JsonLines<'a>(&'a [LineItem], &'a [Usd]);

impl Serialize for JsonLines<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().zip(self.1).map(|(l, shown)| JsonLine {
            address: l.address.as_str(),
            kind: l.kind,
            tenant: l.tenant.as_deref(),
            app: l.app.as_deref(),
            item: l.item.as_str(),
            description: &l.description,
            quantity: Num6(l.quantity),
            unit: l.unit,
            unit_price_usd: Num6(l.unit_price),
            monthly_usd: Shown4(*shown),
            region: l.region.as_deref(),
            cpu_kind: l.cpu_kind.map(|k| k.as_str()),
            pricing_version: l.pricing_version,
            sources: SourceIds(&l.sources),
            assumptions: &l.assumptions,
        }))
    }
}

#[derive(Serialize)]
struct JsonComponent<'a> {
    item: &'static str,
    description: &'a str,
    monthly_usd: Shown4,
}

#[derive(Serialize)]
struct JsonRate<'a> {
    item: &'static str,
    unit: &'a str,
    unit_price_usd: Num6,
    usage_key: &'a str,
    region: Option<&'a str>,
}

/// One resource with its subtotal, its components and the prices that depend on usage.
#[derive(Serialize)]
struct JsonResource<'a> {
    address: &'a str,
    monthly_usd: Shown4,
    hourly_usd: Num6,
    components: Vec<JsonComponent<'a>>,
    depends_on_usage: Vec<JsonRate<'a>>,
}

fn json_resources<'a>(r: &'a CostReport, shown: &Shown<'a>) -> Vec<JsonResource<'a>> {
    shown
        .resources
        .iter()
        .map(|res| JsonResource {
            address: res.address.as_str(),
            monthly_usd: Shown4(res.shown),
            hourly_usd: Num6(hourly(r, res.exact)),
            components: res
                .lines
                .iter()
                .map(|&i| JsonComponent {
                    item: r.lines[i].item.as_str(),
                    description: &r.lines[i].description,
                    monthly_usd: Shown4(shown.lines[i]),
                })
                .collect(),
            depends_on_usage: res
                .rates
                .iter()
                .map(|&i| {
                    let u = &r.usage_rates[i];
                    JsonRate {
                        item: u.item.as_str(),
                        unit: u.unit,
                        unit_price_usd: Num6(u.unit_price),
                        usage_key: u.usage_key,
                        region: u.region.as_deref(),
                    }
                })
                .collect(),
        })
        .collect()
}

#[derive(Serialize)]
struct JsonChange<'a> {
    key: &'a str,
    status: &'static str,
    before_usd: Money,
    after_usd: Money,
    delta_usd: Money,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    reasons: &'a [String],
}

struct JsonChanges<'a>(&'a [Change]);

impl Serialize for JsonChanges<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|c| JsonChange {
            key: &c.key,
            status: status_word(c.status),
            before_usd: Money(c.before),
            after_usd: Money(c.after),
            delta_usd: Money(c.delta),
            reasons: &c.reasons,
        }))
    }
}

#[derive(Serialize)]
struct JsonDelta<'a> {
    tenants: JsonChanges<'a>,
    addresses: JsonChanges<'a>,
    kinds: JsonChanges<'a>,
    items: JsonChanges<'a>,
}

#[derive(Serialize)]
struct JsonUnpublished<'a> {
    file: &'a str,
    line: u32,
    key: &'a str,
    value: &'a str,
    status: &'static str,
    note: &'a str,
    lines: usize,
}

#[derive(Serialize)]
struct JsonAssumptions<'a> {
    month_days: u32,
    hours_per_month: u32,
    pricing_version: NaiveDate,
    default_usage: &'a crate::resource::Usage,
    rules: &'a [String],
    unpublished_figures: Vec<JsonUnpublished<'a>>,
}

#[derive(Serialize)]
struct JsonCitation<'a> {
    file: &'a str,
    line: u32,
    key: &'a str,
    value: &'a str,
    status: &'static str,
    source: &'a str,
    url: &'a str,
    note: &'a str,
}

#[derive(Serialize)]
struct JsonBudget<'a> {
    exceeded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// The JSON contract (see ARCHITECTURE.md): `pricing_version`, `monthly_usd`,
/// `by_tenant`, `by_kind`, `lines`, `assumptions`; with a base also `base_monthly_usd`,
/// `delta_usd` and the changes.
#[derive(Serialize)]
struct JsonReport<'a> {
    format_version: u32,
    title: &'a str,
    pricing_version: NaiveDate,
    pricing_origin: &'a str,
    currency: &'a str,
    monthly_usd: Money,
    /// `monthly_usd` / hours per month.
    hourly_usd: Num6,
    /// How shown amounts are rounded: every breakdown sums to `monthly_usd`.
    rounding: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_monthly_usd: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta_usd: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta_percent: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_pricing_version: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<JsonBudget<'a>>,
    by_tenant: MoneyMap,
    by_kind: MoneyMap,
    by_item: MoneyMap,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<JsonDelta<'a>>,
    resources: Vec<JsonResource<'a>>,
    lines: JsonLines<'a>,
    assumptions: JsonAssumptions<'a>,
    citations: BTreeMap<String, JsonCitation<'a>>,
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<super::allowance::JsonPlan<'a>>,
    #[serde(skip_serializing_if = "super::advice::JsonAdvice::is_empty")]
    reservation_advice: super::advice::JsonAdvice<'a>,
}

fn json_report<'a>(v: &View<'a>, shown: &'a Shown<'a>) -> JsonReport<'a> {
    let r = v.report;
    let citations = r
        .citations
        .iter()
        .map(|(sref, c)| {
            (
                source_id(sref),
                JsonCitation {
                    file: &c.file,
                    line: c.line,
                    key: &c.key,
                    value: &c.value,
                    status: c.status.as_str(),
                    source: &c.source,
                    url: &c.url,
                    note: &c.note,
                },
            )
        })
        .collect();
    let unpublished_figures = r
        .unpublished
        .iter()
        .map(|u| JsonUnpublished {
            file: &u.citation.file,
            line: u.citation.line,
            key: &u.citation.key,
            value: &u.citation.value,
            status: u.citation.status.as_str(),
            note: &u.citation.note,
            lines: u.lines,
        })
        .collect();
    let delta = v.base.map(|(_, d)| d);
    JsonReport {
        format_version: 1,
        title: v.title,
        pricing_version: r.pricing_version,
        pricing_origin: &r.assumptions.pricing_origin,
        currency: r.assumptions.currency,
        monthly_usd: Money(r.total),
        hourly_usd: Num6(hourly(r, r.total)),
        rounding: "half away from zero; breakdowns allocated by largest remainder to sum to monthly_usd",
        base_monthly_usd: delta.map(|d| Money(d.base_total)),
        delta_usd: delta.map(|d| Money(d.delta)),
        delta_percent: delta.map(|d| d.percent.map(|p| json_decimal(p, 2)).unwrap_or(Value::Null)),
        base_pricing_version: v.base.map(|(b, _)| b.pricing_version),
        budget: v.verdict.map(|verdict| match verdict {
            Verdict::Within => JsonBudget {
                exceeded: false,
                reason: None,
            },
            Verdict::Exceeded { reason } => JsonBudget {
                exceeded: true,
                reason: Some(reason),
            },
        }),
        by_tenant: MoneyMap(shown.by_tenant.clone()),
        by_kind: MoneyMap(shown.by_kind.clone()),
        by_item: MoneyMap(shown.by_item.clone()),
        changes: delta.map(|d| JsonDelta {
            tenants: JsonChanges(&d.tenants),
            addresses: JsonChanges(&d.addresses),
            kinds: JsonChanges(&d.kinds),
            items: JsonChanges(&d.items),
        }),
        resources: json_resources(r, shown),
        lines: JsonLines(&r.lines, &shown.lines),
        assumptions: JsonAssumptions {
            month_days: r.assumptions.month_days,
            hours_per_month: r.assumptions.hours_per_month,
            pricing_version: r.pricing_version,
            default_usage: &r.assumptions.default_usage,
            rules: &r.assumptions.rules,
            unpublished_figures,
        },
        citations,
        warnings: &r.warnings,
        plan: r.plan.as_ref().map(super::allowance::JsonPlan),
        reservation_advice: super::advice::JsonAdvice(&r.reservation_advice),
    }
}

/// A report that cannot be serialized: an error, never empty output.
fn json_failed(e: serde_json::Error) -> crate::diag::Diagnostic {
    crate::diag::Diagnostic::error(format!("the cost report cannot be written as JSON: {e}"))
        .hint("this is a bug in flotilla; please report it with the spec")
}

/// The JSON report as a value.
pub fn json(v: &View<'_>) -> Result<Value, crate::diag::Diagnostic> {
    let shown = Shown::new(v.report, JSON_DP);
    serde_json::to_value(json_report(v, &shown)).map_err(json_failed)
}

/// The JSON report as pretty-printed text (what `--format json` prints).
pub fn json_string(v: &View<'_>) -> Result<String, crate::diag::Diagnostic> {
    let shown = Shown::new(v.report, JSON_DP);
    serde_json::to_string_pretty(&json_report(v, &shown))
        .map(|s| s + "\n")
        .map_err(json_failed)
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn more_rows(total: usize, shown: usize, what: &str) -> String {
    if total > shown {
        format!(
            "\n_… and {} more {what}; run `flotilla cost` locally for all of them._\n",
            total - shown
        )
    } else {
        String::new()
    }
}

/// Warnings above the fold: a visible block right under the headline.
fn md_warnings(out: &mut String, r: &CostReport) {
    if r.warnings.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "> [!WARNING]\n> **This estimate rests on {}:**",
        count(r.warnings.len(), "warning", "warnings")
    );
    for w in &r.warnings {
        let _ = writeln!(out, "> - {}", md_escape(w));
    }
    out.push('\n');
}

fn md_delta(out: &mut String, r: &CostReport, base: &CostReport, d: &CostDelta) {
    if base.pricing_version != r.pricing_version {
        let _ = writeln!(
            out,
            "_The base was priced with fly/{}._\n",
            base.pricing_version
        );
    }
    if d.tenants.is_empty() {
        let _ = writeln!(out, "No tenant's monthly cost changed.");
    } else {
        let _ = writeln!(out, "#### Tenants whose cost changed ({})", d.tenants.len());
        out.push('\n');
        out.push_str(&md_table(
            &["Tenant", "Before", "After", "Change", ""],
            &CHANGE_RIGHT,
            &change_rows(&d.tenants, MARKDOWN_MAX_ROWS),
        ));
        out.push_str(&more_rows(d.tenants.len(), MARKDOWN_MAX_ROWS, "tenants"));
    }
    out.push('\n');
    if !d.addresses.is_empty() {
        let _ = writeln!(
            out,
            "#### Resources whose cost changed ({})\n",
            d.addresses.len()
        );
        let rows: Vec<Vec<String>> = change_rows(&d.addresses, MARKDOWN_MAX_ROWS)
            .into_iter()
            .zip(&d.addresses)
            .map(|(mut row, c)| {
                row[0] = format!("`{}`", row[0]);
                row.push(
                    c.reasons
                        .iter()
                        .map(|x| md_escape(x))
                        .collect::<Vec<_>>()
                        .join("<br>"),
                );
                row
            })
            .collect();
        out.push_str(&md_table(
            &["Resource", "Before", "After", "Change", "", "Why"],
            &[false, true, true, true, false, false],
            &rows,
        ));
        out.push_str(&more_rows(
            d.addresses.len(),
            MARKDOWN_MAX_ROWS,
            "resources",
        ));
        out.push('\n');
    }
}

/// The nested resource table of the full breakdown, at most [`MARKDOWN_MAX_ROWS`] rows.
fn md_resources(out: &mut String, r: &CostReport, shown: &Shown<'_>) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut left = 0;
    for res in shown.resources.iter().filter(|x| !x.lines.is_empty()) {
        if rows.len() + res.lines.len() + 1 > MARKDOWN_MAX_ROWS {
            left += 1;
            continue;
        }
        rows.push(vec![
            format!("**`{}`**", res.address),
            String::new(),
            String::new(),
            String::new(),
            format!("**{}**", fmt_usd(res.shown)),
            fmt_rate(hourly(r, res.exact)),
        ]);
        for &i in &res.lines {
            let l = &r.lines[i];
            rows.push(vec![
                format!("↳ {}", l.item),
                md_escape(&l.description),
                line_quantity(l),
                fmt_rate(l.unit_price),
                fmt_usd(shown.lines[i]),
                String::new(),
            ]);
        }
    }
    rows.push(vec![
        "**total**".into(),
        String::new(),
        String::new(),
        String::new(),
        format!("**{}**", fmt_usd(shown.total)),
        fmt_rate(hourly(r, r.total)),
    ]);
    out.push_str(&md_table(
        &[
            "Resource / item",
            "What",
            "Quantity",
            "Unit price",
            "Monthly",
            "Hourly",
        ],
        &[false, false, true, true, true, true],
        &rows,
    ));
    if left > 0 {
        let _ = writeln!(
            out,
            "\n_… and {} more; run `flotilla cost` locally for all of them._",
            count(left, "resource", "resources")
        );
    }
}

/// The prices that apply only with usage, one row per price (with how many resources
/// it applies to).
fn md_usage_rates(out: &mut String, r: &CostReport) {
    let mut rows: BTreeMap<(&str, &str, String, &str), usize> = BTreeMap::new();
    for u in &r.usage_rates {
        *rows
            .entry((u.item.as_str(), u.unit, fmt_rate(u.unit_price), u.usage_key))
            .or_insert(0) += 1;
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<details><summary>Depends on usage: {} at $0.00 with the assumed usage</summary>\n",
        count(rows.len(), "price", "prices")
    );
    let table: Vec<Vec<String>> = rows
        .into_iter()
        .map(|((item, unit, price, key), n)| {
            vec![
                item.to_string(),
                format!("{price} per {unit}"),
                format!("`{key}`"),
                n.to_string(),
            ]
        })
        .collect();
    out.push_str(&md_table(
        &["Item", "Unit price", "Set with", "Resources"],
        &[false, true, false, true],
        &table,
    ));
    let _ = writeln!(out, "\n</details>\n");
}

/// A pull-request comment: headline (with its caveat), warnings, budget verdict, the
/// changes with their reasons, a collapsible full breakdown, assumptions.
pub fn markdown(v: &View<'_>) -> String {
    let r = v.report;
    let shown = Shown::new(r, TEXT_DP);
    let mut out = String::new();
    let _ = writeln!(out, "{MARKDOWN_MARKER}");
    let _ = writeln!(out, "### Cost preview: `{}`", v.title);
    out.push('\n');
    let _ = writeln!(
        out,
        "**Monthly cost: {}**{} · {}",
        headline(v),
        if r.warnings.is_empty() { "" } else { " ⚠️" },
        hourly_note(r)
    );
    out.push('\n');
    let _ = writeln!(out, "_{}_", month_note(r));
    out.push('\n');
    md_warnings(&mut out, r);
    match v.verdict {
        Some(Verdict::Exceeded { reason }) => {
            let _ = writeln!(out, "> [!CAUTION]\n> **{}**", md_escape(reason));
            out.push('\n');
        }
        Some(Verdict::Within) => {
            let _ = writeln!(out, "Budget: within limits.");
            out.push('\n');
        }
        None => {}
    }
    if let Some((base, d)) = v.base {
        md_delta(&mut out, r, base, d);
    }
    out.push_str(&super::allowance::markdown_section(r.plan.as_ref()));
    out.push_str(&super::advice::markdown_section(&r.reservation_advice));
    let _ = writeln!(
        out,
        "<details><summary>Full breakdown: {}, {}</summary>\n",
        count(r.tenant_count(), "tenant", "tenants"),
        count(r.lines.len(), "line", "lines")
    );
    for (key, map) in [("Kind", &shown.by_kind), ("Item", &shown.by_item)] {
        out.push_str(&md_table(
            &[key, "Monthly"],
            &[false, true],
            &money_rows(map.iter()),
        ));
        out.push('\n');
    }
    let mut tenant_rows: Vec<(&String, &Usd)> = shown.by_tenant.iter().collect();
    tenant_rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let rows: Vec<Vec<String>> = tenant_rows
        .iter()
        .take(MARKDOWN_MAX_ROWS)
        .map(|(k, v)| vec![(*k).clone(), fmt_usd(**v)])
        .collect();
    out.push_str(&md_table(&["Tenant", "Monthly"], &[false, true], &rows));
    out.push_str(&more_rows(tenant_rows.len(), MARKDOWN_MAX_ROWS, "tenants"));
    out.push('\n');
    md_resources(&mut out, r, &shown);
    let _ = writeln!(out, "\n</details>\n");
    md_usage_rates(&mut out, r);
    let _ = writeln!(out, "<details><summary>Assumptions</summary>\n");
    for rule in &r.assumptions.rules {
        let _ = writeln!(out, "- {rule}");
    }
    let _ = writeln!(
        out,
        "- By tenant, `{SHARED}` collects shared apps and `{ORG}` the organization-wide allowances."
    );
    let _ = writeln!(
        out,
        "- Amounts are rounded to cents; every breakdown is allocated (largest remainder) so that it adds up to the total shown."
    );
    let _ = writeln!(
        out,
        "- Prices: {} (pricing version {}; every row and source: `{}`).",
        r.assumptions.pricing_origin,
        r.pricing_version,
        show_command(r)
    );
    let _ = writeln!(out, "\n</details>");
    out
}

/// What a change of prices does to one fleet: the total and the items that changed.
pub fn fleet_impact(title: &str, d: &CostDelta, markdown: bool) -> String {
    let mut out = String::new();
    let head = format!("Effect on {title}: {}", delta_headline(d));
    let rows = change_rows(&d.items, usize::MAX);
    let headers = ["item", "before", "after", "change", ""];
    if markdown {
        let _ = writeln!(out, "**{head}**\n");
        if !rows.is_empty() {
            out.push_str(&md_table(&headers, &CHANGE_RIGHT, &rows));
        }
    } else {
        let _ = writeln!(out, "{head}");
        if !rows.is_empty() {
            out.push_str(&text_table(&headers, &CHANGE_RIGHT, &rows));
        }
    }
    if d.items.is_empty() {
        let _ = writeln!(out, "No line of this fleet changes price.");
    }
    out
}
