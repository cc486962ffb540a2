//! The async shell: runs the [`Engine`] on tokio, drives its timer and runs actions.
//!
//! One driver task owns the update stream and sleeps until the engine's next deadline. Each
//! action has its own worker task behind a bounded queue, so a slow or failing action delays
//! neither evaluation nor other actions; a full queue drops the job and reports it.
//!
//! Shutting down: the driver stops (no more updates or deadlines), each worker closes its
//! queue, delivers what is queued until the deadline, and hands back what it could not deliver.
//!
//! With a state store, a committer task owns the writes: it takes the engine's changes and the
//! new notifications, commits them with one outbox entry per action to run, and only then
//! hands the notifications to the workers; a worker reports each job it finished, and the next
//! commit marks it done. Notifications, new alerts (so that a restarted engine never gives an
//! alert id out again), acknowledgements and silences are committed at once; other series
//! changes (values, update times) wait for the commit interval.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures_util::{Stream, StreamExt};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::RuleSet;
use crate::engine::{Alert, Engine, Notification, PropertyUpdate, Silence, SilenceId};
use crate::error::{Error, ErrorKind};
use crate::rule::{ActionSpec, Condition, NotificationKind, Rule};
use crate::state::RestoreReport;
use crate::store::{AlertBatch, AlertStore, OutboxEntry, OutboxKey, OutboxOp, StoredAlerts};

/// The error type user callbacks return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type CallbackFn = Arc<
    dyn Fn(Notification) -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>
        + Send
        + Sync,
>;

/// What subscribers of [`AlertManager::subscribe`] receive.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ManagerEvent {
    /// A notification from the engine (silenced ones are never produced).
    Notification(Arc<Notification>),
    /// An action gave up on a notification.
    ActionFailed(ActionFailure),
    /// This subscriber fell behind and missed this many events.
    Lagged {
        /// How many events were skipped.
        missed: u64,
    },
    /// A commit to the state store failed ([`ErrorKind::Store`], the store's error as the
    /// source). The notifications of the batch are still delivered; the batch is tried again
    /// with the next commit.
    StoreFailed(Error),
}

/// What [`AlertManagerBuilder::start_restored`] restored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Restored {
    /// What the engine restored and dropped; `None` without a store or when the store was
    /// empty.
    pub report: Option<RestoreReport>,
    /// Actions of the outbox not done before the restart, queued again.
    pub resent: usize,
}

/// An action that did not complete for a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActionFailure {
    /// The action's name.
    pub action: String,
    /// The rule of the notification.
    pub rule: String,
    /// The thing of the notification.
    pub thing: String,
    /// The notification kind.
    pub kind: NotificationKind,
    /// Attempts made (0 when the job was dropped because the queue was full, or was still
    /// queued at the shutdown deadline).
    pub attempts: u32,
    /// The last error: [`ErrorKind::Request`], [`ErrorKind::Status`], [`ErrorKind::Timeout`]
    /// or [`ErrorKind::Callback`] for a failed attempt, [`ErrorKind::QueueFull`] or
    /// [`ErrorKind::Shutdown`] for a job that was not attempted to the end. It shows no
    /// secrets (URLs lose their user info and query).
    pub error: Error,
}

impl ActionFailure {
    fn new(action: &str, n: &Notification, attempts: u32, error: Error) -> Self {
        ActionFailure {
            action: action.to_owned(),
            rule: n.alert.rule.clone(),
            thing: n.alert.thing.clone(),
            kind: n.kind,
            attempts,
            error,
        }
    }
}

/// Default of [`AlertManagerBuilder::queue_capacity`].
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;
/// Largest [`AlertManagerBuilder::queue_capacity`].
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;
/// Default of [`AlertManagerBuilder::events_capacity`].
pub const DEFAULT_EVENTS_CAPACITY: usize = 1024;
/// Largest [`AlertManagerBuilder::events_capacity`] (the buffer is allocated up front).
pub const MAX_EVENTS_CAPACITY: usize = 1 << 16;
/// Default of [`AlertManagerBuilder::action_timeout`].
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between two attempts of an action.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Default of [`AlertManagerBuilder::commit_interval`].
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Default of [`AlertManagerBuilder::commit_timeout`].
pub const DEFAULT_COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds an [`AlertManager`]. Every setting has a default, given in its doc; a setting out
/// of range is reported by [`start`](Self::start), naming it.
#[must_use]
pub struct AlertManagerBuilder {
    rules: RuleSet,
    callbacks: HashMap<String, CallbackFn>,
    things: HashMap<String, wot_td::Thing>,
    #[cfg(feature = "http-actions")]
    client: Option<reqwest::Client>,
    history_limit: usize,
    history_bytes: usize,
    series_limit: usize,
    queue_capacity: usize,
    events_capacity: usize,
    action_timeout: Duration,
    retries: u32,
    backoff: Duration,
    start_time: Option<SystemTime>,
    store: Option<Arc<dyn AlertStore>>,
    commit_interval: Duration,
    commit_timeout: Duration,
}

