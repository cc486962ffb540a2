//! Fault injection: a TCP proxy on 127.0.0.1 between the client and a small SSE server.
//!
//! The server numbers its events 1, 2, 3, … (`id: N`) and, in replay mode, starts each response
//! after the `Last-Event-ID` the client sends. The proxy applies one fault per connection, in
//! order: it cuts the connection in the middle of a line or of an event, answers 500 or 503
//! with `Retry-After` itself, accepts and sends nothing, stalls after some bytes, delays every
//! chunk, or refuses connections for a while. Everything runs on tokio's paused clock, so the
//! backoff waits and idle timeouts take no real time. The server and the proxy are
//! `wot-testkit`'s [`Origin`] and [`Proxy`], shared with `wot-events`' fault tests.
//!
//! With resume the consumer must see every event exactly once and in order; without replay
//! the lost events must show as a gap next to the error for the broken connection.

// The HTTP client is the `client` feature; without it only the parser tests run.
#![cfg(feature = "client")]

use std::time::Duration;

use futures::StreamExt;
use tokio::time::{Instant, timeout};
use wot_sse::{ConnectionState, Error, Event, EventStream, ReconnectPolicy, SseClient};
use wot_testkit::{Fault, Feed, Origin, Proxy, Replay, assert_gap_next_to_error};

const PATH: &str = "/events";

/// The server: events 1 to `total`, each with type `tick` and two data lines, so a cut can
/// fall between the lines of one event.
async fn start_origin(total: u64, replay: Replay) -> Origin {
    let feed = Feed::new(PATH, total)
        .event_type("tick")
        .data(expected_data)
        .replay(replay);
    Origin::start([feed]).await.unwrap()
}

fn expected_data(n: u64) -> String {
    format!("{{\"seq\":{n}}}\nline two of {n}")
}

async fn start_proxy(origin: &Origin, script: Vec<Fault>) -> Proxy {
    Proxy::start(origin.addr(), script).await.unwrap()
}

fn cut_after(pattern: &str) -> Fault {
    Fault::CutAfter(pattern.to_owned())
}

fn client(idle: Duration, max_attempts: Option<u32>) -> SseClient {
    SseClient::builder()
        .idle_timeout(idle)
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::from_secs(1))
                .max_attempts(max_attempts)
                .seed(7),
        )
        .build()
        .unwrap()
}

fn connect(client: &SseClient, proxy: &Proxy) -> EventStream {
    client
        .get(format!("http://{}{PATH}", proxy.addr()))
        .connect()
        .unwrap()
}

/// Everything the stream yielded, in order.
#[derive(Debug)]
enum Seen {
    Event(Event),
    Error(Error),
}

/// Reads until `events` events arrived (or the stream ended), within ten minutes of paused time.
async fn read_events(stream: &mut EventStream, events: usize) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut count = 0;
    let reading = async {
        while count < events {
            match stream.next().await {
                Some(Ok(event)) => {
                    count += 1;
                    out.push(Seen::Event(event));
                }
                Some(Err(error)) => out.push(Seen::Error(error)),
                None => break,
            }
        }
    };
    timeout(Duration::from_secs(600), reading)
        .await
        .expect("the stream stalled for ten minutes of paused time");
    out
}

fn ids(seen: &[Seen]) -> Vec<u64> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event(event) => Some(event.id().parse().unwrap()),
            Seen::Error(_) => None,
        })
        .collect()
}

fn errors(seen: &[Seen]) -> Vec<&Error> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Error(error) => Some(error),
            Seen::Event(_) => None,
        })
        .collect()
}

/// Every event is whole: its data is exactly what the server sent for its id.
fn assert_whole(seen: &[Seen]) {
    for s in seen {
        if let Seen::Event(event) = s {
            let n: u64 = event.id().parse().unwrap();
            assert_eq!(event.event_type(), "tick");
            assert_eq!(event.data(), expected_data(n), "partial or mixed event");
        }
    }
}

