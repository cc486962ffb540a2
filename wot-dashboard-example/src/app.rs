//! The dashboard's state: plain data, changed only by [`App::update`] with a [`Message`].
//!
//! Messages come from the SDK streams (property updates and event records from `wot-events`,
//! alert snapshots from `wot-alerts`, connection states from `wot-events`), from the clock and from
//! keys. `update` does no I/O; when a key asks for some (acknowledging an alert, quitting) it
//! returns a [`Command`] for the event loop to carry out.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde_json::Value;
use wot_alerts::Alert;
use wot_events::{CloseReason, ConnectionState, EventRecord, LogQuery, PropertyUpdate};
use wot_td::{DataType, Thing};

use crate::history::{Samples, Timeline, shrink};
use crate::sanitize;

/// How long the live charts look back (5 minutes).
pub const CHART_WINDOW: Duration = Duration::from_secs(300);
/// The [`Message::Link`] label of a Thing's event connection.
pub const EVENTS: &str = "events";
/// Resolved alerts shown.
const RESOLVED_SHOWN: usize = 5;

/// How much the dashboard state may hold. Everything a Thing sends that the state keeps is
/// bounded by one of these; [`Limits::DEFAULT`] gives the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries in the event log (default 1000).
    pub log_entries: usize,
    /// Most bytes in the event log, all entries together (default 4 MiB).
    pub log_bytes: usize,
    /// Most bytes of one event log entry's data; larger data keeps only the start of its
    /// JSON text (default 16 KiB).
    pub entry_bytes: usize,
    /// Most bytes of a property's latest value, an alert's value, a schema violation
    /// message; larger values keep only the start of their JSON text (default 4 KiB).
    pub value_bytes: usize,
    /// Most values per property chart (default 1200: the 5-minute window at 4 updates a
    /// second).
    pub history_values: usize,
    /// Most bytes of chart values, all panels together (default 16 MiB): with many panels
    /// each keeps fewer than `history_values`.
    pub history_bytes: usize,
    /// Most alerts kept from the alert manager's active list (default 256).
    pub alerts: usize,
    /// Most characters of a notice or a connection error (default 512).
    pub text_chars: usize,
    /// Most distinct Thing ids and event names the statistics count by name (default 256;
    /// the rest are counted together).
    pub stats_keys: usize,
}

impl Limits {
    /// The defaults.
    pub const DEFAULT: Limits = Limits {
        log_entries: 1000,
        log_bytes: 4 << 20,
        entry_bytes: 16 << 10,
        value_bytes: 4 << 10,
        history_values: 1200,
        history_bytes: 16 << 20,
        alerts: 256,
        text_chars: 512,
        stats_keys: 256,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How a property panel shows its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayMode {
    /// A bar between the schema's minimum and maximum.
    Gauge,
    /// A line over the chart window.
    Chart,
    /// The latest value with its unit.
    Value,
}

impl DisplayMode {
    /// The name shown in a panel's title.
    pub fn label(self) -> &'static str {
        match self {
            DisplayMode::Gauge => "gauge",
            DisplayMode::Chart => "chart",
            DisplayMode::Value => "value",
        }
    }

    fn next(self) -> Self {
        match self {
            DisplayMode::Gauge => DisplayMode::Chart,
            DisplayMode::Chart => DisplayMode::Value,
            DisplayMode::Value => DisplayMode::Gauge,
        }
    }
}

/// The state of the connection behind a panel, as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Opening.
    Connecting,
    /// Open.
    Connected,
    /// Waiting before attempt `attempt`.
    Reconnecting {
        /// The coming attempt.
        attempt: u32,
    },
    /// Given up, with the reason (cut to [`Limits::text_chars`]).
    Closed(String),
}

