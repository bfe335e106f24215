//! Expansion: a checked spec tree → the flat, validated desired state.
//!
//! For every tenant (explicit or generated) and every shared app, the layers
//! `defaults < tier < entry` are merged, resolved once per distinct layer stack
//! ([`crate::spec::resolve`]), and expanded into resources with stable addresses: names
//! rendered from the naming templates and checked against Fly's rules and each other,
//! secrets gathered per app, ownership metadata added. All problems are collected.

use foldhash::{HashMap, HashMapExt, HashSet};
use std::collections::BTreeMap;
use std::rc::Rc;

use minijinja::{Value as Ctx, context};

use crate::diag::{Diagnostic, Diagnostics, Mark, suggest};
use crate::platform;
use crate::resource::{
    Address, AppSpec, BackupSpec, Desired, Guest, META_FLEET, META_INDEX, META_MANAGED,
    META_PROTECT, META_ROLE, META_TENANT, MachineSpec, Mount, Owner, Resource, ResourceSet,
    RestartPolicy, SecretSource, SecretSpec, Spec, TenantInfo, VolumeSpec,
};
use crate::spec::decl::{self, Setting, Text};
pub use crate::spec::decl::{
    DEFAULT_APP_NAME, DEFAULT_MACHINE_NAME, DEFAULT_SHARED_MACHINE_NAME, DEFAULT_VOLUME_NAME,
};
use crate::spec::resolve::{Resolved, VolumeSettings, resolve};
use crate::spec::settings::{Effective, Layer};
use crate::spec::templates::Templates;
use crate::spec::yaml::{self, Node, Value};

mod network;

/// The most Machines one spec may declare (a bound on work and memory).
pub const MAX_MACHINES: usize = 200_000;

/// The most metadata keys flotilla writes on a Machine of its own (`system_metadata`).
const SYSTEM_METADATA_KEYS: usize = 8;

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
    machine_name: NameTemplate,
    settings: Rc<Resolved>,
}

/// A name template with where it was written (a built-in default has no mark).
#[derive(Clone)]
struct NameTemplate {
    source: String,
    mark: Mark,
    /// The document path diagnostics name (`naming.app`, `apps[0].machine_name (default)`).
    path: String,
}

struct Naming {
    app: NameTemplate,
    machine: NameTemplate,
    volume: NameTemplate,
}

/// Tenants' names seen so far → where each was declared.
type NameBook = HashMap<String, String>;

/// Per-app bookkeeping while expanding: who owns which names.
#[derive(Default)]
struct AppBook {
    /// app name → (document path of its owner, whether it is a shared app)
    owners: HashMap<String, (String, bool)>,
    /// (app, machine name) → document path
    machines: HashMap<(String, String), String>,
    /// (app, volume name) → document path
    volumes: HashMap<(String, String), String>,
    /// app → its secrets by name
    secrets: HashMap<String, AppSecrets>,
}

/// An app's secrets, sorted by name: (name, (source, path, address)). A sorted list
/// rather than a map: an app has a few secrets, and a map's node per app (some 1.5 KB)
/// was the largest part of expansion's working memory.
type AppSecrets = Vec<(String, (SecretSource, String, Address))>;

/// What expansion has produced so far.
#[derive(Default)]
struct Output {
    book: AppBook,
    resources: Vec<Resource>,
    infos: Vec<TenantInfo>,
    /// Custom domains declared so far, fleet-wide.
    hostnames: network::HostBook,
    /// `volume.restore_from` of new volumes, resolved once every tenant is expanded.
    restores: Vec<PendingRestore>,
}

/// A volume's `volume.restore_from`, rendered; the source tenant is looked up at the end.
struct PendingRestore {
    /// The volume's position in `Output::resources`.
    at: usize,
    /// Its logical name and slot (the source's volume of the same slot is preferred).
    name: String,
    index: u32,
    tenant: String,
    snapshot: Option<String>,
    /// Where the tenant was written.
    path: String,
    mark: Mark,
}

/// The Machines of one tenant or shared app, and how to name them.
struct Group<'g> {
    owner: Owner<'g>,
    app: &'g str,
    tenant: Option<&'g str>,
    role: &'g str,
    settings: &'g Resolved,
    base: &'g Ctx,
    machine_tpl: &'g NameTemplate,
    volume_tpl: &'g NameTemplate,
    entry_path: &'g str,
    /// "tenant `alice`" or "app `router`".
    desc: String,
    /// The process group (name, cmd) these Machines are, when `process_groups` is set.
    process_group: Option<(&'g str, &'g [crate::spec::procs::Tpl])>,
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
pub(crate) fn err(msg: impl Into<String>, path: &str, mark: Mark) -> Diagnostic {
    let d = Diagnostic::error(msg).path(path);
    if mark.line == 0 { d } else { d.at(mark) }
}

/// The string of a setting as written, with its mark, owned.
fn owned(s: &Setting<Text>, node: &Node) -> Option<(String, Mark)> {
    s.located(node).map(|(v, m)| (v.to_string(), m))
}

impl<'a> Expander<'a> {
    pub fn new(root: &'a Node, file: &str) -> Self {
        let mut tiers = BTreeMap::new();
        if let Some(m) = decl::TIERS.get(root).and_then(Node::as_map) {
            for (k, v) in m {
                if let Some(name) = k.scalar_text() {
                    tiers.insert(name.to_string(), v);
                }
            }
        }
        Expander {
            sink: Sink::new(file),
            templates: Templates::new(),
            org: decl::ORG.get(root).unwrap_or("").to_string(),
            fleet: decl::FLEET.value(root).unwrap_or_default().to_string(),
            root,
            tiers,
        }
    }

    /// A naming template as written, or its declared default.
    fn name_template(&self, s: &Setting<Text>) -> NameTemplate {
        match owned(s, self.root) {
            Some((source, mark)) => NameTemplate {
                source,
                mark,
                path: s.key.to_string(),
            },
            None => {
                let default = s.default_value().unwrap_or_default();
                NameTemplate {
                    source: default.to_string(),
                    mark: Mark::default(),
                    path: format!("{} (default `{default}`)", s.key),
                }
            }
        }
    }

    fn naming(&mut self) -> Naming {
        let naming = Naming {
            app: self.name_template(&decl::NAMING_APP),
            machine: self.name_template(&decl::NAMING_MACHINE),
            volume: self.name_template(&decl::NAMING_VOLUME),
        };
        for t in [&naming.app, &naming.machine, &naming.volume] {
            if let Err(e) = self.templates.compile(&t.source) {
                self.sink
                    .add(err(format!("template error: {e}"), &t.path, t.mark));
            }
        }
        naming
    }

