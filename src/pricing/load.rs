//! Reading and validating pricing versions, from the embedded copy of `pricing/` or from
//! a directory. Every error names the file, and where it applies the line and column.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::allowances::{AllowanceItem, AllowanceRow, parse_groups};
use super::{
    BandwidthRow, Catalog, ComputeRow, ItemRow, Manifest, Markup, MemoryRow, NetworkRows,
    PriceTable, Provenance, RegionRow, ReservationRow, Status, StorageRows, TableName,
};
use crate::diag::Mark;
use crate::platform::{CpuKind, OrgPlan, RegionGroup};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_pricing.rs"));
}

/// A pricing table that cannot be used: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PricingError {
    pub file: String,
    pub line: Option<u32>,
    /// The 1-based character column on `line` (YAML files; a CSV error names its
    /// `column` instead).
    pub col: Option<u32>,
    /// The CSV column.
    pub column: Option<String>,
    pub message: String,
    pub hint: String,
}

impl PricingError {
    pub(crate) fn new(file: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        PricingError {
            file: file.to_string(),
            line: None,
            col: None,
            column: None,
            message: message.into(),
            hint: hint.into(),
        }
    }
    fn at(mut self, line: u32, column: Option<&str>) -> Self {
        self.line = Some(line);
        self.column = column.map(String::from);
        self
    }
    /// At a YAML position, when it is known.
    pub(super) fn at_mark(mut self, mark: Option<Mark>) -> Self {
        if let Some(m) = mark {
            self.line = Some(m.line);
            self.col = Some(m.col);
        }
        self
    }
}

impl PricingError {
    /// The error as a diagnostic: `file:line[:col]`, the CSV column as its path, and the
    /// hint.
    pub fn to_diagnostic(&self) -> crate::diag::Diagnostic {
        let d = crate::diag::Diagnostic::error(self.message.clone());
        let mut d = match (self.line, self.col) {
            (Some(line), Some(col)) => d.file(self.file.clone()).at(Mark { line, col }),
            (Some(l), None) => d.file(format!("{}:{l}", self.file)),
            (None, _) => d.file(self.file.clone()),
        };
        if let Some(c) = &self.column {
            d = d.path(format!("column `{c}`"));
        }
        if !self.hint.is_empty() {
            d = d.hint(self.hint.clone());
        }
        d
    }
}

impl fmt::Display for PricingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let (Some(_), Some(col)) = (self.line, self.col) {
            write!(f, ":{col}")?;
        }
        if let Some(col) = &self.column {
            write!(f, ", column `{col}`")?;
        }
        write!(f, ": {}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Every embedded file: path relative to `pricing/`, and contents.
pub fn embedded_files() -> &'static [(&'static str, &'static str)] {
    embedded::FILES
}

/// Writes the embedded tables under `dest` (as `dest/fly/<date>/…`), so a user can start
/// a table of their own from them. Returns the files written.
pub fn export_embedded(dest: &Path) -> Result<Vec<std::path::PathBuf>, PricingError> {
    let mut written = Vec::new();
    for (rel, text) in embedded::FILES {
        let path = dest.join(rel);
        let label = path.display().to_string();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                PricingError::new(&label, format!("cannot create the directory: {e}"), "")
            })?;
        }
        crate::fsutil::write_atomic(&path, text.as_bytes())
            .map_err(|e| PricingError::new(&label, format!("cannot write: {e}"), ""))?;
        written.push(path);
    }
    Ok(written)
}

/// The embedded catalog (the `fly` provider of `pricing/`).
pub(super) fn embedded() -> Result<Catalog, PricingError> {
    let mut dirs: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (path, text) in embedded::FILES {
        if let Some(rest) = path.strip_prefix("fly/")
            && let Some((dir, file)) = rest.split_once('/')
        {
            dirs.entry(dir).or_default().push((file, text));
        }
    }
    let mut versions = Vec::new();
    for (dir, files) in dirs {
        let label = format!("pricing/fly/{dir}");
        let read = |name: &str| -> Result<Option<String>, PricingError> {
            Ok(files
                .iter()
                .find(|(f, _)| *f == name)
                .map(|(_, t)| (*t).to_string()))
        };
        versions.push(parse_version(&label, Some(dir), &read)?);
    }
    finish("embedded pricing/fly".into(), versions)
}

