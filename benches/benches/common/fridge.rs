//! The Thing and the 1,000 rules of group 11, shared by the `pipeline` and `persistence`
//! benches (each includes this file with `#[path]`).

use std::time::SystemTime;

use serde_json::json;
use wot_alerts::{Condition, Engine, Rule};
use wot_events::ConsumedThing;

/// The Thing every update of the workload belongs to.
pub(crate) const THING: &str = "urn:dev:fridge-1";
/// Rules in the engine; one watches the workload's property.
const RULES: usize = 1_000;

/// The fridge whose `temperature` (an object with a range, an enum, a string and a boolean)
/// the workload's events update.
pub(crate) fn fridge() -> ConsumedThing {
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "id": THING,
        "title": "Fridge 1",
        "securityDefinitions": {"none": {"scheme": "nosec"}},
        "security": "none",
        "properties": {
            "temperature": {
                "type": "object",
                "properties": {
                    "value": {"type": "number", "minimum": -50, "maximum": 100},
                    "unit": {"type": "string", "enum": ["cel", "fah"]},
                    "ts": {"type": "string"},
                    "ok": {"type": "boolean"}
                },
                "required": ["value", "unit"],
                "forms": [{"href": "http://192.0.2.1/fridge-1/temperature"}]
            },
            "door": {"type": "boolean", "forms": [{"href": "http://192.0.2.1/fridge-1/door"}]}
        },
        "forms": [{
            "op": "observeallproperties",
            "href": "http://192.0.2.1/fridge-1/properties",
            "subprotocol": "sse"
        }]
    });
    let doc = wot_td::Document::from_value(td).expect("a TD");
    ConsumedThing::new(doc.into_thing().expect("a Thing"), None).expect("a valid TD")
}

/// 1,000 rules: one on this Thing's `temperature`; the others on properties or Things no
/// update of the workload touches.
pub(crate) fn engine(t0: SystemTime) -> Engine {
    let mut engine = Engine::new();
    for i in 0..RULES {
        let rule = if i == 0 {
            let mut rule = Rule::new("fridge-warm", THING, "temperature", Condition::Gt(24.5));
            rule.pointer = Some("/value".to_owned());
            rule
        } else if i % 2 == 0 {
            let thing = format!("urn:dev:fridge-{}", i + 1);
            let mut rule = Rule::new(
                format!("rule-{i}"),
                thing,
                "temperature",
                Condition::Gt(9.0),
            );
            rule.pointer = Some("/value".to_owned());
            rule
        } else {
            Rule::new(
                format!("rule-{i}"),
                THING,
                format!("p{i}"),
                Condition::Gt(9.0),
            )
        };
        engine.add_rule(rule, t0).expect("a valid rule");
    }
    engine
}
