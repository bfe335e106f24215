//! Facts about the Fly.io platform that validation needs: regions and Machine presets,
//! naming rules, memory, volume and idle limits, and one validator per concept (specs,
//! what-if scenarios and the simulator all call these, so a rule is written once).
//!
//! Sources: Fly's region list (2026) and the Machine presets of Fly's Go client
//! (`MachinePresets`), summarised in `shared/reference/FLY_PRICING_FACTS.md`.
//! Prices live in `pricing/`, not here.

pub mod machine_config;

/// The CPU class of a Machine.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum CpuKind {
    Shared,
    Performance,
}

impl CpuKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CpuKind::Shared => "shared",
            CpuKind::Performance => "performance",
        }
    }

    /// Allowed memory per vCPU, in MB: shared 256 MB–2 GB, performance 2–8 GB.
    pub fn memory_per_cpu_mb(self) -> (u32, u32) {
        match self {
            CpuKind::Shared => (256, 2048),
            CpuKind::Performance => (2048, 8192),
        }
    }
}

/// A named Machine size ("preset").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub cpu_kind: CpuKind,
    pub cpus: u32,
    /// The memory the preset includes in its price.
    pub base_memory_mb: u32,
}

impl Preset {
    pub fn min_memory_mb(&self) -> u32 {
        self.cpu_kind.memory_per_cpu_mb().0 * self.cpus
    }
    pub fn max_memory_mb(&self) -> u32 {
        self.cpu_kind.memory_per_cpu_mb().1 * self.cpus
    }
}

const fn shared(name: &'static str, cpus: u32) -> Preset {
    Preset {
        name,
        cpu_kind: CpuKind::Shared,
        cpus,
        base_memory_mb: 256 * cpus,
    }
}
const fn perf(name: &'static str, cpus: u32) -> Preset {
    Preset {
        name,
        cpu_kind: CpuKind::Performance,
        cpus,
        base_memory_mb: 2048 * cpus,
    }
}

/// Every preset Fly offers.
pub const PRESETS: &[Preset] = &[
    shared("shared-cpu-1x", 1),
    shared("shared-cpu-2x", 2),
    shared("shared-cpu-4x", 4),
    shared("shared-cpu-6x", 6),
    shared("shared-cpu-8x", 8),
    perf("performance-1x", 1),
    perf("performance-2x", 2),
    perf("performance-4x", 4),
    perf("performance-6x", 6),
    perf("performance-8x", 8),
    perf("performance-10x", 10),
    perf("performance-12x", 12),
    perf("performance-14x", 14),
    perf("performance-16x", 16),
];

pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// The preset matching a guest (cpu kind and count), if any.
pub fn preset_for(cpu_kind: CpuKind, cpus: u32) -> Option<&'static Preset> {
    PRESETS
        .iter()
        .find(|p| p.cpu_kind == cpu_kind && p.cpus == cpus)
}

/// Fly's bandwidth group of a region, which sets its egress price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegionGroup {
    NorthAmerica,
    Europe,
    AsiaPacific,
    Oceania,
    SouthAmerica,
    Africa,
    India,
}

impl RegionGroup {
    pub const ALL: [RegionGroup; 7] = [
        RegionGroup::NorthAmerica,
        RegionGroup::Europe,
        RegionGroup::AsiaPacific,
        RegionGroup::Oceania,
        RegionGroup::SouthAmerica,
        RegionGroup::Africa,
        RegionGroup::India,
    ];

