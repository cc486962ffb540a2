//! Hostile saved engine states under a counting allocator: parsed or refused with a typed
//! error, allocating in proportion to their size. One test in its own binary, so that no other
//! test's allocations are counted.

use std::alloc::System;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use wot_alerts::{EngineState, StateError};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A saved engine state of at most 4 MiB: hostile shapes are parsed, or refused, allocating at
/// most ten times their size; past the limit nothing is parsed at all.
#[test]
fn hostile_saved_states_allocate_in_proportion_to_their_size() {
    const LIMIT: usize = 4 << 20;
    let head = r#"{"version":1,"instance":0,"now":0,"next_alert_id":1,"next_notification_id":1,"next_silence_id":1,"silences":[],"series":["#;
    let series = |fill: &str| {
        format!(
            r#"{{"rule":"r","thing":"t","property":"p","last_update":0,"previous_update":0{fill}}}"#
        )
    };
    let fill_to = |prefix: String, unit: &str, suffix: &str| {
        let mut s = prefix;
        while s.len() + unit.len() + suffix.len() < LIMIT {
            s.push_str(unit);
        }
        s.push_str(suffix);
        s
    };
    let many_series = {
        let one = series("");
        let mut s = head.to_owned();
        s.push_str(&one);
        while s.len() + one.len() + 3 < LIMIT {
            s.push(',');
            s.push_str(&one);
        }
        s.push_str("]}");
        s
    };
    let samples = {
        let start = format!("{head}{}", series(r#","samples":[[0,0]"#));
        let start = start.trim_end_matches('}').to_owned();
        fill_to(start, ",[0,0]", "]}]}")
    };
    let long_value = {
        let start = format!("{head}{}", series(r#","value":""#));
        let start = start.trim_end_matches("\"}").to_owned();
        let start = format!("{start}\"");
        fill_to(start, "x", "\"}]}")
    };
    let deep = fill_to(
        format!("{head}{}", series(r#","value":"#))
            .trim_end_matches('}')
            .to_owned(),
        "[",
        "",
    );
    let unclosed = fill_to(format!("{head}{}", series("")), ",", "");
    for (what, input, parses) in [
        ("many series", many_series, true),
        ("many samples", samples, true),
        ("a long value", long_value, true),
        ("deep nesting", deep, false),
        ("unclosed list", unclosed, false),
    ] {
        assert!(input.len() <= LIMIT, "{what}: {} bytes", input.len());
        let region = Region::new(GLOBAL);
        let started = Instant::now();
        let result = EngineState::from_json(input.as_bytes(), LIMIT as u64);
        let elapsed = started.elapsed();
        let allocated = region.change().bytes_allocated;
        assert_eq!(result.is_ok(), parses, "{what}: {result:?}");
        if let Err(e) = &result {
            assert!(matches!(e, StateError::Malformed { .. }), "{what}: {e:?}");
        }
        assert!(
            allocated < 10 * input.len(),
            "{what}: allocated {allocated} bytes for {} bytes",
            input.len()
        );
        assert!(
            elapsed < Duration::from_secs(10),
            "{what}: took {elapsed:?}"
        );
    }

    // Past the limit: refused before parsing.
    let huge = vec![b'['; 64 << 20];
    let region = Region::new(GLOBAL);
    let err = EngineState::from_json(&huge, LIMIT as u64).unwrap_err();
    assert!(matches!(err, StateError::TooLarge { .. }), "{err:?}");
    assert!(region.change().bytes_allocated < 1024);
}
