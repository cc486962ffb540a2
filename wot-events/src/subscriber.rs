//! `EventSubscriber`: the entry point that loads TDs and opens subscriptions.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures::stream::StreamExt;
use http::Method;
use serde_json::Value;
use tokio::sync::watch;
use url::Url;
use wot_sse::{ReconnectPolicy, SseClient, redact_url};
use wot_td::{Affordance, AffordanceKind, Operation};

use crate::error::{Error, Repr};
use crate::events::{EventDecoder, MergedSubscription, SubscribeOptions, Subscription};
use crate::properties::{ObserveMode, ObserveOptions, PropertyObserver};
use crate::record::SharedStr;
use crate::resume::{
    DEFAULT_DEDUP_WINDOW, DEFAULT_MAX_RESUME_ID_LEN, ResumeConfig, ResumeStore, StreamKey,
};
use crate::security::{Auth, Credentials};
use crate::skipped::unless_unusable;
use crate::state::ConnectionState;
use crate::thing::ConsumedThing;
use crate::transport::{
    HttpConfig, Kind, Limits, RawStream, ResumeStart, Target, is_json, pick, poll_stream, require,
    send, sse_stream,
};

/// What a TD URL should answer, for [`Repr::ContentType`].
const THING_DESCRIPTION: &str = "a Thing Description (application/td+json or application/json)";
/// What a directory's `/things` should answer, for [`Repr::ContentType`].
const DIRECTORY_LISTING: &str = "a JSON array of Thing Descriptions (application/json)";

/// A raw stream and its state.
type Opened = (RawStream, watch::Receiver<ConnectionState>);

/// Default limit on a Thing Description or directory listing body: 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;
/// Default limit on a one-shot, polling or long-poll response body (a property value, an
/// action's output, an event): 1 MiB.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 1024 * 1024;
/// Default limit on the number of TDs taken from one directory listing: 1000.
pub const DEFAULT_MAX_DIRECTORY_ENTRIES: usize = 1000;
/// Default time limit of a whole request (TD fetch, directory, one-shots, polling reads),
/// from connecting to the end of the body: 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time limit of one long-poll request: 2 minutes, longer than the usual server hold
/// (30 to 60 s). A long poll that times out is sent again at once; it is not a failure.
pub const DEFAULT_LONG_POLL_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time limit for opening a TCP (and TLS) connection, on the default HTTP client: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit on redirects followed for one request: 10.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

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
    config: Arc<HttpConfig>,
    sse: SseClient,
    credentials: Credentials,
    resume: Option<ResumeConfig>,
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
    http_client: Option<reqwest::Client>,
    sse_client: Option<SseClient>,
    credentials: Credentials,
    max_body: Option<usize>,
    max_response_body: Option<usize>,
    max_directory_entries: Option<usize>,
    request_timeout: Option<Duration>,
    long_poll_timeout: Option<Duration>,
    max_redirects: Option<usize>,
    reconnect: Option<ReconnectPolicy>,
    resume: Option<ResumeConfig>,
    dedup_window: Option<usize>,
    max_resume_id_len: Option<usize>,
}

/// Setters that store their argument as the setting (`self.name = Some(value)`); `try_build`
/// puts in the default of each setting left unset.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident($value:ident: $type:ty);)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, $value: $type) -> Self {
                self.$name = Some($value);
                self
            }
        )*
    };
}

impl EventSubscriberBuilder {
    /// Credentials for secured Things (default: none, so only `nosec` forms work).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    setters! {
        /// The HTTP client for TDs, polling and one-shot operations, and under the default SSE
        /// client (default: a new `reqwest::Client` with redirects off and a connect timeout of
        /// [`DEFAULT_CONNECT_TIMEOUT`]).
        ///
        /// Build it with `redirect(reqwest::redirect::Policy::none())`: this crate follows
        /// redirects itself so that credentials never reach another origin, which only works if
        /// reqwest hands the 3xx responses over. Set no total timeout on it (event streams are long
        /// responses); this crate sets one per request.
        http_client(http: reqwest::Client);

        /// The SSE client, with its reconnect policy and idle timeout (default: an `SseClient` on
        /// the HTTP client, with wot-sse's defaults and the [`reconnect`](Self::reconnect) policy).
        sse_client(sse: SseClient);

