//! `processes:` and `files:`: what one Machine runs (Fly's Machine config `processes`
//! and `files`). Resolution reads them from one layer stack's effective settings and
//! checks them (environment names, absolute and distinct guest paths, exactly one source
//! per file, a `secret_name` declared in the stack's `secrets`); expansion renders their
//! templates per Machine. No I/O: a `local_file` is read later, by
//! [`crate::secret_files::checked`], under the confinement of secret files.

use crate::diag::{Diagnostic, Mark};
use crate::platform;
use crate::resource::SecretSource;
use crate::resource::procs::{FileContent, FileSource, MachineFile, MachineRun, Process};
use crate::spec::decl::{self, Setting, Text, Tree};
use crate::spec::expand::{Sink, err};
use crate::spec::settings::Effective;
use crate::spec::templates::{Templates, is_template};
use crate::spec::yaml::Node;

/// A template as written: (source, document path, mark).
pub(crate) type Tpl = (String, String, Mark);

/// `processes` and `files` as written, checked; templates compiled, not rendered.
#[derive(Default)]
pub(crate) struct RunSettings {
    processes: Option<Vec<ProcessTpl>>,
    files: Option<Vec<FileTpl>>,
}

struct ProcessTpl {
    name: String,
    entrypoint: Vec<Tpl>,
    cmd: Vec<Tpl>,
    env: Vec<(String, Tpl)>,
    user: String,
    exec: Vec<Tpl>,
}

struct FileTpl {
    guest_path: String,
    source: FileTplSource,
}

enum FileTplSource {
    Raw(Tpl),
    Local(String),
    Secret(String),
}

/// Reads and checks one stack's `processes` and `files`. Problems go to `sink` under
/// `address`; the flag is `false` when one is an error.
pub(crate) fn resolve(
    sink: &mut Sink,
    templates: &mut Templates,
    eff: &Effective<'_>,
    address: &str,
    secrets: &[(String, SecretSource, String, Mark)],
) -> (RunSettings, bool) {
    let mut r = Reader {
        sink,
        templates,
        address,
        ok: true,
    };
    let processes = eff
        .value(&decl::PROCESSES)
        .and_then(Node::as_seq)
        .map(|items| {
            let origin = eff.origin_of(&decl::PROCESSES);
            items
                .iter()
                .enumerate()
                .map(|(i, n)| r.process(n, &format!("{origin}[{i}]")))
                .collect()
        });
    let files = eff.value(&decl::FILES).and_then(Node::as_seq).map(|items| {
        let origin = eff.origin_of(&decl::FILES);
        let mut out: Vec<FileTpl> = Vec::new();
        for (i, n) in items.iter().enumerate() {
            if let Some(f) = r.file(n, &format!("{origin}[{i}]"), secrets, &out) {
                out.push(f);
            }
        }
        out
    });
    let ok = r.ok;
    (RunSettings { processes, files }, ok)
}

struct Reader<'r> {
    sink: &'r mut Sink,
    templates: &'r mut Templates,
    address: &'r str,
    ok: bool,
}

