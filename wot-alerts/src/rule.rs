//! The rule model: rules, conditions, severities and action definitions.
//!
//! Everything here is plain data that deserializes from YAML, TOML or JSON (see
//! [`crate::RuleSet`]) and can also be built in Rust. Values that need checking beyond their type
//! (regular expressions, templates, finite numbers, durations) are checked while deserializing or
//! by [`Rule::validate`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::limits::is_control;
use crate::template::Template;

/// Longest accepted regular expression source, in bytes.
pub(crate) const MAX_REGEX_LEN: usize = 4096;
/// Compiled-size limit handed to the `regex` crate (bytes).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The summary of rules that give none.
const DEFAULT_SUMMARY: &str = "{{rule}}: {{thing}} {{property}} is {{value}} {{unit}}";
/// The summary of `no_data` rules that give none: there is no value to show.
const DEFAULT_NO_DATA_SUMMARY: &str =
    "{{rule}}: no data from {{thing}} {{property}} for {{no_data_for}}";
/// Longest accepted duration: 100 years.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How serious an alert is. Ordered: `Info < Warning < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Severity {
    /// For information only.
    Info,
    /// Needs attention (the default).
    #[default]
    Warning,
    /// Needs action now.
    Critical,
}

impl Severity {
    /// The lower-case name used in rule files and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A number, string or boolean to compare a value with (`eq` and `ne`).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// Compared numerically with number values.
    Number(f64),
    /// Compared with string values.
    String(String),
    /// Compared with boolean values.
    Bool(bool),
}

impl Scalar {
    pub(crate) fn matches(&self, value: &serde_json::Value) -> bool {
        match (self, value) {
            (Scalar::Number(n), serde_json::Value::Number(v)) => v.as_f64() == Some(*n),
            (Scalar::String(s), serde_json::Value::String(v)) => s == v,
            (Scalar::Bool(b), serde_json::Value::Bool(v)) => b == v,
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a finite number, a string or a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                finite_number(v).map(Scalar::Number)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::String(v.to_owned()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

fn finite_number<E: de::Error>(v: f64) -> Result<f64, E> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(E::custom(format_args!("number {v} is not finite")))
    }
}

fn de_finite<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    finite_number(f64::deserialize(deserializer)?)
}

fn de_range<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[f64; 2], D::Error> {
    let [low, high] = <[f64; 2]>::deserialize(deserializer)?;
    let (low, high) = (finite_number(low)?, finite_number(high)?);
    if low > high {
        return Err(de::Error::custom(format_args!(
            "range [{low}, {high}] has its low end above its high end"
        )));
    }
    Ok([low, high])
}

/// Parses a duration such as `30s`, `1m`, `1h 30m` or `0s` (humantime syntax, at most 100 years).
///
/// # Errors
/// Returns a readable message when the text is not a duration or is too long.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?}: {e} (write e.g. 30s, 1m, 2h)"))?;
    if d > MAX_DURATION {
        return Err(format!("duration {text:?} is longer than 100 years"));
    }
    Ok(d)
}

pub(crate) fn de_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    struct DurationVisitor;
    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"30s\" or \"2m\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            if v == 0 {
                Ok(Duration::ZERO)
            } else {
                Err(E::custom(format_args!(
                    "a bare number {v} is not a duration: add a unit, e.g. \"{v}s\""
                )))
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom("a duration cannot be negative")),
            }
        }
    }
    deserializer.deserialize_any(DurationVisitor)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    de_duration(deserializer).map(Some)
}

/// A regular expression compiled with size limits (pattern at most 4096 bytes, compiled program
/// at most 1 MiB). The `regex` crate matches in linear time, so no pattern can make matching hang.
#[derive(Clone)]
pub struct Pattern(Regex);

