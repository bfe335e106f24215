//! Layered settings: `defaults` < tier < tenant (or shared app entry). Layers are merged
//! as YAML trees (mappings deep-merge, lists and scalars replace, `null` removes what a
//! lower layer set), so every effective value keeps the line and column it was written at.
//! Typed values are then read from the merged tree.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::diag::Mark;
use crate::resource::{
    Check, Concurrency, IdleMode, IdlePolicy, Port, SecretSource, Service, Usage,
};
use crate::spec::schema::{parse_decimal, parse_memory};
use crate::spec::yaml::{Node, Value};

/// One layer: where it is in the document and its mapping.
#[derive(Debug, Clone)]
pub struct Layer<'a> {
    /// Document path of the layer (`defaults`, `tiers.pro`, `tenants[3]`).
    pub path: String,
    pub node: &'a Node,
}

/// Keys of tenant and app entries that are not settings.
const ENTRY_KEYS: &[&str] = &[
    "name",
    "tier",
    "generate",
    "machines",
    "role",
    "machine_name",
];

/// Deep-merges `upper` over `lower` (both mappings).
fn merge_into(lower: &mut Vec<(Node, Node)>, upper: &[(Node, Node)], skip: &[&str]) {
    for (k, v) in upper {
        let Some(key) = k.scalar_text() else { continue };
        if skip.contains(&key) {
            continue;
        }
        match lower
            .iter_mut()
            .find(|(lk, _)| lk.scalar_text() == Some(key))
        {
            Some((_, lv)) => {
                // Free-keyed maps (env, metadata, secrets, checks) merge by key too.
                match (&mut lv.value, &v.value) {
                    (Value::Map(lm), Value::Map(um)) => merge_into(lm, um, &[]),
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
                merge_into(&mut entries, m, ENTRY_KEYS);
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
                return format!("{}.{key_path}", l.path);
            }
        }
        match self.layers.last() {
            Some(l) => format!("{}.{key_path}", l.path),
            None => key_path.to_string(),
        }
    }

    /// The innermost layer's path (the tenant or app entry itself).
    pub fn own_path(&self) -> &str {
        self.layers.last().map(|l| l.path.as_str()).unwrap_or("")
    }

    pub fn str(&self, path: &str) -> Option<(String, Mark)> {
        self.get(path)
            .and_then(|n| n.as_str().map(|s| (s.to_string(), n.mark)))
    }

    pub fn u32(&self, path: &str) -> Option<(u32, Mark)> {
        self.get(path).and_then(|n| {
            n.as_i64()
                .and_then(|v| u32::try_from(v).ok())
                .map(|v| (v, n.mark))
        })
    }

    pub fn bool(&self, path: &str) -> Option<bool> {
        self.get(path).and_then(Node::as_bool)
    }

    pub fn decimal(&self, path: &str) -> Option<Decimal> {
        self.get(path)
            .and_then(|n| n.scalar_text().and_then(parse_decimal))
    }

    pub fn memory(&self) -> Option<(u32, Mark)> {
        self.get("memory")
            .and_then(|n| parse_memory(n).ok().map(|v| (v, n.mark)))
    }

    pub fn strings(&self, path: &str) -> Vec<(String, Mark)> {
        self.get(path)
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
    pub fn text_map(&self, path: &str) -> Vec<(String, String, Mark)> {
        let mut out: Vec<(String, String, Mark)> = self
            .get(path)
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
            mode: match self.get("idle.mode").and_then(Node::scalar_text) {
                Some("stop") => IdleMode::Stop,
                Some("suspend") => IdleMode::Suspend,
                _ => IdleMode::Off,
            },
            autostart: self.bool("idle.autostart").unwrap_or(d.autostart),
            min_running: self
                .u32("idle.min_running")
                .map(|v| v.0)
                .unwrap_or(d.min_running),
        }
    }

    pub fn services(&self) -> Option<Vec<Service>> {
        let items = self.get("services")?.as_seq()?;
        Some(items.iter().filter_map(read_service).collect())
    }

    pub fn checks(&self) -> Option<BTreeMap<String, Check>> {
        let m = self.get("checks")?.as_map()?;
        Some(
            m.iter()
                .filter_map(|(k, v)| Some((k.scalar_text()?.to_string(), read_check(v)?)))
                .collect(),
        )
    }

    pub fn secrets(&self) -> Vec<(String, SecretSource, Mark)> {
        let mut out: Vec<(String, SecretSource, Mark)> = self
            .get("secrets")
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        let name = k.scalar_text()?.to_string();
                        let src = if let Some(e) = v.get("env").and_then(Node::as_str) {
                            SecretSource::Env(e.to_string())
                        } else {
                            SecretSource::File(v.get("file").and_then(Node::as_str)?.to_string())
                        };
                        Some((name, src, k.mark))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn usage(&self) -> Usage {
        let d = Usage::default();
        let dec = |k: &str, dv: Decimal| self.decimal(&format!("usage.{k}")).unwrap_or(dv);
        let int = |k: &str, dv: u32| self.u32(&format!("usage.{k}")).map(|v| v.0).unwrap_or(dv);
        Usage {
            active_hours_per_day: dec("active_hours_per_day", d.active_hours_per_day),
            rootfs_gb: dec("rootfs_gb", d.rootfs_gb),
            egress_gb_month: dec("egress_gb_month", d.egress_gb_month),
            private_egress_gb_month: dec("private_egress_gb_month", d.private_egress_gb_month),
            volume_used_gb: self.decimal("usage.volume_used_gb"),
            snapshot_daily_change: dec("snapshot_daily_change", d.snapshot_daily_change),
            dedicated_ipv4: int("dedicated_ipv4", d.dedicated_ipv4),
            certificates: int("certificates", d.certificates),
            wildcard_certificates: int("wildcard_certificates", d.wildcard_certificates),
        }
    }
}

fn read_service(n: &Node) -> Option<Service> {
    let port = |n: &Node, k: &str| {
        n.get(k)
            .and_then(Node::as_i64)
            .and_then(|v| u16::try_from(v).ok())
    };
    let ports = n
        .get("ports")
        .and_then(Node::as_seq)
        .map(|ps| {
            ps.iter()
                .filter_map(|p| {
                    Some(Port {
                        port: port(p, "port")?,
                        handlers: p
                            .get("handlers")
                            .and_then(Node::as_seq)
                            .map(|hs| {
                                hs.iter()
                                    .filter_map(|h| h.as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        force_https: p.get("force_https").and_then(Node::as_bool),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let concurrency = n
        .get("concurrency")
        .filter(|c| !c.is_null())
        .map(|c| Concurrency {
            kind: c
                .get("type")
                .and_then(Node::as_str)
                .unwrap_or("connections")
                .to_string(),
            soft_limit: c
                .get("soft_limit")
                .and_then(Node::as_i64)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(20),
            hard_limit: c
                .get("hard_limit")
                .and_then(Node::as_i64)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(25),
        });
    Some(Service {
        protocol: n
            .get("protocol")
            .and_then(Node::as_str)
            .unwrap_or("tcp")
            .to_string(),
        internal_port: port(n, "internal_port")?,
        ports,
        concurrency,
    })
}

fn read_check(n: &Node) -> Option<Check> {
    let s = |k: &str| n.get(k).and_then(Node::as_str).map(str::to_string);
    Some(Check {
        kind: s("type").unwrap_or_else(|| "http".to_string()),
        port: n
            .get("port")
            .and_then(Node::as_i64)
            .and_then(|v| u16::try_from(v).ok())?,
        path: s("path"),
        method: s("method").map(|m| m.to_ascii_uppercase()),
        interval: s("interval"),
        timeout: s("timeout"),
        grace_period: s("grace_period"),
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
        assert_eq!(eff.memory().unwrap().0, 512);
        let env: Vec<String> = eff
            .text_map("env")
            .into_iter()
            .map(|e| format!("{}={}", e.0, e.1))
            .collect();
        assert_eq!(env, vec!["A=1", "C=3"]);
        assert_eq!(eff.u32("volume.size_gb").unwrap().0, 5);
        assert_eq!(eff.str("volume.mount").unwrap().0, "/d");
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
