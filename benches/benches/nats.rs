//! Group 13: NATS JetStream (`wot-nats`), against a nats-server with JetStream that the bench
//! starts itself on a temporary directory and a free port of 127.0.0.1 (file storage, as a
//! fleet runs it), and stops at the end. Three parts, in one run:
//!
//! * `publish`: records per second that one `wot_nats::Publisher` publishes with
//!   acknowledgements (`send`, at most 256 acknowledgements awaited at a time, each one
//!   checked: stored, not a duplicate), against a bare `async-nats` JetStream loop
//!   (`Context::send_publish` with the same 256 acknowledgements in flight) publishing the
//!   same records: the same JSON bytes, the same subjects, the same `Nats-Msg-Id` headers
//!   (checked against `Publisher::prepare` before timing). The records are property values
//!   of group 11's shape (`temperature` of 100 fridges, `{"value":…,"unit":"cel","ts":"…",
//!   "ok":true}`, each with an SSE id). The publisher's time includes what it does per record
//!   (subject, JSON, message id); `bare-async-nats` gets the messages made beforehand (the
//!   transport alone), `bare-async-nats-json` makes each one in the loop with the same
//!   functions (`Record::subject`, `Record::to_json`, `wot_nats::message_id`), so the
//!   publisher's own cost is the difference to it. Each contender publishes on its own
//!   connection, in turn, round after round (`benches::interleave`), so load on the VM hits
//!   them alike; the ratios are medians of the per-round ratios.
//! * `latency`: a Thing's SSE event to a JetStream consumer. A local SSE server
//!   (`wot_testkit::Origin`) serves Things with one event stream each, at a steady rate; each
//!   event's data carries the time it was written to the socket (`sent_us`, µs since 1970).
//!   A `wot_nats::Collector` (leases, resume store, wot-events subscriptions: the whole
//!   collector) watches them and publishes the events; a pull consumer on the stream
//!   (`wot.*.*.event.*`, deliver new, explicit ack) receives them. Latency = the consumer's
//!   clock when the message arrives − `sent_us`; p50/p90/p99/max over every event.
//! * `failover`: two collectors share a few Things with a short lease time; one of them is
//!   dropped without a clean stop (its `run` future aborted: no release, no last write, as
//!   when the process dies). Timed from that moment: until the other holds every Thing
//!   (`Collector::held`, updated after each of its rounds) and until a record of each of the
//!   dead one's Things arrives again on the stream's subjects (records in the first half
//!   lease time after the kill are the dead one's last and are not counted). Repetition `r`
//!   of `n` kills `r/n` of a renewal interval after the end of a round of the dying
//!   collector, and starts the survivor `((3r + 1) mod n)/n` of an interval after one, so
//!   that the kills and the survivor's rounds fall at different points of the renewal cycle
//!   (with `n` odd, every difference `k/n` once). Expected: from 2/3 of the lease time (the
//!   lease renewed just before the kill, the survivor's round right at its expiry) to 4/3
//!   (renewed a round before, the survivor's round just missed it). Min, median, max.
//!
//! The publish and latency parts also print the CPU time (user and system, from `/proc` on
//! Linux) that nats-server and the bench process spent per record.
//!
//! `cargo bench -p benches --bench nats`. Settings (environment):
//! `NATS_BENCH_RECORDS` records per contender per round (default 20,000),
//! `NATS_BENCH_ROUNDS` rounds (default 11, after one warm-up round),
//! `NATS_BENCH_EVENTS` events in the latency part (default 3,000),
//! `NATS_BENCH_RATE` their rate over all Things, per second (default 500),
//! `NATS_BENCH_FAILOVERS` failover repetitions (default 5),
//! `NATS_BENCH_TTL_MS` the lease time (default 1,000),
//! `NATS_BENCH_PARTS` (`publish,latency,failover`, the default). The server: `$NATS_SERVER`,
//! else `/usr/sbin/nats-server`, else `nats-server` on the `PATH`; without one the bench says
//! so and exits successfully.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::future::IntoFuture;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use benches::interleave;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde_json::{Value, json};
use wot_events::{ConsumedThing, EventSubscriber, PropertyUpdate};
use wot_nats::async_nats::jetstream::{self, consumer, message::PublishMessage};
use wot_nats::{Collector, KvResumeStore, Leases, Publisher, Record, Subjects};
use wot_testkit::{Feed, Origin};

