//! `import --fly-toml FILE`: turns one app's fly.toml into spec settings, so an app
//! deployed with flyctl can become the template of per-tenant stacks. The file's keys
//! are taken out of the parsed table as they are mapped; whatever is left (and whatever
//! holds a value flotilla cannot express) is reported as not mapped, with the reason,
//! both in the outcome and as comments in the spec. Pure after the bounded read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use toml::Table;

use super::emit;
use super::factor::{Document, Entry};
use super::profile::{Leaf, leaf};
use crate::diag::Diagnostic;
use crate::platform::{self, CpuKind};
use crate::spec::decl;

/// The largest fly.toml read: far above any real one (they are a few KiB).
pub const MAX_FLY_TOML_BYTES: u64 = 1024 * 1024;

/// What to convert.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The fly.toml to read.
    pub file: PathBuf,
    /// The org slug written as `org:`; flyctl's default (`personal`) when `None`.
    pub org: Option<String>,
}

/// A key of the fly.toml the spec does not express, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    /// Its dotted path in the file (`deploy.strategy`, `services[0].ports[1].start_port`).
    pub key: String,
    pub why: String,
}

impl std::fmt::Display for Unmapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.why)
    }
}

/// The converted spec.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The spec, YAML, with a comment for each key not mapped.
    pub spec: String,
    /// The fly.toml's `app`, when it names one.
    pub app: Option<String>,
    /// The settings written under `defaults`, top-level keys, sorted.
    pub settings: Vec<String>,
    /// What the spec does not express.
    pub unmapped: Vec<Unmapped>,
}

/// `import --fly-toml FILE`: reads the file (bounded, regular files only) and converts it.
pub fn run(opts: &Options) -> Result<Outcome, crate::ops::Error> {
    let file = opts.file.display().to_string();
    let bytes = read(&opts.file).map_err(|d| d.file(file.clone()))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        Diagnostic::error("the file is not UTF-8 text")
            .file(file.clone())
            .at(crate::spec::yaml::mark_at(&bytes, e.valid_up_to()))
            .hint("a fly.toml is UTF-8 TOML")
    })?;
    let org = opts.org.as_deref().unwrap_or(DEFAULT_ORG);
    if org.trim().is_empty() {
        return Err(Diagnostic::error("--org is empty")
            .hint("give the organization's slug, as `fly orgs list` shows it, or leave --org out for `personal`")
            .into());
    }
    convert(text, org).map_err(|d| d.file(file).into())
}

/// flyctl's default organization.
const DEFAULT_ORG: &str = "personal";

fn read(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    use crate::fsutil::ReadError;
    let bytes = crate::fsutil::read_bounded(path, MAX_FLY_TOML_BYTES).map_err(|e| {
        let hint = match &e {
            ReadError::NotRegular { .. } => "pass the app's fly.toml itself".to_string(),
            e => e.hint().to_string(),
        };
        Diagnostic::error(e.to_string()).hint(hint)
    })?;
    match crate::spec::yaml::control_char_problem(&bytes) {
        Some(d) => Err(d),
        None => Ok(bytes),
    }
}

/// The spec for a fly.toml's text. Pure. Errors carry line:column but no file.
pub fn convert(text: &str, org: &str) -> Result<Outcome, Diagnostic> {
    let mut table: Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e.span().map_or(0, |s| s.start);
        Diagnostic::error(format!("not valid TOML: {}", e.message().trim_end()))
            .at(crate::spec::yaml::mark_at(text.as_bytes(), at))
            .hint("flotilla reads the fly.toml flyctl deploys from; check it with `fly config validate`")
    })?;
    let mut c = Conv::default();
    let app = c.text(&mut table, "app", "app");
    c.map(table, app.as_deref());
    let doc = c.document(app.as_deref());
    let settings = top_level_keys(&doc.defaults);
    // A credential anywhere else (a command line, a path) is cut out of the spec too.
    let found = !crate::spec::credentials::find_all(&emit::write(org, &[], &doc)).is_empty();
    if found {
        c.note(
            "(values)",
            format!(
                "a value holds what looks like a credential; it is written as {} (make it a Fly secret)",
                crate::spec::credentials::REDACTED
            ),
        );
    }
    let secrets = settings.iter().any(|k| k == decl::SECRETS.key);
    let header = header(app.as_deref(), secrets, &c.unmapped);
    let spec = emit::write(org, &header, &doc);
    Ok(Outcome {
        spec: crate::spec::credentials::redact(&spec).into_owned(),
        app,
        settings,
        unmapped: c.unmapped,
    })
}

fn top_level_keys(leaves: &BTreeMap<Leaf, Value>) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for k in leaves.keys().filter_map(|l| l.first()) {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    keys
}

fn header(app: Option<&str>, secrets: bool, unmapped: &[Unmapped]) -> Vec<String> {
    let from = app.map_or(String::new(), |a| format!(" of app {a}"));
    let mut h = vec![
        format!("Converted by `flotilla import --fly-toml` from the fly.toml{from}."),
        "The app's settings are the defaults of every tenant: add one entry per tenant under `tenants:` (each gets its own app, named by naming.app).".into(),
        "fly.toml holds no Machine counts (`fly scale count`): every tenant (and process group) gets one Machine; set `count`.".into(),
    ];
    if secrets {
        h.push("Secrets are referenced from environment variables of the same name; their values stay with Fly (`fly secrets`).".into());
    }
    if !unmapped.is_empty() {
        h.push(format!("Not mapped ({}):", unmapped.len()));
        h.extend(unmapped.iter().map(|u| format!("  {u}")));
    }
    h
}

