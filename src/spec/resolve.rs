//! Resolution: the effective settings of one layer stack → validated, typed settings.
//!
//! One phase per concern (placement, size and memory, count and idle, env and metadata,
//! secrets, volume), each reading through the declarations in [`crate::spec::decl`] and
//! validating with the rules in [`crate::platform`]. Every problem names the document path
//! where the offending value was written (`Effective::origin`). A stack resolves once per
//! tier for plain tenants, so nothing here is on the per-tenant path of large specs.

use std::collections::BTreeMap;

mod machine_config;

use crate::diag::{Diagnostic, Mark};
use crate::platform::{self, Preset};
use crate::resource::{Check, IdleMode, IdlePolicy, IpKind, SecretSource, Service, Usage};
use crate::spec::decl::{self, Kind, Setting};
use crate::spec::expand::{Sink, err};
use crate::spec::settings::Effective;
use crate::spec::templates::{Templates, is_template};

/// Validated, typed settings of one layer stack.
pub(crate) struct Resolved {
    pub image: String,
    pub region: String,
    pub fallback_regions: Vec<String>,
    pub preset: &'static Preset,
    pub memory_mb: u32,
    pub count: u32,
    /// Standby Machines per Machine (`standbys`); 0 with a volume.
    pub standbys: u32,
    pub idle: IdlePolicy,
    pub services: Option<Vec<Service>>,
    pub checks: Option<BTreeMap<String, Check>>,
    pub restart: Option<String>,
    /// The pass-through Machine config fields (texts may be templates) and where each
    /// template was written.
    pub extras: crate::resource::MachineExtras,
    pub extras_sites: machine_config::TemplateSites,
    /// (key, template source, origin path, mark)
    pub env: Vec<(String, String, String, Mark)>,
    pub metadata: Vec<(String, String, String, Mark)>,
    pub secrets: Vec<(String, SecretSource, String, Mark)>,
    pub volume: Option<VolumeSettings>,
    pub snapshot_before_destroy: bool,
    /// `backups.export`, when set.
    pub export: Option<ExportSettings>,
    pub prevent_destroy: bool,
    /// Shared by every resource expanded from these settings.
    pub usage: std::sync::Arc<Usage>,
    pub network: NetworkSettings,
    /// `processes` and `files` (`spec::procs`).
    pub run: crate::spec::procs::RunSettings,
    /// `process_groups`, each resolved over these settings (empty: none declared).
    pub groups: Vec<crate::spec::groups::GroupSettings>,
}

/// The app's declared IP addresses and custom domains.
#[derive(Default)]
pub(crate) struct NetworkSettings {
    /// Each kind once, in the order declared.
    pub ips: Vec<IpKind>,
    /// The Flycast address's network (`flycast_network`).
    pub flycast_network: Option<String>,
    /// (template source, origin path, mark) of each hostname.
    pub hostnames: Vec<(String, String, Mark)>,
}

/// `backups.export` as written: the destination is still a template (rendered per
/// tenant in `expand`); credentials are references, never values.
pub(crate) struct ExportSettings {
    /// (template source, origin path, mark)
    pub to: (String, String, Mark),
    pub endpoint: Option<String>,
    pub credentials: Vec<(String, SecretSource)>,
    pub encryption_key: Option<SecretSource>,
    pub image: String,
    pub keep: u32,
}

pub(crate) struct VolumeSettings {
    pub name: String,
    pub size_gb: u32,
    pub mount: String,
    pub snapshot_retention: u32,
    pub auto_backup: bool,
    pub encrypted: bool,
    pub restore_from: Option<RestoreSettings>,
}

/// `volume.restore_from`, as templates: rendered per tenant, checked against the
/// fleet's tenants once all are expanded.
pub(crate) struct RestoreSettings {
    /// (template source, origin path, mark) of the source tenant's name.
    pub tenant: (String, String, Mark),
    /// (template source, origin path, mark) of `latest` or a snapshot id.
    pub snapshot: (String, String, Mark),
}

/// Where the Machines run.
struct Placement {
    image: Option<String>,
    region: Option<String>,
    fallback_regions: Vec<String>,
}

/// (key, template source, origin path, mark) of env and metadata entries.
type TemplatedEntries = Vec<(String, String, String, Mark)>;

/// Validates one layer stack's effective settings, phase by phase.
struct Resolver<'r, 'e> {
    sink: &'r mut Sink,
    templates: &'r mut Templates,
    eff: &'r Effective<'e>,
    /// Names the stack in messages ("tenant `alice`").
    what: &'r str,
    /// The resource address diagnostics carry.
    address: &'r str,
    /// No error so far.
    ok: bool,
}

