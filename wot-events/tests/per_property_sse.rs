//! A Thing whose properties each have their own `observeproperty` SSE form (no
//! `observeallproperties` form), observed with `observe_all_properties`: one connection per
//! property, and every value each stream sends arrives as an update of that property,
//! whether its events are unnamed, named after the property, large (8 KiB and more), or cut
//! into pieces anywhere, including inside a line and between `\r` and `\n`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use wot_events::{ConsumedThing, EventSubscriber, ObserveMode, ObserveOptions};

/// The pieces each property's stream sends, in order, each with its gate: a piece is sent
/// once the test has received that many updates (0: at once). The connection then stays
/// open.
type Streams = HashMap<String, Vec<(usize, Vec<u8>)>>;

#[derive(Clone)]
struct Served {
    streams: Streams,
    received: watch::Receiver<usize>,
    /// Each stream sent whole, with a `Content-Length`, and the connection closed, as a
    /// server of fixed responses (wiremock) sends it; the gates are ignored.
    whole: bool,
}

async fn stream(Path(name): Path<String>, State(served): State<Served>) -> Response {
    let pieces = served.streams.get(&name).cloned().unwrap_or_default();
    if served.whole {
        let body: Vec<u8> = pieces.into_iter().flat_map(|(_, p)| p).collect();
        return ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response();
    }
    let received = served.received;
    // Each piece its own write, and no end: the client must not need the connection closed.
    let body = futures::stream::iter(pieces)
        .then(move |(gate, piece)| {
            let mut received = received.clone();
            async move {
                // The test side dropping its sender ends the wait too.
                let _ = received.wait_for(|n| *n >= gate).await;
                tokio::task::yield_now().await;
                Ok::<_, std::io::Error>(Bytes::from(piece))
            }
        })
        .chain(futures::stream::pending());
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}

