//! Group 7: the cost of a `pattern` in a data schema, per update.
//!
//! * `td_pattern/update`: one property update as `wot-events` handles it: the JSON text of
//!   the value is parsed and checked against the property's [`CompiledSchema`] (built once).
//!   The value is an object with a serial number, a temperature and a flag; the schema with
//!   `pattern` adds `^[A-Z]{2}-\d{4}$` to the serial number. The target: within 2× of the
//!   schema without it.
//! * `td_pattern/check`: the check alone on the serial number string, with and without the
//!   pattern, and `DataSchema::validate_value`, which compiles the pattern on every call (the
//!   cost each update paid before schemas were compiled once).
//!
//! `cargo bench -p benches --bench td_pattern`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use wot_td::{CompiledSchema, DataSchema};

fn schema(with_pattern: bool) -> DataSchema {
    let mut serial = json!({"type": "string", "minLength": 7, "maxLength": 7});
    if with_pattern {
        serial["pattern"] = json!(r"^[A-Z]{2}-\d{4}$");
    }
    serde_json::from_value(json!({
        "type": "object",
        "required": ["serial", "celsius"],
        "properties": {
            "serial": serial,
            "celsius": {"type": "number", "minimum": -40, "maximum": 125},
            "ok": {"type": "boolean"}
        }
    }))
    .expect("a data schema")
}

/// 1,000 update texts, as they arrive.
fn updates() -> Vec<String> {
    (0..1000)
        .map(|i| {
            format!(
                r#"{{"serial":"AB-{:04}","celsius":{}.5,"ok":{}}}"#,
                i,
                i % 100,
                i % 2 == 0
            )
        })
        .collect()
}

fn update(c: &mut Criterion) {
    let texts = updates();
    let mut group = c.benchmark_group("td_pattern/update");
    group.throughput(Throughput::Elements(texts.len() as u64));
    for (name, with_pattern) in [("without-pattern", false), ("with-pattern", true)] {
        let compiled = CompiledSchema::from(schema(with_pattern));
        assert!(compiled.problems().is_empty());
        for text in &texts {
            let value: Value = serde_json::from_str(text).expect("JSON");
            assert!(compiled.accepts(&value), "{text}");
        }
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut violations = 0;
                for text in &texts {
                    let value: Value = serde_json::from_str(black_box(text)).expect("JSON");
                    violations += compiled.validate(&value).len();
                }
                violations
            });
        });
    }
    group.finish();
}

fn check(c: &mut Criterion) {
    let serials: Vec<Value> = (0..1000).map(|i| json!(format!("AB-{i:04}"))).collect();
    let mut group = c.benchmark_group("td_pattern/check");
    group.throughput(Throughput::Elements(serials.len() as u64));
    for (name, with_pattern) in [("without-pattern", false), ("with-pattern", true)] {
        let schema = schema(with_pattern);
        let serial = schema
            .properties
            .as_ref()
            .and_then(|p| p.get("serial"))
            .expect("serial")
            .clone();
        let compiled = CompiledSchema::from(serial);
        group.bench_function(name, |b| {
            b.iter(|| {
                serials
                    .iter()
                    .map(|v| compiled.validate(black_box(v)).len())
                    .sum::<usize>()
            });
        });
    }
    let uncompiled = schema(true);
    let serial = uncompiled
        .properties
        .as_ref()
        .and_then(|p| p.get("serial"))
        .expect("serial")
        .clone();
    group.bench_function("with-pattern-validate_value", |b| {
        b.iter(|| {
            serials
                .iter()
                .map(|v| serial.validate_value(black_box(v)).len())
                .sum::<usize>()
        });
    });
    group.finish();
}

criterion_group!(benches, update, check);
criterion_main!(benches);
