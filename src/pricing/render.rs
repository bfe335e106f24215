//! Pricing versions as text, markdown and JSON: the list of versions, every row of one
//! version with its source, and the changes between two versions. Also the small table
//! formatters the cost reports share.

use std::fmt::Write as _;

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::{Catalog, ChangeKind, PriceTable, TableDiff, TableName};

/// A titled table, rendered as aligned text or as a markdown table.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
}

/// A plain-text table, each column left- or right-aligned as `right` says.
pub fn text_table<S: AsRef<str>>(headers: &[&str], right: &[bool], rows: &[Vec<S>]) -> String {
    let n = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    let counted: Vec<Vec<usize>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .take(n)
                .map(|c| c.as_ref().chars().count())
                .collect()
        })
        .collect();
    for r in &counted {
        for (i, w) in r.iter().enumerate() {
            widths[i] = widths[i].max(*w);
        }
    }
    let line_len: usize = widths.iter().map(|w| w + 2).sum::<usize>() + 2;
    let mut out = String::with_capacity(line_len * (rows.len() + 1));
    let mut push = |cells: &mut dyn Iterator<Item = (&str, usize)>| {
        let start = out.len();
        out.push(' ');
        for (i, (c, w)) in cells.enumerate() {
            let pad = widths[i].saturating_sub(w);
            out.push(' ');
            if right.get(i).copied().unwrap_or(false) {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(c);
            } else {
                out.push_str(c);
                out.extend(std::iter::repeat_n(' ', pad));
            }
            out.push(' ');
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
        out.push('\n');
    };
    push(&mut headers.iter().map(|h| (*h, h.chars().count())));
    for (r, w) in rows.iter().zip(&counted) {
        push(&mut r.iter().take(n).map(|c| c.as_ref()).zip(w.iter().copied()));
    }
    out
}

/// A markdown table (pipes in cells are escaped).
pub fn md_table(headers: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let seps: Vec<&str> = (0..headers.len())
        .map(|i| {
            if right.get(i).copied().unwrap_or(false) {
                "---:"
            } else {
                "---"
            }
        })
        .collect();
    let _ = writeln!(out, "|{}|", seps.join("|"));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

fn is_number(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '/' || c == ' ')
}

fn render_sections(sections: &[Section], markdown: bool) -> String {
    let mut out = String::new();
    for s in sections {
        let headers: Vec<&str> = s.headers.iter().map(String::as_str).collect();
        let right: Vec<bool> = (0..headers.len())
            .map(|i| {
                s.rows
                    .iter()
                    .all(|r| r.get(i).map(|c| is_number(c)).unwrap_or(true))
            })
            .collect();
        if markdown {
            let _ = writeln!(out, "#### {}\n", s.title);
            out.push_str(&md_table(&headers, &right, &s.rows));
            for n in &s.notes {
                let _ = writeln!(out, "- {n}");
            }
        } else {
            let _ = writeln!(out, "{}", s.title);
            out.push_str(&text_table(&headers, &right, &s.rows));
            for n in &s.notes {
                let _ = writeln!(out, "  {n}");
            }
        }
        out.push('\n');
    }
    out
}

/// The versions of a catalog, marking the one in force on `today`.
pub fn list(catalog: &Catalog, today: NaiveDate, markdown: bool) -> String {
    let current = catalog.at(today).ok().map(|v| v.version());
    let rows: Vec<Vec<String>> = catalog
        .versions()
        .iter()
        .map(|v| {
            vec![
                v.version().to_string(),
                if Some(v.version()) == current {
                    "in force".into()
                } else {
                    String::new()
                },
                v.manifest.summary.clone(),
            ]
        })
        .collect();
    let mut out = render_sections(
        &[Section {
            title: format!("Pricing versions ({}):", catalog.origin),
            headers: vec![
                "effective".into(),
                format!("on {today}"),
                "what changed".into(),
            ],
            rows,
            notes: Vec::new(),
        }],
        markdown,
    );
    out.push_str("Show one with `flotilla pricing show DATE`; compare with `flotilla pricing diff DATE_A DATE_B`.\n");
    out
}

