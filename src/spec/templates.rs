//! minijinja templating for names, env and metadata values. Each distinct template is
//! compiled once; undefined variables are errors (a typo must not render as "").

use std::collections::HashMap;

use minijinja::{Environment, UndefinedBehavior, Value};

pub struct Templates {
    env: Environment<'static>,
    /// source → compiled template name, or the compile error.
    compiled: HashMap<String, Result<String, String>>,
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
