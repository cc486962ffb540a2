//! Thing Models made into Thing Descriptions (TD 1.1 §9): `tm:extends` and `tm:ref`
//! resolved through a caller-supplied [`ModelLoader`], `{{PLACEHOLDER}}`s substituted,
//! `tm:optional` affordances kept or dropped, `tm:required` checked, the Thing Model
//! terms removed and a `rel: "type"` link to the model added.
//!
//! The crate does no I/O: the loader returns the bytes of a model for a resolved href.
//! A hostile graph of models is bounded by [`InstantiateLimits`]: reference depth,
//! number and size of the models loaded, and the size of what resolving builds.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::parse::{Document, Inner, ParseError, ThingModel, push_key};

/// The error a [`ModelLoader`] returns: any error type, boxed.
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

/// The media type of Thing Models, used in the `rel: "type"` link of the TD.
const TM_MEDIA_TYPE: &str = "application/tm+json";

/// Nesting limit of the result: the limit `serde_json` applies when parsing.
const MAX_NESTING: usize = 128;

/// How many places of one missing placeholder an error lists.
const MAX_PATHS_PER_PLACEHOLDER: usize = 8;

/// Supplies the bytes (UTF-8 JSON) of the Thing Model at `href`.
///
/// `href` is already resolved against the location of the model that refers to it (see
/// [`Instantiation::location`]); the fragment of a `tm:ref` is not part of it. The
/// loader decides what it serves (files below one directory, a cache, an HTTP fetch done
/// beforehand) and should refuse everything else. It should read at most `max_bytes + 1`
/// bytes: a longer answer is rejected anyway.
///
/// Any `Fn(&str, u64) -> Result<Vec<u8>, LoadError>` is a loader:
///
/// ```
/// use std::collections::HashMap;
/// use wot_td::{LoadError, ModelLoader};
///
/// let models = HashMap::from([(
///     "https://models.example/lamp.tm.json".to_owned(),
///     br#"{"@context": "https://www.w3.org/2022/wot/td/v1.1", "@type": "tm:ThingModel"}"#.to_vec(),
/// )]);
/// let loader = |href: &str, _max_bytes: u64| -> Result<Vec<u8>, LoadError> {
///     models.get(href).cloned().ok_or_else(|| format!("no model at `{href}`").into())
/// };
/// assert!(loader.load("https://models.example/lamp.tm.json", 1 << 20).is_ok());
/// assert!(loader.load("https://elsewhere.example/", 1 << 20).is_err());
/// ```
pub trait ModelLoader {
    /// The bytes of the model at `href`, at most `max_bytes` of them.
    ///
    /// # Errors
    /// Whatever kept the loader from supplying the model; it becomes an
    /// [`InstantiateErrorKind::Load`] error that names `href` and the referring member.
    fn load(&self, href: &str, max_bytes: u64) -> Result<Vec<u8>, LoadError>;
}

impl<F: Fn(&str, u64) -> Result<Vec<u8>, LoadError>> ModelLoader for F {
    fn load(&self, href: &str, max_bytes: u64) -> Result<Vec<u8>, LoadError> {
        self(href, max_bytes)
    }
}

/// Bounds on the work of one instantiation, so that a hostile graph of models (deep
/// chains, cycles, a "bomb" of references that copy each other) ends with an error in
/// bounded time and memory.
///
/// ```
/// use wot_td::InstantiateLimits;
/// let small = InstantiateLimits { max_models: 8, ..InstantiateLimits::default() };
/// assert_eq!(small.max_depth, 16);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstantiateLimits {
    /// How many `tm:extends`/`tm:ref` hops may be nested below the model being
    /// instantiated (default 16).
    pub max_depth: usize,
    /// How many distinct models may be loaded (default 64). Each href is loaded once.
    pub max_models: usize,
    /// Largest model the loader may return, in bytes (default 4 MiB).
    pub max_model_bytes: u64,
    /// All loaded models together, in bytes (default 16 MiB).
    pub max_loaded_bytes: u64,
    /// Size of the JSON that resolving builds, counted as compact JSON text, each copy
    /// of a referenced definition again (default 16 MiB). Also the limit of the
    /// result.
    pub max_expanded_bytes: usize,
}

impl InstantiateLimits {
    /// The default limits (also [`Default::default`]).
    pub const DEFAULT: InstantiateLimits = InstantiateLimits {
        max_depth: 16,
        max_models: 64,
        max_model_bytes: 4 << 20,
        max_loaded_bytes: 16 << 20,
        max_expanded_bytes: 16 << 20,
    };
}

impl Default for InstantiateLimits {
    fn default() -> Self {
        InstantiateLimits::DEFAULT
    }
}

/// What to put into the Thing Description: placeholder values, which optional
/// affordances to keep, where the model lives, and what to add to the result.
///
/// ```
/// use serde_json::json;
/// use wot_td::Instantiation;
///
/// let how = Instantiation::new()
///     .location("https://models.example/thermostat.tm.json")
///     .set("THERMOSTAT_NUMBER", 4)
///     .set("MQTT_BROKER_ADDRESS", "192.0.2.7:1883")
///     .keep_optional("/events/overheating")
///     .patch(json!({"securityDefinitions": {"nosec_sc": {"scheme": "nosec"}}, "security": "nosec_sc"}));
/// # let _ = how;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Instantiation {
    values: IndexMap<String, Value>,
    keep: Vec<String>,
    keep_all: bool,
    location: Option<String>,
    patch: Option<Value>,
    limits: InstantiateLimits,
}

impl Instantiation {
    /// No placeholder values, optional affordances dropped, no location, no patch,
    /// default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of placeholder `{{name}}`. Where a string is exactly the placeholder,
    /// the value replaces it as it is (a number, boolean, object...); inside a longer
    /// string, a string value is inserted as it is and a number or boolean as its JSON
    /// text.
    pub fn set(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.values.insert(name.into(), value.into());
        self
    }

    /// Keeps the optional affordance at `pointer` (as written in `tm:optional`, such as
    /// `/properties/status`). Without this, affordances listed in `tm:optional` are left
    /// out of the TD.
    pub fn keep_optional(mut self, pointer: impl Into<String>) -> Self {
        self.keep.push(pointer.into());
        self
    }

    /// Keeps every optional affordance.
    pub fn keep_all_optional(mut self) -> Self {
        self.keep_all = true;
        self
    }

