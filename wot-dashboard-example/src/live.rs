//! Composing the SDK: Things from `wot-events`, their property and event streams, and a
//! `wot-alerts` manager fed with the property updates. Everything arrives as one stream of
//! [`Feed`] items for the event loop.
//!
//! ```text
//!  TD URLs / directory ──► EventSubscriber::fetch_* ──► ConsumedThing (wot-td inside)
//!                                                          │
//!        observe_all_properties ──► PropertyUpdate ───────┼──► Feed::Property ──► App / JSON
//!                                                          │        └─► AlertManager (wot-alerts)
//!        subscribe_all ──────────► EventRecord ───────────┘                 │
//!                                                       Feed::Alert ◄───────┘ notifications
//! ```

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{Stream, StreamExt, stream};
use tokio::sync::watch;
use wot_alerts::{AlertManager, Format, ManagerEvent, Notification, RuleSet};
use wot_events::wot_td::AffordanceKind;
use wot_events::{
    ConnectionState, ConsumedThing, Credential, Credentials, EventRecord, EventSubscriber,
    ObserveOptions, PropertyUpdate, ReconnectPolicy, SkippedAffordance, SubscribeOptions,
};

use crate::app::EVENTS;
use crate::cli::Options;
use crate::headless::Printer;
use crate::persist::{self, Restored, State};
use crate::sanitize;

/// The rules bundled for the simulator.
const DEFAULT_RULES: &str = include_str!("../rules/default.yaml");
/// Property updates waiting for the alert manager before new ones are dropped.
const ALERT_QUEUE: usize = 4096;

/// One item from the live sources.
#[derive(Debug)]
pub(crate) enum Feed {
    /// A new property value.
    Property(PropertyUpdate),
    /// A new event.
    Event(EventRecord),
    /// An alert notification.
    Alert(Arc<Notification>),
    /// A recoverable problem worth showing (a bad value, a failed action, a stream error).
    Problem(String),
    /// A property or event left unwatched: none of its forms can be used (only `file:`,
    /// `javascript:`, `data:` or other non-HTTP hrefs...). Sent once, at start.
    Skipped(Skipped),
}

/// A property or event of a Thing that is not watched, and why; the rest of the Thing is.
#[derive(Debug, Clone)]
pub(crate) struct Skipped {
    /// The Thing's id.
    pub(crate) thing: String,
    /// `property` or `event`.
    pub(crate) kind: &'static str,
    /// The affordance's name.
    pub(crate) name: String,
    /// Why (names the schemes of its forms).
    pub(crate) reason: String,
}

impl Skipped {
    fn from_sdk(skipped: &SkippedAffordance) -> Self {
        Skipped {
            thing: skipped.thing_id.clone(),
            kind: match skipped.kind {
                AffordanceKind::Property => "property",
                AffordanceKind::Event => "event",
                AffordanceKind::Action => "action",
                AffordanceKind::Thing => "Thing",
            },
            name: skipped.name.clone(),
            reason: skipped.error.to_string(),
        }
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The reason names the Thing and the affordance.
        write!(f, "not watching: {}", self.reason)
    }
}

/// Why the dashboard could not start watching.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A TD or the directory could not be fetched, or a Thing cannot be watched.
    #[error(transparent)]
    Events(#[from] wot_events::Error),
    /// The rules file cannot be read or is invalid.
    #[error(transparent)]
    Rules(#[from] wot_alerts::LoadError),
    /// The alert manager refused the rules.
    #[error(transparent)]
    Alerts(#[from] wot_alerts::Error),
    /// `--basic-auth` is not `USER:PASSWORD`.
    #[error("--basic-auth must be USER:PASSWORD")]
    BasicAuth,
    /// A TD or directory listing took longer than `--td-timeout`.
    #[error("no answer from {url} within {} (--td-timeout)", humantime::format_duration(*.after))]
    Timeout {
        /// The URL, without credentials or query.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// Nothing to watch.
    #[error("no Things to watch")]
    NoThings,
    /// `--strict-rules`, and some rules do not fit the loaded Thing Descriptions.
    #[error("--strict-rules: {} rule problem(s): {}", .warnings.len(), .warnings.join("; "))]
    RulesDoNotFit {
        /// One line per problem, naming the rule.
        warnings: Vec<String>,
    },
    /// No property or event of any Thing can be watched: each one's forms are unusable.
    #[error("nothing to watch: {}", .skipped.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    NothingUsable {
        /// Every affordance left out, with its reason.
        skipped: Vec<String>,
    },
}

/// `url` as it may be shown: without user name, password or query (which may hold
/// secrets), control characters escaped.
pub(crate) fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            if parsed.query().is_some() {
                parsed.set_query(Some("…"));
            }
            parsed.set_fragment(None);
            sanitize::text(parsed.as_str()).into_owned()
        }
        Err(_) => "(an invalid URL)".to_owned(),
    }
}

