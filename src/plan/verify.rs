//! Re-validation of a saved plan before it is applied.
//!
//! A saved plan may come from someone else, and its seal ([`crate::plan::saved`]) proves
//! at most who made it. So the desired state it carries is held to the rules a spec is
//! held to, through the same validators (`crate::platform`, `crate::spec::credentials`):
//! names, regions, sizes and memory, volume limits, env and secret names, token-shaped
//! values, secret sources, and the consistency of every address with its resource.
//! Every problem is a diagnostic naming the plan file and the resource address; nothing
//! here touches the network.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use crate::plan::saved::PlanDocument;
use crate::platform::{self, Problem};
use crate::resource::{
    Address, BackupSpec, IdleMode, Kind, META_FLEET, META_INDEX, META_MANAGED, META_PROTECT,
    META_ROLE, META_SECRETS, META_TENANT, MachineSpec, Owner, Resource, ResourceSet, SecretSource,
    SecretSpec, Spec, VolumeSpec,
};
use crate::spec::credentials::{in_resource, redact_all};

/// The flotilla metadata keys a planned Machine may carry.
const OWN_METADATA: [&str; 7] = [
    META_MANAGED,
    META_TENANT,
    META_ROLE,
    META_INDEX,
    META_SECRETS,
    META_FLEET,
    META_PROTECT,
];

/// A standby's own metadata key: `Some(expected)` — `K` and its primary's slot for
/// `SLOT.standby[K]`, `None` (the key does not belong) on any other address. `None` for
/// other keys.
fn standby_metadata(a: &Address, key: &str) -> Option<Option<String>> {
    match key {
        crate::resource::META_STANDBY => Some(a.standby_index().map(|k| k.to_string())),
        crate::resource::META_STANDBY_FOR => {
            Some(a.primary().map(|p| crate::resource::slot_text(&p)))
        }
        _ => None,
    }
}

/// Directories whose files are never secret sources.
const SYSTEM_DIRS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// Every problem of a saved plan's header and desired state (empty when it is sound).
pub fn check(doc: &PlanDocument, file: &Path) -> Diagnostics {
    let mut c = Checker {
        file: file.display().to_string(),
        doc,
        found: Diagnostics::new(),
    };
    c.header();
    if let Some(set) = &doc.desired {
        c.resources(set);
    }
    // Messages quote names and addresses; none may echo a credential.
    redact_all(&mut c.found);
    c.found
}

struct Checker<'a> {
    file: String,
    doc: &'a PlanDocument,
    found: Diagnostics,
}

