//! Thing Models made into Thing Descriptions: the corpus models, models of our own
//! that extend and refer to each other (`tests/models/`), and hostile model graphs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path};

use serde_json::{Value, json};
use wot_td::{
    Document, InstantiateError, InstantiateErrorKind, InstantiateLimits, Instantiation, LoadError,
    ModelLoader, ThingModel,
};

const CORPUS_TM: &str = "../../shared/td-corpus/tm/valid";
const MODELS: &str = "tests/models";

/// A loader that reads models from files below `dir`: `href` must be a relative path
/// made of plain names (no scheme, no absolute path, no `..`, no backslash), and the
/// file it names must still be below `dir` once symlinks are followed. Reads at most
/// `max_bytes + 1` bytes, so a longer file is rejected by the caller's limit.
fn dir_loader(dir: &Path) -> impl Fn(&str, u64) -> Result<Vec<u8>, LoadError> + '_ {
    move |href: &str, max_bytes: u64| {
        let relative = Path::new(href);
        let plain = !href.is_empty()
            && !href.contains(['\\', ':', '?', '#'])
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(
                format!("`{href}` is not a relative path below the model directory").into(),
            );
        }
        let root = dir.canonicalize()?;
        let path = root.join(relative).canonicalize()?;
        if !path.starts_with(&root) {
            return Err(format!("`{href}` leaves the model directory").into());
        }
        let mut bytes = Vec::new();
        File::open(&path)?
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    }
}

/// A loader over models held in memory, counting the loads of each href.
struct MemoryLoader {
    models: HashMap<String, Vec<u8>>,
    loads: RefCell<HashMap<String, usize>>,
}

impl MemoryLoader {
    fn new(models: impl IntoIterator<Item = (String, Value)>) -> Self {
        MemoryLoader {
            models: models
                .into_iter()
                .map(|(k, v)| (k, serde_json::to_vec(&v).unwrap()))
                .collect(),
            loads: RefCell::default(),
        }
    }
}

impl ModelLoader for MemoryLoader {
    fn load(&self, href: &str, _max_bytes: u64) -> Result<Vec<u8>, LoadError> {
        *self.loads.borrow_mut().entry(href.to_owned()).or_default() += 1;
        self.models
            .get(href)
            .cloned()
            .ok_or_else(|| format!("no model at `{href}`").into())
    }
}

fn read_model(path: impl AsRef<Path>) -> ThingModel {
    let bytes = std::fs::read(path.as_ref()).unwrap();
    Document::from_slice(&bytes)
        .unwrap()
        .into_thing_model()
        .unwrap_or_else(|| panic!("{} is not a Thing Model", path.as_ref().display()))
}

fn model(value: Value) -> ThingModel {
    Document::from_value(value)
        .unwrap()
        .into_thing_model()
        .expect("a Thing Model")
}

fn tm(extra: Value) -> Value {
    let mut base = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "@type": "tm:ThingModel",
        "title": "T"
    });
    base.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    base
}

fn no_loader() -> impl Fn(&str, u64) -> Result<Vec<u8>, LoadError> {
    |href: &str, _: u64| Err(format!("nothing is loaded here (`{href}`)").into())
}

fn errors(doc: &Document) -> Vec<String> {
    doc.validate()
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect()
}

/// The lamp values that every placeholder of `tests/models/lamp.tm.json` needs.
fn lamp_values() -> Instantiation {
    Instantiation::new()
        .location("lamp.tm.json")
        .set("NUMBER", 3)
        .set("ROOM", "the hall")
        .set("DEVICE_ID", "lamp-3")
        .set("HOST", "192.0.2.3")
        .set("OBSERVABLE", true)
        .set("MAX_DIM", 100)
}

fn contains_tm_term(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| k.starts_with("tm:") || contains_tm_term(v)),
        Value::Array(a) => a.iter().any(contains_tm_term),
        Value::String(s) => s.starts_with("tm:"),
        _ => false,
    }
}

// ---------------------------------------------------------------- models of our own