impl Pattern {
    /// Compiles `pattern` with the limits above.
    ///
    /// # Errors
    /// An [`ErrorKind::Rule`](crate::ErrorKind::Rule) error for the field `matches` when the
    /// pattern is too long, invalid or too large once compiled.
    pub fn new(pattern: &str) -> Result<Self, Error> {
        let err = |m: String| Error::value("matches", m);
        if pattern.len() > MAX_REGEX_LEN {
            return Err(err(format!(
                "regular expression is {} bytes long; at most {MAX_REGEX_LEN} are allowed",
                pattern.len()
            )));
        }
        // Generated rule sets repeat the same few patterns many times; compiling each once per
        // thread keeps loading them linear. A `Regex` clone shares the compiled program.
        thread_local! {
            static COMPILED: std::cell::RefCell<std::collections::HashMap<String, Regex>> =
                std::cell::RefCell::default();
        }
        if let Some(re) = COMPILED.with(|c| c.borrow().get(pattern).cloned()) {
            return Ok(Pattern(re));
        }
        let re = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|e| err(format!("invalid regular expression: {e}")))?;
        COMPILED.with(|c| {
            let mut cache = c.borrow_mut();
            if cache.len() >= 256 {
                cache.clear();
            }
            cache.insert(pattern.to_owned(), re.clone());
        });
        Ok(Pattern(re))
    }

    /// The pattern's source text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Pattern::new(&text).map_err(|e| de::Error::custom(e.message()))
    }
}

/// A numeric comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
}

impl Compare {
    pub(crate) fn apply(self, value: f64, threshold: f64) -> bool {
        match self {
            Compare::Gt => value > threshold,
            Compare::Ge => value >= threshold,
            Compare::Lt => value < threshold,
            Compare::Le => value <= threshold,
        }
    }
}

/// A condition on the rate of change of a numeric value: `rate: { gt: 0.5, per: 1m }`.
///
/// The rate is the change between the oldest and the newest sample received within the last
/// `per`, divided by the time between them and expressed per `per`. It needs two samples at
/// different times within the window; with fewer the condition does not hold.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawRate")]
pub struct RateCondition {
    /// The comparison applied to the rate.
    pub compare: Compare,
    /// The threshold, in value units per `per`.
    pub threshold: f64,
    /// The window and the time unit of the rate (default 1 minute).
    pub per: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    #[serde(default, deserialize_with = "de_opt_finite")]
    gt: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_finite")]
    ge: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_finite")]
    lt: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_finite")]
    le: Option<f64>,
    #[serde(default, deserialize_with = "de_opt_duration")]
    per: Option<Duration>,
}

fn de_opt_finite<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    de_finite(deserializer).map(Some)
}

impl TryFrom<RawRate> for RateCondition {
    type Error = String;
    fn try_from(raw: RawRate) -> Result<Self, String> {
        let ops = [
            (Compare::Gt, raw.gt),
            (Compare::Ge, raw.ge),
            (Compare::Lt, raw.lt),
            (Compare::Le, raw.le),
        ];
        let mut given = ops.iter().filter_map(|(c, t)| t.map(|t| (*c, t)));
        let (compare, threshold) = given
            .next()
            .ok_or("rate needs one of gt, ge, lt, le, e.g. { gt: 0.5, per: 1m }")?;
        if given.next().is_some() {
            return Err("rate takes exactly one of gt, ge, lt, le".into());
        }
        let per = raw.per.unwrap_or(Duration::from_secs(60));
        if per.is_zero() {
            return Err("rate `per` must be longer than 0s".into());
        }
        Ok(RateCondition {
            compare,
            threshold,
            per,
        })
    }
}

/// What a rule tests. In files it is written as a map with one key, e.g. `{ gt: 8 }`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Condition {
    /// `gt`: the value is a number greater than this.
    Gt(f64),
    /// `ge`: the value is a number greater than or equal to this.
    Ge(f64),
    /// `lt`: the value is a number less than this.
    Lt(f64),
    /// `le`: the value is a number less than or equal to this.
    Le(f64),
    /// `eq`: the value equals this number, string or boolean.
    Eq(Scalar),
    /// `ne`: the value is present and does not equal this number, string or boolean.
    Ne(Scalar),
    /// `between`: the value is a number within `[low, high]`, inclusive.
    Between([f64; 2]),
    /// `outside`: the value is a number outside `[low, high]` (below `low` or above `high`).
    Outside([f64; 2]),
    /// `matches`: the value is a string matching this regular expression (anywhere in it,
    /// unless anchored with `^`/`$`).
    Matches(Pattern),
    /// `changed`: the latest value differs from the one before it. Only `true` is accepted.
    Changed(bool),
    /// `rate`: the value's rate of change compares as given.
    Rate(RateCondition),
    /// `no_data`: no update arrived for this long.
    NoData(Duration),
}

