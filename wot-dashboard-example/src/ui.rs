//! Drawing: a pure function of [`App`].
//!
//! ```text
//! ┌Things──────┐┌<thing> properties─────────────────────────────┐
//! │> Fridge    ││ panel  panel                                   │
//! │  Pump      ││ panel  ...  (gauge / chart / value per schema)  │
//! └────────────┘└────────────────────────────────────────────────┘
//! ┌Events (filter)─────────────────┐┌Stats─┐┌Alerts───────────────┐
//! └────────────────────────────────┘└──────┘└─────────────────────┘
//!  12:00:01 FIRED  the most relevant notice                 7 notices: n
//!  key help
//! ```
//!
//! Over it, when open: the notices panel (`n`) or the detail view of an event (Enter).
//!
//! Whatever the state holds, drawing does not panic and writes no control character: every
//! text that came from a Thing goes through [`sanitize`](crate::sanitize), long texts are cut
//! to the space they get, and numbers are drawn compactly whatever their size (NaN, ±inf,
//! `1e308`, a range with `min >= max`: a gauge without a usable range shows the value and
//! says so).

use std::time::{Duration, SystemTime};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Margin, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Chart, Clear, Dataset, Gauge, GraphType, List, ListItem, ListState, Paragraph,
    Wrap,
};
use serde_json::Value;
use wot_alerts::{Alert, AlertState, Severity};
use wot_events::EventRecord;

use crate::app::{App, CHART_WINDOW, DisplayMode, Focus, Input, Link, NoticeKind, Overlay, Panel};
use crate::history::json_preview;
use crate::sanitize::{clip, text as safe};

/// Most characters of a value drawn in a panel or an alert line.
const VALUE_CHARS: usize = 200;
/// Most characters of a title drawn (a Thing, a property, a unit).
const TITLE_CHARS: usize = 80;
/// Columns in front of a notice's text in the status line: ` HH:MM:SS ` and the kind.
const STATUS_PREFIX: usize = 23;
/// Most bytes of an event's data shown in its detail view (the pretty JSON text); the
/// timeline keeps at most `Limits::entry_bytes` of it anyway.
const DETAIL_BYTES: usize = 256 << 10;

/// Draws the whole dashboard.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    // The status line gets a second row when its notice needs it (a long error with its
    // cause), on a screen tall enough to spare it.
    let width = usize::from(frame.area().width);
    let long = app
        .status_notice()
        .is_some_and(|n| n.text.chars().count() + STATUS_PREFIX > width.saturating_sub(16));
    let status_rows = if long && frame.area().height >= 30 {
        2
    } else {
        1
    };
    let [top, bottom, status, help] = Layout::vertical([
        Constraint::Percentage(58),
        Constraint::Fill(1),
        Constraint::Length(status_rows),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let [things, properties] =
        Layout::horizontal([Constraint::Length(24), Constraint::Fill(1)]).areas(top);
    let [events, alerts] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Fill(1)]).areas(bottom);
    draw_things(frame, app, things);
    draw_properties(frame, app, properties);
    draw_events(frame, app, events);
    draw_alerts(frame, app, alerts);
    draw_status(frame, app, status);
    draw_help(frame, app, help);
    match &app.overlay {
        Some(Overlay::Notices { scroll }) => draw_notices(frame, app, *scroll),
        Some(Overlay::Event { record, scroll }) => draw_event(frame, app, record, *scroll),
        None => {}
    }
}

fn block(title: impl Into<Line<'static>>, focused: bool) -> Block<'static> {
    let style = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new()
    };
    Block::bordered().title(title).border_style(style)
}

fn draw_things(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let items: Vec<ListItem<'_>> = app
        .things
        .iter()
        .map(|t| ListItem::new(clip(&t.title, TITLE_CHARS)))
        .collect();
    let list = List::new(items)
        .block(block("Things", app.focus == Focus::Things))
        .highlight_symbol("> ")
        .highlight_style(Style::new().add_modifier(Modifier::BOLD));
    let selected = app.selected_thing.min(app.things.len().saturating_sub(1));
    let mut state = ListState::default().with_selected(Some(selected));
    frame.render_stateful_widget(list, area, &mut state);
}

fn draw_properties(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let Some(thing) = app.thing() else {
        let waiting =
            Paragraph::new("Loading Thing Descriptions…").block(block("Properties", false));
        frame.render_widget(waiting, area);
        return;
    };
    let outer = block(
        format!("{} · properties", clip(&thing.title, TITLE_CHARS)),
        app.focus == Focus::Properties,
    );
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    // Up to three panels side by side when each still gets 36 columns, else a grid.
    let count = thing.panels.len().max(1);
    let columns = (1..=count.min(3))
        .rev()
        .find(|n| usize::from(inner.width) / n >= 36)
        .unwrap_or(1);
    let rows = thing.panels.len().div_ceil(columns).max(1);
    let row_areas = Layout::vertical(vec![Constraint::Fill(1); rows]).split(inner);
    for (index, panel) in thing.panels.iter().enumerate() {
        let Some(row) = row_areas.get(index / columns) else {
            continue;
        };
        let cells = Layout::horizontal(vec![Constraint::Fill(1); columns]).split(*row);
        let Some(cell) = cells.get(index % columns) else {
            continue;
        };
        let selected = app.focus == Focus::Properties && index == app.selected_panel;
        draw_panel(frame, app, &thing.id, panel, selected, *cell);
    }
}

fn link_span(link: Option<&Link>) -> Span<'static> {
    match link {
        None | Some(Link::Connecting) => {
            Span::styled("◌ connecting", Style::new().fg(Color::Yellow))
        }
        Some(Link::Connected) => Span::styled("● connected", Style::new().fg(Color::Green)),
        Some(Link::Reconnecting { attempt }) => Span::styled(
            format!("◐ reconnecting #{attempt}"),
            Style::new().fg(Color::Yellow),
        ),
        Some(Link::Closed(reason)) => Span::styled(
            format!("✕ {}", clip(reason, VALUE_CHARS)),
            Style::new().fg(Color::Red),
        ),
    }
}

/// How many event connections are open, e.g. `● 4/4 event streams`.
fn events_link(app: &App) -> Span<'static> {
    let (open, total) = app.event_links();
    let text = format!("{open}/{total} event streams");
    if total == 0 {
        Span::raw("")
    } else if open == total {
        Span::styled(format!("● {text}"), Style::new().fg(Color::Green))
    } else {
        Span::styled(format!("◐ {text}"), Style::new().fg(Color::Yellow))
    }
}

/// A number for reading: at most two decimals and no trailing zeros (4.2, 1313); very large
/// or very small magnitudes in scientific notation (1.00e308), `NaN`, `inf`, `-inf`.
pub fn number(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".to_owned()
        } else if f > 0.0 {
            "inf".to_owned()
        } else {
            "-inf".to_owned()
        };
    }
    let magnitude = f.abs();
    if magnitude >= 1e9 || (magnitude > 0.0 && magnitude < 1e-2) {
        return format!("{f:.2e}");
    }
    let text = format!("{f:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0" } else { text }.to_owned()
}