#[test]
fn a_model_extending_two_models_that_share_a_parent_becomes_a_valid_td() {
    let dir = Path::new(MODELS);
    let loads = RefCell::new(Vec::new());
    let files = dir_loader(dir);
    let loader = |href: &str, max: u64| {
        loads.borrow_mut().push(href.to_owned());
        files(href, max)
    };
    let lamp = read_model(dir.join("lamp.tm.json"));
    let td = lamp.instantiate(&lamp_values(), &loader).unwrap();
    assert_eq!(errors(&td), Vec::<String>::new());

    // The diamond's shared parent is loaded once; relative hrefs of the model in
    // `sub/` resolve against `sub/`.
    let mut loaded = loads.borrow().clone();
    loaded.sort();
    assert_eq!(
        loaded,
        [
            "device.tm.json",
            "dimmer.tm.json",
            "onoff.tm.json",
            "sub/levels.tm.json"
        ]
    );

    let json = td.to_value().unwrap();
    assert!(!contains_tm_term(&json), "{json:#}");
    assert_eq!(json["title"], "Lamp 3 in the hall");
    assert_eq!(json["id"], "urn:example:device:lamp-3");
    assert_eq!(json["base"], "http://192.0.2.3/");
    assert_eq!(json["@type"], "saref:Switch");
    assert_eq!(
        json["@context"],
        json!(["https://www.w3.org/2022/wot/td/v1.1", {"saref": "https://w3id.org/saref#"}])
    );
    assert_eq!(
        json["version"],
        json!({"model": "2.1.0", "instance": "2.1.0"})
    );
    assert_eq!(
        json["links"],
        json!([
            {"rel": "manifest", "href": "https://vendor.example/manual.pdf"},
            {"rel": "type", "href": "lamp.tm.json", "type": "application/tm+json"}
        ])
    );
    assert_eq!(json["securityDefinitions"]["basic_sc"]["scheme"], "basic");

    let props = json["properties"].as_object().unwrap();
    let names: Vec<&str> = props.keys().map(String::as_str).collect();
    assert_eq!(names, ["name", "onOff", "dim", "status", "brightness"]);
    // Whole-string placeholders take the type of their value.
    assert_eq!(props["onOff"]["observable"], json!(true));
    assert_eq!(props["dim"]["maximum"], json!(100));
    // `#/properties/onOff` points at the property inherited from onoff.tm.json; the
    // members beside `tm:ref` patch it (`null` removes).
    assert_eq!(
        props["status"],
        json!({"type": "boolean", "forms": [{"href": "status"}], "readOnly": true})
    );
    // Two hops: lamp -> sub/levels -> ../dimmer, each patching the definition.
    assert_eq!(
        props["brightness"],
        json!({
            "type": "integer", "minimum": 0, "maximum": 80, "unit": "%",
            "forms": [{"href": "brightness"}], "description": "Brightness in percent"
        })
    );
    // The optional event is dropped, so its placeholder needs no value.
    assert!(json.get("events").is_none());
    assert!(json["actions"].get("toggle").is_some());
}

#[test]
fn optional_affordances_are_dropped_unless_kept() {
    let dir = Path::new(MODELS);
    let lamp = read_model(dir.join("lamp.tm.json"));
    let loader = dir_loader(dir);

    // Kept, the event's own placeholder must now have a value.
    let err = lamp
        .instantiate(&lamp_values().keep_optional("/events/overheating"), &loader)
        .unwrap_err();
    let InstantiateErrorKind::MissingPlaceholders(missing) = err.kind() else {
        panic!("{err}");
    };
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].name, "TEMPERATURE_UNIT");
    assert_eq!(missing[0].paths, ["events.overheating.data.unit"]);

    let td = lamp
        .instantiate(
            &lamp_values()
                .keep_optional("/events/overheating")
                .set("TEMPERATURE_UNIT", "°C"),
            &loader,
        )
        .unwrap();
    assert_eq!(errors(&td), Vec::<String>::new());
    assert_eq!(
        td.to_value().unwrap()["events"]["overheating"]["data"]["unit"],
        "°C"
    );

    let all = lamp
        .instantiate(
            &lamp_values()
                .keep_all_optional()
                .set("TEMPERATURE_UNIT", "K"),
            &loader,
        )
        .unwrap();
    assert!(
        all.as_thing()
            .unwrap()
            .events
            .as_ref()
            .unwrap()
            .contains_key("overheating")
    );

    // Keeping what the model does not have is a mistake, not a no-op.
    let err = lamp
        .instantiate(&lamp_values().keep_optional("/events/overheated"), &loader)
        .unwrap_err();
    assert!(
        matches!(err.kind(), InstantiateErrorKind::UnknownAffordance { pointers } if pointers == &["/events/overheated"]),
        "{err}"
    );
}

