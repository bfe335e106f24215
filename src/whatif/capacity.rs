//! The capacity model: how many tenants fit on a Machine of a given size, from a memory
//! model (per-tenant base memory, memory per running agent, peak factor, headroom, a cap
//! on tenants per Machine and optionally on agents per vCPU), and the sizes Fly allows.
//!
//! For a Machine with `memory` MB holding `t` tenants of which a share `f` is active:
//!
//! ```text
//! agents(t) = ceil(t × f × agents_per_active_tenant)        (pinned: every tenant resident)
//!           = ceil(t × agents_per_active_tenant)            (session: only active tenants)
//! need(t)   = peak_factor × (t × base_mb + agents(t) × agent_mb)
//! fits      ⇔ need(t) ≤ memory × (1 − headroom_pct / 100)
//!             and t ≤ max_tenants_per_machine
//!             and agents(t) ≤ cpus × agents_per_cpu         (when set)
//!             and t × volume_gb ≤ 500                        (pinned: tenant data on the Machine's volume)
//! ```
//!
//! `need` grows with `t`, so the largest `t` that fits is found by bisection.

use rust_decimal::Decimal;

use crate::platform::{self, CpuKind, Preset, SUSPEND_MAX_MEMORY_MB, VOLUME_MAX_GB};
use crate::resource::IdleMode;

use super::scenario::Placement;

/// How much memory tenants need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryModel {
    /// Resident memory of one tenant (MB).
    pub base_mb: Decimal,
    /// Memory of one running agent (MB).
    pub agent_mb: Decimal,
    /// Concurrent agents of an active tenant.
    pub agents_per_active_tenant: Decimal,
    /// Multiplier on the working set for peaks (≥ 1).
    pub peak_factor: Decimal,
    /// Share of each Machine's memory kept free, in percent.
    pub headroom_pct: Decimal,
    pub max_tenants_per_machine: u64,
    /// Concurrent agents one vCPU can run (none: memory is the only limit).
    pub agents_per_cpu: Option<Decimal>,
}

/// A Machine size: a preset and a memory size it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub preset: &'static str,
    pub cpu_kind: CpuKind,
    pub cpus: u32,
    pub memory_mb: u32,
}

impl Candidate {
    /// `shared-cpu-4x 8 GB`.
    pub fn label(&self) -> String {
        format!("{} {}", self.preset, fmt_mb(self.memory_mb))
    }
}

/// `512 MB`, `2 GB`, `1.5 GB`.
pub fn fmt_mb(mb: u32) -> String {
    if mb >= 1024 {
        format!(
            "{} GB",
            (Decimal::from(mb) / Decimal::from(1024)).normalize()
        )
    } else {
        format!("{mb} MB")
    }
}

/// The memory sizes considered for a preset: every 256 MB up to 2 GB, then every GB, within
/// the preset's range.
pub fn memory_options(p: &Preset) -> Vec<u32> {
    let (lo, hi) = (p.min_memory_mb(), p.max_memory_mb());
    let mut v: Vec<u32> = (1..=8)
        .map(|k| k * 256)
        .filter(|m| *m >= lo && *m <= hi)
        .collect();
    let mut m = 3 * 1024;
    while m <= hi {
        if m >= lo {
            v.push(m);
        }
        m += 1024;
    }
    if v.last() != Some(&hi) && hi % 256 == 0 {
        v.push(hi);
    }
    v
}

