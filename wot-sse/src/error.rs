//! The client's error type.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

type Source = Arc<dyn StdError + Send + Sync>;

/// An error from an event stream or from building one.
///
/// Errors come in two classes. *Recoverable* errors (a failed connection attempt, a retryable
/// status such as 503, an idle timeout, a dropped connection, an event over the size limit) are
/// yielded by the stream, which then goes on and reconnects. *Terminal* errors (a bad setting,
/// a status such as 404, a wrong content type, a broken redirect, too many failed attempts in a
/// row) are yielded last; the stream ends after them. [`is_terminal`](Self::is_terminal) tells
/// which one you have.
///
/// The text names what failed and the URL, without its query string or user info, and never
/// contains a token. Errors are cheap to clone.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: Kind,
    /// The request URL with query and user info removed.
    url: Option<String>,
    source: Option<Source>,
    /// A `Retry-After` delay that came with a 429 or 503.
    retry_after: Option<Duration>,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Builder(String),
    Token,
    Connect(ConnectFailure),
    Body,
    IdleTimeout(Duration),
    /// No response head within this time (the connect timeout or the shorter idle timeout).
    ResponseTimeout(Duration),
    Status(StatusCode),
    ContentType(Option<String>),
    RedirectWithoutLocation(StatusCode),
    BadRedirectLocation,
    TooManyRedirects(usize),
    EventTooLarge(usize),
    /// An id, event type or comment over its limit (never `EventTooLarge`).
    FieldTooLong(crate::parser::ParseError),
    RetriesExhausted {
        attempts: u32,
        last: Option<Error>,
    },
}

