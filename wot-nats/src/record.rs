//! The records published to JetStream, and their JSON schema.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use wot_events::serde_json::{self, Value};
use wot_events::{CloseReason, ConnectionState, EventRecord, PropertyUpdate, SharedStr};

use crate::error::{Error, Repr};
use crate::subject::Subjects;

/// The schema version this crate writes and reads: 1.
pub const SCHEMA_VERSION: u32 = 1;

/// The longest error text a [`LinkState`] carries, in bytes: 1 KiB (longer text is cut).
pub const MAX_ERROR_TEXT: usize = 1024;

/// One record: a property value, an event, or a change of a connection to a Thing.
///
/// # JSON schema, version 1
///
/// Every record is one JSON object. Readers ignore fields they do not know; a change that an
/// older reader would misread gets a new `v`, and [`Record::from_json`] refuses versions it
/// does not know ([`ErrorKind::Version`](crate::ErrorKind::Version)).
///
/// | field | in kinds | JSON type | meaning |
/// |---|---|---|---|
/// | `v` | all | number | the schema version: `1` |
/// | `kind` | all | string | `"property"`, `"event"` or `"connection"` |
/// | `thing_id` | all | string | the Thing's `id` (its title when the TD has none) |
/// | `thing_title` | event | string | the Thing's `title` |
/// | `name` | property, event | string | the property's or event's name |
/// | `value` | property | any | the value |
/// | `data` | event | any | the event's data (`null` when none) |
/// | `event_id` | property, event | string | the SSE event id; absent when the server sent none, or the value came by polling |
/// | `schema_violation` | property | string | absent, or the first way the value breaks the TD's schema |
/// | `received_at` | all | string | when the collector received it (for `connection`: when the state changed), RFC 3339 UTC to the millisecond (`2026-12-07T21:05:00.250Z`) |
/// | `stream` | connection | string | which connection: `event/<name>`, `events`, `property/<name>` or `properties` |
/// | `state` | connection | string | `"connecting"`, `"open"`, `"reconnecting"` or `"closed"` |
/// | `attempt` | connection (reconnecting) | number | failed attempts in a row, from 1 |
/// | `delay_ms` | connection (reconnecting) | number | the wait before the next attempt, in milliseconds |
/// | `reason` | connection (closed) | string | `"requested"`, `"ended_by_server"` or `"failed"` |
/// | `error` | connection (closed, failed) | string | what failed, at most [`MAX_ERROR_TEXT`] bytes |
///
/// ```json
/// {"v":1,"kind":"event","thing_id":"urn:dev:boiler","thing_title":"Boiler","name":"overheat",
///  "data":{"t":131},"event_id":"42","received_at":"2026-12-07T21:05:00.250Z"}
/// ```
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use wot_events::{PropertyUpdate, serde_json::json};
/// use wot_nats::Record;
///
/// let record = Record::Property(PropertyUpdate {
///     thing_id: "urn:dev:boiler".into(),
///     property: "temperature".into(),
///     value: json!(21.5).into(),
///     timestamp: SystemTime::UNIX_EPOCH,
///     event_id: Some("7".into()),
///     schema_violation: None,
/// });
/// let json = record.to_json().unwrap();
/// assert!(json.starts_with(br#"{"v":1,"kind":"property""#));
/// assert_eq!(Record::from_json(&json).unwrap(), record);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A new value of a property.
    Property(PropertyUpdate),
    /// An event.
    Event(EventRecord),
    /// A connection to the Thing changed state.
    Connection(ConnectionChange),
}

/// A connection to a Thing changed state: the record of kind `connection`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionChange {
    /// The Thing's id.
    pub thing_id: SharedStr,
    /// Which connection: `event/<name>`, `events`, `property/<name>` or `properties` (the
    /// affordance of [`wot_events::StreamKey`]).
    pub stream: String,
    /// The new state.
    pub state: LinkState,
    /// When it changed.
    pub at: SystemTime,
}

/// The state of a connection, as published: [`wot_events::ConnectionState`] without the
/// error value (its text instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// The first request is on its way.
    Connecting,
    /// The connection is open, or the last request was answered.
    Open,
    /// Waiting `delay` before attempt `attempt`.
    Reconnecting {
        /// Failed attempts in a row, from 1.
        attempt: u32,
        /// The wait before the next attempt.
        delay: Duration,
    },
    /// The connection ended for good.
    Closed(CloseCause),
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseCause {
    /// The app closed it.
    Requested,
    /// The server told the client to stop.
    EndedByServer,
    /// A terminal error, by its text (at most [`MAX_ERROR_TEXT`] bytes).
    Failed(String),
}

