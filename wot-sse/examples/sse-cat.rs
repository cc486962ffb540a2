//! `sse-cat`: follows an SSE stream and prints each event as one JSON line.
//!
//! ```text
//! cargo run -p wot-sse --example sse-cat -- URL [--last-event-id ID] [--header 'K: V']... [--max-attempts N]
//! ```
//!
//! Events go to stdout as `{"type": ..., "data": ..., "id": ...}`; each change of the
//! connection state (`connecting`, `open`, `reconnecting`, `closed`) and each error goes to
//! stderr, an error with its causes on one line. It reconnects as the client does and exits
//! when the stream ends: status 0 after a 204 or when stdout is closed (`sse-cat URL | head`),
//! 1 after a terminal error, 2 for a bad command line. Set `RUST_LOG=wot_sse=debug` for the
//! client's log.

use std::error::Error as StdError;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use futures::StreamExt;
use wot_sse::{CloseReason, ConnectionState, ReconnectPolicy, SseClient};

#[derive(Parser)]
#[command(
    name = "sse-cat",
    version,
    about = "Print the events of a Server-Sent Events stream as JSON lines"
)]
struct Args {
    /// The event stream URL.
    url: String,
    /// Resume after this event id (sent as `Last-Event-ID`).
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// An extra request header, e.g. `--header 'Authorization: Bearer ...'`; repeatable.
    #[arg(long = "header", value_name = "K: V")]
    headers: Vec<String>,
    /// Give up after this many failed connection attempts in a row.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
}

/// A line on stderr; a closed stderr is not worth failing for.
macro_rules! note {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), $($arg)*);
    }};
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(io::stderr)
        .init();
    let args = Args::parse();
    let mut request = SseClient::new()
        .get(&args.url)
        .reconnect(ReconnectPolicy::new().max_attempts(Some(args.max_attempts)));
    if let Some(id) = args.last_event_id {
        request = request.last_event_id(id);
    }
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            note!("sse-cat: --header wants 'Name: value', got {header:?}");
            return ExitCode::from(2);
        };
        request = request.header(name.trim(), value.trim());
    }
    let mut stream = match request.connect() {
        Ok(stream) => stream,
        Err(error) => {
            note!("sse-cat: {}", chain(&error));
            return ExitCode::from(2);
        }
    };
    let mut state = stream.state();
    let mut shown = StateLine::default();
    shown.update(&state.borrow_and_update());
    let mut stdout = io::stdout().lock();
    let mut failed = false;
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(event)) => {
                    let line = serde_json::json!({
                        "type": event.event_type(),
                        "data": event.data(),
                        "id": event.id(),
                    });
                    if let Err(error) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
                        // The reader went away (`| head`): nothing left to do.
                        if error.kind() == io::ErrorKind::BrokenPipe {
                            return ExitCode::SUCCESS;
                        }
                        note!("sse-cat: writing to stdout failed: {error}");
                        return ExitCode::FAILURE;
                    }
                }
                Some(Err(error)) => {
                    failed = error.is_terminal();
                    note!("error: {}", chain(&error));
                }
                None => break,
            },
            Ok(()) = state.changed() => shown.update(&state.borrow_and_update()),
        }
    }
    shown.update(&state.borrow());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints a `state:` line when the state's text differs from the last one printed.
#[derive(Default)]
struct StateLine {
    last: Option<String>,
}

impl StateLine {
    fn update(&mut self, state: &ConnectionState) {
        let text = describe(state);
        if self.last.as_deref() != Some(text.as_str()) {
            note!("state: {text}");
            self.last = Some(text);
        }
    }
}

/// A state in words; the error of a failed stream was printed just before, so it is not
/// repeated.
fn describe(state: &ConnectionState) -> String {
    match state {
        ConnectionState::Connecting => "connecting".to_owned(),
        ConnectionState::Open => "open".to_owned(),
        ConnectionState::Reconnecting { attempt, delay } => {
            format!("reconnecting: attempt {attempt} in {delay:.1?}")
        }
        ConnectionState::Closed { reason } => match reason {
            CloseReason::NoContent => "closed: the server answered 204 No Content".to_owned(),
            CloseReason::Failed(_) => "closed: failed".to_owned(),
            _ => "closed".to_owned(),
        },
        _ => "unknown".to_owned(),
    }
}

/// The error and its causes on one line, e.g. "connecting failed: connection refused
/// (url): error sending request: ...". A cause whose text the line already holds (an error
/// may print its cause itself) is not repeated.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let more = error.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = error.source();
    }
    text
}
