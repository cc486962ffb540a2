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
//! already has, so no line is printed twice.
//!
//! On stdout a kill between a commit and the write of its lines loses those lines (never
//! twice, may cut the last batch); the records are in the history, which the terminal and the
//! page show again. With `--output FILE` the file's length is part of the committed state, so
//! property and event lines are written exactly once over any number of kills:
//!
//! - each batch also commits an output mark (a `wot-store` meta value): the file's length
//!   before the batch's lines and, kept by the store, the history position where the batch's
//!   records begin. Every line of the batches before it is in the file by then (one batch is
//!   in flight at a time, and its lines are written before the next is submitted);
//! - after the commit its lines are appended in one call (no sync: `kill -9` keeps what was
//!   handed to the kernel);
//! - at start ([`State::open`]) the file is cut back to the marked length and the lines of
//!   every record from the marked position on (the last batch committed) are written again,
//!   rendered by [`headless::render`] like live lines, before any other line.
//!
//! Lines that are not records (connection states, alerts, `restored`, notices) are not part of
//! the state: those written after the last commit are cut at the restart, or written again.
//!
//! A clean stop loses none: [`StopFeed::stop`] and [`drain`] wait for the batch on its way
//! and write its lines before the run ends. A failed commit never lets a saved position run
//! ahead of the saved history: its items are saved again with the next batch and shown after
//! it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, watch};
use wot_alerts::AlertManager;
use wot_events::{EventRecord, PropertyUpdate};
use wot_store::{Batch, HistoryRecord, RestoreLimits, ResumePoints, Store};

