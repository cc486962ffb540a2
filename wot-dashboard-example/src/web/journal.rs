//! The numbered live changes of one server run, as ready-made Server-Sent Events frames,
//! with a bounded replay buffer.
//!
//! Every change gets the next id (one more than the one before). The newest frames are kept,
//! at most [`WebLimits::replay_events`](super::WebLimits::replay_events) of them and at most
//! [`WebLimits::replay_bytes`](super::WebLimits::replay_bytes) together, so that a client
//! that reconnects with `Last-Event-ID: N` gets every change after `N` exactly once
//! ([`Journal::read_after`]). A position the buffer no longer covers (too old, or from
//! another run) is [`Behind`]: the client must start again from a snapshot.
//!
//! A run's first id is derived from the time it started (microseconds since the Unix epoch,
//! which stays below 2^53 and so is exact in JavaScript), so an id from an earlier run is
//! older than anything this run holds and is told to start again, not misread as a position
//! in this run.

use std::collections::VecDeque;
use std::time::SystemTime;

use bytes::Bytes;
use serde::Serialize;

/// Largest first id: keeps every id of a run exact as a JavaScript number (below 2^53).
const MAX_FIRST_ID: u64 = 1 << 52;

/// A position that the journal cannot resume from: older than its oldest frame, or newer
/// than its newest (from another run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behind {
    /// The newest id, from which a client can go on after starting again.
    pub newest: u64,
}

/// The numbered frames of a run, oldest first, bounded by count and bytes.
#[derive(Debug)]
pub struct Journal {
    /// `(id, frame)`, ids consecutive.
    frames: VecDeque<(u64, Bytes)>,
    /// Bytes of the frames held.
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// The id of the newest frame (`first - 1` before the first).
    newest: u64,
    /// The newest id no longer held: positions before it cannot be resumed.
    dropped_through: u64,
}

impl Journal {
    /// An empty journal whose first frame gets `first_id` (at least 1), keeping at most
    /// `max_frames` frames (at least 1) and `max_bytes` bytes of them (the newest frame is
    /// always kept).
    pub fn new(first_id: u64, max_frames: usize, max_bytes: usize) -> Self {
        let before = first_id.max(1) - 1;
        Journal {
            frames: VecDeque::new(),
            bytes: 0,
            max_frames: max_frames.max(1),
            max_bytes,
            newest: before,
            dropped_through: before,
        }
    }

    /// The first id for a run starting at `now`: its microseconds since the Unix epoch,
    /// capped at 2^52.
    pub fn first_id_at(now: SystemTime) -> u64 {
        let micros = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(MAX_FIRST_ID));
        micros.clamp(1, MAX_FIRST_ID)
    }

    /// The id of the newest frame: a snapshot taken now reflects every change up to it.
    /// Before the first change, one less than the first id.
    pub fn last_id(&self) -> u64 {
        self.newest
    }

    /// The id the next frame will get.
    pub fn next_id(&self) -> u64 {
        self.newest.saturating_add(1)
    }

    /// How many frames are held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The bytes of the frames held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a change of type `event` with `data` (serialized as one line of JSON) and
    /// returns its id; the oldest frames go past the bounds.
    pub fn push(&mut self, event: &'static str, data: &impl Serialize) -> u64 {
        let id = self.next_id();
        let frame = frame(Some(id), event, data);
        self.bytes = self.bytes.saturating_add(frame.len());
        self.frames.push_back((id, frame));
        self.newest = id;
        while self.frames.len() > self.max_frames
            || (self.bytes > self.max_bytes && self.frames.len() > 1)
        {
            let Some((gone, frame)) = self.frames.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(frame.len());
            self.dropped_through = gone;
        }
        id
    }

    /// Whether a client that has seen every change up to `after` can be resumed.
    pub fn covers(&self, after: u64) -> bool {
        (self.dropped_through..=self.newest).contains(&after)
    }

    /// Appends to `out` the frames after `after`, at most `max` of them and no more once
    /// `max_bytes` are reached (the first frame always goes), and returns the id of the last
    /// one appended (`after` when there is none yet).
    ///
    /// # Errors
    /// [`Behind`] when `after` is not [covered](Self::covers).
    pub fn read_after(
        &self,
        after: u64,
        max: usize,
        max_bytes: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<u64, Behind> {
        if !self.covers(after) {
            return Err(Behind {
                newest: self.newest,
            });
        }
        // Ids are consecutive: the frame after `after` is at this index.
        let start = usize::try_from(after - self.dropped_through).unwrap_or(usize::MAX);
        let mut last = after;
        let mut bytes = 0usize;
        for (id, frame) in self.frames.iter().skip(start).take(max) {
            if bytes > 0 && bytes >= max_bytes {
                break;
            }
            bytes = bytes.saturating_add(frame.len());
            out.push(frame.clone());
            last = *id;
        }
        Ok(last)
    }
}

