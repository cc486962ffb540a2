//! Group 3: heap bytes per open, idle SSE stream.
//!
//! A child process (this binary again, with `BENCHES_IDLE_SERVER=1`) runs the loopback server,
//! so its allocations are not counted. The parent opens 1,000 streams to `/idle`, waits for
//! each one's first event (`data: open`), and reads the net heap growth from a counting global
//! allocator (`stats_alloc`). Each client is warmed up with a few streams first so that one-off
//! setup (connection pool, resolver) is not charged to the streams.
//! `cargo bench -p benches --bench sse_memory` (`SSE_IDLE_STREAMS=n`, default 1000). Prints one
//! line per client, then two references: a bare reqwest body stream held open (`reqwest-body-only`)
//! and `wot-sse` with its idle timeout off.

use std::alloc::System;
use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use eventsource_client::{Client as _, ReconnectOptions, SSE};
use futures::StreamExt as _;
use launchdarkly_sdk_transport::HyperTransport;
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

async fn collect<S, F, Fut>(n: usize, open: &mut F) -> Vec<S>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        streams.push(open().await);
    }
    streams
}

/// An `eventsource-client` stream over `transport`, once its first event arrived.
async fn eventsource_client_stream(
    url: &str,
    transport: &HyperTransport,
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
    runtime.block_on(async {
        let wot = wot_sse::SseClient::new();
        let bytes = per_stream(n, || async {
            let mut stream = wot.get(&url).connect().expect("wot-sse request");
            let first = stream.next().await;
            assert!(matches!(first, Some(Ok(_))), "wot-sse: {first:?}");
            stream
        })
        .await;
        report("wot-sse", n, bytes);

        let transport = HyperTransport::new().expect("hyper transport");
        let bytes = per_stream(n, || eventsource_client_stream(&url, &transport)).await;
        report("eventsource-client", n, bytes);

        // The same with a read timeout, the counterpart of wot-sse's default idle timeout.
        let timed = HyperTransport::builder()
            .read_timeout(wot_sse::DEFAULT_IDLE_TIMEOUT)
            .build_http()
            .expect("hyper transport");
        let bytes = per_stream(n, || eventsource_client_stream(&url, &timed)).await;
        report("eventsource-client-read-timeout", n, bytes);

        let bytes = per_stream(n, || async {
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
        report("reqwest-eventsource", n, bytes);

        // References, to tell our state from the HTTP stack's: a bare reqwest body stream
        // held open after its first chunk (what every reqwest-based client pays), and wot-sse
        // without its idle timer.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        let bytes = per_stream(n, || async {
            let response = http.get(&url).send().await.expect("reqwest request");
            let mut body = Box::pin(response.bytes_stream());
            let first = body.next().await;
            assert!(matches!(first, Some(Ok(_))), "reqwest: {first:?}");
            body
        })
        .await;
        report("reqwest-body-only", n, bytes);

        // Set on the client, so the requests share its settings as in the first line.
        let no_idle = wot_sse::SseClient::builder()
            .idle_timeout(None)
            .build()
            .expect("wot-sse client");
        let bytes = per_stream(n, || async {
            let mut stream = no_idle.get(&url).connect().expect("wot-sse request");
            let first = stream.next().await;
            assert!(matches!(first, Some(Ok(_))), "wot-sse: {first:?}");
            stream
        })
        .await;
        report("wot-sse-no-idle-timeout", n, bytes);
    });

    drop(child.stdin.take());
    let _ = child.wait();
}

fn report(client: &str, n: usize, bytes: f64) {
    println!("sse_memory/{client}: {bytes:.0} heap bytes per idle stream ({n} streams)");
}
