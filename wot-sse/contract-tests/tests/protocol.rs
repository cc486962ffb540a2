//! The contract-test protocol end to end: a harness's requests to the service, a real SSE
//! server for the clients, and the callbacks they send. Everything runs on 127.0.0.1 with
//! short delays; waits for "nothing happens" are a few hundred milliseconds, far longer than
//! the 1 ms reconnect delay the clients are given.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Callbacks, Reply, Service, StreamServer};

/// How long "nothing else happens" is watched for.
const QUIET: Duration = Duration::from_millis(400);

fn settings(stream: &StreamServer, callbacks: &Callbacks) -> Value {
    json!({
        "tag": "test",
        "streamUrl": stream.url,
        "callbackUrl": callbacks.url_for("main"),
        "initialDelayMs": 1,
    })
}

fn with(mut settings: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().unwrap() {
        settings[key] = value.clone();
    }
    settings
}

fn event(event_type: &str, data: &str, id: &str) -> Value {
    json!({"kind": "event", "event": {"type": event_type, "data": data, "id": id}})
}

fn error_text(callback: &Value) -> &str {
    assert_eq!(callback["kind"], "error", "{callback}");
    callback["error"].as_str().unwrap()
}

#[tokio::test]
async fn capabilities_claim_every_feature() {
    let service = Service::start().await;
    let response = service.http.get(&service.url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["name"], "wot-sse");
    let mut claimed: Vec<&str> = body["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|capability| capability.as_str().unwrap())
        .collect();
    claimed.sort_unstable();
    assert_eq!(
        claimed,
        [
            "bom",
            "comments",
            "headers",
            "last-event-id",
            "post",
            "read-timeout",
            "report",
            "restart",
            "server-directed-shutdown-request",
        ]
    );
}

#[tokio::test]
async fn events_are_forwarded_in_order_with_their_last_event_id() {
    let mut stream = StreamServer::always(|| {
        Reply::Open(
            "id: 1\ndata: first\n\nevent: update\ndata: second\n\ndata: third\nid: 3\n\n\
             id\ndata: fourth\n\n",
        )
    })
    .await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    let client = service.create_client(&settings(&stream, &callbacks)).await;
    assert!(client.ends_with("/clients/1"), "{client}");

    let request = stream.next_request().await;
    assert_eq!(request.method, "GET");
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.header("last-event-id"), None);

    let expected = [
        event("message", "first", "1"),
        event("update", "second", "1"),
        event("message", "third", "3"),
        event("message", "fourth", ""),
    ];
    for (counter, expected) in (1..).zip(expected) {
        assert_eq!(callbacks.next().await, (counter, expected));
    }
    callbacks.expect_none(QUIET).await;
}

#[tokio::test]
async fn comments_are_forwarded_with_the_text_after_the_colon() {
    let stream = StreamServer::always(|| Reply::Open(":hello\n: spaced\n:\ndata: x\n\n")).await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    service.create_client(&settings(&stream, &callbacks)).await;
    assert_eq!(
        callbacks.next().await,
        (1, json!({"kind": "comment", "comment": "hello"}))
    );
    assert_eq!(
        callbacks.next().await,
        (2, json!({"kind": "comment", "comment": " spaced"}))
    );
    assert_eq!(
        callbacks.next().await,
        (3, json!({"kind": "comment", "comment": ""}))
    );
    assert_eq!(callbacks.next().await, (4, event("message", "x", "")));
}

#[tokio::test]
async fn a_leading_bom_is_stripped() {
    let stream = StreamServer::always(|| Reply::Open("\u{feff}data: after bom\n\n")).await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    service.create_client(&settings(&stream, &callbacks)).await;
    assert_eq!(
        callbacks.next().await,
        (1, event("message", "after bom", ""))
    );
}

#[tokio::test]
async fn a_500_is_one_error_callback_then_the_client_reconnects() {
    let mut stream = StreamServer::start(|n| match n {
        0 => Reply::Other(500, Some("text/plain"), "broken"),
        _ => Reply::Open("data: recovered\n\n"),
    })
    .await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    service.create_client(&settings(&stream, &callbacks)).await;
    let (counter, error) = callbacks.next().await;
    assert_eq!(counter, 1);
    assert!(error_text(&error).contains("500"), "{error}");
    assert_eq!(
        callbacks.next().await,
        (2, event("message", "recovered", ""))
    );
    stream.next_request().await;
    stream.next_request().await;
    callbacks.expect_none(QUIET).await;
}

#[tokio::test]
async fn a_wrong_content_type_is_one_error_and_the_end() {
    let mut stream =
        StreamServer::always(|| Reply::Other(200, Some("text/plain"), "data: not sse\n\n")).await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    service.create_client(&settings(&stream, &callbacks)).await;
    let (counter, error) = callbacks.next().await;
    assert_eq!(counter, 1);
    let text = error_text(&error);
    assert!(
        text.contains("content type") && text.contains("text/plain"),
        "{text}"
    );
    stream.next_request().await;
    stream.expect_no_request(QUIET).await;
    callbacks.expect_none(Duration::ZERO).await;
}

