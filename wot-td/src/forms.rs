//! Finding the forms for an operation, ranking them and resolving their URLs.

use indexmap::IndexMap;
use serde_json::{Map, Value};
use url::Url;

use crate::model::DataSchema;
use crate::uri_template::{UriTemplateError, expand_uri_template, expand_uri_template_checked};

use crate::model::{AffordanceKind, Form, Operation, Thing};
use crate::security::SecurityScheme;

/// Names an interaction element of a Thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Affordance<'a> {
    /// The property with this name.
    Property(&'a str),
    /// The action with this name.
    Action(&'a str),
    /// The event with this name.
    Event(&'a str),
    /// The Thing itself (its top-level `forms`).
    Thing,
}

impl Affordance<'_> {
    /// The kind of element.
    pub fn kind(&self) -> AffordanceKind {
        match self {
            Affordance::Property(_) => AffordanceKind::Property,
            Affordance::Action(_) => AffordanceKind::Action,
            Affordance::Event(_) => AffordanceKind::Event,
            Affordance::Thing => AffordanceKind::Thing,
        }
    }
}

/// Which forms the caller can use, and preferences for choosing among them.
///
/// **Served schemes** filter: a form is offered only when the URI scheme of its resolved
/// URL is one the caller serves. The default is [`FormQuery::DEFAULT_SCHEMES`] (`http` and
/// `https`); [`schemes`](Self::schemes) replaces that list and
/// [`any_scheme`](Self::any_scheme) accepts every scheme but the
/// [`LOCAL_SCHEMES`](Self::LOCAL_SCHEMES). A `file:`, `javascript:` or `data:` form (or
/// one whose relative `href` resolves to such a URL) is therefore never offered unless
/// [`schemes`](Self::schemes) names that scheme. When forms for the operation exist but
/// none has a served scheme, [`Thing::forms_for`] says so with
/// [`FormError::UnservableScheme`].
///
/// **Preferences** rank: they are ordered lists, an earlier entry ranks higher.
/// Subprotocol preferences rank first, then content types, then URI schemes (among the
/// served ones), then document order.
///
/// ```
/// use wot_td::FormQuery;
/// let query = FormQuery::new()
///     .subprotocol("sse")
///     .subprotocol("longpoll")
///     .uri_scheme("https")
///     .uri_scheme("http")
///     .only_matching(true);
/// assert!(query.serves("https") && !query.serves("file"));
/// let coap = FormQuery::new().schemes(["coap", "coaps"]);
/// assert!(coap.serves("coap") && !coap.serves("http"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct FormQuery {
    subprotocols: Vec<String>,
    content_types: Vec<String>,
    uri_schemes: Vec<String>,
    served: Served,
    only_matching: bool,
    fetched_from: Option<Url>,
}

/// The URI schemes a query accepts.
#[derive(Debug, Clone, PartialEq)]
enum Served {
    /// Exactly these (lowercase).
    Only(Vec<String>),
    /// Every scheme but [`FormQuery::LOCAL_SCHEMES`].
    AnyRemote,
}

impl Default for FormQuery {
    fn default() -> Self {
        FormQuery {
            subprotocols: Vec::new(),
            content_types: Vec::new(),
            uri_schemes: Vec::new(),
            served: Served::Only(Self::DEFAULT_SCHEMES.map(str::to_owned).to_vec()),
            only_matching: false,
            fetched_from: None,
        }
    }
}

