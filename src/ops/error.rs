//! The one error type of the operations: what went wrong as diagnostics (with the
//! warnings reported before it), an optional closing line, and a kind the command line
//! maps to an exit code.

use std::fmt;

use crate::diag::{Diagnostic, Diagnostics};

/// What kind of failure an [`Error`] is; the command line maps it to an exit code
/// (`Failed` → 1, `Budget` → 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The operation failed or refused (invalid input, an API error, a refusal, a
    /// failed apply).
    Failed,
    /// A budget guardrail was exceeded; the outcome was still produced and shown.
    Budget,
}

/// An operation's failure.
///
/// Shown as: the diagnostics (warnings that came before, then errors), then — after a
/// blank line when there were diagnostics — the closing `summary` line. An error with
/// neither is one the rendered outcome already shows (see [`Error::reported`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub kind: ErrorKind,
    /// Warnings reported before the failure, then what went wrong.
    pub diagnostics: Diagnostics,
    /// A closing line, e.g. `specs/x.yaml is not valid: 2 errors.`
    pub summary: Option<String>,
}

/// `FILE is not valid: N error(s).` — the closing line of an invalid spec or scenario.
pub fn not_valid(file: &str, errors: usize) -> String {
    format!(
        "{file} is not valid: {errors} error{}.",
        if errors == 1 { "" } else { "s" }
    )
}

impl Error {
    /// A failure described by one diagnostic.
    pub fn new(d: Diagnostic) -> Error {
        Error::from(Diagnostics::one(d))
    }

    /// An invalid input file: its diagnostics and the "is not valid" line.
    pub fn invalid(file: &str, diagnostics: Diagnostics) -> Error {
        let summary = not_valid(file, diagnostics.error_count());
        Error {
            kind: ErrorKind::Failed,
            diagnostics,
            summary: Some(summary),
        }
    }

    /// A failure the outcome already shows (a plan with errors, an apply with failed
    /// operations, invalid files in a validation): nothing more to print.
    pub fn reported() -> Error {
        Error {
            kind: ErrorKind::Failed,
            diagnostics: Diagnostics::new(),
            summary: None,
        }
    }

    /// A failure said in one plain line, without diagnostics.
    pub fn line(summary: impl Into<String>) -> Error {
        Error {
            summary: Some(summary.into()),
            ..Error::reported()
        }
    }

    /// An exceeded budget guardrail, with the line saying which and by what.
    pub fn budget(reason: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Budget,
            ..Error::line(reason)
        }
    }

    /// Adds a closing line.
    pub fn with_summary(mut self, summary: impl Into<String>) -> Error {
        self.summary = Some(summary.into());
        self
    }

    /// Puts `earlier` (warnings reported before the failure) in front of the error's own
    /// diagnostics.
    pub fn after(mut self, earlier: &Diagnostics) -> Error {
        if !earlier.is_empty() {
            let mut all = earlier.clone();
            all.extend(std::mem::take(&mut self.diagnostics));
            self.diagnostics = all;
        }
        self
    }
}

impl From<Diagnostics> for Error {
    fn from(diagnostics: Diagnostics) -> Error {
        Error {
            kind: ErrorKind::Failed,
            diagnostics,
            summary: None,
        }
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Error {
        Error::new(d)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.diagnostics)?;
        if let Some(s) = &self.summary {
            if !self.diagnostics.is_empty() {
                write!(f, "\n\n")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_diagnostics_then_a_blank_line_then_the_summary() {
        let e = Error::invalid("a.yaml", Diagnostics::one(Diagnostic::error("bad")));
        assert_eq!(e.to_string(), "error: bad\n\na.yaml is not valid: 1 error.");
        assert_eq!(Error::budget("over").to_string(), "over");
        assert_eq!(Error::budget("over").kind, ErrorKind::Budget);
        assert_eq!(Error::reported().to_string(), "");
        let w = Diagnostics::one(Diagnostic::warning("first"));
        let e = Error::new(Diagnostic::error("then")).after(&w);
        assert_eq!(e.to_string(), "warning: first\nerror: then");
        assert_eq!(not_valid("b", 2), "b is not valid: 2 errors.");
    }
}
