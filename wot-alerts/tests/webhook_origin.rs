//! Webhook credentials stay with their origin: two real HTTP servers on 127.0.0.1 (different
//! ports, so different origins). The first redirects; the secret must never reach the second.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use wot_alerts::{AlertManager, Format, ManagerEvent, PropertyUpdate, RuleSet};

const SECRET: &str = "s3cret-token";

fn rules(hook: &str) -> RuleSet {
    RuleSet::from_str(
        &format!(
            r#"
rules:
  - {{ id: hot, thing: fridge-1, property: temperature, condition: {{ gt: 8 }}, actions: [ops] }}
actions:
  ops:
    type: webhook
    url: "{hook}?token={SECRET}"
    headers: {{ X-Token: "Bearer {SECRET}", Authorization: "Bearer {SECRET}" }}
"#
        ),
        Format::Yaml,
        "hooks.yaml",
    )
    .unwrap()
}

/// The error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The next action outcome: `Err(error)` for a failure, `Ok(())` once a notification was
/// sent and no failure followed within a second.
async fn next_failure(events: &mut (impl Stream<Item = ManagerEvent> + Unpin)) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            Ok(Some(ManagerEvent::ActionFailed(f))) => return Some(chain(&f.error)),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

async fn fire(hook: &str) -> (AlertManager, Option<String>) {
    let (tx, rx) = mpsc::channel(8);
    let manager = AlertManager::builder(rules(hook))
        .retries(0)
        .action_timeout(Duration::from_secs(5))
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    tx.send(PropertyUpdate::new("fridge-1", "temperature", json!(9)))
        .await
        .unwrap();
    let failure = next_failure(&mut events).await;
    (manager, failure)
}

#[tokio::test]
async fn a_cross_origin_redirect_fails_closed_and_the_secret_stays_home() {
    let home = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/steal", elsewhere.uri()).as_str()),
        )
        .mount(&home)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&elsewhere)
        .await;

    let (_manager, failure) = fire(&format!("{}/hook", home.uri())).await;
    let error = failure.expect("the redirected webhook fails");
    assert!(error.contains("another origin"), "{error}");
    assert!(!error.contains(SECRET), "{error}");

    let received = home.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].headers.get("x-token").unwrap(),
        &format!("Bearer {SECRET}")
    );
    let stolen = elsewhere.received_requests().await.unwrap();
    assert!(
        stolen.is_empty(),
        "the other origin was contacted: {stolen:?}"
    );
}

#[tokio::test]
async fn a_same_origin_redirect_is_followed_with_the_credentials() {
    let home = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/moved"))
        .mount(&home)
        .await;
    Mock::given(method("POST"))
        .and(path("/moved"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&home)
        .await;
    let (_manager, failure) = fire(&format!("{}/hook", home.uri())).await;
    assert_eq!(failure, None);
    let received = home.received_requests().await.unwrap();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[1].url.path(), "/moved");
    assert_eq!(
        received[1].headers.get("x-token").unwrap(),
        &format!("Bearer {SECRET}")
    );
}

#[tokio::test]
async fn a_redirect_loop_stops() {
    let home = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", "/hook"))
        .mount(&home)
        .await;
    let (_manager, failure) = fire(&format!("{}/hook", home.uri())).await;
    let error = failure.expect("a redirect loop fails");
    assert!(error.contains("redirects"), "{error}");
    assert!(home.received_requests().await.unwrap().len() <= 11);
}

#[test]
fn webhook_headers_are_checked_and_never_shown() {
    let set = rules("http://127.0.0.1:9/hook");
    let shown = format!("{:?}", set.actions());
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("x-token"), "{shown}");
    let bad = RuleSet::from_str(
        "actions:\n  ops: { type: webhook, url: \"http://h/\", headers: { X-Token: \"a\\nb\" } }\n",
        Format::Yaml,
        "bad.yaml",
    )
    .unwrap_err();
    assert!(bad.message().contains("not valid in HTTP"), "{bad}");
}
