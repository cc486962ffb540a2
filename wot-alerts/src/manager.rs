//! The async shell: runs the [`Engine`] on tokio, drives its timer and runs actions.
//!
//! One driver task owns the update stream and sleeps until the engine's next deadline. Each
//! action has its own worker task behind a bounded queue, so a slow or failing action delays
//! neither evaluation nor other actions; a full queue drops the job and reports it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use futures_util::{Stream, StreamExt};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::engine::{AckError, Alert, Engine, Notification, PropertyUpdate, Silence, SilenceId};
use crate::rule::{ActionSpec, NotificationKind, Rule, RuleError};
use crate::webhook::WebhookPayload;
use crate::{LoadError, RuleSet};

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
pub struct ActionFailure {
    /// The action's name.
    pub action: String,
    /// The rule of the notification.
    pub rule: String,
    /// The thing of the notification.
    pub thing: String,
    /// The notification kind.
    pub kind: NotificationKind,
    /// Attempts made (0 when the job was dropped because the queue was full).
    pub attempts: u32,
    /// The last error (secrets such as URL queries are not included).
    pub error: String,
}

/// Why an [`AlertManager`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A rule is invalid or names an undefined action.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A `callback` action has no callback registered under its name.
    #[error("action `{0}` is a callback, but no callback was registered under that name")]
    MissingCallback(String),
    /// An `invoke_action` action's Thing or action cannot be found or has no usable form.
    #[error("action `{action}`: {reason}")]
    InvokeTarget {
        /// The action's name.
        action: String,
        /// What is missing.
        reason: String,
    },
    /// A rule file could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The default HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}

/// Most redirects the default client follows for one action request.
const MAX_REDIRECTS: usize = 10;

/// The redirect policy of the default action client: follow at most 10 redirects, and only
/// within the origin (scheme, host and port) of the first request. A redirect to another
/// origin fails the request (fail closed): webhook URLs and headers carry credentials, and
/// they must not reach a server they were not configured for.
///
/// Use it when you pass your own client to [`AlertManagerBuilder::http_client`]:
///
/// ```
/// let client = reqwest::Client::builder()
///     .redirect(wot_alerts::same_origin_redirects())
///     .build()?;
/// # Ok::<(), reqwest::Error>(())
/// ```
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(reqwest::Url::origin);
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if first.is_some_and(|o| o != attempt.url().origin()) {
            let to = crate::td::redact(attempt.url());
            attempt.error(format!(
                "redirect to another origin ({to}) refused: credentials stay with their origin"
            ))
        } else {
            attempt.follow()
        }
    })
}

/// How long the default client waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds an [`AlertManager`]. Every setting has a default, given in its doc.
#[must_use]
pub struct AlertManagerBuilder {
    rules: RuleSet,
    callbacks: HashMap<String, CallbackFn>,
    things: HashMap<String, wot_td::Thing>,
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

    /// Jobs each action may have waiting; more are dropped and reported. Default 64.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Events buffered for slow subscribers before they lag. Default 1024.
    pub fn events_capacity(mut self, capacity: usize) -> Self {
        self.events_capacity = capacity.max(1);
        self
    }

    /// Time limit of one action attempt, from sending the request to its response head
    /// (response bodies are not read). Default 10 s.
    pub fn action_timeout(mut self, timeout: Duration) -> Self {
        self.action_timeout = timeout;
        self
    }

    /// Retries after a failed attempt. Default 3.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Wait before the first retry; doubled before each further one, at most 1 minute.
    /// Default 500 ms.
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

