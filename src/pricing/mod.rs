//! Versioned price tables: one directory per effective date under `pricing/<provider>/`,
//! each with a `manifest.yaml` (effective date, currency, sources, notes) and CSV tables.
//!
//! The tables are embedded in the binary ([`Catalog::embedded`]) and can be replaced by a
//! directory of the user's own ([`Catalog::from_dir`], the CLI's `--pricing DIR`).
//! [`Catalog::at`] picks the newest version in force on a date. Every lookup returns a row
//! that carries its provenance, so a cost line can cite the file, line and source of every
//! price it used ([`PriceTable::cite`]). This module knows nothing about plans.

mod allowances;
mod diff;
mod load;
mod manifest;
pub mod render;

use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::money::Usd;
use crate::platform::{CpuKind, RegionGroup};

pub use allowances::{AllowanceItem, AllowanceRow};
pub use diff::{ChangeKind, FieldChange, RowChange, TableDiff, diff};
pub use load::{PricingError, embedded_files, export_embedded};

/// How much a figure can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Stated by the cited source.
    Published,
    /// Computed from published figures by the rule in the row's note.
    Derived,
    /// Not published: a placeholder. Reports that use it say so.
    Assumed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Published => "published",
            Status::Derived => "derived",
            Status::Assumed => "assumed",
        }
    }
    fn parse(s: &str) -> Option<Status> {
        match s {
            "published" => Some(Status::Published),
            "derived" => Some(Status::Derived),
            "assumed" => Some(Status::Assumed),
            _ => None,
        }
    }
}

/// The tables of a pricing version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableName {
    Compute,
    Memory,
    Regions,
    Storage,
    Bandwidth,
    Network,
    Reservations,
    Allowances,
}

impl TableName {
    pub const ALL: [TableName; 8] = [
        TableName::Compute,
        TableName::Memory,
        TableName::Regions,
        TableName::Storage,
        TableName::Bandwidth,
        TableName::Network,
        TableName::Reservations,
        TableName::Allowances,
    ];

    /// The file name inside a version directory.
    pub fn file(self) -> &'static str {
        match self {
            TableName::Compute => "compute.csv",
            TableName::Memory => "memory.csv",
            TableName::Regions => "regions.csv",
            TableName::Storage => "storage.csv",
            TableName::Bandwidth => "bandwidth.csv",
            TableName::Network => "network.csv",
            TableName::Reservations => "reservations.csv",
            TableName::Allowances => "allowances.csv",
        }
    }
}

/// Where a row came from: its line in the CSV file, trust status, source id and note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// 1-based line in the file (the header is line 1).
    pub line: u32,
    pub status: Status,
    /// A source id declared in the manifest.
    pub source: String,
    pub note: String,
}

/// A compact, copyable reference to the row a price came from; resolve it with
/// [`PriceTable::cite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SourceRef {
    pub table: TableName,
    pub line: u32,
    pub status: Status,
}

/// A fully resolved reference: version, file, line, row key, value, source and note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Citation {
    pub pricing_version: NaiveDate,
    pub file: String,
    pub line: u32,
    pub key: String,
    /// The priced column and its value, e.g. `price_per_30d = 1.94`.
    pub value: String,
    pub status: Status,
    pub source: String,
    pub url: String,
    pub note: String,
}

impl Citation {
    /// The warning about an unpublished figure: where it is, what it is and why, how many
    /// line items use it (when `count` is given), and how to replace it.
    pub fn unpublished_warning(&self, count: Option<usize>) -> String {
        let uses = match count {
            Some(1) => "; 1 line item uses it".to_string(),
            Some(n) => format!("; {n} line items use it"),
            None => String::new(),
        };
        format!(
            "{}:{} `{}` {} is {} ({}){uses}. Replace it with the figure on your invoice (--pricing DIR).",
            self.file,
            self.line,
            self.key,
            self.value,
            self.status.as_str(),
            self.note,
        )
    }
}