/// `fetch`, or [`SetupError::Timeout`] after `limit`; `waiting` names the URL meanwhile.
async fn fetch_within<T>(
    url: &str,
    limit: Duration,
    waiting: &Mutex<Option<String>>,
    fetch: impl Future<Output = Result<T, wot_events::Error>>,
) -> Result<T, SetupError> {
    let shown = shown_url(url);
    let set = |url| *waiting.lock().unwrap_or_else(PoisonError::into_inner) = url;
    set(Some(shown.clone()));
    let result = match tokio::time::timeout(limit, fetch).await {
        Ok(result) => result.map_err(SetupError::from),
        Err(_elapsed) => Err(SetupError::Timeout {
            url: shown,
            after: limit,
        }),
    };
    set(None);
    result
}

/// Fetches the Things: each `--thing` URL, every TD of the `--directory`, or the simulator's
/// directory at `simulator`. Each fetch (connect, head and body) must end within
/// `--td-timeout`; `waiting` holds the URL being fetched, for a message if the run is
/// stopped meanwhile.
///
/// # Errors
/// A TD that cannot be fetched in time or does not validate, or an empty result.
pub(crate) async fn load_things(
    options: &Options,
    simulator: Option<&str>,
    waiting: &Mutex<Option<String>>,
) -> Result<Vec<ConsumedThing>, SetupError> {
    let fetcher = directory_fetcher(options)?;
    let limit = options.td_timeout;
    let mut things = Vec::new();
    for url in &options.things {
        things.push(fetch_within(url, limit, waiting, fetcher.fetch_thing(url)).await?);
    }
    let directory = options.directory.as_deref().map(directory_base);
    for directory in directory.as_deref().into_iter().chain(simulator) {
        let listed = fetch_within(
            directory,
            limit,
            waiting,
            fetcher.fetch_directory(directory),
        )
        .await?;
        for thing in listed {
            match thing {
                Ok(thing) => things.push(thing),
                // One bad TD in a directory should not hide the others.
                Err(error) => tracing::warn!(
                    error = %sanitize::text(&error.to_string()),
                    "skipping a TD of the directory"
                ),
            }
        }
    }
    if things.is_empty() {
        return Err(SetupError::NoThings);
    }
    Ok(things)
}

/// The client that fetches the TDs: `--max-directory-things` TDs and `--max-directory-bytes`
/// per listing or TD, or the whole simulator's directory (with a body limit that fits it).
fn directory_fetcher(options: &Options) -> Result<EventSubscriber, SetupError> {
    let mut builder = EventSubscriber::builder()
        .max_directory_entries(options.max_directory_things)
        .max_body(options.max_directory_bytes);
    if options.simulated() {
        builder = builder
            .max_directory_entries(options.max_directory_things.max(options.sim_things))
            .max_body(
                options
                    .max_directory_bytes
                    .max(options.sim_things * SIM_TD_BYTES),
            );
    }
    Ok(builder.try_build()?)
}

/// A generous size of one simulated TD in the directory listing (they are about 3 KiB).
const SIM_TD_BYTES: usize = 8 * 1024;

/// The base URL of a directory given as `--directory`: the URL itself, or, when it is the
/// listing URL (its path ends in `/things`, as the simulator prints it), the URL without that
/// segment, since the listing is requested at `{base}/things`. Query and fragment are kept
/// off a listing URL's base.
fn directory_base(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let path = parsed.path().trim_end_matches('/');
            if let Some(base) = path.strip_suffix("/things") {
                let base = format!("{base}/");
                parsed.set_path(&base);
                parsed.set_query(None);
                parsed.set_fragment(None);
                parsed.to_string()
            } else {
                url.to_owned()
            }
        }
        Err(_) => url.to_owned(),
    }
}