    /// Starts the manager on the current tokio runtime, consuming `updates`. Evaluation and
    /// timers go on after the stream ends, until the manager is dropped.
    ///
    /// # Errors
    /// [`ConfigError`] when a rule is invalid, a callback is missing or an `invoke_action`
    /// target cannot be resolved.
    pub fn start<S>(self, updates: S) -> Result<AlertManager, ConfigError>
    where
        S: Stream<Item = PropertyUpdate> + Send + 'static,
    {
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
        let (rules, action_specs) = (self.rules.rules().to_vec(), self.rules.actions().clone());
        for rule in rules {
            engine.add_rule(rule, now)?;
        }
        let (events, _) = broadcast::channel(self.events_capacity);
        let client = match self.client {
            Some(client) => client,
            None => reqwest::Client::builder()
                .redirect(same_origin_redirects())
                .connect_timeout(CONNECT_TIMEOUT)
                .build()
                .map_err(|e| ConfigError::HttpClient(e.to_string()))?,
        };
        let mut tasks = Vec::new();
        let mut actions = HashMap::new();
        let mut specs: Vec<(String, ActionSpec)> = action_specs.into_iter().collect();
        if !specs.iter().any(|(n, _)| n == "log") {
            specs.push(("log".into(), ActionSpec::Log { on: None }));
        }
        for (name, spec) in specs {
            let runner = match &spec {
                ActionSpec::Log { .. } => Runner::Log,
                ActionSpec::Callback { .. } => Runner::Callback(
                    self.callbacks
                        .get(&name)
                        .cloned()
                        .ok_or_else(|| ConfigError::MissingCallback(name.clone()))?,
                ),
                ActionSpec::Webhook {
                    url,
                    external_url,
                    headers,
                    ..
                } => Runner::Webhook {
                    client: client.clone(),
                    url: url.clone(),
                    headers: headers.clone(),
                    external_url: external_url.clone().unwrap_or_default(),
                },
                ActionSpec::InvokeAction {
                    thing,
                    action,
                    input,
                    ..
                } => Runner::Invoke {
                    client: client.clone(),
                    url: crate::td::action_url(&self.things, thing, action).map_err(|reason| {
                        ConfigError::InvokeTarget {
                            action: name.clone(),
                            reason,
                        }
                    })?,
                    input: input.clone(),
                },
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
            tasks.push(tokio::spawn(worker.run(rx)));
            actions.insert(name, (spec, tx));
        }
        let shared = Arc::new(Shared {
            engine: Mutex::new(engine),
            events,
            actions,
            wake: Notify::new(),
            clock,
        });
        tasks.push(tokio::spawn(drive(Arc::clone(&shared), updates)));
        Ok(AlertManager { shared, tasks })
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
        self.mono.checked_add(offset).unwrap_or_else(|| {
            let now = Instant::now();
            now.checked_add(Duration::from_secs(86_400 * 365))
                .unwrap_or(now)
        })
    }
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
                    let _ = self.events.send(ManagerEvent::ActionFailed(ActionFailure {
                        action: name.clone(),
                        rule: n.alert.rule.clone(),
                        thing: n.alert.thing.clone(),
                        kind: n.kind,
                        attempts: 0,
                        error: "action queue full".into(),
                    }));
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
    Webhook {
        client: reqwest::Client,
        url: crate::WebhookUrl,
        headers: crate::WebhookHeaders,
        external_url: String,
    },
    Invoke {
        client: reqwest::Client,
        url: reqwest::Url,
        input: Option<serde_json::Value>,
    },
}

/// An error and its sources, `: `-separated (reqwest puts the redirect refusal in a source).
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

struct Worker {
    name: String,
    runner: Runner,
    events: broadcast::Sender<ManagerEvent>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

impl Worker {
    async fn run(self, mut jobs: mpsc::Receiver<Notification>) {
        while let Some(n) = jobs.recv().await {
            let mut attempts = 0;
            let mut wait = self.backoff;
            let error = loop {
                attempts += 1;
                let error = match tokio::time::timeout(self.timeout, self.attempt(&n)).await {
                    Ok(Ok(())) => break None,
                    Ok(Err(e)) => e,
                    Err(_) => format!("timed out after {:?}", self.timeout),
                };
                tracing::debug!(action = %self.name, attempt = attempts, %error, "action attempt failed");
                if attempts > self.retries {
                    break Some(error);
                }
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2).min(Duration::from_secs(60));
            };
            if let Some(error) = error {
                tracing::warn!(action = %self.name, rule = %n.alert.rule, thing = %n.alert.thing, attempts, %error, "action failed");
                let _ = self.events.send(ManagerEvent::ActionFailed(ActionFailure {
                    action: self.name.clone(),
                    rule: n.alert.rule.clone(),
                    thing: n.alert.thing.clone(),
                    kind: n.kind,
                    attempts,
                    error,
                }));
            }
        }
    }