/// A JSON number for reading, the same way whether it came as an integer or a float (`1536`
/// and `1536.0` both read `1536`): integers below 10⁹ in full, everything else by [`number`].
pub fn json_number(n: &serde_json::Number) -> String {
    match n.as_i64() {
        Some(i) if i.unsigned_abs() < 1_000_000_000 => i.to_string(),
        _ => number(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// A value as text, numbers by [`json_number`], with the unit; cut to 200 characters,
/// control characters escaped. Every value the dashboard draws goes through here.
pub fn show(value: &Value, unit: Option<&str>) -> String {
    let text = match value {
        Value::Number(n) => json_number(n),
        Value::String(s) => clip(s, VALUE_CHARS),
        other => clip(&json_preview(other, VALUE_CHARS * 4), VALUE_CHARS),
    };
    match unit {
        Some(unit) => clip(&format!("{text} {}", safe(unit)), VALUE_CHARS),
        None => text,
    }
}

/// Where `value` sits in `lo ..= hi`, from 0 to 1, or `None` when the range is not usable
/// (a bound not finite, `lo >= hi`) or the value is NaN. Halving first keeps the arithmetic
/// finite for any finite bounds (`-1e308 ..= 1e308`).
pub fn gauge_ratio(value: f64, (lo, hi): (f64, f64)) -> Option<f64> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi) || value.is_nan() {
        return None;
    }
    let span = hi / 2.0 - lo / 2.0;
    let ratio = (value / 2.0 - lo / 2.0) / span;
    // A NaN here is impossible (span > 0, finite numerator or ±inf); map it to 0 anyway.
    Some(if ratio.is_nan() {
        0.0
    } else {
        ratio.clamp(0.0, 1.0)
    })
}

fn draw_panel(
    frame: &mut Frame<'_>,
    app: &App,
    thing: &str,
    panel: &Panel,
    selected: bool,
    area: Rect,
) {
    let mode = panel.mode();
    let how = if panel.chosen.is_some() { "" } else { " auto" };
    let mut title = vec![
        Span::raw(format!(" {} ", clip(&panel.title, TITLE_CHARS))).bold(),
        Span::raw(format!("[{}{how}] ", mode.label())).dim(),
    ];
    // A chart has no room for its latest value inside: it goes in the title.
    if mode == DisplayMode::Chart
        && let Some(latest) = panel.latest()
    {
        title.push(Span::raw(format!("{} ", show(latest, panel.unit.as_deref()))).cyan());
    }
    // The bottom border: the connection state, and a schema violation if there is one.
    let mut status = vec![
        Span::raw(" "),
        link_span(app.link(thing, &panel.name)),
        Span::raw(" "),
    ];
    if let Some(violation) = &panel.violation {
        status.push(Span::styled(
            format!("⚠ {} ", clip(violation, VALUE_CHARS)),
            Style::new().fg(Color::Red),
        ));
    }
    let border = if selected {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let frame_block = Block::bordered()
        .title(Line::from(title))
        .title_bottom(Line::from(status))
        .border_style(border);
    let Some(latest) = panel.latest() else {
        frame.render_widget(
            Paragraph::new("no value yet").dim().block(frame_block),
            area,
        );
        return;
    };
    let unit = panel.unit.as_deref();
    match mode {
        DisplayMode::Gauge => {
            let ratio = latest
                .as_f64()
                .zip(panel.range)
                .and_then(|(v, range)| gauge_ratio(v, range));
            let bounds = match panel.range {
                Some((lo, hi)) if gauge_ratio(lo, (lo, hi)).is_some() => {
                    format!("{} … {}", number(lo), number(hi))
                }
                Some((lo, hi)) => format!("{} … {} (not a usable range)", number(lo), number(hi)),
                None => "no range in the schema".to_owned(),
            };
            let ratio = ratio.unwrap_or(0.0);
            let inner = frame_block.inner(area);
            frame.render_widget(frame_block, area);
            // A one-line bar in the middle of the panel, the range under it.
            let [_, bar, range, _] = Layout::vertical([
                Constraint::Fill(1),
                Constraint::Length(1),
                Constraint::Length(1),
                Constraint::Fill(1),
            ])
            .areas(inner);
            let gauge = Gauge::default()
                .gauge_style(Style::new().fg(gauge_colour(ratio)).bg(Color::DarkGray))
                .ratio(ratio)
                .label(Span::from(show(latest, unit)).bold());
            frame.render_widget(gauge, bar.inner(Margin::new(1, 0)));
            frame.render_widget(Paragraph::new(bounds).dim().centered(), range);
        }
        DisplayMode::Chart => draw_chart(frame, app.now, panel, frame_block, area),
        DisplayMode::Value => {
            let inner = frame_block.inner(area);
            frame.render_widget(frame_block, area);
            let [_, middle, _] = Layout::vertical([
                Constraint::Fill(1),
                Constraint::Length(1),
                Constraint::Fill(1),
            ])
            .areas(inner);
            let text = Paragraph::new(Line::from(show(latest, unit)).bold()).centered();
            frame.render_widget(text, middle);
        }
    }
}

fn gauge_colour(ratio: f64) -> Color {
    // Near either end of its range a value is usually worth a look (a full pressure gauge,
    // an empty battery); the schema says nothing more.
    if (0.2..=0.7).contains(&ratio) {
        Color::Green
    } else if (0.1..=0.85).contains(&ratio) {
        Color::Yellow
    } else {
        Color::Red
    }
}

fn draw_chart(frame: &mut Frame<'_>, now: SystemTime, panel: &Panel, block: Block<'_>, area: Rect) {
    // x: seconds relative to now (−300 … 0); y: the value.
    // Values are clamped to ±CHART_MAX so that the axis span stays finite; NaN is not drawn.
    const CHART_MAX: f64 = f64::MAX / 4.0;
    let points: Vec<(f64, f64)> = panel
        .samples
        .within(CHART_WINDOW, now)
        .filter(|(_, v)| !v.is_nan())
        .map(|(at, v)| {
            let age = now.duration_since(at).unwrap_or(Duration::ZERO);
            (-age.as_secs_f64(), v.clamp(-CHART_MAX, CHART_MAX))
        })
        .collect();
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, y)| {
            (lo.min(*y), hi.max(*y))
        });
    let (lo, hi) = if lo <= hi {
        // A tenth of the span either side, at least 0.5; halving keeps it finite.
        let pad = ((hi / 2.0 - lo / 2.0) * 0.2).max(0.5);
        (
            (lo - pad).max(-2.0 * CHART_MAX),
            (hi + pad).min(2.0 * CHART_MAX),
        )
    } else {
        (0.0, 1.0)
    };
    let window = CHART_WINDOW.as_secs_f64();
    // No name, no legend: the latest value is in the panel's title, and a legend would
    // cover the newest points.
    let dataset = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(Color::Cyan))
        .data(&points);
    let chart = Chart::new(vec![dataset])
        .legend_position(None)
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([-window, 0.0])
                .labels(["-5m", "now"])
                .style(Style::new().dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([lo, hi])
                .labels([number(lo), number(hi)])
                .style(Style::new().dim()),
        );
    frame.render_widget(chart, area);
}

/// `text` followed by spaces up to `width` characters.
fn pad(text: &str, width: usize) -> String {
    format!("{text:<width$}")
}

fn clock(at: SystemTime) -> String {
    // HH:MM:SS in UTC, from the RFC 3339 form.
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(11..19).unwrap_or(&text).to_owned()
}

