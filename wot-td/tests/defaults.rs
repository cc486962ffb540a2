//! TD 1.1 §5.4 defaults, applied by accessors and never written into the document.

use serde_json::json;
use wot_td::{
    AffordanceKind, DataSchema, Document, Form, Operation, SecurityIn, SecurityScheme, Thing,
};

fn thing(value: serde_json::Value) -> Thing {
    let mut base = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "title": "T",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc"
    });
    for (k, v) in value.as_object().unwrap() {
        base[k] = v.clone();
    }
    Document::from_value(base).unwrap().into_thing().unwrap()
}

#[test]
fn form_content_type_defaults_to_json() {
    let form = Form::new("/x");
    assert_eq!(form.content_type(), "application/json");
    let form: Form = serde_json::from_value(
        json!({"href": "/x", "contentType": "Text/Event-Stream; charset=utf-8"}),
    )
    .unwrap();
    assert_eq!(form.media_type(), "text/event-stream");
    assert_eq!(form.effective_subprotocol(), Some("sse"));
}

#[test]
fn additional_responses_default_to_failure_and_the_form_content_type() {
    let form: Form = serde_json::from_value(json!({
        "href": "/x", "contentType": "text/plain",
        "additionalResponses": [{"schema": "err"}, {"success": true, "contentType": "application/cbor"}]
    }))
    .unwrap();
    let responses = form.additional_responses.as_ref().unwrap().as_slice();
    assert!(!responses[0].is_success());
    assert_eq!(responses[0].content_type(&form), "text/plain");
    assert!(responses[1].is_success());
    assert_eq!(responses[1].content_type(&form), "application/cbor");
}

#[test]
fn property_form_ops_depend_on_read_only_and_write_only() {
    use Operation::*;
    let t = thing(json!({"properties": {
        "rw": {"forms": [{"href": "/rw"}]},
        "ro": {"readOnly": true, "forms": [{"href": "/ro"}]},
        "wo": {"writeOnly": true, "forms": [{"href": "/wo"}]},
        "explicit": {"readOnly": true, "forms": [{"href": "/e", "op": ["observeproperty"]}]}
    }}));
    let ops = |name: &str| {
        let p = t.property(name).unwrap();
        p.form_operations(&p.forms[0])
    };
    assert_eq!(ops("rw"), [ReadProperty, WriteProperty]);
    assert_eq!(ops("ro"), [ReadProperty]);
    assert_eq!(ops("wo"), [WriteProperty]);
    assert_eq!(ops("explicit"), [ObserveProperty]);
}

#[test]
fn action_event_and_thing_form_ops() {
    let f = Form::new("/x");
    assert_eq!(
        f.operations(AffordanceKind::Action, false, false),
        [Operation::InvokeAction]
    );
    assert_eq!(
        f.operations(AffordanceKind::Event, false, false),
        [Operation::SubscribeEvent, Operation::UnsubscribeEvent]
    );
    assert!(f.operations(AffordanceKind::Thing, false, false).is_empty());
}

#[test]
fn observable_safe_idempotent_read_write_only_default_to_false() {
    let t = thing(json!({
        "properties": {"p": {"forms": [{"href": "/p"}]}, "o": {"observable": true, "forms": [{"href": "/o"}]}},
        "actions": {"a": {"forms": [{"href": "/a"}]}, "s": {"safe": true, "idempotent": true, "forms": [{"href": "/s"}]}}
    }));
    let p = t.property("p").unwrap();
    assert!(!p.is_observable());
    assert!(!p.schema.is_read_only() && !p.schema.is_write_only());
    assert!(t.property("o").unwrap().is_observable());
    assert_eq!(
        t.observable_properties()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        ["o"]
    );
    let a = t.action("a").unwrap();
    assert!(!a.is_safe() && !a.is_idempotent());
    assert_eq!(a.synchronous, None);
    let s = t.action("s").unwrap();
    assert!(s.is_safe() && s.is_idempotent());
    // Nothing was written into the document.
    let written = serde_json::to_value(&t).unwrap();
    assert!(written["properties"]["p"].get("observable").is_none());
    assert!(written["actions"]["a"].get("safe").is_none());
}

#[test]
fn security_in_and_scheme_defaults() {
    let t = thing(json!({"securityDefinitions": {
        "b": {"scheme": "basic"},
        "d": {"scheme": "digest"},
        "k": {"scheme": "apikey"},
        "t": {"scheme": "bearer"},
        "kc": {"scheme": "apikey", "in": "cookie", "name": "session"},
        "n": {"scheme": "nosec"}
    }, "security": "n"}));
    let loc = |n: &str| t.security_scheme(n).unwrap().location();
    assert_eq!(loc("b"), Some(SecurityIn::Header));
    assert_eq!(loc("d"), Some(SecurityIn::Header));
    assert_eq!(loc("k"), Some(SecurityIn::Query));
    assert_eq!(loc("t"), Some(SecurityIn::Header));
    assert_eq!(loc("kc"), Some(SecurityIn::Cookie));
    assert_eq!(loc("n"), None);
    assert_eq!(t.security_scheme("kc").unwrap().name(), Some("session"));
    assert_eq!(t.security_scheme("d").unwrap().digest_qop(), Some("auth"));
    assert_eq!(
        t.security_scheme("t").unwrap().bearer_alg_format(),
        Some(("ES256", "jwt"))
    );
    assert_eq!(SecurityScheme::basic().scheme(), "basic");
}

#[test]
fn accessors_for_gauges_and_labels() {
    let t = thing(json!({
        "@context": ["https://www.w3.org/2022/wot/td/v1.1", {"@language": "en"}],
        "titles": {"en": "Boiler", "de": "Kessel"},
        "properties": {"temp": {
            "type": "number", "unit": "om:degree_Celsius", "exclusiveMinimum": -10, "minimum": -20, "maximum": 90,
            "title": "Temperature", "titles": {"de-DE": "Temperatur"}, "forms": [{"href": "/t"}]
        }},
        "events": {"hot": {"data": {"type": "number"}, "forms": [{"href": "/hot"}]}}
    }));
    assert_eq!(t.title_in("de"), "Kessel");
    assert_eq!(t.title_in("fr"), "T");
    assert_eq!(t.default_language(), Some("en"));
    let p = t.property("temp").unwrap();
    assert_eq!(p.unit(), Some("om:degree_Celsius"));
    assert_eq!(p.title_in("de"), Some("Temperatur"));
    assert_eq!(p.title_in("it"), Some("Temperature"));
    let r = p.schema.numeric_range().unwrap();
    assert_eq!(
        (r.min, r.min_exclusive, r.max, r.max_exclusive),
        (Some(-10.0), true, Some(90.0), false)
    );
    assert!(DataSchema::default().numeric_range().is_none());
    assert_eq!(
        t.event_data_schema("hot").unwrap().data_type,
        Some(wot_td::DataType::Number)
    );
    assert!(t.event_data_schema("cold").is_none());
}
