//! Publishing to a real nats-server with JetStream: acknowledgements, the duplicate window,
//! the in-flight bound, and checking an existing stream.

// `.into()` makes JSON into the value type of wot-events' records, whichever it is.
#![allow(clippy::useless_conversion)]

mod common;

use std::time::{Duration, SystemTime};

use common::NatsServer;
use wot_events::serde_json::json;
use wot_events::{EventRecord, PropertyUpdate};
use wot_nats::{ErrorKind, Publisher, Record, message_id};

fn event(thing: &str, id: Option<&str>, n: u64) -> Record {
    Record::Event(EventRecord {
        thing_id: thing.into(),
        thing_title: "Boiler".into(),
        event: "overheat".into(),
        data: json!({ "n": n }).into(),
        event_id: id.map(Into::into),
        received_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_677_500_000 + n),
    })
}

fn property(thing: &str, n: u64) -> Record {
    Record::Property(PropertyUpdate {
        thing_id: thing.into(),
        property: "temperature".into(),
        value: json!(n).into(),
        timestamp: SystemTime::UNIX_EPOCH + Duration::from_millis(n),
        event_id: None,
        schema_violation: None,
    })
}

async fn messages_in(publisher: &Publisher) -> u64 {
    let mut stream = publisher.jetstream().get_stream("WOT").await.unwrap();
    stream.info().await.unwrap().state.messages
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn publish_is_acknowledged_and_stored_on_its_subject() {
    let server = NatsServer::start();
    let publisher = Publisher::builder().build(server.client().await).unwrap();
    publisher.ensure_stream().await.unwrap();
    publisher.ensure_stream().await.unwrap(); // checks the one there

    let record = event("urn:dev:boiler", Some("42"), 1);
    let ack = publisher.publish(&record).await.unwrap();
    assert_eq!(ack.sequence, 1);
    assert!(!ack.duplicate);

    let stream = publisher.jetstream().get_stream("WOT").await.unwrap();
    let stored = stream.get_raw_message(1).await.unwrap();
    assert_eq!(
        stored.subject.as_str(),
        publisher
            .subjects()
            .event("urn:dev:boiler", "overheat")
            .unwrap()
    );
    assert_eq!(Record::from_json(&stored.payload).unwrap(), record);
    let id = stored.headers.get("Nats-Msg-Id").unwrap().as_str();
    assert_eq!(id, message_id("urn:dev:boiler", "event/overheat", "42", 0));
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_replayed_record_is_stored_once_within_the_window() {
    let server = NatsServer::start();
    let client = server.client().await;
    let publisher = Publisher::builder().build(client.clone()).unwrap();
    publisher.ensure_stream().await.unwrap();

    // Events 1..=3, then a collector that took over replays 2..=4.
    for n in 1..=3 {
        let id = n.to_string();
        publisher.publish(&event("t", Some(&id), n)).await.unwrap();
    }
    let successor = Publisher::builder().build(client).unwrap();
    let mut duplicates = 0;
    for n in 2..=4 {
        let id = n.to_string();
        let ack = successor.publish(&event("t", Some(&id), n)).await.unwrap();
        duplicates += u32::from(ack.duplicate);
        if ack.duplicate {
            assert_eq!(ack.sequence, n, "a duplicate names the first copy");
        }
    }
    assert_eq!(duplicates, 2);
    assert_eq!(messages_in(&publisher).await, 4);

    // Two records in a row with one id (an SSE event without an `id` line takes the id of
    // the one before it) are two records, and stay two when replayed.
    publisher.publish(&event("t", Some("5"), 5)).await.unwrap();
    publisher.publish(&event("t", Some("5"), 6)).await.unwrap();
    assert_eq!(messages_in(&publisher).await, 6);
    let replay = Publisher::builder().build(server.client().await).unwrap();
    assert!(
        replay
            .publish(&event("t", Some("5"), 5))
            .await
            .unwrap()
            .duplicate
    );
    assert!(
        replay
            .publish(&event("t", Some("5"), 6))
            .await
            .unwrap()
            .duplicate
    );

    // The same record published again by the same publisher (after a timeout, say) keeps
    // its message id.
    let again = event("t", Some("7"), 7);
    assert!(!publisher.publish(&again).await.unwrap().duplicate);
    assert!(publisher.publish(&again).await.unwrap().duplicate);
    assert_eq!(messages_in(&publisher).await, 7);

    // Without an event id there is no message id: every copy is stored.
    publisher.publish(&property("t", 1)).await.unwrap();
    publisher.publish(&property("t", 1)).await.unwrap();
    assert_eq!(messages_in(&publisher).await, 9);
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn records_in_flight_are_bounded() {
    let server = NatsServer::start();
    let publisher = Publisher::builder()
        .max_in_flight(2)
        .build(server.client().await)
        .unwrap();
    publisher.ensure_stream().await.unwrap();

    let first = publisher.send(&property("t", 1)).await.unwrap();
    let second = publisher.send(&property("t", 2)).await.unwrap();
    // Two acknowledgements not taken: the third send waits...
    let third_record = property("t", 3);
    let third = publisher.send(&third_record);
    tokio::pin!(third);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut third)
            .await
            .is_err(),
        "a third record went out while two were unacknowledged"
    );
    // ...until one is.
    let ack = first.await.unwrap();
    assert_eq!(ack.sequence, 1);
    let third = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("sent once a place was free")
        .unwrap();
    assert_eq!(second.await.unwrap().sequence, 2);
    assert_eq!(third.await.unwrap().sequence, 3);

    // Many sends from one task: in order, never more than two out.
    let mut pending: std::collections::VecDeque<wot_nats::PendingAck> =
        std::collections::VecDeque::new();
    for n in 4..=50 {
        if pending.len() == 2 {
            let ack = pending.pop_front().unwrap().await.unwrap();
            assert_eq!(ack.sequence, n - 2);
        }
        pending.push_back(publisher.send(&property("t", n)).await.unwrap());
    }
    for p in pending {
        p.await.unwrap();
    }
    assert_eq!(messages_in(&publisher).await, 50);
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_stream_with_other_settings_or_no_stream_is_a_typed_error() {
    let server = NatsServer::start();
    let client = server.client().await;

    // No stream yet: publishing says so instead of waiting.
    let publisher = Publisher::builder().build(client.clone()).unwrap();
    let error = publisher.publish(&property("t", 1)).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Publish, "{error}");
    assert!(error.subject().is_some());

    publisher.ensure_stream().await.unwrap();
    let other_window = Publisher::builder()
        .duplicate_window(Duration::from_secs(60))
        .build(client.clone())
        .unwrap();
    let error = other_window.ensure_stream().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Stream);
    assert!(error.to_string().contains("duplicate window"), "{error}");

    let other_prefix = Publisher::builder()
        .subjects(wot_nats::Subjects::new("fleet", 16).unwrap())
        .build(client.clone())
        .unwrap();
    let error = other_prefix.ensure_stream().await.unwrap_err();
    assert!(error.to_string().contains("fleet.>"), "{error}");

    // Settings refused before anything is sent.
    for builder in [
        Publisher::builder().stream("a.b"),
        Publisher::builder().max_in_flight(0),
        Publisher::builder().duplicate_window(Duration::ZERO),
        Publisher::builder().max_age(Duration::from_secs(1)),
    ] {
        assert_eq!(
            builder.build(client.clone()).unwrap_err().kind(),
            ErrorKind::Config
        );
    }
}

