//! Choosing a form and turning it into a stream of raw items (SSE, long polling, polling),
//! plus the one-shot HTTP requests.
//!
//! Every transport here is a `Stream` that owns its connection: dropping it cancels the
//! request in flight, and no task is spawned.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use tokio::sync::watch;
use url::Url;
use wot_sse::{ReconnectPolicy, SseClient, redact_url};
use wot_td::{Affordance, Form, FormError, FormQuery, Operation};

use crate::error::{Error, Repr};
use crate::problem::ProblemDetails;
use crate::record::SharedStr;
use crate::resume::{Deduped, ResumeConfig, StreamKey};
use crate::security::{Auth, Credentials, authorize};
use crate::state::{ConnectionState, SseStateSync, StatePublisher};
use crate::thing::ConsumedThing;

/// One item before decoding: an SSE event or one HTTP response body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawItem {
    /// The SSE `event` field, or the affordance name the transport was opened for.
    pub(crate) name: Option<SharedStr>,
    /// The data as text (JSON expected).
    pub(crate) data: String,
    /// The SSE last event id (`None` when empty or not SSE).
    pub(crate) id: Option<SharedStr>,
    /// From a `readproperty` poll (change detection applies).
    pub(crate) polled: bool,
}

pub(crate) type RawStream = BoxStream<'static, Result<RawItem, Error>>;

/// The raw items behind a subscription or an observer, which its owner can close while a
/// combinator (such as `select_all`) holds the stream: closing drops the connection and wakes
/// the task that last polled, so that it polls again and sees the end.
pub(crate) struct Source {
    stream: Option<RawStream>,
    /// The waker of the last poll.
    waker: Option<Waker>,
}

impl Source {
    pub(crate) fn new(stream: RawStream) -> Self {
        Source {
            stream: Some(stream),
            waker: None,
        }
    }

    /// Drops the connection; the next poll ends the stream.
    pub(crate) fn close(&mut self) {
        self.stream = None;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Whether it was closed, or the stream ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.stream.is_none()
    }

    /// The next raw item; `None` once closed or ended (the stream is then dropped). While
    /// it waits, it keeps the waker for [`close`](Self::close).
    #[inline]
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<RawItem, Error>>> {
        let Some(stream) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        match stream.poll_next_unpin(cx) {
            Poll::Pending => {
                if self.waker.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
                    self.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Poll::Ready(None) => {
                self.stream = None;
                Poll::Ready(None)
            }
            item => item,
        }
    }
}

/// How a chosen form is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Sse,
    LongPoll,
}

/// A form chosen for an operation, with its resolved URL and credentials.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: Url,
    pub(crate) method: Method,
    pub(crate) auth: Auth,
    pub(crate) kind: Option<Kind>,
}

/// Whether a media type (lower case, without parameters) is JSON.
pub(crate) fn is_json(media: &str) -> bool {
    media == "application/json" || media.ends_with("+json")
}

fn method_of(form: &Form, op: Operation) -> Method {
    let given = form
        .extensions
        .get("htv:methodName")
        .and_then(Value::as_str)
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
    given.unwrap_or(match op {
        Operation::WriteProperty
        | Operation::WriteAllProperties
        | Operation::WriteMultipleProperties => Method::PUT,
        Operation::InvokeAction => Method::POST,
        _ => Method::GET,
    })
}

fn describe(a: Affordance<'_>) -> String {
    match a {
        Affordance::Property(n) => format!("property `{n}`"),
        Affordance::Action(n) => format!("action `{n}`"),
        Affordance::Event(n) => format!("event `{n}`"),
        Affordance::Thing => "the Thing".to_owned(),
    }
}

/// The URI schemes this crate's transports serve.
pub(crate) const SCHEMES: [&str; 2] = ["http", "https"];