    /// The identifier used in pricing tables.
    pub fn code(self) -> &'static str {
        match self {
            RegionGroup::NorthAmerica => "north_america",
            RegionGroup::Europe => "europe",
            RegionGroup::AsiaPacific => "asia_pacific",
            RegionGroup::Oceania => "oceania",
            RegionGroup::SouthAmerica => "south_america",
            RegionGroup::Africa => "africa",
            RegionGroup::India => "india",
        }
    }

    pub fn from_code(s: &str) -> Option<RegionGroup> {
        RegionGroup::ALL.into_iter().find(|g| g.code() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub code: &'static str,
    pub city: &'static str,
    pub group: RegionGroup,
    /// The date Fly removed the region from its region list (ISO `YYYY-MM-DD`), for a
    /// region that no longer exists: specs and scenarios may still name it (to price a
    /// fleet as it was), with a warning.
    pub removed: Option<&'static str>,
}

impl Region {
    /// The warning for a removed region: what happened, and what still works.
    pub fn removal_problem(&self) -> Option<Problem> {
        let removed = self.removed?;
        Some(Problem {
            message: format!(
                "region `{}` ({}) was removed by Fly on {removed}; Machines cannot be created there any more",
                self.code, self.city
            ),
            hint: format!(
                "move to a current region ({}); cost estimates price `{}` only with --pricing-date before {removed}",
                current_region_suggestions(self.group),
                self.code
            ),
        })
    }
}

/// Up to three current regions of a bandwidth group, as the hint names them.
fn current_region_suggestions(group: RegionGroup) -> String {
    let v: Vec<&str> = REGIONS
        .iter()
        .filter(|r| r.removed.is_none() && r.group == group)
        .take(3)
        .map(|r| r.code)
        .collect();
    if v.is_empty() {
        "see `fly platform regions`".into()
    } else {
        format!("e.g. {}", v.join(", "))
    }
}

const fn r(code: &'static str, city: &'static str, group: RegionGroup) -> Region {
    Region {
        code,
        city,
        group,
        removed: None,
    }
}

/// The date Fly removed its 17 deprecated regions from the regions page (superfly/docs
/// `reference/regions.html.markerb`, commit `0a027083`, 2025-10-16).
pub const REGIONS_REMOVED_ON: &str = "2025-10-16";

const fn gone(code: &'static str, city: &'static str, group: RegionGroup) -> Region {
    Region {
        code,
        city,
        group,
        removed: Some(REGIONS_REMOVED_ON),
    }
}

/// Fly's regions: the 18 of today (2026), then the 17 Fly listed in 2024 and removed on
/// 2025-10-16 (still priceable at their dates).
pub const REGIONS: &[Region] = &[
    r("ams", "Amsterdam", RegionGroup::Europe),
    r("arn", "Stockholm", RegionGroup::Europe),
    r("bom", "Mumbai", RegionGroup::India),
    r("cdg", "Paris", RegionGroup::Europe),
    r("dfw", "Dallas", RegionGroup::NorthAmerica),
    r("ewr", "Secaucus", RegionGroup::NorthAmerica),
    r("fra", "Frankfurt", RegionGroup::Europe),
    r("gru", "São Paulo", RegionGroup::SouthAmerica),
    r("iad", "Ashburn", RegionGroup::NorthAmerica),
    r("jnb", "Johannesburg", RegionGroup::Africa),
    r("lax", "Los Angeles", RegionGroup::NorthAmerica),
    r("lhr", "London", RegionGroup::Europe),
    r("nrt", "Tokyo", RegionGroup::AsiaPacific),
    r("ord", "Chicago", RegionGroup::NorthAmerica),
    r("sin", "Singapore", RegionGroup::AsiaPacific),
    r("sjc", "San Jose", RegionGroup::NorthAmerica),
    r("syd", "Sydney", RegionGroup::Oceania),
    r("yyz", "Toronto", RegionGroup::NorthAmerica),
    gone("atl", "Atlanta", RegionGroup::NorthAmerica),
    gone("bog", "Bogotá", RegionGroup::SouthAmerica),
    gone("bos", "Boston", RegionGroup::NorthAmerica),
    gone("den", "Denver", RegionGroup::NorthAmerica),
    gone("eze", "Ezeiza", RegionGroup::SouthAmerica),
    gone("gdl", "Guadalajara", RegionGroup::NorthAmerica),
    gone("gig", "Rio de Janeiro", RegionGroup::SouthAmerica),
    gone("hkg", "Hong Kong", RegionGroup::AsiaPacific),
    gone("mad", "Madrid", RegionGroup::Europe),
    gone("mia", "Miami", RegionGroup::NorthAmerica),
    gone("otp", "Bucharest", RegionGroup::Europe),
    gone("phx", "Phoenix", RegionGroup::NorthAmerica),
    gone("qro", "Querétaro", RegionGroup::NorthAmerica),
    gone("scl", "Santiago", RegionGroup::SouthAmerica),
    gone("sea", "Seattle", RegionGroup::NorthAmerica),
    gone("waw", "Warsaw", RegionGroup::Europe),
    gone("yul", "Montreal", RegionGroup::NorthAmerica),
];

/// A region Fly offers today (removed regions are not: the simulator and fallback
/// placement use this).
pub fn region(code: &str) -> Option<&'static Region> {
    REGIONS
        .iter()
        .find(|r| r.code == code && r.removed.is_none())
}

