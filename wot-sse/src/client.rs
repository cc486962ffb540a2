//! `SseClient` and the builders that configure clients and requests.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http::header::{
    AUTHORIZATION, COOKIE, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHORIZATION,
};
use url::Url;

use crate::backoff::ReconnectPolicy;
use crate::error::Error;
use crate::parser::{
    DEFAULT_MAX_COMMENT_LEN, DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_EVENT_TYPE_LEN, DEFAULT_MAX_ID_LEN,
};
use crate::stream::EventStream;

/// The default idle timeout: 45 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(45);

/// The default connect timeout: 30 s for everything up to the response head.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The default limit on redirects followed for one connection: 10.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

type BoxError = Box<dyn StdError + Send + Sync>;
pub(crate) type TokenFuture = Pin<Box<dyn Future<Output = Result<Secret, BoxError>> + Send>>;
pub(crate) type TokenProvider = Arc<dyn Fn() -> TokenFuture + Send + Sync>;

/// A token that never shows in `Debug` output or logs.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a connection gets its bearer token.
#[derive(Clone, Default)]
pub(crate) enum Auth {
    #[default]
    None,
    Bearer(Secret),
    Provider(TokenProvider),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Bearer(_) => "Bearer(<redacted>)",
            Auth::Provider(_) => "Provider(..)",
        })
    }
}

/// Settings a client holds as defaults and a request may override, and the request's own
/// method, body and credentials.
///
/// Clients, requests and streams share them behind an `Arc`: a request that changes nothing
/// (a `GET` with the client's settings) uses the client's copy, so an open stream pays a
/// pointer for them, not about 300 bytes.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `None` only in a client builder's defaults: `build` fills it in.
    pub(crate) http: Option<reqwest::Client>,
    pub(crate) method: Method,
    pub(crate) headers: HeaderMap,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) max_event_size: usize,
    pub(crate) max_id_len: usize,
    pub(crate) max_event_type_len: usize,
    pub(crate) max_comment_len: usize,
    pub(crate) max_redirects: usize,
    pub(crate) body: Option<Bytes>,
    pub(crate) auth: Auth,
    pub(crate) token_query_param: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: None,
            method: Method::GET,
            headers: HeaderMap::new(),
            reconnect: ReconnectPolicy::new(),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            max_id_len: DEFAULT_MAX_ID_LEN,
            max_event_type_len: DEFAULT_MAX_EVENT_TYPE_LEN,
            max_comment_len: DEFAULT_MAX_COMMENT_LEN,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            body: None,
            auth: Auth::None,
            token_query_param: None,
        }
    }
}

/// Everything a stream needs to (re)connect, fixed when the stream is created.
///
/// Every open stream holds one, and each connection attempt gets a clone: the URL is boxed
/// (one word here) and everything else is in the shared settings.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The request URL, checked to be `http` or `https`.
    url: Box<Url>,
    pub(crate) settings: Arc<Settings>,
}

impl Spec {
    /// The request method.
    pub(crate) fn method(&self) -> &Method {
        &self.settings.method
    }

    /// The HTTP client.
    ///
    /// # Errors
    ///
    /// None in practice: every client's settings have one.
    pub(crate) fn http(&self) -> Result<&reqwest::Client, Error> {
        self.settings
            .http
            .as_ref()
            .ok_or_else(|| Error::builder("no HTTP client"))
    }

    /// The request URL.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The URL without query and user info, for logs and errors.
    pub(crate) fn url_for_logs(&self) -> String {
        redact_url(&self.url)
    }
}

/// An SSE client: a `reqwest::Client` plus default settings for the streams it opens.
///
/// Cloning is cheap and shares the connection pool.
///
/// # Examples
///
/// ```no_run
/// use futures::StreamExt;
/// use wot_sse::SseClient;
///
/// # async fn run() -> Result<(), wot_sse::Error> {
/// let client = SseClient::new();
/// let mut events = client.get("https://thing.example/properties/observe").connect()?;
/// while let Some(item) = events.next().await {
///     match item {
///         Ok(event) => println!("{}: {}", event.event_type(), event.data()),
///         Err(error) if error.is_terminal() => return Err(error),
///         Err(error) => eprintln!("will reconnect: {error}"),
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SseClient {
    /// The defaults for its requests, with the `reqwest::Client`.
    settings: Arc<Settings>,
}

impl Default for SseClient {
    fn default() -> Self {
        Self::new()
    }
}

