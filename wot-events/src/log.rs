//! `EventLog`: a capped timeline of event records from many subscriptions, with statistics.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use crate::filter::Filter;
use crate::record::{ByteSize, EventRecord, SharedStr};

/// Default number of records an [`EventLog`] keeps.
pub const DEFAULT_LOG_CAPACITY: usize = 1000;
/// Default byte budget of an [`EventLog`] (estimated by [`ByteSize`]): 16 MiB.
pub const DEFAULT_LOG_BYTES: usize = 16 * 1024 * 1024;
/// Default sliding window for [`LogStats::events_per_minute`].
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(300);

/// A merged timeline of [`EventRecord`]s, newest first, capped.
///
/// Plain data: feed it records (from [`subscribe_all`](crate::EventSubscriber::subscribe_all) or any
/// subscription), query it, read statistics. Time is passed in (`now`) so results are
/// deterministic.
///
/// Statistics count every record ever pushed (not only those still held), except the rate,
/// which counts records received within the sliding window.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use wot_events::{EventLog, EventRecord, LogQuery};
///
/// let now = SystemTime::now();
/// let mut log = EventLog::new();
/// for (i, name) in ["overheat", "door", "overheat"].into_iter().enumerate() {
///     log.push(EventRecord {
///         thing_id: "urn:dev:boiler".into(),
///         thing_title: "Boiler".into(),
///         event: name.into(),
///         data: serde_json::json!({"n": i}).into(),
///         event_id: None,
///         received_at: now,
///     });
/// }
/// let hits = log.query(&LogQuery::new().event("overheat"));
/// assert_eq!(hits.len(), 2);
/// assert_eq!(hits[0].data["n"], 2); // newest first
/// assert_eq!(log.stats(now).per_event["overheat"], 2);
/// ```
#[derive(Debug, Clone)]
pub struct EventLog {
    /// Newest first, each with its estimated bytes (measured once, when pushed).
    records: VecDeque<(EventRecord, usize)>,
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
    rate_window: Duration,
    /// Records and the newest `received_at` per Thing id.
    per_thing: Tally<SystemTime>,
    /// Records per event name.
    per_event: Tally<()>,
    /// Records per whole second of `received_at`, oldest first, pruned to the rate window.
    buckets: VecDeque<(u64, u64)>,
    total: u64,
}

impl Default for EventLog {
    fn default() -> Self {
        Self::new()
    }
}

/// Statistics of an [`EventLog`].
#[derive(Debug, Clone, PartialEq)]
pub struct LogStats {
    /// Records pushed, all time.
    pub total: u64,
    /// Records pushed per Thing id, all time.
    pub per_thing: BTreeMap<String, u64>,
    /// Records pushed per event name, all time.
    pub per_event: BTreeMap<String, u64>,
    /// Mean events per minute over the sliding window ending at `now`.
    pub events_per_minute: f64,
    /// The newest `received_at` per Thing id.
    pub last_seen: BTreeMap<String, SystemTime>,
}