fn age(now: SystemTime, since: SystemTime) -> String {
    let secs = now
        .duration_since(since)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

fn draw_events(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let [timeline, stats] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(20)]).areas(area);
    let editing = app.input == Input::Filter;
    let filter = if app.filter.is_empty() && !editing {
        "none (/ to filter)".to_owned()
    } else if editing {
        format!("{}▏", clip(&app.filter, TITLE_CHARS))
    } else {
        clip(&app.filter, TITLE_CHARS)
    };
    let filter_style = if editing {
        Style::new().fg(Color::Black).bg(Color::Yellow)
    } else {
        Style::new().dim()
    };
    let title = Line::from(vec![
        Span::raw("Events · filter: "),
        Span::styled(filter, filter_style),
        Span::raw(" "),
        events_link(app),
    ]);
    let hits = app.log.query(&app.query());
    let focused = app.focus == Focus::Events;
    let selected = app.selected_event.min(hits.len().saturating_sub(1));
    // Rows up to the selection and one screen more: the list scrolls to keep it in view.
    let rows = usize::from(timeline.height).saturating_add(selected);
    let shown = hits.get(..rows.min(hits.len())).unwrap_or_default();
    // Inside the borders, and the selection mark's two columns when the list has focus.
    let width = usize::from(timeline.width.saturating_sub(if focused { 4 } else { 2 }));
    // The names get what their longest shown value needs, up to a share of the row; the
    // data gets the rest.
    let after_clock = width.saturating_sub(9);
    let longest = |texts: &mut dyn Iterator<Item = usize>| texts.max().unwrap_or(0);
    let thing_need = longest(
        &mut shown
            .iter()
            .map(|r| safe(app.title_of(&r.thing_id)).chars().count()),
    );
    let event_need = longest(&mut shown.iter().map(|r| safe(&r.event).chars().count()));
    // Together at most 60 % of the row; when they need more, each keeps its share.
    let names = (after_clock * 3 / 5).max(1);
    let (thing_width, event_width) = if thing_need + event_need <= names {
        (thing_need, event_need)
    } else {
        let thing = (names * thing_need / (thing_need + event_need)).max(names.min(8));
        (
            thing.min(thing_need),
            names.saturating_sub(thing).min(event_need),
        )
    };
    let room = after_clock.saturating_sub(thing_width + event_width + 2);
    let items: Vec<ListItem<'_>> = shown
        .iter()
        .map(|r| {
            // The JSON text escapes C0 controls; `clip` escapes DEL and C1 too.
            let data = json_preview(&r.data, room.saturating_mul(4).saturating_add(4));
            let line = Line::from(vec![
                Span::raw(clock(r.received_at)).dim(),
                Span::raw(" "),
                Span::raw(pad(
                    &clip(app.title_of(&r.thing_id), thing_width),
                    thing_width + 1,
                ))
                .cyan(),
                Span::raw(pad(&clip(&r.event, event_width), event_width + 1)).bold(),
                Span::raw(clip(&data, room)),
            ]);
            ListItem::new(line)
        })
        .collect();
    let list = if items.is_empty() && app.log.is_empty() {
        List::new([ListItem::new("no events yet").dim()])
    } else if items.is_empty() {
        List::new([ListItem::new(format!(
            "no event matches the filter ({} in the log; Esc clears it)",
            app.log.len()
        ))
        .yellow()])
    } else {
        List::new(items)
    }
    .highlight_symbol("> ")
    .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state =
        ListState::default().with_selected((focused && !hits.is_empty()).then_some(selected));
    frame.render_stateful_widget(
        list.block(block(title, editing || focused)),
        timeline,
        &mut state,
    );

    let log_stats = app.log.stats(app.now);
    let mut lines = vec![
        Line::from(format!("{}/{} shown", hits.len(), log_stats.total)),
        Line::from(format!(
            "{} events/min",
            number(log_stats.events_per_minute)
        )),
        Line::from("per Thing").underlined(),
    ];
    for (title, n) in app.counts_per_thing() {
        lines.push(Line::from(format!("{:<13}{n:>5}", clip(&title, 12))));
    }
    lines.push(Line::from("per event").underlined());
    for (event, n) in &log_stats.per_event {
        lines.push(Line::from(format!("{:<13}{n:>5}", clip(event, 12))));
    }
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title("Statistics")),
        stats,
    );
}

fn severity_label(severity: Severity) -> Span<'static> {
    match severity {
        Severity::Critical => Span::styled("CRIT ", Style::new().fg(Color::Red).bold()),
        Severity::Warning => Span::styled("WARN ", Style::new().fg(Color::Yellow)),
        _ => Span::styled("INFO ", Style::new().fg(Color::Blue)),
    }
}

fn alert_line<'a>(app: &App, alert: &Alert, since: SystemTime) -> Line<'a> {
    let state = match (alert.state, &alert.acknowledgement) {
        (AlertState::Firing, Some(_)) => "acked",
        (state, _) => state.as_str(),
    };
    let unit = app.unit_of(&alert.thing, &alert.property);
    let value = alert
        .value
        .as_ref()
        .map(|v| show(v, unit))
        .unwrap_or_default();
    Line::from(vec![
        severity_label(alert.severity),
        Span::raw(format!("{state:<9}")),
        Span::raw(format!("{:>6} ", age(app.now, since))).dim(),
        Span::raw(format!("{} ", clip(&alert.rule, TITLE_CHARS))),
        Span::raw(format!("{value} ")).bold(),
        Span::raw(clip(app.title_of(&alert.thing), TITLE_CHARS)).cyan(),
    ])
}

fn draw_alerts(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let resolved_rows = u16::try_from(app.resolved.len()).unwrap_or(u16::MAX).min(5);
    let [active_area, resolved_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(resolved_rows + 2)]).areas(area);
    let items: Vec<ListItem<'_>> = app
        .active
        .iter()
        .map(|a| ListItem::new(alert_line(app, a, a.fired_at.unwrap_or(a.active_since))))
        .collect();
    let title = format!("Alerts · {} active", app.active.len());
    let focused = app.focus == Focus::Alerts;
    let list = if items.is_empty() && app.rules == Some(0) {
        List::new([ListItem::new("no rules loaded (--rules FILE)").dim()])
    } else if items.is_empty() {
        List::new([ListItem::new("all clear").green()])
    } else {
        List::new(items)
    }
    .block(block(title, focused))
    .highlight_symbol("> ")
    .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let selected = app.selected_alert.min(app.active.len().saturating_sub(1));
    let mut state =
        ListState::default().with_selected((focused && !app.active.is_empty()).then_some(selected));
    frame.render_stateful_widget(list, active_area, &mut state);

    let resolved: Vec<ListItem<'_>> = app
        .resolved
        .iter()
        .map(|a| ListItem::new(alert_line(app, a, a.resolved_at.unwrap_or(a.active_since))).dim())
        .collect();
    frame.render_widget(
        List::new(resolved).block(Block::bordered().title("Recently resolved")),
        resolved_area,
    );
}

