//! `comment github`: posts markdown files (`plan --format markdown`, `cost --format
//! markdown`) as one pull-request comment, found again on the next run by a hidden
//! marker (`<!-- flotilla:KEY -->`), so that a pull request carries one up-to-date
//! preview per marker instead of a new comment per push.
//!
//! The body is assembled and checked here (pure: [`compose`], [`decide`]); the calls to
//! GitHub's REST API are in `github`. An unchanged body writes nothing.

mod github;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use reqwest::Url;
use serde::Serialize;

use crate::diag::Diagnostic;
use crate::ops::Error;

pub use github::{MAX_PAGES, PER_PAGE};

/// GitHub's limit on a comment's body, in characters.
pub const MAX_BODY_CHARS: usize = 65_536;
/// The largest markdown file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The API used when none is named.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The marker key used when none is named.
pub const DEFAULT_MARKER: &str = "flotilla";

/// A GitHub token; `Debug` never shows it.
#[derive(Clone)]
pub struct GithubToken(String);

impl GithubToken {
    /// A token; an empty or blank one is `None`.
    pub fn new(token: impl Into<String>) -> Option<GithubToken> {
        let t: String = token.into();
        (!t.trim().is_empty()).then(|| GithubToken(t.trim().to_string()))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GithubToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GithubToken(<redacted>)")
    }
}

/// A repository, `OWNER/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repo {
    pub owner: String,
    pub name: String,
}

impl FromStr for Repo {
    type Err = String;
    fn from_str(s: &str) -> Result<Repo, String> {
        let ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 100
                && p != "."
                && p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match s.split_once('/') {
            Some((owner, name)) if ok(owner) && ok(name) => Ok(Repo {
                owner: owner.to_string(),
                name: name.to_string(),
            }),
            _ => Err(format!(
                "`{s}` is not a repository: expected OWNER/NAME (letters, digits, `-`, `_`, `.`)"
            )),
        }
    }
}

impl fmt::Display for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The REST API's base URL: https, or plain http to a loopback address only (a test
/// server), never with credentials, a query or a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase(Url);

impl FromStr for ApiBase {
    type Err = String;
    fn from_str(s: &str) -> Result<ApiBase, String> {
        let mut url = Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
        let host = url.host_str().unwrap_or_default();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(format!(
                    "`{s}`: plain http is accepted only to a loopback address; use https"
                ));
            }
            other => return Err(format!("`{s}`: the scheme must be https, not {other}")),
        }
        if host.is_empty() || !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "`{s}`: expected https://HOST[/PATH], without credentials"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("`{s}`: the API URL takes no query or fragment"));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(ApiBase(url))
    }
}

impl ApiBase {
    fn join(&self, rest: &str) -> Result<Url, String> {
        self.0.join(rest).map_err(|e| e.to_string())
    }
}

impl fmt::Display for ApiBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

/// A marker key: letters, digits, `.`, `_` and `-`, at most 64 (it ends up inside an
/// HTML comment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarkerKey(String);

impl FromStr for MarkerKey {
    type Err = String;
    fn from_str(s: &str) -> Result<MarkerKey, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(MarkerKey(s.to_string()))
        } else {
            Err(format!(
                "`{s}` is not a marker key: 1–64 letters, digits, `.`, `_` or `-`"
            ))
        }
    }
}

impl Default for MarkerKey {
    fn default() -> MarkerKey {
        MarkerKey(DEFAULT_MARKER.to_string())
    }
}

impl MarkerKey {
    /// The hidden line a comment is found by: `<!-- flotilla:KEY -->`.
    pub fn marker(&self) -> String {
        format!("<!-- flotilla:{} -->", self.0)
    }
}

impl fmt::Display for MarkerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to do with an existing comment carrying the marker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behavior {
    /// Edit the first marked comment in place (create one when there is none).
    #[default]
    Update,
    /// Add a new comment, leaving earlier ones.
    New,
    /// Delete every marked comment, then add a new one (it appears last).
    DeleteAndNew,
}

