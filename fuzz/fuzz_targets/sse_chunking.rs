//! The SSE parser's output must not depend on how the body is split into chunks, nor on
//! whether items are taken after every chunk or only at the end; and what it yields must
//! respect the maximum event size and the limits on the id, the event type and comments.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wot_sse::parser::{Item, ParseError, Parser};

#[derive(Debug, Arbitrary)]
struct Input {
    /// Selects the maximum event size (small ones exercise the overflow path).
    limit: u8,
    /// Selects the limits on the id, the event type and a comment line.
    field_limits: u8,
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

/// The maximum event size and the id, event type and comment limits of one run.
#[derive(Clone, Copy)]
struct Limits {
    event: usize,
    id: usize,
    event_type: usize,
    comment: usize,
}

fn run(limits: Limits, chunks: &[&[u8]], second: &[u8], drain_each: bool) -> (Outcome, String) {
    let mut parser = Parser::with_max_event_size(limits.event)
        .with_max_id_len(limits.id)
        .with_max_event_type_len(limits.event_type)
        .with_max_comment_len(limits.comment);
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
    let small = [0, 1, 4, 16];
    let pick = |shift: u8, default: usize| match (input.field_limits >> shift) & 3 {
        0 => default,
        n => small.get(usize::from(n)).copied().unwrap_or(default),
    };
    let limits = Limits {
        event: limit,
        id: pick(0, wot_sse::parser::DEFAULT_MAX_ID_LEN),
        event_type: pick(2, wot_sse::parser::DEFAULT_MAX_EVENT_TYPE_LEN),
        comment: pick(4, wot_sse::parser::DEFAULT_MAX_COMMENT_LEN),
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
    let whole = run(limits, &[body], &input.second, input.drain_each);
    let split = run(limits, &chunks, &input.second, input.drain_each);
    assert_eq!(whole, split, "chunks: {chunks:?}");

    for item in &whole.0 {
        if let Ok(Item::Comment(comment)) = item {
            assert!(
                comment.len() <= limits.comment,
                "comment longer than its limit"
            );
        }
        if let Ok(Item::Event(event)) = item {
            assert!(event.data().len() <= limit, "event larger than the limit");
            assert!(!event.id().contains('\0'));
            assert!(event.id().len() <= limits.id, "id longer than its limit");
            // An event without an `event` field is a `message`, whatever the limit.
            assert!(
                event.event_type() == "message" || event.event_type().len() <= limits.event_type,
                "event type longer than its limit"
            );
        }
    }
});