/// What every table row offers: a unique key, its fields (for `show` and `diff`) and its
/// provenance.
pub trait Row {
    fn table(&self) -> TableName;
    fn key(&self) -> String;
    /// Every column but `status`, `source` and `note`, in file order.
    fn fields(&self) -> Vec<(&'static str, String)>;
    /// The column that holds the row's main price, and its value.
    fn priced(&self) -> (&'static str, String);
    fn prov(&self) -> &Provenance;
    fn source_ref(&self) -> SourceRef {
        SourceRef {
            table: self.table(),
            line: self.prov().line,
            status: self.prov().status,
        }
    }
}

/// `compute.csv`: a named preset and its price in the baseline region.
///
/// A table gives either `price_per_second` (Fly's base rate; the 30-day price is then
/// derived exactly as rate x the seconds of a 30-day month) or `price_per_30d` directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeRow {
    pub preset: String,
    pub cpu_kind: CpuKind,
    pub cpus: u32,
    pub base_memory_mb: u32,
    /// The per-second rate the table states, when it states one.
    pub price_per_second: Option<Usd>,
    /// The price per 30 days: stated, or `price_per_second` x 2,592,000 s, unrounded.
    pub price_per_30d: Usd,
    pub prov: Provenance,
}

/// `memory.csv`: additional RAM beyond a preset, per GB per second or per 30 days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRow {
    pub cpu_kind: CpuKind,
    /// The per-GB-second rate the table states, when it states one.
    pub price_per_gb_second: Option<Usd>,
    /// Stated, or `price_per_gb_second` x 2,592,000 s, unrounded.
    pub price_per_gb_30d: Usd,
    pub prov: Provenance,
}

/// The published markup of a region and the share of it in force (the 2024 phase-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Markup {
    /// Price relative to the baseline region (`iad` = 1), as Fly publishes it.
    pub markup: Decimal,
    /// The share of the markup billed in this version: 0, 0.25, 0.5, 0.75 or 1.
    pub phase_in: Decimal,
}

impl Markup {
    /// `1 + phase_in x (markup - 1)`: the multiplier on the baseline price.
    pub fn multiplier(self) -> Decimal {
        (Decimal::ONE + self.phase_in * (self.markup - Decimal::ONE)).normalize()
    }
}

/// `regions.csv`: a region's bandwidth group and compute price multiplier.
///
/// A table gives either `markup` and `phase_in` (the multiplier is then derived by
/// [`Markup::multiplier`]) or `compute_multiplier` directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionRow {
    pub region: String,
    pub city: String,
    pub group: RegionGroup,
    /// The markup and phase-in the table states, when it states them.
    pub markup: Option<Markup>,
    pub compute_multiplier: Decimal,
    pub prov: Provenance,
}

/// `storage.csv` and `network.csv`: a priced item with an optional free allowance per
/// organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRow {
    pub table: TableName,
    pub item: String,
    pub unit: String,
    pub price: Usd,
    pub free_per_org: Decimal,
    pub prov: Provenance,
}

/// `bandwidth.csv`: outbound data transfer prices per GB for a region group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandwidthRow {
    pub group: RegionGroup,
    pub egress_per_gb: Usd,
    pub private_per_gb: Usd,
    pub prov: Provenance,
}

/// `reservations.csv`: a reservation block (pay yearly up front, get monthly credits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRow {
    pub cpu_kind: CpuKind,
    pub upfront_per_year: Usd,
    pub credit_per_month: Usd,
    pub prov: Provenance,
}

impl Row for ComputeRow {
    fn table(&self) -> TableName {
        TableName::Compute
    }
    fn key(&self) -> String {
        self.preset.clone()
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("preset", self.preset.clone()),
            ("cpu_kind", self.cpu_kind.as_str().into()),
            ("cpus", self.cpus.to_string()),
            ("base_memory_mb", self.base_memory_mb.to_string()),
        ];
        if let Some(ps) = self.price_per_second {
            f.push(("price_per_second", ps.to_string()));
        }
        f.push(("price_per_30d", self.price_per_30d.to_string()));
        f
    }
    fn priced(&self) -> (&'static str, String) {
        per_second_priced(
            ("price_per_second", "price_per_30d"),
            self.price_per_second,
            self.price_per_30d,
        )
    }
    fn prov(&self) -> &Provenance {
        &self.prov
    }
}