/// The largest pricing file read (a manifest or a table), in bytes.
pub const MAX_TABLE_BYTES: u64 = 4 * 1024 * 1024;

/// A directory: one version, a provider directory of versions, or a root holding `fly/`.
pub(super) fn from_dir(dir: &Path) -> Result<Catalog, PricingError> {
    let label = dir.display().to_string();
    if !dir.is_dir() {
        return Err(PricingError::new(
            &label,
            "is not a directory",
            "pass a directory holding manifest.yaml, or one subdirectory per effective date",
        ));
    }
    if dir.join("manifest.yaml").is_file() {
        let v = read_version_dir(dir)?;
        return finish(label, vec![v]);
    }
    if dir.join("fly").is_dir() {
        return from_dir(&dir.join("fly"));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| PricingError::new(&label, format!("cannot list: {e}"), ""))?;
    let mut subdirs: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("manifest.yaml").is_file())
        .collect();
    subdirs.sort();
    if subdirs.is_empty() {
        return Err(PricingError::new(
            &label,
            "holds no pricing version",
            "expected DIR/manifest.yaml, or DIR/<YYYY-MM-DD>/manifest.yaml with its CSV tables",
        ));
    }
    let versions = subdirs
        .iter()
        .map(|d| read_version_dir(d))
        .collect::<Result<Vec<_>, _>>()?;
    finish(label, versions)
}

fn read_version_dir(dir: &Path) -> Result<PriceTable, PricingError> {
    let label = dir.display().to_string();
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let read = |file: &str| -> Result<Option<String>, PricingError> {
        let path = dir.join(file);
        if !path.exists() {
            return Ok(None);
        }
        let where_ = format!("{label}/{file}");
        let bytes = crate::fsutil::read_bounded(&path, MAX_TABLE_BYTES)
            .map_err(|e| PricingError::new(&where_, e.to_string(), e.hint()))?;
        if let Some(d) = crate::spec::yaml::control_char_problem(&bytes) {
            return Err(
                PricingError::new(&where_, d.message, d.hint.unwrap_or_default()).at_mark(d.mark),
            );
        }
        String::from_utf8(bytes).map(Some).map_err(|e| {
            PricingError::new(
                &where_,
                format!("not valid UTF-8: {e}"),
                "save the file as UTF-8",
            )
        })
    };
    parse_version(&label, name.as_deref(), &read)
}

fn finish(origin: String, versions: Vec<PriceTable>) -> Result<Catalog, PricingError> {
    let mut seen: HashMap<NaiveDate, &str> = HashMap::new();
    for v in &versions {
        if let Some(other) = seen.insert(v.version(), &v.origin) {
            return Err(PricingError::new(
                &format!("{}/manifest.yaml", v.origin),
                format!("effective_date {} is also the date of {other}", v.version()),
                "each version needs its own effective date",
            ));
        }
    }
    Ok(Catalog::new(origin, versions))
}

/// One CSV record with helpers that turn bad cells into located errors.
struct Rec<'a> {
    file: &'a str,
    line: u32,
    cols: &'a [&'a str],
    fields: Vec<String>,
    manifest: &'a Manifest,
}

impl<'a> Rec<'a> {
    fn err(&self, col: &str, message: impl Into<String>, hint: impl Into<String>) -> PricingError {
        PricingError::new(self.file, message, hint).at(self.line, Some(col))
    }