/// Acknowledgements awaited at a time, by both publishing contenders (the publisher's
/// default `max_in_flight`).
const WINDOW: usize = wot_nats::DEFAULT_MAX_IN_FLIGHT;

/// Fridges the publish part's records are spread over.
const FRIDGES: usize = 100;

/// Things of the latency part.
const LATENCY_THINGS: usize = 10;

/// Things of the failover part.
const FAILOVER_THINGS: usize = 6;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

/// The CPU time (user and system) process `pid` has used, from `/proc` (Linux; `None`
/// elsewhere).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses, which may hold spaces): state, then more
    // fields; utime and stime are the 12th and 13th, in ticks of 1/100 s (USER_HZ).
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time of the server and of this process, to take differences of.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    server: Duration,
    bench: Duration,
}

impl Cpu {
    fn now(server_pid: u32) -> Cpu {
        Cpu {
            server: cpu_time(server_pid).unwrap_or_default(),
            bench: cpu_time(std::process::id()).unwrap_or_default(),
        }
    }

    fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            server: self.server.saturating_sub(earlier.server),
            bench: self.bench.saturating_sub(earlier.bench),
        }
    }

    fn add(self, other: Cpu) -> Cpu {
        Cpu {
            server: self.server + other.server,
            bench: self.bench + other.bench,
        }
    }

    /// `nats-server x µs, bench process y µs` per one of `count`.
    fn per(self, count: u64) -> String {
        let micros = |d: Duration| d.as_secs_f64() * 1e6 / count.max(1) as f64;
        format!(
            "nats-server {:.1} µs, bench process {:.1} µs",
            micros(self.server),
            micros(self.bench)
        )
    }
}

// ---------------------------------------------------------------------------------------
// The server.

/// The nats-server of wot-nats' tests: JetStream on a free port and a temporary directory,
/// killed and its directory removed when dropped.
#[path = "../../wot-nats/tests/common/mod.rs"]
mod common;

use common::NatsServer;

// ---------------------------------------------------------------------------------------
// Part 1: publishing.

/// Batch `batch` of `n` fridge temperatures, each with its own SSE id.
fn fridge_records(batch: u64, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let seq = batch * n as u64 + i as u64;
            Record::Property(PropertyUpdate {
                thing_id: format!("urn:bench:fridge.{}", i % FRIDGES).into(),
                property: "temperature".into(),
                value: json!({
                    "value": 2.0 + (seq % 60) as f64 / 10.0,
                    "unit": "cel",
                    "ts": "2026-12-07T21:05:00.250Z",
                    "ok": true
                })
                .into(),
                timestamp: SystemTime::now(),
                event_id: Some(seq.to_string().into()),
                schema_violation: None,
            })
        })
        .collect()
}

/// A record made into a message beforehand, for the bare loop.
struct Bare {
    subject: String,
    payload: Bytes,
    message_id: String,
}

/// `record` as the publisher sends it: subject, JSON, message id (each record its own SSE id,
/// so the id's run number is 0).
fn bare_message(record: &Record, subjects: &Subjects) -> Bare {
    let event_id = record.event_id().expect("every record has an SSE id");
    Bare {
        subject: record.subject(subjects).expect("a subject"),
        payload: record.to_json().expect("JSON").into(),
        message_id: wot_nats::message_id(record.thing_id(), &record.stream(), event_id, 0),
    }
}

fn bare_messages(records: &[Record], subjects: &Subjects) -> Vec<Bare> {
    records.iter().map(|r| bare_message(r, subjects)).collect()
}

/// Publishes `records` with `publisher`, `WINDOW` acknowledgements at a time; returns how
/// many were stored.
async fn publish_with_publisher(publisher: &Publisher, records: &[Record]) -> u64 {
    let mut pending = FuturesUnordered::new();
    let mut stored = 0;
    let mut check = |ack: Result<wot_nats::Ack, wot_nats::Error>| {
        let ack = ack.expect("an acknowledgement");
        assert!(!ack.duplicate, "a fresh record is stored");
        stored += 1;
    };
    for record in records {
        if pending.len() >= WINDOW
            && let Some(ack) = pending.next().await
        {
            check(ack);
        }
        let ack = publisher.send(record).await.expect("send");
        pending.push(ack.into_future());
    }
    while let Some(ack) = pending.next().await {
        check(ack);
    }
    stored
}

