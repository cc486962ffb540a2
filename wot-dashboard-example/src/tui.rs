//! The terminal shell around [`App`]: one `tokio::select!` loop over the clock, the redraw
//! throttle, terminal events and the live feed.

use std::time::{Duration, SystemTime};

use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use ratatui::DefaultTerminal;

use crate::app::{App, Command, Limits, Message, NoticeKind, ThingView};
use crate::live::{Feed, Live};
use crate::ui;

/// How often the clock, connection states and alert lists are refreshed.
const TICK: Duration = Duration::from_millis(250);
/// Shortest time between two redraws: at most 20 frames per second, however busy the feed.
const FRAME: Duration = Duration::from_millis(50);
/// Resolved alerts fetched for the "recently resolved" list.
const RESOLVED: usize = 5;

fn message(item: Feed) -> Message {
    match item {
        Feed::Property(update) => Message::Property(update),
        Feed::Event(record) => Message::Event(record),
        Feed::Alert(n) => Message::Notification(n),
        Feed::Problem(text) => Message::Notice {
            kind: NoticeKind::Problem,
            text,
        },
        Feed::Skipped(skipped) => Message::Notice {
            kind: NoticeKind::Warning,
            text: skipped.to_string(),
        },
    }
}

/// Runs the dashboard until `q`/Ctrl-C, the end of the feed, or until `stop` completes
/// (then its output is returned).
///
/// # Errors
/// Drawing to or reading from the terminal failed.
pub(crate) async fn run<T>(
    terminal: &mut DefaultTerminal,
    mut live: Live,
    things: Vec<ThingView>,
    limits: Limits,
    stop: impl Future<Output = T>,
) -> std::io::Result<Option<T>> {
    let mut app = App::with_limits(SystemTime::now(), limits);
    for view in things {
        app.update(Message::Thing(view));
    }
    app.update(Message::Rules {
        count: live.rule_count,
        warnings: live.rule_warnings.clone(),
    });
    // The history from the state directory: the timeline and the charts as they were.
    if let Some((restored, events, properties)) = live.restored.take() {
        for record in events {
            app.update(Message::Event(record));
        }
        for update in properties {
            app.update(Message::Property(update));
        }
        app.update(Message::Notice {
            kind: NoticeKind::Info,
            text: restored.text(),
        });
    }
    let mut stop = std::pin::pin!(stop);
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    let mut frame = tokio::time::interval(FRAME);
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut dirty = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                app.update(Message::Tick(SystemTime::now()));
                for (thing, label, state) in &mut live.links {
                    if state.has_changed().unwrap_or(false) || !app.links.contains_key(&(thing.clone(), label.clone())) {
                        let link = (&*state.borrow_and_update()).into();
                        app.update(Message::Link { thing: thing.clone(), label: label.clone(), link });
                    }
                }
                let history = live.alerts.history();
                let skip = history.len().saturating_sub(RESOLVED);
                app.update(Message::Alerts {
                    active: live.alerts.active_alerts(),
                    resolved: history.into_iter().skip(skip).collect(),
                });
                dirty = true;
            }
            _ = frame.tick(), if dirty => {
                terminal.draw(|f| ui::draw(f, &app))?;
                dirty = false;
            }
            key = keys.next() => match key {
                Some(Ok(Event::Key(key))) => {
                    match app.update(Message::Key(key)) {
                        Some(Command::Quit) => break,
                        Some(Command::Acknowledge { rule, thing }) => {
                            // The same text as the alert manager's own notification of it, which
                            // the state then keeps once.
                            let notice = match live.alerts.acknowledge(&rule, &thing, "dashboard", None) {
                                Ok(()) => Message::Notice {
                                    kind: NoticeKind::Acknowledged,
                                    text: app.alert_text(&rule, &thing, None),
                                },
                                Err(error) => Message::Notice {
                                    kind: NoticeKind::Problem,
                                    text: format!("could not acknowledge {}: {error}", app.alert_text(&rule, &thing, None)),
                                },
                            };
                            app.update(notice);
                        }
                        None => {}
                    }
                    dirty = true;
                }
                Some(Ok(_resize_or_other)) => dirty = true,
                Some(Err(error)) => return Err(error),
                None => break,
            },
            item = live.feed.next() => match item {
                Some(item) => {
                    app.update(message(item));
                    dirty = true;
                }
                None => break,
            },
            halt = &mut stop => {
                crate::persist::flush_alerts(&live.alerts).await;
                return Ok(Some(halt));
            }
        }
    }
    crate::persist::flush_alerts(&live.alerts).await;
    Ok(None)
}
