//! Hostile or odd Things against real servers on 127.0.0.1: every byte count and duration a
//! Thing controls is bounded, fails with a typed error, and never stalls or panics.
//! Time-dependent tests run on tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use wot_events::{
    ConnectionState, ConsumedThing, ErrorKind, EventSubscriber, ObserveMode, ObserveOptions,
    ReconnectPolicy, SubscribeOptions,
};

/// Serves `app` on 127.0.0.1; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A server that accepts connections, reads what comes, and never answers. Counts
/// connections.
async fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    (format!("http://{addr}"), accepted)
}

/// A Thing with one event `e`, an SSE form at `{base}/e`, and no security.
fn sse_event_thing(base: &str, id: &str) -> ConsumedThing {
    thing(json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": id, "title": id,
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "events": {"e": {"forms": [{"href": format!("{base}/e"), "subprotocol": "sse"}]}}
    }))
}

fn thing(td: Value) -> ConsumedThing {
    ConsumedThing::new(
        wot_events::wot_td::Document::from_value(td)
            .unwrap()
            .into_thing()
            .unwrap(),
        None,
    )
    .unwrap()
}

/// A Thing with property `p` (read by polling) and event `e` (long polling) at `base`.
fn plain_thing(base: &str) -> ConsumedThing {
    thing(json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:dev:odd", "title": "Odd",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": {"p": {"type": "integer", "forms": [{"href": format!("{base}/p")}]}},
        "events": {"e": {"forms": [{"href": format!("{base}/e"), "subprotocol": "longpoll"}]}}
    }))
}

fn exact() -> ReconnectPolicy {
    ReconnectPolicy::new().jitter(0.0)
}

#[tokio::test]
async fn per_property_sse_forms_sending_plain_message_events_are_shown() {
    let sse = || async {
        (
            [(header::CONTENT_TYPE, "text/event-stream")],
            "data: 5\n\ndata: 6\n\n",
        )
    };
    let base = serve(
        Router::new()
            .route("/a", axum::routing::get(sse))
            .route("/b", axum::routing::get(sse)),
    )
    .await;
    let t = thing(json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:dev:plain", "title": "Plain",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": {
            "a": {"type": "integer", "observable": true, "forms": [
                {"href": format!("{base}/a"), "op": "observeproperty", "subprotocol": "sse"}]},
            "b": {"type": "integer", "observable": true, "forms": [
                {"href": format!("{base}/b"), "op": "observeproperty", "subprotocol": "sse"}]}
        }
    }));
    let sub = EventSubscriber::new();

    let mut one = sub
        .observe_property(&t, "a", ObserveOptions::new())
        .unwrap();
    let u = one.next().await.unwrap().unwrap();
    assert_eq!((&*u.property, u.value.value()), ("a", &json!(5)));

    let mut all = sub
        .observe_all_properties(&t, ObserveOptions::new())
        .unwrap();
    assert!(
        all.connections()
            .iter()
            .all(|(_, mode, _)| *mode == ObserveMode::Sse)
    );
    let mut got = Vec::new();
    while got.len() < 4 {
        let u = tokio::time::timeout(Duration::from_secs(10), all.next())
            .await
            .expect("updates of plain `message` events")
            .unwrap()
            .unwrap();
        got.push((u.property.to_string(), u.value.into_value()));
    }
    got.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        got,
        [
            ("a".to_owned(), json!(5)),
            ("a".to_owned(), json!(6)),
            ("b".to_owned(), json!(5)),
            ("b".to_owned(), json!(6))
        ]
    );
    assert_eq!(all.latest("b").unwrap().1, json!(6));
}

