//! Fleet changes that must not lose data or wake idle Machines, against the simulator
//! over loopback, driving the real binary: scale-down keeps Machine 0 and its volume,
//! updates of stopped or suspended Machines leave them idle.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reconcile_common;

use reconcile_common::{Org, text};
use serde_json::Value;

const SCALE: f64 = 40.0;

/// A one-tenant fleet of `count` Machines, each with a volume.
fn volume_fleet(count: u32, naming: &str) -> String {
    format!(
        r#"
version: 1
org: fleet
naming: {{ app: "fleet-{{{{ tenant.name }}}}"{naming} }}
defaults:
  image: registry.fly.io/fleet:1.0
  region: iad
  memory: 512mb
  count: {count}
  volume: {{ name: data, size_gb: 1, mount: /data }}
tenants:
  - name: a
"#
    )
}

/// The plan's actionable changes: (address, action, data_loss).
fn changes(plan: &Value) -> Vec<(String, String, bool)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "noop")
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["data_loss"] == true,
            )
        })
        .collect()
}

/// (Machine ID, volume ID, volume name) of Machine 0 of app `fleet-a`.
fn machine_zero(org: &Org) -> (String, String, String) {
    let m = org
        .machines("fleet-a")
        .into_iter()
        .find(|m| m["config"]["metadata"]["flotilla_index"] == "0")
        .unwrap();
    let vol_id = m["config"]["mounts"][0]["volume"]
        .as_str()
        .unwrap()
        .to_string();
    let vol = org
        .volumes("fleet-a")
        .into_iter()
        .find(|v| v["id"] == vol_id.as_str())
        .unwrap();
    (
        m["id"].as_str().unwrap().to_string(),
        vol_id,
        vol["name"].as_str().unwrap().to_string(),
    )
}

/// Scaling `from` → `to` Machines plans the removal of the highest indexes only:
/// Machine 0 and its volume are not in the plan, and after the apply they are the same
/// objects.
fn scale_down_keeps_machine_zero(org: &Org, from: u32, to: u32) {
    let (m0, v0, name0) = machine_zero(org);
    org.write("specs/fleet.yaml", &volume_fleet(to, ""));
    let (plan, code) = org.plan_json("specs/fleet.yaml", &[]);
    assert_eq!(code, 2, "{plan}");
    let planned = changes(&plan);
    assert!(
        planned
            .iter()
            .all(|(a, action, _)| action == "delete" && !a.contains("[0]")),
        "only the highest indexes are removed: {planned:?}"
    );
    let removed_volumes = planned
        .iter()
        .filter(|(a, _, loss)| a.contains(".volume.") && *loss);
    assert_eq!(removed_volumes.count(), (from - to) as usize, "{planned:?}");
    org.apply_ok(
        "specs/fleet.yaml",
        &["--allow-destroy", "--allow-data-loss"],
    );
    assert_eq!(
        machine_zero(org),
        (m0, v0, name0),
        "Machine 0 and its volume untouched"
    );
    assert_eq!(org.machines("fleet-a").len(), to as usize);
    let (plan, code) = org.plan_json("specs/fleet.yaml", &[]);
    assert_eq!(code, 0, "converged: {:?}", changes(&plan));
}

#[test]
fn scale_down_three_to_one_keeps_machine_zero_and_its_volume() {
    let org = Org::new(SCALE);
    org.write("specs/fleet.yaml", &volume_fleet(3, ""));
    org.apply_ok("specs/fleet.yaml", &[]);
    assert_eq!(
        machine_zero(&org).2,
        "data",
        "index 0 is named alike for every count"
    );
    scale_down_keeps_machine_zero(&org, 3, 1);
}

#[test]
fn scale_down_two_to_one_keeps_machine_zero_and_its_volume() {
    let org = Org::new(SCALE);
    org.write("specs/fleet.yaml", &volume_fleet(2, ""));
    org.apply_ok("specs/fleet.yaml", &[]);
    scale_down_keeps_machine_zero(&org, 2, 1);
}

