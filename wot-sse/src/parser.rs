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
//! Three layers, each a small state machine:
//!
//! * **Decoding** ([`Parser::feed`]). Before the first byte of a body a UTF-8 BOM is matched
//!   byte by byte (it may be split across chunks). Each chunk is then decoded as a stream: it is
//!   validated once, invalid sequences become U+FFFD, and the (at most 3) bytes of a character
//!   split at the chunk's end wait for the next chunk, whose first bytes complete it. The text
//!   is appended to a buffer.
//! * **Line splitting** ([`Parser::next_item`]). The buffer is searched for CR and LF 64 bytes
//!   at a time: vector compares give a bit mask of the line ends in the block, and each line
//!   end is then one bit scan; a block without any means a long line, and `memchr` finds its
//!   end. Each byte is searched once. A line is interpreted in place as a `&str` slice; an
//!   unfinished one stays in the buffer until a later chunk completes it. A CR ends a line at
//!   once and sets `skip_lf`, so an LF that follows (perhaps in the next chunk) is not taken
//!   for an empty line.
//! * **Interpretation** (`Block`). Each complete line updates WHATWG's buffers (data, event
//!   type, last event id buffer, reconnection time); a blank line dispatches the block. A block
//!   whose data plus current line exceed the maximum event size is dropped: the parser yields
//!   one [`ParseError::EventTooLarge`], ignores lines up to the next blank line and goes on.
//!   The id, the event type and a comment line have limits of their own (see
//!   [`Parser::with_max_id_len`] and the methods after it); each is checked as soon as the line
//!   is longer than the limit, so an endless `id:` line costs no more memory than its limit.
//!
//! Decoding first and parsing the text afterwards is the order the standard describes, so the
//! result cannot depend on how the body was split into chunks.

use std::collections::VecDeque;
use std::mem;
use std::num::NonZeroU32;
use std::time::Duration;

use arrayvec::ArrayVec;
use compact_str::CompactString;
use wide::u8x16;

use crate::event::{DEFAULT_EVENT_TYPE, Event, EventId};

/// The default maximum event size: 32 MiB, room for a 16 MiB event with generous framing.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 32 * 1024 * 1024;

/// The default limit on an id (the value of an `id` field): 4 KiB.
pub const DEFAULT_MAX_ID_LEN: usize = 4 * 1024;

/// The default limit on an event type (the value of an `event` field): 1 KiB.
pub const DEFAULT_MAX_EVENT_TYPE_LEN: usize = 1024;

/// The default limit on a comment line, its `:` included: 64 KiB.
pub const DEFAULT_MAX_COMMENT_LEN: usize = 64 * 1024;

/// The longest reconnection time kept from a `retry` field: `u32::MAX - 1` milliseconds,
/// about 49.7 days. A larger value is taken as this one (the parser keeps the value in 32
/// bits, as every idle stream holds one).
pub const MAX_RETRY: Duration = Duration::from_millis(u32::MAX as u64 - 1);

/// A text buffer larger than this is given up once read rather than kept for reuse, so an
/// idle stream does not hold on to the memory of one burst or one huge line. (The data buffer
/// needs no limit: data longer than an event keeps inline moves into the event with its
/// buffer.)
const KEEP_CAPACITY: usize = 4 * 1024;

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// Chunks are validated and copied this many bytes at a time (see `Parser::decode`).
const VALIDATE_PIECE: usize = 4 * 1024;

