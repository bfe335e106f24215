//! Cost reports as text (terminal), JSON (the contract in ARCHITECTURE.md) and markdown
//! (a pull-request comment). Rendering only: every figure comes computed in the report.

use std::fmt::Write as _;

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{Change, ChangeStatus, CostDelta, CostReport, LineItem, ORG, SHARED, Verdict};
use crate::money::{Usd, fmt_delta, fmt_percent, fmt_rate, fmt_usd, json_decimal, json_usd};
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

fn month_note(report: &CostReport) -> String {
    format!(
        "pricing fly/{} · a month is {} days = {} hours",
        report.pricing_version, report.assumptions.month_days, report.assumptions.hours_per_month
    )
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
                fmt_delta(c.delta),
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

/// `$22.28 → $44.18 per month (+$21.90, +98.3%)`.
fn delta_headline(d: &CostDelta) -> String {
    format!(
        "{} → {} per month ({}{})",
        fmt_usd(d.base_total),
        fmt_usd(d.head_total),
        fmt_delta(d.delta),
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

/// The terminal report: totals, breakdowns, every line, assumptions and warnings.
pub fn text(v: &View<'_>) -> String {
    let r = v.report;
    let mut out = String::new();
    let _ = writeln!(out, "Cost of {}: {}", v.title, headline(v));
    let _ = writeln!(out, "  ({})", month_note(r));
    if let Some((base, d)) = v.base {
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
        }
    }
    for (title, key, map) in [
        ("By tenant:", "tenant", &r.by_tenant),
        ("By kind:", "kind", &r.by_kind),
        ("By item:", "item", &r.by_item),
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
    let _ = writeln!(out, "Lines:");
    let rows: Vec<Vec<Cow<'_, str>>> = r
        .lines
        .iter()
        .map(|l| {
            vec![
                Cow::Borrowed(l.address.as_str()),
                Cow::Borrowed(l.item.as_str()),
                Cow::Borrowed(l.description.as_str()),
                Cow::Owned(line_quantity(l)),
                Cow::Owned(fmt_rate(l.unit_price)),
                Cow::Owned(fmt_usd(l.monthly)),
            ]
        })
        .collect();
    out.push_str(&text_table(
        &[
            "resource",
            "item",
            "what",
            "quantity",
            "unit price",
            "monthly",
        ],
        &[false, false, false, true, true, true],
        &rows,
    ));
    let _ = writeln!(out, "  total: {}", fmt_usd(r.total));
    out.push_str(&super::allowance::text_section(r.plan.as_ref()));
    out.push_str(&super::advice::text_section(&r.reservation_advice));
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
        "  - Prices: {} (see `flotilla pricing show {}` for every row and source).",
        r.assumptions.pricing_origin, r.pricing_version
    );
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

struct MoneyMap<'a>(&'a BTreeMap<String, Usd>);

impl Serialize for MoneyMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, Money(*v))))
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
    monthly_usd: Money,
    pricing_version: NaiveDate,
    sources: SourceIds<'a>,
    assumptions: &'a [String],
}

struct JsonLines<'a>(&'a [LineItem]);

impl Serialize for JsonLines<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|l| JsonLine {
            address: l.address.as_str(),
            kind: l.kind,
            tenant: l.tenant.as_deref(),
            app: l.app.as_deref(),
            item: l.item.as_str(),
            description: &l.description,
            quantity: Num6(l.quantity),
            unit: l.unit,
            unit_price_usd: Num6(l.unit_price),
            monthly_usd: Money(l.monthly),
            pricing_version: l.pricing_version,
            sources: SourceIds(&l.sources),
            assumptions: &l.assumptions,
        }))
    }
}

#[derive(Serialize)]
struct JsonChange<'a> {
    key: &'a str,
    status: &'static str,
    before_usd: Money,
    after_usd: Money,
    delta_usd: Money,
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
    by_tenant: MoneyMap<'a>,
    by_kind: MoneyMap<'a>,
    by_item: MoneyMap<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<JsonDelta<'a>>,
    lines: JsonLines<'a>,
    assumptions: JsonAssumptions<'a>,
    citations: BTreeMap<String, JsonCitation<'a>>,
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<super::allowance::JsonPlan<'a>>,
    #[serde(skip_serializing_if = "super::advice::JsonAdvice::is_empty")]
    reservation_advice: super::advice::JsonAdvice<'a>,
}