/// TD 1.1 §9.3.4: a child that defines an optional affordance of its parent again
/// makes it mandatory.
#[test]
fn a_child_that_redefines_an_optional_affordance_makes_it_mandatory() {
    let dir = Path::new(MODELS);
    let child = read_model(dir.join("lamp-all-mandatory.tm.json"));
    let how = Instantiation::new()
        .location("lamp-all-mandatory.tm.json")
        .set("DEVICE_ID", "d1")
        .set("HOST", "192.0.2.4")
        .set("MAX_DIM", 100)
        .set("TEMPERATURE_UNIT", "K");
    let td = child.instantiate(&how, &dir_loader(dir)).unwrap();
    assert_eq!(errors(&td), Vec::<String>::new());
    let json = td.to_value().unwrap();
    assert_eq!(json["events"]["overheating"]["data"]["unit"], "K");
    assert_eq!(json["title"], "Dimmer with overheating always present");
}

#[test]
fn references_into_the_same_model_copy_and_patch_the_definition() {
    let dir = Path::new(MODELS);
    let sensor = read_model(dir.join("multi-sensor.tm.json"));
    let td = sensor
        .instantiate(&Instantiation::new(), &no_loader())
        .unwrap();
    assert_eq!(errors(&td), Vec::<String>::new());
    let json = td.to_value().unwrap();
    // The generic definition is optional and dropped; the copies stay.
    let props = json["properties"].as_object().unwrap();
    assert_eq!(
        props.keys().collect::<Vec<_>>(),
        ["innerTemperature", "outerTemperature"]
    );
    assert_eq!(
        props["innerTemperature"],
        json!({"type": "number", "unit": "C", "forms": [{"href": "inner"}],
               "title": "The inner temperature", "minimum": 10})
    );
    assert_eq!(props["outerTemperature"]["unit"], "K");
    // No location: no `rel: "type"` link.
    assert!(json.get("links").is_none());

    let kept = sensor
        .instantiate(
            &Instantiation::new().keep_optional("/properties/genericTemperature"),
            &no_loader(),
        )
        .unwrap();
    assert!(
        kept.as_thing()
            .unwrap()
            .property("genericTemperature")
            .is_some()
    );
}

#[test]
fn placeholders_become_values_of_their_type_or_text() {
    let m = model(tm(json!({
        "title": "Sensor {{N}} ({{FLAG}}, {{RATIO}})",
        "securityDefinitions": {"sc": {"scheme": "{{SCHEME}}"}},
        "security": "sc",
        "properties": {
            "p": {
                "type": "number",
                "minimum": "{{MIN}}",
                "readOnly": "{{RO}}",
                "const": "{{ANY}}",
                "description": "{{N}}",
                "forms": [{"href": "http://{{HOST}}/p{{N}}"}]
            }
        }
    })));
    let how = Instantiation::new()
        .set("N", 7)
        .set("FLAG", false)
        .set("RATIO", 0.5)
        .set("SCHEME", "nosec")
        .set("MIN", -2.5)
        .set("RO", true)
        .set("ANY", json!({"nested": ["{{NOT_SCANNED}}"]}))
        .set("HOST", "192.0.2.1:8080")
        .set("UNUSED", 1);
    let json = m.instantiate_value(&how, &no_loader()).unwrap();
    assert_eq!(json["title"], "Sensor 7 (false, 0.5)");
    assert_eq!(json["securityDefinitions"]["sc"]["scheme"], "nosec");
    let p = &json["properties"]["p"];
    assert_eq!(p["minimum"], json!(-2.5));
    assert_eq!(p["readOnly"], json!(true));
    // A substituted value is not searched for placeholders again.
    assert_eq!(p["const"], json!({"nested": ["{{NOT_SCANNED}}"]}));
    // A string that is exactly one placeholder takes the value's own type.
    assert_eq!(p["description"], json!(7));
    assert_eq!(p["forms"][0]["href"], "http://192.0.2.1:8080/p7");
}

#[test]
fn every_missing_placeholder_is_named_with_its_places_in_one_error() {
    let m = model(tm(json!({
        "title": "{{A}} and {{B}}",
        "description": "{{A}}",
        "properties": {"x y": {"type": "number", "maximum": "{{C}}"}},
        "links": [{"href": "{{B}}"}]
    })));
    let err = m
        .instantiate(&Instantiation::new().set("B", "b"), &no_loader())
        .unwrap_err();
    let InstantiateErrorKind::MissingPlaceholders(missing) = err.kind() else {
        panic!("{err}");
    };
    let summary: Vec<(&str, Vec<&str>)> = missing
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.paths.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("A", vec!["title", "description"]),
            ("C", vec![r#"properties["x y"].maximum"#]),
        ]
    );
    let text = err.to_string();
    assert!(text.contains("{{A}}") && text.contains("{{C}}"), "{text}");
}

