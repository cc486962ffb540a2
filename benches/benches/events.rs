//! Group 6: `wot-events` declarative filter evaluation and `EventLog` insertion.
//!
//! * `events_filter`: a declarative filter (`all` of a numeric `gt`, a regex `matches` and an
//!   `exists`) compiled once and evaluated on event data, against the same test written as a
//!   Rust closure (the floor).
//! * `events_log`: pushing a record into an `EventLog` at its default capacity (1,000, full),
//!   records in time order, 50 things and 5 event names.
//!
//! `cargo bench -p benches --bench events`.

use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use wot_events::{EventLog, EventRecord, FilterExpr};

fn record(i: u64) -> EventRecord {
    EventRecord {
        thing_id: format!("urn:dev:fridge-{}", i % 50).into(),
        thing_title: format!("Fridge {}", i % 50).into(),
        event: ["overheat", "door", "defrost", "power", "alarm"][(i % 5) as usize].into(),
        data: sample(i).into(),
        event_id: Some(i.to_string().into()),
        received_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + i * 10),
    }
}

fn sample(i: u64) -> Value {
    json!({
        "value": 15.0 + (i % 100) as f64 / 10.0,
        "unit": if i.is_multiple_of(3) { "celsius" } else { "kelvin" },
        "severity": "warning",
        "ts": "2026-11-27T01:00:00Z",
    })
}

fn events_filter(c: &mut Criterion) {
    let expr: FilterExpr = serde_json::from_value(json!({"all": [
        {"gt": {"pointer": "/value", "value": 20}},
        {"matches": {"pointer": "/unit", "regex": "^cel"}},
        {"exists": {"pointer": "/severity"}}
    ]}))
    .expect("a filter expression");
    let filter = expr.compile().expect("compiles");
    let closure = |data: &Value| {
        data.pointer("/value")
            .and_then(Value::as_f64)
            .is_some_and(|v| v > 20.0)
            && data
                .pointer("/unit")
                .and_then(Value::as_str)
                .is_some_and(|u| u.starts_with("cel"))
            && data.pointer("/severity").is_some()
    };
    let data: Vec<Value> = (0..1000).map(sample).collect();
    let expected = data.iter().filter(|d| closure(d)).count();
    assert_eq!(
        data.iter().filter(|d| filter.matches_data(d)).count(),
        expected
    );
    assert!(expected > 0 && expected < data.len());

    let mut group = c.benchmark_group("events_filter");
    group
        .throughput(Throughput::Elements(data.len() as u64))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("floor-closure", |b| {
        b.iter(|| data.iter().filter(|d| closure(d)).count());
    });
    group.bench_function("wot-events-declarative", |b| {
        b.iter(|| data.iter().filter(|d| filter.matches_data(d)).count());
    });
    group.finish();
}

fn events_log(c: &mut Criterion) {
    let mut log = EventLog::new();
    let mut i = 0;
    while log.len() < 1000 {
        log.push(record(i));
        i += 1;
    }
    let mut group = c.benchmark_group("events_log");
    group
        .throughput(Throughput::Elements(1))
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("push-full-1000", |b| {
        b.iter_batched(
            || {
                i += 1;
                record(i)
            },
            |r| log.push(r),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, events_filter, events_log);
criterion_main!(benches);