    /// Where the model being instantiated lives (a URL, or a path the loader
    /// understands): relative hrefs of its `tm:extends` and `tm:ref` are resolved
    /// against it, and the TD gets a link `{"rel": "type", "href": location, "type":
    /// "application/tm+json"}`. Without a location, hrefs reach the loader as written
    /// and no such link is added.
    pub fn location(mut self, href: impl Into<String>) -> Self {
        self.location = Some(href.into());
        self
    }

    /// A JSON Merge Patch (RFC 7396) applied to the result after the placeholders:
    /// the place for what a model leaves out and a TD needs, such as
    /// `securityDefinitions`, `security`, `base` and `forms`. A `null` member removes
    /// one. Its strings are not searched for placeholders. A patch for an affordance
    /// that was dropped as optional creates it.
    pub fn patch(mut self, patch: Value) -> Self {
        self.patch = Some(patch);
        self
    }

    /// Limits other than [`InstantiateLimits::DEFAULT`].
    pub fn limits(mut self, limits: InstantiateLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// One placeholder without a value, and where it occurs in the expanded model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingPlaceholder {
    /// The name between `{{` and `}}`.
    pub name: String,
    /// JSON paths of the first places it occurs (at most 8), like
    /// `properties.temperature.maximum`.
    pub paths: Vec<String>,
    /// How many places in all.
    pub count: usize,
}

/// What went wrong while instantiating; [`InstantiateError`] adds where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstantiateErrorKind {
    /// The loader could not supply the model at `href` (its error is
    /// [`InstantiateError::cause`]).
    Load {
        /// The resolved href.
        href: String,
    },
    /// The model at `href` is not a Thing Model (not JSON, a repeated key, or no
    /// `tm:ThingModel` type); a parse error is [`InstantiateError::cause`].
    NotAModel {
        /// The resolved href.
        href: String,
    },
    /// A model was longer than [`InstantiateLimits::max_model_bytes`], or one limit of
    /// [`InstantiateLimits`] was reached.
    LimitExceeded {
        /// Which limit: `max_model_bytes`, `max_loaded_bytes`, `max_models`,
        /// `max_expanded_bytes` or `nesting` (the result would nest deeper than 128
        /// levels).
        limit: &'static str,
        /// Its value.
        max: u64,
    },
    /// A model extends itself, or a `tm:ref` refers to a definition that contains it.
    Cycle {
        /// The references on the cycle, as `href#pointer`, from the first to the one
        /// that closes it.
        chain: Vec<String>,
    },
    /// More than [`InstantiateLimits::max_depth`] nested references.
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// A `tm:ref` or a `tm:extends` link that cannot be used: not a string, no `#`,
    /// not a JSON pointer, an href that cannot be resolved.
    BadReference {
        /// The reference as written.
        reference: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// A `tm:ref` pointer names nothing in the model it points into.
    PointerNotFound {
        /// The reference as written.
        reference: String,
    },
    /// Placeholders without a value (all of them, in order of first occurrence).
    MissingPlaceholders(Vec<MissingPlaceholder>),
    /// A placeholder inside a longer string has a value that is not a string, number
    /// or boolean.
    PlaceholderNotText {
        /// The placeholder name.
        name: String,
    },
    /// [`Instantiation::keep_optional`] names no affordance of the model.
    UnknownAffordance {
        /// The pointers that name nothing.
        pointers: Vec<String>,
    },
    /// An entry of `tm:required` names no affordance of the expanded model.
    RequiredMissing {
        /// The pointer as written.
        pointer: String,
    },
    /// The result is not a Thing Description (the [`ParseError`] is
    /// [`InstantiateError::parse_error`]); often a model without
    /// `securityDefinitions`/`security`, which [`Instantiation::patch`] can add.
    NotATd,
}

/// An instantiation failure: what ([`InstantiateErrorKind`]), in which model (its
/// resolved href) and where in it (a JSON pointer, or a JSON path in the result).
///
/// ```
/// use wot_td::{Document, Instantiation, InstantiateErrorKind, LoadError};
///
/// let doc = r#"{
///     "@context": "https://www.w3.org/2022/wot/td/v1.1",
///     "@type": "tm:ThingModel",
///     "title": "Lamp {{NUMBER}}",
///     "properties": {"on": {"tm:ref": "base.tm.json#/properties/onOff"}}
/// }"#.parse::<Document>()?;
/// let no_files = |href: &str, _: u64| -> Result<Vec<u8>, LoadError> {
///     Err(format!("`{href}` is not available").into())
/// };
/// let err = doc.as_thing_model().unwrap()
///     .instantiate(&Instantiation::new().location("lamp.tm.json"), &no_files)
///     .unwrap_err();
/// assert!(matches!(err.kind(), InstantiateErrorKind::Load { href } if href == "base.tm.json"));
/// assert_eq!(err.model(), Some("lamp.tm.json"));
/// assert_eq!(err.pointer(), "/properties/on/tm:ref");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
pub struct InstantiateError {
    kind: InstantiateErrorKind,
    model: Option<String>,
    pointer: String,
    /// The cause (a loader error or a [`ParseError`]); part of the message, so not
    /// also returned by `Error::source`.
    cause: Option<LoadError>,
}

impl InstantiateError {
    /// What went wrong.
    pub fn kind(&self) -> &InstantiateErrorKind {
        &self.kind
    }

    /// The resolved href of the model where it went wrong; `None` for the model being
    /// instantiated when it has no [`Instantiation::location`], and for problems of the
    /// result (placeholders, the final TD).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Where in that model: a JSON pointer to the member at fault (`/properties/x/tm:ref`,
    /// `/links/0`), or, for problems of the result, its JSON path. Empty for the whole.
    pub fn pointer(&self) -> &str {
        &self.pointer
    }

    /// The parse error, when the result is not a Thing Description.
    pub fn parse_error(&self) -> Option<&ParseError> {
        self.cause.as_ref()?.downcast_ref::<ParseError>()
    }

    /// The cause, if any: the loader's error, or the [`ParseError`] of a model or of
    /// the result. Its text ends the message.
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }

    fn new(kind: InstantiateErrorKind, at: &At) -> Self {
        InstantiateError {
            kind,
            model: at.model.clone(),
            pointer: at.pointer.clone(),
            cause: None,
        }
    }

    fn with_source(mut self, source: LoadError) -> Self {
        self.cause = Some(source);
        self
    }
}

