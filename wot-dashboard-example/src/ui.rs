//! Drawing: a pure function of [`App`].
//!
//! ```text
//! ┌Things──────┐┌<thing> properties─────────────────────────────┐
//! │> Fridge    ││ panel  panel                                   │
//! │  Pump      ││ panel  ...  (gauge / chart / value per schema)  │
//! └────────────┘└────────────────────────────────────────────────┘
//! ┌Events (filter)─────────────────┐┌Stats─┐┌Alerts───────────────┐
//! └────────────────────────────────┘└──────┘└─────────────────────┘
//!  key help
//! ```
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
    Axis, Block, Chart, Dataset, Gauge, GraphType, List, ListItem, ListState, Paragraph,
};
use serde_json::Value;
use wot_alerts::{Alert, AlertState, Severity};

use crate::app::{App, CHART_WINDOW, DisplayMode, Focus, Input, Link, Panel};
use crate::history::json_preview;
use crate::sanitize::{clip, text as safe};

/// Most characters of a value drawn in a panel or an alert line.
const VALUE_CHARS: usize = 200;
/// Most characters of a title drawn (a Thing, a property, a unit).
const TITLE_CHARS: usize = 80;

/// Draws the whole dashboard.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let [top, bottom, help] = Layout::vertical([
        Constraint::Percentage(58),
        Constraint::Fill(1),
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
    draw_help(frame, app, help);
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

/// A value as text, numbers rounded for reading, with the unit; cut to [`VALUE_CHARS`],
/// control characters escaped.
fn show(value: &Value, unit: Option<&str>) -> String {
    let text = match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => number(f),
            _ => n.to_string(),
        },
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
    let title = vec![
        Span::raw(format!(" {} ", clip(&panel.title, TITLE_CHARS))).bold(),
        Span::raw(format!("[{}{how}] ", mode.label())).dim(),
    ];
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
    let latest = panel
        .latest()
        .map(|v| show(v, panel.unit.as_deref()))
        .unwrap_or_default();
    let window = CHART_WINDOW.as_secs_f64();
    let dataset = Dataset::default()
        .name(latest)
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(Color::Cyan))
        .data(&points);
    let chart = Chart::new(vec![dataset])
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
    let width = usize::from(timeline.width.saturating_sub(2));
    let items: Vec<ListItem<'_>> = hits
        .iter()
        .take(usize::from(timeline.height))
        .map(|r| {
            let room = width.saturating_sub(36);
            // The JSON text escapes C0 controls; `clip` escapes DEL and C1 too.
            let data = json_preview(&r.data, room.saturating_mul(4).saturating_add(4));
            let line = Line::from(vec![
                Span::raw(clock(r.received_at)).dim(),
                Span::raw(" "),
                Span::raw(format!("{:<15}", clip(app.title_of(&r.thing_id), 14))).cyan(),
                Span::raw(format!("{:<12}", clip(&r.event, 11))).bold(),
                Span::raw(clip(&data, room)),
            ]);
            ListItem::new(line)
        })
        .collect();
    let list = if items.is_empty() {
        List::new([ListItem::new("no events yet").dim()])
    } else {
        List::new(items)
    };
    frame.render_widget(list.block(block(title, editing)), timeline);

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
    let list = if items.is_empty() {
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
    let keys: &[(&str, &str)] = if app.input == Input::Filter {
        &[
            ("type", "thing:WORD event:NAME text"),
            ("Enter", "apply"),
            ("Esc", "clear"),
        ]
    } else {
        &[
            ("q", "quit"),
            ("Tab", "focus"),
            ("↑↓", "select"),
            ("m", "panel mode"),
            ("/", "filter events"),
            ("Esc", "clear filter"),
            ("a", "acknowledge alert"),
        ]
    };
    let mut spans = Vec::new();
    for (key, what) in keys {
        spans.push(Span::styled(
            format!(" {key} "),
            Style::new().fg(Color::Black).bg(Color::Gray),
        ));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    if let Some(notice) = &app.notice {
        spans.push(Span::styled(
            clip(notice, 512),
            Style::new().fg(Color::Yellow),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
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
            data,
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
        assert!(closed.contains("Cold-room fri…"), "{closed}");
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
        feed(&mut engine, 30, "pump-1", "pressure", json!(9.1));
        feed(&mut engine, 45, "fridge-1", "doorOpen", json!(true));
        feed(&mut engine, 58, "pump-1", "pressure", json!(9.3));
        let _ = engine.tick(now);
        (
            engine.active_alerts(),
            engine.history().iter().cloned().collect(),
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
        app.update(press(KeyCode::Tab));
        app.update(press(KeyCode::Tab));
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
            value,
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
            data: json!({"msg": "\u{1b}]52;c;ZXZpbA==\u{7}\u{9b}6n", "n": 1e308}),
            event_id: Some("\u{1b}[A".into()),
            received_at: t(595),
        }));
        app.update(Message::Link {
            thing: "urn:hostile\u{1b}[2J".into(),
            label: "*".into(),
            link: Link::Closed(format!("server said \u{1b}[2J{}", "!".repeat(100_000))),
        });
        app.update(Message::Notice(format!(
            "\u{1b}]0;title\u{7}{}",
            "n".repeat(1_000_000)
        )));
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
            app.notice
                .as_ref()
                .is_some_and(|n| n.chars().count() <= 512)
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
                    value: v,
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
}