impl AlertManagerBuilder {
    /// Keeps the engine's state (alerts, acknowledgements, silences, series) and an outbox of
    /// the actions to run in `store`, so that a restarted manager goes on where this one
    /// stopped: start it with [`start_restored`](Self::start_restored). Each notification is
    /// committed, with one outbox entry per action it runs, before its actions run; an entry
    /// is marked done once its action succeeded or failed for good (and was reported), and
    /// entries not done are run again at the next start. Default: no store (state in memory
    /// only).
    pub fn state_store(mut self, store: Arc<dyn AlertStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// With a [state store](Self::state_store), how long series changes that notify nothing
    /// (a new value, an update time) may wait before they are committed; notifications, new
    /// (pending) alerts, acknowledgements, silences and rule changes are committed at once. A
    /// crash loses at most this much of such changes: the engine then sees the latest values
    /// before it, as if the updates in between had not arrived. Default 1 s; must be longer than 0.
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// With a [state store](Self::state_store), how long a commit may take before it counts
    /// as failed: its notifications are then delivered anyway (reported as
    /// [`ManagerEvent::StoreFailed`]) and its changes are committed again with the next batch,
    /// so a store that hangs delays notifications by at most this much. Default 10 s; must be
    /// longer than 0.
    pub fn commit_timeout(mut self, timeout: Duration) -> Self {
        self.commit_timeout = timeout;
        self
    }

    /// Registers the callback run by `callback` actions named `name`.
    pub fn callback<F, Fut>(mut self, name: impl Into<String>, callback: F) -> Self
    where
        F: Fn(Notification) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.callbacks
            .insert(name.into(), Arc::new(move |n| Box::pin(callback(n))));
        self
    }

    /// Adds a Thing's TD: its property units feed `{{unit}}`, and `invoke_action` actions find
    /// their forms in it. Things without an `id` are ignored. Default: no TDs.
    pub fn thing(mut self, thing: wot_td::Thing) -> Self {
        if let Some(id) = thing.id.clone() {
            self.things.insert(id, thing);
        }
        self
    }

    /// The HTTP client for `webhook` and `invoke_action`. Default: a client that follows
    /// redirects within the request's origin only ([`same_origin_redirects`]) and connects
    /// within 5 s. A client given here keeps its own redirect policy: build it with
    /// [`same_origin_redirects`] so that credentials cannot follow a redirect elsewhere.
    ///
    /// [`same_origin_redirects`]: crate::same_origin_redirects
    #[cfg(feature = "http-actions")]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Resolved alerts kept in [`AlertManager::history`]. Default 1000.
    pub fn history_limit(mut self, limit: usize) -> Self {
        self.history_limit = limit;
        self
    }

    /// Bytes of resolved alerts kept in [`AlertManager::history`], estimated from their
    /// strings, labels and values; the oldest go first. Default 4 MiB.
    pub fn history_bytes(mut self, bytes: usize) -> Self {
        self.history_bytes = bytes;
        self
    }

    /// (rule, thing) series tracked; past it, updates that would start a new series are
    /// ignored and logged (see [`Engine::with_series_limit`]). Default 100,000.
    pub fn series_limit(mut self, limit: usize) -> Self {
        self.series_limit = limit;
        self
    }

    /// Jobs each action may have waiting; more are dropped and reported. Default 64, from 1
    /// to [`MAX_QUEUE_CAPACITY`].
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Events buffered for slow subscribers before they lag. Default 1024, from 1 to
    /// [`MAX_EVENTS_CAPACITY`].
    pub fn events_capacity(mut self, capacity: usize) -> Self {
        self.events_capacity = capacity;
        self
    }

    /// Time limit of one action attempt, from sending the request to its response head
    /// (response bodies are not read). Default 10 s; must be longer than 0.
    pub fn action_timeout(mut self, timeout: Duration) -> Self {
        self.action_timeout = timeout;
        self
    }

    /// Retries after a failed attempt, unless its error [is terminal](Error::is_terminal).
    /// Default 3.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Wait before the first retry; doubled before each further one, at most 1 minute.
    /// Default 500 ms; at most 1 minute.
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// The wall-clock time the manager's clock starts at; it then advances with
    /// `tokio::time`, so paused-time tests are exact. Default: `SystemTime::now()`.
    pub fn start_time(mut self, time: SystemTime) -> Self {
        self.start_time = Some(time);
        self
    }

