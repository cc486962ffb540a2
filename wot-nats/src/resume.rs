//! A `wot_events::ResumeStore` kept in a key-value bucket, so that the collector that takes
//! a Thing over resumes its streams where the last one stopped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use wot_events::{ResumePoint, ResumeStore, StreamKey};

use crate::bucket::ensure_bucket;
use crate::connect::DEFAULT_TIMEOUT;
use crate::error::{Error, Repr};
use crate::subject::{check_thing_id, token};

/// The default resume bucket: `wot-resume`.
pub const DEFAULT_RESUME_BUCKET: &str = "wot-resume";

/// The default age past which the bucket drops a Thing's points (no collector wrote them for
/// that long): 7 days.
pub const DEFAULT_RESUME_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The default time between writes of advanced points to the bucket: 1 s.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The default number of recent ids per stream written to the bucket: 16 (the rest of a
/// stream's window stays in memory; JetStream's duplicate window catches older repeats).
pub const DEFAULT_STORED_RECENT_IDS: usize = 16;

/// The default limit on one Thing's value in the bucket: 64 KiB. A Thing whose points do not
/// fit even without their recent ids is not written (one warning per store).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 64 * 1024;

/// The default limit on the resume bucket's size, when this store creates it: 1 GiB. Past it,
/// writes are refused (and retried at each flush, with a warning).
pub const DEFAULT_RESUME_BUCKET_BYTES: i64 = 1 << 30;

/// The default number of streams per Thing kept: 256; further streams are not kept.
pub const DEFAULT_MAX_STREAMS_PER_THING: usize = 256;

/// The default number of Things kept in memory: 100,000; further Things are not kept.
pub const DEFAULT_MAX_THINGS: usize = 100_000;

/// Ids handed on and not confirmed published kept per stream, with
/// [`KvResumeStoreBuilder::after_publish`]: 4,096. Past it the oldest are dropped (a later
/// confirmed id moves the point past them all the same).
const MAX_PENDING_IDS: usize = 4096;

/// Writes to the bucket at a time during a flush.
const FLUSH_CONCURRENCY: usize = 64;

/// The value of a Thing's key: its streams' points.
#[derive(Debug, Serialize, Deserialize)]
struct StoredThing {
    v: u32,
    streams: Vec<StoredStream>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredStream {
    affordance: String,
    form: String,
    #[serde(flatten)]
    point: ResumePoint,
    /// With `after_publish`: ids handed on and not yet confirmed published, oldest first.
    #[serde(skip)]
    pending: VecDeque<String>,
}

impl StoredStream {
    /// Whether this stream carries the records of `stream` (`event/<name>`,
    /// `property/<name>`), alone or with others.
    fn carries(&self, stream: &str) -> bool {
        self.affordance == stream
            || (self.affordance == "events" && stream.starts_with("event/"))
            || (self.affordance == "properties" && stream.starts_with("property/"))
    }
}

/// One Thing's points in memory.
#[derive(Debug, Default)]
struct ThingPoints {
    streams: Vec<StoredStream>,
    /// Advanced since the last write.
    dirty: bool,
}

/// Settings of a [`KvResumeStore`]. Every setting states its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct KvResumeStoreBuilder {
    bucket: String,
    max_age: Duration,
    flush_interval: Duration,
    recent_ids: usize,
    stored_recent_ids: usize,
    max_value_bytes: usize,
    max_streams_per_thing: usize,
    max_things: usize,
    timeout: Duration,
    after_publish: bool,
    max_bucket_bytes: i64,
}

impl Default for KvResumeStoreBuilder {
    fn default() -> Self {
        KvResumeStoreBuilder {
            bucket: DEFAULT_RESUME_BUCKET.to_owned(),
            max_age: DEFAULT_RESUME_MAX_AGE,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            recent_ids: wot_events::DEFAULT_DEDUP_WINDOW,
            stored_recent_ids: DEFAULT_STORED_RECENT_IDS,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_streams_per_thing: DEFAULT_MAX_STREAMS_PER_THING,
            max_things: DEFAULT_MAX_THINGS,
            timeout: DEFAULT_TIMEOUT,
            after_publish: false,
            max_bucket_bytes: DEFAULT_RESUME_BUCKET_BYTES,
        }
    }
}

impl KvResumeStoreBuilder {
    /// The bucket. Default: [`DEFAULT_RESUME_BUCKET`].
    pub fn bucket(mut self, name: impl Into<String>) -> Self {
        self.bucket = name.into();
        self
    }

    /// The bucket's max age. Default: [`DEFAULT_RESUME_MAX_AGE`].
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// The time between writes of advanced points. Default: [`DEFAULT_FLUSH_INTERVAL`].
    /// A collector that dies loses at most this much progress: its successor resumes a
    /// little earlier and JetStream drops the records published twice.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Recent ids per stream kept in memory. Default: wot-events'
    /// [`DEFAULT_DEDUP_WINDOW`](wot_events::DEFAULT_DEDUP_WINDOW).
    pub fn recent_ids(mut self, n: usize) -> Self {
        self.recent_ids = n;
        self
    }

    /// Recent ids per stream written to the bucket. Default: [`DEFAULT_STORED_RECENT_IDS`].
    pub fn stored_recent_ids(mut self, n: usize) -> Self {
        self.stored_recent_ids = n;
        self
    }

    /// The limit on one Thing's value. Default: [`DEFAULT_MAX_VALUE_BYTES`].
    pub fn max_value_bytes(mut self, bytes: usize) -> Self {
        self.max_value_bytes = bytes;
        self
    }

    /// Streams per Thing kept. Default: [`DEFAULT_MAX_STREAMS_PER_THING`].
    pub fn max_streams_per_thing(mut self, n: usize) -> Self {
        self.max_streams_per_thing = n;
        self
    }

    /// Things kept in memory. Default: [`DEFAULT_MAX_THINGS`].
    pub fn max_things(mut self, n: usize) -> Self {
        self.max_things = n;
        self
    }

    /// The limit on each request. Default: [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The bucket's size limit, when this store creates it. Default:
    /// [`DEFAULT_RESUME_BUCKET_BYTES`].
    pub fn max_bucket_bytes(mut self, bytes: i64) -> Self {
        self.max_bucket_bytes = bytes;
        self
    }

    /// Whether a point moves only once the record of its event is confirmed published
    /// ([`KvResumeStore::published`]), rather than when the stream hands the event on; then
    /// only Things read with [`KvResumeStore::prefetch`] are kept. Default: `false`. A collector that publishes to JetStream turns it on: otherwise a
    /// point written before the record was acknowledged would make the successor of a
    /// collector that died in between skip that event.
    pub fn after_publish(mut self, yes: bool) -> Self {
        self.after_publish = yes;
        self
    }

    /// Opens the bucket (creating it when missing) and starts the task that writes advanced
    /// points. Call it inside a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a bad bucket name, a zero
    /// interval, timeout or limit, or a value limit over what the server takes;
    /// [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) when the bucket cannot be created
    /// or has another max age.
    pub async fn open(self, client: async_nats::Client) -> Result<KvResumeStore, Error> {
        let server_max = client.server_info().max_payload;
        if self.flush_interval.is_zero()
            || self.timeout.is_zero()
            || self.max_value_bytes == 0
            || self.max_streams_per_thing == 0
            || self.max_things == 0
            || self.max_bucket_bytes < 1
        {
            return Err(Error::config(
                "the flush interval, timeout, value limit and counts must not be zero",
            ));
        }
        if self.max_value_bytes > server_max.saturating_sub(1024) {
            return Err(Error::config(format!(
                "the value limit ({} bytes) must leave 1 KiB under the server's largest message ({server_max} bytes)",
                self.max_value_bytes
            )));
        }
        let js = jetstream::ContextBuilder::new()
            .timeout(self.timeout)
            .build(client);
        let value_size = i32::try_from(self.max_value_bytes).unwrap_or(i32::MAX);
        let kv = ensure_bucket(
            &js,
            &self.bucket,
            self.max_age,
            value_size,
            self.max_bucket_bytes,
        )
        .await?;
        let shared = Arc::new(Shared {
            kv,
            settings: self,
            things: Mutex::new(HashMap::new()),
            warned_full: AtomicBool::new(false),
            warned_too_large: AtomicBool::new(false),
            flushing: tokio::sync::Mutex::new(()),
        });
        let task = tokio::spawn(flush_loop(Arc::clone(&shared)));
        Ok(KvResumeStore { shared, task })
    }
}

struct Shared {
    kv: kv::Store,
    settings: KvResumeStoreBuilder,
    things: Mutex<HashMap<String, ThingPoints>>,
    warned_full: AtomicBool,
    warned_too_large: AtomicBool,
    /// Held while a flush runs.
    flushing: tokio::sync::Mutex<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, ThingPoints>> {
        self.things.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes every Thing advanced since its last write.
    async fn flush(&self) -> Result<(), Error> {
        // One flush at a time: a value read for a write is never written after a newer one,
        // and a flush asked for (before a Thing is handed over) waits for the one under way.
        let _one = self.flushing.lock().await;
        let dirty: Vec<(String, Vec<StoredStream>)> = {
            let mut things = self.lock();
            things
                .iter_mut()
                .filter(|(_, t)| t.dirty)
                .map(|(id, t)| {
                    t.dirty = false;
                    (id.clone(), t.streams.clone())
                })
                .collect()
        };
        // Encoded outside the lock, which the streams take for every event.
        let dirty: Vec<(String, Vec<u8>)> = dirty
            .into_iter()
            .filter_map(|(id, streams)| self.encode(&id, &streams).map(|v| (id, v)))
            .collect();
        let mut first_error = None;
        let mut writes = futures::stream::iter(dirty)
            .map(|(id, value)| async move {
                let result = self.kv.put(token(&id), value.into()).await;
                (id, result)
            })
            .buffer_unordered(FLUSH_CONCURRENCY);
        while let Some((id, result)) = writes.next().await {
            if let Err(e) = result {
                // Written again at the next flush, unless the Thing was forgotten.
                if let Some(t) = self.lock().get_mut(&id) {
                    t.dirty = true;
                }
                if first_error.is_none() {
                    first_error = Some(Error::key_value_from(
                        &self.settings.bucket,
                        "writing resume points",
                        e,
                    ));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The value of a Thing's key, within the value limit: recent ids trimmed to the stored
    /// count, then left out if still too large. `None` (one warning) if it does not fit.
    fn encode(&self, thing_id: &str, streams: &[StoredStream]) -> Option<Vec<u8>> {
        let limit = self.settings.max_value_bytes;
        for keep in [self.settings.stored_recent_ids, 0] {
            let stored = StoredThing {
                v: 1,
                streams: streams
                    .iter()
                    .filter(|s| !s.point.last_event_id.is_empty())
                    .map(|s| {
                        let mut point = s.point.clone();
                        point.truncate_recent(keep);
                        StoredStream {
                            affordance: s.affordance.clone(),
                            form: s.form.clone(),
                            point,
                            pending: VecDeque::new(),
                        }
                    })
                    .collect(),
            };
            match serde_json::to_vec(&stored) {
                Ok(bytes) if bytes.len() <= limit => return Some(bytes),
                _ => {}
            }
        }
        if !self.warned_too_large.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                thing = %token(thing_id),
                limit,
                "the resume points of a Thing do not fit the bucket's value limit: not written"
            );
        } else {
            tracing::debug!(thing = %token(thing_id), limit, "resume points too large: not written");
        }
        None
    }
}

async fn flush_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.settings.flush_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = shared.flush().await {
            tracing::warn!(error = %e, "resume points not written; retrying at the next flush");
        }
    }
}

/// A [`ResumeStore`] whose points are kept in a JetStream key-value bucket, one key per
/// Thing, so that the collector that takes a Thing over resumes its streams from the last
/// event ids the previous one recorded.
///
/// The key of a Thing is its id as one [token](crate::encode_token); the value holds all its
/// streams' points: `{"v":1,"streams":[{"affordance":"event/overheat","form":"https://...",
/// "last_event_id":"42","recent_ids":["41","42"]}]}`. One key per Thing, not per stream,
/// because [`ResumeStore::load`] cannot wait for the network: a collector reads the Thing's
/// points with [`prefetch`](Self::prefetch) before it builds the Thing's streams, and on
/// nats-server 2.9 one key is one read (reading many keys by a wildcard needs a consumer).
///
/// [`advance`](ResumeStore::advance) updates memory only; a task the store owns writes the
/// advanced Things every [`flush_interval`](KvResumeStoreBuilder::flush_interval).
/// [`flush`](Self::flush) writes them at once (call it on a clean stop). Dropping the store
/// stops its task; points advanced since the last write are then not written.
///
/// A Thing whose lease was lost must be [`forget`](Self::forget)ten, so that this store
/// stops writing it while the new holder does.
///
/// A collector builds it with [`after_publish`](KvResumeStoreBuilder::after_publish) and
/// calls [`published`](Self::published) for each acknowledged record: a point then never
/// runs ahead of what JetStream holds, and the successor of a collector that died resumes
/// at or before the last record stored (the duplicate window drops what it publishes twice).
///
/// # Examples
///
/// ```no_run
/// # async fn run(client: wot_nats::async_nats::Client) -> Result<(), wot_nats::Error> {
/// use std::sync::Arc;
/// use wot_events::EventSubscriber;
/// use wot_nats::KvResumeStore;
///
/// let store = Arc::new(KvResumeStore::builder().open(client).await?);
/// store.prefetch("urn:dev:boiler").await?; // before the Thing's streams are built
/// let subscriber = EventSubscriber::builder().resume_store(store.clone()).build();
/// // ... subscribe to the Thing; on a clean stop:
/// store.flush().await?;
/// # let _ = subscriber;
/// # Ok(())
/// # }
/// ```
pub struct KvResumeStore {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for KvResumeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvResumeStore")
            .field("settings", &self.shared.settings)
            .field("things", &self.shared.lock().len())
            .finish_non_exhaustive()
    }
}

impl Drop for KvResumeStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KvResumeStore {
    /// Settings to open the store with, all at their defaults.
    pub fn builder() -> KvResumeStoreBuilder {
        KvResumeStoreBuilder::default()
    }

    /// Reads the points of the Thing `thing_id` from the bucket into memory, replacing those
    /// in memory; returns how many streams it has. Call it when this collector takes the
    /// Thing, before building its streams.
    ///
    /// A stored value this crate did not write (or of another version) is ignored with a
    /// warning: the Thing's streams start without a position.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLong`](crate::ErrorKind::TooLong) for an id over
    /// [`MAX_THING_ID_LEN`](crate::MAX_THING_ID_LEN); [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue)
    /// or [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the bucket failed or did not
    /// answer.
    pub async fn prefetch(&self, thing_id: &str) -> Result<usize, Error> {
        check_thing_id(thing_id)?;
        let key = token(thing_id);
        let settings = &self.shared.settings;
        let bytes = match self.shared.kv.get(key.as_str()).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == kv::EntryErrorKind::TimedOut => {
                return Err(Error::new(Repr::Timeout {
                    what: format!("reading the resume points of {key}"),
                    after: settings.timeout,
                }));
            }
            Err(e) => {
                return Err(Error::key_value_from(
                    &settings.bucket,
                    "reading resume points",
                    e,
                ));
            }
        };
        let mut streams = match bytes.map(|b| serde_json::from_slice::<StoredThing>(&b)) {
            None => Vec::new(),
            Some(Ok(stored)) if stored.v == 1 => stored.streams,
            Some(Ok(stored)) => {
                tracing::warn!(thing = %key, version = stored.v, "resume points of another version: ignored");
                Vec::new()
            }
            Some(Err(e)) => {
                tracing::warn!(thing = %key, error = %e, "resume points that do not parse: ignored");
                Vec::new()
            }
        };
        streams.truncate(settings.max_streams_per_thing);
        for s in &mut streams {
            s.point.truncate_recent(settings.recent_ids);
        }
        let n = streams.len();
        let mut things = self.shared.lock();
        if !things.contains_key(thing_id) && !self.has_room(&things) {
            return Ok(0);
        }
        things.insert(
            thing_id.to_owned(),
            ThingPoints {
                streams,
                dirty: false,
            },
        );
        Ok(n)
    }

    /// Writes every Thing advanced since its last write, now.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyValue`](crate::ErrorKind::KeyValue) when a write failed (the first
    /// failure; the others are retried at the next flush too).
    pub async fn flush(&self) -> Result<(), Error> {
        self.shared.flush().await
    }

    /// Stops keeping (and writing) the points of the Thing `thing_id`: its lease was lost or
    /// released. Points advanced and not written are dropped.
    pub fn forget(&self, thing_id: &str) {
        self.shared.lock().remove(thing_id);
    }

    /// With [`after_publish`](KvResumeStoreBuilder::after_publish): `record` is stored in
    /// JetStream. The point of the stream that carried it moves to its event id, past the
    /// ids handed on before it (events the app did not publish, such as values of unknown
    /// properties, included). Records are confirmed in the order they were handed on. A
    /// record without an event id, or whose id is not waiting, changes nothing.
    pub fn published(&self, record: &crate::Record) {
        let Some(event_id) = record.event_id() else {
            return;
        };
        let stream_name = record.stream();
        let recent_ids = self.shared.settings.recent_ids;
        let mut things = self.shared.lock();
        let Some(thing) = things.get_mut(record.thing_id()) else {
            return;
        };
        for stream in thing.streams.iter_mut().filter(|s| s.carries(&stream_name)) {
            if let Some(at) = stream.pending.iter().position(|id| id == event_id) {
                for id in stream.pending.drain(..=at) {
                    stream.point.advance(&id, recent_ids);
                }
                thing.dirty = true;
            }
        }
    }

    /// Whether points wait for [`published`](Self::published) (see
    /// [`KvResumeStoreBuilder::after_publish`]).
    pub fn is_after_publish(&self) -> bool {
        self.shared.settings.after_publish
    }

    /// How many Things have points in memory.
    pub fn len(&self) -> usize {
        self.shared.lock().len()
    }

    /// Whether no Thing has points in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn has_room(&self, things: &HashMap<String, ThingPoints>) -> bool {
        let room = things.len() < self.shared.settings.max_things;
        if !room && !self.shared.warned_full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                limit = self.shared.settings.max_things,
                "the resume store is full: new Things are not kept"
            );
        }
        room
    }
}

