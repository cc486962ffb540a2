//! `sse-cat`: follows an SSE stream and prints each event as one JSON line.
//!
//! ```text
//! cargo run -p wot-sse --example sse-cat -- URL [--last-event-id ID] [--header 'K: V']...
//! ```
//!
//! Events go to stdout as `{"type": ..., "data": ..., "id": ...}`; connection state changes and
//! errors go to stderr. It reconnects as the client does and exits when the stream ends (after
//! a 204, or a terminal error: exit code 1). Set `RUST_LOG=wot_sse=debug` for the client's log.

use std::process::ExitCode;

use clap::Parser;
use futures::StreamExt;
use wot_sse::SseClient;

#[derive(Parser)]
#[command(about = "Print the events of a Server-Sent Events stream as JSON lines")]
struct Args {
    /// The event stream URL.
    url: String,
    /// Resume after this event id (sent as `Last-Event-ID`).
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// An extra request header, e.g. `--header 'Authorization: Bearer ...'`; repeatable.
    #[arg(long = "header", value_name = "K: V")]
    headers: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut request = SseClient::new().get(&args.url);
    if let Some(id) = args.last_event_id {
        request = request.last_event_id(id);
    }
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            eprintln!("sse-cat: --header wants 'Name: value', got {header:?}");
            return ExitCode::from(2);
        };
        request = request.header(name.trim(), value.trim());
    }
    let mut stream = match request.connect() {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!("sse-cat: {}", chain(&error));
            return ExitCode::from(2);
        }
    };
    let mut state = stream.state();
    eprintln!("state: {:?}", *state.borrow_and_update());
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
                    println!("{line}");
                }
                Some(Err(error)) => {
                    failed = error.is_terminal();
                    eprintln!("error: {}", chain(&error));
                }
                None => break,
            },
            Ok(()) = state.changed() => {
                eprintln!("state: {:?}", *state.borrow_and_update());
            }
        }
    }
    eprintln!("state: {:?}", *state.borrow());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The error and its causes, e.g. "connecting failed (url): ...: Connection refused".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
