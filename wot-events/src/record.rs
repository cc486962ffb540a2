//! The items our streams yield, and the bounded buffers that keep recent ones.

use std::borrow::Borrow;
use std::collections::VecDeque;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use wot_td::Data;

/// Text that many records share: a Thing's id and title, an event or property name, an
/// event id. Cloning it copies a pointer, not the text, so a long id or name received once
/// costs its bytes once, however many records carry it. An SSE event id made from the
/// parser's [`wot_sse::EventId`] keeps its form: up to 24 bytes inline (a copy costs no
/// allocation), longer ones shared.
///
/// It reads as a `&str` (`Deref`), compares with `str` and `String`, prints and serializes as
/// the text.
///
/// # Examples
///
/// ```
/// use wot_events::SharedStr;
///
/// let id = SharedStr::from("urn:dev:boiler");
/// let again = id.clone(); // no copy of the text
/// assert_eq!(again, "urn:dev:boiler");
/// assert!(id.starts_with("urn:"));
/// assert_eq!(String::from(again), "urn:dev:boiler");
/// ```
#[derive(Clone)]
pub struct SharedStr(Repr);

#[derive(Clone)]
enum Repr {
    /// Text shared through one allocation.
    Shared(Arc<str>),
    /// An SSE event id as the parser made it: a short one inline (a copy costs no
    /// allocation), a long one shared.
    Id(wot_sse::EventId),
}

