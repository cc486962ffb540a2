//! The event type shared by the parser and the client.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use arrayvec::ArrayString;
use compact_str::CompactString;

/// The event type used when a block sets none.
pub(crate) const DEFAULT_EVENT_TYPE: &str = "message";

/// Data up to this many bytes is kept inside the [`Event`], without an allocation of its own:
/// room for the usual small notification, such as a WoT property value with a timestamp, while
/// the whole event stays at 128 bytes.
pub(crate) const INLINE_DATA_LEN: usize = 72;

/// Ids up to this many bytes are kept inline; longer ones are shared behind an `Arc`.
const INLINE_ID_LEN: usize = 24;

/// An event id: cheap to clone, whatever its length.
///
/// The parser makes one `EventId` per `id` line, and every event dispatched until the next
/// `id` line carries a clone of it: short ids (up to 24 bytes) are stored inline, longer ones
/// are shared behind a reference count, so a thousand events after one long `id` line hold
/// one copy of it, not a thousand. It dereferences to `&str`.
///
/// ```
/// use wot_sse::EventId;
///
/// let id = EventId::from("x".repeat(1000));
/// let copy = id.clone(); // no copy of the text
/// assert_eq!(copy.len(), 1000);
/// assert_eq!(EventId::from("42"), "42");
/// ```
#[derive(Clone)]
pub struct EventId(IdRepr);

#[derive(Clone)]
enum IdRepr {
    /// At most `INLINE_ID_LEN` bytes, so never on the heap.
    Inline(CompactString),
    Shared(Arc<str>),
}

impl EventId {
    /// Makes an id from its text.
    #[inline]
    pub fn new(id: &str) -> Self {
        Self(if id.len() <= INLINE_ID_LEN {
            IdRepr::Inline(CompactString::new(id))
        } else {
            IdRepr::Shared(Arc::from(id))
        })
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            IdRepr::Inline(id) => id,
            IdRepr::Shared(id) => id,
        }
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self(IdRepr::Inline(CompactString::default()))
    }
}

impl Deref for EventId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for EventId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for EventId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<String> for EventId {
    fn from(id: String) -> Self {
        if id.len() <= INLINE_ID_LEN {
            Self::new(&id)
        } else {
            Self(IdRepr::Shared(Arc::from(id)))
        }
    }
}

impl PartialEq for EventId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for EventId {}

impl PartialEq<str> for EventId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for EventId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Hash for EventId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dispatched Server-Sent Event.
///
/// Its fields follow the WHATWG `MessageEvent` that a browser's `EventSource` would fire:
/// the event type (`"message"` when the block set none), the data (data lines joined with
/// `\n`), and the *last event id* of the stream when the event was dispatched. The id is the
/// last `id` field seen on the stream so far, so an event without its own `id` line carries the
/// id of an earlier one; it is `""` when no id was set or the server reset it.
///
/// Data of up to 72 bytes is stored in the event itself, so receiving a small event costs no
/// allocation; larger data has a buffer of its own, taken over from the parser without a copy.
/// The id is an [`EventId`]: events that carry the same id share it.
///
/// # Examples
///
/// ```
/// use wot_sse::Event;
///
/// let event = Event::new("temperature", "21.5", "42");
/// assert_eq!(event.event_type(), "temperature");
/// assert_eq!(event.data(), "21.5");
/// assert_eq!(event.id(), "42");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// Empty means the default type `message`. Short strings are stored inline, so the
    /// usual types cost no allocation.
    event_type: CompactString,
    data: Data,
    id: EventId,
}

/// Event data: inline when it is short, on the heap otherwise.
#[derive(Clone)]
enum Data {
    Inline(ArrayString<INLINE_DATA_LEN>),
    Heap(String),
}

impl Data {
    /// Copies short data inline and leaves `buffer` empty (its allocation kept for reuse);
    /// takes longer data over without a copy.
    fn take(buffer: &mut String) -> Self {
        match ArrayString::from(buffer.as_str()) {
            Ok(inline) => {
                buffer.clear();
                Self::Inline(inline)
            }
            Err(_) => Self::Heap(std::mem::take(buffer)),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Inline(data) => data,
            Self::Heap(data) => data,
        }
    }
}

// Equal text is equal data, whichever way it is stored.
impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Data {}

