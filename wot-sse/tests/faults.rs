//! Fault injection: a TCP proxy on 127.0.0.1 between the client and a small SSE server.
//!
//! The server numbers its events 1, 2, 3, … (`id: N`) and, in replay mode, starts each response
//! after the `Last-Event-ID` the client sends. The proxy applies one fault per connection, in
//! order: it cuts the connection in the middle of a line or of an event, answers 500 or 503
//! with `Retry-After` itself, accepts and sends nothing, stalls after some bytes, delays every
//! chunk, or refuses connections for a while. Everything runs on tokio's paused clock, so the
//! backoff waits and idle timeouts take no real time.
//!
//! With resume the consumer must see every event exactly once and in order; without replay
//! the lost events must show as a gap next to the error for the broken connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use wot_sse::{ConnectionState, Error, Event, EventStream, ReconnectPolicy, SseClient};

/// Aborts a spawned task when the test drops it, so no server outlives its test.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The response head of the server: a chunked stream, as real servers send it.
const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

/// The text of event `n`: two data lines, so a cut can fall between the lines of one event.
fn event_text(n: u64) -> String {
    format!("id: {n}\nevent: tick\ndata: {{\"seq\":{n}}}\ndata: line two of {n}\n\n")
}

fn expected_data(n: u64) -> String {
    format!("{{\"seq\":{n}}}\nline two of {n}")
}

/// Reads a request head (up to its blank line) and returns its `Last-Event-ID`, if any.
async fn read_head(socket: &mut TcpStream) -> Option<Option<String>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    Some(text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("last-event-id")
            .then(|| value.trim().to_owned())
    }))
}

#[derive(Clone, Copy, PartialEq)]
enum Replay {
    /// Start after the `Last-Event-ID` the client sends.
    FromLastEventId,
    /// A live feed: the next event is whatever comes next, whoever missed the last ones.
    Live,
}

/// The SSE server.
struct Origin {
    addr: SocketAddr,
    /// The `Last-Event-ID` of every request that reached the server, in order.
    seen: Arc<Mutex<Vec<Option<String>>>>,
    _task: AbortOnDrop,
}

async fn start_origin(total: u64, replay: Replay) -> Origin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let next_live = Arc::new(AtomicU64::new(1));
    let task = {
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let next_live = next_live.clone();
                tokio::spawn(async move {
                    serve_events(socket, total, replay, &seen, &next_live).await;
                });
            }
        })
    };
    Origin {
        addr,
        seen,
        _task: AbortOnDrop(task),
    }
}

