//! The crate's error type for rules, acknowledgements, the manager's settings and actions.
//! Rule and test files have their own, [`crate::LoadError`], which carries file and line.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

type Source = Arc<dyn StdError + Send + Sync>;

/// What went wrong, in classes a caller may want to tell apart. More kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A rule is invalid: a field fails a check, its id is taken, or it names an undefined
    /// action. [`Error::rule`] and [`Error::field`] say where.
    Rule,
    /// There is no pending or firing alert for that rule and thing.
    NoActiveAlert,
    /// The alert is pending; only firing alerts can be acknowledged.
    NotFiring,
    /// A setting of `AlertManagerBuilder` is out of range;
    /// [`Error::setting`] names it.
    Setting,
    /// A `callback` action has no callback registered under its name.
    MissingCallback,
    /// An `invoke_action` action's Thing or action is unknown or has no usable form.
    ActionTarget,
    /// An action needs a cargo feature this build does not have (`http-actions`).
    Unsupported,
    /// The HTTP client for actions could not be built.
    HttpClient,
    /// An action's request could not be sent or its response not read (connection refused,
    /// TLS, a refused or endless redirect...). The cause is in the [`source`](StdError::source)
    /// chain.
    Request,
    /// An action's request got a response with a status other than 2xx; [`Error::status`].
    Status,
    /// An action attempt took longer than the action timeout.
    Timeout,
    /// A user callback returned an error; it is the [`source`](StdError::source).
    Callback,
    /// The action's queue was full, so the job was dropped without an attempt.
    QueueFull,
    /// The manager shut down before the job was delivered.
    Shutdown,
    /// The manager's state store failed to load or commit; the
    /// [`StoreError`](crate::StoreError) is the [`source`](StdError::source).
    Store,
    /// The state loaded from the store was refused (another version, say); the
    /// [`StateError`](crate::StateError) is the [`source`](StdError::source).
    State,
}

/// An error of this crate (other than loading files, see [`crate::LoadError`]).
///
/// Opaque, like `reqwest::Error` and `wot_sse::Error`: ask [`kind`](Self::kind) or the
/// predicates, and read the cause from the [`source`](StdError::source) chain. The text names
/// what failed (the rule and field, the setting, the URL without user info, query or
/// fragment) and never contains a credential. Errors are cheap to clone.
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    rule: Option<String>,
    thing: Option<String>,
    field: Option<String>,
    setting: Option<&'static str>,
    /// The request URL with user info, query and fragment removed.
    url: Option<String>,
    status: Option<StatusCode>,
    timeout: Option<Duration>,
    source: Option<Source>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Arc::new(Inner {
                kind,
                message: message.into(),
                rule: None,
                thing: None,
                field: None,
                setting: None,
                url: None,
                status: None,
                timeout: None,
                source: None,
            }),
        }
    }

    fn with(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// A rule error: `rule`'s `field` and what is wrong with it.
    pub(crate) fn rule_field(
        rule: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let (rule, field) = (rule.into(), field.into());
        Error::new(ErrorKind::Rule, message).with(|i| {
            i.rule = Some(rule);
            i.field = Some(field);
        })
    }

    /// An invalid value of a rule field, before it is known which rule holds it.
    pub(crate) fn value(field: &str, message: impl Into<String>) -> Self {
        let field = field.to_owned();
        Error::new(ErrorKind::Rule, message).with(|i| i.field = Some(field))
    }

    pub(crate) fn alert(kind: ErrorKind, rule: &str, thing: &str) -> Self {
        let message = match kind {
            ErrorKind::NotFiring => "the alert is pending, not firing",
            _ => "no active alert",
        };
        let (rule, thing) = (rule.to_owned(), thing.to_owned());
        Error::new(kind, message).with(|i| {
            i.rule = Some(rule);
            i.thing = Some(thing);
        })
    }

    #[cfg_attr(not(feature = "manager"), allow(dead_code))]
    pub(crate) fn bad_setting(setting: &'static str, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Setting, message).with(|i| i.setting = Some(setting))
    }

    #[cfg_attr(not(feature = "http-actions"), allow(dead_code))]
    pub(crate) fn with_url(self, url: String) -> Self {
        self.with(|i| i.url = Some(url))
    }

    #[cfg_attr(not(feature = "http-actions"), allow(dead_code))]
    pub(crate) fn with_status(self, status: StatusCode) -> Self {
        self.with(|i| i.status = Some(status))
    }

    #[cfg_attr(not(feature = "manager"), allow(dead_code))]
    pub(crate) fn with_timeout(self, timeout: Duration) -> Self {
        self.with(|i| i.timeout = Some(timeout))
    }

    #[cfg_attr(not(feature = "manager"), allow(dead_code))]
    pub(crate) fn with_source(self, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        let source: Source = Arc::from(source.into());
        self.with(|i| i.source = Some(source))
    }

    /// The class of the error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The rule concerned: the invalid rule, or the rule of an acknowledgement refused.
    pub fn rule(&self) -> Option<&str> {
        self.inner.rule.as_deref()
    }

    /// The thing of an acknowledgement refused.
    pub fn thing(&self) -> Option<&str> {
        self.inner.thing.as_deref()
    }

    /// The rule field at fault, e.g. `summary`, `escalate[1].condition` or, for a rule of a
    /// rule set, `rules[3].actions[0]`.
    pub fn field(&self) -> Option<&str> {
        self.inner.field.as_deref()
    }

    /// The `AlertManagerBuilder` setting at fault, e.g.
    /// `queue_capacity`.
    pub fn setting(&self) -> Option<&'static str> {
        self.inner.setting
    }

    /// What is wrong, without the rule, field or URL (those have their own accessors).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The URL an action request went to, without user info, query or fragment.
    pub fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }

    /// The HTTP status of an action's response that was not a success.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// Whether an action attempt timed out.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// Whether an action's request could not be sent or its response not read.
    pub fn is_request(&self) -> bool {
        self.inner.kind == ErrorKind::Request
    }

    /// Whether a rule is invalid.
    pub fn is_rule(&self) -> bool {
        self.inner.kind == ErrorKind::Rule
    }

    /// Whether a builder setting is out of range.
    pub fn is_setting(&self) -> bool {
        self.inner.kind == ErrorKind::Setting
    }

    /// Whether trying again cannot help: everything except a failed request, a timeout, a
    /// callback error and a retryable status (5xx, 408, 429). The manager retries an action
    /// only after errors that are not terminal.
    pub fn is_terminal(&self) -> bool {
        match self.inner.kind {
            ErrorKind::Request | ErrorKind::Timeout | ErrorKind::Callback => false,
            ErrorKind::Status => !self.inner.status.is_some_and(retryable),
            _ => true,
        }
    }
}

