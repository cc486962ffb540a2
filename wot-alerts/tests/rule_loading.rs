//! Rule files in YAML, TOML and JSON, and hostile or wrong ones: every problem is a clear error
//! naming the file, the rule and the field, never a panic or a hang.

use std::time::{Duration, Instant};

use wot_alerts::{Condition, Format, LoadError, RuleSet, Severity};

fn yaml(text: &str) -> Result<RuleSet, LoadError> {
    RuleSet::from_str(text, Format::Yaml, "rules.yaml")
}

fn rule_yaml(fields: &str) -> String {
    format!("rules:\n  - id: r1\n    thing: fridge-1\n    property: temperature\n{fields}")
}

#[test]
fn the_three_formats_load_the_same_rule() {
    let y = yaml(&rule_yaml(
        "    condition: { between: [2, 8] }\n    for: 1m\n    severity: critical\n    labels: { team: a }\n",
    ))
    .unwrap();
    let t = RuleSet::from_str(
        r#"
[[rules]]
id = "r1"
thing = "fridge-1"
property = "temperature"
condition = { between = [2, 8] }
for = "1m"
severity = "critical"
labels = { team = "a" }
"#,
        Format::Toml,
        "rules.toml",
    )
    .unwrap();
    let j = RuleSet::from_str(
        r#"{"rules": [{"id": "r1", "thing": "fridge-1", "property": "temperature",
            "condition": {"between": [2, 8]}, "for": "1m", "severity": "critical",
            "labels": {"team": "a"}}]}"#,
        Format::Json,
        "rules.json",
    )
    .unwrap();
    for set in [&y, &t, &j] {
        let r = &set.rules()[0];
        assert!(matches!(r.condition, Condition::Between([2.0, 8.0])));
        assert_eq!(r.hold_for, Duration::from_secs(60));
        assert_eq!(r.severity, Severity::Critical);
        assert_eq!(r.labels["team"], "a");
    }
}

#[test]
fn files_are_loaded_by_extension() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/rules");
    let set = RuleSet::from_file(format!("{dir}/semantics.yaml")).unwrap();
    assert!(set.rules().len() >= 8);
    let e = RuleSet::from_file(format!("{dir}/../rule_loading.rs")).unwrap_err();
    assert!(e.to_string().contains("unknown file extension"), "{e}");
}

#[track_caller]
fn assert_error(
    result: Result<RuleSet, LoadError>,
    rule: Option<&str>,
    field: &str,
    message: &str,
) {
    let e = result.unwrap_err();
    assert_eq!(e.file(), "rules.yaml", "{e}");
    assert_eq!(e.rule(), rule, "{e}");
    assert_eq!(e.field(), Some(field), "{e}");
    assert!(e.message().contains(message), "{e}");
}

#[test]
fn unknown_fields_are_rejected_with_their_location() {
    let r = yaml(&rule_yaml(
        "    condition: { gt: 8 }\n    severty: critical\n",
    ));
    let e = r.clone().unwrap_err();
    assert!(e.message().contains("line 6"), "{e}");
    assert_error(r, Some("r1"), "rules[0].severty", "unknown field `severty`");
    assert_error(yaml("rulez: []\n"), None, "rulez", "unknown field `rulez`");
    assert_error(
        yaml(&rule_yaml(
            "    condition: { gt: 8 }\n    escalate: [{ condition: { gt: 9 }, severity: critical, extra: 1 }]\n",
        )),
        Some("r1"),
        "rules[0].escalate[0].extra",
        "unknown field `extra`",
    );
    assert_error(
        yaml(&rule_yaml("    condition: { greater: 8 }\n")),
        Some("r1"),
        "rules[0].condition",
        "unknown variant `greater`",
    );
    assert_error(
        yaml("actions:\n  ops: { type: webhook, url: \"http://x/\", colour: red }\n"),
        None,
        "actions.ops",
        "unknown field `colour`",
    );
}

#[test]
fn wrong_types_name_the_field() {
    assert_error(
        yaml(&rule_yaml("    condition: { gt: warm }\n")),
        Some("r1"),
        "rules[0].condition.gt",
        "invalid type",
    );
    assert_error(
        yaml(&rule_yaml("    condition: { gt: 8 }\n    severity: huge\n")),
        Some("r1"),
        "rules[0].severity",
        "unknown variant `huge`",
    );
    assert_error(
        yaml(&rule_yaml("    condition: { gt: 8 }\n    for: 30\n")),
        Some("r1"),
        "rules[0].for",
        "add a unit",
    );
    assert_error(
        yaml(&rule_yaml("    condition: { eq: [1] }\n")),
        Some("r1"),
        "rules[0].condition.eq",
        "a finite number, a string or a boolean",
    );
    assert_error(yaml("rules: 3\n"), None, "rules", "invalid type");
    let e = RuleSet::from_str("[[rules]]\nid = 3\n", Format::Toml, "rules.toml").unwrap_err();
    assert_eq!(e.field(), Some("rules[0].id"), "{e}");
    let e = RuleSet::from_str("{\"rules\": [", Format::Json, "rules.json").unwrap_err();
    assert!(e.message().contains("EOF"), "{e}");
}

