//! The organization's plan on the bill: the plan fee, the usage it includes and the free
//! allowances of `allowances.csv`, each applied once per report as its own line. Free
//! allowances never take more off than the fleet uses, so no total goes below zero.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde::Serialize;

use super::{CostError, Item, LineItem, ORG_KIND};
use crate::money::{HOURS_PER_MONTH, Usd, fmt_usd};
use crate::platform::{CpuKind, OrgPlan, PlanChoice};
use crate::pricing::{AllowanceItem, AllowanceRow, PriceTable, Row, SourceRef, TableName};
use crate::resource::Address;

/// What the report says about the organization's plan (present when the plan has a fee
/// or free allowances in the pricing version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanNote {
    pub plan: OrgPlan,
    /// The organization kept the plan from before Fly stopped offering it.
    pub legacy: bool,
    /// Whether Fly offers the plan to new organizations at the pricing date.
    pub offered_to_new_orgs: bool,
    pub fee: Usd,
    pub usage_credit: Usd,
    /// The free allowances the version grants the plan, one phrase each.
    pub allowances: Vec<String>,
    /// What the plan's lines add up to (fee minus allowances and credit).
    pub monthly: Usd,
}

/// Quantities of the lines a free allowance can cover, keyed by item, the row the line's
/// price came from and the line's unit price.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Coverable(BTreeMap<(Item, SourceRef, Decimal), Decimal>);

impl Coverable {
    /// Records a line if an allowance could cover it (compute, volume, internet egress).
    pub fn add(&mut self, l: &LineItem) {
        if matches!(l.item, Item::Compute | Item::Volume | Item::Egress)
            && let Some(s) = l.sources.first()
        {
            *self.0.entry((l.item, *s, l.unit_price)).or_default() += l.quantity;
        }
    }

    /// The coverable lines of `lines`.
    pub fn of_lines<'l>(lines: impl IntoIterator<Item = &'l LineItem>) -> Self {
        let mut c = Coverable::default();
        lines.into_iter().for_each(|l| c.add(l));
        c
    }

    /// Adds `k` copies of another set's quantities (a unit counted `k` times).
    pub fn add_scaled(&mut self, other: &Coverable, k: Decimal) {
        if k.is_zero() {
            return;
        }
        for (key, q) in &other.0 {
            *self.0.entry(*key).or_default() += k * q;
        }
    }

    /// What every coverable quantity is worth at its unit price: the most the free
    /// allowances could take off these lines.
    pub fn value(&self) -> Usd {
        self.0.iter().map(|((_, _, price), q)| price * q).sum()
    }

    /// The dearest unit price among the coverable lines.
    pub fn max_price(&self) -> Decimal {
        self.0
            .keys()
            .map(|(_, _, price)| *price)
            .max()
            .unwrap_or_default()
    }

    /// `(unit price, quantity)` of an item's lines whose row passes `keep`, dearest first.
    fn of(&self, item: Item, keep: impl Fn(SourceRef) -> bool) -> Vec<(Decimal, Decimal)> {
        let mut by_price: BTreeMap<Decimal, Decimal> = BTreeMap::new();
        for ((i, s, price), q) in &self.0 {
            if *i == item && keep(*s) {
                *by_price.entry(*price).or_default() += *q;
            }
        }
        by_price.into_iter().rev().collect()
    }
}

/// The plan's rows, or why the report cannot use them.
pub fn plan_problem(table: &PriceTable, choice: PlanChoice) -> Option<CostError> {
    let rows = table.plan_rows(choice.plan);
    let address = Address::org_line("plan");
    let Some(first) = rows.first() else {
        return Some(CostError {
            address,
            message: format!(
                "org_plan `{}` has no rows in pricing {} ({})",
                choice.plan.code(),
                table.version(),
                TableName::Allowances.file()
            ),
            hint: "add the plan's rows to allowances.csv of a --pricing DIR, or choose another org_plan".into(),
        });
    };
    if first.new_orgs || choice.legacy || choice.plan == OrgPlan::PayAsYouGo {
        return None;
    }
    Some(CostError {
        address,
        message: format!(
            "Fly no longer offers the {} plan to new organizations in pricing {} ({}:{}); only organizations already on it keep it and its free allowances",
            choice.plan.title(),
            table.version(),
            TableName::Allowances.file(),
            first.prov.line
        ),
        hint: format!(
            "set `org_plan_legacy: true` if the organization has been on {} since before then, or price it as `org_plan: pay_as_you_go`",
            choice.plan.title()
        ),
    })
}