    fn str(&self, col: &str) -> Result<&str, PricingError> {
        let i = self
            .cols
            .iter()
            .position(|c| *c == col)
            .unwrap_or(usize::MAX);
        match self.fields.get(i).map(|s| s.as_str()) {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.err(
                col,
                "is empty",
                "every cell of a pricing table needs a value",
            )),
        }
    }

    /// Whether the file's header has `col`.
    fn has(&self, col: &str) -> bool {
        self.cols.contains(&col)
    }

    /// A price given either per second (`per_second`, then also returned) or per 30 days
    /// (`per_30d`); the 30-day price of a per-second rate is rate x `seconds`, exactly.
    fn rate(
        &self,
        per_second: &str,
        per_30d: &str,
        seconds: Decimal,
    ) -> Result<(Option<Decimal>, Decimal), PricingError> {
        if self.has(per_second) {
            let ps = self.positive(per_second)?;
            Ok((Some(ps), (ps * seconds).normalize()))
        } else {
            Ok((None, self.positive(per_30d)?))
        }
    }

    /// A region's markup and phase-in, or its multiplier as written.
    fn markup(&self) -> Result<(Option<Markup>, Decimal), PricingError> {
        if !self.has("markup") {
            return Ok((None, self.positive("compute_multiplier")?));
        }
        let markup = self.positive("markup")?;
        let phase_in = self.dec("phase_in")?;
        if phase_in > Decimal::ONE {
            return Err(self.err(
                "phase_in",
                format!("{phase_in} is more than 1"),
                "the share of the markup in force is between 0 (baseline price) and 1 (full markup)",
            ));
        }
        let m = Markup { markup, phase_in };
        Ok((Some(m), m.multiplier()))
    }

    fn opt_str(&self, col: &str) -> &str {
        let i = self
            .cols
            .iter()
            .position(|c| *c == col)
            .unwrap_or(usize::MAX);
        self.fields.get(i).map(|s| s.as_str()).unwrap_or("")
    }

    /// A non-negative decimal number (plain notation: `1.94`, never `1.94e0`).
    fn dec(&self, col: &str) -> Result<Decimal, PricingError> {
        let s = self.str(col)?;
        const PLAIN: &str = "write plain decimal dollars or quantities, e.g. 1.94 (no currency sign, no thousands separator, no exponent)";
        if is_exponent(s) {
            return Err(self.err(col, format!("`{s}` is in exponent notation"), PLAIN));
        }
        let d = Decimal::from_str(s).map_err(|_| {
            let digits = s.strip_prefix('-').unwrap_or(s);
            let numeric = !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
                && digits.matches('.').count() <= 1;
            if numeric {
                self.err(
                    col,
                    format!("`{s}` is too large"),
                    "a price or quantity fits in 28 significant digits; check the cell",
                )
            } else {
                self.err(col, format!("`{s}` is not a number"), PLAIN)
            }
        })?;
        if d.is_sign_negative() {
            return Err(self.err(
                col,
                format!("`{s}` is negative"),
                "prices and quantities are never negative",
            ));
        }
        Ok(d)
    }

    /// A decimal number greater than zero.
    fn positive(&self, col: &str) -> Result<Decimal, PricingError> {
        let d = self.dec(col)?;
        if d.is_zero() {
            return Err(self.err(
                col,
                "is 0",
                "a zero here would price resources at nothing; write the published figure",
            ));
        }
        Ok(d)
    }

    fn u32(&self, col: &str) -> Result<u32, PricingError> {
        let s = self.str(col)?;
        s.parse::<u32>().map_err(|_| {
            self.err(
                col,
                format!("`{s}` is not a whole number"),
                "write a count such as 2",
            )
        })
    }

    fn cpu_kind(&self, col: &str) -> Result<CpuKind, PricingError> {
        match self.str(col)? {
            "shared" => Ok(CpuKind::Shared),
            "performance" => Ok(CpuKind::Performance),
            other => Err(self.err(
                col,
                format!("unknown cpu kind `{other}`"),
                "use `shared` or `performance`",
            )),
        }
    }

    fn group(&self, col: &str) -> Result<RegionGroup, PricingError> {
        let s = self.str(col)?;
        RegionGroup::from_code(s).ok_or_else(|| {
            let all: Vec<&str> = RegionGroup::ALL.iter().map(|g| g.code()).collect();
            self.err(
                col,
                format!("unknown region group `{s}`"),
                format!("use one of: {}", all.join(", ")),
            )
        })
    }

    fn prov(&self) -> Result<Provenance, PricingError> {
        let status_s = self.str("status")?;
        let status = Status::parse(status_s).ok_or_else(|| {
            self.err(
                "status",
                format!("unknown status `{status_s}`"),
                "use published, derived or assumed",
            )
        })?;
        let source = self.str("source")?;
        if !self.manifest.sources.iter().any(|s| s.id == source) {
            let ids: Vec<&str> = self
                .manifest
                .sources
                .iter()
                .map(|s| s.id.as_str())
                .collect();
            return Err(self.err(
                "source",
                format!("source `{source}` is not listed in manifest.yaml"),
                format!("use one of: {}", ids.join(", ")),
            ));
        }
        let note = self.opt_str("note");
        if status != Status::Published && note.is_empty() {
            return Err(self.err(
                "note",
                format!(
                    "{} {} figure needs a note",
                    if status == Status::Assumed { "an" } else { "a" },
                    status.as_str()
                ),
                "say how it was derived, or why it is assumed",
            ));
        }
        Ok(Provenance {
            line: self.line,
            status,
            source: source.to_string(),
            note: note.to_string(),
        })
    }
}