        /// Largest Thing Description or directory listing body accepted, in bytes (default
        /// [`DEFAULT_MAX_BODY`], 16 MiB). Past it:
        /// [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge).
        max_body(bytes: usize);

        /// Largest one-shot, polling or long-poll response body accepted, in bytes (default
        /// [`DEFAULT_MAX_RESPONSE_BODY`], 1 MiB). Past it:
        /// [`ErrorKind::TooLarge`](crate::ErrorKind::TooLarge).
        max_response_body(bytes: usize);

        /// Most TDs taken from one directory listing (default [`DEFAULT_MAX_DIRECTORY_ENTRIES`],
        /// 1000). Past it: [`ErrorKind::TooManyThings`](crate::ErrorKind::TooManyThings).
        max_directory_entries(n: usize);

        /// Time limit of a whole request, from connecting to the end of the body, redirects
        /// included: TD fetch, directory, one-shots and polling reads (default
        /// [`DEFAULT_REQUEST_TIMEOUT`], 30 s). Past it:
        /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout). At least 1 ms is used.
        request_timeout(timeout: Duration);

        /// Time limit of one long-poll request (default [`DEFAULT_LONG_POLL_TIMEOUT`], 2 minutes).
        /// Make it longer than the time the server holds a request when nothing happens: a long
        /// poll that times out is sent again at once, without an error. At least 1 ms is used.
        long_poll_timeout(timeout: Duration);

        /// Most redirects followed for one request (default [`DEFAULT_MAX_REDIRECTS`], 10), the
        /// default SSE client's included. Past it:
        /// [`ErrorKind::Redirect`](crate::ErrorKind::Redirect), terminal (over SSE too).
        max_redirects(n: usize);

        /// How polling and long polling retry after failures, and the reconnect policy of the
        /// default SSE client (default: `ReconnectPolicy::new()`, 1 s growing by 1.5 up to 30 s
        /// with jitter, giving up after 5 failures in a row).
        reconnect(policy: ReconnectPolicy);
    }

    /// Where SSE streams resume from after a restart (default: none, every stream starts
    /// from the server's present and nothing is de-duplicated).
    ///
    /// Every SSE subscription and SSE property observation built by the subscriber then
    /// [loads](ResumeStore::load) its [`ResumePoint`](crate::ResumePoint) once (by its
    /// [`StreamKey`]): the point's last event id is sent as `Last-Event-ID` on the first
    /// connection (unless [`SubscribeOptions::last_event_id`](crate::SubscribeOptions::last_event_id)
    /// names another), and its recent ids seed the stream's window of
    /// [`dedup_window`](Self::dedup_window) ids. An event whose id is in the window is dropped
    /// (counted by `duplicates_dropped()`, logged at debug level): a server that sends events
    /// again, after a restart or a reconnect, has each delivered once, as long as the repeats
    /// are among the last `dedup_window` ids. Each event with a new id
    /// [advances](ResumeStore::advance) the store in the consumer's `poll_next`.
    ///
    /// Long polling and polling carry no event ids: those streams neither resume nor drop
    /// repeats, whatever the store.
    pub fn resume_store(mut self, store: Arc<dyn ResumeStore>) -> Self {
        self.resume = Some(ResumeConfig {
            store,
            window: DEFAULT_DEDUP_WINDOW,
            max_id_len: DEFAULT_MAX_RESUME_ID_LEN,
        });
        self
    }

    setters! {
        /// How many recent event ids each SSE stream remembers to drop repeats, with a
        /// [`resume_store`](Self::resume_store) (default [`DEFAULT_DEDUP_WINDOW`], 256; 0 drops
        /// none). Memory: up to this many ids per stream, each at most
        /// [`max_resume_id_len`](Self::max_resume_id_len) bytes.
        dedup_window(ids: usize);

        /// The longest event id resumed from and de-duplicated, in bytes, with a
        /// [`resume_store`](Self::resume_store) (default [`DEFAULT_MAX_RESUME_ID_LEN`], 4 KiB, the
        /// default limit of wot-sse on an `id` line). An event with a longer id is handed on
        /// without advancing the store or entering the window; a stored id that is longer, or holds
        /// U+0000, is not sent (the stream starts without `Last-Event-ID`, with a warning).
        max_resume_id_len(bytes: usize);
    }

    /// Builds the subscriber.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) for an invalid reconnect policy (factor
    /// below 1, jitter outside 0 to 1, `max_attempts(Some(0))`...), or a default HTTP client that
    /// cannot be built.
    pub fn try_build(self) -> Result<EventSubscriber, Error> {
        let resume = self.resume_config();
        let http = match self.http_client {
            Some(http) => http,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
                .build()
                .map_err(|e| {
                    Error::from(Repr::Config(format!("cannot build the HTTP client: {e}")))
                })?,
        };
        let reconnect = self.reconnect.unwrap_or_default();
        // Building an SSE client checks the policy.
        let checked = SseClient::builder()
            .http_client(http.clone())
            .reconnect(reconnect.clone())
            .max_redirects(self.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS))
            .build()
            .map_err(|e| Error::from(Repr::Config(e.to_string())))?;
        let sse = self.sse_client.unwrap_or(checked);
        let millis = Duration::from_millis(1);
        Ok(EventSubscriber {
            config: Arc::new(HttpConfig {
                client: http,
                max_body: self.max_body.unwrap_or(DEFAULT_MAX_BODY),
                max_response_body: self.max_response_body.unwrap_or(DEFAULT_MAX_RESPONSE_BODY),
                max_directory_entries: self
                    .max_directory_entries
                    .unwrap_or(DEFAULT_MAX_DIRECTORY_ENTRIES),
                request_timeout: self
                    .request_timeout
                    .unwrap_or(DEFAULT_REQUEST_TIMEOUT)
                    .max(millis),
                long_poll_timeout: self
                    .long_poll_timeout
                    .unwrap_or(DEFAULT_LONG_POLL_TIMEOUT)
                    .max(millis),
                max_redirects: self.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
                reconnect,
            }),
            sse,
            credentials: self.credentials,
            resume,
        })
    }

    /// The resume settings, with their defaults.
    fn resume_config(&self) -> Option<ResumeConfig> {
        self.resume.as_ref().map(|r| ResumeConfig {
            store: r.store.clone(),
            window: self.dedup_window.unwrap_or(r.window),
            max_id_len: self.max_resume_id_len.unwrap_or(r.max_id_len),
        })
    }

    /// Builds the subscriber. An invalid reconnect policy is replaced by the default one,
    /// with a `tracing` warning; use [`try_build`](Self::try_build) to get the error instead.
    pub fn build(self) -> EventSubscriber {
        let fallback = Self {
            reconnect: None,
            ..self.clone()
        };
        let resume = self.resume_config();
        match self.try_build() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "using the default reconnect policy");
                fallback
                    .try_build()
                    .unwrap_or_else(|_| EventSubscriber::minimal(resume))
            }
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

    /// A subscriber on a plain `reqwest::Client` (no redirects): the last resort of
    /// [`EventSubscriberBuilder::build`].
    fn minimal(resume: Option<ResumeConfig>) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        EventSubscriber {
            sse: SseClient::with_http_client(http.clone()),
            config: Arc::new(HttpConfig {
                client: http,
                max_body: DEFAULT_MAX_BODY,
                max_response_body: DEFAULT_MAX_RESPONSE_BODY,
                max_directory_entries: DEFAULT_MAX_DIRECTORY_ENTRIES,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                long_poll_timeout: DEFAULT_LONG_POLL_TIMEOUT,
                max_redirects: DEFAULT_MAX_REDIRECTS,
                reconnect: ReconnectPolicy::new(),
            }),
            credentials: Credentials::default(),
            resume,
        }
    }

    /// Limits of a one-shot request.
    fn one_shot(&self) -> Limits {
        Limits {
            max_body: self.config.max_response_body,
            timeout: self.config.request_timeout,
            max_redirects: self.config.max_redirects,
        }
    }

    /// The body of a GET of `url` that should be JSON (`expected` says what, for the error):
    /// a body that is not JSON, sent with a media type that says it is something else (an
    /// HTML page), is an [`ErrorKind::ContentType`](crate::ErrorKind::ContentType) error
    /// naming that type. A JSON body is taken whatever its media type says, and a body sent
    /// as JSON or as `text/plain` or `application/octet-stream` (what file servers say when
    /// they do not know) is left to the parser, whose error says where the JSON breaks.
    async fn get_json(&self, url: &Url, expected: &'static str) -> Result<Vec<u8>, Error> {
        let target = Target {
            url: url.clone(),
            method: Method::GET,
            auth: Auth::default(),
            kind: None,
        };
        let limits = Limits {
            max_body: self.config.max_body,
            ..self.one_shot()
        };
        let (content_type, body) = send(&self.config.client, &target, None, limits).await?;
        let media = content_type.as_deref().map(|t| {
            t.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
        let other_kind =
            |m: &str| !is_json(m) && !matches!(m, "text/plain" | "application/octet-stream");
        if media.as_deref().is_some_and(other_kind)
            && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err()
        {
            let found: String = media.unwrap_or_default().chars().take(100).collect();
            return Err(Error::from(Repr::ContentType {
                url: redact_url(url),
                expected,
                found,
            }));
        }
        Ok(body)
    }

    /// Fetches, parses and validates a TD; `url` becomes the base for relative hrefs.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::BadUrl`](crate::ErrorKind::BadUrl) (also for a scheme other than `http` and
    /// `https`), [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable),
    /// [`ErrorKind::Status`](crate::ErrorKind::Status),
    /// [`ErrorKind::ContentType`](crate::ErrorKind::ContentType) (the answer is not JSON and
    /// its media type, such as `text/html`, is not JSON either),
    /// [`ErrorKind::Parse`](crate::ErrorKind::Parse) (not JSON / not a TD),
    /// [`ErrorKind::NotAThing`](crate::ErrorKind::NotAThing),
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) (with the diagnostics).
    pub async fn fetch_thing(&self, url: impl AsRef<str>) -> Result<ConsumedThing, Error> {
        let url = parse_url(url.as_ref())?;
        let body = self.get_json(&url, THING_DESCRIPTION).await?;
        ConsumedThing::from_slice(&body, Some(url))
    }

    /// Lists a Thing Description Directory: `GET {directory}/things` (W3C WoT Discovery),
    /// which answers a JSON array of TDs. Each TD is checked on its own.
    ///
    /// # Errors
    ///
    /// The outer error when the directory cannot be read or is not a JSON array
    /// ([`ErrorKind::ContentType`](crate::ErrorKind::ContentType) for an answer such as an
    /// HTML page); an inner error per TD that does not parse or validate.
    pub async fn fetch_directory(
        &self,
        directory: impl AsRef<str>,
    ) -> Result<Vec<Result<ConsumedThing, Error>>, Error> {
        let mut base = parse_url(directory.as_ref())?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let url = base.join("things").map_err(|e| {
            Error::from(Repr::Directory {
                url: redact_url(&base),
                reason: e.to_string(),
            })
        })?;
        let shown = redact_url(&url);
        let body = self.get_json(&url, DIRECTORY_LISTING).await?;
        let limit = self.config.max_directory_entries;
        let list = parse_listing(&body, limit).map_err(|e| match e {
            Listing::TooMany => Error::from(Repr::TooManyThings {
                url: shown.clone(),
                limit,
            }),
            Listing::Json(e) => Error::from(Repr::Directory {
                url: shown.clone(),
                reason: format!("not a JSON array of Thing Descriptions: {e}"),
            }),
        })?;
        Ok(list
            .into_iter()
            .enumerate()
            .map(|(i, td)| {
                let bytes = serde_json::to_vec(&td).unwrap_or_default();
                let origin = crate::error::Origin {
                    name: format!("{shown} [{i}]"),
                    url: Some(shown.clone()),
                };
                ConsumedThing::parse(&bytes, origin, Some(url.clone()))
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
        let dropped = Arc::new(AtomicU64::new(0));
        let resume = self.resume_start(
            || StreamKey::event(thing.id(), event, &target.url),
            &dropped,
        );
        let (source, state) = self.open(&target, event, opts.last_event_id.as_deref(), resume)?;
        Ok(Subscription::new(
            source, state, decoder, &opts, label, dropped,
        ))
    }

    /// The form for a request that is not a stream: a one-shot read, write or invocation, or
    /// a polling read.
    fn request_target(
        &self,
        thing: &ConsumedThing,
        affordance: Affordance<'_>,
        op: Operation,
    ) -> Result<Target, Error> {
        require(thing, affordance, op, false, &self.credentials)
    }

    /// With a resume store: what an SSE stream under the key `key()` needs to resume.
    fn resume_start(
        &self,
        key: impl FnOnce() -> StreamKey,
        dropped: &Arc<AtomicU64>,
    ) -> Option<ResumeStart<'_>> {
        self.resume
            .as_ref()
            .map(|config| (config, key(), dropped.clone()))
    }

    fn open(
        &self,
        target: &Target,
        name: &str,
        last_event_id: Option<&str>,
        resume: Option<ResumeStart<'_>>,
    ) -> Result<Opened, Error> {
        tracing::debug!(url = %redact_url(&target.url), kind = ?target.kind, name, "opening");
        match target.kind {
            Some(Kind::Sse) => sse_stream(&self.sse, target, last_event_id, resume),
            _ => Ok(poll_stream(
                self.config.clone(),
                target.clone(),
                name.into(),
                None,
            )),
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
    /// An event none of whose forms this client can use (only `file:`, `javascript:`,
    /// `data:` or other non-HTTP hrefs, no subprotocol it speaks: see
    /// [`Error::is_unusable_form`]) is skipped, logged, and listed in
    /// [`MergedSubscription::skipped`]; the other events are subscribed. A Thing-level
    /// `subscribeallevents` form that cannot be used falls back to per-event forms.
    ///
    /// # Errors
    ///
    /// The first event that cannot be subscribed for another reason (security: a missing
    /// credential or an unsupported scheme).
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
        let mut skipped = Vec::new();
        for thing in things {
            let shared = self
                .pick_thing_level(thing, Operation::SubscribeAllEvents)?
                .filter(|t| t.kind == Some(Kind::Sse));
            if let Some(target) = shared {
                tracing::debug!(url = %redact_url(&target.url), thing = thing.id(), "one connection for all events");
                let dropped = Arc::new(AtomicU64::new(0));
                let resume =
                    self.resume_start(|| StreamKey::all_events(thing.id(), &target.url), &dropped);
                let (s, rx) = sse_stream(&self.sse, &target, None, resume)?;
                let decoder = EventDecoder::all(thing, opts.invalid);
                let label = format!("{} all events", thing.id());
                subs.push(Subscription::new(s, rx, decoder, &opts, label, dropped));
                continue;
            }
            for (name, _) in thing.thing().events() {
                let sub = self.subscribe(thing, name, opts.clone());
                let kind = AffordanceKind::Event;
                subs.extend(unless_unusable(sub, &mut skipped, thing, kind, name)?);
            }
        }
        Ok(MergedSubscription::new(subs, skipped))
    }

    /// The Thing-level form for `op` (`subscribeallevents`, `observeallproperties`), or
    /// `None` when there is none or none this client can use (then each affordance is
    /// opened on its own).
    fn pick_thing_level(
        &self,
        thing: &ConsumedThing,
        op: Operation,
    ) -> Result<Option<Target>, Error> {
        match pick(thing, Affordance::Thing, op, true, &self.credentials) {
            Err(e) if e.is_unusable_form() => {
                tracing::debug!(
                    thing = %crate::skipped::escape_controls(thing.id()),
                    op = op.as_str(),
                    error = %crate::skipped::escape_controls(&e.to_string()),
                    "the Thing-level form cannot be used; using the forms of each affordance"
                );
                Ok(None)
            }
            other => other,
        }
    }

    fn property_source(
        &self,
        thing: &ConsumedThing,
        name: &str,
        opts: &ObserveOptions,
        dropped: &Arc<AtomicU64>,
    ) -> Result<(RawStream, ObserveMode, watch::Receiver<ConnectionState>), Error> {
        let observable = thing
            .thing()
            .property(name)
            .ok_or_else(|| {
                Error::from(Repr::Form {
                    thing: thing.id().to_owned(),
                    source: wot_td::FormError::NoSuchAffordance {
                        kind: AffordanceKind::Property,
                        name: name.to_owned(),
                    },
                })
            })?
            .is_observable();
        let observe = if observable {
            match pick(
                thing,
                Affordance::Property(name),
                Operation::ObserveProperty,
                true,
                &self.credentials,
            ) {
                // Only `file:`... observe forms: polling a usable read form still works.
                Err(e) if e.is_unusable_form() => None,
                other => other?,
            }
        } else {
            None
        };
        if let Some(target) = observe {
            let mode = if target.kind == Some(Kind::Sse) {
                ObserveMode::Sse
            } else {
                ObserveMode::LongPoll
            };
            let resume = self.resume_start(
                || StreamKey::property(thing.id(), name, &target.url),
                dropped,
            );
            let (s, rx) = self.open(&target, name, None, resume)?;
            return Ok((own_items(s, name), mode, rx));
        }
        let target =
            self.request_target(thing, Affordance::Property(name), Operation::ReadProperty)?;
        let (s, rx) = poll_stream(
            self.config.clone(),
            target,
            name.into(),
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
        let dropped = Arc::new(AtomicU64::new(0));
        let (source, mode, rx) = self.property_source(thing, name, &opts, &dropped)?;
        Ok(PropertyObserver::new(
            thing,
            &[name.to_owned()],
            true,
            source,
            vec![(name.to_owned(), mode, rx)],
            &opts,
        )
        .with_dropped(dropped))
    }

    /// Observes every property of a Thing. With a Thing-level `observeallproperties` SSE
    /// form, one connection carries all of them (demultiplexed by the SSE `event` field);
    /// otherwise each property is observed as [`observe_property`](Self::observe_property)
    /// would, and write-only properties are left out.
    ///
    /// A property none of whose forms this client can use (only `file:`, `javascript:`,
    /// `data:` or other non-HTTP hrefs: see [`Error::is_unusable_form`]) is skipped, logged,
    /// and listed in [`PropertyObserver::skipped`]; the others are observed. A Thing-level
    /// `observeallproperties` form that cannot be used falls back to per-property forms.
    ///
    /// # Errors
    ///
    /// As [`observe_property`](Self::observe_property), for the first property that fails
    /// for another reason (security: a missing credential or an unsupported scheme).
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
        let shared = self
            .pick_thing_level(thing, Operation::ObserveAllProperties)?
            .filter(|t| t.kind == Some(Kind::Sse));
        let dropped = Arc::new(AtomicU64::new(0));
        if let Some(target) = shared {
            let resume = self.resume_start(
                || StreamKey::all_properties(thing.id(), &target.url),
                &dropped,
            );
            let (s, rx) = sse_stream(&self.sse, &target, None, resume)?;
            return Ok(PropertyObserver::new(
                thing,
                &names,
                false,
                s,
                vec![("*".to_owned(), ObserveMode::Sse, rx)],
                &opts,
            )
            .with_dropped(dropped));
        }
        let mut sources = Vec::new();
        let mut states = Vec::new();
        let mut skipped = Vec::new();
        for name in &names {
            let source = self.property_source(thing, name, &opts, &dropped);
            let kind = AffordanceKind::Property;
            let opened = unless_unusable(source, &mut skipped, thing, kind, name)?;
            if let Some((s, mode, rx)) = opened {
                sources.push(s);
                states.push((name.clone(), mode, rx));
            }
        }
        let merged = futures::stream::select_all(sources).boxed();
        Ok(
            PropertyObserver::new(thing, &names, false, merged, states, &opts)
                .with_skipped(skipped)
                .with_dropped(dropped),
        )
    }

    /// Reads a property once (HTTP GET unless the form says otherwise).
    ///
    /// # Errors
    ///
    /// Form or security errors, [`ErrorKind::Unreachable`](crate::ErrorKind::Unreachable),
    /// [`ErrorKind::Status`](crate::ErrorKind::Status) (with RFC 7807 problem details when the
    /// server sent them), [`ErrorKind::InvalidData`](crate::ErrorKind::InvalidData) for a body that
    /// is not JSON.
    pub async fn read_property(&self, thing: &ConsumedThing, name: &str) -> Result<Value, Error> {
        let target =
            self.request_target(thing, Affordance::Property(name), Operation::ReadProperty)?;
        let (_, body) = send(&self.config.client, &target, None, self.one_shot()).await?;
        parse_body(thing, &format!("property `{name}`"), &body)
    }

    /// Writes a property once (HTTP PUT with a JSON body unless the form says otherwise).
    /// The value is checked against the property's schema first.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a value outside the schema,
    /// and those of [`read_property`](Self::read_property).
    pub async fn write_property(
        &self,
        thing: &ConsumedThing,
        name: &str,
        value: &Value,
    ) -> Result<(), Error> {
        if let Some(p) = thing.thing().property(name) {
            check_input(thing, &format!("property `{name}`"), Some(&p.schema), value)?;
        }
        let target =
            self.request_target(thing, Affordance::Property(name), Operation::WriteProperty)?;
        send(&self.config.client, &target, Some(value), self.one_shot()).await?;
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
        let target =
            self.request_target(thing, Affordance::Action(name), Operation::InvokeAction)?;
        let (_, body) = send(&self.config.client, &target, input, self.one_shot()).await?;
        parse_body(thing, &what, &body)
    }
}

/// The items of a per-property connection, all labelled with that property: SSE events of
/// the default type `message`, or named after the property, are its values (as
/// [`EventSubscriber::observe_property`] takes them); events named after anything else are
/// not, and are dropped. So a property reads the same whether it is observed alone or with
/// the others on separate connections.
fn own_items(source: RawStream, property: &str) -> RawStream {
    let property = SharedStr::from(property);
    source
        .filter_map(move |item| {
            let item = match item {
                Ok(mut raw) => match raw.name.as_deref() {
                    None | Some("message") => {
                        raw.name = Some(property.clone());
                        Some(Ok(raw))
                    }
                    Some(n) if n == property.as_str() => Some(Ok(raw)),
                    Some(other) => {
                        tracing::debug!(property = %property, event = other, "ignoring event not named after the property");
                        None
                    }
                },
                Err(e) => Some(Err(e)),
            };
            futures::future::ready(item)
        })
        .boxed()
}

/// A URL to fetch a TD or listing from: HTTP(S) only.
fn parse_url(s: &str) -> Result<Url, Error> {
    let bad = |reason: String| {
        Error::from(Repr::BadUrl {
            url: crate::error::redact_text(s),
            reason,
        })
    };
    let url = Url::parse(s).map_err(|e| bad(e.to_string()))?;
    if !crate::transport::SCHEMES.contains(&url.scheme()) {
        return Err(bad(format!(
            "only http and https URLs are fetched, not `{}:` (read a local TD with \
             ConsumedThing::from_file)",
            url.scheme()
        )));
    }
    Ok(url)
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
        return Err(Error::from(Repr::InvalidInput {
            thing: thing.id().to_owned(),
            what: what.to_owned(),
            reason: format!("{at}{}", first.message),
        }));
    }
    Ok(())
}

fn parse_body(thing: &ConsumedThing, what: &str, body: &[u8]) -> Result<Value, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        Error::from(Repr::InvalidData {
            thing: thing.id().to_owned(),
            what: what.to_owned(),
            reason: format!("not JSON: {e}"),
            raw: crate::events::truncate(&String::from_utf8_lossy(body)),
        })
    })
}

/// Why a directory listing was refused.
enum Listing {
    TooMany,
    Json(serde_json::Error),
}

/// A JSON array of at most `limit` values; parsing stops at entry `limit + 1`.
fn parse_listing(body: &[u8], limit: usize) -> Result<Vec<Value>, Listing> {
    use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};

    struct Capped(usize);
    impl<'de> Visitor<'de> for Capped {
        type Value = Vec<Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<Value>()? {
                if out.len() >= self.0 {
                    return Err(A::Error::custom(TOO_MANY));
                }
                out.push(v);
            }
            Ok(out)
        }
    }
    const TOO_MANY: &str = "wot-events: too many entries";
    let mut de = serde_json::Deserializer::from_slice(body);
    let list = de
        .deserialize_seq(Capped(limit))
        .and_then(|list| de.end().map(|()| list))
        .map_err(|e| {
            if e.to_string().starts_with(TOO_MANY) {
                Listing::TooMany
            } else {
                Listing::Json(e)
            }
        })?;
    Ok(list)
}
