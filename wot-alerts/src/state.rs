//! The engine's persistable state: what it must not forget across a restart.
//!
//! [`EngineState`] is a versioned snapshot ([`Engine::state`](crate::Engine::state));
//! [`StateChanges`] is what changed since the previous
//! [`Engine::take_changes`](crate::Engine::take_changes), so that a store writes only that.
//! [`Engine::restore`](crate::Engine::restore) puts a snapshot back into an engine whose rules
//! are loaded.
//!
//! # The restart rule
//!
//! The state keeps, per (rule, thing) series, the last value and the times the conditions
//! need (latest updates, `rate` samples) and the alert with its own times. Restored, it behaves
//! as if the engine had not stopped but had seen no update while it was down:
//!
//! - A **pending** alert keeps the time its condition started holding (as Prometheus restores
//!   the `for` state of its alerts). Its hold time counts the downtime: if the hold ended while
//!   the engine was down, the alert fires at the first evaluation after the restore (the first
//!   [`tick`](crate::Engine::tick) or [`update`](crate::Engine::update) at or after the restore
//!   time) if its condition still holds on the last value seen before the restart.
//! - A **firing** alert stays firing and is not notified again; its acknowledgement, severity
//!   (escalation) and `keep_firing_for` progress are kept. A `repeat_interval` counts from its
//!   last notification before the restart: a repeat due during the downtime is sent at the first
//!   evaluation after the restore.
//! - **No-data** deadlines of series without an alert count from the restore time, as they do
//!   for a rule added at start: the engine cannot tell a Thing that went quiet from its own
//!   downtime. A series whose pending or firing alert exists keeps the time of its last update,
//!   so a `no_data` alert stays as it was until data arrives.
//! - **Silences** keep their ids and times; new silence ids continue after the restored ones,
//!   and alert ids continue after theirs. Notification ids start a new series: their first
//!   half is the new engine's random instance number, so an id sent before a crash is never
//!   given to another notification after it (even one whose commit was lost).
//!
//! - **Times ahead of the restart.** The engine's time becomes the saved time when that is
//!   later than the restart time by at most [`MAX_SAVED_TIME_AHEAD`] (a clock that stepped
//!   back a little); a saved time further ahead (a wrong clock before the restart, a board
//!   without a real-time clock, a damaged or hostile file) is not used: the engine's time is
//!   the restart time, a warning is logged and [`RestoreReport::saved_time_ahead`] says by how
//!   much. Then no saved time may lie after the engine's time: an update, pending-since,
//!   firing, clearing, notification or acknowledgement time later than it is taken as it, and
//!   a `rate` sample later than it is dropped (counted in [`RestoreReport::times_clamped`]),
//!   so no deadline waits for the wall clock to catch up with a wrong one. Silences keep their
//!   times, which the people who set them chose.
//! - **Alert ids** continue after the saved ones. The `AlertManager` commits a new alert (a
//!   pending one too) at once, as it does notifications, not with the series changes that
//!   wait for the commit interval; so after a crash an alert id shown before it is not given
//!   to another alert, unless the crash came before that commit landed (the time of one
//!   commit) or while commits were failing
//!   (`ManagerEvent::StoreFailed`).
//!
//! State of rules that are no longer loaded is dropped (and counted in [`RestoreReport`]), as is
//! state whose rule now watches another property or thing.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::engine::{Acknowledgement, AlertState, Silence, SilenceId};
use crate::rule::Severity;

/// The version of [`EngineState`] (and [`StateChanges`]) this build writes and reads.
pub const ENGINE_STATE_VERSION: u32 = 1;

/// How far [`EngineState::now`] may be ahead of the restart time for
/// [`Engine::restore`](crate::Engine::restore) to take it as the engine's time: 5 minutes.
/// Further ahead, the saved time is not used (see the restart rule above and
/// [`RestoreReport::saved_time_ahead`]).
pub const MAX_SAVED_TIME_AHEAD: Duration = Duration::from_secs(5 * 60);

/// Default of the `max_bytes` limit of [`EngineState::from_json`]: 1 GiB.
pub const DEFAULT_MAX_STATE_BYTES: u64 = 1 << 30;

