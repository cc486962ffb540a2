//! End to end: the real binary with `--web` and its embedded simulator (or a Thing served
//! here), read through the JSON snapshot and the live stream with our own `wot-sse` client.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use serde_json::{Value, json};
use wot_sse::{Event, SseClient};

const THINGS: [&str; 4] = [
    "urn:wot-live:sim:fridge-1",
    "urn:wot-live:sim:pump-1",
    "urn:wot-live:sim:air-1",
    "urn:wot-live:sim:solar-1",
];

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The dashboard serving the web page; returns the base URL (`http://127.0.0.1:PORT`) and the
/// token from the printed line, if any.
fn web(args: &[&str]) -> (Running, String, Option<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"));
    // No state directory: these runs must neither read nor write the user's.
    command.args(args).arg("--no-state");
    if !args.contains(&"--duration") {
        command.args(["--duration", "90s"]);
    }
    if !args.contains(&"--sim-tick") && !args.contains(&"--thing") {
        command.args(["--sim-tick", "50ms"]);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the dashboard binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (errors_tx, errors) = mpsc::channel();
    std::thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect();
        let _ = errors_tx.send(lines.join("\n"));
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let running = Running(child);
    let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
        let stderr = errors
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        panic!("the dashboard printed no URL; stderr: {stderr}");
    };
    let url = line
        .strip_prefix("web: http://")
        .unwrap_or_else(|| panic!("not the web line: {line:?}"));
    let (host, token) = match url.split_once("/#token=") {
        Some((host, token)) => (host, Some(token.to_owned())),
        None => (url.strip_suffix('/').expect("ends with /"), None),
    };
    let port = host.rsplit_once(':').expect("a port").1;
    (running, format!("http://127.0.0.1:{port}"), token)
}

async fn snapshot(base: &str) -> Value {
    reqwest::get(format!("{base}/api/snapshot"))
        .await
        .expect("snapshot answer")
        .json()
        .await
        .expect("snapshot JSON")
}

