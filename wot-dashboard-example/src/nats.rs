//! The fleet modes on NATS JetStream (`wot-nats`): `--collect URL` runs a
//! [`wot_nats::Collector`] instead of a front end, `--source URL` feeds the front ends from
//! the JetStream stream instead of from the Things.
//!
//! ```text
//!  Things ──► --collect (one of several) ──► JetStream stream WOT (wot.>) ──► --source ──► TUI / headless / web
//!                 │ leases, resume points
//!                 ▼
//!            KV buckets wot-leases, wot-members, wot-resume
//! ```
//!
//! A collector prints one JSON line when it has started, one per Thing it claims or lets go,
//! and one when it has stopped (see [`CollectorLine`]), on stdout. The NATS URL is shown
//! only without its user info ([`wot_nats::redact_url`]).

use std::collections::BTreeSet;
use std::io::Write;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{Stream, StreamExt};
use serde::Serialize;
use wot_events::{ConsumedThing, EventSubscriber};
use wot_nats::async_nats::jetstream::{self, consumer};
use wot_nats::{Collector, KvResumeStore, Leases, Publisher, Record, Subjects};

use crate::cli::Options;
use crate::live::{self, Feed, SetupError};

/// Why a fleet mode could not start.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// NATS refused or failed: the error names what (never the URL's user info).
    #[error("NATS ({url}): {source}")]
    Nats {
        /// The server URL without user info.
        url: String,
        /// What failed.
        source: wot_nats::Error,
    },
    /// The JetStream stream or its consumer could not be opened for `--source`.
    #[error("NATS ({url}): cannot read the stream {stream}: {reason}")]
    Source {
        /// The server URL without user info.
        url: String,
        /// The stream's name.
        stream: String,
        /// What failed.
        reason: String,
    },
    /// The Things could not be watched.
    #[error(transparent)]
    Setup(#[from] SetupError),
}

/// One line a collector prints on stdout, as JSON.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CollectorLine {
    /// Connected, the stream and buckets are ready; the first round follows.
    Started {
        /// The collector's name (its lease holder name).
        collector: String,
        /// The NATS URL without user info.
        nats: String,
        /// Things on its list (all of the fleet's; it holds a share).
        things: usize,
        /// The lease time, in milliseconds.
        lease_ttl_ms: u64,
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// This collector now holds the Thing and watches it.
    Claimed {
        /// The collector's name.
        collector: String,
        /// The Thing's id.
        thing: String,
        /// Milliseconds since the Unix epoch (after the round that claimed it).
        at_ms: u64,
    },
    /// This collector no longer holds the Thing (handed over, lease lost, watch ended, or
    /// released at the stop).
    Released {
        /// The collector's name.
        collector: String,
        /// The Thing's id.
        thing: String,
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
    },
    /// Stopped cleanly: every lease released, every resume point written.
    Stopped {
        /// The collector's name.
        collector: String,
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
    },
}

/// Now, in milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Writes `line` as one JSON line on stdout. A closed stdout is not an error of the
/// collector: the line is dropped.
fn print(line: &CollectorLine) {
    let Ok(mut text) = serde_json::to_string(line) else {
        return;
    };
    text.push('\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The default collector name: the host name and the process id (`host-1234`).
pub(crate) fn default_collector_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "collector".to_owned());
    // Bounded: a holder name has at most `MAX_HOLDER_LEN` bytes.
    let host: String = host.chars().take(64).collect();
    format!("{host}-{}", std::process::id())
}

fn nats_error(url: &str) -> impl Fn(wot_nats::Error) -> NatsError + '_ {
    move |source| NatsError::Nats {
        url: wot_nats::redact_url(url),
        source,
    }
}

