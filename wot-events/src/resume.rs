//! Resuming SSE streams after a restart: where each stream stands ([`ResumePoint`]), under
//! which name ([`StreamKey`]), who keeps it ([`ResumeStore`]), and the window of recent ids
//! that drops the events a server sends again.
//!
//! How a stream uses its store:
//!
//! ```text
//! start ──load(key)──▶ Last-Event-ID = point.last_event_id, window = point.recent_ids
//!   │
//!   ▼ for each event taken from the connection, in the consumer's poll_next:
//!   ├─ no id, or the id of the event before it (no `id` line of its own) ──▶ as that one
//!   ├─ id in the window (the server sent it again) ──▶ dropped, counted, debug log
//!   └─ new id ──▶ into the window; advance(key, id); handed on
//! ```
//!
//! `advance` runs in the same call that hands the event on (no task in between), so an app
//! that processes the item and then commits its own output with the store's pending points
//! (in the same task) gets both in one write.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use url::Url;

use crate::error::Error;
use crate::record::SharedStr;
use crate::skipped::escape_controls;
use crate::transport::RawItem;

/// Default number of recent event ids a stream remembers to drop the events a server sends
/// again, and that a [`ResumePoint`] keeps: 256.
pub const DEFAULT_DEDUP_WINDOW: usize = 256;

/// Default limit on an event id that is resumed from and de-duplicated: 4 KiB, the default
/// limit of wot-sse's parser on an `id` line. Longer ids are handed on but not tracked.
pub const DEFAULT_MAX_RESUME_ID_LEN: usize = wot_sse::parser::DEFAULT_MAX_ID_LEN;

/// Default number of streams a [`MemoryResumeStore`] keeps points for: 100,000.
pub const DEFAULT_MAX_STREAMS: usize = 100_000;

/// The identity of one event stream, under which a [`ResumeStore`] keeps its position: the
/// Thing, the affordance, and the form's URL.
///
/// The affordance reads `event/<name>` (one event), `events` (a Thing-level
/// `subscribeallevents` connection), `property/<name>` (one observed property) or
/// `properties` (a Thing-level `observeallproperties` connection). The form is its resolved
/// `href` without user name, password, query or fragment, so a credential in the URL never
/// lands in a key (or in a store, or a log line made from a key). A form whose URL changes
/// (a new host, a new path) is a new stream and starts without a position.
///
/// Keys serialize as a struct of three strings; a deserialized key is taken as written.
///
/// # Examples
///
/// ```
/// use wot_events::{StreamKey, Url};
///
/// let form = Url::parse("https://user:pw@boiler.example/events/overheat?token=s3cret#x").unwrap();
/// let key = StreamKey::event("urn:dev:boiler", "overheat", &form);
/// assert_eq!(key.affordance(), "event/overheat");
/// assert_eq!(key.form(), "https://boiler.example/events/overheat");
/// assert_eq!(key.to_string(), "urn:dev:boiler event/overheat https://boiler.example/events/overheat");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StreamKey {
    thing_id: String,
    affordance: String,
    form: String,
}

impl StreamKey {
    /// A key for `affordance` (see the type's docs for the forms it takes) of the Thing
    /// `thing_id`, read from the form at `form` (its user info, query and fragment are left
    /// out).
    pub fn new(thing_id: impl Into<String>, affordance: impl Into<String>, form: &Url) -> Self {
        let mut form = form.clone();
        // Fails only for URLs that cannot have user info (`data:`...), which have none.
        let _ = form.set_username("");
        let _ = form.set_password(None);
        form.set_query(None);
        form.set_fragment(None);
        StreamKey {
            thing_id: thing_id.into(),
            affordance: affordance.into(),
            form: form.into(),
        }
    }

    /// The key of one event's subscription: affordance `event/<name>`.
    pub fn event(thing_id: impl Into<String>, name: &str, form: &Url) -> Self {
        Self::new(thing_id, format!("event/{name}"), form)
    }

