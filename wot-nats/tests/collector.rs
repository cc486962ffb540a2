//! Collectors on a real nats-server, watching Things served by a local SSE origin: one
//! collector dies, another takes its Things over and resumes them, and the stream holds
//! every event and value once, in order.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::NatsServer;
use wot_events::serde_json::{self, Value, json};
use wot_events::{ConsumedThing, EventSubscriber};
use wot_nats::{Collector, KvResumeStore, Leases, Publisher, Record};
use wot_testkit::{Feed, Origin};

const THINGS: usize = 3;
const TOTAL: u64 = 40;

fn thing(origin: &Origin, k: usize) -> ConsumedThing {
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": format!("urn:test:boiler.{k}"),
        "title": format!("Boiler {k}"),
        "base": format!("http://{}/things/b{k}/", origin.addr()),
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {"temp": {
            "type": "object", "readOnly": true, "observable": true,
            "forms": [{"href": "properties/temp/observe", "op": "observeproperty", "subprotocol": "sse"}]
        }},
        "events": {"overheat": {
            "data": {"type": "object"},
            "forms": [{"href": "events/overheat", "op": "subscribeevent", "subprotocol": "sse"}]
        }}
    });
    ConsumedThing::from_slice(&serde_json::to_vec(&td).unwrap(), None).unwrap()
}

async fn origin() -> Origin {
    origin_of(TOTAL).await
}

async fn origin_of(total: u64) -> Origin {
    let mut feeds = Vec::new();
    for k in 0..THINGS {
        for (path, name) in [
            (format!("/things/b{k}/events/overheat"), "overheat"),
            (format!("/things/b{k}/properties/temp/observe"), "temp"),
        ] {
            feeds.push(
                Feed::new(path, total)
                    .event_type(name)
                    .interval(Duration::from_millis(40)),
            );
        }
    }
    Origin::start(feeds).await.unwrap()
}

async fn collector(
    server: &NatsServer,
    name: &str,
    things: Vec<ConsumedThing>,
    flush: Duration,
) -> Collector {
    collector_with(server, name, things, flush, Publisher::builder()).await
}

async fn collector_with(
    server: &NatsServer,
    name: &str,
    things: Vec<ConsumedThing>,
    flush: Duration,
    publisher: wot_nats::PublisherBuilder,
) -> Collector {
    let client = server.client().await;
    let publisher = publisher.build(client.clone()).unwrap();
    publisher.ensure_stream().await.unwrap();
    let leases = Leases::builder()
        .ttl(Duration::from_secs(1))
        .open(client.clone(), name)
        .await
        .unwrap();
    let resume = KvResumeStore::builder()
        .after_publish(true)
        .flush_interval(flush)
        .open(client)
        .await
        .unwrap();
    Collector::builder()
        .pipeline(8)
        .build(
            things,
            EventSubscriber::builder(),
            publisher,
            leases,
            resume,
        )
        .unwrap()
}

