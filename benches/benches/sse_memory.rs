//! Group 3: heap bytes per open, idle SSE stream.
//!
//! A child process (this binary again, with `BENCHES_IDLE_SERVER=1`) runs the loopback server,
//! so its allocations are not counted. The parent opens 1,000 streams to `/idle`, waits for
//! each one's first event (`data: open`), polls it once more so that it waits as an idle stream
//! does, and reads the net heap growth from a counting global allocator (`stats_alloc`). Each
//! client is warmed up with a few streams first so that one-off setup (connection pool,
//! resolver) is not charged to the streams.
//! `cargo bench -p benches --bench sse_memory` (`SSE_IDLE_STREAMS=n`, default 1000). Prints one
//! line per client and variant (`eventsource-client` also with an HTTPS-capable transport and
//! with a read timeout), then two references: a bare reqwest body stream held open
//! (`reqwest-body-only`) and `wot-sse` with its idle timeout off. Arguments that do not start
//! with `-` pick the lines to run by substring, as criterion's filters do
//! (`cargo bench --bench sse_memory -- wot-sse`), or by whole name with `--exact`.

use std::alloc::System;
use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use eventsource_client::{Client as _, ReconnectOptions, SSE};
use futures::{FutureExt as _, Stream, StreamExt as _};
use launchdarkly_sdk_transport::{HttpTransport, HyperTransport};
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const WARM_UP: usize = 10;

/// Bytes currently allocated on the heap by this process.
fn live_heap() -> i128 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i128 - s.bytes_deallocated as i128 + s.bytes_reallocated as i128
}

/// Opens `n` streams with `open` (each resolves once its stream delivered the first event) and
/// returns the heap growth per stream while all are held open.
async fn per_stream<S, F, Fut>(n: usize, mut open: F) -> f64
where
    S: Stream + Unpin,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    drop(collect(WARM_UP, &mut open).await);
    let before = live_heap();
    let streams = collect(n, &mut open).await;
    let after = live_heap();
    drop(streams);
    (after - before) as f64 / n as f64
}

/// Opens `n` streams and polls each once more after its first event, as a task awaiting the
/// next one does: that is the idle state (the server sends nothing more).
async fn collect<S, F, Fut>(n: usize, open: &mut F) -> Vec<S>
where
    S: Stream + Unpin,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = open().await;
        assert!(
            stream.next().now_or_never().is_none(),
            "the idle stream went on"
        );
        streams.push(stream);
    }
    streams
}

/// A `wot-sse` stream from `client`, once its first event arrived.
async fn wot_sse_stream(url: &str, client: &wot_sse::SseClient) -> wot_sse::EventStream {
    let mut stream = client.get(url).connect().expect("wot-sse request");
    let first = stream.next().await;
    assert!(matches!(first, Some(Ok(_))), "wot-sse: {first:?}");
    stream
}

/// An `eventsource-client` stream over `transport`, once its first event arrived.
async fn eventsource_client_stream<T: HttpTransport + Clone>(
    url: &str,
    transport: &T,
) -> eventsource_client::BoxStream<eventsource_client::Result<SSE>> {
    let client = eventsource_client::ClientBuilder::for_url(url)
        .expect("URL")
        .reconnect(ReconnectOptions::reconnect(false).build())
        .build_with_transport(transport.clone());
    let mut stream = client.stream();
    loop {
        match stream.next().await {
            Some(Ok(SSE::Event(_))) => break,
            Some(Ok(_)) => {}
            other => panic!("eventsource-client: {other:?}"),
        }
    }
    stream
}

fn main() {
    if std::env::var_os("BENCHES_IDLE_SERVER").is_some() {
        let server = benches::server::Server::start(&[]);
        println!("{}", server.url("idle"));
        // Serve until the parent closes our stdin.
        let _ = std::io::stdin().read_line(&mut String::new());
        return;
    }
    let n: usize = std::env::var("SSE_IDLE_STREAMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);

    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env("BENCHES_IDLE_SERVER", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server process");
    let mut url = String::new();
    BufReader::new(child.stdout.take().expect("child stdout"))
        .read_line(&mut url)
        .expect("server URL");
    let url = url.trim().to_owned();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let lines = Lines {
        n,
        filters: std::env::args()
            .skip(1)
            .filter(|arg| !arg.starts_with('-'))
            .collect(),
        exact: std::env::args().any(|arg| arg == "--exact"),
    };
    runtime.block_on(async {
        let wot = wot_sse::SseClient::new();
        lines.run("wot-sse", || wot_sse_stream(&url, &wot)).await;

        let transport = benches::drivers::eventsource_client_transport();
        lines
            .run("eventsource-client", || {
                eventsource_client_stream(&url, &transport)
            })
            .await;

        // The same able to speak HTTPS, as wot-sse's default client is (the server is still
        // plain HTTP): what a user watching Things over TLS would build.
        let https = HyperTransport::new_https().expect("https transport");
        lines
            .run("eventsource-client-https", || {
                eventsource_client_stream(&url, &https)
            })
            .await;

        // The same with a read timeout, the counterpart of wot-sse's default idle timeout.
        let timed = HyperTransport::builder()
            .read_timeout(wot_sse::DEFAULT_IDLE_TIMEOUT)
            .build_http()
            .expect("hyper transport");
        lines
            .run("eventsource-client-read-timeout", || {
                eventsource_client_stream(&url, &timed)
            })
            .await;

        lines
            .run("reqwest-eventsource", || async {
                let mut source = reqwest_eventsource::EventSource::get(&url);
                loop {
                    match source.next().await {
                        Some(Ok(reqwest_eventsource::Event::Message(_))) => break,
                        Some(Ok(_)) => {}
                        other => panic!("reqwest-eventsource: {other:?}"),
                    }
                }
                source
            })
            .await;

        // References, to tell our state from the HTTP stack's: a bare reqwest body stream
        // held open after its first chunk (what every reqwest-based client pays), and wot-sse
        // without its idle timer.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        lines
            .run("reqwest-body-only", || async {
                let response = http.get(&url).send().await.expect("reqwest request");
                let mut body = Box::pin(response.bytes_stream());
                let first = body.next().await;
                assert!(matches!(first, Some(Ok(_))), "reqwest: {first:?}");
                body
            })
            .await;

        // Set on the client, so the requests share its settings as in the first line.
        let no_idle = wot_sse::SseClient::builder()
            .idle_timeout(None)
            .build()
            .expect("wot-sse client");
        lines
            .run("wot-sse-no-idle-timeout", || wot_sse_stream(&url, &no_idle))
            .await;
    });

    drop(child.stdin.take());
    let _ = child.wait();
}

/// The lines to print: how many streams each opens, and the command line's filters.
struct Lines {
    n: usize,
    filters: Vec<String>,
    exact: bool,
}

impl Lines {
    /// Measures and prints one line, if the filters select it.
    async fn run<S, F, Fut>(&self, client: &str, open: F)
    where
        S: Stream + Unpin,
        F: FnMut() -> Fut,
        Fut: Future<Output = S>,
    {
        let selects = |filter: &String| match self.exact {
            true => client == filter,
            false => client.contains(filter.as_str()),
        };
        if !self.filters.is_empty() && !self.filters.iter().any(selects) {
            return;
        }
        let n = self.n;
        let bytes = per_stream(n, open).await;
        println!("sse_memory/{client}: {bytes:.0} heap bytes per idle stream ({n} streams)");
    }
}