impl FormQuery {
    /// The URI schemes a new query serves: `http` and `https`.
    pub const DEFAULT_SCHEMES: [&'static str; 2] = ["http", "https"];

    /// Schemes that name local resources or script rather than a device: `file`,
    /// `javascript`, `vbscript`, `data`, `blob` and `about`. A query offers forms with
    /// them only when [`schemes`](Self::schemes) names them; [`any_scheme`](Self::any_scheme)
    /// leaves them out.
    pub const LOCAL_SCHEMES: [&'static str; 6] =
        ["file", "javascript", "vbscript", "data", "blob", "about"];

    /// No preferences: every form that supports the operation over `http` or `https`
    /// ([`DEFAULT_SCHEMES`](Self::DEFAULT_SCHEMES)), in document order.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves exactly these URI schemes (compared case-insensitively), replacing the
    /// default `http` and `https`: forms whose resolved URL has another scheme are not
    /// offered. Naming a [local scheme](Self::LOCAL_SCHEMES) here is the only way to get
    /// forms with it. An empty list serves nothing.
    pub fn schemes<I, S>(mut self, schemes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.served = Served::Only(
            schemes
                .into_iter()
                .map(|s| s.as_ref().to_ascii_lowercase())
                .collect(),
        );
        self
    }

    /// Serves every URI scheme except the [local ones](Self::LOCAL_SCHEMES), for callers
    /// that list forms rather than use them (a TD browser, a checker).
    pub fn any_scheme(mut self) -> Self {
        self.served = Served::AnyRemote;
        self
    }

    /// Whether forms with this URI scheme are offered (compared case-insensitively).
    pub fn serves(&self, scheme: &str) -> bool {
        match &self.served {
            Served::Only(list) => list.iter().any(|s| s.eq_ignore_ascii_case(scheme)),
            Served::AnyRemote => !Self::LOCAL_SCHEMES
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme)),
        }
    }

    /// Adds a wanted subprotocol (`"sse"`, `"longpoll"`, `"websub"`, ...). A form speaks
    /// `sse` when it says `subprotocol: "sse"` (WoT Profile style) or, with no
    /// `subprotocol`, has `contentType: text/event-stream` (older style). Default: none.
    pub fn subprotocol(mut self, subprotocol: impl Into<String>) -> Self {
        self.subprotocols.push(subprotocol.into());
        self
    }

    /// Adds a wanted content type, compared without parameters and case-insensitively
    /// against the form's effective `contentType`. Default: none.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_types
            .push(crate::model::media_type_of(&content_type.into()));
        self
    }

    /// Adds a preferred URI scheme (`"https"`, `"http"`, ...), to rank the served ones.
    /// This does not make a scheme served: see [`schemes`](Self::schemes). Default: none.
    pub fn uri_scheme(mut self, scheme: impl Into<String>) -> Self {
        self.uri_schemes.push(scheme.into().to_ascii_lowercase());
        self
    }

    /// When `true`, forms that miss any given preference list (subprotocols, content
    /// types, URI schemes) are dropped instead of ranked last. Default: `false`. (Forms
    /// with an unserved scheme are dropped either way.)
    pub fn only_matching(mut self, only: bool) -> Self {
        self.only_matching = only;
        self
    }

    /// The URL the TD was fetched from: relative `href`s resolve against it when the TD
    /// has no `base` (and a relative `base` resolves against it). Default: none.
    pub fn fetched_from(mut self, url: Url) -> Self {
        self.fetched_from = Some(url);
        self
    }
}

/// A form chosen for an operation, with its absolute URL and security.
#[derive(Debug, Clone, PartialEq)]
pub struct FormCandidate<'a> {
    /// The form as written in the TD.
    pub form: &'a Form,
    /// Position of the form in its `forms` array.
    pub index: usize,
    /// `href` resolved against `base` or the fetch URL, with any URI template
    /// expanded without variables (`/temp{?unit}` becomes `/temp`). Use
    /// [`FormCandidate::url_with`] to fill in `uriVariables`.
    pub url: Url,
    /// The URL relative `href`s resolve against, if any.
    pub base: Option<Url>,
    /// The `uriVariables` in scope: the affordance's, then the Thing's.
    pub uri_variables: IndexMap<&'a str, &'a DataSchema>,
    /// The effective security schemes, by name: the form's `security`, else the Thing's.
    /// Names missing from `securityDefinitions` are left out (`validate()` reports them).
    pub security: Vec<(&'a str, &'a SecurityScheme)>,
    /// The subprotocol the form speaks (see [`Form::effective_subprotocol`]).
    pub subprotocol: Option<&'a str>,
    /// True when the form meets every preference the query gave.
    pub matches: bool,
}

