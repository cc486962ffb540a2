//! Group 9: a Thing Model made into a Thing Description with
//! [`ThingModel::instantiate`], against parsing and validating the TD that results.
//!
//! The model is `wot-td/tests/models/lamp.tm.json`: it extends `onoff.tm.json` and
//! `dimmer.tm.json` (which both extend `device.tm.json`), refers to a property of
//! `sub/levels.tm.json` and has six placeholders. Every model file is read into memory
//! before measuring and served from a `HashMap` by the loader, so the figures are the
//! instantiation itself, not the disk.
//!
//! * `instantiate`: load and merge the models, substitute the placeholders, parse the
//!   result as a TD (what `ThingModel::instantiate` returns).
//! * `instantiate_value`: the same without the final parse (the TD as JSON).
//! * `reference-td-from_value+validate`: `Document::from_value` of the resulting TD's JSON
//!   plus `validate()`, the cost of checking the TD the model gives. The JSON is cloned
//!   outside the measured time.
//!
//! `cargo bench -p benches --bench td_instantiate`.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use wot_td::{Document, Instantiation, LoadError, ThingModel};

const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../wot-td/tests/models");

/// Every `*.json` file below `dir`, keyed by its path relative to `dir` with `/`
/// separators (the hrefs the models use).
fn read_models(dir: &Path, prefix: &str, into: &mut HashMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 file name");
        let key = format!("{prefix}{name}");
        if path.is_dir() {
            read_models(&path, &format!("{key}/"), into);
        } else if name.ends_with(".json") {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{key}: {e}"));
            into.insert(key, bytes);
        }
    }
}

/// The values every placeholder of `lamp.tm.json` needs.
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

fn td_instantiate(c: &mut Criterion) {
    let mut models = HashMap::new();
    read_models(Path::new(MODELS), "", &mut models);
    let loader = |href: &str, _max_bytes: u64| -> Result<Vec<u8>, LoadError> {
        models
            .get(href)
            .cloned()
            .ok_or_else(|| format!("no model at `{href}`").into())
    };
    let lamp: ThingModel = Document::from_slice(&models["lamp.tm.json"])
        .ok()
        .and_then(Document::into_thing_model)
        .expect("lamp.tm.json is a Thing Model");
    let how = lamp_values();

    // The workload is what the test suite checks: a TD without errors.
    let td = lamp
        .instantiate(&how, &loader)
        .expect("the lamp instantiates");
    let errors: Vec<String> = td
        .validate()
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let json = lamp
        .instantiate_value(&how, &loader)
        .expect("the lamp instantiates");
    eprintln!(
        "td_instantiate: the TD is {} bytes of JSON",
        serde_json::to_vec(&json).expect("JSON").len()
    );

    let mut group = c.benchmark_group("td_instantiate/lamp-extends-two");
    group.throughput(Throughput::Elements(1));
    group.bench_function("instantiate", |b| {
        b.iter(|| lamp.instantiate(black_box(&how), &loader).expect("a TD"));
    });
    group.bench_function("instantiate_value", |b| {
        b.iter(|| {
            lamp.instantiate_value(black_box(&how), &loader)
                .expect("JSON")
        });
    });
    group.bench_function("reference-td-from_value+validate", |b| {
        b.iter_batched(
            || json.clone(),
            |value| {
                let doc = Document::from_value(value).expect("a TD");
                doc.validate()
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, td_instantiate);
criterion_main!(benches);