/// After the last event, no further event arrives (errors from the quiet server are fine).
async fn assert_no_more_events(stream: &mut EventStream, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) | Ok(None) => return,
            Ok(Some(Ok(event))) => panic!("an extra event after the last one: {event:?}"),
            Ok(Some(Err(_))) => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn with_resume_every_event_arrives_once_and_in_order_through_every_fault() {
    const TOTAL: u64 = 40;
    let origin = start_origin(TOTAL, Replay::FromLastEventId).await;
    let proxy = start_proxy(
        &origin,
        vec![
            // In the middle of the `event:` line of event 3.
            cut_after("id: 3\nev"),
            // Between the two data lines of event 7: the first half of the event is sent.
            cut_after("data: {\"seq\":7}\n"),
            Fault::Status(500, None),
            Fault::Status(503, Some("3".to_owned())),
            Fault::Silent,
            Fault::Refuse(Duration::from_secs(5)),
            // Inside the chunk of event 15, then nothing: the idle timeout must notice.
            Fault::StallAfter("id: 15\nevent: ti".to_owned()),
            // After every data line of event 30, before the blank line that dispatches it.
            cut_after("data: line two of 30\n"),
            // Last, as this connection carries the rest of the feed.
            Fault::Delay(Duration::from_secs(2)),
        ],
    )
    .await;
    let client = client(Duration::from_secs(10), None);
    let mut stream = connect(&client, &proxy);

    let seen = read_events(&mut stream, TOTAL as usize).await;
    assert_eq!(ids(&seen), (1..=TOTAL).collect::<Vec<_>>());
    assert_whole(&seen);
    assert_no_more_events(&mut stream, Duration::from_secs(60)).await;

    // Each fault was reported as a recoverable error.
    let errors = errors(&seen);
    assert!(errors.iter().all(|e| !e.is_terminal()), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.is_body()),
        "no body error: {errors:?}"
    );
    let status = |code: u16| {
        errors
            .iter()
            .any(|e| e.status().map(|s| s.as_u16()) == Some(code))
    };
    assert!(status(500) && status(503), "{errors:?}");
    assert!(errors.iter().any(|e| e.is_timeout()), "{errors:?}");
    assert!(errors.iter().any(|e| e.is_connect()), "{errors:?}");

    // Every request after the first resumed from the last delivered event.
    let resumed = origin.resumed_from(PATH);
    assert!(resumed.windows(2).all(|w| w[0] <= w[1]), "{resumed:?}");
    assert!(resumed.contains(&2) && resumed.contains(&6), "{resumed:?}");

    // The 503's Retry-After (3 s) was honoured before the next attempt.
    let waited = proxy
        .wait_after(&Fault::Status(503, Some("3".to_owned())))
        .unwrap();
    assert!(waited >= Duration::from_secs(3), "waited only {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn delays_below_the_idle_timeout_need_no_reconnect() {
    let origin = start_origin(20, Replay::FromLastEventId).await;
    let proxy = start_proxy(&origin, vec![Fault::Delay(Duration::from_secs(4))]).await;
    let client = client(Duration::from_secs(10), Some(3));
    let mut stream = connect(&client, &proxy);

    let seen = read_events(&mut stream, 20).await;
    assert_eq!(ids(&seen), (1..=20).collect::<Vec<_>>());
    assert!(errors(&seen).is_empty(), "{seen:?}");
    assert_eq!(origin.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_replay_the_gap_is_visible_next_to_its_error() {
    let origin = start_origin(30, Replay::Live).await;
    // Cut between the data lines of event 4: its first half was on the wire.
    let proxy = start_proxy(&origin, vec![cut_after("data: {\"seq\":4}\n")]).await;
    let client = client(Duration::from_secs(10), None);
    let mut stream = connect(&client, &proxy);

    let mut seen = Vec::new();
    let reading = async {
        while let Some(item) = stream.next().await {
            let last = matches!(&item, Ok(event) if event.id() == "30");
            seen.push(match item {
                Ok(event) => Seen::Event(event),
                Err(error) => Seen::Error(error),
            });
            if last {
                break;
            }
        }
    };
    timeout(Duration::from_secs(600), reading).await.unwrap();
    assert_whole(&seen);

    // The jump over the lost events comes right after the error for the broken connection.
    let values: Vec<Option<u64>> = seen
        .iter()
        .map(|s| match s {
            Seen::Event(e) => Some(e.id().parse().unwrap()),
            Seen::Error(_) => None,
        })
        .collect();
    assert_gap_next_to_error(&values, 4);
    // The client did ask to resume; the server could not.
    let asked = origin.last_event_ids(PATH);
    assert_eq!(asked, vec![None, Some("3".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn refusing_longer_than_the_attempt_limit_ends_the_stream_with_a_clear_error() {
    let origin = start_origin(5, Replay::FromLastEventId).await;
    let proxy = start_proxy(&origin, vec![Fault::Refuse(Duration::from_secs(3600))]).await;
    let client = client(Duration::from_secs(10), Some(3));
    let mut stream = connect(&client, &proxy);
    let state = stream.state();

    let seen = read_events(&mut stream, 1).await;
    assert!(ids(&seen).is_empty());
    let last = errors(&seen).last().copied().cloned().expect("no error");
    assert!(last.is_retries_exhausted() && last.is_terminal(), "{last}");
    assert!(last.to_string().contains('3'), "{last}");
    assert!(stream.next().await.is_none());
    assert!(matches!(&*state.borrow(), ConnectionState::Closed { .. }));
    assert_eq!(origin.requests().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stall_before_the_headers_is_an_idle_timeout_and_the_stream_resumes() {
    let origin = start_origin(3, Replay::FromLastEventId).await;
    let proxy = start_proxy(&origin, vec![Fault::Silent, Fault::Silent]).await;
    let client = client(Duration::from_secs(10), Some(5));
    let mut stream = connect(&client, &proxy);
    let started = Instant::now();

    let seen = read_events(&mut stream, 3).await;
    assert_eq!(ids(&seen), vec![1, 2, 3]);
    let errors = errors(&seen);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e.is_timeout()), "{errors:?}");
    // Two idle timeouts of 10 s passed on the paused clock.
    assert!(started.elapsed() >= Duration::from_secs(20));
}
