//! Every term of the TD 1.1 information model lands in its typed field (not in
//! `extensions`), and the document is written back exactly as it was read.

#![recursion_limit = "512"]

use serde_json::{Value, json};
use wot_td::{
    ContextEntry, DataType, Document, OneOrMany, Operation, SecurityIn, SecurityScheme, Thing,
};

/// A TD that uses every term of the model at least once.
fn every_term() -> Value {
    json!({
        "@context": ["https://www.w3.org/2022/wot/td/v1.1", {"@language": "en", "saref": "https://w3id.org/saref#"}],
        "@type": ["Thing", "saref:Sensor"],
        "id": "urn:dev:all-terms",
        "title": "All terms",
        "titles": {"en": "All terms", "de": "Alle Begriffe"},
        "description": "Uses every term",
        "descriptions": {"en": "Uses every term"},
        "version": {"instance": "1.2.3", "model": "1.0.0"},
        "created": "2026-01-01T00:00:00Z",
        "modified": "2026-02-01T00:00:00Z",
        "support": "mailto:ops@example.com",
        "base": "https://dev.example/",
        "profile": "https://www.w3.org/2022/wot/profile/http-sse/v1",
        "schemaDefinitions": {"error": {"type": "object", "properties": {"code": {"type": "integer"}}}},
        "uriVariables": {"lang": {"type": "string"}},
        "securityDefinitions": {
            "nosec_sc": {"scheme": "nosec", "description": "open"},
            "auto_sc": {"scheme": "auto", "proxy": "https://proxy.example/"},
            "basic_sc": {"scheme": "basic", "in": "header", "name": "Authorization"},
            "digest_sc": {"scheme": "digest", "qop": "auth-int", "in": "header"},
            "apikey_sc": {"scheme": "apikey", "in": "uri", "name": "key"},
            "bearer_sc": {"scheme": "bearer", "authorization": "https://as.example/", "alg": "RS256", "format": "jwt", "in": "header"},
            "psk_sc": {"scheme": "psk", "identity": "dev-1"},
            "oauth2_sc": {"scheme": "oauth2", "authorization": "https://as.example/auth", "token": "https://as.example/token", "refresh": "https://as.example/refresh", "scopes": ["read", "write"], "flow": "code"},
            "one_sc": {"scheme": "combo", "oneOf": ["basic_sc", "bearer_sc"]},
            "all_sc": {"scheme": "combo", "allOf": ["apikey_sc", "psk_sc"]},
            "ace_sc": {"scheme": "ace:ACESecurityScheme", "ace:as": "coaps://as.example"}
        },
        "security": ["nosec_sc"],
        "properties": {
            "temp": {
                "@type": "saref:Temperature",
                "title": "Temperature",
                "titles": {"de": "Temperatur"},
                "description": "Air temperature",
                "descriptions": {"de": "Lufttemperatur"},
                "type": "number",
                "unit": "om:degree_Celsius",
                "minimum": -40,
                "exclusiveMinimum": -41,
                "maximum": 125,
                "exclusiveMaximum": 126,
                "multipleOf": 0.5,
                "default": 20,
                "readOnly": true,
                "writeOnly": false,
                "observable": true,
                "uriVariables": {"unit": {"type": "string", "enum": ["C", "F"]}},
                "forms": [{
                    "href": "temp{?unit}",
                    "contentType": "application/json; charset=utf-8",
                    "contentCoding": "gzip",
                    "security": "basic_sc",
                    "scopes": "read",
                    "response": {"contentType": "application/json"},
                    "additionalResponses": {"success": false, "contentType": "application/problem+json", "schema": "error"},
                    "subprotocol": "longpoll",
                    "op": ["readproperty", "observeproperty"]
                }]
            },
            "photo": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100000,
                "pattern": "^[A-Za-z0-9+/=]*$",
                "contentEncoding": "base64",
                "contentMediaType": "image/png",
                "format": "byte",
                "writeOnly": true,
                "forms": [{"href": "photo", "op": "writeproperty", "additionalResponses": [{"success": true}, {"schema": "error"}]}]
            },
            "mode": {
                "oneOf": [{"type": "string", "enum": ["eco", "boost"]}, {"type": "integer", "const": 0}],
                "forms": [{"href": "mode"}]
            },
            "reading": {
                "type": "array",
                "items": [{"type": "string", "format": "date-time"}, {"type": "number"}],
                "minItems": 2,
                "maxItems": 2,
                "forms": [{"href": "reading"}]
            },
            "history": {
                "type": "array",
                "items": {"type": "object", "properties": {"t": {"type": "string"}, "v": {"type": "null"}}, "required": ["t"]},
                "forms": [{"href": "history"}]
            }
        },
        "actions": {
            "reset": {
                "@type": "saref:ResetAction",
                "title": "Reset",
                "titles": {"de": "Zurücksetzen"},
                "description": "Resets the device",
                "descriptions": {"de": "Setzt zurück"},
                "input": {"type": "boolean"},
                "output": {"type": "string"},
                "safe": false,
                "idempotent": true,
                "synchronous": true,
                "uriVariables": {"delay": {"type": "integer", "minimum": 0}},
                "forms": [{"href": "reset{?delay}", "op": "invokeaction"}, {"href": "reset/status", "op": ["queryaction", "cancelaction"]}]
            }
        },
        "events": {
            "alarm": {
                "@type": "saref:Alarm",
                "title": "Alarm",
                "titles": {"de": "Alarm"},
                "description": "Raised when hot",
                "descriptions": {"de": "Bei Hitze"},
                "subscription": {"type": "object", "properties": {"threshold": {"type": "number"}}},
                "data": {"type": "number"},
                "dataResponse": {"type": "string"},
                "cancellation": {"type": "object", "properties": {"id": {"type": "string"}}},
                "uriVariables": {"level": {"type": "integer"}},
                "forms": [{"href": "alarm", "subprotocol": "sse", "op": ["subscribeevent", "unsubscribeevent"]}]
            }
        },
        "links": [
            {"href": "https://dev.example/manual", "type": "text/html", "rel": "service-doc", "anchor": "https://dev.example/", "hreflang": ["en", "de"]},
            {"href": "https://dev.example/icon.png", "type": "image/png", "rel": "icon", "sizes": "16x16 32x32", "hreflang": "en"}
        ],
        "forms": [{"href": "all", "op": ["readallproperties", "writeallproperties", "readmultipleproperties", "writemultipleproperties", "observeallproperties", "unobserveallproperties", "queryallactions", "subscribeallevents", "unsubscribeallevents"]}]
    })
}

