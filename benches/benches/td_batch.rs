//! Group 10: the validation rate over a batch of about 300 Thing Descriptions.
//!
//! The batch: every TD of `td-corpus/valid` and `td-corpus/edge` and every
//! `wot-td/tests/producers/*.td.json` that `Document::from_slice` reads as a TD and
//! `serde_json` reads as JSON (Thing Models, documents `wot-td` refuses and the one behind a
//! byte-order mark are left out; documents with validation errors would stay in),
//! repeated until there are at least [`BATCH`] documents. All of them are read into memory
//! first. Each iteration handles the whole batch:
//!
//! * `wot-td-check`: `Document::check(bytes)`, the one-pass lenient check (parse,
//!   validate, a line and column for every finding);
//! * `wot-td-from_slice+validate`: `Document::from_slice(bytes)` then `validate()`;
//! * `floor-serde_json-Value`: `serde_json::from_slice::<Value>(bytes)`, the peer.
//!
//! `cargo bench -p benches --bench td_batch`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use wot_td::{Document, DocumentKind};

/// The batch holds at least this many documents.
const BATCH: usize = 300;

const SOURCES: [(&str, &str); 3] = [
    (
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/td-corpus/valid"),
        ".json",
    ),
    (
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/td-corpus/edge"),
        ".json",
    ),
    (
        concat!(env!("CARGO_MANIFEST_DIR"), "/../wot-td/tests/producers"),
        ".td.json",
    ),
];

/// The distinct TDs of [`SOURCES`] that parse, sorted by path, with their bytes; and the
/// files left out.
fn distinct_tds() -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    let mut tds = Vec::new();
    let mut left_out = Vec::new();
    for (dir, suffix) in SOURCES {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
            })
            .collect();
        files.sort();
        for path in files {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // Like for like: the peer must read every document of the batch too, which
            // leaves out a TD behind a byte-order mark (`wot-td` skips it, `serde_json`
            // does not).
            let td = Document::from_slice(&bytes).is_ok_and(|d| d.kind() == DocumentKind::Td);
            if td && serde_json::from_slice::<Value>(&bytes).is_ok() {
                tds.push((short(&path), bytes));
            } else {
                left_out.push(short(&path));
            }
        }
    }
    (tds, left_out)
}

fn short(path: &Path) -> String {
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{dir}/{name}")
}

fn td_batch(c: &mut Criterion) {
    let (distinct, left_out) = distinct_tds();
    assert!(!distinct.is_empty(), "no TD parses");
    let mut batch: Vec<&[u8]> = Vec::with_capacity(BATCH + distinct.len());
    while batch.len() < BATCH {
        batch.extend(distinct.iter().map(|(_, bytes)| bytes.as_slice()));
    }
    let bytes: usize = batch.iter().map(|b| b.len()).sum();
    let with_errors: Vec<&str> = distinct
        .iter()
        .filter(|(_, b)| !Document::check(b).is_valid())
        .map(|(path, _)| path.as_str())
        .collect();
    eprintln!(
        "td_batch: {} distinct TDs (with errors: {with_errors:?}; left out: {left_out:?}), \
         batch of {} documents, {bytes} bytes",
        distinct.len(),
        batch.len(),
    );

    let mut group = c.benchmark_group(format!("td_batch/{}-tds", batch.len()));
    group.throughput(Throughput::ElementsAndBytes {
        elements: batch.len() as u64,
        bytes: bytes as u64,
    });
    group.bench_function("floor-serde_json-Value", |b| {
        b.iter(|| {
            for td in &batch {
                let value: Value = serde_json::from_slice(black_box(td)).expect("JSON");
                black_box(value);
            }
        });
    });
    group.bench_function("wot-td-from_slice+validate", |b| {
        b.iter(|| {
            for td in &batch {
                let doc = Document::from_slice(black_box(td)).expect("a TD");
                black_box(doc.validate());
            }
        });
    });
    group.bench_function("wot-td-check", |b| {
        b.iter(|| {
            for td in &batch {
                black_box(Document::check(black_box(td)));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, td_batch);
criterion_main!(benches);
