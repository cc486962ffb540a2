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
    // Absolute hrefs still work then (with a query that serves their scheme).
    let c = t
        .forms_for(
            Affordance::Event("alarm"),
            Operation::SubscribeEvent,
            &FormQuery::new().schemes(["coap"]),
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
            kind: wot_td::AffordanceKind::Action,
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

/// A Thing with property `p` whose forms are `hrefs`, and a good property `ok`.
fn with_hrefs(hrefs: &[&str]) -> Thing {
    let forms: Vec<_> = hrefs.iter().map(|h| json!({"href": h})).collect();
    Document::from_value(json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "title": "T",
        "base": "http://dev.local/",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {
            "p": {"type": "number", "forms": forms},
            "ok": {"type": "number", "forms": [{"href": "ok"}]}
        }
    }))
    .unwrap()
    .into_thing()
    .unwrap()
}

fn read_p(t: &Thing, q: &FormQuery) -> Result<Vec<String>, FormError> {
    t.forms_for(Affordance::Property("p"), Operation::ReadProperty, q)
        .map(|c| c.iter().map(|c| c.url.to_string()).collect())
}

#[test]
fn local_scheme_forms_are_never_offered_by_default() {
    // A file: form first, a good one second: only the good one is offered.
    let t = with_hrefs(&["file:///etc/passwd", "http://127.0.0.1:9/p"]);
    assert_eq!(
        read_p(&t, &FormQuery::new()).unwrap(),
        ["http://127.0.0.1:9/p"]
    );
    // Not even ranked last when preferences miss, nor with `any_scheme`.
    let q = FormQuery::new().content_type("text/plain");
    assert_eq!(read_p(&t, &q).unwrap(), ["http://127.0.0.1:9/p"]);
    let q = FormQuery::new().any_scheme();
    assert_eq!(read_p(&t, &q).unwrap(), ["http://127.0.0.1:9/p"]);
    // A preference for the scheme does not make it served.
    let q = FormQuery::new().uri_scheme("file");
    assert_eq!(read_p(&t, &q).unwrap(), ["http://127.0.0.1:9/p"]);
    // Only naming it in `schemes` does.
    let q = FormQuery::new().schemes(["FILE"]);
    assert_eq!(read_p(&t, &q).unwrap(), ["file:///etc/passwd"]);
}

#[test]
fn an_affordance_with_only_unservable_forms_names_the_schemes() {
    for (hrefs, found) in [
        (&["file:///etc/passwd"][..], vec!["file"]),
        (&["javascript:alert(1)"][..], vec!["javascript"]),
        (&["data:application/json,42"][..], vec!["data"]),
        (
            &["JavaScript:alert(1)", "coap://dev/p", "file:///x"][..],
            vec!["javascript", "coap", "file"],
        ),
        (&["coap://dev/p", "coap://dev/q"][..], vec!["coap"]),
    ] {
        let t = with_hrefs(hrefs);
        let err = read_p(&t, &FormQuery::new()).unwrap_err();
        assert_eq!(
            err,
            FormError::UnservableScheme {
                path: "properties.p.forms".into(),
                op: Operation::ReadProperty,
                count: hrefs.len(),
                found: found.iter().map(|s| s.to_string()).collect(),
                served: Some(vec!["http".into(), "https".into()]),
            }
        );
        let text = err.to_string();
        assert!(text.contains(&format!("`{}`", found[0])), "{text}");
        assert!(text.contains("served: http, https"), "{text}");
        assert!(
            !text.contains("/etc/passwd") && !text.contains("alert"),
            "{text}"
        );
        // The other affordances are unaffected.
        assert_eq!(
            t.forms_for(
                Affordance::Property("ok"),
                Operation::ReadProperty,
                &FormQuery::new()
            )
            .unwrap()[0]
                .url
                .as_str(),
            "http://dev.local/ok"
        );
    }
    let t = with_hrefs(&["file:///etc/passwd"]);
    let err = read_p(&t, &FormQuery::new().any_scheme()).unwrap_err();
    assert!(
        matches!(err, FormError::UnservableScheme { served: None, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("any but file, javascript"),
        "{err}"
    );
    let err = read_p(&t, &FormQuery::new().schemes(Vec::<String>::new())).unwrap_err();
    assert!(err.to_string().contains("no scheme is served"), "{err}");
    // A served form dropped only by `only_matching` gives an empty list, not a scheme error.
    let t = with_hrefs(&["file:///etc/passwd", "http://127.0.0.1:9/p"]);
    let q = FormQuery::new().subprotocol("sse").only_matching(true);
    assert_eq!(read_p(&t, &q).unwrap(), Vec::<String>::new());
    // The first failing form decides between an unresolvable href and an unserved scheme.
    let t = Document::from_value(json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "T",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}}, "security": "nosec_sc",
        "properties": {
            "p": {"forms": [{"href": "relative"}, {"href": "file:///x"}]},
            "q": {"forms": [{"href": "file:///x"}, {"href": "relative"}]}
        }
    }))
    .unwrap()
    .into_thing()
    .unwrap();
    let read = |name| {
        t.forms_for(
            Affordance::Property(name),
            Operation::ReadProperty,
            &FormQuery::new(),
        )
    };
    assert!(matches!(read("p"), Err(FormError::Unresolvable { .. })));
    assert!(matches!(
        read("q"),
        Err(FormError::UnservableScheme { count: 2, .. })
    ));
    // An operation no form supports is still an empty list, not an error.
    assert!(
        t.forms_for(
            Affordance::Property("p"),
            Operation::InvokeAction,
            &FormQuery::new()
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn a_relative_href_against_a_file_base_is_not_offered() {
    let t = thing(json!({"base": "file:///etc/"}));
    let err = t
        .forms_for(
            Affordance::Thing,
            Operation::ReadAllProperties,
            &FormQuery::new(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, FormError::UnservableScheme { path, found, .. }
            if path == "forms" && found == &["file"]),
        "{err}"
    );
    // Nor against a fetch URL with such a scheme.
    let t = thing(json!({}));
    let q = FormQuery::new().fetched_from("file:///srv/td.json".parse().unwrap());
    assert!(matches!(
        t.forms_for(Affordance::Thing, Operation::ReadAllProperties, &q),
        Err(FormError::UnservableScheme { .. })
    ));
}

#[test]
fn uri_variables_cannot_change_the_scheme() {
    let t = Document::from_value(json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "title": "T",
        "base": "http://dev.local/",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {"p": {
            "type": "number",
            "uriVariables": {"to": {"type": "string"}},
            "forms": [{"href": "{+to}"}]
        }}
    }))
    .unwrap()
    .into_thing()
    .unwrap();
    let c = t
        .forms_for(
            Affordance::Property("p"),
            Operation::ReadProperty,
            &FormQuery::new(),
        )
        .unwrap();
    assert_eq!(c[0].url.as_str(), "http://dev.local/");
    let ok = json!({"to": "p/value"});
    assert_eq!(
        c[0].url_with(ok.as_object().unwrap()).unwrap().as_str(),
        "http://dev.local/p/value"
    );
    for hostile in ["file:///etc/passwd", "javascript:alert(1)", "data:,1"] {
        let vars = json!({ "to": hostile });
        let err = c[0].url_with(vars.as_object().unwrap()).unwrap_err();
        assert!(
            matches!(&err, UriTemplateError::Unresolvable { reason, .. } if reason.contains("change the scheme")),
            "{hostile}: {err}"
        );
    }
}
