//! `Document::from_slice` reads a well-formed TD in one pass and falls back to the careful
//! two-pass path only for errors, Thing Models and repeated keys. These tests check that
//! both paths agree: the one-pass model equals the model built from a `serde_json::Value`
//! of the same text, and a key repeated with a different value anywhere is still a
//! `DuplicateKey` error.

use std::fs;
use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use wot_td::{Document, ParseErrorKind};

mod common;

use common::td;

/// Parses `bytes` both ways and checks that they agree whenever the text parses.
fn agree(bytes: &[u8]) -> bool {
    let Ok(doc) = Document::from_slice(bytes) else {
        return false;
    };
    let value: Value = serde_json::from_slice(bytes).expect("accepted text is JSON");
    let careful = Document::from_value(value.clone()).expect("the careful path accepts it too");
    assert_eq!(doc.kind(), careful.kind());
    match (doc.as_thing(), careful.as_thing()) {
        (Some(a), Some(b)) => assert_eq!(a, b),
        (None, None) => assert_eq!(doc.as_thing_model(), careful.as_thing_model()),
        _ => unreachable!("kinds agree"),
    }
    // Written back in the source order, whichever path kept it.
    assert_eq!(doc.to_value().unwrap(), careful.to_value().unwrap());
    assert_eq!(
        serde_json::to_string(&doc.to_value().unwrap()).unwrap(),
        serde_json::to_string(&careful.to_value().unwrap()).unwrap()
    );
    // The same findings; only the text gives positions and notes about reading it.
    let findings = |d: &Document| -> Vec<_> {
        d.validate()
            .into_iter()
            .filter(|d| d.rule != "duplicate-identical" && d.rule != "byte-order-mark")
            .map(|d| (d.severity, d.rule, d.path, d.message))
            .collect()
    };
    assert_eq!(findings(&doc), findings(&careful));
    true
}

#[test]
fn both_paths_agree_on_every_corpus_file_and_its_mangled_variants() {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/td-corpus"
    ));
    let (mut files, mut accepted, mut mangled_accepted) = (0, 0, 0);
    for dir in ["valid", "edge", "invalid", "tm/valid", "tm/invalid"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            files += 1;
            accepted += usize::from(agree(&bytes));
            for cut in (0..bytes.len()).step_by(97) {
                let mut mangled = bytes.clone();
                mangled[cut] = b" 0\"x,}]1e"[cut % 9];
                mangled_accepted += usize::from(agree(&mangled));
            }
        }
    }
    assert!(files > 80, "{files} files");
    assert!(accepted > 60, "{accepted} of {files} accepted");
    assert!(
        mangled_accepted > 100,
        "{mangled_accepted} mangled variants accepted"
    );
}

