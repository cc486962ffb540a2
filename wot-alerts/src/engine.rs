//! The pure alert engine: no I/O, time passed in by the caller.
//!
//! # States of one alert, per (rule, thing)
//!
//! ```text
//!              condition holds                 held for `for`
//!  inactive ───────────────────▶ pending ─────────────────────────▶ firing
//!     ▲                             │                                 │ clearing holds
//!     │ condition stops holding     │                                 │ (`clear`, or the
//!     └─────────────────────────────┘                                 │  condition stopped)
//!     ▲                                                               ▼
//!     └──────────────── resolved ◀── for `keep_firing_for` ── firing, resolving
//!                                    (back to firing if clearing stops holding)
//! ```
//!
//! The engine is evaluated for a (rule, thing) pair when an update for it arrives and when one of
//! its deadlines passes. Deadlines (end of `for`, end of `keep_firing_for`, `no_data` expiry, a
//! sample leaving a `rate` window, the next repeat) sit in one binary heap, so a tick costs time
//! for the due deadlines only. Entries are invalidated lazily: each series remembers the one
//! deadline it scheduled, and heap entries that do not match it are skipped.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use wot_td::Data;

use crate::error::{Error, ErrorKind};
use crate::rule::{Condition, NotificationKind, Rule, Severity};
use crate::state::{
    AlertRecord, ENGINE_STATE_VERSION, EngineState, MAX_SAVED_TIME_AHEAD, RestoreReport, SeriesKey,
    SeriesState, StateChanges, StateError,
};
use crate::template::{Template, Vars};

/// Most samples a series keeps for `rate` conditions; older ones are dropped first.
const MAX_RATE_SAMPLES: usize = 4096;
/// Default number of resolved alerts kept in the history.
const DEFAULT_HISTORY_LIMIT: usize = 1000;
/// Default bytes of resolved alerts kept in the history.
const DEFAULT_HISTORY_BYTES: usize = 4 << 20;
/// Default number of (rule, thing) series the engine tracks.
const DEFAULT_SERIES_LIMIT: usize = 100_000;

/// The engine's hash maps, looked up on every update. Their keys (thing ids, property names)
/// come from Things, so the hasher is seeded per process: fast, and colliding keys cannot be
/// chosen in advance.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One new value of one property of one thing: the engine's only input besides time.
///
/// The thing id and the property name are shared text (`Arc<str>`): an observer that
/// shares them among its updates (as `wot-events` does) hands them over without a copy.
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyUpdate {
    /// The thing's id (as in its TD).
    pub thing: Arc<str>,
    /// The property name.
    pub property: Arc<str>,
    /// The new value, as JSON text parsed on first use (see [`Data`]): a rule with a
    /// pointer reads its member from the text.
    pub value: Data,
}

impl PropertyUpdate {
    /// An update of `thing`'s `property` to `value`.
    pub fn new(
        thing: impl Into<Arc<str>>,
        property: impl Into<Arc<str>>,
        value: impl Into<Data>,
    ) -> Self {
        PropertyUpdate {
            thing: thing.into(),
            property: property.into(),
            value: value.into(),
        }
    }
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertState {
    /// The condition holds but not yet for `for`.
    Pending,
    /// The alert fires (possibly within `keep_firing_for` after clearing began).
    Firing,
    /// The alert is over; it is in the history.
    Resolved,
}

impl AlertState {
    /// The lower-case name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// Who acknowledged a firing alert, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// Who acknowledged.
    pub by: String,
    /// When.
    pub at: SystemTime,
    /// Optional comment.
    pub comment: Option<String>,
}

/// One alert of one rule for one thing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Alert {
    /// Unique within the engine, increasing.
    pub id: u64,
    /// The rule's id.
    pub rule: String,
    /// The thing's id.
    pub thing: String,
    /// The property.
    pub property: String,
    /// The current state.
    pub state: AlertState,
    /// The current severity (the rule's, raised by escalations that hold).
    pub severity: Severity,
    /// Labels: the rule's, plus `alertname` (rule id), `thing`, `property` and `severity`.
    pub labels: BTreeMap<String, String>,
    /// The latest value seen for the rule's property (after its pointer).
    pub value: Option<serde_json::Value>,
    /// The rendered summary as of the latest notification or evaluation.
    pub summary: String,
    /// When the condition started holding.
    pub active_since: SystemTime,
    /// When the alert started firing.
    pub fired_at: Option<SystemTime>,
    /// When the alert resolved.
    pub resolved_at: Option<SystemTime>,
    /// The acknowledgement of a firing alert.
    pub acknowledgement: Option<Acknowledgement>,
}

/// Something worth telling about an alert. Silenced notifications are not produced.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Notification {
    /// Identifies this notification, also across restarts (see [`NotificationId`]). Webhooks send it so that a receiver can drop a repeat.
    pub id: NotificationId,
    /// What happened.
    pub kind: NotificationKind,
    /// When (engine time).
    pub at: SystemTime,
    /// For a repeated `fired` notification, how many repeats so far (1, 2, ...); else 0.
    pub repeat: u32,
    /// For `severity_changed`, the severity before.
    pub previous_severity: Option<Severity>,
    /// The alert as of this notification: shared with the engine until the alert next
    /// changes, and, for `resolved`, with [`Engine::history`].
    #[serde(serialize_with = "serialize_shared")]
    pub alert: Arc<Alert>,
    /// The rule that raised it.
    #[serde(skip)]
    pub rule: Arc<Rule>,
    /// The unit of the property, from the TD, when known.
    pub unit: Option<String>,
}

/// Serializes the alert a notification shares as the alert itself.
fn serialize_shared<S: serde::Serializer>(alert: &Arc<Alert>, s: S) -> Result<S::Ok, S::Error> {
    Alert::serialize(alert, s)
}

impl Notification {
    /// The value of the property at the notification.
    pub fn value(&self) -> Option<&serde_json::Value> {
        self.alert.value.as_ref()
    }

    /// The rendered summary.
    pub fn summary(&self) -> &str {
        &self.alert.summary
    }
}

/// A silence: notifications of matching alerts are not produced between `starts_at` and
/// `ends_at`. Alert states are not affected. A field left `None` (or empty labels) matches all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Silence {
    /// Match this rule id only.
    pub rule: Option<String>,
    /// Match this thing id only.
    pub thing: Option<String>,
    /// Match this severity only.
    pub severity: Option<Severity>,
    /// Match alerts having all these labels with these values.
    pub labels: BTreeMap<String, String>,
    /// Start, inclusive.
    pub starts_at: SystemTime,
    /// End, exclusive.
    pub ends_at: SystemTime,
    /// Why (for people).
    pub comment: Option<String>,
}

impl Silence {
    /// A silence of every alert between `starts_at` and `ends_at`; narrow it with the setters.
    pub fn new(starts_at: SystemTime, ends_at: SystemTime) -> Self {
        Silence {
            rule: None,
            thing: None,
            severity: None,
            labels: BTreeMap::new(),
            starts_at,
            ends_at,
            comment: None,
        }
    }

    /// Only alerts of this rule.
    #[must_use]
    pub fn rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// Only alerts of this thing.
    #[must_use]
    pub fn thing(mut self, thing: impl Into<String>) -> Self {
        self.thing = Some(thing.into());
        self
    }

    /// Only alerts of this severity.
    #[must_use]
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }

    /// Only alerts with this label value (may be given several times).
    #[must_use]
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(name.into(), value.into());
        self
    }

    /// A comment for people.
    #[must_use]
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Whether this silence suppresses notifications of `alert` at time `at`.
    pub fn matches(&self, alert: &Alert, at: SystemTime) -> bool {
        self.starts_at <= at
            && at < self.ends_at
            && self.rule.as_ref().is_none_or(|r| *r == alert.rule)
            && self.thing.as_ref().is_none_or(|t| *t == alert.thing)
            && self.severity.is_none_or(|s| s == alert.severity)
            && self
                .labels
                .iter()
                .all(|(k, v)| alert.labels.get(k) == Some(v))
    }
}

/// Identifies a silence within an engine (kept across restores). Serialized as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SilenceId(u64);

impl SilenceId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for SilenceId {
    fn from(id: u64) -> Self {
        SilenceId(id)
    }
}

impl std::fmt::Display for SilenceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifies a notification: the engine instance (random, chosen by each new engine, restored
/// or not) and a sequence number. An outbox entry keeps the id of its notification, so a resent
/// action carries the same id as its first attempt. Shown and serialized as
/// `<instance as 16 hex digits>-<sequence>`, e.g. `5f0c1e2d3a4b6978-42`.
///
/// ```
/// use wot_alerts::NotificationId;
///
/// let id: NotificationId = "5f0c1e2d3a4b6978-42".parse()?;
/// assert_eq!(id.sequence(), 42);
/// assert_eq!(id.to_string(), "5f0c1e2d3a4b6978-42");
/// # Ok::<(), wot_alerts::StateError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationId {
    instance: u64,
    sequence: u64,
}

impl NotificationId {
    /// The id of the `sequence`th notification of engine `instance`.
    pub fn new(instance: u64, sequence: u64) -> Self {
        NotificationId { instance, sequence }
    }

    /// The engine instance.
    pub fn instance(self) -> u64 {
        self.instance
    }

    /// The sequence number within the instance, from 1.
    pub fn sequence(self) -> u64 {
        self.sequence
    }
}

impl std::fmt::Display for NotificationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}-{}", self.instance, self.sequence)
    }
}

impl std::str::FromStr for NotificationId {
    type Err = StateError;

