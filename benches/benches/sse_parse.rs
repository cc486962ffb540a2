//! Group 1: SSE parsing alone, bytes in memory in, events out.
//!
//! `cargo bench -p benches --bench sse_parse`. `eventsource-stream` on the chunked 8 MiB case
//! takes about a minute per run, so it is timed separately by `--bench sse_parse_slow`.

use std::time::Duration;

use benches::{Workload, drivers, workload};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

type Driver = fn(&Workload) -> u64;

const CONTENDERS: &[(&str, Driver)] = &[
    ("floor-memchr", drivers::parse_floor),
    ("wot-sse", drivers::parse_wot_sse),
    ("eventsource-client", drivers::parse_eventsource_client),
    ("eventsource-stream", drivers::parse_eventsource_stream),
];

fn sse_parse(c: &mut Criterion) {
    let cases = [
        workload::case_a(),
        workload::case_b(),
        workload::case_c_chunked(),
        workload::case_c_one_chunk(),
        workload::case_d(),
    ];
    for case in &cases {
        let mut group = c.benchmark_group(format!("sse_parse/{}", case.name));
        group
            .throughput(Throughput::ElementsAndBytes {
                elements: case.events,
                bytes: case.body.len() as u64,
            })
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for (name, driver) in CONTENDERS {
            if *name == "eventsource-stream" && case.name == "c-8MiB-1KiB-chunks" {
                continue; // quadratic: timed by the sse_parse_slow bench instead
            }
            group.bench_function(*name, |b| {
                b.iter(|| {
                    let events = driver(case);
                    assert_eq!(events, case.events, "{name} on {}", case.name);
                    events
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, sse_parse);
criterion_main!(benches);
