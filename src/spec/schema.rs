//! Checking a YAML tree against a shape: which keys exist where and what type each takes.
//! `check` walks a tree against tables of [`Field`]s and reports every unknown key (with
//! "did you mean") and every wrong type, all at once. The spec's tables are declared in
//! [`crate::spec::decl`]; what-if scenarios bring their own. Typed reading happens
//! afterwards on checked nodes, through the same declarations.

use crate::diag::{Diagnostic, suggest};
pub use crate::spec::decl::{
    APP_KEYS, DefaultValue, GENERATE_KEY, MAX_GENERATED, SETTINGS_FIELDS, TENANT_KEYS, TOP_FIELDS,
};
use crate::spec::yaml::{self, Node, Value};

/// A type in the spec schema.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// A string (numbers are refused: quote them).
    Str,
    /// Any scalar, read as text (env and metadata values).
    Text,
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    /// An exact decimal number, with bounds.
    Decimal {
        min: i64,
        max: i64,
    },
    /// `512mb`, `2gb`, or an integer number of MB.
    Memory,
    Enum(&'static [&'static str]),
    List(&'static Ty),
    /// A mapping with fixed keys.
    Struct(&'static [Field]),
    /// A mapping with free keys (names) and values of one type.
    Dict(&'static Ty),
    /// A secret reference: `{env: VAR}` or `{file: PATH}`.
    SecretRef,
    /// The `tenants:` list (explicit entries and generators).
    Tenants,
    /// The `apps:` list of shared apps.
    Apps,
}

/// A key of a mapping: its name, type, nullability and what a JSON Schema of the spec
/// needs besides (default, accepted range, doc). Spec fields are declared in
/// [`crate::spec::decl`]; other files (what-if scenarios) build their own with [`f`] and
/// [`req`].
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    /// May be `null` (resets an inherited value).
    pub nullable: bool,
    pub default: DefaultValue,
    /// The range Fly or flotilla accepts, checked on the effective value after layering
    /// (with a message naming where it was written); `ty`'s bounds are what parses.
    pub accepted: Option<(i64, i64)>,
    /// One line for the reference docs and the JSON Schema's `description`.
    pub doc: &'static str,
}

/// An optional (nullable) field.
pub const fn f(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        nullable: true,
        default: DefaultValue::None,
        accepted: None,
        doc: "",
    }
}
/// A field that may not be `null`.
pub const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        nullable: false,
        ..f(name, ty)
    }
}

/// Collects schema diagnostics (no file set; the caller adds it).
pub struct Checker {
    pub diags: Vec<Diagnostic>,
}

impl Checker {
    pub fn new() -> Self {
        Checker { diags: Vec::new() }
    }

    fn err(&mut self, node: &Node, path: &str, msg: impl Into<String>, hint: Option<String>) {
        let mut d = Diagnostic::error(msg).at(node.mark).path(path);
        if let Some(h) = hint {
            d = d.hint(h);
        }
        self.diags.push(d);
    }

    fn type_err(&mut self, node: &Node, path: &str, expected: &str) {
        let found = node.type_name();
        let hint = match (expected, found) {
            ("a string", "an integer" | "a number" | "a boolean") => {
                Some("quote the value".to_string())
            }
            _ => None,
        };
        self.err(
            node,
            path,
            format!("expected {expected}, found {found}"),
            hint,
        );
    }