/// Validates the merged settings of one layer stack and reads them into types, with its
/// process groups (`spec::groups`). `None` when any value is wrong (every problem is
/// reported).
pub(crate) fn resolve(
    sink: &mut Sink,
    templates: &mut Templates,
    eff: &Effective<'_>,
    what: &str,
    address: &str,
) -> Option<Resolved> {
    let mut base = resolve_stack(sink, templates, eff, what, address)?;
    if eff.has(&decl::PROCESS_GROUPS) {
        base.groups = crate::spec::groups::resolve(sink, templates, eff, what, address, &base)?;
    }
    Some(base)
}

/// One layer stack's settings, without its process groups.
pub(crate) fn resolve_stack(
    sink: &mut Sink,
    templates: &mut Templates,
    eff: &Effective<'_>,
    what: &str,
    address: &str,
) -> Option<Resolved> {
    let mut r = Resolver {
        sink,
        templates,
        eff,
        what,
        address,
        ok: true,
    };
    let placement = r.placement();
    let (preset, memory_mb) = r.size_and_memory();
    let count = r.count();
    let idle = r.idle(memory_mb, count);
    let services = eff.services();
    r.idle_needs_services(&idle, services.as_ref());
    let env = r.env();
    let metadata = r.metadata();
    let secrets = r.secrets(&env);
    let volume = r.volume();
    let standbys = r.standbys(volume.is_some());
    let export = r.export();
    let network = r.network();
    let (extras, extras_sites) = r.machine_extras();
    let (run, run_ok) = crate::spec::procs::resolve(r.sink, r.templates, eff, address, &secrets);
    if !r.ok || !run_ok {
        return None;
    }
    Some(Resolved {
        image: placement.image?,
        region: placement.region?,
        fallback_regions: placement.fallback_regions,
        preset: preset?,
        memory_mb,
        count,
        standbys,
        idle,
        services,
        checks: eff.checks(),
        restart: eff.value(&decl::RESTART).map(str::to_string),
        extras,
        extras_sites,
        env,
        metadata,
        secrets,
        volume,
        snapshot_before_destroy: eff.or_default(&decl::SNAPSHOT_BEFORE_DESTROY),
        export,
        prevent_destroy: eff.or_default(&decl::PREVENT_DESTROY),
        usage: std::sync::Arc::new(eff.usage()),
        network,
        run,
        groups: Vec::new(),
    })
}

/// Only `backups.export` of one layer stack (the defaults' alone: what a removed tenant
/// is exported with); `None` when unset or wrong.
pub(crate) fn export_only(
    sink: &mut Sink,
    templates: &mut Templates,
    eff: &Effective<'_>,
) -> Option<ExportSettings> {
    let mut r = Resolver {
        sink,
        templates,
        eff,
        what: "defaults",
        address: "defaults",
        ok: true,
    };
    let export = r.export();
    r.ok.then_some(export).flatten()
}

impl Resolver<'_, '_> {
    /// Reports a problem; an error makes the stack unusable.
    fn add(&mut self, d: Diagnostic) {
        if d.is_error() {
            self.ok = false;
        }
        self.sink.add(d.address(self.address.to_string()));
    }

    /// An error at the place a setting's effective value was written.
    fn error_at<K: Kind>(&mut self, s: &Setting<K>, msg: String) -> Diagnostic {
        err(msg, &self.eff.origin_of(s), self.eff.mark_of(s))
    }

    /// A template that does not compile is reported here (not failing the stack); the
    /// value is skipped when rendering.
    fn compile(&mut self, src: &str, path: &str, mark: Mark) {
        if is_template(src)
            && let Err(e) = self.templates.compile(src)
        {
            self.sink.add(
                err(format!("template error: {e}"), path, mark).address(self.address.to_string()),
            );
        }
    }

    /// A required text setting; its absence names the stack.
    fn required(&mut self, s: &Setting<decl::Text>, hint: &str) -> Option<(String, Mark)> {
        if !self.eff.has(s) {
            let d = err(
                format!("{} has no {}", self.what, s.key),
                self.eff.own_path(),
                self.eff.merged.mark,
            )
            .hint(hint);
            self.add(d);
        }
        self.eff.set(s).map(|(v, m)| (v.to_string(), m))
    }