/// What the parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// next blank line).
    #[error("event larger than the limit of {limit} bytes; skipped")]
    EventTooLarge {
        /// The maximum event size in force, in bytes.
        limit: usize,
    },
    /// An `id` field's value was longer than the id limit. The field was ignored: the last
    /// event id stays what it was, and the event is still dispatched (with that id).
    #[error("event id longer than the limit of {limit} bytes; ignored, the last id stays")]
    IdTooLong {
        /// The id limit in force, in bytes.
        limit: usize,
    },
    /// An `event` field's value was longer than the event type limit. The event was skipped
    /// up to its end (the next blank line): delivered under another type, it would go to the
    /// wrong listener.
    #[error("event type longer than the limit of {limit} bytes; event skipped")]
    EventTypeTooLong {
        /// The event type limit in force, in bytes.
        limit: usize,
    },
    /// A comment line was longer than the comment limit and was skipped.
    #[error("comment line longer than the limit of {limit} bytes; skipped")]
    CommentTooLong {
        /// The comment limit in force, in bytes.
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
/// size (default [`DEFAULT_MAX_EVENT_SIZE`]) plus the text fed and not yet taken out. An id
/// (default limit [`DEFAULT_MAX_ID_LEN`]), an event type ([`DEFAULT_MAX_EVENT_TYPE_LEN`]) and a
/// comment line ([`DEFAULT_MAX_COMMENT_LEN`]) have smaller limits of their own; one of these
/// lines is held until its end or its limit, so if you set one of them above the event size,
/// that limit bounds the memory instead. An `id` or `event` line over its own limit is
/// reported as such even when it also makes the event too large.
pub struct Parser {
    /// Decoded text not yet split into lines, from `pos` on. The start of a line whose end has
    /// not arrived yet stays here until the next chunk completes it.
    text: String,
    pos: usize,
    /// Where the line-end search goes on: `text[pos..scanned]` has no line end that is not in
    /// `ends`, so a long line split over many chunks is searched once.
    scanned: usize,
    /// The line ends found but not reached yet, in the 64 bytes before `scanned`: bit `i`
    /// stands for `text[scanned - 64 + i]`.
    ends: u64,
    /// The start of a character split at the end of the last chunk.
    split_char: SplitChar,
    /// The last line ended with CR: an LF right after it belongs to that line ending.
    skip_lf: bool,
    /// The start of the current line was dropped for being too long: ignore it up to its end.
    line_dropped: bool,
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

/// The first bytes (at most 3) of a character split at the end of a chunk. Four bytes inline,
/// like the parser's other small fields: an idle stream holds a parser.
#[derive(Default)]
struct SplitChar {
    bytes: [u8; 3],
    len: u8,
}

impl SplitChar {
    fn bytes(&self) -> &[u8] {
        self.bytes.split_at(usize::from(self.len).min(3)).0
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps `start`, the cut-off start of a character (so at most 3 bytes).
    fn hold(&mut self, start: &[u8]) {
        debug_assert!(
            start.len() <= 3,
            "a character start of {} bytes",
            start.len()
        );
        let mut len = 0;
        for (slot, &byte) in self.bytes.iter_mut().zip(start) {
            *slot = byte;
            len += 1;
        }
        self.len = len;
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

/// The interpretation state: WHATWG's buffers plus our limit.
struct Block {
    data: String,
    /// Whether a `data` field was seen (the data buffer is non-empty in WHATWG's terms).
    has_data: bool,
    /// The block grew too large: ignore lines up to the next blank line.
    skipping: bool,
    /// The value of the last `event` field; empty means `message`. Short strings are inline,
    /// so the usual ones need no allocation. It stays after a dispatch, so that a stream that
    /// repeats one type compares it rather than copying it again; `type_set` tells whether
    /// this block set it.
    event_type: CompactString,
    type_set: bool,
    /// The last event id *buffer*, set by `id` fields and committed on dispatch; only
    /// meaningful while `id_set` (otherwise WHATWG's buffer equals the committed id).
    id_buffer: EventId,
    id_set: bool,
    /// The last event id *string*: the committed id, shared by the events that carry it.
    last_event_id: EventId,
    /// The reconnection time in milliseconds plus one, at most `MAX_RETRY` (4 bytes).
    retry: Option<NonZeroU32>,
    /// The limits on an event, an id, an event type and a comment line, in bytes (4 bytes
    /// each: every idle stream holds a parser).
    max_event_size: u32,
    max_id_len: u32,
    max_type_len: u32,
    max_comment_len: u32,
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
            .field("retry", &self.retry())
            .field("unread_bytes", &(self.text.len() - self.pos))
            .field("max_event_size", &self.block.max_event_size)
            .field("max_id_len", &self.block.max_id_len)
            .field("max_event_type_len", &self.block.max_type_len)
            .field("max_comment_len", &self.block.max_comment_len)
            .finish_non_exhaustive()
    }
}

impl Parser {
    /// A parser with the default maximum event size ([`DEFAULT_MAX_EVENT_SIZE`]).
    pub fn new() -> Self {
        Self::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A parser with a maximum event size of `max_event_size` bytes (and the default limits
    /// on ids, event types and comments).
    ///
    /// A block is too large when the data it has collected plus the bytes of the line being
    /// read (field name included) exceed the limit. Such a block yields one
    /// [`ParseError::EventTooLarge`] and is skipped up to the next blank line; an `id` line read
    /// before the overflow still counts when the block ends. Values past `u32::MAX` (4 GiB)
    /// count as `u32::MAX`.
    pub fn with_max_event_size(max_event_size: usize) -> Self {
        Self {
            text: String::new(),
            pos: 0,
            scanned: 0,
            ends: 0,
            split_char: SplitChar::default(),
            skip_lf: false,
            line_dropped: false,
            bom_matched: Some(0),
            deferred: None,
            block: Block {
                data: String::new(),
                has_data: false,
                skipping: false,
                event_type: CompactString::default(),
                type_set: false,
                id_buffer: EventId::default(),
                id_set: false,
                last_event_id: EventId::default(),
                retry: None,
                max_event_size: limit_u32(max_event_size),
                max_id_len: limit_u32(DEFAULT_MAX_ID_LEN),
                max_type_len: limit_u32(DEFAULT_MAX_EVENT_TYPE_LEN),
                max_comment_len: limit_u32(DEFAULT_MAX_COMMENT_LEN),
            },
        }
    }

    /// Sets the limit on an id: an `id` field whose value is longer than `bytes` yields one
    /// [`ParseError::IdTooLong`] and is ignored (the last event id stays; the event is still
    /// dispatched). The line is dropped as soon as it is longer than the limit, without
    /// waiting for its end. Default [`DEFAULT_MAX_ID_LEN`]; values past `u32::MAX` count as
    /// `u32::MAX`.
    ///
    /// ```
    /// use wot_sse::parser::{Item, ParseError, Parser};
    ///
    /// let mut parser = Parser::new().with_max_id_len(4);
    /// parser.feed("id: 1\ndata: a\n\nid: 12345\ndata: b\n\n");
    /// assert!(matches!(parser.next_item(), Some(Ok(Item::Event(e))) if e.id() == "1"));
    /// assert_eq!(parser.next_item(), Some(Err(ParseError::IdTooLong { limit: 4 })));
    /// assert!(matches!(parser.next_item(), Some(Ok(Item::Event(e))) if e.id() == "1"));
    /// ```
    #[must_use]
    pub fn with_max_id_len(mut self, bytes: usize) -> Self {
        self.block.max_id_len = limit_u32(bytes);
        self
    }

    /// Sets the limit on an event type: an `event` field whose value is longer than `bytes`
    /// yields one [`ParseError::EventTypeTooLong`], and its event is skipped up to the next
    /// blank line. Default [`DEFAULT_MAX_EVENT_TYPE_LEN`].
    #[must_use]
    pub fn with_max_event_type_len(mut self, bytes: usize) -> Self {
        self.block.max_type_len = limit_u32(bytes);
        self
    }

    /// Sets the limit on a comment line (its leading `:` included): a longer one yields one
    /// [`ParseError::CommentTooLong`] and only that line is skipped. Default
    /// [`DEFAULT_MAX_COMMENT_LEN`].
    #[must_use]
    pub fn with_max_comment_len(mut self, bytes: usize) -> Self {
        self.block.max_comment_len = limit_u32(bytes);
        self
    }

    /// The limit on an id, in bytes.
    pub fn max_id_len(&self) -> usize {
        self.block.max_id_len as usize
    }

    /// The limit on an event type, in bytes.
    pub fn max_event_type_len(&self) -> usize {
        self.block.max_type_len as usize
    }

    /// The limit on a comment line, in bytes.
    pub fn max_comment_len(&self) -> usize {
        self.block.max_comment_len as usize
    }

    /// Sets the last event id, e.g. one restored from storage before the first connection.
    ///
    /// Ids containing U+0000 are ignored, as they are in a stream. The id limit does not
    /// apply: the caller chose this id.
    pub fn set_last_event_id(&mut self, id: &str) {
        if !id.contains('\0') {
            self.block.id_set = false;
            self.block.last_event_id = EventId::new(id);
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
        self.block
            .retry
            .map(|retry| Duration::from_millis(u64::from(retry.get() - 1)))
    }

    /// The maximum event size in bytes.
    pub fn max_event_size(&self) -> usize {
        self.block.max_event_size as usize
    }

    /// Adds the next chunk of the body (`&[u8]`, `Bytes`, `&str`, ...); take the items with
    /// [`next_item`](Self::next_item).
    pub fn feed(&mut self, chunk: impl AsRef<[u8]>) {
        self.feed_bytes(chunk.as_ref());
    }

    fn feed_bytes(&mut self, mut chunk: &[u8]) {
        if let Some(matched) = self.bom_matched {
            // Only the first bytes of a body can be a BOM; match them as they trickle in.
            let (held, wanted) = BOM.split_at(usize::from(matched).min(BOM.len()));
            if let Some(rest) = chunk.strip_prefix(wanted) {
                self.bom_matched = None;
                chunk = rest;
            } else if wanted.starts_with(chunk) {
                // Fewer than 3 bytes so far, all of them a BOM's: wait for more.
                self.bom_matched = u8::try_from(held.len() + chunk.len()).ok();
                return;
            } else {
                // Not a BOM after all: the bytes held back are text.
                self.bom_matched = None;
                self.decode(held);
            }
        }
        self.decode(chunk);
    }

    /// Appends `bytes` to the text, decoding UTF-8 as a stream.
    fn decode(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            // Drop the lines already read; an unfinished one moves to the front.
            if self.pos == self.text.len() {
                self.text.clear();
            } else {
                self.text.drain(..self.pos);
            }
            // Line ends found but not reached yet are found again; a part searched without
            // finding any stays searched.
            self.scanned = if self.ends == 0 {
                self.scanned.saturating_sub(self.pos)
            } else {
                0
            };
            self.ends = 0;
            self.pos = 0;
        }
        let mut input = bytes;
        if !self.split_char.is_empty() {
            input = self.finish_split_char(input);
        }
        // Tiny chunks, from a server that flushes byte by byte, are mostly ASCII: ASCII bytes
        // are characters as they are.
        if input.len() <= 16 && input.is_ascii() {
            self.text.extend(input.iter().map(|&byte| char::from(byte)));
            return;
        }
        // The common case, valid UTF-8, is checked with SIMD, a piece at a time: each piece is
        // copied while it is still in the L1 cache. Pieces end at a character's start.
        self.text.reserve(input.len());
        while !input.is_empty() {
            let mut end = input.len().min(VALIDATE_PIECE);
            while input.get(end).is_some_and(|&byte| byte & 0xC0 == 0x80) && end > 0 {
                end -= 1;
            }
            let (piece, rest) = input.split_at(if end == 0 { input.len() } else { end });
            match simdutf8::basic::from_utf8(piece) {
                Ok(text) => self.text.push_str(text),
                Err(_) => break,
            }
            input = rest;
        }
        // The rest, if any, holds an error: `std` locates each maximal invalid sequence, which
        // becomes one U+FFFD as in the Encoding Standard's UTF-8 decoder.
        let mut pieces = input.utf8_chunks().peekable();
        while let Some(piece) = pieces.next() {
            self.text.push_str(piece.valid());
            let invalid = piece.invalid();
            if pieces.peek().is_none() && is_cut_off(invalid) {
                // A character cut off by the chunk's end: wait for the rest.
                self.split_char.hold(invalid);
            } else if !invalid.is_empty() {
                self.text.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }

    /// Completes the character split at the end of the last chunk with the first bytes of
    /// `bytes` (at most 3) and returns the rest of `bytes`.
    #[cold]
    fn finish_split_char<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let held = self.split_char.bytes().len();
        // The held bytes and as many more as a character can have.
        let joined: ArrayVec<u8, 4> = (self.split_char.bytes().iter().chain(bytes))
            .copied()
            .take(4)
            .collect();
        self.split_char.clear();
        let Some(first) = joined.utf8_chunks().next() else {
            return bytes;
        };
        // The held bytes start a character, so they are the start of the valid text or of the
        // invalid sequence.
        let used = match first.valid().chars().next() {
            Some(char) => {
                self.text.push(char);
                char.len_utf8()
            }
            None if first.invalid().len() == joined.len() && is_cut_off(&joined) => {
                // Still not complete: the chunk was shorter than the rest of the character.
                self.split_char.hold(&joined);
                joined.len()
            }
            None => {
                self.text.push(char::REPLACEMENT_CHARACTER);
                first.invalid().len()
            }
        };
        bytes_from(bytes, used.saturating_sub(held))
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
        loop {
            let Some(end) = self.next_line_end() else {
                return self.unfinished_line();
            };
            let start = mem::replace(&mut self.pos, end + 1);
            // Both flags are rare in the usual LF-only stream: one test passes them by.
            if (self.skip_lf || self.line_dropped) && self.skip_line(start, end) {
                continue;
            }
            if self.text.as_bytes().get(end) == Some(&b'\r') {
                self.skip_lf = true;
            }
            let line = text_between(&self.text, start, end);
            if let Some(item) = self.block.line(line) {
                return Some(item);
            }
        }
    }

    /// Whether the line `start..end` is no line to interpret: the LF of a CRLF, or the end of
    /// a line too long to keep. Clears both flags.
    #[cold]
    fn skip_line(&mut self, start: usize, end: usize) -> bool {
        let terminator = self.text.as_bytes().get(end).copied();
        if mem::take(&mut self.skip_lf) && end == start && terminator == Some(b'\n') {
            return true;
        }
        if mem::take(&mut self.line_dropped) {
            self.skip_lf = terminator == Some(b'\r');
            return true;
        }
        false
    }

    /// The position of the next CR or LF in the text, searching each byte once.
    ///
    /// The text is searched 64 bytes at a time, with a bit mask of the line ends in each block:
    /// most lines are short, and finding a few of them in one step is cheaper than a search per
    /// line. A block without any line end means a long line: `memchr` skips to its end.
    #[inline]
    fn next_line_end(&mut self) -> Option<usize> {
        loop {
            if self.ends != 0 {
                let end = self.scanned + self.ends.trailing_zeros() as usize;
                self.ends &= self.ends - 1;
                // A set bit `i` means at least `64 - i` bytes were scanned.
                return Some(end.saturating_sub(64));
            }
            let rest = bytes_from(self.text.as_bytes(), self.scanned);
            let (ends, width) = match rest.split_first_chunk::<64>() {
                Some((block, more)) => {
                    let ends = line_ends(block);
                    if ends == 0 && !more.is_empty() {
                        // A long line: jump to its end.
                        self.scanned = match memchr::memchr2(b'\n', b'\r', more) {
                            Some(found) => self.scanned + 64 + found,
                            None => self.text.len(),
                        };
                        continue;
                    }
                    (ends, 64)
                }
                None if rest.is_empty() => return None,
                // A few bytes, from a server that flushes byte by byte: a plain loop beats
                // building a block. Bits line up with `scanned` as they do for a whole block.
                None if rest.len() <= 8 => {
                    let shift = 64 - rest.len();
                    let ends = rest.iter().enumerate().fold(0, |ends, (i, &byte)| {
                        ends | u64::from(matches!(byte, b'\n' | b'\r')) << (shift + i)
                    });
                    (ends, rest.len())
                }
                None => {
                    // The last bytes go at the end of the block, so that the bits line up
                    // with `scanned` as they do for a whole block.
                    let mut block = [0; 64];
                    for (slot, &byte) in block.iter_mut().rev().zip(rest.iter().rev()) {
                        *slot = byte;
                    }
                    (line_ends(&block), rest.len())
                }
            };
            self.ends = ends;
            self.scanned += width;
        }
    }

    /// All complete lines are read: keep the start of an unfinished one for the next chunk,
    /// or drop it if it is too large.
    ///
    /// This and the other `#[cold]` functions run once per chunk or per error, not per line:
    /// keeping them out of the line loop's way is worth a few percent on small events.
    #[cold]
    fn unfinished_line(&mut self) -> Option<Result<Item, ParseError>> {
        let tail = text_from(&self.text, self.pos);
        if !tail.is_empty() {
            // The line after a CR has begun: a later LF is a line end of its own.
            self.skip_lf = false;
        }
        let block = &mut self.block;
        let error = if tail.is_empty() || self.line_dropped {
            None
        } else if block.skipping {
            // A line of a skipped block: remember only that it is not blank.
            self.line_dropped = true;
            None
        } else if tail.starts_with(':') {
            // A comment is no part of an event: only this line is dropped.
            (tail.len() > block.max_comment_len as usize).then(|| {
                self.line_dropped = true;
                block.comment_too_long()
            })
        } else if tail.starts_with("id:") {
            // For an id (and an event type) the field's own limit comes first, as it does for
            // a complete line (`Block::line_too_large`), so the result does not depend on
            // where the chunks end: the line is dropped once its value is longer than the
            // limit whatever follows, and otherwise waits for its end.
            (tail.len() > "id: ".len() + block.max_id_len as usize).then(|| {
                self.line_dropped = true;
                block.id_too_long()
            })
        } else if tail.starts_with("event:") {
            (tail.len() > "event: ".len() + block.max_type_len as usize).then(|| {
                self.line_dropped = true;
                block.type_too_long()
            })
        } else if "event:".starts_with(tail) || "id:".starts_with(tail) {
            // Still too short to tell whether it becomes an `event` or `id` line, which have
            // limits of their own: wait for more, as a body fed in one piece would.
            None
        } else {
            (block.data.len() + tail.len() > block.max_event_size as usize).then(|| {
                self.line_dropped = true;
                block.overflow()
            })
        };
        if self.line_dropped {
            self.pos = self.text.len();
        }
        let unread = self.text.len() - self.pos;
        if self.text.capacity() > KEEP_CAPACITY && unread < self.text.capacity() / 4 {
            // Do not hold on to the memory of one burst while waiting for the next chunk. A
            // long line that is still growing keeps its buffer: copying it for every chunk
            // would make it quadratic.
            self.text = String::from(text_from(&self.text, self.pos));
            self.scanned -= self.pos;
            self.pos = 0;
        }
        error.map(Err)
    }

    /// Frees the buffers if they hold nothing: no unread text and no unfinished event.
    ///
    /// Call it when the input pauses, e.g. while a stream waits for the server: an idle
    /// stream then holds no buffer memory, whatever size its last burst of events was. A
    /// buffer in use is kept, so calling it between the chunks of a long line or event costs
    /// nothing; the next chunk after a release allocates again.
    ///
    /// ```
    /// use wot_sse::parser::Parser;
    ///
    /// let mut parser = Parser::new();
    /// parser.feed("data: 21.5\n\n");
    /// while parser.next_item().is_some() {}
    /// parser.free_idle_buffers();
    /// ```
    pub fn free_idle_buffers(&mut self) {
        if self.pos == self.text.len() {
            self.forget_text();
        }
        // A block being skipped has no data either (see `overflow`).
        if !self.block.has_data {
            self.block.data = String::new();
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
        let unread = text_from(&self.text, self.pos);
        if let Some(last_end) = unread.rfind(['\n', '\r']) {
            self.text.truncate(self.pos + last_end + 1);
            self.scanned = self.pos;
            self.ends = 0;
            while let Some(item) = self.next_from_text() {
                self.deferred.get_or_insert_default().push_back(item);
            }
        }
        self.forget_text();
        self.split_char.clear();
        self.skip_lf = false;
        self.line_dropped = false;
        self.bom_matched = Some(0);
        self.block.discard();
    }

    /// Drops the text buffer, with the positions in it.
    fn forget_text(&mut self) {
        self.text = String::new();
        self.pos = 0;
        self.scanned = 0;
        self.ends = 0;
    }
}

/// The line ends (CR or LF) in a block of 64 bytes, as a bit mask: bit `i` for `block[i]`.
///
/// Four 16-byte vector compares, on every CPU `wide` has vectors for (SSE2 on x86-64, NEON
/// on AArch64); scalar elsewhere.
#[inline]
fn line_ends(block: &[u8; 64]) -> u64 {
    let (lf, cr) = (u8x16::splat(b'\n'), u8x16::splat(b'\r'));
    let (parts, _) = block.as_chunks::<16>();
    let mut ends = 0;
    for (i, &part) in parts.iter().enumerate() {
        let part = u8x16::from(part);
        let bits = (part.simd_eq(lf) | part.simd_eq(cr)).to_bitmask();
        ends |= u64::from(bits) << (16 * i);
    }
    ends
}

/// A field's value: the text after the colon, without one leading space.
#[inline(always)]
fn value_of(rest: &str) -> &str {
    rest.strip_prefix(' ').unwrap_or(rest)
}

// The parser's positions (`pos`, `scanned`, line ends) are in its text and at character
// boundaries, since line ends are ASCII. These three read at them: a broken invariant is a bug
// that panics in debug builds and tests (and the fuzz targets), and in release gives an empty
// slice rather than a panic on network input (the crate denies indexing).

/// `text[start..end]` for a line the parser found.
#[inline(always)]
fn text_between(text: &str, start: usize, end: usize) -> &str {
    let line = text.get(start..end);
    debug_assert!(line.is_some(), "line {start}..{end} not in the text");
    line.unwrap_or_default()
}

/// `text[start..]` for a position the parser keeps.
#[inline(always)]
fn text_from(text: &str, start: usize) -> &str {
    let rest = text.get(start..);
    debug_assert!(rest.is_some(), "position {start} not in the text");
    rest.unwrap_or_default()
}

/// `bytes[start..]` for a position the parser keeps.
#[inline(always)]
fn bytes_from(bytes: &[u8], start: usize) -> &[u8] {
    debug_assert!(
        start <= bytes.len(),
        "position {start} past {}",
        bytes.len()
    );
    bytes.get(start..).unwrap_or_default()
}

/// Whether `bytes` are the start of a character that the input ended in the middle of.
fn is_cut_off(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_err_and(|error| error.error_len().is_none())
}

/// A limit kept in 32 bits; larger ones mean "4 GiB", which no line reaches first anyway.
fn limit_u32(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

impl Block {
    /// Interprets one complete line (without its terminator).
    // Inlined into the line loop, the hot path keeps its state in registers.
    #[inline(always)]
    fn line(&mut self, line: &str) -> Option<Result<Item, ParseError>> {
        let Some(&first) = line.as_bytes().first() else {
            return self.dispatch().map(Ok);
        };
        if self.skipping {
            return None;
        }
        if first == b':' {
            return self.comment(line.len(), text_from(line, 1));
        }
        if self.data.len() + line.len() > self.max_event_size as usize {
            return Some(Err(self.line_too_large(line)));
        }
        // The common fields are recognised by their first byte and prefix, without searching
        // for the colon, and handled in place.
        match first {
            b'd' => {
                if let Some(rest) = line.strip_prefix("data:") {
                    self.data_field(value_of(rest));
                    return None;
                }
            }
            b'i' => {
                if let Some(rest) = line.strip_prefix("id:") {
                    return self.id_field(value_of(rest));
                }
            }
            b'e' => {
                if let Some(rest) = line.strip_prefix("event:") {
                    return self.event_field(value_of(rest));
                }
            }
            _ => {}
        }
        self.other_field(line)
    }

    #[inline(always)]
    fn data_field(&mut self, value: &str) {
        if self.has_data {
            self.data.push('\n');
        }
        self.data.push_str(value);
        self.has_data = true;
    }

    #[inline(always)]
    fn id_field(&mut self, value: &str) -> Option<Result<Item, ParseError>> {
        if value.len() > self.max_id_len as usize {
            return Some(Err(self.id_too_long()));
        }
        // An id containing NUL is ignored.
        if !value.as_bytes().contains(&0) {
            self.id_buffer = EventId::new(value);
            self.id_set = true;
        }
        None
    }

    #[inline(always)]
    fn event_field(&mut self, value: &str) -> Option<Result<Item, ParseError>> {
        if value.len() > self.max_type_len as usize {
            return Some(Err(self.type_too_long()));
        }
        let value = if value == DEFAULT_EVENT_TYPE {
            ""
        } else {
            value
        };
        if self.event_type != value {
            self.event_type = CompactString::new(value);
        }
        self.type_set = true;
        None
    }

    /// A line with a field name the prefixes above did not match: `data`, `id` or `event`
    /// without a colon, `retry`, or a name to ignore.
    #[cold]
    fn other_field(&mut self, line: &str) -> Option<Result<Item, ParseError>> {
        let (name, value) = match line.split_once(':') {
            Some((name, rest)) => (name, value_of(rest)),
            None => (line, ""),
        };
        match name {
            "data" => self.data_field(value),
            "id" => return self.id_field(value),
            "event" => return self.event_field(value),
            "retry" => return self.retry(value),
            _ => {}
        }
        None
    }

    #[cold]
    fn comment(&self, line_len: usize, text: &str) -> Option<Result<Item, ParseError>> {
        Some(if line_len > self.max_comment_len as usize {
            Err(self.comment_too_long())
        } else {
            Ok(Item::Comment(text.to_owned()))
        })
    }

    #[cold]
    fn retry(&mut self, value: &str) -> Option<Result<Item, ParseError>> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // All digits: only overflow can fail; such a value, like anything past `MAX_RETRY`,
        // is taken as `MAX_RETRY`.
        let millis = value.bytes().fold(0u32, |acc, digit| {
            acc.saturating_mul(10)
                .saturating_add(u32::from(digit - b'0'))
        });
        let millis = millis.min(u32::MAX - 1);
        self.retry = NonZeroU32::new(millis + 1);
        Some(Ok(Item::Retry(Duration::from_millis(u64::from(millis)))))
    }

    /// WHATWG "dispatch the event", at a blank line.
    fn dispatch(&mut self) -> Option<Item> {
        let id = self.commit_id();
        let type_set = mem::take(&mut self.type_set);
        if mem::take(&mut self.skipping) || !mem::take(&mut self.has_data) {
            self.data.clear();
            return None;
        }
        let event_type = if type_set {
            self.event_type.clone()
        } else {
            CompactString::default()
        };
        Some(Item::Event(Event::from_parts(
            event_type,
            &mut self.data,
            id,
        )))
    }

    /// Commits the last event id buffer, if an `id` field set it, and returns the last event
    /// id. That is cloned from the buffer rather than read back from the id just committed: a
    /// CPU waits for a read of bytes it is still writing.
    #[inline(always)]
    fn commit_id(&mut self) -> EventId {
        if mem::take(&mut self.id_set) {
            let id = mem::take(&mut self.id_buffer);
            self.last_event_id = id.clone();
            id
        } else {
            self.last_event_id.clone()
        }
    }

    /// A complete line that makes the block too large. An id or event type over its own
    /// limit is reported as that (the id line alone is dropped); anything else drops the
    /// block.
    #[cold]
    fn line_too_large(&mut self, line: &str) -> ParseError {
        if let Some(rest) = line.strip_prefix("id:")
            && value_of(rest).len() > self.max_id_len as usize
        {
            return self.id_too_long();
        }
        if let Some(rest) = line.strip_prefix("event:")
            && value_of(rest).len() > self.max_type_len as usize
        {
            return self.type_too_long();
        }
        self.overflow()
    }

    /// Drops the current block because it is too large and starts skipping to its end.
    #[cold]
    fn overflow(&mut self) -> ParseError {
        self.data = String::new();
        self.has_data = false;
        self.type_set = false;
        self.skipping = true;
        self.too_large()
    }

    #[cold]
    fn too_large(&self) -> ParseError {
        ParseError::EventTooLarge {
            limit: self.max_event_size as usize,
        }
    }

    /// An over-long id: the field is ignored, nothing else changes.
    #[cold]
    fn id_too_long(&self) -> ParseError {
        ParseError::IdTooLong {
            limit: self.max_id_len as usize,
        }
    }

    /// An over-long event type: the block is skipped to its end, as an over-large one is.
    #[cold]
    fn type_too_long(&mut self) -> ParseError {
        self.overflow();
        ParseError::EventTypeTooLong {
            limit: self.max_type_len as usize,
        }
    }

    #[cold]
    fn comment_too_long(&self) -> ParseError {
        ParseError::CommentTooLong {
            limit: self.max_comment_len as usize,
        }
    }

    /// Forgets the unfinished block at the end of a body; the committed id stays.
    fn discard(&mut self) {
        self.data = String::new();
        self.has_data = false;
        self.type_set = false;
        self.skipping = false;
        self.id_set = false;
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn free_idle_buffers_frees_only_what_holds_nothing() {
        let mut parser = Parser::new();
        parser.feed(format!("data: {}\n\n", "x".repeat(3000)));
        while parser.next_item().is_some() {}
        parser.free_idle_buffers();
        assert_eq!(parser.text.capacity(), 0);
        assert_eq!(parser.block.data.capacity(), 0);

        // An unfinished line and an unfinished event are kept, and parsing goes on.
        parser.feed("id: 7\ndata: fir");
        assert!(parser.next_item().is_none());
        parser.free_idle_buffers();
        parser.feed("st\ndata: second\n");
        assert!(parser.next_item().is_none());
        parser.free_idle_buffers();
        assert!(parser.block.data.capacity() > 0);
        parser.feed("\n");
        let Some(Ok(Item::Event(event))) = parser.next_item() else {
            panic!("no event");
        };
        assert_eq!(event.data(), "first\nsecond");
        assert_eq!(event.id(), "7");
    }

    #[test]
    fn an_endless_id_line_is_dropped_at_its_limit_without_buffering_it() {
        let mut parser = Parser::new().with_max_id_len(1024);
        parser.feed("id: 1\ndata: a\n\nid: ");
        assert!(matches!(parser.next_item(), Some(Ok(Item::Event(_)))));
        let chunk = "i".repeat(512);
        let mut errors = Vec::new();
        for _ in 0..20_000 {
            parser.feed(&chunk);
            while let Some(item) = parser.next_item() {
                errors.push(item);
            }
            assert!(
                parser.text.capacity() <= 64 * 1024,
                "{}",
                parser.text.capacity()
            );
        }
        assert_eq!(errors, [Err(ParseError::IdTooLong { limit: 1024 })]);
        parser.feed("\ndata: b\n\n");
        let Some(Ok(Item::Event(event))) = parser.next_item() else {
            panic!("no event");
        };
        assert_eq!((event.data(), event.id()), ("b", "1"));
    }

    #[test]
    fn limits_give_the_same_result_however_the_input_is_split() {
        let input = "data: 0123456789\nid: 0123456789abcdef\n\nevent: 0123456789abcdef\ndata: x\n\n\
                     : 0123456789abcdef\nid: ok\nevent: fine\ndata: y\n\n";
        let parse = |chunk: usize, max_event: usize| {
            let mut parser = Parser::with_max_event_size(max_event)
                .with_max_id_len(8)
                .with_max_event_type_len(8)
                .with_max_comment_len(8);
            let mut items = Vec::new();
            for piece in input.as_bytes().chunks(chunk) {
                parser.feed(piece);
                while let Some(item) = parser.next_item() {
                    items.push(item);
                }
            }
            items
        };
        for max_event in [20, 1000] {
            let whole = parse(input.len(), max_event);
            for chunk in 1..input.len() {
                assert_eq!(parse(chunk, max_event), whole, "chunks of {chunk}");
            }
        }
        assert_eq!(
            parse(input.len(), 1000),
            [
                Err(ParseError::IdTooLong { limit: 8 }),
                Ok(Item::Event(Event::new("", "0123456789", ""))),
                Err(ParseError::EventTypeTooLong { limit: 8 }),
                Err(ParseError::CommentTooLong { limit: 8 }),
                Ok(Item::Event(Event::new("fine", "y", "ok"))),
            ]
        );
    }

    /// Every open stream holds a parser, idle or not: keep its fixed part small.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_parser_stays_small() {
        let size = mem::size_of::<Parser>();
        assert!(size <= 184, "Parser grew to {size} bytes");
    }
}
