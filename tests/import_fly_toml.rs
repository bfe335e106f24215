//! `flotilla import --fly-toml FILE` on fly.toml files shaped like real ones (a Rails app
//! with http_service and a volume, a multi-process app, an old-style `[[services]]` app
//! on a dedicated-CPU size), on hostile files (too large, not TOML, a directory), and a
//! check that a file using only settings the spec declares today converts to a spec
//! `validate` accepts, as every fixture's does once its notes are followed.

// Tests may panic on a broken fixture.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::plain_bin;

/// Exit code, stdout and stderr of one run, as the snapshots pin them.
fn run(args: &[&str], dir: Option<&std::path::Path>) -> (i32, String, String) {
    let mut c = plain_bin();
    if let Some(d) = dir {
        c.current_dir(d);
    }
    let out = c.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn convert(fixture: &str) -> (String, String) {
    let path = format!("tests/fixtures/fly_toml/{fixture}");
    let (code, spec, summary) = run(&["import", "--fly-toml", &path, "--org", "acme"], None);
    assert_eq!(code, 0, "{summary}");
    (spec, summary)
}

#[test]
fn a_rails_app_with_http_service_and_a_volume() {
    let (spec, summary) = convert("rails.toml");
    insta::assert_snapshot!("fly_toml_rails_spec", spec);
    insta::assert_snapshot!("fly_toml_rails_summary", summary);
    assert!(summary.contains("deploy.release_command"), "{summary}");
    assert!(
        summary.contains("mounts.auto_extend_size_threshold"),
        "{summary}"
    );
}

#[test]
fn a_multi_process_app_becomes_process_groups() {
    let (spec, summary) = convert("multiprocess.toml");
    insta::assert_snapshot!("fly_toml_multiprocess_spec", spec);
    insta::assert_snapshot!("fly_toml_multiprocess_summary", summary);
    assert!(spec.contains("process_groups:"), "{spec}");
    assert!(summary.contains("restart[0].retries"), "{summary}");
}

#[test]
fn an_old_style_services_app_on_a_dedicated_cpu() {
    let (spec, summary) = convert("oldstyle.toml");
    insta::assert_snapshot!("fly_toml_oldstyle_spec", spec);
    insta::assert_snapshot!("fly_toml_oldstyle_summary", summary);
    assert!(spec.contains("size: \"performance-1x\""), "{spec}");
    assert!(spec.contains("memory: \"4gb\""), "{spec}");
    assert!(
        !spec.contains("q8Zr4TnW2vLp9XkD7sYb3MhJ"),
        "no credential in the spec"
    );
    assert!(
        !summary.contains("q8Zr4TnW2vLp9XkD7sYb3MhJ"),
        "nor in the summary"
    );
}

#[test]
fn hostile_files_are_refused_with_a_position_or_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("huge.toml"), "x = 1\n".repeat(200_000)).unwrap();
    std::fs::write(
        dir.path().join("yaml.toml"),
        "app: shop\nservices:\n  - internal_port: 8080\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("fly.toml")).unwrap();
    let mut out = String::new();
    for file in ["huge.toml", "yaml.toml", "fly.toml"] {
        let (code, stdout, stderr) = run(&["import", "--fly-toml", file], Some(dir.path()));
        assert_eq!(code, 1, "{file}: {stderr}");
        assert!(stdout.is_empty(), "{file}: no spec on stdout");
        out.push_str(&format!("$ flotilla import --fly-toml {file}\n{stderr}\n"));
    }
    insta::assert_snapshot!("fly_toml_hostile", out);
    assert!(out.contains("--> yaml.toml:1:"), "{out}");
}

#[test]
fn a_file_of_todays_settings_converts_to_a_valid_spec() {
    let out = flotilla::ops::import::flytoml::run(&flotilla::ops::import::flytoml::Options {
        file: common::root().join("tests/fixtures/fly_toml/today.toml"),
        org: Some("acme".into()),
    })
    .unwrap();
    // Only the note that service checks become Machine checks.
    let keys: Vec<&str> = out.unmapped.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, ["http_service.checks"], "{}", out.spec);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.yaml");
    std::fs::write(&path, &out.spec).unwrap();
    let report = flotilla::ops::validate::run(&flotilla::ops::validate::Options {
        specs: vec![path],
        ..Default::default()
    });
    let file = &report.files[0];
    let (counts, _) = file
        .result
        .as_ref()
        .unwrap_or_else(|d| panic!("{d}\n{}", out.spec));
    assert_eq!((counts.tenants, counts.machines, counts.volumes), (1, 1, 1));
}

/// The spec converted from `fixture`, validated through the library in a folder holding
/// the files it references (`local_file`s are read by apply, not by validate).
fn validated(fixture: &str) -> (String, flotilla::ops::validate::Counts) {
    let out = flotilla::ops::import::flytoml::run(&flotilla::ops::import::flytoml::Options {
        file: common::root().join(format!("tests/fixtures/fly_toml/{fixture}")),
        org: Some("acme".into()),
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // As the note on `local_path` asks: the file copied beside the spec.
    std::fs::create_dir(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/flags.json"), "{}\n").unwrap();
    let path = dir.path().join("fly.yaml");
    // As the note on an absent `primary_region` asks: a region under defaults.
    let spec = if out.unmapped.iter().any(|u| u.key == "primary_region") {
        out.spec
            .replace("\ndefaults:\n", "\ndefaults:\n  region: \"iad\"\n")
    } else {
        out.spec.clone()
    };
    std::fs::write(&path, &spec).unwrap();
    let report = flotilla::ops::validate::run(&flotilla::ops::validate::Options {
        specs: vec![path],
        ..Default::default()
    });
    let counts = match &report.files[0].result {
        Ok((counts, _)) => *counts,
        Err(d) => panic!("{fixture}: {d}\n{spec}"),
    };
    (spec, counts)
}

#[test]
fn every_fixture_converts_to_a_spec_that_validates() {
    // (fixture, Machines, volumes): the multi-process app has two process groups of
    // one Machine each.
    for (fixture, machines, volumes) in [
        ("rails.toml", 1, 1),
        ("multiprocess.toml", 2, 0),
        ("oldstyle.toml", 1, 0),
        ("today.toml", 1, 1),
    ] {
        let (spec, counts) = validated(fixture);
        assert_eq!(
            (counts.tenants, counts.machines, counts.volumes),
            (1, machines, volumes),
            "{fixture}\n{spec}"
        );
    }
}