    fn from_str(s: &str) -> Result<Self, StateError> {
        let bad = || StateError::Malformed {
            path: "notification id".into(),
            message: format!(
                "expected <16 hex digits>-<number>, found {:?}",
                crate::escape_controls(&s.chars().take(64).collect::<String>())
            ),
        };
        let (instance, sequence) = s.split_once('-').ok_or_else(bad)?;
        if instance.len() != 16 {
            return Err(bad());
        }
        Ok(NotificationId {
            instance: u64::from_str_radix(instance, 16).map_err(|_| bad())?,
            sequence: sequence.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for NotificationId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NotificationId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The alert engine. Feed it updates and ticks with the current time; it returns notifications.
///
/// Time never goes backwards inside the engine: a time earlier than one already seen is taken as
/// the later one.
///
/// # Examples
/// ```
/// use std::time::{Duration, SystemTime};
/// use wot_alerts::{Condition, Engine, NotificationKind, PropertyUpdate, Rule};
///
/// let mut rule = Rule::new("hot", "fridge-1", "temperature", Condition::Gt(8.0));
/// rule.hold_for = Duration::from_secs(30);
/// let mut engine = Engine::new();
/// let t0 = SystemTime::UNIX_EPOCH;
/// engine.add_rule(rule, t0)?;
///
/// let hot = PropertyUpdate::new("fridge-1", "temperature", serde_json::json!(12));
/// assert!(engine.update(t0, &hot).is_empty()); // pending
/// assert_eq!(engine.next_deadline(), Some(t0 + Duration::from_secs(30)));
/// let fired = engine.tick(t0 + Duration::from_secs(30)); // no new update needed
/// assert_eq!(fired[0].kind, NotificationKind::Fired);
/// # Ok::<(), wot_alerts::Error>(())
/// ```
#[derive(Debug)]
pub struct Engine {
    slots: Vec<Slot>,
    by_id: FastMap<String, usize>,
    /// (property, thing) → slots of the rules on that thing's property: one lookup per update.
    named: FastMap<(String, String), Vec<usize>>,
    /// property → slots of the `*` rules on it.
    any: FastMap<String, Vec<usize>>,
    core: Core,
}

/// A (property, thing) pair as a key of [`Engine::named`], looked up without building a pair
/// of owned strings: the owned pair and the borrowed one hash and compare alike.
trait PairKey {
    fn pair(&self) -> (&str, &str);
}

impl PairKey for (String, String) {
    fn pair(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl PairKey for (&str, &str) {
    fn pair(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> std::borrow::Borrow<dyn PairKey + 'a> for (String, String) {
    fn borrow(&self) -> &(dyn PairKey + 'a) {
        self
    }
}

impl std::hash::Hash for dyn PairKey + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As the tuple `(String, String)` hashes.
        let (a, b) = self.pair();
        a.hash(state);
        b.hash(state);
    }
}

impl PartialEq for dyn PairKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.pair() == other.pair()
    }
}

impl Eq for dyn PairKey + '_ {}

#[derive(Debug)]
struct Slot {
    generation: u64,
    rule: Option<CompiledRule>,
}

#[derive(Debug)]
struct CompiledRule {
    rule: Arc<Rule>,
    /// The rule's JSON pointer split into unescaped tokens (`None`: the whole value).
    pointer: Option<Vec<String>>,
    summary: Template,
    /// The labels of the rule's alerts, but for `thing` when the rule watches `*`.
    labels: BTreeMap<String, String>,
    /// Whether the rule watches one named thing (not `*`).
    named: bool,
    rate_window: Option<Duration>,
    /// Whether the rule has anything that may fall due without an update (see [`is_timed`]).
    timed: bool,
    /// Keyed by thing id, sharing the text of the series' own `thing`.
    series: FastMap<Arc<str>, Series>,
}

/// What the engine knows about one (rule, thing).
#[derive(Debug)]
struct Series {
    thing: Arc<str>,
    value: Option<serde_json::Value>,
    changed: bool,
    /// Time of the latest update, or when watching started (for `no_data`).
    last_update: SystemTime,
    /// `last_update` before the latest update: the start of the gap it ended.
    previous_update: SystemTime,
    samples: VecDeque<(SystemTime, f64)>,
    alert: Option<Active>,
    scheduled: Option<SystemTime>,
    /// Whether the series changed since the last [`Engine::take_changes`] (it is then in
    /// [`ChangeLog::series`] once).
    dirty: bool,
}

#[derive(Debug)]
struct Active {
    /// Shared with the notifications about it (and, once resolved, the history): changed
    /// through [`Arc::make_mut`], which copies it only while a caller still holds one.
    alert: Arc<Alert>,
    resolving_since: Option<SystemTime>,
    last_notified: SystemTime,
    repeats: u32,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: SystemTime,
    slot: usize,
    generation: u64,
    thing: Arc<str>,
}

/// Engine state shared by all rules.
#[derive(Debug)]
struct Core {
    now: SystemTime,
    timers: BinaryHeap<Reverse<Timer>>,
    silences: BTreeMap<SilenceId, Silence>,
    next_silence: u64,
    history: VecDeque<Arc<Alert>>,
    /// The estimated bytes of each alert in `history`, in the same order.
    history_sizes: VecDeque<usize>,
    /// The latest alert dropped from the history that nobody else holds: the next alert that
    /// starts reuses it (the allocation and its strings) rather than allocating its own.
    spare: Option<Arc<Alert>>,
    history_limit: usize,
    /// Estimated bytes of the alerts in `history`, and the most it may hold.
    history_bytes: usize,
    history_bytes_limit: usize,
    /// The time [`Engine::tick`] runs deadlines up to (repeats that it passes collapse).
    horizon: SystemTime,
    series_limit: usize,
    /// Updates ignored because they would have started a series past `series_limit`.
    series_dropped: u64,
    /// thing → property → unit.
    units: FastMap<String, FastMap<String, String>>,
    next_alert: u64,
    generation: u64,
    live_series: usize,
    /// Random, chosen by [`Engine::new`], kept by a restore: the first half of notification
    /// ids.
    instance: u64,
    /// The sequence number of the next notification.
    next_notification: u64,
    /// What changed since the last [`Engine::take_changes`].
    changes: ChangeLog,
}

/// What changed since the last [`Engine::take_changes`]: keys only, resolved to their current
/// contents when taken. A series is listed once however often it changes.
#[derive(Debug, Default)]
struct ChangeLog {
    /// (slot, thing) of each series that changed.
    series: Vec<(usize, Arc<str>)>,
    /// Series that went away with their rule (or were dropped by a restore).
    removed: Vec<SeriesKey>,
    /// Silences added or removed.
    silences: std::collections::BTreeSet<SilenceId>,
}

/// A random engine instance number: seeded by the standard library's per-process random keys
/// and the time.
fn random_instance() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    /// An engine with no rules, a history of at most 1000 resolved alerts and 4 MiB, and at
    /// most 100,000 tracked series.
    pub fn new() -> Self {
        Engine {
            slots: Vec::new(),
            by_id: FastMap::default(),
            named: FastMap::default(),
            any: FastMap::default(),
            core: Core {
                now: SystemTime::UNIX_EPOCH,
                timers: BinaryHeap::new(),
                silences: BTreeMap::new(),
                next_silence: 1,
                history: VecDeque::new(),
                history_sizes: VecDeque::new(),
                spare: None,
                history_limit: DEFAULT_HISTORY_LIMIT,
                history_bytes: 0,
                history_bytes_limit: DEFAULT_HISTORY_BYTES,
                horizon: SystemTime::UNIX_EPOCH,
                series_limit: DEFAULT_SERIES_LIMIT,
                series_dropped: 0,
                units: FastMap::default(),
                next_alert: 1,
                generation: 0,
                live_series: 0,
                instance: random_instance(),
                next_notification: 1,
                changes: ChangeLog::default(),
            },
        }
    }

    /// Keep at most `limit` resolved alerts in [`Engine::history`] (default 1000).
    #[must_use]
    pub fn with_history_limit(mut self, limit: usize) -> Self {
        self.core.history_limit = limit;
        self
    }

    /// Keep resolved alerts of at most about `bytes` in [`Engine::history`], counting their
    /// strings, labels and values (default 4 MiB). The oldest go first; an alert larger than
    /// the whole budget is not kept.
    #[must_use]
    pub fn with_history_bytes(mut self, bytes: usize) -> Self {
        self.core.history_bytes_limit = bytes;
        self
    }

    /// Track at most `limit` (rule, thing) series (default 100,000). Each rule keeps a series
    /// per thing it has seen, and a `*` rule sees every thing that reports its property; past
    /// the limit, updates that would start a new series are ignored (logged, and counted in
    /// [`Engine::series_dropped`]), while existing series keep being evaluated.
    #[must_use]
    pub fn with_series_limit(mut self, limit: usize) -> Self {
        self.core.series_limit = limit;
        self
    }

    /// How many updates were ignored because they would have started a series past the
    /// series limit (see [`Engine::with_series_limit`]).
    pub fn series_dropped(&self) -> u64 {
        self.core.series_dropped
    }

    /// The number of (rule, thing) series tracked.
    pub fn series_count(&self) -> usize {
        self.core.live_series
    }

    /// Sets the unit shown as `{{unit}}` for `thing`'s `property` (normally from its TD).
    pub fn set_unit(
        &mut self,
        thing: impl Into<String>,
        property: impl Into<String>,
        unit: impl Into<String>,
    ) {
        self.core
            .units
            .entry(thing.into())
            .or_default()
            .insert(property.into(), unit.into());
    }

    /// Adds a rule. A `no_data` rule for a named thing starts watching at `now`.
    ///
    /// # Errors
    /// An [`ErrorKind::Rule`] error when the rule is invalid or its id is taken.
    pub fn add_rule(&mut self, rule: Rule, now: SystemTime) -> Result<(), Error> {
        let summary = rule.compile_summary()?;
        if self.by_id.contains_key(&rule.id) {
            return Err(Error::rule_field(
                &rule.id,
                "id",
                "another rule has the same id",
            ));
        }
        let now = self.core.advance(now);
        self.core.generation += 1;
        let slot = self.slots.len();
        if rule.thing == "*" {
            self.any
                .entry(rule.property.clone())
                .or_default()
                .push(slot);
        } else {
            self.named
                .entry((rule.property.clone(), rule.thing.clone()))
                .or_default()
                .push(slot);
        }
        self.by_id.insert(rule.id.clone(), slot);
        let mut compiled = CompiledRule {
            labels: alert_labels(&rule),
            named: rule.thing != "*",
            rate_window: rule.rate_window(),
            timed: is_timed(&rule),
            pointer: rule.pointer.as_deref().and_then(pointer_tokens),
            rule: Arc::new(rule),
            summary,
            series: FastMap::default(),
        };
        let watches_absence = compiled
            .rule
            .conditions()
            .any(|c| matches!(c, Condition::NoData(_)));
        // Evaluating now only schedules the expiry: no_data is longer than 0s, so nothing can
        // be notified yet.
        let mut out = Vec::new();
        if watches_absence && compiled.rule.thing != "*" {
            let thing: Arc<str> = Arc::from(compiled.rule.thing.as_str());
            self.core.live_series += 1;
            let series = compiled
                .series
                .entry(Arc::clone(&thing))
                .or_insert_with(|| Series::new(thing, now));
            let ctx = RuleCtx {
                rule: &compiled.rule,
                summary: &compiled.summary,
                labels: &compiled.labels,
                rate_window: compiled.rate_window,
                timed: compiled.timed,
                slot,
                generation: self.core.generation,
            };
            self.core.evaluate(&ctx, series, now, &mut out);
        }
        self.slots.push(Slot {
            generation: self.core.generation,
            rule: Some(compiled),
        });
        Ok(())
    }

    /// Removes a rule; its pending alerts end silently and its firing ones resolve (the returned
    /// notifications). `None` if no rule has that id.
    #[must_use = "the notifications of resolved alerts are lost unless used"]
    pub fn remove_rule(
        &mut self,
        id: &str,
        now: SystemTime,
    ) -> Option<(Arc<Rule>, Vec<Notification>)> {
        let slot = self.by_id.remove(id)?;
        let now = self.core.advance(now);
        let compiled = self.slots.get_mut(slot)?.rule.take()?;
        let (property, thing) = (&compiled.rule.property, &compiled.rule.thing);
        let list = if thing == "*" {
            self.any.get_mut(property)
        } else {
            self.named
                .get_mut(&(property.as_str(), thing.as_str()) as &dyn PairKey)
        };
        if let Some(list) = list {
            list.retain(|s| *s != slot);
            if list.is_empty() {
                if thing == "*" {
                    self.any.remove(property);
                } else {
                    self.named
                        .remove(&(property.as_str(), thing.as_str()) as &dyn PairKey);
                }
            }
        }
        let mut out = Vec::new();
        let ctx = RuleCtx {
            rule: &compiled.rule,
            summary: &compiled.summary,
            labels: &compiled.labels,
            rate_window: compiled.rate_window,
            timed: compiled.timed,
            slot,
            generation: 0,
        };
        let mut things: Vec<_> = compiled.series.into_iter().collect();
        things.sort_by(|a, b| a.0.cmp(&b.0));
        self.core.live_series -= things.len();
        for (thing, _) in &things {
            self.core.changes.removed.push(SeriesKey::new(
                compiled.rule.id.clone(),
                String::from(&**thing),
            ));
        }
        for (_, mut series) in things {
            if series
                .alert
                .as_ref()
                .is_some_and(|a| a.alert.state == AlertState::Firing)
            {
                self.core.resolve(&ctx, &mut series, now, &mut out);
            }
        }
        Some((compiled.rule, out))
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&Arc<Rule>> {
        let slot = *self.by_id.get(id)?;
        self.slots.get(slot)?.rule.as_ref().map(|c| &c.rule)
    }

    /// All rules, in the order they were added.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.slots
            .iter()
            .filter_map(|s| s.rule.as_ref().map(|c| &c.rule))
    }

    /// Evaluates the rules on `update.property` for `update.thing` (and the `*` rules on that
    /// property) at time `now`, after running the deadlines due by then. Costs time for those
    /// rules only.
    #[must_use = "the notifications are lost unless used"]
    pub fn update(&mut self, now: SystemTime, update: &PropertyUpdate) -> Vec<Notification> {
        let mut out = Vec::new();
        let now = now.max(self.core.now);
        // A sample at `t` comes before the deadlines at `t` (as in Prometheus, whose
        // evaluation at `t` sees the sample at `t`): a pending alert whose hold time ends
        // just as its condition stops holding never fires.
        if !self.core.timers.is_empty() {
            self.run_deadlines(now, false, &mut out);
        }
        self.core.now = now;
        self.apply(now, update, &mut out);
        if !self.core.timers.is_empty() {
            self.run_deadlines(now, true, &mut out);
            self.core.compact_timers(&self.slots);
        }
        out
    }

    /// Records `update` in the series it concerns and evaluates them at `now`.
    fn apply(&mut self, now: SystemTime, update: &PropertyUpdate, out: &mut Vec<Notification>) {
        let key: &dyn PairKey = &(&*update.property, &*update.thing);
        let named = self.named.get(key).map_or(&[][..], Vec::as_slice);
        let any = self
            .any
            .get(&*update.property)
            .map_or(&[][..], Vec::as_slice);
        // Each rule reads its pointer from the update's text; past a few rules, one parse of
        // the whole value (which every rule then reads) costs less than a scan per rule.
        if named.len() + any.len() > MAX_TEXT_SCANS {
            update.value.value();
        }
        for &slot in named.iter().chain(any) {
            let Some(Slot {
                generation,
                rule: Some(compiled),
            }) = self.slots.get_mut(slot)
            else {
                continue;
            };
            let value = match &compiled.pointer {
                None => Some(Cow::Borrowed(update.value.value())),
                Some(tokens) => update.value.get_path(tokens),
            };
            let Some(value) = value else {
                tracing::debug!(
                    rule = %compiled.rule.id,
                    thing = %update.thing,
                    "update has nothing at the rule's pointer; ignored"
                );
                continue;
            };
            // A rule on a named thing has at most one series, of that thing.
            let existing = if compiled.named {
                compiled.series.values_mut().next()
            } else {
                compiled.series.get_mut(&*update.thing)
            };
            let series = match existing {
                Some(s) => s,
                None if self.core.live_series >= self.core.series_limit => {
                    self.core.series_dropped += 1;
                    if self.core.series_dropped.is_power_of_two() {
                        tracing::warn!(
                            rule = %compiled.rule.id,
                            limit = self.core.series_limit,
                            dropped = self.core.series_dropped,
                            "series limit reached; updates for new things are ignored"
                        );
                    }
                    continue;
                }
                None => {
                    self.core.live_series += 1;
                    compiled
                        .series
                        .entry(Arc::clone(&update.thing))
                        .or_insert_with(|| Series::new(Arc::clone(&update.thing), now))
                }
            };
            series.record(&value, now, compiled.rate_window);
            // Evaluating at `now` does the work of a deadline at `now`: that entry is stale.
            if series.scheduled.is_some_and(|s| s <= now) {
                series.scheduled = None;
            }
            let ctx = RuleCtx {
                rule: &compiled.rule,
                summary: &compiled.summary,
                labels: &compiled.labels,
                rate_window: compiled.rate_window,
                timed: compiled.timed,
                slot,
                generation: *generation,
            };
            self.core.evaluate(&ctx, series, now, out);
        }
    }

    /// Runs every deadline due at or before `now`, each at its own time, in time order.
    ///
    /// A tick that passes several `repeat_interval`s of one alert notifies the repeat once more
    /// and then once at the latest repeat time it passes (with [`Notification::repeat`]
    /// counting the skipped ones), not once per interval: a jump over years costs no more than
    /// a jump over minutes.
    #[must_use = "the notifications are lost unless used"]
    pub fn tick(&mut self, now: SystemTime) -> Vec<Notification> {
        let mut out = Vec::new();
        let now = now.max(self.core.now);
        self.run_deadlines(now, true, &mut out);
        self.core.now = now;
        self.core.compact_timers(&self.slots);
        out
    }

    /// Runs the deadlines before `now` (and at `now` when `inclusive`), each at its own time.
    fn run_deadlines(&mut self, now: SystemTime, inclusive: bool, out: &mut Vec<Notification>) {
        self.core.horizon = now;
        if self.core.timers.is_empty() {
            return;
        }
        while let Some(Reverse(top)) = self.core.timers.peek() {
            if top.at > now || (top.at == now && !inclusive) {
                break;
            }
            let Some(Reverse(timer)) = self.core.timers.pop() else {
                break;
            };
            self.core.now = self.core.now.max(timer.at);
            let Some(Slot {
                generation,
                rule: Some(compiled),
            }) = self.slots.get_mut(timer.slot)
            else {
                continue;
            };
            if *generation != timer.generation {
                continue;
            }
            let Some(series) = compiled.series.get_mut(&*timer.thing) else {
                continue;
            };
            if series.scheduled != Some(timer.at) {
                continue; // superseded
            }
            series.scheduled = None;
            let ctx = RuleCtx {
                rule: &compiled.rule,
                summary: &compiled.summary,
                labels: &compiled.labels,
                rate_window: compiled.rate_window,
                timed: compiled.timed,
                slot: timer.slot,
                generation: *generation,
            };
            self.core.evaluate(&ctx, series, timer.at, out);
        }
    }

    /// The earliest time at which [`Engine::tick`] has work, if any.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        self.core.timers.peek().map(|Reverse(t)| t.at)
    }

    /// The latest time the engine has seen.
    pub fn now(&self) -> SystemTime {
        self.core.now
    }

    /// The id the next new alert will get: it changes exactly when an alert starts.
    #[cfg(feature = "manager")]
    pub(crate) fn next_alert_id(&self) -> u64 {
        self.core.next_alert
    }

    /// Acknowledges the firing alert of `rule` for `thing`. It stays acknowledged until it
    /// resolves, and is no longer repeated. Acknowledging again replaces the acknowledgement.
    /// Returns the `acknowledged` notification unless silenced.
    ///
    /// # Errors
    /// An [`ErrorKind::NoActiveAlert`] error when there is no such alert, and
    /// [`ErrorKind::NotFiring`] when it is only pending.
    pub fn acknowledge(
        &mut self,
        now: SystemTime,
        rule: &str,
        thing: &str,
        by: impl Into<String>,
        comment: Option<String>,
    ) -> Result<Vec<Notification>, Error> {
        let mut out = self.tick(now);
        let now = self.core.now;
        let not_found = || Error::alert(ErrorKind::NoActiveAlert, rule, thing);
        let slot = *self.by_id.get(rule).ok_or_else(not_found)?;
        let Some(Slot {
            generation,
            rule: Some(compiled),
        }) = self.slots.get_mut(slot)
        else {
            return Err(not_found());
        };
        let series = compiled.series.get_mut(thing).ok_or_else(not_found)?;
        let active = series.alert.as_mut().ok_or_else(not_found)?;
        if active.alert.state != AlertState::Firing {
            return Err(Error::alert(ErrorKind::NotFiring, rule, thing));
        }
        if !series.dirty {
            series.dirty = true;
            self.core
                .changes
                .series
                .push((slot, Arc::clone(&series.thing)));
        }
        let Some(active) = series.alert.as_mut() else {
            return Err(not_found());
        };
        Arc::make_mut(&mut active.alert).acknowledgement = Some(Acknowledgement {
            by: by.into(),
            at: now,
            comment,
        });
        let ctx = RuleCtx {
            rule: &compiled.rule,
            summary: &compiled.summary,
            labels: &compiled.labels,
            rate_window: compiled.rate_window,
            timed: compiled.timed,
            slot,
            generation: *generation,
        };
        self.core.notify(
            &ctx,
            series,
            NotificationKind::Acknowledged,
            now,
            None,
            &mut out,
        );
        // Repeats stop: reschedule without them.
        self.core.schedule(&ctx, series, now);
        Ok(out)
    }

    /// Adds a silence and returns its id.
    pub fn add_silence(&mut self, silence: Silence) -> SilenceId {
        let id = SilenceId(self.core.next_silence);
        self.core.next_silence = self.core.next_silence.saturating_add(1);
        self.core.silences.insert(id, silence);
        self.core.changes.silences.insert(id);
        id
    }

    /// Removes a silence; `None` if unknown.
    pub fn remove_silence(&mut self, id: SilenceId) -> Option<Silence> {
        let removed = self.core.silences.remove(&id)?;
        self.core.changes.silences.insert(id);
        Some(removed)
    }

    /// The silences, expired ones included, by id.
    pub fn silences(&self) -> impl Iterator<Item = (SilenceId, &Silence)> {
        self.core.silences.iter().map(|(id, s)| (*id, s))
    }

    /// Pending and firing alerts, ordered by rule id then thing id.
    pub fn active_alerts(&self) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = self
            .slots
            .iter()
            .filter_map(|s| s.rule.as_ref())
            .flat_map(|c| c.series.values())
            .filter_map(|s| s.alert.as_ref().map(|a| Alert::clone(&a.alert)))
            .collect();
        alerts.sort_by(|a, b| (&a.rule, &a.thing).cmp(&(&b.rule, &b.thing)));
        alerts
    }

