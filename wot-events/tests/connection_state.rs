//! The connection state of subscriptions and observers reads the same over every transport:
//! a failure ends in `Closed { Failed(error) }`, a close asked for in `Closed { Requested }`,
//! and retries follow the subscriber's `ReconnectPolicy`. Real servers on 127.0.0.1, tokio's
//! paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use futures::StreamExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use wot_events::{
    CloseReason, ConnectionState, ConsumedThing, ErrorKind, EventSubscriber, ObserveOptions,
    ReconnectPolicy, SubscribeOptions,
};

/// Serves `app` on 127.0.0.1; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A server that answers every request with `status`, counting them.
async fn answering(status: StatusCode) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let base = serve(Router::new().fallback(move || {
        count.fetch_add(1, Ordering::SeqCst);
        async move { status }
    }))
    .await;
    (base, hits)
}

/// A Thing with property `p` (polled), event `lp` (long polling) and event `sse` (SSE).
fn thing(base: &str) -> ConsumedThing {
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:dev:state", "title": "State",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": {"p": {"type": "integer", "forms": [{"href": format!("{base}/p")}]}},
        "events": {
            "lp": {"forms": [{"href": format!("{base}/lp"), "subprotocol": "longpoll"}]},
            "sse": {"forms": [{"href": format!("{base}/sse"), "subprotocol": "sse"}]}
        }
    });
    let thing = wot_events::wot_td::Document::from_value(td)
        .unwrap()
        .into_thing()
        .unwrap();
    ConsumedThing::new(thing, None).unwrap()
}

/// The exact schedule: 1 s growing by 1.5, no jitter.
fn exact() -> ReconnectPolicy {
    ReconnectPolicy::new().jitter(0.0)
}

/// The error a closed state carries, if it is a failure.
fn failure(state: &watch::Receiver<ConnectionState>) -> Option<wot_events::Error> {
    match &*state.borrow() {
        ConnectionState::Closed {
            reason: CloseReason::Failed(error),
        } => Some(error.clone()),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_polled_property_answered_404_ends_in_a_failure_state() {
    let (base, hits) = answering(StatusCode::NOT_FOUND).await;
    let sub = EventSubscriber::new();
    let mut observer = sub
        .observe_property(&thing(&base), "p", ObserveOptions::new())
        .unwrap();
    let state = observer.connections()[0].2.clone();
    assert_eq!(*state.borrow(), ConnectionState::Connecting);

    let error = observer.next().await.unwrap().unwrap_err();
    assert!(error.is_terminal(), "{error}");
    assert!(observer.next().await.is_none());
    let failed = failure(&state).expect("a failure, not `Requested`");
    assert_eq!(failed.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(failed.kind(), ErrorKind::Status);
    assert_eq!(failed.url(), Some(format!("{base}/p").as_str()));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "a 404 is not retried");

    // Dropping the observer afterwards leaves the failure in place.
    drop(observer);
    assert!(failure(&state).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_backs_off_on_the_policy_and_ends_in_a_gave_up_failure() {
    let (base, hits) = answering(StatusCode::SERVICE_UNAVAILABLE).await;
    let sub = EventSubscriber::builder()
        .reconnect(exact().max_attempts(Some(3)))
        .build();
    let mut events = sub
        .subscribe(&thing(&base), "lp", SubscribeOptions::new())
        .unwrap();
    let state = events.state();
    let start = tokio::time::Instant::now();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let error = events.next().await.unwrap().unwrap_err();
        assert!(!error.is_terminal(), "{error}");
        seen.push(events.connection_state());
    }
    assert_eq!(
        seen,
        [(1, 1000), (2, 1500)].map(|(attempt, ms)| ConnectionState::Reconnecting {
            attempt,
            delay: Duration::from_millis(ms)
        })
    );
    let last = events.next().await.unwrap().unwrap_err();
    assert_eq!(last.kind(), ErrorKind::GaveUp, "{last}");
    assert_eq!(last.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert!(events.next().await.is_none());
    let failed = failure(&state).expect("a failure");
    assert_eq!(failed.kind(), ErrorKind::GaveUp);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    // Two waits: 1 s and 1.5 s, and nothing more.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_millis(2600),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_sse_subscription_answered_404_ends_in_the_same_failure_state() {
    let (base, _) = answering(StatusCode::NOT_FOUND).await;
    let sub = EventSubscriber::new();
    let mut events = sub
        .subscribe(&thing(&base), "sse", SubscribeOptions::new())
        .unwrap();
    let state = events.state();
    let error = events.next().await.unwrap().unwrap_err();
    assert!(
        error.is_terminal() && error.kind() == ErrorKind::Status,
        "{error}"
    );
    assert!(events.next().await.is_none());
    let failed = failure(&state).expect("a failure");
    assert_eq!(failed.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(failed.url(), Some(format!("{base}/sse").as_str()));
}

#[tokio::test(start_paused = true)]
async fn an_sse_subscription_reports_its_reconnects() {
    let (base, _) = answering(StatusCode::BAD_GATEWAY).await;
    let sub = EventSubscriber::builder()
        .reconnect(exact().max_attempts(None))
        .build();
    let mut events = sub
        .subscribe(&thing(&base), "sse", SubscribeOptions::new())
        .unwrap();
    let error = events.next().await.unwrap().unwrap_err();
    assert!(!error.is_terminal(), "{error}");
    // The wait starts when the stream is polled past the error.
    let _ = tokio::time::timeout(Duration::from_millis(10), events.next()).await;
    assert!(
        matches!(
            events.connection_state(),
            ConnectionState::Reconnecting { attempt: 1, .. }
        ),
        "{:?}",
        events.connection_state()
    );
}

#[tokio::test(start_paused = true)]
async fn unsubscribing_or_dropping_reads_as_requested_on_every_transport() {
    let base = serve(Router::new().fallback(|| async {
        // Never answers within the test.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        StatusCode::OK
    }))
    .await;
    let sub = EventSubscriber::new();
    let thing = thing(&base);
    let requested = ConnectionState::Closed {
        reason: CloseReason::Requested,
    };
    for event in ["lp", "sse"] {
        let mut events = sub
            .subscribe(&thing, event, SubscribeOptions::new())
            .unwrap();
        let state = events.state();
        let pending = tokio::time::timeout(Duration::from_millis(50), events.next()).await;
        assert!(pending.is_err(), "{event}");
        assert_eq!(*state.borrow(), ConnectionState::Connecting, "{event}");
        events.unsubscribe();
        assert_eq!(*state.borrow(), requested, "{event}");
        assert!(events.next().await.is_none());
    }
    let observer = sub
        .observe_property(&thing, "p", ObserveOptions::new())
        .unwrap();
    let state = observer.connections()[0].2.clone();
    drop(observer);
    assert_eq!(*state.borrow(), requested);
}
