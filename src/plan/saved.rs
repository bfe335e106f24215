//! The plan document: what `plan --format json` prints and `plan --out FILE` saves.
//!
//! A saved plan carries the spec hash, the fingerprint of the observed state it was
//! computed against, the time it was made and the full desired state, so that `apply
//! PLANFILE` can re-observe and refuse a stale plan. It holds secret references (env
//! variable names, file paths), never secret values.
//!
//! A saved plan may come from someone else (a pull request), so it is sealed: its
//! `integrity` block holds a SHA-256 of the canonical content (every other field, as
//! compact JSON in the file's key order) and, when the planner holds a key
//! ([`PlanKey`], `FLOTILLA_PLAN_KEY`), an HMAC-SHA256 of the same bytes. [`PlanDocument::load_with`]
//! checks both before the document is read as a plan; the desired state is then
//! re-validated by [`crate::plan::verify`]. The digest catches truncated, corrupted and
//! hand-edited files; only the MAC proves who made the plan.

use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::diag::Diagnostic;
use crate::plan::{Action, Change, Plan, PlanCost, Summary};
use crate::resource::ResourceSet;
use crate::state::Unmanaged;

pub const PLAN_FORMAT_VERSION: u32 = 1;

/// The largest saved plan read, in bytes (a plan of 20,000 tenants is about 60 MB).
pub const MAX_PLAN_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanDocument {
    pub format_version: u32,
    pub flotilla_version: String,
    pub created_at: String,
    pub org: String,
    pub spec_file: String,
    pub spec_hash: String,
    /// `sha256:…` of the managed part of the observed state the plan was made against.
    pub observed_fingerprint: String,
    /// Where the observed state came from: `empty`, `state:FILE`, `api:URL`, `sim:PATH`.
    pub observed_source: String,
    /// `--tenant` filters the plan was narrowed to (empty: the whole fleet).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// `--target` addresses the plan was narrowed to (empty: every resource).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::resource::Address>,
    #[serde(default)]
    pub pricing_version: Option<String>,
    pub summary: Summary,
    pub changes: Vec<Change>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<PlanCost>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<Unmanaged>,
    /// Regions the pre-flight capacity check found short of room for the Machines the
    /// plan creates there (see [`crate::plan::capacity`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity: Vec<crate::plan::capacity::CapacityWarning>,
    /// The desired state to apply (saved plans only), without secret fingerprints:
    /// `apply` computes them again from the values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<ResourceSet>,
    /// Where the spec's fingerprint key lives (saved plans of specs that name one): a
    /// reference, never the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint_key: Option<crate::resource::SecretSource>,
    /// The export a removed tenant gets before its deletion (saved plans of specs with
    /// `defaults.backups.export`): references, never credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removal_export: Option<crate::resource::ExportConfig>,
    /// The seal of a saved plan over every other field (written by [`PlanDocument::save_with`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integrity: Option<Integrity>,
}

/// The seal of a saved plan: a digest of its canonical content, and a MAC when a key was
/// given at plan time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integrity {
    /// `sha256:HEX` of the canonical content.
    pub sha256: String,
    /// HMAC-SHA256 (hex) of the canonical content under the planner's [`PlanKey`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_sha256: Option<String>,
}

/// The secret that authenticates saved plans (`FLOTILLA_PLAN_KEY`); never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct PlanKey(Vec<u8>);

impl PlanKey {
    pub fn new(secret: impl Into<Vec<u8>>) -> PlanKey {
        PlanKey(secret.into())
    }

    fn mac(&self, content: &[u8]) -> Option<HmacSha256> {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.0).ok()?;
        mac.update(SEAL_DOMAIN);
        mac.update(content);
        Some(mac)
    }

    /// The hex MAC of `content`.
    fn sign(&self, content: &[u8]) -> String {
        self.mac(content)
            .map(|m| hex::encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Whether `mac_hex` is this key's MAC of `content` (compared in constant time).
    fn verifies(&self, content: &[u8], mac_hex: &str) -> bool {
        let (Ok(expected), Some(mac)) = (hex::decode(mac_hex), self.mac(content)) else {
            return false;
        };
        mac.verify_slice(&expected).is_ok()
    }
}

impl std::fmt::Debug for PlanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanKey(<redacted>)")
    }
}

