//! The difference between two cost reports: total, and which tenants, resources and items
//! changed cost and by how much.

use std::collections::HashMap;
use std::hash::Hash;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::CostReport;
use crate::money::Usd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeStatus {
    Added,
    Removed,
    Changed,
}

/// One key (tenant, address, kind or item) whose monthly cost differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub key: String,
    pub before: Usd,
    pub after: Usd,
    pub delta: Usd,
    pub status: ChangeStatus,
}

/// `head − base`, with the changed entries sorted by the size of their change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostDelta {
    pub base_pricing_version: NaiveDate,
    pub head_pricing_version: NaiveDate,
    pub base_total: Usd,
    pub head_total: Usd,
    pub delta: Usd,
    /// `delta / base_total × 100`; `None` when the base costs nothing.
    pub percent: Option<Decimal>,
    pub tenants: Vec<Change>,
    pub addresses: Vec<Change>,
    pub kinds: Vec<Change>,
    pub items: Vec<Change>,
}

fn changes<'a, K: 'a + Eq + Hash + ToString>(
    base: impl IntoIterator<Item = (&'a K, &'a Usd)>,
    head: impl IntoIterator<Item = (&'a K, &'a Usd)>,
) -> Vec<Change> {
    let base: Vec<(&K, Usd)> = base.into_iter().map(|(k, v)| (k, *v)).collect();
    let head: Vec<(&K, Usd)> = head.into_iter().map(|(k, v)| (k, *v)).collect();
    let in_base: HashMap<&K, Usd> = base.iter().copied().collect();
    let in_head: HashMap<&K, Usd> = head.iter().copied().collect();
    let mut out = Vec::new();
    for (k, b) in &base {
        match in_head.get(k) {
            None => out.push(Change {
                key: k.to_string(),
                before: *b,
                after: Decimal::ZERO,
                delta: -*b,
                status: ChangeStatus::Removed,
            }),
            Some(h) if h != b => out.push(Change {
                key: k.to_string(),
                before: *b,
                after: *h,
                delta: *h - *b,
                status: ChangeStatus::Changed,
            }),
            Some(_) => {}
        }
    }
    for (k, h) in &head {
        if !in_base.contains_key(k) {
            out.push(Change {
                key: k.to_string(),
                before: Decimal::ZERO,
                after: *h,
                delta: *h,
                status: ChangeStatus::Added,
            });
        }
    }
    out.sort_by(|a, b| {
        b.delta
            .abs()
            .cmp(&a.delta.abs())
            .then_with(|| crate::resource::natural_cmp(&a.key, &b.key))
    });
    out
}

/// Compares a base report (e.g. the spec on `main`) with a head report (the pull
/// request's spec).
pub fn delta(base: &CostReport, head: &CostReport) -> CostDelta {
    let d = head.total - base.total;
    let percent = if base.total.is_zero() {
        None
    } else {
        Some(d * Decimal::from(100) / base.total)
    };
    CostDelta {
        base_pricing_version: base.pricing_version,
        head_pricing_version: head.pricing_version,
        base_total: base.total,
        head_total: head.total,
        delta: d,
        percent,
        tenants: changes(&base.by_tenant, &head.by_tenant),
        addresses: changes(&base.by_address, &head.by_address),
        kinds: changes(&base.by_kind, &head.by_kind),
        items: changes(&base.by_item, &head.by_item),
    }
}
