//! Where a `file:` secret reference may point, and reading it.
//!
//! A spec (or a saved plan) can come from an untrusted change, while the process that
//! applies it holds a deploy token: a reference such as `{ file: /proc/self/environ }`
//! would otherwise upload that token to Fly as a secret. So a reference is confined:
//!
//! - it is resolved against the spec's directory and canonicalized (symlinks followed),
//!   and the result must lie inside the confinement root — the spec's directory tree, or
//!   the directory given with `--secrets-dir`;
//! - anything under `/proc`, `/dev` or `/sys` is refused outright, before and after
//!   resolving;
//! - it must be a regular file (no FIFO, device or directory) of at most
//!   [`FilePolicy::max_bytes`] bytes (64 KiB unless `--secret-max-bytes` says otherwise).
//!
//! `validate` and `plan` check every reference ([`FilePolicy::check`]) and report
//! problems at the reference's file:line:column before any request is made. The read at
//! apply time ([`FilePolicy::read`]) checks again and then checks the opened handle
//! itself (regular file, size, and on Linux where it really is), so a file swapped after
//! the check is still refused, and it never reads more than the limit.

use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics};

/// The default largest secret file, in bytes.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024;

/// Directories no secret may be read from.
pub const SYSTEM_DIRS: [&str; 3] = ["/proc", "/dev", "/sys"];

/// Where secret files may be and how large they may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePolicy {
    /// The confinement root; `None`: the spec's directory.
    pub dir: Option<PathBuf>,
    /// The largest secret file, in bytes.
    pub max_bytes: u64,
}

impl Default for FilePolicy {
    fn default() -> Self {
        FilePolicy {
            dir: None,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Why a reference is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The file does not exist (yet): not a confinement problem, but applying will fail.
    Missing(String),
    /// Anything else: outside the root, a system directory, not a regular file, too large.
    Refused(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::Missing(m) | Refusal::Refused(m) => m,
        }
    }
}

impl FilePolicy {
    /// The root references of a spec in `spec_dir` must stay in (not yet canonical).
    pub fn root(&self, spec_dir: &Path) -> PathBuf {
        match &self.dir {
            Some(d) => d.clone(),
            None if spec_dir.as_os_str().is_empty() => PathBuf::from("."),
            None => spec_dir.to_path_buf(),
        }
    }

    /// The hint for a refused reference.
    pub fn hint(&self) -> String {
        format!(
            "secret files must be regular files of at most {} bytes inside the spec's directory (or the directory given with --secrets-dir); /proc, /dev and /sys are never read; --secret-max-bytes raises the size limit",
            self.max_bytes
        )
    }

