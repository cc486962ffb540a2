//! The typed Thing Description 1.1 information model.
//!
//! Every struct keeps the terms it does not know in `extensions` (in document order), so
//! extension vocabularies such as `htv:methodName` survive a round trip. Optional terms are
//! `Option`s that stay `None` when absent: defaults (TD 1.1 §5.4) are applied by accessor
//! methods, never written into the document.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

use crate::one_or_many::OneOrMany;
use crate::security::SecurityScheme;

/// Terms of one JSON object that the model does not know, in document order.
pub type Extensions = Map<String, Value>;

/// The `@context` URI of TD 1.1.
pub const TD_CONTEXT_1_1: &str = "https://www.w3.org/2022/wot/td/v1.1";
/// The `@context` URI of TD 1.0.
pub const TD_CONTEXT_1_0: &str = "https://www.w3.org/2019/wot/td/v1";
/// The default `contentType` of forms and responses.
pub const DEFAULT_CONTENT_TYPE: &str = "application/json";

/// Keeps a present JSON `null` as `Some(Value::Null)` (plain `Option<Value>` would drop it).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// A map from language tag to text (`titles`, `descriptions`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MultiLanguage(pub IndexMap<String, String>);

impl MultiLanguage {
    /// The text for `lang`: an exact tag match first, then a match on the primary
    /// subtag (`de` for `de-CH`, or the first `de-*` entry for `de`), case-insensitive.
    pub fn get(&self, lang: &str) -> Option<&str> {
        if let Some((_, text)) = self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(lang)) {
            return Some(text);
        }
        let primary = |tag: &str| tag.split('-').next().unwrap_or(tag).to_ascii_lowercase();
        let want = primary(lang);
        self.0
            .iter()
            .find(|(k, _)| primary(k) == want)
            .map(|(_, text)| text.as_str())
    }
}

/// One entry of `@context`: a URI or a map (prefix definitions, `@language`, `@direction`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ContextEntry {
    /// A context URI such as [`TD_CONTEXT_1_1`].
    Uri(String),
    /// A map of prefixes and keywords such as `@language`.
    Map(Map<String, Value>),
}

/// The type of a [`DataSchema`] (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    /// `boolean`
    Boolean,
    /// `integer`
    Integer,
    /// `number`
    Number,
    /// `string`
    String,
    /// `object`
    Object,
    /// `array`
    Array,
    /// `null`
    Null,
}

impl DataType {
    /// The name used in TDs (`"integer"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Boolean => "boolean",
            DataType::Integer => "integer",
            DataType::Number => "number",
            DataType::String => "string",
            DataType::Object => "object",
            DataType::Array => "array",
            DataType::Null => "null",
        }
    }
}

/// A data schema (TD 1.1 §5.3.2): describes the values of properties, action inputs and
/// outputs, event data and URI variables.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataSchema {
    /// `@type`: semantic annotations.
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub ld_type: Option<OneOrMany<String>>,
    /// `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `titles`: the title in several languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub titles: Option<MultiLanguage>,
    /// `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `descriptions`: the description in several languages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptions: Option<MultiLanguage>,
    /// `const`: the only allowed value (a JSON `null` here is `Some(Value::Null)`).
    #[serde(
        rename = "const",
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub constant: Option<Value>,
    /// `default`: the value assumed when none is given.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<Value>,
    /// `unit`, e.g. `"degree Celsius"` or `"om:degree_Celsius"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// `oneOf`: the value must match exactly one of these schemas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<DataSchema>>,
    /// `enum`: the allowed values.
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub enumeration: Option<Vec<Value>>,
    /// `readOnly` (default `false`, see [`DataSchema::is_read_only`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `writeOnly` (default `false`, see [`DataSchema::is_write_only`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_only: Option<bool>,
    /// `format`, e.g. `"date-time"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `type`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<DataType>,
    /// `minimum` (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Number>,
    /// `exclusiveMinimum` (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_minimum: Option<Number>,
    /// `maximum` (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Number>,
    /// `exclusiveMaximum` (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive_maximum: Option<Number>,
    /// `multipleOf` (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_of: Option<Number>,
    /// `minLength` in Unicode code points (strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// `maxLength` in Unicode code points (strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// `pattern`: an ECMA-262 regular expression (strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// `contentEncoding` (strings), e.g. `"base64"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `contentMediaType` (strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_media_type: Option<String>,
    /// `items` (arrays): one schema for every item, or one per position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<OneOrMany<DataSchema>>>,
    /// `minItems` (arrays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// `maxItems` (arrays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// `properties` (objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<IndexMap<String, DataSchema>>,
    /// `required` (objects): names of properties that must be present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<String>>,
    /// Terms the model does not know, in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A numeric range for gauges and sliders, from a [`DataSchema`]'s bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericRange {
    /// Lower bound (`minimum`, or `exclusiveMinimum`), if any.
    pub min: Option<f64>,
    /// True when the lower bound came from `exclusiveMinimum`.
    pub min_exclusive: bool,
    /// Upper bound (`maximum`, or `exclusiveMaximum`), if any.
    pub max: Option<f64>,
    /// True when the upper bound came from `exclusiveMaximum`.
    pub max_exclusive: bool,
}

