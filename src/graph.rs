//! The dependency graph of a set of resources (petgraph). Edges point from a
//! prerequisite to what depends on it:
//!
//! - app → secret, app → volume, app → machine (everything lives in its app);
//! - volume → machine (the Machine mounts it);
//! - secret → machine (a Machine sees its app's secrets only after a restart);
//! - volume → backup policy;
//! - machine → its standby (`SLOT.standby[K]`: created with the primary's ID).
//!
//! These rules are written once, in [`needs`]: the graph ([`Graph::build`], `flotilla
//! graph`) and the order of an apply's operations (`apply::ops`) are both derived from
//! it. Creation walks the edges forward; deletion walks them backward (a Machine goes
//! before its volume, a volume before its app). A cycle is reported with the resources
//! on it.

use foldhash::{HashMap, HashMapExt};
use std::fmt::Write as _;

use petgraph::Direction;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::diag::Diagnostic;
use crate::resource::{Address, Kind, Resource, ResourceSet, Spec};

/// Why one resource depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// Lives in the app.
    InApp,
    /// Mounts the volume.
    Mounts,
    /// Reads the secret at boot.
    Reads,
    /// Governs the volume's snapshots.
    Protects,
    /// Stands by for the Machine (its config names the primary's ID).
    StandsBy,
}

impl Edge {
    fn label(self) -> &'static str {
        match self {
            Edge::InApp => "in app",
            Edge::Mounts => "mounts",
            Edge::Reads => "reads",
            Edge::Protects => "protects",
            Edge::StandsBy => "stands by",
        }
    }
}

