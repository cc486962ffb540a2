//! Group 2, measured interleaved (see `benches::interleave`): cases (a) and (b) over loopback
//! HTTP, one run of each client in turn, round after round, and the ratio taken within each
//! round.
//!
//! `cargo bench -p benches --bench sse_e2e_interleaved` (plain output; `SSE_ROUNDS` sets the
//! number of rounds, default 31).

use std::time::Duration;

use benches::drivers::{self, HttpClients};
use benches::{interleave, server::Server, workload};

fn main() {
    let cases = [workload::case_a(), workload::case_b()];
    let server = Server::start(&cases);
    let clients = HttpClients::new();
    for case in &cases {
        let url = server.url(case.name);
        let expected = case.events;
        let runtime = &clients.runtime;
        let mut floor_run = interleave::timed(expected, || {
            runtime.block_on(drivers::http_floor(&clients.floor, &url))
        });
        let mut wot_run = interleave::timed(expected, || {
            runtime.block_on(drivers::http_wot_sse(&clients.wot, &url, expected))
        });
        let mut client_run = interleave::timed(expected, || {
            let client = drivers::http_eventsource_client(&clients.hyper, &url, expected);
            runtime.block_on(client)
        });
        let mut contenders: [(&str, &mut dyn FnMut() -> Duration); 3] = [
            ("floor-reqwest-memchr", &mut floor_run),
            ("wot-sse", &mut wot_run),
            ("eventsource-client", &mut client_run),
        ];
        interleave::run_and_report(
            &format!("sse_e2e_interleaved/{}", case.name),
            31,
            &mut contenders,
            &[("eventsource-client", "wot-sse")],
        );
    }
}