const CONDITION_KEYS: &[&str] = &[
    "gt", "ge", "lt", "le", "eq", "ne", "between", "outside", "matches", "changed", "rate",
    "no_data",
];

struct Finite(f64);
impl<'de> Deserialize<'de> for Finite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_finite(d).map(Finite)
    }
}
struct Range([f64; 2]);
impl<'de> Deserialize<'de> for Range {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_range(d).map(Range)
    }
}
struct Dur(Duration);
impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_duration(d).map(Dur)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConditionVisitor;
        impl<'de> Visitor<'de> for ConditionVisitor {
            type Value = Condition;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map with one key: gt, ge, lt, le, eq, ne, between, outside, matches, changed, rate or no_data")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Condition, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "empty condition: give one of gt, ge, lt, le, eq, ne, between, outside, matches, changed, rate, no_data",
                    ));
                };
                let condition = match key.as_str() {
                    "gt" => Condition::Gt(map.next_value::<Finite>()?.0),
                    "ge" => Condition::Ge(map.next_value::<Finite>()?.0),
                    "lt" => Condition::Lt(map.next_value::<Finite>()?.0),
                    "le" => Condition::Le(map.next_value::<Finite>()?.0),
                    "eq" => Condition::Eq(map.next_value()?),
                    "ne" => Condition::Ne(map.next_value()?),
                    "between" => Condition::Between(map.next_value::<Range>()?.0),
                    "outside" => Condition::Outside(map.next_value::<Range>()?.0),
                    "matches" => Condition::Matches(map.next_value()?),
                    "changed" => Condition::Changed(map.next_value()?),
                    "rate" => Condition::Rate(map.next_value()?),
                    "no_data" => Condition::NoData(map.next_value::<Dur>()?.0),
                    other => return Err(de::Error::unknown_variant(other, CONDITION_KEYS)),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format_args!(
                        "a condition has exactly one key, but `{extra}` follows `{key}`; \
                         use `escalate` or separate rules to combine conditions"
                    )));
                }
                Ok(condition)
            }
        }
        deserializer.deserialize_map(ConditionVisitor)
    }
}

impl Condition {
    /// Whether the condition compares numbers (and so needs a number or integer property).
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Condition::Gt(_)
                | Condition::Ge(_)
                | Condition::Lt(_)
                | Condition::Le(_)
                | Condition::Between(_)
                | Condition::Outside(_)
                | Condition::Rate(_)
        ) || matches!(
            self,
            Condition::Eq(Scalar::Number(_)) | Condition::Ne(Scalar::Number(_))
        )
    }

    /// The numeric thresholds the condition compares values with (empty for non-numeric ones;
    /// a rate threshold is not a value, so it is not listed).
    pub fn thresholds(&self) -> Vec<f64> {
        match self {
            Condition::Gt(t) | Condition::Ge(t) | Condition::Lt(t) | Condition::Le(t) => {
                vec![*t]
            }
            Condition::Eq(Scalar::Number(t)) | Condition::Ne(Scalar::Number(t)) => vec![*t],
            Condition::Between([a, b]) | Condition::Outside([a, b]) => vec![*a, *b],
            _ => Vec::new(),
        }
    }

    fn check(&self) -> Result<(), String> {
        match self {
            Condition::Changed(false) => Err("`changed` only accepts `true`".into()),
            Condition::NoData(d) if d.is_zero() => Err("`no_data` must be longer than 0s".into()),
            _ => Ok(()),
        }
    }
}

/// A stronger condition that raises an alert's severity while it holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// While this holds on a firing alert, its severity is at least `severity`.
    pub condition: Condition,
    /// The severity to raise to.
    pub severity: Severity,
}