impl SharedStr {
    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Shared(s) => s,
            Repr::Id(id) => id.as_str(),
        }
    }

    /// Whether one is a clone of the other: the same text allocation, or the same short
    /// event id (kept inline, so copied rather than shared).
    pub fn ptr_eq(&self, other: &SharedStr) -> bool {
        match (&self.0, &other.0) {
            (Repr::Shared(a), Repr::Shared(b)) => Arc::ptr_eq(a, b),
            (Repr::Id(a), Repr::Id(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        SharedStr(Repr::Id(wot_sse::EventId::default()))
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for SharedStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for SharedStr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Reads a string; the text gets an allocation of its own (records read from a file do not
/// share their ids and names).
impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = SharedStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SharedStr, E> {
                Ok(SharedStr::from(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SharedStr, E> {
                Ok(SharedStr::from(v))
            }
        }
        d.deserialize_str(Text)
    }
}

impl From<&str> for SharedStr {
    fn from(s: &str) -> Self {
        SharedStr(Repr::Shared(Arc::from(s)))
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        SharedStr(Repr::Shared(Arc::from(s)))
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(s: Arc<str>) -> Self {
        SharedStr(Repr::Shared(s))
    }
}

/// An SSE event id, without a copy: a short id stays inline, a long one stays shared.
impl From<wot_sse::EventId> for SharedStr {
    fn from(id: wot_sse::EventId) -> Self {
        SharedStr(Repr::Id(id))
    }
}

/// The shared text, or for a short event id kept inline, a new allocation of it.
impl From<SharedStr> for Arc<str> {
    fn from(s: SharedStr) -> Self {
        match s.0 {
            Repr::Shared(s) => s,
            Repr::Id(id) => Arc::from(id.as_str()),
        }
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self.as_str() == other.as_str()
    }
}

/// One event received from a Thing.
///
/// The Thing's id and title, the event name and the event id are [`SharedStr`]s: every
/// record of a subscription points to the same text.
///
/// It serializes (and deserializes, for a history kept on disk) as an object of its fields,
/// `received_at` as an RFC 3339 UTC time to the millisecond (`2026-12-07T21:05:00.250Z`). A
/// record read back equals the one written with its time cut to the millisecond; reading
/// accepts any number of fractional digits, and refuses times before 1970 or after 9999.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use wot_events::EventRecord;
///
/// let json = r#"{"thing_id":"urn:dev:boiler","thing_title":"Boiler","event":"overheat",
///     "data":{"t":131},"event_id":"42","received_at":"2026-12-07T21:05:00.250Z"}"#;
/// let record: EventRecord = serde_json::from_str(json).unwrap();
/// assert_eq!(record.event, "overheat");
/// let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_677_500_250);
/// assert_eq!(record.received_at, t);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// The Thing's `id`, or its title when the TD has no `id`.
    pub thing_id: SharedStr,
    /// The Thing's `title`.
    pub thing_title: SharedStr,
    /// The event's name (its key in the TD's `events`).
    pub event: SharedStr,
    /// The event data (JSON; `null` when the event carried none), kept as the text it
    /// arrived in and parsed on first use: see [`Data`].
    pub data: Data,
    /// The SSE event id (the resume token), if the server sent one.
    pub event_id: Option<SharedStr>,
    /// When this process received the event.
    #[serde(with = "rfc3339")]
    pub received_at: SystemTime,
}

/// One new value of a property.
///
/// The Thing's id, the property name and the event id are [`SharedStr`]s, shared by every
/// update of an observer.
///
/// It serializes and deserializes as [`EventRecord`] does: `timestamp` as an RFC 3339 UTC time
/// to the millisecond.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyUpdate {
    /// The Thing's `id`, or its title when the TD has no `id`.
    pub thing_id: SharedStr,
    /// The property's name.
    pub property: SharedStr,
    /// The value, kept as the text it arrived in and parsed on first use: see [`Data`].
    pub value: Data,
    /// When this process received the value.
    #[serde(with = "rfc3339")]
    pub timestamp: SystemTime,
    /// The SSE event id (the resume token) when the value came over SSE and the server sent
    /// one; `None` for long polling and polling. Ids that do not follow each other are how an
    /// observer of a server that numbers its values learns that some were lost.
    pub event_id: Option<SharedStr>,
    /// Set when the value does not satisfy the property's schema (out of range, wrong type,
    /// not in `enum`...): the first problem found. The update is delivered anyway.
    pub schema_violation: Option<String>,
}

/// Times as RFC 3339 text in UTC, to the millisecond, as records are written: a serde
/// `with` module for a `SystemTime` field (`#[serde(with = "wot_events::rfc3339")]`).
///
/// Writing a time before 1970 or after 9999 is an error; reading takes at most 64 ASCII
/// characters of RFC 3339 time.
///
/// ```
/// use std::time::{Duration, SystemTime};
///
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Seen {
///     #[serde(with = "wot_events::rfc3339")]
///     at: SystemTime,
/// }
/// let seen = Seen { at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_677_500_250) };
/// let json = serde_json::to_string(&seen)?;
/// assert_eq!(json, r#"{"at":"2026-12-07T21:05:00.250Z"}"#);
/// assert_eq!(serde_json::from_str::<Seen>(&json)?, seen);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::ser::Error as _;

    /// The longest time text read: `YYYY-MM-DDTHH:MM:SS.` and nanoseconds, with room to spare.
    const MAX_LEN: usize = 64;
    /// Seconds from 1970 to the end of 9999.
    const END_OF_9999: u64 = 253_402_300_800;

    /// Writes `t` as RFC 3339 UTC text to the millisecond.
    ///
    /// # Errors
    ///
    /// A time before 1970 or after 9999.
    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        // humantime writes years 1970 to 9999 only: it panics before 1970, and fails after
        // 9999 in a way some serializers take for a bug of theirs (serde_json panics).
        match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) if d.as_secs() < END_OF_9999 => {}
            _ => {
                return Err(S::Error::custom(
                    "only times from 1970 to 9999 can be written",
                ));
            }
        }
        s.collect_str(&humantime::format_rfc3339_millis(*t))
    }

    /// Reads RFC 3339 text.
    ///
    /// # Errors
    ///
    /// Text longer than 64 characters, not ASCII, or not an RFC 3339 time.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        struct Time;
        impl serde::de::Visitor<'_> for Time {
            type Value = SystemTime;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an RFC 3339 UTC time such as 2026-12-07T21:05:00.250Z")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SystemTime, E> {
                if text.len() > MAX_LEN || !text.is_ascii() {
                    return Err(E::custom("not an RFC 3339 time (too long, or not ASCII)"));
                }
                humantime::parse_rfc3339(text)
                    .map_err(|e| E::custom(format_args!("not an RFC 3339 UTC time: {e}")))
            }
        }
        d.deserialize_str(Time)
    }
}

