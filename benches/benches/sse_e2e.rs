//! Group 2: end to end over loopback HTTP. A local axum server (its own runtime thread) streams
//! the pre-encoded bodies of cases (a) and (b) in 64 KiB chunks as fast as it can; each client
//! receives every event. `cargo bench -p benches --bench sse_e2e`.

use std::time::Duration;

use benches::{drivers, server::Server, workload};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use launchdarkly_sdk_transport::HyperTransport;

fn sse_e2e(c: &mut Criterion) {
    let cases = [workload::case_a(), workload::case_b()];
    let server = Server::start(&cases);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    // Clients are built once, as an application would, so connection setup is not measured.
    let wot = wot_sse::SseClient::new();
    let hyper = HyperTransport::new().expect("eventsource-client transport");
    let floor = reqwest::Client::new();

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
            b.to_async(&runtime).iter(|| async {
                let n = drivers::http_floor(&floor, &url).await;
                assert_eq!(n, expected, "floor on {}", case.name);
            });
        });
        group.bench_function("wot-sse", |b| {
            b.to_async(&runtime).iter(|| async {
                let n = drivers::http_wot_sse(&wot, &url, expected).await;
                assert_eq!(n, expected, "wot-sse on {}", case.name);
            });
        });
        group.bench_function("eventsource-client", |b| {
            b.to_async(&runtime).iter(|| async {
                let n = drivers::http_eventsource_client(&hyper, &url, expected).await;
                assert_eq!(n, expected, "eventsource-client on {}", case.name);
            });
        });
        group.bench_function("reqwest-eventsource", |b| {
            b.to_async(&runtime).iter(|| async {
                let n = drivers::http_reqwest_eventsource(&url, expected).await;
                assert_eq!(n, expected, "reqwest-eventsource on {}", case.name);
            });
        });
        group.finish();
    }
}

criterion_group!(benches, sse_e2e);
criterion_main!(benches);
