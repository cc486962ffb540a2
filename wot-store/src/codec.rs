//! The history's encoding: records in blocks.
//!
//! A block holds the records of one series (the events, or one property of one Thing) from
//! one commit, oldest first:
//!
//! ```text
//! block  = count:u32 first_ms:u64 last_ms:u64 (len:u32 body)*      len counts body
//! body   = 1 ts_ns:u64 str(thing) str(title) str(event) opt(event_id) value       an event
//!        | 2 ts_ns:u64 str(thing) str(property) opt(event_id) opt(violation) value   a property value
//! str    = len:u32 utf-8                 opt(x) = 0 | 1 x
//! value  = 10 str                       JSON text
//! ```
//!
//! Integers are little-endian; times count from the Unix epoch (earlier times are stored as
//! the epoch). A value is written as its JSON text, which a record's [`Data`] already holds,
//! so copying it is the whole cost on the caller's thread. Values nest at most [`MAX_DEPTH`]
//! deep.

use std::time::{Duration, SystemTime};

use wot_events::{Data, EventRecord, PropertyUpdate, SharedStr};

/// Bytes of a block's header.
pub(crate) const BLOCK_HEADER: usize = 4 + 8 + 8;

/// Deepest nesting of arrays and objects a record's value may have (deeper: not stored).
pub(crate) const MAX_DEPTH: usize = 128;

const EVENT: u8 = 1;
const PROPERTY: u8 = 2;
/// The tag of a value written as JSON text.
const JSON_TEXT: u8 = 10;

/// A value nested deeper than [`MAX_DEPTH`].
#[derive(Debug)]
pub(crate) struct TooDeep;

pub(crate) fn nanos(t: SystemTime) -> u64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos())),
        Err(_) => 0,
    }
}

pub(crate) fn millis(t: SystemTime) -> u64 {
    nanos(t) / 1_000_000
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// Writes `data` as its JSON text; `TooDeep` (and nothing written) when it nests
/// [`MAX_DEPTH`] levels or more, which reading it back would refuse.
fn put_data(out: &mut Vec<u8>, data: &Data) -> Result<(), TooDeep> {
    let text = data.as_text();
    // serde_json reads at most `MAX_DEPTH - 1` levels, and that many take that many bytes.
    if text.len() >= MAX_DEPTH && nesting(text) >= MAX_DEPTH {
        return Err(TooDeep);
    }
    out.push(JSON_TEXT);
    put_str(out, text);
    Ok(())
}

/// How deep arrays and objects nest in JSON `text`.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Appends the body of an event record to `out`; on error `out` is as it was.
pub(crate) fn encode_event(out: &mut Vec<u8>, r: &EventRecord) -> Result<(), TooDeep> {
    let at = out.len();
    out.reserve(128);
    out.push(EVENT);
    out.extend_from_slice(&nanos(r.received_at).to_le_bytes());
    put_str(out, &r.thing_id);
    put_str(out, &r.thing_title);
    put_str(out, &r.event);
    put_opt(out, r.event_id.as_deref());
    put_data(out, &r.data).inspect_err(|_| out.truncate(at))
}

/// Appends the body of a property value to `out`; on error `out` is as it was.
pub(crate) fn encode_property(out: &mut Vec<u8>, u: &PropertyUpdate) -> Result<(), TooDeep> {
    let at = out.len();
    out.reserve(128);
    out.push(PROPERTY);
    out.extend_from_slice(&nanos(u.timestamp).to_le_bytes());
    put_str(out, &u.thing_id);
    put_str(out, &u.property);
    put_opt(out, u.event_id.as_deref());
    put_opt(out, u.schema_violation.as_deref());
    put_data(out, &u.value).inspect_err(|_| out.truncate(at))
}

/// One history record read back from the store: an event of the timeline or a property
/// value (see [`Store::history_since`](crate::Store::history_since)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HistoryRecord {
    /// An event, as given to [`Batch::push_event`](crate::Batch::push_event).
    Event(EventRecord),
    /// A property value, as given to [`Batch::push_property`](crate::Batch::push_property).
    Property(PropertyUpdate),
}