/// Serves `streams` on 127.0.0.1, one path per property; `received` opens their gates.
async fn serve(streams: Streams, received: watch::Receiver<usize>, whole: bool) -> SocketAddr {
    let app = Router::new()
        .route("/props/{name}", get(stream))
        .with_state(Served {
            streams,
            received,
            whole,
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A TD whose properties `names` each have one `observeproperty` SSE form and nothing else.
fn thing(addr: SocketAddr, names: &[&str]) -> ConsumedThing {
    let properties: serde_json::Map<String, Value> = names
        .iter()
        .map(|n| {
            (
                (*n).to_owned(),
                json!({
                    "observable": true,
                    "forms": [{
                        "href": format!("http://{addr}/props/{n}"),
                        "op": "observeproperty",
                        "subprotocol": "sse"
                    }]
                }),
            )
        })
        .collect();
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:test:per-property-sse",
        "title": "Per-property SSE",
        "securityDefinitions": {"none": {"scheme": "nosec"}},
        "security": "none",
        "properties": properties
    });
    ConsumedThing::from_slice(td.to_string().as_bytes(), None).unwrap()
}

/// How an event is written.
#[derive(Clone, Copy)]
enum Style {
    /// `data: <json>` alone.
    Unnamed,
    /// `event: <property>`, then the data.
    Named,
    /// `event: message`, then the data.
    Message,
    /// A comment and an `id` before, `data:` without a space, the JSON over two `data`
    /// lines when it has a comma, `retry` after.
    Busy,
}

/// One SSE event carrying `value` for `property`, with `\n` or `\r\n` line ends.
fn event(property: &str, value: &Value, style: Style, crlf: bool) -> Vec<u8> {
    let eol = if crlf { "\r\n" } else { "\n" };
    let json = value.to_string();
    let text = match style {
        Style::Unnamed => format!("data: {json}{eol}{eol}"),
        Style::Named => format!("event: {property}{eol}data: {json}{eol}{eol}"),
        Style::Message => format!("event: message{eol}data: {json}{eol}{eol}"),
        Style::Busy => {
            let data = match json.split_once(',') {
                Some((a, b)) => format!("data:{a},{eol}data:{b}"),
                None => format!("data:{json}"),
            };
            format!(": heartbeat{eol}id: {property}-1{eol}{data}{eol}retry: 5000{eol}{eol}")
        }
    };
    text.into_bytes()
}

/// The events of one test in the order they are sent: property, how, value.
type Script = Vec<(&'static str, Style, Value)>;

/// The streams for `script`, and the values each property must show, in order.
///
/// `gated`: each event is sent only once every event before it (on any stream) has arrived,
/// so that it reaches a client waiting on all its connections; else all are sent at once.
/// `piece`: each stream's bytes are cut into pieces of that size (across events when not
/// gated). `crlf`: `\r\n` line ends.
fn streams(
    script: &Script,
    gated: bool,
    piece: usize,
    crlf: bool,
) -> (Streams, HashMap<&'static str, Vec<Value>>) {
    let mut events: HashMap<String, Vec<(usize, Vec<u8>)>> = HashMap::new();
    let mut expected: HashMap<&'static str, Vec<Value>> = HashMap::new();
    for (i, (property, style, value)) in script.iter().enumerate() {
        let gate = if gated { i } else { 0 };
        events
            .entry((*property).to_owned())
            .or_default()
            .push((gate, event(property, value, *style, crlf)));
        expected.entry(property).or_default().push(value.clone());
    }
    let streams = events
        .into_iter()
        .map(|(property, events)| {
            let pieces = if gated {
                events
                    .into_iter()
                    .flat_map(|(gate, bytes)| {
                        cut(&bytes, piece).into_iter().map(move |p| (gate, p))
                    })
                    .collect()
            } else {
                let all: Vec<u8> = events.into_iter().flat_map(|(_, b)| b).collect();
                cut(&all, piece).into_iter().map(|p| (0, p)).collect()
            };
            (property, pieces)
        })
        .collect();
    (streams, expected)
}

/// `bytes` cut every `size` bytes.
fn cut(bytes: &[u8], size: usize) -> Vec<Vec<u8>> {
    bytes.chunks(size).map(<[u8]>::to_vec).collect()
}

/// A value whose JSON text is about `bytes` long.
fn large(bytes: usize, tag: u64) -> Value {
    json!({"tag": tag, "text": "x".repeat(bytes), "n": [1.5, -2, null, true]})
}

/// Observes every property of a Thing serving `streams` and collects updates until each
/// property has as many values as `expected` lists, then checks them, in order.
async fn observe_and_check(names: &[&str], streams: Streams, expected: HashMap<&str, Vec<Value>>) {
    observe(names, streams, expected, false).await;
}

/// As [`observe_and_check`]; with `whole`, each stream is sent whole and closed (the client
/// reconnects and gets the values again: only the first ones are checked).
async fn observe(
    names: &[&str],
    streams: Streams,
    expected: HashMap<&str, Vec<Value>>,
    whole: bool,
) {
    let (received, gates) = watch::channel(0usize);
    let addr = serve(streams, gates, whole).await;
    let thing = thing(addr, names);
    let mut observer = EventSubscriber::new()
        .observe_all_properties(&thing, ObserveOptions::new())
        .unwrap();
    let modes: Vec<_> = observer
        .connections()
        .iter()
        .map(|(n, m, _)| (n.clone(), *m))
        .collect();
    assert_eq!(
        modes,
        names
            .iter()
            .map(|n| ((*n).to_owned(), ObserveMode::Sse))
            .collect::<Vec<_>>()
    );
    let total: usize = expected.values().map(Vec::len).sum();
    let mut seen: HashMap<String, Vec<Value>> = HashMap::new();
    // A guard against a hang, not a wait: each value is sent as soon as its gate opens.
    let collected = tokio::time::timeout(Duration::from_secs(20), async {
        while expected
            .iter()
            .any(|(n, v)| seen.get(*n).map_or(0, Vec::len) < v.len())
        {
            let update = observer.next().await.expect("the stream ended").unwrap();
            assert_eq!(update.thing_id.as_str(), "urn:test:per-property-sse");
            assert!(update.schema_violation.is_none(), "{update:?}");
            seen.entry(update.property.to_string())
                .or_default()
                .push(update.value.into_value());
            received.send_replace(seen.values().map(Vec::len).sum());
        }
    })
    .await;
    let states: Vec<_> = observer
        .connections()
        .iter()
        .map(|(n, _, rx)| (n.clone(), format!("{:?}", *rx.borrow())))
        .collect();
    assert!(
        collected.is_ok(),
        "not every value arrived: {:?} of {total}; connections {states:?}",
        seen.iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect::<Vec<_>>()
    );
    for (name, values) in expected {
        if whole {
            let first = seen.get(name).map(|s| &s[..values.len()]);
            assert_eq!(first, Some(&values[..]), "{name}");
            continue;
        }
        assert_eq!(seen.get(name), Some(&values), "{name}");
        assert_eq!(
            observer
                .history(name)
                .map(|h| h.iter().map(|(_, v)| v.value().clone()).collect::<Vec<_>>()),
            Some(values),
            "{name}"
        );
    }
}

/// Three properties: `temp` (small numbers), `status` (a string, then objects of one shape),
/// `blob` (8 KiB objects and a small one), with events of every style, interleaved.
fn three_properties() -> Script {
    let big = |tag| large(8 * 1024, tag);
    vec![
        ("temp", Style::Unnamed, json!(21.5)),
        ("status", Style::Named, json!("ok")),
        ("blob", Style::Unnamed, big(1)),
        ("temp", Style::Named, json!(22)),
        ("blob", Style::Named, big(2)),
        ("status", Style::Unnamed, json!({"mode": "eco", "since": 3})),
        ("status", Style::Busy, json!({"mode": "max", "since": 4})),
        ("blob", Style::Message, large(16, 3)),
        ("temp", Style::Busy, json!(-0.25)),
        ("blob", Style::Busy, big(4)),
        ("temp", Style::Message, json!(0)),
        ("status", Style::Named, json!({"mode": "eco", "since": 5})),
    ]
}

const THREE: [&str; 3] = ["temp", "status", "blob"];

#[tokio::test]
async fn every_value_of_every_property_arrives_from_its_own_stream() {
    let (streams, expected) = streams(&three_properties(), false, usize::MAX, false);
    observe_and_check(&THREE, streams, expected).await;
}

#[tokio::test]
async fn every_value_arrives_with_crlf_line_ends() {
    let (streams, expected) = streams(&three_properties(), false, usize::MAX, true);
    observe_and_check(&THREE, streams, expected).await;
}

/// Each event sent only after the one before it arrived: every value reaches an observer
/// that is waiting on all its connections.
#[tokio::test]
async fn every_value_arrives_when_each_comes_to_a_waiting_observer() {
    for crlf in [false, true] {
        let (streams, expected) = streams(&three_properties(), true, usize::MAX, crlf);
        observe_and_check(&THREE, streams, expected).await;
    }
}

#[tokio::test]
async fn two_properties_one_with_a_large_first_value() {
    let script = vec![
        ("big", Style::Unnamed, large(8 * 1024, 7)),
        ("small", Style::Named, json!(1)),
    ];
    for gated in [false, true] {
        let (streams, expected) = streams(&script, gated, usize::MAX, false);
        observe_and_check(&["big", "small"], streams, expected).await;
    }
}

/// Every stream sent in pieces of several sizes, so that events are cut inside the field
/// name, inside the data, between `\r` and `\n`, and several events share one piece.
#[tokio::test]
async fn every_value_arrives_when_events_are_cut_anywhere() {
    for (size, crlf, gated) in [
        (1, true, false),
        (7, false, true),
        (100, true, false),
        (4096, false, true),
        (8191, true, false),
        (8192, false, true),
    ] {
        let (streams, expected) = streams(&three_properties(), gated, size, crlf);
        observe_and_check(&THREE, streams, expected).await;
    }
}

/// Larger values than a parser's inline buffer and than its usual line buffer: 64 KiB
/// (below the client's default event limit), cut into pieces.
#[tokio::test]
async fn a_64_kib_value_arrives() {
    let script = vec![
        ("a", Style::Unnamed, large(64 * 1024, 9)),
        ("b", Style::Unnamed, json!(true)),
        ("a", Style::Named, large(64 * 1024, 10)),
    ];
    let (streams, expected) = streams(&script, true, 1500, false);
    observe_and_check(&["a", "b"], streams, expected).await;
}

/// A server that sends each stream whole with a `Content-Length` and closes, as a fixed
/// response: every value of the body arrives before the client reconnects.
#[tokio::test]
async fn every_value_arrives_from_streams_sent_whole_and_closed() {
    for crlf in [false, true] {
        let (streams, expected) = streams(&three_properties(), false, usize::MAX, crlf);
        observe(&THREE, streams, expected, true).await;
    }
}

/// Streams that start with a UTF-8 byte order mark, whole or cut byte by byte: the first
/// event of each is read, named or not.
#[tokio::test]
async fn every_value_arrives_after_a_byte_order_mark() {
    for piece in [usize::MAX, 1] {
        let (streams, expected) = streams(&three_properties(), false, piece, false);
        let streams = streams
            .into_iter()
            .map(|(name, pieces)| {
                let bom = cut(b"\xEF\xBB\xBF", piece).into_iter().map(|p| (0, p));
                (name, bom.chain(pieces).collect())
            })
            .collect();
        observe_and_check(&THREE, streams, expected).await;
    }
}

/// Eight properties, eight connections to one host at once: none waits for another.
#[tokio::test]
async fn eight_properties_on_one_host_each_get_their_values() {
    const NAMES: [&str; 8] = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"];
    let script: Script = NAMES
        .iter()
        .enumerate()
        .flat_map(|(i, name)| {
            let n = i as u64;
            [
                (*name, Style::Unnamed, json!(n)),
                (*name, Style::Named, large(8 * 1024, n)),
            ]
        })
        .collect();
    for gated in [false, true] {
        let (streams, expected) = streams(&script, gated, usize::MAX, false);
        observe_and_check(&NAMES, streams, expected).await;
    }
}
