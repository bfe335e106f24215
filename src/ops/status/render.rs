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