/// What a later alert evaluator does: a durable pull consumer on one partition gets that
/// partition's records, each Thing's in order, and no other partition's.
#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_partition_consumer_gets_its_things_in_order() {
    use futures::StreamExt;
    use wot_nats::async_nats::jetstream::consumer;

    let server = NatsServer::start();
    let publisher = Publisher::builder()
        .subjects(wot_nats::Subjects::new("wot", 4).unwrap())
        .build(server.client().await)
        .unwrap();
    publisher.ensure_stream().await.unwrap();
    let things: Vec<String> = (0..12).map(|k| format!("urn:dev:{k}")).collect();
    for n in 1..=5 {
        for thing in &things {
            let id = n.to_string();
            publisher
                .publish(&event(thing, Some(&id), n))
                .await
                .unwrap();
        }
    }

    let stream = publisher.jetstream().get_stream("WOT").await.unwrap();
    let partition = publisher.subjects().partition_of(&things[0]);
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(format!("evaluator-p{partition}")),
            filter_subject: publisher.subjects().partition_filter(partition),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .unwrap();
    let mine: Vec<&String> = things
        .iter()
        .filter(|t| publisher.subjects().partition_of(t) == partition)
        .collect();
    let mut messages = consumer
        .fetch()
        .max_messages(100)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .unwrap();
    let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    while let Some(message) = messages.next().await {
        let message = message.unwrap();
        let record = Record::from_json(&message.payload).unwrap();
        seen.entry(record.thing_id().to_owned())
            .or_default()
            .push(record.event_id().unwrap().to_owned());
        message.ack().await.unwrap();
    }
    assert_eq!(seen.len(), mine.len(), "{seen:?}");
    for thing in mine {
        assert_eq!(seen[thing.as_str()], ["1", "2", "3", "4", "5"], "{thing}");
    }
}
