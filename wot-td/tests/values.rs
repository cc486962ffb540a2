//! Checking JSON values against data schemas, one keyword at a time.

use serde_json::{Value, json};
use wot_td::DataSchema;

fn schema(v: Value) -> DataSchema {
    serde_json::from_value(v).unwrap()
}

/// The (path, message) of each violation.
fn errors(s: &Value, v: Value) -> Vec<(String, String)> {
    schema(s.clone())
        .validate_value(&v)
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

#[track_caller]
fn ok(s: Value, v: Value) {
    assert_eq!(errors(&s, v), Vec::<(String, String)>::new());
}

#[track_caller]
fn bad(s: Value, v: Value, path: &str, needle: &str) {
    let errs = errors(&s, v);
    assert!(
        errs.iter().any(|(p, m)| p == path && m.contains(needle)),
        "expected `{needle}` at `{path}`, got {errs:?}"
    );
}

#[test]
fn types() {
    ok(json!({"type": "integer"}), json!(3));
    ok(json!({"type": "integer"}), json!(3.0));
    bad(
        json!({"type": "integer"}),
        json!(3.5),
        "",
        "expected integer",
    );
    ok(json!({"type": "number"}), json!(-0.5));
    bad(json!({"type": "string"}), json!(1), "", "found an integer");
    ok(json!({"type": "null"}), json!(null));
    bad(
        json!({"type": "boolean"}),
        json!("true"),
        "",
        "expected boolean",
    );
    ok(json!({}), json!({"anything": [1]}));
}

#[test]
fn enum_and_const() {
    ok(json!({"enum": ["on", "off"]}), json!("on"));
    bad(
        json!({"enum": ["on", "off"]}),
        json!("dim"),
        "",
        "is not one of",
    );
    ok(json!({"enum": [1]}), json!(1.0));
    ok(json!({"const": {"a": [1, 2]}}), json!({"a": [1, 2]}));
    bad(json!({"const": 5}), json!(6), "", "constant 5");
}

#[test]
fn numeric_bounds_and_multiples() {
    let s = json!({"minimum": 0, "maximum": 10});
    ok(s.clone(), json!(0));
    ok(s.clone(), json!(10));
    bad(s.clone(), json!(-1), "", "less than the minimum");
    bad(s, json!(10.5), "", "greater than the maximum");
    let s = json!({"exclusiveMinimum": 0, "exclusiveMaximum": 10});
    bad(s.clone(), json!(0), "", "exclusive minimum");
    bad(s.clone(), json!(10), "", "exclusive maximum");
    ok(s, json!(9.99));
    ok(json!({"multipleOf": 0.1}), json!(0.3));
    ok(json!({"multipleOf": 5}), json!(-15));
    bad(
        json!({"multipleOf": 5}),
        json!(12),
        "",
        "not a multiple of 5",
    );
    ok(json!({"type": "integer", "minimum": 0}), json!(u64::MAX));
}

#[test]
fn strings_count_code_points_and_match_patterns() {
    let s = json!({"minLength": 2, "maxLength": 3});
    ok(s.clone(), json!("äö"));
    ok(s.clone(), json!("😀😀😀"));
    bad(s.clone(), json!("a"), "", "fewer than minLength 2");
    bad(s, json!("abcd"), "", "more than maxLength 3");
    ok(json!({"pattern": "^[A-Z]{2}-\\d+$"}), json!("AB-12"));
    bad(
        json!({"pattern": "^[A-Z]{2}-\\d+$"}),
        json!("ab-12"),
        "",
        "does not match",
    );
    bad(
        json!({"pattern": "a{2000}{2000}"}),
        json!("a"),
        "",
        "cannot be used",
    );
}

#[test]
fn arrays() {
    let s = json!({"type": "array", "items": {"type": "number", "maximum": 100}, "minItems": 1, "maxItems": 3});
    ok(s.clone(), json!([1, 2]));
    bad(s.clone(), json!([]), "", "fewer than minItems 1");
    bad(s.clone(), json!([1, 2, 3, 4]), "", "more than maxItems 3");
    bad(s, json!([1, 200]), "[1]", "greater than the maximum");
    let tuple = json!({"type": "array", "items": [{"type": "string"}, {"type": "number"}]});
    ok(tuple.clone(), json!(["a", 1, true]));
    bad(tuple, json!([1, 1]), "[0]", "expected string");
}

#[test]
fn objects() {
    let s = json!({"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"},
        "readings": {"type": "array", "items": {"type": "object", "properties": {"celsius": {"type": "number", "minimum": -273.15}}}}
    }});
    ok(s.clone(), json!({"id": "x", "extra": 1}));
    bad(s.clone(), json!({}), "", "required member `id`");
    bad(s.clone(), json!({"id": 1}), "id", "expected string");
    bad(
        s,
        json!({"id": "x", "readings": [{"celsius": 1}, {"celsius": -300}]}),
        "readings[1].celsius",
        "less than the minimum",
    );
    bad(
        json!({"type": "object", "properties": {"a b": {"type": "string"}}}),
        json!({"a b": 1}),
        "[\"a b\"]",
        "expected string",
    );
}

