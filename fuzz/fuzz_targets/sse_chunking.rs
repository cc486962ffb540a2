//! The SSE parser's output must not depend on how the body is split into chunks, nor on
//! whether items are taken after every chunk or only at the end; and what it yields must
//! respect the maximum event size.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wot_sse::parser::{Item, ParseError, Parser};

#[derive(Debug, Arbitrary)]
struct Input {
    /// Selects the maximum event size (small ones exercise the overflow path).
    limit: u8,
    /// Where to cut the first body (taken modulo its length).
    cuts: Vec<u16>,
    /// Take items after every chunk (as the client does) or only after `end_of_body`.
    drain_each: bool,
    first: Vec<u8>,
    /// A second body after `end_of_body`, as after a reconnect.
    second: Vec<u8>,
}

type Outcome = Vec<Result<Item, ParseError>>;

fn drain(parser: &mut Parser, out: &mut Outcome) {
    while let Some(item) = parser.next_item() {
        out.push(item);
    }
}

fn run(limit: usize, chunks: &[&[u8]], second: &[u8], drain_each: bool) -> (Outcome, String) {
    let mut parser = Parser::with_max_event_size(limit);
    let mut out = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        if drain_each {
            drain(&mut parser, &mut out);
            // As a stream does while it waits for the next chunk.
            parser.free_idle_buffers();
        }
    }
    parser.end_of_body();
    drain(&mut parser, &mut out);
    parser.feed(second);
    drain(&mut parser, &mut out);
    parser.end_of_body();
    drain(&mut parser, &mut out);
    (out, parser.last_event_id().to_owned())
}

fuzz_target!(|input: Input| {
    let limit = match input.limit % 4 {
        0 => wot_sse::parser::DEFAULT_MAX_EVENT_SIZE,
        1 => 8,
        2 => 64,
        _ => 1024,
    };
    let body = input.first.as_slice();
    let mut cuts: Vec<usize> = input
        .cuts
        .iter()
        .map(|&c| {
            if body.is_empty() {
                0
            } else {
                usize::from(c) % (body.len() + 1)
            }
        })
        .collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&body[start..cut]);
        start = cut;
    }
    chunks.push(&body[start..]);

    // Both runs take items at the same moments relative to the body (after every chunk, or
    // only after `end_of_body`): an over-long line that never ends is reported while it
    // streams in, but not when the whole body was fed and ended before anything was taken.
    let whole = run(limit, &[body], &input.second, input.drain_each);
    let split = run(limit, &chunks, &input.second, input.drain_each);
    assert_eq!(whole, split, "chunks: {chunks:?}");

    for item in &whole.0 {
        if let Ok(Item::Event(event)) = item {
            assert!(event.data().len() <= limit, "event larger than the limit");
            assert!(!event.id().contains('\0'));
        }
    }
});
