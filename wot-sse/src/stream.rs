//! The event stream: a poll-driven state machine around the parser.
//!
//! ```text
//!            ┌──────────────────────────── reconnect_now ───────────────────────────┐
//!            v                                                                      │
//!  Start ──> Connecting ──200──> Open ──body ends / breaks / idle──> Waiting ──timer─┘
//!               │  │ 204             (events, comments)                 ^
//!               │  └──────> Closed <── terminal error, too many failures │
//!               └── retryable failure, idle timeout ─────────────────────┘
//! ```
//!
//! Nothing runs in the background: the stream makes progress only when polled, so dropping it
//! drops the connection and leaves no task behind. Complete events in the parser are always
//! handed out before the next byte is read, so when a connection ends the parser holds at most
//! one unfinished block, which `end_of_body` discards: no partial event crosses a reconnect.

use std::future::Future;
use std::io::Write as _;
use std::mem;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use futures_util::task::AtomicWaker;
use http::header::HeaderValue;
use once_cell::race::OnceBox;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tracing::Instrument;

use crate::client::Spec;
use crate::connect::{Opened, open};
use crate::error::{Error, Kind};
use crate::event::Event;
use crate::parser::{Item, ParseError, Parser};

/// The connection state of a stream, for display; watch it with [`EventStream::state`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connecting (or reconnecting now): waiting for the response.
    Connecting,
    /// The response arrived and events are flowing.
    Open,
    /// The connection was lost; waiting `delay` before reconnect attempt `attempt`.
    ///
    /// `attempt` counts failed attempts in a row, from 1. A connection that delivered data,
    /// or that the server answered and that then went quiet past the idle timeout, starts the
    /// count again.
    Reconnecting {
        /// The number of the coming attempt.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
    },
    /// The stream has ended and will not reconnect.
    Closed {
        /// Why it ended.
        reason: CloseReason,
    },
}

/// Why a stream ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`close`](EventStream::close) was called or the stream was dropped.
    Requested,
    /// The server answered 204 No Content, which tells clients to stop.
    NoContent,
    /// A terminal error, also yielded as the stream's last item.
    Failed(Error),
}

