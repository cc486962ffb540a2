//! The manager's life: settings checked by `start`, graceful shutdown within a deadline (under
//! paused time, with callbacks and a real webhook server on 127.0.0.1), terminal errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};
use wot_alerts::{
    AlertManager, ErrorKind, Format, ManagerEvent, NotificationKind, PropertyUpdate, RuleSet,
    StatusCode,
};

fn rules(yaml: &str) -> RuleSet {
    RuleSet::from_str(yaml, Format::Yaml, "test.yaml").unwrap()
}

fn hot(thing: &str) -> PropertyUpdate {
    PropertyUpdate::new(thing, "temperature", json!(9))
}

/// Waits for `count` fired notifications: their action jobs are queued by then.
async fn fired(events: &mut (impl Stream<Item = ManagerEvent> + Unpin), count: usize) {
    let mut seen = 0;
    while seen < count {
        match events.next().await.unwrap() {
            ManagerEvent::Notification(n) if n.kind == NotificationKind::Fired => seen += 1,
            _ => {}
        }
    }
}

#[tokio::test]
async fn bad_settings_are_reported_by_start_and_named() {
    let start = |b: wot_alerts::AlertManagerBuilder| {
        b.start(futures_util::stream::empty::<PropertyUpdate>())
            .unwrap_err()
    };
    let builder = || AlertManager::builder(RuleSet::new());
    for (error, setting) in [
        (start(builder().queue_capacity(0)), "queue_capacity"),
        (
            start(builder().queue_capacity(usize::MAX)),
            "queue_capacity",
        ),
        (start(builder().events_capacity(0)), "events_capacity"),
        (
            start(builder().events_capacity(usize::MAX)),
            "events_capacity",
        ),
        (
            start(builder().action_timeout(Duration::ZERO)),
            "action_timeout",
        ),
        (
            start(builder().backoff(Duration::from_secs(3600))),
            "backoff",
        ),
    ] {
        assert_eq!(error.kind(), ErrorKind::Setting, "{error}");
        assert!(error.is_setting() && error.is_terminal());
        assert_eq!(error.setting(), Some(setting));
        assert!(error.to_string().contains(setting), "{error}");
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_queued_actions_within_the_deadline() {
    let set = rules(
        "rules: [{ id: hot, thing: '*', property: temperature, condition: { gt: 8 }, actions: [app] }]\n\
         actions:\n  app: { type: callback }\n",
    );
    let done = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&done);
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(set)
        .callback("app", move |_| {
            let counter = Arc::clone(&counter);
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    for thing in ["a", "b", "c"] {
        tx.send(hot(thing)).await.unwrap();
    }
    fired(&mut events, 3).await;

    // Each job takes 1 s: by 2.5 s two are delivered and the third is cut off mid-way.
    let t0 = Instant::now();
    let undelivered = manager.shutdown(Duration::from_millis(2500)).await;
    assert_eq!(t0.elapsed(), Duration::from_millis(2500));
    assert_eq!(done.load(Ordering::SeqCst), 2);
    assert_eq!(undelivered.len(), 1, "{undelivered:?}");
    let left = &undelivered[0];
    assert_eq!((left.action.as_str(), left.thing.as_str()), ("app", "c"));
    assert_eq!(left.attempts, 1);
    assert_eq!(left.error.kind(), ErrorKind::Shutdown);
    assert!(left.error.is_terminal());
    assert!(tx.is_closed(), "updates are no longer read");
}

#[tokio::test(start_paused = true)]
async fn shutdown_with_time_enough_delivers_everything() {
    let set = rules(
        "rules: [{ id: hot, thing: '*', property: temperature, condition: { gt: 8 }, actions: [app] }]\n\
         actions:\n  app: { type: callback }\n",
    );
    let done = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&done);
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(set)
        .callback("app", move |_| {
            let counter = Arc::clone(&counter);
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    for thing in ["a", "b", "c"] {
        tx.send(hot(thing)).await.unwrap();
    }
    fired(&mut events, 3).await;
    let t0 = Instant::now();
    let undelivered = manager.shutdown(Duration::from_secs(60)).await;
    assert!(undelivered.is_empty(), "{undelivered:?}");
    assert_eq!(done.load(Ordering::SeqCst), 3);
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(3),
        "it returns once drained"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_returns_webhooks_a_silent_server_did_not_take() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3600)))
        .mount(&server)
        .await;
    let set = rules(&format!(
        "rules: [{{ id: hot, thing: '*', property: temperature, condition: {{ gt: 8 }}, actions: [ops] }}]\n\
         actions:\n  ops: {{ type: webhook, url: \"{}/hook?token=s3cret\" }}\n",
        server.uri()
    ));
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(set)
        .action_timeout(Duration::from_secs(10))
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    for thing in ["a", "b", "c"] {
        tx.send(hot(thing)).await.unwrap();
    }
    fired(&mut events, 3).await;
    let t0 = Instant::now();
    let undelivered = manager.shutdown(Duration::from_secs(30)).await;
    assert_eq!(t0.elapsed(), Duration::from_secs(30));
    let things: Vec<&str> = undelivered.iter().map(|f| f.thing.as_str()).collect();
    assert_eq!(things, ["a", "b", "c"]);
    assert!(undelivered[0].attempts >= 1);
    assert_eq!((undelivered[1].attempts, undelivered[2].attempts), (0, 0));
    for f in &undelivered {
        assert_eq!(f.error.kind(), ErrorKind::Shutdown);
        assert!(!format!("{f:?}").contains("s3cret"), "{f:?}");
    }
    assert!(tx.is_closed());
}

#[tokio::test]
async fn a_status_that_retrying_cannot_fix_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let set = rules(&format!(
        "rules: [{{ id: hot, thing: '*', property: temperature, condition: {{ gt: 8 }}, actions: [ops] }}]\n\
         actions:\n  ops: {{ type: webhook, url: \"{}/hook?token=s3cret\" }}\n",
        server.uri()
    ));
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(set)
        .retries(3)
        .backoff(Duration::from_millis(10))
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    tx.send(hot("a")).await.unwrap();
    let failure = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
            Ok(Some(ManagerEvent::ActionFailed(f))) => break f,
            Ok(Some(_)) => continue,
            other => panic!("no failure: {other:?}"),
        }
    };
    assert_eq!(failure.attempts, 1);
    assert_eq!(failure.error.status(), Some(StatusCode::NOT_FOUND));
    assert!(failure.error.is_terminal());
    assert_eq!(
        failure.error.url().map(|u| u.ends_with("/hook")),
        Some(true)
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}