    /// The key of a Thing-level `subscribeallevents` connection: affordance `events`.
    pub fn all_events(thing_id: impl Into<String>, form: &Url) -> Self {
        Self::new(thing_id, "events", form)
    }

    /// The key of one property's observation: affordance `property/<name>`.
    pub fn property(thing_id: impl Into<String>, name: &str, form: &Url) -> Self {
        Self::new(thing_id, format!("property/{name}"), form)
    }

    /// The key of a Thing-level `observeallproperties` connection: affordance `properties`.
    pub fn all_properties(thing_id: impl Into<String>, form: &Url) -> Self {
        Self::new(thing_id, "properties", form)
    }

    /// The Thing's `id` (its title when the TD has no `id`).
    pub fn thing_id(&self) -> &str {
        &self.thing_id
    }

    /// `event/<name>`, `events`, `property/<name>` or `properties`.
    pub fn affordance(&self) -> &str {
        &self.affordance
    }

    /// The form's URL without user info, query or fragment.
    pub fn form(&self) -> &str {
        &self.form
    }
}

impl fmt::Display for StreamKey {
    /// `<thing id> <affordance> <form>`, as the TD wrote them (escape the text before it
    /// reaches a terminal).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.thing_id, self.affordance, self.form)
    }
}

/// Where a stream stands: the id of the last event handed to the consumer, and the ids
/// before it (oldest first, the last one included), to drop events a server sends again.
///
/// A store keeps one per [`StreamKey`] and updates it with [`advance`](Self::advance), which
/// bounds the recent ids.
///
/// # Examples
///
/// ```
/// use wot_events::ResumePoint;
///
/// let mut point = ResumePoint::default();
/// for id in ["1", "2", "3"] {
///     point.advance(id, 2);
/// }
/// assert_eq!(point.last_event_id, "3");
/// assert_eq!(point.recent_ids, ["2", "3"]);
/// let json = serde_json::to_string(&point).unwrap();
/// assert_eq!(json, r#"{"last_event_id":"3","recent_ids":["2","3"]}"#);
/// assert_eq!(serde_json::from_str::<ResumePoint>(&json).unwrap(), point);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// Sent as `Last-Event-ID` when the stream starts again (`""`: none).
    pub last_event_id: String,
    /// Recent ids, oldest first, `last_event_id` last: they seed the stream's window of ids
    /// whose events are dropped as repeats. (A `VecDeque` so that bounding it costs the same
    /// for every event; it serializes as a sequence, as a `Vec` would.)
    #[serde(default)]
    pub recent_ids: VecDeque<String>,
}

impl ResumePoint {
    /// A point at `last_event_id`, with it as the only recent id.
    pub fn new(last_event_id: impl Into<String>) -> Self {
        let last_event_id = last_event_id.into();
        ResumePoint {
            recent_ids: VecDeque::from([last_event_id.clone()]),
            last_event_id,
        }
    }

    /// Moves the point to `event_id` and adds it to the recent ids, keeping at most
    /// `max_recent` of them (the newest).
    pub fn advance(&mut self, event_id: &str, max_recent: usize) {
        event_id.clone_into(&mut self.last_event_id);
        if self.recent_ids.back().map(String::as_str) != Some(event_id) && max_recent > 0 {
            let slot = if self.recent_ids.len() >= max_recent {
                // Reuse the oldest id's allocation for the newest.
                self.recent_ids.pop_front()
            } else {
                None
            };
            let mut id = slot.unwrap_or_default();
            event_id.clone_into(&mut id);
            self.recent_ids.push_back(id);
        }
        self.truncate_recent(max_recent);
    }

    /// Keeps the newest `n` of the recent ids (a point loaded from a store written with a
    /// larger window).
    pub fn truncate_recent(&mut self, n: usize) {
        let excess = self.recent_ids.len().saturating_sub(n);
        self.recent_ids.drain(..excess);
    }
}

