//! `flotilla comment github` against a local fake of GitHub's issue-comments API
//! (`tests/github_fake`): create, update by marker, skip when unchanged, `new`,
//! `delete-and-new`, pagination, truncation, errors with hints, and the token never in
//! any output.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod github_fake;

use std::path::PathBuf;

use github_fake::{Fake, OWNER, PR, REPO};

/// A token-shaped test value, assembled at run time.
fn token() -> String {
    ["gh", "s_", "T3stT0kenF0rTheFakeGitHubApi0123456789"].concat()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn md(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `comment github --pr 7 --repo acme/fleet --api-url FAKE ARGS… FILES…` with
/// `GITHUB_TOKEN` set to `tok`.
fn comment(fake: &Fake, tok: &str, args: &[&str], files: &[&PathBuf]) -> Run {
    let mut cmd = common::plain_bin();
    cmd.env_remove("GITHUB_REPOSITORY")
        .env_remove("GITHUB_API_URL")
        .env("GITHUB_TOKEN", tok)
        .args(["comment", "github", "--pr", &PR.to_string()])
        .args([
            "--repo",
            &format!("{OWNER}/{REPO}"),
            "--api-url",
            &fake.base,
        ])
        .args(args)
        .args(files);
    let out = cmd.output().unwrap();
    let run = Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(
        !run.stdout.contains(tok) && !run.stderr.contains(tok),
        "the token was printed: {}{}",
        run.stdout,
        run.stderr
    );
    run
}

const MARK: &str = "<!-- flotilla:flotilla -->\n";

#[test]
fn creates_one_comment_from_the_files_then_skips_when_unchanged() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    let plan = md(&dir, "plan.md", "## Plan\n\n3 to create\n");
    let cost = md(&dir, "cost.md", "## Cost\n\n+$11.15/month\n");
    fake.seed("Looks good to me");
    let run = comment(&fake, &token(), &[], &[&plan, &cost]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("comment_created", run.stdout);
    let comments = fake.comments();
    assert_eq!(comments.len(), 2);
    assert_eq!(
        comments[1].body,
        format!("{MARK}## Plan\n\n3 to create\n\n## Cost\n\n+$11.15/month\n")
    );
    assert_eq!(fake.writes().len(), 1);
    // The same files again: listed, nothing written.
    let run = comment(&fake, &token(), &[], &[&plan, &cost]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("comment_unchanged", run.stdout);
    assert_eq!(fake.writes().len(), 1, "{:?}", fake.requests());
    assert_eq!(fake.comments().len(), 2);
}

#[test]
fn updates_the_marked_comment_in_place() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    let other = fake.seed("<!-- flotilla:staging -->\nstaging plan");
    let id = fake.seed(&format!("{MARK}old plan"));
    let plan = md(&dir, "plan.md", "new plan");
    let run = comment(&fake, &token(), &[], &[&plan]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with(&format!("Updated comment {id} on acme/fleet#7")),
        "{}",
        run.stdout
    );
    let writes = fake.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].method, "PATCH");
    assert_eq!(
        writes[0].uri,
        format!("/repos/acme/fleet/issues/comments/{id}")
    );
    let comments = fake.comments();
    assert_eq!(comments.len(), 2);
    assert_eq!(
        comments[0].id, other,
        "another marker's comment is left alone"
    );
    assert_eq!(comments[0].body, "<!-- flotilla:staging -->\nstaging plan");
    assert_eq!(comments[1].body, format!("{MARK}new plan\n"));
    // A second marker gets its own comment.
    let run = comment(&fake, &token(), &["--marker", "prod"], &[&plan]);
    assert!(run.stdout.starts_with("Created comment"), "{}", run.stdout);
    assert_eq!(fake.comments().len(), 3);
    assert!(
        fake.comments()[2]
            .body
            .starts_with("<!-- flotilla:prod -->\n")
    );
}

