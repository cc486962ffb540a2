//! `--headless`: one JSON object per line on stdout (or appended to the `--output` file) for
//! every property update, event, alert notification and connection state change, for each
//! property or event left unwatched (`skipped`) and for each rule that does not fit the
//! Things (`rule_warning`, at start). Problems go to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use futures::{Stream, StreamExt, stream};
use serde_json::{Value, json};
use wot_events::{CloseReason, ConnectionState};

use crate::live::{Feed, LinkWatch, Live};
use crate::persist::StateError;
use crate::sanitize;

fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// The JSON line for one item; `None` for problems, which are not data.
pub(crate) fn to_json(item: &Feed) -> Option<Value> {
    Some(match item {
        Feed::Property(u) => json!({
            "type": "property",
            "thing": u.thing_id,
            "property": u.property,
            "value": u.value,
            "violation": u.schema_violation,
            "id": u.event_id,
            "time": time(u.timestamp),
        }),
        Feed::Event(r) => json!({
            "type": "event",
            "thing": r.thing_id,
            "title": r.thing_title,
            "event": r.event,
            "data": r.data,
            "id": r.event_id,
            "time": time(r.received_at),
        }),
        Feed::Alert(n) => json!({
            "type": "alert",
            "kind": n.kind.as_str(),
            "rule": n.alert.rule,
            "thing": n.alert.thing,
            "property": n.alert.property,
            "severity": n.alert.severity.as_str(),
            "state": n.alert.state.as_str(),
            "value": n.value(),
            "unit": n.unit,
            "summary": n.summary(),
            "time": time(n.at),
        }),
        Feed::Skipped(s) => json!({
            "type": "skipped",
            "thing": s.thing,
            "kind": s.kind,
            "name": s.name,
            "reason": s.reason,
        }),
        Feed::Problem(_) => return None,
    })
}

/// The JSON line for the state of one connection: `stream` is its label (`*` for the
/// connection carrying all properties of a Thing, `events` for its event subscription, or a
/// property name).
pub(crate) fn connection_json(
    thing: &str,
    stream: &str,
    state: &ConnectionState,
    at: SystemTime,
) -> Value {
    let (name, attempt, delay_ms, reason) = match state {
        ConnectionState::Connecting => ("connecting", None, None, None),
        ConnectionState::Open => ("open", None, None, None),
        ConnectionState::Reconnecting { attempt, delay } => (
            "reconnecting",
            Some(*attempt),
            Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            None,
        ),
        ConnectionState::Closed { reason } => (
            "closed",
            None,
            None,
            Some(match reason {
                CloseReason::EndedByServer => "ended by the server (204)".to_owned(),
                CloseReason::Failed(error) => sanitize::clip(&crate::live::error_chain(error), 512),
                _ => "closed".to_owned(),
            }),
        ),
        // `ConnectionState` is non-exhaustive: a state this page does not know yet.
        _ => ("unknown", None, None, None),
    };
    json!({
        "type": "connection",
        "thing": thing,
        "stream": stream,
        "state": name,
        "attempt": attempt,
        "delay_ms": delay_ms,
        "reason": reason,
        "time": time(at),
    })
}

/// A line for the current state of every connection, then one for each change. A state that
/// lasts only a moment can be passed over (the channels keep the latest state only), but the
/// latest state of each connection is always printed. A state published again without a
/// change (a polling transport saying `open` after each response) prints nothing.
pub(crate) fn connection_lines(links: Vec<LinkWatch>) -> impl Stream<Item = Value> + Send + Unpin {
    stream::select_all(links.into_iter().map(|(thing, label, state)| {
        Box::pin(stream::unfold(
            (thing, label, state, None),
            |(thing, label, mut state, mut last): (_, _, _, Option<Value>)| async move {
                loop {
                    if last.is_some() && state.changed().await.is_err() {
                        return None; // the connection is gone
                    }
                    let mut line = connection_json(
                        &thing,
                        &label,
                        &state.borrow_and_update(),
                        SystemTime::now(),
                    );
                    // The same state as the last line, but for the time: not a change.
                    let time = line.as_object_mut().and_then(|l| l.remove("time"));
                    if last.as_ref() == Some(&line) {
                        continue;
                    }
                    last = Some(line.clone());
                    if let (Some(object), Some(time)) = (line.as_object_mut(), time) {
                        object.insert("time".to_owned(), time);
                    }
                    return Some((line, (thing, label, state, last)));
                }
            },
        ))
    }))
}

/// The JSON lines of `items` (those that have one), each ending in a newline, appended to
/// `out`: what [`Printer::item`] would write for them, for writing in one call.
pub(crate) fn render(items: &[Feed], out: &mut Vec<u8>) {
    for line in items.iter().filter_map(to_json) {
        let line = line.to_string();
        out.extend_from_slice(sanitize::json_line(&line).as_bytes());
        out.push(b'\n');
    }
}

/// Where the JSON lines go: stdout, or the `--output` file.
#[derive(Clone)]
enum Sink {
    Stdout,
    File(Arc<OutputFile>),
}

