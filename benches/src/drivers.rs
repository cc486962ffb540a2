//! One driver per contender. Each consumes a whole workload and returns the number of events it
//! received, so callers (and the tests) can check that nothing was lost.
//!
//! * `parse_*`: parsing alone, bytes in memory in, events out. Peers whose parser is private are
//!   driven through their public streaming API over an in-memory byte stream.
//! * `http_*`: end to end over loopback HTTP, from request to the last event.

use std::convert::Infallible;
use std::hint::black_box;

use bytes::Bytes;
use eventsource_client::{Client as _, ReconnectOptions, SSE};
use futures::{StreamExt as _, TryStreamExt as _, executor::block_on, stream};
use launchdarkly_sdk_transport::{
    ByteStream, HttpTransport, HyperTransport, Request, Response, ResponseFuture, TransportError,
};

use wot_sse::parser::{Item, Parser};

use crate::{BlankLineCounter, Chunks, Workload};

/// The floor: `memchr` over every chunk for `\n\n`, no parsing at all.
pub fn parse_floor(workload: &Workload) -> u64 {
    let mut counter = BlankLineCounter::default();
    for chunk in workload.chunks() {
        counter.feed(&chunk);
    }
    counter.count()
}

/// `wot-sse`'s sans-I/O parser: feed each chunk, pull every item, then end the body.
pub fn parse_wot_sse(workload: &Workload) -> u64 {
    let mut parser = Parser::new();
    let mut count = 0;
    let mut drain = |parser: &mut Parser| {
        while let Some(item) = parser.next_item() {
            if let Ok(Item::Event(event)) = item {
                black_box(&event);
                count += 1;
            }
        }
    };
    for chunk in workload.chunks() {
        parser.feed(chunk);
        drain(&mut parser);
    }
    parser.end_of_body();
    drain(&mut parser);
    count
}

/// `eventsource-stream` 0.2 over an in-memory stream of the workload's chunks.
pub fn parse_eventsource_stream(workload: &Workload) -> u64 {
    use eventsource_stream::Eventsource as _;
    let chunks = stream::iter(workload.chunks().map(Ok::<Bytes, Infallible>));
    block_on(chunks.eventsource().try_fold(0, |count, event| {
        black_box(&event);
        async move { Ok(count + 1) }
    }))
    .unwrap_or_else(|e| panic!("eventsource-stream failed on {}: {e}", workload.name))
}

/// `eventsource-client` 0.18 through an [`HttpTransport`] that answers with the workload's
/// chunks from memory (its parser is private, so this is the closest to parsing alone).
pub fn parse_eventsource_client(workload: &Workload) -> u64 {
    let client = eventsource_client::ClientBuilder::for_url("http://in-memory.invalid/sse")
        .expect("a valid URL")
        .reconnect(ReconnectOptions::reconnect(false).build())
        .build_with_transport(MemoryTransport {
            chunks: workload.chunks(),
        });
    block_on(count_eventsource_client(client.stream(), u64::MAX))
}

async fn count_eventsource_client(
    mut events: eventsource_client::BoxStream<eventsource_client::Result<SSE>>,
    limit: u64,
) -> u64 {
    let mut count = 0;
    while count < limit {
        let Some(item) = events.next().await else {
            break;
        };
        match item {
            Ok(SSE::Event(event)) => {
                black_box(&event);
                count += 1;
            }
            Ok(_) => {}
            // End of body (with reconnection off the stream then ends).
            Err(_) => break,
        }
    }
    count
}

/// An [`HttpTransport`] whose every response is `200 text/event-stream` with the given chunks.
#[derive(Clone)]
pub struct MemoryTransport {
    /// The body, already cut into chunks.
    pub chunks: Chunks,
}

impl HttpTransport for MemoryTransport {
    fn request(&self, _request: Request<Option<Bytes>>) -> ResponseFuture {
        let body: ByteStream = Box::pin(stream::iter(
            self.chunks.clone().map(Ok::<Bytes, TransportError>),
        ));
        let response = Response::builder()
            .status(200)
            .header("content-type", "text/event-stream")
            .body(body)
            .map_err(TransportError::new);
        Box::pin(std::future::ready(response))
    }
}

/// The floor end to end: reqwest reads the body and counts `\n\n`.
pub async fn http_floor(client: &reqwest::Client, url: &str) -> u64 {
    let response = client.get(url).send().await.expect("floor: request");
    let mut body = response.bytes_stream();
    let mut counter = BlankLineCounter::default();
    while let Some(chunk) = body.next().await {
        counter.feed(&chunk.expect("floor: body"));
    }
    counter.count()
}

/// `wot-sse`'s client until `expected` events arrived, the body ended, or an error was reported.
pub async fn http_wot_sse(client: &wot_sse::SseClient, url: &str, expected: u64) -> u64 {
    let mut events = client.get(url).connect().expect("wot-sse: request");
    let mut count = 0;
    while count < expected {
        match events.next().await {
            Some(Ok(event)) => {
                black_box(&event);
                count += 1;
            }
            Some(Err(_)) | None => break,
        }
    }
    count
}

/// `eventsource-client` 0.18 with its hyper transport, until `expected` events arrived or the
/// body ended.
/// `transport` is shared between iterations as a user's would be.
pub async fn http_eventsource_client(transport: &HyperTransport, url: &str, expected: u64) -> u64 {
    let client = eventsource_client::ClientBuilder::for_url(url)
        .expect("eventsource-client: URL")
        .reconnect(ReconnectOptions::reconnect(false).build())
        .build_with_transport(transport.clone());
    count_eventsource_client(client.stream(), expected).await
}

/// `reqwest-eventsource` 0.6 until `expected` events arrived or the stream reported an error
/// (its end of body is an error, after which it would reconnect).
pub async fn http_reqwest_eventsource(url: &str, expected: u64) -> u64 {
    use reqwest_eventsource::{Event, EventSource};
    let mut source = EventSource::get(url);
    let mut count = 0;
    while count < expected {
        match source.next().await {
            Some(Ok(Event::Message(message))) => {
                black_box(&message);
                count += 1;
            }
            Some(Ok(Event::Open)) => {}
            Some(Err(_)) | None => break,
        }
    }
    source.close();
    count
}

/// Builds `eventsource-client`'s HTTP transport (plain HTTP). Call it before building any
/// other `HyperTransport`.
///
/// It first names rustls' process-wide crypto provider, which the transport's TLS-capable
/// proxy connector needs even for plain HTTP: two providers are compiled into the benches
/// (through reqwest's features and hyper-rustls'), so rustls cannot pick one by itself.
/// reqwest names its own.
pub fn eventsource_client_transport() -> HyperTransport {
    // An error only means a provider is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    HyperTransport::new().expect("eventsource-client transport")
}

/// The end-to-end clients, built once as an application would build them (so connection
/// setup is not what is measured), and the current-thread runtime they run on.
pub struct HttpClients {
    /// Runs the clients; the server has its own runtime thread.
    pub runtime: tokio::runtime::Runtime,
    /// `wot-sse`'s client.
    pub wot: wot_sse::SseClient,
    /// `eventsource-client`'s transport.
    pub hyper: HyperTransport,
    /// The floor's plain `reqwest` client.
    pub floor: reqwest::Client,
}

impl HttpClients {
    /// Builds the runtime and the clients.
    pub fn new() -> Self {
        Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("client runtime"),
            wot: wot_sse::SseClient::new(),
            hyper: eventsource_client_transport(),
            floor: reqwest::Client::new(),
        }
    }
}

impl Default for HttpClients {
    fn default() -> Self {
        Self::new()
    }
}
