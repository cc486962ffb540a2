//! Alert evaluators on a real nats-server: partitions shared by leases, checkpoints, a dead
//! evaluator's partitions taken over, notifications stored exactly once, hostile records and
//! checkpoints.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use common::NatsServer;
use wot_alerts::{Condition, Rule};
use wot_events::{PropertyUpdate, serde_json::json};
use wot_nats::async_nats::jetstream;
use wot_nats::{AlertMessage, ErrorKind, Evaluator, EvaluatorBuilder, Publisher, Record, Subjects};

const PARTITIONS: u16 = 8;

fn subjects() -> Subjects {
    Subjects::new("wot", PARTITIONS).unwrap()
}

/// Fires above 50, resolves at 30 or below.
fn rule() -> Rule {
    let mut rule = Rule::new("hot", "*", "temperature", Condition::Gt(50.0));
    rule.clear = Some(Condition::Le(30.0));
    rule
}

fn builder() -> EvaluatorBuilder {
    Evaluator::builder()
        .subjects(subjects())
        .ttl(Duration::from_millis(1500))
        .timeout(Duration::from_secs(2))
        .tick_interval(Duration::from_millis(100))
        .checkpoint_interval(Duration::from_millis(300))
        .rule(rule())
}

fn things(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("urn:dev:fridge-{i}")).collect()
}

fn reading(thing: &str, n: u64, value: f64) -> Record {
    Record::Property(PropertyUpdate {
        thing_id: thing.into(),
        property: "temperature".into(),
        value: json!(value).into(),
        timestamp: SystemTime::now(),
        event_id: Some(n.to_string().into()),
        schema_violation: None,
    })
}

async fn publisher(server: &NatsServer) -> Publisher {
    let publisher = Publisher::builder()
        .subjects(subjects())
        .build(server.client().await)
        .unwrap();
    publisher.ensure_stream().await.unwrap();
    publisher
}

/// Publishes `values` for each Thing, numbering each Thing's records from `first`.
async fn publish(publisher: &Publisher, things: &[String], first: u64, values: &[f64]) {
    for (i, value) in values.iter().enumerate() {
        for thing in things {
            publisher
                .publish(&reading(thing, first + i as u64, *value))
                .await
                .unwrap();
        }
    }
}

/// Every notification in the stream, in order.
async fn notifications(js: &jetstream::Context) -> Vec<AlertMessage> {
    let Ok(mut stream) = js.get_stream(wot_nats::DEFAULT_ALERTS_STREAM).await else {
        return Vec::new();
    };
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut all = Vec::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.unwrap();
        all.push(serde_json::from_slice(&message.payload).unwrap());
    }
    all
}

/// Counts by (thing, kind).
fn counts(messages: &[AlertMessage]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for m in messages {
        *counts.entry((m.thing.clone(), m.kind.clone())).or_default() += 1;
    }
    counts
}

/// Waits (real time, at most `limit`) until `done` holds.
async fn wait_until<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for_notifications(js: &jetstream::Context, n: usize) -> Vec<AlertMessage> {
    wait_until(Duration::from_secs(30), "the notifications", || async {
        notifications(js).await.len() >= n
    })
    .await;
    // Time for any duplicate to show up.
    tokio::time::sleep(Duration::from_millis(700)).await;
    notifications(js).await
}

