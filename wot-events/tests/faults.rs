//! Fault injection under `wot-events`: an event subscription and a property observer (one
//! affordance each, and one shared Thing-level connection for all events / all properties),
//! opened from a Thing Description whose WoT Profile SSE forms point at a fault-injecting TCP
//! proxy (`wot-testkit`'s [`Proxy`]) in front of an SSE server (`wot-testkit`'s [`Origin`]).
//!
//! The server numbers the events of each feed 1, 2, 3, … (`id: N`, `event: <affordance
//! name>`, JSON data on two `data:` lines so that a cut can fall inside one event) and either
//! replays after the `Last-Event-ID` the client sends or acts as a live feed. The proxy applies
//! one fault per connection, in order: a cut in the middle of a line, a cut between the data
//! lines of one event, 500, 503 with `Retry-After`, a silent server (no response head), refused
//! connections for a while, a stall in the middle of an event (no bytes past the idle
//! timeout), slow delivery, and a cut after the last data line of an event but before the
//! blank line that ends it.
//!
//! What must hold:
//! * with server replay, each subscription and observer delivers every value exactly once,
//!   whole, in order and under the right affordance name, and reports every fault as a
//!   recoverable error item;
//! * without server replay, the lost values are not hidden: the error for the broken
//!   connection is yielded exactly where the values stop being consecutive, and for events the
//!   record's `event_id` shows the jump;
//! * a refusal longer than the attempt limit ends the stream with one terminal error.
//!
//! Everything runs on tokio's paused clock (the sockets are real, on 127.0.0.1; the clock only
//! moves when every task waits, and loopback I/O is ready by then), so the backoff waits, the
//! 3 s `Retry-After`, the 5 s refusal, the 10 s idle timeouts and the 2 s delays take no real
//! time.

use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout, timeout_at};
use wot_events::{
    ConnectionState, ConsumedThing, Error, ErrorKind, EventRecord, EventSubscriber, ObserveMode,
    ObserveOptions, PropertyUpdate, ReconnectPolicy, SseClient, SubscribeOptions,
};

use wot_testkit::{Fault, Feed, Origin, Proxy, Replay, assert_gap_next_to_error};

const EVENT: &str = "overheat";
const OTHER_EVENT: &str = "door";
const PROPERTY: &str = "pressure";
const OTHER_PROPERTY: &str = "level";
const EVENT_PATH: &str = "/things/boiler/events/overheat";
const PROPERTY_PATH: &str = "/things/boiler/properties/pressure/observe";
/// The Thing-level `subscribeallevents` stream: odd values are `overheat`, even ones `door`.
const ALL_EVENTS_PATH: &str = "/things/boiler/events";
/// The Thing-level `observeallproperties` stream: odd values are `pressure`, even ones `level`.
const ALL_PROPERTIES_PATH: &str = "/things/boiler/properties/observe";
const TOTAL: u64 = 40;

fn one_event(_: u64) -> &'static str {
    EVENT
}

fn one_property(_: u64) -> &'static str {
    PROPERTY
}

fn all_events(n: u64) -> &'static str {
    if n % 2 == 1 { EVENT } else { OTHER_EVENT }
}

fn all_properties(n: u64) -> &'static str {
    if n % 2 == 1 { PROPERTY } else { OTHER_PROPERTY }
}

/// The JSON data of event `n`, on two lines.
fn event_data(n: u64) -> String {
    format!("{{\"seq\":{n},\n\"note\":\"line two of {n}\"}}")
}

fn event_value(n: u64) -> Value {
    json!({"seq": n, "note": format!("line two of {n}")})
}

/// The JSON value of the property's `n`th observation, on two lines.
fn property_data(n: u64) -> String {
    format!("{{\"seq\":{n},\n\"bar\":{}}}", n * 10)
}

fn property_value(n: u64) -> Value {
    json!({"seq": n, "bar": n * 10})
}

/// Every feed of the boiler, `total` values each.
async fn start_origin(total: u64, replay: Replay) -> Origin {
    let feed = |path, names: fn(u64) -> &'static str, data: fn(u64) -> String| {
        Feed::new(path, total)
            .event_types(move |n| names(n).to_owned())
            .data(data)
            .replay(replay)
    };
    Origin::start([
        feed(EVENT_PATH, one_event, event_data),
        feed(PROPERTY_PATH, one_property, property_data),
        feed(ALL_EVENTS_PATH, all_events, event_data),
        feed(ALL_PROPERTIES_PATH, all_properties, property_data),
    ])
    .await
    .unwrap()
}

