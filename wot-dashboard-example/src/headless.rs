//! `--headless`: one JSON object per line on stdout for every property update, event and
//! alert notification. Problems go to stderr.

use std::io::Write;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::live::{Feed, Live};

fn time(at: std::time::SystemTime) -> String {
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
        Feed::Problem(_) => return None,
    })
}

/// Prints the live feed until it ends, `stop` completes, or stdout is closed.
pub(crate) async fn run(mut live: Live, stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    let stdout = std::io::stdout();
    loop {
        let item = tokio::select! {
            item = live.feed.next() => item,
            () = &mut stop => None,
        };
        let Some(item) = item else { break };
        match to_json(&item) {
            Some(line) => {
                if writeln!(stdout.lock(), "{line}").is_err() {
                    break; // the reader went away
                }
            }
            None => {
                if let Feed::Problem(problem) = item {
                    eprintln!("{problem}");
                }
            }
        }
    }
}
