//! Runs the rule-test files under `tests/rules/` (one or more per semantic) and checks that the
//! runner reports failures and malformed files with their location.

use std::path::{Path, PathBuf};

use wot_alerts::testing::run_file;

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

#[test]
fn every_rule_test_file_passes() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for semantic in [
        "issue_example",
        "keep_firing_for",
        "no_data",
        "rate",
        "changed",
        "escalate",
        "acknowledge",
        "silence",
        "repeat_interval",
        "wildcard",
    ] {
        assert!(
            names.contains(&format!("{semantic}.test.yaml")),
            "missing {semantic}.test.yaml in {names:?}"
        );
    }
    let mut total = 0;
    for file in &files {
        let report = run_file(file).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.passed(), "{report}");
        assert!(!report.tests.is_empty(), "{} has no tests", file.display());
        total += report.tests.len();
    }
    assert!(total >= 20, "only {total} tests ran");
}

#[test]
fn failing_expectations_are_reported_with_a_difference() {
    let report = run_file(dir("fixtures/failing.test.yaml")).unwrap();
    assert!(!report.passed());
    let text = report.to_string();
    assert!(text.starts_with("FAIL "), "{text}");
    assert!(text.contains("at 10s: alerts differ"), "{text}");
    assert!(text.contains("state: pending"), "{text}");
    assert!(text.contains("notifications differ"), "{text}");
    assert!(text.contains("! { at: 10s, kind: fired }"), "{text}");
    assert!(text.contains("actual: []"), "{text}");
}

#[test]
fn malformed_files_name_their_location() {
    let e = run_file(dir("fixtures/bad_values.test.yaml")).unwrap_err();
    assert_eq!(e.field(), Some("tests[1].input[1].values"));
    assert!(e.message().contains("token 3 `3x`"), "{e}");

    let e = run_file(dir("fixtures/unknown_field.test.yaml")).unwrap_err();
    assert_eq!(e.field(), Some("tests[0].inputs"));
    assert!(e.message().contains("unknown field `inputs`"), "{e}");
    assert!(e.message().contains("line 5"), "{e}");

    let started = std::time::Instant::now();
    let e = run_file(dir("fixtures/endless.test.yaml")).unwrap_err();
    assert!(e.message().contains("more than 100000 timer ticks"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));

    let e = run_file(dir("fixtures/missing.test.yaml")).unwrap_err();
    assert!(
        e.to_string().contains("missing.test.yaml: cannot read"),
        "{e}"
    );
}
