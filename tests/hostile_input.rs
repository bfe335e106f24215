//! Hostile input: specs, state files, saved plans and what-if scenarios that come from an
//! untrusted change. Each is refused with a clear error (exit 1, a position, a hint)
//! within a time and memory bound measured on the child process (wall time, and its own
//! peak RSS from `wait4`), and a refused input sends no request to the simulator. Every
//! hostile file is generated here, at run time, in a scratch directory.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "reconcile_common/mod.rs"]
mod reconcile_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reconcile_common::{Org, text};

/// Generous safety bounds, not performance assertions.
const TIME_BOUND: Duration = Duration::from_secs(10);
const MEMORY_BOUND_KB: u64 = 512 * 1024;

/// One run of the binary: exit code, stdout + stderr, wall time and peak RSS.
struct Run {
    code: Option<i32>,
    text: String,
    took: Duration,
    peak_kb: u64,
}

/// Reaps `pid` if it has exited (`wait4` with `WNOHANG`): its exit code and peak RSS in KB
/// (`ru_maxrss` of that child alone).
fn reap(pid: u32, block: bool) -> Option<(Option<i32>, u64)> {
    let mut status = 0;
    // SAFETY: plain out-parameters; `pid` is our own unreaped child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if block { 0 } else { libc::WNOHANG };
    let r = unsafe { libc::wait4(pid as i32, &mut status, flags, &mut usage) };
    if r != pid as i32 {
        return None;
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Some((code, usage.ru_maxrss as u64))
}

/// Runs `cmd` and measures it; kills it after twice the time bound.
// The child is reaped by `wait4` in `reap` (which also gives its peak RSS).
#[allow(clippy::zombie_processes)]
fn measure(mut cmd: Command) -> Run {
    use std::io::Read;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id();
    let (code, peak_kb) = loop {
        if let Some(r) = reap(pid, false) {
            break r;
        }
        if start.elapsed() > TIME_BOUND * 2 {
            child.kill().unwrap();
            break reap(pid, true).unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    let text = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    assert!(!text.contains("panicked"), "{text}");
    record(&cmd, took, peak_kb);
    Run {
        code,
        text,
        took,
        peak_kb,
    }
}

/// Prints the figure (`cargo test --test hostile_input -- --nocapture` shows them).
fn record(cmd: &Command, took: Duration, peak_kb: u64) {
    let args: Vec<String> = cmd
        .get_args()
        .take(2)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!(
        "[hostile] {:<40} {:>6} ms {:>7} KB",
        args.join(" "),
        took.as_millis(),
        peak_kb
    );
}

/// Refused: exit 1, within the bounds, every `needles` in the output.
fn refused(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, Some(1), "{}", run.text);
    assert!(run.took < TIME_BOUND, "took {:?}: {}", run.took, run.text);
    assert!(
        run.peak_kb < MEMORY_BOUND_KB,
        "{} KB: {}",
        run.peak_kb,
        run.text
    );
    for n in needles {
        assert!(run.text.contains(n), "missing `{n}` in:\n{}", run.text);
    }
    assert!(run.text.contains("hint:"), "no hint:\n{}", run.text);
}

fn spec_with(secrets: &str, extra: &str) -> String {
    format!(
        "version: 1\norg: hostile\nfleet: hostile\nnaming:\n  app: \"hostile-{{{{ tenant.name }}}}\"\ndefaults:\n  image: registry.fly.io/x:1\n  region: iad\n  secrets:\n{secrets}{extra}tenants:\n  - name: alice\n"
    )
}

/// Nothing of the fleet was created: the only writes an apply may make before its
/// journal is open are the fleet lock's (its sentinel app and Machine, the lease).
fn no_fleet_change(org: &Org) {
    assert!(
        org.apps("hostile").is_empty(),
        "a change was made: {:?}",
        org.apps("hostile")
    );
    for r in org.requests() {
        let (method, path) = (r["method"].as_str().unwrap(), r["path"].as_str().unwrap());
        if matches!(method, "GET" | "HEAD") {
            continue;
        }
        // Creating an app is the sentinel's: no fleet app exists (checked above).
        let lock = path.starts_with("/v1/apps/flotilla-lock-")
            || (method == "POST" && path.trim_end_matches('/') == "/v1/apps");
        assert!(
            lock,
            "a write that is not the fleet lock's: {method} {path}"
        );
    }
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// `validate`, `plan` (against the simulator) and `apply` of `spec` are all refused with
/// `needles`, and the simulator saw no request.
fn refused_everywhere(org: &Org, spec: &str, needles: &[&str]) {
    org.write("specs/hostile.yaml", spec);
    let v = measure({
        let mut c = org.cmd("validate", &["specs/hostile.yaml"]);
        // validate takes no --api: build it without the target arguments.
        c = rebuild_without_target(c);
        c
    });
    refused(&v, needles);
    let p = measure(org.cmd("plan", &["specs/hostile.yaml"]));
    refused(&p, needles);
    let a = measure(org.cmd("apply", &["specs/hostile.yaml", "--yes"]));
    refused(&a, needles);
    assert_eq!(org.counters().requests, 0, "a request reached the API");
}

/// The same command without `--api URL --time-scale N` (for `validate` and `whatif`).
fn rebuild_without_target(c: Command) -> Command {
    let args: Vec<_> = c.get_args().map(|a| a.to_os_string()).collect();
    let cut = args.iter().position(|a| a == "--api").unwrap_or(args.len());
    let mut out = Command::new(c.get_program());
    out.args(&args[..cut]);
    if let Some(d) = c.get_current_dir() {
        out.current_dir(d);
    }
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => out.env(k, v),
            None => out.env_remove(k),
        };
    }
    out
}

#[test]
fn secret_files_in_system_directories_are_refused() {
    let org = Org::new(50.0);
    for (reference, what) in [
        ("/proc/self/environ", "system directory"),
        ("/dev/zero", "system directory"),
        (
            "/sys/kernel/mm/transparent_hugepage/enabled",
            "system directory",
        ),
    ] {
        let spec = spec_with(&format!("    LEAK: {{ file: {reference} }}\n"), "");
        refused_everywhere(&org, &spec, &["specs/hostile.yaml:10:19", what]);
    }
}

#[test]
fn secret_files_outside_the_spec_directory_are_refused() {
    let org = Org::new(50.0);
    let spec = spec_with("    PW: { file: ../../../../../../etc/passwd }\n", "");
    refused_everywhere(&org, &spec, &["specs/hostile.yaml:10:17", "leaves"]);
    // A symlink inside the tree pointing out of it.
    org.write("outside.txt", "not for the spec");
    std::os::unix::fs::symlink(org.path("outside.txt"), org.path("specs/link.txt")).unwrap();
    let spec = spec_with("    L: { file: link.txt }\n", "");
    refused_everywhere(&org, &spec, &["specs/hostile.yaml:10:16", "outside"]);
    // A symlink to the process environment.
    std::os::unix::fs::symlink("/proc/self/environ", org.path("specs/env.txt")).unwrap();
    let spec = spec_with("    E: { file: env.txt }\n", "");
    refused_everywhere(
        &org,
        &spec,
        &["specs/hostile.yaml:10:16", "system directory"],
    );
    // --secrets-dir names the tree explicitly: the link's target is then inside it.
    org.write(
        "specs/hostile.yaml",
        &spec_with("    L: { file: link.txt }\n", ""),
    );
    let out = org.run("plan", &["specs/hostile.yaml", "--secrets-dir", "."]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn secret_files_that_are_not_small_regular_files_are_refused() {
    let org = Org::new(50.0);
    std::fs::create_dir_all(org.path("specs/secrets")).unwrap();
    mkfifo(&org.path("specs/secrets/fifo"));
    let spec = spec_with("    F: { file: secrets/fifo }\n", "");
    refused_everywhere(
        &org,
        &spec,
        &["specs/hostile.yaml:10:16", "not a regular file"],
    );
    org.write("specs/secrets/big.txt", &"a".repeat(70 * 1024));
    let spec = spec_with("    B: { file: secrets/big.txt }\n", "");
    refused_everywhere(
        &org,
        &spec,
        &["specs/hostile.yaml:10:16", "the limit is 65536 bytes"],
    );
    // The limit is an option.
    let mut c = rebuild_without_target(org.cmd(
        "validate",
        &["specs/hostile.yaml", "--secret-max-bytes", "100000"],
    ));
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_missing_secret_file_is_reported_by_validate_and_plan() {
    let org = Org::new(50.0);
    org.write(
        "specs/hostile.yaml",
        &spec_with("    M: { file: secrets/missing.txt }\n", ""),
    );
    let mut c = rebuild_without_target(org.cmd("validate", &["specs/hostile.yaml"]));
    let out = c.output().unwrap();
    assert!(
        text(&out).contains("specs/hostile.yaml:10:16") && text(&out).contains("does not exist"),
        "{}",
        text(&out)
    );
    let out = org.run("plan", &["specs/hostile.yaml"]);
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
}

#[test]
fn fifos_as_spec_or_state_are_refused_without_blocking() {
    let org = Org::new(50.0);
    mkfifo(&org.path("spec.fifo"));
    mkfifo(&org.path("state.fifo"));
    let run = measure(rebuild_without_target(org.cmd("validate", &["spec.fifo"])));
    refused(&run, &["FIFO", "spec.fifo"]);
    org.write(
        "specs/ok.yaml",
        &spec_with("    A: { env: ANTHROPIC_API_KEY }\n", ""),
    );
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("flotilla"));
    c.current_dir(org.dir.path())
        .args(["plan", "specs/ok.yaml", "--state", "state.fifo"]);
    let run = measure(c);
    refused(&run, &["FIFO", "state.fifo"]);
    let run = measure(rebuild_without_target(org.cmd("whatif", &["spec.fifo"])));
    refused(&run, &["FIFO"]);
}

#[test]
fn control_characters_are_refused_with_their_position() {
    let org = Org::new(50.0);
    // A NUL that would hide the second tenant from a reader stopping there.
    let spec = "version: 1\norg: hostile\ndefaults: {image: x, region: iad}\ntenants:\n  - name: alice\0\n  - name: bob\n";
    refused_everywhere(&org, spec, &["specs/hostile.yaml:5:16", "NUL"]);
    let spec = "version: 1\norg: hostile\x1b[2J\ndefaults: {image: x, region: iad}\ntenants: [{name: a}]\n";
    refused_everywhere(&org, spec, &["specs/hostile.yaml:2:13", "U+001B"]);

    // A state file.
    org.write(
        "specs/ok.yaml",
        &spec_with("    A: { env: ANTHROPIC_API_KEY }\n", ""),
    );
    org.write("state.json", "{\"format\": 1,\0 \"org\": \"hostile\"}\n");
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("flotilla"));
    c.current_dir(org.dir.path())
        .args(["plan", "specs/ok.yaml", "--state", "state.json"]);
    refused(&measure(c), &["state.json:1:14", "NUL"]);

    // A saved plan: made for real, then a NUL put into it.
    let out = org.run("plan", &["specs/ok.yaml", "--out", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let before = org.counters().requests;
    let mut bytes = std::fs::read(org.path("plan.json")).unwrap();
    let at = bytes.iter().position(|b| *b == b'\n').unwrap();
    bytes.insert(at, 0);
    std::fs::write(org.path("plan.json"), bytes).unwrap();
    let run = measure(org.cmd("apply", &["plan.json", "--yes"]));
    refused(&run, &["plan.json:1:2", "NUL"]);
    assert_eq!(
        org.counters().requests,
        before,
        "the refused plan sent requests"
    );

    // A what-if scenario.
    org.write("scenario.yaml", "version: 1\nname: \"x\0\"\n");
    let run = measure(rebuild_without_target(
        org.cmd("whatif", &["scenario.yaml"]),
    ));
    refused(&run, &["scenario.yaml:2:9", "NUL"]);
}

#[test]
fn template_bombs_are_stopped_by_the_render_budget() {
    let org = Org::new(50.0);
    let loops = "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
    let spec = format!(
        "version: 1\norg: hostile\ndefaults:\n  image: x\n  region: iad\n  env:\n    BOMB: \"{loops}\"\ntenants:\n  - generate: {{ count: 2000, name: \"t{{{{ i }}}}\" }}\n"
    );
    refused_everywhere(
        &org,
        &spec,
        &["render budget of 100000 instructions", "hostile.yaml:7"],
    );
    let spec = "version: 1\norg: hostile\ndefaults:\n  image: x\n  region: iad\n  env:\n    PAD: \"{{ tenant.name | pad(2000000000) }}\"\ntenants:\n  - name: alice\n";
    refused_everywhere(&org, spec, &["pad(2000000000)", "1024", "hostile.yaml:7"]);
}

#[test]
fn yaml_bombs_and_huge_fleets_are_refused_before_they_are_built() {
    let org = Org::new(50.0);
    // A 1 MB string aliased 1,500 times: few nodes, gigabytes of text.
    let mut spec = format!(
        "version: 1\norg: hostile\ndefaults: {{image: x, region: iad}}\nbig: &big \"{}\"\nlist: [",
        "x".repeat(1 << 20)
    );
    for _ in 0..1500 {
        spec.push_str("*big, ");
    }
    spec.push_str("]\ntenants: [{name: a}]\n");
    refused_everywhere(&org, &spec, &["hostile.yaml:5:", "67108864 bytes"]);
    // Too many tenants: two generators of 100,000 each.
    let spec = "version: 1\norg: hostile\ndefaults: {image: x, region: iad}\ntenants:\n  - generate: { count: 100000, name: \"a{{ i }}\" }\n  - generate: { count: 100000, name: \"b{{ i }}\" }\n";
    refused_everywhere(
        &org,
        spec,
        &["hostile.yaml:5:3", "200000 tenants", "the limit is 50000"],
    );
}

#[test]
fn an_unwritable_journal_stops_the_apply_before_any_change() {
    let org = Org::new(50.0);
    org.write(
        "specs/ok.yaml",
        &spec_with("    A: { env: ANTHROPIC_API_KEY }\n", ""),
    );
    let run = measure(org.cmd(
        "apply",
        &["specs/ok.yaml", "--yes", "--journal", "/dev/full"],
    ));
    refused(
        &run,
        &[
            "/dev/full",
            "cannot write the journal",
            "nothing was changed",
        ],
    );
    no_fleet_change(&org);
    std::fs::create_dir_all(org.path("ro")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(org.path("ro"), std::fs::Permissions::from_mode(0o500)).unwrap();
    // Root ignores permissions; the check is meaningful only for other users.
    if std::fs::write(org.path("ro/probe"), "x").is_err() {
        let run = measure(org.cmd(
            "apply",
            &["specs/ok.yaml", "--yes", "--journal", "ro/j.jsonl"],
        ));
        refused(&run, &["ro/j.jsonl"]);
        no_fleet_change(&org);
    }
}

#[test]
fn a_dead_api_is_reported_within_seconds() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ok.yaml"),
        spec_with("    A: { env: ANTHROPIC_API_KEY }\n", ""),
    )
    .unwrap();
    for sub in ["plan", "apply"] {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("flotilla"));
        c.current_dir(dir.path())
            .args(
                [sub, "ok.yaml", "--yes"]
                    .iter()
                    .filter(|a| sub == "apply" || **a != "--yes"),
            )
            .env("FLY_API_TOKEN", "test-token-for-a-dead-api")
            .env("FLY_API_HOSTNAME", format!("http://127.0.0.1:{port}"))
            .env("NO_COLOR", "1");
        let run = measure(c);
        refused(
            &run,
            &[
                &format!("the API at http://127.0.0.1:{port} is unreachable"),
                "3 attempts",
            ],
        );
    }
}

#[test]
fn the_request_log_holds_only_whole_lines_as_it_is_written() {
    let org = Org::new(50.0);
    org.write(
        "specs/ok.yaml",
        &spec_with("    A: { env: ANTHROPIC_API_KEY }\n", ""),
    );
    let out = org.run("plan", &["specs/ok.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    // Read without asking the simulator to flush: every request is already a whole line.
    let log = std::fs::read_to_string(&org.log).unwrap();
    assert!(log.ends_with('\n'), "a partial last line");
    let lines: Vec<&str> = log.lines().collect();
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
    assert_eq!(lines.len() as u64, org.counters().requests);
}
