//! The server in-process: a real axum server on 127.0.0.1 over a real alert manager, and the
//! live stream's timing under tokio's paused clock.

use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wot_alerts::Format;

use super::routes::{Start, live_frames};
use super::*;

const TD: &str = r#"{
    "@context": "https://www.w3.org/2022/wot/td/v1.1",
    "id": "urn:t:1",
    "title": "Fridge",
    "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
    "security": "nosec_sc",
    "properties": {
        "temperature": {"type": "number", "forms": [{"href": "http://x/t", "op": ["readproperty", "observeproperty"], "subprotocol": "sse"}]}
    }
}"#;

const RULES: &str =
    "rules:\n  - {id: hot, thing: 'urn:t:1', property: temperature, condition: {gt: 8}}\n";

/// A server over one Thing and one rule; the sender feeds the alert manager.
fn server(
    token: Option<&str>,
    limits: WebLimits,
) -> (
    Arc<Server>,
    mpsc::UnboundedSender<wot_alerts::PropertyUpdate>,
) {
    let thing = ConsumedThing::from_slice(TD.as_bytes(), None).expect("TD");
    let rules = RuleSet::from_str(RULES, Format::Yaml, "test").expect("rules");
    let (tx, rx) = mpsc::unbounded();
    let alerts = AlertManager::builder(rules.clone())
        .start(rx)
        .expect("manager");
    let model = Model::new(&[thing], &rules, Vec::new(), limits);
    let journal = Journal::new(1000, limits.replay_events, limits.replay_bytes);
    let server = Server::new(
        model,
        journal,
        alerts,
        token.map(str::to_owned),
        true,
        limits,
    );
    (Arc::new(server), tx)
}

/// Serves `server` on 127.0.0.1; returns the base URL.
async fn serve(server: Arc<Server>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, routes::router(server)).await;
    });
    format!("http://{addr}")
}