/// One alert rule. See `docs/alerts.md` for the semantics of each field.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use wot_alerts::{Condition, Rule, Severity};
///
/// let mut rule = Rule::new("fridge-overheat", "fridge-1", "temperature", Condition::Gt(8.0));
/// rule.hold_for = Duration::from_secs(30);
/// rule.clear = Some(Condition::Le(7.0));
/// rule.severity = Severity::Warning;
/// rule.summary = Some("{{thing}} is at {{value}} {{unit}}".into());
/// assert!(rule.validate().is_ok());
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Rule {
    /// Unique identifier; also the `alertname` label.
    pub id: String,
    /// A thing id, or `*` for every thing that reports the property.
    pub thing: String,
    /// The property name.
    pub property: String,
    /// Optional JSON pointer (e.g. `/value`) into an object value; default: the whole value.
    #[serde(default)]
    pub pointer: Option<String>,
    /// When the alert is raised.
    pub condition: Condition,
    /// `for`: how long the condition must hold before the alert fires (default 0s).
    #[serde(rename = "for", default, deserialize_with = "de_duration")]
    pub hold_for: Duration,
    /// Optional hysteresis: a firing alert clears only when this holds (default: when
    /// `condition` no longer holds).
    #[serde(default)]
    pub clear: Option<Condition>,
    /// How long a firing alert stays firing after its clearing began (default 0s).
    #[serde(default, deserialize_with = "de_duration")]
    pub keep_firing_for: Duration,
    /// Severity when firing (default `warning`).
    #[serde(default)]
    pub severity: Severity,
    /// Stronger conditions that raise the severity while they hold (default none).
    #[serde(default)]
    pub escalate: Vec<Escalation>,
    /// Extra labels attached to the alert (default none).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Summary template with `{{thing}}`, `{{property}}`, `{{rule}}`, `{{value}}`, `{{unit}}`,
    /// `{{severity}}`, `{{no_data_for}}` (the latest gap between updates, e.g. `5m`) and
    /// `{{labels.NAME}}`. Default: `{{rule}}: {{thing}} {{property}} is {{value}} {{unit}}`,
    /// or for a `no_data` condition `{{rule}}: no data from {{thing}} {{property}} for
    /// {{no_data_for}}`.
    #[serde(default)]
    pub summary: Option<String>,
    /// Repeat the notification of a firing, unacknowledged alert this often, at least 1 s
    /// (default never).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub repeat_interval: Option<Duration>,
    /// Names of the actions to run on this rule's notifications (default none).
    #[serde(default)]
    pub actions: Vec<String>,
}

impl Rule {
    /// A rule with the given identity and condition, and every other field at its default
    /// (`for` 0s, no `clear`, `keep_firing_for` 0s, severity `warning`, no escalation, labels,
    /// summary, repeat or actions).
    pub fn new(
        id: impl Into<String>,
        thing: impl Into<String>,
        property: impl Into<String>,
        condition: Condition,
    ) -> Self {
        Rule {
            id: id.into(),
            thing: thing.into(),
            property: property.into(),
            pointer: None,
            condition,
            hold_for: Duration::ZERO,
            clear: None,
            keep_firing_for: Duration::ZERO,
            severity: Severity::Warning,
            escalate: Vec::new(),
            labels: BTreeMap::new(),
            summary: None,
            repeat_interval: None,
            actions: Vec::new(),
        }
    }

    /// Checks what types cannot: non-empty names without control characters, labels and
    /// action names without control characters, a valid pointer and template (only tab and
    /// newline as control characters), `changed: true`, durations within 100 years, a
    /// `repeat_interval` of at least 1 s.
    ///
    /// # Errors
    /// An [`ErrorKind::Rule`](crate::ErrorKind::Rule) error for the first problem found,
    /// naming the rule and the field.
    pub fn validate(&self) -> Result<(), Error> {
        self.compile_summary().map(|_| ())
    }