/// A snapshot of everything the [`Engine`](crate::Engine) must not forget across a restart:
/// its series (last values, update times, `rate` samples) with their pending or firing alerts,
/// the silences, and the counters its ids come from.
///
/// Rules are not part of it: they are the application's, loaded before a restore. Resolved
/// alerts (the engine's history) are not part of it either.
///
/// Serialized with serde (JSON via [`to_json`](Self::to_json) and
/// [`from_json`](Self::from_json)); times inside series are nanoseconds since the Unix epoch,
/// and fields at their default (no value, no alert, no samples...) are left out, so the serde
/// form is for self-describing formats (JSON, CBOR, MessagePack), not for formats that rely on
/// the order of fields such as bincode or postcard.
///
/// # Examples
/// ```
/// use std::time::{Duration, SystemTime};
/// use wot_alerts::{Condition, Engine, EngineState, PropertyUpdate, Rule};
///
/// let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let mut rule = Rule::new("hot", "fridge-1", "temperature", Condition::Gt(8.0));
/// rule.hold_for = Duration::from_secs(30);
///
/// let mut engine = Engine::new();
/// engine.add_rule(rule.clone(), t0)?;
/// let _ = engine.update(t0, &PropertyUpdate::new("fridge-1", "temperature", serde_json::json!(12)));
/// let saved = engine.state().to_json();
///
/// // A new process: the same rules, then the saved state, 10 minutes later.
/// let restart = t0 + Duration::from_secs(600);
/// let mut engine = Engine::new();
/// engine.add_rule(rule, restart)?;
/// let report = engine.restore(EngineState::from_json(&saved, 1 << 20)?, restart)?;
/// assert_eq!(report.pending, 1);
/// // The hold time ended while the engine was down: it fires at the first evaluation.
/// let fired = engine.tick(restart);
/// assert_eq!(fired.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EngineState {
    /// The format version, [`ENGINE_STATE_VERSION`] when written by this build.
    pub version: u32,
    /// The instance of the engine that saved it: a random number chosen by each new engine,
    /// the first half of its [`NotificationId`](crate::NotificationId)s. Informational: a
    /// restored engine keeps its own, so that its notification ids cannot repeat one sent
    /// before the restart, even one whose commit was lost.
    pub instance: u64,
    /// The latest time the engine had seen.
    #[serde(with = "time_ns")]
    pub now: SystemTime,
    /// The id of the next alert.
    pub next_alert_id: u64,
    /// The sequence number of the next notification.
    pub next_notification_id: u64,
    /// The id of the next silence.
    pub next_silence_id: u64,
    /// The series, by (rule id, thing id); serialized as a list.
    #[serde(with = "series_list")]
    pub series: BTreeMap<SeriesKey, SeriesState>,
    /// The silences, expired ones included; serialized as a list.
    #[serde(with = "silence_list")]
    pub silences: BTreeMap<SilenceId, Silence>,
}

/// Identifies a series: one rule and one thing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey {
    /// The rule's id.
    pub rule: String,
    /// The thing's id.
    pub thing: String,
}

impl SeriesKey {
    /// The key of `rule`'s series for `thing`.
    pub fn new(rule: impl Into<String>, thing: impl Into<String>) -> Self {
        SeriesKey {
            rule: rule.into(),
            thing: thing.into(),
        }
    }
}

/// What the engine knows about one (rule, thing): the inputs of its conditions and its alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SeriesState {
    /// The rule's id.
    pub rule: String,
    /// The thing's id.
    pub thing: String,
    /// The rule's property (a restored series whose rule now watches another one is dropped).
    pub property: String,
    /// The latest value seen (after the rule's pointer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    /// Whether the latest value differed from the one before (`changed` conditions).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
    /// Time of the latest update, or when watching started (`no_data` conditions).
    #[serde(with = "time_ns")]
    pub last_update: SystemTime,
    /// The latest update time before that one (the start of the gap it ended).
    #[serde(with = "time_ns")]
    pub previous_update: SystemTime,
    /// Numeric samples within the `rate` window, oldest first, as (time, value).
    #[serde(default, with = "samples_ns", skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<(SystemTime, f64)>,
    /// The pending or firing alert, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<AlertRecord>,
}