async fn serve_events(
    mut socket: TcpStream,
    total: u64,
    replay: Replay,
    seen: &Mutex<Vec<Option<String>>>,
    next_live: &AtomicU64,
) {
    let Some(last_event_id) = read_head(&mut socket).await else {
        return;
    };
    seen.lock().unwrap().push(last_event_id.clone());
    let first = match replay {
        Replay::FromLastEventId => last_event_id
            .and_then(|id| id.parse::<u64>().ok())
            .map_or(1, |id| id + 1),
        Replay::Live => next_live.load(Ordering::SeqCst),
    };
    if socket.write_all(HEAD).await.is_err() {
        return;
    }
    for n in first..=total {
        let text = event_text(n);
        let frame = format!("{:x}\r\n{text}\r\n", text.len());
        if socket.write_all(frame.as_bytes()).await.is_err() {
            return;
        }
        next_live.fetch_max(n + 1, Ordering::SeqCst);
        sleep(Duration::from_millis(10)).await;
    }
    // All sent: keep the stream open until the client goes away.
    let mut buf = [0u8; 256];
    while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// What the proxy does to one connection.
#[derive(Clone, Debug)]
enum Fault {
    /// Forward everything.
    Pass,
    /// Forward up to the end of the first occurrence of these bytes, then close.
    CutAfter(&'static str),
    /// Forward up to the end of these bytes, then forward nothing more (keep the socket open).
    StallAfter(&'static str),
    /// Hold every chunk from the server this long before forwarding it.
    Delay(Duration),
    /// Answer with this status (and `Retry-After` value) without asking the server.
    Status(u16, Option<&'static str>),
    /// Read the request, answer nothing, keep the socket open.
    Silent,
    /// Close this connection at once and refuse all connections for this long.
    Refuse(Duration),
}

struct Proxy {
    addr: SocketAddr,
    /// When each connection was accepted, with the fault applied to it.
    accepted: Arc<Mutex<Vec<(Instant, Fault)>>>,
    _task: AbortOnDrop,
}

async fn start_proxy(upstream: SocketAddr, script: Vec<Fault>) -> Proxy {
    let mut listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let mut conns = Vec::new();
            for index in 0.. {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let fault = script.get(index).cloned().unwrap_or(Fault::Pass);
                accepted
                    .lock()
                    .unwrap()
                    .push((Instant::now(), fault.clone()));
                if let Fault::Refuse(period) = fault {
                    drop(client);
                    drop(listener);
                    sleep(period).await;
                    listener = rebind(addr);
                    continue;
                }
                conns.push(AbortOnDrop(tokio::spawn(relay(client, upstream, fault))));
            }
        })
    };
    Proxy {
        addr,
        accepted,
        _task: AbortOnDrop(task),
    }
}

/// Listens again on the same address after a refusal period.
fn rebind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(64).unwrap()
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, fault: Fault) {
    match fault {
        Fault::Status(code, retry_after) => {
            if read_head(&mut client).await.is_none() {
                return;
            }
            let retry = retry_after.map_or(String::new(), |v| format!("retry-after: {v}\r\n"));
            let response = format!(
                "HTTP/1.1 {code} Fault\r\n{retry}content-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = client.write_all(response.as_bytes()).await;
            let _ = client.shutdown().await;
            return;
        }
        Fault::Silent => {
            let _ = read_head(&mut client).await;
            let mut buf = [0u8; 256];
            while matches!(client.read(&mut buf).await, Ok(n) if n > 0) {}
            return;
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut requests = AbortOnDrop(tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    }));
    let mut sent = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match server_read.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let limit = match &fault {
            Fault::CutAfter(pattern) | Fault::StallAfter(pattern) => {
                let before = sent.len();
                sent.extend_from_slice(chunk);
                find(&sent, pattern.as_bytes()).map(|end| end.saturating_sub(before).min(n))
            }
            Fault::Delay(delay) => {
                sleep(*delay).await;
                None
            }
            _ => None,
        };
        let forward = &chunk[..limit.unwrap_or(n)];
        if client_write.write_all(forward).await.is_err() {
            return;
        }
        if limit.is_some() {
            if let Fault::StallAfter(_) = fault {
                // Keep both sockets open and silent until the client gives up.
                let _ = (&mut requests.0).await;
            }
            return;
        }
    }
}

/// The end offset of the first occurrence of `pattern` in `haystack`.
fn find(haystack: &[u8], pattern: &[u8]) -> Option<usize> {
    haystack
        .windows(pattern.len())
        .position(|w| w == pattern)
        .map(|start| start + pattern.len())
}

fn client(idle: Duration, max_attempts: Option<u32>) -> SseClient {
    SseClient::builder()
        .idle_timeout(idle)
        .reconnect(
            ReconnectPolicy::new()
                .initial_delay(Duration::from_secs(1))
                .max_attempts(max_attempts)
                .seed(7),
        )
        .build()
        .unwrap()
}

fn connect(client: &SseClient, proxy: &Proxy) -> EventStream {
    client
        .get(format!("http://{}/events", proxy.addr))
        .connect()
        .unwrap()
}

/// Everything the stream yielded, in order.
#[derive(Debug)]
enum Seen {
    Event(Event),
    Error(Error),
}

/// Reads until `events` events arrived (or the stream ended), within ten minutes of paused time.
async fn read_events(stream: &mut EventStream, events: usize) -> Vec<Seen> {
    let mut out = Vec::new();
    let mut count = 0;
    let reading = async {
        while count < events {
            match stream.next().await {
                Some(Ok(event)) => {
                    count += 1;
                    out.push(Seen::Event(event));
                }
                Some(Err(error)) => out.push(Seen::Error(error)),
                None => break,
            }
        }
    };
    timeout(Duration::from_secs(600), reading)
        .await
        .expect("the stream stalled for ten minutes of paused time");
    out
}

