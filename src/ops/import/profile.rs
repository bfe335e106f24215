//! One app as spec settings: its first Machine, volume, secrets' names, IPs and
//! certificates turned into flat setting leaves (`volume.size_gb`, `env.PORT`,
//! `checks.alive.path`; lists whole), so the factoring can compare apps leaf by leaf.
//! What the spec cannot say is kept as a note, never as a value.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::fly::convert::normalize_machine;
use crate::resource::network::IpKind;
use crate::spec::decl;
use crate::wire::AppSnapshot;
use crate::wire::api as fly;

/// A setting's place: the dotted key split into parts (`["volume", "size_gb"]`).
pub type Leaf = Vec<String>;

/// One app's settings and what they could not say.
#[derive(Debug, Clone)]
pub struct Profile {
    pub app: String,
    pub leaves: BTreeMap<Leaf, Value>,
    /// The Machines' names, in index order (sorted).
    pub machines: Vec<String>,
    /// The Fly names of the volumes the Machines mount (each Machine's first), in the
    /// Machines' order.
    pub volumes: Vec<String>,
    /// Things the spec cannot express, one sentence each.
    pub notes: Vec<String>,
    /// The process groups (`process_groups`) and their Machine counts, in name order;
    /// empty when the app's Machines are one group.
    pub groups: Vec<(String, usize)>,
}

/// The parts of a declaration's dotted key.
pub fn leaf(key: &str) -> Leaf {
    key.split('.').map(str::to_string).collect()
}

fn under(key: &str, name: &str) -> Leaf {
    let mut l = leaf(key);
    l.push(name.to_string());
    l
}

/// The app's profile.
pub fn profile(a: &AppSnapshot) -> Profile {
    let mut machines: Vec<&fly::Machine> = a.machines.iter().collect();
    machines.sort_by(|x, y| (&x.name, &x.id).cmp(&(&y.name, &y.id)));
    let mut p = Profile {
        app: a.app.name.clone(),
        leaves: BTreeMap::new(),
        machines: machines.iter().map(|m| m.name.clone()).collect(),
        volumes: machines
            .iter()
            .filter_map(|m| m.config.mounts.first())
            .filter_map(|mt| a.volumes.iter().find(|v| v.id == mt.volume))
            .map(|v| v.name.clone())
            .collect(),
        notes: Vec::new(),
        groups: Vec::new(),
    };
    if super::profile_groups::profile_groups(&machines, &mut p) {
        secret_leaves(a, &mut p);
        super::profile_config::check_file_secrets(&mut p);
        network_leaves(a, &mut p);
        return p;
    }
    match machines.first() {
        Some(first) => {
            machine_leaves(first, &mut p);
            volume_leaves(first, a, &mut p);
            compare_siblings(first, &machines[1..], &mut p);
        }
        None => p.notes.push(
            "has no Machine: only the app is declared (count 0), its settings are unknown".into(),
        ),
    }
    p.leaves
        .insert(leaf(decl::COUNT.key), json!(machines.len()));
    secret_leaves(a, &mut p);
    super::profile_config::check_file_secrets(&mut p);
    network_leaves(a, &mut p);
    p
}

fn memory_text(mb: u32) -> String {
    if mb.is_multiple_of(1024) {
        format!("{}gb", mb / 1024)
    } else {
        format!("{mb}mb")
    }
}

