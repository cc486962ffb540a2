//! Property observers: updates with schema flags, change detection and history.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use futures::Stream;
use tokio::sync::watch;
use wot_td::Data;

use crate::decode::PropertyDecoder;
use crate::error::Error;
use crate::filter::json_eq;
use crate::record::{PropertyHistory, PropertyUpdate, SharedStr};
use crate::skipped::SkippedAffordance;
use crate::state::ConnectionState;
use crate::thing::ConsumedThing;
use crate::transport::{RawItem, RawStream, Source};

/// Default polling interval when a property can only be read.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default number of values each property's history keeps.
pub const DEFAULT_HISTORY: usize = 100;
/// Default byte budget of each property's history (estimated by [`ByteSize`](crate::ByteSize)): 1 MiB.
pub const DEFAULT_HISTORY_BYTES: usize = 1024 * 1024;

/// Options of a property observer.
#[derive(Debug, Clone)]
#[must_use]
pub struct ObserveOptions {
    pub(crate) interval: Duration,
    pub(crate) every_read: bool,
    pub(crate) history: usize,
    pub(crate) history_bytes: usize,
}

impl Default for ObserveOptions {
    fn default() -> Self {
        ObserveOptions {
            interval: DEFAULT_POLL_INTERVAL,
            every_read: false,
            history: DEFAULT_HISTORY,
            history_bytes: DEFAULT_HISTORY_BYTES,
        }
    }
}

impl ObserveOptions {
    /// Defaults: poll every [`DEFAULT_POLL_INTERVAL`] (1 s) when polling is the only way,
    /// yield only changed values when polling, keep [`DEFAULT_HISTORY`] (100) values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Polling interval (default 1 s; used only when the TD offers no `observeproperty`
    /// form we speak).
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = every.max(Duration::from_millis(1));
        self
    }

    /// When polling, yield every read instead of only changes (default `false`).
    pub fn every_read(mut self, yes: bool) -> Self {
        self.every_read = yes;
        self
    }

    /// How many values each property's history keeps (default 100).
    pub fn history(mut self, n: usize) -> Self {
        self.history = n;
        self
    }

    /// The byte budget of each property's history: past it the oldest values are dropped, by
    /// the estimate of [`ByteSize`](crate::ByteSize) (default [`DEFAULT_HISTORY_BYTES`], 1 MiB; the newest
    /// value is always kept).
    pub fn history_bytes(mut self, bytes: usize) -> Self {
        self.history_bytes = bytes;
        self
    }
}

/// How an observer gets its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObserveMode {
    /// An `observeproperty`/`observeallproperties` form with the SSE subprotocol.
    Sse,
    /// An `observeproperty` form with the `longpoll` subprotocol.
    LongPoll,
    /// Reading the property at an interval.
    Polling,
}