impl Reader<'_> {
    fn add(&mut self, d: Diagnostic) {
        if d.is_error() {
            self.ok = false;
        }
        self.sink.add(d.address(self.address.to_string()));
    }

    /// A template source, compiled (a compile error is reported; rendering skips it).
    fn tpl(&mut self, node: &Node, path: String) -> Option<Tpl> {
        let src = node.scalar_text()?.to_string();
        if is_template(&src)
            && let Err(e) = self.templates.compile(&src)
        {
            self.add(err(format!("template error: {e}"), &path, node.mark));
        }
        Some((src, path, node.mark))
    }

    fn args(&mut self, item: &Node, s: &Setting<Tree>, path: &str) -> Vec<Tpl> {
        let Some(list) = s.get(item).and_then(Node::as_seq) else {
            return Vec::new();
        };
        list.iter()
            .enumerate()
            .filter_map(|(i, n)| self.tpl(n, format!("{path}.{}[{i}]", s.key)))
            .collect()
    }

    fn process(&mut self, item: &Node, path: &str) -> ProcessTpl {
        let text = |s: &Setting<Text>| s.get(item).unwrap_or_default().to_string();
        let mut env = Vec::new();
        for (k, v) in decl::PROCESS_ENV
            .get(item)
            .and_then(Node::as_map)
            .unwrap_or_default()
        {
            let Some(key) = k.scalar_text() else { continue };
            let p = format!("{path}.env.{key}");
            if !platform::is_env_name(key) {
                self.add(
                    err(
                        format!("`{key}` is not a valid environment variable name"),
                        &p,
                        k.mark,
                    )
                    .hint("use letters, digits and underscores, not starting with a digit"),
                );
            }
            if let Some(t) = self.tpl(v, p) {
                env.push((key.to_string(), t));
            }
        }
        ProcessTpl {
            name: text(&decl::PROCESS_NAME),
            entrypoint: self.args(item, &decl::PROCESS_ENTRYPOINT, path),
            cmd: self.args(item, &decl::PROCESS_CMD, path),
            env,
            user: text(&decl::PROCESS_USER),
            exec: self.args(item, &decl::PROCESS_EXEC, path),
        }
    }

    /// One file: an absolute guest path not used twice, exactly one source, a declared
    /// secret.
    fn file(
        &mut self,
        item: &Node,
        path: &str,
        secrets: &[(String, SecretSource, String, Mark)],
        earlier: &[FileTpl],
    ) -> Option<FileTpl> {
        let Some((guest_path, gmark)) = decl::FILE_GUEST_PATH.located(item) else {
            self.add(
                err("the file has no guest_path", path, item.mark).hint(
                    "add `guest_path: /etc/app/config.toml` (an absolute path in the Machine)",
                ),
            );
            return None;
        };
        let gp = format!("{path}.guest_path");
        if !guest_path.starts_with('/') || guest_path.ends_with('/') {
            self.add(err(
                format!("guest_path `{guest_path}` must be an absolute file path"),
                &gp,
                gmark,
            ));
        }
        if earlier.iter().any(|f| f.guest_path == guest_path) {
            self.add(
                err(
                    format!("guest_path `{guest_path}` is listed twice"),
                    &gp,
                    gmark,
                )
                .hint("a Machine has one file per path; remove one of them"),
            );
        }
        let given: Vec<&str> = decl::FILE_SOURCES
            .iter()
            .filter(|s| s.node(item).is_some())
            .map(|s| s.key)
            .collect();
        if given.len() != 1 {
            let what = if given.is_empty() {
                "no source".to_string()
            } else {
                format!("{} sources ({})", given.len(), given.join(", "))
            };
            self.add(
                err(format!("file `{guest_path}` has {what}"), path, item.mark)
                    .hint("give exactly one of raw_value, local_file, secret_name"),
            );
            return None;
        }
        let source = self.file_source(item, path, secrets)?;
        Some(FileTpl {
            guest_path: guest_path.to_string(),
            source,
        })
    }

    fn file_source(
        &mut self,
        item: &Node,
        path: &str,
        secrets: &[(String, SecretSource, String, Mark)],
    ) -> Option<FileTplSource> {
        if let Some(n) = decl::FILE_RAW_VALUE.node(item) {
            return self
                .tpl(n, format!("{path}.raw_value"))
                .map(FileTplSource::Raw);
        }
        if let Some(local) = decl::FILE_LOCAL_FILE.get(item) {
            return Some(FileTplSource::Local(local.to_string()));
        }
        let (name, mark) = decl::FILE_SECRET_NAME.located(item)?;
        if !secrets.iter().any(|s| s.0 == name) {
            let known: Vec<&str> = secrets.iter().map(|s| s.0.as_str()).collect();
            let hint = if known.is_empty() {
                format!("declare it under `secrets:` (e.g. `{name}: {{ env: {name} }}`)")
            } else {
                crate::diag::suggest(name, known.iter().copied(), "secrets")
            };
            self.add(
                err(
                    format!("secret_name `{name}` is not a declared secret"),
                    &format!("{path}.secret_name"),
                    mark,
                )
                .hint(hint),
            );
            return None;
        }
        Some(FileTplSource::Secret(name.to_string()))
    }
}