/// Keeps where each event stream stands, so that a stream built again (after a restart of the
/// app) resumes where the last one stopped.
///
/// A subscriber given a store ([`EventSubscriberBuilder::resume_store`]) calls, for each SSE
/// subscription and SSE property observation:
///
/// - [`load`](Self::load) once, when the stream is built: the point's `last_event_id` is sent
///   as `Last-Event-ID` on the first connection, and its `recent_ids` seed the stream's window
///   of ids whose events are dropped as repeats;
/// - [`advance`](Self::advance) for each event with a new id, at the moment the stream takes
///   it from its connection, inside the consumer's `poll_next` and before the item it becomes
///   is returned (an event dropped by the stream's filter, or not asked for, advances too: the
///   stream is done with it). Events dropped as repeats do not advance.
///
/// `advance` runs on the path of every event: keep it short and non-blocking (update a map;
/// write to disk later, in batches). A store that writes the points together with what the app
/// made of the events (in the same task, after taking the items) never has one without the
/// other after a crash.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::collections::HashMap;
/// use wot_events::{ResumePoint, ResumeStore, StreamKey};
///
/// /// Collects points until the app writes them with its own output.
/// #[derive(Default)]
/// struct Pending(Mutex<HashMap<StreamKey, ResumePoint>>);
///
/// impl ResumeStore for Pending {
///     fn load(&self, key: &StreamKey) -> Option<ResumePoint> {
///         self.0.lock().unwrap().get(key).cloned()
///     }
///     fn advance(&self, key: &StreamKey, event_id: &str) {
///         let mut points = self.0.lock().unwrap();
///         points.entry(key.clone()).or_default().advance(event_id, 256);
///     }
/// }
/// let store: Arc<dyn ResumeStore> = Arc::new(Pending::default());
/// # let _ = store;
/// ```
///
/// [`EventSubscriberBuilder::resume_store`]: crate::EventSubscriberBuilder::resume_store
pub trait ResumeStore: Send + Sync + 'static {
    /// The stored point of `key`, if any. Called once when a stream is built.
    fn load(&self, key: &StreamKey) -> Option<ResumePoint>;

    /// The stream `key` handed on (or dropped by its filter) the event `event_id`, after the
    /// events of the points before. Called in the consumer's `poll_next`: must not block.
    fn advance(&self, key: &StreamKey, event_id: &str);
}

/// A [`ResumeStore`] in memory: resumes streams built again in the same process (after a
/// stream failed, or was dropped and built again), and holds points an app saves and restores
/// itself ([`points`](Self::points), [`from_points`](Self::from_points)).
///
/// Bounded: at most [`DEFAULT_MAX_STREAMS`] streams (a setting), each with at most
/// [`DEFAULT_DEDUP_WINDOW`] recent ids (a setting); a stream beyond the limit is not kept
/// (one warning). Ids come from the streams, which track only ids of at most their
/// `max_resume_id_len`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use wot_events::{EventSubscriber, MemoryResumeStore};
///
/// let store = Arc::new(MemoryResumeStore::new());
/// let subscriber = EventSubscriber::builder().resume_store(store.clone()).build();
/// // ... subscribe, drop, subscribe again: the new subscription resumes.
/// # let _ = subscriber;
/// ```
pub struct MemoryResumeStore {
    points: Mutex<HashMap<StreamKey, ResumePoint>>,
    recent_ids: usize,
    max_streams: usize,
    warned_full: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for MemoryResumeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryResumeStore")
            .field("streams", &self.len())
            .field("recent_ids", &self.recent_ids)
            .field("max_streams", &self.max_streams)
            .finish()
    }
}

