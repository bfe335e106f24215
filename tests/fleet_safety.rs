//! Fleet safety against the simulator over loopback, driving the real binary: the fleet
//! lock (concurrent applies, a killed holder, `unlock`, fleets side by side), stale saved
//! plans applied at once, lost responses on updates, leases and destroys, fleets whose
//! naming collides, and interrupted removals.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reconcile_common;

use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reconcile_common::{Org, text};
use serde_json::{Value, json};

const SCALE: f64 = 40.0;
const SENTINEL: &str = "flotilla-lock-my-jarvis-jarvis";

/// A running `flotilla` child whose output goes to files (no pipe can fill up).
struct Run {
    child: Child,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

struct Done {
    code: Option<i32>,
    text: String,
}

impl Run {
    fn spawn(org: &Org, name: &str, mut cmd: std::process::Command) -> Run {
        let out = org.path(&format!("{name}.out"));
        let err = org.path(&format!("{name}.err"));
        let child = cmd
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
            .spawn()
            .unwrap();
        Run { child, out, err }
    }

    /// Waits at most `limit` (a safety bound: the child is killed and the test fails).
    fn wait(mut self, limit: Duration) -> Done {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let text = format!(
                    "{}\n{}",
                    std::fs::read_to_string(&self.out).unwrap_or_default(),
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
                assert!(!text.contains("panicked"), "{text}");
                return Done {
                    code: status.code(),
                    text,
                };
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("a flotilla run did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the child is still running.
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the child (if still running); returns what it printed.
    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        format!(
            "{}\n{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }
}

fn apply_cmd(org: &Org, spec: &str, extra: &[&str], host: &str) -> std::process::Command {
    let mut args = vec![spec, "--yes"];
    args.extend_from_slice(extra);
    let mut c = org.cmd("apply", &args);
    c.env("HOSTNAME", host)
        .env("USER", "ci")
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_REPOSITORY", "acme/fleet")
        .env("GITHUB_RUN_ID", format!("run-{host}"));
    c
}

/// The live (not destroyed) Machines of an app.
fn live_machines(org: &Org, app: &str) -> Vec<Value> {
    org.machines(app)
        .into_iter()
        .filter(|m| m["state"] != "destroyed" && m["state"] != "destroying")
        .collect()
}

/// Every app of the org holds one Machine per slot and one volume per name.
fn assert_one_of_everything(org: &Org) {
    let apps = org.apps("my-jarvis");
    assert!(!apps.is_empty());
    for app in apps {
        let mut slots: HashMap<String, usize> = HashMap::new();
        for m in live_machines(org, &app) {
            let md = &m["config"]["metadata"];
            let slot = format!("{}[{}]", md["flotilla_tenant"], md["flotilla_index"]);
            *slots.entry(slot).or_default() += 1;
        }
        assert!(slots.values().all(|n| *n == 1), "{app}: {slots:?}");
        let mut names: HashMap<String, usize> = HashMap::new();
        for v in org.volumes(&app) {
            *names
                .entry(v["name"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        assert!(names.values().all(|n| *n == 1), "{app}: {names:?}");
    }
}

/// The fleet's sentinel Machine ID, once the first apply made it.
fn sentinel_machine(org: &Org, app: &str) -> Option<String> {
    let (s, v) = org.api("GET", &format!("/apps/{app}/machines"), None);
    if s != 200 {
        return None;
    }
    v.as_array()?
        .iter()
        .find(|m| m["config"]["metadata"]["flotilla_lock"].is_string())
        .and_then(|m| m["id"].as_str().map(str::to_string))
}

/// The sentinel's lease description, when someone holds it.
fn lease_description(org: &Org, app: &str) -> Option<String> {
    let id = sentinel_machine(org, app)?;
    let (s, v) = org.api("GET", &format!("/apps/{app}/machines/{id}/lease"), None);
    (s == 200).then(|| v["data"]["description"].as_str().unwrap_or("").to_string())
}

/// Waits (bounded) until the fleet lock is held. It reads the simulator's own view:
/// polling the API this often would take the rate-limit tokens the apply needs.
fn wait_until_locked(org: &Org, app: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let held = org.sim.control().machines(app).and_then(|a| {
            a.machines
                .into_iter()
                .find(|m| m.metadata.contains_key("flotilla_lock"))
                .and_then(|m| m.lease_description)
        });
        if let Some(d) = held {
            return d;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("the fleet lock was never taken");
}

#[test]
fn three_concurrent_applies_make_one_machine_and_volume_per_slot() {
    let org = Org::new(SCALE);
    let runs: Vec<Run> = ["a", "b", "c"]
        .iter()
        .map(|h| {
            Run::spawn(
                &org,
                h,
                apply_cmd(&org, "specs/jarvis.yaml", &[], &format!("runner-{h}")),
            )
        })
        .collect();
    let done: Vec<Done> = runs
        .into_iter()
        .map(|r| r.wait(Duration::from_secs(240)))
        .collect();
    let mut creators = 0;
    for d in &done {
        assert_eq!(d.code, Some(0), "{}", d.text);
        if d.text.contains("Apply complete: 140 created") {
            creators += 1;
        } else {
            assert!(d.text.contains("No changes."), "{}", d.text);
        }
        if let Some(line) = d.text.lines().find(|l| l.contains("Waiting for the lock")) {
            assert!(
                line.contains("held by flotilla apply by ci@runner-")
                    && line.contains("https://github.com/acme/fleet/actions/runs/run-runner-")
                    && line.contains(" since "),
                "the waiting run names the holder: {line}"
            );
        }
    }
    assert_eq!(creators, 1, "exactly one apply made the fleet");
    assert_one_of_everything(&org);
    assert_eq!(org.apps("my-jarvis").len(), 14);
    // A final apply converges with zero writes but the lock's own (take, release).
    let before = org.counters();
    let out = org.apply_ok("specs/jarvis.yaml", &[]);
    assert!(text(&out).contains("No changes."), "{}", text(&out));
    let after = org.counters();
    let lease_writes = 2;
    assert_eq!(after.mutating - before.mutating, lease_writes, "{after:?}");
    assert!(
        lease_description(&org, SENTINEL).is_none(),
        "the lock is handed back"
    );
    // The sentinel is one stopped Machine that never started.
    let ms = org.machines(SENTINEL);
    assert_eq!(ms.len(), 1, "{ms:#?}");
    assert_ne!(ms[0]["state"], "started");
}

#[test]
fn a_killed_holder_blocks_until_its_lock_expires_or_is_cleared() {
    // A slow clock, so the first apply is still running when it is killed.
    let org = Org::new(4.0);
    let ttl = ["--lock-ttl", "20"];
    let holder = Run::spawn(
        &org,
        "holder",
        apply_cmd(&org, "specs/jarvis.yaml", &ttl, "runner-a"),
    );
    let description = wait_until_locked(&org, SENTINEL);
    holder.kill();
    assert!(description.contains("ci@runner-a"), "{description}");
    // Refused at once, naming the holder, its CI run and since when.
    let refused = Run::spawn(
        &org,
        "refused",
        apply_cmd(
            &org,
            "specs/jarvis.yaml",
            &["--lock-timeout", "0"],
            "runner-b",
        ),
    )
    .wait(Duration::from_secs(60));
    assert_eq!(refused.code, Some(1), "{}", refused.text);
    for want in [
        "fleet `jarvis` in org my-jarvis is locked by another apply",
        "flotilla apply by ci@runner-a (https://github.com/acme/fleet/actions/runs/run-runner-a) since ",
        "flotilla unlock SPEC",
        "Nothing was changed.",
    ] {
        assert!(refused.text.contains(want), "{want}: {}", refused.text);
    }
    // Another apply waits, says for whom, and proceeds once the lease has expired.
    let waiter = Run::spawn(
        &org,
        "waiter",
        apply_cmd(&org, "specs/jarvis.yaml", &ttl, "runner-c"),
    )
    .wait(Duration::from_secs(240));
    assert_eq!(waiter.code, Some(0), "{}", waiter.text);
    assert!(
        waiter
            .text
            .contains("Waiting for the lock of fleet `jarvis` (up to 300 s): held by flotilla apply by ci@runner-a"),
        "{}",
        waiter.text
    );
    assert!(waiter.text.contains("Apply complete:"), "{}", waiter.text);
    assert_one_of_everything(&org);
    let (plan, code) = org.plan_json("specs/jarvis.yaml", &[]);
    assert_eq!(code, 0, "converged: {}", plan["summary"]);
}

#[test]
fn unlock_clears_a_lock_whose_holder_is_gone() {
    let org = Org::new(4.0);
    let out = org.run("unlock", &["specs/jarvis.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Fleet `jarvis` in org my-jarvis has no lock yet"),
        "{}",
        text(&out)
    );
    let holder = Run::spawn(
        &org,
        "holder",
        apply_cmd(
            &org,
            "specs/jarvis.yaml",
            &["--lock-ttl", "3600"],
            "runner-a",
        ),
    );
    wait_until_locked(&org, SENTINEL);
    holder.kill();
    let out = org.run("unlock", &["specs/jarvis.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(
            "Cleared the lock of fleet `jarvis` in org my-jarvis (app flotilla-lock-my-jarvis-jarvis); it was held by flotilla apply by ci@runner-a"
        ),
        "{}",
        text(&out)
    );
    // Without waiting for the hour-long lease: the next apply takes the lock at once.
    let next = Run::spawn(
        &org,
        "next",
        apply_cmd(
            &org,
            "specs/jarvis.yaml",
            &["--lock-timeout", "0"],
            "runner-b",
        ),
    )
    .wait(Duration::from_secs(240));
    assert_eq!(next.code, Some(0), "{}", next.text);
    let out = org.run("unlock", &["specs/jarvis.yaml"]);
    assert!(
        text(&out).contains("Fleet `jarvis` in org my-jarvis is not locked"),
        "{}",
        text(&out)
    );
}

/// A copy of jarvis as another fleet, with its own app names.
fn second_fleet(org: &Org, fleet: &str, app_prefix: &str) -> String {
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml")).unwrap();
    let spec = spec
        .replace("fleet: jarvis", &format!("fleet: {fleet}"))
        .replace(
            "app: \"my-jarvis-{{ tenant.name }}\"",
            &format!("app: \"{app_prefix}{{{{ tenant.name }}}}\""),
        );
    let rel = format!("specs/{fleet}.yaml");
    org.write(&rel, &spec);
    rel
}

#[test]
fn two_fleets_in_one_org_apply_concurrently_without_blocking() {
    let org = Org::new(SCALE);
    let other = second_fleet(&org, "other", "other-");
    // Each fleet's lock is held by a stale lease of an hour: neither fleet's apply may
    // wait for the other's.
    let a = Run::spawn(
        &org,
        "a",
        apply_cmd(
            &org,
            "specs/jarvis.yaml",
            &["--lock-timeout", "0"],
            "runner-a",
        ),
    );
    let b = Run::spawn(
        &org,
        "b",
        apply_cmd(&org, &other, &["--lock-timeout", "0"], "runner-b"),
    );
    for d in [
        a.wait(Duration::from_secs(240)),
        b.wait(Duration::from_secs(240)),
    ] {
        assert_eq!(d.code, Some(0), "{}", d.text);
        assert!(d.text.contains("Apply complete: 140 created"), "{}", d.text);
        assert!(!d.text.contains("Waiting for the lock"), "{}", d.text);
    }
    let apps = org.all_apps("my-jarvis");
    assert!(apps.contains(&SENTINEL.to_string()), "{apps:?}");
    assert!(
        apps.contains(&"flotilla-lock-my-jarvis-other".to_string()),
        "{apps:?}"
    );
    assert_one_of_everything(&org);
}

#[test]
fn saved_plans_of_different_images_applied_at_once_one_wins_the_other_is_stale() {
    let org = Org::new(SCALE);
    org.apply_ok("specs/jarvis.yaml", &[]);
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml")).unwrap();
    for v in ["1.4.44", "1.4.45"] {
        org.write(
            &format!("specs/jarvis-{v}.yaml"),
            &spec.replace("my-jarvis:1.4.43", &format!("my-jarvis:{v}")),
        );
        let out = org.run(
            "plan",
            &[
                &format!("specs/jarvis-{v}.yaml"),
                "--out",
                &format!("plans/{v}.json"),
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let runs: Vec<Run> = ["1.4.44", "1.4.45"]
        .iter()
        .map(|v| {
            Run::spawn(
                &org,
                v,
                apply_cmd(
                    &org,
                    &format!("plans/{v}.json"),
                    &[],
                    &format!("runner-{v}"),
                ),
            )
        })
        .collect();
    let done: Vec<Done> = runs
        .into_iter()
        .map(|r| r.wait(Duration::from_secs(240)))
        .collect();
    let ok: Vec<&Done> = done.iter().filter(|d| d.code == Some(0)).collect();
    assert_eq!(
        ok.len(),
        1,
        "exactly one wins: {:?}",
        done.iter().map(|d| &d.text).collect::<Vec<_>>()
    );
    let lost = done.iter().find(|d| d.code != Some(0)).unwrap();
    assert!(lost.text.contains("plan is stale"), "{}", lost.text);
    // The org runs the winner's image everywhere.
    let winner = if ok[0].text.contains("1.4.44") {
        "1.4.44"
    } else {
        "1.4.45"
    };
    for app in org.apps("my-jarvis") {
        for m in live_machines(&org, &app) {
            assert_eq!(
                m["config"]["image"],
                json!(format!("registry.fly.io/my-jarvis:{winner}")),
                "{app}"
            );
        }
    }
}

#[test]
fn spec_applies_of_different_images_at_once_run_one_after_the_other() {
    let org = Org::new(SCALE);
    org.apply_ok("specs/jarvis.yaml", &[]);
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml")).unwrap();
    for v in ["1.4.44", "1.4.45"] {
        org.write(
            &format!("specs/jarvis-{v}.yaml"),
            &spec.replace("my-jarvis:1.4.43", &format!("my-jarvis:{v}")),
        );
    }
    let runs: Vec<(String, Run)> = ["1.4.44", "1.4.45"]
        .iter()
        .map(|v| {
            let spec = format!("specs/jarvis-{v}.yaml");
            (
                v.to_string(),
                Run::spawn(&org, v, apply_cmd(&org, &spec, &[], &format!("runner-{v}"))),
            )
        })
        .collect();
    let done: Vec<(String, Done)> = runs
        .into_iter()
        .map(|(v, r)| (v, r.wait(Duration::from_secs(240))))
        .collect();
    // Both succeed, and the second planned from the first's result: its plan shows the
    // first's image being replaced — no change is lost silently.
    for (_, d) in &done {
        assert_eq!(d.code, Some(0), "{}", d.text);
        assert!(d.text.contains("14 updated"), "{}", d.text);
    }
    let from_other = done.iter().filter(|(v, d)| {
        let other = if v == "1.4.44" { "1.4.45" } else { "1.4.44" };
        d.text.contains(&format!(
            "my-jarvis:{other}\" → \"registry.fly.io/my-jarvis:{v}"
        ))
    });
    assert_eq!(
        from_other.count(),
        1,
        "{:?}",
        done.iter().map(|(_, d)| &d.text).collect::<Vec<_>>()
    );
}

#[test]
fn lost_responses_on_updates_leases_and_destroys_are_confirmed_not_failed() {
    let org = Org::new(SCALE);
    org.apply_ok("specs/jarvis.yaml", &[]);
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml")).unwrap();
    org.write(
        "specs/jarvis-next.yaml",
        &spec.replace("my-jarvis:1.4.43", "my-jarvis:1.4.44"),
    );
    org.set_faults("lost_response=0.5");
    let out = org.apply("specs/jarvis-next.yaml", &["--quiet"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("Apply complete: 0 created, 14 updated"), "{t}");
    // Destroys: two tenants leave the fleet.
    let fewer = spec
        .replace("my-jarvis:1.4.43", "my-jarvis:1.4.44")
        .replace("  - { name: dev, tier: dev }\n", "")
        .replace("  - { name: staging, tier: dev }\n", "");
    org.write("specs/jarvis-fewer.yaml", &fewer);
    let out = org.apply(
        "specs/jarvis-fewer.yaml",
        &["--quiet", "--allow-destroy", "--allow-data-loss"],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("0 failed, 0 not done"), "{t}");
    let c = org.counters();
    assert!(
        c.faults_by_kind.get("lost_response").copied().unwrap_or(0) > 20,
        "responses were lost: {:?}",
        c.faults_by_kind
    );
    org.set_faults("none");
    assert_eq!(org.apps("my-jarvis").len(), 12);
    let (plan, code) = org.plan_json("specs/jarvis-fewer.yaml", &[]);
    assert_eq!(code, 0, "every change was confirmed: {}", plan["summary"]);
    assert_one_of_everything(&org);
    for app in org.apps("my-jarvis") {
        for m in live_machines(&org, &app) {
            assert_eq!(m["config"]["image"], "registry.fly.io/my-jarvis:1.4.44");
        }
    }
}

#[test]
fn an_app_of_another_fleet_is_never_taken_over_nor_deleted_with_its_machines() {
    let org = Org::new(SCALE);
    org.apply_ok("specs/jarvis.yaml", &[]);
    // A second fleet whose naming produces the same app names.
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml")).unwrap();
    org.write(
        "specs/twin.yaml",
        &spec
            .replace("fleet: jarvis", "fleet: twin")
            .replace("my-jarvis:1.4.43", "my-jarvis:9.9.9"),
    );
    let out = org.run("plan", &["specs/twin.yaml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("tenant.alice.app: app my-jarvis-alice belongs to fleet `jarvis`"),
        "{t}"
    );
    let before = org.counters().by_method.get("POST").copied().unwrap_or(0);
    let out = org.apply("specs/twin.yaml", &[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("belongs to fleet `jarvis`"), "{t}");
    assert!(!t.contains("Apply complete"), "{t}");
    // Only the twin fleet's own lock was written to.
    let posts = org.counters().by_method.get("POST").copied().unwrap_or(0) - before;
    assert!(posts <= 4, "{posts} POSTs");
    let (plan, code) = org.plan_json("specs/jarvis.yaml", &[]);
    assert_eq!(code, 0, "jarvis is untouched: {}", plan["summary"]);

    // Another fleet's Machine inside a jarvis app: removing that tenant is refused.
    let (s, m) = org.api(
        "POST",
        "/apps/my-jarvis-dev/machines",
        Some(json!({
            "name": "twin-guest",
            "config": {
                "image": "registry.fly.io/twin:1",
                "metadata": {"flotilla_managed": "true", "flotilla_fleet": "twin", "flotilla_index": "0"}
            }
        })),
    );
    assert_eq!(s, 200, "{m}");
    let fewer = spec.replace("  - { name: dev, tier: dev }\n", "");
    org.write("specs/jarvis-fewer.yaml", &fewer);
    let out = org.apply(
        "specs/jarvis-fewer.yaml",
        &["--allow-destroy", "--allow-data-loss"],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("app my-jarvis-dev also holds Machines of fleet `twin`"),
        "{t}"
    );
    let guest = m["id"].as_str().unwrap();
    assert!(
        live_machines(&org, "my-jarvis-dev")
            .iter()
            .any(|x| x["id"] == guest),
        "the other fleet's Machine survives"
    );
}

#[test]
fn a_removal_killed_halfway_shows_in_the_next_plan_and_the_next_apply_finishes_it() {
    // A slow clock: the volumes detach seconds after their Machines are gone.
    let org = Org::new(4.0);
    org.apply_ok("specs/jarvis.yaml", &[]);
    let spec = std::fs::read_to_string(org.path("specs/jarvis.yaml")).unwrap();
    let fewer = spec
        .replace("  - { name: dev, tier: dev }\n", "")
        .replace("  - { name: staging, tier: dev }\n", "");
    org.write("specs/jarvis-fewer.yaml", &fewer);
    let flags = ["--allow-destroy", "--allow-data-loss", "--lock-ttl", "20"];
    let mut removal = Run::spawn(
        &org,
        "removal",
        apply_cmd(&org, "specs/jarvis-fewer.yaml", &flags, "runner-a"),
    );
    // Kill it once the Machines are gone, while the volumes and the app are not. The
    // watch reads the simulator's own view: polling the API this often would take the
    // rate-limit tokens the apply needs (it waits out Fly's whole-second Retry-After).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut halfway = false;
    while Instant::now() < deadline && removal.running() {
        let gone = org
            .sim
            .control()
            .machines("my-jarvis-dev")
            .is_some_and(|a| {
                a.machines
                    .iter()
                    .all(|m| m.state == "destroyed" || m.state == "destroying")
            });
        if gone {
            halfway = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let early = removal.kill();
    assert!(halfway, "the removal never reached its Machines:\n{early}");
    assert!(
        org.apps("my-jarvis").contains(&"my-jarvis-dev".to_string()),
        "the app outlived the killed apply"
    );
    assert!(!org.volumes("my-jarvis-dev").is_empty());
    // The next plan shows what is left of it.
    let (plan, code) = org.plan_json("specs/jarvis-fewer.yaml", &[]);
    assert_eq!(code, 2, "{}", plan["summary"]);
    let deleting: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "delete")
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    for want in ["tenant.dev.app", "tenant.dev.volume.workspace[0]"] {
        assert!(deleting.contains(&want), "{want}: {deleting:?}");
    }
    // The next apply finishes the removal (after the killed apply's lock expired).
    let again = Run::spawn(
        &org,
        "again",
        apply_cmd(&org, "specs/jarvis-fewer.yaml", &flags, "runner-b"),
    )
    .wait(Duration::from_secs(240));
    assert_eq!(again.code, Some(0), "{}", again.text);
    let apps = org.apps("my-jarvis");
    assert_eq!(apps.len(), 12, "{apps:?}");
    let (plan, code) = org.plan_json("specs/jarvis-fewer.yaml", &[]);
    assert_eq!(code, 0, "{}", plan["summary"]);
    // No removal marks are left on the sentinel.
    let ms = org.machines(SENTINEL);
    let md = ms[0]["config"]["metadata"].as_object().unwrap();
    assert!(
        md.keys().all(|k| !k.starts_with("flotilla_removing_")),
        "{md:?}"
    );
}

/// Three tenants, each with a secret of its own.
const THREE_TENANTS: &str = r#"
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
  - { name: c, secrets: { TOKEN: { env: C_TOKEN } } }
"#;

#[test]
fn a_tenant_removed_from_the_spec_can_be_planned_and_removed_alone() {
    let mut org = Org::new(SCALE);
    org.write("specs/sec.yaml", THREE_TENANTS);
    for (k, v) in [("A_TOKEN", "a"), ("B_TOKEN", "b"), ("C_TOKEN", "c")] {
        org.env
            .push((k.into(), format!("fake-{v}-token-value-0008")));
    }
    org.apply_ok("specs/sec.yaml", &[]);
    // b leaves the spec and a gets a new image; no secret value is set any more.
    let fewer = THREE_TENANTS
        .replace(
            "  - { name: b, secrets: { TOKEN: { env: B_TOKEN } } }\n",
            "",
        )
        .replace("sec:1.0", "sec:1.1");
    org.write("specs/sec.yaml", &fewer);
    org.env.retain(|(k, _)| !k.ends_with("_TOKEN"));
    let (plan, code) = org.plan_json("specs/sec.yaml", &["--tenant", "b"]);
    assert_eq!(code, 2, "{plan}");
    // The fleet lock's sentinel exists now, and the plan's costs include it.
    let lock = &plan["cost"]["fleet_lock"];
    assert_eq!(lock["app"], "flotilla-lock-fleet-default", "{lock}");
    assert_eq!(lock["exists"], true, "{lock}");
    assert_eq!(lock["monthly_usd"].to_string(), "0.0008", "{lock}");
    let planned: Vec<(String, String)> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "noop")
        .map(|c| (c["address"].to_string(), c["action"].to_string()))
        .collect();
    assert!(!planned.is_empty());
    for (address, action) in &planned {
        assert!(address.starts_with("\"tenant.b."), "{planned:?}");
        assert_eq!(action, "\"delete\"", "{planned:?}");
    }
    // Without --allow-destroy the removal is refused, as any destroy.
    let out = org.apply("specs/sec.yaml", &["--tenant", "b"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("--allow-destroy"), "{t}");
    assert_eq!(org.apps("fleet").len(), 3);
    // With it, only b goes, and no secret value was needed for it.
    let out = org.apply_ok("specs/sec.yaml", &["--tenant", "b", "--allow-destroy"]);
    assert!(text(&out).contains("deleted"), "{}", text(&out));
    assert_eq!(org.apps("fleet"), ["sec-a", "sec-c"]);
    for app in ["sec-a", "sec-c"] {
        for m in live_machines(&org, app) {
            assert_eq!(m["config"]["image"], "registry.fly.io/sec:1.0", "{app}");
        }
    }
    // A name neither in the spec nor in the org is still an error with a suggestion.
    let out = org.run("plan", &["specs/sec.yaml", "--tenant", "cc"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("--tenant cc: no such tenant"), "{t}");
    assert!(t.contains("`c`"), "{t}");
    let out = org.apply("specs/sec.yaml", &["--tenant", "b", "--allow-destroy"]);
    assert_eq!(out.status.code(), Some(1), "b is gone now: {}", text(&out));
    assert!(
        text(&out).contains("--tenant b: no such tenant"),
        "{}",
        text(&out)
    );
}

/// Two tenants with a volume and a secret each.
const TWO_WITH_VOLUMES: &str = r#"
version: 1
org: fleet
naming: { app: "vol-{{ tenant.name }}" }
defaults:
  image: registry.fly.io/vol:1.0
  region: iad
  memory: 256mb
  volume: { name: data, size_gb: 1, mount: /data }
tenants:
  - { name: a, secrets: { TOKEN: { env: A_TOKEN } } }
  - { name: b, secrets: { TOKEN: { env: B_TOKEN } } }
"#;

/// The plan's actionable changes: address → (action, reasons).
fn planned(plan: &Value) -> HashMap<String, (String, Vec<String>)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "noop")
        .map(|c| {
            let reasons = c["reasons"]
                .as_array()
                .map(|r| r.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (
                c["address"].as_str().unwrap().to_string(),
                (c["action"].as_str().unwrap().to_string(), reasons),
            )
        })
        .collect()
}

#[test]
fn a_target_plans_one_resource_with_what_it_needs_and_saved_plans_keep_it() {
    let mut org = Org::new(SCALE);
    org.write("specs/vol.yaml", TWO_WITH_VOLUMES);
    for (k, v) in [("A_TOKEN", "a"), ("B_TOKEN", "b")] {
        org.env
            .push((k.into(), format!("fake-{v}-token-value-0009")));
    }
    let machine = "tenant.a.machine[0]";
    let (plan, code) = org.plan_json("specs/vol.yaml", &["--target", machine]);
    assert_eq!(code, 2, "{plan}");
    let got = planned(&plan);
    let needed = [
        "tenant.a.app",
        "tenant.a.volume.data[0]",
        "tenant.a.secret.TOKEN",
    ];
    assert_eq!(got.len(), 1 + needed.len(), "{got:?}");
    assert_eq!(got[machine].0, "create");
    for n in needed {
        let (action, reasons) = &got[n];
        assert_eq!(action, "create", "{n}");
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with("included because ") && r.ends_with(" needs it")),
            "{n}: {reasons:?}"
        );
    }
    assert!(
        got["tenant.a.volume.data[0]"]
            .1
            .contains(&format!("included because {machine} needs it"))
    );
    // The text plan says so too.
    let out = org.run("plan", &["specs/vol.yaml", "--target", machine]);
    assert!(
        text(&out).contains("included because tenant.a.machine[0] needs it"),
        "{}",
        text(&out)
    );
    // An unknown address names the closest known one.
    let out = org.run(
        "plan",
        &["specs/vol.yaml", "--target", "tenant.a.machine[1]"],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("--target tenant.a.machine[1]: no such resource"),
        "{t}"
    );
    assert!(t.contains("did you mean `tenant.a.machine[0]`?"), "{t}");
    let out = org.run("plan", &["specs/vol.yaml", "--target", "tenant..a"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // A saved plan records its targets, and applying it creates only those.
    let out = org.run(
        "plan",
        &[
            "specs/vol.yaml",
            "--target",
            machine,
            "--out",
            "plans/a.json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(org.path("plans/a.json")).unwrap()).unwrap();
    assert_eq!(saved["targets"], json!([machine]));
    let out = org.apply_ok("plans/a.json", &[]);
    assert!(text(&out).contains("4 created"), "{}", text(&out));
    assert_eq!(org.apps("fleet"), ["vol-a"]);
    assert_eq!(live_machines(&org, "vol-a").len(), 1);
    // The whole fleet, then b leaves the spec: targeting its app is a destroy like any.
    org.apply_ok("specs/vol.yaml", &[]);
    let fewer = TWO_WITH_VOLUMES
        .replace(
            "  - { name: b, secrets: { TOKEN: { env: B_TOKEN } } }\n",
            "",
        )
        .replace("vol:1.0", "vol:1.1");
    org.write("specs/vol.yaml", &fewer);
    let out = org.apply("specs/vol.yaml", &["--target", "tenant.b.app"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--allow-destroy"), "{}", text(&out));
    let (plan, _) = org.plan_json("specs/vol.yaml", &["--target", "tenant.b.app"]);
    let got = planned(&plan);
    assert!(
        got.values().all(|(a, _)| a == "delete") && got.keys().all(|k| k.starts_with("tenant.b.")),
        "{got:?}"
    );
    assert!(
        got["tenant.b.machine[0]"]
            .1
            .contains(&"included because deleting tenant.b.app deletes it".to_string())
    );
    org.apply_ok(
        "specs/vol.yaml",
        &[
            "--target",
            "tenant.b.app",
            "--allow-destroy",
            "--allow-data-loss",
        ],
    );
    assert_eq!(org.apps("fleet"), ["vol-a"]);
    // tenant a's image change was not targeted.
    for m in live_machines(&org, "vol-a") {
        assert_eq!(m["config"]["image"], "registry.fly.io/vol:1.0");
    }
}

#[test]
fn an_app_of_another_fleet_without_machines_is_known_from_its_sentinel() {
    let org = Org::new(SCALE);
    let one = r#"
version: 1
org: fleet
fleet: one
naming: { app: "own-{{ tenant.name }}" }
defaults:
  image: registry.fly.io/own:1.0
  region: iad
  memory: 256mb
tenants:
  - { name: a }
"#;
    org.write("specs/one.yaml", one);
    org.write("specs/two.yaml", &one.replace("fleet: one", "fleet: two"));
    // Fleet one makes only the app: it holds no Machine yet.
    org.apply_ok("specs/one.yaml", &["--target", "tenant.a.app"]);
    assert_eq!(org.apps("fleet"), ["own-a"]);
    assert!(live_machines(&org, "own-a").is_empty());
    let sentinel = &org.machines("flotilla-lock-fleet-one")[0];
    let md = sentinel["config"]["metadata"].as_object().unwrap();
    let records: Vec<&String> = md
        .keys()
        .filter(|k| k.starts_with("flotilla_owns_"))
        .collect();
    assert_eq!(records.len(), 1, "{md:?}");
    // Fleet two, whose naming produces the same name, is refused, naming the owner.
    let out = org.run("plan", &["specs/two.yaml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("tenant.a.app: app own-a belongs to fleet `one` (recorded on its lock sentinel"),
        "{t}"
    );
    let out = org.apply("specs/two.yaml", &["--allow-destroy", "--allow-data-loss"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("belongs to fleet `one`"), "{t}");
    assert!(live_machines(&org, "own-a").is_empty(), "no takeover");
    assert_eq!(org.apps("fleet"), ["own-a"], "never a delete");
    // Fleet one itself carries on into its own app.
    org.apply_ok("specs/one.yaml", &[]);
    assert_eq!(live_machines(&org, "own-a").len(), 1);
    let (plan, code) = org.plan_json("specs/one.yaml", &[]);
    assert_eq!(code, 0, "{}", plan["summary"]);
}

#[test]
fn a_spec_in_a_removed_region_is_refused_by_live_plans_and_applies_before_any_request() {
    let org = Org::new(SCALE);
    let spec = r#"
version: 1
org: fleet
naming: { app: "gone-{{ tenant.name }}" }
defaults:
  image: registry.fly.io/gone:1.0
  region: iad
  memory: 256mb
tenants:
  - { name: a }
  - { name: b, region: sea }
  - name: c
    region: yul
    volume: { name: data, size_gb: 1, mount: /data }
"#;
    org.write("specs/gone.yaml", spec);
    let out = org.run("plan", &["specs/gone.yaml"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("region: region `sea` (Seattle) was removed by Fly on 2025-10-16"),
        "{t}"
    );
    assert!(t.contains("tenant.b.machine[0]"), "{t}");
    assert!(
        t.contains("region: region `yul` (Montreal) was removed"),
        "{t}"
    );
    assert!(t.contains("tenant.c.volume.data[0]"), "{t}");
    assert!(t.contains("hint: choose a current region (e.g. "), "{t}");
    assert_eq!(org.counters().requests, 0, "refused before observing");
    for extra in [&[][..], &["--tenant", "b"][..]] {
        let out = org.apply("specs/gone.yaml", extra);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{t}");
        assert!(t.contains("region `sea` (Seattle) was removed"), "{t}");
        assert!(t.contains("Nothing was changed"), "{t}");
    }
    assert_eq!(org.counters().requests, 0, "no request, so no write");
    // Tenants placed in current regions can still be planned and applied alone.
    let (plan, code) = org.plan_json("specs/gone.yaml", &["--tenant", "a"]);
    assert_eq!(code, 2, "{plan}");
    org.apply_ok("specs/gone.yaml", &["--tenant", "a"]);
    assert_eq!(org.apps("fleet"), ["gone-a"]);
    // validate and an offline plan keep warning only.
    let offline_cmd = |args: &[&str]| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("flotilla"));
        c.current_dir(org.path(""))
            .args(args)
            .env_remove("FLY_API_TOKEN")
            .env_remove("FLY_API_HOSTNAME");
        c.output().unwrap()
    };
    let out = offline_cmd(&["validate", "specs/gone.yaml"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("was removed by Fly"), "{}", text(&out));
    let mut offline = std::process::Command::new(assert_cmd::cargo::cargo_bin("flotilla"));
    offline
        .current_dir(org.path(""))
        .args(["plan", "specs/gone.yaml"])
        .env_remove("FLY_API_TOKEN")
        .env_remove("FLY_API_HOSTNAME");
    let out = offline.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}