    /// IP kinds (each once), the Flycast network (only with `private_v6`) and hostname
    /// templates (compiled here; rendered and checked per app in `expand`).
    fn network(&mut self) -> NetworkSettings {
        let mut ips: Vec<IpKind> = Vec::new();
        let listed = self.eff.strings(&decl::IPS);
        let origin = self.eff.origin_of(&decl::IPS);
        for (i, (name, mark)) in listed.iter().enumerate() {
            // The checker refused unknown kinds already.
            let Some(kind) = IpKind::from_name(name) else {
                continue;
            };
            if let Some(first) = listed[..i].iter().position(|(n, _)| n == name) {
                let d = err(
                    format!(
                        "IP kind `{name}` is listed twice ({origin}[{first}] at {}:{} and {origin}[{i}] at {}:{})",
                        listed[first].1.line, listed[first].1.col, mark.line, mark.col
                    ),
                    &crate::spec::yaml::indexed(&origin, i),
                    *mark,
                )
                .hint("an app gets one address of each kind; list it once");
                self.add(d);
                continue;
            }
            ips.push(kind);
        }
        let flycast_network = self
            .eff
            .set(&decl::FLYCAST_NETWORK)
            .map(|(n, m)| (n.to_string(), m));
        if let Some((_, mark)) = &flycast_network
            && !ips.contains(&IpKind::PrivateV6)
        {
            let d =
                Diagnostic::warning("flycast_network has no effect without `private_v6` in `ips`")
                    .path(self.eff.origin_of(&decl::FLYCAST_NETWORK))
                    .at(*mark)
                    .hint("add `private_v6` to `ips`, or remove `flycast_network`");
            self.add(d);
        }
        let hostnames = self.eff.strings(&decl::HOSTNAMES);
        let origin = self.eff.origin_of(&decl::HOSTNAMES);
        let hostnames = hostnames
            .into_iter()
            .enumerate()
            .map(|(i, (src, mark))| {
                let path = crate::spec::yaml::indexed(&origin, i);
                self.compile(&src, &path, mark);
                (src, path, mark)
            })
            .collect();
        NetworkSettings {
            ips,
            flycast_network: flycast_network.map(|(n, _)| n),
            hostnames,
        }
    }

    /// Image, region and fallback regions.
    fn placement(&mut self) -> Placement {
        let image = self.required(
            &decl::IMAGE,
            "set `image:` in defaults, its tier or the entry (e.g. registry.fly.io/app:1.0)",
        );
        let region = self.required(
            &decl::REGION,
            "set `region:` (e.g. iad) in defaults, its tier or the entry",
        );
        if let Some((r, m)) = &region {
            let origin = self.eff.origin_of(&decl::REGION);
            match platform::known_region(r) {
                Err(p) => self.add(err(p.message, &origin, *m).hint(p.hint)),
                Ok(known) => self.removed_region(known, &origin, *m),
            }
        }
        let primary = region.as_ref().map(|r| r.0.as_str());
        let fallback_regions = self.fallback_regions(primary);
        Placement {
            image: image.map(|v| v.0),
            region: region.map(|v| v.0),
            fallback_regions,
        }
    }

    /// A warning for a region Fly has removed (still priced at earlier dates).
    fn removed_region(&mut self, region: &platform::Region, path: &str, mark: Mark) {
        if let Some(problem) = region.removal_problem() {
            self.add(
                Diagnostic::warning(problem.message)
                    .path(path.to_string())
                    .at(mark)
                    .hint(problem.hint),
            );
        }
    }

    /// Fallback regions must be known, and neither the primary nor repeated (warnings).
    /// Returns the known ones.
    fn fallback_regions(&mut self, primary: Option<&str>) -> Vec<String> {
        let fallback = self.eff.strings(&decl::FALLBACK_REGIONS);
        if fallback.is_empty() {
            return Vec::new();
        }
        let origin = self.eff.origin_of(&decl::FALLBACK_REGIONS);
        for (i, (r, m)) in fallback.iter().enumerate() {
            let p = crate::spec::yaml::indexed(&origin, i);
            if let Err(problem) = platform::known_region(r) {
                self.add(err(problem.message, &p, *m).hint(problem.hint));
            } else if let Some(problem) = platform::any_region(r).and_then(|k| k.removal_problem())
            {
                self.add(
                    Diagnostic::warning(problem.message)
                        .path(p)
                        .at(*m)
                        .hint(problem.hint),
                );
            } else if primary == Some(r.as_str()) {
                self.add(
                    Diagnostic::warning(format!("fallback region `{r}` is the primary region"))
                        .path(p)
                        .at(*m),
                );
            } else if fallback[..i].iter().any(|(o, _)| o == r) {
                self.add(
                    Diagnostic::warning(format!("fallback region `{r}` is listed twice"))
                        .path(p)
                        .at(*m),
                );
            }
        }
        fallback
            .into_iter()
            .map(|f| f.0)
            .filter(|r| platform::region(r).is_some())
            .collect()
    }