impl SeriesState {
    /// This series' key.
    pub fn key(&self) -> SeriesKey {
        SeriesKey::new(self.rule.clone(), self.thing.clone())
    }
}

/// A pending or firing alert as saved: what its notifications and deadlines depend on. Its
/// labels and value are rebuilt from the rule and the series when restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlertRecord {
    /// The alert's id.
    pub id: u64,
    /// [`AlertState::Pending`] or [`AlertState::Firing`].
    pub state: AlertState,
    /// The current severity, escalations included.
    pub severity: Severity,
    /// When the condition started holding (pending-since).
    #[serde(with = "time_ns")]
    pub active_since: SystemTime,
    /// When the alert started firing.
    #[serde(default, with = "opt_time_ns", skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<SystemTime>,
    /// When its clearing began (`keep_firing_for` counts from it), while it lasts.
    #[serde(default, with = "opt_time_ns", skip_serializing_if = "Option::is_none")]
    pub resolving_since: Option<SystemTime>,
    /// When `fired` or `severity_changed` was last notified (or would have been, but for a
    /// silence): `repeat_interval` counts from it.
    #[serde(with = "time_ns")]
    pub last_notified: SystemTime,
    /// Repeats notified so far.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub repeats: u32,
    /// The acknowledgement, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledgement: Option<Acknowledgement>,
    /// The summary as last rendered.
    #[serde(default)]
    pub summary: String,
}

/// What changed in an engine since the previous [`Engine::take_changes`](crate::Engine::take_changes):
/// applied in order with [`EngineState::apply`] to the state saved before, it gives the
/// engine's current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StateChanges {
    /// The format version, [`ENGINE_STATE_VERSION`].
    pub version: u32,
    /// [`EngineState::instance`] now.
    pub instance: u64,
    /// [`EngineState::now`] now.
    #[serde(with = "time_ns")]
    pub now: SystemTime,
    /// [`EngineState::next_alert_id`] now.
    pub next_alert_id: u64,
    /// [`EngineState::next_notification_id`] now.
    pub next_notification_id: u64,
    /// [`EngineState::next_silence_id`] now.
    pub next_silence_id: u64,
    /// Series removed (their rule was removed or dropped at a restore). Applied before
    /// [`series`](Self::series).
    pub removed_series: Vec<SeriesKey>,
    /// Series added or changed, each as it is now.
    pub series: Vec<SeriesState>,
    /// Silences removed. Applied before [`silences`](Self::silences).
    pub removed_silences: Vec<SilenceId>,
    /// Silences added or changed, each as it is now.
    pub silences: Vec<(SilenceId, Silence)>,
}

impl StateChanges {
    /// Whether no series or silence changed (the counters and the time may have).
    pub fn is_empty(&self) -> bool {
        self.removed_series.is_empty()
            && self.series.is_empty()
            && self.removed_silences.is_empty()
            && self.silences.is_empty()
    }

    /// Folds `later` (taken after these changes) into these, so that applying the result
    /// does what applying both in order does: a store can group several into one write.
    pub fn merge(&mut self, later: StateChanges) {
        // Series that `later` removes or replaces: the earlier version need not be written.
        let superseded: std::collections::HashSet<(&str, &str)> = later
            .removed_series
            .iter()
            .map(|k| (k.rule.as_str(), k.thing.as_str()))
            .chain(
                later
                    .series
                    .iter()
                    .map(|s| (s.rule.as_str(), s.thing.as_str())),
            )
            .collect();
        self.series
            .retain(|s| !superseded.contains(&(s.rule.as_str(), s.thing.as_str())));
        let gone: std::collections::BTreeSet<SilenceId> = later
            .removed_silences
            .iter()
            .chain(later.silences.iter().map(|(id, _)| id))
            .copied()
            .collect();
        self.silences.retain(|(id, _)| !gone.contains(id));
        self.removed_series.extend(later.removed_series);
        self.series.extend(later.series);
        self.removed_silences.extend(later.removed_silences);
        self.silences.extend(later.silences);
        self.version = later.version;
        self.instance = later.instance;
        self.now = later.now;
        self.next_alert_id = later.next_alert_id;
        self.next_notification_id = later.next_notification_id;
        self.next_silence_id = later.next_silence_id;
    }
}

