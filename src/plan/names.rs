//! Observed names win over earlier default names. The default volume name of a slot
//! once depended on `count` (`data` for one Machine, `data_0` for index 0 of several),
//! so changing `count` renamed Machine 0's volume and the plan replaced it, destroying
//! its data. The default now gives index 0 the same name for every `count`; a volume an
//! existing fleet created under the old name keeps it, so no existing fleet is renamed.
//! Pure: reads a snapshot, edits the desired state before it is interpreted.

use std::collections::{HashMap, HashSet};

use crate::resource::{Address, Desired, Spec};
use crate::wire::Snapshot;
use crate::wire::api::is_gone;

/// For each desired volume with [`aliases`](crate::resource::VolumeSpec::aliases): when
/// its app holds no live volume under the desired name but one under an alias, the
/// desired volume (and the mount of its Machine) takes the alias. Returns the renamed
/// volumes' addresses.
pub fn keep_observed_volume_names(desired: &mut Desired, snapshot: &Snapshot) -> Vec<Address> {
    let live: HashMap<&str, HashSet<&str>> = snapshot
        .apps
        .iter()
        .map(|a| {
            let names = a
                .volumes
                .iter()
                .filter(|v| !is_gone(&v.state))
                .map(|v| v.name.as_str())
                .collect();
            (a.app.name.as_str(), names)
        })
        .collect();
    let mut renamed: HashMap<Address, String> = HashMap::new();
    for r in &mut desired.resources.resources {
        let Spec::Volume(v) = &mut r.spec else {
            continue;
        };
        let Some(names) = live.get(r.app.as_str()) else {
            continue;
        };
        if v.aliases.is_empty() || names.contains(v.name.as_str()) {
            continue;
        }
        if let Some(alias) = v.aliases.iter().find(|a| names.contains(a.as_str())) {
            v.name = alias.clone();
            renamed.insert(r.address.clone(), alias.clone());
        }
    }
    if renamed.is_empty() {
        return Vec::new();
    }
    for r in &mut desired.resources.resources {
        if let Spec::Machine(m) = &mut r.spec {
            for mount in &mut m.mounts {
                if let Some(name) = renamed.get(&mount.volume) {
                    mount.volume_name = name.clone();
                }
            }
        }
    }
    let mut out: Vec<Address> = renamed.into_keys().collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AppSnapshot;
    use crate::wire::api as fly;

    fn desired(count: u32) -> Desired {
        let yaml = format!(
            "version: 1\norg: acme\ndefaults:\n  image: nginx\n  region: iad\n  count: {count}\n  volume: {{ name: data, size_gb: 1, mount: /data }}\ntenants:\n  - name: a\n"
        );
        crate::spec::load_bytes(yaml.as_bytes(), "t.yaml")
            .unwrap()
            .desired
    }

    fn snapshot(volumes: &[&str]) -> Snapshot {
        let mut s = Snapshot::empty("acme");
        s.apps.push(AppSnapshot {
            app: fly::App {
                name: "acme-a".into(),
                ..Default::default()
            },
            volumes: volumes
                .iter()
                .enumerate()
                .map(|(i, n)| fly::Volume {
                    id: format!("vol_{i}"),
                    name: (*n).into(),
                    state: "created".into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        s
    }

    fn volume_names(d: &Desired) -> Vec<String> {
        d.resources
            .iter()
            .filter_map(|r| r.volume().map(|v| v.name.clone()))
            .collect()
    }

    #[test]
    fn index_zero_is_named_alike_for_every_count() {
        assert_eq!(volume_names(&desired(1)), ["data"]);
        assert_eq!(volume_names(&desired(3)), ["data", "data_1", "data_2"]);
    }

    #[test]
    fn an_existing_volume_under_the_old_name_keeps_it() {
        let mut d = desired(1);
        let renamed = keep_observed_volume_names(&mut d, &snapshot(&["data_0", "data_1"]));
        assert_eq!(renamed.len(), 1);
        assert_eq!(volume_names(&d), ["data_0"]);
        let m = d.resources.iter().find_map(|r| r.machine()).unwrap();
        assert_eq!(m.mounts[0].volume_name, "data_0");
    }

    #[test]
    fn the_new_name_wins_when_it_exists_or_nothing_exists() {
        let mut d = desired(3);
        assert!(keep_observed_volume_names(&mut d, &snapshot(&["data", "data_0"])).is_empty());
        assert!(keep_observed_volume_names(&mut d, &snapshot(&[])).is_empty());
        assert_eq!(volume_names(&d), ["data", "data_1", "data_2"]);
    }
}