/// Picks the best usable form: HTTP(S), JSON (or SSE), and for streaming operations a
/// subprotocol we speak, preferring SSE over long polling. Forms over any other scheme
/// (`file:`, `javascript:`, `data:`, `coap:`...) are never candidates, however their `href`
/// is written or resolved.
///
/// Returns `Ok(None)` when the affordance exists but offers no usable HTTP(S) form for `op`;
/// [`ErrorKind::NoUsableForm`](crate::ErrorKind::NoUsableForm) naming the schemes when its forms
/// for `op` are all over other schemes.
pub(crate) fn pick(
    thing: &ConsumedThing,
    affordance: Affordance<'_>,
    op: Operation,
    streaming: bool,
    creds: &Credentials,
) -> Result<Option<Target>, Error> {
    let mut query = FormQuery::new()
        .schemes(SCHEMES)
        .uri_scheme("http")
        .uri_scheme("https")
        .content_type("application/json");
    if streaming {
        query = query.subprotocol("sse").subprotocol("longpoll");
    }
    if let Some(src) = thing.source() {
        query = query.fetched_from(src.clone());
    }
    let candidates =
        thing
            .thing()
            .forms_for(affordance, op, &query)
            .map_err(|source| match source {
                FormError::UnservableScheme { found, .. } => Error::from(Repr::NoUsableForm {
                    thing: thing.id().to_owned(),
                    affordance: describe(affordance),
                    op: op.as_str().to_owned(),
                    reason: format!(
                        "its forms are only over {}; this client serves {}",
                        found
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        SCHEMES.join(" and ")
                    ),
                }),
                source => Error::from(Repr::Form {
                    thing: thing.id().to_owned(),
                    source,
                }),
            })?;
    let mut security_error = None;
    for c in candidates {
        let media = c.form.media_type();
        let kind = match (streaming, c.subprotocol) {
            (true, Some("sse")) if is_json(&media) || media == "text/event-stream" => {
                Some(Kind::Sse)
            }
            // An event form without subprotocol over HTTP: long polling is the only reading.
            (true, Some("longpoll") | None) if is_json(&media) => Some(Kind::LongPoll),
            (false, _) if is_json(&media) => None,
            _ => continue,
        };
        match authorize(thing.thing(), thing.id(), &c.security, creds) {
            Ok(auth) => {
                return Ok(Some(Target {
                    url: c.url.clone(),
                    method: method_of(c.form, op),
                    auth,
                    kind,
                }));
            }
            Err(e) => {
                security_error.get_or_insert(e);
            }
        }
    }
    match security_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// Like [`pick`], but a missing form is an error.
pub(crate) fn require(
    thing: &ConsumedThing,
    affordance: Affordance<'_>,
    op: Operation,
    streaming: bool,
    creds: &Credentials,
) -> Result<Target, Error> {
    pick(thing, affordance, op, streaming, creds)?.ok_or_else(|| {
        Error::from(Repr::NoUsableForm {
            thing: thing.id().to_owned(),
            affordance: describe(affordance),
            op: op.as_str().to_owned(),
            reason: if streaming {
                "need HTTP with subprotocol `sse` or `longpoll` and JSON data".to_owned()
            } else {
                "need HTTP with JSON".to_owned()
            },
        })
    })
}

/// Where an SSE stream resumes from and who tracks it: the subscriber's settings, the stream's
/// key, and the counter of repeats dropped.
pub(crate) type ResumeStart<'a> = (&'a ResumeConfig, StreamKey, Arc<AtomicU64>);

/// An SSE stream for a target. `name` labels events whose type is the default `message`.
///
/// `last_event_id`, when given, is sent on the first connection; else the stored point of
/// `resume`, if any. With `resume`, events whose id was seen are dropped and the store
/// advanced (see [`crate::resume`]); without, nothing is added to the path of an event.
pub(crate) fn sse_stream(
    sse: &SseClient,
    target: &Target,
    last_event_id: Option<&str>,
    resume: Option<ResumeStart<'_>>,
) -> Result<(RawStream, watch::Receiver<ConnectionState>), Error> {
    let (stored, tracker) = match resume {
        Some((config, key, dropped)) => {
            let (stored, tracker) = config.start(key, dropped);
            (stored, Some(tracker))
        }
        None => (None, None),
    };
    let mut req = sse
        .request(
            target.method.clone(),
            target.auth.apply(&target.url).as_str(),
        )
        .headers(target.auth.headers.clone());
    if let Some(id) = last_event_id.or(stored.as_deref()) {
        req = req.last_event_id(id);
    }
    let events = req.connect().map_err(Error::from_sse)?;
    let sse_state = events.state();
    let connection = events.state();
    let (publisher, state) = StatePublisher::new();
    // The id and type of one event are usually those of the one before: those are shared,
    // not copied per event.
    let mut last_id: Option<SharedStr> = None;
    let mut last_type: Option<SharedStr> = None;
    let raw = events.map(move |item| {
        item.map(|ev| RawItem {
            name: Some(reuse(&mut last_type, ev.event_type())),
            id: (!ev.id().is_empty()).then(|| reuse(&mut last_id, ev.id())),
            data: ev.into_data(),
            polled: false,
        })
        .map_err(Error::from_sse)
    });
    let synced = match tracker {
        Some(tracker) => SseStateSync {
            inner: Deduped {
                inner: raw,
                tracker,
                connection,
            },
            sse: sse_state,
            publisher,
        }
        .boxed(),
        None => SseStateSync {
            inner: raw,
            sse: sse_state,
            publisher,
        }
        .boxed(),
    };
    Ok((synced, state))
}

