//! `--web`: the dashboard as a web page, a third consumer of the live feed beside the
//! terminal UI and the headless printer.
//!
//! ```text
//!  Live { feed, links, alerts } ──► run loop ──► Hub { Model, Journal } ◄── GET /api/snapshot
//!                                      │            (one lock)        └──► GET /api/stream (SSE)
//!                                      └── 1 s tick: statistics, alert lists
//!  POST /api/alerts/acknowledge, POST /api/silences ──► AlertManager ──► Hub
//! ```
//!
//! The run loop applies each feed item to the [`state::Model`] and appends the change, as a
//! numbered Server-Sent Events frame, to the [`journal::Journal`], both under one lock. A
//! snapshot is taken under the same lock with the journal's last id, so a page that loads
//! the snapshot and then streams from its `last_id` sees every change once. Stream clients
//! read the journal by id (a slow client holds only its position) and resume with
//! `Last-Event-ID`; a position the bounded journal no longer covers gets a `reset`.
//!
//! The server binds 127.0.0.1 unless told otherwise; on a non-loopback address it generates
//! a token (unless `--web-token` gives one) that every POST must carry. The exact wire
//! format is in `docs/dashboard.md` ("The API"); the limits are [`WebLimits`].

mod conn;
pub mod journal;
mod routes;
pub mod state;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::{Stream, StreamExt, stream};
use rand::RngExt;
use tokio::sync::{Semaphore, watch};
use wot_alerts::{AlertManager, RuleSet};
use wot_events::{ConnectionState, ConsumedThing};

use crate::cli::Options;
use crate::headless;
use crate::live::{Feed, LinkWatch, Live};
use journal::Journal;
use state::Model;

pub use routes::CSP;

/// How often statistics and alert lists are refreshed (and sent when they changed).
const REFRESH: Duration = Duration::from_secs(1);
/// How long a stopping server waits for open requests before closing them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The bounds of the web dashboard. Everything a Thing or a browser controls that the server
/// keeps is bounded by one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebLimits {
    /// Live changes kept for resuming streams (default 10,000).
    pub replay_events: usize,
    /// Bytes of live changes kept for resuming streams (default 32 MiB).
    pub replay_bytes: usize,
    /// Live streams open at once; more get 503 (default 64).
    pub clients: usize,
    /// Connections open at once, of every kind; more wait in the listen queue (default
    /// 256).
    pub connections: usize,
    /// Time without a byte read or written after which a connection is closed (default
    /// 60 s; more than `keep_alive`, so that an open live stream is never idle).
    pub idle: Duration,
    /// Snapshots built at once (each is a copy of the whole state, tens of MiB with full
    /// histories); more requests wait their turn (default 4).
    pub snapshots: usize,
    /// Events in the timeline (default 1000, `--log-entries`).
    pub timeline: usize,
    /// Bytes of the timeline (default 4 MiB, `--log-bytes`).
    pub timeline_bytes: usize,
    /// Bytes of one event's data; larger data keeps the start of its JSON text (default
    /// 16 KiB).
    pub entry_bytes: usize,
    /// Bytes of one property or alert value; larger values keep the start of their JSON text
    /// (default 4 KiB).
    pub value_bytes: usize,
    /// How far back property histories go (default 15 minutes).
    pub history: Duration,
    /// Values kept per property (default 3600: 15 minutes at 4 a second).
    pub history_values: usize,
    /// Bytes of property history, all properties together (default 16 MiB,
    /// `--history-bytes`): with many properties each keeps fewer values.
    pub history_bytes: usize,
    /// Active alerts listed (default 256).
    pub alerts: usize,
    /// Resolved alerts listed (default 20).
    pub resolved: usize,
    /// Silences in force at once (default 256).
    pub silences: usize,
    /// Notices kept (default 50).
    pub notices: usize,
    /// Characters of one text: notice, summary, comment, connection error (default 512).
    pub text_chars: usize,
    /// Bytes of a POST body (default 16 KiB).
    pub body_bytes: usize,
    /// Quiet time after which a stream sends a `: keep-alive` comment (default 15 s).
    pub keep_alive: Duration,
    /// The reconnection time a stream announces with `retry:` (default 2 s).
    pub retry: Duration,
}

impl WebLimits {
    /// The defaults.
    pub const DEFAULT: WebLimits = WebLimits {
        replay_events: 10_000,
        replay_bytes: 32 << 20,
        clients: 64,
        snapshots: 4,
        connections: 256,
        idle: Duration::from_secs(60),
        timeline: 1000,
        timeline_bytes: 4 << 20,
        entry_bytes: 16 << 10,
        value_bytes: 4 << 10,
        history: Duration::from_secs(900),
        history_values: 3600,
        history_bytes: 16 << 20,
        alerts: 256,
        resolved: 20,
        silences: 256,
        notices: 50,
        text_chars: 512,
        body_bytes: 16 << 10,
        keep_alive: Duration::from_secs(15),
        retry: Duration::from_secs(2),
    };

