//! The HTTP face of the simulator (axum): TDs, the HTTP Basic Profile operations and the HTTP
//! SSE Profile subscriptions.
//!
//! | method and path | operation |
//! |---|---|
//! | `GET /things` | the directory: a JSON array of every TD |
//! | `GET /things/{thing}` | one TD |
//! | `GET /things/{thing}/properties/{name}` | `readproperty` |
//! | `PUT /things/{thing}/properties/{name}` | `writeproperty` |
//! | `POST /things/{thing}/actions/{name}` | `invokeaction` |
//! | `GET /things/{thing}/sse/properties[/{name}]` | `observeallproperties` / `observeproperty` |
//! | `GET /things/{thing}/sse/events[/{name}]` | `subscribeallevents` / `subscribeevent` |
//!
//! An SSE response starts with a `retry:` hint (and, for a new subscriber with nothing to
//! replay, an id-only block giving its position as the resume point), then the backlog (replay after `Last-Event-ID`,
//! or the current property values for a new observer), then live records, with a heartbeat
//! comment whenever the stream has been quiet for the heartbeat interval.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures::Stream;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::Shared;
use super::hub::{Kind, Record, Selector};
use super::model::{self, DeviceError, Emission};

/// Chance, per connection, that `--chaos` answers 503 with `Retry-After` instead of streaming.
const CHAOS_REFUSE: f64 = 0.08;

/// How long a connection that chaos cuts stays open after the half record, for the bytes before
/// it to go out.
const CUT_FLUSH: Duration = Duration::from_millis(20);

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/things", get(directory))
        .route("/things/{thing}", get(description))
        .route(
            "/things/{thing}/properties/{name}",
            get(read_property).put(write_property),
        )
        .route("/things/{thing}/actions/{name}", post(invoke_action))
        .route("/things/{thing}/sse/properties", get(observe_all))
        .route("/things/{thing}/sse/properties/{name}", get(observe_one))
        .route("/things/{thing}/sse/events", get(subscribe_all))
        .route("/things/{thing}/sse/events/{name}", get(subscribe_one))
        .with_state(shared)
}