use crate::headless::{self, OutputFile, Printer};
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
    /// The `--output` file is gone, while the state directory counts lines in it.
    #[error(
        "--output {}: the file is missing, but the state directory says it holds {marked} \
         bytes of lines; put it back, or give another --output FILE (a new path starts a new file)",
        path.display()
    )]
    OutputMissing {
        /// The file.
        path: PathBuf,
        /// Its length as committed.
        marked: u64,
    },
    /// The `--output` file is shorter than the state directory says it is.
    #[error(
        "--output {}: the file has {len} bytes, but the state directory says it holds \
         {marked}; put the whole file back, or give another --output FILE (a new path starts \
         a new file)",
        path.display()
    )]
    OutputShorter {
        /// The file.
        path: PathBuf,
        /// Its length now.
        len: u64,
        /// Its length as committed.
        marked: u64,
    },
    /// The `--output` path is not a regular file (a directory, a pipe, a device): lines can
    /// only be appended to, and cut back in, a regular file.
    #[error("--output {}: not a regular file", path.display())]
    OutputNotRegular {
        /// The path.
        path: PathBuf,
    },
    /// The `--output` file cannot be opened, read, cut back or written.
    #[error("--output {}: {source}", path.display())]
    OutputIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The state directory's record of the `--output` file does not decode.
    #[error(
        "--output {}: the state directory's record of this file is not readable ({detail}); \
         give another --state DIR",
        path.display()
    )]
    OutputMark {
        /// The file.
        path: PathBuf,
        /// What is wrong with the record.
        detail: String,
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
    /// With `--output FILE`: the file, cut back to the committed state and caught up.
    pub(crate) output: Option<Arc<OutputFile>>,
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
    /// With `output` (`--output FILE`), the file is made to match the committed state before
    /// anything else writes to it ([`open_output`]). Without it, an output mark left by a
    /// run with `--output` is removed: the file's next run starts a new stretch of lines
    /// instead of cutting it back to a length from before this run.
    ///
    /// Blocks while the store verifies the whole file: inside a runtime, call it through
    /// [`blocking`] (as `run` does).
    ///
    /// # Errors
    /// The store cannot be opened or read; the output file does not match the state
    /// ([`StateError::OutputMissing`], [`StateError::OutputShorter`]...).
    pub(crate) fn open(dir: &Path, output: Option<&Path>) -> Result<State, StateError> {
        let open = |source| StateError::Open { source };
        let store = Store::open(dir).map_err(open)?;
        let points = store.resume_points().map_err(open)?;
        let output = match output {
            Some(path) => Some(Arc::new(open_output(&store, path)?)),
            None => {
                forget_output(&store).map_err(open)?;
                None
            }
        };
        Ok(State {
            store: Arc::new(store),
            points: Arc::new(points),
            events: Vec::new(),
            properties: Vec::new(),
            dir: dir.to_owned(),
            output,
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

/// The store's meta key of the output mark.
const OUTPUT_MARK: &str = "wot-dashboard.output";
/// The output mark's format: version, file length (u64, little-endian), the file's absolute
/// path.
const MARK_VERSION: u8 = 1;
/// Re-written lines are handed to the file in pieces of about this size.
const REWRITE_CHUNK: usize = 1 << 20;

fn encode_mark(len: u64, id: &[u8]) -> Vec<u8> {
    let mut mark = Vec::with_capacity(9 + id.len());
    mark.push(MARK_VERSION);
    mark.extend_from_slice(&len.to_le_bytes());
    mark.extend_from_slice(id);
    mark
}

/// (length, path) of an output mark.
fn decode_mark(mark: &[u8]) -> Result<(u64, &[u8]), String> {
    match mark {
        [MARK_VERSION, rest @ ..] if rest.len() >= 8 => {
            let (len, id) = rest.split_at(8);
            let mut bytes = [0; 8];
            bytes.copy_from_slice(len);
            Ok((u64::from_le_bytes(bytes), id))
        }
        [MARK_VERSION, ..] => Err(format!("{} bytes, too short", mark.len())),
        [version, ..] => Err(format!("format {version}, this build reads {MARK_VERSION}")),
        [] => Err("empty".into()),
    }
}

/// The absolute path of `path` as recorded in the state directory: its directory resolved
/// (symbolic links, `..`), its name as given.
fn output_id(path: &Path) -> std::io::Result<Vec<u8>> {
    let absolute = std::path::absolute(path)?;
    let resolved = match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => parent.canonicalize()?.join(name),
        _ => absolute,
    };
    #[cfg(unix)]
    let id = std::os::unix::ffi::OsStrExt::as_bytes(resolved.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let id = resolved.to_string_lossy().into_owned().into_bytes();
    Ok(id)
}

/// Opens the `--output` file at `path` and makes it match the committed state: when the
/// store's output mark is for this file, the file is cut back to the marked length and the
/// lines of every record committed from the marked history position on are written again
/// (rendered by [`headless::render`], as live lines are); else (no mark, or one for another
/// path) lines are appended to it as it is (made if missing).
///
/// # Errors
/// The marked file is missing or shorter than the mark, the path is not a regular file, or
/// the file cannot be opened, cut back or written.
pub(crate) fn open_output(store: &Store, path: &Path) -> Result<OutputFile, StateError> {
    let io = |source| StateError::OutputIo {
        path: path.to_owned(),
        source,
    };
    let id = output_id(path).map_err(io)?;
    if encode_mark(0, &id).len() > wot_store::MAX_META_VALUE_BYTES {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path is too long to record in the state directory",
        )));
    }
    let meta = store
        .meta(OUTPUT_MARK)
        .map_err(|source| StateError::Open { source })?;
    let mark = match &meta {
        Some(meta) => {
            let (marked, marked_id) =
                decode_mark(&meta.value).map_err(|detail| StateError::OutputMark {
                    path: path.to_owned(),
                    detail,
                })?;
            if marked_id == id.as_slice() {
                Some((marked, meta.history))
            } else {
                tracing::warn!(
                    path = %path.display(),
                    "the state directory's lines went to another --output file; appending to this one as it is"
                );
                None
            }
        }
        None => None,
    };
    // Checked before opening too: opening a pipe for writing waits for a reader.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(StateError::OutputNotRegular {
            path: path.to_owned(),
        });
    }
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(mark.is_none())
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(match mark {
                Some((marked, _)) => StateError::OutputMissing {
                    path: path.to_owned(),
                    marked,
                },
                None => io(error),
            });
        }
        // A directory cannot be opened for writing.
        Err(_) if path.is_dir() => {
            return Err(StateError::OutputNotRegular {
                path: path.to_owned(),
            });
        }
        Err(error) => return Err(io(error)),
    };
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(StateError::OutputNotRegular {
            path: path.to_owned(),
        });
    }
    if let Some((marked, from)) = mark {
        if metadata.len() < marked {
            return Err(StateError::OutputShorter {
                path: path.to_owned(),
                len: metadata.len(),
                marked,
            });
        }
        file.set_len(marked).map_err(io)?;
        let (written, skipped) = rewrite(store, from, &file).map_err(|error| match error {
            Rewrite::Store(source) => StateError::Open { source },
            Rewrite::Io(source) => io(source),
        })?;
        if skipped > 0 {
            tracing::warn!(
                blocks = skipped,
                "some history in the state directory could not be read: its lines are not written again"
            );
        }
        tracing::info!(
            path = %path.display(),
            cut = metadata.len() - marked,
            lines = written,
            "--output caught up with the state directory"
        );
    }
    Ok(OutputFile::new(path.to_owned(), file, id))
}

