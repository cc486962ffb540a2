//! Group 4: `wot-td` parse + validate of every TD in `td-corpus/valid`, against
//! `serde_json::from_str::<Value>` of the same text (the floor). Each iteration handles the
//! whole corpus. `cargo bench -p benches --bench td_parse`.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use wot_td::Document;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/td-corpus/valid");

fn corpus() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(CORPUS)
        .unwrap_or_else(|e| panic!("{CORPUS}: {e}"))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("readable TD");
            (path.display().to_string(), text)
        })
        .collect();
    files.sort();
    files
}

fn td_parse(c: &mut Criterion) {
    let corpus = corpus();
    let bytes: usize = corpus.iter().map(|(_, text)| text.len()).sum();
    for (path, text) in &corpus {
        let doc = text
            .parse::<Document>()
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let errors = doc.validate().into_iter().filter(|d| d.is_error()).count();
        assert_eq!(errors, 0, "{path} validates");
    }
    let mut group = c.benchmark_group(format!("td_parse/valid-corpus-{}-files", corpus.len()));
    group
        .throughput(Throughput::ElementsAndBytes {
            elements: corpus.len() as u64,
            bytes: bytes as u64,
        })
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("floor-serde_json-Value", |b| {
        b.iter(|| {
            for (_, text) in &corpus {
                let value: Value = serde_json::from_str(text).expect("JSON");
                std::hint::black_box(value);
            }
        });
    });
    group.bench_function("wot-td-parse", |b| {
        b.iter(|| {
            for (_, text) in &corpus {
                std::hint::black_box(text.parse::<Document>().expect("a TD"));
            }
        });
    });
    group.bench_function("wot-td-parse+validate", |b| {
        b.iter(|| {
            for (_, text) in &corpus {
                let doc = text.parse::<Document>().expect("a TD");
                std::hint::black_box(doc.validate());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, td_parse);
criterion_main!(benches);