/// What to post, where.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Markdown files, concatenated in order (separated by a blank line).
    pub files: Vec<PathBuf>,
    /// The pull request's number.
    pub pr: u64,
    pub repo: Option<Repo>,
    /// The REST API (`--api-url`, `GITHUB_API_URL`); `None`: [`DEFAULT_API_URL`].
    pub api: Option<ApiBase>,
    /// `GITHUB_TOKEN`, read by the caller.
    pub token: Option<GithubToken>,
    pub marker: MarkerKey,
    pub behavior: Behavior,
}

/// What happened to the comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    /// The marked comment already said exactly this: nothing was written.
    Unchanged,
}

/// A body cut to GitHub's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Truncation {
    /// Characters of the files shown.
    pub shown: usize,
    /// Characters of the files.
    pub total: usize,
}

/// The comment posted, updated or left alone.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub action: Action,
    pub repo: Repo,
    pub pr: u64,
    pub marker: MarkerKey,
    pub comment_id: u64,
    pub url: Option<String>,
    /// Marked comments deleted first (`delete-and-new`).
    pub deleted: Vec<u64>,
    pub truncated: Option<Truncation>,
    /// Comments listed, and the pages they came in.
    pub listed: usize,
    pub pages: usize,
}

/// The comment's body: the marker line, then the files' texts separated by a blank line,
/// cut (at a line end when one is near) to [`MAX_BODY_CHARS`] with a closing note.
pub fn compose(marker: &MarkerKey, texts: &[String]) -> (String, Option<Truncation>) {
    let head = format!("{}\n", marker.marker());
    let joined = texts
        .iter()
        .map(|t| t.trim_end_matches('\n'))
        .collect::<Vec<_>>()
        .join("\n\n");
    let total = joined.chars().count();
    if head.chars().count() + total < MAX_BODY_CHARS {
        return (format!("{head}{joined}\n"), None);
    }
    // Room for the note: its figures have at most 20 digits each.
    let note = |shown: usize| {
        format!(
            "\n\n---\n*Truncated to GitHub's comment limit: {shown} of {total} characters shown; \
             the full output is in the job's log.*\n"
        )
    };
    let budget = MAX_BODY_CHARS - head.chars().count() - note(usize::MAX).chars().count();
    let cut = joined
        .char_indices()
        .nth(budget)
        .map_or(joined.len(), |(i, _)| i);
    let mut kept = &joined[..cut];
    if let Some(nl) = kept.rfind('\n')
        && kept.len() - nl < 2_000
    {
        kept = &kept[..nl];
    }
    let shown = kept.chars().count();
    let body = format!("{head}{kept}{}", note(shown));
    (body, Some(Truncation { shown, total }))
}

/// The writes to make, given the comments carrying the marker (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Update(u64),
    Skip(u64),
    DeleteThenCreate(Vec<u64>),
}

/// Decides the writes: an identical body is never written again (`update`: the first
/// marked comment; `new`: the last; `delete-and-new`: a single marked comment).
pub fn decide(behavior: Behavior, marked: &[(u64, &str)], body: &str) -> Step {
    let same = |b: &str| b.replace("\r\n", "\n") == body;
    match behavior {
        Behavior::Update => match marked.first() {
            Some((id, b)) if same(b) => Step::Skip(*id),
            Some((id, _)) => Step::Update(*id),
            None => Step::Create,
        },
        Behavior::New => match marked.last() {
            Some((id, b)) if same(b) => Step::Skip(*id),
            _ => Step::Create,
        },
        Behavior::DeleteAndNew => match marked {
            [] => Step::Create,
            [(id, b)] if same(b) => Step::Skip(*id),
            _ => Step::DeleteThenCreate(marked.iter().map(|(id, _)| *id).collect()),
        },
    }
}