pub fn list_json(catalog: &Catalog, today: NaiveDate) -> Value {
    let current = catalog.at(today).ok().map(|v| v.version().to_string());
    json!({
        "origin": catalog.origin,
        "today": today.to_string(),
        "in_force": current,
        "versions": catalog.versions().iter().map(|v| json!({
            "effective_date": v.version().to_string(),
            "origin": v.origin,
            "summary": v.manifest.summary,
        })).collect::<Vec<_>>(),
    })
}

fn table_section(t: &PriceTable, table: TableName) -> Section {
    let rows = t.rows(table);
    let mut headers: Vec<String> = rows
        .first()
        .map(|r| r.fields().iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default();
    headers.extend(["status".to_string(), "source".to_string()]);
    let mut notes = Vec::new();
    let body = rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = r.fields().into_iter().map(|(_, v)| v).collect();
            let p = r.prov();
            cells.push(p.status.as_str().into());
            cells.push(p.source.clone());
            if !p.note.is_empty() {
                notes.push(format!("line {} {}: {}", p.line, r.key(), p.note));
            }
            cells
        })
        .collect();
    Section {
        title: format!("{} ({}/{})", table.file(), t.origin, table.file()),
        headers,
        rows: body,
        notes,
    }
}

/// Where one table's rows come from: how many rows of each status, the sources they
/// cite and the dates those sources were retrieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub table: TableName,
    pub rows: usize,
    /// `(status, rows)`, in the order published, derived, assumed.
    pub statuses: Vec<(super::Status, usize)>,
    /// `(source id, retrieved)`, in the order the rows first cite them.
    pub sources: Vec<(String, Option<NaiveDate>)>,
}

/// The provenance of every table of a version, one family per table.
pub fn families(t: &PriceTable) -> Vec<Family> {
    TableName::ALL
        .iter()
        .map(|&table| {
            let rows = t.rows(table);
            let mut statuses: Vec<(super::Status, usize)> = Vec::new();
            let mut sources: Vec<(String, Option<NaiveDate>)> = Vec::new();
            for r in &rows {
                let p = r.prov();
                match statuses.iter_mut().find(|(s, _)| *s == p.status) {
                    Some((_, n)) => *n += 1,
                    None => statuses.push((p.status, 1)),
                }
                if !sources.iter().any(|(id, _)| *id == p.source) {
                    let retrieved = t.source(&p.source).map(|s| s.retrieved);
                    sources.push((p.source.clone(), retrieved));
                }
            }
            statuses.sort();
            Family {
                table,
                rows: rows.len(),
                statuses,
                sources,
            }
        })
        .collect()
}

fn provenance_section(t: &PriceTable) -> Section {
    let rows = families(t)
        .into_iter()
        .map(|f| {
            let statuses: Vec<String> = f
                .statuses
                .iter()
                .map(|(s, n)| format!("{n} {}", s.as_str()))
                .collect();
            let sources: Vec<String> = f
                .sources
                .iter()
                .map(|(id, retrieved)| match retrieved {
                    Some(d) => format!("{id} (retrieved {d})"),
                    None => id.clone(),
                })
                .collect();
            vec![
                f.table.file().to_string(),
                f.rows.to_string(),
                if statuses.is_empty() {
                    "none (not offered at this date)".into()
                } else {
                    statuses.join(", ")
                },
                sources.join("; "),
            ]
        })
        .collect();
    Section {
        title: "Provenance (rows by table: status, sources and their retrieval dates)".into(),
        headers: vec![
            "table".into(),
            "rows".into(),
            "status".into(),
            "sources".into(),
        ],
        rows,
        notes: vec!["Every source, with its repository, path and commit, is listed under Sources; pricing/SOURCES.md traces each figure.".into()],
    }
}

