//! Reservation advice for `flotilla cost`: for the fleet's always-on compute in each
//! region and CPU class, the cheapest set of Fly's reservation blocks
//! ([`cheapest_reservation`]), what it saves a month, and the utilisation below which the
//! blocks stop paying for themselves. Only pricing versions that offer blocks give
//! advice, and only where a block saves money.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Serialize, Serializer};

use super::{Item, LineItem, ReservationPlan, cheapest_reservation};
use crate::money::{Usd, fmt_usd, json_decimal, json_usd, shown_delta};
use crate::platform::CpuKind;
use crate::pricing::PriceTable;
use crate::pricing::render::{md_table, text_table};

/// Blocks worth buying for one region and CPU class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockAdvice {
    /// The blocks and what they cost and save against the always-on compute spend.
    pub plan: ReservationPlan,
    /// The share of the month the Machines must run for the blocks to cost no more than
    /// paying on demand: amortized cost / always-on spend (valid while the credits cover
    /// the spend, which they do at the break-even point since blocks cost less than their
    /// credit).
    pub break_even_utilisation: Decimal,
}

/// CPU and additional-RAM spend of Machines started all 720 hours, per region and class.
/// A RAM line belongs to the compute line before it (a Machine's lines are adjacent).
pub fn always_on_spend(lines: &[LineItem]) -> BTreeMap<(String, CpuKind), Usd> {
    let mut out: BTreeMap<(String, CpuKind), Usd> = BTreeMap::new();
    let full = Decimal::from(crate::money::HOURS_PER_MONTH);
    let mut on = false;
    for l in lines {
        if l.item == Item::Compute {
            on = l.unit == "h" && l.quantity == full;
        }
        if !(on && l.item.is_reservable()) {
            continue;
        }
        if let (Some(region), Some(kind)) = (&l.region, l.cpu_kind) {
            *out.entry((region.clone(), kind)).or_default() += l.monthly;
        }
    }
    out
}

/// The blocks that save money on the always-on compute of `lines` (none before Fly
/// offered blocks, none where no block pays off).
pub fn advise(table: &PriceTable, lines: &[LineItem]) -> Vec<BlockAdvice> {
    if table.reservations.is_empty() {
        return Vec::new();
    }
    always_on_spend(lines)
        .into_iter()
        .map(|((region, kind), spend)| cheapest_reservation(table, &region, kind, spend))
        .filter(|p| !p.blocks.is_empty() && p.savings_monthly > Decimal::ZERO)
        .map(|plan| BlockAdvice {
            break_even_utilisation: plan.amortized_monthly / plan.on_demand_monthly,
            plan,
        })
        .collect()
}

fn percent(share: Decimal) -> String {
    let p = (share * Decimal::from(100))
        .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
    format!("{p:.1}%")
}

fn blocks_cell(p: &ReservationPlan) -> String {
    p.blocks
        .iter()
        .map(|b| {
            format!(
                "{} x {}/yr ({}/mo credit)",
                b.count,
                fmt_usd(b.upfront_per_year),
                fmt_usd(b.credit_per_month)
            )
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

const HEADERS: [&str; 7] = [
    "region",
    "class",
    "blocks",
    "on demand",
    "with blocks",
    "saving",
    "break-even",
];
const RIGHT: [bool; 7] = [false, false, false, true, true, true, true];

fn rows(advice: &[BlockAdvice]) -> Vec<Vec<String>> {
    advice
        .iter()
        .map(|a| {
            let p = &a.plan;
            vec![
                p.region.clone(),
                p.cpu_kind.as_str().to_string(),
                blocks_cell(p),
                fmt_usd(p.on_demand_monthly),
                fmt_usd(p.monthly_with_blocks),
                // The saving shown is that of the two figures beside it.
                fmt_usd(shown_delta(p.monthly_with_blocks, p.on_demand_monthly)),
                percent(a.break_even_utilisation),
            ]
        })
        .collect()
}

fn total_saving(advice: &[BlockAdvice]) -> Usd {
    advice.iter().map(|a| a.plan.savings_monthly).sum()
}

const EXPLAIN: &str = "Always-on compute (CPU and additional RAM of Machines started all 720 h) per region and CPU class; a block is paid yearly up front (shown per month) for a monthly credit that does not roll over. Break-even: the share of the month the Machines must run for the blocks to cost no more than on demand.";

/// The advice section of the terminal report (empty without advice).
pub fn text_section(advice: &[BlockAdvice]) -> String {
    if advice.is_empty() {
        return String::new();
    }
    format!(
        "\nReservation blocks: save {} per month\n{}  ({EXPLAIN})\n",
        fmt_usd(total_saving(advice)),
        text_table(&HEADERS, &RIGHT, &rows(advice))
    )
}

/// The advice section of the markdown report (empty without advice).
pub fn markdown_section(advice: &[BlockAdvice]) -> String {
    if advice.is_empty() {
        return String::new();
    }
    format!(
        "\n**Reservation blocks: save {} per month**\n\n{}\n_{EXPLAIN}_\n",
        fmt_usd(total_saving(advice)),
        md_table(&HEADERS, &RIGHT, &rows(advice))
    )
}

/// The advice in the JSON report: money as JSON numbers (at most 4 decimals), the
/// break-even share with 4.
pub struct JsonAdvice<'a>(pub &'a [BlockAdvice]);

impl JsonAdvice<'_> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for JsonAdvice<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<serde_json::Value> = self
            .0
            .iter()
            .map(|a| {
                let p = &a.plan;
                serde_json::json!({
                    "region": p.region,
                    "cpu_kind": p.cpu_kind.as_str(),
                    "blocks": p.blocks.iter().map(|b| serde_json::json!({
                        "count": b.count,
                        "upfront_per_year_usd": json_usd(b.upfront_per_year),
                        "credit_per_month_usd": json_usd(b.credit_per_month),
                    })).collect::<Vec<_>>(),
                    "on_demand_monthly_usd": json_usd(p.on_demand_monthly),
                    "upfront_per_year_usd": json_usd(p.upfront_per_year),
                    "amortized_monthly_usd": json_usd(p.amortized_monthly),
                    "uncovered_monthly_usd": json_usd(p.uncovered_monthly),
                    "monthly_with_blocks_usd": json_usd(p.monthly_with_blocks),
                    "savings_monthly_usd": json_usd(p.savings_monthly),
                    "break_even_utilisation": json_decimal(a.break_even_utilisation, 4),
                })
            })
            .collect();
        v.serialize(s)
    }
}