/// Renders one Machine's processes and files; `render(source, path, mark)` renders a
/// template (reporting what fails, which is then left out).
pub(crate) fn render(
    s: &RunSettings,
    render: &mut dyn FnMut(&str, &str, Mark) -> Option<String>,
) -> MachineRun {
    fn args(
        list: &[Tpl],
        render: &mut dyn FnMut(&str, &str, Mark) -> Option<String>,
    ) -> Vec<String> {
        list.iter()
            .filter_map(|(src, p, m)| render(src, p, *m))
            .collect()
    }
    let processes = s.processes.as_ref().map(|ps| {
        ps.iter()
            .map(|p| Process {
                name: p.name.clone(),
                entrypoint: args(&p.entrypoint, render),
                cmd: args(&p.cmd, render),
                env: p
                    .env
                    .iter()
                    .filter_map(|(k, (src, path, m))| Some((k.clone(), render(src, path, *m)?)))
                    .collect(),
                user: p.user.clone(),
                exec: args(&p.exec, render),
            })
            .collect()
    });
    let files = s.files.as_ref().map(|fs| {
        fs.iter()
            .filter_map(|f| {
                let source = match &f.source {
                    FileTplSource::Raw((src, p, m)) => {
                        let mut text = render(src, p, *m)?;
                        // The template engine drops one trailing line break; a file keeps it.
                        if src.ends_with('\n') && !text.ends_with('\n') {
                            text.push('\n');
                        }
                        FileSource::Content(FileContent::of(text.as_bytes(), None))
                    }
                    FileTplSource::Local(r) => FileSource::Content(FileContent::unread(r)),
                    FileTplSource::Secret(n) => FileSource::SecretName(n.clone()),
                };
                Some(MachineFile {
                    guest_path: f.guest_path.clone(),
                    source,
                })
            })
            .collect()
    });
    MachineRun { processes, files }
}

#[cfg(test)]
mod tests {
    use crate::resource::procs::FileSource;

    fn load(spec: &str) -> Result<crate::spec::Loaded, crate::diag::Diagnostics> {
        crate::spec::load_bytes(spec.as_bytes(), "s.yaml")
    }

    const BASE: &str = "version: 1\norg: o\ndefaults:\n  image: i\n  region: iad\n";

    #[test]
    fn processes_and_files_layer_and_render() {
        let spec = format!(
            "{BASE}  processes: [{{ name: app, cmd: [serve, \"--tenant={{{{ tenant.name }}}}\"], env: {{ MODE: web }} }}]\n  secrets: {{ TLS: {{ env: TLS }} }}\n  files:\n    - {{ guest_path: /etc/app.conf, raw_value: \"name={{{{ tenant.name }}}}\" }}\n    - {{ guest_path: /etc/tls.key, secret_name: TLS }}\ntiers:\n  pro:\n    processes: [{{ name: app, exec: [/bin/app, run] }}]\ntenants: [{{ name: a }}, {{ name: b, tier: pro }}]\n"
        );
        let l = load(&spec).unwrap();
        let machines: Vec<_> = l
            .desired
            .resources
            .iter()
            .filter_map(|r| r.machine())
            .collect();
        let a = machines[0].run.processes.as_ref().unwrap();
        assert_eq!(a[0].cmd, vec!["serve", "--tenant=a"]);
        assert_eq!(a[0].env.get("MODE").map(String::as_str), Some("web"));
        let b = machines[1].run.processes.as_ref().unwrap();
        assert!(b[0].cmd.is_empty(), "lists replace: {b:?}");
        assert_eq!(b[0].exec, vec!["/bin/app", "run"]);
        let files = machines[0].run.files.as_ref().unwrap();
        let FileSource::Content(c) = &files[0].source else {
            panic!("content")
        };
        assert_eq!(c.size, 6);
        assert_eq!(c.bytes.as_deref(), Some(&b"name=a"[..]));
        assert_eq!(files[1].source, FileSource::SecretName("TLS".into()));
    }

    #[test]
    fn a_file_needs_exactly_one_source_and_a_declared_secret() {
        let spec = format!(
            "{BASE}  files:\n    - {{ guest_path: /a, raw_value: x, local_file: a.txt }}\n    - {{ guest_path: /b }}\n    - {{ guest_path: /c, secret_name: NOPE }}\n    - {{ guest_path: rel, raw_value: x }}\ntenants: [{{ name: a }}]\n"
        );
        let d = load(&spec).unwrap_err();
        let text = d.to_string();
        assert!(
            text.contains("s.yaml:7:7")
                && text.contains("file `/a` has 2 sources (raw_value, local_file)"),
            "{text}"
        );
        assert!(text.contains("file `/b` has no source"), "{text}");
        assert!(
            text.contains("s.yaml:9:38")
                && text.contains("secret_name `NOPE` is not a declared secret"),
            "{text}"
        );
        assert!(
            text.contains("guest_path `rel` must be an absolute file path"),
            "{text}"
        );
    }
}