/// The same with a bare JetStream context, for messages made beforehand or as they are sent.
async fn publish_bare(js: &jetstream::Context, messages: impl Iterator<Item = Bare>) -> u64 {
    let mut pending = FuturesUnordered::new();
    let mut stored = 0;
    let mut check = |ack: Result<jetstream::publish::PublishAck, _>| {
        let ack: jetstream::publish::PublishAck = ack.expect("an acknowledgement");
        assert!(!ack.duplicate, "a fresh record is stored");
        stored += 1;
    };
    for message in messages {
        if pending.len() >= WINDOW
            && let Some(ack) = pending.next().await
        {
            check(ack);
        }
        let publish = PublishMessage::build()
            .payload(message.payload)
            .message_id(&message.message_id);
        let ack = js
            .send_publish(message.subject, publish)
            .await
            .expect("publish");
        pending.push(ack.into_future());
    }
    while let Some(ack) = pending.next().await {
        check(ack);
    }
    stored
}

fn publish_part(runtime: &tokio::runtime::Runtime, server: &NatsServer) {
    let n: usize = env_or("NATS_BENCH_RECORDS", 20_000);
    let rounds: usize = env_or("NATS_BENCH_ROUNDS", 11);
    let subjects = Subjects::default();
    let (publisher, bare_js, bare_json_js, check) = runtime.block_on(async {
        let publisher = Publisher::builder()
            .build(server.client().await)
            .expect("a publisher");
        publisher.ensure_stream().await.expect("the stream");
        let bare_js = jetstream::new(server.client().await);
        let bare_json_js = jetstream::new(server.client().await);
        // Not used to send: only to check the bare loop's messages are the publisher's.
        let check = Publisher::builder()
            .build(server.client().await)
            .expect("a publisher");
        (publisher, bare_js, bare_json_js, check)
    });
    let sample = fridge_records(u64::MAX / (2 * n as u64), n.min(1_000));
    for (record, bare) in sample.iter().zip(bare_messages(&sample, &subjects)) {
        let outgoing = check.prepare(record).expect("prepare");
        assert_eq!(outgoing.subject(), bare.subject);
        assert_eq!(outgoing.payload(), &bare.payload[..]);
        assert_eq!(outgoing.message_id(), Some(bare.message_id.as_str()));
    }
    let bytes = bare_messages(&sample[..1], &subjects)[0].payload.len();
    println!(
        "nats/publish: {n} records per contender per round, {bytes}-byte JSON, {WINDOW} acknowledgements in flight, {rounds} rounds"
    );

    let batch = Cell::new(0u64);
    let next_batch = || {
        let b = batch.get();
        batch.set(b + 1);
        b
    };
    let pid = server.pid();
    let cpu: [Cell<Cpu>; 3] = std::array::from_fn(|_| Cell::new(Cpu::default()));
    let measure = |k: usize, run: &mut dyn FnMut()| {
        let (before, started) = (Cpu::now(pid), Instant::now());
        run();
        let elapsed = started.elapsed();
        cpu[k].set(cpu[k].get().add(Cpu::now(pid).since(before)));
        elapsed
    };
    let mut with_publisher = || {
        let records = fridge_records(next_batch(), n);
        let mut stored = 0;
        let elapsed = measure(0, &mut || {
            stored = runtime.block_on(publish_with_publisher(&publisher, &records));
        });
        assert_eq!(stored, n as u64);
        elapsed
    };
    let mut bare = || {
        let mut messages = Some(bare_messages(&fridge_records(next_batch(), n), &subjects));
        let mut stored = 0;
        let elapsed = measure(1, &mut || {
            let messages = messages.take().unwrap_or_default();
            stored = runtime.block_on(publish_bare(&bare_js, messages.into_iter()));
        });
        assert_eq!(stored, n as u64);
        elapsed
    };
    let mut bare_json = || {
        let records = fridge_records(next_batch(), n);
        let mut stored = 0;
        let elapsed = measure(2, &mut || {
            let messages = records.iter().map(|r| bare_message(r, &subjects));
            stored = runtime.block_on(publish_bare(&bare_json_js, messages));
        });
        assert_eq!(stored, n as u64);
        elapsed
    };
    let mut contenders: [(&'static str, &mut dyn FnMut() -> Duration); 3] = [
        ("publisher", &mut with_publisher),
        ("bare-async-nats", &mut bare),
        ("bare-async-nats-json", &mut bare_json),
    ];
    interleave::run(1, &mut contenders);
    for k in &cpu {
        k.set(Cpu::default());
    }
    let result = interleave::run(rounds, &mut contenders);
    let names = ["publisher", "bare-async-nats", "bare-async-nats-json"];
    for (k, name) in names.into_iter().enumerate() {
        let millis = result.median_millis(name);
        println!(
            "nats/publish/{name}: median {millis:.1} ms for {n} records = {:.0} records/s; CPU per record: {}",
            n as f64 / (millis / 1e3),
            cpu[k].get().per((n * rounds) as u64)
        );
    }
    println!(
        "nats/publish: publisher time / bare time = {:.2} (median of per-round ratios)",
        result.ratio("publisher", "bare-async-nats")
    );
    println!(
        "nats/publish: publisher time / bare-with-JSON time = {:.2} (median of per-round ratios)",
        result.ratio("publisher", "bare-async-nats-json")
    );
}

// ---------------------------------------------------------------------------------------
// Parts 2 and 3: Things, collectors.

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A Thing with one SSE event stream, `reading`, at `/<path>/events/reading` of `origin`.
fn thing(origin: &Origin, id: &str, path: &str) -> ConsumedThing {
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": id,
        "title": id,
        "base": format!("http://{}/{path}/", origin.addr()),
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "events": {"reading": {
            "data": {"type": "object"},
            "forms": [{"href": "events/reading", "op": "subscribeevent", "subprotocol": "sse"}]
        }}
    });
    ConsumedThing::from_slice(&serde_json::to_vec(&td).expect("JSON"), None).expect("a TD")
}