    fn check_settings(&self) -> Result<(), Error> {
        let range = |setting, value: usize, max: usize| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(Error::bad_setting(
                    setting,
                    format!("{value} is not between 1 and {max}"),
                ))
            }
        };
        range("queue_capacity", self.queue_capacity, MAX_QUEUE_CAPACITY)?;
        range("events_capacity", self.events_capacity, MAX_EVENTS_CAPACITY)?;
        if self.action_timeout.is_zero() {
            return Err(Error::bad_setting(
                "action_timeout",
                "must be longer than 0",
            ));
        }
        if self.commit_interval.is_zero() {
            return Err(Error::bad_setting(
                "commit_interval",
                "must be longer than 0",
            ));
        }
        if self.commit_timeout.is_zero() {
            return Err(Error::bad_setting(
                "commit_timeout",
                "must be longer than 0",
            ));
        }
        if self.backoff > MAX_BACKOFF {
            return Err(Error::bad_setting(
                "backoff",
                format!("{:?} is longer than {MAX_BACKOFF:?}", self.backoff),
            ));
        }
        Ok(())
    }

    /// Starts the manager on the current tokio runtime, consuming `updates`. Evaluation and
    /// timers go on after the stream ends, until the manager is shut down or dropped.
    ///
    /// # Errors
    /// An [`Error`] of kind [`ErrorKind::Setting`] for a setting out of range (naming it),
    /// [`ErrorKind::Rule`] for an invalid rule, [`ErrorKind::MissingCallback`],
    /// [`ErrorKind::ActionTarget`] when an `invoke_action` target cannot be resolved,
    /// [`ErrorKind::Unsupported`] for an HTTP action without the `http-actions` feature, and
    /// [`ErrorKind::HttpClient`] when the default HTTP client cannot be built.
    ///
    /// A manager with a [state store](Self::state_store) starts with
    /// [`start_restored`](Self::start_restored) instead, which loads it: `start` refuses it
    /// with an [`ErrorKind::Setting`] error naming `state_store`.
    pub fn start<S>(self, updates: S) -> Result<AlertManager, Error>
    where
        S: Stream<Item = PropertyUpdate> + Send + 'static,
    {
        if self.store.is_some() {
            return Err(Error::bad_setting(
                "state_store",
                "a manager with a state store starts with `start_restored`, which loads it",
            ));
        }
        self.launch(updates, None).map(|(manager, _)| manager)
    }

    /// Starts the manager like [`start`](Self::start), after loading the
    /// [state store](Self::state_store), if any: the engine is restored from the saved state
    /// (see the restart rule of [`EngineState`](crate::EngineState)) at the manager's start
    /// time, and the outbox entries not done are queued again for their actions (in
    /// notification order; entries of actions no longer defined are marked done and logged).
    /// Without a store it is `start`.
    ///
    /// # Errors
    /// As [`start`](Self::start), and [`ErrorKind::Store`] when the store fails to load,
    /// [`ErrorKind::State`] when the engine refuses the saved state (another version, say).
    ///
    /// # Examples
    /// A manager stopped without [`shutdown`](AlertManager::shutdown) and started again from
    /// its store: the firing alert is still firing, and not notified again.
    /// ```
    /// use std::sync::Arc;
    /// use wot_alerts::{AlertManager, AlertState, Format, MemoryAlertStore, PropertyUpdate, RuleSet};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rules = RuleSet::from_str(
    ///     "rules: [{ id: hot, thing: fridge-1, property: temperature, condition: { gt: 8 } }]",
    ///     Format::Yaml,
    ///     "inline",
    /// )?;
    /// let store = Arc::new(MemoryAlertStore::new()); // a database in a real application
    /// let (tx, rx) = tokio::sync::mpsc::channel(16);
    /// let (manager, _) = AlertManager::builder(rules.clone())
    ///     .state_store(store.clone())
    ///     .start_restored(tokio_stream::wrappers::ReceiverStream::new(rx))
    ///     .await?;
    /// tx.send(PropertyUpdate::new("fridge-1", "temperature", serde_json::json!(9))).await?;
    /// # while manager.active_alerts().is_empty() { tokio::task::yield_now().await; }
    /// manager.flush().await?; // or wait for the notification's own commit
    /// drop(manager); // a crash
    ///
    /// let (manager, restored) = AlertManager::builder(rules)
    ///     .state_store(store)
    ///     .start_restored(futures_util::stream::pending())
    ///     .await?;
    /// assert_eq!(restored.report.map(|r| r.firing), Some(1));
    /// assert_eq!(manager.active_alerts()[0].state, AlertState::Firing);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_restored<S>(self, updates: S) -> Result<(AlertManager, Restored), Error>
    where
        S: Stream<Item = PropertyUpdate> + Send + 'static,
    {
        self.check_settings()?;
        let loaded = match &self.store {
            Some(store) => store.load().await.map_err(|e| {
                Error::new(ErrorKind::Store, "loading the alert state failed").with_source(e)
            })?,
            None => None,
        };
        self.launch(updates, loaded)
    }

    fn launch<S>(
        self,
        updates: S,
        loaded: Option<StoredAlerts>,
    ) -> Result<(AlertManager, Restored), Error>
    where
        S: Stream<Item = PropertyUpdate> + Send + 'static,
    {
        self.check_settings()?;
        self.rules.check_action_names()?;
        let clock = Clock {
            wall: self.start_time.unwrap_or_else(SystemTime::now),
            mono: Instant::now(),
        };
        let now = clock.now();
        let mut engine = Engine::new()
            .with_history_limit(self.history_limit)
            .with_history_bytes(self.history_bytes)
            .with_series_limit(self.series_limit);
        for thing in self.things.values() {
            crate::td::set_units(&mut engine, thing);
        }
        for rule in self.rules.rules() {
            engine.add_rule(rule.clone(), now)?;
        }
        let mut restored = Restored::default();
        let mut outbox = Vec::new();
        if let Some(loaded) = loaded {
            let report = engine.restore(loaded.state, now).map_err(|e| {
                Error::new(ErrorKind::State, "the saved alert state was refused").with_source(e)
            })?;
            tracing::info!(
                series = report.series,
                pending = report.pending,
                firing = report.firing,
                silences = report.silences,
                dropped = report.dropped(),
                times_clamped = report.times_clamped,
                saved_time_ahead_secs = report.saved_time_ahead.map(|d| d.as_secs()),
                outbox = loaded.outbox.len(),
                "alert state restored"
            );
            restored.report = Some(report);
            outbox = loaded.outbox;
        }
        let link = self.store.clone().map(|store| {
            Arc::new(StoreLink {
                store,
                urgent: Notify::new(),
                lazy: Notify::new(),
                done: Mutex::new(Vec::new()),
                requested: AtomicU64::new(0),
                committed: watch::channel((0, None)).0,
                closing: AtomicBool::new(false),
                interval: self.commit_interval,
                timeout: self.commit_timeout,
                retry: Mutex::new(None),
            })
        });
        let (events, _) = broadcast::channel(self.events_capacity);
        #[cfg(feature = "http-actions")]
        let mut client = self.client.clone();
        let mut specs: Vec<(String, ActionSpec)> = self
            .rules
            .actions()
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        if !specs.iter().any(|(n, _)| n == "log") {
            specs.push(("log".into(), ActionSpec::Log { on: None }));
        }
        let (stop, _) = watch::channel(None);
        let mut workers = Vec::new();
        let mut actions = HashMap::new();
        for (name, spec) in specs {
            let runner = match &spec {
                ActionSpec::Log { .. } => Runner::Log,
                ActionSpec::Callback { .. } => {
                    Runner::Callback(self.callbacks.get(&name).cloned().ok_or_else(|| {
                        Error::new(
                            ErrorKind::MissingCallback,
                            format!(
                                "action `{name}` is a callback, but no callback was registered \
                                 under that name"
                            ),
                        )
                    })?)
                }
                #[cfg(feature = "http-actions")]
                ActionSpec::Webhook { .. } | ActionSpec::InvokeAction { .. } => {
                    let client = match &client {
                        Some(c) => c.clone(),
                        None => client.insert(crate::http_action::default_client()?).clone(),
                    };
                    Runner::Http(crate::http_action::HttpAction::new(
                        &name,
                        &spec,
                        client,
                        &self.things,
                    )?)
                }
                #[cfg(not(feature = "http-actions"))]
                ActionSpec::Webhook { .. } | ActionSpec::InvokeAction { .. } => {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "action `{name}` sends HTTP requests, which needs the \
                             `http-actions` feature of wot-alerts"
                        ),
                    ));
                }
            };
            let (tx, rx) = mpsc::channel(self.queue_capacity);
            let worker = Worker {
                name: name.clone(),
                runner,
                events: events.clone(),
                timeout: self.action_timeout,
                retries: self.retries,
                backoff: self.backoff,
                link: link.clone(),
            };
            workers.push(tokio::spawn(worker.run(rx, stop.subscribe())));
            actions.insert(name, (spec, tx));
        }
        // The outbox of the previous run, in notification order.
        outbox.sort_by_key(OutboxEntry::key);
        let mut resend = Vec::new();
        for entry in outbox {
            match actions.get(&entry.action) {
                Some((_, tx)) => {
                    let rule = engine.rule(&entry.alert.rule).cloned();
                    resend.push((tx.clone(), resent_job(entry, rule)));
                }
                None => {
                    tracing::warn!(action = %entry.action, rule = %entry.alert.rule, "the action of an outbox entry is no longer defined; entry dropped");
                    if let Some(link) = &link {
                        link.finished(entry.key());
                    }
                }
            }
        }
        restored.resent = resend.len();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                engine,
                outbox: Vec::new(),
            }),
            events,
            actions,
            wake: Notify::new(),
            clock,
            link: link.clone(),
        });
        let committer = link.map(|link| tokio::spawn(commit_loop(Arc::clone(&shared), link)));
        // Queued by a task: an outbox larger than a queue waits for room rather than dropping.
        let resender = (!resend.is_empty()).then(|| {
            tokio::spawn(async move {
                for (tx, job) in resend {
                    if tx.send(job).await.is_err() {
                        break; // shutting down: the rest stays in the outbox
                    }
                }
            })
        });
        let driver = tokio::spawn(drive(Arc::clone(&shared), updates));
        Ok((
            AlertManager {
                shared,
                driver: Some(driver),
                workers,
                committer,
                resender,
                stop,
            },
            restored,
        ))
    }
}

