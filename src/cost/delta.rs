//! The difference between two cost reports: total, and which tenants, resources and items
//! changed cost and by how much. A resource is `added` or `removed` when it exists on one
//! side only (not when it merely gains or loses a cost line: a dedicated IPv4 on an
//! existing app is a change of that app), and a changed resource says which of its
//! components moved and why (`memory 1.75 GB → 3.5 GB: +$8.76`).

use std::collections::HashMap;
use std::hash::Hash;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::{CostReport, Item, LineItem};
use crate::money::{Usd, fmt_delta};
use crate::resource::Address;

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
    /// For a resource: what changed in it, one component each
    /// (`memory 1.75 GB → 3.5 GB: +$8.76`, `dedicated IPv4 added (1 address): +$2.00`).
    pub reasons: Vec<String>,
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
                reasons: Vec::new(),
            }),
            Some(h) if h != b => out.push(Change {
                key: k.to_string(),
                before: *b,
                after: *h,
                delta: *h - *b,
                status: ChangeStatus::Changed,
                reasons: Vec::new(),
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
                reasons: Vec::new(),
            });
        }
    }
    sort_changes(&mut out);
    out
}

fn sort_changes(out: &mut [Change]) {
    out.sort_by(|a, b| {
        b.delta
            .abs()
            .cmp(&a.delta.abs())
            .then_with(|| crate::resource::natural_cmp(&a.key, &b.key))
    });
}

/// The addresses a report holds: its priced resources and its organization lines.
fn held(r: &CostReport) -> std::collections::HashSet<&Address> {
    r.resources.iter().chain(r.by_address.keys()).collect()
}

/// The lines of each of the given addresses.
fn lines_by_address<'a>(
    r: &'a CostReport,
    wanted: &HashMap<&Address, ()>,
) -> HashMap<&'a Address, Vec<&'a LineItem>> {
    let mut out: HashMap<&Address, Vec<&LineItem>> = HashMap::new();
    for l in &r.lines {
        if wanted.contains_key(&l.address) {
            out.entry(&l.address).or_default().push(l);
        }
    }
    out
}

/// Resources whose cost changed, with their status from whether the resource exists
/// in each report, and per-component reasons.
fn address_changes(base: &CostReport, head: &CostReport) -> Vec<Change> {
    let zero = Decimal::ZERO;
    let mut keys: Vec<&Address> = base.by_address.keys().collect();
    keys.extend(
        head.by_address
            .keys()
            .filter(|a| !base.by_address.contains_key(*a)),
    );
    let (in_base, in_head) = (held(base), held(head));
    let mut found: Vec<(&Address, Change)> = Vec::new();
    for a in keys {
        let b = base.by_address.get(a).copied().unwrap_or(zero);
        let h = head.by_address.get(a).copied().unwrap_or(zero);
        let status = match (in_base.contains(a), in_head.contains(a)) {
            (false, true) => ChangeStatus::Added,
            (true, false) => ChangeStatus::Removed,
            _ if b == h => continue,
            _ => ChangeStatus::Changed,
        };
        found.push((
            a,
            Change {
                key: a.to_string(),
                before: b,
                after: h,
                delta: h - b,
                status,
                reasons: Vec::new(),
            },
        ));
    }
    let wanted: HashMap<&Address, ()> = found
        .iter()
        .filter(|(_, c)| c.status == ChangeStatus::Changed)
        .map(|(a, _)| (*a, ()))
        .collect();
    let (bl, hl) = (
        lines_by_address(base, &wanted),
        lines_by_address(head, &wanted),
    );
    let mut out = Vec::with_capacity(found.len());
    for (a, mut c) in found {
        if c.status == ChangeStatus::Changed {
            let none = Vec::new();
            c.reasons = reasons(bl.get(a).unwrap_or(&none), hl.get(a).unwrap_or(&none));
        }
        out.push(c);
    }
    sort_changes(&mut out);
    out
}

/// What a component is called in a reason.
fn label(item: Item) -> &'static str {
    match item {
        Item::Compute => "compute",
        Item::Ram => "memory",
        Item::Rootfs => "rootfs",
        Item::Volume => "volume",
        Item::Snapshot => "snapshots",
        Item::Egress => "egress",
        Item::PrivateEgress => "private egress",
        Item::DedicatedIpv4 => "dedicated IPv4",
        Item::Certificate => "certificates",
        Item::WildcardCertificate => "wildcard certificates",
        Item::SnapshotAllowance => "free snapshot storage",
        Item::CertificateAllowance => "free certificates",
        Item::VmAllowance => "free Machines",
        Item::VolumeAllowance => "free volume storage",
        Item::EgressAllowance => "free egress",
        Item::UsageCredit => "included usage",
        Item::PlanFee => "plan fee",
    }
}