#[tokio::test(start_paused = true)]
async fn a_td_server_that_never_answers_times_out() {
    let (base, _) = silent_server().await;
    let sub = EventSubscriber::builder()
        .request_timeout(Duration::from_secs(5))
        .build();
    let start = tokio::time::Instant::now();
    let err = sub.fetch_thing(format!("{base}/td")).await.unwrap_err();
    assert!(
        err.is_timeout() && err.to_string().contains("within 5s"),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(6));
    let err = sub
        .read_property(&plain_thing(&base), "p")
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(!err.is_terminal());
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_that_is_never_answered_is_sent_again_without_an_error() {
    let (base, accepted) = silent_server().await;
    let sub = EventSubscriber::builder()
        .long_poll_timeout(Duration::from_secs(60))
        .build();
    let mut events = sub
        .subscribe(&plain_thing(&base), "e", SubscribeOptions::new())
        .unwrap();
    // 150 s: requests at 0, 60 and 120 s, and no item.
    let quiet = tokio::time::timeout(Duration::from_secs(150), events.next()).await;
    assert!(quiet.is_err(), "no item expected: {quiet:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn polling_backs_off_on_the_reconnect_policy_and_gives_up() {
    let hits = Arc::new(AtomicUsize::new(0));
    let count = hits.clone();
    let base = serve(Router::new().fallback(move || {
        count.fetch_add(1, Ordering::SeqCst);
        async { StatusCode::INTERNAL_SERVER_ERROR }
    }))
    .await;
    let sub = EventSubscriber::builder()
        .reconnect(exact().max_attempts(Some(4)))
        .build();
    let start = tokio::time::Instant::now();
    let mut obs = sub
        .observe_property(&plain_thing(&base), "p", ObserveOptions::new())
        .unwrap();
    let state = obs.connections()[0].2.clone();
    let mut delays = Vec::new();
    for _ in 0..3 {
        let e = obs.next().await.unwrap().unwrap_err();
        assert!(!e.is_terminal(), "{e}");
        if let ConnectionState::Reconnecting { delay, .. } = *state.borrow() {
            delays.push(delay);
        }
    }
    assert_eq!(
        delays,
        [1000, 1500, 2250].map(Duration::from_millis),
        "1 s growing by 1.5"
    );
    let last = obs.next().await.unwrap().unwrap_err();
    assert!(
        last.kind() == ErrorKind::GaveUp
            && last.to_string().contains("after 4 failed")
            && last.is_terminal(),
        "{last}"
    );
    assert!(obs.next().await.is_none());
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert!(start.elapsed() >= Duration::from_millis(4750));
}

#[tokio::test(start_paused = true)]
async fn polling_with_jitter_stays_within_the_schedule() {
    let base = serve(Router::new().fallback(|| async { StatusCode::BAD_GATEWAY })).await;
    let sub = EventSubscriber::builder()
        .reconnect(ReconnectPolicy::new().max_attempts(None).seed(3))
        .build();
    let mut obs = sub
        .observe_property(&plain_thing(&base), "p", ObserveOptions::new())
        .unwrap();
    let state = obs.connections()[0].2.clone();
    for n in 1..=12u32 {
        obs.next().await.unwrap().unwrap_err();
        let ConnectionState::Reconnecting { attempt, delay } = *state.borrow() else {
            panic!("not reconnecting");
        };
        assert_eq!(attempt, n);
        let full = exact().retry_delay(n, None);
        assert!(delay <= full && delay >= full / 2, "{n}: {delay:?}");
        assert!(delay <= Duration::from_secs(30));
    }
}

#[tokio::test(start_paused = true)]
async fn an_extreme_retry_after_is_capped() {
    let base = serve(Router::new().fallback(|| async {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "9999999999999999999999")],
        )
    }))
    .await;
    let sub = EventSubscriber::builder()
        .reconnect(exact().max_retry_after(Duration::from_secs(120)))
        .build();
    let mut obs = sub
        .observe_property(&plain_thing(&base), "p", ObserveOptions::new())
        .unwrap();
    let state = obs.connections()[0].2.clone();
    let e = obs.next().await.unwrap().unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(u64::MAX)));
    assert_eq!(
        *state.borrow(),
        ConnectionState::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(120)
        }
    );
    let start = tokio::time::Instant::now();
    obs.next().await.unwrap().unwrap_err();
    assert!(start.elapsed() <= Duration::from_secs(121));
}

async fn huge(uri: Uri) -> Response {
    let mib = 2 * 1024 * 1024;
    if uri.path().ends_with("chunked") {
        let chunks = futures::stream::iter(
            (0..mib / 1024).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1024])),
        );
        (
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(chunks),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            " ".repeat(mib),
        )
            .into_response()
    }
}

#[tokio::test]
async fn one_shot_bodies_are_bounded() {
    let base = serve(Router::new().fallback(huge)).await;
    for href in [format!("{base}/p"), format!("{base}/p/chunked")] {
        let t = thing(json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "id": "urn:dev:big", "title": "Big",
            "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
            "properties": {"p": {"forms": [{"href": href}]}},
            "actions": {"a": {"forms": [{"href": href}]}}
        }));
        let sub = EventSubscriber::new();
        let err = sub.read_property(&t, "p").await.unwrap_err();
        assert!(
            err.kind() == ErrorKind::TooLarge
                && err.limit() == Some(wot_events::DEFAULT_MAX_RESPONSE_BODY),
            "{err}"
        );
        let err = sub.invoke_action(&t, "a", None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge, "{err}");
        // A larger limit lets it through.
        let roomy = EventSubscriber::builder()
            .max_response_body(4 * 1024 * 1024)
            .build();
        assert_eq!(roomy.read_property(&t, "p").await.unwrap(), Value::Null);
    }
    // The TD limit is its own setting.
    let small = EventSubscriber::builder().max_body(1024).build();
    let err = small.fetch_thing(format!("{base}/td")).await.unwrap_err();
    assert_eq!(err.limit(), Some(1024), "{err}");
}