const PROV_COLS: [&str; 3] = ["status", "source", "note"];

/// The header a table takes: columns it always has, pairs of which it has exactly one
/// (a per-second rate or a 30-day price, say), and whether it may have no rows.
struct Shape<'a> {
    cols: &'a [&'a str],
    either: &'a [[&'a str; 2]],
    /// Columns that go with the first of a pair: (`companion`, `first`).
    with_first: &'a [(&'a str, &'a str)],
    may_be_empty: bool,
}

impl<'a> Shape<'a> {
    fn of(cols: &'a [&'a str]) -> Self {
        Shape {
            cols,
            either: &[],
            with_first: &[],
            may_be_empty: false,
        }
    }
    fn allowed(&self) -> Vec<&'a str> {
        let mut v = self.cols.to_vec();
        v.extend(self.either.iter().flatten().copied());
        v.extend(self.with_first.iter().map(|(c, _)| *c));
        v
    }
    /// The header as the user should write it (the first of each pair).
    fn header(&self) -> String {
        let mut v: Vec<&str> = self.either.iter().map(|[a, _]| *a).collect();
        v.extend(self.with_first.iter().map(|(c, _)| *c));
        v.splice(
            0..0,
            self.cols.iter().copied().filter(|c| !PROV_COLS.contains(c)),
        );
        v.extend(PROV_COLS);
        let mut h = v.join(",");
        for [a, b] in self.either {
            h.push_str(&format!(" (or `{b}` instead of `{a}`)"));
        }
        h
    }
    /// Checks the header row against the shape.
    fn check(&self, file: &str, headers: &[String]) -> Result<(), PricingError> {
        let has = |c: &str| headers.iter().any(|h| h == c);
        for col in self.cols {
            if !has(col) {
                return Err(PricingError::new(
                    file,
                    format!("column `{col}` is missing"),
                    format!("the header must be: {}", self.header()),
                )
                .at(1, Some(col)));
            }
        }
        for [a, b] in self.either {
            let message = match (has(a), has(b)) {
                (true, true) => format!("columns `{a}` and `{b}` are both present"),
                (false, false) => format!("column `{a}` (or `{b}`) is missing"),
                _ => continue,
            };
            return Err(PricingError::new(
                file,
                message,
                format!(
                    "give exactly one of them; the header must be: {}",
                    self.header()
                ),
            )
            .at(1, Some(a)));
        }
        for (companion, first) in self.with_first {
            if has(first) != has(companion) {
                let (message, col) = if has(first) {
                    (
                        format!("column `{companion}` is missing (it goes with `{first}`)"),
                        *first,
                    )
                } else {
                    (format!("column `{companion}` needs `{first}`"), *companion)
                };
                return Err(PricingError::new(
                    file,
                    message,
                    format!("the header must be: {}", self.header()),
                )
                .at(1, Some(col)));
            }
        }
        let allowed = self.allowed();
        if let Some(extra) = headers.iter().find(|h| !allowed.contains(&h.as_str())) {
            return Err(PricingError::new(
                file,
                format!("unknown column `{extra}`"),
                format!("the header must be: {}", self.header()),
            )
            .at(1, Some(extra)));
        }
        Ok(())
    }
}

