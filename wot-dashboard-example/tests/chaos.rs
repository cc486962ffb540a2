//! The real binary in `--headless --chaos` mode: while its simulator cuts connections in the
//! middle of records and refuses some with `503` + `Retry-After`, every property update and
//! every event of every Thing must come out of the SDK exactly once and in order.
//!
//! The oracle is a second process, `--serve-only` with the same `--seed` and no chaos: the
//! simulated world depends only on the seed and the number of steps, so its record log (read
//! raw from id 0, with the SSE ids) is what the chaos run's simulator published too. The
//! headless output carries the SSE id of each event; each Thing's property updates are
//! matched against the log as one contiguous run, by name and value. The faults are counted
//! from the headless `connection` lines.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::Value;

const SLUGS: [&str; 4] = ["fridge-1", "pump-1", "air-1", "solar-1"];
const SEED: &str = "5";
const TICK: &str = "10ms";
/// Chance of a cut per record sent: high enough that the rare events get cut too.
const CHAOS_RATE: &str = "0.25";
const RUN: &str = "8s";

fn thing_id(slug: &str) -> String {
    format!("urn:wot-live:sim:{slug}")
}

/// Kills the child when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One record of a simulated Thing's log: SSE id, affordance name, JSON value.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    id: u64,
    name: String,
    value: Value,
}

/// Starts `--serve-only` and returns it with its base URL.
fn reference_server() -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args(["--serve-only", "--duration", "60s", "--seed", SEED])
        .args(["--sim-tick", TICK])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the reference simulator starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let running = Running(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a line").expect("the directory line");
    // Read the Thing URL lines too: closing the pipe before they are printed would fail the
    // server.
    assert_eq!(lines.take(SLUGS.len()).count(), SLUGS.len());
    let base = first
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    (running, base)
}

/// Reads the raw SSE stream at `url` from the first record until `stop` turns true, as a
/// plain client would (no chaos on this server: one connection suffices).
async fn record_log(url: String, mut stop: tokio::sync::watch::Receiver<bool>) -> Vec<Record> {
    let response = reqwest::Client::new()
        .get(&url)
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    let mut body = response.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut records = Vec::new();
    loop {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let chunk = match chunk {
            Some(Ok(chunk)) => chunk,
            other => panic!("the reference stream {url} ended: {other:?}"),
        };
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = pending.drain(..end + 2).collect();
            let block = String::from_utf8(block).expect("UTF-8");
            let mut id = None;
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                match line.split_once(": ") {
                    Some(("id", v)) => id = Some(v.parse::<u64>().expect("numeric id")),
                    Some(("event", v)) => name = Some(v.to_owned()),
                    Some(("data", v)) => data = Some(serde_json::from_str(v).expect("JSON")),
                    _ => {} // `retry:`, comments
                }
            }
            if let (Some(id), Some(name), Some(value)) = (id, name, data) {
                records.push(Record { id, name, value });
            }
        }
    }
    records
}

/// What the chaos run printed for one Thing.
#[derive(Debug, Default)]
struct Output {
    properties: Vec<(String, Value)>,
    events: Vec<Record>,
    /// (stream label, state) in order.
    connections: Vec<(String, String)>,
}

impl Output {
    fn reconnects(&self, stream: &str) -> usize {
        self.connections
            .iter()
            .filter(|(s, state)| s == stream && state == "reconnecting")
            .count()
    }

    /// Whether the stream came back after its first reconnect.
    fn reopened(&self, stream: &str) -> bool {
        self.connections
            .iter()
            .filter(|(s, _)| s == stream)
            .skip_while(|(_, state)| state != "reconnecting")
            .any(|(_, state)| state == "open")
    }
}

/// Runs the dashboard headless under chaos and groups its lines per Thing id.
fn chaos_run() -> BTreeMap<String, Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wot-dashboard-example"))
        .args(["--headless", "--chaos", "--chaos-rate", CHAOS_RATE])
        .args(["--seed", SEED, "--sim-tick", TICK, "--duration", RUN])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the dashboard starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut child = Running(child);
    let mut out: BTreeMap<String, Output> = BTreeMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout");
        let line: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        let text = |key: &str| line[key].as_str().unwrap_or_default().to_owned();
        let thing = out.entry(text("thing")).or_default();
        match line["type"].as_str() {
            Some("property") => thing
                .properties
                .push((text("property"), line["value"].clone())),
            Some("event") => thing.events.push(Record {
                id: text("id")
                    .parse()
                    .unwrap_or_else(|_| panic!("event without a numeric id: {line}")),
                name: text("event"),
                value: line["data"].clone(),
            }),
            Some("connection") => thing.connections.push((text("stream"), text("state"))),
            Some("alert") => {}
            other => panic!("unknown line type {other:?}: {line}"),
        }
    }
    let status = child.0.wait().expect("wait");
    assert!(status.success(), "the dashboard failed: {status}");
    out
}

/// The latest record of `name` with an id up to `id`.
fn latest_at<'a>(log: &'a [Record], name: &str, id: u64) -> Option<&'a Record> {
    log.iter().rev().find(|r| r.id <= id && r.name == name)
}