/// Why a key left over after mapping is not expressed.
fn why(key: &str) -> String {
    let top = key.split(['.', '[']).next().unwrap_or(key);
    let reason = match top {
        "deploy" => {
            "flotilla rolls Machines out itself (rollout waves and gates); Fly's deploy strategy and release command have no setting"
        }
        "experimental" => {
            "experimental flyctl options are not part of the Machine config flotilla manages"
        }
        "build" => {
            "flotilla deploys an image built beforehand: build and push it, then set `image`"
        }
        "console_command" => "a `fly console` setting, not part of a Machine's config",
        "http_service" | "services" => "no spec setting for this part of a service",
        "checks" => "no spec setting for this part of a check",
        "mounts" => "no spec setting for this part of a volume",
        "vm" => "no spec setting for this part of the Machine size",
        _ => "no flotilla setting for it",
    };
    reason.to_string()
}

fn type_name(v: &toml::Value) -> &'static str {
    v.type_str()
}

/// A check as fly.toml states it, and the process groups it is for.
type Check = (String, Map<String, Value>, Vec<String>);

/// A converted service with its idle policy, checks and process groups.
#[derive(Debug, Default)]
struct Service {
    body: Map<String, Value>,
    idle: Idle,
    checks: Vec<Check>,
    processes: Vec<String>,
}

/// Fly's per-service autostop, autostart and minimum, as flotilla's `idle` reads them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Idle {
    mode: Option<String>,
    autostart: Option<bool>,
    min_running: Option<i64>,
}

/// A `[[vm]]` entry as size and memory, and the groups it is for.
#[derive(Debug, Default)]
struct Vm {
    size: Option<String>,
    memory: Option<String>,
    processes: Vec<String>,
}

#[derive(Debug, Default)]
struct Conv {
    leaves: BTreeMap<Leaf, Value>,
    unmapped: Vec<Unmapped>,
    /// `[processes]` in file order: name and command.
    groups: Vec<(String, Vec<String>)>,
    services: Vec<Service>,
    checks: Vec<Check>,
    vms: Vec<Vm>,
}

impl Conv {
    fn note(&mut self, key: impl Into<String>, why: impl Into<String>) {
        self.unmapped.push(Unmapped {
            key: key.into(),
            why: why.into(),
        });
    }

    fn set(&mut self, key: &str, v: Value) {
        self.leaves.insert(leaf(key), v);
    }

