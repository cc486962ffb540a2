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
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::Error;
use crate::batch::{Batch, Op, Table};
use crate::codec;
use crate::meta;
use crate::options::{Clock, StoreOptions};

/// The format version this build reads and writes.
pub const FORMAT_VERSION: u64 = 2;

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
pub(crate) const BLOCK_MAX: usize = 60 << 10;
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
    path: Arc<Path>,
}

impl Future for Commit {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        Pin::new(&mut this.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(Error::closed(&this.path))))
    }
}

impl Commit {
    /// Waits for the batch on this thread.
    ///
    /// # Panics
    ///
    /// When called inside an asynchronous execution context (a tokio task): `.await` it there.
    pub fn wait(self) -> Result<(), Error> {
        let path = self.path;
        self.rx
            .blocking_recv()
            .unwrap_or_else(|_| Err(Error::closed(&path)))
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
    /// The same path, shared by every [`Commit`] (for its [`Error::Closed`]).
    shared_path: Arc<Path>,
    pub(crate) options: StoreOptions,
    /// The writer's queue. It is unbounded: [`room`](Self::room) bounds it. Batches are sent
    /// with the lock held, so no sender is ever held across an `.await` (or anywhere else):
    /// taking it out closes the queue at once, whatever producers are waiting for room.
    tx: Mutex<Option<mpsc::UnboundedSender<Pending>>>,
    /// One permit per batch that may wait in the queue; closed when the store closes, which
    /// wakes the producers waiting for room with [`Error::Closed`].
    room: Arc<Semaphore>,
    stats: Arc<Mutex<Stats>>,
    spares: Spares,
}

impl Inner {
    pub(crate) fn closed(&self) -> Error {
        Error::closed(&self.path)
    }

    /// Hands a batch to the writer once a permit of [`room`](Self::room) was taken.
    fn send(&self, batch: Batch) -> Result<Commit, Error> {
        let (done, rx) = oneshot::channel();
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        tx.as_ref()
            .ok_or_else(|| self.closed())?
            .send(Pending { batch, done })
            .map_err(|_| self.closed())?;
        Ok(Commit {
            rx,
            path: self.shared_path.clone(),
        })
    }

    pub(crate) async fn submit(&self, batch: Batch) -> Result<Commit, Error> {
        let permit = self.room.acquire().await.map_err(|_| self.closed())?;
        // The writer gives the permit back when it takes the batch from the queue.
        permit.forget();
        self.send(batch)
    }

    fn submit_blocking(&self, batch: Batch) -> Result<Commit, Error> {
        let permit = block_on(self.room.acquire()).map_err(|_| self.closed())?;
        permit.forget();
        self.send(batch)
    }