/// A block's header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockHeader {
    pub(crate) count: u32,
    pub(crate) last_ms: u64,
}

pub(crate) fn write_header(block: &mut [u8], count: u32, first_ms: u64, last_ms: u64) {
    block[0..4].copy_from_slice(&count.to_le_bytes());
    block[4..12].copy_from_slice(&first_ms.to_le_bytes());
    block[12..20].copy_from_slice(&last_ms.to_le_bytes());
}

pub(crate) fn read_header(block: &[u8]) -> Result<BlockHeader, String> {
    let mut r = Reader(block);
    let count = r.u32()?;
    let _first = r.u64()?;
    let last_ms = r.u64()?;
    Ok(BlockHeader { count, last_ms })
}

/// The records of a block, oldest first. A record body longer than `max_record` bytes is an
/// error: the writer never stores one.
pub(crate) fn decode_block(block: &[u8], max_record: u64) -> Result<Vec<HistoryRecord>, String> {
    let header = read_header(block)?;
    let mut r = Reader(&block[BLOCK_HEADER..]);
    // The count comes from the file: never reserve more than the bytes could hold.
    let mut records = Vec::with_capacity((header.count as usize).min(block.len() / 16));
    for _ in 0..header.count {
        let body = r.bytes()?;
        if body.len() as u64 > max_record {
            return Err(format!(
                "a record of {} bytes, over the limit of {max_record}",
                body.len()
            ));
        }
        records.push(decode_record(body)?);
    }
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the last record", r.0.len()));
    }
    Ok(records)
}

