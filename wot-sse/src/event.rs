//! The event type shared by the parser and the client.

use std::fmt;
use std::hash::{Hash, Hasher};

use arrayvec::ArrayString;
use compact_str::CompactString;

/// The event type used when a block sets none.
pub(crate) const DEFAULT_EVENT_TYPE: &str = "message";

/// Data up to this many bytes is kept inside the [`Event`], without an allocation of its own:
/// room for the usual small notification, such as a WoT property value with a timestamp, while
/// the whole event stays at 128 bytes.
pub(crate) const INLINE_DATA_LEN: usize = 72;

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
    /// usual types and ids cost no allocation.
    event_type: CompactString,
    data: Data,
    id: CompactString,
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
            id: CompactString::from(id.into()),
        }
    }

    /// Builds an event from the parser's buffers: short data is copied inline and the data
    /// buffer is left empty for reuse; longer data is taken over without a copy.
    pub(crate) fn from_parts(
        event_type: CompactString,
        data: &mut String,
        id: CompactString,
    ) -> Self {
        Self {
            event_type,
            data: Data::take(data),
            id,
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
            .field("id", &self.id.as_str())
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
}