impl SseClient {
    /// A client with default settings and its own `reqwest::Client`.
    ///
    /// # Panics
    ///
    /// If the TLS backend cannot be initialised, as `reqwest::Client::new` does. Use
    /// [`SseClient::builder`] to get an error instead.
    #[expect(
        clippy::panic,
        reason = "documented, as reqwest::Client::new; the builder returns the error instead"
    )]
    pub fn new() -> Self {
        match Self::builder().build() {
            Ok(client) => client,
            Err(error) => panic!("cannot build the HTTP client: {error}"),
        }
    }

    /// A builder for a client with non-default settings.
    pub fn builder() -> SseClientBuilder {
        SseClientBuilder::default()
    }

    /// A client with default settings on top of your `reqwest::Client`.
    ///
    /// Build it with `redirect(reqwest::redirect::Policy::none())`: this client follows
    /// redirects itself (with the limit and the rule that credentials are not sent to another
    /// origin), which only works if reqwest hands the 3xx responses over. Do not set a total
    /// request timeout on it: an event stream is one long response.
    pub fn with_http_client(http: reqwest::Client) -> Self {
        Self {
            settings: Arc::new(Settings {
                http: Some(http),
                ..Settings::default()
            }),
        }
    }

    /// Starts a `GET` request for an event stream.
    pub fn get(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Starts a `POST` request for an event stream; set its body with
    /// [`RequestBuilder::body`].
    pub fn post(&self, url: impl AsRef<str>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Starts a request with any method, e.g. `REPORT`.
    pub fn request(&self, method: Method, url: impl AsRef<str>) -> RequestBuilder {
        // The text of an unparsable URL may hold credentials, so only the reason is kept.
        let url = Url::parse(url.as_ref())
            .map_err(|error| Error::builder(format!("invalid URL: {error}")));
        RequestBuilder {
            url,
            draft: Draft {
                settings: self.settings.clone(),
                error: None,
            },
            last_event_id: String::new(),
        }
        .method(method)
    }
}

/// What both builders hold: the settings so far, and the first bad one.
///
/// A request's settings are its client's until a setter changes one (then a copy).
#[derive(Debug, Default)]
struct Draft {
    settings: Arc<Settings>,
    error: Option<Error>,
}

impl Draft {
    fn settings_mut(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    fn header<K, V>(&mut self, name: K, value: V, credential: bool)
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        if let Err(error) = insert_header(&mut self.settings_mut().headers, name, value, credential)
        {
            self.error.get_or_insert(error);
        }
    }

    /// The settings, or the first bad one.
    fn finish(self) -> Result<Arc<Settings>, Error> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.settings.reconnect.validate().map_err(Error::builder)?;
        Ok(self.settings)
    }
}

