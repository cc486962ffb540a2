//! One test case per validation rule: a minimal document that breaks it, the rule id,
//! the JSON path and the severity reported.

use serde_json::{Value, json};
use wot_td::{DataSchema, DataType, Document, OneOrMany, Severity, ThingModel};

fn base() -> Value {
    json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "title": "T",
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {"p": {"type": "string", "forms": [{"href": "http://t/p"}]}}
    })
}

fn with(patch: Value) -> Value {
    let mut v = base();
    merge(&mut v, patch);
    v
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(&k) {
                    Some(existing) if v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, p) => *t = p,
    }
}

#[track_caller]
fn expect(doc: Value, rule: &str, path: &str, severity: Severity) {
    let doc = Document::from_value(doc).unwrap();
    let diags = doc.validate();
    assert!(
        diags
            .iter()
            .any(|d| d.rule == rule && d.path == path && d.severity == severity),
        "expected {severity} {rule} at `{path}`, got {diags:#?}"
    );
}

use Severity::{Error, Warning};

#[test]
fn the_base_document_is_clean() {
    assert_eq!(Document::from_value(base()).unwrap().validate(), []);
}

#[test]
fn thing_level_rules() {
    expect(
        with(json!({"@context": "https://example.com/ctx"})),
        "context",
        "@context",
        Error,
    );
    expect(with(json!({"id": "not a uri"})), "id-uri", "id", Warning);
    expect(
        with(json!({"base": "relative/"})),
        "base-uri",
        "base",
        Warning,
    );
    expect(
        with(json!({"version": {"model": "1"}})),
        "version-instance",
        "version",
        Error,
    );
    expect(
        with(json!({"schemaDefinitions": {}})),
        "schema-definitions-empty",
        "schemaDefinitions",
        Error,
    );
    expect(with(json!({"forms": []})), "forms-empty", "forms", Error);
    expect(
        with(json!({"forms": [{"href": "http://t/all"}]})),
        "op-required",
        "forms[0]",
        Error,
    );
    expect(
        with(json!({"forms": [{"href": "http://t/all", "op": "readproperty"}]})),
        "op-kind",
        "forms[0].op",
        Error,
    );
}

#[test]
fn security_rules() {
    let mut no_definitions = base();
    no_definitions["securityDefinitions"] = json!({});
    expect(
        no_definitions,
        "security-definitions-empty",
        "securityDefinitions",
        Error,
    );
    expect(
        with(json!({"security": []})),
        "security-empty",
        "security",
        Error,
    );
    expect(
        with(json!({"security": ["nosec_sc", "x"]})),
        "security-undefined",
        "security[1]",
        Error,
    );
    expect(
        with(json!({"properties": {"p": {"forms": [{"href": "http://t/p", "security": "x"}]}}})),
        "security-undefined",
        "properties.p.forms[0].security",
        Error,
    );
    expect(
        with(json!({"securityDefinitions": {"s": {"scheme": "magic"}}})),
        "scheme-unknown",
        "securityDefinitions.s.scheme",
        Error,
    );
    let combo = |c: Value| with(json!({"securityDefinitions": {"a": {"scheme": "basic"}, "c": c}}));
    expect(
        combo(json!({"scheme": "combo"})),
        "combo",
        "securityDefinitions.c",
        Error,
    );
    expect(
        combo(json!({"scheme": "combo", "oneOf": ["a", "nosec_sc"], "allOf": ["a", "nosec_sc"]})),
        "combo",
        "securityDefinitions.c",
        Error,
    );
    expect(
        combo(json!({"scheme": "combo", "allOf": ["a"]})),
        "combo",
        "securityDefinitions.c.allOf",
        Error,
    );
    expect(
        combo(json!({"scheme": "combo", "oneOf": ["a", "zz"]})),
        "security-undefined",
        "securityDefinitions.c.oneOf[1]",
        Error,
    );
    expect(
        combo(json!({"scheme": "combo", "oneOf": ["a", "c"]})),
        "combo",
        "securityDefinitions.c.oneOf[1]",
        Error,
    );
    expect(
        with(json!({"securityDefinitions": {"o": {"scheme": "oauth2", "flow": "device"}}})),
        "oauth2-flow",
        "securityDefinitions.o.flow",
        Warning,
    );
}

