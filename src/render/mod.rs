//! Rendering of plans and diagnostics: text like Terraform's (colours only on a TTY and
//! without `NO_COLOR`), JSON (the plan document) and Markdown (minijinja). Pure: callers
//! decide where the output goes.

use std::fmt::Write as _;

use serde_json::Value;

use crate::money::{fmt_delta, fmt_usd, write_delta, write_usd};
use crate::plan::saved::PlanDocument;
use crate::plan::{Action, Change, FieldChange};
use crate::resource::{Kind, ResourceSet};

/// ANSI styling that is a no-op when colours are off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn plain() -> Style {
        Style { color: false }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    pub fn magenta(&self, s: &str) -> String {
        self.paint("35", s)
    }
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    /// Appends what `write` writes to `out`, wrapped in the colour `code` when colours
    /// are on: the in-place form of the painters, for renderings of large plans.
    fn wrap(&self, out: &mut String, code: &str, write: impl FnOnce(&mut String)) {
        if self.color {
            out.push_str("\x1b[");
            out.push_str(code);
            out.push('m');
            write(out);
            out.push_str("\x1b[0m");
        } else {
            write(out);
        }
    }
}

/// `N to move, ` when the plan moves anything (plans without moves read as before).
fn moves_text(s: &crate::plan::Summary) -> String {
    if s.moves == 0 {
        String::new()
    } else {
        format!("{} to move, ", s.moves)
    }
}

fn symbol(a: Action, st: Style, out: &mut String) {
    let (code, text) = match a {
        Action::Create => ("32", "  +"),
        Action::Update => ("33", "  ~"),
        Action::Replace => ("35", "-/+"),
        Action::Move => ("36", " >>"),
        Action::Delete => ("31", "  -"),
        Action::Noop => {
            out.push_str("   ");
            return;
        }
    };
    st.wrap(out, code, |o| o.push_str(text));
}

fn verb(c: &Change) -> &'static str {
    match c.action {
        Action::Create => "will be created",
        Action::Update if c.adopt => "will be adopted",
        Action::Update if c.stays_idle => "will be updated in place (takes effect at next start)",
        Action::Update if c.restart => "will be updated in place (restart)",
        Action::Update if c.kind == Kind::Machine => "will be updated in place (no restart)",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Move => "will move with its data",
        Action::Delete => "will be destroyed",
        Action::Noop => "is unchanged",
    }
}

/// Short one-line rendering of a JSON value.
pub fn short(v: &Option<Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(Value::String(s)) if !s.contains('\n') => format!("{s:?}"),
        Some(Value::String(_)) => "(multi-line text)".into(),
        Some(other) => other.to_string(),
    }
}

fn multiline_diff(before: &Option<Value>, after: &Option<Value>) -> Option<String> {
    let b = before.as_ref().and_then(Value::as_str).unwrap_or("");
    let a = after.as_ref().and_then(Value::as_str).unwrap_or("");
    if !(b.contains('\n') || a.contains('\n')) {
        return None;
    }
    let diff = similar::TextDiff::from_lines(b, a);
    Some(
        diff.unified_diff()
            .context_radius(2)
            .header("before", "after")
            .to_string(),
    )
}

fn field_line(f: &FieldChange, st: Style, out: &mut String) {
    let mark = match (&f.before, &f.after) {
        (None, Some(_)) => st.green("+"),
        (Some(_), None) => st.red("-"),
        _ => st.yellow("~"),
    };
    let tail = if f.forces_replace {
        st.red(" (forces replacement)")
    } else {
        String::new()
    };
    match multiline_diff(&f.before, &f.after) {
        Some(d) => {
            let _ = writeln!(out, "      {mark} {}:{tail}", f.path);
            for l in d.lines() {
                let _ = writeln!(out, "          {l}");
            }
        }
        None => {
            let _ = writeln!(out, "      {mark} {}: {}{tail}", f.path, field_values(f));
        }
    }
}

/// A field's value change on one line: `after` (added), `before → (removed)`, or
/// `before → after`.
fn field_values(f: &FieldChange) -> String {
    match (&f.before, &f.after) {
        (None, Some(_)) => short(&f.after),
        (Some(_), None) => format!("{} → (removed)", short(&f.before)),
        _ => format!("{} → {}", short(&f.before), short(&f.after)),
    }
}

