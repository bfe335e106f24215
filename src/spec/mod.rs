//! The fleet spec: YAML → validated, expanded desired state.
//!
//! `load_file` reads a spec, checks its shape (unknown keys, types), scans it for pasted
//! credentials, merges `defaults < tier < tenant`, renders templates, validates every
//! value against Fly's rules and expands tenants and shared apps into resources. All
//! problems are collected and returned together; nothing here does network I/O.

pub mod credentials;
pub mod decl;
pub mod expand;
pub mod groups;
pub mod json_schema;
pub mod procs;
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
use yaml::Node;

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
    /// Every `file:` secret reference as written, with its position (checked against the
    /// file system by [`crate::secret_files::check_references`]).
    pub secret_files: Vec<SecretFileRef>,
    /// Every `files[].local_file` reference as written, with its position (read, under
    /// the same confinement, by [`crate::machine_files::load`]).
    pub local_files: Vec<SecretFileRef>,
}

/// One `{ file: PATH }` secret reference in the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFileRef {
    /// The path as written.
    pub reference: String,
    /// The spec path of the value (`defaults.secrets.JWT_SECRET.file`).
    pub path: String,
    pub mark: Mark,
}

/// Every `secrets.NAME.file` string of the tree, wherever it is (defaults, tiers,
/// tenants, apps).
fn secret_file_refs(root: &Node) -> Vec<SecretFileRef> {
    let mut out = Vec::new();
    let mut path = String::new();
    root.walk_scalars(&mut path, &mut |p, node, key| {
        if key != Some(decl::SECRET_FILE) {
            return;
        }
        let parts: Vec<&str> = p.rsplitn(3, '.').collect();
        let in_secrets =
            parts.len() == 3 && (parts[2] == "secrets" || parts[2].ends_with(".secrets"));
        if let (true, Some(text)) = (in_secrets, node.scalar_text()) {
            out.push(SecretFileRef {
                reference: text.to_string(),
                path: p.to_string(),
                mark: node.mark,
            });
        }
    });
    out
}

/// Every `files[N].local_file` string of the tree, wherever it is.
fn local_file_refs(root: &Node) -> Vec<SecretFileRef> {
    let mut out = Vec::new();
    let mut path = String::new();
    root.walk_scalars(&mut path, &mut |p, node, key| {
        let Some(item) = p.strip_suffix(".local_file") else {
            return;
        };
        let in_files = item
            .rsplit_once('[')
            .is_some_and(|(list, _)| list == "files" || list.ends_with(".files"));
        if let (Some(decl::FILE_LOCAL_FILE_KEY), true, Some(text)) =
            (key, in_files, node.scalar_text())
        {
            out.push(SecretFileRef {
                reference: text.to_string(),
                path: p.to_string(),
                mark: node.mark,
            });
        }
    });
    out
}

/// Reads and validates a spec file.
pub fn load_file(path: &Path) -> Result<Loaded, Diagnostics> {
    let file = path.display().to_string();
    let bytes = read_limited(path).map_err(|d| Diagnostics::one(d.file(file.clone())))?;
    let mut loaded = load_bytes(&bytes, &file)?;
    loaded.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(loaded)
}

/// Reads a regular file of at most [`yaml::MAX_BYTES`] ([`crate::fsutil::read_bounded`]),
/// with a clear error for a missing or unreadable file, a directory, a FIFO or a device.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    read_input(path, &InputFile::SPEC)
}

/// What kind of input a file is, for the hints of [`read_input`].
pub struct InputFile {
    /// Where such files usually are, e.g. "specs usually live in specs/".
    pub usual: &'static str,
    /// An example of such a file, for "pass a … file such as …".
    pub example: &'static str,
}

impl InputFile {
    pub const SPEC: InputFile = InputFile {
        usual: "specs usually live in specs/",
        example: "a spec file such as specs/jarvis.yaml",
    };
    pub const STATE: InputFile = InputFile {
        usual: "observed-state snapshots are JSON files such as tests/states/jarvis-drift.json",
        example: "a state file such as tests/states/jarvis-drift.json",
    };
}

/// [`read_limited`] with the hints for `kind`; a missing file whose name differs from an
/// existing one by its `.yaml`/`.yml` extension (or lacks one) names that file.
pub fn read_input(path: &Path, kind: &InputFile) -> Result<Vec<u8>, Diagnostic> {
    use crate::fsutil::ReadError;
    crate::fsutil::read_bounded(path, yaml::MAX_BYTES as u64).map_err(|e| {
        let hint = match &e {
            e if e.is_not_found() => match other_extension(path) {
                Some(alt) => format!("did you mean {}?", alt.display()),
                None => format!("check the path; {}", kind.usual),
            },
            ReadError::NotRegular {
                kind: "a directory",
            } => format!("pass {}", kind.example),
            ReadError::TooLarge { .. } => {
                "split the fleet into several specs, or use `generate:` for large tenant lists"
                    .to_string()
            }
            e => e.hint().to_string(),
        };
        Diagnostic::error(e.to_string()).hint(hint)
    })
}

