//! The dashboard's state: plain data, changed only by [`App::update`] with a [`Message`].
//!
//! Messages come from the SDK streams (property updates and event records from `wot-events`,
//! alert snapshots from `wot-alerts`, connection states from `wot-events`), from the clock and from
//! keys. `update` does no I/O; when a key asks for some (acknowledging an alert, quitting) it
//! returns a [`Command`] for the event loop to carry out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde_json::Value;
use wot_alerts::{Alert, Notification, NotificationKind};
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
/// How long a notice that answers a key (an acknowledgement) stays in the status line, and
/// how long an alert notice outranks newer problems there.
pub const NOTICE_HOLD: Duration = Duration::from_secs(5);

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
    /// Most notices kept for the notices panel (default 50); the oldest go first.
    pub notices: usize,
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
        notices: 50,
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
                    sanitize::clip(&crate::live::error_chain(error), Limits::DEFAULT.text_chars)
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
    /// Whether the schema says the values are numbers (`number` or `integer`): only those
    /// get a chart.
    pub numeric: bool,
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
    /// A panel with no values yet. It counts as [numeric](Panel::numeric) unless
    /// `suggested` is [`DisplayMode::Value`] and there is no range.
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
            numeric: suggested != DisplayMode::Value || range.is_some(),
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
        let mut panel = Panel::new(
            name,
            property.title_in("en").unwrap_or(name),
            property.unit().map(str::to_owned),
            range,
            suggested,
        );
        panel.numeric = numeric;
        panel
    }

    /// The display modes that can show this property, in the order the mode key cycles
    /// through them: a gauge needs numbers and a usable range, a chart needs numbers, the
    /// value always works.
    pub fn modes(&self) -> Vec<DisplayMode> {
        let usable_range = self
            .range
            .is_some_and(|(lo, hi)| lo.is_finite() && hi.is_finite() && lo < hi);
        let mut modes = Vec::with_capacity(3);
        if self.numeric && usable_range {
            modes.push(DisplayMode::Gauge);
        }
        if self.numeric {
            modes.push(DisplayMode::Chart);
        }
        modes.push(DisplayMode::Value);
        modes
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
    /// The event timeline (Enter opens the selected event).
    Events,
    /// The active alerts.
    Alerts,
}

impl Focus {
    fn next(self) -> Self {
        match self {
            Focus::Things => Focus::Properties,
            Focus::Properties => Focus::Events,
            Focus::Events => Focus::Alerts,
            Focus::Alerts => Focus::Things,
        }
    }
}

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NoticeKind {
    /// An alert started firing.
    Fired,
    /// A firing alert's severity changed.
    Escalated,
    /// An alert resolved.
    Resolved,
    /// An alert was acknowledged.
    Acknowledged,
    /// Something failed: a stream error, a refused acknowledgement, a failed alert action.
    Problem,
    /// Something is set up in a way that cannot work as meant: a rule that does not fit the
    /// TDs, a property or event that cannot be watched.
    Warning,
    /// Anything else worth a line.
    Info,
}

impl NoticeKind {
    /// The lower-case name shown in front of the notice.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Fired => "fired",
            NoticeKind::Escalated => "escalated",
            NoticeKind::Resolved => "resolved",
            NoticeKind::Acknowledged => "acknowledged",
            NoticeKind::Problem => "problem",
            NoticeKind::Warning => "warning",
            NoticeKind::Info => "info",
        }
    }

    /// How strongly it claims the status line: a confirmation of the user's own action
    /// first, then alert news, then warnings, then problems and the rest.
    fn rank(self) -> u8 {
        match self {
            NoticeKind::Acknowledged => 3,
            NoticeKind::Fired | NoticeKind::Escalated | NoticeKind::Resolved => 2,
            NoticeKind::Warning => 1,
            NoticeKind::Problem | NoticeKind::Info => 0,
        }
    }
}

/// A message for the user: in the status line while it is the most relevant one, and in
/// the notices panel (`n`) until newer ones push it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// When it arrived (the dashboard's clock).
    pub at: SystemTime,
    /// What it is about.
    pub kind: NoticeKind,
    /// The text, already [sanitized](crate::sanitize) and cut to [`Limits::text_chars`].
    pub text: String,
}

