//! Reading a version's `manifest.yaml` with the spec's positioned YAML reader and schema
//! checker, so that every error, from malformed YAML to a bad date, names the file, line
//! and column of the value at fault.

use chrono::NaiveDate;

use super::load::PricingError;
use super::{Manifest, NewerPrices, Source};
use crate::diag::{Diagnostic, Mark};
use crate::money::HOURS_PER_MONTH;
use crate::spec::schema::{Checker, Field, Ty, req};
use crate::spec::yaml::{self, Node};

/// The fields a manifest may have, for hints.
const FIELDS_HINT: &str = "fields: provider, effective_date, currency, hours_per_month, summary, sources [{id, title, url, retrieved}], notes, newer_prices {since, source, summary}";

const TEXT: Ty = Ty::Str;
const SOURCE_FIELDS: &[Field] = &[
    req("id", Ty::Str),
    req("title", Ty::Str),
    req("url", Ty::Str),
    req("retrieved", Ty::Str),
];
const SOURCE: Ty = Ty::Struct(SOURCE_FIELDS);
const NEWER_FIELDS: &[Field] = &[
    req("since", Ty::Str),
    req("source", Ty::Str),
    req("summary", Ty::Str),
];
const MANIFEST_FIELDS: &[Field] = &[
    req("provider", Ty::Str),
    req("effective_date", Ty::Str),
    req("currency", Ty::Str),
    req(
        "hours_per_month",
        Ty::Int {
            min: 0,
            max: u32::MAX as i64,
        },
    ),
    req("summary", Ty::Str),
    req("sources", Ty::List(&SOURCE)),
    req("notes", Ty::List(&TEXT)),
    req("newer_prices", Ty::Struct(NEWER_FIELDS)),
];
/// Fields that must be present (`summary` and `notes` may be left out).
const REQUIRED: &[&str] = &[
    "provider",
    "effective_date",
    "currency",
    "hours_per_month",
    "sources",
];

/// A diagnostic of the YAML reader or the schema checker as a pricing error.
fn from_diagnostic(file: &str, d: Diagnostic) -> PricingError {
    let message = match &d.path {
        Some(p) if !p.is_empty() => format!("{p}: {}", d.message),
        _ => d.message,
    };
    PricingError::new(file, message, d.hint.unwrap_or_else(|| FIELDS_HINT.into())).at_mark(d.mark)
}

/// A string the schema check has accepted (missing only if the check failed).
fn text(node: &Node, key: &str) -> String {
    node.get(key)
        .and_then(Node::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The position of a key's value, else of the node itself.
fn mark_of(node: &Node, key: &str) -> Mark {
    node.get(key).unwrap_or(node).mark
}

fn parse_date(file: &str, what: &str, s: &str, at: Mark) -> Result<NaiveDate, PricingError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        PricingError::new(
            file,
            format!("{what} `{s}` is not a date"),
            "write dates as YYYY-MM-DD",
        )
        .at_mark(Some(at))
    })
}

/// Checks the document's shape: a mapping with the manifest's fields and types, every
/// required field present, every source complete. Returns the first problem.
fn check_shape(file: &str, root: &Node) -> Result<(), PricingError> {
    if root.as_map().is_none() {
        return Err(PricingError::new(
            file,
            format!("a manifest is a mapping, found {}", root.type_name()),
            FIELDS_HINT,
        )
        .at_mark(Some(root.mark)));
    }
    let mut checker = Checker::new();
    checker.check_struct(root, "", &[MANIFEST_FIELDS]);
    if let Some(d) = checker.diags.into_iter().next() {
        return Err(from_diagnostic(file, d));
    }
    let missing = |at: &Node, path: &str| {
        PricingError::new(file, format!("`{path}` is missing"), FIELDS_HINT).at_mark(Some(at.mark))
    };
    if let Some(key) = REQUIRED.iter().find(|k| root.get(k).is_none()) {
        return Err(missing(root, key));
    }
    let sources = root.get("sources").and_then(Node::as_seq).unwrap_or(&[]);
    for (i, s) in sources.iter().enumerate() {
        if let Some(fd) = SOURCE_FIELDS.iter().find(|fd| s.get(fd.name).is_none()) {
            return Err(missing(s, &format!("sources[{i}].{}", fd.name)));
        }
    }
    Ok(())
}

/// Reads the sources, refusing repeated ids, missing urls and bad dates.
fn read_sources(file: &str, root: &Node) -> Result<Vec<Source>, PricingError> {
    let nodes = root.get("sources").and_then(Node::as_seq).unwrap_or(&[]);
    if nodes.is_empty() {
        return Err(PricingError::new(
            file,
            "lists no sources",
            "every price must be traceable: list each source with id, title, url and retrieved date",
        )
        .at_mark(Some(mark_of(root, "sources"))));
    }
    let mut sources: Vec<Source> = Vec::new();
    for s in nodes {
        let id = text(s, "id");
        if sources.iter().any(|x| x.id == id) {
            return Err(PricingError::new(
                file,
                format!("source id `{id}` is listed twice"),
                "source ids must be unique",
            )
            .at_mark(Some(mark_of(s, "id"))));
        }
        let url = text(s, "url");
        if url.trim().is_empty() {
            return Err(PricingError::new(
                file,
                format!("source `{id}` has no url"),
                "give the address where the figures can be checked",
            )
            .at_mark(Some(mark_of(s, "url"))));
        }
        let retrieved = parse_date(
            file,
            "retrieved",
            &text(s, "retrieved"),
            mark_of(s, "retrieved"),
        )?;
        sources.push(Source {
            id,
            title: text(s, "title"),
            url,
            retrieved,
        });
    }
    Ok(sources)
}