    pub(crate) fn compile_summary(&self) -> Result<Template, Error> {
        let err = |field: &str, message: String| Error::rule_field(&self.id, field, message);
        for (field, value) in [
            ("id", &self.id),
            ("thing", &self.thing),
            ("property", &self.property),
        ] {
            if value.trim().is_empty() {
                return Err(err(field, "must not be empty".into()));
            }
        }
        // Names and labels end up in terminals, logs and webhook receivers: no control
        // characters (escape sequences, carriage returns) in them.
        let names = [
            ("id", &self.id),
            ("thing", &self.thing),
            ("property", &self.property),
        ];
        let pointer = self.pointer.iter().map(|p| ("pointer", p));
        let labels = self
            .labels
            .iter()
            .flat_map(|(k, v)| [("labels", k), ("labels", v)]);
        let actions = self.actions.iter().map(|a| ("actions", a));
        for (field, value) in names
            .into_iter()
            .chain(pointer)
            .chain(labels)
            .chain(actions)
        {
            if let Some(c) = value.chars().find(|c| is_control(*c)) {
                return Err(err(
                    field,
                    format!(
                        "contains the control character {}; names and labels must be printable",
                        c.escape_default()
                    ),
                ));
            }
        }
        if let Some(c) = self.summary.as_deref().and_then(|s| {
            s.chars()
                .find(|c| is_control(*c) && !matches!(c, '\n' | '\t'))
        }) {
            return Err(err(
                "summary",
                format!(
                    "contains the control character {}; only tab and newline are allowed",
                    c.escape_default()
                ),
            ));
        }
        if let Some(p) = &self.pointer
            && !p.is_empty()
            && !p.starts_with('/')
        {
            return Err(err(
                "pointer",
                format!("JSON pointer {p:?} must be empty or start with '/'"),
            ));
        }
        self.condition.check().map_err(|m| err("condition", m))?;
        if let Some(c) = &self.clear {
            c.check().map_err(|m| err("clear", m))?;
        }
        for (i, e) in self.escalate.iter().enumerate() {
            e.condition
                .check()
                .map_err(|m| err(&format!("escalate[{i}].condition"), m))?;
        }
        for (field, d) in [
            ("for", self.hold_for),
            ("keep_firing_for", self.keep_firing_for),
        ] {
            if d > MAX_DURATION {
                return Err(err(field, "is longer than 100 years".into()));
            }
        }
        if let Some(r) = self.repeat_interval
            && (r < Duration::from_secs(1) || r > MAX_DURATION)
        {
            return Err(err(
                "repeat_interval",
                "must be at least 1s and at most 100 years".into(),
            ));
        }
        let default = match self.condition {
            Condition::NoData(_) => DEFAULT_NO_DATA_SUMMARY,
            _ => DEFAULT_SUMMARY,
        };
        let text = self.summary.as_deref().unwrap_or(default);
        Template::parse(text).map_err(|m| err("summary", m))
    }

    /// The longest `per` among the rule's rate conditions, if any.
    pub(crate) fn rate_window(&self) -> Option<Duration> {
        self.conditions()
            .filter_map(|c| match c {
                Condition::Rate(r) => Some(r.per),
                _ => None,
            })
            .max()
    }

    /// The condition, the clear condition and the escalation conditions.
    pub(crate) fn conditions(&self) -> impl Iterator<Item = &Condition> {
        std::iter::once(&self.condition)
            .chain(self.clear.as_ref())
            .chain(self.escalate.iter().map(|e| &e.condition))
    }
}

/// Which notifications an action runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NotificationKind {
    /// The alert started firing (or a repeat of that, see `Notification::repeat`).
    Fired,
    /// A firing alert's severity changed through `escalate`.
    SeverityChanged,
    /// The alert resolved.
    Resolved,
    /// Someone acknowledged the firing alert.
    Acknowledged,
}

impl NotificationKind {
    /// The snake-case name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Fired => "fired",
            NotificationKind::SeverityChanged => "severity_changed",
            NotificationKind::Resolved => "resolved",
            NotificationKind::Acknowledged => "acknowledged",
        }
    }
}

impl fmt::Display for NotificationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook URL. Its `Debug` and `Display` show only scheme, host, port and path, so that tokens
/// in the query or user info never reach logs or error text.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// Parses an `http` or `https` URL.
    ///
    /// # Errors
    /// An [`ErrorKind::Rule`](crate::ErrorKind::Rule) error for the field `url` when the
    /// text is not an absolute http(s) URL.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let url =
            url::Url::parse(text).map_err(|e| Error::value("url", format!("invalid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::value(
                "url",
                format!(
                    "webhook URL scheme must be http or https, not {:?}",
                    url.scheme()
                ),
            ));
        }
        Ok(WebhookUrl(url))
    }

    /// The full URL, secrets included.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.0;
        write!(f, "{}://{}", u.scheme(), u.host_str().unwrap_or(""))?;
        if let Some(port) = u.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(u.path())
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({self})")
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        WebhookUrl::parse(&text).map_err(|e| de::Error::custom(e.message()))
    }
}