/// A region Fly offers or once offered.
pub fn any_region(code: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.code == code)
}

/// Volume limits.
pub const VOLUME_MIN_GB: u32 = 1;
pub const VOLUME_MAX_GB: u32 = 500;
pub const SNAPSHOT_RETENTION_MIN: u32 = 1;
pub const SNAPSHOT_RETENTION_MAX: u32 = 60;
/// Fly's default snapshot retention in days.
pub const SNAPSHOT_RETENTION_DEFAULT: u32 = 5;
/// Suspend is meant for Machines with at most this much memory.
/// Seconds a region move's downtime is estimated at, per step (flotilla's assumptions,
/// not figures Fly publishes): stopping the Machine, a snapshot (fixed part and per GB),
/// copying the volume into the new region (fixed part and per GB), and booting the new
/// Machine until its checks pass.
pub const MOVE_STOP_SECS: u64 = 10;
pub const MOVE_SNAPSHOT_SECS: (u64, u64) = (20, 10);
pub const MOVE_COPY_SECS: (u64, u64) = (30, 30);
pub const MOVE_START_SECS: u64 = 30;

/// The estimated downtime of moving a Machine and its volume of `size_gb` to another
/// region: stop + snapshot + copy + start. An estimate, shown as one.
pub fn move_downtime_secs(size_gb: u32) -> u64 {
    let gb = u64::from(size_gb.max(1));
    MOVE_STOP_SECS
        + MOVE_SNAPSHOT_SECS.0
        + MOVE_SNAPSHOT_SECS.1 * gb
        + MOVE_COPY_SECS.0
        + MOVE_COPY_SECS.1 * gb
        + MOVE_START_SECS
}

/// `45 s`, `3 min`, `1 h 5 min` (minutes rounded up).
pub fn short_duration(secs: u64) -> String {
    if secs < 60 {
        return format!("{secs} s");
    }
    let min = secs.div_ceil(60);
    if min < 60 {
        format!("{min} min")
    } else {
        format!("{} h {} min", min / 60, min % 60)
    }
}

pub const SUSPEND_MAX_MEMORY_MB: u32 = 2048;

/// A value Fly (or flotilla) refuses: what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub hint: String,
}

/// A naming rule: which characters a name takes, how long it may be, and whether it may
/// start or end with a dash. One checker ([`NameRule::problem`]) serves every rule.
#[derive(Debug, Clone, Copy)]
pub struct NameRule {
    pub max_len: usize,
    pub allowed: fn(char) -> bool,
    /// Completes "contains 'X'; …" when a character is not allowed.
    pub allowed_text: &'static str,
    /// A leading or trailing dash is refused.
    pub no_edge_dash: bool,
}

impl NameRule {
    /// What is wrong with `name` under this rule, as a phrase following the name
    /// ("is empty", "contains 'A'; …"), or `None` when it is fine.
    pub fn problem(&self, name: &str) -> Option<String> {
        if name.is_empty() {
            return Some("is empty".into());
        }
        if name.len() > self.max_len {
            return Some(format!(
                "is {} characters long; the limit is {}",
                name.len(),
                self.max_len
            ));
        }
        if let Some(c) = name.chars().find(|c| !(self.allowed)(*c)) {
            return Some(format!("contains {c:?}; {}", self.allowed_text));
        }
        if self.no_edge_dash && (name.starts_with('-') || name.ends_with('-')) {
            return Some("starts or ends with a dash".into());
        }
        None
    }
}

