//! `GET /v1/platform/regions`: Fly's region list with, per region, the `capacity` for
//! one Machine size (how many more Machines of that size fit), as capacity planners
//! read it. Capacities are generous unless set through `PUT /__sim/regions/capacity`;
//! a region whose set capacity for a size is used up refuses Machine creates of that
//! size with Fly's 422 `insufficient_capacity`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{AppState, Pairs, ok_json, query};
use crate::platform::{self, CpuKind};
use crate::sim::error::{ApiError, ApiResult, parse_body};
use crate::sim::model::MachineConfig;
use crate::sim::ratelimit::Action;
use crate::sim::server::{Sim, lock};
use crate::sim::world::{MachineState, World};

/// Capacity of a region for a size nobody set: generous.
pub(crate) const DEFAULT_CAPACITY: u64 = 10_000;

/// The size `GET /platform/regions` reports capacity for when none is asked.
const DEFAULT_SIZE: &str = "shared-cpu-1x";

/// Set capacities, by `(region, size)`: the total number of Machines of the size
/// the region holds (Machines not destroyed count against it).
#[derive(Debug, Clone, Default)]
pub(crate) struct RegionCapacity {
    set: BTreeMap<(String, String), u64>,
}

impl RegionCapacity {
    fn total(&self, region: &str, size: &str) -> u64 {
        self.set
            .get(&(region.to_string(), size.to_string()))
            .copied()
            .unwrap_or(DEFAULT_CAPACITY)
    }

    fn is_set(&self, region: &str, size: &str) -> bool {
        self.set
            .contains_key(&(region.to_string(), size.to_string()))
    }
}

/// The preset name of a Machine's guest (its CPU kind and count).
pub(crate) fn size_of(config: &MachineConfig) -> &'static str {
    if let Some(p) = config.size.as_deref().and_then(platform::preset) {
        return p.name;
    }
    let guest = config.guest.as_ref();
    let kind = match guest.and_then(|g| g.cpu_kind.as_deref()) {
        Some("performance") => CpuKind::Performance,
        _ => CpuKind::Shared,
    };
    let cpus = guest.and_then(|g| g.cpus).unwrap_or(1);
    platform::preset_for(kind, cpus).map_or(DEFAULT_SIZE, |p| p.name)
}

/// Machines not destroyed, per `(region, size)`.
fn used(world: &World) -> HashMap<(String, &'static str), u64> {
    let mut out: HashMap<(String, &'static str), u64> = HashMap::new();
    for a in world.apps.values() {
        for m in a.machines.values() {
            if m.state != MachineState::Destroyed {
                *out.entry((m.region.clone(), size_of(&m.config)))
                    .or_default() += 1;
            }
        }
    }
    out
}

/// Refuses a Machine create when the set capacity of its region and size is used up.
/// Costs a scan of the world only when a capacity is set for that pair.
pub(crate) fn check_room(
    sim: &Sim,
    world: &World,
    region: &str,
    config: &MachineConfig,
) -> Result<(), ApiError> {
    let size = size_of(config);
    let cap = lock(&sim.capacity);
    if !cap.is_set(region, size) {
        return Ok(());
    }
    let total = cap.total(region, size);
    drop(cap);
    let in_use = used(world)
        .get(&(region.to_string(), size))
        .copied()
        .unwrap_or(0);
    if in_use >= total {
        return Err(ApiError::capacity(region));
    }
    Ok(())
}

fn check_size(size: &str) -> Result<(), ApiError> {
    if platform::preset(size).is_none() {
        return Err(ApiError::bad_request(format!(
            "invalid size {size:?}: not a Machine preset (e.g. shared-cpu-1x, performance-2x)"
        )));
    }
    Ok(())
}

/// `GET /v1/platform/regions?size=PRESET`.
pub(crate) async fn regions(axum::extract::State(sim): AppState, q: Pairs) -> ApiResult {
    let size = query(&q, "size")
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SIZE);
    check_size(size)?;
    sim.rate_limit(Action::RegionsGet, "*")?;
    let in_use = used(&sim.world());
    let cap = lock(&sim.capacity).clone();
    let list: Vec<Value> = platform::REGIONS
        .iter()
        .filter(|r| r.removed.is_none())
        .map(|r| {
            let used = in_use
                .get(&(r.code.to_string(), size))
                .copied()
                .unwrap_or(0);
            json!({
                "code": r.code,
                "name": r.city,
                "gateway_available": true,
                "requires_paid_plan": false,
                "deprecated": false,
                "capacity": cap.total(r.code, size).saturating_sub(used),
                "geo_region": r.group.code(),
            })
        })
        .collect();
    Ok(ok_json(json!({
        "Regions": list,
        "Nearest": sim.default_region,
    })))
}

#[derive(Debug, Deserialize, Serialize)]
struct CapacityBody {
    region: String,
    size: String,
    /// Total Machines of the size the region holds; `null` restores the default.
    capacity: Option<u64>,
}

/// `PUT /__sim/regions/capacity`.
async fn capacity_put(axum::extract::State(sim): AppState, body: Bytes) -> ApiResult {
    let req: CapacityBody = parse_body(&body)?;
    if platform::region(&req.region).is_none() {
        return Err(ApiError::bad_request(format!(
            "invalid region {:?}: not a Fly.io region",
            req.region
        )));
    }
    check_size(&req.size)?;
    let key = (req.region.clone(), req.size.clone());
    let mut cap = lock(&sim.capacity);
    match req.capacity {
        Some(n) => cap.set.insert(key, n),
        None => cap.set.remove(&key),
    };
    Ok(ok_json(json!(req)))
}

/// `GET /__sim/regions/capacity`: the capacities set.
async fn capacity_get(axum::extract::State(sim): AppState) -> ApiResult {
    let cap = lock(&sim.capacity);
    let set: Vec<Value> = cap
        .set
        .iter()
        .map(|((region, size), n)| json!({"region": region, "size": size, "capacity": n}))
        .collect();
    Ok(ok_json(
        json!({ "default": DEFAULT_CAPACITY, "capacities": set }),
    ))
}

pub(crate) fn routes() -> Router<Arc<Sim>> {
    Router::new().route("/v1/platform/regions", get(regions))
}

pub(crate) fn control_routes() -> Router<Arc<Sim>> {
    Router::new().route(
        "/__sim/regions/capacity",
        put(capacity_put).get(capacity_get),
    )
}