impl PartialEq for CloseReason {
    /// Errors compare by their text.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Requested, Self::Requested) | (Self::NoContent, Self::NoContent) => true,
            (Self::Failed(a), Self::Failed(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

/// An event or a comment, from [`EventStream::messages`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A dispatched event.
    Event(Event),
    /// A comment line: the text after the `:` (a leading space is kept). Servers send them as
    /// heartbeats.
    Comment(String),
}

/// State shared with [`StreamHandle`]s, made when first needed (see `EventStream::shared`).
struct Shared {
    state: Mutex<StateSlot>,
    close: AtomicBool,
    reconnect: AtomicBool,
    waker: AtomicWaker,
}

/// The connection state, and the watch channel that publishes it once someone asks for it.
///
/// Most streams are never watched, so the channel (about 450 bytes of heap) is only made by
/// the first [`EventStream::state`] call, starting from the current state.
struct StateSlot {
    current: ConnectionState,
    sender: Option<watch::Sender<ConnectionState>>,
}

impl Shared {
    fn new(current: ConnectionState) -> Self {
        Self {
            state: Mutex::new(StateSlot {
                current,
                sender: None,
            }),
            close: AtomicBool::new(false),
            reconnect: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    fn slot(&self) -> MutexGuard<'_, StateSlot> {
        // The lock is never held across code that can panic; a poisoned slot is still valid.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn subscribe(&self) -> watch::Receiver<ConnectionState> {
        let mut slot = self.slot();
        if let Some(sender) = &slot.sender {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(slot.current.clone());
        slot.sender = Some(sender);
        receiver
    }

    fn set_state(&self, state: ConnectionState) {
        let mut slot = self.slot();
        if let Some(sender) = &slot.sender {
            sender.send_replace(state.clone());
        }
        slot.current = state;
    }

    fn request(&self, flag: &AtomicBool) {
        flag.store(true, Ordering::Release);
        self.waker.wake();
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<Opened, Error>> + Send>>;
type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Where the stream is; it also tells the [`ConnectionState`] (see `EventStream::state_now`).
enum Phase {
    Start,
    Connecting(ConnectFuture),
    Open {
        body: Body,
        got_data: bool,
        /// When the response arrived: a connection open long enough resets the backoff.
        since: Instant,
    },
    Waiting {
        attempt: u32,
        delay: Duration,
    },
    Closed(CloseReason),
}

/// A live SSE connection that reconnects by itself: a
/// `Stream<Item = Result<Event, Error>>`.
///
/// Made by [`RequestBuilder::connect`](crate::RequestBuilder::connect). It connects when first
/// polled. Recoverable errors are yielded and the stream goes on (reconnecting when the
/// connection was lost); after a terminal error, a 204 response or [`close`](Self::close) it
/// ends. Dropping it closes the connection; it spawns no tasks.
///
/// Use [`messages`](Self::messages) to receive comments too, [`state`](Self::state) to watch
/// the connection, and [`handle`](Self::handle) to control it from elsewhere.
#[must_use = "streams do nothing unless polled"]
pub struct EventStream {
    spec: Spec,
    /// Made by the first [`state`](Self::state), [`handle`](Self::handle), [`close`](Self::close)
    /// or [`reconnect_now`](Self::reconnect_now): most streams are only polled, and this saves
    /// each of them about 90 bytes of heap. (A `OnceBox` is one word; the extra box is made
    /// only with the shared state.)
    shared: OnceBox<Arc<Shared>>,
    /// The waker of the last `Pending` poll while `shared` did not exist, so that a handle made
    /// after it can still wake the waiting task.
    parked: Option<Waker>,
    parser: Parser,
    phase: Phase,
    /// The idle deadline while connecting or open; the backoff delay while waiting.
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes arrived (or an attempt started) since the idle timer was armed: it is re-armed
    /// when the stream next waits, rather than reset on every chunk.
    active: bool,
    /// Consecutive failed attempts (for giving up).
    failures: u32,
    /// Reconnects since the last stable connection (for the backoff delay).
    backoff_step: u16,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("method", self.spec.method())
            .field("url", &self.spec.url_for_logs())
            .field("state", &self.state_now())
            .field("last_event_id", &self.parser.last_event_id())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(spec: Spec, last_event_id: &str) -> Self {
        let settings = &spec.settings;
        let mut parser = Parser::with_max_event_size(settings.max_event_size)
            .with_max_id_len(settings.max_id_len)
            .with_max_event_type_len(settings.max_event_type_len)
            .with_max_comment_len(settings.max_comment_len);
        parser.set_last_event_id(last_event_id);
        Self {
            spec,
            shared: OnceBox::new(),
            parked: None,
            parser,
            phase: Phase::Start,
            timer: None,
            active: true,
            failures: 0,
            backoff_step: 0,
        }
    }

    /// The state shared with handles, made on first use from the current state.
    fn shared(&self) -> &Arc<Shared> {
        self.shared.get_or_init(|| {
            let shared = Shared::new(self.state_now());
            if let Some(waker) = &self.parked {
                shared.waker.register(waker);
            }
            Box::new(Arc::new(shared))
        })
    }

    /// The connection state, as the phase tells it.
    fn state_now(&self) -> ConnectionState {
        match &self.phase {
            Phase::Start | Phase::Connecting(_) => ConnectionState::Connecting,
            Phase::Open { .. } => ConnectionState::Open,
            &Phase::Waiting { attempt, delay } => ConnectionState::Reconnecting { attempt, delay },
            Phase::Closed(reason) => ConnectionState::Closed {
                reason: reason.clone(),
            },
        }
    }

    /// Tells handles and state watchers, if there are any, about a new phase.
    fn publish_state(&self) {
        if let Some(shared) = self.shared.get() {
            shared.set_state(self.state_now());
        }
    }

    /// The span for this stream's log records. It is made when there is something to log
    /// rather than kept: most streams log nothing for hours, and a `Span` is 40 bytes.
    fn span(&self) -> tracing::Span {
        tracing::info_span!("sse", method = %self.spec.method(), url = %self.spec.url_for_logs())
    }

    /// A receiver of the connection state, e.g. for a status line in a UI.
    ///
    /// It starts at [`ConnectionState::Connecting`] and ends at [`ConnectionState::Closed`].
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.shared().subscribe()
    }

    /// The last event id: what the next reconnect sends as `Last-Event-ID` (`""`: none).
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// Drops the current connection (or skips the current wait) and connects again now,
    /// resuming from the last event id. Not counted as a failure.
    pub fn reconnect_now(&self) {
        let shared = self.shared();
        shared.request(&shared.reconnect);
    }

    /// Closes the connection; the stream then ends. The state becomes
    /// `Closed { reason: Requested }`.
    ///
    /// From a [`StreamHandle`] this takes effect when the stream is next polled: a task waiting
    /// on it is woken at once. Dropping the stream closes the connection in any case.
    pub fn close(&self) {
        let shared = self.shared();
        shared.request(&shared.close);
    }

    /// A cloneable handle to watch and control this stream from another task.
    pub fn handle(&self) -> StreamHandle {
        StreamHandle {
            shared: self.shared().clone(),
        }
    }

    /// A view of this stream that also yields comments.
    ///
    /// ```no_run
    /// use futures::StreamExt;
    /// use wot_sse::{Message, SseClient};
    ///
    /// # async fn run() -> Result<(), wot_sse::Error> {
    /// let mut stream = SseClient::new().get("http://127.0.0.1:8080/events").connect()?;
    /// while let Some(item) = stream.messages().next().await {
    ///     match item? {
    ///         Message::Event(event) => println!("event {}", event.data()),
    ///         Message::Comment(text) => println!("comment {text}"),
    ///         _ => {} // `Message` is non-exhaustive
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn messages(&mut self) -> Messages<'_> {
        Messages { stream: self }
    }

    /// The core of both `Stream` impls.
    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        loop {
            if matches!(self.phase, Phase::Closed(_)) {
                return Poll::Ready(None);
            }
            let shared = self.shared.get();
            if shared.is_some_and(|shared| shared.close.load(Ordering::Acquire)) {
                self.finish(CloseReason::Requested);
                return Poll::Ready(None);
            }
            // A plain load first: this runs once per event, the swap only on a request.
            if shared.is_some_and(|shared| {
                shared.reconnect.load(Ordering::Acquire)
                    && shared.reconnect.swap(false, Ordering::AcqRel)
            }) {
                self.span()
                    .in_scope(|| tracing::info!("reconnecting now, as requested"));
                if matches!(self.phase, Phase::Open { .. }) {
                    self.parser.end_of_body();
                }
                self.phase = Phase::Start;
            }
            if let Some(item) = self.parser.next_item() {
                match item {
                    Ok(Item::Event(event)) => return Poll::Ready(Some(Ok(Message::Event(event)))),
                    Ok(Item::Comment(text)) => {
                        return Poll::Ready(Some(Ok(Message::Comment(text))));
                    }
                    // The parser keeps the value; the next reconnect delay reads it.
                    Ok(Item::Retry(_)) => continue,
                    Err(error) => return Poll::Ready(Some(Err(self.parse_error(error)))),
                }
            }
            match &mut self.phase {
                Phase::Closed(_) => return Poll::Ready(None),
                Phase::Start => self.start_connecting(),
                Phase::Connecting(connecting) => match connecting.as_mut().poll(cx) {
                    Poll::Ready(Ok(Opened::Stream(response))) => {
                        self.span().in_scope(
                            || tracing::info!(status = %response.status(), "stream open"),
                        );
                        self.phase = Phase::Open {
                            body: Box::pin(response.bytes_stream()),
                            got_data: false,
                            since: Instant::now(),
                        };
                        self.active = true;
                        self.publish_state();
                    }
                    Poll::Ready(Ok(Opened::NoContent)) => {
                        self.span()
                            .in_scope(|| tracing::info!("204 No Content: stream ends"));
                        self.finish(CloseReason::NoContent);
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Err(error)) => return Poll::Ready(self.fail(Some(error)).map(Err)),
                    Poll::Pending => {
                        if let Some(limit) = self.idle_expired(cx, self.response_limit()) {
                            let error = Error::new(
                                Kind::ResponseTimeout(limit),
                                Some(self.spec.url_for_logs()),
                            );
                            return Poll::Ready(self.fail(Some(error)).map(Err));
                        }
                        if self.park(cx) {
                            continue;
                        }
                        return Poll::Pending;
                    }
                },
                Phase::Open {
                    body,
                    got_data,
                    since,
                } => match body.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Ok(chunk))) => {
                        *got_data = true;
                        self.failures = 0;
                        self.active = true;
                        self.parser.feed(&chunk);
                    }
                    Poll::Ready(Some(Err(source))) => {
                        let since = *since;
                        self.connection_ended(since);
                        let url = Some(self.spec.url_for_logs());
                        let error = Error::with_source(Kind::Body, url, source.without_url());
                        return Poll::Ready(self.fail(Some(error)).map(Err));
                    }
                    Poll::Ready(None) => {
                        let (delivered, since) = (*got_data, *since);
                        self.connection_ended(since);
                        self.span()
                            .in_scope(|| tracing::info!("server ended the stream"));
                        if delivered {
                            self.schedule_reconnect(None);
                        } else if let Some(gave_up) = self.fail(None) {
                            // Only giving up is worth reporting for a quiet end.
                            return Poll::Ready(Some(Err(gave_up)));
                        }
                    }
                    Poll::Pending => {
                        let since = *since;
                        if let Some(limit) = self.idle_expired(cx, self.spec.settings.idle_timeout)
                        {
                            self.connection_ended(since);
                            // The server answered and then went quiet: that is not a failed
                            // attempt, or a quiet Thing without heartbeats would use them up.
                            self.failures = 0;
                            let error = self.idle_error(limit);
                            return Poll::Ready(self.fail(Some(error)).map(Err));
                        }
                        if self.park(cx) {
                            continue;
                        }
                        // The server may stay quiet for hours: hold no buffer meanwhile.
                        self.parser.free_idle_buffers();
                        return Poll::Pending;
                    }
                },
                Phase::Waiting { .. } => {
                    let waited = match &mut self.timer {
                        Some(timer) => timer.as_mut().poll(cx).is_ready(),
                        None => true,
                    };
                    if !waited {
                        if self.park(cx) {
                            continue;
                        }
                        return Poll::Pending;
                    }
                    self.phase = Phase::Start;
                }
            }
        }
    }