/// What a created resource is, in one line, appended to `out`.
fn describe_create(desired: Option<&ResourceSet>, c: &Change, out: &mut String) {
    use crate::resource::{SecretSource, Spec};
    let Some(r) = desired.and_then(|d| d.get(&c.address)) else {
        let _ = write!(out, "{} in app {}", c.kind, c.app);
        return;
    };
    match &r.spec {
        Spec::App(a) => {
            out.push_str("app ");
            out.push_str(&a.name);
        }
        Spec::Secret(s) => {
            out.push_str("secret ");
            out.push_str(&s.name);
            match &s.source {
                SecretSource::Env(v) => {
                    out.push_str(" (from env ");
                    out.push_str(v);
                }
                SecretSource::File(f) => {
                    out.push_str(" (from file ");
                    out.push_str(f);
                }
                SecretSource::Unknown => out.push_str(" (source unknown"),
            }
            out.push(')');
        }
        Spec::Volume(v) => {
            let sealed = if v.encrypted {
                "encrypted"
            } else {
                "unencrypted"
            };
            let _ = write!(
                out,
                "volume {} ({} GB, {}, {sealed})",
                v.name, v.size_gb, v.region
            );
        }
        Spec::BackupPolicy(b) => {
            let _ = write!(
                out,
                "snapshots: daily {}, kept {} days, snapshot before destroy {}",
                if b.auto_backup { "on" } else { "off" },
                b.snapshot_retention,
                if b.snapshot_before_destroy {
                    "on"
                } else {
                    "off"
                }
            );
        }
        Spec::Ip(ip) => {
            let _ = write!(out, "{} address", ip.ip_kind);
            if let Some(n) = &ip.network {
                let _ = write!(out, " (network {n})");
            }
        }
        Spec::Certificate(c) => {
            let dns01 = if c.is_wildcard() {
                ", DNS-01 via _acme-challenge"
            } else {
                ""
            };
            let _ = write!(out, "certificate for {} (ACME{dns01})", c.hostname);
        }
        Spec::Machine(m) => {
            let _ = write!(
                out,
                "machine {} ({}, {} {} MB, {}, idle {})",
                m.name,
                m.region,
                m.size,
                m.guest.memory_mb,
                m.image,
                m.idle.mode.as_str()
            );
        }
    }
}

/// One change's block: its header, what it is, its field changes, reasons, warnings and
/// its monthly cost change, then a blank line.
fn change_block(out: &mut String, c: &Change, desired: Option<&ResourceSet>, st: Style) {
    out.push_str("  ");
    st.wrap(out, "1", |o| {
        let _ = write!(o, "# {}", c.address);
    });
    out.push(' ');
    out.push_str(verb(c));
    out.push('\n');
    symbol(c.action, st, out);
    out.push(' ');
    match c.action {
        Action::Create => describe_create(desired, c, out),
        _ => {
            let _ = write!(out, "{} in app {}", c.kind, c.app);
            if let Some(i) = c.id.as_deref() {
                let _ = write!(out, " ({i})");
            }
        }
    }
    out.push('\n');
    for f in &c.fields {
        field_line(f, st, out);
    }
    for r in &c.reasons {
        out.push_str("      ");
        st.wrap(out, "2", |o| {
            o.push_str("# ");
            o.push_str(r);
        });
        out.push('\n');
    }
    if c.data_loss {
        let _ = writeln!(out, "      {}", st.red("! destroys the volume's data: apply needs --allow-data-loss (a snapshot is taken first)"));
    }
    if c.prevent_destroy {
        let _ = writeln!(
            out,
            "      {}",
            st.red("! under lifecycle.prevent_destroy: apply will refuse")
        );
    }
    monthly_line(out, c, st);
    out.push('\n');
}

/// `monthly: $before → $after (±delta)` when the change moves the resource's cost.
fn monthly_line(out: &mut String, c: &Change, st: Style) {
    if c.monthly_cost_before.is_none() && c.monthly_cost_after.is_none() {
        return;
    }
    let b = c.monthly_cost_before.unwrap_or_default();
    let a = c.monthly_cost_after.unwrap_or_default();
    if a == b {
        return;
    }
    out.push_str("      ");
    st.wrap(out, "2", |o| {
        o.push_str("monthly: ");
        write_usd(o, b);
        o.push_str(" → ");
        write_usd(o, a);
        o.push_str(" (");
        write_delta(o, a - b);
        o.push(')');
    });
    out.push('\n');
}

/// Declared certificates Fly has not issued yet (no change: they wait for DNS).
fn pending_certificates(doc: &PlanDocument, st: Style, out: &mut String) {
    let pending: Vec<&Change> = doc
        .changes
        .iter()
        .filter(|c| c.is_pending_certificate())
        .collect();
    if pending.is_empty() {
        return;
    }
    let _ = writeln!(out, "Certificates pending (waiting for DNS records):");
    for c in pending {
        let _ = writeln!(out, "  {} {}", st.yellow("~"), c.address);
    }
    let _ = writeln!(
        out,
        "  {}\n",
        st.dim("# `flotilla dns SPEC` lists the records to create")
    );
}