/// Why the lines of the last batch could not be written again.
enum Rewrite {
    Store(wot_store::Error),
    Io(std::io::Error),
}

/// Appends to `file` the lines of every record committed from `from` on; returns (records
/// written, history blocks skipped).
fn rewrite(
    store: &Store,
    from: wot_store::HistoryPosition,
    mut file: &std::fs::File,
) -> Result<(usize, usize), Rewrite> {
    use std::io::Write as _;
    let mut lines = Vec::new();
    let mut written = 0;
    let mut failed = None;
    let skipped = store
        .history_since(from, |record| {
            let item = match record {
                HistoryRecord::Event(record) => Feed::Event(record),
                HistoryRecord::Property(update) => Feed::Property(update),
                _ => return,
            };
            headless::render(std::slice::from_ref(&item), &mut lines);
            written += 1;
            if lines.len() >= REWRITE_CHUNK && failed.is_none() {
                failed = file.write_all(&lines).err();
                lines.clear();
            }
        })
        .map_err(Rewrite::Store)?;
    if let Some(error) = failed {
        return Err(Rewrite::Io(error));
    }
    file.write_all(&lines).map_err(Rewrite::Io)?;
    Ok((written, skipped))
}

/// Removes the output mark, if any (a run without `--output`).
fn forget_output(store: &Store) -> Result<(), wot_store::Error> {
    // A mark that does not decode is removed too.
    if let Ok(None) = store.meta(OUTPUT_MARK) {
        return Ok(());
    }
    let mut batch = Batch::new();
    batch.remove_meta(OUTPUT_MARK)?;
    store.submit_blocking(batch)?.wait()
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
/// write), and never print an item twice. When `print` writes to the `--output` file, each
/// batch also commits the output mark (the file's length before its lines), and the next
/// start writes those lines again ([`open_output`]): none is lost.
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
    print: Option<Printer>,
) -> (impl Stream<Item = Feed> + Send + 'static, StopFeed) {
    committed_with(feed, store, points, print)
}

