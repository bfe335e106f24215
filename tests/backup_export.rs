//! `backup export` and `backup restore` through the real binary against the simulator:
//! a fork per volume and a one-shot export Machine, nothing left behind (volumes,
//! Machines, credential secrets), the tenant's Machine never stopped, the content tag
//! carried to the off-site store; a failing export image reported by tenant, volume and
//! exit status with its fork removed; credentials never in any output or file; and a
//! restore putting the exported content back under the tenant's Machine.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reconcile_common;

use reconcile_common::Org;
use serde_json::Value;

const SCALE: f64 = 50.0;

const SPEC: &str = r#"
version: 1
org: bex
naming: { app: "bex-{{ tenant.name }}" }
defaults:
  image: registry.fly.io/bex:1.0
  region: ams
  size: shared-cpu-1x
  memory: 256mb
  volume: { name: data, size_gb: 2, mount: /data }
  backups:
    export:
      to: "s3://bex-backups/{{ tenant.name }}"
      endpoint: https://account.r2.cloudflarestorage.com
      credentials:
        AWS_ACCESS_KEY_ID: { env: BACKUP_KEY_ID }
        AWS_SECRET_ACCESS_KEY: { env: BACKUP_KEY }
      encryption_key: { env: BACKUP_PASSPHRASE }
      image: registry.example.com/volume-export:2
      keep: 3
tenants:
  - name: alice
  - name: bob
"#;

fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rand::random::<u8>() as usize % 16]))
        .collect()
}

/// An applied fleet, its credentials set to values made at run time.
fn applied() -> (Org, Vec<String>) {
    let mut org = Org::new(SCALE);
    let canaries: Vec<String> = ["id", "key", "pass"]
        .iter()
        .map(|p| format!("canary-{p}-{}", random_hex(24)))
        .collect();
    for (var, v) in ["BACKUP_KEY_ID", "BACKUP_KEY", "BACKUP_PASSPHRASE"]
        .iter()
        .zip(&canaries)
    {
        org.env.push(((*var).into(), v.clone()));
    }
    org.write("specs/bex.yaml", SPEC);
    org.apply_ok("specs/bex.yaml", &[]);
    (org, canaries)
}

/// The one volume of `app` (id).
fn only_volume(org: &Org, app: &str) -> String {
    let vols = org.volumes(app);
    assert_eq!(vols.len(), 1, "{vols:?}");
    vols[0]["id"].as_str().unwrap().to_string()
}

/// The app's only volume, given the content tag `content`; its id.
fn with_content(org: &Org, app: &str, content: &str) -> String {
    let vol = only_volume(org, app);
    assert!(org.sim.control().set_volume_content(app, &vol, content));
    vol
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn starts(org: &Org, app: &str) -> Vec<(String, String, u64)> {
    org.sim
        .control()
        .machines(app)
        .unwrap()
        .machines
        .into_iter()
        .filter(|m| m.state != "destroyed")
        .map(|m| (m.id, m.state, m.starts))
        .collect()
}

fn backup_secrets(org: &Org, app: &str) -> Vec<Value> {
    let (_, v) = org.api("GET", &format!("/apps/{app}/secrets"), None);
    let list = v.get("secrets").cloned().unwrap_or(v);
    list.as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|s| {
            s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("FLOTILLA_BACKUP_"))
        })
        .collect()
}

