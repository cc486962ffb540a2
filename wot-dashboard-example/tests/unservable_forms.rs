//! The real binary against a Thing some of whose forms it cannot serve (`file:`,
//! `javascript:`, `data:` hrefs): it runs, watches the good affordances, and reports each
//! unusable one as a `skipped` line and a log warning instead of exiting.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::header;
use axum::routing::get;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_wot-dashboard-example");

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves `/td`: property `temp` with a `file:` form before a good one, property `secret`
/// with only a `file:` form, event `alarm` with a `javascript:` form before a good SSE one,
/// event `leak` with only a `data:` form. Returns the TD's URL.
async fn thing_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:dev:partly-served", "title": "Partly served",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {
            "temp": {"type": "number", "forms": [
                {"href": "file:///etc/passwd"},
                {"href": format!("{base}/temp")}
            ]},
            "secret": {"type": "string", "forms": [{"href": "file:///etc/passwd"}]}
        },
        "events": {
            "alarm": {"forms": [
                {"href": "javascript:alert(1)", "subprotocol": "sse"},
                {"href": format!("{base}/alarm"), "subprotocol": "sse"}
            ]},
            "leak": {"forms": [{"href": "data:text/event-stream,x", "subprotocol": "sse"}]}
        }
    });
    let alarm = || async {
        (
            [(header::CONTENT_TYPE, "text/event-stream")],
            "retry: 200\nevent: alarm\ndata: {\"level\": 3}\n\n",
        )
    };
    let app = Router::new()
        .route("/td", get(move || async move { axum::Json(td) }))
        .route("/temp", get(|| async { axum::Json(json!(21.5)) }))
        .route("/alarm", get(alarm));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("{base}/td")
}

#[test]
fn a_thing_with_unservable_forms_runs_with_its_good_affordances() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (tx, rx) = mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(thing_server().await);
    });
    let td = rx.recv_timeout(Duration::from_secs(10)).expect("server up");

    let mut child = Command::new(BIN)
        .args([
            "--headless",
            "--no-state",
            "--duration",
            "60s",
            "--thing",
            &td,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the dashboard starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let child = Running(child);
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line: {line:?}: {e}"));
            if lines_tx.send(value).is_err() {
                break;
            }
        }
    });

    let mut skipped = BTreeSet::new();
    let mut temp = None;
    let mut alarm = None;
    let give_up = Instant::now() + Duration::from_secs(30);
    while skipped.len() < 2 || temp.is_none() || alarm.is_none() {
        let left = give_up.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).unwrap_or_else(|_| {
            panic!("after 30 s: skipped {skipped:?}, temp {temp:?}, alarm {alarm:?}")
        });
        assert!(!line.to_string().contains("root:"), "{line}");
        match line["type"].as_str() {
            Some("skipped") => {
                assert_eq!(line["thing"], "urn:dev:partly-served", "{line}");
                let reason = line["reason"].as_str().unwrap_or_default();
                assert!(reason.contains("only over"), "{line}");
                assert!(!reason.contains("/etc/passwd"), "{line}");
                skipped.insert((
                    line["kind"].as_str().unwrap_or_default().to_owned(),
                    line["name"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            Some("property") if line["property"] == "temp" => temp = Some(line["value"].clone()),
            Some("event") if line["event"] == "alarm" => alarm = Some(line["data"].clone()),
            Some("property" | "event") => panic!("a skipped affordance produced a value: {line}"),
            _ => {}
        }
    }
    assert_eq!(
        skipped,
        BTreeSet::from([
            ("event".to_owned(), "leak".to_owned()),
            ("property".to_owned(), "secret".to_owned()),
        ])
    );
    assert_eq!(temp, Some(json!(21.5)));
    assert_eq!(alarm, Some(json!({"level": 3})));

    drop(child);
    let stderr = errors.join().expect("stderr reader");
    for name in ["secret", "leak"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("WARN") && l.contains(&format!("affordance={name}"))),
            "{stderr}"
        );
    }
    assert!(stderr.contains("thing=urn:dev:partly-served"), "{stderr}");
    drop(runtime);
}
