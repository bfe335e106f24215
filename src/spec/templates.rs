//! minijinja templating for names, env and metadata values. Each distinct template is
//! compiled once; undefined variables are errors (a typo must not render as "").
//! Templates that only substitute variables (`app-{{ tenant.name }}`), the common case
//! rendered once per tenant and Machine, are rendered by a direct substitution that gives
//! the same text; anything else (filters, tags, an undefined or unusual value) goes
//! through minijinja.
//!
//! Templates come from the spec, so every render has a budget: [`MAX_FUEL`] instructions
//! (nested loops stop), widths and repeat counts of filters at most [`MAX_WIDTH`],
//! checked before anything is allocated, and output of at most [`MAX_OUTPUT`] bytes. A
//! template that exceeded a budget once is not rendered again: the same error is given
//! for every tenant, at no further cost.

use foldhash::{HashMap, HashMapExt};

use minijinja::value::Rest;
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

/// Instructions one render may execute (minijinja's fuel).
pub const MAX_FUEL: u64 = 100_000;
/// The largest width or count a filter accepts (`pad`, `indent`, `format` widths).
pub const MAX_WIDTH: usize = 1024;
/// The largest rendered value, in bytes.
pub const MAX_OUTPUT: usize = 64 * 1024;

pub struct Templates {
    env: Environment<'static>,
    /// source → compiled template name, or the compile error.
    compiled: HashMap<String, Result<String, String>>,
    /// source → its pieces, for templates that only substitute variables.
    simple: HashMap<String, Option<Vec<Piece>>>,
    /// source → the budget it exceeded (never rendered again).
    exhausted: HashMap<String, String>,
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
        env.set_fuel(Some(MAX_FUEL));
        // `{{ i | pad(4) }}` → `0042`.
        env.add_filter("pad", |v: Value, width: usize| -> Result<String, Error> {
            check_width("pad", width)?;
            let s = v.to_string();
            Ok(if s.len() >= width {
                s
            } else {
                format!("{}{s}", "0".repeat(width - s.len()))
            })
        });
        // The built-in filters that take a width, with the width checked first.
        let indent = Value::from_function(minijinja::filters::indent);
        env.add_filter(
            "indent",
            move |state: &State, args: Rest<Value>| -> Result<Value, Error> {
                for a in args.iter() {
                    numbers_within("indent", a)?;
                }
                indent.call(state, &args)
            },
        );
        let format = Value::from_function(minijinja::filters::format);
        env.add_filter(
            "format",
            move |state: &State, args: Rest<Value>| -> Result<Value, Error> {
                if let Some(spec) = args.first().and_then(Value::as_str) {
                    format_widths_within(spec)?;
                }
                format.call(state, &args)
            },
        );
        // `{{ tenant.name | underscore }}` → `acme_corp` (volume names allow no dashes).
        env.add_filter("underscore", |s: String| -> String {
            s.replace(['-', '.'], "_")
        });
        Templates {
            env,
            compiled: HashMap::new(),
            simple: HashMap::new(),
            exhausted: HashMap::new(),
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
        // A substitution-only template seen before: no engine, no compile lookup.
        if let Some(Some(p)) = self.simple.get(src)
            && let Some(s) = substitute(p, ctx)
        {
            return Ok(s);
        }
        let name = self.name_of(src).map_err(|_| None)?;
        if !self.simple.contains_key(src) {
            let p = pieces(src);
            let fast = p.as_ref().and_then(|p| substitute(p, ctx));
            self.simple.insert(src.to_string(), p);
            if let Some(s) = fast {
                return Ok(s);
            }
        }
        if let Some(reason) = self.exhausted.get(src) {
            return Err(Some(reason.clone()));
        }
        let t = self
            .env
            .get_template(&name)
            .map_err(|e| Some(describe(&e)))?;
        let reason = match t.render(ctx) {
            Ok(out) if out.len() > MAX_OUTPUT => format!(
                "the rendered value is {} bytes; the limit is {MAX_OUTPUT} bytes",
                out.len()
            ),
            Ok(out) => return Ok(out),
            Err(e) if is_budget(&e) => budget_message(&e),
            Err(e) => return Err(Some(describe(&e))),
        };
        self.exhausted.insert(src.to_string(), reason.clone());
        Err(Some(reason))
    }
}

/// The hint for a render error that is a budget being exceeded.
pub fn budget_hint(message: &str) -> Option<String> {
    let budget = message.contains("render budget")
        || message.contains("is too large")
        || message.contains("too many elements")
        || message.contains("the limit is");
    budget.then(|| {
        format!(
            "templates are for names and short values: a render may run {MAX_FUEL} instructions, filter widths are at most {MAX_WIDTH}, and a value at most {MAX_OUTPUT} bytes"
        )
    })
}