/// The credentials from `--bearer-token` and `--basic-auth`, offered to every Thing.
pub(crate) fn credentials(
    options: &Options,
    things: &[ConsumedThing],
) -> Result<Credentials, SetupError> {
    let mut given = Vec::new();
    if let Some(token) = &options.bearer_token {
        given.push(Credential::Bearer(token.clone()));
    }
    if let Some(pair) = &options.basic_auth {
        let (user, password) = pair.split_once(':').ok_or(SetupError::BasicAuth)?;
        given.push(Credential::Basic {
            user: user.to_owned(),
            password: password.to_owned(),
        });
    }
    let mut credentials = Credentials::new();
    for thing in things {
        for credential in &given {
            credentials = credentials.for_thing(thing.id(), credential.clone());
        }
    }
    Ok(credentials)
}

/// The alert rules: `--rules FILE`, else the bundled ones for the simulator, else none.
///
/// # Errors
/// The rule file cannot be read or is invalid (the error names file, rule and field).
pub(crate) fn rules(options: &Options) -> Result<RuleSet, SetupError> {
    Ok(match (&options.rules, options.simulated()) {
        (Some(path), _) => RuleSet::from_file(path)?,
        (None, true) => RuleSet::from_str(DEFAULT_RULES, Format::Yaml, "rules/default.yaml")?,
        (None, false) => RuleSet::new(),
    })
}

/// What does not fit between the rules and the loaded Things, one line per problem, each
/// naming its rule: a rule on a Thing id that no loaded TD has (with the closest id, or the id
/// that ends in what the rule names: a simulator slug such as `pump-1` for
/// `urn:wot-live:sim:pump-1`), and what [`wot_alerts::check_rules_against_tds`] finds on the
/// others (a property the TD lacks, with the closest name; a numeric condition on a
/// non-numeric property; a threshold outside the schema's range).
pub(crate) fn rule_warnings(rules: &RuleSet, things: &[ConsumedThing]) -> Vec<String> {
    let tds: Vec<wot_events::wot_td::Thing> = things.iter().map(|t| t.thing().clone()).collect();
    let mut warnings = Vec::new();
    let mut checked = Vec::new();
    for rule in rules.rules() {
        if rule.thing == "*" || things.iter().any(|t| t.id() == rule.thing) {
            checked.push(rule.clone());
            continue;
        }
        let suggestion = closest_id(&rule.thing, things.iter().map(ConsumedThing::id))
            .map(|id| format!(" (did you mean `{id}`?)"))
            .unwrap_or_default();
        warnings.push(format!(
            "rule `{}`: no loaded Thing has the id `{}`{suggestion}; it cannot fire",
            rule.id, rule.thing
        ));
    }
    for finding in wot_alerts::check_rules_against_tds(&checked, &tds) {
        warnings.push(format!(
            "rule `{}`, field `{}`, Thing `{}`: {}",
            finding.rule, finding.field, finding.thing, finding.message
        ));
    }
    warnings
}

/// The id among `ids` that `wanted` most likely meant: one that ends in `:wanted` or
/// `/wanted` (a slug or the last part of a URN), else the closest by edit distance when at
/// most a third of the characters differ.
fn closest_id<'a>(wanted: &str, ids: impl Iterator<Item = &'a str> + Clone) -> Option<&'a str> {
    let suffix = ids.clone().find(|id| {
        id.strip_suffix(wanted)
            .is_some_and(|head| head.ends_with(':') || head.ends_with('/'))
    });
    let most = (wanted.chars().count() / 3).max(1);
    suffix.or_else(|| {
        ids.filter(|id| id.len() <= 256 && wanted.len() <= 256)
            .map(|id| (strsim::levenshtein(wanted, id), id))
            .filter(|(d, _)| *d <= most)
            .min_by_key(|(d, _)| *d)
            .map(|(_, id)| id)
    })
}

/// Most causes named by [`error_chain`].
const CAUSES: usize = 4;

/// `error` with its causes, `: `-separated ("reading the event stream failed (URL): connection
/// closed before message completed"), so that a notice says why and not only what. A cause
/// whose text the previous one already holds is left out, and at most [`CAUSES`] are named.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut last = text.clone();
    let mut source = error.source();
    let mut named = 0;
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !last.contains(&cause_text) {
            if named == CAUSES {
                text.push_str(": …");
                break;
            }
            text.push_str(": ");
            text.push_str(&cause_text);
            named += 1;
        }
        last = cause_text;
        source = cause.source();
    }
    text
}

