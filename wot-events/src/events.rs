//! Event subscriptions: decoding raw items into records, filtering, buffering.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use futures::Stream;
use futures::stream::{SelectAll, StreamExt};
use serde_json::Value;
use tokio::sync::watch;
use wot_td::{CompiledSchema, Data};

use crate::decode::read;
use crate::error::{Error, Repr};
use crate::filter::Filter;
use crate::record::{EventRecord, RingBuffer, SharedStr};
use crate::skipped::SkippedAffordance;
use crate::state::ConnectionState;
use crate::thing::ConsumedThing;
use crate::transport::{RawItem, RawStream, Source};

/// Default number of records a subscription buffers.
pub const DEFAULT_BUFFER: usize = 100;
/// Default byte budget of a subscription's buffer (estimated by [`ByteSize`](crate::ByteSize)): 4 MiB.
pub const DEFAULT_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// How much of invalid data an [`ErrorKind::InvalidData`](crate::ErrorKind::InvalidData) keeps.
const RAW_KEEP: usize = 4096;

/// What a subscription does with data that is not JSON or does not fit the TD's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum InvalidData {
    /// Yield an [`ErrorKind::InvalidData`](crate::ErrorKind::InvalidData) item and go on (the
    /// default).
    #[default]
    Error,
    /// Skip it silently (a `tracing` debug line is written).
    Drop,
    /// Deliver it as a record: non-JSON text becomes a JSON string; a schema mismatch is
    /// delivered as is.
    PassThrough,
}

/// Options of one subscription.
///
/// # Examples
///
/// ```
/// use wot_events::{Filter, InvalidData, SubscribeOptions};
///
/// let opts = SubscribeOptions::new()
///     .filter(Filter::from_fn(|r| r.data["level"] == "alarm"))
///     .buffer(Some(500))
///     .invalid_data(InvalidData::Drop);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SubscribeOptions {
    pub(crate) filter: Option<Filter>,
    pub(crate) buffer: Option<usize>,
    pub(crate) buffer_bytes: usize,
    pub(crate) invalid: InvalidData,
    pub(crate) last_event_id: Option<String>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            filter: None,
            buffer: Some(DEFAULT_BUFFER),
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            invalid: InvalidData::Error,
            last_event_id: None,
        }
    }
}

impl SubscribeOptions {
    /// Defaults: no filter, a buffer of [`DEFAULT_BUFFER`] (100) records,
    /// [`InvalidData::Error`], no initial `Last-Event-ID`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only records passing `filter` are yielded and buffered (default: all).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Keep the last `n` yielded records (default `Some(100)`; `None` keeps none).
    pub fn buffer(mut self, n: Option<usize>) -> Self {
        self.buffer = n;
        self
    }

    /// The byte budget of the buffer: past it the oldest records are dropped, by the
    /// estimate of [`ByteSize`](crate::ByteSize) (default [`DEFAULT_BUFFER_BYTES`], 4 MiB; the newest record
    /// is always kept).
    pub fn buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer_bytes = bytes;
        self
    }

    /// What to do with invalid data (default [`InvalidData::Error`]).
    pub fn invalid_data(mut self, policy: InvalidData) -> Self {
        self.invalid = policy;
        self
    }

    /// Resume an SSE subscription after this event id (sent as `Last-Event-ID` on the first
    /// connection; default: none).
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = Some(id.into());
        self
    }
}

/// Turns raw items into records (no I/O).
#[derive(Debug, Clone)]
pub(crate) struct EventDecoder {
    thing_id: SharedStr,
    thing_title: SharedStr,
    /// Events this decoder accepts, with their data schema (patterns compiled once).
    events: HashMap<SharedStr, Option<CompiledSchema>>,
    /// For a one-event subscription: the name given to events of type `message`.
    single: Option<SharedStr>,
    policy: InvalidData,
}

impl EventDecoder {
    /// For one event of a Thing.
    pub(crate) fn single(thing: &ConsumedThing, name: &str, policy: InvalidData) -> Self {
        let name = SharedStr::from(name);
        let mut events = HashMap::new();
        events.insert(
            name.clone(),
            thing
                .thing()
                .event_data_schema(&name)
                .map(CompiledSchema::new),
        );
        EventDecoder {
            thing_id: thing.shared_id().clone(),
            thing_title: thing.shared_title().clone(),
            events,
            single: Some(name),
            policy,
        }
    }