/// The plan in Terraform's style. `desired` (the desired state the plan was made from)
/// describes created resources; without it they are named by kind and app.
pub fn plan_text(doc: &PlanDocument, desired: Option<&ResourceSet>, st: Style) -> String {
    let desired = desired.or(doc.desired.as_ref());
    let mut out = String::with_capacity(doc.changes.len() * 96);
    let actionable: Vec<&Change> = doc.actionable().collect();
    if actionable.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            st.green("No changes. The fleet matches the spec.")
        );
    } else {
        let _ = writeln!(
            out,
            "flotilla will perform the following actions in org {}:\n",
            st.bold(&doc.org)
        );
    }
    for c in &actionable {
        change_block(&mut out, c, desired, st);
    }
    if !doc.unmanaged.is_empty() {
        let _ = writeln!(out, "Not managed by flotilla (left alone):");
        for u in &doc.unmanaged {
            let _ = writeln!(
                out,
                "  {} {} {} in app {}: {}",
                u.kind, u.name, u.id, u.app, u.reason
            );
        }
        out.push('\n');
    }
    pending_certificates(doc, st, &mut out);
    for e in &doc.errors {
        let _ = writeln!(out, "{} {e}", st.red("error:"));
    }
    let s = doc.summary;
    let _ = writeln!(
        out,
        "{} {} to create, {} to update, {} to replace, {}{} to delete.",
        st.bold("Plan:"),
        s.create,
        s.update,
        s.replace,
        moves_text(&s),
        s.delete
    );
    if let Some(cost) = &doc.cost {
        let _ = writeln!(
            out,
            "{} {} → {} per month ({}) · pricing {} · a month is 30 days (720 h)",
            st.bold("Cost:"),
            fmt_usd(cost.monthly_before),
            fmt_usd(cost.monthly_after),
            fmt_delta(cost.delta),
            cost.pricing_version
        );
        if let Some(l) = &cost.fleet_lock {
            let _ = writeln!(out, "  {}", fleet_lock_line(l));
        }
        for a in &cost.assumptions {
            let _ = writeln!(out, "  {}", st.dim(&format!("assumes {a}")));
        }
        for w in &cost.warnings {
            let _ = writeln!(out, "  {} {w}", st.yellow("warning:"));
        }
    }
    out
}

/// The plan's cost line of the fleet lock's sentinel.
fn fleet_lock_line(l: &crate::plan::FleetLockCost) -> String {
    let when = if l.exists {
        ""
    } else {
        ", created by the next apply"
    };
    format!(
        "includes the fleet lock sentinel: {} per month (exactly ${}; a stopped Machine in {}, never started: rootfs only{when})",
        fmt_usd(l.monthly),
        l.monthly.normalize(),
        l.app
    )
}

const PLAN_MD: &str = r#"### flotilla plan for `{{ doc.spec_file }}` (org `{{ doc.org }}`)

**Plan:** {{ s.create }} to create, {{ s.update }} to update, {{ s.replace }} to replace, {% if s.move %}{{ s.move }} to move, {% endif %}{{ s.delete }} to delete.
{%- if cost %}
**Monthly cost:** {{ cost.before }} → {{ cost.after }} ({{ cost.delta }}), pricing `{{ cost.version }}`, 30-day month.
{%- if cost.fleet_lock %} Includes the {{ cost.fleet_lock }}.{% endif %}
{%- endif %}
{% if errors %}
> [!CAUTION]
{%- for e in errors %}
> {{ e }}
{%- endfor %}
{% endif %}
{%- if rows %}
| | address | action | details |
|---|---|---|---|
{%- for r in rows %}
| {{ r.icon }} | `{{ r.address }}` | {{ r.action }} | {{ r.details }} |
{%- endfor %}
{%- if truncated %}
| | … | | {{ truncated }} more changes (see the JSON plan) |
{%- endif %}
{% else %}
No changes. The fleet matches the spec.
{% endif %}
{%- if fields %}
<details><summary>Field changes</summary>

```diff
{%- for f in fields %}
{{ f }}
{%- endfor %}
```
</details>
{% endif %}
"#;