impl EngineState {
    /// An empty state of this version: what an engine without rules, alerts or silences saves.
    pub fn new(instance: u64, now: SystemTime) -> Self {
        EngineState {
            version: ENGINE_STATE_VERSION,
            instance,
            now,
            next_alert_id: 1,
            next_notification_id: 1,
            next_silence_id: 1,
            series: BTreeMap::new(),
            silences: BTreeMap::new(),
        }
    }

    /// Applies `changes` (taken after this state was saved, or after the changes applied
    /// before): removals first, then the series and silences as they are now, then the
    /// counters and the time.
    ///
    /// # Errors
    /// [`StateError::UnsupportedVersion`] when `changes` has another version than this state.
    pub fn apply(&mut self, changes: &StateChanges) -> Result<(), StateError> {
        if changes.version != self.version {
            return Err(StateError::UnsupportedVersion {
                found: changes.version,
                supported: self.version,
            });
        }
        for key in &changes.removed_series {
            self.series.remove(key);
        }
        for s in &changes.series {
            self.series.insert(s.key(), s.clone());
        }
        for id in &changes.removed_silences {
            self.silences.remove(id);
        }
        for (id, s) in &changes.silences {
            self.silences.insert(*id, s.clone());
        }
        self.instance = changes.instance;
        self.now = changes.now;
        self.next_alert_id = changes.next_alert_id;
        self.next_notification_id = changes.next_notification_id;
        self.next_silence_id = changes.next_silence_id;
        Ok(())
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Every field serializes: strings, numbers, JSON values and times after 1970 (the
        // engine's times are; an earlier one is written as 0).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a state written by [`to_json`](Self::to_json), refusing more than `max_bytes`
    /// bytes (see [`DEFAULT_MAX_STATE_BYTES`]) before parsing anything. The version is read
    /// first: a state of another version is refused, whatever else it holds. Nesting is
    /// bounded by the JSON parser (128 levels), so memory and time stay proportional to the
    /// input.
    ///
    /// # Errors
    /// [`StateError::TooLarge`], [`StateError::UnsupportedVersion`], or
    /// [`StateError::Malformed`] naming the JSON path at fault.
    pub fn from_json(bytes: &[u8], max_bytes: u64) -> Result<Self, StateError> {
        read(bytes, max_bytes)
    }
}

impl StateChanges {
    /// The changes as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads changes written by [`to_json`](Self::to_json), with the checks of
    /// [`EngineState::from_json`].
    ///
    /// # Errors
    /// As [`EngineState::from_json`].
    pub fn from_json(bytes: &[u8], max_bytes: u64) -> Result<Self, StateError> {
        read(bytes, max_bytes)
    }
}

/// The checks of [`EngineState::from_json`] in order (size, then version), then the parse.
fn read<T: serde::de::DeserializeOwned>(bytes: &[u8], max_bytes: u64) -> Result<T, StateError> {
    check_size(bytes, max_bytes)?;
    check_version(bytes)?;
    parse(bytes)
}

fn check_size(bytes: &[u8], max_bytes: u64) -> Result<(), StateError> {
    let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if len > max_bytes {
        return Err(StateError::TooLarge {
            bytes: len,
            limit: max_bytes,
        });
    }
    Ok(())
}

/// Reads only `version` (skipping the rest without building it) and checks it. A document
/// whose version cannot be read is left to the full parse, which names what is wrong.
fn check_version(bytes: &[u8]) -> Result<(), StateError> {
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let Ok(v) = serde_json::from_slice::<Version>(bytes) else {
        return Ok(());
    };
    if v.version != ENGINE_STATE_VERSION {
        return Err(StateError::UnsupportedVersion {
            found: v.version,
            supported: ENGINE_STATE_VERSION,
        });
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StateError> {
    // The fast path; only a failure is parsed again, tracking the path to name it.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| StateError::Malformed {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    de.end().map_err(|e| StateError::Malformed {
        path: ".".into(),
        message: e.to_string(),
    })?;
    Ok(value)
}

/// Why a saved state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The state was written in another format version.
    #[error(
        "alert engine state of version {found} is not supported: this build reads version {supported}"
    )]
    UnsupportedVersion {
        /// The version of the state.
        found: u32,
        /// The version this build reads ([`ENGINE_STATE_VERSION`]).
        supported: u32,
    },
    /// The serialized state is larger than allowed.
    #[error("alert engine state of {bytes} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The serialized state is not valid.
    #[error("alert engine state is malformed at `{path}`: {message}")]
    Malformed {
        /// Where, as a JSON path (`series[3].alert.state`).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A series holds something an engine cannot have (a resolved alert, say).
    #[error("alert engine state, rule `{rule}`, thing `{thing}`: {message}")]
    Invalid {
        /// The series' rule.
        rule: String,
        /// The series' thing.
        thing: String,
        /// What is wrong.
        message: String,
    },
}

