//! The store's settings and their defaults.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::Error;

/// Default time window of the history: records older than 24 hours are pruned.
pub const DEFAULT_HISTORY_AGE: Duration = Duration::from_secs(24 * 3600);
/// Default count window of the history: at most 1,000,000 records.
pub const DEFAULT_HISTORY_RECORDS: u64 = 1_000_000;
/// Default size window of the history: at most 256 MiB of encoded records.
pub const DEFAULT_HISTORY_BYTES: u64 = 256 << 20;
/// Default limit on one encoded history record: 256 KiB. A larger record is dropped and
/// counted ([`Stats::dropped_records`](crate::Stats::dropped_records)).
pub const DEFAULT_MAX_RECORD_BYTES: u64 = 256 << 10;
/// Default number of batches that may wait for the writer before
/// [`Store::submit`](crate::Store::submit) waits for room: 64.
pub const DEFAULT_QUEUE: usize = 64;

/// Default [`StoreOptions::max_streams`]: resume points of at most 100,000 streams (as
/// `wot_events::MemoryResumeStore`).
pub const DEFAULT_MAX_STREAMS: usize = wot_events::DEFAULT_MAX_STREAMS;

/// Largest [`StoreOptions::queue`]: 1,048,576 batches.
const MAX_QUEUE: usize = 1 << 20;

/// Where the store's clock comes from (pruning by age, restore windows).
pub(crate) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Settings of a [`Store`](crate::Store), each with its default.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use wot_store::StoreOptions;
///
/// let options = StoreOptions::new()
///     .history_age(Duration::from_secs(3600))
///     .history_records(100_000);
/// # let _ = options;
/// ```
#[derive(Clone)]
#[must_use]
pub struct StoreOptions {
    pub(crate) history_age: Duration,
    pub(crate) history_records: u64,
    pub(crate) history_bytes: u64,
    pub(crate) max_record_bytes: u64,
    pub(crate) queue: usize,
    pub(crate) max_streams: usize,
    pub(crate) verify_on_open: bool,
    pub(crate) clock: Clock,
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("history_age", &self.history_age)
            .field("history_records", &self.history_records)
            .field("history_bytes", &self.history_bytes)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("queue", &self.queue)
            .field("max_streams", &self.max_streams)
            .field("verify_on_open", &self.verify_on_open)
            .finish_non_exhaustive()
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreOptions {
    /// The defaults.
    pub fn new() -> Self {
        StoreOptions {
            history_age: DEFAULT_HISTORY_AGE,
            history_records: DEFAULT_HISTORY_RECORDS,
            history_bytes: DEFAULT_HISTORY_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            queue: DEFAULT_QUEUE,
            max_streams: DEFAULT_MAX_STREAMS,
            verify_on_open: true,
            clock: Arc::new(SystemTime::now),
        }
    }

    /// How long history records are kept (default [`DEFAULT_HISTORY_AGE`], 24 h). Older ones
    /// are pruned, a few blocks per commit, and never restored.
    pub fn history_age(mut self, age: Duration) -> Self {
        self.history_age = age;
        self
    }

    /// Most history records kept (default [`DEFAULT_HISTORY_RECORDS`], 1,000,000); past it the
    /// oldest are pruned at the next commit.
    pub fn history_records(mut self, n: u64) -> Self {
        self.history_records = n;
        self
    }

    /// Most bytes of encoded history records kept (default [`DEFAULT_HISTORY_BYTES`], 256 MiB);
    /// past it the oldest are pruned at the next commit. The file is larger by the engine's
    /// overhead (pages, the other tables, free space it keeps for reuse).
    pub fn history_bytes(mut self, n: u64) -> Self {
        self.history_bytes = n;
        self
    }

    /// Largest encoded history record (default [`DEFAULT_MAX_RECORD_BYTES`], 256 KiB); a
    /// larger one is dropped, counted in [`Stats::dropped_records`](crate::Stats) and logged.
    /// At most [`history_bytes`](Self::history_bytes).
    pub fn max_record_bytes(mut self, n: u64) -> Self {
        self.max_record_bytes = n;
        self
    }

    /// Batches that may wait for the writer thread (default [`DEFAULT_QUEUE`], 64). When
    /// they are that many, [`Store::submit`](crate::Store::submit) waits for room: the
    /// producers slow down to the disk's pace instead of filling memory. From 1 to 1,048,576.
    pub fn queue(mut self, n: usize) -> Self {
        self.queue = n;
        self
    }

    /// Most streams whose resume points [`ResumePoints`](crate::ResumePoints) keeps (default
    /// [`DEFAULT_MAX_STREAMS`], 100,000). [`Store::resume_points`](crate::Store::resume_points)
    /// loads at most this many (the first in key order; the rest stay in the file unread, with
    /// a warning), and past it a new stream's advances are not kept (one warning): it starts
    /// from the server's present after a restart. Remove the points of streams no longer used
    /// with [`Batch::remove_resume_point`](crate::Batch::remove_resume_point).
    pub fn max_streams(mut self, n: usize) -> Self {
        self.max_streams = n;
        self
    }

    /// Whether opening the store checks the checksum of every page (default `true`). A file
    /// damaged outside the store then fails to open with [`Error::Corrupt`]; without the
    /// check, a damaged file that was closed cleanly is trusted. The check reads the whole
    /// file (see docs/benchmarks.md for its cost). After a crash the engine runs the same
    /// check whatever this says.
    pub fn verify_on_open(mut self, verify: bool) -> Self {
        self.verify_on_open = verify;
        self
    }

    /// The clock used to prune by age and to pick the records a restore returns (default:
    /// the system clock). For tests.
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.queue == 0 || self.queue > MAX_QUEUE {
            return Err(Error::Setting(format!(
                "queue ({}) must be between 1 and {MAX_QUEUE}",
                self.queue
            )));
        }
        if self.max_record_bytes == 0 || self.max_record_bytes > self.history_bytes {
            return Err(Error::Setting(format!(
                "max_record_bytes ({}) must be between 1 and history_bytes ({})",
                self.max_record_bytes, self.history_bytes
            )));
        }
        if self.history_records == 0 {
            return Err(Error::Setting("history_records must be at least 1".into()));
        }
        Ok(())
    }
}