impl Checker<'_> {
    fn error(&mut self, address: Option<&Address>, message: impl Into<String>) -> &mut Diagnostic {
        let mut d = Diagnostic::error(message).file(self.file.clone());
        if let Some(a) = address {
            d = d.address(a.to_string());
        }
        self.found.push(d);
        let last = self.found.0.len() - 1;
        &mut self.found.0[last]
    }

    fn problem(&mut self, address: &Address, p: Problem) {
        let d = self.error(Some(address), p.message);
        d.hint = Some(p.hint);
    }

    /// The hashes are well formed, and the tenant filter names tenants.
    fn header(&mut self) {
        for (what, value) in [
            ("spec_hash", &self.doc.spec_hash),
            ("observed_fingerprint", &self.doc.observed_fingerprint),
        ] {
            if !is_sha256(value) {
                self.error(
                    None,
                    format!(
                        "`{what}` is not a SHA-256 (`sha256:` and 64 hex digits, not all zero)"
                    ),
                );
            }
        }
        for t in &self.doc.tenants {
            if let Some(p) = platform::TENANT_NAME.problem(t) {
                self.error(None, format!("tenant filter `{t}` {p}"));
            }
        }
        match &self.doc.fingerprint_key {
            Some(SecretSource::Env(var)) if !platform::is_env_name(var) => {
                self.error(
                    None,
                    format!(
                        "fingerprint key variable `{var}` is not a valid environment variable name"
                    ),
                );
            }
            Some(SecretSource::File(f)) => {
                if let Some(why) = secret_file_problem(&self.doc.spec_file, f) {
                    self.error(None, format!("fingerprint key file `{f}` {why}")).hint = Some(
                        "secret files are read relative to the spec's directory and may not leave it".into(),
                    );
                }
            }
            Some(SecretSource::Unknown) => {
                self.error(None, "the fingerprint key has no source");
            }
            _ => {}
        }
    }

    fn resources(&mut self, set: &ResourceSet) {
        // A repeated address is refused while the file is read (`saved::load_with`).
        for r in set.iter() {
            self.credentials(r);
            self.ownership(r);
            match &r.spec {
                Spec::App(a) => {
                    if a.name != r.app || a.org != self.doc.org {
                        self.error(Some(&r.address), format!("app `{}` in org `{}` does not match the resource's app `{}` in org `{}`", a.name, a.org, r.app, self.doc.org));
                    }
                }
                Spec::Secret(s) => self.secret(&r.address, s),
                Spec::Volume(v) => self.volume(&r.address, v, set),
                Spec::BackupPolicy(b) => self.backup(&r.address, b, set),
                Spec::Machine(m) => self.machine(r, m, set),
                Spec::Ip(ip) => self.ip(&r.address, ip),
                Spec::Certificate(c) => self.certificate(&r.address, c),
            }
        }
    }

    /// The address names this kind of resource, of this owner, and the app name is valid.
    fn ownership(&mut self, r: &Resource) {
        let a = &r.address;
        if a.kind() != Some(r.kind()) || a.is_duplicate() {
            self.error(
                Some(a),
                format!("the address does not name a {} resource", r.kind()),
            );
        }
        match a.owner() {
            Some(Owner::Tenant(t)) if r.tenant.as_deref() == Some(t) => {}
            Some(Owner::SharedApp(_)) if r.tenant.is_none() => {}
            _ => {
                let owner = r.tenant.as_deref().unwrap_or("(a shared app)");
                self.error(
                    Some(a),
                    format!("the address does not belong to the resource's owner `{owner}`"),
                );
            }
        }
        if let Some(t) = &r.tenant
            && let Some(p) = platform::TENANT_NAME.problem(t)
        {
            self.error(Some(a), format!("tenant name `{t}` {p}"));
        }
        if let Some(p) = platform::app_name_problem(&r.app) {
            self.error(Some(a), format!("app name `{}` {p}", r.app));
        }
    }

    fn ip(&mut self, a: &Address, ip: &crate::resource::IpSpec) {
        if a.ip_kind() != Some(ip.ip_kind) {
            self.error(
                Some(a),
                format!("a {} address does not match its address", ip.ip_kind),
            );
        }
    }

    fn certificate(&mut self, a: &Address, c: &crate::resource::CertSpec) {
        if a.name() != Some(c.hostname.as_str()) {
            self.error(
                Some(a),
                format!("certificate `{}` does not match its address", c.hostname),
            );
        }
        if let Some(p) = crate::resource::network::hostname_problem(&c.hostname) {
            self.error(Some(a), format!("hostname `{}` {p}", c.hostname));
        }
    }

    fn secret(&mut self, a: &Address, s: &SecretSpec) {
        if a.name() != Some(s.name.as_str()) {
            self.error(
                Some(a),
                format!("secret `{}` does not match its address", s.name),
            );
        }
        if !platform::is_env_name(&s.name) {
            self.error(Some(a), format!("`{}` is not a valid secret name", s.name))
                .hint = Some(
                "secrets become environment variables: use letters, digits and underscores".into(),
            );
        }
        match &s.source {
            SecretSource::Env(var) if !platform::is_env_name(var) => {
                self.error(
                    Some(a),
                    format!("`{var}` is not a valid environment variable name"),
                );
            }
            SecretSource::Env(_) => {}
            SecretSource::File(f) => {
                if let Some(why) = secret_file_problem(&self.doc.spec_file, f) {
                    self.error(Some(a), format!("secret file `{f}` {why}")).hint = Some(
                        "secret files are read relative to the spec's directory and may not leave it".into(),
                    );
                }
            }
            SecretSource::Unknown => {
                self.error(Some(a), "the secret has no source (`env` or `file`)");
            }
        }
    }

    fn volume(&mut self, a: &Address, v: &VolumeSpec, set: &ResourceSet) {
        if a.name() != Some(v.name.as_str()) {
            self.error(
                Some(a),
                format!("volume `{}` does not match its address", v.name),
            );
        }
        if let Some(p) = platform::volume_name_problem(&v.name) {
            self.error(Some(a), format!("volume name `{}` {p}", v.name));
        }
        if let Some(msg) = platform::volume_size_problem(v.size_gb) {
            self.error(Some(a), msg);
        }
        self.regions(a, &v.region, &v.fallback_regions);
        if let Some(m) = &v.machine {
            self.refers(a, m, Kind::Machine, set);
        }
    }

    fn backup(&mut self, a: &Address, b: &BackupSpec, set: &ResourceSet) {
        if let Some(msg) = platform::snapshot_retention_problem(b.snapshot_retention) {
            self.error(Some(a), msg);
        }
        self.refers(a, &b.volume, Kind::Volume, set);
    }

    /// `target` is a resource of `kind` in the plan.
    fn refers(&mut self, a: &Address, target: &Address, kind: Kind, set: &ResourceSet) {
        if set.get(target).is_none_or(|r| r.kind() != kind) {
            self.error(
                Some(a),
                format!("it refers to {kind} `{target}`, which the plan does not declare"),
            );
        }
    }

    fn regions(&mut self, a: &Address, region: &str, fallback: &[String]) {
        for r in std::iter::once(region).chain(fallback.iter().map(String::as_str)) {
            if let Err(p) = platform::known_region(r) {
                self.problem(a, p);
            }
        }
    }

    fn machine(&mut self, r: &Resource, m: &MachineSpec, set: &ResourceSet) {
        let a = &r.address;
        if a.index() != Some(m.index) {
            self.error(
                Some(a),
                format!("Machine index {} does not match its address", m.index),
            );
        }
        if let Some(p) = platform::machine_name_problem(&m.name) {
            self.error(Some(a), format!("Machine name `{}` {p}", m.name));
        }
        self.regions(a, &m.region, &m.fallback_regions);
        self.guest(a, m);
        self.env(a, m);
        self.metadata(r, m);
        for mount in &m.mounts {
            self.refers(a, &mount.volume, Kind::Volume, set);
            if let Some(msg) = platform::mount_path_problem(&mount.path) {
                self.error(Some(a), msg);
            }
        }
        if m.image.trim().is_empty() {
            self.error(Some(a), "the Machine has no image");
        }
    }

    /// The size is a preset, the guest is that preset, memory is within its range.
    fn guest(&mut self, a: &Address, m: &MachineSpec) {
        let preset = match platform::known_preset(&m.size) {
            Ok(p) => p,
            Err(p) => return self.problem(a, p),
        };
        if preset.cpu_kind != m.guest.cpu_kind || preset.cpus != m.guest.cpus {
            self.error(
                Some(a),
                format!(
                    "the guest ({} × {}) is not size {}",
                    m.guest.cpus,
                    m.guest.cpu_kind.as_str(),
                    preset.name
                ),
            );
        }
        if let Some(p) = platform::memory_problem(preset, m.guest.memory_mb) {
            self.problem(a, p);
        }
        if m.idle.mode == IdleMode::Suspend
            && let Some(msg) = platform::suspend_problem(m.guest.memory_mb)
        {
            self.error(Some(a), msg);
        }
    }

    /// Env and secret names (the processes' too) are variable names; file paths are
    /// absolute; env values hold no credentials.
    fn env(&mut self, a: &Address, m: &MachineSpec) {
        for k in m.env.keys() {
            if !platform::is_env_name(k) {
                self.error(
                    Some(a),
                    format!("`{k}` is not a valid environment variable name"),
                )
                .hint =
                    Some("use letters, digits and underscores, not starting with a digit".into());
            }
        }
        for s in &m.secrets {
            if !platform::is_env_name(s) {
                self.error(Some(a), format!("`{s}` is not a valid secret name"));
            }
        }
        let processes = m.run.processes.iter().flatten();
        for k in processes.flat_map(|p| p.env.keys()) {
            if !platform::is_env_name(k) {
                self.error(
                    Some(a),
                    format!("process env `{k}` is not a valid environment variable name"),
                );
            }
        }
        for f in m.run.files.iter().flatten() {
            if !f.guest_path.starts_with('/') {
                self.error(
                    Some(a),
                    format!("guest_path `{}` is not absolute", f.guest_path),
                );
            }
        }
    }

    /// Declared metadata: no reserved keys but flotilla's own, which match the resource;
    /// no credentials in values.
    fn metadata(&mut self, r: &Resource, m: &MachineSpec) {
        let a = &r.address;
        for k in m.metadata.keys() {
            let group_key = [
                crate::resource::META_GROUP,
                crate::resource::META_FLY_PROCESS_GROUP,
            ];
            if group_key.contains(&k.as_str()) {
                if m.metadata.get(k).map(String::as_str) != a.group() {
                    self.error(
                        Some(a),
                        format!("metadata `{k}` does not match the resource"),
                    );
                }
                continue;
            }
            if let Some(want) = standby_metadata(a, k) {
                if m.metadata.get(k) != want.as_ref() {
                    self.error(
                        Some(a),
                        format!("metadata `{k}` does not match the resource"),
                    );
                }
                continue;
            }
            if OWN_METADATA.contains(&k.as_str()) {
                // flotilla's own values (fingerprints among them) are checked below.
                continue;
            }
            if platform::is_reserved_metadata_key(k) {
                self.error(Some(a), format!("metadata key `{k}` is reserved"))
                    .hint = Some(
                    "keys starting with `flotilla_` or `fly_` are set by flotilla and Fly".into(),
                );
            }
        }
        if let Some(fps) = m.metadata.get(META_SECRETS)
            && !fps.split(',').all(is_fingerprint_entry)
        {
            self.error(
                Some(a),
                format!("metadata `{META_SECRETS}` is not a list of NAME:FINGERPRINT"),
            );
        }
        let index = m.index.to_string();
        let expected: BTreeMap<&str, Option<&str>> = BTreeMap::from([
            (META_MANAGED, Some("true")),
            (META_TENANT, r.tenant.as_deref()),
            (META_ROLE, Some(m.role.as_str())),
            (META_INDEX, Some(index.as_str())),
        ]);
        for (k, want) in expected {
            if m.metadata.get(k).map(String::as_str) != want {
                self.error(
                    Some(a),
                    format!("metadata `{k}` does not match the resource"),
                );
            }
        }
        if let Some(fleet) = m.metadata.get(META_FLEET)
            && let Some(p) = platform::TENANT_NAME.problem(fleet)
        {
            self.error(Some(a), format!("fleet name `{fleet}` {p}"));
        }
    }

    /// Names, the image, env and metadata that look like credentials (never echoed):
    /// the scan a spec's rendered values get.
    fn credentials(&mut self, r: &Resource) {
        for (place, _, kind) in in_resource(r) {
            self.error(Some(&r.address), format!("{place} looks like {kind}")).hint = Some(
                "plans hold secret references, never values; this plan was not made from a valid spec".into(),
            );
        }
    }
}