/// Request headers for a webhook, checked when loaded. `Debug` shows the names only: the
/// values are usually credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebhookHeaders(Vec<(http::HeaderName, http::HeaderValue)>);

impl WebhookHeaders {
    /// No headers.
    pub fn new() -> Self {
        WebhookHeaders::default()
    }

    /// Adds a header (replacing an earlier one of the same name).
    ///
    /// # Errors
    /// An [`ErrorKind::Rule`](crate::ErrorKind::Rule) error for the field `headers` (without
    /// the value) when the name or value is not valid in HTTP.
    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), Error> {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::value("headers", format!("{name:?} is not a valid header name")))?;
        let mut value = http::HeaderValue::from_str(value).map_err(|_| {
            Error::value(
                "headers",
                format!("the value of header `{name}` is not valid in HTTP"),
            )
        })?;
        value.set_sensitive(true);
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, value));
        Ok(())
    }

    /// The header names, in the order given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// The headers, to put on a request.
    #[cfg(feature = "http-actions")]
    pub(crate) fn iter(&self) -> impl Iterator<Item = &(http::HeaderName, http::HeaderValue)> {
        self.0.iter()
    }
}

impl fmt::Debug for WebhookHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl<'de> Deserialize<'de> for WebhookHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        let mut headers = WebhookHeaders::new();
        for (name, value) in &map {
            headers
                .insert(name, value)
                .map_err(|e| de::Error::custom(e.message()))?;
        }
        Ok(headers)
    }
}

/// An action defined beside the rules, referred to by name from [`Rule::actions`].
///
/// Each kind takes an optional `on` list of notification kinds it runs on; the default is every
/// kind, except for `invoke_action`, which runs on `fired` only.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ActionSpec {
    /// Write the notification to the `tracing` log. The name `log` is always defined.
    Log {
        /// Notification kinds to run on (default all).
        #[serde(default)]
        on: Option<Vec<NotificationKind>>,
    },
    /// Call the user callback registered under the action's name with the manager.
    Callback {
        /// Notification kinds to run on (default all).
        #[serde(default)]
        on: Option<Vec<NotificationKind>>,
    },
    /// POST a Prometheus Alertmanager webhook (version 4) payload.
    ///
    /// The request, its credentials included (the URL's user info and query, `headers`), goes
    /// to the URL's origin only: a redirect to another scheme, host or port is refused and
    /// the attempt fails (see `same_origin_redirects`). The response body is not read.
    Webhook {
        /// Where to POST.
        url: WebhookUrl,
        /// Extra request headers, e.g. `Authorization: Bearer ...` (default none). Their
        /// values are treated as secrets: not shown by `Debug`, in logs or in errors.
        #[serde(default)]
        headers: WebhookHeaders,
        /// `externalURL` in the payload (default empty).
        #[serde(default)]
        external_url: Option<String>,
        /// Notification kinds to run on (default all).
        #[serde(default)]
        on: Option<Vec<NotificationKind>>,
    },
    /// Invoke an action of a Thing through its TD (POST of `input` as JSON to the action's form).
    InvokeAction {
        /// The thing id whose TD holds the action.
        thing: String,
        /// The action name.
        action: String,
        /// The JSON input to send (default none: an empty body).
        #[serde(default)]
        input: Option<serde_json::Value>,
        /// Notification kinds to run on (default `[fired]`).
        #[serde(default)]
        on: Option<Vec<NotificationKind>>,
    },
}

impl ActionSpec {
    /// Whether this action runs on notifications of `kind`.
    pub fn runs_on(&self, kind: NotificationKind) -> bool {
        let (on, default_all) = match self {
            ActionSpec::Log { on } | ActionSpec::Callback { on } => (on, true),
            ActionSpec::Webhook { on, .. } => (on, true),
            ActionSpec::InvokeAction { on, .. } => (on, false),
        };
        match on {
            Some(kinds) => kinds.contains(&kind),
            None => default_all || kind == NotificationKind::Fired,
        }
    }
}