/// A consumer of free quantity: takes from the dearest lines first.
fn take(free: Decimal, lines: &[(Decimal, Decimal)]) -> (Decimal, Usd) {
    let (mut left, mut used, mut value) = (free, Decimal::ZERO, Decimal::ZERO);
    for (price, q) in lines {
        let n = left.min(*q);
        used += n;
        value += n * price;
        left -= n;
        if left.is_zero() {
            break;
        }
    }
    (used, value)
}

fn org_line(
    table: &PriceTable,
    row: &AllowanceRow,
    (address, item): (String, Item),
    description: String,
    (quantity, unit): (Decimal, &'static str),
    monthly: Usd,
) -> LineItem {
    let unit_price = if quantity.is_zero() {
        Decimal::ZERO
    } else {
        monthly / quantity
    };
    LineItem {
        address: Address::org_line(&address),
        kind: ORG_KIND,
        tenant: None,
        app: None,
        item,
        description,
        quantity,
        unit,
        unit_price,
        monthly,
        pricing_version: table.version(),
        region: None,
        cpu_kind: None,
        sources: vec![row.source_ref()],
        assumptions: vec![format!(
            "org_plan {}: {} {} ({}); applied once to the whole report",
            row.plan.code(),
            row.amount.normalize(),
            row.item.unit(),
            row.item.code()
        )],
    }
}

/// Whether a compute row is the `shared-cpu-1x` 256 MB preset.
fn is_free_preset(table: &PriceTable, s: SourceRef) -> bool {
    s.table == TableName::Compute
        && table.compute.iter().any(|r| {
            r.prov.line == s.line
                && r.cpu_kind == CpuKind::Shared
                && r.cpus == 1
                && r.base_memory_mb == 256
        })
}

/// What one free-allowance row covers of a report's lines.
struct Coverage {
    item: Item,
    /// The row's free quantity (hours for VMs, GB-months for volumes, GB for egress).
    free: Decimal,
    /// How much of it the lines use.
    used: Decimal,
    /// What the used quantity is worth (positive).
    value: Usd,
}

/// The coverage of a free-allowance row (none for a fee or included usage).
fn coverage(table: &PriceTable, row: &AllowanceRow, cov: &Coverable) -> Option<Coverage> {
    let (item, free, lines) = match row.item {
        AllowanceItem::SharedCpu1x => (
            Item::VmAllowance,
            row.amount * Decimal::from(HOURS_PER_MONTH),
            cov.of(Item::Compute, |s| is_free_preset(table, s)),
        ),
        AllowanceItem::VolumeGb => (
            Item::VolumeAllowance,
            row.amount,
            cov.of(Item::Volume, |_| true),
        ),
        AllowanceItem::EgressGb => {
            let group_of = |s: SourceRef| {
                table
                    .bandwidth
                    .iter()
                    .find(|b| s.table == TableName::Bandwidth && b.prov.line == s.line)
                    .map(|b| b.group)
            };
            (
                Item::EgressAllowance,
                row.amount,
                cov.of(Item::Egress, |s| group_of(s).is_some_and(|g| row.covers(g))),
            )
        }
        AllowanceItem::Fee | AllowanceItem::UsageCredit => return None,
    };
    let (used, value) = take(free, &lines);
    Some(Coverage {
        item,
        free,
        used,
        value,
    })
}

/// The free allowance of one row as a negative line (none when nothing is covered).
fn allowance_line(table: &PriceTable, row: &AllowanceRow, cov: &Coverable) -> Option<LineItem> {
    let c = coverage(table, row, cov)?;
    if c.used.is_zero() || c.value.is_zero() {
        return None;
    }
    let amount = row.amount.normalize();
    let (unit, address, what) = match row.item {
        AllowanceItem::SharedCpu1x => (
            "h",
            "vm_allowance".to_string(),
            format!("{amount} shared-cpu-1x VMs"),
        ),
        AllowanceItem::VolumeGb => (
            "GB-month",
            "volume_allowance".to_string(),
            format!("{amount} GB volumes"),
        ),
        _ => (
            "GB",
            format!("egress_allowance_{}", row.groups_code().replace('+', "_")),
            format!(
                "{amount} GB egress ({})",
                row.groups_code().replace('+', ", ")
            ),
        ),
    };
    Some(org_line(
        table,
        row,
        (address, c.item),
        format!(
            "free allowance: {what}, {} of {} {unit} used",
            c.used.normalize(),
            c.free.normalize()
        ),
        (c.used, unit),
        -c.value,
    ))
}

/// The plan's lines: free allowances, then the included usage (at most what is left of
/// the bill), then the fee. `billed` is the report's total before them.
pub(super) fn plan_lines(
    table: &PriceTable,
    choice: PlanChoice,
    cov: &Coverable,
    billed: Usd,
) -> Vec<LineItem> {
    let rows = table.plan_rows(choice.plan);
    let mut out: Vec<LineItem> = rows
        .iter()
        .filter_map(|r| allowance_line(table, r, cov))
        .collect();
    let left = (billed + out.iter().map(|l| l.monthly).sum::<Decimal>()).max(Decimal::ZERO);
    for row in &rows {
        match row.item {
            AllowanceItem::UsageCredit if !left.is_zero() && !row.amount.is_zero() => {
                let credit = row.amount.min(left);
                out.push(org_line(
                    table,
                    row,
                    ("usage_credit".into(), Item::UsageCredit),
                    format!(
                        "usage included in the {} plan: {} of {}",
                        choice.plan.title(),
                        fmt_usd(credit),
                        fmt_usd(row.amount)
                    ),
                    (Decimal::ONE, "month"),
                    -credit,
                ));
            }
            AllowanceItem::Fee if !row.amount.is_zero() => out.push(org_line(
                table,
                row,
                ("plan_fee".into(), Item::PlanFee),
                format!("{} plan fee", choice.plan.title()),
                (Decimal::ONE, "month"),
                row.amount,
            )),
            _ => {}
        }
    }
    out
}

/// What the organization's plan does to a bill, without its lines (the what-if fast path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanEffect {
    /// What the plan's lines add up to (fee minus allowances and included usage).
    pub monthly: Usd,
    /// A free allowance is not used up: more usage would be covered too.
    pub allowance_left: bool,
    /// Included usage is not used up: more usage would cost nothing.
    pub credit_left: bool,
}