    /// Resolved alerts, oldest first, at most the history limit. Each is the alert of its
    /// `resolved` notification (the same allocation).
    pub fn history(&self) -> &VecDeque<Arc<Alert>> {
        &self.core.history
    }

    /// This engine's instance number: random, chosen by [`Engine::new`] (a restore keeps
    /// it). See [`NotificationId`].
    pub fn instance(&self) -> u64 {
        self.core.instance
    }

    /// A snapshot of everything the engine must not forget across a restart (see
    /// [`EngineState`] and the restart rule in its module docs). Costs time and memory for
    /// every series; between snapshots, save [`take_changes`](Self::take_changes) instead.
    pub fn state(&self) -> EngineState {
        let mut state = EngineState::new(self.core.instance, self.core.now);
        state.next_alert_id = self.core.next_alert;
        state.next_notification_id = self.core.next_notification;
        state.next_silence_id = self.core.next_silence;
        let mut series: Vec<Option<SeriesState>> = Vec::with_capacity(self.core.live_series);
        for compiled in self.slots.iter().filter_map(|s| s.rule.as_ref()) {
            series.extend(
                compiled
                    .series
                    .values()
                    .map(|s| Some(series_state(&compiled.rule, s))),
            );
        }
        // Sorting small keys rather than whole series, then building the map from sorted
        // input, is several times faster than inserting series one by one.
        let key = |i: &usize| {
            series
                .get(*i)
                .and_then(Option::as_ref)
                .map(|s| (s.rule.as_str(), s.thing.as_str()))
        };
        let mut order: Vec<usize> = (0..series.len()).collect();
        order.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        state.series = order
            .into_iter()
            .filter_map(|i| series.get_mut(i).and_then(Option::take))
            .map(|s| (s.key(), s))
            .collect();
        state.silences = self.core.silences.clone();
        state
    }