/// Feeds a hot value and waits until the alert fires.
async fn fire(server: &Server, tx: &mpsc::UnboundedSender<wot_alerts::PropertyUpdate>) {
    tx.unbounded_send(wot_alerts::PropertyUpdate::new(
        "urn:t:1",
        "temperature",
        json!(12),
    ))
    .expect("manager running");
    for _ in 0..200 {
        if server
            .alerts
            .active_alerts()
            .iter()
            .any(|a| a.state == wot_alerts::AlertState::Firing)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the alert did not fire");
}

/// The snapshot, as JSON.
async fn fetch_snapshot(client: &reqwest::Client, base: &str) -> Value {
    client
        .get(format!("{base}/api/snapshot"))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON")
}

fn text(bytes: &Bytes) -> &str {
    std::str::from_utf8(bytes).expect("utf-8")
}

use axum::body::Bytes;

#[tokio::test(start_paused = true)]
async fn a_quiet_stream_sends_retry_then_keep_alives() {
    let (server, _tx) = server(None, WebLimits::DEFAULT);
    let permit = server.clients.clone().try_acquire_owned().expect("permit");
    let mut frames = Box::pin(live_frames(server.clone(), Start::Live, permit));
    let first = frames.next().await.expect("a write").expect("bytes");
    assert_eq!(text(&first), "retry: 2000\n\n");
    let started = tokio::time::Instant::now();
    let second = frames.next().await.expect("a write").expect("bytes");
    assert_eq!(text(&second), ": keep-alive\n\n");
    assert_eq!(started.elapsed(), Duration::from_secs(15));
    // A change resets the quiet time.
    tokio::time::advance(Duration::from_secs(10)).await;
    server.with_hub(|hub| hub.journal.push("notice", &json!({"n": 1})));
    let change = frames.next().await.expect("a write").expect("bytes");
    assert!(
        text(&change).starts_with("id: 1000\nevent: notice\n"),
        "{}",
        text(&change)
    );
    let at = tokio::time::Instant::now();
    let keep = frames.next().await.expect("a write").expect("bytes");
    assert_eq!(text(&keep), ": keep-alive\n\n");
    assert_eq!(at.elapsed(), Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn a_client_that_falls_behind_the_buffer_gets_one_reset_and_goes_on() {
    let limits = WebLimits {
        replay_events: 10,
        ..WebLimits::DEFAULT
    };
    let (server, _tx) = server(None, limits);
    let permit = server.clients.clone().try_acquire_owned().expect("permit");
    let mut frames = Box::pin(live_frames(server.clone(), Start::After(999), permit));
    for i in 0..3 {
        server.with_hub(|hub| hub.journal.push("n", &i));
    }
    let first = frames.next().await.expect("a write").expect("bytes");
    assert_eq!(
        text(&first),
        "retry: 2000\n\nid: 1000\nevent: n\ndata: 0\n\nid: 1001\nevent: n\ndata: 1\n\nid: 1002\nevent: n\ndata: 2\n\n"
    );
    // It stops reading while 100 changes go by: it holds only its position.
    for i in 0..100 {
        server.with_hub(|hub| hub.journal.push("n", &i));
    }
    assert_eq!(server.with_hub(|hub| hub.journal.len()), 10);
    let reset = frames.next().await.expect("a write").expect("bytes");
    assert_eq!(text(&reset), "id: 1102\nevent: reset\ndata: {}\n\n");
    server.with_hub(|hub| hub.journal.push("n", &"next"));
    let next = frames.next().await.expect("a write").expect("bytes");
    assert_eq!(text(&next), "id: 1103\nevent: n\ndata: \"next\"\n\n");
}

#[tokio::test(start_paused = true)]
async fn streams_end_when_the_server_closes() {
    let (server, _tx) = server(None, WebLimits::DEFAULT);
    let permit = server.clients.clone().try_acquire_owned().expect("permit");
    let mut frames = Box::pin(live_frames(server.clone(), Start::Live, permit));
    let _retry = frames.next().await.expect("retry");
    server.closing.store(true, Ordering::SeqCst);
    server.changed.send_modify(|_| {});
    assert!(frames.next().await.is_none());
    // Its place is free again.
    drop(frames);
    assert_eq!(server.clients.available_permits(), 64);
}

#[tokio::test]
async fn every_response_has_the_security_headers() {
    let (server, _tx) = server(None, WebLimits::DEFAULT);
    let base = serve(server).await;
    let client = reqwest::Client::new();
    for (path, status, api) in [
        ("/", 200, false),
        ("/assets/app.js", 200, false),
        ("/assets/uplot.min.css", 200, false),
        ("/assets/nope.js", 404, false),
        ("/api/snapshot", 200, true),
        ("/api/nothing", 404, true),
    ] {
        let response = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), status, "{path}");
        let headers = response.headers();
        assert_eq!(headers["content-security-policy"], CSP, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(
            headers
                .get("cache-control")
                .is_some_and(|v| v == "no-store"),
            api,
            "{path}"
        );
    }
    let page = client.get(format!("{base}/")).send().await.expect("page");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html"))
    );
}

#[tokio::test]
async fn a_foreign_host_name_is_refused() {
    let (server, _tx) = server(None, WebLimits::DEFAULT);
    let base = serve(server).await;
    let client = reqwest::Client::new();
    let refused = client
        .get(format!("{base}/api/snapshot"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(refused.headers()["content-security-policy"], CSP);
    let ok = client
        .get(format!("{base}/api/snapshot"))
        .header("host", "localhost:1234")
        .send()
        .await
        .expect("answer");
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test]
async fn posts_need_the_token_and_json_and_gets_change_nothing() {
    let (server, tx) = server(Some("s3cret"), WebLimits::DEFAULT);
    let base = serve(server.clone()).await;
    fire(&server, &tx).await;
    let client = reqwest::Client::new();
    let ack = format!("{base}/api/alerts/acknowledge");
    let body = json!({"rule": "hot", "thing": "urn:t:1", "comment": "on it"}).to_string();
    let post = |url: &str, auth: Option<&str>, content_type: Option<&str>, body: String| {
        let mut request = client.post(url).body(body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let acknowledged = |server: &Server| {
        server
            .alerts
            .active_alerts()
            .iter()
            .any(|a| a.acknowledgement.is_some())
    };

    // GETs change nothing.
    for path in ["/api/alerts/acknowledge", "/api/silences"] {
        let got = client
            .get(format!("{base}{path}?rule=hot&thing=urn:t:1&duration_s=60"))
            .header("authorization", "Bearer s3cret")
            .send()
            .await
            .expect("answer");
        assert_eq!(got.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
    // No token, a wrong one, a longer one: 401.
    for auth in [
        None,
        Some("Bearer wrong!"),
        Some("Bearer s3cret2"),
        Some("s3cret"),
    ] {
        let refused = post(&ack, auth, Some("application/json"), body.clone())
            .await
            .expect("answer");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            refused.headers()["www-authenticate"],
            "Bearer realm=\"wot-dashboard\""
        );
        let error: Value = refused.json().await.expect("JSON error");
        assert!(
            !error["error"]
                .as_str()
                .unwrap_or_default()
                .contains("s3cret")
        );
    }
    // Form posts and plain text: 415.
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let refused = post(&ack, Some("Bearer s3cret"), content_type, body.clone())
            .await
            .expect("answer");
        assert_eq!(
            refused.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
    }
    // Too large: 413; not the expected JSON: 400.
    let big = json!({"rule": "hot", "thing": "urn:t:1", "comment": "x".repeat(20_000)}).to_string();
    let refused = post(&ack, Some("Bearer s3cret"), Some("application/json"), big)
        .await
        .expect("answer");
    assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let refused = post(
        &ack,
        Some("Bearer s3cret"),
        Some("application/json"),
        "{\"rule\":".into(),
    )
    .await
    .expect("answer");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        !acknowledged(&server),
        "a refused request changed the state"
    );

    // Unknown alert: 404.
    let unknown = json!({"rule": "cold", "thing": "urn:t:1"}).to_string();
    let missing = post(
        &ack,
        Some("Bearer s3cret"),
        Some("application/json; charset=utf-8"),
        unknown,
    )
    .await
    .expect("answer");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error: Value = missing.json().await.expect("JSON error");
    assert!(error["error"].is_string());

    // The real thing.
    let done = post(&ack, Some("Bearer s3cret"), Some("application/json"), body)
        .await
        .expect("answer");
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(done.json::<Value>().await.expect("JSON"), json!({}));
    assert!(acknowledged(&server));
    let snapshot = fetch_snapshot(&client, &base).await;
    let alert = &snapshot["alerts"]["active"][0];
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["acknowledged"]["by"], "web dashboard");
    assert_eq!(alert["acknowledged"]["comment"], "on it");

    // Silences: bad durations, then one.
    let silences = format!("{base}/api/silences");
    for bad in [
        json!(0),
        json!(0.5),
        json!(604_801),
        json!(-5),
        json!("60"),
        json!(null),
    ] {
        let refused = post(
            &silences,
            Some("Bearer s3cret"),
            Some("application/json"),
            json!({"rule": "hot", "duration_s": bad}).to_string(),
        )
        .await
        .expect("answer");
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let made = post(
        &silences,
        Some("Bearer s3cret"),
        Some("application/json"),
        json!({"rule": "hot", "thing": "urn:t:1", "duration_s": 600, "comment": "defrost"})
            .to_string(),
    )
    .await
    .expect("answer");
    assert_eq!(made.status(), StatusCode::OK);
    let id = made.json::<Value>().await.expect("JSON")["id"].clone();
    assert_eq!(id, json!(1));
    let snapshot = fetch_snapshot(&client, &base).await;
    let silence = &snapshot["alerts"]["silences"][0];
    assert_eq!(
        (
            &silence["id"],
            &silence["rule"],
            &silence["thing"],
            &silence["comment"]
        ),
        (
            &json!(1),
            &json!("hot"),
            &json!("urn:t:1"),
            &json!("defrost")
        )
    );
    assert_eq!(snapshot["alerts"]["active"][0]["silenced"], true);
    let notice = snapshot["notices"]
        .as_array()
        .and_then(|n| n.last())
        .cloned();
    assert_eq!(notice.map(|n| n["kind"].clone()), Some(json!("silenced")));
}

#[tokio::test]
async fn silences_in_force_are_bounded() {
    let limits = WebLimits {
        silences: 3,
        ..WebLimits::DEFAULT
    };
    let (server, _tx) = server(None, limits);
    let base = serve(server).await;
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = client
            .post(format!("{base}/api/silences"))
            .header("content-type", "application/json")
            .body(json!({"duration_s": 60}).to_string())
            .send()
            .await
            .expect("answer");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 400, 400]);
}

#[tokio::test]
async fn streams_beyond_the_limit_get_503() {
    let limits = WebLimits {
        clients: 2,
        ..WebLimits::DEFAULT
    };
    let (server, _tx) = server(None, limits);
    let base = serve(server.clone()).await;
    let client = reqwest::Client::new();
    let url = format!("{base}/api/stream");
    let one = client.get(&url).send().await.expect("answer");
    let two = client.get(&url).send().await.expect("answer");
    assert_eq!(
        (one.status(), two.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(one.headers()["content-type"], "text/event-stream");
    assert_eq!(one.headers()["cache-control"], "no-store");
    let three = client.get(&url).send().await.expect("answer");
    assert_eq!(three.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(one);
    // The server notices the closed connection when it next writes to it.
    for _ in 0..200 {
        server.with_hub(|hub| hub.journal.push("n", &0));
        if server.clients.available_permits() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let again = client.get(&url).send().await.expect("answer");
    assert_eq!(again.status(), StatusCode::OK);
}

/// The type of each frame.
fn kinds(frames: &[Bytes]) -> Vec<String> {
    frames
        .iter()
        .map(|f| {
            let line = text(f).lines().nth(1).unwrap_or_default();
            line.trim_start_matches("event: ").to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_snapshot_and_the_changes_after_its_last_id_are_the_whole_story() {
    let (server, _tx) = server(None, WebLimits::DEFAULT);
    let update = |value: f64| {
        Feed::Property(wot_events::PropertyUpdate {
            thing_id: "urn:t:1".into(),
            property: "temperature".into(),
            value: json!(value).into(),
            timestamp: SystemTime::now(),
            event_id: None,
            schema_violation: None,
        })
    };
    server.apply(update(1.0));
    server.apply(Feed::Problem("a stream failed".into()));
    let snapshot =
        server.with_hub(|hub| hub.model.snapshot(SystemTime::now(), hub.journal.last_id()));
    let last_id = snapshot["last_id"].as_u64().expect("last_id");
    assert_eq!(last_id, 1001, "two changes from 1000");
    assert_eq!(
        snapshot["things"][0]["properties"][0]["latest"]["value"],
        1.0
    );
    assert_eq!(snapshot["notices"][0]["kind"], "problem");

    server.apply(update(2.0));
    server.apply(Feed::Event(wot_events::EventRecord {
        thing_id: "urn:t:1".into(),
        thing_title: "Fridge".into(),
        event: "x".into(),
        data: json!({}).into(),
        event_id: None,
        received_at: SystemTime::now(),
    }));
    // An unknown property is no change.
    server.apply(Feed::Property(wot_events::PropertyUpdate {
        property: "nope".into(),
        ..match update(3.0) {
            Feed::Property(u) => u,
            _ => unreachable!(),
        }
    }));
    server.refresh(SystemTime::now());
    server.refresh(SystemTime::now());
    let mut after = Vec::new();
    server
        .with_hub(|hub| hub.journal.read_after(last_id, 100, usize::MAX, &mut after))
        .expect("covered");
    // Statistics once: the second refresh found them unchanged.
    assert_eq!(kinds(&after), ["property", "event", "stats"]);
    assert!(text(&after[0]).contains("\"value\":2.0"));
    assert!(text(&after[1]).contains("\"seq\":1"));
}

/// The security headers every response must carry, and no CORS header.
fn assert_guarded(response: &reqwest::Response, what: &str) {
    let headers = response.headers();
    assert_eq!(headers["content-security-policy"], CSP, "{what}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(
        headers["cross-origin-resource-policy"], "same-origin",
        "{what}"
    );
    for (name, _) in headers {
        assert!(
            !name.as_str().starts_with("access-control-"),
            "{what}: {name}"
        );
    }
}

#[tokio::test]
async fn requests_from_another_sites_page_are_refused() {
    let (server, tx) = server(None, WebLimits::DEFAULT);
    let base = serve(server.clone()).await;
    fire(&server, &tx).await;
    let client = reqwest::Client::new();
    let own = base.trim_start_matches("http://").to_owned();
    let ack = format!("{base}/api/alerts/acknowledge");
    let body = json!({"rule": "hot", "thing": "urn:t:1"}).to_string();
    let acknowledged = |server: &Server| {
        server
            .alerts
            .active_alerts()
            .iter()
            .any(|a| a.acknowledgement.is_some())
    };
    // A cross-site POST with the right content type (a page using fetch), from another
    // site, another port of this machine, a sandboxed frame.
    for (name, value) in [
        ("origin", "http://evil.example".to_owned()),
        ("origin", format!("http://{own}0")),
        ("origin", "null".to_owned()),
        ("sec-fetch-site", "cross-site".to_owned()),
        ("sec-fetch-site", "same-site".to_owned()),
    ] {
        let refused = client
            .post(&ack)
            .header("content-type", "application/json")
            .header(name, &value)
            .body(body.clone())
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert_guarded(&refused, &value);
        let error: Value = refused.json().await.expect("JSON error");
        assert!(error["error"].is_string());
    }
    assert!(
        !acknowledged(&server),
        "a cross-site POST changed the state"
    );
    // Nor can another site's page read the snapshot or hold a stream slot.
    for path in ["/api/snapshot", "/api/stream"] {
        let refused = client
            .get(format!("{base}{path}"))
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{path}");
        assert_guarded(&refused, path);
    }
    assert_eq!(server.clients.available_permits(), 64);
    // A link from another site still opens the page.
    let page = client
        .get(format!("{base}/"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("answer");
    assert_eq!(page.status(), StatusCode::OK);
    // The page's own POST (same origin) works.
    let done = client
        .post(&ack)
        .header("content-type", "application/json")
        .header("origin", format!("http://{own}"))
        .header("sec-fetch-site", "same-origin")
        .body(body)
        .send()
        .await
        .expect("answer");
    assert_eq!(done.status(), StatusCode::OK);
    assert!(acknowledged(&server));
}

#[tokio::test]
async fn no_response_carries_cors_headers_and_errors_carry_the_security_headers() {
    let limits = WebLimits {
        clients: 1,
        ..WebLimits::DEFAULT
    };
    let (server, _tx) = server(Some("s3cret"), limits);
    let base = serve(server).await;
    let client = reqwest::Client::new();
    // A CORS preflight gets no permission.
    let preflight = client
        .request(reqwest::Method::OPTIONS, format!("{base}/api/silences"))
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .expect("answer");
    assert!(!preflight.status().is_success(), "{}", preflight.status());
    assert_guarded(&preflight, "preflight");

    let silences = format!("{base}/api/silences");
    let body = json!({"duration_s": 60}).to_string();
    let cases = [
        (
            "401",
            client
                .post(&silences)
                .header("content-type", "application/json")
                .body(body.clone()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "415",
            client
                .post(&silences)
                .header("authorization", "Bearer s3cret")
                .body(body.clone()),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "413",
            client
                .post(&silences)
                .header("authorization", "Bearer s3cret")
                .header("content-type", "application/json")
                .body(" ".repeat(20_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        ("405", client.get(&silences), StatusCode::METHOD_NOT_ALLOWED),
        (
            "421",
            client
                .get(format!("{base}/"))
                .header("host", "evil.example"),
            StatusCode::MISDIRECTED_REQUEST,
        ),
        (
            "404",
            client.get(format!("{base}/assets/..%2Fsrc%2Flib.rs")),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (what, request, status) in cases {
        let response = request.send().await.expect("answer");
        assert_eq!(response.status(), status, "{what}");
        assert_guarded(&response, what);
        let text = response.text().await.expect("body");
        assert!(!text.contains("s3cret"), "{what}: {text}");
    }
    // The stream, and the 503 past the limit.
    let stream = client
        .get(format!("{base}/api/stream"))
        .send()
        .await
        .expect("answer");
    assert_eq!(stream.status(), StatusCode::OK);
    assert_guarded(&stream, "stream");
    let full = client
        .get(format!("{base}/api/stream"))
        .send()
        .await
        .expect("answer");
    assert_eq!(full.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_guarded(&full, "503");
}

#[tokio::test]
async fn the_token_is_taken_from_the_authorization_header_only() {
    let (server, _tx) = server(Some("s3cret"), WebLimits::DEFAULT);
    let base = serve(server).await;
    let client = reqwest::Client::new();
    let body = json!({"duration_s": 60}).to_string();
    for query in [
        "?token=s3cret",
        "?access_token=s3cret",
        "?authorization=Bearer%20s3cret",
    ] {
        let refused = client
            .post(format!("{base}/api/silences{query}"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("answer");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{query}");
    }
    // Nor in a cookie, nor the body, nor as another scheme, nor a prefix of it.
    for (name, value) in [
        ("cookie", "token=s3cret"),
        ("authorization", "Basic czNjcmV0"),
        ("authorization", "Bearer s3cre"),
        ("authorization", "Bearer s3cret s3cret"),
    ] {
        let refused = client
            .post(format!("{base}/api/silences"))
            .header("content-type", "application/json")
            .header(name, value)
            .body(json!({"duration_s": 60, "token": "s3cret"}).to_string())
            .send()
            .await
            .expect("answer");
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "{name}: {value}"
        );
    }
}

/// Sends `request` over a fresh TCP connection (without closing its side); returns what
/// the server answers until it closes the connection, as text.
async fn raw(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    socket.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_chunked_body_past_the_limit_is_refused_without_being_read_whole() {
    let (server, _tx) = server(None, WebLimits::DEFAULT);
    let base = serve(server.clone()).await;
    // A chunk that says 1 MiB, no Content-Length; 20 KiB of it sent, the rest never.
    let mut request = b"POST /api/silences HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n100000\r\n".to_vec();
    request.extend_from_slice(b"{\"duration_s\": 60, \"comment\": \"");
    request.extend_from_slice("x".repeat(20 << 10).as_bytes());
    let answer = raw(&base, &request).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("content-security-policy"), "{answer}");
    let now = server.alerts.now();
    assert_eq!(
        server.with_hub(|hub| hub.model.prune_silences(&server.alerts, now)),
        0
    );
    // A small chunked body is read as usual.
    let small = r#"{"duration_s": 60}"#;
    let request = format!(
        "POST /api/silences HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{small}\r\n0\r\n\r\n",
        small.len()
    );
    let answer = raw(&base, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn garbage_positions_get_a_reset_not_an_error() {
    let (server, _tx) = server(None, WebLimits::DEFAULT);
    server.with_hub(|hub| hub.journal.push("n", &0));
    let base = serve(server.clone()).await;
    let client = reqwest::Client::new();
    let huge = "9".repeat(10_000);
    let cases: Vec<(Option<&str>, String)> = vec![
        (Some("-1"), String::new()),
        (Some("18446744073709551615"), String::new()),
        (Some("18446744073709551616"), String::new()),
        (Some(&huge), String::new()),
        (Some("1e3"), String::new()),
        (Some("abc\tdef"), String::new()),
        (None, "?after=-5".into()),
        (None, format!("?after={huge}")),
        (None, "?after=%00%0d%0a".into()),
        (None, "?after=0x3e8".into()),
    ];
    for (last, query) in cases {
        let mut request = client.get(format!("{base}/api/stream{query}"));
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        let mut response = request.send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{last:?} {query}");
        let mut seen = String::new();
        while !seen.contains("event: reset\n") {
            let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
                .await
                .expect("in time")
                .expect("read")
                .expect("more");
            seen.push_str(text(&chunk));
        }
        assert!(
            seen.contains("id: 1000\nevent: reset\ndata: {}\n\n"),
            "{last:?} {query}: {seen}"
        );
    }
}

#[tokio::test]
async fn snapshots_are_built_a_few_at_a_time() {
    let limits = WebLimits {
        snapshots: 1,
        ..WebLimits::DEFAULT
    };
    let (server, _tx) = server(None, limits);
    // One snapshot is being built: the next request waits for it.
    let busy = server.snapshots.acquire().await.expect("a place");
    let mut waiting = Box::pin(routes::snapshot(axum::extract::State(server.clone())));
    assert!(futures::poll!(waiting.as_mut()).is_pending());
    assert!(futures::poll!(waiting.as_mut()).is_pending());
    drop(busy);
    let answer = waiting.await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(server.snapshots.available_permits(), 1);
}