#[tokio::test]
async fn a_directory_of_100k_entries_is_refused_at_the_cap() {
    let body = format!("[{}{{}}]", "{},".repeat(99_999));
    let base = serve(Router::new().route(
        "/dir/things",
        axum::routing::get(
            move || async move { ([(header::CONTENT_TYPE, "application/json")], body) },
        ),
    ))
    .await;
    let err = EventSubscriber::new()
        .fetch_directory(format!("{base}/dir"))
        .await
        .unwrap_err();
    assert!(
        err.kind() == ErrorKind::TooManyThings
            && err.limit() == Some(wot_events::DEFAULT_MAX_DIRECTORY_ENTRIES),
        "{err}"
    );
    let listed = EventSubscriber::builder()
        .max_directory_entries(100_000)
        .build()
        .fetch_directory(format!("{base}/dir"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 100_000);
    assert!(listed.iter().all(Result::is_err));
}

#[tokio::test]
async fn a_redirect_loop_ends_with_a_typed_error() {
    let base = serve(
        Router::new().fallback(|| async { (StatusCode::FOUND, [(header::LOCATION, "/again")]) }),
    )
    .await;
    let err = EventSubscriber::new()
        .fetch_thing(format!("{base}/td"))
        .await
        .unwrap_err();
    assert!(
        err.kind() == ErrorKind::Redirect && err.limit() == Some(10),
        "{err}"
    );
}

/// `max_redirects` holds for the default SSE client too: with 0, an SSE form that redirects
/// ends the subscription with a terminal error after one request.
#[tokio::test]
async fn the_redirect_limit_holds_over_sse() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let base = serve(Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { (StatusCode::FOUND, [(header::LOCATION, "/again")]) }
    }))
    .await;
    let t = sse_event_thing(&base, "urn:dev:moving");
    let mut events = EventSubscriber::builder()
        .max_redirects(0)
        .build()
        .subscribe(&t, "e", SubscribeOptions::new())
        .unwrap();
    let err = events.next().await.unwrap().unwrap_err();
    assert!(err.is_terminal(), "{err}");
    assert!(events.next().await.is_none());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn an_invalid_reconnect_policy_is_a_config_error() {
    let err = EventSubscriber::builder()
        .reconnect(ReconnectPolicy::new().jitter(2.0))
        .try_build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[tokio::test]
async fn a_long_id_is_shared_by_every_record_not_copied() {
    let long_id = "x".repeat(4000);
    let body = format!("id: {long_id}\n\n{}", "data: 1\n\n".repeat(500));
    let base = serve(Router::new().fallback(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "text/event-stream")], body) }
    }))
    .await;
    let t = sse_event_thing(&base, "urn:dev:chatty");
    let mut events = EventSubscriber::new()
        .subscribe(&t, "e", SubscribeOptions::new().buffer(None))
        .unwrap();
    let first = events.next().await.unwrap().unwrap();
    assert_eq!(first.event_id.as_deref().map(str::len), Some(4000));
    for _ in 1..500 {
        let r = events.next().await.unwrap().unwrap();
        assert!(
            r.event_id
                .as_ref()
                .unwrap()
                .ptr_eq(first.event_id.as_ref().unwrap())
        );
        assert!(r.thing_id.ptr_eq(&first.thing_id) && r.event.ptr_eq(&first.event));
        assert!(r.thing_title.ptr_eq(&first.thing_title));
    }
}

#[tokio::test]
async fn buffers_and_histories_are_bounded_by_bytes() {
    let data = format!("\"{}\"", "z".repeat(10_000));
    let body = format!("data: {data}\n\n").repeat(200);
    let base = serve(Router::new().fallback(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "text/event-stream")], body) }
    }))
    .await;
    let t = thing(json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:dev:wordy", "title": "Wordy",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": {"p": {"type": "string", "observable": true, "forms": [
            {"href": format!("{base}/p"), "op": "observeproperty", "subprotocol": "sse"}]}},
        "events": {"e": {"forms": [{"href": format!("{base}/e"), "subprotocol": "sse"}]}}
    }));
    let sub = EventSubscriber::new();
    let mut events = sub
        .subscribe(
            &t,
            "e",
            SubscribeOptions::new()
                .buffer(Some(1000))
                .buffer_bytes(50_000),
        )
        .unwrap();
    for _ in 0..200 {
        events.next().await.unwrap().unwrap();
    }
    // Each 10 KB string counts twice: its text, and the value that reading it would build.
    let kept = events.buffered_records();
    let bytes: usize = kept.iter().map(wot_events::ByteSize::byte_size).sum();
    assert!(
        bytes <= 50_000 && kept.len() >= 2,
        "{} records, {bytes} bytes",
        kept.len()
    );

    let mut obs = sub
        .observe_property(
            &t,
            "p",
            ObserveOptions::new().history(1000).history_bytes(50_000),
        )
        .unwrap();
    for _ in 0..200 {
        obs.next().await.unwrap().unwrap();
    }
    let history = obs.history("p").unwrap();
    assert!(
        history.bytes() <= 50_000 && history.len() >= 2,
        "{}",
        history.len()
    );
}
