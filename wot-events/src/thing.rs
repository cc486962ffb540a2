//! `ConsumedThing`: a validated TD plus the URL it came from.

use std::path::Path;
use std::sync::Arc;

use url::Url;
use wot_td::{Document, Thing};

use crate::error::{Error, Origin, Repr};
use crate::record::SharedStr;

/// A Thing Description ready to use: parsed, validated, with the URL it was fetched from
/// (the base for relative hrefs when the TD has no `base`). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ConsumedThing {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    thing: Thing,
    source: Option<Url>,
    id: SharedStr,
    title: SharedStr,
}

impl ConsumedThing {
    /// Wraps a TD value. `fetched_from` is the base for relative hrefs when the TD has no
    /// `base` (pass `None` for a TD with absolute hrefs).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) with every error diagnostic of
    /// [`Thing::validate`].
    pub fn new(thing: Thing, fetched_from: Option<Url>) -> Result<Self, Error> {
        let origin = Origin::of(fetched_from.as_ref(), || format!("value `{}`", thing.title));
        Self::checked(thing, fetched_from, origin)
    }

    /// Validates `thing`; `origin` names it in the error.
    fn checked(thing: Thing, fetched_from: Option<Url>, origin: Origin) -> Result<Self, Error> {
        let diagnostics: Vec<_> = thing
            .validate()
            .into_iter()
            .filter(|d| d.is_error())
            .collect();
        if !diagnostics.is_empty() {
            return Err(Repr::Invalid {
                origin,
                diagnostics,
            }
            .into());
        }
        let id = SharedStr::from(thing.id.as_deref().unwrap_or(&thing.title));
        let title = SharedStr::from(thing.title.as_str());
        Ok(ConsumedThing {
            inner: Arc::new(Inner {
                thing,
                source: fetched_from,
                id,
                title,
            }),
        })
    }

    /// Parses and validates a TD from JSON bytes. `origin` names the source in errors.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Parse`](crate::ErrorKind::Parse) (not JSON, or not a TD, with line, column and
    /// JSON path), [`ErrorKind::NotAThing`](crate::ErrorKind::NotAThing) for a Thing Model,
    /// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) with the diagnostics.
    ///
    /// # Examples
    ///
    /// ```
    /// use wot_events::ConsumedThing;
    ///
    /// let td = br#"{"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "Lamp",
    ///   "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}}, "security": "nosec_sc",
    ///   "events": {"overheat": {"forms": [{"href": "overheat", "subprotocol": "sse"}]}}}"#;
    /// let thing = ConsumedThing::from_slice(td, Some("http://192.0.2.1/lamp".parse()?))?;
    /// assert_eq!(thing.id(), "Lamp"); // no `id`: the title stands in
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_slice(json: &[u8], fetched_from: Option<Url>) -> Result<Self, Error> {
        let origin = Origin::of(fetched_from.as_ref(), || "bytes".to_owned());
        Self::parse(json, origin, fetched_from)
    }

    pub(crate) fn parse(
        json: &[u8],
        origin: Origin,
        fetched_from: Option<Url>,
    ) -> Result<Self, Error> {
        let doc = match Document::from_slice(json) {
            Ok(doc) => doc,
            Err(source) => return Err(Repr::Parse { origin, source }.into()),
        };
        let Some(thing) = doc.into_thing() else {
            return Err(Repr::NotAThing { origin }.into());
        };
        Self::checked(thing, fetched_from, origin)
    }

    /// Reads, parses and validates a TD file. Relative hrefs resolve against the TD's
    /// `base` only.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::ErrorKind::Io), and those of [`ConsumedThing::from_slice`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(source) => {
                return Err(Repr::Io {
                    path: shown,
                    source,
                }
                .into());
            }
        };
        let origin = Origin {
            name: shown,
            url: None,
        };
        Self::parse(&bytes, origin, None)
    }

    /// The TD.
    pub fn thing(&self) -> &Thing {
        &self.inner.thing
    }

    /// The Thing's `id`, or its `title` when it has none.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The Thing's `title`.
    pub fn title(&self) -> &str {
        &self.inner.title
    }

    /// The id as the shared text records carry.
    pub(crate) fn shared_id(&self) -> &SharedStr {
        &self.inner.id
    }

    /// The title as the shared text records carry.
    pub(crate) fn shared_title(&self) -> &SharedStr {
        &self.inner.title
    }

    /// The URL the TD was fetched from.
    pub fn source(&self) -> Option<&Url> {
        self.inner.source.as_ref()
    }
}

/// A Thing for unit tests: a `nosec` TD 1.1 with id `urn:t` and title `T`, and `members`
/// (`properties`, `events`, or `securityDefinitions` and `security` in place of the `nosec`
/// ones) added to it.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn test_thing(members: serde_json::Value) -> ConsumedThing {
    let mut td = serde_json::json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": "urn:t", "title": "T",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
    });
    if let (Some(td), serde_json::Value::Object(members)) = (td.as_object_mut(), members) {
        td.extend(members);
    }
    ConsumedThing::from_slice(&serde_json::to_vec(&td).unwrap(), None).unwrap()
}