#[test]
fn export_forks_runs_a_one_shot_machine_and_leaves_nothing_behind() {
    let (org, canaries) = applied();
    with_content(&org, "bex-alice", "alice-orders-v1");
    let before = starts(&org, "bex-alice");
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].1, "started");

    let out = org.run("backup", &["export", "specs/bex.yaml", "--debug"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("tenant alice (app bex-alice)"), "{stdout}");
    assert!(stdout.contains("2 of 2 volume(s) exported."), "{stdout}");
    assert!(
        stdout.contains("to s3://bex-backups/alice/data-0,"),
        "{stdout}"
    );
    assert!(stdout.contains("bytes"), "{stdout}");
    assert!(stdout.contains("cost $"), "{stdout}");

    // The store holds one object per volume, with the volume's content (through the
    // fork the export Machine mounted) and client-side encryption requested.
    let objects = org.sim.control().objects();
    assert_eq!(objects.len(), 2, "{objects:?}");
    let alice = objects
        .iter()
        .find(|o| o.key.starts_with("s3://bex-backups/alice/data-0/"))
        .unwrap();
    assert_eq!(alice.content, "alice-orders-v1");
    assert!(alice.encrypted);
    assert_eq!(alice.keep, 3);

    for app in ["bex-alice", "bex-bob"] {
        assert_eq!(org.volumes(app).len(), 1, "no fork left in {app}");
        assert_eq!(
            org.machines(app).len(),
            1,
            "no export Machine left in {app}"
        );
        assert!(
            backup_secrets(&org, app).is_empty(),
            "credentials removed from {app}"
        );
        // The export Machine was one-shot and is destroyed.
        let (_, all) = org.api(
            "GET",
            &format!("/apps/{app}/machines?include_deleted=true"),
            None,
        );
        let jobs: Vec<&Value> = all
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["config"]["auto_destroy"] == true)
            .collect();
        assert_eq!(jobs.len(), 1, "{all}");
        assert_eq!(jobs[0]["state"], "destroyed");
        assert_eq!(jobs[0]["config"]["restart"]["policy"], "no");
        let env = jobs[0]["config"]["env"].to_string();
        assert!(env.contains("FLOTILLA_BACKUP_MODE"), "{env}");
        for c in &canaries {
            assert!(
                !jobs[0].to_string().contains(c.as_str()),
                "credential in the Machine config"
            );
        }
    }
    // The tenant's Machine was never stopped: same Machine, still started, no new boot.
    assert_eq!(starts(&org, "bex-alice"), before);

    // Credentials appear nowhere flotilla writes or prints (with --debug on).
    let files = org.all_files_text();
    for c in &canaries {
        assert!(
            !stdout.contains(c.as_str()) && !stderr.contains(c.as_str()),
            "printed"
        );
        assert!(!files.contains(c.as_str()), "written to a file");
    }

    // A second export prunes nothing below keep and the next plan is clean.
    let (plan, code) = org.plan_json("specs/bex.yaml", &[]);
    assert_eq!(code, 0, "{plan}");
}

