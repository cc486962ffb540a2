//! The crate's error type.

use std::fmt;
use std::time::Duration;

use wot_td::{Diagnostic, FormError, ParseError};

use crate::problem::ProblemDetails;

/// Everything that can go wrong in this crate.
///
/// Texts name what failed and where (URL without query string, file path, JSON path,
/// Thing, affordance, scheme name) and never contain credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request could not be sent or its response not read (DNS, refused, reset, timeout).
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The URL (without query string).
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an error status.
    #[error("{url} answered {status}{}", problem_suffix(.problem))]
    Status {
        /// The URL (without query string).
        url: String,
        /// The HTTP status.
        status: http::StatusCode,
        /// RFC 7807 problem details, when the body carried them.
        problem: Option<Box<ProblemDetails>>,
        /// The `Retry-After` delay of a 429 or 503 answer, as sent (not capped; the retry
        /// schedule caps it).
        retry_after: Option<Duration>,
    },
    /// A request did not complete (answer and whole body) within its time limit.
    #[error("{url}: no complete answer within {after:?}")]
    Timeout {
        /// The URL (without query string).
        url: String,
        /// The time limit.
        after: Duration,
    },
    /// A redirect without a usable `Location` (missing, not a URL, not HTTP(S)).
    #[error("{url}: redirect without a usable Location")]
    BadRedirect {
        /// The URL that answered with the redirect (without query string).
        url: String,
    },
    /// More redirects than the limit.
    #[error("{url}: more than {limit} redirects")]
    TooManyRedirects {
        /// The URL first requested (without query string).
        url: String,
        /// The limit.
        limit: usize,
    },
    /// Polling or long polling failed this many times in a row and stopped.
    #[error("{url}: gave up after {attempts} failed attempts in a row: {source}")]
    GaveUp {
        /// The URL (without query string).
        url: String,
        /// Failed attempts in a row.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<Error>,
    },
    /// A Thing Description Directory lists more TDs than the limit.
    #[error("directory {url}: more than {limit} Thing Descriptions")]
    TooManyThings {
        /// The directory's `things` URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The subscriber's settings are not valid.
    #[error("invalid settings: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A Thing Description is not JSON, or not a TD by its structure.
    #[error("Thing Description from {origin} does not parse: {source}")]
    Parse {
        /// Where it came from (URL or file path).
        origin: String,
        /// Line, column and JSON path of the problem.
        #[source]
        source: ParseError,
    },
    /// A Thing Description parsed but failed validation.
    #[error("Thing Description from {origin} is invalid: {}", DiagList(.diagnostics))]
    Invalid {
        /// Where it came from.
        origin: String,
        /// Every error-severity diagnostic.
        diagnostics: Vec<Diagnostic>,
    },
    /// The document is a Thing Model, which has no forms to talk to.
    #[error("{origin} is a Thing Model, not a Thing Description")]
    NotAThing {
        /// Where it came from.
        origin: String,
    },
    /// A URL given by the user does not parse.
    #[error("not a URL: {url:?}: {reason}")]
    BadUrl {
        /// The text, without its query string.
        url: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A Thing Description Directory answered something other than an array of TDs.
    #[error("directory {url}: {reason}")]
    Directory {
        /// The directory's `things` URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The Thing has no such affordance, or a form's href does not resolve.
    #[error("Thing `{thing}`: {source}")]
    Form {
        /// The Thing's id.
        thing: String,
        /// What is missing.
        #[source]
        source: FormError,
    },
    /// No form of the affordance offers the operation over a protocol we speak: its forms
    /// are only over URI schemes other than `http` and `https` (`file:`, `javascript:`,
    /// `data:`, `coap:`..., named in `reason`), or lack a subprotocol or content type we
    /// speak.
    #[error("Thing `{thing}`: {affordance} has no usable form for `{op}` ({reason})")]
    NoUsableForm {
        /// The Thing's id.
        thing: String,
        /// E.g. `event overheat`.
        affordance: String,
        /// The operation.
        op: String,
        /// Why the forms that exist were not usable.
        reason: String,
    },
    /// A security scheme the form requires cannot be satisfied.
    #[error("Thing `{thing}`: security scheme `{name}` ({scheme}) cannot be satisfied: {reason}")]
    Security {
        /// The Thing's id.
        thing: String,
        /// The scheme's name in `securityDefinitions`.
        name: String,
        /// Its `scheme` value (`basic`, `oauth2`...).
        scheme: String,
        /// What is missing or unsupported.
        reason: String,
    },
    /// The SSE transport failed (see [`wot_sse::Error`]'s predicates).
    #[error(transparent)]
    Sse(#[from] wot_sse::Error),
    /// Data received from a Thing is not JSON or does not fit the schema in its TD.
    #[error("Thing `{thing}`: {what} sent invalid data: {reason}")]
    InvalidData {
        /// The Thing's id.
        thing: String,
        /// E.g. `event overheat` or `property temp`.
        what: String,
        /// What is wrong.
        reason: String,
        /// The data as received (for pass-through display), at most 4 KiB of it.
        raw: String,
    },
    /// A value to send does not fit the schema in the TD.
    #[error("Thing `{thing}`: value for {what} rejected before sending: {reason}")]
    InvalidInput {
        /// The Thing's id.
        thing: String,
        /// E.g. `property brightness`.
        what: String,
        /// The first schema violation, with its path.
        reason: String,
    },
    /// A response body was larger than the configured limit.
    #[error("{url}: response larger than {limit} bytes")]
    TooLarge {
        /// The URL (without query string).
        url: String,
        /// The limit.
        limit: usize,
    },
}

impl Error {
    /// The HTTP status, for [`Error::Status`] and SSE status errors.
    pub fn status(&self) -> Option<http::StatusCode> {
        match self {
            Error::Status { status, .. } => Some(*status),
            Error::Sse(e) => e.status(),
            _ => None,
        }
    }

    /// The RFC 7807 problem details of an error response, if it had them.
    pub fn problem(&self) -> Option<&ProblemDetails> {
        match self {
            Error::Status { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    /// The `Retry-After` delay the server asked for, for a 429 or 503 answer.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether this error says that an affordance's forms cannot be used by this client:
    /// [`Error::NoUsableForm`] (forms only over schemes it does not serve, such as `file:`,
    /// `javascript:`, `data:` or `coap:`, or no HTTP(S) form with a subprotocol and content
    /// type this crate speaks), or an [`Error::Form`] for `href`s that do not resolve
    /// ([`wot_td::FormError::Unresolvable`]).
    ///
    /// [`EventSubscriber::subscribe_all`](crate::EventSubscriber::subscribe_all) and
    /// [`EventSubscriber::observe_all_properties`](crate::EventSubscriber::observe_all_properties)
    /// skip such affordances (see [`SkippedAffordance`](crate::SkippedAffordance)) instead
    /// of failing.
    pub fn is_unusable_form(&self) -> bool {
        match self {
            Error::NoUsableForm { .. } => true,
            Error::Form { source, .. } => matches!(
                source,
                FormError::UnservableScheme { .. } | FormError::Unresolvable { .. }
            ),
            _ => false,
        }
    }

    /// Whether this error ends a stream (it is the last item); other stream errors are
    /// reported and the stream goes on.
    pub fn is_terminal(&self) -> bool {
        match self {
            Error::Sse(e) => e.is_terminal(),
            Error::InvalidData { .. } | Error::Unreachable { .. } | Error::Timeout { .. } => false,
            Error::Status { status, .. } => {
                !(status.is_server_error()
                    || *status == http::StatusCode::REQUEST_TIMEOUT
                    || *status == http::StatusCode::TOO_MANY_REQUESTS)
            }
            _ => true,
        }
    }
}

fn problem_suffix(p: &Option<Box<ProblemDetails>>) -> String {
    match p {
        Some(p) => format!(" ({p})"),
        None => String::new(),
    }
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

/// A URL as it may appear in errors and logs: no user info, no query, no fragment.
pub(crate) fn display_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}
