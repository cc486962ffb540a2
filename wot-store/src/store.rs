//! The store: opening, the writer thread and its group commits.
//!
//! ```text
//! callers ──submit(Batch)──▶ bounded queue ──▶ writer thread
//!                                               │ take the first batch, then every batch waiting
//!                                               │ one transaction: ops, history blocks, pruning
//!                                               │ commit (Durability::Immediate: fsync)
//!   Commit futures ◀── resolved (Ok or the shared error) ──┘
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::SystemTime;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::batch::{Batch, Op, Table};
use crate::codec;
use crate::options::{Clock, StoreOptions};

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Name of the database file inside the store's directory.
pub const FILE_NAME: &str = "wot-store.redb";

pub(crate) const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
pub(crate) const RESUME: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("resume");
pub(crate) const ALERTS: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("alerts");
pub(crate) const SILENCES: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("silences");
pub(crate) const OUTBOX: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("outbox");
pub(crate) const ALERT_META: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("alert_meta");
/// Series key (`e`, or `p` len(thing) thing property: see `batch::property_series`) →
/// (series id, blocks).
pub(crate) const SERIES: TableDefinition<'_, &[u8], (u32, u64)> = TableDefinition::new("series");
/// (series id, block sequence number) → block.
pub(crate) const BLOCKS: TableDefinition<'_, (u32, u64), &[u8]> =
    TableDefinition::new("history_blocks");
/// Block sequence number → (series id, records, bytes, newest record in ms): the global
/// order that pruning follows.
pub(crate) const INDEX: TableDefinition<'_, u64, (u32, u32, u64, u64)> =
    TableDefinition::new("history_index");

const K_VERSION: &str = "format_version";
const K_RECORDS: &str = "history_records";
const K_BYTES: &str = "history_bytes";
const K_NEXT_BLOCK: &str = "next_block";
const K_NEXT_SERIES: &str = "next_series";

/// Most bytes of a block, unless one record alone is larger: pruning (whole blocks) stays
/// fine-grained, and a block with its key fits the engine's 64 KiB allocation class.
const BLOCK_MAX: usize = 60 << 10;
/// Most blocks pruned by age in one commit (pruning by count and size is not capped: a
/// commit removes about what it adds).
const PRUNE_OLD_PER_COMMIT: usize = 64;
/// A group commit stops taking batches past this many operations (a batch is never split).
const MAX_GROUP_OPS: usize = 1 << 16;
/// Committed batches kept, emptied, for [`Store::batch`] to hand out again.
const SPARE_BATCHES: usize = 4;
/// A committed batch whose buffers are larger than this is freed, not kept.
const SPARE_BATCH_BYTES: usize = 8 << 20;

/// Emptied batches whose buffers are reused: a producer that commits every tick then neither
/// allocates (and faults in) fresh buffers nor frees them on the writer's thread.
type Spares = Arc<Mutex<Vec<Batch>>>;

/// Counters of a store since it was opened (history totals: as stored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Transactions committed (each holds one or more batches).
    pub commits: u64,
    /// Batches committed.
    pub batches: u64,
    /// Transactions that failed (their batches got the error).
    pub failed_commits: u64,
    /// History records dropped because their encoding was over
    /// [`StoreOptions::max_record_bytes`].
    pub dropped_records: u64,
    /// History records removed by the time, count or size window.
    pub pruned_records: u64,
    /// History records stored now.
    pub history_records: u64,
    /// Bytes of encoded history records stored now.
    pub history_bytes: u64,
}

/// The resolution of one submitted batch: `Ok` once it is durable (the transaction holding it
/// was committed with an fsync), or the error that failed that transaction.
///
/// Dropping it does not cancel the batch.
#[derive(Debug)]
#[must_use = "a Commit resolves when the batch is durable; drop it to not wait"]
pub struct Commit {
    rx: oneshot::Receiver<Result<(), Error>>,
}

impl Future for Commit {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Error::Closed)))
    }
}

impl Commit {
    /// Waits for the batch on this thread.
    ///
    /// # Panics
    ///
    /// When called inside an asynchronous execution context (a tokio task): `.await` it there.
    pub fn wait(self) -> Result<(), Error> {
        self.rx.blocking_recv().unwrap_or(Err(Error::Closed))
    }
}

struct Pending {
    batch: Batch,
    done: oneshot::Sender<Result<(), Error>>,
}