    /// The preset, and memory within its range (the preset's base memory by default).
    fn size_and_memory(&mut self) -> (Option<&'static Preset>, u32) {
        let eff = self.eff;
        let (size, size_mark) = eff.set(&decl::SIZE).unwrap_or((
            decl::SIZE.default_value().unwrap_or_default(),
            eff.merged.mark,
        ));
        let preset = match platform::known_preset(size) {
            Ok(p) => p,
            Err(problem) => {
                let d =
                    err(problem.message, &eff.origin_of(&decl::SIZE), size_mark).hint(problem.hint);
                self.add(d);
                return (None, 0);
            }
        };
        let memory = eff.set(&decl::MEMORY);
        let memory_mb = memory.map_or(preset.base_memory_mb, |m| m.0);
        if let Some(problem) = platform::memory_problem(preset, memory_mb) {
            let (path, mark) = match memory {
                Some((_, m)) => (eff.origin_of(&decl::MEMORY), m),
                None => (eff.origin_of(&decl::SIZE), size_mark),
            };
            self.add(err(problem.message, &path, mark).hint(problem.hint));
        }
        (Some(preset), memory_mb)
    }

    /// The Machine count, within what one entry may declare.
    fn count(&mut self) -> u32 {
        let count = self.eff.or_default(&decl::COUNT);
        let (lo, hi) = decl::COUNT.range();
        if !(lo..=hi).contains(&i64::from(count)) {
            let d = self.error_at(
                &decl::COUNT,
                format!("count {count} is out of range ({lo}–{hi})"),
            );
            self.add(d);
        }
        count
    }

    /// Standbys per Machine, within the accepted range, and none for a Machine with a
    /// volume: a standby cannot mount its primary's volume (Fly attaches a volume to one
    /// Machine), so it would start without the data.
    fn standbys(&mut self, has_volume: bool) -> u32 {
        let n = self.eff.or_default(&decl::STANDBYS);
        let (lo, hi) = decl::STANDBYS.range();
        if !(lo..=hi).contains(&i64::from(n)) {
            let d = self
                .error_at(
                    &decl::STANDBYS,
                    format!("standbys {n} is out of range ({lo}–{hi})"),
                )
                .hint(
                    "one standby is what flyctl makes; Fly starts it when the primary's host fails",
                );
            self.add(d);
        }
        if n > 0 && has_volume {
            let d = self
                .error_at(
                    &decl::STANDBYS,
                    format!("{} has a volume, so its Machines cannot have standbys", self.what),
                )
                .hint("a standby cannot mount its primary's volume (a volume attaches to one Machine); set `standbys: 0` here, or keep the data off the volume");
            self.add(d);
        }
        n
    }

    /// The idle policy: suspend only for small Machines, min_running within the count.
    fn idle(&mut self, memory_mb: u32, count: u32) -> IdlePolicy {
        let idle = self.eff.idle();
        if idle.mode == IdleMode::Suspend
            && let Some(msg) = platform::suspend_problem(memory_mb)
        {
            let d = self
                .error_at(&decl::IDLE_MODE, msg)
                .hint("use `idle: { mode: stop }` for this size, or memory of 2gb or less");
            self.add(d);
        }
        if idle.min_running > count {
            let d = self.error_at(
                &decl::IDLE_MIN_RUNNING,
                format!(
                    "min_running {} is more than the {count} Machines declared",
                    idle.min_running
                ),
            );
            self.add(d);
        }
        idle
    }

    /// Fly's proxy idles a Machine only through a service (a warning).
    fn idle_needs_services(&mut self, idle: &IdlePolicy, services: Option<&Vec<Service>>) {
        if idle.mode == IdleMode::Off || services.is_some_and(|s| !s.is_empty()) {
            return;
        }
        let d = Diagnostic::warning(format!(
            "idle mode `{}` has no effect without services: Fly's proxy stops or suspends a Machine only through a service",
            idle.mode.as_str()
        ))
        .path(self.eff.origin_of(&decl::IDLE_MODE))
        .at(self.eff.mark_of(&decl::IDLE_MODE))
        .hint("declare `services:` with the port the Machine serves, or use `idle: { mode: off }`");
        self.add(d);
    }