impl From<&ConnectionState> for LinkState {
    fn from(state: &ConnectionState) -> Self {
        match state {
            ConnectionState::Open => LinkState::Open,
            &ConnectionState::Reconnecting { attempt, delay } => {
                LinkState::Reconnecting { attempt, delay }
            }
            ConnectionState::Closed { reason } => LinkState::Closed(match reason {
                CloseReason::EndedByServer => CloseCause::EndedByServer,
                CloseReason::Failed(e) => CloseCause::Failed(cut(e.to_string(), MAX_ERROR_TEXT)),
                // `Requested`, and reasons wot-events may add.
                _ => CloseCause::Requested,
            }),
            // `Connecting`, and states wot-events may add.
            _ => LinkState::Connecting,
        }
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

impl Record {
    /// The Thing's id.
    pub fn thing_id(&self) -> &str {
        match self {
            Record::Property(p) => &p.thing_id,
            Record::Event(e) => &e.thing_id,
            Record::Connection(c) => &c.thing_id,
        }
    }

    /// The SSE event id, if the record has one.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            Record::Property(p) => p.event_id.as_deref(),
            Record::Event(e) => e.event_id.as_deref(),
            Record::Connection(_) => None,
        }
    }

    /// The stream the record came from, as [`wot_events::StreamKey::affordance`] names
    /// streams by affordance: `property/<name>`, `event/<name>`; for a connection change,
    /// its `stream`.
    pub fn stream(&self) -> String {
        match self {
            Record::Property(p) => format!("property/{}", p.property),
            Record::Event(e) => format!("event/{}", e.event),
            Record::Connection(c) => c.stream.clone(),
        }
    }

    /// The subject the record is published on.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::TooLong`](crate::ErrorKind::TooLong) for a Thing id or name over its
    /// limit.
    pub fn subject(&self, subjects: &Subjects) -> Result<String, Error> {
        match self {
            Record::Property(p) => subjects.property(&p.thing_id, &p.property),
            Record::Event(e) => subjects.event(&e.thing_id, &e.event),
            Record::Connection(c) => subjects.connection(&c.thing_id),
        }
    }

    /// The record as JSON of the [schema](Self#json-schema-version-1).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Encode`](crate::ErrorKind::Encode) for a time before 1970 or after 9999.
    pub fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(self).map_err(|e| Error::new(Repr::Encode(e.to_string())))
    }

    /// A record read from JSON of the [schema](Self#json-schema-version-1).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Version`](crate::ErrorKind::Version) for a record of another schema
    /// version (checked before anything else is read), [`ErrorKind::Decode`](crate::ErrorKind::Decode)
    /// for anything else that is not a record of this schema.
    pub fn from_json(bytes: &[u8]) -> Result<Record, Error> {
        #[derive(Deserialize)]
        struct Version {
            v: Option<u64>,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| Error::new(Repr::Decode(e.to_string())))?;
        match version.v {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(Error::new(Repr::Version {
                    found,
                    supported: SCHEMA_VERSION,
                }));
            }
            None => return Err(Error::new(Repr::Decode("no `v` field".into()))),
        }
        serde_json::from_slice(bytes).map_err(|e| Error::new(Repr::Decode(e.to_string())))
    }
}

/// The written form of a record. Generic in the type of values (wot-events' `PropertyUpdate::value`
/// and `EventRecord::data`), serialized as JSON whatever it is.
#[derive(Serialize)]
struct WireOut<'a, V> {
    v: u32,
    kind: &'static str,
    thing_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thing_title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a V>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a V>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_violation: Option<&'a str>,
    #[serde(with = "wot_events::rfc3339")]
    received_at: SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl<'a, V> WireOut<'a, V> {
    fn base(kind: &'static str, thing_id: &'a str, received_at: SystemTime) -> Self {
        WireOut {
            v: SCHEMA_VERSION,
            kind,
            thing_id,
            thing_title: None,
            name: None,
            value: None,
            data: None,
            event_id: None,
            schema_violation: None,
            received_at,
            stream: None,
            state: None,
            attempt: None,
            delay_ms: None,
            reason: None,
            error: None,
        }
    }
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let wire = match self {
            Record::Property(p) => WireOut {
                name: Some(&p.property),
                value: Some(&p.value),
                event_id: p.event_id.as_deref(),
                schema_violation: p.schema_violation.as_deref(),
                ..WireOut::base("property", &p.thing_id, p.timestamp)
            },
            Record::Event(e) => WireOut {
                thing_title: Some(&e.thing_title),
                name: Some(&e.event),
                data: Some(&e.data),
                event_id: e.event_id.as_deref(),
                ..WireOut::base("event", &e.thing_id, e.received_at)
            },
            Record::Connection(c) => return connection_wire(c).serialize(s),
        };
        wire.serialize(s)
    }
}