/// The `seq` of every event and property value in the stream, per Thing and stream, in
/// stream order.
async fn stored(server: &NatsServer) -> BTreeMap<(String, String), Vec<u64>> {
    let js = wot_nats::async_nats::jetstream::new(server.client().await);
    let mut stream = js.get_stream("WOT").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut seen: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for seq in 1..=last {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue;
        };
        let record = Record::from_json(&message.payload).unwrap();
        let value: Value = match &record {
            Record::Event(e) => serde_json::to_value(&e.data).unwrap(),
            Record::Property(p) => serde_json::to_value(&p.value).unwrap(),
            Record::Connection(_) => continue,
        };
        seen.entry((record.thing_id().to_owned(), record.stream()))
            .or_default()
            .push(value["seq"].as_u64().unwrap());
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn a_dead_collectors_things_are_taken_over_and_every_event_is_stored_once() {
    let server = NatsServer::start();
    let origin = origin().await;
    let things: Vec<ConsumedThing> = (0..THINGS).map(|k| thing(&origin, k)).collect();

    let a = collector(
        &server,
        "collector-a",
        things.clone(),
        Duration::from_millis(500),
    )
    .await;
    let mut a_held = a.held();
    let a_run = tokio::spawn(a.run(std::future::pending()));
    tokio::time::timeout(
        Duration::from_secs(5),
        a_held.wait_for(|held| held.len() == THINGS),
    )
    .await
    .expect("a claims every Thing")
    .unwrap();

    let b = collector(
        &server,
        "collector-b",
        things.clone(),
        Duration::from_millis(200),
    )
    .await;
    let b_held = b.held();
    let (stop_b, stopped) = tokio::sync::oneshot::channel::<()>();
    let b_run = tokio::spawn(b.run(async {
        let _ = stopped.await;
    }));

    // `a` dies mid-stream: no release, no last write of its resume points.
    tokio::time::sleep(Duration::from_millis(700)).await;
    a_run.abort();
    let died = Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let before = stored(&server).await;
    let mut b_held = b_held;
    tokio::time::timeout(
        Duration::from_secs(5),
        b_held.wait_for(|held| held.len() == THINGS),
    )
    .await
    .expect("b takes every Thing over")
    .unwrap();
    let failover = died.elapsed();
    assert!(
        failover < Duration::from_secs(3),
        "failover took {failover:?}"
    );

    // Wait until every stream is complete.
    let expected: Vec<u64> = (1..=TOTAL).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    let seen = loop {
        let seen = stored(&server).await;
        let complete = seen.len() == 2 * THINGS && seen.values().all(|s| s.len() >= expected.len());
        if complete || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(seen.len(), 2 * THINGS, "{seen:?}");
    for (stream, seqs) in &seen {
        assert_eq!(seqs, &expected, "{stream:?}: every event once, in order");
    }
    // `b` resumed each stream from a point `a` recorded (written every 500 ms, so behind
    // what `a` had published): the events in between were published twice and stored once.
    let mut replayed = 0;
    for k in 0..THINGS {
        for (path, stream) in [
            (format!("/things/b{k}/events/overheat"), "event/overheat"),
            (
                format!("/things/b{k}/properties/temp/observe"),
                "property/temp",
            ),
        ] {
            let asked = origin.resumed_from(&path);
            let from = *asked.last().expect("b resumed from a point");
            let published = before
                .get(&(format!("urn:test:boiler.{k}"), stream.to_owned()))
                .map_or(0, |s| s.len() as u64);
            assert!(
                from <= published,
                "{path}: resumed from {from}, {published} were stored"
            );
            replayed += published - from;
        }
    }
    assert!(
        replayed > 0,
        "no event was published twice: the test proves nothing"
    );

    // A clean stop releases the leases at once.
    let _ = stop_b.send(());
    tokio::time::timeout(Duration::from_secs(5), b_run)
        .await
        .expect("b stops")
        .unwrap();
    let leases = Leases::builder()
        .ttl(Duration::from_secs(1))
        .open(server.client().await, "observer")
        .await
        .unwrap();
    for thing in &things {
        assert_eq!(leases.holder_of(thing.id()).await.unwrap(), None);
    }
}

/// Things that go quiet keep no place among the publisher's unacknowledged records: with
/// room for one, every Thing's records still get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn quiet_things_do_not_hold_the_in_flight_places() {
    let server = NatsServer::start();
    let total = 3;
    let origin = origin_of(total).await;
    let things: Vec<ConsumedThing> = (0..THINGS).map(|k| thing(&origin, k)).collect();
    let a = collector_with(
        &server,
        "collector-a",
        things,
        Duration::from_millis(200),
        Publisher::builder().max_in_flight(1),
    )
    .await;
    let run = tokio::spawn(a.run(std::future::pending()));
    let expected: Vec<u64> = (1..=total).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = stored(&server).await;
        if seen.len() == 2 * THINGS && seen.values().all(|s| *s == expected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "records missing after 10 s: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.abort();
}

/// A second collector joins: the first hands half of its Things over (writing their resume
/// points first), and no event is lost or stored twice; when one stops cleanly, the other
/// takes all the Things back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
async fn things_are_shared_fairly_and_handed_over_without_loss() {
    const N: usize = 4;
    let server = NatsServer::start();
    let total = 80;
    let mut feeds = Vec::new();
    for k in 0..N {
        for (path, name) in [
            (format!("/things/b{k}/events/overheat"), "overheat"),
            (format!("/things/b{k}/properties/temp/observe"), "temp"),
        ] {
            feeds.push(
                Feed::new(path, total)
                    .event_type(name)
                    .interval(Duration::from_millis(40)),
            );
        }
    }
    let origin = Origin::start(feeds).await.unwrap();
    let things: Vec<ConsumedThing> = (0..N).map(|k| thing(&origin, k)).collect();
    let flush = Duration::from_millis(200);

    let a = collector(&server, "collector-a", things.clone(), flush).await;
    let mut a_held = a.held();
    let (stop_a, a_stopped) = tokio::sync::oneshot::channel::<()>();
    let a_run = tokio::spawn(a.run(async {
        let _ = a_stopped.await;
    }));
    tokio::time::timeout(Duration::from_secs(5), a_held.wait_for(|h| h.len() == N))
        .await
        .expect("a alone claims every Thing")
        .unwrap();

    let b = collector(&server, "collector-b", things.clone(), flush).await;
    let mut b_held = b.held();
    let b_run = tokio::spawn(b.run(std::future::pending()));
    tokio::time::timeout(
        Duration::from_secs(5),
        b_held.wait_for(|h| h.len() == N / 2),
    )
    .await
    .expect("b gets its share")
    .unwrap();
    assert_eq!(a_held.borrow().len(), N / 2);

    let expected: Vec<u64> = (1..=total).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    let seen = loop {
        let seen = stored(&server).await;
        if seen.len() == 2 * N && seen.values().all(|s| s.len() >= expected.len()) {
            break seen;
        }
        if Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for (stream, seqs) in &seen {
        assert_eq!(seqs, &expected, "{stream:?}: every event once, in order");
    }
    assert_eq!(seen.len(), 2 * N);
    // The Things handed over were resumed, not started again.
    let resumed = (0..N)
        .filter(|k| {
            origin
                .resumed_from(&format!("/things/b{k}/events/overheat"))
                .last()
                .is_some()
        })
        .count();
    assert_eq!(resumed, N / 2);

    // `a` stops cleanly: it withdraws and releases, and `b` takes everything.
    let _ = stop_a.send(());
    a_run.await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), b_held.wait_for(|h| h.len() == N))
        .await
        .expect("b takes every Thing")
        .unwrap();
    b_run.abort();
}