#[test]
fn a_placeholder_inside_text_needs_a_text_value() {
    let m = model(tm(json!({"title": "Room {{ROOM}}"})));
    let err = m
        .instantiate_value(
            &Instantiation::new().set("ROOM", json!({"no": 1})),
            &no_loader(),
        )
        .unwrap_err();
    assert!(
        matches!(err.kind(), InstantiateErrorKind::PlaceholderNotText { name } if name == "ROOM"),
        "{err}"
    );
    assert_eq!(err.pointer(), "title");
}

#[test]
fn tm_required_entries_must_exist_and_are_never_dropped() {
    let m = model(tm(json!({
        "tm:optional": ["/properties/a", "/properties/b"],
        "tm:required": ["/properties/a"],
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}}
    })));
    let json = m
        .instantiate_value(&Instantiation::new(), &no_loader())
        .unwrap();
    assert!(json["properties"].get("a").is_some());
    assert!(json["properties"].get("b").is_none());
    assert!(json.get("tm:required").is_none());

    let m = model(tm(json!({
        "tm:required": ["/properties/a", "/actions/missing"],
        "properties": {"a": {"type": "string"}}
    })));
    let err = m
        .instantiate_value(&Instantiation::new(), &no_loader())
        .unwrap_err();
    assert!(
        matches!(err.kind(), InstantiateErrorKind::RequiredMissing { pointer } if pointer == "/actions/missing"),
        "{err}"
    );
    assert_eq!(err.pointer(), "/tm:required/1");
}

#[test]
fn relative_hrefs_resolve_against_a_url_location() {
    let loader = MemoryLoader::new([
        (
            "https://models.example/base/common.tm.json".to_owned(),
            tm(json!({"properties": {"on": {"type": "boolean"}}})),
        ),
        (
            "https://models.example/lib/units.tm.json".to_owned(),
            tm(json!({"properties": {"celsius": {"type": "number", "unit": "°C"}}})),
        ),
    ]);
    let m = model(tm(json!({
        "links": [{"rel": "tm:extends", "href": "common.tm.json"}],
        "properties": {"t": {"tm:ref": "../lib/units.tm.json#/properties/celsius"}}
    })));
    let json = m
        .instantiate_value(
            &Instantiation::new().location("https://models.example/base/sensor.tm.json"),
            &loader,
        )
        .unwrap();
    assert_eq!(json["properties"]["on"]["type"], "boolean");
    assert_eq!(json["properties"]["t"]["unit"], "°C");
    assert_eq!(
        json["links"][0]["href"],
        "https://models.example/base/sensor.tm.json"
    );
}

// -------------------------------------------------------------------- the corpus

/// The corpus models, with the hrefs they name served from the corpus files that
/// match them (the spec examples they come from).
fn corpus_loader() -> impl Fn(&str, u64) -> Result<Vec<u8>, LoadError> {
    move |href: &str, _: u64| {
        let file = match href {
            "http://example.com/BasicOnOffTM.tm.jsonld" => "property.json",
            "http://example.com/SmartLampControlwithDimming.tm.jsonld"
            | "http://example.com/SmartControlLampTM" => "extend.json",
            "https://raw.githubusercontent.com/eclipse-thingweb/playground/master/packages/core/examples/tms/valid/version.json" => {
                "version.json"
            }
            _ => return Err(format!("not in the corpus: `{href}`").into()),
        };
        Ok(std::fs::read(Path::new(CORPUS_TM).join(file))?)
    }
}

fn corpus_values() -> Instantiation {
    Instantiation::new()
        .set("THERMOSTATE_NUMBER", 4)
        .set("MQTT_BROKER_ADDRESS", "192.168.178.72:1883")
        .set("THERMOSTATE_TEMPERATURE_MAXIMUM", 47.7)
        .set("THERMOSTATE_TEMPERATURE_OBSERVABLE", true)
        .set(
            "VERSION_INFO",
            json!({"instance": "1.0.1", "model": "2.0.0"}),
        )
        .set("PLACEHOLDER", "basic")
}

/// Adds what a model leaves to the instance: a `nosec` scheme where there is no
/// security, and a form on every affordance without one.
fn complete(mut td: Value) -> Value {
    let map = td.as_object_mut().unwrap();
    if !map.contains_key("security") {
        map.insert(
            "securityDefinitions".into(),
            json!({"nosec_sc": {"scheme": "nosec"}}),
        );
        map.insert("security".into(), json!("nosec_sc"));
    }
    for kind in ["properties", "actions", "events"] {
        if let Some(Value::Object(affordances)) = map.get_mut(kind) {
            for (name, a) in affordances.iter_mut() {
                if a.get("forms").is_none() {
                    a["forms"] = json!([{"href": format!("http://192.0.2.1/{kind}/{name}")}]);
                }
            }
        }
    }
    td
}

