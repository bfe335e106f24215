//! Display figures that add up. Every amount is exact until shown; shown amounts are
//! rounded to a precision (cents in text and markdown, 4 decimals in JSON), and rounding
//! each figure on its own makes a breakdown miss its total by a few units (100 Machines at
//! $1.6822 each: lines of $1.68 sum to $168.00, the total shows $168.22).
//!
//! The rule (COSTS.md, "Exactness and rounding"): the total is rounded half away from
//! zero; every breakdown of it (lines, resources, tenants, kinds, items) is allocated by
//! the **largest-remainder method** on units of the displayed precision: each figure is
//! rounded down, and the units still missing to reach the rounded total go, one each, to
//! the figures with the largest remainders (ties: the earlier figure). A resource's
//! components are allocated the same way against the resource's displayed subtotal, so
//! the nesting adds up at every level. Every shown figure is within one unit of its exact
//! value (components within two).

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};

use super::CostReport;
use crate::money::Usd;
use crate::resource::Address;

/// Rounds half away from zero to `dp` decimals.
pub fn round(v: Decimal, dp: u32) -> Decimal {
    v.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// Allocates `values` so that they sum to `round(sum(values), dp)` exactly (the
/// largest-remainder method). See the module documentation.
pub fn allocate(values: &[Decimal], dp: u32) -> Vec<Decimal> {
    let total: Decimal = values.iter().copied().sum();
    allocate_to(values, round(total, dp), dp)
}

/// Allocates `values` so that they sum to `target` (a figure with at most `dp` decimals,
/// normally within a unit or two of their exact sum).
pub fn allocate_to(values: &[Decimal], target: Decimal, dp: u32) -> Vec<Decimal> {
    let unit = Decimal::new(1, dp);
    let mut out: Vec<Decimal> = values
        .iter()
        .map(|v| v.round_dp_with_strategy(dp, RoundingStrategy::ToNegativeInfinity))
        .collect();
    if out.is_empty() {
        return out;
    }
    let floors: Decimal = out.iter().copied().sum();
    let mut missing = ((target - floors) / unit).round();
    // Figures by remainder, largest first; ties keep their order.
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| (values[b] - out[b]).cmp(&(values[a] - out[a])));
    let mut i = 0;
    while missing > Decimal::ZERO {
        out[order[i % order.len()]] += unit;
        missing -= Decimal::ONE;
        i += 1;
    }
    // A target below the floors (only when given one): take from the smallest remainders.
    let mut j = 0;
    while missing < Decimal::ZERO {
        out[order[order.len() - 1 - (j % order.len())]] -= unit;
        missing += Decimal::ONE;
        j += 1;
    }
    out
}

/// One resource of a report as displayed: its lines (indices into the report's lines),
/// its "depends on usage" prices (indices into its `usage_rates`) and its subtotal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownResource<'a> {
    pub address: &'a Address,
    pub lines: Vec<usize>,
    pub rates: Vec<usize>,
    /// Exact sum of its lines.
    pub exact: Usd,
    /// Displayed subtotal (sums with the other resources to the displayed total).
    pub shown: Usd,
}

/// A report's figures at one display precision, allocated so that each breakdown sums
/// to the displayed total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown<'a> {
    pub dp: u32,
    pub total: Usd,
    /// Per line, in the report's order (sums to `total`, and per resource to its subtotal).
    pub lines: Vec<Usd>,
    /// Resources in the order their first line appears.
    pub resources: Vec<ShownResource<'a>>,
    pub by_tenant: BTreeMap<String, Usd>,
    pub by_kind: BTreeMap<String, Usd>,
    pub by_item: BTreeMap<String, Usd>,
}

fn allocate_map(map: &BTreeMap<String, Usd>, total: Usd, dp: u32) -> BTreeMap<String, Usd> {
    let values: Vec<Usd> = map.values().copied().collect();
    map.keys()
        .cloned()
        .zip(allocate_to(&values, total, dp))
        .collect()
}