/// Reads a CSV file whose header must match `shape`, turning each record into a row with
/// `make`, and rejects duplicate keys.
fn read_table<T: super::Row>(
    dir: &str,
    table: TableName,
    text: Option<String>,
    shape: &Shape<'_>,
    manifest: &Manifest,
    make: impl Fn(&Rec<'_>) -> Result<T, PricingError>,
) -> Result<Vec<T>, PricingError> {
    let file = format!("{dir}/{}", table.file());
    let Some(text) = text else {
        return Err(PricingError::new(
            &file,
            "is missing",
            format!(
                "a pricing version needs {}",
                TableName::ALL.map(|t| t.file()).join(", ")
            ),
        ));
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| PricingError::new(&file, format!("cannot read the header: {e}"), ""))?
        .iter()
        .map(String::from)
        .collect();
    shape.check(&file, &headers)?;
    let allowed = shape.allowed();
    let order: Vec<&str> = headers
        .iter()
        .filter_map(|h| allowed.iter().copied().find(|c| c == h))
        .collect();
    let mut rows: Vec<T> = Vec::new();
    let mut keys: HashMap<String, u32> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as u32);
            let mut err = PricingError::new(
                &file,
                format!("malformed row: {e}"),
                "every row needs one value per header column; quote values that contain commas",
            );
            err.line = line;
            err
        })?;
        let line = record.position().map(|p| p.line() as u32).unwrap_or(0);
        let rec = Rec {
            file: &file,
            line,
            cols: &order,
            fields: record.iter().map(String::from).collect(),
            manifest,
        };
        let row = make(&rec)?;
        let key = row.key();
        if let Some(first) = keys.insert(key.clone(), line) {
            return Err(PricingError::new(
                &file,
                format!("duplicate row `{key}` (first on line {first})"),
                "each row's key must be unique; delete one of the two rows",
            )
            .at(line, Some(shape.cols[0])));
        }
        rows.push(row);
    }
    if rows.is_empty() && !shape.may_be_empty {
        return Err(PricingError::new(
            &file,
            "has no rows",
            "fill the table from the sources",
        ));
    }
    Ok(rows)
}

