//! The sans-I/O event-stream parser.
//!
//! [`Parser`] turns the bytes of a `text/event-stream` body into [`Item`]s, following the WHATWG
//! HTML Standard, "Server-sent events", sections "Parsing an event stream" and "Interpreting an
//! event stream". It does no I/O and keeps no clock: feed it chunks as they arrive, take the
//! items out, and tell it when a body ends.
//!
//! ```
//! use wot_sse::parser::{Item, Parser};
//!
//! let mut parser = Parser::new();
//! parser.feed(b"event: temperature\nda");
//! assert!(parser.next_item().is_none()); // needs more bytes
//! parser.feed(b"ta: 21.5\nid: 7\n\n");
//! match parser.next_item() {
//!     Some(Ok(Item::Event(event))) => {
//!         assert_eq!((event.event_type(), event.data(), event.id()), ("temperature", "21.5", "7"));
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! assert_eq!(parser.last_event_id(), "7");
//! ```
//!
//! # How it works
//!
//! Two layers, each a small state machine:
//!
//! * **Decoding** ([`Parser::feed`]). Before the first byte of a body a UTF-8 BOM is matched
//!   byte by byte (it may be split across chunks). Each chunk is then decoded as a stream: it is
//!   validated once, invalid sequences become U+FFFD, and the (at most 3) bytes of a character
//!   split at the chunk's end wait for the next chunk. The text is appended to a buffer.
//! * **Line splitting** ([`Parser::next_item`]). The buffer is searched for CR and LF with
//!   `memchr`, each byte once. A line inside the buffer is interpreted in place as a `&str`
//!   slice. Only the unfinished tail of the buffer is copied into the pending-line buffer, which
//!   the next terminator completes. A CR ends a line at once and sets `skip_lf`, so an LF that
//!   follows (perhaps in the next chunk) is not taken for an empty line.
//! * **Interpretation** (`Block`). Each complete line updates WHATWG's buffers (data, event
//!   type, last event id buffer, reconnection time); a blank line dispatches the block. A block
//!   whose data plus current line exceed the maximum event size is dropped: the parser yields
//!   one [`ParseError::EventTooLarge`], ignores lines up to the next blank line and goes on. A
//!   comment line longer than the maximum yields the same error and only that line is dropped.
//!
//! Decoding first and parsing the text afterwards is the order the standard describes, so the
//! result cannot depend on how the body was split into chunks.

use std::collections::VecDeque;
use std::mem;
use std::time::Duration;

use compact_str::CompactString;

use crate::event::{DEFAULT_EVENT_TYPE, Event};

/// The default maximum event size: 32 MiB, room for a 16 MiB event with generous framing.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 32 * 1024 * 1024;

/// Buffers larger than this are freed after use rather than kept for reuse, so an idle stream
/// does not hold on to the memory of one burst or one huge line.
const KEEP_CAPACITY: usize = 4 * 1024;

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// What the parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A dispatched event.
    Event(Event),
    /// A comment line: the text after the leading `:` (a leading space is kept).
    Comment(String),
    /// A valid `retry` field: the server's new reconnection time.
    Retry(Duration),
}

/// An error for one part of the stream; the parser goes on after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// An event grew larger than the maximum event size and was skipped up to its end (the
    /// next blank line), or a comment line was longer than it and was skipped.
    #[error("event or comment larger than the limit of {limit} bytes; skipped")]
    EventTooLarge {
        /// The maximum event size in force, in bytes.
        limit: usize,
    },
}