    /// Every key left in `t` (under `prefix`) is not mapped; tables are listed key by key.
    fn rest(&mut self, prefix: &str, t: Table) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(inner) if !inner.is_empty() => self.rest(&key, inner),
                _ => {
                    let w = why(&key);
                    self.note(key, w);
                }
            }
        }
    }

    fn text(&mut self, t: &mut Table, k: &str, path: &str) -> Option<String> {
        match t.remove(k)? {
            toml::Value::String(s) => Some(s),
            other => {
                self.note(path, format!("expected text, found {}", type_name(&other)));
                None
            }
        }
    }

    fn int(&mut self, t: &mut Table, k: &str, path: &str) -> Option<i64> {
        match t.remove(k)? {
            toml::Value::Integer(n) => Some(n),
            other => {
                self.note(
                    path,
                    format!("expected an integer, found {}", type_name(&other)),
                );
                None
            }
        }
    }

    fn flag(&mut self, t: &mut Table, k: &str, path: &str) -> Option<bool> {
        match t.remove(k)? {
            toml::Value::Boolean(b) => Some(b),
            other => {
                self.note(
                    path,
                    format!("expected true or false, found {}", type_name(&other)),
                );
                None
            }
        }
    }

    fn texts(&mut self, t: &mut Table, k: &str, path: &str) -> Vec<String> {
        match t.remove(k) {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        toml::Value::String(s) => out.push(s),
                        other => self.note(
                            format!("{path}[{i}]"),
                            format!("expected text, found {}", type_name(&other)),
                        ),
                    }
                }
                out
            }
            Some(toml::Value::String(s)) => vec![s],
            Some(other) => {
                self.note(
                    path,
                    format!("expected a list, found {}", type_name(&other)),
                );
                Vec::new()
            }
        }
    }

    /// A table, or the tables of an array of tables (`[x]` and `[[x]]` both allowed).
    fn tables(&mut self, t: &mut Table, k: &str) -> Vec<(String, Table)> {
        match t.remove(k) {
            None => Vec::new(),
            Some(toml::Value::Table(one)) => vec![(k.to_string(), one)],
            Some(toml::Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        toml::Value::Table(tb) => out.push((format!("{k}[{i}]"), tb)),
                        other => self.note(
                            format!("{k}[{i}]"),
                            format!("expected a table, found {}", type_name(&other)),
                        ),
                    }
                }
                out
            }
            Some(other) => {
                self.note(k, format!("expected a table, found {}", type_name(&other)));
                Vec::new()
            }
        }
    }

    fn table(&mut self, t: &mut Table, k: &str, path: &str) -> Option<Table> {
        match t.remove(k)? {
            toml::Value::Table(tb) => Some(tb),
            other => {
                self.note(
                    path,
                    format!("expected a table, found {}", type_name(&other)),
                );
                None
            }
        }
    }

    /// Maps the whole file; what is left is not mapped.
    fn map(&mut self, mut t: Table, app: Option<&str>) {
        match self.text(&mut t, "primary_region", "primary_region") {
            Some(r) => self.set(decl::REGION.key, json!(r)),
            None => self.note(
                "primary_region",
                "absent: the spec needs a `region`; add it under defaults",
            ),
        }
        self.build(&mut t, app);
        self.env(&mut t);
        self.processes(&mut t);
        self.vms(&mut t);
        self.http_service(&mut t);
        self.services(&mut t);
        self.top_checks(&mut t);
        self.mounts(&mut t);
        self.stop_config(&mut t);
        self.metrics(&mut t);
        self.statics(&mut t);
        self.files(&mut t);
        self.restart(&mut t);
        if let Some(mb) = self.int(&mut t, "swap_size_mb", "swap_size_mb") {
            self.set("init.swap_size_mb", json!(mb));
        }
        self.rest("", t);
        self.place();
    }

    fn build(&mut self, t: &mut Table, app: Option<&str>) {
        let mut b = self.table(t, "build", "build").unwrap_or_default();
        match self.text(&mut b, "image", "build.image") {
            Some(image) => self.set(decl::IMAGE.key, json!(image)),
            None => {
                let image = format!("registry.fly.io/{}:latest", app.unwrap_or("APP"));
                self.note("build.image", format!("absent: flyctl builds the app and pushes it to registry.fly.io; `image` is written as `{image}`, set the tag you deploy"));
                self.set(decl::IMAGE.key, json!(image));
            }
        }
        self.rest("build", b);
    }

    fn env(&mut self, t: &mut Table) {
        let Some(env) = self.table(t, "env", "env") else {
            return;
        };
        for (k, v) in env {
            let key = format!("env.{k}");
            let value = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    let w = format!("expected text, found {}", type_name(&other));
                    self.note(key, w);
                    continue;
                }
            };
            if !platform::is_env_name(&k) {
                self.note(key, "not a valid variable name for a spec");
            } else if crate::spec::credentials::looks_like_credential(&value, Some(&k)).is_some() {
                self.note(key, "holds what looks like a credential (value not shown): make it a Fly secret and reference it under `secrets:`");
            } else if is_template(&value) {
                self.note(key, "contains template syntax, which the spec would render");
            } else {
                self.leaves.insert(vec!["env".into(), k], json!(value));
            }
        }
    }

    fn processes(&mut self, t: &mut Table) {
        let Some(p) = self.table(t, "processes", "processes") else {
            return;
        };
        for (name, v) in p {
            let key = format!("processes.{name}");
            let cmd = match v {
                toml::Value::String(s) => split_command(&s),
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect(),
                _ => None,
            };
            match cmd {
                Some(cmd) => self.groups.push((name, cmd)),
                None => self.note(key, "expected a command line (text with balanced quotes)"),
            }
        }
    }

    fn vms(&mut self, t: &mut Table) {
        for (path, mut v) in self.tables(t, "vm") {
            let size = self.text(&mut v, "size", &format!("{path}.size"));
            let kind = self.text(&mut v, "cpu_kind", &format!("{path}.cpu_kind"));
            let cpus = self.int(&mut v, "cpus", &format!("{path}.cpus"));
            let memory = match v.remove("memory").or_else(|| v.remove("memory_mb")) {
                None => None,
                Some(m) => match memory_mb(&m) {
                    Some(mb) => Some(memory_text(mb)),
                    None => {
                        self.note(
                            format!("{path}.memory"),
                            "expected MB or a size such as 1gb or 512mb",
                        );
                        None
                    }
                },
            };
            let processes = self.texts(&mut v, "processes", &format!("{path}.processes"));
            let size = self.size(&path, size, kind, cpus);
            self.rest(&path, v);
            self.vms.push(Vm {
                size,
                memory,
                processes,
            });
        }
    }

    /// The preset of a `[[vm]]`: its size (flyctl's old names renamed), with `cpu_kind`
    /// and `cpus` taking precedence as in flyctl.
    fn size(
        &mut self,
        path: &str,
        size: Option<String>,
        kind: Option<String>,
        cpus: Option<i64>,
    ) -> Option<String> {
        let named = match size.as_deref() {
            None => None,
            Some(s) => match platform::preset(s)
                .or_else(|| platform::renamed_preset(s).and_then(platform::preset))
            {
                Some(p) => Some(p),
                None => {
                    self.note(format!("{path}.size"), format!("unknown size `{s}`"));
                    None
                }
            },
        };
        if kind.is_none() && cpus.is_none() {
            return named.map(|p| p.name.to_string());
        }
        let base = named.or_else(|| platform::preset("shared-cpu-1x"));
        let kind = match kind.as_deref() {
            Some("shared") => Some(CpuKind::Shared),
            Some("performance") => Some(CpuKind::Performance),
            None => base.map(|p| p.cpu_kind),
            Some(other) => {
                self.note(
                    format!("{path}.cpu_kind"),
                    format!("unknown CPU kind `{other}`"),
                );
                return named.map(|p| p.name.to_string());
            }
        };
        let cpus = cpus.or(base.map(|p| i64::from(p.cpus)));
        let found = kind
            .zip(cpus.and_then(|n| u32::try_from(n).ok()))
            .and_then(|(k, n)| platform::preset_for(k, n));
        match found {
            Some(p) => Some(p.name.to_string()),
            None => {
                self.note(
                    format!("{path}.cpus"),
                    "no Fly preset has this CPU kind and count",
                );
                named.map(|p| p.name.to_string())
            }
        }
    }

    fn http_service(&mut self, t: &mut Table) {
        let Some(mut h) = self.table(t, "http_service", "http_service") else {
            return;
        };
        let p = "http_service";
        let Some(port) = self.int(&mut h, "internal_port", &format!("{p}.internal_port")) else {
            self.note(p, "has no internal_port");
            return;
        };
        let force = self.flag(&mut h, "force_https", &format!("{p}.force_https"));
        let mut http = json!({"port": 80, "handlers": ["http"]});
        if let Some(f) = force {
            http["force_https"] = json!(f);
        }
        let mut s = Service {
            processes: self.texts(&mut h, "processes", &format!("{p}.processes")),
            idle: self.idle(&mut h, p),
            ..Service::default()
        };
        s.body.insert("protocol".into(), json!("tcp"));
        s.body.insert("internal_port".into(), json!(port));
        s.body.insert(
            "ports".into(),
            json!([http, {"port": 443, "handlers": ["tls", "http"]}]),
        );
        self.concurrency(&mut h, p, &mut s.body);
        for (i, (path, c)) in self.tables(&mut h, "checks").into_iter().enumerate() {
            let path = format!("{p}.{path}");
            let name = format!("http_service_{i}");
            if let Some(check) = self.check(c, &path, Some(("http", port))) {
                s.checks.push((name, check, s.processes.clone()));
            }
        }
        if !s.checks.is_empty() {
            self.note(
                format!("{p}.checks"),
                "written as Machine checks (flotilla declares no service checks), so Fly's proxy does not route by them",
            );
        }
        self.rest(p, h);
        self.services.push(s);
    }

    fn services(&mut self, t: &mut Table) {
        for (p, mut v) in self.tables(t, "services") {
            let protocol = self
                .text(&mut v, "protocol", &format!("{p}.protocol"))
                .unwrap_or_else(|| "tcp".into());
            let Some(port) = self.int(&mut v, "internal_port", &format!("{p}.internal_port"))
            else {
                self.note(p, "has no internal_port");
                continue;
            };
            let mut s = Service {
                processes: self.texts(&mut v, "processes", &format!("{p}.processes")),
                idle: self.idle(&mut v, &p),
                ..Service::default()
            };
            s.body.insert("protocol".into(), json!(protocol));
            s.body.insert("internal_port".into(), json!(port));
            let ports = self.ports(&mut v, &p);
            if ports.is_empty() {
                self.note(p.clone(), "has no port the spec can declare; left out");
                self.rest(&p, v);
                continue;
            }
            s.body.insert("ports".into(), Value::Array(ports));
            self.concurrency(&mut v, &p, &mut s.body);
            for (kind, list) in [("tcp", "tcp_checks"), ("http", "http_checks")] {
                for (i, (path, c)) in self.tables(&mut v, list).into_iter().enumerate() {
                    let path = format!("{p}.{path}");
                    let name = format!("{}_{kind}_{i}", p.replace(['[', ']'], ""));
                    if let Some(check) = self.check(c, &path, Some((kind, port))) {
                        s.checks.push((name, check, s.processes.clone()));
                    }
                }
            }
            if !s.checks.is_empty() {
                self.note(
                    format!("{p}.checks"),
                    "written as Machine checks (flotilla declares no service checks), so Fly's proxy does not route by them",
                );
            }
            self.rest(&p, v);
            self.services.push(s);
        }
    }

    fn ports(&mut self, v: &mut Table, p: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for (path, mut port) in self.tables(v, "ports") {
            let path = format!("{p}.{path}");
            let Some(n) = self.int(&mut port, "port", &format!("{path}.port")) else {
                self.note(
                    path.clone(),
                    "has no single port (port ranges have no spec setting)",
                );
                self.rest(&path, port);
                continue;
            };
            let mut o = json!({"port": n});
            let handlers = self.texts(&mut port, "handlers", &format!("{path}.handlers"));
            if !handlers.is_empty() {
                o["handlers"] = json!(handlers);
            }
            if let Some(f) = self.flag(&mut port, "force_https", &format!("{path}.force_https")) {
                o["force_https"] = json!(f);
            }
            self.rest(&path, port);
            out.push(o);
        }
        out
    }

    fn concurrency(&mut self, v: &mut Table, p: &str, body: &mut Map<String, Value>) {
        let path = format!("{p}.concurrency");
        let Some(mut c) = self.table(v, "concurrency", &path) else {
            return;
        };
        let mut o = Map::new();
        if let Some(k) = self.text(&mut c, "type", &format!("{path}.type")) {
            o.insert("type".into(), json!(k));
        }
        for k in ["soft_limit", "hard_limit"] {
            if let Some(n) = self.int(&mut c, k, &format!("{path}.{k}")) {
                o.insert(k.into(), json!(n));
            }
        }
        self.rest(&path, c);
        body.insert("concurrency".into(), Value::Object(o));
    }

    fn idle(&mut self, v: &mut Table, p: &str) -> Idle {
        let mode = match v.remove("auto_stop_machines") {
            None => None,
            Some(toml::Value::Boolean(b)) => Some(if b { "stop" } else { "off" }.to_string()),
            Some(toml::Value::String(s)) if ["off", "stop", "suspend"].contains(&s.as_str()) => {
                Some(s)
            }
            Some(other) => {
                self.note(
                    format!("{p}.auto_stop_machines"),
                    format!(
                        "expected off, stop, suspend or a boolean, found {}",
                        match &other {
                            toml::Value::String(s) => format!("`{s}`"),
                            o => type_name(o).to_string(),
                        }
                    ),
                );
                None
            }
        };
        Idle {
            mode,
            autostart: self.flag(
                v,
                "auto_start_machines",
                &format!("{p}.auto_start_machines"),
            ),
            min_running: self.int(
                v,
                "min_machines_running",
                &format!("{p}.min_machines_running"),
            ),
        }
    }

    /// A check's fields the spec declares; `service` gives the type and port of a
    /// service check.
    fn check(
        &mut self,
        mut c: Table,
        path: &str,
        service: Option<(&str, i64)>,
    ) -> Option<Map<String, Value>> {
        let mut o = Map::new();
        let kind = self.text(&mut c, "type", &format!("{path}.type"));
        let kind = service.map(|(k, _)| k.to_string()).or(kind);
        o.insert("type".into(), json!(kind.unwrap_or_else(|| "http".into())));
        let port = self.int(&mut c, "port", &format!("{path}.port"));
        match port.or(service.map(|(_, p)| p)) {
            Some(p) => o.insert("port".into(), json!(p)),
            None => {
                self.note(path, "has no port");
                self.rest(path, c);
                return None;
            }
        };
        for k in ["path", "method", "interval", "timeout", "grace_period"] {
            if let Some(s) = self.text(&mut c, k, &format!("{path}.{k}")) {
                o.insert(k.into(), json!(s));
            }
        }
        self.rest(path, c);
        Some(o)
    }

    fn top_checks(&mut self, t: &mut Table) {
        let Some(checks) = self.table(t, "checks", "checks") else {
            return;
        };
        for (name, v) in checks {
            let path = format!("checks.{name}");
            let toml::Value::Table(mut c) = v else {
                self.note(path, "expected a table");
                continue;
            };
            let processes = self.texts(&mut c, "processes", &format!("{path}.processes"));
            if let Some(check) = self.check(c, &path, None) {
                self.checks.push((name, check, processes));
            }
        }
    }

    fn mounts(&mut self, t: &mut Table) {
        let mut all = self.tables(t, "mounts").into_iter();
        let Some((path, mut m)) = all.next() else {
            return;
        };
        for (p, _) in all {
            self.note(p, "the spec declares one volume per Machine, the first");
        }
        if let Some(s) = self.text(&mut m, "source", &format!("{path}.source")) {
            self.set(decl::VOLUME_NAME.key, json!(s));
        }
        if let Some(d) = self.text(&mut m, "destination", &format!("{path}.destination")) {
            self.set(decl::VOLUME_MOUNT.key, json!(d));
        }
        if let Some(v) = m.remove("initial_size") {
            match size_gb(&v) {
                Some(gb) => self.set(decl::VOLUME_SIZE_GB.key, json!(gb)),
                None => self.note(
                    format!("{path}.initial_size"),
                    "expected whole GB such as 10gb",
                ),
            }
        }
        let r = self.int(
            &mut m,
            "snapshot_retention",
            &format!("{path}.snapshot_retention"),
        );
        if let Some(r) = r {
            self.set(decl::VOLUME_SNAPSHOT_RETENTION.key, json!(r));
        }
        if m.contains_key("processes") {
            m.remove("processes");
            self.note(
                format!("{path}.processes"),
                "the volume is declared for every Machine (process groups declare none of their own)",
            );
        }
        self.rest(&path, m);
    }

    fn stop_config(&mut self, t: &mut Table) {
        let mut o = Map::new();
        if let Some(s) = self.text(t, "kill_signal", "kill_signal") {
            o.insert("signal".into(), json!(s.to_ascii_uppercase()));
        }
        match t.remove("kill_timeout") {
            None => {}
            Some(toml::Value::Integer(n)) => {
                o.insert("timeout".into(), json!(format!("{n}s")));
            }
            Some(toml::Value::String(s)) => {
                o.insert("timeout".into(), json!(s));
            }
            Some(other) => self.note(
                "kill_timeout",
                format!(
                    "expected seconds or a duration, found {}",
                    type_name(&other)
                ),
            ),
        }
        if !o.is_empty() {
            self.set("stop_config", Value::Object(o));
        }
    }

    fn metrics(&mut self, t: &mut Table) {
        let mut all = self.tables(t, "metrics").into_iter();
        let Some((path, mut m)) = all.next() else {
            return;
        };
        for (p, _) in all {
            self.note(
                p,
                "the spec declares one metrics endpoint per Machine, the first",
            );
        }
        let mut o = Map::new();
        if let Some(p) = self.int(&mut m, "port", &format!("{path}.port")) {
            o.insert("port".into(), json!(p));
        }
        if let Some(p) = self.text(&mut m, "path", &format!("{path}.path")) {
            o.insert("path".into(), json!(p));
        }
        self.rest(&path, m);
        if !o.is_empty() {
            self.set("metrics", Value::Object(o));
        }
    }

    fn statics(&mut self, t: &mut Table) {
        let mut list = Vec::new();
        for (path, mut s) in self.tables(t, "statics") {
            let mut o = Map::new();
            for k in [
                "guest_path",
                "url_prefix",
                "tigris_bucket",
                "index_document",
            ] {
                if let Some(v) = self.text(&mut s, k, &format!("{path}.{k}")) {
                    o.insert(k.into(), json!(v));
                }
            }
            self.rest(&path, s);
            list.push(Value::Object(o));
        }
        if !list.is_empty() {
            self.set("statics", Value::Array(list));
        }
    }

    fn files(&mut self, t: &mut Table) {
        let mut list = Vec::new();
        for (path, mut f) in self.tables(t, "files") {
            let mut o = Map::new();
            if let Some(g) = self.text(&mut f, "guest_path", &format!("{path}.guest_path")) {
                o.insert("guest_path".into(), json!(g));
            }
            if let Some(v) = self.text(&mut f, "raw_value", &format!("{path}.raw_value")) {
                if crate::spec::credentials::looks_like_credential(&v, None).is_some() {
                    self.note(format!("{path}.raw_value"), "holds what looks like a credential (value not shown): make it an app secret and use secret_name");
                } else {
                    o.insert("raw_value".into(), json!(v));
                }
            }
            if let Some(v) = self.text(&mut f, "local_path", &format!("{path}.local_path")) {
                o.insert("local_file".into(), json!(v));
                self.note(
                    format!("{path}.local_path"),
                    "written as local_file: it is read relative to the spec's directory and must lie inside it, so copy the file beside the spec",
                );
            }
            if let Some(v) = self.text(&mut f, "secret_name", &format!("{path}.secret_name")) {
                self.secret_reference(&v, &format!("{path}.secret_name"));
                o.insert("secret_name".into(), json!(v));
            }
            if f.contains_key("processes") {
                f.remove("processes");
                self.note(
                    format!("{path}.processes"),
                    "the file is written to every Machine",
                );
            }
            self.rest(&path, f);
            list.push(Value::Object(o));
        }
        if !list.is_empty() {
            self.set("files", Value::Array(list));
        }
    }

    /// A file's secret is declared under `secrets`, referenced from the environment
    /// variable of the same name (its value lives with Fly, set by `fly secrets`).
    fn secret_reference(&mut self, name: &str, path: &str) {
        if crate::platform::is_env_name(name) {
            let mut l = leaf(decl::SECRETS.key);
            l.push(name.to_string());
            self.leaves.insert(l, json!({ "env": name }));
        } else {
            self.note(
                path,
                format!("secret `{name}` is no valid environment variable name to reference"),
            );
        }
    }

    fn restart(&mut self, t: &mut Table) {
        for (i, (path, mut r)) in self.tables(t, "restart").into_iter().enumerate() {
            let policy = self.text(&mut r, "policy", &format!("{path}.policy"));
            let processes = self.texts(&mut r, "processes", &format!("{path}.processes"));
            let retries_key = if r.contains_key("max_retries") {
                "max_retries"
            } else {
                "retries"
            };
            let retries = self.int(&mut r, retries_key, &format!("{path}.{retries_key}"));
            self.rest(&path, r);
            let every =
                processes.is_empty() || self.groups.iter().all(|(g, _)| processes.contains(g));
            if let Some(n) = retries {
                if i > 0 || !every {
                    self.note(
                        format!("{path}.{retries_key}"),
                        "restart retries for some process groups only have no spec setting; left out",
                    );
                } else if let Ok(n) = u32::try_from(n) {
                    self.set(decl::RESTART_MAX_RETRIES.key, json!(n));
                } else {
                    self.note(
                        format!("{path}.{retries_key}"),
                        format!("{n} retries is out of range"),
                    );
                }
            }
            let Some(policy) = policy else { continue };
            let policy = if policy == "never" {
                "no".into()
            } else {
                policy
            };
            if !RESTART_POLICIES.contains(&policy.as_str()) {
                self.note(
                    format!("{path}.policy"),
                    format!("unknown restart policy `{policy}`"),
                );
            } else if i > 0 || !every {
                self.note(
                    path,
                    "a restart policy for some process groups only has no spec setting; left out",
                );
            } else {
                self.set(decl::RESTART.key, json!(policy));
            }
        }
    }

    /// Puts services, checks and sizes at the top level, or into process groups.
    fn place(&mut self) {
        self.place_idle();
        let services = std::mem::take(&mut self.services);
        let checks: Vec<Check> = std::mem::take(&mut self.checks)
            .into_iter()
            .chain(services.iter().flat_map(|s| s.checks.clone()))
            .collect();
        let vms = std::mem::take(&mut self.vms);
        let names: Vec<String> = self.groups.iter().map(|(n, _)| n.clone()).collect();
        for (what, list) in [
            (
                "services",
                services.iter().map(|s| &s.processes).collect::<Vec<_>>(),
            ),
            ("checks", checks.iter().map(|c| &c.2).collect()),
            ("vm", vms.iter().map(|v| &v.processes).collect()),
        ] {
            for p in list.into_iter().flatten().filter(|p| !names.contains(p)) {
                self.note(
                    format!("{what} processes"),
                    format!("names `{p}`, which [processes] does not declare; left out"),
                );
            }
        }
        for vm in vms.iter().filter(|v| v.processes.is_empty()) {
            self.size_leaves(vm);
        }
        if self.groups.is_empty() {
            let body: Vec<Value> = services
                .iter()
                .map(|s| Value::Object(s.body.clone()))
                .collect();
            if !body.is_empty() {
                self.set(decl::SERVICES.key, Value::Array(body));
            }
            for (name, c, _) in checks {
                self.leaves
                    .insert(vec!["checks".into(), name], Value::Object(c));
            }
            return;
        }
        let groups = std::mem::take(&mut self.groups);
        let out: Map<String, Value> = groups
            .into_iter()
            .map(|(name, cmd)| {
                let g = group(&name, cmd, &services, &checks, &vms);
                (name, Value::Object(g))
            })
            .collect();
        self.set("process_groups", Value::Object(out));
    }

    fn size_leaves(&mut self, vm: &Vm) {
        if let Some(s) = &vm.size {
            self.set(decl::SIZE.key, json!(s));
        }
        if let Some(m) = &vm.memory {
            self.set(decl::MEMORY.key, json!(m));
        }
    }

    /// One idle policy for the Machines: the services' when they agree.
    fn place_idle(&mut self) {
        let Some(first) = self.services.first().map(|s| s.idle.clone()) else {
            return;
        };
        if self.services.iter().any(|s| s.idle != first) {
            self.note(
                "auto_stop_machines",
                "the services differ in auto_stop_machines, auto_start_machines or min_machines_running; flotilla's idle policy is one per Machine, the first service's is written",
            );
        }
        self.set(
            decl::IDLE_MODE.key,
            json!(first.mode.as_deref().unwrap_or("off")),
        );
        if let Some(a) = first.autostart {
            self.set(decl::IDLE_AUTOSTART.key, json!(a));
        }
        if let Some(n) = first.min_running.filter(|n| *n != 0) {
            self.set(decl::IDLE_MIN_RUNNING.key, json!(n));
        }
    }

    fn document(&self, app: Option<&str>) -> Document {
        let mut doc = Document::default();
        let prefix = app.filter(|a| platform::app_name_problem(&format!("{a}-example")).is_none());
        if let Some(a) = prefix {
            doc.naming
                .push((decl::NAMING_APP.key, format!("{a}-{{{{ tenant.name }}}}")));
        }
        doc.defaults = self.leaves.clone();
        doc.tenants.push(Entry {
            name: "example".into(),
            app: app.unwrap_or_default().to_string(),
            tier: None,
            keys: Vec::new(),
            leaves: BTreeMap::new(),
            notes: Vec::new(),
        });
        doc
    }
}