/// Reads the files (bounded, regular files only, UTF-8).
fn read_files(files: &[PathBuf]) -> Result<Vec<String>, Error> {
    if files.is_empty() {
        return Err(Error::new(
            Diagnostic::error("no markdown file to post")
                .hint("pass the files `flotilla plan --format markdown` and `flotilla cost --format markdown` wrote"),
        ));
    }
    files
        .iter()
        .map(|p| {
            let file = p.display().to_string();
            let bytes = crate::fsutil::read_bounded(p, MAX_FILE_BYTES).map_err(|e| {
                Error::new(
                    Diagnostic::error(e.to_string())
                        .file(file.clone())
                        .hint(e.hint()),
                )
            })?;
            String::from_utf8(bytes).map_err(|_| {
                Error::new(
                    Diagnostic::error("the file is not UTF-8 text")
                        .file(file)
                        .hint("pass markdown written by flotilla"),
                )
            })
        })
        .collect()
}

/// The options' repository and token, or what is missing.
fn required(opts: &Options) -> Result<(Repo, GithubToken), Error> {
    let repo = opts.repo.clone().ok_or_else(|| {
        Error::new(
            Diagnostic::error("no repository to comment in")
                .hint("pass --repo OWNER/NAME, or set GITHUB_REPOSITORY (GitHub Actions sets it)"),
        )
    })?;
    let token = opts.token.clone().ok_or_else(|| {
        Error::new(Diagnostic::error("GITHUB_TOKEN is not set").hint(
            "export a token that may write pull-request comments; in a workflow, \
             `env: GITHUB_TOKEN: ${{ github.token }}`",
        ))
    })?;
    if opts.pr == 0 {
        return Err(Error::new(
            Diagnostic::error("--pr 0 is not a pull request")
                .hint("pass the pull request's number"),
        ));
    }
    Ok((repo, token))
}

