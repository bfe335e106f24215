//! Finds credentials pasted into a spec, a saved plan or an observed state, and keeps them
//! out of everything flotilla prints or writes.
//!
//! [`find`] knows the shapes of the common tokens (Fly.io macaroons and OAuth tokens with
//! or without the `FlyV1` scheme and its separator, GitHub, Anthropic, OpenAI, AWS access
//! keys, Slack, GitLab, Stripe, PEM private keys, JSON Web Tokens) and passwords inside
//! URLs (`scheme://user:password@host`, unless the password is empty or a template or
//! placeholder), anywhere inside a string; [`looks_like_credential`] adds opaque
//! high-entropy literals under secret-like keys. A match is reported by its [`Kind`] and
//! position, never by its value, and [`redact`] replaces every match inside a text, so
//! that a diagnostic quoting a rendered name or a live value cannot echo a token.
//! [`scan_document`] applies all of it to a YAML document: every scalar, every key, and
//! the raw text (comments, tags, anchors, anything the tree does not hold).

use std::borrow::Cow;
use std::collections::HashSet;

use crate::diag::{Diagnostic, Diagnostics};
use crate::resource::{META_SECRETS, Resource, Spec};
use crate::spec::yaml::{self, Node};

/// What a match replaces in any text flotilla shows.
pub const REDACTED: &str = "(redacted)";

/// The kind of credential a string looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Fly,
    GitHub,
    Anthropic,
    OpenAi,
    Aws,
    Slack,
    GitLab,
    Stripe,
    PrivateKey,
    Jwt,
    UrlPassword,
    HighEntropy,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Fly => "a Fly.io API token",
            Kind::GitHub => "a GitHub token",
            Kind::Anthropic => "an Anthropic API key",
            Kind::OpenAi => "an OpenAI-style API key",
            Kind::Aws => "an AWS access key",
            Kind::Slack => "a Slack token",
            Kind::GitLab => "a GitLab token",
            Kind::Stripe => "a Stripe secret key",
            Kind::PrivateKey => "a private key",
            Kind::Jwt => "a JSON Web Token",
            Kind::UrlPassword => "a password inside a URL",
            Kind::HighEntropy => "a high-entropy value under a secret-like key",
        })
    }
}

/// One credential inside a text: its kind and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

impl Found {
    /// The matched text (for redaction and de-duplication, never for display).
    pub fn text<'a>(&self, within: &'a str) -> &'a str {
        within.get(self.start..self.end).unwrap_or("")
    }
}

/// Token prefixes with their kind and the fewest token characters that must follow.
const PREFIXES: [(&str, Kind, usize); 22] = [
    ("fm1_", Kind::Fly, 20),
    ("fm1r_", Kind::Fly, 20),
    ("fm1a_", Kind::Fly, 20),
    ("fm2_", Kind::Fly, 20),
    ("fo1_", Kind::Fly, 20),
    (concat!("sk-", "ant-"), Kind::Anthropic, 16),
    ("sk-proj-", Kind::OpenAi, 16),
    (concat!("gh", "p_"), Kind::GitHub, 30),
    ("gho_", Kind::GitHub, 30),
    ("ghu_", Kind::GitHub, 30),
    ("ghs_", Kind::GitHub, 30),
    ("ghr_", Kind::GitHub, 30),
    ("github_pat_", Kind::GitHub, 30),
    ("glpat-", Kind::GitLab, 20),
    ("sk_live_", Kind::Stripe, 16),
    ("rk_live_", Kind::Stripe, 16),
    ("xoxb-", Kind::Slack, 10),
    ("xoxp-", Kind::Slack, 10),
    ("xoxa-", Kind::Slack, 10),
    ("xoxr-", Kind::Slack, 10),
    ("xoxs-", Kind::Slack, 10),
    ("xoxe-", Kind::Slack, 10),
];

/// Every credential inside `v`, in order, not overlapping.
pub fn find_all(v: &str) -> Vec<Found> {
    if !may_hold_credential(v.as_bytes()) {
        return Vec::new();
    }
    let mut all = Vec::new();
    for (prefix, kind, min_tail) in PREFIXES {
        prefixed(v, prefix, kind, min_tail, &mut all);
    }
    generic_openai(v, &mut all);
    aws_keys(v, &mut all);
    private_keys(v, &mut all);
    jwts(v, &mut all);
    url_passwords(v, &mut all);
    all.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
    let mut out: Vec<Found> = Vec::with_capacity(all.len());
    for f in all {
        match out.last_mut() {
            Some(last) if f.start < last.end => last.end = last.end.max(f.end),
            _ => out.push(f),
        }
    }
    out
}