#[test]
fn a_fleet_made_under_the_old_default_naming_keeps_its_volume_names() {
    // The earlier default named index 0 `data_0` when count > 1.
    let org = Org::new(SCALE);
    let old = r#", volume: "{{ volume.name }}_{{ index }}""#;
    org.write("specs/fleet.yaml", &volume_fleet(3, old));
    org.apply_ok("specs/fleet.yaml", &[]);
    assert_eq!(machine_zero(&org).2, "data_0");
    // The default naming now: nothing to do at the same count …
    org.write("specs/fleet.yaml", &volume_fleet(3, ""));
    let (plan, code) = org.plan_json("specs/fleet.yaml", &[]);
    assert_eq!(code, 0, "observed names win: {:?}", changes(&plan));
    // … and scaling down keeps `data_0` on Machine 0.
    scale_down_keeps_machine_zero(&org, 3, 1);
    assert_eq!(machine_zero(&org).2, "data_0");
    // Scaling up again adds the highest indexes and leaves Machine 0 alone.
    let before = machine_zero(&org);
    org.write("specs/fleet.yaml", &volume_fleet(2, ""));
    let out = org.apply_ok("specs/fleet.yaml", &[]);
    assert_eq!(machine_zero(&org), before, "{}", text(&out));
}

/// Four tenants, one Machine each, suspended when idle.
fn idle_fleet(image: &str) -> String {
    format!(
        r#"
version: 1
org: fleet
naming: {{ app: "idle-{{{{ tenant.name }}}}" }}
defaults:
  image: registry.fly.io/idle:{image}
  region: iad
  memory: 512mb
  idle: {{ mode: suspend, autostart: true, min_running: 0 }}
  services:
    - internal_port: 8080
      ports:
        - {{ port: 443, handlers: [tls, http] }}
  checks: {{ alive: {{ type: tcp, port: 8080 }} }}
tenants:
  - generate: {{ count: 4, name: "t{{{{ i }}}}" }}
"#
    )
}

/// (state, times started) of each Machine of the idle fleet.
fn idle_states(org: &Org) -> Vec<(String, u64)> {
    (1..=4)
        .flat_map(|i| {
            org.sim
                .control()
                .machines(&format!("idle-t{i}"))
                .unwrap()
                .machines
        })
        .map(|m| (m.state, m.starts))
        .collect()
}

#[test]
fn an_image_change_to_a_suspended_fleet_starts_none_of_it() {
    let org = Org::new(SCALE);
    org.write("specs/idle.yaml", &idle_fleet("1.0"));
    org.apply_ok("specs/idle.yaml", &[]);
    org.sim.control().trigger_idle(None, None, true);
    let mut before = idle_states(&org);
    for _ in 0..500 {
        if before.iter().all(|(s, _)| s == "suspended") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        before = idle_states(&org);
    }
    assert!(
        before.iter().all(|(s, n)| s == "suspended" && *n == 1),
        "{before:?}"
    );
    org.write("specs/idle.yaml", &idle_fleet("2.0"));
    let plan = org.run("plan", &["specs/idle.yaml"]);
    let t = text(&plan);
    assert!(
        t.contains("will be updated in place (takes effect at next start)")
            && t.contains("the Machine is suspended: updated without starting it"),
        "{t}"
    );
    let out = org.apply_ok("specs/idle.yaml", &["--canary", "1"]);
    let after = idle_states(&org);
    assert!(
        after.iter().all(|(s, n)| s != "started" && *n == 1),
        "no Machine was started: {after:?}\n{}",
        text(&out)
    );
    for i in 1..=4 {
        let m = &org.machines(&format!("idle-t{i}"))[0];
        assert_eq!(m["config"]["image"], "registry.fly.io/idle:2.0");
    }
    let (plan, code) = org.plan_json("specs/idle.yaml", &[]);
    assert_eq!(code, 0, "re-plan is empty: {:?}", changes(&plan));
    // A stopped Machine stays stopped as well.
    org.write("specs/idle.yaml", &idle_fleet("2.1"));
    org.apply_ok("specs/idle.yaml", &[]);
    assert!(
        idle_states(&org)
            .iter()
            .all(|(s, n)| s == "stopped" && *n == 1)
    );
}

/// Journal lines (JSON objects) of operations.
fn journal_ops(org: &Org, rel: &str) -> Vec<Value> {
    std::fs::read_to_string(org.path(rel))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["op"].is_u64())
        .collect()
}

fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// The per-operation counts add up to the operations, and equal the journal's outcomes.
fn check_counts_against_journal(summary: &Value, journal: &[Value]) {
    let ops = &summary["operations"];
    let done: u64 = ["created", "updated", "replaced", "destroyed", "checked"]
        .iter()
        .map(|k| count(ops, k))
        .sum();
    let total = count(ops, "total");
    assert_eq!(
        done + count(ops, "failed") + count(ops, "skipped") + count(ops, "not_started"),
        total,
        "{ops}"
    );
    let mut distinct: Vec<u64> = journal.iter().map(|l| count(l, "op")).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len() as u64, total, "every operation is journaled");
    let lines = |outcome: &str| journal.iter().filter(|l| l["outcome"] == outcome).count() as u64;
    assert_eq!(lines("ok"), done, "{ops}");
    assert_eq!(lines("failed"), count(ops, "failed"));
    assert_eq!(
        lines("skipped"),
        count(ops, "skipped") + count(ops, "not_started")
    );
}

#[test]
fn json_summary_is_only_json_and_the_journal_names_fly_request_ids() {
    let org = Org::new(SCALE);
    let (plan, _) = org.plan_json("specs/jarvis.yaml", &[]);
    let out = org.apply_ok(
        "specs/jarvis.yaml",
        &["--json-summary", "--journal", "journal/a.jsonl"],
    );
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON only ({e}): {}", text(&out)));
    assert_eq!(summary["created"], plan["summary"]["create"]);
    let journal = journal_ops(&org, "journal/a.jsonl");
    check_counts_against_journal(&summary, &journal);
    assert!(text(&out).contains("Operations: "), "{}", text(&out));
    for l in journal.iter().filter(|l| l["outcome"] == "ok") {
        assert!(l["operation_id"].is_string(), "{l}");
        let ids = l["fly_request_ids"].as_array().unwrap();
        if l["action"].as_str().unwrap().starts_with("create") {
            assert!(
                !ids.is_empty() && ids.iter().all(|i| i.as_str().unwrap().starts_with("sim")),
                "a write's line names Fly's request ids: {l}"
            );
        }
    }
    // Nothing to do: still JSON only.
    let out = org.apply_ok("specs/jarvis.yaml", &["--json-summary"]);
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON only ({e}): {}", text(&out)));
    assert_eq!(summary["operations"]["total"], 0);
    assert_eq!(summary["created"], 0);
}