fn short(d: Decimal) -> Decimal {
    super::display::round(d, 4).normalize()
}

fn plural(n: Decimal, one: &str, many: &str) -> String {
    format!(
        "{} {}",
        short(n),
        if n == Decimal::ONE { one } else { many }
    )
}

/// How much of a component a resource has, in words: `shared-cpu-1x in iad, 720 h`,
/// `1.75 GB`, `3.6 GB stored`, `1 address`. `hours` are the resource's started hours
/// (memory is priced per GB-hour started).
fn measure(l: &LineItem, hours: Option<Decimal>) -> String {
    let q = l.quantity;
    match l.item {
        Item::Compute => format!(
            "{} in {}, {} h",
            l.description.split_whitespace().next().unwrap_or(""),
            l.region.as_deref().unwrap_or("?"),
            short(q)
        ),
        Item::Ram => match hours {
            Some(h) if !h.is_zero() => format!("{} GB", short(q / h)),
            _ => format!("{} GB-h", short(q)),
        },
        Item::Rootfs => format!("{} GB-h", short(q)),
        Item::Volume => format!("{} GB", short(q)),
        Item::Snapshot => format!("{} GB stored", short(q)),
        Item::Egress | Item::PrivateEgress => format!("{} GB", short(q)),
        Item::DedicatedIpv4 => plural(q, "address", "addresses"),
        Item::Certificate | Item::WildcardCertificate => plural(q, "certificate", "certificates"),
        Item::SnapshotAllowance => format!("{} GB", short(q)),
        Item::CertificateAllowance => plural(q, "certificate", "certificates"),
        Item::VmAllowance => format!("{} h", short(q)),
        Item::VolumeAllowance | Item::EgressAllowance => format!("{} GB", short(q)),
        Item::UsageCredit | Item::PlanFee => plural(q, "month", "months"),
    }
}

/// One component summed over a resource's lines of that item.
struct Component {
    monthly: Usd,
    line: LineItem,
}

fn components(lines: &[&LineItem]) -> (Vec<(Item, Component)>, Option<Decimal>) {
    let mut out: Vec<(Item, Component)> = Vec::new();
    for l in lines {
        match out.iter_mut().find(|(i, _)| *i == l.item) {
            Some((_, c)) => {
                c.monthly += l.monthly;
                c.line.quantity += l.quantity;
            }
            None => out.push((
                l.item,
                Component {
                    monthly: l.monthly,
                    line: (*l).clone(),
                },
            )),
        }
    }
    let hours = out
        .iter()
        .find(|(i, _)| *i == Item::Compute)
        .map(|(_, c)| c.line.quantity);
    (out, hours)
}

/// Per-component reasons for a resource's change of cost, in the head's order, then the
/// removed components.
fn reasons(before: &[&LineItem], after: &[&LineItem]) -> Vec<String> {
    let (b, bh) = components(before);
    let (a, ah) = components(after);
    let mut out = Vec::new();
    for (item, h) in &a {
        let now = measure(&h.line, ah);
        match b.iter().find(|(i, _)| i == item) {
            None => out.push(format!(
                "{} added ({now}): {}",
                label(*item),
                fmt_delta(h.monthly)
            )),
            Some((_, was)) if was.monthly != h.monthly => {
                let then = measure(&was.line, bh);
                let d = fmt_delta(h.monthly - was.monthly);
                if then == now {
                    out.push(format!("{} {now}, price changed: {d}", label(*item)));
                } else {
                    out.push(format!("{} {then} → {now}: {d}", label(*item)));
                }
            }
            Some(_) => {}
        }
    }
    for (item, was) in &b {
        if !a.iter().any(|(i, _)| i == item) {
            out.push(format!(
                "{} removed ({}): {}",
                label(*item),
                measure(&was.line, bh),
                fmt_delta(-was.monthly)
            ));
        }
    }
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
        addresses: address_changes(base, head),
        kinds: changes(&base.by_kind, &head.by_kind),
        items: changes(&base.by_item, &head.by_item),
    }
}