/// Why no form could be offered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormError {
    /// The Thing has no such property, action or event.
    #[error("the Thing has no {kind} named `{name}`")]
    NoSuchAffordance {
        /// A property, action or event.
        kind: AffordanceKind,
        /// The name asked for.
        name: String,
    },
    /// A matching form's `href` is relative, and neither `base` nor a fetch URL is known,
    /// or it is not a valid URI.
    #[error("cannot resolve form href `{href}` at {path}: {reason}")]
    Unresolvable {
        /// The `href` as written.
        href: String,
        /// JSON path of the form.
        path: String,
        /// What failed.
        reason: String,
    },
    /// Forms for the operation exist, but none has a URI scheme the query serves (see
    /// [`FormQuery::schemes`]), e.g. only a `file:` or `coap:` form where `http`/`https`
    /// is served.
    #[error(
        "{path}: {count} form{} for `{op}`, but none over a URI scheme this client serves \
         (found {}; {})",
        if *.count == 1 { "" } else { "s" },
        quoted_list(.found),
        served_text(.served)
    )]
    UnservableScheme {
        /// JSON path of the `forms` array (`properties.temp.forms`, or `forms` for the
        /// Thing's own).
        path: String,
        /// The operation asked for.
        op: Operation,
        /// How many forms support the operation.
        count: usize,
        /// The schemes of those forms, lowercase, each once, in document order.
        found: Vec<String>,
        /// The schemes the query serves; `None` when it serves every scheme but the
        /// [local ones](FormQuery::LOCAL_SCHEMES).
        served: Option<Vec<String>>,
    },
}

/// `a`, `b` as text.
fn quoted_list(list: &[String]) -> String {
    list.iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn served_text(served: &Option<Vec<String>>) -> String {
    match served {
        None => format!("served: any but {}", FormQuery::LOCAL_SCHEMES.join(", ")),
        Some(list) if list.is_empty() => "no scheme is served".to_owned(),
        Some(list) => format!("served: {}", list.join(", ")),
    }
}

impl FormCandidate<'_> {
    /// The form's URL with its URI template filled in from `variables`, each checked
    /// against its schema in `uriVariables` first.
    ///
    /// The result keeps the scheme of [`url`](Self::url): a value cannot turn an `http`
    /// form into a `file:` or `javascript:` URL.
    ///
    /// # Errors
    /// [`UriTemplateError::InvalidValue`] when a value does not fit its schema;
    /// [`UriTemplateError::Unresolvable`] when the result is not a valid URL or its scheme
    /// differs from that of [`url`](Self::url).
    pub fn url_with(&self, variables: &Map<String, Value>) -> Result<Url, UriTemplateError> {
        let reference =
            expand_uri_template_checked(&self.form.href, variables, &self.uri_variables)?;
        let url = resolve_href(&reference, self.base.as_ref()).map_err(|reason| {
            UriTemplateError::Unresolvable {
                reference: reference.clone(),
                reason,
            }
        })?;
        if url.scheme() != self.url.scheme() {
            return Err(UriTemplateError::Unresolvable {
                reason: format!(
                    "the URI variables change the scheme from `{}` to `{}`",
                    self.url.scheme(),
                    url.scheme()
                ),
                reference,
            });
        }
        Ok(url)
    }
}

