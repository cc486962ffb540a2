//! Resume points: the store's side of [`wot_events::ResumeStore`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use wot_events::{DEFAULT_DEDUP_WINDOW, ResumePoint, ResumeStore, StreamKey};

use redb::{ReadableTable, ReadableTableMetadata};

use crate::store::RESUME;
use crate::{Batch, Error, Store};

/// A [`ResumeStore`] backed by a [`Store`]: streams load the points stored at the last run,
/// and their advances collect in memory until the app writes them with its own output
/// ([`add_to`](Self::add_to)).
///
/// `advance` only updates a map (it runs on every event's path); nothing reaches the disk
/// until a batch holding the points commits. Write them in the batch that also holds what the
/// app made of the same events (in the task that took the events), and after a crash the
/// store holds both or neither: the server replays what was lost and the window of recent ids
/// drops what was already seen.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use wot_events::EventSubscriber;
/// use wot_store::{Batch, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), wot_store::Error> {
/// # let dir = std::env::temp_dir().join(format!("wot-store-resume-doc-{}", std::process::id()));
/// let store = Store::open(&dir)?;
/// let points = Arc::new(store.resume_points()?);
/// let subscriber = EventSubscriber::builder().resume_store(points.clone()).build();
/// // ... take events from the subscriber's streams, then, in the same task:
/// let mut batch = Batch::new();
/// // batch.push_event(&record) for each event taken
/// points.add_to(&mut batch);
/// store.commit(batch).await?;
/// # drop(subscriber); drop(store); std::fs::remove_dir_all(&dir).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ResumePoints {
    state: Mutex<PointsState>,
    recent_ids: usize,
    max_streams: usize,
}

/// Largest stored stream key read back: 64 KiB of JSON (a Thing id, an affordance, a URL).
const MAX_KEY_BYTES: usize = 64 << 10;
/// Largest stored point read back: 4 MiB of JSON, room for 257 ids of
/// `wot_events::DEFAULT_MAX_RESUME_ID_LEN` (4,096) bytes each.
const MAX_POINT_BYTES: usize = 4 << 20;

/// Each point with whether it advanced since it was last added to a batch (`dirty` counts
/// those that did), and where to find it by key. A stream advances many times in a row, so the
/// entry advanced last is compared first, before any hashing.
#[derive(Debug, Default)]
struct PointsState {
    entries: Vec<Entry>,
    index: HashMap<StreamKey, usize, foldhash::fast::RandomState>,
    dirty: usize,
    last: usize,
    /// Whether the warning about a stream over the limit was logged.
    warned: bool,
}

#[derive(Debug)]
struct Entry {
    key: StreamKey,
    point: ResumePoint,
    dirty: bool,
}

impl PointsState {
    fn get(&self, key: &StreamKey) -> Option<&ResumePoint> {
        self.index.get(key).map(|&i| &self.entries[i].point)
    }
}

impl ResumePoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, PointsState> {
        // Each update is one `ResumePoint::advance`: a panic elsewhere leaves the map whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many recent ids each point keeps (default
    /// [`DEFAULT_DEDUP_WINDOW`](wot_events::DEFAULT_DEDUP_WINDOW), 256): give a stream's
    /// de-duplication window at most this many.
    #[must_use]
    pub fn with_recent_ids(mut self, n: usize) -> Self {
        self.recent_ids = n;
        for Entry { point, .. } in &mut self.lock().entries {
            point.truncate_recent(n);
        }
        self
    }

    /// Adds to `batch` every point advanced since the last call, and marks them written.
    /// Returns how many were added.
    ///
    /// If the batch then fails to commit, those points are written with the next batch
    /// only if their streams advance again; call [`mark_all_dirty`](Self::mark_all_dirty)
    /// after a failed commit to write them all again.
    pub fn add_to(&self, batch: &mut Batch) -> usize {
        let mut state = self.lock();
        if state.dirty == 0 {
            return 0;
        }
        let mut n = 0;
        for entry in &mut state.entries {
            if std::mem::take(&mut entry.dirty) {
                batch.put_resume_point(&entry.key, &entry.point);
                n += 1;
            }
        }
        state.dirty = 0;
        n
    }

    /// Marks every point as changed, so that the next [`add_to`](Self::add_to) writes all.
    pub fn mark_all_dirty(&self) {
        let mut state = self.lock();
        for entry in &mut state.entries {
            entry.dirty = true;
        }
        state.dirty = state.entries.len();
    }

    /// Whether some point advanced since the last [`add_to`](Self::add_to).
    pub fn has_pending(&self) -> bool {
        self.lock().dirty > 0
    }

