//! The cost engine: turns resources and usage assumptions into priced line items, totals,
//! deltas and budget verdicts. Pure: no I/O (prices come in as a [`PriceTable`]).
//!
//! Rules (documented with a worked example in COSTS.md):
//! - A month is 30 days = 720 hours, Fly's billing convention.
//! - A Machine is started 720 h with `idle: off`, or when its `index < min_running`;
//!   otherwise `active_hours_per_day × 30` h. Started hours pay preset + additional RAM,
//!   × the region multiplier; the other hours pay rootfs storage (`rootfs_gb`).
//! - Volumes pay their provisioned size; snapshots pay the stored-data estimate
//!   `used × (1 + daily_change × (retention − 1))`, with the organization's free GB
//!   applied once per report.
//! - Egress is priced by the Machine's region group; dedicated IPv4 and certificates per
//!   app, with the organization's free certificates applied once per report.
//! - Arithmetic is exact `Decimal`; only display rounds (to cents).

pub mod advice;
pub mod allowance;
mod budget;
mod delta;
pub mod display;
mod engine;
#[doc(hidden)]
pub mod fixtures;
pub mod job;
mod plan;
pub mod render;
mod reserve;
pub mod usage_file;

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::money::Usd;
use crate::platform::CpuKind;
use crate::pricing::{Citation, PriceTable, SourceRef};
use crate::resource::{Address, Resource, ResourceSet, Usage};

pub use advice::BlockAdvice;
pub use allowance::{
    Coverable, PlanEffect, PlanNote, free_value_cap, plan_applies, plan_effect, plan_problem,
};
pub use budget::{
    Budget, BudgetError, IncreaseLimit, PlanGuardrails, Verdict, check_budget, check_plan,
};
pub use delta::{Change, ChangeStatus, CostDelta, delta};
pub use engine::{FLEET_LOCK_ROOTFS_GB, Pricer, Summary};
pub use plan::{FleetLock, annotate_plan, annotate_plan_with};
pub use reserve::{BlockChoice, ReservationPlan, cheapest_reservation, reservation_spend};

/// The `by_tenant` bucket of resources that belong to no tenant (shared apps).
pub const SHARED: &str = "(shared)";
/// The `by_tenant` bucket of organization-level lines (free allowances).
pub const ORG: &str = "(org)";
/// The `kind` of organization-level lines.
pub const ORG_KIND: &str = "org";

/// What a line item charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// Started hours of the preset (CPU and its included memory).
    Compute,
    /// Started hours of memory beyond the preset.
    Ram,
    /// Rootfs storage while stopped or suspended.
    Rootfs,
    /// Provisioned volume capacity.
    Volume,
    /// Stored snapshot data.
    Snapshot,
    /// Outbound data to the internet.
    Egress,
    /// Private data to other regions.
    PrivateEgress,
    DedicatedIpv4,
    Certificate,
    WildcardCertificate,
    /// The organization's free snapshot GB (negative).
    SnapshotAllowance,
    /// The organization's free certificates (negative).
    CertificateAllowance,
    /// The plan's free `shared-cpu-1x` 256 MB Machine hours (negative).
    VmAllowance,
    /// The plan's free volume GB (negative).
    VolumeAllowance,
    /// The plan's free outbound data in a group of regions (negative).
    EgressAllowance,
    /// Usage included in the plan's fee (negative).
    UsageCredit,
    /// The plan's monthly fee.
    PlanFee,
}

impl Item {
    pub fn as_str(self) -> &'static str {
        match self {
            Item::Compute => "compute",
            Item::Ram => "ram",
            Item::Rootfs => "rootfs",
            Item::Volume => "volume",
            Item::Snapshot => "snapshot",
            Item::Egress => "egress",
            Item::PrivateEgress => "private_egress",
            Item::DedicatedIpv4 => "dedicated_ipv4",
            Item::Certificate => "certificate",
            Item::WildcardCertificate => "wildcard_certificate",
            Item::SnapshotAllowance => "snapshot_allowance",
            Item::CertificateAllowance => "certificate_allowance",
            Item::VmAllowance => "vm_allowance",
            Item::VolumeAllowance => "volume_allowance",
            Item::EgressAllowance => "egress_allowance",
            Item::UsageCredit => "usage_credit",
            Item::PlanFee => "plan_fee",
        }
    }

    /// Lines of the organization's plan (its fee, included usage and free allowances).
    pub fn is_plan(self) -> bool {
        matches!(
            self,
            Item::VmAllowance
                | Item::VolumeAllowance
                | Item::EgressAllowance
                | Item::UsageCredit
                | Item::PlanFee
        )
    }

    /// Compute charges that reservation credits cover (CPU and additional RAM).
    pub fn is_reservable(self) -> bool {
        matches!(self, Item::Compute | Item::Ram)
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One priced line: what, how much, at what unit price, from which table rows, and under
/// which assumptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineItem {
    /// The resource it prices, or `org.<item>` for organization-level lines.
    pub address: Address,
    /// The resource kind (`machine`, `volume`, `backup_policy`, `app`) or `org`.
    pub kind: &'static str,
    pub tenant: Option<String>,
    pub app: Option<String>,
    pub item: Item,
    pub description: String,
    pub quantity: Decimal,
    /// `h`, `GB-h`, `GB-month`, `GB`, `app-month`, `cert-month`.
    pub unit: &'static str,
    /// Price of one unit (exact; may carry many decimals, e.g. a price per hour).
    pub unit_price: Usd,
    /// Exact monthly amount (computed from the 30-day price, not from the rounded unit
    /// price).
    pub monthly: Usd,
    pub pricing_version: NaiveDate,
    /// The region whose prices it used (compute and egress lines).
    pub region: Option<String>,
    /// The CPU class (compute and RAM lines), for reservation blocks.
    pub cpu_kind: Option<CpuKind>,
    /// Every table row the price came from.
    pub sources: Vec<SourceRef>,
    pub assumptions: Vec<String>,
}

