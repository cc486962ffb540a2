//! Drawing the dashboard never panics and never puts a control character on screen, whatever
//! its state holds: Things, panels and ranges (NaN, ±inf, `min >= max`), property values
//! and event data (extreme floats, huge and nested JSON, strings with control characters),
//! connection errors, notices, filters, selections past the end, any terminal size. The
//! state's history buffers stay within their bounds.
//!
//! `cargo fuzz build --features dashboard dashboard_render`
#![no_main]

use std::time::{Duration, SystemTime};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use wot_dashboard_example::app::{
    App, DisplayMode, Focus, Input, Limits, Link, Message, NoticeKind, Overlay, Panel, ThingView,
};
use wot_dashboard_example::sanitize::is_unsafe;
use wot_dashboard_example::ui::render_rows;
use wot_events::{EventRecord, PropertyUpdate};

/// Deeper JSON is cut to `null` (the network parsers stop at 128 levels anyway).
const MAX_DEPTH: usize = 24;

#[derive(Debug, Arbitrary)]
enum Json {
    Null,
    Bool(bool),
    Float(f64),
    Int(i64),
    Unsigned(u64),
    Text(String),
    /// A long string: `text` repeated `times` (up to 65535) times.
    Long {
        text: String,
        times: u16,
    },
    /// A long array: `item` repeated.
    Repeated {
        item: Box<Json>,
        times: u16,
    },
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

/// Most nodes plus string bytes one case may build: long values, not exhausted memory.
const BUDGET: usize = 2_000_000;

impl Json {
    /// The JSON value, within `budget` (nodes plus string bytes; repeats are cut to fit).
    fn value(&self, depth: usize, budget: &mut usize) -> Value {
        if depth > MAX_DEPTH || *budget == 0 {
            return Value::Null;
        }
        *budget -= 1;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            // NaN and infinities have no JSON form: `null`, as serde_json makes them.
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Int(i) => Value::from(*i),
            Json::Unsigned(u) => Value::from(*u),
            Json::Text(s) => {
                *budget = budget.saturating_sub(s.len());
                Value::String(s.clone())
            }
            Json::Long { text, times } => {
                let times = usize::from(*times).min(*budget / text.len().max(1));
                *budget -= times * text.len();
                Value::String(text.repeat(times))
            }
            Json::Repeated { item, times } => {
                let before = *budget;
                let item = item.value(depth + 1, budget);
                let each = (before - *budget).max(1);
                let times = usize::from(*times).min(*budget / each);
                *budget -= times * each;
                Value::Array(vec![item; times])
            }
            Json::Array(items) => {
                Value::Array(items.iter().map(|i| i.value(depth + 1, budget)).collect())
            }
            Json::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| {
                        *budget = budget.saturating_sub(k.len());
                        (k.clone(), v.value(depth + 1, budget))
                    })
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct PanelSpec {
    name: String,
    title: String,
    unit: Option<String>,
    range: Option<(f64, f64)>,
    mode: u8,
    chosen: Option<u8>,
}

#[derive(Debug, Arbitrary)]
struct ThingSpec {
    id: String,
    title: String,
    panels: Vec<PanelSpec>,
}

#[derive(Debug, Arbitrary)]
enum Op {
    Property {
        thing: u8,
        panel: u8,
        value: Json,
        at: u32,
        violation: Option<String>,
    },
    Event {
        thing: u8,
        thing_title: String,
        name: String,
        data: Json,
        id: Option<String>,
        at: u32,
    },
    Link {
        thing: u8,
        label: String,
        state: u8,
        attempt: u32,
        reason: String,
    },
    Notice {
        kind: u8,
        text: String,
    },
    /// Opens the notices panel, or the detail view of the event at this index of the log.
    Open {
        event: Option<u16>,
        scroll: u16,
    },
    Tick(u32),
    Filter {
        text: String,
        editing: bool,
    },
    Select {
        thing: u16,
        panel: u16,
        alert: u16,
        focus: u8,
    },
    Draw {
        width: u8,
        height: u8,
    },
}

#[derive(Debug, Arbitrary)]
struct Case {
    small_limits: bool,
    things: Vec<ThingSpec>,
    ops: Vec<Op>,
    width: u8,
    height: u8,
}

fn mode(n: u8) -> DisplayMode {
    match n % 3 {
        0 => DisplayMode::Gauge,
        1 => DisplayMode::Chart,
        _ => DisplayMode::Value,
    }
}

fn time(at: u32) -> SystemTime {
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(1_800_000_000)
        + Duration::from_millis(u64::from(at))
}

fn draw(app: &App, width: u8, height: u8) {
    // Up to 255 × 127 cells: big enough for every layout, small enough to stay fast.
    let rows = render_rows(app, u16::from(width), u16::from(height / 2));
    for row in &rows {
        assert!(
            !row.chars().any(is_unsafe),
            "a control character reached the screen: {row:?}"
        );
    }
}

fuzz_target!(|case: Case| {
    let limits = if case.small_limits {
        Limits {
            log_entries: 8,
            log_bytes: 4096,
            entry_bytes: 512,
            value_bytes: 256,
            history_values: 16,
            history_bytes: 1024,
            alerts: 4,
            text_chars: 64,
            stats_keys: 4,
            notices: 3,
        }
    } else {
        Limits::DEFAULT
    };
    let mut app = App::with_limits(time(0), limits);
    let mut budget = BUDGET;
    let mut ids = Vec::new();
    for spec in case.things.iter().take(8) {
        let mut view = ThingView {
            id: spec.id.clone(),
            title: spec.title.clone(),
            panels: Vec::new(),
        };
        for p in spec.panels.iter().take(12) {
            let mut panel = Panel::new(&p.name, &p.title, p.unit.clone(), p.range, mode(p.mode));
            panel.chosen = p.chosen.map(mode);
            view.panels.push(panel);
        }
        ids.push((
            spec.id.clone(),
            view.panels
                .iter()
                .map(|p| p.name.clone())
                .collect::<Vec<_>>(),
        ));
        app.update(Message::Thing(view));
    }
    let thing_id = |n: u8| {
        ids.get(usize::from(n) % ids.len().max(1))
            .map(|(id, _)| id.clone())
    };
    for op in case.ops.iter().take(64) {
        match op {
            Op::Property {
                thing,
                panel,
                value,
                at,
                violation,
            } => {
                let Some((id, panels)) = ids.get(usize::from(*thing) % ids.len().max(1)) else {
                    continue;
                };
                let Some(name) = panels.get(usize::from(*panel) % panels.len().max(1)) else {
                    continue;
                };
                app.update(Message::Property(PropertyUpdate {
                    thing_id: id.clone().into(),
                    property: name.clone().into(),
                    value: value.value(0, &mut budget),
                    timestamp: time(*at),
                    event_id: None,
                    schema_violation: violation.clone(),
                }));
            }
            Op::Event {
                thing,
                thing_title,
                name,
                data,
                id,
                at,
            } => {
                app.update(Message::Event(EventRecord {
                    thing_id: thing_id(*thing)
                        .unwrap_or_else(|| thing_title.clone())
                        .into(),
                    thing_title: thing_title.clone().into(),
                    event: name.clone().into(),
                    data: data.value(0, &mut budget),
                    event_id: id.clone().map(Into::into),
                    received_at: time(*at),
                }));
            }
            Op::Link {
                thing,
                label,
                state,
                attempt,
                reason,
            } => {
                let link = match state % 4 {
                    0 => Link::Connecting,
                    1 => Link::Connected,
                    2 => Link::Reconnecting { attempt: *attempt },
                    _ => Link::Closed(reason.clone()),
                };
                app.update(Message::Link {
                    thing: thing_id(*thing).unwrap_or_default(),
                    label: label.clone(),
                    link,
                });
            }
            Op::Notice { kind, text } => {
                let kind = match kind % 7 {
                    0 => NoticeKind::Fired,
                    1 => NoticeKind::Escalated,
                    2 => NoticeKind::Resolved,
                    3 => NoticeKind::Acknowledged,
                    4 => NoticeKind::Problem,
                    5 => NoticeKind::Warning,
                    _ => NoticeKind::Info,
                };
                app.update(Message::Notice {
                    kind,
                    text: text.clone(),
                });
            }
            Op::Open { event, scroll } => {
                let scroll = *scroll;
                app.overlay = match event {
                    None => Some(Overlay::Notices { scroll }),
                    Some(n) => app
                        .log
                        .iter()
                        .nth(usize::from(*n) % app.log.len().max(1))
                        .map(|record| Overlay::Event {
                            record: Box::new(record.clone()),
                            scroll,
                        }),
                };
            }
            Op::Tick(at) => {
                app.update(Message::Tick(time(*at)));
            }
            Op::Filter { text, editing } => {
                app.filter = text.clone();
                app.input = if *editing {
                    Input::Filter
                } else {
                    Input::Normal
                };
            }
            Op::Select {
                thing,
                panel,
                alert,
                focus,
            } => {
                app.selected_thing = usize::from(*thing);
                app.selected_panel = usize::from(*panel);
                app.selected_alert = usize::from(*alert);
                app.selected_event = usize::from(*alert);
                app.focus = match focus % 4 {
                    0 => Focus::Things,
                    1 => Focus::Properties,
                    2 => Focus::Events,
                    _ => Focus::Alerts,
                };
            }
            Op::Draw { width, height } => draw(&app, *width, *height),
        }
        assert!(app.log.len() <= limits.log_entries);
        assert!(app.log.bytes() <= limits.log_bytes);
    }
    for thing in &app.things {
        for panel in &thing.panels {
            assert!(panel.samples.len() <= limits.history_values);
        }
    }
    assert!(app.notices.len() <= limits.notices);
    draw(&app, case.width, case.height);
});
