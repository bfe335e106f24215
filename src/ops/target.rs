//! Where the observed state comes from when it is not a file: the Fly API or the
//! in-process simulator. Connecting (API URL resolution, the token, starting the
//! simulator), observing an organization, and reading secret values — including the
//! simulator's placeholders for values that are not set.
//!
//! Nothing here reads the process environment but [`secret_from_env`]: the API token
//! and hostname come in through [`TargetOptions`].

use crate::secret_files::{FilePolicy, Refusal};
use std::collections::HashSet;
use std::future::Future;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};
use crate::fly::client::{ApiError, Client, ClientConfig, DEFAULT_API, Token};
use crate::ops::Error;
use crate::resource::{Desired, SecretSource, Spec};
use crate::secrets::{FingerprintKey, Keying, SecretValue, SecretValues, public_keying_warning};
use crate::sim::{SimConfig, SimHandle};
use crate::state::Snapshot;

/// The simulator's state file when `--sim` names none.
pub const DEFAULT_SIM_STATE: &str = ".flotilla/sim.json";

/// Which API to talk to, and how.
#[derive(Clone)]
pub struct TargetOptions {
    /// Run the in-process simulator, persisted to this file (`--sim`). Wins over the API.
    pub sim: Option<PathBuf>,
    /// The API base URL (`--api`); else `api_hostname`, else Fly's.
    pub api: Option<String>,
    /// `FLY_API_HOSTNAME`, as the caller read it.
    pub api_hostname: Option<String>,
    /// `FLY_API_TOKEN`, as the caller read it (never shown by `Debug`).
    pub api_token: Option<String>,
    /// How much faster than real time the API's clock runs (default 1).
    pub time_scale: f64,
    /// Log every HTTP request to stderr (never the token).
    pub debug: bool,
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            sim: None,
            api: None,
            api_hostname: None,
            api_token: None,
            time_scale: 1.0,
            debug: false,
        }
    }
}

impl std::fmt::Debug for TargetOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetOptions")
            .field("sim", &self.sim)
            .field("api", &self.api)
            .field("api_hostname", &self.api_hostname)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .field("time_scale", &self.time_scale)
            .field("debug", &self.debug)
            .finish()
    }
}

fn non_empty(v: &Option<String>) -> bool {
    v.as_ref().is_some_and(|s| !s.is_empty())
}

impl TargetOptions {
    /// Whether a live API is named: the simulator, an API URL, a hostname or a token.
    pub fn is_live(&self) -> bool {
        self.sim.is_some()
            || self.api.is_some()
            || non_empty(&self.api_hostname)
            || non_empty(&self.api_token)
    }

    /// Whether secret values that are not set may be replaced by placeholders: only in
    /// the in-process simulator, so a sandbox needs no real keys.
    pub fn placeholders(&self) -> bool {
        self.sim.is_some()
    }

    /// Connects: starts the in-process simulator, else checks the URL and the token.
    pub async fn connect(&self) -> Result<Target, Diagnostic> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(Diagnostic::error("--time-scale must be a positive number"));
        }
        match &self.sim {
            Some(state) => self.start_sim(state).await,
            None => self.connect_api(),
        }
    }

    async fn start_sim(&self, state: &Path) -> Result<Target, Diagnostic> {
        if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Diagnostic::error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let token = format!("sim-{:016x}", rand::random::<u64>());
        let cfg = SimConfig {
            token: token.clone(),
            time_scale: self.time_scale,
            seed: rand::random(),
            state_file: Some(state.to_path_buf()),
            ..SimConfig::default()
        };
        let handle = crate::sim::start(cfg, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| {
                Diagnostic::error(format!("cannot start the simulator: {e}")).hint(format!(
                    "if {} is damaged, move it away to start from an empty org",
                    state.display()
                ))
            })?;
        let client = self.client(&handle.base_url(), Token::new(token))?;
        Ok(Target {
            client,
            source: format!("sim:{}", state.display()),
            sim: Some(handle),
        })
    }

    fn connect_api(&self) -> Result<Target, Diagnostic> {
        let (base, shown) = resolve_api(self.api.as_deref(), self.api_hostname.as_deref())?;
        let token = self
            .api_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Diagnostic::error("FLY_API_TOKEN is not set").hint("export a token (`fly tokens create org`), or use --sim to try flotilla against the local simulator")
            })?;
        let client = self.client(&base, Token::new(token.to_string()))?;
        Ok(Target {
            client,
            sim: None,
            source: format!("api:{shown}"),
        })
    }

    fn client(&self, base: &str, token: Token) -> Result<Client, Diagnostic> {
        let mut cfg = ClientConfig::new(base, token);
        cfg.time_scale = self.time_scale;
        cfg.debug = self.debug;
        Client::new(cfg).map_err(Diagnostic::error)
    }
}