impl DataSchema {
    /// A schema with only `type` set.
    pub fn of_type(data_type: DataType) -> Self {
        DataSchema {
            data_type: Some(data_type),
            ..DataSchema::default()
        }
    }

    /// Effective `readOnly` (default `false`).
    pub fn is_read_only(&self) -> bool {
        self.read_only.unwrap_or(false)
    }

    /// Effective `writeOnly` (default `false`).
    pub fn is_write_only(&self) -> bool {
        self.write_only.unwrap_or(false)
    }

    /// The `unit`, if any.
    pub fn unit(&self) -> Option<&str> {
        self.unit.as_deref()
    }

    /// The numeric range, or `None` when the schema has no numeric bound at all.
    /// When both inclusive and exclusive bounds are given the tighter one wins.
    ///
    /// ```
    /// use wot_td::DataSchema;
    /// let s: DataSchema = serde_json::from_str(r#"{"type":"number","minimum":-20,"maximum":60}"#).unwrap();
    /// let r = s.numeric_range().unwrap();
    /// assert_eq!((r.min, r.max), (Some(-20.0), Some(60.0)));
    /// ```
    pub fn numeric_range(&self) -> Option<NumericRange> {
        let f = |n: &Option<Number>| n.as_ref().and_then(Number::as_f64);
        let (min, min_exclusive) = tighter(f(&self.minimum), f(&self.exclusive_minimum), true);
        let (max, max_exclusive) = tighter(f(&self.maximum), f(&self.exclusive_maximum), false);
        (min.is_some() || max.is_some()).then_some(NumericRange {
            min,
            min_exclusive,
            max,
            max_exclusive,
        })
    }

    /// The title in the preferred language: `titles[lang]` (see [`MultiLanguage::get`]),
    /// else `title`.
    pub fn title_in(&self, lang: &str) -> Option<&str> {
        title_in(self.titles.as_ref(), self.title.as_deref(), lang)
    }
}

/// Picks the tighter of an inclusive and an exclusive bound (`lower` says which side).
fn tighter(inclusive: Option<f64>, exclusive: Option<f64>, lower: bool) -> (Option<f64>, bool) {
    match (inclusive, exclusive) {
        (Some(i), Some(e)) => {
            let exclusive_wins = if lower { e >= i } else { e <= i };
            if exclusive_wins {
                (Some(e), true)
            } else {
                (Some(i), false)
            }
        }
        (Some(i), None) => (Some(i), false),
        (None, Some(e)) => (Some(e), true),
        (None, None) => (None, false),
    }
}

pub(crate) fn title_in<'a>(
    titles: Option<&'a MultiLanguage>,
    title: Option<&'a str>,
    lang: &str,
) -> Option<&'a str> {
    titles.and_then(|t| t.get(lang)).or(title)
}