/// Writes the JSON lines on stdout or to the `--output` file (and problems on stderr), for
/// `--headless` alone or beside `--web`. Each line, and each batch of lines, is written with
/// one call, so a kill never leaves half a line in the file.
#[derive(Clone)]
pub(crate) struct Printer {
    sink: Sink,
}

impl Printer {
    /// A printer to stdout.
    pub(crate) fn new() -> Self {
        Printer { sink: Sink::Stdout }
    }

    /// A printer to the `--output` file.
    pub(crate) fn to_file(file: Arc<OutputFile>) -> Self {
        Printer {
            sink: Sink::File(file),
        }
    }

    /// The `--output` file, when the lines go to one.
    pub(crate) fn file(&self) -> Option<&Arc<OutputFile>> {
        match &self.sink {
            Sink::File(file) => Some(file),
            Sink::Stdout => None,
        }
    }

    /// Writes one line, DEL and C1 characters escaped (JSON escapes the others); `false` when
    /// the reader went away (or the file cannot be written).
    pub(crate) fn line(&self, line: &Value) -> bool {
        let mut line = sanitize::json_line(&line.to_string()).into_owned();
        line.push('\n');
        self.lines(line.as_bytes())
    }

    /// Writes the line for `item`, or its problem on stderr with control characters escaped;
    /// `false` when the reader of stdout went away. With `printed` (the feed wrote its lines
    /// already, see [`crate::persist::committed`]) only problems are written.
    pub(crate) fn item(&self, item: &Feed, printed: bool) -> bool {
        match to_json(item) {
            Some(_) if printed => true,
            Some(line) => self.line(&line),
            None => {
                if let Feed::Problem(problem) = item {
                    eprintln!("{}", sanitize::text(problem));
                }
                true
            }
        }
    }

    /// At the end of a run: the error that stopped the writes to the `--output` file, if
    /// one did (a closed stdout is a normal end, a file that cannot be written is not).
    ///
    /// # Errors
    /// [`StateError::OutputIo`] with the first write error.
    pub(crate) fn written(&self) -> Result<(), StateError> {
        match &self.sink {
            Sink::File(file) => file.written(),
            Sink::Stdout => Ok(()),
        }
    }

    /// Writes `lines` (whole lines) with one call; `false` when the reader went away.
    pub(crate) fn lines(&self, lines: &[u8]) -> bool {
        match &self.sink {
            Sink::Stdout => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(lines)
                    .and_then(|()| stdout.flush())
                    .is_ok()
            }
            Sink::File(file) => file.write(lines),
        }
    }

    /// A `rule_warning` line for each rule that does not fit the Things.
    pub(crate) fn rule_warnings(&self, warnings: &[String]) -> bool {
        warnings
            .iter()
            .all(|warning| self.line(&json!({"type": "rule_warning", "text": warning})))
    }
}

/// The `--output` file, open for appending: each write goes to its end in one call.
///
/// No write is synced: a `kill -9` keeps what was handed to the kernel, a power cut may not
/// (see `persist` for how the file is made to match the state directory at start).
#[derive(Debug)]
pub(crate) struct OutputFile {
    path: PathBuf,
    file: std::fs::File,
    /// The file's absolute path, as recorded in the state directory.
    id: Vec<u8>,
    /// The first write that failed.
    failed: Mutex<Option<std::io::Error>>,
}

impl OutputFile {
    /// `file` (opened for appending) at `path`, recorded in the state directory as `id`.
    pub(crate) fn new(path: PathBuf, file: std::fs::File, id: Vec<u8>) -> Self {
        OutputFile {
            path,
            file,
            id,
            failed: Mutex::new(None),
        }
    }

    fn written(&self) -> Result<(), StateError> {
        let failed = self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match failed {
            Some(source) => Err(StateError::OutputIo {
                path: self.path.clone(),
                source,
            }),
            None => Ok(()),
        }
    }

    /// The file's absolute path, as recorded in the state directory.
    pub(crate) fn id(&self) -> &[u8] {
        &self.id
    }

    /// The file's path, as given.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length now.
    ///
    /// # Errors
    /// The file's metadata cannot be read.
    pub(crate) fn len(&self) -> std::io::Result<u64> {
        self.file.metadata().map(|m| m.len())
    }

    /// Appends `bytes` with one call; `false` (and an error logged once per failure) when
    /// the file cannot be written.
    fn write(&self, bytes: &[u8]) -> bool {
        match (&self.file).write_all(bytes) {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(path = %self.path.display(), %error, "the --output file cannot be written");
                self.failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(error);
                false
            }
        }
    }
}

/// The `restored` line: what the state directory gave back at start (`restored` is
/// [`Restored::to_json`](crate::persist::Restored::to_json)).
pub(crate) fn restored_line(restored: &Value) -> Value {
    let mut line = json!({"type": "restored"});
    if let (Some(line), Some(fields)) = (line.as_object_mut(), restored.as_object()) {
        line.extend(fields.clone());
    }
    line
}