impl EventLog {
    /// An empty log keeping [`DEFAULT_LOG_CAPACITY`] (1000) records and at most
    /// [`DEFAULT_LOG_BYTES`] (16 MiB) of them, with a rate window of [`DEFAULT_RATE_WINDOW`]
    /// (5 minutes).
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_LOG_CAPACITY)
    }

    /// An empty log keeping at most `capacity` records.
    pub fn with_capacity(capacity: usize) -> Self {
        EventLog {
            records: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
            max_bytes: DEFAULT_LOG_BYTES,
            bytes: 0,
            rate_window: DEFAULT_RATE_WINDOW,
            per_thing: Tally::default(),
            per_event: Tally::default(),
            buckets: VecDeque::new(),
            total: 0,
        }
    }

    /// Sets the byte budget: past it the oldest records are dropped, by the estimate of
    /// [`ByteSize`] (default [`DEFAULT_LOG_BYTES`], 16 MiB; the newest record is always kept).
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self.evict();
        self
    }

    /// The estimated bytes of the records held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops the oldest records while over the byte budget, keeping one.
    fn evict(&mut self) {
        while self.bytes > self.max_bytes && self.records.len() > 1 {
            if let Some((_, old_bytes)) = self.records.pop_back() {
                self.bytes = self.bytes.saturating_sub(old_bytes);
            }
        }
    }

    /// Sets the sliding window for the events-per-minute rate (default 5 minutes; at least
    /// one second is used).
    #[must_use]
    pub fn rate_window(mut self, window: Duration) -> Self {
        self.rate_window = window.max(Duration::from_secs(1));
        self
    }

    /// Adds a record. When full, the oldest record is dropped.
    ///
    /// Its Thing id and event name are counted under the shared text the record carries
    /// (no copy for names seen before), and its size is estimated once, here.
    pub fn push(&mut self, record: EventRecord) {
        self.total += 1;
        if let Some(seen) = self
            .per_thing
            .count(&record.thing_id, || record.received_at)
            && record.received_at > *seen
        {
            *seen = record.received_at;
        }
        self.per_event.count(&record.event, || ());
        let sec = secs(record.received_at);
        // Records arrive roughly in time order; one out of order goes into its bucket.
        match self.buckets.iter_mut().rev().find(|(s, _)| *s <= sec) {
            Some((s, n)) if *s == sec => *n += 1,
            _ => {
                let pos = self.buckets.partition_point(|(s, _)| *s < sec);
                self.buckets.insert(pos, (sec, 1));
            }
        }
        self.prune_buckets(sec);
        if self.capacity == 0 {
            return;
        }
        if self.records.len() >= self.capacity
            && let Some((_, old_bytes)) = self.records.pop_back()
        {
            self.bytes = self.bytes.saturating_sub(old_bytes);
        }
        let bytes = record.byte_size();
        self.bytes = self.bytes.saturating_add(bytes);
        // Newest first: at the front, or further back if it is older than the front.
        match self.records.front() {
            Some((newest, _)) if newest.received_at > record.received_at => {
                let pos = self
                    .records
                    .iter()
                    .position(|(r, _)| r.received_at <= record.received_at)
                    .unwrap_or(self.records.len());
                self.records.insert(pos, (record, bytes));
            }
            _ => self.records.push_front((record, bytes)),
        }
        self.evict();
    }

    fn prune_buckets(&mut self, newest_sec: u64) {
        let window = self.rate_window.as_secs().max(1);
        let oldest_kept = newest_sec.saturating_sub(window);
        while self.buckets.front().is_some_and(|(s, _)| *s < oldest_kept) {
            self.buckets.pop_front();
        }
    }

    /// The records held, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &EventRecord> {
        self.records.iter().map(|(r, _)| r)
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records matching `query`, newest first.
    pub fn query(&self, query: &LogQuery) -> Vec<&EventRecord> {
        self.iter().filter(|r| query.matches(r)).collect()
    }

    /// Statistics at time `now`.
    pub fn stats(&self, now: SystemTime) -> LogStats {
        let window = self.rate_window.as_secs().max(1);
        let now_sec = secs(now);
        // Buckets in (now - window, now].
        let in_window: u64 = self
            .buckets
            .iter()
            .filter(|(s, _)| *s <= now_sec && s.saturating_add(window) > now_sec)
            .map(|(_, n)| n)
            .sum();
        LogStats {
            total: self.total,
            per_thing: self.per_thing.counts(),
            per_event: self.per_event.counts(),
            events_per_minute: in_window as f64 * 60.0 / window as f64,
            last_seen: self
                .per_thing
                .iter()
                .map(|(k, _, seen)| (k, *seen))
                .collect(),
        }
    }
}

/// Counts per name (with something more per name, `T`), keyed by the records' shared text.
///
/// The name of the previous record is compared first (a pointer, then the text): records of
/// one subscription carry the same `SharedStr`, so most counts find their entry without
/// hashing.
#[derive(Debug, Clone)]
struct Tally<T> {
    entries: Vec<(SharedStr, u64, T)>,
    index: HashMap<SharedStr, usize>,
    last: usize,
}