/// A form operation type (`op`): the 18 names of TD 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Operation {
    /// `readproperty`
    ReadProperty,
    /// `writeproperty`
    WriteProperty,
    /// `observeproperty`
    ObserveProperty,
    /// `unobserveproperty`
    UnobserveProperty,
    /// `invokeaction`
    InvokeAction,
    /// `queryaction`
    QueryAction,
    /// `cancelaction`
    CancelAction,
    /// `subscribeevent`
    SubscribeEvent,
    /// `unsubscribeevent`
    UnsubscribeEvent,
    /// `readallproperties`
    ReadAllProperties,
    /// `writeallproperties`
    WriteAllProperties,
    /// `readmultipleproperties`
    ReadMultipleProperties,
    /// `writemultipleproperties`
    WriteMultipleProperties,
    /// `observeallproperties`
    ObserveAllProperties,
    /// `unobserveallproperties`
    UnobserveAllProperties,
    /// `queryallactions`
    QueryAllActions,
    /// `subscribeallevents`
    SubscribeAllEvents,
    /// `unsubscribeallevents`
    UnsubscribeAllEvents,
}

impl Operation {
    /// All 18 operations.
    pub const ALL: [Operation; 18] = [
        Operation::ReadProperty,
        Operation::WriteProperty,
        Operation::ObserveProperty,
        Operation::UnobserveProperty,
        Operation::InvokeAction,
        Operation::QueryAction,
        Operation::CancelAction,
        Operation::SubscribeEvent,
        Operation::UnsubscribeEvent,
        Operation::ReadAllProperties,
        Operation::WriteAllProperties,
        Operation::ReadMultipleProperties,
        Operation::WriteMultipleProperties,
        Operation::ObserveAllProperties,
        Operation::UnobserveAllProperties,
        Operation::QueryAllActions,
        Operation::SubscribeAllEvents,
        Operation::UnsubscribeAllEvents,
    ];

