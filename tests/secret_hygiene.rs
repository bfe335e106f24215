//! Secret hygiene end to end, against the simulator over loopback with the real binary:
//! canary secret values, a token made at run time and the fingerprints anyone could
//! recompute from public data appear in no output (validate, plan as text, JSON and
//! Markdown, cost, graph, apply), no file (the saved plan, the journal, the
//! `--show-state` file) and nothing the simulator keeps (its request log and state
//! file); a secret changed directly on the API shows as changed outside flotilla and
//! apply restores it.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reconcile_common;

use flotilla::secrets::{FingerprintKey, Keying};
use reconcile_common::{Org, changed_addresses, text};
use serde_json::json;

const SCALE: f64 = 40.0;

const SPEC: &str = r#"
version: 1
org: hygiene
fleet: hygiene
naming: { app: "hygiene-{{ tenant.name }}" }
defaults:
  image: registry.fly.io/hygiene:1.0
  region: iad
  memory: 512mb
  env: { MODE: production }
  secrets:
    API_TOKEN: { env: HYGIENE_API_TOKEN }
    DB_PASSWORD: { file: secrets/db.txt }
tenants:
  - { name: alice }
  - { name: bob }
"#;

/// A value no one could guess, made at run time.
fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rand::random::<u8>() as usize % 16]))
        .collect()
}

/// A GitHub-shaped token, assembled at run time so that no token is committed.
fn runtime_token() -> String {
    let mut s = String::from("gh");
    s.push('p');
    s.push('_');
    s.push_str(&random_hex(36).to_uppercase().replace('0', "q"));
    s
}

struct Canaries {
    api: String,
    db: String,
    token: String,
    key: String,
}

/// A simulator persisting to a state file of its own, the spec and its canaries.
fn setup() -> (Org, Canaries, std::path::PathBuf) {
    let state = std::sync::Arc::new(std::sync::Mutex::new(None));
    let s2 = state.clone();
    let mut org = Org::with(SCALE, move |cfg| {
        let dir = std::env::temp_dir().join(format!("flotilla-hygiene-{}", random_hex(12)));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("sim-state.json");
        cfg.state_file = Some(p.clone());
        *s2.lock().unwrap() = Some(p);
    });
    let canaries = Canaries {
        api: format!("canary-api-{}", random_hex(24)),
        db: format!("canary-db-{}", random_hex(24)),
        token: runtime_token(),
        key: random_hex(64),
    };
    org.write("specs/hygiene.yaml", SPEC);
    org.write("specs/secrets/db.txt", &format!("{}\n", canaries.db));
    org.env
        .push(("HYGIENE_API_TOKEN".into(), canaries.api.clone()));
    org.env
        .push(("FLOTILLA_FINGERPRINT_KEY".into(), canaries.key.clone()));
    let p = state.lock().unwrap().clone().unwrap();
    (org, canaries, p)
}

/// A command that takes no API (`validate`, `cost`, `graph`), in the scratch directory.
fn offline(org: &Org, sub: &str, args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("flotilla"));
    c.current_dir(org.dir.path()).arg(sub).args(args);
    c.env("NO_COLOR", "1").env_remove("FLY_API_TOKEN");
    for (k, v) in &org.env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    out
}

/// Every fingerprint of a canary that public data (org, app, name) lets anyone compute.
fn public_fingerprints(c: &Canaries) -> Vec<String> {
    let mut out = Vec::new();
    for app in ["hygiene-alice", "hygiene-bob"] {
        for (name, value) in [("API_TOKEN", &c.api), ("DB_PASSWORD", &c.db)] {
            out.push(Keying::Public.fingerprint("hygiene", app, name, value));
        }
        out.push(Keying::Public.fingerprint("hygiene", app, "API_TOKEN", &c.token));
    }
    out
}

/// The fingerprints under the user's key: they may sit in the Machines' metadata on Fly,
/// but no output or file flotilla writes carries them.
fn keyed_fingerprints(c: &Canaries) -> Vec<String> {
    let k = Keying::Key(FingerprintKey::new(&c.key).unwrap());
    let mut out = Vec::new();
    for app in ["hygiene-alice", "hygiene-bob"] {
        for (name, value) in [("API_TOKEN", &c.api), ("DB_PASSWORD", &c.db)] {
            out.push(k.fingerprint("hygiene", app, name, value));
        }
    }
    out
}