/// An estimate of the heap and inline bytes a value holds, for byte budgets of buffers.
///
/// Counts the value's own size and what it owns (strings, arrays, object entries). Text shared
/// through a [`SharedStr`] is not counted: many records point to one copy.
pub trait ByteSize {
    /// The estimated bytes.
    fn byte_size(&self) -> usize;
}

impl ByteSize for Data {
    fn byte_size(&self) -> usize {
        self.size_estimate()
    }
}

impl ByteSize for EventRecord {
    fn byte_size(&self) -> usize {
        std::mem::size_of::<EventRecord>().saturating_add(self.data.size_estimate())
    }
}

impl ByteSize for PropertyUpdate {
    fn byte_size(&self) -> usize {
        std::mem::size_of::<PropertyUpdate>()
            .saturating_add(self.value.size_estimate())
            .saturating_add(self.schema_violation.as_ref().map_or(0, String::len))
    }
}

impl ByteSize for (SystemTime, Data) {
    fn byte_size(&self) -> usize {
        std::mem::size_of::<SystemTime>().saturating_add(self.1.size_estimate())
    }
}

/// How a [`RingBuffer`] measures an item against its byte budget.
type Measure<T> = fn(&T) -> usize;

/// A bounded FIFO: pushing onto a full buffer drops the oldest item.
///
/// Bounded by a count, and optionally by bytes ([`RingBuffer::with_max_bytes`]): then the
/// oldest items are dropped until the estimated [`ByteSize`] of those held fits, though the
/// newest item is always kept.
///
/// # Examples
///
/// ```
/// use wot_events::RingBuffer;
///
/// let mut r = RingBuffer::new(2);
/// r.push(1);
/// r.push(2);
/// r.push(3);
/// assert_eq!(r.iter().copied().collect::<Vec<_>>(), [2, 3]);
/// ```
#[derive(Debug, Clone)]
pub struct RingBuffer<T> {
    /// Each item with its size as measured when it was pushed (0 without a byte budget), so
    /// that dropping it takes back exactly what it added.
    items: VecDeque<(T, usize)>,
    capacity: usize,
    /// The byte budget and how an item is measured, when set.
    budget: Option<(usize, Measure<T>)>,
    bytes: usize,
}

impl<T> RingBuffer<T> {
    /// An empty buffer holding at most `capacity` items (0 keeps nothing).
    pub fn new(capacity: usize) -> Self {
        RingBuffer {
            items: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            budget: None,
            bytes: 0,
        }
    }

    /// Also bounds the buffer by the estimated bytes of the items held: past `max_bytes`,
    /// the oldest are dropped (the newest is always kept).
    ///
    /// ```
    /// use wot_events::{Data, RingBuffer};
    ///
    /// let mut r = RingBuffer::new(100).with_max_bytes(1000);
    /// for _ in 0..10 {
    ///     r.push(Data::from(serde_json::Value::String("x".repeat(60))));
    /// }
    /// assert!(r.len() < 10 && r.bytes() <= 1000);
    /// ```
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self
    where
        T: ByteSize,
    {
        for (item, size) in &mut self.items {
            *size = item.byte_size();
        }
        self.bytes = self.items.iter().map(|(_, size)| size).sum();
        self.budget = Some((max_bytes, <T as ByteSize>::byte_size));
        self.evict();
        self
    }

    /// The estimated bytes of the items held (0 when the buffer has no byte budget).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The byte budget, if one is set.
    pub fn max_bytes(&self) -> Option<usize> {
        self.budget.map(|(max, _)| max)
    }

    /// Appends an item, dropping the oldest when full (by count or bytes). Returns the last
    /// item dropped.
    pub fn push(&mut self, item: T) -> Option<T> {
        if self.capacity == 0 {
            return Some(item);
        }
        let mut dropped = if self.items.len() >= self.capacity {
            self.pop_oldest()
        } else {
            None
        };
        let size = self.budget.map_or(0, |(_, measure)| measure(&item));
        self.bytes = self.bytes.saturating_add(size);
        self.items.push_back((item, size));
        if let Some(d) = self.evict() {
            dropped = Some(d);
        }
        dropped
    }

