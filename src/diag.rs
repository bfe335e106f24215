//! Diagnostics: errors and warnings a user can act on. Each names where (file:line:column
//! and/or a resource address), the path inside the spec (`tenants[3].memory`), what is
//! wrong and a hint. They are collected, never thrown one at a time.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Mark {
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
    /// Path inside the document, e.g. `tenants[3].memory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The resource this is about, e.g. `tenant.alice.machine[0]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: None,
            mark: None,
            path: None,
            address: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn at(mut self, mark: Mark) -> Self {
        self.mark = Some(mark);
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// ```text
    /// error: tenants[3].memory: 3000mb is not a multiple of 256 MB
    ///   --> specs/fleet.yaml:12:13
    ///   = resource: tenant.carol.machine[0]
    ///   = hint: use 2816mb or 3072mb
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: ")?;
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        write!(f, "{}", self.message)?;
        match (&self.file, self.mark) {
            (Some(file), Some(m)) => write!(f, "\n  --> {file}:{}:{}", m.line, m.col)?,
            (Some(file), None) => write!(f, "\n  --> {file}")?,
            _ => {}
        }
        if let Some(a) = &self.address {
            write!(f, "\n  = resource: {a}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  = hint: {h}")?;
        }
        Ok(())
    }
}

/// A list of diagnostics, errors first in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    pub fn one(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    pub fn error_count(&self) -> usize {
        self.errors().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Sorts by severity, then file position, and removes exact duplicates.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (a.severity, &a.file, a.mark, &a.path, &a.message)
                .cmp(&(b.severity, &b.file, b.mark, &b.path, &b.message))
        });
        self.0.dedup();
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics::one(d)
    }
}

/// The closest candidates to `word` (edit distance), best first, for "did you mean".
/// A JSON decoding error as a diagnostic at its line and column (the message without
/// serde's own "at line L column C", which the position already says).
pub fn json_error(what: &str, e: &serde_json::Error) -> Diagnostic {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    let d = Diagnostic::error(format!("{what}: {message}"));
    if e.line() == 0 {
        d
    } else {
        d.at(Mark {
            line: e.line() as u32,
            col: e.column() as u32,
        })
    }
}

pub fn close_matches<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Vec<&'a str> {
    let w = word.to_ascii_lowercase();
    let limit = (w.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let d = strsim::levenshtein(&w, &c.to_ascii_lowercase());
            let prefix = c.starts_with(&w) || w.starts_with(c);
            (d <= limit || (prefix && !w.is_empty())).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(max).map(|(_, c)| c).collect()
}

/// "did you mean `a`, `b`?" or a list of valid values when nothing is close.
pub fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
    what: &str,
) -> String {
    let close = close_matches(word, candidates.clone(), 3);
    if close.is_empty() {
        let all: Vec<&str> = candidates.into_iter().collect();
        if all.len() <= 20 {
            format!("valid {what}: {}", all.join(", "))
        } else {
            format!("see the list of valid {what}")
        }
    } else {
        let q: Vec<String> = close.iter().map(|c| format!("`{c}`")).collect();
        format!("did you mean {}?", q.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_location_path_and_hint() {
        let d = Diagnostic::error("is not a multiple of 256 MB")
            .file("a.yaml")
            .at(Mark { line: 3, col: 5 })
            .path("tenants[0].memory")
            .hint("use 512mb");
        assert_eq!(
            d.to_string(),
            "error: tenants[0].memory: is not a multiple of 256 MB\n  --> a.yaml:3:5\n  = hint: use 512mb"
        );
    }

    #[test]
    fn close_matches_rank_by_distance() {
        assert_eq!(
            close_matches("sjx", ["sjc", "iad", "syd"], 3),
            vec!["sjc", "syd"]
        );
        assert_eq!(
            close_matches("memroy", ["memory", "metadata"], 3),
            vec!["memory"]
        );
        assert!(close_matches("zzzzzz", ["memory"], 3).is_empty());
        assert!(suggest("sjx", ["sjc"], "regions").contains("`sjc`"));
    }

    #[test]
    fn distances_count_characters_not_bytes() {
        // One substitution of a multi-byte character is one edit.
        assert_eq!(close_matches("régions", ["regions"], 3), vec!["regions"]);
        assert_eq!(
            close_matches(
                "shared-cpu-3x",
                ["shared-cpu-1x", "shared-cpu-2x", "performance-1x"],
                3
            ),
            vec!["shared-cpu-1x", "shared-cpu-2x"]
        );
        assert_eq!(strsim::levenshtein("kitten", "sitting"), 3);
        assert_eq!(strsim::levenshtein("", "abc"), 3);
    }
}