#[test]
fn link_rules() {
    let link = |l: Value| with(json!({"links": l}));
    let type_link = json!({"rel": "type", "href": "http://m/tm", "type": "application/tm+json"});
    expect(
        link(json!([type_link.clone(), type_link.clone()])),
        "link-rel-type",
        "links[1].rel",
        Error,
    );
    expect(
        link(json!([type_link])),
        "tm-unchecked",
        "links[0]",
        Warning,
    );
    expect(
        link(json!([{"rel": "icon", "href": "http://i", "sizes": "big"}])),
        "link-sizes",
        "links[0].sizes",
        Error,
    );
    expect(
        link(json!([{"href": "http://i", "sizes": "16x16"}])),
        "link-sizes",
        "links[0].sizes",
        Error,
    );
    expect(
        link(json!([{"rel": "tm:extends", "href": "http://m"}])),
        "link-tm-extends",
        "links[0].rel",
        Error,
    );
}

#[test]
fn form_rules() {
    let form = |f: Value| with(json!({"properties": {"p": {"type": "string", "forms": [f]}}}));
    expect(
        with(json!({"properties": {"p": {"forms": []}}})),
        "forms-empty",
        "properties.p.forms",
        Error,
    );
    expect(
        form(json!({"href": "http://t/p", "op": []})),
        "op-empty",
        "properties.p.forms[0].op",
        Error,
    );
    expect(
        form(json!({"href": "http://t/p", "op": ["readproperty", "invokeaction"]})),
        "op-kind",
        "properties.p.forms[0].op[1]",
        Error,
    );
    expect(
        form(json!({"href": "http://t/p", "op": "observeproperty"})),
        "observe-not-observable",
        "properties.p.forms[0]",
        Warning,
    );
    expect(
        form(json!({"href": ""})),
        "href-empty",
        "properties.p.forms[0].href",
        Warning,
    );
    expect(
        form(json!({"href": "http://t/{id"})),
        "href-template",
        "properties.p.forms[0].href",
        Error,
    );
    expect(
        form(json!({"href": "http://[::1"})),
        "href-uri",
        "properties.p.forms[0].href",
        Error,
    );
    expect(
        form(json!({"href": "http://t/p", "additionalResponses": [{}]})),
        "additional-response-empty",
        "properties.p.forms[0].additionalResponses[0]",
        Warning,
    );
    expect(
        form(json!({"href": "http://t/p", "additionalResponses": {"schema": "nope"}})),
        "schema-undefined",
        "properties.p.forms[0].additionalResponses.schema",
        Error,
    );
    expect(
        form(json!({"href": "http://t/p", "additionalResponses": {"success": false}})),
        "term-type",
        "properties.p.forms[0].additionalResponses",
        Error,
    );
    // A protocol term such as `htv:statusCodeValue` tells a response apart.
    let told_apart =
        form(json!({"href": "http://t/p", "additionalResponses": [{"htv:statusCodeValue": 404}]}));
    assert_eq!(Document::from_value(told_apart).unwrap().validate(), []);
    expect(
        with(json!({"actions": {"a": {"forms": [{"href": "http://t/a", "op": "readproperty"}]}}})),
        "op-kind",
        "actions.a.forms[0].op",
        Error,
    );
    expect(
        with(json!({"events": {"e": {"forms": [{"href": "http://t/e", "op": ["invokeaction"]}]}}})),
        "op-kind",
        "events.e.forms[0].op[0]",
        Error,
    );
}

