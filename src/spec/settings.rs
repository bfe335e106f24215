//! Layered settings: `defaults` < tier < tenant (or shared app entry). Layers are merged
//! as YAML trees (mappings deep-merge, lists and scalars replace, `null` removes what a
//! lower layer set), so every effective value keeps the line and column it was written at.
//! Typed values are then read from the merged tree through the declarations in
//! [`crate::spec::decl`] (`eff.value(&decl::COUNT)`): no string keys, no restated defaults.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::diag::Mark;
use crate::resource::{Check, Concurrency, IdlePolicy, Port, SecretSource, Service, Usage};
use crate::spec::decl::{self, Count, Kind, Number, Setting, Tree};
use crate::spec::yaml::{Node, Value};

/// One layer: where it is in the document and its mapping.
#[derive(Debug, Clone)]
pub struct Layer<'a> {
    /// Document path of the layer (`defaults`, `tiers.pro`, `tenants[3]`).
    pub path: String,
    pub node: &'a Node,
}

/// Whether a key of an entry is one of the entry's own keys (name, tier, generate, …),
/// which are not settings and are never layered.
fn is_entry_key(key: &str) -> bool {
    decl::ENTRY_FIELDS
        .iter()
        .any(|fields| fields.iter().any(|f| f.name == key))
}

/// Deep-merges `upper` over `lower` (both mappings); `top` skips the entry keys.
fn merge_into(lower: &mut Vec<(Node, Node)>, upper: &[(Node, Node)], top: bool) {
    for (k, v) in upper {
        let Some(key) = k.scalar_text() else { continue };
        if top && is_entry_key(key) {
            continue;
        }
        match lower
            .iter_mut()
            .find(|(lk, _)| lk.scalar_text() == Some(key))
        {
            Some((_, lv)) => {
                // Free-keyed maps (env, metadata, secrets, checks) merge by key too.
                match (&mut lv.value, &v.value) {
                    (Value::Map(lm), Value::Map(um)) => merge_into(lm, um, false),
                    _ => *lv = v.clone(),
                }
            }
            None => lower.push((k.clone(), v.clone())),
        }
    }
}

/// Removes entries whose value is an explicit `null` (a reset), recursively.
fn drop_nulls(entries: &mut Vec<(Node, Node)>) {
    entries.retain(|(_, v)| !v.is_null());
    for (_, v) in entries.iter_mut() {
        if let Value::Map(m) = &mut v.value {
            drop_nulls(m);
        }
    }
}

/// The effective settings of one tenant or app: the merged tree plus its layers.
pub struct Effective<'a> {
    pub layers: Vec<Layer<'a>>,
    pub merged: Node,
}