    /// For every event of a Thing on one shared connection.
    pub(crate) fn all(thing: &ConsumedThing, policy: InvalidData) -> Self {
        let events = thing
            .thing()
            .events()
            .map(|(n, e)| (n.into(), e.data_schema().map(CompiledSchema::new)))
            .collect();
        EventDecoder {
            thing_id: thing.shared_id().clone(),
            thing_title: thing.shared_title().clone(),
            events,
            single: None,
            policy,
        }
    }

    fn invalid(&self, name: &str, reason: String, raw: &str) -> Option<Result<EventRecord, Error>> {
        match self.policy {
            InvalidData::Drop => {
                tracing::debug!(thing = %self.thing_id, event = name, %reason, "dropping invalid event data");
                None
            }
            _ => Some(Err(Error::from(Repr::InvalidData {
                thing: self.thing_id.to_string(),
                what: format!("event `{name}`"),
                reason,
                raw: truncate(raw),
            }))),
        }
    }

    pub(crate) fn decode(
        &mut self,
        raw: RawItem,
        now: SystemTime,
    ) -> Option<Result<EventRecord, Error>> {
        let name = match (&self.single, raw.name.as_deref()) {
            (Some(single), None | Some("message")) => single.clone(),
            (_, Some(n)) => match self.events.get_key_value(n) {
                Some((shared, _)) => shared.clone(),
                None => {
                    tracing::debug!(thing = %self.thing_id, event = n, "ignoring event not asked for");
                    return None;
                }
            },
            (_, other) => {
                tracing::debug!(thing = %self.thing_id, event = ?other, "ignoring event not asked for");
                return None;
            }
        };
        let schema = match self.events.get(name.as_str()) {
            Some(Some(schema)) if self.policy != InvalidData::PassThrough => Some(schema),
            _ => None,
        };
        let parsed = if raw.data.trim().is_empty() {
            let errors = schema.map(|s| s.validate(&Value::Null)).unwrap_or_default();
            Ok((Data::default(), errors))
        } else {
            read(&raw.data, schema)
        };
        let data = match parsed {
            Ok((data, errors)) => match errors.into_iter().next() {
                None => data,
                Some(first) => {
                    let at = if first.path.is_empty() {
                        "the data".to_owned()
                    } else {
                        format!("`{}`", first.path)
                    };
                    return self.invalid(
                        &name,
                        format!("{at} does not fit the schema: {}", first.message),
                        &raw.data,
                    );
                }
            },
            Err(e) if self.policy == InvalidData::PassThrough => {
                tracing::debug!(thing = %self.thing_id, event = %name, error = %e, "passing non-JSON data through");
                Data::from(Value::String(raw.data.clone()))
            }
            Err(e) => return self.invalid(&name, format!("not JSON: {e}"), &raw.data),
        };
        Some(Ok(EventRecord {
            thing_id: self.thing_id.clone(),
            thing_title: self.thing_title.clone(),
            event: name,
            data,
            event_id: raw.id,
            received_at: now,
        }))
    }
}