/// Whether `b` holds the start of any shape [`find_all`] looks for: a token prefix
/// ([`PREFIXES`], `sk-`), an AWS key id's prefix, `-----BEGIN`, `eyJ` or `://`. One pass over the
/// bytes, so that the many short strings of a large fleet (names, images, env values)
/// skip the per-shape searches.
fn may_hold_credential(b: &[u8]) -> bool {
    // The first bytes of the shapes below: most bytes of a name or value are none of
    // them, so the window test runs rarely.
    const FIRST: [bool; 256] = {
        let mut t = [false; 256];
        let starts = b"fsrgxA-e:";
        let mut i = 0;
        while i < starts.len() {
            t[starts[i] as usize] = true;
            i += 1;
        }
        t
    };
    b.windows(3).any(|w| {
        FIRST[w[0] as usize]
            && matches!(
                w,
                [b'f', b'm' | b'o', _]
                    | [b's' | b'r', b'k', b'-' | b'_']
                    | [b'g', b'h' | b'l', _]
                    | [b'g', b'i', b't']
                    | [b'x', b'o', b'x']
                    | [b'A', b'K' | b'S', b'I']
                    | [b'-', b'-', b'-']
                    | [b'e', b'y', b'J']
                    | [b':', b'/', b'/']
            )
    })
}

/// The first credential inside `v`, if any.
pub fn find(v: &str) -> Option<Found> {
    find_all(v).into_iter().next()
}

/// What a string looks like, if it looks like a credential: a known token shape or a
/// password in a URL anywhere inside it, or (under a secret-like `key`) an opaque
/// high-entropy literal.
pub fn looks_like_credential(value: &str, key: Option<&str>) -> Option<Kind> {
    if let Some(f) = find(value) {
        return Some(f.kind);
    }
    high_entropy_under(value, key)
}

