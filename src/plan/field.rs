//! The fields a plan change names, typed: the contract between the diff and the
//! executor (and the renderings).
//!
//! A [`FieldPath`] renders (and serializes) as the dotted path plans have always shown —
//! `image`, `guest.cpus`, `env.NAME`, `metadata.KEY`, `services[0].ports[1].port`,
//! `checks.alive.interval`, `restart.policy` — and parses back from it, so a saved plan
//! with an unknown field is refused. The executor reads metadata changes through
//! [`FieldChange::metadata_op`] instead of matching path prefixes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// One changed field. `before`/`after` are `None` when the field is absent on that side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: FieldPath,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// This field cannot change in place; the resource is replaced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replace: bool,
}

impl FieldChange {
    /// The metadata key this change sets or removes, if it is a metadata change.
    pub fn metadata_op(&self) -> Option<MetadataOp<'_>> {
        let FieldPath::Metadata(key) = &self.path else {
            return None;
        };
        Some(match self.after.as_ref() {
            None => MetadataOp::Remove { key },
            Some(v) => match v.as_str() {
                Some(value) => MetadataOp::Set { key, value },
                // Metadata values are strings; anything else cannot be sent as one.
                None => MetadataOp::Remove { key },
            },
        })
    }
}

/// What a metadata change does on the Machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataOp<'a> {
    Set { key: &'a str, value: &'a str },
    Remove { key: &'a str },
}

impl<'a> MetadataOp<'a> {
    pub fn key(&self) -> &'a str {
        match self {
            MetadataOp::Set { key, .. } | MetadataOp::Remove { key } => key,
        }
    }

    /// The value to set; `None` removes the key.
    pub fn value(&self) -> Option<&'a str> {
        match self {
            MetadataOp::Set { value, .. } => Some(value),
            MetadataOp::Remove { .. } => None,
        }
    }
}

/// A Machine's guest fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestField {
    CpuKind,
    Cpus,
    MemoryMb,
}

impl GuestField {
    fn as_str(self) -> &'static str {
        match self {
            GuestField::CpuKind => "cpu_kind",
            GuestField::Cpus => "cpus",
            GuestField::MemoryMb => "memory_mb",
        }
    }
}

/// A position inside a JSON section (`services`, `checks`), as it renders after the
/// section's name: `.KEY` and `[N]` steps (`[0].ports[1].port`, `.alive.interval`).
/// Empty for the section itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SubPath(String);

impl SubPath {
    pub fn key(&self, key: &str) -> SubPath {
        SubPath(format!("{}.{key}", self.0))
    }

    pub fn index(&self, i: usize) -> SubPath {
        SubPath(format!("{}[{i}]", self.0))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A rendered tail: empty, or starting with a key or an index step.
    fn parse(tail: &str) -> Option<SubPath> {
        (tail.is_empty() || tail.starts_with(['.', '['])).then(|| SubPath(tail.to_string()))
    }
}

/// The JSON sections compared as subsets of what the spec declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Services,
    Checks,
    Config(ConfigField),
}

/// A pass-through Machine config field (`resource::MachineExtras`), named as in Fly's
/// config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigField {
    StopConfig,
    RestartMaxRetries,
    Init,
    Dns,
    Metrics,
    Statics,
    AutoDestroy,
    Schedule,
}

impl ConfigField {
    pub const ALL: [ConfigField; 8] = [
        ConfigField::StopConfig,
        ConfigField::RestartMaxRetries,
        ConfigField::Init,
        ConfigField::Dns,
        ConfigField::Metrics,
        ConfigField::Statics,
        ConfigField::AutoDestroy,
        ConfigField::Schedule,
    ];

    /// The field's path in Fly's Machine config.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigField::StopConfig => "stop_config",
            ConfigField::RestartMaxRetries => "restart.max_retries",
            ConfigField::Init => "init",
            ConfigField::Dns => "dns",
            ConfigField::Metrics => "metrics",
            ConfigField::Statics => "statics",
            ConfigField::AutoDestroy => "auto_destroy",
            ConfigField::Schedule => "schedule",
        }
    }
}

/// The field a change names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldPath {
    /// The resource at an address changed kind.
    Kind,
    /// A secret's keyed fingerprint.
    Fingerprint,
    Region,
    Encrypted,
    SizeGb,
    SnapshotRetention,
    AutoBackup,
    Mounts,
    Image,
    Guest(GuestField),
    Env(String),
    Services(SubPath),
    Checks(SubPath),
    RestartPolicy,
    Metadata(String),
    /// A pass-through Machine config field, or a position in it (`init.cmd`).
    Config(ConfigField, SubPath),
    /// The Machine's `processes`, as a whole.
    Processes,
    /// One of the Machine's `files`, by guest path (`files[/etc/app.conf]`).
    Files(String),
}

impl FieldPath {
    /// A position in a JSON section.
    pub fn section(section: Section, at: SubPath) -> FieldPath {
        match section {
            Section::Services => FieldPath::Services(at),
            Section::Checks => FieldPath::Checks(at),
            Section::Config(f) => FieldPath::Config(f, at),
        }
    }

    pub fn is_metadata(&self) -> bool {
        matches!(self, FieldPath::Metadata(_))
    }

    /// `metadata.KEY` for this key.
    pub fn is_metadata_key(&self, key: &str) -> bool {
        matches!(self, FieldPath::Metadata(k) if k == key)
    }

