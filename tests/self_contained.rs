//! The suite is self-contained: no test, benchmark or build script reads a file outside
//! the repository (a fresh clone with nothing beside it passes `cargo test --locked`).
//! Fixtures the tests need are vendored under `tests/fixtures/` with their source.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Paths that leave the repository: its parent, a sibling checkout, an absolute path
/// to another tree. Assembled from parts so this file does not match itself.
fn escapes() -> Vec<String> {
    vec![
        ["..", "/shared"].concat(),
        ["shared", "/reference"].concat(),
        ["/work", "/"].concat(),
        ["join(\"", "..\")"].concat(),
        ["parent()", ".unwrap().join"].concat(),
    ]
}

#[test]
fn no_test_reads_outside_the_repository() {
    let mut files = Vec::new();
    for dir in ["tests", "benches"] {
        rust_files(&root().join(dir), &mut files);
    }
    files.push(root().join("build.rs"));
    assert!(files.len() > 10);
    let patterns = escapes();
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            if let Some(p) = patterns.iter().find(|p| line.contains(p.as_str())) {
                found.push(format!(
                    "{}:{}: `{p}` in {}",
                    f.strip_prefix(root()).unwrap_or(f).display(),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "reads outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_vendored_api_spec_is_in_the_repository() {
    let fixtures = root().join("tests/fixtures/fly");
    let specs: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert!(
        !specs.is_empty(),
        "no vendored OpenAPI document in {}",
        fixtures.display()
    );
}