    /// The name used in TDs (`"readproperty"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ReadProperty => "readproperty",
            Operation::WriteProperty => "writeproperty",
            Operation::ObserveProperty => "observeproperty",
            Operation::UnobserveProperty => "unobserveproperty",
            Operation::InvokeAction => "invokeaction",
            Operation::QueryAction => "queryaction",
            Operation::CancelAction => "cancelaction",
            Operation::SubscribeEvent => "subscribeevent",
            Operation::UnsubscribeEvent => "unsubscribeevent",
            Operation::ReadAllProperties => "readallproperties",
            Operation::WriteAllProperties => "writeallproperties",
            Operation::ReadMultipleProperties => "readmultipleproperties",
            Operation::WriteMultipleProperties => "writemultipleproperties",
            Operation::ObserveAllProperties => "observeallproperties",
            Operation::UnobserveAllProperties => "unobserveallproperties",
            Operation::QueryAllActions => "queryallactions",
            Operation::SubscribeAllEvents => "subscribeallevents",
            Operation::UnsubscribeAllEvents => "unsubscribeallevents",
        }
    }

    /// The kind of element whose forms may carry this operation.
    pub fn affordance_kind(self) -> AffordanceKind {
        use Operation::*;
        match self {
            ReadProperty | WriteProperty | ObserveProperty | UnobserveProperty => {
                AffordanceKind::Property
            }
            InvokeAction | QueryAction | CancelAction => AffordanceKind::Action,
            SubscribeEvent | UnsubscribeEvent => AffordanceKind::Event,
            _ => AffordanceKind::Thing,
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a form sits: in a property, action or event, or at the Thing level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AffordanceKind {
    /// A property affordance.
    Property,
    /// An action affordance.
    Action,
    /// An event affordance.
    Event,
    /// The Thing's own `forms` (meta operations such as `readallproperties`).
    Thing,
}

impl AffordanceKind {
    /// `property`, `action`, `event` or `Thing`.
    pub fn as_str(self) -> &'static str {
        match self {
            AffordanceKind::Property => "property",
            AffordanceKind::Action => "action",
            AffordanceKind::Event => "event",
            AffordanceKind::Thing => "Thing",
        }
    }
}

impl std::fmt::Display for AffordanceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The expected response of a form (`response`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedResponse {
    /// `contentType` of the response. Required: TD 1.1 (§5.3.4.3) gives it no default,
    /// unlike an additional response's.
    pub content_type: String,
    /// Terms the model does not know, in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// An additional response of a form (`additionalResponses`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalResponse {
    /// `success` (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<bool>,
    /// `contentType` (default: the form's content type).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `schema`: the name of an entry of `schemaDefinitions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Terms the model does not know, in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl AdditionalResponse {
    /// Effective `success` (default `false`).
    pub fn is_success(&self) -> bool {
        self.success.unwrap_or(false)
    }

    /// Effective `contentType`: the given one, else the effective content type of the
    /// form it belongs to.
    pub fn content_type<'a>(&'a self, form: &'a Form) -> &'a str {
        self.content_type
            .as_deref()
            .unwrap_or_else(|| form.content_type())
    }
}

/// A form: how to perform operations on an affordance (TD 1.1 §5.3.4.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Form {
    /// `href`: the target, possibly relative to the Thing's `base`, possibly a URI template.
    pub href: String,
    /// `contentType` (default `application/json`, see [`Form::content_type`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `contentCoding`, e.g. `gzip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_coding: Option<String>,
    /// `subprotocol`, e.g. `sse` or `longpoll`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprotocol: Option<String>,
    /// `security`: names of `securityDefinitions` that override the Thing's `security`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<OneOrMany<String>>,
    /// `scopes` (OAuth 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<OneOrMany<String>>,
    /// `response`: the expected response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ExpectedResponse>,
    /// `additionalResponses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_responses: Option<OneOrMany<AdditionalResponse>>,
    /// `op`: the operations; when absent the defaults of
    /// [`Form::operations`] apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OneOrMany<Operation>>,
    /// Terms the model does not know (such as `htv:methodName`), in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Form {
    /// A form with only `href` set.
    pub fn new(href: impl Into<String>) -> Self {
        Form {
            href: href.into(),
            ..Form::default()
        }
    }

    /// Effective `contentType`: the given one, else `application/json`.
    pub fn content_type(&self) -> &str {
        self.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE)
    }

    /// The media type of [`Form::content_type`] without parameters, lower-cased
    /// (`text/event-stream` for `"text/event-stream; charset=utf-8"`).
    pub fn media_type(&self) -> String {
        media_type_of(self.content_type())
    }

    /// The subprotocol this form speaks: `subprotocol` if given, else `"sse"` when the
    /// content type is `text/event-stream` (the style before the WoT Profile).
    pub fn effective_subprotocol(&self) -> Option<&str> {
        match &self.subprotocol {
            Some(s) => Some(s),
            None if self.media_type() == "text/event-stream" => Some("sse"),
            None => None,
        }
    }

    /// Effective operations (TD 1.1 §5.4 defaults) of this form inside an element of
    /// `kind`. When `op` is absent: a property form gets `readproperty` and
    /// `writeproperty` (only `readproperty` if `read_only`, only `writeproperty` if
    /// `write_only`), an action form `invokeaction`, an event form `subscribeevent` and
    /// `unsubscribeevent`, a Thing-level form nothing (`op` is required there).
    ///
    /// ```
    /// use wot_td::{AffordanceKind, Form, Operation};
    /// let form = Form::new("/status");
    /// assert_eq!(
    ///     form.operations(AffordanceKind::Property, true, false),
    ///     vec![Operation::ReadProperty]
    /// );
    /// ```
    pub fn operations(
        &self,
        kind: AffordanceKind,
        read_only: bool,
        write_only: bool,
    ) -> Vec<Operation> {
        if let Some(op) = &self.op {
            return op.as_slice().to_vec();
        }
        match kind {
            AffordanceKind::Property => {
                let mut ops = Vec::with_capacity(2);
                if !write_only {
                    ops.push(Operation::ReadProperty);
                }
                if !read_only {
                    ops.push(Operation::WriteProperty);
                }
                ops
            }
            AffordanceKind::Action => vec![Operation::InvokeAction],
            AffordanceKind::Event => vec![Operation::SubscribeEvent, Operation::UnsubscribeEvent],
            AffordanceKind::Thing => Vec::new(),
        }
    }
}