impl From<&ConnectionState> for Link {
    fn from(state: &ConnectionState) -> Self {
        match state {
            ConnectionState::Connecting => Link::Connecting,
            ConnectionState::Open => Link::Connected,
            ConnectionState::Reconnecting { attempt, .. } => {
                Link::Reconnecting { attempt: *attempt }
            }
            ConnectionState::Closed { reason } => Link::Closed(match reason {
                CloseReason::Requested => "closed".to_owned(),
                CloseReason::EndedByServer => "ended by server".to_owned(),
                CloseReason::Failed(error) => {
                    sanitize::clip(&error.to_string(), Limits::DEFAULT.text_chars)
                }
                _ => "closed".to_owned(),
            }),
            // `ConnectionState` is non-exhaustive: a state this UI does not know yet.
            _ => Link::Connecting,
        }
    }
}

/// One property of a Thing, with its recent values.
#[derive(Debug, Clone)]
pub struct Panel {
    /// The property's name (its key in the TD).
    pub name: String,
    /// Its title, or the name.
    pub title: String,
    /// Its unit, if the TD gives one.
    pub unit: Option<String>,
    /// Minimum and maximum, when the schema gives both (any numbers: drawing copes with
    /// `min >= max`, infinities and NaN).
    pub range: Option<(f64, f64)>,
    /// What the schema suggests.
    pub suggested: DisplayMode,
    /// What the user chose with the mode key, if anything.
    pub chosen: Option<DisplayMode>,
    /// The numeric values for the chart.
    pub samples: Samples,
    /// The latest value and when it came (cut to [`Limits::value_bytes`]).
    pub latest: Option<(SystemTime, Value)>,
    /// The latest value broke the property's schema (the SDK flags it, we show it).
    pub violation: Option<String>,
}

impl Panel {
    /// A panel with no values yet.
    pub fn new(
        name: impl Into<String>,
        title: impl Into<String>,
        unit: Option<String>,
        range: Option<(f64, f64)>,
        suggested: DisplayMode,
    ) -> Self {
        Panel {
            name: name.into(),
            title: title.into(),
            unit,
            range,
            suggested,
            chosen: None,
            samples: Samples::new(Limits::DEFAULT.history_values),
            latest: None,
            violation: None,
        }
    }

    /// The panel of a property, from its TD.
    pub fn from_td(name: &str, property: &wot_td::PropertyAffordance) -> Self {
        let schema = &property.schema;
        let numeric = matches!(schema.data_type, Some(DataType::Number | DataType::Integer));
        let range = schema
            .numeric_range()
            .and_then(|r| Some((r.min?, r.max?)))
            .filter(|(lo, hi)| lo < hi);
        let suggested = match (numeric, range) {
            (true, Some(_)) => DisplayMode::Gauge,
            (true, None) => DisplayMode::Chart,
            (false, _) => DisplayMode::Value,
        };
        Panel::new(
            name,
            property.title_in("en").unwrap_or(name),
            property.unit().map(str::to_owned),
            range,
            suggested,
        )
    }

    /// The mode in use: the user's choice, else the schema's suggestion.
    pub fn mode(&self) -> DisplayMode {
        self.chosen.unwrap_or(self.suggested)
    }

    /// The latest value.
    pub fn latest(&self) -> Option<&Value> {
        self.latest.as_ref().map(|(_, v)| v)
    }

    /// Records a new value: the latest (cut to `max_bytes`), and a chart sample if it is a
    /// number.
    fn push(&mut self, at: SystemTime, value: Value, max_bytes: usize) {
        if let Some(number) = value.as_f64() {
            self.samples.push(at, number);
        }
        self.latest = Some((at, shrink(value, max_bytes)));
    }
}

/// One Thing on the dashboard.
#[derive(Debug, Clone)]
pub struct ThingView {
    /// The Thing's id, or its title when the TD has none.
    pub id: String,
    /// Its title.
    pub title: String,
    /// One panel per readable property.
    pub panels: Vec<Panel>,
}

