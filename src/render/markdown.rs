//! The plan as a pull-request review comment: a summary table, what must not be missed
//! (errors, destroys and data loss, cost and unmanaged-resource warnings) above the fold,
//! the grouped changes with their cost and its reasons, then every change inside
//! `<details>`. GitHub refuses comments over 65,536 characters, so the details are cut
//! to fit, with a note.

use std::fmt::Write as _;

use super::{Callouts, field_values, plan_groups, verb, verb_plural, write_members};
use crate::money::{Usd, fmt_count, fmt_delta, fmt_usd, shown_delta};
use crate::plan::group::{ChangeGroup, cost_reasons};
use crate::plan::saved::PlanDocument;
use crate::plan::{Action, Change};
use crate::resource::ResourceSet;

/// The most characters GitHub accepts in a comment.
pub const COMMENT_LIMIT: usize = 65_536;

/// Room kept for the closing of the details and the truncation note.
const CLOSING: usize = 600;

/// The most field changes a row of the changes table names.
const FIELDS_PER_ROW: usize = 3;

fn icon(a: Action) -> &'static str {
    match a {
        Action::Create => "➕",
        Action::Update => "🔄",
        Action::Replace => "♻️",
        Action::Delete => "🗑️",
        Action::Move => "🚚",
        Action::Noop => "",
    }
}

/// Text safe inside a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Text as inline code (backquotes inside become quotes).
fn code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'"))
}

/// The plan as a Markdown pull-request comment, at most [`COMMENT_LIMIT`] characters.
/// `desired` (the desired state the plan was made from) describes created resources.
pub fn plan_markdown(doc: &PlanDocument, desired: Option<&ResourceSet>) -> String {
    let mut out = String::with_capacity(8192);
    let _ = writeln!(
        out,
        "### flotilla plan for {} (org {})\n",
        code(&doc.spec_file),
        code(&doc.org)
    );
    summary_table(&mut out, doc);
    above_the_fold(&mut out, doc);
    if doc.summary.changes() == 0 {
        out.push_str("No changes. The fleet matches the spec.\n");
        return out;
    }
    let groups = plan_groups(doc, desired);
    changes_table(&mut out, &groups);
    cost_table(&mut out, &groups);
    details(&mut out, doc);
    out
}

/// Counts by action and the monthly cost, in one table.
fn summary_table(out: &mut String, doc: &PlanDocument) {
    let s = doc.summary;
    // A column for moves only in plans that move something.
    let moves = s.moves > 0;
    out.push_str("| | to create | to update | to replace |");
    if moves {
        out.push_str(" to move |");
    }
    out.push_str(" to delete |");
    out.push_str(if doc.cost.is_some() {
        " monthly cost |\n"
    } else {
        "\n"
    });
    out.push_str("|---|---:|---:|---:|---:|");
    if moves {
        out.push_str("---:|");
    }
    out.push_str(if doc.cost.is_some() { "---|\n" } else { "\n" });
    let _ = write!(
        out,
        "| **Plan** | {} | {} | {} |",
        fmt_count(s.create as u64),
        fmt_count(s.update as u64),
        fmt_count(s.replace as u64),
    );
    if moves {
        let _ = write!(out, " {} |", fmt_count(s.moves as u64));
    }
    let _ = write!(out, " {} |", fmt_count(s.delete as u64));
    if let Some(c) = &doc.cost {
        let _ = write!(
            out,
            " {} → {} (**{}**) |",
            fmt_usd(c.monthly_before),
            fmt_usd(c.monthly_after),
            fmt_delta(shown_delta(c.monthly_before, c.monthly_after))
        );
    }
    out.push_str("\n\n");
    if let Some(c) = &doc.cost {
        let _ = write!(out, "Pricing {}, 30-day month.", code(&c.pricing_version));
        if let Some(l) = &c.fleet_lock {
            let _ = write!(
                out,
                " Includes the fleet lock sentinel (a stopped Machine in {}, rootfs only): {} per month.",
                code(&l.app),
                fmt_usd(l.monthly)
            );
        }
        out.push_str("\n\n");
    }
}