    /// Environment variables: valid names, compilable templates.
    fn env(&mut self) -> TemplatedEntries {
        let entries = self.eff.text_map(&decl::ENV);
        if entries.is_empty() {
            return Vec::new();
        }
        let origin = self.eff.origin_of(&decl::ENV);
        let mut env = Vec::with_capacity(entries.len());
        for (k, v, m) in entries {
            let p = crate::spec::yaml::concat(&[&origin, ".", &k]);
            if !platform::is_env_name(&k) {
                self.add(
                    err(
                        format!("`{k}` is not a valid environment variable name"),
                        &p,
                        m,
                    )
                    .hint("use letters, digits and underscores, not starting with a digit"),
                );
            }
            self.compile(&v, &p, m);
            env.push((k, v, p, m));
        }
        env
    }

    /// Metadata: no reserved keys, compilable templates.
    fn metadata(&mut self) -> TemplatedEntries {
        let entries = self.eff.text_map(&decl::METADATA);
        if entries.is_empty() {
            return Vec::new();
        }
        let origin = self.eff.origin_of(&decl::METADATA);
        let mut metadata = Vec::with_capacity(entries.len());
        for (k, v, m) in entries {
            let p = crate::spec::yaml::concat(&[&origin, ".", &k]);
            if platform::is_reserved_metadata_key(&k) {
                self.add(
                    err(format!("metadata key `{k}` is reserved"), &p, m).hint(
                        "keys starting with `flotilla_` or `fly_` are set by flotilla and Fly",
                    ),
                );
            }
            self.compile(&v, &p, m);
            metadata.push((k, v, p, m));
        }
        metadata
    }

