//! Publishing records to the JetStream stream.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};

use crate::connect::DEFAULT_TIMEOUT;
use crate::error::{Error, Repr};
use crate::msgid::message_id;
use crate::record::Record;
use crate::subject::Subjects;

/// The default name of the stream that holds the records: `WOT`.
pub const DEFAULT_STREAM: &str = "WOT";

/// The default duplicate window of the stream: 2 minutes. A record published again with the
/// same message id within it is stored once.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The default number of records sent and not yet acknowledged, per publisher: 256. Past it,
/// [`Publisher::send`] waits.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

/// The default age past which the stream drops records, when it creates the stream: 24 h.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The default size past which the stream drops its oldest records, when it creates the
/// stream: 1 GiB.
pub const DEFAULT_MAX_BYTES: i64 = 1 << 30;

/// The number of streams whose last event id [`Publisher`] remembers to number the records
/// that share one id: 100,000. Past it, the memory is cleared (one warning).
const MAX_RUN_STREAMS: usize = 100_000;

/// Settings of a [`Publisher`]. Every setting states its default.
#[derive(Debug, Clone)]
#[must_use]
pub struct PublisherBuilder {
    subjects: Subjects,
    stream: String,
    duplicate_window: Duration,
    max_in_flight: usize,
    timeout: Duration,
    max_age: Duration,
    max_bytes: i64,
}