impl fmt::Display for InstantiateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.model, self.pointer.is_empty()) {
            (Some(m), true) => write!(f, "{m}: ")?,
            (Some(m), false) => write!(f, "{m}#{}: ", self.pointer)?,
            (None, false) => write!(f, "{}: ", self.pointer)?,
            (None, true) => {}
        }
        match &self.kind {
            InstantiateErrorKind::Load { href } => write!(f, "cannot load the model `{href}`")?,
            InstantiateErrorKind::NotAModel { href } => {
                write!(f, "`{href}` is not a Thing Model")?;
            }
            InstantiateErrorKind::LimitExceeded { limit, max } => {
                write!(f, "the instantiation limit {limit} ({max}) is exceeded")?;
            }
            InstantiateErrorKind::Cycle { chain } => {
                write!(f, "reference cycle: {}", chain.join(" -> "))?;
            }
            InstantiateErrorKind::TooDeep { limit } => {
                write!(
                    f,
                    "more than {limit} nested `tm:extends`/`tm:ref` references"
                )?;
            }
            InstantiateErrorKind::BadReference { reference, reason } => {
                write!(f, "unusable reference `{reference}`: {reason}")?;
            }
            InstantiateErrorKind::PointerNotFound { reference } => {
                write!(f, "`{reference}` points to nothing")?;
            }
            InstantiateErrorKind::MissingPlaceholders(missing) => {
                f.write_str("no value for ")?;
                for (i, m) in missing.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{{{{{}}}}} (at {}", m.name, m.paths.join(", "))?;
                    if m.count > m.paths.len() {
                        write!(f, " and {} more", m.count - m.paths.len())?;
                    }
                    f.write_str(")")?;
                }
            }
            InstantiateErrorKind::PlaceholderNotText { name } => write!(
                f,
                "the placeholder {{{{{name}}}}} is part of a longer string, so its value must be a string, number or boolean"
            )?,
            InstantiateErrorKind::UnknownAffordance { pointers } => write!(
                f,
                "asked to keep affordances the model does not have: {}",
                pointers.join(", ")
            )?,
            InstantiateErrorKind::RequiredMissing { pointer } => {
                write!(
                    f,
                    "`tm:required` names `{pointer}`, which the model does not define"
                )?;
            }
            InstantiateErrorKind::NotATd => f.write_str("the result is not a Thing Description")?,
        }
        if let Some(source) = &self.cause {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl ThingModel {
    /// Instantiates this model into a Thing Description (TD 1.1 §9.4).
    ///
    /// In order: the `tm:extends` parents are merged in (recursively; several parents
    /// in link order, each later one and then the model itself overriding the earlier
    /// ones as a JSON Merge Patch, with `links`, `@context` and `@type` joined), every
    /// `tm:ref` is replaced by the definition it points to patched with the members
    /// beside it, affordances listed in `tm:optional` are dropped unless kept,
    /// `tm:required` entries must exist, the Thing Model terms are removed (`tm:*`
    /// members, `tm:ThingModel` in `@type`, `tm:extends`/`tm:submodel` links),
    /// placeholders are substituted, `version.instance` is set from `version.model`
    /// when missing, the [patch](Instantiation::patch) is applied, a `rel: "type"`
    /// link to the [location](Instantiation::location) is added, and the JSON is
    /// parsed as a TD. Check the result with [`Document::validate`].
    ///
    /// ```
    /// use serde_json::json;
    /// use wot_td::{Document, Instantiation, LoadError};
    ///
    /// let models = |href: &str, _: u64| -> Result<Vec<u8>, LoadError> {
    ///     match href {
    ///         "https://models.example/onoff.tm.json" => Ok(br#"{
    ///             "@context": "https://www.w3.org/2022/wot/td/v1.1",
    ///             "@type": "tm:ThingModel",
    ///             "title": "On/Off",
    ///             "properties": {"onOff": {"type": "boolean"}}
    ///         }"#.to_vec()),
    ///         _ => Err(format!("unknown model `{href}`").into()),
    ///     }
    /// };
    /// let tm = r#"{
    ///     "@context": "https://www.w3.org/2022/wot/td/v1.1",
    ///     "@type": "tm:ThingModel",
    ///     "title": "Lamp {{NUMBER}}",
    ///     "version": {"model": "1.0.0"},
    ///     "links": [{"rel": "tm:extends", "href": "onoff.tm.json", "type": "application/tm+json"}],
    ///     "properties": {"dim": {"type": "integer", "minimum": 0, "maximum": "{{MAX_DIM}}"}}
    /// }"#.parse::<Document>()?;
    /// let how = Instantiation::new()
    ///     .location("https://models.example/lamp.tm.json")
    ///     .set("NUMBER", 7)
    ///     .set("MAX_DIM", 100)
    ///     .patch(json!({
    ///         "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
    ///         "security": "nosec_sc",
    ///         "base": "http://192.0.2.7/",
    ///         "properties": {"onOff": {"forms": [{"href": "onoff"}]}, "dim": {"forms": [{"href": "dim"}]}}
    ///     }));
    /// let td = tm.as_thing_model().unwrap().instantiate(&how, &models)?;
    /// assert!(td.validate().iter().all(|d| !d.is_error()));
    /// let thing = td.as_thing().unwrap();
    /// assert_eq!(thing.title, "Lamp 7");
    /// assert_eq!(thing.property("dim").unwrap().schema.maximum, Some(100.into()));
    /// assert!(thing.property("onOff").is_some());
    /// let json = td.to_value()?;
    /// assert_eq!(json["version"], json!({"model": "1.0.0", "instance": "1.0.0"}));
    /// assert_eq!(json["links"], json!([{
    ///     "rel": "type", "href": "https://models.example/lamp.tm.json", "type": "application/tm+json"
    /// }]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// An [`InstantiateError`]: a model that cannot be loaded or is not a Thing Model, a
    /// reference cycle, too deep a chain, an unusable reference or pointer, missing
    /// placeholder values (all of them in one error), an unknown affordance to keep, a
    /// `tm:required` entry without its affordance, a limit of [`InstantiateLimits`], or
    /// a result that does not parse as a TD.
    pub fn instantiate(
        &self,
        how: &Instantiation,
        loader: &dyn ModelLoader,
    ) -> Result<Document, InstantiateError> {
        let value = self.instantiate_value(how, loader)?;
        match Document::from_value(value) {
            Ok(doc @ Document(Inner::Td(..))) => Ok(doc),
            Ok(Document(Inner::Tm(_))) => Err(InstantiateError::new(
                InstantiateErrorKind::NotATd,
                &At::result("@type"),
            )),
            Err(e) => Err(
                InstantiateError::new(InstantiateErrorKind::NotATd, &At::result(""))
                    .with_source(Box::new(e)),
            ),
        }
    }

    /// [`ThingModel::instantiate`] without the final parse: the JSON of the Thing
    /// Description, for a caller that wants to show or complete it first.
    ///
    /// ```
    /// use wot_td::{Document, Instantiation, LoadError};
    ///
    /// let tm = r#"{
    ///     "@context": "https://www.w3.org/2022/wot/td/v1.1",
    ///     "@type": ["tm:ThingModel", "saref:LightSwitch"],
    ///     "title": "Switch",
    ///     "tm:optional": ["/properties/power"],
    ///     "properties": {
    ///         "on": {"type": "boolean"},
    ///         "power": {"type": "number", "unit": "W"}
    ///     }
    /// }"#.parse::<Document>()?;
    /// let none = |href: &str, _: u64| -> Result<Vec<u8>, LoadError> { Err(href.into()) };
    /// let json = tm.as_thing_model().unwrap().instantiate_value(&Instantiation::new(), &none)?;
    /// assert_eq!(json["@type"], "saref:LightSwitch");
    /// assert!(json["properties"].get("power").is_none());
    /// assert!(json.get("tm:optional").is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`ThingModel::instantiate`], except that the result is not parsed.
    pub fn instantiate_value(
        &self,
        how: &Instantiation,
        loader: &dyn ModelLoader,
    ) -> Result<Value, InstantiateError> {
        let root = how.location.as_deref().map(|l| normalize_href(None, l));
        let root_key = root.clone().unwrap_or_default();
        let mut r = Resolver {
            loader,
            limits: how.limits,
            root: root.clone(),
            raw: HashMap::new(),
            merged: HashMap::new(),
            pointers: HashMap::new(),
            stack: Vec::new(),
            loaded_bytes: 0,
            built: 0,
        };
        let at_root = At {
            model: root.clone(),
            pointer: String::new(),
        };
        // A model built in code may nest deeper than a parsed one can.
        if measure_map_depth(&self.json) > MAX_NESTING {
            return Err(limit("nesting", MAX_NESTING as u64, &at_root));
        }
        r.raw.insert(root_key.clone(), Rc::new(self.json.clone()));
        let resolved = r.resolve_pointer(&root_key, "", &at_root, true)?;
        let mut value = resolved.value.clone();
        drop(r);

        let Value::Object(map) = &mut value else {
            return Err(InstantiateError::new(
                InstantiateErrorKind::NotATd,
                &at_root,
            ));
        };
        select_affordances(map, how, &at_root)?;
        strip_tm_terms(map);
        substitute_placeholders(&mut value, &how.values)?;
        if let Value::Object(map) = &mut value {
            set_version_instance(map);
        }
        if let Some(patch) = &how.patch {
            merge_patch(&mut value, patch);
        }
        if let (Some(location), Value::Object(map)) = (&how.location, &mut value) {
            add_type_link(map, location);
        }
        let size = measure(&value);
        if size.depth > MAX_NESTING {
            return Err(limit("nesting", MAX_NESTING as u64, &At::result("")));
        }
        if size.bytes > how.limits.max_expanded_bytes {
            return Err(limit(
                "max_expanded_bytes",
                how.limits.max_expanded_bytes as u64,
                &At::result(""),
            ));
        }
        Ok(value)
    }
}

/// A place in a model: its resolved href (None: the root without a location) and a
/// JSON pointer; or, with `model` None, a JSON path of the result.
#[derive(Debug, Clone)]
struct At {
    model: Option<String>,
    pointer: String,
}

impl At {
    fn result(path: &str) -> Self {
        At {
            model: None,
            pointer: path.to_owned(),
        }
    }
}

fn limit(name: &'static str, max: u64, at: &At) -> InstantiateError {
    InstantiateError::new(InstantiateErrorKind::LimitExceeded { limit: name, max }, at)
}

fn bad_ref(reference: &str, reason: impl Into<String>, at: &At) -> InstantiateError {
    InstantiateError::new(
        InstantiateErrorKind::BadReference {
            reference: reference.to_owned(),
            reason: reason.into(),
        },
        at,
    )
}

/// A resolved definition with its size.
struct Resolved {
    value: Value,
    size: Size,
}

/// A frame of the resolution in progress, for cycle detection and the depth limit.
#[derive(PartialEq, Eq)]
enum Frame {
    /// Merging the parents of a model.
    Merge(String),
    /// Resolving the references of the definition at (model, pointer).
    Pointer(String, String),
}

struct Resolver<'a> {
    loader: &'a dyn ModelLoader,
    limits: InstantiateLimits,
    /// The location of the root model, if known.
    root: Option<String>,
    /// Loaded models by resolved href (the root under its location, or "").
    raw: HashMap<String, Rc<Map<String, Value>>>,
    /// Models with their parents merged in, their own references not resolved yet.
    merged: HashMap<String, Rc<Value>>,
    /// Resolved definitions by (model, pointer).
    pointers: HashMap<(String, String), Rc<Resolved>>,
    stack: Vec<Frame>,
    loaded_bytes: u64,
    /// Bytes of JSON built so far (see `InstantiateLimits::max_expanded_bytes`).
    built: usize,
}