/// The boiler's TD: relative hrefs under a `base` that is the proxy, with the WoT Profile SSE
/// forms wot-events picks (`subscribeevent` / `observeproperty` per affordance,
/// `subscribeallevents` / `observeallproperties` for the Thing, subprotocol `sse`), plus
/// `readproperty` forms it must not fall back to.
fn boiler(proxy: &Proxy) -> ConsumedThing {
    let seq = json!({"type": "integer", "minimum": 1});
    let property = |name: &str| {
        json!({
            "type": "object",
            "required": ["seq", "bar"],
            "properties": {"seq": seq, "bar": {"type": "integer"}},
            "readOnly": true,
            "observable": true,
            "forms": [
                {"href": format!("properties/{name}"), "op": "readproperty"},
                {"href": format!("properties/{name}/observe"), "op": "observeproperty",
                 "subprotocol": "sse"}
            ]
        })
    };
    let event = |name: &str| {
        json!({
            "data": {
                "type": "object",
                "required": ["seq", "note"],
                "properties": {"seq": seq, "note": {"type": "string"}}
            },
            "forms": [{"href": format!("events/{name}"), "op": "subscribeevent", "subprotocol": "sse"}]
        })
    };
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:test:boiler",
        "title": "Boiler",
        "base": format!("http://{}/things/boiler/", proxy.addr()),
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {PROPERTY: property(PROPERTY), OTHER_PROPERTY: property(OTHER_PROPERTY)},
        "events": {EVENT: event(EVENT), OTHER_EVENT: event(OTHER_EVENT)},
        "forms": [
            {"href": "events", "op": "subscribeallevents", "subprotocol": "sse"},
            {"href": "properties/observe", "op": "observeallproperties", "subprotocol": "sse"}
        ]
    });
    ConsumedThing::from_slice(&serde_json::to_vec(&td).unwrap(), None).unwrap()
}

fn subscriber(max_attempts: Option<u32>) -> EventSubscriber {
    let sse = SseClient::builder()
        .idle_timeout(Duration::from_secs(10))
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::from_secs(1))
                .max_attempts(max_attempts)
                .seed(7),
        )
        .build()
        .unwrap();
    EventSubscriber::builder().sse_client(sse).build()
}

/// One fault of every kind, for a feed whose SSE `event` field is `name`.
fn every_fault(name: &str) -> Vec<Fault> {
    vec![
        // In the middle of the `event:` line of value 3.
        Fault::CutAfter("id: 3\nev".to_owned()),
        // Between the two data lines of value 7: the first half of the event is sent.
        Fault::CutAfter("data: {\"seq\":7,\n".to_owned()),
        Fault::Status(500, None),
        Fault::Status(503, Some("3".to_owned())),
        Fault::Silent,
        Fault::Refuse(Duration::from_secs(5)),
        // Inside value 15, then nothing: the idle timeout must notice.
        Fault::StallAfter(format!("id: 15\nevent: {}", &name[..2])),
        // After every data line of value 30 but before the blank line that dispatches it.
        Fault::CutAfter(match name {
            EVENT => "data: \"note\":\"line two of 30\"}\n".to_owned(),
            _ => "data: \"bar\":300}\n".to_owned(),
        }),
        // Last, as this connection carries the rest of the feed: every chunk 2 s late (below
        // the 10 s idle timeout).
        Fault::Delay(Duration::from_secs(2)),
    ]
}

/// What a stream yielded, in order: the sequence number of each value, or the error.
type Seen = Vec<Result<u64, Error>>;

/// Reads until `values` values arrived (or the stream ended), within ten minutes of paused
/// time; `check` validates each value and gives its sequence number.
async fn read_values<S, T>(stream: &mut S, values: usize, check: impl Fn(&T) -> u64) -> Seen
where
    S: Stream<Item = Result<T, Error>> + Unpin,
{
    let mut out = Vec::new();
    let mut count = 0;
    let reading = async {
        while count < values {
            match stream.next().await {
                Some(Ok(value)) => {
                    count += 1;
                    out.push(Ok(check(&value)));
                }
                Some(Err(error)) => out.push(Err(error)),
                None => break,
            }
        }
    };
    timeout(Duration::from_secs(600), reading)
        .await
        .expect("the stream stalled for ten minutes of paused time");
    out
}

