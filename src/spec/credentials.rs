//! Finds credentials pasted into a spec. A match is an error that names the location and
//! the kind of credential, and never echoes the value.

/// What a string looks like, if it looks like a credential.
pub fn looks_like_credential(value: &str, key: Option<&str>) -> Option<&'static str> {
    let v = value.trim();
    // Every pattern below needs at least 15 characters.
    if v.len() < 15 {
        return None;
    }
    if let Some(kind) = known_token(v) {
        return Some(kind);
    }
    if let Some(k) = key
        && is_secret_like_key(k)
        && is_high_entropy(v)
    {
        return Some("a high-entropy value under a secret-like key");
    }
    None
}

fn known_token(v: &str) -> Option<&'static str> {
    // Scan every word: tokens are often embedded (after `Bearer`, in URLs).
    if v.contains("FlyV1 fm")
        || contains_prefixed(v, "fm2_", 20)
        || contains_prefixed(v, "fm1r_", 20)
        || contains_prefixed(v, "fm1a_", 20)
    {
        return Some("a Fly.io API token");
    }
    if contains_prefixed(v, "sk-ant-", 16) {
        return Some("an Anthropic API key");
    }
    if contains_prefixed(v, "sk-proj-", 16) || contains_prefixed(v, "sk-", 32) {
        return Some("an OpenAI-style API key");
    }
    for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        if contains_prefixed(v, p, 30) {
            return Some("a GitHub token");
        }
    }
    if contains_prefixed(v, "github_pat_", 30) {
        return Some("a GitHub token");
    }
    if contains_aws_key(v) {
        return Some("an AWS access key");
    }
    for p in ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"] {
        if contains_prefixed(v, p, 10) {
            return Some("a Slack token");
        }
    }
    if contains_prefixed(v, "glpat-", 20) {
        return Some("a GitLab token");
    }
    if contains_prefixed(v, "sk_live_", 16) || contains_prefixed(v, "rk_live_", 16) {
        return Some("a Stripe secret key");
    }
    if v.contains("-----BEGIN") && v.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    if looks_like_jwt(v) {
        return Some("a JSON Web Token");
    }
    None
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-')
}

/// True when `prefix` occurs followed by at least `min_tail` token characters.
fn contains_prefixed(v: &str, prefix: &str, min_tail: usize) -> bool {
    let mut rest = v;
    while let Some(pos) = rest.find(prefix) {
        let boundary = pos == 0
            || !rest[..pos]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        let tail = &rest[pos + prefix.len()..];
        if boundary && tail.chars().take_while(|c| is_token_char(*c)).count() >= min_tail {
            return true;
        }
        rest = &rest[pos + prefix.len()..];
    }
    false
}

fn contains_aws_key(v: &str) -> bool {
    let b = v.as_bytes();
    for p in ["AKIA", "ASIA"] {
        let mut start = 0;
        while let Some(pos) = v[start..].find(p) {
            let at = start + pos;
            let tail = &b[at + 4..];
            if tail.len() >= 16
                && tail[..16]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                && tail.get(16).is_none_or(|c| !c.is_ascii_alphanumeric())
                && (at == 0 || !b[at - 1].is_ascii_alphanumeric())
            {
                return true;
            }
            start = at + 4;
        }
    }
    false
}

fn looks_like_jwt(v: &str) -> bool {
    v.split(|c: char| c.is_whitespace()).any(|w| {
        let parts: Vec<&str> = w.split('.').collect();
        parts.len() == 3
            && parts[0].starts_with("eyJ")
            && parts[1].starts_with("eyJ")
            && parts.iter().all(|p| {
                p.len() >= 8
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
    })
}

/// Keys whose values are credentials when they hold an opaque literal.
pub fn is_secret_like_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "passwd",
        "api_key",
        "apikey",
        "private_key",
        "credential",
        "auth_key",
        "access_key",
    ]
    .iter()
    .any(|w| k.contains(w))
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
    let classes = [
        v.chars().any(|c| c.is_ascii_lowercase()),
        v.chars().any(|c| c.is_ascii_uppercase()),
        v.chars().any(|c| c.is_ascii_digit()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    classes >= 2 && shannon_bits_per_char(v) >= 3.5
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

#[cfg(test)]
mod tests {
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

    #[test]
    fn known_tokens_are_found() {
        assert_eq!(
            looks_like_credential(&format!("FlyV1 {}", fake("fm2_", 40)), None),
            Some("a Fly.io API token")
        );
        assert_eq!(
            looks_like_credential(&fake(&format!("sk-{}-api03-", "ant"), 40), None),
            Some("an Anthropic API key")
        );
        assert_eq!(
            looks_like_credential(&fake("ghp_", 36), None),
            Some("a GitHub token")
        );
        let aws = format!("AKIA{}", "IOSFODNN7EXAMPLE");
        assert_eq!(
            looks_like_credential(&aws, Some("x")),
            Some("an AWS access key")
        );
        assert_eq!(
            looks_like_credential(&format!("Bearer {}", fake("ghp_", 36)), None),
            Some("a GitHub token")
        );
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
            "AKIA",
        ] {
            assert!(looks_like_credential(v, Some("image")).is_none(), "{v}");
        }
    }
}