/// The one rule of our crates for which statuses are worth retrying (wot-sse's).
#[cfg(feature = "http-actions")]
fn retryable(status: StatusCode) -> bool {
    wot_sse::is_retryable_status(status)
}

/// Without HTTP actions no error carries a status.
#[cfg(not(feature = "http-actions"))]
fn retryable(_: StatusCode) -> bool {
    false
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        match i.kind {
            ErrorKind::Rule => {
                if let Some(rule) = &i.rule {
                    write!(f, "rule `{rule}`, ")?;
                }
                if let Some(field) = &i.field {
                    write!(f, "field `{field}`: ")?;
                }
                f.write_str(&i.message)
            }
            ErrorKind::NoActiveAlert | ErrorKind::NotFiring => write!(
                f,
                "rule `{}`, thing `{}`: {}",
                i.rule.as_deref().unwrap_or_default(),
                i.thing.as_deref().unwrap_or_default(),
                i.message
            ),
            ErrorKind::Setting => write!(
                f,
                "invalid setting `{}`: {}",
                i.setting.unwrap_or_default(),
                i.message
            ),
            ErrorKind::Timeout => {
                f.write_str(&i.message)?;
                if let Some(t) = i.timeout {
                    write!(f, ": timed out after {t:?}")?;
                }
                Ok(())
            }
            ErrorKind::Status => {
                f.write_str(&i.message)?;
                if let Some(status) = i.status {
                    write!(f, ": HTTP status {status}")?;
                }
                Ok(())
            }
            _ => f.write_str(&i.message),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.inner;
        let mut d = f.debug_struct("Error");
        d.field("kind", &i.kind).field("message", &i.message);
        for (name, value) in [
            ("rule", &i.rule),
            ("thing", &i.thing),
            ("field", &i.field),
            ("url", &i.url),
        ] {
            if let Some(v) = value {
                d.field(name, v);
            }
        }
        if let Some(s) = i.setting {
            d.field("setting", &s);
        }
        if let Some(s) = i.status {
            d.field("status", &s);
        }
        if let Some(s) = &i.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// Errors compare by kind, location and text (sources are not compared).
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&*self.inner, &*other.inner);
        a.kind == b.kind
            && a.message == b.message
            && a.rule == b.rule
            && a.thing == b.thing
            && a.field == b.field
            && a.setting == b.setting
            && a.url == b.url
            && a.status == b.status
    }
}

impl Eq for Error {}