#[test]
fn every_corpus_model_instantiates_and_completed_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir(CORPUS_TM).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let m = read_model(&path);
        let json = m
            .instantiate_value(&corpus_values().keep_all_optional(), &corpus_loader())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!contains_tm_term(&json), "{name}: {json:#}");
        let doc = Document::from_value(complete(json));
        match name.as_str() {
            // A TD needs a title; a form needs an href: the model leaves them to the
            // instance and so does `complete`.
            "missing_title.json" | "missingHref.json" => {
                assert!(
                    doc.is_err() || !errors(doc.as_ref().unwrap()).is_empty(),
                    "{name}"
                );
            }
            _ => {
                let doc = doc.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(errors(&doc), Vec::<String>::new(), "{name}");
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 13);
}

#[test]
fn corpus_placeholders_follow_the_spec_example() {
    let m = read_model(Path::new(CORPUS_TM).join("placeholder.json"));
    let json = m.instantiate_value(&corpus_values(), &no_loader()).unwrap();
    assert_eq!(json["title"], "Thermostate No. 4");
    assert_eq!(
        json["version"],
        json!({"instance": "1.0.1", "model": "2.0.0"})
    );
    assert_eq!(json["base"], "mqtt://192.168.178.72:1883");
    assert_eq!(json["properties"]["temperature"]["maximum"], json!(47.7));
    assert_eq!(json["properties"]["temperature"]["observable"], json!(true));
    assert!(json.get("@type").is_none());

    let err = m
        .instantiate_value(&Instantiation::new(), &no_loader())
        .unwrap_err();
    let InstantiateErrorKind::MissingPlaceholders(missing) = err.kind() else {
        panic!("{err}");
    };
    let names: Vec<&str> = missing.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "THERMOSTATE_NUMBER",
            "VERSION_INFO",
            "MQTT_BROKER_ADDRESS",
            "THERMOSTATE_TEMPERATURE_MAXIMUM",
            "THERMOSTATE_TEMPERATURE_OBSERVABLE"
        ]
    );
}

#[test]
fn corpus_references_and_extensions_resolve() {
    let corpus = Path::new(CORPUS_TM);
    let loader = corpus_loader();

    let json = read_model(corpus.join("ref.json"))
        .instantiate_value(&Instantiation::new(), &loader)
        .unwrap();
    assert_eq!(json["properties"]["switch"], json!({"type": "boolean"}));

    let json = read_model(corpus.join("overwrite.json"))
        .instantiate_value(&Instantiation::new(), &loader)
        .unwrap();
    assert_eq!(
        json["properties"]["dimming"],
        json!({"type": "integer", "minimum": 0, "maximum": 80, "unit": "%"})
    );

    // links.json extends extend.json, which extends version.json.
    let json = read_model(corpus.join("links.json"))
        .instantiate_value(&Instantiation::new().location("links.json"), &loader)
        .unwrap();
    assert_eq!(json["title"], "The title");
    assert_eq!(
        json["properties"]["dim"],
        json!({"type": "integer", "minimum": 0, "maximum": 200})
    );
    assert_eq!(
        json["version"],
        json!({"model": "1.0.0", "instance": "1.0.0"})
    );
    assert_eq!(
        json["links"],
        json!([{"rel": "type", "href": "links.json", "type": "application/tm+json"}])
    );

    let optional = read_model(corpus.join("optional.json"));
    let json = optional
        .instantiate_value(&Instantiation::new(), &loader)
        .unwrap();
    assert!(json.get("properties").is_none() && json.get("actions").is_none());
    assert!(json["events"].get("overheating").is_some());
    let json = optional
        .instantiate_value(
            &Instantiation::new().keep_optional("/properties/status"),
            &loader,
        )
        .unwrap();
    assert!(json["properties"].get("status").is_some() && json.get("actions").is_none());
}

#[test]
fn a_model_without_security_is_not_a_td_until_patched() {
    let m = read_model(Path::new(CORPUS_TM).join("property.json"));
    match m.instantiate(&Instantiation::new(), &no_loader()) {
        Err(e) => {
            assert!(matches!(e.kind(), InstantiateErrorKind::NotATd), "{e}");
            assert!(e.parse_error().is_some());
        }
        // A lenient parser may accept it; validation must then object.
        Ok(doc) => assert!(!errors(&doc).is_empty()),
    }
    let patched = Instantiation::new().patch(json!({
        "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
        "security": "nosec_sc",
        "properties": {"onOff": {"forms": [{"href": "http://192.0.2.1/onoff"}]}}
    }));
    let td = m.instantiate(&patched, &no_loader()).unwrap();
    assert_eq!(errors(&td), Vec::<String>::new());
}