#[test]
fn repeated_keys_are_found_at_every_level_and_after_unescaping() {
    let cases = [
        // (extra text, JSON path of the repeated key)
        (r#", "x:a": 1, "x:a": 2"#, "x:a"),
        (r#", "title": "again""#, "title"),
        (
            r#", "properties": {"p": {"forms": [{"href": "/p"}]}, "p": {"forms": [{"href": "/q"}]}}"#,
            "properties.p",
        ),
        (
            r#", "properties": {"p": {"type": "object", "properties": {"a": {}, "a": {}}, "forms": [{"href": "/p"}]}}"#,
            "properties.p.properties.a",
        ),
        (
            r#", "properties": {"p": {"const": {"k": [{"z": 1, "z": 2}]}, "forms": [{"href": "/p"}]}}"#,
            "properties.p.const.k[0].z",
        ),
        // A name defined twice is an error even when both definitions are the same.
        (
            r#", "securityDefinitions": {"a": {"scheme": "nosec"}, "a": {"scheme": "nosec"}}"#,
            "securityDefinitions.a",
        ),
        (r#", "x:o": {"a": 1, "\u0061": 2}"#, "x:o.a"),
        (r#", "x:o": {"\/": 1, "/": 2}"#, r#"x:o["/"]"#),
        (r#", "x:o": {"\"": 1, "\u0022": 2}"#, r#"x:o["\""]"#),
        (
            r#", "x:o": [{}, {"b": [], "a": {"a": 1}, "b": {}}]"#,
            "x:o[1].b",
        ),
    ];
    for (extra, path) in cases {
        let err = td(extra).parse::<Document>().unwrap_err();
        assert_eq!(err.kind(), ParseErrorKind::DuplicateKey, "{extra}: {err}");
        assert_eq!(err.path(), path, "{extra}");
        assert!(err.line() > 0, "{extra}");
    }
}

#[test]
fn a_term_repeated_with_the_same_value_is_a_warning_with_a_position() {
    let text = td(r#", "x:o": {"z": [1, {"a": 2}], "z": [1, {"a":2}]}"#);
    let doc = text.parse::<Document>().unwrap();
    let warning = doc
        .validate()
        .into_iter()
        .find(|d| d.rule == "duplicate-identical")
        .unwrap();
    assert!(!warning.is_error());
    assert_eq!(warning.path, "x:o.z");
    assert!(warning.position.is_some_and(|p| p.line > 1), "{warning}");
}

#[test]
fn the_same_key_in_different_objects_is_fine() {
    let text = td(
        r#", "x:o": {"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}], "a\"": "\"a\"", "a\\": 0},
  "properties": {"a": {"title": "a", "properties": {"title": {"title": "title"}}, "forms": [{"href": "/a"}]}}"#,
    );
    assert!(agree(text.as_bytes()), "{text}");
}

/// A JSON tree written as text, with keys from a small set of raw (escaped) spellings so
/// that repeats, also of differently escaped equal keys, are common.
#[derive(Debug, Clone)]
enum Tree {
    Num(u8),
    Str(&'static str),
    Arr(Vec<Tree>),
    Obj(Vec<(&'static str, Tree)>),
}

/// Raw key spellings; several decode to the same key.
const KEYS: [&str; 8] = ["a", r"\u0061", "b", r"\/", "/", r#"\""#, r"a\\", "x:y"];

impl Tree {
    fn text(&self, out: &mut String) {
        match self {
            Tree::Num(n) => out.push_str(&n.to_string()),
            Tree::Str(s) => {
                out.push('"');
                out.push_str(s);
                out.push('"');
            }
            Tree::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.text(out);
                }
                out.push(']');
            }
            Tree::Obj(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("\n \"{k}\" :"));
                    v.text(out);
                }
                out.push('}');
            }
        }
    }

    /// True when some object repeats a key with a different value (as a parser that
    /// keeps the last of repeated keys reads each value).
    fn has_conflict(&self) -> bool {
        match self {
            Tree::Num(_) | Tree::Str(_) => false,
            Tree::Arr(items) => items.iter().any(Tree::has_conflict),
            Tree::Obj(entries) => {
                let mut seen = std::collections::HashMap::new();
                let mut conflict = false;
                for (k, v) in entries {
                    let key: String = serde_json::from_str(&format!("\"{k}\"")).unwrap();
                    let mut text = String::new();
                    v.text(&mut text);
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if let Some(earlier) = seen.insert(key, value.clone()) {
                        conflict |= earlier != value;
                    }
                }
                conflict || entries.iter().any(|(_, v)| v.has_conflict())
            }
        }
    }
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        any::<u8>().prop_map(Tree::Num),
        prop::sample::select(KEYS.to_vec()).prop_map(Tree::Str),
    ];
    leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Tree::Arr),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..5)
                .prop_map(Tree::Obj),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn conflicting_repeated_keys_are_errors_and_everything_else_parses_the_same_both_ways(t in tree()) {
        let mut ext = String::new();
        t.text(&mut ext);
        let text = td(&format!(",\n  \"x:ext\": {ext}"));
        match text.parse::<Document>() {
            Err(e) => {
                prop_assert!(t.has_conflict(), "{text}: {e}");
                prop_assert_eq!(e.kind(), ParseErrorKind::DuplicateKey);
            }
            Ok(_) => {
                prop_assert!(!t.has_conflict(), "{}", text);
                prop_assert!(agree(text.as_bytes()));
            }
        }
    }
}