/// Errors, destroys and data loss, cost and capacity warnings and unmanaged resources,
/// each as a GitHub alert.
fn above_the_fold(out: &mut String, doc: &PlanDocument) {
    alert(out, "CAUTION", doc.errors.iter().map(|e| cell_line(e)));
    let callouts = Callouts::of(doc).lines(code);
    alert(out, "WARNING", callouts.iter().map(|l| bold_head(l)));
    if let Some(c) = &doc.cost {
        alert(
            out,
            "WARNING",
            c.warnings
                .iter()
                .map(|w| format!("**Cost:** {}", cell_line(w))),
        );
    }
    alert(
        out,
        "WARNING",
        doc.capacity
            .iter()
            .map(|w| format!("**Capacity:** {}", w.message())),
    );
    if !doc.unmanaged.is_empty() {
        let mut lines = vec!["**Not managed by flotilla (left alone):**".to_string()];
        lines.extend(doc.unmanaged.iter().map(|u| {
            format!(
                "- {} {} {} in app {}: {}",
                u.kind,
                code(&u.name),
                code(&u.id),
                code(&u.app),
                cell_line(&u.reason)
            )
        }));
        alert(out, "NOTE", lines.into_iter());
    }
}

/// A line of an alert: one paragraph line.
fn cell_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// `destroys 2 resources: …` with its head (up to the colon) in bold.
fn bold_head(l: &str) -> String {
    match l.split_once(": ") {
        Some((head, rest)) => format!("**{}{}:** {rest}", head[..1].to_uppercase(), &head[1..]),
        None => l.to_string(),
    }
}

fn alert(out: &mut String, kind: &str, lines: impl Iterator<Item = String>) {
    let mut lines = lines.peekable();
    if lines.peek().is_none() {
        return;
    }
    let _ = writeln!(out, "> [!{kind}]");
    let mut first = true;
    for l in lines {
        if !first {
            out.push_str(">\n");
        }
        first = false;
        let _ = writeln!(out, "> {l}");
    }
    out.push('\n');
}

/// Who a group's change is made to: the address of a single change, else the slot and
/// its members.
fn who(g: &ChangeGroup<'_>) -> String {
    if g.is_single() {
        return code(g.first().address.as_str());
    }
    let mut s = String::new();
    // The owners themselves (apps) have no slot: "3 apps (…)".
    if !g.slot.is_empty() {
        s.push_str(&code(&g.slot));
        s.push_str(" of ");
    }
    write_members(&mut s, g, |o, n| o.push_str(&code(n)));
    s
}

/// What a group's change does: its verb, up to a few field changes, reasons, flags.
fn what(g: &ChangeGroup<'_>) -> String {
    let c = g.first();
    let mut parts: Vec<String> = Vec::new();
    let v = if g.is_single() {
        verb(c)
    } else {
        verb_plural(c)
    };
    let mut head = v.to_string();
    if let Some(shape) = &g.shape {
        head.push_str(": ");
        head.push_str(shape);
    }
    parts.push(head);
    for f in c.fields.iter().take(FIELDS_PER_ROW) {
        parts.push(format!("{} {}", f.path, code(&field_values(f))));
    }
    if c.fields.len() > FIELDS_PER_ROW {
        parts.push(format!(
            "and {} more fields",
            c.fields.len() - FIELDS_PER_ROW
        ));
    }
    parts.extend(c.reasons.iter().cloned());
    if c.data_loss {
        parts.push("**destroys volume data**".into());
    }
    if c.prevent_destroy {
        parts.push("**blocked by prevent_destroy**".into());
    }
    cell(&parts.join("; "))
}

/// `$1.00 → $2.00 (+$1.00)`, empty when the cost does not move as shown.
fn cost_cell(g: &ChangeGroup<'_>) -> String {
    match g.monthly() {
        Some((b, a)) if !shown_delta(b, a).is_zero() => format!(
            "{} → {} ({})",
            fmt_usd(b),
            fmt_usd(a),
            fmt_delta(shown_delta(b, a))
        ),
        _ => String::new(),
    }
}

/// Appends `row` unless it would leave less than the closing's room; false when full.
fn fits(out: &mut String, row: &str) -> bool {
    if out.len() + row.len() + CLOSING > COMMENT_LIMIT {
        return false;
    }
    out.push_str(row);
    true
}

/// The note that replaces rows that did not fit.
fn truncated(out: &mut String, left: usize, what: &str) {
    let _ = writeln!(
        out,
        "\n*… {} more {what} not shown: a comment holds at most {} characters (`flotilla plan --format json` lists every change).*",
        fmt_count(left as u64),
        fmt_count(COMMENT_LIMIT as u64)
    );
}

