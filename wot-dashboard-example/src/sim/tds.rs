//! Thing Descriptions of the simulated Things, written with the `wot-td` builder in the WoT
//! Profile style: HTTP Basic forms for read, write and invoke, HTTP SSE forms
//! (`subprotocol: "sse"`) for observing and subscribing. Hrefs are relative to `base`.

use wot_td::{
    ActionBuilder, BuildError, DataSchema, DataType, EventBuilder, FormBuilder, IndexMap,
    Operation, PropertyBuilder, Thing, ThingBuilder,
};

use super::model::{PropertySpec, ValueType, slug, spec, title};

/// The `id` of one of the four simulated Things of [`THINGS`](super::model::THINGS).
#[cfg(test)]
pub(crate) fn thing_id(spec: &super::model::ThingSpec) -> String {
    format!("urn:wot-live:sim:{}", spec.slug)
}

/// The `id` of simulated Thing `index` of a fleet: `urn:wot-live:sim:` and its [`slug`]
/// (`urn:wot-live:sim:pump-2`). Unique in the fleet and the same in every run.
pub(crate) fn fleet_thing_id(index: usize) -> String {
    format!("urn:wot-live:sim:{}", slug(index))
}

fn data_type(kind: ValueType) -> DataType {
    match kind {
        ValueType::Number => DataType::Number,
        ValueType::Integer => DataType::Integer,
        ValueType::Boolean => DataType::Boolean,
        ValueType::String => DataType::String,
    }
}

fn property(slug: &str, p: &PropertySpec) -> PropertyBuilder {
    let mut read = FormBuilder::new(format!("things/{slug}/properties/{}", p.name))
        .op(Operation::ReadProperty);
    let mut builder = PropertyBuilder::new(data_type(p.kind))
        .title(p.title)
        .observable();
    if p.writable {
        read = read.op(Operation::WriteProperty);
    } else {
        builder = builder.read_only();
    }
    if let Some(unit) = p.unit {
        builder = builder.unit(unit);
    }
    if let Some(min) = p.minimum {
        builder = builder.minimum_f64(min);
    }
    if let Some(max) = p.maximum {
        builder = builder.maximum_f64(max);
    }
    builder.form(read).form(
        FormBuilder::new(format!("things/{slug}/sse/properties/{}", p.name))
            .op(Operation::ObserveProperty)
            .subprotocol("sse"),
    )
}

fn object(fields: &[(&str, ValueType)]) -> DataSchema {
    let properties: IndexMap<String, DataSchema> = fields
        .iter()
        .map(|(name, kind)| ((*name).to_owned(), DataSchema::of_type(data_type(*kind))))
        .collect();
    DataSchema {
        properties: Some(properties),
        ..DataSchema::of_type(DataType::Object)
    }
}

/// The TD of one simulated Thing served from `base` (`http://127.0.0.1:PORT/`).
///
/// # Errors
/// When the TD does not pass `wot-td` validation (a bug in the specs of [`super::model`]).
#[cfg(test)]
pub(crate) fn thing_description(
    spec: &super::model::ThingSpec,
    base: &str,
) -> Result<Thing, BuildError> {
    let index = super::model::THINGS
        .iter()
        .position(|t| t.slug == spec.slug)
        .unwrap_or(0);
    thing_description_at(index, base)
}

/// The TD of simulated Thing `index` of a fleet (see [`super::model::spec`]) served from
/// `base`.
///
/// # Errors
/// As [`thing_description`].
pub(crate) fn thing_description_at(index: usize, base: &str) -> Result<Thing, BuildError> {
    let slug = &slug(index);
    let spec = spec(index);
    let mut builder = ThingBuilder::new(title(index))
        .id(fleet_thing_id(index))
        .description(spec.description)
        .base(base)
        .nosec();
    for p in spec.properties {
        builder = builder.property(p.name, property(slug, p));
    }
    for a in spec.actions {
        let action = ActionBuilder::new()
            .title(a.title)
            .idempotent()
            .output(object(&[("running", ValueType::Boolean)]))
            .form(
                FormBuilder::new(format!("things/{slug}/actions/{}", a.name))
                    .op(Operation::InvokeAction),
            );
        builder = builder.action(a.name, action);
    }
    for e in spec.events {
        let event = EventBuilder::new()
            .title(e.title)
            .data(object(e.fields))
            .form(
                FormBuilder::new(format!("things/{slug}/sse/events/{}", e.name))
                    .op(Operation::SubscribeEvent)
                    .subprotocol("sse"),
            );
        builder = builder.event(e.name, event);
    }
    builder
        .form(
            FormBuilder::new(format!("things/{slug}/sse/properties"))
                .op(Operation::ObserveAllProperties)
                .subprotocol("sse"),
        )
        .form(
            FormBuilder::new(format!("things/{slug}/sse/events"))
                .op(Operation::SubscribeAllEvents)
                .subprotocol("sse"),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::model::THINGS;
    use wot_td::{Affordance, Document, FormQuery};

    #[test]
    fn every_simulated_td_passes_validation_after_a_round_trip() {
        let base = "http://127.0.0.1:9/";
        for spec in &THINGS {
            let thing = thing_description(spec, base).expect("builds");
            // Parse what the server sends, as a client would, and validate that.
            let json = serde_json::to_string(&thing).expect("serializes");
            let doc = json.parse::<Document>().expect("parses");
            let problems: Vec<String> = doc.validate().iter().map(ToString::to_string).collect();
            assert!(problems.is_empty(), "{}: {problems:?}", spec.slug);
        }
    }

    #[test]
    fn sse_forms_resolve_against_base_for_every_affordance() {
        let base = "http://127.0.0.1:9/";
        let query = FormQuery::new().subprotocol("sse");
        for spec in &THINGS {
            let thing = thing_description(spec, base).expect("builds");
            for p in spec.properties {
                let forms = thing
                    .forms_for(
                        Affordance::Property(p.name),
                        Operation::ObserveProperty,
                        &query,
                    )
                    .expect("observe form");
                let url = forms.first().expect("one").url.as_str().to_owned();
                assert_eq!(
                    url,
                    format!("{base}things/{}/sse/properties/{}", spec.slug, p.name)
                );
            }
            for e in spec.events {
                let forms = thing
                    .forms_for(Affordance::Event(e.name), Operation::SubscribeEvent, &query)
                    .expect("subscribe form");
                assert!(forms.first().expect("one").url.as_str().starts_with(base));
            }
            let all = thing
                .forms_for(Affordance::Thing, Operation::SubscribeAllEvents, &query)
                .expect("subscribeallevents form");
            assert_eq!(
                all.first().expect("one").url.as_str(),
                format!("{base}things/{}/sse/events", spec.slug)
            );
        }
    }
}