impl<T> Default for Tally<T> {
    fn default() -> Self {
        Tally {
            entries: Vec::new(),
            index: HashMap::new(),
            last: 0,
        }
    }
}

impl<T> Tally<T> {
    /// Adds one to `key`'s count (a new entry starts with `first()`); returns its `T`.
    fn count(&mut self, key: &SharedStr, first: impl FnOnce() -> T) -> Option<&mut T> {
        let hit = self
            .entries
            .get(self.last)
            .is_some_and(|(k, _, _)| k.ptr_eq(key) || k == key);
        if !hit {
            self.last = match self.index.get(key.as_str()) {
                Some(&at) => at,
                None => {
                    self.index.insert(key.clone(), self.entries.len());
                    self.entries.push((key.clone(), 0, first()));
                    self.entries.len() - 1
                }
            };
        }
        let (_, n, extra) = self.entries.get_mut(self.last)?;
        *n += 1;
        Some(extra)
    }

    fn iter(&self) -> impl Iterator<Item = (String, u64, &T)> {
        self.entries
            .iter()
            .map(|(k, n, extra)| (k.to_string(), *n, extra))
    }

    fn counts(&self) -> BTreeMap<String, u64> {
        self.iter().map(|(k, n, _)| (k, n)).collect()
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A query over an [`EventLog`]: every condition set must hold.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct LogQuery {
    things: Vec<String>,
    events: Vec<String>,
    filter: Option<Filter>,
    text: Option<String>,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl LogQuery {
    /// A query that matches everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only records of this Thing id (call again to allow several; default: any Thing).
    pub fn thing(mut self, thing_id: impl Into<String>) -> Self {
        self.things.push(thing_id.into());
        self
    }

    /// Only records of this event name (call again to allow several; default: any event).
    pub fn event(mut self, name: impl Into<String>) -> Self {
        self.events.push(name.into());
        self
    }

    /// Only records passing this filter (e.g. a declarative filter on a `/severity` field;
    /// default: none).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Only records whose Thing id, title, event name or JSON data contain `text`, ignoring
    /// case (default: none).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into().to_lowercase());
        self
    }

    /// Only records received at or after `t` (default: no lower bound).
    pub fn since(mut self, t: SystemTime) -> Self {
        self.since = Some(t);
        self
    }

    /// Only records received at or before `t` (default: no upper bound).
    pub fn until(mut self, t: SystemTime) -> Self {
        self.until = Some(t);
        self
    }

    /// Whether one record matches.
    pub fn matches(&self, r: &EventRecord) -> bool {
        (self.things.is_empty() || self.things.iter().any(|t| *t == r.thing_id))
            && (self.events.is_empty() || self.events.iter().any(|e| *e == r.event))
            && self.since.is_none_or(|t| r.received_at >= t)
            && self.until.is_none_or(|t| r.received_at <= t)
            && self.filter.as_ref().is_none_or(|f| f.matches(r))
            && self.text.as_deref().is_none_or(|needle| {
                r.thing_id.to_lowercase().contains(needle)
                    || r.thing_title.to_lowercase().contains(needle)
                    || r.event.to_lowercase().contains(needle)
                    || r.data.to_string().to_lowercase().contains(needle)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FilterExpr;
    use serde_json::json;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    fn rec(thing: &str, event: &str, data: serde_json::Value, t: u64) -> EventRecord {
        EventRecord {
            thing_id: thing.into(),
            thing_title: thing.to_uppercase().into(),
            event: event.into(),
            data: data.into(),
            event_id: None,
            received_at: at(t),
        }
    }

    #[test]
    fn newest_first_and_capped() {
        let mut log = EventLog::with_capacity(3);
        for i in 0..5 {
            log.push(rec("a", "e", json!(i), i));
        }
        let got: Vec<_> = log.iter().map(|r| r.data.clone()).collect();
        assert_eq!(got, [json!(4), json!(3), json!(2)]);
        // A late record lands in time order.
        log.push(rec("a", "e", json!("late"), 3));
        let got: Vec<_> = log.iter().map(|r| r.data.clone()).collect();
        assert_eq!(got, [json!(4), json!("late"), json!(3)]);
        assert_eq!(log.stats(at(5)).total, 6);
        assert_eq!(EventLog::new().iter().count(), 0);
    }

    #[test]
    fn the_byte_budget_drops_the_oldest() {
        let mut log = EventLog::new().max_bytes(10_000);
        for i in 0..100 {
            log.push(rec("a", "e", json!("x".repeat(1000)), i));
        }
        assert!(log.bytes() <= 10_000, "{}", log.bytes());
        assert!(log.len() < 10);
        assert_eq!(log.iter().next().unwrap().received_at, at(99));
        assert_eq!(log.stats(at(99)).total, 100);
        // One record over the budget alone is kept.
        log.push(rec("a", "e", json!("y".repeat(50_000)), 100));
        assert_eq!(log.len(), 1);
    }

    #[test]
    fn queries_combine() {
        let mut log = EventLog::new();
        log.push(rec(
            "boiler",
            "overheat",
            json!({"severity": "critical", "t": 95}),
            10,
        ));
        log.push(rec(
            "boiler",
            "overheat",
            json!({"severity": "warning", "t": 85}),
            20,
        ));
        log.push(rec("door", "opened", json!({"by": "Alice"}), 30));
        log.push(rec("lamp", "failed", json!({"severity": "critical"}), 40));

        assert_eq!(log.query(&LogQuery::new()).len(), 4);
        assert_eq!(log.query(&LogQuery::new().thing("boiler")).len(), 2);
        assert_eq!(
            log.query(&LogQuery::new().thing("door").thing("lamp"))
                .len(),
            2
        );
        assert_eq!(log.query(&LogQuery::new().event("opened")).len(), 1);
        let critical: Filter = FilterExpr::Eq(crate::filter::Compare {
            pointer: "/severity".into(),
            value: json!("critical"),
        })
        .compile()
        .unwrap();
        let hits = log.query(&LogQuery::new().filter(critical.clone()));
        assert_eq!(
            hits.iter().map(|r| r.thing_id.as_str()).collect::<Vec<_>>(),
            ["lamp", "boiler"]
        );
        assert_eq!(
            log.query(&LogQuery::new().filter(critical).thing("boiler"))
                .len(),
            1
        );
        assert_eq!(log.query(&LogQuery::new().text("alice")).len(), 1);
        assert_eq!(log.query(&LogQuery::new().text("BOILER")).len(), 2);
        assert_eq!(
            log.query(&LogQuery::new().since(at(20)).until(at(30)))
                .len(),
            2
        );
        let closure = Filter::from_fn(|r| r.event.starts_with('o'));
        assert_eq!(log.query(&LogQuery::new().filter(closure)).len(), 3);
    }

    #[test]
    fn stats_count_all_time_and_rate_over_window() {
        let mut log = EventLog::with_capacity(2).rate_window(Duration::from_secs(60));
        for i in 0..30 {
            // 30 events, one every 4 s: 0..116 s
            log.push(rec(
                if i % 3 == 0 { "a" } else { "b" },
                "e",
                json!(i),
                i * 4,
            ));
        }
        let s = log.stats(at(116));
        assert_eq!(s.total, 30);
        assert_eq!(s.per_thing["a"], 10);
        assert_eq!(s.per_thing["b"], 20);
        assert_eq!(s.per_event["e"], 30);
        // Window (56, 116]: events at 60, 64, ..., 116 = 15 events per 60 s.
        assert!(
            (s.events_per_minute - 15.0).abs() < 1e-9,
            "{}",
            s.events_per_minute
        );
        assert_eq!(s.last_seen["a"], at(108));
        assert_eq!(s.last_seen["b"], at(116));
        // Long after: the rate drops to zero, counts stay.
        let later = log.stats(at(1000));
        assert_eq!(later.events_per_minute, 0.0);
        assert_eq!(later.total, 30);
        assert!(log.buckets.len() <= 61);
    }
}