    /// What changed since the previous call (or since the engine was made): the series that
    /// changed, as they are now, the series removed with their rules, the silences added or
    /// removed, and the counters. Applying every result in order with
    /// [`EngineState::apply`] to a state saved before the first of them gives
    /// [`state`](Self::state).
    ///
    /// A series changes with every update it records (its last value and update time), with
    /// every deadline evaluated for it and with acknowledgements. The engine keeps only the
    /// keys of what changed (one entry per series until taken), so calling this rarely costs
    /// no more memory than the number of series; removed series are listed one by one until
    /// taken.
    ///
    /// A store that commits series changes lazily should commit at once when
    /// [`StateChanges::next_alert_id`] moved (a new alert started, pending ones included):
    /// otherwise a crash before the commit lets the restored engine give an alert id that was
    /// already shown to another alert. The `AlertManager` does.
    pub fn take_changes(&mut self) -> StateChanges {
        let log = std::mem::take(&mut self.core.changes);
        let mut series = Vec::with_capacity(log.series.len());
        for (slot, thing) in log.series {
            let Some(Slot {
                rule: Some(compiled),
                ..
            }) = self.slots.get_mut(slot)
            else {
                continue; // its rule is gone: in `removed`
            };
            if let Some(s) = compiled.series.get_mut(&*thing)
                && s.dirty
            {
                s.dirty = false;
                series.push(series_state(&compiled.rule, s));
            }
        }
        let mut silences = Vec::new();
        let mut removed_silences = Vec::new();
        for id in log.silences {
            match self.core.silences.get(&id) {
                Some(s) => silences.push((id, s.clone())),
                None => removed_silences.push(id),
            }
        }
        StateChanges {
            version: ENGINE_STATE_VERSION,
            instance: self.core.instance,
            now: self.core.now,
            next_alert_id: self.core.next_alert,
            next_notification_id: self.core.next_notification,
            next_silence_id: self.core.next_silence,
            removed_series: log.removed,
            series,
            removed_silences,
            silences,
        }
    }