/// A feed of `total` events whose data carries the time each is written.
fn timed_feed(path: &str, total: u64, interval: Duration) -> Feed {
    Feed::new(format!("/{path}/events/reading"), total)
        .event_type("reading")
        .interval(interval)
        .data(|n| format!("{{\"seq\":{n},\"sent_us\":{}}}", now_micros()))
}

async fn collector(
    server: &NatsServer,
    name: &str,
    things: Vec<ConsumedThing>,
    ttl: Duration,
) -> Collector {
    let client = server.client().await;
    let publisher = Publisher::builder()
        .build(client.clone())
        .expect("a publisher");
    publisher.ensure_stream().await.expect("the stream");
    let leases = Leases::builder()
        .ttl(ttl)
        .open(client.clone(), name)
        .await
        .expect("the lease bucket");
    let resume = KvResumeStore::builder()
        .after_publish(true)
        .open(client)
        .await
        .expect("the resume bucket");
    Collector::builder()
        .build(
            things,
            EventSubscriber::builder(),
            publisher,
            leases,
            resume,
        )
        .expect("a collector")
}

/// The value at quantile `q` of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn latency_part(server: &NatsServer, ttl: Duration) {
    let events: u64 = env_or("NATS_BENCH_EVENTS", 3_000);
    let rate: u64 = env_or("NATS_BENCH_RATE", 500).max(1);
    let per_thing = events.div_ceil(LATENCY_THINGS as u64);
    let total = per_thing * LATENCY_THINGS as u64;
    let interval = Duration::from_secs_f64(LATENCY_THINGS as f64 / rate as f64);
    println!(
        "nats/latency: {LATENCY_THINGS} Things × {per_thing} events, one every {interval:?} per Thing ({rate}/s in all), lease time {ttl:?}"
    );
    let feeds = (0..LATENCY_THINGS).map(|k| timed_feed(&format!("lat{k}"), per_thing, interval));
    let origin = Origin::start(feeds).await.expect("an SSE server");
    let things: Vec<ConsumedThing> = (0..LATENCY_THINGS)
        .map(|k| {
            thing(
                &origin,
                &format!("urn:bench:latency.{k}"),
                &format!("lat{k}"),
            )
        })
        .collect();

    // The consumer first, delivering what is stored from now on.
    let collector = collector(server, "latency-collector", things, ttl).await;
    let js = jetstream::new(server.client().await);
    let stream = js.get_stream("WOT").await.expect("the stream");
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::New,
            ack_policy: consumer::AckPolicy::Explicit,
            filter_subject: "wot.*.*.event.*".into(),
            ..Default::default()
        })
        .await
        .expect("a consumer");
    let mut messages = consumer.messages().await.expect("the consumer's messages");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(collector.run(async {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    let cpu_before = Cpu::now(server.pid());
    let deadline = started + interval * per_thing as u32 + Duration::from_secs(30);
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    let mut latencies = Vec::with_capacity(total as usize);
    while (seen.len() as u64) < total {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(message)) = tokio::time::timeout(left, messages.next()).await else {
            break;
        };
        let message = message.expect("a message");
        let received = now_micros();
        let record: Value = serde_json::from_slice(&message.payload).expect("a record");
        let _ = message.ack().await;
        let (Some(thing), Some(seq), Some(sent)) = (
            record["thing_id"].as_str(),
            record["data"]["seq"].as_u64(),
            record["data"]["sent_us"].as_u64(),
        ) else {
            continue;
        };
        if !thing.starts_with("urn:bench:latency.") || !seen.insert((thing.to_owned(), seq)) {
            continue;
        }
        latencies.push(received.saturating_sub(sent) as f64 / 1e3);
    }
    let elapsed = started.elapsed();
    let cpu = Cpu::now(server.pid()).since(cpu_before);
    let _ = stop.send(());
    let _ = run.await;
    latencies.sort_by(f64::total_cmp);
    println!(
        "nats/latency: CPU per event: {} (the bench process: SSE server, collector, consumer)",
        cpu.per(latencies.len() as u64)
    );
    println!(
        "nats/latency: {} of {total} events received in {elapsed:.1?}; Thing → consumer: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.9),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0),
    );
}

async fn wait_for(
    held: &mut tokio::sync::watch::Receiver<Vec<String>>,
    limit: Duration,
    what: &str,
    done: impl FnMut(&Vec<String>) -> bool,
) {
    tokio::time::timeout(limit, held.wait_for(done))
        .await
        .unwrap_or_else(|_| panic!("{what} within {limit:?}"))
        .expect("the collector runs");
}

/// One failover: returns (time until the survivor holds every Thing, time until a record of
/// each of the dead collector's Things arrives again).
async fn one_failover(
    server: &NatsServer,
    things: &[ConsumedThing],
    ttl: Duration,
    round: usize,
    repetitions: usize,
) -> (Duration, Duration) {
    let all = things.len();
    let a = collector(server, &format!("failover-a{round}"), things.to_vec(), ttl).await;
    let mut a_held = a.held();
    let a_run = tokio::spawn(a.run(std::future::pending()));
    wait_for(&mut a_held, ttl * 10, "a claims every Thing", |h| {
        h.len() == all
    })
    .await;
    // The survivor's rounds start at another point of the dying one's renewal interval in
    // each repetition, as in a fleet whose processes started at different times.
    let interval = ttl / 3;
    let n = repetitions.max(1) as u32;
    let r = round as u32;
    tokio::time::sleep(interval * ((3 * r + 1) % n) / n).await;
    let b = collector(server, &format!("failover-b{round}"), things.to_vec(), ttl).await;
    let mut b_held = b.held();
    let (stop_b, stopped) = tokio::sync::oneshot::channel::<()>();
    let b_run = tokio::spawn(b.run(async {
        let _ = stopped.await;
    }));
    let half = all.div_ceil(2);
    wait_for(&mut b_held, ttl * 20, "b gets its share", |h| {
        h.len() == half
    })
    .await;
    wait_for(&mut a_held, ttl * 20, "a hands its excess over", |h| {
        h.len() == all - half
    })
    .await;
    let dead: HashSet<String> = a_held.borrow().iter().cloned().collect();

    let client = server.client().await;
    let mut records = client.subscribe("wot.>").await.expect("a subscription");
    client.flush().await.expect("flush");
    // Rounds end right after renewals: kill at a different point of the renewal interval
    // in each repetition (evenly spread over it).
    a_held.changed().await.expect("a runs");
    tokio::time::sleep(interval * r / n).await;
    a_run.abort();
    let killed = Instant::now();
    let watcher = tokio::spawn(async move {
        let subjects = Subjects::default();
        let mut first: HashMap<String, Duration> = HashMap::new();
        while first.len() < dead.len() {
            let Some(message) = records.next().await else {
                break;
            };
            let since = killed.elapsed();
            // The dead collector holds its leases for at least 2/3 of the lease time after
            // its last renewal: what comes before half of it is its own last records.
            if since < ttl / 2 {
                continue;
            }
            let Ok(parsed) = subjects.parse(&message.subject) else {
                continue;
            };
            let thing = parsed.thing_id.to_string();
            if dead.contains(&thing) {
                first.entry(thing).or_insert(since);
            }
        }
        first.values().max().copied()
    });
    wait_for(&mut b_held, ttl * 30, "b takes every Thing over", |h| {
        h.len() == all
    })
    .await;
    let claimed = killed.elapsed();
    let flowing = tokio::time::timeout(ttl * 30, watcher)
        .await
        .expect("records of every Thing again")
        .expect("the watcher")
        .expect("records of every Thing again");
    let _ = stop_b.send(());
    let _ = b_run.await;
    (claimed, flowing)
}

async fn failover_part(server: &NatsServer, ttl: Duration) {
    let repetitions: usize = env_or("NATS_BENCH_FAILOVERS", 5);
    let interval = Duration::from_millis(50);
    let feeds = (0..FAILOVER_THINGS).map(|k| timed_feed(&format!("fo{k}"), 1_000_000, interval));
    let origin = Origin::start(feeds).await.expect("an SSE server");
    let things: Vec<ConsumedThing> = (0..FAILOVER_THINGS)
        .map(|k| {
            thing(
                &origin,
                &format!("urn:bench:failover.{k}"),
                &format!("fo{k}"),
            )
        })
        .collect();
    println!(
        "nats/failover: 2 collectors, {FAILOVER_THINGS} Things (an event every {interval:?} each), lease time {ttl:?} (renewed every {:?}), {repetitions} repetitions",
        ttl / 3
    );
    let mut claimed = Vec::new();
    let mut flowing = Vec::new();
    for round in 0..repetitions {
        let (c, f) = one_failover(server, &things, ttl, round, repetitions).await;
        println!(
            "nats/failover/{round}: every Thing held by the survivor after {c:.2?}, records of each again after {f:.2?}"
        );
        claimed.push(c.as_secs_f64() * 1e3);
        flowing.push(f.as_secs_f64() * 1e3);
    }
    for (what, mut values) in [
        ("survivor holds every Thing", claimed),
        ("records of every Thing again", flowing),
    ] {
        values.sort_by(f64::total_cmp);
        println!(
            "nats/failover: {what}: min {:.0} ms, median {:.0} ms, max {:.0} ms",
            quantile(&values, 0.0),
            interleave::median(values.clone()),
            quantile(&values, 1.0),
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the arguments.
    let Some(binary) = common::binary() else {
        println!(
            "nats: skipped: no nats-server ($NATS_SERVER names no file, or none at /usr/sbin/nats-server or on the PATH; apt-get install nats-server)"
        );
        return;
    };
    let parts =
        std::env::var("NATS_BENCH_PARTS").unwrap_or_else(|_| "publish,latency,failover".to_owned());
    let ttl = Duration::from_millis(env_or("NATS_BENCH_TTL_MS", 1_000));
    let server = NatsServer::start();
    println!(
        "nats: {} with JetStream at {}",
        binary.display(),
        server.url()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    if parts.contains("publish") {
        publish_part(&runtime, &server);
    }
    if parts.contains("latency") {
        runtime.block_on(latency_part(&server, ttl));
    }
    if parts.contains("failover") {
        runtime.block_on(failover_part(&server, ttl));
    }
    println!("nats: done in {:.1?}", started.elapsed());
    drop(runtime);
    drop(server);
}
