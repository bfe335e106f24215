//! A YAML reader that keeps the line and column of every node, so that every diagnostic
//! can point at its source. Built on yaml-rust2's event parser, with limits that make
//! hostile input (alias bombs, deep nesting, huge files) fail fast with a clear error.
//! Plain scalars are typed by the YAML 1.2 core schema ([`resolve_plain`]).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diag::{Diagnostic, Mark};

/// The largest document accepted, in bytes.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;
/// The deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;
/// The most nodes a document may expand to (aliases included).
pub const MAX_NODES: usize = 2_000_000;
/// The most bytes of scalar text a document may expand to (aliases included): a long
/// string aliased many times is a bomb of few nodes.
pub const MAX_EXPANDED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub mark: Mark,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar with its text; `plain` is false for quoted and block scalars, which are
    /// always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Entries in document order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// How the core schema resolves this scalar (`None` for lists and mappings); quoted
    /// and block scalars are always strings.
    pub fn plain_kind(&self) -> Option<Plain> {
        match &self.value {
            Value::Scalar { text, plain: true } => Some(resolve_plain(text)),
            Value::Scalar { plain: false, .. } => Some(Plain::Str),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar { text, plain: true } if is_null_text(text))
    }

    /// The type name shown in "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match (&self.value, self.plain_kind()) {
            (Value::Seq(_), _) => "a list",
            (Value::Map(_), _) => "a mapping",
            (_, Some(Plain::Null)) => "null",
            (_, Some(Plain::Bool(_))) => "a boolean",
            (_, Some(Plain::Int(Some(_)))) => "an integer",
            (_, Some(Plain::Int(None) | Plain::Float)) => "a number",
            _ => "a string",
        }
    }

    /// Scalar text of any scalar (strings, numbers, booleans) that is not null.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// A string: a quoted scalar, or a plain one that the core schema resolves to a
    /// string (not null, a boolean or a number).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } if self.plain_kind() == Some(Plain::Str) => Some(text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.plain_kind() {
            Some(Plain::Bool(b)) => Some(b),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self.plain_kind() {
            Some(Plain::Int(v)) => v,
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Looks up a key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| {
                matches!(&k.value, Value::Scalar { text, .. } if text == key) && !k.is_null()
            })
            .map(|(_, v)| v)
    }

    /// Calls `f` on every scalar string in the tree with its path.
    pub fn walk_scalars<'a>(
        &'a self,
        path: &mut String,
        f: &mut dyn FnMut(&str, &'a Node, Option<&str>),
    ) {
        self.walk_inner(path, None, f);
    }

    fn walk_inner<'a>(
        &'a self,
        path: &mut String,
        key: Option<&str>,
        f: &mut dyn FnMut(&str, &'a Node, Option<&str>),
    ) {
        match &self.value {
            Value::Scalar { .. } => f(path, self, key),
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    push_index(path, i);
                    item.walk_inner(path, key, f);
                    path.truncate(len);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    let name = k.scalar_text().unwrap_or("?");
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(name);
                    v.walk_inner(path, Some(name), f);
                    path.truncate(len);
                }
            }
        }
    }
}

/// How the YAML 1.2 core schema resolves a plain scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain {
    Null,
    Bool(bool),
    /// Matches the core schema's integer forms (`[-+]?[0-9]+`, `0o[0-7]+`,
    /// `0x[0-9a-fA-F]+`); the value when it fits an `i64`.
    Int(Option<i64>),
    /// Matches the core schema's float forms (decimal with a fraction or exponent,
    /// `.inf`, `-.inf`, `+.inf`, `.nan` and their capitalised variants).
    Float,
    Str,
}

/// Resolves a plain scalar's text by the YAML 1.2 core schema (tag resolution, chapter
/// 10.3.2): anything that matches none of the null, boolean, integer and float forms is
/// a string.
pub fn resolve_plain(t: &str) -> Plain {
    // Most scalars are names: only these first characters can start a non-string.
    if !matches!(
        t.as_bytes().first(),
        None | Some(
            b'0'..=b'9' | b'-' | b'+' | b'.' | b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F'
        )
    ) {
        return Plain::Str;
    }
    match t {
        _ if is_null_text(t) => Plain::Null,
        "true" | "True" | "TRUE" => Plain::Bool(true),
        "false" | "False" | "FALSE" => Plain::Bool(false),
        ".nan" | ".NaN" | ".NAN" => Plain::Float,
        _ => {
            if let Some(v) = core_int(t) {
                Plain::Int(v)
            } else if is_core_float(t) {
                Plain::Float
            } else {
                Plain::Str
            }
        }
    }
}

