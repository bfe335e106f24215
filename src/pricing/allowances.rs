//! `allowances.csv`: what each organization plan adds to or takes off a bill in a pricing
//! version — its monthly fee, included usage and free resources — and whether Fly still
//! offers the plan to new organizations. The cost engine turns these rows into their own
//! lines (`cost::allowance`).

use rust_decimal::Decimal;

use super::{Provenance, Row, TableName};
use crate::platform::{OrgPlan, RegionGroup};

/// What an allowance row grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AllowanceItem {
    /// The plan's monthly fee (dollars).
    Fee,
    /// Usage included in the fee (dollars a month).
    UsageCredit,
    /// Free `shared-cpu-1x` 256 MB Machines (each 720 started hours a month).
    SharedCpu1x,
    /// Free provisioned volume GB-months.
    VolumeGb,
    /// Free outbound data (GB a month) in the row's region groups.
    EgressGb,
}

impl AllowanceItem {
    pub const ALL: [AllowanceItem; 5] = [
        AllowanceItem::Fee,
        AllowanceItem::UsageCredit,
        AllowanceItem::SharedCpu1x,
        AllowanceItem::VolumeGb,
        AllowanceItem::EgressGb,
    ];

    pub fn code(self) -> &'static str {
        match self {
            AllowanceItem::Fee => "fee",
            AllowanceItem::UsageCredit => "usage_credit",
            AllowanceItem::SharedCpu1x => "shared_cpu_1x_256mb",
            AllowanceItem::VolumeGb => "volume_gb",
            AllowanceItem::EgressGb => "egress_gb",
        }
    }

    /// The unit its `amount` is in.
    pub fn unit(self) -> &'static str {
        match self {
            AllowanceItem::Fee | AllowanceItem::UsageCredit => "USD-month",
            AllowanceItem::SharedCpu1x => "machine-month",
            AllowanceItem::VolumeGb => "GB-month",
            AllowanceItem::EgressGb => "GB",
        }
    }

    pub fn from_code(s: &str) -> Option<AllowanceItem> {
        AllowanceItem::ALL.into_iter().find(|i| i.code() == s)
    }
}

/// One row of `allowances.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowanceRow {
    pub plan: OrgPlan,
    pub item: AllowanceItem,
    /// The region groups an egress allowance covers together; empty means every group.
    pub groups: Vec<RegionGroup>,
    pub amount: Decimal,
    /// Whether Fly offers the plan to new organizations at this version's date; a plan it
    /// no longer offers is kept only by organizations already on it (legacy).
    pub new_orgs: bool,
    pub prov: Provenance,
}

impl AllowanceRow {
    /// `all`, or the groups joined by `+` (`north_america+europe`).
    pub fn groups_code(&self) -> String {
        if self.groups.is_empty() {
            "all".into()
        } else {
            self.groups
                .iter()
                .map(|g| g.code())
                .collect::<Vec<_>>()
                .join("+")
        }
    }

    /// Whether an egress allowance covers a region group.
    pub fn covers(&self, group: RegionGroup) -> bool {
        self.groups.is_empty() || self.groups.contains(&group)
    }
}

/// Parses a `regions` cell: `all` or region group codes joined by `+`.
pub(super) fn parse_groups(s: &str) -> Result<Vec<RegionGroup>, String> {
    if s == "all" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for code in s.split('+') {
        let g = RegionGroup::from_code(code.trim())
            .ok_or_else(|| format!("unknown region group `{code}`"))?;
        if out.contains(&g) {
            return Err(format!("region group `{code}` is named twice"));
        }
        out.push(g);
    }
    Ok(out)
}

impl Row for AllowanceRow {
    fn table(&self) -> TableName {
        TableName::Allowances
    }
    fn key(&self) -> String {
        match self.item {
            AllowanceItem::EgressGb => format!(
                "{} {} {}",
                self.plan.code(),
                self.item.code(),
                self.groups_code()
            ),
            _ => format!("{} {}", self.plan.code(), self.item.code()),
        }
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("plan", self.plan.code().into()),
            ("item", self.item.code().into()),
            ("regions", self.groups_code()),
            ("amount", self.amount.to_string()),
            ("unit", self.item.unit().into()),
            ("new_orgs", if self.new_orgs { "yes" } else { "no" }.into()),
        ]
    }
    fn priced(&self) -> (&'static str, String) {
        ("amount", format!("{} {}", self.amount, self.item.unit()))
    }
    fn prov(&self) -> &Provenance {
        &self.prov
    }
}
