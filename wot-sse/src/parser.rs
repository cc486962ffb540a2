//! The sans-I/O event-stream parser.
//!
//! [`Parser`] turns the bytes of a `text/event-stream` body into [`Item`]s, following the WHATWG
//! HTML Standard, "Server-sent events", sections "Parsing an event stream" and "Interpreting an
//! event stream". It does no I/O and keeps no clock: feed it chunks as they arrive, pull items
//! until it needs more bytes, and tell it when a body ends.
//!
//! ```
//! use wot_sse::parser::{Item, Parser};
//!
//! let mut parser = Parser::new();
//! parser.feed("event: temperature\nda");
//! assert!(parser.next_item().is_none()); // needs more bytes
//! parser.feed("ta: 21.5\nid: 7\n\n");
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
//! * **Line splitting.** Input chunks wait in a queue. The parser searches only bytes it has not
//!   searched before (with `memchr`) for the next CR or LF. A line that lies inside one chunk is
//!   interpreted in place, without copying; only the unfinished tail of a chunk is copied into a
//!   pending-line buffer, which the next terminator completes. A CR ends a line at once and sets
//!   `skip_lf`, so an LF at the start of the next chunk is not taken for an empty line. Before the
//!   first byte of a body a UTF-8 BOM is matched byte by byte (it may be split across chunks).
//! * **Interpretation.** Each complete line updates the block buffers (data, event type, last
//!   event id buffer, reconnection time); a blank line dispatches the block. A block whose data
//!   plus pending line would exceed the maximum event size is dropped: the parser yields one
//!   [`ParseError::EventTooLarge`], ignores lines up to the next blank line and goes on.
//!
//! Text is decoded one line at a time. Line terminators, `:` and the space are ASCII, and UTF-8
//! decoding never lets an invalid sequence swallow an ASCII byte, so this gives exactly the result
//! of decoding the whole stream first: invalid bytes become U+FFFD, and a character split across
//! chunks survives because lines are joined before decoding.

use std::collections::VecDeque;
use std::mem;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::event::{DEFAULT_EVENT_TYPE, Event};

/// The default maximum event size: 32 MiB, room for a 16 MiB event with generous framing.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 32 * 1024 * 1024;

/// A pending-line buffer larger than this is freed after use rather than kept for reuse, so an
/// idle stream does not hold on to the memory of one huge line.
const KEEP_LINE_CAPACITY: usize = 64 * 1024;

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
    /// A block grew larger than the maximum event size and was skipped up to its end.
    #[error(
        "event too large: its data and current line exceed the limit of {limit} bytes; \
         skipped up to the next blank line"
    )]
    EventTooLarge {
        /// The maximum event size in force, in bytes.
        limit: usize,
    },
}

enum Input {
    Chunk(Bytes),
    /// The body ended here (queued so that items of earlier chunks are still yielded).
    End,
}

/// An incremental, sans-I/O `text/event-stream` parser.
///
/// Call [`feed`](Self::feed) with each chunk of the body, then [`next_item`](Self::next_item)
/// until it returns `None` (it needs more bytes). When the body ends, call
/// [`end_of_body`](Self::end_of_body): the incomplete block is discarded and the next bytes start
/// a new stream (a BOM is stripped again), while the last event id and reconnection time are
/// kept, as they are for an `EventSource` reconnecting.
///
/// Each byte is searched once, so the cost is linear in the input however it is split. Memory is
/// bounded by the maximum event size (default [`DEFAULT_MAX_EVENT_SIZE`]) plus the unread
/// chunks.
pub struct Parser {
    input: VecDeque<Input>,
    /// Offset of the first unread byte in the front chunk.
    pos: usize,
    /// The start of a line whose end has not arrived yet.
    pending: Vec<u8>,
    /// The previous line ended with CR: an LF right after it belongs to that line ending.
    skip_lf: bool,
    /// How many bytes of a leading BOM have been matched; `None` once past the stream start.
    bom_matched: Option<usize>,
    block: Block,
}

