//! `--state DIR`: the dashboard's state on disk, in a `wot-store` store. It keeps where each
//! event stream stands (resume points, with the ids that drop a server's repeats), the alert
//! manager's state and outbox, and a bounded history of events and property values.
//!
//! ```text
//!  SDK streams ──advance──► ResumePoints (in memory)
//!      │                          │
//!      ▼                          ▼ points advanced since the last batch
//!  feed items ──► commit loop: Batch { history records, resume points } ──► Store (group commit)
//!                     │                                                        │ durable
//!                     └──── items of that batch, in order ◄────────────────────┘
//!                                 ▼
//!                    headless lines / web page / terminal
//! ```
//!
//! Commit, then emit: an item reaches the screen, the page or a headless line only after the
//! batch holding it (and the resume points it moved) is durable. After a crash the store
//! holds both an item and its resume point, or neither: a server that replays from
//! `Last-Event-ID` sends again what the store lacks, and the window of recent ids drops what it
//! already has, so no line is printed twice. A pipe is not transactional, though: the lines of
//! the batch committed last are lost from the headless output when the process dies between
//! the commit and their write. For a `kill -9` that window is about the commit's final sync
//! (the file is complete in the page cache before the sync returns, and the next run reads
//! it); the records are in the history, which the terminal and the page show again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt};
use wot_alerts::AlertManager;
use wot_events::{EventRecord, PropertyUpdate};
use wot_store::{Batch, Commit, RestoreLimits, ResumePoints, Store};

use crate::headless::{self, Printer};
use crate::live::Feed;

/// Longest wait at the end of a run for the alert state to be saved.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Items waiting for a commit before the feed is no longer read (backpressure).
const MAX_PENDING: usize = 4096;
/// Committed items waiting for the consumer.
const OUT_QUEUE: usize = 1024;

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store refused to open (another format version, damaged, held by another process,
    /// or the directory cannot be made); the store's error names the file.
    #[error("state directory (--state): {source}{}", hint(.source))]
    Open {
        /// The store's error.
        #[source]
        source: wot_store::Error,
    },
}

fn hint(error: &wot_store::Error) -> &'static str {
    match error {
        wot_store::Error::Locked { .. } => {
            "; another dashboard uses this directory: give this one its own --state DIR, or --no-state"
        }
        wot_store::Error::Version { .. } | wot_store::Error::Corrupt { .. } => {
            "; give another --state DIR or --no-state to start empty"
        }
        _ => "",
    }
}

/// What was restored at start, for the notice line, the `restored` JSON line and the page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Restored {
    /// The state directory.
    pub(crate) dir: PathBuf,
    /// Events put back in the timeline.
    pub(crate) events: usize,
    /// Property values put back in the charts.
    pub(crate) property_values: usize,
    /// Streams with a resume point.
    pub(crate) streams: usize,
    /// Alerts pending or firing.
    pub(crate) alerts: usize,
    /// Silences in force.
    pub(crate) silences: usize,
    /// Alert actions not done before the restart, queued again.
    pub(crate) resent: usize,
}

impl Restored {
    /// The JSON form (headless line and web snapshot).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "dir": self.dir.display().to_string(),
            "events": self.events,
            "property_values": self.property_values,
            "streams": self.streams,
            "alerts": self.alerts,
            "silences": self.silences,
            "resent": self.resent,
        })
    }

    /// One line for the terminal's notice.
    pub(crate) fn text(&self) -> String {
        format!(
            "restored from {}: {} events, {} property values, {} stream positions, {} alerts, {} silences",
            self.dir.display(),
            self.events,
            self.property_values,
            self.streams,
            self.alerts,
            self.silences
        )
    }
}

/// The open state directory.
pub(crate) struct State {
    pub(crate) store: Arc<Store>,
    pub(crate) points: Arc<ResumePoints>,
    /// The history read at open, oldest first, until the consumer takes it.
    pub(crate) events: Vec<EventRecord>,
    pub(crate) properties: Vec<PropertyUpdate>,
    pub(crate) dir: PathBuf,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("dir", &self.dir)
            .field("events", &self.events.len())
            .field("properties", &self.properties.len())
            .finish_non_exhaustive()
    }
}

impl State {
    /// Opens (or creates) the store in `dir` and reads the resume points. The history is
    /// read later ([`load_history`](Self::load_history)), once the Things are known.
    ///
    /// # Errors
    /// The store cannot be opened or read.
    pub(crate) fn open(dir: &Path) -> Result<State, StateError> {
        let open = |source| StateError::Open { source };
        let store = Store::open(dir).map_err(open)?;
        let points = store.resume_points().map_err(open)?;
        Ok(State {
            store: Arc::new(store),
            points: Arc::new(points),
            events: Vec::new(),
            properties: Vec::new(),
            dir: dir.to_owned(),
        })
    }