fn cols<const N: usize>(own: [&'static str; N]) -> Vec<&'static str> {
    own.into_iter().chain(PROV_COLS).collect()
}

/// The file reader of one version directory: `read` returns a file's text, or `None` if
/// absent.
type ReadFile<'a> = &'a dyn Fn(&str) -> Result<Option<String>, PricingError>;

/// Parses and validates one version; `read` returns a file's text, or `None` if absent.
pub(crate) fn parse_version(
    dir: &str,
    dir_name: Option<&str>,
    read: ReadFile<'_>,
) -> Result<PriceTable, PricingError> {
    let manifest = read_manifest(dir, dir_name, read)?;
    let v = VersionDir {
        dir,
        read,
        manifest: &manifest,
        seconds: Decimal::from(manifest.hours_per_month) * Decimal::from(3600),
    };
    let compute = v.compute()?;
    let memory = v.memory()?;
    let regions = v.regions()?;
    let storage = v.items(TableName::Storage)?;
    let network = v.items(TableName::Network)?;
    let bandwidth = v.bandwidth()?;
    let reservations = v.reservations()?;
    let allowances = v.allowances()?;
    check_allowances(dir, &allowances)?;
    check_memory_priced(dir, &compute, &memory)?;
    check_bandwidth_priced(dir, &regions, &bandwidth)?;
    let storage = storage_rows(dir, storage)?;
    let network = network_rows(dir, network)?;
    Ok(PriceTable {
        manifest,
        origin: dir.to_string(),
        compute,
        memory,
        regions,
        storage,
        bandwidth,
        network,
        reservations,
        allowances,
        retired_regions: Vec::new(),
    })
}

/// Reads and parses `manifest.yaml`, which every version directory needs.
fn read_manifest(
    dir: &str,
    dir_name: Option<&str>,
    read: ReadFile<'_>,
) -> Result<Manifest, PricingError> {
    let manifest_file = format!("{dir}/manifest.yaml");
    let Some(text) = read("manifest.yaml")? else {
        return Err(PricingError::new(
            &manifest_file,
            "is missing",
            "each version directory needs a manifest.yaml",
        ));
    };
    super::manifest::parse_manifest(&manifest_file, &text, dir_name)
}

/// One version directory being read: where it is, how to read its files, its manifest
/// and the number of seconds in its month (for rates given per 30 days).
struct VersionDir<'a> {
    dir: &'a str,
    read: ReadFile<'a>,
    manifest: &'a Manifest,
    seconds: Decimal,
}

impl VersionDir<'_> {
    /// Reads `table`'s CSV file with `shape`, making each row with `make`.
    fn table<T: super::Row>(
        &self,
        table: TableName,
        shape: &Shape<'_>,
        make: impl Fn(&Rec<'_>) -> Result<T, PricingError>,
    ) -> Result<Vec<T>, PricingError> {
        let text = (self.read)(table.file())?;
        read_table(self.dir, table, text, shape, self.manifest, make)
    }

    fn compute(&self) -> Result<Vec<ComputeRow>, PricingError> {
        let compute_cols = cols(["preset", "cpu_kind", "cpus", "base_memory_mb"]);
        let shape = Shape {
            either: &[["price_per_second", "price_per_30d"]],
            ..Shape::of(&compute_cols)
        };
        self.table(TableName::Compute, &shape, |r| compute_row(r, self.seconds))
    }

    fn memory(&self) -> Result<Vec<MemoryRow>, PricingError> {
        let memory_cols = cols(["cpu_kind"]);
        let shape = Shape {
            either: &[["price_per_gb_second", "price_per_gb_30d"]],
            ..Shape::of(&memory_cols)
        };
        self.table(TableName::Memory, &shape, |r| {
            let (price_per_gb_second, price_per_gb_30d) =
                r.rate("price_per_gb_second", "price_per_gb_30d", self.seconds)?;
            Ok(MemoryRow {
                cpu_kind: r.cpu_kind("cpu_kind")?,
                price_per_gb_second,
                price_per_gb_30d,
                prov: r.prov()?,
            })
        })
    }

    fn regions(&self) -> Result<Vec<RegionRow>, PricingError> {
        let region_cols = cols(["region", "city", "group"]);
        let shape = Shape {
            either: &[["markup", "compute_multiplier"]],
            with_first: &[("phase_in", "markup")],
            ..Shape::of(&region_cols)
        };
        self.table(TableName::Regions, &shape, |r| {
            let (markup, compute_multiplier) = r.markup()?;
            Ok(RegionRow {
                region: r.str("region")?.to_string(),
                city: r.str("city")?.to_string(),
                group: r.group("group")?,
                markup,
                compute_multiplier,
                prov: r.prov()?,
            })
        })
    }

    /// An item table (storage, network): item, unit, price and the free amount.
    fn items(&self, table: TableName) -> Result<Vec<ItemRow>, PricingError> {
        let item_cols = cols(["item", "unit", "price", "free_per_org"]);
        self.table(table, &Shape::of(&item_cols), |r| {
            Ok(ItemRow {
                table,
                item: r.str("item")?.to_string(),
                unit: r.str("unit")?.to_string(),
                price: r.dec("price")?,
                free_per_org: r.dec("free_per_org")?,
                prov: r.prov()?,
            })
        })
    }

    fn bandwidth(&self) -> Result<Vec<BandwidthRow>, PricingError> {
        let bandwidth_cols = cols(["group", "egress_per_gb", "private_per_gb"]);
        self.table(TableName::Bandwidth, &Shape::of(&bandwidth_cols), |r| {
            Ok(BandwidthRow {
                group: r.group("group")?,
                egress_per_gb: r.dec("egress_per_gb")?,
                private_per_gb: r.dec("private_per_gb")?,
                prov: r.prov()?,
            })
        })
    }

    fn reservations(&self) -> Result<Vec<ReservationRow>, PricingError> {
        let reservation_cols = cols(["cpu_kind", "upfront_per_year", "credit_per_month"]);
        let shape = Shape {
            // Empty in versions in force before reservation blocks were offered.
            may_be_empty: true,
            ..Shape::of(&reservation_cols)
        };
        self.table(TableName::Reservations, &shape, |r| {
            Ok(ReservationRow {
                cpu_kind: r.cpu_kind("cpu_kind")?,
                upfront_per_year: r.positive("upfront_per_year")?,
                credit_per_month: r.positive("credit_per_month")?,
                prov: r.prov()?,
            })
        })
    }

    fn allowances(&self) -> Result<Vec<AllowanceRow>, PricingError> {
        let allowance_cols = cols(["plan", "item", "regions", "amount", "unit", "new_orgs"]);
        self.table(
            TableName::Allowances,
            &Shape::of(&allowance_cols),
            allowance_row,
        )
    }
}

/// One `compute.csv` row: a preset with at least one vCPU and memory in multiples of
/// 256 MB.
fn compute_row(r: &Rec<'_>, seconds: Decimal) -> Result<ComputeRow, PricingError> {
    let cpus = r.u32("cpus")?;
    if cpus == 0 {
        return Err(r.err("cpus", "is 0", "a preset has at least one vCPU"));
    }
    let base_memory_mb = r.u32("base_memory_mb")?;
    if base_memory_mb == 0 || base_memory_mb % 256 != 0 {
        return Err(r.err(
            "base_memory_mb",
            format!("{base_memory_mb} is not a positive multiple of 256"),
            "Fly sets memory in multiples of 256 MB",
        ));
    }
    let (price_per_second, price_per_30d) = r.rate("price_per_second", "price_per_30d", seconds)?;
    Ok(ComputeRow {
        preset: r.str("preset")?.to_string(),
        cpu_kind: r.cpu_kind("cpu_kind")?,
        cpus,
        base_memory_mb,
        price_per_second,
        price_per_30d,
        prov: r.prov()?,
    })
}

/// Every CPU class of `compute.csv` has an additional-RAM price in `memory.csv`.
fn check_memory_priced(
    dir: &str,
    compute: &[ComputeRow],
    memory: &[MemoryRow],
) -> Result<(), PricingError> {
    let Some(row) = compute
        .iter()
        .find(|row| !memory.iter().any(|m| m.cpu_kind == row.cpu_kind))
    else {
        return Ok(());
    };
    Err(PricingError::new(
        &format!("{dir}/{}", TableName::Compute.file()),
        format!(
            "cpu kind `{}` has no additional-RAM price in memory.csv",
            row.cpu_kind.as_str()
        ),
        "add a memory.csv row for it",
    )
    .at(row.prov.line, Some("cpu_kind")))
}

/// Every region group of `regions.csv` is priced in `bandwidth.csv`.
fn check_bandwidth_priced(
    dir: &str,
    regions: &[RegionRow],
    bandwidth: &[BandwidthRow],
) -> Result<(), PricingError> {
    let Some(row) = regions
        .iter()
        .find(|row| !bandwidth.iter().any(|b| b.group == row.group))
    else {
        return Ok(());
    };
    Err(PricingError::new(
        &format!("{dir}/{}", TableName::Regions.file()),
        format!(
            "region group `{}` has no row in bandwidth.csv",
            row.group.code()
        ),
        "add the group's egress prices to bandwidth.csv",
    )
    .at(row.prov.line, Some("group")))
}

/// The storage table's required items, in their fixed order.
fn storage_rows(dir: &str, storage: Vec<ItemRow>) -> Result<StorageRows, PricingError> {
    let [volume, rootfs, snapshot] =
        take_items(dir, TableName::Storage, storage, &StorageRows::ITEMS)?;
    Ok(StorageRows {
        volume,
        rootfs,
        snapshot,
    })
}

/// The network table's required items and its optional static egress IP.
fn network_rows(dir: &str, network: Vec<ItemRow>) -> Result<NetworkRows, PricingError> {
    let static_egress_ip = network
        .iter()
        .find(|r| r.item == NetworkRows::OPTIONAL[0])
        .cloned();
    let network: Vec<ItemRow> = network
        .into_iter()
        .filter(|r| !NetworkRows::OPTIONAL.contains(&r.item.as_str()))
        .collect();
    let [dedicated_ipv4, certificate, wildcard_certificate] =
        take_items(dir, TableName::Network, network, &NetworkRows::ITEMS)?;
    Ok(NetworkRows {
        dedicated_ipv4,
        certificate,
        wildcard_certificate,
        static_egress_ip,
    })
}

/// Checks that an item table has exactly the `required` items and returns them in that
/// order.
fn take_items<const N: usize>(
    dir: &str,
    table: TableName,
    rows: Vec<ItemRow>,
    required: &[&str; N],
) -> Result<[ItemRow; N], PricingError> {
    let file = format!("{dir}/{}", table.file());
    if let Some(unknown) = rows.iter().find(|r| !required.contains(&r.item.as_str())) {
        return Err(PricingError::new(
            &file,
            format!("unknown item `{}`", unknown.item),
            format!("the items are: {}", required.join(", ")),
        )
        .at(unknown.prov.line, Some("item")));
    }
    let missing = |name: &str| {
        PricingError::new(
            &file,
            format!("item `{name}` is missing"),
            format!("the items are: {}", required.join(", ")),
        )
    };
    let mut found = Vec::with_capacity(N);
    for name in required {
        match rows.iter().find(|r| r.item == *name) {
            Some(row) => found.push(row.clone()),
            None => return Err(missing(name)),
        }
    }
    // One row per required item, so the conversion cannot fail.
    found.try_into().map_err(|_| missing(required[0]))
}

/// `1.94e0`, `7.5E-7`: a number in exponent notation (which price cells refuse).
fn is_exponent(s: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit());
    let Some((mantissa, exp)) = s.split_once(['e', 'E']) else {
        return false;
    };
    let mantissa = mantissa.trim_start_matches(['-', '+']);
    let exp = exp.trim_start_matches(['-', '+']);
    digits(&mantissa.replacen('.', "", 1)) && digits(exp)
}