/// The interpretation state: WHATWG's buffers plus our limit.
struct Block {
    data: String,
    /// Whether a `data` field was seen (the data buffer is non-empty in WHATWG's terms).
    has_data: bool,
    event_type: Option<Arc<str>>,
    /// The most recent non-default event type, shared by later events of the same type.
    type_cache: Option<Arc<str>>,
    /// The last event id *buffer*, set by `id` fields and committed on dispatch.
    id_buffer: Arc<str>,
    /// The last event id *string*: the committed id.
    last_event_id: Arc<str>,
    retry: Option<Duration>,
    max_event_size: usize,
    /// Dropping an over-long block: ignore lines up to the next blank line.
    skipping: bool,
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
    /// A block is too large when the data it has collected plus the raw bytes of the line being
    /// read (field name included) exceed the limit. Such a block yields one
    /// [`ParseError::EventTooLarge`] and is skipped up to the next blank line; the last event id
    /// of an `id` line read before the overflow still counts when the block ends.
    pub fn with_max_event_size(max_event_size: usize) -> Self {
        let empty: Arc<str> = Arc::from("");
        Self {
            input: VecDeque::new(),
            pos: 0,
            pending: Vec::new(),
            skip_lf: false,
            bom_matched: Some(0),
            block: Block {
                data: String::new(),
                has_data: false,
                event_type: None,
                type_cache: None,
                id_buffer: empty.clone(),
                last_event_id: empty,
                retry: None,
                max_event_size,
                skipping: false,
            },
        }
    }

