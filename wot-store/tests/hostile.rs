//! Hostile files and hostile timing: a file that passes the engine's checksums but holds
//! crafted counters, sizes or rows gives a typed error or skipped (counted) data, never a panic
//! or an allocation it sizes; a writer that panics fails its commit with a typed error; closing
//! a store never hangs on a producer waiting for room.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime};

use redb::{ReadableTable, TableDefinition};
use serde_json::json;
use wot_alerts::{AlertBatch, AlertStore, Engine};
use wot_events::{EventRecord, ResumePoint, ResumeStore, StreamKey, Url};
use wot_store::{Batch, FILE_NAME, RestoreLimits, Store, StoreOptions};

mod common;
use common::{TempDir, event};

const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const SERIES: TableDefinition<'_, &[u8], (u32, u64)> = TableDefinition::new("series");
const BLOCKS: TableDefinition<'_, (u32, u64), &[u8]> = TableDefinition::new("history_blocks");
const INDEX: TableDefinition<'_, u64, (u32, u32, u64, u64)> = TableDefinition::new("history_index");

fn events(from: u64, n: u64) -> Batch {
    let mut batch = Batch::new();
    for i in from..from + n {
        batch.push_event(&event(i, SystemTime::now()));
    }
    batch
}

/// A store in `dir` holding `n` events, closed.
fn store_with_events(dir: &TempDir, n: u64) {
    let store = Store::open(dir.path()).unwrap();
    store.submit_blocking(events(0, n)).unwrap().wait().unwrap();
    store.close().unwrap();
}

/// Changes the closed store's file with the engine directly, as a crafted file would be.
fn craft(dir: &TempDir, change: impl FnOnce(&redb::WriteTransaction)) {
    let db = redb::Database::open(dir.file()).unwrap();
    let txn = db.begin_write().unwrap();
    change(&txn);
    txn.commit().unwrap();
}

fn restored_events(store: &Store) -> (Vec<EventRecord>, usize) {
    let history = store
        .restore_history(&RestoreLimits::new().events(100_000))
        .unwrap();
    (history.events, history.skipped_blocks)
}

#[test]
fn counters_in_the_meta_table_are_not_trusted() {
    let dir = TempDir::new("meta");
    store_with_events(&dir, 10);
    craft(&dir, |txn| {
        let mut meta = txn.open_table(META).unwrap();
        for k in ["history_records", "history_bytes", "next_block"] {
            meta.insert(k, u64::MAX).unwrap();
        }
        meta.insert("next_series", u64::from(u32::MAX)).unwrap();
    });
    let store = Store::open(dir.path()).unwrap();
    let stats = store.stats();
    assert_eq!(stats.history_records, 10);
    assert!(stats.history_bytes > 0 && stats.history_bytes < 10_000);
    // Later commits neither overflow a counter nor overwrite the blocks already stored.
    for c in 1..5 {
        store
            .submit_blocking(events(c * 10, 10))
            .unwrap()
            .wait()
            .unwrap();
    }
    let property = wot_events::PropertyUpdate {
        thing_id: "urn:dev:boiler".into(),
        property: "t".into(),
        value: json!(1.5).into(),
        timestamp: SystemTime::now(),
        event_id: None,
        schema_violation: None,
    };
    let mut batch = Batch::new();
    batch.push_property(&property);
    store.submit_blocking(batch).unwrap().wait().unwrap();
    assert_eq!(store.stats().history_records, 51);
    let (restored, skipped) = restored_events(&store);
    assert_eq!(skipped, 0);
    let ids: Vec<u64> = restored
        .iter()
        .map(|e| e.event_id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (0..50).collect::<Vec<_>>());
    store.close().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stats().history_records, 51);
}

#[test]
fn index_rows_whose_sums_overflow_are_a_corrupt_error() {
    let dir = TempDir::new("index-overflow");
    store_with_events(&dir, 3);
    craft(&dir, |txn| {
        let mut index = txn.open_table(INDEX).unwrap();
        index.insert(100, (0, u32::MAX, u64::MAX, 0)).unwrap();
        index.insert(101, (0, u32::MAX, u64::MAX, 0)).unwrap();
    });
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    assert!(err.to_string().contains(FILE_NAME), "{err}");
}