impl Default for MemoryResumeStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryResumeStore {
    /// An empty store: [`DEFAULT_DEDUP_WINDOW`] recent ids per stream, at most
    /// [`DEFAULT_MAX_STREAMS`] streams.
    pub fn new() -> Self {
        MemoryResumeStore {
            points: Mutex::new(HashMap::new()),
            recent_ids: DEFAULT_DEDUP_WINDOW,
            max_streams: DEFAULT_MAX_STREAMS,
            warned_full: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// A store holding `points` (for example read back from a file), each bounded to the
    /// store's recent ids; past the stream limit, the rest are left out.
    pub fn from_points(points: impl IntoIterator<Item = (StreamKey, ResumePoint)>) -> Self {
        let store = Self::new();
        store.insert_all(points);
        store
    }

    fn insert_all(&self, points: impl IntoIterator<Item = (StreamKey, ResumePoint)>) {
        let mut map = self.lock();
        for (key, mut point) in points {
            if map.len() >= self.max_streams && !map.contains_key(&key) {
                break;
            }
            point.truncate_recent(self.recent_ids);
            map.insert(key, point);
        }
    }

    /// How many recent ids each point keeps (default [`DEFAULT_DEDUP_WINDOW`], 256). Give a
    /// stream's [`EventSubscriberBuilder::dedup_window`](crate::EventSubscriberBuilder::dedup_window)
    /// at most this many, or fewer repeats are dropped after a restart.
    #[must_use]
    pub fn with_recent_ids(mut self, n: usize) -> Self {
        self.recent_ids = n;
        for point in self.lock().values_mut() {
            while point.recent_ids.len() > n {
                point.recent_ids.pop_front();
            }
        }
        self
    }

    /// The most streams kept (default [`DEFAULT_MAX_STREAMS`], 100,000). Past it, a new
    /// stream's points are not kept (one `tracing` warning); known streams go on.
    #[must_use]
    pub fn with_max_streams(mut self, n: usize) -> Self {
        self.max_streams = n;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, ResumePoint>> {
        // A panic elsewhere while holding the lock leaves a consistent map: every update is
        // one `ResumePoint::advance`.
        self.points.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The point of one stream.
    pub fn get(&self, key: &StreamKey) -> Option<ResumePoint> {
        self.lock().get(key).cloned()
    }

    /// A copy of every point, for saving.
    pub fn points(&self) -> Vec<(StreamKey, ResumePoint)> {
        self.lock()
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    /// Forgets one stream's point; the next stream under `key` starts from the server's
    /// present.
    pub fn remove(&self, key: &StreamKey) -> Option<ResumePoint> {
        self.lock().remove(key)
    }

    /// How many streams have a point.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no stream has a point.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl ResumeStore for MemoryResumeStore {
    fn load(&self, key: &StreamKey) -> Option<ResumePoint> {
        self.get(key)
    }

    fn advance(&self, key: &StreamKey, event_id: &str) {
        let mut map = self.lock();
        // Looked up first so that the key is cloned only for a new stream.
        if let Some(point) = map.get_mut(key) {
            point.advance(event_id, self.recent_ids);
        } else if map.len() < self.max_streams {
            map.entry(key.clone())
                .or_default()
                .advance(event_id, self.recent_ids);
        } else if !self.warned_full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit = self.max_streams,
                stream = %escape_controls(&key.to_string()),
                "the memory resume store is full: new streams are not kept"
            );
        }
    }
}

/// The resume settings of a subscriber.
#[derive(Clone)]
pub(crate) struct ResumeConfig {
    pub(crate) store: Arc<dyn ResumeStore>,
    pub(crate) window: usize,
    pub(crate) max_id_len: usize,
}

impl fmt::Debug for ResumeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResumeConfig")
            .field("window", &self.window)
            .field("max_id_len", &self.max_id_len)
            .finish_non_exhaustive()
    }
}

impl ResumeConfig {
    /// Whether an id can be sent as `Last-Event-ID` and tracked.
    fn trackable(&self, id: &str) -> bool {
        !id.is_empty() && id.len() <= self.max_id_len && !id.contains('\0')
    }