impl Row for MemoryRow {
    fn table(&self) -> TableName {
        TableName::Memory
    }
    fn key(&self) -> String {
        self.cpu_kind.as_str().into()
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("cpu_kind", self.cpu_kind.as_str().into())];
        if let Some(ps) = self.price_per_gb_second {
            f.push(("price_per_gb_second", ps.to_string()));
        }
        f.push(("price_per_gb_30d", self.price_per_gb_30d.to_string()));
        f
    }
    fn priced(&self) -> (&'static str, String) {
        per_second_priced(
            ("price_per_gb_second", "price_per_gb_30d"),
            self.price_per_gb_second,
            self.price_per_gb_30d,
        )
    }
    fn prov(&self) -> &Provenance {
        &self.prov
    }
}

impl Row for RegionRow {
    fn table(&self) -> TableName {
        TableName::Regions
    }
    fn key(&self) -> String {
        self.region.clone()
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("region", self.region.clone()),
            ("city", self.city.clone()),
            ("group", self.group.code().into()),
        ];
        if let Some(m) = self.markup {
            f.push(("markup", m.markup.to_string()));
            f.push(("phase_in", m.phase_in.to_string()));
        }
        f.push(("compute_multiplier", self.compute_multiplier.to_string()));
        f
    }
    fn priced(&self) -> (&'static str, String) {
        match self.markup {
            Some(m) => (
                "markup / phase_in",
                format!(
                    "{} / {} (multiplier {})",
                    m.markup, m.phase_in, self.compute_multiplier
                ),
            ),
            None => ("compute_multiplier", self.compute_multiplier.to_string()),
        }
    }
    fn prov(&self) -> &Provenance {
        &self.prov
    }
}

/// The priced column of a row that states a per-second rate (with the 30-day price it
/// implies) or only a 30-day price.
fn per_second_priced(
    cols: (&'static str, &'static str),
    per_second: Option<Usd>,
    per_30d: Usd,
) -> (&'static str, String) {
    match per_second {
        Some(ps) => (cols.0, format!("{ps} (= {per_30d} per 30 days)")),
        None => (cols.1, per_30d.to_string()),
    }
}

impl Row for ItemRow {
    fn table(&self) -> TableName {
        self.table
    }
    fn key(&self) -> String {
        self.item.clone()
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("item", self.item.clone()),
            ("unit", self.unit.clone()),
            ("price", self.price.to_string()),
            ("free_per_org", self.free_per_org.to_string()),
        ]
    }
    fn priced(&self) -> (&'static str, String) {
        ("price", self.price.to_string())
    }
    fn prov(&self) -> &Provenance {
        &self.prov
    }
}

impl Row for BandwidthRow {
    fn table(&self) -> TableName {
        TableName::Bandwidth
    }
    fn key(&self) -> String {
        self.group.code().into()
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("group", self.group.code().into()),
            ("egress_per_gb", self.egress_per_gb.to_string()),
            ("private_per_gb", self.private_per_gb.to_string()),
        ]
    }
    fn priced(&self) -> (&'static str, String) {
        (
            "egress_per_gb / private_per_gb",
            format!("{} / {}", self.egress_per_gb, self.private_per_gb),
        )
    }
    fn prov(&self) -> &Provenance {
        &self.prov
    }
}

impl Row for ReservationRow {
    fn table(&self) -> TableName {
        TableName::Reservations
    }
    fn key(&self) -> String {
        format!("{} {}", self.cpu_kind.as_str(), self.upfront_per_year)
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("cpu_kind", self.cpu_kind.as_str().into()),
            ("upfront_per_year", self.upfront_per_year.to_string()),
            ("credit_per_month", self.credit_per_month.to_string()),
        ]
    }
    fn priced(&self) -> (&'static str, String) {
        (
            "upfront_per_year / credit_per_month",
            format!("{} / {}", self.upfront_per_year, self.credit_per_month),
        )
    }
    fn prov(&self) -> &Provenance {
        &self.prov
    }
}

/// The rows of `storage.csv` (all three are required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRows {
    /// Provisioned volume capacity, per GB-month.
    pub volume: ItemRow,
    /// Used rootfs of stopped or suspended Machines, per GB-month.
    pub rootfs: ItemRow,
    /// Stored snapshot data, per GB-month, with the free GB per organization.
    pub snapshot: ItemRow,
}

/// The rows of `network.csv` other than bandwidth (all four are required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRows {
    pub dedicated_ipv4: ItemRow,
    /// Single-hostname certificate, with the free count per organization.
    pub certificate: ItemRow,
    pub wildcard_certificate: ItemRow,
    /// Absent from versions in force before static egress IPs were offered (2024-09-24).
    pub static_egress_ip: Option<ItemRow>,
}

