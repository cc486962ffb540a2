//! Property notifications without I/O: an SSE event in, a schema-checked update out.

use std::collections::HashMap;
use std::time::SystemTime;

use wot_td::{CompiledSchema, Data, ValueError};

use crate::error::{Error, Repr};
use crate::events::truncate;
use crate::record::{PropertyUpdate, SharedStr};
use crate::thing::ConsumedThing;

/// Turns the events of a property observation into [`PropertyUpdate`]s, without I/O: the
/// decoding step of a [`PropertyObserver`](crate::PropertyObserver), for events that arrive
/// some other way (a recorded stream, your own transport, a benchmark).
///
/// For each event it finds the property (the SSE `event` field names it; `message` or an
/// unnamed event is the property of a single-property decoder), parses the data as JSON and
/// checks it against the property's schema, compiled once when the decoder is built. A value
/// outside the schema is delivered with [`PropertyUpdate::schema_violation`] set.
///
/// The Thing id, the property name and the event id of an update are shared
/// ([`SharedStr`]), not copied per event: the name is the decoder's own, and the event id is
/// the parser's (inline when short, shared when long).
///
/// # Examples
///
/// ```
/// use std::time::SystemTime;
/// use wot_events::{ConsumedThing, PropertyDecoder};
///
/// let td = br#"{
///     "@context": "https://www.w3.org/2022/wot/td/v1.1",
///     "id": "urn:dev:fridge", "title": "Fridge",
///     "securityDefinitions": {"none": {"scheme": "nosec"}}, "security": "none",
///     "properties": {"temperature": {"type": "number", "maximum": 30,
///                                    "forms": [{"href": "http://192.0.2.1/t"}]}}
/// }"#;
/// let fridge = ConsumedThing::from_slice(td, None)?;
/// let mut decoder = PropertyDecoder::all_properties(&fridge);
/// let mut parser = wot_sse::parser::Parser::new();
/// parser.feed("event: temperature\ndata: 41\nid: 7\n\n");
/// while let Some(Ok(wot_sse::parser::Item::Event(event))) = parser.next_item() {
///     let update = decoder.decode(&event, SystemTime::now()).expect("a property")?;
///     assert_eq!(update.property, "temperature");
///     assert!(update.schema_violation.is_some()); // above the maximum, flagged
/// }
/// # Ok::<(), wot_events::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PropertyDecoder {
    thing_id: SharedStr,
    /// Each property with its schema (its patterns compiled once), in TD order.
    properties: Vec<Property>,
    /// Where each property is in `properties`, for decoders of many properties.
    index: HashMap<SharedStr, usize>,
    /// The property of the previous event: consecutive events are often about one property,
    /// and comparing a name is cheaper than hashing it.
    last: usize,
    /// The property of unnamed and `message` events, for a single-property decoder.
    single: Option<usize>,
}

/// One property of a [`PropertyDecoder`].
#[derive(Debug, Clone)]
struct Property {
    name: SharedStr,
    schema: Option<CompiledSchema>,
}

impl PropertyDecoder {
    /// A decoder for one property of `thing`, as for an `observeproperty` form: events named
    /// after the property, `message` events and unnamed ones carry its values. `None` when the
    /// Thing has no such property.
    pub fn property(thing: &ConsumedThing, name: &str) -> Option<Self> {
        thing.thing().property(name)?;
        Some(Self::for_names(thing, &[name.to_owned()], true))
    }

    /// A decoder for every property of `thing`, as for an `observeallproperties` form: the
    /// SSE `event` field names the property; events for other names are ignored.
    pub fn all_properties(thing: &ConsumedThing) -> Self {
        let names: Vec<String> = thing
            .thing()
            .properties()
            .map(|(n, _)| n.to_owned())
            .collect();
        Self::for_names(thing, &names, false)
    }

    /// A decoder for `names`; with `single`, unnamed and `message` events are the first one.
    pub(crate) fn for_names(thing: &ConsumedThing, names: &[String], single: bool) -> Self {
        let mut properties: Vec<Property> = Vec::with_capacity(names.len());
        let mut index = HashMap::with_capacity(names.len());
        for n in names {
            if index.contains_key(n.as_str()) {
                continue;
            }
            let name = SharedStr::from(n.as_str());
            index.insert(name.clone(), properties.len());
            properties.push(Property {
                name,
                schema: thing
                    .thing()
                    .property(n)
                    .map(|p| CompiledSchema::new(&p.schema)),
            });
        }
        PropertyDecoder {
            thing_id: thing.shared_id().clone(),
            single: (single && !properties.is_empty()).then_some(0),
            properties,
            index,
            last: 0,
        }
    }

    /// The Thing's id, as every update carries it.
    pub fn thing_id(&self) -> &SharedStr {
        &self.thing_id
    }

    /// Decodes one event received at `now`: `None` when it is not about a property of this
    /// decoder (another name), else the update or the reason its data was refused.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidData`](crate::ErrorKind::InvalidData) when the data is not JSON
    /// (with at most 4 KiB of it). A value that does not fit the schema is not an error: it
    /// is flagged on the update.
    pub fn decode(
        &mut self,
        event: &wot_sse::Event,
        now: SystemTime,
    ) -> Option<Result<PropertyUpdate, Error>> {
        let at = self.find(Some(event.event_type()))?;
        let (value, schema_violation) = match self.parse_at(at, event.data()) {
            Ok(parsed) => parsed,
            Err(e) => return Some(Err(e)),
        };
        let property = self.properties.get(at)?;
        let property = property.name.clone();
        // The parser's id as it is: inline when short, shared when long; no copy.
        let event_id = (!event.id().is_empty()).then(|| SharedStr::from(event.shared_id().clone()));
        Some(Ok(PropertyUpdate {
            thing_id: self.thing_id.clone(),
            property,
            value,
            timestamp: now,
            event_id,
            schema_violation,
        }))
    }

