//! What a tenant's removal does to its data. On Fly a volume's snapshots outlive the
//! volume but not its app, and removing a tenant deletes its app: the snapshot taken
//! before its volume is destroyed goes with it. So a removed tenant's volume is either
//! exported off-site first, with the spec's `defaults.backups.export` rendered for the
//! tenant (its own entry and tier are gone from the spec), and is then not a data loss;
//! or, without an export, it is a data loss the plan says so (and apply needs
//! `--allow-data-loss`). Pure.

use std::collections::HashMap;

use crate::plan::{Action, Plan};
use crate::resource::{Desired, ExportConfig, Kind};

/// Marks the volumes of removed tenants: exported first (`export_before_delete`, no
/// data loss) when the spec's defaults configure an export, else why nothing is kept.
pub fn note_exports(plan: &mut Plan, desired: &Desired) {
    let removed: HashMap<String, String> = plan
        .changes
        .iter()
        .filter(|c| c.kind == Kind::App && c.action == Action::Delete)
        .filter_map(|c| Some((c.app.clone(), c.tenant.clone()?)))
        .collect();
    let mut errors = Vec::new();
    for c in plan
        .changes
        .iter_mut()
        .filter(|c| c.kind == Kind::Volume && c.action == Action::Delete)
    {
        let Some(tenant) = removed.get(&c.app) else {
            continue;
        };
        let export = desired
            .removal_export
            .as_ref()
            .map(|t| ExportConfig::for_removed(t, &desired.org, tenant));
        match export {
            Some(Ok(cfg)) => {
                c.reasons.push(format!(
                    "exported to {} first (`defaults.backups.export`): app {} is deleted with the volume's snapshots; the deletion waits for the export",
                    cfg.to, c.app
                ));
                c.data_loss = false;
                c.export_first = Some(Box::new(cfg));
            }
            Some(Err(e)) => errors.push(format!(
                "{}: tenant {tenant} is removed and its volume cannot be exported first: {e}",
                c.address
            )),
            None => c.reasons.push(format!(
                "{SNAPSHOTS_DIE} the tenant's removal (app {} is deleted with the volume's snapshots; no `defaults.backups.export` to export it first)",
                c.app
            )),
        }
    }
    plan.errors.extend(errors);
}

/// The start of the reason on a removed tenant's volume that nothing keeps.
pub const SNAPSHOTS_DIE: &str = "no snapshot survives";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Observed;

    const SPEC: &str = r#"
version: 1
org: acme
naming: { app: "acme-{{ tenant.name }}" }
defaults:
  image: registry.fly.io/a:1
  region: ams
  size: shared-cpu-1x
  memory: 256mb
  volume: { name: data, size_gb: 1, mount: /data }
  BACKUPS
tenants:
  - name: alice
  - name: bob
"#;

    fn removing_bob(backups: &str) -> Plan {
        let load = |text: &str| {
            crate::spec::load_bytes(text.as_bytes(), "s.yaml")
                .unwrap()
                .desired
        };
        let before = load(&SPEC.replace("BACKUPS", backups));
        let after = load(
            &SPEC
                .replace("BACKUPS", backups)
                .replace("  - name: bob\n", ""),
        );
        let observed = Observed {
            resources: crate::resource::ResourceSet::new(
                before
                    .resources
                    .iter()
                    .cloned()
                    .map(|mut r| {
                        r.id = Some(format!("id-{}", r.address));
                        r
                    })
                    .collect(),
            ),
            ..Observed::default()
        };
        crate::plan::plan(&after, &observed, &[])
    }

    fn bob_volume(p: &Plan) -> &crate::plan::Change {
        p.changes
            .iter()
            .find(|c| c.kind == Kind::Volume && c.app == "acme-bob")
            .unwrap()
    }

    #[test]
    fn a_removed_tenant_is_exported_with_the_defaults_rendered_for_it() {
        let p = removing_bob(
            r#"backups: { export: { to: "s3://bk/{{ org }}/{{ tenant.name }}", credentials: { K: { env: BK } } } }"#,
        );
        let v = bob_volume(&p);
        assert_eq!(v.action, Action::Delete);
        assert!(!v.data_loss, "{v:?}");
        let cfg = v.export_first.as_ref().unwrap();
        assert_eq!(cfg.to, "s3://bk/acme/bob");
        assert!(cfg.credentials.contains_key("K"));
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with("exported to s3://bk/acme/bob first"))
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        // The volume of a tenant that stays is untouched by the rule.
        assert!(
            p.changes
                .iter()
                .all(|c| c.app != "acme-alice" || c.action == Action::Noop)
        );
    }

    #[test]
    fn without_an_export_a_removed_tenants_volume_is_a_data_loss_that_says_why() {
        let p = removing_bob("backups: { snapshot_before_destroy: true }");
        let v = bob_volume(&p);
        assert!(v.data_loss);
        assert!(v.export_first.is_none());
        assert!(
            v.reasons
                .iter()
                .any(|r| r.starts_with(SNAPSHOTS_DIE) && r.contains("app acme-bob is deleted")),
            "{:?}",
            v.reasons
        );
    }

    #[test]
    fn a_destination_that_renders_to_no_s3_url_is_a_plan_error() {
        let mut d = crate::spec::load_bytes(
            SPEC.replace(
                "BACKUPS",
                r#"backups: { export: { to: "s3://bk/{{ tenant.name }}" } }"#,
            )
            .as_bytes(),
            "s.yaml",
        )
        .unwrap()
        .desired;
        let t = d.removal_export.as_mut().unwrap();
        t.to = "{{ tenant.name }}".into();
        assert!(
            ExportConfig::for_removed(t, "acme", "bob")
                .unwrap_err()
                .contains("`bob`")
        );
    }
}