    /// Reads the history a restart shows again, within `limits`.
    ///
    /// # Errors
    /// The store cannot be read.
    pub(crate) fn load_history(&mut self, limits: &RestoreLimits) -> Result<(), StateError> {
        let history = self
            .store
            .restore_history(limits)
            .map_err(|source| StateError::Open { source })?;
        if history.skipped_blocks > 0 {
            tracing::warn!(
                blocks = history.skipped_blocks,
                "some history in the state directory could not be read and was skipped"
            );
        }
        self.properties = history
            .properties
            .into_iter()
            .flat_map(|p| p.updates)
            .collect();
        self.events = history.events;
        Ok(())
    }
}

/// The items of `feed` in order, each handed on only once the batch holding it (its history
/// record and the resume points taken with it) is durable in `store`.
///
/// A task takes items from `feed` (so the resume points advance in that task, as items are
/// taken) and commits them in batches: the first item goes out at once, the items that
/// arrive while a commit is on its way wait for the next, so a busy feed makes big batches
/// and a quiet one small ones, with one fsync in flight at a time. Items with nothing to
/// store (alert notifications, problems) wait only for the batch before them, to keep the
/// order.
///
/// The task starts when the stream is first polled. With `print` (`--headless`), it also
/// writes the items' JSON lines itself: rendered
/// while the batch is on its way, written in one call as soon as it is durable, before
/// anything else happens. So a kill can lose a line only within that one call (between the
/// commit's end and the write), and never print an item twice.
///
/// A failed commit is reported as a problem; its items are handed on all the same (they are
/// not lost from view, but a restart may show them again: their resume points were not
/// saved) and every resume point is written again with the next batch.
pub(crate) fn committed(
    feed: impl Stream<Item = Feed> + Send + 'static,
    store: Arc<Store>,
    points: Arc<ResumePoints>,
    print: bool,
) -> impl Stream<Item = Feed> + Send + 'static {
    // Started at the first poll, so that whatever the consumer prints before it reads the
    // feed (the `restored` line, rule warnings, the web address) comes before the first item.
    futures::stream::once(async move {
        let (tx, rx) = mpsc::channel(OUT_QUEUE);
        let out = Out {
            tx,
            printer: print.then(Printer::new),
        };
        tokio::spawn(commit_loop(Box::pin(feed), store, points, out));
        rx
    })
    .flatten()
}

/// Where committed items go: their lines to stdout (with `print`), the items to the consumer.
struct Out {
    tx: mpsc::Sender<Feed>,
    printer: Option<Printer>,
}

impl Out {
    /// The lines `items` will print, rendered ahead.
    fn render(&self, items: &[Feed]) -> Vec<u8> {
        let mut lines = Vec::new();
        if self.printer.is_some() {
            headless::render(items, &mut lines);
        }
        lines
    }