fn decode_record(body: &[u8]) -> Result<HistoryRecord, String> {
    let mut r = Reader(body);
    let kind = r.u8()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(r.u64()?);
    let thing_id = SharedStr::from(r.str()?);
    let record = match kind {
        EVENT => HistoryRecord::Event(EventRecord {
            thing_id,
            thing_title: SharedStr::from(r.str()?),
            event: SharedStr::from(r.str()?),
            event_id: r.opt()?.map(SharedStr::from),
            data: r.data()?,
            received_at: at,
        }),
        PROPERTY => HistoryRecord::Property(PropertyUpdate {
            thing_id,
            property: SharedStr::from(r.str()?),
            event_id: r.opt()?.map(SharedStr::from),
            schema_violation: r.opt()?.map(str::to_owned),
            value: r.data()?,
            timestamp: at,
        }),
        other => return Err(format!("unknown record kind {other}")),
    };
    if !r.0.is_empty() {
        return Err("bytes after a record's fields".into());
    }
    Ok(record)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "a field of {n} bytes where {} are left",
                self.0.len()
            ));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?).map_err(|e| format!("text that is not UTF-8: {e}"))
    }

    fn opt(&mut self) -> Result<Option<&'a str>, String> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            other => Err(format!("an option tag {other}")),
        }
    }

    /// A record's value.
    fn data(&mut self) -> Result<Data, String> {
        match self.u8()? {
            JSON_TEXT => {
                Data::parse(self.str()?).map_err(|e| format!("a value that is not JSON: {e}"))
            }
            other => Err(format!("unknown value tag {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Number, Value, json};

    #[test]
    fn a_block_round_trips() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_800_000_000_123_456_789);
        let event = EventRecord {
            thing_id: "urn:dev:boiler".into(),
            thing_title: "Boiler".into(),
            event: "overheat".into(),
            data: json!({"t": 91.5, "n": -3, "big": u64::MAX, "s": "é\"", "a": [null, true, false, []], "o": {}}).into(),
            event_id: Some("42".into()),
            received_at: t,
        };
        let update = PropertyUpdate {
            thing_id: "urn:dev:boiler".into(),
            property: "temperature".into(),
            value: json!(20.25).into(),
            timestamp: t,
            event_id: None,
            schema_violation: Some("over the maximum".into()),
        };
        let mut block = vec![0; BLOCK_HEADER];
        for encode in [
            &|out: &mut Vec<u8>| encode_event(out, &event) as Result<(), TooDeep>,
            &|out: &mut Vec<u8>| encode_property(out, &update),
        ] as [&dyn Fn(&mut Vec<u8>) -> Result<(), TooDeep>; 2]
        {
            let mut body = Vec::new();
            encode(&mut body).unwrap();
            block.extend_from_slice(&(body.len() as u32).to_le_bytes());
            block.extend_from_slice(&body);
        }
        write_header(&mut block, 2, millis(t), millis(t));
        let records = decode_block(&block, u64::MAX).unwrap();
        assert!(matches!(&records[0], HistoryRecord::Event(e) if *e == event));
        assert!(matches!(&records[1], HistoryRecord::Property(u) if *u == update));
        for cut in 0..block.len() {
            assert!(
                decode_block(&block[..cut], u64::MAX).is_err(),
                "cut at {cut}"
            );
        }
    }

    /// `levels` arrays, one inside the other.
    fn nested(levels: usize) -> Value {
        (1..levels).fold(json!([]), |inner, _| json!([inner]))
    }

    #[test]
    fn values_nested_too_deep_are_refused_and_leave_the_buffer_as_it_was() {
        let mut deep = json!(1);
        for _ in 0..MAX_DEPTH + 1 {
            deep = json!([deep]);
        }
        let mut event = EventRecord {
            thing_id: "t".into(),
            thing_title: "t".into(),
            event: "e".into(),
            data: deep.into(),
            event_id: None,
            received_at: SystemTime::UNIX_EPOCH,
        };
        let mut out = vec![7];
        assert!(encode_event(&mut out, &event).is_err());
        assert_eq!(out, [7]);
        // The deepest value serde_json reads back is written; one level more is not.
        for (levels, written) in [(MAX_DEPTH - 1, true), (MAX_DEPTH, false)] {
            event.data = Data::from(nested(levels));
            let mut body = Vec::new();
            assert_eq!(encode_event(&mut body, &event).is_ok(), written, "{levels}");
            if written {
                let mut block = vec![0; BLOCK_HEADER];
                block.extend_from_slice(&(body.len() as u32).to_le_bytes());
                block.extend_from_slice(&body);
                write_header(&mut block, 1, 0, 0);
                assert!(decode_block(&block, u64::MAX).is_ok(), "{levels} read back");
            }
        }
        event.data = json!([[1]]).into();
        assert!(encode_event(&mut out, &event).is_ok());
    }

    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter_map("finite", Number::from_f64)
                .prop_map(Value::Number),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((".{0,8}", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_json_value_round_trips(value in any_value(), nanos in 0u64..u64::MAX / 2) {
            let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos);
            let update = PropertyUpdate {
                thing_id: "t".into(),
                property: "p".into(),
                value: value.into(),
                timestamp: at,
                event_id: Some("1".into()),
                schema_violation: None,
            };
            let mut body = Vec::new();
            encode_property(&mut body, &update).unwrap();
            let mut block = vec![0; BLOCK_HEADER];
            block.extend_from_slice(&(body.len() as u32).to_le_bytes());
            block.extend_from_slice(&body);
            write_header(&mut block, 1, millis(at), millis(at));
            let records = decode_block(&block, u64::MAX).unwrap();
            proptest::prop_assert!(matches!(&records[..], [HistoryRecord::Property(u)] if *u == update));
        }

        #[test]
        fn any_bytes_decode_to_records_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = decode_block(&bytes, u64::MAX);
        }
    }

    #[test]
    fn a_hostile_count_is_an_error_not_an_allocation() {
        let mut block = vec![0; BLOCK_HEADER];
        write_header(&mut block, u32::MAX, 0, 0);
        assert!(decode_block(&block, u64::MAX).is_err());
    }
}
