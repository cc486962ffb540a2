//! Rule tests in the manner of `promtool test rules`: feed series of samples through the engine
//! and check the alerts and notifications at given times.
//!
//! The `alert-test` example is a command-line front end to [`run_file`]. The file format is
//! described in `docs/alerts.md`; in short:
//!
//! ```yaml
//! rule_files: [rules.yaml]       # relative to this file
//! interval: 10s                  # time between samples (default 1m); time starts at 0
//! units: { fridge-1/temperature: "°C" }   # optional {{unit}} values
//! tests:
//!   - name: overheat fires
//!     input:
//!       - { thing: fridge-1, property: temperature, values: "5 12x4 8 7 _x3" }
//!       - { thing: tag-1, property: battery, field: percent, values: "50 14" }  # {"percent": 50}
//!     acknowledge: [{ at: 45s, rule: fridge-overheat, thing: fridge-1, by: ana }]
//!     silences: [{ from: 0s, until: 1m, rule: fridge-overheat }]
//!     expect:
//!       - at: 40s
//!         alerts: [{ rule: fridge-overheat, thing: fridge-1, state: firing }]
//!     notifications:
//!       - { at: 40s, kind: fired, rule: fridge-overheat, thing: fridge-1 }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::engine::{Alert, AlertState, Engine, Notification, PropertyUpdate, Silence};
use crate::load::{Format, LoadError, RuleSet, parse_document, read_file};
use crate::rule::{NotificationKind, Severity, de_duration};