    /// Checks the reference `reference` of a spec in `spec_dir` and returns the canonical
    /// path of the file it names.
    pub fn check(&self, spec_dir: &Path, reference: &str) -> Result<PathBuf, Refusal> {
        let refused = |m: String| Refusal::Refused(m);
        if reference.is_empty() {
            return Err(refused("the path is empty".into()));
        }
        let joined = spec_dir.join(reference);
        if in_system_dir(&lexical(&joined)) {
            return Err(refused(format!(
                "`{reference}` is in a system directory (/proc, /dev or /sys)"
            )));
        }
        // `..` out of the root is refused before the file system is asked (the file
        // need not exist for the reference to be hostile).
        if let (Ok(abs), Ok(root_abs)) = (
            std::path::absolute(&joined),
            std::path::absolute(self.root(spec_dir)),
        ) && !lexical(&abs).starts_with(lexical(&root_abs))
        {
            return Err(refused(format!(
                "`{reference}` leaves {} (`..` or an absolute path)",
                self.root(spec_dir).display()
            )));
        }
        let path = match joined.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Refusal::Missing(format!(
                    "`{reference}` does not exist ({})",
                    joined.display()
                )));
            }
            Err(e) => return Err(refused(format!("`{reference}` cannot be resolved: {e}"))),
        };
        let root_given = self.root(spec_dir);
        let root = root_given.canonicalize().map_err(|e| {
            refused(format!(
                "the secrets directory {} cannot be resolved: {e}",
                root_given.display()
            ))
        })?;
        if in_system_dir(&path) {
            return Err(refused(format!(
                "`{reference}` resolves to {}, in a system directory (/proc, /dev or /sys)",
                path.display()
            )));
        }
        if !path.starts_with(&root) {
            return Err(refused(format!(
                "`{reference}` resolves to {}, outside {}",
                path.display(),
                root.display()
            )));
        }
        let meta = std::fs::metadata(&path)
            .map_err(|e| refused(format!("`{reference}` cannot be read: {e}")))?;
        self.check_meta(reference, &meta)?;
        Ok(path)
    }

    /// A regular file within the size limit.
    fn check_meta(&self, reference: &str, meta: &std::fs::Metadata) -> Result<(), Refusal> {
        if !meta.is_file() {
            return Err(Refusal::Refused(format!(
                "`{reference}` is not a regular file"
            )));
        }
        if meta.len() > self.max_bytes {
            return Err(Refusal::Refused(format!(
                "`{reference}` is {} bytes; the limit is {} bytes",
                meta.len(),
                self.max_bytes
            )));
        }
        Ok(())
    }

    /// Reads the value of the reference: checks it ([`FilePolicy::check`]), opens it
    /// without following a final symlink and without blocking, checks the opened handle
    /// (regular file, size, where it is) and reads at most `max_bytes`. The value is
    /// UTF-8 with one trailing line break removed.
    pub fn read(&self, spec_dir: &Path, reference: &str) -> Result<String, Refusal> {
        let buf = self.read_bytes(spec_dir, reference)?;
        let text = String::from_utf8(buf)
            .map_err(|_| Refusal::Refused(format!("`{reference}` is not valid UTF-8 text")))?;
        let v = text.strip_suffix('\n').unwrap_or(&text);
        Ok(v.strip_suffix('\r').unwrap_or(v).to_string())
    }

    /// The bytes of the file a reference names, as they are, with every check of
    /// [`FilePolicy::read`] (`files[].local_file` contents).
    pub fn read_bytes(&self, spec_dir: &Path, reference: &str) -> Result<Vec<u8>, Refusal> {
        let path = self.check(spec_dir, reference)?;
        let root = self
            .root(spec_dir)
            .canonicalize()
            .map_err(|e| Refusal::Refused(format!("the secrets directory: {e}")))?;
        let file = open_no_follow(&path)
            .map_err(|e| Refusal::Refused(format!("`{reference}` cannot be opened: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| Refusal::Refused(format!("`{reference}` cannot be read: {e}")))?;
        self.check_meta(reference, &meta)?;
        if let Some(real) = opened_path(&file)
            && (!real.starts_with(&root) || in_system_dir(&real))
        {
            return Err(Refusal::Refused(format!(
                "`{reference}` was replaced while it was read (now {})",
                real.display()
            )));
        }
        let mut buf = Vec::new();
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(|e| Refusal::Refused(format!("`{reference}` cannot be read: {e}")))?;
        if buf.len() as u64 > self.max_bytes {
            return Err(Refusal::Refused(format!(
                "`{reference}` grew beyond the limit of {} bytes while it was read",
                self.max_bytes
            )));
        }
        Ok(buf)
    }
}

/// Checks every `file:` reference of a loaded spec: refusals are errors, missing files
/// warnings (the simulator replaces them by placeholders; an apply against Fly fails),
/// each at the reference's file:line:column.
pub fn check_references(loaded: &crate::spec::Loaded, policy: &FilePolicy) -> Diagnostics {
    let mut out = Diagnostics::new();
    let mut seen = std::collections::HashSet::new();
    for r in &loaded.secret_files {
        if !seen.insert((&r.reference, r.mark)) {
            continue;
        }
        let d = match policy.check(&loaded.dir, &r.reference) {
            Ok(_) => continue,
            Err(Refusal::Missing(m)) => Diagnostic::warning(format!("secret file {m}")).hint(
                "create the file before applying (the simulator uses a placeholder); the value is never printed or stored",
            ),
            Err(Refusal::Refused(m)) => {
                Diagnostic::error(format!("secret file {m}")).hint(policy.hint())
            }
        };
        out.push(d.file(&loaded.file).at(r.mark).path(&r.path));
    }
    out
}

/// The spec with its `file:` secret references checked ([`check_references`]) and its
/// `files[].local_file` contents read ([`crate::machine_files::load`]): every diagnostic
/// of the spec and the references when one is refused.
pub fn checked(
    mut loaded: crate::spec::Loaded,
    policy: &FilePolicy,
) -> Result<crate::spec::Loaded, Diagnostics> {
    let mut found = check_references(&loaded, policy);
    found.extend(crate::machine_files::load(&mut loaded, policy));
    if found.has_errors() {
        let mut all = loaded.warnings;
        all.extend(found);
        return Err(all);
    }
    loaded.warnings.extend(found);
    Ok(loaded)
}

fn in_system_dir(p: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|d| p.starts_with(d))
}

/// `p` with `.` and `..` removed lexically (`..` above the start is kept as is), to refuse
/// `/dev/../dev/zero` and friends before touching the file system.
fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Opens for reading, refusing a symlink as the last component and never blocking on
/// a FIFO.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    opts.open(path)
}

