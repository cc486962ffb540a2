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
use crate::limits::{Limits, escape_controls};
use crate::load::{
    Format, ListCap, LoadError, RuleSet, check_string, de_capped_list, find_line, parse_document,
    prefix, read_file,
};
use crate::rule::{NotificationKind, Severity, de_duration};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    rule_files: Vec<String>,
    #[serde(default = "default_interval", deserialize_with = "de_duration")]
    interval: Duration,
    #[serde(default)]
    units: BTreeMap<String, String>,
    #[serde(deserialize_with = "de_capped_list")]
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

/// One line per test (`PASS FILE: NAME` or `FAIL FILE: NAME` and the indented failures), with
/// control characters escaped (see [`crate::escape_controls`]).
impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names and failure texts come from files: control characters are shown escaped.
        let file = self.file.display().to_string();
        let file = escape_controls(&file);
        for t in &self.tests {
            let name = escape_controls(&t.name);
            if t.passed() {
                writeln!(f, "PASS {file}: {name}")?;
            } else {
                writeln!(f, "FAIL {file}: {name}")?;
                for failure in &t.failures {
                    for line in failure.lines() {
                        writeln!(f, "    {}", escape_controls(line))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs every test of a rule-test file, with the default [`Limits`].
///
/// # Errors
/// [`LoadError`] (with the file, the field path and, where it can be found, the line) when the
/// test file or a rule file it names cannot be read, parsed or validated, a `values` string is
/// malformed, or a budget of [`Limits`] is exceeded. Failing tests are not errors: they are
/// reported in the [`FileReport`].
pub fn run_file(path: impl AsRef<Path>) -> Result<FileReport, LoadError> {
    run_file_with(path, &Limits::default())
}

/// [`run_file`] with other budgets than the default ones.
///
/// # Errors
/// As [`run_file`].
pub fn run_file_with(path: impl AsRef<Path>, limits: &Limits) -> Result<FileReport, LoadError> {
    let path = path.as_ref();
    let text = read_file(path, limits)?;
    let format = Format::from_path(path).unwrap_or(Format::Yaml);
    let base = path.parent().unwrap_or(Path::new("."));
    run_source(&text, format, path, base, limits)
}

/// Runs the tests of a rule-test file given as text; `origin` names it in errors and in the
/// report, and its `rule_files` are found relative to `rule_dir`.
///
/// # Errors
/// As [`run_file`], without the errors of reading the test file itself.
pub fn run_str(
    text: &str,
    format: Format,
    origin: &str,
    rule_dir: &Path,
    limits: &Limits,
) -> Result<FileReport, LoadError> {
    run_source(text, format, Path::new(origin), rule_dir, limits)
}

fn run_source(
    text: &str,
    format: Format,
    path: &Path,
    base: &Path,
    limits: &Limits,
) -> Result<FileReport, LoadError> {
    let name = path.display().to_string();
    let file: TestFile = {
        let _cap = ListCap::set(limits.max_tests, "Limits::max_tests");
        parse_document(text, format, &name, limits)?
    };
    if file.interval.is_zero() {
        return Err(LoadError::new(
            &name,
            None,
            Some("interval".into()),
            "must be longer than 0s",
        )
        .at_line(find_line(text, 1, "interval")));
    }
    let mut rules = RuleSet::new();
    for (i, rule_file) in file.rule_files.iter().enumerate() {
        let field = || Some(format!("rule_files[{i}]"));
        let line = || find_line(text, 1, prefix(rule_file));
        check_string(rule_file, limits.max_string_bytes)
            .map_err(|m| LoadError::new(&name, None, field(), m).at_line(line()))?;
        let loaded = RuleSet::from_file_with(base.join(rule_file), limits)?;
        if rules.rules().len().saturating_add(loaded.rules().len()) > limits.max_rules {
            return Err(LoadError::new(
                &name,
                None,
                field(),
                format!(
                    "the rule files hold more than {} rules together (Limits::max_rules)",
                    limits.max_rules
                ),
            )
            .at_line(line()));
        }
        rules.merge(loaded).map_err(|e| {
            LoadError::new(&name, e.rule().map(str::to_owned), field(), e.message()).at_line(line())
        })?;
    }
    rules
        .check_action_names()
        .map_err(|e| LoadError::from_rule_error(&name, &e))?;
    let starts = file.tests.len().saturating_mul(rules.rules().len());
    if starts > limits.max_rule_starts_per_file {
        return Err(LoadError::new(
            &name,
            None,
            Some("tests".into()),
            format!(
                "{} tests of {} rules each start {starts} rules; at most {} are run per file \
                 (Limits::max_rule_starts_per_file)",
                file.tests.len(),
                rules.rules().len(),
                limits.max_rule_starts_per_file
            ),
        )
        .at_line(find_line(text, 1, "tests")));
    }
    let mut units = Vec::new();
    for (key, unit) in &file.units {
        let field = || Some(format!("units.{}", prefix(key)));
        let line = || find_line(text, 1, prefix(key));
        check_string(key, limits.max_string_bytes)
            .and_then(|()| check_string(unit, limits.max_string_bytes))
            .map_err(|m| LoadError::new(&name, None, field(), m).at_line(line()))?;
        let (thing, property) = key.split_once('/').ok_or_else(|| {
            LoadError::new(&name, None, field(), "key must be THING/PROPERTY").at_line(line())
        })?;
        units.push((thing.to_owned(), property.to_owned(), unit.clone()));
    }
    let mut file_samples = 0usize;
    let mut tests = Vec::new();
    for (i, case) in file.tests.iter().enumerate() {
        let failures =
            run_case(case, &file, &rules, &units, limits, &mut file_samples).map_err(|e| {
                // The test's line, then the offending text after it.
                let case_line = find_line(text, 1, prefix(&case.name));
                let line = e
                    .token
                    .as_deref()
                    .and_then(|t| find_line(text, case_line.unwrap_or(1), t))
                    .or(case_line);
                LoadError::new(
                    &name,
                    None,
                    Some(format!("tests[{i}].{}", e.field)),
                    format!("test `{}`: {}", shown(&case.name), e.message),
                )
                .at_line(line)
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

/// Why a test could not be run: the field, what is wrong, and text to find its line by.
struct CaseError {
    field: String,
    message: String,
    token: Option<String>,
}

impl CaseError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        CaseError {
            field: field.into(),
            message: message.into(),
            token: None,
        }
    }
}

/// At most 64 bytes of `text`, followed by `…` when cut, for messages.
fn shown(text: &str) -> String {
    let p = prefix(text);
    if p.len() < text.len() {
        format!("{p}…")
    } else {
        p.to_owned()
    }
}

fn at(offset: Duration) -> SystemTime {
    // Offsets are checked against the largest time before they get here.
    SystemTime::UNIX_EPOCH
        .checked_add(offset)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn offset(time: SystemTime) -> Duration {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

enum Step<'a> {
    /// A value of the input series with this index.
    Sample(usize, serde_json::Value),
    Ack(&'a AckStep),
    Expect(&'a ExpectStep),
}

/// Most failures reported per test, and most entries listed per alert or notification list.
const MAX_FAILURES: usize = 20;
const MAX_LISTED: usize = 100;

fn run_case(
    case: &TestCase,
    file: &TestFile,
    rules: &RuleSet,
    units: &[(String, String, String)],
    limits: &Limits,
    file_samples: &mut usize,
) -> Result<Vec<String>, CaseError> {
    let max = limits.max_string_bytes;
    check_string(&case.name, max).map_err(|m| CaseError::new("name", m))?;
    for (i, series) in case.input.iter().enumerate() {
        let fields = [("thing", &series.thing), ("property", &series.property)];
        for (what, text) in fields
            .into_iter()
            .chain(series.field.iter().map(|f| ("field", f)))
        {
            check_string(text, max).map_err(|m| CaseError {
                token: Some(prefix(text).to_owned()),
                ..CaseError::new(format!("input[{i}].{what}"), m)
            })?;
        }
    }
    let mut engine = Engine::new();
    for (thing, property, unit) in units {
        engine.set_unit(thing, property, unit);
    }
    for rule in rules.rules() {
        engine
            .add_rule(rule.clone(), at(Duration::ZERO))
            .map_err(|e| CaseError::new("rules", e.to_string()))?;
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
    let mut budget = Budget {
        limits,
        samples: 0,
        bytes: 0,
        file_samples,
    };
    for (i, series) in case.input.iter().enumerate() {
        let mut emit = |slot: usize, value: serde_json::Value| -> Result<(), String> {
            let t = u32::try_from(slot)
                .ok()
                .and_then(|slot| file.interval.checked_mul(slot))
                .filter(|t| SystemTime::UNIX_EPOCH.checked_add(*t).is_some())
                .ok_or("the series reaches past the largest representable time")?;
            end = end.max(t);
            steps.push((t, 0, Step::Sample(i, value)));
            Ok(())
        };
        let slots =
            parse_values(&series.values, &mut budget, &mut emit).map_err(|(token, message)| {
                CaseError {
                    token: Some(token),
                    ..CaseError::new(format!("input[{i}].values"), message)
                }
            })?;
        // The series lasts to its last interval, `_` included.
        let last = u32::try_from(slots.saturating_sub(1))
            .ok()
            .and_then(|slot| file.interval.checked_mul(slot))
            .filter(|t| SystemTime::UNIX_EPOCH.checked_add(*t).is_some())
            .ok_or_else(|| {
                CaseError::new(
                    format!("input[{i}].values"),
                    "the series reaches past the largest representable time",
                )
            })?;
        end = end.max(last);
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

    let mut failures = Failures::default();
    let mut notifications = NotificationLog::new(case.notifications.as_deref());
    let mut ticks = Ticks {
        done: 0,
        max: limits.max_ticks_per_test,
    };
    for (t, _, step) in steps {
        let now = at(t);
        // A sample at `t` comes before the deadlines at `t`; acknowledgements and checks after.
        let inclusive = !matches!(step, Step::Sample(..));
        ticks.advance(&mut engine, now, inclusive, &mut notifications)?;
        match step {
            Step::Sample(i, value) => {
                let Some(series) = case.input.get(i) else {
                    continue;
                };
                let value = match &series.field {
                    Some(field) => serde_json::json!({ field.as_str(): value }),
                    None => value,
                };
                let update =
                    PropertyUpdate::new(series.thing.as_str(), series.property.as_str(), value);
                notifications.extend(engine.update(now, &update));
            }
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
    ticks.advance(&mut engine, at(end), true, &mut notifications)?;
    if let Some(f) = notifications.compare() {
        failures.push(f);
    }
    Ok(failures.finish())
}

/// The failures of one test, at most [`MAX_FAILURES`] kept.
#[derive(Default)]
struct Failures {
    kept: Vec<String>,
    more: usize,
}

impl Failures {
    fn push(&mut self, failure: String) {
        if self.kept.len() < MAX_FAILURES {
            self.kept.push(failure);
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.kept
                .push(format!("... and {} more failures", self.more));
        }
        self.kept
    }
}

/// What one test may still expand to.
struct Budget<'a> {
    limits: &'a Limits,
    samples: usize,
    bytes: usize,
    file_samples: &'a mut usize,
}

/// Bytes counted per sample besides the length of a string value.
const SAMPLE_BYTES: usize = 64;

impl Budget<'_> {
    /// Takes `n` samples of `extra` bytes each from the budget, or says which budget they pass.
    fn take(&mut self, n: usize, extra: usize) -> Result<(), String> {
        let l = self.limits;
        let samples = self
            .samples
            .checked_add(n)
            .filter(|s| *s <= l.max_samples_per_test)
            .ok_or_else(|| {
                format!(
                    "the test's series expand to more than {} samples \
                     (Limits::max_samples_per_test)",
                    l.max_samples_per_test
                )
            })?;
        let file = self
            .file_samples
            .checked_add(n)
            .filter(|s| *s <= l.max_samples_per_file)
            .ok_or_else(|| {
                format!(
                    "the file's series expand to more than {} samples \
                     (Limits::max_samples_per_file)",
                    l.max_samples_per_file
                )
            })?;
        let bytes = extra
            .checked_add(SAMPLE_BYTES)
            .and_then(|each| each.checked_mul(n))
            .and_then(|b| b.checked_add(self.bytes))
            .filter(|b| *b <= l.max_sample_bytes_per_test)
            .ok_or_else(|| {
                format!(
                    "the test's series expand to more than {} bytes \
                     (Limits::max_sample_bytes_per_test)",
                    l.max_sample_bytes_per_test
                )
            })?;
        self.samples = samples;
        *self.file_samples = file;
        self.bytes = bytes;
        Ok(())
    }
}

/// Runs the engine's deadlines one instant at a time, up to `to` (included or not), bounded by
/// a number of ticks.
struct Ticks {
    done: usize,
    max: usize,
}

impl Ticks {
    fn advance(
        &mut self,
        engine: &mut Engine,
        to: SystemTime,
        inclusive: bool,
        notifications: &mut NotificationLog<'_>,
    ) -> Result<(), CaseError> {
        while let Some(deadline) = engine
            .next_deadline()
            .filter(|d| *d < to || (inclusive && *d == to))
        {
            self.done += 1;
            if self.done > self.max {
                return Err(CaseError::new(
                    "expect",
                    format!(
                        "the test needs more than {} timer ticks (Limits::max_ticks_per_test); \
                         shorten it or lengthen repeat intervals",
                        self.max
                    ),
                ));
            }
            notifications.extend(engine.tick(deadline));
        }
        Ok(())
    }
}

/// Compares notifications with the expected ones as they arrive, keeping descriptions of the
/// first [`MAX_LISTED`] only.
struct NotificationLog<'a> {
    expected: Option<&'a [ExpectedNotification]>,
    seen: usize,
    first_bad: Option<usize>,
    kept: Vec<String>,
}

impl<'a> NotificationLog<'a> {
    fn new(expected: Option<&'a [ExpectedNotification]>) -> Self {
        NotificationLog {
            expected,
            seen: 0,
            first_bad: None,
            kept: Vec::new(),
        }
    }

    fn extend(&mut self, notifications: impl IntoIterator<Item = Notification>) {
        let Some(expected) = self.expected else {
            return;
        };
        for n in notifications {
            let i = self.seen;
            if !expected.get(i).is_some_and(|e| notification_matches(e, &n)) {
                self.first_bad.get_or_insert(i);
            }
            if self.kept.len() < MAX_LISTED {
                self.kept.push(describe_notification(&n));
            }
            self.seen += 1;
        }
    }

    fn compare(&self) -> Option<String> {
        let expected = self.expected?;
        let first_bad = match self.first_bad {
            Some(i) => i,
            None if self.seen == expected.len() => return None,
            None => self.seen.min(expected.len()),
        };
        let mut text = format!(
            "notifications differ (! marks the first mismatch, #{})\n  expected:",
            first_bad + 1
        );
        if expected.is_empty() {
            text.push_str(" []");
        }
        for (i, e) in expected.iter().enumerate().take(MAX_LISTED) {
            let mark = if i == first_bad { "!" } else { "-" };
            text.push_str(&format!(
                "\n    {mark} {}",
                describe_expected_notification(e)
            ));
        }
        if expected.len() > MAX_LISTED {
            text.push_str(&format!(
                "\n    ... and {} more",
                expected.len() - MAX_LISTED
            ));
        }
        text.push_str("\n  actual:");
        if self.seen == 0 {
            text.push_str(" []");
        }
        for (i, n) in self.kept.iter().enumerate() {
            let mark = if i == first_bad { "!" } else { "-" };
            text.push_str(&format!("\n    {mark} {n}"));
        }
        if self.seen > self.kept.len() {
            text.push_str(&format!(
                "\n    ... and {} more",
                self.seen - self.kept.len()
            ));
        }
        Some(text)
    }
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

/// Parses the `values` notation, taking each token's samples from `budget` before creating
/// them, and hands each sample with its interval index to `emit` (`_` only advances the
/// index). Returns the number of intervals the series spans. Errors carry the offending token (its first 64 bytes) and a message naming it.
fn parse_values(
    text: &str,
    budget: &mut Budget<'_>,
    emit: &mut dyn FnMut(usize, serde_json::Value) -> Result<(), String>,
) -> Result<usize, (String, String)> {
    let max_len = budget.limits.max_series_len;
    let mut slot = 0usize;
    for (n, token) in Tokens(text).enumerate() {
        let position = n + 1;
        let token = token.map_err(|(rest, m)| (prefix(rest).to_owned(), m))?;
        let err = |m: String| {
            (
                prefix(token).to_owned(),
                format!("token {position} `{}`: {m}", shown(token)),
            )
        };
        let parsed = parse_token(token, budget.limits).map_err(err)?;
        let count = parsed.count();
        let next = slot
            .checked_add(count)
            .filter(|s| *s <= max_len)
            .ok_or_else(|| {
                err(format!(
                    "the series spans more than {max_len} intervals (Limits::max_series_len)"
                ))
            })?;
        if !matches!(parsed, Token::Gap(_)) {
            budget.take(count, parsed.extra_bytes()).map_err(err)?;
        }
        parsed.emit(slot, emit).map_err(|m| err(m.to_string()))?;
        slot = next;
    }
    Ok(slot)
}

/// One token of the `values` notation.
enum Token {
    /// `_xN`: N intervals without a sample.
    Gap(usize),
    /// `VxN`: the same value N times.
    Repeat(serde_json::Value, usize),
    /// `A+BxN` or `A-BxN` over integers.
    Ints { a: i64, step: i64, n: usize },
    /// `A+BxN` or `A-BxN` over floating-point numbers.
    Floats { a: f64, step: f64, n: usize },
}

impl Token {
    fn count(&self) -> usize {
        match self {
            Token::Gap(n)
            | Token::Repeat(_, n)
            | Token::Ints { n, .. }
            | Token::Floats { n, .. } => *n,
        }
    }

    /// Bytes per sample beyond [`SAMPLE_BYTES`]: the length of a string value.
    fn extra_bytes(&self) -> usize {
        match self {
            Token::Repeat(serde_json::Value::String(s), _) => s.len(),
            _ => 0,
        }
    }

    fn emit(
        self,
        first: usize,
        emit: &mut dyn FnMut(usize, serde_json::Value) -> Result<(), String>,
    ) -> Result<(), String> {
        match self {
            Token::Gap(_) => Ok(()),
            Token::Repeat(value, n) => {
                for (k, v) in std::iter::repeat_n(value, n).enumerate() {
                    emit(first.saturating_add(k), v)?;
                }
                Ok(())
            }
            Token::Ints { a, step, n } => {
                for k in 0..n {
                    let v = i64::try_from(k)
                        .ok()
                        .and_then(|k| step.checked_mul(k))
                        .and_then(|s| a.checked_add(s))
                        .ok_or("the series overflows 64-bit integers")?;
                    emit(first.saturating_add(k), v.into())?;
                }
                Ok(())
            }
            Token::Floats { a, step, n } => {
                for k in 0..n {
                    let v = serde_json::Number::from_f64(a + step * k as f64)
                        .ok_or("the series leaves the finite numbers")?;
                    emit(first.saturating_add(k), serde_json::Value::Number(v))?;
                }
                Ok(())
            }
        }
    }
}

/// Splits on whitespace, keeping double-quoted strings (with `\"` escapes) whole. An unclosed
/// string is an error carrying the rest of the text.
struct Tokens<'a>(&'a str);

impl<'a> Iterator for Tokens<'a> {
    type Item = Result<&'a str, (&'a str, String)>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.0.trim_start();
        if rest.is_empty() {
            self.0 = rest;
            return None;
        }
        let end = if rest.starts_with('"') {
            let Some(close) = closing_quote(rest) else {
                self.0 = "";
                return Some(Err((rest, format!("unclosed string in `{}`", shown(rest)))));
            };
            let after = rest.get(close..).unwrap_or_default();
            close + after.find(char::is_whitespace).unwrap_or(after.len())
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        let (token, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
        self.0 = tail;
        Some(Ok(token))
    }
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

fn count(text: &str, limits: &Limits) -> Result<usize, String> {
    let max = limits.max_series_len;
    let n: usize = text
        .parse()
        .map_err(|_| format!("`{}` is not a repeat count", shown(text)))?;
    if n > max {
        return Err(format!(
            "repeat count {n} is above {max} (Limits::max_series_len)"
        ));
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

fn parse_token(token: &str, limits: &Limits) -> Result<Token, String> {
    if token.starts_with('"') {
        let close = closing_quote(token).ok_or("unclosed string")?;
        let (quoted, after) = token.split_at_checked(close).ok_or("unclosed string")?;
        let n = match after {
            "" => 1,
            rest => count(
                rest.strip_prefix('x')
                    .ok_or("expected `xN` after the string")?,
                limits,
            )?,
        };
        // The decoded string is never longer than its source.
        if close - 2 > limits.max_string_bytes {
            return Err(format!(
                "the string is {} bytes long; at most {} are accepted \
                 (Limits::max_string_bytes)",
                close - 2,
                limits.max_string_bytes
            ));
        }
        let value: String = serde_json::from_str(quoted).map_err(|e| format!("bad string: {e}"))?;
        return Ok(Token::Repeat(serde_json::Value::String(value), n));
    }
    let (head, n) = match token.rsplit_once('x') {
        Some((head, n)) => (head, Some(count(n, limits)?)),
        None => (token, None),
    };
    let repeat = |v: serde_json::Value| Token::Repeat(v, n.unwrap_or(1));
    match head {
        "_" => return Ok(Token::Gap(n.unwrap_or(1))),
        "true" => return Ok(repeat(true.into())),
        "false" => return Ok(repeat(false.into())),
        _ => {}
    }
    if let Some(v) = number(head) {
        return Ok(repeat(v));
    }
    // A+B or A-B: the operator is a sign that is not the first character and does not follow
    // an exponent marker.
    let bytes = head.as_bytes();
    let op = (1..bytes.len()).find(|&i| {
        matches!(bytes.get(i), Some(b'+' | b'-')) && !matches!(bytes.get(i - 1), Some(b'e' | b'E'))
    });
    let Some(op) = op else {
        return Err("expected a number, true, false, a \"string\", `_`, VxN or A+BxN".into());
    };
    let n = n.ok_or("A+B needs a count: write A+BxN")?;
    // `op` is the position of an ASCII sign, so both sides are on character boundaries.
    let (a, signed) = head.split_at_checked(op).unwrap_or((head, ""));
    let b = signed.get(1..).unwrap_or_default();
    let negative = bytes.get(op) == Some(&b'-');
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(a), Ok(b)) => {
            let step = if negative { b.checked_neg() } else { Some(b) }
                .ok_or("the series overflows 64-bit integers")?;
            Ok(Token::Ints { a, step, n })
        }
        _ => {
            let a: f64 = a
                .parse()
                .map_err(|_| format!("`{}` is not a number", shown(a)))?;
            let b: f64 = b
                .parse()
                .map_err(|_| format!("`{}` is not a number", shown(b)))?;
            Ok(Token::Floats {
                a,
                step: if negative { -b } else { b },
                n,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Expands `text` with `limits`, one entry per interval (`None` for `_`).
    fn expand_with(text: &str, limits: &Limits) -> Result<Vec<Option<serde_json::Value>>, String> {
        let mut file_samples = 0;
        let mut budget = Budget {
            limits,
            samples: 0,
            bytes: 0,
            file_samples: &mut file_samples,
        };
        let mut out: Vec<Option<serde_json::Value>> = Vec::new();
        parse_values(text, &mut budget, &mut |slot, v| {
            out.resize(slot, None);
            out.push(Some(v));
            Ok(())
        })
        .map_err(|(_, m)| m)?;
        Ok(out)
    }

    fn expand(text: &str) -> Result<Vec<Option<serde_json::Value>>, String> {
        expand_with(text, &Limits::default())
    }

    #[test]
    fn values_notation() {
        let v = expand(r#"5 12x2 _ _x2 1+2x3 10-2.5x2 true "a b"x2 -3 1e2"#).unwrap();
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
        let e = expand("1 2 abc").unwrap_err();
        assert!(e.starts_with("token 3 `abc`"), "{e}");
        assert!(expand("1+2").unwrap_err().contains("needs a count"));
        assert!(expand("\"open").unwrap_err().contains("unclosed"));
        assert!(expand("_x99999999999").unwrap_err().contains("above"));
        assert!(
            expand("_x900000 _x900000")
                .unwrap_err()
                .contains("Limits::max_series_len")
        );
        assert!(
            expand("1x90000 1x90000")
                .unwrap_err()
                .contains("Limits::max_samples_per_test")
        );
        assert!(
            expand("0+9223372036854775807x3")
                .unwrap_err()
                .contains("overflows")
        );
        assert!(
            expand("0-9223372036854775807x3")
                .unwrap_err()
                .contains("overflows")
        );
    }

    #[test]
    fn strings_are_budgeted_before_they_are_copied() {
        let big = format!("\"{}\"x10000", "a".repeat(10_000));
        let e = expand(&big).unwrap_err();
        assert!(e.contains("Limits::max_sample_bytes_per_test"), "{e}");
        let row7 = format!("\"{}\"x1000000", "a".repeat(10_000));
        let e = expand(&row7).unwrap_err();
        assert!(e.contains("Limits::max_samples_per_test"), "{e}");
        let huge = format!("\"{}\"", "a".repeat(70_000));
        assert!(
            expand(&huge)
                .unwrap_err()
                .contains("Limits::max_string_bytes")
        );
        let small = Limits {
            max_sample_bytes_per_test: 1000,
            ..Limits::default()
        };
        assert!(expand_with("\"abc\"x10", &small).is_ok());
        assert!(expand_with("\"abc\"x20", &small).is_err());
    }
}
