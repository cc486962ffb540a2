//! The key-value resume store on a real nats-server: what one collector records, the next
//! one resumes from.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::NatsServer;
use wot_events::{ResumeStore, StreamKey, Url};
use wot_nats::{ErrorKind, KvResumeStore};

fn form() -> Url {
    Url::parse("https://user:pw@boiler.example/events?token=s3cret").unwrap()
}

async fn store(server: &NatsServer, flush: Duration) -> KvResumeStore {
    KvResumeStore::builder()
        .flush_interval(flush)
        .open(server.client().await)
        .await
        .unwrap()
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_successor_resumes_from_the_points_recorded() {
    let server = NatsServer::start();
    let thing = "urn:dev:boiler";
    let overheat = StreamKey::event(thing, "overheat", &form());
    let temperature = StreamKey::property(thing, "temperature", &form());

    let first = store(&server, Duration::from_secs(3600)).await;
    for id in 1..=40 {
        first.advance(&overheat, &id.to_string());
    }
    first.advance(&temperature, "t-7");
    assert_eq!(first.load(&overheat).unwrap().last_event_id, "40");
    first.flush().await.unwrap();
    drop(first);

    let second = store(&server, Duration::from_secs(3600)).await;
    assert_eq!(second.load(&overheat), None, "nothing before prefetch");
    assert_eq!(second.prefetch(thing).await.unwrap(), 2);
    let point = second.load(&overheat).unwrap();
    assert_eq!(point.last_event_id, "40");
    // The bucket keeps the newest 16 recent ids.
    assert_eq!(point.recent_ids.len(), wot_nats::DEFAULT_STORED_RECENT_IDS);
    assert_eq!(point.recent_ids.back().map(String::as_str), Some("40"));
    assert_eq!(second.load(&temperature).unwrap().last_event_id, "t-7");
    // Another form of the same affordance is another stream.
    let elsewhere = Url::parse("https://other.example/events").unwrap();
    assert_eq!(
        second.load(&StreamKey::event(thing, "overheat", &elsewhere)),
        None
    );
    // A Thing with nothing recorded.
    assert_eq!(second.prefetch("urn:dev:new").await.unwrap(), 0);
    assert_eq!(second.len(), 2);
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn the_store_writes_by_itself_and_stops_when_dropped_or_told_to_forget() {
    let server = NatsServer::start();
    let writer = Arc::new(store(&server, Duration::from_millis(100)).await);
    let reader = store(&server, Duration::from_secs(3600)).await;
    let key = StreamKey::all_events("t", &form());

    // Used as wot-events uses it: through the trait object.
    let as_trait: Arc<dyn ResumeStore> = writer.clone();
    as_trait.advance(&key, "5");
    let start = Instant::now();
    loop {
        reader.prefetch("t").await.unwrap();
        if reader.load(&key).is_some_and(|p| p.last_event_id == "5") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not written within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A forgotten Thing (its lease was lost) is not written any more.
    writer.forget("t");
    writer.advance(&key, "6");
    writer.forget("t");
    tokio::time::sleep(Duration::from_millis(400)).await;
    reader.prefetch("t").await.unwrap();
    assert_eq!(reader.load(&key).unwrap().last_event_id, "5");

    // Dropping the store stops its task: what was not written is not written later.
    writer.advance(&key, "7");
    drop(as_trait);
    drop(writer);
    tokio::time::sleep(Duration::from_millis(400)).await;
    reader.prefetch("t").await.unwrap();
    assert_eq!(reader.load(&key).unwrap().last_event_id, "5");
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn after_publish_points_move_only_with_confirmed_records() {
    let server = NatsServer::start();
    let store = KvResumeStore::builder()
        .after_publish(true)
        .flush_interval(Duration::from_secs(3600))
        .open(server.client().await)
        .await
        .unwrap();
    let thing = "t";
    // Only Things read first are kept.
    store.advance(&StreamKey::all_events("other", &form()), "1");
    assert_eq!(store.len(), 0);
    store.prefetch(thing).await.unwrap();
    // One connection for all events, one per property; both number their events from 1.
    let events = StreamKey::all_events(thing, &form());
    let temperature = StreamKey::property(thing, "temperature", &form());
    for id in ["1", "2", "3", "4"] {
        store.advance(&events, id);
        store.advance(&temperature, id);
    }
    assert_eq!(store.load(&events), None, "nothing published yet");

    let record = |name: &str, id: &str| {
        wot_nats::Record::Event(wot_events::EventRecord {
            thing_id: thing.into(),
            thing_title: "T".into(),
            event: name.into(),
            data: Default::default(),
            event_id: Some(id.into()),
            received_at: std::time::SystemTime::now(),
        })
    };
    // Event 1 was dropped by the app (never published); event 3's record is stored.
    store.published(&record("overheat", "3"));
    let point = store.load(&events).unwrap();
    assert_eq!(point.last_event_id, "3");
    assert_eq!(point.recent_ids, ["1", "2", "3"]);
    // The property stream, with the same ids, did not move.
    assert_eq!(store.load(&temperature), None);
    // An id not waiting (already confirmed, or unknown) changes nothing.
    store.published(&record("overheat", "2"));
    store.published(&record("overheat", "9"));
    assert_eq!(store.load(&events).unwrap().last_event_id, "3");

    store.flush().await.unwrap();
    let reader = KvResumeStore::builder()
        .open(server.client().await)
        .await
        .unwrap();
    reader.prefetch(thing).await.unwrap();
    assert_eq!(reader.load(&events).unwrap().last_event_id, "3");
    assert_eq!(reader.load(&temperature), None);
}

#[tokio::test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn hostile_things_and_values() {
    let server = NatsServer::start();
    let client = server.client().await;
    let store = KvResumeStore::builder()
        .max_value_bytes(4096)
        .max_streams_per_thing(3)
        .max_things(4)
        .open(client.clone())
        .await
        .unwrap();
    let hostile = "a.b *>\t\r\n\0é=~";
    let key = StreamKey::event(hostile, "e.*", &form());
    store.advance(&key, "1");
    // A 4 KiB id: the point no longer fits with its recent ids, and is written without them.
    let long_id = "i".repeat(3000);
    let other = StreamKey::event(hostile, "f", &form());
    store.advance(&other, &long_id);
    store.advance(&other, &format!("{long_id}2"));
    // More streams than allowed are not kept.
    for n in 0..10 {
        store.advance(&StreamKey::event(hostile, &n.to_string(), &form()), "1");
    }
    store.flush().await.unwrap();

    let reader = KvResumeStore::builder().open(client.clone()).await.unwrap();
    assert_eq!(reader.prefetch(hostile).await.unwrap(), 3);
    assert_eq!(reader.load(&key).unwrap().last_event_id, "1");
    let point = reader.load(&other).unwrap();
    assert_eq!(point.last_event_id, format!("{long_id}2"));
    assert!(point.recent_ids.is_empty());

    // More Things than allowed are not kept; a 10 KiB Thing id is refused.
    for n in 0..10 {
        store.advance(&StreamKey::event(format!("t{n}"), "e", &form()), "1");
    }
    assert_eq!(store.len(), 4);
    let long = "x".repeat(10 * 1024);
    assert_eq!(
        store.prefetch(&long).await.unwrap_err().kind(),
        ErrorKind::TooLong
    );
    store.advance(&StreamKey::event(long, "e", &form()), "1");

    // A value this crate did not write is ignored, not trusted.
    let js = wot_nats::async_nats::jetstream::new(client.clone());
    let kv = js.get_key_value("wot-resume").await.unwrap();
    for garbage in [
        &b"not json"[..],
        br#"{"v":9,"streams":[]}"#,
        br#"{"v":1,"streams":7}"#,
    ] {
        kv.put("garbage", garbage.to_vec().into()).await.unwrap();
        assert_eq!(reader.prefetch("garbage").await.unwrap(), 0);
    }

    // Settings.
    for builder in [
        KvResumeStore::builder().flush_interval(Duration::ZERO),
        KvResumeStore::builder().max_value_bytes(64 << 20),
        KvResumeStore::builder().bucket("a b"),
        KvResumeStore::builder().max_age(Duration::from_secs(60)),
    ] {
        let error = builder.open(client.clone()).await.unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::Config | ErrorKind::KeyValue),
            "{error}"
        );
    }
}