    async fn attempt(&self, n: &Notification) -> Result<(), String> {
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
            Runner::Callback(f) => f(n.clone()).await.map_err(|e| e.to_string()),
            Runner::Webhook {
                client,
                url,
                headers,
                external_url,
            } => {
                let payload = WebhookPayload::new(n, &self.name, external_url);
                let mut request = client.post(url.as_url().clone()).json(&payload);
                for (name, value) in headers.iter() {
                    request = request.header(name, value);
                }
                let response = request
                    .send()
                    .await
                    .map_err(|e| format!("POST {url}: {}", error_chain(&e.without_url())))?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("POST {url}: HTTP status {status}"))
                }
            }
            Runner::Invoke { client, url, input } => {
                let mut request = client.post(url.clone());
                if let Some(input) = input {
                    request = request.json(input);
                }
                let shown = crate::td::redact(url);
                let response = request
                    .send()
                    .await
                    .map_err(|e| format!("POST {shown}: {}", error_chain(&e.without_url())))?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("POST {shown}: HTTP status {status}"))
                }
            }
        }
    }
}

/// Runs an [`Engine`] on tokio: consumes a stream of updates, drives the timer, runs actions,
/// and lets you manage rules, alerts and silences while it runs. Dropping it stops its tasks.
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
pub struct AlertManager {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for AlertManager {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
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
            client: None,
            history_limit: 1000,
            history_bytes: 4 << 20,
            series_limit: 100_000,
            queue_capacity: 64,
            events_capacity: 1024,
            action_timeout: Duration::from_secs(10),
            retries: 3,
            backoff: Duration::from_millis(500),
            start_time: None,
        }
    }

    /// The manager's current time.
    pub fn now(&self) -> SystemTime {
        self.shared.clock.now()
    }

    /// A stream of notifications, action failures and lag reports from now on. Each
    /// subscriber has its own buffer (see [`AlertManagerBuilder::events_capacity`]).
    pub fn subscribe(&self) -> impl Stream<Item = ManagerEvent> + Send + 'static + use<> {
        BroadcastStream::new(self.shared.events.subscribe()).map(|item| match item {
            Ok(event) => event,
            Err(BroadcastStreamRecvError::Lagged(missed)) => ManagerEvent::Lagged { missed },
        })
    }

    /// Adds a rule at run time.
    ///
    /// # Errors
    /// [`RuleError`] when it is invalid, its id is taken, or it names an unknown action.
    pub fn add_rule(&self, rule: Rule) -> Result<(), RuleError> {
        if let Some(name) = rule
            .actions
            .iter()
            .find(|a| !self.shared.actions.contains_key(*a))
        {
            return Err(RuleError {
                rule: rule.id.clone(),
                field: "actions".into(),
                message: format!("action `{name}` is not defined"),
            });
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
        self.shared.engine().history().iter().cloned().collect()
    }

    /// Acknowledges a firing alert (see [`Engine::acknowledge`]).
    ///
    /// # Errors
    /// [`AckError`] when there is no firing alert for `rule` and `thing`.
    pub fn acknowledge(
        &self,
        rule: &str,
        thing: &str,
        by: impl Into<String>,
        comment: Option<String>,
    ) -> Result<(), AckError> {
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
