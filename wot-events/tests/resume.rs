//! An app that embeds wot-events and restarts: its subscriptions and observers are dropped
//! (the app stopped) and built again by a new subscriber on the same resume store. Against a
//! server that honours `Last-Event-ID`, nothing is lost and nothing repeated; against servers
//! that send events again (all of them, or from the last one on), each event is delivered once.
//! Then hostile ids: 1 MiB long, control characters, U+0000 in a stored point, and many
//! streams.
//!
//! The server is a small SSE server on 127.0.0.1 that numbers its events.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Notify;
use wot_events::{
    ConsumedThing, EventSubscriber, MemoryResumeStore, ObserveOptions, ReconnectPolicy,
    ResumePoint, ResumeStore, SseClient, StreamKey, SubscribeOptions, Url,
};

/// How the server answers a `Last-Event-ID`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Replay {
    /// The events after it (all of them for an id it does not know).
    Honours,
    /// Every event since the start, whatever the header.
    All,
    /// From that event on, itself included.
    Inclusive,
}

/// One event of the feed: its id line (raw, so a test can make it hostile) and data.
#[derive(Clone)]
struct Ev {
    id: String,
    data: String,
}

struct Feed {
    events: Mutex<Vec<Ev>>,
    notify: Notify,
    replay: Replay,
    /// The `Last-Event-ID` of each connection, in order.
    seen: Mutex<Vec<Option<String>>>,
    /// Connection `n` (from 1) is closed after `n × close_every` events, when set.
    close_every: Option<usize>,
}

#[derive(Clone)]
struct Server {
    feed: Arc<Feed>,
    addr: SocketAddr,
}

impl Server {
    async fn start(replay: Replay, close_every: Option<usize>) -> Server {
        let feed = Arc::new(Feed {
            events: Mutex::new(Vec::new()),
            notify: Notify::new(),
            replay,
            seen: Mutex::new(Vec::new()),
            close_every,
        });
        let app = Router::new()
            .route("/things/t/{kind}/{name}", get(stream))
            .route("/things/t/{kind}", get(stream_all))
            .with_state(feed.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { feed, addr }
    }

    /// Appends events with the ids `ids`; the data of each is `{"n": <its index from 1>}`.
    fn push_ids<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut events = self.feed.events.lock().unwrap();
        for id in ids {
            let n = events.len() + 1;
            events.push(Ev {
                id: id.to_owned(),
                data: json!({ "n": n }).to_string(),
            });
        }
        drop(events);
        self.feed.notify.notify_waiters();
    }

    /// Appends events numbered `range`, their ids the numbers.
    fn push(&self, range: std::ops::RangeInclusive<usize>) {
        let ids: Vec<String> = range.map(|n| n.to_string()).collect();
        self.push_ids(ids.iter().map(String::as_str));
    }

    fn seen(&self) -> Vec<Option<String>> {
        self.feed.seen.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{path}", self.addr)).unwrap()
    }

    /// A TD with event `overheat` and property `temp`, each with an SSE form, and Thing-level
    /// `subscribeallevents` / `observeallproperties` forms when `shared`. Form hrefs carry a
    /// query with a token, which must stay out of the keys.
    fn thing(&self, shared: bool) -> ConsumedThing {
        let mut td = json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "id": "urn:test:resume",
            "title": "Resume",
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
            "security": "nosec_sc",
            "properties": {"temp": {"type": "object", "observable": true, "forms": [
                {"href": "properties/temp?token=s3cret", "op": "observeproperty", "subprotocol": "sse"}
            ]}},
            "events": {"overheat": {"data": {"type": "object"}, "forms": [
                {"href": "events/overheat?token=s3cret", "op": "subscribeevent", "subprotocol": "sse"}
            ]}}
        });
        if shared {
            td["forms"] = json!([
                {"href": "events", "op": "subscribeallevents", "subprotocol": "sse"},
                {"href": "properties", "op": "observeallproperties", "subprotocol": "sse"}
            ]);
        }
        let base = self.url("/things/t/td");
        ConsumedThing::from_slice(&serde_json::to_vec(&td).unwrap(), Some(base)).unwrap()
    }
}