pub(crate) fn media_type_of(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A property affordance (TD 1.1 §5.3.1.3): also a data schema.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PropertyAffordance {
    /// The data schema of the property's value. It also holds the interaction terms that
    /// properties share with data schemas (`@type`, `title(s)`, `description(s)`) and the
    /// property's unknown terms.
    #[serde(flatten)]
    pub schema: DataSchema,
    /// `observable` (default `false`, see [`PropertyAffordance::is_observable`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observable: Option<bool>,
    /// `uriVariables`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_variables: Option<IndexMap<String, DataSchema>>,
    /// `forms`.
    pub forms: Vec<Form>,
}

impl PropertyAffordance {
    /// Effective `observable` (default `false`).
    pub fn is_observable(&self) -> bool {
        self.observable.unwrap_or(false)
    }

    /// Effective operations of one of this property's forms, taking `readOnly` and
    /// `writeOnly` into account (see [`Form::operations`]).
    pub fn form_operations(&self, form: &Form) -> Vec<Operation> {
        form.operations(
            AffordanceKind::Property,
            self.schema.is_read_only(),
            self.schema.is_write_only(),
        )
    }

    /// The title in a preferred language, falling back to `title`.
    pub fn title_in(&self, lang: &str) -> Option<&str> {
        self.schema.title_in(lang)
    }

    /// The `unit` of the value.
    pub fn unit(&self) -> Option<&str> {
        self.schema.unit()
    }
}

/// An action affordance (TD 1.1 §5.3.1.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionAffordance {
    /// `@type`.
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub ld_type: Option<OneOrMany<String>>,
    /// `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `titles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub titles: Option<MultiLanguage>,
    /// `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `descriptions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptions: Option<MultiLanguage>,
    /// `input`: schema of the input data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<DataSchema>,
    /// `output`: schema of the output data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<DataSchema>,
    /// `safe` (default `false`, see [`ActionAffordance::is_safe`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe: Option<bool>,
    /// `idempotent` (default `false`, see [`ActionAffordance::is_idempotent`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// `synchronous` (no default: absent means unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synchronous: Option<bool>,
    /// `uriVariables`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_variables: Option<IndexMap<String, DataSchema>>,
    /// `forms`.
    pub forms: Vec<Form>,
    /// Terms the model does not know, in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl ActionAffordance {
    /// Effective `safe` (default `false`).
    pub fn is_safe(&self) -> bool {
        self.safe.unwrap_or(false)
    }

    /// Effective `idempotent` (default `false`).
    pub fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or(false)
    }

    /// The title in a preferred language, falling back to `title`.
    pub fn title_in(&self, lang: &str) -> Option<&str> {
        title_in(self.titles.as_ref(), self.title.as_deref(), lang)
    }
}

/// An event affordance (TD 1.1 §5.3.1.5).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventAffordance {
    /// `@type`.
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub ld_type: Option<OneOrMany<String>>,
    /// `title`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `titles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub titles: Option<MultiLanguage>,
    /// `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `descriptions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptions: Option<MultiLanguage>,
    /// `subscription`: data to send when subscribing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<DataSchema>,
    /// `data`: schema of the event data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataSchema>,
    /// `dataResponse`: data the consumer answers with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_response: Option<DataSchema>,
    /// `cancellation`: data to send when unsubscribing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<DataSchema>,
    /// `uriVariables`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_variables: Option<IndexMap<String, DataSchema>>,
    /// `forms`.
    pub forms: Vec<Form>,
    /// Terms the model does not know, in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl EventAffordance {
    /// The schema of the event data (`data`), if given.
    pub fn data_schema(&self) -> Option<&DataSchema> {
        self.data.as_ref()
    }

    /// The title in a preferred language, falling back to `title`.
    pub fn title_in(&self, lang: &str) -> Option<&str> {
        title_in(self.titles.as_ref(), self.title.as_deref(), lang)
    }
}

/// A web link (TD 1.1 §5.3.4.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// `href`.
    pub href: String,
    /// `type`: media type hint.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// `rel`: relation type (`"type"` points to the Thing Model, `"icon"`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel: Option<String>,
    /// `anchor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// `sizes` (icons), e.g. `"16x16"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<String>,
    /// `hreflang`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hreflang: Option<OneOrMany<String>>,
    /// Terms the model does not know, in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Version information (`version`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// `instance`: required in a TD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// `model`: the version of the Thing Model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Terms the model does not know, in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A Thing Description (TD 1.1 §5.3.1.1).