#[test]
fn ctrl_c_counts_equal_the_journal_and_the_follow_up_plan() {
    // A slow clock (time scale 4) so that the apply is still running when interrupted.
    let org = Org::new(4.0);
    let (plan, _) = org.plan_json("specs/jarvis.yaml", &[]);
    let planned = plan["summary"]["create"].as_u64().unwrap();
    let child = org
        .cmd(
            "apply",
            &[
                "specs/jarvis.yaml",
                "--yes",
                "--json-summary",
                "--journal",
                "journal/interrupted.jsonl",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if org.apps("my-jarvis").len() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON only ({e}): {}", text(&out)));
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["failed"], 0, "{summary}");
    let journal = journal_ops(&org, "journal/interrupted.jsonl");
    check_counts_against_journal(&summary, &journal);
    assert!(
        count(&summary["operations"], "not_started") > 0,
        "{summary}"
    );
    // What the summary says was created is exactly what the next plan no longer creates.
    let (next, _) = org.plan_json("specs/jarvis.yaml", &[]);
    let remaining = next["summary"]["create"].as_u64().unwrap();
    assert_eq!(
        count(&summary, "created") + remaining,
        planned,
        "{summary}\n{}",
        next["summary"]
    );
    assert_eq!(count(&summary, "not_done"), remaining);
}

/// Six tenants on one image; `t3` and `t5` are pro-tier tenants.
fn rollout_fleet(image: &str) -> String {
    format!(
        r#"
version: 1
org: fleet
naming: {{ app: "roll-{{{{ tenant.name }}}}" }}
defaults:
  image: registry.fly.io/roll:{image}
  region: iad
  memory: 512mb
  checks: {{ alive: {{ type: tcp, port: 8080 }} }}
tiers:
  pro: {{ memory: 1gb }}
tenants:
  - {{ name: t1 }}
  - {{ name: t2 }}
  - {{ name: t3, tier: pro }}
  - {{ name: t4 }}
  - {{ name: t5, tier: pro }}
  - {{ name: t6 }}
"#
    )
}

fn roll_machine(org: &Org, t: &str) -> Value {
    org.machines(&format!("roll-{t}")).remove(0)
}

fn image_of(org: &Org, t: &str) -> String {
    roll_machine(org, t)["config"]["image"]
        .as_str()
        .unwrap()
        .trim_start_matches("registry.fly.io/roll:")
        .to_string()
}

#[test]
fn a_failed_canary_is_remembered_until_resume_or_rollback() {
    let org = Org::new(SCALE);
    org.write("specs/roll.yaml", &rollout_fleet("1.0"));
    org.apply_ok("specs/roll.yaml", &[]);
    // A bad image: the chosen canaries (the pro tier: t3, t5) fail their health checks.
    org.write("specs/roll.yaml", &rollout_fleet("2.0-broken"));
    org.set_faults("bad_image=broken");
    let flags = ["--canary-tier", "pro", "--wave-size", "2"];
    let out = org.apply("specs/roll.yaml", &flags);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    for t in ["t3", "t5"] {
        let m = roll_machine(&org, t);
        assert_eq!(m["state"], "failed");
        let md = &m["config"]["metadata"];
        assert_eq!(md["flotilla_rollout"], "registry.fly.io/roll:2.0-broken");
        assert_eq!(md["flotilla_rollout_from"], "registry.fly.io/roll:1.0");
        assert_eq!(md["flotilla_rollout_state"], "failed");
        assert_eq!(md["flotilla_rollout_wave"], "1");
    }
    for t in ["t1", "t2", "t4", "t6"] {
        assert_eq!(image_of(&org, t), "1.0", "only the canaries were updated");
    }
    // The plan shows the failed Machines as unhealthy, never as No changes.
    let (plan, code) = org.plan_json("specs/roll.yaml", &[]);
    assert_eq!(code, 2);
    for t in ["t3", "t5"] {
        let c = plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["address"] == format!("tenant.{t}.machine[0]"))
            .unwrap();
        assert_eq!(c["action"], "update", "{c}");
        let reasons = c["reasons"].to_string();
        assert!(
            reasons.contains("unhealthy") && reasons.contains("--rollback"),
            "{c}"
        );
    }
    // The same apply again refuses, and sends no write but the fleet lock's lease
    // (taken and handed back).
    let before = org.counters().mutating;
    let out = org.apply("specs/roll.yaml", &flags);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(
        t.contains("the rollout to registry.fly.io/roll:2.0-broken stopped after a failed wave")
            && t.contains("--resume")
            && t.contains("--rollback"),
        "{t}"
    );
    assert_eq!(
        org.counters().mutating,
        before + 2,
        "a refused apply writes nothing but the lock's lease"
    );
    // --rollback: the canaries return to 1.0; nobody else changes.
    let out = org.apply_ok("specs/roll.yaml", &["--rollback"]);
    for t in ["t1", "t2", "t3", "t4", "t5", "t6"] {
        assert_eq!(image_of(&org, t), "1.0", "{}", text(&out));
    }
    for t in ["t3", "t5"] {
        let m = roll_machine(&org, t);
        assert_eq!(m["state"], "started");
        assert_eq!(
            m["config"]["metadata"]["flotilla_rollout_state"],
            "rolled_back"
        );
    }
    // The rolled-back change is not taken up again without --resume.
    let out = org.apply("specs/roll.yaml", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("was rolled back"), "{}", text(&out));
    // A fixed image, --resume: the canaries first, then the next waves, two at a time.
    org.set_faults("none");
    org.write("specs/roll.yaml", &rollout_fleet("2.1"));
    let out = org.apply_ok(
        "specs/roll.yaml",
        &[
            "--resume",
            "--canary-tenants",
            "t5",
            "--wave-size",
            "2",
            "--journal",
            "journal/resume.jsonl",
        ],
    );
    for t in ["t1", "t2", "t3", "t4", "t5", "t6"] {
        assert_eq!(image_of(&org, t), "2.1", "{}", text(&out));
        let md = &roll_machine(&org, t)["config"]["metadata"];
        assert_eq!(md["flotilla_rollout_state"], "updated");
        assert_eq!(md["flotilla_rollout_from"], "registry.fly.io/roll:1.0");
    }
    let wave =
        |t: &str| roll_machine(&org, t)["config"]["metadata"]["flotilla_rollout_wave"].clone();
    assert_eq!(wave("t5"), "1", "the chosen canary leads");
    assert_eq!((wave("t1"), wave("t2")), ("2".into(), "2".into()));
    assert_eq!(
        (wave("t3"), wave("t4"), wave("t6")),
        ("3".into(), "3".into(), "4".into())
    );
    let (plan, code) = org.plan_json("specs/roll.yaml", &[]);
    assert_eq!(
        code,
        0,
        "the rollout record is not a diff: {:?}",
        changes(&plan)
    );
}

