//! Reading the content of `files[].local_file` into the desired Machines, under the
//! confinement of secret files ([`crate::secret_files::FilePolicy`]: inside the spec's
//! tree or `--secrets-dir`, no symlink out of it, regular files only, bounded size), and
//! bringing file contents back to a saved plan's desired state, which holds only their
//! digests.
//!
//! The spec's expansion does no I/O, so a `local_file` leaves it unread; `load` reads
//! each reference once (problems at its file:line:column) and fills every Machine that
//! uses it. A saved plan never holds a file's content: [`fill_saved`] re-reads the spec
//! the plan was made from (which must be unchanged) and takes the contents from it,
//! each checked against the digest the plan was reviewed with.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::diag::{Diagnostic, Diagnostics};
use crate::resource::procs::{FileContent, FileSource};
use crate::resource::{Address, Desired, Spec};
use crate::secret_files::{FilePolicy, Refusal};

/// Reads every `local_file` of `loaded` and fills the Machines that use it. Errors for
/// refused and missing files, at the reference.
pub fn load(loaded: &mut crate::spec::Loaded, policy: &FilePolicy) -> Diagnostics {
    let mut out = Diagnostics::new();
    let mut read: HashMap<String, Arc<[u8]>> = HashMap::new();
    let mut tried = std::collections::HashSet::new();
    for r in &loaded.local_files {
        if !tried.insert(r.reference.clone()) {
            continue;
        }
        match policy.read_bytes(&loaded.dir, &r.reference) {
            Ok(bytes) => {
                read.insert(r.reference.clone(), Arc::from(bytes));
            }
            Err(e) => {
                let hint = match e {
                    Refusal::Missing(_) => {
                        "create the file: its content is part of the plan (shown as a digest)"
                            .to_string()
                    }
                    Refusal::Refused(_) => policy.hint().replace("secret files", "local files"),
                };
                out.push(
                    Diagnostic::error(format!("local file {}", e.message()))
                        .file(&loaded.file)
                        .at(r.mark)
                        .path(&r.path)
                        .hint(hint),
                );
            }
        }
    }
    for_each_content(&mut loaded.desired, |_, c| {
        if let (Some(r), None) = (&c.local_file, &c.bytes)
            && let Some(bytes) = read.get(r)
        {
            *c = FileContent::of(bytes, Some(r.clone()));
        }
    });
    out
}

/// Calls `f` on each content file of each Machine, with the Machine's address.
fn for_each_content(desired: &mut Desired, mut f: impl FnMut(&Address, &mut FileContent)) {
    for r in &mut desired.resources.resources {
        let Spec::Machine(m) = &mut r.spec else {
            continue;
        };
        for file in m.run.files.iter_mut().flatten() {
            if let FileSource::Content(c) = &mut file.source {
                f(&r.address, c);
            }
        }
    }
}

/// Whether some content file of `desired` has no bytes in memory.
fn lacks_content(desired: &mut Desired) -> bool {
    let mut lacking = false;
    for_each_content(desired, |_, c| lacking |= c.bytes.is_none());
    lacking
}

