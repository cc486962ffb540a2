//! What the page needs, kept on the server: the Things with their connection states and
//! property histories, the event timeline and its statistics, the alerts, the rules and the
//! notices. Plain data, changed by the run loop and the action handlers; each change returns
//! the JSON the live stream sends for it (the shapes are in `docs/dashboard.md`, "The API").
//!
//! Every part a Thing controls is bounded by [`WebLimits`]: values and event data are cut
//! ([`shrink`]), histories hold at most a window and a number of values, the timeline a
//! number of events and bytes, the notices and alert lists a count, texts a length.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use wot_alerts::{Alert, AlertManager, Condition, Notification, NotificationKind, RuleSet};
use wot_alerts::{Compare, Scalar, SilenceId};
use wot_events::{
    CloseReason, ConnectionState, ConsumedThing, EventLog, EventRecord, PropertyUpdate,
};
use wot_td::Thing;

use super::WebLimits;
use crate::history::{Samples, cost, shrink};

/// Chart windows the page offers, in seconds; the server keeps history for the longest.
pub const WINDOWS_S: [u64; 3] = [60, 300, 900];
/// Things shown in the statistics' "busiest" list.
const BUSIEST: usize = 5;

/// Milliseconds since the Unix epoch (0 before it).
pub fn ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `text` cut to at most `max` characters, with `…` at the end when cut. Unlike
/// [`sanitize::clip`](crate::sanitize::clip) it escapes nothing: JSON carries the text as it
/// is and the page inserts it as text.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            format!("{}…", &text[..end])
        }
    }
}

/// One property of a Thing.
#[derive(Debug)]
struct Property {
    name: String,
    /// The fixed part of its JSON: name, title, unit, type, minimum, maximum.
    info: Map<String, Value>,
    latest: Option<(SystemTime, Value)>,
    samples: Samples,
}

/// One Thing.
#[derive(Debug)]
struct ThingState {
    id: String,
    title: String,
    /// Connection states by label, in the order they were first seen.
    links: Vec<(String, Value)>,
    properties: Vec<Property>,
    by_name: HashMap<String, usize>,
    events: Vec<String>,
}

impl ThingState {
    /// The Thing of `thing`'s TD; its display texts (titles, units) cut to `text_chars`.
    fn from_td(thing: &Thing, capacity: usize, text_chars: usize) -> Self {
        let properties: Vec<Property> = thing
            .properties()
            .filter(|(_, p)| !p.schema.is_write_only())
            .map(|(name, p)| {
                let range = p.schema.numeric_range();
                let number = |n: Option<f64>| n.map_or(Value::Null, |n| json!(n));
                let mut info = Map::new();
                info.insert("name".into(), json!(name));
                let title = p.title_in("en").unwrap_or(name);
                info.insert("title".into(), json!(clip(title, text_chars)));
                let unit = p.unit().map(|u| clip(u, text_chars));
                info.insert("unit".into(), json!(unit));
                info.insert("type".into(), json!(p.schema.data_type.map(|t| t.as_str())));
                info.insert("minimum".into(), number(range.as_ref().and_then(|r| r.min)));
                info.insert("maximum".into(), number(range.as_ref().and_then(|r| r.max)));
                Property {
                    name: name.to_owned(),
                    info,
                    latest: None,
                    samples: Samples::new(capacity),
                }
            })
            .collect();
        ThingState {
            id: thing.id.clone().unwrap_or_else(|| thing.title.clone()),
            title: clip(thing.title_in("en"), text_chars),
            links: Vec::new(),
            by_name: properties
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), i))
                .collect(),
            properties,
            events: thing.events().map(|(name, _)| name.to_owned()).collect(),
        }
    }
}

