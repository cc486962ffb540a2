//! The fleet on NATS JetStream, as separate processes: the simulator serving a fleet
//! (`--serve-only --things N`), collectors (`--collect`), and a dashboard reading from the
//! stream (`--source`), with a real nats-server started by the test.

#[path = "../../wot-nats/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::Value;
use wot_nats::Record;
use wot_nats::async_nats::jetstream::{self, consumer};

use common::NatsServer;

const BIN: &str = env!("CARGO_BIN_EXE_wot-dashboard-example");

/// A child process killed (if still running) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// Starts `--serve-only` with `things` Things; returns it and the directory's base URL.
fn simulator(things: usize, duration: &str) -> (Running, String) {
    let mut child = Command::new(BIN)
        .args(["--serve-only", "--things", &things.to_string()])
        .args(["--duration", duration])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the simulator starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a line").expect("text");
    let base = first
        .split_whitespace()
        .nth(1)
        .expect("directory: URL")
        .to_owned();
    // Keep reading the rest so the simulator never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Running(child), base)
}

#[test]
fn serve_only_serves_a_fleet_in_its_directory() {
    let (_sim, base) = simulator(300, "30s");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let listing: Vec<Value> = reqwest::get(format!("{base}things"))
            .await
            .expect("GET /things")
            .json()
            .await
            .expect("JSON");
        assert_eq!(listing.len(), 300);
        let ids: BTreeSet<&str> = listing.iter().filter_map(|td| td["id"].as_str()).collect();
        assert_eq!(ids.len(), 300);
        assert!(ids.contains("urn:wot-live:sim:solar-75"));
        let td: Value = reqwest::get(format!("{base}things/air-60"))
            .await
            .expect("GET TD")
            .json()
            .await
            .expect("TD");
        assert_eq!(td["id"], "urn:wot-live:sim:air-60");
    });
}

#[test]
fn a_fleet_past_the_limit_is_refused_with_the_option_named() {
    let output = Command::new(BIN)
        .args(["--serve-only", "--things", "10001"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("--things"), "{text}");
}

#[test]
fn a_nats_url_with_a_password_is_never_shown() {
    // Nothing listens on port 9 (the embedded simulator supplies the Things): the start
    // fails at once, saying where, without the password.
    let started = Instant::now();
    let output = Command::new(BIN)
        .args([
            "--collect",
            "nats://user:hunter2@127.0.0.1:9",
            "--duration",
            "30s",
        ])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nats://127.0.0.1:9"), "{stderr}");
    let all = format!("{}{stderr}", String::from_utf8_lossy(&output.stdout));
    assert!(!all.contains("hunter2") && !all.contains("user"), "{all}");
    let output = Command::new(BIN)
        .args(["--collect", "http://user:hunter2@h:1"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("hunter2"));
}

/// One JSON line of a collector, with the collector's index.
#[derive(Debug, Clone)]
struct Line {
    kind: String,
    thing: String,
    at_ms: u64,
}

/// A collector process and the lines it printed so far.
struct CollectorProcess {
    child: Running,
    lines: Arc<Mutex<Vec<Line>>>,
}

impl CollectorProcess {
    fn start(nats: &str, directory: &str, name: &str) -> Self {
        let mut child = Command::new(BIN)
            .args(["--collect", nats, "--directory", directory])
            .args(["--collector-name", name, "--duration", "10m"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("a collector starts");
        let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in out.map_while(Result::ok) {
                let Ok(json) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                sink.lock().expect("lines").push(Line {
                    kind: json["type"].as_str().unwrap_or_default().to_owned(),
                    thing: json["thing"].as_str().unwrap_or_default().to_owned(),
                    at_ms: json["at_ms"].as_u64().unwrap_or_default(),
                });
            }
        });
        CollectorProcess {
            child: Running(child),
            lines,
        }
    }

    /// The Things it holds now, by its lines.
    fn held(&self) -> BTreeSet<String> {
        let mut held = BTreeSet::new();
        for line in self.lines.lock().expect("lines").iter() {
            match line.kind.as_str() {
                "claimed" => {
                    held.insert(line.thing.clone());
                }
                "released" => {
                    held.remove(&line.thing);
                }
                _ => {}
            }
        }
        held
    }

    fn saw(&self, kind: &str) -> bool {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.kind == kind)
    }

    /// SIGTERM, then waits (at most 30 s) for the clean stop.
    fn terminate(mut self) {
        let pid = self.child.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                assert!(status.success(), "collector exit: {status}");
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(200));
                assert!(self.saw("stopped"), "no stopped line after SIGTERM");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("a collector did not stop within 30 s of SIGTERM");
    }
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The SSE ids of the records of one Thing's stream (`properties` or `events`) that the
/// simulator sends after `after`, up to and including `until`.
async fn simulator_ids(url: &str, after: u64, until: u64) -> Vec<u64> {
    let response = reqwest::Client::new()
        .get(url)
        .header("last-event-id", after.to_string())
        .send()
        .await
        .expect("GET SSE");
    let mut body = response.bytes_stream();
    let mut pending = String::new();
    let mut ids = Vec::new();
    loop {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .unwrap_or_else(|_| panic!("{url}: no record up to {until} within 10 s"))
            .expect("the stream goes on")
            .expect("bytes");
        pending.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            let id = block
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .and_then(|id| id.parse::<u64>().ok());
            let has_data = block.lines().any(|l| l.starts_with("data:"));
            if let (Some(id), true) = (id, has_data) {
                if id > until {
                    return ids;
                }
                ids.push(id);
                if id == until {
                    return ids;
                }
            }
        }
    }
}