/// `text` as shared text: the one in `last` when equal, else a new one that becomes `last`.
fn reuse(last: &mut Option<SharedStr>, text: &str) -> SharedStr {
    match last {
        Some(shared) if shared.as_str() == text => shared.clone(),
        _ => {
            let shared = SharedStr::from(text);
            *last = Some(shared.clone());
            shared
        }
    }
}

/// Settings of the plain HTTP requests (TD fetch, one-shots, polling, long polling).
#[derive(Debug, Clone)]
pub(crate) struct HttpConfig {
    pub(crate) client: reqwest::Client,
    /// Largest TD or directory listing body.
    pub(crate) max_body: usize,
    /// Largest one-shot, polling or long-poll response body.
    pub(crate) max_response_body: usize,
    /// Most TDs taken from one directory listing.
    pub(crate) max_directory_entries: usize,
    /// Whole-request time limit of TD fetches, one-shots and polling reads.
    pub(crate) request_timeout: Duration,
    /// Whole-request time limit of one long-poll request.
    pub(crate) long_poll_timeout: Duration,
    /// Most redirects followed for one request.
    pub(crate) max_redirects: usize,
    /// Retry schedule of polling and long polling.
    pub(crate) reconnect: ReconnectPolicy,
}

/// The limits of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_body: usize,
    pub(crate) timeout: Duration,
    pub(crate) max_redirects: usize,
}

struct PollState {
    config: Arc<HttpConfig>,
    target: Target,
    name: SharedStr,
    state: StatePublisher,
    failures: u32,
    interval: Option<Duration>,
    /// The wait before the next request.
    wait: Option<Duration>,
    done: bool,
}

/// Long polling (each GET answers the next value) when `interval` is `None`, else polling
/// every `interval` (the first read at once).
///
/// Network errors, time-outs, 5xx, 408 and 429 are yielded and retried on the schedule of the
/// configured [`ReconnectPolicy`] (at least `interval` apart, and at least as long as a
/// `Retry-After` asks, up to the policy's cap); after the policy's number of failures in a row,
/// [`ErrorKind::GaveUp`](crate::ErrorKind::GaveUp) ends the stream. Other errors end it at once. A
/// long-poll request that times out without an answer is a quiet period, not a failure: the next
/// one is sent at once.
pub(crate) fn poll_stream(
    config: Arc<HttpConfig>,
    target: Target,
    name: SharedStr,
    interval: Option<Duration>,
) -> (RawStream, watch::Receiver<ConnectionState>) {
    let (publisher, rx) = StatePublisher::new();
    let st = PollState {
        config,
        target,
        name,
        state: publisher,
        failures: 0,
        interval,
        wait: None,
        done: false,
    };
    let s = stream::unfold(st, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if let Some(wait) = st.wait.take() {
                tokio::time::sleep(wait).await;
            }
            let limits = Limits {
                max_body: st.config.max_response_body,
                timeout: match st.interval {
                    Some(_) => st.config.request_timeout,
                    None => st.config.long_poll_timeout,
                },
                max_redirects: st.config.max_redirects,
            };
            match send(&st.config.client, &st.target, None, limits).await {
                Ok((_, body)) => {
                    st.failures = 0;
                    st.wait = st.interval;
                    st.state.set(ConnectionState::Open);
                    let item = RawItem {
                        name: Some(st.name.clone()),
                        data: String::from_utf8_lossy(&body).into_owned(),
                        id: None,
                        polled: st.interval.is_some(),
                    };
                    return Some((Ok(item), st));
                }
                Err(e) if e.is_timeout() && st.interval.is_none() => {
                    tracing::debug!(url = %redact_url(&st.target.url), "long poll timed out without an event; polling again");
                    continue;
                }
                Err(e) if e.is_terminal() => {
                    st.done = true;
                    st.state.fail(&e);
                    return Some((Err(e), st));
                }
                Err(e) => {
                    st.failures = st.failures.saturating_add(1);
                    if st
                        .config
                        .reconnect
                        .attempt_limit()
                        .is_some_and(|limit| st.failures >= limit)
                    {
                        st.done = true;
                        let e = Error::from(Repr::GaveUp {
                            url: redact_url(&st.target.url),
                            attempts: st.failures,
                            last: e,
                        });
                        st.state.fail(&e);
                        return Some((Err(e), st));
                    }
                    let delay = st
                        .config
                        .reconnect
                        .retry_delay(st.failures, e.retry_after())
                        .max(st.interval.unwrap_or_default());
                    st.wait = Some(delay);
                    st.state.set(ConnectionState::Reconnecting {
                        attempt: st.failures,
                        delay,
                    });
                    tracing::debug!(error = %e, ?delay, "request failed; retrying");
                    return Some((Err(e), st));
                }
            }
        }
    });
    (s.boxed(), rx)
}