impl StorageRows {
    pub const ITEMS: [&'static str; 3] = ["volume", "rootfs", "snapshot"];
    pub fn rows(&self) -> [&ItemRow; 3] {
        [&self.volume, &self.rootfs, &self.snapshot]
    }
}

impl NetworkRows {
    /// The items every version has.
    pub const ITEMS: [&'static str; 3] = ["dedicated_ipv4", "certificate", "wildcard_certificate"];
    /// The items a version may have.
    pub const OPTIONAL: [&'static str; 1] = ["static_egress_ip"];
    pub fn rows(&self) -> Vec<&ItemRow> {
        let mut v = vec![
            &self.dedicated_ipv4,
            &self.certificate,
            &self.wildcard_certificate,
        ];
        v.extend(self.static_egress_ip.as_ref());
        v
    }
}

/// A cited source of a pricing version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub id: String,
    pub title: String,
    pub url: String,
    pub retrieved: NaiveDate,
}

/// Prices the provider shows that no version applies, because no effective date is
/// published: every report priced with the version says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewerPrices {
    /// The first date the provider's pages were seen to show them.
    pub since: NaiveDate,
    /// The source id (declared in the manifest) that shows them.
    pub source: String,
    /// The newer figures, in a sentence.
    pub summary: String,
}

/// `manifest.yaml` of a pricing version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    pub provider: String,
    pub effective_date: NaiveDate,
    pub currency: String,
    pub hours_per_month: u32,
    pub summary: String,
    pub sources: Vec<Source>,
    pub notes: Vec<String>,
    /// Newer prices the provider shows without an effective date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newer_prices: Option<NewerPrices>,
}

/// One pricing version: the manifest and every table, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    pub manifest: Manifest,
    /// Where it was read from: `pricing/fly/2026-01-01` (embedded) or a directory path.
    pub origin: String,
    pub compute: Vec<ComputeRow>,
    pub memory: Vec<MemoryRow>,
    pub regions: Vec<RegionRow>,
    pub storage: StorageRows,
    pub bandwidth: Vec<BandwidthRow>,
    pub network: NetworkRows,
    pub reservations: Vec<ReservationRow>,
    /// Organization plans: fees, included usage and free allowances.
    pub allowances: Vec<AllowanceRow>,
    /// Regions an earlier version of the same catalog priced and this one does not.
    pub retired_regions: Vec<RetiredRegion>,
}

/// A region that an earlier version priced and a later one no longer lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredRegion {
    pub region: String,
    /// The effective date of the last version that prices it.
    pub last_priced_in: NaiveDate,
    /// The effective date of the first version without it.
    pub removed_in: NaiveDate,
}

/// A failed lookup: the name had no row in the table; with close matches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} `{name}` has no price in pricing {version} ({file}){}{}", retired_suffix(.retired.as_ref()), hint_suffix(.suggestions))]
pub struct LookupError {
    pub what: &'static str,
    pub name: String,
    pub version: NaiveDate,
    pub file: &'static str,
    /// Set when an earlier version priced the name.
    pub retired: Option<RetiredRegion>,
    pub suggestions: Vec<String>,
}

fn retired_suffix(retired: Option<&RetiredRegion>) -> String {
    match retired {
        Some(r) => format!(
            "; Fly removed it from its price list on {} (last priced in pricing {}: pass --pricing-date {} or earlier to price it as it was)",
            r.removed_in,
            r.last_priced_in,
            r.removed_in.pred_opt().unwrap_or(r.removed_in)
        ),
        None => String::new(),
    }
}

fn hint_suffix(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}

impl PriceTable {
    /// The effective date, which names the version.
    pub fn version(&self) -> NaiveDate {
        self.manifest.effective_date
    }