/// A view drawn over the dashboard; Esc closes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// The latest notices, newest first, in full.
    Notices {
        /// Lines scrolled past.
        scroll: u16,
    },
    /// One event with all its data.
    Event {
        /// The event (a copy: the timeline may drop it meanwhile).
        record: Box<EventRecord>,
        /// Lines scrolled past.
        scroll: u16,
    },
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
    /// Something to tell the user in the status line and the notices panel.
    Notice {
        /// What it is about.
        kind: NoticeKind,
        /// The text (sanitized and cut when kept).
        text: String,
    },
    /// A notification from the alert manager, shown as a notice.
    Notification(Arc<Notification>),
    /// The alert rules in use: how many, and the warnings about them (shown as notices).
    Rules {
        /// How many rules are loaded.
        count: usize,
        /// What does not fit the Thing Descriptions, one line each.
        warnings: Vec<String>,
    },
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
    /// Index of the selected event among those the filter shows, newest first.
    pub selected_event: usize,
    /// Where the arrow keys move.
    pub focus: Focus,
    /// Whether keys are commands or typing.
    pub input: Input,
    /// The view drawn over the dashboard, if any.
    pub overlay: Option<Overlay>,
    /// The latest notices, oldest first (at most [`Limits::notices`]).
    pub notices: VecDeque<Notice>,
    /// How many alert rules are loaded, when known (`Some(0)`: the alerts panel says that no
    /// rule is loaded rather than "all clear").
    pub rules: Option<usize>,
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
            selected_event: 0,
            focus: Focus::Things,
            input: Input::Normal,
            overlay: None,
            notices: VecDeque::new(),
            rules: None,
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
            Message::Notice { kind, text } => self.notice(kind, &text),
            Message::Notification(notification) => {
                let kind = match notification.kind {
                    NotificationKind::Fired => NoticeKind::Fired,
                    NotificationKind::SeverityChanged => NoticeKind::Escalated,
                    NotificationKind::Resolved => NoticeKind::Resolved,
                    NotificationKind::Acknowledged => NoticeKind::Acknowledged,
                    // `NotificationKind` is non-exhaustive: a kind this UI does not know yet.
                    _ => NoticeKind::Info,
                };
                let alert = &notification.alert;
                let summary = (kind != NoticeKind::Acknowledged).then(|| notification.summary());
                let text = self.alert_text(&alert.rule, &alert.thing, summary);
                self.notice(kind, &text);
            }
            Message::Rules { count, warnings } => {
                self.rules = Some(count);
                for warning in warnings {
                    self.notice(NoticeKind::Warning, &warning);
                }
            }
            Message::Tick(now) => self.now = now,
            Message::Key(key) => return self.key(key),
        }
        None
    }

    /// Keeps a notice (sanitized and cut), dropping the oldest past [`Limits::notices`]. The
    /// same notice again within [`NOTICE_HOLD`] (the dashboard's own acknowledgement
    /// confirmation, then the alert manager's notification of it) is kept once.
    fn notice(&mut self, kind: NoticeKind, text: &str) {
        let text = sanitize::clip(text, self.limits.text_chars);
        let repeated = self
            .notices
            .iter()
            .rev()
            .take(4)
            .any(|n| n.kind == kind && n.text == text && within(self.now, n.at, NOTICE_HOLD));
        if repeated || self.limits.notices == 0 {
            return;
        }
        while self.notices.len() >= self.limits.notices {
            self.notices.pop_front();
        }
        self.notices.push_back(Notice {
            at: self.now,
            kind,
            text,
        });
    }

    /// The text of a notice about the alert of `rule` on `thing`: the rule, the Thing's
    /// title, and the alert's summary when there is one.
    pub fn alert_text(&self, rule: &str, thing: &str, summary: Option<&str>) -> String {
        let title = self.title_of(thing);
        match summary {
            Some(summary) if !summary.is_empty() => format!("{rule} on {title}: {summary}"),
            _ => format!("{rule} on {title}"),
        }
    }

    /// The notice the status line shows: among those of the last [`NOTICE_HOLD`], the most
    /// relevant (an acknowledgement the user just made, then alert news, then warnings,
    /// then problems; the newest of equals); when none is that recent, the newest.
    pub fn status_notice(&self) -> Option<&Notice> {
        let recent = self
            .notices
            .iter()
            .rev()
            .take_while(|n| within(self.now, n.at, NOTICE_HOLD));
        // `max_by_key` keeps the last of equals; going newest first, keep the first.
        let mut best: Option<&Notice> = None;
        for notice in recent {
            if best.is_none_or(|b| notice.kind.rank() > b.kind.rank()) {
                best = Some(notice);
            }
        }
        best.or_else(|| self.notices.back())
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
        panel.push(update.timestamp, update.value.into_value(), max);
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
        if let Some(overlay) = &mut self.overlay {
            let notices = matches!(overlay, Overlay::Notices { .. });
            let scroll = match overlay {
                Overlay::Notices { scroll } | Overlay::Event { scroll, .. } => scroll,
            };
            match key.code {
                KeyCode::Esc | KeyCode::Enter => self.overlay = None,
                KeyCode::Char('n') if notices => self.overlay = None,
                KeyCode::Char('q') => return Some(Command::Quit),
                KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
                KeyCode::Down | KeyCode::Char('j') => *scroll = scroll.saturating_add(1),
                KeyCode::PageUp => *scroll = scroll.saturating_sub(10),
                KeyCode::PageDown => *scroll = scroll.saturating_add(10),
                KeyCode::Home => *scroll = 0,
                _ => {}
            }
            return None;
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
            KeyCode::Char('n') => self.overlay = Some(Overlay::Notices { scroll: 0 }),
            KeyCode::Enter if self.focus == Focus::Events => self.open_event(),
            KeyCode::Char('/') => {
                self.input = Input::Filter;
                self.selected_event = 0;
            }
            KeyCode::Esc => {
                self.filter.clear();
                self.selected_event = 0;
            }
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
            Focus::Events => {
                let len = self.log.query(&self.query()).len();
                (&mut self.selected_event, len)
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

    /// The next display mode that can show the selected panel; a notice when there is no
    /// other.
    fn cycle_mode(&mut self) {
        let selected = self.selected_panel;
        let Some(panel) = self
            .things
            .get_mut(self.selected_thing)
            .and_then(|t| t.panels.get_mut(selected))
        else {
            return;
        };
        let modes = panel.modes();
        if modes.len() < 2 {
            let why = if panel.numeric {
                "no range in the schema for a gauge"
            } else {
                "not a number: no gauge or chart"
            };
            let text = format!("{}: only the value display ({why})", panel.title);
            self.notice(NoticeKind::Info, &text);
            return;
        }
        let next = match modes.iter().position(|m| *m == panel.mode()) {
            Some(at) => modes[(at + 1) % modes.len()],
            None => modes[0],
        };
        panel.chosen = Some(next);
    }

    /// Opens the detail view of the selected event.
    fn open_event(&mut self) {
        let hits = self.log.query(&self.query());
        let index = self.selected_event.min(hits.len().saturating_sub(1));
        if let Some(record) = hits.get(index) {
            let record = Box::new((*record).clone());
            self.overlay = Some(Overlay::Event { record, scroll: 0 });
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

/// Whether `at` is at most `span` before `now` (or after it).
fn within(now: SystemTime, at: SystemTime, span: Duration) -> bool {
    now.duration_since(at).map_or(true, |age| age <= span)
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
            value: value.into(),
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
            data: data.into(),
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

    #[test]
    fn notices_are_bounded_sanitized_and_kept_once() {
        let mut app = App::with_limits(
            t(0),
            Limits {
                notices: 3,
                text_chars: 10,
                ..Limits::DEFAULT
            },
        );
        for i in 0..10 {
            app.update(Message::Tick(t(i * 10)));
            app.update(Message::Notice {
                kind: NoticeKind::Problem,
                text: format!("{i} \u{1b}[2J went wrong badly"),
            });
        }
        let texts: Vec<&str> = app.notices.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(texts, ["7 \\e[2J w…", "8 \\e[2J w…", "9 \\e[2J w…"]);
        // The same again at once is the same notice; later it is news.
        let again = || Message::Notice {
            kind: NoticeKind::Problem,
            text: "9 \u{1b}[2J went wrong badly".into(),
        };
        app.update(again());
        assert_eq!(app.notices.len(), 3);
        assert_eq!(app.notices[0].text, "7 \\e[2J w…");
        app.update(Message::Tick(t(200)));
        app.update(again());
        assert_eq!(app.notices[0].text, "8 \\e[2J w…");
    }
}
