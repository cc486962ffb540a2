//! `Data` read from text gives what serde_json and `CompiledSchema::validate` give, whether it
//! takes the scanner's way (text in the common subset that fits) or the value's.

use proptest::prelude::*;
use serde_json::{Value, json};
use wot_td::{CompiledSchema, Data, DataSchema};

/// Schemas that use every check: types, ranges, `multipleOf`, string lengths, a pattern,
/// `enum` and `const` of scalars and of objects, `required`, `items` (one and per position),
/// item counts, `oneOf`.
fn schemas() -> Vec<CompiledSchema> {
    [
        json!({}),
        json!({"type": "number", "minimum": -10, "exclusiveMaximum": 50.5}),
        json!({"type": "integer", "multipleOf": 2}),
        json!({"type": "string", "minLength": 1, "maxLength": 4, "pattern": "^[a-c]+$"}),
        json!({"enum": ["a", "b", 1, 2.5, null, true]}),
        json!({"const": "b"}),
        json!({"enum": [{"a": 1}, [1, 2]]}),
        json!({"type": "boolean"}),
        json!({"type": "null"}),
        json!({
            "type": "object",
            "properties": {
                "value": {"type": "number", "minimum": -50, "maximum": 100},
                "unit": {"type": "string", "enum": ["cel", "fah"]},
                "ts": {"type": "string"},
                "ok": {"type": "boolean"},
                "list": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}
            },
            "required": ["value", "unit"]
        }),
        json!({"type": "array", "items": [{"type": "string"}, {"type": "number"}], "minItems": 2}),
        json!({"oneOf": [{"type": "string"}, {"type": "number"}]}),
        json!({"type": "object", "properties": {"a": {"oneOf": [{"type": "integer"}, {"minimum": 3}]}}}),
    ]
    .into_iter()
    .map(|s| CompiledSchema::from(serde_json::from_value::<DataSchema>(s).unwrap()))
    .collect()
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-200i64..200).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e4f64..1e4).prop_map(|f| json!((f * 100.0).round() / 100.0)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "a", "b", "cel", "fah", "abcd", "", "x\"y", "ü", "tab\t"
        ])
        .prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["value", "unit", "ts", "ok", "list", "a", "x"]),
                    inner
                ),
                0..6
            )
            .prop_map(|members| {
                Value::Object(
                    members
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

/// The text of `value` in one of several layouts, sometimes with a repeated member or cut.
fn text_of(value: &Value, layout: u8) -> String {
    match layout % 5 {
        0 => value.to_string(),
        1 => serde_json::to_string_pretty(value).unwrap(),
        2 => format!(" \t{value}\r\n"),
        3 => match value {
            Value::Object(map) if !map.is_empty() => {
                // A member repeated with another value first: serde_json keeps the last.
                let text = value.to_string();
                let (k, _) = map.iter().next().unwrap();
                format!(
                    "{{{}:\"first\",{}",
                    serde_json::to_string(k).unwrap(),
                    &text[1..]
                )
            }
            _ => value.to_string(),
        },
        _ => {
            let text = value.to_string();
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_owned()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn parse_with_gives_serde_json_and_validate_results(v in value(), layout in any::<u8>()) {
        let text = text_of(&v, layout);
        let theirs = serde_json::from_str::<Value>(&text);
        for schema in schemas() {
            match (&theirs, Data::parse_with(text.as_str(), &schema)) {
                (Ok(expected), Ok((data, errors))) => {
                    prop_assert_eq!(&errors, &schema.validate(expected), "{} against {:?}", text, schema.schema());
                    for path in [&["value"][..], &["a"], &["x"], &["list", "1"], &["0"]] {
                        let found = data.get_path(path);
                        let pointer: String = path.iter().map(|t| format!("/{t}")).collect();
                        prop_assert_eq!(found.as_deref(), expected.pointer(&pointer), "{} at {}", text, pointer);
                    }
                    prop_assert_eq!(data.value(), expected);
                    prop_assert_eq!(data.as_text(), text.as_str());
                }
                (Err(e), Err(ours)) => prop_assert_eq!(e.to_string(), ours.to_string()),
                (a, b) => prop_assert!(false, "{}: serde_json {:?}, ours {:?}", text, a, b),
            }
        }
        match (&theirs, Data::parse(text.as_str())) {
            (Ok(expected), Ok(data)) => prop_assert_eq!(data.value(), expected),
            (Err(e), Err(ours)) => prop_assert_eq!(e.to_string(), ours.to_string()),
            (a, b) => prop_assert!(false, "{}: serde_json {:?}, ours {:?}", text, a, b),
        }
    }

    #[test]
    fn get_path_gives_what_pointer_gives(
        v in value(),
        layout in 0u8..4,
        path in prop::collection::vec(
            prop::sample::select(vec!["value", "unit", "a", "x", "0", "1", "2", "01", ""]), 0..4),
    ) {
        let text = text_of(&v, layout);
        let expected: Value = serde_json::from_str(&text).unwrap();
        let pointer: String = path.iter().map(|t| format!("/{t}")).collect();
        let data = Data::parse(text.as_str()).unwrap();
        let found = data.get_path(&path);
        prop_assert_eq!(found.as_deref(), expected.pointer(&pointer));
        let built = Data::from(expected.clone());
        let found = built.get_path(&path);
        prop_assert_eq!(found.as_deref(), expected.pointer(&pointer));
    }
}

#[test]
fn the_usual_notification_fits_without_building_a_value() {
    let schema = &schemas()[9];
    let text = r#"{"value":21.37,"unit":"cel","ts":"2026-11-27T01:00:00.000Z","ok":true}"#;
    let (data, errors) = Data::parse_with(text, schema).unwrap();
    assert!(errors.is_empty());
    assert_eq!(data.get_path(&["value"]).as_deref(), Some(&json!(21.37)));
    let (_, errors) = Data::parse_with(r#"{"value":210,"unit":"kel"}"#, schema).unwrap();
    let paths: Vec<_> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["value", "unit"]);
}