impl Error {
    pub(crate) fn new(kind: Kind, url: Option<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                url,
                source: None,
                retry_after: None,
            }),
        }
    }

    pub(crate) fn with_source(
        kind: Kind,
        url: Option<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        let mut error = Self::new(kind, url);
        if let Some(inner) = Arc::get_mut(&mut error.inner) {
            inner.source = Some(Arc::new(source));
        }
        error
    }

    pub(crate) fn with_boxed_source(
        kind: Kind,
        url: Option<String>,
        source: Box<dyn StdError + Send + Sync>,
    ) -> Self {
        let mut error = Self::new(kind, url);
        if let Some(inner) = Arc::get_mut(&mut error.inner) {
            inner.source = Some(Arc::from(source));
        }
        error
    }

    pub(crate) fn builder(message: impl Into<String>) -> Self {
        Self::new(Kind::Builder(message.into()), None)
    }

    pub(crate) fn status_with_retry_after(
        status: StatusCode,
        url: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind: Kind::Status(status),
                url,
                source: None,
                retry_after,
            }),
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// Whether the stream ends after this error.
    ///
    /// `false` means the stream goes on (and reconnects if the connection was lost).
    pub fn is_terminal(&self) -> bool {
        match &self.inner.kind {
            Kind::Builder(_)
            | Kind::ContentType(_)
            | Kind::RedirectWithoutLocation(_)
            | Kind::BadRedirectLocation
            | Kind::TooManyRedirects(_)
            | Kind::RetriesExhausted { .. } => true,
            Kind::Status(status) => !is_retryable_status(*status),
            Kind::Token
            | Kind::Connect(_)
            | Kind::Body
            | Kind::IdleTimeout(_)
            | Kind::ResponseTimeout(_)
            | Kind::EventTooLarge(_)
            | Kind::FieldTooLong(_) => false,
        }
    }

    /// The HTTP status of a response that did not open the stream, if that is the error.
    ///
    /// For [`is_retries_exhausted`](Self::is_retries_exhausted) errors it is the status of the
    /// last attempt, if that attempt got one.
    pub fn status(&self) -> Option<StatusCode> {
        match &self.inner.kind {
            Kind::Status(status) | Kind::RedirectWithoutLocation(status) => Some(*status),
            Kind::RetriesExhausted { last, .. } => last.as_ref().and_then(Error::status),
            _ => None,
        }
    }

    /// Whether the server answered 401 Unauthorized (a terminal error).
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(StatusCode::UNAUTHORIZED)
    }

    /// Whether the server answered 403 Forbidden (a terminal error).
    pub fn is_forbidden(&self) -> bool {
        self.status() == Some(StatusCode::FORBIDDEN)
    }

    /// Whether no bytes arrived within the idle timeout, or no response head within the
    /// connect timeout (or the idle timeout, if shorter). The client reconnects.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::IdleTimeout(_) | Kind::ResponseTimeout(_)
        )
    }

    /// Whether sending the request failed: DNS, TCP, TLS, or the server hung up early.
    pub fn is_connect(&self) -> bool {
        matches!(self.inner.kind, Kind::Connect(_))
    }

    /// Why sending the request failed, for [`is_connect`](Self::is_connect) errors: the
    /// host name did not resolve, the connection was refused, timed out, closed early, or
    /// TLS failed.
    ///
    /// For [`is_retries_exhausted`](Self::is_retries_exhausted) errors it is that of the last
    /// attempt, if that attempt failed to connect.
    ///
    /// ```no_run
    /// # async fn run() {
    /// use futures_util::StreamExt;
    /// use wot_sse::{ConnectFailure, SseClient};
    ///
    /// let mut stream = SseClient::new().get("http://127.0.0.1:1/events").connect().unwrap();
    /// if let Some(Err(error)) = stream.next().await {
    ///     if error.connect_failure() == Some(ConnectFailure::Refused) {
    ///         eprintln!("nothing listens there: {error}");
    ///     }
    /// }
    /// # }
    /// ```
    pub fn connect_failure(&self) -> Option<ConnectFailure> {
        match &self.inner.kind {
            Kind::Connect(failure) => Some(*failure),
            Kind::RetriesExhausted { last, .. } => last.as_ref().and_then(Error::connect_failure),
            _ => None,
        }
    }

    /// Whether reading the response body failed after the stream had opened.
    pub fn is_body(&self) -> bool {
        matches!(self.inner.kind, Kind::Body)
    }

    /// Whether a 200 response had a media type other than `text/event-stream`.
    pub fn is_content_type(&self) -> bool {
        matches!(self.inner.kind, Kind::ContentType(_))
    }

    /// Whether a redirect could not be followed: no or a bad `Location`, or too many redirects.
    pub fn is_redirect(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::RedirectWithoutLocation(_)
                | Kind::BadRedirectLocation
                | Kind::TooManyRedirects(_)
        )
    }

    /// Whether an event exceeded the maximum event size and was skipped.
    pub fn is_event_too_large(&self) -> bool {
        matches!(self.inner.kind, Kind::EventTooLarge(_))
    }

    /// Whether an id, an event type or a comment line was longer than its limit (see
    /// [`RequestBuilder::max_id_len`](crate::RequestBuilder::max_id_len) and the settings
    /// after it). An over-long id is ignored (the last event id stays, the event is still
    /// delivered); an over-long event type skips its event; an over-long comment is skipped.
    /// The connection stays. [`field_error`](Self::field_error) tells which.
    pub fn is_field_too_long(&self) -> bool {
        matches!(self.inner.kind, Kind::FieldTooLong(_))
    }

    /// The parser's error for an over-long id, event type or comment, if that is the error.
    pub fn field_error(&self) -> Option<&crate::parser::ParseError> {
        match &self.inner.kind {
            Kind::FieldTooLong(error) => Some(error),
            _ => None,
        }
    }

    /// Whether the token provider failed.
    pub fn is_token(&self) -> bool {
        matches!(self.inner.kind, Kind::Token)
    }

    /// Whether the stream gave up after the maximum number of consecutive failed attempts.
    ///
    /// The last attempt's error, if it had one, is its [`source`](std::error::Error::source).
    pub fn is_retries_exhausted(&self) -> bool {
        matches!(self.inner.kind, Kind::RetriesExhausted { .. })
    }

    /// Whether a setting of the client or request is invalid.
    pub fn is_builder(&self) -> bool {
        matches!(self.inner.kind, Kind::Builder(_))
    }

    /// The URL the error is about, without query string or user info.
    pub fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }
}

