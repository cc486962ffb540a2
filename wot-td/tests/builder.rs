//! Building TDs in code, as the dashboard's simulator does.

use serde_json::json;
use wot_td::{
    ActionBuilder, Affordance, DataSchema, DataType, Document, EventBuilder, FormBuilder,
    FormQuery, Operation, PropertyBuilder, SecurityIn, ThingBuilder,
};

fn simulator_thing(security: fn(ThingBuilder) -> ThingBuilder) -> wot_td::Thing {
    security(
        ThingBuilder::new("Greenhouse")
            .id("urn:sim:greenhouse-1")
            .base("http://127.0.0.1:8088/gh/"),
    )
    .description("simulated")
    .property(
        "temperature",
        PropertyBuilder::new(DataType::Number)
            .title("Temperature")
            .unit("°C")
            .minimum(-10)
            .maximum_f64(45.5)
            .read_only()
            .observable()
            .form(FormBuilder::new("properties/temperature").op(Operation::ReadProperty))
            .form(
                FormBuilder::new("properties/temperature/sse")
                    .op(Operation::ObserveProperty)
                    .op(Operation::UnobserveProperty)
                    .subprotocol("sse"),
            ),
    )
    .property(
        "mode",
        PropertyBuilder::new(DataType::String)
            .enumeration([json!("auto"), json!("manual")])
            .form(FormBuilder::new("properties/mode").extension("htv:methodName", json!("PUT"))),
    )
    .action(
        "vent",
        ActionBuilder::new()
            .input(DataSchema {
                minimum: Some(0.into()),
                maximum: Some(100.into()),
                ..DataSchema::of_type(DataType::Integer)
            })
            .idempotent()
            .form(FormBuilder::new("actions/vent")),
    )
    .event(
        "frost",
        EventBuilder::new()
            .title("Frost warning")
            .data(DataSchema::of_type(DataType::Number))
            .form(FormBuilder::new("events/frost").content_type("text/event-stream")),
    )
    .form(FormBuilder::new("properties").op(Operation::ReadAllProperties))
    .build()
    .unwrap()
}

#[test]
fn built_things_validate_and_round_trip() {
    for security in [
        ThingBuilder::nosec,
        ThingBuilder::basic,
        ThingBuilder::bearer,
    ] {
        let thing = simulator_thing(security);
        assert_eq!(thing.validate(), []);
        let doc = Document::from(thing.clone());
        let text = doc.to_json_string_pretty().unwrap();
        let again = text.parse::<Document>().unwrap();
        assert_eq!(again.as_thing(), Some(&thing));
        assert_eq!(again.validate(), []);
    }
}

#[test]
fn built_things_are_usable() {
    let thing = simulator_thing(ThingBuilder::basic);
    let t = thing.property("temperature").unwrap();
    assert!(t.is_observable());
    let r = t.schema.numeric_range().unwrap();
    assert_eq!((r.min, r.max), (Some(-10.0), Some(45.5)));
    assert_eq!(
        thing.security_scheme("basic_sc").unwrap().location(),
        Some(SecurityIn::Header)
    );
    let sse = thing
        .forms_for(
            Affordance::Event("frost"),
            Operation::SubscribeEvent,
            &FormQuery::new().subprotocol("sse").only_matching(true),
        )
        .unwrap();
    assert_eq!(sse[0].url.as_str(), "http://127.0.0.1:8088/gh/events/frost");
    let json = serde_json::to_value(&thing).unwrap();
    assert_eq!(
        json["properties"]["mode"]["forms"][0]["htv:methodName"],
        "PUT"
    );
    assert_eq!(json["security"], json!(["basic_sc"]));
}

#[test]
fn builder_reports_what_does_not_validate() {
    let err = ThingBuilder::new("No security").build().unwrap_err();
    let rules: Vec<_> = err.errors.iter().map(|d| d.rule.as_str()).collect();
    assert!(
        rules.contains(&"security-definitions-empty") && rules.contains(&"security-empty"),
        "{err}"
    );
    let err = ThingBuilder::new("Bad op")
        .nosec()
        .property(
            "p",
            PropertyBuilder::new(DataType::Boolean)
                .form(FormBuilder::new("http://x/p").op(Operation::InvokeAction)),
        )
        .event("e", EventBuilder::new())
        .build()
        .unwrap_err();
    let at: Vec<_> = err.errors.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(at, ["properties.p.forms[0].op", "events.e.forms"]);
    assert!(err.to_string().contains("invokeaction"), "{err}");
}
