//! minijinja templating for names, env and metadata values. Each distinct template is
//! compiled once; undefined variables are errors (a typo must not render as "").
//! Templates that only substitute variables (`app-{{ tenant.name }}`), the common case
//! rendered once per tenant and Machine, are rendered by a direct substitution that gives
//! the same text; anything else (filters, tags, an undefined or unusual value) goes
//! through minijinja.

use std::collections::HashMap;

use minijinja::{Environment, UndefinedBehavior, Value};

pub struct Templates {
    env: Environment<'static>,
    /// source → compiled template name, or the compile error.
    compiled: HashMap<String, Result<String, String>>,
    /// source → its pieces, for templates that only substitute variables.
    simple: HashMap<String, Option<Vec<Piece>>>,
}

/// A piece of a substitution-only template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    /// `{{ a.b.c }}`: a dotted path of names.
    Var(Vec<String>),
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(s, "true" | "false" | "none" | "True" | "False" | "None")
}

/// Splits a template made of text and `{{ name.name }}` expressions only; `None` for
/// anything else (filters, tags, comments, whitespace control, line breaks, stray braces).
fn pieces(src: &str) -> Option<Vec<Piece>> {
    if src.contains(['\n', '\r']) || src.contains("{%") || src.contains("{#") {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        let text = &rest[..open];
        if text.contains("}}") {
            return None;
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.to_string()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let expr = after[..close].trim_matches(' ');
        let path: Vec<String> = expr.split('.').map(str::to_string).collect();
        if !path.iter().all(|p| is_name(p)) {
            return None;
        }
        out.push(Piece::Var(path));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") || rest.contains('{') || rest.contains('}') {
        return None;
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Some(out)
}

/// Renders substitution-only pieces when every variable is a string or an integer;
/// `None` sends the template through minijinja (which also words any error).
fn substitute(pieces: &[Piece], ctx: &Value) -> Option<String> {
    use minijinja::value::ValueKind;
    let mut out = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(path) => {
                let mut v = ctx.clone();
                for name in path {
                    if v.kind() != ValueKind::Map {
                        return None;
                    }
                    v = v.get_attr(name).ok()?;
                }
                match v.kind() {
                    ValueKind::String => out.push_str(v.as_str()?),
                    ValueKind::Number if v.as_i64().is_some() => {
                        use std::fmt::Write;
                        let _ = write!(out, "{v}");
                    }
                    _ => return None,
                }
            }
        }
    }
    Some(out)
}

/// True when a string needs rendering.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(false);
        // `{{ i | pad(4) }}` → `0042`.
        env.add_filter("pad", |v: Value, width: usize| -> String {
            let s = v.to_string();
            if s.len() >= width {
                s
            } else {
                format!("{}{s}", "0".repeat(width - s.len()))
            }
        });
        // `{{ tenant.name | underscore }}` → `acme_corp` (volume names allow no dashes).
        env.add_filter("underscore", |s: String| -> String {
            s.replace(['-', '.'], "_")
        });
        Templates {
            env,
            compiled: HashMap::new(),
            simple: HashMap::new(),
        }
    }

    /// Checks that a template compiles.
    pub fn compile(&mut self, src: &str) -> Result<(), String> {
        self.name_of(src).map(|_| ())
    }

    fn name_of(&mut self, src: &str) -> Result<String, String> {
        if let Some(r) = self.compiled.get(src) {
            return r.clone();
        }
        let name = format!("t{}", self.compiled.len());
        let r = self
            .env
            .add_template_owned(name.clone(), src.to_string())
            .map(|_| name)
            .map_err(|e| describe(&e));
        self.compiled.insert(src.to_string(), r.clone());
        r
    }

    /// Renders `src` with `ctx`; plain strings are returned as they are. A template
    /// that does not compile renders to `Err(None)` (its error was reported when it was
    /// compiled); a render error is `Err(Some(message))`.
    pub fn render(&mut self, src: &str, ctx: &Value) -> Result<String, Option<String>> {
        if !is_template(src) {
            return Ok(src.to_string());
        }
        let name = self.name_of(src).map_err(|_| None)?;
        if !self.simple.contains_key(src) {
            self.simple.insert(src.to_string(), pieces(src));
        }
        if let Some(Some(p)) = self.simple.get(src)
            && let Some(s) = substitute(p, ctx)
        {
            return Ok(s);
        }
        let t = self
            .env
            .get_template(&name)
            .map_err(|e| Some(describe(&e)))?;
        t.render(ctx).map_err(|e| Some(describe(&e)))
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

fn describe(e: &minijinja::Error) -> String {
    let mut msg = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(" ({s})"));
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn renders_and_caches() {
        let mut t = Templates::new();
        let ctx = context! { tenant => context! { name => "alice" }, i => 7 };
        assert_eq!(
            t.render("app-{{ tenant.name }}", &ctx).unwrap(),
            "app-alice"
        );
        assert_eq!(t.render("user-{{ i | pad(3) }}", &ctx).unwrap(), "user-007");
        assert_eq!(t.render("{{ 'a-b' | underscore }}", &ctx).unwrap(), "a_b");
        assert_eq!(t.render("plain", &ctx).unwrap(), "plain");
        assert_eq!(t.compiled.len(), 3);
    }

    #[test]
    fn substitution_matches_minijinja() {
        let ctx = context! {
            tenant => context! { name => "alice", tier => (), n => 3 },
            i => 7,
            f => 1.5,
            b => true,
        };
        let srcs = [
            "app-{{ tenant.name }}",
            "{{tenant.name}}-{{ i }}",
            "{{ i }}{{ i }}x",
            "{{ tenant.tier }}",
            "{{ tenant.n }}",
            "{{ f }}-{{ b }}",
            "a}b",
            "{{ tenant.name | upper }}",
            "x {{ tenant['name'] }}",
        ];
        for src in srcs {
            let mut fast = Templates::new();
            let fast_out = fast.render(src, &ctx);
            let mut slow = Templates::new();
            let name = slow.name_of(src).unwrap();
            let slow_out = slow.env.get_template(&name).unwrap().render(&ctx);
            assert_eq!(fast_out.ok(), slow_out.ok(), "{src}");
        }
        assert!(pieces("app-{{ tenant.name }}").is_some());
        assert!(pieces("{{ tenant.name | upper }}").is_none());
        assert!(pieces("{{- x }}").is_none());
        assert!(pieces("{% if x %}y{% endif %}").is_none());
        // An undefined variable is worded by minijinja.
        let mut t = Templates::new();
        let e = t.render("a-{{ tenant.nmae }}", &ctx).unwrap_err().unwrap();
        assert!(e.contains("undefined"), "{e}");
    }

    #[test]
    fn undefined_and_syntax_errors() {
        let mut t = Templates::new();
        let ctx = context! { tenant => context! { name => "alice" } };
        let e = t.render("{{ tenant.nmae }}", &ctx).unwrap_err().unwrap();
        assert!(e.contains("undefined"), "{e}");
        let e = t.compile("{{ tenant.name ").unwrap_err();
        assert!(e.contains("syntax"), "{e}");
        assert_eq!(t.render("{{ tenant.name ", &ctx), Err(None));
    }
}