/// [`committed`] with any [`Saver`] (tests use one that fails on demand).
fn committed_with<S: Saver>(
    feed: impl Stream<Item = Feed> + Send + 'static,
    saver: Arc<S>,
    points: Arc<ResumePoints>,
    print: Option<Printer>,
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

/// Where committed items go: their lines to stdout or the `--output` file (with `print`), the
/// items to the consumer.
struct Out {
    tx: mpsc::Sender<Feed>,
    print: Option<Printer>,
}

impl Out {
    /// The lines `items` will print, rendered ahead.
    fn render(&self, items: &[Feed]) -> Vec<u8> {
        let mut lines = Vec::new();
        if self.print.is_some() {
            headless::render(items, &mut lines);
        }
        lines
    }

    /// The `--output` file, whose mark each batch commits.
    fn file(&self) -> Option<&OutputFile> {
        self.print.as_ref()?.file().map(|file| &**file)
    }

    /// Writes `lines` (in one call, on a blocking thread), then hands on `items`; `false` when
    /// stdout's reader or the consumer is gone (or the file cannot be written).
    async fn emit(&mut self, lines: Vec<u8>, items: impl IntoIterator<Item = Feed>) -> bool {
        if let Some(printer) = self.print.clone().filter(|_| !lines.is_empty()) {
            let written = tokio::task::spawn_blocking(move || printer.lines(&lines));
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
                let commit = match submit(&**saver, &points, &items, out.file()).await {
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

/// Submits one batch: the history records of `items`, the resume points advanced since the
/// last batch and, with an `--output` file, its mark (its length now: every line of the
/// batches committed before is in it, and none of this one's).
async fn submit(
    saver: &impl Saver,
    points: &ResumePoints,
    items: &[Feed],
    output: Option<&OutputFile>,
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
    if let Some(file) = output {
        let len = file.len().map_err(|source| wot_store::Error::Io {
            path: file.path().to_owned(),
            source: Arc::new(source),
        })?;
        batch.set_meta(OUTPUT_MARK, &encode_mark(len, file.id()))?;
    }
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
    use std::io::Write as _;
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
            data: json!({"n": id}).into(),
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
        let state = State::open(&dir, None).expect("opens");
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
        let (out, _stop) = committed(feed, state.store.clone(), points, None);
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
        let state = State::open(&dir, None).expect("opens");
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
        let (out, _stop) = committed_with(feed, flaky.clone(), points, None);
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
        let state = State::open(&dir, None).expect("opens");
        // A real error from a closed store: a handle that outlived it.
        let gone = Store::open(dir.join("gone")).expect("opens");
        let alerts = gone.alerts();
        drop(gone);
        let error = alerts.load_now().expect_err("the store is closed");
        assert!(error.is_closed(), "{error}");
        let feed = futures::stream::iter(1..=5u64).map(|id| Feed::Event(event(id)));
        let (out, _stop) =
            committed_with(feed, Arc::new(Closed(error)), state.points.clone(), None);
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
        let state = State::open(&dir, None).expect("opens");
        let (held, released) = futures::channel::oneshot::channel::<()>();
        let feed = futures::stream::iter([Feed::Event(event(1))]).chain(
            futures::stream::pending().map(move |()| {
                let _ = &held;
                Feed::Problem(String::new())
            }),
        );
        let (out, _stop) = committed(feed, state.store, state.points, None);
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
        let state = State::open(&dir, None).expect("opens");
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
        let (out, stop) = committed(feed, state.store.clone(), state.points.clone(), None);
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

    fn level(id: u64) -> PropertyUpdate {
        PropertyUpdate {
            thing_id: "urn:t".into(),
            property: "level".into(),
            value: json!(id as f64 / 4.0).into(),
            timestamp: SystemTime::now(),
            event_id: Some(id.to_string().into()),
            schema_violation: id.is_multiple_of(2).then(|| "over \u{9b} max".to_owned()),
        }
    }

    /// The lines of `items`, as the live path renders them, one string each.
    fn rendered(items: &[Feed]) -> Vec<String> {
        let mut bytes = Vec::new();
        headless::render(items, &mut bytes);
        String::from_utf8(bytes)
            .expect("UTF-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Commits `items` with an output mark saying `path` held `len` bytes before their lines.
    fn commit_marked(store: &Store, items: &[Feed], path: &Path, len: u64) {
        let mut batch = Batch::new();
        for item in items {
            match item {
                Feed::Event(record) => batch.push_event(record),
                Feed::Property(update) => batch.push_property(update),
                _ => continue,
            };
        }
        let id = output_id(path).expect("the path resolves");
        batch
            .set_meta(OUTPUT_MARK, &encode_mark(len, &id))
            .expect("fits");
        store
            .submit_blocking(batch)
            .expect("queued")
            .wait()
            .expect("committed");
    }

    fn sorted(mut lines: Vec<String>) -> Vec<String> {
        lines.sort();
        lines
    }

    /// At start, a file longer than its mark (the lines of the last batch, whole or cut by a
    /// kill, and lines that are not records) is cut back to the mark, and the lines of the
    /// last batch's records are written again, byte for byte as the live path renders them.
    #[test]
    fn a_file_longer_than_its_mark_is_cut_back_and_the_last_batch_written_again() {
        let dir = temp_dir("output-cut");
        let path = dir.join("out.jsonl");
        let state = State::open(&dir.join("state"), None).expect("opens");
        let before = "{\"type\":\"event\",\"id\":\"0\"}\n";
        std::fs::write(&path, before).expect("written");
        commit_marked(&state.store, &[Feed::Event(event(0))], &path, 0);
        let last = [
            Feed::Event(event(1)),
            Feed::Property(level(2)),
            Feed::Event(event(3)),
            Feed::Property(level(4)),
        ];
        commit_marked(&state.store, &last, &path, before.len() as u64);
        // The kill came in the middle of the batch's lines, after a connection line.
        let written = rendered(&last);
        let torn = format!(
            "{{\"type\":\"connection\"}}\n{}\n{}",
            written[0],
            &written[1][..10]
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(torn.as_bytes()))
            .expect("appended");

        let file = open_output(&state.store, &path).expect("caught up");
        let text = std::fs::read_to_string(&path).expect("reads");
        let (kept, again) = text.split_at(before.len());
        assert_eq!(kept, before);
        let again: Vec<String> = again.lines().map(str::to_owned).collect();
        assert!(text.ends_with('\n'));
        assert_eq!(
            sorted(again),
            sorted(written),
            "each record once, as rendered live"
        );
        assert_eq!(file.len().expect("length"), text.len() as u64);

        // A second start before anything new was committed does the same again.
        drop(file);
        open_output(&state.store, &path).expect("caught up again");
        assert_eq!(std::fs::read_to_string(&path).expect("reads"), text);
        drop(state);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file shorter than its mark, a missing one, or a path that is not a regular file is a
    /// typed error naming the path, and the file is left as it is.
    #[test]
    fn a_short_missing_or_irregular_output_file_is_a_typed_error_with_its_path() {
        let dir = temp_dir("output-short");
        let path = dir.join("out.jsonl");
        let state = State::open(&dir.join("state"), None).expect("opens");
        std::fs::write(&path, "{}\n").expect("written");
        commit_marked(&state.store, &[Feed::Event(event(1))], &path, 100);
        let error = open_output(&state.store, &path).expect_err("shorter");
        assert!(
            matches!(&error, StateError::OutputShorter { len: 3, marked: 100, path: p } if *p == path),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains("--output") && text.contains(&path.display().to_string()),
            "{text}"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("reads"), "{}\n");

        std::fs::remove_file(&path).expect("removed");
        let error = open_output(&state.store, &path).expect_err("missing");
        assert!(
            matches!(&error, StateError::OutputMissing { marked: 100, .. }),
            "{error:?}"
        );
        assert!(!path.exists(), "not made again");

        let error = open_output(&state.store, &dir).expect_err("a directory");
        assert!(
            matches!(&error, StateError::OutputNotRegular { .. }),
            "{error:?}"
        );
        // A pipe: refused at once, not waited on for a reader.
        let fifo = dir.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let error = open_output(&state.store, &fifo).expect_err("a pipe");
            assert!(
                matches!(&error, StateError::OutputNotRegular { .. }),
                "{error:?}"
            );
        }
        drop(state);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A mark for another file leaves this one as it is (a new path starts a new file); a run
    /// without `--output` removes the mark.
    #[test]
    fn another_path_appends_and_a_run_without_output_forgets_the_mark() {
        let dir = temp_dir("output-other");
        let (old, new) = (dir.join("old.jsonl"), dir.join("new.jsonl"));
        let state_dir = dir.join("state");
        let state = State::open(&state_dir, None).expect("opens");
        std::fs::write(&old, "").expect("written");
        commit_marked(&state.store, &[Feed::Event(event(1))], &old, 0);
        std::fs::write(&new, "{\"kept\":1}\n").expect("written");
        open_output(&state.store, &new).expect("appends");
        assert_eq!(
            std::fs::read_to_string(&new).expect("reads"),
            "{\"kept\":1}\n"
        );
        assert!(state.store.meta(OUTPUT_MARK).expect("reads").is_some());
        drop(state);

        let state = State::open(&state_dir, None).expect("opens");
        assert_eq!(state.store.meta(OUTPUT_MARK).expect("reads"), None);
        drop(state);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Through the commit loop: every item's line is in the file once, and the mark says how
    /// long the file was before the last batch's lines.
    #[tokio::test]
    async fn each_batch_commits_the_length_of_the_file_before_its_lines() {
        let dir = temp_dir("output-loop");
        let path = dir.join("out.jsonl");
        let state_dir = dir.join("state");
        let output = path.clone();
        let state = blocking(move || State::open(&state_dir, Some(&output)))
            .await
            .expect("opens");
        let printer = Printer::to_file(state.output.clone().expect("the file"));
        let items: Vec<Feed> = (1..=30u64)
            .map(|id| {
                if id.is_multiple_of(3) {
                    Feed::Property(level(id))
                } else {
                    Feed::Event(event(id))
                }
            })
            .collect();
        let want = rendered(&items);
        let store = state.store.clone();
        let (out, _stop) = committed(
            futures::stream::iter(items),
            state.store.clone(),
            state.points.clone(),
            Some(printer),
        );
        let seen = out.collect::<Vec<Feed>>().await.len();
        assert_eq!(seen, 30);
        let text = std::fs::read_to_string(&path).expect("reads");
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        assert_eq!(lines, want, "every line once, in order");
        let meta = store.meta(OUTPUT_MARK).expect("reads").expect("marked");
        let (len, id) = decode_mark(&meta.value).expect("decodes");
        assert_eq!(id, output_id(&path).expect("resolves").as_slice());
        let mut last = 0;
        store
            .history_since(meta.history, |_| last += 1)
            .expect("reads");
        assert!(last > 0, "the last batch held records");
        let tail: usize = want[want.len() - last..].iter().map(|l| l.len() + 1).sum();
        assert_eq!(
            len as usize,
            text.len() - tail,
            "the length before the last batch"
        );
        drop((store, state));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