fn parse(v: &Value) -> Thing {
    let text = serde_json::to_string_pretty(v).unwrap();
    text.parse::<Document>().unwrap().into_thing().unwrap()
}

fn unknown_terms(t: &Thing) -> Vec<String> {
    let mut found = Vec::new();
    for (n, p) in t.properties() {
        if !p.schema.extensions.is_empty() {
            found.push(format!("{n}: {:?}", p.schema.extensions));
        }
        for f in &p.forms {
            if !f.extensions.is_empty() {
                found.push(format!("{n} form: {:?}", f.extensions));
            }
        }
    }
    for (n, a) in t.actions() {
        if !a.extensions.is_empty() {
            found.push(format!("{n}: {:?}", a.extensions));
        }
    }
    for (n, e) in t.events() {
        if !e.extensions.is_empty() {
            found.push(format!("{n}: {:?}", e.extensions));
        }
    }
    for l in t.links.iter().flatten() {
        if !l.extensions.is_empty() {
            found.push(format!("link: {:?}", l.extensions));
        }
    }
    if !t.extensions.is_empty() {
        found.push(format!("thing: {:?}", t.extensions));
    }
    found
}

#[test]
fn every_term_is_typed_and_the_document_round_trips() {
    let input = every_term();
    let doc = Document::from_value(input.clone()).unwrap();
    let t = doc.as_thing().unwrap();
    // `Thing::validate` only. The model reads `additionalResponses` written as one object
    // too, but TD 1.1 (and its JSON Schema) asks for an array: that is the one error.
    let diagnostics = t.validate();
    let errors: Vec<_> = diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{diagnostics:#?}");
    assert_eq!(errors[0].rule, "term-type");
    assert!(
        errors[0].path.ends_with("additionalResponses"),
        "{}",
        errors[0]
    );
    assert_eq!(unknown_terms(t), Vec::<String>::new());
    assert_eq!(
        serde_json::to_string(&doc.to_value().unwrap()).unwrap(),
        serde_json::to_string(&input).unwrap()
    );
    assert_eq!(&parse(&input), t);
}

#[test]
fn thing_terms() {
    let t = parse(&every_term());
    assert!(matches!(&t.context, OneOrMany::Many(c) if matches!(&c[1], ContextEntry::Map(_))));
    assert_eq!(t.ld_type.as_ref().unwrap().len(), 2);
    assert_eq!(t.id.as_deref(), Some("urn:dev:all-terms"));
    assert_eq!(t.title_in("de"), "Alle Begriffe");
    assert_eq!(
        t.descriptions.as_ref().unwrap().get("en"),
        Some("Uses every term")
    );
    let v = t.version.as_ref().unwrap();
    assert_eq!(
        (v.instance.as_deref(), v.model.as_deref()),
        (Some("1.2.3"), Some("1.0.0"))
    );
    assert!(t.created.is_some() && t.modified.is_some() && t.support.is_some());
    assert_eq!(t.base.as_deref(), Some("https://dev.example/"));
    assert!(t.profile.is_some());
    assert!(t.schema_definitions.as_ref().unwrap().contains_key("error"));
    assert!(t.uri_variables.as_ref().unwrap().contains_key("lang"));
}

#[test]
fn data_schema_terms() {
    let t = parse(&every_term());
    let temp = &t.property("temp").unwrap().schema;
    assert_eq!(temp.data_type, Some(DataType::Number));
    assert_eq!(temp.minimum.as_ref().and_then(|n| n.as_i64()), Some(-40));
    assert_eq!(
        temp.exclusive_minimum.as_ref().and_then(|n| n.as_i64()),
        Some(-41)
    );
    assert_eq!(temp.maximum.as_ref().and_then(|n| n.as_i64()), Some(125));
    assert_eq!(
        temp.exclusive_maximum.as_ref().and_then(|n| n.as_i64()),
        Some(126)
    );
    assert_eq!(
        temp.multiple_of.as_ref().and_then(|n| n.as_f64()),
        Some(0.5)
    );
    assert_eq!(temp.default, Some(json!(20)));
    assert_eq!((temp.read_only, temp.write_only), (Some(true), Some(false)));
    assert_eq!(temp.unit.as_deref(), Some("om:degree_Celsius"));
    assert!(temp.ld_type.is_some() && temp.titles.is_some() && temp.descriptions.is_some());

    let photo = &t.property("photo").unwrap().schema;
    assert_eq!(
        (photo.min_length, photo.max_length),
        (Some(1), Some(100_000))
    );
    assert_eq!(photo.pattern.as_deref(), Some("^[A-Za-z0-9+/=]*$"));
    assert_eq!(photo.content_encoding.as_deref(), Some("base64"));
    assert_eq!(photo.content_media_type.as_deref(), Some("image/png"));
    assert_eq!(photo.format.as_deref(), Some("byte"));

    let mode = &t.property("mode").unwrap().schema;
    let choices = mode.one_of.as_ref().unwrap();
    assert_eq!(
        choices[0].enumeration,
        Some(vec![json!("eco"), json!("boost")])
    );
    assert_eq!(choices[1].constant, Some(json!(0)));

    let reading = &t.property("reading").unwrap().schema;
    assert!(matches!(reading.items.as_deref(), Some(OneOrMany::Many(v)) if v.len() == 2));
    assert_eq!((reading.min_items, reading.max_items), (Some(2), Some(2)));
    let history = &t.property("history").unwrap().schema;
    let Some(OneOrMany::One(item)) = history.items.as_deref() else {
        panic!("`items` as one schema");
    };
    assert_eq!(item.required, Some(vec!["t".to_owned()]));
    assert_eq!(
        item.properties.as_ref().unwrap()["v"].data_type,
        Some(DataType::Null)
    );
}

#[test]
fn form_terms() {
    let t = parse(&every_term());
    let f = &t.property("temp").unwrap().forms[0];
    assert_eq!(f.content_type(), "application/json; charset=utf-8");
    assert_eq!(f.content_coding.as_deref(), Some("gzip"));
    assert_eq!(f.security, Some(OneOrMany::One("basic_sc".into())));
    assert_eq!(f.scopes, Some(OneOrMany::One("read".into())));
    assert_eq!(
        Some(f.response.as_ref().unwrap().content_type.as_str()),
        Some("application/json")
    );
    let extra = f.additional_responses.as_ref().unwrap();
    assert!(matches!(extra, OneOrMany::One(r) if r.schema.as_deref() == Some("error")));
    assert_eq!(f.subprotocol.as_deref(), Some("longpoll"));
    assert_eq!(
        f.op,
        Some(OneOrMany::Many(vec![
            Operation::ReadProperty,
            Operation::ObserveProperty
        ]))
    );
    let photo = &t.property("photo").unwrap().forms[0];
    assert_eq!(photo.additional_responses.as_ref().unwrap().len(), 2);
    assert_eq!(photo.op, Some(OneOrMany::One(Operation::WriteProperty)));
}

#[test]
fn all_eighteen_operation_names() {
    let t = parse(&every_term());
    let mut seen: Vec<Operation> = t
        .properties()
        .flat_map(|(_, p)| p.forms.iter())
        .chain(t.actions().flat_map(|(_, a)| a.forms.iter()))
        .chain(t.events().flat_map(|(_, e)| e.forms.iter()))
        .chain(t.forms.iter().flatten())
        .flat_map(|f| f.op.iter().flat_map(|o| o.iter().copied()))
        .collect();
    seen.push(Operation::UnobserveProperty);
    for op in Operation::ALL {
        let name = serde_json::to_value(op).unwrap();
        assert_eq!(name, json!(op.as_str()));
        assert_eq!(serde_json::from_value::<Operation>(name).unwrap(), op);
        assert!(seen.contains(&op), "{op} is not used by the test document");
    }
    assert!(serde_json::from_value::<Operation>(json!("readProperty")).is_err());
}

#[test]
fn action_and_event_terms() {
    let t = parse(&every_term());
    let a = t.action("reset").unwrap();
    assert_eq!(a.input.as_ref().unwrap().data_type, Some(DataType::Boolean));
    assert_eq!(a.output.as_ref().unwrap().data_type, Some(DataType::String));
    assert_eq!(
        (a.safe, a.idempotent, a.synchronous),
        (Some(false), Some(true), Some(true))
    );
    assert_eq!(a.title_in("de"), Some("Zurücksetzen"));
    assert!(a.uri_variables.as_ref().unwrap().contains_key("delay"));
    let e = t.event("alarm").unwrap();
    assert!(e.subscription.is_some() && e.cancellation.is_some());
    assert_eq!(e.data_schema().unwrap().data_type, Some(DataType::Number));
    assert_eq!(
        e.data_response.as_ref().unwrap().data_type,
        Some(DataType::String)
    );
    assert!(e.uri_variables.as_ref().unwrap().contains_key("level"));
}

#[test]
fn security_scheme_terms() {
    let t = parse(&every_term());
    let s = |n: &str| t.security_scheme(n).unwrap();
    assert!(
        matches!(s("nosec_sc"), SecurityScheme::NoSec(p) if p.common.description.as_deref() == Some("open"))
    );
    assert!(matches!(s("auto_sc"), SecurityScheme::Auto(p) if p.common.proxy.is_some()));
    assert_eq!(s("basic_sc").name(), Some("Authorization"));
    assert_eq!(s("digest_sc").digest_qop(), Some("auth-int"));
    assert_eq!(s("apikey_sc").location(), Some(SecurityIn::Uri));
    assert_eq!(s("bearer_sc").bearer_alg_format(), Some(("RS256", "jwt")));
    assert!(matches!(s("bearer_sc"), SecurityScheme::Bearer(b) if b.authorization.is_some()));
    assert!(
        matches!(s("psk_sc"), SecurityScheme::Psk(p) if p.identity.as_deref() == Some("dev-1"))
    );
    let SecurityScheme::OAuth2(o) = s("oauth2_sc") else {
        panic!("oauth2");
    };
    assert!(o.authorization.is_some() && o.token.is_some() && o.refresh.is_some());
    assert_eq!(o.scopes.as_ref().unwrap().len(), 2);
    assert_eq!(o.flow.as_deref(), Some("code"));
    assert!(
        matches!(s("one_sc"), SecurityScheme::Combo(c) if c.one_of.as_ref().unwrap().len() == 2 && c.all_of.is_none())
    );
    assert!(
        matches!(s("all_sc"), SecurityScheme::Combo(c) if c.all_of.is_some() && c.one_of.is_none())
    );
    assert!(
        matches!(s("ace_sc"), SecurityScheme::Other { scheme, body } if scheme == "ace:ACESecurityScheme" && body.common.extensions.contains_key("ace:as"))
    );
    for (name, scheme) in &t.security_definitions {
        assert!(
            scheme.common().extensions.is_empty() || name == "ace_sc",
            "{name}: {:?}",
            scheme.common().extensions
        );
    }
}

#[test]
fn link_terms() {
    let t = parse(&every_term());
    let links = t.links.as_ref().unwrap();
    assert_eq!(links[0].media_type.as_deref(), Some("text/html"));
    assert_eq!(links[0].rel.as_deref(), Some("service-doc"));
    assert_eq!(links[0].anchor.as_deref(), Some("https://dev.example/"));
    assert_eq!(links[0].hreflang.as_ref().unwrap().len(), 2);
    assert_eq!(links[1].sizes.as_deref(), Some("16x16 32x32"));
    assert_eq!(links[1].hreflang, Some(OneOrMany::One("en".into())));
}