/// Prints the live feed until it ends, `stop` completes (then its output is returned), or
/// stdout is closed. At `stop`, with a state directory, the feed stops taking items and what
/// it took is committed and printed first (for at most `persist::FLUSH_TIMEOUT`). Problems go to stderr with control characters escaped; JSON lines have
/// DEL and C1 characters escaped too (JSON escapes the others).
pub(crate) async fn run<T>(mut live: Live, stop: impl Future<Output = T>) -> Option<T> {
    let mut stop = std::pin::pin!(stop);
    let mut connections = connection_lines(std::mem::take(&mut live.links));
    let mut connections_open = true;
    let printer = live.printer.clone();
    // The history itself is not printed again (its lines were written by the run before).
    if let Some((restored, ..)) = live.restored.take()
        && !printer.line(&restored_line(&restored.to_json()))
    {
        return None;
    }
    if !printer.rule_warnings(&live.rule_warnings) {
        return None;
    }
    let halt = loop {
        let written = tokio::select! {
            item = live.feed.next() => match item {
                Some(item) => printer.item(&item, live.feed_prints),
                None => break None,
            },
            line = connections.next(), if connections_open => match line {
                Some(line) => printer.line(&line),
                None => {
                    connections_open = false;
                    continue;
                }
            },
            halt = &mut stop => {
                // The items whose batch is committed (or on its way) are printed before the
                // end: a restart resumes after them.
                let feed_prints = live.feed_prints;
                crate::persist::drain(&mut live.feed, live.stop.as_ref(), |item| {
                    printer.item(&item, feed_prints)
                })
                .await;
                break Some(halt);
            }
        };
        if !written {
            break None; // the reader went away
        }
    };
    crate::persist::flush_alerts(&live.alerts).await;
    halt
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn connection_lines_name_the_state_and_the_retry() {
        let at = SystemTime::UNIX_EPOCH;
        let line = connection_json(
            "urn:x",
            "*",
            &ConnectionState::Reconnecting {
                attempt: 2,
                delay: Duration::from_millis(750),
            },
            at,
        );
        assert_eq!(
            line,
            json!({
                "type": "connection", "thing": "urn:x", "stream": "*", "state": "reconnecting",
                "attempt": 2, "delay_ms": 750, "reason": null, "time": "1970-01-01T00:00:00.000Z",
            })
        );
        let open = connection_json("urn:x", "events", &ConnectionState::Open, at);
        assert_eq!(
            (open["state"].as_str(), &open["attempt"]),
            (Some("open"), &Value::Null)
        );
        let closed = connection_json(
            "urn:x",
            "events",
            &ConnectionState::Closed {
                reason: CloseReason::EndedByServer,
            },
            at,
        );
        assert_eq!(closed["state"], "closed");
        assert!(closed["reason"].as_str().is_some_and(|r| r.contains("204")));
    }

    /// A file that cannot be written stops the printer, and the run ends with the error
    /// naming the file (a closed stdout is a normal end).
    #[test]
    fn a_failed_write_to_the_output_file_is_reported_with_its_path() {
        let path = std::env::temp_dir().join(format!("dash-readonly-{}", std::process::id()));
        std::fs::write(&path, "").expect("written");
        // Opened for reading only: every write fails.
        let file = std::fs::File::open(&path).expect("opens");
        let printer = Printer::to_file(Arc::new(OutputFile::new(path.clone(), file, Vec::new())));
        assert!(printer.written().is_ok());
        assert!(!printer.line(&json!({"type": "x"})));
        let error = printer.written().expect_err("the write failed");
        assert!(
            matches!(&error, StateError::OutputIo { path: p, .. } if *p == path),
            "{error:?}"
        );
        assert!(error.to_string().contains("--output"), "{error}");
        assert!(Printer::new().written().is_ok());
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_state_published_again_prints_no_line() {
        use futures::StreamExt;
        let (tx, rx) = tokio::sync::watch::channel(ConnectionState::Connecting);
        let mut lines = connection_lines(vec![("urn:x".into(), "*".into(), rx)]);
        let mut next_state = async || {
            let line = tokio::time::timeout(Duration::from_millis(200), lines.next()).await;
            line.ok()
                .flatten()
                .map(|l| l["state"].as_str().unwrap_or_default().to_owned())
        };
        assert_eq!(next_state().await.as_deref(), Some("connecting"));
        // A long-poll transport says `open` after every response.
        for _ in 0..3 {
            tx.send_replace(ConnectionState::Open);
        }
        assert_eq!(next_state().await.as_deref(), Some("open"));
        tx.send_replace(ConnectionState::Open);
        assert_eq!(next_state().await, None, "open again is no change");
        let reconnecting = |attempt| ConnectionState::Reconnecting {
            attempt,
            delay: Duration::from_millis(500),
        };
        tx.send_replace(reconnecting(1));
        assert_eq!(next_state().await.as_deref(), Some("reconnecting"));
        tx.send_replace(reconnecting(2));
        assert_eq!(
            next_state().await.as_deref(),
            Some("reconnecting"),
            "a new attempt"
        );
        tx.send_replace(ConnectionState::Open);
        assert_eq!(next_state().await.as_deref(), Some("open"));
        drop(tx);
        assert_eq!(next_state().await, None);
    }
}
