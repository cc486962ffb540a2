//! App-owned meta values: committed with their batch and the history position where its
//! records begin, read back after a reopen, bounded in size, and safe on a crafted file.

use std::time::SystemTime;

use redb::TableDefinition;
use serde_json::json;
use wot_events::PropertyUpdate;
use wot_store::{
    Batch, HistoryRecord, MAX_META_KEY_BYTES, MAX_META_VALUE_BYTES, Store, StoreOptions,
};

mod common;
use common::{TempDir, event};

const APP_META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("app_meta");
const INDEX: TableDefinition<'_, u64, (u32, u32, u64, u64)> = TableDefinition::new("history_index");

fn level(i: u64) -> PropertyUpdate {
    PropertyUpdate {
        thing_id: "urn:dev:tank".into(),
        property: "level".into(),
        value: json!(i).into(),
        timestamp: SystemTime::now(),
        event_id: Some(i.to_string().into()),
        schema_violation: None,
    }
}

/// Events and `level` values numbered `from..from + n`, interleaved.
fn records(from: u64, n: u64) -> Batch {
    let mut batch = Batch::new();
    for i in from..from + n {
        batch.push_event(&event(i, SystemTime::now()));
        batch.push_property(&level(i));
    }
    batch
}

/// The ids of the records from `meta`'s position on: (events, property values), each in order.
fn ids_since(store: &Store, key: &str) -> (Vec<u64>, Vec<u64>) {
    let meta = store.meta(key).unwrap().expect("the meta value");
    let (mut events, mut values) = (Vec::new(), Vec::new());
    let skipped = store
        .history_since(meta.history, |record| match record {
            HistoryRecord::Event(e) => events.push(e.event_id.unwrap().parse().unwrap()),
            HistoryRecord::Property(u) => values.push(u.event_id.unwrap().parse().unwrap()),
            other => panic!("{other:?}"),
        })
        .unwrap();
    assert_eq!(skipped, 0);
    (events, values)
}

#[test]
fn a_meta_value_comes_back_with_where_its_batch_records_begin() {
    let dir = TempDir::new("meta-roundtrip");
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.meta("output").unwrap(), None);
    store
        .submit_blocking(records(0, 5))
        .unwrap()
        .wait()
        .unwrap();
    let mut batch = records(5, 3);
    batch.set_meta("output", b"length 120").unwrap();
    store.submit_blocking(batch).unwrap().wait().unwrap();
    store.close().unwrap();

    let store = Store::open(dir.path()).unwrap();
    let meta = store.meta("output").unwrap().expect("kept");
    assert_eq!(meta.value, b"length 120");
    // Exactly that batch's records, each series in order.
    assert_eq!(ids_since(&store, "output"), (vec![5, 6, 7], vec![5, 6, 7]));

    // A later batch without a meta value: its records follow; the value stays.
    store
        .submit_blocking(records(8, 2))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(store.meta("output").unwrap().unwrap(), meta);
    assert_eq!(
        ids_since(&store, "output"),
        (vec![5, 6, 7, 8, 9], vec![5, 6, 7, 8, 9])
    );

    // A batch with a meta value and no record: nothing from its position on.
    let mut batch = Batch::new();
    batch.set_meta("output", b"length 300").unwrap();
    store.submit_blocking(batch).unwrap().wait().unwrap();
    assert_eq!(ids_since(&store, "output"), (vec![], vec![]));

    let mut batch = Batch::new();
    batch.remove_meta("output").unwrap();
    store.submit_blocking(batch).unwrap().wait().unwrap();
    assert_eq!(store.meta("output").unwrap(), None);
}

/// Batches queued together go into one transaction (group commit), whose blocks would
/// otherwise mix their records: the position still starts at the batch that set the value.
#[test]
fn in_a_group_commit_the_position_starts_at_the_batch_that_set_it() {
    let dir = TempDir::new("meta-group");
    let store = Store::open(dir.path()).unwrap();
    for round in 0..20u64 {
        let base = round * 100;
        // The writer takes the first batch alone; the three after it wait and go together.
        let mut commits = vec![store.submit_blocking(records(base + 50, 1)).unwrap()];
        commits.push(store.submit_blocking(records(base, 4)).unwrap());
        let mut marked = records(base + 4, 3);
        marked.set_meta("m", &round.to_le_bytes()).unwrap();
        commits.push(store.submit_blocking(marked).unwrap());
        commits.push(store.submit_blocking(records(base + 7, 2)).unwrap());
        for commit in commits {
            commit.wait().unwrap();
        }
        let want: Vec<u64> = (base + 4..base + 9).collect();
        assert_eq!(
            ids_since(&store, "m"),
            (want.clone(), want),
            "round {round}"
        );
    }
    let stats = store.stats();
    assert!(
        stats.batches > stats.commits,
        "no group commit happened: {stats:?}"
    );
}

