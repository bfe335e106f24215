//! The few calls of GitHub's REST API that pull-request comments need (an issue's
//! comments: list, create, update, delete), over reqwest with rustls. Every failure says
//! the method, the path, the status and the answer's body, with a hint; the token goes
//! only into the `Authorization` header and is cut out of anything shown.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::json;

use super::{ApiBase, GithubToken, Repo};
use crate::diag::Diagnostic;
use crate::ops::Error;

/// Comments per page (GitHub's maximum).
pub const PER_PAGE: u32 = 100;
/// At most this many pages are listed (10,000 comments).
pub const MAX_PAGES: usize = 100;
/// The largest answer read, in bytes (a page of 100 comments of 65,536 characters).
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// How much of an error answer's body a message shows.
const MAX_SHOWN_BODY: usize = 2_000;
const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A comment as listed.
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A client for one repository.
pub struct Client {
    http: reqwest::Client,
    base: ApiBase,
    token: GithubToken,
    repo: Repo,
}

/// Times a read, update or delete is tried again.
const RETRIES: u32 = 2;
/// The longest pause before trying again.
const MAX_PAUSE: Duration = Duration::from_secs(10);

/// What one request came to.
enum Answer {
    /// An HTTP answer.
    Status(StatusCode, reqwest::header::HeaderMap, Vec<u8>),
    /// No answer (connection refused, reset, timed out): worth another try.
    Unsent(Error),
    /// An answer not worth another try (too large).
    Failed(Error),
}

/// `Retry-After` in seconds, when given.
fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A failed call, before it becomes an [`Error`].
struct Failure {
    method: Method,
    path: String,
    what: String,
    hint: String,
}

impl Client {
    pub fn new(base: ApiBase, token: GithubToken, repo: Repo) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("flotilla/", env!("CARGO_PKG_VERSION")))
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                Error::new(Diagnostic::error(format!(
                    "cannot build the HTTP client: {e}"
                )))
            })?;
        Ok(Client {
            http,
            base,
            token,
            repo,
        })
    }

    /// Every comment of pull request `pr`, oldest first, following the `Link` header's
    /// `next` page (only on the API's own origin), at most [`MAX_PAGES`] pages. Returns
    /// the comments and the number of pages read.
    pub async fn list(&self, pr: u64) -> Result<(Vec<Comment>, usize), Error> {
        let first = self.url(&format!(
            "repos/{}/{}/issues/{pr}/comments?per_page={PER_PAGE}",
            self.repo.owner, self.repo.name
        ))?;
        let mut next = Some(first);
        let mut comments = Vec::new();
        let mut pages = 0;
        while let Some(url) = next.take() {
            if pages == MAX_PAGES {
                return Err(Error::new(
                    Diagnostic::error(format!(
                        "pull request #{pr} has more than {} comments; flotilla lists at most {MAX_PAGES} pages",
                        MAX_PAGES * PER_PAGE as usize
                    ))
                    .hint("use --behavior delete-and-new once, or a new --marker"),
                ));
            }
            let (headers, bytes) = self.send(Method::GET, url.clone(), None).await?;
            pages += 1;
            let page: Vec<Comment> = serde_json::from_slice(&bytes).map_err(|e| {
                self.error(Failure {
                    method: Method::GET,
                    path: path_of(&url),
                    what: format!("answered with a body that is not a list of comments ({e})"),
                    hint: "check --api-url: it must be GitHub's REST API".into(),
                })
            })?;
            comments.extend(page);
            next = match next_link(&headers) {
                Some(link) => Some(self.same_origin(&link, &url)?),
                None => None,
            };
        }
        Ok((comments, pages))
    }

    pub async fn create(&self, pr: u64, body: &str) -> Result<Comment, Error> {
        let url = self.url(&format!(
            "repos/{}/{}/issues/{pr}/comments",
            self.repo.owner, self.repo.name
        ))?;
        self.send_comment(Method::POST, url, body).await
    }

    pub async fn update(&self, id: u64, body: &str) -> Result<Comment, Error> {
        let url = self.url(&format!(
            "repos/{}/{}/issues/comments/{id}",
            self.repo.owner, self.repo.name
        ))?;
        self.send_comment(Method::PATCH, url, body).await
    }

    pub async fn delete(&self, id: u64) -> Result<(), Error> {
        let url = self.url(&format!(
            "repos/{}/{}/issues/comments/{id}",
            self.repo.owner, self.repo.name
        ))?;
        self.send(Method::DELETE, url, None).await.map(|_| ())
    }

    async fn send_comment(&self, method: Method, url: Url, body: &str) -> Result<Comment, Error> {
        let path = path_of(&url);
        let (_, bytes) = self
            .send(method.clone(), url, Some(json!({ "body": body })))
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            self.error(Failure {
                method,
                path,
                what: format!("answered with a body that is not a comment ({e})"),
                hint: "check --api-url: it must be GitHub's REST API".into(),
            })
        })
    }

    fn url(&self, rest: &str) -> Result<Url, Error> {
        self.base.join(rest).map_err(|e| {
            Error::new(Diagnostic::error(format!(
                "cannot form a URL from {} and {rest}: {e}",
                self.base
            )))
        })
    }

    /// A `Link` target on another origin would receive the token: refused.
    fn same_origin(&self, link: &str, from: &Url) -> Result<Url, Error> {
        let url = Url::parse(link)
            .ok()
            .filter(|u| u.origin() == from.origin());
        url.ok_or_else(|| {
            self.error(Failure {
                method: Method::GET,
                path: path_of(from),
                what: format!(
                    "answered with a next page on another origin ({}), which is not followed",
                    crate::spec::credentials::redact(link)
                ),
                hint: "check --api-url: pages must stay on the API's own host".into(),
            })
        })
    }

    /// Sends a request and reads the answer (bounded); a status other than 2xx is an
    /// error naming the method, path, status and body. Reads, updates and deletes are
    /// tried again after a 429, a 5xx or a failed connection ([`RETRIES`] times, pausing
    /// as `Retry-After` says, at most [`MAX_PAUSE`]); a create is not, since its effect
    /// may have happened.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<serde_json::Value>,
    ) -> Result<(reqwest::header::HeaderMap, Vec<u8>), Error> {
        let path = path_of(&url);
        let idempotent = method != Method::POST;
        let mut attempt = 0;
        loop {
            let answer = self.send_once(&method, &url, body.as_ref()).await;
            let again = idempotent
                && attempt < RETRIES
                && match &answer {
                    Answer::Unsent(_) => true,
                    Answer::Failed(_) => false,
                    Answer::Status(s, _, _) => {
                        s.is_server_error() || *s == StatusCode::TOO_MANY_REQUESTS
                    }
                };
            if again {
                let pause = match &answer {
                    Answer::Status(_, h, _) => retry_after(h),
                    _ => None,
                };
                let backoff = Duration::from_millis(250 << attempt);
                tokio::time::sleep(pause.unwrap_or(backoff).min(MAX_PAUSE)).await;
                attempt += 1;
                continue;
            }
            return match answer {
                Answer::Status(s, h, b) if s.is_success() => Ok((h, b)),
                Answer::Status(s, _, b) => {
                    let shown = String::from_utf8_lossy(&b);
                    let shown: String = shown.chars().take(MAX_SHOWN_BODY).collect();
                    Err(self.error(Failure {
                        method,
                        path,
                        what: format!("answered {s}: {}", shown.trim()),
                        hint: hint_for(s, &self.repo),
                    }))
                }
                Answer::Unsent(e) | Answer::Failed(e) => Err(e),
            };
        }
    }

    /// One request; the answer read up to [`MAX_RESPONSE_BYTES`].
    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
    ) -> Answer {
        let path = path_of(url);
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(self.token.expose())
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(b) = body {
            req = req.json(b);
        }
        let fail = |what: String, hint: String| Failure {
            method: method.clone(),
            path: path.clone(),
            what,
            hint,
        };
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Answer::Unsent(self.error(fail(
                    format!("could not be sent: {}", without_url(&e)),
                    format!("check that {} is reachable", self.base),
                )));
            }
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let mut bytes = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if bytes.len() + c.len() > MAX_RESPONSE_BYTES {
                        return Answer::Failed(self.error(fail(
                            format!("answered with more than {MAX_RESPONSE_BYTES} bytes"),
                            "check --api-url".into(),
                        )));
                    }
                    bytes.extend_from_slice(&c);
                }
                Ok(None) => break,
                Err(e) => {
                    return Answer::Unsent(self.error(fail(
                        format!("answer could not be read: {}", without_url(&e)),
                        "try again".into(),
                    )));
                }
            }
        }
        Answer::Status(status, headers, bytes)
    }

    /// The failure as an error; the token is cut out of every text in it.
    fn error(&self, f: Failure) -> Error {
        let clean = |s: &str| {
            let s = s.replace(self.token.expose(), "(redacted)");
            crate::spec::credentials::redact(&s).into_owned()
        };
        Error::new(
            Diagnostic::error(clean(&format!(
                "GitHub API: {} {} {}",
                f.method, f.path, f.what
            )))
            .hint(clean(&f.hint)),
        )
    }
}