    /// The defaults with the sizes the options ask for.
    pub fn from_options(options: &Options) -> Self {
        WebLimits {
            timeline: options.log_entries,
            timeline_bytes: options.log_bytes,
            history_bytes: options.history_bytes,
            ..Self::DEFAULT
        }
    }
}

impl Default for WebLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why the web dashboard could not run.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The address cannot be listened on.
    #[error("cannot listen on {addr} (--web): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The state and the journal, changed together under one lock.
#[derive(Debug)]
pub(crate) struct Hub {
    pub(crate) model: Model,
    pub(crate) journal: Journal,
}

/// What the handlers share with the run loop.
#[derive(Debug)]
pub(crate) struct Server {
    hub: Mutex<Hub>,
    /// The journal's last id, for waking stream clients.
    changed: watch::Sender<u64>,
    alerts: AlertManager,
    token: Option<String>,
    clients: Arc<Semaphore>,
    /// Places for snapshots being built ([`WebLimits::snapshots`]).
    snapshots: Semaphore,
    closing: AtomicBool,
    check_host: bool,
    limits: WebLimits,
}

impl Server {
    fn new(
        model: Model,
        journal: Journal,
        alerts: AlertManager,
        token: Option<String>,
        check_host: bool,
        limits: WebLimits,
    ) -> Self {
        let (changed, _) = watch::channel(journal.last_id());
        Server {
            hub: Mutex::new(Hub { model, journal }),
            changed,
            alerts,
            token,
            clients: Arc::new(Semaphore::new(limits.clients)),
            snapshots: Semaphore::new(limits.snapshots.max(1)),
            closing: AtomicBool::new(false),
            check_host,
            limits,
        }
    }

    /// Runs `f` on the hub under its lock, then wakes the stream clients if the journal grew.
    pub(crate) fn with_hub<R>(&self, f: impl FnOnce(&mut Hub) -> R) -> R {
        let (result, last) = {
            let mut hub = self.hub.lock().unwrap_or_else(PoisonError::into_inner);
            let result = f(&mut hub);
            (result, hub.journal.last_id())
        };
        self.changed.send_if_modified(|seen| {
            let grew = *seen != last;
            *seen = last;
            grew
        });
        result
    }

    /// Applies one feed item and journals what changed.
    fn apply(&self, item: Feed) {
        self.with_hub(|hub| match item {
            Feed::Property(update) => {
                if let Some(data) = hub.model.property(&update) {
                    hub.journal.push("property", &data);
                }
            }
            Feed::Event(record) => {
                let data = hub.model.event(&record);
                hub.journal.push("event", &data);
            }
            Feed::Alert(notification) => {
                let (kind, text) = Model::notification_notice(&notification);
                let notice = hub.model.notice(notification.at, kind, &text);
                hub.journal.push("notice", &notice);
                if let Some(alerts) = hub.model.refresh_alerts(&self.alerts) {
                    hub.journal.push("alerts", &alerts);
                }
            }
            Feed::Problem(text) => {
                let notice = hub.model.notice(SystemTime::now(), "problem", &text);
                hub.journal.push("notice", &notice);
            }
            Feed::Skipped(skipped) => {
                let text = skipped.to_string();
                let notice = hub.model.notice(SystemTime::now(), "problem", &text);
                hub.journal.push("notice", &notice);
            }
        });
    }

    /// Records a connection's state; journals it when it changed.
    fn link(&self, thing: &str, label: &str, state: &ConnectionState) {
        self.with_hub(|hub| {
            if let Some(data) = hub.model.link(thing, label, state) {
                hub.journal.push("link", &data);
            }
        });
    }

    /// Re-reads the alert lists; journals them when they changed.
    pub(crate) fn refresh_alerts(&self) {
        self.with_hub(|hub| {
            if let Some(alerts) = hub.model.refresh_alerts(&self.alerts) {
                hub.journal.push("alerts", &alerts);
            }
        });
    }

    /// Recomputes statistics and alert lists; journals what changed.
    fn refresh(&self, now: SystemTime) {
        self.with_hub(|hub| {
            if let Some(stats) = hub.model.refresh_stats(now) {
                hub.journal.push("stats", &stats);
            }
            if let Some(alerts) = hub.model.refresh_alerts(&self.alerts) {
                hub.journal.push("alerts", &alerts);
            }
        });
    }
}

/// A fresh token: 32 random hexadecimal characters.
fn generate_token() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

/// A stream of `(thing, label, state)` for every change of every connection.
fn link_changes(
    links: Vec<LinkWatch>,
) -> impl Stream<Item = (String, String, ConnectionState)> + Send + Unpin {
    stream::select_all(links.into_iter().map(|(thing, label, state)| {
        Box::pin(stream::unfold(
            (thing, label, state),
            |(thing, label, mut state)| async move {
                state.changed().await.ok()?;
                let now = state.borrow_and_update().clone();
                Some(((thing.clone(), label.clone(), now), (thing, label, state)))
            },
        ))
    }))
}