fn lower_digit_dash(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}
fn lower_digit_underscore(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}
fn lower_digit_dash_underscore(c: char) -> bool {
    lower_digit_dash(c) || c == '_'
}

/// Fly's app-name rule: lowercase letters, digits and dashes (flyctl also caps the length).
pub const APP_NAME: NameRule = NameRule {
    max_len: 63,
    allowed: lower_digit_dash,
    allowed_text: "only lowercase letters, digits and dashes are allowed",
    no_edge_dash: true,
};
/// Fly's volume-name rule: lowercase alphanumerics and underscores, at most 30 characters.
pub const VOLUME_NAME: NameRule = NameRule {
    max_len: 30,
    allowed: lower_digit_underscore,
    allowed_text: "only lowercase letters, digits and underscores are allowed",
    no_edge_dash: false,
};
/// Machine names: Fly accepts DNS-label-like names; we keep to lowercase letters,
/// digits, dashes and underscores, at most 63 characters.
pub const MACHINE_NAME: NameRule = NameRule {
    max_len: 63,
    allowed: lower_digit_dash_underscore,
    allowed_text: "only lowercase letters, digits, dashes and underscores are allowed",
    no_edge_dash: false,
};
/// flotilla's own names (tenants, fleets): they end up in app, Machine and volume names
/// and in metadata, so they keep to what all of those accept.
pub const TENANT_NAME: NameRule = NameRule {
    max_len: 63,
    allowed: lower_digit_dash_underscore,
    allowed_text: "use lowercase letters, digits, dashes and underscores",
    no_edge_dash: false,
};

pub fn app_name_problem(name: &str) -> Option<String> {
    APP_NAME.problem(name)
}

pub fn volume_name_problem(name: &str) -> Option<String> {
    VOLUME_NAME.problem(name)
}

pub fn machine_name_problem(name: &str) -> Option<String> {
    MACHINE_NAME.problem(name)
}

/// Environment variable (and secret) names: letters, digits and underscores, not starting
/// with a digit.
pub fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Metadata keys set by flotilla and Fly, which a spec may not declare.
pub fn is_reserved_metadata_key(key: &str) -> bool {
    key.starts_with("flotilla_") || key.starts_with("fly_")
}

/// A volume's mount path must be an absolute directory other than `/`.
pub fn mount_path_problem(path: &str) -> Option<String> {
    (!path.starts_with('/') || path == "/")
        .then(|| format!("mount path `{path}` must be an absolute directory other than /"))
}

/// The region with this code, or what to say about an unknown one.
///
/// A removed region is known (a spec may price a fleet as it was); callers warn with
/// [`Region::removal_problem`].
pub fn known_region(code: &str) -> Result<&'static Region, Problem> {
    any_region(code).ok_or_else(|| Problem {
        message: format!("unknown region `{code}`"),
        hint: crate::diag::suggest(
            code,
            REGIONS
                .iter()
                .filter(|r| r.removed.is_none())
                .map(|r| r.code),
            "regions",
        ),
    })
}

/// The preset with this name, or what to say about an unknown size.
pub fn known_preset(name: &str) -> Result<&'static Preset, Problem> {
    preset(name).ok_or_else(|| Problem {
        message: format!("unknown size `{name}`"),
        hint: match renamed_preset(name) {
            Some(now) => format!("`{name}` is flyctl's old name of `{now}`: write `size: {now}`"),
            None => crate::diag::suggest(name, PRESETS.iter().map(|p| p.name), "sizes"),
        },
    })
}

/// The current preset of a size name flyctl used before (`dedicated-cpu-Nx` is now
/// `performance-Nx`), when that preset exists.
pub fn renamed_preset(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    let rest = n.strip_prefix("dedicated-cpu-")?;
    PRESETS
        .iter()
        .map(|p| p.name)
        .find(|p| p.strip_prefix("performance-") == Some(rest))
}

