//! The composite GitHub Action (`action.yml`) run step by step as a runner would, against
//! a throw-away git repository with an `origin`, the freshly built binary (standing for
//! the cached install) and the local fake of GitHub's comment API: a pull request that
//! changes a spec gets one comment with its plan and cost, a second run leaves it as it
//! is, a guardrail fails the check and says so in the comment, and a pull request that
//! changes no spec posts nothing.
//!
//! The runner here is small on purpose: it evaluates the expressions `action.yml` uses
//! (`inputs.*`, `steps.*.outputs.*`, `github.*`, `runner.*`, `||`, `==`, `!=`, `&&`),
//! runs each `run:` step with bash as GitHub does (`-eo pipefail`), reads
//! `$GITHUB_OUTPUT` (plain and heredoc lines), and plays the one `uses:` step, the cache,
//! as a hit. A construct it does not know fails the test, so the action cannot grow one
//! unnoticed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod github_fake;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use flotilla::spec::yaml::{self, Node, Value};
use github_fake::{Fake, OWNER, PR, REPO};

/// A token-shaped test value, assembled at run time.
fn token() -> String {
    ["gh", "s_", "Act10nPr3v13wT0kenF0rTheFake0123456789"].concat()
}

const SPEC: &str = "\
version: 1
org: acme
fleet: preview
naming:
  app: \"acme-{{ tenant.name }}\"
defaults:
  image: registry.fly.io/acme:1.0.0
  region: iad
  size: shared-cpu-1x
  memory: 256mb
tenants:
  - name: alpha
  - name: beta
";