/// Whether an HTTP status is worth retrying: 5xx, 408 and 429 are; other statuses are
/// not. The rule our crates use for reconnecting, polling and webhooks alike.
///
/// ```
/// use wot_sse::{StatusCode, is_retryable_status};
/// assert!(is_retryable_status(StatusCode::SERVICE_UNAVAILABLE));
/// assert!(!is_retryable_status(StatusCode::NOT_FOUND));
/// ```
pub fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Why a connection attempt failed before any response: see [`Error::connect_failure`].
///
/// Found from the causes of the failure (the I/O error kind, the resolver, TLS). New
/// variants may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The host name could not be resolved (DNS).
    Dns,
    /// The server refused the connection: nothing listens on that port.
    Refused,
    /// Connecting timed out (the operating system's TCP time-out).
    TimedOut,
    /// The TLS handshake failed, or the server's certificate was not accepted.
    Tls,
    /// The server closed or reset the connection before it answered.
    Closed,
    /// Another cause; the error's [`source`](std::error::Error::source) chain tells more.
    Other,
}

impl ConnectFailure {
    /// The failure behind `error`, from its chain of causes: a `reqwest::Error` from sending
    /// a request, or any error that holds an `std::io::Error`. For crates that send their
    /// own requests and want to say why one failed the way this crate's errors do.
    ///
    /// ```
    /// use std::io;
    /// use wot_sse::ConnectFailure;
    ///
    /// let error = io::Error::from(io::ErrorKind::ConnectionRefused);
    /// assert_eq!(ConnectFailure::of(&error), ConnectFailure::Refused);
    /// assert_eq!(ConnectFailure::Refused.to_string(), "connection refused");
    /// ```
    pub fn of(error: &(dyn StdError + 'static)) -> Self {
        let mut cause = Some(error);
        let mut dns = false;
        while let Some(error) = cause {
            if let Some(failure) = Self::of_one(error) {
                return failure;
            }
            dns |= error
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_dns);
            // An I/O error's `source` skips the error it wraps: go into that one instead.
            cause = match error.downcast_ref::<std::io::Error>() {
                Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
                None => error.source(),
            };
        }
        if dns { Self::Dns } else { Self::Other }
    }