/// The path and query of a URL, as messages show it.
fn path_of(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// A reqwest error's text without its URL (the path is already in the message).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(&format!(" ({u})"), "").replace(u.as_str(), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    s
}

/// What to do about a refused call.
fn hint_for(status: StatusCode, repo: &Repo) -> String {
    match status.as_u16() {
        401 => "GITHUB_TOKEN is missing, expired or not a token; in a workflow pass \
                `GITHUB_TOKEN: ${{ github.token }}` in `env`"
            .to_string(),
        403 => "the token may not write comments: give the workflow \
                `permissions: pull-requests: write` (a fork's pull request gets a read-only token)"
            .to_string(),
        404 => format!(
            "check --repo ({repo}) and --pr; a token without access to a private repository \
             also gets 404"
        ),
        422 => "GitHub refused the comment's content".to_string(),
        429 => "rate limited: try again later".to_string(),
        s if s >= 500 => "GitHub had a problem: try again".to_string(),
        _ => "check --api-url, --repo and --pr".to_string(),
    }
}

/// The `next` target of a `Link` header (`<URL>; rel="next", <URL>; rel="last"`).
pub fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let value = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    parse_next(value)
}

fn parse_next(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let v = r#"<https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=5>; rel="last""#;
        assert_eq!(
            parse_next(v).as_deref(),
            Some("https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=2")
        );
        let last = r#"<https://x/c?page=1>; rel="prev", <https://x/c?page=1>; rel="first""#;
        assert_eq!(parse_next(last), None);
        assert_eq!(parse_next("garbage"), None);
    }

    #[test]
    fn hints_name_what_to_check() {
        let repo: Repo = "o/r".parse().unwrap();
        assert!(hint_for(StatusCode::UNAUTHORIZED, &repo).contains("GITHUB_TOKEN"));
        assert!(hint_for(StatusCode::NOT_FOUND, &repo).contains("--repo (o/r)"));
        assert!(hint_for(StatusCode::FORBIDDEN, &repo).contains("pull-requests: write"));
    }
}
