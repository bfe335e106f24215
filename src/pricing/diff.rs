//! What changed between two pricing versions, row by row.

use chrono::NaiveDate;
use serde::Serialize;

use super::{PriceTable, Row, TableName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// One row that differs: its table and key, and the fields that changed (for `Changed`)
/// or every field (for `Added` / `Removed`, with the other side empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowChange {
    pub table: TableName,
    pub key: String,
    pub change: ChangeKind,
    pub fields: Vec<FieldChange>,
}

/// The differences from version `from` to version `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableDiff {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub changes: Vec<RowChange>,
    /// Manifest notes present in `to` but not in `from`.
    pub new_notes: Vec<String>,
}

impl TableDiff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Every field that is compared: the row's fields plus its status and source (the note is
/// commentary and is not compared).
fn compared(row: &dyn Row) -> Vec<(&'static str, String)> {
    let mut f = row.fields();
    f.push(("status", row.prov().status.as_str().to_string()));
    f.push(("source", row.prov().source.clone()));
    f
}

/// Equal text, or equal numbers written differently (`1.0` and `1.00`).
fn same_value(a: &str, b: &str) -> bool {
    use std::str::FromStr;
    a == b
        || matches!(
            (rust_decimal::Decimal::from_str(a), rust_decimal::Decimal::from_str(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// Compares two versions table by table, matching rows by key.
pub fn diff(from: &PriceTable, to: &PriceTable) -> TableDiff {
    let mut changes = Vec::new();
    for table in TableName::ALL {
        let a = from.rows(table);
        let b = to.rows(table);
        for ra in &a {
            let key = ra.key();
            match b.iter().find(|rb| rb.key() == key) {
                None => changes.push(RowChange {
                    table,
                    key,
                    change: ChangeKind::Removed,
                    fields: compared(*ra)
                        .into_iter()
                        .map(|(field, before)| FieldChange {
                            field,
                            before,
                            after: String::new(),
                        })
                        .collect(),
                }),
                Some(rb) => {
                    let fb = compared(*rb);
                    let fields: Vec<FieldChange> = compared(*ra)
                        .into_iter()
                        .filter_map(|(field, before)| {
                            let after = fb
                                .iter()
                                .find(|(f, _)| *f == field)
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default();
                            (!same_value(&before, &after)).then_some(FieldChange {
                                field,
                                before,
                                after,
                            })
                        })
                        .collect();
                    if !fields.is_empty() {
                        changes.push(RowChange {
                            table,
                            key,
                            change: ChangeKind::Changed,
                            fields,
                        });
                    }
                }
            }
        }
        for rb in &b {
            let key = rb.key();
            if !a.iter().any(|ra| ra.key() == key) {
                changes.push(RowChange {
                    table,
                    key,
                    change: ChangeKind::Added,
                    fields: compared(*rb)
                        .into_iter()
                        .map(|(field, after)| FieldChange {
                            field,
                            before: String::new(),
                            after,
                        })
                        .collect(),
                });
            }
        }
    }
    let new_notes = to
        .manifest
        .notes
        .iter()
        .filter(|n| !from.manifest.notes.contains(n))
        .cloned()
        .collect();
    TableDiff {
        from: from.version(),
        to: to.version(),
        changes,
        new_notes,
    }
}