/// Every size Fly allows among `presets` (empty: all), with `memory_mb` when given, and at
/// most 2 GB for Machines that suspend.
pub fn platform_candidates(
    presets: &[String],
    memory_mb: Option<u32>,
    idle: IdleMode,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for p in platform::PRESETS {
        if !presets.is_empty() && !presets.iter().any(|n| n == p.name) {
            continue;
        }
        for m in memory_options(p) {
            if memory_mb.is_some_and(|want| want != m) {
                continue;
            }
            if idle == IdleMode::Suspend && m > SUSPEND_MAX_MEMORY_MB {
                continue;
            }
            out.push(Candidate {
                preset: p.name,
                cpu_kind: p.cpu_kind,
                cpus: p.cpus,
                memory_mb: m,
            });
        }
        // A declared memory size that is not on the grid (e.g. 1.25 GB) is still a size.
        if let Some(want) = memory_mb
            && !memory_options(p).contains(&want)
            && want >= p.min_memory_mb()
            && want <= p.max_memory_mb()
            && want % 256 == 0
            && !(idle == IdleMode::Suspend && want > SUSPEND_MAX_MEMORY_MB)
        {
            out.push(Candidate {
                preset: p.name,
                cpu_kind: p.cpu_kind,
                cpus: p.cpus,
                memory_mb: want,
            });
        }
    }
    out
}

impl MemoryModel {
    /// Concurrent agents on a Machine holding `t` tenants.
    pub fn agents(&self, t: u64, placement: Placement, fraction: Decimal) -> Decimal {
        let t = Decimal::from(t);
        match placement {
            Placement::Pinned => (t * fraction * self.agents_per_active_tenant).ceil(),
            Placement::Session => (t * self.agents_per_active_tenant).ceil(),
        }
    }

    /// Peak memory of `t` tenants on one Machine (MB).
    pub fn need_mb(&self, t: u64, placement: Placement, fraction: Decimal) -> Decimal {
        let agents = self.agents(t, placement, fraction);
        self.peak_factor * (Decimal::from(t) * self.base_mb + agents * self.agent_mb)
    }

    /// The memory a Machine may use once the headroom is kept free (MB).
    pub fn usable_mb(&self, c: &Candidate) -> Decimal {
        Decimal::from(c.memory_mb) * (Decimal::from(100) - self.headroom_pct) / Decimal::from(100)
    }

    fn fits(
        &self,
        c: &Candidate,
        t: u64,
        placement: Placement,
        fraction: Decimal,
        volume_gb: u32,
    ) -> bool {
        if t == 0 {
            return true;
        }
        if t > self.max_tenants_per_machine {
            return false;
        }
        if placement == Placement::Pinned
            && u64::from(volume_gb).saturating_mul(t) > u64::from(VOLUME_MAX_GB)
        {
            return false;
        }
        if let Some(apc) = self.agents_per_cpu
            && self.agents(t, placement, fraction) > apc * Decimal::from(c.cpus)
        {
            return false;
        }
        self.need_mb(t, placement, fraction) <= self.usable_mb(c)
    }

    /// The most tenants (pinned) or active tenants (session) one Machine holds; 0 when not
    /// even one fits.
    pub fn tenants_per_machine(
        &self,
        c: &Candidate,
        placement: Placement,
        fraction: Decimal,
        volume_gb: u32,
    ) -> u64 {
        let (mut lo, mut hi) = (0u64, self.max_tenants_per_machine);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.fits(c, mid, placement, fraction, volume_gb) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }

