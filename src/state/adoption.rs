//! Adoption: objects without flotilla's metadata that fill an empty declared slot — a
//! Machine with the slot's name (or the only candidate in an allowed region), a volume
//! with a declared name (preferring the one attached to the slot's Machine). The plan
//! shows what adopting them writes.

use std::collections::HashMap;

use super::ownership::{carries_flotilla, is_managed};
use super::{AppView, Observed, Unmanaged, UnmanagedKind};
use crate::resource::{Address, Resource};
use crate::wire as fly;

/// Fills empty declared Machine slots with Machines that carry no metadata; the rest
/// of those are listed as unmanaged.
pub(super) fn adopt_machines(view: &mut AppView<'_>, out: &mut Observed) {
    let idx = view.idx;
    let mut candidates: Vec<&fly::Machine> = view
        .live
        .iter()
        .copied()
        .filter(|m| !carries_flotilla(m))
        .collect();
    let empty_slots: Vec<&Resource> = idx
        .machines
        .iter()
        .copied()
        .filter(|r| !view.slots.contains_key(&r.address))
        .collect();
    let mut still_empty = Vec::new();
    for slot in empty_slots {
        if let Some(pos) = candidates.iter().position(|m| {
            idx.machines_by_name
                .get(m.name.as_str())
                .is_some_and(|r| r.address == slot.address)
        }) {
            let m = candidates.remove(pos);
            out.adopted.insert(slot.address.clone());
            view.slots.insert(slot.address.clone(), m);
        } else if slot.address.standby_index().is_none() {
            // A standby slot takes only a Machine of its name: a lone Machine of the app
            // is no standby (its config would name no primary, and it would be replaced).
            still_empty.push(slot);
        }
    }
    if let ([slot], [m]) = (still_empty.as_slice(), candidates.as_slice()) {
        let fits = slot
            .machine()
            .is_some_and(|d| d.region == m.region || d.fallback_regions.contains(&m.region));
        if fits {
            out.adopted.insert(slot.address.clone());
            view.slots.insert(slot.address.clone(), m);
            candidates.clear();
        }
    }
    for m in candidates {
        let collides = idx.machines_by_name.contains_key(m.name.as_str());
        out.unmanaged.push(Unmanaged {
            app: view.name.to_string(),
            kind: UnmanagedKind::Machine,
            id: m.id.clone(),
            name: m.name.clone(),
            reason: if collides {
                "has a declared Machine's name but no flotilla metadata and a different shape; left alone".into()
            } else {
                "no flotilla metadata; left alone".into()
            },
        });
    }
}

/// Matches volumes to declared volumes by name, preferring the one attached to the
/// slot's Machine; a match no managed Machine mounts is adopted.
pub(super) fn adopt_volumes(view: &mut AppView<'_>, fleet: &str, out: &mut Observed) {
    let machine_ids = view.slot_machine_ids();
    for (vname, r) in &view.idx.volumes_by_name {
        let Some(spec) = r.volume() else { continue };
        let slot_machine = spec
            .machine
            .as_ref()
            .and_then(|ma| view.slots.get(ma))
            .map(|m| m.id.as_str());
        let mut candidates: Vec<&fly::Volume> = view
            .live_vols
            .iter()
            .copied()
            .filter(|v| v.name == *vname && !view.taken.contains(v.id.as_str()))
            .collect();
        candidates.sort_by(|x, y| {
            let rank = |v: &fly::Volume| match (&v.attached_machine_id, slot_machine) {
                (Some(att), Some(sm)) if att == sm => 0,
                (None, _) => 1,
                _ => 2,
            };
            (rank(x), &x.created_at, &x.id).cmp(&(rank(y), &y.created_at, &y.id))
        });
        let Some(v) = candidates.first() else {
            continue;
        };
        // A volume attached to some other Machine is not this slot's volume.
        let attached_elsewhere = v
            .attached_machine_id
            .as_deref()
            .is_some_and(|att| Some(att) != slot_machine && machine_ids.contains_key(att));
        if !attached_elsewhere {
            view.taken.insert(v.id.as_str());
            view.vol_addr.insert(v.id.as_str(), r.address.clone());
            if !is_managed_volume(v, view, fleet) {
                out.adopted.insert(r.address.clone());
            }
        }
    }
}

/// Attached to, or mounted by, a managed Machine in a slot.
fn is_managed_volume(v: &fly::Volume, view: &AppView<'_>, fleet: &str) -> bool {
    view.slots.values().any(|m| {
        is_managed(m, fleet)
            && (v.attached_machine_id.as_deref() == Some(m.id.as_str())
                || m.config.mounts.iter().any(|mt| mt.volume == v.id))
    })
}

impl<'a> AppView<'a> {
    /// The slot of each Machine in a slot, by Fly ID.
    pub(super) fn slot_machine_ids(&self) -> HashMap<&'a str, Address> {
        self.slots
            .iter()
            .map(|(addr, m)| (m.id.as_str(), addr.clone()))
            .collect()
    }
}