fn draw_help(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    match (&app.overlay, app.input) {
        (Some(_), _) => keys.extend([("Esc", "close"), ("↑↓", "scroll"), ("q", "quit")]),
        (None, Input::Filter) => keys.extend([
            ("type", "thing:WORD event:NAME text"),
            ("Enter", "apply"),
            ("Esc", "clear"),
        ]),
        (None, Input::Normal) => {
            keys.extend([
                ("q", "quit"),
                ("Tab", "focus"),
                ("↑↓", "select"),
                ("m", "panel mode"),
                ("/", "filter events"),
            ]);
            if !app.filter.is_empty() {
                keys.push(("Esc", "clear filter"));
            }
            if app.focus == Focus::Events {
                keys.push(("Enter", "event details"));
            }
            keys.extend([("a", "acknowledge alert"), ("n", "notices")]);
        }
    }
    let mut spans = Vec::new();
    for (key, what) in keys {
        spans.push(Span::styled(
            format!(" {key} "),
            Style::new().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn notice_kind(kind: NoticeKind) -> Span<'static> {
    let style = match kind {
        NoticeKind::Fired | NoticeKind::Escalated => Style::new().fg(Color::Red).bold(),
        NoticeKind::Resolved => Style::new().fg(Color::Green),
        NoticeKind::Acknowledged => Style::new().fg(Color::Cyan),
        NoticeKind::Problem | NoticeKind::Warning => Style::new().fg(Color::Yellow),
        NoticeKind::Info => Style::new(),
    };
    Span::styled(format!("{:<13}", kind.as_str().to_uppercase()), style)
}

/// The status line: the most relevant notice ([`App::status_notice`]) and how many there are.
fn draw_status(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let count = match app.notices.len() {
        0 => String::new(),
        1 => " 1 notice: n ".to_owned(),
        n => format!(" {n} notices: n "),
    };
    let count_width = u16::try_from(count.chars().count()).unwrap_or(u16::MAX);
    let [text_area, count_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(count_width)]).areas(area);
    frame.render_widget(Paragraph::new(count).dim().right_aligned(), count_area);
    let Some(notice) = app.status_notice() else {
        return;
    };
    // Time, kind, then as much of the text as fits in the rows given (wrapped, the next
    // rows indented under the text); the notices panel has it all.
    let width = usize::from(text_area.width);
    let room = width.saturating_sub(STATUS_PREFIX);
    let rows = usize::from(text_area.height).max(1);
    let text = clip(&notice.text, room.saturating_mul(rows));
    let mut rest = text.as_str();
    let mut lines = Vec::new();
    for row in 0..rows {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = split_row(rest, room, row + 1 < rows);
        rest = tail;
        let lead = if row == 0 {
            vec![
                Span::raw(format!(" {} ", clock(notice.at))).dim(),
                notice_kind(notice.kind),
            ]
        } else {
            vec![Span::raw(" ".repeat(STATUS_PREFIX))]
        };
        lines.push(Line::from(
            [lead, vec![Span::raw(head.to_owned())]].concat(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), text_area);
}

/// The first row of `text` in `width` characters and the rest: when more rows follow
/// (`wrap`) and the text goes on, the row ends after its last space, if it has one.
fn split_row(text: &str, width: usize, wrap: bool) -> (&str, &str) {
    let end = text
        .char_indices()
        .nth(width)
        .map_or(text.len(), |(at, _)| at);
    let (head, tail) = text.split_at(end);
    if !wrap || tail.is_empty() {
        return (head, tail);
    }
    match head.rfind(' ') {
        Some(space) if space > 0 => (&text[..=space], &text[space + 1..]),
        _ => (head, tail),
    }
}

/// A box over the middle of the screen, cleared, with a border and this title.
fn popup(frame: &mut Frame<'_>, title: Line<'static>) -> Rect {
    let area = frame.area();
    let width = area
        .width
        .saturating_sub(area.width / 8)
        .max(area.width.min(20));
    let height = area
        .height
        .saturating_sub(area.height / 6)
        .max(area.height.min(5));
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let outer = Block::bordered()
        .title(title)
        .title_bottom(Line::from(" Esc closes · ↑↓ PgUp PgDn scroll ").dim())
        .border_style(Style::new().fg(Color::Cyan));
    let inner = outer.inner(popup);
    frame.render_widget(outer, popup);
    inner
}

/// The notices panel: every notice kept, newest first, in full (wrapped).
fn draw_notices(frame: &mut Frame<'_>, app: &App, scroll: u16) {
    let inner = popup(frame, Line::from(" Notices · newest first ").bold());
    let lines: Vec<Line<'_>> = if app.notices.is_empty() {
        vec![Line::from("no notices yet").dim()]
    } else {
        app.notices
            .iter()
            .rev()
            .map(|n| {
                Line::from(vec![
                    Span::raw(format!("{} ", clock(n.at))).dim(),
                    notice_kind(n.kind),
                    // Kept sanitized and cut; escaped again in case the state was set by hand.
                    Span::raw(safe(&n.text).into_owned()),
                ])
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        inner,
    );
}

/// The detail view of one event: where it came from and its whole data as indented JSON.
fn draw_event(frame: &mut Frame<'_>, app: &App, record: &EventRecord, scroll: u16) {
    let title = app.title_of(&record.thing_id);
    let inner = popup(
        frame,
        Line::from(format!(
            " {} · {} ",
            clip(&record.event, TITLE_CHARS),
            clip(title, TITLE_CHARS)
        ))
        .bold(),
    );
    let field = |name: &'static str, value: String| {
        Line::from(vec![
            Span::raw(format!("{name:<10}")).dim(),
            Span::raw(value),
        ])
    };
    let mut lines = vec![
        field(
            "Thing",
            format!("{} ({})", safe(title), safe(&record.thing_id)),
        ),
        field("Event", safe(&record.event).into_owned()),
        field(
            "Received",
            humantime::format_rfc3339_millis(record.received_at).to_string(),
        ),
        field(
            "Event id",
            record
                .event_id
                .as_deref()
                .map_or_else(|| "none".to_owned(), |id| safe(id).into_owned()),
        ),
        Line::from(""),
    ];
    for line in pretty_json(&record.data, DETAIL_BYTES).lines() {
        // JSON escapes the C0 controls; DEL, C1 and bidi controls need escaping here.
        lines.push(Line::from(safe(line).into_owned()));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        inner,
    );
}

/// `value` as indented JSON, cut to at most `max_bytes` bytes (`…` marks a cut).
fn pretty_json(value: &Value, max_bytes: usize) -> String {
    if crate::history::cost(value, max_bytes) > max_bytes {
        // Too big to indent whole: its compact start.
        return json_preview(value, max_bytes);
    }
    serde_json::to_string_pretty(value).unwrap_or_else(|_| json_preview(value, max_bytes))
}

/// Draws `app` on an off-screen `width` × `height` terminal and returns its rows as text
/// (one string per row, one symbol per cell), for tests and fuzzing.
///
pub fn render_rows(app: &App, width: u16, height: u16) -> Vec<String> {
    // The off-screen backend cannot fail (its error type is `Infallible`).
    let Ok(mut terminal) =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(width, height));
    let Ok(_) = terminal.draw(|frame| draw(frame, app));
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ratatui::crossterm::event::KeyCode;
    use serde_json::json;
    use wot_alerts::{Engine, Format, PropertyUpdate as AlertUpdate, RuleSet};
    use wot_events::EventRecord;

    use super::*;
    use crate::app::tests::{app_with_things, press, t, update};
    use crate::app::{EVENTS, Message};

    fn render(app: &App, width: u16, height: u16) -> Vec<String> {
        render_rows(app, width, height)
    }

    fn screen(app: &App) -> String {
        render(app, 140, 45).join("\n")
    }

    fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{}", lines.join("\n")))
    }

    /// The pump selected, with a pressure, a minute of flow values and its running state.
    fn pump_app() -> App {
        let mut app = app_with_things();
        app.update(press(KeyCode::Down));
        app.update(update("pump-1", "pressure", json!(4.2), t(590)));
        for i in 0..60u32 {
            let flow = 30.0 + f64::from(i % 10);
            app.update(update("pump-1", "flow", json!(flow), t(540 + u64::from(i))));
        }
        app.update(update("pump-1", "running", json!(true), t(500)));
        app
    }

    #[test]
    fn things_list_marks_the_selected_thing() {
        let app = pump_app();
        let lines = render(&app, 140, 45);
        assert!(lines[2].starts_with("│> Water pump "), "{}", lines[2]);
        assert!(lines[1].starts_with("│  Cold-room fridge "), "{}", lines[1]);
        assert!(line_with(&lines, "Water pump · properties").contains("┌"));
    }

    #[test]
    fn gauge_panel_shows_value_unit_and_range() {
        let app = pump_app();
        let lines = render(&app, 140, 45);
        assert!(line_with(&lines, "Outlet pressure").contains("[gauge auto]"));
        // 4.2 of 0..10 fills about 42 % of the bar: the gauge draws filled cells.
        assert!(line_with(&lines, "4.2 bar").contains('█'));
        assert!(screen(&app).contains("0 … 10"));
    }

    #[test]
    fn chart_panel_plots_the_last_five_minutes() {
        let app = pump_app();
        let lines = render(&app, 140, 45);
        assert!(line_with(&lines, " Flow ").contains("[chart auto]"));
        assert!(line_with(&lines, "-5m").contains("now"));
        let braille = lines
            .iter()
            .flat_map(|l| l.chars())
            .filter(|c| ('\u{2801}'..='\u{28ff}').contains(c))
            .count();
        assert!(braille > 5, "no line drawn");
        // The axis labels are the data range padded by a margin (30..39 → 29.1..39.9).
        assert!(screen(&app).contains("39.9"));
    }

    #[test]
    fn value_panel_and_mode_override() {
        let mut app = pump_app();
        let lines = render(&app, 140, 45);
        assert!(line_with(&lines, " Running ").contains("[value auto]"));
        assert!(line_with(&lines, "true").contains("  true  "));
        // Select the pressure panel and switch it to the value display.
        app.update(press(KeyCode::Tab));
        app.update(press(KeyCode::Char('m')));
        app.update(press(KeyCode::Char('m')));
        let lines = render(&app, 140, 45);
        assert!(line_with(&lines, "Outlet pressure").contains("[value]"));
        let value = line_with(&lines, "4.2 bar");
        assert!(
            !value.contains('█') && value.contains("  4.2 bar  "),
            "{value}"
        );
    }

    #[test]
    fn panels_show_their_connection_state() {
        let mut app = pump_app();
        let pump = "urn:wot-live:sim:pump-1".to_owned();
        let lines = render(&app, 140, 45);
        // The state sits on each panel's bottom border.
        assert_eq!(
            line_with(&lines, "◌ connecting")
                .matches("◌ connecting")
                .count(),
            3
        );
        app.update(Message::Link {
            thing: pump.clone(),
            label: "*".into(),
            link: Link::Connected,
        });
        app.update(Message::Link {
            thing: pump,
            label: "flow".into(),
            link: Link::Reconnecting { attempt: 2 },
        });
        let lines = render(&app, 140, 45);
        let bottom = line_with(&lines, "● connected");
        assert!(bottom.contains("└ ● connected ─"), "{bottom}");
        // Pressure, flow, running from left to right.
        let (connected, reconnecting) = (
            bottom.find("● connected").expect("pressure"),
            bottom.find("◐ reconnecting #2").expect("flow"),
        );
        assert!(connected < reconnecting);
        assert_eq!(bottom.matches("● connected").count(), 2);
    }

    #[test]
    fn a_panel_without_values_says_so() {
        let app = app_with_things();
        assert!(screen(&app).contains("no value yet"));
    }

    fn event(thing: &str, name: &str, data: Value, at: u64) -> Message {
        Message::Event(EventRecord {
            thing_id: format!("urn:wot-live:sim:{thing}").into(),
            thing_title: "".into(),
            event: name.into(),
            data: data.into(),
            event_id: Some(at.to_string().into()),
            received_at: t(at),
        })
    }

    fn app_with_events() -> App {
        let mut app = app_with_things();
        app.update(event(
            "fridge-1",
            "doorOpened",
            json!({"temperature": 3.6}),
            500,
        ));
        app.update(event(
            "pump-1",
            "fault",
            json!({"code": "overpressure"}),
            560,
        ));
        app.update(event(
            "fridge-1",
            "doorClosed",
            json!({"openTicks": 12}),
            590,
        ));
        for thing in ["urn:wot-live:sim:fridge-1", "urn:wot-live:sim:pump-1"] {
            app.update(Message::Link {
                thing: thing.into(),
                label: EVENTS.into(),
                link: Link::Connected,
            });
        }
        app
    }

    #[test]
    fn event_timeline_is_newest_first_with_statistics() {
        let app = app_with_events();
        let lines = render(&app, 140, 45);
        let row = |needle| lines.iter().position(|l| l.contains(needle)).expect(needle);
        assert!(row("doorClosed") < row("fault") && row("fault") < row("doorOpened"));
        let closed = line_with(&lines, "doorClosed");
        // Names get the width they need: no cut at a fixed number of characters.
        assert!(closed.contains("Cold-room fridge doorClosed {"), "{closed}");
        let fault = line_with(&lines, "overpr");
        assert!(fault.contains("Water pump       fault      {"), "{fault}");
        assert!(closed.contains("{\"openTicks\":12}"), "{closed}");
        assert!(closed.contains("08:09:50"), "{closed}");
        assert!(line_with(&lines, "Events · filter").contains("● 2/2 event streams"));
        assert!(screen(&app).contains("3/3 shown"));
        assert!(screen(&app).contains("│Water pump       1│"));
        assert!(screen(&app).contains("events/min"));
    }

    #[test]
    fn filter_box_narrows_the_timeline() {
        let mut app = app_with_events();
        app.update(press(KeyCode::Char('/')));
        for c in "thing:fridge".chars() {
            app.update(press(KeyCode::Char(c)));
        }
        let lines = render(&app, 140, 45);
        assert!(line_with(&lines, "Events · filter").contains("thing:fridge▏"));
        assert!(line_with(&lines, " type ").contains("Enter"));
        app.update(press(KeyCode::Enter));
        let text = screen(&app);
        assert!(text.contains("2/3 shown"));
        assert!(!text.contains("overpressure"));
    }

    /// Real alerts, from the bundled rules in a `wot-alerts` engine.
    fn alerts_at(now: SystemTime) -> (Vec<Alert>, Vec<Alert>) {
        let rules = RuleSet::from_str(
            include_str!("../rules/default.yaml"),
            Format::Yaml,
            "rules/default.yaml",
        )
        .expect("bundled rules load");
        let start = now - Duration::from_secs(60);
        let mut engine = Engine::new();
        for rule in rules.rules() {
            engine.add_rule(rule.clone(), start).expect("valid rule");
        }
        let feed = |engine: &mut Engine, secs: u64, thing: &str, property: &str, value: Value| {
            let thing = format!("urn:wot-live:sim:{thing}");
            let at = start + Duration::from_secs(secs);
            let _ = engine.update(at, &AlertUpdate::new(thing, property, value));
        };
        feed(&mut engine, 0, "solar-1", "batteryLevel", json!(15.0));
        feed(&mut engine, 10, "solar-1", "batteryLevel", json!(40.0));
        // Open for 30 s: fires at 48.
        feed(&mut engine, 18, "fridge-1", "doorOpen", json!(true));
        feed(&mut engine, 30, "pump-1", "pressure", json!(9.1));
        feed(&mut engine, 58, "pump-1", "pressure", json!(9.3));
        let _ = engine.tick(now);
        (
            engine.active_alerts(),
            engine.history().iter().map(|a| Alert::clone(a)).collect(),
        )
    }

    #[test]
    fn alerts_panel_shows_severity_state_age_value_and_resolved() {
        let mut app = app_with_things();
        let (active, resolved) = alerts_at(app.now);
        app.update(Message::Alerts { active, resolved });
        let lines = render(&app, 140, 45);
        let pump = line_with(&lines, "pump-overpressure");
        let expected = "CRIT firing      30s pump-overpressure 9.3 bar Water pump";
        assert!(pump.contains(expected), "{pump}");
        let door = line_with(&lines, "fridge-door-open");
        let expected = "INFO firing      12s fridge-door-open true Cold-room fridge";
        assert!(door.contains(expected), "{door}");
        let battery = line_with(&lines, "solar-battery-low");
        // The solar inverter is not on this dashboard: no unit, its id instead of a title.
        let expected = "WARN resolved    50s solar-battery-low 40 urn:wot-live:sim";
        assert!(battery.contains(expected), "{battery}");
        assert!(line_with(&lines, "Alerts · 2 active").contains('┌'));
        assert!(screen(&app).contains("Recently resolved"));
    }

    #[test]
    fn acknowledge_key_names_the_selected_alert() {
        let mut app = app_with_things();
        let (active, resolved) = alerts_at(app.now);
        app.update(Message::Alerts { active, resolved });
        for _ in 0..3 {
            app.update(press(KeyCode::Tab)); // properties, events, alerts
        }
        let lines = render(&app, 140, 45);
        let first = line_with(&lines, "│> INFO").to_owned();
        let command = app.update(press(KeyCode::Char('a')));
        let Some(crate::app::Command::Acknowledge { rule, .. }) = command else {
            panic!("no acknowledge command: {command:?}");
        };
        assert!(first.contains(&rule), "selected line {first} is not {rule}");
    }

    #[test]
    fn no_alerts_is_all_clear_and_help_is_always_there() {
        let app = app_with_things();
        let lines = render(&app, 140, 45);
        assert!(screen(&app).contains("all clear"));
        let help = lines.last().expect("lines");
        for key in [
            "q  quit",
            "m  panel mode",
            "/  filter events",
            "a  acknowledge alert",
        ] {
            assert!(help.contains(key), "{key} missing from {help}");
        }
        // Still drawn on a small terminal, without panicking.
        let small = render(&app, 60, 20);
        assert!(small.last().expect("lines").contains("quit"));
    }

    /// A TD with hostile numbers and text, as a real Thing might send it.
    fn hostile_thing() -> crate::app::ThingView {
        let td = json!({
            "@context": "https://www.w3.org/2022/wot/td/v1.1",
            "id": "urn:hostile\u{1b}[2J",
            "title": "Evil\u{1b}]0;pwned\u{7}\u{1b}[31m\r\nThing\u{202e}",
            "securityDefinitions": {"nosec_sc": {"scheme": "nosec"}},
            "security": "nosec_sc",
            "properties": {
                "huge": {"type": "number", "minimum": -1e308, "maximum": 1e308,
                         "unit": "b\u{1b}[5mar",
                         "forms": [{"href": "http://127.0.0.1:9/huge"}]},
                "top": {"type": "number", "minimum": 0, "maximum": 1.7976931348623157e308,
                        "forms": [{"href": "http://127.0.0.1:9/top"}]},
                "flat": {"type": "integer", "minimum": 5, "maximum": 5,
                         "forms": [{"href": "http://127.0.0.1:9/flat"}]},
                "t\u{1b}[1mext": {"type": "string", "title": "Te\u{9b}xt\u{7f}",
                                  "forms": [{"href": "http://127.0.0.1:9/text"}]},
                "blob": {"forms": [{"href": "http://127.0.0.1:9/blob"}]}
            }
        });
        let bytes = serde_json::to_vec(&td).expect("JSON");
        let thing = wot_events::ConsumedThing::from_slice(&bytes, None).expect("a valid TD");
        crate::app::ThingView::from_td(thing.thing())
    }

    fn hostile_update(property: &str, value: Value, at: SystemTime) -> Message {
        Message::Property(wot_events::PropertyUpdate {
            thing_id: "urn:hostile\u{1b}[2J".into(),
            property: property.into(),
            value: value.into(),
            timestamp: at,
            event_id: None,
            schema_violation: Some("bad \u{1b}[1mvalue\u{7}".into()),
        })
    }

    fn assert_clean(lines: &[String]) {
        for line in lines {
            assert!(
                !line.chars().any(crate::sanitize::is_unsafe),
                "a control character reached the screen: {line:?}"
            );
        }
    }

    /// Every mode of every panel, at several sizes.
    fn render_all_modes(app: &mut App) -> Vec<String> {
        let mut screens = Vec::new();
        for _ in 0..3 {
            for (width, height) in [(140, 45), (60, 20), (12, 6), (1, 1), (0, 0)] {
                let lines = render(app, width, height);
                assert_clean(&lines);
                screens.push(lines.join("\n"));
            }
            for panel in app.things.iter_mut().flat_map(|t| t.panels.iter_mut()) {
                panel.chosen = Some(match panel.mode() {
                    DisplayMode::Gauge => DisplayMode::Chart,
                    DisplayMode::Chart => DisplayMode::Value,
                    DisplayMode::Value => DisplayMode::Gauge,
                });
            }
        }
        screens
    }

    #[test]
    fn a_1e308_range_and_extreme_values_draw_without_panicking() {
        let mut app = App::new(t(600));
        app.update(Message::Thing(hostile_thing()));
        app.update(press(KeyCode::Tab));
        let big = "x\u{1b}[2J".repeat(100_000);
        let array = Value::Array(vec![json!(1e308); 100_000]);
        let object: serde_json::Map<String, Value> = (0..10_000)
            .map(|i| (format!("k\u{1b}{i}"), json!(i)))
            .collect();
        for (i, value) in [1e308, -1e308, f64::MAX, f64::MIN, 0.0, -0.0, 5e-324, 1e-300]
            .into_iter()
            .enumerate()
        {
            let at = t(500 + i as u64);
            for property in ["huge", "top", "flat"] {
                app.update(hostile_update(property, json!(value), at));
            }
        }
        app.update(hostile_update("flat", json!(u64::MAX), t(590)));
        app.update(hostile_update("flat", json!(i64::MIN), t(591)));
        app.update(hostile_update("t\u{1b}[1mext", json!(big), t(592)));
        app.update(hostile_update("blob", array, t(593)));
        app.update(hostile_update("blob", Value::Object(object), t(594)));
        app.update(Message::Event(EventRecord {
            thing_id: "urn:hostile\u{1b}[2J".into(),
            thing_title: "Evil\u{1b}]0;x\u{7}".into(),
            event: "al\u{1b}[31mert".into(),
            data: json!({"msg": "\u{1b}]52;c;ZXZpbA==\u{7}\u{9b}6n", "n": 1e308}).into(),
            event_id: Some("\u{1b}[A".into()),
            received_at: t(595),
        }));
        app.update(Message::Link {
            thing: "urn:hostile\u{1b}[2J".into(),
            label: "*".into(),
            link: Link::Closed(format!("server said \u{1b}[2J{}", "!".repeat(100_000))),
        });
        app.update(Message::Notice {
            kind: crate::app::NoticeKind::Problem,
            text: format!("\u{1b}]0;title\u{7}{}", "n".repeat(1_000_000)),
        });
        let screens = render_all_modes(&mut app);
        let first = &screens[0];
        // The gauge of the 1e308 range draws its value and range compactly.
        assert!(first.contains("1.00e308"), "{first}");
        assert!(first.contains("-1.00e308 … 1.00e308"), "{first}");
        assert!(
            first.contains("Evil\\e]0;pwned\\x07\\e[31m\\r\\nThing\\u{202e}"),
            "{first}"
        );
        // A gauge without a range (min == max is no range) says so rather than drawing a bar.
        assert!(screens.iter().any(|s| s.contains("no range in the schema")));
        // The state kept only bounded copies of the huge values.
        let text = app.things[0]
            .panels
            .iter()
            .find(|p| p.name.starts_with("t\u{1b}"))
            .expect("text");
        let kept = text.latest().and_then(Value::as_str).expect("a string");
        assert!(kept.len() <= 4096, "{}", kept.len());
        assert!(
            app.notices
                .back()
                .is_some_and(|n| n.text.chars().count() <= 512)
        );
    }

    #[test]
    fn gauge_ratio_is_finite_or_absent() {
        assert_eq!(gauge_ratio(1e308, (-1e308, 1e308)), Some(1.0));
        assert_eq!(gauge_ratio(0.0, (-1e308, 1e308)), Some(0.5));
        assert_eq!(gauge_ratio(f64::MAX, (f64::MIN, f64::MAX)), Some(1.0));
        assert_eq!(gauge_ratio(f64::INFINITY, (0.0, 1.0)), Some(1.0));
        assert_eq!(gauge_ratio(f64::NEG_INFINITY, (0.0, 1.0)), Some(0.0));
        assert_eq!(gauge_ratio(2.5, (0.0, 10.0)), Some(0.25));
        for (value, range) in [
            (f64::NAN, (0.0, 1.0)),
            (1.0, (f64::NAN, 1.0)),
            (1.0, (0.0, f64::INFINITY)),
            (1.0, (f64::NEG_INFINITY, 0.0)),
            (1.0, (5.0, 5.0)),
            (1.0, (10.0, 1.0)),
        ] {
            assert_eq!(gauge_ratio(value, range), None, "{value} in {range:?}");
        }
    }

    #[test]
    fn numbers_are_compact_whatever_their_size() {
        let cases = [
            (4.2, "4.2"),
            (1313.0, "1313"),
            (-0.0, "0"),
            (0.001, "1.00e-3"),
            (1e308, "1.00e308"),
            (f64::MIN, "-1.80e308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (value, text) in cases {
            assert_eq!(number(value), text);
        }
    }

    #[test]
    fn panels_with_nan_infinite_and_inverted_ranges_draw() {
        // Ranges a TD cannot express (JSON has no NaN) but the state can hold.
        let mut app = App::new(t(600));
        let mut view = crate::app::ThingView {
            id: "urn:x".into(),
            title: "X".into(),
            panels: Vec::new(),
        };
        for (i, range) in [
            Some((f64::NAN, f64::NAN)),
            Some((f64::NEG_INFINITY, f64::INFINITY)),
            Some((1.0, -1.0)),
            Some((3.0, 3.0)),
            None,
        ]
        .into_iter()
        .enumerate()
        {
            view.panels.push(crate::app::Panel::new(
                format!("p{i}"),
                format!("P{i}"),
                Some("u".into()),
                range,
                DisplayMode::Gauge,
            ));
        }
        app.update(Message::Thing(view));
        for i in 0..5 {
            for (s, v) in [json!(1e308), json!(-1e308), json!(0.5)]
                .into_iter()
                .enumerate()
            {
                app.update(Message::Property(wot_events::PropertyUpdate {
                    thing_id: "urn:x".into(),
                    property: format!("p{i}").into(),
                    value: v.into(),
                    timestamp: t(590 + s as u64),
                    event_id: None,
                    schema_violation: None,
                }));
            }
        }
        // Out-of-range selections too.
        app.selected_thing = 7;
        app.selected_panel = 99;
        app.selected_alert = 5;
        render_all_modes(&mut app);
        app.selected_thing = 0;
        let screens = render_all_modes(&mut app);
        assert!(
            screens[0].contains("NaN … NaN (not a usable range)"),
            "{}",
            screens[0]
        );
        assert!(
            screens[0].contains("1 … -1 (not a usable range)"),
            "{}",
            screens[0]
        );
    }

    fn notice(kind: crate::app::NoticeKind, text: &str) -> Message {
        Message::Notice {
            kind,
            text: text.into(),
        }
    }

    /// The (first) status line: the one that counts the notices.
    fn status_row(lines: &[String]) -> &str {
        lines
            .iter()
            .rev()
            .find(|l| l.contains(" notices: n") || l.contains(" notice: n"))
            .map_or("", String::as_str)
    }

    #[test]
    fn notices_have_their_own_line_with_their_kind_and_open_in_full() {
        use crate::app::{NoticeKind, Overlay};
        let mut app = app_with_things();
        let error = format!(
            "reading the event stream failed (http://127.0.0.1:41234/things/pump-1/events): \
             connection refused by 127.0.0.1:41234 {}; the end of the message",
            "and a long explanation ".repeat(8)
        );
        app.update(notice(NoticeKind::Info, "not watching: something"));
        app.update(notice(NoticeKind::Problem, &error));
        let lines = render(&app, 160, 48);
        let status = status_row(&lines);
        assert!(status.contains("PROBLEM"), "{status}");
        // The cause is there, not cut after the host.
        assert!(
            status.contains("(http://127.0.0.1:41234/things/pump-1/events): connection refused"),
            "{status}"
        );
        assert!(status.trim_end().ends_with("2 notices: n"), "{status}");
        // A long notice takes a second row, under its text.
        let second = &lines[lines.len() - 2];
        assert!(
            second.starts_with(&" ".repeat(23)) && second.contains("explanation"),
            "{second}"
        );
        assert_eq!(lines[lines.len() - 3], *status);
        let help = lines.last().expect("lines");
        assert!(
            help.contains("q  quit") && !help.contains("refused"),
            "{help}"
        );

        app.update(press(KeyCode::Char('n')));
        assert_eq!(app.overlay, Some(Overlay::Notices { scroll: 0 }));
        let panel = render(&app, 160, 48).join("\n");
        assert!(panel.contains("Notices · newest first"), "{panel}");
        // Wrapped, but all of it: the end of the long message and the older notice too.
        assert!(panel.contains("the end of the message"), "{panel}");
        assert!(panel.contains("INFO") && panel.contains("not watching: something"));
        assert!(
            panel.find("PROBLEM") < panel.find("INFO"),
            "newest first: {panel}"
        );
        app.update(press(KeyCode::Esc));
        assert_eq!(app.overlay, None);
        assert!(!screen(&app).contains("Notices · newest first"));
    }

    /// The notifications of a `pump-overpressure` alert that fires at `t(600)` and resolves at
    /// `t(610)`, from the bundled rules in a `wot-alerts` engine.
    fn pump_notifications() -> Vec<std::sync::Arc<wot_alerts::Notification>> {
        let rules = RuleSet::from_str(
            include_str!("../rules/default.yaml"),
            Format::Yaml,
            "rules/default.yaml",
        )
        .expect("bundled rules load");
        let mut engine = Engine::new();
        for rule in rules.rules() {
            engine.add_rule(rule.clone(), t(590)).expect("valid rule");
        }
        let pump = "urn:wot-live:sim:pump-1";
        let mut out = Vec::new();
        for (at, pressure) in [(600, 8.0), (610, 5.5)] {
            let update = AlertUpdate::new(pump, "pressure", json!(pressure));
            out.extend(engine.update(t(at), &update));
        }
        out.into_iter().map(std::sync::Arc::new).collect()
    }

    #[test]
    fn a_resolved_alert_reads_resolved_and_an_acknowledgement_stays_a_while() {
        use crate::app::{NOTICE_HOLD, NoticeKind};
        let mut app = app_with_things();
        let notifications = pump_notifications();
        let kinds: Vec<&str> = notifications.iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["fired", "resolved"]);
        app.update(Message::Notification(notifications[0].clone()));
        let lines = render(&app, 160, 48);
        let status = status_row(&lines);
        assert!(
            status.contains("FIRED        pump-overpressure on Water pump: pump outlet pressure 8"),
            "{status}"
        );
        app.update(Message::Tick(t(610)));
        app.update(Message::Notification(notifications[1].clone()));
        let lines = render(&app, 160, 48);
        let status = status_row(&lines);
        assert!(
            status.contains("RESOLVED     pump-overpressure"),
            "{status}"
        );
        assert!(!status.contains("FIRED"), "{status}");

        // The user acknowledges; the alert manager's own notification of it and a new alert
        // elsewhere follow at once.
        let ack = app.alert_text("fridge-overheat", "urn:wot-live:sim:fridge-1", None);
        app.update(notice(NoticeKind::Acknowledged, &ack));
        app.update(notice(NoticeKind::Acknowledged, &ack));
        app.update(notice(
            NoticeKind::Fired,
            "air-co2-high on Air: CO2 at 1300 ppm",
        ));
        app.update(notice(NoticeKind::Problem, "a stream failed"));
        assert_eq!(
            app.notices.len(),
            5,
            "the same acknowledgement is kept once"
        );
        let lines = render(&app, 160, 48);
        let status = status_row(&lines);
        assert!(
            status.contains("ACKNOWLEDGED fridge-overheat on Cold-room fridge"),
            "{status}"
        );
        // Once the hold is over, the most relevant recent notice: alerts before problems.
        app.update(Message::Tick(t(610) + NOTICE_HOLD + Duration::from_secs(1)));
        app.update(notice(
            NoticeKind::Fired,
            "air-co2-high on Air: CO2 at 1400 ppm",
        ));
        app.update(notice(NoticeKind::Problem, "another stream failed"));
        let lines = render(&app, 160, 48);
        assert!(status_row(&lines).contains("CO2 at 1400 ppm"), "{lines:?}");
        // Long after, simply the newest.
        app.update(Message::Tick(t(700)));
        let lines = render(&app, 160, 48);
        assert!(status_row(&lines).contains("another stream failed"));
    }

    #[test]
    fn charts_carry_their_latest_value_in_the_title_and_no_legend() {
        let app = pump_app();
        let lines = render(&app, 160, 48);
        let title = line_with(&lines, " Flow ");
        assert!(title.contains("Flow [chart auto] 39 L/min"), "{title}");
        // The value is nowhere else: no legend box over the newest points.
        let mentions = lines.iter().filter(|l| l.contains("39 L/min")).count();
        assert_eq!(mentions, 1, "{}", lines.join("\n"));
        // The newest points are drawn up to the chart's right edge.
        let (start, end) = {
            let title = lines
                .iter()
                .position(|l| l.contains(" Flow "))
                .expect("title");
            (title + 1, title + 12)
        };
        let flow = title.find(" Flow ").expect("flow");
        let right_edge = title[flow..]
            .find('┐')
            .map(|b| title[..flow + b].chars().count())
            .expect("border");
        let newest_drawn = lines[start..end].iter().any(|l| {
            l.chars()
                .nth(right_edge - 1)
                .is_some_and(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
        });
        assert!(newest_drawn, "{}", lines.join("\n"));
    }

    #[test]
    fn enter_opens_the_selected_event_in_full_and_esc_closes_it() {
        use crate::app::Overlay;
        let mut app = app_with_events();
        app.update(event(
            "pump-1",
            "fault",
            json!({"code": "dry-run", "detail": {"note": "evil \u{1b}]0;x\u{7}\u{9b}2J \u{202e}"}, "list": [1, 2]}),
            595,
        ));
        app.update(press(KeyCode::Tab)); // properties
        app.update(press(KeyCode::Tab)); // events
        let lines = render(&app, 160, 48);
        assert!(lines.last().expect("help").contains("Enter  event details"));
        assert!(line_with(&lines, "│> 08:").contains("dry-run"));
        app.update(press(KeyCode::Down));
        app.update(press(KeyCode::Down)); // the doorClosed, then the fault before it
        let lines = render(&app, 160, 48);
        assert!(line_with(&lines, "│> 08:").contains("overpr"), "{lines:?}");
        app.update(press(KeyCode::Up));
        app.update(press(KeyCode::Up));
        app.update(press(KeyCode::Enter));
        let Some(Overlay::Event { record, .. }) = &app.overlay else {
            panic!("no detail view: {:?}", app.overlay);
        };
        assert_eq!(record.event.as_str(), "fault");
        let lines = render(&app, 160, 48);
        assert_clean(&lines);
        let text = lines.join("\n");
        assert!(text.contains("fault · Water pump"), "{text}");
        assert!(
            text.contains("Thing     Water pump (urn:wot-live:sim:pump-1)"),
            "{text}"
        );
        assert!(text.contains(r#""code": "dry-run","#), "{text}");
        assert!(
            text.contains(r#"    "note": "evil \u001b]0;x\u0007\x9b2J \u{202e}""#),
            "{text}"
        );
        app.update(press(KeyCode::Esc));
        assert_eq!(app.overlay, None);
        // Enter elsewhere opens nothing.
        app.update(press(KeyCode::Tab));
        app.update(press(KeyCode::Enter));
        assert_eq!(app.overlay, None);
    }

    #[test]
    fn an_empty_result_says_whether_the_filter_or_the_log_is_empty() {
        let app = app_with_things();
        assert!(screen(&app).contains("no events yet"));
        let mut app = app_with_events();
        app.filter = "thing:boiler".into();
        let text = render(&app, 160, 48).join("\n");
        assert!(
            text.contains("no event matches the filter (3 in the log; Esc clears it)"),
            "{text}"
        );
        assert!(!text.contains("no events yet"));
    }

    #[test]
    fn the_mode_key_skips_displays_that_cannot_show_the_property() {
        use crate::app::NoticeKind;
        let mut app = pump_app();
        app.update(press(KeyCode::Tab)); // the pump's properties: pressure, flow, running
        app.update(press(KeyCode::Down)); // flow: numbers, no range
        let mut seen = Vec::new();
        for _ in 0..4 {
            app.update(press(KeyCode::Char('m')));
            seen.push(app.things[1].panels[1].mode());
            assert!(!screen(&app).contains("no range in the schema"));
        }
        assert_eq!(
            seen,
            [
                DisplayMode::Value,
                DisplayMode::Chart,
                DisplayMode::Value,
                DisplayMode::Chart
            ]
        );
        app.update(press(KeyCode::Down)); // running: a boolean
        app.update(press(KeyCode::Char('m')));
        assert_eq!(app.things[1].panels[2].mode(), DisplayMode::Value);
        let last = app.notices.back().expect("a notice");
        assert_eq!(last.kind, NoticeKind::Info);
        assert!(
            last.text
                .contains("Running: only the value display (not a number"),
            "{}",
            last.text
        );
        app.update(press(KeyCode::Up)); // flow again
        app.update(press(KeyCode::Up)); // pressure: numbers in 0..10
        for expected in [DisplayMode::Chart, DisplayMode::Value, DisplayMode::Gauge] {
            app.update(press(KeyCode::Char('m')));
            assert_eq!(app.things[1].panels[0].mode(), expected);
        }
    }

    #[test]
    fn no_rules_loaded_is_not_all_clear_and_rule_warnings_are_notices() {
        use crate::app::NoticeKind;
        let mut app = app_with_things();
        app.update(Message::Rules {
            count: 0,
            warnings: Vec::new(),
        });
        let text = screen(&app);
        assert!(text.contains("no rules loaded") && !text.contains("all clear"));
        app.update(Message::Rules {
            count: 1,
            warnings: vec![
                "rule `x`: the TD has no property `presure` (did you mean `pressure`?)".into(),
            ],
        });
        assert!(screen(&app).contains("all clear"));
        let lines = render(&app, 160, 48);
        assert!(status_row(&lines).contains("WARNING      rule `x`"));
        assert_eq!(app.notices[0].kind, NoticeKind::Warning);
    }

    #[test]
    fn long_status_notices_wrap_between_words() {
        assert_eq!(split_row("abc def ghi", 6, true), ("abc ", "def ghi"));
        assert_eq!(split_row("abc def ghi", 6, false), ("abc de", "f ghi"));
        assert_eq!(split_row("abcdefghi", 4, true), ("abcd", "efghi"));
        assert_eq!(split_row("ab", 4, true), ("ab", ""));
        assert_eq!(split_row("é é é", 3, true), ("é ", "é é"));
        assert_eq!(split_row("", 0, true), ("", ""));
    }

    #[test]
    fn numbers_read_the_same_wherever_they_are_drawn() {
        for (value, text) in [
            (json!(1536.0), "1536 ppm"),
            (json!(1536), "1536 ppm"),
            (json!(4.20), "4.2 ppm"),
            (json!(-0.0), "0 ppm"),
            (json!(1_000_000_000u64), "1.00e9 ppm"),
            (json!(1e9), "1.00e9 ppm"),
            (json!(u64::MAX), "1.84e19 ppm"),
        ] {
            assert_eq!(show(&value, Some("ppm")), text, "{value}");
        }
        // The same value as a panel value, in a chart title and in an alert line.
        let mut app = pump_app();
        app.update(update("pump-1", "flow", json!(41.0), t(599)));
        app.update(press(KeyCode::Tab));
        app.update(press(KeyCode::Down));
        let chart = screen(&app);
        assert!(chart.contains("[chart auto] 41 L/min"), "{chart}");
        app.update(press(KeyCode::Char('m')));
        let value = screen(&app);
        assert!(
            value.contains("  41 L/min  ") && !value.contains("41.0"),
            "{value}"
        );
    }
}