// ---------------------------------------------------------------- hostile graphs

#[test]
fn an_extends_cycle_is_an_error_naming_the_models() {
    let dir = Path::new(MODELS);
    let a = read_model(dir.join("cycle-a.tm.json"));
    let err = a
        .instantiate(
            &Instantiation::new().location("cycle-a.tm.json"),
            &dir_loader(dir),
        )
        .unwrap_err();
    let InstantiateErrorKind::Cycle { chain } = err.kind() else {
        panic!("{err}");
    };
    assert_eq!(
        chain,
        &["cycle-a.tm.json", "cycle-b.tm.json", "cycle-a.tm.json"]
    );
    assert_eq!(err.model(), Some("cycle-b.tm.json"));
    assert_eq!(err.pointer(), "/links/0");
}

#[test]
fn a_self_extension_without_location_is_a_cycle() {
    let m = model(tm(json!({"links": [{"rel": "tm:extends", "href": ""}]})));
    let err = m
        .instantiate_value(&Instantiation::new(), &no_loader())
        .unwrap_err();
    assert!(
        matches!(err.kind(), InstantiateErrorKind::Cycle { .. }),
        "{err}"
    );
}

#[test]
fn reference_cycles_within_a_model_are_errors() {
    for properties in [
        json!({"a": {"tm:ref": "#/properties/b"}, "b": {"tm:ref": "#/properties/a"}}),
        json!({"a": {"tm:ref": "#/properties/a"}}),
        json!({"a": {"type": "object", "properties": {"inner": {"tm:ref": "#/properties/a"}}}}),
        json!({"a": {"tm:ref": "#"}}),
    ] {
        let m = model(tm(json!({"properties": properties})));
        let err = m
            .instantiate_value(&Instantiation::new(), &no_loader())
            .unwrap_err();
        assert!(
            matches!(err.kind(), InstantiateErrorKind::Cycle { .. }),
            "{err}"
        );
        assert!(err.pointer().ends_with("/tm:ref"), "{err}");
    }
}

#[test]
fn references_between_models_that_do_not_loop_are_no_cycle() {
    // a.p1 -> b#/q, b.q2 -> a#/p3: the models refer to each other, the definitions do not.
    let loader = MemoryLoader::new([
        (
            "a.tm.json".to_owned(),
            tm(json!({"properties": {
                "p1": {"tm:ref": "b.tm.json#/properties/q"},
                "p3": {"type": "string"}
            }})),
        ),
        (
            "b.tm.json".to_owned(),
            tm(json!({"properties": {
                "q": {"type": "integer"},
                "q2": {"tm:ref": "a.tm.json#/properties/p3"}
            }})),
        ),
    ]);
    let root = model(tm(json!({"properties": {
        "x": {"tm:ref": "a.tm.json#/properties/p1"},
        "y": {"tm:ref": "b.tm.json#/properties/q2"}
    }})));
    let json = root
        .instantiate_value(&Instantiation::new().location("root.tm.json"), &loader)
        .unwrap();
    assert_eq!(json["properties"]["x"]["type"], "integer");
    assert_eq!(json["properties"]["y"]["type"], "string");
    assert!(loader.loads.borrow().values().all(|&n| n == 1));
}

fn chain(levels: usize) -> MemoryLoader {
    MemoryLoader::new((0..levels).map(|i| {
        let links = if i + 1 < levels {
            json!([{"rel": "tm:extends", "href": format!("m{}.tm.json", i + 1)}])
        } else {
            json!([])
        };
        (
            format!("m{i}.tm.json"),
            tm(json!({"links": links, "properties": {format!("p{i}"): {"type": "string"}}})),
        )
    }))
}

#[test]
fn extends_chains_deeper_than_the_limit_stop() {
    let root = model(tm(
        json!({"links": [{"rel": "tm:extends", "href": "m0.tm.json"}]}),
    ));
    let how = Instantiation::new().location("root.tm.json");
    // 16 parents above the root: at the limit.
    let json = root.instantiate_value(&how, &chain(16)).unwrap();
    assert_eq!(json["properties"].as_object().unwrap().len(), 16);
    // 17: one too many.
    let err = root.instantiate_value(&how, &chain(17)).unwrap_err();
    assert!(
        matches!(err.kind(), InstantiateErrorKind::TooDeep { limit: 16 }),
        "{err}"
    );
    assert_eq!(err.model(), Some("m15.tm.json"));
    // The limit is a setting.
    let err = root
        .instantiate_value(
            &how.clone().limits(InstantiateLimits {
                max_depth: 4,
                ..InstantiateLimits::DEFAULT
            }),
            &chain(16),
        )
        .unwrap_err();
    assert!(
        matches!(err.kind(), InstantiateErrorKind::TooDeep { limit: 4 }),
        "{err}"
    );
}