    fn pop_oldest(&mut self) -> Option<T> {
        let (item, size) = self.items.pop_front()?;
        self.bytes = self.bytes.saturating_sub(size);
        Some(item)
    }

    /// Drops the oldest items while over the byte budget, keeping the newest.
    fn evict(&mut self) -> Option<T> {
        let (max, _) = self.budget?;
        let mut dropped = None;
        while self.bytes > max && self.items.len() > 1 {
            dropped = self.pop_oldest();
        }
        dropped
    }

    /// Items, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter().map(|(item, _)| item)
    }

    /// The newest item.
    pub fn latest(&self) -> Option<&T> {
        self.items.back().map(|(item, _)| item)
    }

    /// How many items are held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The most items held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

impl<T: Clone> RingBuffer<T> {
    /// A copy of the items, oldest first.
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().cloned().collect()
    }
}

/// Recent values of one property, for charts: a ring buffer of `(time, value)`.
///
/// Times are passed in, so the history is plain data and easy to test.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use serde_json::json;
/// use wot_events::PropertyHistory;
///
/// let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
/// let mut h = PropertyHistory::new(100);
/// h.push(t0, json!(20));
/// h.push(t0 + Duration::from_secs(50), json!(21));
/// h.push(t0 + Duration::from_secs(90), json!(22));
/// let now = t0 + Duration::from_secs(100);
/// let recent: Vec<_> = h.within(Duration::from_secs(30), now).map(|(_, v)| v.value().clone()).collect();
/// assert_eq!(recent, [json!(22)]);
/// assert_eq!(h.latest().map(|(_, v)| v.value().clone()), Some(json!(22)));
/// ```
#[derive(Debug, Clone)]
pub struct PropertyHistory {
    values: RingBuffer<(SystemTime, Data)>,
}

impl PropertyHistory {
    /// Keeps at most `capacity` values.
    pub fn new(capacity: usize) -> Self {
        PropertyHistory {
            values: RingBuffer::new(capacity),
        }
    }

    /// Keeps at most `capacity` values and at most about `max_bytes` of them (estimated by
    /// [`ByteSize`]; the oldest go first, the newest value is always kept).
    pub fn bounded(capacity: usize, max_bytes: usize) -> Self {
        PropertyHistory {
            values: RingBuffer::new(capacity).with_max_bytes(max_bytes),
        }
    }

    /// The estimated bytes of the values held (0 without a byte budget).
    pub fn bytes(&self) -> usize {
        self.values.bytes()
    }

    /// Records a value received at `at`.
    pub fn push(&mut self, at: SystemTime, value: impl Into<Data>) {
        self.values.push((at, value.into()));
    }

    /// The newest value and its time.
    pub fn latest(&self) -> Option<&(SystemTime, Data)> {
        self.values.latest()
    }

    /// The values received in `[now - window, now]`, oldest first.
    pub fn within(
        &self,
        window: Duration,
        now: SystemTime,
    ) -> impl Iterator<Item = &(SystemTime, Data)> {
        let start = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
        self.values
            .iter()
            .filter(move |(t, _)| *t >= start && *t <= now)
    }

    /// Every value held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &(SystemTime, Data)> {
        self.values.iter()
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
    use serde_json::Value;

    use super::*;

    #[test]
    fn shared_text_is_24_bytes_and_an_event_id_stays_as_the_parser_made_it() {
        assert_eq!(std::mem::size_of::<SharedStr>(), 24);
        assert_eq!(std::mem::size_of::<Option<SharedStr>>(), 24);
        let short = SharedStr::from(wot_sse::EventId::from("42"));
        assert!(short.ptr_eq(&short.clone()) && short == "42");
        let long_id = wot_sse::EventId::from("x".repeat(100));
        let (a, b) = (SharedStr::from(long_id.clone()), SharedStr::from(long_id));
        assert!(a.ptr_eq(&b) && a.len() == 100);
        let name = SharedStr::from("42");
        assert!(!name.ptr_eq(&short) && name == short);
        let mut ids = std::collections::HashSet::new();
        ids.insert(name);
        assert!(ids.contains(&short) && ids.contains("42"));
        assert_eq!(&*Arc::<str>::from(short), "42");
        assert_eq!(SharedStr::default(), "");
    }

