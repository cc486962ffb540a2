//! Interoperability with node-wot 0.9.2, the reference WoT runtime, as a real third-party
//! server. The test is ignored by a plain `cargo test` (which reports it as ignored): `.ci/run`
//! installs node-wot, sets `WOT_EVENTS_NODE_MODULES` and runs it with `--ignored`. Run with
//! `--ignored` but without that variable, it fails and says how to set it up.

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use wot_events::{EventSubscriber, ObserveMode, ObserveOptions, SubscribeOptions};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node-wot-servient.js");

/// Starts the servient; returns the child (killed on drop) and the TD URL.
async fn start_servient() -> (Child, String) {
    let modules = match std::env::var("WOT_EVENTS_NODE_MODULES") {
        Ok(m) if !m.is_empty() => m,
        _ => panic!(
            "WOT_EVENTS_NODE_MODULES is not set: point it at a node_modules folder with \
             @node-wot/core and @node-wot/binding-http 0.9.2 (`.ci/run` installs them; see \
             docs/events.md)"
        ),
    };
    let mut child = Command::new("node")
        .arg(SCRIPT)
        .env("NODE_PATH", &modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(30),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("servient starts within 30 s")
    .expect("servient stdout");
    if line.trim().is_empty() {
        let mut err = String::new();
        if let Some(stderr) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                BufReader::new(stderr).read_to_string(&mut err),
            )
            .await;
        }
        panic!("the node-wot servient did not start:\n{err}");
    }
    // node-wot logs to stderr: drain it so the servient never blocks or fails on a full or
    // closed pipe. The task ends with the process (end of the pipe).
    if let Some(mut stderr) = child.stderr.take() {
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        });
    }
    let info: serde_json::Value = serde_json::from_str(&line).expect("servient prints JSON");
    let td = info["td"].as_str().expect("td url").to_owned();
    (child, td)
}

#[tokio::test]
#[ignore = "needs node-wot 0.9.2: .ci/run installs it and runs this with --ignored"]
async fn node_wot_read_write_invoke_observe_subscribe() {
    let (mut child, td_url) = start_servient().await;
    let subscriber = EventSubscriber::new();
    let lamp = subscriber
        .fetch_thing(&td_url)
        .await
        .expect("node-wot's TD loads and validates");
    assert_eq!(lamp.id(), "urn:example:test-lamp");
    assert_eq!(lamp.title(), "Test Lamp");

    // One-shot operations over the JSON forms (the CBOR forms are skipped).
    assert_eq!(
        subscriber.read_property(&lamp, "counter").await.unwrap(),
        json!(0)
    );
    subscriber
        .write_property(&lamp, "brightness", &json!(70))
        .await
        .unwrap();
    assert_eq!(
        subscriber.read_property(&lamp, "brightness").await.unwrap(),
        json!(70)
    );
    // Out of the TD's range: refused before sending.
    let err = subscriber
        .write_property(&lamp, "brightness", &json!(170))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), wot_events::ErrorKind::InvalidInput, "{err}");
    let out = subscriber
        .invoke_action(&lamp, "increment", Some(&json!(1)))
        .await
        .unwrap();
    assert_eq!(out, json!(1));

    // Observe `brightness` (node-wot offers longpoll): keep writing until the observer's
    // pending GET sees a change.
    let mut observer = subscriber
        .observe_property(&lamp, "brightness", ObserveOptions::new())
        .unwrap();
    assert_eq!(observer.connections()[0].1, ObserveMode::LongPoll);
    let writer = {
        let subscriber = subscriber.clone();
        let lamp = lamp.clone();
        async move {
            for v in 10..60 {
                subscriber
                    .write_property(&lamp, "brightness", &json!(v))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let update = tokio::select! {
        u = observer.next() => u.expect("an update").expect("a valid update"),
        () = writer => panic!("no property update within 50 writes"),
    };
    let v = update.value.as_i64().expect("integer");
    assert!((10..60).contains(&v), "{update:?}");
    assert_eq!(update.property, "brightness");
    assert!(update.schema_violation.is_none());
    assert_eq!(
        observer.latest("brightness").map(|(_, v)| v.clone()),
        Some(update.value)
    );
    drop(observer);

    // Subscribe `stepped` (longpoll too): keep invoking until the event arrives.
    let mut events = subscriber
        .subscribe(&lamp, "stepped", SubscribeOptions::new())
        .unwrap();
    let invoker = {
        let subscriber = subscriber.clone();
        let lamp = lamp.clone();
        async move {
            for _ in 0..50 {
                subscriber
                    .invoke_action(&lamp, "increment", Some(&json!(2)))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let record = tokio::select! {
        r = events.next() => r.expect("an event").expect("a valid event"),
        () = invoker => panic!("no event within 50 invocations"),
    };
    assert_eq!(record.event, "stepped");
    assert_eq!(record.thing_id, "urn:example:test-lamp");
    assert_eq!(record.data["step"], json!(2));
    let counter = record.data["counter"].as_i64().expect("counter");
    assert!(counter >= 3 && (counter - 1) % 2 == 0, "{record:?}");
    assert_eq!(events.buffered_records(), vec![record]);
    events.unsubscribe();
    assert!(events.next().await.is_none());

    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
}