/// Most intervals one `values` series may span.
const MAX_SLOTS: usize = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    rule_files: Vec<String>,
    #[serde(default = "default_interval", deserialize_with = "de_duration")]
    interval: Duration,
    #[serde(default)]
    units: BTreeMap<String, String>,
    tests: Vec<TestCase>,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestCase {
    name: String,
    #[serde(default)]
    input: Vec<InputSeries>,
    #[serde(default)]
    acknowledge: Vec<AckStep>,
    #[serde(default)]
    silences: Vec<SilenceSpec>,
    #[serde(default)]
    expect: Vec<ExpectStep>,
    #[serde(default)]
    notifications: Option<Vec<ExpectedNotification>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSeries {
    thing: String,
    property: String,
    values: String,
    /// Wrap each sample as `{ FIELD: sample }` (to test rules with a `pointer`).
    #[serde(default)]
    field: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckStep {
    #[serde(deserialize_with = "de_duration")]
    at: Duration,
    rule: String,
    thing: String,
    by: String,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceSpec {
    #[serde(deserialize_with = "de_duration")]
    from: Duration,
    #[serde(deserialize_with = "de_duration")]
    until: Duration,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    thing: Option<String>,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectStep {
    #[serde(deserialize_with = "de_duration")]
    at: Duration,
    alerts: Vec<ExpectedAlert>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ExpectedAlert {
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    thing: Option<String>,
    #[serde(default)]
    state: Option<ExpectedState>,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    acknowledged: Option<bool>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum ExpectedState {
    Pending,
    Firing,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ExpectedNotification {
    #[serde(deserialize_with = "de_duration")]
    at: Duration,
    kind: NotificationKind,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    thing: Option<String>,
    #[serde(default)]
    severity: Option<Severity>,
    #[serde(default)]
    repeat: Option<u32>,
    #[serde(default)]
    summary: Option<String>,
}

/// The outcome of one test of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// The test's `name`.
    pub name: String,
    /// Readable descriptions of each mismatch; empty when the test passed.
    pub failures: Vec<String>,
}

impl TestOutcome {
    /// Whether the test passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The outcomes of all tests of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The test file.
    pub file: PathBuf,
    /// One outcome per test, in file order.
    pub tests: Vec<TestOutcome>,
}

impl FileReport {
    /// Whether every test passed.
    pub fn passed(&self) -> bool {
        self.tests.iter().all(TestOutcome::passed)
    }
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tests {
            if t.passed() {
                writeln!(f, "PASS {}: {}", self.file.display(), t.name)?;
            } else {
                writeln!(f, "FAIL {}: {}", self.file.display(), t.name)?;
                for failure in &t.failures {
                    for line in failure.lines() {
                        writeln!(f, "    {line}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs every test of a rule-test file.
///
/// # Errors
/// [`LoadError`] (with the file and field path) when the test file or a rule file it names
/// cannot be read, parsed or validated, or a `values` string is malformed. Failing tests are not
/// errors: they are reported in the [`FileReport`].
pub fn run_file(path: impl AsRef<Path>) -> Result<FileReport, LoadError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let text = read_file(path)?;
    let format = Format::from_path(path).unwrap_or(Format::Yaml);
    let file: TestFile = parse_document(&text, format, &name)?;
    if file.interval.is_zero() {
        return Err(LoadError::new(
            &name,
            None,
            Some("interval".into()),
            "must be longer than 0s",
        ));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut rules = RuleSet::new();
    for (i, rule_file) in file.rule_files.iter().enumerate() {
        let loaded = RuleSet::from_file(base.join(rule_file))?;
        rules.merge(loaded).map_err(|e| {
            LoadError::new(
                &name,
                Some(e.rule),
                Some(format!("rule_files[{i}]")),
                e.message,
            )
        })?;
    }
    rules
        .check_action_names()
        .map_err(|e| LoadError::new(&name, Some(e.rule), Some(e.field), e.message))?;
    let mut units = Vec::new();
    for (key, unit) in &file.units {
        let (thing, property) = key.split_once('/').ok_or_else(|| {
            LoadError::new(
                &name,
                None,
                Some(format!("units.{key}")),
                "key must be THING/PROPERTY",
            )
        })?;
        units.push((thing.to_owned(), property.to_owned(), unit.clone()));
    }
    let mut tests = Vec::new();
    for (i, case) in file.tests.iter().enumerate() {
        let failures = run_case(case, &file, &rules, &units).map_err(|(field, message)| {
            LoadError::new(&name, None, Some(format!("tests[{i}].{field}")), message)
        })?;
        tests.push(TestOutcome {
            name: case.name.clone(),
            failures,
        });
    }
    Ok(FileReport {
        file: path.to_path_buf(),
        tests,
    })
}

fn at(offset: Duration) -> SystemTime {
    SystemTime::UNIX_EPOCH + offset
}

fn offset(time: SystemTime) -> Duration {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

enum Step<'a> {
    Sample(PropertyUpdate),
    Ack(&'a AckStep),
    Expect(&'a ExpectStep),
}

fn run_case(
    case: &TestCase,
    file: &TestFile,
    rules: &RuleSet,
    units: &[(String, String, String)],
) -> Result<Vec<String>, (String, String)> {
    let mut engine = Engine::new();
    for (thing, property, unit) in units {
        engine.set_unit(thing, property, unit);
    }
    for rule in rules.rules() {
        engine
            .add_rule(rule.clone(), at(Duration::ZERO))
            .map_err(|e| ("rules".to_owned(), e.to_string()))?;
    }
    for s in &case.silences {
        let mut silence = Silence::new(at(s.from), at(s.until));
        silence.rule.clone_from(&s.rule);
        silence.thing.clone_from(&s.thing);
        silence.severity = s.severity;
        silence.labels.clone_from(&s.labels);
        engine.add_silence(silence);
    }

    // (time, order within the same time, step): samples, then acknowledgements, then checks.
    let mut steps: Vec<(Duration, u8, Step<'_>)> = Vec::new();
    let mut end = Duration::ZERO;
    for (i, series) in case.input.iter().enumerate() {
        let values = parse_values(&series.values).map_err(|m| (format!("input[{i}].values"), m))?;
        for (slot, value) in values.into_iter().enumerate() {
            let t = file
                .interval
                .checked_mul(u32::try_from(slot).unwrap_or(u32::MAX))
                .ok_or_else(|| {
                    (
                        format!("input[{i}].values"),
                        "series is too long".to_owned(),
                    )
                })?;
            end = end.max(t);
            if let Some(mut value) = value {
                if let Some(field) = &series.field {
                    value = serde_json::json!({ field.as_str(): value });
                }
                steps.push((
                    t,
                    0,
                    Step::Sample(PropertyUpdate::new(&series.thing, &series.property, value)),
                ));
            }
        }
    }
    for ack in &case.acknowledge {
        end = end.max(ack.at);
        steps.push((ack.at, 1, Step::Ack(ack)));
    }
    for expect in &case.expect {
        end = end.max(expect.at);
        steps.push((expect.at, 2, Step::Expect(expect)));
    }
    steps.sort_by_key(|(t, order, _)| (*t, *order));

    let mut failures = Vec::new();
    let mut notifications = Vec::new();
    let mut ticks = 0usize;
    for (t, _, step) in steps {
        let now = at(t);
        advance(&mut engine, now, &mut ticks, &mut notifications)?;
        match step {
            Step::Sample(update) => notifications.extend(engine.update(now, &update)),
            Step::Ack(ack) => {
                match engine.acknowledge(now, &ack.rule, &ack.thing, &ack.by, ack.comment.clone()) {
                    Ok(n) => notifications.extend(n),
                    Err(e) => failures.push(format!("at {}: acknowledge failed: {e}", show(t))),
                }
            }
            Step::Expect(expect) => {
                notifications.extend(engine.tick(now));
                if let Some(f) = compare_alerts(expect, &engine.active_alerts()) {
                    failures.push(f);
                }
            }
        }
    }
    advance(&mut engine, at(end), &mut ticks, &mut notifications)?;
    if let Some(expected) = &case.notifications
        && let Some(f) = compare_notifications(expected, &notifications)
    {
        failures.push(f);
    }
    Ok(failures)
}

/// Most deadline ticks one test may take (a 1 s repeat over years would never end otherwise).
const MAX_TICKS: usize = 100_000;

/// Runs the engine's deadlines up to `to` one instant at a time, bounded by [`MAX_TICKS`].
fn advance(
    engine: &mut Engine,
    to: SystemTime,
    ticks: &mut usize,
    notifications: &mut Vec<Notification>,
) -> Result<(), (String, String)> {
    while let Some(deadline) = engine.next_deadline().filter(|d| *d <= to) {
        *ticks += 1;
        if *ticks > MAX_TICKS {
            return Err((
                "expect".into(),
                format!(
                    "the test needs more than {MAX_TICKS} timer ticks; shorten it or lengthen \
                     repeat intervals"
                ),
            ));
        }
        notifications.extend(engine.tick(deadline));
    }
    Ok(())
}

fn alert_matches(e: &ExpectedAlert, a: &Alert) -> bool {
    e.rule.as_ref().is_none_or(|r| *r == a.rule)
        && e.thing.as_ref().is_none_or(|t| *t == a.thing)
        && e.state.is_none_or(|s| match s {
            ExpectedState::Pending => a.state == AlertState::Pending,
            ExpectedState::Firing => a.state == AlertState::Firing,
        })
        && e.severity.is_none_or(|s| s == a.severity)
        && e.acknowledged
            .is_none_or(|k| k == a.acknowledgement.is_some())
}

fn describe_alert(a: &Alert) -> String {
    format!(
        "{{ rule: {}, thing: {}, state: {}, severity: {}{} }}",
        a.rule,
        a.thing,
        a.state.as_str(),
        a.severity,
        if a.acknowledgement.is_some() {
            ", acknowledged: true"
        } else {
            ""
        }
    )
}

fn describe_expected_alert(e: &ExpectedAlert) -> String {
    let mut fields = Vec::new();
    if let Some(r) = &e.rule {
        fields.push(format!("rule: {r}"));
    }
    if let Some(t) = &e.thing {
        fields.push(format!("thing: {t}"));
    }
    if let Some(s) = e.state {
        fields.push(format!(
            "state: {}",
            if s == ExpectedState::Pending {
                "pending"
            } else {
                "firing"
            }
        ));
    }
    if let Some(s) = e.severity {
        fields.push(format!("severity: {s}"));
    }
    if let Some(k) = e.acknowledged {
        fields.push(format!("acknowledged: {k}"));
    }
    format!("{{ {} }}", fields.join(", "))
}

fn compare_alerts(expect: &ExpectStep, actual: &[Alert]) -> Option<String> {
    let mut used = vec![false; actual.len()];
    let mut all_found = true;
    for e in &expect.alerts {
        match actual
            .iter()
            .enumerate()
            .find(|(i, a)| !used.get(*i).copied().unwrap_or(true) && alert_matches(e, a))
        {
            Some((i, _)) => {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
            }
            None => all_found = false,
        }
    }
    if all_found && expect.alerts.len() == actual.len() {
        return None;
    }
    let mut text = format!("at {}: alerts differ\n  expected:", show(expect.at));
    if expect.alerts.is_empty() {
        text.push_str(" []");
    }
    for e in &expect.alerts {
        text.push_str(&format!("\n    - {}", describe_expected_alert(e)));
    }
    text.push_str("\n  actual:");
    if actual.is_empty() {
        text.push_str(" []");
    }
    for a in actual {
        text.push_str(&format!("\n    - {}", describe_alert(a)));
    }
    Some(text)
}

fn notification_matches(e: &ExpectedNotification, n: &Notification) -> bool {
    offset(n.at) == e.at
        && e.kind == n.kind
        && e.rule.as_ref().is_none_or(|r| *r == n.alert.rule)
        && e.thing.as_ref().is_none_or(|t| *t == n.alert.thing)
        && e.severity.is_none_or(|s| s == n.alert.severity)
        && e.repeat.is_none_or(|r| r == n.repeat)
        && e.summary.as_ref().is_none_or(|s| *s == n.alert.summary)
}

fn describe_notification(n: &Notification) -> String {
    let mut s = format!(
        "{{ at: {}, kind: {}, rule: {}, thing: {}, severity: {}",
        show(offset(n.at)),
        n.kind,
        n.alert.rule,
        n.alert.thing,
        n.alert.severity
    );
    if n.repeat > 0 {
        s.push_str(&format!(", repeat: {}", n.repeat));
    }
    s.push_str(&format!(", summary: {:?} }}", n.alert.summary));
    s
}

fn describe_expected_notification(e: &ExpectedNotification) -> String {
    let mut s = format!("{{ at: {}, kind: {}", show(e.at), e.kind);
    if let Some(r) = &e.rule {
        s.push_str(&format!(", rule: {r}"));
    }
    if let Some(t) = &e.thing {
        s.push_str(&format!(", thing: {t}"));
    }
    if let Some(v) = e.severity {
        s.push_str(&format!(", severity: {v}"));
    }
    if let Some(r) = e.repeat {
        s.push_str(&format!(", repeat: {r}"));
    }
    if let Some(m) = &e.summary {
        s.push_str(&format!(", summary: {m:?}"));
    }
    s.push_str(" }");
    s
}

fn compare_notifications(
    expected: &[ExpectedNotification],
    actual: &[Notification],
) -> Option<String> {
    if expected.len() == actual.len()
        && expected
            .iter()
            .zip(actual)
            .all(|(e, n)| notification_matches(e, n))
    {
        return None;
    }
    let mut text = String::from("notifications differ (! marks the first mismatch)\n  expected:");
    let first_bad = expected
        .iter()
        .zip(actual)
        .position(|(e, n)| !notification_matches(e, n))
        .unwrap_or(expected.len().min(actual.len()));
    if expected.is_empty() {
        text.push_str(" []");
    }
    for (i, e) in expected.iter().enumerate() {
        let mark = if i == first_bad { "!" } else { "-" };
        text.push_str(&format!(
            "\n    {mark} {}",
            describe_expected_notification(e)
        ));
    }
    text.push_str("\n  actual:");
    if actual.is_empty() {
        text.push_str(" []");
    }
    for (i, n) in actual.iter().enumerate() {
        let mark = if i == first_bad { "!" } else { "-" };
        text.push_str(&format!("\n    {mark} {}", describe_notification(n)));
    }
    Some(text)
}

/// Parses the `values` notation into one entry per interval (`None` for `_`).
fn parse_values(text: &str) -> Result<Vec<Option<serde_json::Value>>, String> {
    let mut out = Vec::new();
    for (n, token) in tokens(text)?.into_iter().enumerate() {
        let position = n + 1;
        let err = |m: String| format!("token {position} `{token}`: {m}");
        expand(token, &mut out).map_err(err)?;
        if out.len() > MAX_SLOTS {
            return Err(err(format!(
                "the series spans more than {MAX_SLOTS} intervals"
            )));
        }
    }
    Ok(out)
}

/// Splits on whitespace, keeping double-quoted strings (with `\"` escapes) whole.
fn tokens(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = if rest.starts_with('"') {
            let close =
                closing_quote(rest).ok_or_else(|| format!("unclosed string in `{rest}`"))?;
            close
                + rest[close..]
                    .find(char::is_whitespace)
                    .unwrap_or(rest.len() - close)
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        out.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    Ok(out)
}

/// Byte index just past the closing quote of a string starting at index 0.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn count(text: &str) -> Result<usize, String> {
    let n: usize = text
        .parse()
        .map_err(|_| format!("`{text}` is not a repeat count"))?;
    if n > MAX_SLOTS {
        return Err(format!("repeat count {n} is above {MAX_SLOTS}"));
    }
    Ok(n)
}

fn number(text: &str) -> Option<serde_json::Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.into());
    }
    let f: f64 = text.parse().ok()?;
    serde_json::Number::from_f64(f).map(serde_json::Value::Number)
}

fn expand(token: &str, out: &mut Vec<Option<serde_json::Value>>) -> Result<(), String> {
    if token.starts_with('"') {
        let close = closing_quote(token).ok_or("unclosed string")?;
        let value: String =
            serde_json::from_str(&token[..close]).map_err(|e| format!("bad string: {e}"))?;
        let n = match &token[close..] {
            "" => 1,
            rest => count(
                rest.strip_prefix('x')
                    .ok_or("expected `xN` after the string")?,
            )?,
        };
        out.extend(std::iter::repeat_n(
            Some(serde_json::Value::String(value)),
            n,
        ));
        return Ok(());
    }
    let (head, n) = match token.rsplit_once('x') {
        Some((head, n)) => (head, Some(count(n)?)),
        None => (token, None),
    };
    let single = |v: Option<serde_json::Value>| std::iter::repeat_n(v, n.unwrap_or(1));
    match head {
        "_" => out.extend(single(None)),
        "true" => out.extend(single(Some(true.into()))),
        "false" => out.extend(single(Some(false.into()))),
        _ => {
            if let Some(v) = number(head) {
                out.extend(single(Some(v)));
                return Ok(());
            }
            // A+B or A-B: the operator is a sign that is not the first character and does not
            // follow an exponent marker.
            let bytes = head.as_bytes();
            let op = (1..bytes.len()).find(|&i| {
                matches!(bytes.get(i), Some(b'+' | b'-'))
                    && !matches!(bytes.get(i - 1), Some(b'e' | b'E'))
            });
            let Some(op) = op else {
                return Err(
                    "expected a number, true, false, a \"string\", `_`, VxN or A+BxN".into(),
                );
            };
            let n = n.ok_or("A+B needs a count: write A+BxN")?;
            let (a, b) = (&head[..op], &head[op + 1..]);
            let sign = if bytes.get(op) == Some(&b'-') { -1 } else { 1 };
            match (a.parse::<i64>(), b.parse::<i64>()) {
                (Ok(a), Ok(b)) => {
                    for k in 0..n as i64 {
                        let v = b
                            .checked_mul(k)
                            .and_then(|step| a.checked_add(sign * step))
                            .ok_or("the series overflows 64-bit integers")?;
                        out.push(Some(v.into()));
                    }
                }
                _ => {
                    let a: f64 = a.parse().map_err(|_| format!("`{a}` is not a number"))?;
                    let b: f64 = b.parse().map_err(|_| format!("`{b}` is not a number"))?;
                    for k in 0..n {
                        let v = a + sign as f64 * b * k as f64;
                        let v = serde_json::Number::from_f64(v)
                            .ok_or("the series leaves the finite numbers")?;
                        out.push(Some(serde_json::Value::Number(v)));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_notation() {
        let v = parse_values(r#"5 12x2 _ _x2 1+2x3 10-2.5x2 true "a b"x2 -3 1e2"#).unwrap();
        let expect = vec![
            Some(json!(5)),
            Some(json!(12)),
            Some(json!(12)),
            None,
            None,
            None,
            Some(json!(1)),
            Some(json!(3)),
            Some(json!(5)),
            Some(json!(10.0)),
            Some(json!(7.5)),
            Some(json!(true)),
            Some(json!("a b")),
            Some(json!("a b")),
            Some(json!(-3)),
            Some(json!(100.0)),
        ];
        assert_eq!(v, expect);
    }

    #[test]
    fn values_errors_name_the_token() {
        let e = parse_values("1 2 abc").unwrap_err();
        assert!(e.starts_with("token 3 `abc`"), "{e}");
        assert!(parse_values("1+2").unwrap_err().contains("needs a count"));
        assert!(parse_values("\"open").unwrap_err().contains("unclosed"));
        assert!(parse_values("_x99999999999").unwrap_err().contains("above"));
        assert!(
            parse_values("1x900000 1x900000")
                .unwrap_err()
                .contains("more than")
        );
    }
}
