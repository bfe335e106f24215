//! The spec's shape, declared once. Every setting is one `const` [`Setting`]: its dotted
//! key, its type and the bounds the checker enforces, the range Fly or flotilla accepts,
//! whether it may be `null`, its default and a one-line doc. The tables the schema checker
//! walks ([`SETTINGS_FIELDS`], [`TOP_FIELDS`] …) are built from these declarations, and
//! typed reads go through them (`eff.value(&decl::COUNT)`), so the key, the type and the
//! default of a setting are written in one place and the compiler ties each read to its
//! declaration. Everything here is static data: it costs nothing per tenant.
//!
//! The declarations carry what a JSON Schema of the spec needs (types, bounds, enums,
//! defaults, docs); see [`Field`].

use std::marker::PhantomData;

use rust_decimal::Decimal;

use crate::diag::Mark;
use crate::platform;
use crate::resource::{CheckKind, ConcurrencyKind, IdleMode, Protocol, RestartPolicy};
use crate::spec::schema::{Field, Ty, parse_decimal, parse_memory};
use crate::spec::yaml::Node;

mod machine;
pub use machine::*;

/// A setting's default, as documentation and as the value typed reads fall back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// No default: absent means absent (or the key is required).
    None,
    Bool(bool),
    Int(i64),
    Str(&'static str),
    Decimal(Decimal),
    /// Computed from other settings; the text says how (e.g. "the size's base memory").
    Derived(&'static str),
}

/// How a setting's checked node becomes a Rust value.
pub trait Kind {
    type Out<'n>;
    fn read(node: &Node) -> Option<Self::Out<'_>>;
    /// The declared default as a value of this kind.
    fn fallback<'n>(d: &DefaultValue) -> Option<Self::Out<'n>>;
}

/// A string (`Ty::Str` or `Ty::Enum`).
#[derive(Debug, Clone, Copy)]
pub struct Text;
/// A non-negative integer that fits `u32`.
#[derive(Debug, Clone, Copy)]
pub struct Count;
/// A TCP/UDP port.
#[derive(Debug, Clone, Copy)]
pub struct PortNumber;
#[derive(Debug, Clone, Copy)]
pub struct Flag;
/// An exact decimal number.
#[derive(Debug, Clone, Copy)]
pub struct Number;
/// A memory size, in MB.
#[derive(Debug, Clone, Copy)]
pub struct Megabytes;
/// An idle mode (`off`, `stop`, `suspend`).
#[derive(Debug, Clone, Copy)]
pub struct Idle;
/// A mapping or list that has its own reader.
#[derive(Debug, Clone, Copy)]
pub struct Tree;

impl Kind for Text {
    type Out<'n> = &'n str;
    fn read(node: &Node) -> Option<&str> {
        node.as_str()
    }
    fn fallback<'n>(d: &DefaultValue) -> Option<&'n str> {
        match d {
            DefaultValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl Kind for Count {
    type Out<'n> = u32;
    fn read(node: &Node) -> Option<u32> {
        node.as_i64().and_then(|v| u32::try_from(v).ok())
    }
    fn fallback<'n>(d: &DefaultValue) -> Option<Self::Out<'n>> {
        match d {
            DefaultValue::Int(v) => u32::try_from(*v).ok(),
            _ => None,
        }
    }
}

impl Kind for PortNumber {
    type Out<'n> = u16;
    fn read(node: &Node) -> Option<u16> {
        node.as_i64().and_then(|v| u16::try_from(v).ok())
    }
    fn fallback<'n>(d: &DefaultValue) -> Option<Self::Out<'n>> {
        match d {
            DefaultValue::Int(v) => u16::try_from(*v).ok(),
            _ => None,
        }
    }
}

impl Kind for Flag {
    type Out<'n> = bool;
    fn read(node: &Node) -> Option<bool> {
        node.as_bool()
    }
    fn fallback<'n>(d: &DefaultValue) -> Option<Self::Out<'n>> {
        match d {
            DefaultValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl Kind for Number {
    type Out<'n> = Decimal;
    fn read(node: &Node) -> Option<Decimal> {
        node.scalar_text().and_then(parse_decimal)
    }
    fn fallback<'n>(d: &DefaultValue) -> Option<Self::Out<'n>> {
        match d {
            DefaultValue::Decimal(v) => Some(*v),
            DefaultValue::Int(v) => Some(Decimal::from(*v)),
            _ => None,
        }
    }
}

impl Kind for Megabytes {
    type Out<'n> = u32;
    fn read(node: &Node) -> Option<u32> {
        parse_memory(node).ok()
    }
    fn fallback<'n>(d: &DefaultValue) -> Option<Self::Out<'n>> {
        match d {
            DefaultValue::Int(v) => u32::try_from(*v).ok(),
            _ => None,
        }
    }
}

impl Kind for Idle {
    type Out<'n> = IdleMode;
    fn read(node: &Node) -> Option<IdleMode> {
        node.scalar_text().and_then(idle_mode)
    }
    fn fallback<'n>(d: &DefaultValue) -> Option<Self::Out<'n>> {
        match d {
            DefaultValue::Str(s) => idle_mode(s),
            _ => None,
        }
    }
}

impl Kind for Tree {
    type Out<'n> = &'n Node;
    fn read(node: &Node) -> Option<&Node> {
        Some(node)
    }
    fn fallback<'n>(_: &DefaultValue) -> Option<&'n Node> {
        None
    }
}

/// One declared setting: where it is (dotted key, relative to the mapping that holds it:
/// a settings layer, a service, a tenant entry …), its schema field, and its Rust type.
#[derive(Debug, Clone, Copy)]
pub struct Setting<K> {
    pub key: &'static str,
    pub field: Field,
    kind: PhantomData<K>,
}

impl<K> Setting<K> {
    /// May not be `null` (a `null` would not reset anything meaningful).
    const fn not_null(mut self) -> Self {
        self.field.nullable = false;
        self
    }
    const fn default(mut self, d: DefaultValue) -> Self {
        self.field.default = d;
        self
    }
    /// The range accepted after layering, checked on the effective value.
    const fn accepts(mut self, min: i64, max: i64) -> Self {
        self.field.accepted = Some((min, max));
        self
    }
    /// The accepted range (or the type's bounds).
    pub fn range(&self) -> (i64, i64) {
        match (self.field.accepted, self.field.ty) {
            (Some(r), _) => r,
            (None, Ty::Int { min, max } | Ty::Decimal { min, max }) => (min, max),
            _ => (i64::MIN, i64::MAX),
        }
    }
}

impl<K: Kind> Setting<K> {
    /// The node at this setting's key under `root`.
    pub fn node<'n>(&self, root: &'n Node) -> Option<&'n Node> {
        if self.key.len() == self.field.name.len() {
            // A key of the mapping itself (most keys): no path to walk.
            return root.get(self.key);
        }
        let mut n = root;
        for part in self.key.split('.') {
            n = n.get(part)?;
        }
        Some(n)
    }

    /// The value written under `root`, if it is there and well typed.
    pub fn get<'n>(&self, root: &'n Node) -> Option<K::Out<'n>> {
        self.node(root).and_then(K::read)
    }

    /// The value written under `root` and where it was written.
    pub fn located<'n>(&self, root: &'n Node) -> Option<(K::Out<'n>, Mark)> {
        let n = self.node(root)?;
        K::read(n).map(|v| (v, n.mark))
    }

    /// The value written under `root`, else the declared default.
    pub fn value<'n>(&self, root: &'n Node) -> Option<K::Out<'n>> {
        self.get(root).or_else(|| self.default_value())
    }

    /// The value of this field in a mapping that holds it directly, by its name (what-if
    /// profiles hold the usage and volume keys flat), and where it was written.
    pub fn leaf<'n>(&self, node: &'n Node) -> Option<(K::Out<'n>, Mark)> {
        let n = node.get(self.field.name)?;
        K::read(n).map(|v| (v, n.mark))
    }

    /// The declared default.
    pub fn default_value<'n>(&self) -> Option<K::Out<'n>> {
        K::fallback(&self.field.default)
    }
}

