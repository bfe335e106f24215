//! The pre-flight capacity check: a large plan (many new Machines in one region) is
//! compared with the room Fly reports per region and Machine size (`GET
//! /v1/platform/regions?size=…`), so that a region that cannot take the planned
//! Machines shows up as a plan warning before apply meets capacity errors one create
//! at a time. Pure: the room is read by the observation step in `ops` and passed in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Action, Plan};
use crate::resource::{Kind, ResourceSet};

/// Check a region's capacity when the plan creates at least this many Machines in it.
pub const DEFAULT_THRESHOLD: usize = 10;

/// From how many new Machines in one region the plan checks its capacity (`0`: never);
/// [`DEFAULT_THRESHOLD`] unless set (`--capacity-threshold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold(pub usize);

impl Default for Threshold {
    fn default() -> Self {
        Threshold(DEFAULT_THRESHOLD)
    }
}

/// New Machines of one size the plan puts in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub region: String,
    pub size: String,
    pub planned: u64,
}

/// The room Fly reported: more Machines of a size a region can take, by `(region, size)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Room(pub BTreeMap<(String, String), u64>);

/// A region that cannot take the Machines the plan creates there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityWarning {
    pub region: String,
    pub size: String,
    /// New Machines of the size the plan puts in the region.
    pub planned: u64,
    /// How many more Fly said fit when the plan was made.
    pub capacity: u64,
    /// Of the planned Machines, how many name fallback regions.
    pub with_fallback: u64,
}

impl CapacityWarning {
    /// The sentence the plan's renderings show.
    pub fn message(&self) -> String {
        let fallback = match (self.with_fallback, self.planned) {
            (0, _) => "none of them has fallback_regions, so those beyond it will fail".into(),
            (n, p) if n == p => "creates beyond it fall back to their fallback_regions".into(),
            (n, p) => {
                format!("{n} of {p} have fallback_regions; the others fail once the region is full")
            }
        };
        format!(
            "region {} has room for {} more {} Machines, and the plan creates {} there: {fallback}",
            self.region, self.capacity, self.size, self.planned
        )
    }
}

/// The new Machines per region and size, for regions that get at least `threshold` new
/// Machines (of all sizes); `threshold` 0 checks nothing. A create or a region move
/// counts in its desired region; replaces keep their place.
pub fn demand(plan: &Plan, desired: &ResourceSet, threshold: usize) -> Vec<Demand> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut by: BTreeMap<(String, String), u64> = BTreeMap::new();
    for c in plan.actionable() {
        if c.kind != Kind::Machine || !matches!(c.action, Action::Create | Action::Move) {
            continue;
        }
        if let Some(m) = desired.get(&c.address).and_then(|r| r.machine()) {
            *by.entry((m.region.clone(), m.size.clone())).or_default() += 1;
        }
    }
    let mut per_region: BTreeMap<&str, u64> = BTreeMap::new();
    for ((region, _), n) in &by {
        *per_region.entry(region).or_default() += n;
    }
    let large = |r: &str| per_region.get(r).copied().unwrap_or(0) >= threshold as u64;
    by.iter()
        .filter(|((region, _), _)| large(region))
        .map(|((region, size), n)| Demand {
            region: region.clone(),
            size: size.clone(),
            planned: *n,
        })
        .collect()
}

/// The sizes whose room must be read for `demand`, each once.
pub fn sizes(demand: &[Demand]) -> Vec<String> {
    let mut out: Vec<String> = demand.iter().map(|d| d.size.clone()).collect();
    out.sort();
    out.dedup();
    out
}

/// A warning for each demand the region's reported room cannot take. A region Fly did
/// not report on gets none.
pub fn warnings(
    demand: &[Demand],
    room: &Room,
    plan: &Plan,
    desired: &ResourceSet,
) -> Vec<CapacityWarning> {
    demand
        .iter()
        .filter_map(|d| {
            let capacity = *room.0.get(&(d.region.clone(), d.size.clone()))?;
            (d.planned > capacity).then(|| CapacityWarning {
                region: d.region.clone(),
                size: d.size.clone(),
                planned: d.planned,
                capacity,
                with_fallback: with_fallback(d, plan, desired),
            })
        })
        .collect()
}

