//! Declarations of the pass-through Machine config settings (`stop_config`,
//! `restart_max_retries`, `init`, `dns`, `metrics`, `statics`, `auto_destroy`,
//! `schedule`, `standbys`), named as in Fly's Machine config. They are read into
//! `resource::MachineExtras` by `spec::resolve`; kept in their own module so the group
//! reads as one.

use super::{
    Count, Flag, PortNumber, STR, Setting, TEXT, Text, Tree, choice, int, port, setting, text, tree,
};
use crate::resource::machine_config::{SCHEDULES, SIGNALS};
use crate::spec::schema::{Field, Ty};

/// The longest `stop_config.timeout` flotilla accepts (a day), in seconds: a bound
/// against typos (`30h` for `30s`); Fly documents no maximum in its Machine API.
pub const STOP_TIMEOUT_MAX_SECS: u64 = 86_400;

const fn optional_flag(key: &'static str, doc: &'static str) -> Setting<Flag> {
    setting(key, Ty::Bool, doc)
}

pub const STOP_SIGNAL: Setting<Text> = choice(
    "stop_config.signal",
    SIGNALS,
    "the signal Fly sends to stop the Machine (unset: Fly's default, SIGINT)",
);
pub const STOP_TIMEOUT: Setting<Text> = text(
    "stop_config.timeout",
    "how long Fly waits after the signal before killing the Machine, a duration such as `30s` or `1m30s` (unset: Fly's default, 5s)",
);
pub const STOP_CONFIG_FIELDS: &[Field] = &[STOP_SIGNAL.field, STOP_TIMEOUT.field];
pub const STOP_CONFIG: Setting<Tree> = tree(
    "stop_config",
    Ty::Struct(STOP_CONFIG_FIELDS),
    "how Fly stops the Machine (Fly's `stop_config`; unset: not managed)",
);

pub const RESTART_MAX_RETRIES: Setting<Count> = int(
    "restart_max_retries",
    0,
    1_000_000,
    "Fly's `restart.max_retries`: restarts tried under the on-failure policy (unset: Fly's default, 10)",
);

const TEXTS: Ty = Ty::List(&TEXT);
const STRS: Ty = Ty::List(&STR);

pub const INIT_CMD: Setting<Tree> = tree(
    "init.cmd",
    TEXTS,
    "arguments replacing the image's CMD; values may be templates",
);
pub const INIT_ENTRYPOINT: Setting<Tree> = tree(
    "init.entrypoint",
    TEXTS,
    "command replacing the image's ENTRYPOINT; values may be templates",
);
pub const INIT_EXEC: Setting<Tree> = tree(
    "init.exec",
    TEXTS,
    "command run instead of the image's entrypoint and CMD; values may be templates",
);
pub const INIT_TTY: Setting<Flag> =
    optional_flag("init.tty", "allocate a TTY for the main process");
pub const INIT_SWAP_SIZE_MB: Setting<Count> = int(
    "init.swap_size_mb",
    0,
    1_000_000,
    "swap space for the Machine, MB",
);
pub const INIT_KERNEL_ARGS: Setting<Tree> = tree(
    "init.kernel_args",
    TEXTS,
    "extra kernel command-line arguments",
);
pub const INIT_FIELDS: &[Field] = &[
    INIT_CMD.field,
    INIT_ENTRYPOINT.field,
    INIT_EXEC.field,
    INIT_TTY.field,
    INIT_SWAP_SIZE_MB.field,
    INIT_KERNEL_ARGS.field,
];
pub const INIT: Setting<Tree> = tree(
    "init",
    Ty::Struct(INIT_FIELDS),
    "the Machine's init (Fly's `init`: cmd, entrypoint, exec, tty, swap; unset: not managed)",
);