/// A connected API.
pub struct Target {
    pub client: Client,
    /// The in-process simulator, when `--sim` (shut it down to save its state).
    pub sim: Option<SimHandle>,
    /// `sim:PATH` or `api:URL` (without any `user:password@`): recorded in journals and
    /// saved plans.
    pub source: String,
}

impl Target {
    /// Observes the organization `desired` declares. A failure says what to check.
    pub async fn observe(&self, desired: &Desired) -> Result<Snapshot, Diagnostic> {
        crate::fly::observe::observe(
            &self.client,
            &desired.org,
            &declared_apps(desired),
            crate::fly::observe::CONCURRENCY,
        )
        .await
        .map_err(|e| observe_error(&desired.org, &self.source, &e))
    }

    /// Shuts the in-process simulator down (saving its state), if there is one.
    pub async fn close(&mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
    }
}

/// A connected target with the runtime it runs on, for synchronous callers. Dropping it
/// shuts the simulator down and saves its state; do not drop it inside async code.
pub struct Session {
    // Declared before the runtime: dropped first, while the runtime still runs.
    target: Target,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    /// Starts a runtime and connects.
    pub fn connect(opts: &TargetOptions) -> Result<Session, Error> {
        let runtime = crate::ops::runtime()?;
        let target = runtime.block_on(opts.connect())?;
        Ok(Session { target, runtime })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Runs `f` on the session's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Observes the organization `desired` declares.
    pub fn observe(&self, desired: &Desired) -> Result<Snapshot, Error> {
        Ok(self.block_on(self.target.observe(desired))?)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(sim) = self.target.sim.take() {
            self.runtime.block_on(sim.shutdown());
        }
    }
}

/// `cannot observe org ORG: …`, with a hint by cause. `source` is [`Target::source`].
pub(crate) fn observe_error(org: &str, source: &str, e: &ApiError) -> Diagnostic {
    let d = Diagnostic::error(format!("cannot observe org {org}: {e}"));
    let endpoint = source.strip_prefix("api:").unwrap_or(source);
    match e {
        ApiError::Status {
            status: 401 | 403, ..
        } => d.hint(format!(
            "check FLY_API_TOKEN: it must be a valid token with access to org `{org}` (`fly tokens create org {org}`), and check `org:` in the spec"
        )),
        ApiError::Status { status: 404, .. } => d.hint(format!(
            "no organization `{org}` was found at {endpoint}: check `org:` in the spec (the org's slug, as `fly orgs list` shows it)"
        )),
        ApiError::Status { status: 429, .. } => {
            d.hint("the API kept rate-limiting the requests; wait a minute and try again")
        }
        ApiError::Status { status: 500.., .. } => {
            d.hint("the API is failing; try again in a moment")
        }
        ApiError::Status { .. } => d,
        ApiError::Transport { .. } | ApiError::Unknown { .. } => d.hint(format!(
            "check the API URL ({endpoint}), set by --api or FLY_API_HOSTNAME, and the network"
        )),
    }
}

/// Resolves the API base URL from `--api`, else `FLY_API_HOSTNAME`, else Fly's. Returns
/// the URL to call and the one to record (without `user:password@`). The token goes
/// with every request, so plain `http://` is refused unless the host is this machine.
fn resolve_api(api: Option<&str>, env: Option<&str>) -> Result<(String, String), Diagnostic> {
    let (raw, origin) = match (api, env.filter(|s| !s.is_empty())) {
        (Some(a), _) => (a, "--api"),
        (None, Some(h)) => (h, "FLY_API_HOSTNAME"),
        (None, None) => (DEFAULT_API, "the default API URL"),
    };
    let base = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let shown = without_userinfo(&base);
    let url = reqwest::Url::parse(&base).map_err(|e| {
        Diagnostic::error(format!("{origin} {shown}: not a valid URL ({e})"))
            .hint("give the API's base URL, e.g. https://api.machines.dev")
    })?;
    match url.scheme() {
        "https" => {}
        "http" if url.host_str().is_some_and(plain_http_is_private) => {}
        "http" => {
            return Err(Diagnostic::error(format!(
                "{origin} {shown}: refusing to send FLY_API_TOKEN over plain http to another machine, where anyone on the way could read it"
            ))
            .hint(
                "use https:// (Fly's API is https://api.machines.dev), or --sim for the local simulator; http:// is accepted only for this machine (127.0.0.1, ::1, localhost) and Fly private-network names (e.g. http://_api.internal:4280)",
            ));
        }
        other => {
            return Err(Diagnostic::error(format!(
                "{origin} {shown}: unsupported scheme `{other}`"
            ))
            .hint("use an https:// URL, e.g. https://api.machines.dev"));
        }
    }
    Ok((base, shown))
}

/// Whether plain http to this host (as `Url::host_str` gives it) stays private: this
/// machine, or a `.internal` name of a Fly private network (e.g. Fly's own
/// `http://_api.internal:4280`), whose traffic is carried encrypted by WireGuard.
fn plain_http_is_private(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => {
            let h = host.to_ascii_lowercase();
            h == "localhost" || h.ends_with(".internal")
        }
    }
}

