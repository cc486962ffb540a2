//! The `json-schema` feature: the official TD 1.1 JSON Schema agrees with the corpus.
#![cfg(feature = "json-schema")]

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use wot_td::{Document, validate_td_json};

fn corpus(dir: &str) -> Vec<(String, Value)> {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/td-corpus"
    ))
    .join(dir);
    fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                serde_json::from_slice(&fs::read(&p).unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn valid_and_edge_tds_pass_the_schema() {
    for dir in ["valid", "edge"] {
        for (name, td) in corpus(dir) {
            let errors = validate_td_json(&td);
            assert!(errors.is_empty(), "{dir}/{name}: {errors:#?}");
        }
    }
}

#[test]
fn invalid_tds_fail_the_schema_except_the_five_beyond_it() {
    let beyond = [
        "duplicatePropertyAffordanceNames.json",
        "duplicateSecurityDefinitions.json",
        "invalidSecuMatch.json",
        "multipleRelType.json",
        "usingTM.json",
    ];
    for (name, td) in corpus("invalid") {
        let errors = validate_td_json(&td);
        if beyond.contains(&name.as_str()) {
            continue;
        }
        assert!(!errors.is_empty(), "{name} passed the JSON Schema");
        assert!(
            errors
                .iter()
                .all(|d| d.rule == "json-schema" && d.is_error())
        );
    }
}

#[test]
fn document_validation_includes_schema_errors_with_paths() {
    // `hreflang` must be a BCP 47 tag: a rule only the JSON Schema checks.
    let td = json!({
        "@context": "https://www.w3.org/2022/wot/td/v1.1",
        "title": "T",
        "securityDefinitions": {"n": {"scheme": "nosec"}},
        "security": "n",
        "links": [{"href": "http://x", "hreflang": "not a language tag!"}]
    });
    let doc = Document::from_value(td).unwrap();
    let diags = doc.validate();
    assert!(
        diags
            .iter()
            .any(|d| d.rule == "json-schema" && d.path.starts_with("links[0]")),
        "{diags:#?}"
    );
}
