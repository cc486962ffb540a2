//! Hostile rule and test files beyond what `rule_loading.rs` covers (unknown fields, wrong
//! types, huge numbers and durations, long summaries, pathological and oversized regexes):
//! YAML alias bombs, deep TOML nesting, files that are not UTF-8 or too large, and test files
//! whose series or intervals would explode. Each gives a clear error or a bounded result.

use std::fs;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wot_alerts::testing::run_file;
use wot_alerts::{Format, RuleSet};

/// Runs `work` on its own thread and fails if it takes longer than `limit`.
fn within<T: Send + 'static>(limit: Duration, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(work());
    });
    result
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("wot-alerts-hostile-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

const RULE: &str = "rules:\n  - id: r1\n    thing: fridge-1\n    property: temperature\n    condition: { gt: 8 }\n";

#[test]
fn a_yaml_alias_bomb_is_rejected_quickly() {
    // Nine levels of ten aliases each: a billion strings if anything expanded them.
    let mut text = String::from("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10 {
        let prev = level - 1;
        let aliases = vec![format!("*a{prev}"); 10].join(", ");
        text.push_str(&format!("x{level}: &a{level} [{aliases}]\n"));
    }
    text.push_str(RULE);
    let at_top = text.clone();
    let error = within(Duration::from_secs(10), move || {
        RuleSet::from_str(&at_top, Format::Yaml, "bomb.yaml").unwrap_err()
    });
    assert_eq!(error.file(), "bomb.yaml");

    // The same bomb where a rule field expects a map of strings.
    let mut inside = String::from(
        "rules:\n  - id: r1\n    thing: fridge-1\n    property: temperature\n    condition: { gt: 8 }\n    labels: { team: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol] }\n",
    );
    for level in 1..10 {
        let prev = level - 1;
        let aliases = vec![format!("*a{prev}"); 10].join(", ");
        inside.push_str(&format!(
            "  - id: r{}\n    thing: t\n    property: p\n    condition: {{ gt: 1 }}\n    labels: {{ x: &a{level} [{aliases}] }}\n",
            level + 1
        ));
    }
    let error = within(Duration::from_secs(10), move || {
        RuleSet::from_str(&inside, Format::Yaml, "bomb.yaml").unwrap_err()
    });
    assert_eq!(error.rule(), None, "{error}");
    assert!(error.to_string().contains("bomb.yaml"), "{error}");
}

#[test]
fn deep_toml_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [1_000, 100_000] {
        let text = format!("[[rules]]\nid = \"r1\"\nlabels = {}", "[".repeat(depth));
        let result = within(Duration::from_secs(10), move || {
            RuleSet::from_str(&text, Format::Toml, "deep.toml").map(|_| ())
        });
        assert!(result.is_err());
        let inline = format!("rules = {}", "{ a = ".repeat(depth));
        let result = within(Duration::from_secs(10), move || {
            RuleSet::from_str(&inline, Format::Toml, "deep.toml").map(|_| ())
        });
        assert!(result.is_err());
    }
}