/// Reads until the value with sequence number `last` arrived.
async fn read_until<S, T>(stream: &mut S, last: u64, check: impl Fn(&T) -> u64) -> Seen
where
    S: Stream<Item = Result<T, Error>> + Unpin,
{
    let mut out = Vec::new();
    let reading = async {
        while let Some(item) = stream.next().await {
            let item = item.map(|value| check(&value));
            let done = matches!(item, Ok(n) if n == last);
            out.push(item);
            if done {
                break;
            }
        }
    };
    timeout(Duration::from_secs(600), reading)
        .await
        .expect("the stream stalled for ten minutes of paused time");
    out
}

/// An event record must be whole: its name and data are exactly what the server sent for its
/// id (`names` gives the event name of each id).
fn check_record(record: &EventRecord, names: fn(u64) -> &'static str) -> u64 {
    let n: u64 = record
        .event_id
        .as_deref()
        .expect("a record without event id")
        .parse()
        .unwrap();
    assert_eq!(record.thing_id, "urn:test:boiler");
    assert_eq!(record.event, names(n));
    assert_eq!(record.data, event_value(n), "partial or mixed event");
    n
}

/// A property update must be whole, for the right property, fit the schema, and carry the
/// SSE id the server sent with it.
fn check_update(update: &PropertyUpdate, names: fn(u64) -> &'static str) -> u64 {
    let n = update.value["seq"].as_u64().expect("no sequence number");
    assert_eq!(update.event_id.as_deref(), Some(n.to_string().as_str()));
    assert_eq!(update.property, names(n));
    assert_eq!(update.value, property_value(n), "partial or mixed value");
    assert_eq!(update.schema_violation, None);
    n
}

fn sequence(seen: &Seen) -> Vec<u64> {
    seen.iter()
        .filter_map(|s| s.as_ref().ok().copied())
        .collect()
}

fn errors(seen: &Seen) -> Vec<&Error> {
    seen.iter().filter_map(|s| s.as_ref().err()).collect()
}

/// After the last value, no further value arrives (errors from the quiet server are fine).
async fn assert_no_more_values<S, T>(stream: &mut S, within: Duration)
where
    S: Stream<Item = Result<T, Error>> + Unpin,
    T: std::fmt::Debug,
{
    let deadline = Instant::now() + within;
    loop {
        match timeout_at(deadline, stream.next()).await {
            Err(_) | Ok(None) => return,
            Ok(Some(Ok(value))) => panic!("an extra value after the last one: {value:?}"),
            Ok(Some(Err(_))) => {}
        }
    }
}

/// Every fault of [`every_fault`] was reported, as a recoverable error of the SSE transport.
fn assert_every_fault_reported(seen: &Seen) {
    let errors = errors(seen);
    // No half-received event surfaces as invalid data: only transport errors.
    assert!(
        errors
            .iter()
            .all(|e| e.kind() != ErrorKind::InvalidData && !e.is_terminal()),
        "{errors:?}"
    );
    let reported = |kind: ErrorKind| errors.iter().any(|e| e.kind() == kind);
    assert!(reported(ErrorKind::Interrupted), "no cut: {errors:?}");
    assert!(reported(ErrorKind::Timeout), "no timeout: {errors:?}");
    assert!(reported(ErrorKind::Unreachable), "no refusal: {errors:?}");
    let status = |code: u16| {
        errors
            .iter()
            .any(|e| e.status().map(|s| s.as_u16()) == Some(code))
    };
    assert!(status(500) && status(503), "{errors:?}");
}

/// Every request after the first resumed from the last delivered value, and the 503's
/// `Retry-After` (3 s) was honoured before the next attempt.
fn assert_resumed(origin: &Origin, proxy: &Proxy, path: &str, script: &[Fault]) {
    let resumed = origin.resumed_from(path);
    assert!(resumed.windows(2).all(|w| w[0] <= w[1]), "{resumed:?}");
    // After the two cuts at values 3 and 7, and the one before the end of value 30.
    for id in [2, 6, 29] {
        assert!(resumed.contains(&id), "{resumed:?}");
    }
    let waited = proxy
        .wait_after(&Fault::Status(503, Some("3".to_owned())))
        .unwrap();
    assert!(waited >= Duration::from_secs(3), "waited only {waited:?}");
    let accepted = proxy.accepted();
    // Every fault of the script was used (later connections, which pass, are the idle
    // timeouts of the quiet server after the last value).
    let used: Vec<&Fault> = accepted.iter().map(|(_, fault)| fault).collect();
    assert!(used.len() >= script.len(), "{used:?}");
    assert!(used.iter().zip(script).all(|(a, b)| *a == b), "{used:?}");
}