    /// Restores a state saved by [`state`](Self::state) (and [`EngineState::apply`]) into this
    /// engine, whose rules must already be added, at time `now` (the restart). Follows the
    /// restart rule of [`EngineState`]: pending alerts keep their pending-since time and fire
    /// at the first evaluation at or after `now` if their hold time has passed and their
    /// condition still holds; firing alerts stay firing without a new notification; no-data
    /// deadlines of series without an alert start again at `now`.
    ///
    /// Series in the state replace the engine's series of the same rule and thing; the
    /// engine's other series stay. The silences are replaced by the state's. The engine's time
    /// becomes the latest of its own, the state's and `now`, except that a saved time more than
    /// [`MAX_SAVED_TIME_AHEAD`] after `now` is not used (logged as a warning and reported in
    /// [`RestoreReport::saved_time_ahead`]); saved series times after the engine's time are
    /// taken as it ([`RestoreReport::times_clamped`]). Nothing is notified here: every
    /// restored series whose rule has deadlines (and every restored alert) is evaluated at the
    /// next [`tick`](Self::tick) or [`update`](Self::update), at time `now`.
    ///
    /// What the restore dropped or adjusted shows in the next
    /// [`take_changes`](Self::take_changes), so a store can catch up.
    ///
    /// # Errors
    /// [`StateError::UnsupportedVersion`] for a state of another version, and
    /// [`StateError::Invalid`] for a series holding a resolved alert. The engine is unchanged
    /// when an error is returned.
    pub fn restore(
        &mut self,
        state: EngineState,
        now: SystemTime,
    ) -> Result<RestoreReport, StateError> {
        if state.version != ENGINE_STATE_VERSION {
            return Err(StateError::UnsupportedVersion {
                found: state.version,
                supported: ENGINE_STATE_VERSION,
            });
        }
        if let Some(s) = state.series.values().find(|s| {
            s.alert
                .as_ref()
                .is_some_and(|a| !matches!(a.state, AlertState::Pending | AlertState::Firing))
        }) {
            return Err(StateError::Invalid {
                rule: s.rule.clone(),
                thing: s.thing.clone(),
                message: "an active alert must be pending or firing".into(),
            });
        }
        let mut report = RestoreReport::default();
        let start = match state.now.duration_since(now) {
            Ok(ahead) if ahead > MAX_SAVED_TIME_AHEAD => {
                tracing::warn!(
                    ahead_secs = ahead.as_secs(),
                    limit_secs = MAX_SAVED_TIME_AHEAD.as_secs(),
                    "the saved alert engine time is ahead of the clock; restoring at the clock's time"
                );
                report.saved_time_ahead = Some(ahead);
                now
            }
            _ => now.max(state.now),
        };
        let now = self.core.advance(start);
        let mut max_alert = 0;
        for (key, saved) in state.series {
            let Some(&slot) = self.by_id.get(&key.rule) else {
                report.dropped_unknown_rule += 1;
                self.core.changes.removed.push(key);
                continue;
            };
            let Some(Slot {
                generation,
                rule: Some(compiled),
            }) = self.slots.get_mut(slot)
            else {
                report.dropped_unknown_rule += 1;
                self.core.changes.removed.push(key);
                continue;
            };
            if saved.property != compiled.rule.property
                || (compiled.named && saved.thing != compiled.rule.thing)
            {
                report.dropped_mismatch += 1;
                self.core.changes.removed.push(key);
                continue;
            }
            let existing = compiled.series.get(saved.thing.as_str());
            let exists = existing.is_some();
            // A changed series is in the change log: its entry stands for the restored one.
            let logged = existing.is_some_and(|s| s.dirty);
            if !exists && self.core.live_series >= self.core.series_limit {
                report.dropped_over_limit += 1;
                self.core.changes.removed.push(key);
                continue;
            }
            let mut saved = saved;
            let clamped = clamp_times(&mut saved, now);
            report.times_clamped += clamped;
            let thing: Arc<str> = Arc::from(saved.thing.as_str());
            let mut series = Series::new(Arc::clone(&thing), saved.last_update);
            series.dirty = logged;
            series.value = saved.value;
            series.changed = saved.changed;
            series.previous_update = saved.previous_update;
            let skip = saved.samples.len().saturating_sub(MAX_RATE_SAMPLES);
            series.samples = saved.samples.into_iter().skip(skip).collect();
            if clamped > 0 && !series.dirty {
                // The store holds the times as they were: rewrite them.
                series.dirty = true;
                self.core.changes.series.push((slot, Arc::clone(&thing)));
            }
            if let Some(a) = saved.alert {
                max_alert = max_alert.max(a.id);
                match a.state {
                    AlertState::Pending => report.pending += 1,
                    _ => {
                        report.firing += 1;
                        report.acknowledged += usize::from(a.acknowledgement.is_some());
                    }
                }
                let mut labels = compiled.labels.clone();
                if !compiled.named {
                    labels.insert("thing".into(), saved.thing.clone());
                }
                labels.insert("severity".into(), a.severity.as_str().to_owned());
                let alert = Alert {
                    id: a.id,
                    rule: compiled.rule.id.clone(),
                    thing: saved.thing,
                    property: compiled.rule.property.clone(),
                    state: a.state,
                    severity: a.severity,
                    labels,
                    value: series.value.clone(),
                    summary: a.summary,
                    active_since: a.active_since,
                    fired_at: a.fired_at,
                    resolved_at: None,
                    acknowledgement: a.acknowledgement,
                };
                series.alert = Some(Active {
                    alert: Arc::new(alert),
                    resolving_since: a.resolving_since,
                    last_notified: a.last_notified,
                    repeats: a.repeats,
                });
            } else if series.last_update < now
                && compiled
                    .rule
                    .conditions()
                    .any(|c| matches!(c, Condition::NoData(_)))
            {
                // The restart rule: a series without an alert watches for no data from now
                // (only rules that watch for it: the others' series are not rewritten).
                series.previous_update = series.last_update;
                series.last_update = now;
                if !series.dirty {
                    series.dirty = true;
                    self.core.changes.series.push((slot, Arc::clone(&thing)));
                }
            }
            report.series += 1;
            if compiled.timed || series.alert.is_some() {
                series.scheduled = Some(now);
                self.core.timers.push(Reverse(Timer {
                    at: now,
                    slot,
                    generation: *generation,
                    thing: Arc::clone(&thing),
                }));
            }
            if !exists {
                self.core.live_series += 1;
            }
            compiled.series.insert(thing, series);
        }
        report.silences = state.silences.len();
        let max_silence = state.silences.keys().map(|id| id.0).max().unwrap_or(0);
        self.core.silences = state.silences;
        self.core.next_alert = self
            .core
            .next_alert
            .max(state.next_alert_id)
            .max(max_alert.saturating_add(1));
        self.core.next_notification = self.core.next_notification.max(state.next_notification_id);
        self.core.next_silence = self
            .core
            .next_silence
            .max(state.next_silence_id)
            .max(max_silence.saturating_add(1));
        Ok(report)
    }
}

/// Takes every time of `saved` later than `now` as `now`, dropping `rate` samples later than
/// it (the restart rule: no restored deadline waits for the clock to reach a saved time from
/// a wrong clock). Returns how many times it changed or dropped.
fn clamp_times(saved: &mut SeriesState, now: SystemTime) -> usize {
    let mut clamped = 0;
    let mut clamp = |t: &mut SystemTime| {
        if *t > now {
            *t = now;
            clamped += 1;
        }
    };
    clamp(&mut saved.last_update);
    clamp(&mut saved.previous_update);
    if let Some(a) = saved.alert.as_mut() {
        clamp(&mut a.active_since);
        if let Some(t) = a.fired_at.as_mut() {
            clamp(t);
        }
        if let Some(t) = a.resolving_since.as_mut() {
            clamp(t);
        }
        clamp(&mut a.last_notified);
        if let Some(ack) = a.acknowledgement.as_mut() {
            clamp(&mut ack.at);
        }
    }
    let before = saved.samples.len();
    saved.samples.retain(|(t, _)| *t <= now);
    clamped + (before - saved.samples.len())
}

/// The saved form of `rule`'s `series`.
fn series_state(rule: &Rule, series: &Series) -> SeriesState {
    SeriesState {
        rule: rule.id.clone(),
        thing: String::from(&*series.thing),
        property: rule.property.clone(),
        value: series.value.clone(),
        changed: series.changed,
        last_update: series.last_update,
        previous_update: series.previous_update,
        samples: series.samples.iter().copied().collect(),
        alert: series.alert.as_ref().map(|a| AlertRecord {
            id: a.alert.id,
            state: a.alert.state,
            severity: a.alert.severity,
            active_since: a.alert.active_since,
            fired_at: a.alert.fired_at,
            resolving_since: a.resolving_since,
            last_notified: a.last_notified,
            repeats: a.repeats,
            acknowledgement: a.alert.acknowledgement.clone(),
            summary: a.alert.summary.clone(),
        }),
    }
}

struct RuleCtx<'a> {
    rule: &'a Arc<Rule>,
    summary: &'a Template,
    /// See [`CompiledRule::labels`].
    labels: &'a BTreeMap<String, String>,
    rate_window: Option<Duration>,
    timed: bool,
    slot: usize,
    generation: u64,
}

impl Series {
    fn new(thing: Arc<str>, now: SystemTime) -> Self {
        Series {
            thing,
            value: None,
            changed: false,
            last_update: now,
            previous_update: now,
            samples: VecDeque::new(),
            alert: None,
            scheduled: None,
            dirty: false,
        }
    }

    fn record(&mut self, value: &serde_json::Value, now: SystemTime, window: Option<Duration>) {
        match &mut self.value {
            Some(old) if old == value => self.changed = false,
            Some(old) => {
                self.changed = true;
                old.clone_from(value);
            }
            None => {
                self.changed = false;
                self.value = Some(value.clone());
            }
        }
        self.previous_update = self.last_update;
        self.last_update = now;
        if let Some(window) = window {
            if let Some(x) = value.as_f64() {
                self.samples.push_back((now, x));
                if self.samples.len() > MAX_RATE_SAMPLES {
                    self.samples.pop_front();
                }
            }
            self.prune(now, window);
        }
    }

    /// The latest gap between updates as of `now`: since the latest update, or, when that
    /// update is at `now`, the gap it ended.
    fn no_data_for(&self, now: SystemTime) -> Duration {
        let since = if self.last_update >= now {
            self.previous_update
        } else {
            self.last_update
        };
        now.duration_since(since).unwrap_or(Duration::ZERO)
    }