/// The most the plan's free allowances can take off any bill whose coverable lines cost
/// at most `price` a unit.
pub fn free_value_cap(table: &PriceTable, choice: PlanChoice, price: Decimal) -> Usd {
    table
        .plan_rows(choice.plan)
        .iter()
        .map(|r| match r.item {
            AllowanceItem::SharedCpu1x => r.amount * Decimal::from(HOURS_PER_MONTH) * price,
            AllowanceItem::VolumeGb | AllowanceItem::EgressGb => r.amount * price,
            AllowanceItem::Fee | AllowanceItem::UsageCredit => Decimal::ZERO,
        })
        .sum()
}

/// Whether the plan has a fee, included usage or free allowances in the version.
pub fn plan_applies(table: &PriceTable, choice: PlanChoice) -> bool {
    table
        .plan_rows(choice.plan)
        .iter()
        .any(|r| !r.amount.is_zero())
}

/// The effect of the plan on a bill of `billed` whose coverable lines are `cov`: the sum
/// of [`plan_lines`] and whether its allowances and included usage are used up.
pub fn plan_effect(
    table: &PriceTable,
    choice: PlanChoice,
    cov: &Coverable,
    billed: Usd,
) -> PlanEffect {
    let rows = table.plan_rows(choice.plan);
    let covered: Vec<Coverage> = rows
        .iter()
        .filter_map(|r| coverage(table, r, cov))
        .collect();
    let taken: Usd = covered.iter().map(|c| c.value).sum();
    let left = (billed - taken).max(Decimal::ZERO);
    let mut effect = PlanEffect {
        monthly: -taken,
        allowance_left: covered.iter().any(|c| c.used < c.free),
        credit_left: false,
    };
    for row in &rows {
        match row.item {
            AllowanceItem::UsageCredit if !row.amount.is_zero() => {
                effect.monthly -= row.amount.min(left);
                effect.credit_left |= left < row.amount;
            }
            AllowanceItem::Fee => effect.monthly += row.amount,
            _ => {}
        }
    }
    effect
}

