//! Builders to write Thing Descriptions in code.

use indexmap::IndexMap;
use serde_json::{Number, Value};

use crate::diagnostic::{Diagnostic, Severity};
use crate::model::{
    ActionAffordance, ContextEntry, DataSchema, DataType, EventAffordance, Form, Operation,
    PropertyAffordance, TD_CONTEXT_1_1, Thing,
};
use crate::one_or_many::OneOrMany;
use crate::security::SecurityScheme;

/// Builds a [`Thing`]; [`ThingBuilder::build`] returns it only if it passes
/// [`Thing::validate`] without errors.
///
/// Defaults: `@context` is TD 1.1, no `id`, no `base`, and no security: call
/// [`ThingBuilder::nosec`], [`ThingBuilder::basic`], [`ThingBuilder::bearer`] or
/// [`ThingBuilder::security`] at least once.
///
/// ```
/// use wot_td::{DataSchema, DataType, EventBuilder, FormBuilder, Operation, PropertyBuilder, ThingBuilder};
/// let thing = ThingBuilder::new("Boiler")
///     .id("urn:dev:boiler-1")
///     .base("http://127.0.0.1:8080/boiler/")
///     .nosec()
///     .property(
///         "temperature",
///         PropertyBuilder::new(DataType::Number)
///             .unit("°C")
///             .minimum(0)
///             .maximum(120)
///             .read_only()
///             .observable()
///             .form(FormBuilder::new("properties/temperature"))
///             .form(
///                 FormBuilder::new("properties/temperature/sse")
///                     .op(Operation::ObserveProperty)
///                     .subprotocol("sse"),
///             ),
///     )
///     .event(
///         "overheated",
///         EventBuilder::new()
///             .data(DataSchema::of_type(DataType::Number))
///             .form(FormBuilder::new("events/overheated").subprotocol("sse")),
///     )
///     .build()
///     .unwrap();
/// assert!(thing.property("temperature").unwrap().is_observable());
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ThingBuilder {
    thing: Thing,
}

impl ThingBuilder {
    /// Starts a Thing with this `title`.
    pub fn new(title: impl Into<String>) -> Self {
        ThingBuilder {
            thing: Thing {
                context: OneOrMany::One(ContextEntry::Uri(TD_CONTEXT_1_1.to_owned())),
                ld_type: None,
                id: None,
                title: title.into(),
                titles: None,
                description: None,
                descriptions: None,
                version: None,
                created: None,
                modified: None,
                support: None,
                base: None,
                properties: None,
                actions: None,
                events: None,
                links: None,
                forms: None,
                security: OneOrMany::Many(Vec::new()),
                security_definitions: IndexMap::new(),
                profile: None,
                schema_definitions: None,
                uri_variables: None,
                extensions: Default::default(),
            },
        }
    }