/// Reads [`TOTAL`] values from `stream`, which reads `path` through a proxy playing `script`:
/// every value arrives once and in order, every fault is reported and recovered from by
/// resuming, and nothing more arrives afterwards.
async fn assert_every_value_once_in_order<S, T>(
    stream: &mut S,
    check: impl Fn(&T) -> u64,
    (origin, proxy, path, script): (&Origin, &Proxy, &str, &[Fault]),
) where
    S: Stream<Item = Result<T, Error>> + Unpin,
    T: std::fmt::Debug,
{
    let seen = read_values(stream, TOTAL as usize, check).await;
    assert_eq!(sequence(&seen), (1..=TOTAL).collect::<Vec<_>>());
    assert_every_fault_reported(&seen);
    assert_resumed(origin, proxy, path, script);
    assert_no_more_values(stream, Duration::from_secs(60)).await;
    // Only the SSE form was used: no other connection, no fallback to reading properties.
    let requests = origin.requests();
    assert!(requests.iter().all(|r| r.path == path), "{requests:?}");
}

#[tokio::test(start_paused = true)]
async fn with_resume_an_event_subscription_gets_every_event_once_and_in_order() {
    let origin = start_origin(TOTAL, Replay::FromLastEventId).await;
    let script = every_fault(EVENT);
    let proxy = Proxy::start(origin.addr(), script.clone()).await.unwrap();
    let mut events = subscriber(None)
        .subscribe(&boiler(&proxy), EVENT, SubscribeOptions::new())
        .unwrap();

    let check = |r: &EventRecord| check_record(r, one_event);
    let setup = (&origin, &proxy, EVENT_PATH, &script[..]);
    assert_every_value_once_in_order(&mut events, check, setup).await;
    // The buffer holds the last 100 records: all 40, once each, in order.
    let buffered: Vec<u64> = events.buffered_records().iter().map(check).collect();
    assert_eq!(buffered, (1..=TOTAL).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn with_resume_a_property_observer_gets_every_value_once_and_in_order() {
    let origin = start_origin(TOTAL, Replay::FromLastEventId).await;
    let script = every_fault(PROPERTY);
    let proxy = Proxy::start(origin.addr(), script.clone()).await.unwrap();
    let mut observer = subscriber(None)
        .observe_property(&boiler(&proxy), PROPERTY, ObserveOptions::new())
        .unwrap();
    assert_eq!(observer.connections()[0].1, ObserveMode::Sse);

    let check = |u: &PropertyUpdate| check_update(u, one_property);
    let setup = (&origin, &proxy, PROPERTY_PATH, &script[..]);
    assert_every_value_once_in_order(&mut observer, check, setup).await;
    let history: Vec<Value> = observer
        .history(PROPERTY)
        .unwrap()
        .iter()
        .map(|(_, v)| v.value().clone())
        .collect();
    assert_eq!(history, (1..=TOTAL).map(property_value).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn with_resume_one_connection_for_all_events_gets_every_event_once_and_in_order() {
    let origin = start_origin(TOTAL, Replay::FromLastEventId).await;
    let script = every_fault(EVENT);
    let proxy = Proxy::start(origin.addr(), script.clone()).await.unwrap();
    let thing = boiler(&proxy);
    let mut all = subscriber(None)
        .subscribe_all([&thing], SubscribeOptions::new())
        .unwrap();
    assert_eq!(all.subscriptions().count(), 1, "one shared connection");

    let check = |r: &EventRecord| check_record(r, all_events);
    let setup = (&origin, &proxy, ALL_EVENTS_PATH, &script[..]);
    assert_every_value_once_in_order(&mut all, check, setup).await;
}

#[tokio::test(start_paused = true)]
async fn with_resume_one_connection_for_all_properties_gets_every_value_once_and_in_order() {
    let origin = start_origin(TOTAL, Replay::FromLastEventId).await;
    let script = every_fault(PROPERTY);
    let proxy = Proxy::start(origin.addr(), script.clone()).await.unwrap();
    let mut observer = subscriber(None)
        .observe_all_properties(&boiler(&proxy), ObserveOptions::new())
        .unwrap();
    let connections: Vec<_> = observer
        .connections()
        .iter()
        .map(|c| (c.0.clone(), c.1))
        .collect();
    assert_eq!(connections, [("*".to_owned(), ObserveMode::Sse)]);

    let check = |u: &PropertyUpdate| check_update(u, all_properties);
    let setup = (&origin, &proxy, ALL_PROPERTIES_PATH, &script[..]);
    assert_every_value_once_in_order(&mut observer, check, setup).await;
    for (name, first) in [(PROPERTY, 1), (OTHER_PROPERTY, 2)] {
        let history: Vec<Value> = observer
            .history(name)
            .unwrap()
            .iter()
            .map(|(_, v)| v.value().clone())
            .collect();
        let expected: Vec<Value> = (first..=TOTAL).step_by(2).map(property_value).collect();
        assert_eq!(history, expected, "{name}");
    }
}

/// Without replay: values 1 to 3 arrive, the half-sent value 4 does not, the error for the
/// cut comes next, and the values after it are not consecutive with 3.
fn assert_gap_reported_at_the_cut(seen: &Seen) {
    let values: Vec<Option<u64>> = seen.iter().map(|s| s.as_ref().ok().copied()).collect();
    assert_gap_next_to_error(&values, 4);
    let errors = errors(seen);
    assert!(
        matches!(errors.as_slice(), [e] if e.kind() == ErrorKind::Interrupted && !e.is_terminal()),
        "{seen:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_replay_an_event_subscription_shows_the_gap_next_to_its_error() {
    let origin = start_origin(30, Replay::Live).await;
    let cut = Fault::CutAfter("data: {\"seq\":4,\n".to_owned());
    let proxy = Proxy::start(origin.addr(), vec![cut]).await.unwrap();
    let mut events = subscriber(None)
        .subscribe(&boiler(&proxy), EVENT, SubscribeOptions::new())
        .unwrap();

    let seen = read_until(&mut events, 30, |r| check_record(r, one_event)).await;
    // `check_record` takes each record's number from its `event_id`: the user sees the jump
    // in the ids the server sent.
    assert_gap_reported_at_the_cut(&seen);
    // The client did ask to resume; the server could not.
    assert_eq!(
        origin.last_event_ids(EVENT_PATH),
        [None, Some("3".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn without_replay_a_property_observer_shows_the_gap_next_to_its_error() {
    let origin = start_origin(30, Replay::Live).await;
    let cut = Fault::CutAfter("data: {\"seq\":4,\n".to_owned());
    let proxy = Proxy::start(origin.addr(), vec![cut]).await.unwrap();
    let mut observer = subscriber(None)
        .observe_property(&boiler(&proxy), PROPERTY, ObserveOptions::new())
        .unwrap();

    let seen = read_until(&mut observer, 30, |u| check_update(u, one_property)).await;
    assert_gap_reported_at_the_cut(&seen);
    assert_eq!(
        origin.last_event_ids(PROPERTY_PATH),
        [None, Some("3".to_owned())]
    );
}

#[tokio::test(start_paused = true)]
async fn refusing_longer_than_the_attempt_limit_ends_both_streams_with_a_terminal_error() {
    let origin = start_origin(5, Replay::FromLastEventId).await;
    let refuse = Fault::Refuse(Duration::from_secs(3600));
    let proxy = Proxy::start(origin.addr(), vec![refuse]).await.unwrap();
    let subscriber = subscriber(Some(3));
    let thing = boiler(&proxy);
    let mut events = subscriber
        .subscribe(&thing, EVENT, SubscribeOptions::new())
        .unwrap();
    let mut observer = subscriber
        .observe_property(&thing, PROPERTY, ObserveOptions::new())
        .unwrap();

    let event_items = read_values(&mut events, 1, |r| check_record(r, one_event)).await;
    let property_items = read_values(&mut observer, 1, |u| check_update(u, one_property)).await;
    for seen in [&event_items, &property_items] {
        assert!(sequence(seen).is_empty(), "{seen:?}");
        let last = errors(seen).last().copied().expect("no error");
        assert!(
            last.kind() == ErrorKind::GaveUp && last.is_terminal(),
            "{last}"
        );
        assert!(
            errors(seen)[..errors(seen).len() - 1]
                .iter()
                .all(|e| !e.is_terminal())
        );
    }
    assert!(events.next().await.is_none());
    assert!(events.is_closed());
    assert!(matches!(
        events.connection_state(),
        ConnectionState::Closed { .. }
    ));
    assert!(observer.next().await.is_none());
    assert!(matches!(
        *observer.connections()[0].2.borrow(),
        ConnectionState::Closed { .. }
    ));
    assert!(origin.requests().is_empty());
}