fn all_digits(s: &str, radix: u32) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_digit(radix))
}

fn is_null_text(t: &str) -> bool {
    matches!(t, "" | "~" | "null" | "Null" | "NULL")
}

/// `Some(value)` when `t` is a core-schema integer (`None` inside when it does not fit
/// an `i64`).
fn core_int(t: &str) -> Option<Option<i64>> {
    if let Some(oct) = t.strip_prefix("0o") {
        return all_digits(oct, 8).then(|| i64::from_str_radix(oct, 8).ok());
    }
    if let Some(hex) = t.strip_prefix("0x") {
        return all_digits(hex, 16).then(|| i64::from_str_radix(hex, 16).ok());
    }
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    // `i64::from_str` takes the sign itself, `+` included.
    all_digits(digits, 10).then(|| t.parse().ok())
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` or
/// `[-+]? ( \.inf | \.Inf | \.INF )`.
fn is_core_float(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => all_digits(frac, 10),
        Some((int, frac)) => all_digits(int, 10) && (frac.is_empty() || all_digits(frac, 10)),
        None => all_digits(mantissa, 10),
    };
    let exponent_ok =
        exponent.is_none_or(|e| all_digits(e.strip_prefix(['-', '+']).unwrap_or(e), 10));
    mantissa_ok && exponent_ok
}

fn mark_of(m: &Marker) -> Mark {
    Mark {
        line: m.line() as u32,
        col: m.col() as u32 + 1,
    }
}

/// Converts a byte offset into a 1-based line and column.
/// `PATH[I]`: a document path of a list item. Built by appending rather than with
/// `format!` (whose machinery costs several hundred instructions a call), as paths are
/// built per node and per tenant.
pub fn indexed(path: &str, i: usize) -> String {
    let mut s = String::with_capacity(path.len() + 8);
    s.push_str(path);
    push_index(&mut s, i);
    s
}

/// Appends `[I]` to a path.
pub fn push_index(s: &mut String, i: usize) {
    s.push('[');
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = i;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    s.extend(digits[at..].iter().map(|&d| char::from(d)));
    s.push(']');
}

/// The parts, joined: `concat(&[path, ".", key])` is `format!("{path}.{key}")` without
/// the formatting machinery.
pub fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

pub fn mark_at(bytes: &[u8], offset: usize) -> Mark {
    let upto = &bytes[..offset.min(bytes.len())];
    let line = upto.iter().filter(|b| **b == b'\n').count() as u32 + 1;
    let col = upto.iter().rev().take_while(|b| **b != b'\n').count() as u32 + 1;
    Mark { line, col }
}

enum Frame {
    Seq {
        mark: Mark,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder {
    stack: Vec<Frame>,
    /// anchor → (node, its node count, its bytes of scalar text)
    anchors: HashMap<usize, (Node, usize, usize)>,
    docs: Vec<Node>,
    nodes: usize,
    bytes: usize,
    error: Option<Diagnostic>,
}

impl Builder {
    fn fail(&mut self, d: Diagnostic) {
        if self.error.is_none() {
            self.error = Some(d);
        }
    }

    fn count(&mut self, n: usize, bytes: usize, mark: Mark) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        self.bytes = self.bytes.saturating_add(bytes);
        if self.bytes > MAX_EXPANDED_BYTES {
            self.fail(
                Diagnostic::error(format!(
                    "the document expands to more than {MAX_EXPANDED_BYTES} bytes of text (the limit)"
                ))
                .at(mark)
                .hint("a long value repeated through aliases multiplies the document (an alias bomb); write the value once"),
            );
            return false;
        }
        if self.nodes > MAX_NODES {
            self.fail(
                Diagnostic::error(format!("the document expands to more than {MAX_NODES} nodes"))
                    .at(mark)
                    .hint("aliases that reference each other multiply the document (an alias bomb); write the values out or use fewer aliases"),
            );
            return false;
        }
        true
    }

    fn push_node(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }

    /// (nodes, bytes of scalar text) of a node and everything in it.
    fn size(node: &Node) -> (usize, usize) {
        let add = |a: (usize, usize), b: (usize, usize)| (a.0 + b.0, a.1.saturating_add(b.1));
        match &node.value {
            Value::Scalar { text, .. } => (1, text.len()),
            Value::Seq(items) => items.iter().map(Self::size).fold((1, 0), add),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| add(Self::size(k), Self::size(v)))
                .fold((1, 0), add),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, marker: Marker) {
        if self.error.is_some() {
            return;
        }
        let mark = mark_of(&marker);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                if !self.count(1, text.len(), mark) {
                    return;
                }
                let len = text.len();
                let node = Node {
                    mark,
                    value: Value::Scalar {
                        text,
                        plain: style == TScalarStyle::Plain,
                    },
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), 1, len));
                }
                self.push_node(node);
            }
            Event::Alias(id) => match self.anchors.get(&id).map(|(_, n, b)| (*n, *b)) {
                Some((nodes, bytes)) => {
                    if !self.count(nodes, bytes, mark) {
                        return;
                    }
                    let Some((node, _, _)) = self.anchors.get(&id) else {
                        return;
                    };
                    let mut node = node.clone();
                    node.mark = mark;
                    self.push_node(node);
                }
                None => self.fail(Diagnostic::error("alias refers to an unknown anchor").at(mark)),
            },
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if self.stack.len() >= MAX_DEPTH {
                    self.fail(
                        Diagnostic::error(format!(
                            "the document is nested more than {MAX_DEPTH} levels deep"
                        ))
                        .at(mark)
                        .hint("a fleet spec needs only a few levels; check for runaway brackets"),
                    );
                    return;
                }
                if !self.count(1, 0, mark) {
                    return;
                }
                let frame = if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq {
                        mark,
                        anchor,
                        items: Vec::new(),
                    }
                } else {
                    Frame::Map {
                        mark,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    }
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        mark,
                        anchor,
                        mut items,
                    }) => (
                        Node {
                            mark,
                            value: Value::Seq({
                                // Most lists and mappings are short: no spare slots
                                // kept for the life of the tree.
                                items.shrink_to_fit();
                                items
                            }),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        mark,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            mark,
                            value: Value::Map({
                                let mut entries = merge_keys(entries);
                                entries.shrink_to_fit();
                                entries
                            }),
                        },
                        anchor,
                    ),
                    None => return,
                };
                if anchor > 0 {
                    let (nodes, bytes) = Self::size(&node);
                    self.anchors.insert(anchor, (node.clone(), nodes, bytes));
                }
                self.push_node(node);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

/// Applies YAML merge keys (`<<: *base` or `<<: [*a, *b]`): entries of the merged mappings
/// are added unless the mapping sets them itself.
fn merge_keys(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    if !entries.iter().any(|(k, _)| is_merge_key(k)) {
        return entries;
    }
    let mut own: Vec<(Node, Node)> = Vec::new();
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (k, v) in entries {
        if is_merge_key(&k) {
            let sources: Vec<Node> = match v.value {
                Value::Seq(items) => items,
                _ => vec![v],
            };
            for src in sources {
                match src.value {
                    Value::Map(m) => {
                        for (mk, mv) in m {
                            if !merged
                                .iter()
                                .any(|(x, _)| x.scalar_text() == mk.scalar_text())
                            {
                                merged.push((mk, mv));
                            }
                        }
                    }
                    // Not a mapping: keep it so that validation reports it.
                    other => own.push((
                        k.clone(),
                        Node {
                            mark: src.mark,
                            value: other,
                        },
                    )),
                }
            }
        } else {
            own.push((k, v));
        }
    }
    for (mk, mv) in merged {
        if !own.iter().any(|(x, _)| x.scalar_text() == mk.scalar_text()) {
            own.push((mk, mv));
        }
    }
    own
}

fn is_merge_key(k: &Node) -> bool {
    matches!(&k.value, Value::Scalar { text, plain: true } if text == "<<")
}

/// The first control character no input may hold ([`crate::fsutil::first_control_char`]),
/// as an error at its line and column (no file; the caller adds it).
pub fn control_char_problem(bytes: &[u8]) -> Option<Diagnostic> {
    let (at, b) = crate::fsutil::first_control_char(bytes)?;
    Some(
        Diagnostic::error(format!(
            "the file holds the control character {}",
            crate::fsutil::control_char_name(b)
        ))
        .at(mark_at(bytes, at))
        .hint("remove it: only tab, line feed and carriage return may appear (a NUL would hide everything after it from other tools)"),
    )
}

/// Parses one YAML document from raw bytes. Errors carry a line and column but no file
/// (the caller adds it).
pub fn parse(bytes: &[u8]) -> Result<Node, Diagnostic> {
    if bytes.len() > MAX_BYTES {
        return Err(Diagnostic::error(format!(
            "the file is {} bytes; the largest accepted is {MAX_BYTES} bytes",
            bytes.len()
        ))
        .hint("split the fleet into several specs, or use `generate:` for large tenant lists"));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Err(Diagnostic::error("the file is not valid UTF-8")
                .at(mark_at(bytes, e.valid_up_to()))
                .hint("save the file as UTF-8"));
        }
    };
    if let Some(d) = control_char_problem(bytes) {
        return Err(d);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Diagnostic::error("the file is empty")
            .at(Mark { line: 1, col: 1 })
            .hint("start from one of the specs in specs/"));
    }
    let mut builder = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        nodes: 0,
        bytes: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(
            Diagnostic::error(format!("malformed YAML: {}", e.info()))
                .at(Mark {
                    line: m.line() as u32,
                    col: m.col() as u32 + 1,
                })
                .hint("check the indentation and quoting at that position (tabs are not allowed; quote values that contain `: ` or start with `{`, `[`, `*` or `&`)"),
        );
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    let mut docs = builder.docs.into_iter();
    let first = docs.next().ok_or_else(|| {
        Diagnostic::error("the file holds no YAML document (only comments?)")
            .at(Mark { line: 1, col: 1 })
            .hint("start from one of the specs in specs/")
    })?;
    if let Some(second) = docs.next() {
        return Err(
            Diagnostic::error("the file holds more than one YAML document")
                .at(second.mark)
                .hint("keep one spec per file (remove the second `---`)"),
        );
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_are_built_as_format_would() {
        for i in [0usize, 7, 10, 99, 12_345, usize::MAX] {
            assert_eq!(indexed("tenants", i), format!("tenants[{i}]"));
        }
        assert_eq!(indexed("", 3), "[3]");
        assert_eq!(concat(&["a", ".", "b"]), "a.b");
        assert_eq!(concat(&[]), "");
    }

    use super::*;

    #[test]
    fn marks_are_one_based() {
        let n = parse(b"a: 1\nb:\n  c: x\n").unwrap();
        let b = n.get("b").unwrap();
        let c = b.get("c").unwrap();
        assert_eq!(c.mark, Mark { line: 3, col: 6 });
        assert_eq!(n.get("a").unwrap().as_i64(), Some(1));
    }

    #[test]
    fn scalar_typing() {
        let n = parse(b"a: '1'\nb: 1\nc: true\nd: ~\ne: 2gb\nf: 1.5\n").unwrap();
        assert_eq!(n.get("a").unwrap().as_str(), Some("1"));
        assert_eq!(n.get("b").unwrap().as_str(), None);
        assert_eq!(n.get("b").unwrap().as_i64(), Some(1));
        assert_eq!(n.get("c").unwrap().as_bool(), Some(true));
        assert!(n.get("d").unwrap().is_null());
        assert_eq!(n.get("e").unwrap().as_str(), Some("2gb"));
        assert_eq!(n.get("f").unwrap().type_name(), "a number");
    }

    #[test]
    fn core_schema_resolution() {
        use Plain::*;
        let cases: &[(&str, Plain)] = &[
            ("", Null),
            ("~", Null),
            ("null", Null),
            ("Null", Null),
            ("NULL", Null),
            ("nULL", Str),
            ("true", Bool(true)),
            ("True", Bool(true)),
            ("TRUE", Bool(true)),
            ("false", Bool(false)),
            ("FALSE", Bool(false)),
            ("yes", Str),
            ("on", Str),
            ("tRUE", Str),
            ("0", Int(Some(0))),
            ("-19", Int(Some(-19))),
            ("+12", Int(Some(12))),
            ("0o14", Int(Some(12))),
            ("0x1F", Int(Some(31))),
            ("0xff", Int(Some(255))),
            ("99999999999999999999", Int(None)),
            ("1_000", Str),
            ("-0x1", Str),
            ("0o8", Str),
            ("0x", Str),
            ("0b101", Str),
            ("1.5", Float),
            ("-.5", Float),
            ("+1.", Float),
            ("1e3", Float),
            ("2.5E-3", Float),
            ("1e", Str),
            (".", Str),
            ("1.2.3", Str),
            (".inf", Float),
            ("-.Inf", Float),
            ("+.INF", Float),
            (".nan", Float),
            (".NaN", Float),
            (".NAN", Float),
            ("-.nan", Str),
            (".iNf", Str),
            ("nan", Str),
            ("NaN", Str),
            ("inf", Str),
            ("-inf", Str),
            ("infinity", Str),
            ("2gb", Str),
        ];
        for (text, want) in cases {
            assert_eq!(resolve_plain(text), *want, "{text:?}");
        }
    }

    #[test]
    fn nan_and_inf_words_are_strings() {
        let n = parse(b"a: nan\nb: inf\nc: .inf\nd: '.nan'\ne: 0o17\nf: 1_000\n").unwrap();
        assert_eq!(n.get("a").unwrap().as_str(), Some("nan"));
        assert_eq!(n.get("b").unwrap().type_name(), "a string");
        assert_eq!(n.get("c").unwrap().type_name(), "a number");
        assert_eq!(n.get("c").unwrap().as_str(), None);
        assert_eq!(n.get("d").unwrap().as_str(), Some(".nan"));
        assert_eq!(n.get("e").unwrap().as_i64(), Some(15));
        assert_eq!(n.get("f").unwrap().as_i64(), None);
        assert_eq!(n.get("f").unwrap().as_str(), Some("1_000"));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let n = parse(b"base: &b {x: 1, y: 2}\nthing:\n  <<: *b\n  y: 3\n").unwrap();
        let t = n.get("thing").unwrap();
        assert_eq!(t.get("x").unwrap().as_i64(), Some(1));
        assert_eq!(t.get("y").unwrap().as_i64(), Some(3));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            s.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let e = parse(s.as_bytes()).unwrap_err();
        assert!(e.message.contains("expands to more than"), "{e}");
    }

    #[test]
    fn a_long_string_aliased_many_times_is_refused() {
        let mut s = format!("a: &a \"{}\"\nb: [", "x".repeat(1 << 20));
        for _ in 0..1500 {
            s.push_str("*a, ");
        }
        s.push_str("]\n");
        let e = parse(s.as_bytes()).unwrap_err();
        assert!(e.message.contains("more than 67108864 bytes"), "{e}");
        assert_eq!(e.mark.map(|m| m.line), Some(2));
    }

    #[test]
    fn control_characters_are_refused_with_their_position() {
        let e = parse(b"version: 1\norg: ac\0me\n").unwrap_err();
        assert!(e.message.contains("NUL"), "{e}");
        assert_eq!(e.mark, Some(Mark { line: 2, col: 8 }));
        let e = parse(b"a: \x1b[31m\n").unwrap_err();
        assert!(e.message.contains("U+001B"), "{e}");
        assert!(parse(b"a: 1\r\nb: \"x\ty\"\r\n").is_ok());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let s = "[".repeat(10_000) + &"]".repeat(10_000);
        let e = parse(s.as_bytes()).unwrap_err();
        assert!(
            e.message.contains("nested") || e.message.contains("malformed"),
            "{e}"
        );
    }

    #[test]
    fn bad_inputs() {
        assert!(parse(b"").unwrap_err().message.contains("empty"));
        assert!(
            parse(b"a: [1, 2\n")
                .unwrap_err()
                .message
                .contains("malformed")
        );
        let e = parse(b"a: 1\nb: \xff\xfe\n").unwrap_err();
        assert_eq!(e.mark, Some(Mark { line: 2, col: 4 }));
        assert!(
            parse(b"a: 1\n---\nb: 2\n")
                .unwrap_err()
                .message
                .contains("more than one")
        );
        assert!(parse(b"a: *nope\n").is_err());
    }
}