/// The setters [`SseClientBuilder`] and [`RequestBuilder`] share, written once for both: on a
/// client they set the default of its requests, on a request they override that default.
macro_rules! shared_setters {
    () => {
        /// Adds a header (replacing one of the same name). Default: none besides
        /// `Accept: text/event-stream` and `Cache-Control: no-cache`.
        ///
        /// A header is a *credential* when its name is `Authorization`, `Cookie` or
        /// `Proxy-Authorization`, or when its value is marked
        /// [sensitive](HeaderValue::set_sensitive) (pass a `HeaderValue` you marked, or use
        /// [`credential_header`](Self::credential_header)). A credential is never logged and is
        /// sent only to the origin of the request URL: on a redirect to another origin (scheme,
        /// host or port differ) it is dropped and the redirect is followed without it. Put an
        /// API key in a custom header such as `X-Token` only through one of these two ways: a
        /// plain value is an ordinary header and follows redirects anywhere.
        pub fn header<K, V>(mut self, name: K, value: V) -> Self
        where
            K: TryInto<HeaderName>,
            V: TryInto<HeaderValue>,
        {
            self.draft.header(name, value, false);
            self
        }

        /// Adds a header that carries a credential (replacing one of the same name), such as an
        /// API key in `X-Token`: the value is marked sensitive, so it is never logged and is
        /// dropped on a redirect to another origin (see [`header`](Self::header)).
        ///
        /// ```no_run
        /// # let client = wot_sse::SseClient::new();
        /// let stream = client
        ///     .get("https://thing.example/events")
        ///     .credential_header("x-api-key", "k-123")
        ///     .connect();
        /// ```
        pub fn credential_header<K, V>(mut self, name: K, value: V) -> Self
        where
            K: TryInto<HeaderName>,
            V: TryInto<HeaderValue>,
        {
            self.draft.header(name, value, true);
            self
        }

        /// The reconnect policy. Default: [`ReconnectPolicy::new`].
        pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
            self.draft.settings_mut().reconnect = policy;
            self
        }

        /// How long the stream may wait for the server without receiving a byte (comments
        /// count) before the connection is taken for dead and replaced. The clock starts when
        /// the stream has handed out everything received and waits for more, so time spent by
        /// your code between polls does not count. It also bounds the wait for response
        /// headers. `None` disables it. Default: 45 s ([`DEFAULT_IDLE_TIMEOUT`]).
        pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
            self.draft.settings_mut().idle_timeout = timeout.into();
            self
        }

        /// How long one connection attempt may take up to the response head: asking the token
        /// provider, DNS, TCP, TLS, every redirect and the response head together. The shorter
        /// of this and the idle timeout applies. Past it the attempt fails with an
        /// [`is_timeout`](Error::is_timeout) error and the stream reconnects. `None` leaves only
        /// the idle timeout. Default: 30 s ([`DEFAULT_CONNECT_TIMEOUT`]).
        pub fn connect_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
            self.draft.settings_mut().connect_timeout = timeout.into();
            self
        }

        /// The maximum event size in bytes; a larger event is skipped with an error. Default:
        /// 32 MiB (see
        /// [`parser::Parser::with_max_event_size`](crate::parser::Parser::with_max_event_size)).
        pub fn max_event_size(mut self, bytes: usize) -> Self {
            self.draft.settings_mut().max_event_size = bytes;
            self
        }

        /// The limit on an event id in bytes. An `id` field with a longer value yields an
        /// [`is_field_too_long`](Error::is_field_too_long) error and is ignored: the last event
        /// id stays and the event is still delivered. Default: 4 KiB (see
        /// [`parser::Parser::with_max_id_len`](crate::parser::Parser::with_max_id_len)).
        pub fn max_id_len(mut self, bytes: usize) -> Self {
            self.draft.settings_mut().max_id_len = bytes;
            self
        }

        /// The limit on an event type in bytes. An `event` field with a longer value yields an
        /// [`is_field_too_long`](Error::is_field_too_long) error and its event is skipped.
        /// Default: 1 KiB.
        pub fn max_event_type_len(mut self, bytes: usize) -> Self {
            self.draft.settings_mut().max_event_type_len = bytes;
            self
        }

        /// The limit on a comment line in bytes (its `:` included). A longer one yields an
        /// [`is_field_too_long`](Error::is_field_too_long) error and is skipped. Default:
        /// 64 KiB.
        pub fn max_comment_len(mut self, bytes: usize) -> Self {
            self.draft.settings_mut().max_comment_len = bytes;
            self
        }

        /// How many redirects one connection follows. Default: 10
        /// ([`DEFAULT_MAX_REDIRECTS`]).
        pub fn max_redirects(mut self, redirects: usize) -> Self {
            self.draft.settings_mut().max_redirects = redirects;
            self
        }
    };
}

/// Builds an [`SseClient`] with default settings for its streams.
///
/// Every setting can be overridden per request on [`RequestBuilder`].
#[derive(Debug, Default)]
#[must_use]
pub struct SseClientBuilder {
    draft: Draft,
}

impl SseClientBuilder {
    /// Use this `reqwest::Client` (see [`SseClient::with_http_client`] for how to build it).
    /// Default: a new client with rustls and redirects turned off.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.draft.settings_mut().http = Some(http);
        self
    }

    shared_setters!();

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// A bad header or reconnect setting, or a TLS backend that cannot be initialised.
    pub fn build(self) -> Result<SseClient, Error> {
        let mut settings = self.draft.finish()?;
        if settings.http.is_none() {
            let http = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|error| {
                    Error::builder(format!("cannot build the HTTP client: {error}"))
                })?;
            Arc::make_mut(&mut settings).http = Some(http);
        }
        Ok(SseClient { settings })
    }
}