fn scalar(n: &Node) -> Option<&str> {
    match &n.value {
        Value::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

fn get<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
    match &n.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| scalar(k) == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn entries(n: &Node) -> Vec<(String, String)> {
    match &n.value {
        Value::Map(e) => e
            .iter()
            .map(|(k, v)| {
                let v = scalar(v).unwrap_or_else(|| panic!("a non-scalar value in {e:?}"));
                (scalar(k).unwrap().to_string(), v.to_string())
            })
            .collect(),
        _ => panic!("expected a mapping, found {n:?}"),
    }
}

/// A throw-away repository: `origin` (bare) with `main` holding the spec, and a checkout
/// on the pull request's branch.
struct Repo {
    _dir: tempfile::TempDir,
    work: PathBuf,
    home: PathBuf,
    temp: PathBuf,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let temp = dir.path().join("runner-temp");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(temp.join("flotilla-bin/bin")).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_flotilla"),
            temp.join("flotilla-bin/bin/flotilla"),
        )
        .unwrap();
        let origin = dir.path().join("origin.git");
        let work = dir.path().join("work");
        let repo = Repo {
            _dir: dir,
            work,
            home,
            temp,
        };
        repo.git(None, &["init", "--quiet", "--bare", "-b", "main"], &origin);
        repo.git(None, &["init", "--quiet", "-b", "main"], &repo.work);
        repo.git(Some(&repo.work), &["remote", "add", "origin"], &origin);
        repo.write("specs/fleet.yaml", SPEC);
        repo.write("README.md", "the fleet\n");
        repo.commit("the fleet");
        repo.git(
            Some(&repo.work),
            &["push", "--quiet", "origin"],
            Path::new("main"),
        );
        repo.git(
            Some(&repo.work),
            &["checkout", "--quiet", "-b"],
            Path::new("pr"),
        );
        repo
    }

    fn git(&self, cwd: Option<&Path>, args: &[&str], last: &Path) {
        let mut c = Command::new("git");
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .args(args)
            .arg(last);
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    fn write(&self, path: &str, text: &str) {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn commit(&self, msg: &str) {
        self.git(Some(&self.work), &["add", "-A"], Path::new("."));
        self.git(
            Some(&self.work),
            &["commit", "--quiet", "-m"],
            Path::new(msg),
        );
    }
}

/// What a run of the action left: each step's exit status (`None`: skipped) and outputs.
#[derive(Debug)]
struct Run {
    steps: Vec<(String, Option<i32>)>,
    outputs: BTreeMap<String, BTreeMap<String, String>>,
    log: String,
}

impl Run {
    fn status_of(&self, step: &str) -> Option<i32> {
        self.steps
            .iter()
            .find(|(n, _)| n == step)
            .unwrap_or_else(|| panic!("no step {step:?} in {:?}", self.steps))
            .1
    }

    fn output(&self, step: &str, key: &str) -> &str {
        self.outputs
            .get(step)
            .and_then(|o| o.get(key))
            .map(String::as_str)
            .unwrap_or("")
    }
}

struct Runner<'a> {
    inputs: BTreeMap<String, String>,
    github: BTreeMap<&'static str, String>,
    runner: BTreeMap<&'static str, String>,
    outputs: BTreeMap<String, BTreeMap<String, String>>,
    repo: &'a Repo,
    fake: &'a Fake,
}

impl Runner<'_> {
    fn operand(&self, t: &str) -> String {
        let t = t.trim();
        if let Some(lit) = t.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            return lit.to_string();
        }
        let parts: Vec<&str> = t.split('.').collect();
        match parts.as_slice() {
            ["inputs", name] => self
                .inputs
                .get(*name)
                .unwrap_or_else(|| panic!("unknown input {name}"))
                .clone(),
            ["steps", id, "outputs", key] => self
                .outputs
                .get(*id)
                .and_then(|o| o.get(*key))
                .cloned()
                .unwrap_or_default(),
            ["github", rest @ ..] => self
                .github
                .get(rest.join(".").as_str())
                .unwrap_or_else(|| panic!("unknown github.{}", rest.join(".")))
                .clone(),
            ["runner", name] => self
                .runner
                .get(*name)
                .unwrap_or_else(|| panic!("unknown runner.{name}"))
                .clone(),
            _ => panic!("an expression this runner does not know: {t:?}"),
        }
    }

    /// `a || b`, or a single operand, as a string.
    fn value(&self, e: &str) -> String {
        e.split("||")
            .map(|o| self.operand(o))
            .find(|v| !v.is_empty())
            .unwrap_or_default()
    }

    /// An `if:` condition: comparisons joined by `&&`.
    fn condition(&self, e: &str) -> bool {
        e.split("&&").all(|c| {
            if let Some((a, b)) = c.split_once("!=") {
                self.value(a) != self.value(b)
            } else if let Some((a, b)) = c.split_once("==") {
                self.value(a) == self.value(b)
            } else {
                panic!("a condition this runner does not know: {c:?}")
            }
        })
    }

    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${{") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find("}}").expect("a closed expression") + i;
            out.push_str(&self.value(&rest[i + 3..end]));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn run_step(&mut self, id: &str, script: &str, env: &[(String, String)]) -> (i32, String) {
        let out_file = self.repo.temp.join(format!("output-{id}"));
        std::fs::write(&out_file, "").unwrap();
        let script_file = self.repo.temp.join(format!("step-{id}.sh"));
        std::fs::write(&script_file, script).unwrap();
        let mut c = Command::new("bash");
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.repo.home)
            .env("NO_COLOR", "1")
            .env("RUNNER_TEMP", &self.repo.temp)
            .env("GITHUB_OUTPUT", &out_file)
            .env("GITHUB_ACTION_PATH", common::root())
            .env("GITHUB_REPOSITORY", format!("{OWNER}/{REPO}"))
            .env("GITHUB_API_URL", &self.fake.base)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script_file)
            .current_dir(&self.repo.work);
        let out = c.output().unwrap();
        let log = format!(
            "--- {id}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(&out_file).unwrap();
        self.outputs.insert(id.to_string(), parse_outputs(&text));
        (out.status.code().unwrap_or(-1), log)
    }
}