/// One process group: its command, and the services, checks and size that are its own
/// or everyone's.
fn group(
    name: &str,
    cmd: Vec<String>,
    services: &[Service],
    checks: &[Check],
    vms: &[Vm],
) -> Map<String, Value> {
    let mine = |p: &[String]| p.is_empty() || p.iter().any(|x| x == name);
    let mut g = Map::new();
    g.insert("cmd".into(), json!(cmd));
    let svc: Vec<Value> = services
        .iter()
        .filter(|s| mine(&s.processes))
        .map(|s| Value::Object(s.body.clone()))
        .collect();
    if !svc.is_empty() {
        g.insert("services".into(), Value::Array(svc));
    }
    let ch: Map<String, Value> = checks
        .iter()
        .filter(|c| mine(&c.2))
        .map(|(n, c, _)| (n.clone(), Value::Object(c.clone())))
        .collect();
    if !ch.is_empty() {
        g.insert("checks".into(), Value::Object(ch));
    }
    if let Some(vm) = vms.iter().find(|v| v.processes.iter().any(|x| x == name)) {
        if let Some(s) = &vm.size {
            g.insert("size".into(), json!(s));
        }
        if let Some(m) = &vm.memory {
            g.insert("memory".into(), json!(m));
        }
    }
    g
}