    /// Drops samples that left the window `(now - window, now]`.
    fn prune(&mut self, now: SystemTime, window: Duration) {
        while let Some(&(t, _)) = self.samples.front() {
            if now.duration_since(t).unwrap_or(Duration::ZERO) >= window {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    fn holds(&self, condition: &Condition, now: SystemTime) -> bool {
        let number = || self.value.as_ref().and_then(serde_json::Value::as_f64);
        match condition {
            Condition::Gt(t) => number().is_some_and(|v| v > *t),
            Condition::Ge(t) => number().is_some_and(|v| v >= *t),
            Condition::Lt(t) => number().is_some_and(|v| v < *t),
            Condition::Le(t) => number().is_some_and(|v| v <= *t),
            Condition::Eq(s) => self.value.as_ref().is_some_and(|v| s.matches(v)),
            Condition::Ne(s) => self.value.as_ref().is_some_and(|v| !s.matches(v)),
            Condition::Between([lo, hi]) => number().is_some_and(|v| *lo <= v && v <= *hi),
            Condition::Outside([lo, hi]) => number().is_some_and(|v| v < *lo || v > *hi),
            Condition::Matches(p) => self
                .value
                .as_ref()
                .and_then(serde_json::Value::as_str)
                .is_some_and(|s| p.is_match(s)),
            Condition::Changed(_) => self.changed,
            Condition::NoData(d) => {
                now.duration_since(self.last_update)
                    .unwrap_or(Duration::ZERO)
                    >= *d
            }
            Condition::Rate(r) => self
                .rate(now, r.per)
                .is_some_and(|rate| r.compare.apply(rate, r.threshold)),
        }
    }

    /// Change per `per` between the oldest and newest samples within `(now - per, now]`.
    fn rate(&self, now: SystemTime, per: Duration) -> Option<f64> {
        let mut inside = self
            .samples
            .iter()
            .filter(|(t, _)| now.duration_since(*t).unwrap_or(Duration::ZERO) < per);
        let (t0, v0) = *inside.next()?;
        let (t1, v1) = *self.samples.back()?;
        let dt = t1.duration_since(t0).ok()?.as_secs_f64();
        (dt > 0.0).then(|| (v1 - v0) / dt * per.as_secs_f64())
    }

    /// When `condition` may change truth without a new update.
    fn next_change(&self, condition: &Condition, now: SystemTime) -> Option<SystemTime> {
        match condition {
            Condition::NoData(d) => self.last_update.checked_add(*d).filter(|t| *t > now),
            Condition::Rate(r) => self
                .samples
                .iter()
                .filter_map(|(t, _)| t.checked_add(r.per))
                .find(|t| *t > now),
            _ => None,
        }
    }
}

/// The labels of `rule`'s alerts: its own, plus `alertname`, `property`, `severity` (the
/// rule's) and, unless the rule watches `*`, `thing`.
fn alert_labels(rule: &Rule) -> BTreeMap<String, String> {
    let mut labels = rule.labels.clone();
    labels.insert("alertname".into(), rule.id.clone());
    if rule.thing != "*" {
        labels.insert("thing".into(), rule.thing.clone());
    }
    labels.insert("property".into(), rule.property.clone());
    labels.insert("severity".into(), rule.severity.as_str().to_owned());
    labels
}

/// Whether `rule` has a deadline to schedule in some state: a hold or keep-firing time, repeats,
/// or a condition (main, clearing or escalation) on the absence or the rate of updates. A rule
/// without any only changes state on updates.
fn is_timed(rule: &Rule) -> bool {
    !rule.hold_for.is_zero()
        || !rule.keep_firing_for.is_zero()
        || rule.repeat_interval.is_some()
        || rule
            .conditions()
            .any(|c| matches!(c, Condition::NoData(_) | Condition::Rate(_)))
}

/// Writes the labels of `rule`'s new alert for `thing` (`rule_labels`, see
/// [`CompiledRule::labels`], and `thing` for a `*` rule) over `labels`, keeping their strings;
/// false, with `labels` partly written, when the names differ.
fn overwrite_labels(
    alert: &mut Alert,
    rule_labels: &BTreeMap<String, String>,
    rule: &Rule,
    thing: &str,
) -> bool {
    let any = rule.thing == "*";
    let names = rule_labels.len() + usize::from(any && !rule_labels.contains_key("thing"));
    if alert.labels.len() != names {
        return false;
    }
    let mut source = rule_labels.iter().peekable();
    for (name, value) in &mut alert.labels {
        if any && name == "thing" {
            // A `*` rule's alerts name their thing, over any `thing` label of the rule.
            source.next_if(|(k, _)| k.as_str() == "thing");
            value.clear();
            value.push_str(thing);
            continue;
        }
        match source.next() {
            Some((k, v)) if k == name => value.clone_from(v),
            _ => return false,
        }
    }
    source.next().is_none()
}

/// The next repeat after `last`: one `every` later, or, when that is not after `horizon` (a
/// tick is passing several intervals), the latest repeat time at or before `horizon`.
fn next_repeat(last: SystemTime, every: Duration, horizon: SystemTime) -> Option<SystemTime> {
    let first = last.checked_add(every)?;
    if first > horizon {
        return Some(first);
    }
    let gap = horizon.duration_since(last).ok()?.as_nanos();
    let step = every.as_nanos().max(1);
    let offset = gap / step * step;
    let secs = u64::try_from(offset / 1_000_000_000).ok()?;
    let nanos = u32::try_from(offset % 1_000_000_000).ok()?;
    last.checked_add(Duration::new(secs, nanos))
}

/// A JSON pointer's reference tokens, unescaped (`~1` is `/`, `~0` is `~`); `None` for the
/// empty pointer, which is the whole value. The rule's checks ensure any other starts with `/`.
fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// Rules on one property whose pointers are read from an update's text, one scan each; with
/// more, the update's value is built once instead.
const MAX_TEXT_SCANS: usize = 2;

/// An estimate of the heap and inline bytes an alert takes.
fn alert_bytes(a: &Alert) -> usize {
    let labels: usize = a.labels.iter().map(|(k, v)| k.len() + v.len() + 64).sum();
    let ack = a.acknowledgement.as_ref().map_or(0, |k| {
        k.by.len() + k.comment.as_ref().map_or(0, String::len)
    });
    std::mem::size_of::<Alert>()
        + a.rule.len()
        + a.thing.len()
        + a.property.len()
        + a.summary.len()
        + labels
        + ack
        + a.value.as_ref().map_or(0, json_bytes)
}

/// An estimate of the bytes a JSON value takes.
fn json_bytes(v: &serde_json::Value) -> usize {
    std::mem::size_of::<serde_json::Value>()
        + match v {
            serde_json::Value::String(s) => s.len(),
            serde_json::Value::Array(items) => items.iter().map(json_bytes).sum(),
            serde_json::Value::Object(map) => {
                map.iter().map(|(k, v)| k.len() + 32 + json_bytes(v)).sum()
            }
            _ => 0,
        }
}

impl Core {
    /// Adds a resolved alert to the history, dropping the oldest past the count and byte limits.
    fn remember(&mut self, alert: Arc<Alert>) {
        let bytes = alert_bytes(&alert);
        if self.history_limit == 0 || bytes > self.history_bytes_limit {
            return;
        }
        while self.history.len() >= self.history_limit
            || self.history_bytes + bytes > self.history_bytes_limit
        {
            let (Some(mut old), Some(old_bytes)) =
                (self.history.pop_front(), self.history_sizes.pop_front())
            else {
                break;
            };
            self.history_bytes = self.history_bytes.saturating_sub(old_bytes);
            // Unless a caller still holds it, it serves the next alert that starts.
            if Arc::get_mut(&mut old).is_some() {
                self.spare = Some(old);
            }
        }
        self.history_bytes += bytes;
        self.history.push_back(alert);
        self.history_sizes.push_back(bytes);
    }

    fn unit(&self, thing: &str, property: &str) -> Option<&String> {
        self.units.get(thing)?.get(property)
    }

    /// Notes that the series in `slot` changed, for [`Engine::take_changes`].
    fn changed(&mut self, slot: usize, series: &mut Series) {
        if !series.dirty {
            series.dirty = true;
            self.changes.series.push((slot, Arc::clone(&series.thing)));
        }
    }

    fn advance(&mut self, now: SystemTime) -> SystemTime {
        self.now = self.now.max(now);
        self.now
    }

    /// Moves one series through its state machine at time `now`.
    fn evaluate(
        &mut self,
        ctx: &RuleCtx<'_>,
        series: &mut Series,
        now: SystemTime,
        out: &mut Vec<Notification>,
    ) {
        self.changed(ctx.slot, series);
        let rule = &**ctx.rule;
        if let Some(window) = ctx.rate_window {
            series.prune(now, window);
        }
        let holds = series.holds(&rule.condition, now);
        match series.alert.as_ref().map(|a| a.alert.state) {
            None if holds => {
                let at_once = rule.hold_for.is_zero();
                // Firing renders the summary: starting need not render it first.
                self.start(ctx, series, now, !at_once);
                if at_once {
                    self.fire(ctx, series, now, out);
                }
            }
            None => {}
            Some(AlertState::Pending) => {
                let since = series.alert.as_ref().map_or(now, |a| a.alert.active_since);
                if !holds {
                    series.alert = None;
                } else if since.checked_add(rule.hold_for).is_some_and(|t| t <= now) {
                    self.fire(ctx, series, now, out);
                }
            }
            Some(_) => self.evaluate_firing(ctx, series, holds, now, out),
        }
        if let Some(active) = series.alert.as_mut()
            && active.alert.value != series.value
        {
            Arc::make_mut(&mut active.alert)
                .value
                .clone_from(&series.value);
        }
        self.schedule(ctx, series, now);
    }

    fn evaluate_firing(
        &mut self,
        ctx: &RuleCtx<'_>,
        series: &mut Series,
        holds: bool,
        now: SystemTime,
        out: &mut Vec<Notification>,
    ) {
        let rule = &**ctx.rule;
        let clearing = match &rule.clear {
            Some(clear) => series.holds(clear, now),
            None => !holds,
        };
        let severity = self.severity(rule, series, now);
        let Some(active) = series.alert.as_mut() else {
            return;
        };
        if clearing {
            let since = *active.resolving_since.get_or_insert(now);
            if since
                .checked_add(rule.keep_firing_for)
                .is_some_and(|t| t <= now)
            {
                self.resolve(ctx, series, now, out);
                return;
            }
        } else {
            active.resolving_since = None;
            if severity != active.alert.severity {
                let previous = active.alert.severity;
                let alert = Arc::make_mut(&mut active.alert);
                alert.severity = severity;
                alert
                    .labels
                    .insert("severity".into(), severity.as_str().to_owned());
                self.notify(
                    ctx,
                    series,
                    NotificationKind::SeverityChanged,
                    now,
                    Some(previous),
                    out,
                );
            }
        }
        if let (Some(every), Some(active)) = (rule.repeat_interval, series.alert.as_mut())
            && active.alert.acknowledgement.is_none()
            && active
                .last_notified
                .checked_add(every)
                .is_some_and(|t| t <= now)
        {
            // Normally one interval has passed; after a tick that jumped, several.
            let intervals = now
                .duration_since(active.last_notified)
                .map_or(1, |gap| gap.as_nanos() / every.as_nanos().max(1))
                .max(1);
            active.repeats = active
                .repeats
                .saturating_add(u32::try_from(intervals).unwrap_or(u32::MAX));
            self.notify(ctx, series, NotificationKind::Fired, now, None, out);
        }
    }

    fn severity(&self, rule: &Rule, series: &Series, now: SystemTime) -> Severity {
        rule.escalate
            .iter()
            .filter(|e| series.holds(&e.condition, now))
            .map(|e| e.severity)
            .fold(rule.severity, Severity::max)
    }

    /// Starts a pending alert; with `render`, renders its summary.
    fn start(&mut self, ctx: &RuleCtx<'_>, series: &mut Series, now: SystemTime, render: bool) {
        let rule = &**ctx.rule;
        let id = self.next_alert;
        self.next_alert = self.next_alert.saturating_add(1);
        // An alert that left the history (held by nobody else), overwritten in place when
        // its labels have the same names as the new alert's.
        let mut reused = self.spare.take();
        let fits = reused
            .as_mut()
            .and_then(Arc::get_mut)
            .is_some_and(|spare| overwrite_labels(spare, ctx.labels, rule, &series.thing));
        let Some(mut reused) = reused.filter(|_| fits) else {
            return self.start_new(ctx, series, id, now, render);
        };
        if let Some(spare) = Arc::get_mut(&mut reused) {
            spare.id = id;
            spare.rule.clone_from(&rule.id);
            spare.thing.clear();
            spare.thing.push_str(&series.thing);
            spare.property.clone_from(&rule.property);
            spare.state = AlertState::Pending;
            spare.severity = rule.severity;
            spare.value.clone_from(&series.value);
            spare.summary.clear();
            spare.active_since = now;
            spare.fired_at = None;
            spare.resolved_at = None;
            spare.acknowledgement = None;
        }
        self.started(ctx, series, reused, now, render);
    }

    /// Starts a pending alert with `id` in a new allocation.
    fn start_new(
        &mut self,
        ctx: &RuleCtx<'_>,
        series: &mut Series,
        id: u64,
        now: SystemTime,
        render: bool,
    ) {
        let rule = &**ctx.rule;
        let mut labels = ctx.labels.clone();
        if rule.thing == "*" {
            labels.insert("thing".into(), String::from(&*series.thing));
        }
        let alert = Alert {
            id,
            rule: rule.id.clone(),
            thing: String::from(&*series.thing),
            property: rule.property.clone(),
            state: AlertState::Pending,
            severity: rule.severity,
            labels,
            value: series.value.clone(),
            summary: String::new(),
            active_since: now,
            fired_at: None,
            resolved_at: None,
            acknowledgement: None,
        };
        self.started(ctx, series, Arc::new(alert), now, render);
    }

    /// Makes `alert` the series' pending alert; with `render`, renders its summary.
    fn started(
        &mut self,
        ctx: &RuleCtx<'_>,
        series: &mut Series,
        alert: Arc<Alert>,
        now: SystemTime,
        render: bool,
    ) {
        series.alert = Some(Active {
            alert,
            resolving_since: None,
            last_notified: now,
            repeats: 0,
        });
        if render {
            self.render(ctx, series, now);
        }
    }

    fn fire(
        &mut self,
        ctx: &RuleCtx<'_>,
        series: &mut Series,
        now: SystemTime,
        out: &mut Vec<Notification>,
    ) {
        let severity = self.severity(ctx.rule, series, now);
        let Some(active) = series.alert.as_mut() else {
            return;
        };
        let alert = Arc::make_mut(&mut active.alert);
        alert.state = AlertState::Firing;
        alert.fired_at = Some(now);
        alert.severity = severity;
        if alert.labels.get("severity").map(String::as_str) != Some(severity.as_str()) {
            alert
                .labels
                .insert("severity".into(), severity.as_str().to_owned());
        }
        self.notify(ctx, series, NotificationKind::Fired, now, None, out);
    }

    fn resolve(
        &mut self,
        ctx: &RuleCtx<'_>,
        series: &mut Series,
        now: SystemTime,
        out: &mut Vec<Notification>,
    ) {
        let Some(active) = series.alert.as_mut() else {
            return;
        };
        let alert = Arc::make_mut(&mut active.alert);
        alert.state = AlertState::Resolved;
        alert.resolved_at = Some(now);
        self.notify(ctx, series, NotificationKind::Resolved, now, None, out);
        if let Some(active) = series.alert.take() {
            self.remember(active.alert);
        }
    }

    /// Renders the summary of the series' alert into it, reusing its buffer.
    fn render(&self, ctx: &RuleCtx<'_>, series: &mut Series, now: SystemTime) {
        let Some(active) = series.alert.as_mut() else {
            return;
        };
        let mut summary = std::mem::take(&mut Arc::make_mut(&mut active.alert).summary);
        let Some(active) = series.alert.as_ref() else {
            return;
        };
        let a = &active.alert;
        let unit = self.unit(&a.thing, &a.property);
        let vars = Vars {
            rule: &a.rule,
            thing: &a.thing,
            property: &a.property,
            value: series.value.as_ref(),
            unit: unit.map(String::as_str),
            severity: a.severity.as_str(),
            labels: &ctx.rule.labels,
            no_data_for: if ctx.summary.uses_no_data_for() {
                series.no_data_for(now)
            } else {
                Duration::ZERO
            },
        };
        ctx.summary.render_into(&vars, &mut summary);
        if summary.capacity() > 2 * summary.len() + 256 {
            // What the history counts is what it holds: no room left by a long summary.
            summary.shrink_to_fit();
        }
        if let Some(active) = series.alert.as_mut() {
            // Unique since the take above: no copy.
            Arc::make_mut(&mut active.alert).summary = summary;
        }
    }

    /// Renders the summary and emits a notification unless a silence matches.
    fn notify(
        &mut self,
        ctx: &RuleCtx<'_>,
        series: &mut Series,
        kind: NotificationKind,
        now: SystemTime,
        previous_severity: Option<Severity>,
        out: &mut Vec<Notification>,
    ) {
        self.render(ctx, series, now);
        let Some(active) = series.alert.as_mut() else {
            return;
        };
        if active.alert.value != series.value {
            Arc::make_mut(&mut active.alert)
                .value
                .clone_from(&series.value);
        }
        if matches!(
            kind,
            NotificationKind::Fired | NotificationKind::SeverityChanged
        ) {
            active.last_notified = now;
        }
        if self
            .silences
            .values()
            .any(|s| s.matches(&active.alert, now))
        {
            tracing::debug!(rule = %active.alert.rule, thing = %active.alert.thing, %kind, "notification silenced");
            return;
        }
        let unit = self
            .unit(&active.alert.thing, &active.alert.property)
            .cloned();
        if out.capacity() == 0 {
            // Most calls notify once: room for one keeps the allocation small (the default
            // first capacity of four notifications is over a kilobyte).
            out.reserve_exact(1);
        }
        let id = NotificationId::new(self.instance, self.next_notification);
        self.next_notification = self.next_notification.saturating_add(1);
        out.push(Notification {
            id,
            kind,
            at: now,
            repeat: if kind == NotificationKind::Fired {
                active.repeats
            } else {
                0
            },
            previous_severity,
            alert: Arc::clone(&active.alert),
            rule: Arc::clone(ctx.rule),
            unit,
        });
    }

    /// Schedules the series' next deadline after `now`, if it has one.
    fn schedule(&mut self, ctx: &RuleCtx<'_>, series: &mut Series, now: SystemTime) {
        if !ctx.timed {
            return;
        }
        let rule = &**ctx.rule;
        let mut next: Option<SystemTime> = None;
        let mut consider = |t: Option<SystemTime>| {
            if let Some(t) = t.filter(|t| *t > now) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(series.next_change(&rule.condition, now));
        if let Some(active) = &series.alert {
            match active.alert.state {
                AlertState::Pending => {
                    consider(active.alert.active_since.checked_add(rule.hold_for))
                }
                _ => {
                    if let Some(clear) = &rule.clear {
                        consider(series.next_change(clear, now));
                    }
                    for e in &rule.escalate {
                        consider(series.next_change(&e.condition, now));
                    }
                    if let Some(since) = active.resolving_since {
                        consider(since.checked_add(rule.keep_firing_for));
                    }
                    if let Some(every) = rule.repeat_interval
                        && active.alert.acknowledgement.is_none()
                    {
                        consider(next_repeat(
                            active.last_notified,
                            every,
                            self.horizon.max(now),
                        ));
                    }
                }
            }
        }
        let Some(at) = next else {
            return;
        };
        // An earlier entry for this series stays valid: when it pops, evaluation reschedules.
        if series.scheduled.is_some_and(|s| s > now && s <= at) {
            return;
        }
        series.scheduled = Some(at);
        self.timers.push(Reverse(Timer {
            at,
            slot: ctx.slot,
            generation: ctx.generation,
            thing: Arc::clone(&series.thing),
        }));
    }

    /// Rebuilds the heap from the live schedule when stale entries dominate it.
    fn compact_timers(&mut self, slots: &[Slot]) {
        if self.timers.len() <= 1024 || self.timers.len() <= 2 * self.live_series {
            return;
        }
        let mut fresh = BinaryHeap::with_capacity(self.live_series);
        for (slot, s) in slots.iter().enumerate() {
            let Some(compiled) = &s.rule else { continue };
            for series in compiled.series.values() {
                if let Some(at) = series.scheduled {
                    fresh.push(Reverse(Timer {
                        at,
                        slot,
                        generation: s.generation,
                        thing: Arc::clone(&series.thing),
                    }));
                }
            }
        }
        self.timers = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_alert_reusing_one_dropped_from_the_history_is_its_own() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut engine = Engine::new().with_history_limit(1);
        for (id, thing, team) in [("a", "t1", "x"), ("b", "t2", "y")] {
            let mut rule = Rule::new(id, thing, "p", Condition::Gt(1.0));
            rule.labels.insert("team".into(), team.into());
            engine.add_rule(rule, t0).unwrap();
        }
        let mut at = t0;
        for round in 0..4u64 {
            for (id, thing, team) in [("a", "t1", "x"), ("b", "t2", "y")] {
                at += Duration::from_secs(10);
                let fired = engine.update(at, &PropertyUpdate::new(thing, "p", json!(2 + round)));
                let [n] = fired.as_slice() else {
                    panic!("one notification: {fired:?}")
                };
                let a = &n.alert;
                assert_eq!(
                    (a.rule.as_str(), a.thing.as_str(), a.property.as_str()),
                    (id, thing, "p")
                );
                let labels: Vec<(&str, &str)> = a
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(
                    labels,
                    [
                        ("alertname", id),
                        ("property", "p"),
                        ("severity", "warning"),
                        ("team", team),
                        ("thing", thing)
                    ]
                );
                assert_eq!(a.summary, format!("{id}: {thing} p is {}", 2 + round));
                assert_eq!(
                    (a.active_since, a.fired_at, a.resolved_at),
                    (at, Some(at), None)
                );
                assert_eq!(a.acknowledgement, None);
                if round % 2 == 0 {
                    engine.acknowledge(at, id, thing, "ops", None).unwrap();
                }
                at += Duration::from_secs(1);
                let resolved = engine.update(at, &PropertyUpdate::new(thing, "p", json!(0)));
                assert_eq!(resolved[0].kind, NotificationKind::Resolved);
                assert_eq!(engine.history().back().map(|a| a.id), Some(n.alert.id));
            }
        }
    }

    #[test]
    fn notifications_share_the_alert_and_keep_it_as_it_was() {
        let t0 = SystemTime::UNIX_EPOCH;
        let at = |s: u64| t0 + Duration::from_secs(s);
        let update = |v: f64| PropertyUpdate::new("t", "p", json!(v));
        let mut engine = Engine::new();
        engine
            .add_rule(Rule::new("r", "t", "p", Condition::Gt(1.0)), t0)
            .unwrap();
        let fired = engine.update(at(1), &update(2.0));
        // The engine's alert changes while the caller holds the notification about it.
        assert!(engine.update(at(2), &update(3.0)).is_empty());
        assert_eq!(fired[0].alert.value, Some(json!(2.0)));
        assert_eq!(fired[0].alert.state, AlertState::Firing);
        assert_eq!(engine.active_alerts()[0].value, Some(json!(3.0)));
        let resolved = engine.update(at(3), &update(0.0));
        assert_eq!(fired[0].alert.state, AlertState::Firing);
        assert_eq!(resolved[0].alert.state, AlertState::Resolved);
        assert_eq!(resolved[0].alert.value, Some(json!(0.0)));
        let history = engine.history();
        assert!(Arc::ptr_eq(&resolved[0].alert, &history[0]));
        assert_eq!(history[0].id, fired[0].alert.id);
    }

    #[test]
    fn an_alert_left_the_history_is_reused_only_when_nobody_holds_it() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut engine = Engine::new().with_history_limit(1);
        engine
            .add_rule(Rule::new("r", "t", "p", Condition::Gt(1.0)), t0)
            .unwrap();
        let mut now = t0;
        let mut cycle = |engine: &mut Engine, v: f64| {
            now += Duration::from_secs(10);
            let fired = engine.update(now, &PropertyUpdate::new("t", "p", json!(v)));
            now += Duration::from_secs(1);
            let resolved = engine.update(now, &PropertyUpdate::new("t", "p", json!(0)));
            (fired[0].clone(), resolved[0].clone())
        };
        // Not held: the first resolved alert's allocation serves the third alert, once the
        // second pushed it out of the history.
        let first = Arc::as_ptr(&cycle(&mut engine, 2.0).1.alert) as usize;
        let _ = cycle(&mut engine, 3.0);
        let (third, _) = cycle(&mut engine, 4.0);
        assert_eq!(Arc::as_ptr(&third.alert) as usize, first);
        assert_eq!(third.alert.value, Some(json!(4.0)));
        // Held: what the caller holds stays as it was.
        let (_, held) = cycle(&mut engine, 5.0);
        let _ = cycle(&mut engine, 6.0);
        let (later, _) = cycle(&mut engine, 7.0);
        assert!(!Arc::ptr_eq(&later.alert, &held.alert));
        assert_eq!(held.alert.value, Some(json!(0)));
        assert_eq!(held.alert.state, AlertState::Resolved);
        assert_eq!(held.alert.id + 2, later.alert.id);
    }

    #[test]
    fn alerts_of_any_thing_rules_reuse_alerts_that_left_the_history() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut engine = Engine::new().with_history_limit(1);
        let mut any = Rule::new("any", "*", "p", Condition::Gt(1.0));
        // The alert's own `thing` label wins over the rule's.
        any.labels.insert("thing".into(), "ignored".into());
        engine.add_rule(any, t0).unwrap();
        engine
            .add_rule(Rule::new("named", "t9", "p", Condition::Gt(1.0)), t0)
            .unwrap();
        let mut at = t0;
        for (round, thing) in ["t1", "t9", "t2", "t9", "t3", "t1"].into_iter().enumerate() {
            at += Duration::from_secs(10);
            let fired = engine.update(at, &PropertyUpdate::new(thing, "p", json!(2)));
            let mut rules: Vec<&str> = fired.iter().map(|n| n.alert.rule.as_str()).collect();
            rules.sort_unstable();
            let expected: &[&str] = if thing == "t9" {
                &["any", "named"]
            } else {
                &["any"]
            };
            assert_eq!(rules, expected, "round {round}");
            for n in &fired {
                let a = &n.alert;
                assert_eq!(a.thing, thing);
                let labels: Vec<(&str, &str)> = a
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(
                    labels,
                    [
                        ("alertname", a.rule.as_str()),
                        ("property", "p"),
                        ("severity", "warning"),
                        ("thing", thing)
                    ]
                );
                assert_eq!(a.summary, format!("{}: {thing} p is 2", a.rule));
            }
            at += Duration::from_secs(1);
            drop(fired);
            let resolved = engine.update(at, &PropertyUpdate::new(thing, "p", json!(0)));
            assert_eq!(resolved.len(), expected.len());
        }
    }

    #[test]
    fn rule_pointers_find_what_value_pointer_finds() {
        let v = json!({"a/b": {"m~n": [10, {"x": 1}]}, "list": [1, 2], "": 7, "0": "zero"});
        let wide: serde_json::Map<String, serde_json::Value> =
            (0..20).map(|i| (format!("k{i}"), json!(i))).collect();
        let wide = serde_json::Value::Object(wide);
        for (v, p) in [
            "",
            "/a~1b",
            "/a~1b/m~0n",
            "/a~1b/m~0n/1/x",
            "/list/1",
            "/list/01",
            "/list/+1",
            "/list/2",
            "/list/x",
            "/",
            "/0",
            "/missing/deeper",
            "/list/1/x",
        ]
        .map(|p| (&v, p))
        .into_iter()
        .chain(["/k0", "/k19", "/k20"].map(|p| (&wide, p)))
        {
            let tokens = pointer_tokens(p).unwrap_or_default();
            for data in [Data::from(v.clone()), Data::parse(v.to_string()).unwrap()] {
                assert_eq!(data.get_path(&tokens).as_deref(), v.pointer(p), "{p:?}");
            }
        }
    }
}
