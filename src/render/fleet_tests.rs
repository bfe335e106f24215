//! Renderings of a fleet-sized plan: 300 tenants given the same image change, two
//! outliers, one tenant removed (text, `--detail`, Markdown, JSON, the recap beside the
//! apply prompt), and a plan too large for one pull-request comment.

use serde_json::{Value, json};

use super::*;

fn machine(tenant: &str, to: &str, extra: &[Value], cost: (&str, &str)) -> Value {
    let mut fields =
        vec![json!({"path": "image", "before": "registry.fly.io/app:1.0", "after": to})];
    fields.extend_from_slice(extra);
    json!({
        "address": format!("tenant.{tenant}.machine[0]"),
        "kind": "machine",
        "action": "update",
        "tenant": tenant,
        "app": format!("acme-{tenant}"),
        "id": format!("m-{tenant}"),
        "fields": fields,
        "restart": true,
        "monthly_cost_before_usd": cost.0,
        "monthly_cost_after_usd": cost.1,
    })
}

fn deleted(tenant: &str, kind: &str, slot: &str, data_loss: bool, cost: &str) -> Value {
    json!({
        "address": format!("tenant.{tenant}.{slot}"),
        "kind": kind,
        "action": "delete",
        "tenant": tenant,
        "app": format!("acme-{tenant}"),
        "id": format!("{kind}-{tenant}"),
        "reasons": ["managed by flotilla but no longer declared"],
        "data_loss": data_loss,
        "monthly_cost_before_usd": cost,
        "monthly_cost_after_usd": "0",
    })
}

/// A document of `changes` with costs, a cost warning and an unmanaged Machine.
fn document(changes: Vec<Value>) -> PlanDocument {
    let changes: Vec<Change> = changes
        .into_iter()
        .map(|c| serde_json::from_value(c).unwrap())
        .collect();
    let summary = crate::plan::Summary::of(&changes);
    let before: Usd = changes.iter().filter_map(|c| c.monthly_cost_before).sum();
    let after: Usd = changes.iter().filter_map(|c| c.monthly_cost_after).sum();
    serde_json::from_value(json!({
        "format_version": 1,
        "flotilla_version": "0.1.0",
        "created_at": "2026-12-01T00:00:00Z",
        "org": "acme",
        "spec_file": "specs/fleet.yaml",
        "spec_hash": "sha256:00",
        "observed_fingerprint": "sha256:11",
        "observed_source": "state:fleet.json",
        "pricing_version": "2026-01-01",
        "summary": summary,
        "changes": changes,
        "cost": {
            "pricing_version": "2026-01-01",
            "monthly_before_usd": before.to_string(),
            "monthly_after_usd": after.to_string(),
            "delta_usd": (after - before).to_string(),
            "assumptions": ["default usage 24 active h/day"],
            "warnings": ["Fly's docs show newer prices with no effective date published: these figures use pricing 2026-01-01."],
        },
        "unmanaged": [{"app": "acme-u007", "kind": "machine", "id": "e28650", "name": "debug-shell", "reason": "no flotilla metadata; left alone"}],
    }))
    .unwrap()
}

/// 300 tenants roll to 2.0; u301 goes to 2.1 with twice the memory, u302 stays stopped
/// (takes effect at next start); u303 is removed with its volume.
fn fleet() -> PlanDocument {
    let mut changes: Vec<Value> = (1..=300)
        .map(|i| {
            machine(
                &format!("u{i:03}"),
                "registry.fly.io/app:2.0",
                &[],
                ("5.70", "5.70"),
            )
        })
        .collect();
    let memory = json!({"path": "guest.memory_mb", "before": 1024, "after": 2048});
    changes.push(machine(
        "u301",
        "registry.fly.io/app:2.1",
        &[memory],
        ("5.70", "10.70"),
    ));
    let mut idle = machine("u302", "registry.fly.io/app:2.0", &[], ("0.1996", "0.2346"));
    idle["stays_idle"] = json!(true);
    changes.push(idle);
    changes.push(deleted("u303", "app", "app", false, "0"));
    changes.push(deleted("u303", "volume", "volume.data[0]", true, "0.45"));
    changes.push(deleted("u303", "machine", "machine[0]", false, "5.70"));
    document(changes)
}

