//! The pass-through Machine config settings (`stop_config`, `restart_max_retries`,
//! `init`, `dns`, `metrics`, `statics`, `auto_destroy`, `schedule`) and the Machine's
//! `processes` and `files` as profile leaves, read through the same mapping the
//! observer uses (`fly::machine_config::read_extras`, `fly::procs::read_run`), so the
//! imported spec declares exactly what a plan reads back. File contents are never
//! copied: a file Fly fills from a secret is referenced by the secret's name, any other
//! file is described in a note and the Machine's files are left unmanaged.

use serde_json::{Value, json};

use super::profile::{Leaf, Profile, leaf};
use crate::fly::machine_config::read_extras;
use crate::fly::procs::read_run;
use crate::resource::MachineExtras;
use crate::resource::procs::FileSource;
use crate::spec::decl;
use crate::wire::api as fly;

/// The settings whose value is a mapping: written key by key (`init.cmd`), as `volume`.
const MAPPINGS: &[&str] = &[
    decl::STOP_CONFIG.key,
    decl::INIT.key,
    decl::DNS.key,
    decl::METRICS.key,
];

/// Whether a config field `extra` holds is one the profile reads into a setting: one of
/// the pass-through fields in a shape flotilla reads, or `processes`/`files`.
pub fn is_read(c: &fly::MachineConfig, field: &str) -> bool {
    match field {
        "processes" | "files" => true,
        "stop_config" | "init" | "dns" | "metrics" | "statics" | "auto_destroy" | "schedule" => c
            .extra
            .get(field)
            .is_some_and(|v| serde_json::from_value::<MachineExtras>(json!({ field: v })).is_ok()),
        _ => false,
    }
}