/// Twenty levels where each definition holds ten copies of the next: 10^20 copies if
/// expanded. Each definition is resolved once, and the size limit stops the copying.
#[test]
fn a_reference_bomb_is_stopped_by_the_size_limit() {
    let levels = 20;
    let mut properties = serde_json::Map::new();
    for i in 0..levels {
        let next = if i + 1 < levels {
            let members: serde_json::Map<String, Value> = (0..10)
                .map(|j| {
                    (
                        format!("c{j}"),
                        json!({"tm:ref": format!("#/properties/p{}", i + 1)}),
                    )
                })
                .collect();
            json!({"type": "object", "properties": members})
        } else {
            json!({"type": "string", "description": "x".repeat(100)})
        };
        properties.insert(format!("p{i}"), next);
    }
    let m = model(tm(json!({"properties": properties})));
    let limits = InstantiateLimits {
        max_depth: 32,
        ..InstantiateLimits::DEFAULT
    };
    let started = std::time::Instant::now();
    let err = m
        .instantiate_value(&Instantiation::new().limits(limits), &no_loader())
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            InstantiateErrorKind::LimitExceeded {
                limit: "max_expanded_bytes",
                ..
            }
        ),
        "{err}"
    );
    // Not a timing target, a guard against exponential work: the whole run is bounded
    // by the 16 MiB budget, far below a second even in a debug build.
    assert!(started.elapsed().as_secs() < 30);
}

/// The same bomb spread over models: each model is loaded once, however many
/// references reach it, and the number of models is bounded.
#[test]
fn a_reference_bomb_across_models_loads_each_model_once_and_stops() {
    let levels = 12;
    let loader = MemoryLoader::new((0..levels).map(|i| {
        let props: serde_json::Map<String, Value> = (0..8)
            .map(|j| {
                let v = if i + 1 < levels {
                    json!({"tm:ref": format!("m{}.tm.json#", i + 1)})
                } else {
                    json!({"type": "string"})
                };
                (format!("c{j}"), v)
            })
            .collect();
        (
            format!("m{i}.tm.json"),
            json!({
                "@context": "https://www.w3.org/2022/wot/td/v1.1",
                "@type": "tm:ThingModel",
                "properties": {"p": {"type": "object", "properties": props}}
            }),
        )
    }));
    let root = model(tm(
        json!({"properties": {"bomb": {"tm:ref": "m0.tm.json#/properties/p"}}}),
    ));
    let err = root
        .instantiate_value(&Instantiation::new().location("root.tm.json"), &loader)
        .unwrap_err();
    assert!(
        matches!(err.kind(), InstantiateErrorKind::LimitExceeded { .. }),
        "{err}"
    );
    assert!(
        loader.loads.borrow().values().all(|&n| n == 1),
        "{:?}",
        loader.loads
    );
}