/// Reads `n` events from the stream (with a generous time limit).
async fn take(stream: &mut wot_sse::EventStream, n: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let read = async {
        while events.len() < n {
            match stream.next().await {
                Some(Ok(event)) => events.push(event),
                Some(Err(error)) => panic!("stream error: {error}"),
                None => break,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("events in time");
    events
}

fn id(event: &Event) -> u64 {
    event.id().parse().expect("numeric ids")
}

#[tokio::test]
async fn snapshot_then_stream_then_resume_loses_and_repeats_nothing() {
    let (_running, base, token) = web(&["--web", "127.0.0.1:0"]);
    assert_eq!(token, None, "no token on loopback unless asked for");

    let snap = snapshot(&base).await;
    assert_eq!(snap["version"], 1);
    let ids: Vec<&str> = snap["things"]
        .as_array()
        .expect("things")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, THINGS);
    assert!(
        snap["things"][0]["properties"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    assert!(snap["rules"].as_array().is_some_and(|r| !r.is_empty()));
    let last_id = snap["last_id"].as_u64().expect("last_id");

    // From the snapshot's last id: the next ids, one by one.
    let client = SseClient::new();
    let mut stream = client
        .get(format!("{base}/api/stream?after={last_id}"))
        .connect()
        .expect("stream");
    let first = take(&mut stream, 60).await;
    assert_eq!(id(&first[0]), last_id + 1);
    for pair in first.windows(2) {
        assert_eq!(id(&pair[1]), id(&pair[0]) + 1, "ids follow each other");
    }
    let property = first
        .iter()
        .find(|e| e.event_type() == "property")
        .expect("live property values");
    let data: Value = serde_json::from_str(property.data()).expect("JSON data");
    assert!(
        THINGS.contains(&data["thing"].as_str().unwrap_or_default()),
        "{data}"
    );
    assert!(
        data["at"].is_u64() && data["property"].is_string(),
        "{data}"
    );
    let seen = id(first.last().expect("events"));
    drop(stream);

    // Gone for a moment, back with Last-Event-ID: exactly the events after it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut resumed = client
        .get(format!("{base}/api/stream?after=1"))
        .last_event_id(seen.to_string())
        .connect()
        .expect("stream");
    let again = take(&mut resumed, 30).await;
    assert_eq!(id(&again[0]), seen + 1, "Last-Event-ID wins over after=");
    for pair in again.windows(2) {
        assert_eq!(id(&pair[1]), id(&pair[0]) + 1);
    }
    assert!(again.iter().all(|e| e.event_type() != "reset"));

    // A later snapshot reflects the changes up to its own last id.
    let later = snapshot(&base).await;
    assert!(later["last_id"].as_u64().expect("last_id") >= id(again.last().expect("events")));
}

#[tokio::test]
async fn a_position_from_before_the_buffer_or_another_run_gets_reset() {
    let (_running, base, _) = web(&["--web", "127.0.0.1:0"]);
    let client = SseClient::new();
    for position in ["1", "99999999999999999", "not-a-number"] {
        let mut stream = client
            .get(format!("{base}/api/stream"))
            .last_event_id(position)
            .connect()
            .expect("stream");
        let events = take(&mut stream, 3).await;
        assert_eq!(events[0].event_type(), "reset", "{position}");
        assert_eq!(events[0].data(), "{}");
        // It goes on from the newest id.
        assert_eq!(id(&events[1]), id(&events[0]) + 1, "{position}");
    }
    // The raw stream starts with the reconnection time.
    let response = reqwest::get(format!("{base}/api/stream"))
        .await
        .expect("answer");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let first = body.next().await.expect("bytes").expect("bytes");
    assert!(first.starts_with(b"retry: 2000\n\n"), "{first:?}");
}

#[tokio::test]
async fn acknowledging_and_silencing_need_the_printed_token() {
    // Any address: a token is generated and printed.
    let (_running, base, token) = web(&["--web", "0.0.0.0:0", "--sim-tick", "20ms"]);
    let token = token.expect("a generated token");
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    let client = reqwest::Client::new();
    let page = client.get(format!("{base}/")).send().await.expect("page");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .is_ok_and(|c| c.contains("script-src 'self'"))
    );

    let silence = json!({"rule": "pump-silent", "duration_s": 60}).to_string();
    let refused = client
        .post(format!("{base}/api/silences"))
        .header("content-type", "application/json")
        .body(silence.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 401);
    let made = client
        .post(format!("{base}/api/silences"))
        .header("content-type", "application/json")
        .bearer_auth(&token)
        .body(silence)
        .send()
        .await
        .expect("answer");
    assert_eq!(made.status(), 200);
    let number = made.json::<Value>().await.expect("JSON")["id"].clone();
    let snap = snapshot(&base).await;
    assert_eq!(snap["alerts"]["silences"][0]["id"], number);
    assert_eq!(snap["alerts"]["silences"][0]["rule"], "pump-silent");

    // Wait for an alert to fire, then acknowledge it (one that resolves first answers 404:
    // then the next one).
    let acknowledged = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let snap = snapshot(&base).await;
            let firing = snap["alerts"]["active"]
                .as_array()
                .and_then(|a| a.iter().find(|a| a["state"] == "firing").cloned());
            if let Some(alert) = firing {
                let ack =
                    json!({"rule": alert["rule"], "thing": alert["thing"], "comment": "seen"});
                let done = client
                    .post(format!("{base}/api/alerts/acknowledge"))
                    .header("content-type", "application/json")
                    .bearer_auth(&token)
                    .body(ack.to_string())
                    .send()
                    .await
                    .expect("answer");
                match done.status().as_u16() {
                    200 => return alert,
                    404 => {}
                    other => panic!("acknowledging answered {other}"),
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("an alert fires and is acknowledged");
    let snap = snapshot(&base).await;
    let notices = snap["notices"].as_array().expect("notices");
    assert!(
        notices.iter().any(|n| n["kind"] == "silenced"),
        "{notices:?}"
    );
    let recorded = snap["alerts"]["active"]
        .as_array()
        .expect("active")
        .iter()
        .chain(snap["alerts"]["resolved"].as_array().expect("resolved"))
        .any(|a| a["rule"] == acknowledged["rule"] && a["acknowledged"]["comment"] == "seen");
    assert!(recorded, "{}", snap["alerts"]);
}

/// A Thing whose title is markup.
async fn markup_thing() -> String {
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:markup:1",
        "title": "<script>alert(1)</script><img src=x onerror=alert(2)>",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {
            "level": {"type": "number", "title": "</script>", "forms": [
                {"href": "/p", "op": ["readproperty"]},
                {"href": "/sse", "op": ["observeproperty"], "subprotocol": "sse"}
            ]}
        }
    });
    let sse = || async {
        (
            [(header::CONTENT_TYPE, "text/event-stream")],
            "retry: 60000\ndata: 1\n\n",
        )
            .into_response()
    };
    let app = Router::new()
        .route("/td", get(move || async move { axum::Json(td) }))
        .route("/sse", get(sse))
        .route("/p", get(|| async { axum::Json(json!(1)) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/td")
}

// Two threads: the test blocks one while the binary fetches the TD from the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_a_td_arrives_as_a_json_string() {
    let td = markup_thing().await;
    let (_running, base, _) = web(&["--web", "127.0.0.1:0", "--thing", &td]);
    let body = reqwest::get(format!("{base}/api/snapshot"))
        .await
        .expect("answer")
        .text()
        .await
        .expect("body");
    let snap: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        snap["things"][0]["title"],
        "<script>alert(1)</script><img src=x onerror=alert(2)>"
    );
    assert_eq!(snap["things"][0]["properties"][0]["title"], "</script>");
    // Only as a JSON string value: never outside one.
    assert!(body.contains(r#""title":"<script>alert(1)</script><img src=x onerror=alert(2)>""#));
}

#[tokio::test]
async fn duration_ends_the_web_run_even_with_streams_open() {
    let (mut running, base, _) = web(&["--web", "127.0.0.1:0", "--duration", "3s"]);
    let client = SseClient::new();
    let mut stream = client
        .get(format!("{base}/api/stream"))
        .connect()
        .expect("stream");
    let _ = take(&mut stream, 1).await;
    let raw = reqwest::get(format!("{base}/api/stream"))
        .await
        .expect("a second, idle stream");
    let ended = tokio::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = running.0.try_wait().expect("status") {
                return Some((status, start.elapsed()));
            }
            if start.elapsed() > Duration::from_secs(20) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("waiter");
    let (status, _) = ended.expect("the run ends soon after --duration");
    assert!(status.success(), "{status:?}");
    drop(raw);
}

#[tokio::test]
async fn the_raw_stream_is_plain_whatwg_server_sent_events() {
    let (_running, base, _) = web(&["--web", "127.0.0.1:0"]);
    let response = reqwest::get(format!("{base}/api/stream"))
        .await
        .expect("answer");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let read = async {
        // Long enough for a statistics refresh (once a second).
        while text.matches("event: stats\n").count() < 2 {
            let chunk = body.next().await.expect("more").expect("bytes");
            text.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("statistics within 30 s");
    let text = text.rsplit_once("\n\n").expect("whole events").0;
    let mut blocks = text.split("\n\n");
    assert_eq!(blocks.next(), Some("retry: 2000"));
    let mut types = std::collections::BTreeSet::new();
    let mut last = None;
    for block in blocks {
        if block == ": keep-alive" {
            continue;
        }
        let lines: Vec<&str> = block.split('\n').collect();
        assert_eq!(lines.len(), 3, "id, event, data: {block:?}");
        let id: u64 = lines[0]
            .strip_prefix("id: ")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("an id line: {block:?}"));
        if let Some(last) = last {
            assert_eq!(id, last + 1, "{block:?}");
        }
        last = Some(id);
        let kind = lines[1].strip_prefix("event: ").expect("an event line");
        types.insert(kind.to_owned());
        let data = lines[2].strip_prefix("data: ").expect("a data line");
        let _: Value = serde_json::from_str(data).expect("one line of JSON");
        assert!(!data.contains('\r'));
    }
    for kind in ["property", "stats"] {
        assert!(types.contains(kind), "{kind} in {types:?}");
    }
}

#[tokio::test]
async fn rules_that_do_not_fit_the_things_are_listed_with_a_suggestion() {
    let path = std::env::temp_dir().join(format!("web-rules-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "rules:\n  - {id: typo, thing: 'urn:wot-live:sim:pump-1', property: presure, condition: {gt: 7}}\n",
    )
    .expect("rules file");
    let rules = path.to_str().expect("UTF-8 path").to_owned();
    let (_running, base, _) = web(&["--web", "127.0.0.1:0", "--rules", &rules]);
    let snap = snapshot(&base).await;
    let _ = std::fs::remove_file(&path);
    assert_eq!(snap["rules"][0]["id"], "typo");
    assert_eq!(snap["rules"][0]["condition"], "value > 7");
    let warnings = snap["rule_warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("typo") && w.contains("pressure"))),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_given_token_is_required_on_loopback_too() {
    let (_running, base, token) = web(&["--web", "127.0.0.1:0", "--web-token", "given-token"]);
    assert_eq!(token.as_deref(), Some("given-token"));
    let client = reqwest::Client::new();
    let post = |auth: &'static str| {
        client
            .post(format!("{base}/api/silences"))
            .header("content-type", "application/json")
            .header("authorization", auth)
            .body(json!({"duration_s": 5}).to_string())
            .send()
    };
    assert_eq!(post("Bearer wrong").await.expect("answer").status(), 401);
    assert_eq!(
        post("Bearer given-token").await.expect("answer").status(),
        200
    );
}

#[test]
fn an_address_in_use_is_an_error_that_names_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args(["--web", &addr, "--duration", "30s"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (--web)")),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no web: line without a server");
}

/// A Thing that sends a 200 KB property value and a 200 KB event.
async fn bulky_thing() -> String {
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:bulky:1",
        "title": "Bulky",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {
            "text": {"type": "string", "forms": [
                {"href": "/p", "op": ["readproperty"]},
                {"href": "/sse", "op": ["observeproperty"], "subprotocol": "sse"}
            ]}
        },
        "events": {
            "blob": {"forms": [{"href": "/events", "op": ["subscribeevent"], "subprotocol": "sse"}]}
        }
    });
    let big = "x".repeat(200_000);
    let read = big.clone();
    let value = format!("retry: 60000\ndata: \"{big}\"\n\n");
    let event = format!("retry: 60000\nid: 1\nevent: blob\ndata: {{\"blob\": \"{big}\"}}\n\n");
    let sse = |body: String| {
        move || async move { ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response() }
    };
    let app = Router::new()
        .route("/td", get(move || async move { axum::Json(td) }))
        .route("/sse", get(sse(value)))
        .route("/events", get(sse(event)))
        .route("/p", get(move || async move { axum::Json(json!(read)) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/td")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_values_and_event_data_from_a_thing_are_kept_cut() {
    let td = bulky_thing().await;
    let (_running, base, _) = web(&["--web", "127.0.0.1:0", "--thing", &td]);
    let snap = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let snap = snapshot(&base).await;
            let has_value = snap["things"][0]["properties"][0]["latest"]["value"]
                .as_str()
                .is_some_and(|v| v.len() > 100);
            let has_event = snap["events"].as_array().is_some_and(|e| !e.is_empty());
            if has_value && has_event {
                return snap;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the value and the event arrive");
    let value = snap["things"][0]["properties"][0]["latest"]["value"]
        .as_str()
        .expect("a string");
    assert!(
        value.len() <= 4096 && value.ends_with('…'),
        "{}",
        value.len()
    );
    let data = snap["events"][0]["data"]
        .as_str()
        .expect("cut to its JSON text");
    assert!(
        data.len() <= 16 * 1024 && data.starts_with("{\"blob\":\"xxx"),
        "{}",
        data.len()
    );
    assert_eq!(snap["events"][0]["event"], "blob");
}

/// An attacker's view of a dashboard on every address: a foreign page cannot post even
/// with the right content type (and not even with the token), the token is taken from the
/// `Authorization` header only, and it reaches no log line, even at `RUST_LOG=trace`.
#[tokio::test]
async fn the_token_stays_out_of_the_logs_and_other_sites_cannot_post() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args([
            "--web",
            "0.0.0.0:0",
            "--duration",
            "8s",
            "--sim-tick",
            "50ms",
        ])
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the dashboard binary starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut running = Running(child);
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the web line");
    let (host, token) = line
        .strip_prefix("web: http://")
        .and_then(|u| u.split_once("/#token="))
        .expect("a URL with a token");
    let token = token.to_owned();
    let port = host.rsplit_once(':').expect("a port").1;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let silence = json!({"duration_s": 60}).to_string();
    let post = |query: &str| {
        client
            .post(format!("{base}/api/silences{query}"))
            .header("content-type", "application/json")
            .body(silence.clone())
    };

    let cross = post("")
        .bearer_auth(&token)
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("answer");
    assert_eq!(cross.status(), 403);
    let in_url = post(&format!("?token={token}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(in_url.status(), 401);
    let wrong = post("")
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong.status(), 401);
    let text = wrong.text().await.expect("body");
    assert!(!text.contains(&token), "{text}");
    let own = post("")
        .bearer_auth(&token)
        .header("origin", format!("http://127.0.0.1:{port}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("answer");
    assert_eq!(own.status(), 200);
    let snap = snapshot(&base).await;
    assert_eq!(snap["alerts"]["silences"].as_array().map(Vec::len), Some(1));

    let ended = tokio::task::spawn_blocking(move || {
        let status = running.0.wait();
        (running, status)
    });
    let (_running, status) = tokio::time::timeout(Duration::from_secs(60), ended)
        .await
        .expect("the --duration ends the run")
        .expect("joined");
    assert!(status.expect("exit status").success());
    let logs = logs.join().expect("stderr read");
    assert!(logs.contains("web dashboard listening"), "tracing was on");
    assert!(!logs.contains(&token), "the token is in the logs");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.iter().all(|l| !l.contains(&token)), "{rest:?}");
}