/// `text` with every credential inside it replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let found = find_all(text);
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in found {
        out.push_str(&text[at..f.start]);
        out.push_str(REDACTED);
        at = f.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Redacts, in place, every credential in a diagnostic's texts.
pub fn redact_diagnostic(d: &mut Diagnostic) {
    let scrub = |s: &mut String| {
        if let Cow::Owned(r) = redact(s) {
            *s = r;
        }
    };
    scrub(&mut d.message);
    for field in [&mut d.path, &mut d.address, &mut d.hint, &mut d.file]
        .into_iter()
        .flatten()
    {
        scrub(field);
    }
}

/// Redacts every diagnostic of a list; see [`redact_diagnostic`].
pub fn redact_all(diags: &mut Diagnostics) {
    diags.0.iter_mut().for_each(redact_diagnostic);
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-')
}

/// Fly's macaroons are base64: `+`, `/` and `=` belong to the token too.
fn is_fly_char(c: u8) -> bool {
    is_token_char(c) || matches!(c, b'+' | b'/' | b'=')
}

/// Whether a match may start at `at`: not in the middle of a word, except right after
/// Fly's `FlyV1` scheme written without its separator.
fn at_boundary(b: &[u8], at: usize) -> bool {
    at == 0 || !b[at - 1].is_ascii_alphanumeric() || b[..at].ends_with(b"FlyV1")
}

/// Where a Fly token's match starts: its `FlyV1` scheme and separator when present.
fn fly_start(v: &str, at: usize) -> usize {
    let before = &v[..at];
    for sep in ["", " ", "+", "%20", "\t"] {
        if let Some(s) = before.strip_suffix(sep)
            && let Some(s) = s.strip_suffix("FlyV1")
        {
            return s.len();
        }
    }
    at
}

fn prefixed(v: &str, prefix: &str, kind: Kind, min_tail: usize, out: &mut Vec<Found>) {
    let b = v.as_bytes();
    let class = if kind == Kind::Fly {
        is_fly_char
    } else {
        is_token_char
    };
    for (at, _) in v.match_indices(prefix) {
        if !at_boundary(b, at) {
            continue;
        }
        let tail = b[at + prefix.len()..]
            .iter()
            .take_while(|c| class(**c))
            .count();
        if tail >= min_tail {
            let start = if kind == Kind::Fly {
                fly_start(v, at)
            } else {
                at
            };
            out.push(Found {
                kind,
                start,
                end: at + prefix.len() + tail,
            });
        }
    }
}

/// `sk-` and 32 or more token characters that look generated (letters and digits mixed),
/// so that words such as `sk-` in `task-runner` or a long hyphenated name do not match.
fn generic_openai(v: &str, out: &mut Vec<Found>) {
    let b = v.as_bytes();
    for (at, _) in v.match_indices("sk-") {
        if !at_boundary(b, at) {
            continue;
        }
        let tail = &v[at + 3..];
        let n = tail.bytes().take_while(|c| is_token_char(*c)).count();
        if n >= 32 && char_classes(&tail[..n]) >= 2 && tail[..n].bytes().any(|c| c.is_ascii_digit())
        {
            out.push(Found {
                kind: Kind::OpenAi,
                start: at,
                end: at + 3 + n,
            });
        }
    }
}

fn aws_keys(v: &str, out: &mut Vec<Found>) {
    let b = v.as_bytes();
    for p in [concat!("AK", "IA"), concat!("AS", "IA")] {
        for (at, _) in v.match_indices(p) {
            let tail = &b[at + 4..];
            if tail.len() >= 16
                && tail[..16]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && tail.get(16).is_none_or(|c| !c.is_ascii_alphanumeric())
                && (at == 0 || !b[at - 1].is_ascii_alphanumeric())
            {
                out.push(Found {
                    kind: Kind::Aws,
                    start: at,
                    end: at + 20,
                });
            }
        }
    }
}

/// A PEM private key block, from `-----BEGIN` to its `-----END … PRIVATE KEY-----` line
/// (or the end of the text).
fn private_keys(v: &str, out: &mut Vec<Found>) {
    for (at, _) in v.match_indices("-----BEGIN") {
        let rest = &v[at..];
        let line_end = rest.find('\n').unwrap_or(rest.len());
        if !rest[..line_end].contains("PRIVATE KEY") {
            continue;
        }
        let end = rest
            .find("-----END")
            .and_then(|e| rest[e + 8..].find("-----").map(|x| e + 8 + x + 5))
            .unwrap_or(rest.len());
        out.push(Found {
            kind: Kind::PrivateKey,
            start: at,
            end: at + end,
        });
    }
}

/// Three base64url parts separated by dots, the first two starting `eyJ` (`{"`).
fn jwts(v: &str, out: &mut Vec<Found>) {
    let b = v.as_bytes();
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    for (at, _) in v.match_indices("eyJ") {
        if at > 0 && (b64(b[at - 1]) || b[at - 1] == b'.') {
            continue;
        }
        let mut end = at;
        let mut parts = 0;
        loop {
            let n = b[end..].iter().take_while(|c| b64(**c)).count();
            if n < 8 {
                break;
            }
            parts += 1;
            end += n;
            if parts == 3 || b.get(end) != Some(&b'.') {
                break;
            }
            end += 1;
        }
        let second_is_json = v[at..]
            .split('.')
            .nth(1)
            .is_some_and(|p| p.starts_with("eyJ"));
        if parts == 3 && second_is_json {
            out.push(Found {
                kind: Kind::Jwt,
                start: at,
                end,
            });
        }
    }
}

/// The password of every `scheme://user:password@host` inside `v`, unless it is empty or
/// a template or placeholder. Only the password is matched, so a redacted URL still
/// shows its scheme, user and host.
fn url_passwords(v: &str, out: &mut Vec<Found>) {
    for (sep, _) in v.match_indices("://") {
        let scheme_ok = v[..sep]
            .bytes()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !scheme_ok {
            continue;
        }
        let auth_start = sep + 3;
        let rest = &v[auth_start..];
        let auth_len = rest
            .find(|c: char| {
                matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(rest.len());
        let authority = &rest[..auth_len];
        let Some(at) = authority.rfind('@') else {
            continue;
        };
        let Some(colon) = authority[..at].find(':') else {
            continue;
        };
        let password = &authority[colon + 1..at];
        if is_placeholder(password) {
            continue;
        }
        out.push(Found {
            kind: Kind::UrlPassword,
            start: auth_start + colon + 1,
            end: auth_start + at,
        });
    }
}

/// An empty password, a template (`{{ … }}`, `${VAR}`, `$VAR`, `%(name)s`), a
/// placeholder in angle or square brackets, a mask (`***`, `xxxx`, `...`) or one of the
/// words documentation uses in its place.
fn is_placeholder(p: &str) -> bool {
    let lower = p.to_ascii_lowercase();
    p.is_empty()
        || p.contains("{{")
        || p.contains("${")
        || p.starts_with('$')
        || p.starts_with("%(")
        || (p.starts_with('<') && p.ends_with('>'))
        || (p.starts_with('[') && p.ends_with(']'))
        || p.chars()
            .all(|c| matches!(c, '*' | 'x' | 'X' | '.' | '_' | '-'))
        || matches!(
            lower.as_str(),
            "password" | "pass" | "passwd" | "pwd" | "secret" | "redacted" | "(redacted)"
        )
}

/// Keys whose values are credentials when they hold an opaque literal.
pub fn is_secret_like_key(key: &str) -> bool {
    const WORDS: [&[u8]; 10] = [
        b"secret",
        b"token",
        b"password",
        b"passwd",
        b"api_key",
        b"apikey",
        b"private_key",
        b"credential",
        b"auth_key",
        b"access_key",
    ];
    // Case-insensitive substring search without lowercasing a copy: this runs for every
    // env and metadata key of every Machine of a fleet.
    let k = key.as_bytes();
    WORDS
        .iter()
        .any(|w| k.len() >= w.len() && k.windows(w.len()).any(|win| win.eq_ignore_ascii_case(w)))
}

fn char_classes(v: &str) -> usize {
    [
        v.chars().any(|c| c.is_ascii_lowercase()),
        v.chars().any(|c| c.is_ascii_uppercase()),
        v.chars().any(|c| c.is_ascii_digit()),
    ]
    .iter()
    .filter(|b| **b)
    .count()
}

/// A long literal with the character mix and entropy of a generated secret.
fn is_high_entropy(v: &str) -> bool {
    if v.len() < 16 || v.contains("{{") || v.contains(char::is_whitespace) {
        return false;
    }
    // Paths, URLs and references are not secrets by themselves.
    if v.starts_with('/') || v.starts_with("./") || v.contains("://") {
        return false;
    }
    char_classes(v) >= 2 && shannon_bits_per_char(v) >= 3.5
}

fn shannon_bits_per_char(v: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in v.bytes() {
        counts[b as usize] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

/// The first credential in `value` (under `key`, for the high-entropy rule) with the
/// text it matched.
fn matched(value: &str, key: Option<&str>) -> Option<(String, Kind)> {
    if let Some(f) = find(value) {
        return Some((f.text(value).to_string(), f.kind));
    }
    // `find` found no shape: only the high-entropy rule is left to try.
    high_entropy_under(value, key).map(|k| (value.to_string(), k))
}

/// The high-entropy rule alone: an opaque literal under a secret-like key.
fn high_entropy_under(value: &str, key: Option<&str>) -> Option<Kind> {
    let k = key?;
    (is_high_entropy(value.trim()) && is_secret_like_key(k)).then_some(Kind::HighEntropy)
}

/// The credentials in a resource's own strings — the ones templates render (app,
/// Machine and volume names, the tenant, env and metadata values) and the image — as
/// (place, matched text, kind). The matched text is for de-duplication only.
pub fn in_resource(r: &Resource) -> Vec<(String, String, Kind)> {
    let mut out = Vec::new();
    // The place is named only for a find: most strings hold none.
    let mut check = |place: &dyn Fn() -> String, value: &str, key: Option<&str>| {
        if let Some((text, kind)) = matched(value, key) {
            out.push((place(), text, kind));
        }
    };
    let named = |s: &'static str| move || s.to_string();
    check(&named("app name"), &r.app, None);
    if let Some(t) = &r.tenant {
        check(&named("tenant name"), t, None);
    }
    match &r.spec {
        Spec::Machine(m) => {
            check(&named("Machine name"), &m.name, None);
            check(&named("image"), &m.image, None);
            for (k, v) in &m.env {
                check(&|| format!("env.{k}"), v, Some(k));
                check(&named("env name"), k, None);
            }
            for (k, v) in &m.metadata {
                if k != META_SECRETS {
                    check(&|| format!("metadata.{k}"), v, Some(k));
                }
                check(&named("metadata key"), k, None);
            }
        }
        Spec::Volume(v) => check(&named("volume name"), &v.name, None),
        Spec::Secret(s) => check(&named("secret name"), &s.name, None),
        Spec::Certificate(c) => check(&named("hostname"), &c.hostname, None),
        Spec::App(_) | Spec::BackupPolicy(_) | Spec::Ip(_) => {}
    }
    out
}

/// The hint every credential diagnostic carries.
pub const HINT: &str = "move it to an environment variable or a file and reference it under `secrets:` as `{ env: NAME }` or `{ file: PATH }`; revoke it if this file was shared";

/// The credentials of a YAML document, found without echoing them.
#[derive(Debug, Default)]
pub struct Scan {
    /// One error per credential (no file set; the caller adds it).
    pub diagnostics: Vec<Diagnostic>,
    /// The texts matched, so later checks can tell a new find from a known one.
    pub texts: HashSet<String>,
}

/// Scans a parsed document and its source text: every scalar (under its key, for the
/// high-entropy rule), every key, and then the raw text for known shapes that the tree
/// does not hold — comments, tags, anchors.
pub fn scan_document(root: &Node, source: &str) -> Scan {
    let mut scan = Scan::default();
    let mut path = String::new();
    root.walk_scalars(&mut path, &mut |p, node, key| {
        let Some(text) = node.scalar_text() else {
            return;
        };
        if let Some(kind) = looks_like_credential(text, key) {
            scan.remember(text);
            scan.diagnostics.push(
                Diagnostic::error(format!("this looks like {kind}; credentials must not be written in a spec (the value was not printed)"))
                    .path(p.to_string())
                    .at(node.mark)
                    .hint(HINT),
            );
        }
    });
    if let Some(entries) = root.as_map() {
        scan.keys(entries);
    }
    scan.source(source);
    scan
}

impl Scan {
    fn remember(&mut self, text: &str) {
        let found = find_all(text);
        if found.is_empty() {
            self.texts.insert(text.to_string());
        }
        for f in found {
            self.texts.insert(f.text(text).to_string());
        }
    }

    fn keys(&mut self, entries: &[(Node, Node)]) {
        for (k, v) in entries {
            if let Some(text) = k.scalar_text()
                && let Some(kind) = looks_like_credential(text, None)
            {
                self.remember(text);
                self.diagnostics.push(
                    Diagnostic::error(format!(
                        "a key looks like {kind} (the value was not printed)"
                    ))
                    .at(k.mark)
                    .hint("remove it from the spec and revoke it"),
                );
            }
            match &v.value {
                yaml::Value::Map(m) => self.keys(m),
                yaml::Value::Seq(items) => {
                    for it in items {
                        if let Some(m) = it.as_map() {
                            self.keys(m);
                        }
                    }
                }
                yaml::Value::Scalar { .. } => {}
            }
        }
    }

    /// Known shapes in the raw text that no scalar or key holds: comments and the like.
    fn source(&mut self, source: &str) {
        for f in find_all(source) {
            let text = f.text(source);
            if self
                .texts
                .iter()
                .any(|t| t.contains(text) || text.contains(t.as_str()))
            {
                continue;
            }
            self.texts.insert(text.to_string());
            self.diagnostics.push(
                Diagnostic::error(format!(
                    "this looks like {} outside any value (in a comment?); credentials must not be written in a spec, not even in comments (the value was not printed)",
                    f.kind
                ))
                .at(yaml::mark_at(source.as_bytes(), f.start))
                .hint("delete it from the file and revoke it; reference secrets under `secrets:` as `{ env: NAME }` or `{ file: PATH }`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    // Token prefixes are assembled so that no token-shaped literal is committed.
    const GHP: &str = concat!("gh", "p_");
    const AWS_ID: &str = concat!("AK", "IA");
    const AWS_TEMP_ID: &str = concat!("AS", "IA");

    #[test]
    fn the_prefilter_lets_every_shape_through() {
        for (prefix, _, _) in PREFIXES {
            assert!(may_hold_credential(prefix.as_bytes()), "{prefix}");
        }
        for start in ["sk-", AWS_ID, AWS_TEMP_ID, "-----BEGIN", "eyJ", "://"] {
            assert!(may_hold_credential(start.as_bytes()), "{start}");
        }
        for plain in [
            "bench-t00001",
            "registry.fly.io/bench:1.0",
            "prod",
            "iad",
            "",
        ] {
            assert!(!may_hold_credential(plain.as_bytes()), "{plain}");
        }
    }

    use super::*;

    // Test tokens are assembled at run time so that no token-shaped literal is committed.
    fn fake(prefix: &str, n: usize) -> String {
        let tail: String = "aB3dE5fG7hJ9kLmN0pQ2rS4tU6vW8xYz"
            .chars()
            .cycle()
            .take(n)
            .collect();
        format!("{prefix}{tail}")
    }

    fn kind(v: &str) -> Option<Kind> {
        looks_like_credential(v, None)
    }

    #[test]
    fn fly_tokens_with_and_without_the_scheme_and_separator() {
        let mac = fake(&format!("fm{}_", 2), 40);
        for v in [
            format!("FlyV1 {mac}"),
            format!("FlyV1{mac}"),
            format!("FlyV1+{mac}"),
            mac.clone(),
            format!("Authorization: FlyV1 {mac},{}", fake("fm2_", 30)),
            fake(&format!("fm{}r_", 1), 30),
            fake(&format!("fm{}a_", 1), 30),
            fake(&format!("fm{}_", 1), 30),
            fake(&format!("fo{}_", 1), 43),
            format!("img:{}", fake("fo1_", 30)),
            format!("fo1_{}", "x".repeat(40)),
            format!(
                "FlyV1 {}{}+/{}==",
                concat!("fm", "2_"),
                fake("", 20),
                fake("", 20)
            ),
        ] {
            assert_eq!(kind(&v), Some(Kind::Fly), "{v}");
        }
        // The whole token, scheme included, is one match.
        let v = format!("x FlyV1 {mac} y");
        let f = find(&v).unwrap();
        assert_eq!(f.text(&v), format!("FlyV1 {mac}"));
        for v in [
            "fm2_short",
            "fo1_",
            "perform2_something-long-enough-here",
            "info1_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "FlyV1",
        ] {
            assert_eq!(kind(v), None, "{v}");
        }
    }

    #[test]
    fn other_known_shapes() {
        let cases = [
            (fake(&format!("sk-{}-api03-", "ant"), 40), Kind::Anthropic),
            (fake("sk-proj-", 40), Kind::OpenAi),
            (fake("sk-", 48), Kind::OpenAi),
            (fake(GHP, 36), Kind::GitHub),
            (fake("gho_", 36), Kind::GitHub),
            (fake("ghs_", 36), Kind::GitHub),
            (fake("github_pat_", 60), Kind::GitHub),
            (format!("{AWS_ID}{}", "IOSFODNN7EXAMPLE"), Kind::Aws),
            (format!("{AWS_TEMP_ID}{}", "Q7XK2M4N6P8R1T3V"), Kind::Aws),
            (fake("xoxb-", 30), Kind::Slack),
            (fake("xoxp-", 30), Kind::Slack),
            (fake("glpat-", 20), Kind::GitLab),
            (fake("sk_live_", 24), Kind::Stripe),
            (fake("rk_live_", 24), Kind::Stripe),
            (format!("Bearer {}", fake(GHP, 36)), Kind::GitHub),
        ];
        for (v, k) in cases {
            assert_eq!(kind(&v), Some(k), "{v}");
        }
    }

    #[test]
    fn private_keys_and_jwts() {
        let pem = format!(
            "-----BEGIN RSA {} KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            "PRIVATE"
        );
        assert_eq!(kind(&pem), Some(Kind::PrivateKey));
        assert_eq!(redact(&format!("a {pem} b")), format!("a {REDACTED} b"));
        assert_eq!(
            kind("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
            None
        );
        let jwt = format!("{}.{}.{}", fake("eyJ", 20), fake("eyJ", 30), fake("", 43));
        assert_eq!(kind(&jwt), Some(Kind::Jwt));
        assert_eq!(kind(&format!("token={jwt}")), Some(Kind::Jwt));
        assert_eq!(kind("eyJhbGciOi.notjson.x"), None);
        assert_eq!(
            kind(&format!("{}.{}", fake("eyJ", 20), fake("eyJ", 30))),
            None
        );
    }

    #[test]
    fn url_passwords_are_found_unless_empty_or_placeholders() {
        let pw = fake("", 12);
        for v in [
            format!("postgres://user:{pw}@db.internal:5432/app"),
            format!("redis://:{pw}@cache.internal:6379"),
            format!("DATABASE_URL=mysql://root:{pw}@10.0.0.1/x later text"),
            "https://a:hunter2@example.com".to_string(),
        ] {
            assert_eq!(kind(&v), Some(Kind::UrlPassword), "{v}");
        }
        // Only the password is redacted.
        assert_eq!(
            redact(&format!("postgres://user:{pw}@db.internal/app")),
            format!("postgres://user:{REDACTED}@db.internal/app")
        );
        for v in [
            "postgres://user@db.internal/app",
            "postgres://user:@db.internal/app",
            "postgres://db.internal:5432/app",
            "https://example.com/a:b@c",
            "postgres://user:{{ tenant.name }}@db/app",
            "postgres://user:${DB_PASSWORD}@db/app",
            "postgres://user:$DB_PASSWORD@db/app",
            "postgres://user:<password>@db/app",
            "postgres://user:****@db/app",
            "postgres://user:password@db/app",
            "redis://fake.internal:6379",
            "mailto:someone@example.com",
        ] {
            assert_eq!(kind(v), None, "{v}");
        }
    }

    #[test]
    fn high_entropy_only_under_secret_keys() {
        let v = fake("", 32);
        assert!(looks_like_credential(&v, Some("JWT_SECRET")).is_some());
        assert!(looks_like_credential(&v, Some("USER_ID")).is_none());
        assert!(looks_like_credential("production", Some("TOKEN_MODE")).is_none());
        assert!(
            looks_like_credential("/run/secrets/token-file-path-x", Some("TOKEN_FILE")).is_none()
        );
    }

    #[test]
    fn ordinary_values_pass() {
        for v in [
            "registry.fly.io/my-jarvis:1.4.43",
            "my-jarvis-{{ tenant.name }}",
            "production",
            "sk-",
            "task-runner",
            "ask-the-team-about-the-disk-cache-settings-please",
            "desk-assistant-production-environment-one-two",
            AWS_ID,
            concat!("AK", "IAshort"),
            GHP,
            "github_pat_short",
            "xoxb-1",
            "https://api.machines.dev",
            "eyJ",
        ] {
            assert!(looks_like_credential(v, Some("image")).is_none(), "{v}");
            assert_eq!(redact(v), v);
        }
    }

    #[test]
    fn redaction_replaces_every_match_and_nothing_else() {
        let a = fake(GHP, 36);
        let b = fake("fo1_", 30);
        let text = format!("app `acme-{a}` and image img:{b}; fine");
        let r = redact(&text);
        assert_eq!(
            r,
            format!("app `acme-{REDACTED}` and image img:{REDACTED}; fine")
        );
        let mut d = Diagnostic::error(format!("name {a}"))
            .hint(format!("rename {b}"))
            .address(format!("tenant.{a}.app"));
        redact_diagnostic(&mut d);
        let all = d.to_string();
        assert!(!all.contains(&a[4..]) && !all.contains(&b[4..]), "{all}");
    }

    #[test]
    fn comments_and_keys_are_scanned_once() {
        let tok = fake(GHP, 36);
        let fo = fake("fo1_", 30);
        let src = format!(
            "# deploy with {fo}\nenv:\n  NOTE: \"{tok}\" # {tok}\n  {}: x\n",
            fake("glpat-", 24)
        );
        let root = yaml::parse(src.as_bytes()).unwrap();
        let scan = scan_document(&root, &src);
        let msgs: Vec<String> = scan.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:#?}");
        let comment = scan
            .diagnostics
            .iter()
            .find(|d| d.message.contains("outside any value"))
            .unwrap();
        assert_eq!(comment.mark, Some(crate::diag::Mark { line: 1, col: 15 }));
        assert!(
            msgs.iter()
                .all(|m| !m.contains(&tok[4..]) && !m.contains(&fo[4..]))
        );
    }
}