/// `$GITHUB_OUTPUT`'s lines: `key=value` and `key<<DELIM` … `DELIM`.
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((k, delim)) = line.split_once("<<") {
            let mut v = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                v.push(l);
            }
            out.insert(k.to_string(), v.join("\n"));
        } else if let Some((k, v)) = line.split_once('=') {
            out.insert(k.to_string(), v.to_string());
        } else if !line.is_empty() {
            panic!("a line $GITHUB_OUTPUT does not take: {line:?}");
        }
    }
    out
}

/// Runs `action.yml` with `inputs` over its defaults, as for pull request 7 to `main`.
fn run_action(repo: &Repo, fake: &Fake, inputs: &[(&str, &str)]) -> Run {
    let text = std::fs::read(common::root().join("action.yml")).unwrap();
    let doc = yaml::parse(&text).unwrap();
    let mut defaults = BTreeMap::new();
    for (name, decl) in match &get(&doc, "inputs").unwrap().value {
        Value::Map(e) => e.clone(),
        _ => panic!("inputs is not a mapping"),
    } {
        let d = get(&decl, "default").and_then(scalar).unwrap_or("");
        defaults.insert(scalar(&name).unwrap().to_string(), d.to_string());
    }
    let mut runner = Runner {
        inputs: BTreeMap::new(),
        github: BTreeMap::from([
            ("token", token()),
            ("base_ref", "main".to_string()),
            ("action_ref", "v0".to_string()),
            ("event.pull_request.number", PR.to_string()),
        ]),
        runner: BTreeMap::from([
            ("temp", repo.temp.display().to_string()),
            ("os", "Linux".to_string()),
            ("arch", "X64".to_string()),
        ]),
        outputs: BTreeMap::new(),
        repo,
        fake,
    };
    for (k, v) in &defaults {
        let v = runner.substitute(v);
        runner.inputs.insert(k.clone(), v);
    }
    for (k, v) in inputs {
        assert!(defaults.contains_key(*k), "action.yml has no input {k}");
        runner.inputs.insert(k.to_string(), v.to_string());
    }
    let steps = match &get(get(&doc, "runs").unwrap(), "steps").unwrap().value {
        Value::Seq(s) => s.clone(),
        _ => panic!("runs.steps is not a list"),
    };
    let mut run = Run {
        steps: Vec::new(),
        outputs: BTreeMap::new(),
        log: String::new(),
    };
    for (i, step) in steps.iter().enumerate() {
        let name = get(step, "name").and_then(scalar).unwrap().to_string();
        let id = get(step, "id")
            .and_then(scalar)
            .map_or_else(|| format!("step{i}"), str::to_string);
        if let Some(cond) = get(step, "if").and_then(scalar)
            && !runner.condition(cond)
        {
            run.steps.push((name, None));
            continue;
        }
        if let Some(uses) = get(step, "uses").and_then(scalar) {
            assert!(
                uses.starts_with("actions/cache@"),
                "an unknown action: {uses}"
            );
            let with = entries(get(step, "with").unwrap());
            let path = runner.substitute(&with.iter().find(|(k, _)| k == "path").unwrap().1);
            assert_eq!(Path::new(&path), repo.temp.join("flotilla-bin"));
            runner.outputs.insert(
                id,
                BTreeMap::from([("cache-hit".to_string(), "true".to_string())]),
            );
            run.steps.push((name, Some(0)));
            continue;
        }
        let script = runner.substitute(get(step, "run").and_then(scalar).unwrap());
        assert_eq!(get(step, "shell").and_then(scalar), Some("bash"));
        let env: Vec<(String, String)> = get(step, "env")
            .map(entries)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, runner.substitute(&v)))
            .collect();
        let (code, log) = runner.run_step(&id, &script, &env);
        run.log.push_str(&log);
        run.steps.push((name, Some(code)));
        if code != 0 {
            break;
        }
    }
    run.outputs = runner.outputs;
    assert!(
        !run.log.contains(&token()),
        "the token was printed by a step:\n{}",
        run.log
    );
    run
}