    fn plain(&self) -> Option<&'static str> {
        Some(match self {
            FieldPath::Kind => "kind",
            FieldPath::Fingerprint => "fingerprint",
            FieldPath::Region => "region",
            FieldPath::Encrypted => "encrypted",
            FieldPath::SizeGb => "size_gb",
            FieldPath::SnapshotRetention => "snapshot_retention",
            FieldPath::AutoBackup => "auto_backup",
            FieldPath::Mounts => "mounts",
            FieldPath::Image => "image",
            FieldPath::RestartPolicy => "restart.policy",
            FieldPath::Processes => "processes",
            _ => return None,
        })
    }
}

const PLAIN: [FieldPath; 11] = [
    FieldPath::Kind,
    FieldPath::Fingerprint,
    FieldPath::Region,
    FieldPath::Encrypted,
    FieldPath::SizeGb,
    FieldPath::SnapshotRetention,
    FieldPath::AutoBackup,
    FieldPath::Mounts,
    FieldPath::Image,
    FieldPath::RestartPolicy,
    FieldPath::Processes,
];

const GUEST: [GuestField; 3] = [GuestField::CpuKind, GuestField::Cpus, GuestField::MemoryMb];

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.plain() {
            return f.write_str(s);
        }
        match self {
            FieldPath::Guest(g) => write!(f, "guest.{}", g.as_str()),
            FieldPath::Env(k) => write!(f, "env.{k}"),
            FieldPath::Metadata(k) => write!(f, "metadata.{k}"),
            FieldPath::Services(at) => write!(f, "services{}", at.0),
            FieldPath::Checks(at) => write!(f, "checks{}", at.0),
            FieldPath::Config(c, at) => write!(f, "{}{}", c.as_str(), at.0),
            FieldPath::Files(p) => write!(f, "files[{p}]"),
            _ => Ok(()),
        }
    }
}

/// Why a text is not a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPathError(pub String);

impl fmt::Display for FieldPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown field path `{}`", self.0)
    }
}

impl std::error::Error for FieldPathError {}

impl FromStr for FieldPath {
    type Err = FieldPathError;

    fn from_str(s: &str) -> Result<FieldPath, FieldPathError> {
        if let Some(p) = PLAIN.iter().find(|p| p.plain() == Some(s)) {
            return Ok(p.clone());
        }
        if let Some(g) = s.strip_prefix("guest.") {
            if let Some(g) = GUEST.iter().find(|x| x.as_str() == g) {
                return Ok(FieldPath::Guest(*g));
            }
        } else if let Some(k) = s.strip_prefix("env.") {
            return Ok(FieldPath::Env(k.to_string()));
        } else if let Some(k) = s.strip_prefix("metadata.") {
            return Ok(FieldPath::Metadata(k.to_string()));
        } else if let Some(at) = s.strip_prefix("services").and_then(SubPath::parse) {
            return Ok(FieldPath::Services(at));
        } else if let Some(at) = s.strip_prefix("checks").and_then(SubPath::parse) {
            return Ok(FieldPath::Checks(at));
        } else if let Some(p) = s.strip_prefix("files[").and_then(|r| r.strip_suffix(']')) {
            return Ok(FieldPath::Files(p.to_string()));
        }
        for c in ConfigField::ALL {
            if let Some(at) = s.strip_prefix(c.as_str()).and_then(SubPath::parse) {
                return Ok(FieldPath::Config(c, at));
            }
        }
        Err(FieldPathError(s.to_string()))
    }
}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FieldPath, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_and_parse_as_before() {
        for s in [
            "kind",
            "fingerprint",
            "region",
            "encrypted",
            "size_gb",
            "snapshot_retention",
            "auto_backup",
            "mounts",
            "image",
            "guest.cpu_kind",
            "guest.cpus",
            "guest.memory_mb",
            "env.DATABASE_URL",
            "metadata.flotilla_secrets",
            "metadata.a.b",
            "services",
            "services[0].ports[1].handlers",
            "checks",
            "checks.alive",
            "checks.alive.interval",
            "restart.policy",
            "stop_config",
            "stop_config.timeout",
            "restart.max_retries",
            "init.cmd",
            "dns.options[0].value",
            "metrics.port",
            "statics[1].url_prefix",
            "auto_destroy",
            "schedule",
            "processes",
            "files[/etc/app.conf]",
        ] {
            let p: FieldPath = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{s}\""));
        }
        for bad in [
            "",
            "guest.disk",
            "servicesx",
            "restart",
            "nonsense",
            "initx",
            "dns_x",
            "files",
            "files[/a",
        ] {
            assert!(bad.parse::<FieldPath>().is_err(), "{bad}");
        }
        let at = SubPath::default().index(0).key("ports");
        assert_eq!(FieldPath::Services(at).to_string(), "services[0].ports");
    }

    #[test]
    fn metadata_ops() {
        let change = |path: &str, after: Option<Value>| FieldChange {
            path: path.parse().unwrap(),
            before: None,
            after,
            forces_replace: false,
        };
        let set = change("metadata.k", Some(Value::from("v")));
        assert_eq!(
            set.metadata_op(),
            Some(MetadataOp::Set {
                key: "k",
                value: "v"
            })
        );
        let gone = change("metadata.k", None);
        assert_eq!(
            gone.metadata_op().map(|m| (m.key(), m.value())),
            Some(("k", None))
        );
        assert_eq!(change("image", Some(Value::from("x"))).metadata_op(), None);
    }
}