/// The plan as a Markdown pull-request comment.
pub fn plan_markdown(doc: &PlanDocument) -> String {
    const MAX_ROWS: usize = 200;
    let actionable: Vec<&Change> = doc.actionable().collect();
    let rows: Vec<Value> = actionable
        .iter()
        .take(MAX_ROWS)
        .map(|c| {
            let icon = match c.action {
                Action::Create => "➕",
                Action::Update => "🔄",
                Action::Replace => "♻️",
                Action::Move => "🚚",
                Action::Delete => "🗑️",
                Action::Noop => "",
            };
            let mut details: Vec<String> = c.reasons.clone();
            if c.data_loss {
                details.push("**destroys volume data**".into());
            }
            if c.prevent_destroy {
                details.push("**blocked by prevent_destroy**".into());
            }
            if let (Some(b), Some(a)) = (c.monthly_cost_before, c.monthly_cost_after)
                && a != b
            {
                details.push(format!("{} → {}", fmt_usd(b), fmt_usd(a)));
            }
            serde_json::json!({
                "icon": icon,
                "address": c.address.as_str(),
                "action": verb(c),
                "details": details.join("; ").replace('|', "\\|"),
            })
        })
        .collect();
    let mut fields = Vec::new();
    for c in actionable.iter().take(MAX_ROWS) {
        for f in &c.fields {
            let sign = match (&f.before, &f.after) {
                (None, Some(_)) => '+',
                (Some(_), None) => '-',
                _ => '!',
            };
            let line = format!("{sign} {} {}: {}", c.address, f.path, field_values(f));
            fields.push(line.replace("```", "'''"));
        }
    }
    let cost = doc.cost.as_ref().map(|c| {
        serde_json::json!({
            "before": fmt_usd(c.monthly_before),
            "after": fmt_usd(c.monthly_after),
            "delta": fmt_delta(c.delta),
            "version": c.pricing_version,
            "fleet_lock": c.fleet_lock.as_ref().map(|l| format!(
                "fleet lock sentinel (a stopped Machine in `{}`, rootfs only): {} per month",
                l.app,
                fmt_usd(l.monthly)
            )),
        })
    });
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    let ctx = minijinja::context! {
        doc => serde_json::json!({"spec_file": doc.spec_file, "org": doc.org}),
        s => doc.summary,
        cost => cost,
        errors => doc.errors,
        rows => rows,
        truncated => actionable.len().saturating_sub(MAX_ROWS),
        fields => fields,
    };
    env.render_str(PLAN_MD, ctx)
        .unwrap_or_else(|e| format!("(markdown rendering failed: {e})\n"))
}

/// The plan document as pretty JSON (the desired state is included only when the
/// document carries it, as saved plans do).
pub fn plan_json(doc: &PlanDocument) -> Result<String, crate::diag::Diagnostic> {
    doc.to_json_pretty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(json: serde_json::Value) -> Change {
        serde_json::from_value(json).unwrap()
    }

    /// The in-place writers produce exactly what the painters do, colours on and off.
    #[test]
    fn change_block_matches_the_painters() {
        let c = change(serde_json::json!({
            "address": "tenant.alice.machine[0]",
            "kind": "machine",
            "action": "update",
            "tenant": "alice",
            "app": "jarvis-alice",
            "id": "m1",
            "reasons": ["image changed"],
            "restart": true,
            "monthly_cost_before_usd": "5.7",
            "monthly_cost_after_usd": "10.70",
        }));
        for st in [Style { color: true }, Style::plain()] {
            let mut out = String::new();
            change_block(&mut out, &c, None, st);
            let expected = format!(
                "  {} will be updated in place (restart)\n{} machine in app jarvis-alice (m1)\n      {}\n      {}\n\n",
                st.bold("# tenant.alice.machine[0]"),
                st.yellow("  ~"),
                st.dim("# image changed"),
                st.dim("monthly: $5.70 → $10.70 (+$5.00)"),
            );
            assert_eq!(out, expected, "color: {}", st.color);
        }
    }

    /// The in-place figure writers agree with decimal formatting of the rounded amount.
    #[test]
    fn in_place_figures_match_decimal_formatting() {
        for text in [
            "0", "0.004", "-0.005", "12.345", "-3.1", "1000000", "7", "0.1",
        ] {
            let v: crate::money::Usd = text.parse().unwrap();
            let c = crate::money::to_cents(v);
            let usd = if c.is_sign_negative() && !c.is_zero() {
                format!("-${:.2}", -c)
            } else {
                format!("${:.2}", c.abs())
            };
            let sign = if c.is_zero() {
                ""
            } else if c.is_sign_negative() {
                "-"
            } else {
                "+"
            };
            let mut out = String::new();
            write_usd(&mut out, v);
            assert_eq!(out, usd, "{text}");
            out.clear();
            write_delta(&mut out, v);
            assert_eq!(out, format!("{sign}${:.2}", c.abs()), "{text}");
        }
    }
}