/// The URL the page is at, with the token in the fragment (which browsers do not send).
fn page_url(addr: SocketAddr, token: Option<&str>) -> String {
    match token {
        Some(token) => format!("http://{addr}/#token={token}"),
        None => format!("http://{addr}/"),
    }
}

/// Serves the dashboard at `--web`'s address until the feed ends or `stop` completes (then
/// its output is returned). Prints `web: URL` on stdout once listening.
///
/// # Errors
/// The address cannot be listened on.
pub(crate) async fn run<T>(
    live: Live,
    things: &[ConsumedThing],
    rules: &RuleSet,
    options: &Options,
    stop: impl Future<Output = T>,
) -> Result<Option<T>, WebError> {
    let addr = options
        .web
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8765)));
    let token = options
        .web_token
        .clone()
        .or_else(|| (!addr.ip().is_loopback()).then(generate_token));
    let limits = WebLimits::from_options(options);
    let Live {
        mut feed,
        links,
        alerts,
        rule_warnings,
        restored,
        feed_prints,
        stop: stop_feed,
        printer: headless_printer,
        ..
    } = live;
    let mut connections = options
        .headless
        .then(|| headless::connection_lines(links.clone()));
    let mut model = Model::new(things, rules, rule_warnings.clone(), limits);
    for (thing, label, state) in &links {
        model.link(thing, label, &state.borrow());
    }
    // The history from the state directory, before the journal starts: it is in the
    // snapshot, not replayed as live changes.
    let restored = restored.map(|(restored, events, properties)| {
        for record in &events {
            model.event(record);
        }
        for update in &properties {
            model.property(update);
        }
        model.notice(
            SystemTime::now(),
            "info",
            &format!("restored: {}", restored.summary()),
        );
        // The page does not show the server's path; the JSON line on stdout does.
        model.set_restored(restored.counts_json());
        restored.to_json()
    });
    let journal = Journal::new(
        Journal::first_id_at(SystemTime::now()),
        limits.replay_events,
        limits.replay_bytes,
    );
    let server = Arc::new(Server::new(
        model,
        journal,
        alerts,
        token,
        addr.ip().is_loopback(),
        limits,
    ));
    server.refresh(SystemTime::now());

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| WebError::Bind { addr, source })?;
    let url = page_url(local, server.token.as_deref());
    // `--headless` beside `--web`: the JSON lines of the feed, with the URL as one of them.
    let printer = options.headless.then_some(headless_printer);
    match &printer {
        Some(printer) => {
            if !printer.line(&serde_json::json!({"type": "web", "url": url}))
                || restored
                    .as_ref()
                    .is_some_and(|r| !printer.line(&headless::restored_line(r)))
                || !printer.rule_warnings(&rule_warnings)
            {
                return Ok(None);
            }
        }
        None => println!("web: {url}"),
    }
    tracing::info!(%local, token = server.token.is_some(), "web dashboard listening");
    let (shutdown, on_shutdown) = tokio::sync::oneshot::channel::<()>();
    let app = routes::router(server.clone());
    let listener = conn::Limited::new(listener, limits.connections, limits.idle);
    let mut serving = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = on_shutdown.await;
            })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "the web server stopped");
        }
    });

    let mut stop = std::pin::pin!(stop);
    let mut links = link_changes(links);
    let mut links_open = true;
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let halt = loop {
        tokio::select! {
            item = feed.next() => match item {
                Some(item) => {
                    if printer.as_ref().is_some_and(|p| !p.item(&item, feed_prints)) {
                        break None; // the reader of the JSON lines went away
                    }
                    server.apply(item);
                }
                None => break None,
            },
            line = async { connections.as_mut()?.next().await }, if connections.is_some() => match line {
                Some(line) => {
                    if printer.as_ref().is_some_and(|p| !p.line(&line)) {
                        break None;
                    }
                }
                None => connections = None,
            },
            change = links.next(), if links_open => match change {
                Some((thing, label, state)) => server.link(&thing, &label, &state),
                None => links_open = false,
            },
            _ = tick.tick() => server.refresh(SystemTime::now()),
            halt = &mut stop => {
                // What the feed took is committed and shown (and printed) before the end.
                crate::persist::drain(&mut feed, stop_feed.as_ref(), |item| {
                    if printer.as_ref().is_some_and(|p| !p.item(&item, feed_prints)) {
                        return false;
                    }
                    server.apply(item);
                    true
                })
                .await;
                break Some(halt);
            }
        }
    };

    crate::persist::flush_alerts(&server.alerts).await;
    // Streams end at once; other requests get a moment to finish.
    server.closing.store(true, Ordering::SeqCst);
    server.changed.send_modify(|_| {});
    let _ = shutdown.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut serving)
        .await
        .is_err()
    {
        serving.abort();
    }
    Ok(halt)
}

#[cfg(test)]
mod tests;
