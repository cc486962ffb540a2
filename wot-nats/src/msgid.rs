//! Message ids (`Nats-Msg-Id`): what makes JetStream store a replayed record once.

use sha2::{Digest, Sha256};

use crate::subject::encode_token;

/// The longest message id written, in bytes: 128. Longer ids are replaced by a hash.
pub const MAX_MESSAGE_ID_LEN: usize = 128;

/// The message id of a record of Thing `thing_id`, from stream `stream` (`event/<name>`,
/// `property/<name>`), with SSE event id `event_id`; `run` counts the records before it that
/// carried the same event id in a row (an SSE event without an `id` line carries the id of
/// the one before it), 0 for the first.
///
/// The id is `<thing>.<stream>.<event id>`, each part [`encode_token`]ed, with `.<run>` added
/// when `run` is not 0. If that is longer than [`MAX_MESSAGE_ID_LEN`] bytes, it is `h.`
/// followed by the SHA-256, in lowercase hexadecimal, of the parts, each preceded by its
/// length in bytes as 8 bytes big-endian, then `run` as 4 bytes big-endian.
///
/// A JetStream stream drops a message whose id it stored within its duplicate window, so a
/// collector that resumes a Thing's SSE stream from an earlier event id (after a failover)
/// publishes the replayed events again without storing them twice.
///
/// # Examples
///
/// ```
/// assert_eq!(
///     wot_nats::message_id("urn:dev:boiler", "event/overheat", "42", 0),
///     "urn=3Adev=3Aboiler.event=2Foverheat.42"
/// );
/// assert_eq!(wot_nats::message_id("t", "event/e", "42", 1), "t.event=2Fe.42.1");
/// let long = wot_nats::message_id(&"x".repeat(500), "event/e", "42", 0);
/// assert!(long.starts_with("h.") && long.len() == 66);
/// ```
pub fn message_id(thing_id: &str, stream: &str, event_id: &str, run: u32) -> String {
    let budget = MAX_MESSAGE_ID_LEN;
    // A quick bound first: encoded parts are at least as long as the text.
    if thing_id.len() + stream.len() + event_id.len() + 2 <= budget {
        let mut id = String::with_capacity(budget);
        encode_token(thing_id, &mut id);
        id.push('.');
        encode_token(stream, &mut id);
        id.push('.');
        encode_token(event_id, &mut id);
        if run > 0 {
            id.push('.');
            id.push_str(&run.to_string());
        }
        if id.len() <= budget {
            return id;
        }
    }
    let mut hash = Sha256::new();
    for part in [thing_id, stream, event_id] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.update(run.to_be_bytes());
    let digest = hash.finalize();
    let mut id = String::with_capacity(66);
    id.push_str("h.");
    for b in digest {
        id.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        id.push(char::from(b"0123456789abcdef"[usize::from(b & 0xF)]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_distinct_and_stable() {
        let a = message_id("t", "event/e", "1", 0);
        assert_ne!(a, message_id("t", "event/e", "1", 1));
        assert_ne!(a, message_id("t", "event/f", "1", 0));
        assert_ne!(a, message_id("t.event/e", "", "1", 0));
        let long_id = "é".repeat(3000);
        let h = message_id("t", "event/e", &long_id, 0);
        assert_eq!(h.len(), 66);
        assert_eq!(h, message_id("t", "event/e", &long_id, 0));
        assert_ne!(h, message_id("t", "event/e", &long_id, 1));
        // Parts that only differ in where one ends and the next starts.
        assert_ne!(
            message_id(&"a".repeat(100), &"b".repeat(100), "c", 0),
            message_id(&"a".repeat(99), &format!("a{}", "b".repeat(100)), "c", 0)
        );
        // Header-safe: no CR, LF or spaces whatever the input.
        let hostile = message_id("a\r\nb", "event/ x", "\n", 0);
        assert!(hostile.bytes().all(|b| b.is_ascii_graphic()), "{hostile}");
        assert!(hostile.len() <= MAX_MESSAGE_ID_LEN);
    }
}
