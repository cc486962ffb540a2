//! Rules checked against real TDs from the shared corpus, units from TDs, and `invoke_action`
//! posting to a Thing's action form on a real HTTP server.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};
use wot_alerts::{
    AlertManager, Condition, Format, ManagerEvent, NotificationKind, PropertyUpdate, Rule, RuleSet,
    check_rules_against_tds,
};
use wot_td::{Document, Thing};

fn corpus(name: &str) -> String {
    let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/td-corpus/valid/");
    std::fs::read_to_string(format!("{p}{name}")).unwrap()
}

fn thing(text: &str) -> Thing {
    text.parse::<Document>().unwrap().into_thing().unwrap()
}

#[test]
fn rules_are_checked_against_property_schemas() {
    // urn:dataSchema: `status` is a number in [5.1, 1210.1]; `status0` is null.
    let td = thing(&corpus("dataSchema.json"));
    let lamp = thing(&corpus("simple.json")); // urn:simple: `status` is a string
    let mut escalated = Rule::new("hot", "urn:dataSchema", "status", Condition::Gt(2000.0));
    escalated.clear = Some(Condition::Lt(1.0));
    let rules = [
        escalated,
        Rule::new(
            "fine",
            "urn:dataSchema",
            "status",
            Condition::Between([10.0, 20.0]),
        ),
        Rule::new("typed", "urn:dataSchema", "status0", Condition::Gt(1.0)),
        Rule::new("missing", "urn:dataSchema", "pressure", Condition::Gt(1.0)),
        Rule::new(
            "string-ok",
            "urn:simple",
            "status",
            Condition::Eq(wot_alerts::Scalar::String("on".into())),
        ),
        Rule::new("string-num", "urn:simple", "status", Condition::Lt(3.0)),
        Rule::new("any-missing", "*", "humidity", Condition::Gt(1.0)),
        Rule::new("no-td", "urn:elsewhere", "x", Condition::Gt(1.0)),
    ];
    let findings = check_rules_against_tds(&rules, &[td, lamp]);
    let summary: Vec<(String, String, bool)> = findings
        .iter()
        .map(|f| (f.rule.clone(), f.field.clone(), f.is_error))
        .collect();
    assert_eq!(
        summary,
        [
            ("hot".to_owned(), "condition".to_owned(), false),
            ("hot".to_owned(), "clear".to_owned(), false),
            ("typed".to_owned(), "condition".to_owned(), true),
            ("missing".to_owned(), "property".to_owned(), true),
            ("string-num".to_owned(), "condition".to_owned(), true),
            ("any-missing".to_owned(), "property".to_owned(), true),
        ]
    );
    assert!(
        findings[0].message.contains("above the maximum 1210.1"),
        "{}",
        findings[0]
    );
    assert!(
        findings[1].message.contains("below the minimum 5.1"),
        "{}",
        findings[1]
    );
    assert!(
        findings[2].message.contains("null property"),
        "{}",
        findings[2]
    );
    assert!(
        findings[4]
            .to_string()
            .starts_with("error: rule `string-num`")
    );
}

#[tokio::test(start_paused = true)]
async fn units_come_from_the_td() {
    let td = thing(&corpus("dataSchema.json"));
    let set = RuleSet::from_str(
        "rules: [{ id: hot, thing: \"urn:dataSchema\", property: status, condition: { gt: 100 }, summary: \"{{value}} {{unit}}\" }]",
        Format::Yaml,
        "inline",
    )
    .unwrap();
    let (tx, rx) = mpsc::channel(4);
    let manager = AlertManager::builder(set)
        .thing(td)
        .start(ReceiverStream::new(rx))
        .unwrap();
    let mut events = Box::pin(manager.subscribe());
    tx.send(PropertyUpdate::new("urn:dataSchema", "status", json!(200)))
        .await
        .unwrap();
    let Some(ManagerEvent::Notification(n)) = events.next().await else {
        panic!("no notification")
    };
    assert_eq!(n.unit.as_deref(), Some("complicatedTemperatureUnit"));
    assert_eq!(n.summary(), "200 complicatedTemperatureUnit");
}

#[tokio::test]
async fn invoke_action_posts_to_the_action_form() {
    let server = MockServer::start().await;
    let (bodies_tx, mut bodies) = mpsc::unbounded_channel();
    Mock::given(method("POST"))
        .and(path("/toggle"))
        .respond_with(move |request: &Request| {
            let _ = bodies_tx.send(serde_json::from_slice::<Value>(&request.body).ok());
            ResponseTemplate::new(204)
        })
        .expect(1)
        .mount(&server)
        .await;
    // urn:simple's `toggle` action, with its form pointed at the test server.
    let mut td: Value = serde_json::from_str(&corpus("simple.json")).unwrap();
    td["actions"]["toggle"]["forms"][0]["href"] = json!(format!("{}/toggle", server.uri()));
    let td = thing(&td.to_string());
    let set = RuleSet::from_str(
        r#"
rules:
  - { id: overpressure, thing: "urn:simple", property: status, condition: { eq: "overpressure" }, actions: [stop, app] }
actions:
  stop: { type: invoke_action, thing: "urn:simple", action: toggle, input: { on: false } }
  app: { type: callback }
"#,
        Format::Yaml,
        "inline",
    )
    .unwrap();
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let (tx, rx) = mpsc::channel(4);
    let _manager = AlertManager::builder(set)
        .thing(td)
        .callback("app", move |n| {
            let done_tx = done_tx.clone();
            async move {
                let _ = done_tx.send(n.kind);
                Ok(())
            }
        })
        .start(ReceiverStream::new(rx))
        .unwrap();
    for v in ["overpressure", "ok"] {
        tx.send(PropertyUpdate::new("urn:simple", "status", json!(v)))
            .await
            .unwrap();
    }
    // The callback sees fired and resolved; invoke_action runs on `fired` only.
    for expected in [NotificationKind::Fired, NotificationKind::Resolved] {
        let kind = tokio::time::timeout(Duration::from_secs(10), done.recv())
            .await
            .unwrap();
        assert_eq!(kind, Some(expected));
    }
    let body = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
        .await
        .unwrap();
    assert_eq!(body, Some(Some(json!({"on": false}))));
    server.verify().await;
}

#[test]
fn invoke_action_targets_are_checked_at_start() {
    let set = RuleSet::from_str(
        "actions:\n  stop: { type: invoke_action, thing: \"urn:simple\", action: explode }\n",
        Format::Yaml,
        "inline",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (_tx, rx) = mpsc::channel::<PropertyUpdate>(1);
    let err = AlertManager::builder(set.clone())
        .start(ReceiverStream::new(rx))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no TD was given for thing `urn:simple`"),
        "{err}"
    );
    let (_tx, rx) = mpsc::channel::<PropertyUpdate>(1);
    let err = AlertManager::builder(set)
        .thing(thing(&corpus("simple.json")))
        .start(ReceiverStream::new(rx))
        .unwrap_err();
    assert!(
        err.to_string().contains("no action named `explode`"),
        "{err}"
    );
}