impl Thing {
    /// The forms of `affordance` that support `op`, best first (see [`FormQuery`] for
    /// the ranking), each with its absolute URL and effective security.
    ///
    /// Only forms whose resolved URL has a scheme the query serves are offered (by default
    /// `http` and `https`; see [`FormQuery::schemes`]).
    ///
    /// An empty list means no form supports `op` (or, with
    /// [`FormQuery::only_matching`], none meets the preferences).
    ///
    /// # Errors
    /// [`FormError::NoSuchAffordance`] for an unknown name. When forms support `op` but
    /// none can be offered: [`FormError::UnservableScheme`] if none has a served scheme and
    /// the first that failed was left out for its scheme, else [`FormError::Unresolvable`]
    /// if one has a URL that cannot be resolved (the first is reported). Forms dropped only
    /// by [`FormQuery::only_matching`] give an empty list.
    ///
    /// # Examples
    /// ```
    /// use wot_td::{Affordance, Document, FormQuery, Operation};
    /// let doc = r#"{
    ///   "@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "T",
    ///   "base": "http://dev.local/api/",
    ///   "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}}, "security": "nosec_sc",
    ///   "properties": {"temp": {"type": "number", "observable": true, "forms": [
    ///     {"href": "temp"},
    ///     {"href": "temp/sse", "op": "observeproperty", "subprotocol": "sse"}
    ///   ]}}
    /// }"#.parse::<Document>().unwrap();
    /// let thing = doc.as_thing().unwrap();
    /// let query = FormQuery::new().subprotocol("sse");
    /// let forms = thing
    ///     .forms_for(Affordance::Property("temp"), Operation::ObserveProperty, &query)
    ///     .unwrap();
    /// assert_eq!(forms[0].url.as_str(), "http://dev.local/api/temp/sse");
    /// ```
    pub fn forms_for<'a>(
        &'a self,
        affordance: Affordance<'_>,
        op: Operation,
        query: &FormQuery,
    ) -> Result<Vec<FormCandidate<'a>>, FormError> {
        let missing = |name: &str| FormError::NoSuchAffordance {
            kind: affordance.kind(),
            name: name.to_owned(),
        };
        // Only a property can be read-only or write-only.
        let mut read_write_only = (false, false);
        let (forms, vars, prefix): (&[Form], &Option<IndexMap<String, DataSchema>>, String) =
            match affordance {
                Affordance::Property(name) => {
                    let p = self.property(name).ok_or_else(|| missing(name))?;
                    read_write_only = (p.schema.is_read_only(), p.schema.is_write_only());
                    (&p.forms, &p.uri_variables, path_of("properties", name))
                }
                Affordance::Action(name) => {
                    let a = self.action(name).ok_or_else(|| missing(name))?;
                    (&a.forms, &a.uri_variables, path_of("actions", name))
                }
                Affordance::Event(name) => {
                    let e = self.event(name).ok_or_else(|| missing(name))?;
                    (&e.forms, &e.uri_variables, path_of("events", name))
                }
                Affordance::Thing => (
                    self.forms.as_deref().unwrap_or_default(),
                    &None,
                    String::new(),
                ),
            };
        let (read_only, write_only) = read_write_only;
        let mut uri_variables: IndexMap<&str, &DataSchema> = IndexMap::new();
        for (k, v) in vars.iter().chain(self.uri_variables.iter()).flatten() {
            uri_variables.entry(k.as_str()).or_insert(v);
        }
        let base = self.base_url(query.fetched_from.as_ref());
        let kind = affordance.kind();
        let mut ranked = Vec::new();
        let mut unresolvable = None;
        let mut supporting = 0usize;
        // The schemes of the forms left out for their scheme, and whether one of them came
        // before the first unresolvable form.
        let mut unserved: Vec<String> = Vec::new();
        let mut unserved_first = false;
        // Whether a form had a served scheme (and was ranked, or dropped by `only_matching`).
        let mut served_seen = false;
        for (index, form) in forms.iter().enumerate() {
            if !form.operations(kind, read_only, write_only).contains(&op) {
                continue;
            }
            supporting += 1;
            let subprotocol = form.effective_subprotocol();
            let media = form.media_type();
            let sub_rank = rank(&query.subprotocols, |want| subprotocol == Some(want));
            let ct_rank = rank(&query.content_types, |want| media == want);
            let resolved = expand_uri_template(&form.href, &Map::new())
                .map_err(|e| e.to_string())
                .and_then(|href| match (&base, &self.base) {
                    (None, Some(b)) if Url::parse(&href).is_err() => Err(format!(
                        "the href is relative, and the TD's `base` (`{b}`) is not an absolute \
                         URL that it could resolve against"
                    )),
                    _ => resolve_href(&href, base.as_ref()),
                });
            let url = match resolved {
                Ok(url) => url,
                Err(reason) => {
                    unresolvable.get_or_insert(FormError::Unresolvable {
                        href: form.href.clone(),
                        path: form_path(&prefix, Some(index)),
                        reason,
                    });
                    continue;
                }
            };
            if !query.serves(url.scheme()) {
                if !unserved.iter().any(|s| s == url.scheme()) {
                    unserved.push(url.scheme().to_owned());
                }
                unserved_first |= unresolvable.is_none();
                continue;
            }
            served_seen = true;
            let scheme_rank = rank(&query.uri_schemes, |want| url.scheme() == want);
            let matches = sub_rank.is_some() && ct_rank.is_some() && scheme_rank.is_some();
            if query.only_matching && !matches {
                continue;
            }
            let key = (
                sub_rank.unwrap_or(usize::MAX),
                ct_rank.unwrap_or(usize::MAX),
                scheme_rank.unwrap_or(usize::MAX),
                index,
            );
            ranked.push((
                key,
                FormCandidate {
                    form,
                    index,
                    url,
                    base: base.clone(),
                    uri_variables: uri_variables.clone(),
                    security: self.effective_security(form),
                    subprotocol,
                    matches,
                },
            ));
        }
        if ranked.is_empty() {
            if !served_seen && unserved_first {
                return Err(FormError::UnservableScheme {
                    path: form_path(&prefix, None),
                    op,
                    count: supporting,
                    found: unserved,
                    served: match &query.served {
                        Served::Only(list) => Some(list.clone()),
                        Served::AnyRemote => None,
                    },
                });
            }
            if let Some(err) = unresolvable {
                return Err(err);
            }
        }
        ranked.sort_by_key(|(key, _)| *key);
        Ok(ranked.into_iter().map(|(_, c)| c).collect())
    }

    /// The effective security schemes of `form`: its own `security` if given, else the
    /// Thing's `security`, looked up in `securityDefinitions` (unknown names skipped).
    pub fn effective_security<'a>(&'a self, form: &'a Form) -> Vec<(&'a str, &'a SecurityScheme)> {
        form.security
            .as_ref()
            .unwrap_or(&self.security)
            .iter()
            .filter_map(|name| {
                self.security_definitions
                    .get_key_value(name)
                    .map(|(k, v)| (k.as_str(), v))
            })
            .collect()
    }

    /// The URL relative `href`s resolve against: `base` (itself resolved against
    /// `fetched_from` when relative), else `fetched_from`.
    pub fn base_url(&self, fetched_from: Option<&Url>) -> Option<Url> {
        match (&self.base, fetched_from) {
            (Some(base), Some(from)) => from.join(base).ok(),
            (Some(base), None) => Url::parse(base).ok(),
            (None, from) => from.cloned(),
        }
    }
}