/// One `allowances.csv` row: a known plan and item, the item's unit, `regions` only on
/// egress rows, `new_orgs` yes or no.
fn allowance_row(r: &Rec<'_>) -> Result<AllowanceRow, PricingError> {
    let plan_s = r.str("plan")?;
    let plan = OrgPlan::from_code(plan_s).ok_or_else(|| {
        r.err(
            "plan",
            format!("unknown plan `{plan_s}`"),
            format!("use one of: {}", OrgPlan::CODES.join(", ")),
        )
    })?;
    let item_s = r.str("item")?;
    let item = AllowanceItem::from_code(item_s).ok_or_else(|| {
        let all: Vec<&str> = AllowanceItem::ALL.iter().map(|i| i.code()).collect();
        r.err(
            "item",
            format!("unknown item `{item_s}`"),
            format!("use one of: {}", all.join(", ")),
        )
    })?;
    let unit = r.str("unit")?;
    if unit != item.unit() {
        return Err(r.err(
            "unit",
            format!("`{item_s}` is counted in {}, not `{unit}`", item.unit()),
            format!("write {}", item.unit()),
        ));
    }
    let groups = parse_groups(r.str("regions")?).map_err(|m| {
        r.err(
            "regions",
            m,
            "write `all` or region groups joined by `+`, e.g. north_america+europe",
        )
    })?;
    if item != AllowanceItem::EgressGb && !groups.is_empty() {
        return Err(r.err(
            "regions",
            format!("only egress allowances are per region group; `{item_s}` covers `all`"),
            "write `all`",
        ));
    }
    let new_orgs = match r.str("new_orgs")? {
        "yes" => true,
        "no" => false,
        other => {
            return Err(r.err(
                "new_orgs",
                format!("`{other}` is neither yes nor no"),
                "yes: Fly offers the plan to new organizations at this date; no: only organizations already on it keep it",
            ));
        }
    };
    Ok(AllowanceRow {
        plan,
        item,
        groups,
        amount: r.dec("amount")?,
        new_orgs,
        prov: r.prov()?,
    })
}