impl<'a> Effective<'a> {
    pub fn new(layers: Vec<Layer<'a>>) -> Self {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        for l in &layers {
            if let Some(m) = l.node.as_map() {
                merge_into(&mut entries, m, true);
            }
        }
        drop_nulls(&mut entries);
        let mark = layers.last().map(|l| l.node.mark).unwrap_or_default();
        Effective {
            layers,
            merged: Node {
                mark,
                value: Value::Map(entries),
            },
        }
    }

    /// The node at a dotted key path (`volume.size_gb`).
    pub fn get(&self, path: &str) -> Option<&Node> {
        let mut n = &self.merged;
        for part in path.split('.') {
            n = n.get(part)?;
        }
        Some(n)
    }

    /// The document path where the effective value of `key_path` was written, e.g.
    /// `tiers.pro.memory` for a tenant that inherits its memory from tier `pro`.
    pub fn origin(&self, key_path: &str) -> String {
        for l in self.layers.iter().rev() {
            let mut n = Some(l.node);
            for part in key_path.split('.') {
                n = n.and_then(|x| x.get(part));
            }
            if n.is_some() {
                return crate::spec::yaml::concat(&[&l.path, ".", key_path]);
            }
        }
        match self.layers.last() {
            Some(l) => crate::spec::yaml::concat(&[&l.path, ".", key_path]),
            None => key_path.to_string(),
        }
    }

    /// The innermost layer's path (the tenant or app entry itself).
    pub fn own_path(&self) -> &str {
        self.layers.last().map(|l| l.path.as_str()).unwrap_or("")
    }

    /// Whether a setting is present in the effective tree (whatever its value).
    pub fn has<K: Kind>(&self, s: &Setting<K>) -> bool {
        s.node(&self.merged).is_some()
    }

    /// The effective value of a setting as written, and where; `None` when unset.
    pub fn set<K: Kind>(&self, s: &Setting<K>) -> Option<(K::Out<'_>, Mark)> {
        s.located(&self.merged)
    }

    /// The effective value of a setting, else its declared default.
    pub fn value<K: Kind>(&self, s: &Setting<K>) -> Option<K::Out<'_>> {
        s.value(&self.merged)
    }

    /// The effective value of a setting, else its declared default (settings with a
    /// declared default never fall through to the type's zero; see `decl`'s tests).
    pub fn or_default<'s, K: Kind>(&'s self, s: &Setting<K>) -> K::Out<'s>
    where
        K::Out<'s>: Default,
    {
        self.value(s).unwrap_or_default()
    }

    /// Where the effective value of a setting was written (see [`Effective::origin`]).
    pub fn origin_of<K>(&self, s: &Setting<K>) -> String {
        self.origin(s.key)
    }

    /// The mark of a setting's effective value, else of the merged entry.
    pub fn mark_of<K: Kind>(&self, s: &Setting<K>) -> Mark {
        s.node(&self.merged).map_or(self.merged.mark, |n| n.mark)
    }

    /// The strings of a list setting, each with its mark.
    pub fn strings(&self, s: &Setting<Tree>) -> Vec<(String, Mark)> {
        self.value(s)
            .and_then(Node::as_seq)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|n| n.as_str().map(|s| (s.to_string(), n.mark)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A free-keyed mapping of scalars (env, metadata), in key order.
    pub fn text_map(&self, s: &Setting<Tree>) -> Vec<(String, String, Mark)> {
        let mut out: Vec<(String, String, Mark)> = self
            .value(s)
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        Some((
                            k.scalar_text()?.to_string(),
                            v.scalar_text()?.to_string(),
                            v.mark,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn idle(&self) -> IdlePolicy {
        let d = IdlePolicy::default();
        IdlePolicy {
            mode: self.value(&decl::IDLE_MODE).unwrap_or(d.mode),
            autostart: self.value(&decl::IDLE_AUTOSTART).unwrap_or(d.autostart),
            min_running: self.value(&decl::IDLE_MIN_RUNNING).unwrap_or(d.min_running),
        }
    }

    pub fn services(&self) -> Option<Vec<Service>> {
        let items = self.value(&decl::SERVICES)?.as_seq()?;
        Some(items.iter().filter_map(read_service).collect())
    }

    pub fn checks(&self) -> Option<BTreeMap<String, Check>> {
        let m = self.value(&decl::CHECKS)?.as_map()?;
        Some(
            m.iter()
                .filter_map(|(k, v)| Some((k.scalar_text()?.to_string(), read_check(v)?)))
                .collect(),
        )
    }

    pub fn secrets(&self) -> Vec<(String, SecretSource, Mark)> {
        self.secret_refs(&decl::SECRETS)
    }

    /// The entries of a mapping of secret references (`secrets`,
    /// `backups.export.credentials`), sorted by name.
    pub fn secret_refs(&self, s: &Setting<Tree>) -> Vec<(String, SecretSource, Mark)> {
        let mut out: Vec<(String, SecretSource, Mark)> = self
            .value(s)
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        Some((k.scalar_text()?.to_string(), read_secret(v)?, k.mark))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn usage(&self) -> Usage {
        let d = Usage::default();
        let dec = |s: &Setting<Number>, dv: Decimal| self.value(s).unwrap_or(dv);
        let int = |s: &Setting<Count>, dv: u32| self.value(s).unwrap_or(dv);
        Usage {
            active_hours_per_day: dec(&decl::USAGE_ACTIVE_HOURS, d.active_hours_per_day),
            active_hours_declared: self.set(&decl::USAGE_ACTIVE_HOURS).is_some(),
            rootfs_gb: dec(&decl::USAGE_ROOTFS_GB, d.rootfs_gb),
            egress_gb_month: dec(&decl::USAGE_EGRESS_GB, d.egress_gb_month),
            private_egress_gb_month: dec(&decl::USAGE_PRIVATE_EGRESS_GB, d.private_egress_gb_month),
            volume_used_gb: self.value(&decl::USAGE_VOLUME_USED_GB),
            snapshot_daily_change: dec(&decl::USAGE_SNAPSHOT_DAILY_CHANGE, d.snapshot_daily_change),
            dedicated_ipv4: int(&decl::USAGE_DEDICATED_IPV4, d.dedicated_ipv4),
            certificates: int(&decl::USAGE_CERTIFICATES, d.certificates),
            wildcard_certificates: int(&decl::USAGE_WILDCARD_CERTIFICATES, d.wildcard_certificates),
        }
    }
}

/// `{env: VAR}` or `{file: PATH}` (the schema checked there is exactly one).
pub fn read_secret(v: &Node) -> Option<SecretSource> {
    if let Some(e) = v.get(decl::SECRET_ENV).and_then(Node::as_str) {
        return Some(SecretSource::Env(e.to_string()));
    }
    Some(SecretSource::File(
        v.get(decl::SECRET_FILE).and_then(Node::as_str)?.to_string(),
    ))
}

fn read_port(p: &Node) -> Option<Port> {
    Some(Port {
        port: decl::PORT_PORT.get(p)?,
        handlers: decl::PORT_HANDLERS
            .get(p)
            .and_then(Node::as_seq)
            .map(|hs| {
                hs.iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        force_https: decl::PORT_FORCE_HTTPS.get(p),
    })
}

fn read_concurrency(c: &Node) -> Option<Concurrency> {
    Some(Concurrency {
        kind: decl::CONCURRENCY_TYPE.value(c)?.into(),
        soft_limit: decl::CONCURRENCY_SOFT_LIMIT.value(c)?,
        hard_limit: decl::CONCURRENCY_HARD_LIMIT.value(c)?,
    })
}

fn read_service(n: &Node) -> Option<Service> {
    let ports = decl::SERVICE_PORTS
        .get(n)
        .and_then(Node::as_seq)
        .map(|ps| ps.iter().filter_map(read_port).collect())
        .unwrap_or_default();
    let concurrency = decl::SERVICE_CONCURRENCY
        .get(n)
        .filter(|c| !c.is_null())
        .and_then(read_concurrency);
    Some(Service {
        protocol: decl::SERVICE_PROTOCOL.value(n)?.into(),
        internal_port: decl::SERVICE_INTERNAL_PORT.get(n)?,
        ports,
        concurrency,
    })
}

fn read_check(n: &Node) -> Option<Check> {
    let s = |d: &Setting<decl::Text>| d.get(n).map(str::to_string);
    Some(Check {
        kind: decl::CHECK_TYPE.value(n)?.into(),
        port: decl::CHECK_PORT.get(n)?,
        path: s(&decl::CHECK_PATH),
        method: decl::CHECK_METHOD.get(n).map(str::to_ascii_uppercase),
        interval: s(&decl::CHECK_INTERVAL),
        timeout: s(&decl::CHECK_TIMEOUT),
        grace_period: s(&decl::CHECK_GRACE_PERIOD),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse;

    #[test]
    fn layers_merge_deeply_and_null_resets() {
        let doc = parse(
            b"defaults: {memory: 2gb, env: {A: '1', B: '2'}, volume: {name: data, size_gb: 3, mount: /d}}\n\
              tier: {memory: 512mb, env: {B: null, C: '3'}, volume: {size_gb: 5}}\n\
              tenant: {name: x, volume: null}\n",
        )
        .unwrap();
        let eff = Effective::new(vec![
            Layer {
                path: "defaults".into(),
                node: doc.get("defaults").unwrap(),
            },
            Layer {
                path: "tiers.free".into(),
                node: doc.get("tier").unwrap(),
            },
        ]);
        assert_eq!(eff.set(&decl::MEMORY).unwrap().0, 512);
        let env: Vec<String> = eff
            .text_map(&decl::ENV)
            .into_iter()
            .map(|e| format!("{}={}", e.0, e.1))
            .collect();
        assert_eq!(env, vec!["A=1", "C=3"]);
        assert_eq!(eff.value(&decl::VOLUME_SIZE_GB), Some(5));
        assert_eq!(eff.value(&decl::VOLUME_MOUNT), Some("/d"));
        assert_eq!(eff.origin("volume.size_gb"), "tiers.free.volume.size_gb");
        assert_eq!(eff.origin("volume.mount"), "defaults.volume.mount");

        let eff = Effective::new(vec![
            Layer {
                path: "defaults".into(),
                node: doc.get("defaults").unwrap(),
            },
            Layer {
                path: "tenants[0]".into(),
                node: doc.get("tenant").unwrap(),
            },
        ]);
        assert!(eff.get("volume").is_none());
        assert!(eff.get("name").is_none(), "entry keys are not settings");
    }
}