#[test]
fn sequence_numbers_and_series_ids_at_their_maximum_are_a_corrupt_error() {
    let dir = TempDir::new("last-block");
    store_with_events(&dir, 3);
    craft(&dir, |txn| {
        let mut index = txn.open_table(INDEX).unwrap();
        index.insert(u64::MAX, (0, 1, 10, 0)).unwrap();
    });
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.is_corrupt(), "{err}");

    let dir = TempDir::new("last-series");
    store_with_events(&dir, 3);
    craft(&dir, |txn| {
        let mut series = txn.open_table(SERIES).unwrap();
        series.insert(b"e".as_slice(), (u32::MAX, 1)).unwrap();
    });
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.is_corrupt(), "{err}");
}

#[test]
fn a_series_block_count_at_its_maximum_does_not_overflow() {
    let dir = TempDir::new("block-count");
    store_with_events(&dir, 3);
    craft(&dir, |txn| {
        let mut series = txn.open_table(SERIES).unwrap();
        let (id, _) = series.get(b"e".as_slice()).unwrap().unwrap().value();
        series.insert(b"e".as_slice(), (id, u64::MAX)).unwrap();
    });
    let store = Store::open(dir.path()).unwrap();
    store.submit_blocking(events(3, 3)).unwrap().wait().unwrap();
    assert_eq!(restored_events(&store).0.len(), 6);
}

