//! Resume points: the store's side of [`wot_events::ResumeStore`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use wot_events::{DEFAULT_DEDUP_WINDOW, ResumePoint, ResumeStore, StreamKey};

use crate::store::{RESUME, read_all};
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
}

/// Each point with whether it advanced since it was last added to a batch; `dirty` counts
/// those that did. One hash lookup per advance.
#[derive(Debug, Default)]
struct PointsState {
    points: HashMap<StreamKey, (ResumePoint, bool), foldhash::fast::RandomState>,
    dirty: usize,
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
        for (point, _) in self.lock().points.values_mut() {
            while point.recent_ids.len() > n {
                point.recent_ids.pop_front();
            }
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
        for (key, (point, dirty)) in &mut state.points {
            if std::mem::take(dirty) {
                batch.put_resume_point(key, point);
                n += 1;
            }
        }
        state.dirty = 0;
        n
    }

    /// Marks every point as changed, so that the next [`add_to`](Self::add_to) writes all.
    pub fn mark_all_dirty(&self) {
        let mut state = self.lock();
        for (_, dirty) in state.points.values_mut() {
            *dirty = true;
        }
        state.dirty = state.points.len();
    }

    /// Whether some point advanced since the last [`add_to`](Self::add_to).
    pub fn has_pending(&self) -> bool {
        self.lock().dirty > 0
    }

    /// A copy of every point (stored or advanced since).
    pub fn points(&self) -> Vec<(StreamKey, ResumePoint)> {
        self.lock()
            .points
            .iter()
            .map(|(k, (p, _))| (k.clone(), p.clone()))
            .collect()
    }

    /// The point of one stream.
    pub fn get(&self, key: &StreamKey) -> Option<ResumePoint> {
        self.lock().points.get(key).map(|(p, _)| p.clone())
    }

    /// Number of streams with a point.
    pub fn len(&self) -> usize {
        self.lock().points.len()
    }

    /// Whether no stream has a point.
    pub fn is_empty(&self) -> bool {
        self.lock().points.is_empty()
    }
}

impl ResumeStore for ResumePoints {
    fn load(&self, key: &StreamKey) -> Option<ResumePoint> {
        self.get(key)
    }

    fn advance(&self, key: &StreamKey, event_id: &str) {
        let mut state = self.lock();
        let state = &mut *state;
        if let Some((point, dirty)) = state.points.get_mut(key) {
            point.advance(event_id, self.recent_ids);
            if !*dirty {
                *dirty = true;
                state.dirty += 1;
            }
        } else {
            let mut point = ResumePoint::default();
            point.advance(event_id, self.recent_ids);
            state.points.insert(key.clone(), (point, true));
            state.dirty += 1;
        }
    }
}

impl Store {
    /// The stored resume points, as a [`ResumeStore`] to give an event subscriber.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the table cannot be read; [`Error::Corrupt`] when a row does
    /// not decode.
    pub fn resume_points(&self) -> Result<ResumePoints, Error> {
        let mut points = HashMap::default();
        for (k, v) in read_all(&self.inner, RESUME)? {
            let corrupt = |what: &str, e: serde_json::Error| Error::Corrupt {
                path: self.inner.path.clone(),
                detail: format!("a resume point's {what} does not decode: {e}"),
            };
            let key: StreamKey = serde_json::from_slice(&k).map_err(|e| corrupt("key", e))?;
            let point: ResumePoint = serde_json::from_slice(&v).map_err(|e| corrupt("value", e))?;
            points.insert(key, (point, false));
        }
        Ok(ResumePoints {
            state: Mutex::new(PointsState { points, dirty: 0 }),
            recent_ids: DEFAULT_DEDUP_WINDOW,
        })
    }
}
