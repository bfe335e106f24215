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

/// Like [`print_out`], for text that `write` hands over in pieces (a large plan is never
/// held whole).
pub fn print_streamed(write: impl FnOnce(&mut dyn FnMut(&str))) {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    write(&mut |chunk| {
        let _ = out.write_all(chunk.as_bytes());
    });
    let _ = out.flush();
}

/// `--secrets-dir` and `--secret-max-bytes`, shared by `validate`, `plan` and `apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct SecretFileArgs {
    /// `file:` secrets must resolve inside DIR (default: the spec's directory); symlinks
    /// are followed before the check, and /proc, /dev and /sys are never read.
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<std::path::PathBuf>,
    /// The largest secret file accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = crate::secret_files::DEFAULT_MAX_BYTES)]
    pub secret_max_bytes: u64,
}

impl SecretFileArgs {
    pub fn policy(&self) -> crate::secret_files::FilePolicy {
        crate::secret_files::FilePolicy {
            dir: self.secrets_dir.clone(),
            max_bytes: self.secret_max_bytes,
        }
    }
}