    /// Writes `lines` (in one call), then hands on `items`; `false` when stdout's reader or
    /// the consumer is gone.
    async fn emit(&mut self, lines: &[u8], items: impl IntoIterator<Item = Feed>) -> bool {
        if let Some(printer) = &self.printer
            && !lines.is_empty()
            && !printer.lines(lines)
        {
            return false;
        }
        for item in items {
            if self.tx.send(item).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// A batch on its way to the disk, the items it covers and their lines.
struct InFlight {
    commit: Commit,
    items: Vec<Feed>,
    lines: Vec<u8>,
}

fn failed(error: &wot_store::Error) -> Feed {
    Feed::Problem(format!("saving the state failed: {error}"))
}

async fn commit_loop(
    mut feed: std::pin::Pin<Box<dyn Stream<Item = Feed> + Send>>,
    store: Arc<Store>,
    points: Arc<ResumePoints>,
    mut out: Out,
) {
    let mut pending: Vec<Feed> = Vec::new();
    // Whether `pending` holds something to store (else it can go out without a commit).
    let mut pending_ops = false;
    let mut in_flight: Option<InFlight> = None;
    let mut feed_open = true;
    loop {
        if in_flight.is_none() && !pending.is_empty() {
            let items = std::mem::take(&mut pending);
            let lines = out.render(&items);
            if pending_ops || points.has_pending() {
                match submit(&store, &points, &items).await {
                    Ok(commit) => {
                        in_flight = Some(InFlight {
                            commit,
                            items,
                            lines,
                        });
                    }
                    Err(error) => {
                        points.mark_all_dirty();
                        let items = std::iter::once(failed(&error)).chain(items);
                        if !out.emit(&lines, items).await {
                            return;
                        }
                    }
                }
            } else if !out.emit(&lines, items).await {
                return;
            }
            pending_ops = false;
        }
        if !feed_open && pending.is_empty() && in_flight.is_none() {
            return;
        }
        let commit = async {
            match in_flight.as_mut() {
                Some(batch) => (&mut batch.commit).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = commit => {
                let Some(InFlight { items, lines, .. }) = in_flight.take() else { continue };
                // Durable: its lines go out first, at once.
                let problem = done.err().map(|error| {
                    points.mark_all_dirty();
                    failed(&error)
                });
                if !out.emit(&lines, problem.into_iter().chain(items)).await {
                    return;
                }
            }
            item = feed.next(), if feed_open && pending.len() < MAX_PENDING => match item {
                Some(item) => {
                    pending_ops |= matches!(item, Feed::Event(_) | Feed::Property(_));
                    pending.push(item);
                }
                None => feed_open = false,
            },
        }
    }
}

/// Submits one batch: the history records of `items` and the resume points advanced since
/// the last batch.
async fn submit(
    store: &Store,
    points: &ResumePoints,
    items: &[Feed],
) -> Result<Commit, wot_store::Error> {
    let mut batch = Batch::with_capacity(items.len() + 4);
    for item in items {
        match item {
            Feed::Event(record) => {
                batch.push_event(record);
            }
            Feed::Property(update) => {
                batch.push_property(update);
            }
            Feed::Alert(_) | Feed::Problem(_) | Feed::Skipped(_) => {}
        }
    }
    points.add_to(&mut batch);
    store.submit(batch).await
}

/// At the end of a run: waits (at most [`FLUSH_TIMEOUT`]) until what the alert manager
/// changed is saved, so that a clean stop loses none of it. Without a state directory it
/// returns at once.
pub(crate) async fn flush_alerts(alerts: &AlertManager) {
    match tokio::time::timeout(FLUSH_TIMEOUT, alerts.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "the alert state could not be saved at exit"),
        Err(_) => tracing::warn!("saving the alert state at exit took too long"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use serde_json::json;
    use wot_events::{ResumeStore, StreamKey, Url};

    use super::*;

    fn event(id: u64) -> EventRecord {
        EventRecord {
            thing_id: "urn:t".into(),
            thing_title: "T".into(),
            event: "e".into(),
            data: json!({"n": id}),
            event_id: Some(id.to_string().into()),
            received_at: SystemTime::now(),
        }
    }

    /// Each item comes out only once its record and the position it moved are in the store,
    /// in the order it went in; items with nothing to store keep their place.
    #[tokio::test]
    async fn items_come_out_in_order_once_saved_with_their_positions() {
        let dir = std::env::temp_dir().join(format!("dash-persist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = State::open(&dir).expect("opens");
        let key = StreamKey::all_events("urn:t", &Url::parse("http://h/e").expect("URL"));
        let points = state.points.clone();
        let advancing = points.clone();
        let feed_key = key.clone();
        // As a subscriber does: the position moves as the item is taken.
        let feed = futures::stream::iter(1..=40u64).map(move |id| {
            if id % 10 == 0 {
                return Feed::Problem(format!("problem {id}"));
            }
            advancing.advance(&feed_key, &id.to_string());
            Feed::Event(event(id))
        });
        let store = state.store.clone();
        let mut out = Box::pin(committed(feed, state.store.clone(), points, false));
        let mut seen = Vec::new();
        while let Some(item) = out.next().await {
            match item {
                Feed::Event(record) => {
                    let id: u64 = record
                        .event_id
                        .as_deref()
                        .unwrap_or("0")
                        .parse()
                        .expect("id");
                    let history = store.restore_history(&RestoreLimits::new()).expect("reads");
                    assert!(
                        history
                            .events
                            .iter()
                            .any(|r| r.event_id.as_deref() == Some(&*id.to_string())),
                        "event {id} handed on before it was saved"
                    );
                    let stored = store.resume_points().expect("reads").get(&key);
                    let at: u64 = stored
                        .map(|p| p.last_event_id.parse().unwrap_or(0))
                        .unwrap_or(0);
                    assert!(at >= id, "position {at} saved behind event {id}");
                    seen.push(id);
                }
                Feed::Problem(text) => seen.push(text[8..].parse().expect("number")),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, (1..=40).collect::<Vec<u64>>());
        drop(out);
        drop(store);
        drop(state);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