pub(crate) fn truncate(s: &str) -> String {
    if s.len() <= RAW_KEEP {
        return s.to_owned();
    }
    let mut end = RAW_KEEP;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

/// A live subscription: a [`Stream`] of records (and recoverable errors).
///
/// Dropping it, or calling [`Subscription::unsubscribe`], closes its connection.
#[must_use = "a subscription does nothing unless polled; dropping it closes its connection"]
pub struct Subscription {
    source: Source,
    decoder: EventDecoder,
    filter: Option<Filter>,
    buffer: Option<RingBuffer<EventRecord>>,
    state: watch::Receiver<ConnectionState>,
    label: String,
    /// Events dropped as repeats (with a resume store).
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("label", &self.label)
            .field("state", &*self.state.borrow())
            .field("open", &!self.source.is_closed())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(
        source: RawStream,
        state: watch::Receiver<ConnectionState>,
        decoder: EventDecoder,
        opts: &SubscribeOptions,
        label: String,
        dropped: Arc<AtomicU64>,
    ) -> Self {
        Subscription {
            dropped,
            source: Source::new(source),
            decoder,
            filter: opts.filter.clone(),
            buffer: opts
                .buffer
                .map(|n| RingBuffer::new(n).with_max_bytes(opts.buffer_bytes)),
            state,
            label,
        }
    }

    /// The last records yielded (those that passed the filter), oldest first. Empty when the
    /// buffer is off.
    pub fn buffered_records(&self) -> Vec<EventRecord> {
        self.buffer
            .as_ref()
            .map(RingBuffer::to_vec)
            .unwrap_or_default()
    }

    /// The connection state now.
    pub fn connection_state(&self) -> ConnectionState {
        self.state.borrow().clone()
    }

    /// A receiver that sees every change of the connection state.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// What this subscription is for (`"<thing id> event <name>"`, or `"<thing id> all
    /// events"` for a shared connection).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Closes the connection now; the stream then ends. The buffer stays readable.
    pub fn unsubscribe(&mut self) {
        self.source.close();
    }

    /// Whether the connection has been closed (by [`unsubscribe`](Self::unsubscribe), or
    /// because the stream ended).
    pub fn is_closed(&self) -> bool {
        self.source.is_closed()
    }

    /// How many events were dropped because their id had been seen: the server sent them
    /// again (after a restart with a
    /// [`resume_store`](crate::EventSubscriberBuilder::resume_store), or a reconnect). Always 0
    /// without a resume store.
    pub fn duplicates_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Stream for Subscription {
    type Item = Result<EventRecord, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        while let Some(raw) = ready!(this.source.poll_next(cx)?) {
            match this.decoder.decode(raw, SystemTime::now()) {
                None => {}
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(record)) => {
                    if this.filter.as_ref().is_some_and(|f| !f.matches(&record)) {
                        continue;
                    }
                    if let Some(buf) = &mut this.buffer {
                        buf.push(record.clone());
                    }
                    return Poll::Ready(Some(Ok(record)));
                }
            }
        }
        Poll::Ready(None)
    }
}

/// Every event of many Things in one stream (see
/// [`EventSubscriber::subscribe_all`](crate::EventSubscriber::subscribe_all)).
#[must_use = "a subscription does nothing unless polled; dropping it closes its connections"]
pub struct MergedSubscription {
    inner: SelectAll<Subscription>,
    skipped: Vec<SkippedAffordance>,
}

impl std::fmt::Debug for MergedSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergedSubscription")
            .field("subscriptions", &self.inner.iter().collect::<Vec<_>>())
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl MergedSubscription {
    pub(crate) fn new(subs: Vec<Subscription>, skipped: Vec<SkippedAffordance>) -> Self {
        MergedSubscription {
            inner: futures::stream::select_all(subs),
            skipped,
        }
    }

    /// The events left out because this client cannot use any of their forms (a `file:`
    /// href, no HTTP form...), with the reason; the other events are subscribed.
    pub fn skipped(&self) -> &[SkippedAffordance] {
        &self.skipped
    }

    /// The subscriptions inside (one per shared Thing connection or per event).
    pub fn subscriptions(&self) -> impl Iterator<Item = &Subscription> {
        self.inner.iter()
    }

    /// The buffered records of every subscription, oldest first.
    pub fn buffered_records(&self) -> Vec<EventRecord> {
        let mut all: Vec<_> = self
            .inner
            .iter()
            .flat_map(Subscription::buffered_records)
            .collect();
        all.sort_by_key(|r| r.received_at);
        all
    }

    /// How many events were dropped as repeats, over every subscription (see
    /// [`Subscription::duplicates_dropped`]).
    pub fn duplicates_dropped(&self) -> u64 {
        self.inner
            .iter()
            .map(Subscription::duplicates_dropped)
            .sum()
    }

    /// Closes every connection.
    pub fn unsubscribe(&mut self) {
        for s in self.inner.iter_mut() {
            s.unsubscribe();
        }
    }
}

impl Stream for MergedSubscription {
    type Item = Result<EventRecord, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn thing() -> ConsumedThing {
        crate::thing::test_thing(json!({"events": {
            "overheat": {"data": {"type": "object", "required": ["t"], "properties": {"t": {"type": "number", "maximum": 200}}},
                         "forms": [{"href": "http://h/oh", "subprotocol": "sse"}]},
            "door": {"forms": [{"href": "http://h/door", "subprotocol": "sse"}]}
        }}))
    }