pub(crate) struct Inner {
    /// `None` once the store is closed: handles made from it then fail with
    /// [`Error::Closed`] and hold the file no longer.
    db: Mutex<Option<Arc<Database>>>,
    pub(crate) path: PathBuf,
    pub(crate) options: StoreOptions,
    tx: Mutex<Option<mpsc::Sender<Pending>>>,
    stats: Arc<Mutex<Stats>>,
    spares: Spares,
}

impl Inner {
    fn sender(&self) -> Result<mpsc::Sender<Pending>, Error> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::Closed)
    }

    pub(crate) async fn submit(&self, batch: Batch) -> Result<Commit, Error> {
        let (done, rx) = oneshot::channel();
        self.sender()?
            .send(Pending { batch, done })
            .await
            .map_err(|_| Error::Closed)?;
        Ok(Commit { rx })
    }

    /// A read transaction on the last committed state.
    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction, Error> {
        let db = self
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(Error::Closed)?;
        db.begin_read().map_err(|e| self.db_error(e))
    }

    pub(crate) fn db_error(&self, e: impl Into<redb::Error>) -> Error {
        Error::database(&self.path, e)
    }

    pub(crate) fn now(&self) -> SystemTime {
        (self.options.clock)()
    }
}

/// An embedded store in one directory: resume points, alert state and a bounded history, in
/// one redb database file ([`FILE_NAME`]).
///
/// One writer thread owns the writes. Callers hand it [`Batch`]es; it puts every batch waiting
/// when it starts a transaction into that one transaction (group commit) and commits it with
/// an fsync, so the disk is synced once per group, not once per event. Each batch is in the
/// file entirely or not at all; its [`Commit`] resolves once it is durable. A power cut loses
/// only batches whose `Commit` had not resolved.
///
/// Reads ([`restore_history`](Self::restore_history), [`resume_points`](Self::resume_points))
/// run on the caller's thread and see the last committed state.
///
/// Dropping the store (or [`close`](Self::close)) lets the writer commit the batches already
/// queued, then joins its thread; batches submitted later fail with [`Error::Closed`].
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir` (created if missing) with the default settings.
    ///
    /// # Errors
    ///
    /// [`Error::Version`] when the file is in another format version (nothing is read or
    /// changed); [`Error::Corrupt`] when it is damaged or not a store; [`Error::Locked`] when
    /// another process has it open; [`Error::Io`] when the directory cannot be made or read.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, Error> {
        Self::open_with(dir, StoreOptions::new())
    }

    /// Opens the store in `dir` with `options`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open), and [`Error::Setting`] for a setting out of range.
    pub fn open_with(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store, Error> {
        options.check()?;
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.to_owned(),
            source: Arc::new(e),
        })?;
        let path = dir.join(FILE_NAME);
        let existed = std::fs::metadata(&path)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        let mut builder = Database::builder();
        // The cache holds pages read; the history is written once and read at restore.
        builder.set_cache_size(64 << 20);
        builder.set_check_integrity_on_open(options.verify_on_open && existed);
        // The engine trusts a file that was closed cleanly and may panic on one damaged
        // outside it; a panic here is a damaged file, never a crash of the app.
        let opened = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if existed {
                builder.open(&path)
            } else {
                builder.create(&path)
            }
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => return Err(Error::database(&path, e)),
            Err(_) => {
                return Err(Error::Corrupt {
                    path,
                    detail: "the database engine could not read the file".into(),
                });
            }
        };
        let state = std::panic::catch_unwind(AssertUnwindSafe(|| prepare(&db, &path)))
            .unwrap_or_else(|_| {
                Err(Error::Corrupt {
                    path: path.clone(),
                    detail: "the database engine could not read the file".into(),
                })
            })?;
        let db = Arc::new(db);
        let stats = Arc::new(Mutex::new(Stats {
            history_records: state.records,
            history_bytes: state.bytes,
            ..Stats::default()
        }));
        let (tx, rx) = mpsc::channel(options.queue);
        let spares = Spares::default();
        let writer = Writer {
            spares: spares.clone(),
            db: db.clone(),
            path: path.clone(),
            state,
            stats: stats.clone(),
            history_age: options.history_age,
            history_records: options.history_records,
            history_bytes: options.history_bytes,
            max_record_bytes: options.max_record_bytes,
            clock: options.clock.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("wot-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::Io {
                path: path.clone(),
                source: Arc::new(e),
            })?;
        tracing::debug!(path = %path.display(), "store opened");
        Ok(Store {
            inner: Arc::new(Inner {
                db: Mutex::new(Some(db)),
                path,
                options,
                tx: Mutex::new(Some(tx)),
                stats,
                spares,
            }),
            thread: Some(thread),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Queues `batch` for the writer and returns its [`Commit`], which resolves when the batch
    /// is durable. Waits while [`StoreOptions::queue`] batches are already waiting
    /// (backpressure); it does not wait for the disk.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close).
    pub async fn submit(&self, batch: Batch) -> Result<Commit, Error> {
        self.inner.submit(batch).await
    }

    /// Queues `batch` and waits until it is durable: [`submit`](Self::submit) then the
    /// [`Commit`].
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close); the commit's error when the transaction
    /// holding the batch failed (the batch was not written).
    pub async fn commit(&self, batch: Batch) -> Result<(), Error> {
        self.submit(batch).await?.await
    }

    /// [`submit`](Self::submit) for code outside an async runtime: blocks while the queue is
    /// full.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close).
    ///
    /// # Panics
    ///
    /// When called inside an asynchronous execution context (a tokio task).
    pub fn submit_blocking(&self, batch: Batch) -> Result<Commit, Error> {
        let (done, rx) = oneshot::channel();
        self.inner
            .sender()?
            .blocking_send(Pending { batch, done })
            .map_err(|_| Error::Closed)?;
        Ok(Commit { rx })
    }

    /// An empty batch, reusing the buffers of one already committed when there is one: for a
    /// producer that commits regularly, cheaper than [`Batch::new`].
    pub fn batch(&self) -> Batch {
        self.inner
            .spares
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    /// The counters since the store was opened.
    pub fn stats(&self) -> Stats {
        self.inner
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Commits what is queued, stops the writer thread and closes the file.
    ///
    /// # Errors
    ///
    /// The error of the last commit when it failed (the batches queued before were answered
    /// with it too).
    pub fn close(mut self) -> Result<(), Error> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), Error> {
        // Without its sender the queue closes once the writer has taken every batch in it.
        // Handles made from the store (a resume store, an alert store) hold no sender, so
        // they cannot keep the thread alive.
        let last = self
            .inner
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let flushed = last.map(|tx| {
            let (done, rx) = oneshot::channel();
            // A final empty batch tells whether the last group committed.
            let queued = tx.try_send(Pending {
                batch: Batch::new(),
                done,
            });
            (queued.is_ok(), rx)
        });
        let joined = match self.thread.take() {
            Some(thread) => thread.join().is_ok(),
            None => true,
        };
        // The writer's handle on the database is gone with its thread; this is the last.
        self.inner
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if !joined {
            return Err(Error::Closed);
        }
        match flushed {
            Some((true, mut rx)) => rx.try_recv().unwrap_or(Err(Error::Closed)),
            _ => Ok(()),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.thread.is_some()
            && let Err(e) = self.shut_down()
        {
            tracing::warn!(path = %self.inner.path.display(), error = %e, "store closed with an error");
        }
    }
}

/// The writer's view of the history, loaded at open and kept in step with each commit.
#[derive(Debug, Clone, Default)]
struct State {
    records: u64,
    bytes: u64,
    next_block: u64,
    next_series: u32,
    /// Series key → (id, blocks).
    series: HashMap<Vec<u8>, (u32, u64)>,
    /// Series id → key.
    names: HashMap<u32, Vec<u8>>,
}

/// Checks the format version (writing it into a new file) and loads the writer's state.
fn prepare(db: &Database, path: &Path) -> Result<State, Error> {
    let err = |e: redb::Error| Error::database(path, e);
    // The version is read before anything is written: a file in another version is left as
    // it is.
    let version = {
        let txn = db.begin_read().map_err(|e| err(e.into()))?;
        match txn.open_table(META) {
            Ok(meta) => meta
                .get(K_VERSION)
                .map_err(|e| err(e.into()))?
                .map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(err(e.into())),
        }
    };
    let txn = db.begin_write().map_err(|e| err(e.into()))?;
    match version {
        Some(FORMAT_VERSION) => {}
        Some(found) => {
            return Err(Error::Version {
                path: path.to_owned(),
                found,
                supported: FORMAT_VERSION,
            });
        }
        None => {
            // A database without a version is new only when it holds nothing else.
            let others = txn
                .list_tables()
                .map_err(|e| err(e.into()))?
                .filter(|t| redb::TableHandle::name(t) != "meta")
                .count();
            if others > 0 {
                return Err(Error::Corrupt {
                    path: path.to_owned(),
                    detail: "a database without a wot-store format version".into(),
                });
            }
            let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
            meta.insert(K_VERSION, FORMAT_VERSION)
                .map_err(|e| err(e.into()))?;
        }
    }
    // Every table exists from here on, so readers never meet a missing one.
    for table in [RESUME, ALERTS, SILENCES, OUTBOX, ALERT_META] {
        txn.open_table(table).map_err(|e| err(e.into()))?;
    }
    txn.open_table(BLOCKS).map_err(|e| err(e.into()))?;
    txn.open_table(INDEX).map_err(|e| err(e.into()))?;
    let mut state = State::default();
    {
        let meta = txn.open_table(META).map_err(|e| err(e.into()))?;
        let get = |k: &str| -> Result<u64, Error> {
            Ok(meta
                .get(k)
                .map_err(|e| err(e.into()))?
                .map(|v| v.value())
                .unwrap_or(0))
        };
        state.records = get(K_RECORDS)?;
        state.bytes = get(K_BYTES)?;
        state.next_block = get(K_NEXT_BLOCK)?;
        state.next_series = u32::try_from(get(K_NEXT_SERIES)?).map_err(|_| Error::Corrupt {
            path: path.to_owned(),
            detail: "the next series id is out of range".into(),
        })?;
        let series = txn.open_table(SERIES).map_err(|e| err(e.into()))?;
        for row in series.iter().map_err(|e| err(e.into()))? {
            let (k, v) = row.map_err(|e| err(e.into()))?;
            let (id, blocks) = v.value();
            state.names.insert(id, k.value().to_vec());
            state.series.insert(k.value().to_vec(), (id, blocks));
        }
    }
    txn.commit().map_err(|e| err(e.into()))?;
    Ok(state)
}

/// A block being filled.
struct OpenBlock {
    series: Vec<u8>,
    bytes: Vec<u8>,
    count: u32,
    first_ms: u64,
    last_ms: u64,
}

struct Writer {
    spares: Spares,
    db: Arc<Database>,
    path: PathBuf,
    state: State,
    stats: Arc<Mutex<Stats>>,
    history_age: std::time::Duration,
    history_records: u64,
    history_bytes: u64,
    max_record_bytes: u64,
    clock: Clock,
}

/// What one transaction did, applied to the stats after its commit.
#[derive(Default)]
struct Outcome {
    dropped: u64,
    pruned: u64,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Pending>) {
        while let Some(first) = rx.blocking_recv() {
            let mut ops = first.batch.len();
            let mut group = vec![first];
            while ops < MAX_GROUP_OPS {
                match rx.try_recv() {
                    Ok(next) => {
                        ops += next.batch.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            let before = self.state.clone();
            let result = self.write(&group);
            let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
            match &result {
                Ok(outcome) => {
                    stats.commits += 1;
                    stats.batches += group.len() as u64;
                    stats.dropped_records += outcome.dropped;
                    stats.pruned_records += outcome.pruned;
                    stats.history_records = self.state.records;
                    stats.history_bytes = self.state.bytes;
                }
                Err(e) => {
                    stats.failed_commits += 1;
                    self.state = before;
                    tracing::error!(path = %self.path.display(), error = %e, batches = group.len(), "store commit failed");
                }
            }
            drop(stats);
            let result = result.map(|_| ());
            let mut keep = Vec::new();
            for pending in group {
                let _ = pending.done.send(result.clone());
                let mut batch = pending.batch;
                if batch.capacity_bytes() <= SPARE_BATCH_BYTES && keep.len() < SPARE_BATCHES {
                    batch.reset();
                    keep.push(batch);
                }
            }
            if !keep.is_empty() {
                let mut spares = self.spares.lock().unwrap_or_else(PoisonError::into_inner);
                while spares.len() < SPARE_BATCHES
                    && let Some(batch) = keep.pop()
                {
                    spares.push(batch);
                }
            }
        }
        tracing::debug!(path = %self.path.display(), "store writer stopped");
    }

    fn err(&self, e: impl Into<redb::Error>) -> Error {
        Error::database(&self.path, e)
    }

    /// One transaction for the whole group.
    fn write(&mut self, group: &[Pending]) -> Result<Outcome, Error> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate).map_err(|e| {
            self.err(redb::Error::from(redb::StorageError::Corrupted(
                e.to_string(),
            )))
        })?;
        let outcome = self.fill(&txn, group)?;
        txn.commit().map_err(|e| self.err(e))?;
        Ok(outcome)
    }

    fn fill(&mut self, txn: &WriteTransaction, group: &[Pending]) -> Result<Outcome, Error> {
        let mut outcome = Outcome::default();
        let mut open: Vec<OpenBlock> = Vec::new();
        // Each table is opened once per transaction.
        let mut keyed: [Option<KeyedTable<'_>>; 5] = Default::default();
        let mut history = HistoryTables {
            series: txn.open_table(SERIES).map_err(|e| self.err(e))?,
            blocks: txn.open_table(BLOCKS).map_err(|e| self.err(e))?,
            index: txn.open_table(INDEX).map_err(|e| self.err(e))?,
        };
        let mut open_index: HashMap<&[u8], usize> = HashMap::new();
        for pending in group {
            let batch = &pending.batch;
            for op in &batch.ops {
                let table = match op {
                    Op::Put { table, .. } | Op::Delete { table, .. } | Op::Clear(table) => *table,
                };
                let slot = &mut keyed[table as usize];
                let t = match slot {
                    Some(t) => t,
                    None => slot.insert(txn.open_table(def(table)).map_err(|e| self.err(e))?),
                };
                match op {
                    Op::Put { key, value, .. } => {
                        t.insert(key.as_slice(), value.as_slice())
                            .map_err(|e| self.err(e))?;
                    }
                    Op::Delete { key, .. } => {
                        t.remove(key.as_slice()).map_err(|e| self.err(e))?;
                    }
                    Op::Clear(_) => {
                        t.retain(|_, _| false).map_err(|e| self.err(e))?;
                    }
                }
            }
            outcome.dropped += batch.unencodable;
            // This batch's series → the group's open block of that series.
            let mut slots: Vec<Option<usize>> = vec![None; batch.series.len()];
            let mut start = 0;
            for r in &batch.records {
                let body = &batch.history[start..r.end];
                start = r.end;
                if body.len() as u64 > self.max_record_bytes {
                    outcome.dropped += 1;
                    tracing::warn!(
                        bytes = body.len(),
                        limit = self.max_record_bytes,
                        "history record over the size limit dropped"
                    );
                    continue;
                }
                let series = r.series as usize;
                let i = match slots[series] {
                    Some(i) => i,
                    None => {
                        let key = batch.series[series].as_slice();
                        let i = *open_index.entry(key).or_insert_with(|| {
                            open.push(new_block(key.to_vec()));
                            open.len() - 1
                        });
                        slots[series] = Some(i);
                        i
                    }
                };
                if open[i].count > 0 && open[i].bytes.len() + 4 + body.len() > BLOCK_MAX {
                    let key = open[i].series.clone();
                    let full = std::mem::replace(&mut open[i], new_block(key));
                    self.store_block(&mut history, full)?;
                }
                let block = &mut open[i];
                block
                    .bytes
                    .extend_from_slice(&(body.len() as u32).to_le_bytes());
                block.bytes.extend_from_slice(body);
                if block.count == 0 {
                    block.first_ms = r.at_ms;
                    block.last_ms = r.at_ms;
                } else {
                    block.first_ms = block.first_ms.min(r.at_ms);
                    block.last_ms = block.last_ms.max(r.at_ms);
                }
                block.count += 1;
            }
        }
        for block in open {
            if block.count > 0 {
                self.store_block(&mut history, block)?;
            }
        }
        outcome.pruned = self.prune(&mut history)?;
        drop(history);
        drop(keyed);
        let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
        for (k, v) in [
            (K_RECORDS, self.state.records),
            (K_BYTES, self.state.bytes),
            (K_NEXT_BLOCK, self.state.next_block),
            (K_NEXT_SERIES, u64::from(self.state.next_series)),
        ] {
            meta.insert(k, v).map_err(|e| self.err(e))?;
        }
        Ok(outcome)
    }

    fn store_block(
        &mut self,
        tables: &mut HistoryTables<'_>,
        mut block: OpenBlock,
    ) -> Result<(), Error> {
        codec::write_header(&mut block.bytes, block.count, block.first_ms, block.last_ms);
        let id = match self.state.series.get_mut(&block.series) {
            Some((id, blocks)) => {
                *blocks += 1;
                *id
            }
            None => {
                let id = self.state.next_series;
                self.state.next_series = id.checked_add(1).ok_or_else(|| Error::Corrupt {
                    path: self.path.clone(),
                    detail: "out of series ids".into(),
                })?;
                self.state.series.insert(block.series.clone(), (id, 1));
                self.state.names.insert(id, block.series.clone());
                id
            }
        };
        let blocks = self.state.series[&block.series].1;
        let seq = self.state.next_block;
        self.state.next_block += 1;
        let stored = (block.bytes.len() - codec::BLOCK_HEADER) as u64;
        let e = |e: redb::StorageError| Error::database(&self.path, e);
        tables
            .series
            .insert(block.series.as_slice(), (id, blocks))
            .map_err(e)?;
        tables
            .blocks
            .insert((id, seq), block.bytes.as_slice())
            .map_err(e)?;
        tables
            .index
            .insert(seq, (id, block.count, stored, block.last_ms))
            .map_err(e)?;
        self.state.records += u64::from(block.count);
        self.state.bytes += stored;
        Ok(())
    }

    /// Removes the oldest blocks while the history is over its count or size window (as many
    /// as needed), and up to [`PRUNE_OLD_PER_COMMIT`] blocks older than its time window.
    fn prune(&mut self, tables: &mut HistoryTables<'_>) -> Result<u64, Error> {
        let cutoff = (self.clock)()
            .checked_sub(self.history_age)
            .map(codec::millis)
            .unwrap_or(0);
        let HistoryTables {
            series,
            blocks,
            index,
        } = tables;
        let mut by_age = 0;
        let mut pruned = 0;
        loop {
            let over =
                self.state.records > self.history_records || self.state.bytes > self.history_bytes;
            let Some((seq, (id, count, bytes, last_ms))) = index
                .first()
                .map_err(|e| self.err(e))?
                .map(|(k, v)| (k.value(), v.value()))
            else {
                break;
            };
            let old = last_ms < cutoff && by_age < PRUNE_OLD_PER_COMMIT;
            if !over && !old {
                break;
            }
            if !over {
                by_age += 1;
            }
            index.remove(seq).map_err(|e| self.err(e))?;
            blocks.remove((id, seq)).map_err(|e| self.err(e))?;
            if let Some(key) = self.state.names.get(&id).cloned() {
                let entry = self.state.series.get_mut(&key).map(|e| {
                    e.1 = e.1.saturating_sub(1);
                    e.1
                });
                if entry == Some(0) {
                    self.state.series.remove(&key);
                    self.state.names.remove(&id);
                    series.remove(key.as_slice()).map_err(|e| self.err(e))?;
                } else if let Some(left) = entry {
                    series
                        .insert(key.as_slice(), (id, left))
                        .map_err(|e| self.err(e))?;
                }
            }
            self.state.records = self.state.records.saturating_sub(u64::from(count));
            self.state.bytes = self.state.bytes.saturating_sub(bytes);
            pruned += u64::from(count);
        }
        Ok(pruned)
    }
}

/// A keyed table open in a write transaction.
type KeyedTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

/// The history's tables, open in a write transaction.
struct HistoryTables<'t> {
    series: redb::Table<'t, &'static [u8], (u32, u64)>,
    blocks: redb::Table<'t, (u32, u64), &'static [u8]>,
    index: redb::Table<'t, u64, (u32, u32, u64, u64)>,
}

fn new_block(series: Vec<u8>) -> OpenBlock {
    // Room for a full block at once: growing by doubling would copy it several times.
    let mut bytes = Vec::with_capacity(BLOCK_MAX);
    bytes.resize(codec::BLOCK_HEADER, 0);
    OpenBlock {
        series,
        bytes,
        count: 0,
        first_ms: 0,
        last_ms: 0,
    }
}

fn def(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    match table {
        Table::Resume => RESUME,
        Table::Alerts => ALERTS,
        Table::Silences => SILENCES,
        Table::Outbox => OUTBOX,
        Table::AlertMeta => ALERT_META,
    }
}

/// Reads every row of a keyed table.
/// Rows of a keyed table: (key, value).
pub(crate) type Rows = Vec<(Vec<u8>, Vec<u8>)>;

pub(crate) fn read_all(
    inner: &Inner,
    table: TableDefinition<'_, &[u8], &[u8]>,
) -> Result<Rows, Error> {
    let txn = inner.begin_read()?;
    let t = txn.open_table(table).map_err(|e| inner.db_error(e))?;
    let mut rows = Vec::with_capacity(t.len().map_err(|e| inner.db_error(e))? as usize);
    for row in t.iter().map_err(|e| inner.db_error(e))? {
        let (k, v) = row.map_err(|e| inner.db_error(e))?;
        rows.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(rows)
}