fn json_report<'a>(v: &View<'a>) -> JsonReport<'a> {
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
        by_tenant: MoneyMap(&r.by_tenant),
        by_kind: MoneyMap(&r.by_kind),
        by_item: MoneyMap(&r.by_item),
        changes: delta.map(|d| JsonDelta {
            tenants: JsonChanges(&d.tenants),
            addresses: JsonChanges(&d.addresses),
            kinds: JsonChanges(&d.kinds),
            items: JsonChanges(&d.items),
        }),
        lines: JsonLines(&r.lines),
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
    serde_json::to_value(json_report(v)).map_err(json_failed)
}

/// The JSON report as pretty-printed text (what `--format json` prints).
pub fn json_string(v: &View<'_>) -> Result<String, crate::diag::Diagnostic> {
    serde_json::to_string_pretty(&json_report(v))
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

/// A pull-request comment: headline delta, changed tenants, budget verdict, a collapsible
/// full breakdown, assumptions and the pricing version.
pub fn markdown(v: &View<'_>) -> String {
    let r = v.report;
    let mut out = String::new();
    let _ = writeln!(out, "{MARKDOWN_MARKER}");
    let _ = writeln!(out, "### Cost preview: `{}`", v.title);
    out.push('\n');
    let _ = writeln!(out, "**Monthly cost: {}**", headline(v));
    out.push('\n');
    let _ = writeln!(out, "_{}_", month_note(r));
    out.push('\n');
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
                "<details><summary>Resources whose cost changed ({})</summary>\n",
                d.addresses.len()
            );
            out.push_str(&md_table(
                &["Resource", "Before", "After", "Change", ""],
                &CHANGE_RIGHT,
                &change_rows(&d.addresses, MARKDOWN_MAX_ROWS),
            ));
            out.push_str(&more_rows(
                d.addresses.len(),
                MARKDOWN_MAX_ROWS,
                "resources",
            ));
            let _ = writeln!(out, "\n</details>\n");
        }
    }
    out.push_str(&super::allowance::markdown_section(r.plan.as_ref()));
    out.push_str(&super::advice::markdown_section(&r.reservation_advice));
    let tenants = r.tenant_count();
    let _ = writeln!(
        out,
        "<details><summary>Full breakdown: {} tenants, {} lines</summary>\n",
        tenants,
        r.lines.len()
    );
    for (key, map) in [("Kind", &r.by_kind), ("Item", &r.by_item)] {
        out.push_str(&md_table(
            &[key, "Monthly"],
            &[false, true],
            &money_rows(map.iter()),
        ));
        out.push('\n');
    }
    let mut tenant_rows: Vec<(&String, &Usd)> = r.by_tenant.iter().collect();
    tenant_rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let shown: Vec<Vec<String>> = tenant_rows
        .iter()
        .take(MARKDOWN_MAX_ROWS)
        .map(|(k, v)| vec![(*k).clone(), fmt_usd(**v)])
        .collect();
    out.push_str(&md_table(&["Tenant", "Monthly"], &[false, true], &shown));
    out.push_str(&more_rows(tenant_rows.len(), MARKDOWN_MAX_ROWS, "tenants"));
    out.push('\n');
    let line_rows: Vec<Vec<String>> = r
        .lines
        .iter()
        .take(MARKDOWN_MAX_ROWS)
        .map(|l| {
            vec![
                format!("`{}`", l.address),
                l.description.clone(),
                line_quantity(l),
                fmt_rate(l.unit_price),
                fmt_usd(l.monthly),
            ]
        })
        .collect();
    out.push_str(&md_table(
        &["Resource", "What", "Quantity", "Unit price", "Monthly"],
        &[false, false, true, true, true],
        &line_rows,
    ));
    out.push_str(&more_rows(r.lines.len(), MARKDOWN_MAX_ROWS, "lines"));
    let _ = writeln!(out, "\n</details>\n");
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
        "- Prices: {} (pricing version {}).",
        r.assumptions.pricing_origin, r.pricing_version
    );
    let _ = writeln!(out, "\n</details>");
    if !r.warnings.is_empty() {
        out.push('\n');
        let _ = writeln!(
            out,
            "<details><summary>Warnings: {} unpublished figure{}</summary>\n",
            r.warnings.len(),
            if r.warnings.len() == 1 { "" } else { "s" }
        );
        for w in &r.warnings {
            let _ = writeln!(out, "- {}", md_escape(w));
        }
        let _ = writeln!(out, "\n</details>");
    }
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