type HmacSha256 = Hmac<Sha256>;

/// Prefixed to the sealed content, so a plan's digest or MAC is never that of another
/// kind of flotilla document.
const SEAL_DOMAIN: &[u8] = b"flotilla-saved-plan-seal-v1\0";

/// The JSON key of the seal.
const INTEGRITY_KEY: &str = "integrity";

/// The bytes a seal covers: every field but the seal, compact, in document order.
fn canonical(fields: &serde_json::Map<String, serde_json::Value>) -> Vec<u8> {
    // Serializing a JSON value to memory cannot fail.
    serde_json::to_vec(fields).unwrap_or_default()
}

fn digest(content: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(SEAL_DOMAIN);
    h.update(content);
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// How a saved plan's seal was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authenticity {
    /// Its MAC verified under the configured key.
    Authenticated,
    /// It has a digest but no MAC, and no key was configured.
    Unauthenticated,
}

/// What a plan was computed from.
pub struct PlanMeta<'a> {
    pub org: &'a str,
    pub spec_file: &'a str,
    pub spec_hash: &'a str,
    pub observed_fingerprint: &'a str,
    pub observed_source: &'a str,
    pub tenants: &'a [String],
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl PlanDocument {
    pub fn new(
        plan: Plan,
        meta: &PlanMeta<'_>,
        unmanaged: &[Unmanaged],
        desired: Option<ResourceSet>,
    ) -> Self {
        PlanDocument {
            format_version: PLAN_FORMAT_VERSION,
            flotilla_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: meta
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            org: meta.org.to_string(),
            spec_file: meta.spec_file.to_string(),
            spec_hash: meta.spec_hash.to_string(),
            observed_fingerprint: meta.observed_fingerprint.to_string(),
            observed_source: meta.observed_source.to_string(),
            tenants: meta.tenants.to_vec(),
            targets: Vec::new(),
            pricing_version: plan.cost.as_ref().map(|c| c.pricing_version.clone()),
            summary: plan.summary,
            changes: plan.changes,
            errors: plan.errors,
            cost: plan.cost,
            unmanaged: unmanaged.to_vec(),
            capacity: Vec::new(),
            desired,
            fingerprint_key: None,
            removal_export: None,
            integrity: None,
        }
    }

    /// The desired state a saved plan carries, as `apply` executes it (empty when the
    /// document has none: a printed rather than saved plan).
    pub fn desired_state(&self) -> crate::resource::Desired {
        let mut d = crate::resource::Desired::from_resources(
            &self.org,
            self.desired.clone().unwrap_or_default(),
        );
        d.fingerprint_key = self.fingerprint_key.clone();
        d.removal_export = self.removal_export.clone();
        d
    }

    /// The directory of the spec the plan was made from: where its secret files are.
    pub fn spec_dir(&self) -> std::path::PathBuf {
        Path::new(&self.spec_file)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// The changes that do something.
    pub fn actionable(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action != Action::Noop)
    }

    pub fn to_json_pretty(&self) -> Result<String, Diagnostic> {
        serde_json::to_string_pretty(self).map_err(|e| {
            Diagnostic::error(format!("the plan cannot be written as JSON: {e}"))
                .hint("this is a bug in flotilla; please report it with the spec")
        })
    }

    /// Reads a saved plan with no key configured; see [`PlanDocument::load_with`].
    pub fn load(path: &Path) -> Result<PlanDocument, Diagnostic> {
        PlanDocument::load_with(path, None).map(|(doc, _)| doc)
    }

    /// Reads a saved plan and checks its seal before anything else: the digest always;
    /// the MAC when the plan carries one (which then needs `key`), and a plan without a
    /// MAC only when no key is configured. A plan without its desired state cannot be
    /// applied.
    pub fn load_with(
        path: &Path,
        key: Option<&PlanKey>,
    ) -> Result<(PlanDocument, Authenticity), Diagnostic> {
        let file = path.display().to_string();
        let bytes = crate::fsutil::read_bounded(path, MAX_PLAN_BYTES).map_err(|e| {
            Diagnostic::error(format!("cannot read the plan: {e}"))
                .file(&file)
                .hint(e.hint())
        })?;
        if let Some(d) = crate::spec::yaml::control_char_problem(&bytes) {
            return Err(d.file(&file).hint(REPLAN_HINT));
        }
        let mut fields = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => return Err(not_a_plan("a saved plan is a JSON object", &file)),
            Err(e) => {
                return Err(crate::diag::json_error("not a flotilla plan file", &e)
                    .file(&file)
                    .hint(REPLAN_HINT));
            }
        };
        check_version(&fields, &file)?;
        if !fields.contains_key("desired") {
            return Err(no_desired_state(&file));
        }
        let seal = fields.shift_remove(INTEGRITY_KEY);
        let authenticity = check_seal(seal, &canonical(&fields), key, &file)?;
        if let Some(a) = repeated_address(&fields) {
            return Err(
                Diagnostic::error("the address is listed twice in the desired state")
                    .file(&file)
                    .address(a)
                    .hint(REPLAN_HINT),
            );
        }
        let doc: PlanDocument =
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| {
                crate::diag::json_error("not a flotilla plan file", &e)
                    .file(&file)
                    .hint(REPLAN_HINT)
            })?;
        if doc.desired.is_none() {
            return Err(no_desired_state(&file));
        }
        Ok((doc, authenticity))
    }

    /// Writes the plan, sealed without a MAC; see [`PlanDocument::save_with`].
    pub fn save(&self, path: &Path) -> Result<(), Diagnostic> {
        self.save_with(path, None)
    }

    /// Writes the plan atomically ([`crate::fsutil::write_atomic`]), sealed: the digest of
    /// its content, and its MAC under `key` when one is given.
    pub fn save_with(&self, path: &Path, key: Option<&PlanKey>) -> Result<(), Diagnostic> {
        let file = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Diagnostic::error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let json = self.sealed_json(key)?;
        crate::fsutil::write_atomic(path, json.as_bytes())
            .map_err(|e| Diagnostic::error(format!("cannot write the plan: {e}")).file(&file))
    }

    /// The document as pretty JSON with its seal in place of any earlier one.
    fn sealed_json(&self, key: Option<&PlanKey>) -> Result<String, Diagnostic> {
        let value = serde_json::to_value(self).map_err(json_bug)?;
        seal_json(value, key)
    }
}