/// A connection whose state the UI shows: Thing id, label, and the state channel.
pub(crate) type LinkWatch = (String, String, watch::Receiver<ConnectionState>);

/// Everything that is live; dropping it closes every connection and stops the alert manager.
pub(crate) struct Live {
    /// Every item from every source.
    pub(crate) feed: Pin<Box<dyn Stream<Item = Feed> + Send>>,
    /// The connections whose state is shown.
    pub(crate) links: Vec<LinkWatch>,
    /// The alert manager (acknowledging, the alert lists).
    pub(crate) alerts: AlertManager,
    /// How many alert rules are loaded.
    pub(crate) rule_count: usize,
    /// What does not fit between the rules and the Things ([`rule_warnings`]), checked at
    /// start.
    pub(crate) rule_warnings: Vec<String>,
    /// With a state directory: what was restored from it, and the history to show again
    /// (events, then property values, each oldest first).
    pub(crate) restored: Option<(Restored, Vec<EventRecord>, Vec<PropertyUpdate>)>,
    /// Whether the feed writes the headless lines of its items itself (`--headless` with a
    /// state directory: each batch's lines right after it is saved); the consumer then
    /// writes only the other lines.
    pub(crate) feed_prints: bool,
    /// With a state directory: ends the feed cleanly at the end of a run
    /// ([`persist::drain`]), so that every item whose batch was committed is shown.
    pub(crate) stop: Option<persist::StopFeed>,
    /// Where the headless lines go: stdout, or the `--output` file.
    pub(crate) printer: Printer,
}