    /// Registers for control requests before the stream yields `Pending`; `true` if one
    /// arrived in the meantime, so the caller handles it instead of sleeping.
    fn park(&mut self, cx: &Context<'_>) -> bool {
        let Some(shared) = self.shared.get() else {
            // No handle yet; `shared()` registers this waker when one is made.
            match &mut self.parked {
                Some(parked) => parked.clone_from(cx.waker()),
                None => self.parked = Some(cx.waker().clone()),
            }
            return false;
        };
        shared.waker.register(cx.waker());
        shared.close.load(Ordering::Acquire) || shared.reconnect.load(Ordering::Acquire)
    }

    /// A connection that opened at `since` has ended: the unfinished block is discarded, and
    /// a connection that stayed open long enough resets the backoff.
    fn connection_ended(&mut self, since: Instant) {
        self.parser.end_of_body();
        if since.elapsed() >= self.spec.settings.reconnect.stable_after {
            self.backoff_step = 0;
        }
    }

    fn start_connecting(&mut self) {
        let id = self.parser.last_event_id();
        let last_event_id = if id.is_empty() {
            None
        } else {
            let (value, encoded) = last_event_id_header(id);
            if encoded {
                self.span().in_scope(|| {
                    tracing::debug!(
                        "last event id has bytes not allowed in a header; sent percent-encoded"
                    );
                });
            }
            Some(value)
        };
        self.span().in_scope(|| {
            tracing::debug!(last_event_id = id, failures = self.failures, "connecting");
        });
        let future = open(self.spec.clone(), last_event_id).instrument(self.span());
        self.phase = Phase::Connecting(Box::pin(future));
        self.active = true;
        self.publish_state();
    }

