//! `flotilla validate` accepts every spec in specs/ and rejects every spec in
//! examples/invalid/ with the documented messages.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{bin, root};

#[test]
fn every_shipped_spec_is_valid() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("specs")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            let out = bin().arg("validate").arg(&p).output().unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
            n += 1;
        }
    }
    assert!(n >= 3);
}

#[test]
fn jarvis_has_the_situation_one_shape() {
    let out = bin()
        .args(["validate", "specs/jarvis.yaml"])
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        s.trim(),
        "specs/jarvis.yaml is valid: 14 tenants, 14 apps, 14 machines, 14 volumes, 42 secrets (140 resources)."
    );
}

#[test]
fn every_invalid_example_fails_with_its_documented_message() {
    let dir = root().join("examples/invalid");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let expected = std::fs::read_to_string(p.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{} has no .expected file", p.display()));
        let rel = p.strip_prefix(root()).unwrap();
        let out = bin().arg("validate").arg(rel).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{} must fail", p.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
        for line in expected.lines().filter(|l| !l.trim().is_empty()) {
            assert!(
                err.contains(line),
                "{}: expected\n  {line}\nin\n{err}",
                p.display()
            );
        }
        n += 1;
    }
    assert!(n >= 20, "only {n} invalid examples");
}

#[test]
fn secrets_are_never_echoed() {
    for f in ["plaintext-secret", "pasted-credential"] {
        let spec =
            std::fs::read_to_string(root().join(format!("examples/invalid/{f}.yaml"))).unwrap();
        let out = bin()
            .args(["validate", &format!("examples/invalid/{f}.yaml")])
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in [
            "this-is-the-real-signing-secret",
            "postgres-password-here",
            "q8Zr2LmX0vT4bN7wKc1pYs9dHe3",
        ] {
            if spec.contains(secret) {
                assert!(!all.contains(secret), "{f}: the value leaked");
            }
        }
    }
}

#[test]
fn known_token_shapes_are_refused_without_echo() {
    // Built at run time so that no token-shaped literal is committed.
    let tail = "Zq3xW8vN2mK5pR7tY1uB4cD6fG9hJ0aL";
    let tokens = [
        format!("FlyV1 fm2{}{tail}{tail}", "_"),
        format!("sk-{}-api03-{tail}", "ant"),
        format!("{}{tail}abcd", concat!("gh", "p_")),
        format!("{}{}", concat!("AK", "IA"), "Q7XK2M4N6P8R1T3V"),
    ];
    for tok in tokens {
        let spec = format!(
            "version: 1\norg: acme\ndefaults:\n  image: img:1\n  region: iad\n  env:\n    NOTE: \"{tok}\"\ntenants:\n  - {{ name: a }}\n"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, spec).unwrap();
        let out = bin().arg("validate").arg(&p).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("s.yaml:7:11") && err.contains("defaults.env.NOTE: this looks like"),
            "{err}"
        );
        assert!(!err.contains(&tok[6..]), "token echoed: {err}");
    }
}

#[test]
fn a_pasted_token_is_not_echoed_by_other_errors() {
    // A token pasted as a size (an unknown size) and as a key (an unknown key, and part
    // of the path of everything under it): every message about it stays silent.
    let tok = format!(
        "{}{}abcd",
        concat!("gh", "p_"),
        "Zq3xW8vN2mK5pR7tY1uB4cD6fG9hJ0aL"
    );
    let spec = format!(
        "version: 1\norg: acme\ndefaults:\n  image: img:1\n  region: iad\n  size: {tok}\n  {tok}:\n    memory: lots\ntenants:\n  - {{ name: a }}\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.yaml");
    std::fs::write(&p, spec).unwrap();
    for format in ["text", "json"] {
        let out = bin()
            .arg("validate")
            .arg(&p)
            .args(["--format", format])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains("looks like"), "{all}");
        assert!(all.contains("(redacted)"), "{all}");
        assert!(!all.contains(&tok[4..]), "token echoed: {all}");
    }
}

#[test]
fn validate_json_lists_diagnostics() {
    let out = bin()
        .args([
            "validate",
            "examples/invalid/unknown-region.yaml",
            "specs/jarvis.yaml",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["valid"], false);
    assert_eq!(
        v[0]["diagnostics"][0]["mark"],
        serde_json::json!({"line": 8, "col": 22})
    );
    assert_eq!(
        v[0]["diagnostics"][0]["path"],
        "defaults.fallback_regions[0]"
    );
    assert_eq!(v[1]["valid"], true);
    assert_eq!(v[1]["machines"], 14);
}
