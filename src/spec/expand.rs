//! Expansion: a checked spec tree → the flat, validated desired state.
//!
//! For every tenant (explicit or generated) and every shared app, the layers
//! `defaults < tier < entry` are merged, validated once per distinct layer stack, and
//! expanded into resources with stable addresses. All problems are collected.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use minijinja::{Value as Ctx, context};

use crate::diag::{Diagnostic, Diagnostics, Mark, suggest};
use crate::platform::{self, Preset};
use crate::resource::{
    Address, AppSpec, BackupSpec, Check, Desired, Guest, IdleMode, IdlePolicy, META_INDEX,
    META_MANAGED, META_ROLE, META_TENANT, MachineSpec, Mount, Owner, Resource, ResourceSet,
    SecretSource, SecretSpec, Service, Spec, TenantInfo, Usage, VolumeSpec,
};
use crate::spec::settings::{Effective, Layer};
use crate::spec::templates::{Templates, is_template};
use crate::spec::yaml::Node;

pub const DEFAULT_APP_NAME: &str = "{{ org }}-{{ tenant.name }}";
pub const DEFAULT_MACHINE_NAME: &str = "{{ tenant.name }}-{{ index }}";
pub const DEFAULT_SHARED_MACHINE_NAME: &str = "{{ app }}-{{ index }}";
pub const DEFAULT_VOLUME_NAME: &str = "{{ volume.name }}{% if count > 1 %}_{{ index }}{% endif %}";
const DEFAULT_SIZE: &str = "shared-cpu-1x";
const DEFAULT_VOLUME: &str = "data";
const MAX_MACHINES_PER_ENTRY: u32 = 64;
/// The most Machines one spec may declare (a bound on work and memory).
pub const MAX_MACHINES: usize = 200_000;

/// Collects diagnostics, merging repeats of one problem (an inherited value that is wrong
/// for many tenants is reported once, with a count).
pub struct Sink {
    file: String,
    list: Vec<Diagnostic>,
    counts: Vec<usize>,
    seen: HashMap<(String, String), usize>,
    /// Keys in the order they were added (repeats included), to replay them.
    log: Vec<(String, String)>,
}

impl Sink {
    pub fn new(file: &str) -> Self {
        Sink {
            file: file.to_string(),
            list: Vec::new(),
            counts: Vec::new(),
            seen: HashMap::new(),
            log: Vec::new(),
        }
    }

    /// A position in the log of added diagnostics.
    pub fn position(&self) -> usize {
        self.log.len()
    }

    /// The keys of diagnostics added since `pos`.
    pub fn keys_since(&self, pos: usize) -> Vec<(String, String)> {
        self.log[pos.min(self.log.len())..].to_vec()
    }

    /// Counts the diagnostics with these keys once more (a cached result reused).
    pub fn replay(&mut self, keys: &[(String, String)]) {
        for k in keys {
            if let Some(i) = self.seen.get(k) {
                self.counts[*i] += 1;
            }
        }
    }

    pub fn add(&mut self, mut d: Diagnostic) {
        if d.file.is_none() {
            d.file = Some(self.file.clone());
        }
        let key = (d.path.clone().unwrap_or_default(), d.message.clone());
        self.log.push(key.clone());
        match self.seen.get(&key) {
            Some(i) => self.counts[*i] += 1,
            None => {
                self.seen.insert(key, self.list.len());
                self.list.push(d);
                self.counts.push(1);
            }
        }
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(Diagnostic::is_error)
    }

    pub fn finish(self) -> Diagnostics {
        let mut out = Diagnostics::new();
        for (mut d, n) in self.list.into_iter().zip(self.counts) {
            if n > 1 {
                d.message.push_str(&format!(" (for {n} tenants or apps)"));
            }
            out.push(d);
        }
        out.sort();
        out
    }
}

/// Validated, typed settings of one layer stack.
struct Resolved {
    image: String,
    region: String,
    fallback_regions: Vec<String>,
    preset: &'static Preset,
    memory_mb: u32,
    count: u32,
    idle: IdlePolicy,
    services: Option<Vec<Service>>,
    checks: Option<BTreeMap<String, Check>>,
    restart: Option<String>,
    /// (key, template source, origin path, mark)
    env: Vec<(String, String, String, Mark)>,
    metadata: Vec<(String, String, String, Mark)>,
    secrets: Vec<(String, SecretSource, String, Mark)>,
    volume: Option<VolumeSettings>,
    snapshot_before_destroy: bool,
    prevent_destroy: bool,
    usage: Usage,
}

struct VolumeSettings {
    name: String,
    size_gb: u32,
    mount: String,
    snapshot_retention: u32,
    auto_backup: bool,
    encrypted: bool,
}

/// Settings resolved once for a tier, with the keys of the diagnostics they produced.
type CachedSettings = (Option<Rc<Resolved>>, Vec<(String, String)>);

/// A tenant ready to expand.
struct TenantDecl {
    name: String,
    tier: Option<String>,
    /// Document path of the entry (`tenants[3]`), and for generated tenants the index.
    path: String,
    i: Option<u64>,
    settings: Rc<Resolved>,
}

struct AppDecl {
    name: String,
    path: String,
    mark: Mark,
    role: String,
    machine_name: (String, Mark, String),
    settings: Rc<Resolved>,
}

struct Naming {
    app: (String, Mark, String),
    machine: (String, Mark, String),
    volume: (String, Mark, String),
}

pub struct Expander<'a> {
    pub sink: Sink,
    templates: Templates,
    org: String,
    fleet: String,
    root: &'a Node,
    tiers: BTreeMap<String, &'a Node>,
}