impl LineItem {
    /// The `by_tenant` bucket of this line.
    pub fn bucket(&self) -> &str {
        if self.kind == ORG_KIND {
            ORG
        } else {
            self.tenant.as_deref().unwrap_or(SHARED)
        }
    }
}

/// The priced lines of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceCost {
    pub address: Address,
    pub lines: Vec<LineItem>,
    /// Sum of the lines (before organization-level allowances).
    pub monthly: Usd,
}

/// A figure the report depends on that is not published (assumed or derived).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unpublished {
    pub citation: Citation,
    /// How many line items used it.
    pub lines: usize,
}

/// The report-wide assumptions, stated in every rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assumptions {
    pub month_days: u32,
    pub hours_per_month: u32,
    pub currency: &'static str,
    pub pricing_version: NaiveDate,
    pub pricing_origin: String,
    /// The usage applied to resources that declare none.
    pub default_usage: Usage,
    /// The rules of the model, one sentence each.
    pub rules: Vec<String>,
}

/// A priced fleet: every line, totals by tenant / kind / item / address, warnings about
/// unpublished figures, and the assumptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostReport {
    pub pricing_version: NaiveDate,
    pub lines: Vec<LineItem>,
    pub total: Usd,
    pub by_tenant: BTreeMap<String, Usd>,
    pub by_kind: BTreeMap<String, Usd>,
    pub by_item: BTreeMap<String, Usd>,
    /// Monthly cost per resource (organization lines under their `org.*` address); a
    /// repeated address sums its resources' costs.
    pub by_address: HashMap<Address, Usd>,
    /// Every table row used, resolved.
    pub citations: BTreeMap<SourceRef, Citation>,
    pub unpublished: Vec<Unpublished>,
    pub warnings: Vec<String>,
    pub assumptions: Assumptions,
    /// Every resource priced (with or without lines), in the order priced: a delta tells
    /// a resource that is new from one that only gained a cost line.
    pub resources: Vec<Address>,
    /// Prices that apply but cost nothing at the assumed usage (zero egress, no IPv4):
    /// shown as "depends on usage" rows, so the price is visible before it is paid.
    pub usage_rates: Vec<UsageRate>,
    /// The organization's plan, when it has a fee or free allowances at the pricing date.
    pub plan: Option<PlanNote>,
    /// Reservation blocks that would save money on the always-on compute.
    pub reservation_advice: Vec<BlockAdvice>,
}

/// A price a resource pays only if its usage says so, with the usage key that sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRate {
    pub address: Address,
    pub item: Item,
    /// `GB`, `app-month`, `cert-month`.
    pub unit: &'static str,
    pub unit_price: Usd,
    /// The usage key (`usage.egress_gb_month`) whose value is zero.
    pub usage_key: &'static str,
    pub region: Option<String>,
}

impl CostReport {
    /// Number of distinct tenants with lines.
    pub fn tenant_count(&self) -> usize {
        self.by_tenant
            .keys()
            .filter(|k| k.as_str() != SHARED && k.as_str() != ORG)
            .count()
    }
}

/// A resource the engine cannot price: what and where, and a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{address}: {message}{}", if .hint.is_empty() { String::new() } else { format!("\n  hint: {}", .hint) })]
pub struct CostError {
    pub address: Address,
    pub message: String,
    pub hint: String,
}

impl CostError {
    /// The error as a diagnostic naming the resource.
    pub fn to_diagnostic(&self) -> crate::diag::Diagnostic {
        let d =
            crate::diag::Diagnostic::error(self.message.clone()).address(self.address.to_string());
        if self.hint.is_empty() {
            d
        } else {
            d.hint(self.hint.clone())
        }
    }
}

/// Every resource that could not be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostErrors(pub Vec<CostError>);

impl CostErrors {
    /// One diagnostic per resource.
    pub fn to_diagnostics(&self) -> crate::diag::Diagnostics {
        let mut d = crate::diag::Diagnostics::new();
        for e in &self.0 {
            d.push(e.to_diagnostic());
        }
        d
    }
}

impl fmt::Display for CostErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_diagnostics())
    }
}

impl std::error::Error for CostErrors {}

/// Prices one resource. `context` is the set it belongs to (to find a backup policy's
/// volume); `fallback` is the usage of resources that declare none.
pub fn price_resource(
    table: &PriceTable,
    resource: &Resource,
    context: &ResourceSet,
    fallback: &Usage,
) -> Result<ResourceCost, CostError> {
    Pricer::new(table, context, fallback).price(resource)
}

/// Prices a whole set: every resource, organization-level allowances, totals and
/// warnings.
pub fn price_set(
    table: &PriceTable,
    set: &ResourceSet,
    fallback: &Usage,
) -> Result<CostReport, CostErrors> {
    Pricer::new(table, set, fallback).report()
}

/// [`price_set`] for a fleet: with the fleet lock's sentinel (in `lock_app`) as one
/// organization line.
pub fn price_fleet(
    table: &PriceTable,
    set: &ResourceSet,
    fallback: &Usage,
    lock_app: &str,
) -> Result<CostReport, CostErrors> {
    Pricer::new(table, set, fallback)
        .with_fleet_lock(lock_app)
        .report()
}

#[cfg(test)]
mod tests;
