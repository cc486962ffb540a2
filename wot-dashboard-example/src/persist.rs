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
//! it); the records are in the history, which the terminal and the page show again. A clean
//! stop loses none: [`StopFeed::stop`] and [`drain`] wait for the batch on its way and write
//! its lines before the run ends. A failed commit never lets a saved position run ahead of
//! the saved history: its items are saved again with the next batch and shown after it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use wot_alerts::AlertManager;
use wot_events::{EventRecord, PropertyUpdate};
use wot_store::{Batch, RestoreLimits, ResumePoints, Store};

use crate::headless::{self, Printer};
use crate::live::Feed;

/// Longest wait at the end of a run for the last items and the alert state to be saved.
pub(crate) const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Items waiting for a commit before the feed is no longer read (backpressure).
const MAX_PENDING: usize = 4096;
/// Committed items waiting for the consumer.
const OUT_QUEUE: usize = 1024;
/// The pause before a failed batch is tried again, doubled after each failure in a row...
const RETRY_MIN: Duration = Duration::from_millis(100);
/// ...up to this.
const RETRY_MAX: Duration = Duration::from_secs(5);

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
    /// The JSON form, for the headless line: with the state directory's path.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut json = self.counts_json();
        if let Some(fields) = json.as_object_mut() {
            fields.insert("dir".into(), self.dir.display().to_string().into());
        }
        json
    }

    /// The JSON form without the directory, for the web page: its clients need not learn
    /// where the server keeps its files.
    pub(crate) fn counts_json(&self) -> serde_json::Value {
        serde_json::json!({
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
        format!("restored from {}: {}", self.dir.display(), self.summary())
    }

    /// What was restored, without the directory (the web page's notice).
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} events, {} property values, {} stream positions, {} alerts, {} silences",
            self.events, self.property_values, self.streams, self.alerts, self.silences
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
    /// Blocks while the store verifies the whole file: inside a runtime, call it through
    /// [`blocking`] (as `run` does).
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

    /// Reads the history a restart shows again, within `limits`. Blocks on file reads, like
    /// [`open`](Self::open).
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
/// record and the resume points taken with it) is durable in `store`; and the handle that
/// ends it cleanly ([`StopFeed`]).
///
/// A task takes items from `feed` (so the resume points advance in that task, as items are
/// taken) and commits them in batches: the first item goes out at once, the items that
/// arrive while a commit is on its way wait for the next, so a busy feed makes big batches
/// and a quiet one small ones, with one fsync in flight at a time. Items with nothing to
/// store (alert notifications, problems) wait only for the batch before them, to keep the
/// order. At most [`MAX_PENDING`] items wait for a commit; past that the feed is not read.
///
/// The task starts when the stream is first polled and ends when the stream is dropped (the
/// SDK streams, and with them the connections, and the store go with it: the store is closed
/// on a blocking thread, not on a runtime worker). With `print` (`--headless`), it also
/// writes the items' JSON lines itself: rendered before the batch is submitted, written (on a
/// blocking thread) in one call as soon as it is durable, before the items are handed on. So
/// a kill can lose a line only within that one call (between the commit's end and the
/// write), and never print an item twice.
///
/// A failed commit is reported at once as a problem item; its items are held and go into the
/// next batch, retried after a pause ([`RETRY_MIN`] doubling up to [`RETRY_MAX`]), and are
/// handed on only once that batch is durable, with every resume point written again. So a
/// failure never leaves a saved position ahead of the saved history. Once the store is
/// closed for good ([`wot_store::Error::is_closed`]), nothing more is saved: the items held
/// and all later ones are handed on without a commit, and no resume point is written again
/// (the next run resumes from the last one saved, and a server that replays sends the rest
/// again).
///
/// [`StopFeed::stop`] ends the stream cleanly: no more items are taken from `feed`, the batch
/// on its way and the items waiting are committed and handed on, then the stream ends.
pub(crate) fn committed(
    feed: impl Stream<Item = Feed> + Send + 'static,
    store: Arc<Store>,
    points: Arc<ResumePoints>,
    print: bool,
) -> (impl Stream<Item = Feed> + Send + 'static, StopFeed) {
    committed_with(feed, store, points, print)
}

/// [`committed`] with any [`Saver`] (tests use one that fails on demand).
fn committed_with<S: Saver>(
    feed: impl Stream<Item = Feed> + Send + 'static,
    saver: Arc<S>,
    points: Arc<ResumePoints>,
    print: bool,
) -> (impl Stream<Item = Feed> + Send + 'static, StopFeed) {
    let (stop, stopped) = watch::channel(false);
    // Started at the first poll, so that whatever the consumer prints before it reads the
    // feed (the `restored` line, rule warnings, the web address) comes before the first item.
    let stream = futures::stream::once(async move {
        let (tx, rx) = mpsc::channel(OUT_QUEUE);
        let out = Out { tx, print };
        let task = tokio::spawn(commit_loop(Box::pin(feed), saver, points, out, stopped));
        Running { rx, task }
    })
    .flatten();
    (stream, StopFeed(stop))
}

/// Ends a [`committed`] stream cleanly (see there).
#[derive(Debug)]
pub(crate) struct StopFeed(watch::Sender<bool>);

impl StopFeed {
    /// Takes no more items from the feed; the stream ends once what was taken is committed
    /// and handed on.
    pub(crate) fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// The items of a running commit loop; dropping it aborts the loop.
struct Running {
    rx: mpsc::Receiver<Feed>,
    task: tokio::task::JoinHandle<()>,
}

impl Stream for Running {
    type Item = Feed;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Feed>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A [`committed`] stream ended by its consumer at the end of a run: stops it, then hands
/// each item still coming to `each` (which returns `false` to stop there), for at most
/// [`FLUSH_TIMEOUT`]. So a clean stop shows every item whose batch was committed.
pub(crate) async fn drain(
    feed: &mut (impl Stream<Item = Feed> + Unpin),
    stop: Option<&StopFeed>,
    mut each: impl FnMut(Feed) -> bool,
) {
    let Some(stop) = stop else { return };
    stop.stop();
    let rest = async {
        while let Some(item) = feed.next().await {
            if !each(item) {
                return;
            }
        }
    };
    if tokio::time::timeout(FLUSH_TIMEOUT, rest).await.is_err() {
        tracing::warn!(
            "saving the last items at exit took too long; a restart may show them again"
        );
    }
}

/// Where the commit loop saves its batches: the store, or in tests one that fails on demand.
trait Saver: Send + Sync + 'static {
    /// Queues `batch`; the future returned resolves once it is durable.
    fn submit(&self, batch: Batch) -> BoxFuture<'_, Result<Durable, wot_store::Error>>;
}

/// Resolves once a submitted batch is durable.
type Durable = BoxFuture<'static, Result<(), wot_store::Error>>;

impl Saver for Store {
    fn submit(&self, batch: Batch) -> BoxFuture<'_, Result<Durable, wot_store::Error>> {
        Box::pin(async move {
            let commit = Store::submit(self, batch).await?;
            Ok(Box::pin(commit) as Durable)
        })
    }
}

/// Holds a value whose drop may block (the last handle on the store joins its writer thread
/// and waits for its final sync) and drops it on a blocking thread when inside a runtime.
struct DropOffRuntime<T: Send + 'static>(Option<T>);

impl<T: Send + 'static> std::ops::Deref for DropOffRuntime<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_ref().expect("taken only in drop")
    }
}