/// Memory must be a multiple of 256 MB within the preset's range.
pub fn memory_problem(p: &Preset, memory_mb: u32) -> Option<Problem> {
    if !memory_mb.is_multiple_of(256) {
        let lo = (memory_mb / 256 * 256).max(256);
        return Some(Problem {
            message: format!("{memory_mb} MB is not a multiple of 256 MB"),
            hint: format!("use {lo}mb or {}mb", lo + 256),
        });
    }
    if memory_mb < p.min_memory_mb() || memory_mb > p.max_memory_mb() {
        let (lo, hi) = p.cpu_kind.memory_per_cpu_mb();
        return Some(Problem {
            message: format!(
                "{memory_mb} MB is outside what {} allows ({}–{} MB: {}–{} MB per vCPU)",
                p.name,
                p.min_memory_mb(),
                p.max_memory_mb(),
                lo,
                hi
            ),
            hint: larger_preset_hint(p, memory_mb),
        });
    }
    None
}

/// The presets of the same CPU class that take this much memory.
fn larger_preset_hint(p: &Preset, memory_mb: u32) -> String {
    let fit = PRESETS
        .iter()
        .filter(|q| {
            q.cpu_kind == p.cpu_kind
                && q.min_memory_mb() <= memory_mb
                && memory_mb <= q.max_memory_mb()
        })
        .map(|q| q.name)
        .collect::<Vec<_>>();
    if fit.is_empty() {
        format!(
            "{} takes {}–{} MB",
            p.name,
            p.min_memory_mb(),
            p.max_memory_mb()
        )
    } else {
        format!("{memory_mb} MB fits {}", fit.join(", "))
    }
}

/// Suspend keeps a Machine's memory; Fly offers it only for small Machines.
pub fn suspend_problem(memory_mb: u32) -> Option<String> {
    (memory_mb > SUSPEND_MAX_MEMORY_MB).then(|| {
        format!(
            "idle mode `suspend` with {memory_mb} MB: Fly supports suspend only up to {SUSPEND_MAX_MEMORY_MB} MB"
        )
    })
}

pub fn volume_size_problem(size_gb: u32) -> Option<String> {
    (!(VOLUME_MIN_GB..=VOLUME_MAX_GB).contains(&size_gb)).then(|| {
        format!("volume size {size_gb} GB is outside Fly's {VOLUME_MIN_GB}–{VOLUME_MAX_GB} GB")
    })
}

