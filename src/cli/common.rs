//! Rendering helpers shared by subcommands: output formats, stdout, diagnostics and
//! operation errors on stderr.

use std::io::Write;

use crate::diag::{Diagnostic, Diagnostics};
use crate::ops::Error;

/// Output formats shared by several commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

/// Prints diagnostics to stderr.
pub fn eprint_diags(d: &Diagnostics) {
    if d.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{d}");
}

pub fn eprint_diag(d: &Diagnostic) {
    let _ = writeln!(std::io::stderr().lock(), "{d}");
}

/// Prints an operation's error (its diagnostics and closing line) to stderr; an error
/// the output already showed prints nothing.
pub fn eprint_error(e: &Error) {
    let text = e.to_string();
    if !text.is_empty() {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

/// Writes to stdout in one buffered pass; a closed pipe is not an error.
pub fn print_out(s: &str) {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}
