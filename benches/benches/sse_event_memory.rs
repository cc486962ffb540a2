//! Heap bytes per parsed event when the events carry a 1 KiB id.
//!
//! A server sends one `id:` line of 1 KiB and then `SSE_EVENTS` small events without an id of
//! their own (default 10,000): by the standard each of them carries that id. The body is parsed
//! from memory in 4 KiB chunks and every event is kept, as a UI's event log keeps the last
//! thousand. Each line prints, per event, the heap still held by the kept events (`retained`,
//! the vector that holds them included, at its exact size: `size_of` one event plus what it
//! owns) and all bytes allocated while parsing (`allocated`), from a counting global allocator
//! (`stats_alloc`). A second case gives every event its own 1 KiB id, where 1 KiB per event is
//! the floor.
//!
//! `cargo bench -p benches --bench sse_event_memory` (`SSE_EVENTS=n`). Arguments that do not
//! start with `-` pick the lines by substring.

use std::alloc::System;
use std::convert::Infallible;

use benches::Workload;
use bytes::Bytes;
use eventsource_client::{Client as _, ReconnectOptions, SSE};
use futures::{StreamExt as _, executor::block_on, stream};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use wot_sse::parser::{Item, Parser};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ID_LEN: usize = 1024;
const CHUNK: usize = 4096;

/// The body: one 1 KiB id then `n` events, or `n` events each with a fresh 1 KiB id.
fn body(n: usize, id_per_event: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..n {
        if id_per_event || i == 0 {
            let id = format!("{i:0>width$}", width = ID_LEN);
            body.extend_from_slice(format!("id: {id}\n").as_bytes());
        }
        body.extend_from_slice(format!("data: {{\"temperature\":{i}}}\n\n").as_bytes());
    }
    body
}

/// `wot-sse`'s parser; the kept events.
fn wot_sse(workload: &Workload) -> Vec<wot_sse::Event> {
    let mut parser = Parser::new();
    let mut events = Vec::new();
    for chunk in workload.chunks() {
        parser.feed(chunk);
        while let Some(item) = parser.next_item() {
            if let Ok(Item::Event(event)) = item {
                events.push(event);
            }
        }
    }
    parser.end_of_body();
    events
}

/// `eventsource-stream` over an in-memory stream of the chunks.
fn eventsource_stream(workload: &Workload) -> Vec<eventsource_stream::Event> {
    use eventsource_stream::Eventsource as _;
    let body = stream::iter(workload.chunks().map(Ok::<Bytes, Infallible>));
    block_on(
        body.eventsource()
            .map(|event| event.expect("event"))
            .collect(),
    )
}

/// `eventsource-client` through a transport that answers with the chunks from memory.
fn eventsource_client(workload: &Workload) -> Vec<eventsource_client::Event> {
    let client = eventsource_client::ClientBuilder::for_url("http://in-memory.invalid/sse")
        .expect("a valid URL")
        .reconnect(ReconnectOptions::reconnect(false).build())
        .build_with_transport(benches::drivers::MemoryTransport {
            chunks: workload.chunks(),
        });
    block_on(async {
        let mut events = Vec::new();
        let mut stream = client.stream();
        while let Some(item) = stream.next().await {
            match item {
                Ok(SSE::Event(event)) => events.push(event),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        events
    })
}

/// Parses with `parse`, keeps the events, and prints the heap per event.
fn line<T>(name: &str, workload: &Workload, parse: fn(&Workload) -> Vec<T>) {
    let (case, n) = (workload.name, workload.events);
    // A warm-up run, so one-off allocations are not charged to the events.
    drop(parse(workload));
    let region = Region::new(GLOBAL);
    let mut events = parse(workload);
    // The kept events in a vector of exactly their number, as a bounded log would hold them.
    events.shrink_to_fit();
    let stats = region.change();
    assert_eq!(events.len() as u64, n, "{name} on {case}");
    // `stats_alloc` counts the growth of a `realloc` in `bytes_allocated` (and a shrink in
    // `bytes_deallocated`), so the live heap is their difference.
    let retained = stats.bytes_allocated as f64 - stats.bytes_deallocated as f64;
    let allocated = stats.bytes_allocated as f64;
    drop(events);
    println!(
        "sse_event_memory/{case}/{name}: {:.0} bytes retained, {:.0} bytes allocated per event \
         ({n} events)",
        retained / n as f64,
        allocated / n as f64,
    );
}

fn main() {
    let n: usize = std::env::var("SSE_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    for (case, id_per_event) in [("one-1KiB-id", false), ("1KiB-id-per-event", true)] {
        let workload = Workload {
            name: case,
            body: Bytes::from(body(n, id_per_event)),
            chunk_size: CHUNK,
            events: n as u64,
        };
        let selected = |name: &str| {
            let full = format!("{case}/{name}");
            filters.is_empty() || filters.iter().any(|f| full.contains(f.as_str()))
        };
        if selected("wot-sse") {
            line("wot-sse", &workload, wot_sse);
        }
        if selected("eventsource-client") {
            line("eventsource-client", &workload, eventsource_client);
        }
        if selected("eventsource-stream") {
            line("eventsource-stream", &workload, eventsource_stream);
        }
    }
}
