//! The dashboard's history buffers, each bounded by count and by bytes: the event timeline
//! ([`Timeline`]) and a property's chart values ([`Samples`]); and the tools that keep one
//! remote value small ([`cost`], [`shrink`], [`json_preview`]).
//!
//! Bytes are an estimate of the heap a value holds (see [`cost`]), not its JSON length: an
//! array of a million zeros is 2 MB of JSON but 32 MB of `serde_json::Value`s.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::mem::size_of;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use wot_events::{EventRecord, LogQuery};

/// Sliding window of the events-per-minute rate (5 minutes).
pub const RATE_WINDOW: Duration = Duration::from_secs(300);
/// Longest Thing id or event name counted under its own name in the statistics; a longer
/// one is counted under its first characters.
const KEY_CHARS: usize = 128;
/// Name under which the statistics count keys past the limit of distinct keys.
pub const OTHER: &str = "(other)";

/// An estimate of the heap bytes `value` holds, counted up to `cap`: the result is exact
/// up to `cap` and some number above `cap` past it, so it costs `O(cap)` however big the
/// value. Each node counts `size_of::<Value>()`, strings their length, object members also
/// their key and the map's per-entry overhead.
pub fn cost(value: &Value, cap: usize) -> usize {
    const ENTRY: usize = size_of::<String>() + 2 * size_of::<usize>();
    let mut total = 0usize;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        total = total.saturating_add(size_of::<Value>());
        match v {
            Value::String(s) => total = total.saturating_add(s.len()),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                for (key, item) in map {
                    total = total.saturating_add(ENTRY + key.len());
                    stack.push(item);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        if total > cap {
            break;
        }
    }
    total
}

/// A writer that keeps at most `limit` bytes and then refuses, so that serializing a huge
/// value stops early.
struct Capped {
    bytes: Vec<u8>,
    limit: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.limit.saturating_sub(self.bytes.len());
        if room == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let n = buf.len().min(room);
        self.bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The compact JSON text of `value`, cut to at most `max_bytes` bytes (at a character
/// boundary) with `…` appended when cut. Costs `O(max_bytes)` however big the value.
pub fn json_preview(value: &Value, max_bytes: usize) -> String {
    let mut out = Capped {
        bytes: Vec::new(),
        limit: max_bytes.saturating_add(1),
    };
    let complete = serde_json::to_writer(&mut out, value).is_ok() && out.bytes.len() <= max_bytes;
    if complete {
        return String::from_utf8_lossy(&out.bytes).into_owned();
    }
    out.bytes.truncate(max_bytes);
    // The cut may split a character: keep the valid prefix.
    let text = match std::str::from_utf8(&out.bytes) {
        Ok(text) => text,
        Err(error) => std::str::from_utf8(&out.bytes[..error.valid_up_to()]).unwrap_or_default(),
    };
    format!("{text}…")
}

/// `value` itself when it [costs](cost) at most `max_bytes`, else a string holding the
/// start of its JSON text (so that a huge remote value is shown, briefly, and not kept).
pub fn shrink(value: Value, max_bytes: usize) -> Value {
    if cost(&value, max_bytes) <= max_bytes {
        value
    } else {
        let keep = max_bytes.saturating_sub(size_of::<Value>()).max(16);
        Value::String(json_preview(&value, keep))
    }
}

/// What one record costs in a [`Timeline`].
fn record_cost(record: &EventRecord, cap: usize) -> usize {
    size_of::<EventRecord>()
        .saturating_add(record.thing_id.len())
        .saturating_add(record.thing_title.len())
        .saturating_add(record.event.len())
        .saturating_add(record.event_id.as_ref().map_or(0, |id| id.len()))
        .saturating_add(cost(&record.data, cap))
}

/// Counts per key, with at most `max_keys` distinct keys: the rest count under [`OTHER`].
#[derive(Debug, Clone, Default)]
struct Counts {
    counts: BTreeMap<String, u64>,
    max_keys: usize,
}

impl Counts {
    fn add(&mut self, key: &str) {
        let key = if key.chars().count() > KEY_CHARS {
            key.chars().take(KEY_CHARS).collect()
        } else {
            key.to_owned()
        };
        let key = if self.counts.contains_key(&key) || self.counts.len() < self.max_keys {
            key
        } else {
            OTHER.to_owned()
        };
        let n = self.counts.entry(key).or_default();
        *n = n.saturating_add(1);
    }
}

/// Statistics of a [`Timeline`].
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineStats {
    /// Records pushed, all time.
    pub total: u64,
    /// Records pushed per Thing id, all time (at most the limit of distinct keys; the rest
    /// under [`OTHER`]).
    pub per_thing: BTreeMap<String, u64>,
    /// Records pushed per event name, all time (limited like `per_thing`).
    pub per_event: BTreeMap<String, u64>,
    /// Mean events per minute over the [`RATE_WINDOW`] ending at `now`.
    pub events_per_minute: f64,
}

/// The event timeline: records newest first, at most `max_entries` of them and at most
/// `max_bytes` (by [`cost`]) together; the oldest go first. A record whose data costs more
/// than `max_entry_bytes` keeps a [`json_preview`] of it instead. Statistics count every
/// record ever pushed.
#[derive(Debug, Clone)]
pub struct Timeline {
    records: VecDeque<(EventRecord, usize)>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    max_entry_bytes: usize,
    total: u64,
    per_thing: Counts,
    per_event: Counts,
    /// Records per whole second of `received_at`, oldest first, within the rate window.
    buckets: VecDeque<(u64, u64)>,
}

impl Timeline {
    /// An empty timeline with these bounds; the statistics keep at most `max_keys`
    /// distinct Thing ids and event names.
    pub fn new(
        max_entries: usize,
        max_bytes: usize,
        max_entry_bytes: usize,
        max_keys: usize,
    ) -> Self {
        Timeline {
            records: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
            max_entry_bytes,
            total: 0,
            per_thing: Counts {
                max_keys,
                ..Counts::default()
            },
            per_event: Counts {
                max_keys,
                ..Counts::default()
            },
            buckets: VecDeque::new(),
        }
    }

    /// Adds a record, then drops the oldest ones until both bounds hold.
    pub fn push(&mut self, mut record: EventRecord) {
        self.total = self.total.saturating_add(1);
        self.per_thing.add(&record.thing_id);
        self.per_event.add(&record.event);
        self.count_second(secs(record.received_at));
        if cost(&record.data, self.max_entry_bytes) > self.max_entry_bytes {
            let data = std::mem::take(&mut record.data);
            record.data = shrink(data.into_value(), self.max_entry_bytes).into();
        }
        let bytes = record_cost(&record, usize::MAX);
        // Newest first: in front of the first record that is not newer.
        let at = self
            .records
            .iter()
            .position(|(r, _)| r.received_at <= record.received_at)
            .unwrap_or(self.records.len());
        self.records.insert(at, (record, bytes));
        self.bytes = self.bytes.saturating_add(bytes);
        while self.records.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some((_, gone)) = self.records.pop_back() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(gone);
        }
    }

    fn count_second(&mut self, sec: u64) {
        match self.buckets.iter_mut().rev().find(|(s, _)| *s <= sec) {
            Some((s, n)) if *s == sec => *n = n.saturating_add(1),
            _ => {
                let at = self.buckets.partition_point(|(s, _)| *s < sec);
                self.buckets.insert(at, (sec, 1));
            }
        }
        let newest = self.buckets.back().map_or(sec, |(s, _)| *s);
        let oldest_kept = newest.saturating_sub(RATE_WINDOW.as_secs());
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

    /// The bytes the records held cost, by [`cost`].
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The records matching `query`, newest first.
    pub fn query(&self, query: &LogQuery) -> Vec<&EventRecord> {
        self.iter().filter(|r| query.matches(r)).collect()
    }

    /// Statistics at time `now`.
    pub fn stats(&self, now: SystemTime) -> TimelineStats {
        let window = RATE_WINDOW.as_secs();
        let now_sec = secs(now);
        let in_window: u64 = self
            .buckets
            .iter()
            .filter(|(s, _)| *s <= now_sec && s.saturating_add(window) > now_sec)
            .map(|(_, n)| n)
            .sum();
        TimelineStats {
            total: self.total,
            per_thing: self.per_thing.counts.clone(),
            per_event: self.per_event.counts.clone(),
            events_per_minute: in_window as f64 * 60.0 / window as f64,
        }
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A property's numeric values for its chart, oldest first, at most `capacity` of them
/// (each costs `size_of::<(SystemTime, f64)>()` bytes; [`App`](crate::app::App) shares its
/// byte budget among all panels through the capacity).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: VecDeque<(SystemTime, f64)>,
    capacity: usize,
}

impl Samples {
    /// Bytes one value costs.
    pub const VALUE_BYTES: usize = size_of::<(SystemTime, f64)>();

    /// An empty buffer for at most `capacity` values.
    pub fn new(capacity: usize) -> Self {
        Samples {
            values: VecDeque::new(),
            capacity,
        }
    }

    /// Changes the capacity, dropping the oldest values past it.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.values.len() > capacity {
            self.values.pop_front();
        }
    }

    /// How many values it may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a value received at `at`; the oldest goes when full.
    pub fn push(&mut self, at: SystemTime, value: f64) {
        if self.capacity == 0 {
            return;
        }
        if self.values.len() >= self.capacity {
            self.values.pop_front();
        }
        self.values.push_back((at, value));
    }

    /// The values received in `[now - window, now]`, oldest first.
    pub fn within(
        &self,
        window: Duration,
        now: SystemTime,
    ) -> impl Iterator<Item = (SystemTime, f64)> + '_ {
        let start = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
        self.values
            .iter()
            .copied()
            .filter(move |(t, _)| *t >= start && *t <= now)
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn record(thing: &str, event: &str, data: Value, s: u64) -> EventRecord {
        EventRecord {
            thing_id: thing.into(),
            thing_title: "".into(),
            event: event.into(),
            data: data.into(),
            event_id: None,
            received_at: at(s),
        }
    }

    #[test]
    fn cost_counts_nodes_and_stops_at_the_cap() {
        let node = size_of::<Value>();
        assert_eq!(cost(&json!(1), usize::MAX), node);
        assert_eq!(cost(&json!("abc"), usize::MAX), node + 3);
        assert_eq!(cost(&json!([1, 2]), usize::MAX), 3 * node);
        let zeros = Value::Array(vec![json!(0); 1_000_000]);
        assert!(cost(&zeros, usize::MAX) >= 32_000_000);
        // Capped: stops soon after the cap.
        assert!(cost(&zeros, 1000) <= 1000 + node);
        assert!(cost(&zeros, 1000) > 1000);
    }

    #[test]
    fn previews_are_bounded_and_cut_at_characters() {
        assert_eq!(json_preview(&json!({"a": 1}), 100), r#"{"a":1}"#);
        let long = json!("é".repeat(1000));
        let preview = json_preview(&long, 10);
        assert!(preview.len() <= 10 + '…'.len_utf8(), "{preview}");
        assert!(preview.ends_with('…'));
        let big = Value::Array(vec![json!("x".repeat(1000)); 10_000]);
        let small = shrink(big, 4096);
        assert!(
            cost(&small, usize::MAX) <= 4096 + 8,
            "{}",
            cost(&small, usize::MAX)
        );
        assert!(small.as_str().is_some_and(|s| s.starts_with("[\"xxx")));
        assert_eq!(shrink(json!(42), 4096), json!(42));
    }

    #[test]
    fn timeline_is_bounded_by_count_and_by_bytes_and_keeps_counting() {
        let mut log = Timeline::new(1000, 64 * 1024, 4096, 8);
        for i in 0..5000 {
            log.push(record("urn:a", "big", json!("y".repeat(3000)), i));
        }
        assert!(log.bytes() <= 64 * 1024, "{}", log.bytes());
        assert!(log.len() < 30 && !log.is_empty());
        // Newest first.
        assert_eq!(log.iter().next().map(|r| r.received_at), Some(at(4999)));
        // An entry past the per-entry bound keeps a preview.
        log.push(record("urn:a", "huge", json!("z".repeat(10_000_000)), 5000));
        let newest = log.iter().next().expect("kept");
        assert!(
            newest
                .data
                .as_str()
                .is_some_and(|s| s.len() < 4096 && s.ends_with('…'))
        );
        assert!(log.bytes() <= 64 * 1024);
        let stats = log.stats(at(5000));
        assert_eq!(stats.total, 5001);
        assert_eq!(stats.per_event["big"], 5000);

        let mut counted = Timeline::new(3, usize::MAX, 4096, 1000);
        for i in 0..10 {
            counted.push(record("urn:a", "e", json!(i), i));
        }
        assert_eq!(counted.len(), 3);
    }

    #[test]
    fn statistics_keep_a_bounded_number_of_keys() {
        let mut log = Timeline::new(10, 1 << 20, 4096, 4);
        for i in 0..1000 {
            log.push(record(
                &format!("urn:{i}"),
                &"e".repeat(10_000),
                json!(null),
                i,
            ));
        }
        let stats = log.stats(at(1000));
        assert_eq!(stats.per_thing.len(), 5);
        assert_eq!(stats.per_thing[OTHER], 996);
        let (event, n) = stats.per_event.iter().next().expect("one event");
        assert_eq!((event.len(), *n), (KEY_CHARS, 1000));
        // One a second.
        assert!((stats.events_per_minute - 60.0).abs() < 0.5, "{stats:?}");
    }

    #[test]
    fn samples_keep_the_newest_within_their_capacity() {
        let mut samples = Samples::new(3);
        for i in 0..10 {
            samples.push(at(i), i as f64);
        }
        let kept: Vec<f64> = samples
            .within(Duration::from_secs(100), at(10))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(kept, [7.0, 8.0, 9.0]);
        samples.set_capacity(1);
        assert_eq!(samples.len(), 1);
        samples.set_capacity(0);
        samples.push(at(11), 1.0);
        assert!(samples.is_empty());
    }
}