/// The restart policies the spec accepts.
const RESTART_POLICIES: &[&str] = crate::resource::values::RestartPolicy::KNOWN;

fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

fn memory_text(mb: u32) -> String {
    if mb.is_multiple_of(1024) {
        format!("{}gb", mb / 1024)
    } else {
        format!("{mb}mb")
    }
}

/// `1024`, `"1024"`, `"1gb"`, `"512mb"` (any case) as MB.
fn memory_mb(v: &toml::Value) -> Option<u32> {
    match v {
        toml::Value::Integer(n) => u32::try_from(*n).ok(),
        toml::Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            let (num, mult) = if let Some(n) = s.strip_suffix("gb") {
                (n, 1024)
            } else if let Some(n) = s.strip_suffix("mb") {
                (n, 1)
            } else {
                (s.as_str(), 1)
            };
            num.trim().parse::<u32>().ok()?.checked_mul(mult)
        }
        _ => None,
    }
}

/// `10`, `"10"`, `"10gb"` (any case) as GB.
fn size_gb(v: &toml::Value) -> Option<u32> {
    match v {
        toml::Value::Integer(n) => u32::try_from(*n).ok(),
        toml::Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            s.strip_suffix("gb").unwrap_or(&s).trim().parse().ok()
        }
        _ => None,
    }
}

