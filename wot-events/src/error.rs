//! The crate's error type.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use wot_td::{Diagnostic, FormError, ParseError};

use crate::problem::ProblemDetails;

/// An error from loading a Thing Description, opening a subscription, a stream, or a
/// one-shot request.
///
/// Errors come in two classes. Stream items that are *recoverable* (a failed request, a
/// retryable status such as 503, a time-out, data that does not fit the schema) are yielded
/// and the stream goes on, retrying on the subscriber's
/// [`ReconnectPolicy`](crate::ReconnectPolicy). A *terminal* error (a status such as 404,
/// too many failures in a row, a broken redirect) is a stream's last item.
/// [`is_terminal`](Self::is_terminal) tells which one you have; [`kind`](Self::kind) says
/// what went wrong, whatever the transport (SSE, long polling or polling).
///
/// The text names what failed and where: the URL without its query string or user info, the
/// file path, the JSON path, the Thing, the affordance or the security scheme. It never
/// contains a credential. Errors are cheap to clone.
///
/// # Examples
///
/// ```no_run
/// use wot_events::{ErrorKind, EventSubscriber};
///
/// # async fn run() {
/// match EventSubscriber::new().fetch_thing("http://192.0.2.10/things/lamp").await {
///     Ok(thing) => println!("{}", thing.id()),
///     Err(e) if e.kind() == ErrorKind::Status => {
///         let detail = e.problem().and_then(|p| p.detail.as_deref()).unwrap_or("");
///         eprintln!("{:?} from {:?}: {detail}", e.status(), e.url());
///     }
///     Err(e) => eprintln!("{e}"),
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Arc<Repr>,
}

/// What went wrong, from [`Error::kind`]. New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A request could not be sent or got no answer: DNS, refused, reset before the
    /// response. Not terminal.
    Unreachable,
    /// A response broke off while its body was read (a reset, or an SSE stream that
    /// ended early). Not terminal.
    Interrupted,
    /// The server answered with an error status: see [`Error::status`] and
    /// [`Error::problem`]. Terminal unless retryable (5xx, 408, 429).
    Status,
    /// No complete answer within the request's time limit, or an SSE stream stayed silent
    /// past its idle timeout. Not terminal.
    Timeout,
    /// A redirect without a usable `Location`, or more redirects than the limit.
    Redirect,
    /// A response body, an SSE event or one of its fields was larger than its limit.
    TooLarge,
    /// A stream failed this many times in a row and stopped; the last failure is the
    /// [`source`](std::error::Error::source). Terminal.
    GaveUp,
    /// A response had the wrong media type: an SSE form answered with one other than
    /// `text/event-stream`, or a Thing Description or directory URL answered something that
    /// is not JSON with a media type that says it is something else (a `text/html` page).
    ContentType,
    /// A Thing Description Directory listed more TDs than the limit.
    TooManyThings,
    /// A Thing Description Directory answered something other than an array of TDs.
    Directory,
    /// A setting of the subscriber is not valid.
    Config,
    /// A URL given to fetch a TD from does not parse, or is not HTTP(S).
    BadUrl,
    /// A file could not be read.
    Io,
    /// A Thing Description is not JSON, or not a TD by its structure.
    Parse,
    /// A Thing Description parsed but failed validation: see [`Error::diagnostics`].
    Invalid,
    /// The document is a Thing Model, which has no forms to talk to.
    NotAThing,
    /// The Thing has no such affordance, or a form's `href` does not resolve.
    Form,
    /// No form of the affordance offers the operation over a protocol this crate speaks.
    NoUsableForm,
    /// A security scheme the form requires cannot be satisfied (a missing credential, an
    /// unsupported scheme), or the SSE token provider failed.
    Security,
    /// Data received from a Thing is not JSON or does not fit the schema in its TD: see
    /// [`Error::raw_data`]. Not terminal.
    InvalidData,
    /// A value to send does not fit the schema in the TD; nothing was sent.
    InvalidInput,
}

