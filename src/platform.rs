//! Facts about the Fly.io platform that validation needs: regions and Machine presets.
//!
//! Sources: Fly's region list (2026) and the Machine presets of Fly's Go client
//! (`MachinePresets`), summarised in `shared/reference/FLY_PRICING_FACTS.md`.
//! Prices live in `pricing/`, not here.

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
}

const fn r(code: &'static str, city: &'static str, group: RegionGroup) -> Region {
    Region { code, city, group }
}

/// Fly's regions (2026).
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
];

pub fn region(code: &str) -> Option<&'static Region> {
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
pub const SUSPEND_MAX_MEMORY_MB: u32 = 2048;

/// Fly's app-name rule: lowercase letters, digits and dashes (flyctl also caps the length).
pub fn app_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > 63 {
        return Some(format!(
            "is {} characters long; the limit is 63",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "contains {c:?}; only lowercase letters, digits and dashes are allowed"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("starts or ends with a dash".into());
    }
    None
}

/// Fly's volume-name rule: lowercase alphanumerics and underscores, at most 30 characters.
pub fn volume_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > 30 {
        return Some(format!(
            "is {} characters long; the limit is 30",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Some(format!(
            "contains {c:?}; only lowercase letters, digits and underscores are allowed"
        ));
    }
    None
}

/// Machine names: Fly accepts DNS-label-like names; we keep to lowercase letters,
/// digits, dashes and underscores, at most 63 characters.
pub fn machine_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name.len() > 63 {
        return Some(format!(
            "is {} characters long; the limit is 63",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Some(format!(
            "contains {c:?}; only lowercase letters, digits, dashes and underscores are allowed"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