/// A command line split into words as a POSIX shell would (quotes and backslashes, no
/// expansions); `None` for unbalanced quotes or an empty line.
fn split_command(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    (!words.is_empty()).then_some(words)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const FULL: &str = r#"
app = "shop"
primary_region = "fra"
kill_signal = "SIGINT"
kill_timeout = 30
swap_size_mb = 512
console_command = "/rails/bin/rails console"

[build]
  image = "registry.fly.io/shop:v42"

[deploy]
  strategy = "rolling"

[env]
  PORT = "8080"

[processes]
  web = "bin/rails server -b '0.0.0.0'"
  worker = "bundle exec sidekiq"

[http_service]
  internal_port = 8080
  force_https = true
  auto_stop_machines = "suspend"
  auto_start_machines = true
  min_machines_running = 1
  processes = ["web"]

[[vm]]
  size = "dedicated-cpu-1x"
  memory = "4gb"
  processes = ["worker"]

[[vm]]
  size = "shared-cpu-2x"

[metrics]
  port = 9091
  path = "/metrics"

[[statics]]
  guest_path = "/rails/public"
  url_prefix = "/"

[[files]]
  guest_path = "/etc/motd"
  raw_value = "hello"

[[restart]]
  policy = "always"

[mounts]
  source = "data"
  destination = "/data"
  initial_size = "10gb"
"#;

    #[test]
    fn restart_retries_for_every_machine_become_restart_max_retries() {
        let toml = "app = \"a\"\nprimary_region = \"iad\"\n[build]\n  image = \"i\"\n[[restart]]\n  policy = \"on-failure\"\n  retries = 5\n";
        let out = convert(toml, "acme").unwrap();
        assert!(out.spec.contains("restart_max_retries: 5"), "{}", out.spec);
        assert!(out.spec.contains("restart: \"on-failure\""), "{}", out.spec);
        assert!(out.unmapped.is_empty(), "{:?}", out.unmapped);
        let bad = convert(&toml.replace("retries = 5", "retries = -1"), "acme").unwrap();
        assert!(!bad.spec.contains("restart_max_retries"), "{}", bad.spec);
        assert_eq!(bad.unmapped.len(), 1);
    }

    #[test]
    fn emits_the_machine_config_keys_by_their_shared_names() {
        let out = convert(FULL, "acme").unwrap();
        assert_eq!(
            out.settings,
            [
                "env",
                "files",
                "idle",
                "image",
                "init",
                "metrics",
                "process_groups",
                "region",
                "restart",
                "size",
                "statics",
                "stop_config",
                "volume",
            ]
            .map(String::from)
        );
        let spec = &out.spec;
        for want in [
            "stop_config: { signal: \"SIGINT\", timeout: \"30s\" }",
            "swap_size_mb: 512",
            "cmd: [\"bin/rails\", \"server\", \"-b\", \"0.0.0.0\"]",
            "size: \"performance-1x\"",
            "mode: \"suspend\"",
            "min_running: 1",
        ] {
            assert!(spec.contains(want), "{want} in\n{spec}");
        }
        let keys: Vec<&str> = out.unmapped.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(keys, ["console_command", "deploy.strategy"], "{spec}");
        assert!(spec.contains("#   deploy.strategy: flotilla rolls Machines out itself"));
    }

    #[test]
    fn a_credential_in_any_value_is_cut_out() {
        let token = ["ghp", "_", "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"].concat();
        let text = format!(
            "app = \"x\"\nprimary_region = \"fra\"\n[build]\nimage = \"i:1\"\n[processes]\nweb = \"run --token {token}\"\n"
        );
        let out = convert(&text, "acme").unwrap();
        assert!(!out.spec.contains(&token), "{}", out.spec);
        assert!(out.spec.contains("(redacted)"), "{}", out.spec);
        assert!(
            out.unmapped.iter().any(|u| u.key == "(values)"),
            "{:?}",
            out.unmapped
        );
    }

    #[test]
    fn parse_errors_name_line_and_column() {
        let e = convert("app = \"x\"\n[http_service\n", "acme").unwrap_err();
        let m = e.mark.unwrap();
        assert_eq!((m.line, m.col), (2, 14), "{e}");
        assert!(e.message.starts_with("not valid TOML"), "{e}");
    }

    #[test]
    fn command_lines_split_like_a_shell() {
        assert_eq!(
            split_command(r#"sh -c "echo \"hi\" && x" 'a b'"#).unwrap(),
            ["sh", "-c", "echo \"hi\" && x", "a b"]
        );
        assert_eq!(split_command("a 'b"), None);
        assert_eq!(split_command("   "), None);
    }

    #[test]
    fn sizes_and_memory_read_flyctls_spellings() {
        assert_eq!(memory_mb(&toml::Value::String("1GB".into())), Some(1024));
        assert_eq!(memory_mb(&toml::Value::String("512mb".into())), Some(512));
        assert_eq!(memory_mb(&toml::Value::Integer(2048)), Some(2048));
        assert_eq!(size_gb(&toml::Value::String("10gb".into())), Some(10));
        let mut c = Conv::default();
        assert_eq!(
            c.size("vm", None, Some("performance".into()), Some(2))
                .as_deref(),
            Some("performance-2x")
        );
        assert_eq!(
            c.size("vm", Some("dedicated-cpu-2x".into()), None, None)
                .as_deref(),
            Some("performance-2x")
        );
        assert_eq!(c.size("vm", Some("huge".into()), None, None), None);
        assert_eq!(c.unmapped.len(), 1);
    }
}
