//! Arbitrary (data schema, value) pairs through `CompiledSchema`: compiling within small
//! limits and checking never panics, finishes within the run's `-timeout`, and gives the
//! same answer twice and through `accepts`.
//!
//! Input: the schema's JSON text, a newline, the value's JSON text.
//! `cargo fuzz run validate_value -- -timeout=3`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wot_td::serde_json::{self, Value};
use wot_td::{CompiledSchema, DataSchema, PatternErrorKind, ValidationLimits};

/// Small limits, so that a slow input shows up as a libFuzzer timeout, not a long run.
const LIMITS: ValidationLimits = ValidationLimits {
    pattern_bytes: 1 << 10,
    regex_size: 64 << 10,
    regex_cache: 256 << 10,
    regex_budget: 1 << 20,
    check_steps: 10_000,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (schema, value) = text.split_once('\n').unwrap_or((text, "null"));
    let Ok(schema) = serde_json::from_str::<DataSchema>(schema) else {
        return;
    };
    let Ok(value) = serde_json::from_str::<Value>(value) else {
        return;
    };
    let compiled = CompiledSchema::with_limits(schema, &LIMITS);
    for problem in compiled.problems() {
        assert!(problem.path.ends_with("pattern"), "{problem}");
        if let PatternErrorKind::TooLong { len, limit } = problem.kind {
            assert!(len > limit);
        }
    }
    let errors = compiled.validate(&value);
    assert_eq!(errors, compiled.validate(&value), "not deterministic");
    assert_eq!(errors.is_empty(), compiled.accepts(&value));
    for e in &errors {
        assert!(!e.message.is_empty());
    }
});