/// A job for an outbox entry of the previous run. Its rule is looked up by id; a rule no
/// longer loaded is stood in for by one with the alert's identity and no actions.
fn resent_job(entry: OutboxEntry, rule: Option<Arc<Rule>>) -> Job {
    let key = entry.key();
    let rule = rule.unwrap_or_else(|| {
        Arc::new(Rule::new(
            entry.alert.rule.clone(),
            entry.alert.thing.clone(),
            entry.alert.property.clone(),
            Condition::Changed(true),
        ))
    });
    Job {
        notification: Notification {
            id: entry.notification,
            kind: entry.kind,
            at: entry.at,
            repeat: entry.repeat,
            previous_severity: entry.previous_severity,
            alert: Arc::new(entry.alert),
            rule,
            unit: entry.unit,
        },
        key: Some(key),
    }
}

/// One action to run for one notification; `key` names its outbox entry when there is a store.
struct Job {
    notification: Notification,
    key: Option<OutboxKey>,
}

/// The manager's side of its state store, shared by the committer, the workers and the API.
struct StoreLink {
    store: Arc<dyn AlertStore>,
    /// Something to commit at once (notifications, acknowledgements, silences, done jobs).
    urgent: Notify,
    /// Series changes that may wait for the commit interval.
    lazy: Notify,
    /// Outbox entries whose action finished since the last commit.
    done: Mutex<Vec<OutboxKey>>,
    /// Flushes asked for so far; a commit covers those asked for before it began.
    requested: AtomicU64,
    /// The flushes covered by the latest commit, and its error.
    committed: watch::Sender<(u64, Option<Error>)>,
    /// Set by `shutdown`: the committer commits once more and stops.
    closing: AtomicBool,
    interval: Duration,
    /// How long a commit may take before it counts as failed.
    timeout: Duration,
    /// A batch whose commit failed, tried again with the next.
    retry: Mutex<Option<AlertBatch>>,
}

impl StoreLink {
    /// Notes that the action of outbox entry `key` finished; the next commit marks it done.
    fn finished(&self, key: OutboxKey) {
        lock(&self.done).push(key);
        self.urgent.notify_one();
    }
}