#[test]
fn semantic_mistakes_are_explained() {
    let cases = [
        (
            "    condition: { gt: 8, lt: 2 }\n",
            "rules[0].condition",
            "exactly one key",
        ),
        (
            "    condition: {}\n",
            "rules[0].condition",
            "empty condition",
        ),
        (
            "    condition: { no_data: 0s }\n",
            "rules[0].condition",
            "longer than 0s",
        ),
        (
            "    condition: { changed: false }\n",
            "rules[0].condition",
            "only accepts `true`",
        ),
        (
            "    condition: { between: [8, 2] }\n",
            "rules[0].condition.between",
            "low end above",
        ),
        (
            "    condition: { rate: { per: 1m } }\n",
            "rules[0].condition.rate",
            "needs one of",
        ),
        (
            "    condition: { rate: { gt: 1, per: 0s } }\n",
            "rules[0].condition.rate",
            "longer than 0s",
        ),
        (
            "    condition: { gt: 8 }\n    summary: \"{{nope}}\"\n",
            "rules[0].summary",
            "unknown placeholder",
        ),
        (
            "    condition: { gt: 8 }\n    pointer: value\n",
            "rules[0].pointer",
            "must be empty or start",
        ),
        (
            "    condition: { gt: 8 }\n    repeat_interval: 0s\n",
            "rules[0].repeat_interval",
            "at least 1s",
        ),
        (
            "    condition: { gt: 8 }\n    actions: [pager]\n",
            "rules[0].actions[0]",
            "`pager` is not defined",
        ),
    ];
    for (fields, field, message) in cases {
        assert_error(yaml(&rule_yaml(fields)), Some("r1"), field, message);
    }
    let dup = format!(
        "{}  - {{ id: r1, thing: t, property: p, condition: {{ lt: 1 }} }}\n",
        rule_yaml("    condition: { gt: 8 }\n")
    );
    assert_error(yaml(&dup), Some("r1"), "rules[1].id", "same id");
    assert_error(
        yaml("actions:\n  ops: { type: webhook, url: \"ftp://x/\" }\n"),
        None,
        "actions.ops",
        "http or https",
    );
}

#[test]
fn huge_values_are_rejected() {
    assert_error(
        yaml(&rule_yaml("    condition: { gt: 1e400 }\n")),
        Some("r1"),
        "rules[0].condition.gt",
        "expected f64",
    );
    assert_error(
        yaml(&rule_yaml("    condition: { gt: .inf }\n")),
        Some("r1"),
        "rules[0].condition.gt",
        "not finite",
    );
    assert_error(
        yaml(&rule_yaml(
            "    condition: { no_data: 99999999999999999999s }\n",
        )),
        Some("r1"),
        "rules[0].condition.no_data",
        "invalid duration",
    );
    assert_error(
        yaml(&rule_yaml("    condition: { gt: 8 }\n    for: 200years\n")),
        Some("r1"),
        "rules[0].for",
        "longer than 100 years",
    );
    let long_summary = format!(
        "    condition: {{ gt: 8 }}\n    summary: \"{}\"\n",
        "x".repeat(10_000)
    );
    assert_error(
        yaml(&rule_yaml(&long_summary)),
        Some("r1"),
        "rules[0].summary",
        "at most 4096",
    );
    // Deep nesting must not overflow the stack.
    let started = Instant::now();
    let deep = format!("rules: {}", "[".repeat(100_000));
    assert!(
        yaml(&deep)
            .unwrap_err()
            .message()
            .contains("nested deeper than 64")
    );
    let deep_block: String = (0..2000)
        .map(|i| format!("{}- \n", " ".repeat(i)))
        .collect();
    assert!(
        yaml(&format!("rules:\n{deep_block}"))
            .unwrap_err()
            .message()
            .contains("indented by")
    );
    let deep_toml = format!("rules = {}", "[".repeat(100_000));
    assert!(RuleSet::from_str(&deep_toml, Format::Toml, "rules.toml").is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    let deep_json = format!("{{\"rules\": {}", "[".repeat(100_000));
    assert!(RuleSet::from_str(&deep_json, Format::Json, "rules.json").is_err());
}

#[test]
fn pathological_regexes_are_bounded() {
    // Catastrophic for backtracking engines; linear here.
    let set = yaml(&rule_yaml("    condition: { matches: \"^(a+)+$\" }\n")).unwrap();
    let Condition::Matches(p) = &set.rules()[0].condition else {
        panic!("not a regex condition")
    };
    assert_eq!(p.as_str(), "^(a+)+$");
    let mut engine = wot_alerts::Engine::new();
    engine
        .add_rule(set.rules()[0].clone(), std::time::SystemTime::UNIX_EPOCH)
        .unwrap();
    let hostile = format!("{}b", "a".repeat(100_000));
    let started = Instant::now();
    let n = engine.update(
        std::time::SystemTime::UNIX_EPOCH,
        &wot_alerts::PropertyUpdate::new(
            "fridge-1",
            "temperature",
            serde_json::Value::String(hostile),
        ),
    );
    assert!(n.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));

    assert_error(
        yaml(&rule_yaml(
            "    condition: { matches: \"a{1000}{1000}\" }\n",
        )),
        Some("r1"),
        "rules[0].condition.matches",
        "invalid regular expression",
    );
    let long = format!("    condition: {{ matches: \"{}\" }}\n", "a".repeat(5000));
    assert_error(
        yaml(&rule_yaml(&long)),
        Some("r1"),
        "rules[0].condition.matches",
        "at most 4096",
    );
    assert_error(
        yaml(&rule_yaml("    condition: { matches: \"(unclosed\" }\n")),
        Some("r1"),
        "rules[0].condition.matches",
        "invalid regular expression",
    );
}

#[test]
fn webhook_urls_keep_their_secrets_out_of_debug_output() {
    let set = yaml(
        "actions:\n  ops: { type: webhook, url: \"https://user:pw@hooks.example/x?token=s3cret\" }\n",
    )
    .unwrap();
    let shown = format!("{set:?}");
    assert!(shown.contains("https://hooks.example/x"), "{shown}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("pw"),
        "{shown}"
    );
}