/// An event record's body in the store's encoding, with `text` as its data.
fn event_body(text: &str) -> Vec<u8> {
    let mut body = vec![1];
    body.extend_from_slice(&1_800_000_000_000_000_000u64.to_le_bytes());
    for s in ["urn:dev:boiler", "Boiler", "overheat"] {
        body.extend_from_slice(&(s.len() as u32).to_le_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    body.push(0); // no event id
    let json = format!("\"{text}\""); // a JSON string (`text` needs no escapes)
    body.push(10); // a value as JSON text
    body.extend_from_slice(&(json.len() as u32).to_le_bytes());
    body.extend_from_slice(json.as_bytes());
    body
}

/// A block of `records` with a header saying it is new.
fn block_of(records: &[Vec<u8>]) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut block = Vec::new();
    block.extend_from_slice(&(records.len() as u32).to_le_bytes());
    block.extend_from_slice(&now.to_le_bytes());
    block.extend_from_slice(&now.to_le_bytes());
    for body in records {
        block.extend_from_slice(&(body.len() as u32).to_le_bytes());
        block.extend_from_slice(body);
    }
    block
}

/// Adds `block` as the newest block of the event timeline.
fn add_event_block(dir: &TempDir, block: Vec<u8>) {
    craft(dir, |txn| {
        let series = txn.open_table(SERIES).unwrap();
        let (id, blocks) = series.get(b"e".as_slice()).unwrap().unwrap().value();
        drop(series);
        let mut index = txn.open_table(INDEX).unwrap();
        let seq = index.last().unwrap().unwrap().0.value() + 1;
        index
            .insert(seq, (id, 1, block.len() as u64, u64::MAX))
            .unwrap();
        drop(index);
        txn.open_table(BLOCKS)
            .unwrap()
            .insert((id, seq), block.as_slice())
            .unwrap();
        txn.open_table(SERIES)
            .unwrap()
            .insert(b"e".as_slice(), (id, blocks + 1))
            .unwrap();
    });
}

#[test]
fn a_block_larger_than_the_store_writes_is_skipped_and_counted() {
    let dir = TempDir::new("big-block");
    store_with_events(&dir, 5);
    // Many small records: within the record limit, but a block far over what the writer
    // makes (each value decoded costs far more memory than its bytes).
    let small = event_body("x");
    let records: Vec<Vec<u8>> = std::iter::repeat_n(small, 40_000).collect();
    add_event_block(&dir, block_of(&records));
    let store = Store::open(dir.path()).unwrap();
    let (restored, skipped) = restored_events(&store);
    assert_eq!(skipped, 1);
    assert_eq!(restored.len(), 5, "the blocks before it are still read");
}

#[test]
fn a_record_over_the_record_limit_is_skipped_with_its_block() {
    let dir = TempDir::new("big-record");
    store_with_events(&dir, 5);
    // One record of 20 KiB: a block the writer could make, with a record over this store's
    // limit of 1 KiB.
    add_event_block(&dir, block_of(&[event_body(&"y".repeat(20 << 10))]));
    let store =
        Store::open_with(dir.path(), StoreOptions::new().max_record_bytes(1 << 10)).unwrap();
    let (restored, skipped) = restored_events(&store);
    assert_eq!(skipped, 1);
    assert_eq!(restored.len(), 5);
    drop(store);
    // With the default limit (256 KiB) the same record is read.
    let store = Store::open(dir.path()).unwrap();
    let (restored, skipped) = restored_events(&store);
    assert_eq!(skipped, 0);
    assert_eq!(restored.len(), 6);
}

fn key(i: usize) -> StreamKey {
    let form = Url::parse("http://192.0.2.1/things/events").unwrap();
    StreamKey::all_events(format!("urn:dev:{i:03}"), &form)
}

#[test]
fn resume_points_are_bounded_in_streams_and_recent_ids_when_loaded() {
    let dir = TempDir::new("resume-bounds");
    {
        let store = Store::open(dir.path()).unwrap();
        let mut batch = Batch::new();
        for i in 0..10 {
            // A point with far more recent ids than any store keeps.
            let mut point = ResumePoint::new("0");
            for id in 0..1_000 {
                point.advance(&id.to_string(), usize::MAX);
            }
            batch.put_resume_point(&key(i), &point);
        }
        store.submit_blocking(batch).unwrap().wait().unwrap();
    }
    // A row far larger than any point the store writes: skipped, not decoded.
    craft(&dir, |txn| {
        let mut resume = txn
            .open_table(TableDefinition::<&[u8], &[u8]>::new("resume"))
            .unwrap();
        let junk = vec![b'['; 5 << 20];
        resume.insert(b"{".as_slice(), junk.as_slice()).unwrap();
    });
    let store = Store::open_with(dir.path(), StoreOptions::new().max_streams(4)).unwrap();
    let points = store.resume_points().unwrap();
    assert_eq!(points.len(), 4);
    for (_, point) in points.points() {
        assert_eq!(point.recent_ids.len(), wot_events::DEFAULT_DEDUP_WINDOW);
        assert_eq!(point.recent_ids.back().map(String::as_str), Some("999"));
        assert_eq!(point.last_event_id, "999");
    }
    // A stream it knows goes on; a new one past the limit is not kept.
    let known = points.points()[0].0.clone();
    points.advance(&known, "1000");
    points.advance(&key(99), "1");
    assert_eq!(points.len(), 4);
    assert_eq!(points.get(&known).unwrap().last_event_id, "1000");
    assert!(points.get(&key(99)).is_none());
    let mut batch = Batch::new();
    assert_eq!(points.add_to(&mut batch), 1);
}

/// A clock that panics while `panicking` is set: the writer calls it inside a commit (to
/// prune by age), so it stands for any panic of the engine during a commit.
fn panicking_clock(panicking: &Arc<AtomicBool>) -> StoreOptions {
    let panicking = panicking.clone();
    StoreOptions::new().clock(move || {
        if panicking.load(Ordering::SeqCst) {
            panic!("the clock failed");
        }
        SystemTime::now()
    })
}

#[test]
fn a_panic_during_a_commit_fails_it_with_a_typed_error_naming_the_path() {
    let dir = TempDir::new("writer-panic");
    let panicking = Arc::new(AtomicBool::new(false));
    let store = Store::open_with(dir.path(), panicking_clock(&panicking)).unwrap();
    store.submit_blocking(events(0, 5)).unwrap().wait().unwrap();
    panicking.store(true, Ordering::SeqCst);
    let err = store
        .submit_blocking(events(5, 5))
        .unwrap()
        .wait()
        .unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    assert!(err.to_string().contains(FILE_NAME), "{err}");
    assert!(err.to_string().contains("the clock failed"), "{err}");
    assert_eq!(store.stats().failed_commits, 1);
    // The writer lives on: the next commit is written, the failed one is not.
    panicking.store(false, Ordering::SeqCst);
    store
        .submit_blocking(events(10, 5))
        .unwrap()
        .wait()
        .unwrap();
    let stats = store.stats();
    assert_eq!(stats.history_records, 10);
    let ids: Vec<String> = restored_events(&store)
        .0
        .iter()
        .map(|e| e.event_id.as_deref().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 10);
    assert!(!ids.contains(&"5".to_owned()));
    store.close().unwrap();
}

#[test]
fn close_reports_a_failed_last_commit_even_when_the_queue_was_full() {
    let dir = TempDir::new("close-full");
    let panicking = Arc::new(AtomicBool::new(false));
    let options = panicking_clock(&panicking).queue(1);
    let store = Store::open_with(dir.path(), options).unwrap();
    panicking.store(true, Ordering::SeqCst);
    let commits: Vec<_> = (0..8)
        .map(|i| store.submit_blocking(events(i * 10, 10)).unwrap())
        .collect();
    let err = store.close().unwrap_err();
    assert!(err.is_corrupt(), "{err}");
    for commit in commits {
        assert!(commit.wait().is_err());
    }
}

/// Runs `f` on a thread of its own and fails the test if it takes longer than a minute (a
/// hang would otherwise stop the whole test run).
fn within_a_minute(name: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => thread.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{name} hung"),
    }
}