fn json_bug(e: serde_json::Error) -> Diagnostic {
    Diagnostic::error(format!("the plan cannot be written as JSON: {e}"))
        .hint("this is a bug in flotilla; please report it with the spec")
}

/// A plan document given as JSON, sealed (pretty JSON, the seal last, replacing any
/// earlier one): the digest of its content, and its MAC under `key` when one is given.
/// Sealing proves nothing about the content: [`crate::plan::verify`] still checks it.
pub fn seal_json(document: serde_json::Value, key: Option<&PlanKey>) -> Result<String, Diagnostic> {
    let serde_json::Value::Object(mut fields) = document else {
        return Err(Diagnostic::error("a plan document is a JSON object"));
    };
    fields.shift_remove(INTEGRITY_KEY);
    let content = canonical(&fields);
    let seal = Integrity {
        sha256: digest(&content),
        hmac_sha256: key.map(|k| k.sign(&content)),
    };
    fields.insert(
        INTEGRITY_KEY.to_string(),
        serde_json::to_value(seal).map_err(json_bug)?,
    );
    serde_json::to_string_pretty(&fields).map_err(json_bug)
}

/// The first address the desired state lists twice (the typed set would keep only one).
fn repeated_address(fields: &serde_json::Map<String, serde_json::Value>) -> Option<&str> {
    let list = fields.get("desired")?.as_array()?;
    let mut seen = std::collections::HashSet::new();
    list.iter()
        .filter_map(|r| r.get("address")?.as_str())
        .find(|a| !seen.insert(*a))
}

