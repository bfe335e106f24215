//! Helpers shared by subcommands: loading a spec with its diagnostics, writing output.

use std::io::Write;
use std::path::Path;

use crate::diag::{Diagnostic, Diagnostics};
use crate::spec::Loaded;

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

/// Loads and validates a spec; on failure prints every problem and a count.
pub fn load_spec(path: &Path) -> Result<Loaded, i32> {
    match crate::spec::load_file(path) {
        Ok(l) => {
            eprint_diags(&l.warnings);
            Ok(l)
        }
        Err(d) => {
            eprint_diags(&d);
            let n = d.error_count();
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n{} is not valid: {n} error{}.",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            Err(super::EXIT_ERROR)
        }
    }
}

/// Writes to stdout in one buffered pass; a closed pipe is not an error.
pub fn print_out(s: &str) {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}