    /// Sets the last event id, e.g. one restored from storage before the first connection.
    ///
    /// Ids containing U+0000 are ignored, as they are in a stream.
    pub fn set_last_event_id(&mut self, id: &str) {
        if !id.contains('\0') {
            let id: Arc<str> = Arc::from(id);
            self.block.id_buffer = id.clone();
            self.block.last_event_id = id;
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

    /// Queues the next chunk of the body. Empty chunks are ignored.
    pub fn feed(&mut self, chunk: impl Into<Bytes>) {
        let mut chunk: Bytes = chunk.into();
        if let Some(matched) = self.bom_matched {
            // Only the first bytes of a body can be a BOM; match them as they trickle in.
            let wanted = &BOM[matched..];
            let n = wanted.len().min(chunk.len());
            if chunk.get(..n) == wanted.get(..n) {
                if matched + n == BOM.len() {
                    self.bom_matched = None;
                    let _ = chunk.split_to(n);
                } else {
                    self.bom_matched = Some(matched + n);
                    return;
                }
            } else {
                // Not a BOM after all: the bytes held back are data.
                self.bom_matched = None;
                if matched > 0 {
                    self.input
                        .push_back(Input::Chunk(Bytes::from_static(&BOM[..matched])));
                }
            }
        }
        if !chunk.is_empty() {
            self.input.push_back(Input::Chunk(chunk));
        }
    }

    /// Marks the end of the current body.
    ///
    /// Items from complete lines fed before it are still yielded by
    /// [`next_item`](Self::next_item); then the incomplete line and block are discarded, and
    /// bytes fed afterwards are parsed as a new stream (a leading BOM is stripped again). The
    /// last event id and the reconnection time are kept.
    pub fn end_of_body(&mut self) {
        self.input.push_back(Input::End);
        // Bytes fed from now on belong to the next body, which may start with a BOM again.
        self.bom_matched = Some(0);
    }

    /// Returns the next item, or `None` when all fed bytes have been used.
    ///
    /// An `Err` reports one dropped event; parsing goes on with the next call.
    pub fn next_item(&mut self) -> Option<Result<Item, ParseError>> {
        loop {
            let chunk = match self.input.front() {
                None => return None,
                Some(Input::End) => {
                    self.start_next_body();
                    continue;
                }
                Some(Input::Chunk(chunk)) => chunk,
            };
            let Some(rest) = chunk.get(self.pos..).filter(|rest| !rest.is_empty()) else {
                self.input.pop_front();
                self.pos = 0;
                continue;
            };
            if self.skip_lf {
                self.skip_lf = false;
                if rest.first() == Some(&b'\n') {
                    self.pos += 1;
                    continue;
                }
            }
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                // No line end in this chunk: keep its tail for the next one.
                let tail_len = rest.len();
                if self.block.skipping {
                    // The line is being skipped; remember only that it is not empty.
                    if self.pending.is_empty() {
                        self.pending.push(b'x');
                    }
                } else if self.block.data.len() + self.pending.len() + tail_len
                    > self.block.max_event_size
                {
                    self.pending.clear();
                    self.pending.push(b'x');
                    let error = self.block.overflow();
                    self.pos += tail_len;
                    return Some(Err(error));
                } else {
                    self.pending.extend_from_slice(rest);
                }
                self.pos += tail_len;
                continue;
            };
            self.skip_lf = rest.get(end) == Some(&b'\r');
            let line = rest.get(..end).unwrap_or_default();
            self.pos += end + 1;
            let result = if self.pending.is_empty() {
                self.block.line(line)
            } else {
                let mut joined = mem::take(&mut self.pending);
                let result = if self.block.skipping {
                    // A skipped line that spanned chunks is not blank; its bytes are gone.
                    self.block.line(b"x")
                } else if self.block.data.len() + joined.len() + line.len()
                    > self.block.max_event_size
                {
                    Some(Err(self.block.overflow()))
                } else {
                    joined.extend_from_slice(line);
                    self.block.line(&joined)
                };
                joined.clear();
                if joined.capacity() <= KEEP_LINE_CAPACITY {
                    self.pending = joined;
                }
                result
            };
            if result.is_some() {
                return result;
            }
        }
    }

    /// Consumes an `End` marker at the front of the queue.
    fn start_next_body(&mut self) {
        self.input.pop_front();
        self.pos = 0;
        self.pending = Vec::new();
        self.skip_lf = false;
        self.block.discard();
    }
}

impl Block {
    /// Interprets one complete line (without its terminator).
    fn line(&mut self, line: &[u8]) -> Option<Result<Item, ParseError>> {
        if line.is_empty() {
            return self.dispatch().map(Ok);
        }
        if self.skipping {
            return None;
        }
        if self.data.len() + line.len() > self.max_event_size {
            return Some(Err(self.overflow()));
        }
        let (name, value) = match memchr::memchr(b':', line) {
            Some(0) => {
                return Some(Ok(Item::Comment(decode(line.get(1..).unwrap_or_default()))));
            }
            Some(colon) => {
                let value = line.get(colon + 1..).unwrap_or_default();
                let value = value.strip_prefix(b" ").unwrap_or(value);
                (line.get(..colon).unwrap_or_default(), value)
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                } else if self.data.capacity() == 0 {
                    self.data.reserve_exact(value.len());
                }
                push_decoded(&mut self.data, value);
                self.has_data = true;
            }
            b"event" => {
                self.event_type = if value.is_empty() || value == DEFAULT_EVENT_TYPE.as_bytes() {
                    None
                } else if let Some(cached) = self
                    .type_cache
                    .as_ref()
                    .filter(|cached| cached.as_bytes() == value)
                {
                    // Streams repeat the same few types; share one allocation.
                    Some(cached.clone())
                } else {
                    let event_type: Arc<str> = Arc::from(decode(value));
                    self.type_cache = Some(event_type.clone());
                    Some(event_type)
                };
            }
            // An id with NUL is ignored; an unchanged one keeps its allocation.
            b"id" if memchr::memchr(0, value).is_none() && self.id_buffer.as_bytes() != value => {
                self.id_buffer = Arc::from(decode(value));
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // All digits: only overflow can fail; such a value means "forever".
                let millis = value.iter().fold(0u64, |acc, digit| {
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
        if !Arc::ptr_eq(&self.last_event_id, &self.id_buffer) {
            self.last_event_id = self.id_buffer.clone();
        }
        if mem::take(&mut self.skipping) || !mem::take(&mut self.has_data) {
            self.data.clear();
            self.event_type = None;
            return None;
        }
        let data = mem::take(&mut self.data);
        Some(Item::Event(Event::from_parts(
            self.event_type.take(),
            data,
            self.last_event_id.clone(),
        )))
    }

    /// Drops the current block because it is too large and starts skipping to its end.
    fn overflow(&mut self) -> ParseError {
        self.data = String::new();
        self.has_data = false;
        self.event_type = None;
        self.skipping = true;
        ParseError::EventTooLarge {
            limit: self.max_event_size,
        }
    }

    /// Forgets the unfinished block at the end of a body; the committed id stays.
    fn discard(&mut self) {
        self.data = String::new();
        self.has_data = false;
        self.event_type = None;
        self.skipping = false;
        self.id_buffer = self.last_event_id.clone();
    }
}

fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn push_decoded(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => out.push_str(text),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}