impl Hash for Data {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Event {
    /// Creates an event from its parts. An empty `event_type` means `"message"`, as in a stream.
    pub fn new(
        event_type: impl Into<String>,
        data: impl Into<String>,
        id: impl Into<String>,
    ) -> Self {
        let event_type = event_type.into();
        Self {
            event_type: if event_type == DEFAULT_EVENT_TYPE {
                CompactString::default()
            } else {
                CompactString::from(event_type)
            },
            data: Data::take(&mut data.into()),
            id: EventId::from(id.into()),
        }
    }

    /// Builds an event from the parser's buffers: short data is copied inline and the data
    /// buffer is left empty for reuse; longer data is taken over without a copy.
    pub(crate) fn from_parts(event_type: CompactString, data: &mut String, id: EventId) -> Self {
        // `Data::take` with an event built on each path: the inline copy then goes where the
        // event is returned rather than into a `Data` that is copied there afterwards.
        if data.len() <= INLINE_DATA_LEN {
            let mut inline = ArrayString::new();
            // Cannot fail: the length was checked.
            let _ = inline.try_push_str(data);
            data.clear();
            Self {
                event_type,
                data: Data::Inline(inline),
                id,
            }
        } else {
            Self {
                event_type,
                data: Data::Heap(std::mem::take(data)),
                id,
            }
        }
    }

    /// The event type: the value of the block's last `event` field, `"message"` if none.
    pub fn event_type(&self) -> &str {
        if self.event_type.is_empty() {
            DEFAULT_EVENT_TYPE
        } else {
            &self.event_type
        }
    }

    /// The event data: the values of the block's `data` lines joined with `\n`.
    pub fn data(&self) -> &str {
        self.data.as_str()
    }

    /// The stream's last event id when this event was dispatched (`""` if none).
    ///
    /// This is what a reconnect sends as `Last-Event-ID`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The same id as [`id`](Self::id), as a shared [`EventId`]: clone it to keep the id
    /// without copying its text.
    pub fn shared_id(&self) -> &EventId {
        &self.id
    }

    /// Consumes the event and returns its data (copied only if it was stored inline).
    pub fn into_data(self) -> String {
        match self.data {
            Data::Inline(data) => String::from(data.as_str()),
            Data::Heap(data) => data,
        }
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("type", &self.event_type())
            .field("data", &self.data())
            .field("id", &self.id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_message_type_are_the_default() {
        assert_eq!(Event::new("", "d", "").event_type(), "message");
        assert_eq!(Event::new("", "d", ""), Event::new("message", "d", ""));
        assert_eq!(Event::new("x", "d", "").event_type(), "x");
    }

    #[test]
    fn data_is_the_same_inline_or_not() {
        let short = "s".repeat(INLINE_DATA_LEN);
        let long = "l".repeat(INLINE_DATA_LEN + 1);
        for data in [String::new(), short, long] {
            let mut buffer = data.clone();
            let parsed = Event::from_parts(CompactString::default(), &mut buffer, "1".into());
            let built = Event::new("", data.as_str(), "1");
            assert_eq!(parsed.data(), data);
            assert_eq!(parsed, built);
            assert_eq!(parsed.clone().into_data(), data);
        }
        // An event stays two cache lines, inline data included.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<Event>(), 128);
    }

    #[test]
    fn ids_are_inline_when_short_and_shared_when_long() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<EventId>(), 24);
        for len in [0, 1, INLINE_ID_LEN, INLINE_ID_LEN + 1, 5000] {
            let text = "i".repeat(len);
            let id = EventId::new(&text);
            assert_eq!(id, text.as_str());
            assert_eq!(EventId::from(text.clone()), id);
            assert_eq!(matches!(id.0, IdRepr::Shared(_)), len > INLINE_ID_LEN);
            if let IdRepr::Inline(inline) = &id.0 {
                assert!(!inline.is_heap_allocated());
            }
        }
        let long = EventId::new(&"l".repeat(1000));
        let events: Vec<Event> = (0..3)
            .map(|_| Event::from_parts(CompactString::default(), &mut "d".into(), long.clone()))
            .collect();
        for event in &events {
            assert!(std::ptr::eq(event.id().as_ptr(), long.as_ptr()), "shared");
        }
    }
}