/// The URL without `user:password@` (never recorded anywhere).
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The app names a desired state manages (for the observer).
pub fn declared_apps(d: &Desired) -> HashSet<String> {
    d.apps.iter().cloned().collect()
}

/// A secret's value from the process environment: the one read of the environment the
/// operations make, since secret values by design come from it at apply time.
pub fn secret_from_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Secret values for `desired` (environment variables and files relative to `dir`),
/// with any warning. With `placeholders` (the simulator), values that are not set are
/// replaced by stable placeholders, with a warning naming them; otherwise every missing
/// value is an error.
///
/// Secret files are confined and bounded by `files` in both cases: a refused reference
/// (outside the confinement root, a system directory, not a regular file, too large) is
/// an error even with placeholders.
pub fn secret_values(
    desired: &Desired,
    dir: &Path,
    files: &FilePolicy,
    placeholders: bool,
) -> Result<(SecretValues, Diagnostics), Diagnostics> {
    match crate::secrets::load_values(desired, dir, files, &secret_from_env) {
        Ok(v) => Ok((v, Diagnostics::new())),
        Err(_) if placeholders => with_placeholders(desired, dir, files),
        Err(diags) => Err(diags),
    }
}

/// The part of `desired` whose secret values a run limited to `tenants` reads: the
/// secrets of those tenants and of the apps they live in (none of another tenant's).
/// Every tenant when `tenants` is empty.
pub fn secrets_scope(desired: &Desired, tenants: &[String]) -> Desired {
    if tenants.is_empty() {
        return desired.clone();
    }
    let apps: std::collections::HashSet<&str> = desired
        .tenants
        .iter()
        .filter(|t| tenants.contains(&t.name))
        .map(|t| t.app.as_str())
        .collect();
    let kept: Vec<crate::resource::Resource> = desired
        .resources
        .iter()
        .filter(|r| matches!(r.spec, Spec::Secret(_)))
        .filter(|r| {
            r.tenant.as_ref().is_some_and(|t| tenants.contains(t))
                || (r.tenant.is_none() && apps.contains(r.app.as_str()))
        })
        .cloned()
        .collect();
    Desired {
        resources: crate::resource::ResourceSet::new(kept),
        ..desired.clone()
    }
}