/// What [`Engine::restore`](crate::Engine::restore) restored and dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Series restored.
    pub series: usize,
    /// Pending alerts among them.
    pub pending: usize,
    /// Firing alerts among them.
    pub firing: usize,
    /// Acknowledged alerts among the firing ones.
    pub acknowledged: usize,
    /// Silences restored.
    pub silences: usize,
    /// Series dropped because their rule is not loaded.
    pub dropped_unknown_rule: usize,
    /// Series dropped because their rule now watches another property or thing.
    pub dropped_mismatch: usize,
    /// Series dropped because the engine's series limit was reached.
    pub dropped_over_limit: usize,
    /// How far the saved [`EngineState::now`] was ahead of the restart time, when that was
    /// more than [`MAX_SAVED_TIME_AHEAD`]: the saved time was then not used, and the engine's
    /// time is the restart time. `None` when the saved time was used or was not ahead.
    pub saved_time_ahead: Option<Duration>,
    /// Saved times of restored series that lay after the engine's time: update, pending-since,
    /// firing, clearing, notification and acknowledgement times taken as the engine's time,
    /// and `rate` samples dropped.
    pub times_clamped: usize,
}

impl RestoreReport {
    /// Series dropped, for any reason.
    pub fn dropped(&self) -> usize {
        self.dropped_unknown_rule + self.dropped_mismatch + self.dropped_over_limit
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Nanoseconds since the Unix epoch (times before it are written as 0).
fn to_ns(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn from_ns(ns: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)
}

mod time_ns {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(to_ns(*t))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<SystemTime, D::Error> {
        u64::deserialize(d).map(from_ns)
    }
}

mod opt_time_ns {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        t.map(to_ns).serialize(s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(from_ns))
    }
}

mod samples_ns {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(
        samples: &[(SystemTime, f64)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(samples.iter().map(|(t, v)| (to_ns(*t), *v)))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(SystemTime, f64)>, D::Error> {
        let raw = Vec::<(u64, f64)>::deserialize(d)?;
        Ok(raw.into_iter().map(|(t, v)| (from_ns(t), v)).collect())
    }
}

mod series_list {
    use super::*;

    pub(super) fn serialize<S: serde::Serializer>(
        series: &BTreeMap<SeriesKey, SeriesState>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(series.values())
    }

    /// Inserts each series as it is read: no list of them all is built first.
    struct Visitor;

    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = BTreeMap<SeriesKey, SeriesState>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of series")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut series = BTreeMap::new();
            while let Some(s) = seq.next_element::<SeriesState>()? {
                series.insert(s.key(), s);
            }
            Ok(series)
        }
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<SeriesKey, SeriesState>, D::Error> {
        d.deserialize_seq(Visitor)
    }
}

mod silence_list {
    use super::*;

    #[derive(Serialize)]
    struct Entry<'a> {
        id: SilenceId,
        silence: &'a Silence,
    }

    #[derive(Deserialize)]
    struct Owned {
        id: SilenceId,
        silence: Silence,
    }

    pub(super) fn serialize<S: serde::Serializer>(
        silences: &BTreeMap<SilenceId, Silence>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            silences
                .iter()
                .map(|(id, silence)| Entry { id: *id, silence }),
        )
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<SilenceId, Silence>, D::Error> {
        let list = Vec::<Owned>::deserialize(d)?;
        Ok(list.into_iter().map(|e| (e.id, e.silence)).collect())
    }
}
