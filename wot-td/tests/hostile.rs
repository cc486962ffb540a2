//! Hostile Thing Descriptions and Thing Models: non-UTF-8 bytes, numbers out of range, huge and
//! wide documents, self-referencing models and exploding `tm:extends` graphs. Each must give a
//! clear error or a bounded result. (Deep nesting, duplicate keys and the reader's size limit
//! are covered by `parsing.rs`.)

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};
use wot_td::{Document, ParseErrorKind, ThingModel};

const CTX: &str = "https://www.w3.org/2022/wot/td/v1.1";

fn td_with_property(schema: &str) -> String {
    format!(
        r#"{{"@context": "{CTX}", "title": "T",
  "securityDefinitions": {{"n": {{"scheme": "nosec"}}}}, "security": "n",
  "properties": {{"p": {{"forms": [{{"href": "http://t/p"}}], {schema}}}}}}}"#
    )
}

/// Runs `work` on its own thread and fails if it takes longer than `limit`.
fn within<T: Send + 'static>(limit: Duration, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(work());
    });
    result
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

#[test]
fn non_utf8_bytes_are_a_syntax_error_with_a_position() {
    let mut bytes = td_with_property(r#""type": "string""#).into_bytes();
    let at = bytes.windows(3).position(|w| w == b"\"T\"").unwrap() + 1;
    bytes[at] = 0xFF;
    let error = Document::from_slice(&bytes).unwrap_err();
    assert!(error.is_syntax(), "{error}");
    assert_eq!(error.line(), 1, "{error}");
    assert!(error.column() > 0, "{error}");

    // A UTF-8 byte order mark is not JSON either; the error says so instead of panicking.
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(td_with_property(r#""type": "string""#).as_bytes());
    assert!(Document::from_slice(&with_bom).unwrap_err().is_syntax());

    // Overlong encodings and lone surrogates in escapes.
    for bad in [&b"{\"title\": \"\xC0\xAF\"}"[..], br#"{"title": "\ud800"}"#] {
        let error = Document::from_slice(bad).unwrap_err();
        assert!(error.is_syntax(), "{error}");
    }
}

#[test]
fn numbers_out_of_range_are_errors_that_name_the_term() {
    for (schema, path) in [
        (r#""type": "number", "minimum": 1e400"#, ""),
        (
            r#""type": "array", "minItems": -1"#,
            "properties.p.minItems",
        ),
        (
            r#""type": "array", "maxItems": 1e20"#,
            "properties.p.maxItems",
        ),
        (
            r#""type": "string", "maxLength": 18446744073709551616"#,
            "properties.p.maxLength",
        ),
    ] {
        let error = Document::from_str(&td_with_property(schema)).unwrap_err();
        assert!(
            matches!(
                error.kind(),
                ParseErrorKind::Syntax | ParseErrorKind::Structure
            ),
            "{schema}: {error}"
        );
        assert!(error.path().starts_with(path), "{schema}: {error}");
        assert!(error.line() > 0, "{schema}: {error}");
    }
}

#[test]
fn extreme_but_valid_numbers_do_not_break_validation_or_value_checks() {
    let doc = Document::from_str(&td_with_property(
        r#""type": "number", "minimum": -1.7976931348623157e308, "maximum": 1.7976931348623157e308, "multipleOf": 5e-324"#,
    ))
    .unwrap();
    let _ = doc.validate();
    let thing = doc.as_thing().unwrap();
    let (_, property) = thing.properties().next().unwrap();
    for value in [
        json!(1.7976931348623157e308),
        json!(-5e-324),
        json!(u64::MAX),
        json!(i64::MIN),
    ] {
        // Whatever the verdict, it is a verdict.
        let _ = property.schema.validate_value(&value);
    }
    let doc =
        Document::from_str(&td_with_property(r#""type": "integer", "multipleOf": 0"#)).unwrap();
    assert!(
        doc.validate().iter().any(|d| d.is_error()),
        "multipleOf 0 must be reported"
    );
}

#[test]
fn a_wide_document_of_five_thousand_properties_parses_and_validates_quickly() {
    let mut properties = serde_json::Map::new();
    for i in 0..5_000 {
        properties.insert(
            format!("p{i}"),
            json!({"type": "number", "minimum": 0, "maximum": i, "observable": true,
                   "forms": [{"href": format!("http://t/p{i}"), "op": ["readproperty", "observeproperty"]}]}),
        );
    }
    let text = serde_json::to_string(&json!({
        "@context": CTX, "title": "Wide", "securityDefinitions": {"n": {"scheme": "nosec"}},
        "security": "n", "properties": properties,
    }))
    .unwrap();
    assert!(text.len() > 700_000);
    let count = within(Duration::from_secs(30), move || {
        let doc = Document::from_str(&text).unwrap();
        assert!(doc.validate().iter().all(|d| !d.is_error()));
        doc.as_thing().unwrap().properties().count()
    });
    assert_eq!(count, 5_000);
}

#[test]
fn a_ten_mebibyte_string_is_kept_whole() {
    let title = "t".repeat(10 * 1024 * 1024);
    let text = td_with_property(r#""type": "string""#)
        .replace(r#""title": "T""#, &format!(r#""title": "{title}""#));
    let doc = Document::from_str(&text).unwrap();
    assert_eq!(doc.title().map(str::len), Some(title.len()));
}

#[test]
fn self_referencing_tm_refs_are_reported_not_followed() {
    let text = json!({
        "@context": [CTX], "@type": "tm:ThingModel", "title": "M",
        "schemaDefinitions": {
            "a": {"tm:ref": "#/schemaDefinitions/b"},
            "b": {"tm:ref": "#/schemaDefinitions/a"},
            "self": {"tm:ref": "#/schemaDefinitions/self"}
        },
        "properties": {"p": {"tm:ref": "#/properties/p"}}
    })
    .to_string();
    let diagnostics = within(Duration::from_secs(10), move || {
        Document::from_str(&text).unwrap().validate()
    });
    assert!(
        diagnostics.iter().all(|d| !d.is_error()),
        "{diagnostics:#?}"
    );
}

fn model_extending(parents: &[String]) -> ThingModel {
    let links: Vec<Value> = parents
        .iter()
        .map(|href| json!({"rel": "tm:extends", "href": href, "type": "application/tm+json"}))
        .collect();
    ThingModel {
        json: json!({"@context": CTX, "@type": "tm:ThingModel", "title": "M", "links": links})
            .as_object()
            .unwrap()
            .clone(),
    }
}

#[test]
fn a_long_tm_extends_chain_stops_at_the_depth_limit() {
    let resolver = |href: &str| {
        let n: usize = href.strip_prefix("http://m/")?.parse().ok()?;
        Some(model_extending(&[format!("http://m/{}", n + 1)]))
    };
    let doc = Document::Tm(model_extending(&["http://m/0".to_owned()]));
    let diagnostics = within(Duration::from_secs(10), move || {
        doc.validate_with(&resolver)
    });
    assert!(
        diagnostics
            .iter()
            .any(|d| d.is_error() && d.message.contains("deeper")),
        "{diagnostics:#?}"
    );
}

/// A diamond-shaped `tm:extends` graph: every model of level k extends the same four models
/// of level k + 1. There are only 4 × 16 models but 4^16 paths; a resolver fed by the
/// network must not make validation walk them all.
#[test]
fn a_diamond_tm_extends_graph_is_checked_in_bounded_time() {
    let level = |k: usize| {
        (0..4)
            .map(|i| format!("http://m/{k}/{i}"))
            .collect::<Vec<_>>()
    };
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    let resolver = move |href: &str| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let k: usize = href
            .strip_prefix("http://m/")?
            .split('/')
            .next()?
            .parse()
            .ok()?;
        Some(model_extending(&level(k + 1)))
    };
    let doc = Document::Tm(model_extending(&level(0)));
    let diagnostics = within(Duration::from_secs(10), move || {
        doc.validate_with(&resolver)
    });
    let calls = calls.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        calls <= 10_000,
        "{calls} models resolved for 64 distinct ones"
    );
    assert!(diagnostics.iter().any(|d| d.is_error()), "{diagnostics:#?}");
}
