//! Property tests: arbitrary templates, schemas and values never make the crate panic,
//! and the results keep simple promises.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use wot_td::{CompiledSchema, DataSchema, Document, expand_uri_template, uri_template_variables};

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arbitrary data schemas made of the terms the value checker reads.
fn schema_json() -> impl Strategy<Value = Value> {
    let terms = |inner: BoxedStrategy<Value>| {
        (
            prop::option::of(prop::sample::select(vec![
                "boolean", "integer", "number", "string", "object", "array", "null",
            ])),
            prop::option::of(prop::collection::vec(json_value(), 0..4)),
            prop::option::of(json_value()),
            prop::option::of(-1e6f64..1e6),
            prop::option::of(-1e6f64..1e6),
            prop::option::of(prop_oneof![Just(0.0), 1e-9f64..100.0]),
            prop::option::of(0u64..20),
            prop::option::of("[a-z.*+?()\\[\\]^$|{}0-9\\\\]{0,8}"),
            prop::option::of(prop_oneof![
                inner.clone(),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            ]),
            prop::option::of(prop::collection::btree_map(
                "[a-z]{1,2}",
                inner.clone(),
                0..3,
            )),
            prop::option::of(prop::collection::vec(inner, 0..3)),
        )
            .prop_map(
                |(t, en, c, min, max, mult, len, pat, items, props, one_of)| {
                    let mut m = Map::new();
                    let mut put = |k: &str, v: Option<Value>| {
                        if let Some(v) = v {
                            m.insert(k.to_owned(), v);
                        }
                    };
                    put("type", t.map(Value::from));
                    put("enum", en.map(Value::from));
                    put("const", c);
                    put("minimum", min.map(Value::from));
                    put("exclusiveMaximum", max.map(Value::from));
                    put("multipleOf", mult.map(Value::from));
                    put("maxLength", len.map(Value::from));
                    put("minItems", len.map(Value::from));
                    put("pattern", pat.map(Value::from));
                    put("items", items);
                    put(
                        "properties",
                        props.map(|p| Value::Object(p.into_iter().collect())),
                    );
                    put("required", Some(json!(["a", "b"])));
                    put("oneOf", one_of.map(Value::from));
                    Value::Object(m)
                },
            )
    };
    terms(Just(json!({})).boxed()).prop_recursive(3, 30, 3, move |inner| terms(inner.boxed()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn uri_templates_never_panic(template in "[a-z/{}?&#+.;*:,=0-9%]{0,24}", vars in json_value()) {
        let vars = match vars {
            Value::Object(m) => m,
            other => Map::from_iter([("a".to_owned(), other)]),
        };
        if let Ok(expanded) = expand_uri_template(&template, &vars) {
            // A template that parses has its variables listed, and its output has no braces.
            prop_assert!(uri_template_variables(&template).is_ok());
            prop_assert!(!expanded.contains(['{', '}']), "{expanded}");
        }
    }

    #[test]
    fn value_checks_never_panic_and_agree_with_accepts(schema in schema_json(), value in json_value()) {
        let schema: DataSchema = serde_json::from_value(schema).unwrap();
        let errors = schema.validate_value(&value);
        prop_assert_eq!(errors.is_empty(), schema.accepts(&value));
        // A compiled schema finds exactly the same violations.
        let compiled = CompiledSchema::new(&schema);
        prop_assert_eq!(&compiled.validate(&value), &errors);
        // Every path points into the value.
        for e in &errors {
            prop_assert!(e.path.is_empty() || e.path.starts_with('[') || e.path.chars().next().is_some_and(char::is_alphanumeric), "{}", e.path);
        }
    }

    #[test]
    fn tds_with_arbitrary_schemas_validate_without_panic(schema in schema_json()) {
        let mut property = schema;
        property["forms"] = json!([{"href": "http://t/p{?x}"}]);
        let doc = json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "T",
            "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
            "properties": {"p": property}
        });
        let doc = Document::from_value(doc).unwrap();
        let _ = doc.validate();
        let written = doc.to_value().unwrap();
        prop_assert_eq!(Document::from_value(written).unwrap(), doc);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = Document::from_slice(&bytes);
    }
}
