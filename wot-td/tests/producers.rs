//! TDs written in the shape of real producers' (Eclipse Ditto, WebThings Gateway, TDs with
//! repeated members, a TD with many independent problems): the verdict, every diagnostic
//! with its rule, path and position, in one pass. `tests/producers/expected.json` holds the
//! expected findings of each file, in the order `Document::check` reports them (errors
//! first, then by place in the text).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use wot_td::{Document, DocumentKind, Rule, Severity, expand_uri_template};

#[derive(Deserialize)]
struct Expected {
    valid: bool,
    diagnostics: Vec<(Severity, Rule, String)>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/producers")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap()
}

#[test]
fn every_file_gets_its_expected_verdict_and_findings_in_one_pass() {
    let expected: BTreeMap<String, Expected> =
        serde_json::from_slice(&read("expected.json")).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".td.json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), expected.len(), "every file has expectations");
    for name in files {
        let want = &expected[&name];
        let bytes = read(&name);
        let report = Document::check(&bytes);
        assert_eq!(report.kind, Some(DocumentKind::Td), "{name}");
        // (The `json-schema` feature adds the official schema's findings: compared in
        // `what_the_crate_accepts_the_official_schema_accepts`.)
        let found: Vec<(Severity, Rule, String)> = report
            .diagnostics
            .iter()
            .filter(|d| d.rule != Rule::JsonSchema)
            .map(|d| (d.severity, d.rule, d.path.clone()))
            .collect();
        assert_eq!(found, want.diagnostics, "{name}: {:#?}", report.diagnostics);
        assert_eq!(
            found.iter().all(|(s, ..)| *s != Severity::Error),
            want.valid,
            "{name}"
        );
        for d in &report.diagnostics {
            let p = d
                .position
                .unwrap_or_else(|| panic!("{name}: no position: {d}"));
            assert!(p.line >= 1 && p.column >= 1, "{name}: {d}");
            assert!(d.rule.as_str().parse::<Rule>().is_ok());
        }
        // The strict parser agrees: a document, exactly when reading found no error
        // (validation errors such as `range` still give a document).
        let parsed = Document::from_slice(&bytes);
        assert_eq!(parsed.is_ok(), report.document.is_some(), "{name}");
        if let Ok(doc) = parsed {
            // `validate` on the parsed document reports the same findings (the JSON
            // Schema feature, if on, adds its own).
            let again: Vec<_> = doc
                .validate()
                .into_iter()
                .filter(|d| d.rule != Rule::JsonSchema)
                .map(|d| (d.severity, d.rule.to_string(), d.path, d.position))
                .collect();
            let mut again_sorted = again.clone();
            again_sorted.sort_by_key(|(s, _, _, p)| (*s, *p));
            let reported: Vec<_> = report
                .diagnostics
                .iter()
                .filter(|d| d.rule != Rule::JsonSchema)
                .map(|d| (d.severity, d.rule.to_string(), d.path.clone(), d.position))
                .collect();
            assert_eq!(again_sorted, reported, "{name}");
        }
    }
}

#[test]
fn ditto_templates_with_a_dash_expand_with_the_name_taken_literally() {
    let doc = Document::from_slice(&read("ditto-floor-lamp.td.json")).unwrap();
    let thing = doc.as_thing().unwrap();
    let form = &thing.property("on").unwrap().forms[1];
    let vars = serde_json::json!({"response-required": false, "timeout": 5});
    let url = expand_uri_template(&form.href, vars.as_object().unwrap()).unwrap();
    assert_eq!(
        url,
        "/features/Spot1/properties/on?timeout=5&response-required=false"
    );
    let warning = doc
        .validate()
        .into_iter()
        .find(|d| d.path == "properties.on.forms[1].href")
        .unwrap();
    assert_eq!(warning.rule, Rule::HrefTemplateName);
    assert!(
        warning
            .message
            .contains("`response-required` (at character 47"),
        "{warning}"
    );
}

#[test]
fn the_messages_say_what_is_expected() {
    let report = Document::check(&read("many-problems.td.json"));
    let message = |path: &str| {
        report
            .diagnostics
            .iter()
            .find(|d| d.path == path && d.rule != Rule::JsonSchema)
            .unwrap_or_else(|| panic!("no diagnostic at {path}"))
            .message
            .clone()
    };
    assert_eq!(
        message("events.alarm.forms[0].security"),
        "invalid type: map, expected a string or an array of strings"
    );
    let op = message("actions.boost.forms[0].op");
    assert!(
        op.contains("`readaction`")
            && op.contains("`invokeaction`, `queryaction`, `cancelaction`")
            && op.contains("did you mean"),
        "{op}"
    );
    let context = message("@context");
    assert!(
        context.contains("https://www.w3.org/2019/wot/td/v1")
            && context.contains("https://www.w3.org/2022/wot/td/v1.1"),
        "{context}"
    );
    // A TD 1.0 context alone is accepted.
    let report = Document::check(&read("repeated-identical-terms.td.json"));
    assert!(report.diagnostics.iter().all(|d| d.rule != Rule::Context));
}

#[test]
fn a_structure_error_does_not_hide_validation_errors_elsewhere() {
    // Before, the missing `security` stopped reading; now the broken `op` elsewhere, the
    // range and the wrong context are found in the same pass, and none is reported twice.
    let report = Document::check(&read("many-problems.td.json"));
    let rules: Vec<Rule> = report.diagnostics.iter().map(|d| d.rule).collect();
    for rule in [
        Rule::TermMissing,
        Rule::Context,
        Rule::Range,
        Rule::TermValue,
    ] {
        assert_eq!(rules.iter().filter(|r| **r == rule).count(), 1, "{rule}");
    }
    // The stand-ins put in to read on are not reported as problems of their own.
    assert!(!rules.contains(&Rule::SecurityEmpty), "{rules:?}");
    assert!(report.document.is_none());
}

/// With the official JSON Schema on: a document this crate finds valid is valid for the
/// schema too (the crate checks more than the schema can: repeated names, undefined
/// security names, at most one `rel: "type"` link), over these files and the corpus.
#[cfg(feature = "json-schema")]
#[test]
fn what_the_crate_accepts_the_official_schema_accepts() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/td-corpus");
    let mut files: Vec<PathBuf> = ["valid", "edge", "invalid"]
        .iter()
        .flat_map(|d| std::fs::read_dir(corpus.join(d)).unwrap())
        .chain(std::fs::read_dir(dir()).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".json") && !p.ends_with("expected.json"))
        .collect();
    files.sort();
    for file in files {
        let report = Document::check(&std::fs::read(&file).unwrap());
        let schema_errors: Vec<_> = report
            .diagnostics
            .iter()
            .filter(|d| d.rule == Rule::JsonSchema)
            .collect();
        let ours = report
            .diagnostics
            .iter()
            .any(|d| d.is_error() && d.rule != Rule::JsonSchema);
        assert!(
            ours || schema_errors.is_empty(),
            "{}: {schema_errors:#?}",
            file.display()
        );
    }
}
