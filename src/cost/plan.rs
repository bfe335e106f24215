//! Costs of a plan: the monthly cost of each change before and after, and the fleet's
//! total before and after applying the plan.

use foldhash::HashMap;

use super::{CostErrors, Pricer};
use crate::money::fmt_usd;
use crate::plan::{Action, FleetLockCost, Plan, PlanCost};
use crate::pricing::PriceTable;
use crate::resource::{Address, Cursor, Desired, Resource, ResourceSet};

/// The fleet after `plan`: observed resources in their order, each replaced by its
/// desired counterpart when a change touches it and dropped when deleted, then the
/// desired resources the plan creates. Resources of tenants outside a `--tenant` filter
/// stay as observed. Nothing is copied.
///
/// Also where each change's resource is in that list (none for a deletion), so its cost
/// is read by position. A plan has one change per address, and the list holds each
/// address once.
fn after_plan<'a>(
    plan: &Plan,
    desired: &'a Desired,
    observed: &'a ResourceSet,
) -> (Vec<&'a Resource>, Vec<Option<usize>>) {
    let mut after = Vec::with_capacity(observed.len().max(desired.resources.len()));
    let mut at = vec![None; plan.changes.len()];
    if !observed.is_empty() {
        let changes: HashMap<&Address, usize> = plan
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| (&c.address, i))
            .collect();
        for o in observed.iter() {
            match changes.get(&o.address) {
                Some(&i) if plan.changes[i].action == Action::Delete => {}
                Some(&i) => {
                    at[i] = Some(after.len());
                    after.push(desired.resources.get(&o.address).unwrap_or(o));
                }
                None => after.push(o),
            }
        }
    }
    // An owner's changes come mostly in the desired set's order.
    let mut cursor = Cursor::default();
    for (i, c) in plan.changes.iter().enumerate() {
        if c.action != Action::Delete
            && (observed.is_empty() || observed.get(&c.address).is_none())
            && let Some(found) = desired.resources.position_at(&c.address, &mut cursor)
        {
            at[i] = Some(after.len());
            after.push(&desired.resources.resources[found]);
        }
    }
    (after, at)
}

/// The fleet lock's sentinel as a plan prices it: its app, and whether it exists.
#[derive(Debug, Clone, Copy)]
pub struct FleetLock<'a> {
    pub app: &'a str,
    pub exists: bool,
}

/// Prices the observed fleet and the fleet after `plan`, then fills each change's
/// `monthly_cost_before` / `monthly_cost_after` and the plan's `cost` footer. Observed
/// resources declare no usage: they borrow their desired counterpart's.
pub fn annotate_plan(
    plan: &mut Plan,
    table: &PriceTable,
    desired: &Desired,
    observed: &ResourceSet,
) -> Result<(), CostErrors> {
    annotate_plan_with(plan, table, desired, observed, None)
}

/// [`annotate_plan`], with the fleet lock's sentinel in the totals: after the plan
/// always (an apply creates it), before only when it exists.
pub fn annotate_plan_with(
    plan: &mut Plan,
    table: &PriceTable,
    desired: &Desired,
    observed: &ResourceSet,
    lock: Option<FleetLock<'_>>,
) -> Result<(), CostErrors> {
    let fallback = &desired.default_usage;
    // The organization's plan (fee, included usage, free allowances) applies on both
    // sides, so the plan's totals are those `flotilla cost` shows.
    let mut before = Pricer::new(table, observed, fallback)
        .borrow_usage_from(&desired.resources)
        .with_plan(desired.org_plan);
    if let Some(l) = lock.filter(|l| l.exists) {
        before = before.with_fleet_lock(l.app);
    }
    let before = before.summary()?;
    let (after_items, after_at) = after_plan(plan, desired, observed);
    let mut after = Pricer::over(table, after_items, fallback)
        .borrow_usage_from(&desired.resources)
        .with_plan(desired.org_plan);
    if let Some(l) = lock {
        after = after.with_fleet_lock(l.app);
    }
    let fleet_lock = lock.map(|l| FleetLockCost {
        app: l.app.to_string(),
        monthly: after.fleet_lock_monthly(),
        exists: l.exists,
    });
    let after = after.summary()?;
    // The before side is the observed set in its order; the after side the list above.
    let mut cursor = Cursor::default();
    for (c, at) in plan.changes.iter_mut().zip(after_at) {
        c.monthly_cost_before = if observed.is_empty() {
            None
        } else {
            observed
                .position_at(&c.address, &mut cursor)
                .and_then(|p| before.by_position.get(p).map(|x| x.1))
        };
        c.monthly_cost_after = at.and_then(|p| after.by_position.get(p)).map(|x| x.1);
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
        fleet_lock,
    });
    Ok(())
}