/// One Server-Sent Events frame: `id:` (when given), `event:`, one `data:` line of JSON and
/// the blank line that ends it.
///
/// Compact JSON has no line breaks (they are escaped inside strings, as are all control
/// characters), so the data is always one line, as the WHATWG parser expects. The event type
/// is one of the server's own names (`'static`): no text from a Thing or a browser ever
/// reaches the `id:` or `event:` lines.
pub fn frame(id: Option<u64>, event: &'static str, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".to_owned());
    let mut out = String::with_capacity(json.len() + event.len() + 40);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(event);
    out.push_str("\ndata: ");
    out.push_str(&json);
    out.push_str("\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn ids(frames: &[Bytes]) -> Vec<u64> {
        frames
            .iter()
            .map(|f| {
                let text = std::str::from_utf8(f).expect("utf-8");
                let line = text.lines().next().expect("a line");
                line.strip_prefix("id: ")
                    .expect("id")
                    .parse()
                    .expect("number")
            })
            .collect()
    }

    #[test]
    fn frames_are_one_line_of_json_per_event() {
        let f = frame(
            Some(7),
            "property",
            &json!({"v": "a\nb\r\nc", "t": "<script>"}),
        );
        assert_eq!(
            &f[..],
            b"id: 7\nevent: property\ndata: {\"v\":\"a\\nb\\r\\nc\",\"t\":\"<script>\"}\n\n"
        );
        assert_eq!(
            &frame(None, "reset", &json!({}))[..],
            b"event: reset\ndata: {}\n\n"
        );
    }

    #[test]
    fn hostile_text_stays_inside_the_one_data_line() {
        let nasty = "a\r\nevent: reset\rdata: x\n\nid: 1\u{0}\u{1b}\u{2028}\u{85}";
        let f = frame(Some(9), "event", &json!({"title": nasty, nasty: [nasty]}));
        let text = std::str::from_utf8(&f).expect("utf-8");
        // The WHATWG parser splits lines at CR, LF and CRLF only.
        let lines: Vec<&str> = text.split(['\r', '\n']).collect();
        assert_eq!(lines.len(), 5, "{text:?}");
        assert_eq!(&lines[..2], ["id: 9", "event: event"]);
        assert!(lines[2].starts_with("data: {"));
        assert_eq!(&lines[3..], ["", ""]);
        let data: serde_json::Value =
            serde_json::from_str(lines[2].trim_start_matches("data: ")).expect("JSON");
        assert_eq!(data["title"], nasty);
        assert!(!lines[2].contains('\u{0}'));
    }

    #[test]
    fn replays_every_frame_after_a_position_once() {
        let mut journal = Journal::new(100, 10, usize::MAX);
        assert_eq!(journal.last_id(), 99);
        assert!(journal.covers(99));
        let mut out = Vec::new();
        assert_eq!(journal.read_after(99, 10, usize::MAX, &mut out), Ok(99));
        assert!(out.is_empty());
        for i in 0..5 {
            assert_eq!(journal.push("n", &i), 100 + i);
        }
        assert_eq!(journal.read_after(101, 10, usize::MAX, &mut out), Ok(104));
        assert_eq!(ids(&out), [102, 103, 104]);
        out.clear();
        // In batches.
        assert_eq!(journal.read_after(99, 2, usize::MAX, &mut out), Ok(101));
        assert_eq!(journal.read_after(101, 2, usize::MAX, &mut out), Ok(103));
        assert_eq!(journal.read_after(103, 2, usize::MAX, &mut out), Ok(104));
        assert_eq!(ids(&out), [100, 101, 102, 103, 104]);
        // By bytes: frames are 26 bytes here; the one that reaches the bound is the last.
        out.clear();
        assert_eq!(journal.read_after(99, 10, 30, &mut out), Ok(101));
        assert_eq!(ids(&out), [100, 101]);
        out.clear();
        assert_eq!(journal.read_after(99, 10, 0, &mut out), Ok(100));
        assert_eq!(ids(&out), [100]);
    }

    #[test]
    fn positions_outside_the_buffer_are_behind() {
        let mut journal = Journal::new(1, 3, usize::MAX);
        for i in 0..10 {
            journal.push("n", &i);
        }
        assert_eq!(journal.len(), 3);
        let mut out = Vec::new();
        // Frames 8, 9, 10 are held: resuming after 7 works, after 6 does not.
        assert_eq!(journal.read_after(7, 10, usize::MAX, &mut out), Ok(10));
        assert_eq!(ids(&out), [8, 9, 10]);
        assert_eq!(
            journal.read_after(6, 10, usize::MAX, &mut out),
            Err(Behind { newest: 10 })
        );
        assert_eq!(
            journal.read_after(0, 10, usize::MAX, &mut out),
            Err(Behind { newest: 10 })
        );
        // From the future (another run).
        assert_eq!(
            journal.read_after(11, 10, usize::MAX, &mut out),
            Err(Behind { newest: 10 })
        );
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_but_keeps_the_newest() {
        let mut journal = Journal::new(1, 1000, 1024);
        for _ in 0..100 {
            journal.push("big", &"x".repeat(100));
        }
        assert!(journal.bytes() <= 1024, "{}", journal.bytes());
        assert!(journal.len() < 10 && !journal.is_empty());
        journal.push("huge", &"y".repeat(10_000));
        assert_eq!(journal.len(), 1);
        assert!(journal.covers(journal.last_id() - 1));
        assert!(!journal.covers(journal.last_id() - 2));
    }

    #[test]
    fn first_ids_follow_the_clock_and_stay_exact_in_javascript() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_100_000);
        assert_eq!(Journal::first_id_at(at), 1_765_100_000_000_000);
        let later = Journal::first_id_at(at + Duration::from_secs(1));
        assert!(later > Journal::first_id_at(at) + 10_000);
        assert_eq!(Journal::first_id_at(SystemTime::UNIX_EPOCH), 1);
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40);
        assert_eq!(Journal::first_id_at(far), 1 << 52);
    }
}