#[test]
fn rule_files_that_are_not_utf8_or_too_large_name_the_file() {
    let dir = scratch("files");
    let binary = dir.join("binary.yaml");
    let mut bytes = RULE.as_bytes().to_vec();
    bytes.extend_from_slice(b"    summary: \"\xFF\xFE\"\n");
    fs::write(&binary, bytes).unwrap();
    let error = RuleSet::from_file(&binary).unwrap_err();
    assert!(error.file().ends_with("binary.yaml"), "{error}");

    let huge = dir.join("huge.yaml");
    let mut text = RULE.to_owned();
    text.push_str(&format!("# {}\n", "x".repeat(17 * 1024 * 1024)));
    fs::write(&huge, text).unwrap();
    let error = RuleSet::from_file(&huge).unwrap_err();
    assert!(error.file().ends_with("huge.yaml"), "{error}");
    assert!(error.message().contains("at most"), "{error}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn test_files_with_exploding_series_or_intervals_are_refused() {
    let dir = scratch("series");
    fs::write(dir.join("rules.yaml"), RULE).unwrap();
    let cases = [
        // Each count is allowed alone; together they exceed the limit on slots.
        ("sum", "10s", "1x900000 2x900000", true),
        ("one", "10s", "1x99999999999999999999", true),
        ("interval", "99999999999999999999s", "1 2 3", true),
        // Times far in the future: refused, or run to the end in bounded time.
        ("far", "99years", "1x1000", false),
    ];
    for (name, interval, values, must_fail) in cases {
        let file = dir.join(format!("{name}.test.yaml"));
        fs::write(
            &file,
            format!(
                "rule_files: [rules.yaml]\ninterval: {interval}\ntests:\n  - name: t\n    input:\n      - {{ thing: fridge-1, property: temperature, values: \"{values}\" }}\n"
            ),
        )
        .unwrap();
        let outcome = within(Duration::from_secs(20), move || {
            run_file(&file).map(|r| r.passed())
        });
        match outcome {
            Err(error) => assert!(error.file().contains(name), "{name}: {error}"),
            Ok(_) => assert!(!must_fail, "{name}: an exploding series was accepted"),
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn ten_thousand_rules_load_in_bounded_time() {
    let mut text = String::from("rules:\n");
    for i in 0..10_000 {
        text.push_str(&format!(
            "  - id: r{i}\n    thing: t{i}\n    property: p\n    condition: {{ matches: \"^(a|aa)+$\" }}\n"
        ));
    }
    let set = within(Duration::from_secs(30), move || {
        RuleSet::from_str(&text, Format::Yaml, "many.yaml").unwrap()
    });
    assert_eq!(set.rules().len(), 10_000);
}

#[test]
fn control_characters_in_names_and_labels_are_refused() {
    for (field, rule) in [
        (
            "id",
            "{ id: \"r\\e[2J\", thing: t, property: p, condition: { gt: 1 } }",
        ),
        (
            "thing",
            "{ id: r, thing: \"t\\r\", property: p, condition: { gt: 1 } }",
        ),
        (
            "property",
            "{ id: r, thing: t, property: \"p\\u009b\", condition: { gt: 1 } }",
        ),
        (
            "labels",
            "{ id: r, thing: t, property: p, condition: { gt: 1 }, labels: { team: \"a\\a\" } }",
        ),
        (
            "summary",
            "{ id: r, thing: t, property: p, condition: { gt: 1 }, summary: \"x\\e]0;owned\\a\" }",
        ),
    ] {
        let text = format!("rules:\n  - {rule}\n");
        let error = RuleSet::from_str(&text, Format::Yaml, "ctl.yaml").unwrap_err();
        assert_eq!(
            error.field(),
            Some(format!("rules[0].{field}").as_str()),
            "{error}"
        );
        assert!(error.message().contains("control character"), "{error}");
        assert_eq!(error.line(), Some(2), "{error}");
    }
    // Tab and newline stay allowed in summaries.
    let ok = "rules:\n  - { id: r, thing: t, property: p, condition: { gt: 1 }, summary: \"a\\tb\\nc\" }\n";
    assert!(RuleSet::from_str(ok, Format::Yaml, "ok.yaml").is_ok());
}

#[test]
fn test_reports_escape_control_characters_in_names() {
    let dir = scratch("ctl-report");
    fs::write(dir.join("rules.yaml"), RULE).unwrap();
    let file = dir.join("ctl.test.yaml");
    fs::write(
        &file,
        "rule_files: [rules.yaml]\ntests:\n  - name: \"evil \\e[31mred\\e]0;title\\a\\u009b\"\n    expect: [{ at: 0s, alerts: [{ rule: nope }] }]\n",
    )
    .unwrap();
    let report = run_file(&file).unwrap();
    let text = report.to_string();
    assert!(text.contains("FAIL"), "{text}");
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains("evil \\u{1b}[31mred"), "{text}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn durations_near_the_end_of_time_do_not_panic() {
    use std::time::SystemTime;
    use wot_alerts::{Engine, PropertyUpdate};
    let text = "rules:\n  - { id: a, thing: t, property: p, condition: { gt: 1 }, for: 99years, repeat_interval: 99years }\n  - { id: b, thing: t, property: p, condition: { no_data: 99years } }\n  - { id: c, thing: t, property: p, condition: { rate: { gt: 1, per: 99years } }, keep_firing_for: 99years }\n";
    let rules = RuleSet::from_str(text, Format::Yaml, "far.yaml").unwrap();
    assert!(
        RuleSet::from_str(
            "rules: [{ id: a, thing: t, property: p, condition: { gt: 1 }, for: 101years }]",
            Format::Yaml,
            "far.yaml"
        )
        .unwrap_err()
        .message()
        .contains("100 years")
    );
    // The engine's clock at the largest representable times: every deadline overflows.
    let mut end = SystemTime::UNIX_EPOCH;
    for step in [1u64 << 62, 1 << 60, 1 << 50, 1 << 40, 1 << 30, 1 << 20, 1] {
        while let Some(t) = end.checked_add(Duration::from_secs(step)) {
            end = t;
        }
    }
    for start in [SystemTime::UNIX_EPOCH, end - Duration::from_secs(3600), end] {
        let mut engine = Engine::new();
        for rule in rules.rules() {
            engine.add_rule(rule.clone(), start).unwrap();
        }
        for (i, v) in [5, 0, 9].into_iter().enumerate() {
            let at = start
                .checked_add(Duration::from_secs(i as u64))
                .unwrap_or(end);
            let _ = engine.update(at, &PropertyUpdate::new("t", "p", serde_json::json!(v)));
        }
        let _ = engine.tick(end);
        let _ = engine.next_deadline();
    }
}

#[test]
fn errors_in_a_named_rule_file_name_that_file() {
    // Found by the alert_test_parse fuzz target: a test file given as text whose rule file is
    // missing or broken reports the rule file, not the test file.
    use wot_alerts::Limits;
    use wot_alerts::testing::run_str;
    let dir = scratch("named");
    fs::write(dir.join("broken.yaml"), "rules: [{ id: r }]\n").unwrap();
    let limits = Limits::default();
    for (rule_file, expect) in [
        ("seman#ics.yaml", "seman#ics.yaml"),
        ("broken.yaml", "broken.yaml"),
    ] {
        let text = format!(
            "rule_files: [\"{rule_file}\"]\ntests:\n  - name: t\n    input: [{{ thing: a, property: p, values: \"1\" }}]\n"
        );
        let error = run_str(&text, Format::Yaml, "inline.test.yaml", &dir, &limits).unwrap_err();
        assert!(error.file().ends_with(expect), "{error}");
    }
    let _ = fs::remove_dir_all(&dir);
}
