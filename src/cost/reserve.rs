//! Reservation blocks: given the monthly compute spend of one region and CPU class, the
//! cheapest combination of blocks. A block is paid yearly up front and grants a monthly
//! credit for CPU and additional RAM in that region and class; unused credit is lost.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;

use super::CostReport;
use crate::money::Usd;
use crate::platform::CpuKind;
use crate::pricing::{PriceTable, ReservationRow, Row, SourceRef};

/// How many of one block size to buy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockChoice {
    pub upfront_per_year: Usd,
    pub credit_per_month: Usd,
    pub count: u32,
    pub source: SourceRef,
}

/// The cheapest block combination for one region and CPU class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReservationPlan {
    pub region: String,
    pub cpu_kind: CpuKind,
    /// Compute spend per month without blocks.
    pub on_demand_monthly: Usd,
    /// Blocks to buy (only sizes with a count above zero); empty when none pays off.
    pub blocks: Vec<BlockChoice>,
    pub upfront_per_year: Usd,
    pub credits_per_month: Usd,
    /// The up-front payments spread over 12 months.
    pub amortized_monthly: Usd,
    /// Spend the credits do not cover.
    pub uncovered_monthly: Usd,
    /// `amortized_monthly + uncovered_monthly`.
    pub monthly_with_blocks: Usd,
    pub savings_monthly: Usd,
}

/// Compute spend (CPU and additional RAM lines) per region and CPU class in a report:
/// what reservation credits can cover.
pub fn reservation_spend(report: &CostReport) -> BTreeMap<(String, CpuKind), Usd> {
    let mut out: BTreeMap<(String, CpuKind), Usd> = BTreeMap::new();
    for l in &report.lines {
        if let (true, Some(region), Some(kind)) = (l.item.is_reservable(), &l.region, l.cpu_kind) {
            *out.entry((region.clone(), kind)).or_insert(Decimal::ZERO) += l.monthly;
        }
    }
    out
}

struct Search<'a> {
    blocks: Vec<&'a ReservationRow>,
    spend: Usd,
    counts: Vec<u32>,
    best_cost: Usd,
    best_amortized: Usd,
    best: Vec<u32>,
}

impl Search<'_> {
    /// Enumerates counts block by block (largest credit first). A block never needs more
    /// copies than cover the remaining spend, nor as many as would match a larger block's
    /// credit at no lower price (one larger block would do at least as well).
    fn run(&mut self, i: usize, credits: Usd, amortized: Usd) {
        if i == self.blocks.len() {
            let uncovered = (self.spend - credits).max(Decimal::ZERO);
            let cost = amortized + uncovered;
            if cost < self.best_cost || (cost == self.best_cost && amortized < self.best_amortized)
            {
                self.best_cost = cost;
                self.best_amortized = amortized;
                self.best = self.counts.clone();
            }
            return;
        }
        let b = self.blocks[i];
        let remaining = (self.spend - credits).max(Decimal::ZERO);
        let mut max_n = (remaining / b.credit_per_month)
            .ceil()
            .to_u32()
            .unwrap_or(u32::MAX);
        for larger in &self.blocks[..i] {
            let by_credit = (larger.credit_per_month / b.credit_per_month).ceil();
            let by_price = (larger.upfront_per_year / b.upfront_per_year).ceil();
            let k = by_credit.max(by_price).to_u32().unwrap_or(u32::MAX);
            max_n = max_n.min(k.saturating_sub(1));
        }
        for n in 0..=max_n {
            self.counts[i] = n;
            let nd = Decimal::from(n);
            self.run(
                i + 1,
                credits + nd * b.credit_per_month,
                amortized + nd * b.upfront_per_year / Decimal::from(12),
            );
        }
        self.counts[i] = 0;
    }
}

/// The cheapest combination of `table`'s blocks for `cpu_kind` covering a monthly compute
/// spend in `region` (none when no combination beats paying on demand).
pub fn cheapest_reservation(
    table: &PriceTable,
    region: &str,
    cpu_kind: CpuKind,
    monthly_spend: Usd,
) -> ReservationPlan {
    let spend = monthly_spend.max(Decimal::ZERO);
    let blocks = table.reservations(cpu_kind);
    let n = blocks.len();
    let mut s = Search {
        blocks,
        spend,
        counts: vec![0; n],
        best_cost: spend,
        best_amortized: Decimal::ZERO,
        best: vec![0; n],
    };
    s.run(0, Decimal::ZERO, Decimal::ZERO);
    let chosen: Vec<BlockChoice> = s
        .blocks
        .iter()
        .zip(&s.best)
        .filter(|(_, c)| **c > 0)
        .map(|(b, c)| BlockChoice {
            upfront_per_year: b.upfront_per_year,
            credit_per_month: b.credit_per_month,
            count: *c,
            source: b.source_ref(),
        })
        .collect();
    let upfront: Usd = chosen
        .iter()
        .map(|b| b.upfront_per_year * Decimal::from(b.count))
        .sum();
    let credits: Usd = chosen
        .iter()
        .map(|b| b.credit_per_month * Decimal::from(b.count))
        .sum();
    let amortized = upfront / Decimal::from(12);
    let uncovered = (spend - credits).max(Decimal::ZERO);
    ReservationPlan {
        region: region.to_string(),
        cpu_kind,
        on_demand_monthly: spend,
        blocks: chosen,
        upfront_per_year: upfront,
        credits_per_month: credits,
        amortized_monthly: amortized,
        uncovered_monthly: uncovered,
        monthly_with_blocks: amortized + uncovered,
        savings_monthly: spend - (amortized + uncovered),
    }
}