    /// `fly/2026-01-01`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.manifest.provider, self.version())
    }

    fn lookup_error<'a>(
        &self,
        what: &'static str,
        table: TableName,
        name: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> LookupError {
        LookupError {
            what,
            name: name.to_string(),
            version: self.version(),
            file: table.file(),
            retired: None,
            suggestions: crate::diag::close_matches(name, candidates, 3)
                .into_iter()
                .map(String::from)
                .collect(),
        }
    }

    /// The row of a named preset (`shared-cpu-1x`).
    pub fn preset(&self, name: &str) -> Result<&ComputeRow, LookupError> {
        self.compute
            .iter()
            .find(|r| r.preset == name)
            .ok_or_else(|| {
                self.lookup_error(
                    "preset",
                    TableName::Compute,
                    name,
                    self.compute.iter().map(|r| r.preset.as_str()),
                )
            })
    }

    /// The preset row for a CPU class and count, if the table has one.
    pub fn preset_for(&self, cpu_kind: CpuKind, cpus: u32) -> Option<&ComputeRow> {
        self.compute
            .iter()
            .find(|r| r.cpu_kind == cpu_kind && r.cpus == cpus)
    }

    /// The additional-RAM price of a CPU class (present for every class in `compute.csv`).
    pub fn memory(&self, cpu_kind: CpuKind) -> Result<&MemoryRow, LookupError> {
        self.memory
            .iter()
            .find(|r| r.cpu_kind == cpu_kind)
            .ok_or_else(|| {
                self.lookup_error(
                    "cpu kind",
                    TableName::Memory,
                    cpu_kind.as_str(),
                    self.memory.iter().map(|r| r.cpu_kind.as_str()),
                )
            })
    }

    pub fn region(&self, code: &str) -> Result<&RegionRow, LookupError> {
        self.regions
            .iter()
            .find(|r| r.region == code)
            .ok_or_else(|| {
                let mut e = self.lookup_error(
                    "region",
                    TableName::Regions,
                    code,
                    self.regions.iter().map(|r| r.region.as_str()),
                );
                e.retired = self
                    .retired_regions
                    .iter()
                    .find(|r| r.region == code)
                    .cloned();
                e
            })
    }

    /// The bandwidth row of a group (present for every group used in `regions.csv`).
    pub fn bandwidth(&self, group: RegionGroup) -> Result<&BandwidthRow, LookupError> {
        self.bandwidth
            .iter()
            .find(|r| r.group == group)
            .ok_or_else(|| {
                self.lookup_error(
                    "region group",
                    TableName::Bandwidth,
                    group.code(),
                    self.bandwidth.iter().map(|r| r.group.code()),
                )
            })
    }

    /// Reservation blocks of a CPU class, largest credit first.
    pub fn reservations(&self, cpu_kind: CpuKind) -> Vec<&ReservationRow> {
        let mut v: Vec<&ReservationRow> = self
            .reservations
            .iter()
            .filter(|r| r.cpu_kind == cpu_kind)
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.credit_per_month));
        v
    }

    /// Every row of a table, in file order.
    pub fn rows(&self, table: TableName) -> Vec<&dyn Row> {
        fn dyns<T: Row>(v: &[T]) -> Vec<&dyn Row> {
            v.iter().map(|r| r as &dyn Row).collect()
        }
        match table {
            TableName::Compute => dyns(&self.compute),
            TableName::Memory => dyns(&self.memory),
            TableName::Regions => dyns(&self.regions),
            TableName::Storage => self
                .storage
                .rows()
                .into_iter()
                .map(|r| r as &dyn Row)
                .collect(),
            TableName::Bandwidth => dyns(&self.bandwidth),
            TableName::Network => self
                .network
                .rows()
                .into_iter()
                .map(|r| r as &dyn Row)
                .collect(),
            TableName::Reservations => dyns(&self.reservations),
            TableName::Allowances => dyns(&self.allowances),
        }
    }

    /// The warning every report priced with this version carries when the provider shows
    /// newer prices without an effective date.
    pub fn staleness_warning(&self) -> Option<String> {
        let n = self.manifest.newer_prices.as_ref()?;
        // Without the scheme: reports (HTML included) reference nothing outside themselves.
        let url = self
            .source(&n.source)
            .map(|s| {
                s.url
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
            })
            .unwrap_or("");
        Some(format!(
            "Fly's docs show newer prices since {} ({}; {url}) with no effective date published: these figures use pricing {}. Check your invoice, or price with a table of your own (--pricing DIR).",
            n.since,
            n.summary,
            self.version()
        ))
    }

    /// The rows of an organization plan, in file order (none when the table does not
    /// price the plan).
    pub fn plan_rows(&self, plan: crate::platform::OrgPlan) -> Vec<&AllowanceRow> {
        self.allowances.iter().filter(|r| r.plan == plan).collect()
    }

    pub fn source(&self, id: &str) -> Option<&Source> {
        self.manifest.sources.iter().find(|s| s.id == id)
    }

    /// Resolves a [`SourceRef`] to the file, line, row, value and source it names.
    pub fn cite(&self, r: SourceRef) -> Option<Citation> {
        let row = self
            .rows(r.table)
            .into_iter()
            .find(|row| row.prov().line == r.line)?;
        let prov = row.prov();
        let (col, val) = row.priced();
        Some(Citation {
            pricing_version: self.version(),
            file: format!("{}/{}", self.origin, r.table.file()),
            line: prov.line,
            key: row.key(),
            value: format!("{col} = {val}"),
            status: prov.status,
            source: prov.source.clone(),
            url: self
                .source(&prov.source)
                .map(|s| s.url.clone())
                .unwrap_or_default(),
            note: prov.note.clone(),
        })
    }
}