/// Image, region, size, memory, services and idle policy, checks, restart, env, metadata.
pub(super) fn machine_leaves(m: &fly::Machine, p: &mut Profile) {
    let n = normalize_machine(m, &HashMap::new());
    let l = &mut p.leaves;
    l.insert(leaf(decl::IMAGE.key), json!(n.image));
    l.insert(leaf(decl::REGION.key), json!(m.region));
    if crate::platform::known_preset(&n.size).is_err() {
        p.notes.push(format!(
            "Machine {} runs {} x {} CPUs, which is no Fly preset; written as `{}`",
            m.name,
            m.config
                .guest
                .as_ref()
                .map_or("shared", |g| g.cpu_kind.as_str()),
            n.guest.cpus,
            n.size
        ));
    }
    l.insert(leaf(decl::SIZE.key), json!(n.size));
    l.insert(
        leaf(decl::MEMORY.key),
        json!(memory_text(n.guest.memory_mb)),
    );
    if let Some(services) = n.services.as_ref().filter(|s| !s.is_empty()) {
        l.insert(leaf(decl::SERVICES.key), json!(services));
        l.insert(leaf(decl::IDLE_MODE.key), json!(n.idle.mode.as_str()));
        if !n.idle.autostart {
            l.insert(leaf(decl::IDLE_AUTOSTART.key), json!(false));
        }
        if n.idle.min_running != 0 {
            l.insert(leaf(decl::IDLE_MIN_RUNNING.key), json!(n.idle.min_running));
        }
    }
    for (name, check) in n.checks.iter().flatten() {
        if let Value::Object(fields) = json!(check) {
            for (k, v) in fields {
                let mut path = under(decl::CHECKS.key, name);
                path.push(k);
                l.insert(path, v);
            }
        }
    }
    if let Some(r) = n.restart.as_ref().filter(|_| !is_fly_default_restart(m)) {
        l.insert(leaf(decl::RESTART.key), json!(r.to_string()));
    }
    env_leaves(m, p);
    super::profile_config::config_leaves(m, p);
    for (k, v) in &m.config.metadata {
        if !(k.starts_with("flotilla_") || k.starts_with("fly_")) {
            text_leaf(p, decl::METADATA.key, k, v, &m.name);
        }
    }
    extra_notes(m, p);
}

fn env_leaves(m: &fly::Machine, p: &mut Profile) {
    for (k, v) in &m.config.env {
        if !crate::platform::is_env_name(k) {
            p.notes.push(format!(
                "Machine {}: env `{k}` is not a valid variable name for a spec; left out",
                m.name
            ));
        } else if crate::spec::credentials::looks_like_credential(v, Some(k)).is_some() {
            p.notes.push(format!(
                "Machine {}: env {k} holds what looks like a credential; left out (value not shown): make it a Fly secret and reference it under `secrets:`",
                m.name
            ));
        } else {
            text_leaf(p, decl::ENV.key, k, v, &m.name);
        }
    }
}

/// An env or metadata value: a template in the spec, so text that looks like one is
/// left out rather than rendered differently.
fn text_leaf(p: &mut Profile, key: &str, name: &str, value: &str, machine: &str) {
    if value.contains("{{") || value.contains("{%") || value.contains("{#") {
        p.notes.push(format!(
            "Machine {machine}: {key} {name} contains template syntax; left out"
        ));
    } else {
        p.leaves.insert(under(key, name), json!(value));
    }
}

/// Fly's restart policy when a Machine is created without one (`on-failure`, 10
/// retries): a spec that says nothing keeps it.
fn is_fly_default_restart(m: &fly::Machine) -> bool {
    m.config.restart.as_ref().is_none_or(|r| {
        r.policy.as_deref().is_none_or(|p| p == "on-failure")
            && r.max_retries.is_none_or(|n| n == 10)
    })
}

/// Names of the fields of `extra` holding something: Fly fills some with empty values.
fn set_fields<'a>(
    extra: &'a serde_json::Map<String, Value>,
    prefix: &'a str,
) -> impl Iterator<Item = String> + 'a {
    extra
        .iter()
        .filter(|(_, v)| match v {
            Value::Null => false,
            Value::Object(o) => !o.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::String(s) => !s.is_empty(),
            _ => true,
        })
        .map(move |(k, _)| format!("{prefix}{k}"))
}

/// What Fly copies from the volume into a mount.
const MOUNT_ECHOES: &[&str] = &["name", "size_gb", "encrypted"];

