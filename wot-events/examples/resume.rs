//! Subscribes to every event of a Thing and resumes after a restart: the resume points are
//! kept in a JSON file, written after the app's output (lines appended to a log file) once a
//! second.
//!
//! ```sh
//! cargo run -p wot-events --example resume -- http://192.0.2.10/things/boiler state.json events.log
//! ```
//!
//! Stop it (Ctrl-C, or kill it) and start it again: it asks the Thing for the events after the
//! last one whose line was written, and drops those the Thing sends again (by id). Events
//! taken in the last second before a kill had no line written and come again, as they should.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use wot_events::{EventSubscriber, MemoryResumeStore, ResumePoint, StreamKey, SubscribeOptions};

type Points = Vec<(StreamKey, ResumePoint)>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(td), Some(state), Some(log)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: resume <TD URL> <state.json> <events.log>");
        std::process::exit(2);
    };
    let (state, log) = (Path::new(&state), Path::new(&log));
    let points: Points = match std::fs::read(state) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    println!("resuming {} streams", points.len());
    let store = Arc::new(MemoryResumeStore::from_points(points));
    let subscriber = EventSubscriber::builder()
        .resume_store(store.clone())
        .build();
    let thing = subscriber.fetch_thing(&td).await?;
    let mut events = subscriber.subscribe_all([&thing], SubscribeOptions::new())?;
    let mut pending = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            item = events.next() => match item {
                // The store is already at this record's id.
                Some(Ok(record)) => pending.push(serde_json::to_string(&record)?),
                Some(Err(e)) if e.is_terminal() => return Err(e.into()),
                Some(Err(e)) => eprintln!("{e}"),
                None => break,
            },
            _ = tick.tick() => write(&mut pending, &store, log, state)?,
        }
    }
    write(&mut pending, &store, log, state)?;
    Ok(())
}

/// Appends the pending lines to the log, then replaces the state file with the points (which
/// are at the last event taken: the last pending line). A crash between the two leaves the
/// old points, so those events come again and their lines are written twice; an app that must
/// not repeat one writes both in one transaction (as the `wot-store` crate does).
fn write(
    pending: &mut Vec<String>,
    store: &MemoryResumeStore,
    log: &Path,
    state: &Path,
) -> std::io::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    for line in pending.drain(..) {
        writeln!(file, "{line}")?;
    }
    file.sync_data()?;
    let tmp = state.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&store.points())?)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, state)
}
