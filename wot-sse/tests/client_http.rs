//! The client against wiremock on 127.0.0.1: statuses, content types, redirects, resuming.

// The HTTP client is the `client` feature; without it only the parser tests run.
#![cfg(feature = "client")]

use std::time::Duration;

use futures::StreamExt;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};
use wot_sse::{
    CloseReason, ConnectionState, Error, Event, EventStream, Method, ReconnectPolicy, SseClient,
};

/// Reconnects at once so that tests do not wait; the schedule itself is tested with paused time.
fn client() -> SseClient {
    SseClient::builder()
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::ZERO)
                .jitter(0.0),
        )
        .build()
        .expect("client builds")
}

fn sse(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "text/event-stream")
}

/// The next item, with a generous real-time guard so a bug fails instead of hanging.
async fn next(stream: &mut EventStream) -> Option<Result<Event, Error>> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream answered within 10 s")
}

async fn next_event(stream: &mut EventStream) -> Event {
    match next(stream).await {
        Some(Ok(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn next_error(stream: &mut EventStream) -> Error {
    match next(stream).await {
        Some(Err(error)) => error,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn last_event_ids(requests: &[Request]) -> Vec<Option<String>> {
    requests
        .iter()
        .map(|r| {
            r.headers
                .get("last-event-id")
                .map(|v| v.to_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn sends_accept_and_cache_control_and_yields_events() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/events"))
        .and(header("accept", "text/event-stream"))
        .and(header("cache-control", "no-cache"))
        .respond_with(sse(
            "event: temperature\ndata: 21.5\nid: 1\n\n: ping\ndata: x\n\n",
        ))
        .mount(&server)
        .await;
    let mut stream = client()
        .get(format!("{}/events", server.uri()))
        .connect()
        .unwrap();
    let first = next_event(&mut stream).await;
    assert_eq!(
        (first.event_type(), first.data(), first.id()),
        ("temperature", "21.5", "1")
    );
    let second = next_event(&mut stream).await;
    assert_eq!(
        (second.event_type(), second.data(), second.id()),
        ("message", "x", "1")
    );
    assert_eq!(stream.last_event_id(), "1");
}

#[tokio::test]
async fn status_204_ends_the_stream_without_reconnecting() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut stream = client().get(server.uri()).connect().unwrap();
    let state = stream.state();
    assert!(next(&mut stream).await.is_none());
    assert_eq!(
        *state.borrow(),
        ConnectionState::Closed {
            reason: CloseReason::NoContent
        }
    );
    assert!(next(&mut stream).await.is_none());
}

#[tokio::test]
async fn client_errors_are_terminal_and_carry_the_status() {
    for (status, check) in [
        (
            404,
            (|e: &Error| !e.is_unauthorized() && !e.is_forbidden()) as fn(&Error) -> bool,
        ),
        (401, |e: &Error| e.is_unauthorized() && !e.is_forbidden()),
        (403, |e: &Error| e.is_forbidden() && !e.is_unauthorized()),
        (400, |e: &Error| !e.is_unauthorized()),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status))
            .expect(1)
            .mount(&server)
            .await;
        let mut stream = client().get(server.uri()).connect().unwrap();
        let error = next_error(&mut stream).await;
        assert!(error.is_terminal(), "{status}");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
        assert!(check(&error), "{status}: {error}");
        assert!(error.to_string().contains(&status.to_string()));
        assert!(
            next(&mut stream).await.is_none(),
            "{status} ends the stream"
        );
    }
}

#[tokio::test]
async fn server_errors_408_and_429_are_retried() {
    for status in [500, 502, 503, 408, 429] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(sse("data: recovered\n\n"))
            .mount(&server)
            .await;
        let mut stream = client().get(server.uri()).connect().unwrap();
        let error = next_error(&mut stream).await;
        assert!(!error.is_terminal(), "{status} is recoverable");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(next_event(&mut stream).await.data(), "recovered");
    }
}

#[tokio::test]
async fn retry_after_on_503_sets_the_delay() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "7"))
        .mount(&server)
        .await;
    let mut stream = client().get(server.uri()).connect().unwrap();
    let state = stream.state();
    let error = next_error(&mut stream).await;
    assert_eq!(error.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(
        *state.borrow(),
        ConnectionState::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(7)
        }
    );
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_terminal() {
    let server = MockServer::start().await;
    Mock::given(path("/plain"))
        .respond_with(ResponseTemplate::new(200).set_body_raw("data: x\n\n", "text/plain"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/none"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes("data: x\n\n"))
        .expect(1)
        .mount(&server)
        .await;
    for route in ["/plain", "/none"] {
        let mut stream = client()
            .get(format!("{}{route}", server.uri()))
            .connect()
            .unwrap();
        let error = next_error(&mut stream).await;
        assert!(error.is_content_type() && error.is_terminal(), "{error}");
        assert!(next(&mut stream).await.is_none());
    }
}

#[tokio::test]
async fn content_type_parameters_and_case_are_accepted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("data: ok\n\n", "Text/Event-Stream; charset=utf-8"),
        )
        .mount(&server)
        .await;
    let mut stream = client().get(server.uri()).connect().unwrap();
    assert_eq!(next_event(&mut stream).await.data(), "ok");
}

#[tokio::test]
async fn last_event_id_survives_reconnects_and_events_without_ids() {
    let server = MockServer::start().await;
    let no_id = |r: &Request| !r.headers.contains_key("last-event-id");
    Mock::given(method("GET"))
        .and(no_id)
        .respond_with(sse("id: 1\ndata: a\n\n"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    // Two connections in a row resume from 1 and deliver only events without ids.
    Mock::given(header("last-event-id", "1"))
        .respond_with(sse("data: b\n\n"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(header("last-event-id", "1"))
        .respond_with(sse("data: c\n\n: comment\n\nid: 2\ndata: d\n\n"))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(header("last-event-id", "2"))
        .respond_with(sse("data: e\n\nid: 3\ndata: partial, never dispatched\n"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(header("last-event-id", "2"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(6)
        .mount(&server)
        .await;

    let mut stream = client().get(server.uri()).connect().unwrap();
    let mut got = Vec::new();
    while let Some(item) = next(&mut stream).await {
        let event = item.expect("no errors");
        got.push((event.data().to_owned(), event.id().to_owned()));
    }
    let want: Vec<(String, String)> = [("a", "1"), ("b", "1"), ("c", "1"), ("d", "2"), ("e", "2")]
        .iter()
        .map(|(d, i)| (d.to_string(), i.to_string()))
        .collect();
    assert_eq!(got, want);
    let requests = server.received_requests().await.unwrap();
    let one = Some("1".to_owned());
    let two = Some("2".to_owned());
    assert_eq!(
        last_event_ids(&requests),
        vec![None, one.clone(), one, two.clone(), two]
    );
}

#[tokio::test]
async fn initial_last_event_id_is_sent() {
    let server = MockServer::start().await;
    Mock::given(header("last-event-id", "resume-here"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut stream = client()
        .get(server.uri())
        .last_event_id("resume-here")
        .connect()
        .unwrap();
    assert!(next(&mut stream).await.is_none());
}

#[tokio::test]
async fn post_and_report_send_method_headers_and_body_on_every_connection() {
    let server = MockServer::start().await;
    Mock::given(method("REPORT"))
        .and(header("x-thing", "lamp"))
        .and(body_string("{\"filter\":1}"))
        .respond_with(sse("id: 5\ndata: one\n\n"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("REPORT"))
        .and(header("last-event-id", "5"))
        .and(body_string("{\"filter\":1}"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let report = Method::from_bytes(b"REPORT").unwrap();
    let mut stream = client()
        .request(report, server.uri())
        .header("x-thing", "lamp")
        .body("{\"filter\":1}")
        .connect()
        .unwrap();
    assert_eq!(next_event(&mut stream).await.data(), "one");
    assert!(next(&mut stream).await.is_none());

    Mock::given(method("POST"))
        .and(body_string("q"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let mut stream = client().post(server.uri()).body("q").connect().unwrap();
    assert!(next(&mut stream).await.is_none());
}

#[tokio::test]
async fn redirects_301_and_307_are_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/old"))
        .respond_with(ResponseTemplate::new(301).insert_header("location", "/new"))
        .mount(&server)
        .await;
    Mock::given(path("/new"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/newest"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/newest"))
        .respond_with(sse("data: moved\n\n"))
        .mount(&server)
        .await;
    let mut stream = client()
        .get(format!("{}/old", server.uri()))
        .connect()
        .unwrap();
    assert_eq!(next_event(&mut stream).await.data(), "moved");
}

#[tokio::test]
async fn redirect_307_keeps_method_and_body() {
    let server = MockServer::start().await;
    Mock::given(path("/a"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/b"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/b"))
        .and(body_string("payload"))
        .respond_with(sse("data: posted\n\n"))
        .mount(&server)
        .await;
    let mut stream = client()
        .post(format!("{}/a", server.uri()))
        .body("payload")
        .connect()
        .unwrap();
    assert_eq!(next_event(&mut stream).await.data(), "posted");
}

#[tokio::test]
async fn redirect_without_location_is_a_terminal_error() {
    let server = MockServer::start().await;
    Mock::given(path("/missing"))
        .respond_with(ResponseTemplate::new(301))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/empty"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", ""))
        .expect(1)
        .mount(&server)
        .await;
    for route in ["/missing", "/empty"] {
        let mut stream = client()
            .get(format!("{}{route}", server.uri()))
            .connect()
            .unwrap();
        let error = next_error(&mut stream).await;
        assert!(
            error.is_redirect() && error.is_terminal(),
            "{route}: {error}"
        );
        assert!(error.to_string().contains("without a Location"), "{error}");
        assert!(next(&mut stream).await.is_none());
    }
}

#[tokio::test]
async fn redirect_loops_stop_at_the_limit() {
    let server = MockServer::start().await;
    Mock::given(path("/loop"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/loop"))
        .expect(4)
        .mount(&server)
        .await;
    let mut stream = client()
        .get(format!("{}/loop", server.uri()))
        .max_redirects(3)
        .connect()
        .unwrap();
    let error = next_error(&mut stream).await;
    assert!(error.is_redirect() && error.is_terminal(), "{error}");
    assert!(error.to_string().contains("more than 3 redirects"));
}

#[tokio::test]
async fn credentials_are_not_sent_to_another_origin_after_a_redirect() {
    let other = MockServer::start().await;
    Mock::given(path("/elsewhere"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&other)
        .await;
    let origin = MockServer::start().await;
    Mock::given(path("/start"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/elsewhere", other.uri()).as_str()),
        )
        .mount(&origin)
        .await;
    Mock::given(path("/same"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/final"))
        .mount(&origin)
        .await;
    Mock::given(path("/final"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&origin)
        .await;

    for route in ["/start", "/same"] {
        let mut stream = client()
            .get(format!("{}{route}", origin.uri()))
            .bearer_token("s3cret")
            .header("cookie", "session=1")
            .header("x-other", "kept")
            .connect()
            .unwrap();
        assert!(next(&mut stream).await.is_none());
    }
    let elsewhere = &other.received_requests().await.unwrap()[0];
    assert!(!elsewhere.headers.contains_key("authorization"));
    assert!(!elsewhere.headers.contains_key("cookie"));
    assert_eq!(elsewhere.headers.get("x-other").unwrap(), "kept");
    let same_origin = origin.received_requests().await.unwrap();
    let last = same_origin.last().unwrap();
    assert_eq!(last.url.path(), "/final");
    assert_eq!(last.headers.get("authorization").unwrap(), "Bearer s3cret");
    assert_eq!(last.headers.get("cookie").unwrap(), "session=1");
}

#[tokio::test]
async fn consecutive_failures_end_the_stream_with_an_error_that_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&server)
        .await;
    let mut stream = client()
        .get(server.uri())
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::ZERO)
                .max_attempts(Some(3)),
        )
        .connect()
        .unwrap();
    let state = stream.state();
    for _ in 0..2 {
        let error = next_error(&mut stream).await;
        assert!(!error.is_terminal() && error.status().is_some());
    }
    let error = next_error(&mut stream).await;
    assert!(
        error.is_retries_exhausted() && error.is_terminal(),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("gave up after 3 consecutive failed attempts")
    );
    assert_eq!(error.status().map(|s| s.as_u16()), Some(500));
    assert!(next(&mut stream).await.is_none());
    assert!(matches!(
        &*state.borrow(),
        ConnectionState::Closed {
            reason: CloseReason::Failed(e)
        } if e.is_retries_exhausted()
    ));
}

#[tokio::test]
async fn a_connection_that_delivered_data_resets_the_failure_count() {
    let server = MockServer::start().await;
    // fail, fail, data, fail, fail, data, then stop: never 3 failures in a row.
    let plan = [
        ResponseTemplate::new(500),
        ResponseTemplate::new(502),
        sse("data: 1\n\n"),
        ResponseTemplate::new(500),
        ResponseTemplate::new(503),
        sse("data: 2\n\n"),
        ResponseTemplate::new(204),
    ];
    for (priority, response) in plan.into_iter().enumerate() {
        Mock::given(method("GET"))
            .respond_with(response)
            .up_to_n_times(1)
            .with_priority(u8::try_from(priority + 1).unwrap())
            .mount(&server)
            .await;
    }
    let mut stream = client()
        .get(server.uri())
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::ZERO)
                .max_attempts(Some(3)),
        )
        .connect()
        .unwrap();
    let mut seen = Vec::new();
    while let Some(item) = next(&mut stream).await {
        seen.push(match item {
            Ok(event) => format!("event {}", event.data()),
            Err(error) => {
                assert!(!error.is_terminal(), "{error}");
                format!("error {}", error.status().unwrap().as_u16())
            }
        });
    }
    assert_eq!(
        seen,
        [
            "error 500",
            "error 502",
            "event 1",
            "error 500",
            "error 503",
            "event 2"
        ]
    );
}

#[tokio::test]
async fn connection_refused_is_recoverable_and_counts_as_a_failure() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut stream = client()
        .get(format!("http://127.0.0.1:{port}/"))
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::ZERO)
                .max_attempts(Some(2)),
        )
        .connect()
        .unwrap();
    let first = next_error(&mut stream).await;
    assert!(first.is_connect() && !first.is_terminal(), "{first}");
    let last = next_error(&mut stream).await;
    assert!(last.is_retries_exhausted(), "{last}");
    assert!(next(&mut stream).await.is_none());
}

#[tokio::test]
async fn bad_settings_are_reported_by_connect() {
    let client = SseClient::new();
    let error = client.get("not a url").connect().unwrap_err();
    assert!(error.is_builder(), "{error}");
    assert!(
        client
            .get("ftp://host/x")
            .connect()
            .unwrap_err()
            .is_builder()
    );
    assert!(
        client
            .get("http://host/x")
            .header("bad header", "v")
            .connect()
            .unwrap_err()
            .is_builder()
    );
    assert!(
        client
            .get("http://host/x")
            .reconnect(ReconnectPolicy::new().factor(0.1))
            .connect()
            .unwrap_err()
            .is_builder()
    );
    assert!(
        SseClient::builder()
            .reconnect(ReconnectPolicy::new().jitter(2.0))
            .build()
            .unwrap_err()
            .is_builder()
    );
}

#[tokio::test]
async fn token_provider_is_asked_on_every_connection() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let server = MockServer::start().await;
    Mock::given(header("authorization", "Bearer token-1"))
        .respond_with(sse("id: 1\ndata: first\n\n"))
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer token-2"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let mut stream = client()
        .get(server.uri())
        .token_provider(move || {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            async move { Ok::<_, std::io::Error>(format!("token-{n}")) }
        })
        .connect()
        .unwrap();
    assert_eq!(next_event(&mut stream).await.data(), "first");
    assert!(next(&mut stream).await.is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn token_provider_failure_is_a_recoverable_error() {
    let server = MockServer::start().await;
    let mut stream = client()
        .get(server.uri())
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::ZERO)
                .max_attempts(Some(2)),
        )
        .token_provider(|| async { Err::<String, _>(std::io::Error::other("auth down")) })
        .connect()
        .unwrap();
    let error = next_error(&mut stream).await;
    assert!(error.is_token() && !error.is_terminal(), "{error}");
    assert!(next_error(&mut stream).await.is_retries_exhausted());
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn token_in_query_only_on_opt_in() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let mut stream = client()
        .get(format!("{}/s?x=1", server.uri()))
        .bearer_token("tok")
        .token_in_query("access_token")
        .connect()
        .unwrap();
    assert!(next(&mut stream).await.is_none());
    let mut stream = client()
        .get(format!("{}/s", server.uri()))
        .bearer_token("tok")
        .connect()
        .unwrap();
    assert!(next(&mut stream).await.is_none());
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests[0].url.query(), Some("x=1&access_token=tok"));
    assert!(!requests[0].headers.contains_key("authorization"));
    assert_eq!(requests[1].url.query(), None);
    assert_eq!(
        requests[1].headers.get("authorization").unwrap(),
        "Bearer tok"
    );
}