pub fn snapshot_retention_problem(days: u32) -> Option<String> {
    (!(SNAPSHOT_RETENTION_MIN..=SNAPSHOT_RETENTION_MAX).contains(&days)).then(|| {
        format!(
            "snapshot retention {days} days is outside Fly's {SNAPSHOT_RETENTION_MIN}–{SNAPSHOT_RETENTION_MAX}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_is_estimated_from_its_steps_and_grows_with_the_volume() {
        assert_eq!(move_downtime_secs(1), 10 + 20 + 10 + 30 + 30 + 30);
        assert_eq!(move_downtime_secs(0), move_downtime_secs(1));
        assert!(move_downtime_secs(10) > move_downtime_secs(1));
        assert_eq!(short_duration(45), "45 s");
        assert_eq!(short_duration(130), "3 min");
        assert_eq!(short_duration(3900), "1 h 5 min");
    }

    #[test]
    fn flyctl_s_old_size_names_point_at_the_current_preset() {
        let e = known_preset("dedicated-cpu-1x").unwrap_err();
        assert_eq!(e.message, "unknown size `dedicated-cpu-1x`");
        assert_eq!(
            e.hint,
            "`dedicated-cpu-1x` is flyctl's old name of `performance-1x`: write `size: performance-1x`"
        );
        assert_eq!(renamed_preset("dedicated-cpu-3x"), None);
        assert!(
            known_preset("shared-cpu-1")
                .unwrap_err()
                .hint
                .contains("shared-cpu-1x")
        );
    }

    #[test]
    fn presets_and_ranges() {
        let p = preset("shared-cpu-1x").unwrap();
        assert_eq!(
            (p.min_memory_mb(), p.max_memory_mb(), p.base_memory_mb),
            (256, 2048, 256)
        );
        let p = preset("performance-2x").unwrap();
        assert_eq!(
            (p.min_memory_mb(), p.max_memory_mb(), p.base_memory_mb),
            (4096, 16384, 4096)
        );
        assert!(preset("shared-cpu-3x").is_none());
        assert_eq!(
            preset_for(CpuKind::Shared, 4).unwrap().name,
            "shared-cpu-4x"
        );
    }

    #[test]
    fn names() {
        assert!(app_name_problem("my-jarvis-alice").is_none());
        assert!(app_name_problem("My-App").is_some());
        assert!(volume_name_problem("user_42_data").is_none());
        assert!(volume_name_problem("user-42").is_some());
        assert!(volume_name_problem(&"a".repeat(31)).is_some());
        assert_eq!(region("iad").unwrap().group, RegionGroup::NorthAmerica);
        assert_eq!(
            app_name_problem("-a").as_deref(),
            Some("starts or ends with a dash")
        );
        assert_eq!(
            TENANT_NAME.problem("Bob").as_deref(),
            Some("contains 'B'; use lowercase letters, digits, dashes and underscores")
        );
        assert!(is_env_name("_A1") && !is_env_name("1A") && !is_env_name(""));
    }

    #[test]
    fn validators() {
        assert_eq!(known_region("iad").unwrap().code, "iad");
        assert_eq!(
            known_region("frankfurt").unwrap_err().hint,
            "did you mean `fra`?"
        );
        assert!(known_preset("shared-cpu-3x").is_err());
        let p = preset("shared-cpu-1x").unwrap();
        assert!(memory_problem(p, 512).is_none());
        assert_eq!(memory_problem(p, 100).unwrap().hint, "use 256mb or 512mb");
        assert_eq!(memory_problem(p, 1000).unwrap().hint, "use 768mb or 1024mb");
        assert!(
            memory_problem(p, 4096)
                .unwrap()
                .hint
                .contains("shared-cpu-2x")
        );
        assert!(suspend_problem(2048).is_none() && suspend_problem(4096).is_some());
        assert!(volume_size_problem(0).is_some() && volume_size_problem(500).is_none());
        assert!(snapshot_retention_problem(61).is_some());
    }
}

/// A Fly organization's plan: which free allowances, plan fee and included usage its
/// bill has (the figures are in each pricing version's `allowances.csv`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum OrgPlan {
    /// Fly's default plan since 2024-06-17: usage only.
    #[default]
    PayAsYouGo,
    /// The $5 a month plan with $5 of included usage.
    Hobby,
    Launch,
    Scale,
}

impl OrgPlan {
    pub const ALL: [OrgPlan; 4] = [
        OrgPlan::PayAsYouGo,
        OrgPlan::Hobby,
        OrgPlan::Launch,
        OrgPlan::Scale,
    ];
    /// The spec's and the pricing tables' spelling of each plan, in [`OrgPlan::ALL`] order.
    pub const CODES: &'static [&'static str] = &["pay_as_you_go", "hobby", "launch", "scale"];

    pub fn code(self) -> &'static str {
        match self {
            OrgPlan::PayAsYouGo => "pay_as_you_go",
            OrgPlan::Hobby => "hobby",
            OrgPlan::Launch => "launch",
            OrgPlan::Scale => "scale",
        }
    }

    /// The plan's name as Fly writes it.
    pub fn title(self) -> &'static str {
        match self {
            OrgPlan::PayAsYouGo => "Pay As You Go",
            OrgPlan::Hobby => "Hobby",
            OrgPlan::Launch => "Launch",
            OrgPlan::Scale => "Scale",
        }
    }

    pub fn from_code(s: &str) -> Option<OrgPlan> {
        OrgPlan::ALL.into_iter().find(|p| p.code() == s)
    }
}

/// The organization's plan as a spec declares it: the plan, and whether the organization
/// has been on it since before Fly stopped offering it to new organizations (a legacy
/// plan keeps its allowances).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct PlanChoice {
    pub plan: OrgPlan,
    #[serde(default)]
    pub legacy: bool,
}
