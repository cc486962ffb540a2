//! Rule-test files (the `alert-test` format) through the loader and runner: arbitrary bytes
//! never panic, and with small budgets they finish quickly with a report or a located error.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wot_alerts::testing::run_str;
use wot_alerts::{Format, Limits};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let format = match selector % 3 {
        0 => Format::Yaml,
        1 => Format::Toml,
        _ => Format::Json,
    };
    // Rule files named by the input are looked up among the crate's own test rules.
    let rule_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wot-alerts/tests/rules");
    let mut limits = Limits::default();
    limits.max_samples_per_test = 2_000;
    limits.max_samples_per_file = 10_000;
    limits.max_sample_bytes_per_test = 1 << 20;
    limits.max_ticks_per_test = 2_000;
    limits.max_rule_starts_per_file = 2_000;
    limits.max_tests = 100;
    match run_str(text, format, "fuzz.test.yaml", &rule_dir, &limits) {
        Ok(report) => {
            let _ = report.to_string();
        }
        Err(error) => {
            // The test file, or a rule file it names.
            assert!(!error.file().is_empty());
            let _ = error.to_string();
        }
    }
});