/// One row per group of identical changes.
fn changes_table(out: &mut String, groups: &[ChangeGroup<'_>]) {
    out.push_str("#### Changes\n\n| | resources | change | monthly cost |\n|---|---|---|---|\n");
    for (i, g) in groups.iter().enumerate() {
        let row = format!(
            "| {} | {} | {} | {} |\n",
            icon(g.first().action),
            who(g),
            what(g),
            cost_cell(g)
        );
        if !fits(out, &row) {
            truncated(out, groups.len() - i, "rows");
            return;
        }
    }
    out.push('\n');
}

/// Where the cost delta comes from: each group that moves it, with why.
fn cost_table(out: &mut String, groups: &[ChangeGroup<'_>]) {
    let moving: Vec<(&ChangeGroup<'_>, Usd, Usd)> = groups
        .iter()
        .filter_map(|g| g.monthly().map(|(b, a)| (g, b, a)))
        .filter(|(_, b, a)| !shown_delta(*b, *a).is_zero())
        .collect();
    if moving.is_empty() {
        return;
    }
    out.push_str(
        "#### Cost delta\n\n| resources | before | after | delta | why |\n|---|---:|---:|---:|---|\n",
    );
    for (i, (g, b, a)) in moving.iter().enumerate() {
        let mut why = cost_reasons(g.first()).join(", ");
        if why.is_empty() {
            why = "usage or prices".into();
        }
        if let (false, Some(e)) = (g.is_single(), g.monthly_each()) {
            let _ = write!(why, " ({} each)", fmt_delta(e));
        }
        let row = format!(
            "| {} | {} | {} | {} | {} |\n",
            who(g),
            fmt_usd(*b),
            fmt_usd(*a),
            fmt_delta(shown_delta(*b, *a)),
            cell(&why)
        );
        if !fits(out, &row) {
            truncated(out, moving.len() - i, "rows");
            return;
        }
    }
    out.push('\n');
}

/// A change's row of the details table.
fn detail_row(c: &Change) -> String {
    let mut details: Vec<String> = c.reasons.clone();
    if c.data_loss {
        details.push("**destroys volume data**".into());
    }
    if c.prevent_destroy {
        details.push("**blocked by prevent_destroy**".into());
    }
    if let (Some(b), Some(a)) = (c.monthly_cost_before, c.monthly_cost_after)
        && !shown_delta(b, a).is_zero()
    {
        details.push(format!("{} → {}", fmt_usd(b), fmt_usd(a)));
    }
    format!(
        "| {} | {} | {} | {} |\n",
        icon(c.action),
        code(c.address.as_str()),
        verb(c),
        cell(&details.join("; "))
    )
}

/// Every change and every field change, collapsed, cut to fit the comment.
fn details(out: &mut String, doc: &PlanDocument) {
    let n = doc.summary.changes();
    let _ = write!(
        out,
        "<details><summary>Every change ({} {})</summary>\n\n| | address | action | details |\n|---|---|---|---|\n",
        fmt_count(n as u64),
        if n == 1 { "resource" } else { "resources" }
    );
    let mut shown = 0;
    for c in doc.actionable() {
        if !fits(out, &detail_row(c)) {
            break;
        }
        shown += 1;
    }
    if shown < n {
        truncated(out, n - shown, "changes");
        out.push_str("</details>\n");
        return;
    }
    let fields = doc.actionable().map(|c| c.fields.len()).sum::<usize>();
    if fields > 0 {
        out.push_str("\n```diff\n");
        let mut written = 0;
        'all: for c in doc.actionable() {
            for f in &c.fields {
                let sign = match (&f.before, &f.after) {
                    (None, Some(_)) => '+',
                    (Some(_), None) => '-',
                    _ => '!',
                };
                let line = format!("{sign} {} {}: {}\n", c.address, f.path, field_values(f))
                    .replace("```", "'''");
                if !fits(out, &line) {
                    break 'all;
                }
                written += 1;
            }
        }
        out.push_str("```\n");
        if written < fields {
            truncated(out, fields - written, "field changes");
        }
    }
    out.push_str("</details>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_bold_and_cells_are_safe() {
        assert_eq!(
            bold_head("destroys 2 resources: `a`, `b`"),
            "**Destroys 2 resources:** `a`, `b`"
        );
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(code("x`y"), "`x'y`");
    }
}
