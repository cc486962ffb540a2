//! Rule-file parsing (YAML, TOML, JSON) never panics and what loads is valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wot_alerts::{Format, RuleSet};

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
    match RuleSet::from_str(text, format, "fuzz.rules") {
        Ok(set) => {
            for rule in set.rules() {
                assert!(rule.validate().is_ok(), "a loaded rule does not validate");
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