/// An existing regular file named like `path` with the other YAML extension (`.yml` for
/// `.yaml` and back), or with one when `path` has none.
fn other_extension(path: &Path) -> Option<std::path::PathBuf> {
    let candidates: &[&str] = match path.extension().and_then(|e| e.to_str()) {
        Some("yaml") => &["yml"],
        Some("yml") => &["yaml"],
        None => &["yaml", "yml"],
        Some(_) => &[],
    };
    candidates
        .iter()
        .map(|ext| path.with_extension(ext))
        .find(|alt| alt.is_file())
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
    if let Some(d) = tenant_budget(&root) {
        sink.add(d);
        let mut diags = sink.finish();
        redact(&mut diags, &scan.texts);
        credentials::redact_all(&mut diags);
        return Err(diags);
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
        secret_files: secret_file_refs(&root),
        local_files: local_file_refs(&root),
    })
}

/// Refuses a spec that declares more than [`decl::MAX_TENANTS`] tenants, counted from the
/// parsed tree (one per explicit entry, `count` per generator) before any is built.
fn tenant_budget(root: &Node) -> Option<Diagnostic> {
    let tenants = decl::TENANTS.get(root)?;
    let entries = tenants.as_seq()?;
    let mut total: u64 = 0;
    for entry in entries {
        let n = match decl::GENERATE.get(entry) {
            Some(g) => decl::GENERATE_COUNT
                .node(g)
                .and_then(Node::as_i64)
                .map_or(0, |c| c.max(0) as u64),
            None => 1,
        };
        total = total.saturating_add(n);
    }
    if total <= decl::MAX_TENANTS {
        return None;
    }
    Some(
        Diagnostic::error(format!(
            "the spec declares {total} tenants; the limit is {} per spec",
            decl::MAX_TENANTS
        ))
        .path("tenants")
        .at(tenants.mark)
        .hint("split the fleet into several specs (each with its own `fleet:`)"),
    )
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
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_names_its_other_yaml_extension_and_its_kind() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("fleet.yml"), "version: 1\n").unwrap();
        let e = read_limited(&dir.path().join("fleet.yaml")).unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some(format!("did you mean {}?", dir.path().join("fleet.yml").display()).as_str())
        );
        let e = read_limited(&dir.path().join("fleet")).unwrap_err();
        assert!(
            e.hint.as_deref().unwrap_or("").contains("fleet.yml"),
            "{e:?}"
        );
        let e = read_input(&dir.path().join("drift.json"), &InputFile::STATE).unwrap_err();
        let hint = e.hint.unwrap_or_default();
        assert!(
            hint.contains("tests/states/") && !hint.contains("specs/"),
            "{hint}"
        );
        let e = read_input(dir.path(), &InputFile::STATE).unwrap_err();
        assert!(e.hint.unwrap_or_default().contains("a state file"));
    }

    #[test]
    fn tenants_are_counted_before_anything_is_built() {
        let at_limit = format!(
            "version: 1\norg: o\ndefaults: {{image: i, region: iad}}\ntenants:\n  - {{ name: a }}\n  - generate: {{ count: {}, name: \"u{{{{ i }}}}\" }}\n",
            decl::MAX_TENANTS - 1
        );
        let root = yaml::parse(at_limit.as_bytes()).unwrap();
        assert!(tenant_budget(&root).is_none());
        let over = at_limit.replace("- { name: a }", "- { name: a }\n  - { name: b }");
        let root = yaml::parse(over.as_bytes()).unwrap();
        let d = tenant_budget(&root).unwrap();
        assert!(
            d.message.contains("50001 tenants; the limit is 50000"),
            "{d}"
        );
        assert_eq!(d.mark, Some(Mark { line: 5, col: 3 }));
        assert!(d.hint.is_some());
    }

    #[test]
    fn secret_file_references_are_found_with_their_positions() {
        let spec = b"version: 1\norg: o\ndefaults:\n  image: i\n  region: iad\n  secrets:\n    A: { file: a.txt }\n    B: { env: B }\ntiers:\n  pro:\n    secrets: { C: { file: c.txt } }\ntenants: [{name: t, tier: pro}]\n";
        let l = load_bytes(spec, "s.yaml").unwrap();
        let refs: Vec<(&str, &str, u32)> = l
            .secret_files
            .iter()
            .map(|r| (r.reference.as_str(), r.path.as_str(), r.mark.line))
            .collect();
        assert_eq!(
            refs,
            vec![
                ("a.txt", "defaults.secrets.A.file", 7),
                ("c.txt", "tiers.pro.secrets.C.file", 11)
            ]
        );
    }
}
