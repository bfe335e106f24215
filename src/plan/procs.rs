//! The diff of a Machine's processes and files (`MachineRun`), only where the spec
//! declares them. Processes change as a whole list (`processes`); files one by one by
//! guest path (`files[PATH]`), shown as digest and size (or the secret's name), never
//! their content. A live process env value that looks like a credential is hidden.

use serde_json::{Value, json};

use crate::plan::field::{FieldChange, FieldPath};
use crate::resource::procs::{FileSource, MachineFile, MachineRun, Process};

/// Appends the changes of `d`'s declared processes and files against `o`'s.
pub fn diff_run(d: &MachineRun, o: &MachineRun, out: &mut Vec<FieldChange>) {
    if let Some(dp) = &d.processes {
        let op = o.processes.as_deref().unwrap_or_default();
        if dp.as_slice() != op {
            out.push(FieldChange {
                path: FieldPath::Processes,
                before: (!op.is_empty()).then(|| processes_view(op, true)),
                after: (!dp.is_empty()).then(|| processes_view(dp, false)),
                forces_replace: false,
            });
        }
    }
    if let Some(df) = &d.files {
        let of = o.files.as_deref().unwrap_or_default();
        for f in df {
            // A `local_file` not read (a spec loaded without its files, as library
            // callers may): its content is unknown, so it is not compared. Planning and
            // applying always read it first (`machine_files`).
            if matches!(&f.source, FileSource::Content(c) if c.digest.is_empty()) {
                continue;
            }
            let old = of.iter().find(|x| x.guest_path == f.guest_path);
            if old.map(|x| &x.source) != Some(&f.source) {
                out.push(FieldChange {
                    path: FieldPath::Files(f.guest_path.clone()),
                    before: old.map(file_view),
                    after: Some(file_view(f)),
                    forces_replace: false,
                });
            }
        }
        for x in of
            .iter()
            .filter(|x| !df.iter().any(|f| f.guest_path == x.guest_path))
        {
            out.push(FieldChange {
                path: FieldPath::Files(x.guest_path.clone()),
                before: Some(file_view(x)),
                after: None,
                forces_replace: false,
            });
        }
    }
}

fn processes_view(ps: &[Process], live: bool) -> Value {
    let mut v = serde_json::to_value(ps).unwrap_or(Value::Null);
    if live && let Value::Array(items) = &mut v {
        for env in items.iter_mut().filter_map(|p| p.get_mut("env")) {
            if let Value::Object(m) = env {
                for (k, val) in m.iter_mut() {
                    let shown = val.as_str().is_some_and(|s| {
                        crate::spec::credentials::looks_like_credential(s, Some(k)).is_none()
                    });
                    if !shown {
                        *val = json!(super::HIDDEN_VALUE);
                    }
                }
            }
        }
    }
    v
}

/// A file as a plan shows it: digest and size (and the local file it is read from), or
/// the secret that fills it.
fn file_view(f: &MachineFile) -> Value {
    match &f.source {
        FileSource::SecretName(n) => json!({ "secret_name": n }),
        FileSource::Content(c) => match &c.local_file {
            Some(l) => json!({ "local_file": l, "digest": c.digest, "size": c.size }),
            None => json!({ "digest": c.digest, "size": c.size }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::procs::FileContent;

    fn file(path: &str, content: &[u8]) -> MachineFile {
        MachineFile {
            guest_path: path.into(),
            source: FileSource::Content(FileContent::of(content, None)),
        }
    }

    #[test]
    fn files_diff_by_path_without_content() {
        let d = MachineRun {
            processes: None,
            files: Some(vec![file("/a", b"new text"), file("/b", b"same")]),
        };
        let o = MachineRun {
            processes: Some(vec![Process {
                cmd: vec!["x".into()],
                ..Process::default()
            }]),
            files: Some(vec![
                file("/a", b"old text"),
                file("/b", b"same"),
                file("/c", b"gone"),
            ]),
        };
        let mut out = Vec::new();
        diff_run(&d, &o, &mut out);
        let paths: Vec<String> = out.iter().map(|c| c.path.to_string()).collect();
        assert_eq!(paths, vec!["files[/a]", "files[/c]"]);
        let unread = MachineRun {
            files: Some(vec![MachineFile {
                guest_path: "/c".into(),
                source: FileSource::Content(FileContent::unread("c.txt")),
            }]),
            ..MachineRun::default()
        };
        let mut none = Vec::new();
        diff_run(&unread, &o, &mut none);
        let paths: Vec<String> = none.iter().map(|c| c.path.to_string()).collect();
        assert_eq!(
            paths,
            vec!["files[/a]", "files[/b]"],
            "unread: not compared"
        );
        let text = serde_json::to_string(&out).unwrap();
        assert!(!text.contains("text") && !text.contains("gone"), "{text}");
        assert_eq!(out[0].after.as_ref().unwrap()["size"], 8);
        assert!(out[1].after.is_none());
    }

    #[test]
    fn processes_compare_as_a_list_and_hide_live_credentials() {
        let tok = ["ghp", "_", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"].concat();
        let live = Process {
            cmd: vec!["serve".into()],
            env: [("GITHUB_TOKEN".to_string(), tok.clone())]
                .into_iter()
                .collect(),
            ..Process::default()
        };
        let want = Process {
            cmd: vec!["serve".into(), "--fast".into()],
            ..Process::default()
        };
        let d = MachineRun {
            processes: Some(vec![want.clone()]),
            files: None,
        };
        let o = MachineRun {
            processes: Some(vec![live]),
            files: Some(vec![file("/x", b"y")]),
        };
        let mut out = Vec::new();
        diff_run(&d, &o, &mut out);
        assert_eq!(out.len(), 1, "files not declared: not compared");
        let text = serde_json::to_string(&out[0]).unwrap();
        assert!(!text.contains(&tok), "{text}");
        let same = MachineRun {
            processes: Some(vec![want]),
            files: None,
        };
        let mut none = Vec::new();
        diff_run(&d, &same, &mut none);
        assert!(none.is_empty());
    }
}