/// Opens one property observer and one event subscription per Thing and starts the alert
/// manager on the property updates.
///
/// A property or event none of whose forms can be used (a `file:`, `javascript:` or
/// `data:` href, no HTTP form...) is left out and reported as a [`Feed::Skipped`] item at
/// the start of the feed; the rest of its Thing is watched. A Thing with nothing usable at
/// all is left out the same way, as long as another Thing can be watched.
///
/// The rules are checked against the Things first ([`rule_warnings`]); with
/// `--strict-rules` any problem found stops the start.
///
/// With a state directory (`state`), the streams resume from its points, the alert manager
/// restores its state and outbox from it, and the feed hands on each item only once it is
/// saved there ([`persist::committed`]).
///
/// # Errors
/// No property or event of any Thing is usable, a credential is missing, the rules are
/// invalid, (`--strict-rules`) they do not fit the Things, or the saved alert state is
/// refused.
pub(crate) async fn start(
    options: &Options,
    things: &[ConsumedThing],
    rules: RuleSet,
    state: Option<State>,
    from_nats: Option<Pin<Box<dyn Stream<Item = Feed> + Send>>>,
) -> Result<Live, SetupError> {
    let policy = reconnect_policy(options);
    let rule_warnings = rule_warnings(&rules, things);
    if options.strict_rules && !rule_warnings.is_empty() {
        return Err(SetupError::RulesDoNotFit {
            warnings: rule_warnings,
        });
    }
    let rule_count = rules.rules().len();
    let mut subscriber = EventSubscriber::builder()
        .reconnect(policy)
        .credentials(credentials(options, things)?);
    if let Some(state) = &state {
        subscriber = subscriber.resume_store(state.points.clone());
    }
    let subscriber = subscriber.try_build()?;
    let mut sources: Vec<Pin<Box<dyn Stream<Item = Feed> + Send>>> = Vec::new();
    let mut links = Vec::new();
    let mut manager = AlertManager::builder(rules);
    let mut skipped = Vec::new();
    let mut watched = 0usize;
    for thing in things {
        manager = manager.thing(thing.thing().clone());
        if from_nats.is_some() {
            // `--source`: the records come from NATS, not from the Thing.
            continue;
        }
        let observer = subscriber.observe_all_properties(thing, ObserveOptions::new())?;
        skipped.extend(observer.skipped().iter().map(Skipped::from_sdk));
        for (label, _mode, state) in observer.connections() {
            links.push((thing.id().to_owned(), label.clone(), state.clone()));
            watched += 1;
        }
        sources.push(Box::pin(observer.map(|item| match item {
            Ok(update) => Feed::Property(update),
            Err(error) => Feed::Problem(error_chain(&error)),
        })));
        if thing.thing().events().next().is_some() {
            let events = subscriber.subscribe_all([thing], SubscribeOptions::new().buffer(None))?;
            skipped.extend(events.skipped().iter().map(Skipped::from_sdk));
            for subscription in events.subscriptions() {
                links.push((
                    thing.id().to_owned(),
                    EVENTS.to_owned(),
                    subscription.state(),
                ));
                watched += 1;
            }
            sources.push(Box::pin(events.map(|item| match item {
                Ok(record) => Feed::Event(record),
                Err(error) => Feed::Problem(error_chain(&error)),
            })));
        }
    }
    sources.extend(from_nats);
    if watched == 0 && !skipped.is_empty() {
        return Err(SetupError::NothingUsable {
            skipped: skipped.iter().map(ToString::to_string).collect(),
        });
    }

    // The alert manager reads its own copy of the property updates through a bounded queue;
    // `tee_updates` below fills it.
    let (to_alerts, updates) = mpsc::channel(ALERT_QUEUE);
    if let Some(state) = &state {
        manager = manager.state_store(Arc::new(state.store.alerts()));
    }
    let (alerts, restored_alerts) = manager
        .start_restored(updates.map(|u: PropertyUpdate| {
            wot_alerts::PropertyUpdate::new(u.thing_id, u.property, u.value)
        }))
        .await?;
    sources.push(Box::pin(alerts.subscribe().filter_map(
        |event| async move {
            match event {
                ManagerEvent::Notification(n) => Some(Feed::Alert(n)),
                ManagerEvent::ActionFailed(failure) => Some(Feed::Problem(format!(
                    "alert action {} failed for {} on {}: {}",
                    failure.action, failure.rule, failure.thing, failure.error
                ))),
                ManagerEvent::Lagged { missed } => Some(Feed::Problem(format!(
                    "missed {missed} alert notifications"
                ))),
                ManagerEvent::StoreFailed(error) => Some(Feed::Problem(format!(
                    "saving the alert state failed (tried again with the next change): {}",
                    error_chain(&error)
                ))),
                _ => None,
            }
        },
    )));
    // The skipped affordances come first, so that the screen or log says what is missing.
    let skipped = stream::iter(skipped.into_iter().map(Feed::Skipped));
    let feed = tee_updates(skipped.chain(stream::select_all(sources)), to_alerts);
    let state_given = state.is_some();
    let printer = match state.as_ref().and_then(|state| state.output.clone()) {
        Some(file) => Printer::to_file(file),
        None => Printer::new(),
    };
    let (feed, restored, stop): (Pin<Box<dyn Stream<Item = Feed> + Send>>, _, _) = match state {
        Some(state) => {
            let restored = Restored {
                dir: state.dir.clone(),
                events: state.events.len(),
                property_values: state.properties.len(),
                streams: state.points.len(),
                alerts: alerts.active_alerts().len(),
                silences: alerts.silences().len(),
                resent: restored_alerts.resent,
            };
            let (feed, stop) = persist::committed(
                feed,
                state.store,
                state.points,
                options.headless.then(|| printer.clone()),
            );
            (
                Box::pin(feed),
                Some((restored, state.events, state.properties)),
                Some(stop),
            )
        }
        None => (Box::pin(feed), None, None),
    };
    Ok(Live {
        feed,
        links,
        alerts,
        rule_count,
        rule_warnings,
        restored,
        feed_prints: options.headless && state_given,
        stop,
        printer,
    })
}

/// How the Things' streams reconnect: never give up (a dashboard or collector watches for
/// as long as it runs; the default policy stops after 5 failed attempts), with short waits.
pub(crate) fn reconnect_policy(options: &Options) -> ReconnectPolicy {
    let policy = ReconnectPolicy::new()
        .max_attempts(None)
        .max_delay(Duration::from_secs(10));
    if options.simulated() {
        // The embedded simulator is this process's own server, trusted: take its `retry:` as
        // sent and do not treat the cuts `--chaos` makes on purpose (often within
        // milliseconds) as a reconnect storm. Real Things get the default floor and backoff.
        policy
            .min_server_retry(Duration::ZERO)
            .stable_after(Duration::ZERO)
    } else {
        policy
    }
}