/// Completes on SIGTERM (on Unix; never elsewhere or when it cannot be listened for).
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// The lines for the Things that `now` has and `before` had not (claimed) and the other way
/// round (released), releases first; `before` becomes `now`.
fn changes(
    collector: &str,
    before: &mut BTreeSet<String>,
    now: &[String],
    at_ms: u64,
) -> Vec<CollectorLine> {
    let now: BTreeSet<String> = now.iter().cloned().collect();
    let released = before
        .difference(&now)
        .map(|thing| CollectorLine::Released {
            collector: collector.to_owned(),
            thing: thing.clone(),
            at_ms,
        });
    let claimed = now.difference(before).map(|thing| CollectorLine::Claimed {
        collector: collector.to_owned(),
        thing: thing.clone(),
        at_ms,
    });
    let lines = released.chain(claimed).collect();
    *before = now;
    lines
}

/// Prints the [`changes`] from `before` to `now`.
fn report(collector: &str, before: &mut BTreeSet<String>, now: &[String]) {
    for line in changes(collector, before, now, now_ms()) {
        print(&line);
    }
}

/// `--collect URL`: shares `things` with the other collectors on NATS at `url` and publishes
/// what the ones it holds send, until `stop` completes or SIGTERM comes; then stops cleanly
/// (stops watching, writes the resume points, releases the leases). Returns what `stop`
/// gave, or `None` for SIGTERM.
///
/// # Errors
/// NATS cannot be reached, the stream or a bucket cannot be created or has other settings,
/// or the options cannot work (a bad name, lease time or partition count).
pub(crate) async fn collect<T>(
    options: &Options,
    url: &str,
    things: Vec<ConsumedThing>,
    stop: impl Future<Output = T>,
) -> Result<Option<T>, NatsError> {
    let to_error = nats_error(url);
    let client = wot_nats::connect(url, options.nats_timeout)
        .await
        .map_err(&to_error)?;
    let subjects =
        Subjects::new(wot_nats::DEFAULT_PREFIX, options.partitions).map_err(&to_error)?;
    let publisher = Publisher::builder()
        .subjects(subjects)
        .timeout(options.nats_timeout)
        .build(client.clone())
        .map_err(&to_error)?;
    publisher.ensure_stream().await.map_err(&to_error)?;
    let name = options
        .collector_name
        .clone()
        .unwrap_or_else(default_collector_name);
    let leases = Leases::builder()
        .ttl(options.lease_ttl)
        .timeout(options.nats_timeout.min(options.lease_ttl / 4))
        .open(client.clone(), name.clone())
        .await
        .map_err(&to_error)?;
    let resume = KvResumeStore::builder()
        .after_publish(true)
        .timeout(options.nats_timeout)
        .open(client)
        .await
        .map_err(&to_error)?;
    let subscriber = EventSubscriber::builder()
        .reconnect(live::reconnect_policy(options))
        .credentials(live::credentials(options, &things)?);
    let count = things.len();
    let collector = Collector::builder()
        .max_held(options.max_held)
        .build(things, subscriber, publisher, leases, resume)
        .map_err(&to_error)?;
    let mut held = collector.held();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut run = tokio::spawn(collector.run(async move {
        let _ = stop_rx.await;
    }));
    print(&CollectorLine::Started {
        collector: name.clone(),
        nats: wot_nats::redact_url(url),
        things: count,
        lease_ttl_ms: u64::try_from(options.lease_ttl.as_millis()).unwrap_or(u64::MAX),
        at_ms: now_ms(),
    });
    let mut current = BTreeSet::new();
    let mut stop = std::pin::pin!(stop);
    let mut term = std::pin::pin!(terminated());
    let halted = loop {
        tokio::select! {
            halt = &mut stop => break Some(halt),
            () = &mut term => break None,
            changed = held.changed() => {
                if changed.is_err() {
                    break None;
                }
                let now = held.borrow_and_update().clone();
                report(&name, &mut current, &now);
            }
            _ = &mut run => {
                // The run never ends before it is told to (it retries every failure).
                tracing::error!("the collector stopped by itself");
                break None;
            }
        }
    };
    let _ = stop_tx.send(());
    if !run.is_finished() {
        // The clean stop: watches stopped, points written, leases released.
        let _ = (&mut run).await;
    }
    report(&name, &mut current, &held.borrow().clone());
    print(&CollectorLine::Stopped {
        collector: name,
        at_ms: now_ms(),
    });
    Ok(halted)
}