/// Every secret's value, or a placeholder derived from its address when it is not set.
fn with_placeholders(
    desired: &Desired,
    dir: &Path,
    files: &FilePolicy,
) -> Result<(SecretValues, Diagnostics), Diagnostics> {
    let mut values = SecretValues::default();
    let mut substituted: Vec<String> = Vec::new();
    let mut refused = Diagnostics::new();
    for r in desired.resources.iter() {
        let Spec::Secret(s) = &r.spec else { continue };
        let v = match real_value(&s.source, dir, files) {
            Ok(Some(v)) => v,
            Err(m) => {
                refused.push(
                    Diagnostic::error(format!(
                        "secret {} of app {}: secret file {m}",
                        s.name, r.app
                    ))
                    .address(r.address.to_string())
                    .hint(files.hint()),
                );
                continue;
            }
            Ok(None) => {
                if !substituted.contains(&s.name) {
                    substituted.push(s.name.clone());
                }
                let fp = Keying::Public.fingerprint(&desired.org, &r.app, &s.name, "placeholder");
                format!("flotilla-sim-placeholder-{fp}")
            }
        };
        values.values.insert(r.address.clone(), SecretValue::new(v));
    }
    if refused.has_errors() {
        return Err(refused);
    }
    let warning = Diagnostic::warning(format!(
        "secrets not set, replaced by placeholders in the simulator: {}",
        substituted.join(", ")
    ))
    .hint("export them (or create their files) to use real values; against Fly they are required");
    Ok((values, Diagnostics::one(warning)))
}

/// How this run keys secret fingerprints, with its warnings: the key the spec's
/// `fingerprint_key:` references (read like a secret value), else `given` (the caller's
/// `FLOTILLA_FINGERPRINT_KEY`), else the public derivation, with a warning. A key the
/// spec names but that is not set is an error — except in the simulator
/// (`placeholders`), where the run falls back to the public derivation with a warning.
pub fn fingerprint_keying(
    desired: &Desired,
    dir: &Path,
    files: &FilePolicy,
    given: Option<&FingerprintKey>,
    placeholders: bool,
) -> Result<(Keying, Diagnostics), Diagnostics> {
    let Some(source) = &desired.fingerprint_key else {
        return Ok(match given {
            Some(k) => (Keying::Key(k.clone()), Diagnostics::new()),
            None => (Keying::Public, Diagnostics::one(public_keying_warning())),
        });
    };
    let named = match source {
        SecretSource::Env(v) => format!("environment variable {v}"),
        SecretSource::File(f) => format!("file {f}"),
        SecretSource::Unknown => "an unknown source".to_string(),
    };
    let refused = |m: String| {
        Diagnostics::one(
            Diagnostic::error(format!(
                "the fingerprint key (`fingerprint_key:`, {named}): {m}"
            ))
            .hint("reference a regular file inside the spec's directory (or --secrets-dir)"),
        )
    };
    let Some(text) = real_value(source, dir, files).map_err(refused)? else {
        if placeholders {
            return Ok((Keying::Public, Diagnostics::one(public_keying_warning())));
        }
        return Err(Diagnostics::one(
            Diagnostic::error(format!(
                "the fingerprint key (`fingerprint_key:`, {named}) is not set"
            ))
            .hint("export it (or create the file) before planning with values or applying; the key is never printed or stored"),
        ));
    };
    let key = FingerprintKey::new(&text).map_err(|why| {
        Diagnostics::one(
            Diagnostic::error(format!("fingerprint_key ({named}): {why}"))
                .hint("use a generated key, e.g. `openssl rand -hex 32`"),
        )
    })?;
    let mut warnings = Diagnostics::new();
    if given.is_some_and(|g| g != &key) {
        warnings.push(
            Diagnostic::warning(
                "FLOTILLA_FINGERPRINT_KEY is ignored: the spec names its own fingerprint key",
            )
            .hint("unset FLOTILLA_FINGERPRINT_KEY, or remove `fingerprint_key:` from the spec"),
        );
    }
    Ok((Keying::Key(key), warnings))
}