/// The state behind the page.
#[derive(Debug)]
pub struct Model {
    limits: WebLimits,
    things: Vec<ThingState>,
    by_id: HashMap<String, usize>,
    /// The timeline: `EventItem` JSON with its cost, oldest first.
    events: VecDeque<(Value, usize)>,
    events_bytes: usize,
    /// The `seq` of the next event.
    next_seq: u64,
    /// Statistics over every event (it keeps no records itself).
    log: EventLog,
    rules: Vec<Value>,
    rule_warnings: Vec<String>,
    notices: VecDeque<Value>,
    /// The alert lists as last published.
    alerts: Value,
    /// The statistics as last published.
    stats: Value,
    /// Numbers of the silences, as the page sees them.
    silence_numbers: BTreeMap<SilenceId, u64>,
    next_silence: u64,
    /// What was restored from the state directory at start (`null` without one).
    restored: Value,
}

impl Model {
    /// The state for these Things and rules, with no values yet.
    pub fn new(
        things: &[ConsumedThing],
        rules: &RuleSet,
        rule_warnings: Vec<String>,
        limits: WebLimits,
    ) -> Self {
        let properties: usize = things.iter().map(|t| t.thing().properties().count()).sum();
        // The byte budget is shared among all properties.
        let capacity = (limits.history_bytes / Samples::VALUE_BYTES / properties.max(1))
            .min(limits.history_values);
        let things: Vec<ThingState> = things
            .iter()
            .map(|t| ThingState::from_td(t.thing(), capacity, limits.text_chars))
            .collect();
        Model {
            by_id: things
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id.clone(), i))
                .collect(),
            things,
            events: VecDeque::new(),
            events_bytes: 0,
            next_seq: 1,
            log: EventLog::with_capacity(0),
            rules: rules.rules().iter().map(rule_json).collect(),
            rule_warnings: rule_warnings
                .iter()
                .map(|w| clip(w, limits.text_chars))
                .collect(),
            notices: VecDeque::new(),
            alerts: json!({"active": [], "resolved": [], "silences": []}),
            stats: Value::Null,
            silence_numbers: BTreeMap::new(),
            next_silence: 1,
            restored: Value::Null,
            limits,
        }
    }

    /// Sets what was restored from the state directory, shown in the snapshot's `restored`.
    pub fn set_restored(&mut self, restored: Value) {
        self.restored = restored;
    }

    /// Records a property value; returns the `property` event's data, or `None` for a
    /// property that is not in the TDs.
    pub fn property(&mut self, update: &PropertyUpdate) -> Option<Value> {
        let thing = self.things.get_mut(*self.by_id.get(&*update.thing_id)?)?;
        let property = thing
            .properties
            .get_mut(*thing.by_name.get(&*update.property)?)?;
        let value = shrink(update.value.value().clone(), self.limits.value_bytes);
        if let Some(number) = value.as_f64() {
            property.samples.push(update.timestamp, number);
        }
        property.latest = Some((update.timestamp, value.clone()));
        Some(json!({
            "thing": thing.id,
            "property": property.name,
            "value": value,
            "at": ms(update.timestamp),
        }))
    }

    /// Records an event; returns its `EventItem`, whose `seq` is one more than the previous
    /// event's (from 1 in each run), so that a page sees whether its timeline has a gap.
    pub fn event(&mut self, record: &EventRecord) -> Value {
        let seq = self.next_seq;
        self.next_seq += 1;
        let data = shrink(record.data.value().clone(), self.limits.entry_bytes);
        let severity = ["severity", "level"]
            .iter()
            .filter_map(|key| data.get(key)?.as_str())
            .find(|s| matches!(*s, "info" | "warning" | "critical"))
            .map(str::to_owned);
        let item = json!({
            "seq": seq,
            "thing": &*record.thing_id,
            "thing_title": clip(&record.thing_title, self.limits.text_chars),
            "event": &*record.event,
            "severity": severity,
            "data": data,
            "event_id": record.event_id.as_deref(),
            "at": ms(record.received_at),
        });
        // Statistics count every event; the log keeps none of their data.
        self.log.push(EventRecord {
            data: Value::Null.into(),
            ..record.clone()
        });
        let bytes = cost(&item, usize::MAX);
        self.events.push_back((item.clone(), bytes));
        self.events_bytes = self.events_bytes.saturating_add(bytes);
        while self.events.len() > self.limits.timeline
            || (self.events_bytes > self.limits.timeline_bytes && self.events.len() > 1)
        {
            if let Some((_, gone)) = self.events.pop_front() {
                self.events_bytes = self.events_bytes.saturating_sub(gone);
            }
        }
        item
    }

    /// Records the state of a connection; returns the `link` event's data when it changed.
    pub fn link(&mut self, thing: &str, label: &str, state: &ConnectionState) -> Option<Value> {
        let link = link_json(label, state, self.limits.text_chars);
        let thing_state = self.things.get_mut(*self.by_id.get(thing)?)?;
        match thing_state.links.iter_mut().find(|(l, _)| l == label) {
            Some((_, old)) if *old == link => return None,
            Some((_, old)) => *old = link.clone(),
            None => thing_state.links.push((label.to_owned(), link.clone())),
        }
        let mut data = link;
        if let Value::Object(map) = &mut data {
            map.insert("thing".into(), json!(thing));
        }
        Some(data)
    }

    /// Adds a notice; returns it.
    pub fn notice(&mut self, at: SystemTime, kind: &str, text: &str) -> Value {
        let notice = json!({
            "at": ms(at),
            "kind": kind,
            "text": clip(text, self.limits.text_chars),
        });
        self.notices.push_back(notice.clone());
        while self.notices.len() > self.limits.notices {
            self.notices.pop_front();
        }
        notice
    }

    /// The notice for an alert notification: `(kind, text)`.
    pub fn notification_notice(notification: &Notification) -> (&'static str, String) {
        let alert = &notification.alert;
        let text = format!(
            "{} ({} on {}): {}",
            notification.kind.as_str().replace('_', " "),
            alert.rule,
            alert.thing,
            alert.summary
        );
        let kind = match notification.kind {
            NotificationKind::Fired => "fired",
            NotificationKind::Resolved => "resolved",
            NotificationKind::Acknowledged => "acknowledged",
            _ => "info",
        };
        (kind, text)
    }

    /// The number the page knows silence `id` by.
    pub fn silence_number(&mut self, id: SilenceId) -> u64 {
        let next = &mut self.next_silence;
        *self.silence_numbers.entry(id).or_insert_with(|| {
            let n = *next;
            *next += 1;
            n
        })
    }

    /// Removes the silences of `manager` that have ended at `now`; returns how many are
    /// still in force.
    pub fn prune_silences(&mut self, manager: &AlertManager, now: SystemTime) -> usize {
        let mut left = 0;
        for (id, silence) in manager.silences() {
            if silence.ends_at <= now {
                manager.remove_silence(id);
                self.silence_numbers.remove(&id);
            } else {
                left += 1;
            }
        }
        left
    }

    /// Reads the alert lists from `manager`; returns them when they changed since the last
    /// call.
    pub fn refresh_alerts(&mut self, manager: &AlertManager) -> Option<Value> {
        let now = manager.now();
        self.prune_silences(manager, now);
        let silences = manager.silences();
        let silenced = |alert: &Alert| silences.iter().any(|(_, s)| s.matches(alert, now));
        let active: Vec<Value> = manager
            .active_alerts()
            .iter()
            .take(self.limits.alerts)
            .map(|a| alert_json(a, silenced(a), &self.limits))
            .collect();
        let history = manager.history();
        let skip = history.len().saturating_sub(self.limits.resolved);
        let resolved: Vec<Value> = history
            .iter()
            .skip(skip)
            .map(|a| alert_json(a, silenced(a), &self.limits))
            .collect();
        let silence_list: Vec<Value> = silences
            .iter()
            .map(|(id, s)| {
                json!({
                    "id": self.silence_number(*id),
                    "rule": s.rule,
                    "thing": s.thing,
                    "ends_at": ms(s.ends_at),
                    "comment": s.comment.as_deref().map(|c| clip(c, self.limits.text_chars)),
                })
            })
            .collect();
        let alerts = json!({"active": active, "resolved": resolved, "silences": silence_list});
        if alerts == self.alerts {
            return None;
        }
        self.alerts = alerts.clone();
        Some(alerts)
    }

    /// The statistics at `now`; returned when they changed since the last call.
    pub fn refresh_stats(&mut self, now: SystemTime) -> Option<Value> {
        let stats = self.stats_json(now);
        if stats == self.stats {
            return None;
        }
        self.stats = stats.clone();
        Some(stats)
    }

    fn stats_json(&self, now: SystemTime) -> Value {
        let stats = self.log.stats(now);
        let mut busiest: Vec<(&String, &u64)> = stats.per_thing.iter().collect();
        busiest.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        busiest.truncate(BUSIEST);
        json!({
            "total": stats.total,
            "per_event": stats.per_event,
            "per_thing": stats.per_thing,
            "rate_per_min": (stats.events_per_minute * 10.0).round() / 10.0,
            "busiest": busiest,
        })
    }

    /// The whole state at `now`, as of live change `last_id`.
    pub fn snapshot(&self, now: SystemTime, last_id: u64) -> Value {
        let window = Duration::from_secs(WINDOWS_S[WINDOWS_S.len() - 1]).min(self.limits.history);
        let things: Vec<Value> = self
            .things
            .iter()
            .map(|t| {
                let properties: Vec<Value> = t
                    .properties
                    .iter()
                    .map(|p| {
                        let mut out = p.info.clone();
                        out.insert(
                            "latest".into(),
                            p.latest
                                .as_ref()
                                .map_or(Value::Null, |(at, v)| json!({"value": v, "at": ms(*at)})),
                        );
                        let history: Vec<(u64, f64)> = p
                            .samples
                            .within(window, now)
                            .map(|(at, v)| (ms(at), v))
                            .collect();
                        out.insert("history".into(), json!(history));
                        Value::Object(out)
                    })
                    .collect();
                json!({
                    "id": t.id,
                    "title": t.title,
                    "links": t.links.iter().map(|(_, l)| l).collect::<Vec<_>>(),
                    "properties": properties,
                    "events": t.events,
                })
            })
            .collect();
        json!({
            "version": 1,
            "last_id": last_id,
            "now": ms(now),
            "windows_s": WINDOWS_S,
            "things": things,
            "events": self.events.iter().map(|(e, _)| e).collect::<Vec<_>>(),
            "stats": self.stats_json(now),
            "alerts": self.alerts,
            "rules": self.rules,
            "rule_warnings": self.rule_warnings,
            "notices": self.notices,
            "restored": self.restored,
        })
    }
}