    /// The entries of a mapping whose keys are names, each with its path. Keys that are
    /// not names, and repeated keys, are reported and left out.
    fn named_entries<'n>(
        &mut self,
        entries: &'n [(Node, Node)],
        path: &str,
    ) -> Vec<(&'n str, String, &'n Node, &'n Node)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            let Some(key) = k.scalar_text() else {
                self.err(
                    k,
                    path,
                    format!("keys must be names, found {}", k.type_name()),
                    None,
                );
                continue;
            };
            let sub = join(path, key);
            if !seen.insert(key) {
                self.err(
                    k,
                    &sub,
                    "this key appears twice",
                    Some("keep one of them".into()),
                );
                continue;
            }
            out.push((key, sub, k, v));
        }
        out
    }

    /// Checks a mapping against a list of fields, plus extra allowed fields.
    pub fn check_struct(&mut self, node: &Node, path: &str, fields: &[&[Field]]) {
        let Some(entries) = node.as_map() else {
            self.type_err(node, path, "a mapping");
            return;
        };
        for (key, sub, k, v) in self.named_entries(entries, path) {
            match fields
                .iter()
                .flat_map(|fs| fs.iter())
                .find(|fd| fd.name == key)
            {
                Some(fd) => {
                    if v.is_null() {
                        if !fd.nullable {
                            self.err(v, &sub, "a value is required here", None);
                        }
                    } else {
                        self.check(v, &sub, fd.ty);
                    }
                }
                None => {
                    let names = fields.iter().flat_map(|fs| fs.iter()).map(|fd| fd.name);
                    let hint = suggest(key, names, "keys");
                    self.err(k, &sub, format!("unknown key `{key}`"), Some(hint));
                }
            }
        }
    }

    pub fn check(&mut self, node: &Node, path: &str, ty: Ty) {
        match ty {
            Ty::Str => {
                if node.as_str().is_none() {
                    self.type_err(node, path, "a string");
                }
            }
            Ty::Text => {
                if node.scalar_text().is_none() {
                    self.type_err(node, path, "a string");
                }
            }
            Ty::Bool => {
                if node.as_bool().is_none() {
                    self.type_err(node, path, "true or false");
                }
            }
            Ty::Int { min, max } => match node.as_i64() {
                None => self.type_err(node, path, "an integer"),
                Some(v) if v < min || v > max => {
                    self.err(
                        node,
                        path,
                        format!("{v} is out of range ({min}–{max})"),
                        None,
                    );
                }
                Some(_) => {}
            },
            Ty::Decimal { min, max } => match node.scalar_text().and_then(parse_decimal) {
                None => self.type_err(node, path, "a number"),
                Some(v) if v < min.into() || v > max.into() => {
                    self.err(
                        node,
                        path,
                        format!("{v} is out of range ({min}–{max})"),
                        None,
                    );
                }
                Some(_) => {}
            },
            Ty::Memory => {
                if let Err(msg) = parse_memory(node) {
                    self.err(
                        node,
                        path,
                        msg,
                        Some("write memory as `512mb`, `2gb`, or a number of MB".into()),
                    );
                }
            }
            Ty::Enum(values) => match node.scalar_text() {
                Some(s) if values.contains(&s) => {}
                Some(s) => {
                    let hint = suggest(s, values.iter().copied(), "values");
                    self.err(
                        node,
                        path,
                        format!("`{s}` is not one of {}", values.join(", ")),
                        Some(hint),
                    );
                }
                None => self.type_err(node, path, "one of the listed values"),
            },
            Ty::List(item) => match node.as_seq() {
                Some(items) => {
                    for (i, it) in items.iter().enumerate() {
                        self.check(it, &yaml::indexed(path, i), *item);
                    }
                }
                None => self.type_err(node, path, "a list"),
            },
            Ty::Struct(fields) => self.check_struct(node, path, &[fields]),
            Ty::Dict(value) => match node.as_map() {
                Some(entries) => {
                    for (_, sub, _, v) in self.named_entries(entries, path) {
                        if !v.is_null() {
                            self.check(v, &sub, *value);
                        }
                    }
                }
                None => self.type_err(node, path, "a mapping"),
            },
            Ty::SecretRef => self.check_secret_ref(node, path),
            Ty::Tenants => match node.as_seq() {
                Some(items) => {
                    for (i, it) in items.iter().enumerate() {
                        let p = yaml::indexed(path, i);
                        if it.get(crate::spec::decl::GENERATE.key).is_some() {
                            self.check_struct(it, &p, &[GENERATE_KEY, SETTINGS_FIELDS]);
                        } else {
                            self.check_struct(it, &p, &[TENANT_KEYS, SETTINGS_FIELDS]);
                        }
                    }
                }
                None => self.type_err(node, path, "a list of tenants"),
            },
            Ty::Apps => match node.as_seq() {
                Some(items) => {
                    for (i, it) in items.iter().enumerate() {
                        self.check_struct(
                            it,
                            &yaml::indexed(path, i),
                            &[APP_KEYS, SETTINGS_FIELDS],
                        );
                    }
                }
                None => self.type_err(node, path, "a list of apps"),
            },
        }
    }

    fn check_secret_ref(&mut self, node: &Node, path: &str) {
        // Never echo the value: an inline secret is a credential in the spec.
        if node.scalar_text().is_some() || node.as_seq().is_some() {
            self.err(
                node,
                path,
                "a plaintext secret value is not allowed in a spec (the value was not printed)",
                Some(
                    "reference it instead: `{ env: VAR_NAME }` or `{ file: path/to/file }`".into(),
                ),
            );
            return;
        }
        let Some(entries) = node.as_map() else { return };
        let keys: Vec<&str> = entries
            .iter()
            .filter_map(|(k, _)| k.scalar_text())
            .collect();
        let known = crate::spec::decl::SECRET_REF_KEYS;
        let mut plaintext = false;
        for (k, v) in entries {
            let key = k.scalar_text().unwrap_or("?");
            if !known.contains(&key) {
                let hint = suggest(key, known, "keys");
                let what = if matches!(key, "value" | "val" | "secret" | "plain" | "data") {
                    plaintext = true;
                    "a plaintext secret value is not allowed in a spec (the value was not printed)"
                        .to_string()
                } else {
                    format!("unknown key `{key}`")
                };
                self.err(
                    k,
                    &join(path, key),
                    what,
                    Some(format!(
                        "reference the secret with `env:` or `file:`; {hint}"
                    )),
                );
            } else if v.as_str().is_none() {
                self.type_err(v, &join(path, key), "a string");
            }
        }
        if !plaintext && keys.iter().filter(|k| known.contains(k)).count() != 1 {
            self.err(
                node,
                path,
                "a secret reference needs exactly one of `env` or `file`",
                Some("e.g. `{ env: ANTHROPIC_API_KEY }`".into()),
            );
        }
    }
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        yaml::concat(&[path, ".", key])
    }
}

