//! Group 12: persistence. The two embedded engines side by side, then `wot-store` itself.
//!
//! * `engine_commit/{redb,redb-quick-repair,sqlite}/{1,100}`: one durable commit (fsync
//!   before it returns) of one small row (a transition: a resume point or an alert changing
//!   state), or of 100 history rows of 150 bytes and one resume point (a group-committed
//!   tick). redb with `Durability::Immediate` (and, in `redb-quick-repair`, the allocator state
//!   saved with each commit so that a crash needs no repair); SQLite (`rusqlite`, bundled) in
//!   WAL mode with `synchronous = FULL`, the setting under which a committed transaction
//!   survives a power cut.
//! * `engine_recovery/...`: open a database holding 100,000 alert rows of 200 bytes and
//!   1,000,000 history rows of 150 bytes, read every alert and the newest 1,000 history rows:
//!   a clean open (`redb`, `sqlite`), with every page checked (`redb-verified`, `sqlite-quick-check`),
//!   and redb after a crash (a copy of the file as a process killed after a commit leaves it).
//! * `store_commit/{transition,batch-100,64-callers}`: `wot_store::Store::commit` of one resume
//!   point; of 100 property values (100 properties) and a resume point; and 64 batches of one
//!   resume point submitted at once, until all are durable (group commit).
//! * `store_recovery/open{,-verified}-alerts-history`: `Store::open` (without and with
//!   `verify_on_open`), the alert tables loaded (100,000 firing alerts of one `*` rule, as
//!   `Engine::take_changes` gives them) and `restore_history` with the default limits, from a
//!   store holding 1,000,000 history records (one event in ten, the rest values of 90
//!   properties). One timed pass of each part is printed first.
//! * `pipeline_persistence/a-small-64KiB/persistence-{off,on}`: group 11's pipeline (parse,
//!   decode, 1,000 rules, `EventLog`); `on` also pushes each record into a `Batch`, advances the
//!   stream's resume point (`ResumePoints`), and submits the batch with the points every
//!   10,000 updates without waiting; a run ends when its last batch is durable. The store
//!   keeps its defaults (1,000,000 records, so it prunes as it goes).
//!
//! `cargo bench -p benches --bench persistence` (criterion; the databases are built in
//! `$CARGO_TARGET_DIR/persistence-bench-<pid>` or the system's temporary directory, and removed
//! at the end). `PERSISTENCE_PARTS` picks parts (`engine,store,pipeline`, the default);
//! `PERSISTENCE_ROWS` sets the history rows (default 1,000,000). With
//! `PERSISTENCE_INTERLEAVED=1` the pipeline rows run in turn instead (`SSE_ROUNDS`, default
//! 21) and the median of the per-round ratios is printed; with `PERSISTENCE_PROFILE=on` (or
//! `off`, or `setup` for neither) that row runs `PERSISTENCE_RUNS` times (default 5), untimed,
//! for a profiler.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::time::SystemTime;

use benches::{Workload, interleave, workload};
use criterion::{Criterion, SamplingMode, Throughput};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::json;
use wot_alerts::{AlertBatch, Condition, Engine, Rule};
use wot_events::{
    EventLog, EventRecord, PropertyDecoder, PropertyUpdate, ResumePoint, ResumeStore, SharedStr,
    StreamKey, Url,
};
use wot_sse::parser::{Item, Parser};
use wot_store::{Batch, DEFAULT_HISTORY_RECORDS, RestoreLimits, ResumePoints, Store, StoreOptions};

#[path = "common/fridge.rs"]
mod fridge;

use fridge::{THING, engine, fridge};

const ALERTS: usize = 100_000;
const ALERT_BYTES: usize = 200;
const RECORD_BYTES: usize = 150;
const RESTORED: usize = 1_000;

const R_ALERTS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("alerts");
const R_HISTORY: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("history");
const R_RESUME: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("resume");