    #[test]
    fn ring_buffer_drops_oldest() {
        let mut r = RingBuffer::new(3);
        assert_eq!(r.push(1), None);
        r.push(2);
        r.push(3);
        assert_eq!(r.push(4), Some(1));
        assert_eq!(r.to_vec(), [2, 3, 4]);
        assert_eq!(r.latest(), Some(&4));
        assert_eq!(r.len(), 3);
        let mut z = RingBuffer::new(0);
        assert_eq!(z.push(1), Some(1));
        assert!(z.is_empty());
    }

    #[test]
    fn ring_buffer_byte_budget_drops_oldest_and_keeps_the_newest() {
        let big = |n: usize| Data::from(Value::String("x".repeat(n)));
        let mut r = RingBuffer::new(1000).with_max_bytes(1000);
        for _ in 0..100 {
            r.push(big(100));
        }
        assert!(r.bytes() <= 1000, "{}", r.bytes());
        assert_eq!(r.len(), 1000 / big(100).byte_size());
        // One item over the budget alone is kept; everything older goes.
        r.push(big(5000));
        assert_eq!(r.len(), 1);
        assert_eq!(r.bytes(), big(5000).byte_size());
        r.push(big(10));
        assert_eq!(r.len(), 1);
        r.clear();
        assert_eq!(r.bytes(), 0);
        let mut h = PropertyHistory::bounded(100, 500);
        for i in 0..100u64 {
            h.push(SystemTime::UNIX_EPOCH, Value::from(i));
        }
        assert!(h.bytes() <= 500 && h.len() < 100);
        assert_eq!(h.latest().unwrap().1, Value::from(99));
    }

    #[test]
    fn reading_held_values_does_not_move_the_byte_budget() {
        // A text whose value is many times its size: reading it after the push (a chart, an
        // equality check) must not change what the buffer counts for it.
        let text = format!("[{}0]", "0,".repeat(5_000));
        let mut h = PropertyHistory::bounded(100_000, 1 << 20);
        for _ in 0..2_000 {
            h.push(SystemTime::UNIX_EPOCH, Data::parse(text.as_str()).unwrap());
            assert!(h.latest().unwrap().1.is_array());
        }
        let held: usize = h.iter().map(ByteSize::byte_size).sum();
        assert_eq!(h.bytes(), held);
        assert!(held <= 1 << 20, "{held}");
        // The estimate counts the value before it is built.
        assert!(Data::parse(text.as_str()).unwrap().byte_size() > 5_000 * 32);
    }

    #[test]
    fn json_byte_size_counts_nested_text() {
        let v = Data::from(serde_json::json!({"k": ["abc", {"inner": "0123456789"}]}));
        assert!(v.byte_size() > 4 * std::mem::size_of::<Value>() + 1 + 3 + 5 + 10);
        let text = Data::parse(r#"{"k": ["abc", {"inner": "0123456789"}]}"#).unwrap();
        assert!(text.byte_size() > 40, "the text counts");
    }

    #[test]
    fn history_window_is_inclusive_and_bounded() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let mut h = PropertyHistory::new(3);
        for i in 0..5u64 {
            h.push(t0 + Duration::from_secs(i * 10), Value::from(i));
        }
        assert_eq!(h.len(), 3);
        let now = t0 + Duration::from_secs(40);
        let vals: Vec<_> = h
            .within(Duration::from_secs(10), now)
            .map(|(_, v)| v.value().clone())
            .collect();
        assert_eq!(vals, [Value::from(3), Value::from(4)]);
        // A window longer than the epoch offset does not panic.
        assert_eq!(h.within(Duration::MAX, now).count(), 3);
    }

