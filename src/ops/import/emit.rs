//! Writing the factored spec as YAML: block mappings in the order the spec reference
//! uses, lists of scalars in flow style, every string double-quoted (so no value is
//! read back as another type), and a comment above whatever could not be expressed.

use std::fmt::Write as _;

use serde_json::Value;

use super::factor::{Document, Entry};
use super::profile::Leaf;
use crate::spec::decl;
use std::collections::BTreeMap;

/// A mapping in insertion order, or a value.
#[derive(Debug, Clone)]
enum Node {
    Value(Value),
    Map(Vec<(String, Node)>),
}

/// Top-level settings in the order of the spec reference; others after them.
const ORDER: &[&str] = &[
    "image",
    "region",
    "fallback_regions",
    "size",
    "memory",
    "count",
    "idle",
    "services",
    "checks",
    "restart",
    "restart_max_retries",
    "stop_config",
    "init",
    "dns",
    "metrics",
    "statics",
    "auto_destroy",
    "schedule",
    "env",
    "metadata",
    "volume",
    "secrets",
    "ips",
    "hostnames",
    "processes",
    "files",
    "process_groups",
];

/// Keys inside a setting (volume, idle, a check) in the order of the spec reference.
const INNER: &[&str] = &[
    "name",
    "size_gb",
    "mount",
    "snapshot_retention",
    "auto_backup",
    "encrypted",
    "mode",
    "autostart",
    "min_running",
    "type",
    "port",
    "path",
    "method",
    "interval",
    "signal",
    "timeout",
    "grace_period",
    "cmd",
    "count",
];

/// Sort key of a leaf: each part by its place in [`ORDER`] (top level) or [`INNER`],
/// then by name.
fn rank(l: &Leaf) -> Vec<(usize, &str)> {
    l.iter()
        .enumerate()
        .map(|(depth, part)| {
            let table = if depth == 0 { ORDER } else { INNER };
            let at = table.iter().position(|o| o == part).unwrap_or(table.len());
            (at, part.as_str())
        })
        .collect()
}

/// The leaves as nested mappings, in spec order.
fn tree(leaves: &BTreeMap<Leaf, Value>) -> Vec<(String, Node)> {
    let mut sorted: Vec<(&Leaf, &Value)> = leaves.iter().collect();
    sorted.sort_by(|a, b| rank(a.0).cmp(&rank(b.0)));
    let mut root: Vec<(String, Node)> = Vec::new();
    for (path, v) in sorted {
        insert(&mut root, path, v);
    }
    root
}

fn insert(map: &mut Vec<(String, Node)>, path: &[String], v: &Value) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        map.push((head.clone(), Node::Value(v.clone())));
        return;
    }
    let pos = match map.iter().position(|(k, _)| k == head) {
        Some(p) => p,
        None => {
            map.push((head.clone(), Node::Map(Vec::new())));
            map.len() - 1
        }
    };
    if let Node::Map(child) = &mut map[pos].1 {
        insert(child, rest, v);
    }
}

/// Text of a comment line: API-supplied names cannot end the comment early.
fn comment(out: &mut String, indent: usize, text: &str) {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let _ = writeln!(out, "{:indent$}# {clean}", "");
}

fn key(k: &str) -> String {
    const WORDS: &[&str] = &[
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~",
    ];
    let plain = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !WORDS.contains(&k.to_ascii_lowercase().as_str());
    if plain {
        k.to_string()
    } else {
        scalar(&Value::String(k.into()))
    }
}

fn scalar(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn is_scalar(v: &Value) -> bool {
    !v.is_array() && !v.is_object()
}

/// Written on one line: scalars, lists of scalars, mappings of at most two scalars
/// (`{ env: "NAME" }`).
fn is_flat(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().all(is_scalar),
        Value::Object(m) => m.len() <= 2 && m.values().all(is_scalar),
        _ => true,
    }
}

/// `key: value` at `indent`, nested values below it.
fn entry(out: &mut String, indent: usize, k: &str, node: &Node) {
    match node {
        Node::Value(v) if is_flat(v) => {
            let _ = writeln!(out, "{:indent$}{}: {}", "", key(k), flow(v));
        }
        Node::Value(v) => {
            let _ = writeln!(out, "{:indent$}{}:", "", key(k));
            value_block(out, indent + 2, v);
        }
        Node::Map(m)
            if m.len() <= 2
                && m.iter()
                    .all(|(_, n)| matches!(n, Node::Value(v) if is_scalar(v))) =>
        {
            let obj: serde_json::Map<String, Value> = m
                .iter()
                .filter_map(|(k, n)| match n {
                    Node::Value(v) => Some((k.clone(), v.clone())),
                    Node::Map(_) => None,
                })
                .collect();
            let _ = writeln!(
                out,
                "{:indent$}{}: {}",
                "",
                key(k),
                flow(&Value::Object(obj))
            );
        }
        Node::Map(m) => {
            let _ = writeln!(out, "{:indent$}{}:", "", key(k));
            m.iter().for_each(|(k, n)| entry(out, indent + 2, k, n));
        }
    }
}