/// Sends one request and reads the whole body, within `limits`: at most `max_body` bytes,
/// the whole exchange (redirects included) within `timeout`.
///
/// Redirects are followed here (the client must not follow them itself), at most
/// `max_redirects`. Credentials (the target's headers and query parameters) go only to the
/// origin of the target's URL: from the first hop to another origin on, they are left off.
pub(crate) async fn send(
    http: &reqwest::Client,
    target: &Target,
    body: Option<&Value>,
    limits: Limits,
) -> Result<(Option<String>, Vec<u8>), Error> {
    match tokio::time::timeout(limits.timeout, send_unbounded(http, target, body, limits)).await {
        Ok(result) => result,
        Err(_) => Err(Error::from(Repr::Timeout {
            url: redact_url(&target.url),
            after: limits.timeout,
        })),
    }
}

async fn send_unbounded(
    http: &reqwest::Client,
    target: &Target,
    body: Option<&Value>,
    limits: Limits,
) -> Result<(Option<String>, Vec<u8>), Error> {
    let origin = target.url.origin();
    let mut url = target.url.clone();
    let mut method = target.method.clone();
    let mut payload = body.map(|v| serde_json::to_vec(v).unwrap_or_default());
    let mut credentials = true;
    let mut redirects = 0usize;
    loop {
        let shown = redact_url(&url);
        let request_url = if credentials {
            target.auth.apply(&url)
        } else {
            url.clone()
        };
        let mut req = http
            .request(method.clone(), request_url)
            .header(header::ACCEPT, HeaderValue::from_static("application/json"));
        if credentials {
            req = req.headers(target.auth.headers.clone());
        }
        if let Some(bytes) = &payload {
            req = req
                .header(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )
                .body(bytes.clone());
        }
        let mut resp = req.send().await.map_err(|source| {
            Error::from(Repr::Unreachable {
                url: shown.clone(),
                source: source.without_url(),
            })
        })?;
        let status = resp.status();
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            let next = resp
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .filter(|l| !l.is_empty())
                .and_then(|l| url.join(l).ok())
                .filter(|n| matches!(n.scheme(), "http" | "https"))
                .ok_or_else(|| Error::from(Repr::BadRedirect { url: shown.clone() }))?;
            redirects += 1;
            if redirects > limits.max_redirects {
                return Err(Error::from(Repr::TooManyRedirects {
                    url: redact_url(&target.url),
                    limit: limits.max_redirects,
                }));
            }
            if credentials && next.origin() != origin {
                credentials = false;
                if !target.auth.is_empty() {
                    tracing::debug!(from = %shown, to = %redact_url(&next), "redirect to another origin: credentials left off");
                }
            }
            // As fetch does: 303, and 301/302 after POST, continue as GET without a body.
            if status == StatusCode::SEE_OTHER
                || (method == Method::POST && matches!(status.as_u16(), 301 | 302))
            {
                method = Method::GET;
                payload = None;
            }
            url = next;
            continue;
        }
        let content_type = header_str(resp.headers(), header::CONTENT_TYPE);
        let retry_after = matches!(status.as_u16(), 429 | 503)
            .then(|| {
                resp.headers()
                    .get(header::RETRY_AFTER)
                    .and_then(wot_sse::parse_retry_after)
            })
            .flatten();
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(limits.max_body).unwrap_or(u64::MAX))
        {
            return Err(Error::from(Repr::TooLarge {
                url: shown,
                limit: limits.max_body,
            }));
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|source| {
            Error::from(Repr::Interrupted {
                url: shown.clone(),
                source: source.without_url(),
            })
        })? {
            if buf.len().saturating_add(chunk.len()) > limits.max_body {
                return Err(Error::from(Repr::TooLarge {
                    url: shown,
                    limit: limits.max_body,
                }));
            }
            buf.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(Error::from(Repr::Status {
                url: shown,
                status,
                problem: ProblemDetails::parse(content_type.as_deref(), &buf).map(Box::new),
                retry_after,
            }));
        }
        if status == StatusCode::NO_CONTENT {
            buf.clear();
        }
        return Ok((content_type, buf));
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
