//! The crate's error type.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

type Source = Arc<dyn StdError + Send + Sync>;

/// An error from connecting to NATS, setting up the stream or a bucket, publishing, a lease,
/// or encoding and decoding subjects, keys and records.
///
/// [`kind`](Self::kind) says what went wrong; the text names what failed and where (the NATS
/// URL without user name, password or query, the stream, the bucket, the subject). It never
/// contains a credential. The error of the NATS client, when there is one, is the
/// [`source`](std::error::Error::source). Errors are cheap to clone.
///
/// # Examples
///
/// ```
/// use wot_nats::{ErrorKind, decode_token};
///
/// let error = decode_token("urn=3").unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::BadToken);
/// assert!(error.to_string().contains("urn=3"));
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    repr: Repr,
    source: Option<Source>,
}

/// What went wrong, from [`Error::kind`]. New kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The NATS server could not be reached, refused the connection or the credentials, or
    /// the URL does not parse.
    Connect,
    /// No answer from the server within the time limit (a request, an acknowledgement).
    Timeout,
    /// A setting is not valid (a subject prefix, a bucket name, a zero count).
    Config,
    /// A Thing id, affordance name, event id or record is longer than its limit.
    TooLong,
    /// A subject token or bucket key is not one this crate wrote.
    BadToken,
    /// A record is not JSON of this crate's schema.
    Decode,
    /// A record is of a schema version this crate does not read.
    Version,
    /// A record could not be written as JSON (a time before 1970 or after 9999).
    Encode,
    /// The JetStream stream could not be created, read, or has other settings than asked.
    Stream,
    /// Publishing failed, or JetStream refused the message.
    Publish,
    /// A key-value bucket could not be created or read, or a write to it failed.
    KeyValue,
    /// A Thing's event subscription or property observation could not be opened: the
    /// [`source`](std::error::Error::source) is wot-events' error.
    Thing,
    /// The alert engine refused a request (no such alert, an alert that is only pending, a
    /// rule that does not validate): the text is wot-alerts' error.
    Alert,
    /// An evaluator was asked about a Thing whose partition it does not hold now.
    NotHeld,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Repr {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{what}: no answer within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("invalid settings: {0}")]
    Config(String),
    #[error("{what} is {len} bytes, more than the limit of {limit}")]
    TooLong {
        what: &'static str,
        len: usize,
        limit: usize,
    },
    #[error("token {token:?} was not written by wot-nats: {reason}")]
    BadToken { token: String, reason: &'static str },
    #[error("record does not parse: {0}")]
    Decode(String),
    #[error(
        "record schema version {found} is not read by this version of wot-nats (it reads {supported})"
    )]
    Version { found: u64, supported: u32 },
    #[error("record cannot be written: {0}")]
    Encode(String),
    #[error("stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("publishing to {subject}: {reason}")]
    Publish { subject: String, reason: String },
    #[error("key-value bucket {bucket}: {reason}")]
    KeyValue { bucket: String, reason: String },
    #[error(
        "alert state checkpoint of version {found} is not read by this version of wot-nats (it reads {supported})"
    )]
    CheckpointVersion { found: u64, supported: u32 },
    #[error("alert state checkpoint does not parse: {0}")]
    CheckpointDecode(String),
    #[error("alert engine: {0}")]
    Alert(String),
    #[error("partition {0} is not held by this evaluator")]
    NotHeld(u16),
    #[error("Thing {thing}: {source}")]
    Thing {
        thing: String,
        source: wot_events::Error,
    },
}

impl Error {
    pub(crate) fn new(repr: Repr) -> Self {
        Error {
            inner: Arc::new(Inner { repr, source: None }),
        }
    }