/// Whether `received` is what a correct observer delivers from the property log `log`: the
/// opening snapshot (the current value of each property, oldest first; a connection cut during
/// it leaves a prefix, followed by the replay after the last complete one), then every later
/// change exactly once, in order. Returns the id of the last update when it is.
fn delivered_exactly(
    received: &[(String, Value)],
    log: &[Record],
    properties: usize,
) -> Option<u64> {
    let same = |(name, value): &(String, Value), r: &Record| *name == r.name && *value == r.value;
    for snapshot in 1..=properties.min(received.len()) {
        let (head, rest) = received.split_at(snapshot);
        for (at, last_of_head) in log.iter().enumerate() {
            // The last snapshot record is the last record before the run of changes.
            let Some(last) = head.last() else { continue };
            if !same(last, last_of_head) {
                continue;
            }
            let run_ok = log.get(at + 1..at + 1 + rest.len()).is_some_and(|run| {
                run.len() == rest.len() && rest.iter().zip(run).all(|(g, r)| same(g, r))
            });
            if !run_ok {
                continue;
            }
            // Each snapshot record is the current value of its property at that point, and
            // the snapshot goes from oldest to newest, each property once.
            let ids: Option<Vec<u64>> = head
                .iter()
                .map(|got| {
                    latest_at(log, &got.0, last_of_head.id)
                        .filter(|r| same(got, r))
                        .map(|r| r.id)
                })
                .collect();
            let names: BTreeSet<&String> = head.iter().map(|(n, _)| n).collect();
            if ids.is_some_and(|ids| ids.windows(2).all(|w| w[0] < w[1]))
                && names.len() == head.len()
            {
                let end = at + rest.len();
                return log.get(end).map(|r| r.id);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_chaos_the_headless_dashboard_delivers_every_update_and_event_once_in_order() {
    let started = Instant::now();
    let (_reference, base) = reference_server();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let readers: Vec<_> = SLUGS
        .iter()
        .flat_map(|slug| {
            ["properties", "events"].map(|kind| {
                let url = format!("{base}things/{slug}/sse/{kind}");
                tokio::spawn(record_log(url, stopped.clone()))
            })
        })
        .collect();

    let mut output = tokio::task::spawn_blocking(chaos_run).await.expect("run");
    // The reference world started first; give it a moment more so it is surely ahead.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).expect("readers listen");
    let mut logs = Vec::new();
    for reader in readers {
        logs.push(reader.await.expect("reader"));
    }

    let mut event_reconnects = 0;
    let mut report = Vec::new();
    for (slug, pair) in SLUGS.iter().zip(logs.chunks(2)) {
        let [property_log, event_log] = pair else {
            unreachable!("two logs per Thing")
        };
        let id = thing_id(slug);
        let got = output.remove(&id).unwrap_or_default();

        // The faults really happened, and the streams came back.
        let property_reconnects = got.reconnects("*");
        assert!(
            property_reconnects >= 2 && got.reopened("*"),
            "{id}: too little chaos on the property stream to prove anything: {:?}",
            got.connections
        );
        event_reconnects += got.reconnects("events");

        // Properties: the opening snapshot, then an exact run of the log.
        let properties: BTreeSet<&String> = property_log.iter().map(|r| &r.name).collect();
        assert!(
            got.properties.len() > 2 * properties.len(),
            "{id}: only {} property updates",
            got.properties.len()
        );
        let last = delivered_exactly(&got.properties, property_log, properties.len());
        assert!(
            last.is_some(),
            "{id}: property updates lost, repeated or reordered: {:?}",
            got.properties
        );

        // Events: strictly increasing ids, and every event of the log between the first and
        // the last received, with its data.
        assert!(!got.events.is_empty(), "{id}: no events");
        let (first, end) = (got.events[0].id, got.events[got.events.len() - 1].id);
        let expected: Vec<&Record> = event_log
            .iter()
            .filter(|r| (first..=end).contains(&r.id))
            .collect();
        assert!(
            got.events.iter().eq(expected.iter().copied()),
            "{id}: events lost, repeated or reordered:\n got {:?}\nwant {expected:?}",
            got.events
        );
        report.push(format!(
            "{id}: {} property updates (up to id {}), {} events, reconnects: properties {}, \
             events {}",
            got.properties.len(),
            last.unwrap_or_default(),
            got.events.len(),
            property_reconnects,
            got.reconnects("events"),
        ));
    }
    assert!(
        event_reconnects >= 3,
        "too little chaos on the event streams: {event_reconnects} reconnects"
    );
    assert!(output.is_empty(), "lines about unknown Things: {output:?}");
    println!("{}", report.join("\n"));
    println!(
        "event stream reconnects: {event_reconnects}; wall time {:?}",
        started.elapsed()
    );
}

/// The oracle itself: a run with a dropped or a repeated update is rejected.
#[test]
fn the_property_check_rejects_loss_and_repetition() {
    let rec = |id, name: &str, v: i64| Record {
        id,
        name: name.into(),
        value: v.into(),
    };
    let log = [
        rec(1, "a", 1),
        rec(2, "b", 1),
        rec(4, "a", 2),
        rec(5, "b", 2),
        rec(6, "a", 3),
        rec(7, "b", 3),
    ];
    let got = |items: &[(&str, i64)]| -> Vec<(String, Value)> {
        items
            .iter()
            .map(|(n, v)| ((*n).into(), (*v).into()))
            .collect()
    };
    // Snapshot at id 4 (b=1, a=2), then 5, 6, 7.
    let good = got(&[("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]);
    assert_eq!(delivered_exactly(&good, &log, 2), Some(7));
    // Cut after the first snapshot record (b=1 at id 2), replay from id 2.
    let resumed = got(&[("b", 1), ("a", 2), ("b", 2), ("a", 3)]);
    assert_eq!(delivered_exactly(&resumed, &log, 2), Some(6));
    let lost = got(&[("b", 1), ("a", 2), ("a", 3), ("b", 3)]);
    assert_eq!(delivered_exactly(&lost, &log, 2), None);
    let repeated = got(&[("b", 1), ("a", 2), ("b", 2), ("b", 2), ("a", 3)]);
    assert_eq!(delivered_exactly(&repeated, &log, 2), None);
    let stale_snapshot = got(&[("a", 1), ("b", 2), ("a", 3)]);
    assert_eq!(delivered_exactly(&stale_snapshot, &log, 2), None);
}