async fn stream_all(
    Path(kind): Path<String>,
    headers: HeaderMap,
    State(feed): State<Arc<Feed>>,
) -> Response {
    let name = if kind == "events" { "overheat" } else { "temp" };
    serve_feed(name.to_owned(), headers, feed)
}

async fn stream(
    Path((_, name)): Path<(String, String)>,
    headers: HeaderMap,
    State(feed): State<Arc<Feed>>,
) -> Response {
    serve_feed(name, headers, feed)
}

fn serve_feed(name: String, headers: HeaderMap, feed: Arc<Feed>) -> Response {
    let last = headers
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let start = {
        let events = feed.events.lock().unwrap();
        let at = last
            .as_deref()
            .and_then(|l| events.iter().position(|e| e.id == l));
        match (feed.replay, at) {
            (Replay::Honours, Some(i)) => i + 1,
            (Replay::Inclusive, Some(i)) => i,
            _ => 0,
        }
    };
    let connection = {
        let mut seen = feed.seen.lock().unwrap();
        seen.push(last);
        seen.len()
    };
    let limit = feed.close_every.map(|k| k * connection);
    let body = futures::stream::unfold((start, 0usize), move |(next, sent)| {
        let feed = feed.clone();
        let name = name.clone();
        async move {
            if limit.is_some_and(|l| sent >= l) {
                return None;
            }
            loop {
                let notified = feed.notify.notified();
                let ev = feed.events.lock().unwrap().get(next).cloned();
                if let Some(ev) = ev {
                    let text = format!("event: {name}\nid: {}\ndata: {}\n\n", ev.id, ev.data);
                    return Some((
                        Ok::<_, std::io::Error>(Bytes::from(text)),
                        (next + 1, sent + 1),
                    ));
                }
                notified.await;
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

fn subscriber(store: &Arc<MemoryResumeStore>) -> EventSubscriber {
    let sse = SseClient::builder()
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::from_millis(100))
                .max_attempts(None)
                .jitter(0.0),
        )
        .build()
        .unwrap();
    EventSubscriber::builder()
        .sse_client(sse)
        .resume_store(store.clone())
        .build()
}

/// What the app sees of one item: its event id and the `n` of its data.
type Seen = (Option<String>, u64);

/// An event subscription, a property observer or a merged subscription, as one stream of
/// what the app sees.
fn open(sub: &EventSubscriber, thing: &ConsumedThing, what: &str) -> BoxStream<'static, Seen> {
    fn seen<T: 'static, E: std::fmt::Display + 'static>(
        s: impl Stream<Item = Result<T, E>> + Send + 'static,
        f: fn(&T) -> Seen,
    ) -> BoxStream<'static, Seen> {
        s.map(move |item| match item {
            Ok(v) => f(&v),
            Err(e) => panic!("unexpected error: {e}"),
        })
        .boxed()
    }
    match what {
        "event" => seen(
            sub.subscribe(thing, "overheat", SubscribeOptions::new())
                .unwrap(),
            |r| {
                (
                    r.event_id.as_deref().map(str::to_owned),
                    r.data["n"].as_u64().unwrap(),
                )
            },
        ),
        "all events" => seen(
            sub.subscribe_all([thing], SubscribeOptions::new()).unwrap(),
            |r| {
                (
                    r.event_id.as_deref().map(str::to_owned),
                    r.data["n"].as_u64().unwrap(),
                )
            },
        ),
        "property" => seen(
            sub.observe_property(thing, "temp", ObserveOptions::new())
                .unwrap(),
            |u| {
                (
                    u.event_id.as_deref().map(str::to_owned),
                    u.value["n"].as_u64().unwrap(),
                )
            },
        ),
        "all properties" => seen(
            sub.observe_all_properties(thing, ObserveOptions::new())
                .unwrap(),
            |u| {
                (
                    u.event_id.as_deref().map(str::to_owned),
                    u.value["n"].as_u64().unwrap(),
                )
            },
        ),
        other => unreachable!("{other}"),
    }
}

async fn take(s: &mut BoxStream<'static, Seen>, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    for _ in 0..n {
        let item = tokio::time::timeout(Duration::from_secs(30), s.next())
            .await
            .expect("an item in time")
            .expect("the stream goes on");
        out.push(item.1);
    }
    out
}

