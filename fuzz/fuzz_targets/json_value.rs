//! `wot_td::Data` read from text gives what serde_json and `CompiledSchema::validate` give:
//! `Data::parse` the same value as `serde_json::from_str::<Value>` (same number kinds, member
//! order, the last of repeated names) or the same error; `Data::parse_with` the same
//! violations as checking that value against a schema, whether the text was checked by the
//! scanner or the value was built; `Data::get_path` what `Value::pointer` finds.
//!
//! Input: texts separated by `0xFF` bytes (never part of UTF-8); parts that are not UTF-8 are
//! skipped.
//!
//! `cargo fuzz run --features json json_value`
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use wot_events::Data;
use wot_events::wot_td::{CompiledSchema, DataSchema};

/// An object schema with ranges, an enum, a pattern, required members and an array.
fn schema() -> &'static CompiledSchema {
    static SCHEMA: OnceLock<CompiledSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let s: DataSchema = serde_json::from_value(json!({
            "type": "object",
            "properties": {
                "value": {"type": "number", "minimum": -50, "maximum": 100},
                "unit": {"type": "string", "enum": ["cel", "fah"]},
                "ts": {"type": "string", "pattern": "^[0-9T:.Z-]+$"},
                "n": {"type": "integer"},
                "list": {"type": "array", "items": {"type": "integer"}, "maxItems": 3}
            },
            "required": ["value", "unit"]
        }))
        .expect("a schema");
        CompiledSchema::from(s)
    })
}

fuzz_target!(|data: &[u8]| {
    for part in data.split(|&b| b == 0xFF) {
        let Ok(text) = std::str::from_utf8(part) else {
            continue;
        };
        let theirs = serde_json::from_str::<Value>(text);
        match (Data::parse(text), &theirs) {
            (Ok(ours), Ok(expected)) => {
                assert_eq!(ours.value(), expected, "{text:?}");
                // Equal values can differ in kind (`1` and `1.0`) and order; text forms do not.
                assert_eq!(ours.value().to_string(), expected.to_string(), "{text:?}");
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text:?}"),
            (ours, _) => panic!("{text:?}: ours {ours:?}, serde_json {theirs:?}"),
        }
        match (Data::parse_with(text, schema()), &theirs) {
            (Ok((ours, errors)), Ok(expected)) => {
                assert_eq!(errors, schema().validate(expected), "{text:?}");
                for path in [&["value"][..], &["unit"], &["list", "1"], &[]] {
                    let pointer: String = path.iter().map(|t| format!("/{t}")).collect();
                    let found = ours.get_path(path);
                    assert_eq!(found.as_deref(), expected.pointer(&pointer), "{text:?} {pointer}");
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text:?}"),
            (ours, _) => panic!("{text:?}: ours {ours:?}, serde_json {theirs:?}"),
        }
    }
});