#[tokio::test]
async fn a_redirect_without_location_is_an_error() {
    let stream = StreamServer::always(|| Reply::Other(307, None, "")).await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    service.create_client(&settings(&stream, &callbacks)).await;
    let (counter, error) = callbacks.next().await;
    assert_eq!(counter, 1);
    assert!(error_text(&error).contains("without a Location"), "{error}");
}

#[tokio::test]
async fn a_refused_connection_is_an_error_per_attempt() {
    // A port that was free a moment ago: connecting to it is refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    service
        .create_client(&json!({
            "tag": "refused",
            "streamUrl": format!("http://127.0.0.1:{port}/stream"),
            "callbackUrl": callbacks.url_for("main"),
            "initialDelayMs": 1,
        }))
        .await;
    for expected in 1..=2 {
        let (counter, error) = callbacks.next().await;
        assert_eq!(counter, expected);
        assert!(error_text(&error).contains("connecting failed"), "{error}");
    }
}

#[tokio::test]
async fn restart_reconnects_with_last_event_id_and_sends_no_error() {
    let mut stream = StreamServer::start(|n| match n {
        0 => Reply::Open("id: abc\ndata: one\n\n"),
        _ => Reply::Open("data: two\n\n"),
    })
    .await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    let client = service.create_client(&settings(&stream, &callbacks)).await;
    assert_eq!(callbacks.next().await, (1, event("message", "one", "abc")));
    assert_eq!(stream.next_request().await.header("last-event-id"), None);

    let status = service.command(&client, r#"{"command":"restart"}"#).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(stream.next_closed().await, 0);
    let second = stream.next_request().await;
    assert_eq!(second.header("last-event-id"), Some("abc"));
    assert_eq!(callbacks.next().await, (2, event("message", "two", "abc")));
    callbacks.expect_none(QUIET).await;
}

#[tokio::test]
async fn a_body_that_ends_reconnects_without_error() {
    let mut stream = StreamServer::start(|n| match n {
        0 => Reply::Ended("id: 5\ndata: a\n\ndata: partial, never dispatched"),
        _ => Reply::Open("data: b\n\n"),
    })
    .await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    service.create_client(&settings(&stream, &callbacks)).await;
    assert_eq!(callbacks.next().await, (1, event("message", "a", "5")));
    assert_eq!(callbacks.next().await, (2, event("message", "b", "5")));
    stream.next_request().await;
    assert_eq!(
        stream.next_request().await.header("last-event-id"),
        Some("5")
    );
    callbacks.expect_none(QUIET).await;
}

#[tokio::test]
async fn a_broken_connection_is_one_error_then_a_reconnect() {
    let mut stream = StreamServer::start(|n| match n {
        0 => Reply::Broken("id: 9\ndata: before\n\ndata: cut off"),
        _ => Reply::Open("data: after\n\n"),
    })
    .await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    service.create_client(&settings(&stream, &callbacks)).await;
    assert_eq!(callbacks.next().await, (1, event("message", "before", "9")));
    stream.break_connection();
    let (counter, error) = callbacks.next().await;
    assert_eq!(counter, 2);
    assert!(
        error_text(&error).contains("reading the event stream failed"),
        "{error}"
    );
    assert_eq!(callbacks.next().await, (3, event("message", "after", "9")));
    stream.next_request().await;
    assert_eq!(
        stream.next_request().await.header("last-event-id"),
        Some("9")
    );
    callbacks.expect_none(QUIET).await;
}

#[tokio::test]
async fn a_204_stops_the_client_without_callbacks() {
    let mut stream = StreamServer::always(|| Reply::Other(204, None, "")).await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    let client = service.create_client(&settings(&stream, &callbacks)).await;
    stream.next_request().await;
    stream.expect_no_request(QUIET).await;
    callbacks.expect_none(Duration::ZERO).await;
    assert_eq!(service.delete(&client).await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_read_timeout_is_an_error_and_a_reconnect() {
    let mut stream = StreamServer::start(|n| match n {
        0 => Reply::Open("id: 1\ndata: a\n\n"),
        _ => Reply::Open("data: b\n\n"),
    })
    .await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    service
        .create_client(&with(
            settings(&stream, &callbacks),
            json!({"readTimeoutMs": 150}),
        ))
        .await;
    assert_eq!(callbacks.next().await, (1, event("message", "a", "1")));
    let (counter, error) = callbacks.next().await;
    assert_eq!(counter, 2);
    assert!(error_text(&error).contains("idle timeout"), "{error}");
    assert_eq!(callbacks.next().await, (3, event("message", "b", "1")));
    stream.next_request().await;
    assert_eq!(
        stream.next_request().await.header("last-event-id"),
        Some("1")
    );
}

#[tokio::test]
async fn last_event_id_headers_method_and_body_are_sent() {
    for method in ["POST", "REPORT"] {
        let mut stream = StreamServer::always(|| Reply::Open("data: x\n\n")).await;
        let mut callbacks = Callbacks::start().await;
        let service = Service::start().await;
        service
            .create_client(&with(
                settings(&stream, &callbacks),
                json!({
                    "lastEventId": "resume-7",
                    "method": method,
                    "body": "{\"query\":1}",
                    "headers": {"X-Test": "yes", "Authorization": "Bearer t0ken"},
                }),
            ))
            .await;
        let request = stream.next_request().await;
        assert_eq!(request.method, method);
        assert_eq!(&request.body[..], b"{\"query\":1}");
        assert_eq!(request.header("last-event-id"), Some("resume-7"));
        assert_eq!(request.header("x-test"), Some("yes"));
        assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(request.header("accept"), Some("text/event-stream"));
        assert_eq!(
            callbacks.next().await,
            (1, event("message", "x", "resume-7"))
        );
    }
}

#[tokio::test]
async fn each_client_counts_its_own_callbacks() {
    let stream = StreamServer::always(|| Reply::Open("data: x\n\n")).await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    let mut locations = Vec::new();
    for name in ["a", "b"] {
        let settings = json!({
            "tag": name,
            "streamUrl": stream.url,
            "callbackUrl": callbacks.url_for(name),
        });
        locations.push(service.create_client(&settings).await);
    }
    assert_ne!(locations[0], locations[1]);
    let mut got = [
        callbacks.next_from_any().await,
        callbacks.next_from_any().await,
    ];
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let expected = event("message", "x", "");
    assert_eq!(
        got,
        [
            ("a".to_owned(), 1, expected.clone()),
            ("b".to_owned(), 1, expected)
        ]
    );
}

#[tokio::test]
async fn bad_settings_are_400() {
    let service = Service::start().await;
    let valid = json!({
        "tag": "t",
        "streamUrl": "http://127.0.0.1:1/stream",
        "callbackUrl": "http://127.0.0.1:1/callbacks",
    });
    let bad = [
        json!("not an object"),
        with(valid.clone(), json!({"streamUrl": null})),
        with(valid.clone(), json!({"streamUrl": "not a url"})),
        with(valid.clone(), json!({"streamUrl": "file:///etc/passwd"})),
        with(valid.clone(), json!({"callbackUrl": 5})),
        with(valid.clone(), json!({"initialDelayMs": "soon"})),
        with(valid.clone(), json!({"readTimeoutMs": 0})),
        with(valid.clone(), json!({"method": "NOT A METHOD"})),
        with(valid.clone(), json!({"headers": {"bad header": "x"}})),
        with(valid.clone(), json!({"headers": {"x": "line\nbreak"}})),
        with(valid.clone(), json!({"lastEventId": "nul\u{0}"})),
    ];
    for settings in bad {
        let response = service.create(&settings).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{settings}");
        assert!(!response.text().await.unwrap().is_empty());
    }
    let not_json = service
        .http
        .post(&service.url)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    // None of them made a client: the first good one is number 1.
    let location = service.create_client(&valid).await;
    assert!(location.ends_with("/clients/1"), "{location}");
}

#[tokio::test]
async fn unknown_commands_are_400_and_unknown_clients_404() {
    let stream = StreamServer::always(|| Reply::Open("")).await;
    let callbacks = Callbacks::start().await;
    let service = Service::start().await;
    let client = service.create_client(&settings(&stream, &callbacks)).await;
    for body in [r#"{"command":"explode"}"#, r#"{"nope":1}"#, "restart"] {
        let status = service.command(&client, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }
    for unknown in ["/clients/99", "/clients/0", "/clients/abc"] {
        let url = format!("{}{unknown}", service.url);
        let restart = service.command(&url, r#"{"command":"restart"}"#).await;
        assert_eq!(restart, StatusCode::NOT_FOUND, "{unknown}");
        assert_eq!(
            service.delete(&url).await,
            StatusCode::NOT_FOUND,
            "{unknown}"
        );
    }
}

#[tokio::test]
async fn deleting_a_client_closes_its_connection() {
    let mut stream = StreamServer::always(|| Reply::Open("data: x\n\n")).await;
    let mut callbacks = Callbacks::start().await;
    let service = Service::start().await;
    let client = service.create_client(&settings(&stream, &callbacks)).await;
    assert_eq!(callbacks.next().await, (1, event("message", "x", "")));
    assert_eq!(service.delete(&client).await, StatusCode::NO_CONTENT);
    assert_eq!(stream.next_closed().await, 0);
    stream.next_request().await;
    stream.expect_no_request(QUIET).await;
    callbacks.expect_none(Duration::ZERO).await;
    let restart = service.command(&client, r#"{"command":"restart"}"#).await;
    assert_eq!(restart, StatusCode::NOT_FOUND);
    assert_eq!(service.delete(&client).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_root_stops_the_service_and_its_clients() {
    let mut stream = StreamServer::always(|| Reply::Open("data: x\n\n")).await;
    let mut callbacks = Callbacks::start().await;
    let mut service = Service::start().await;
    service.create_client(&settings(&stream, &callbacks)).await;
    assert_eq!(callbacks.next().await, (1, event("message", "x", "")));
    let root = service.url.clone();
    assert_eq!(service.delete(&root).await, StatusCode::NO_CONTENT);
    service.stopped().await.unwrap();
    assert_eq!(stream.next_closed().await, 0);
    assert!(service.http.get(&root).send().await.is_err());
}