#[test]
fn data_schema_rules() {
    let prop = |s: Value| {
        let mut s = s;
        s["forms"] = json!([{"href": "http://t/p"}]);
        with(json!({"properties": {"p": s}}))
    };
    expect(
        prop(json!({"readOnly": true, "writeOnly": true})),
        "read-write-only",
        "properties.p",
        Error,
    );
    expect(
        prop(json!({"enum": []})),
        "enum-empty",
        "properties.p.enum",
        Error,
    );
    expect(
        prop(json!({"enum": [1, 2, 1.0]})),
        "enum-duplicate",
        "properties.p.enum[2]",
        Error,
    );
    expect(
        prop(json!({"type": "integer", "enum": [1, "two"]})),
        "enum-type",
        "properties.p.enum[1]",
        Error,
    );
    expect(
        prop(json!({"type": "integer", "const": 1.5})),
        "const-type",
        "properties.p.const",
        Error,
    );
    expect(
        prop(json!({"type": "integer", "minimum": 0, "default": -1})),
        "default-type",
        "properties.p.default",
        Warning,
    );
    expect(
        prop(json!({"minimum": 5, "maximum": 1})),
        "range",
        "properties.p",
        Error,
    );
    expect(
        prop(json!({"multipleOf": 0})),
        "multiple-of",
        "properties.p.multipleOf",
        Error,
    );
    expect(
        prop(json!({"minLength": 5, "maxLength": 1})),
        "length-range",
        "properties.p",
        Error,
    );
    expect(
        prop(json!({"minItems": 5, "maxItems": 1})),
        "items-range",
        "properties.p",
        Error,
    );
    expect(
        prop(json!({"pattern": "(unclosed"})),
        "pattern",
        "properties.p.pattern",
        Error,
    );
    expect(
        prop(json!({"type": "array"})),
        "array-no-items",
        "properties.p",
        Warning,
    );
    expect(
        prop(json!({"type": "object"})),
        "object-no-properties",
        "properties.p",
        Warning,
    );
    expect(
        prop(json!({"type": "object", "properties": {"a": {}}, "required": ["a", "a"]})),
        "required-duplicate",
        "properties.p.required[1]",
        Error,
    );
    expect(
        prop(json!({"type": "object", "properties": {"a": {}}, "required": ["b"]})),
        "required-unknown",
        "properties.p.required[0]",
        Warning,
    );
    expect(
        prop(json!({"oneOf": []})),
        "one-of-empty",
        "properties.p.oneOf",
        Error,
    );
    // Nested schemas are checked with their full path.
    expect(
        with(
            json!({"actions": {"a": {"input": {"type": "object", "properties": {"v": {"type": "array", "items": [{"enum": []}]}}}, "forms": [{"href": "http://t/a"}]}}}),
        ),
        "enum-empty",
        "actions.a.input.properties.v.items[0].enum",
        Error,
    );
    expect(
        with(json!({"uriVariables": {"q": {"type": "object", "properties": {}}}})),
        "uri-variable-type",
        "uriVariables.q",
        Warning,
    );
}

#[test]
fn schemas_built_deeper_than_the_limit_are_reported() {
    let mut schema = DataSchema::of_type(DataType::Number);
    for _ in 0..(wot_td::MAX_DEPTH + 5) {
        schema = DataSchema {
            data_type: Some(DataType::Array),
            items: Some(Box::new(OneOrMany::One(schema))),
            ..DataSchema::default()
        };
    }
    let mut thing = Document::from_value(base()).unwrap().into_thing().unwrap();
    thing.schema_definitions = Some([("deep".to_owned(), schema)].into_iter().collect());
    let diags = thing.validate();
    assert!(diags.iter().any(|d| d.rule == "schema-depth"), "{diags:#?}");
}

#[track_caller]
fn expect_tm(json: Value, rule: &str, path: &str, severity: Severity) {
    let model = ThingModel {
        json: json.as_object().unwrap().clone(),
    };
    let diags = model.validate();
    assert!(
        diags
            .iter()
            .any(|d| d.rule == rule && d.path == path && d.severity == severity),
        "expected {severity} {rule} at `{path}`, got {diags:#?}"
    );
}

#[test]
fn thing_model_rules() {
    let ctx = "https://www.w3.org/2022/wot/td/v1.1";
    expect_tm(
        json!({"@type": "tm:ThingModel"}),
        "context",
        "@context",
        Error,
    );
    expect_tm(json!({"@context": ctx}), "tm-type", "@type", Error);
    let tm = |extra: Value| {
        let mut v =
            json!({"@context": [ctx], "@type": "tm:ThingModel", "properties": {"status": {}}});
        merge(&mut v, extra);
        v
    };
    expect_tm(
        tm(json!({"tm:optional": ["/properties/status/type"]})),
        "tm-optional",
        "tm:optional[0]",
        Error,
    );
    expect_tm(
        tm(json!({"tm:optional": ["/things/x"]})),
        "tm-optional",
        "tm:optional[0]",
        Error,
    );
    expect_tm(
        tm(json!({"tm:optional": "/properties/status"})),
        "tm-optional",
        "tm:optional",
        Error,
    );
    expect_tm(
        tm(json!({"tm:optional": ["/events/none"]})),
        "tm-optional",
        "tm:optional[0]",
        Warning,
    );
    expect_tm(
        tm(json!({"securityDefinitions": {"s": {"scheme": "{X}"}}})),
        "scheme-unknown",
        "securityDefinitions.s.scheme",
        Error,
    );
    expect_tm(
        tm(json!({"version": {"instance": "1"}})),
        "tm-version-instance",
        "version.instance",
        Error,
    );
    expect_tm(
        tm(json!({"links": [{"rel": "tm:extends", "href": "http://m"}]})),
        "tm-extends-unchecked",
        "links[0]",
        Warning,
    );
    let ok = ThingModel {
        json: tm(json!({"securityDefinitions": {"s": {"scheme": "{{SCHEME}}"}}, "tm:optional": ["/properties/status"]}))
            .as_object()
            .unwrap()
            .clone(),
    };
    assert_eq!(ok.validate(), []);
}

