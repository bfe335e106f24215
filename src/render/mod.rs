//! Rendering of plans and diagnostics: text like Terraform's (colours only on a TTY and
//! without `NO_COLOR`), JSON (the plan document) and Markdown (minijinja). Pure: callers
//! decide where the output goes.

use std::fmt::Write as _;

use serde_json::Value;

use crate::money::{fmt_delta, fmt_usd};
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
}

fn symbol(a: Action, st: Style) -> String {
    match a {
        Action::Create => st.green("  +"),
        Action::Update => st.yellow("  ~"),
        Action::Replace => st.magenta("-/+"),
        Action::Delete => st.red("  -"),
        Action::Noop => "   ".to_string(),
    }
}

fn verb(c: &Change) -> String {
    match c.action {
        Action::Create => "will be created".into(),
        Action::Update if c.adopt => "will be adopted".into(),
        Action::Update if c.stays_idle => {
            "will be updated in place (takes effect at next start)".into()
        }
        Action::Update if c.restart => "will be updated in place (restart)".into(),
        Action::Update if c.kind == Kind::Machine => "will be updated in place (no restart)".into(),
        Action::Update => "will be updated in place".into(),
        Action::Replace => "must be replaced".into(),
        Action::Delete => "will be destroyed".into(),
        Action::Noop => "is unchanged".into(),
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

/// What a created resource is, in one line.
fn describe_create(desired: Option<&ResourceSet>, c: &Change) -> String {
    let Some(r) = desired.and_then(|d| d.get(&c.address)) else {
        return format!("{} in app {}", c.kind, c.app);
    };
    match &r.spec {
        crate::resource::Spec::App(a) => format!("app {}", a.name),
        crate::resource::Spec::Secret(s) => {
            let src = match &s.source {
                crate::resource::SecretSource::Env(v) => format!("from env {v}"),
                crate::resource::SecretSource::File(f) => format!("from file {f}"),
                crate::resource::SecretSource::Unknown => "source unknown".into(),
            };
            format!("secret {} ({src})", s.name)
        }
        crate::resource::Spec::Volume(v) => {
            format!(
                "volume {} ({} GB, {}, {})",
                v.name,
                v.size_gb,
                v.region,
                if v.encrypted {
                    "encrypted"
                } else {
                    "unencrypted"
                }
            )
        }
        crate::resource::Spec::BackupPolicy(b) => format!(
            "snapshots: daily {}, kept {} days, snapshot before destroy {}",
            if b.auto_backup { "on" } else { "off" },
            b.snapshot_retention,
            if b.snapshot_before_destroy {
                "on"
            } else {
                "off"
            }
        ),
        crate::resource::Spec::Ip(ip) => match &ip.network {
            Some(n) => format!("{} address (network {n})", ip.ip_kind),
            None => format!("{} address", ip.ip_kind),
        },
        crate::resource::Spec::Certificate(c) => format!(
            "certificate for {} (ACME{})",
            c.hostname,
            if c.is_wildcard() {
                ", DNS-01 via _acme-challenge"
            } else {
                ""
            }
        ),
        crate::resource::Spec::Machine(m) => format!(
            "machine {} ({}, {} {} MB, {}, idle {})",
            m.name,
            m.region,
            m.size,
            m.guest.memory_mb,
            m.image,
            m.idle.mode.as_str()
        ),
    }
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
        let _ = writeln!(
            out,
            "  {} {}",
            st.bold(&format!("# {}", c.address)),
            verb(c)
        );
        let what = match c.action {
            Action::Create => describe_create(desired, c),
            _ => {
                let name =
                    c.id.as_deref()
                        .map(|i| format!(" ({i})"))
                        .unwrap_or_default();
                format!("{} in app {}{name}", c.kind, c.app)
            }
        };
        let _ = writeln!(out, "{} {what}", symbol(c.action, st));
        for f in &c.fields {
            field_line(f, st, &mut out);
        }
        for r in &c.reasons {
            let _ = writeln!(out, "      {}", st.dim(&format!("# {r}")));
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
        if c.monthly_cost_before.is_some() || c.monthly_cost_after.is_some() {
            let b = c.monthly_cost_before.unwrap_or_default();
            let a = c.monthly_cost_after.unwrap_or_default();
            if a != b {
                let _ = writeln!(
                    out,
                    "      {}",
                    st.dim(&format!(
                        "monthly: {} → {} ({})",
                        fmt_usd(b),
                        fmt_usd(a),
                        fmt_delta(a - b)
                    ))
                );
            }
        }
        out.push('\n');
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
        "{} {} to create, {} to update, {} to replace, {} to delete.",
        st.bold("Plan:"),
        s.create,
        s.update,
        s.replace,
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
        for a in &cost.assumptions {
            let _ = writeln!(out, "  {}", st.dim(&format!("assumes {a}")));
        }
        for w in &cost.warnings {
            let _ = writeln!(out, "  {} {w}", st.yellow("warning:"));
        }
    }
    out
}

const PLAN_MD: &str = r#"### flotilla plan for `{{ doc.spec_file }}` (org `{{ doc.org }}`)

**Plan:** {{ s.create }} to create, {{ s.update }} to update, {{ s.replace }} to replace, {{ s.delete }} to delete.
{%- if cost %}
**Monthly cost:** {{ cost.before }} → {{ cost.after }} ({{ cost.delta }}), pricing `{{ cost.version }}`, 30-day month.
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