    /// Sets `id` (default: none).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.thing.id = Some(id.into());
        self
    }

    /// Sets `description` (default: none).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.thing.description = Some(description.into());
        self
    }

    /// Sets `base`, the URL relative form `href`s resolve against (default: none).
    pub fn base(mut self, base: impl Into<String>) -> Self {
        self.thing.base = Some(base.into());
        self
    }

    /// Adds a security definition `name` and puts it in the Thing's `security`.
    pub fn security(mut self, name: impl Into<String>, scheme: SecurityScheme) -> Self {
        let name = name.into();
        self.thing.security_definitions.insert(name.clone(), scheme);
        let mut names: Vec<String> = self.thing.security.iter().cloned().collect();
        if !names.contains(&name) {
            names.push(name);
        }
        self.thing.security = OneOrMany::Many(names);
        self
    }

    /// No security: adds `nosec_sc` (`scheme: nosec`).
    pub fn nosec(self) -> Self {
        self.security("nosec_sc", SecurityScheme::nosec())
    }

    /// HTTP basic authentication in the header: adds `basic_sc`.
    pub fn basic(self) -> Self {
        self.security("basic_sc", SecurityScheme::basic())
    }

    /// Bearer token in the `Authorization` header: adds `bearer_sc`.
    pub fn bearer(self) -> Self {
        self.security("bearer_sc", SecurityScheme::bearer())
    }

    /// Adds a property.
    pub fn property(mut self, name: impl Into<String>, property: PropertyBuilder) -> Self {
        self.thing
            .properties
            .get_or_insert_with(IndexMap::new)
            .insert(name.into(), property.property);
        self
    }

    /// Adds an action.
    pub fn action(mut self, name: impl Into<String>, action: ActionBuilder) -> Self {
        self.thing
            .actions
            .get_or_insert_with(IndexMap::new)
            .insert(name.into(), action.action);
        self
    }

    /// Adds an event.
    pub fn event(mut self, name: impl Into<String>, event: EventBuilder) -> Self {
        self.thing
            .events
            .get_or_insert_with(IndexMap::new)
            .insert(name.into(), event.event);
        self
    }

    /// Adds a Thing-level form (give it an `op` such as `readallproperties`).
    pub fn form(mut self, form: FormBuilder) -> Self {
        self.thing
            .forms
            .get_or_insert_with(Vec::new)
            .push(form.form);
        self
    }

    /// Sets an extension term on the Thing (e.g. `"schema:manufacturer"`).
    pub fn extension(mut self, term: impl Into<String>, value: Value) -> Self {
        self.thing.extensions.insert(term.into(), value);
        self
    }

    /// Finishes the Thing.
    ///
    /// # Errors
    /// [`BuildError`] with the error diagnostics of [`Thing::validate`] (for example no
    /// security, or a form whose `op` does not fit its affordance).
    pub fn build(self) -> Result<Thing, BuildError> {
        let errors: Vec<Diagnostic> = self
            .thing
            .validate()
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        if errors.is_empty() {
            Ok(self.thing)
        } else {
            Err(BuildError { errors })
        }
    }
}

/// The Thing a [`ThingBuilder`] made does not validate.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the Thing does not validate: {}", self.errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct BuildError {
    /// The errors found.
    pub errors: Vec<Diagnostic>,
}

/// Builds a [`Form`]. Defaults: no `op` (the affordance's default operations apply), no
/// `contentType` (`application/json` applies), no `subprotocol`, the Thing's security.
#[derive(Debug, Clone)]
#[must_use]
pub struct FormBuilder {
    form: Form,
}

impl FormBuilder {
    /// A form with this `href` (absolute, or relative to the Thing's `base`).
    pub fn new(href: impl Into<String>) -> Self {
        FormBuilder {
            form: Form::new(href),
        }
    }

    /// Adds an operation to `op`.
    pub fn op(mut self, op: Operation) -> Self {
        self.form.op = Some(match self.form.op.take() {
            None => OneOrMany::One(op),
            Some(existing) => {
                let mut ops = existing.as_slice().to_vec();
                ops.push(op);
                OneOrMany::Many(ops)
            }
        });
        self
    }

    /// Sets `contentType`.
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.form.content_type = Some(content_type.into());
        self
    }

    /// Sets `subprotocol` (`"sse"`, `"longpoll"`, ...).
    pub fn subprotocol(mut self, subprotocol: impl Into<String>) -> Self {
        self.form.subprotocol = Some(subprotocol.into());
        self
    }

    /// Sets the form's own `security` (names of security definitions).
    pub fn security(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.form.security = Some(OneOrMany::Many(names.into_iter().map(Into::into).collect()));
        self
    }

    /// Sets an extension term such as `"htv:methodName"`.
    pub fn extension(mut self, term: impl Into<String>, value: Value) -> Self {
        self.form.extensions.insert(term.into(), value);
        self
    }

    /// The form.
    pub fn build(self) -> Form {
        self.form
    }
}

impl From<FormBuilder> for Form {
    fn from(b: FormBuilder) -> Form {
        b.form
    }
}

/// Builds a [`PropertyAffordance`]. Defaults: not observable, readable and writable, no
/// unit, no bounds, no forms (add at least one).
#[derive(Debug, Clone)]
#[must_use]
pub struct PropertyBuilder {
    property: PropertyAffordance,
}

impl PropertyBuilder {
    /// A property whose values have this type.
    pub fn new(data_type: DataType) -> Self {
        Self::from_schema(DataSchema::of_type(data_type))
    }