/// The last segment of a dotted key (the field's name in its mapping).
const fn leaf(key: &'static str) -> &'static str {
    let bytes = key.as_bytes();
    let mut i = bytes.len();
    while i > 0 && bytes[i - 1] != b'.' {
        i -= 1;
    }
    let (_, tail) = bytes.split_at(i);
    match std::str::from_utf8(tail) {
        Ok(s) => s,
        Err(_) => panic!("setting keys are ASCII"),
    }
}

const fn setting<K>(key: &'static str, ty: Ty, doc: &'static str) -> Setting<K> {
    Setting {
        key,
        field: Field {
            name: leaf(key),
            ty,
            nullable: true,
            default: DefaultValue::None,
            accepted: None,
            doc,
        },
        kind: PhantomData,
    }
}
const fn text(key: &'static str, doc: &'static str) -> Setting<Text> {
    setting(key, Ty::Str, doc)
}
const fn choice(
    key: &'static str,
    values: &'static [&'static str],
    doc: &'static str,
) -> Setting<Text> {
    setting(key, Ty::Enum(values), doc)
}
const fn int(key: &'static str, min: i64, max: i64, doc: &'static str) -> Setting<Count> {
    setting(key, Ty::Int { min, max }, doc)
}
const fn port(key: &'static str, doc: &'static str) -> Setting<PortNumber> {
    setting(key, PORT, doc)
}
const fn flag(key: &'static str, default: bool, doc: &'static str) -> Setting<Flag> {
    setting(key, Ty::Bool, doc).default(DefaultValue::Bool(default))
}
const fn number(key: &'static str, min: i64, max: i64, doc: &'static str) -> Setting<Number> {
    setting(key, Ty::Decimal { min, max }, doc)
}
const fn tree(key: &'static str, ty: Ty, doc: &'static str) -> Setting<Tree> {
    setting(key, ty, doc)
}
const fn dec(mantissa: u32, scale: u32) -> DefaultValue {
    DefaultValue::Decimal(Decimal::from_parts(mantissa, 0, 0, false, scale))
}

// ---------------------------------------------------------------------------------------
// Shared types.

const PORT: Ty = Ty::Int { min: 1, max: 65535 };
const STR: Ty = Ty::Str;
const TEXT: Ty = Ty::Text;
const SECRET: Ty = Ty::SecretRef;
const HANDLERS: &[&str] = &["http", "tls", "proxy_proto", "pg_tls", "edge_http"];
const HANDLER: Ty = Ty::Enum(HANDLERS);

/// Idle modes, as written in specs and scenarios.
pub const IDLE_MODES: &[&str] = &["off", "stop", "suspend"];

