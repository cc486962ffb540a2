//! Group 1, the slow cell: `eventsource-stream` on one 8 MiB single-line event in 1 KiB chunks.
//!
//! It re-scans the pending line on every chunk (quadratic), so one run takes about a minute;
//! criterion's smallest sample (10 runs) would take ten. This binary times a few runs with a
//! plain clock instead and prints them with `wot-sse` and `eventsource-client` on the same input
//! for reference. `cargo bench -p benches --bench sse_parse_slow` (`SSE_SLOW_RUNS=n`, default 3).

use std::time::{Duration, Instant};

use benches::{Workload, drivers, workload};

fn time(name: &str, workload: &Workload, runs: usize, driver: fn(&Workload) -> u64) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let events = driver(workload);
            let elapsed = start.elapsed();
            assert_eq!(events, workload.events, "{name} on {}", workload.name);
            elapsed
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    let mb_s = workload.body.len() as f64 / median.as_secs_f64() / 1e6;
    println!(
        "sse_parse_slow/{}/{name}: median {median:.3?} of {runs} runs {times:.3?} ({mb_s:.1} MB/s)",
        workload.name
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that names neither workload skips all.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    let runs = std::env::var("SSE_SLOW_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3usize)
        .max(1);
    for workload in [workload::case_c_chunked(), workload::case_c_one_chunk()] {
        if !workload.name.contains(&filter) && !"eventsource-stream".contains(&filter) {
            continue;
        }
        time("wot-sse", &workload, runs.max(5), drivers::parse_wot_sse);
        time(
            "eventsource-client",
            &workload,
            runs.max(5),
            drivers::parse_eventsource_client,
        );
        time(
            "eventsource-stream",
            &workload,
            runs,
            drivers::parse_eventsource_stream,
        );
    }
}