impl<T: Send + 'static> Drop for DropOffRuntime<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || drop(value))),
                Err(_) => drop(value),
            }
        }
    }
}

/// Where committed items go: their lines to stdout (with `print`), the items to the consumer.
struct Out {
    tx: mpsc::Sender<Feed>,
    print: bool,
}

impl Out {
    /// The lines `items` will print, rendered ahead.
    fn render(&self, items: &[Feed]) -> Vec<u8> {
        let mut lines = Vec::new();
        if self.print {
            headless::render(items, &mut lines);
        }
        lines
    }

    /// Writes `lines` (in one call, on a blocking thread), then hands on `items`; `false` when
    /// stdout's reader or the consumer is gone.
    async fn emit(&mut self, lines: Vec<u8>, items: impl IntoIterator<Item = Feed>) -> bool {
        if !lines.is_empty() {
            let written = tokio::task::spawn_blocking(move || Printer::new().lines(&lines));
            if !matches!(written.await, Ok(true)) {
                return false;
            }
        }
        for item in items {
            if self.tx.send(item).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// A batch on its way to the disk and the items it covers.
struct InFlight {
    commit: Durable,
    items: Vec<Feed>,
}

fn failed(error: &wot_store::Error) -> Feed {
    Feed::Problem(format!(
        "saving the state failed (its items are held and saved again): {error}"
    ))
}

fn closed(error: &wot_store::Error) -> Feed {
    Feed::Problem(format!(
        "the state is no longer saved (positions stay where they were last saved): {error}"
    ))
}

async fn commit_loop<S: Saver>(
    mut feed: std::pin::Pin<Box<dyn Stream<Item = Feed> + Send>>,
    saver: Arc<S>,
    points: Arc<ResumePoints>,
    mut out: Out,
    mut stop: watch::Receiver<bool>,
) {
    let saver = DropOffRuntime(Some(saver));
    // Items taken and not yet committed, oldest first (those of a failed batch included).
    let mut pending: Vec<Feed> = Vec::new();
    // Whether `pending` holds something to store (else it can go out without a commit).
    let mut pending_ops = false;
    let mut in_flight: Option<InFlight> = None;
    let mut feed_open = true;
    // `false` once the store is closed for good: items go out without a commit.
    let mut saving = true;
    // After a failure: no batch before this time, and the pause after the next failure.
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut retry_pause = RETRY_MIN;
    loop {
        if in_flight.is_none() && retry_at.is_none() && !pending.is_empty() {
            let items = std::mem::take(&mut pending);
            if saving && (pending_ops || points.has_pending()) {
                // A batch refused at submission fails like one whose commit failed: the
                // branch below holds its items and schedules the retry.
                let commit = match submit(&**saver, &points, &items).await {
                    Ok(commit) => commit,
                    Err(error) => Box::pin(std::future::ready(Err(error))),
                };
                in_flight = Some(InFlight { commit, items });
            } else if !out.emit(out.render(&items), items).await {
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
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            done = commit => {
                let Some(InFlight { items, .. }) = in_flight.take() else { continue };
                match done {
                    Ok(()) => {
                        retry_pause = RETRY_MIN;
                        // Durable: its lines go out first, at once.
                        if !out.emit(out.render(&items), items).await {
                            return;
                        }
                    }
                    Err(error) => {
                        let problem = hold(error, items, &mut pending, &points, &mut saving);
                        pending_ops = true;
                        if !out.emit(Vec::new(), [problem]).await {
                            return;
                        }
                        retry_at = saving.then(|| tokio::time::Instant::now() + retry_pause);
                        retry_pause = (retry_pause * 2).min(RETRY_MAX);
                    }
                }
            }
            () = retry => retry_at = None,
            item = feed.next(), if feed_open && pending.len() < MAX_PENDING => match item {
                Some(item) => {
                    pending_ops |= matches!(item, Feed::Event(_) | Feed::Property(_));
                    pending.push(item);
                }
                None => feed_open = false,
            },
            true = async { stop.wait_for(|stop| *stop).await.is_ok() }, if feed_open => {
                feed_open = false;
                // The connections close now; what was taken is still committed.
                feed = Box::pin(futures::stream::empty());
            }
            () = out.tx.closed() => return,
        }
    }
}

/// After a failed batch: puts its `items` back in front of `pending`, to go into the next
/// batch with every resume point (or, once the store is closed for good, to go out
/// unsaved); returns the problem to report.
fn hold(
    error: wot_store::Error,
    mut items: Vec<Feed>,
    pending: &mut Vec<Feed>,
    points: &ResumePoints,
    saving: &mut bool,
) -> Feed {
    items.append(pending);
    *pending = items;
    if error.is_closed() {
        *saving = false;
        tracing::error!(%error, "the state is no longer saved");
        closed(&error)
    } else {
        points.mark_all_dirty();
        tracing::warn!(%error, "saving the state failed; retrying");
        failed(&error)
    }
}

/// Submits one batch: the history records of `items` and the resume points advanced since
/// the last batch.
async fn submit(
    saver: &impl Saver,
    points: &ResumePoints,
    items: &[Feed],
) -> Result<Durable, wot_store::Error> {
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
    saver.submit(batch).await
}

/// Runs `work` (file work that may block: opening the store, reading the history) on a
/// blocking thread and waits for it, so that no runtime worker is held up.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        // A panic in `work` is passed on; a cancel only happens when the runtime shuts down.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
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
    use tokio::sync::mpsc;
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
        let (out, _stop) = committed(feed, state.store.clone(), points, false);
        let mut out = Box::pin(out);
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

    fn id_of(item: &Feed) -> Option<u64> {
        match item {
            Feed::Event(record) => record.event_id.as_deref()?.parse().ok(),
            _ => None,
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dash-persist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn stored_ids(store: &Store) -> Vec<u64> {
        let history = store.restore_history(&RestoreLimits::new()).expect("reads");
        let mut ids: Vec<u64> = history
            .events
            .iter()
            .filter_map(|r| r.event_id.as_deref()?.parse().ok())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// How a [`Flaky`] submission fails.
    #[derive(Clone, Copy)]
    enum Fail {
        /// The batch is refused at once.
        Submit,
        /// The batch is queued, but its transaction fails (nothing written).
        Commit,
    }

    /// A real store whose submissions fail as planned (by their number, from 0).
    struct Flaky {
        store: Arc<Store>,
        plan: Vec<(usize, Fail)>,
        submitted: std::sync::atomic::AtomicUsize,
    }

    impl Saver for Flaky {
        fn submit(&self, batch: Batch) -> BoxFuture<'_, Result<Durable, wot_store::Error>> {
            let n = self
                .submitted
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let injected = move || wot_store::Error::Setting(format!("injected failure {n}"));
            match self
                .plan
                .iter()
                .find(|(at, _)| *at == n)
                .map(|(_, fail)| *fail)
            {
                Some(Fail::Submit) => Box::pin(async move { Err(injected()) }),
                Some(Fail::Commit) => {
                    Box::pin(async move { Ok(Box::pin(async move { Err(injected()) }) as Durable) })
                }
                None => Saver::submit(&*self.store, batch),
            }
        }
    }

    /// A failed batch (refused at once, or failed in its transaction) is saved again with the
    /// next one: every item comes out once, in order, only once its record and position are
    /// durable; the failures come out as problems at once.
    #[tokio::test(start_paused = true)]
    async fn a_failed_commit_keeps_its_items_for_the_next_batch() {
        let dir = temp_dir("flaky");
        let state = State::open(&dir).expect("opens");
        let key = StreamKey::all_events("urn:t", &Url::parse("http://h/e").expect("URL"));
        let points = state.points.clone();
        let advancing = points.clone();
        let feed_key = key.clone();
        let feed = futures::stream::iter(1..=40u64).map(move |id| {
            advancing.advance(&feed_key, &id.to_string());
            Feed::Event(event(id))
        });
        let store = state.store.clone();
        let flaky = Arc::new(Flaky {
            store: state.store.clone(),
            plan: vec![(1, Fail::Commit), (2, Fail::Submit), (4, Fail::Commit)],
            submitted: 0.into(),
        });
        let (out, _stop) = committed_with(feed, flaky.clone(), points, false);
        let mut out = Box::pin(out);
        let mut seen = Vec::new();
        let mut problems = 0;
        while let Some(item) = out.next().await {
            match id_of(&item) {
                Some(id) => {
                    assert!(
                        stored_ids(&store).contains(&id),
                        "event {id} handed on before it was saved"
                    );
                    let at: u64 = store
                        .resume_points()
                        .expect("reads")
                        .get(&key)
                        .map_or(0, |p| p.last_event_id.parse().unwrap_or(0));
                    assert!(at >= id, "position {at} saved behind event {id}");
                    seen.push(id);
                }
                None => {
                    assert!(
                        matches!(&item, Feed::Problem(p) if p.contains("injected")),
                        "{item:?}"
                    );
                    problems += 1;
                }
            }
        }
        assert_eq!(
            seen,
            (1..=40).collect::<Vec<u64>>(),
            "each item once, in order"
        );
        assert!(problems >= 2, "{problems} failures reported");
        assert_eq!(
            stored_ids(&store),
            (1..=40).collect::<Vec<u64>>(),
            "every record saved once"
        );
        let saved = store
            .resume_points()
            .expect("reads")
            .get(&key)
            .expect("saved");
        assert_eq!(saved.last_event_id, "40");
        drop(out);
        drop((store, flaky, state));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Once the store is closed for good, items go out unsaved and no position is written.
    #[tokio::test(start_paused = true)]
    async fn a_closed_store_hands_items_on_unsaved_and_moves_no_position() {
        struct Closed(wot_store::Error);
        impl Saver for Closed {
            fn submit(&self, _: Batch) -> BoxFuture<'_, Result<Durable, wot_store::Error>> {
                let error = self.0.clone();
                Box::pin(async move { Err(error) })
            }
        }
        let dir = temp_dir("closed");
        let state = State::open(&dir).expect("opens");
        // A real error from a closed store: a handle that outlived it.
        let gone = Store::open(dir.join("gone")).expect("opens");
        let alerts = gone.alerts();
        drop(gone);
        let error = alerts.load_now().expect_err("the store is closed");
        assert!(error.is_closed(), "{error}");
        let feed = futures::stream::iter(1..=5u64).map(|id| Feed::Event(event(id)));
        let (out, _stop) =
            committed_with(feed, Arc::new(Closed(error)), state.points.clone(), false);
        let items: Vec<Feed> = out.collect().await;
        let ids: Vec<u64> = items.iter().filter_map(id_of).collect();
        assert_eq!(ids, (1..=5).collect::<Vec<u64>>());
        assert!(matches!(&items[0], Feed::Problem(p) if p.contains("no longer saved")));
        drop(state);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Dropping the stream ends the commit loop at once, even on a quiet feed: the feed (the
    /// SDK streams and their connections) is dropped and the store's file is released.
    #[tokio::test]
    async fn dropping_the_stream_releases_the_feed_and_the_store() {
        let dir = temp_dir("drop");
        let state = State::open(&dir).expect("opens");
        let (held, released) = futures::channel::oneshot::channel::<()>();
        let feed = futures::stream::iter([Feed::Event(event(1))]).chain(
            futures::stream::pending().map(move |()| {
                let _ = &held;
                Feed::Problem(String::new())
            }),
        );
        let (out, _stop) = committed(feed, state.store, state.points, false);
        let mut out = Box::pin(out);
        assert!(out.next().await.is_some_and(|item| id_of(&item) == Some(1)));
        drop(out);
        tokio::time::timeout(Duration::from_secs(5), released)
            .await
            .expect("the feed is dropped")
            .expect_err("dropped, not sent");
        let mut reopened = Store::open(&dir);
        for _ in 0..500 {
            if reopened.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            reopened = Store::open(&dir);
        }
        let reopened = reopened.expect("the store is released");
        assert_eq!(stored_ids(&reopened), vec![1]);
        drop(reopened);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A clean stop: no more items are taken, and every item whose batch is committed (the
    /// one on its way included) comes out before the stream ends; nothing saved is left
    /// unshown, and the saved position is the last item shown.
    #[tokio::test(start_paused = true)]
    async fn a_clean_stop_hands_on_every_committed_item() {
        let dir = temp_dir("stop");
        let state = State::open(&dir).expect("opens");
        let key = StreamKey::all_events("urn:t", &Url::parse("http://h/e").expect("URL"));
        let advancing = state.points.clone();
        let feed_key = key.clone();
        let (tx, rx) = mpsc::unbounded_channel::<u64>();
        let feed =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|id| (id, rx)) },
            )
            .map(move |id| {
                advancing.advance(&feed_key, &id.to_string());
                Feed::Event(event(id))
            });
        let store = state.store.clone();
        let (out, stop) = committed(feed, state.store.clone(), state.points.clone(), false);
        let mut out = Box::pin(out);
        for id in 1..=5 {
            tx.send(id).expect("sends");
        }
        let mut seen = vec![id_of(&out.next().await.expect("an item")).expect("an event")];
        for id in 6..=200 {
            tx.send(id).expect("sends");
        }
        tokio::task::yield_now().await;
        stop.stop();
        while let Some(item) = out.next().await {
            seen.extend(id_of(&item));
        }
        let last = *seen.last().expect("items");
        assert_eq!(seen, (1..=last).collect::<Vec<u64>>());
        assert_eq!(stored_ids(&store), seen, "every saved item was handed on");
        let saved = store
            .resume_points()
            .expect("reads")
            .get(&key)
            .expect("saved");
        assert_eq!(saved.last_event_id, last.to_string());
        drop((out, store, state, tx));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