impl Resolver<'_> {
    fn at(&self, key: &str, pointer: String) -> At {
        At {
            model: (!key.is_empty() || self.root.is_some()).then(|| key.to_owned()),
            pointer,
        }
    }

    fn charge(&mut self, bytes: usize, at: &At) -> Result<(), InstantiateError> {
        self.built = self.built.saturating_add(bytes);
        if self.built > self.limits.max_expanded_bytes {
            return Err(limit(
                "max_expanded_bytes",
                self.limits.max_expanded_bytes as u64,
                at,
            ));
        }
        Ok(())
    }

    fn cycle(&self, closing: &Frame, at: &At) -> InstantiateError {
        let start = self.stack.iter().position(|f| f == closing).unwrap_or(0);
        let chain = self
            .stack
            .get(start..)
            .unwrap_or_default()
            .iter()
            .chain(std::iter::once(closing))
            .map(|f| {
                let (m, p) = match f {
                    Frame::Merge(m) => (m.as_str(), ""),
                    Frame::Pointer(m, p) => (m.as_str(), p.as_str()),
                };
                let m = if m.is_empty() { "(this model)" } else { m };
                if p.is_empty() {
                    m.to_owned()
                } else {
                    format!("{m}#{p}")
                }
            })
            .fold(Vec::<String>::new(), |mut chain, s| {
                if chain.last() != Some(&s) {
                    chain.push(s);
                }
                chain
            });
        InstantiateError::new(InstantiateErrorKind::Cycle { chain }, at)
    }

    /// The model at `key`, loading it on first use; `at` is the referring member.
    fn raw(&mut self, key: &str, at: &At) -> Result<Rc<Map<String, Value>>, InstantiateError> {
        if let Some(m) = self.raw.get(key) {
            return Ok(Rc::clone(m));
        }
        if self.raw.len() > self.limits.max_models {
            return Err(limit("max_models", self.limits.max_models as u64, at));
        }
        let max = self.limits.max_model_bytes;
        let bytes = self.loader.load(key, max).map_err(|e| {
            InstantiateError::new(
                InstantiateErrorKind::Load {
                    href: key.to_owned(),
                },
                at,
            )
            .with_source(e)
        })?;
        let len = bytes.len() as u64;
        if len > max {
            return Err(limit("max_model_bytes", max, at));
        }
        self.loaded_bytes = self.loaded_bytes.saturating_add(len);
        if self.loaded_bytes > self.limits.max_loaded_bytes {
            return Err(limit("max_loaded_bytes", self.limits.max_loaded_bytes, at));
        }
        let not_a_model = || {
            InstantiateError::new(
                InstantiateErrorKind::NotAModel {
                    href: key.to_owned(),
                },
                at,
            )
        };
        let model = match Document::from_slice(&bytes) {
            Ok(Document(Inner::Tm(model))) => model,
            Ok(Document(Inner::Td(..))) => return Err(not_a_model()),
            Err(e) => return Err(not_a_model().with_source(Box::new(e))),
        };
        let model = Rc::new(model.json);
        self.raw.insert(key.to_owned(), Rc::clone(&model));
        Ok(model)
    }

    /// The model at `key` with its `tm:extends` parents (each fully resolved) merged in.
    fn merged(&mut self, key: &str, at: &At) -> Result<Rc<Value>, InstantiateError> {
        if let Some(v) = self.merged.get(key) {
            return Ok(Rc::clone(v));
        }
        let frame = Frame::Merge(key.to_owned());
        if self.stack.contains(&frame) {
            return Err(self.cycle(&frame, at));
        }
        let raw = self.raw(key, at)?;
        self.stack.push(frame);
        let result = self.merge_parents(key, &raw);
        self.stack.pop();
        let merged = Rc::new(result?);
        self.merged.insert(key.to_owned(), Rc::clone(&merged));
        Ok(merged)
    }

    fn merge_parents(
        &mut self,
        key: &str,
        raw: &Map<String, Value>,
    ) -> Result<Value, InstantiateError> {
        let mut base: Option<Value> = None;
        let links = raw.get("links").and_then(Value::as_array);
        for (i, link) in links.into_iter().flatten().enumerate() {
            if link.get("rel").and_then(Value::as_str) != Some("tm:extends") {
                continue;
            }
            let at = self.at(key, format!("/links/{i}"));
            let Some(href) = link.get("href").and_then(Value::as_str) else {
                return Err(bad_ref(
                    "",
                    "a `tm:extends` link needs an `href` string",
                    &at,
                ));
            };
            let parent_key = resolve_href(Some(key).filter(|k| !k.is_empty()), href)
                .map_err(|reason| bad_ref(href, reason, &at))?;
            let parent = self.resolve_pointer(&parent_key, "", &at, false)?;
            self.charge(parent.size.bytes, &at)?;
            let Value::Object(parent_map) = &parent.value else {
                return Err(bad_ref(href, "the parent is not a JSON object", &at));
            };
            base = Some(match base {
                None => parent.value.clone(),
                Some(b) => merge_extends(b, parent_map),
            });
        }
        let own = self.at(key, String::new());
        self.charge(measure_map(raw), &own)?;
        Ok(match base {
            None => Value::Object(raw.clone()),
            Some(b) => merge_extends(b, raw),
        })
    }

    /// The definition at `pointer` in model `key`, with every `tm:ref` in it resolved.
    /// `at` is the member that refers to it; `root` is true for the model being
    /// instantiated, which does not count toward the depth.
    fn resolve_pointer(
        &mut self,
        key: &str,
        pointer: &str,
        at: &At,
        root: bool,
    ) -> Result<Rc<Resolved>, InstantiateError> {
        let cache_key = (key.to_owned(), pointer.to_owned());
        if let Some(r) = self.pointers.get(&cache_key) {
            return Ok(Rc::clone(r));
        }
        let frame = Frame::Pointer(cache_key.0.clone(), cache_key.1.clone());
        if self.stack.contains(&frame) {
            return Err(self.cycle(&frame, at));
        }
        let depth = self
            .stack
            .iter()
            .filter(|f| matches!(f, Frame::Pointer(..)))
            .count();
        if !root && depth > self.limits.max_depth {
            return Err(InstantiateError::new(
                InstantiateErrorKind::TooDeep {
                    limit: self.limits.max_depth,
                },
                at,
            ));
        }
        self.stack.push(frame);
        let result = self.resolve_pointer_inner(key, pointer, at);
        self.stack.pop();
        let resolved = Rc::new(result?);
        self.pointers.insert(cache_key, Rc::clone(&resolved));
        Ok(resolved)
    }

    fn resolve_pointer_inner(
        &mut self,
        key: &str,
        pointer: &str,
        at: &At,
    ) -> Result<Resolved, InstantiateError> {
        let merged = self.merged(key, at)?;
        let Some(target) = lookup(&merged, pointer) else {
            let reference = at_reference(key, pointer);
            return Err(InstantiateError::new(
                InstantiateErrorKind::PointerNotFound { reference },
                at,
            ));
        };
        let mut path = pointer.to_owned();
        let value = self.resolve_refs(key, target, &mut path, 0)?;
        let size = measure(&value);
        if size.depth > MAX_NESTING {
            return Err(limit("nesting", MAX_NESTING as u64, at));
        }
        Ok(Resolved { value, size })
    }

    /// A copy of `value` (at `path` in model `key`, `depth` levels deep) with every
    /// `tm:ref` replaced by its target patched with the members beside it.
    fn resolve_refs(
        &mut self,
        key: &str,
        value: &Value,
        path: &mut String,
        depth: usize,
    ) -> Result<Value, InstantiateError> {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("tm:ref") {
                    return self.resolve_ref(key, map, reference, path, depth);
                }
                let mut out = Map::with_capacity(map.len());
                for (k, v) in map {
                    let len = path.len();
                    push_pointer(path, k);
                    let v = self.resolve_refs(key, v, path, depth + 1);
                    path.truncate(len);
                    out.insert(k.clone(), v?);
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&i.to_string());
                    let v = self.resolve_refs(key, v, path, depth + 1);
                    path.truncate(len);
                    out.push(v?);
                }
                Ok(Value::Array(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn resolve_ref(
        &mut self,
        key: &str,
        map: &Map<String, Value>,
        reference: &Value,
        path: &mut String,
        depth: usize,
    ) -> Result<Value, InstantiateError> {
        let at = self.at(key, format!("{path}/tm:ref"));
        let Some(reference) = reference.as_str() else {
            return Err(bad_ref(
                &reference.to_string(),
                "`tm:ref` must be a string",
                &at,
            ));
        };
        let Some((href, fragment)) = reference.split_once('#') else {
            return Err(bad_ref(
                reference,
                "a `tm:ref` needs `#` and a JSON pointer, like `other.tm.json#/properties/x`",
                &at,
            ));
        };
        let pointer = percent_decode(fragment)
            .filter(|p| p.is_empty() || p.starts_with('/'))
            .ok_or_else(|| {
                bad_ref(
                    reference,
                    "the part after `#` is not a JSON pointer (RFC 6901)",
                    &at,
                )
            })?;
        let target_key = if href.is_empty() {
            key.to_owned()
        } else {
            resolve_href(Some(key).filter(|k| !k.is_empty()), href)
                .map_err(|reason| bad_ref(reference, reason, &at))?
        };
        let target = self.resolve_pointer(&target_key, &pointer, &at, false)?;
        let mut local = Map::new();
        for (k, v) in map.iter().filter(|(k, _)| *k != "tm:ref") {
            let len = path.len();
            push_pointer(path, k);
            let v = self.resolve_refs(key, v, path, depth + 1);
            path.truncate(len);
            local.insert(k.clone(), v?);
        }
        self.charge(target.size.bytes, &at)?;
        let mut result = target.value.clone();
        merge_patch(&mut result, &Value::Object(local));
        if depth + measure(&result).depth > MAX_NESTING {
            return Err(limit("nesting", MAX_NESTING as u64, &at));
        }
        Ok(result)
    }
}

fn at_reference(key: &str, pointer: &str) -> String {
    format!("{key}#{pointer}")
}

/// Appends `key` to a JSON pointer, escaped (RFC 6901).
fn push_pointer(path: &mut String, key: &str) {
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

/// The value at a JSON pointer (RFC 6901), `""` being the whole.
fn lookup<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(value);
    }
    let mut current = value;
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        current = match current {
            Value::Object(m) => m.get(&token)?,
            Value::Array(a) => {
                if token.len() > 1 && token.starts_with('0') {
                    return None;
                }
                a.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(current)
}

/// Decodes `%XX` escapes (a URI fragment); `None` if they do not give UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = (bytes.next()? as char).to_digit(16)?;
            let lo = (bytes.next()? as char).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// `href` resolved against `base`: URL rules when `base` is an absolute URL, path rules
/// (`.` and `..` segments folded) when it is a relative path, `href` unchanged when
/// it is absolute or there is no base.
fn resolve_href(base: Option<&str>, href: &str) -> Result<String, String> {
    if url::Url::parse(href).is_ok() {
        return Ok(normalize_href(None, href));
    }
    match base {
        None => Ok(normalize_href(None, href)),
        Some(base) => match url::Url::parse(base) {
            Ok(base) => base
                .join(href)
                .map(String::from)
                .map_err(|e| format!("cannot be resolved against `{base}`: {e}")),
            Err(_) => Ok(normalize_href(Some(base), href)),
        },
    }
}

/// An href in the form used as the key of a model: a URL as the `url` crate writes it,
/// a relative path with `.` and `..` folded (against the directory of `base`).
fn normalize_href(base: Option<&str>, href: &str) -> String {
    if let Ok(url) = url::Url::parse(href) {
        return url.into();
    }
    if href.starts_with('/') || href.is_empty() {
        return href.to_owned();
    }
    let dir = base
        .and_then(|b| b.rfind('/').and_then(|i| b.get(..=i)))
        .unwrap_or("");
    let joined = format!("{dir}{href}");
    let mut out: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            "." => {}
            ".." if out.last().is_some_and(|s| *s != ".." && !s.is_empty()) => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// Size of a value: its length as compact JSON (escapes not counted) and its nesting.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    bytes: usize,
    depth: usize,
}

fn measure(value: &Value) -> Size {
    measure_at(value, 0)
}

/// Stops descending past the nesting limit: the size is then a lower bound.
fn measure_at(value: &Value, level: usize) -> Size {
    if level > MAX_NESTING {
        return Size {
            bytes: 0,
            depth: level,
        };
    }
    match value {
        Value::Null => Size { bytes: 4, depth: 0 },
        Value::Bool(b) => Size {
            bytes: if *b { 4 } else { 5 },
            depth: 0,
        },
        Value::Number(n) => Size {
            bytes: n.to_string().len(),
            depth: 0,
        },
        Value::String(s) => Size {
            bytes: s.len() + 2,
            depth: 0,
        },
        Value::Array(items) => {
            let mut size = Size { bytes: 2, depth: 1 };
            for v in items {
                let s = measure_at(v, level + 1);
                size.bytes += s.bytes + 1;
                size.depth = size.depth.max(s.depth + 1);
            }
            size
        }
        Value::Object(map) => {
            let mut size = Size { bytes: 2, depth: 1 };
            for (k, v) in map {
                let s = measure_at(v, level + 1);
                size.bytes += k.len() + 4 + s.bytes;
                size.depth = size.depth.max(s.depth + 1);
            }
            size
        }
    }
}

fn measure_map_depth(map: &Map<String, Value>) -> usize {
    map.values()
        .map(|v| measure_at(v, 1).depth + 1)
        .max()
        .unwrap_or(1)
}

fn measure_map(map: &Map<String, Value>) -> usize {
    map.iter()
        .map(|(k, v)| k.len() + 4 + measure_at(v, 1).bytes)
        .sum::<usize>()
        + 2
}

/// JSON Merge Patch (RFC 7396): `patch` applied to `target`.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in members {
            if v.is_null() {
                t.shift_remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// `child` laid over `base`: like a JSON Merge Patch, but members new to `base` are
/// taken as they are (their `null`s are kept for the `tm:ref` they may patch), and an
/// object with `tm:ref` replaces what `base` has in its place.
fn overlay(base: &mut Value, child: Value) {
    match (base, child) {
        (Value::Object(b), Value::Object(c)) if !c.contains_key("tm:ref") => {
            for (k, v) in c {
                if v.is_null() {
                    b.shift_remove(&k);
                } else if let Some(existing) = b.get_mut(&k) {
                    overlay(existing, v);
                } else {
                    b.insert(k, v);
                }
            }
        }
        (base, child) => *base = child,
    }
}

/// `child` merged over `base` for `tm:extends`: an [`overlay`], except that `links`
/// are joined (without the `tm:extends` links of `base`), `@context` and `@type` are
/// joined without repeats, and an affordance that `base` lists in `tm:optional` stays
/// optional only if `child` does not define it again.
fn merge_extends(mut base: Value, child: &Map<String, Value>) -> Value {
    let Value::Object(b) = &mut base else {
        return Value::Object(child.clone());
    };
    let base_links: Vec<Value> = b
        .shift_remove("links")
        .and_then(|l| match l {
            Value::Array(a) => Some(a),
            _ => None,
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|l| l.get("rel").and_then(Value::as_str) != Some("tm:extends"))
        .collect();
    let base_optional = b.shift_remove("tm:optional");
    let base_context = b.shift_remove("@context");
    let base_type = b.shift_remove("@type");
    let base_required = b.shift_remove("tm:required");

    let mut patch = child.clone();
    let joined_context = join_lists(patch.shift_remove("@context"), base_context);
    let joined_type = join_lists(patch.shift_remove("@type"), base_type);
    let child_links = patch.shift_remove("links");
    let child_optional = patch.shift_remove("tm:optional");
    let child_required = patch.shift_remove("tm:required");

    let mut links = base_links;
    if let Some(Value::Array(more)) = child_links {
        for l in more {
            if !links.contains(&l) {
                links.push(l);
            }
        }
    }
    let mut optional: Vec<Value> = as_list(child_optional);
    for p in as_list(base_optional) {
        let redefined = p
            .as_str()
            .and_then(affordance_of)
            .is_some_and(|a| has_affordance(child, &a));
        if !redefined && !optional.contains(&p) {
            optional.push(p);
        }
    }
    let mut required = as_list(child_required);
    for p in as_list(base_required) {
        if !required.contains(&p) {
            required.push(p);
        }
    }

    overlay(&mut base, Value::Object(patch));
    if let Value::Object(m) = &mut base {
        if let Some(c) = joined_context {
            m.insert("@context".into(), c);
        }
        if let Some(t) = joined_type {
            m.insert("@type".into(), t);
        }
        if !links.is_empty() {
            m.insert("links".into(), Value::Array(links));
        }
        if !optional.is_empty() {
            m.insert("tm:optional".into(), Value::Array(optional));
        }
        if !required.is_empty() {
            m.insert("tm:required".into(), Value::Array(required));
        }
    }
    base
}

fn as_list(v: Option<Value>) -> Vec<Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => vec![other],
    }
}

/// `first`'s entries, then `second`'s not already there; a single entry as itself.
fn join_lists(first: Option<Value>, second: Option<Value>) -> Option<Value> {
    if first.is_none() && second.is_none() {
        return None;
    }
    let mut out = as_list(first);
    for v in as_list(second) {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Some(match out.len() {
        1 => out.pop().unwrap_or(Value::Null),
        _ => Value::Array(out),
    })
}

/// The affordances `tm:optional`/`tm:required` point to: `(kind, name)`.
fn affordance_of(pointer: &str) -> Option<(String, String)> {
    let rest = pointer.strip_prefix('/')?;
    let (kind, name) = rest.split_once('/')?;
    if !matches!(kind, "properties" | "actions" | "events") || name.is_empty() || name.contains('/')
    {
        return None;
    }
    Some((kind.to_owned(), name.replace("~1", "/").replace("~0", "~")))
}

fn has_affordance(map: &Map<String, Value>, (kind, name): &(String, String)) -> bool {
    map.get(kind).and_then(|m| m.get(name)).is_some()
}

/// Checks `tm:required` and the affordances to keep, then drops the optional ones.
fn select_affordances(
    map: &mut Map<String, Value>,
    how: &Instantiation,
    at: &At,
) -> Result<(), InstantiateError> {
    let unknown: Vec<String> = how
        .keep
        .iter()
        .filter(|p| !affordance_of(p).is_some_and(|a| has_affordance(map, &a)))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(InstantiateError::new(
            InstantiateErrorKind::UnknownAffordance { pointers: unknown },
            at,
        ));
    }
    let mut required = HashSet::new();
    for (i, p) in as_list(map.get("tm:required").cloned()).iter().enumerate() {
        let here = At {
            model: at.model.clone(),
            pointer: format!("/tm:required/{i}"),
        };
        let Some(pointer) = p.as_str() else {
            return Err(bad_ref(
                &p.to_string(),
                "`tm:required` entries must be strings",
                &here,
            ));
        };
        match affordance_of(pointer) {
            Some(a) if has_affordance(map, &a) => {
                required.insert(a);
            }
            _ => {
                return Err(InstantiateError::new(
                    InstantiateErrorKind::RequiredMissing {
                        pointer: pointer.to_owned(),
                    },
                    &here,
                ));
            }
        }
    }
    if how.keep_all {
        return Ok(());
    }
    let keep: HashSet<(String, String)> =
        how.keep.iter().filter_map(|p| affordance_of(p)).collect();
    for (i, p) in as_list(map.get("tm:optional").cloned()).iter().enumerate() {
        let Some(pointer) = p.as_str() else {
            let here = At {
                model: at.model.clone(),
                pointer: format!("/tm:optional/{i}"),
            };
            return Err(bad_ref(
                &p.to_string(),
                "`tm:optional` entries must be strings",
                &here,
            ));
        };
        // An entry that names no affordance (one a child removed) is ignored.
        let Some(a) = affordance_of(pointer) else {
            continue;
        };
        if keep.contains(&a) || required.contains(&a) {
            continue;
        }
        if let Some(Value::Object(affordances)) = map.get_mut(&a.0) {
            affordances.shift_remove(&a.1);
            if affordances.is_empty() {
                map.shift_remove(&a.0);
            }
        }
    }
    Ok(())
}

/// Removes what only Thing Models have: `tm:*` members at any depth, `tm:ThingModel`
/// in `@type`, and `tm:extends`/`tm:submodel` links.
fn strip_tm_terms(map: &mut Map<String, Value>) {
    if let Some(t) = map.shift_remove("@type") {
        let kept: Vec<Value> = as_list(Some(t))
            .into_iter()
            .filter(|t| t.as_str() != Some("tm:ThingModel"))
            .collect();
        if let Some(t) = join_lists(Some(Value::Array(kept)), None)
            && t != Value::Array(Vec::new())
        {
            map.insert("@type".into(), t);
        }
    }
    if let Some(Value::Array(links)) = map.get_mut("links") {
        links.retain(|l| {
            !matches!(
                l.get("rel").and_then(Value::as_str),
                Some("tm:extends" | "tm:submodel")
            )
        });
        if links.is_empty() {
            map.shift_remove("links");
        }
    }
    strip_tm_members(map);
}

fn strip_tm_members(map: &mut Map<String, Value>) {
    map.retain(|k, _| !k.starts_with("tm:"));
    for v in map.values_mut() {
        strip_in_value(v);
    }
}

fn strip_in_value(v: &mut Value) {
    match v {
        Value::Object(m) => strip_tm_members(m),
        Value::Array(a) => a.iter_mut().for_each(strip_in_value),
        _ => {}
    }
}

/// The placeholders of a string: (byte range of `{{NAME}}`, NAME).
fn placeholders(s: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = s.get(from..).and_then(|r| r.find("{{")) {
        let start = from + open;
        let Some(close) = s.get(start + 2..).and_then(|r| r.find("}}")) else {
            break;
        };
        let end = start + 2 + close + 2;
        let name = s.get(start + 2..start + 2 + close).unwrap_or("");
        if !name.is_empty() && name.chars().all(|c| (' '..='~').contains(&c)) {
            out.push((start..end, name));
            from = end;
        } else {
            from = start + 1;
        }
    }
    out
}

/// Replaces the placeholders of every string value (not of keys); every missing one is
/// reported at once.
fn substitute_placeholders(
    value: &mut Value,
    values: &IndexMap<String, Value>,
) -> Result<(), InstantiateError> {
    let mut missing: IndexMap<String, MissingPlaceholder> = IndexMap::new();
    let mut path = String::new();
    substitute_in(value, values, &mut path, &mut missing)?;
    if missing.is_empty() {
        return Ok(());
    }
    Err(InstantiateError::new(
        InstantiateErrorKind::MissingPlaceholders(missing.into_values().collect()),
        &At::result(""),
    ))
}

fn substitute_in(
    value: &mut Value,
    values: &IndexMap<String, Value>,
    path: &mut String,
    missing: &mut IndexMap<String, MissingPlaceholder>,
) -> Result<(), InstantiateError> {
    match value {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                let len = path.len();
                push_key(path, k);
                substitute_in(v, values, path, missing)?;
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                substitute_in(v, values, path, missing)?;
                path.truncate(len);
            }
        }
        Value::String(s) => {
            let found = placeholders(s);
            if found.is_empty() {
                return Ok(());
            }
            let mut absent = false;
            for (_, name) in &found {
                if !values.contains_key(*name) {
                    absent = true;
                    let entry =
                        missing
                            .entry((*name).to_owned())
                            .or_insert_with(|| MissingPlaceholder {
                                name: (*name).to_owned(),
                                paths: Vec::new(),
                                count: 0,
                            });
                    entry.count += 1;
                    if entry.paths.len() < MAX_PATHS_PER_PLACEHOLDER {
                        entry.paths.push(path.clone());
                    }
                }
            }
            if absent {
                return Ok(());
            }
            if let [(range, name)] = found.as_slice()
                && range.start == 0
                && range.end == s.len()
            {
                *value = values.get(*name).cloned().unwrap_or(Value::Null);
                return Ok(());
            }
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for (range, name) in &found {
                out.push_str(s.get(last..range.start).unwrap_or(""));
                match values.get(*name) {
                    Some(Value::String(v)) => out.push_str(v),
                    Some(v @ (Value::Number(_) | Value::Bool(_))) => out.push_str(&v.to_string()),
                    _ => {
                        return Err(InstantiateError::new(
                            InstantiateErrorKind::PlaceholderNotText {
                                name: (*name).to_owned(),
                            },
                            &At::result(path),
                        ));
                    }
                }
                last = range.end;
            }
            out.push_str(s.get(last..).unwrap_or(""));
            *s = out;
        }
        _ => {}
    }
    Ok(())
}

