//! The process environment and terminal, read once when the command starts and passed
//! down as plain values: `NO_COLOR`, whether stdin, stdout and stderr are terminals, and
//! `FLY_API_TOKEN` / `FLY_API_HOSTNAME`, `FLOTILLA_PLAN_KEY` (authenticates saved plans)
//! and `FLOTILLA_FINGERPRINT_KEY` (keys secret fingerprints), and for `comment github`
//! `GITHUB_TOKEN`, `GITHUB_REPOSITORY` and `GITHUB_API_URL`. Secret values are the exception: they are read
//! at apply time by `ops::target::secret_from_env`.
//!
//! Who is applying, for the fleet lock's holder line: the host name (`HOSTNAME`,
//! `COMPUTERNAME`, else `/etc/hostname`), the user (`USER`, `USERNAME`) and the CI run
//! (GitHub Actions' `GITHUB_SERVER_URL`/`GITHUB_REPOSITORY`/`GITHUB_RUN_ID`, GitLab's
//! `CI_JOB_URL`, `BUILD_URL` (Jenkins), `CIRCLE_BUILD_URL`, `BUILDKITE_BUILD_URL`).

use std::io::IsTerminal;

use crate::render::Style;

/// What the command may know about its environment.
#[derive(Clone, Default)]
pub struct Env {
    /// `NO_COLOR` is set to something.
    pub no_color: bool,
    pub stdin_tty: bool,
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    /// `FLY_API_TOKEN` (never shown by `Debug`).
    pub fly_api_token: Option<String>,
    /// `FLY_API_HOSTNAME`.
    pub fly_api_hostname: Option<String>,
    /// `FLOTILLA_PLAN_KEY` when set and not empty (never shown by `Debug`).
    pub plan_key: Option<String>,
    /// This host's name, when known.
    pub host: Option<String>,
    /// The user running flotilla, when known.
    pub user: Option<String>,
    /// The CI run this process belongs to (its URL, or an ID), when any.
    pub ci_run: Option<String>,
    /// `FLOTILLA_FINGERPRINT_KEY` when set and not empty (never shown by `Debug`).
    pub fingerprint_key: Option<String>,
    /// `GITHUB_TOKEN` when set and not blank (never shown by `Debug`), for `comment github`.
    pub github_token: Option<String>,
    /// `GITHUB_REPOSITORY` (OWNER/NAME) and `GITHUB_API_URL`, for `comment github`.
    pub github_repository: Option<String>,
    pub github_api_url: Option<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

impl Env {
    /// Reads the environment and the terminals.
    pub fn read() -> Env {
        Env {
            no_color: var("NO_COLOR").is_some_and(|v| !v.is_empty()),
            stdin_tty: std::io::stdin().is_terminal(),
            stdout_tty: std::io::stdout().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
            fly_api_token: var("FLY_API_TOKEN"),
            fly_api_hostname: var("FLY_API_HOSTNAME"),
            plan_key: var("FLOTILLA_PLAN_KEY").filter(|k| !k.is_empty()),
            host: host_name(),
            user: set("USER").or_else(|| set("USERNAME")),
            ci_run: ci_run(&set),
            fingerprint_key: var("FLOTILLA_FINGERPRINT_KEY").filter(|k| !k.trim().is_empty()),
            github_token: set("GITHUB_TOKEN"),
            github_repository: set("GITHUB_REPOSITORY"),
            github_api_url: set("GITHUB_API_URL"),
        }
    }

    /// Who is applying, as the fleet lock shows it: `USER@HOST (CI run)`.
    pub fn holder(&self) -> String {
        let host = self.host.as_deref().unwrap_or("an unnamed host");
        let mut s = match &self.user {
            Some(u) => format!("{u}@{host}"),
            None => host.to_string(),
        };
        if let Some(ci) = &self.ci_run {
            s.push_str(&format!(" ({ci})"));
        }
        s
    }

    /// The key saved plans are authenticated with.
    pub fn plan_key(&self) -> Option<crate::plan::saved::PlanKey> {
        self.plan_key
            .as_deref()
            .map(|k| crate::plan::saved::PlanKey::new(k.as_bytes()))
    }

    /// The key secret fingerprints are computed under; a key too short to be safe is an
    /// error (which never shows the key).
    pub fn fingerprint_key(
        &self,
    ) -> Result<Option<crate::secrets::FingerprintKey>, crate::ops::Error> {
        let Some(k) = self.fingerprint_key.as_deref() else {
            return Ok(None);
        };
        crate::secrets::FingerprintKey::new(k)
            .map(Some)
            .map_err(|why| {
                crate::ops::Error::new(
                    crate::diag::Diagnostic::error(format!("FLOTILLA_FINGERPRINT_KEY: {why}"))
                        .hint("use a generated key, e.g. `openssl rand -hex 32`"),
                )
            })
    }