    /// The property an event named `name` is about, as the decoder's shared name.
    pub(crate) fn property_of(&mut self, name: Option<&str>) -> Option<SharedStr> {
        let at = self.find(name)?;
        Some(self.properties.get(at)?.name.clone())
    }

    /// Where the property an event named `name` is about is in `properties`; remembered for
    /// the next event.
    fn find(&mut self, name: Option<&str>) -> Option<usize> {
        let name = match (self.single, name) {
            (Some(single), None | Some("message")) => return Some(single),
            (_, Some(n)) => n,
            _ => return None,
        };
        if self
            .properties
            .get(self.last)
            .is_some_and(|p| p.name.as_str() == name)
        {
            return Some(self.last);
        }
        let at = *self.index.get(name)?;
        self.last = at;
        Some(at)
    }

    /// `data` as JSON with its first schema violation, or an invalid-data error naming the
    /// property.
    pub(crate) fn parse(
        &mut self,
        property: &str,
        data: &str,
    ) -> Result<(Data, Option<String>), Error> {
        match self.find(Some(property)) {
            Some(at) => self.parse_at(at, data),
            None => read(data, None)
                .map(|(d, errors)| (d, first(errors)))
                .map_err(|e| invalid(&self.thing_id, property, data, &e)),
        }
    }

    /// `data` as the JSON value of the property at `at`, checked against its schema.
    fn parse_at(&self, at: usize, data: &str) -> Result<(Data, Option<String>), Error> {
        let (name, schema) = match self.properties.get(at) {
            Some(p) => (p.name.as_str(), p.schema.as_ref()),
            None => ("", None),
        };
        read(data, schema)
            .map(|(d, errors)| (d, first(errors)))
            .map_err(|e| invalid(&self.thing_id, name, data, &e))
    }
}

/// The error for `data` of `property` that is not JSON.
fn invalid(thing: &SharedStr, property: &str, data: &str, e: &serde_json::Error) -> Error {
    Error::from(Repr::InvalidData {
        thing: thing.to_string(),
        what: format!("property `{property}`"),
        reason: format!("not JSON: {e}"),
        raw: truncate(data),
    })
}

/// `data` as JSON, with every violation of `schema` when there is one.
pub(crate) fn read(
    data: &str,
    schema: Option<&CompiledSchema>,
) -> Result<(Data, Vec<ValueError>), serde_json::Error> {
    match schema {
        Some(schema) => Data::parse_with(data, schema),
        None => Data::parse(data).map(|d| (d, Vec::new())),
    }
}

/// The first of `errors`, with its path.
fn first(errors: Vec<ValueError>) -> Option<String> {
    errors.into_iter().next().map(|e| {
        if e.path.is_empty() {
            e.message
        } else {
            format!("{}: {}", e.path, e.message)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wot_sse::Event;

    fn thing() -> ConsumedThing {
        crate::thing::test_thing(json!({"properties": {
            "temp": {"type": "number", "minimum": -40, "maximum": 125,
                     "forms": [{"href": "http://h/temp"}]},
            "mode": {"type": "string", "enum": ["eco", "boost"],
                     "forms": [{"href": "http://h/mode"}]}
        }}))
    }

    #[test]
    fn all_properties_demultiplexes_by_event_type_and_shares_names_and_ids() {
        let t0 = SystemTime::UNIX_EPOCH;
        let mut d = PropertyDecoder::all_properties(&thing());
        let a = d
            .decode(&Event::new("temp", "21", "1"), t0)
            .unwrap()
            .unwrap();
        let b = d
            .decode(&Event::new("temp", "22", "1"), t0)
            .unwrap()
            .unwrap();
        assert_eq!((a.property.as_str(), a.value.value()), ("temp", &json!(21)));
        assert!(a.property.ptr_eq(&b.property));
        assert!(a.thing_id.ptr_eq(&b.thing_id) && a.thing_id == "urn:t");
        let (ida, idb) = (a.event_id.unwrap(), b.event_id.unwrap());
        assert!(ida.ptr_eq(&idb));
        let c = d
            .decode(&Event::new("mode", "\"eco\"", ""), t0)
            .unwrap()
            .unwrap();
        assert_eq!(c.property, "mode");
        assert_eq!(c.event_id, None);
        assert!(d.decode(&Event::new("other", "1", ""), t0).is_none());
        assert!(d.decode(&Event::new("message", "1", ""), t0).is_none());
    }

    #[test]
    fn single_property_takes_message_events_flags_schema_and_refuses_non_json() {
        let t0 = SystemTime::UNIX_EPOCH;
        assert!(PropertyDecoder::property(&thing(), "nope").is_none());
        let mut d = PropertyDecoder::property(&thing(), "temp").unwrap();
        let u = d.decode(&Event::new("", "300", ""), t0).unwrap().unwrap();
        assert_eq!(u.property, "temp");
        assert!(
            u.schema_violation
                .as_deref()
                .is_some_and(|m| m.contains("125")),
            "{u:?}"
        );
        let ok = d
            .decode(&Event::new("temp", "20.5", ""), t0)
            .unwrap()
            .unwrap();
        assert!(ok.schema_violation.is_none());
        assert!(d.decode(&Event::new("mode", "\"eco\"", ""), t0).is_none());
        let e = d
            .decode(&Event::new("temp", "{", ""), t0)
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("property `temp`"), "{e}");
        assert!(!e.is_terminal());
    }
}