/// A TD needs `version.instance`; a model has only `version.model`, which it takes.
fn set_version_instance(map: &mut Map<String, Value>) {
    if let Some(Value::Object(v)) = map.get_mut("version")
        && !v.contains_key("instance")
        && let Some(model) = v.get("model").cloned()
    {
        v.insert("instance".into(), model);
    }
}

/// Adds the `rel: "type"` link to the model, replacing any other.
fn add_type_link(map: &mut Map<String, Value>, location: &str) {
    let mut links = match map.shift_remove("links") {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    links.retain(|l| l.get("rel").and_then(Value::as_str) != Some("type"));
    links.push(serde_json::json!({
        "rel": "type",
        "href": location,
        "type": TM_MEDIA_TYPE,
    }));
    map.insert("links".into(), Value::Array(links));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hrefs_resolve_against_urls_and_paths() {
        let r = |b: Option<&str>, h: &str| resolve_href(b, h).unwrap();
        assert_eq!(
            r(Some("http://example.com/tm/a.json"), "b.json"),
            "http://example.com/tm/b.json"
        );
        assert_eq!(
            r(Some("http://example.com/tm/a.json"), "../c.json"),
            "http://example.com/c.json"
        );
        assert_eq!(r(Some("models/a.json"), "b.json"), "models/b.json");
        assert_eq!(r(Some("models/a.json"), "./sub/../b.json"), "models/b.json");
        assert_eq!(r(Some("a.json"), "../b.json"), "../b.json");
        assert_eq!(r(Some("/m/a.json"), "../../b.json"), "/../b.json");
        assert_eq!(r(Some("/m/a.json"), "../b.json"), "/b.json");
        assert_eq!(r(None, "http://x.example/m"), "http://x.example/m");
        assert_eq!(r(Some("a.json"), "urn:x:y"), "urn:x:y");
    }

    #[test]
    fn placeholders_are_found() {
        let s = "a {{X}} b {{}} {{Y Z}}{{";
        let names: Vec<&str> = placeholders(s).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["X", "Y Z"]);
    }

    #[test]
    fn pointers_follow_rfc_6901() {
        let v = serde_json::json!({"a/b": {"m~n": [10, 20]}});
        assert_eq!(lookup(&v, "/a~1b/m~0n/1"), Some(&serde_json::json!(20)));
        assert_eq!(lookup(&v, "/a~1b/m~0n/01"), None);
        assert_eq!(lookup(&v, ""), Some(&v));
        assert_eq!(
            percent_decode("/properties/a%20b").as_deref(),
            Some("/properties/a b")
        );
    }
}
