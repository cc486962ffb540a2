//! Batches: what one caller wants written together.

use std::collections::HashMap;

use wot_events::{EventRecord, PropertyUpdate, ResumePoint, StreamKey};

use crate::codec;

/// The tables of keyed state (the history has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Resume,
    Alerts,
    Silences,
    Outbox,
    AlertMeta,
}

#[derive(Debug)]
pub(crate) enum Op {
    Put {
        table: Table,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        table: Table,
        key: Vec<u8>,
    },
    Clear(Table),
    /// An app-owned meta value set (`Some`) or removed (`None`); the writer stores it with
    /// the history position where the batch's records begin.
    Meta {
        key: String,
        value: Option<Vec<u8>>,
    },
}

/// One encoded history record of a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordRef {
    /// Index into the batch's series keys.
    pub(crate) series: u32,
    /// Where its body ends in the batch's history bytes (it starts where the previous ends).
    pub(crate) end: usize,
    /// When it was received, in ms since the epoch.
    pub(crate) at_ms: u64,
}

/// The series key of the event timeline.
pub(crate) const EVENTS_SERIES: &[u8] = b"e";

/// The series key of a property's history: `p`, the Thing id's length (u32, little-endian),
/// the Thing id, the property name. The length keeps `("a\0b", "c")` and `("a", "b\0c")`
/// apart.
pub(crate) fn property_series(thing: &str, property: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(5 + thing.len() + property.len());
    key.push(b'p');
    key.extend_from_slice(&(thing.len() as u32).to_le_bytes());
    key.extend_from_slice(thing.as_bytes());
    key.extend_from_slice(property.as_bytes());
    key
}

fn is_property_series(key: &[u8], thing: &str, property: &str) -> bool {
    key.len() == 5 + thing.len() + property.len()
        && key[0] == b'p'
        && key[1..5] == (thing.len() as u32).to_le_bytes()
        && &key[5..5 + thing.len()] == thing.as_bytes()
        && &key[5 + thing.len()..] == property.as_bytes()
}

/// Writes that land together: after a crash, a batch is in the store entirely or not at all.
///
/// Build one, then hand it to [`Store::submit`](crate::Store::submit) (or
/// [`Store::commit`](crate::Store::commit)). The writer may put several batches waiting at the
/// same time into one transaction (group commit), but never splits one.
///
/// History records are encoded when they are pushed (a compact binary form: strings and
/// numbers are copied, not escaped or formatted), so the caller keeps its records and the
/// writer thread only copies bytes.
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use wot_events::{PropertyUpdate, ResumePoint, StreamKey, Url, serde_json::json};
/// use wot_store::Batch;
///
/// let form = Url::parse("http://192.0.2.1/fridge/properties").unwrap();
/// let mut batch = Batch::new();
/// batch.push_property(&PropertyUpdate {
///     thing_id: "urn:dev:fridge".into(),
///     property: "temperature".into(),
///     value: json!(4.5).into(),
///     timestamp: SystemTime::now(),
///     event_id: Some("17".into()),
///     schema_violation: None,
/// });
/// batch.put_resume_point(&StreamKey::all_properties("urn:dev:fridge", &form), &ResumePoint::new("17"));
/// assert_eq!(batch.len(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Batch {
    pub(crate) ops: Vec<Op>,
    /// Encoded record bodies, back to back.
    pub(crate) history: Vec<u8>,
    pub(crate) records: Vec<RecordRef>,
    /// The series keys the records refer to.
    pub(crate) series: Vec<Vec<u8>>,
    series_index: HashMap<Vec<u8>, u32, foldhash::fast::RandomState>,
    last_series: usize,
    /// Records whose value nests deeper than the codec allows: not stored, counted.
    pub(crate) unencodable: u64,
}

impl Batch {
    /// An empty batch. An empty batch may be submitted: it resolves once everything
    /// submitted before it is durable (a flush).
    pub fn new() -> Self {
        Batch::default()
    }