#[test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
fn three_collectors_share_300_things_and_one_killed_loses_and_repeats_nothing() {
    const THINGS: usize = 300;
    let server = NatsServer::start();
    let nats = server.url();
    let (_sim, directory) = simulator(THINGS, "10m");
    let started = Instant::now();
    let mut collectors: Vec<CollectorProcess> = (0..3)
        .map(|i| CollectorProcess::start(&nats, &directory, &format!("collector-{i}")))
        .collect();

    // All 300 held, 100 each (the fair share of three).
    wait_until(Duration::from_secs(90), "300 Things shared by 3", || {
        let held: Vec<BTreeSet<String>> = collectors.iter().map(CollectorProcess::held).collect();
        let all: BTreeSet<&String> = held.iter().flatten().collect();
        all.len() == THINGS && held.iter().all(|h| h.len() == THINGS / 3)
    });
    let shared_after = started.elapsed();
    std::thread::sleep(Duration::from_secs(5));

    // kill -9 the first collector.
    let victim = collectors.remove(0);
    let orphans = victim.held();
    let mut victim = victim;
    victim.child.0.kill().expect("kill -9");
    let killed_at = now_ms();
    let _ = victim.child.0.wait();

    // Every one of its Things claimed by a survivor.
    let claimed_at = |c: &CollectorProcess| -> HashMap<String, u64> {
        c.lines
            .lock()
            .expect("lines")
            .iter()
            .filter(|l| l.kind == "claimed" && l.at_ms >= killed_at)
            .map(|l| (l.thing.clone(), l.at_ms))
            .collect()
    };
    let mut taken: HashMap<String, u64> = HashMap::new();
    wait_until(
        Duration::from_secs(45),
        "the killed collector's Things taken over",
        || {
            taken = collectors.iter().flat_map(claimed_at).collect();
            orphans.iter().all(|t| taken.contains_key(t))
        },
    );
    let failover_ms = orphans
        .iter()
        .filter_map(|t| taken.get(t))
        .max()
        .map_or(0, |at| at - killed_at);
    let first_ms = orphans
        .iter()
        .filter_map(|t| taken.get(t))
        .min()
        .map_or(0, |at| at - killed_at);
    std::thread::sleep(Duration::from_secs(5));
    for collector in collectors {
        collector.terminate();
    }

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // The clean stops released every lease (the killed one's expired long ago).
    let leased = runtime.block_on(async {
        let leases = wot_nats::Leases::builder()
            .open(server.client().await, "checker")
            .await
            .expect("lease bucket");
        leases.leased(THINGS).await.expect("leases listed")
    });
    assert!(leased.is_empty(), "leases left after SIGTERM: {leased:?}");

    // Read the whole stream.
    let (records, per_thing) = runtime.block_on(async {
        let client = server.client().await;
        let context = jetstream::new(client);
        let mut stream = context.get_stream("WOT").await.expect("stream WOT");
        let total = stream.info().await.expect("info").state.messages;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: "wot.>".to_owned(),
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("ordered consumer");
        let mut messages = consumer.messages().await.expect("messages");
        // Per Thing and stream kind: the SSE ids in stream order.
        let mut per_thing: BTreeMap<(String, &'static str), Vec<u64>> = BTreeMap::new();
        let mut read = 0u64;
        while read < total {
            let message = tokio::time::timeout(Duration::from_secs(30), messages.next())
                .await
                .expect("the stream delivers")
                .expect("a message")
                .expect("no error");
            read += 1;
            let record = Record::from_json(&message.payload).expect("a v1 record");
            let kind = match &record {
                Record::Property(_) => "properties",
                Record::Event(_) => "events",
                _ => continue,
            };
            let id: u64 = record
                .event_id()
                .expect("SSE records carry their id")
                .parse()
                .expect("numeric id");
            per_thing
                .entry((record.thing_id().to_owned(), kind))
                .or_default()
                .push(id);
        }
        (total, per_thing)
    });

    // Exactly once and in order: strictly increasing ids per Thing and stream.
    for ((thing, kind), ids) in &per_thing {
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{thing} {kind}: not strictly increasing: {ids:?}"
        );
    }
    let things: BTreeSet<&String> = per_thing.keys().map(|(t, _)| t).collect();
    assert_eq!(things.len(), THINGS, "every Thing has records");

    // Nothing missing: everything the simulator sent on each stream from the first record
    // published to the last (the properties stream starts with at most 3 current values,
    // taken before the live records).
    let checked = runtime.block_on(async {
        let mut checked = 0usize;
        let jobs = per_thing.iter().map(|((thing, kind), ids)| {
            let slug = thing.rsplit(':').next().expect("slug").to_owned();
            let url = format!("{directory}things/{slug}/sse/{kind}");
            async move {
                let first = ids[0];
                let last = *ids.last().expect("one");
                let sent = simulator_ids(&url, first - 1, last).await;
                // The properties stream may start with up to 3 current values (ids from
                // before the live ones); events start live.
                let most_skipped = if *kind == "properties" { 3 } else { 0 };
                let complete = (0..=most_skipped).filter(|&i| i < ids.len()).any(|i| {
                    let from = ids[i];
                    sent.iter()
                        .copied()
                        .filter(|id| *id >= from)
                        .eq(ids[i..].iter().copied())
                });
                assert!(
                    complete,
                    "{thing} {kind}: stream {ids:?}, simulator {sent:?}"
                );
                ids.len()
            }
        });
        let mut results = futures::stream::iter(jobs).buffer_unordered(16);
        while let Some(n) = results.next().await {
            checked += n;
        }
        checked
    });
    println!(
        "fleet: {THINGS} Things, 3 collectors, shared after {:.1} s; {records} records in the stream, \
         {checked} with SSE ids checked against the simulator; collector-0 held {} Things, \
         killed -9: first taken over after {:.1} s, last after {:.1} s (lease TTL 10 s)",
        shared_after.as_secs_f64(),
        orphans.len(),
        first_ms as f64 / 1000.0,
        failover_ms as f64 / 1000.0,
    );
    assert!(
        failover_ms <= 15_000,
        "failover took {failover_ms} ms, over 15 s"
    );
}