/// Locks `m`, going on after a panic elsewhere: the data it guards stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Commits what changed whenever there is something to, until the manager shuts down.
async fn commit_loop(shared: Arc<Shared>, link: Arc<StoreLink>) {
    loop {
        tokio::select! {
            () = link.urgent.notified() => {}
            () = link.lazy.notified() => {
                tokio::select! {
                    () = link.urgent.notified() => {}
                    () = tokio::time::sleep(link.interval) => {}
                }
            }
        }
        // Read before taking the changes: what was finished before `closing` is included.
        let closing = link.closing.load(Ordering::Acquire);
        commit_once(&shared, &link).await;
        if closing {
            break;
        }
    }
}

/// One commit: the engine's changes, outbox entries for the new notifications and done marks;
/// then the notifications go to their actions.
async fn commit_once(shared: &Shared, link: &StoreLink) {
    let target = link.requested.load(Ordering::Acquire);
    let (changes, notifications) = {
        let mut inner = shared.lock();
        let changes = inner.engine.take_changes();
        (changes, std::mem::take(&mut inner.outbox))
    };
    let mut ops = Vec::new();
    for n in &notifications {
        for name in shared.actions_for(n) {
            ops.push(OutboxOp::Add(Box::new(OutboxEntry {
                notification: n.id,
                action: name.clone(),
                kind: n.kind,
                at: n.at,
                repeat: n.repeat,
                previous_severity: n.previous_severity,
                alert: Alert::clone(&n.alert),
                unit: n.unit.clone(),
            })));
        }
    }
    ops.extend(
        std::mem::take(&mut *lock(&link.done))
            .into_iter()
            .map(OutboxOp::Done),
    );
    let mut batch = AlertBatch {
        changes,
        outbox: ops,
    };
    if let Some(mut earlier) = lock(&link.retry).take() {
        earlier.changes.merge(batch.changes);
        earlier.outbox.append(&mut batch.outbox);
        batch = earlier;
    }
    let mut error = None;
    if !(batch.changes.is_empty() && batch.outbox.is_empty()) {
        let outcome = tokio::time::timeout(link.timeout, link.store.commit(batch.clone())).await;
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(
                Error::new(ErrorKind::Store, "committing the alert state failed").with_source(e),
            ),
            Err(_) => Some(
                Error::new(ErrorKind::Store, "committing the alert state timed out")
                    .with_timeout(link.timeout),
            ),
        };
        if let Some(e) = failure {
            tracing::warn!(error = %error_chain(&e), "alert state not committed; tried again with the next commit");
            let _ = shared.events.send(ManagerEvent::StoreFailed(e.clone()));
            error = Some(e);
            // Applying a batch again does no harm: its series and entries are written as
            // they are, so a commit that timed out but landed later is safe to repeat.
            *lock(&link.retry) = Some(batch);
            link.lazy.notify_one();
        }
    }
    link.committed.send_replace((target, error));
    shared.dispatch(notifications);
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    wall: SystemTime,
    mono: Instant,
}

impl Clock {
    fn now(&self) -> SystemTime {
        self.wall
            .checked_add(self.mono.elapsed())
            .unwrap_or(self.wall)
    }

    fn instant_at(&self, t: SystemTime) -> Instant {
        let offset = t.duration_since(self.wall).unwrap_or(Duration::ZERO);
        // Past what `Instant` can hold: a year from now is as good as never, and is rechecked.
        self.mono.checked_add(offset).unwrap_or_else(far_future)
    }
}

fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(86_400 * 365))
        .unwrap_or(now)
}

struct Shared {
    inner: Mutex<Inner>,
    events: broadcast::Sender<ManagerEvent>,
    actions: HashMap<String, (ActionSpec, mpsc::Sender<Job>)>,
    wake: Notify,
    clock: Clock,
    link: Option<Arc<StoreLink>>,
}

/// What the engine lock guards: the engine, and with a store, the notifications it produced
/// that the committer has not taken yet (in order).
struct Inner {
    engine: Engine,
    outbox: Vec<Notification>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the engine half-updated in a way that
        // matters more than stopping; keep serving.
        lock(&self.inner)
    }

    /// Runs `f` on the engine and sends its notifications on: with a store, to the committer
    /// (at once when there are notifications, a new alert or `urgent`, else within the commit
    /// interval); without, to the actions.
    fn emit<T>(&self, urgent: bool, f: impl FnOnce(&mut Engine) -> (T, Vec<Notification>)) -> T {
        let mut inner = self.lock();
        let next_alert = inner.engine.next_alert_id();
        let (result, notifications) = f(&mut inner.engine);
        match &self.link {
            Some(link) => {
                // A new alert (a pending one notifies nothing) is committed at once: its id
                // may be shown through the API, and must not be given again after a crash.
                let new_alert = inner.engine.next_alert_id() != next_alert;
                let urgent = urgent || new_alert || !notifications.is_empty();
                inner.outbox.extend(notifications);
                drop(inner);
                if urgent {
                    link.urgent.notify_one();
                } else {
                    link.lazy.notify_one();
                }
            }
            None => {
                drop(inner);
                self.dispatch(notifications);
            }
        }
        result
    }

    /// The actions that run on `n`: those of its rule that are defined and run on its kind.
    fn actions_for<'a>(&'a self, n: &'a Notification) -> impl Iterator<Item = &'a String> + 'a {
        n.rule.actions.iter().filter(|name| {
            self.actions
                .get(*name)
                .is_some_and(|(spec, _)| spec.runs_on(n.kind))
        })
    }

    fn dispatch(&self, notifications: Vec<Notification>) {
        for n in notifications {
            for name in self.actions_for(&n) {
                let Some((_, tx)) = self.actions.get(name) else {
                    continue;
                };
                let job = Job {
                    notification: n.clone(),
                    key: self
                        .link
                        .as_ref()
                        .map(|_| OutboxKey::new(n.id, name.clone())),
                };
                if let Err(mpsc::error::TrySendError::Full(job)) = tx.try_send(job) {
                    tracing::warn!(action = %name, rule = %n.alert.rule, "action queue full; notification dropped");
                    let error = Error::new(
                        ErrorKind::QueueFull,
                        format!("action `{name}`: queue full; the notification was dropped"),
                    );
                    let failure = ActionFailure::new(name, &n, 0, error);
                    let _ = self.events.send(ManagerEvent::ActionFailed(failure));
                    if let (Some(link), Some(key)) = (&self.link, job.key) {
                        link.finished(key);
                    }
                }
            }
            let _ = self.events.send(ManagerEvent::Notification(Arc::new(n)));
        }
    }
}

