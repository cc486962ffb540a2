//! The history's encoding: records in blocks.
//!
//! A block holds the records of one series (the events, or one property of one Thing) from
//! one commit, oldest first:
//!
//! ```text
//! block  = count:u32 first_ms:u64 last_ms:u64 record*
//! record = len:u32 body            (len counts body)
//! body   = 1 ts_ns:u64 thing title event opt(event_id) json(data)           an event
//!        | 2 ts_ns:u64 thing property opt(event_id) opt(violation) json(value)  a property value
//! str    = len:u32 utf-8            opt(x) = 0 | 1 x            json = str of JSON text
//! ```
//!
//! Integers are little-endian; times count from the Unix epoch (earlier times are stored as
//! the epoch).

use std::time::{Duration, SystemTime};

use serde_json::Value;
use wot_events::{EventRecord, PropertyUpdate, SharedStr};

/// Bytes of a block's header.
pub(crate) const BLOCK_HEADER: usize = 4 + 8 + 8;

const EVENT: u8 = 1;
const PROPERTY: u8 = 2;

pub(crate) fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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

fn put_json(out: &mut Vec<u8>, value: &Value) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    // Writing a `Value` into a Vec cannot fail: its keys are strings.
    let _ = serde_json::to_writer(&mut *out, value);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Appends one event record (length prefix and body) to `out`.
pub(crate) fn encode_event(out: &mut Vec<u8>, r: &EventRecord) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(EVENT);
    out.extend_from_slice(&nanos(r.received_at).to_le_bytes());
    put_str(out, &r.thing_id);
    put_str(out, &r.thing_title);
    put_str(out, &r.event);
    put_opt(out, r.event_id.as_deref());
    put_json(out, &r.data);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// Appends one property value (length prefix and body) to `out`.
pub(crate) fn encode_property(out: &mut Vec<u8>, u: &PropertyUpdate) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(PROPERTY);
    out.extend_from_slice(&nanos(u.timestamp).to_le_bytes());
    put_str(out, &u.thing_id);
    put_str(out, &u.property);
    put_opt(out, u.event_id.as_deref());
    put_opt(out, u.schema_violation.as_deref());
    put_json(out, &u.value);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// A record read back.
#[derive(Debug)]
pub(crate) enum Record {
    Event(EventRecord),
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

/// The records of a block, oldest first.
pub(crate) fn decode_block(block: &[u8]) -> Result<Vec<Record>, String> {
    let header = read_header(block)?;
    let mut r = Reader(&block[BLOCK_HEADER..]);
    // The count comes from the file: never reserve more than the bytes could hold.
    let mut records = Vec::with_capacity((header.count as usize).min(block.len() / 16));
    for _ in 0..header.count {
        let body = r.bytes()?;
        records.push(decode_record(body)?);
    }
    if !r.0.is_empty() {
        return Err(format!("{} bytes after the last record", r.0.len()));
    }
    Ok(records)
}

fn decode_record(body: &[u8]) -> Result<Record, String> {
    let mut r = Reader(body);
    let kind = r.u8()?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(r.u64()?);
    let thing_id = SharedStr::from(r.str()?);
    let record = match kind {
        EVENT => Record::Event(EventRecord {
            thing_id,
            thing_title: SharedStr::from(r.str()?),
            event: SharedStr::from(r.str()?),
            event_id: r.opt()?.map(SharedStr::from),
            data: r.json()?,
            received_at: at,
        }),
        PROPERTY => Record::Property(PropertyUpdate {
            thing_id,
            property: SharedStr::from(r.str()?),
            event_id: r.opt()?.map(SharedStr::from),
            schema_violation: r.opt()?.map(str::to_owned),
            value: r.json()?,
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

    fn json(&mut self) -> Result<Value, String> {
        serde_json::from_slice(self.bytes()?).map_err(|e| format!("JSON that does not parse: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_block_round_trips() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_800_000_000_123_456_789);
        let event = EventRecord {
            thing_id: "urn:dev:boiler".into(),
            thing_title: "Boiler".into(),
            event: "overheat".into(),
            data: json!({"t": 91.5}),
            event_id: Some("42".into()),
            received_at: t,
        };
        let update = PropertyUpdate {
            thing_id: "urn:dev:boiler".into(),
            property: "temperature".into(),
            value: json!(20.25),
            timestamp: t,
            event_id: None,
            schema_violation: Some("over the maximum".into()),
        };
        let mut block = vec![0; BLOCK_HEADER];
        encode_event(&mut block, &event);
        encode_property(&mut block, &update);
        write_header(&mut block, 2, millis(t), millis(t));
        let records = decode_block(&block).unwrap();
        assert!(matches!(&records[0], Record::Event(e) if *e == event));
        assert!(matches!(&records[1], Record::Property(u) if *u == update));
        for cut in 0..block.len() {
            assert!(decode_block(&block[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_hostile_count_is_an_error_not_an_allocation() {
        let mut block = vec![0; BLOCK_HEADER];
        write_header(&mut block, u32::MAX, 0, 0);
        assert!(decode_block(&block).is_err());
    }
}