impl ResumeStore for KvResumeStore {
    fn load(&self, key: &StreamKey) -> Option<ResumePoint> {
        let things = self.shared.lock();
        things
            .get(key.thing_id())?
            .streams
            .iter()
            .find(|s| s.affordance == key.affordance() && s.form == key.form())
            .filter(|s| !s.point.last_event_id.is_empty())
            .map(|s| s.point.clone())
    }

    fn advance(&self, key: &StreamKey, event_id: &str) {
        if check_thing_id(key.thing_id()).is_err() {
            return;
        }
        let settings = &self.shared.settings;
        let mut things = self.shared.lock();
        if !things.contains_key(key.thing_id()) {
            // With `after_publish` (a collector), only Things read with `prefetch` are kept:
            // a stream still running after its Thing was forgotten must not bring it back.
            if settings.after_publish || !self.has_room(&things) {
                return;
            }
            things.insert(key.thing_id().to_owned(), ThingPoints::default());
        }
        let Some(thing) = things.get_mut(key.thing_id()) else {
            return;
        };
        let at = thing
            .streams
            .iter()
            .position(|s| s.affordance == key.affordance() && s.form == key.form());
        let stream = match at {
            Some(i) => &mut thing.streams[i],
            None if thing.streams.len() < settings.max_streams_per_thing => {
                thing.streams.push(StoredStream {
                    affordance: key.affordance().to_owned(),
                    form: key.form().to_owned(),
                    point: ResumePoint::default(),
                    pending: VecDeque::new(),
                });
                let last = thing.streams.len() - 1;
                &mut thing.streams[last]
            }
            None => return,
        };
        if settings.after_publish {
            if stream.pending.len() >= MAX_PENDING_IDS {
                stream.pending.pop_front();
            }
            stream.pending.push_back(event_id.to_owned());
        } else {
            stream.point.advance(event_id, settings.recent_ids);
            thing.dirty = true;
        }
    }
}