/// Every row of a version with its status and source, then the sources and notes.
pub fn show(t: &PriceTable, markdown: bool) -> String {
    let m = &t.manifest;
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "### Pricing {} ({})\n", t.label(), t.origin);
    } else {
        let _ = writeln!(out, "Pricing {} ({})", t.label(), t.origin);
    }
    let _ = writeln!(
        out,
        "{}\nEffective {}; prices in {} per 30 days ({} hours).\n",
        m.summary, m.effective_date, m.currency, m.hours_per_month
    );
    if let Some(w) = t.staleness_warning() {
        let _ = writeln!(out, "Note: {w}\n");
    }
    let mut sections = vec![provenance_section(t)];
    sections.extend(TableName::ALL.iter().map(|tn| table_section(t, *tn)));
    sections.push(Section {
        title: "Sources".into(),
        headers: vec![
            "id".into(),
            "title".into(),
            "url".into(),
            "retrieved".into(),
        ],
        rows: m
            .sources
            .iter()
            .map(|s| {
                vec![
                    s.id.clone(),
                    s.title.clone(),
                    s.url.clone(),
                    s.retrieved.to_string(),
                ]
            })
            .collect(),
        notes: m.notes.clone(),
    });
    out.push_str(&render_sections(&sections, markdown));
    out
}

pub fn show_json(t: &PriceTable) -> Value {
    let mut tables = serde_json::Map::new();
    for tn in TableName::ALL {
        let rows: Vec<Value> = t
            .rows(tn)
            .iter()
            .map(|r| {
                let mut o = serde_json::Map::new();
                for (k, v) in r.fields() {
                    o.insert(k.to_string(), Value::String(v));
                }
                let p = r.prov();
                o.insert("status".into(), json!(p.status.as_str()));
                o.insert("source".into(), json!(p.source));
                o.insert("note".into(), json!(p.note));
                o.insert("line".into(), json!(p.line));
                Value::Object(o)
            })
            .collect();
        tables.insert(tn.file().to_string(), Value::Array(rows));
    }
    let provenance: Vec<Value> = families(t)
        .iter()
        .map(|f| {
            json!({
                "table": f.table.file(),
                "rows": f.rows,
                "statuses": f.statuses.iter().map(|(s, n)| json!({"status": s.as_str(), "rows": n})).collect::<Vec<_>>(),
                "sources": f.sources.iter().map(|(id, d)| json!({"id": id, "retrieved": d.map(|d| d.to_string())})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "pricing_version": t.version().to_string(),
        "origin": t.origin,
        "manifest": t.manifest,
        "provenance": provenance,
        "staleness_warning": t.staleness_warning(),
        "tables": tables,
    })
}

/// The changes between two versions (and, when given, what they do to a fleet's bill,
/// rendered by the caller).
pub fn diff(d: &TableDiff, a: &PriceTable, b: &PriceTable, markdown: bool) -> String {
    let mut out = String::new();
    let head = format!(
        "Pricing {} → {} ({} → {})",
        a.label(),
        b.label(),
        a.origin,
        b.origin
    );
    if markdown {
        let _ = writeln!(out, "### {head}\n");
    } else {
        let _ = writeln!(out, "{head}");
    }
    if d.is_empty() {
        let _ = writeln!(out, "No price changes.\n");
    } else {
        let rows: Vec<Vec<String>> = d
            .changes
            .iter()
            .flat_map(|c| {
                c.fields.iter().map(move |f| {
                    vec![
                        c.table.file().to_string(),
                        c.key.clone(),
                        match c.change {
                            ChangeKind::Added => "added",
                            ChangeKind::Removed => "removed",
                            ChangeKind::Changed => "changed",
                        }
                        .to_string(),
                        f.field.to_string(),
                        f.before.clone(),
                        f.after.clone(),
                    ]
                })
            })
            .collect();
        out.push_str(&render_sections(
            &[Section {
                title: format!(
                    "{} changed row{}:",
                    d.changes.len(),
                    if d.changes.len() == 1 { "" } else { "s" }
                ),
                headers: ["table", "row", "change", "field", "before", "after"]
                    .map(String::from)
                    .to_vec(),
                rows,
                notes: Vec::new(),
            }],
            markdown,
        ));
    }
    if !d.new_notes.is_empty() {
        let _ = writeln!(out, "Notes of {}:", b.label());
        for n in &d.new_notes {
            let _ = writeln!(out, "{} {n}", if markdown { "-" } else { "  -" });
        }
        out.push('\n');
    }
    out
}

pub fn diff_json(d: &TableDiff) -> Value {
    json!({
        "from": d.from.to_string(),
        "to": d.to.to_string(),
        "changes": d.changes,
        "new_notes": d.new_notes,
    })
}