pub const DNS_OPTION_NAME: Setting<Text> = text("name", "the resolver option's name").not_null();
pub const DNS_OPTION_VALUE: Setting<Text> = text("value", "the resolver option's value");
pub const DNS_OPTION_FIELDS: &[Field] = &[DNS_OPTION_NAME.field, DNS_OPTION_VALUE.field];
pub const DNS_SKIP_REGISTRATION: Setting<Flag> = optional_flag(
    "dns.skip_registration",
    "leave the Machine out of the app's internal DNS (.internal)",
);
pub const DNS_NAMESERVERS: Setting<Tree> = tree(
    "dns.nameservers",
    STRS,
    "resolvers the Machine uses, IP addresses",
);
pub const DNS_SEARCHES: Setting<Tree> = tree("dns.searches", STRS, "DNS search domains");
pub const DNS_OPTIONS: Setting<Tree> = tree(
    "dns.options",
    Ty::List(&Ty::Struct(DNS_OPTION_FIELDS)),
    "resolver options (`resolv.conf` options), each a `{ name, value }`",
);
pub const DNS_FIELDS: &[Field] = &[
    DNS_SKIP_REGISTRATION.field,
    DNS_NAMESERVERS.field,
    DNS_SEARCHES.field,
    DNS_OPTIONS.field,
];
pub const DNS: Setting<Tree> = tree(
    "dns",
    Ty::Struct(DNS_FIELDS),
    "the Machine's DNS settings (Fly's `dns`; unset: not managed)",
);

pub const METRICS_PORT: Setting<PortNumber> = port(
    "metrics.port",
    "the port Fly scrapes Prometheus metrics from",
);
pub const METRICS_PATH: Setting<Text> =
    text("metrics.path", "the HTTP path Fly scrapes, e.g. /metrics");
pub const METRICS_FIELDS: &[Field] = &[METRICS_PORT.field, METRICS_PATH.field];
pub const METRICS: Setting<Tree> = tree(
    "metrics",
    Ty::Struct(METRICS_FIELDS),
    "custom Prometheus metrics Fly scrapes (Fly's `metrics`; unset: not managed)",
);

pub const STATIC_GUEST_PATH: Setting<Text> = text(
    "guest_path",
    "the absolute directory inside the Machine whose files are served",
)
.not_null();
pub const STATIC_URL_PREFIX: Setting<Text> = text(
    "url_prefix",
    "the URL path the files are served under, starting with /",
)
.not_null();
pub const STATIC_TIGRIS_BUCKET: Setting<Text> = text(
    "tigris_bucket",
    "serve the files from this Tigris bucket instead of the Machine",
);
pub const STATIC_INDEX_DOCUMENT: Setting<Text> = text(
    "index_document",
    "the file served for a directory, e.g. index.html",
);
pub const STATIC_FIELDS: &[Field] = &[
    STATIC_GUEST_PATH.field,
    STATIC_URL_PREFIX.field,
    STATIC_TIGRIS_BUCKET.field,
    STATIC_INDEX_DOCUMENT.field,
];
pub const STATICS: Setting<Tree> = tree(
    "statics",
    Ty::List(&Ty::Struct(STATIC_FIELDS)),
    "static files Fly's proxy serves without the Machine (Fly's `statics`; unset: not managed)",
);

pub const AUTO_DESTROY: Setting<Flag> = optional_flag(
    "auto_destroy",
    "destroy the Machine when its process exits (unset: not managed; Fly's default false)",
);
pub const SCHEDULE: Setting<Text> = choice(
    "schedule",
    SCHEDULES,
    "run the Machine on this interval (hourly, daily, weekly, monthly); apply creates it stopped and plans do not expect it running",
);

/// The most standbys one Machine may have: Fly starts one when the primary's host fails
/// (flyctl makes one); more only add stopped Machines and their root disks.
pub const MAX_STANDBYS: u32 = 3;
pub const STANDBYS: Setting<Count> = int(
    "standbys",
    0,
    1_000_000,
    "standby Machines per Machine: created stopped with the same config and Fly's `standbys: [PRIMARY_ID]`, started by Fly when the primary's host fails (not with a volume)",
)
.default(super::DefaultValue::Int(0))
.accepts(0, MAX_STANDBYS as i64);
