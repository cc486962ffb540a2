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
use std::sync::Arc;

use futures::channel::mpsc;
use futures::{Stream, StreamExt, stream};
use tokio::sync::watch;
use wot_alerts::{AlertManager, Format, ManagerEvent, Notification, RuleSet};
use wot_events::{
    ConnectionState, ConsumedThing, Credential, Credentials, EventRecord, EventSubscriber,
    ObserveOptions, PropertyUpdate, SubscribeOptions,
};

use crate::app::EVENTS;
use crate::cli::Options;

/// The rules bundled for the simulator.
const DEFAULT_RULES: &str = include_str!("../rules/default.yaml");
/// Property updates waiting for the alert manager before new ones are dropped.
const ALERT_QUEUE: usize = 4096;

/// One item from the live sources.
#[derive(Debug)]
pub(crate) enum Feed {
    Property(PropertyUpdate),
    Event(EventRecord),
    Alert(Arc<Notification>),
    /// A recoverable problem worth showing (a bad value, a failed action, a stream error).
    Problem(String),
}

/// Why the dashboard could not start watching.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error(transparent)]
    Events(#[from] wot_events::Error),
    #[error(transparent)]
    Rules(#[from] wot_alerts::LoadError),
    #[error(transparent)]
    Alerts(#[from] wot_alerts::ConfigError),
    #[error("--basic-auth must be USER:PASSWORD")]
    BasicAuth,
    #[error("no Things to watch")]
    NoThings,
}

/// Fetches the Things: each `--thing` URL, every TD of the `--directory`, or the simulator's
/// directory at `simulator`.
///
/// # Errors
/// A TD that cannot be fetched or does not validate, or an empty result.
pub(crate) async fn load_things(
    options: &Options,
    simulator: Option<&str>,
) -> Result<Vec<ConsumedThing>, SetupError> {
    let fetcher = EventSubscriber::new();
    let mut things = Vec::new();
    for url in &options.things {
        things.push(fetcher.fetch_thing(url).await?);
    }
    for directory in options.directory.as_deref().into_iter().chain(simulator) {
        for thing in fetcher.fetch_directory(directory).await? {
            match thing {
                Ok(thing) => things.push(thing),
                // One bad TD in a directory should not hide the others.
                Err(error) => tracing::warn!(%error, "skipping a TD of the directory"),
            }
        }
    }
    if things.is_empty() {
        return Err(SetupError::NoThings);
    }
    Ok(things)
}

/// The credentials from `--bearer-token` and `--basic-auth`, offered to every Thing.
fn credentials(options: &Options, things: &[ConsumedThing]) -> Result<Credentials, SetupError> {
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

/// A connection whose state the UI shows: Thing id, label, and the state channel.
pub(crate) type LinkWatch = (String, String, watch::Receiver<ConnectionState>);

/// Everything that is live; dropping it closes every connection and stops the alert manager.
pub(crate) struct Live {
    pub(crate) feed: Pin<Box<dyn Stream<Item = Feed> + Send>>,
    pub(crate) links: Vec<LinkWatch>,
    pub(crate) alerts: AlertManager,
}

/// Opens one property observer and one event subscription per Thing and starts the alert
/// manager on the property updates.
///
/// # Errors
/// A Thing offers no usable form, a credential is missing, or the rules are invalid.
pub(crate) fn start(
    options: &Options,
    things: &[ConsumedThing],
    rules: RuleSet,
) -> Result<Live, SetupError> {
    let subscriber = EventSubscriber::builder()
        .credentials(credentials(options, things)?)
        .build();
    let mut sources: Vec<Pin<Box<dyn Stream<Item = Feed> + Send>>> = Vec::new();
    let mut links = Vec::new();
    let mut manager = AlertManager::builder(rules);
    for thing in things {
        manager = manager.thing(thing.thing().clone());
        let observer = subscriber.observe_all_properties(thing, ObserveOptions::new())?;
        for (label, _mode, state) in observer.connections() {
            links.push((thing.id().to_owned(), label.clone(), state.clone()));
        }
        sources.push(Box::pin(observer.map(|item| match item {
            Ok(update) => Feed::Property(update),
            Err(error) => Feed::Problem(error.to_string()),
        })));
        if thing.thing().events().next().is_some() {
            let events = subscriber.subscribe_all([thing], SubscribeOptions::new().buffer(None))?;
            for subscription in events.subscriptions() {
                links.push((
                    thing.id().to_owned(),
                    EVENTS.to_owned(),
                    subscription.state(),
                ));
            }
            sources.push(Box::pin(events.map(|item| match item {
                Ok(record) => Feed::Event(record),
                Err(error) => Feed::Problem(error.to_string()),
            })));
        }
    }
    // The alert manager reads its own copy of the property updates through a bounded queue;
    // `tee_updates` below fills it.
    let (to_alerts, updates) = mpsc::channel(ALERT_QUEUE);
    let alerts = manager.start(updates.map(|u: PropertyUpdate| {
        wot_alerts::PropertyUpdate::new(u.thing_id, u.property, u.value)
    }))?;
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
                _ => None,
            }
        },
    )));
    let feed = tee_updates(stream::select_all(sources), to_alerts);
    Ok(Live {
        feed: Box::pin(feed),
        links,
        alerts,
    })
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
