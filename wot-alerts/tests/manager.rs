//! The async `AlertManager`: timers under paused time, runtime changes, and actions against real
//! HTTP servers on 127.0.0.1 (wiremock).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};
use wot_alerts::{
    AlertManager, AlertState, Condition, ErrorKind, Format, ManagerEvent, NotificationKind,
    PropertyUpdate, Rule, RuleSet, Silence, StatusCode,
};

const START: Duration = Duration::from_secs(1_800_000_000);

fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + START
}

fn rules(yaml: &str) -> RuleSet {
    RuleSet::from_str(yaml, Format::Yaml, "test.yaml").unwrap()
}

fn update(thing: &str, property: &str, value: Value) -> PropertyUpdate {
    PropertyUpdate::new(thing, property, value)
}

/// The next notification, skipping other events; panics after an hour (of paused or real time).
async fn next_notification(
    events: &mut (impl Stream<Item = ManagerEvent> + Unpin),
) -> Arc<wot_alerts::Notification> {
    loop {
        match tokio::time::timeout(Duration::from_secs(3600), events.next()).await {
            Ok(Some(ManagerEvent::Notification(n))) => return n,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("event stream ended"),
            Err(_) => panic!("no notification within an hour"),
        }
    }
}

async fn next_failure(
    events: &mut (impl Stream<Item = ManagerEvent> + Unpin),
) -> wot_alerts::ActionFailure {
    loop {
        match tokio::time::timeout(Duration::from_secs(3600), events.next()).await {
            Ok(Some(ManagerEvent::ActionFailed(f))) => return f,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("event stream ended"),
            Err(_) => panic!("no action failure within an hour"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn timer_fires_and_resolves_without_new_updates() {
    let set = rules(
        "rules:\n  - { id: hot, thing: fridge-1, property: temperature, condition: { gt: 8 }, for: 30s, keep_firing_for: 1m }\n",
    );
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(set)
        .start_time(start())
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());

    tx.send(update("fridge-1", "temperature", json!(12)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(29)).await;
    let active = manager.active_alerts();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].state, AlertState::Pending);

    let fired = next_notification(&mut events).await;
    assert_eq!(fired.kind, NotificationKind::Fired);
    assert_eq!(fired.at, start() + Duration::from_secs(30));

    tx.send(update("fridge-1", "temperature", json!(3)))
        .await
        .unwrap();
    let sent_at = manager.now();
    let resolved = next_notification(&mut events).await;
    assert_eq!(resolved.kind, NotificationKind::Resolved);
    assert_eq!(resolved.at, sent_at + Duration::from_secs(60));
    assert!(manager.active_alerts().is_empty());
    assert_eq!(manager.history().len(), 1);
    assert_eq!(manager.history()[0].state, AlertState::Resolved);
}

#[tokio::test(start_paused = true)]
async fn no_data_fires_after_the_stream_goes_quiet() {
    let set = rules(
        "rules:\n  - { id: silent, thing: sensor-1, property: temperature, condition: { no_data: 2m } }\n",
    );
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(set)
        .start_time(start())
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    tx.send(update("sensor-1", "temperature", json!(20)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop(tx); // the stream ends; timers go on
    let n = next_notification(&mut events).await;
    assert_eq!(n.kind, NotificationKind::Fired);
    assert_eq!(n.at, start() + Duration::from_secs(120));
}

#[tokio::test(start_paused = true)]
async fn rules_acknowledgements_and_silences_at_run_time() {
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(RuleSet::new())
        .start_time(start())
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());

    let mut rule = Rule::new("low", "*", "pressure", Condition::Lt(2.0));
    rule.repeat_interval = Some(Duration::from_secs(60));
    manager.add_rule(rule.clone()).unwrap();
    assert!(
        manager
            .add_rule(rule)
            .unwrap_err()
            .to_string()
            .contains("same id")
    );
    let mut unknown = Rule::new("x", "*", "pressure", Condition::Lt(2.0));
    unknown.actions = vec!["pager".into()];
    assert!(
        manager
            .add_rule(unknown)
            .unwrap_err()
            .to_string()
            .contains("`pager`")
    );
    assert_eq!(manager.rule_ids(), ["low"]);

    tx.send(update("pump-1", "pressure", json!(1)))
        .await
        .unwrap();
    assert_eq!(
        next_notification(&mut events).await.kind,
        NotificationKind::Fired
    );
    let repeat = next_notification(&mut events).await;
    assert_eq!((repeat.kind, repeat.repeat), (NotificationKind::Fired, 1));

    manager
        .acknowledge("low", "pump-1", "ana", Some("on it".into()))
        .unwrap();
    let ack = next_notification(&mut events).await;
    assert_eq!(ack.kind, NotificationKind::Acknowledged);
    assert_eq!(ack.alert.acknowledgement.as_ref().unwrap().by, "ana");
    assert!(manager.acknowledge("low", "pump-9", "ana", None).is_err());

    let now = manager.now();
    let id = manager.add_silence(Silence::new(now, now + Duration::from_secs(3600)).rule("low"));
    assert_eq!(manager.silences().len(), 1);
    tx.send(update("pump-2", "pressure", json!(0)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        manager.active_alerts().len(),
        2,
        "silences do not change state"
    );
    assert!(manager.remove_silence(id));

    // Removing the rule resolves its firing alerts and notifies it.
    assert!(manager.remove_rule("low"));
    let mut resolved: Vec<String> = Vec::new();
    for _ in 0..2 {
        let n = next_notification(&mut events).await;
        assert_eq!(n.kind, NotificationKind::Resolved);
        resolved.push(n.alert.thing.clone());
    }
    assert_eq!(resolved, ["pump-1", "pump-2"]);
    assert!(manager.active_alerts().is_empty());
    assert!(!manager.remove_rule("low"));
}

/// Forwards each request body to the test.
struct Capture(mpsc::UnboundedSender<Value>, u16);

impl Respond for Capture {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let _ = self.0.send(body);
        ResponseTemplate::new(self.1)
    }
}

#[tokio::test]
async fn webhook_posts_alertmanager_v4_payloads() {
    let server = MockServer::start().await;
    let (bodies_tx, mut bodies) = mpsc::unbounded_channel();
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(Capture(bodies_tx, 200))
        .mount(&server)
        .await;
    let set = rules(&format!(
        r#"
rules:
  - id: fridge-overheat
    thing: fridge-1
    property: temperature
    condition: {{ gt: 8 }}
    labels: {{ team: cold-chain }}
    summary: "{{{{thing}}}} at {{{{value}}}}"
    actions: [ops]
actions:
  ops: {{ type: webhook, url: "{}/hook?token=s3cret", external_url: "http://dash.local" }}
"#,
        server.uri()
    ));
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(set)
        .start(ReceiverStream::new(rx))
        .unwrap();

    tx.send(update("fridge-1", "temperature", json!(9.5)))
        .await
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "ops");
    assert_eq!(body["truncatedAlerts"], 0);
    assert_eq!(body["externalURL"], "http://dash.local");
    assert_eq!(
        body["groupKey"],
        r#"{}:{alertname="fridge-overheat", thing="fridge-1"}"#
    );
    assert_eq!(
        body["groupLabels"],
        json!({"alertname": "fridge-overheat", "thing": "fridge-1"})
    );
    assert_eq!(body["commonLabels"]["team"], "cold-chain");
    assert_eq!(body["commonAnnotations"]["summary"], "fridge-1 at 9.5");
    let alert = &body["alerts"][0];
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "fridge-overheat");
    assert_eq!(alert["labels"]["severity"], "warning");
    assert_eq!(alert["annotations"]["value"], "9.5");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert!(alert["startsAt"].as_str().unwrap().ends_with('Z'));
    assert!(alert.get("generatorURL").is_some());
    let fingerprint = alert["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(fingerprint.len(), 16);
    assert!(fingerprint.chars().all(|c| c.is_ascii_hexdigit()));

    tx.send(update("fridge-1", "temperature", json!(4)))
        .await
        .unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["alerts"][0]["status"], "resolved");
    assert_ne!(body["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(body["alerts"][0]["fingerprint"], fingerprint.as_str());
    assert!(format!("{manager:?}").contains("ops"));
}

#[tokio::test]
async fn a_failing_webhook_is_retried_and_reported_without_delaying_other_actions() {
    let server = MockServer::start().await;
    let (bodies_tx, mut bodies) = mpsc::unbounded_channel();
    Mock::given(method("POST"))
        .respond_with(Capture(bodies_tx, 503))
        .mount(&server)
        .await;
    let set = rules(&format!(
        r#"
rules:
  - {{ id: hot, thing: "*", property: temperature, condition: {{ gt: 8 }}, actions: [ops, app] }}
actions:
  ops: {{ type: webhook, url: "{}/hook?token=s3cret" }}
  app: {{ type: callback }}
"#,
        server.uri()
    ));
    let calls = Arc::new(AtomicUsize::new(0));
    let (called_tx, mut called) = mpsc::unbounded_channel();
    let counter = Arc::clone(&calls);
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(set)
        .callback("app", move |n| {
            counter.fetch_add(1, Ordering::SeqCst);
            let called_tx = called_tx.clone();
            async move {
                let _ = called_tx.send(n.alert.thing.clone());
                Ok(())
            }
        })
        .retries(2)
        .backoff(Duration::from_millis(200))
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());

    tx.send(update("fridge-1", "temperature", json!(9)))
        .await
        .unwrap();
    // The callback runs at once, while the webhook is still failing and backing off.
    let thing = tokio::time::timeout(Duration::from_secs(10), called.recv())
        .await
        .unwrap();
    assert_eq!(thing.as_deref(), Some("fridge-1"));

    let failure = next_failure(&mut events).await;
    assert_eq!(failure.action, "ops");
    assert_eq!(failure.rule, "hot");
    assert_eq!(failure.attempts, 3);
    assert_eq!(failure.error.kind(), ErrorKind::Status);
    assert_eq!(
        failure.error.status(),
        Some(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(!failure.error.is_terminal(), "503 is worth retrying");
    let text = failure.error.to_string();
    assert!(text.contains("503"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(!failure.error.url().unwrap().contains("s3cret"));
    let mut attempts = 0;
    while bodies.try_recv().is_ok() {
        attempts += 1;
    }
    assert_eq!(attempts, 3);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn slow_actions_time_out_and_full_queues_drop_jobs_while_evaluation_goes_on() {
    let set = rules(
        r#"
rules:
  - { id: hot, thing: "*", property: temperature, condition: { gt: 8 }, actions: [slow] }
  - { id: cold, thing: "*", property: temperature, condition: { lt: 0 } }
actions:
  slow: { type: callback, on: [fired] }
"#,
    );
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(set)
        .callback("slow", |_| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        })
        .action_timeout(Duration::from_secs(5))
        .retries(0)
        .queue_capacity(1)
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());

    // Three things fire at once: one job runs, one waits, one is dropped.
    for thing in ["a", "b", "c"] {
        tx.send(update(thing, "temperature", json!(9)))
            .await
            .unwrap();
    }
    let mut fired = 0;
    let mut dropped = None;
    while fired < 3 || dropped.is_none() {
        match events.next().await.unwrap() {
            ManagerEvent::Notification(n) if n.kind == NotificationKind::Fired => fired += 1,
            ManagerEvent::ActionFailed(f) => dropped = Some(f),
            _ => {}
        }
    }
    let dropped = dropped.unwrap();
    assert_eq!(
        (dropped.attempts, dropped.error.kind()),
        (0, ErrorKind::QueueFull)
    );

    // Evaluation is not held up by the stuck action.
    tx.send(update("d", "temperature", json!(-5)))
        .await
        .unwrap();
    let n = next_notification(&mut events).await;
    assert_eq!(
        (n.alert.rule.as_str(), n.alert.thing.as_str()),
        ("cold", "d")
    );

    let timed_out = next_failure(&mut events).await;
    assert_eq!(timed_out.action, "slow");
    assert!(timed_out.error.is_timeout(), "{}", timed_out.error);
    assert!(timed_out.error.to_string().contains("timed out"));
}

#[tokio::test]
async fn callbacks_must_be_registered() {
    let set = rules("actions:\n  app: { type: callback }\n");
    let (_tx, rx) = mpsc::channel::<PropertyUpdate>(1);
    let err = AlertManager::builder(set)
        .start(ReceiverStream::new(rx))
        .unwrap_err();
    assert!(err.to_string().contains("`app`"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_manager_stops_its_tasks() {
    struct Guard(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    let set = rules(
        "rules: [{ id: hot, thing: '*', property: t, condition: { gt: 1 }, actions: [stuck] }]\nactions:\n  stuck: { type: callback }\n",
    );
    let (dropped_tx, dropped) = tokio::sync::oneshot::channel();
    let slot = Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (tx, rx) = mpsc::channel(4);
    let manager = AlertManager::builder(set)
        .callback("stuck", move |_| {
            let guard = Guard(slot.lock().unwrap().take());
            let started_tx = started_tx.clone();
            async move {
                let _guard = guard;
                let _ = started_tx.send(());
                std::future::pending::<()>().await;
                Ok(())
            }
        })
        .action_timeout(Duration::from_secs(86_400))
        .start(ReceiverStream::new(rx))
        .unwrap();
    tx.send(update("a", "t", json!(5))).await.unwrap();
    started.recv().await.unwrap();
    drop(manager);
    tokio::time::timeout(Duration::from_secs(1), dropped)
        .await
        .expect("the running action was cancelled")
        .unwrap();
    assert!(
        tx.is_closed(),
        "the update stream was dropped with the driver"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_subscriber_is_told_how_much_it_missed() {
    let set = rules("rules: [{ id: hot, thing: '*', property: t, condition: { gt: 1 } }]\n");
    let (tx, rx) = mpsc::channel(64);
    let manager = AlertManager::builder(set)
        .events_capacity(2)
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    for i in 0..5 {
        tx.send(update(&format!("d{i}"), "t", json!(5)))
            .await
            .unwrap();
    }
    while manager.active_alerts().len() < 5 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    match events.next().await {
        Some(ManagerEvent::Lagged { missed }) => assert_eq!(missed, 3),
        other => panic!("expected a lag report, got {other:?}"),
    }
    let n = next_notification(&mut events).await;
    assert_eq!(n.alert.thing, "d3");
}