fn history_rows() -> usize {
    std::env::var("PERSISTENCE_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

fn scratch_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("persistence-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut bytes =
        format!("{{\"thing\":\"urn:dev:fridge-{seed}\",\"value\":{seed}.5,\"pad\":\"").into_bytes();
    bytes.resize(len - 2, b'x');
    bytes.extend_from_slice(b"\"}");
    bytes
}

// ---------------------------------------------------------------------------------------
// redb

fn redb_open(path: &Path) -> Database {
    Database::create(path).expect("a redb database")
}

fn redb_commit(db: &Database, seq: &mut u64, rows: usize, quick_repair: bool) {
    let mut txn = db.begin_write().expect("a write transaction");
    txn.set_durability(Durability::Immediate)
        .expect("immediate durability");
    txn.set_quick_repair(quick_repair);
    {
        let record = payload(RECORD_BYTES, *seq);
        if rows > 1 {
            let mut history = txn.open_table(R_HISTORY).expect("history");
            for _ in 0..rows {
                *seq += 1;
                history.insert(*seq, record.as_slice()).expect("insert");
            }
        }
        let mut resume = txn.open_table(R_RESUME).expect("resume");
        let point = seq.to_string();
        resume
            .insert("urn:dev:fridge-1/properties", point.as_bytes())
            .expect("insert");
    }
    txn.commit().expect("commit");
}

fn redb_fill(path: &Path, rows: usize) {
    let db = redb_open(path);
    let txn = db.begin_write().expect("a write transaction");
    {
        let mut alerts = txn.open_table(R_ALERTS).expect("alerts");
        for i in 0..ALERTS as u64 {
            alerts
                .insert(i, payload(ALERT_BYTES, i).as_slice())
                .expect("insert");
        }
    }
    txn.commit().expect("commit");
    for start in (0..rows as u64).step_by(100_000) {
        let txn = db.begin_write().expect("a write transaction");
        {
            let mut history = txn.open_table(R_HISTORY).expect("history");
            for i in start..(start + 100_000).min(rows as u64) {
                history
                    .insert(i, payload(RECORD_BYTES, i).as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
}

fn redb_recover(path: &Path, verify: bool) -> usize {
    let db = Database::builder()
        .set_check_integrity_on_open(verify)
        .open(path)
        .expect("open");
    let txn = db.begin_read().expect("a read transaction");
    let alerts = txn.open_table(R_ALERTS).expect("alerts");
    let mut bytes = 0;
    for row in alerts.iter().expect("iter") {
        let (_, v) = row.expect("row");
        bytes += black_box(v.value()).len();
    }
    let history = txn.open_table(R_HISTORY).expect("history");
    for row in history.iter().expect("iter").rev().take(RESTORED) {
        let (_, v) = row.expect("row");
        bytes += black_box(v.value()).len();
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// SQLite

fn sqlite_open(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("a SQLite database");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS alerts (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS history (seq INTEGER PRIMARY KEY, v BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS resume (k TEXT PRIMARY KEY, v BLOB NOT NULL);",
    )
    .expect("tables");
    conn
}

fn sqlite_commit(conn: &mut rusqlite::Connection, seq: &mut u64, rows: usize) {
    let txn = conn.transaction().expect("a transaction");
    {
        let record = payload(RECORD_BYTES, *seq);
        if rows > 1 {
            let mut insert = txn
                .prepare_cached("INSERT INTO history (seq, v) VALUES (?1, ?2)")
                .expect("statement");
            for _ in 0..rows {
                *seq += 1;
                insert
                    .execute(rusqlite::params![*seq as i64, record])
                    .expect("insert");
            }
        }
        txn.prepare_cached("INSERT OR REPLACE INTO resume (k, v) VALUES (?1, ?2)")
            .expect("statement")
            .execute(rusqlite::params![
                "urn:dev:fridge-1/properties",
                seq.to_string().into_bytes()
            ])
            .expect("upsert");
    }
    txn.commit().expect("commit");
}

fn sqlite_fill(path: &Path, rows: usize) {
    let mut conn = sqlite_open(path);
    let txn = conn.transaction().expect("a transaction");
    {
        let mut insert = txn
            .prepare("INSERT INTO alerts (id, v) VALUES (?1, ?2)")
            .expect("statement");
        for i in 0..ALERTS as i64 {
            insert
                .execute(rusqlite::params![i, payload(ALERT_BYTES, i as u64)])
                .expect("insert");
        }
        let mut insert = txn
            .prepare("INSERT INTO history (seq, v) VALUES (?1, ?2)")
            .expect("statement");
        for i in 0..rows as i64 {
            insert
                .execute(rusqlite::params![i, payload(RECORD_BYTES, i as u64)])
                .expect("insert");
        }
    }
    txn.commit().expect("commit");
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE")
        .expect("checkpoint");
}

fn sqlite_recover(path: &Path, verify: bool) -> usize {
    let conn = sqlite_open(path);
    if verify {
        let ok: String = conn
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .expect("quick_check");
        assert_eq!(ok, "ok");
    }
    let mut bytes = 0;
    let mut alerts = conn.prepare("SELECT v FROM alerts").expect("statement");
    let mut rows = alerts.query([]).expect("query");
    while let Some(row) = rows.next().expect("row") {
        bytes += black_box(row.get_ref(0).expect("v").as_blob().expect("blob")).len();
    }
    let mut history = conn
        .prepare("SELECT v FROM history ORDER BY seq DESC LIMIT ?1")
        .expect("statement");
    let mut rows = history.query([RESTORED as i64]).expect("query");
    while let Some(row) = rows.next().expect("row") {
        bytes += black_box(row.get_ref(0).expect("v").as_blob().expect("blob")).len();
    }
    bytes
}

fn timed<F: FnMut()>(label: &str, mut f: F) {
    let start = Instant::now();
    f();
    eprintln!("{label}: {:.2?}", start.elapsed());
}

fn engines(c: &mut Criterion, dir: &Path) {
    std::fs::create_dir_all(dir).expect("a scratch directory");
    let mut group = c.benchmark_group("engine_commit");
    group.sampling_mode(SamplingMode::Flat);
    for rows in [1usize, 100] {
        let db = redb_open(&dir.join(format!("commit-{rows}.redb")));
        let mut seq = 0;
        group.bench_function(format!("redb/{rows}"), |b| {
            b.iter(|| redb_commit(&db, &mut seq, rows, false));
        });
        group.bench_function(format!("redb-quick-repair/{rows}"), |b| {
            b.iter(|| redb_commit(&db, &mut seq, rows, true));
        });
        let mut conn = sqlite_open(&dir.join(format!("commit-{rows}.sqlite")));
        let mut seq = 0;
        group.bench_function(format!("sqlite/{rows}"), |b| {
            b.iter(|| sqlite_commit(&mut conn, &mut seq, rows));
        });
    }
    group.finish();

    let rows = history_rows();
    let redb_path = dir.join("recovery.redb");
    let sqlite_path = dir.join("recovery.sqlite");
    timed(
        &format!("fill redb with {ALERTS} alerts and {rows} rows"),
        || redb_fill(&redb_path, rows),
    );
    timed(
        &format!("fill SQLite with {ALERTS} alerts and {rows} rows"),
        || sqlite_fill(&sqlite_path, rows),
    );
    for path in [&redb_path, &sqlite_path] {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        eprintln!("{}: {:.1} MiB", path.display(), len as f64 / 1048576.0);
    }
    let mut group = c.benchmark_group("engine_recovery");
    group.sampling_mode(SamplingMode::Flat);
    let expected = ALERTS * ALERT_BYTES + RESTORED * RECORD_BYTES;
    group.bench_function("redb", |b| {
        b.iter(|| assert_eq!(redb_recover(&redb_path, false), expected));
    });
    group.bench_function("sqlite", |b| {
        b.iter(|| assert_eq!(sqlite_recover(&sqlite_path, false), expected));
    });
    group.bench_function("redb-verified", |b| {
        b.iter(|| assert_eq!(redb_recover(&redb_path, true), expected));
    });
    group.bench_function("sqlite-quick-check", |b| {
        b.iter(|| assert_eq!(sqlite_recover(&sqlite_path, true), expected));
    });
    // After a crash: the file as a process killed after a commit leaves it (redb then checks
    // every page and rebuilds its allocator state). Each iteration opens a fresh copy.
    let crashed = dir.join("crashed.redb");
    {
        let db = redb_open(&redb_path);
        let mut seq = rows as u64;
        redb_commit(&db, &mut seq, 1, false);
        std::fs::copy(&redb_path, &crashed).expect("a copy");
        // Never closed: the copy above is what a kill leaves.
        std::mem::forget(db);
    }
    let copy = dir.join("crashed-copy.redb");
    group.bench_function("redb-after-crash", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                std::fs::copy(&crashed, &copy).expect("a copy");
                let start = Instant::now();
                assert_eq!(redb_recover(&copy, false), expected);
                total += start.elapsed();
            }
            total
        });
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------
// wot-store

fn t0() -> SystemTime {
    SystemTime::now() - Duration::from_secs(600)
}

fn stream_key() -> StreamKey {
    StreamKey::all_properties(
        THING,
        &Url::parse("http://192.0.2.1/fridge-1/properties").expect("a URL"),
    )
}

fn update_record(i: u64, at: SystemTime) -> PropertyUpdate {
    PropertyUpdate {
        thing_id: THING.into(),
        property: format!("p{}", i % 100).into(),
        value: json!({"value": 20.0 + (i % 50) as f64 / 10.0, "unit": "cel", "ts": "2026-12-07T21:00:00Z", "ok": true}).into(),
        timestamp: at,
        event_id: Some(i.to_string().into()),
        schema_violation: None,
    }
}

/// An alert manager's batch with `n` firing alerts (one `*` rule, `n` Things), as
/// `Engine::take_changes` gives it.
fn alerts_batch(n: usize) -> AlertBatch {
    let mut engine = Engine::new();
    let now = t0();
    engine
        .add_rule(
            Rule::new("warm", "*", "temperature", Condition::Gt(5.0)),
            now,
        )
        .expect("a rule");
    for i in 0..n {
        let _ = engine.update(
            now,
            &wot_alerts::PropertyUpdate::new(
                format!("urn:dev:fridge-{i}"),
                "temperature",
                json!(9.5),
            ),
        );
    }
    let changes = engine.take_changes();
    assert_eq!(changes.series.len(), n);
    serde_json::from_value(json!({"changes": changes, "outbox": []})).expect("a batch")
}

fn store_rows(c: &mut Criterion, rt: &tokio::runtime::Runtime, dir: &Path) {
    let mut group = c.benchmark_group("store_commit");
    group.sampling_mode(SamplingMode::Flat);
    let store = Store::open(dir.join("commit")).expect("a store");
    let points = store.resume_points().expect("points");
    let key = stream_key();
    let mut n = 0u64;
    group.bench_function("transition", |b| {
        b.iter(|| {
            n += 1;
            points.advance(&key, &n.to_string());
            let mut batch = Batch::new();
            points.add_to(&mut batch);
            rt.block_on(store.commit(batch)).expect("committed");
        });
    });
    group.bench_function("batch-100", |b| {
        b.iter(|| {
            let mut batch = Batch::with_capacity(101);
            for _ in 0..100 {
                n += 1;
                points.advance(&key, &n.to_string());
                batch.push_property(&update_record(n, SystemTime::now()));
            }
            points.add_to(&mut batch);
            rt.block_on(store.commit(batch)).expect("committed");
        });
    });
    // 64 callers, one transition each, submitted at once: how long until all are durable.
    group.throughput(Throughput::Elements(64));
    group.bench_function("64-callers", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut commits = Vec::with_capacity(64);
                for _ in 0..64 {
                    n += 1;
                    let mut batch = Batch::new();
                    batch.put_resume_point(&key, &ResumePoint::new(n.to_string()));
                    commits.push(store.submit(batch).await.expect("queued"));
                }
                for commit in commits {
                    commit.await.expect("committed");
                }
            });
        });
    });
    group.finish();
    let stats = store.stats();
    eprintln!(
        "store_commit: {} batches in {} transactions",
        stats.batches, stats.commits
    );
    drop(store);

    // Recovery: 100,000 alerts and 1,000,000 history records.
    let rows = history_rows() as u64;
    let path = dir.join("recovery");
    let start = Instant::now();
    {
        let store = Store::open(&path).expect("a store");
        let mut batch = Batch::new();
        batch
            .push_alert_batch(&alerts_batch(ALERTS))
            .expect("alerts");
        rt.block_on(store.commit(batch)).expect("committed");
        let at = SystemTime::now() - Duration::from_secs(1800);
        let mut commits = Vec::new();
        for start in (0..rows).step_by(10_000) {
            let mut batch = Batch::with_capacity(10_000);
            for i in start..(start + 10_000).min(rows) {
                if i % 10 == 0 {
                    let u = update_record(i, at);
                    batch.push_event(&EventRecord {
                        thing_id: u.thing_id,
                        thing_title: "Fridge 1".into(),
                        event: "door".into(),
                        data: u.value,
                        event_id: u.event_id,
                        received_at: at,
                    });
                } else {
                    batch.push_property(&update_record(i, at));
                }
            }
            commits.push(store.submit_blocking(batch).expect("queued"));
        }
        for commit in commits {
            commit.wait().expect("committed");
        }
        let stats = store.stats();
        assert_eq!(stats.history_records, rows.min(DEFAULT_HISTORY_RECORDS));
        eprintln!(
            "store: {ALERTS} alerts and {} history records ({:.1} MiB encoded) written in {:.2?}; file {:.1} MiB",
            stats.history_records,
            stats.history_bytes as f64 / 1048576.0,
            start.elapsed(),
            std::fs::metadata(store.path())
                .map(|m| m.len())
                .unwrap_or(0) as f64
                / 1048576.0
        );
    }
    let recover = |verify: bool| {
        let store =
            Store::open_with(&path, StoreOptions::new().verify_on_open(verify)).expect("open");
        let alerts = store.alerts().load_now().expect("alerts").expect("some");
        assert_eq!(alerts.state.series.len(), ALERTS);
        let history = store
            .restore_history(&RestoreLimits::new())
            .expect("history");
        assert_eq!(history.events.len(), 1_000);
        assert_eq!(history.properties.len(), 90);
        let points = store.resume_points().expect("points");
        black_box((alerts, history, points));
    };
    // One timed pass of each part, for the docs.
    for verify in [false, true] {
        let t = Instant::now();
        let store =
            Store::open_with(&path, StoreOptions::new().verify_on_open(verify)).expect("open");
        let opened = t.elapsed();
        let t = Instant::now();
        let alerts = store.alerts().load_now().expect("alerts").expect("some");
        let loaded = t.elapsed();
        let t = Instant::now();
        let history = store
            .restore_history(&RestoreLimits::new())
            .expect("history");
        let restored = t.elapsed();
        eprintln!(
            "store_recovery parts (verify_on_open {verify}): open {opened:.2?}, {} alerts {loaded:.2?}, {} events + {} values {restored:.2?}",
            alerts.state.series.len(),
            history.events.len(),
            history.property_values()
        );
    }
    let mut group = c.benchmark_group("store_recovery");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("open-alerts-history", |b| b.iter(|| recover(false)));
    group.bench_function("open-verified-alerts-history", |b| b.iter(|| recover(true)));
    group.finish();
}

// ---------------------------------------------------------------------------------------
// The pipeline of group 11 with persistence on and off

/// Updates per batch: the pipeline commits its history and resume point every this many
/// updates (a tick).
const TICK: usize = 10_000;

/// Group 11's pipeline, and with `store` set: each update's record also goes into the
/// history and its id advances the stream's resume point; every `TICK` updates the batch is
/// submitted (not awaited: the pipeline goes on while the writer commits), and the run ends
/// when its last batch is durable.
struct Pipeline {
    decoder: PropertyDecoder,
    title: SharedStr,
    engine: Engine,
    log: EventLog,
    clock: SystemTime,
    store: Option<(Store, ResumePoints)>,
    key: StreamKey,
}

impl Pipeline {
    fn new(store: Option<Store>) -> Self {
        let fridge = fridge();
        let t0 = t0();
        Pipeline {
            decoder: PropertyDecoder::all_properties(&fridge),
            title: SharedStr::from(fridge.title()),
            engine: engine(t0),
            log: EventLog::new(),
            clock: t0,
            store: store.map(|s| {
                let points = s.resume_points().expect("points");
                (s, points)
            }),
            key: stream_key(),
        }
    }

    fn run(&mut self, workload: &Workload) -> u64 {
        let mut parser = Parser::new();
        let mut updates = 0;
        let mut batch = match &self.store {
            Some((store, _)) => store.batch(),
            None => Batch::new(),
        };
        let mut last = None;
        for chunk in workload.chunks() {
            parser.feed(chunk);
            updates += self.drain(&mut parser, &mut batch, &mut last);
        }
        parser.end_of_body();
        updates += self.drain(&mut parser, &mut batch, &mut last);
        if let Some((store, points)) = &self.store {
            points.add_to(&mut batch);
            store
                .submit_blocking(batch)
                .expect("queued")
                .wait()
                .expect("committed");
        }
        updates
    }

    fn drain(
        &mut self,
        parser: &mut Parser,
        batch: &mut Batch,
        last: &mut Option<wot_store::Commit>,
    ) -> u64 {
        let mut updates = 0;
        while let Some(item) = parser.next_item() {
            let Ok(Item::Event(event)) = item else {
                continue;
            };
            self.clock += Duration::from_millis(1);
            let now = self.clock;
            let Some(Ok(update)) = self.decoder.decode(&event, now) else {
                continue;
            };
            updates += 1;
            if let (Some((_, points)), Some(id)) = (&self.store, &update.event_id) {
                points.advance(&self.key, id);
            }
            let for_alerts =
                wot_alerts::PropertyUpdate::new(update.thing_id, update.property, update.value);
            black_box(self.engine.update(now, &for_alerts).len());
            let record = EventRecord {
                thing_id: for_alerts.thing.into(),
                thing_title: self.title.clone(),
                event: for_alerts.property.into(),
                data: for_alerts.value,
                event_id: update.event_id,
                received_at: now,
            };
            if let Some((store, points)) = &self.store {
                batch.push_event(&record);
                if batch.len() >= TICK {
                    points.add_to(batch);
                    let full = std::mem::replace(batch, store.batch());
                    *last = Some(store.submit_blocking(full).expect("queued"));
                }
            }
            self.log.push(record);
        }
        updates
    }
}

fn pipeline_rows(c: &mut Criterion, dir: &Path) {
    let case = workload::case_a();
    let mut off = Pipeline::new(None);
    let mut on = Pipeline::new(Some(Store::open(dir.join("pipeline")).expect("a store")));
    if let Ok(row) = std::env::var("PERSISTENCE_PROFILE") {
        // Untimed runs of one row (`on`, `off`, or `setup` for none), for a profiler.
        let runs = std::env::var("PERSISTENCE_RUNS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(5);
        let pipeline = match row.as_str() {
            "on" => &mut on,
            "off" => &mut off,
            _ => return,
        };
        for _ in 0..runs {
            assert_eq!(pipeline.run(&case), case.events);
        }
        return;
    }
    if std::env::var_os("PERSISTENCE_INTERLEAVED").is_some() {
        let mut a = interleave::timed(case.events, || off.run(&case));
        let mut b = interleave::timed(case.events, || on.run(&case));
        let mut contenders: [(&str, &mut dyn FnMut() -> Duration); 2] =
            [("persistence-off", &mut a), ("persistence-on", &mut b)];
        interleave::run_and_report(
            &format!("pipeline_persistence_interleaved/{}", case.name),
            21,
            &mut contenders,
            &[("persistence-on", "persistence-off")],
        );
        return;
    }
    let mut group = c.benchmark_group(format!("pipeline_persistence/{}", case.name));
    group
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(case.events));
    group.bench_function("persistence-off", |b| {
        b.iter(|| assert_eq!(off.run(&case), case.events));
    });
    group.bench_function("persistence-on", |b| {
        b.iter(|| assert_eq!(on.run(&case), case.events));
    });
    group.finish();
    if let Some((store, _)) = &on.store {
        let stats = store.stats();
        eprintln!(
            "pipeline with persistence: {} batches in {} transactions, {} records kept, {} pruned",
            stats.batches, stats.commits, stats.history_records, stats.pruned_records
        );
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let dir = scratch_dir();
    let parts =
        std::env::var("PERSISTENCE_PARTS").unwrap_or_else(|_| "engine,store,pipeline".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    if parts.contains("engine") {
        engines(&mut c, &dir.join("engine"));
    }
    if parts.contains("store") {
        store_rows(&mut c, &rt, &dir);
    }
    if parts.contains("pipeline") {
        pipeline_rows(&mut c, &dir);
    }
    c.final_summary();
    let _ = std::fs::remove_dir_all(&dir);
}