impl ThingView {
    /// The view of a Thing from its TD; panels in the TD's property order.
    pub fn from_td(thing: &Thing) -> Self {
        ThingView {
            id: thing.id.clone().unwrap_or_else(|| thing.title.clone()),
            title: thing.title_in("en").to_owned(),
            panels: thing
                .properties()
                .filter(|(_, p)| !p.schema.is_write_only())
                .map(|(name, p)| Panel::from_td(name, p))
                .collect(),
        }
    }
}

/// Which part of the screen the arrow keys move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The Things list.
    Things,
    /// The property panels.
    Properties,
    /// The active alerts.
    Alerts,
}

impl Focus {
    fn next(self) -> Self {
        match self {
            Focus::Things => Focus::Properties,
            Focus::Properties => Focus::Alerts,
            Focus::Alerts => Focus::Things,
        }
    }
}

/// Whether keys are commands or typing into the event filter box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Keys are commands.
    Normal,
    /// Keys edit the event filter.
    Filter,
}

/// Everything that changes the state.
#[derive(Debug)]
pub enum Message {
    /// A Thing to show (from its TD).
    Thing(ThingView),
    /// A new property value.
    Property(PropertyUpdate),
    /// A new event.
    Event(EventRecord),
    /// The connection behind `label` (a property name, `*` for all properties, or `events`)
    /// of a Thing changed state.
    Link {
        /// The Thing id.
        thing: String,
        /// The connection's label.
        label: String,
        /// Its state.
        link: Link,
    },
    /// The alert manager's alerts: pending and firing, and recently resolved (newest last).
    Alerts {
        /// Pending and firing.
        active: Vec<Alert>,
        /// Recently resolved, newest last.
        resolved: Vec<Alert>,
    },
    /// Something to tell the user in the status line.
    Notice(String),
    /// The clock moved.
    Tick(SystemTime),
    /// A key was pressed.
    Key(KeyEvent),
}

/// I/O that a message asks the event loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Stop the dashboard.
    Quit,
    /// Acknowledge the alert of `rule` on `thing`.
    Acknowledge {
        /// The rule id.
        rule: String,
        /// The Thing id.
        thing: String,
    },
}

/// The whole dashboard state.
#[derive(Debug)]
pub struct App {
    /// The Things shown, in load order.
    pub things: Vec<ThingView>,
    /// Index of the selected Thing (may be past the end: drawing copes).
    pub selected_thing: usize,
    /// Index of the selected panel of the selected Thing.
    pub selected_panel: usize,
    /// Connection states by (Thing id, label).
    pub links: HashMap<(String, String), Link>,
    /// The event timeline.
    pub log: Timeline,
    /// The filter box: `thing:WORD`, `event:NAME` and free text, space-separated.
    pub filter: String,
    /// Pending and firing alerts (at most [`Limits::alerts`]).
    pub active: Vec<Alert>,
    /// Recently resolved alerts, newest first.
    pub resolved: Vec<Alert>,
    /// Index of the selected active alert.
    pub selected_alert: usize,
    /// Where the arrow keys move.
    pub focus: Focus,
    /// Whether keys are commands or typing.
    pub input: Input,
    /// The latest notice, already [sanitized](crate::sanitize) and cut.
    pub notice: Option<String>,
    /// The time the screen shows.
    pub now: SystemTime,
    /// The bounds of this state.
    pub limits: Limits,
}

impl App {
    /// An empty dashboard at time `now`, with the default [`Limits`].
    pub fn new(now: SystemTime) -> Self {
        Self::with_limits(now, Limits::DEFAULT)
    }

    /// An empty dashboard at time `now` with these limits.
    pub fn with_limits(now: SystemTime, limits: Limits) -> Self {
        App {
            things: Vec::new(),
            selected_thing: 0,
            selected_panel: 0,
            links: HashMap::new(),
            log: Timeline::new(
                limits.log_entries,
                limits.log_bytes,
                limits.entry_bytes,
                limits.stats_keys,
            ),
            filter: String::new(),
            active: Vec::new(),
            resolved: Vec::new(),
            selected_alert: 0,
            focus: Focus::Things,
            input: Input::Normal,
            notice: None,
            now,
            limits,
        }
    }