/// Every plan has a `fee` row (0 for a plan without one); a plan's rows agree on
/// `new_orgs`; a plan's egress allowances cover each region group at most once.
fn check_allowances(dir: &str, rows: &[AllowanceRow]) -> Result<(), PricingError> {
    let file = format!("{dir}/{}", TableName::Allowances.file());
    for row in rows {
        let same_plan = || rows.iter().filter(|o| o.plan == row.plan);
        if !same_plan().any(|o| o.item == AllowanceItem::Fee) {
            return Err(PricingError::new(
                &file,
                format!("plan `{}` has no `fee` row", row.plan.code()),
                "give every plan a fee row (amount 0 for a plan without a fee)",
            )
            .at(row.prov.line, Some("plan")));
        }
        if let Some(o) = same_plan().find(|o| o.new_orgs != row.new_orgs) {
            return Err(PricingError::new(
                &file,
                format!(
                    "plan `{}` has new_orgs both yes and no (lines {} and {})",
                    row.plan.code(),
                    o.prov.line.min(row.prov.line),
                    o.prov.line.max(row.prov.line)
                ),
                "a plan is either offered to new organizations at this date or not",
            )
            .at(row.prov.line.max(o.prov.line), Some("new_orgs")));
        }
        let overlaps = |o: &&AllowanceRow| {
            o.prov.line < row.prov.line
                && o.item == AllowanceItem::EgressGb
                && (o.groups.is_empty()
                    || row.groups.is_empty()
                    || o.groups.iter().any(|g| row.groups.contains(g)))
        };
        if row.item == AllowanceItem::EgressGb
            && let Some(o) = same_plan().find(overlaps)
        {
            return Err(PricingError::new(
                &file,
                format!(
                    "plan `{}` has two egress allowances for the same region group (line {})",
                    row.plan.code(),
                    o.prov.line
                ),
                "each region group is in at most one egress allowance of a plan",
            )
            .at(row.prov.line, Some("regions")));
        }
    }
    Ok(())
}
