//! Runs the shared TD corpus (`../shared/td-corpus/`) through parsing, validation and
//! the lossless round trip.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use wot_td::{Document, DocumentKind, Severity, ThingModel};

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/td-corpus"
    ))
    .join(dir);
    let mut files: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "jsonld")
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", root.display());
    files
}

/// Serves the Thing Models of the corpus for the playground URLs that corpus files link
/// to; everything else is unavailable (as `https://example.com/...` really is).
fn corpus_resolver(href: &str) -> Option<ThingModel> {
    let rest = href.strip_prefix(
        "https://raw.githubusercontent.com/eclipse-thingweb/playground/master/packages/core/examples/tms/",
    )?;
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/td-corpus/tm"
    ))
    .join(rest);
    let bytes = fs::read(path).ok()?;
    Document::from_slice(&bytes).ok()?.as_thing_model().cloned()
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Parse errors count as error diagnostics, as `td-check` reports them.
fn errors_of(bytes: &[u8]) -> (Option<DocumentKind>, Vec<String>) {
    match Document::from_slice(bytes) {
        Ok(doc) => (
            Some(doc.kind()),
            doc.validate_with(&corpus_resolver)
                .into_iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| d.to_string())
                .collect(),
        ),
        Err(e) => (None, vec![e.to_string()]),
    }
}

fn assert_lossless(path: &Path, bytes: &[u8]) {
    let doc = Document::from_slice(bytes).unwrap_or_else(|e| panic!("{}: {e}", name(path)));
    let input: Value = serde_json::from_slice(bytes).unwrap();
    let written = doc.to_value().unwrap();
    assert_eq!(
        written,
        input,
        "{}: serialized JSON differs from the input",
        name(path)
    );
    // Key order is kept too, object by object.
    assert_eq!(
        serde_json::to_string(&written).unwrap(),
        serde_json::to_string(&input).unwrap(),
        "{}: key order changed",
        name(path)
    );
    let text = serde_json::to_string(&doc).unwrap();
    let again = text.parse::<Document>().unwrap();
    assert_eq!(again, doc, "{}: re-parsed model differs", name(path));
}

/// Every file of `dir` is a TD with no error that round-trips losslessly.
fn assert_clean_tds(dir: &str) {
    for path in corpus(dir) {
        let bytes = fs::read(&path).unwrap();
        let (kind, errors) = errors_of(&bytes);
        assert_eq!(kind, Some(DocumentKind::Td), "{}", name(&path));
        assert!(errors.is_empty(), "{}: {errors:#?}", name(&path));
        assert_lossless(&path, &bytes);
    }
}

#[test]
fn valid_tds_parse_validate_and_round_trip() {
    assert_clean_tds("valid");
}

#[test]
fn edge_tds_have_no_errors_and_round_trip() {
    assert_clean_tds("edge");
}

#[test]
fn invalid_tds_are_rejected_with_a_path() {
    for path in corpus("invalid") {
        let bytes = fs::read(&path).unwrap();
        let (_, errors) = errors_of(&bytes);
        assert!(!errors.is_empty(), "{} was accepted", name(&path));
        println!("{}: {}", name(&path), errors.join(" | "));
    }
}

#[test]
fn valid_thing_models_are_recognised() {
    for path in corpus("tm/valid") {
        let bytes = fs::read(&path).unwrap();
        let (kind, errors) = errors_of(&bytes);
        assert_eq!(kind, Some(DocumentKind::Tm), "{}", name(&path));
        assert!(errors.is_empty(), "{}: {errors:#?}", name(&path));
        assert_lossless(&path, &bytes);
    }
}

#[test]
fn invalid_thing_models_are_rejected() {
    for path in corpus("tm/invalid") {
        let bytes = fs::read(&path).unwrap();
        let (kind, errors) = errors_of(&bytes);
        let rejected = kind != Some(DocumentKind::Tm) || !errors.is_empty();
        assert!(rejected, "{} was accepted as a Thing Model", name(&path));
        println!("{}: {kind:?} {}", name(&path), errors.join(" | "));
    }
}

#[test]
fn using_tm_is_rejected_by_the_thing_model_it_links() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/td-corpus/invalid/usingTM.json"
    ));
    let doc = Document::from_slice(&fs::read(path).unwrap()).unwrap();
    let with_model = doc.validate_with(&corpus_resolver);
    let conformance: Vec<_> = with_model
        .iter()
        .filter(|d| d.rule == "tm-conformance")
        .collect();
    assert_eq!(conformance.len(), 1, "{with_model:#?}");
    assert_eq!(conformance[0].path, "properties.status.type");
    // Without the model, only a warning says the link was not checked.
    let without = doc.validate();
    assert!(
        without
            .iter()
            .any(|d| d.rule == "tm-unchecked" && !d.is_error())
    );
}

#[test]
fn unavailable_models_are_warnings_for_tds_and_errors_for_parents() {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/td-corpus"
    ));
    for file in [
        "edge/unavailableDirectTm.json",
        "edge/unavailableRecursiveTm.json",
    ] {
        let doc = Document::from_slice(&fs::read(root.join(file)).unwrap()).unwrap();
        let diags = doc.validate_with(&corpus_resolver);
        assert!(diags.iter().all(|d| !d.is_error()), "{file}: {diags:#?}");
        assert!(
            diags.iter().any(|d| d.rule == "tm-unavailable"),
            "{file}: {diags:#?}"
        );
    }
    let doc =
        Document::from_slice(&fs::read(root.join("tm/invalid/unavailableParent.json")).unwrap())
            .unwrap();
    let diags = doc.validate_with(&corpus_resolver);
    assert!(
        diags
            .iter()
            .any(|d| d.is_error() && d.rule == "tm-extends" && d.path == "links[0]"),
        "{diags:#?}"
    );
    let extend =
        Document::from_slice(&fs::read(root.join("tm/valid/extend.json")).unwrap()).unwrap();
    assert!(extend.validate_with(&corpus_resolver).is_empty());
}

/// `Document::check` on every corpus file: the folder's verdict, every diagnostic with a
/// line and column, and a document exactly when `from_slice` gives one.
#[test]
fn check_gives_the_folder_verdict_with_a_position_on_every_diagnostic() {
    // Needs the parent model, which `check` does not fetch (see `validate_with` above).
    let needs_a_resolver = ["unavailableParent.json"];
    for (dir, valid) in [
        ("valid", true),
        ("edge", true),
        ("invalid", false),
        ("tm/valid", true),
        ("tm/invalid", false),
    ] {
        for file in corpus(dir) {
            let bytes = fs::read(&file).unwrap();
            let report = Document::check(&bytes);
            let name = file.file_name().unwrap().to_str().unwrap();
            if !needs_a_resolver.contains(&name) {
                assert_eq!(
                    report.is_valid(),
                    valid,
                    "{dir}/{name}: {:#?}",
                    report.diagnostics
                );
            }
            assert!(
                report.diagnostics.iter().all(|d| d.position.is_some()),
                "{dir}/{name}: {:#?}",
                report.diagnostics
            );
            assert_eq!(
                report.document.is_some(),
                Document::from_slice(&bytes).is_ok(),
                "{dir}/{name}"
            );
        }
    }
}