fn flow(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(scalar).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, x)| format!("{}: {}", key(k), scalar(x)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        other => scalar(other),
    }
}

/// A non-flat value: a mapping's entries or a list's items, at `indent`.
fn value_block(out: &mut String, indent: usize, v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                entry(out, indent, k, &Node::Value(x.clone()));
            }
        }
        Value::Array(items) => {
            for item in items {
                list_item(out, indent, item);
            }
        }
        other => {
            let _ = writeln!(out, "{:indent$}{}", "", scalar(other));
        }
    }
}

/// `- ` and the item; a mapping's first entry on the dash's line.
fn list_item(out: &mut String, indent: usize, item: &Value) {
    let mut inner = String::new();
    match item {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                entry(&mut inner, indent + 2, k, &Node::Value(x.clone()));
            }
        }
        other => {
            let _ = writeln!(inner, "{:w$}{}", "", flow(other), w = indent + 2);
        }
    }
    dash(out, indent, &inner);
}

/// Replaces the first line's indentation with `- `.
fn dash(out: &mut String, indent: usize, inner: &str) {
    let body = inner.get(indent + 2..).unwrap_or(inner);
    let _ = write!(out, "{:indent$}- {body}", "");
}

fn settings(out: &mut String, indent: usize, leaves: &BTreeMap<Leaf, Value>) {
    for (k, n) in tree(leaves) {
        entry(out, indent, &k, &n);
    }
}

fn list_entry(out: &mut String, e: &Entry) {
    for n in &e.notes {
        comment(out, 2, &format!("{}: {n}", e.app));
    }
    if e.keys.is_empty() && e.leaves.is_empty() {
        let mut m = serde_json::Map::new();
        m.insert(decl::ENTRY_NAME.key.into(), Value::String(e.name.clone()));
        if let Some(t) = &e.tier {
            m.insert(decl::ENTRY_TIER.key.into(), Value::String(t.clone()));
        }
        let _ = writeln!(out, "  - {}", flow(&Value::Object(m)));
        return;
    }
    let mut inner = String::new();
    entry(
        &mut inner,
        4,
        decl::ENTRY_NAME.key,
        &Node::Value(Value::String(e.name.clone())),
    );
    if let Some(t) = &e.tier {
        entry(
            &mut inner,
            4,
            decl::ENTRY_TIER.key,
            &Node::Value(Value::String(t.clone())),
        );
    }
    for (k, v) in &e.keys {
        entry(&mut inner, 4, k, &Node::Value(v.clone()));
    }
    settings(&mut inner, 4, &e.leaves);
    dash(out, 2, &inner);
}

/// The spec text. `header` lines come first, as comments.
pub fn write(org: &str, header: &[String], doc: &Document) -> String {
    let mut out = String::new();
    header.iter().for_each(|h| comment(&mut out, 0, h));
    let _ = writeln!(out, "{}: 1", decl::VERSION.key);
    let _ = writeln!(
        out,
        "{}: {}",
        decl::ORG.key,
        scalar(&Value::String(org.into()))
    );
    let _ = writeln!(out, "\nnaming:");
    for (k, t) in &doc.naming {
        let short = k.rsplit('.').next().unwrap_or(k);
        let _ = writeln!(out, "  {short}: {}", scalar(&Value::String(t.clone())));
    }
    doc.notes.iter().for_each(|n| comment(&mut out, 0, n));
    if !doc.defaults.is_empty() {
        let _ = writeln!(out, "\n{}:", decl::DEFAULTS.key);
        settings(&mut out, 2, &doc.defaults);
    }
    if !doc.tiers.is_empty() {
        let _ = writeln!(out, "\n{}:", decl::TIERS.key);
        for (name, leaves) in &doc.tiers {
            let _ = writeln!(out, "  {}:", key(name));
            settings(&mut out, 4, leaves);
        }
    }
    for (k, list) in [
        (decl::TENANTS.key, &doc.tenants),
        (decl::APPS.key, &doc.apps),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "\n{k}:");
            list.iter().for_each(|e| list_entry(&mut out, e));
        }
    }
    out
}