/// A value that says no more than leaving it out (Fly's defaults fill it back in).
fn says_nothing(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Text holding template syntax: the spec would render it, not send it as it is.
fn has_template_syntax(v: &Value) -> bool {
    let s = v.to_string();
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The Machine's pass-through settings, processes and files.
pub fn config_leaves(m: &fly::Machine, p: &mut Profile) {
    extras_leaves(m, p);
    processes_leaf(m, p);
    files_leaf(m, p);
}

/// A value holding what looks like a credential (a token in a command line).
fn has_credential(v: &Value) -> bool {
    !crate::spec::credentials::find_all(&v.to_string()).is_empty()
}

fn extras_leaves(m: &fly::Machine, p: &mut Profile) {
    let Value::Object(fields) = json!(read_extras(&m.config)) else {
        return;
    };
    for (k, v) in fields {
        if has_credential(&v) {
            p.notes.push(format!(
                "Machine {}: {k} holds what looks like a credential; left out (value not shown, updates keep it)",
                m.name
            ));
            continue;
        }
        if has_template_syntax(&v) {
            p.notes.push(format!(
                "Machine {}: {k} contains template syntax; left out (updates keep it)",
                m.name
            ));
            continue;
        }
        match v {
            Value::Object(inner) if MAPPINGS.contains(&k.as_str()) => {
                for (ik, iv) in inner.into_iter().filter(|(_, iv)| !says_nothing(iv)) {
                    let mut l: Leaf = leaf(&k);
                    l.push(ik);
                    p.leaves.insert(l, iv);
                }
            }
            other if !says_nothing(&other) => {
                p.leaves.insert(leaf(&k), other);
            }
            _ => {}
        }
    }
}

fn processes_leaf(m: &fly::Machine, p: &mut Profile) {
    let Some(ps) = read_run(&m.config).processes else {
        return;
    };
    let value = json!(ps);
    let credential = has_credential(&value)
        || ps.iter().any(|x| {
            x.env
                .iter()
                .any(|(k, v)| crate::spec::credentials::looks_like_credential(v, Some(k)).is_some())
        });
    if credential {
        p.notes.push(format!(
            "Machine {}: processes hold what looks like a credential; left out (value not shown, updates keep them)",
            m.name
        ));
    } else if has_template_syntax(&value) {
        p.notes.push(format!(
            "Machine {}: processes contain template syntax; left out (updates keep them)",
            m.name
        ));
    } else {
        p.leaves.insert(leaf(decl::PROCESSES.key), value);
    }
}

/// Files from secrets by the secret's name; any other file makes the Machine's files
/// unmanaged (an undeclared `files` is left as the Machine has it), with a note each.
fn files_leaf(m: &fly::Machine, p: &mut Profile) {
    let Some(files) = read_run(&m.config).files else {
        return;
    };
    let mut listed = Vec::new();
    let mut content = Vec::new();
    for f in &files {
        match &f.source {
            FileSource::SecretName(n) => listed.push(json!({
                decl::FILE_GUEST_PATH.key: f.guest_path,
                decl::FILE_SECRET_NAME.key: n,
            })),
            FileSource::Content(c) => content.push((f.guest_path.as_str(), c.size)),
        }
    }
    if content.is_empty() {
        p.leaves.insert(leaf(decl::FILES.key), Value::Array(listed));
        return;
    }
    for (path, size) in content {
        p.notes.push(format!(
            "Machine {}: file {path} ({size} bytes) exists; its content is not copied: declare it under `files` as `local_file` by hand (until then `files` is left out and the Machine's files are kept)",
            m.name
        ));
    }
}

/// A file referencing a secret the app does not have cannot be declared (the spec's
/// `secret_name` must name a declared secret): `files` is then left out.
pub fn check_file_secrets(p: &mut Profile) {
    let files = leaf(decl::FILES.key);
    let missing: Vec<String> = p
        .leaves
        .get(&files)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get(decl::FILE_SECRET_NAME.key).and_then(Value::as_str))
        .filter(|n| {
            !p.leaves
                .contains_key(&[decl::SECRETS.key.to_string(), n.to_string()][..])
        })
        .map(str::to_string)
        .collect();
    if !missing.is_empty() {
        p.leaves.remove(&files);
        p.notes.push(format!(
            "files come from secrets the app does not list ({}); `files` left out (the Machines' files are kept)",
            missing.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn profile_of(config: Value) -> Profile {
        let m: fly::Machine = serde_json::from_value(
            json!({ "id": "m", "name": "m", "region": "iad", "config": config }),
        )
        .unwrap();
        let mut p = Profile {
            app: "a".into(),
            leaves: BTreeMap::new(),
            machines: Vec::new(),
            volumes: Vec::new(),
            notes: Vec::new(),
            groups: Vec::new(),
        };
        config_leaves(&m, &mut p);
        p
    }

    #[test]
    fn defaults_are_left_out_and_credentials_never_copied() {
        let token = ["gh", "p_", "abcdefghijklmnopqrstuvwxyz0123456789"].concat();
        let p = profile_of(json!({
            "image": "i",
            "init": { "cmd": [], "tty": false, "swap_size_mb": 256 },
            "dns": { "skip_registration": false },
            "auto_destroy": false,
            "metrics": { "port": 9091 },
            "processes": [{ "name": "p", "cmd": ["run", format!("--token={token}")] }],
            "files": [{ "guest_path": "/etc/x", "raw_value": "aGk=" }],
        }));
        let keys: Vec<String> = p.leaves.keys().map(|k| k.join(".")).collect();
        assert_eq!(keys, ["init.swap_size_mb", "metrics.port"]);
        let notes = p.notes.join("\n");
        assert!(!notes.contains(&token), "{notes}");
        assert!(
            notes.contains("processes hold what looks like a credential"),
            "{notes}"
        );
        assert!(notes.contains("file /etc/x (2 bytes) exists"), "{notes}");
    }

    #[test]
    fn unreadable_shapes_stay_notes() {
        let c: fly::MachineConfig = serde_json::from_value(json!({
            "stop_config": { "signal": "SIGTERM" },
            "dns": "odd",
            "schedule": "daily"
        }))
        .unwrap();
        assert!(is_read(&c, "stop_config"));
        assert!(is_read(&c, "schedule"));
        assert!(!is_read(&c, "dns"));
        assert!(!is_read(&c, "kernel"));
    }
}