const REPLAN_HINT: &str =
    "make a new plan with `flotilla plan SPEC --out plans/NAME.plan.json` and review it";

fn no_desired_state(file: &str) -> Diagnostic {
    Diagnostic::error("this plan has no desired state (was it printed with --format json rather than saved with --out?)")
        .file(file)
        .hint("save plans with `flotilla plan SPEC --out plans/NAME.plan.json`")
}

fn not_a_plan(message: &str, file: &str) -> Diagnostic {
    Diagnostic::error(format!("not a flotilla plan file: {message}"))
        .file(file)
        .hint(REPLAN_HINT)
}

/// Refuses formats this version does not read, before anything else is trusted.
fn check_version(
    fields: &serde_json::Map<String, serde_json::Value>,
    file: &str,
) -> Result<(), Diagnostic> {
    match fields
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
    {
        Some(v) if v == u64::from(PLAN_FORMAT_VERSION) => Ok(()),
        Some(v) => Err(Diagnostic::error(format!(
            "plan format_version {v} is not supported (this flotilla writes {PLAN_FORMAT_VERSION})"
        ))
        .file(file)
        .hint("re-create the plan with this version of flotilla")),
        None => Err(not_a_plan("it has no `format_version`", file)),
    }
}

/// Checks the seal over `content`.
fn check_seal(
    seal: Option<serde_json::Value>,
    content: &[u8],
    key: Option<&PlanKey>,
    file: &str,
) -> Result<Authenticity, Diagnostic> {
    let failed = |why: &str| {
        Diagnostic::error(format!("integrity check failed: {why}"))
            .file(file)
            .hint(format!("the file was modified, truncated or not saved by `flotilla plan --out`; do not apply it: {REPLAN_HINT}"))
    };
    let Some(seal) = seal else {
        return Err(failed(
            "the plan has no `integrity` seal (saved by an earlier flotilla, or edited)",
        ));
    };
    let seal: Integrity =
        serde_json::from_value(seal).map_err(|_| failed("the `integrity` seal is malformed"))?;
    if seal.sha256 != digest(content) {
        return Err(failed("the content does not match its SHA-256"));
    }
    match (&seal.hmac_sha256, key) {
        (Some(mac), Some(k)) if k.verifies(content, mac) => Ok(Authenticity::Authenticated),
        (Some(_), Some(_)) => Err(failed(
            "the MAC does not match FLOTILLA_PLAN_KEY (another key, or the plan was re-sealed)",
        )),
        (Some(_), None) => Err(Diagnostic::error(
            "integrity check failed: the plan is authenticated (MAC) but no key is configured",
        )
        .file(file)
        .hint("set FLOTILLA_PLAN_KEY to the key the plan was made with")),
        (None, Some(_)) => Err(failed(
            "the plan has no MAC, but FLOTILLA_PLAN_KEY is set: it was not made with the key",
        )),
        (None, None) => Ok(Authenticity::Unauthenticated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> PlanDocument {
        let spec = br#"
version: 1
org: acme
defaults: { image: img:1, region: iad, memory: 1gb, volume: { name: data, size_gb: 1, mount: /data } }
tenants: [{ name: a }]
"#;
        let d = crate::spec::load_bytes(spec, "t.yaml").unwrap().desired;
        let observed = crate::state::interpret(&crate::state::Snapshot::empty(&d.org), &d);
        let plan = crate::plan::plan(&d, &observed, &[]);
        let meta = PlanMeta {
            org: &d.org,
            spec_file: "t.yaml",
            spec_hash: "sha256:0000000000000000000000000000000000000000000000000000000000000001",
            observed_fingerprint: &observed.fingerprint,
            observed_source: "empty",
            tenants: &[],
            created_at: chrono::DateTime::UNIX_EPOCH,
        };
        PlanDocument::new(plan, &meta, &[], Some(d.resources.clone()))
    }

    fn saved_plan() -> String {
        document().sealed_json(None).unwrap()
    }

    /// The document with its seal recomputed (as someone re-sealing an edited plan would).
    fn resealed(doc: &serde_json::Value, key: Option<&PlanKey>) -> String {
        seal_json(doc.clone(), key).unwrap()
    }

    fn load_keyed(
        json: &str,
        key: Option<&PlanKey>,
    ) -> Result<(PlanDocument, Authenticity), Diagnostic> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.plan.json");
        std::fs::write(&path, json).unwrap();
        PlanDocument::load_with(&path, key)
    }

    fn load(json: &str) -> Result<PlanDocument, Diagnostic> {
        load_keyed(json, None).map(|(d, _)| d)
    }

    #[test]
    fn malformed_addresses_and_field_paths_are_refused() {
        let json = saved_plan();
        assert!(load(&json).is_ok());
        assert!(json.contains("\"tenant.a.machine[0]\""));
        let bad = json.replace("\"tenant.a.machine[0]\"", "\"tenant.a.machine[00]\"");
        let bad = resealed(&serde_json::from_str(&bad).unwrap(), None);
        let e = load(&bad).unwrap_err().to_string();
        assert!(
            e.contains("malformed address `tenant.a.machine[00]`"),
            "{e}"
        );

        let mut doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        doc["changes"][0]["fields"] =
            serde_json::json!([{ "path": "nonsense", "before": 1, "after": 2 }]);
        let e = load(&resealed(&doc, None)).unwrap_err().to_string();
        assert!(e.contains("unknown field path `nonsense`"), "{e}");
    }

    #[test]
    fn any_edit_breaks_the_seal() {
        let json = saved_plan();
        let (doc, auth) = load_keyed(&json, None).unwrap();
        assert_eq!(auth, Authenticity::Unauthenticated);
        assert_eq!(doc.integrity, None, "the seal is checked, not kept");
        let edits = [
            json.replace("img:1", "img:2"),
            json.replace("\"iad\"", "\"ord\""),
            json[..json.len() / 2].to_string(),
            json.replace("\"integrity\"", "\"integrity_\""),
        ];
        for edited in edits {
            let e = load(&edited).unwrap_err().to_string();
            assert!(
                e.contains("integrity check failed") || e.contains("not a flotilla plan file"),
                "{e}"
            );
        }
        let mut unsealed: serde_json::Value = serde_json::from_str(&json).unwrap();
        unsealed
            .as_object_mut()
            .unwrap()
            .shift_remove(INTEGRITY_KEY);
        let e = load(&unsealed.to_string()).unwrap_err().to_string();
        assert!(
            e.contains("integrity check failed") && e.contains("no `integrity` seal"),
            "{e}"
        );
        let mut old = unsealed.clone();
        old["format_version"] = serde_json::json!(0);
        let e = load(&old.to_string()).unwrap_err().to_string();
        assert!(e.contains("format_version 0 is not supported"), "{e}");
    }

    #[test]
    fn a_keyed_plan_needs_its_key() {
        let key = PlanKey::new("correct horse");
        let json = document().sealed_json(Some(&key)).unwrap();
        let (_, auth) = load_keyed(&json, Some(&key)).unwrap();
        assert_eq!(auth, Authenticity::Authenticated);
        let wrong = PlanKey::new("battery staple");
        let e = load_keyed(&json, Some(&wrong)).unwrap_err().to_string();
        assert!(e.contains("MAC does not match"), "{e}");
        let e = load_keyed(&json, None).unwrap_err().to_string();
        assert!(e.contains("no key is configured"), "{e}");
        // Unkeyed plans are refused when a key is configured.
        let e = load_keyed(&saved_plan(), Some(&key))
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no MAC"), "{e}");
        // Re-sealing an edit without the key does not help.
        let edited = json.replace("img:1", "img:2");
        let forged = resealed(&serde_json::from_str(&edited).unwrap(), Some(&wrong));
        assert!(load_keyed(&forged, Some(&key)).is_err());
        assert!(!format!("{key:?}").contains("horse"));
    }
}