    /// A read transaction on the last committed state.
    pub(crate) fn begin_read(&self) -> Result<redb::ReadTransaction, Error> {
        let db = self
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| self.closed())?;
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
/// queued, then joins its thread; producers still waiting for room in the queue, and batches
/// submitted later, fail with [`Error::Closed`].
///
/// **Dropping blocks** the dropping thread until the queued batches are committed (an fsync
/// per group commit, milliseconds to a few hundred on a slow disk) and the writer has stopped.
/// In async code, end with [`close_async`](Self::close_async), which waits without blocking
/// the runtime's thread.
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `dir` (created if missing, mode 0700 on Unix) with the default settings.
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
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        // The state (alert summaries, Thing ids, history) is the user's only: directories
        // made here are private. An existing directory keeps its permissions.
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| Error::Io {
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
        let (tx, rx) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(options.queue));
        let spares = Spares::default();
        let writer = Writer {
            spares: spares.clone(),
            stale: false,
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
            .spawn({
                let room = room.clone();
                move || writer.run(rx, &room)
            })
            .map_err(|e| Error::Io {
                path: path.clone(),
                source: Arc::new(e),
            })?;
        tracing::debug!(path = %path.display(), "store opened");
        Ok(Store {
            inner: Arc::new(Inner {
                db: Mutex::new(Some(db)),
                shared_path: Arc::from(path.as_path()),
                path,
                options,
                tx: Mutex::new(Some(tx)),
                room,
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

    /// [`submit`](Self::submit) for code outside an async runtime: blocks the thread while
    /// the queue is full (do not call it on a runtime's thread: use `submit` there).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] after [`close`](Self::close), also when the store is closed while
    /// this waits for room.
    pub fn submit_blocking(&self, batch: Batch) -> Result<Commit, Error> {
        self.inner.submit_blocking(batch)
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

    /// Commits what is queued, stops the writer thread and closes the file. Blocks the
    /// calling thread until then (as dropping the store does); from async code use
    /// [`close_async`](Self::close_async).
    ///
    /// # Errors
    ///
    /// The error of the last group commit when it failed, whether or not a batch was queued at
    /// the close (the batches of that group were answered with it too); [`Error::Closed`] when
    /// the writer thread stopped abnormally.
    pub fn close(mut self) -> Result<(), Error> {
        self.shut_down()
    }

    /// [`close`](Self::close) for async code: the waiting for the writer (its last fsync)
    /// happens on a thread of its own, so the runtime's thread goes on running other tasks
    /// (for example the producers the close wakes with [`Error::Closed`]).
    ///
    /// # Errors
    ///
    /// As [`close`](Self::close).
    pub async fn close_async(mut self) -> Result<(), Error> {
        let path = self.inner.shared_path.clone();
        let (done, rx) = oneshot::channel();
        let closer = std::thread::Builder::new()
            .name("wot-store-close".into())
            .spawn(move || {
                let _ = done.send(self.shut_down());
            });
        if let Err(e) = closer {
            // Without a thread the store was dropped (and so closed) on this one.
            tracing::warn!(path = %path.display(), error = %e, "store closed on the caller's thread");
        }
        rx.await.unwrap_or_else(|_| Err(Error::closed(&path)))
    }

    fn shut_down(&mut self) -> Result<(), Error> {
        // Producers waiting for room give up (`Error::Closed`); taking the only sender out
        // closes the queue, so the writer stops once it has committed every batch in it.
        // Handles made from the store (a resume store, an alert store) hold no sender, so
        // they cannot keep the thread alive.
        self.inner.room.close();
        self.inner
            .tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let last = match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err(self.inner.closed())),
            None => Ok(()),
        };
        // The writer's handle on the database is gone with its thread; this is the last.
        self.inner
            .db
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        last
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
    txn.open_table(SERIES).map_err(|e| err(e.into()))?;
    txn.open_table(BLOCKS).map_err(|e| err(e.into()))?;
    txn.open_table(INDEX).map_err(|e| err(e.into()))?;
    meta::create_table(&txn).map_err(|e| err(e.into()))?;
    txn.commit().map_err(|e| err(e.into()))?;
    let txn = db.begin_read().map_err(|e| err(e.into()))?;
    load_state(&txn, path)
}

/// The writer's view of the history, derived from the index and the series table (the totals
/// kept in `meta` are written for information only, never trusted: a damaged or crafted file
/// must not make a counter overflow or a sequence number repeat).
fn load_state(txn: &redb::ReadTransaction, path: &Path) -> Result<State, Error> {
    let err = |e: redb::Error| Error::database(path, e);
    let corrupt = |detail: &str| Error::Corrupt {
        path: path.to_owned(),
        detail: detail.into(),
    };
    let mut state = State::default();
    let mut blocks_of: HashMap<u32, u64> = HashMap::new();
    let mut max_id: Option<u32> = None;
    let index = txn.open_table(INDEX).map_err(|e| err(e.into()))?;
    for row in index.iter().map_err(|e| err(e.into()))? {
        let (_, v) = row.map_err(|e| err(e.into()))?;
        let (id, count, bytes, _) = v.value();
        state.records = state
            .records
            .checked_add(u64::from(count))
            .ok_or_else(|| corrupt("the history's record counts overflow"))?;
        state.bytes = state
            .bytes
            .checked_add(bytes)
            .ok_or_else(|| corrupt("the history's byte counts overflow"))?;
        *blocks_of.entry(id).or_default() += 1;
        max_id = max_id.max(Some(id));
    }
    state.next_block = match index.last().map_err(|e| err(e.into()))? {
        Some((seq, _)) => seq
            .value()
            .checked_add(1)
            .ok_or_else(|| corrupt("no history block number is left"))?,
        None => 0,
    };
    let series = txn.open_table(SERIES).map_err(|e| err(e.into()))?;
    for row in series.iter().map_err(|e| err(e.into()))? {
        let (k, v) = row.map_err(|e| err(e.into()))?;
        let (id, _) = v.value();
        let blocks = blocks_of.get(&id).copied().unwrap_or(0);
        max_id = max_id.max(Some(id));
        state.names.insert(id, k.value().to_vec());
        state.series.insert(k.value().to_vec(), (id, blocks));
    }
    state.next_series = match max_id {
        Some(id) => id
            .checked_add(1)
            .ok_or_else(|| corrupt("no history series id is left"))?,
        None => 0,
    };
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
    /// Whether [`state`](Self::state) may hold changes of a transaction that failed.
    stale: bool,
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
    /// Commits the queued batches group by group until the queue is closed and empty.
    /// Returns the result of the last group.
    fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Pending>,
        room: &Semaphore,
    ) -> Result<(), Error> {
        let mut last = Ok(());
        while let Some(first) = rx.blocking_recv() {
            room.add_permits(1);
            let mut ops = first.batch.len();
            let mut group = vec![first];
            while ops < MAX_GROUP_OPS {
                match rx.try_recv() {
                    Ok(next) => {
                        room.add_permits(1);
                        ops += next.batch.len();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            // The engine trusts its file and may panic on damage its checksums did not
            // catch: that fails this group with a typed error, and the writer goes on.
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.write(&group)))
                .unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(Error::Corrupt {
                        path: self.path.clone(),
                        detail: format!("the database engine failed during a commit: {what}"),
                    })
                });
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
                    // What the failed transaction changed in the writer's view is read
                    // again from the file before the next one.
                    self.stale = true;
                    tracing::error!(path = %self.path.display(), error = %e, batches = group.len(), "store commit failed");
                }
            }
            drop(stats);
            let result = result.map(|_| ());
            last.clone_from(&result);
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
        last
    }

    fn err(&self, e: impl Into<redb::Error>) -> Error {
        Error::database(&self.path, e)
    }

    /// One transaction for the whole group.
    fn write(&mut self, group: &[Pending]) -> Result<Outcome, Error> {
        if self.stale {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            self.state = load_state(&txn, &self.path)?;
            self.stale = false;
        }
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
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
        let mut app_meta = None;
        for pending in group {
            let batch = &pending.batch;
            for op in &batch.ops {
                let table = match op {
                    Op::Put { table, .. } | Op::Delete { table, .. } | Op::Clear(table) => *table,
                    Op::Meta { key, value } => {
                        let t = match &mut app_meta {
                            Some(t) => t,
                            None => app_meta
                                .insert(txn.open_table(meta::APP_META).map_err(|e| self.err(e))?),
                        };
                        match value {
                            Some(value) => {
                                // The blocks of the batches before this one are stored
                                // first, so that its records begin at a block of their own:
                                // the position below is where they start.
                                for block in open.drain(..) {
                                    if block.count > 0 {
                                        self.store_block(&mut history, block)?;
                                    }
                                }
                                open_index.clear();
                                let stored = meta::encode(self.state.next_block, value);
                                t.insert(key.as_str(), stored.as_slice())
                                    .map_err(|e| self.err(e))?;
                            }
                            None => {
                                t.remove(key.as_str()).map_err(|e| self.err(e))?;
                            }
                        }
                        continue;
                    }
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
                    Op::Meta { .. } => {}
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
        drop(app_meta);
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
                *blocks = blocks.saturating_add(1);
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
        let corrupt = |detail: &str| Error::Corrupt {
            path: self.path.clone(),
            detail: detail.into(),
        };
        self.state.next_block = seq
            .checked_add(1)
            .ok_or_else(|| corrupt("no history block number is left"))?;
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
        self.state.records = self
            .state
            .records
            .checked_add(u64::from(block.count))
            .ok_or_else(|| corrupt("the history's record count overflows"))?;
        self.state.bytes = self
            .state
            .bytes
            .checked_add(stored)
            .ok_or_else(|| corrupt("the history's byte count overflows"))?;
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

/// Runs a future to its end on this thread (for the blocking API; tokio's sync primitives
/// need no runtime).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
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

/// Rows of a keyed table: (key, value).
pub(crate) type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads every row of a keyed table.
pub(crate) fn read_all(
    inner: &Inner,
    table: TableDefinition<'_, &[u8], &[u8]>,
) -> Result<Rows, Error> {
    let txn = inner.begin_read()?;
    let t = txn.open_table(table).map_err(|e| inner.db_error(e))?;
    // Not sized from the table's stored length: a damaged file must not size an allocation.
    let mut rows = Vec::new();
    for row in t.iter().map_err(|e| inner.db_error(e))? {
        let (k, v) = row.map_err(|e| inner.db_error(e))?;
        rows.push((k.value().to_vec(), v.value().to_vec()));
    }
    Ok(rows)
}
