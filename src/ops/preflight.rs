//! The pre-flight capacity read of `plan` and `apply`: when the plan creates many
//! Machines in a region (see [`crate::plan::capacity`]), Fly's room per region and size
//! (`GET /v1/platform/regions?size=…`) is read from the target like the other observed
//! facts and handed to the pure check, whose warnings go into the plan document. A read
//! that fails (or an API without the endpoint) leaves the plan without a capacity
//! warning; with `--debug` a note says why.

use crate::fly::client::Client;
use crate::ops::target::Session;
use crate::plan::Plan;
use crate::plan::capacity::{self, CapacityWarning, Room, Threshold};
use crate::resource::ResourceSet;

/// The capacity warnings for `plan` (whose desired resources are `desired`), reading
/// Fly's room only when a region reaches `threshold` new Machines.
pub fn check(
    session: &Session,
    plan: &Plan,
    desired: &ResourceSet,
    threshold: Threshold,
    debug: bool,
) -> Vec<CapacityWarning> {
    let demand = capacity::demand(plan, desired, threshold.0);
    if demand.is_empty() {
        return Vec::new();
    }
    let sizes = capacity::sizes(&demand);
    let room = session.block_on(read_room(&session.target().client, &sizes, debug));
    capacity::warnings(&demand, &room, plan, desired)
}

/// Fly's room for each size, by region; a size whose read fails is left out.
async fn read_room(client: &Client, sizes: &[String], debug: bool) -> Room {
    let mut room = Room::default();
    for size in sizes {
        match client.region_capacity(size).await {
            Ok(regions) => {
                for r in regions {
                    if let Some(n) = r.capacity {
                        room.0.insert((r.code, size.clone()), n);
                    }
                }
            }
            Err(e) if debug => {
                eprintln!("[capacity] no pre-flight capacity check for {size}: {e}");
            }
            Err(_) => {}
        }
    }
    room
}
