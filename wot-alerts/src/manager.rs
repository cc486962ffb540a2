//! The async shell: runs the [`Engine`] on tokio, drives its timer and runs actions.
//!
//! One driver task owns the update stream and sleeps until the engine's next deadline. Each
//! action has its own worker task behind a bounded queue, so a slow or failing action delays
//! neither evaluation nor other actions; a full queue drops the job and reports it.
//!
//! Shutting down: the driver stops (no more updates or deadlines), each worker closes its
//! queue, delivers what is queued until the deadline, and hands back what it could not deliver.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
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
use crate::rule::{ActionSpec, NotificationKind, Rule};

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
}

impl AlertManagerBuilder {
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
    pub fn start<S>(self, updates: S) -> Result<AlertManager, Error>
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
            };
            workers.push(tokio::spawn(worker.run(rx, stop.subscribe())));
            actions.insert(name, (spec, tx));
        }
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            events,
            actions,
            wake: Notify::new(),
            clock,
        });
        let driver = tokio::spawn(drive(Arc::clone(&shared), updates));
        Ok(AlertManager {
            shared,
            driver: Some(driver),
            workers,
            stop,
        })
    }
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
    engine: Mutex<Engine>,
    events: broadcast::Sender<ManagerEvent>,
    actions: HashMap<String, (ActionSpec, mpsc::Sender<Notification>)>,
    wake: Notify,
    clock: Clock,
}

impl Shared {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock cannot leave the engine half-updated in a way that
        // matters more than stopping; keep serving.
        self.engine.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dispatch(&self, notifications: Vec<Notification>) {
        for n in notifications {
            for name in &n.rule.actions {
                let Some((spec, tx)) = self.actions.get(name) else {
                    continue;
                };
                if !spec.runs_on(n.kind) {
                    continue;
                }
                if let Err(mpsc::error::TrySendError::Full(n)) = tx.try_send(n.clone()) {
                    tracing::warn!(action = %name, rule = %n.alert.rule, "action queue full; notification dropped");
                    let error = Error::new(
                        ErrorKind::QueueFull,
                        format!("action `{name}`: queue full; the notification was dropped"),
                    );
                    let failure = ActionFailure::new(name, &n, 0, error);
                    let _ = self.events.send(ManagerEvent::ActionFailed(failure));
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
        let deadline = shared.engine().next_deadline();
        let sleep_until = deadline.map(|d| shared.clock.instant_at(d));
        tokio::select! {
            update = updates.next(), if open => match update {
                Some(update) => {
                    let now = shared.clock.now();
                    let n = shared.engine().update(now, &update);
                    shared.dispatch(n);
                }
                None => open = false,
            },
            () = sleep(sleep_until) => {
                let now = shared.clock.now();
                let n = shared.engine().tick(now);
                shared.dispatch(n);
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
}

impl Worker {
    /// Runs jobs until the queue closes. After a shutdown request the queue is closed, the
    /// jobs in it are delivered until the deadline, and those that were not are returned.
    async fn run(
        self,
        mut jobs: mpsc::Receiver<Notification>,
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
            let Some(n) = job else { break };
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
/// tx.send(PropertyUpdate::new("fridge-1", "temperature", 9.into())).await?;
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
    /// The shutdown deadline, once asked for.
    stop: watch::Sender<Option<Instant>>,
}

impl Drop for AlertManager {
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.abort();
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
        if let Some(driver) = self.driver.take() {
            driver.abort();
            let _ = driver.await;
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
        undelivered
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
        self.shared.engine().add_rule(rule, now)?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Removes a rule; its firing alerts resolve (and are notified). Returns whether it existed.
    pub fn remove_rule(&self, id: &str) -> bool {
        let now = self.now();
        let removed = self.shared.engine().remove_rule(id, now);
        let found = removed.is_some();
        if let Some((_, notifications)) = removed {
            self.shared.dispatch(notifications);
        }
        self.shared.wake.notify_one();
        found
    }

    /// The rule ids, in the order they were added.
    pub fn rule_ids(&self) -> Vec<String> {
        self.shared.engine().rules().map(|r| r.id.clone()).collect()
    }

    /// Pending and firing alerts, by rule then thing.
    pub fn active_alerts(&self) -> Vec<Alert> {
        self.shared.engine().active_alerts()
    }

    /// Resolved alerts, oldest first (bounded, see [`AlertManagerBuilder::history_limit`]).
    pub fn history(&self) -> Vec<Alert> {
        self.shared
            .engine()
            .history()
            .iter()
            .map(|a| Alert::clone(a))
            .collect()
    }

    /// Acknowledges a firing alert (see [`Engine::acknowledge`]).
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
        let n = self
            .shared
            .engine()
            .acknowledge(now, rule, thing, by, comment)?;
        self.shared.dispatch(n);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Adds a silence.
    pub fn add_silence(&self, silence: Silence) -> SilenceId {
        self.shared.engine().add_silence(silence)
    }

    /// Removes a silence; returns whether it existed.
    pub fn remove_silence(&self, id: SilenceId) -> bool {
        self.shared.engine().remove_silence(id).is_some()
    }

    /// The silences, by id.
    pub fn silences(&self) -> Vec<(SilenceId, Silence)> {
        self.shared
            .engine()
            .silences()
            .map(|(id, s)| (id, s.clone()))
            .collect()
    }
}
