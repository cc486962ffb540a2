//! `EventSubscriber`: the entry point that loads TDs and opens subscriptions.

use std::sync::Arc;

use futures::stream::StreamExt;
use http::Method;
use serde_json::Value;
use tokio::sync::watch;
use url::Url;
use wot_sse::{ConnectionState, SseClient};
use wot_td::{Affordance, Operation};

use crate::error::{Error, display_url};
use crate::events::{EventDecoder, MergedSubscription, SubscribeOptions, Subscription};
use crate::properties::{ObserveMode, ObserveOptions, PropertyObserver};
use crate::security::{Auth, Credentials};
use crate::thing::ConsumedThing;
use crate::transport::{Kind, RawStream, Target, pick, poll_stream, require, send, sse_stream};

/// A raw stream, its state, and the state's sender when this crate drives it.
type Opened = (
    RawStream,
    watch::Receiver<ConnectionState>,
    Option<Arc<watch::Sender<ConnectionState>>>,
);

/// Default limit on a response body (TDs, directory listings, property values).
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// Loads Thing Descriptions and opens event subscriptions and property observers on them;
/// also reads, writes and invokes once. Cheap to clone (the HTTP clients are shared).
///
/// # Examples
///
/// ```no_run
/// use futures::StreamExt;
/// use wot_events::{EventSubscriber, SubscribeOptions};
///
/// # async fn run() -> Result<(), wot_events::Error> {
/// let subscriber = EventSubscriber::new();
/// let lamp = subscriber.fetch_thing("http://192.0.2.10/things/lamp").await?;
/// let mut overheat = subscriber.subscribe(&lamp, "overheat", SubscribeOptions::new())?;
/// while let Some(item) = overheat.next().await {
///     match item {
///         Ok(record) => println!("{} {}: {}", record.thing_title, record.event, record.data),
///         Err(e) if e.is_terminal() => return Err(e),
///         Err(e) => eprintln!("{e}"),
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct EventSubscriber {
    http: reqwest::Client,
    sse: SseClient,
    credentials: Credentials,
    max_body: usize,
}

impl Default for EventSubscriber {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds an [`EventSubscriber`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EventSubscriberBuilder {
    http: Option<reqwest::Client>,
    sse: Option<SseClient>,
    credentials: Credentials,
    max_body: Option<usize>,
}

impl EventSubscriberBuilder {
    /// The HTTP client for TDs, polling and one-shot operations (default: a new
    /// `reqwest::Client`, no timeout).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The SSE client, with its reconnect policy and idle timeout (default:
    /// `SseClient::with_http_client` of the HTTP client, wot-sse's defaults).
    pub fn sse_client(mut self, sse: SseClient) -> Self {
        self.sse = Some(sse);
        self
    }

    /// Credentials for secured Things (default: none, so only `nosec` forms work).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Largest response body accepted, in bytes (default [`DEFAULT_MAX_BODY`], 16 MiB).
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = Some(bytes);
        self
    }

    /// Builds the subscriber.
    pub fn build(self) -> EventSubscriber {
        let http = self.http.unwrap_or_default();
        let sse = self
            .sse
            .unwrap_or_else(|| SseClient::with_http_client(http.clone()));
        EventSubscriber {
            http,
            sse,
            credentials: self.credentials,
            max_body: self.max_body.unwrap_or(DEFAULT_MAX_BODY),
        }
    }
}

impl EventSubscriber {
    /// A subscriber with default settings and no credentials.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for clients, credentials and limits.
    pub fn builder() -> EventSubscriberBuilder {
        EventSubscriberBuilder::default()
    }

    async fn get_json(&self, url: &Url) -> Result<Vec<u8>, Error> {
        let target = Target {
            url: url.clone(),
            method: Method::GET,
            auth: Auth::default(),
            kind: None,
        };
        Ok(send(&self.http, &target, None, self.max_body).await?.1)
    }