/// The error's details; `Display` and `source` come from here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Repr {
    #[error("cannot reach {url}: {}", unreachable_reason(.source))]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{url}: the response broke off: {source}")]
    Interrupted { url: String, source: reqwest::Error },
    #[error("{url} answered {status}{}", problem_suffix(.problem.as_deref()))]
    Status {
        url: String,
        status: StatusCode,
        problem: Option<Box<ProblemDetails>>,
        /// The `Retry-After` delay of a 429 or 503 answer, as sent (the retry schedule
        /// caps it).
        retry_after: Option<Duration>,
    },
    #[error("{url}: no complete answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("{url}: redirect without a usable Location")]
    BadRedirect { url: String },
    #[error("{url}: more than {limit} redirects")]
    TooManyRedirects { url: String, limit: usize },
    #[error("{url}: gave up after {attempts} failed attempts in a row: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        #[source]
        last: Error,
    },
    #[error("directory {url}: more than {limit} Thing Descriptions")]
    TooManyThings { url: String, limit: usize },
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("Thing Description from {} does not parse: {source}", .origin.name)]
    Parse { origin: Origin, source: ParseError },
    #[error("Thing Description from {} is invalid: {}", .origin.name, DiagList(.diagnostics))]
    Invalid {
        origin: Origin,
        diagnostics: Vec<Diagnostic>,
    },
    #[error("{} is a Thing Model, not a Thing Description", .origin.name)]
    NotAThing { origin: Origin },
    #[error("not a URL: {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("directory {url}: {reason}")]
    Directory { url: String, reason: String },
    #[error("Thing `{thing}`: {source}")]
    Form { thing: String, source: FormError },
    #[error("Thing `{thing}`: {affordance} has no usable form for `{op}` ({reason})")]
    NoUsableForm {
        thing: String,
        affordance: String,
        op: String,
        reason: String,
    },
    #[error("Thing `{thing}`: security scheme `{name}` ({scheme}) cannot be satisfied: {reason}")]
    Security {
        thing: String,
        name: String,
        scheme: String,
        reason: String,
    },
    #[error(transparent)]
    Sse(wot_sse::Error),
    #[error("Thing `{thing}`: {what} sent invalid data: {reason}")]
    InvalidData {
        thing: String,
        what: String,
        reason: String,
        /// The data as received, at most 4 KiB of it.
        raw: String,
    },
    #[error("Thing `{thing}`: value for {what} rejected before sending: {reason}")]
    InvalidInput {
        thing: String,
        what: String,
        reason: String,
    },
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("{url}: expected {expected}, got {found}")]
    ContentType {
        url: String,
        /// What was expected, in words with its media types.
        expected: &'static str,
        /// The media type received, without parameters (at most 100 characters).
        found: String,
    },
}

/// Where a Thing Description came from: a name for messages (URL, file path, list
/// position) and the redacted URL when it was fetched.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) name: String,
    pub(crate) url: Option<String>,
}

impl Origin {
    /// The redacted `url` when there is one, else the name `otherwise` gives.
    pub(crate) fn of(url: Option<&url::Url>, otherwise: impl FnOnce() -> String) -> Self {
        let url = url.map(wot_sse::redact_url);
        Self {
            name: url.clone().unwrap_or_else(otherwise),
            url,
        }
    }
}

impl From<Repr> for Error {
    fn from(repr: Repr) -> Self {
        Self {
            inner: Arc::new(repr),
        }
    }
}

impl Error {
    /// An error of the SSE transport. (Not a `From` impl: wot-sse's types stay out of this
    /// crate's public API.)
    pub(crate) fn from_sse(error: wot_sse::Error) -> Self {
        Repr::Sse(error).into()
    }

    pub(crate) fn repr(&self) -> &Repr {
        &self.inner
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        match self.repr() {
            Repr::Unreachable { .. } => ErrorKind::Unreachable,
            Repr::Interrupted { .. } => ErrorKind::Interrupted,
            Repr::Status { .. } => ErrorKind::Status,
            Repr::Timeout { .. } => ErrorKind::Timeout,
            Repr::BadRedirect { .. } | Repr::TooManyRedirects { .. } => ErrorKind::Redirect,
            Repr::GaveUp { .. } => ErrorKind::GaveUp,
            Repr::TooManyThings { .. } => ErrorKind::TooManyThings,
            Repr::Config(_) => ErrorKind::Config,
            Repr::Io { .. } => ErrorKind::Io,
            Repr::Parse { .. } => ErrorKind::Parse,
            Repr::Invalid { .. } => ErrorKind::Invalid,
            Repr::NotAThing { .. } => ErrorKind::NotAThing,
            Repr::BadUrl { .. } => ErrorKind::BadUrl,
            Repr::Directory { .. } => ErrorKind::Directory,
            Repr::Form { .. } => ErrorKind::Form,
            Repr::NoUsableForm { .. } => ErrorKind::NoUsableForm,
            Repr::Security { .. } => ErrorKind::Security,
            Repr::Sse(e) => sse_kind(e),
            Repr::InvalidData { .. } => ErrorKind::InvalidData,
            Repr::InvalidInput { .. } => ErrorKind::InvalidInput,
            Repr::TooLarge { .. } => ErrorKind::TooLarge,
            Repr::ContentType { .. } => ErrorKind::ContentType,
        }
    }