/// `comment github --pr N FILE…`.
pub fn run(opts: &Options) -> Result<Outcome, Error> {
    let (repo, token) = required(opts)?;
    let texts = read_files(&opts.files)?;
    let (body, truncated) = compose(&opts.marker, &texts);
    let api = match &opts.api {
        Some(a) => a.clone(),
        None => DEFAULT_API_URL
            .parse()
            .map_err(|e: String| Error::new(Diagnostic::error(e)))?,
    };
    let client = github::Client::new(api, token, repo.clone())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(Diagnostic::error(format!("cannot start the runtime: {e}"))))?;
    rt.block_on(async {
        let (comments, pages) = client.list(opts.pr).await?;
        let marker = opts.marker.marker();
        let marked: Vec<(u64, &str)> = comments
            .iter()
            .filter_map(|c| Some((c.id, c.body.as_deref()?)))
            .filter(|(_, b)| b.contains(&marker))
            .collect();
        let url_of = |id: u64| {
            comments
                .iter()
                .find(|c| c.id == id)
                .and_then(|c| c.html_url.clone())
        };
        let mut deleted = Vec::new();
        let (action, posted) = match decide(opts.behavior, &marked, &body) {
            Step::Skip(id) => (Action::Unchanged, (id, url_of(id))),
            Step::Update(id) => {
                let c = client.update(id, &body).await?;
                (Action::Updated, (c.id, c.html_url))
            }
            Step::Create => {
                let c = client.create(opts.pr, &body).await?;
                (Action::Created, (c.id, c.html_url))
            }
            Step::DeleteThenCreate(ids) => {
                for id in ids {
                    client.delete(id).await?;
                    deleted.push(id);
                }
                let c = client.create(opts.pr, &body).await?;
                (Action::Created, (c.id, c.html_url))
            }
        };
        Ok(Outcome {
            action,
            repo: repo.clone(),
            pr: opts.pr,
            marker: opts.marker.clone(),
            comment_id: posted.0,
            url: posted.1,
            deleted,
            truncated,
            listed: comments.len(),
            pages,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_is_https_or_loopback_http() {
        assert!("https://api.github.com".parse::<ApiBase>().is_ok());
        let ghes: ApiBase = "https://ghe.example.com/api/v3".parse().unwrap();
        assert_eq!(
            ghes.join("repos/o/r").unwrap().as_str(),
            "https://ghe.example.com/api/v3/repos/o/r"
        );
        assert!("http://127.0.0.1:8080".parse::<ApiBase>().is_ok());
        assert!("http://[::1]:8080".parse::<ApiBase>().is_ok());
        assert!("http://localhost:1".parse::<ApiBase>().is_ok());
        let e = "http://api.github.com".parse::<ApiBase>().unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        assert!("ftp://x".parse::<ApiBase>().is_err());
        assert!("https://u:p@x".parse::<ApiBase>().is_err());
        assert!("https://x/?a=b".parse::<ApiBase>().is_err());
        let default: ApiBase = DEFAULT_API_URL.parse().unwrap();
        assert_eq!(default.to_string(), DEFAULT_API_URL);
    }

    #[test]
    fn repos_and_markers_are_checked() {
        let r: Repo = "acme/fleet.specs".parse().unwrap();
        assert_eq!(r.to_string(), "acme/fleet.specs");
        for bad in ["acme", "/x", "a/", "a/b/c", "a/..", "a b/c"] {
            assert!(bad.parse::<Repo>().is_err(), "{bad}");
        }
        assert_eq!(MarkerKey::default().marker(), "<!-- flotilla:flotilla -->");
        assert!("staging-eu".parse::<MarkerKey>().is_ok());
        assert!("x -->".parse::<MarkerKey>().is_err());
        assert!("".parse::<MarkerKey>().is_err());
    }

    #[test]
    fn body_is_marker_then_files() {
        let (body, t) = compose(
            &MarkerKey::default(),
            &["# Plan\n".into(), "# Cost\n\n".into()],
        );
        assert_eq!(body, "<!-- flotilla:flotilla -->\n# Plan\n\n# Cost\n");
        assert_eq!(t, None);
    }

    #[test]
    fn long_bodies_are_cut_at_a_line_with_a_note() {
        let line = "| tenant.x | create | $1.00 |\n";
        let text = line.repeat(5_000);
        let (body, t) = compose(&MarkerKey::default(), std::slice::from_ref(&text));
        let t = t.unwrap();
        assert!(body.chars().count() <= MAX_BODY_CHARS);
        assert_eq!(t.total, text.trim_end().chars().count());
        assert!(t.shown < t.total);
        assert!(body.contains(&format!("{} of {} characters shown", t.shown, t.total)));
        let kept = body.split("\n\n---\n").next().unwrap();
        assert!(kept.ends_with("$1.00 |"), "cut at a line end");
        // Multi-byte characters are counted as characters, never split.
        let (body, t) = compose(&MarkerKey::default(), &["é".repeat(70_000)]);
        assert!(t.is_some() && body.chars().count() <= MAX_BODY_CHARS);
    }

    #[test]
    fn decisions_skip_identical_bodies() {
        let b = "<!-- flotilla:flotilla -->\nx\n";
        assert_eq!(decide(Behavior::Update, &[], b), Step::Create);
        assert_eq!(
            decide(Behavior::Update, &[(1, b), (2, "old")], b),
            Step::Skip(1)
        );
        assert_eq!(
            decide(Behavior::Update, &[(1, "old"), (2, b)], b),
            Step::Update(1)
        );
        assert_eq!(
            decide(
                Behavior::Update,
                &[(1, "<!-- flotilla:flotilla -->\r\nx\r\n")],
                b
            ),
            Step::Skip(1)
        );
        assert_eq!(decide(Behavior::New, &[(1, "old")], b), Step::Create);
        assert_eq!(
            decide(Behavior::New, &[(1, "old"), (2, b)], b),
            Step::Skip(2)
        );
        assert_eq!(decide(Behavior::DeleteAndNew, &[(1, b)], b), Step::Skip(1));
        assert_eq!(
            decide(Behavior::DeleteAndNew, &[(1, b), (2, "old")], b),
            Step::DeleteThenCreate(vec![1, 2])
        );
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = GithubToken::new(["secret", "value"].concat()).unwrap();
        assert!(!format!("{t:?}").contains("secretvalue"));
        assert!(GithubToken::new("  ").is_none());
    }
}
