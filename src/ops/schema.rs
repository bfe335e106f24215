//! `schema`: the spec's JSON Schema, for editors (yaml-language-server) and CI checks.

use crate::ops::Error;

/// The schema as pretty-printed JSON, ending in a newline.
pub fn run() -> Result<String, Error> {
    let schema = crate::spec::json_schema::spec_schema();
    serde_json::to_string_pretty(&schema)
        .map(|s| s + "\n")
        .map_err(|e| Error::line(format!("error: the schema could not be serialized: {e}")))
}