/// Configures one event stream; [`connect`](Self::connect) creates it.
///
/// Made by [`SseClient::get`], [`SseClient::post`] or [`SseClient::request`]. Settings not
/// set here come from the client.
#[must_use]
pub struct RequestBuilder {
    url: Result<Url, Error>,
    draft: Draft,
    last_event_id: String,
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.draft.settings;
        f.debug_struct("RequestBuilder")
            .field("method", &settings.method)
            .field("url", &self.url.as_ref().map(redact_url))
            .field("headers", &settings.headers.keys().collect::<Vec<_>>())
            .field("auth", &settings.auth)
            .field("settings", &settings.reconnect)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder {
    /// Sets the method. Default: the one the request was started with.
    pub fn method(mut self, method: Method) -> Self {
        // A request that keeps its client's settings shares them rather than copying them.
        if self.draft.settings.method != method {
            self.draft.settings_mut().method = method;
        }
        self
    }

    shared_setters!();

    /// Adds all these headers (replacing those of the same names). Values marked sensitive,
    /// and those of the credential headers named at [`header`](Self::header), are credentials.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        for (name, mut value) in headers {
            if let Some(name) = name {
                mark_sensitive(&name, &mut value);
                self.draft.settings_mut().headers.insert(name, value);
            }
        }
        self
    }

    /// The request body, sent again on every reconnect (for `POST`, `REPORT`). Default: none.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.draft.settings_mut().body = Some(body.into());
        self
    }

    /// The last event id to resume from on the first connection (sent as `Last-Event-ID`).
    /// Default: none.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// Sends `Authorization: Bearer <token>` on every connection. Default: no auth.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.draft.settings_mut().auth = Auth::Bearer(Secret(token.into()));
        self
    }

    /// Asks `provider` for a bearer token before every connection, so tokens can refresh.
    ///
    /// A provider error counts as a failed connection attempt (yielded, then retried).
    ///
    /// ```no_run
    /// # async fn fetch_token() -> Result<String, std::io::Error> { Ok(String::new()) }
    /// # let client = wot_sse::SseClient::new();
    /// let stream = client
    ///     .get("https://thing.example/events")
    ///     .token_provider(|| async { fetch_token().await })
    ///     .connect();
    /// ```
    pub fn token_provider<F, Fut, T, E>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Into<String>,
        E: Into<BoxError>,
    {
        let provider: TokenProvider = Arc::new(move || {
            let future = provider();
            Box::pin(async move {
                future
                    .await
                    .map(|token| Secret(token.into()))
                    .map_err(Into::into)
            })
        });
        self.draft.settings_mut().auth = Auth::Provider(provider);
        self
    }

    /// Sends the token as the query parameter `param` instead of an `Authorization` header.
    ///
    /// **A risk:** URLs end up in server access logs, proxies and browser history. Use this
    /// only for servers that demand it. This crate still keeps the token out of its own logs
    /// and errors, and adds the parameter only to requests to the origin of the request URL:
    /// after a redirect to another origin the request goes without it. Default: off.
    pub fn token_in_query(mut self, param: impl Into<String>) -> Self {
        self.draft.settings_mut().token_query_param = Some(param.into());
        self
    }

    /// Creates the stream. It connects when first polled, and must be polled inside a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// A bad setting: invalid URL, header, or reconnect policy, or a `Last-Event-ID` that
    /// contains U+0000.
    pub fn connect(self) -> Result<EventStream, Error> {
        let settings = self.draft.finish()?;
        let url = self.url?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::builder(format!(
                "URL {} is not http or https",
                redact_url(&url)
            )));
        }
        if self.last_event_id.contains('\0') {
            return Err(Error::builder("the last event id contains U+0000"));
        }
        if matches!(settings.token_query_param.as_deref(), Some("")) {
            return Err(Error::builder("the token query parameter name is empty"));
        }
        let spec = Spec {
            url: Box::new(url),
            settings,
        };
        Ok(EventStream::new(spec, &self.last_event_id))
    }
}

fn insert_header<K, V>(
    headers: &mut HeaderMap,
    name: K,
    value: V,
    credential: bool,
) -> Result<(), Error>
where
    K: TryInto<HeaderName>,
    V: TryInto<HeaderValue>,
{
    let name = name
        .try_into()
        .map_err(|_| Error::builder("invalid header name"))?;
    let mut value = value
        .try_into()
        .map_err(|_| Error::builder(format!("invalid value for header {name}")))?;
    mark_sensitive(&name, &mut value);
    if credential {
        value.set_sensitive(true);
    }
    headers.insert(name, value);
    Ok(())
}

/// Whether a header is a credential: one of the names that always are, or a value marked
/// sensitive.
pub(crate) fn is_credential_header(name: &HeaderName, value: &HeaderValue) -> bool {
    value.is_sensitive() || name == AUTHORIZATION || name == COOKIE || name == PROXY_AUTHORIZATION
}

fn mark_sensitive(name: &HeaderName, value: &mut HeaderValue) {
    if is_credential_header(name, value) {
        value.set_sensitive(true);
    }
}

/// The URL without user info, query or fragment: what our crates show of a URL in errors
/// and logs, since those parts may carry credentials.
///
/// ```
/// let url = "https://user:secret@thing.example/events?token=abc#x".parse().unwrap();
/// assert_eq!(wot_sse::redact_url(&url), "https://thing.example/events");
/// ```
pub fn redact_url(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}