///
/// Build one with [`crate::ThingBuilder`], or parse one with [`crate::Document`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thing {
    /// `@context`.
    #[serde(rename = "@context")]
    pub context: OneOrMany<ContextEntry>,
    /// `@type`.
    #[serde(rename = "@type", default, skip_serializing_if = "Option::is_none")]
    pub ld_type: Option<OneOrMany<String>>,
    /// `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `title`.
    pub title: String,
    /// `titles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub titles: Option<MultiLanguage>,
    /// `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `descriptions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub descriptions: Option<MultiLanguage>,
    /// `version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<VersionInfo>,
    /// `created` (ISO 8601 date-time, kept as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `modified` (ISO 8601 date-time, kept as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// `support`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<String>,
    /// `base`: the URI that relative `href`s resolve against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// `properties`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<IndexMap<String, PropertyAffordance>>,
    /// `actions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<IndexMap<String, ActionAffordance>>,
    /// `events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<IndexMap<String, EventAffordance>>,
    /// `links`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<Link>>,
    /// `forms`: Thing-level forms (meta operations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forms: Option<Vec<Form>>,
    /// `security`: names of `securityDefinitions` that apply to all forms by default.
    pub security: OneOrMany<String>,
    /// `securityDefinitions`.
    pub security_definitions: IndexMap<String, SecurityScheme>,
    /// `profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<OneOrMany<String>>,
    /// `schemaDefinitions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_definitions: Option<IndexMap<String, DataSchema>>,
    /// `uriVariables`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_variables: Option<IndexMap<String, DataSchema>>,
    /// Terms the model does not know, in document order.
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Thing {
    /// The property named `name`.
    pub fn property(&self, name: &str) -> Option<&PropertyAffordance> {
        self.properties.as_ref()?.get(name)
    }

    /// The action named `name`.
    pub fn action(&self, name: &str) -> Option<&ActionAffordance> {
        self.actions.as_ref()?.get(name)
    }

    /// The event named `name`.
    pub fn event(&self, name: &str) -> Option<&EventAffordance> {
        self.events.as_ref()?.get(name)
    }

    /// All properties in document order.
    pub fn properties(&self) -> impl Iterator<Item = (&str, &PropertyAffordance)> {
        self.properties
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v))
    }

    /// All actions in document order.
    pub fn actions(&self) -> impl Iterator<Item = (&str, &ActionAffordance)> {
        self.actions.iter().flatten().map(|(k, v)| (k.as_str(), v))
    }

    /// All events in document order.
    pub fn events(&self) -> impl Iterator<Item = (&str, &EventAffordance)> {
        self.events.iter().flatten().map(|(k, v)| (k.as_str(), v))
    }

    /// The properties with `observable: true`, in document order.
    pub fn observable_properties(&self) -> impl Iterator<Item = (&str, &PropertyAffordance)> {
        self.properties().filter(|(_, p)| p.is_observable())
    }

    /// The schema of the data of event `name` (`data`).
    pub fn event_data_schema(&self, name: &str) -> Option<&DataSchema> {
        self.event(name)?.data.as_ref()
    }

    /// The Thing's title in a preferred language (`titles`, see [`MultiLanguage::get`]),
    /// falling back to `title`.
    pub fn title_in(&self, lang: &str) -> &str {
        self.titles
            .as_ref()
            .and_then(|t| t.get(lang))
            .unwrap_or(&self.title)
    }

    /// The default language declared in `@context` (`{"@language": "de"}`), if any.
    pub fn default_language(&self) -> Option<&str> {
        self.context.iter().find_map(|entry| match entry {
            ContextEntry::Map(m) => m.get("@language")?.as_str(),
            ContextEntry::Uri(_) => None,
        })
    }

    /// The security scheme named `name` in `securityDefinitions`.
    pub fn security_scheme(&self, name: &str) -> Option<&SecurityScheme> {
        self.security_definitions.get(name)
    }

    /// The links with `rel: "type"` (the Thing Model this TD was made from).
    pub fn type_links(&self) -> impl Iterator<Item = &Link> {
        self.links
            .iter()
            .flatten()
            .filter(|l| l.rel.as_deref() == Some("type"))
    }
}