fn path_of(section: &str, name: &str) -> String {
    let mut s = String::new();
    crate::parse::push_key(&mut s, section);
    crate::parse::push_key(&mut s, name);
    s
}

/// The JSON path of form `index` of the element at `prefix` (of its `forms` array when
/// `index` is `None`).
fn form_path(prefix: &str, index: Option<usize>) -> String {
    let index = index.map(|i| format!("[{i}]")).unwrap_or_default();
    if prefix.is_empty() {
        format!("forms{index}")
    } else {
        format!("{prefix}.forms{index}")
    }
}

/// Position of the first preference that `matches`; `Some(0)` when there are none.
fn rank(preferences: &[String], matches: impl Fn(&str) -> bool) -> Option<usize> {
    if preferences.is_empty() {
        return Some(0);
    }
    preferences.iter().position(|p| matches(p))
}

/// Resolves `href` against `base` (RFC 3986 reference resolution).
pub(crate) fn resolve_href(href: &str, base: Option<&Url>) -> Result<Url, String> {
    match Url::parse(href) {
        Ok(url) => Ok(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => match base {
            Some(base) => base.join(href).map_err(|e| e.to_string()),
            None => Err(
                "the href is relative, and there is nothing to resolve it against \
                 (no absolute `base` in the TD and no `FormQuery::fetched_from` URL)"
                    .into(),
            ),
        },
        Err(e) => Err(e.to_string()),
    }
}