fn with_fallback(d: &Demand, plan: &Plan, desired: &ResourceSet) -> u64 {
    plan.actionable()
        .filter(|c| matches!(c.action, Action::Create | Action::Move))
        .filter_map(|c| desired.get(&c.address).and_then(|r| r.machine()))
        .filter(|m| m.region == d.region && m.size == d.size && !m.fallback_regions.is_empty())
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::fixtures::{app, machine};
    use crate::resource::{Desired, IdleMode, Resource, Spec};
    use crate::state::{Snapshot, interpret};

    /// `n` tenants with one Machine each in `region`, of `size`.
    fn fleet(n: u32, region: &str, size: &str, fallback: bool) -> Desired {
        let mut rs: Vec<Resource> = Vec::new();
        for i in 0..n {
            let t = format!("{region}{i}");
            rs.push(app(&t, None));
            let mut m = machine(Some(&t), 0, region, size, 256, IdleMode::Off, None);
            if let (true, Spec::Machine(ms)) = (fallback, &mut m.spec) {
                ms.fallback_regions = vec!["ord".into()];
            }
            rs.push(m);
        }
        Desired::from_resources("test-org", ResourceSet::new(rs))
    }

    fn planned(d: &Desired) -> Plan {
        let observed = interpret(&Snapshot::empty("test-org"), d);
        super::super::plan(d, &observed, &[])
    }

    fn room(region: &str, size: &str, n: u64) -> Room {
        Room(BTreeMap::from([((region.into(), size.into()), n)]))
    }

    #[test]
    fn only_regions_at_the_threshold_are_checked() {
        let d = fleet(10, "iad", "shared-cpu-1x", false);
        let p = planned(&d);
        let dm = demand(&p, &d.resources, DEFAULT_THRESHOLD);
        assert_eq!(
            dm,
            vec![Demand {
                region: "iad".into(),
                size: "shared-cpu-1x".into(),
                planned: 10
            }]
        );
        assert_eq!(sizes(&dm), vec!["shared-cpu-1x".to_string()]);
        assert!(demand(&p, &d.resources, 11).is_empty());
        assert!(demand(&p, &d.resources, 0).is_empty(), "0 turns it off");
    }

    #[test]
    fn a_region_short_of_room_warns() {
        let d = fleet(12, "iad", "shared-cpu-1x", false);
        let p = planned(&d);
        let dm = demand(&p, &d.resources, DEFAULT_THRESHOLD);
        let w = warnings(&dm, &room("iad", "shared-cpu-1x", 5), &p, &d.resources);
        assert_eq!(w.len(), 1);
        assert_eq!(
            (w[0].planned, w[0].capacity, w[0].with_fallback),
            (12, 5, 0)
        );
        assert_eq!(
            w[0].message(),
            "region iad has room for 5 more shared-cpu-1x Machines, and the plan creates 12 there: none of them has fallback_regions, so those beyond it will fail"
        );
        // Enough room, another region's room, or no report at all: nothing to say.
        assert!(warnings(&dm, &room("iad", "shared-cpu-1x", 12), &p, &d.resources).is_empty());
        assert!(warnings(&dm, &room("ord", "shared-cpu-1x", 0), &p, &d.resources).is_empty());
        assert!(warnings(&dm, &Room::default(), &p, &d.resources).is_empty());
    }

    #[test]
    fn fallback_regions_are_counted_in_the_warning() {
        let d = fleet(10, "sjc", "shared-cpu-2x", true);
        let p = planned(&d);
        let dm = demand(&p, &d.resources, DEFAULT_THRESHOLD);
        let w = warnings(&dm, &room("sjc", "shared-cpu-2x", 0), &p, &d.resources);
        assert_eq!(w[0].with_fallback, 10);
        assert!(
            w[0].message()
                .ends_with("creates beyond it fall back to their fallback_regions")
        );
    }
}