impl Default for PublisherBuilder {
    fn default() -> Self {
        PublisherBuilder {
            subjects: Subjects::default(),
            stream: DEFAULT_STREAM.to_owned(),
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            timeout: DEFAULT_TIMEOUT,
            max_age: DEFAULT_MAX_AGE,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl PublisherBuilder {
    /// The subjects (prefix and partition count). Default: [`Subjects::default`].
    pub fn subjects(mut self, subjects: Subjects) -> Self {
        self.subjects = subjects;
        self
    }

    /// The stream's name. Default: [`DEFAULT_STREAM`].
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// The stream's duplicate window (see [`Publisher::ensure_stream`]). Default:
    /// [`DEFAULT_DUPLICATE_WINDOW`]. It bounds how long after a record a replay of it is
    /// still recognised: keep it above the longest failover.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Records sent and not acknowledged at most. Default: [`DEFAULT_MAX_IN_FLIGHT`].
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// The limit on each JetStream request and acknowledgement. Default:
    /// [`DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The age past which a stream created by [`Publisher::ensure_stream`] drops records.
    /// Default: [`DEFAULT_MAX_AGE`].
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// The size past which a stream created by [`Publisher::ensure_stream`] drops its
    /// oldest records. Default: [`DEFAULT_MAX_BYTES`].
    pub fn max_bytes(mut self, bytes: i64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// A publisher on the connection `client`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for a stream name that is empty or
    /// holds `.`, `*`, `>` or whitespace, a zero window, in-flight count or timeout, a
    /// `max_age` shorter than the window, or a `max_bytes` below 1.
    pub fn build(self, client: async_nats::Client) -> Result<Publisher, Error> {
        let name_ok = !self.stream.is_empty()
            && self.stream.len() <= 64
            && self
                .stream
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>'));
        if !name_ok {
            return Err(Error::config(format!(
                "stream name {:?} must be 1 to 64 printable ASCII characters without `.`, `*` or `>`",
                self.stream.chars().take(64).collect::<String>()
            )));
        }
        if self.duplicate_window.is_zero() || self.max_in_flight == 0 || self.timeout.is_zero() {
            return Err(Error::config(
                "the duplicate window, the in-flight count and the timeout must not be zero",
            ));
        }
        if self.max_age < self.duplicate_window || self.max_bytes < 1 {
            return Err(Error::config(
                "the stream's max age must be at least its duplicate window, and max bytes at least 1",
            ));
        }
        let js = jetstream::ContextBuilder::new()
            .timeout(self.timeout)
            .max_ack_inflight(self.max_in_flight)
            .backpressure_on_inflight(true)
            .build(client);
        Ok(Publisher {
            js,
            settings: self,
            runs: Mutex::new(HashMap::new()),
        })
    }
}

/// Publishes [`Record`]s to a JetStream stream, each on its [subject](crate::Subjects), as
/// JSON of the [record schema](Record#json-schema-version-1), with a
/// [message id](crate::message_id) when it has an SSE event id.
///
/// [`send`](Self::send) returns once the record is on its way, with a [`PendingAck`];
/// [`publish`](Self::publish) also waits for the acknowledgement. At most
/// [`max_in_flight`](PublisherBuilder::max_in_flight) records are unacknowledged at a time:
/// past that, `send` waits for an acknowledgement (or for a `PendingAck` to be dropped), so
/// a slow server slows the collector instead of filling its memory. Records sent one after
/// the other from one task are stored in that order.
///
/// Records without an SSE event id (values from polling and long polling, connection
/// changes) get no message id: a replay of them cannot be recognised.
///
/// # Examples
///
/// ```no_run
/// # async fn run(record: wot_nats::Record) -> Result<(), wot_nats::Error> {
/// use wot_nats::Publisher;
///
/// let client = wot_nats::connect("nats://127.0.0.1:4222", wot_nats::DEFAULT_TIMEOUT).await?;
/// let publisher = Publisher::builder().build(client)?;
/// publisher.ensure_stream().await?;
/// let ack = publisher.publish(&record).await?;
/// println!("stored as #{} (duplicate: {})", ack.sequence, ack.duplicate);
/// # Ok(())
/// # }
/// ```
pub struct Publisher {
    js: jetstream::Context,
    settings: PublisherBuilder,
    /// Per (Thing, stream): the last event id published and how many records in a row
    /// carried it before the last one.
    runs: Mutex<HashMap<(String, String), LastRecord>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The last record prepared for one stream of one Thing.
#[derive(Debug)]
struct LastRecord {
    event_id: String,
    /// How many records before it carried the same event id in a row.
    run: u32,
    /// FNV-1a of its JSON: a record equal to it is the same record sent again.
    payload_hash: u64,
}

/// A record made into a message by [`Publisher::prepare`]: subject, JSON, message id.
#[derive(Debug, Clone)]
pub struct Outgoing {
    subject: String,
    payload: bytes::Bytes,
    message_id: Option<String>,
}

impl Outgoing {
    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The record as JSON.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The `Nats-Msg-Id`, for records with an SSE event id.
    pub fn message_id(&self) -> Option<&str> {
        self.message_id.as_deref()
    }
}

/// What JetStream answered for a stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The record's sequence number in the stream (for a duplicate, that of the copy stored
    /// first).
    pub sequence: u64,
    /// Whether the stream had stored a record with this message id within its duplicate
    /// window, and dropped this one.
    pub duplicate: bool,
}

/// The acknowledgement of a record [sent](Publisher::send): await it for the [`Ack`].
///
/// Dropping it without awaiting is allowed: the acknowledgement is then awaited in the
/// background, and its place among the in-flight records freed when it comes or times out.
#[derive(Debug)]
#[must_use = "a pending acknowledgement does nothing unless awaited (dropping it is allowed)"]
pub struct PendingAck {
    inner: async_nats::jetstream::context::PublishAckFuture,
    subject: String,
    timeout: Duration,
}

impl PendingAck {
    /// The subject of the record.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

impl IntoFuture for PendingAck {
    type Output = Result<Ack, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Ack, Error>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let PendingAck {
                inner,
                subject,
                timeout,
            } = self;
            match inner.await {
                Ok(ack) => Ok(Ack {
                    sequence: ack.sequence,
                    duplicate: ack.duplicate,
                }),
                Err(e) => Err(publish_error(subject, timeout, e)),
            }
        })
    }
}

fn publish_error(
    subject: String,
    timeout: Duration,
    e: async_nats::jetstream::context::PublishError,
) -> Error {
    match e.kind() {
        PublishErrorKind::TimedOut => Error::new(Repr::Timeout {
            what: format!("publishing to {subject}"),
            after: timeout,
        }),
        PublishErrorKind::StreamNotFound => Error::with_source(
            Repr::Publish {
                subject,
                reason: "no stream takes this subject (call ensure_stream first)".into(),
            },
            e,
        ),
        kind => Error::with_source(
            Repr::Publish {
                subject,
                reason: kind.to_string(),
            },
            e,
        ),
    }
}

impl Publisher {
    /// Settings to build a publisher with, all at their defaults.
    pub fn builder() -> PublisherBuilder {
        PublisherBuilder::default()
    }

    /// The subjects records are published on.
    pub fn subjects(&self) -> &Subjects {
        &self.settings.subjects
    }

    /// The JetStream context (its in-flight limit and timeout are this publisher's).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Creates the stream (file storage, limits retention, subjects `<prefix>.>`, the
    /// duplicate window, `max_age` and `max_bytes` of the settings), or checks the one there.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Stream`](crate::ErrorKind::Stream) when the stream exists with other
    /// subjects or another duplicate window (change it with the `nats` tool, or use another
    /// stream name), or cannot be created (JetStream disabled, no space);
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) without an answer in time.
    pub async fn ensure_stream(&self) -> Result<(), Error> {
        let name = &self.settings.stream;
        let wanted = self.settings.subjects.all();
        let existing = match self.js.get_stream(name).await {
            Ok(stream) => Some(stream.cached_info().config.clone()),
            Err(e) => match e.kind() {
                async_nats::jetstream::context::GetStreamErrorKind::JetStream(js)
                    if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    None
                }
                _ => return Err(self.request_error("reading the stream", e)),
            },
        };
        let config = match existing {
            Some(config) => config,
            None => {
                let create = stream::Config {
                    name: name.clone(),
                    subjects: vec![wanted.clone()],
                    duplicate_window: self.settings.duplicate_window,
                    max_age: self.settings.max_age,
                    max_bytes: self.settings.max_bytes,
                    storage: stream::StorageType::File,
                    retention: stream::RetentionPolicy::Limits,
                    discard: stream::DiscardPolicy::Old,
                    ..Default::default()
                };
                match self.js.create_stream(create).await {
                    Ok(stream) => {
                        tracing::info!(stream = %name, subjects = %wanted, "created the stream");
                        stream.cached_info().config.clone()
                    }
                    // Another publisher may have created it at the same time: read it back.
                    Err(create_error) => match self.js.get_stream(name).await {
                        Ok(stream) => stream.cached_info().config.clone(),
                        Err(_) => {
                            return Err(self.request_error("creating the stream", create_error));
                        }
                    },
                }
            }
        };
        if !config.subjects.contains(&wanted) {
            return Err(Error::stream(
                name,
                format!(
                    "takes subjects {:?}, not {wanted:?}",
                    config.subjects.iter().take(8).collect::<Vec<_>>()
                ),
                None,
            ));
        }
        if config.duplicate_window != self.settings.duplicate_window {
            return Err(Error::stream(
                name,
                format!(
                    "has a duplicate window of {:?}, not {:?}",
                    config.duplicate_window, self.settings.duplicate_window
                ),
                None,
            ));
        }
        Ok(())
    }