/// Passes every item on, and a copy of each property update to the alert manager.
fn tee_updates(
    feed: impl Stream<Item = Feed> + Send + 'static,
    mut to_alerts: mpsc::Sender<PropertyUpdate>,
) -> impl Stream<Item = Feed> + Send + 'static {
    feed.map(move |item| {
        if let Feed::Property(update) = &item
            && to_alerts.try_send(update.clone()).is_err()
        {
            tracing::warn!("alert manager is behind; an update was not evaluated");
        }
        item
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use clap::Parser;
    use serde_json::{Value, json};

    use super::*;
    use crate::sim::model::{Emission, THINGS, World};
    use crate::sim::tds::thing_id;
    use crate::sim::{SimConfig, Simulator};

    /// What the simulated world emits for `ticks` steps from `seed`, per Thing id:
    /// (property changes, events), each as (name, value).
    type Expected = HashMap<String, (Vec<(String, Value)>, Vec<(String, Value)>)>;

    fn expected(seed: u64, ticks: usize) -> Expected {
        let mut world = World::new(seed);
        let mut out = Expected::new();
        for _ in 0..ticks {
            for (index, emission) in world.step() {
                let entry = out.entry(thing_id(&THINGS[index])).or_default();
                match emission {
                    Emission::Property { name, value } => entry.0.push((name.into(), value)),
                    Emission::Event { name, data } => entry.1.push((name.into(), data)),
                }
            }
        }
        out
    }

    fn is_run_of(received: &[(String, Value)], expected: &[(String, Value)]) -> bool {
        received.is_empty() || expected.windows(received.len()).any(|w| w == received)
    }

    /// The headless pipeline (SDK streams, alert manager) against the simulator in `--chaos`
    /// mode: connections are cut mid-event and refused with 503, the SDK reconnects with
    /// `Last-Event-ID`, and each Thing's updates and events still arrive exactly once and in
    /// the order the simulated world produced them.
    #[tokio::test]
    async fn under_chaos_updates_and_events_arrive_once_and_in_order() {
        let seed = 11;
        let sim = Simulator::start(SimConfig {
            seed,
            chaos: true,
            tick: Duration::from_millis(10),
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let options = Options::try_parse_from(["dash"]).expect("options");
        let things = load_things(&options, Some(&sim.base_url()), &Mutex::new(None))
            .await
            .expect("TDs");
        let mut live = start(
            &options,
            &things,
            rules(&options).expect("rules"),
            None,
            None,
        )
        .await
        .expect("live");
        let mut got = Expected::new();
        let until = tokio::time::Instant::now() + Duration::from_secs(4);
        while let Ok(Some(item)) = tokio::time::timeout_at(until, live.feed.next()).await {
            match item {
                Feed::Property(u) => got
                    .entry(u.thing_id.to_string())
                    .or_default()
                    .0
                    .push((u.property.to_string(), u.value.into_value())),
                Feed::Event(r) => got
                    .entry(r.thing_id.to_string())
                    .or_default()
                    .1
                    .push((r.event.to_string(), r.data.into_value())),
                Feed::Alert(_) | Feed::Problem(_) | Feed::Skipped(_) => {}
            }
        }
        drop(live);
        let streams = 2 * THINGS.len() as u64;
        assert!(
            sim.connections() > streams + 4,
            "chaos caused too few reconnects to prove anything: {}",
            sim.connections()
        );
        let expected = expected(seed, 4000);
        for spec in &THINGS {
            let id = thing_id(spec);
            let (props, events) = got.remove(&id).unwrap_or_default();
            let (want_props, want_events) = &expected[&id];
            // The first values of a new observer are the current ones, not a replay; from
            // then on every change must be there.
            let live_props = props.get(spec.properties.len()..).unwrap_or_default();
            // Throughput under chaos depends on the machine; correctness is what counts here.
            assert!(
                live_props.len() > 5,
                "{id}: only {} updates",
                live_props.len()
            );
            assert!(
                is_run_of(live_props, want_props),
                "{id}: property updates lost, repeated or reordered"
            );
            assert!(
                is_run_of(&events, want_events),
                "{id}: events lost or repeated: {events:?}"
            );
        }
        // The sanity of the oracle itself.
        assert!(!is_run_of(
            &[("x".into(), json!(1))],
            &expected[&thing_id(&THINGS[0])].0
        ));
    }

    #[test]
    fn a_listing_url_given_as_the_directory_is_its_base() {
        for (given, base) in [
            ("http://h/things", "http://h/"),
            ("http://h/things/", "http://h/"),
            ("http://h:8080/tdd/things", "http://h:8080/tdd/"),
            ("http://h/", "http://h/"),
            ("http://h", "http://h"),
            ("http://h/tdd", "http://h/tdd"),
            ("http://h/mythings", "http://h/mythings"),
        ] {
            assert_eq!(directory_base(given), base, "{given}");
        }
    }

    /// `--directory` given the listing URL the simulator prints: the Things load (a request
    /// for `/things/things` would get a 404).
    #[tokio::test]
    async fn the_directory_listing_url_loads_the_things() {
        let sim = Simulator::start(SimConfig::default())
            .await
            .expect("simulator");
        for directory in [sim.directory_url(), sim.base_url()] {
            let options =
                Options::try_parse_from(["dash", "--directory", &directory]).expect("options");
            let things = load_things(&options, None, &Mutex::new(None))
                .await
                .unwrap_or_else(|e| panic!("{directory}: {e}"));
            assert_eq!(things.len(), THINGS.len(), "{directory}");
        }
    }

    #[test]
    fn rules_that_do_not_fit_the_things_are_warned_about_with_a_suggestion() {
        let things: Vec<ConsumedThing> = THINGS
            .iter()
            .map(|spec| {
                let td =
                    crate::sim::tds::thing_description(spec, "http://127.0.0.1:9/").expect("TD");
                ConsumedThing::new(td, None).expect("a valid TD")
            })
            .collect();
        let rules = RuleSet::from_str(
            "rules:
  - { id: typo, thing: 'urn:wot-live:sim:pump-1', property: presure, condition: { gt: 7 } }
  - { id: slug, thing: pump-1, property: pressure, condition: { gt: 7 } }
  - { id: elsewhere, thing: 'urn:other', property: pressure, condition: { gt: 7 } }
  - { id: fine, thing: 'urn:wot-live:sim:pump-1', property: pressure, condition: { gt: 7 } }
",
            Format::Yaml,
            "test.yaml",
        )
        .expect("rules");
        let warnings = rule_warnings(&rules, &things);
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(
            warnings[0].contains("rule `slug`: no loaded Thing has the id `pump-1` (did you mean `urn:wot-live:sim:pump-1`?)"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].starts_with("rule `elsewhere`: no loaded Thing has the id `urn:other`;"),
            "{}",
            warnings[1]
        );
        assert!(
            warnings[2].contains("rule `typo`")
                && warnings[2].contains("no property `presure` (did you mean `pressure`?)"),
            "{}",
            warnings[2]
        );
        // The bundled rules fit the simulator.
        let bundled = rules_for(&["dash"]);
        assert_eq!(rule_warnings(&bundled, &things), Vec::<String>::new());

        // --strict-rules refuses to start; without it, the start goes on.
        let strict = Options::try_parse_from(["dash", "--strict-rules"]).expect("options");
        // It fails before its first await, so no runtime is needed.
        match futures::executor::block_on(start(&strict, &things, rules, None, None)) {
            Err(SetupError::RulesDoNotFit { warnings }) => assert_eq!(warnings.len(), 3),
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("started with rules that do not fit"),
        }
    }

    fn rules_for(args: &[&str]) -> RuleSet {
        rules(&Options::try_parse_from(args).expect("options")).expect("rules")
    }

    #[test]
    fn problems_name_their_causes_once() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl std::fmt::Display for Layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|l| l as _)
            }
        }
        let chain = |texts: &[&'static str]| {
            texts
                .iter()
                .rev()
                .fold(None, |inner, text| Some(Box::new(Layer(text, inner))))
                .expect("one layer")
        };
        let error = chain(&[
            "reading the event stream failed (http://h/sse)",
            "error decoding response body",
            "error decoding response body",
            "unexpected EOF during chunk size line",
        ]);
        assert_eq!(
            error_chain(&*error),
            "reading the event stream failed (http://h/sse): error decoding response body: \
             unexpected EOF during chunk size line"
        );
        // A cause already quoted by its parent is not repeated.
        let error = chain(&["connecting failed (http://h/): refused", "refused"]);
        assert_eq!(
            error_chain(&*error),
            "connecting failed (http://h/): refused"
        );
        let deep = chain(&["a", "b", "c", "d", "e", "f"]);
        assert_eq!(error_chain(&*deep), "a: b: c: d: e: …");
    }
}