fn ids(seen: &[Seen]) -> Vec<u64> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Event(event) => Some(event.id().parse().unwrap()),
            Seen::Error(_) => None,
        })
        .collect()
}

fn errors(seen: &[Seen]) -> Vec<&Error> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Error(error) => Some(error),
            Seen::Event(_) => None,
        })
        .collect()
}

/// Every event is whole: its data is exactly what the server sent for its id.
fn assert_whole(seen: &[Seen]) {
    for s in seen {
        if let Seen::Event(event) = s {
            let n: u64 = event.id().parse().unwrap();
            assert_eq!(event.event_type(), "tick");
            assert_eq!(event.data(), expected_data(n), "partial or mixed event");
        }
    }
}

/// After the last event, no further event arrives (errors from the quiet server are fine).
async fn assert_no_more_events(stream: &mut EventStream, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) | Ok(None) => return,
            Ok(Some(Ok(event))) => panic!("an extra event after the last one: {event:?}"),
            Ok(Some(Err(_))) => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn with_resume_every_event_arrives_once_and_in_order_through_every_fault() {
    const TOTAL: u64 = 40;
    let origin = start_origin(TOTAL, Replay::FromLastEventId).await;
    let proxy = start_proxy(
        origin.addr,
        vec![
            // In the middle of the `event:` line of event 3.
            Fault::CutAfter("id: 3\nev"),
            // Between the two data lines of event 7: the first half of the event is sent.
            Fault::CutAfter("data: {\"seq\":7}\n"),
            Fault::Status(500, None),
            Fault::Status(503, Some("3")),
            Fault::Silent,
            Fault::Refuse(Duration::from_secs(5)),
            // Inside the chunk of event 15, then nothing: the idle timeout must notice.
            Fault::StallAfter("id: 15\nevent: ti"),
            Fault::Delay(Duration::from_secs(2)),
            Fault::CutAfter("data: line two of 30\n"),
        ],
    )
    .await;
    let client = client(Duration::from_secs(10), None);
    let mut stream = connect(&client, &proxy);

    let seen = read_events(&mut stream, TOTAL as usize).await;
    assert_eq!(ids(&seen), (1..=TOTAL).collect::<Vec<_>>());
    assert_whole(&seen);
    assert_no_more_events(&mut stream, Duration::from_secs(60)).await;

    // Each fault was reported as a recoverable error.
    let errors = errors(&seen);
    assert!(errors.iter().all(|e| !e.is_terminal()), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.is_body()),
        "no body error: {errors:?}"
    );
    let status = |code: u16| {
        errors
            .iter()
            .any(|e| e.status().map(|s| s.as_u16()) == Some(code))
    };
    assert!(status(500) && status(503), "{errors:?}");
    assert!(errors.iter().any(|e| e.is_timeout()), "{errors:?}");
    assert!(errors.iter().any(|e| e.is_connect()), "{errors:?}");

    // Every request after the first resumed from the last delivered event.
    let seen_ids = origin.seen.lock().unwrap().clone();
    assert_eq!(seen_ids.first(), Some(&None), "{seen_ids:?}");
    let resumed: Vec<u64> = seen_ids[1..]
        .iter()
        .map(|id| {
            id.as_deref()
                .expect("a reconnect without Last-Event-ID")
                .parse()
                .unwrap()
        })
        .collect();
    assert!(resumed.windows(2).all(|w| w[0] <= w[1]), "{resumed:?}");
    assert!(resumed.contains(&2) && resumed.contains(&6), "{resumed:?}");

    // The 503's Retry-After (3 s) was honoured before the next attempt.
    let accepted = proxy.accepted.lock().unwrap().clone();
    let at_503 = accepted
        .iter()
        .position(|(_, fault)| matches!(fault, Fault::Status(503, _)))
        .unwrap();
    let waited = accepted[at_503 + 1].0 - accepted[at_503].0;
    assert!(waited >= Duration::from_secs(3), "waited only {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn delays_below_the_idle_timeout_need_no_reconnect() {
    let origin = start_origin(20, Replay::FromLastEventId).await;
    let proxy = start_proxy(origin.addr, vec![Fault::Delay(Duration::from_secs(4))]).await;
    let client = client(Duration::from_secs(10), Some(3));
    let mut stream = connect(&client, &proxy);

    let seen = read_events(&mut stream, 20).await;
    assert_eq!(ids(&seen), (1..=20).collect::<Vec<_>>());
    assert!(errors(&seen).is_empty(), "{seen:?}");
    assert_eq!(origin.seen.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn without_replay_the_gap_is_visible_next_to_its_error() {
    let origin = start_origin(30, Replay::Live).await;
    // Cut between the data lines of event 4: its first half was on the wire.
    let proxy = start_proxy(origin.addr, vec![Fault::CutAfter("data: {\"seq\":4}\n")]).await;
    let client = client(Duration::from_secs(10), None);
    let mut stream = connect(&client, &proxy);

    let mut seen = Vec::new();
    let reading = async {
        while let Some(item) = stream.next().await {
            let last = matches!(&item, Ok(event) if event.id() == "30");
            seen.push(match item {
                Ok(event) => Seen::Event(event),
                Err(error) => Seen::Error(error),
            });
            if last {
                break;
            }
        }
    };
    timeout(Duration::from_secs(600), reading).await.unwrap();
    assert_whole(&seen);

    let got = ids(&seen);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "not in order: {got:?}");
    assert_eq!(&got[..3], &[1, 2, 3]);
    assert!(
        !got.contains(&4),
        "the half-sent event 4 must not be delivered: {got:?}"
    );
    // The jump over the lost events comes right after the error for the broken connection.
    let error_at = seen
        .iter()
        .position(|s| matches!(s, Seen::Error(_)))
        .expect("the cut was not reported");
    assert!(matches!(&seen[error_at - 1], Seen::Event(e) if e.id() == "3"));
    assert!(matches!(&seen[error_at + 1], Seen::Event(e) if e.id().parse::<u64>().unwrap() > 4));
    // The client did ask to resume; the server could not.
    let asked = origin.seen.lock().unwrap().clone();
    assert_eq!(asked, vec![None, Some("3".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn refusing_longer_than_the_attempt_limit_ends_the_stream_with_a_clear_error() {
    let origin = start_origin(5, Replay::FromLastEventId).await;
    let proxy = start_proxy(origin.addr, vec![Fault::Refuse(Duration::from_secs(3600))]).await;
    let client = client(Duration::from_secs(10), Some(3));
    let mut stream = connect(&client, &proxy);
    let state = stream.state();

    let seen = read_events(&mut stream, 1).await;
    assert!(ids(&seen).is_empty());
    let last = errors(&seen).last().copied().cloned().expect("no error");
    assert!(last.is_retries_exhausted() && last.is_terminal(), "{last}");
    assert!(last.to_string().contains('3'), "{last}");
    assert!(stream.next().await.is_none());
    assert!(matches!(&*state.borrow(), ConnectionState::Closed { .. }));
    assert_eq!(origin.seen.lock().unwrap().len(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stall_before_the_headers_is_an_idle_timeout_and_the_stream_resumes() {
    let origin = start_origin(3, Replay::FromLastEventId).await;
    let proxy = start_proxy(origin.addr, vec![Fault::Silent, Fault::Silent]).await;
    let client = client(Duration::from_secs(10), Some(5));
    let mut stream = connect(&client, &proxy);
    let started = Instant::now();

    let seen = read_events(&mut stream, 3).await;
    assert_eq!(ids(&seen), vec![1, 2, 3]);
    let errors = errors(&seen);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e.is_timeout()), "{errors:?}");
    // Two idle timeouts of 10 s passed on the paused clock.
    assert!(started.elapsed() >= Duration::from_secs(20));
}
