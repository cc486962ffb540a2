//! Round trips of each table, format versions, damaged files and hostile sizes.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::json;
use wot_events::{PropertyUpdate, ResumePoint, ResumeStore, StreamKey, Url};
use wot_store::{Batch, Error, FILE_NAME, FORMAT_VERSION, RestoreLimits, Store, StoreOptions};

mod common;
use common::{TempDir, event};

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// A clock the test moves.
fn clock() -> (Arc<Mutex<SystemTime>>, StoreOptions) {
    let now = Arc::new(Mutex::new(t0()));
    let read = now.clone();
    (
        now,
        StoreOptions::new().clock(move || *read.lock().unwrap()),
    )
}

fn update(thing: &str, property: &str, i: u64, at: SystemTime) -> PropertyUpdate {
    PropertyUpdate {
        thing_id: thing.into(),
        property: property.into(),
        value: json!(i as f64 + 0.5).into(),
        timestamp: at,
        event_id: Some(i.to_string().into()),
        schema_violation: None,
    }
}

fn key(thing: &str) -> StreamKey {
    let form = Url::parse("http://user:secret@192.0.2.1/things/properties?token=x").unwrap();
    StreamKey::all_properties(thing, &form)
}

#[tokio::test]
async fn history_round_trips_newest_first_within_limits() {
    let dir = TempDir::new("history");
    let (_now, options) = clock();
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    let mut batch = Batch::new();
    for i in 0..50 {
        let at = t0() - Duration::from_secs(50 - i);
        batch.push_event(&event(i, at));
        batch.push_property(&update("urn:dev:a", "temperature", i, at));
        batch.push_property(&update("urn:dev:b", "humidity", i, at));
    }
    // Names that run together differently keep their series apart.
    batch.push_property(&update("urn:dev:x\0y", "z", 1, t0()));
    batch.push_property(&update("urn:dev:x", "y\0z", 2, t0()));
    store.commit(batch).await.unwrap();
    assert_eq!(store.stats().history_records, 152);
    store.close().unwrap();

    let store = Store::open_with(dir.path(), options).unwrap();
    let history = store
        .restore_history(&RestoreLimits::new().events(10).per_property(5))
        .unwrap();
    let ids: Vec<_> = history
        .events
        .iter()
        .map(|e| e.event_id.as_deref().unwrap().to_owned())
        .collect();
    assert_eq!(ids, (40..50).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(history.events[9], event(49, t0() - Duration::from_secs(1)));
    assert_eq!(history.properties.len(), 4);
    assert_eq!(history.properties[2].thing_id, "urn:dev:x");
    assert_eq!(history.properties[2].property, "y\0z");
    assert_eq!(history.properties[3].thing_id, "urn:dev:x\0y");
    assert_eq!(history.properties[3].updates.len(), 1);
    assert_eq!(history.properties[0].thing_id, "urn:dev:a");
    assert_eq!(history.properties[0].property, "temperature");
    assert_eq!(
        history.properties[0].updates,
        (45..50)
            .map(|i| update(
                "urn:dev:a",
                "temperature",
                i,
                t0() - Duration::from_secs(50 - i)
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(history.properties[1].property, "humidity");
    assert_eq!(history.skipped_blocks, 0);

    // Only the last 10 seconds.
    let recent = store
        .restore_history(&RestoreLimits::new().since(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(recent.events.len(), 10);
    assert_eq!(recent.property_values(), 22);
}

#[tokio::test]
async fn history_is_pruned_by_count_size_and_age() {
    let dir = TempDir::new("prune");
    let (now, options) = clock();
    let store = Store::open_with(
        dir.path(),
        options
            .history_records(1_000)
            .history_age(Duration::from_secs(3600)),
    )
    .unwrap();
    // 20 commits of 100 records: the count window keeps the newest ~1,000.
    for c in 0..20u64 {
        let mut batch = Batch::new();
        for i in 0..100 {
            batch.push_event(&event(c * 100 + i, t0()));
        }
        store.commit(batch).await.unwrap();
    }
    let stats = store.stats();
    assert!(stats.history_records <= 1_000, "{stats:?}");
    assert!(stats.history_records >= 900, "{stats:?}");
    assert_eq!(stats.pruned_records + stats.history_records, 2_000);
    let history = store
        .restore_history(&RestoreLimits::new().events(5_000))
        .unwrap();
    assert_eq!(history.events.len() as u64, stats.history_records);
    assert_eq!(
        history.events.last().unwrap().event_id.as_deref(),
        Some("1999")
    );

    // Two hours later: everything is past the time window; a commit prunes it.
    *now.lock().unwrap() = t0() + Duration::from_secs(7200);
    assert!(
        store
            .restore_history(&RestoreLimits::new())
            .unwrap()
            .events
            .is_empty()
    );
    store.commit(Batch::new()).await.unwrap();
    assert_eq!(store.stats().history_records, 0);
    drop(store);

    // Size window.
    let dir = TempDir::new("prune-bytes");
    let (_now, options) = clock();
    let store = Store::open_with(
        dir.path(),
        options.history_bytes(64 << 10).max_record_bytes(1 << 10),
    )
    .unwrap();
    for c in 0..50u64 {
        let mut batch = Batch::new();
        for i in 0..20 {
            batch.push_property(&update("urn:dev:a", "t", c * 20 + i, t0()));
        }
        store.commit(batch).await.unwrap();
    }
    let stats = store.stats();
    assert!(stats.history_bytes <= 64 << 10, "{stats:?}");
    assert!(stats.history_records > 0);
}

#[tokio::test]
async fn a_record_over_the_size_limit_is_dropped_and_counted() {
    let dir = TempDir::new("hostile");
    let store =
        Store::open_with(dir.path(), StoreOptions::new().max_record_bytes(4 << 10)).unwrap();
    let mut batch = Batch::new();
    let mut big = event(1, SystemTime::now());
    big.data = json!("x".repeat(1 << 20)).into();
    batch.push_event(&event(0, SystemTime::now()));
    batch.push_event(&big);
    batch.push_event(&event(2, SystemTime::now()));
    store.commit(batch).await.unwrap();
    let stats = store.stats();
    assert_eq!(stats.dropped_records, 1);
    assert_eq!(stats.history_records, 2);
    let history = store.restore_history(&RestoreLimits::new()).unwrap();
    assert_eq!(history.events.len(), 2);

    // A value nested deeper than the codec takes: dropped and counted too.
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let mut nested = event(3, SystemTime::now());
    nested.data = deep.into();
    let mut batch = Batch::new();
    batch.push_event(&nested);
    store.commit(batch).await.unwrap();
    assert_eq!(store.stats().dropped_records, 2);

    // A limit over the size window is a setting error, not a surprise later.
    let other = TempDir::new("hostile-setting");
    let err = Store::open_with(
        other.path(),
        StoreOptions::new()
            .history_bytes(1 << 10)
            .max_record_bytes(1 << 20),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Setting(_)), "{err}");
}

#[tokio::test]
async fn resume_points_round_trip_through_a_subscribers_store() {
    let dir = TempDir::new("resume");
    let store = Store::open(dir.path()).unwrap();
    let points = store.resume_points().unwrap();
    assert!(points.is_empty());
    for id in ["1", "2", "3"] {
        points.advance(&key("urn:dev:a"), id);
    }
    points.advance(&key("urn:dev:b"), "x");
    assert!(points.has_pending());
    let mut batch = Batch::new();
    assert_eq!(points.add_to(&mut batch), 2);
    assert!(!points.has_pending());
    store.commit(batch).await.unwrap();
    // An advance not written is not stored.
    points.advance(&key("urn:dev:a"), "4");
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    let points = store.resume_points().unwrap();
    assert_eq!(points.len(), 2);
    let a = points.load(&key("urn:dev:a")).unwrap();
    assert_eq!(a.last_event_id, "3");
    assert_eq!(a.recent_ids, ["1", "2", "3"]);
    assert_eq!(
        points.load(&key("urn:dev:b")).unwrap(),
        ResumePoint::new("x")
    );
    // Keys hold no credentials.
    let bytes = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
    assert!(!bytes.windows(6).any(|w| w == b"secret"));

    let mut batch = Batch::new();
    batch.remove_resume_point(&key("urn:dev:b"));
    store.commit(batch).await.unwrap();
    assert_eq!(store.resume_points().unwrap().len(), 1);
}

#[tokio::test]
async fn an_empty_batch_is_a_flush_and_close_refuses_later_batches() {
    let dir = TempDir::new("close");
    let store = Store::open(dir.path()).unwrap();
    let mut commits = Vec::new();
    for i in 0..100 {
        let mut batch = Batch::new();
        batch.push_event(&event(i, SystemTime::now()));
        commits.push(store.submit(batch).await.unwrap());
    }
    store.commit(Batch::new()).await.unwrap();
    for commit in commits {
        commit.await.unwrap();
    }
    // Batches handed out again are empty.
    let reused = store.batch();
    assert!(reused.is_empty());
    let stats = store.stats();
    assert_eq!(stats.batches, 101);
    assert!(stats.commits <= 101);
    store.close().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stats().history_records, 100);
}

#[test]
fn dropping_the_store_commits_what_is_queued_and_joins_the_writer() {
    let dir = TempDir::new("drop");
    let store = Store::open(dir.path()).unwrap();
    let mut commits = Vec::new();
    for i in 0..50 {
        let mut batch = Batch::new();
        batch.push_event(&event(i, SystemTime::now()));
        commits.push(store.submit_blocking(batch).unwrap());
    }
    drop(store);
    for commit in commits {
        commit.wait().unwrap();
    }
    // The file is free again: the writer thread and its database are gone.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stats().history_records, 50);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = TempDir::new("locked");
    let _store = Store::open(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
}

/// Sets the format version the file claims, as another build of the crate would have written.
fn set_version(dir: &Path, version: u64) {
    let db = redb::Database::open(dir.join(FILE_NAME)).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap();
        meta.insert("format_version", version).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn other_format_versions_are_refused_naming_both_and_the_path() {
    for version in [0, FORMAT_VERSION + 1] {
        let dir = TempDir::new("version");
        drop(Store::open(dir.path()).unwrap());
        set_version(dir.path(), version);
        let err = Store::open(dir.path()).unwrap_err();
        match &err {
            Error::Version {
                path,
                found,
                supported,
            } => {
                assert_eq!(*found, version);
                assert_eq!(*supported, FORMAT_VERSION);
                assert_eq!(path, &dir.path().join(FILE_NAME));
            }
            other => panic!("{other}"),
        }
        let text = err.to_string();
        assert!(text.contains(&format!("version {version}")), "{text}");
        assert!(
            text.contains(&format!("version {FORMAT_VERSION}")),
            "{text}"
        );
        assert!(text.contains(FILE_NAME), "{text}");
        assert!(err.is_version());
        // Refusing left the file in its version.
        let db = redb::Database::open(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn
            .open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap();
        assert_eq!(
            meta.get("format_version").unwrap().unwrap().value(),
            version
        );
    }
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = TempDir::new("foreign");
    std::fs::write(
        dir.path().join(FILE_NAME),
        b"hello, I am a text file\n".repeat(1000),
    )
    .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.is_corrupt(), "{err}");

    // A redb database of another program.
    let dir = TempDir::new("foreign-redb");
    {
        let db = redb::Database::create(dir.path().join(FILE_NAME)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<u64, u64>::new("theirs"))
            .unwrap()
            .insert(1, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert!(err.is_corrupt(), "{err}");
}

#[tokio::test]
async fn a_damaged_file_gives_a_typed_error_never_a_panic() {
    let dir = TempDir::new("damaged");
    {
        let store = Store::open(dir.path()).unwrap();
        for c in 0..20u64 {
            let mut batch = Batch::new();
            for i in 0..200 {
                batch.push_event(&event(c * 200 + i, SystemTime::now()));
            }
            store.commit(batch).await.unwrap();
        }
    }
    let file = dir.path().join(FILE_NAME);
    let good = std::fs::read(&file).unwrap();
    let mut failures = 0;
    // Damage the file at many places, one at a time: each open fails with a typed error or
    // (damage in unused space) succeeds; none panics.
    for at in (0..good.len()).step_by(good.len() / 40) {
        let mut bad = good.clone();
        for b in &mut bad[at..(at + 64).min(good.len())] {
            *b ^= 0x5a;
        }
        std::fs::write(&file, &bad).unwrap();
        match Store::open(dir.path()) {
            Ok(store) => {
                let _ = store.restore_history(&RestoreLimits::new());
            }
            Err(e) => {
                failures += 1;
                assert!(
                    e.is_corrupt() || matches!(e, Error::Database { .. } | Error::Io { .. }),
                    "{e}"
                );
            }
        }
    }
    assert!(failures > 0);
    // Truncated.
    std::fs::write(&file, &good[..good.len() / 3]).unwrap();
    assert!(Store::open(dir.path()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_producers_wait_and_loses_nothing() {
    let dir = TempDir::new("queue");
    let store = Arc::new(Store::open_with(dir.path(), StoreOptions::new().queue(1)).unwrap());
    let mut tasks = Vec::new();
    for t in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut commits = Vec::new();
            for i in 0..25 {
                let mut batch = store.batch();
                batch.push_event(&event(t * 100 + i, SystemTime::now()));
                // With room for one batch, most of these wait for the writer.
                commits.push(store.submit(batch).await.unwrap());
            }
            for commit in commits {
                commit.await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.batches, 200);
    assert_eq!(stats.history_records, 200);
    let history = store
        .restore_history(&RestoreLimits::new().events(1_000))
        .unwrap();
    assert_eq!(history.events.len(), 200);
}
