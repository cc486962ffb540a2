//! Form selection, ranking, URL resolution, security and URI variables.

use serde_json::json;
use wot_td::{Affordance, Document, FormError, FormQuery, Operation, Thing, UriTemplateError, Url};

fn thing(extra: serde_json::Value) -> Thing {
    let mut v = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "title": "T",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}, "basic_sc": {"scheme": "basic"}},
        "security": "basic_sc",
        "properties": {"temp": {
            "type": "number", "observable": true,
            "uriVariables": {"unit": {"type": "string", "enum": ["C", "F"]}},
            "forms": [
                {"href": "temp{?unit}"},
                {"href": "temp/old-sse", "op": "observeproperty", "contentType": "text/event-stream"},
                {"href": "https://secure.example/temp/sse", "op": "observeproperty", "subprotocol": "sse", "security": "nosec_sc"},
                {"href": "temp/poll", "op": ["observeproperty", "unobserveproperty"], "subprotocol": "longpoll"}
            ]
        }},
        "events": {"alarm": {"forms": [{"href": "coap://dev/alarm", "subprotocol": "cov:observe"}, {"href": "/alarm", "subprotocol": "sse"}]}},
        "forms": [{"href": "all", "op": "readallproperties"}]
    });
    for (k, val) in extra.as_object().unwrap() {
        v[k] = val.clone();
    }
    Document::from_value(v).unwrap().into_thing().unwrap()
}

fn urls(t: &Thing, a: Affordance<'_>, op: Operation, q: &FormQuery) -> Vec<String> {
    t.forms_for(a, op, q)
        .unwrap()
        .iter()
        .map(|c| c.url.to_string())
        .collect()
}

#[test]
fn both_sse_styles_and_longpoll_are_found_and_ranked() {
    let t = thing(json!({"base": "http://dev.local/api/"}));
    let q = FormQuery::new().subprotocol("sse").only_matching(true);
    assert_eq!(
        urls(
            &t,
            Affordance::Property("temp"),
            Operation::ObserveProperty,
            &q
        ),
        [
            "http://dev.local/api/temp/old-sse",
            "https://secure.example/temp/sse"
        ]
    );
    let q = FormQuery::new().subprotocol("longpoll").subprotocol("sse");
    let c = t
        .forms_for(Affordance::Property("temp"), Operation::ObserveProperty, &q)
        .unwrap();
    assert_eq!(c[0].subprotocol, Some("longpoll"));
    assert!(c.iter().all(|c| c.matches));
    // URI scheme preference breaks the tie between the two SSE forms.
    let q = FormQuery::new()
        .subprotocol("sse")
        .uri_scheme("https")
        .uri_scheme("http");
    assert_eq!(
        urls(
            &t,
            Affordance::Property("temp"),
            Operation::ObserveProperty,
            &q
        )[0],
        "https://secure.example/temp/sse"
    );
    // Forms that miss the preference are ranked last unless only_matching is set.
    let q = FormQuery::new().content_type("application/json");
    let c = t
        .forms_for(Affordance::Property("temp"), Operation::ObserveProperty, &q)
        .unwrap();
    assert_eq!(c.len(), 3);
    assert!(!c.last().unwrap().matches);
}

#[test]
fn relative_hrefs_resolve_against_base_or_the_fetch_url() {
    let fetched: Url = "http://192.0.2.1:8080/things/td.json".parse().unwrap();
    let t = thing(json!({}));
    let q = FormQuery::new().fetched_from(fetched.clone());
    assert_eq!(
        urls(
            &t,
            Affordance::Property("temp"),
            Operation::ReadProperty,
            &q
        ),
        ["http://192.0.2.1:8080/things/temp"]
    );
    // A relative base resolves against the fetch URL.
    let t = thing(json!({"base": "/v2/"}));
    assert_eq!(
        urls(
            &t,
            Affordance::Thing,
            Operation::ReadAllProperties,
            &FormQuery::new().fetched_from(fetched)
        ),
        ["http://192.0.2.1:8080/v2/all"]
    );
    // Without either, a relative href cannot be resolved.
    let t = thing(json!({}));
    let err = t
        .forms_for(
            Affordance::Property("temp"),
            Operation::ReadProperty,
            &FormQuery::new(),
        )
        .unwrap_err();
    assert!(
        matches!(err, FormError::Unresolvable { ref path, .. } if path == "properties.temp.forms[0]"),
        "{err}"
    );
    // Absolute hrefs still work then.
    let c = t
        .forms_for(
            Affordance::Event("alarm"),
            Operation::SubscribeEvent,
            &FormQuery::new(),
        )
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].url.scheme(), "coap");
}

#[test]
fn effective_security_follows_the_form_then_the_thing() {
    let t = thing(json!({"base": "http://dev/"}));
    let c = t
        .forms_for(
            Affordance::Property("temp"),
            Operation::ObserveProperty,
            &FormQuery::new(),
        )
        .unwrap();
    let names = |i: usize| c[i].security.iter().map(|(n, _)| *n).collect::<Vec<_>>();
    assert_eq!(names(0), ["basic_sc"]);
    assert_eq!(names(1), ["nosec_sc"]);
    assert_eq!(c[1].security[0].1.scheme(), "nosec");
}

#[test]
fn unknown_affordances_and_unsupported_ops() {
    let t = thing(json!({"base": "http://dev/"}));
    let err = t
        .forms_for(
            Affordance::Action("nope"),
            Operation::InvokeAction,
            &FormQuery::new(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        FormError::NoSuchAffordance {
            kind: "action",
            name: "nope".into()
        }
    );
    assert!(
        t.forms_for(
            Affordance::Property("temp"),
            Operation::InvokeAction,
            &FormQuery::new()
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn uri_variables_are_checked_and_expanded() {
    let t = thing(json!({"base": "http://dev/"}));
    let c = t
        .forms_for(
            Affordance::Property("temp"),
            Operation::ReadProperty,
            &FormQuery::new(),
        )
        .unwrap();
    assert_eq!(c[0].url.as_str(), "http://dev/temp");
    let vars = json!({"unit": "F"});
    assert_eq!(
        c[0].url_with(vars.as_object().unwrap()).unwrap().as_str(),
        "http://dev/temp?unit=F"
    );
    let bad = json!({"unit": "K"});
    let err = c[0].url_with(bad.as_object().unwrap()).unwrap_err();
    assert!(
        matches!(err, UriTemplateError::InvalidValue { ref name, .. } if name == "unit"),
        "{err}"
    );
}

#[test]
fn a_relative_base_without_a_fetch_url_is_named_in_the_error() {
    let t = thing(json!({"base": "/v2/"}));
    let err = t
        .forms_for(
            Affordance::Property("temp"),
            Operation::ReadProperty,
            &FormQuery::new(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("`base` (`/v2/`)"), "{err}");
    // Content type preferences ignore parameters and case on both sides.
    let t = thing(json!({"base": "http://dev/"}));
    let q = FormQuery::new()
        .content_type("Text/Event-Stream; charset=utf-8")
        .only_matching(true);
    let c = t
        .forms_for(Affordance::Property("temp"), Operation::ObserveProperty, &q)
        .unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].url.as_str(), "http://dev/temp/old-sse");
}
