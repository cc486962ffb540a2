//! The event-data JSON reader of wot-events (a direct scanner for common notification data,
//! serde_json for the rest) gives exactly what `serde_json::from_str::<Value>` gives: the same
//! value, with the same number kinds (`1.0` is not `1`, `-0` is `-0.0`) and member order, or
//! an error where serde_json has one.
//!
//! Input: one or more texts separated by `0xFF` bytes (never part of UTF-8), read in order
//! through one [`JsonSeries`], as one property's notifications are, so that the remembered
//! object shape of one text is tried on the next. Parts that are not UTF-8 are skipped.
//!
//! `cargo fuzz run --features json json_value`
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wot_events::JsonSeries;

fuzz_target!(|data: &[u8]| {
    let mut series = JsonSeries::default();
    for part in data.split(|&b| b == 0xFF) {
        let Ok(text) = std::str::from_utf8(part) else {
            continue;
        };
        let ours = series.parse(text);
        let theirs = serde_json::from_str::<Value>(text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{text:?}");
                // Equal values can differ in kind (`1` and `1.0`) and order; the text forms do not.
                assert_eq!(a.to_string(), b.to_string(), "{text:?}");
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text:?}"),
            _ => panic!("{text:?}: ours {ours:?}, serde_json {theirs:?}"),
        }
    }
});
