//! Validation against the official TD 1.1 JSON Schema (feature `json-schema`).

use std::sync::OnceLock;

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Rule};

/// The official TD 1.1 JSON Schema (draft-07, version "1.1-12-March-2025"), as published
/// by the W3C under the W3C Software and Document License (see `schema/LICENSE-W3C.md`
/// in this crate).
pub const TD_JSON_SCHEMA: &str = include_str!("../schema/td-json-schema-validation.json");

fn validator() -> Option<&'static jsonschema::Validator> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    VALIDATOR
        .get_or_init(|| {
            let schema: Value = serde_json::from_str(TD_JSON_SCHEMA).ok()?;
            jsonschema::draft7::new(&schema).ok()
        })
        .as_ref()
}

/// Checks a TD (as JSON) against the official TD 1.1 JSON Schema; every violation is an
/// error diagnostic with rule `json-schema` and the path of the offending value.
pub fn validate_td_json(td: &Value) -> Vec<Diagnostic> {
    let Some(validator) = validator() else {
        return vec![Diagnostic::error(
            Rule::JsonSchema,
            "",
            "the embedded TD JSON Schema could not be compiled",
        )];
    };
    // The validator recurses once per level; a deeply nested TD (up to the 128 levels a
    // parsed document may have) would overflow a small thread stack (tokio's workers and
    // test threads have 2 MiB), so deep documents are checked on a thread of their own.
    if crate::parse::nesting_depth(td) > SHALLOW {
        let deep = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("wot-td json-schema".into())
                .stack_size(DEEP_STACK)
                .spawn_scoped(scope, || diagnostics(validator, td))
                .ok()
                .and_then(|worker| worker.join().ok())
        });
        return deep.unwrap_or_else(|| {
            vec![Diagnostic::error(
                Rule::JsonSchema,
                "",
                "the document is too deeply nested to check against the JSON Schema here",
            )]
        });
    }
    diagnostics(validator, td)
}

/// Documents nested deeper than this are checked on a thread with [`DEEP_STACK`].
const SHALLOW: usize = 32;

/// Enough for 128 levels in a debug build, with room to spare.
const DEEP_STACK: usize = 64 << 20;

fn diagnostics(validator: &jsonschema::Validator, td: &Value) -> Vec<Diagnostic> {
    validator
        .iter_errors(td)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            Diagnostic::error(
                Rule::JsonSchema,
                pointer_to_path(&pointer),
                format!("JSON Schema: {e}"),
            )
        })
        .collect()
}

/// `/properties/temp/forms/0` → `properties.temp.forms[0]`.
fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for raw in pointer.split('/').skip(1) {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            crate::parse::push_key(&mut out, &seg);
        }
    }
    out
}