/// An incremental, sans-I/O `text/event-stream` parser.
///
/// Call [`feed`](Self::feed) with each chunk of the body, then [`next_item`](Self::next_item)
/// until it returns `None` (it needs more bytes). When the body ends, call
/// [`end_of_body`](Self::end_of_body): the incomplete line and block are discarded and the next
/// bytes start a new stream (a BOM is stripped again), while the last event id and the
/// reconnection time are kept, as they are for an `EventSource` that reconnects.
///
/// The cost is linear in the input however it is split. Memory is bounded by the maximum event
/// size (default [`DEFAULT_MAX_EVENT_SIZE`]) plus the text fed and not yet taken out.
pub struct Parser {
    /// Decoded text not yet split into lines, from `pos` on.
    text: String,
    pos: usize,
    /// The first bytes (at most 3) of a character split at the end of the last chunk, and how
    /// many there are. Kept inline, like the other small fields: an idle stream holds a parser.
    utf8_tail: [u8; 3],
    utf8_tail_len: u8,
    /// The start of a line whose end has not arrived yet.
    pending: String,
    /// The last line ended with CR: an LF right after it belongs to that line ending.
    skip_lf: bool,
    /// How many bytes of a leading BOM have been matched; `None` once past the stream start.
    bom_matched: Option<u8>,
    /// Items of a body that ended before they were taken (rare: boxed, so it costs one word).
    #[expect(
        clippy::box_collection,
        reason = "one word instead of four while empty, which is nearly always"
    )]
    deferred: Option<Box<VecDeque<Result<Item, ParseError>>>>,
    block: Block,
}

/// The interpretation state: WHATWG's buffers plus our limit.
struct Block {
    data: String,
    /// Whether a `data` field was seen (the data buffer is non-empty in WHATWG's terms).
    has_data: bool,
    /// Empty means `message`. Short strings are inline, so the usual ones need no allocation.
    event_type: CompactString,
    /// The last event id *buffer*, set by `id` fields and committed on dispatch.
    id_buffer: CompactString,
    /// The last event id *string*: the committed id.
    last_event_id: CompactString,
    retry: Option<Duration>,
    max_event_size: usize,
    skip: Skip,
}

/// The field a line sets; names are case-sensitive and unknown ones are ignored.
#[derive(Clone, Copy)]
enum Field {
    Data,
    Event,
    Id,
    Retry,
    Other,
}

impl Field {
    fn of(name: &str) -> Self {
        match name {
            "data" => Self::Data,
            "event" => Self::Event,
            "id" => Self::Id,
            "retry" => Self::Retry,
            _ => Self::Other,
        }
    }
}

/// What is being dropped after an over-long input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Skip {
    No,
    /// An over-long comment: ignore the rest of this line only.
    Line,
    /// An over-long event: ignore lines up to the next blank line.
    Block,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Parser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parser")
            .field("last_event_id", &self.last_event_id())
            .field("retry", &self.block.retry)
            .field("unread_bytes", &(self.text.len() - self.pos))
            .field("pending_line_bytes", &self.pending.len())
            .field("max_event_size", &self.block.max_event_size)
            .finish_non_exhaustive()
    }
}

impl Parser {
    /// A parser with the default maximum event size ([`DEFAULT_MAX_EVENT_SIZE`]).
    pub fn new() -> Self {
        Self::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A parser with a maximum event size of `max_event_size` bytes.
    ///
    /// A block is too large when the data it has collected plus the bytes of the line being
    /// read (field name included) exceed the limit. Such a block yields one
    /// [`ParseError::EventTooLarge`] and is skipped up to the next blank line; an `id` line read
    /// before the overflow still counts when the block ends. A comment line longer than the
    /// limit yields the same error, and only that line is skipped.
    pub fn with_max_event_size(max_event_size: usize) -> Self {
        Self {
            text: String::new(),
            pos: 0,
            utf8_tail: [0; 3],
            utf8_tail_len: 0,
            pending: String::new(),
            skip_lf: false,
            bom_matched: Some(0),
            deferred: None,
            block: Block {
                data: String::new(),
                has_data: false,
                event_type: CompactString::default(),
                id_buffer: CompactString::default(),
                last_event_id: CompactString::default(),
                retry: None,
                max_event_size,
                skip: Skip::No,
            },
        }
    }

    /// Sets the last event id, e.g. one restored from storage before the first connection.
    ///
    /// Ids containing U+0000 are ignored, as they are in a stream.
    pub fn set_last_event_id(&mut self, id: &str) {
        if !id.contains('\0') {
            self.block.id_buffer = CompactString::from(id);
            self.block.last_event_id = CompactString::from(id);
        }
    }

    /// The stream's last event id: the id committed by the last dispatched block (`""` if none).
    ///
    /// An `id` field of a block that has not ended yet is not part of it.
    pub fn last_event_id(&self) -> &str {
        &self.block.last_event_id
    }

    /// The last valid `retry` value the server sent, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.block.retry
    }

    /// The maximum event size in bytes.
    pub fn max_event_size(&self) -> usize {
        self.block.max_event_size
    }