async fn drive<S>(shared: Arc<Shared>, updates: S)
where
    S: Stream<Item = PropertyUpdate> + Send + 'static,
{
    let mut updates = std::pin::pin!(updates.fuse());
    let mut open = true;
    loop {
        let deadline = shared.lock().engine.next_deadline();
        let sleep_until = deadline.map(|d| shared.clock.instant_at(d));
        tokio::select! {
            update = updates.next(), if open => match update {
                Some(update) => {
                    let now = shared.clock.now();
                    shared.emit(false, |engine| ((), engine.update(now, &update)));
                }
                None => open = false,
            },
            () = sleep(sleep_until) => {
                let now = shared.clock.now();
                shared.emit(false, |engine| ((), engine.tick(now)));
            }
            () = shared.wake.notified() => {}
        }
    }
}

async fn sleep(until: Option<Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

enum Runner {
    Log,
    Callback(CallbackFn),
    #[cfg(feature = "http-actions")]
    Http(crate::http_action::HttpAction),
}

/// An error and its sources, `: `-separated, for logs (reqwest puts the redirect refusal in a
/// source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Resolves once a shutdown was requested, with its deadline. Never, if the manager is gone
/// without one (its `Drop` aborts the workers).
async fn stop_requested(stop: &mut watch::Receiver<Option<Instant>>) -> Instant {
    loop {
        if let Some(at) = *stop.borrow_and_update() {
            return at;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

struct Worker {
    name: String,
    runner: Runner,
    events: broadcast::Sender<ManagerEvent>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    link: Option<Arc<StoreLink>>,
}

impl Worker {
    /// Runs jobs until the queue closes. After a shutdown request the queue is closed, the
    /// jobs in it are delivered until the deadline, and those that were not are returned.
    async fn run(
        self,
        mut jobs: mpsc::Receiver<Job>,
        mut stop: watch::Receiver<Option<Instant>>,
    ) -> Vec<ActionFailure> {
        let mut deadline: Option<Instant> = None;
        let mut undelivered = Vec::new();
        loop {
            let job = match deadline {
                // Closed: what is queued, then `None`.
                Some(_) => jobs.recv().await,
                None => tokio::select! {
                    job = jobs.recv() => job,
                    at = stop_requested(&mut stop) => {
                        deadline = Some(at);
                        jobs.close();
                        continue;
                    }
                },
            };
            let Some(Job {
                notification: n,
                key,
            }) = job
            else {
                break;
            };
            let attempts = AtomicU32::new(0);
            let late = deadline.is_some_and(|at| Instant::now() >= at);
            let outcome = if late {
                None
            } else {
                let delivery = self.deliver(&n, &attempts);
                tokio::pin!(delivery);
                loop {
                    match deadline {
                        None => tokio::select! {
                            result = &mut delivery => break Some(result),
                            at = stop_requested(&mut stop) => {
                                deadline = Some(at);
                                jobs.close();
                            }
                        },
                        Some(at) => break tokio::time::timeout_at(at, &mut delivery).await.ok(),
                    }
                }
            };
            let attempts = attempts.load(Ordering::Relaxed);
            if outcome.is_some()
                && let (Some(link), Some(key)) = (&self.link, key)
            {
                link.finished(key);
            }
            match outcome {
                Some(Ok(())) => {}
                Some(Err(error)) => {
                    tracing::warn!(action = %self.name, rule = %n.alert.rule, thing = %n.alert.thing, attempts, error = %error_chain(&error), "action failed");
                    let failure = ActionFailure::new(&self.name, &n, attempts, error);
                    let _ = self.events.send(ManagerEvent::ActionFailed(failure));
                }
                None => {
                    let error = Error::new(
                        ErrorKind::Shutdown,
                        format!(
                            "action `{}`: not delivered before the shutdown deadline",
                            self.name
                        ),
                    );
                    undelivered.push(ActionFailure::new(&self.name, &n, attempts, error));
                }
            }
        }
        undelivered
    }

    /// Attempts the job until it succeeds, fails with a terminal error, or runs out of
    /// retries; counts the attempts in `attempts`.
    async fn deliver(&self, n: &Notification, attempts: &AtomicU32) -> Result<(), Error> {
        let mut wait = self.backoff;
        loop {
            let made = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            let error = match tokio::time::timeout(self.timeout, self.attempt(n)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => Error::new(ErrorKind::Timeout, format!("action `{}`", self.name))
                    .with_timeout(self.timeout),
            };
            tracing::debug!(action = %self.name, attempt = made, error = %error_chain(&error), "action attempt failed");
            if error.is_terminal() || made > self.retries {
                return Err(error);
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2).min(MAX_BACKOFF);
        }
    }

    async fn attempt(&self, n: &Notification) -> Result<(), Error> {
        match &self.runner {
            Runner::Log => {
                let a = &n.alert;
                match n.kind {
                    NotificationKind::Resolved | NotificationKind::Acknowledged => {
                        tracing::info!(rule = %a.rule, thing = %a.thing, kind = %n.kind, severity = %a.severity, "{}", a.summary)
                    }
                    _ => {
                        tracing::warn!(rule = %a.rule, thing = %a.thing, kind = %n.kind, severity = %a.severity, "{}", a.summary)
                    }
                }
                Ok(())
            }
            Runner::Callback(f) => f(n.clone()).await.map_err(|e| {
                Error::new(
                    ErrorKind::Callback,
                    format!("callback `{}` failed", self.name),
                )
                .with_source(e)
            }),
            #[cfg(feature = "http-actions")]
            Runner::Http(action) => action.send(n, &self.name).await,
        }
    }
}

/// Runs an [`Engine`] on tokio: consumes a stream of updates, drives the timer, runs actions,
/// and lets you manage rules, alerts and silences while it runs.
///
/// [`shutdown`](Self::shutdown) stops it gracefully, delivering queued actions within a
/// deadline. Dropping it stops its tasks at once: no task outlives the manager, and queued
/// actions are lost.
///
/// # Examples
/// ```
/// use futures_util::StreamExt;
/// use wot_alerts::{AlertManager, Format, ManagerEvent, PropertyUpdate, RuleSet};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let rules = RuleSet::from_str(
///     "rules: [{ id: hot, thing: fridge-1, property: temperature, condition: { gt: 8 } }]",
///     Format::Yaml,
///     "inline",
/// )?;
/// let (tx, rx) = tokio::sync::mpsc::channel(16);
/// let manager = AlertManager::builder(rules)
///     .start(tokio_stream::wrappers::ReceiverStream::new(rx))?;
/// let mut events = manager.subscribe();
/// tx.send(PropertyUpdate::new("fridge-1", "temperature", serde_json::json!(9))).await?;
/// let Some(ManagerEvent::Notification(n)) = events.next().await else { panic!() };
/// assert_eq!(n.alert.rule, "hot");
/// assert_eq!(manager.active_alerts().len(), 1);
/// # Ok(())
/// # }
/// ```
#[must_use = "dropping the manager stops it"]
pub struct AlertManager {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<Vec<ActionFailure>>>,
    /// Commits to the state store, with one.
    committer: Option<JoinHandle<()>>,
    /// Queues the outbox of the previous run, when it had one.
    resender: Option<JoinHandle<()>>,
    /// The shutdown deadline, once asked for.
    stop: watch::Sender<Option<Instant>>,
}

impl Drop for AlertManager {
    fn drop(&mut self) {
        for task in [&self.driver, &self.committer, &self.resender]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        for worker in &self.workers {
            worker.abort();
        }
    }
}

impl std::fmt::Debug for AlertManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertManager")
            .field("actions", &self.shared.actions.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl AlertManager {
    /// A builder for a manager running `rules`.
    pub fn builder(rules: RuleSet) -> AlertManagerBuilder {
        AlertManagerBuilder {
            rules,
            callbacks: HashMap::new(),
            things: HashMap::new(),
            #[cfg(feature = "http-actions")]
            client: None,
            history_limit: 1000,
            history_bytes: 4 << 20,
            series_limit: 100_000,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            events_capacity: DEFAULT_EVENTS_CAPACITY,
            action_timeout: DEFAULT_ACTION_TIMEOUT,
            retries: 3,
            backoff: Duration::from_millis(500),
            start_time: None,
            store: None,
            commit_interval: DEFAULT_COMMIT_INTERVAL,
            commit_timeout: DEFAULT_COMMIT_TIMEOUT,
        }
    }

    /// The manager's current time.
    pub fn now(&self) -> SystemTime {
        self.shared.clock.now()
    }

    /// Stops the manager gracefully: it stops reading updates and running deadlines at once,
    /// then each action delivers the jobs already queued (retries included) until `deadline`
    /// has passed. Returns the jobs not delivered by then, each with an
    /// [`ErrorKind::Shutdown`] error and the attempts made. Failures before the deadline are
    /// reported to subscribers as usual.
    ///
    /// With a [state store](AlertManagerBuilder::state_store), what changed is then committed
    /// (waiting for that commit up to the deadline, and at least 1 s); the jobs not delivered
    /// stay in the outbox and are run again by the next
    /// [`start_restored`](AlertManagerBuilder::start_restored).
    ///
    /// # Examples
    /// ```
    /// # use std::time::Duration;
    /// # use wot_alerts::{AlertManager, RuleSet};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), wot_alerts::Error> {
    /// let manager = AlertManager::builder(RuleSet::new()).start(futures_util::stream::empty())?;
    /// let undelivered = manager.shutdown(Duration::from_secs(5)).await;
    /// assert!(undelivered.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn shutdown(mut self, deadline: Duration) -> Vec<ActionFailure> {
        for task in [self.driver.take(), self.resender.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
            let _ = task.await;
        }
        let at = Instant::now()
            .checked_add(deadline)
            .unwrap_or_else(far_future);
        let _ = self.stop.send(Some(at));
        let mut undelivered = Vec::new();
        for worker in std::mem::take(&mut self.workers) {
            if let Ok(mut left) = worker.await {
                undelivered.append(&mut left);
            }
        }
        if let (Some(mut committer), Some(link)) = (self.committer.take(), &self.shared.link) {
            link.closing.store(true, Ordering::Release);
            link.urgent.notify_one();
            let wait = at
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            if tokio::time::timeout(wait, &mut committer).await.is_err() {
                // No task outlives the manager: what was not committed is lost, as in a crash.
                committer.abort();
                tracing::warn!("the last commit of the alert state did not finish in time");
            }
        }
        undelivered
    }

    /// Waits until everything that changed before the call (notifications and their outbox
    /// entries, acknowledgements, silences, rules, series) is committed to the
    /// [state store](AlertManagerBuilder::state_store). Returns at once without a store.
    ///
    /// # Errors
    /// [`ErrorKind::Store`] when that commit failed (it is tried again with the next).
    pub async fn flush(&self) -> Result<(), Error> {
        let Some(link) = &self.shared.link else {
            return Ok(());
        };
        let target = link.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let mut committed = link.committed.subscribe();
        link.urgent.notify_one();
        loop {
            {
                let (done, error) = &*committed.borrow_and_update();
                if *done >= target {
                    return error.clone().map_or(Ok(()), Err);
                }
            }
            if committed.changed().await.is_err() {
                return Err(Error::new(
                    ErrorKind::Shutdown,
                    "the manager stopped before the commit",
                ));
            }
        }
    }

    /// A stream of notifications, action failures and lag reports from now on. Each
    /// subscriber has its own buffer (see [`AlertManagerBuilder::events_capacity`]).
    #[must_use = "streams do nothing unless polled"]
    pub fn subscribe(&self) -> impl Stream<Item = ManagerEvent> + Send + 'static + use<> {
        BroadcastStream::new(self.shared.events.subscribe()).map(|item| match item {
            Ok(event) => event,
            Err(BroadcastStreamRecvError::Lagged(missed)) => ManagerEvent::Lagged { missed },
        })
    }

    /// Adds a rule at run time.
    ///
    /// # Errors
    /// An [`ErrorKind::Rule`] error when it is invalid, its id is taken, or it names an
    /// unknown action.
    pub fn add_rule(&self, rule: Rule) -> Result<(), Error> {
        if let Some(name) = rule
            .actions
            .iter()
            .find(|a| !self.shared.actions.contains_key(*a))
        {
            return Err(Error::rule_field(
                &rule.id,
                "actions",
                format!("action `{name}` is not defined"),
            ));
        }
        let now = self.now();
        self.shared
            .emit(true, |engine| (engine.add_rule(rule, now), Vec::new()))?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Removes a rule; its firing alerts resolve (and are notified). Returns whether it existed.
    pub fn remove_rule(&self, id: &str) -> bool {
        let now = self.now();
        let found = self
            .shared
            .emit(true, |engine| match engine.remove_rule(id, now) {
                Some((_, notifications)) => (true, notifications),
                None => (false, Vec::new()),
            });
        self.shared.wake.notify_one();
        found
    }

    /// The rule ids, in the order they were added.
    pub fn rule_ids(&self) -> Vec<String> {
        self.shared
            .lock()
            .engine
            .rules()
            .map(|r| r.id.clone())
            .collect()
    }

    /// Pending and firing alerts, by rule then thing.
    pub fn active_alerts(&self) -> Vec<Alert> {
        self.shared.lock().engine.active_alerts()
    }

    /// Resolved alerts, oldest first (bounded, see [`AlertManagerBuilder::history_limit`]).
    pub fn history(&self) -> Vec<Alert> {
        self.shared
            .lock()
            .engine
            .history()
            .iter()
            .map(|a| Alert::clone(a))
            .collect()
    }

    /// Acknowledges a firing alert (see [`Engine::acknowledge`]). With a state store the
    /// acknowledgement is committed at once, after this returns ([`flush`](Self::flush) waits
    /// for it).
    ///
    /// # Errors
    /// As [`Engine::acknowledge`]: [`ErrorKind::NoActiveAlert`] or [`ErrorKind::NotFiring`].
    pub fn acknowledge(
        &self,
        rule: &str,
        thing: &str,
        by: impl Into<String>,
        comment: Option<String>,
    ) -> Result<(), Error> {
        let now = self.now();
        self.shared.emit(true, |engine| {
            match engine.acknowledge(now, rule, thing, by, comment) {
                Ok(n) => (Ok(()), n),
                Err(e) => (Err(e), Vec::new()),
            }
        })?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Adds a silence. With a state store it is committed at once (see
    /// [`flush`](Self::flush) to wait for that).
    pub fn add_silence(&self, silence: Silence) -> SilenceId {
        self.shared
            .emit(true, |engine| (engine.add_silence(silence), Vec::new()))
    }

    /// Removes a silence; returns whether it existed.
    pub fn remove_silence(&self, id: SilenceId) -> bool {
        self.shared.emit(true, |engine| {
            (engine.remove_silence(id).is_some(), Vec::new())
        })
    }

    /// The silences, by id.
    pub fn silences(&self) -> Vec<(SilenceId, Silence)> {
        self.shared
            .lock()
            .engine
            .silences()
            .map(|(id, s)| (id, s.clone()))
            .collect()
    }
}