/// Brings the contents of a saved plan's files back: re-reads the spec at `spec_file`
/// (it must still hash to `spec_hash`) with its local files under `policy`, and takes
/// each Machine file's bytes from it, refusing any whose digest differs from the plan's.
/// Nothing to do (and no spec read) when the plan has no content files.
pub fn fill_saved(
    desired: &mut Desired,
    spec_file: &str,
    spec_hash: &str,
    policy: &FilePolicy,
) -> Result<(), Diagnostics> {
    if !lacks_content(desired) {
        return Ok(());
    }
    let refuse = |why: String| {
        Diagnostics::one(
            Diagnostic::error(format!(
                "the saved plan writes files whose content it does not hold (only digests); {why}"
            ))
            .file(spec_file)
            .hint("apply from the unchanged spec the plan was made from, or plan again"),
        )
    };
    let mut spec = crate::spec::load_file(Path::new(spec_file))
        .map_err(|_| refuse(format!("the spec {spec_file} cannot be loaded")))?;
    if spec.spec_hash != spec_hash {
        return Err(refuse(format!(
            "the spec {spec_file} changed since the plan was made"
        )));
    }
    let found = load(&mut spec, policy);
    if found.has_errors() {
        return Err(found);
    }
    let mut contents: HashMap<(Address, String), FileContent> = HashMap::new();
    for r in spec.desired.resources.iter() {
        for f in r
            .machine()
            .and_then(|m| m.run.files.as_ref())
            .into_iter()
            .flatten()
        {
            if let FileSource::Content(c) = &f.source {
                contents.insert((r.address.clone(), f.guest_path.clone()), c.clone());
            }
        }
    }
    let mut problems = Vec::new();
    for r in &mut desired.resources.resources {
        let address = r.address.clone();
        let Spec::Machine(m) = &mut r.spec else {
            continue;
        };
        for file in m.run.files.iter_mut().flatten() {
            let FileSource::Content(c) = &mut file.source else {
                continue;
            };
            match contents.get(&(address.clone(), file.guest_path.clone())) {
                Some(now) if now == c => c.bytes = now.bytes.clone(),
                _ => problems.push(format!("{address} {}", file.guest_path)),
            }
        }
    }
    if !problems.is_empty() {
        return Err(refuse(format!(
            "the content of {} is not what the plan was made with",
            problems.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "version: 1\norg: o\ndefaults:\n  image: i\n  region: iad\n  files: [{ guest_path: /etc/app.conf, local_file: conf/app.conf }]\ntenants: [{ name: a }]\n";

    fn loaded(dir: &Path) -> crate::spec::Loaded {
        let path = dir.join("fleet.yaml");
        std::fs::write(&path, SPEC).unwrap();
        crate::spec::load_file(&path).unwrap()
    }

    fn content(l: &crate::spec::Loaded) -> FileContent {
        let m = l
            .desired
            .resources
            .iter()
            .find_map(|r| r.machine())
            .unwrap();
        match &m.run.files.as_ref().unwrap()[0].source {
            FileSource::Content(c) => c.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn local_files_are_read_into_the_machines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        std::fs::write(dir.path().join("conf/app.conf"), "port = 8080\n").unwrap();
        let mut l = loaded(dir.path());
        assert!(content(&l).bytes.is_none(), "expansion reads nothing");
        let d = load(&mut l, &FilePolicy::default());
        assert!(d.is_empty(), "{d}");
        let c = content(&l);
        assert_eq!(c.bytes.as_deref(), Some(&b"port = 8080\n"[..]));
        assert_eq!(c.size, 12);
        assert_eq!(c.local_file.as_deref(), Some("conf/app.conf"));
    }

    fn refusal(setup: impl Fn(&Path), policy: &FilePolicy) -> String {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("spec");
        std::fs::create_dir_all(&dir).unwrap();
        setup(&dir);
        let mut l = loaded(&dir);
        let d = load(&mut l, policy);
        assert!(d.has_errors(), "refused");
        assert!(content(&l).bytes.is_none());
        let text = d.to_string();
        assert!(text.contains("fleet.yaml:6:"), "{text}");
        text
    }

    #[test]
    fn escapes_are_refused() {
        let p = FilePolicy::default();
        // `..` out of the spec's tree.
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("spec");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(top.path().join("outside.conf"), "x").unwrap();
        let path = dir.join("fleet.yaml");
        std::fs::write(&path, SPEC.replace("conf/app.conf", "../outside.conf")).unwrap();
        let mut l = crate::spec::load_file(&path).unwrap();
        let text = load(&mut l, &p).to_string();
        assert!(text.contains("leaves"), "{text}");
        #[cfg(unix)]
        {
            let text = refusal(
                |dir| {
                    std::fs::create_dir(dir.join("conf")).unwrap();
                    std::fs::write(dir.join("../secret"), "x").unwrap();
                    std::os::unix::fs::symlink(dir.join("../secret"), dir.join("conf/app.conf"))
                        .unwrap();
                },
                &p,
            );
            assert!(text.contains("outside"), "{text}");
        }
        let text = refusal(
            |dir| std::fs::create_dir_all(dir.join("conf/app.conf")).unwrap(),
            &p,
        );
        assert!(text.contains("not a regular file"), "{text}");
        let small = FilePolicy {
            dir: None,
            max_bytes: 4,
        };
        let text = refusal(
            |dir| {
                std::fs::create_dir(dir.join("conf")).unwrap();
                std::fs::write(dir.join("conf/app.conf"), "too big").unwrap();
            },
            &small,
        );
        assert!(text.contains("7 bytes; the limit is 4 bytes"), "{text}");
        let text = refusal(|_| {}, &p);
        assert!(text.contains("does not exist"), "{text}");
    }

    #[test]
    fn saved_plans_take_contents_from_the_unchanged_spec() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        std::fs::write(dir.path().join("conf/app.conf"), "v1").unwrap();
        let mut l = loaded(dir.path());
        load(&mut l, &FilePolicy::default());
        let json = serde_json::to_string(&l.desired.resources).unwrap();
        assert!(!json.contains("v1\""), "{json}");
        let set: crate::resource::ResourceSet = serde_json::from_str(&json).unwrap();
        let fresh = || Desired::from_resources("o", set.clone());
        let file = dir.path().join("fleet.yaml").display().to_string();
        let mut d = fresh();
        fill_saved(&mut d, &file, &l.spec_hash, &FilePolicy::default()).unwrap();
        assert!(!lacks_content(&mut d));
        // The local file changed since the plan: refused.
        std::fs::write(dir.path().join("conf/app.conf"), "v2").unwrap();
        let e = fill_saved(&mut fresh(), &file, &l.spec_hash, &FilePolicy::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not what the plan was made with"), "{e}");
        let e = fill_saved(&mut fresh(), &file, "sha256:other", &FilePolicy::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("changed since the plan"), "{e}");
    }
}