    fn request_error(
        &self,
        what: &str,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        let text = e.to_string();
        if text.contains("timed out") {
            return Error::new(Repr::Timeout {
                what: format!("{what} {}", self.settings.stream),
                after: self.settings.timeout,
            });
        }
        Error::stream(&self.settings.stream, what, Some(Box::new(e)))
    }

    /// Publishes `record` and waits for JetStream's acknowledgement: [`send`](Self::send)
    /// and await its [`PendingAck`].
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), and for the acknowledgement:
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) without one in time (the record may
    /// or may not be stored: publishing it again is safe when it has a message id),
    /// [`ErrorKind::Publish`](crate::ErrorKind::Publish) when JetStream refused it or no
    /// stream takes its subject.
    pub async fn publish(&self, record: &Record) -> Result<Ack, Error> {
        self.send(record).await?.await
    }

    /// Sends `record`, waiting first while [`max_in_flight`](PublisherBuilder::max_in_flight)
    /// records are unacknowledged; the returned [`PendingAck`] resolves to the
    /// acknowledgement.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLong`](crate::ErrorKind::TooLong) for a Thing id or name over its
    /// limit, or a record larger than the server's largest message;
    /// [`ErrorKind::Encode`](crate::ErrorKind::Encode) for a time the schema cannot hold;
    /// [`ErrorKind::Publish`](crate::ErrorKind::Publish) or
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the message could not be handed
    /// to the connection.
    pub async fn send(&self, record: &Record) -> Result<PendingAck, Error> {
        let outgoing = self.prepare(record)?;
        self.send_prepared(&outgoing).await
    }

    /// The message of `record`: its subject, JSON and message id. Sending the same
    /// [`Outgoing`] again ([`send_prepared`](Self::send_prepared), after a failed
    /// acknowledgement) sends the same message id, which the stream stores once.
    ///
    /// The message id of a record depends on the records of its stream prepared just before:
    /// records in a row with one event id and different JSON are numbered. Prepare records
    /// in the order received; preparing the last one again gives it the same id (so
    /// [`publish`](Self::publish) again after a failure is safe), but to send several again,
    /// keep their `Outgoing`s.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), without the ones of sending.
    pub fn prepare(&self, record: &Record) -> Result<Outgoing, Error> {
        let subject = record.subject(&self.settings.subjects)?;
        let payload = record.to_json()?;
        let max = self.js.client().server_info().max_payload;
        // Room for the headers.
        let limit = max.saturating_sub(512);
        if payload.len() > limit {
            return Err(Error::too_long("record", payload.len(), limit));
        }
        let message_id = record.event_id().map(|event_id| {
            let stream = record.stream();
            let run = self.run_of(record.thing_id(), &stream, event_id, &payload);
            message_id(record.thing_id(), &stream, event_id, run)
        });
        Ok(Outgoing {
            subject,
            payload: payload.into(),
            message_id,
        })
    }

    /// Sends a message made by [`prepare`](Self::prepare), as [`send`](Self::send) does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Publish`](crate::ErrorKind::Publish) or
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when the message could not be handed
    /// to the connection.
    pub async fn send_prepared(&self, outgoing: &Outgoing) -> Result<PendingAck, Error> {
        let mut message = PublishMessage::build().payload(outgoing.payload.clone());
        if let Some(id) = &outgoing.message_id {
            message = message.message_id(id);
        }
        let subject = outgoing.subject.clone();
        match self.js.send_publish(subject.clone(), message).await {
            Ok(inner) => Ok(PendingAck {
                inner,
                subject,
                timeout: self.settings.timeout,
            }),
            Err(e) => Err(publish_error(subject, self.settings.timeout, e)),
        }
    }

    /// How many records of `stream` of `thing_id` carried `event_id` in a row before this
    /// one. A record equal to the last one (same id, same JSON: it is sent again) gets the
    /// last one's number.
    fn run_of(&self, thing_id: &str, stream: &str, event_id: &str, payload: &[u8]) -> u32 {
        let hash = crate::subject::fnv1a(payload);
        let mut runs = self.runs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = runs.get_mut(&(thing_id.to_owned(), stream.to_owned())) {
            if last.event_id == event_id {
                if last.payload_hash != hash {
                    last.run = last.run.saturating_add(1);
                    last.payload_hash = hash;
                }
                return last.run;
            }
            event_id.clone_into(&mut last.event_id);
            last.run = 0;
            last.payload_hash = hash;
            return 0;
        }
        if runs.len() >= MAX_RUN_STREAMS {
            tracing::warn!(
                limit = MAX_RUN_STREAMS,
                "the publisher's memory of last event ids is full: cleared"
            );
            runs.clear();
        }
        runs.insert(
            (thing_id.to_owned(), stream.to_owned()),
            LastRecord {
                event_id: event_id.to_owned(),
                run: 0,
                payload_hash: hash,
            },
        );
        0
    }
}
