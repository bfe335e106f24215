//! The spec's JSON Schema (draft-07, as yaml-language-server reads it), generated from
//! the same declarations the checker validates with (`decl`, `schema::Ty`): keys, types,
//! enumerated values, bounds, defaults and descriptions come from one place, so a new
//! setting appears in editors as soon as it is declared. Pure: returns a JSON value.
//!
//! What only the checker knows stays there: values after layering (accepted ranges,
//! region and size names, names unique across the fleet), templates' results, and
//! secret-file confinement.

use serde_json::{Map, Value, json};

use crate::spec::decl::{
    self, APP_KEYS, DefaultValue, GENERATE_KEY, SETTINGS_FIELDS, TENANT_KEYS, TOP_FIELDS,
};
use crate::spec::schema::{Field, Ty};

/// Where the schema says it lives (its `$id`).
pub const SCHEMA_ID: &str = "https://flotilla.dev/schema/spec-v1.json";

/// The JSON Schema of a spec file.
pub fn spec_schema() -> Value {
    let mut root = object(
        &[TOP_FIELDS],
        &[decl::VERSION.field.name, decl::ORG.field.name],
    );
    if let Value::Object(m) = &mut root {
        m.insert(
            "$schema".into(),
            json!("http://json-schema.org/draft-07/schema#"),
        );
        m.insert("$id".into(), json!(SCHEMA_ID));
        m.insert(
            "title".into(),
            json!("flotilla spec: a fleet of per-tenant stacks on Fly.io"),
        );
    }
    root
}

/// A mapping with exactly these fields (the union of the tables), `required` among them.
fn object(tables: &[&[Field]], required: &[&str]) -> Value {
    let mut props = Map::new();
    for f in tables.iter().flat_map(|t| t.iter()) {
        props.insert(f.name.to_string(), field(f));
    }
    let mut m = Map::new();
    m.insert("type".into(), json!("object"));
    m.insert("properties".into(), Value::Object(props));
    m.insert("additionalProperties".into(), json!(false));
    if !required.is_empty() {
        m.insert("required".into(), json!(required));
    }
    Value::Object(m)
}

/// One field: its type's schema with its description and default; `null` allowed when
/// the field is nullable (a `null` resets an inherited value).
fn field(f: &Field) -> Value {
    let mut s = ty(f.ty);
    if f.nullable {
        s = json!({ "anyOf": [s, { "type": "null" }] });
    }
    if let Value::Object(m) = &mut s {
        if !f.doc.is_empty() {
            m.insert("description".into(), json!(f.doc));
        }
        if let Some(d) = default(&f.default) {
            m.insert("default".into(), d);
        }
    }
    s
}

fn default(d: &DefaultValue) -> Option<Value> {
    match d {
        DefaultValue::None | DefaultValue::Derived(_) => None,
        DefaultValue::Bool(b) => Some(json!(b)),
        DefaultValue::Int(i) => Some(json!(i)),
        DefaultValue::Str(s) => Some(json!(s)),
        DefaultValue::Decimal(v) => Some(
            v.to_string()
                .parse::<serde_json::Number>()
                .map_or_else(|_| json!(v.to_string()), Value::Number),
        ),
    }
}

fn ty(t: Ty) -> Value {
    match t {
        Ty::Str => json!({ "type": "string" }),
        // Any scalar, read as text (env and metadata values).
        Ty::Text => json!({ "type": ["string", "number", "boolean"] }),
        Ty::Int { min, max } => json!({ "type": "integer", "minimum": min, "maximum": max }),
        Ty::Bool => json!({ "type": "boolean" }),
        // Exact decimals may be written quoted as well.
        Ty::Decimal { min, max } => json!({
            "anyOf": [
                { "type": "number", "minimum": min, "maximum": max },
                { "type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*$" }
            ]
        }),
        Ty::Memory => json!({
            "anyOf": [
                { "type": "integer", "minimum": 1 },
                {
                    "type": "string",
                    "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*([mMgG]([bB]|[iI][bB])?)?\s*$"
                }
            ],
            "examples": ["512mb", "2gb"]
        }),
        Ty::Enum(values) => json!({ "enum": values }),
        Ty::List(item) => json!({ "type": "array", "items": ty(*item) }),
        Ty::Struct(fields) => object(&[fields], &[]),
        Ty::Dict(value) => json!({ "type": "object", "additionalProperties": ty(*value) }),
        Ty::SecretRef => secret_ref(),
        Ty::Tenants => json!({
            "type": "array",
            "items": {
                "anyOf": [
                    object(&[TENANT_KEYS, SETTINGS_FIELDS], &[decl::ENTRY_NAME.field.name]),
                    object(&[GENERATE_KEY, SETTINGS_FIELDS], &[decl::GENERATE.field.name])
                ]
            }
        }),
        Ty::Apps => json!({
            "type": "array",
            "items": object(&[APP_KEYS, SETTINGS_FIELDS], &[decl::ENTRY_NAME.field.name])
        }),
    }
}

/// `{ env: VAR }` or `{ file: PATH }`, never a value.
fn secret_ref() -> Value {
    let one = |key: &str, doc: &str| {
        json!({
            "type": "object",
            "properties": { key: { "type": "string", "description": doc } },
            "required": [key],
            "additionalProperties": false
        })
    };
    json!({
        "description": "a reference to a secret, never its value",
        "oneOf": [
            one(decl::SECRET_ENV, "the environment variable holding the value"),
            one(decl::SECRET_FILE, "a file beside the spec holding the value")
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every declared setting of a settings layer is a property of `defaults`.
    #[test]
    fn every_setting_is_in_the_schema() {
        let s = spec_schema();
        let defaults = &s["properties"]["defaults"]["anyOf"][0]["properties"];
        let defaults = if defaults.is_null() {
            &s["properties"]["defaults"]["properties"]
        } else {
            defaults
        };
        for f in SETTINGS_FIELDS {
            assert!(defaults.get(f.name).is_some(), "{} missing", f.name);
        }
        assert_eq!(s["required"], json!(["version", "org"]));
    }

    #[test]
    fn enumerated_values_and_defaults_come_from_the_declarations() {
        let s = spec_schema();
        let idle = &s["properties"]["defaults"]["properties"]["idle"];
        let idle = if idle.get("anyOf").is_some() {
            &idle["anyOf"][0]
        } else {
            idle
        };
        let mode = &idle["properties"]["mode"];
        let text = mode.to_string();
        assert!(text.contains("\"suspend\""), "{text}");
        assert!(text.contains("\"default\":\"off\""), "{text}");
    }
}