    /// Secrets become environment variables: valid names, not also an env variable.
    fn secrets(&mut self, env: &TemplatedEntries) -> Vec<(String, SecretSource, String, Mark)> {
        let entries = self.eff.secrets();
        if entries.is_empty() {
            return Vec::new();
        }
        let origin = self.eff.origin_of(&decl::SECRETS);
        let mut secrets = Vec::with_capacity(entries.len());
        for (name, src, m) in entries {
            let p = crate::spec::yaml::concat(&[&origin, ".", &name]);
            if !platform::is_env_name(&name) {
                self.add(
                    err(format!("`{name}` is not a valid secret name"), &p, m).hint(
                        "secrets become environment variables: use letters, digits and underscores",
                    ),
                );
            }
            if let Some(e) = env.iter().find(|e| e.0 == name) {
                self.add(
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
        secrets
    }

    /// `backups.export`: a destination (`s3://`), credential names that can be
    /// environment variables, `keep` within bounds.
    fn export(&mut self) -> Option<ExportSettings> {
        let eff = self.eff;
        if !eff.has(&decl::EXPORT) {
            return None;
        }
        let origin = eff.origin_of(&decl::EXPORT_TO);
        let to = match self.required(
            &decl::EXPORT_TO,
            "give the destination, e.g. `to: \"s3://my-backups/{{ tenant.name }}\"`",
        ) {
            Some((src, mark)) => {
                self.compile(&src, &origin, mark);
                if !is_template(&src) && export_target_problem(&src).is_some() {
                    let d = self
                        .error_at(&decl::EXPORT_TO, format!("export destination `{src}` is not an s3:// URL"))
                        .hint("write `s3://BUCKET/PREFIX`; set `endpoint` for another S3-compatible store");
                    self.add(d);
                }
                (src, origin, mark)
            }
            None => (String::new(), origin, eff.merged.mark),
        };
        let mut credentials = Vec::new();
        for (name, src, m) in eff.secret_refs(&decl::EXPORT_CREDENTIALS) {
            if !platform::is_env_name(&name) {
                let p = format!("{}.{name}", eff.origin_of(&decl::EXPORT_CREDENTIALS));
                self.add(
                    err(format!("`{name}` is not a valid credential name"), &p, m)
                        .hint("credentials become environment variables of the export Machine: use letters, digits and underscores"),
                );
            }
            credentials.push((name, src));
        }
        let keep = eff.or_default(&decl::EXPORT_KEEP);
        let (lo, hi) = decl::EXPORT_KEEP.range();
        if !(lo..=hi).contains(&i64::from(keep)) {
            let d = self.error_at(
                &decl::EXPORT_KEEP,
                format!("keep {keep} is outside {lo}–{hi}"),
            );
            self.add(d);
        }
        Some(ExportSettings {
            to,
            endpoint: eff.value(&decl::EXPORT_ENDPOINT).map(str::to_string),
            credentials,
            encryption_key: eff
                .value(&decl::EXPORT_ENCRYPTION_KEY)
                .and_then(crate::spec::settings::read_secret),
            image: eff.or_default(&decl::EXPORT_IMAGE).to_string(),
            keep,
        })
    }

    /// The volume: a valid name, size and retention within Fly's limits, a mount path.
    fn volume(&mut self) -> Option<VolumeSettings> {
        let eff = self.eff;
        if !eff.has(&decl::VOLUME) {
            return None;
        }
        let name = eff.or_default(&decl::VOLUME_NAME).to_string();
        if let Some(problem) = platform::volume_name_problem(&name) {
            let d = self.error_at(&decl::VOLUME_NAME, format!("volume name `{name}` {problem}"))
                .hint("Fly volume names take lowercase letters, digits and underscores, up to 30 characters (e.g. `my_data`)");
            self.add(d);
        }
        let size_gb = eff.or_default(&decl::VOLUME_SIZE_GB);
        if let Some(msg) = platform::volume_size_problem(size_gb) {
            let d = self.error_at(&decl::VOLUME_SIZE_GB, msg);
            self.add(d);
        }
        let snapshot_retention = eff.or_default(&decl::VOLUME_SNAPSHOT_RETENTION);
        if let Some(msg) = platform::snapshot_retention_problem(snapshot_retention) {
            let d = self.error_at(&decl::VOLUME_SNAPSHOT_RETENTION, msg);
            self.add(d);
        }
        let mount = eff.value(&decl::VOLUME_MOUNT);
        self.check_mount(mount);
        Some(VolumeSettings {
            name,
            size_gb,
            mount: mount.unwrap_or_default().to_string(),
            snapshot_retention,
            auto_backup: eff.or_default(&decl::VOLUME_AUTO_BACKUP),
            encrypted: eff.or_default(&decl::VOLUME_ENCRYPTED),
            restore_from: self.restore_from(),
        })
    }

    /// `volume.restore_from`: a tenant (required) and a snapshot, both templates.
    fn restore_from(&mut self) -> Option<RestoreSettings> {
        let eff = self.eff;
        if !eff.has(&decl::VOLUME_RESTORE_FROM) {
            return None;
        }
        let Some((tenant, tmark)) = eff.set(&decl::VOLUME_RESTORE_TENANT) else {
            let d = self
                .error_at(
                    &decl::VOLUME_RESTORE_FROM,
                    "volume.restore_from names no tenant".to_string(),
                )
                .hint("add `tenant: NAME` (and optionally `snapshot: latest` or a snapshot id)");
            self.add(d);
            return None;
        };
        let tenant = (
            tenant.to_string(),
            eff.origin_of(&decl::VOLUME_RESTORE_TENANT),
            tmark,
        );
        let snapshot = (
            eff.or_default(&decl::VOLUME_RESTORE_SNAPSHOT).to_string(),
            eff.origin_of(&decl::VOLUME_RESTORE_SNAPSHOT),
            eff.mark_of(&decl::VOLUME_RESTORE_SNAPSHOT),
        );
        for (src, path, mark) in [&tenant, &snapshot] {
            self.compile(src, path, *mark);
        }
        Some(RestoreSettings { tenant, snapshot })
    }

    /// A volume needs an absolute mount path other than `/`.
    fn check_mount(&mut self, mount: Option<&str>) {
        let d = match mount {
            None => self
                .error_at(&decl::VOLUME, "the volume has no mount path".to_string())
                .hint("add `mount: /data` (an absolute path inside the Machine)"),
            Some(p) => match platform::mount_path_problem(p) {
                Some(msg) => self.error_at(&decl::VOLUME_MOUNT, msg),
                None => return,
            },
        };
        self.add(d);
    }
}

/// Why `url` cannot be an export destination (`s3://BUCKET[/PREFIX]`), if it cannot.
pub(crate) fn export_target_problem(url: &str) -> Option<&'static str> {
    match url.strip_prefix("s3://") {
        None => Some("is not an s3:// URL"),
        Some(rest) if rest.split('/').next().is_none_or(str::is_empty) => Some("names no bucket"),
        Some(rest) if rest.chars().any(char::is_whitespace) => Some("contains whitespace"),
        Some(_) => None,
    }
}
