//! Hostile input: Thing ids and names that are not subject-safe, ids and records past their
//! limits, and servers that are not there or never answer.

// `.into()` makes JSON into the value type of wot-events' records, whichever it is.
#![allow(clippy::useless_conversion)]

mod common;

use std::error::Error as _;
use std::time::{Duration, Instant, SystemTime};

use common::NatsServer;
use wot_events::serde_json::json;
use wot_events::{EventRecord, PropertyUpdate};
use wot_nats::{
    ErrorKind, MAX_NAME_LEN, MAX_THING_ID_LEN, Publisher, Record, SubjectKind, connect,
};

fn event(thing: &str, name: &str, data: wot_events::serde_json::Value) -> Record {
    Record::Event(EventRecord {
        thing_id: thing.into(),
        thing_title: "T".into(),
        event: name.into(),
        data: data.into(),
        event_id: Some("1".into()),
        received_at: SystemTime::now(),
    })
}

/// The error and its sources, as one text.
fn chain(error: &wot_nats::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(&format!(" / {s} / {s:?}"));
        source = s.source();
    }
    format!("{text} / {error:?}")
}

#[tokio::test]
async fn nothing_listening_is_a_typed_error_soon_without_the_password() {
    let port = common::free_port();
    let url = format!("nats://collector:s3cret@127.0.0.1:{port}");
    let start = Instant::now();
    let error = connect(&url, Duration::from_secs(2)).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(error.kind(), ErrorKind::Connect | ErrorKind::Timeout),
        "{error}"
    );
    let text = chain(&error);
    assert!(
        !text.contains("s3cret") && !text.contains("collector"),
        "{text}"
    );
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    if error.kind() == ErrorKind::Connect {
        assert!(text.to_lowercase().contains("refused"), "says why: {text}");
    }
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    // Takes the connection and says nothing (a NATS server sends INFO first).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let start = Instant::now();
    let error = connect(
        &format!("nats://u:pw@127.0.0.1:{port}"),
        Duration::from_millis(500),
    )
    .await
    .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(error.kind(), ErrorKind::Timeout | ErrorKind::Connect),
        "{error}"
    );
    assert!(!chain(&error).contains("pw"), "{}", chain(&error));
    silent.abort();
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn hostile_ids_and_names_are_published_on_one_token_each() {
    let server = NatsServer::start();
    let publisher = Publisher::builder().build(server.client().await).unwrap();
    publisher.ensure_stream().await.unwrap();
    let stream = publisher.jetstream().get_stream("WOT").await.unwrap();

    let worst_id: String = ".".repeat(MAX_THING_ID_LEN);
    let worst_name: String = "*".repeat(MAX_NAME_LEN);
    let cases = [
        ("a.b", "c.d"),
        ("*", ">"),
        (">", "*"),
        ("with spaces\tand\r\nlines\0", "n a m e"),
        ("", ""),
        ("wot.p1.x.conn", "prop"),
        ("é=3D~", "=41"),
        (worst_id.as_str(), worst_name.as_str()),
    ];
    for (seq, (thing, name)) in (1..).zip(cases) {
        let ack = publisher
            .publish(&event(thing, name, json!(null)))
            .await
            .unwrap_or_else(|e| panic!("{thing:?}: {e}"));
        assert_eq!(ack.sequence, seq);
        let stored = stream.get_raw_message(seq).await.unwrap();
        let parsed = publisher.subjects().parse(stored.subject.as_str()).unwrap();
        assert_eq!(parsed.thing_id, thing);
        assert_eq!(parsed.kind, SubjectKind::Event(name.to_owned()));
        // One Thing's filter takes its records and no other's.
        let filter = publisher.subjects().thing_filter(thing).unwrap();
        assert_eq!(filter.split('.').count(), 4, "{filter}");
    }

    // Past the limits: typed errors, nothing sent.
    let long = "x".repeat(10 * 1024);
    let error = publisher
        .publish(&event(&long, "e", json!(1)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLong);
    assert_eq!(error.limit(), Some(MAX_THING_ID_LEN));
    let error = publisher
        .publish(&event("t", &"n".repeat(MAX_NAME_LEN + 1), json!(1)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLong);
    // A record larger than the server's largest message (1 MiB by default).
    let huge = Record::Property(PropertyUpdate {
        thing_id: "t".into(),
        property: "p".into(),
        value: json!("v".repeat(2 << 20)).into(),
        timestamp: SystemTime::now(),
        event_id: None,
        schema_violation: None,
    });
    let error = publisher.publish(&huge).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::TooLong, "{error}");
    let mut stream = stream;
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        cases.len() as u64
    );

    // A long event id gets a hashed message id, still de-duplicated.
    let long_id = "\n".repeat(4096);
    let mut record = event("t", "e", json!(1));
    if let Record::Event(e) = &mut record {
        e.event_id = Some(long_id.as_str().into());
    }
    assert!(!publisher.publish(&record).await.unwrap().duplicate);
    let other = Publisher::builder().build(server.client().await).unwrap();
    assert!(other.publish(&record).await.unwrap().duplicate);
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_server_that_dies_gives_typed_errors_within_the_timeout() {
    let mut server = NatsServer::start();
    let client = server.client().await;
    let publisher = Publisher::builder()
        .timeout(Duration::from_millis(500))
        .build(client.clone())
        .unwrap();
    publisher.ensure_stream().await.unwrap();
    let leases = wot_nats::Leases::builder()
        .ttl(Duration::from_secs(3))
        .timeout(Duration::from_millis(500))
        .open(client, "collector-a")
        .await
        .unwrap();
    let mut lease = leases.claim("t").await.unwrap().unwrap();
    server.kill();

    let start = Instant::now();
    let error = publisher
        .publish(&event("t", "e", json!(1)))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(error.kind(), ErrorKind::Timeout | ErrorKind::Publish),
        "{error}"
    );
    let start = Instant::now();
    let error = leases.renew(&mut lease).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(error.kind(), ErrorKind::Timeout | ErrorKind::KeyValue),
        "{error}"
    );
    // Not known lost, and no longer surely held once its time is up.
    assert!(lease.valid_until() <= tokio::time::Instant::now() + Duration::from_secs(3));
}