fn connection_wire(c: &ConnectionChange) -> WireOut<'_, Value> {
    let mut wire = WireOut {
        stream: Some(&c.stream),
        ..WireOut::base("connection", &c.thing_id, c.at)
    };
    match &c.state {
        LinkState::Connecting => wire.state = Some("connecting"),
        LinkState::Open => wire.state = Some("open"),
        LinkState::Reconnecting { attempt, delay } => {
            wire.state = Some("reconnecting");
            wire.attempt = Some(*attempt);
            wire.delay_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        }
        LinkState::Closed(cause) => {
            wire.state = Some("closed");
            wire.reason = Some(match cause {
                CloseCause::Requested => "requested",
                CloseCause::EndedByServer => "ended_by_server",
                CloseCause::Failed(_) => "failed",
            });
            if let CloseCause::Failed(text) = cause {
                wire.error = Some(text);
            }
        }
    }
    wire
}

#[derive(Deserialize)]
struct WireIn<V> {
    v: u64,
    kind: String,
    thing_id: String,
    #[serde(default)]
    thing_title: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<V>,
    #[serde(default)]
    data: Option<V>,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    schema_violation: Option<String>,
    #[serde(with = "wot_events::rfc3339")]
    received_at: SystemTime,
    #[serde(default)]
    stream: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    delay_ms: Option<u64>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Reads a record of [`SCHEMA_VERSION`]; [`Record::from_json`] tells a record of another
/// version from one that does not parse.
impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let w = WireIn::deserialize(d)?;
        if w.v != u64::from(SCHEMA_VERSION) {
            return Err(D::Error::custom(format_args!(
                "record schema version {} (this reader reads {SCHEMA_VERSION})",
                w.v
            )));
        }
        let need = |field: Option<String>, name: &'static str| {
            field.ok_or_else(|| {
                D::Error::custom(format_args!("`{}` record without `{name}`", w.kind))
            })
        };
        match w.kind.as_str() {
            "property" => Ok(Record::Property(PropertyUpdate {
                thing_id: w.thing_id.into(),
                property: need(w.name.clone(), "name")?.into(),
                value: w.value.unwrap_or_default(),
                timestamp: w.received_at,
                event_id: w.event_id.map(SharedStr::from),
                schema_violation: w.schema_violation,
            })),
            "event" => Ok(Record::Event(EventRecord {
                thing_id: w.thing_id.into(),
                thing_title: w.thing_title.unwrap_or_default().into(),
                event: need(w.name.clone(), "name")?.into(),
                data: w.data.unwrap_or_default(),
                event_id: w.event_id.map(SharedStr::from),
                received_at: w.received_at,
            })),
            "connection" => {
                let state = match need(w.state.clone(), "state")?.as_str() {
                    "connecting" => LinkState::Connecting,
                    "open" => LinkState::Open,
                    "reconnecting" => LinkState::Reconnecting {
                        attempt: w.attempt.unwrap_or(1),
                        delay: Duration::from_millis(w.delay_ms.unwrap_or(0)),
                    },
                    "closed" => LinkState::Closed(match w.reason.as_deref() {
                        Some("requested") => CloseCause::Requested,
                        Some("ended_by_server") => CloseCause::EndedByServer,
                        Some("failed") => CloseCause::Failed(w.error.unwrap_or_default()),
                        other => {
                            return Err(D::Error::custom(format_args!(
                                "unknown close reason {other:?}"
                            )));
                        }
                    }),
                    other => {
                        return Err(D::Error::custom(format_args!(
                            "unknown connection state {other:?}"
                        )));
                    }
                };
                Ok(Record::Connection(ConnectionChange {
                    thing_id: w.thing_id.into(),
                    stream: w.stream.unwrap_or_default(),
                    state,
                    at: w.received_at,
                }))
            }
            other => Err(D::Error::custom(format_args!(
                "unknown record kind {other:?}"
            ))),
        }
    }
}