/// An RFC 7807 problem details response.
fn problem(status: StatusCode, detail: impl Into<String>) -> Response {
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn thing_index(shared: &Shared, slug: &str) -> Option<usize> {
    model::index_of(slug, shared.config.things)
}

fn no_thing(slug: &str) -> Response {
    problem(StatusCode::NOT_FOUND, format!("no Thing named {slug}"))
}

async fn directory(State(shared): State<Arc<Shared>>) -> Response {
    json_bytes(shared.directory.clone(), "application/json")
}

/// A response of JSON already serialized.
fn json_bytes(body: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn description(State(shared): State<Arc<Shared>>, Path(slug): Path<String>) -> Response {
    let Some(td) = thing_index(&shared, &slug).and_then(|i| shared.tds.get(i)) else {
        return no_thing(&slug);
    };
    json_bytes(shared.directory.slice(td.clone()), "application/td+json")
}

async fn read_property(
    State(shared): State<Arc<Shared>>,
    Path((slug, name)): Path<(String, String)>,
) -> Response {
    let Some(index) = thing_index(&shared, &slug) else {
        return no_thing(&slug);
    };
    let world = shared.lock_world();
    match world
        .properties(index)
        .into_iter()
        .find(|(n, _)| *n == name)
    {
        Some((_, value)) => Json(value).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            format!("{slug} has no property {name}"),
        ),
    }
}

fn device_problem(error: &DeviceError) -> Response {
    let status = match error {
        DeviceError::NotFound(_) => StatusCode::NOT_FOUND,
        DeviceError::ReadOnly(_) => StatusCode::METHOD_NOT_ALLOWED,
        DeviceError::BadValue(_) => StatusCode::BAD_REQUEST,
    };
    problem(status, error.to_string())
}

async fn write_property(
    State(shared): State<Arc<Shared>>,
    Path((slug, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(index) = thing_index(&shared, &slug) else {
        return no_thing(&slug);
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return problem(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}")),
    };
    let mut world = shared.lock_world();
    match world.write(index, &name, &value) {
        Ok(change) => {
            shared.publish(index, &change);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => device_problem(&e),
    }
}

async fn invoke_action(
    State(shared): State<Arc<Shared>>,
    Path((slug, name)): Path<(String, String)>,
) -> Response {
    let Some(index) = thing_index(&shared, &slug) else {
        return no_thing(&slug);
    };
    let mut world = shared.lock_world();
    match world.invoke(index, &name) {
        Ok((output, change)) => {
            shared.publish(index, &change);
            Json(output).into_response()
        }
        Err(e) => device_problem(&e),
    }
}

async fn observe_all(
    State(shared): State<Arc<Shared>>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    sse(&shared, &slug, Kind::Property, None, &headers)
}

async fn observe_one(
    State(shared): State<Arc<Shared>>,
    Path((slug, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    sse(&shared, &slug, Kind::Property, Some(name), &headers)
}

async fn subscribe_all(
    State(shared): State<Arc<Shared>>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    sse(&shared, &slug, Kind::Event, None, &headers)
}

async fn subscribe_one(
    State(shared): State<Arc<Shared>>,
    Path((slug, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    sse(&shared, &slug, Kind::Event, Some(name), &headers)
}

fn sse(
    shared: &Shared,
    slug: &str,
    kind: Kind,
    name: Option<String>,
    headers: &HeaderMap,
) -> Response {
    let Some(index) = thing_index(shared, slug) else {
        return no_thing(slug);
    };
    let thing = model::spec(index);
    if let Some(name) = &name {
        let known = match kind {
            Kind::Property => thing.property(name).is_some(),
            Kind::Event => thing.events.iter().any(|e| e.name == name),
        };
        if !known {
            return problem(StatusCode::NOT_FOUND, format!("{slug} has no {name}"));
        }
    }
    let connection = shared.connections.fetch_add(1, Ordering::Relaxed);
    let chaos = shared
        .config
        .chaos
        .then(|| StdRng::seed_from_u64(shared.config.seed ^ connection.rotate_left(32)));
    let mut chaos = chaos;
    if let Some(rng) = &mut chaos
        && rng.random_bool(CHAOS_REFUSE)
    {
        let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, "chaos: try again");
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(log) = shared.logs.get(index) else {
        return no_thing(slug);
    };
    let selector = Selector { kind, name };
    let subscription = log.subscribe(&selector, last_event_id);
    // A new subscriber with nothing to receive yet (an event stream) learns its position at
    // once, as an id-only block: cut before its first record, it resumes from there and
    // loses nothing published since it subscribed. With a backlog, each record carries its id.
    let hello = match last_event_id {
        None if subscription.backlog.is_empty() => {
            Bytes::from(format!("retry: 500\n\nid: {}\n\n", subscription.position))
        }
        _ => Bytes::from_static(b"retry: 500\n\n"),
    };
    let last_sent = subscription
        .backlog
        .last()
        .map(|r| r.id)
        .or(last_event_id)
        .unwrap_or(0);
    let connection = Connection {
        pending: subscription.backlog.into(),
        live: subscription.live,
        selector,
        last_sent,
        heartbeat: shared.config.heartbeat,
        hello,
        chaos,
        // `random_bool` wants a probability; the option parser already checks it.
        chaos_rate: match shared.config.chaos_rate {
            rate if rate.is_nan() => 0.0,
            rate => rate.clamp(0.0, 1.0),
        },
        state: Phase::Hello,
    };
    let mut response = Response::new(Body::from_stream(connection.into_stream()));
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Where a connection's body is.
enum Phase {
    /// Nothing sent yet: send the hello.
    Hello,
    Streaming,
    /// Chaos sent half a frame: fail the body so the connection is cut mid-event.
    Cut,
    Done,
}

/// One SSE response body.
struct Connection {
    pending: std::collections::VecDeque<Arc<Record>>,
    live: tokio::sync::broadcast::Receiver<Arc<Record>>,
    selector: Selector,
    /// Highest id sent, so a record is never sent twice.
    last_sent: u64,
    heartbeat: Duration,
    /// The first bytes: the `retry:` hint, and the position for a subscriber with no backlog.
    hello: Bytes,
    chaos: Option<StdRng>,
    /// Chance of a cut per record sent, when `chaos` is on.
    chaos_rate: f64,
    state: Phase,
}

type Chunk = Result<Bytes, io::Error>;

impl Connection {
    fn into_stream(self) -> impl Stream<Item = Chunk> + Send {
        futures::stream::unfold(self, |mut conn| async move {
            let chunk = conn.next_chunk().await?;
            Some((chunk, conn))
        })
    }

    async fn next_chunk(&mut self) -> Option<Chunk> {
        match self.state {
            Phase::Hello => {
                self.state = Phase::Streaming;
                return Some(Ok(self.hello.clone()));
            }
            Phase::Cut => {
                self.state = Phase::Done;
                // Wait before failing the body: the server writes what it has buffered while
                // the body is pending, so the records before the cut and the half record reach
                // the client as they would on a real network. Failing at once would drop the
                // whole buffer (for a long replay, every connection would end before its first
                // byte, and a client that fell behind could never catch up).
                tokio::time::sleep(CUT_FLUSH).await;
                return Some(Err(io::Error::other("chaos: connection cut")));
            }
            Phase::Done => return None,
            Phase::Streaming => {}
        }
        if let Some(record) = self.pending.pop_front() {
            return Some(self.send(&record));
        }
        // The deadline is fixed before the loop: records this connection skips do not count as
        // traffic, so an event stream beside busy properties still gets its heartbeats.
        let quiet_until = tokio::time::Instant::now() + self.heartbeat;
        loop {
            let received = tokio::time::timeout_at(quiet_until, self.live.recv()).await;
            match received {
                Err(_quiet) => return Some(Ok(Bytes::from_static(b": heartbeat\n\n"))),
                Ok(Ok(record)) => {
                    if record.id > self.last_sent && self.selector.matches(&record) {
                        return Some(self.send(&record));
                    }
                }
                // A subscriber that fell behind the live channel is disconnected; it resumes
                // from the replay buffer with `Last-Event-ID`.
                Ok(Err(RecvError::Lagged(_) | RecvError::Closed)) => return None,
            }
        }
    }

    fn send(&mut self, record: &Record) -> Chunk {
        if let Some(rng) = &mut self.chaos
            && rng.random_bool(self.chaos_rate)
        {
            self.state = Phase::Cut;
            let half = record.frame.len() / 2;
            return Ok(record.frame.slice(..half));
        }
        self.last_sent = record.id;
        Ok(record.frame.clone())
    }
}

impl Shared {
    /// Appends an emission of Thing `index` to its log (from the ticker, a write or an
    /// invocation).
    pub(crate) fn publish(&self, index: usize, emission: &Emission) {
        let Some(log) = self.logs.get(index) else {
            return;
        };
        match emission {
            Emission::Property { name, value } => log.publish(Kind::Property, name, value),
            Emission::Event { name, data } => log.publish(Kind::Event, name, data),
        }
    }
}