#[test]
fn a_fleet_plan_groups_identical_changes() {
    let doc = fleet();
    let text = plan_text(&doc, None, Style::plain(), Layout::Grouped);
    insta::assert_snapshot!("fleet_grouped_text", text);
    // One block for the 300, one per outlier and per destroyed resource.
    assert_eq!(text.matches("\n  # ").count(), 6, "{text}");
}

#[test]
fn detail_prints_every_resource() {
    let doc = fleet();
    let text = plan_text(&doc, None, Style::plain(), Layout::Detail);
    assert_eq!(text.matches("\n  # tenant.").count(), 305);
    assert!(!text.contains("Summary:"));
    let head: String = text.lines().take(12).collect::<Vec<_>>().join("\n");
    let tail: String = text
        .lines()
        .skip(text.lines().count() - 40)
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(
        "fleet_detail_text_head_and_tail",
        format!("{head}\n[…]\n{tail}")
    );
}

#[test]
fn a_fleet_plan_as_a_review_comment() {
    let md = plan_markdown(&fleet(), None);
    assert!(md.len() < COMMENT_LIMIT);
    // Warnings come before the details.
    let details = md.find("<details>").unwrap();
    for w in [
        "[!WARNING]",
        "newer prices",
        "debug-shell",
        "Destroys the data",
    ] {
        assert!(md.find(w).unwrap() < details, "{w}");
    }
    insta::assert_snapshot!("fleet_grouped_markdown", md);
}

#[test]
fn a_fleet_plan_as_json_keeps_changes_and_adds_groups() {
    let doc = fleet();
    let json = plan_json(&doc, None).unwrap();
    let v: Value = serde_json::from_str(&json).unwrap();
    // The document's own fields are as they were: existing readers see no difference.
    let plain: Value = serde_json::from_str(&doc.to_json_pretty().unwrap()).unwrap();
    let mut without = v.clone();
    without.as_object_mut().unwrap().shift_remove("groups");
    assert_eq!(without, plain);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 6);
    assert_eq!(groups[0]["count"], 300);
    assert_eq!(groups[0]["members"].as_array().unwrap().len(), 300);
    // The first group in full, with two of its members, and every other group.
    let mut first = groups[0].clone();
    first["members"] = json!([groups[0]["members"][0], groups[0]["members"][299]]);
    let shown = json!({"groups[0] (members: first and last)": first, "groups[1..]": groups[1..]});
    insta::assert_snapshot!(
        "fleet_groups_json",
        serde_json::to_string_pretty(&shown).unwrap()
    );
}

#[test]
fn the_recap_beside_the_prompt_repeats_the_warnings() {
    let doc = fleet();
    let spec = crate::diag::Diagnostic::warning("secret file `secrets/jwt.txt` does not exist")
        .address("tenant.u001.secret.JWT");
    insta::assert_snapshot!(
        "fleet_confirm_recap",
        confirm_recap(&doc, [&spec], Style::plain())
    );
    let quiet = document(vec![machine("a", "img:2", &[], ("1", "1"))]);
    let mut quiet = quiet;
    quiet.unmanaged.clear();
    quiet.cost = None;
    assert_eq!(confirm_recap(&quiet, [], Style::plain()), "");
}

#[test]
fn a_comment_too_large_is_cut_with_a_note() {
    // 3,000 tenants each with a change of its own: nothing groups.
    let changes = (0..3000)
        .map(|i| {
            machine(
                &format!("t{i:04}"),
                &format!("registry.fly.io/app:{i}"),
                &[],
                ("1", "2"),
            )
        })
        .collect();
    let md = plan_markdown(&document(changes), None);
    assert!(md.len() <= COMMENT_LIMIT, "{}", md.len());
    assert!(md.contains("more rows not shown: a comment holds at most 65,536 characters"));
    assert!(md.contains("[!WARNING]"));
    assert!(md.ends_with("</details>\n"), "{}", &md[md.len() - 300..]);
}