    /// A copy of every point (stored or advanced since).
    pub fn points(&self) -> Vec<(StreamKey, ResumePoint)> {
        self.lock()
            .entries
            .iter()
            .map(|e| (e.key.clone(), e.point.clone()))
            .collect()
    }

    /// The point of one stream.
    pub fn get(&self, key: &StreamKey) -> Option<ResumePoint> {
        self.lock().get(key).cloned()
    }

    /// Number of streams with a point.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no stream has a point.
    pub fn is_empty(&self) -> bool {
        self.lock().entries.is_empty()
    }
}

impl ResumeStore for ResumePoints {
    fn load(&self, key: &StreamKey) -> Option<ResumePoint> {
        self.get(key)
    }

    fn advance(&self, key: &StreamKey, event_id: &str) {
        let mut state = self.lock();
        let state = &mut *state;
        let found = match state.entries.get(state.last) {
            Some(entry) if entry.key == *key => Some(state.last),
            _ => state.index.get(key).copied(),
        };
        match found {
            Some(i) => {
                state.last = i;
                let entry = &mut state.entries[i];
                entry.point.advance(event_id, self.recent_ids);
                if !entry.dirty {
                    entry.dirty = true;
                    state.dirty += 1;
                }
            }
            None if state.entries.len() >= self.max_streams => {
                if !std::mem::replace(&mut state.warned, true) {
                    tracing::warn!(
                        limit = self.max_streams,
                        "resume points: more streams than max_streams; new streams' points are not kept"
                    );
                }
            }
            None => {
                let mut point = ResumePoint::default();
                point.advance(event_id, self.recent_ids);
                state.last = state.entries.len();
                state.index.insert(key.clone(), state.entries.len());
                state.entries.push(Entry {
                    key: key.clone(),
                    point,
                    dirty: true,
                });
                state.dirty += 1;
            }
        }
    }
}

impl Store {
    /// The stored resume points, as a [`ResumeStore`] to give an event subscriber: at most
    /// [`StoreOptions::max_streams`](crate::StoreOptions::max_streams) of them, each with its
    /// newest [`DEFAULT_DEDUP_WINDOW`](wot_events::DEFAULT_DEDUP_WINDOW) recent ids. Reads the
    /// file on the calling thread (call it at start, or from `spawn_blocking`).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the table cannot be read; [`Error::Corrupt`] when a row does
    /// not decode.
    pub fn resume_points(&self) -> Result<ResumePoints, Error> {
        let inner = &self.inner;
        let max_streams = inner.options.max_streams;
        let mut state = PointsState::default();
        let txn = inner.begin_read()?;
        let table = txn.open_table(RESUME).map_err(|e| inner.db_error(e))?;
        for row in table.iter().map_err(|e| inner.db_error(e))? {
            if state.entries.len() >= max_streams {
                let stored = table.len().unwrap_or(0);
                tracing::warn!(
                    path = %inner.path.display(),
                    stored,
                    limit = max_streams,
                    "resume points: more streams stored than max_streams; the rest are not loaded"
                );
                break;
            }
            let (k, v) = row.map_err(|e| inner.db_error(e))?;
            if k.value().len() > MAX_KEY_BYTES || v.value().len() > MAX_POINT_BYTES {
                // Larger than any point this crate writes with the default limits: not
                // decoded (the stream starts from the server's present).
                tracing::warn!(
                    path = %inner.path.display(),
                    key_bytes = k.value().len(),
                    point_bytes = v.value().len(),
                    "resume points: an oversized stored point was skipped"
                );
                continue;
            }
            let corrupt = |what: &str, e: serde_json::Error| Error::Corrupt {
                path: inner.path.clone(),
                detail: format!("a resume point's {what} does not decode: {e}"),
            };
            let key: StreamKey =
                serde_json::from_slice(k.value()).map_err(|e| corrupt("key", e))?;
            let mut point: ResumePoint =
                serde_json::from_slice(v.value()).map_err(|e| corrupt("value", e))?;
            point.truncate_recent(DEFAULT_DEDUP_WINDOW);
            match state.index.get(&key) {
                // Keys are unique in the table; a repeat would be damage: the last wins.
                Some(&i) => state.entries[i].point = point,
                None => {
                    state.index.insert(key.clone(), state.entries.len());
                    state.entries.push(Entry {
                        key,
                        point,
                        dirty: false,
                    });
                }
            }
        }
        Ok(ResumePoints {
            state: Mutex::new(state),
            recent_ids: DEFAULT_DEDUP_WINDOW,
            max_streams,
        })
    }
}