    /// Fetches, parses and validates a TD; `url` becomes the base for relative hrefs.
    ///
    /// # Errors
    ///
    /// [`Error::BadUrl`], [`Error::Unreachable`], [`Error::Status`], [`Error::Parse`] (not
    /// JSON / not a TD),
    /// [`Error::NotAThing`], [`Error::Invalid`] (with the diagnostics).
    pub async fn fetch_thing(&self, url: impl AsRef<str>) -> Result<ConsumedThing, Error> {
        let url = parse_url(url.as_ref())?;
        let body = self.get_json(&url).await?;
        ConsumedThing::from_slice(&body, Some(url))
    }

    /// Lists a Thing Description Directory: `GET {directory}/things` (W3C WoT Discovery),
    /// which answers a JSON array of TDs. Each TD is checked on its own.
    ///
    /// # Errors
    ///
    /// The outer error when the directory cannot be read or is not a JSON array; an inner
    /// error per TD that does not parse or validate.
    pub async fn fetch_directory(
        &self,
        directory: impl AsRef<str>,
    ) -> Result<Vec<Result<ConsumedThing, Error>>, Error> {
        let mut base = parse_url(directory.as_ref())?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let url = base.join("things").map_err(|e| Error::Directory {
            url: display_url(&base),
            reason: e.to_string(),
        })?;
        let shown = display_url(&url);
        let body = self.get_json(&url).await?;
        let list: Vec<Value> = serde_json::from_slice(&body).map_err(|e| Error::Directory {
            url: shown.clone(),
            reason: format!("not a JSON array of Thing Descriptions: {e}"),
        })?;
        Ok(list
            .into_iter()
            .enumerate()
            .map(|(i, td)| {
                let bytes = serde_json::to_vec(&td).unwrap_or_default();
                ConsumedThing::parse(&bytes, format!("{shown} [{i}]"), Some(url.clone()))
            })
            .collect())
    }

    /// Subscribes to one event of a Thing.
    ///
    /// Picks the `subscribeevent` form: HTTP with the `sse` subprotocol first (WoT Profile:
    /// the SSE `event` field is the event name, `data` the JSON data, `id` the resume
    /// token), else `longpoll` (each GET answers the next event). The connection opens when
    /// the stream is first polled.
    ///
    /// # Errors
    ///
    /// No such event, no usable form, or an unsatisfiable security scheme.
    pub fn subscribe(
        &self,
        thing: &ConsumedThing,
        event: &str,
        opts: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        let target = require(
            thing,
            Affordance::Event(event),
            Operation::SubscribeEvent,
            true,
            &self.credentials,
        )?;
        let decoder = EventDecoder::single(thing, event, opts.invalid);
        let label = format!("{} event {event}", thing.id());
        let (source, state, own) = self.open(&target, event, opts.last_event_id.as_deref())?;
        Ok(Subscription::new(source, state, own, decoder, &opts, label))
    }

    fn open(
        &self,
        target: &Target,
        name: &str,
        last_event_id: Option<&str>,
    ) -> Result<Opened, Error> {
        tracing::debug!(url = %display_url(&target.url), kind = ?target.kind, name, "opening");
        match target.kind {
            Some(Kind::Sse) => {
                let (s, rx) = sse_stream(&self.sse, target, last_event_id)?;
                Ok((s, rx, None))
            }
            _ => {
                let (s, rx, tx) = poll_stream(
                    self.http.clone(),
                    target.clone(),
                    name.to_owned(),
                    self.max_body,
                    None,
                );
                Ok((s, rx, Some(tx)))
            }
        }
    }