/// The stream `--source` reads.
const SOURCE_STREAM: &str = wot_nats::DEFAULT_STREAM;

/// `--source URL`: the records of the JetStream stream at `url` as [`Feed`] items, in
/// stream order: first the last record of each subject (each property's current value,
/// each event's and connection's last), then every new one. Connection changes are left
/// out (the front ends show the links of the Things they watch themselves; with `--source`
/// there are none). A record that cannot be read becomes a [`Feed::Problem`].
///
/// # Errors
/// NATS cannot be reached, or the stream does not exist (no collector created it yet) or
/// refuses the consumer.
pub(crate) async fn source(
    options: &Options,
    url: &str,
) -> Result<Pin<Box<dyn Stream<Item = Feed> + Send>>, NatsError> {
    let client = wot_nats::connect(url, options.nats_timeout)
        .await
        .map_err(nats_error(url))?;
    let source_error = |reason: String| NatsError::Source {
        url: wot_nats::redact_url(url),
        stream: SOURCE_STREAM.to_owned(),
        reason,
    };
    let context = jetstream::new(client);
    let stream = context
        .get_stream(SOURCE_STREAM)
        .await
        .map_err(|e| source_error(e.to_string()))?;
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: format!("{}.>", wot_nats::DEFAULT_PREFIX),
            deliver_policy: consumer::DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(|e| source_error(e.to_string()))?;
    let messages = consumer
        .messages()
        .await
        .map_err(|e| source_error(e.to_string()))?;
    Ok(Box::pin(messages.filter_map(|message| async move {
        match message {
            Ok(message) => match Record::from_json(&message.payload) {
                Ok(Record::Property(update)) => Some(Feed::Property(update)),
                Ok(Record::Event(event)) => Some(Feed::Event(event)),
                Ok(_) => None,
                Err(error) => Some(Feed::Problem(format!(
                    "a record on {} was not read: {error}",
                    message.subject
                ))),
            },
            // The ordered consumer recreates itself after a gap; this says it happened.
            Err(error) => Some(Feed::Problem(format!("reading from NATS: {error}"))),
        }
    })))
}

/// Longest wait `--nats-timeout` accepts.
pub(crate) const MAX_NATS_TIMEOUT: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_tagged_json() {
        let line = CollectorLine::Claimed {
            collector: "a-1".into(),
            thing: "urn:x".into(),
            at_ms: 5,
        };
        assert_eq!(
            serde_json::to_string(&line).expect("JSON"),
            r#"{"type":"claimed","collector":"a-1","thing":"urn:x","at_ms":5}"#
        );
    }

    #[test]
    fn each_change_of_the_held_set_is_one_line() {
        let mut held = BTreeSet::new();
        let ids = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let kinds = |lines: &[CollectorLine]| {
            lines
                .iter()
                .map(|l| match l {
                    CollectorLine::Claimed { thing, .. } => format!("+{thing}"),
                    CollectorLine::Released { thing, .. } => format!("-{thing}"),
                    _ => String::new(),
                })
                .collect::<Vec<_>>()
        };
        let first = changes("c", &mut held, &ids(&["a", "b"]), 1);
        assert_eq!(kinds(&first), ["+a", "+b"]);
        assert!(changes("c", &mut held, &ids(&["a", "b"]), 2).is_empty());
        let moved = changes("c", &mut held, &ids(&["b", "c"]), 3);
        assert_eq!(kinds(&moved), ["-a", "+c"]);
        let stopped = changes("c", &mut held, &[], 4);
        assert_eq!(kinds(&stopped), ["-b", "-c"]);
        assert!(held.is_empty());
    }

    #[test]
    fn the_default_name_is_host_and_pid() {
        let name = default_collector_name();
        assert!(
            name.ends_with(&format!("-{}", std::process::id())),
            "{name}"
        );
        assert!(name.len() <= wot_nats::MAX_HOLDER_LEN);
    }
}