/// The app runs, stops after 3 of 5 events, the server gets 3 more while it is down, the app
/// starts again on the same store. Returns what the app saw (in order) and the
/// `Last-Event-ID` of each connection.
async fn restart(replay: Replay, what: &str, shared: bool) -> (Vec<u64>, Vec<Option<String>>) {
    let server = Server::start(replay, None).await;
    let thing = server.thing(shared);
    let store = Arc::new(MemoryResumeStore::new());
    server.push(1..=5);
    let mut got = {
        let mut s = open(&subscriber(&store), &thing, what);
        take(&mut s, 3).await
        // Dropped here: the app stops with events 4 and 5 perhaps received but not handed on.
    };
    server.push(6..=8);
    let mut s = open(&subscriber(&store), &thing, what);
    got.extend(take(&mut s, 5).await);
    // Nothing else in between: the next item is the next event.
    server.push(9..=9);
    got.extend(take(&mut s, 1).await);
    assert_eq!(store.len(), 1, "one stream, one point");
    let (key, point) = store.points().pop().unwrap();
    assert_eq!(point.last_event_id, "9");
    assert!(!key.form().contains("s3cret"), "{key}");
    (got, server.seen())
}

fn once_each(got: &[u64], last: u64) {
    assert_eq!(
        got,
        (1..=last).collect::<Vec<_>>(),
        "every event once, in order"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_event_subscription_resumes_from_an_honouring_server_without_loss_or_repeat() {
    let (got, seen) = restart(Replay::Honours, "event", false).await;
    once_each(&got, 9);
    assert_eq!(seen, [None, Some("3".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_event_subscription_drops_what_a_replaying_server_sends_again() {
    for replay in [Replay::All, Replay::Inclusive] {
        let (got, seen) = restart(replay, "event", false).await;
        once_each(&got, 9);
        assert_eq!(seen, [None, Some("3".to_owned())], "{replay:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_restarted_property_observer_resumes_and_drops_repeats() {
    for replay in [Replay::Honours, Replay::All, Replay::Inclusive] {
        let (got, seen) = restart(replay, "property", false).await;
        once_each(&got, 9);
        assert_eq!(seen, [None, Some("3".to_owned())], "{replay:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn shared_connections_for_all_events_and_all_properties_resume_too() {
    for what in ["all events", "all properties"] {
        for replay in [Replay::Honours, Replay::All] {
            let (got, seen) = restart(replay, what, true).await;
            once_each(&got, 9);
            assert_eq!(seen, [None, Some("3".to_owned())], "{what} {replay:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn per_property_connections_of_all_properties_resume_too() {
    let (got, seen) = restart(Replay::All, "all properties", false).await;
    once_each(&got, 9);
    assert_eq!(seen, [None, Some("3".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn repeats_are_counted_and_the_store_keeps_the_ids_of_the_points() {
    let server = Server::start(Replay::All, None).await;
    let thing = server.thing(false);
    let store = Arc::new(MemoryResumeStore::new());
    server.push(1..=5);
    let mut first = subscriber(&store)
        .subscribe(&thing, "overheat", SubscribeOptions::new())
        .unwrap();
    for _ in 0..5 {
        first.next().await.unwrap().unwrap();
    }
    assert_eq!(first.duplicates_dropped(), 0);
    drop(first);
    let key = StreamKey::event(
        "urn:test:resume",
        "overheat",
        &server.url("/things/t/events/overheat"),
    );
    let point = store
        .get(&key)
        .expect("a point under the form's URL without its query");
    assert_eq!(point, {
        let mut p = ResumePoint::default();
        for id in ["1", "2", "3", "4", "5"] {
            p.advance(id, 256);
        }
        p
    });
    server.push(6..=6);
    let mut again = subscriber(&store)
        .subscribe(&thing, "overheat", SubscribeOptions::new())
        .unwrap();
    let record = again.next().await.unwrap().unwrap();
    assert_eq!(record.event_id.as_deref(), Some("6"));
    assert_eq!(again.duplicates_dropped(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_replays_everything_on_each_reconnect_delivers_each_event_once() {
    // Connection n closes after 4n events; each reconnect starts again from event 1.
    let server = Server::start(Replay::All, Some(4)).await;
    let thing = server.thing(false);
    let store = Arc::new(MemoryResumeStore::new());
    server.push(1..=12);
    let mut s = open(&subscriber(&store), &thing, "event");
    let got = take(&mut s, 12).await;
    once_each(&got, 12);
    let seen = server.seen();
    assert_eq!(
        seen[..3],
        [None, Some("4".to_owned()), Some("8".to_owned())],
        "wot-sse resumes from the last id"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_store_nothing_is_resumed_or_dropped() {
    let server = Server::start(Replay::All, Some(2)).await;
    let thing = server.thing(false);
    server.push(1..=4);
    let sub = EventSubscriber::builder()
        .sse_client(
            SseClient::builder()
                .reconnect(ReconnectPolicy::new().initial_delay(Duration::from_millis(100)))
                .build()
                .unwrap(),
        )
        .build();
    let mut events = sub
        .subscribe(&thing, "overheat", SubscribeOptions::new())
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(
            events.next().await.unwrap().unwrap().data["n"]
                .as_u64()
                .unwrap(),
        );
    }
    // The server's replays reach the app.
    assert_eq!(got, [1, 2, 1, 2, 3, 4]);
    assert_eq!(events.duplicates_dropped(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_explicit_last_event_id_wins_over_the_stored_one() {
    let server = Server::start(Replay::Honours, None).await;
    let thing = server.thing(false);
    let key = StreamKey::event(
        "urn:test:resume",
        "overheat",
        &server.url("/things/t/events/overheat"),
    );
    let store = Arc::new(MemoryResumeStore::from_points([(
        key,
        ResumePoint::new("2"),
    )]));
    server.push(1..=4);
    let mut events = subscriber(&store)
        .subscribe(
            &thing,
            "overheat",
            SubscribeOptions::new().last_event_id("1"),
        )
        .unwrap();
    // After 1: event 2 is in the window (from the store), so 3 comes first.
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first.event_id.as_deref(), Some("3"));
    assert_eq!(server.seen(), [Some("1".to_owned())]);
    assert_eq!(events.duplicates_dropped(), 1);
}

#[tokio::test(start_paused = true)]
async fn hostile_ids_a_1_mib_id_is_refused_by_the_parser_and_nothing_breaks() {
    let server = Server::start(Replay::All, None).await;
    let thing = server.thing(false);
    let store = Arc::new(MemoryResumeStore::new());
    let huge = "x".repeat(1024 * 1024);
    server.push_ids(["1", huge.as_str(), "3"]);
    let mut events = subscriber(&store)
        .subscribe(&thing, "overheat", SubscribeOptions::new())
        .unwrap();
    let mut ids = Vec::new();
    let mut errors = 0;
    while ids.len() < 3 {
        match events.next().await.unwrap() {
            Ok(r) => ids.push(r.event_id.map(String::from).unwrap_or_default()),
            Err(e) => {
                assert!(!e.is_terminal(), "{e}");
                errors += 1;
            }
        }
    }
    // wot-sse refuses the id line (an error item) and the event keeps the id before it.
    assert_eq!(errors, 1);
    assert_eq!(ids, ["1", "1", "3"]);
    let point = store.points().pop().unwrap().1;
    assert_eq!(point.last_event_id, "3");
    assert!(point.recent_ids.iter().all(|id| id.len() <= 4096));
}

#[tokio::test(start_paused = true)]
async fn hostile_ids_longer_than_the_resume_limit_are_handed_on_but_not_tracked() {
    let server = Server::start(Replay::All, None).await;
    let thing = server.thing(false);
    let store = Arc::new(MemoryResumeStore::new());
    let huge = "x".repeat(1024 * 1024);
    server.push_ids(["1", huge.as_str(), "3"]);
    // A client that lets 2 MiB ids through: the resume limit (4 KiB) still bounds the store.
    let make = || {
        EventSubscriber::builder()
            .sse_client(SseClient::builder().max_id_len(2 << 20).build().unwrap())
            .resume_store(store.clone())
            .build()
    };
    let mut events = make()
        .subscribe(&thing, "overheat", SubscribeOptions::new())
        .unwrap();
    let mut lens = Vec::new();
    for _ in 0..3 {
        let r = events.next().await.unwrap().unwrap();
        lens.push(r.event_id.map_or(0, |id| id.len()));
    }
    assert_eq!(lens, [1, 1 << 20, 1]);
    let point = store.points().pop().unwrap().1;
    assert_eq!(point.recent_ids, ["1", "3"]);
    drop(events);
    // Again: 1 and 3 are dropped; the untracked event is handed on again (at least once).
    server.push_ids(["4"]);
    let mut events = make()
        .subscribe(&thing, "overheat", SubscribeOptions::new())
        .unwrap();
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first.event_id.map_or(0, |id| id.len()), 1 << 20);
    let next = events.next().await.unwrap().unwrap();
    assert_eq!(next.event_id.as_deref(), Some("4"));
    assert_eq!(events.duplicates_dropped(), 2);
}

#[tokio::test(start_paused = true)]
async fn hostile_ids_with_control_characters_resume_and_are_delivered_once() {
    let server = Server::start(Replay::Honours, None).await;
    let thing = server.thing(false);
    let store = Arc::new(MemoryResumeStore::new());
    let ids = [
        "a\u{1}b",
        "\u{1b}[31mred",
        "tab\there",
        "del\u{7f}",
        "bidi\u{202e}x",
        "%01",
        "é",
    ];
    server.push_ids(ids);
    let mut s = open(&subscriber(&store), &thing, "event");
    assert_eq!(take(&mut s, 4).await, [1, 2, 3, 4]);
    drop(s);
    // The stored id `del\x7f` is sent percent-encoded (`del%7F`), which this server does not
    // know, so it sends everything: the window drops what was seen.
    let mut s = open(&subscriber(&store), &thing, "event");
    assert_eq!(take(&mut s, 3).await, [5, 6, 7]);
    server.push(8..=8);
    assert_eq!(take(&mut s, 1).await, [8]);
    assert_eq!(server.seen(), [None, Some("del%7F".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn a_stored_point_with_nul_or_an_overlong_id_starts_without_last_event_id() {
    let server = Server::start(Replay::Honours, None).await;
    let thing = server.thing(false);
    let key = StreamKey::event(
        "urn:test:resume",
        "overheat",
        &server.url("/things/t/events/overheat"),
    );
    server.push(1..=2);
    for bad in ["1\u{0}".to_owned(), "1".repeat(5000)] {
        let store = Arc::new(MemoryResumeStore::from_points([(
            key.clone(),
            ResumePoint {
                last_event_id: bad,
                recent_ids: ["1".to_owned()].into(),
            },
        )]));
        let mut events = subscriber(&store)
            .subscribe(&thing, "overheat", SubscribeOptions::new())
            .unwrap();
        // Event 1 is in the window: dropped.
        let r = events.next().await.unwrap().unwrap();
        assert_eq!(r.event_id.as_deref(), Some("2"));
    }
    assert_eq!(server.seen(), [None, None]);
}

#[tokio::test(start_paused = true)]
async fn many_streams_keep_memory_bounded_and_keep_delivering() {
    // A TD with 40 events, each its own SSE connection; a store that keeps 10 streams.
    let server = Server::start(Replay::Honours, None).await;
    let events: serde_json::Map<String, Value> = (0..40)
        .map(|i| {
            (
                format!("e{i}"),
                json!({"forms": [{"href": format!("events/e{i}"), "subprotocol": "sse"}]}),
            )
        })
        .collect();
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:test:many", "title": "Many",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}}, "security": "nosec_sc",
        "events": events
    });
    let thing = ConsumedThing::from_slice(
        &serde_json::to_vec(&td).unwrap(),
        Some(server.url("/things/t/td")),
    )
    .unwrap();
    let store = Arc::new(MemoryResumeStore::new().with_max_streams(10));
    server.push(1..=300);
    // Every stream gets the same 300 events (the feed names them after the path: `e<i>`).
    let mut all = subscriber(&store)
        .subscribe_all([&thing], SubscribeOptions::new())
        .unwrap();
    let mut n = 0;
    while n < 40 * 300 {
        let r = tokio::time::timeout(Duration::from_secs(30), all.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(r.event.starts_with('e'));
        n += 1;
    }
    assert_eq!(store.len(), 10);
    for (_, point) in store.points() {
        assert_eq!(point.last_event_id, "300");
        assert_eq!(point.recent_ids.len(), 256);
    }
    // The store itself: a million keys through the trait stay within its limit.
    let direct = MemoryResumeStore::new().with_max_streams(1000);
    let url = Url::parse("http://h/e").unwrap();
    for i in 0..100_000 {
        direct.advance(&StreamKey::event("t", &i.to_string(), &url), "1");
    }
    assert_eq!(direct.len(), 1000);
    assert_eq!(
        direct
            .load(&StreamKey::event("t", "5", &url))
            .unwrap()
            .last_event_id,
        "1"
    );
    assert!(direct.load(&StreamKey::event("t", "99999", &url)).is_none());
}

/// An app's store: the points as of the items handed over so far (read from disk at start),
/// which the app writes with its own output, in one file write. (Points written must be the
/// latest ones, not a fresh point per write: each point carries the recent ids that seed the
/// window.)
#[derive(Default)]
struct AppStore {
    points: Mutex<HashMap<StreamKey, ResumePoint>>,
}

impl ResumeStore for AppStore {
    fn load(&self, key: &StreamKey) -> Option<ResumePoint> {
        self.points.lock().unwrap().get(key).cloned()
    }

    fn advance(&self, key: &StreamKey, event_id: &str) {
        let mut points = self.points.lock().unwrap();
        points
            .entry(key.clone())
            .or_default()
            .advance(event_id, 256);
    }
}

/// What the app keeps on disk: its output and the points, written together.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Disk {
    output: Vec<u64>,
    points: Vec<(StreamKey, ResumePoint)>,
}

impl Disk {
    fn read(path: &std::path::Path) -> Disk {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
            Err(_) => Disk::default(),
        }
    }

    /// Written whole to a new file, then renamed over the old one: a crash leaves one or the
    /// other.
    fn write(&self, path: &std::path::Path) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self).unwrap()).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}

/// Runs the app 12 times against `server`: each run takes a pseudo-random number of items,
/// commits every few items, and "crashes" (drops everything, pending items and points
/// included) at a pseudo-random point. Returns the output on disk at the end, and how many
/// items were handed over but lost in the crashes.
async fn crashing_app(server: &Server, total: usize, path: &std::path::Path) -> (Vec<u64>, usize) {
    let thing = server.thing(false);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let mut pushed = 0;
    let mut lost = 0;
    for run in 0..12 {
        // Events arrive while the app is down too.
        let more = (random(30) as usize).min(total - pushed);
        server.push(pushed + 1..=pushed + more);
        pushed += more;
        let disk = Disk::read(path);
        let store = Arc::new(AppStore {
            points: Mutex::new(disk.points.into_iter().collect()),
        });
        let sub = EventSubscriber::builder()
            .resume_store(store.clone())
            .build();
        let mut events = sub
            .subscribe(&thing, "overheat", SubscribeOptions::new())
            .unwrap();
        let mut output = disk.output;
        let mut uncommitted = Vec::new();
        let commit_every = 1 + random(5);
        let last_run = run == 11;
        let take = if last_run {
            usize::MAX
        } else {
            random(25) as usize
        };
        let mut taken = 0;
        while taken < take {
            if last_run && pushed < total {
                server.push(pushed + 1..=total);
                pushed = total;
            }
            let next = if last_run {
                // The last run reads until the feed is drained.
                match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
                    Ok(item) => item,
                    Err(_) => break,
                }
            } else {
                events.next().await
            };
            let record = next.unwrap().unwrap();
            uncommitted.push(record.data["n"].as_u64().unwrap());
            taken += 1;
            if (taken as u64).is_multiple_of(commit_every) || last_run {
                // One write: the output so far and the points of what it holds.
                output.append(&mut uncommitted);
                let points = store.points.lock().unwrap().clone();
                Disk {
                    output: output.clone(),
                    points: points.into_iter().collect(),
                }
                .write(path);
            }
        }
        // Crash: whatever was not written is lost, points included.
        lost += uncommitted.len();
    }
    (Disk::read(path).output, lost)
}

#[tokio::test(start_paused = true)]
async fn an_app_that_writes_its_points_with_its_output_has_each_event_once_across_crashes() {
    for replay in [Replay::Honours, Replay::All, Replay::Inclusive] {
        let server = Server::start(replay, None).await;
        let path = std::env::temp_dir().join(format!(
            "wot-events-resume-{}-{replay:?}.json",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        // Fewer events than the window (256), so a server that replays everything is covered.
        let (output, lost) = crashing_app(&server, 200, &path).await;
        assert!(lost > 0, "{replay:?}: some crashes lost items handed over");
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            output,
            (1..=200).collect::<Vec<u64>>(),
            "{replay:?}: every event once, in order"
        );
        // Runs that took nothing never connected; the others resumed.
        assert!(server.seen().len() >= 6, "{replay:?}: {:?}", server.seen());
    }
}

#[tokio::test(start_paused = true)]
async fn the_store_is_at_each_item_when_it_is_handed_over_and_filtered_events_advance_it() {
    let server = Server::start(Replay::Honours, None).await;
    let thing = server.thing(false);
    let store = Arc::new(MemoryResumeStore::new());
    let key = StreamKey::event(
        "urn:test:resume",
        "overheat",
        &server.url("/things/t/events/overheat"),
    );
    // All ten are on the wire before the first is taken.
    server.push(1..=10);
    let odd = wot_events::Filter::from_fn(|r| r.data["n"].as_u64().unwrap() % 2 == 1);
    let mut events = subscriber(&store)
        .subscribe(&thing, "overheat", SubscribeOptions::new().filter(odd))
        .unwrap();
    for n in [1, 3, 5, 7, 9] {
        let record = events.next().await.unwrap().unwrap();
        assert_eq!(record.data["n"], n);
        // Not ahead (the events after it may be received already), not behind.
        assert_eq!(store.get(&key).unwrap().last_event_id, n.to_string());
    }
    server.push(11..=11);
    let record = events.next().await.unwrap().unwrap();
    assert_eq!(record.data["n"], 11);
    // Event 10, dropped by the filter on the way, advanced the store too.
    assert_eq!(
        Vec::from(store.get(&key).unwrap().recent_ids),
        (1..=11).map(|n| n.to_string()).collect::<Vec<_>>()
    );
}