    /// Loads the point of `key`: the `Last-Event-ID` to start with, and the tracker of the
    /// stream (its window seeded with the point's recent ids).
    pub(crate) fn start(
        &self,
        key: StreamKey,
        dropped: Arc<AtomicU64>,
    ) -> (Option<String>, Tracker) {
        let point = self.store.load(&key);
        let mut window = IdWindow::new(self.window);
        let mut last = None;
        if let Some(point) = point {
            let skip = point.recent_ids.len().saturating_sub(self.window);
            for id in point.recent_ids.iter().skip(skip) {
                if self.trackable(id) {
                    window.insert(SharedStr::from(id.as_str()));
                }
            }
            if self.trackable(&point.last_event_id) {
                window.insert(SharedStr::from(point.last_event_id.as_str()));
                last = Some(point.last_event_id);
            } else if !point.last_event_id.is_empty() {
                tracing::warn!(
                    stream = %escape_controls(&key.to_string()),
                    len = point.last_event_id.len(),
                    "the stored last event id is too long or holds U+0000: starting without it"
                );
            }
            tracing::debug!(
                stream = %escape_controls(&key.to_string()),
                last_event_id = %escape_controls(last.as_deref().unwrap_or_default()),
                recent = window.len(),
                "resuming"
            );
        }
        let tracker = Tracker {
            key,
            config: self.clone(),
            window,
            group: None,
            group_dropped: false,
            dropped,
        };
        (last, tracker)
    }
}

/// A bounded set of recent ids, oldest evicted first.
#[derive(Debug)]
struct IdWindow {
    order: VecDeque<SharedStr>,
    set: HashSet<SharedStr>,
    capacity: usize,
}

impl IdWindow {
    fn new(capacity: usize) -> Self {
        IdWindow {
            order: VecDeque::new(),
            set: HashSet::new(),
            capacity,
        }
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    /// Adds `id` (no-op if present), evicting the oldest past the capacity.
    fn insert(&mut self, id: SharedStr) {
        if self.capacity == 0 || self.set.contains(id.as_str()) {
            return;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(old.as_str());
        }
        self.set.insert(id.clone());
        self.order.push_back(id);
    }
}

/// Tracks one stream: drops repeats, advances the store.
///
/// An SSE event without an `id` line of its own carries the id of the one before it. So
/// events are taken in runs of the same id: the first of a run decides (a new id: handed on
/// and advanced; an id in the window: dropped), and the rest of the run follows it. A run
/// ends at a new id or at a reconnect (the first event after a reconnect starts a new run).
pub(crate) struct Tracker {
    key: StreamKey,
    config: ResumeConfig,
    window: IdWindow,
    /// The id of the current run.
    group: Option<SharedStr>,
    /// Whether the current run is being dropped.
    group_dropped: bool,
    dropped: Arc<AtomicU64>,
}

impl Tracker {
    /// A new connection: the next event starts a new run.
    fn reconnected(&mut self) {
        self.group = None;
        self.group_dropped = false;
    }

    /// Whether to hand `item` on (advancing the store for a new id).
    fn keep(&mut self, item: &RawItem) -> bool {
        let Some(id) = &item.id else {
            self.group = None;
            self.group_dropped = false;
            return true;
        };
        if self.group.as_ref() == Some(id) {
            if self.group_dropped {
                self.count_drop(id);
            }
            return !self.group_dropped;
        }
        self.group = Some(id.clone());
        if !self.config.trackable(id) {
            self.group_dropped = false;
            tracing::debug!(
                stream = %escape_controls(&self.key.to_string()),
                len = id.len(),
                "event id too long to track: handed on without resuming or de-duplication"
            );
            return true;
        }
        self.group_dropped = self.window.contains(id);
        if self.group_dropped {
            self.count_drop(id);
            return false;
        }
        self.window.insert(id.clone());
        self.config.store.advance(&self.key, id);
        true
    }