/// A prerequisite of a resource, as the resource names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need<'r> {
    /// The app it lives in, by name.
    App(&'r str),
    /// A volume, by address (a Machine mounts it, a backup policy protects it).
    Volume(&'r Address),
    /// The secrets of its app: a Machine sees all of them, after a (re)start, so it
    /// waits for any change to them. `names`: the ones it lists.
    Secrets { app: &'r str, names: &'r [String] },
    /// The primary Machine a standby stands by for, by address (`SLOT` of
    /// `SLOT.standby[K]`).
    Primary(Address),
}

/// The dependency rules: what `r` needs before it can exist, and why. Every resource
/// but an app lives in its app; a Machine mounts its volumes and reads its app's
/// secrets; a standby Machine needs its primary; a backup policy protects its volume.
pub fn needs(r: &Resource) -> Vec<(Edge, Need<'_>)> {
    let mut out = Vec::new();
    if r.kind() != Kind::App {
        out.push((Edge::InApp, Need::App(r.app.as_str())));
    }
    match &r.spec {
        Spec::Machine(m) => {
            out.extend(
                m.mounts
                    .iter()
                    .map(|mt| (Edge::Mounts, Need::Volume(&mt.volume))),
            );
            out.push((
                Edge::Reads,
                Need::Secrets {
                    app: r.app.as_str(),
                    names: &m.secrets,
                },
            ));
            if let Some(p) = r.address.primary() {
                out.push((Edge::StandsBy, Need::Primary(p)));
            }
        }
        Spec::BackupPolicy(b) => out.push((Edge::Protects, Need::Volume(&b.volume))),
        _ => {}
    }
    out
}

pub struct Graph {
    pub graph: DiGraph<Address, Edge>,
    index: HashMap<Address, NodeIndex>,
    kinds: Vec<Kind>,
}

impl Graph {
    /// Builds the graph of `set`. Edges to resources outside the set are skipped (e.g. a
    /// tenant Machine whose shared app is filtered out by `--tenant`).
    pub fn build(set: &ResourceSet) -> Result<Graph, Diagnostic> {
        Self::build_from(set.iter())
    }

    pub fn build_from<'r>(
        resources: impl Iterator<Item = &'r Resource> + Clone,
    ) -> Result<Graph, Diagnostic> {
        // Sized up front: a fleet's graph has one node per resource and about one to
        // three edges each; growing the maps would copy them while both copies are live.
        let (n, _) = resources.size_hint();
        let mut graph = DiGraph::with_capacity(n, 2 * n);
        let mut index = HashMap::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut apps: HashMap<&str, NodeIndex> = HashMap::new();
        let mut secrets: HashMap<(&str, &str), NodeIndex> = HashMap::new();
        for r in resources.clone() {
            let n = graph.add_node(r.address.clone());
            index.insert(r.address.clone(), n);
            kinds.push(r.kind());
            match &r.spec {
                Spec::App(a) => {
                    apps.insert(a.name.as_str(), n);
                }
                Spec::Secret(s) => {
                    secrets.insert((r.app.as_str(), s.name.as_str()), n);
                }
                _ => {}
            }
        }
        // Nodes were added in the resources' order: the i-th resource is node i.
        for (i, r) in resources.enumerate() {
            let n = NodeIndex::new(i);
            for (edge, need) in needs(r) {
                match need {
                    Need::App(a) => {
                        if let Some(&p) = apps.get(a) {
                            graph.add_edge(p, n, edge);
                        }
                    }
                    Need::Volume(v) => {
                        if let Some(&p) = index.get(v) {
                            graph.add_edge(p, n, edge);
                        }
                    }
                    Need::Primary(m) => {
                        if let Some(&p) = index.get(&m) {
                            graph.add_edge(p, n, edge);
                        }
                    }
                    Need::Secrets { app, names } => {
                        for s in names {
                            if let Some(&p) = secrets.get(&(app, s.as_str())) {
                                graph.add_edge(p, n, edge);
                            }
                        }
                    }
                }
            }
        }
        let g = Graph {
            graph,
            index,
            kinds,
        };
        g.check_cycles()?;
        Ok(g)
    }

    fn check_cycles(&self) -> Result<(), Diagnostic> {
        for scc in tarjan_scc(&self.graph) {
            let cyclic = scc.len() > 1
                || scc
                    .first()
                    .is_some_and(|n| self.graph.contains_edge(*n, *n));
            if cyclic {
                let mut names: Vec<String> =
                    scc.iter().map(|n| self.graph[*n].to_string()).collect();
                names.sort();
                return Err(Diagnostic::error(format!(
                    "dependency cycle between {}",
                    names.join(" → ")
                ))
                .hint(
                    "a resource cannot depend on itself through others; check mounts and secrets",
                ));
            }
        }
        Ok(())
    }

    pub fn node(&self, address: &Address) -> Option<NodeIndex> {
        self.index.get(address).copied()
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Prerequisites of a resource.
    pub fn dependencies(&self, address: &Address) -> Vec<&Address> {
        self.neighbors(address, Direction::Incoming)
    }

    fn neighbors(&self, address: &Address, dir: Direction) -> Vec<&Address> {
        let Some(n) = self.node(address) else {
            return Vec::new();
        };
        let mut v: Vec<&Address> = self
            .graph
            .neighbors_directed(n, dir)
            .map(|m| &self.graph[m])
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Topological levels: every resource comes after all its prerequisites; resources in
    /// one level are independent of each other. Deterministic (sorted within a level).
    pub fn levels(&self) -> Vec<Vec<&Address>> {
        let mut indeg: Vec<usize> = self
            .graph
            .node_indices()
            .map(|n| {
                self.graph
                    .neighbors_directed(n, Direction::Incoming)
                    .count()
            })
            .collect();
        let mut current: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|n| indeg[n.index()] == 0)
            .collect();
        let mut out = Vec::new();
        while !current.is_empty() {
            let mut next = Vec::new();
            for n in &current {
                for m in self.graph.neighbors_directed(*n, Direction::Outgoing) {
                    indeg[m.index()] -= 1;
                    if indeg[m.index()] == 0 {
                        next.push(m);
                    }
                }
            }
            let mut level: Vec<&Address> = current.iter().map(|n| &self.graph[*n]).collect();
            level.sort();
            out.push(level);
            next.sort();
            next.dedup();
            current = next;
        }
        out
    }

    /// Graphviz DOT.
    /// Every edge as (from, to, relation), sorted: the same spec gives the same order.
    fn sorted_edges(&self) -> Vec<(String, String, &'static str)> {
        let mut edges: Vec<(String, String, &'static str)> = self
            .graph
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = self.graph.edge_endpoints(e)?;
                Some((
                    self.graph[a].to_string(),
                    self.graph[b].to_string(),
                    self.graph[e].label(),
                ))
            })
            .collect();
        edges.sort();
        edges
    }

    pub fn to_dot(&self) -> String {
        let mut s = String::from(
            "digraph flotilla {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        let mut nodes: Vec<NodeIndex> = self.graph.node_indices().collect();
        nodes.sort_by(|a, b| self.graph[*a].cmp(&self.graph[*b]));
        for n in &nodes {
            let shape = match self.kinds[n.index()] {
                Kind::App => "folder",
                Kind::Volume => "cylinder",
                Kind::Secret => "note",
                Kind::BackupPolicy => "component",
                Kind::Machine => "box",
                Kind::Ip => "diamond",
                Kind::Certificate => "septagon",
            };
            let _ = writeln!(s, "  \"{}\" [shape={shape}];", self.graph[*n]);
        }
        let edges = self.sorted_edges();
        for (a, b, l) in edges {
            let _ = writeln!(s, "  \"{a}\" -> \"{b}\" [label=\"{l}\"];");
        }
        s.push_str("}\n");
        s
    }

    /// The graph as JSON: `nodes` (address, kind, creation level) in creation order and
    /// `edges` (`from` is needed by `to`, with the relation), both sorted, so the same
    /// spec always gives the same document.
    pub fn to_json(&self) -> serde_json::Value {
        let mut nodes = Vec::new();
        for (level, addresses) in self.levels().iter().enumerate() {
            for a in addresses {
                let kind = self.index.get(*a).map(|n| self.kinds[n.index()]);
                nodes.push(serde_json::json!({
                    "address": a.to_string(),
                    "kind": kind.map(|k| k.to_string()),
                    "level": level,
                }));
            }
        }
        let edges = self.sorted_edges();
        let edges: Vec<serde_json::Value> = edges
            .into_iter()
            .map(|(from, to, relation)| {
                serde_json::json!({ "from": from, "to": to, "relation": relation })
            })
            .collect();
        serde_json::json!({ "nodes": nodes, "edges": edges })
    }

    /// One line per resource with its prerequisites, in creation order.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (i, level) in self.levels().iter().enumerate() {
            let _ = writeln!(s, "level {i}:");
            for a in level {
                let deps = self.dependencies(a);
                if deps.is_empty() {
                    let _ = writeln!(s, "  {a}");
                } else {
                    let d: Vec<String> = deps.iter().map(|d| d.to_string()).collect();
                    let _ = writeln!(s, "  {a}  ← {}", d.join(", "));
                }
            }
        }
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Tenants with an app, a secret, a volume with its backup policy and a Machine each.
    pub(crate) fn fleet(tenants: &[&str]) -> ResourceSet {
        let names: Vec<String> = tenants.iter().map(|t| format!("{{ name: {t} }}")).collect();
        let spec = format!(
            "version: 1\norg: acme\ndefaults:\n  image: img:1\n  region: iad\n  \
             volume: {{ name: data, size_gb: 1, mount: /data }}\n  \
             secrets: {{ K: {{ env: K }} }}\ntenants: [{}]\n",
            names.join(", ")
        );
        crate::spec::load_bytes(spec.as_bytes(), "t.yaml")
            .unwrap()
            .desired
            .resources
    }

    fn jarvis() -> ResourceSet {
        fleet(&["a"])
    }

    #[test]
    fn edges_and_levels() {
        let set = jarvis();
        let g = Graph::build(&set).unwrap();
        let m: Address = "tenant.a.machine[0]".parse().unwrap();
        let deps: Vec<String> = g.dependencies(&m).iter().map(|a| a.to_string()).collect();
        assert_eq!(
            deps,
            vec![
                "tenant.a.app",
                "tenant.a.secret.K",
                "tenant.a.volume.data[0]"
            ]
        );
        let levels = g.levels();
        assert_eq!(levels.len(), 3);
        assert_eq!(levels[0], vec![&"tenant.a.app".parse::<Address>().unwrap()]);
        assert_eq!(
            levels[2],
            vec![&"tenant.a.backup.data[0]".parse::<Address>().unwrap(), &m]
        );
        assert!(
            g.to_dot().contains(
                "\"tenant.a.volume.data[0]\" -> \"tenant.a.machine[0]\" [label=\"mounts\"]"
            )
        );
    }

    #[test]
    fn a_standby_needs_its_primary() {
        let spec = "version: 1\norg: o\ndefaults: { image: 'img:1', region: iad, standbys: 1 }\ntenants: [{ name: a }]\n";
        let set = crate::spec::load_bytes(spec.as_bytes(), "t.yaml")
            .unwrap()
            .desired
            .resources;
        let g = Graph::build(&set).unwrap();
        let s: Address = "tenant.a.machine[0].standby[0]".parse().unwrap();
        let deps: Vec<String> = g.dependencies(&s).iter().map(|a| a.to_string()).collect();
        assert_eq!(deps, vec!["tenant.a.app", "tenant.a.machine[0]"]);
    }

    #[test]
    fn cycles_are_reported() {
        let mut set = jarvis();
        // Make the volume's backup policy also "mount" into a cycle: volume → backup and a
        // machine that mounts a volume protected by ... build an artificial self-mount.
        for r in &mut set.resources {
            if let Spec::BackupPolicy(b) = &mut r.spec {
                b.volume = r.address.clone();
            }
        }
        let e = Graph::build(&set).err().unwrap();
        assert!(e.message.contains("dependency cycle"), "{e}");
    }
}
