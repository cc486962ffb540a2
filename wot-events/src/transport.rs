//! Choosing a form and turning it into a stream of raw items (SSE, long polling, polling),
//! plus the one-shot HTTP requests.
//!
//! Every transport here is a `Stream` that owns its connection: dropping it cancels the
//! request in flight, and no task is spawned.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;
use tokio::sync::watch;
use url::Url;
use wot_sse::{CloseReason, ConnectionState, SseClient};
use wot_td::{Affordance, Form, FormQuery, Operation};

use crate::error::{Error, display_url};
use crate::problem::ProblemDetails;
use crate::security::{Auth, Credentials, authorize};
use crate::thing::ConsumedThing;

/// One item before decoding: an SSE event or one HTTP response body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawItem {
    /// The SSE `event` field, or the affordance name the transport was opened for.
    pub(crate) name: Option<String>,
    /// The data as text (JSON expected).
    pub(crate) data: String,
    /// The SSE last event id (`None` when empty or not SSE).
    pub(crate) id: Option<String>,
    /// From a `readproperty` poll (change detection applies).
    pub(crate) polled: bool,
}

pub(crate) type RawStream = BoxStream<'static, Result<RawItem, Error>>;

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

fn is_json(media: &str) -> bool {
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

/// Picks the best usable form: HTTP(S), JSON (or SSE), and for streaming operations a
/// subprotocol we speak, preferring SSE over long polling.
///
/// Returns `Ok(None)` when the affordance exists but offers no usable form for `op`.
pub(crate) fn pick(
    thing: &ConsumedThing,
    affordance: Affordance<'_>,
    op: Operation,
    streaming: bool,
    creds: &Credentials,
) -> Result<Option<Target>, Error> {
    let mut query = FormQuery::new()
        .uri_scheme("http")
        .uri_scheme("https")
        .content_type("application/json");
    if streaming {
        query = query.subprotocol("sse").subprotocol("longpoll");
    }
    if let Some(src) = thing.source() {
        query = query.fetched_from(src.clone());
    }
    let candidates = thing
        .thing()
        .forms_for(affordance, op, &query)
        .map_err(|source| Error::Form {
            thing: thing.id().to_owned(),
            source,
        })?;
    let mut security_error = None;
    for c in candidates {
        if !matches!(c.url.scheme(), "http" | "https") {
            continue;
        }
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
    pick(thing, affordance, op, streaming, creds)?.ok_or_else(|| Error::NoUsableForm {
        thing: thing.id().to_owned(),
        affordance: describe(affordance),
        op: op.as_str().to_owned(),
        reason: if streaming {
            "need HTTP with subprotocol `sse` or `longpoll` and JSON data".to_owned()
        } else {
            "need HTTP with JSON".to_owned()
        },
    })
}

/// An SSE stream for a target. `name` labels events whose type is the default `message`.
pub(crate) fn sse_stream(
    sse: &SseClient,
    target: &Target,
    last_event_id: Option<&str>,
) -> Result<(RawStream, watch::Receiver<ConnectionState>), Error> {
    let mut req = sse
        .request(
            target.method.clone(),
            target.auth.apply(&target.url).as_str(),
        )
        .headers(target.auth.headers.clone());
    if let Some(id) = last_event_id {
        req = req.last_event_id(id);
    }
    let events = req.connect()?;
    let state = events.state();
    let raw = events.map(|item| {
        item.map(|ev| RawItem {
            name: Some(ev.event_type().to_owned()),
            id: Some(ev.id().to_owned()).filter(|s| !s.is_empty()),
            data: ev.into_data(),
            polled: false,
        })
        .map_err(Error::from)
    });
    Ok((raw.boxed(), state))
}

/// Retry schedule of the HTTP transports: 1 s, doubling, at most 30 s.
fn retry_delay(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(5).saturating_sub(1)).min(Duration::from_secs(30))
}

struct PollState {
    http: reqwest::Client,
    target: Target,
    name: String,
    limit: usize,
    state: Arc<watch::Sender<ConnectionState>>,
    failures: u32,
    interval: Option<Duration>,
    /// The wait before the next request.
    wait: Option<Duration>,
    done: bool,
}

/// Long polling (each GET answers the next value) when `interval` is `None`, else polling
/// every `interval` (the first read at once). Network errors, 5xx, 408 and 429 are yielded
/// and retried after a backoff (1 s doubling to 30 s); other errors end the stream.
pub(crate) fn poll_stream(
    http: reqwest::Client,
    target: Target,
    name: String,
    limit: usize,
    interval: Option<Duration>,
) -> (
    RawStream,
    watch::Receiver<ConnectionState>,
    Arc<watch::Sender<ConnectionState>>,
) {
    let (tx, rx) = watch::channel(ConnectionState::Connecting);
    let tx = Arc::new(tx);
    let st = PollState {
        http,
        target,
        name,
        limit,
        state: tx.clone(),
        failures: 0,
        interval,
        wait: None,
        done: false,
    };
    let s = stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        if let Some(wait) = st.wait.take() {
            tokio::time::sleep(wait).await;
        }
        match send(&st.http, &st.target, None, st.limit).await {
            Ok((_, body)) => {
                st.failures = 0;
                st.wait = st.interval;
                st.state.send_replace(ConnectionState::Open);
                let item = RawItem {
                    name: Some(st.name.clone()),
                    data: String::from_utf8_lossy(&body).into_owned(),
                    id: None,
                    polled: st.interval.is_some(),
                };
                Some((Ok(item), st))
            }
            Err(e) if e.is_terminal() => {
                st.done = true;
                // `CloseReason::Failed` needs a `wot_sse::Error`, which only wot-sse can
                // build; the error itself is the stream's last item.
                st.state.send_replace(ConnectionState::Closed {
                    reason: CloseReason::Requested,
                });
                Some((Err(e), st))
            }
            Err(e) => {
                st.failures += 1;
                let delay = retry_delay(st.failures).max(st.interval.unwrap_or_default());
                st.wait = Some(delay);
                st.state.send_replace(ConnectionState::Reconnecting {
                    attempt: st.failures,
                    delay,
                });
                tracing::debug!(error = %e, ?delay, "request failed; retrying");
                Some((Err(e), st))
            }
        }
    });
    (s.boxed(), rx, tx)
}

/// Sends one request and reads the whole body (at most `limit` bytes).
pub(crate) async fn send(
    http: &reqwest::Client,
    target: &Target,
    body: Option<&Value>,
    limit: usize,
) -> Result<(Option<String>, Vec<u8>), Error> {
    let url = target.auth.apply(&target.url);
    let shown = display_url(&target.url);
    let mut req = http
        .request(target.method.clone(), url)
        .headers(target.auth.headers.clone())
        .header(header::ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(v) = body {
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        req = req
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(bytes);
    }
    let mut resp = req.send().await.map_err(|source| Error::Unreachable {
        url: shown.clone(),
        source: source.without_url(),
    })?;
    let status = resp.status();
    let content_type = header_str(resp.headers(), header::CONTENT_TYPE);
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|source| Error::Unreachable {
        url: shown.clone(),
        source: source.without_url(),
    })? {
        if buf.len() + chunk.len() > limit {
            return Err(Error::TooLarge { url: shown, limit });
        }
        buf.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(Error::Status {
            url: shown,
            status,
            problem: ProblemDetails::parse(content_type.as_deref(), &buf).map(Box::new),
        });
    }
    if status == StatusCode::NO_CONTENT {
        buf.clear();
    }
    Ok((content_type, buf))
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}