#[test]
fn resolver_detects_extends_cycles() {
    let ctx = "https://www.w3.org/2022/wot/td/v1.1";
    let model = |parent: &str| ThingModel {
        json: json!({"@context": ctx, "@type": "tm:ThingModel",
            "links": [{"rel": "tm:extends", "href": parent, "type": "application/tm+json"}]})
        .as_object()
        .unwrap()
        .clone(),
    };
    let resolver = |href: &str| match href {
        "http://m/a" => Some(model("http://m/b")),
        "http://m/b" => Some(model("http://m/a")),
        _ => None,
    };
    let doc = Document::from(model("http://m/a"));
    let diags = doc.validate_with(&resolver);
    assert!(
        diags
            .iter()
            .any(|d| d.is_error() && d.message.contains("cycle")),
        "{diags:#?}"
    );
}

/// A huge `enum` next to a huge `oneOf` would take enum × oneOf steps to check; the
/// validator stops at its budget with one warning instead of running for minutes, and
/// reports no false `enum-type` errors for the values it could not finish.
#[test]
fn enum_checks_stop_at_a_budget() {
    let n = 3_000;
    let values: Vec<Value> = (0..n).map(|i| json!(i)).collect();
    let choices: Vec<Value> = (0..n).map(|i| json!({"const": i})).collect();
    let doc = with(json!({"properties": {"p": {
        "type": "integer", "enum": values, "oneOf": choices, "forms": [{"href": "http://t/p"}]
    }}}));
    let started = std::time::Instant::now();
    let diags = Document::from_value(doc).unwrap().validate();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert!(
        diags
            .iter()
            .any(|d| d.rule == "check-budget" && d.severity == Warning && d.path.is_empty()),
        "{diags:#?}"
    );
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
}

#[test]
fn patterns_past_the_compile_budget_are_one_error() {
    use wot_td::ValidationLimits;
    let mut properties = serde_json::Map::new();
    for i in 0..5 {
        properties.insert(
            format!("p{i}"),
            json!({"type": "string", "pattern": format!("^x{i}$"), "forms": [{"href": "http://t/p"}]}),
        );
    }
    let doc = Document::from_value(json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "T",
        "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n",
        "properties": properties,
    }))
    .unwrap();
    assert!(doc.validate().is_empty());
    let limits = ValidationLimits {
        regex_budget: 1,
        ..ValidationLimits::default()
    };
    let diagnostics = doc.validate_with_limits(&limits);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert_eq!(diagnostics[0].rule, "pattern-budget");
    assert_eq!(diagnostics[0].path, "properties.p0.pattern");
    assert!(diagnostics[0].is_error());
    assert!(
        diagnostics[0].message.contains("nor 4 later ones"),
        "{}",
        diagnostics[0].message
    );
}

/// docs/td.md lists every rule code (the `--json` output's `rule` values), and every code
/// parses back into its rule.
#[test]
fn the_guide_lists_every_rule_code() {
    let guide = include_str!("../../docs/td.md");
    let table = &guide[guide.find("## Rules").unwrap()..];
    for rule in wot_td::Rule::ALL {
        let code = rule.as_str();
        assert!(
            table.contains(&format!("`{code}`")),
            "docs/td.md does not list `{code}`"
        );
        assert_eq!(code.parse::<wot_td::Rule>(), Ok(*rule));
        assert_eq!(serde_json::to_value(rule).unwrap(), code);
    }
}
