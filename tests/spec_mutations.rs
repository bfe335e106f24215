//! Random mutations of the shipped specs and state files: validation, expansion and
//! planning may reject them, but never panic.

// Helpers may panic on a broken fixture, like the tests that call them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;

const JUNK: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "-",
    "&a",
    "*a",
    "!",
    "|",
    ">",
    "'",
    "\"",
    "\n",
    "\t",
    " ",
    "#",
    "%",
    "@",
    "`",
    "~",
    "<<: *a",
    "null",
    "true",
    "-1",
    "0",
    "99999999999999999999",
    "1.5",
    "2gb",
    "{{",
    "}}",
    "{{ x }}",
    "{% if %}",
    "ü",
    "\u{feff}",
    "\0",
    "?",
    "---",
    "...",
    "&a [*a, *a]",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete { at: usize, len: usize },
    Insert { at: usize, junk: usize },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    ReplaceValue { line: usize, junk: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 0..JUNK.len()).prop_map(|(at, junk)| Mutation::Insert { at, junk }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), 0..JUNK.len())
            .prop_map(|(line, junk)| Mutation::ReplaceValue { line, junk }),
    ]
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(src: &str, muts: &[Mutation]) -> String {
    let mut s = src.to_string();
    for m in muts {
        match m {
            Mutation::Delete { at, len } => {
                let a = floor_char(&s, at % (s.len() + 1));
                let b = floor_char(&s, a + len);
                s.replace_range(a..b, "");
            }
            Mutation::Insert { at, junk } => {
                let a = floor_char(&s, at % (s.len() + 1));
                s.insert_str(a, JUNK[*junk]);
            }
            Mutation::DuplicateLine { line } => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let i = line % lines.len();
                    lines.insert(i, lines[i]);
                }
                s = lines.join("\n");
            }
            Mutation::SwapLines { a, b } => {
                let mut lines: Vec<&str> = s.lines().collect();
                if !lines.is_empty() {
                    let (x, y) = (a % lines.len(), b % lines.len());
                    lines.swap(x, y);
                }
                s = lines.join("\n");
            }
            Mutation::ReplaceValue { line, junk } => {
                let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
                if !lines.is_empty() {
                    let i = line % lines.len();
                    if let Some(pos) = lines[i].find(": ") {
                        lines[i].truncate(pos + 2);
                        lines[i].push_str(JUNK[*junk]);
                    }
                }
                s = lines.join("\n");
            }
        }
    }
    s
}

fn exercise(bytes: &[u8]) {
    if let Ok(loaded) = flotilla::spec::load_bytes(bytes, "mutant.yaml") {
        let d = &loaded.desired;
        let empty = flotilla::state::interpret(&flotilla::state::Snapshot::empty(&d.org), d);
        let plan = flotilla::plan::plan(d, &empty, &[]);
        let _ = flotilla::graph::Graph::build(&d.resources);
        let applied = common::applied_snapshot(d);
        let observed = flotilla::state::interpret(&applied, d);
        let again = flotilla::plan::plan(d, &observed, &[]);
        assert!(
            !again.has_changes(),
            "a valid mutant must converge against its applied state"
        );
        assert_eq!(plan.summary.create, d.resources.len());
    } else {
        // Errors render without panicking either.
        let e = flotilla::spec::load_bytes(bytes, "mutant.yaml")
            .err()
            .map(|d| d.to_string())
            .unwrap_or_default();
        assert!(!e.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_jarvis_never_panics(muts in proptest::collection::vec(mutation(), 1..6)) {
        let src = include_str!("../specs/jarvis.yaml");
        exercise(apply(src, &muts).as_bytes());
    }

    #[test]
    fn mutated_hybrid_never_panics(muts in proptest::collection::vec(mutation(), 1..6)) {
        let src = include_str!("../specs/hybrid.yaml");
        exercise(apply(src, &muts).as_bytes());
    }

    #[test]
    fn mutated_workspaces_never_panics(muts in proptest::collection::vec(mutation(), 1..6)) {
        let src = include_str!("../specs/workspaces.yaml");
        exercise(apply(src, &muts).as_bytes());
    }

    #[test]
    fn mutated_invalid_examples_never_panic(which in 0usize..64, muts in proptest::collection::vec(mutation(), 0..4)) {
        let mut files: Vec<_> = std::fs::read_dir(common::root().join("examples/invalid")).unwrap()
            .map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect();
        files.sort();
        let src = std::fs::read_to_string(&files[which % files.len()]).unwrap();
        exercise(apply(&src, &muts).as_bytes());
    }

    #[test]
    fn mutated_state_files_never_panic(muts in proptest::collection::vec(mutation(), 1..4)) {
        let src = include_str!("states/jarvis-drift.json");
        let d = common::load("specs/jarvis.yaml");
        if let Ok(snap) = flotilla::state::Snapshot::from_json(apply(src, &muts).as_bytes(), "m.json") {
            let observed = flotilla::state::interpret(&snap, &d);
            let _ = flotilla::plan::plan(&d, &observed, &[]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }
}
