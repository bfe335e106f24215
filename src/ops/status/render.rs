//! `status` renderings: text (one block per tenant, aligned Machine rows, the fleet's
//! summary line) and JSON (the [`Outcome`] as it is). Pure.

use super::{Group, Machine, Outcome, Summary};
use crate::ops::Error;

/// The status as text.
pub fn text(o: &Outcome) -> String {
    let mut out = format!(
        "Fleet {} (org {}), observed from {}\n",
        o.fleet, o.org, o.source
    );
    let rows: Vec<[String; 6]> = o
        .groups
        .iter()
        .flat_map(|g| g.machines.iter().map(row))
        .collect();
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut rows = rows.into_iter();
    for g in &o.groups {
        out.push('\n');
        out.push_str(&heading(g));
        for _ in &g.machines {
            let Some(r) = rows.next() else { break };
            let cells: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(&format!("  {}\n", cells.join("  ").trim_end()));
        }
    }
    for e in &o.errors {
        out.push_str(&format!("\nplan error: {e}\n"));
    }
    out.push('\n');
    out.push_str(&summary_line(&o.summary));
    out.push('\n');
    out
}

/// `tenant alice: 1 Machine, drift 2 changes`.
fn heading(g: &Group) -> String {
    let n = g.machines.len();
    let machines = match n {
        0 if g.declared => "no Machines".to_string(),
        0 => "no Machines (removed from the spec)".to_string(),
        1 => "1 Machine".to_string(),
        n => format!("{n} Machines"),
    };
    let removed = if g.declared || n == 0 {
        ""
    } else {
        " (removed from the spec)"
    };
    let drift = match g.drift {
        0 => "no drift".to_string(),
        1 => "drift: 1 change".to_string(),
        d => format!("drift: {d} changes"),
    };
    format!("{} {}{removed}: {machines}, {drift}\n", g.kind, g.name)
}

fn row(m: &Machine) -> [String; 6] {
    let checks = if m.checks.is_empty() {
        "no checks".to_string()
    } else {
        m.checks
            .iter()
            .map(|c| format!("{} {}", c.name, c.status))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut last = match &m.updated_at {
        Some(t) => format!("updated {t}"),
        None => "updated (unknown)".to_string(),
    };
    if let Some(r) = &m.rollout {
        let state = r.state.as_deref().unwrap_or("recorded");
        last.push_str(&format!(
            " · rollout to {} {state}",
            super::image_version(&r.image)
        ));
    }
    [
        m.slot.clone(),
        m.state.clone(),
        m.region.clone(),
        super::image_name(&m.image).to_string(),
        checks,
        last,
    ]
}

/// `3 tenants, 3 Machines: 2 started, …; versions: app:1.0 ×2, …; drift: N changes in M`.
pub fn summary_line(s: &Summary) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut states = format!(
        "{} started, {} stopped, {} suspended, {} failed",
        s.started, s.stopped, s.suspended, s.failed
    );
    for (state, n) in &s.other {
        states.push_str(&format!(", {n} {state}"));
    }
    let versions = if s.versions.is_empty() {
        "none".to_string()
    } else {
        s.versions
            .iter()
            .map(|v| format!("{} ×{}", v.image, v.machines))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let drift = if s.drift == 0 {
        "none".to_string()
    } else {
        format!(
            "{} in {}",
            plural(s.drift, "change", "changes"),
            plural(s.drifted, "tenant or app", "tenants or apps")
        )
    };
    format!(
        "{}, {}: {states}; versions: {versions}; drift: {drift}",
        plural(s.tenants, "tenant", "tenants"),
        plural(s.machines, "Machine", "Machines"),
    )
}

/// The status as pretty JSON.
pub fn json(o: &Outcome) -> Result<String, Error> {
    crate::ops::to_json_pretty(o, "the status").map(|s| s + "\n")
}

#[cfg(test)]
mod tests {
    use super::super::{Check, Rollout, Summary, VersionCount};
    use super::*;
    use crate::diag::Diagnostics;

    fn m(slot: u32, state: &str, image: &str, rollout: Option<Rollout>) -> Machine {
        Machine {
            address: crate::resource::Address::machine(
                &crate::resource::Owner::Tenant("alice"),
                slot,
            ),
            slot: format!("machine[{slot}]"),
            id: format!("m{slot}"),
            state: state.into(),
            region: "iad".into(),
            image: image.into(),
            version: super::super::image_version(image),
            checks: vec![Check {
                name: "alive".into(),
                status: "passing".into(),
            }],
            updated_at: Some("2026-11-01T10:00:05Z".into()),
            rollout,
        }
    }

    #[test]
    fn text_shows_rollouts_other_states_and_removed_tenants() {
        let rollout = Rollout {
            image: "registry.fly.io/app:2.0".into(),
            state: Some("failed".into()),
            wave: Some("1".into()),
        };
        let o = Outcome {
            org: "acme".into(),
            fleet: "prod".into(),
            source: "state:s.json".into(),
            groups: vec![Group {
                kind: "tenant",
                name: "alice".into(),
                declared: false,
                machines: vec![
                    m(0, "started", "registry.fly.io/app:1.0", None),
                    m(1, "starting", "registry.fly.io/app:2.0", Some(rollout)),
                ],
                drift: 3,
            }],
            summary: Summary {
                tenants: 1,
                machines: 2,
                started: 1,
                other: [("starting".to_string(), 1)].into_iter().collect(),
                versions: vec![
                    VersionCount {
                        image: "app:1.0".into(),
                        machines: 1,
                    },
                    VersionCount {
                        image: "app:2.0".into(),
                        machines: 1,
                    },
                ],
                drift: 3,
                drifted: 1,
                ..Summary::default()
            },
            errors: vec![],
            spec_warnings: Diagnostics::new(),
            diagnostics: Diagnostics::new(),
        };
        let t = text(&o);
        assert!(
            t.contains("tenant alice (removed from the spec): 2 Machines, drift: 3 changes"),
            "{t}"
        );
        assert!(
            t.contains("machine[1]  starting  iad  app:2.0  alive passing  updated 2026-11-01T10:00:05Z · rollout to 2.0 failed"),
            "{t}"
        );
        assert!(
            t.ends_with(
                "1 tenant, 2 Machines: 1 started, 0 stopped, 0 suspended, 0 failed, 1 starting; \
                 versions: app:1.0 ×1, app:2.0 ×1; drift: 3 changes in 1 tenant or app\n"
            ),
            "{t}"
        );
        let j: serde_json::Value = serde_json::from_str(&json(&o).unwrap()).unwrap();
        assert_eq!(j["groups"][0]["machines"][1]["rollout"]["state"], "failed");
        assert_eq!(j["summary"]["versions"][1]["image"], "app:2.0");
    }
}