    pub(crate) fn with_source(repr: Repr, source: impl StdError + Send + Sync + 'static) -> Self {
        Error {
            inner: Arc::new(Inner {
                repr,
                source: Some(Arc::new(source)),
            }),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(Repr::Config(message.into()))
    }

    pub(crate) fn too_long(what: &'static str, len: usize, limit: usize) -> Self {
        Self::new(Repr::TooLong { what, len, limit })
    }

    pub(crate) fn bad_token(token: &str, reason: &'static str) -> Self {
        // At most 64 characters of the token, so a crafted key cannot grow the message.
        let token: String = token.chars().take(64).collect();
        Self::new(Repr::BadToken { token, reason })
    }

    pub(crate) fn stream(
        stream: &str,
        reason: impl Into<String>,
        source: Option<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        let repr = Repr::Stream {
            stream: stream.to_owned(),
            reason: reason.into(),
        };
        match source {
            Some(source) => Error {
                inner: Arc::new(Inner {
                    repr,
                    source: Some(Arc::from(source)),
                }),
            },
            None => Self::new(repr),
        }
    }

    pub(crate) fn publish(subject: &str, reason: impl Into<String>) -> Self {
        Self::new(Repr::Publish {
            subject: subject.to_owned(),
            reason: reason.into(),
        })
    }

    pub(crate) fn key_value(bucket: &str, reason: impl Into<String>) -> Self {
        Self::new(Repr::KeyValue {
            bucket: bucket.to_owned(),
            reason: reason.into(),
        })
    }

    pub(crate) fn key_value_from(
        bucket: &str,
        reason: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::with_source(
            Repr::KeyValue {
                bucket: bucket.to_owned(),
                reason: reason.into(),
            },
            source,
        )
    }

    pub(crate) fn thing(thing: &str, source: wot_events::Error) -> Self {
        // The id as one token, so that its control characters cannot reach a terminal.
        Self::new(Repr::Thing {
            thing: crate::subject::token(thing),
            source,
        })
    }

    pub(crate) fn repr(&self) -> &Repr {
        &self.inner.repr
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        match self.repr() {
            Repr::Connect { .. } => ErrorKind::Connect,
            Repr::Timeout { .. } => ErrorKind::Timeout,
            Repr::Config(_) => ErrorKind::Config,
            Repr::TooLong { .. } => ErrorKind::TooLong,
            Repr::BadToken { .. } => ErrorKind::BadToken,
            Repr::Decode(_) => ErrorKind::Decode,
            Repr::Version { .. } | Repr::CheckpointVersion { .. } => ErrorKind::Version,
            Repr::CheckpointDecode(_) => ErrorKind::Decode,
            Repr::Alert(_) => ErrorKind::Alert,
            Repr::NotHeld(_) => ErrorKind::NotHeld,
            Repr::Encode(_) => ErrorKind::Encode,
            Repr::Stream { .. } => ErrorKind::Stream,
            Repr::Publish { .. } => ErrorKind::Publish,
            Repr::KeyValue { .. } => ErrorKind::KeyValue,
            Repr::Thing { .. } => ErrorKind::Thing,
        }
    }

    /// Whether the server did not answer in time ([`ErrorKind::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        self.kind() == ErrorKind::Timeout
    }

    /// Whether the server could not be reached or refused us ([`ErrorKind::Connect`]).
    pub fn is_connect(&self) -> bool {
        self.kind() == ErrorKind::Connect
    }

    /// The limit that was passed, for [`ErrorKind::TooLong`] (bytes).
    pub fn limit(&self) -> Option<usize> {
        match self.repr() {
            Repr::TooLong { limit, .. } => Some(*limit),
            _ => None,
        }
    }

    /// The NATS URL the error is about, without user name, password, query or fragment.
    pub fn url(&self) -> Option<&str> {
        match self.repr() {
            Repr::Connect { url, .. } => Some(url),
            _ => None,
        }
    }

    /// The subject of a failed publish.
    pub fn subject(&self) -> Option<&str> {
        match self.repr() {
            Repr::Publish { subject, .. } => Some(subject),
            _ => None,
        }
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
        if let Repr::Thing { source, .. } = self.repr() {
            return Some(source);
        }
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_cross_threads_and_name_their_kind() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        shareable::<Error>();
        let e = Error::too_long("Thing id", 2000, 1024);
        assert_eq!(e.kind(), ErrorKind::TooLong);
        assert_eq!(e.limit(), Some(1024));
        assert_eq!(
            e.to_string(),
            "Thing id is 2000 bytes, more than the limit of 1024"
        );
        let long = "x".repeat(10_000);
        assert!(Error::bad_token(&long, "r").to_string().len() < 200);
    }
}
