//! Group 1, case (a), measured interleaved: one run of each contender in turn, round after
//! round, and the ratio taken within each round.
//!
//! `cargo bench -p benches --bench sse_parse_interleaved` (plain output; `SSE_ROUNDS` sets the
//! number of rounds, default 101). Criterion measures one contender for seconds before the
//! next, so on a machine whose speed drifts (a shared VM) its ratios inherit the drift; here
//! the runs that are compared are milliseconds apart, and the median of the per-round ratios
//! is what `docs/benchmarks.md` reports next to criterion's figures.

use std::time::{Duration, Instant};

use benches::{Workload, drivers, workload};

type Driver = fn(&Workload) -> u64;

const CONTENDERS: [(&str, Driver); 3] = [
    ("floor-memchr", drivers::parse_floor),
    ("wot-sse", drivers::parse_wot_sse),
    ("eventsource-client", drivers::parse_eventsource_client),
];

fn time(driver: Driver, case: &Workload) -> Duration {
    let started = Instant::now();
    let events = driver(case);
    let elapsed = started.elapsed();
    assert_eq!(events, case.events, "every event arrives");
    elapsed
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let rounds: usize = std::env::var("SSE_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(101);
    let case = workload::case_a();
    for (_, driver) in CONTENDERS {
        time(driver, &case); // warm up
    }
    let mut times: [Vec<f64>; 3] = Default::default();
    for round in 0..rounds {
        // Rotate the order, so that no contender always runs right after the same one.
        for k in 0..CONTENDERS.len() {
            let index = (round + k) % CONTENDERS.len();
            let (_, driver) = CONTENDERS[index];
            times[index].push(time(driver, &case).as_secs_f64() * 1e3);
        }
    }
    let [floor, wot, client] = &times;
    for ((name, _), times) in CONTENDERS.iter().zip(&times) {
        println!(
            "sse_parse_interleaved/{}/{name}: median {:.3} ms over {rounds} rounds",
            case.name,
            median(times.clone())
        );
    }
    let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(a, b)| a / b).collect());
    println!(
        "sse_parse_interleaved/{}: wot-sse / floor = {:.2} (median of per-round ratios)",
        case.name,
        ratio(wot, floor)
    );
    println!(
        "sse_parse_interleaved/{}: eventsource-client / wot-sse = {:.2} (median of per-round ratios)",
        case.name,
        ratio(client, wot)
    );
}