#[test]
fn the_number_and_size_of_loaded_models_are_bounded() {
    // 100 references to 100 different models: the 65th load is refused.
    let loader = MemoryLoader::new((0..100).map(|i| {
        (
            format!("m{i}.tm.json"),
            tm(json!({"properties": {"p": {"type": "string"}}})),
        )
    }));
    let props: serde_json::Map<String, Value> = (0..100)
        .map(|i| {
            (
                format!("p{i}"),
                json!({"tm:ref": format!("m{i}.tm.json#/properties/p")}),
            )
        })
        .collect();
    let root = model(tm(json!({"properties": props})));
    let err = root
        .instantiate_value(&Instantiation::new(), &loader)
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            InstantiateErrorKind::LimitExceeded {
                limit: "max_models",
                max: 64
            }
        ),
        "{err}"
    );
    assert_eq!(loader.loads.borrow().len(), 64);

    // A model longer than the per-model limit.
    let big = |_: &str, _: u64| -> Result<Vec<u8>, LoadError> { Ok(vec![b' '; 5 << 20]) };
    let root = model(tm(
        json!({"links": [{"rel": "tm:extends", "href": "big.tm.json"}]}),
    ));
    let err = root
        .instantiate_value(&Instantiation::new(), &big)
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            InstantiateErrorKind::LimitExceeded {
                limit: "max_model_bytes",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn unusable_references_say_what_and_where() {
    type Expected = fn(&InstantiateError) -> bool;
    let cases: [(Value, Expected); 5] = [
        (
            json!({"properties": {"a": {"tm:ref": "other.tm.json"}}}),
            |e| matches!(e.kind(), InstantiateErrorKind::BadReference { .. }),
        ),
        (json!({"properties": {"a": {"tm:ref": 5}}}), |e| {
            matches!(e.kind(), InstantiateErrorKind::BadReference { .. })
        }),
        (
            json!({"properties": {"a": {"tm:ref": "#properties/b"}}}),
            |e| matches!(e.kind(), InstantiateErrorKind::BadReference { .. }),
        ),
        (
            json!({"properties": {"a": {"tm:ref": "#/properties/nothing"}}}),
            |e| matches!(e.kind(), InstantiateErrorKind::PointerNotFound { reference } if reference.ends_with("#/properties/nothing")),
        ),
        (
            json!({"properties": {"a": {"tm:ref": "https://models.example/x.tm.json#/properties/a"}}}),
            |e| matches!(e.kind(), InstantiateErrorKind::Load { href } if href == "https://models.example/x.tm.json"),
        ),
    ];
    for (extra, expected) in cases {
        let m = model(tm(extra));
        let err = m
            .instantiate_value(&Instantiation::new().location("root.tm.json"), &no_loader())
            .unwrap_err();
        assert!(expected(&err), "{err}");
        assert_eq!(err.model(), Some("root.tm.json"), "{err}");
        assert_eq!(err.pointer(), "/properties/a/tm:ref", "{err}");
    }

    // A loaded document that is a TD, or not JSON, is not a model.
    for body in [
        br#"{"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "T", "securityDefinitions": {"n": {"scheme": "nosec"}}, "security": "n"}"#.to_vec(),
        b"not json".to_vec(),
        br#"{"a": 1, "a": 2}"#.to_vec(),
    ] {
        let loader = move |_: &str, _: u64| -> Result<Vec<u8>, LoadError> { Ok(body.clone()) };
        let m = model(tm(json!({"links": [{"rel": "tm:extends", "href": "p.tm.json"}]})));
        let err = m.instantiate_value(&Instantiation::new(), &loader).unwrap_err();
        assert!(matches!(err.kind(), InstantiateErrorKind::NotAModel { .. }), "{err}");
        assert_eq!(err.pointer(), "/links/0");
    }
}

#[test]
fn the_file_loader_refuses_hrefs_outside_its_directory() {
    let loader = dir_loader(Path::new(MODELS));
    for href in [
        "../tm_instantiate.rs",
        "/etc/passwd",
        "https://example.com/x",
        "sub/../../Cargo.toml",
        "",
    ] {
        assert!(loader(href, 1 << 20).is_err(), "{href}");
    }
    assert!(loader("sub/levels.tm.json", 1 << 20).is_ok());
    // A model that climbs out of the directory is refused with the href named.
    let m = model(tm(
        json!({"links": [{"rel": "tm:extends", "href": "../../secrets.tm.json"}]}),
    ));
    let err = m
        .instantiate_value(&Instantiation::new().location("sub/x.tm.json"), &loader)
        .unwrap_err();
    assert!(
        matches!(err.kind(), InstantiateErrorKind::Load { href } if href == "../secrets.tm.json"),
        "{err}"
    );
}

#[test]
fn errors_carry_the_loader_cause_in_their_message() {
    let m = model(tm(
        json!({"links": [{"rel": "tm:extends", "href": "gone.tm.json"}]}),
    ));
    let err = m
        .instantiate_value(
            &Instantiation::new().location("models/root.tm.json"),
            &no_loader(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "models/root.tm.json#/links/0: cannot load the model `models/gone.tm.json`: \
         nothing is loaded here (`models/gone.tm.json`)"
    );
    assert!(err.cause().is_some());
    assert!(std::error::Error::source(&err).is_none());
}

#[test]
fn a_model_built_in_code_that_nests_too_deep_is_refused() {
    let mut deep = json!("leaf");
    for _ in 0..300 {
        deep = json!({"d": deep});
    }
    let mut m = model(tm(json!({})));
    m.json.insert("deep".into(), deep);
    let err = m
        .instantiate_value(&Instantiation::new(), &no_loader())
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            InstantiateErrorKind::LimitExceeded {
                limit: "nesting",
                ..
            }
        ),
        "{err}"
    );
}