    /// The error to yield for a part of the stream the parser skipped.
    #[cold]
    fn parse_error(&self, error: ParseError) -> Error {
        let kind = match error {
            ParseError::EventTooLarge { limit } => Kind::EventTooLarge(limit),
            other => Kind::FieldTooLong(other),
        };
        let error = Error::new(kind, Some(self.spec.url_for_logs()));
        self.span()
            .in_scope(|| tracing::warn!(%error, "part of the stream skipped"));
        error
    }

    fn idle_error(&self, limit: Duration) -> Error {
        Error::new(Kind::IdleTimeout(limit), Some(self.spec.url_for_logs()))
    }

    /// How long an attempt may take up to the response head: the shorter of the connect
    /// timeout and the idle timeout.
    fn response_limit(&self) -> Option<Duration> {
        let settings = &self.spec.settings;
        match (settings.connect_timeout, settings.idle_timeout) {
            (Some(connect), Some(idle)) => Some(connect.min(idle)),
            (connect, idle) => connect.or(idle),
        }
    }

    /// `limit`, if the stream has waited that long without a byte (or, while connecting,
    /// without the response); otherwise arms the timer to wake us and returns `None`. Called
    /// whenever the stream is about to wait for the server.
    fn idle_expired(&mut self, cx: &mut Context<'_>, limit: Option<Duration>) -> Option<Duration> {
        let idle = limit?;
        if mem::take(&mut self.active) || self.timer.is_none() {
            self.arm_timer(deadline_after(idle));
        }
        let timer = self.timer.as_mut()?;
        timer.as_mut().poll(cx).is_ready().then_some(idle)
    }