/// Where an opened file really is (Linux: the descriptor's link in /proc/self/fd).
fn opened_path(file: &File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(r: Result<impl std::fmt::Debug, Refusal>) -> String {
        match r {
            Err(Refusal::Refused(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn references_stay_inside_the_root() {
        let top = tempfile::tempdir().unwrap();
        let spec_dir = top.path().join("specs");
        std::fs::create_dir_all(spec_dir.join("secrets")).unwrap();
        std::fs::write(spec_dir.join("secrets/ok.txt"), "value\n").unwrap();
        std::fs::write(top.path().join("outside.txt"), "x").unwrap();
        let p = FilePolicy::default();
        assert_eq!(p.read(&spec_dir, "secrets/ok.txt").unwrap(), "value");
        assert!(refused(p.check(&spec_dir, "../outside.txt")).contains("leaves"));
        assert!(refused(p.check(&spec_dir, "../../../../etc/passwd")).contains("leaves"));
        assert!(refused(p.check(&spec_dir, "../../no/such/file")).contains("leaves"));
        assert!(refused(p.check(&spec_dir, "/proc/self/environ")).contains("system"));
        assert!(refused(p.check(&spec_dir, "/dev/zero")).contains("system"));
        assert!(refused(p.check(&spec_dir, "")).contains("empty"));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(top.path().join("outside.txt"), spec_dir.join("link"))
                .unwrap();
            assert!(refused(p.check(&spec_dir, "link")).contains("outside"));
            std::os::unix::fs::symlink("/proc/self/environ", spec_dir.join("env")).unwrap();
            assert!(refused(p.read(&spec_dir, "env")).contains("system"));
        }
        assert!(matches!(
            p.check(&spec_dir, "secrets/missing.txt"),
            Err(Refusal::Missing(_))
        ));
        assert!(refused(p.check(&spec_dir, "secrets")).contains("not a regular file"));
        // An explicit directory replaces the spec's.
        let wide = FilePolicy {
            dir: Some(top.path().to_path_buf()),
            ..FilePolicy::default()
        };
        assert_eq!(wide.read(&spec_dir, "../outside.txt").unwrap(), "x");
    }

    #[test]
    fn size_is_limited() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big"), vec![b'a'; 65]).unwrap();
        let p = FilePolicy {
            dir: None,
            max_bytes: 64,
        };
        let m = refused(p.check(dir.path(), "big"));
        assert!(m.contains("65 bytes; the limit is 64 bytes"), "{m}");
        let p = FilePolicy {
            dir: None,
            max_bytes: 65,
        };
        assert_eq!(p.read(dir.path(), "big").unwrap().len(), 65);
    }

    #[test]
    fn lexical_resolution() {
        assert_eq!(
            lexical(Path::new("/dev/../dev/./zero")),
            PathBuf::from("/dev/zero")
        );
        assert_eq!(lexical(Path::new("../a")), PathBuf::from("../a"));
    }
}