#[test]
fn one_of_needs_exactly_one_match() {
    let s = json!({"oneOf": [{"type": "string"}, {"type": "number", "minimum": 0}, {"type": "integer"}]});
    ok(s.clone(), json!("x"));
    ok(s.clone(), json!(0.5));
    bad(s.clone(), json!(2), "", "it matches 2");
    bad(s, json!(-0.5), "", "it matches 0");
    assert!(schema(json!({"oneOf": [{"type": "string"}]})).accepts(&json!("x")));
}

#[test]
fn deep_values_stop_at_the_depth_limit() {
    let mut s = DataSchema::of_type(wot_td::DataType::Number);
    let mut v = json!(1);
    for _ in 0..(wot_td::MAX_DEPTH + 10) {
        s = DataSchema {
            data_type: Some(wot_td::DataType::Array),
            items: Some(Box::new(wot_td::OneOrMany::One(s))),
            ..DataSchema::default()
        };
        v = json!([v]);
    }
    let errs = s.validate_value(&v);
    assert!(
        errs.iter().any(|e| e.message.contains("deeper")),
        "{errs:?}"
    );
}

/// One `pattern` serves every item of a long array (it is compiled once per check), and
/// a failing item is still reported at its own index.
#[test]
fn a_pattern_checks_every_item_of_a_long_array() {
    let s =
        schema(json!({"type": "array", "items": {"type": "string", "pattern": "^[a-f0-9]{8}$"}}));
    let mut items: Vec<Value> = (0..20_000).map(|i| json!(format!("{i:08x}"))).collect();
    assert!(s.accepts(&Value::Array(items.clone())));
    items.push(json!("not hex"));
    let errs = s.validate_value(&Value::Array(items));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path, "[20000]");
    // A pattern the regex engine cannot compile is reported for each string it meets.
    let s = schema(json!({"type": "array", "items": {"pattern": "(?=x)"}}));
    let errs = s.validate_value(&json!(["a", "b"]));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[1].message.contains("cannot be used"), "{errs:?}");
}

#[test]
fn a_compiled_schema_compiles_once_and_names_unusable_patterns() {
    use wot_td::{CompiledSchema, PatternErrorKind, ValidationLimits};
    let s = schema(json!({
        "type": "object",
        "properties": {
            "serial": {"type": "string", "pattern": "^[A-Z]{2}-\\d+$"},
            "tags": {"type": "array", "items": [{"pattern": "(?=x)"}, {"pattern": "^t"}]},
            "either": {"oneOf": [{"type": "string", "pattern": "^[a-z]+$"}, {"type": "integer"}]}
        }
    }));
    let compiled = CompiledSchema::new(&s);
    let problems = compiled.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].path, "properties.tags.items[0].pattern");
    assert!(matches!(problems[0].kind, PatternErrorKind::Invalid(_)));
    for value in [
        json!({"serial": "AB-1", "tags": ["x", "t"], "either": "abc"}),
        json!({"serial": "ab", "tags": ["y", "u"], "either": "ABC"}),
        json!({"serial": 5, "either": 7}),
    ] {
        assert_eq!(
            compiled.validate(&value),
            s.validate_value(&value),
            "{value}"
        );
        assert_eq!(compiled.accepts(&value), s.accepts(&value));
    }
    assert_eq!(compiled.schema(), &s);

    // With no budget, every pattern is reported, and none is compiled.
    let tight = ValidationLimits {
        regex_budget: 1,
        ..ValidationLimits::default()
    };
    let compiled = CompiledSchema::with_limits(s.clone(), &tight);
    let over: Vec<&str> = compiled
        .problems()
        .iter()
        .filter(|p| matches!(p.kind, PatternErrorKind::OverBudget { budget: 1 }))
        .map(|p| p.path.as_str())
        .collect();
    assert_eq!(
        over,
        [
            "properties.serial.pattern",
            "properties.tags.items[0].pattern",
            "properties.tags.items[1].pattern",
            "properties.either.oneOf[0].pattern"
        ]
    );
    let errors = compiled.validate(&json!({"serial": "AB-1"}));
    assert!(errors[0].message.contains("compile budget"), "{errors:?}");
}