/// `NAME:HEX`, as `secrets` records a fingerprint.
fn is_fingerprint_entry(entry: &str) -> bool {
    entry.split_once(':').is_some_and(|(name, fp)| {
        platform::is_env_name(name) && !fp.is_empty() && fp.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// `sha256:` and 64 lowercase hex digits, not all zero.
fn is_sha256(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            && h.chars().any(|c| c != '0')
    })
}

/// What is wrong with a secret file path of a plan made from `spec_file`: an absolute
/// path, a system directory (`/proc`, `/dev`, `/sys`), or `..` that leaves the
/// directory a relative spec path starts from (the spec's own directory when the spec
/// path is absolute).
pub fn secret_file_problem(spec_file: &str, path: &str) -> Option<&'static str> {
    let p = Path::new(path);
    if path.is_empty() {
        return Some("is empty");
    }
    if p.has_root() || p.components().any(|c| matches!(c, Component::Prefix(_))) {
        return Some("is an absolute path");
    }
    let spec_dir = Path::new(spec_file).parent().unwrap_or(Path::new(""));
    let base = if spec_dir.has_root() {
        spec_dir
    } else {
        Path::new("")
    };
    let Some(resolved) = normalize(&spec_dir.join(p)) else {
        return Some("leaves the directory it is read from (`..`)");
    };
    if !resolved.starts_with(base) {
        return Some("leaves the spec's directory (`..`)");
    }
    if SYSTEM_DIRS.iter().any(|d| resolved.starts_with(d)) {
        return Some("is in a system directory (/proc, /dev or /sys)");
    }
    None
}