    /// Every event of every given Thing, merged into one stream.
    ///
    /// A Thing whose TD has a Thing-level `subscribeallevents` form with the SSE
    /// subprotocol gets ONE connection for all its events, demultiplexed by the SSE `event`
    /// field; other Things get one subscription per event. Options apply to each
    /// subscription, except [`SubscribeOptions::last_event_id`], which names a position in
    /// one stream and is ignored here.
    ///
    /// # Errors
    ///
    /// The first event that cannot be subscribed (no usable form, security).
    pub fn subscribe_all<'a>(
        &self,
        things: impl IntoIterator<Item = &'a ConsumedThing>,
        opts: SubscribeOptions,
    ) -> Result<MergedSubscription, Error> {
        let opts = SubscribeOptions {
            last_event_id: None,
            ..opts
        };
        let mut subs = Vec::new();
        for thing in things {
            let shared = pick(
                thing,
                Affordance::Thing,
                Operation::SubscribeAllEvents,
                true,
                &self.credentials,
            )?
            .filter(|t| t.kind == Some(Kind::Sse));
            if let Some(target) = shared {
                tracing::debug!(url = %display_url(&target.url), thing = thing.id(), "one connection for all events");
                let (s, rx) = sse_stream(&self.sse, &target, None)?;
                let decoder = EventDecoder::all(thing, opts.invalid);
                let label = format!("{} all events", thing.id());
                subs.push(Subscription::new(s, rx, None, decoder, &opts, label));
                continue;
            }
            for (name, _) in thing.thing().events() {
                subs.push(self.subscribe(thing, name, opts.clone())?);
            }
        }
        Ok(MergedSubscription::new(subs))
    }

    fn property_source(
        &self,
        thing: &ConsumedThing,
        name: &str,
        opts: &ObserveOptions,
    ) -> Result<(RawStream, ObserveMode, watch::Receiver<ConnectionState>), Error> {
        let observable = thing
            .thing()
            .property(name)
            .ok_or_else(|| Error::Form {
                thing: thing.id().to_owned(),
                source: wot_td::FormError::NoSuchAffordance {
                    kind: "property",
                    name: name.to_owned(),
                },
            })?
            .is_observable();
        let observe = if observable {
            pick(
                thing,
                Affordance::Property(name),
                Operation::ObserveProperty,
                true,
                &self.credentials,
            )?
        } else {
            None
        };
        if let Some(target) = observe {
            let mode = if target.kind == Some(Kind::Sse) {
                ObserveMode::Sse
            } else {
                ObserveMode::LongPoll
            };
            let (s, rx, _) = self.open(&target, name, None)?;
            return Ok((s, mode, rx));
        }
        let target = require(
            thing,
            Affordance::Property(name),
            Operation::ReadProperty,
            false,
            &self.credentials,
        )?;
        let (s, rx, _) = poll_stream(
            self.http.clone(),
            target,
            name.to_owned(),
            self.max_body,
            Some(opts.interval),
        );
        Ok((s, ObserveMode::Polling, rx))
    }

    /// Observes one property: an `observeproperty` SSE form (`event` is the property name,
    /// `data` the value), else a `longpoll` form, else polling `readproperty` every
    /// [`ObserveOptions::interval`] (yielding only changes unless
    /// [`ObserveOptions::every_read`]). Values outside the property's schema are flagged on
    /// the update, not dropped.
    ///
    /// # Errors
    ///
    /// No such property, no usable form, or an unsatisfiable security scheme.
    pub fn observe_property(
        &self,
        thing: &ConsumedThing,
        name: &str,
        opts: ObserveOptions,
    ) -> Result<PropertyObserver, Error> {
        let (source, mode, rx) = self.property_source(thing, name, &opts)?;
        Ok(PropertyObserver::new(
            thing,
            &[name.to_owned()],
            true,
            source,
            vec![(name.to_owned(), mode, rx)],
            &opts,
        ))
    }

    /// Observes every property of a Thing. With a Thing-level `observeallproperties` SSE
    /// form, one connection carries all of them (demultiplexed by the SSE `event` field);
    /// otherwise each property is observed as [`observe_property`](Self::observe_property)
    /// would, and write-only properties are skipped.
    ///
    /// # Errors
    ///
    /// As [`observe_property`](Self::observe_property), for the first property that fails.
    pub fn observe_all_properties(
        &self,
        thing: &ConsumedThing,
        opts: ObserveOptions,
    ) -> Result<PropertyObserver, Error> {
        let names: Vec<String> = thing
            .thing()
            .properties()
            .filter(|(_, p)| !p.schema.is_write_only())
            .map(|(n, _)| n.to_owned())
            .collect();
        let shared = pick(
            thing,
            Affordance::Thing,
            Operation::ObserveAllProperties,
            true,
            &self.credentials,
        )?
        .filter(|t| t.kind == Some(Kind::Sse));
        if let Some(target) = shared {
            let (s, rx) = sse_stream(&self.sse, &target, None)?;
            return Ok(PropertyObserver::new(
                thing,
                &names,
                false,
                s,
                vec![("*".to_owned(), ObserveMode::Sse, rx)],
                &opts,
            ));
        }
        let mut sources = Vec::new();
        let mut states = Vec::new();
        for name in &names {
            let (s, mode, rx) = self.property_source(thing, name, &opts)?;
            sources.push(s);
            states.push((name.clone(), mode, rx));
        }
        let merged = futures::stream::select_all(sources).boxed();
        Ok(PropertyObserver::new(
            thing, &names, false, merged, states, &opts,
        ))
    }