// `.into()` turns JSON into the value type of wot-events' records, whichever it is.
#[allow(clippy::useless_conversion)]
#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use wot_events::serde_json::json;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn samples() -> Vec<Record> {
        let conn = |state| {
            Record::Connection(ConnectionChange {
                thing_id: "t".into(),
                stream: "events".into(),
                state,
                at: at(5),
            })
        };
        vec![
            Record::Property(PropertyUpdate {
                thing_id: "urn:a.b".into(),
                property: "temp".into(),
                value: json!({"c": [1, 2.5, null]}).into(),
                timestamp: at(1_796_677_500_250),
                event_id: None,
                schema_violation: Some("too hot".into()),
            }),
            Record::Event(EventRecord {
                thing_id: "t".into(),
                thing_title: "T".into(),
                event: "overheat".into(),
                data: Value::Null.into(),
                event_id: Some("42".into()),
                received_at: at(9),
            }),
            conn(LinkState::Connecting),
            conn(LinkState::Open),
            conn(LinkState::Reconnecting {
                attempt: 3,
                delay: Duration::from_millis(1500),
            }),
            conn(LinkState::Closed(CloseCause::Requested)),
            conn(LinkState::Closed(CloseCause::EndedByServer)),
            conn(LinkState::Closed(CloseCause::Failed("404".into()))),
        ]
    }

    #[test]
    fn records_round_trip() {
        for record in samples() {
            let json = record.to_json().unwrap();
            assert_eq!(
                Record::from_json(&json).unwrap(),
                record,
                "{}",
                String::from_utf8_lossy(&json)
            );
        }
    }

    #[test]
    fn the_schema_is_as_documented() {
        let json = String::from_utf8(samples()[1].to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"v":1,"kind":"event","thing_id":"t","thing_title":"T","name":"overheat","data":null,"event_id":"42","received_at":"1970-01-01T00:00:00.009Z"}"#
        );
        let json = String::from_utf8(samples()[4].to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"v":1,"kind":"connection","thing_id":"t","received_at":"1970-01-01T00:00:00.005Z","stream":"events","state":"reconnecting","attempt":3,"delay_ms":1500}"#
        );
    }

    #[test]
    fn other_versions_and_garbage_are_typed_errors() {
        let v2 = br#"{"v":2,"kind":"telepathy","thing_id":7}"#;
        assert_eq!(
            Record::from_json(v2).unwrap_err().kind(),
            ErrorKind::Version
        );
        for bad in [
            &b"not json"[..],
            br#"{"kind":"event"}"#,
            br#"{"v":1,"kind":"event","thing_id":"t","received_at":"1970-01-01T00:00:00Z"}"#,
            br#"{"v":1,"kind":"x","thing_id":"t","received_at":"1970-01-01T00:00:00Z"}"#,
            br#"{"v":1,"kind":"connection","thing_id":"t","state":"closed","received_at":"1970-01-01T00:00:00Z"}"#,
            br#"{"v":1,"kind":"property","thing_id":"t","name":"n","received_at":"yesterday"}"#,
            br#"{"v":"1"}"#,
        ] {
            assert_eq!(
                Record::from_json(bad).unwrap_err().kind(),
                ErrorKind::Decode,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // Unknown fields are ignored.
        let extra = br#"{"v":1,"kind":"connection","thing_id":"t","stream":"s","state":"open","received_at":"1970-01-01T00:00:00Z","new":1}"#;
        assert!(Record::from_json(extra).is_ok());
        // A time the schema cannot hold.
        let mut r = samples().remove(1);
        if let Record::Event(e) = &mut r {
            e.received_at = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
        }
        assert_eq!(r.to_json().unwrap_err().kind(), ErrorKind::Encode);
    }

    fn json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            // Quarters: exact in binary, so they read back equal.
            (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 4.0)),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_record_round_trips(
            thing in proptest::prelude::any::<String>(),
            name in proptest::prelude::any::<String>(),
            id in proptest::option::of(proptest::prelude::any::<String>()),
            value in json(),
            ms in 0u64..253_402_300_799_000,
        ) {
            let records = [
                Record::Property(PropertyUpdate {
                    thing_id: thing.as_str().into(),
                    property: name.as_str().into(),
                    value: value.clone().into(),
                    timestamp: at(ms),
                    event_id: id.as_deref().map(Into::into),
                    schema_violation: id.clone(),
                }),
                Record::Event(EventRecord {
                    thing_id: thing.as_str().into(),
                    thing_title: name.as_str().into(),
                    event: name.as_str().into(),
                    data: value.into(),
                    event_id: id.as_deref().map(Into::into),
                    received_at: at(ms),
                }),
            ];
            for record in records {
                let json = record.to_json().unwrap();
                proptest::prop_assert_eq!(Record::from_json(&json).unwrap(), record);
            }
        }

        #[test]
        fn any_bytes_give_a_record_or_an_error(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let _ = Record::from_json(&bytes);
        }
    }

    #[test]
    fn connection_states_map_from_wot_events() {
        assert_eq!(LinkState::from(&ConnectionState::Open), LinkState::Open);
        assert_eq!(
            LinkState::from(&ConnectionState::Closed {
                reason: CloseReason::EndedByServer
            }),
            LinkState::Closed(CloseCause::EndedByServer)
        );
        assert_eq!(cut("ééé".into(), 3), "é");
    }
}