    fn count_drop(&self, id: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            stream = %escape_controls(&self.key.to_string()),
            event_id = %escape_controls(id),
            "dropping an event sent again (its id was seen)"
        );
    }
}

/// A raw SSE stream with a [`Tracker`]: repeats are dropped, the store advanced.
pub(crate) struct Deduped<S> {
    pub(crate) inner: S,
    pub(crate) tracker: Tracker,
    /// wot-sse's connection state: a change means a reconnect may have happened.
    pub(crate) connection: watch::Receiver<wot_sse::ConnectionState>,
}

impl<S> Stream for Deduped<S>
where
    S: Stream<Item = Result<RawItem, Error>> + Unpin,
{
    type Item = Result<RawItem, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let item = match this.inner.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(item))) => item,
                other => return other,
            };
            if this.connection.has_changed().unwrap_or(false) {
                this.connection.mark_unchanged();
                this.tracker.reconnected();
            }
            if this.tracker.keep(&item) {
                return Poll::Ready(Some(Ok(item)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StreamKey {
        StreamKey::event("urn:t", "e", &Url::parse("http://h/e").unwrap())
    }

    fn raw(id: Option<&str>) -> RawItem {
        RawItem {
            name: None,
            data: String::new(),
            id: id.map(SharedStr::from),
            polled: false,
        }
    }

    fn tracker(store: Arc<MemoryResumeStore>, window: usize) -> (Option<String>, Tracker) {
        let config = ResumeConfig {
            store,
            window,
            max_id_len: 16,
        };
        config.start(key(), Arc::new(AtomicU64::new(0)))
    }

    #[test]
    fn key_leaves_credentials_out() {
        let url = Url::parse("http://u:p@h:8080/a/b?x=1&token=t#frag").unwrap();
        let k = StreamKey::property("urn:t", "temp", &url);
        assert_eq!(k.form(), "http://h:8080/a/b");
        assert_eq!(k.affordance(), "property/temp");
        assert_eq!(StreamKey::all_events("urn:t", &url).affordance(), "events");
        assert_eq!(
            StreamKey::all_properties("urn:t", &url).affordance(),
            "properties"
        );
        let json = serde_json::to_string(&k).unwrap();
        assert!(!json.contains("token") && !json.contains(":p@"), "{json}");
        assert_eq!(serde_json::from_str::<StreamKey>(&json).unwrap(), k);
    }

    #[test]
    fn point_advance_is_bounded_and_skips_a_repeat_of_the_last() {
        let mut p = ResumePoint::new("0");
        for i in 1..=10 {
            p.advance(&i.to_string(), 3);
            p.advance(&i.to_string(), 3);
        }
        assert_eq!(p.last_event_id, "10");
        assert_eq!(p.recent_ids, ["8", "9", "10"]);
        p.advance("11", 0);
        assert!(p.recent_ids.is_empty() && p.last_event_id == "11");
        // A point written without recent ids reads back.
        let p: ResumePoint = serde_json::from_str(r#"{"last_event_id":"4"}"#).unwrap();
        assert_eq!(p.last_event_id, "4");
    }

    #[test]
    fn runs_of_one_id_follow_their_first_event() {
        let store = Arc::new(MemoryResumeStore::new());
        let (last, mut t) = tracker(store.clone(), 8);
        assert_eq!(last, None);
        let ids = [Some("1"), Some("1"), None, Some("2"), Some("2"), Some("3")];
        let kept: Vec<bool> = ids.iter().map(|id| t.keep(&raw(*id))).collect();
        assert_eq!(kept, [true; 6]);
        assert_eq!(store.get(&key()).unwrap().recent_ids, ["1", "2", "3"]);
        // Built again: the server replays 1..=4, with an id-less event after 2.
        let (last, mut t) = tracker(store.clone(), 8);
        assert_eq!(last.as_deref(), Some("3"));
        let ids = [
            Some("1"),
            Some("2"),
            Some("2"),
            Some("3"),
            Some("4"),
            Some("4"),
        ];
        let kept: Vec<bool> = ids.iter().map(|id| t.keep(&raw(*id))).collect();
        assert_eq!(kept, [false, false, false, false, true, true]);
        assert_eq!(t.dropped.load(Ordering::Relaxed), 4);
        assert_eq!(store.get(&key()).unwrap().last_event_id, "4");
        // After a reconnect, the last id again is a repeat.
        t.reconnected();
        assert!(!t.keep(&raw(Some("4"))));
    }

    #[test]
    fn window_is_bounded_and_hostile_ids_are_not_tracked() {
        let store = Arc::new(MemoryResumeStore::new().with_recent_ids(4));
        let (_, mut t) = tracker(store.clone(), 4);
        for i in 0..100 {
            assert!(t.keep(&raw(Some(&i.to_string()))));
        }
        assert_eq!(t.window.len(), 4);
        assert_eq!(store.get(&key()).unwrap().recent_ids.len(), 4);
        // Longer than max_id_len (16): handed on, never tracked.
        let long = "x".repeat(17);
        assert!(t.keep(&raw(Some(&long))));
        assert!(t.keep(&raw(Some("y"))));
        assert!(t.keep(&raw(Some(&long))));
        assert_eq!(store.get(&key()).unwrap().last_event_id, "y");
        // A stored point with a bad last id starts without it.
        store.insert_all([(key(), ResumePoint::new("a\0b"))]);
        assert_eq!(tracker(store.clone(), 4).0, None);
        store.insert_all([(key(), ResumePoint::new(long))]);
        assert_eq!(tracker(store, 4).0, None);
    }

    #[test]
    fn memory_store_bounds_streams() {
        let store = MemoryResumeStore::new().with_max_streams(2);
        let url = Url::parse("http://h/").unwrap();
        for i in 0..10 {
            store.advance(&StreamKey::event("t", &i.to_string(), &url), "1");
        }
        assert_eq!(store.len(), 2);
        store.advance(&StreamKey::event("t", "0", &url), "2");
        assert_eq!(
            store
                .get(&StreamKey::event("t", "0", &url))
                .unwrap()
                .last_event_id,
            "2"
        );
        let copy = MemoryResumeStore::from_points(store.points());
        assert_eq!(copy.len(), 2);
    }

    proptest::proptest! {
        /// With a window as large as the input, a stream keeps exactly the first event of each
        /// id (no two events in a row with the same id here: such a pair is one event and its
        /// follower), and the store ends at the last id kept, with the newest ids.
        #[test]
        fn keeps_the_first_of_each_id_and_the_store_follows(
            ids in proptest::collection::vec(0u8..40, 0..200),
            window in 0usize..8,
        ) {
            let mut ids = ids;
            ids.dedup();
            let store = Arc::new(MemoryResumeStore::new().with_recent_ids(window));
            let (_, mut t) = tracker(store.clone(), 256);
            let kept: Vec<u8> = ids
                .iter()
                .copied()
                .filter(|id| t.keep(&raw(Some(&id.to_string()))))
                .collect();
            let mut seen = HashSet::new();
            let first: Vec<u8> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
            proptest::prop_assert_eq!(&kept, &first);
            proptest::prop_assert_eq!(
                t.dropped.load(Ordering::Relaxed) as usize,
                ids.len() - kept.len()
            );
            let point = store.get(&key());
            proptest::prop_assert_eq!(
                point.as_ref().map(|p| p.last_event_id.clone()),
                kept.last().map(u8::to_string)
            );
            let newest: Vec<String> = kept
                .iter()
                .rev()
                .take(window)
                .rev()
                .map(u8::to_string)
                .collect();
            proptest::prop_assert_eq!(
                point.map(|p| Vec::from(p.recent_ids)).unwrap_or_default(),
                newest
            );
        }
    }
}