pub fn parse_decimal(s: &str) -> Option<rust_decimal::Decimal> {
    use std::str::FromStr;
    rust_decimal::Decimal::from_str(s.trim()).ok()
}

/// Parses `512mb`, `2gb`, `1.5gb`, `2048` (MB) into MB.
pub fn parse_memory(node: &Node) -> Result<u32, String> {
    if let Some(n) = node.as_i64() {
        return u32::try_from(n)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("{n} MB is not a valid memory size"));
    }
    let Value::Scalar { text, .. } = &node.value else {
        return Err(format!(
            "expected a memory size, found {}",
            node.type_name()
        ));
    };
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let factor: u32 = match unit {
        "mb" | "m" | "mib" => 1,
        "gb" | "g" | "gib" => 1024,
        "" => 1,
        _ => return Err(format!("`{text}` has an unknown unit `{unit}`")),
    };
    let v = parse_decimal(num).ok_or_else(|| format!("`{text}` is not a memory size"))?;
    let mb = v
        .checked_mul(rust_decimal::Decimal::from(factor))
        .ok_or_else(|| format!("`{text}` is too large"))?;
    if !mb.fract().is_zero() || mb <= rust_decimal::Decimal::ZERO {
        return Err(format!("`{text}` is not a whole number of MB"));
    }
    use rust_decimal::prelude::ToPrimitive;
    mb.to_u32().ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::yaml::parse;

    fn mem(s: &str) -> Result<u32, String> {
        let n = parse(format!("m: {s}").as_bytes()).unwrap();
        parse_memory(n.get("m").unwrap())
    }

    #[test]
    fn memory_forms() {
        assert_eq!(mem("512mb"), Ok(512));
        assert_eq!(mem("2gb"), Ok(2048));
        assert_eq!(mem("2GB"), Ok(2048));
        assert_eq!(mem("1.5gb"), Ok(1536));
        assert_eq!(mem("1024"), Ok(1024));
        assert!(mem("2tb").is_err());
        assert!(mem("-5").is_err());
        assert!(mem("0.1mb").is_err());
        assert!(mem("[1]").is_err());
    }

    #[test]
    fn unknown_keys_and_types_are_all_reported() {
        let n = parse(b"image: 1\nmemroy: 2gb\nidle: {mode: sleep}\ncount: x\n").unwrap();
        let mut c = Checker::new();
        c.check_struct(&n, "defaults", &[SETTINGS_FIELDS]);
        let msgs: Vec<String> = c.diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 4, "{msgs:#?}");
        assert!(msgs[0].contains("defaults.image: expected a string, found an integer"));
        assert!(msgs[1].contains("unknown key `memroy`") && msgs[1].contains("`memory`"));
        assert!(msgs[2].contains("`sleep` is not one of off, stop, suspend"));
        assert!(msgs[3].contains("defaults.count: expected an integer"));
    }

    #[test]
    fn inline_secret_is_refused_without_echo() {
        let n = parse(
            b"secrets:\n  KEY: hunter2-very-secret\n  OTHER: {value: abc}\n  OK: {env: OK}\n",
        )
        .unwrap();
        let mut c = Checker::new();
        c.check_struct(&n, "defaults", &[SETTINGS_FIELDS]);
        let all: String = c.diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(c.diags.len(), 2, "{all}");
        assert!(!all.contains("hunter2") && !all.contains("abc"));
        assert!(all.contains("plaintext secret"));
    }
}