    fn arm_timer(&mut self, deadline: Instant) {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
    }

    /// A failed attempt or a lost connection: reconnects later or gives up, and returns the
    /// error to yield.
    ///
    /// `None` is a body that ended before any byte arrived: a failed attempt, but not an
    /// error worth reporting unless it is the last straw.
    fn fail(&mut self, error: Option<Error>) -> Option<Error> {
        if let Some(error) = error.as_ref().filter(|error| error.is_terminal()) {
            self.span()
                .in_scope(|| tracing::warn!(%error, "stream failed"));
            self.finish(CloseReason::Failed(error.clone()));
            return Some(error.clone());
        }
        self.failures = self.failures.saturating_add(1);
        if self
            .spec
            .settings
            .reconnect
            .max_attempts
            .is_some_and(|max| self.failures >= max)
        {
            let error = Error::new(
                Kind::RetriesExhausted {
                    attempts: self.failures,
                    last: error,
                },
                Some(self.spec.url_for_logs()),
            );
            self.span().in_scope(|| tracing::warn!(%error, "giving up"));
            self.finish(CloseReason::Failed(error.clone()));
            return Some(error);
        }
        if let Some(error) = &error {
            self.span()
                .in_scope(|| tracing::warn!(%error, "connection failed"));
        }
        self.schedule_reconnect(error.as_ref().and_then(Error::retry_after));
        error
    }

    fn schedule_reconnect(&mut self, retry_after: Option<Duration>) {
        let attempt = self.failures.max(1);
        self.backoff_step = self.backoff_step.saturating_add(1);
        let step = self.backoff_step;
        let delay =
            self.spec
                .settings
                .reconnect
                .delay(self.parser.retry(), u32::from(step), retry_after);
        self.span().in_scope(|| {
            tracing::info!(attempt, step, delay_ms = delay.as_millis(), "reconnecting");
        });
        self.phase = Phase::Waiting { attempt, delay };
        self.arm_timer(deadline_after(delay));
        self.publish_state();
    }

    fn finish(&mut self, reason: CloseReason) {
        self.phase = Phase::Closed(reason);
        self.timer = None;
        self.publish_state();
    }
}

/// `now + delay`, or a deadline about 30 years ahead if that is not representable: no
/// duration, from a setting or a server, can make the addition panic.
fn deadline_after(delay: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(30 * 365 * 24 * 60 * 60);
    let now = Instant::now();
    now.checked_add(delay.min(FAR))
        .or_else(|| now.checked_add(Duration::from_secs(24 * 60 * 60)))
        .unwrap_or(now)
}