/// Every file flotilla wrote in the scratch directory (journals, the saved plan, the
/// `--show-state` files, the request log), not the specs and secret files given to it.
fn written_files(org: &Org) -> String {
    org.sim.control().flush_log();
    fn walk(p: &std::path::Path, out: &mut String) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                if name != "specs" && name != "secrets" {
                    walk(&p, out);
                }
            } else {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut s = String::new();
    walk(org.dir.path(), &mut s);
    s
}

fn assert_absent(what: &str, haystack: &str, needles: &[String]) {
    for n in needles {
        assert!(
            !haystack.contains(n.as_str()),
            "{what} contains a secret, the token or a fingerprint ({} chars)",
            n.len()
        );
    }
}

#[test]
fn nothing_secret_leaves_flotilla_and_out_of_band_changes_are_restored() {
    let (mut org, c, sim_state_path) = setup();
    let mut outputs = String::new();
    let run = |org: &Org, sub: &str, args: &[&str]| text(&org.run(sub, args));

    for sub in ["validate", "cost", "graph"] {
        let out = offline(&org, sub, &["specs/hygiene.yaml"]);
        assert!(out.status.success(), "{sub}: {}", text(&out));
        outputs += &text(&out);
    }
    let out = org.apply_ok("specs/hygiene.yaml", &["--journal", "journal/one.jsonl"]);
    outputs += &text(&out);

    // The value changes (a rotation of the canary itself): plans show only "changed".
    let second = format!("canary-api2-{}", random_hex(24));
    org.env.retain(|(k, _)| k != "HYGIENE_API_TOKEN");
    org.env.push(("HYGIENE_API_TOKEN".into(), second.clone()));
    for format in ["text", "json", "markdown"] {
        let o = org.run("plan", &["specs/hygiene.yaml", "--format", format]);
        let t = text(&o);
        assert!(
            t.contains("(changed)") && t.contains("API_TOKEN"),
            "{format}: {t}"
        );
        outputs += &t;
    }
    outputs += &run(
        &org,
        "plan",
        &[
            "specs/hygiene.yaml",
            "--out",
            "hygiene.plan.json",
            "--show-state",
            "observed.json",
        ],
    );
    let out = org.run(
        "apply",
        &["hygiene.plan.json", "--journal", "journal/two.jsonl"],
    );
    assert!(out.status.success(), "{}", text(&out));
    outputs += &text(&out);

    // A token pasted into a Machine's metadata by hand: --show-state must not write it
    // (Fly keeps it, of course: it is checked in flotilla's outputs and files only).
    let pasted = runtime_token();
    let id = org.machines("hygiene-alice")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = org.api(
        "POST",
        &format!("/apps/hygiene-alice/machines/{id}/metadata/deploy_note"),
        Some(json!({ "value": format!("deployed with {pasted}") })),
    );
    assert!((200..300).contains(&s), "{s}");

    // Out of band: someone sets the secret directly on the API.
    let (s, _) = org.api(
        "POST",
        "/apps/hygiene-bob/secrets",
        Some(json!({ "values": { "API_TOKEN": c.token } })),
    );
    assert_eq!(s, 200);
    let (doc, code) = org.plan_json("specs/hygiene.yaml", &[]);
    assert_eq!(code, 2, "{doc}");
    let changed = changed_addresses(&doc);
    assert_eq!(
        changed,
        ["tenant.bob.secret.API_TOKEN", "tenant.bob.machine[0]"],
        "{doc}"
    );
    let t = run(
        &org,
        "plan",
        &["specs/hygiene.yaml", "--show-state", "drift.json"],
    );
    assert!(t.contains("changed outside flotilla"), "{t}");
    outputs += &t;
    outputs += &doc.to_string();
    let out = org.apply_ok("specs/hygiene.yaml", &["--journal", "journal/three.jsonl"]);
    outputs += &text(&out);
    let (doc, code) = org.plan_json("specs/hygiene.yaml", &[]);
    assert_eq!(code, 0, "apply restored the declared value: {doc}");

    // Rotating the fingerprint key sets each secret once and restarts nothing: the
    // values on Fly are unchanged, so Machines only get the new records.
    let instances: Vec<_> = ["hygiene-alice", "hygiene-bob"]
        .iter()
        .map(|a| org.machines(a)[0]["instance_id"].clone())
        .collect();
    org.env.retain(|(k, _)| k != "FLOTILLA_FINGERPRINT_KEY");
    org.env
        .push(("FLOTILLA_FINGERPRINT_KEY".into(), random_hex(64)));
    let (doc, code) = org.plan_json("specs/hygiene.yaml", &[]);
    assert_eq!(code, 2, "{doc}");
    assert!(doc.to_string().contains("another fingerprint key"), "{doc}");
    let out = org.apply_ok("specs/hygiene.yaml", &[]);
    outputs += &text(&out);
    let after: Vec<_> = ["hygiene-alice", "hygiene-bob"]
        .iter()
        .map(|a| org.machines(a)[0]["instance_id"].clone())
        .collect();
    assert_eq!(instances, after, "a key rotation restarts no Machine");
    assert_eq!(org.plan_json("specs/hygiene.yaml", &[]).1, 0);

    // Now look everywhere.
    org.sim.control().save().unwrap();
    let files = written_files(&org);
    assert!(
        files.contains("\"action\":\"set secrets\""),
        "the journal was written"
    );
    let log = std::fs::read_to_string(&org.log).unwrap();
    let sim_state = std::fs::read_to_string(&sim_state_path).unwrap();
    assert!(
        sim_state.contains("hygiene-bob"),
        "the state file was written"
    );
    let shown = std::fs::read_to_string(org.path("observed.json")).unwrap();
    assert!(
        shown.contains("flotilla_secrets"),
        "the state file lists flotilla's secrets"
    );
    let drift = std::fs::read_to_string(org.path("drift.json")).unwrap();
    assert!(
        drift.contains("deploy_note"),
        "the hand-made metadata key is listed"
    );

    let mut secret = vec![
        c.api.clone(),
        c.db.clone(),
        second.clone(),
        c.token.clone(),
        c.key.clone(),
        reconcile_common::TOKEN.to_string(),
    ];
    secret.extend(public_fingerprints(&c));
    assert_absent("the output", &outputs, &secret);
    assert_absent("a journal, plan or state file", &files, &secret);
    assert_absent("the request log", &log, &secret);
    assert_absent("the simulator's state file", &sim_state, &secret);
    assert_absent("the output", &outputs, std::slice::from_ref(&pasted));
    assert_absent(
        "a journal, plan or state file",
        &files,
        std::slice::from_ref(&pasted),
    );
    assert_absent("the output", &outputs, &keyed_fingerprints(&c));
    assert_absent(
        "a journal, plan or state file",
        &files,
        &keyed_fingerprints(&c),
    );
    // The recomputable fingerprint of the second value too.
    for app in ["hygiene-alice", "hygiene-bob"] {
        let fp = Keying::Public.fingerprint("hygiene", app, "API_TOKEN", &second);
        assert_absent(
            "anything",
            &format!("{outputs}{files}{log}{sim_state}"),
            &[fp],
        );
    }
}

