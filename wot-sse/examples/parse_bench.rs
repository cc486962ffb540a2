//! Parses benchmark workloads from memory, for profiling the parser with callgrind or perf.
//!
//! `cargo run --release -p wot-sse --example parse_bench -- [a|b|c1k|c1|d] [repeats]`
//!
//! Case `a` is 100,000 small WoT Profile notifications (`event: temperature`, about 70 bytes of
//! JSON `data`, `id`) in 64 KiB chunks; `b` 1,000 events of 64 KiB in 64 KiB chunks; `c1k` one
//! 8 MiB single-line event in 1 KiB chunks and `c1` the same in one chunk; `d` case `a` in
//! 1-byte chunks; `a-data-id` and `a-data` are case `a` without its `event` lines, and without
//! its `event` and `id` lines (to tell the cost of each kind of line apart). Prints the number
//! of events and the time taken.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use wot_sse::parser::{Item, Parser};

fn small_notifications(count: usize) -> String {
    let mut body = String::with_capacity(count * 120);
    for i in 0..count {
        let value = 18.0 + (i % 700) as f64 / 100.0;
        let _ = write!(
            body,
            "event: temperature\ndata: {{\"value\":{value:.2},\"unit\":\"cel\",\"ts\":\"2026-11-27T01:{:02}:{:02}.{:03}Z\",\"ok\":true}}\nid: {i}\n\n",
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 1000,
        );
    }
    body
}

fn large_events(count: usize, data_len: usize) -> String {
    let mut body = String::with_capacity(count * (data_len + 32));
    for i in 0..count {
        body.push_str("data: \"");
        body.extend((0..data_len - 2).map(|k| char::from(b'a' + ((k * 7 + i) % 26) as u8)));
        let _ = write!(body, "\"\nid: {i}\n\n");
    }
    body
}

/// Case `a` without some of its lines, to tell the cost of each kind of line apart.
fn strip_lines(body: &str, drop: &[&str]) -> String {
    body.split_inclusive('\n')
        .filter(|line| !drop.iter().any(|prefix| line.starts_with(prefix)))
        .collect()
}

#[inline(never)]
fn parse(body: &[u8], chunk_size: usize) -> u64 {
    let mut parser = Parser::new();
    let mut count = 0;
    let mut drain = |parser: &mut Parser| {
        while let Some(item) = parser.next_item() {
            if let Ok(Item::Event(event)) = item {
                black_box(&event);
                count += 1;
            }
        }
    };
    for chunk in body.chunks(chunk_size) {
        parser.feed(chunk);
        drain(&mut parser);
    }
    parser.end_of_body();
    drain(&mut parser);
    count
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "a".to_owned());
    let repeats: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(1);
    let (body, chunk_size) = match case.as_str() {
        "a" => (small_notifications(100_000), 64 * 1024),
        "d" => (small_notifications(100_000), 1),
        "a-data-id" => (
            strip_lines(&small_notifications(100_000), &["event:"]),
            64 * 1024,
        ),
        "a-data" => (
            strip_lines(&small_notifications(100_000), &["event:", "id:"]),
            64 * 1024,
        ),
        "b" => (large_events(1_000, 64 * 1024), 64 * 1024),
        "c1k" => (large_events(1, 8 * 1024 * 1024), 1024),
        "c1" => (large_events(1, 8 * 1024 * 1024), usize::MAX),
        other => {
            eprintln!("unknown case {other}; use a, b, c1k, c1 or d");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let mut events = 0;
    for _ in 0..repeats {
        events = parse(body.as_bytes(), chunk_size);
    }
    let elapsed = started.elapsed() / u32::try_from(repeats.max(1)).unwrap_or(u32::MAX);
    println!(
        "case {case}: {events} events, {} bytes, {elapsed:?} per run, {:.2} M events/s",
        body.len(),
        events as f64 / elapsed.as_secs_f64() / 1e6
    );
}