/// Reads `newer_prices`: every field present, `since` a date, `source` a declared id.
fn read_newer_prices(
    file: &str,
    root: &Node,
    sources: &[Source],
) -> Result<Option<NewerPrices>, PricingError> {
    let Some(n) = root.get("newer_prices") else {
        return Ok(None);
    };
    if let Some(fd) = NEWER_FIELDS.iter().find(|fd| n.get(fd.name).is_none()) {
        return Err(PricingError::new(
            file,
            format!("`newer_prices.{}` is missing", fd.name),
            "newer_prices needs since (YYYY-MM-DD), source (a source id) and summary",
        )
        .at_mark(Some(n.mark)));
    }
    let since = parse_date(
        file,
        "newer_prices.since",
        &text(n, "since"),
        mark_of(n, "since"),
    )?;
    let source = text(n, "source");
    if !sources.iter().any(|s| s.id == source) {
        return Err(PricingError::new(
            file,
            format!("newer_prices.source `{source}` is not a listed source"),
            "name the id of a source in `sources`",
        )
        .at_mark(Some(mark_of(n, "source"))));
    }
    Ok(Some(NewerPrices {
        since,
        source,
        summary: text(n, "summary"),
    }))
}

/// Parses and validates a manifest; `dir_name` is the version directory's name, which
/// must match the effective date when it is a date.
pub(super) fn parse_manifest(
    file: &str,
    text_: &str,
    dir_name: Option<&str>,
) -> Result<Manifest, PricingError> {
    let root = yaml::parse(text_.as_bytes()).map_err(|d| from_diagnostic(file, d))?;
    check_shape(file, &root)?;
    let at = |key: &str| Some(mark_of(&root, key));
    let effective_date = parse_date(
        file,
        "effective_date",
        &text(&root, "effective_date"),
        mark_of(&root, "effective_date"),
    )?;
    if let Some(name) = dir_name
        && let Ok(d) = NaiveDate::parse_from_str(name, "%Y-%m-%d")
        && d != effective_date
    {
        return Err(PricingError::new(
            file,
            format!("effective_date {effective_date} differs from the directory name {name}"),
            "name the directory after the date the prices took effect",
        )
        .at_mark(at("effective_date")));
    }
    let currency = text(&root, "currency");
    if currency != "USD" {
        return Err(PricingError::new(
            file,
            format!("currency `{currency}` is not supported"),
            "prices must be in USD, as Fly bills",
        )
        .at_mark(at("currency")));
    }
    let hours = root
        .get("hours_per_month")
        .and_then(Node::as_i64)
        .unwrap_or(0);
    if hours != i64::from(HOURS_PER_MONTH) {
        return Err(PricingError::new(
            file,
            format!("hours_per_month is {hours}"),
            "Fly prices a 30-day month: hours_per_month must be 720",
        )
        .at_mark(at("hours_per_month")));
    }
    let provider = text(&root, "provider");
    if provider.trim().is_empty() {
        return Err(
            PricingError::new(file, "provider is empty", "use `fly`").at_mark(at("provider"))
        );
    }
    let sources = read_sources(file, &root)?;
    let notes = root
        .get("notes")
        .and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    let newer_prices = read_newer_prices(file, &root, &sources)?;
    Ok(Manifest {
        newer_prices,
        provider,
        effective_date,
        currency,
        hours_per_month: HOURS_PER_MONTH,
        summary: text(&root, "summary"),
        sources,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "provider: fly\neffective_date: 2026-01-01\ncurrency: USD\nhours_per_month: 720\nsources:\n  - id: a\n    title: A\n    url: https://example.com\n    retrieved: 2026-01-02\n";

    fn err(text: &str) -> PricingError {
        parse_manifest("m.yaml", text, None).unwrap_err()
    }

    #[test]
    fn reads_a_manifest_with_defaults() {
        let m = parse_manifest("m.yaml", GOOD, Some("2026-01-01")).unwrap();
        assert_eq!(m.sources.len(), 1);
        assert_eq!(m.summary, "");
        assert!(m.notes.is_empty());
    }

    #[test]
    fn shape_errors_name_line_column_and_hint() {
        let e = err(&GOOD.replace("hours_per_month: 720", "hours_per_month: lots"));
        assert_eq!((e.line, e.col), (Some(4), Some(18)), "{e}");
        assert!(
            e.message.contains("hours_per_month: expected an integer"),
            "{e}"
        );
        let e = err(&format!("{GOOD}colour: blue\n"));
        assert_eq!((e.line, e.col), (Some(10), Some(1)), "{e}");
        assert!(e.message.contains("unknown key `colour`"), "{e}");
        let e = err(&GOOD.replace("provider: fly\n", ""));
        assert!(e.message.contains("`provider` is missing"), "{e}");
        assert!(e.hint.contains("fields:"), "{e}");
        let e = err(&GOOD.replace("    url: https://example.com\n", ""));
        assert!(e.message.contains("`sources[0].url` is missing"), "{e}");
        assert_eq!(e.line, Some(6), "{e}");
        let e = err(&GOOD.replace("title: A", "title: 12"));
        assert!(e.hint.contains("quote"), "{e}");
        let e = err("- a\n");
        assert!(e.message.contains("a manifest is a mapping"), "{e}");
    }
}
