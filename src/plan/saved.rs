//! The plan document: what `plan --format json` prints and `plan --out FILE` saves.
//!
//! A saved plan carries the spec hash, the fingerprint of the observed state it was
//! computed against, the time it was made and the full desired state, so that `apply
//! PLANFILE` can re-observe and refuse a stale plan. It holds secret references (env
//! variable names, file paths), never secret values.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::plan::{Action, Change, Plan, PlanCost, Summary};
use crate::resource::ResourceSet;
use crate::state::Unmanaged;

pub const PLAN_FORMAT_VERSION: u32 = 1;

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
    /// The desired state to apply (saved plans only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<ResourceSet>,
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
            pricing_version: plan.cost.as_ref().map(|c| c.pricing_version.clone()),
            summary: plan.summary,
            changes: plan.changes,
            errors: plan.errors,
            cost: plan.cost,
            unmanaged: unmanaged.to_vec(),
            desired,
        }
    }

    /// The desired state a saved plan carries, as `apply` executes it (empty when the
    /// document has none: a printed rather than saved plan).
    pub fn desired_state(&self) -> crate::resource::Desired {
        crate::resource::Desired::from_resources(
            &self.org,
            self.desired.clone().unwrap_or_default(),
        )
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

    /// Reads a saved plan; a plan without its desired state cannot be applied.
    pub fn load(path: &Path) -> Result<PlanDocument, Diagnostic> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|e| Diagnostic::error(format!("cannot read the plan: {e}")).file(&file))?;
        let doc: PlanDocument = serde_json::from_slice(&bytes).map_err(|e| {
            crate::diag::json_error("not a flotilla plan file", &e)
                .file(&file)
                .hint("make one with `flotilla plan SPEC --out plans/NAME.plan.json`")
        })?;
        if doc.format_version != PLAN_FORMAT_VERSION {
            return Err(Diagnostic::error(format!(
                "plan format_version {} is not supported (this flotilla writes {PLAN_FORMAT_VERSION})",
                doc.format_version
            ))
            .file(&file)
            .hint("re-create the plan with this version of flotilla"));
        }
        if doc.desired.is_none() {
            return Err(Diagnostic::error("this plan has no desired state (was it printed with --format json rather than saved with --out?)")
                .file(&file)
                .hint("save plans with `flotilla plan SPEC --out plans/NAME.plan.json`"));
        }
        Ok(doc)
    }

    /// Writes the plan atomically ([`crate::fsutil::write_atomic`]).
    pub fn save(&self, path: &Path) -> Result<(), Diagnostic> {
        let file = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Diagnostic::error(format!("cannot create {}: {e}", dir.display())))?;
        }
        crate::fsutil::write_atomic(path, self.to_json_pretty()?.as_bytes())
            .map_err(|e| Diagnostic::error(format!("cannot write the plan: {e}")).file(&file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved_plan() -> String {
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
            spec_hash: "sha256:0",
            observed_fingerprint: &observed.fingerprint,
            observed_source: "empty",
            tenants: &[],
            created_at: chrono::DateTime::UNIX_EPOCH,
        };
        PlanDocument::new(plan, &meta, &[], Some(d.resources.clone()))
            .to_json_pretty()
            .unwrap()
    }

    fn load(json: &str) -> Result<PlanDocument, Diagnostic> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.plan.json");
        std::fs::write(&path, json).unwrap();
        PlanDocument::load(&path)
    }

    #[test]
    fn malformed_addresses_and_field_paths_are_refused() {
        let json = saved_plan();
        assert!(load(&json).is_ok());
        assert!(json.contains("\"tenant.a.machine[0]\""));
        let bad = json.replace("\"tenant.a.machine[0]\"", "\"tenant.a.machine[00]\"");
        let e = load(&bad).unwrap_err().to_string();
        assert!(
            e.contains("malformed address `tenant.a.machine[00]`"),
            "{e}"
        );

        let mut doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        doc["changes"][0]["fields"] =
            serde_json::json!([{ "path": "nonsense", "before": 1, "after": 2 }]);
        let e = load(&doc.to_string()).unwrap_err().to_string();
        assert!(e.contains("unknown field path `nonsense`"), "{e}");
    }
}
