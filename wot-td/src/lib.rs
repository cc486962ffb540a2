//! `wot-td`: a lossless model of W3C Web of Things Thing Descriptions (TD 1.1), with
//! validation, form selection, URI templates and data schema checks. No I/O.
//!
//! The common path: parse, validate, find the form for an operation, check values.
//!
//! ```
//! use wot_td::{Affordance, Document, FormQuery, Operation};
//!
//! let doc = r#"{
//!   "@context": "https://www.w3.org/2022/wot/td/v1.1",
//!   "title": "Thermometer",
//!   "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
//!   "security": "nosec_sc",
//!   "properties": {"temp": {
//!     "type": "number", "unit": "°C", "minimum": -40, "maximum": 125, "observable": true,
//!     "forms": [{"href": "temp"}, {"href": "temp/events", "op": "observeproperty", "subprotocol": "sse"}]
//!   }}
//! }"#.parse::<Document>()?;
//! assert!(doc.validate().iter().all(|d| !d.is_error()));
//!
//! let thing = doc.as_thing().expect("a TD, not a Thing Model");
//! let query = FormQuery::new()
//!     .subprotocol("sse")
//!     .fetched_from("http://192.0.2.7/td".parse()?);
//! let best = &thing.forms_for(Affordance::Property("temp"), Operation::ObserveProperty, &query)?[0];
//! assert_eq!(best.url.as_str(), "http://192.0.2.7/temp/events");
//!
//! let temp = thing.property("temp").unwrap();
//! assert_eq!(temp.unit(), Some("°C"));
//! assert!(temp.schema.accepts(&serde_json::json!(21.5)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Where to look next:
//!
//! - Reading: [`Document::from_slice`] (also `str::parse`, `from_reader`, `from_value`)
//!   gives a [`Document`], a TD ([`Thing`]) or a Thing Model ([`ThingModel`]). Parsing
//!   rejects duplicate object keys and reports the JSON path, line and column of a problem
//!   ([`ParseError`]).
//! - Checking: [`Document::validate`] returns [`Diagnostic`]s (severity, JSON path,
//!   message, rule id); [`Document::validate_with`] also checks linked Thing Models that a
//!   [`ModelResolver`] supplies. The `json-schema` feature adds the official TD 1.1 JSON
//!   Schema.
//! - Using: [`Thing::forms_for`] ranks the forms of an operation by a [`FormQuery`] and
//!   resolves their URLs; [`FormCandidate::url_with`] fills in `uriVariables`;
//!   [`DataSchema::validate_value`] checks a value ([`ValueError`] carries the path inside
//!   it); [`CompiledSchema`] compiles a schema's patterns once for many values.
//! - Limits: [`ValidationLimits`] bounds the work of checking schemas (pattern size,
//!   compiled regex size, the total compile budget of one document, check steps);
//!   [`Document::validate_with_limits`] takes them.
//! - Thing Models: [`ThingModel::instantiate`] makes a TD from a Thing Model as TD 1.1
//!   §9 describes (`tm:extends`, `tm:ref`, `{{PLACEHOLDER}}`s, `tm:optional`), with the
//!   models it refers to supplied by a [`ModelLoader`] and the work bounded by
//!   [`InstantiateLimits`].
//! - Writing: [`ThingBuilder`] builds a TD that passes validation; [`Document::to_value`]
//!   writes a parsed TD back with its terms, unknown ones included, in their original order.
//!
//! Every term the model does not know is kept in the `extensions` map of its object.
//! Defaults of TD 1.1 (§5.4) are applied by accessors such as [`Form::content_type`],
//! [`Form::operations`], [`PropertyAffordance::is_observable`] and
//! [`SecurityScheme::location`], never written into the document.

// Input from the network or a file must never panic this crate: the panicking forms are
// denied outside tests (see "No panics in library code" in docs/reliability.md).
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::indexing_slicing,
        clippy::string_slice,
        clippy::unchecked_time_subtraction
    )
)]

mod builder;
mod check;
mod data;
mod diagnostic;
mod forms;
#[cfg(feature = "json-schema")]
mod json_schema;
mod json_text;
mod model;
mod model_links;
mod one_or_many;
mod parse;
mod pattern;
mod security;
mod source;
mod thing_model;
mod uri_template;
mod validate;
mod value_check;

pub use builder::{
    ActionBuilder, BuildError, EventBuilder, FormBuilder, PropertyBuilder, ThingBuilder,
};
pub use check::{MAX_STRUCTURE_PROBLEMS, Report};
pub use data::Data;
pub use diagnostic::{Diagnostic, Position, Rule, Severity, UnknownRule};
pub use forms::{Affordance, FormCandidate, FormError, FormQuery};
#[cfg(feature = "json-schema")]
pub use json_schema::{TD_JSON_SCHEMA, validate_td_json};
pub use model::{
    ActionAffordance, AdditionalResponse, AffordanceKind, ContextEntry, DEFAULT_CONTENT_TYPE,
    DataSchema, DataType, EventAffordance, ExpectedResponse, Extensions, Form, Link, MultiLanguage,
    NumericRange, Operation, PropertyAffordance, TD_CONTEXT_1_0, TD_CONTEXT_1_1, Thing,
    VersionInfo,
};
pub use model_links::ModelResolver;
pub use one_or_many::OneOrMany;
pub use parse::{
    Document, DocumentKind, MAX_DOCUMENT_BYTES, ParseError, ParseErrorKind, ThingModel,
};
pub use pattern::{PATTERN_SIZE_LIMIT, PatternError, PatternErrorKind, ValidationLimits};
pub use security::{
    BearerScheme, ComboScheme, DigestScheme, LocatedScheme, OAuth2Scheme, PlainScheme, PskScheme,
    SchemeCommon, SecurityIn, SecurityScheme,
};
pub use thing_model::{
    InstantiateError, InstantiateErrorKind, InstantiateLimits, Instantiation, LoadError,
    MissingPlaceholder, ModelLoader,
};
pub use uri_template::{
    UriTemplateError, expand_uri_template, expand_uri_template_checked, uri_template_variables,
};
pub use value_check::{CompiledSchema, ValueError};

pub use indexmap::IndexMap;
pub use serde_json;
pub use url::Url;

/// How deep this crate's own recursive code (schema checks, value checks, key
/// reordering) goes before it stops with an error. Parsed documents cannot nest deeper
/// than 128 levels anyway (the limit of `serde_json`), but models built in code can.
pub const MAX_DEPTH: usize = 200;