    /// Applies one message; returns the I/O it asks for.
    pub fn update(&mut self, message: Message) -> Option<Command> {
        match message {
            Message::Thing(view) => {
                match self.things.iter_mut().find(|t| t.id == view.id) {
                    Some(existing) => *existing = view,
                    None => self.things.push(view),
                }
                self.share_history();
            }
            Message::Property(update) => self.property(update),
            Message::Event(record) => self.log.push(record),
            Message::Link {
                thing,
                label,
                mut link,
            } => {
                if let Link::Closed(reason) = &mut link {
                    *reason = sanitize::clip(reason, self.limits.text_chars);
                }
                self.links.insert((thing, label), link);
            }
            Message::Alerts { active, resolved } => {
                let limits = self.limits;
                let keep = |mut alert: Alert| {
                    alert.value = alert.value.map(|v| shrink(v, limits.value_bytes));
                    alert
                };
                self.active = active.into_iter().take(limits.alerts).map(keep).collect();
                let skip = resolved.len().saturating_sub(RESOLVED_SHOWN);
                self.resolved = resolved.into_iter().skip(skip).rev().map(keep).collect();
                self.selected_alert = self.selected_alert.min(self.active.len().saturating_sub(1));
            }
            Message::Notice(text) => {
                self.notice = Some(sanitize::clip(&text, self.limits.text_chars));
            }
            Message::Tick(now) => self.now = now,
            Message::Key(key) => return self.key(key),
        }
        None
    }

    fn property(&mut self, update: PropertyUpdate) {
        let Some(panel) = self
            .things
            .iter_mut()
            .find(|t| t.id == update.thing_id)
            .and_then(|t| t.panels.iter_mut().find(|p| p.name == update.property))
        else {
            return;
        };
        let max = self.limits.value_bytes;
        panel.violation = update
            .schema_violation
            .map(|v| sanitize::clip(&v, self.limits.text_chars));
        panel.push(update.timestamp, update.value, max);
    }

    /// Shares [`Limits::history_bytes`] among all panels: each keeps at most
    /// `history_bytes / (value size × panels)` values, and never more than
    /// [`Limits::history_values`].
    fn share_history(&mut self) {
        let panels: usize = self.things.iter().map(|t| t.panels.len()).sum();
        let per_panel = (self.limits.history_bytes / Samples::VALUE_BYTES)
            .checked_div(panels)
            .unwrap_or(0)
            .min(self.limits.history_values);
        for panel in self.things.iter_mut().flat_map(|t| t.panels.iter_mut()) {
            panel.samples.set_capacity(per_panel);
        }
    }