    /// An empty batch with room for `n` history records.
    pub fn with_capacity(n: usize) -> Self {
        Batch {
            records: Vec::with_capacity(n),
            history: Vec::with_capacity(n * 192),
            ..Batch::default()
        }
    }

    /// Number of operations (history records and keyed writes).
    pub fn len(&self) -> usize {
        self.ops.len() + self.records.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends an event to the history's timeline (encoded now; the record stays the
    /// caller's). A record whose data nests deeper than 128 arrays or objects is not stored
    /// and is counted in [`Stats::dropped_records`](crate::Stats::dropped_records).
    pub fn push_event(&mut self, record: &EventRecord) -> &mut Self {
        let series = match self.series.get(self.last_series) {
            Some(last) if last == EVENTS_SERIES => self.last_series,
            _ => self.series_of(EVENTS_SERIES, || EVENTS_SERIES.to_vec()),
        };
        let ok = codec::encode_event(&mut self.history, record).is_ok();
        self.record(series, ok, codec::millis(record.received_at));
        self
    }

    /// Appends a property value to the property's history (encoded now; the update stays the
    /// caller's). Limits as for [`push_event`](Self::push_event).
    pub fn push_property(&mut self, update: &PropertyUpdate) -> &mut Self {
        let (thing, property) = (&*update.thing_id, &*update.property);
        let series = match self.series.get(self.last_series) {
            Some(last) if is_property_series(last, thing, property) => self.last_series,
            _ => {
                let key = property_series(thing, property);
                self.series_of(&key.clone(), || key)
            }
        };
        let ok = codec::encode_property(&mut self.history, update).is_ok();
        self.record(series, ok, codec::millis(update.timestamp));
        self
    }

    /// Empties the batch, keeping its buffers.
    pub(crate) fn reset(&mut self) {
        self.ops.clear();
        self.history.clear();
        self.records.clear();
        self.series.clear();
        self.series_index.clear();
        self.last_series = 0;
        self.unencodable = 0;
    }

    /// Bytes of buffers the batch holds (for deciding whether to keep it for reuse).
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.history.capacity() + self.records.capacity() * std::mem::size_of::<RecordRef>()
    }

    /// The index of series `key`, added if new; remembered as the last one used, which
    /// runs of records of one series find without hashing.
    fn series_of(&mut self, key: &[u8], owned: impl FnOnce() -> Vec<u8>) -> usize {
        let i = match self.series_index.get(key) {
            Some(&i) => i as usize,
            None => {
                let key = owned();
                self.series_index
                    .insert(key.clone(), self.series.len() as u32);
                self.series.push(key);
                self.series.len() - 1
            }
        };
        self.last_series = i;
        i
    }

    fn record(&mut self, series: usize, encoded: bool, at_ms: u64) {
        if encoded {
            self.records.push(RecordRef {
                series: series as u32,
                end: self.history.len(),
                at_ms,
            });
        } else {
            self.unencodable += 1;
        }
    }

    /// Sets where the stream `key` stands (replacing its previous point).
    pub fn put_resume_point(&mut self, key: &StreamKey, point: &ResumePoint) -> &mut Self {
        self.ops.push(Op::Put {
            table: Table::Resume,
            key: resume_key(key),
            value: serde_json::to_vec(point).unwrap_or_default(),
        });
        self
    }

    /// Forgets the point of the stream `key`: its next stream starts from the server's present.
    pub fn remove_resume_point(&mut self, key: &StreamKey) -> &mut Self {
        self.ops.push(Op::Delete {
            table: Table::Resume,
            key: resume_key(key),
        });
        self
    }

    pub(crate) fn put(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put { table, key, value });
    }

    pub(crate) fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.ops.push(Op::Delete { table, key });
    }

    pub(crate) fn clear(&mut self, table: Table) {
        self.ops.push(Op::Clear(table));
    }
}

/// A stream key as stored: its JSON (fields in declaration order, so equal keys give equal bytes).
pub(crate) fn resume_key(key: &StreamKey) -> Vec<u8> {
    serde_json::to_vec(key).unwrap_or_default()
}
