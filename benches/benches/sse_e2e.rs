//! Group 2: end to end over loopback HTTP. A local axum server (its own runtime thread) streams
//! the pre-encoded bodies of cases (a) and (b) in 64 KiB chunks as fast as it can; each client
//! receives every event. `cargo bench -p benches --bench sse_e2e`.

use std::time::Duration;

use benches::drivers::{self, HttpClients};
use benches::{server::Server, workload};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

fn sse_e2e(c: &mut Criterion) {
    let cases = [workload::case_a(), workload::case_b()];
    let server = Server::start(&cases);
    let clients = HttpClients::new();

    for case in &cases {
        let url = server.url(case.name);
        let expected = case.events;
        let mut group = c.benchmark_group(format!("sse_e2e/{}", case.name));
        group
            .throughput(Throughput::ElementsAndBytes {
                elements: case.events,
                bytes: case.body.len() as u64,
            })
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(4));
        group.bench_function("floor-reqwest-memchr", |b| {
            b.to_async(&clients.runtime).iter(|| async {
                let n = drivers::http_floor(&clients.floor, &url).await;
                assert_eq!(n, expected, "floor on {}", case.name);
            });
        });
        group.bench_function("wot-sse", |b| {
            b.to_async(&clients.runtime).iter(|| async {
                let n = drivers::http_wot_sse(&clients.wot, &url, expected).await;
                assert_eq!(n, expected, "wot-sse on {}", case.name);
            });
        });
        group.bench_function("eventsource-client", |b| {
            b.to_async(&clients.runtime).iter(|| async {
                let n = drivers::http_eventsource_client(&clients.hyper, &url, expected).await;
                assert_eq!(n, expected, "eventsource-client on {}", case.name);
            });
        });
        group.bench_function("reqwest-eventsource", |b| {
            b.to_async(&clients.runtime).iter(|| async {
                let n = drivers::http_reqwest_eventsource(&url, expected).await;
                assert_eq!(n, expected, "reqwest-eventsource on {}", case.name);
            });
        });
        group.finish();
    }
}

criterion_group!(benches, sse_e2e);
criterion_main!(benches);
