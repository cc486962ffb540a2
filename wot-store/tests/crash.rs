//! Crash consistency: a child process writes batches in a loop and prints the number of each
//! batch once its commit is acknowledged; the test kills it with SIGKILL at random points
//! (also while it opens the store) and checks, after each kill, that the store opens and holds
//! every acknowledged batch, and each batch entirely or not at all.
//!
//! The child is this test binary run again with `WOT_STORE_CRASH_CHILD=<dir>`: only the
//! `crash_child` test then does anything.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::json;
use wot_events::{EventRecord, PropertyUpdate, ResumeStore, StreamKey, Url};
use wot_store::{Batch, RestoreLimits, Store};

const CHILD_ENV: &str = "WOT_STORE_CRASH_CHILD";
/// Events in each batch (and one property value and one resume point).
const EVENTS: usize = 5;
const KILLS: usize = 24;

fn key() -> StreamKey {
    StreamKey::all_events(
        "urn:dev:crash",
        &Url::parse("http://192.0.2.1/events").unwrap(),
    )
}

fn everything() -> RestoreLimits {
    RestoreLimits::new()
        .events(usize::MAX)
        .per_property(usize::MAX)
        .since(Duration::from_secs(24 * 3600))
}

/// Batch number → events of that batch found in the store; and the resume point's batch.
fn contents(dir: &Path) -> (BTreeMap<u64, usize>, BTreeMap<u64, usize>, Option<u64>) {
    let store = Store::open(dir).unwrap_or_else(|e| panic!("the store opens after a kill: {e}"));
    let history = store.restore_history(&everything()).unwrap();
    assert_eq!(history.skipped_blocks, 0);
    let mut events = BTreeMap::new();
    for e in &history.events {
        let id = e.event_id.as_deref().unwrap();
        let batch: u64 = id.split('-').next().unwrap().parse().unwrap();
        *events.entry(batch).or_insert(0) += 1;
    }
    let mut values = BTreeMap::new();
    for p in &history.properties {
        for u in &p.updates {
            *values.entry(u.value.as_u64().unwrap()).or_insert(0) += 1;
        }
    }
    let point = store
        .resume_points()
        .unwrap()
        .load(&key())
        .map(|p| p.last_event_id.split('-').next().unwrap().parse().unwrap());
    (events, values, point)
}

fn write_batches(dir: &Path) {
    let store = Store::open(dir).unwrap();
    let first = newest_batch(&store).map_or(0, |n| n + 1);
    let points = store.resume_points().unwrap();
    let (tx, rx) = mpsc::sync_channel::<(u64, wot_store::Commit)>(16);
    let printer = std::thread::spawn(move || {
        let mut out = std::io::stdout().lock();
        for (n, commit) in rx {
            if commit.wait().is_err() {
                return;
            }
            writeln!(out, "ack {n}").unwrap();
            out.flush().unwrap();
        }
    });
    for n in first.. {
        let mut batch = Batch::new();
        let now = SystemTime::now();
        for i in 0..EVENTS {
            let id = format!("{n}-{i}");
            batch.push_event(&EventRecord {
                thing_id: "urn:dev:crash".into(),
                thing_title: "Crash".into(),
                event: "tick".into(),
                data: json!({"n": n, "i": i, "pad": "x".repeat(200)}).into(),
                event_id: Some(id.as_str().into()),
                received_at: now,
            });
            points.advance(&key(), &id);
        }
        batch.push_property(&PropertyUpdate {
            thing_id: "urn:dev:crash".into(),
            property: "n".into(),
            value: json!(n).into(),
            timestamp: now,
            event_id: None,
            schema_violation: None,
        });
        points.add_to(&mut batch);
        let commit = store.submit_blocking(batch).unwrap();
        if tx.send((n, commit)).is_err() {
            break;
        }
    }
    drop(tx);
    printer.join().unwrap();
}

/// The number of the newest batch in the store.
fn newest_batch(store: &Store) -> Option<u64> {
    let history = store
        .restore_history(&RestoreLimits::new().events(1))
        .unwrap();
    let id = history.events.last()?.event_id.clone()?;
    id.split('-').next()?.parse().ok()
}

/// Runs only as the child.
#[test]
fn crash_child() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        write_batches(Path::new(&dir));
    }
}

/// A small xorshift: the kill points differ from run to run; the seed is printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn killed_writers_leave_every_acknowledged_batch_whole() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("wot-store-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill points from seed {seed}");
    let mut rng = Rng(seed);
    let mut acked_total = BTreeSet::new();
    let mut kills_mid_open = 0;
    for round in 0..KILLS {
        let (acked, mid_open) = run_and_kill(&dir, &mut rng);
        kills_mid_open += usize::from(mid_open);
        acked_total.extend(acked.iter().copied());
        let (events, values, point) = contents(&dir);
        for n in &acked_total {
            assert_eq!(
                events.get(n),
                Some(&EVENTS),
                "round {round}: acknowledged batch {n} lost"
            );
            assert_eq!(values.get(n), Some(&1), "round {round}: batch {n}'s value");
        }
        for (n, count) in &events {
            assert_eq!(*count, EVENTS, "round {round}: batch {n} is partial");
            assert_eq!(
                values.get(n),
                Some(&1),
                "round {round}: batch {n} without its value"
            );
        }
        assert_eq!(
            values.len(),
            events.len(),
            "round {round}: values without their events"
        );
        // The resume point was written in the same batch as the newest events.
        assert_eq!(point, events.keys().next_back().copied(), "round {round}");
    }
    let (events, _, _) = contents(&dir);
    eprintln!(
        "{KILLS} kills ({kills_mid_open} while opening), {} batches acknowledged, {} stored",
        acked_total.len(),
        events.len()
    );
    assert!(acked_total.len() > KILLS, "the children made progress");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts a writer, kills it at a random point, returns the batches it acknowledged and
/// whether it was killed before its first acknowledgement.
fn run_and_kill(dir: &PathBuf, rng: &mut Rng) -> (Vec<u64>, bool) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("ack ") {
                let _ = tx.send(n.trim().parse::<u64>().unwrap());
            }
        }
    });
    let mut acked = Vec::new();
    let early = rng.below(5) == 0;
    let mid_open = if early {
        // Somewhere in the start: opening, checking, the first commits.
        std::thread::sleep(Duration::from_millis(rng.below(60)));
        acked.extend(rx.try_iter());
        acked.is_empty()
    } else {
        let deadline = Instant::now() + Duration::from_secs(60);
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(n) => acked.push(n),
            Err(_) => panic!("no batch acknowledged before {deadline:?}"),
        }
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        false
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    acked.extend(rx.try_iter());
    (acked, mid_open)
}
