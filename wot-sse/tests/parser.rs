//! The sans-I/O parser against the shared WHATWG vectors and a naive reference parser.
//!
//! Every vector runs with its own chunks, as one chunk, one byte per chunk, split at every
//! offset, and with random splits (proptest). Random bodies are checked against `reference`,
//! a literal transcription of the WHATWG algorithm that decodes the whole body first.

use std::time::Duration;

use proptest::prelude::*;
use serde::Deserialize;
use wot_sse::parser::{Item, MAX_RETRY, ParseError, Parser};

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/sse-vectors/vectors.json"
));

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    chunks: Option<Vec<String>>,
    chunks_hex: Option<Vec<String>>,
    events: Vec<ExpectedEvent>,
    comments: Vec<String>,
    last_event_id: String,
    retry: Option<u64>,
}

#[derive(Deserialize)]
struct ExpectedEvent {
    #[serde(rename = "type")]
    event_type: String,
    data: String,
    id: String,
}

impl Case {
    fn chunks(&self) -> Vec<Vec<u8>> {
        match (&self.chunks, &self.chunks_hex) {
            (Some(chunks), _) => chunks.iter().map(|c| c.as_bytes().to_vec()).collect(),
            (None, Some(hex)) => hex.iter().map(|c| unhex(c)).collect(),
            (None, None) => panic!("case {:?} has no chunks", self.name),
        }
    }

    fn body(&self) -> Vec<u8> {
        self.chunks().concat()
    }

    fn expected(&self) -> Outcome {
        Outcome {
            events: self
                .events
                .iter()
                .map(|e| (e.event_type.clone(), e.data.clone(), e.id.clone()))
                .collect(),
            comments: self.comments.clone(),
            last_event_id: self.last_event_id.clone(),
            retry: self.retry.map(Duration::from_millis),
            errors: 0,
        }
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("valid hex in vectors.json"))
        .collect()
}

fn cases() -> Vec<Case> {
    let vectors: Vectors = serde_json::from_str(VECTORS).expect("vectors.json parses");
    assert!(vectors.cases.len() > 50, "expected the full vector set");
    vectors.cases
}

/// What a parser produced for one body.
#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    events: Vec<(String, String, String)>,
    comments: Vec<String>,
    last_event_id: String,
    retry: Option<Duration>,
    errors: usize,
}

impl Outcome {
    fn take(&mut self, item: Result<Item, ParseError>) {
        match item {
            Ok(Item::Event(e)) => {
                self.events
                    .push((e.event_type().into(), e.data().into(), e.id().into()));
            }
            Ok(Item::Comment(c)) => self.comments.push(c),
            Ok(Item::Retry(r)) => self.retry = Some(r),
            Ok(other) => panic!("an item this test does not know: {other:?}"),
            // Over-large events, and ids, event types and comments over their own limits.
            Err(_) => self.errors += 1,
        }
    }
}

/// Feeds the chunks one at a time, draining after each and then freeing idle buffers, as a
/// stream waiting for its next chunk does; then ends the body.
fn run_with(mut parser: Parser, chunks: &[&[u8]]) -> Outcome {
    let mut out = Outcome::default();
    for chunk in chunks {
        parser.feed(chunk);
        while let Some(item) = parser.next_item() {
            out.take(item);
        }
        parser.free_idle_buffers();
    }
    parser.end_of_body();
    while let Some(item) = parser.next_item() {
        out.take(item);
    }
    assert_eq!(out.retry, parser.retry(), "retry() agrees with the items");
    out.last_event_id = parser.last_event_id().to_owned();
    out
}

fn run(chunks: &[&[u8]]) -> Outcome {
    run_with(Parser::new(), chunks)
}