/// `p` with `.` and `..` resolved lexically; `None` when `..` climbs above its start.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_stay_where_the_spec_reads_them() {
        assert_eq!(
            secret_file_problem("specs/a.yaml", "../secrets/jwt.txt"),
            None
        );
        assert_eq!(secret_file_problem("a.yaml", "secrets/jwt.txt"), None);
        assert_eq!(secret_file_problem("/srv/f/a.yaml", "keys/x"), None);
        for (spec, bad) in [
            ("specs/a.yaml", "/proc/self/environ"),
            ("specs/a.yaml", "../../etc/passwd"),
            ("a.yaml", "../x"),
            ("/srv/f/a.yaml", "../x"),
            ("/proc/self/a.yaml", "environ"),
            ("/dev/a.yaml", "stdin"),
            ("specs/a.yaml", ""),
        ] {
            assert!(secret_file_problem(spec, bad).is_some(), "{spec} {bad}");
        }
    }

    #[test]
    fn hashes_are_checked_for_shape() {
        assert!(is_sha256(&format!("sha256:{}", "ab".repeat(32))));
        assert!(!is_sha256(&format!("sha256:{}", "0".repeat(64))));
        assert!(!is_sha256("sha256:0"));
        assert!(!is_sha256(&"ab".repeat(32)));
    }
}