    /// The layer of a named tier; an unknown tier is reported.
    fn tier_layer(&mut self, tier: &str, mark: Mark, entry_path: &str) -> Option<Layer<'a>> {
        match self.tiers.get(tier) {
            Some(node) if node.as_map().is_some() => Some(Layer {
                path: format!("tiers.{tier}"),
                node,
            }),
            Some(_) => None,
            None => {
                let hint = suggest(tier, self.tiers.keys().map(String::as_str), "tiers");
                self.sink.add(
                    err(
                        format!("unknown tier `{tier}`"),
                        &format!("{entry_path}.tier"),
                        mark,
                    )
                    .hint(hint),
                );
                None
            }
        }
    }

    /// The layer stack for an entry: defaults, its tier (if any), the entry itself.
    fn layers(
        &mut self,
        entry: &'a Node,
        entry_path: &str,
        tier: Option<(&str, Mark)>,
    ) -> Vec<Layer<'a>> {
        let mut layers = Vec::new();
        if let Some(d) = decl::DEFAULTS
            .get(self.root)
            .filter(|d| d.as_map().is_some())
        {
            layers.push(Layer {
                path: decl::DEFAULTS.key.into(),
                node: d,
            });
        }
        if let Some((t, mark)) = tier
            && let Some(layer) = self.tier_layer(t, mark, entry_path)
        {
            layers.push(layer);
        }
        layers.push(Layer {
            path: entry_path.to_string(),
            node: entry,
        });
        layers
    }

    /// Validates the merged settings of one layer stack and reads them into types.
    fn resolve(&mut self, eff: &Effective<'_>, what: &str, address: &str) -> Option<Resolved> {
        resolve(&mut self.sink, &mut self.templates, eff, what, address)
    }

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
                let d =
                    err(format!("template error: {e}"), path, mark).address(address.to_string());
                self.sink
                    .add(crate::spec::templates::with_budget_hint(d, &e));
                None
            }
            // Does not compile: reported once already.
            Err(None) => None,
        }
    }

    /// A tenant's `backups.export` with its destination rendered and checked.
    fn export_config(
        &mut self,
        s: &crate::spec::resolve::Resolved,
        ctx: &Ctx,
        tenant: &str,
    ) -> Option<crate::resource::ExportConfig> {
        let e = s.export.as_ref()?;
        let (src, path, mark) = &e.to;
        let address = Address::app(&Owner::Tenant(tenant)).to_string();
        let to = self.render(src, ctx, path, *mark, &address)?;
        if let Some(problem) = crate::spec::resolve::export_target_problem(&to) {
            self.sink.add(
                err(format!("export destination `{to}` {problem}"), path, *mark).hint(
                    "write `s3://BUCKET/PREFIX`; set `endpoint` for another S3-compatible store",
                ),
            );
            return None;
        }
        Some(crate::resource::ExportConfig {
            to,
            endpoint: e.endpoint.clone(),
            credentials: e.credentials.iter().cloned().collect(),
            encryption_key: e.encryption_key.clone(),
            image: e.image.clone(),
            keep: e.keep,
        })
    }

    /// Renders a name template for the resource at `address`.
    fn render_name(&mut self, t: &NameTemplate, ctx: &Ctx, address: &str) -> Option<String> {
        self.render(&t.source, ctx, &t.path, t.mark, address)
    }

    fn read_tenants(&mut self) -> Vec<TenantDecl> {
        let mut out = Vec::new();
        let Some(entries) = decl::TENANTS.get(self.root).and_then(Node::as_seq) else {
            return out;
        };
        let mut names = NameBook::new();
        // Tenants that set nothing but a name and a tier share the settings of that tier:
        // resolve each tier once (large explicit lists are mostly such entries).
        let mut by_tier: HashMap<Option<String>, CachedSettings> = HashMap::new();
        for (idx, entry) in entries.iter().enumerate() {
            if entry.as_map().is_none() {
                continue; // reported by the schema check
            }
            let path = yaml::indexed("tenants", idx);
            match decl::GENERATE.get(entry) {
                Some(generator) => {
                    self.read_generator(entry, generator, path, &mut names, &mut out);
                }
                None => {
                    if let Some(t) = self.read_tenant(entry, path, &mut names, &mut by_tier) {
                        out.push(t);
                    }
                }
            }
        }
        out
    }

    /// The tenants of a `generate:` entry, named by its template for each `i`.
    fn read_generator(
        &mut self,
        entry: &'a Node,
        generator: &'a Node,
        path: String,
        names: &mut NameBook,
        out: &mut Vec<TenantDecl>,
    ) {
        let tier = decl::GENERATE_TIER
            .located(generator)
            .or(decl::ENTRY_TIER.located(entry));
        let layers = self.layers(entry, &path, tier);
        let eff = Effective::new(layers);
        let address = format!("{path}.generate");
        let what = format!("tenants generated by {path}");
        let Some(settings) = self.resolve(&eff, &what, &address) else {
            return;
        };
        let settings = Rc::new(settings);
        let count = decl::GENERATE_COUNT.get(generator).unwrap_or(0);
        let (lo, hi) = decl::GENERATE_COUNT.range();
        if !(lo..=hi).contains(&i64::from(count)) {
            return; // reported by the schema check
        }
        let start = match decl::GENERATE_START.node(generator).and_then(Node::as_i64) {
            Some(v) => v.max(0) as u64,
            None => u64::from(decl::GENERATE_START.default_value().unwrap_or_default()),
        };
        let Some((template, tmark)) = decl::GENERATE_NAME.located(generator) else {
            if decl::GENERATE_NAME.node(generator).is_none() {
                self.sink.add(
                    err(
                        "a generator needs a name template",
                        &address,
                        generator.mark,
                    )
                    .hint("e.g. `name: \"user-{{ i }}\"`"),
                );
            }
            return;
        };
        let npath = format!("{path}.generate.name");
        let tier_name = tier.map(|t| t.0.to_string());
        for i in start..start.saturating_add(u64::from(count)) {
            let ctx = context! { org => &self.org, i => i, tier => &tier_name };
            let Some(name) = self.render(template, &ctx, &npath, tmark, &address) else {
                break;
            };
            if !self.check_tenant_name(&name, &npath, tmark, names) {
                break;
            }
            out.push(TenantDecl {
                name,
                tier: tier_name.clone(),
                path: path.clone(),
                i: Some(i),
                settings: Rc::clone(&settings),
            });
        }
    }

    /// An explicit tenant entry. Entries with only a name and a tier share their tier's
    /// resolved settings.
    fn read_tenant(
        &mut self,
        entry: &'a Node,
        path: String,
        names: &mut NameBook,
        by_tier: &mut HashMap<Option<String>, CachedSettings>,
    ) -> Option<TenantDecl> {
        let tier = decl::ENTRY_TIER.located(entry);
        let Some((name, nmark)) = decl::ENTRY_NAME.located(entry) else {
            if decl::ENTRY_NAME.node(entry).is_none() {
                self.sink.add(
                    err("a tenant needs a `name` (or a `generate:` block)", &path, entry.mark)
                        .hint("e.g. `- { name: alice }` or `- generate: { count: 10, name: \"user-{{ i }}\" }`"),
                );
            }
            return None;
        };
        if !self.check_tenant_name(name, &yaml::concat(&[&path, ".name"]), nmark, names) {
            return None;
        }
        let plain = entry.as_map().is_some_and(|m| {
            m.iter().all(|(k, _)| {
                decl::TENANT_KEYS
                    .iter()
                    .any(|f| k.scalar_text() == Some(f.name))
            })
        });
        let tier_name = tier.map(|t| t.0.to_string());
        let settings = match by_tier.get(&tier_name).filter(|_| plain) {
            Some((settings, keys)) => {
                let (settings, keys) = (settings.clone(), keys.clone());
                self.sink.replay(&keys);
                settings
            }
            None => {
                let pos = self.sink.position();
                let layers = self.layers(entry, &path, tier);
                let eff = Effective::new(layers);
                let settings = self
                    .resolve(
                        &eff,
                        &format!("tenant `{name}`"),
                        &Owner::Tenant(name).to_string(),
                    )
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
        Some(TenantDecl {
            name: name.to_string(),
            tier: tier_name,
            path,
            i: None,
            settings: settings?,
        })
    }

    fn check_tenant_name(
        &mut self,
        name: &str,
        path: &str,
        mark: Mark,
        names: &mut NameBook,
    ) -> bool {
        if let Some(problem) = platform::TENANT_NAME.problem(name) {
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
        let Some(entries) = decl::APPS.get(self.root).and_then(Node::as_seq) else {
            return Vec::new();
        };
        entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.as_map().is_some())
            .filter_map(|(idx, entry)| self.read_app(entry, format!("apps[{idx}]")))
            .collect()
    }

    /// One shared app entry.
    fn read_app(&mut self, entry: &'a Node, path: String) -> Option<AppDecl> {
        let Some((name, nmark)) = owned(&decl::ENTRY_NAME, entry) else {
            if decl::ENTRY_NAME.node(entry).is_none() {
                self.sink
                    .add(err("a shared app needs a `name`", &path, entry.mark));
            }
            return None;
        };
        if let Some(problem) = platform::app_name_problem(&name) {
            self.sink.add(err(
                format!("app name `{name}` {problem}"),
                &format!("{path}.name"),
                nmark,
            ));
            return None;
        }
        if decl::APP_MACHINES.node(entry).is_some() && decl::COUNT.node(entry).is_some() {
            self.sink.add(err(
                format!(
                    "set `{}` or `{}`, not both",
                    decl::APP_MACHINES.key,
                    decl::COUNT.key
                ),
                &path,
                entry.mark,
            ));
        }
        let eff = self.app_settings(entry, &path);
        let settings = self.resolve(
            &eff,
            &format!("app `{name}`"),
            &Owner::SharedApp(&name).to_string(),
        )?;
        let role = decl::APP_ROLE.value(entry).unwrap_or_default().to_string();
        let machine_name = match owned(&decl::APP_MACHINE_NAME, entry) {
            Some((source, mark)) => NameTemplate {
                source,
                mark,
                path: format!("{path}.{}", decl::APP_MACHINE_NAME.key),
            },
            None => NameTemplate {
                source: decl::DEFAULT_SHARED_MACHINE_NAME.to_string(),
                mark: nmark,
                path: format!("{path}.{} (default)", decl::APP_MACHINE_NAME.key),
            },
        };
        Some(AppDecl {
            name,
            path,
            mark: nmark,
            role,
            machine_name,
            settings: Rc::new(settings),
        })
    }

    /// A shared app's effective settings: its tier and its entry, not the tenant defaults;
    /// `machines` stands for `count`.
    fn app_settings(&mut self, entry: &'a Node, path: &str) -> Effective<'a> {
        let mut layers = Vec::new();
        if let Some((t, m)) = decl::ENTRY_TIER.located(entry)
            && let Some(layer) = self.tier_layer(t, m, path)
        {
            layers.push(layer);
        }
        layers.push(Layer {
            path: path.to_string(),
            node: entry,
        });
        let mut eff = Effective::new(layers);
        if let Some(m) = decl::APP_MACHINES.node(entry)
            && let Value::Map(entries) = &mut eff.merged.value
        {
            let key = Node {
                mark: m.mark,
                value: Value::Scalar {
                    text: decl::COUNT.key.into(),
                    plain: true,
                },
            };
            entries.retain(|(k, _)| k.scalar_text() != Some(decl::COUNT.key));
            entries.push((key, m.clone()));
        }
        eff
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

    /// The fleet name follows the tenant-name rule.
    fn fleet_is_valid(&mut self) -> bool {
        let Some(n) = decl::FLEET.node(self.root) else {
            return true;
        };
        let Some(problem) = platform::TENANT_NAME.problem(&self.fleet) else {
            return true;
        };
        self.sink.add(
            err(
                format!("fleet name `{}` {problem}", self.fleet),
                decl::FLEET.key,
                n.mark,
            )
            .hint("a fleet names the set of resources this spec manages, e.g. `fleet: jarvis`"),
        );
        false
    }

    /// Expands the whole spec into resources.
    pub fn expand(&mut self) -> Desired {
        if self.org.is_empty() {
            // Names derive from the org; its absence is reported by the caller.
            return Desired::default();
        }
        if !self.fleet_is_valid() {
            return Desired::default();
        }
        let naming = self.naming();
        let tenants = self.read_tenants();
        let apps = self.read_apps();
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
        let mut out = Output {
            // At most the budget's worth (a volume and a backup policy per Machine).
            resources: Vec::with_capacity(capacity.min(4 * MAX_MACHINES)),
            infos: Vec::with_capacity(tenants.len()),
            ..Output::default()
        };
        // The name books too: grown one doubling at a time, each would rehash every
        // name some dozen times over a large fleet. Bounded by the Machine budget, which
        // expansion enforces as it goes.
        let machines = |s: &Resolved| s.count as usize;
        let volumes = |s: &Resolved| {
            if s.volume.is_some() {
                s.count as usize
            } else {
                0
            }
        };
        let settings = || {
            tenants
                .iter()
                .map(|t| &*t.settings)
                .chain(apps.iter().map(|a| &*a.settings))
        };
        out.book.owners.reserve(tenants.len() + apps.len());
        out.book
            .machines
            .reserve(settings().map(machines).sum::<usize>().min(MAX_MACHINES));
        out.book
            .volumes
            .reserve(settings().map(volumes).sum::<usize>().min(MAX_MACHINES));
        out.book.secrets.reserve(tenants.len() + apps.len());
        let shared: HashSet<&str> = apps.iter().map(|a| a.name.as_str()).collect();
        self.expand_shared_apps(&apps, &mut out);
        // Each tenant's resolved settings are dropped once expanded, so that the memory
        // they held is reused for the next tenants' resources.
        for (pos, t) in tenants.into_iter().enumerate() {
            self.expand_tenant(pos, &t, &naming, &shared, &mut out);
        }
        self.resolve_restores(&mut out);
        add_secrets(&mut out);
        self.finish(out)
    }

    /// Points each `volume.restore_from` at its source: the named tenant's volume of the
    /// same name and slot, else its first volume. An unknown tenant, or one without a
    /// volume, is an error at the setting.
    fn resolve_restores(&mut self, out: &mut Output) {
        for p in std::mem::take(&mut out.restores) {
            let owner = Owner::Tenant(&p.tenant);
            let same = Address::volume(&owner, &p.name, p.index);
            let source = out
                .resources
                .iter()
                .find(|r| r.address == same)
                .or_else(|| {
                    out.resources.iter().find(|r| {
                        r.kind() == crate::resource::Kind::Volume
                            && r.tenant.as_deref() == Some(p.tenant.as_str())
                    })
                })
                .map(|r| (r.address.clone(), r.app.clone()));
            let Some((volume, app)) = source else {
                let names = out.infos.iter().map(|t| t.name.as_str());
                let known = out.infos.iter().any(|t| t.name == p.tenant);
                let d = if known {
                    err(
                        format!("volume.restore_from: tenant `{}` has no volume", p.tenant),
                        &p.path,
                        p.mark,
                    )
                    .hint("name a tenant whose Machines have a volume")
                } else {
                    err(
                        format!("volume.restore_from: unknown tenant `{}`", p.tenant),
                        &p.path,
                        p.mark,
                    )
                    .hint(suggest(&p.tenant, names, "tenants"))
                };
                let addr = out.resources.get(p.at).map(|r| r.address.to_string());
                self.sink.add(match addr {
                    Some(a) => d.address(a),
                    None => d,
                });
                continue;
            };
            if let Some(Spec::Volume(v)) = out.resources.get_mut(p.at).map(|r| &mut r.spec) {
                v.restore_from = Some(crate::resource::RestoreFrom {
                    tenant: p.tenant,
                    app,
                    volume,
                    snapshot: p.snapshot,
                });
            }
        }
    }

    /// Shared apps first: they claim their names before any tenant.
    fn expand_shared_apps(&mut self, apps: &[AppDecl], out: &mut Output) {
        for a in apps {
            self.claim_app(
                &mut out.book,
                &a.name,
                &format!("shared app `{}` ({})", a.name, a.path),
                true,
                &format!("{}.name", a.path),
                a.mark,
            );
        }
        for a in apps {
            let owner = Owner::SharedApp(&a.name);
            out.resources.push(Resource {
                address: Address::app(&owner),
                tenant: None,
                app: a.name.clone(),
                prevent_destroy: a.settings.prevent_destroy,
                id: None,
                usage: Some(a.settings.usage.clone()),
                spec: Spec::App(Box::new(AppSpec {
                    name: a.name.clone(),
                    org: self.org.clone(),
                    shared: true,
                })),
            });
            let base = context! { org => &self.org, app => &a.name, role => &a.role };
            let desc = format!("app `{}` ({})", a.name, a.path);
            let who = network::NetOwner {
                owner,
                app: &a.name,
                tenant: None,
                desc: &desc,
            };
            self.expand_network(out, &who, &a.settings, &base);
            let group = Group {
                owner,
                app: &a.name,
                tenant: None,
                role: &a.role,
                settings: &a.settings,
                base: &base,
                machine_tpl: &a.machine_name,
                volume_tpl: &a.machine_name,
                entry_path: &a.path,
                desc: format!("app `{}`", a.name),
                process_group: None,
            };
            self.expand_machines(out, &group);
        }
    }

    /// One tenant: its app (unless it lives in a shared app) and its Machines.
    fn expand_tenant(
        &mut self,
        pos: usize,
        t: &TenantDecl,
        naming: &Naming,
        shared: &HashSet<&str>,
        out: &mut Output,
    ) {
        let tenant_ctx = context! { name => &t.name, tier => &t.tier, index => pos };
        let mut base = context! { org => &self.org, tenant => tenant_ctx };
        if let Some(i) = t.i {
            base = context! { i => i, ..base };
        }
        let Some(app) = self.tenant_app_name(t, &naming.app, &base) else {
            return;
        };
        let owner = Owner::Tenant(&t.name);
        let run = (out.resources.len(), out.restores.len());
        if !shared.contains(app.as_str()) {
            if !self.claim_app(
                &mut out.book,
                &app,
                &yaml::concat(&["tenant `", &t.name, "` (", &t.path, ")"]),
                false,
                &naming.app.path,
                naming.app.mark,
            ) {
                return;
            }
            out.resources.push(Resource {
                address: Address::app(&owner),
                tenant: Some(t.name.clone()),
                app: app.clone(),
                prevent_destroy: t.settings.prevent_destroy,
                id: None,
                usage: Some(t.settings.usage.clone()),
                spec: Spec::App(Box::new(AppSpec {
                    name: app.clone(),
                    org: self.org.clone(),
                    shared: false,
                })),
            });
        }
        let export = self.export_config(&t.settings, &base, &t.name);
        out.infos.push(TenantInfo {
            name: t.name.clone(),
            tier: t.tier.clone(),
            app: app.clone(),
            export,
        });
        let base = context! { app => &app, region => &t.settings.region, ..base };
        let desc = yaml::concat(&["tenant `", &t.name, "` (", &t.path, ")"]);
        let in_shared = shared.contains(app.as_str());
        let who = network::NetOwner {
            owner: if in_shared {
                Owner::SharedApp(&app)
            } else {
                owner
            },
            app: &app,
            tenant: (!in_shared).then_some(t.name.as_str()),
            desc: &desc,
        };
        self.expand_network(out, &who, &t.settings, &base);
        let group = Group {
            owner,
            app: &app,
            tenant: Some(&t.name),
            role: "tenant",
            settings: &t.settings,
            base: &base,
            machine_tpl: &naming.machine,
            volume_tpl: &naming.volume,
            entry_path: &t.path,
            desc: yaml::concat(&["tenant `", &t.name, "`"]),
            process_group: None,
        };
        self.expand_machines(out, &group);
        if !in_shared {
            close_tenant_run(out, run, &app, &t.name);
        }
    }

    /// The tenant's app name, rendered and checked against Fly's rule.
    fn tenant_app_name(
        &mut self,
        t: &TenantDecl,
        tpl: &NameTemplate,
        base: &Ctx,
    ) -> Option<String> {
        let address = Address::app(&Owner::Tenant(&t.name)).to_string();
        let app = self.render_name(tpl, base, &address)?;
        if let Some(problem) = platform::app_name_problem(&app) {
            self.sink.add(
                err(
                    format!("app name `{app}` for tenant `{}` {problem}", t.name),
                    &tpl.path,
                    tpl.mark,
                )
                .address(address)
                .hint("Fly app names take lowercase letters, digits and dashes"),
            );
            return None;
        }
        Some(app)
    }

    /// `org_plan:` and `org_plan_legacy:` (the checker has accepted their values).
    fn org_plan(&self) -> crate::platform::PlanChoice {
        crate::platform::PlanChoice {
            plan: decl::ORG_PLAN
                .value(self.root)
                .and_then(crate::platform::OrgPlan::from_code)
                .unwrap_or_default(),
            legacy: decl::ORG_PLAN_LEGACY.value(self.root).unwrap_or(false),
        }
    }

    /// The desired state, with the defaults' usage for observed resources without one.
    fn finish(&self, out: Output) -> Desired {
        let Output {
            book,
            resources,
            infos,
            ..
        } = out;
        let mut app_names: Vec<String> = book.owners.into_keys().collect();
        app_names.sort();
        // The rest of the book goes before the resource index is built.
        drop((book.machines, book.volumes, book.secrets));
        let default_usage = decl::DEFAULTS
            .get(self.root)
            .filter(|d| d.as_map().is_some())
            .map(|d| {
                Effective::new(vec![Layer {
                    path: decl::DEFAULTS.key.into(),
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
            org_plan: self.org_plan(),
            tenants: infos,
            apps: app_names,
            fingerprint_key: decl::FINGERPRINT_KEY
                .get(self.root)
                .and_then(crate::spec::settings::read_secret),
            removal_export: self.removal_export(),
        }
    }

    /// `defaults.backups.export`, its destination unrendered: what a tenant removed from
    /// the spec is exported with (its own and its tier's settings went with its entry).
    /// Its problems were reported with the tenants that inherit it.
    fn removal_export(&self) -> Option<crate::resource::ExportConfig> {
        let d = decl::DEFAULTS
            .get(self.root)
            .filter(|d| d.as_map().is_some())?;
        let eff = Effective::new(vec![Layer {
            path: decl::DEFAULTS.key.into(),
            node: d,
        }]);
        let mut sink = Sink::new("");
        let mut templates = Templates::new();
        let e = crate::spec::resolve::export_only(&mut sink, &mut templates, &eff)?;
        Some(crate::resource::ExportConfig {
            to: e.to.0,
            endpoint: e.endpoint,
            credentials: e.credentials.into_iter().collect(),
            encryption_key: e.encryption_key,
            image: e.image,
            keep: e.keep,
        })
    }

    /// A group's secrets, then its Machines (each with its volume and backup policy), or
    /// those of each of its process groups.
    fn expand_machines(&mut self, out: &mut Output, g: &Group<'_>) {
        self.register_secrets(&mut out.book, g);
        for pg in &g.settings.groups {
            let group = Group {
                owner: g.owner,
                app: g.app,
                tenant: g.tenant,
                role: g.role,
                settings: &pg.settings,
                base: g.base,
                machine_tpl: g.machine_tpl,
                volume_tpl: g.volume_tpl,
                entry_path: g.entry_path,
                desc: format!("{}, process group `{}`", g.desc, pg.name),
                process_group: Some((&pg.name, &pg.cmd)),
            };
            self.expand_slots(out, &group);
        }
        if g.settings.groups.is_empty() {
            self.expand_slots(out, g);
        }
    }

    /// A group's Machines, within the spec's limit.
    fn expand_slots(&mut self, out: &mut Output, g: &Group<'_>) {
        // Each Machine comes with its standbys.
        let per_slot = 1 + g.settings.standbys as usize;
        if out.book.machines.len() + g.settings.count as usize * per_slot > MAX_MACHINES {
            self.sink.add(
                err(
                    format!("the spec declares more than {MAX_MACHINES} Machines"),
                    g.entry_path,
                    Mark::default(),
                )
                .hint("split the fleet into several specs"),
            );
            return;
        }
        for index in 0..g.settings.count {
            if !self.expand_machine(out, g, index) {
                return;
            }
        }
    }

    /// Secrets are per app: tenants hosted in a shared app add theirs to the app's.
    fn register_secrets(&mut self, book: &mut AppBook, g: &Group<'_>) {
        if g.settings.secrets.is_empty() {
            return;
        }
        let app = g.app;
        let entry = book.secrets.entry(app.to_string()).or_default();
        for (name, source, path, mark) in &g.settings.secrets {
            let owner = self.secret_owner(&g.owner, g.app, g.tenant.is_some());
            let address = Address::secret(&owner, name);
            let at = entry.binary_search_by(|(n, _)| n.as_str().cmp(name.as_str()));
            match at.map(|i| &entry[i].1) {
                Ok((other, other_path, _)) if other != source => {
                    let msg = format!(
                        "secret `{name}` of app `{app}` has two different sources ({other_path} and {path})"
                    );
                    self.sink.add(
                        err(msg, path, *mark).hint(
                            "a secret belongs to the whole app; give both the same reference",
                        ),
                    );
                }
                Ok(_) => {}
                Err(i) => {
                    entry.insert(i, (name.clone(), (source.clone(), path.clone(), address)));
                }
            }
        }
    }

    /// One Machine of a group. `false`: stop expanding the group (a name problem was
    /// reported, and every further index would repeat it).
    fn expand_machine(&mut self, out: &mut Output, g: &Group<'_>, index: u32) -> bool {
        let s = g.settings;
        let machine_address = match g.process_group {
            Some((name, _)) => Address::group_machine(&g.owner, name, index),
            None => Address::machine(&g.owner, index),
        };
        let addr = machine_address.to_string();
        let vol_logical = s.volume.as_ref().map_or("", |v| v.name.as_str());
        let mut ctx = context! { index => index, count => s.count, volume => context! { name => vol_logical }, ..g.base.clone() };
        if let Some((name, _)) = g.process_group {
            ctx = context! { group => name, ..ctx };
        }
        let Some(machine_name) = self.machine_name(&mut out.book, g, &ctx, &addr) else {
            return false;
        };
        let env = self.render_entries(&s.env, 0, &ctx, &addr);
        let run = crate::spec::procs::render(&s.run, &mut |src, path, mark| {
            self.render(src, &ctx, path, mark, &addr)
        });
        let mut config = self.machine_extras(s, &ctx, &addr);
        // A process group's command is Fly's `init.cmd`, as flyctl sends it; it wins
        // over an `init.cmd` the entry's settings declare.
        if let Some((_, cmd)) = g.process_group {
            let args = cmd
                .iter()
                .filter_map(|(src, path, mark)| self.render(src, &ctx, path, *mark, &addr))
                .collect();
            config.init.get_or_insert_default().cmd = Some(args);
        }
        let mut metadata = self.render_entries(&s.metadata, SYSTEM_METADATA_KEYS, &ctx, &addr);
        self.system_metadata(&mut metadata, g, index);
        let mut mounts = Vec::with_capacity(usize::from(s.volume.is_some()));
        if let Some(v) = &s.volume {
            let Some(mount) = self.expand_volume(out, g, v, (&machine_address, index), &ctx) else {
                return false;
            };
            mounts.push(mount);
        }
        let primary = Resource {
            address: machine_address,
            tenant: g.tenant.map(str::to_string),
            app: g.app.to_string(),
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
                restart: s.restart.as_deref().map(RestartPolicy::from),
                config,
                secrets: Vec::new(),
                role: g.role.to_string(),
                index,
                run,
            })),
        };
        let standbys = self.expand_standbys(&mut out.book, g, &primary);
        out.resources.push(primary);
        match standbys {
            Some(v) => {
                out.resources.extend(v);
                true
            }
            None => false,
        }
    }

    /// The standbys of a Machine (`standbys: N`): copies of its spec without a volume
    /// (the settings refuse a volume with standbys), named `NAME-standby-K`, at
    /// `SLOT.standby[K]`, carrying which standby they are in their metadata. The
    /// primary's ID goes into their config when they are created. `None`: a name
    /// problem was reported.
    fn expand_standbys(
        &mut self,
        book: &mut AppBook,
        g: &Group<'_>,
        primary: &Resource,
    ) -> Option<Vec<Resource>> {
        let mut made = Vec::new();
        let Some(pm) = primary.machine() else {
            return Some(made);
        };
        for k in 0..g.settings.standbys {
            let Some(address) = primary.address.standby(k) else {
                break;
            };
            let name = format!("{}-standby-{k}", pm.name);
            let addr = address.to_string();
            if !self.standby_name(book, g, &name, &addr) {
                return None;
            }
            let mut m = pm.clone();
            m.name = name;
            m.mounts.clear();
            m.metadata
                .insert(crate::resource::META_STANDBY.to_string(), k.to_string());
            m.metadata.insert(
                crate::resource::META_STANDBY_FOR.to_string(),
                crate::resource::slot_text(&primary.address),
            );
            made.push(Resource {
                address,
                tenant: primary.tenant.clone(),
                app: primary.app.clone(),
                prevent_destroy: primary.prevent_destroy,
                id: None,
                usage: primary.usage.clone(),
                spec: Spec::Machine(Box::new(m)),
            });
        }
        Some(made)
    }

    /// A standby's name (`NAME-standby-K`): valid, and unique within its app.
    fn standby_name(&mut self, book: &mut AppBook, g: &Group<'_>, name: &str, addr: &str) -> bool {
        let tpl = g.machine_tpl;
        let problem =
            platform::machine_name_problem(name).map(|p| format!("standby name `{name}` {p}"));
        let key = (g.app.to_string(), name.to_string());
        let taken = book.machines.get(&key).map(|first| {
            format!(
                "standby name `{name}` in app `{}` is already used by {first}",
                g.app
            )
        });
        if let Some(msg) = problem.or(taken) {
            self.sink.add(
                err(msg, &tpl.path, tpl.mark)
                    .address(addr.to_string())
                    .hint("standbys are named after their Machine with `-standby-K`; shorten the machine name template"),
            );
            return false;
        }
        book.machines
            .insert(key, format!("{} ({}, a standby)", g.desc, g.entry_path));
        true
    }

    /// The Machine's name: rendered, valid, and unique within its app.
    fn machine_name(
        &mut self,
        book: &mut AppBook,
        g: &Group<'_>,
        ctx: &Ctx,
        addr: &str,
    ) -> Option<String> {
        let tpl = g.machine_tpl;
        let mut name = self.render_name(tpl, ctx, addr)?;
        // Groups share the entry's template: one that does not name the group gets it
        // appended, so the groups' Machines do not collide.
        if let Some((group, _)) = g.process_group
            && !tpl.source.contains("group")
        {
            name = format!("{name}-{group}");
        }
        if let Some(problem) = platform::machine_name_problem(&name) {
            self.sink.add(
                err(
                    format!("machine name `{name}` {problem}"),
                    &tpl.path,
                    tpl.mark,
                )
                .address(addr.to_string()),
            );
            return None;
        }
        let key = (g.app.to_string(), name.clone());
        if let Some(first) = book.machines.get(&key) {
            self.sink.add(
                err(
                    format!(
                        "{} expands to machine name `{name}` in app `{}`, already used by {first}",
                        g.desc, g.app
                    ),
                    &tpl.path,
                    tpl.mark,
                )
                .address(addr.to_string())
                .hint("include `{{ tenant.name }}` and `{{ index }}` in the machine name template"),
            );
            return None;
        }
        book.machines
            .insert(key, yaml::concat(&[&g.desc, " (", g.entry_path, ")"]));
        Some(name)
    }

    /// Env or metadata values rendered for one Machine, with room for `spare` more;
    /// values that fail to render are reported and left out.
    fn render_entries(
        &mut self,
        entries: &[(String, String, String, Mark)],
        spare: usize,
        ctx: &Ctx,
        addr: &str,
    ) -> crate::resource::StrMap {
        let mut out = crate::resource::StrMap::with_capacity(entries.len() + spare);
        for (k, v, p, m) in entries {
            if let Some(val) = self.render(v, ctx, p, *m, addr) {
                out.insert(k.clone(), val);
            }
        }
        out
    }

    /// The pass-through Machine config fields, templates rendered for this Machine.
    fn machine_extras(
        &mut self,
        s: &crate::spec::resolve::Resolved,
        ctx: &Ctx,
        addr: &str,
    ) -> crate::resource::MachineExtras {
        let mut extras = s.extras.clone();
        for text in extras.texts_mut() {
            if let Some((path, mark)) = s.extras_sites.get(text.as_str())
                && let Some(v) = self.render(text, ctx, path, *mark, addr)
            {
                *text = v;
            }
        }
        extras
    }

    /// flotilla's own metadata: managed, fleet, protection, tenant, role, index (and a
    /// process group's name twice): at most [`SYSTEM_METADATA_KEYS`] keys.
    fn system_metadata(&self, metadata: &mut crate::resource::StrMap, g: &Group<'_>, index: u32) {
        metadata.insert(META_MANAGED.to_string(), "true".to_string());
        metadata.insert(META_FLEET.to_string(), self.fleet.clone());
        if g.settings.prevent_destroy {
            metadata.insert(META_PROTECT.to_string(), "true".to_string());
        }
        if let Some(t) = g.tenant {
            metadata.insert(META_TENANT.to_string(), t.to_string());
        }
        metadata.insert(META_ROLE.to_string(), g.role.to_string());
        metadata.insert(META_INDEX.to_string(), index.to_string());
        if let Some((group, _)) = g.process_group {
            metadata.insert(crate::resource::META_GROUP.to_string(), group.to_string());
            metadata.insert(
                crate::resource::META_FLY_PROCESS_GROUP.to_string(),
                group.to_string(),
            );
        }
    }

    /// The Machine's volume and backup policy; `None`: stop expanding the group.
    fn expand_volume(
        &mut self,
        out: &mut Output,
        g: &Group<'_>,
        v: &VolumeSettings,
        (machine, index): (&Address, u32),
        ctx: &Ctx,
    ) -> Option<Mount> {
        let s = g.settings;
        let vol_address = Address::volume(&g.owner, &v.name, index);
        let vol_name = self.volume_name(&mut out.book, g, ctx, (&vol_address, &v.name, index))?;
        let aliases = legacy_volume_names(g.volume_tpl, &vol_name, index);
        if let Some(rf) = &v.restore_from {
            let addr = vol_address.to_string();
            let (t, tp, tm) = &rf.tenant;
            let (sn, sp, sm) = &rf.snapshot;
            let tenant = self.render(t, ctx, tp, *tm, &addr)?;
            let snapshot = self.render(sn, ctx, sp, *sm, &addr)?;
            out.restores.push(PendingRestore {
                at: out.resources.len(),
                name: v.name.clone(),
                index,
                tenant,
                snapshot: (snapshot != "latest").then_some(snapshot),
                path: tp.clone(),
                mark: *tm,
            });
        }
        out.resources.push(Resource {
            address: vol_address.clone(),
            tenant: g.tenant.map(str::to_string),
            app: g.app.to_string(),
            prevent_destroy: s.prevent_destroy,
            id: None,
            usage: Some(s.usage.clone()),
            spec: Spec::Volume(Box::new(VolumeSpec {
                name: vol_name.clone(),
                region: s.region.clone(),
                fallback_regions: s.fallback_regions.clone(),
                size_gb: v.size_gb,
                encrypted: v.encrypted,
                machine: Some(machine.clone()),
                attached_machine_id: None,
                aliases,
                restore_from: None,
            })),
        });
        out.resources.push(Resource {
            address: Address::backup(&g.owner, &v.name, index),
            tenant: g.tenant.map(str::to_string),
            app: g.app.to_string(),
            prevent_destroy: s.prevent_destroy,
            id: None,
            usage: Some(s.usage.clone()),
            spec: Spec::BackupPolicy(Box::new(BackupSpec {
                volume: vol_address.clone(),
                snapshot_retention: v.snapshot_retention,
                auto_backup: v.auto_backup,
                snapshot_before_destroy: s.snapshot_before_destroy,
            })),
        });
        Some(Mount {
            volume: vol_address,
            volume_name: vol_name,
            path: v.mount.clone(),
        })
    }

    /// The volume's Fly name: rendered, valid, and unique within its app.
    fn volume_name(
        &mut self,
        book: &mut AppBook,
        g: &Group<'_>,
        ctx: &Ctx,
        (vol_address, logical, index): (&Address, &str, u32),
    ) -> Option<String> {
        let tpl = g.volume_tpl;
        let addr = vol_address.to_string();
        let name = match default_volume_name(tpl, logical, index) {
            Some(name) => name,
            None => self.render_name(tpl, ctx, &addr)?,
        };
        if let Some(problem) = platform::volume_name_problem(&name) {
            self.sink.add(
                err(format!("volume name `{name}` {problem}"), &tpl.path, tpl.mark)
                    .address(addr)
                    .hint("use the `underscore` filter for names with dashes: `{{ tenant.name | underscore }}`"),
            );
            return None;
        }
        let key = (g.app.to_string(), name.clone());
        if let Some(first) = book.volumes.get(&key) {
            self.sink.add(
                err(format!("{} expands to volume name `{name}` in app `{}`, already used by {first}", g.desc, g.app), &tpl.path, tpl.mark)
                    .address(addr)
                    .hint("volume names must be unique within an app: include `{{ tenant.name | underscore }}` and `{{ index }}` in naming.volume"),
            );
            return None;
        }
        book.volumes
            .insert(key, yaml::concat(&[&g.desc, " (", g.entry_path, ")"]));
        Some(name)
    }

    /// Secrets of an app-per-tenant belong to the tenant; in a shared app, to the app.
    fn secret_owner<'o>(&self, owner: &Owner<'o>, app: &'o str, is_tenant: bool) -> Owner<'o> {
        match owner {
            Owner::Tenant(t) if is_tenant && !self.is_shared_app(app) => Owner::Tenant(t),
            _ => Owner::SharedApp(app),
        }
    }

    fn is_shared_app(&self, app: &str) -> bool {
        decl::APPS
            .get(self.root)
            .and_then(Node::as_seq)
            .is_some_and(|apps| apps.iter().any(|a| decl::ENTRY_NAME.get(a) == Some(app)))
    }
}

/// The built-in volume naming computed without the template engine, which it would
/// otherwise enter once per volume of the fleet: the same text as rendering
/// [`DEFAULT_VOLUME_NAME`] (a unit test holds the two together). None for any other
/// template.
fn default_volume_name(tpl: &NameTemplate, logical: &str, index: u32) -> Option<String> {
    (tpl.source == DEFAULT_VOLUME_NAME).then(|| {
        if index > 0 {
            format!("{logical}_{index}")
        } else {
            logical.to_string()
        }
    })
}

/// Names the default naming gave this slot's volume before index 0 kept the logical
/// name for every `count`: `NAME_0` when `count` was above 1. None for a spec's own
/// template, whose names the spec decides.
fn legacy_volume_names(tpl: &NameTemplate, name: &str, index: u32) -> Vec<String> {
    if index == 0 && tpl.source == DEFAULT_VOLUME_NAME {
        vec![format!("{name}{}", decl::LEGACY_FIRST_VOLUME_SUFFIX)]
    } else {
        Vec::new()
    }
}

/// A secret's resource.
fn secret_resource(
    app: &str,
    tenant: Option<String>,
    (name, (source, _path, address)): &(String, (SecretSource, String, Address)),
) -> Resource {
    Resource {
        address: address.clone(),
        tenant,
        app: app.to_string(),
        prevent_destroy: false,
        id: None,
        usage: None,
        spec: Spec::Secret(Box::new(SecretSpec {
            name: name.clone(),
            source: source.clone(),
            digest: None,
            fingerprint: None,
            fingerprint_key: None,
            set_digest: None,
        })),
    }
}

/// Ends the run of resources a tenant with an app of its own has added (from `run`:
/// the lengths of `resources` and `restores` before it). Its app's secrets join the run
/// (no other tenant adds to that app), and the run is put in kind order (app, secrets,
/// volumes, backup policies, Machines, IPs, certificates), which is the order a plan
/// lists an owner's changes in: a plan of a new fleet then needs no reordering, and each
/// pass over it reads the desired set in order.
fn close_tenant_run(out: &mut Output, run: (usize, usize), app: &str, tenant: &str) {
    let (start, restores) = run;
    if let Some(secrets) = out.book.secrets.remove(app) {
        let names: Vec<String> = secrets.iter().map(|(name, _)| name.clone()).collect();
        for r in &mut out.resources[start..] {
            if let Spec::Machine(m) = &mut r.spec {
                m.secrets.clone_from(&names);
            }
        }
        // Right after the app, where kind order has them.
        let at = (start + 1).min(out.resources.len());
        let added = secrets.len();
        out.resources.splice(
            at..at,
            secrets
                .iter()
                .map(|s| secret_resource(app, Some(tenant.to_string()), s)),
        );
        for p in &mut out.restores[restores..] {
            p.at += added;
        }
    }
    if out.resources[start..].is_sorted_by_key(Resource::kind) {
        return;
    }
    let mut tagged: Vec<(usize, Resource)> = out.resources.drain(start..).enumerate().collect();
    tagged.sort_by_key(|(_, r)| r.kind());
    let mut moved_to = vec![0; tagged.len()];
    for (new, (old, r)) in tagged.into_iter().enumerate() {
        moved_to[old] = start + new;
        out.resources.push(r);
    }
    for p in &mut out.restores[restores..] {
        p.at = moved_to[p.at - start];
    }
}

/// The secrets of shared apps (a tenant's own app has added its own already), after
/// every resource: one resource per app and name, owned by no tenant; Machines see all
/// of their app's secrets.
fn add_secrets(out: &mut Output) {
    if out.book.secrets.is_empty() {
        return;
    }
    // In the apps' order, so that the set's order does not depend on hashing.
    let mut apps: Vec<(&String, &AppSecrets)> = out.book.secrets.iter().collect();
    apps.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (app, secrets) in apps {
        for s in secrets {
            out.resources.push(secret_resource(app, None, s));
        }
    }
    for r in &mut out.resources {
        if let Spec::Machine(m) = &mut r.spec
            && let Some(secrets) = out.book.secrets.get(r.app.as_str())
        {
            m.secrets = secrets.iter().map(|(name, _)| name.clone()).collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_s_resources_come_in_kind_order_with_its_secrets() {
        let spec = "version: 1\norg: o\nnaming:\n  app: \"{{ 'hub' if tenant.name == 'c' else 'x-' ~ tenant.name }}\"\napps:\n  - name: hub\n    image: i\n    region: iad\n    secrets: { HUB_KEY: { env: HUB } }\ndefaults:\n  image: i\n  region: iad\n  count: 2\n  volume: { name: data, size_gb: 1, mount: /data }\n  hostnames: [\"{{ tenant.name }}.example.com\"]\n  secrets: { B_KEY: { env: B }, A_KEY: { env: A } }\ntenants:\n  - name: a\n  - name: b\n    volume: { restore_from: { tenant: a } }\n  - name: c\n    volume: { name: data, size_gb: 1, mount: /data, restore_from: { tenant: a } }\n    secrets: { C_KEY: { env: C } }\n";
        let l = crate::spec::load_bytes(spec.as_bytes(), "s.yaml").unwrap();
        let rs = &l.desired.resources.resources;
        let run = |t: &str| -> Vec<String> {
            rs.iter()
                .filter(|r| r.tenant.as_deref() == Some(t))
                .map(|r| r.address.to_string())
                .collect()
        };
        let b = run("b");
        assert_eq!(
            b,
            [
                "tenant.b.app",
                "tenant.b.secret.A_KEY",
                "tenant.b.secret.B_KEY",
                "tenant.b.volume.data[0]",
                "tenant.b.volume.data[1]",
                "tenant.b.backup.data[0]",
                "tenant.b.backup.data[1]",
                "tenant.b.machine[0]",
                "tenant.b.machine[1]",
                "tenant.b.cert#b.example.com",
            ]
        );
        // Each tenant's run is contiguous: `b`'s follows `a`'s.
        let first_b = rs
            .iter()
            .position(|r| r.address.to_string() == b[0])
            .unwrap();
        assert_eq!(
            rs[first_b - 1].address.to_string(),
            "tenant.a.cert#a.example.com"
        );
        // The restore reached the volumes it was declared on, wherever they moved to.
        for (t, slot) in [("b", 0), ("b", 1), ("c", 0), ("c", 1)] {
            let v = rs
                .iter()
                .find(|r| r.address.to_string() == format!("tenant.{t}.volume.data[{slot}]"))
                .and_then(|r| r.volume())
                .unwrap();
            let from = v.restore_from.as_ref().unwrap();
            assert_eq!(
                from.volume.to_string(),
                format!("tenant.a.volume.data[{slot}]")
            );
        }
        let restored = rs.iter().filter_map(|r| r.volume());
        assert_eq!(restored.filter(|v| v.restore_from.is_some()).count(), 4);
        // Machines see their app's secrets; the shared app's come after every tenant.
        let m = rs
            .iter()
            .find(|r| r.address.to_string() == "tenant.b.machine[1]")
            .unwrap();
        assert_eq!(m.machine().unwrap().secrets, ["A_KEY", "B_KEY"]);
        let last: Vec<String> = rs[rs.len() - 4..]
            .iter()
            .map(|r| r.address.to_string())
            .collect();
        let hub = ["A_KEY", "B_KEY", "C_KEY", "HUB_KEY"];
        assert_eq!(last, hub.map(|k| format!("app.hub.secret.{k}")));
        let hub_machine = rs
            .iter()
            .find(|r| r.app == "hub" && r.machine().is_some() && r.tenant.as_deref() == Some("c"))
            .unwrap();
        assert_eq!(hub_machine.machine().unwrap().secrets, hub);
    }

    #[test]
    fn standbys_copy_their_primary_in_a_slot_of_their_own() {
        let spec = "version: 1\norg: o\ndefaults:\n  image: i\n  region: iad\n  process_groups:\n    web: { cmd: [serve], services: [{ internal_port: 8080, ports: [{ port: 443 }] }] }\n    worker: { cmd: [work], standbys: 1 }\ntenants: [{ name: a }]\n";
        let l = crate::spec::load_bytes(spec.as_bytes(), "s.yaml").unwrap();
        let ms: Vec<(String, &MachineSpec)> = l
            .desired
            .resources
            .iter()
            .filter_map(|r| r.machine().map(|m| (r.address.to_string(), m)))
            .collect();
        let addrs: Vec<&str> = ms.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            addrs,
            [
                "tenant.a.machine.web[0]",
                "tenant.a.machine.worker[0]",
                "tenant.a.machine.worker[0].standby[0]"
            ]
        );
        let (primary, standby) = (ms[1].1, ms[2].1);
        assert_eq!(standby.name, "a-0-worker-standby-0");
        let meta = |k: &str| standby.metadata.get(k).map(String::as_str);
        assert_eq!(meta(crate::resource::META_STANDBY), Some("0"));
        assert_eq!(
            meta(crate::resource::META_STANDBY_FOR),
            Some("machine.worker[0]")
        );
        assert!(standby.is_standby() && standby.started_by_fly());
        assert!(!primary.is_standby());
        let mut same = standby.clone();
        same.name = primary.name.clone();
        same.metadata = primary.metadata.clone();
        assert_eq!(&same, primary, "the primary's config, volume aside");
    }

    #[test]
    fn the_default_volume_name_without_the_engine_is_the_templates_text() {
        let tpl = NameTemplate {
            source: DEFAULT_VOLUME_NAME.to_string(),
            mark: Mark::default(),
            path: "naming.volume".to_string(),
        };
        let mut templates = Templates::new();
        for logical in ["data", "pg_data"] {
            for index in [0u32, 1, 2, 9, 10, 4_000_000_000] {
                let ctx = context! { index => index, volume => context! { name => logical } };
                let rendered = templates.render(DEFAULT_VOLUME_NAME, &ctx).ok();
                assert_eq!(default_volume_name(&tpl, logical, index), rendered);
            }
        }
        let custom = NameTemplate {
            source: "{{ volume.name }}_{{ index }}".to_string(),
            ..tpl
        };
        assert_eq!(default_volume_name(&custom, "data", 0), None);
    }
}