#[test]
fn a_failing_export_image_names_tenant_volume_and_status_and_removes_the_fork() {
    let (org, canaries) = applied();
    org.set_faults("job_fail=volume-export");
    let out = org.run("backup", &["export", "specs/bex.yaml", "--tenant", "alice"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let vol = only_volume(&org, "bex-alice");
    assert!(
        stdout.contains(&format!(
            "export failed: tenant alice, volume data ({vol}): the export image registry.example.com/volume-export:2 exited with status 1; the fork was removed"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("0 of 1 volume(s) exported."), "{stdout}");
    assert!(stderr.contains("1 export(s) failed."), "{stderr}");
    assert!(org.sim.control().objects().is_empty());
    assert_eq!(org.machines("bex-alice").len(), 1);
    assert!(backup_secrets(&org, "bex-alice").is_empty());
    for c in &canaries {
        assert!(!stdout.contains(c.as_str()) && !stderr.contains(c.as_str()));
    }
}

#[test]
fn a_tenant_without_export_settings_is_refused_before_anything_changes() {
    let (org, _) = applied();
    let start = SPEC.find("  backups:").unwrap();
    let end = SPEC.find("tenants:").unwrap();
    org.write(
        "specs/plain.yaml",
        &format!("{}{}", &SPEC[..start], &SPEC[end..]),
    );
    let out = org.run(
        "backup",
        &["export", "specs/plain.yaml", "--tenant", "alice"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("tenant alice has no `backups.export`"),
        "{stderr}"
    );
}

#[test]
fn backup_restore_brings_the_exported_content_back() {
    let (org, _) = applied();
    let old = with_content(&org, "bex-alice", "alice-good");
    let out = org.run("backup", &["export", "specs/bex.yaml", "--tenant", "alice"]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(
        org.sim
            .control()
            .set_volume_content("bex-alice", &old, "alice-broken")
    );

    // An export that does not exist: the restore image fails, nothing is swapped.
    let out = org.run(
        "backup",
        &[
            "restore",
            "specs/bex.yaml",
            "--tenant",
            "alice",
            "--export",
            "19990101T000000000Z",
            "--yes",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "exited with status 1 (export 19990101T000000000Z); the new volume was removed"
        ),
        "{stdout}"
    );
    assert_eq!(org.volumes("bex-alice").len(), 1);

    let out = org.run(
        "backup",
        &["restore", "specs/bex.yaml", "--tenant", "alice", "--yes"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 of 1 volume(s) restored."), "{stdout}");
    let machines = org.machines("bex-alice");
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0]["state"], "started");
    let mounted = machines[0]["config"]["mounts"][0]["volume"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(mounted, old);
    let view = org.sim.control().volumes("bex-alice").unwrap();
    let new = view.volumes.iter().find(|v| v.id == mounted).unwrap();
    assert_eq!(new.content, "alice-good");
    assert_eq!(view.volumes.len(), 2, "the old volume is kept, unattached");
    assert!(backup_secrets(&org, "bex-alice").is_empty());
}

/// The spec without tenant bob (`plain`: also without `backups.export`).
fn without_bob(plain: bool) -> String {
    let mut s = SPEC.replace("  - name: bob\n", "");
    if plain {
        let start = s.find("  backups:").unwrap();
        let end = s.find("tenants:").unwrap();
        s = format!("{}{}", &s[..start], &s[end..]);
    }
    s
}

fn position(reqs: &[Value], method: &str, path: impl Fn(&str) -> bool) -> Option<usize> {
    reqs.iter().position(|r| {
        r["method"] == method
            && path(r["path"].as_str().unwrap())
            && r["status"].as_u64().is_some_and(|s| s < 300)
    })
}

#[test]
fn a_removed_tenant_is_exported_off_site_before_its_app_and_snapshots_are_deleted() {
    let (org, canaries) = applied();
    with_content(&org, "bex-bob", "bob-last-words");
    org.write("specs/nobob.yaml", &without_bob(false));

    // The plan exports bob's volume first (the defaults' export rendered for bob), and
    // so its deletion is not a data loss.
    let (plan, code) = org.plan_json("specs/nobob.yaml", &[]);
    assert_eq!(code, 2, "{plan}");
    let v = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "tenant.bob.volume.data[0]")
        .unwrap();
    assert_eq!(v["action"], "delete");
    assert!(v.get("data_loss").is_none(), "{v}");
    assert_eq!(v["export_before_delete"]["to"], "s3://bex-backups/bob");
    assert_eq!(
        v["export_before_delete"]["credentials"]["AWS_ACCESS_KEY_ID"]["env"],
        "BACKUP_KEY_ID"
    );
    let out = org.run("plan", &["specs/nobob.yaml"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("exported to s3://bex-backups/bob first"),
        "{stdout}"
    );
    let out = org.run("plan", &["specs/nobob.yaml", "--format", "markdown"]);
    assert!(
        text(&out)
            .0
            .contains("exported to s3://bex-backups/bob first"),
        "{:?}",
        text(&out)
    );

    // --allow-destroy suffices: the data leaves Fly before anything is deleted.
    let out = org.apply_ok("specs/nobob.yaml", &["--allow-destroy"]);
    let (stdout, stderr) = text(&out);
    assert!(!org.apps("bex").contains(&"bex-bob".to_string()));
    let objects = org.sim.control().objects();
    let bob = objects
        .iter()
        .find(|o| o.key.starts_with("s3://bex-backups/bob/data-0/"))
        .unwrap_or_else(|| panic!("{objects:?}"));
    assert_eq!(bob.content, "bob-last-words");
    let reqs = org.requests();
    let job = position(&reqs, "POST", |p| p == "/v1/apps/bex-bob/machines").unwrap();
    let machines_gone = position(&reqs, "DELETE", |p| {
        p.starts_with("/v1/apps/bex-bob/machines/")
    })
    .unwrap();
    let app_gone = position(&reqs, "DELETE", |p| p.starts_with("/v1/apps/bex-bob?")).unwrap();
    assert!(job < machines_gone && machines_gone < app_gone);
    // Alice kept hers, and no credential was printed.
    assert_eq!(org.volumes("bex-alice").len(), 1);
    for c in &canaries {
        assert!(!stdout.contains(c.as_str()) && !stderr.contains(c.as_str()));
    }
    let (plan, code) = org.plan_json("specs/nobob.yaml", &[]);
    assert_eq!(code, 0, "{plan}");
}

#[test]
fn a_failed_export_before_removal_keeps_the_tenant_and_says_why() {
    let (org, _) = applied();
    org.write("specs/nobob.yaml", &without_bob(false));
    org.set_faults("job_fail=volume-export");
    let out = org.apply("specs/nobob.yaml", &["--allow-destroy"]);
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("export before removal failed"), "{all}");
    assert!(all.contains("exited with status 1"), "{all}");
    assert!(all.contains("tenant kept"), "{all}");
    // Nothing of bob was deleted, no fork or credential left behind.
    assert!(org.apps("bex").contains(&"bex-bob".to_string()));
    assert_eq!(org.volumes("bex-bob").len(), 1);
    assert_eq!(org.machines("bex-bob").len(), 1);
    assert!(backup_secrets(&org, "bex-bob").is_empty());
    assert!(org.sim.control().objects().is_empty());
    // The next plan shows the removal again.
    let (plan, code) = org.plan_json("specs/nobob.yaml", &[]);
    assert_eq!(code, 2, "{plan}");
}

#[test]
fn removing_a_tenant_without_an_export_is_a_data_loss_that_needs_the_flag() {
    let (org, _) = applied();
    org.write("specs/plain.yaml", &without_bob(true));
    let out = org.apply("specs/plain.yaml", &["--allow-destroy"]);
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(all.contains("needs --allow-data-loss"), "{all}");
    assert!(
        all.contains("removing tenant bob deletes app bex-bob and with it its volumes' snapshots: no copy is kept"),
        "{all}"
    );
    assert!(all.contains("set `backups.export` in `defaults`"), "{all}");
    assert!(org.apps("bex").contains(&"bex-bob".to_string()));
    let (plan, _) = org.plan_json("specs/plain.yaml", &[]);
    let v = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "tenant.bob.volume.data[0]")
        .unwrap();
    assert_eq!(v["data_loss"], true);
    assert!(v.get("export_before_delete").is_none());
    org.apply_ok(
        "specs/plain.yaml",
        &["--allow-destroy", "--allow-data-loss"],
    );
    assert!(!org.apps("bex").contains(&"bex-bob".to_string()));
}

#[test]
fn a_saved_plan_removing_a_tenant_carries_its_export() {
    let (org, _) = applied();
    with_content(&org, "bex-bob", "bob-saved");
    org.write("specs/nobob.yaml", &without_bob(false));
    let out = org.run("plan", &["specs/nobob.yaml", "--out", "nobob.plan.json"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let saved = std::fs::read_to_string(org.path("nobob.plan.json")).unwrap();
    let doc: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(
        doc["removal_export"]["to"], "s3://bex-backups/{{ tenant.name }}",
        "the template, rendered again for the removed tenant at apply"
    );
    org.apply_ok("nobob.plan.json", &["--allow-destroy"]);
    assert!(!org.apps("bex").contains(&"bex-bob".to_string()));
    let objects = org.sim.control().objects();
    assert!(
        objects
            .iter()
            .any(|o| o.key.starts_with("s3://bex-backups/bob/data-0/") && o.content == "bob-saved"),
        "{objects:?}"
    );
}

#[test]
fn missing_export_credentials_keep_a_removed_tenant() {
    let (mut org, _) = applied();
    org.env.retain(|(k, _)| k != "BACKUP_KEY");
    org.write("specs/nobob.yaml", &without_bob(false));
    let out = org.apply("specs/nobob.yaml", &["--allow-destroy"]);
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let all = format!("{stdout}\n{stderr}");
    assert!(
        all.contains("cannot read the export credentials: environment variable BACKUP_KEY is not set or empty"),
        "{all}"
    );
    assert!(org.apps("bex").contains(&"bex-bob".to_string()));
    assert_eq!(org.volumes("bex-bob").len(), 1);
    assert_eq!(org.machines("bex-bob").len(), 1);
}