/// Thirty tenants; `t7` carries the metadata label `ring=early`.
fn large_fleet(image: &str) -> String {
    format!(
        r#"
version: 1
org: fleet
naming: {{ app: "big-{{{{ tenant.name }}}}" }}
defaults:
  image: registry.fly.io/big:{image}
  region: iad
  memory: 256mb
  metadata: {{ ring: "{{{{ 'early' if tenant.name == 't7' else 'late' }}}}" }}
tenants:
  - generate: {{ count: 30, name: "t{{{{ i }}}}" }}
"#
    )
}

/// The rollout gates a journal records as done.
fn gates_done(org: &Org, rel: &str) -> usize {
    journal_ops(org, rel)
        .iter()
        .filter(|l| l["action"] == "rollout gate" && l["outcome"] == "ok")
        .count()
}

#[test]
fn a_large_fleet_rolls_out_in_default_waves_and_all_at_once_only_when_asked() {
    let org = Org::new(SCALE);
    org.write("specs/big.yaml", &large_fleet("1.0"));
    org.apply_ok("specs/big.yaml", &[]);
    // No flags: waves of 25 tenants (25 + 5), one gate between them.
    org.write("specs/big.yaml", &large_fleet("2.0"));
    org.apply_ok("specs/big.yaml", &["--journal", "journal/default.jsonl"]);
    assert_eq!(gates_done(&org, "journal/default.jsonl"), 1);
    // --wave-size all: one wave, no gate.
    org.write("specs/big.yaml", &large_fleet("3.0"));
    org.apply_ok(
        "specs/big.yaml",
        &["--wave-size", "all", "--journal", "journal/all.jsonl"],
    );
    assert_eq!(gates_done(&org, "journal/all.jsonl"), 0);
    // A canary chosen by label leads the waves.
    org.write("specs/big.yaml", &large_fleet("4.0"));
    org.apply_ok("specs/big.yaml", &["--canary-label", "ring=early"]);
    let wave = |t: &str| {
        org.machines(&format!("big-{t}"))[0]["config"]["metadata"]["flotilla_rollout_wave"].clone()
    };
    assert_eq!(wave("t7"), "1");
    assert_eq!(
        (wave("t1"), wave("t26"), wave("t30")),
        ("2".into(), "2".into(), "3".into())
    );
    // A label nobody carries is an error, before anything is sent.
    let out = org.apply("specs/big.yaml", &["--canary-label", "ring=none"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("selects no tenant"), "{}", text(&out));
}

#[test]
fn a_tenant_apply_reads_only_that_tenants_secrets() {
    let mut org = Org::new(SCALE);
    let spec = r#"
version: 1
org: fleet
naming: { app: "sec-{{ tenant.name }}" }
defaults:
  image: registry.fly.io/sec:1.0
  region: iad
  memory: 256mb
tenants:
  - { name: a, secrets: { TOKEN: { env: A_TOKEN } } }
  - { name: b, secrets: { TOKEN: { env: B_TOKEN } } }
"#;
    org.write("specs/sec.yaml", spec);
    org.env
        .push(("A_TOKEN".into(), "fake-a-token-value-0007".into()));
    // Only tenant a's secret is set: the whole fleet cannot be applied …
    let out = org.apply("specs/sec.yaml", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("B_TOKEN"), "{}", text(&out));
    // … but tenant a can, and a plan for it sees its value.
    org.apply_ok("specs/sec.yaml", &["--tenant", "a"]);
    assert_eq!(org.apps("fleet"), ["sec-a"]);
    let (plan, code) = org.plan_json("specs/sec.yaml", &["--tenant", "a"]);
    assert_eq!(code, 0, "{:?}", changes(&plan));
}