    fn key(&mut self, key: KeyEvent) -> Option<Command> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Command::Quit);
        }
        if self.input == Input::Filter {
            match key.code {
                KeyCode::Enter => self.input = Input::Normal,
                KeyCode::Esc => {
                    self.filter.clear();
                    self.input = Input::Normal;
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            return None;
        }
        match key.code {
            KeyCode::Char('q') => return Some(Command::Quit),
            KeyCode::Tab => self.focus = self.focus.next(),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Char('m') => self.cycle_mode(),
            KeyCode::Char('/') => self.input = Input::Filter,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Char('a') => {
                let alert = self.active.get(self.selected_alert)?;
                return Some(Command::Acknowledge {
                    rule: alert.rule.clone(),
                    thing: alert.thing.clone(),
                });
            }
            _ => {}
        }
        None
    }

    fn move_selection(&mut self, delta: isize) {
        let (index, len) = match self.focus {
            Focus::Things => (&mut self.selected_thing, self.things.len()),
            Focus::Properties => {
                let len = self.thing().map_or(0, |t| t.panels.len());
                (&mut self.selected_panel, len)
            }
            Focus::Alerts => (&mut self.selected_alert, self.active.len()),
        };
        if len == 0 {
            return;
        }
        *index = index.saturating_add_signed(delta).min(len - 1);
        if self.focus == Focus::Things {
            self.selected_panel = 0;
        }
    }

    fn cycle_mode(&mut self) {
        let selected = self.selected_panel;
        if let Some(panel) = self
            .things
            .get_mut(self.selected_thing)
            .and_then(|t| t.panels.get_mut(selected))
        {
            panel.chosen = Some(panel.mode().next());
        }
    }

    /// The selected Thing.
    pub fn thing(&self) -> Option<&ThingView> {
        self.things.get(self.selected_thing)
    }

    /// The state of the connection that carries `property` of `thing`: its own, or the
    /// shared `observeallproperties` one.
    pub fn link(&self, thing: &str, label: &str) -> Option<&Link> {
        let key = |l: &str| (thing.to_owned(), l.to_owned());
        self.links
            .get(&key(label))
            .or_else(|| self.links.get(&key("*")))
    }

    /// How many event connections (label `events`) are open, of how many.
    pub fn event_links(&self) -> (usize, usize) {
        let events = self.links.iter().filter(|((_, label), _)| label == EVENTS);
        let (mut open, mut total) = (0, 0);
        for (_, link) in events {
            total += 1;
            open += usize::from(*link == Link::Connected);
        }
        (open, total)
    }

    /// The event log query the filter box describes. `thing:WORD` keeps Things whose id or
    /// title contains WORD (case-insensitive), `event:NAME` one event name, the rest is free
    /// text.
    pub fn query(&self) -> LogQuery {
        let mut query = LogQuery::new();
        let mut text = Vec::new();
        for word in self.filter.split_whitespace() {
            if let Some(thing) = word.strip_prefix("thing:") {
                let needle = thing.to_lowercase();
                let mut any = false;
                for t in &self.things {
                    if t.id.to_lowercase().contains(&needle)
                        || t.title.to_lowercase().contains(&needle)
                    {
                        query = query.thing(t.id.clone());
                        any = true;
                    }
                }
                if !any {
                    // Nothing matches: a Thing id nobody has.
                    query = query.thing(format!("\u{0}{needle}"));
                }
            } else if let Some(event) = word.strip_prefix("event:") {
                query = query.event(event);
            } else {
                text.push(word);
            }
        }
        if !text.is_empty() {
            query = query.text(text.join(" "));
        }
        query
    }

    /// The title of the Thing with this id, or the id.
    pub fn title_of<'a>(&'a self, thing_id: &'a str) -> &'a str {
        self.things
            .iter()
            .find(|t| t.id == thing_id)
            .map_or(thing_id, |t| t.title.as_str())
    }

    /// The unit of a property of a Thing, from its TD.
    pub fn unit_of(&self, thing_id: &str, property: &str) -> Option<&str> {
        let thing = self.things.iter().find(|t| t.id == thing_id)?;
        let panel = thing.panels.iter().find(|p| p.name == property)?;
        panel.unit.as_deref()
    }

    /// Event counts per Thing title (for the statistics box).
    pub fn counts_per_thing(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (id, n) in self.log.stats(self.now).per_thing {
            *out.entry(self.title_of(&id).to_owned()).or_insert(0) += n;
        }
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crossterm::event::KeyEventState;
    use serde_json::json;

    pub(crate) fn t(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    pub(crate) fn press(code: KeyCode) -> Message {
        Message::Key(KeyEvent {
            code,
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        })
    }

    /// The simulated fridge and pump, as TDs from the simulator's own builder.
    pub(crate) fn app_with_things() -> App {
        let mut app = App::new(t(600));
        for spec in &crate::sim::model::THINGS[..2] {
            let td = crate::sim::tds::thing_description(spec, "http://127.0.0.1:9/").expect("TD");
            app.update(Message::Thing(ThingView::from_td(&td)));
        }
        app
    }

    pub(crate) fn update(thing: &str, property: &str, value: Value, at: SystemTime) -> Message {
        Message::Property(PropertyUpdate {
            thing_id: format!("urn:wot-live:sim:{thing}").into(),
            property: property.into(),
            value,
            timestamp: at,
            event_id: None,
            schema_violation: None,
        })
    }

    #[test]
    fn display_mode_follows_the_schema_and_the_mode_key_overrides_it() {
        let mut app = app_with_things();
        let pump = &app.things[1];
        let modes: Vec<_> = pump
            .panels
            .iter()
            .map(|p| (p.name.as_str(), p.mode()))
            .collect();
        assert_eq!(
            modes,
            [
                ("pressure", DisplayMode::Gauge),
                ("flow", DisplayMode::Chart),
                ("running", DisplayMode::Value)
            ]
        );
        app.update(press(KeyCode::Down)); // select the pump
        app.update(press(KeyCode::Tab)); // focus its properties
        app.update(press(KeyCode::Down)); // flow
        app.update(press(KeyCode::Char('m')));
        assert_eq!(app.things[1].panels[1].mode(), DisplayMode::Value);
        assert_eq!(app.things[1].panels[0].mode(), DisplayMode::Gauge);
    }

    #[test]
    fn updates_land_in_their_panel_history() {
        let mut app = app_with_things();
        app.update(update("fridge-1", "temperature", json!(4.5), t(590)));
        app.update(update("fridge-1", "temperature", json!(5.5), t(595)));
        app.update(update("nobody", "temperature", json!(99), t(595)));
        let panel = &app.things[0].panels[0];
        assert_eq!(panel.latest(), Some(&json!(5.5)));
        assert_eq!(panel.samples.len(), 2);
    }

    #[test]
    fn filter_box_keys_edit_the_query() {
        let mut app = app_with_things();
        for code in [KeyCode::Char('/'), KeyCode::Char('q'), KeyCode::Char('x')] {
            assert_eq!(
                app.update(press(code)),
                None,
                "typing q in the filter box must not quit"
            );
        }
        app.update(press(KeyCode::Backspace));
        app.update(press(KeyCode::Enter));
        assert_eq!(app.filter, "q");
        assert_eq!(app.input, Input::Normal);
        assert_eq!(app.update(press(KeyCode::Char('q'))), Some(Command::Quit));
    }

    #[test]
    fn query_understands_thing_event_and_text() {
        let mut app = app_with_things();
        let record = |thing: &str, event: &str, data: Value| EventRecord {
            thing_id: format!("urn:wot-live:sim:{thing}").into(),
            thing_title: "".into(),
            event: event.into(),
            data,
            event_id: None,
            received_at: t(1),
        };
        app.update(Message::Event(record(
            "fridge-1",
            "doorOpened",
            json!({"temperature": 4}),
        )));
        app.update(Message::Event(record(
            "pump-1",
            "fault",
            json!({"code": "overpressure"}),
        )));
        app.update(Message::Event(record(
            "pump-1",
            "fault",
            json!({"code": "dry-run"}),
        )));
        let hits = |app: &mut App, filter: &str| {
            app.filter = filter.into();
            app.log.query(&app.query()).len()
        };
        assert_eq!(hits(&mut app, ""), 3);
        assert_eq!(hits(&mut app, "thing:pump"), 2);
        assert_eq!(hits(&mut app, "thing:fridge"), 1);
        assert_eq!(hits(&mut app, "thing:boiler"), 0);
        assert_eq!(hits(&mut app, "event:doorOpened"), 1);
        assert_eq!(hits(&mut app, "thing:pump dry"), 1);
    }

    #[test]
    fn ctrl_c_quits_even_while_typing() {
        let mut app = app_with_things();
        app.update(press(KeyCode::Char('/')));
        let ctrl_c = Message::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(app.update(ctrl_c), Some(Command::Quit));
    }
}
