//! The process environment and terminal, read once when the command starts and passed
//! down as plain values: `NO_COLOR`, whether stdin, stdout and stderr are terminals, and
//! `FLY_API_TOKEN` / `FLY_API_HOSTNAME`. Secret values are the exception: they are read
//! at apply time by `ops::target::secret_from_env`.

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
        }
    }

    /// Colours for stdout: on a terminal, unless `NO_COLOR` or `--no-color`.
    pub fn style(&self, no_color_flag: bool) -> Style {
        Style {
            color: !no_color_flag && !self.no_color && self.stdout_tty,
        }
    }
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
    fn debug_redacts_the_token() {
        let env = Env {
            fly_api_token: Some("fo1_s3cr3t".into()),
            ..Env::default()
        };
        let shown = format!("{env:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
