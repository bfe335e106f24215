//! The simulator's request log survives `kill -9`: every line it holds is a whole JSON
//! object, because each line is written in one write as the request is answered.

// Test code: a broken fixture may panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn flotilla() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("flotilla"))
}

#[test]
fn a_killed_simulator_leaves_only_whole_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let mut sim = flotilla()
        .args([
            "sim",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--time-scale",
            "50",
        ])
        .arg("--request-log")
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("flotilla sim listening on ")
        .unwrap_or_else(|| panic!("unexpected announcement: {first}"))
        .to_string();

    let tenants: String = (0..40).map(|i| format!("  - name: t{i:02}\n")).collect();
    std::fs::write(
        dir.path().join("fleet.yaml"),
        format!(
            "version: 1\norg: killed\nfleet: killed\nnaming:\n  app: \"killed-{{{{ tenant.name }}}}\"\ndefaults:\n  image: registry.fly.io/x:1\n  region: iad\n  volume: {{ name: data, size_gb: 1, mount: /data }}\ntenants:\n{tenants}"
        ),
    )
    .unwrap();
    let mut apply = flotilla()
        .current_dir(dir.path())
        .args([
            "apply",
            "fleet.yaml",
            "--yes",
            "--api",
            &url,
            "--time-scale",
            "50",
        ])
        .env("FLY_API_TOKEN", "test")
        .env_remove("FLY_API_HOSTNAME")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Kill the simulator while the apply is sending requests (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&log).map_or(0, |m| m.len()) < 20_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    sim.kill().unwrap();
    sim.wait().unwrap();
    let _ = apply.kill();
    let _ = apply.wait();

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.len() >= 20_000, "the apply sent too few requests");
    assert!(text.ends_with('\n'), "a partial last line");
    for (i, line) in text.lines().enumerate() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
    }
}