    /// What one error in a chain says by itself, if anything.
    fn of_one(error: &(dyn StdError + 'static)) -> Option<Self> {
        if error.is::<rustls::Error>() {
            return Some(Self::Tls);
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            if hyper.is_incomplete_message() || hyper.is_canceled() {
                return Some(Self::Closed);
            }
            if hyper.is_timeout() {
                return Some(Self::TimedOut);
            }
        }
        let io = error.downcast_ref::<std::io::Error>()?;
        use std::io::ErrorKind as Io;
        match io.kind() {
            Io::ConnectionRefused => Some(Self::Refused),
            Io::TimedOut => Some(Self::TimedOut),
            Io::ConnectionReset | Io::ConnectionAborted | Io::UnexpectedEof | Io::BrokenPipe => {
                Some(Self::Closed)
            }
            _ => None,
        }
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dns => "could not resolve host",
            Self::Refused => "connection refused",
            Self::TimedOut => "timed out",
            Self::Tls => "TLS handshake failed",
            Self::Closed => "the server closed the connection before answering",
            Self::Other => "the request could not be sent",
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner.kind {
            Kind::Builder(message) => write!(f, "invalid SSE request setting: {message}")?,
            Kind::Token => f.write_str("the token provider failed")?,
            Kind::Connect(failure) => write!(f, "connecting failed: {failure}")?,
            Kind::Body => f.write_str("reading the event stream failed")?,
            Kind::IdleTimeout(after) => write!(f, "no data for {after:?} (idle timeout)")?,
            Kind::ResponseTimeout(after) => write!(f, "no response within {after:?}")?,
            Kind::Status(status) => write!(f, "server answered {status}")?,
            Kind::ContentType(Some(found)) => write!(
                f,
                "expected content type text/event-stream, got {:?}",
                found
            )?,
            Kind::ContentType(None) => {
                f.write_str("expected content type text/event-stream, got none")?;
            }
            Kind::RedirectWithoutLocation(status) => {
                write!(f, "redirect {status} without a Location header")?;
            }
            Kind::BadRedirectLocation => f.write_str("redirect to an invalid Location")?,
            Kind::TooManyRedirects(limit) => write!(f, "more than {limit} redirects")?,
            Kind::EventTooLarge(limit) => {
                write!(f, "event larger than the limit of {limit} bytes; skipped")?;
            }
            Kind::FieldTooLong(error) => write!(f, "{error}")?,
            Kind::RetriesExhausted { attempts, last } => {
                write!(f, "gave up after {attempts} consecutive failed attempts")?;
                match last {
                    Some(last) => write!(f, "; last: {last}")?,
                    None => f.write_str("; the last response ended before any data")?,
                }
            }
        }
        if let (Some(url), false) = (&self.inner.url, self.is_retries_exhausted()) {
            write!(f, " ({url})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Error");
        debug.field("kind", &self.inner.kind);
        if let Some(url) = &self.inner.url {
            debug.field("url", url);
        }
        if let Some(source) = &self.inner.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.inner.kind {
            Kind::RetriesExhausted {
                last: Some(last), ..
            } => Some(last),
            _ => self
                .inner
                .source
                .as_deref()
                .map(|source| source as &(dyn StdError + 'static)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_failures_come_from_io_error_kinds_however_deep() {
        use std::io;
        let of = |e: io::Error| ConnectFailure::of(&e);
        assert_eq!(
            of(io::Error::from(io::ErrorKind::TimedOut)),
            ConnectFailure::TimedOut
        );
        assert_eq!(
            of(io::Error::other(io::Error::from(
                io::ErrorKind::ConnectionReset
            ))),
            ConnectFailure::Closed
        );
        assert_eq!(
            of(io::Error::other("something else")),
            ConnectFailure::Other
        );
        let error = Error::new(
            Kind::Connect(ConnectFailure::TimedOut),
            Some("http://h/".into()),
        );
        assert_eq!(
            error.to_string(),
            "connecting failed: timed out (http://h/)"
        );
    }

    #[test]
    fn classes() {
        let url = Some("http://h/p".to_owned());
        assert!(Error::new(Kind::Status(StatusCode::NOT_FOUND), url.clone()).is_terminal());
        assert!(!Error::new(Kind::Status(StatusCode::BAD_GATEWAY), url.clone()).is_terminal());
        assert!(!Error::new(Kind::Status(StatusCode::REQUEST_TIMEOUT), None).is_terminal());
        assert!(!Error::new(Kind::Status(StatusCode::TOO_MANY_REQUESTS), None).is_terminal());
        let unauthorized = Error::new(Kind::Status(StatusCode::UNAUTHORIZED), url);
        assert!(unauthorized.is_unauthorized() && !unauthorized.is_forbidden());
        assert_eq!(
            unauthorized.to_string(),
            "server answered 401 Unauthorized (http://h/p)"
        );
        let last = Error::new(Kind::Connect(ConnectFailure::Refused), None);
        let exhausted = Error::new(
            Kind::RetriesExhausted {
                attempts: 5,
                last: Some(last),
            },
            None,
        );
        assert!(exhausted.is_terminal());
        assert!(exhausted.source().is_some());
        assert!(
            exhausted
                .to_string()
                .contains("5 consecutive failed attempts")
        );
    }
}
