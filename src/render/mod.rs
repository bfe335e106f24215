//! Rendering of plans and diagnostics: text like Terraform's (colours only on a TTY and
//! without `NO_COLOR`), grouped after a summary or every resource (`Layout`), JSON (the
//! plan document and its groups) and Markdown (a review comment, `markdown`). Pure:
//! callers decide where the output goes.

pub mod dns;

use std::fmt::Write as _;

use serde_json::Value;

use crate::money::{Usd, fmt_count, fmt_delta, fmt_usd, shown_delta, write_delta, write_usd};
use crate::plan::group::{ChangeGroup, group_changes};
use crate::plan::saved::PlanDocument;
use crate::plan::{Action, Change, FieldChange};
use crate::resource::{Kind, Resource, ResourceSet};

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
        format!("{} to move, ", fmt_count(s.moves as u64))
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

/// What a created resource is, in one line, appended to `out`; without `names`, the
/// names that differ from owner to owner (the app's, the Machine's) are left out, so
/// that the same resource created for many tenants reads the same.
fn describe_create(desired: Option<&ResourceSet>, c: &Change, out: &mut String, names: bool) {
    describe_created(desired.and_then(|d| d.get(&c.address)), c, out, names);
}

/// [`describe_create`] of the change's resource, already looked up.
fn describe_created(r: Option<&Resource>, c: &Change, out: &mut String, names: bool) {
    use crate::resource::{SecretSource, Spec};
    let Some(r) = r else {
        let _ = write!(out, "{} in app {}", c.kind, c.app);
        return;
    };
    match &r.spec {
        Spec::App(a) => {
            out.push_str("app");
            if names {
                out.push(' ');
                out.push_str(&a.name);
            }
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
            out.push_str("machine ");
            if names {
                out.push_str(&m.name);
                out.push(' ');
            }
            let _ = write!(
                out,
                "({}, {} {} MB, {}, idle {})",
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
        Action::Create => describe_create(desired, c, out, true),
        _ => {
            let _ = write!(out, "{} in app {}", c.kind, c.app);
            if let Some(i) = c.id.as_deref() {
                let _ = write!(out, " ({i})");
            }
        }
    }
    out.push('\n');
    change_body(out, c, st);
    monthly_line(out, c.monthly_cost_before, c.monthly_cost_after, None, st);
    out.push('\n');
}

/// A group's block: the slot and its members, what every member gets, the shared field
/// changes, reasons and warnings, and the members' monthly cost change together.
fn group_block(out: &mut String, g: &ChangeGroup<'_>, st: Style) {
    let c = g.first();
    out.push_str("  ");
    st.wrap(out, "1", |o| {
        o.push_str("# ");
        // The owners themselves (apps) have no slot: "3 apps (…)".
        if !g.slot.is_empty() {
            o.push_str(&g.slot);
            o.push_str(" of ");
        }
        write_members(o, g, |o, name| o.push_str(name));
    });
    out.push(' ');
    out.push_str(verb_plural(c));
    out.push('\n');
    symbol(c.action, st, out);
    out.push(' ');
    match &g.shape {
        Some(shape) => out.push_str(shape),
        None => {
            let _ = write!(out, "{} in each {}'s app", c.kind, owner_word(g, 1));
        }
    }
    out.push('\n');
    change_body(out, c, st);
    if let Some((b, a)) = g.monthly() {
        monthly_line(out, Some(b), Some(a), g.monthly_each(), st);
    }
    out.push('\n');
}

/// `tenant` / `tenants` (or `app` / `apps` for shared apps).
fn owner_word(g: &ChangeGroup<'_>, n: usize) -> &'static str {
    match (g.tenants, n == 1) {
        (true, true) => "tenant",
        (true, false) => "tenants",
        (false, true) => "app",
        (false, false) => "apps",
    }
}

/// `300 tenants (u001 … u300)`, or every name when there are at most three; `name`
/// writes one owner's name (quoted, in Markdown).
fn write_members(out: &mut String, g: &ChangeGroup<'_>, name: impl Fn(&mut String, &str)) {
    crate::money::write_grouped(out, &g.len().to_string());
    out.push(' ');
    out.push_str(owner_word(g, g.len()));
    out.push_str(" (");
    if g.len() <= 3 {
        for (i, n) in g.owner_names().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            name(out, n);
        }
    } else {
        let first = g.owner_names().next().unwrap_or("");
        let last = g.owner_names().next_back().unwrap_or("");
        name(out, first);
        out.push_str(" … ");
        name(out, last);
    }
    out.push(')');
}

/// [`verb`] for several resources.
fn verb_plural(c: &Change) -> &'static str {
    match c.action {
        Action::Noop => "are unchanged",
        _ => verb(c),
    }
}

/// A change's field changes, reasons and warnings.
fn change_body(out: &mut String, c: &Change, st: Style) {
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
}

/// `monthly: $before → $after (±delta)` when the change moves the cost as shown, with
/// each member's change for a group whose members all change alike.
fn monthly_line(
    out: &mut String,
    before: Option<Usd>,
    after: Option<Usd>,
    each: Option<Usd>,
    st: Style,
) {
    if before.is_none() && after.is_none() {
        return;
    }
    let b = before.unwrap_or_default();
    let a = after.unwrap_or_default();
    let delta = shown_delta(b, a);
    if delta.is_zero() {
        return;
    }
    out.push_str("      ");
    st.wrap(out, "2", |o| {
        o.push_str("monthly: ");
        write_usd(o, b);
        o.push_str(" → ");
        write_usd(o, a);
        o.push_str(" (");
        write_delta(o, delta);
        if let Some(e) = each {
            o.push_str(", ");
            write_delta(o, e);
            o.push_str(" each");
        }
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

/// How much of a plan the text shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// A summary first, then identical changes of many tenants as one block each.
    #[default]
    Grouped,
    /// Every resource's change, one block each (`--detail`).
    Detail,
}

/// What a created resource is without its owner's names: what creates group by.
pub fn create_shape(desired: Option<&ResourceSet>, c: &Change) -> Option<String> {
    create_shape_at(desired, c, &mut crate::resource::Cursor::default())
}

/// [`create_shape`], looking the resource up from `cursor` (a plan lists an owner's
/// changes mostly in the desired set's order).
fn create_shape_at(
    desired: Option<&ResourceSet>,
    c: &Change,
    cursor: &mut crate::resource::Cursor,
) -> Option<String> {
    // Without its description, a create groups by slot alone.
    let desired = desired?;
    let at = desired.position_at(&c.address, cursor)?;
    let mut out = String::with_capacity(48);
    describe_created(desired.resources.get(at), c, &mut out, false);
    Some(out)
}

/// The groups of a plan's actionable changes.
pub fn plan_groups<'a>(
    doc: &'a PlanDocument,
    desired: Option<&ResourceSet>,
) -> Vec<ChangeGroup<'a>> {
    let desired = desired.or(doc.desired.as_ref());
    let cursor = std::cell::Cell::new(crate::resource::Cursor::default());
    group_changes(doc.actionable(), |c| {
        let mut walk = cursor.get();
        let shape = create_shape_at(desired, c, &mut walk);
        cursor.set(walk);
        shape
    })
}

/// The plan in Terraform's style. `desired` (the desired state the plan was made from)
/// describes created resources; without it they are named by kind and app.
pub fn plan_text(
    doc: &PlanDocument,
    desired: Option<&ResourceSet>,
    st: Style,
    layout: Layout,
) -> String {
    let mut text = String::with_capacity(match layout {
        Layout::Detail => doc.changes.len() * 96,
        Layout::Grouped => 4096,
    });
    write_plan_text(doc, desired, st, layout, &mut |chunk| text.push_str(chunk));
    text
}

/// Size of the pieces [`write_plan_text`] hands on: a large plan's text is never held
/// whole.
const PLAN_TEXT_CHUNK: usize = 64 * 1024;

/// [`plan_text`], handed to `emit` in pieces of about [`PLAN_TEXT_CHUNK`] bytes.
pub fn write_plan_text(
    doc: &PlanDocument,
    desired: Option<&ResourceSet>,
    st: Style,
    layout: Layout,
    emit: &mut dyn FnMut(&str),
) {
    let desired = desired.or(doc.desired.as_ref());
    let mut out = String::with_capacity(PLAN_TEXT_CHUNK + 4096);
    let mut flush = |out: &mut String| {
        if out.len() >= PLAN_TEXT_CHUNK {
            emit(out);
            out.clear();
        }
    };
    let mut actionable = doc.actionable().peekable();
    if actionable.peek().is_none() {
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
    match layout {
        Layout::Detail => {
            for c in actionable {
                change_block(&mut out, c, desired, st);
                flush(&mut out);
            }
        }
        Layout::Grouped if actionable.peek().is_some() => {
            let groups = plan_groups(doc, desired);
            summary_text(&mut out, doc, &groups, st);
            for g in &groups {
                if g.is_single() {
                    change_block(&mut out, g.first(), desired, st);
                } else {
                    group_block(&mut out, g, st);
                }
                flush(&mut out);
            }
        }
        Layout::Grouped => {}
    }
    footer_text(&mut out, doc, st);
    emit(&out);
}

/// What a reader must not miss in a plan: what it destroys, the data it loses, what
/// apply will refuse.
#[derive(Debug, Default)]
pub struct Callouts<'a> {
    pub deletes: Vec<&'a Change>,
    pub replaces: Vec<&'a Change>,
    pub data_loss: Vec<&'a Change>,
    pub prevent_destroy: Vec<&'a Change>,
}

impl<'a> Callouts<'a> {
    pub fn of(doc: &'a PlanDocument) -> Callouts<'a> {
        let mut c = Callouts::default();
        for ch in doc.actionable() {
            match ch.action {
                Action::Delete => c.deletes.push(ch),
                Action::Replace => c.replaces.push(ch),
                _ => {}
            }
            if ch.data_loss {
                c.data_loss.push(ch);
            }
            if ch.prevent_destroy {
                c.prevent_destroy.push(ch);
            }
        }
        c
    }

    /// One line each: `destroys 5 resources: A, B, C, … (2 more)`; `quote` writes an
    /// address (in backquotes, in Markdown).
    pub fn lines(&self, quote: impl Fn(&str) -> String) -> Vec<String> {
        let list = |cs: &[&Change]| {
            const SHOWN: usize = 5;
            let mut s: Vec<String> = cs
                .iter()
                .take(SHOWN)
                .map(|c| quote(c.address.as_str()))
                .collect();
            if cs.len() > SHOWN {
                s.push(format!("… ({} more)", fmt_count((cs.len() - SHOWN) as u64)));
            }
            s.join(", ")
        };
        let n = |k: usize, one: &str, many: &str| {
            format!(
                "{} {}",
                fmt_count(k as u64),
                if k == 1 { one } else { many }
            )
        };
        let mut out = Vec::new();
        if !self.deletes.is_empty() {
            out.push(format!(
                "destroys {}: {}",
                n(self.deletes.len(), "resource", "resources"),
                list(&self.deletes)
            ));
        }
        if !self.replaces.is_empty() {
            out.push(format!(
                "replaces {} (destroyed, then created again): {}",
                n(self.replaces.len(), "resource", "resources"),
                list(&self.replaces)
            ));
        }
        if !self.data_loss.is_empty() {
            out.push(format!(
                "destroys the data of {} (apply needs --allow-data-loss; a snapshot is taken first): {}",
                n(self.data_loss.len(), "volume", "volumes"),
                list(&self.data_loss)
            ));
        }
        if !self.prevent_destroy.is_empty() {
            out.push(format!(
                "apply will refuse {} under lifecycle.prevent_destroy: {}",
                n(self.prevent_destroy.len(), "change", "changes"),
                list(&self.prevent_destroy)
            ));
        }
        out
    }
}

/// The plan's counts by action, as the summary line says them.
fn counts_line(s: &crate::plan::Summary) -> String {
    format!(
        "{} to create, {} to update, {} to replace, {}{} to delete",
        fmt_count(s.create as u64),
        fmt_count(s.update as u64),
        fmt_count(s.replace as u64),
        moves_text(s),
        fmt_count(s.delete as u64)
    )
}

/// The one-screen summary a grouped plan starts with: counts, cost, destroys and data
/// loss, and how many errors and warnings follow.
fn summary_text(out: &mut String, doc: &PlanDocument, groups: &[ChangeGroup<'_>], st: Style) {
    let s = doc.summary;
    let _ = writeln!(
        out,
        "{} {}; {} {} in {} {}.",
        st.bold("Summary:"),
        counts_line(&s),
        fmt_count(s.changes() as u64),
        if s.changes() == 1 {
            "change"
        } else {
            "changes"
        },
        fmt_count(groups.len() as u64),
        if groups.len() == 1 { "block" } else { "blocks" }
    );
    if let Some(cost) = &doc.cost {
        let _ = writeln!(
            out,
            "  cost: {} → {} per month ({})",
            fmt_usd(cost.monthly_before),
            fmt_usd(cost.monthly_after),
            fmt_delta(shown_delta(cost.monthly_before, cost.monthly_after))
        );
    }
    for l in Callouts::of(doc).lines(str::to_string) {
        let _ = writeln!(out, "  {}", st.red(&format!("! {l}")));
    }
    let warnings = doc.cost.as_ref().map_or(0, |c| c.warnings.len());
    let notes = [
        (doc.errors.len(), "error", "errors"),
        (warnings, "cost warning", "cost warnings"),
        (doc.capacity.len(), "capacity warning", "capacity warnings"),
        (
            doc.unmanaged.len(),
            "resource not managed by flotilla",
            "resources not managed by flotilla",
        ),
    ];
    for (n, one, many) in notes {
        if n > 0 {
            let _ = writeln!(
                out,
                "  {} {} (below)",
                fmt_count(n as u64),
                if n == 1 { one } else { many }
            );
        }
    }
    out.push('\n');
}

/// What follows the changes in every layout: unmanaged resources, pending certificates,
/// errors, the counts and the cost footer.
fn footer_text(out: &mut String, doc: &PlanDocument, st: Style) {
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
    pending_certificates(doc, st, out);
    for w in &doc.capacity {
        let _ = writeln!(out, "{} {}", st.yellow("warning:"), w.message());
    }
    for e in &doc.errors {
        let _ = writeln!(out, "{} {e}", st.red("error:"));
    }
    let _ = writeln!(out, "{} {}.", st.bold("Plan:"), counts_line(&doc.summary));
    if let Some(cost) = &doc.cost {
        let _ = writeln!(
            out,
            "{} {} → {} per month ({}) · pricing {} · a month is 30 days (720 h)",
            st.bold("Cost:"),
            fmt_usd(cost.monthly_before),
            fmt_usd(cost.monthly_after),
            fmt_delta(shown_delta(cost.monthly_before, cost.monthly_after)),
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
}

/// What is repeated beside apply's confirmation prompt, so that it is not lost far above
/// a long plan: destroys and data loss, errors, the cost warnings, resources left alone
/// and the input's warnings. Empty when there is nothing to repeat.
pub fn confirm_recap<'d>(
    doc: &PlanDocument,
    warnings: impl IntoIterator<Item = &'d crate::diag::Diagnostic>,
    st: Style,
) -> String {
    let mut lines: Vec<String> = Callouts::of(doc)
        .lines(str::to_string)
        .into_iter()
        .map(|l| st.red(&format!("! {l}")))
        .collect();
    for e in &doc.errors {
        lines.push(format!("{} {e}", st.red("error:")));
    }
    for d in warnings {
        let at = d
            .address
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        lines.push(format!("{} {}{at}", st.yellow("warning:"), d.message));
    }
    for w in &doc.capacity {
        lines.push(format!("{} {}", st.yellow("warning:"), w.message()));
    }
    if let Some(c) = &doc.cost {
        for w in &c.warnings {
            lines.push(format!("{} {w}", st.yellow("warning:")));
        }
    }
    if !doc.unmanaged.is_empty() {
        let n = doc.unmanaged.len();
        lines.push(format!(
            "{} {} not managed by flotilla {} left alone",
            fmt_count(n as u64),
            if n == 1 { "resource" } else { "resources" },
            if n == 1 { "is" } else { "are" }
        ));
    }
    if lines.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n{} {}; before you confirm:\n",
        st.bold("Plan:"),
        counts_line(&doc.summary)
    );
    for l in lines {
        out.push_str("  ");
        out.push_str(&l);
        out.push('\n');
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

mod markdown;
pub use markdown::{COMMENT_LIMIT, plan_markdown};

/// The plan document as pretty JSON (the desired state is included only when the
/// document carries it, as saved plans do), with `groups`: the actionable changes
/// grouped as the text shows them, each with its members' addresses, the change they
/// share and their cost. `changes` is the document's, unchanged.
pub fn plan_json(
    doc: &PlanDocument,
    desired: Option<&ResourceSet>,
) -> Result<String, crate::diag::Diagnostic> {
    let groups = plan_groups(doc, desired);
    let with_groups = JsonPlan {
        doc,
        groups: groups.iter().map(JsonGroup::of).collect(),
    };
    serde_json::to_string_pretty(&with_groups).map_err(|e| {
        crate::diag::Diagnostic::error(format!("the plan cannot be written as JSON: {e}"))
            .hint("this is a bug in flotilla; please report it with the spec")
    })
}

/// The plan document followed by its groups.
#[derive(serde::Serialize)]
struct JsonPlan<'a> {
    #[serde(flatten)]
    doc: &'a PlanDocument,
    groups: Vec<JsonGroup<'a>>,
}

/// One group of identical changes, as `plan --format json` lists it.
#[derive(serde::Serialize)]
struct JsonGroup<'a> {
    action: Action,
    kind: Kind,
    /// The address within each member's owner (`machine[0]`).
    slot: &'a str,
    count: usize,
    members: Vec<&'a crate::resource::Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    creates: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fields: &'a [FieldChange],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    reasons: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    restart: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stays_idle: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    adopt: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    data_loss: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    prevent_destroy: bool,
    #[serde(rename = "monthly_cost_before_usd", with = "crate::money::usd_opt")]
    monthly_before: Option<Usd>,
    #[serde(rename = "monthly_cost_after_usd", with = "crate::money::usd_opt")]
    monthly_after: Option<Usd>,
    #[serde(rename = "monthly_delta_usd", with = "crate::money::usd_opt")]
    monthly_delta: Option<Usd>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cost_reasons: Vec<String>,
}

impl<'a> JsonGroup<'a> {
    fn of(g: &'a ChangeGroup<'a>) -> JsonGroup<'a> {
        let c = g.first();
        let cost = g.monthly();
        JsonGroup {
            action: c.action,
            kind: c.kind,
            slot: &g.slot,
            count: g.len(),
            members: g.members.iter().map(|m| &m.address).collect(),
            creates: g.shape.as_deref(),
            fields: &c.fields,
            reasons: &c.reasons,
            restart: c.restart,
            stays_idle: c.stays_idle,
            adopt: c.adopt,
            data_loss: c.data_loss,
            prevent_destroy: c.prevent_destroy,
            monthly_before: cost.map(|(b, _)| b),
            monthly_after: cost.map(|(_, a)| a),
            monthly_delta: cost.map(|(b, a)| a - b),
            cost_reasons: if cost.is_some_and(|(b, a)| a != b) {
                crate::plan::group::cost_reasons(c)
            } else {
                Vec::new()
            },
        }
    }
}

#[cfg(test)]
mod fleet_tests;

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
            assert_eq!(out.replace(',', ""), usd, "{text}");
            out.clear();
            write_delta(&mut out, v);
            assert_eq!(
                out.replace(',', ""),
                format!("{sign}${:.2}", c.abs()),
                "{text}"
            );
        }
    }
}