#[test]
fn keys_and_values_over_their_limits_are_refused_and_leave_the_batch_unchanged() {
    let mut batch = records(0, 1);
    let before = batch.len();
    let long_key = "k".repeat(MAX_META_KEY_BYTES + 1);
    let error = batch.set_meta(&long_key, b"v").unwrap_err();
    assert!(
        matches!(&error, wot_store::Error::MetaTooLarge { what: "key", bytes, max, .. }
            if *bytes == MAX_META_KEY_BYTES + 1 && *max == MAX_META_KEY_BYTES),
        "{error}"
    );
    assert!(batch.remove_meta(&long_key).is_err());
    let error = batch
        .set_meta("output", &vec![0; MAX_META_VALUE_BYTES + 1])
        .unwrap_err();
    assert!(error.to_string().contains("\"output\""), "{error}");
    assert!(error.to_string().contains("value"), "{error}");
    assert_eq!(batch.len(), before);
    batch
        .set_meta(
            &"k".repeat(MAX_META_KEY_BYTES),
            &vec![7; MAX_META_VALUE_BYTES],
        )
        .expect("at the limits");
    let dir = TempDir::new("meta-limits");
    let store = Store::open(dir.path()).unwrap();
    store.submit_blocking(batch).unwrap().wait().unwrap();
    let meta = store
        .meta(&"k".repeat(MAX_META_KEY_BYTES))
        .unwrap()
        .unwrap();
    assert_eq!(meta.value.len(), MAX_META_VALUE_BYTES);
    assert_eq!(store.meta(&long_key).unwrap(), None);
}

/// Writes `stored` as the raw row of `key` in the closed store's file.
fn craft_meta(dir: &TempDir, key: &str, stored: &[u8]) {
    let db = redb::Database::open(dir.file()).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(APP_META)
        .unwrap()
        .insert(key, stored)
        .unwrap();
    txn.commit().unwrap();
}

#[test]
fn a_crafted_meta_value_is_a_corrupt_error_naming_the_key_and_a_crafted_position_reads_what_exists()
{
    let dir = TempDir::new("meta-hostile");
    let store = Store::open(dir.path()).unwrap();
    store
        .submit_blocking(records(0, 4))
        .unwrap()
        .wait()
        .unwrap();
    store.close().unwrap();

    // Larger than any value the store writes: refused before it is copied.
    craft_meta(&dir, "big", &vec![1; 8 + MAX_META_VALUE_BYTES + 1]);
    // Shorter than the position every stored value begins with.
    craft_meta(&dir, "short", &[1, 2, 3]);
    // A position past the end of the history, and one before its start.
    let mut far = u64::MAX.to_le_bytes().to_vec();
    far.extend_from_slice(b"x");
    craft_meta(&dir, "far", &far);
    craft_meta(&dir, "start", &0u64.to_le_bytes());

    let store = Store::open_with(dir.path(), StoreOptions::new()).unwrap();
    for key in ["big", "short"] {
        let error = store.meta(key).unwrap_err();
        assert!(error.is_corrupt(), "{error}");
        let text = error.to_string();
        assert!(
            text.contains(&format!("{key:?}")) && text.contains(wot_store::FILE_NAME),
            "{text}"
        );
    }
    assert_eq!(ids_since(&store, "far"), (vec![], vec![]));
    assert_eq!(
        ids_since(&store, "start"),
        (vec![0, 1, 2, 3], vec![0, 1, 2, 3])
    );
    store.close().unwrap();

    // An index row whose block is missing is skipped and counted, not a panic.
    {
        let db = redb::Database::open(dir.file()).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(INDEX)
            .unwrap()
            .insert(1_000_000, (0, 5, 100, 0))
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let start = store.meta("start").unwrap().unwrap();
    let mut n = 0;
    let skipped = store.history_since(start.history, |_| n += 1).unwrap();
    assert_eq!((n, skipped), (8, 1));
}