/// A connection's state as the page shows it.
fn link_json(label: &str, state: &ConnectionState, text_chars: usize) -> Value {
    match state {
        ConnectionState::Connecting => json!({"label": label, "state": "connecting"}),
        ConnectionState::Open => json!({"label": label, "state": "open"}),
        ConnectionState::Reconnecting { attempt, delay } => json!({
            "label": label,
            "state": "reconnecting",
            "attempt": attempt,
            "next_delay_ms": u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        }),
        ConnectionState::Closed { reason } => {
            let reason = match reason {
                CloseReason::Requested => "closed".to_owned(),
                CloseReason::EndedByServer => "ended by the server (204)".to_owned(),
                CloseReason::Failed(error) => clip(&error.to_string(), text_chars),
                _ => "closed".to_owned(),
            };
            json!({"label": label, "state": "closed", "reason": reason})
        }
        // `ConnectionState` is non-exhaustive: a state this page does not know yet.
        _ => json!({"label": label, "state": "connecting"}),
    }
}

fn alert_json(alert: &Alert, silenced: bool, limits: &WebLimits) -> Value {
    json!({
        "rule": alert.rule,
        "thing": alert.thing,
        "property": alert.property,
        "state": alert.state.as_str(),
        "severity": alert.severity.as_str(),
        "summary": clip(&alert.summary, limits.text_chars),
        "value": alert.value.clone().map(|v| shrink(v, limits.value_bytes)),
        "active_since": ms(alert.active_since),
        "fired_at": alert.fired_at.map(ms),
        "resolved_at": alert.resolved_at.map(ms),
        "acknowledged": alert.acknowledgement.as_ref().map(|a| json!({
            "by": clip(&a.by, limits.text_chars),
            "at": ms(a.at),
            "comment": a.comment.as_deref().map(|c| clip(c, limits.text_chars)),
        })),
        "silenced": silenced,
    })
}