    /// Colours for stdout: on a terminal, unless `NO_COLOR` or `--no-color`.
    pub fn style(&self, no_color_flag: bool) -> Style {
        Style {
            color: !no_color_flag && !self.no_color && self.stdout_tty,
        }
    }
}

/// A variable that is set and not blank.
fn set(name: &str) -> Option<String> {
    var(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn host_name() -> Option<String> {
    set("HOSTNAME").or_else(|| set("COMPUTERNAME")).or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
    })
}

/// The CI run, from the variables CI systems set (`get` reads one).
fn ci_run(get: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let (Some(server), Some(repo), Some(run)) = (
        get("GITHUB_SERVER_URL"),
        get("GITHUB_REPOSITORY"),
        get("GITHUB_RUN_ID"),
    ) {
        return Some(format!("{server}/{repo}/actions/runs/{run}"));
    }
    [
        "CI_JOB_URL",
        "BUILD_URL",
        "CIRCLE_BUILD_URL",
        "BUILDKITE_BUILD_URL",
    ]
    .iter()
    .find_map(|k| get(k))
    .or_else(|| get("GITHUB_RUN_ID").map(|id| format!("CI run {id}")))
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("no_color", &self.no_color)
            .field("stdin_tty", &self.stdin_tty)
            .field("stdout_tty", &self.stdout_tty)
            .field("stderr_tty", &self.stderr_tty)
            .field(
                "fly_api_token",
                &self.fly_api_token.as_ref().map(|_| "<redacted>"),
            )
            .field("fly_api_hostname", &self.fly_api_hostname)
            .field("plan_key", &self.plan_key.as_ref().map(|_| "<redacted>"))
            .field("host", &self.host)
            .field("user", &self.user)
            .field("ci_run", &self.ci_run)
            .field(
                "fingerprint_key",
                &self.fingerprint_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "github_token",
                &self.github_token.as_ref().map(|_| "<redacted>"),
            )
            .field("github_repository", &self.github_repository)
            .field("github_api_url", &self.github_api_url)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_needs_a_terminal_and_no_opt_out() {
        let tty = Env {
            stdout_tty: true,
            ..Env::default()
        };
        assert!(tty.style(false).color);
        assert!(!tty.style(true).color);
        let no_color = Env {
            no_color: true,
            ..tty.clone()
        };
        assert!(!no_color.style(false).color);
        assert!(!Env::default().style(false).color);
    }

    #[test]
    fn the_holder_names_user_host_and_ci_run() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let gh = vars(&[
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/fleet"),
            ("GITHUB_RUN_ID", "42"),
        ]);
        assert_eq!(
            ci_run(&gh).as_deref(),
            Some("https://github.com/acme/fleet/actions/runs/42")
        );
        let gl = vars(&[("CI_JOB_URL", "https://gitlab.example/j/7")]);
        assert_eq!(ci_run(&gl).as_deref(), Some("https://gitlab.example/j/7"));
        assert_eq!(ci_run(&vars(&[])), None);
        let env = Env {
            host: Some("runner-3".into()),
            user: Some("ci".into()),
            ci_run: Some("https://ci/run/1".into()),
            ..Env::default()
        };
        assert_eq!(env.holder(), "ci@runner-3 (https://ci/run/1)");
        assert_eq!(Env::default().holder(), "an unnamed host");
    }

    #[test]
    fn a_short_fingerprint_key_is_refused_without_echo() {
        let env = Env {
            fingerprint_key: Some("hunter2-short".into()),
            ..Env::default()
        };
        let e = env.fingerprint_key().unwrap_err().to_string();
        assert!(
            e.contains("FLOTILLA_FINGERPRINT_KEY") && !e.contains("hunter2"),
            "{e}"
        );
        let ok = Env {
            fingerprint_key: Some("9".repeat(64)),
            ..Env::default()
        };
        assert!(ok.fingerprint_key().unwrap().is_some());
        assert!(Env::default().fingerprint_key().unwrap().is_none());
    }

    #[test]
    fn debug_redacts_the_token() {
        let env = Env {
            fly_api_token: Some("fo1_s3cr3t".into()),
            plan_key: Some("k3y-s3cr3t".into()),
            fingerprint_key: Some("fp-k3y-s3cr3t".into()),
            ..Env::default()
        };
        let shown = format!("{env:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.matches("<redacted>").count() == 3,
            "{shown}"
        );
    }
}