#[test]
fn behavior_new_adds_a_comment_unless_the_last_is_identical() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    fake.seed(&format!("{MARK}first\n"));
    let second = md(&dir, "p.md", "second");
    let run = comment(&fake, &token(), &["--behavior", "new"], &[&second]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("Created"), "{}", run.stdout);
    assert_eq!(fake.comments().len(), 2);
    let run = comment(&fake, &token(), &["--behavior", "new"], &[&second]);
    assert!(run.stdout.starts_with("Unchanged"), "{}", run.stdout);
    assert_eq!(fake.comments().len(), 2);
    assert_eq!(fake.writes().len(), 1);
}

#[test]
fn behavior_delete_and_new_replaces_every_marked_comment() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    let a = fake.seed(&format!("{MARK}one"));
    let keep = fake.seed("a review remark");
    let b = fake.seed(&format!("{MARK}two"));
    let plan = md(&dir, "p.md", "three");
    let run = comment(&fake, &token(), &["--behavior", "delete-and-new"], &[&plan]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("Deleted the earlier comment(s) {a}, {b}.")),
        "{}",
        run.stdout
    );
    let methods: Vec<String> = fake.writes().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, ["DELETE", "DELETE", "POST"]);
    let comments = fake.comments();
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0].id, keep);
    assert_eq!(comments[1].body, format!("{MARK}three\n"));
    // Once it is the only marked comment and identical, nothing is written.
    let run = comment(&fake, &token(), &["--behavior", "delete-and-new"], &[&plan]);
    assert!(run.stdout.starts_with("Unchanged"), "{}", run.stdout);
    assert_eq!(fake.writes().len(), 3);
}

#[test]
fn finds_the_marked_comment_on_a_later_page() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    for i in 0..230 {
        fake.seed(&format!("comment {i}"));
    }
    let id = fake.seed(&format!("{MARK}old"));
    let plan = md(&dir, "p.md", "new");
    let run = comment(&fake, &token(), &[], &[&plan]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(&format!("Updated comment {id}")),
        "{}",
        run.stdout
    );
    let lists: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.uri)
        .collect();
    assert_eq!(
        lists,
        [
            "/repos/acme/fleet/issues/7/comments?per_page=100",
            "/repos/acme/fleet/issues/7/comments?per_page=100&page=2",
            "/repos/acme/fleet/issues/7/comments?per_page=100&page=3",
        ]
    );
    assert_eq!(fake.comments().len(), 231, "no second comment");
}

#[test]
fn a_body_over_githubs_limit_is_cut_with_a_note() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    let big = md(
        &dir,
        "big.md",
        &"| tenant.t | create | $1.00 |\n".repeat(4_000),
    );
    let run = comment(&fake, &token(), &[], &[&big]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("The body was cut to GitHub's limit"),
        "{}",
        run.stdout
    );
    let body = &fake.comments()[0].body;
    assert!(body.chars().count() <= 65_536);
    assert!(body.contains("Truncated to GitHub's comment limit"));
}

#[test]
fn a_bad_token_is_a_401_with_method_path_status_body_and_hint() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    let plan = md(&dir, "p.md", "x");
    let wrong = ["gh", "p_", "Wr0ngT0kenWr0ngT0kenWr0ngT0ken012345"].concat();
    let run = comment(&fake, &wrong, &[], &[&plan]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "GitHub API: GET /repos/acme/fleet/issues/7/comments?per_page=100 answered 401 Unauthorized: {\"message\":\"Bad credentials\""
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("hint: GITHUB_TOKEN is missing, expired"),
        "{}",
        run.stderr
    );
    assert!(fake.writes().is_empty());
}

#[test]
fn an_unknown_repository_is_a_404_with_a_hint() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    let plan = md(&dir, "p.md", "x");
    let mut cmd = common::plain_bin();
    let out = cmd
        .env("GITHUB_TOKEN", token())
        .env("GITHUB_REPOSITORY", "acme/other")
        .env("GITHUB_API_URL", &fake.base)
        .args(["comment", "github", "--pr", "7"])
        .arg(&plan)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(
            "GET /repos/acme/other/issues/7/comments?per_page=100 answered 404 Not Found"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("check --repo (acme/other) and --pr"),
        "{stderr}"
    );
}