    /// Concurrent agents that fit on a Machine beside `t` resident tenants (memory only).
    pub fn agents_that_fit(&self, c: &Candidate, t: u64) -> u64 {
        if self.agent_mb.is_zero() {
            return 0;
        }
        let room = self.usable_mb(c) / self.peak_factor - Decimal::from(t) * self.base_mb;
        if room <= Decimal::ZERO {
            return 0;
        }
        use rust_decimal::prelude::ToPrimitive;
        let by_mem = (room / self.agent_mb).floor().to_u64().unwrap_or(u64::MAX);
        match self.agents_per_cpu {
            Some(apc) => by_mem.min(
                (apc * Decimal::from(c.cpus))
                    .floor()
                    .to_u64()
                    .unwrap_or(u64::MAX),
            ),
            None => by_mem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn situation4() -> MemoryModel {
        MemoryModel {
            base_mb: d("300"),
            agent_mb: d("1100"),
            agents_per_active_tenant: d("2"),
            peak_factor: d("1"),
            headroom_pct: d("50"),
            max_tenants_per_machine: 100,
            agents_per_cpu: None,
        }
    }

    fn cand(preset: &str, mb: u32) -> Candidate {
        let p = platform::preset(preset).unwrap();
        Candidate {
            preset: p.name,
            cpu_kind: p.cpu_kind,
            cpus: p.cpus,
            memory_mb: mb,
        }
    }

    #[test]
    fn memory_grid() {
        let p = platform::preset("shared-cpu-1x").unwrap();
        assert_eq!(
            memory_options(p),
            vec![256, 512, 768, 1024, 1280, 1536, 1792, 2048]
        );
        let p = platform::preset("performance-2x").unwrap();
        let v = memory_options(p);
        assert_eq!(v.first(), Some(&4096));
        assert_eq!(v.last(), Some(&16384));
        assert_eq!(v.len(), 13);
        let all = platform_candidates(&[], None, IdleMode::Suspend);
        assert!(all.iter().all(|c| c.memory_mb <= 2048));
        let one = platform_candidates(&["shared-cpu-2x".into()], Some(1280), IdleMode::Off);
        assert_eq!(one, vec![cand("shared-cpu-2x", 1280)]);
    }

    #[test]
    fn situation_four_on_a_32_gb_machine() {
        // 32 GB with 50% headroom: 16,384 MB usable. 3 tenants, all active, 2 agents each:
        // 3 × 300 + 6 × 1100 = 7,500 MB ≤ 16,384: fits. 6 tenants: 1,800 + 13,200 = 15,000
        // fits; 7: 2,100 + 15,400 = 17,500 does not.
        let m = situation4();
        let c = cand("performance-16x", 32768);
        assert_eq!(m.usable_mb(&c), d("16384"));
        assert_eq!(m.need_mb(3, Placement::Pinned, Decimal::ONE), d("7500"));
        assert_eq!(
            m.tenants_per_machine(&c, Placement::Pinned, Decimal::ONE, 0),
            6
        );
        // Beside 3 resident tenants: (16,384 − 900) / 1,100 = 14.07 → 14 agents.
        assert_eq!(m.agents_that_fit(&c, 3), 14);
        // With a tenth active, 7 tenants need 2,100 + ceil(1.4) = 2 agents → 4,300 MB.
        assert_eq!(m.need_mb(7, Placement::Pinned, d("0.1")), d("4300"));
    }

    #[test]
    fn limits_cap_the_tenants() {
        let mut m = situation4();
        let c = cand("shared-cpu-8x", 16384);
        // 8,192 usable; one tenant with 2 agents needs 2,500.
        assert_eq!(
            m.tenants_per_machine(&c, Placement::Pinned, Decimal::ONE, 0),
            3
        );
        m.agents_per_cpu = Some(d("0.5"));
        // 8 vCPUs × 0.5 = 4 agents: 2 tenants.
        assert_eq!(
            m.tenants_per_machine(&c, Placement::Pinned, Decimal::ONE, 0),
            2
        );
        m.agents_per_cpu = None;
        m.max_tenants_per_machine = 1;
        assert_eq!(
            m.tenants_per_machine(&c, Placement::Pinned, Decimal::ONE, 0),
            1
        );
        // 200 GB of data per tenant: two tenants would need a 400 GB volume, three 600.
        m.max_tenants_per_machine = 100;
        m.base_mb = d("10");
        m.agent_mb = d("0");
        assert_eq!(
            m.tenants_per_machine(&c, Placement::Pinned, Decimal::ONE, 200),
            2
        );
        assert_eq!(
            m.tenants_per_machine(&c, Placement::Session, Decimal::ONE, 200),
            100
        );
        let tiny = cand("shared-cpu-1x", 256);
        m.base_mb = d("300");
        assert_eq!(
            m.tenants_per_machine(&tiny, Placement::Pinned, Decimal::ONE, 0),
            0
        );
    }
}
