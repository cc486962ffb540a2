//! Batches: what one caller wants written together.

use wot_events::{EventRecord, PropertyUpdate, ResumePoint, StreamKey};

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
    Event(EventRecord),
    Property(PropertyUpdate),
}

/// Writes that land together: after a crash, a batch is in the store entirely or not at all.
///
/// Build one, then hand it to [`Store::submit`](crate::Store::submit) (or
/// [`Store::commit`](crate::Store::commit)). The writer may put several batches waiting at the
/// same time into one transaction (group commit), but never splits one.
///
/// History records are moved in as they are and encoded by the writer thread, so filling a
/// batch costs the caller little more than the moves.
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
/// batch.push_property(PropertyUpdate {
///     thing_id: "urn:dev:fridge".into(),
///     property: "temperature".into(),
///     value: json!(4.5),
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
}

impl Batch {
    /// An empty batch. An empty batch may be submitted: it resolves once everything
    /// submitted before it is durable (a flush).
    pub fn new() -> Self {
        Batch::default()
    }

    /// An empty batch with room for `n` operations.
    pub fn with_capacity(n: usize) -> Self {
        Batch {
            ops: Vec::with_capacity(n),
        }
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends an event to the history's timeline.
    pub fn push_event(&mut self, record: EventRecord) -> &mut Self {
        self.ops.push(Op::Event(record));
        self
    }

    /// Appends a property value to the property's history.
    pub fn push_property(&mut self, update: PropertyUpdate) -> &mut Self {
        self.ops.push(Op::Property(update));
        self
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