/// A value when it is set; `Err` for a refused secret file (a missing one is `None`).
fn real_value(
    source: &SecretSource,
    dir: &Path,
    files: &FilePolicy,
) -> Result<Option<String>, String> {
    Ok(match source {
        SecretSource::Env(v) => secret_from_env(v).filter(|x| !x.is_empty()),
        SecretSource::File(f) => match files.read(dir, f) {
            Ok(v) => Some(v).filter(|x| !x.is_empty()),
            Err(Refusal::Missing(_)) => None,
            Err(Refusal::Refused(m)) => return Err(m),
        },
        SecretSource::Unknown => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_refused_except_to_this_machine() {
        for ok in [
            "http://127.0.0.1:4280",
            "http://[::1]:4280/",
            "http://localhost:4280",
            "http://LOCALHOST",
            "https://api.machines.dev",
            "https://flaps.internal:4280",
            "http://_api.internal:4280",
            "api.machines.dev",
        ] {
            assert!(resolve_api(Some(ok), None).is_ok(), "{ok}");
            assert!(resolve_api(None, Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.machines.dev",
            "http://10.0.0.5:4280",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com",
            "http://internal.example.com",
            "HTTP://example.com",
        ] {
            let e = resolve_api(Some(bad), None).unwrap_err().to_string();
            assert!(
                e.contains("--api") && e.contains("plain http"),
                "{bad}: {e}"
            );
            assert!(
                e.contains("use https://") && e.contains("--sim"),
                "{bad}: {e}"
            );
            let e = resolve_api(None, Some(bad)).unwrap_err().to_string();
            assert!(e.contains("FLY_API_HOSTNAME"), "{bad}: {e}");
        }
        let e = resolve_api(Some("ftp://example.com"), None).unwrap_err();
        assert!(e.to_string().contains("unsupported scheme"), "{e}");
        // --api wins over the environment; an empty FLY_API_HOSTNAME is unset.
        assert_eq!(
            resolve_api(Some("https://a.example"), Some("http://b.example"))
                .unwrap()
                .0,
            "https://a.example"
        );
        assert_eq!(resolve_api(None, Some("")).unwrap().0, DEFAULT_API);
        assert_eq!(
            resolve_api(None, Some("flaps.example:4280")).unwrap().0,
            "https://flaps.example:4280"
        );
    }

    #[test]
    fn the_recorded_url_has_no_credentials() {
        let (base, shown) =
            resolve_api(Some("https://user:pa55@api.example.com:8443/x?y=1"), None).unwrap();
        assert_eq!(base, "https://user:pa55@api.example.com:8443/x?y=1");
        assert_eq!(shown, "https://api.example.com:8443/x?y=1");
        assert_eq!(
            without_userinfo("http://tok@127.0.0.1:1/a@b"),
            "http://127.0.0.1:1/a@b"
        );
        assert_eq!(without_userinfo("https://a.example"), "https://a.example");
        assert_eq!(
            without_userinfo("https://a.example/p?q=u@v"),
            "https://a.example/p?q=u@v"
        );
        // Nor do the errors about it.
        let e = resolve_api(Some("http://user:pa55@example.com"), None)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pa55"), "{e}");
        let e = resolve_api(Some("https://user:pa55@exa mple.com"), None)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pa55"), "{e}");
    }

    #[test]
    fn observe_errors_say_what_to_check() {
        let status = |status: u16| ApiError::Status {
            method: "GET".into(),
            path: "/apps?org_slug=acme".into(),
            status,
            body: "{\"error\":\"x\"}".into(),
        };
        let hint = |e: &ApiError| {
            observe_error("acme", "api:https://api.example.com", e)
                .hint
                .unwrap_or_default()
        };
        for s in [401, 403] {
            let h = hint(&status(s));
            assert!(h.contains("FLY_API_TOKEN") && h.contains("org:"), "{h}");
        }
        let h = hint(&status(404));
        assert!(
            h.contains("`acme`") && h.contains("org:") && !h.contains("FLY_API_TOKEN"),
            "{h}"
        );
        let h = hint(&ApiError::Transport {
            method: "GET".into(),
            path: "/apps".into(),
            cause: "cannot connect: refused".into(),
        });
        assert!(
            h.contains("--api")
                && h.contains("FLY_API_HOSTNAME")
                && h.contains("https://api.example.com"),
            "{h}"
        );
        let d = observe_error("acme", "api:x", &status(401));
        assert!(
            d.message
                .starts_with("cannot observe org acme: GET /apps?org_slug=acme → 401"),
            "{}",
            d.message
        );
        assert!(hint(&status(400)).is_empty());
    }
}