/// A live observation of one or all properties of a Thing: a [`Stream`] of
/// [`PropertyUpdate`]s (and recoverable errors), with a history per property.
///
/// Dropping it closes its connections.
#[must_use = "an observer does nothing unless polled; dropping it closes its connections"]
pub struct PropertyObserver {
    source: Source,
    /// Finds the property, parses and checks each value: the same code as a user's
    /// [`PropertyDecoder`].
    decoder: PropertyDecoder,
    every_read: bool,
    capacity: usize,
    history_bytes: usize,
    history: HashMap<SharedStr, PropertyHistory>,
    states: Vec<(String, ObserveMode, watch::Receiver<ConnectionState>)>,
    /// Properties left out: no usable form.
    skipped: Vec<SkippedAffordance>,
    /// Values dropped as repeats (with a resume store), over every connection.
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for PropertyObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PropertyObserver")
            .field("thing_id", self.decoder.thing_id())
            .field(
                "modes",
                &self
                    .states
                    .iter()
                    .map(|(n, m, _)| (n, m))
                    .collect::<Vec<_>>(),
            )
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl PropertyObserver {
    pub(crate) fn new(
        thing: &ConsumedThing,
        names: &[String],
        single: bool,
        source: RawStream,
        states: Vec<(String, ObserveMode, watch::Receiver<ConnectionState>)>,
        opts: &ObserveOptions,
    ) -> Self {
        PropertyObserver {
            source: Source::new(source),
            decoder: PropertyDecoder::for_names(thing, names, single),
            every_read: opts.every_read,
            capacity: opts.history,
            history_bytes: opts.history_bytes,
            history: HashMap::new(),
            states,
            skipped: Vec::new(),
            dropped: Arc::default(),
        }
    }

    /// Records the properties left out of an all-properties observer.
    pub(crate) fn with_skipped(mut self, skipped: Vec<SkippedAffordance>) -> Self {
        self.skipped = skipped;
        self
    }

    /// Counts repeats in `dropped` (shared with the connections' trackers).
    pub(crate) fn with_dropped(mut self, dropped: Arc<AtomicU64>) -> Self {
        self.dropped = dropped;
        self
    }

    /// How many values were dropped because their event id had been seen: the server sent
    /// them again (after a restart with a
    /// [`resume_store`](crate::EventSubscriberBuilder::resume_store), or a reconnect), over
    /// every connection of the observer. Always 0 without a resume store.
    pub fn duplicates_dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The properties left out because this client cannot use any of their forms (only a
    /// `file:` href, no HTTP form...), with the reason; the other properties are observed.
    /// Always empty for [`EventSubscriber::observe_property`](crate::EventSubscriber::observe_property),
    /// which fails instead.
    pub fn skipped(&self) -> &[SkippedAffordance] {
        &self.skipped
    }

    /// The history of one property (absent until its first value).
    pub fn history(&self, property: &str) -> Option<&PropertyHistory> {
        self.history.get(property)
    }

    /// The latest value of one property and when it arrived.
    pub fn latest(&self, property: &str) -> Option<&(SystemTime, Data)> {
        self.history.get(property).and_then(PropertyHistory::latest)
    }

    /// The connections behind this observer: a label (property name, or `*` for a shared
    /// `observeallproperties` connection), how values are obtained, and the connection state.
    pub fn connections(&self) -> &[(String, ObserveMode, watch::Receiver<ConnectionState>)] {
        &self.states
    }

    /// Closes every connection; the stream then ends. Histories stay readable.
    pub fn stop(&mut self) {
        self.source.close();
    }

    /// Turns one raw item into an update (no I/O): `None` when ignored (unknown property,
    /// unchanged polled value).
    fn decode(&mut self, raw: RawItem, now: SystemTime) -> Option<Result<PropertyUpdate, Error>> {
        let name = self.decoder.property_of(raw.name.as_deref())?;
        let (value, schema_violation) = match self.decoder.parse(&name, &raw.data) {
            Ok(parsed) => parsed,
            Err(e) => return Some(Err(e)),
        };
        if raw.polled && !self.every_read {
            let unchanged = self.latest(&name).is_some_and(|(_, last)| {
                last.as_text() == value.as_text() || json_eq(last, &value)
            });
            if unchanged {
                return None;
            }
        }
        self.history
            .entry(name.clone())
            .or_insert_with(|| PropertyHistory::bounded(self.capacity, self.history_bytes))
            .push(now, value.clone());
        Some(Ok(PropertyUpdate {
            thing_id: self.decoder.thing_id().clone(),
            property: name,
            value,
            timestamp: now,
            event_id: raw.id,
            schema_violation,
        }))
    }
}

impl Stream for PropertyObserver {
    type Item = Result<PropertyUpdate, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        while let Some(raw) = ready!(self.source.poll_next(cx)?) {
            if let Some(item) = self.decode(raw, SystemTime::now()) {
                return Poll::Ready(Some(item));
            }
        }
        Poll::Ready(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use serde_json::json;

    fn observer(every_read: bool) -> PropertyObserver {
        let t = crate::thing::test_thing(
            json!({"properties": {"temp": {"type": "number", "minimum": -40, "maximum": 125,
                                           "forms": [{"href": "http://h/temp"}]}}}),
        );
        let opts = ObserveOptions::new().every_read(every_read).history(3);
        PropertyObserver::new(
            &t,
            &["temp".to_owned()],
            true,
            futures::stream::empty().boxed(),
            Vec::new(),
            &opts,
        )
    }

    fn polled(v: &str) -> RawItem {
        RawItem {
            name: Some("temp".into()),
            data: v.into(),
            id: None,
            polled: true,
        }
    }

    #[test]
    fn polling_yields_only_changes_unless_every_read() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut o = observer(false);
        let got: Vec<_> = ["20", "20", "20.0", "21", "21"]
            .into_iter()
            .filter_map(|v| o.decode(polled(v), t0))
            .map(|u| u.unwrap().value)
            .collect();
        assert_eq!(got, [json!(20), json!(21)]);
        let mut o = observer(true);
        assert_eq!(
            ["20", "20"]
                .into_iter()
                .filter_map(|v| o.decode(polled(v), t0))
                .count(),
            2
        );
    }

    #[test]
    fn out_of_range_is_flagged_not_dropped_and_history_is_bounded() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut o = observer(false);
        let u = o.decode(polled("300"), t0).unwrap().unwrap();
        assert_eq!(u.value, json!(300));
        assert!(
            u.schema_violation
                .as_deref()
                .is_some_and(|m| m.contains("125")),
            "{u:?}"
        );
        assert!(
            o.decode(polled("21"), t0)
                .unwrap()
                .unwrap()
                .schema_violation
                .is_none()
        );
        for v in ["1", "2", "3"] {
            o.decode(polled(v), t0 + Duration::from_secs(5));
        }
        assert_eq!(o.history("temp").unwrap().len(), 3);
        assert_eq!(o.latest("temp").unwrap().1, json!(3));
        let e = o.decode(polled("{"), t0).unwrap().unwrap_err();
        assert!(e.to_string().contains("property `temp`"));
        // SSE items named after the property, or `message`, are the property.
        let sse = RawItem {
            name: Some("message".into()),
            data: "5".into(),
            id: None,
            polled: false,
        };
        assert_eq!(o.decode(sse, t0).unwrap().unwrap().property, "temp");
    }
}
