//! Per-Thing record log: live fan-out plus a bounded replay buffer for `Last-Event-ID`.
//!
//! Every property change and event of one Thing gets the next number of that Thing's sequence;
//! the number is the SSE `id` (the resume token). A subscriber registers for live records and
//! takes its replay snapshot under the same lock that publishing holds, so nothing falls
//! between the replay and the live part, and nothing is sent twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::broadcast;

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Property,
    Event,
}

/// One property change or event, with its SSE frame already encoded.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    pub(crate) name: String,
    /// The whole `id:`/`event:`/`data:` block, ending in a blank line.
    pub(crate) frame: Bytes,
}

/// Which records an SSE connection wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selector {
    pub(crate) kind: Kind,
    /// One affordance, or all of this kind.
    pub(crate) name: Option<String>,
}

impl Selector {
    pub(crate) fn matches(&self, record: &Record) -> bool {
        record.kind == self.kind && self.name.as_ref().is_none_or(|n| *n == record.name)
    }
}

struct LogState {
    next_id: u64,
    replay: VecDeque<Arc<Record>>,
    /// The record that set each property's current value, for new observers.
    latest: HashMap<String, Arc<Record>>,
}

/// The record log of one Thing.
pub(crate) struct ThingLog {
    state: Mutex<LogState>,
    live: broadcast::Sender<Arc<Record>>,
    capacity: usize,
}

/// What a new subscriber gets: the records to send first, and the live feed after them.
pub(crate) struct Subscription {
    /// The id of the last record published before this subscription (0 for none): where a
    /// client that has received nothing yet resumes.
    pub(crate) position: u64,
    pub(crate) backlog: Vec<Arc<Record>>,
    pub(crate) live: broadcast::Receiver<Arc<Record>>,
}

fn encode(id: u64, name: &str, data: &Value) -> Bytes {
    // serde_json never writes a raw newline, so the data fits on one `data:` line.
    Bytes::from(format!("id: {id}\nevent: {name}\ndata: {data}\n\n"))
}

impl ThingLog {
    /// A log that keeps the last `capacity` records for replay.
    pub(crate) fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(capacity.max(16));
        ThingLog {
            state: Mutex::new(LogState {
                next_id: 1,
                // Grows as records come: a fleet of quiet Things holds little.
                replay: VecDeque::new(),
                latest: HashMap::new(),
            }),
            live,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        // A panic elsewhere cannot leave the log half-updated: every update is one push.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a record and sends it to every live subscriber.
    pub(crate) fn publish(&self, kind: Kind, name: &str, data: &Value) {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let record = Arc::new(Record {
            id,
            kind,
            name: name.to_owned(),
            frame: encode(id, name, data),
        });
        if state.replay.len() == self.capacity {
            state.replay.pop_front();
        }
        state.replay.push_back(Arc::clone(&record));
        if kind == Kind::Property {
            state.latest.insert(name.to_owned(), Arc::clone(&record));
        }
        // No receivers is normal (nobody watching); ignore that error.
        let _ = self.live.send(record);
    }

    /// Registers a subscriber. With a `last_event_id` from this log, the backlog holds the
    /// buffered records after it; without one, the current value of each selected property.
    pub(crate) fn subscribe(
        &self,
        selector: &Selector,
        last_event_id: Option<u64>,
    ) -> Subscription {
        let state = self.lock();
        let live = self.live.subscribe();
        let backlog = match last_event_id.filter(|id| *id < state.next_id) {
            Some(last) => state
                .replay
                .iter()
                .filter(|r| r.id > last && selector.matches(r))
                .cloned()
                .collect(),
            None => {
                let mut current: Vec<_> = state
                    .latest
                    .values()
                    .filter(|r| selector.matches(r))
                    .cloned()
                    .collect();
                current.sort_by_key(|r| r.id);
                current
            }
        };
        Subscription {
            position: state.next_id - 1,
            backlog,
            live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ids(records: &[Arc<Record>]) -> Vec<u64> {
        records.iter().map(|r| r.id).collect()
    }

    #[test]
    fn frames_carry_id_event_and_json_data() {
        let log = ThingLog::new(4);
        log.publish(Kind::Event, "fault", &json!({"code": "x"}));
        let sub = log.subscribe(
            &Selector {
                kind: Kind::Event,
                name: None,
            },
            Some(0),
        );
        assert_eq!(
            sub.backlog[0].frame,
            Bytes::from("id: 1\nevent: fault\ndata: {\"code\":\"x\"}\n\n")
        );
    }

    #[test]
    fn replay_is_bounded_filtered_and_starts_after_the_last_id() {
        let log = ThingLog::new(4);
        for i in 0..6 {
            log.publish(
                Kind::Property,
                if i % 2 == 0 { "a" } else { "b" },
                &json!(i),
            );
        }
        let all = Selector {
            kind: Kind::Property,
            name: None,
        };
        let only_a = Selector {
            kind: Kind::Property,
            name: Some("a".into()),
        };
        assert_eq!(ids(&log.subscribe(&all, Some(3)).backlog), vec![4, 5, 6]);
        assert_eq!(ids(&log.subscribe(&only_a, Some(3)).backlog), vec![5]);
        // Older than the buffer: what is left is replayed.
        assert_eq!(ids(&log.subscribe(&all, Some(0)).backlog), vec![3, 4, 5, 6]);
        // No id, or an id this log never issued (a restarted server): current values.
        assert_eq!(ids(&log.subscribe(&all, None).backlog), vec![5, 6]);
        assert_eq!(ids(&log.subscribe(&all, Some(99)).backlog), vec![5, 6]);
    }

    #[test]
    fn live_records_follow_the_backlog_without_overlap() {
        let log = ThingLog::new(8);
        log.publish(Kind::Event, "e", &json!(1));
        let selector = Selector {
            kind: Kind::Event,
            name: None,
        };
        let mut sub = log.subscribe(&selector, Some(0));
        log.publish(Kind::Event, "e", &json!(2));
        assert_eq!(ids(&sub.backlog), vec![1]);
        assert_eq!(sub.live.try_recv().map(|r| r.id).ok(), Some(2));
        assert!(sub.live.try_recv().is_err());
    }
}