    /// Reads a property once (HTTP GET unless the form says otherwise).
    ///
    /// # Errors
    ///
    /// Form or security errors, [`Error::Unreachable`], [`Error::Status`] (with RFC 7807
    /// problem details when the server sent them), [`Error::InvalidData`] for a body that
    /// is not JSON.
    pub async fn read_property(&self, thing: &ConsumedThing, name: &str) -> Result<Value, Error> {
        let target = require(
            thing,
            Affordance::Property(name),
            Operation::ReadProperty,
            false,
            &self.credentials,
        )?;
        let (_, body) = send(&self.http, &target, None, self.max_body).await?;
        parse_body(thing, &format!("property `{name}`"), &body)
    }

    /// Writes a property once (HTTP PUT with a JSON body unless the form says otherwise).
    /// The value is checked against the property's schema first.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a value outside the schema, and those of
    /// [`read_property`](Self::read_property).
    pub async fn write_property(
        &self,
        thing: &ConsumedThing,
        name: &str,
        value: &Value,
    ) -> Result<(), Error> {
        if let Some(p) = thing.thing().property(name) {
            check_input(thing, &format!("property `{name}`"), Some(&p.schema), value)?;
        }
        let target = require(
            thing,
            Affordance::Property(name),
            Operation::WriteProperty,
            false,
            &self.credentials,
        )?;
        send(&self.http, &target, Some(value), self.max_body).await?;
        Ok(())
    }

    /// Invokes an action once (HTTP POST with a JSON body unless the form says otherwise)
    /// and returns its output (`null` for an empty response). The input is checked against
    /// the action's `input` schema first.
    ///
    /// # Errors
    ///
    /// As [`write_property`](Self::write_property).
    pub async fn invoke_action(
        &self,
        thing: &ConsumedThing,
        name: &str,
        input: Option<&Value>,
    ) -> Result<Value, Error> {
        let what = format!("action `{name}`");
        if let (Some(a), Some(v)) = (thing.thing().action(name), input) {
            check_input(thing, &what, a.input.as_ref(), v)?;
        }
        let target = require(
            thing,
            Affordance::Action(name),
            Operation::InvokeAction,
            false,
            &self.credentials,
        )?;
        let (_, body) = send(&self.http, &target, input, self.max_body).await?;
        parse_body(thing, &what, &body)
    }
}

fn parse_url(s: &str) -> Result<Url, Error> {
    Url::parse(s).map_err(|e| Error::BadUrl {
        url: s.split('?').next().unwrap_or_default().to_owned(),
        reason: e.to_string(),
    })
}

fn check_input(
    thing: &ConsumedThing,
    what: &str,
    schema: Option<&wot_td::DataSchema>,
    value: &Value,
) -> Result<(), Error> {
    if let Some(first) = schema.and_then(|s| s.validate_value(value).into_iter().next()) {
        let at = if first.path.is_empty() {
            String::new()
        } else {
            format!("{}: ", first.path)
        };
        return Err(Error::InvalidInput {
            thing: thing.id().to_owned(),
            what: what.to_owned(),
            reason: format!("{at}{}", first.message),
        });
    }
    Ok(())
}

fn parse_body(thing: &ConsumedThing, what: &str, body: &[u8]) -> Result<Value, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| Error::InvalidData {
        thing: thing.id().to_owned(),
        what: what.to_owned(),
        reason: format!("not JSON: {e}"),
        raw: crate::events::truncate(&String::from_utf8_lossy(body)),
    })
}