fn rule_json(rule: &wot_alerts::Rule) -> Value {
    json!({
        "id": rule.id,
        "thing": rule.thing,
        "property": rule.property,
        "severity": rule.severity.as_str(),
        "condition": condition_text(&rule.condition),
        "for_s": rule.hold_for.as_secs_f64(),
    })
}

/// A rule's condition as people write it: `value > 8`, `no data for 15s`...
pub fn condition_text(condition: &Condition) -> String {
    let scalar = |s: &Scalar| match s {
        Scalar::Number(n) => n.to_string(),
        Scalar::String(s) => format!("{s:?}"),
        Scalar::Bool(b) => b.to_string(),
    };
    let op = |c: Compare| match c {
        Compare::Gt => ">",
        Compare::Ge => ">=",
        Compare::Lt => "<",
        Compare::Le => "<=",
    };
    match condition {
        Condition::Gt(x) => format!("value > {x}"),
        Condition::Ge(x) => format!("value >= {x}"),
        Condition::Lt(x) => format!("value < {x}"),
        Condition::Le(x) => format!("value <= {x}"),
        Condition::Eq(s) => format!("value == {}", scalar(s)),
        Condition::Ne(s) => format!("value != {}", scalar(s)),
        Condition::Between([lo, hi]) => format!("{lo} <= value <= {hi}"),
        Condition::Outside([lo, hi]) => format!("value < {lo} or value > {hi}"),
        Condition::Matches(p) => format!("value matches /{}/", p.as_str()),
        Condition::Changed(_) => "value changed".to_owned(),
        Condition::Rate(r) => format!(
            "rate {} {} per {}",
            op(r.compare),
            r.threshold,
            humantime::format_duration(r.per)
        ),
        Condition::NoData(d) => format!("no data for {}", humantime::format_duration(*d)),
        _ => "(a condition this page does not know)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use wot_alerts::Format;
    use wot_events::SharedStr;

    use super::*;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    fn consumed(td: Value) -> ConsumedThing {
        ConsumedThing::from_slice(td.to_string().as_bytes(), None).expect("a valid TD")
    }

    fn fridge() -> ConsumedThing {
        consumed(json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "id": "urn:t:1",
            "title": "<script>alert(1)</script>",
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
            "security": "nosec_sc",
            "properties": {
                "temperature": {"type": "number", "minimum": -30, "maximum": 10, "unit": "°C",
                    "forms": [{"href": "http://x/t", "op": ["readproperty", "observeproperty"], "subprotocol": "sse"}]},
                "label": {"type": "string",
                    "forms": [{"href": "http://x/l", "op": ["readproperty"]}]}
            },
            "events": {"doorOpened": {"forms": [{"href": "http://x/e", "subprotocol": "sse"}]}}
        }))
    }

    fn limits() -> WebLimits {
        WebLimits::DEFAULT
    }

    fn update(property: &str, value: Value, s: u64) -> PropertyUpdate {
        PropertyUpdate {
            thing_id: SharedStr::from("urn:t:1"),
            property: SharedStr::from(property),
            value: value.into(),
            timestamp: at(s),
            event_id: None,
            schema_violation: None,
        }
    }

    fn record(data: Value, s: u64) -> EventRecord {
        EventRecord {
            thing_id: "urn:t:1".into(),
            thing_title: "Fridge".into(),
            event: "doorOpened".into(),
            data: data.into(),
            event_id: Some("42".into()),
            received_at: at(s),
        }
    }

    #[test]
    fn long_titles_and_units_from_a_td_are_cut() {
        let long = "T\n\r".repeat(10_000);
        let thing = consumed(json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "id": "urn:t:1",
            "title": long,
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
            "security": "nosec_sc",
            "properties": {
                "temperature": {"type": "number", "title": long, "unit": long,
                    "forms": [{"href": "http://x/t", "op": ["readproperty"]}]}
            }
        }));
        let mut model = Model::new(&[thing], &RuleSet::new(), Vec::new(), limits());
        let item = model.event(&EventRecord {
            thing_title: long.as_str().into(),
            ..record(json!(null), 0)
        });
        let snap = model.snapshot(at(0), 0);
        let texts = [
            &snap["things"][0]["title"],
            &snap["things"][0]["properties"][0]["title"],
            &snap["things"][0]["properties"][0]["unit"],
            &item["thing_title"],
        ];
        for text in texts {
            let text = text.as_str().expect("a string");
            assert_eq!(text.chars().count(), 512);
            assert!(text.starts_with("T\n\r") && text.ends_with('…'));
        }
    }

    #[test]
    fn the_snapshot_describes_the_things_from_their_tds() {
        let model = Model::new(&[fridge()], &RuleSet::new(), vec!["w".into()], limits());
        let snap = model.snapshot(at(0), 99);
        assert_eq!(snap["version"], 1);
        assert_eq!(snap["last_id"], 99);
        assert_eq!(snap["windows_s"], json!([60, 300, 900]));
        let thing = &snap["things"][0];
        // Remote text is data, as it came.
        assert_eq!(thing["title"], "<script>alert(1)</script>");
        assert_eq!(thing["events"], json!(["doorOpened"]));
        let t = &thing["properties"][0];
        assert_eq!(
            (
                &t["name"],
                &t["unit"],
                &t["type"],
                &t["minimum"],
                &t["maximum"]
            ),
            (
                &json!("temperature"),
                &json!("°C"),
                &json!("number"),
                &json!(-30.0),
                &json!(10.0)
            )
        );
        assert_eq!((&t["latest"], &t["history"]), (&Value::Null, &json!([])));
        assert_eq!(thing["properties"][1]["minimum"], Value::Null);
        assert_eq!(snap["rule_warnings"], json!(["w"]));
        assert_eq!(snap["alerts"]["active"], json!([]));
    }

    #[test]
    fn property_values_keep_a_bounded_history_within_the_window() {
        let mut model = Model::new(
            &[fridge()],
            &RuleSet::new(),
            Vec::new(),
            WebLimits {
                history_values: 100,
                ..limits()
            },
        );
        for s in 0..1000 {
            let data = model
                .property(&update("temperature", json!(s), s))
                .expect("known");
            assert_eq!(data["at"], ms(at(s)));
        }
        assert_eq!(model.property(&update("nope", json!(1), 5)), None);
        let big = model
            .property(&update("label", json!("x".repeat(100_000)), 1000))
            .expect("known");
        assert!(big["value"].as_str().is_some_and(|s| s.len() < 5000));
        let snap = model.snapshot(at(1000), 0);
        let t = &snap["things"][0]["properties"][0];
        let history = t["history"].as_array().expect("array");
        assert_eq!(history.len(), 100);
        assert_eq!(history[99], json!([ms(at(999)), 999.0]));
        assert_eq!(t["latest"]["value"], 999);
        // Only the last 15 minutes.
        let later = model.snapshot(at(1850), 0);
        let history = later["things"][0]["properties"][0]["history"]
            .as_array()
            .cloned();
        assert_eq!(history.map(|h| h.len()), Some(50));
    }

    #[test]
    fn events_are_numbered_bounded_and_counted() {
        let mut model = Model::new(
            &[fridge()],
            &RuleSet::new(),
            Vec::new(),
            WebLimits {
                timeline: 10,
                ..limits()
            },
        );
        let item = model.event(&record(json!({"level": "critical", "n": 0}), 0));
        assert_eq!(
            item,
            json!({"seq": 1, "thing": "urn:t:1", "thing_title": "Fridge", "event": "doorOpened",
                   "severity": "critical", "data": {"level": "critical", "n": 0}, "event_id": "42",
                   "at": ms(at(0))})
        );
        let other = model.event(&record(json!({"severity": "loud"}), 0));
        assert_eq!(
            (&other["severity"], &other["seq"]),
            (&Value::Null, &json!(2))
        );
        for i in 0..100 {
            model.event(&record(json!("y".repeat(100_000)), i));
        }
        let snap = model.snapshot(at(100), 0);
        let events = snap["events"].as_array().expect("array");
        assert_eq!(events.len(), 10);
        assert_eq!(events[0]["seq"], 93);
        assert_eq!(events[9]["seq"], 102);
        assert!(events[9]["data"].as_str().is_some_and(|s| s.len() < 17_000));
        assert_eq!(snap["stats"]["total"], 102);
        assert_eq!(snap["stats"]["per_event"]["doorOpened"], 102);
        assert_eq!(snap["stats"]["busiest"], json!([["urn:t:1", 102]]));
        assert!(model.refresh_stats(at(100)).is_some(), "the first time");
        assert_eq!(model.refresh_stats(at(100)), None);
        assert!(model.refresh_stats(at(1000)).is_some(), "the rate fell");
    }

    #[test]
    fn links_are_published_only_when_they_change() {
        let mut model = Model::new(&[fridge()], &RuleSet::new(), Vec::new(), limits());
        let open = model.link("urn:t:1", "*", &ConnectionState::Open);
        assert_eq!(
            open,
            Some(json!({"label": "*", "state": "open", "thing": "urn:t:1"}))
        );
        assert_eq!(model.link("urn:t:1", "*", &ConnectionState::Open), None);
        let again = model.link(
            "urn:t:1",
            "*",
            &ConnectionState::Reconnecting {
                attempt: 3,
                delay: Duration::from_secs(2),
            },
        );
        assert_eq!(
            again,
            Some(json!({"label": "*", "state": "reconnecting", "attempt": 3,
                        "next_delay_ms": 2000, "thing": "urn:t:1"}))
        );
        assert_eq!(model.link("urn:other", "*", &ConnectionState::Open), None);
        let snap = model.snapshot(at(0), 0);
        assert_eq!(snap["things"][0]["links"][0]["state"], "reconnecting");
    }

    #[test]
    fn notices_keep_the_last_ones_cut_to_length() {
        let mut model = Model::new(&[fridge()], &RuleSet::new(), Vec::new(), limits());
        for i in 0..100 {
            model.notice(at(i), "problem", &format!("{i} {}", "z".repeat(10_000)));
        }
        let snap = model.snapshot(at(100), 0);
        let notices = snap["notices"].as_array().expect("array");
        assert_eq!(notices.len(), 50);
        let text = notices[49]["text"].as_str().expect("text");
        assert!(text.starts_with("99 ") && text.ends_with('…'));
        assert_eq!(text.chars().count(), 512);
    }

    #[test]
    fn rules_are_described_in_words() {
        let rules = RuleSet::from_str(
            "rules:\n  - {id: hot, thing: 'urn:t:1', property: temperature, condition: {gt: 8}, for: 20s}\n  - {id: quiet, thing: '*', property: temperature, condition: {no_data: 15s}, severity: critical}\n",
            Format::Yaml,
            "test",
        )
        .expect("rules");
        let model = Model::new(&[fridge()], &rules, Vec::new(), limits());
        let snap = model.snapshot(at(0), 0);
        assert_eq!(
            snap["rules"],
            json!([
                {"id": "hot", "thing": "urn:t:1", "property": "temperature", "severity": "warning",
                 "condition": "value > 8", "for_s": 20.0},
                {"id": "quiet", "thing": "*", "property": "temperature", "severity": "critical",
                 "condition": "no data for 15s", "for_s": 0.0},
            ])
        );
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 5), "héllo");
        assert_eq!(clip("héllo", 3), "hé…");
        assert_eq!(clip("<b>", 0), "…");
    }
}