/// Adds the budget hint to a diagnostic of a render error, when it is one.
pub fn with_budget_hint(d: crate::diag::Diagnostic, message: &str) -> crate::diag::Diagnostic {
    match budget_hint(message) {
        Some(h) => d.hint(h),
        None => d,
    }
}

/// Whether a render error is a budget being exceeded (rather than a mistake in the
/// template that depends on the values).
fn is_budget(e: &Error) -> bool {
    e.kind() == ErrorKind::OutOfFuel
        || e.detail()
            .is_some_and(|d| d.contains("too large") || d.contains("too many"))
        || std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<Error>())
            .is_some_and(is_budget)
}

fn budget_message(e: &Error) -> String {
    if e.kind() == ErrorKind::OutOfFuel {
        format!(
            "the template exceeds the render budget of {MAX_FUEL} instructions (loops that never end, or nest too deep)"
        )
    } else {
        describe(e)
    }
}

/// Refuses a width above [`MAX_WIDTH`] before anything is allocated.
fn check_width(filter: &str, width: usize) -> Result<(), Error> {
    if width > MAX_WIDTH {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("`{filter}({width})` is too large: the largest width is {MAX_WIDTH}"),
        ));
    }
    Ok(())
}

/// Every number among a filter's arguments (keyword arguments included) within
/// [`MAX_WIDTH`].
fn numbers_within(filter: &str, v: &Value) -> Result<(), Error> {
    use minijinja::value::ValueKind;
    match v.kind() {
        ValueKind::Number => match v.as_i64() {
            Some(n) if (0..=MAX_WIDTH as i64).contains(&n) => Ok(()),
            Some(n) if n < 0 => Ok(()),
            _ => check_width(filter, usize::MAX),
        },
        ValueKind::Map => {
            let Ok(keys) = v.try_iter() else {
                return Ok(());
            };
            for k in keys {
                if let Ok(item) = v.get_item(&k) {
                    numbers_within(filter, &item)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The widths and precisions in a `format` string (`%08d`, `{:>20}`) within
/// [`MAX_WIDTH`].
fn format_widths_within(spec: &str) -> Result<(), Error> {
    let bytes = spec.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if !matches!(b, b'%' | b':') {
            continue;
        }
        let mut n: usize = 0;
        for c in &bytes[i + 1..] {
            match c {
                b'0'..=b'9' => {
                    n = n.saturating_mul(10).saturating_add(usize::from(c - b'0'));
                    check_width("format", n)?;
                }
                b'-' | b'+' | b' ' | b'#' | b'<' | b'>' | b'^' | b'=' => n = 0,
                b'.' => n = 0,
                _ => break,
            }
        }
    }
    Ok(())
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
    fn renders_have_a_budget() {
        let mut t = Templates::new();
        let ctx = context! { i => 7 };
        let bomb =
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
        let start = std::time::Instant::now();
        let e = t.render(bomb, &ctx).unwrap_err().unwrap();
        assert!(e.contains("render budget of 100000 instructions"), "{e}");
        // Exceeded once, refused at once after that.
        assert_eq!(t.render(bomb, &ctx).unwrap_err().unwrap(), e);
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
        let e = t
            .render("{{ i | pad(2000000000) }}", &ctx)
            .unwrap_err()
            .unwrap();
        assert!(e.contains("pad(2000000000)") && e.contains("1024"), "{e}");
        assert_eq!(t.render("{{ i | pad(1024) }}", &ctx).unwrap().len(), 1024);
        let e = t
            .render("{{ 'a' | indent(5000000) }}", &ctx)
            .unwrap_err()
            .unwrap();
        assert!(e.contains("indent") && e.contains("1024"), "{e}");
        let e = t
            .render("{{ 'a' | indent(width=5000000) }}", &ctx)
            .unwrap_err()
            .unwrap();
        assert!(e.contains("1024"), "{e}");
        let e = t
            .render("{{ '%0999999999d' | format(1) }}", &ctx)
            .unwrap_err()
            .unwrap();
        assert!(e.contains("format") && e.contains("1024"), "{e}");
        assert_eq!(t.render("{{ '%05d' | format(i) }}", &ctx).unwrap(), "00007");
        let e = t.render("{{ 'x' * 100000 }}", &ctx).unwrap_err().unwrap();
        assert!(e.contains("the limit is 65536 bytes"), "{e}");
    }

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