/// All pricing versions of a provider, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// `embedded` or the directory the versions were read from.
    pub origin: String,
    versions: Vec<PriceTable>,
}

impl Catalog {
    /// The tables compiled into the binary from `pricing/`.
    pub fn embedded() -> Result<Catalog, PricingError> {
        load::embedded()
    }

    /// Reads a directory: either one version (it holds `manifest.yaml`), or a provider
    /// directory of dated versions, or a pricing root holding `fly/`.
    pub fn from_dir(dir: &Path) -> Result<Catalog, PricingError> {
        load::from_dir(dir)
    }

    /// `--pricing DIR` when given, else the embedded tables.
    pub fn load(dir: Option<&Path>) -> Result<Catalog, PricingError> {
        match dir {
            Some(d) => Catalog::from_dir(d),
            None => Catalog::embedded(),
        }
    }

    pub(crate) fn new(origin: String, mut versions: Vec<PriceTable>) -> Catalog {
        versions.sort_by_key(|v| v.version());
        mark_retired_regions(&mut versions);
        Catalog { origin, versions }
    }

    /// Every version, oldest first.
    pub fn versions(&self) -> &[PriceTable] {
        &self.versions
    }

    pub fn latest(&self) -> Option<&PriceTable> {
        self.versions.last()
    }

    /// The newest version whose effective date is on or before `date`.
    pub fn at(&self, date: NaiveDate) -> Result<&PriceTable, PricingError> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.version() <= date)
            .ok_or_else(|| {
                let earliest = self
                    .versions
                    .first()
                    .map(|v| format!("the earliest version is {}", v.version()))
                    .unwrap_or_else(|| "it has no versions".into());
                PricingError::new(
                    &self.origin,
                    format!("no pricing version is in force on {date}; {earliest}"),
                    "pass a later --pricing-date, or add a version dated on or before it",
                )
            })
    }

    /// The version whose effective date is exactly `date`.
    pub fn exact(&self, date: NaiveDate) -> Option<&PriceTable> {
        self.versions.iter().find(|v| v.version() == date)
    }
}

/// Records in each version the regions that an earlier version priced and it does not,
/// with the dates, so a lookup of such a region can say when it was removed.
fn mark_retired_regions(versions: &mut [PriceTable]) {
    // region -> effective date of the last version (so far) that prices it
    let mut last_seen: std::collections::BTreeMap<String, NaiveDate> = Default::default();
    // region -> effective date of the first version without it, after its last sighting
    let mut removed: std::collections::BTreeMap<String, NaiveDate> = Default::default();
    for v in versions.iter_mut() {
        let date = v.version();
        for code in last_seen.keys() {
            if !v.regions.iter().any(|r| &r.region == code) {
                removed.entry(code.clone()).or_insert(date);
            }
        }
        for r in &v.regions {
            last_seen.insert(r.region.clone(), date);
            removed.remove(&r.region);
        }
        v.retired_regions = removed
            .iter()
            .filter_map(|(code, removed_in)| {
                Some(RetiredRegion {
                    region: code.clone(),
                    last_priced_in: *last_seen.get(code)?,
                    removed_in: *removed_in,
                })
            })
            .collect();
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file())
    }
}

#[cfg(test)]
mod tests;
