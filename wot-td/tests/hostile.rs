//! Hostile Thing Descriptions and Thing Models: non-UTF-8 bytes, numbers out of range, huge and
//! wide documents, self-referencing models and exploding `tm:extends` graphs. Each must give a
//! clear error or a bounded result. (Deep nesting, duplicate keys and the reader's size limit
//! are covered by `parsing.rs`.) Regex bombs, thousands of patterns, 100,000 affordances and
//! deeply nested schemas must stay within the validation limits: the tests count heap bytes
//! with a counting allocator and compiled patterns through the diagnostics; their time limits
//! only guard against hangs.

use std::alloc::System;
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use wot_td::{
    CompiledSchema, DataSchema, Document, PATTERN_SIZE_LIMIT, ParseErrorKind, PatternErrorKind,
    ThingModel, ValidationLimits,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Tests that count heap bytes take this lock, so that they do not count each other's.
static COUNTING: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;

/// Runs `work` and returns its result with the heap bytes allocated meanwhile (by every
/// thread: an upper bound of the peak that `work` needed).
fn counting<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let _serial = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
    let region = Region::new(GLOBAL);
    let out = work();
    (out, region.change().bytes_allocated)
}

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

    // A UTF-8 byte order mark is skipped with a warning; two are not JSON.
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(td_with_property(r#""type": "string""#).as_bytes());
    let doc = Document::from_slice(&with_bom).unwrap();
    assert!(
        doc.validate()
            .iter()
            .any(|d| d.rule == "byte-order-mark" && !d.is_error())
    );
    let mut two = b"\xEF\xBB\xBF".to_vec();
    two.extend_from_slice(&with_bom);
    assert!(Document::from_slice(&two).unwrap_err().is_syntax());

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
        let error = td_with_property(schema).parse::<Document>().unwrap_err();
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
    let doc = td_with_property(
        r#""type": "number", "minimum": -1.7976931348623157e308, "maximum": 1.7976931348623157e308, "multipleOf": 5e-324"#,
    ).parse::<Document>()
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
    let doc = td_with_property(r#""type": "integer", "multipleOf": 0"#)
        .parse::<Document>()
        .unwrap();
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
        let doc = text.parse::<Document>().unwrap();
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
    let doc = text.parse::<Document>().unwrap();
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
        text.parse::<Document>().unwrap().validate()
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
    let doc = Document::from(model_extending(&["http://m/0".to_owned()]));
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
    let doc = Document::from(model_extending(&level(0)));
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

/// A TD with one string property per pattern.
fn td_with_patterns(patterns: impl IntoIterator<Item = String>) -> String {
    let mut properties = serde_json::Map::new();
    for (i, pattern) in patterns.into_iter().enumerate() {
        properties.insert(
            format!("p{i}"),
            json!({"type": "string", "pattern": pattern, "forms": [{"href": "p"}]}),
        );
    }
    serde_json::to_string(&json!({
        "@context": CTX, "title": "Patterns", "base": "http://t/",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": properties,
    }))
    .unwrap()
}

fn rules(diagnostics: &[wot_td::Diagnostic], rule: &str) -> Vec<wot_td::Diagnostic> {
    diagnostics
        .iter()
        .filter(|d| d.rule == rule)
        .cloned()
        .collect()
}

#[test]
fn two_thousand_regex_bombs_stop_at_the_compile_budget() {
    // 2,000 distinct patterns that compile to megabytes each (the issue's 170 KB TD took
    // 25 s and 2.3 GB).
    let text = td_with_patterns((0..2_000).map(|i| format!(r"\w{{{}}}", 50 + i)));
    assert!(text.len() > 100_000, "{}", text.len());
    let (diagnostics, allocated) = within(Duration::from_secs(60), move || {
        counting(|| text.parse::<Document>().unwrap().validate())
    });
    let too_big = rules(&diagnostics, "pattern");
    let budget = rules(&diagnostics, "pattern-budget");
    // Each pattern compiled to the size limit costs that much budget: the work done is the
    // budget, not the number of patterns.
    let limits = ValidationLimits::default();
    assert!(
        too_big.len() <= limits.regex_budget / limits.regex_size + 1,
        "{}",
        too_big.len()
    );
    assert_eq!(too_big[0].path, "properties.p0.pattern");
    assert!(
        too_big[0].message.contains("size limit"),
        "{}",
        too_big[0].message
    );
    assert_eq!(budget.len(), 1, "{budget:?}");
    assert!(budget[0].is_error());
    assert_eq!(
        budget[0].path,
        format!("properties.p{}.pattern", too_big.len())
    );
    assert!(
        budget[0]
            .message
            .contains(&format!("nor {} later ones", 2_000 - too_big.len() - 1)),
        "{}",
        budget[0].message
    );
    eprintln!(
        "bombs: {} too big, {} MiB allocated",
        too_big.len(),
        allocated / MIB
    );
    assert!(allocated < 512 * MIB, "{} MiB", allocated / MIB);
}

#[test]
fn two_thousand_ordinary_patterns_are_valid() {
    let text = td_with_patterns((0..2_000).map(|i| format!(r"^id{i}-[0-9a-f]{{8}}$")));
    let (diagnostics, allocated) = within(Duration::from_secs(60), move || {
        counting(|| text.parse::<Document>().unwrap().validate())
    });
    assert!(diagnostics.is_empty(), "{:?}", &diagnostics[..1]);
    eprintln!("ordinary: {} MiB allocated", allocated / MIB);
    assert!(allocated < 256 * MIB, "{} MiB", allocated / MIB);
}

#[test]
fn a_sixteen_mebibyte_td_of_long_patterns_is_rejected_within_the_budget() {
    // 2,000 patterns of 8,000 bytes (the length limit is 8 KiB), costly in every way a
    // short pattern cannot be: case-folded Unicode classes, huge repetitions, deep groups.
    let kinds = [r"(?i)\p{Any}?", r"(a{999}){999}", r"((((b))))", r"[\w--\d]"];
    let text = td_with_patterns((0..2_000).map(|i| {
        let unit = kinds[i % kinds.len()];
        let mut p = format!("{i}");
        while p.len() + unit.len() <= 8_000 {
            p.push_str(unit);
        }
        p
    }));
    assert!(text.len() > 15 * MIB, "{}", text.len());
    let (diagnostics, allocated) = within(Duration::from_secs(120), move || {
        counting(|| text.parse::<Document>().unwrap().validate())
    });
    let unusable =
        rules(&diagnostics, "pattern").len() + rules(&diagnostics, "pattern-budget").len();
    assert!(unusable > 0);
    assert!(
        diagnostics
            .iter()
            .all(|d| d.rule.as_str().starts_with("pattern")),
        "{:?}",
        diagnostics
            .iter()
            .find(|d| !d.rule.as_str().starts_with("pattern"))
    );
    eprintln!(
        "16 MiB: {} diagnostics, {} MiB allocated",
        diagnostics.len(),
        allocated / MIB
    );
    assert!(allocated < 1536 * MIB, "{} MiB", allocated / MIB);
}

#[test]
fn regex_bombs_are_rejected_by_the_size_limits() {
    let long = "a".repeat(ValidationLimits::default().pattern_bytes + 1);
    for (pattern, expect_too_long) in [
        (r"(a{1000}){1000}", false),
        (r"(((a+)+)+){1000}{1000}", false),
        (r"((a{1,1000}){1,1000}){1,1000}", false),
        (r"\w{50}", false),
        (r"(?i)\p{Any}{100}", false),
        (r"(?i)[\x{0}-\x{10FFFF}]", false),
        (r"[[[[[[[[[[\p{L}]]]]]]]]]]{100}", false),
        (long.as_str(), true),
    ] {
        let schema: DataSchema =
            serde_json::from_value(json!({"type": "array", "items": {"pattern": pattern}}))
                .unwrap();
        let compiled = within(Duration::from_secs(10), move || {
            CompiledSchema::from(schema)
        });
        let problems = compiled.problems();
        assert_eq!(problems.len(), 1, "{pattern}: {problems:?}");
        assert_eq!(problems[0].path, "items.pattern");
        match (&problems[0].kind, expect_too_long) {
            (PatternErrorKind::TooLong { .. }, true) => {}
            (PatternErrorKind::TooBig { limit }, false) => assert_eq!(*limit, PATTERN_SIZE_LIMIT),
            (other, _) => panic!("{pattern}: {other:?}"),
        }
        let errors = compiled.validate(&json!(["a", "b"]));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[1].path, "[1]");
        assert!(
            errors[0].message.contains("cannot be used"),
            "{}",
            errors[0].message
        );
        assert!(errors[0].message.len() < 400, "{}", errors[0].message);
    }
    // Nested quantifiers are no bomb for a finite automaton: no backtracking blow-up.
    let schema: DataSchema =
        serde_json::from_value(json!({"type": "string", "pattern": "^((a+)+)+$"})).unwrap();
    let compiled = CompiledSchema::from(schema);
    assert!(compiled.problems().is_empty());
    let mut text = "a".repeat(100_000);
    text.push('!');
    let errors = within(Duration::from_secs(10), move || {
        compiled.validate(&Value::String(text))
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
}

/// Parses and validates a TD of `n` integer properties; returns the heap bytes that took
/// and the size of the TD.
fn parse_and_validate_affordances(n: usize) -> (usize, usize) {
    let mut properties = serde_json::Map::new();
    for i in 0..n {
        properties.insert(
            format!("p{i}"),
            json!({"type": "integer", "forms": [{"href": "p"}]}),
        );
    }
    let text = serde_json::to_string(&json!({
        "@context": CTX, "title": "Huge", "base": "http://t/",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": properties,
    }))
    .unwrap();
    let bytes = text.len();
    let ((count, diagnostics), allocated) = within(Duration::from_secs(120), move || {
        counting(|| {
            let doc = text.parse::<Document>().unwrap();
            let diagnostics = doc.validate();
            (doc.as_thing().unwrap().properties().count(), diagnostics)
        })
    });
    assert_eq!(count, n);
    assert!(diagnostics.is_empty(), "{:?}", diagnostics.first());
    (allocated, bytes)
}

#[test]
fn a_hundred_thousand_affordances_validate_in_linear_memory() {
    let (small, small_bytes) = parse_and_validate_affordances(10_000);
    let (allocated, bytes) = parse_and_validate_affordances(100_000);
    eprintln!(
        "affordances: 10k {small_bytes} bytes {} MiB, 100k {bytes} bytes {} MiB allocated",
        small / MIB,
        allocated / MIB
    );
    // The parsed model takes a few KB per affordance (the body limit of 16 MiB bounds the
    // count); what matters here is that the work grows linearly with the TD.
    assert!(
        allocated < 200 * bytes,
        "{} MiB for {bytes} bytes",
        allocated / MIB
    );
    assert!(allocated < 15 * small, "{allocated} vs {small}: not linear");
}

/// `depth` levels of `{"type": "array", "items": ...}` around a string with a pattern.
fn nested_schema(depth: usize) -> DataSchema {
    let mut schema: DataSchema =
        serde_json::from_value(json!({"type": "string", "pattern": "^x+$"})).unwrap();
    for _ in 0..depth {
        let mut outer: DataSchema = serde_json::from_value(json!({"type": "array"})).unwrap();
        outer.items = Some(Box::new(wot_td::OneOrMany::One(schema)));
        schema = outer;
    }
    schema
}

fn nested_value(depth: usize, leaf: &str) -> Value {
    let mut value = json!(leaf);
    for _ in 0..depth {
        value = json!([value]);
    }
    value
}

#[test]
fn deeply_nested_schemas_give_a_typed_outcome() {
    // As deep as JSON text can be (below serde_json's 128 levels): compiled and checked.
    let compiled = CompiledSchema::from(nested_schema(100));
    assert!(compiled.problems().is_empty());
    assert!(compiled.accepts(&nested_value(100, "xx")));
    let errors = compiled.validate(&nested_value(100, "y"));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].path.starts_with("[0][0]"), "{}", errors[0].path);
    // Deeper than MAX_DEPTH, built in code: a violation naming the depth, not a stack overflow.
    let compiled = within(Duration::from_secs(10), || {
        CompiledSchema::from(nested_schema(wot_td::MAX_DEPTH + 50))
    });
    let errors = compiled.validate(&nested_value(wot_td::MAX_DEPTH + 50, "xx"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.contains("nested deeper"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_pattern_repeated_in_every_affordance_is_compiled_once() {
    // Validation counts a repeated pattern once; a consumer then compiles a schema per
    // affordance (as wot-events does). Without sharing, each would compile and keep its
    // own copy of `\w` (about 60 KB, and 0.5 MB of work): 1 GB for this TD.
    let text = td_with_patterns((0..2_000).map(|_| r"^\w+$".to_owned()));
    let doc = text.parse::<Document>().unwrap();
    assert!(doc.validate().is_empty());
    let thing = doc.as_thing().unwrap();
    let (compiled, allocated) = counting(|| {
        thing
            .properties()
            .map(|(_, p)| CompiledSchema::new(&p.schema))
            .collect::<Vec<_>>()
    });
    assert!(compiled.iter().all(|c| c.problems().is_empty()));
    assert!(compiled[1_999].accepts(&json!("héllo")));
    assert!(!compiled[0].accepts(&json!("a b")));
    eprintln!("repeated: {} MiB allocated", allocated / MIB);
    assert!(allocated < 64 * MIB, "{} MiB", allocated / MIB);
}

/// `Document::check` reads on past structural problems: ten thousand of them give the
/// first `MAX_STRUCTURE_PROBLEMS` and a note that the rest was not checked, in bounded
/// memory.
#[test]
fn ten_thousand_structural_problems_stop_at_the_report_limit() {
    let properties: Vec<String> = (0..10_000)
        .map(|i| format!(r#""p{i}": {{"readOnly": "no", "forms": [{{"href": "http://t/{i}"}}]}}"#))
        .collect();
    let text = format!(
        r#"{{"@context": "{CTX}", "title": "T", "securityDefinitions": {{"n": {{"scheme": "nosec"}}}},
  "security": "n", "properties": {{{}}}}}"#,
        properties.join(",\n")
    );
    let (report, bytes) = within(Duration::from_secs(120), move || {
        counting(|| Document::check(text.as_bytes()))
    });
    let structural = report
        .diagnostics
        .iter()
        .filter(|d| d.rule == "term-type")
        .count();
    assert_eq!(structural, wot_td::MAX_STRUCTURE_PROBLEMS);
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.rule == "too-many-problems")
    );
    assert!(report.diagnostics.iter().all(|d| d.position.is_some()));
    assert!(report.document.is_none());
    // Each round reads the value again up to the next problem and frees what it built;
    // about 80 MiB are allocated over all rounds for this 0.6 MB document.
    assert!(bytes < 256 * MIB, "{} MiB allocated", bytes / MIB);
}

/// A megabyte of repeated members is reported up to a limit, each with a position.
#[test]
fn a_hundred_thousand_repeated_members_are_reported_up_to_a_limit() {
    let repeats = r#""x:a": 1, "#.repeat(100_000);
    let text = format!(
        r#"{{{repeats}"@context": "{CTX}", "title": "T", "securityDefinitions": {{"n": {{"scheme": "nosec"}}}}, "security": "n"}}"#
    );
    let report = within(Duration::from_secs(60), move || {
        Document::check(text.as_bytes())
    });
    let repeated: Vec<_> = report
        .diagnostics
        .iter()
        .filter(|d| d.rule == "duplicate-identical")
        .collect();
    assert_eq!(repeated.len(), 100);
    assert!(
        repeated
            .iter()
            .all(|d| d.position.is_some() && !d.is_error())
    );
    assert!(report.is_valid());
}

/// Positions are found in the deepest document `serde_json` accepts, on a test thread's
/// small stack, and so are repeated keys at the bottom of it.
#[test]
fn the_deepest_document_gets_positions_and_repeated_keys_found() {
    let depth = 120;
    let mut text = td_with_property(r#""type": "array", "items": "#);
    text.truncate(text.len() - 3);
    for _ in 0..depth {
        text.push_str(r#"{"type": "array", "items": "#);
    }
    text.push_str(r#"{"type": "number", "minimum": 5, "maximum": 1, "x:k": 1, "x:k": 2}"#);
    for _ in 0..depth {
        text.push('}');
    }
    text.push_str("}}}");
    let report = Document::check(text.as_bytes());
    let range = report
        .diagnostics
        .iter()
        .find(|d| d.rule == "range")
        .unwrap();
    assert!(range.position.is_some(), "{range}");
    let repeated = report
        .diagnostics
        .iter()
        .find(|d| d.rule == "duplicate-key")
        .unwrap();
    assert!(repeated.path.ends_with(".x:k"), "{repeated}");
    assert!(repeated.position.is_some(), "{repeated}");
}