    #[test]
    fn records_serialize_with_rfc3339_times() {
        let r = EventRecord {
            thing_id: "urn:x".into(),
            thing_title: "X".into(),
            event: "e".into(),
            data: serde_json::json!({"a": 1}).into(),
            event_id: Some("7".into()),
            received_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_500),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["received_at"], "1970-01-01T00:00:01.500Z");
        assert_eq!(v["event_id"], "7");
    }

    #[test]
    fn records_and_updates_read_back_with_times_to_the_millisecond() {
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_796_677_500, 250_999_999);
        let at_ms = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_677_500_250);
        let r = EventRecord {
            thing_id: "urn:x".into(),
            thing_title: "X \u{1b}[31m".into(),
            event: "e".into(),
            data: serde_json::json!({"a": [1, 2.5, null, "é"]}).into(),
            event_id: Some(SharedStr::from(wot_sse::EventId::from("7"))),
            received_at: at,
        };
        let json = serde_json::to_string(&r).unwrap();
        let back: EventRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.received_at, at_ms);
        assert_eq!(
            back,
            EventRecord {
                received_at: at_ms,
                ..r.clone()
            }
        );
        // Written again, it reads the same text.
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        let none = EventRecord {
            event_id: None,
            received_at: at_ms,
            ..r
        };
        let json = serde_json::to_string(&none).unwrap();
        assert_eq!(serde_json::from_str::<EventRecord>(&json).unwrap(), none);

        let u = PropertyUpdate {
            thing_id: "urn:x".into(),
            property: "temp".into(),
            value: serde_json::json!(21.5).into(),
            timestamp: at_ms,
            event_id: Some("9".into()),
            schema_violation: Some("above 20".into()),
        };
        let json = serde_json::to_string(&u).unwrap();
        assert!(
            json.contains("\"timestamp\":\"2026-12-07T21:05:00.250Z\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<PropertyUpdate>(&json).unwrap(), u);
    }

    #[test]
    fn times_are_read_strictly_and_written_without_panic() {
        let read = |t: &str| {
            serde_json::from_value::<PropertyUpdate>(serde_json::json!({
                "thing_id": "t", "property": "p", "value": 1, "timestamp": t,
                "event_id": null, "schema_violation": null
            }))
            .map(|u| u.timestamp)
        };
        let t = read("1970-01-01T00:00:01.123456789Z").unwrap();
        assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::new(1, 123_456_789));
        assert_eq!(
            read("1970-01-01T00:00:01+00:00").unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1)
        );
        for bad in [
            "",
            "1969-12-31T23:59:59Z",
            "2026-12-07T21:05:00+01:00",
            "2026-12-07 21:05",
            "2026-13-07T21:05:00Z",
            "2026-12-07T21:05:00.éZ",
            &format!("2026-12-07T21:05:00.{}Z", "1".repeat(100)),
            "\u{0}\u{1}",
        ] {
            let e = read(bad).unwrap_err();
            assert!(e.to_string().contains("RFC 3339"), "{bad}: {e}");
        }
        assert!(read("5").is_err());
        // A time before 1970 is an error when written, not a panic.
        let early = PropertyUpdate {
            thing_id: "t".into(),
            property: "p".into(),
            value: Value::Null.into(),
            timestamp: SystemTime::UNIX_EPOCH - Duration::from_secs(1),
            event_id: None,
            schema_violation: None,
        };
        assert!(serde_json::to_string(&early).is_err());
        let late = PropertyUpdate {
            timestamp: SystemTime::UNIX_EPOCH + Duration::from_secs(400 * 365 * 86_400 * 100),
            ..early
        };
        assert!(serde_json::to_string(&late).is_err());
    }

    proptest::proptest! {
        /// Whatever a file holds as a time, reading it gives a time or an error, never a
        /// panic; a time read back writes and reads again to itself (to the millisecond).
        #[test]
        fn any_time_text_reads_without_panic(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|\\+00:00|[+-][0-9:]{0,6})?|[ -~]{0,70}"
        ) {
            let json = serde_json::json!({
                "thing_id": "t", "property": "p", "value": 1, "timestamp": text,
                "event_id": null, "schema_violation": null
            });
            if let Ok(u) = serde_json::from_value::<PropertyUpdate>(json) {
                let again: PropertyUpdate =
                    serde_json::from_str(&serde_json::to_string(&u).unwrap()).unwrap();
                let ms = |t: SystemTime| {
                    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis()
                };
                proptest::prop_assert_eq!(ms(again.timestamp), ms(u.timestamp));
            }
        }
    }
}
