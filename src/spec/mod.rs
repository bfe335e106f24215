//! The fleet spec: YAML → validated, expanded desired state.
//!
//! `load_file` reads a spec, checks its shape (unknown keys, types), scans it for pasted
//! credentials, merges `defaults < tier < tenant`, renders templates, validates every
//! value against Fly's rules and expands tenants and shared apps into resources. All
//! problems are collected and returned together; nothing here does network I/O.

pub mod credentials;
pub mod decl;
pub mod expand;
pub mod resolve;
pub mod schema;
pub mod settings;
pub mod templates;
pub mod yaml;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, Diagnostics, Mark};
use crate::resource::Desired;
use schema::{Checker, TOP_FIELDS};

/// A spec that passed validation.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub desired: Desired,
    /// Warnings (never errors).
    pub warnings: Diagnostics,
    /// `sha256:<hex>` of the file's bytes.
    pub spec_hash: String,
    /// The path as given.
    pub file: String,
    /// The directory that relative paths in the spec (secret files) are resolved against.
    pub dir: PathBuf,
}

/// Reads and validates a spec file.
pub fn load_file(path: &Path) -> Result<Loaded, Diagnostics> {
    let file = path.display().to_string();
    let bytes = read_limited(path).map_err(|d| Diagnostics::one(d.file(file.clone())))?;
    let mut loaded = load_bytes(&bytes, &file)?;
    loaded.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(loaded)
}

/// Reads a file of at most [`yaml::MAX_BYTES`], with a clear error for a missing or
/// unreadable file.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::NotFound {
            "check the path; specs usually live in specs/"
        } else {
            "check the file's permissions"
        };
        Diagnostic::error(format!("cannot read the file: {e}")).hint(hint)
    })?;
    if f.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(Diagnostic::error("this is a directory, not a file")
            .hint("pass a spec file such as specs/jarvis.yaml"));
    }
    let mut buf = Vec::new();
    f.take(yaml::MAX_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Diagnostic::error(format!("cannot read the file: {e}")))?;
    if buf.len() > yaml::MAX_BYTES {
        return Err(Diagnostic::error(format!(
            "the file is larger than {} bytes",
            yaml::MAX_BYTES
        ))
        .hint("split the fleet into several specs, or use `generate:` for large tenant lists"));
    }
    Ok(buf)
}

/// `sha256:<hex>` of some bytes.
pub fn hash_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Validates and expands a spec held in memory. `file` names it in diagnostics.
pub fn load_bytes(bytes: &[u8], file: &str) -> Result<Loaded, Diagnostics> {
    let root = yaml::parse(bytes).map_err(|d| Diagnostics::one(d.file(file)))?;
    let mut sink = expand::Sink::new(file);

    if root.as_map().is_none() {
        sink.add(
            Diagnostic::error(format!(
                "a spec is a mapping (version, org, defaults, tenants …), found {}",
                root.type_name()
            ))
            .at(root.mark)
            .hint("start from one of the specs in specs/"),
        );
        return Err(sink.finish());
    }
    let mut checker = Checker::new();
    checker.check_struct(&root, "", &[TOP_FIELDS]);
    for d in checker.diags {
        sink.add(d);
    }
    if root.get("version").is_none() {
        sink.add(
            Diagnostic::error("the spec has no `version`")
                .at(Mark { line: 1, col: 1 })
                .hint("add `version: 1` at the top"),
        );
    }
    if root.get("org").is_none() {
        sink.add(
            Diagnostic::error("the spec has no `org`")
                .at(Mark { line: 1, col: 1 })
                .hint("add `org: <your Fly organization slug>` (see `fly orgs list`)"),
        );
    }
    let source = std::str::from_utf8(bytes).unwrap_or_default();
    let scan = credentials::scan_document(&root, source.strip_prefix('\u{feff}').unwrap_or(source));
    for d in scan.diagnostics.iter().cloned() {
        sink.add(d);
    }

    let mut ex = expand::Expander::new(&root, file);
    let desired = ex.expand();
    for d in ex.sink.finish().0 {
        sink.add(d);
    }
    if desired.tenants.is_empty() && desired.apps.is_empty() && !sink.has_errors() {
        sink.add(Diagnostic::warning("the spec declares no tenants and no apps").at(root.mark));
    }
    for d in rendered_credentials(&desired, &scan.texts) {
        sink.add(d);
    }
    let mut diags = sink.finish();
    redact(&mut diags, &scan.texts);
    credentials::redact_all(&mut diags);
    if diags.has_errors() {
        return Err(diags);
    }
    Ok(Loaded {
        desired,
        warnings: diags,
        spec_hash: hash_bytes(bytes),
        file: file.to_string(),
        dir: PathBuf::new(),
    })
}

/// Credentials that only rendering made (a template joined with a tenant's name, a
/// generated name): every rendered name, image, env and metadata value of the desired
/// state, by resource address. Texts the document scan already reported are skipped.
fn rendered_credentials(desired: &Desired, known: &HashSet<String>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for r in desired.resources.iter() {
        for (place, text, kind) in credentials::in_resource(r) {
            if known
                .iter()
                .any(|k| text.contains(k.as_str()) || k.contains(text.as_str()))
                || !seen.insert(text)
            {
                continue;
            }
            out.push(
                Diagnostic::error(format!(
                    "the rendered {place} looks like {kind}; credentials must not be written in a spec (the value was not printed)"
                ))
                .address(r.address.to_string())
                .hint(credentials::HINT),
            );
        }
    }
    out
}

/// Replaces every credential found in the spec wherever a diagnostic would show it.
fn redact(diags: &mut Diagnostics, credentials: &HashSet<String>) {
    if credentials.is_empty() {
        return;
    }
    let scrub = |s: &mut String| {
        for c in credentials {
            if s.contains(c.as_str()) {
                *s = s.replace(c.as_str(), "(redacted)");
            }
        }
    };
    for d in diags.0.iter_mut() {
        scrub(&mut d.message);
        for field in [&mut d.path, &mut d.address, &mut d.hint]
            .into_iter()
            .flatten()
        {
            scrub(field);
        }
    }
}