    /// Whether this error ends a stream (it is the last item); other stream errors are
    /// reported and the stream goes on.
    ///
    /// Errors that do not come from a stream (a bad URL, an invalid TD, a missing
    /// credential) are terminal for what was asked.
    pub fn is_terminal(&self) -> bool {
        match self.repr() {
            Repr::Sse(e) => e.is_terminal(),
            Repr::InvalidData { .. }
            | Repr::Unreachable { .. }
            | Repr::Interrupted { .. }
            | Repr::Timeout { .. } => false,
            Repr::Status { status, .. } => !wot_sse::is_retryable_status(*status),
            _ => true,
        }
    }

    /// Whether no complete answer came within the time limit, or an SSE stream stayed
    /// silent past its idle timeout ([`ErrorKind::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// Whether this error says that an affordance's forms cannot be used by this client:
    /// [`ErrorKind::NoUsableForm`] (forms only over schemes it does not serve, such as
    /// `file:`, `javascript:`, `data:` or `coap:`, or no HTTP(S) form with a subprotocol and
    /// content type this crate speaks), or an [`ErrorKind::Form`] for `href`s that do not
    /// resolve.
    ///
    /// [`EventSubscriber::subscribe_all`](crate::EventSubscriber::subscribe_all) and
    /// [`EventSubscriber::observe_all_properties`](crate::EventSubscriber::observe_all_properties)
    /// skip such affordances (see [`SkippedAffordance`](crate::SkippedAffordance)) instead
    /// of failing.
    pub fn is_unusable_form(&self) -> bool {
        match self.repr() {
            Repr::NoUsableForm { .. } => true,
            Repr::Form { source, .. } => matches!(
                source,
                FormError::UnservableScheme { .. } | FormError::Unresolvable { .. }
            ),
            _ => false,
        }
    }

    /// The HTTP status of an error answer. For [`ErrorKind::GaveUp`] it is the status of
    /// the last attempt, if that attempt got one.
    pub fn status(&self) -> Option<StatusCode> {
        match self.repr() {
            Repr::Status { status, .. } => Some(*status),
            Repr::GaveUp { last, .. } => last.status(),
            Repr::Sse(e) => e.status(),
            _ => None,
        }
    }

    /// The RFC 7807 problem details of an error answer, if its body had them. For
    /// [`ErrorKind::GaveUp`], those of the last attempt.
    pub fn problem(&self) -> Option<&ProblemDetails> {
        match self.repr() {
            Repr::Status { problem, .. } => problem.as_deref(),
            Repr::GaveUp { last, .. } => last.problem(),
            _ => None,
        }
    }