/// The report's note about the plan: present when the plan has a fee, included usage or
/// free allowances in the version.
pub(super) fn plan_note(
    table: &PriceTable,
    choice: PlanChoice,
    lines: &[LineItem],
) -> Option<PlanNote> {
    let rows = table.plan_rows(choice.plan);
    if rows.iter().all(|r| r.amount.is_zero()) {
        return None;
    }
    let amount = |item| {
        rows.iter()
            .find(|r| r.item == item)
            .map(|r| r.amount)
            .unwrap_or_default()
    };
    let allowances = rows
        .iter()
        .filter_map(|r| match r.item {
            AllowanceItem::SharedCpu1x => {
                Some(format!("{} shared-cpu-1x 256 MB VMs", r.amount.normalize()))
            }
            AllowanceItem::VolumeGb => Some(format!("{} GB of volumes", r.amount.normalize())),
            AllowanceItem::EgressGb => Some(format!(
                "{} GB of egress ({})",
                r.amount.normalize(),
                r.groups_code().replace('+', ", ")
            )),
            AllowanceItem::Fee | AllowanceItem::UsageCredit => None,
        })
        .collect();
    Some(PlanNote {
        plan: choice.plan,
        legacy: choice.legacy,
        offered_to_new_orgs: rows.first().is_some_and(|r| r.new_orgs),
        fee: amount(AllowanceItem::Fee),
        usage_credit: amount(AllowanceItem::UsageCredit),
        allowances,
        monthly: lines
            .iter()
            .filter(|l| l.item.is_plan())
            .map(|l| l.monthly)
            .sum(),
    })
}

impl PlanNote {
    /// One sentence: the plan, its fee and credit, its allowances, what its lines add up
    /// to.
    pub fn sentence(&self) -> String {
        let mut s = self.terms();
        let _ = write!(
            s,
            ". Its lines add {} to the month.",
            crate::money::fmt_delta(self.monthly)
        );
        s
    }

    /// The plan, its fee and included usage, and its free allowances (no full stop).
    pub fn terms(&self) -> String {
        let mut s = format!("Organization plan: {}", self.plan.title());
        if self.legacy || !self.offered_to_new_orgs && self.plan != OrgPlan::PayAsYouGo {
            s.push_str(" (legacy: kept from before Fly stopped offering it)");
        }
        if !self.fee.is_zero() {
            let _ = write!(s, ", {} a month", fmt_usd(self.fee));
            if !self.usage_credit.is_zero() {
                let _ = write!(s, " including {} of usage", fmt_usd(self.usage_credit));
            }
        }
        if self.allowances.is_empty() {
            s.push_str("; no free allowances");
        } else {
            let _ = write!(s, "; free allowances: {}", self.allowances.join(", "));
        }
        s
    }
}

/// The plan section of the terminal report (empty when there is no note).
pub fn text_section(note: Option<&PlanNote>) -> String {
    note.map(|n| format!("\n{}\n", n.sentence()))
        .unwrap_or_default()
}

/// The plan section of the markdown report (empty when there is no note).
pub fn markdown_section(note: Option<&PlanNote>) -> String {
    note.map(|n| format!("\n> {}\n", n.sentence()))
        .unwrap_or_default()
}

/// The plan note in the JSON report (money as JSON numbers).
pub struct JsonPlan<'a>(pub &'a PlanNote);

impl Serialize for JsonPlan<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        serde_json::json!({
            "plan": n.plan.code(),
            "legacy": n.legacy,
            "offered_to_new_orgs": n.offered_to_new_orgs,
            "fee_usd": crate::money::json_usd(n.fee),
            "usage_credit_usd": crate::money::json_usd(n.usage_credit),
            "allowances": n.allowances,
            "monthly_usd": crate::money::json_usd(n.monthly),
            "summary": n.sentence(),
        })
        .serialize(s)
    }
}