#[test]
fn dropping_the_store_while_a_producer_waits_for_room_does_not_hang() {
    within_a_minute("dropping the store", || {
        let dir = TempDir::new("drop-parked");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = Store::open_with(dir.path(), StoreOptions::new().queue(1)).unwrap();
            // Each producer commits one batch at a time; with room for one batch in the
            // queue, most of them wait for room (holding nothing of the store but a handle).
            let producers: Vec<_> = (0..16)
                .map(|_| {
                    let alerts = store.alerts();
                    tokio::spawn(async move {
                        let mut engine = Engine::new();
                        loop {
                            let batch = AlertBatch::new(engine.take_changes(), Vec::new());
                            if let Err(e) = alerts.commit(batch).await {
                                return e;
                            }
                        }
                    })
                })
                .collect();
            // Let the producers run until they wait for room.
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            // Joins the writer on the runtime's only thread while producers are parked.
            drop(store);
            for producer in producers {
                let err = producer.await.unwrap();
                assert!(err.to_string().contains(FILE_NAME), "{err}");
            }
        });
    });
}

#[test]
fn close_async_lets_the_runtime_run_the_producers_it_stops() {
    within_a_minute("close_async", || {
        let dir = TempDir::new("close-async");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = Store::open_with(dir.path(), StoreOptions::new().queue(1)).unwrap();
            let alerts = store.alerts();
            let producer = tokio::spawn(async move {
                let mut engine = Engine::new();
                loop {
                    let batch = AlertBatch::new(engine.take_changes(), Vec::new());
                    if let Err(e) = alerts.commit(batch).await {
                        return e;
                    }
                }
            });
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            // Awaited on the runtime's only thread: the producer runs meanwhile.
            store.close_async().await.unwrap();
            let err = producer.await.unwrap();
            assert!(err.to_string().contains("closed"), "{err}");
        });
    });
}

#[tokio::test]
async fn alert_state_loads_on_the_blocking_pool() {
    let dir = TempDir::new("alerts-load");
    let store = Store::open(dir.path()).unwrap();
    let alerts = store.alerts();
    assert!(alerts.load().await.unwrap().is_none());
    let mut engine = Engine::new();
    alerts
        .commit(AlertBatch::new(engine.take_changes(), Vec::new()))
        .await
        .unwrap();
    assert!(alerts.load().await.unwrap().is_some());
    store.close_async().await.unwrap();
}

#[test]
fn a_queue_too_large_to_count_is_a_setting_error() {
    let dir = TempDir::new("queue-setting");
    for queue in [0, usize::MAX] {
        let err = Store::open_with(dir.path(), StoreOptions::new().queue(queue)).unwrap_err();
        assert!(matches!(err, wot_store::Error::Setting(_)), "{err}");
    }
}

#[cfg(unix)]
#[test]
fn the_directory_made_for_the_store_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("private");
    let state = dir.path().join("a").join("state");
    drop(Store::open(&state).unwrap());
    for made in [dir.path().join("a"), state] {
        let mode = std::fs::metadata(&made).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", made.display());
    }
}
