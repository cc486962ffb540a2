//! Parsing: error paths and positions, duplicate keys, limits, losslessness details.

use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};
use wot_td::{Document, DocumentKind, OneOrMany, Operation, ParseErrorKind, SecurityScheme};

mod common;

use common::td;

#[test]
fn type_error_names_path_line_and_column() {
    let text = td(r#",
  "properties": {"temp": {"forms": [{"href": "/t", "op": "readPropertee"}]}}"#);
    let err = text.parse::<Document>().unwrap_err();
    assert_eq!(err.kind(), ParseErrorKind::Structure);
    assert_eq!(err.path(), "properties.temp.forms[0].op");
    assert_eq!(err.line(), 6);
    // Column of the value `"readPropertee"`.
    let line = text.lines().nth(5).unwrap();
    assert_eq!(err.column(), line.find("\"readPropertee\"").unwrap() + 1);
    assert!(err.to_string().contains("readPropertee"), "{err}");
}

#[test]
fn property_schema_terms_get_exact_paths() {
    let text = td(r#",
  "properties": {"temp": {"type": "float", "forms": [{"href": "/t"}]}}"#);
    let err = text.parse::<Document>().unwrap_err();
    assert_eq!(err.path(), "properties.temp.type");
    assert_eq!(err.line(), 6);
}

#[test]
fn missing_required_terms_are_named_and_placed_at_their_object() {
    let text = td(r#", "events": {"e": {"forms": [{"op": "subscribeevent"}]}}"#);
    let err = text.parse::<Document>().unwrap_err();
    assert_eq!(err.path(), "events.e.forms[0].href");
    assert!(err.message().contains("href"), "{err}");
    let line = text
        .lines()
        .position(|l| l.contains("subscribeevent"))
        .unwrap();
    assert_eq!(err.line(), line + 1);
    let column = text.lines().nth(line).unwrap().find("{\"op\"").unwrap() + 1;
    assert_eq!(err.column(), column, "the form object: {err}");
    let err = r#"{"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "x"}"#
        .parse::<Document>()
        .unwrap_err();
    assert_eq!((err.line(), err.column()), (1, 1));
    assert!(
        ["security", "securityDefinitions"].contains(&err.path()),
        "{err}"
    );
}

#[test]
fn duplicate_keys_are_rejected_anywhere() {
    let text = td(r#",
  "properties": {"p": {"forms": [{"href": "/a",
     "href": "/b"}]}}"#);
    let err = text.parse::<Document>().unwrap_err();
    assert_eq!(err.kind(), ParseErrorKind::DuplicateKey);
    assert_eq!(err.path(), "properties.p.forms[0].href");
    assert_eq!(err.line(), 7);
    // Also in extension terms and in Thing Models.
    let tm = r#"{"@type": "tm:ThingModel", "x:y": {"a": 1, "a": 2}}"#;
    assert_eq!(
        tm.parse::<Document>().unwrap_err().kind(),
        ParseErrorKind::DuplicateKey
    );
}

#[test]
fn syntax_errors_are_syntax() {
    let err = ("{\n  \"title\": }").parse::<Document>().unwrap_err();
    assert!(err.is_syntax());
    assert_eq!((err.line(), err.column()), (2, 12));
    assert!(
        format!("{} trailing", td(""))
            .parse::<Document>()
            .unwrap_err()
            .is_syntax()
    );
    assert!(Document::from_slice(b"\xff\xfe").unwrap_err().is_syntax());
    let err = ("[1, 2]").parse::<Document>().unwrap_err();
    assert_eq!(err.kind(), ParseErrorKind::Structure);
}

#[test]
fn hundred_thousand_nested_items_give_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let mut text = String::from(
        r#"{"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "T", "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n", "properties": {"p": {"forms": [{"href": "/p"}], "type": "array", "items": "#,
    );
    for _ in 0..depth {
        text.push_str(r#"{"type": "array", "items": "#);
    }
    text.push_str("{}");
    for _ in 0..depth {
        text.push('}');
    }
    text.push_str("}}}");
    let err = text.parse::<Document>().unwrap_err();
    assert!(err.is_syntax());
    assert!(err.message().contains("recursion limit"), "{err}");

    let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(arrays.parse::<Document>().unwrap_err().is_syntax());
}

#[test]
fn deep_values_given_directly_are_rejected() {
    let mut v = json!({});
    for _ in 0..1000 {
        v = json!({ "x:deep": v });
    }
    let err = Document::from_value(v).unwrap_err();
    assert!(err.message().contains("deeper"), "{err}");
}

#[test]
fn reader_input_and_its_limit() {
    let text = td("");
    let doc = Document::from_reader(text.as_bytes()).unwrap();
    assert_eq!(doc.kind(), DocumentKind::Td);
    let huge = std::io::repeat(b' ').take(wot_td::MAX_DOCUMENT_BYTES + 10);
    let err = Document::from_reader(huge).unwrap_err();
    assert_eq!(err.kind(), ParseErrorKind::Io);
}

#[test]
fn thing_models_are_recognised_by_type() {
    let doc = r#"{"@type": ["Thing", "tm:ThingModel"], "title": "M", "properties": {"p": {"maximum": "{{MAX}}"}}}"#.parse::<Document>().unwrap();
    assert_eq!(doc.kind(), DocumentKind::Tm);
    let tm = doc.as_thing_model().unwrap();
    assert_eq!(tm.title(), Some("M"));
    assert_eq!(tm.affordance_names("properties").collect::<Vec<_>>(), ["p"]);
    assert!(doc.as_thing().is_none());
}

#[test]
fn unknown_terms_are_kept_per_object_and_written_back_in_order() {
    let text = td(r#",
  "saref:hasState": {"x": 1},
  "properties": {"p": {
     "schema:name": "n", "type": "integer", "minItems": 1, "const": null,
     "forms": [{"htv:methodName": "GET", "href": "/p", "op": "readproperty"}]
  }},
  "securityDefinitions": {"ace": {"scheme": "ace:ACESecurityScheme", "ace:as": "coaps://as"}},
  "security": "ace""#)
    .replace(
        r#"
  "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
  "security": "nosec_sc","#,
        "",
    );
    let doc = text.parse::<Document>().unwrap();
    let thing = doc.as_thing().unwrap();
    assert_eq!(thing.extensions["saref:hasState"], json!({"x": 1}));
    let p = thing.property("p").unwrap();
    assert_eq!(p.schema.extensions["schema:name"], json!("n"));
    assert_eq!(p.schema.min_items, Some(1));
    assert_eq!(p.schema.constant, Some(Value::Null));
    assert_eq!(p.forms[0].extensions["htv:methodName"], json!("GET"));
    assert_eq!(p.forms[0].op, Some(OneOrMany::One(Operation::ReadProperty)));
    match thing.security_scheme("ace").unwrap() {
        SecurityScheme::Other { scheme, body } => {
            assert_eq!(scheme, "ace:ACESecurityScheme");
            assert_eq!(body.common.extensions["ace:as"], json!("coaps://as"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let original: Value = serde_json::from_str(&text).unwrap();
    let written = doc.to_value().unwrap();
    assert_eq!(
        serde_json::to_string(&written).unwrap(),
        serde_json::to_string(&original).unwrap()
    );
}

#[test]
fn models_built_in_code_convert_to_documents() {
    let thing = td("").parse::<Document>().unwrap().into_thing().unwrap();
    let doc = Document::from(thing.clone());
    assert_eq!(doc.as_thing(), Some(&thing));
    let again = doc
        .to_json_string_pretty()
        .unwrap()
        .parse::<Document>()
        .unwrap();
    assert_eq!(again, doc);
}

/// No input makes the parser, the validator or the form finder panic: every corpus file
/// cut at many offsets, and with bytes overwritten.
#[test]
fn mangled_corpus_files_never_panic() {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/td-corpus"
    ));
    let mut checked = 0;
    for dir in ["valid", "edge", "invalid", "tm/valid", "tm/invalid"] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let bytes = fs::read(entry.unwrap().path()).unwrap();
            for cut in (0..bytes.len()).step_by(53) {
                exercise(&bytes[..cut]);
                let mut mangled = bytes.clone();
                mangled[cut] = b"{}[]\",:0x\\"[cut % 10];
                exercise(&mangled);
                checked += 2;
            }
        }
    }
    assert!(checked > 200);
}

fn exercise(bytes: &[u8]) {
    if let Ok(doc) = Document::from_slice(bytes) {
        let _ = doc.validate();
        let _ = doc.to_value();
        if let Some(thing) = doc.as_thing() {
            let q = wot_td::FormQuery::new().subprotocol("sse");
            for (name, _) in thing.properties() {
                for op in Operation::ALL {
                    let _ = thing.forms_for(wot_td::Affordance::Property(name), op, &q);
                }
            }
        }
    }
}

/// The deepest document `serde_json` accepts (127 levels) parses, validates and
/// serializes on a test thread's small stack.
#[test]
fn deepest_accepted_schema_works() {
    for depth in [60, 125] {
        let mut text = String::from(
            r#"{"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "T", "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n", "properties": {"p": {"forms": [{"href": "/p"}], "type": "array", "items": "#,
        );
        let levels = depth - 4;
        for _ in 0..levels {
            text.push_str(r#"{"type": "array", "items": "#);
        }
        text.push_str(r#"{"type": "number"}"#);
        for _ in 0..levels {
            text.push('}');
        }
        text.push_str("}}}");
        let doc = text
            .parse::<Document>()
            .unwrap_or_else(|e| panic!("depth {depth}: {e}"));
        assert!(doc.validate().iter().all(|d| !d.is_error()));
        assert_eq!(
            doc.to_value().unwrap(),
            serde_json::from_str::<Value>(&text).unwrap()
        );
    }
}

/// Messages quote the document, but never more than a few hundred characters of it.
#[test]
fn messages_quoting_huge_values_are_clipped() {
    let huge = "x".repeat(1_000_000);
    let err = td(&format!(
        r#", "properties": {{"p": {{"forms": [{{"href": "/p", "op": "{huge}"}}]}}}}"#
    ))
    .parse::<Document>()
    .unwrap_err();
    assert_eq!(err.path(), "properties.p.forms[0].op");
    assert!(
        err.message().chars().count() <= 500,
        "{}",
        err.message().len()
    );
    assert!(err.message().contains(" … "), "{}", err.message());

    let doc = td(&format!(
        r#", "properties": {{"p": {{"forms": [{{"href": "http://[{huge}"}}]}}}}"#
    ))
    .parse::<Document>()
    .unwrap();
    let diags = doc.validate();
    let href = diags.iter().find(|d| d.rule == "href-uri").unwrap();
    assert!(
        href.message.chars().count() <= 500,
        "{}",
        href.message.len()
    );
}
