//! Group 1, case (a), measured interleaved (see `benches::interleave`): one run of each
//! contender in turn, round after round, and the ratio taken within each round.
//!
//! `cargo bench -p benches --bench sse_parse_interleaved` (plain output; `SSE_ROUNDS` sets the
//! number of rounds, default 101). `docs/benchmarks.md` reports these ratios next to
//! criterion's figures.

use std::time::Duration;

use benches::{drivers, interleave, workload};

fn main() {
    let case = workload::case_a();
    let mut floor = interleave::timed(case.events, || drivers::parse_floor(&case));
    let mut wot = interleave::timed(case.events, || drivers::parse_wot_sse(&case));
    let mut client = interleave::timed(case.events, || drivers::parse_eventsource_client(&case));
    let mut contenders: [(&str, &mut dyn FnMut() -> Duration); 3] = [
        ("floor-memchr", &mut floor),
        ("wot-sse", &mut wot),
        ("eventsource-client", &mut client),
    ];
    interleave::run_and_report(
        &format!("sse_parse_interleaved/{}", case.name),
        101,
        &mut contenders,
        &[
            ("wot-sse", "floor-memchr"),
            ("eventsource-client", "wot-sse"),
        ],
    );
}