    /// Adds the next chunk of the body (`&[u8]`, `Bytes`, `&str`, ...); take the items with
    /// [`next_item`](Self::next_item).
    pub fn feed(&mut self, chunk: impl AsRef<[u8]>) {
        self.feed_bytes(chunk.as_ref());
    }

    fn feed_bytes(&mut self, chunk: &[u8]) {
        let mut chunk = chunk;
        if let Some(matched) = self.bom_matched {
            // Only the first bytes of a body can be a BOM; match them as they trickle in.
            let matched = usize::from(matched);
            let wanted = BOM.get(matched..).unwrap_or_default();
            let n = wanted.len().min(chunk.len());
            if chunk.get(..n) == wanted.get(..n) {
                if matched + n < BOM.len() {
                    self.bom_matched = u8::try_from(matched + n).ok();
                    return;
                }
                self.bom_matched = None;
                chunk = chunk.get(n..).unwrap_or_default();
            } else {
                // Not a BOM after all: the bytes held back are text.
                self.bom_matched = None;
                self.decode(BOM.get(..matched).unwrap_or_default());
            }
        }
        self.decode(chunk);
    }

    /// Appends `bytes` to the text, decoding UTF-8 as a stream.
    fn decode(&mut self, bytes: &[u8]) {
        if self.pos == self.text.len() {
            self.text.clear();
        } else if self.pos > 0 {
            self.text.drain(..self.pos);
        }
        self.pos = 0;
        let joined;
        let mut input = if self.utf8_tail_len == 0 {
            bytes
        } else {
            let tail = self.utf8_tail.get(..usize::from(self.utf8_tail_len));
            joined = [tail.unwrap_or_default(), bytes].concat();
            self.utf8_tail_len = 0;
            joined.as_slice()
        };
        // Tiny chunks, from a server that flushes byte by byte, are mostly ASCII: ASCII bytes
        // are characters as they are.
        if input.len() <= 16 && input.is_ascii() {
            self.text.extend(input.iter().map(|&byte| char::from(byte)));
            return;
        }
        // The common case, valid UTF-8, is checked with SIMD; errors are located by `std`.
        if let Ok(text) = simdutf8::basic::from_utf8(input) {
            self.text.push_str(text);
            return;
        }
        loop {
            match std::str::from_utf8(input) {
                Ok(text) => {
                    self.text.push_str(text);
                    return;
                }
                Err(error) => {
                    let (valid, after) = input.split_at(error.valid_up_to());
                    self.text
                        .push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        Some(invalid) => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
                            input = after.get(invalid..).unwrap_or_default();
                        }
                        None => {
                            // A character cut off by the chunk's end (at most 3 bytes): wait
                            // for the rest.
                            let n = after.len().min(self.utf8_tail.len());
                            if let (Some(tail), Some(start)) =
                                (self.utf8_tail.get_mut(..n), after.get(..n))
                            {
                                tail.copy_from_slice(start);
                                self.utf8_tail_len = u8::try_from(n).unwrap_or_default();
                            }
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Takes the next item, or `None` when everything fed so far has been used.
    ///
    /// An `Err` reports one dropped event; parsing goes on with the next call.
    pub fn next_item(&mut self) -> Option<Result<Item, ParseError>> {
        if let Some(deferred) = &mut self.deferred {
            if let Some(item) = deferred.pop_front() {
                return Some(item);
            }
            self.deferred = None;
        }
        self.next_from_text()
    }

    fn next_from_text(&mut self) -> Option<Result<Item, ParseError>> {
        let line_ends = LineEnds::new();
        loop {
            let rest = self.text.get(self.pos..).unwrap_or_default();
            if rest.is_empty() {
                self.text.clear();
                self.pos = 0;
                if self.text.capacity() > KEEP_CAPACITY {
                    self.text = String::new();
                }
                return None;
            }
            if mem::take(&mut self.skip_lf) && rest.starts_with('\n') {
                self.pos += 1;
                continue;
            }
            // Blank lines (one per event) are common enough to skip the search for them.
            let found = if matches!(rest.as_bytes().first(), Some(b'\n' | b'\r')) {
                Some(0)
            } else {
                line_ends.find(rest.as_bytes())
            };
            let Some(end) = found else {
                // No line end yet: keep the tail for the next chunk.
                self.pos = self.text.len();
                if let Some(error) = keep_pending(&mut self.pending, &mut self.block, rest) {
                    return Some(Err(error));
                }
                continue;
            };
            let line = rest.get(..end).unwrap_or_default();
            self.skip_lf = rest.as_bytes().get(end) == Some(&b'\r');
            self.pos += end + 1;
            let item = if self.pending.is_empty() {
                self.block.line(line)
            } else {
                finish_pending(&mut self.pending, &mut self.block, line)
            };
            if item.is_some() {
                return item;
            }
        }
    }

    /// Ends the current body.
    ///
    /// Items from complete lines fed before are still returned by
    /// [`next_item`](Self::next_item); the incomplete last line and block are discarded. Bytes
    /// fed afterwards are parsed as a new stream (a leading BOM is stripped again). The last
    /// event id and the reconnection time are kept.
    pub fn end_of_body(&mut self) {
        // Complete lines not taken yet belong to this body: interpret them now.
        let unread = self.text.get(self.pos..).unwrap_or_default();
        if let Some(last_end) = unread.rfind(['\n', '\r']) {
            self.text.truncate(self.pos + last_end + 1);
            while let Some(item) = self.next_from_text() {
                self.deferred.get_or_insert_default().push_back(item);
            }
        }
        self.text = String::new();
        self.pos = 0;
        self.utf8_tail_len = 0;
        self.pending = String::new();
        self.skip_lf = false;
        self.bom_matched = Some(0);
        self.block.discard();
    }
}

/// Finds the next CR or LF.
///
/// On x86-64 and AArch64 it uses the vector instructions every such CPU has (SSE2, NEON)
/// directly: most lines are shorter than 100 bytes, and for them the feature detection and
/// setup inside `memchr::memchr2` cost more than the search itself.
#[derive(Clone, Copy)]
struct LineEnds {
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    vector: Option<VectorTwo>,
}

#[cfg(target_arch = "x86_64")]
use memchr::arch::x86_64::sse2::memchr::Two as VectorTwo;

#[cfg(target_arch = "aarch64")]
use memchr::arch::aarch64::neon::memchr::Two as VectorTwo;

impl LineEnds {
    #[inline]
    fn new() -> Self {
        Self {
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            vector: VectorTwo::new(b'\n', b'\r'),
        }
    }

    #[inline]
    fn find(self, haystack: &[u8]) -> Option<usize> {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        if let Some(two) = self.vector {
            return two.find(haystack);
        }
        memchr::memchr2(b'\n', b'\r', haystack)
    }
}

/// Keeps the unfinished end of the text, or drops the line or block if it gets too large.
///
/// This and the other `#[cold]` functions run once per chunk or per error, not per line:
/// keeping them out of the line loop's way is worth about 3 % on small events.
#[cold]
fn keep_pending(pending: &mut String, block: &mut Block, tail: &str) -> Option<ParseError> {
    if block.skip != Skip::No {
        // The line is being skipped: remember only that it is not blank.
        if pending.is_empty() {
            pending.push('x');
        }
        return None;
    }
    let comment = if pending.is_empty() {
        tail.starts_with(':')
    } else {
        pending.starts_with(':')
    };
    let size = pending.len() + tail.len();
    if comment && size > block.max_event_size {
        // A comment is no part of an event: drop only this line.
        pending.clear();
        pending.push('x');
        block.skip = Skip::Line;
        Some(block.too_large())
    } else if !comment && block.data.len() + size > block.max_event_size {
        pending.clear();
        pending.push('x');
        Some(block.overflow())
    } else {
        pending.push_str(tail);
        None
    }
}

/// Completes the pending line with `end` and interprets it.
#[cold]
fn finish_pending(
    pending: &mut String,
    block: &mut Block,
    end: &str,
) -> Option<Result<Item, ParseError>> {
    let item = if block.skip == Skip::Line {
        // The over-long comment ends here.
        block.skip = Skip::No;
        None
    } else if block.skip == Skip::Block {
        // A skipped line that spanned chunks is not blank; its text is gone.
        block.line("x")
    } else if pending.starts_with(':') && pending.len() + end.len() > block.max_event_size {
        Some(Err(block.too_large()))
    } else if !pending.starts_with(':')
        && block.data.len() + pending.len() + end.len() > block.max_event_size
    {
        Some(Err(block.overflow()))
    } else {
        pending.push_str(end);
        block.line(pending)
    };
    pending.clear();
    if pending.capacity() > KEEP_CAPACITY {
        *pending = String::new();
    }
    item
}

impl Block {
    /// Interprets one complete line (without its terminator).
    // Inlined into the line loop, the hot path keeps its state in registers.
    #[inline(always)]
    fn line(&mut self, line: &str) -> Option<Result<Item, ParseError>> {
        if line.is_empty() {
            return self.dispatch().map(Ok);
        }
        if self.skip == Skip::Block {
            return None;
        }
        if line.starts_with(':') {
            if line.len() > self.max_event_size {
                return Some(Err(self.too_large()));
            }
        } else if self.data.len() + line.len() > self.max_event_size {
            return Some(Err(self.overflow()));
        }
        // The common fields are recognised by their prefix, without searching for the colon.
        let (field, rest) = if let Some(rest) = line.strip_prefix("data:") {
            (Field::Data, rest)
        } else if let Some(rest) = line.strip_prefix("id:") {
            (Field::Id, rest)
        } else if let Some(rest) = line.strip_prefix("event:") {
            (Field::Event, rest)
        } else {
            match line.split_once(':') {
                Some(("", comment)) => return Some(Ok(Item::Comment(comment.to_owned()))),
                Some((name, rest)) => (Field::of(name), rest),
                None => (Field::of(line), ""),
            }
        };
        let value = rest.strip_prefix(' ').unwrap_or(rest);
        match field {
            Field::Data => {
                if self.has_data {
                    self.data.push('\n');
                    self.data.push_str(value);
                } else if self.data.capacity() == 0 {
                    // Most events have one data line: allocate exactly once.
                    self.data = String::from(value);
                } else {
                    self.data.push_str(value);
                }
                self.has_data = true;
            }
            Field::Event => {
                self.event_type = if value == DEFAULT_EVENT_TYPE {
                    CompactString::default()
                } else {
                    CompactString::new(value)
                };
            }
            // An id containing NUL is ignored. Ids are short: a plain loop beats memchr's
            // setup here.
            Field::Id if !value.bytes().any(|b| b == 0) => {
                self.id_buffer = CompactString::new(value);
            }
            Field::Retry if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // All digits: only overflow can fail; such a value means "forever".
                let millis = value.bytes().fold(0u64, |acc, digit| {
                    acc.saturating_mul(10)
                        .saturating_add(u64::from(digit - b'0'))
                });
                let retry = Duration::from_millis(millis);
                self.retry = Some(retry);
                return Some(Ok(Item::Retry(retry)));
            }
            _ => {}
        }
        None
    }

    /// WHATWG "dispatch the event", at a blank line.
    fn dispatch(&mut self) -> Option<Item> {
        self.last_event_id = self.id_buffer.clone();
        let event_type = mem::take(&mut self.event_type);
        let skipped = mem::replace(&mut self.skip, Skip::No) == Skip::Block;
        if skipped || !mem::take(&mut self.has_data) {
            self.data.clear();
            return None;
        }
        Some(Item::Event(Event::from_parts(
            event_type,
            mem::take(&mut self.data),
            self.last_event_id.clone(),
        )))
    }

    /// Drops the current block because it is too large and starts skipping to its end.
    #[cold]
    fn overflow(&mut self) -> ParseError {
        self.data = String::new();
        self.has_data = false;
        self.event_type = CompactString::default();
        self.skip = Skip::Block;
        self.too_large()
    }

    #[cold]
    fn too_large(&self) -> ParseError {
        ParseError::EventTooLarge {
            limit: self.max_event_size,
        }
    }

    /// Forgets the unfinished block at the end of a body; the committed id stays.
    fn discard(&mut self) {
        self.data = String::new();
        self.has_data = false;
        self.event_type = CompactString::default();
        self.skip = Skip::No;
        self.id_buffer.clone_from(&self.last_event_id);
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// Every open stream holds a parser, idle or not: keep its fixed part small.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_parser_stays_small() {
        let size = mem::size_of::<Parser>();
        assert!(size <= 208, "Parser grew to {size} bytes");
    }
}
