//! Costs of a plan: the monthly cost of each change before and after, and the fleet's
//! total before and after applying the plan.

use std::collections::BTreeMap;

use super::{CostErrors, CostReport, Pricer};
use crate::money::{Usd, fmt_usd};
use crate::plan::{Action, Plan, PlanCost};
use crate::pricing::PriceTable;
use crate::resource::{Address, Desired, Resource, ResourceSet};

/// The fleet priced before and after a plan.
#[derive(Debug, Clone)]
pub struct PlanReports {
    /// What the observed fleet costs now.
    pub before: CostReport,
    /// What it costs once the plan is applied (only the planned changes; resources of
    /// tenants outside a `--tenant` filter stay as observed).
    pub after: CostReport,
}

/// Observed resources declare no usage: they borrow their desired counterpart's.
fn with_desired_usage(observed: &ResourceSet, desired: &Desired) -> Vec<Resource> {
    observed
        .iter()
        .map(|o| {
            let mut r = o.clone();
            if r.usage.is_none() {
                r.usage = desired
                    .resources
                    .get(&o.address)
                    .and_then(|d| d.usage.clone());
            }
            r
        })
        .collect()
}

/// Prices the observed fleet and the fleet after `plan`, then fills each change's
/// `monthly_cost_before` / `monthly_cost_after` and the plan's `cost` footer.
pub fn annotate_plan(
    plan: &mut Plan,
    table: &PriceTable,
    desired: &Desired,
    observed: &ResourceSet,
) -> Result<PlanReports, CostErrors> {
    let before_res = with_desired_usage(observed, desired);
    let mut after_map: BTreeMap<Address, Resource> = before_res
        .iter()
        .map(|r| (r.address.clone(), r.clone()))
        .collect();
    for c in &plan.changes {
        match c.action {
            Action::Delete => {
                after_map.remove(&c.address);
            }
            _ => {
                if let Some(d) = desired.resources.get(&c.address) {
                    after_map.insert(c.address.clone(), d.clone());
                }
            }
        }
    }
    let before_set = ResourceSet::new(before_res);
    let after_set = ResourceSet::new(after_map.into_values().collect());
    let before = Pricer::new(table, &before_set, &desired.default_usage).report()?;
    let after = Pricer::new(table, &after_set, &desired.default_usage).report()?;

    let monthly = |set: &ResourceSet, report: &CostReport, a: &Address| -> Option<Usd> {
        set.get(a)
            .map(|_| report.by_address.get(a).copied().unwrap_or_default())
    };
    for c in &mut plan.changes {
        c.monthly_cost_before = monthly(&before_set, &before, &c.address);
        c.monthly_cost_after = match c.action {
            Action::Delete => None,
            _ => monthly(&after_set, &after, &c.address),
        };
    }
    let u = &desired.default_usage;
    let mut assumptions = vec![
        "Machines with idle: off (or index < min_running) started all 720 h, others active_hours_per_day x 30 h; rootfs billed while not started".to_string(),
        format!(
            "default usage {} active h/day, rootfs {} GB, egress {} GB/month; observed resources use their desired counterpart's usage",
            u.active_hours_per_day.normalize(),
            u.rootfs_gb.normalize(),
            u.egress_gb_month.normalize()
        ),
        format!(
            "prices from {} (`flotilla cost SPEC` lists every line with its source)",
            table.origin
        ),
    ];
    if !after.by_item.is_empty() {
        let items: Vec<String> = after
            .by_item
            .iter()
            .map(|(k, v)| format!("{k} {}", fmt_usd(*v)))
            .collect();
        assumptions.push(format!("after the plan, by item: {}", items.join(", ")));
    }
    let mut warnings = after.warnings.clone();
    for w in &before.warnings {
        if !warnings.contains(w) {
            warnings.push(w.clone());
        }
    }
    plan.cost = Some(PlanCost {
        pricing_version: table.version().to_string(),
        monthly_before: before.total,
        monthly_after: after.total,
        delta: after.total - before.total,
        assumptions,
        warnings,
    });
    Ok(PlanReports { before, after })
}
