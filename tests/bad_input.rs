//! Hostile and broken input: a clear error and exit 1, never a panic, never a hang.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::bin;

fn validate_bytes(bytes: &[u8]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("spec.yaml");
    std::fs::write(&p, bytes).unwrap();
    let out = bin()
        .arg("validate")
        .arg(&p)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "panic: {err}");
    (out.status.code().unwrap_or(-1), err)
}

#[test]
fn missing_file_and_directory() {
    let out = bin()
        .args(["validate", "specs/nope.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("specs/nope.yaml") && err.contains("cannot read the file"),
        "{err}"
    );
    let out = bin().args(["validate", "specs"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
    let out = bin().args(["plan", "specs/nope.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn empty_and_whitespace() {
    for b in [&b""[..], b"   \n\n", b"# only a comment\n", b"---\n"] {
        let (code, err) = validate_bytes(b);
        assert_eq!(code, 1, "{err}");
    }
}

#[test]
fn invalid_utf8_names_the_position() {
    let (code, err) = validate_bytes(b"version: 1\norg: \xc3\x28bad\n");
    assert_eq!(code, 1);
    assert!(
        err.contains("not valid UTF-8") && err.contains("spec.yaml:2:6"),
        "{err}"
    );
}

#[test]
fn huge_file_is_refused_quickly() {
    let mut big = b"version: 1\norg: acme\n# ".to_vec();
    big.resize(33 * 1024 * 1024, b'x');
    let (code, err) = validate_bytes(&big);
    assert_eq!(code, 1);
    assert!(err.contains("larger than"), "{err}");
}

#[test]
fn deep_nesting_and_alias_bombs() {
    let deep = format!(
        "version: 1\norg: acme\ndefaults: {}{}\n",
        "[".repeat(200_000),
        "]".repeat(200_000)
    );
    let (code, err) = validate_bytes(deep.as_bytes());
    assert_eq!(code, 1);
    assert!(
        err.contains("nested more than 64 levels") || err.contains("malformed"),
        "{err}"
    );
    let deep_maps = format!(
        "version: 1\norg: acme\nx: {}1{}\n",
        "{a: ".repeat(5000),
        "}".repeat(5000)
    );
    let (code, _) = validate_bytes(deep_maps.as_bytes());
    assert_eq!(code, 1);
    let (code, err) = validate_bytes(
        &std::fs::read(common::root().join("examples/invalid/alias-bomb.yaml")).unwrap(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("alias bomb"));
}

#[test]
fn wrong_shapes_everywhere() {
    let cases: &[&str] = &[
        "- a\n- b\n",
        "just a string\n",
        "version: 1\norg: acme\ntenants: {alice: {}}\n",
        "version: 1\norg: acme\ntenants: [1, 2, [3]]\n",
        "version: 1\norg: acme\ndefaults: [image]\n",
        "version: 2\norg: acme\n",
        "version: 1\norg: [a]\n",
        "version: 1\norg: acme\norg: other\n",
        "version: 1\norg: acme\n? [complex, key]\n: value\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad, count: 99999999999999999999999}\ntenants: [{name: a}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad, memory: .nan}\ntenants: [{name: a}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad, memory: -2gb}\ntenants: [{name: a}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad}\ntenants: [{name: Ünïcødé}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad}\ntenants: [{generate: {count: 3}}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad}\ntenants: [{generate: {count: 0, name: 'u{{ i }}'}}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad}\ntenants: [{generate: {count: 5, name: 'same'}}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad}\ntenants: [{generate: {count: 5, name: '{{ i / 0 }}'}}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad, <<: 5}\ntenants: [{name: a}]\n",
        "version: 1\norg: acme\ndefaults: !!binary aGVsbG8=\n",
        "version: 1\norg: acme\n\tdefaults: {}\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad, services: [{internal_port: 70000}]}\ntenants: [{name: a}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad, env: {1BAD: x, 'A B': y}}\ntenants: [{name: a}]\n",
        "version: 1\norg: acme\ndefaults: {image: x, region: iad, metadata: {flotilla_managed: 'no'}}\ntenants: [{name: a}]\n",
        "version: 1\norg: acme\napps: [{name: Bad_App, image: x, region: iad}]\n",
    ];
    for c in cases {
        let (code, err) = validate_bytes(c.as_bytes());
        assert_eq!(code, 1, "should fail:\n{c}\n{err}");
        assert!(err.contains("error"), "{c}: {err}");
    }
}

#[test]
fn generator_with_a_million_tenants_is_bounded() {
    // A typo in a count must not hang: the generator is capped by the schema.
    let s = "version: 1\norg: acme\ndefaults: {image: x, region: iad}\ntenants: [{generate: {count: 100000000, name: 'u{{ i }}'}}]\n";
    let (code, err) = validate_bytes(s.as_bytes());
    assert_eq!(code, 1);
    assert!(err.contains("out of range"), "{err}");
}