#[test]
fn a_pull_request_changing_a_spec_gets_one_comment_with_its_plan_and_cost() {
    let repo = Repo::new();
    repo.write(
        "specs/fleet.yaml",
        &SPEC
            .replace("memory: 256mb", "memory: 512mb")
            .replace("  - name: beta\n", "  - name: beta\n  - name: gamma\n"),
    );
    repo.commit("bigger Machines and a third tenant");
    let fake = Fake::start(&token());
    let inputs = [("pricing-date", "2026-01-01")];
    let run = run_action(&repo, &fake, &inputs);
    assert_eq!(run.output("preview", "status"), "0", "{}", run.log);
    assert_eq!(run.output("preview", "specs"), "specs/fleet.yaml");
    assert_eq!(
        run.status_of("Install flotilla"),
        None,
        "a cache hit skips the install"
    );
    assert_eq!(
        run.status_of("Comment on the pull request"),
        Some(0),
        "{}",
        run.log
    );
    assert_eq!(run.status_of("Fail on guardrails and errors"), None);
    let comments = fake.comments();
    assert_eq!(comments.len(), 1, "{}", run.log);
    let body = &comments[0].body;
    for part in [
        "## flotilla preview",
        "1 changed spec(s), compared with `main`.",
        "### `specs/fleet.yaml`",
        "flotilla plan for `specs/fleet.yaml`",
        "Pricing `2026-01-01`",
        "**Monthly cost: $3.89 → $9.58 per month (+$5.69, +146.5%)**",
        "| `tenant.alpha.machine[0]` | $1.94 | $3.19 | +$1.25 | changed | memory added (0.25 GB): +$1.25 |",
    ] {
        assert!(body.contains(part), "no {part:?} in the comment:\n{body}");
    }
    let writes = fake.writes().len();

    // The same pull request again: the comment already says it all.
    let again = run_action(&repo, &fake, &inputs);
    assert_eq!(again.output("preview", "status"), "0", "{}", again.log);
    assert_eq!(fake.comments(), comments);
    assert_eq!(fake.writes().len(), writes, "{}", again.log);
}

#[test]
fn a_guardrail_fails_the_check_and_says_so_in_the_comment() {
    let repo = Repo::new();
    repo.write(
        "specs/fleet.yaml",
        &SPEC.replace("memory: 256mb", "memory: 2gb"),
    );
    repo.commit("much bigger Machines");
    let fake = Fake::start(&token());
    let run = run_action(
        &repo,
        &fake,
        &[("pricing-date", "2026-01-01"), ("max-increase", "10%")],
    );
    assert_eq!(run.output("preview", "status"), "3", "{}", run.log);
    assert_eq!(
        run.status_of("Comment on the pull request"),
        Some(0),
        "{}",
        run.log
    );
    assert_eq!(
        run.status_of("Fail on guardrails and errors"),
        Some(3),
        "{}",
        run.log
    );
    assert!(
        run.log.contains("::error file=specs/fleet.yaml::"),
        "{}",
        run.log
    );
    let comments = fake.comments();
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0]
            .body
            .contains("**Guardrail exceeded** (`flotilla cost`)"),
        "{}",
        comments[0].body
    );
}

#[test]
fn a_pull_request_that_changes_no_spec_posts_nothing() {
    let repo = Repo::new();
    repo.write("README.md", "the fleet, documented\n");
    repo.commit("docs only");
    let fake = Fake::start(&token());
    let run = run_action(&repo, &fake, &[]);
    assert_eq!(run.output("preview", "status"), "0", "{}", run.log);
    assert_eq!(run.output("preview", "specs"), "");
    assert_eq!(run.status_of("Comment on the pull request"), None);
    assert!(fake.requests().is_empty());
}
