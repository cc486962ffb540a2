//! Every driver must see every event of every workload shape, or its timings mean nothing.
//! Small versions of the bench workloads keep this fast in debug builds.

use benches::{Workload, drivers, server::Server, workload};

fn small_cases() -> Vec<Workload> {
    let a = Workload {
        name: "small",
        body: workload::small_notifications(500),
        chunk_size: 4096,
        events: 500,
    };
    vec![
        Workload {
            name: "small-1B",
            chunk_size: 1,
            ..a.clone()
        },
        Workload {
            name: "small-7B",
            chunk_size: 7,
            ..a.clone()
        },
        a,
        Workload {
            name: "large",
            body: workload::large_events(20, 64 * 1024),
            chunk_size: 64 * 1024,
            events: 20,
        },
        Workload {
            name: "single-line",
            body: workload::single_line_event(256 * 1024),
            chunk_size: 1024,
            events: 1,
        },
    ]
}

#[test]
fn parse_drivers_count_every_event() {
    for case in small_cases() {
        assert_eq!(
            drivers::parse_floor(&case),
            case.events,
            "floor {}",
            case.name
        );
        assert_eq!(
            drivers::parse_wot_sse(&case),
            case.events,
            "wot-sse {}",
            case.name
        );
        assert_eq!(
            drivers::parse_eventsource_client(&case),
            case.events,
            "eventsource-client {}",
            case.name
        );
        assert_eq!(
            drivers::parse_eventsource_stream(&case),
            case.events,
            "eventsource-stream {}",
            case.name
        );
    }
}

#[test]
fn http_drivers_receive_every_event_from_the_loopback_server() {
    let cases = small_cases();
    let server = Server::start(&cases);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let wot = wot_sse::SseClient::new();
    let hyper = benches::drivers::eventsource_client_transport();
    let floor = reqwest::Client::new();
    runtime.block_on(async {
        for case in cases.iter().filter(|c| c.chunk_size > 1) {
            let url = server.url(case.name);
            let n = case.events;
            assert_eq!(
                drivers::http_floor(&floor, &url).await,
                n,
                "floor {}",
                case.name
            );
            assert_eq!(
                drivers::http_wot_sse(&wot, &url, n).await,
                n,
                "wot-sse {}",
                case.name
            );
            assert_eq!(
                drivers::http_eventsource_client(&hyper, &url, n).await,
                n,
                "eventsource-client {}",
                case.name
            );
            assert_eq!(
                drivers::http_reqwest_eventsource(&url, n).await,
                n,
                "reqwest-eventsource {}",
                case.name
            );
        }
    });
}

#[test]
fn bench_workloads_have_the_sizes_the_issue_names() {
    let a = workload::case_a();
    assert_eq!(a.events, 100_000);
    assert_eq!(a.chunk_size, 64 * 1024);
    assert_eq!(drivers::parse_floor(&a), a.events);
    let b = workload::case_b();
    assert_eq!((b.events, b.chunk_size), (1_000, 64 * 1024));
    assert!(b.body.len() > 1_000 * 64 * 1024);
    let c = workload::case_c_chunked();
    assert_eq!(
        (c.chunk_count(), workload::case_c_one_chunk().chunk_count()),
        (8 * 1024 + 1, 1)
    );
    assert_eq!(workload::case_d().chunk_count(), a.body.len());
}