/// Each Thing's two episodes: fired and resolved twice, nothing else.
fn assert_two_episodes_each(messages: &[AlertMessage], things: &[String], acknowledged: &[&str]) {
    let counts = counts(messages);
    for thing in things {
        for kind in ["fired", "resolved"] {
            assert_eq!(
                counts.get(&(thing.clone(), kind.to_owned())),
                Some(&2),
                "{thing} {kind}: {counts:?}"
            );
        }
        let acks = usize::from(acknowledged.contains(&thing.as_str()));
        assert_eq!(
            counts
                .get(&(thing.clone(), "acknowledged".to_owned()))
                .copied()
                .unwrap_or(0),
            acks,
            "{thing}"
        );
    }
    assert_eq!(
        messages.len(),
        things.len() * 4 + acknowledged.len(),
        "{counts:?}"
    );
    // Ids are unique, and fired and resolved of one episode share the alert id.
    let mut ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), messages.len());
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn one_evaluator_fires_and_resolves_each_episode_once() {
    let server = NatsServer::start();
    let publisher = publisher(&server).await;
    let evaluator = builder()
        .start(server.client().await, "eval-a")
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "all partitions held", || async {
        evaluator.partitions().len() == usize::from(PARTITIONS)
    })
    .await;
    let things = things(12);
    let partitions: std::collections::BTreeSet<u16> =
        things.iter().map(|t| subjects().partition_of(t)).collect();
    assert!(partitions.len() >= 4, "the Things span partitions");

    publish(
        &publisher,
        &things,
        1,
        &[10.0, 60.0, 70.0, 40.0, 20.0, 80.0, 10.0],
    )
    .await;
    let messages = wait_for_notifications(publisher.jetstream(), things.len() * 4).await;
    assert_two_episodes_each(&messages, &things, &[]);
    let first = &messages[0];
    assert_eq!(first.kind, "fired");
    assert_eq!(first.rule, "hot");
    assert_eq!(first.value, Some(json!(60.0)));
    assert_eq!(first.partition, subjects().partition_of(&first.thing));

    let stats = evaluator.stats();
    assert_eq!(stats.records, (things.len() * 7) as u64);
    assert_eq!(stats.bad_records, 0);
    assert_eq!(stats.notifications, (things.len() * 4) as u64);
    assert!(stats.checkpoints >= u64::from(PARTITIONS));
    assert!(evaluator.active_alerts().await.is_empty());

    // Every record is acknowledged once its checkpoint is written.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut stream = publisher.jetstream().get_stream("WOT").await.unwrap();
    let _ = stream.info().await.unwrap();
    for k in 0..PARTITIONS {
        let info = stream
            .consumer_info(format!("evaluator-p{k}"))
            .await
            .unwrap();
        assert_eq!(info.num_ack_pending, 0, "partition {k}");
        assert_eq!(info.num_pending, 0, "partition {k}");
    }
    evaluator.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn two_evaluators_share_and_a_dead_ones_partitions_are_taken_over_without_refiring() {
    let server = NatsServer::start();
    let publisher = publisher(&server).await;
    let js = publisher.jetstream().clone();
    let a = builder()
        .start(server.client().await, "eval-a")
        .await
        .unwrap();
    // B checkpoints only when it claims a partition and on an acknowledgement or silence:
    // what it evaluates after that is evaluated again by its successor.
    let b = builder()
        .checkpoint_interval(Duration::from_secs(3600))
        .start(server.client().await, "eval-b")
        .await
        .unwrap();
    wait_until(Duration::from_secs(15), "a fair share each", || async {
        a.partitions().len() == 4 && b.partitions().len() == 4
    })
    .await;
    let (held_a, held_b) = (a.partitions(), b.partitions());
    assert!(
        held_a.iter().all(|k| !held_b.contains(k)),
        "{held_a:?} {held_b:?}"
    );

    let things = things(16);
    let of_b: Vec<&String> = things
        .iter()
        .filter(|t| held_b.contains(&subjects().partition_of(t)))
        .collect();
    assert!(of_b.len() >= 3, "{of_b:?}");
    let acked = of_b[0].clone();
    let silenced = of_b[1].clone();
    let others: Vec<String> = things.iter().filter(|t| **t != acked).cloned().collect();
    // B's partitions with no acknowledgement or silence: never checkpointed after the claim.
    let replayed = of_b.iter().any(|t| {
        let k = subjects().partition_of(t);
        k != subjects().partition_of(&acked) && k != subjects().partition_of(&silenced)
    });

    // Every Thing's first alert fires.
    publish(&publisher, &things, 1, &[10.0, 60.0]).await;
    wait_for_notifications(&js, things.len()).await;
    b.acknowledge("hot", &acked, "ops", Some("on it".into()))
        .await
        .unwrap();
    let now = SystemTime::now();
    b.add_silence(
        wot_alerts::Silence::new(
            now - Duration::from_secs(1),
            now + Duration::from_secs(3600),
        )
        .thing(silenced.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        a.acknowledge("hot", &acked, "ops", None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotHeld
    );

    // Records that B may evaluate (and notify) but not checkpoint before it dies.
    publish(&publisher, &others, 3, &[70.0, 20.0]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let killed = tokio::time::Instant::now();
    drop(b);
    publish(&publisher, &others, 5, &[80.0, 10.0]).await;

    wait_until(Duration::from_secs(15), "A takes over", || async {
        a.partitions().len() == usize::from(PARTITIONS)
    })
    .await;
    let failover = killed.elapsed();
    // The lease time, a round of the survivor, and the time to start the partitions.
    assert!(failover < Duration::from_secs(5), "took {failover:?}");

    // The acknowledgement made before the kill is in the restored state.
    let active = a.active_alerts().await;
    let alert = active
        .iter()
        .find(|alert| alert.thing == acked)
        .expect("the acknowledged alert still fires");
    let ack = alert.acknowledgement.as_ref().expect("acknowledged");
    assert_eq!(ack.by, "ops");
    assert_eq!(ack.comment.as_deref(), Some("on it"));

    publish(
        &publisher,
        std::slice::from_ref(&acked),
        3,
        &[20.0, 80.0, 10.0],
    )
    .await;
    let messages = wait_for_notifications(&js, (things.len() - 1) * 4 + 2).await;
    // The silenced Thing: its first alert fired before the silence, nothing after it.
    let (of_silenced, messages): (Vec<AlertMessage>, Vec<AlertMessage>) =
        messages.into_iter().partition(|m| m.thing == silenced);
    assert_eq!(of_silenced.len(), 1, "{of_silenced:?}");
    assert_eq!(of_silenced[0].kind, "fired");
    let unsilenced: Vec<String> = things.iter().filter(|t| **t != silenced).cloned().collect();
    assert_two_episodes_each(&messages, &unsilenced, &[acked.as_str()]);
    let stats = a.stats();
    assert!(stats.restored >= 4, "{stats:?}");
    if replayed {
        // Notifications B had sent were made again, and dropped by the stream.
        assert!(stats.duplicates > 0, "{stats:?}");
    }
    eprintln!("failover {failover:?}, survivor {stats:?}");
    a.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_clean_stop_hands_the_partitions_over_at_once() {
    let server = NatsServer::start();
    let publisher = publisher(&server).await;
    let js = publisher.jetstream().clone();
    let a = builder()
        .start(server.client().await, "eval-a")
        .await
        .unwrap();
    let b = builder()
        .start(server.client().await, "eval-b")
        .await
        .unwrap();
    wait_until(Duration::from_secs(15), "a fair share each", || async {
        a.partitions().len() == 4 && b.partitions().len() == 4
    })
    .await;
    let things = things(10);
    publish(&publisher, &things, 1, &[60.0]).await;
    wait_for_notifications(&js, things.len()).await;
    b.stop().await;
    publish(&publisher, &things, 2, &[10.0, 90.0, 0.0]).await;
    wait_until(Duration::from_secs(10), "A takes over", || async {
        a.partitions().len() == usize::from(PARTITIONS)
    })
    .await;
    let messages = wait_for_notifications(&js, things.len() * 4).await;
    assert_two_episodes_each(&messages, &things, &[]);
    a.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn records_that_are_not_json_or_of_another_version_are_acked_and_counted() {
    let server = NatsServer::start();
    let publisher = publisher(&server).await;
    let js = publisher.jetstream().clone();
    let evaluator = builder()
        .start(server.client().await, "eval-a")
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "all partitions held", || async {
        evaluator.partitions().len() == usize::from(PARTITIONS)
    })
    .await;
    let thing = "urn:dev:fridge-0";
    let subject = subjects().property(thing, "temperature").unwrap();
    for payload in [
        &b"not json"[..],
        br#"{"v":2,"kind":"property","thing_id":"urn:dev:fridge-0","name":"temperature","value":99,"received_at":"2026-12-07T21:05:00.250Z"}"#,
        br#"{"v":1,"kind":"property"}"#,
        b"\xff\xfe\x00",
        &[b'['; 10_000][..],
    ] {
        js.publish(subject.clone(), payload.to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    publish(&publisher, &[thing.to_owned()], 1, &[60.0, 10.0]).await;
    let messages = wait_for_notifications(&js, 2).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].kind, "fired");
    assert_eq!(messages[1].kind, "resolved");
    let stats = evaluator.stats();
    assert_eq!(stats.bad_records, 5, "{stats:?}");
    assert_eq!(stats.records, 7);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let k = subjects().partition_of(thing);
    let info = js
        .get_stream("WOT")
        .await
        .unwrap()
        .consumer_info(format!("evaluator-p{k}"))
        .await
        .unwrap();
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_pending, 0);
    evaluator.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_checkpoint_that_cannot_be_read_starts_its_partition_empty() {
    let server = NatsServer::start();
    let publisher = publisher(&server).await;
    let js = publisher.jetstream().clone();
    // The first evaluator creates the bucket (values up to the default limit) and leaves a
    // checkpoint of every partition.
    let first = builder()
        .start(server.client().await, "eval-a")
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "all partitions held", || async {
        first.partitions().len() == usize::from(PARTITIONS)
    })
    .await;
    first.stop().await;
    let kv = js
        .get_key_value(wot_nats::DEFAULT_STATE_BUCKET)
        .await
        .unwrap();
    let good = kv.get("p3").await.unwrap().unwrap();
    let good_text = String::from_utf8(good.to_vec()).unwrap();
    assert!(
        good_text.starts_with(r#"{"v":1,"partition":3,"#),
        "{good_text}"
    );
    kv.put("p0", "garbage".into()).await.unwrap();
    kv.put("p1", good_text.replacen(r#""v":1"#, r#""v":7"#, 1).into())
        .await
        .unwrap();
    kv.put("p2", format!("{good_text}{}", " ".repeat(5000)).into())
        .await
        .unwrap();
    kv.put("p4", good_text.clone().into()).await.unwrap(); // another partition's

    let evaluator = builder()
        .max_checkpoint_bytes(4096)
        .start(server.client().await, "eval-b")
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "all partitions held", || async {
        evaluator.partitions().len() == usize::from(PARTITIONS)
    })
    .await;
    let stats = evaluator.stats();
    assert_eq!(stats.bad_checkpoints, 4, "{stats:?}");
    assert_eq!(stats.restored, 4, "{stats:?}");
    // The partitions evaluate, and their checkpoints are good again.
    let things = things(16);
    publish(&publisher, &things, 1, &[60.0, 10.0]).await;
    let messages = wait_for_notifications(&js, things.len() * 2).await;
    assert_eq!(messages.len(), things.len() * 2);
    for key in ["p0", "p1", "p2", "p4"] {
        let value = kv.get(key).await.unwrap().unwrap();
        let checkpoint = wot_nats::Checkpoint::from_json(&value, 4096).unwrap();
        assert_eq!(format!("p{}", checkpoint.partition), key);
    }
    evaluator.stop().await;
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn settings_and_a_missing_stream_are_typed_errors() {
    let server = NatsServer::start();
    // No publisher created the records' stream yet.
    let error = builder()
        .start(server.client().await, "eval-a")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Stream, "{error}");
    assert!(error.to_string().contains("WOT"), "{error}");

    let _publisher = publisher(&server).await;
    for bad in [
        builder().batch(0),
        builder().checkpoint_interval(Duration::ZERO),
        builder().max_checkpoint_bytes(10),
        builder().consumer_prefix("a.b"),
        builder().alerts_prefix("bad prefix"),
    ] {
        let error = bad
            .start(server.client().await, "eval-a")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    }
    let long_rule = Rule::new("r".repeat(200), "*", "t", Condition::Gt(1.0));
    let error = builder()
        .rule(long_rule)
        .start(server.client().await, "eval-a")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLong, "{error}");
    let invalid_rule = Rule::new("", "*", "t", Condition::Gt(1.0));
    let error = builder()
        .rule(invalid_rule)
        .start(server.client().await, "eval-a")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Alert, "{error}");

    let evaluator = builder()
        .start(server.client().await, "eval-a")
        .await
        .unwrap();
    let now = SystemTime::now();
    let error = evaluator
        .add_silence(wot_alerts::Silence::new(now, now + Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
    wait_until(Duration::from_secs(10), "all partitions held", || async {
        evaluator.partitions().len() == usize::from(PARTITIONS)
    })
    .await;
    let error = evaluator
        .acknowledge("hot", "urn:dev:nothing", "ops", None)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Alert, "{error}");
    // Another evaluator with other settings for the same stream is refused.
    let error = builder()
        .duplicate_window(Duration::from_secs(5))
        .start(server.client().await, "eval-b")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Stream, "{error}");
    evaluator.stop().await;
}

/// A hold time runs on the tick; the alert it fires keeps its id when a successor evaluates
/// the record again, so its notification is stored once.
#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn an_alert_fired_by_its_hold_time_is_not_fired_again_by_the_successor() {
    let server = NatsServer::start();
    let publisher = publisher(&server).await;
    let js = publisher.jetstream().clone();
    let mut held = rule();
    held.hold_for = Duration::from_millis(500);
    let start = |name: &'static str, interval: Duration| {
        let held = held.clone();
        let server = &server;
        async move {
            Evaluator::builder()
                .subjects(subjects())
                .ttl(Duration::from_millis(1500))
                .timeout(Duration::from_secs(2))
                .tick_interval(Duration::from_millis(100))
                .checkpoint_interval(interval)
                .rule(held)
                .start(server.client().await, name)
                .await
                .unwrap()
        }
    };
    // The first never checkpoints after its claims.
    let first = start("eval-a", Duration::from_secs(3600)).await;
    wait_until(Duration::from_secs(10), "all partitions held", || async {
        first.partitions().len() == usize::from(PARTITIONS)
    })
    .await;
    let things = things(4);
    publish(&publisher, &things, 1, &[60.0]).await;
    let fired = wait_for_notifications(&js, things.len()).await;
    assert!(fired.iter().all(|m| m.kind == "fired"), "{fired:?}");
    drop(first);

    let second = start("eval-b", Duration::from_millis(300)).await;
    wait_until(
        Duration::from_secs(10),
        "the successor holds all",
        || async { second.partitions().len() == usize::from(PARTITIONS) },
    )
    .await;
    // It evaluates the records again: pending, then fired by its own tick, same ids.
    wait_until(Duration::from_secs(10), "fired again", || async {
        second.stats().notifications >= things.len() as u64
    })
    .await;
    publish(&publisher, &things, 2, &[10.0]).await;
    let messages = wait_for_notifications(&js, things.len() * 2).await;
    let counts = counts(&messages);
    for thing in &things {
        for kind in ["fired", "resolved"] {
            assert_eq!(counts[&(thing.clone(), kind.to_owned())], 1, "{counts:?}");
        }
    }
    assert_eq!(messages.len(), things.len() * 2);
    assert_eq!(second.stats().duplicates, things.len() as u64);
    second.stop().await;
}

/// An evaluator that joins gets half the partitions, handed over with their checkpoints:
/// nothing is evaluated twice or lost.
#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_joining_evaluator_gets_half_without_loss_or_repeats() {
    let server = NatsServer::start();
    let publisher = publisher(&server).await;
    let js = publisher.jetstream().clone();
    let a = builder()
        .start(server.client().await, "eval-a")
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), "all partitions held", || async {
        a.partitions().len() == usize::from(PARTITIONS)
    })
    .await;
    let things = things(16);
    publish(&publisher, &things, 1, &[10.0, 60.0, 70.0]).await;
    wait_for_notifications(&js, things.len()).await;

    let b = builder()
        .start(server.client().await, "eval-b")
        .await
        .unwrap();
    // Records keep coming while the partitions move.
    let values = [20.0, 80.0, 90.0, 10.0];
    for (i, value) in values.iter().enumerate() {
        publish(&publisher, &things, 4 + i as u64, &[*value]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_until(Duration::from_secs(15), "a fair share each", || async {
        a.partitions().len() == 4 && b.partitions().len() == 4
    })
    .await;
    let messages = wait_for_notifications(&js, things.len() * 4).await;
    assert_two_episodes_each(&messages, &things, &[]);
    assert_eq!(b.stats().restored, 4, "{:?}", b.stats());
    assert_eq!(a.stats().duplicates + b.stats().duplicates, 0);
    a.stop().await;
    b.stop().await;
}