/// The `Last-Event-ID` header value for a non-empty `id`, and whether it had to be encoded.
///
/// An id that is a valid header value is sent as it is. An id with a byte that a header value
/// cannot hold (a control character other than tab: U+0001 to U+0008, U+000B to U+001F,
/// U+007F; ids never hold CR, LF or NUL) is sent percent-encoded: each such byte and each `%`
/// becomes `%XX` (upper-case hex). The encoding is a fallback, not a lossless one: a valid id
/// that happens to read `%01` is sent as it is, so a server cannot always tell the two apart;
/// one that decodes `%XX` finds the id it sent whenever its ids hold no `%`. The id is never
/// silently left out, so a replaying server sees where the client stands.
pub(crate) fn last_event_id_header(id: &str) -> (HeaderValue, bool) {
    if let Ok(value) = HeaderValue::from_bytes(id.as_bytes()) {
        return (value, false);
    }
    let mut encoded = Vec::with_capacity(id.len() + 8);
    for &byte in id.as_bytes() {
        if byte == b'%' || (byte < 0x20 && byte != b'\t') || byte == 0x7F {
            // Writing to a `Vec` cannot fail.
            let _ = write!(encoded, "%{byte:02X}");
        } else {
            encoded.push(byte);
        }
    }
    // Only visible ASCII, tab, space and bytes >= 0x80 are left: always a valid value.
    let value = HeaderValue::from_bytes(&encoded).unwrap_or(HeaderValue::from_static(""));
    (value, true)
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if !matches!(self.phase, Phase::Closed(_)) {
            self.finish(CloseReason::Requested);
        }
    }
}

impl Stream for EventStream {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match self.poll_message(cx) {
                Poll::Ready(Some(Ok(Message::Comment(_)))) => continue,
                Poll::Ready(Some(Ok(Message::Event(event)))) => Poll::Ready(Some(Ok(event))),
                Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}

/// A view of an [`EventStream`] that yields comments as well as events, from
/// [`EventStream::messages`]. It shares the stream's connection and state.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Messages<'a> {
    stream: &'a mut EventStream,
}

impl Stream for Messages<'_> {
    type Item = Result<Message, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.poll_message(cx)
    }
}

/// A cloneable handle to watch and control an [`EventStream`] from another task.
///
/// When the stream has been dropped, the controls do nothing and the state stays `Closed`.
#[derive(Clone)]
pub struct StreamHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHandle")
            .field("state", &self.shared.slot().current)
            .finish()
    }
}

impl StreamHandle {
    /// See [`EventStream::state`].
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.subscribe()
    }

    /// See [`EventStream::reconnect_now`].
    pub fn reconnect_now(&self) {
        self.shared.request(&self.shared.reconnect);
    }

    /// See [`EventStream::close`].
    pub fn close(&self) {
        self.shared.request(&self.shared.close);
    }
}

#[cfg(test)]
mod id_header_tests {
    use super::last_event_id_header;

    #[test]
    fn valid_ids_go_as_they_are_and_others_percent_encoded() {
        for id in ["7", "a b\tc", "50%", "\u{FFFD}7", "ünïcode"] {
            let (value, encoded) = last_event_id_header(id);
            assert_eq!(
                (value.as_bytes(), encoded),
                (id.as_bytes(), false),
                "{id:?}"
            );
        }
        for (id, sent) in [
            ("a\u{7F}1", "a%7F1"),
            ("50%\u{1}", "50%25%01"),
            ("\u{1B}[31m", "%1B[31m"),
            ("\u{1F}x\u{7F}", "%1Fx%7F"),
        ] {
            let (value, encoded) = last_event_id_header(id);
            assert_eq!(
                (value.as_bytes(), encoded),
                (sent.as_bytes(), true),
                "{id:?}"
            );
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// Callers hold one per open stream, idle or not: keep it small (see docs/benchmarks.md).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_event_stream_stays_small() {
        let size = std::mem::size_of::<super::EventStream>();
        assert!(size <= 280, "EventStream grew to {size} bytes");
    }
}