/// Fields of the Machine config the spec has no setting for.
fn extra_notes(m: &fly::Machine, p: &mut Profile) {
    let c = &m.config;
    let mut fields: BTreeSet<String> = set_fields(&c.extra, "")
        .filter(|f| !super::profile_config::is_read(c, f))
        .collect();
    if let Some(g) = &c.guest {
        fields.extend(set_fields(&g.extra, "guest."));
    }
    for (i, s) in c.services.iter().enumerate() {
        fields.extend(set_fields(&s.extra, &format!("services[{i}].")).collect::<Vec<_>>());
        for (j, port) in s.ports.iter().enumerate() {
            let prefix = format!("services[{i}].ports[{j}].");
            fields.extend(set_fields(&port.extra, &prefix).collect::<Vec<_>>());
        }
    }
    for (name, ch) in &c.checks {
        fields.extend(set_fields(&ch.extra, &format!("checks.{name}.")).collect::<Vec<_>>());
    }
    for (i, mt) in c.mounts.iter().enumerate() {
        let extra: serde_json::Map<String, Value> = mt
            .extra
            .iter()
            .filter(|(k, _)| !MOUNT_ECHOES.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        fields.extend(set_fields(&extra, &format!("mounts[{i}].")).collect::<Vec<_>>());
    }
    for f in fields {
        p.notes.push(format!(
            "Machine {}: config field `{f}` has no spec setting (updates keep it)",
            m.name
        ));
    }
}

/// The volume the first Machine mounts; other volumes are unmanaged extras.
fn volume_leaves(m: &fly::Machine, a: &AppSnapshot, p: &mut Profile) {
    let mounted: Vec<&fly::Mount> = m.config.mounts.iter().collect();
    if mounted.len() > 1 {
        p.notes.push(format!(
            "Machine {} mounts {} volumes; the spec declares one, the first",
            m.name,
            mounted.len()
        ));
    }
    let used: BTreeSet<&str> = a
        .machines
        .iter()
        .flat_map(|x| x.config.mounts.iter().map(|mt| mt.volume.as_str()))
        .collect();
    for v in a.volumes.iter().filter(|v| !used.contains(v.id.as_str())) {
        p.notes.push(format!(
            "volume {} ({}) is mounted by no Machine; left unmanaged",
            v.name, v.id
        ));
    }
    let Some(mt) = mounted.first() else { return };
    let Some(v) = a.volumes.iter().find(|v| v.id == mt.volume) else {
        p.notes.push(format!(
            "Machine {} mounts volume {}, which the app does not list",
            m.name, mt.volume
        ));
        return;
    };
    let l = &mut p.leaves;
    l.insert(leaf(decl::VOLUME_NAME.key), json!(v.name));
    l.insert(leaf(decl::VOLUME_SIZE_GB.key), json!(v.size_gb));
    l.insert(leaf(decl::VOLUME_MOUNT.key), json!(mt.path));
    if let Some(r) = v.snapshot_retention {
        l.insert(leaf(decl::VOLUME_SNAPSHOT_RETENTION.key), json!(r));
    }
    if let Some(b) = v.auto_backup_enabled {
        l.insert(leaf(decl::VOLUME_AUTO_BACKUP.key), json!(b));
    }
    l.insert(leaf(decl::VOLUME_ENCRYPTED.key), json!(v.encrypted));
}

/// Machines after the first that run another shape: the spec describes the first.
pub(super) fn compare_siblings(first: &fly::Machine, rest: &[&fly::Machine], p: &mut Profile) {
    let shape = |m: &fly::Machine| {
        let mut n = normalize_machine(m, &HashMap::new());
        n.name.clear();
        n.mounts.clear();
        (n, m.region.clone())
    };
    let base = shape(first);
    for m in rest.iter().filter(|m| shape(m) != base) {
        p.notes.push(format!(
            "Machine {} differs from Machine {}; the spec describes {} for every Machine of the app",
            m.name, first.name, first.name
        ));
    }
}

/// Secrets by name, each referenced from an environment variable of the same name.
fn secret_leaves(a: &AppSnapshot, p: &mut Profile) {
    for s in &a.secrets {
        if crate::platform::is_env_name(&s.name) {
            p.leaves
                .insert(under(decl::SECRETS.key, &s.name), json!({ "env": s.name }));
        } else {
            p.notes.push(format!(
                "secret `{}` is no valid environment variable name to reference; left out",
                s.name
            ));
        }
    }
}

/// IP kinds (each once) and certificates' hostnames.
fn network_leaves(a: &AppSnapshot, p: &mut Profile) {
    let kinds: BTreeSet<&'static str> = a
        .ips
        .iter()
        .map(|ip| IpKind::of_assignment(&ip.ip, ip.shared).as_str())
        .collect();
    if kinds.len() < a.ips.len() {
        p.notes.push(
            "holds more than one IP address of a kind; the spec declares each kind once".into(),
        );
    }
    if !kinds.is_empty() {
        p.leaves.insert(leaf(decl::IPS.key), json!(kinds));
    }
    let hosts: Vec<&str> = a.certificates.iter().map(|c| c.hostname.as_str()).collect();
    if !hosts.is_empty() {
        p.leaves.insert(leaf(decl::HOSTNAMES.key), json!(hosts));
    }
}