/// An error at `path`; a zero mark (a built-in default) carries no position.
fn err(msg: impl Into<String>, path: &str, mark: Mark) -> Diagnostic {
    let d = Diagnostic::error(msg).path(path);
    if mark.line == 0 { d } else { d.at(mark) }
}

fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn tenant_name_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("is empty".into());
    }
    if s.len() > 63 {
        return Some(format!("is {} characters long; the limit is 63", s.len()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
    {
        return Some(format!(
            "contains {c:?}; use lowercase letters, digits, dashes and underscores"
        ));
    }
    None
}

impl<'a> Expander<'a> {
    pub fn new(root: &'a Node, file: &str) -> Self {
        let mut tiers = BTreeMap::new();
        if let Some(m) = root.get("tiers").and_then(Node::as_map) {
            for (k, v) in m {
                if let Some(name) = k.scalar_text() {
                    tiers.insert(name.to_string(), v);
                }
            }
        }
        Expander {
            sink: Sink::new(file),
            templates: Templates::new(),
            org: root
                .get("org")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_string(),
            fleet: root
                .get("fleet")
                .and_then(Node::as_str)
                .unwrap_or(crate::resource::DEFAULT_FLEET)
                .to_string(),
            root,
            tiers,
        }
    }

    fn naming(&mut self) -> Naming {
        let get = |key: &str, default: &str| -> (String, Mark, String) {
            let n = self.root.get("naming").and_then(|n| n.get(key));
            match n.and_then(|n| n.as_str().map(|s| (s.to_string(), n.mark))) {
                Some((s, m)) => (s, m, format!("naming.{key}")),
                None => (
                    default.to_string(),
                    Mark::default(),
                    format!("naming.{key} (default `{default}`)"),
                ),
            }
        };
        let naming = Naming {
            app: get("app", DEFAULT_APP_NAME),
            machine: get("machine", DEFAULT_MACHINE_NAME),
            volume: get("volume", DEFAULT_VOLUME_NAME),
        };
        for (src, mark, path) in [&naming.app, &naming.machine, &naming.volume] {
            if let Err(e) = self.templates.compile(src) {
                self.sink
                    .add(err(format!("template error: {e}"), path, *mark));
            }
        }
        naming
    }

    /// The layer stack for an entry: defaults, its tier (if any), the entry itself.
    fn layers(
        &mut self,
        entry: &'a Node,
        entry_path: &str,
        tier: Option<(&str, Mark)>,
    ) -> Vec<Layer<'a>> {
        let mut layers = Vec::new();
        if let Some(d) = self.root.get("defaults").filter(|d| d.as_map().is_some()) {
            layers.push(Layer {
                path: "defaults".into(),
                node: d,
            });
        }
        if let Some((t, mark)) = tier {
            match self.tiers.get(t) {
                Some(node) if node.as_map().is_some() => {
                    layers.push(Layer {
                        path: format!("tiers.{t}"),
                        node,
                    });
                }
                Some(_) => {}
                None => {
                    let hint = suggest(t, self.tiers.keys().map(String::as_str), "tiers");
                    self.sink.add(
                        err(
                            format!("unknown tier `{t}`"),
                            &format!("{entry_path}.tier"),
                            mark,
                        )
                        .hint(hint),
                    );
                }
            }
        }
        layers.push(Layer {
            path: entry_path.to_string(),
            node: entry,
        });
        layers
    }

    /// Validates the merged settings of one layer stack and reads them into types.
    fn resolve(&mut self, eff: &Effective<'_>, what: &str, address: &str) -> Option<Resolved> {
        let mut ok = true;
        let own = eff.own_path().to_string();
        let mut add = |sink: &mut Sink, d: Diagnostic| {
            if d.is_error() {
                ok = false;
            }
            sink.add(d.address(address.to_string()));
        };
        let origin = |k: &str| eff.origin(k);
        let mark = |k: &str| eff.get(k).map(|n| n.mark).unwrap_or(eff.merged.mark);

        let image = eff.str("image").map(|v| v.0);
        if eff.get("image").is_none() {
            add(
                &mut self.sink,
                err(format!("{what} has no image"), &own, eff.merged.mark)
                    .hint("set `image:` in defaults, its tier or the entry (e.g. registry.fly.io/app:1.0)"),
            );
        }
        let region = eff.str("region");
        if eff.get("region").is_none() {
            add(
                &mut self.sink,
                err(format!("{what} has no region"), &own, eff.merged.mark)
                    .hint("set `region:` (e.g. iad) in defaults, its tier or the entry"),
            );
        }
        let codes = || platform::REGIONS.iter().map(|r| r.code);
        if let Some((r, m)) = &region
            && platform::region(r).is_none()
        {
            add(
                &mut self.sink,
                err(format!("unknown region `{r}`"), &origin("region"), *m).hint(suggest(
                    r,
                    codes(),
                    "regions",
                )),
            );
        }
        let fallback = eff.strings("fallback_regions");
        for (i, (r, m)) in fallback.iter().enumerate() {
            let p = format!("{}[{i}]", origin("fallback_regions"));
            if platform::region(r).is_none() {
                add(
                    &mut self.sink,
                    err(format!("unknown region `{r}`"), &p, *m).hint(suggest(
                        r,
                        codes(),
                        "regions",
                    )),
                );
            } else if region.as_ref().is_some_and(|(pr, _)| pr == r) {
                add(
                    &mut self.sink,
                    Diagnostic::warning(format!("fallback region `{r}` is the primary region"))
                        .path(p)
                        .at(*m),
                );
            } else if fallback[..i].iter().any(|(o, _)| o == r) {
                add(
                    &mut self.sink,
                    Diagnostic::warning(format!("fallback region `{r}` is listed twice"))
                        .path(p)
                        .at(*m),
                );
            }
        }

        let size = eff
            .str("size")
            .unwrap_or_else(|| (DEFAULT_SIZE.to_string(), eff.merged.mark));
        let preset = platform::preset(&size.0);
        if preset.is_none() {
            let names = platform::PRESETS.iter().map(|p| p.name);
            add(
                &mut self.sink,
                err(
                    format!("unknown size `{}`", size.0),
                    &origin("size"),
                    size.1,
                )
                .hint(suggest(&size.0, names, "sizes")),
            );
        }
        let memory = eff.memory();
        let mut memory_mb = 0;
        if let Some(p) = preset {
            memory_mb = memory.map(|m| m.0).unwrap_or(p.base_memory_mb);
            let (mpath, mmark) = if memory.is_some() {
                (origin("memory"), mark("memory"))
            } else {
                (origin("size"), size.1)
            };
            if memory_mb % 256 != 0 {
                let lo = memory_mb / 256 * 256;
                add(
                    &mut self.sink,
                    err(
                        format!("{memory_mb} MB is not a multiple of 256 MB"),
                        &mpath,
                        mmark,
                    )
                    .hint(format!("use {}mb or {}mb", lo.max(256), lo + 256)),
                );
            } else if memory_mb < p.min_memory_mb() || memory_mb > p.max_memory_mb() {
                let (lo, hi) = p.cpu_kind.memory_per_cpu_mb();
                add(
                    &mut self.sink,
                    err(
                        format!(
                            "{memory_mb} MB is outside what {} allows ({}–{} MB: {}–{} MB per vCPU)",
                            p.name,
                            p.min_memory_mb(),
                            p.max_memory_mb(),
                            lo,
                            hi
                        ),
                        &mpath,
                        mmark,
                    )
                    .hint(larger_preset_hint(p, memory_mb)),
                );
            }
        }

        let count = eff.u32("count").map(|c| c.0).unwrap_or(1);
        if count == 0 || count > MAX_MACHINES_PER_ENTRY {
            add(
                &mut self.sink,
                err(
                    format!("count {count} is out of range (1–{MAX_MACHINES_PER_ENTRY})"),
                    &origin("count"),
                    mark("count"),
                ),
            );
        }
        let idle = eff.idle();
        if idle.mode == IdleMode::Suspend && memory_mb > platform::SUSPEND_MAX_MEMORY_MB {
            add(
                &mut self.sink,
                err(
                    format!("idle mode `suspend` with {memory_mb} MB: Fly supports suspend only up to 2048 MB"),
                    &origin("idle.mode"),
                    mark("idle.mode"),
                )
                .hint("use `idle: { mode: stop }` for this size, or memory of 2gb or less"),
            );
        }
        if idle.min_running > count {
            add(
                &mut self.sink,
                err(
                    format!(
                        "min_running {} is more than the {count} Machines declared",
                        idle.min_running
                    ),
                    &origin("idle.min_running"),
                    mark("idle.min_running"),
                ),
            );
        }
        let services = eff.services();
        if idle.mode != IdleMode::Off && services.as_ref().is_none_or(Vec::is_empty) {
            add(
                &mut self.sink,
                Diagnostic::warning(format!(
                    "idle mode `{}` has no effect without services: Fly's proxy stops or suspends a Machine only through a service",
                    idle.mode.as_str()
                ))
                .path(origin("idle.mode"))
                .at(mark("idle.mode"))
                .hint("declare `services:` with the port the Machine serves, or use `idle: { mode: off }`"),
            );
        }

        let mut env = Vec::new();
        let env_origin = origin("env");
        for (k, v, m) in eff.text_map("env") {
            let p = format!("{env_origin}.{k}");
            if !is_env_name(&k) {
                add(
                    &mut self.sink,
                    err(
                        format!("`{k}` is not a valid environment variable name"),
                        &p,
                        m,
                    )
                    .hint("use letters, digits and underscores, not starting with a digit"),
                );
            }
            if is_template(&v)
                && let Err(e) = self.templates.compile(&v)
            {
                // Reported here; the value is skipped when rendering.
                self.sink
                    .add(err(format!("template error: {e}"), &p, m).address(address.to_string()));
            }
            env.push((k, v, p, m));
        }
        let mut metadata = Vec::new();
        let metadata_origin = origin("metadata");
        for (k, v, m) in eff.text_map("metadata") {
            let p = format!("{metadata_origin}.{k}");
            if k.starts_with("flotilla_") || k.starts_with("fly_") {
                add(
                    &mut self.sink,
                    err(format!("metadata key `{k}` is reserved"), &p, m).hint(
                        "keys starting with `flotilla_` or `fly_` are set by flotilla and Fly",
                    ),
                );
            }
            if is_template(&v)
                && let Err(e) = self.templates.compile(&v)
            {
                self.sink
                    .add(err(format!("template error: {e}"), &p, m).address(address.to_string()));
            }
            metadata.push((k, v, p, m));
        }
        let mut secrets = Vec::new();
        let secrets_origin = origin("secrets");
        for (name, src, m) in eff.secrets() {
            let p = format!("{secrets_origin}.{name}");
            if !is_env_name(&name) {
                add(
                    &mut self.sink,
                    err(format!("`{name}` is not a valid secret name"), &p, m).hint(
                        "secrets become environment variables: use letters, digits and underscores",
                    ),
                );
            }
            if let Some(e) = env.iter().find(|e| e.0 == name) {
                add(
                    &mut self.sink,
                    err(
                        format!("`{name}` is both a secret and an env variable"),
                        &p,
                        m,
                    )
                    .hint(format!("remove it from {}", e.2)),
                );
            }
            secrets.push((name, src, p, m));
        }

        let volume = if eff.get("volume").is_some() {
            let name = eff
                .str("volume.name")
                .map(|v| v.0)
                .unwrap_or_else(|| DEFAULT_VOLUME.to_string());
            if let Some(problem) = platform::volume_name_problem(&name) {
                add(
                    &mut self.sink,
                    err(format!("volume name `{name}` {problem}"), &origin("volume.name"), mark("volume.name"))
                        .hint("Fly volume names take lowercase letters, digits and underscores, up to 30 characters (e.g. `my_data`)"),
                );
            }
            let size_gb = eff
                .u32("volume.size_gb")
                .map(|v| v.0)
                .unwrap_or(platform::VOLUME_MIN_GB);
            if !(platform::VOLUME_MIN_GB..=platform::VOLUME_MAX_GB).contains(&size_gb) {
                add(
                    &mut self.sink,
                    err(
                        format!("volume size {size_gb} GB is outside Fly's 1–500 GB"),
                        &origin("volume.size_gb"),
                        mark("volume.size_gb"),
                    ),
                );
            }
            let retention = eff
                .u32("volume.snapshot_retention")
                .map(|v| v.0)
                .unwrap_or(platform::SNAPSHOT_RETENTION_DEFAULT);
            if !(platform::SNAPSHOT_RETENTION_MIN..=platform::SNAPSHOT_RETENTION_MAX)
                .contains(&retention)
            {
                add(
                    &mut self.sink,
                    err(
                        format!("snapshot retention {retention} days is outside Fly's 1–60"),
                        &origin("volume.snapshot_retention"),
                        mark("volume.snapshot_retention"),
                    ),
                );
            }
            let mount = eff.str("volume.mount").map(|v| v.0);
            match &mount {
                None => add(
                    &mut self.sink,
                    err(
                        "the volume has no mount path",
                        &origin("volume"),
                        mark("volume"),
                    )
                    .hint("add `mount: /data` (an absolute path inside the Machine)"),
                ),
                Some(p) if !p.starts_with('/') || p == "/" => add(
                    &mut self.sink,
                    err(
                        format!("mount path `{p}` must be an absolute directory other than /"),
                        &origin("volume.mount"),
                        mark("volume.mount"),
                    ),
                ),
                Some(_) => {}
            }
            Some(VolumeSettings {
                name,
                size_gb,
                mount: mount.unwrap_or_default(),
                snapshot_retention: retention,
                auto_backup: eff.bool("volume.auto_backup").unwrap_or(true),
                encrypted: eff.bool("volume.encrypted").unwrap_or(true),
            })
        } else {
            None
        };

        if !ok {
            return None;
        }
        Some(Resolved {
            image: image?,
            region: region?.0,
            fallback_regions: fallback
                .into_iter()
                .map(|f| f.0)
                .filter(|r| platform::region(r).is_some())
                .collect(),
            preset: preset?,
            memory_mb,
            count,
            idle,
            services,
            checks: eff.checks(),
            restart: eff.str("restart").map(|v| v.0),
            env,
            metadata,
            secrets,
            volume,
            snapshot_before_destroy: eff.bool("backups.snapshot_before_destroy").unwrap_or(true),
            prevent_destroy: eff.bool("lifecycle.prevent_destroy").unwrap_or(false),
            usage: eff.usage(),
        })
    }
}

fn larger_preset_hint(p: &Preset, memory_mb: u32) -> String {
    let fit = platform::PRESETS
        .iter()
        .filter(|q| {
            q.cpu_kind == p.cpu_kind
                && q.min_memory_mb() <= memory_mb
                && memory_mb <= q.max_memory_mb()
        })
        .map(|q| q.name)
        .collect::<Vec<_>>();
    if fit.is_empty() {
        format!(
            "{} takes {}–{} MB",
            p.name,
            p.min_memory_mb(),
            p.max_memory_mb()
        )
    } else {
        format!("{memory_mb} MB fits {}", fit.join(", "))
    }
}

/// Per-app bookkeeping while expanding: who owns which names.
#[derive(Default)]
struct AppBook {
    /// app name → (document path of its owner, whether it is a shared app)
    owners: HashMap<String, (String, bool)>,
    /// (app, machine name) → document path
    machines: HashMap<(String, String), String>,
    /// (app, volume name) → document path
    volumes: HashMap<(String, String), String>,
    /// app → secret name → (source, path, address)
    secrets: BTreeMap<String, BTreeMap<String, (SecretSource, String, Address)>>,
}

impl<'a> Expander<'a> {
    fn render(
        &mut self,
        src: &str,
        ctx: &Ctx,
        path: &str,
        mark: Mark,
        address: &str,
    ) -> Option<String> {
        match self.templates.render(src, ctx) {
            Ok(s) => Some(s),
            Err(Some(e)) => {
                self.sink.add(
                    err(format!("template error: {e}"), path, mark).address(address.to_string()),
                );
                None
            }
            // Does not compile: reported once already.
            Err(None) => None,
        }
    }

    fn entry_str(&self, entry: &Node, key: &str) -> Option<(String, Mark)> {
        entry
            .get(key)
            .and_then(|n| n.as_str().map(|s| (s.to_string(), n.mark)))
    }

    fn read_tenants(&mut self) -> Vec<TenantDecl> {
        let mut out = Vec::new();
        let Some(entries) = self.root.get("tenants").and_then(Node::as_seq) else {
            return out;
        };
        let mut names: HashMap<String, String> = HashMap::new();
        // Tenants that set nothing but a name and a tier share the settings of that tier:
        // resolve each tier once (large explicit lists are mostly such entries).
        let mut by_tier: HashMap<Option<String>, CachedSettings> = HashMap::new();
        for (idx, entry) in entries.iter().enumerate() {
            if entry.as_map().is_none() {
                continue; // reported by the schema check
            }
            let path = format!("tenants[{idx}]");
            let tier = self.entry_str(entry, "tier");
            if let Some(gen_node) = entry.get("generate") {
                let tier = gen_node
                    .get("tier")
                    .and_then(|n| n.as_str().map(|s| (s.to_string(), n.mark)))
                    .or(tier);
                let layers =
                    self.layers(entry, &path, tier.as_ref().map(|(t, m)| (t.as_str(), *m)));
                let eff = Effective::new(layers);
                let what = format!("tenants generated by {path}");
                let Some(settings) = self.resolve(&eff, &what, &format!("{path}.generate")) else {
                    continue;
                };
                let settings = Rc::new(settings);
                let count = gen_node.get("count").and_then(Node::as_i64).unwrap_or(0);
                if !(1..=crate::spec::schema::MAX_GENERATED).contains(&count) {
                    continue; // reported by the schema check
                }
                let count = count as u64;
                let start = gen_node
                    .get("start")
                    .and_then(Node::as_i64)
                    .unwrap_or(1)
                    .max(0) as u64;
                let Some((template, tmark)) = self.entry_str(gen_node, "name") else {
                    if gen_node.get("name").is_none() {
                        self.sink.add(
                            err(
                                "a generator needs a name template",
                                &format!("{path}.generate"),
                                gen_node.mark,
                            )
                            .hint("e.g. `name: \"user-{{ i }}\"`"),
                        );
                    }
                    continue;
                };
                let npath = format!("{path}.generate.name");
                for i in start..start.saturating_add(count) {
                    let ctx = context! { org => &self.org, i => i, tier => tier.as_ref().map(|t| t.0.clone()) };
                    let Some(name) =
                        self.render(&template, &ctx, &npath, tmark, &format!("{path}.generate"))
                    else {
                        break;
                    };
                    if !self.check_tenant_name(&name, &npath, tmark, &mut names) {
                        break;
                    }
                    out.push(TenantDecl {
                        name,
                        tier: tier.as_ref().map(|t| t.0.clone()),
                        path: path.clone(),
                        i: Some(i),
                        settings: Rc::clone(&settings),
                    });
                }
            } else {
                let Some((name, nmark)) = self.entry_str(entry, "name") else {
                    if entry.get("name").is_none() {
                        self.sink.add(
                            err("a tenant needs a `name` (or a `generate:` block)", &path, entry.mark)
                                .hint("e.g. `- { name: alice }` or `- generate: { count: 10, name: \"user-{{ i }}\" }`"),
                        );
                    }
                    continue;
                };
                if !self.check_tenant_name(&name, &format!("{path}.name"), nmark, &mut names) {
                    continue;
                }
                let plain = entry.as_map().is_some_and(|m| {
                    m.iter()
                        .all(|(k, _)| matches!(k.scalar_text(), Some("name" | "tier")))
                });
                let tier_name = tier.as_ref().map(|t| t.0.clone());
                let settings = match by_tier.get(&tier_name).filter(|_| plain) {
                    Some((settings, keys)) => {
                        let (settings, keys) = (settings.clone(), keys.clone());
                        self.sink.replay(&keys);
                        settings
                    }
                    None => {
                        let pos = self.sink.position();
                        let layers =
                            self.layers(entry, &path, tier.as_ref().map(|(t, m)| (t.as_str(), *m)));
                        let eff = Effective::new(layers);
                        let settings = self
                            .resolve(&eff, &format!("tenant `{name}`"), &format!("tenant.{name}"))
                            .map(Rc::new);
                        if plain {
                            by_tier.insert(
                                tier_name.clone(),
                                (settings.clone(), self.sink.keys_since(pos)),
                            );
                        }
                        settings
                    }
                };
                let Some(settings) = settings else { continue };
                out.push(TenantDecl {
                    name,
                    tier: tier_name,
                    path,
                    i: None,
                    settings,
                });
            }
        }
        out
    }

    fn check_tenant_name(
        &mut self,
        name: &str,
        path: &str,
        mark: Mark,
        names: &mut HashMap<String, String>,
    ) -> bool {
        if let Some(problem) = tenant_name_problem(name) {
            self.sink
                .add(err(format!("tenant name `{name}` {problem}"), path, mark));
            return false;
        }
        if let Some(first) = names.get(name) {
            self.sink.add(
                err(format!("duplicate tenant name `{name}` (first declared at {first})"), path, mark)
                    .hint("tenant names must be unique; rename one, or adjust the generator's name template or start"),
            );
            return false;
        }
        names.insert(name.to_string(), path.to_string());
        true
    }

    fn read_apps(&mut self) -> Vec<AppDecl> {
        let mut out = Vec::new();
        let Some(entries) = self.root.get("apps").and_then(Node::as_seq) else {
            return out;
        };
        for (idx, entry) in entries.iter().enumerate() {
            if entry.as_map().is_none() {
                continue;
            }
            let path = format!("apps[{idx}]");
            let Some((name, nmark)) = self.entry_str(entry, "name") else {
                if entry.get("name").is_none() {
                    self.sink
                        .add(err("a shared app needs a `name`", &path, entry.mark));
                }
                continue;
            };
            if let Some(problem) = platform::app_name_problem(&name) {
                self.sink.add(err(
                    format!("app name `{name}` {problem}"),
                    &format!("{path}.name"),
                    nmark,
                ));
                continue;
            }
            if entry.get("machines").is_some() && entry.get("count").is_some() {
                self.sink.add(err(
                    "set `machines` or `count`, not both",
                    &path,
                    entry.mark,
                ));
            }
            // Shared apps take their entry and the tier it names, not the tenant defaults.
            let mut layers = Vec::new();
            if let Some((t, m)) = self.entry_str(entry, "tier") {
                match self.tiers.get(&t) {
                    Some(node) if node.as_map().is_some() => layers.push(Layer {
                        path: format!("tiers.{t}"),
                        node,
                    }),
                    Some(_) => {}
                    None => {
                        let hint = suggest(&t, self.tiers.keys().map(String::as_str), "tiers");
                        self.sink.add(
                            err(format!("unknown tier `{t}`"), &format!("{path}.tier"), m)
                                .hint(hint),
                        );
                    }
                }
            }
            layers.push(Layer {
                path: path.clone(),
                node: entry,
            });
            let mut eff = Effective::new(layers);
            if let Some(m) = entry.get("machines")
                && let crate::spec::yaml::Value::Map(entries) = &mut eff.merged.value
            {
                let key = Node {
                    mark: m.mark,
                    value: crate::spec::yaml::Value::Scalar {
                        text: "count".into(),
                        plain: true,
                    },
                };
                entries.retain(|(k, _)| k.scalar_text() != Some("count"));
                entries.push((key, m.clone()));
            }
            let Some(settings) =
                self.resolve(&eff, &format!("app `{name}`"), &format!("app.{name}"))
            else {
                continue;
            };
            let role = self
                .entry_str(entry, "role")
                .map(|r| r.0)
                .unwrap_or_else(|| "shared".to_string());
            let machine_name = match self.entry_str(entry, "machine_name") {
                Some((s, m)) => (s, m, format!("{path}.machine_name")),
                None => (
                    DEFAULT_SHARED_MACHINE_NAME.to_string(),
                    nmark,
                    format!("{path}.machine_name (default)"),
                ),
            };
            out.push(AppDecl {
                name,
                path,
                mark: nmark,
                role,
                machine_name,
                settings: Rc::new(settings),
            });
        }
        out
    }

    fn claim_app(
        &mut self,
        book: &mut AppBook,
        app: &str,
        owner: &str,
        shared: bool,
        path: &str,
        mark: Mark,
    ) -> bool {
        if let Some((first, first_shared)) = book.owners.get(app) {
            let hint = if shared || *first_shared {
                "a shared app's name must not be produced by naming.app for a tenant unless tenants are meant to live in it".to_string()
            } else {
                "include `{{ tenant.name }}` in naming.app, or declare the app under `apps:` to host several tenants in one app".to_string()
            };
            self.sink.add(
                err(
                    format!("{owner} expands to app name `{app}`, already used by {first}"),
                    path,
                    mark,
                )
                .hint(hint),
            );
            return false;
        }
        book.owners
            .insert(app.to_string(), (owner.to_string(), shared));
        true
    }

    /// Expands the whole spec into resources.
    pub fn expand(&mut self) -> Desired {
        if self.org.is_empty() {
            // Names derive from the org; its absence is reported by the caller.
            return Desired::default();
        }
        if let Some(n) = self.root.get("fleet")
            && let Some(problem) = tenant_name_problem(&self.fleet)
        {
            self.sink.add(
                err(
                    format!("fleet name `{}` {problem}", self.fleet),
                    "fleet",
                    n.mark,
                )
                .hint("a fleet names the set of resources this spec manages, e.g. `fleet: jarvis`"),
            );
            return Desired::default();
        }
        let naming = self.naming();
        let tenants = self.read_tenants();
        let apps = self.read_apps();
        let mut book = AppBook::default();
        // Sized up front: a fleet's resources are its largest allocation, and growing it
        // would copy it and hold two copies at once.
        let per_entry = |s: &Resolved| {
            let per_machine = if s.volume.is_some() { 3 } else { 1 };
            1 + s.secrets.len() + s.count as usize * per_machine
        };
        let capacity = tenants
            .iter()
            .map(|t| per_entry(&t.settings))
            .sum::<usize>()
            + apps.iter().map(|a| per_entry(&a.settings)).sum::<usize>();
        let mut resources: Vec<Resource> = Vec::with_capacity(capacity);
        let mut infos = Vec::new();

        let shared: HashMap<String, usize> = apps
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), i))
            .collect();
        for a in &apps {
            self.claim_app(
                &mut book,
                &a.name,
                &format!("shared app `{}` ({})", a.name, a.path),
                true,
                &format!("{}.name", a.path),
                a.mark,
            );
        }
        for a in &apps {
            let owner = Owner::SharedApp(&a.name);
            resources.push(Resource {
                address: Address::app(&owner),
                tenant: None,
                app: a.name.clone(),
                prevent_destroy: a.settings.prevent_destroy,
                id: None,
                usage: Some(a.settings.usage.clone()),
                spec: Spec::App(AppSpec {
                    name: a.name.clone(),
                    org: self.org.clone(),
                    shared: true,
                }),
            });
            let base = context! { org => &self.org, app => &a.name, role => &a.role };
            let s = Rc::clone(&a.settings);
            let mname = a.machine_name.clone();
            self.expand_machines(
                &mut resources,
                &mut book,
                &owner,
                &a.name,
                None,
                &a.role,
                &s,
                &base,
                &mname,
                &mname,
                &a.path,
            );
        }

        for (pos, t) in tenants.iter().enumerate() {
            let tenant_ctx = context! { name => &t.name, tier => &t.tier, index => pos };
            let mut base = context! { org => &self.org, tenant => tenant_ctx };
            if let Some(i) = t.i {
                base = context! { i => i, ..base };
            }
            let address = format!("tenant.{}.app", t.name);
            let Some(app) =
                self.render(&naming.app.0, &base, &naming.app.2, naming.app.1, &address)
            else {
                continue;
            };
            if let Some(problem) = platform::app_name_problem(&app) {
                self.sink.add(
                    err(
                        format!("app name `{app}` for tenant `{}` {problem}", t.name),
                        &naming.app.2,
                        naming.app.1,
                    )
                    .address(address)
                    .hint("Fly app names take lowercase letters, digits and dashes"),
                );
                continue;
            }
            let owner = Owner::Tenant(&t.name);
            let hosted = shared.contains_key(&app);
            if !hosted {
                if !self.claim_app(
                    &mut book,
                    &app,
                    &format!("tenant `{}` ({})", t.name, t.path),
                    false,
                    &naming.app.2,
                    naming.app.1,
                ) {
                    continue;
                }
                resources.push(Resource {
                    address: Address::app(&owner),
                    tenant: Some(t.name.clone()),
                    app: app.clone(),
                    prevent_destroy: t.settings.prevent_destroy,
                    id: None,
                    usage: Some(t.settings.usage.clone()),
                    spec: Spec::App(AppSpec {
                        name: app.clone(),
                        org: self.org.clone(),
                        shared: false,
                    }),
                });
            }
            infos.push(TenantInfo {
                name: t.name.clone(),
                tier: t.tier.clone(),
                app: app.clone(),
            });
            let base = context! { app => &app, region => &t.settings.region, ..base };
            let s = Rc::clone(&t.settings);
            self.expand_machines(
                &mut resources,
                &mut book,
                &owner,
                &app,
                Some(&t.name),
                "tenant",
                &s,
                &base,
                &naming.machine,
                &naming.volume,
                &t.path,
            );
        }

        // Secrets: one resource per app and name; Machines see all of their app's secrets.
        let mut app_secret_names: HashMap<String, Vec<String>> = HashMap::new();
        let tenant_of_app: HashMap<&str, &str> = infos
            .iter()
            .filter(|i| !shared.contains_key(&i.app))
            .map(|i| (i.app.as_str(), i.name.as_str()))
            .collect();
        for (app, secrets) in &book.secrets {
            let owner_tenant = tenant_of_app.get(app.as_str()).map(|t| t.to_string());
            for (name, (source, _path, address)) in secrets {
                resources.push(Resource {
                    address: address.clone(),
                    tenant: owner_tenant.clone(),
                    app: app.clone(),
                    prevent_destroy: false,
                    id: None,
                    usage: None,
                    spec: Spec::Secret(SecretSpec {
                        name: name.clone(),
                        source: source.clone(),
                        digest: None,
                        fingerprint: None,
                    }),
                });
            }
            app_secret_names.insert(app.clone(), secrets.keys().cloned().collect());
        }
        for r in &mut resources {
            if let Spec::Machine(m) = &mut r.spec
                && let Some(names) = app_secret_names.get(&r.app)
            {
                m.secrets = names.clone();
            }
        }

        let mut app_names: Vec<String> = book.owners.keys().cloned().collect();
        app_names.sort();
        let default_usage = self
            .root
            .get("defaults")
            .filter(|d| d.as_map().is_some())
            .map(|d| {
                Effective::new(vec![Layer {
                    path: "defaults".into(),
                    node: d,
                }])
                .usage()
            })
            .unwrap_or_default();
        Desired {
            org: self.org.clone(),
            fleet: self.fleet.clone(),
            resources: ResourceSet::new(resources),
            default_usage,
            tenants: infos,
            apps: app_names,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn expand_machines(
        &mut self,
        out: &mut Vec<Resource>,
        book: &mut AppBook,
        owner: &Owner<'_>,
        app: &str,
        tenant: Option<&str>,
        role: &str,
        s: &Resolved,
        base: &Ctx,
        machine_tpl: &(String, Mark, String),
        volume_tpl: &(String, Mark, String),
        entry_path: &str,
    ) {
        let owner_desc = match tenant {
            Some(t) => format!("tenant `{t}`"),
            None => format!("app `{app}`"),
        };
        // Secrets are per app: tenants hosted in a shared app add theirs to the app's.
        for (name, source, path, mark) in &s.secrets {
            let address = Address::secret(&self.secret_owner(owner, app, tenant.is_some()), name);
            let entry = book.secrets.entry(app.to_string()).or_default();
            match entry.get(name) {
                Some((other, other_path, _)) if other != source => {
                    let msg = format!(
                        "secret `{name}` of app `{app}` has two different sources ({other_path} and {path})"
                    );
                    self.sink.add(
                        err(msg, path, *mark).hint(
                            "a secret belongs to the whole app; give both the same reference",
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    entry.insert(name.clone(), (source.clone(), path.clone(), address));
                }
            }
        }
        let tenant_meta = tenant.map(str::to_string);
        if book.machines.len() + s.count as usize > MAX_MACHINES {
            self.sink.add(
                err(
                    format!("the spec declares more than {MAX_MACHINES} Machines"),
                    entry_path,
                    Mark::default(),
                )
                .hint("split the fleet into several specs"),
            );
            return;
        }
        for index in 0..s.count {
            let machine_address = Address::machine(owner, index);
            let addr = machine_address.to_string();
            let vol_logical = s
                .volume
                .as_ref()
                .map(|v| v.name.clone())
                .unwrap_or_default();
            let ctx = context! { index => index, count => s.count, volume => context! { name => &vol_logical }, ..base.clone() };
            let Some(machine_name) =
                self.render(&machine_tpl.0, &ctx, &machine_tpl.2, machine_tpl.1, &addr)
            else {
                return;
            };
            if let Some(problem) = platform::machine_name_problem(&machine_name) {
                self.sink.add(
                    err(
                        format!("machine name `{machine_name}` {problem}"),
                        &machine_tpl.2,
                        machine_tpl.1,
                    )
                    .address(addr.clone()),
                );
                return;
            }
            let key = (app.to_string(), machine_name.clone());
            if let Some(first) = book.machines.get(&key) {
                self.sink.add(
                    err(format!("{owner_desc} expands to machine name `{machine_name}` in app `{app}`, already used by {first}"), &machine_tpl.2, machine_tpl.1)
                        .address(addr.clone())
                        .hint("include `{{ tenant.name }}` and `{{ index }}` in the machine name template"),
                );
                return;
            }
            book.machines
                .insert(key, format!("{owner_desc} ({entry_path})"));

            let mut env = BTreeMap::new();
            for (k, v, p, m) in &s.env {
                let Some(val) = self.render(v, &ctx, p, *m, &addr) else {
                    continue;
                };
                env.insert(k.clone(), val);
            }
            let mut metadata = BTreeMap::new();
            for (k, v, p, m) in &s.metadata {
                let Some(val) = self.render(v, &ctx, p, *m, &addr) else {
                    continue;
                };
                metadata.insert(k.clone(), val);
            }
            metadata.insert(META_MANAGED.to_string(), "true".to_string());
            metadata.insert(crate::resource::META_FLEET.to_string(), self.fleet.clone());
            if s.prevent_destroy {
                metadata.insert(
                    crate::resource::META_PROTECT.to_string(),
                    "true".to_string(),
                );
            }
            if let Some(t) = &tenant_meta {
                metadata.insert(META_TENANT.to_string(), t.clone());
            }
            metadata.insert(META_ROLE.to_string(), role.to_string());
            metadata.insert(META_INDEX.to_string(), index.to_string());

            let mut mounts = Vec::new();
            if let Some(v) = &s.volume {
                let vol_address = Address::volume(owner, &v.name, index);
                let Some(vol_name) = self.render(
                    &volume_tpl.0,
                    &ctx,
                    &volume_tpl.2,
                    volume_tpl.1,
                    &vol_address.to_string(),
                ) else {
                    return;
                };
                if let Some(problem) = platform::volume_name_problem(&vol_name) {
                    self.sink.add(
                        err(format!("volume name `{vol_name}` {problem}"), &volume_tpl.2, volume_tpl.1)
                            .address(vol_address.to_string())
                            .hint("use the `underscore` filter for names with dashes: `{{ tenant.name | underscore }}`"),
                    );
                    return;
                }
                let vkey = (app.to_string(), vol_name.clone());
                if let Some(first) = book.volumes.get(&vkey) {
                    self.sink.add(
                        err(format!("{owner_desc} expands to volume name `{vol_name}` in app `{app}`, already used by {first}"), &volume_tpl.2, volume_tpl.1)
                            .address(vol_address.to_string())
                            .hint("volume names must be unique within an app: include `{{ tenant.name | underscore }}` and `{{ index }}` in naming.volume"),
                    );
                    return;
                }
                book.volumes
                    .insert(vkey, format!("{owner_desc} ({entry_path})"));
                out.push(Resource {
                    address: vol_address.clone(),
                    tenant: tenant.map(str::to_string),
                    app: app.to_string(),
                    prevent_destroy: s.prevent_destroy,
                    id: None,
                    usage: Some(s.usage.clone()),
                    spec: Spec::Volume(VolumeSpec {
                        name: vol_name.clone(),
                        region: s.region.clone(),
                        fallback_regions: s.fallback_regions.clone(),
                        size_gb: v.size_gb,
                        encrypted: v.encrypted,
                        machine: Some(machine_address.clone()),
                        attached_machine_id: None,
                    }),
                });
                out.push(Resource {
                    address: Address::backup(owner, &v.name, index),
                    tenant: tenant.map(str::to_string),
                    app: app.to_string(),
                    prevent_destroy: s.prevent_destroy,
                    id: None,
                    usage: Some(s.usage.clone()),
                    spec: Spec::BackupPolicy(BackupSpec {
                        volume: vol_address.clone(),
                        snapshot_retention: v.snapshot_retention,
                        auto_backup: v.auto_backup,
                        snapshot_before_destroy: s.snapshot_before_destroy,
                    }),
                });
                mounts.push(Mount {
                    volume: vol_address,
                    volume_name: vol_name,
                    path: v.mount.clone(),
                });
            }

            out.push(Resource {
                address: machine_address,
                tenant: tenant.map(str::to_string),
                app: app.to_string(),
                prevent_destroy: s.prevent_destroy,
                id: None,
                usage: Some(s.usage.clone()),
                spec: Spec::Machine(Box::new(MachineSpec {
                    name: machine_name,
                    region: s.region.clone(),
                    fallback_regions: s.fallback_regions.clone(),
                    image: s.image.clone(),
                    size: s.preset.name.to_string(),
                    guest: Guest {
                        cpu_kind: s.preset.cpu_kind,
                        cpus: s.preset.cpus,
                        memory_mb: s.memory_mb,
                    },
                    env,
                    services: s.services.clone(),
                    checks: s.checks.clone(),
                    metadata,
                    mounts,
                    idle: s.idle.clone(),
                    restart: s.restart.clone(),
                    secrets: Vec::new(),
                    role: role.to_string(),
                    index,
                })),
            });
        }
    }

    /// Secrets of an app-per-tenant belong to the tenant; in a shared app, to the app.
    fn secret_owner<'o>(&self, owner: &Owner<'o>, app: &'o str, is_tenant: bool) -> Owner<'o> {
        match owner {
            Owner::Tenant(t) if is_tenant && !self.is_shared_app(app) => Owner::Tenant(t),
            _ => Owner::SharedApp(app),
        }
    }

    fn is_shared_app(&self, app: &str) -> bool {
        self.root
            .get("apps")
            .and_then(Node::as_seq)
            .is_some_and(|apps| {
                apps.iter()
                    .any(|a| a.get("name").and_then(Node::as_str) == Some(app))
            })
    }
}