    /// The `Retry-After` delay the server asked for with a 429 or 503 answer, as sent (the
    /// retry schedule caps it).
    pub fn retry_after(&self) -> Option<Duration> {
        match self.repr() {
            Repr::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The URL the error is about, without user info, query string or fragment. For a TD
    /// that was fetched, its URL; for a text that is not a URL, that text with its query
    /// string and user info left off.
    pub fn url(&self) -> Option<&str> {
        match self.repr() {
            Repr::Unreachable { url, .. }
            | Repr::Interrupted { url, .. }
            | Repr::Status { url, .. }
            | Repr::Timeout { url, .. }
            | Repr::BadRedirect { url }
            | Repr::TooManyRedirects { url, .. }
            | Repr::GaveUp { url, .. }
            | Repr::TooManyThings { url, .. }
            | Repr::BadUrl { url, .. }
            | Repr::Directory { url, .. }
            | Repr::TooLarge { url, .. }
            | Repr::ContentType { url, .. } => Some(url),
            Repr::Parse { origin, .. }
            | Repr::Invalid { origin, .. }
            | Repr::NotAThing { origin } => origin.url.as_deref(),
            Repr::Sse(e) => e.url(),
            _ => None,
        }
    }

    /// The id of the Thing the error is about (its title when it has no id): for form,
    /// security and data errors.
    pub fn thing(&self) -> Option<&str> {
        match self.repr() {
            Repr::Form { thing, .. }
            | Repr::NoUsableForm { thing, .. }
            | Repr::Security { thing, .. }
            | Repr::InvalidData { thing, .. }
            | Repr::InvalidInput { thing, .. } => Some(thing),
            _ => None,
        }
    }

    /// The limit that was passed, for [`ErrorKind::TooLarge`] (bytes),
    /// [`ErrorKind::TooManyThings`] and too many redirects (counts).
    pub fn limit(&self) -> Option<usize> {
        match self.repr() {
            Repr::TooLarge { limit, .. }
            | Repr::TooManyThings { limit, .. }
            | Repr::TooManyRedirects { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    /// The error-severity diagnostics of an [`ErrorKind::Invalid`] Thing Description, each
    /// with its JSON path; empty for other errors.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self.repr() {
            Repr::Invalid { diagnostics, .. } => diagnostics,
            _ => &[],
        }
    }

    /// The data as received, for [`ErrorKind::InvalidData`]: at most 4 KiB of it, as the
    /// Thing sent it (escape it before it reaches a terminal).
    pub fn raw_data(&self) -> Option<&str> {
        match self.repr() {
            Repr::InvalidData { raw, .. } => Some(raw),
            _ => None,
        }
    }
}

/// Where a wot-sse error falls among this crate's kinds.
fn sse_kind(e: &wot_sse::Error) -> ErrorKind {
    if e.is_retries_exhausted() {
        ErrorKind::GaveUp
    } else if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_redirect() {
        ErrorKind::Redirect
    } else if e.status().is_some() {
        ErrorKind::Status
    } else if e.is_event_too_large() || e.is_field_too_long() {
        ErrorKind::TooLarge
    } else if e.is_content_type() {
        ErrorKind::ContentType
    } else if e.is_builder() {
        ErrorKind::Config
    } else if e.is_token() {
        ErrorKind::Security
    } else if e.is_body() {
        ErrorKind::Interrupted
    } else {
        // Connecting; also any kind wot-sse adds later.
        ErrorKind::Unreachable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.repr(), f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind())
            .field("message", &format_args!("{self}"))
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.repr().source()
    }
}

/// Why a request could not be sent, in words: "connection refused", "could not resolve host",
/// "timed out", "TLS handshake failed"...; reqwest's own text when the cause is none of those.
fn unreachable_reason(source: &reqwest::Error) -> String {
    match wot_sse::ConnectFailure::of(source) {
        wot_sse::ConnectFailure::Other => source.to_string(),
        failure => failure.to_string(),
    }
}

fn problem_suffix(problem: Option<&ProblemDetails>) -> String {
    problem.map(|p| format!(" ({p})")).unwrap_or_default()
}

struct DiagList<'a>(&'a [Diagnostic]);

impl fmt::Display for DiagList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let path = if d.path.is_empty() { "(root)" } else { &d.path };
            write!(f, "{path}: {}", d.message)?;
        }
        Ok(())
    }
}

/// Text that should have been a URL, as it may appear in errors: without what follows `?`
/// or `#`, and without user info (what precedes an `@` in the authority).
pub(crate) fn redact_text(text: &str) -> String {
    let end = text.find(['?', '#']).unwrap_or(text.len());
    let text = text.get(..end).unwrap_or_default();
    let (scheme, rest) = match text.find("://") {
        Some(at) => text.split_at(at + 3),
        None => ("", text),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority.rsplit('@').next().unwrap_or_default();
    format!("{scheme}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: StatusCode) -> Error {
        Repr::Status {
            url: "http://h/p".to_owned(),
            status: code,
            problem: None,
            retry_after: None,
        }
        .into()
    }

    #[test]
    fn classes_follow_the_shared_retry_rule() {
        assert!(status(StatusCode::NOT_FOUND).is_terminal());
        for code in [
            StatusCode::BAD_GATEWAY,
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            assert!(!status(code).is_terminal(), "{code}");
        }
        let e = status(StatusCode::NOT_FOUND);
        assert_eq!(e.kind(), ErrorKind::Status);
        assert_eq!(e.url(), Some("http://h/p"));
        assert_eq!(e.to_string(), "http://h/p answered 404 Not Found");
    }

    #[test]
    fn gave_up_keeps_the_last_failure() {
        let e: Error = Repr::GaveUp {
            url: "http://h/p".to_owned(),
            attempts: 3,
            last: status(StatusCode::SERVICE_UNAVAILABLE),
        }
        .into();
        assert!(e.is_terminal());
        assert_eq!(e.kind(), ErrorKind::GaveUp);
        assert_eq!(e.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
        let last = e.source().and_then(|s| s.downcast_ref::<Error>());
        assert_eq!(last.map(Error::kind), Some(ErrorKind::Status));
        assert!(e.to_string().contains("3 failed attempts"), "{e}");
    }

    #[test]
    fn errors_cross_threads() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Error>();
    }

    #[test]
    fn text_that_is_not_a_url_loses_user_info_and_query() {
        assert_eq!(
            redact_text("http://user:secret@host:99999/td?key=k#f"),
            "http://host:99999/td"
        );
        assert_eq!(redact_text("not a url?key=secret"), "not a url");
        assert_eq!(redact_text("a@b"), "b");
    }
}