    /// A task waiting on a subscription, inside a combinator that polls it only when woken,
    /// is woken by `unsubscribe` and then sees the end.
    #[test]
    fn unsubscribe_wakes_the_waiting_task() {
        struct Count(std::sync::atomic::AtomicUsize);
        impl futures::task::ArcWake for Count {
            fn wake_by_ref(this: &Arc<Self>) {
                this.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let count = Arc::new(Count(Default::default()));
        let waker = futures::task::waker(count.clone());
        let mut cx = Context::from_waker(&waker);
        let t = thing();
        let mut sub = Subscription::new(
            futures::stream::pending().boxed(),
            watch::channel(ConnectionState::Connecting).1,
            EventDecoder::single(&t, "door", InvalidData::Error),
            &SubscribeOptions::new(),
            "door".into(),
            Arc::default(),
        );
        assert!(sub.poll_next_unpin(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        sub.unsubscribe();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert!(matches!(sub.poll_next_unpin(&mut cx), Poll::Ready(None)));
        assert!(sub.is_closed());
    }

    fn raw(name: Option<&str>, data: &str) -> RawItem {
        RawItem {
            name: name.map(SharedStr::from),
            data: data.to_owned(),
            id: Some("9".into()),
            polled: false,
        }
    }

    #[test]
    fn single_decoder_names_message_events_and_checks_schema() {
        let t = thing();
        let now = SystemTime::UNIX_EPOCH;
        let mut d = EventDecoder::single(&t, "overheat", InvalidData::Error);
        let r = d
            .decode(raw(Some("message"), r#"{"t": 150}"#), now)
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                r.event.as_str(),
                r.thing_id.as_str(),
                r.thing_title.as_str()
            ),
            ("overheat", "urn:t", "T")
        );
        assert_eq!(r.event_id.as_deref(), Some("9"));
        assert!(d.decode(raw(Some("door"), "{}"), now).is_none());
        let e = d
            .decode(raw(Some("overheat"), r#"{"t": 250}"#), now)
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("`t`"), "{e}");
        let e = d.decode(raw(None, "not json"), now).unwrap().unwrap_err();
        assert_eq!(e.raw_data(), Some("not json"));
        assert!(!e.is_terminal());
    }

    #[test]
    fn policies_drop_and_pass_through() {
        let t = thing();
        let now = SystemTime::UNIX_EPOCH;
        let mut d = EventDecoder::single(&t, "overheat", InvalidData::Drop);
        assert!(d.decode(raw(None, "x"), now).is_none());
        assert!(d.decode(raw(None, r#"{"t": 999}"#), now).is_none());
        let mut d = EventDecoder::single(&t, "overheat", InvalidData::PassThrough);
        assert_eq!(
            d.decode(raw(None, "x"), now).unwrap().unwrap().data,
            json!("x")
        );
        assert_eq!(
            d.decode(raw(None, r#"{"t": 999}"#), now)
                .unwrap()
                .unwrap()
                .data,
            json!({"t": 999})
        );
    }

    #[test]
    fn shared_decoder_demultiplexes_by_event_field() {
        let t = thing();
        let mut d = EventDecoder::all(&t, InvalidData::Error);
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(
            d.decode(raw(Some("door"), r#""open""#), now)
                .unwrap()
                .unwrap()
                .event,
            "door"
        );
        assert_eq!(
            d.decode(raw(Some("overheat"), r#"{"t": 1}"#), now)
                .unwrap()
                .unwrap()
                .event,
            "overheat"
        );
        assert!(d.decode(raw(Some("message"), "{}"), now).is_none());
        assert!(d.decode(raw(Some("unknown"), "{}"), now).is_none());
        assert_eq!(
            d.decode(raw(Some("door"), ""), now).unwrap().unwrap().data,
            Value::Null
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "é".repeat(RAW_KEEP);
        let t = truncate(&s);
        assert!(t.len() <= RAW_KEEP && t.chars().all(|c| c == 'é'));
    }
}
