//! The event type shared by the parser and the client.

use std::fmt;

use compact_str::CompactString;

/// The event type used when a block sets none.
pub(crate) const DEFAULT_EVENT_TYPE: &str = "message";

/// One dispatched Server-Sent Event.
///
/// Its fields follow the WHATWG `MessageEvent` that a browser's `EventSource` would fire:
/// the event type (`"message"` when the block set none), the data (data lines joined with
/// `\n`), and the *last event id* of the stream when the event was dispatched. The id is the
/// last `id` field seen on the stream so far, so an event without its own `id` line carries the
/// id of an earlier one; it is `""` when no id was set or the server reset it.
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
    data: String,
    id: CompactString,
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
            data: data.into(),
            id: CompactString::from(id.into()),
        }
    }

    /// Builds an event from parser buffers without copying them again.
    pub(crate) fn from_parts(event_type: CompactString, data: String, id: CompactString) -> Self {
        Self {
            event_type,
            data,
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
        &self.data
    }

    /// The stream's last event id when this event was dispatched (`""` if none).
    ///
    /// This is what a reconnect sends as `Last-Event-ID`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Consumes the event and returns its data without copying it.
    pub fn into_data(self) -> String {
        self.data
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("type", &self.event_type())
            .field("data", &self.data)
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
}
