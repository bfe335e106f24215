//! Both directions of the mapping of a Machine's processes and files (`MachineRun`) to
//! Fly's Machine config `processes` and `files`, kept in the config's unmodelled fields
//! (`extra`) so that everything else Fly sends there is sent back as it was. Pure. (A
//! process group's command is `init.cmd`, with the other pass-through fields in
//! `fly::machine_config`.)
//!
//! A file's content goes to Fly as `raw_value` (base64); read back, it becomes a digest
//! and a size ([`FileContent`]) and is compared as such.

use serde_json::{Map, Value, json};

use crate::resource::procs::{
    FileContent, FileSource, MachineFile, MachineRun, Process, base64_decode, base64_encode,
};
use crate::wire as fly;

const PROCESSES: &str = "processes";
const FILES: &str = "files";

/// Writes the declared processes and files into `c` (an absent declaration leaves the
/// config's own). A content file whose bytes are not in memory keeps the entry the
/// config has for its path (the executor reads every file before sending).
pub fn write_run(run: &MachineRun, c: &mut fly::MachineConfig) {
    if let Some(ps) = &run.processes {
        if ps.is_empty() {
            c.extra.remove(PROCESSES);
        } else {
            let list: Vec<Value> = ps.iter().map(process_json).collect();
            c.extra.insert(PROCESSES.into(), Value::Array(list));
        }
    }
    if let Some(fs) = &run.files {
        let old: Vec<Value> = match c.extra.get(FILES) {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let list: Vec<Value> = fs.iter().filter_map(|f| file_json(f, &old)).collect();
        if list.is_empty() {
            c.extra.remove(FILES);
        } else {
            c.extra.insert(FILES.into(), Value::Array(list));
        }
    }
}

fn process_json(p: &Process) -> Value {
    let mut o = Map::new();
    if !p.name.is_empty() {
        o.insert("name".into(), json!(p.name));
    }
    for (k, v) in [
        ("entrypoint", &p.entrypoint),
        ("cmd", &p.cmd),
        ("exec", &p.exec),
    ] {
        if !v.is_empty() {
            o.insert(k.into(), json!(v));
        }
    }
    if !p.env.is_empty() {
        o.insert("env".into(), json!(p.env));
    }
    if !p.user.is_empty() {
        o.insert("user".into(), json!(p.user));
    }
    Value::Object(o)
}

fn file_json(f: &MachineFile, old: &[Value]) -> Option<Value> {
    match &f.source {
        FileSource::SecretName(n) => Some(json!({ "guest_path": f.guest_path, "secret_name": n })),
        FileSource::Content(c) => match &c.bytes {
            Some(b) => Some(json!({ "guest_path": f.guest_path, "raw_value": base64_encode(b) })),
            None => old
                .iter()
                .find(|o| o.get("guest_path").and_then(Value::as_str) == Some(&f.guest_path))
                .cloned(),
        },
    }
}

/// The processes and files of a Fly Machine config; each `None` when the
/// config has none (compared as empty), so an observed Machine without them reads (and
/// fingerprints) as it always did.
pub fn read_run(c: &fly::MachineConfig) -> MachineRun {
    let processes: Vec<Process> = match c.extra.get(PROCESSES) {
        Some(Value::Array(a)) => a.iter().map(read_process).collect(),
        _ => Vec::new(),
    };
    let files: Vec<MachineFile> = match c.extra.get(FILES) {
        Some(Value::Array(a)) => a.iter().filter_map(read_file).collect(),
        _ => Vec::new(),
    };
    MachineRun {
        processes: (!processes.is_empty()).then_some(processes),
        files: (!files.is_empty()).then_some(files),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn read_process(v: &Value) -> Process {
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let env = match v.get("env") {
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, x)| Some((k.clone(), x.as_str()?.to_string())))
            .collect(),
        _ => Default::default(),
    };
    Process {
        name: text("name"),
        entrypoint: strings(v.get("entrypoint")),
        cmd: strings(v.get("cmd")),
        env,
        user: text("user"),
        exec: strings(v.get("exec")),
    }
}

fn read_file(v: &Value) -> Option<MachineFile> {
    let guest_path = v.get("guest_path")?.as_str()?.to_string();
    let source = match (
        v.get("secret_name").and_then(Value::as_str),
        v.get("raw_value").and_then(Value::as_str),
    ) {
        (Some(n), _) if !n.is_empty() => FileSource::SecretName(n.to_string()),
        (_, Some(raw)) => {
            // Not base64: compared as the text it is (a plan then shows a change).
            let bytes = base64_decode(raw).unwrap_or_else(|| raw.as_bytes().to_vec());
            let mut c = FileContent::of(&bytes, None);
            c.bytes = None;
            FileSource::Content(c)
        }
        _ => FileSource::Content(FileContent::of(b"", None)),
    };
    Some(MachineFile { guest_path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_round_trips_and_keeps_what_is_not_declared() {
        let run = MachineRun {
            processes: Some(vec![Process {
                name: "web".into(),
                cmd: vec!["serve".into(), "--port=8080".into()],
                env: [("MODE".to_string(), "web".to_string())]
                    .into_iter()
                    .collect(),
                ..Process::default()
            }]),
            files: Some(vec![
                MachineFile {
                    guest_path: "/etc/a".into(),
                    source: FileSource::Content(FileContent::of(b"hello", None)),
                },
                MachineFile {
                    guest_path: "/etc/k".into(),
                    source: FileSource::SecretName("KEY".into()),
                },
            ]),
        };
        let mut c = fly::MachineConfig::default();
        c.extra
            .insert("dns".into(), json!({ "skip_registration": true }));
        write_run(&run, &mut c);
        assert_eq!(c.extra["files"][0]["raw_value"], "aGVsbG8=");
        assert_eq!(c.extra["dns"]["skip_registration"], true);
        assert_eq!(read_run(&c), run);
        // Not declared: the Machine's own are kept.
        let mut again = c.clone();
        write_run(&MachineRun::default(), &mut again);
        assert_eq!(again, c);
        // Fly's nulls read as unset.
        let mut n = fly::MachineConfig::default();
        n.extra.insert(
            "processes".into(),
            json!([{ "name": "web", "cmd": ["serve", "--port=8080"], "entrypoint": null, "env": { "MODE": "web" }, "user": null, "exec": null }]),
        );
        assert_eq!(read_run(&n).processes, run.processes);
        assert!(read_run(&fly::MachineConfig::default()).is_empty());
    }
}