#[test]
fn a_server_echoing_the_token_never_gets_it_printed() {
    let fake = Fake::start(&token());
    fake.fail_with(500, &format!("internal error for token {}", token()));
    let dir = tempfile::tempdir().unwrap();
    let plan = md(&dir, "p.md", "x");
    // `comment` asserts neither stream holds the token.
    let run = comment(&fake, &token(), &[], &[&plan]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("answered 500 Internal Server Error: internal error for token (redacted)"),
        "{}",
        run.stderr
    );
}

#[test]
fn reads_are_tried_again_after_5xx_but_a_create_is_not() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    let plan = md(&dir, "p.md", "x");
    fake.fail(github_fake::Fail {
        status: 502,
        body: "Bad Gateway".into(),
        method: Some("GET".into()),
        left: Some(2),
    });
    let run = comment(&fake, &token(), &[], &[&plan]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let methods: Vec<String> = fake.requests().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, ["GET", "GET", "GET", "POST"]);
    // A create that failed may have happened: it is reported, not repeated.
    let other = md(&dir, "q.md", "y");
    fake.fail(github_fake::Fail {
        status: 502,
        body: "Bad Gateway".into(),
        method: Some("POST".into()),
        left: None,
    });
    let run = comment(&fake, &token(), &["--behavior", "new"], &[&other]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "POST /repos/acme/fleet/issues/7/comments answered 502 Bad Gateway: Bad Gateway"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: GitHub had a problem"),
        "{}",
        run.stderr
    );
    assert_eq!(fake.writes().len(), 2, "one POST each run");
}

#[test]
fn missing_token_repo_and_insecure_urls_are_refused_before_any_request() {
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    let plan = md(&dir, "p.md", "x");
    let out = common::plain_bin()
        .env_remove("GITHUB_TOKEN")
        .args([
            "comment",
            "github",
            "--pr",
            "7",
            "--repo",
            "acme/fleet",
            "--api-url",
            &fake.base,
        ])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GITHUB_TOKEN is not set"));
    let out = common::plain_bin()
        .env("GITHUB_TOKEN", token())
        .env_remove("GITHUB_REPOSITORY")
        .args(["comment", "github", "--pr", "7", "--api-url", &fake.base])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repo OWNER/NAME"));
    let out = common::plain_bin()
        .env("GITHUB_TOKEN", token())
        .args(["comment", "github", "--pr", "7", "--repo", "acme/fleet"])
        .args(["--api-url", "http://api.example.com"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("plain http is accepted only to a loopback")
    );
    assert!(fake.requests().is_empty());
}

#[test]
fn the_library_call_returns_a_typed_outcome() {
    use flotilla::ops::comment::{Action, Behavior, GithubToken, Options, run};
    let fake = Fake::start(&token());
    let dir = tempfile::tempdir().unwrap();
    for i in 0..150 {
        fake.seed(&format!("remark {i}"));
    }
    let plan = md(&dir, "p.md", "plan");
    let opts = Options {
        files: vec![plan],
        pr: PR,
        repo: Some(format!("{OWNER}/{REPO}").parse().unwrap()),
        api: Some(fake.base.parse().unwrap()),
        token: GithubToken::new(token()),
        marker: "lib".parse().unwrap(),
        behavior: Behavior::Update,
    };
    let first = run(&opts).unwrap();
    assert_eq!(first.action, Action::Created);
    assert_eq!((first.listed, first.pages), (150, 2));
    assert!(first.truncated.is_none() && first.deleted.is_empty());
    let again = run(&opts).unwrap();
    assert_eq!(again.action, Action::Unchanged);
    assert_eq!(again.comment_id, first.comment_id);
    assert_eq!((again.listed, again.pages), (151, 2));
    let e = run(&Options {
        token: None,
        ..opts.clone()
    })
    .unwrap_err();
    assert!(e.to_string().contains("GITHUB_TOKEN is not set"), "{e}");
}