fn split_at_points(body: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = points.iter().map(|p| p % (body.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain([body.len()]) {
        chunks.push(body[start..p].to_vec());
        start = p;
    }
    chunks
}

fn as_slices(chunks: &[Vec<u8>]) -> Vec<&[u8]> {
    chunks.iter().map(Vec::as_slice).collect()
}

#[test]
fn vectors_with_their_own_chunks() {
    for case in cases() {
        let chunks = case.chunks();
        assert_eq!(run(&as_slices(&chunks)), case.expected(), "{}", case.name);
    }
}

#[test]
fn vectors_in_one_chunk() {
    for case in cases() {
        assert_eq!(run(&[&case.body()]), case.expected(), "{}", case.name);
    }
}

#[test]
fn vectors_one_byte_per_chunk() {
    for case in cases() {
        let body = case.body();
        let chunks: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(run(&chunks), case.expected(), "{}", case.name);
    }
}

#[test]
fn vectors_split_at_every_offset() {
    for case in cases() {
        let body = case.body();
        for at in 0..=body.len() {
            let (a, b) = body.split_at(at);
            assert_eq!(run(&[a, b]), case.expected(), "{} split at {at}", case.name);
        }
    }
}

#[test]
fn vectors_fed_all_before_draining() {
    for case in cases() {
        let mut parser = Parser::new();
        for chunk in case.chunks() {
            parser.feed(&chunk);
        }
        parser.end_of_body();
        let mut out = Outcome::default();
        while let Some(item) = parser.next_item() {
            out.take(item);
        }
        out.last_event_id = parser.last_event_id().to_owned();
        assert_eq!(out, case.expected(), "{}", case.name);
    }
}

#[test]
fn vectors_agree_with_the_reference_parser() {
    for case in cases() {
        assert_eq!(reference(&case.body()), case.expected(), "{}", case.name);
    }
}

proptest! {
    #[test]
    fn vectors_with_random_splits(
        index in any::<prop::sample::Index>(),
        points in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let cases = cases();
        let case = index.get(&cases);
        let chunks = split_at_points(&case.body(), &points);
        prop_assert_eq!(run(&as_slices(&chunks)), case.expected(), "{}", &case.name);
    }

    #[test]
    fn random_bodies_match_the_reference(
        body in body_strategy(),
        points in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let chunks = split_at_points(&body, &points);
        prop_assert_eq!(run(&as_slices(&chunks)), reference(&body));
    }

    #[test]
    fn random_bodies_one_byte_at_a_time(body in body_strategy()) {
        let chunks: Vec<&[u8]> = body.chunks(1).collect();
        prop_assert_eq!(run(&chunks), reference(&body));
    }

    #[test]
    fn small_limit_gives_the_same_result_for_any_split(
        body in body_strategy(),
        limit in 4usize..24,
        points in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let whole = run_with(Parser::with_max_event_size(limit), &[&body]);
        let chunks = split_at_points(&body, &points);
        let split = run_with(Parser::with_max_event_size(limit), &as_slices(&chunks));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn small_field_limits_give_the_same_result_for_any_split(
        body in body_strategy(),
        event_limit in 4usize..48,
        field_limit in 0usize..12,
        points in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let limited = || {
            Parser::with_max_event_size(event_limit)
                .with_max_id_len(field_limit)
                .with_max_event_type_len(field_limit)
                .with_max_comment_len(field_limit)
        };
        let whole = run_with(limited(), &[&body]);
        let chunks = split_at_points(&body, &points);
        let split = run_with(limited(), &as_slices(&chunks));
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn a_second_body_starts_a_new_stream(
        first in body_strategy(),
        second in body_strategy(),
        points in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut parser = Parser::new();
        let mut got = Outcome::default();
        for body in [&first, &second] {
            for chunk in split_at_points(body, &points) {
                parser.feed(&chunk);
                while let Some(item) = parser.next_item() {
                    got.take(item);
                }
            }
            parser.end_of_body();
        }
        while let Some(item) = parser.next_item() {
            got.take(item);
        }
        got.last_event_id = parser.last_event_id().to_owned();

        let one = reference(&first);
        let two = reference_from(&second, &one.last_event_id, one.retry);
        let mut want = one;
        want.events.extend(two.events);
        want.comments.extend(two.comments);
        want.last_event_id = two.last_event_id;
        want.retry = two.retry;
        prop_assert_eq!(got, want);
    }
}

/// Bodies built from the pieces that matter to the grammar, plus stray bytes.
fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(&b"data"[..]),
        Just(&b"data: "[..]),
        Just(&b"event"[..]),
        Just(&b"id"[..]),
        Just(&b"retry"[..]),
        Just(&b"Data"[..]),
        Just(&b":"[..]),
        Just(&b" "[..]),
        Just(&b"\n"[..]),
        Just(&b"\r"[..]),
        Just(&b"\r\n"[..]),
        Just(&b"\n\n"[..]),
        Just(&b"12"[..]),
        Just(&b"x"[..]),
        Just(&b"\0"[..]),
        Just(&b"\xEF\xBB\xBF"[..]),
        Just(&b"\xEF\xBB"[..]),
        Just(&b"\xC3\xA9"[..]),
        Just(&b"\xF0\x9F\x98\x80"[..]),
        Just(&b"\xF0\x9F"[..]),
        Just(&b"\xFF"[..]),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

fn reference(body: &[u8]) -> Outcome {
    reference_from(body, "", None)
}

/// The WHATWG algorithm written as plainly as possible: decode the whole body, split it into
/// lines, interpret each line. `last_event_id` and `retry` carry over from an earlier body.
fn reference_from(body: &[u8], last_event_id: &str, retry: Option<Duration>) -> Outcome {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut line));
            }
            '\n' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }
    // `line` now holds the incomplete last line, which is discarded.

    let mut out = Outcome {
        last_event_id: last_event_id.to_owned(),
        retry,
        ..Outcome::default()
    };
    let mut data = String::new();
    let mut event_type = String::new();
    let mut id_buffer = last_event_id.to_owned();
    for line in lines {
        if line.is_empty() {
            out.last_event_id = id_buffer.clone();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            let t = if event_type.is_empty() {
                "message".to_owned()
            } else {
                std::mem::take(&mut event_type)
            };
            out.events
                .push((t, std::mem::take(&mut data), out.last_event_id.clone()));
            continue;
        }
        if let Some(comment) = line.strip_prefix(':') {
            out.comments.push(comment.to_owned());
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match name {
            "event" => event_type = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let millis = Duration::from_millis(value.parse().unwrap_or(u64::MAX));
                out.retry = Some(millis.min(MAX_RETRY));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn over_long_event_gives_one_error_and_parsing_goes_on() {
    let big = "x".repeat(100);
    let body = format!(
        "data: a\n\nid: 5\ndata: {big}\ndata: more\nevent: t\n\ndata: b\n\n:{big}\n\ndata: c\n\n"
    );
    let body = body.as_bytes();
    let expect = Outcome {
        events: vec![
            ("message".into(), "a".into(), "".into()),
            ("message".into(), "b".into(), "5".into()),
            ("message".into(), "c".into(), "5".into()),
        ],
        comments: vec![],
        last_event_id: "5".into(),
        retry: None,
        errors: 2,
    };
    let splits: Vec<Vec<Vec<u8>>> = vec![
        vec![body.to_vec()],
        body.chunks(1).map(<[u8]>::to_vec).collect(),
        body.chunks(7).map(<[u8]>::to_vec).collect(),
        body.chunks(64).map(<[u8]>::to_vec).collect(),
    ];
    for chunks in splits {
        let got = run_with(
            Parser::with_max_event_size(50).with_max_comment_len(50),
            &as_slices(&chunks),
        );
        assert_eq!(got, expect, "chunk size {}", chunks[0].len());
    }
}

#[test]
fn over_long_comment_skips_only_that_line() {
    let body = format!(":{}\ndata: after\n\n", "c".repeat(300));
    for chunk_size in [1, 7, 64, body.len()] {
        let chunks: Vec<&[u8]> = body.as_bytes().chunks(chunk_size).collect();
        let got = run_with(Parser::new().with_max_comment_len(100), &chunks);
        assert_eq!(got.errors, 1, "chunks of {chunk_size}");
        assert_eq!(
            got.events,
            vec![("message".into(), "after".into(), "".into())],
            "chunks of {chunk_size}"
        );
    }
}

/// Found by proptest: after a line ended by CR, a line of a skipped block that was dropped
/// at a chunk's end must not let its LF pass for the LF of that CRLF.
#[test]
fn a_dropped_line_after_a_cr_ends_at_its_own_lf() {
    let body = "abcdefghij\rxyz12\n\ndata: 1\n\n";
    for at in 0..=body.len() {
        let (a, b) = body.as_bytes().split_at(at);
        let got = run_with(Parser::with_max_event_size(8), &[a, b]);
        assert_eq!(got.errors, 1, "split at {at}");
        assert_eq!(
            got.events,
            vec![("message".into(), "1".into(), "".into())],
            "split at {at}"
        );
    }
}

#[test]
fn many_data_lines_hit_the_limit_on_their_sum() {
    let body = "data: 0123456789\n".repeat(10) + "\ndata: ok\n\n";
    let got = run_with(Parser::with_max_event_size(100), &[body.as_bytes()]);
    assert_eq!(got.errors, 1);
    assert_eq!(got.events, vec![("message".into(), "ok".into(), "".into())]);
    // The limit covers the data so far plus the raw line being read: for the 9th line that is
    // 8 * 10 bytes + 7 joining LFs + 16 bytes of "data: 0123456789" = 103 bytes.
    let body = "data: 0123456789\n".repeat(9) + "\n";
    for chunk_size in [1, 5, body.len()] {
        let chunks: Vec<&[u8]> = body.as_bytes().chunks(chunk_size).collect();
        let at = run_with(Parser::with_max_event_size(103), &chunks);
        assert_eq!(
            (at.errors, at.events.len()),
            (0, 1),
            "chunks of {chunk_size}"
        );
        let over = run_with(Parser::with_max_event_size(102), &chunks);
        assert_eq!(
            (over.errors, over.events.len()),
            (1, 0),
            "chunks of {chunk_size}"
        );
    }
}

#[test]
fn default_limit_takes_a_16_mib_event() {
    let data = "y".repeat(16 * 1024 * 1024);
    let body = format!("data: {data}\n\n");
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(64 * 1024).collect();
    let got = run(&chunks);
    assert_eq!(got.errors, 0);
    assert_eq!(got.events.len(), 1);
    assert_eq!(got.events[0].1.len(), data.len());
}

/// Chunks are validated a few KiB at a time: characters of every width across those
/// boundaries, and an invalid byte after the first of them, decode as in one piece.
#[test]
fn characters_across_validation_pieces_decode_as_a_whole() {
    let text: String = "aé€😀".repeat(1500); // 10 bytes a round: pieces cut every width
    for invalid_at in [None, Some(5000), Some(9000)] {
        let mut data = text.clone().into_bytes();
        if let Some(at) = invalid_at {
            data[at] = 0xFF;
        }
        let expected = String::from_utf8_lossy(&data).into_owned();
        let mut body = b"data: ".to_vec();
        body.extend_from_slice(&data);
        body.extend_from_slice(b"\n\n");
        for chunks in [vec![&body[..]], body.chunks(4099).collect()] {
            let got = run(&chunks);
            assert_eq!(got.events.len(), 1);
            assert_eq!(got.events[0].1, expected, "invalid byte at {invalid_at:?}");
        }
    }
}

/// A character split at a chunk's end is finished from the next chunk's first bytes: valid
/// characters of every width, invalid and cut-off sequences, split into three chunks at every
/// pair of offsets (so also a character over three chunks), decode as in one piece.
#[test]
fn characters_split_over_chunks_decode_as_in_one_piece() {
    let data: &[u8] = b"a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xE0\x80\xED\xA0\x80\xF4\x90\x80\x80\
                        \xC0\xAF\x80\xE2\x82 \xF0\x9F\x98z\xF0\x9F\x98\x80\xFF";
    let expected = String::from_utf8_lossy(data).into_owned();
    let mut body = b"data: ".to_vec();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\n\n");
    for first in 0..=body.len() {
        for second in first..=body.len() {
            let chunks = [&body[..first], &body[first..second], &body[second..]];
            let got = run(&chunks);
            assert_eq!(got.events.len(), 1, "split at {first} and {second}");
            assert_eq!(got.events[0].1, expected, "split at {first} and {second}");
        }
    }
}

#[test]
fn chunked_8_mib_line_parses_in_linear_time() {
    // 8 MiB in 256-byte chunks: a parser that rescans or copies the pending line for every
    // chunk would touch ~128 GB here and not finish within the test timeout.
    let data = "z".repeat(8 * 1024 * 1024);
    let body = format!("data: {data}\n\n");
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(256).collect();
    let started = std::time::Instant::now();
    let got = run(&chunks);
    assert_eq!(got.events.len(), 1);
    assert_eq!(got.events[0].1, data);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn end_of_body_discards_the_unfinished_block_and_keeps_the_id() {
    let mut parser = Parser::new();
    parser.feed(b"id: 1\ndata: a\n\nid: 2\ndata: partial\n");
    assert!(matches!(parser.next_item(), Some(Ok(Item::Event(e))) if e.id() == "1"));
    assert!(parser.next_item().is_none());
    parser.end_of_body();
    // The new body starts with a BOM and an id-less event: it carries id 1, not 2.
    parser.feed("\u{FEFF}data: b\n\n".as_bytes());
    match parser.next_item() {
        Some(Ok(Item::Event(e))) => assert_eq!((e.data(), e.id()), ("b", "1")),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(parser.last_event_id(), "1");
}

#[test]
fn cr_at_end_of_a_body_does_not_eat_the_next_bodys_lf() {
    let mut parser = Parser::new();
    parser.feed(b"data: a\r");
    parser.end_of_body();
    parser.feed(b"\ndata: b\n\n");
    let mut out = Outcome::default();
    while let Some(item) = parser.next_item() {
        out.take(item);
    }
    assert_eq!(out.events, vec![("message".into(), "b".into(), "".into())]);
}

#[test]
fn set_last_event_id_seeds_events() {
    let mut parser = Parser::new();
    parser.set_last_event_id("seed");
    parser.feed(b"data: a\n\n");
    match parser.next_item() {
        Some(Ok(Item::Event(e))) => assert_eq!(e.id(), "seed"),
        other => panic!("unexpected {other:?}"),
    }
    parser.set_last_event_id("bad\0id");
    assert_eq!(parser.last_event_id(), "seed");
}

#[test]
fn huge_retry_saturates() {
    let got = run(&[b"retry: 99999999999999999999999\n\n"]);
    assert_eq!(got.retry, Some(MAX_RETRY));
    // The largest value kept as it is, and the first one that is not.
    assert_eq!(
        run(&[b"retry: 4294967294\n\n"]).retry,
        Some(Duration::from_millis(4_294_967_294))
    );
    assert_eq!(run(&[b"retry: 4294967295\n\n"]).retry, Some(MAX_RETRY));
}

/// A line that will be an `event` field, cut before its colon: the part already received is no
/// reason to report the event limit, since a body fed in one piece would apply the type's own
/// limit (found by `small_limit_gives_the_same_result_for_any_split`).
#[test]
fn a_field_name_cut_before_its_colon_waits_for_the_rest() {
    let body: &[u8] = b"event: alarm\ndata: 1\n\n";
    for cut in 1..body.len() {
        let (a, b) = body.split_at(cut);
        let split = run_with(Parser::with_max_event_size(4), &[a, b]);
        let whole = run_with(Parser::with_max_event_size(4), &[body]);
        assert_eq!(split, whole, "cut at {cut}");
    }
}