#[test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
fn the_dashboard_reads_the_fleet_from_nats_headless_and_on_the_web() {
    const THINGS: usize = 8;
    let server = NatsServer::start();
    let nats = server.url();
    let (_sim, directory) = simulator(THINGS, "10m");
    let collector = CollectorProcess::start(&nats, &directory, "only");
    wait_until(
        Duration::from_secs(30),
        "the collector holds the fleet",
        || collector.held().len() == THINGS,
    );
    // The dashboard: TDs from the directory, values from NATS, web and headless at once.
    let mut child = Command::new(BIN)
        .args(["--source", &nats, "--directory", &directory])
        .args(["--headless", "--web", "127.0.0.1:0", "--duration", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the dashboard starts");
    let out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let _dashboard = Running(child);
    // Read on a thread that reads to the end: a closed stdout would end the dashboard.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut web = None;
    let mut things = BTreeSet::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let Ok(json) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        match json["type"].as_str() {
            Some("web") => web = json["url"].as_str().map(str::to_owned),
            Some("property") => {
                things.insert(json["thing"].as_str().unwrap_or_default().to_owned());
            }
            _ => {}
        }
        if web.is_some() && things.len() == THINGS {
            break;
        }
    }
    assert_eq!(things.len(), THINGS, "property lines of every Thing");
    let web = web.expect("a web line");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let snapshot: Value = runtime.block_on(async {
        reqwest::get(format!("{}/api/snapshot", web.trim_end_matches('/')))
            .await
            .expect("snapshot")
            .json()
            .await
            .expect("JSON")
    });
    let shown = snapshot["things"]
        .as_array()
        .expect("things")
        .iter()
        .filter(|t| {
            t["properties"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| !p["latest"].is_null()))
        })
        .count();
    assert_eq!(shown, THINGS, "every Thing has values on the page");
    collector.terminate();
}

#[test]
#[ignore = "needs nats-server; .ci/run installs it and runs these with --ignored"]
fn records_that_cannot_be_read_from_nats_are_reported_and_the_rest_shown() {
    let server = NatsServer::start();
    let nats = server.url();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let publisher = wot_nats::Publisher::builder()
            .build(server.client().await)
            .expect("publisher");
        publisher.ensure_stream().await.expect("stream");
        let context = publisher.jetstream();
        for (subject, payload) in [
            ("wot.p0.x.prop.garbage", b"not json".to_vec()),
            (
                "wot.p0.x.prop.future",
                br#"{"v":2,"kind":"property"}"#.to_vec(),
            ),
            ("wot.p0.x.prop.big", vec![b'['; 512 * 1024]),
        ] {
            context
                .publish(subject, payload.into())
                .await
                .expect("publish")
                .await
                .expect("stored");
        }
        publisher
            .publish(&Record::Property(wot_events::PropertyUpdate {
                thing_id: "urn:wot-live:sim:fridge-1".into(),
                property: "temperature".into(),
                value: serde_json::json!(4.5).into(),
                timestamp: SystemTime::now(),
                event_id: Some("7".into()),
                schema_violation: None,
            }))
            .await
            .expect("a good record");
    });
    // The TDs from the embedded simulator this time (`--things 1`: fridge-1).
    let output = Command::new(BIN)
        .args(["--source", &nats, "--things", "1"])
        .args(["--headless", "--duration", "3s"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stdout.contains(r#""property":"temperature","value":4.5"#),
        "{stdout}"
    );
    assert_eq!(
        stderr.matches("was not read").count(),
        3,
        "one notice per bad record: {stderr}"
    );
}
