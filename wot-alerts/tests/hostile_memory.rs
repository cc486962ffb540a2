//! Hostile rule and test files under a counting allocator: each is refused with a typed error
//! that names the file and line, quickly and without allocating more than a small bound. The
//! tests share the global counters, so they run one at a time.

use std::alloc::System;
use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use wot_alerts::testing::run_file;
use wot_alerts::{Format, Limits, RuleSet};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Serializes the tests of this binary: the allocation counters are global.
static SERIAL: Mutex<()> = Mutex::new(());

/// Most bytes one hostile input may make the loader allocate in total.
const BUDGET: usize = 64 << 20;

/// Runs `work`, asserting it takes under 10 s and allocates under [`BUDGET`] bytes in total.
fn bounded<T>(what: &str, work: impl FnOnce() -> T) -> T {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let region = Region::new(GLOBAL);
    let started = Instant::now();
    let out = work();
    let elapsed = started.elapsed();
    let allocated = region.change().bytes_allocated;
    assert!(
        allocated < BUDGET,
        "{what}: allocated {allocated} bytes, more than {BUDGET}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "{what}: took {elapsed:?}"
    );
    out
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wot-alerts-hostile-memory-{}-{name}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

const RULE: &str =
    "rules:\n  - id: r1\n    thing: fridge-1\n    property: state\n    condition: { eq: open }\n";

/// A test file with one series; the `values` line is line 7.
fn test_file(values: &str) -> String {
    format!(
        "rule_files: [rules.yaml]\ninterval: 10s\ntests:\n  - name: hostile series\n    input:\n      - thing: fridge-1\n        values: {values}\n        property: state\n"
    )
}

#[test]
fn a_10_kb_string_repeated_a_million_times_is_refused_with_bounded_memory() {
    let dir = scratch("row7");
    fs::write(dir.join("rules.yaml"), RULE).unwrap();
    let file = dir.join("row7.test.yaml");
    let values = format!("'\"{}\"x1000000'", "A".repeat(10 * 1024));
    fs::write(&file, test_file(&values)).unwrap();
    let error = bounded("row 7", || run_file(&file)).unwrap_err();
    assert!(error.file().ends_with("row7.test.yaml"), "{error}");
    assert_eq!(error.line(), Some(7), "{error}");
    assert_eq!(error.field(), Some("tests[0].input[0].values"));
    assert!(error.message().contains("hostile series"), "{error}");
    assert!(
        error.message().contains("Limits::max_samples_per_test"),
        "{error}"
    );
    // The message quotes the token, not 10 KB of it.
    assert!(error.to_string().len() < 1024, "{error}");

    // Under the sample count, the byte budget refuses it.
    let file = dir.join("bytes.test.yaml");
    let values = format!("'\"{}\"x50000'", "A".repeat(10 * 1024));
    fs::write(&file, test_file(&values)).unwrap();
    let error = bounded("bytes", || run_file(&file)).unwrap_err();
    assert_eq!(error.line(), Some(7), "{error}");
    assert!(
        error
            .message()
            .contains("Limits::max_sample_bytes_per_test"),
        "{error}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn long_numeric_series_are_refused_with_bounded_memory() {
    let dir = scratch("numeric");
    fs::write(dir.join("rules.yaml"), RULE).unwrap();
    for (name, values, limit) in [
        ("count", "\"1x1000000\"", "Limits::max_samples_per_test"),
        ("ramp", "\"0+1x1000000\"", "Limits::max_samples_per_test"),
        ("gaps", "\"_x999999 _x999999\"", "Limits::max_series_len"),
        (
            "huge",
            "\"1x18446744073709551615\"",
            "Limits::max_series_len",
        ),
    ] {
        let file = dir.join(format!("{name}.test.yaml"));
        fs::write(&file, test_file(values)).unwrap();
        let error = bounded(name, || run_file(&file)).unwrap_err();
        assert!(error.message().contains(limit), "{name}: {error}");
        assert_eq!(error.line(), Some(7), "{name}: {error}");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_million_rules_or_a_50_mib_file_are_refused_with_bounded_memory() {
    let rule = "  - { id: r, thing: t, property: p, condition: { gt: 1 } }\n";
    let mut text = String::from("rules:\n");
    for i in 0..1_000_000 {
        text.push_str(&rule.replacen("id: r", &format!("id: r{i}"), 1));
    }
    // As text: over the file size budget, refused before parsing.
    let error = bounded("1M rules", || {
        RuleSet::from_str(&text, Format::Yaml, "million.yaml").unwrap_err()
    });
    assert!(
        error.message().contains("Limits::max_file_bytes"),
        "{error}"
    );

    drop(text);

    // With the size budget raised, the rule count budget stops the (streaming) JSON parser
    // early: nothing is allocated for the rules past it.
    let rule = r#"{"id": "r", "thing": "t", "property": "p", "condition": {"gt": 1}}"#;
    let mut json = String::from("{\"rules\": [\n");
    for i in 0..1_000_000 {
        if i > 0 {
            json.push_str(",\n");
        }
        json.push_str(&rule.replacen("\"r\"", &format!("\"r{i}\""), 1));
    }
    json.push_str("]}");
    let mut limits = Limits::default();
    limits.max_file_bytes = 1 << 30;
    let error = bounded("1M rules, count", || {
        RuleSet::from_str_with(&json, Format::Json, "million.json", &limits).unwrap_err()
    });
    assert!(
        error.message().contains("more than 50000 entries"),
        "{error}"
    );
    assert!(error.message().contains("Limits::max_rules"), "{error}");
    assert!(matches!(error.line(), Some(50_002..=50_003)), "{error}");
    drop(json);

    // As a 50 MiB file: refused from its size, nothing read.
    let dir = scratch("big");
    let big = dir.join("big.yaml");
    let file = fs::File::create(&big).unwrap();
    file.set_len(50 << 20).unwrap();
    let error = bounded("50 MiB", || RuleSet::from_file(&big).unwrap_err());
    assert!(error.file().ends_with("big.yaml"), "{error}");
    assert!(error.message().contains("at most"), "{error}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn deeply_nested_yaml_is_refused_with_bounded_memory() {
    let deep = format!(
        "rules:\n  - id: r1\n    labels: {}\n",
        "[".repeat(1_000_000)
    );
    let error = bounded("nesting", || {
        RuleSet::from_str(&deep, Format::Yaml, "deep.yaml").unwrap_err()
    });
    assert!(error.message().contains("nested deeper than 64"), "{error}");
    assert_eq!(error.line(), Some(3), "{error}");
    let block = format!("rules:\n{}x: 1\n", "  - ".repeat(100_000));
    let error = bounded("block nesting", || {
        RuleSet::from_str(&block, Format::Yaml, "deep.yaml").unwrap_err()
    });
    assert_eq!(error.file(), "deep.yaml");
}