/// Groups lines and usage rates by address: resources in the order they were priced,
/// then addresses the report did not list as resources (organization lines) in the order
/// their first line appears. Resources with neither lines nor rates are left out.
fn group(report: &CostReport) -> Vec<ShownResource<'_>> {
    let mut index: std::collections::HashMap<&Address, usize> = Default::default();
    let mut out: Vec<ShownResource<'_>> = Vec::new();
    let mut slot = |a| {
        *index.entry(a).or_insert_with(|| {
            out.push(ShownResource {
                address: a,
                lines: Vec::new(),
                rates: Vec::new(),
                exact: Decimal::ZERO,
                shown: Decimal::ZERO,
            });
            out.len() - 1
        })
    };
    for a in &report.resources {
        slot(a);
    }
    let lines: Vec<usize> = report.lines.iter().map(|l| slot(&l.address)).collect();
    let rates: Vec<usize> = report
        .usage_rates
        .iter()
        .map(|u| slot(&u.address))
        .collect();
    for (i, s) in lines.into_iter().enumerate() {
        out[s].lines.push(i);
        out[s].exact += report.lines[i].monthly;
    }
    for (i, s) in rates.into_iter().enumerate() {
        out[s].rates.push(i);
    }
    out.retain(|r| !r.lines.is_empty() || !r.rates.is_empty());
    out
}

impl<'a> Shown<'a> {
    /// The report's figures at `dp` decimals.
    pub fn new(report: &'a CostReport, dp: u32) -> Shown<'a> {
        let total = round(report.total, dp);
        let mut resources = group(report);
        let exact: Vec<Usd> = resources.iter().map(|r| r.exact).collect();
        let mut lines = vec![Decimal::ZERO; report.lines.len()];
        for (r, shown) in resources.iter_mut().zip(allocate_to(&exact, total, dp)) {
            r.shown = shown;
            let values: Vec<Usd> = r.lines.iter().map(|&i| report.lines[i].monthly).collect();
            for (&i, v) in r.lines.iter().zip(allocate_to(&values, shown, dp)) {
                lines[i] = v;
            }
        }
        Shown {
            dp,
            total,
            lines,
            resources,
            by_tenant: allocate_map(&report.by_tenant, total, dp),
            by_kind: allocate_map(&report.by_kind, total, dp),
            by_item: allocate_map(&report.by_item, total, dp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn hundred_equal_lines_sum_to_the_rounded_total() {
        // 100 × 1.682233 = 168.2233 → $168.22. Rounded one by one: 100 × $1.68 = $168.00;
        // allocated: 22 lines get $1.69 (the first 22, remainders tie) and 78 get $1.68:
        // 22 × 1.69 + 78 × 1.68 = 37.18 + 131.04 = 168.22.
        let v = vec![d("1.682233"); 100];
        let a = allocate(&v, 2);
        assert_eq!(a.iter().copied().sum::<Decimal>(), d("168.22"));
        assert_eq!(a.iter().filter(|x| **x == d("1.69")).count(), 22);
        assert_eq!(a[0], d("1.69"));
        assert_eq!(a[99], d("1.68"));
    }

    #[test]
    fn negative_figures_are_allocated_too() {
        // 10.694 + 0.29 - 0.583 = 10.401 → $10.40. Floors: 10.69 + 0.29 - 0.59 = 10.39;
        // one cent missing goes to the largest remainder: -0.583 - (-0.59) = 0.007 > 0.004.
        let a = allocate(&[d("10.694"), d("0.29"), d("-0.583")], 2);
        assert_eq!(a, vec![d("10.69"), d("0.29"), d("-0.58")]);
    }

    #[test]
    fn a_target_below_the_floors_takes_from_the_smallest_remainders() {
        let a = allocate_to(&[d("1.001"), d("1.009")], d("1.99"), 2);
        assert_eq!(a.iter().copied().sum::<Decimal>(), d("1.99"));
        assert_eq!(a, vec![d("0.99"), d("1.00")]);
    }

    proptest! {
        #[test]
        fn allocation_sums_and_stays_within_a_unit(
            cents in proptest::collection::vec(-5_000_000i64..50_000_000, 1..60),
            dp in 0u32..5,
        ) {
            // Values with 6 decimals (micro-dollars), positive and negative.
            let v: Vec<Decimal> = cents.iter().map(|c| Decimal::new(*c, 6)).collect();
            let a = allocate(&v, dp);
            let total: Decimal = v.iter().copied().sum();
            prop_assert_eq!(a.iter().copied().sum::<Decimal>(), round(total, dp));
            let unit = Decimal::new(1, dp);
            for (x, y) in v.iter().zip(&a) {
                prop_assert!((*x - *y).abs() < unit, "{} shown as {}", x, y);
            }
        }
    }
}