#[test]
fn a_runtime_token_in_names_images_comments_and_urls_is_never_echoed() {
    let tok = runtime_token();
    let fly = format!("FlyV1fm2_{}", random_hex(40));
    let cases = [
        format!(
            "version: 1\norg: acme\nnaming: {{ app: \"acme-{tok}-{{{{ tenant.name }}}}\" }}\ndefaults: {{ image: img:1, region: iad }}\ntenants: [{{ name: a }}]\n"
        ),
        format!(
            "version: 1\norg: acme\ndefaults: {{ image: \"img:{fly}\", region: iad }}\ntenants: [{{ name: a }}]\n"
        ),
        format!(
            "version: 1\norg: acme\n# {tok}\ndefaults: {{ image: img:1, region: iad }}\ntenants: [{{ name: a }}]\n"
        ),
        format!(
            "version: 1\norg: acme\ndefaults:\n  image: img:1\n  region: iad\n  env: {{ DATABASE_URL: \"postgres://u:{tok}@db/x\" }}\ntenants: [{{ name: a }}]\n"
        ),
    ];
    let (org, _, _) = setup();
    for (i, spec) in cases.iter().enumerate() {
        let file = format!("specs/bad{i}.yaml");
        org.write(&file, spec);
        for (sub, extra) in [
            ("validate", vec![]),
            ("validate", vec!["--format", "json"]),
            ("plan", vec![]),
            ("plan", vec!["--format", "json"]),
            ("cost", vec![]),
            ("graph", vec![]),
        ] {
            let mut args = vec![file.as_str()];
            args.extend(extra.iter().copied());
            let out = if sub == "plan" {
                org.run(sub, &args)
            } else {
                offline(&org, sub, &args)
            };
            assert_eq!(out.status.code(), Some(1), "{sub} {file}: {}", text(&out));
            let t = text(&out);
            assert!(t.contains("looks like"), "{sub} {file}: {t}");
            assert_absent(sub, &t, &[tok[4..].to_string(), fly[9..].to_string()]);
        }
    }
}