    /// A property with this data schema.
    pub fn from_schema(schema: DataSchema) -> Self {
        PropertyBuilder {
            property: PropertyAffordance {
                schema,
                ..PropertyAffordance::default()
            },
        }
    }

    /// Sets `title`.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.property.schema.title = Some(title.into());
        self
    }

    /// Sets `description`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.property.schema.description = Some(description.into());
        self
    }

    /// Sets `unit`.
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.property.schema.unit = Some(unit.into());
        self
    }

    /// Sets `minimum`.
    pub fn minimum(mut self, minimum: impl Into<Number>) -> Self {
        self.property.schema.minimum = Some(minimum.into());
        self
    }

    /// Sets `maximum`.
    pub fn maximum(mut self, maximum: impl Into<Number>) -> Self {
        self.property.schema.maximum = Some(maximum.into());
        self
    }

    /// Sets `minimum` from an `f64` (ignored if not finite).
    pub fn minimum_f64(mut self, minimum: f64) -> Self {
        self.property.schema.minimum = Number::from_f64(minimum);
        self
    }

    /// Sets `maximum` from an `f64` (ignored if not finite).
    pub fn maximum_f64(mut self, maximum: f64) -> Self {
        self.property.schema.maximum = Number::from_f64(maximum);
        self
    }

    /// Sets `enum`.
    pub fn enumeration(mut self, values: impl IntoIterator<Item = Value>) -> Self {
        self.property.schema.enumeration = Some(values.into_iter().collect());
        self
    }

    /// Sets `readOnly: true`.
    pub fn read_only(mut self) -> Self {
        self.property.schema.read_only = Some(true);
        self
    }

    /// Sets `writeOnly: true`.
    pub fn write_only(mut self) -> Self {
        self.property.schema.write_only = Some(true);
        self
    }

    /// Sets `observable: true`.
    pub fn observable(mut self) -> Self {
        self.property.observable = Some(true);
        self
    }

    /// Adds a form.
    pub fn form(mut self, form: impl Into<Form>) -> Self {
        self.property.forms.push(form.into());
        self
    }

    /// The property.
    pub fn build(self) -> PropertyAffordance {
        self.property
    }
}

/// Builds an [`ActionAffordance`]. Defaults: no input, no output, not safe, not
/// idempotent, no forms (add at least one).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ActionBuilder {
    action: ActionAffordance,
}

impl ActionBuilder {
    /// An action with no input or output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `title`.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.action.title = Some(title.into());
        self
    }

    /// Sets `description`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.action.description = Some(description.into());
        self
    }

    /// Sets `input`.
    pub fn input(mut self, schema: DataSchema) -> Self {
        self.action.input = Some(schema);
        self
    }

    /// Sets `output`.
    pub fn output(mut self, schema: DataSchema) -> Self {
        self.action.output = Some(schema);
        self
    }

    /// Sets `safe: true`.
    pub fn safe(mut self) -> Self {
        self.action.safe = Some(true);
        self
    }

    /// Sets `idempotent: true`.
    pub fn idempotent(mut self) -> Self {
        self.action.idempotent = Some(true);
        self
    }

    /// Adds a form.
    pub fn form(mut self, form: impl Into<Form>) -> Self {
        self.action.forms.push(form.into());
        self
    }

    /// The action.
    pub fn build(self) -> ActionAffordance {
        self.action
    }
}

/// Builds an [`EventAffordance`]. Defaults: no data schema, no forms (add at least one).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct EventBuilder {
    event: EventAffordance,
}

impl EventBuilder {
    /// An event with no data schema.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `title`.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.event.title = Some(title.into());
        self
    }

    /// Sets `description`.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.event.description = Some(description.into());
        self
    }

    /// Sets `data`, the schema of the event data.
    pub fn data(mut self, schema: DataSchema) -> Self {
        self.event.data = Some(schema);
        self
    }

    /// Adds a form.
    pub fn form(mut self, form: impl Into<Form>) -> Self {
        self.event.forms.push(form.into());
        self
    }

    /// The event.
    pub fn build(self) -> EventAffordance {
        self.event
    }
}
