//! A healthy server that is simply quiet: it answers, sends one event and then nothing, and
//! sends no heartbeat comments. Each idle timeout is a recoverable error and a reconnect; with
//! the default settings (idle timeout 45 s, at most 5 failed attempts in a row) the stream must
//! keep going, because a connection the server accepted is not a failed attempt.

// The HTTP client is the `client` feature; without it only the parser tests run.
#![cfg(feature = "client")]

use std::time::Duration;

use futures::StreamExt;
use tokio::time::{Instant, timeout};
use wot_sse::{ConnectionState, EventStream, SseClient};
use wot_testkit::{Fault, Feed, Origin, Proxy, Replay};

const PATH: &str = "/quiet";

/// A stream from a quiet origin, after the origin's one event.
async fn quiet_stream() -> (Origin, EventStream) {
    let origin = Origin::start([Feed::new(PATH, 1).replay(Replay::FromLastEventId)])
        .await
        .unwrap();
    let mut stream = SseClient::new()
        .get(format!("http://{}{PATH}", origin.addr()))
        .connect()
        .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(first.id(), "1");
    (origin, stream)
}

#[tokio::test(start_paused = true)]
async fn a_quiet_server_is_reconnected_to_for_as_long_as_it_answers() {
    let (origin, mut stream) = quiet_stream().await;

    // Half an hour of silence: about 40 idle timeouts, far beyond the 5-attempt limit.
    let started = Instant::now();
    let mut idle_errors = 0;
    while started.elapsed() < Duration::from_secs(30 * 60) {
        let item = stream.next().await.expect("the stream keeps going");
        let error = item.expect_err("no event: the server has nothing new");
        assert!(error.is_timeout(), "only idle timeouts, got {error}");
        assert!(
            !error.is_terminal(),
            "an idle timeout is not terminal: {error}"
        );
        idle_errors += 1;
    }
    assert!(idle_errors >= 35, "{idle_errors} idle timeouts in 30 min");
    let state = stream.state().borrow().clone();
    assert!(
        matches!(state, ConnectionState::Reconnecting { attempt: 1, .. }),
        "the attempt count starts again after every answered connection: {state:?}"
    );
    // The first connection and one reconnect per idle timeout but the last (still waiting);
    // every reconnect resumed after the one event, which was never delivered again.
    let ids = origin.last_event_ids(PATH);
    assert_eq!(ids.len(), idle_errors);
    assert!(
        ids.iter().skip(1).all(|id| id.as_deref() == Some("1")),
        "{ids:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_still_uses_up_the_attempts() {
    // The proxy accepts every connection and says nothing: no response head, so each idle
    // timeout is a failed attempt and the default limit of 5 ends the stream.
    let origin = Origin::start([Feed::new(PATH, 1)]).await.unwrap();
    let proxy = Proxy::start(origin.addr(), vec![Fault::Silent; 10])
        .await
        .unwrap();
    let mut stream = SseClient::new()
        .get(format!("http://{}{PATH}", proxy.addr()))
        .connect()
        .unwrap();
    let mut errors = Vec::new();
    let ended = timeout(Duration::from_secs(3600), async {
        while let Some(item) = stream.next().await {
            errors.push(item.expect_err("no event can arrive"));
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ends within the hour");
    let last = errors.last().expect("errors were reported");
    assert!(last.is_retries_exhausted(), "{last}");
    assert_eq!(errors.len(), 5, "{errors:?}");
}

/// The idle clock runs while the stream waits for the server, not while the application is
/// busy between polls: a consumer that takes 40 s over an event still gets the full 45 s.
#[tokio::test(start_paused = true)]
async fn time_between_polls_does_not_count_as_idle() {
    let (_origin, mut stream) = quiet_stream().await;
    tokio::time::sleep(Duration::from_secs(40)).await; // the application at work
    let waiting = Instant::now();
    let error = stream.next().await.unwrap().expect_err("nothing new");
    assert!(error.is_timeout(), "{error}");
    let waited = waiting.elapsed();
    assert!(
        waited >= wot_sse::DEFAULT_IDLE_TIMEOUT && waited < Duration::from_secs(46),
        "timed out {waited:?} after the stream began to wait"
    );
}
