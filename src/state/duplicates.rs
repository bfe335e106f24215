//! Duplicates: crash leftovers and objects only a managed Machine vouches for. A second
//! managed Machine claiming a taken slot becomes `ADDRESS#ID` (one whose metadata names
//! no slot, `app.APP.machine#ID`), and is planned for deletion; a volume mounted by a
//! managed Machine but matching no declared volume gets that Machine's slot
//! (`OWNER.volume.NAME[i]`, or `…#ID` when the slot's volume is already matched).

use super::{AppView, Observed, Unmanaged, UnmanagedKind};
use crate::resource::{Address, META_RETIRED, Owner, is_name};

/// Addresses for the managed Machines left over by the slot claims.
pub(super) fn name_machines(view: &mut AppView<'_>) {
    let name = view.name;
    view.extra_machines = view
        .leftovers
        .drain(..)
        .map(|(claim, m)| {
            let addr = match claim {
                Some(slot) => slot.duplicate(&m.id).unwrap_or(slot),
                None => Address::unindexed_machine(&Owner::SharedApp(name), &m.id),
            };
            (addr, m)
        })
        .collect();
}

/// In an app this fleet started removing, the volumes nothing else claimed are its own
/// leftovers (their Machines are gone): `OWNER.volume.NAME[0]`, `…#ID` for a second one.
pub(super) fn name_removed_volumes(view: &mut AppView<'_>) {
    if !view.removing {
        return;
    }
    let app_address = view.app_address.clone();
    let Some(owner) = app_address.owner() else {
        return;
    };
    for v in view.live_vols.clone() {
        if view.taken.contains(v.id.as_str()) || !is_name(&v.name) {
            continue;
        }
        claim_volume(view, v, Address::volume(&owner, &v.name, 0));
    }
}

/// Volumes not matched by name: ours when a managed Machine mounts them, else listed
/// as unmanaged.
pub(super) fn name_mounted_volumes(view: &mut AppView<'_>, out: &mut Observed) {
    let machine_ids = view.slot_machine_ids();
    for v in view.live_vols.clone() {
        if view.taken.contains(v.id.as_str()) {
            continue;
        }
        // Mounted by a managed Machine: ours, at that Machine's slot.
        let owner_slot = v
            .attached_machine_id
            .as_deref()
            .and_then(|att| machine_ids.get(att))
            .or_else(|| {
                view.slots
                    .iter()
                    .chain(view.extra_machines.iter().map(|(a, m)| (a, m)))
                    .find_map(|(addr, m)| {
                        m.config
                            .mounts
                            .iter()
                            .any(|mt| mt.volume == v.id)
                            .then_some(addr)
                    })
            });
        let slot_volume = owner_slot
            .filter(|_| is_name(&v.name))
            .and_then(|maddr| maddr.slot_volume(&v.name));
        match slot_volume {
            Some(plain) => claim_volume(view, v, plain),
            None => out.unmanaged.push(Unmanaged {
                app: view.name.to_string(),
                kind: UnmanagedKind::Volume,
                id: v.id.clone(),
                name: v.name.clone(),
                reason: unmanaged_reason(view, &v.id).into(),
            }),
        }
    }
}

/// Why a volume is left alone: replaced by `restore` or a region move and kept (a managed Machine's
/// [`META_RETIRED`] names it), or simply not ours.
fn unmanaged_reason(view: &AppView<'_>, id: &str) -> &'static str {
    let retired = view.managed.iter().any(|m| {
        m.config
            .metadata
            .get(META_RETIRED)
            .is_some_and(|list| list.split(',').any(|r| r == id))
    });
    if retired {
        "retired by restore or a region move, kept (delete it by hand once it is no longer needed)"
    } else {
        "not a declared volume name and not mounted by a managed Machine; left alone"
    }
}

/// Claims volume `v` at `plain`, or at a duplicate address when another volume already
/// holds `plain`.
fn claim_volume<'a>(view: &mut AppView<'a>, v: &'a crate::wire::api::Volume, plain: Address) {
    let addr = if view.vol_addr.values().any(|a| a == &plain) {
        plain.duplicate(&v.id).unwrap_or(plain)
    } else {
        plain
    };
    view.taken.insert(v.id.as_str());
    view.vol_addr.insert(v.id.as_str(), addr);
}