/// Reads an idle mode name.
pub fn idle_mode(s: &str) -> Option<IdleMode> {
    match s {
        "off" => Some(IdleMode::Off),
        "stop" => Some(IdleMode::Stop),
        "suspend" => Some(IdleMode::Suspend),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Services and checks (read per item, keys relative to the item).

pub const PORT_PORT: Setting<PortNumber> = port("port", "the public port").not_null();
pub const PORT_HANDLERS: Setting<Tree> = tree(
    "handlers",
    Ty::List(&HANDLER),
    "Fly proxy handlers for the port (e.g. [tls, http])",
);
pub const PORT_FORCE_HTTPS: Setting<Flag> = setting(
    "force_https",
    Ty::Bool,
    "redirect HTTP to HTTPS (unset: Fly's default)",
);
pub const PORT_FIELDS: &[Field] = &[PORT_PORT.field, PORT_HANDLERS.field, PORT_FORCE_HTTPS.field];

pub const CONCURRENCY_TYPE: Setting<Text> =
    choice("type", ConcurrencyKind::KNOWN, "what the limits count")
        .default(DefaultValue::Str("connections"));
pub const CONCURRENCY_SOFT_LIMIT: Setting<Count> = int(
    "soft_limit",
    1,
    1_000_000,
    "load at which the proxy prefers other Machines",
)
.default(DefaultValue::Int(20));
pub const CONCURRENCY_HARD_LIMIT: Setting<Count> = int(
    "hard_limit",
    1,
    1_000_000,
    "load at which the proxy sends no more to a Machine",
)
.default(DefaultValue::Int(25));
pub const CONCURRENCY_FIELDS: &[Field] = &[
    CONCURRENCY_TYPE.field,
    CONCURRENCY_SOFT_LIMIT.field,
    CONCURRENCY_HARD_LIMIT.field,
];

pub const SERVICE_PROTOCOL: Setting<Text> =
    choice("protocol", Protocol::KNOWN, "the service's protocol").default(DefaultValue::Str("tcp"));
pub const SERVICE_INTERNAL_PORT: Setting<PortNumber> =
    port("internal_port", "the port the Machine listens on").not_null();
pub const SERVICE_PORTS: Setting<Tree> = tree(
    "ports",
    Ty::List(&Ty::Struct(PORT_FIELDS)),
    "public ports and their handlers",
);
pub const SERVICE_CONCURRENCY: Setting<Tree> = tree(
    "concurrency",
    Ty::Struct(CONCURRENCY_FIELDS),
    "proxy load limits (unset: none declared)",
);
pub const SERVICE_FIELDS: &[Field] = &[
    SERVICE_PROTOCOL.field,
    SERVICE_INTERNAL_PORT.field,
    SERVICE_PORTS.field,
    SERVICE_CONCURRENCY.field,
];

pub const CHECK_TYPE: Setting<Text> =
    choice("type", CheckKind::KNOWN, "the kind of health check").default(DefaultValue::Str("http"));
pub const CHECK_PORT: Setting<PortNumber> = port("port", "the port checked").not_null();
pub const CHECK_PATH: Setting<Text> = text("path", "the HTTP path checked");
pub const CHECK_METHOD: Setting<Text> = choice(
    "method",
    &["GET", "HEAD", "POST", "get", "head", "post"],
    "the HTTP method (any case; sent upper-case)",
);
pub const CHECK_INTERVAL: Setting<Text> = text("interval", "time between checks (e.g. 15s)");
pub const CHECK_TIMEOUT: Setting<Text> = text("timeout", "how long one check may take (e.g. 2s)");
pub const CHECK_GRACE_PERIOD: Setting<Text> = text(
    "grace_period",
    "time after start before checks count (e.g. 10s)",
);
pub const CHECK_FIELDS: &[Field] = &[
    CHECK_TYPE.field,
    CHECK_PORT.field,
    CHECK_PATH.field,
    CHECK_METHOD.field,
    CHECK_INTERVAL.field,
    CHECK_TIMEOUT.field,
    CHECK_GRACE_PERIOD.field,
];

// ---------------------------------------------------------------------------------------
// Settings: what defaults, tiers, tenants and shared apps can all set (keys relative to a
// settings layer).

pub const IMAGE: Setting<Text> = text(
    "image",
    "the container image (required somewhere in the layers), e.g. registry.fly.io/app:1.0",
);
pub const REGION: Setting<Text> = text(
    "region",
    "the Fly region of the Machines and volumes (required somewhere in the layers)",
);
pub const FALLBACK_REGIONS: Setting<Tree> = tree(
    "fallback_regions",
    Ty::List(&STR),
    "regions tried in order when the primary has no capacity",
);
pub const SIZE: Setting<Text> = text("size", "the Machine preset, e.g. shared-cpu-1x")
    .default(DefaultValue::Str("shared-cpu-1x"));
pub const MEMORY: Setting<Megabytes> = setting(
    "memory",
    Ty::Memory,
    "Machine memory: `512mb`, `2gb` or MB; a multiple of 256 within the size's range",
)
.default(DefaultValue::Derived("the size's base memory"));
/// The most Machines one tenant or app entry may declare.
pub const MAX_MACHINES_PER_ENTRY: u32 = 64;
pub const COUNT: Setting<Count> = int("count", 0, 1_000_000, "Machines per tenant or app")
    .default(DefaultValue::Int(1))
    .accepts(1, MAX_MACHINES_PER_ENTRY as i64);

pub const IDLE_MODE: Setting<Idle> = setting(
    "idle.mode",
    Ty::Enum(IDLE_MODES),
    "what an idle Machine does: off (keeps running), stop, suspend (up to 2 GB)",
)
.default(DefaultValue::Str("off"));
pub const IDLE_AUTOSTART: Setting<Flag> = flag(
    "idle.autostart",
    true,
    "start a stopped Machine on incoming traffic",
);
pub const IDLE_MIN_RUNNING: Setting<Count> = int(
    "idle.min_running",
    0,
    1_000_000,
    "Machines kept running in the primary region (at most `count`)",
)
.default(DefaultValue::Int(0));
pub const IDLE_FIELDS: &[Field] = &[
    IDLE_MODE.field,
    IDLE_AUTOSTART.field,
    IDLE_MIN_RUNNING.field,
];
pub const IDLE: Setting<Tree> = tree(
    "idle",
    Ty::Struct(IDLE_FIELDS),
    "idle policy (Fly's autostop, autostart and min_machines_running)",
);

pub const SERVICES: Setting<Tree> = tree(
    "services",
    Ty::List(&Ty::Struct(SERVICE_FIELDS)),
    "services Fly's proxy routes to the Machines (unset: not managed)",
);
pub const CHECKS: Setting<Tree> = tree(
    "checks",
    Ty::Dict(&Ty::Struct(CHECK_FIELDS)),
    "health checks by name (unset: not managed)",
);
pub const RESTART: Setting<Text> = choice(
    "restart",
    RestartPolicy::KNOWN,
    "the Machine restart policy (unset: Fly's default)",
);
pub const ENV: Setting<Tree> = tree(
    "env",
    Ty::Dict(&TEXT),
    "environment variables; values may be templates",
);
pub const METADATA: Setting<Tree> = tree(
    "metadata",
    Ty::Dict(&TEXT),
    "Machine metadata; values may be templates; `flotilla_` and `fly_` keys are reserved",
);

pub const VOLUME_NAME: Setting<Text> = text(
    "volume.name",
    "the volume's logical name (naming.volume renders the Fly name)",
)
.default(DefaultValue::Str("data"));
pub const VOLUME_SIZE_GB: Setting<Count> = int("volume.size_gb", 0, 1_000_000, "volume size in GB")
    .default(DefaultValue::Int(platform::VOLUME_MIN_GB as i64))
    .accepts(
        platform::VOLUME_MIN_GB as i64,
        platform::VOLUME_MAX_GB as i64,
    );
pub const VOLUME_MOUNT: Setting<Text> = text(
    "volume.mount",
    "the absolute mount path inside the Machine (required with a volume)",
);
pub const VOLUME_SNAPSHOT_RETENTION: Setting<Count> = int(
    "volume.snapshot_retention",
    0,
    100_000,
    "days Fly keeps daily snapshots",
)
.default(DefaultValue::Int(
    platform::SNAPSHOT_RETENTION_DEFAULT as i64,
))
.accepts(
    platform::SNAPSHOT_RETENTION_MIN as i64,
    platform::SNAPSHOT_RETENTION_MAX as i64,
);
pub const VOLUME_AUTO_BACKUP: Setting<Flag> =
    flag("volume.auto_backup", true, "take Fly's daily snapshots");
pub const VOLUME_ENCRYPTED: Setting<Flag> =
    flag("volume.encrypted", true, "encrypt the volume at rest");
pub const VOLUME_RESTORE_TENANT: Setting<Text> = text(
    "volume.restore_from.tenant",
    "the tenant whose volume (same name and slot, else its first) the new volume is restored from",
)
.not_null();
pub const VOLUME_RESTORE_SNAPSHOT: Setting<Text> = text(
    "volume.restore_from.snapshot",
    "`latest` (its newest complete snapshot) or a snapshot id",
)
.default(DefaultValue::Str("latest"));
pub const VOLUME_RESTORE_FROM_FIELDS: &[Field] =
    &[VOLUME_RESTORE_TENANT.field, VOLUME_RESTORE_SNAPSHOT.field];
pub const VOLUME_RESTORE_FROM: Setting<Tree> = tree(
    "volume.restore_from",
    Ty::Struct(VOLUME_RESTORE_FROM_FIELDS),
    "create a new volume from another tenant's snapshot (ignored once the volume exists)",
);
pub const VOLUME_FIELDS: &[Field] = &[
    VOLUME_NAME.field,
    VOLUME_SIZE_GB.field,
    VOLUME_MOUNT.field,
    VOLUME_SNAPSHOT_RETENTION.field,
    VOLUME_AUTO_BACKUP.field,
    VOLUME_ENCRYPTED.field,
    VOLUME_RESTORE_FROM.field,
];
pub const VOLUME: Setting<Tree> = tree(
    "volume",
    Ty::Struct(VOLUME_FIELDS),
    "one volume per Machine (unset: none)",
);

/// The keys of a secret reference (`{ env: VAR }` or `{ file: PATH }`); exactly one.
pub const SECRET_REF_KEYS: [&str; 2] = [SECRET_ENV, SECRET_FILE];
pub const SECRET_ENV: &str = "env";
pub const SECRET_FILE: &str = "file";
pub const SECRETS: Setting<Tree> = tree(
    "secrets",
    Ty::Dict(&SECRET),
    "app secrets by name, as references `{ env: VAR }` or `{ file: PATH }`",
);

pub const SNAPSHOT_BEFORE_DESTROY: Setting<Flag> = flag(
    "backups.snapshot_before_destroy",
    true,
    "snapshot a volume before flotilla deletes it",
);
/// The export image used when `backups.export.image` is not set: the reference image
/// built from `examples/export-image/` (README, "Off-site export").
pub const EXPORT_IMAGE_DEFAULT: &str = "ghcr.io/flotilla-dev/volume-export:1";
pub const EXPORT_TO: Setting<Text> = text(
    "backups.export.to",
    "where exports go: an S3-compatible URL (`s3://bucket/prefix`), a template",
);
pub const EXPORT_ENDPOINT: Setting<Text> = text(
    "backups.export.endpoint",
    "the S3-compatible endpoint URL (unset: AWS S3)",
);
pub const EXPORT_CREDENTIALS: Setting<Tree> = tree(
    "backups.export.credentials",
    Ty::Dict(&SECRET),
    "credentials the export image receives, by variable name, as references `{ env: VAR }` or `{ file: PATH }`",
);
pub const EXPORT_ENCRYPTION_KEY: Setting<Tree> = tree(
    "backups.export.encryption_key",
    Ty::SecretRef,
    "a passphrase the export image encrypts with before upload (unset: no client-side encryption)",
);
pub const EXPORT_IMAGE: Setting<Text> = text(
    "backups.export.image",
    "the image that copies a volume to the destination and back",
)
.default(DefaultValue::Str(EXPORT_IMAGE_DEFAULT));
pub const EXPORT_KEEP: Setting<Count> = int(
    "backups.export.keep",
    0,
    1_000_000,
    "how many exports of each volume the destination keeps",
)
.default(DefaultValue::Int(30))
.accepts(1, 10_000);
pub const EXPORT_FIELDS: &[Field] = &[
    EXPORT_TO.field,
    EXPORT_ENDPOINT.field,
    EXPORT_CREDENTIALS.field,
    EXPORT_ENCRYPTION_KEY.field,
    EXPORT_IMAGE.field,
    EXPORT_KEEP.field,
];
pub const EXPORT: Setting<Tree> = tree(
    "backups.export",
    Ty::Struct(EXPORT_FIELDS),
    "off-site exports of the volumes to S3-compatible storage (unset: none)",
);
pub const BACKUP_FIELDS: &[Field] = &[SNAPSHOT_BEFORE_DESTROY.field, EXPORT.field];
pub const BACKUPS: Setting<Tree> = tree("backups", Ty::Struct(BACKUP_FIELDS), "backup safety");

pub const PREVENT_DESTROY: Setting<Flag> = flag(
    "lifecycle.prevent_destroy",
    false,
    "refuse plans that delete or replace these resources",
);
pub const LIFECYCLE_FIELDS: &[Field] = &[PREVENT_DESTROY.field];
pub const LIFECYCLE: Setting<Tree> = tree(
    "lifecycle",
    Ty::Struct(LIFECYCLE_FIELDS),
    "deletion protection",
);

const GB_MAX: i64 = 1_000_000;
pub const USAGE_ACTIVE_HOURS: Setting<Number> = number(
    "usage.active_hours_per_day",
    0,
    24,
    "hours a day a Machine runs (cost estimates)",
)
.default(dec(24, 0));
pub const USAGE_ROOTFS_GB: Setting<Number> = number(
    "usage.rootfs_gb",
    0,
    GB_MAX,
    "root filesystem per Machine, GB",
)
.default(dec(1, 0));
pub const USAGE_EGRESS_GB: Setting<Number> = number(
    "usage.egress_gb_month",
    0,
    GB_MAX,
    "public egress per Machine, GB a month",
)
.default(dec(0, 0));
pub const USAGE_PRIVATE_EGRESS_GB: Setting<Number> = number(
    "usage.private_egress_gb_month",
    0,
    GB_MAX,
    "private-network egress across regions per Machine, GB a month",
)
.default(dec(0, 0));
pub const USAGE_VOLUME_USED_GB: Setting<Number> = number(
    "usage.volume_used_gb",
    0,
    GB_MAX,
    "data stored on each volume, GB (unset: the volume's size)",
)
.default(DefaultValue::Derived("the volume's size"));
pub const USAGE_SNAPSHOT_DAILY_CHANGE: Setting<Number> = number(
    "usage.snapshot_daily_change",
    0,
    1,
    "share of a volume that changes a day (snapshot storage)",
)
.default(dec(5, 2));
pub const USAGE_DEDICATED_IPV4: Setting<Count> = int(
    "usage.dedicated_ipv4",
    0,
    1000,
    "dedicated IPv4 addresses per app",
)
.default(DefaultValue::Int(0));
pub const USAGE_CERTIFICATES: Setting<Count> =
    int("usage.certificates", 0, 100_000, "TLS certificates per app").default(DefaultValue::Int(0));
pub const USAGE_WILDCARD_CERTIFICATES: Setting<Count> = int(
    "usage.wildcard_certificates",
    0,
    100_000,
    "wildcard TLS certificates per app",
)
.default(DefaultValue::Int(0));
pub const USAGE_FIELDS: &[Field] = &[
    USAGE_ACTIVE_HOURS.field,
    USAGE_ROOTFS_GB.field,
    USAGE_EGRESS_GB.field,
    USAGE_PRIVATE_EGRESS_GB.field,
    USAGE_VOLUME_USED_GB.field,
    USAGE_SNAPSHOT_DAILY_CHANGE.field,
    USAGE_DEDICATED_IPV4.field,
    USAGE_CERTIFICATES.field,
    USAGE_WILDCARD_CERTIFICATES.field,
];
pub const USAGE: Setting<Tree> = tree(
    "usage",
    Ty::Struct(USAGE_FIELDS),
    "usage assumptions for cost estimates",
);

// Networking: the app's IP addresses and custom domains (`resource::network`).

/// IP address kinds, as written in specs (Fly's assignment types).
pub const IP_KINDS: &[&str] = &["shared_v4", "v4", "v6", "private_v6"];
const IP_KIND: Ty = Ty::Enum(IP_KINDS);
pub const IPS: Setting<Tree> = tree(
    "ips",
    Ty::List(&IP_KIND),
    "the app's IP addresses: shared_v4, v4 (dedicated, billed), v6, private_v6 (Flycast); unset: not managed",
);
pub const FLYCAST_NETWORK: Setting<Text> = text(
    "flycast_network",
    "the private network of the private_v6 (Flycast) address (unset: the org's default)",
);
pub const HOSTNAMES: Setting<Tree> = tree(
    "hostnames",
    Ty::List(&TEXT),
    "custom domains served by the app, a certificate each; templates; `*.` as the first label for a wildcard",
);

// What one Machine runs: its processes and files (Fly's Machine config `processes` and
// `files`; keys of a process or file relative to the item). Read in `spec::procs`.

pub const PROCESS_NAME: Setting<Text> = text("name", "the process's name");
pub const PROCESS_ENTRYPOINT: Setting<Tree> = tree(
    "entrypoint",
    Ty::List(&TEXT),
    "the entrypoint, replacing the image's; each argument a template",
);
pub const PROCESS_CMD: Setting<Tree> = tree(
    "cmd",
    Ty::List(&TEXT),
    "the command, replacing the image's; each argument a template",
);
pub const PROCESS_ENV: Setting<Tree> = tree(
    "env",
    Ty::Dict(&TEXT),
    "environment variables of this process; values may be templates",
);
pub const PROCESS_USER: Setting<Text> = text("user", "the user the process runs as");
pub const PROCESS_EXEC: Setting<Tree> = tree(
    "exec",
    Ty::List(&TEXT),
    "the process's full command line (entrypoint and command together); each argument a template",
);
pub const PROCESS_FIELDS: &[Field] = &[
    PROCESS_NAME.field,
    PROCESS_ENTRYPOINT.field,
    PROCESS_CMD.field,
    PROCESS_ENV.field,
    PROCESS_USER.field,
    PROCESS_EXEC.field,
];
pub const PROCESSES: Setting<Tree> = tree(
    "processes",
    Ty::List(&Ty::Struct(PROCESS_FIELDS)),
    "the processes one Machine runs (Fly's Machine config `processes`; unset: not managed)",
);

pub const FILE_GUEST_PATH: Setting<Text> = text(
    "guest_path",
    "the absolute path of the file inside the Machine",
)
.not_null();
pub const FILE_RAW_VALUE: Setting<Text> = setting(
    "raw_value",
    TEXT,
    "the file's content as text, a template (sent base64-encoded; plans show only its digest)",
)
.not_null();
pub const FILE_LOCAL_FILE_KEY: &str = "local_file";
pub const FILE_LOCAL_FILE: Setting<Text> = text(
    FILE_LOCAL_FILE_KEY,
    "a regular file inside the spec's directory tree (or --secrets-dir), read like secret files; its content is sent",
)
.not_null();
pub const FILE_SECRET_NAME: Setting<Text> = text(
    "secret_name",
    "an app secret declared in `secrets`, whose value Fly writes into the file",
)
.not_null();
/// The sources of a file; exactly one per file.
pub const FILE_SOURCES: [&Setting<Text>; 3] =
    [&FILE_RAW_VALUE, &FILE_LOCAL_FILE, &FILE_SECRET_NAME];
pub const FILE_FIELDS: &[Field] = &[
    FILE_GUEST_PATH.field,
    FILE_RAW_VALUE.field,
    FILE_LOCAL_FILE.field,
    FILE_SECRET_NAME.field,
];
pub const FILES: Setting<Tree> = tree(
    "files",
    Ty::List(&Ty::Struct(FILE_FIELDS)),
    "files written into the Machine, each with exactly one of raw_value, local_file, secret_name (unset: not managed)",
);

// Process groups (fly.toml's `[processes]`): Machines per group, each group's settings
// over the entry's (keys relative to a group). Resolved in `spec::groups`.

pub const GROUP_CMD: Setting<Tree> = tree(
    "cmd",
    Ty::List(&TEXT),
    "the group's command, replacing the image's (Fly's `init.cmd`, as flyctl sends it)",
);
pub const GROUP_FIELDS: &[Field] = &[
    GROUP_CMD.field,
    COUNT.field,
    STANDBYS.field,
    SERVICES.field,
    CHECKS.field,
    SIZE.field,
    MEMORY.field,
    ENV.field,
];
pub const PROCESS_GROUPS: Setting<Tree> = tree(
    "process_groups",
    Ty::Dict(&Ty::Struct(GROUP_FIELDS)),
    "process groups by name, as in fly.toml: Machines per group, each with its own cmd, count, standbys, services, checks, size, memory and env over the entry's (unset: one group of `count` Machines, as without)",
);

/// Settings that defaults, tiers, tenants and shared apps can all set.
pub const SETTINGS_FIELDS: &[Field] = &[
    IMAGE.field,
    REGION.field,
    FALLBACK_REGIONS.field,
    SIZE.field,
    MEMORY.field,
    COUNT.field,
    IDLE.field,
    SERVICES.field,
    CHECKS.field,
    RESTART.field,
    // Pass-through Machine config (`decl::machine`).
    STOP_CONFIG.field,
    RESTART_MAX_RETRIES.field,
    INIT.field,
    DNS.field,
    METRICS.field,
    STATICS.field,
    AUTO_DESTROY.field,
    SCHEDULE.field,
    STANDBYS.field,
    ENV.field,
    METADATA.field,
    VOLUME.field,
    SECRETS.field,
    BACKUPS.field,
    LIFECYCLE.field,
    USAGE.field,
    IPS.field,
    FLYCAST_NETWORK.field,
    HOSTNAMES.field,
    PROCESSES.field,
    FILES.field,
    PROCESS_GROUPS.field,
];

// ---------------------------------------------------------------------------------------
// Entries: tenants, generators, shared apps (keys relative to the entry).

pub const DEFAULT_APP_NAME: &str = "{{ org }}-{{ tenant.name }}";
pub const DEFAULT_MACHINE_NAME: &str = "{{ tenant.name }}-{{ index }}";
pub const DEFAULT_SHARED_MACHINE_NAME: &str = "{{ app }}-{{ index }}";
/// The default Fly volume name: index 0 is the volume's logical name for every `count`,
/// later indexes append `_INDEX`, so changing `count` never renames a kept slot's volume.
pub const DEFAULT_VOLUME_NAME: &str = "{{ volume.name }}{% if index > 0 %}_{{ index }}{% endif %}";
/// What the default volume name of index 0 was when `count` was above 1 (`data_0`):
/// an existing volume under this name keeps it (see `VolumeSpec::aliases`).
pub const LEGACY_FIRST_VOLUME_SUFFIX: &str = "_0";

pub const ENTRY_NAME: Setting<Text> = text("name", "the tenant's or app's name").not_null();
pub const ENTRY_TIER: Setting<Text> =
    text("tier", "the tier whose settings the entry inherits").not_null();
/// Keys of a tenant entry besides the settings.
pub const TENANT_KEYS: &[Field] = &[ENTRY_NAME.field, ENTRY_TIER.field];

pub const APP_MACHINES: Setting<Count> = int(
    "machines",
    0,
    1_000_000,
    "the shared app's Machines (same as `count`)",
)
.not_null();
pub const APP_ROLE: Setting<Text> = text("role", "the role recorded in Machine metadata")
    .not_null()
    .default(DefaultValue::Str("shared"));
pub const APP_MACHINE_NAME: Setting<Text> =
    text("machine_name", "template of the shared app's Machine names")
        .not_null()
        .default(DefaultValue::Str(DEFAULT_SHARED_MACHINE_NAME));
/// Keys of a shared app entry besides the settings.
pub const APP_KEYS: &[Field] = &[
    ENTRY_NAME.field,
    ENTRY_TIER.field,
    APP_MACHINES.field,
    APP_ROLE.field,
    APP_MACHINE_NAME.field,
];

/// The most tenants one generator may produce.
pub const MAX_GENERATED: i64 = 100_000;
/// The most tenants one spec may declare (explicit entries and generators together),
/// counted before anything is expanded: a spec's memory grows with its tenants (about
/// 16 MB per 1,000), so a larger fleet is split into several specs.
pub const MAX_TENANTS: u64 = 50_000;
pub const GENERATE_COUNT: Setting<Count> =
    int("count", 1, MAX_GENERATED, "how many tenants to generate").not_null();
pub const GENERATE_NAME: Setting<Text> = text(
    "name",
    "template of the tenants' names, e.g. \"user-{{ i }}\"",
)
.not_null();
pub const GENERATE_TIER: Setting<Text> = text("tier", "the generated tenants' tier").not_null();
pub const GENERATE_START: Setting<Count> = int("start", 0, 1_000_000_000, "the first value of `i`")
    .not_null()
    .default(DefaultValue::Int(1));
pub const GENERATE_FIELDS: &[Field] = &[
    GENERATE_COUNT.field,
    GENERATE_NAME.field,
    GENERATE_TIER.field,
    GENERATE_START.field,
];
pub const GENERATE: Setting<Tree> = tree(
    "generate",
    Ty::Struct(GENERATE_FIELDS),
    "a tenant generator instead of a name",
)
.not_null();
pub const GENERATE_KEY: &[Field] = &[GENERATE.field];

/// Keys of tenant and app entries that are not settings (never layered).
pub const ENTRY_FIELDS: &[&[Field]] = &[TENANT_KEYS, GENERATE_KEY, APP_KEYS];

// ---------------------------------------------------------------------------------------
// The top level (keys relative to the document).

pub const NAMING_APP: Setting<Text> = text("naming.app", "template of tenant app names")
    .not_null()
    .default(DefaultValue::Str(DEFAULT_APP_NAME));
pub const NAMING_MACHINE: Setting<Text> =
    text("naming.machine", "template of tenant Machine names")
        .not_null()
        .default(DefaultValue::Str(DEFAULT_MACHINE_NAME));
pub const NAMING_VOLUME: Setting<Text> = text("naming.volume", "template of Fly volume names")
    .not_null()
    .default(DefaultValue::Str(DEFAULT_VOLUME_NAME));
pub const NAMING_FIELDS: &[Field] = &[NAMING_APP.field, NAMING_MACHINE.field, NAMING_VOLUME.field];

const SETTINGS_TY: Ty = Ty::Struct(SETTINGS_FIELDS);
pub const VERSION: Setting<Count> = int("version", 1, 1, "the spec format version").not_null();
pub const ORG: Setting<Text> = text("org", "the Fly organization slug").not_null();
pub const FLEET: Setting<Text> = text(
    "fleet",
    "names the set of resources this spec manages (several fleets share an org)",
)
.not_null()
.default(DefaultValue::Str(crate::resource::DEFAULT_FLEET));
/// The organization's Fly plan: its fee, included usage and free allowances.
pub const ORG_PLAN: Setting<Text> = choice(
    "org_plan",
    crate::platform::OrgPlan::CODES,
    "the organization's Fly plan, for its fee, included usage and free allowances (pay_as_you_go, hobby, launch, scale)",
)
.not_null()
.default(DefaultValue::Str("pay_as_you_go"));
/// Whether the organization kept its plan from before Fly stopped offering it.
pub const ORG_PLAN_LEGACY: Setting<Flag> = flag(
    "org_plan_legacy",
    false,
    "the organization has been on org_plan since before Fly stopped offering it to new organizations (2024-10-07), so it keeps the plan and its free allowances",
)
.not_null();
pub const NAMING: Setting<Tree> = tree(
    "naming",
    Ty::Struct(NAMING_FIELDS),
    "name templates (minijinja)",
)
.not_null();
pub const DEFAULTS: Setting<Tree> =
    tree("defaults", SETTINGS_TY, "settings of every tenant").not_null();
pub const TIERS: Setting<Tree> = tree(
    "tiers",
    Ty::Dict(&SETTINGS_TY),
    "settings by tier, over the defaults",
)
.not_null();
pub const TENANTS: Setting<Tree> = tree(
    "tenants",
    Ty::Tenants,
    "tenants: entries with a name, or generators",
)
.not_null();
pub const APPS: Setting<Tree> = tree(
    "apps",
    Ty::Apps,
    "shared apps (their tier's settings, not the defaults)",
)
.not_null();
/// Where the key secret fingerprints are computed under lives (see `secrets`): a secret
/// reference, never the key itself.
pub const FINGERPRINT_KEY: Setting<Tree> = tree(
    "fingerprint_key",
    Ty::SecretRef,
    "the key secret fingerprints are computed under, as a reference `{ env: VAR }` or `{ file: PATH }` (unset: FLOTILLA_FINGERPRINT_KEY)",
)
.not_null();
pub const TOP_FIELDS: &[Field] = &[
    VERSION.field,
    ORG.field,
    FLEET.field,
    ORG_PLAN.field,
    ORG_PLAN_LEGACY.field,
    FINGERPRINT_KEY.field,
    NAMING.field,
    DEFAULTS.field,
    TIERS.field,
    TENANTS.field,
    APPS.field,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{IdlePolicy, Usage};
    use crate::spec::yaml::parse;

    /// Every field of every table, with its dotted path.
    fn walk(prefix: &str, fields: &[Field], out: &mut Vec<(String, Field)>) {
        for f in fields {
            let path = if prefix.is_empty() {
                f.name.to_string()
            } else {
                format!("{prefix}.{}", f.name)
            };
            out.push((path.clone(), *f));
            let mut ty = f.ty;
            while let Ty::List(t) | Ty::Dict(t) = ty {
                ty = *t;
            }
            if let Ty::Struct(sub) = ty {
                walk(&path, sub, out);
            }
        }
    }

    #[test]
    fn every_field_is_documented_and_its_default_fits_its_type() {
        let mut all = Vec::new();
        walk("", TOP_FIELDS, &mut all);
        walk("entry", TENANT_KEYS, &mut all);
        walk("entry", APP_KEYS, &mut all);
        walk("entry", GENERATE_KEY, &mut all);
        assert!(all.len() > 70, "{}", all.len());
        for (path, f) in all {
            assert!(!f.doc.is_empty(), "{path} has no doc");
            let fits = match (f.default, f.ty) {
                (DefaultValue::None | DefaultValue::Derived(_), _) => true,
                (DefaultValue::Bool(_), Ty::Bool) => true,
                (DefaultValue::Int(v), Ty::Int { min, max }) => (min..=max).contains(&v),
                (DefaultValue::Decimal(v), Ty::Decimal { min, max }) => {
                    v >= min.into() && v <= max.into()
                }
                (DefaultValue::Str(_), Ty::Str) => true,
                (DefaultValue::Str(s), Ty::Enum(values)) => values.contains(&s),
                _ => false,
            };
            assert!(
                fits,
                "{path}: default {:?} does not fit {:?}",
                f.default, f.ty
            );
            if let (Some((lo, hi)), Ty::Int { min, max }) = (f.accepted, f.ty) {
                assert!(min <= lo && hi <= max, "{path}");
            }
        }
    }

    #[test]
    fn defaults_agree_with_the_resource_defaults() {
        let empty = parse(b"{}").unwrap();
        let u = Usage::default();
        assert_eq!(
            USAGE_ACTIVE_HOURS.value(&empty),
            Some(u.active_hours_per_day)
        );
        assert_eq!(USAGE_ROOTFS_GB.value(&empty), Some(u.rootfs_gb));
        assert_eq!(USAGE_EGRESS_GB.value(&empty), Some(u.egress_gb_month));
        assert_eq!(
            USAGE_PRIVATE_EGRESS_GB.value(&empty),
            Some(u.private_egress_gb_month)
        );
        assert_eq!(USAGE_VOLUME_USED_GB.value(&empty), u.volume_used_gb);
        assert_eq!(
            USAGE_SNAPSHOT_DAILY_CHANGE.value(&empty),
            Some(u.snapshot_daily_change)
        );
        assert_eq!(USAGE_DEDICATED_IPV4.value(&empty), Some(u.dedicated_ipv4));
        assert_eq!(USAGE_CERTIFICATES.value(&empty), Some(u.certificates));
        assert_eq!(
            USAGE_WILDCARD_CERTIFICATES.value(&empty),
            Some(u.wildcard_certificates)
        );
        let i = IdlePolicy::default();
        assert_eq!(IDLE_MODE.value(&empty), Some(i.mode));
        assert_eq!(IDLE_AUTOSTART.value(&empty), Some(i.autostart));
        assert_eq!(IDLE_MIN_RUNNING.value(&empty), Some(i.min_running));
    }

    #[test]
    fn typed_reads_follow_the_key() {
        let n = parse(b"volume: {size_gb: 3, mount: /d}\ncount: x\nidle: {mode: stop}\n").unwrap();
        assert_eq!(VOLUME_SIZE_GB.located(&n).map(|v| v.0), Some(3));
        assert_eq!(VOLUME_MOUNT.value(&n), Some("/d"));
        assert_eq!(VOLUME_NAME.value(&n), Some("data"));
        assert_eq!(COUNT.get(&n), None, "a wrong type reads as unset");
        assert_eq!(COUNT.value(&n), Some(1));
        assert_eq!(IDLE_MODE.value(&n), Some(IdleMode::Stop));
        assert_eq!(VOLUME_SIZE_GB.field.name, "size_gb");
        assert_eq!(VOLUME_SIZE_GB.range(), (1, 500));
    }
}
