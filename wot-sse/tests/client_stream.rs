//! The client against a scripted raw-TCP SSE server on 127.0.0.1, on tokio's paused clock:
//! chunk timing, idle timeout, heartbeats, the backoff schedule, control and cleanup.

// The HTTP client is the `client` feature; without it only the parser tests run.
#![cfg(feature = "client")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use wot_sse::{
    CloseReason, ConnectionState, Error, Event, EventStream, Message, ReconnectPolicy, SseClient,
};
use wot_testkit::{AbortOnDrop, read_request_head, serve_connections};

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
const NO_CONTENT: &str = "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";

/// One step of what the server does on a connection.
#[derive(Clone)]
enum Step {
    Send(&'static str),
    Wait(Duration),
    /// Keep the connection open until the client closes it.
    Hold,
}
use Step::{Hold, Send, Wait};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A server that plays one script per connection, in order, then answers 204.
struct Server {
    addr: SocketAddr,
    /// The request head of each connection.
    requests: Arc<Mutex<Vec<String>>>,
    /// How many held connections the client closed.
    closed_by_client: Arc<AtomicUsize>,
    /// Accepting and serving stop when the server is dropped.
    _task: AbortOnDrop,
}

impl Server {
    async fn start(scripts: Vec<Vec<Step>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let closed_by_client = Arc::new(AtomicUsize::new(0));
        let (log, closed) = (requests.clone(), closed_by_client.clone());
        let mut scripts = scripts.into_iter();
        let task = serve_connections(listener, move |_, socket| {
            let script = scripts.next().unwrap_or_else(|| vec![Send(NO_CONTENT)]);
            serve(socket, script, log.clone(), closed.clone())
        });
        Self {
            addr,
            requests,
            closed_by_client,
            _task: task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    fn last_event_ids(&self) -> Vec<Option<String>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|head| {
                head.lines()
                    .find_map(|l| l.strip_prefix("last-event-id: "))
                    .map(str::to_owned)
            })
            .collect()
    }
}

async fn serve(
    mut socket: TcpStream,
    script: Vec<Step>,
    log: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicUsize>,
) {
    let Some(head) = read_request_head(&mut socket).await else {
        return;
    };
    log.lock().unwrap().push(head.as_str().to_lowercase());
    let mut buf = [0u8; 1024];
    for step in script {
        match step {
            Send(text) => {
                if socket.write_all(text.as_bytes()).await.is_err() {
                    return;
                }
            }
            Wait(duration) => tokio::time::sleep(duration).await,
            Hold => {
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

fn client(idle: Option<Duration>) -> SseClient {
    SseClient::builder()
        .idle_timeout(idle)
        .reconnect(ReconnectPolicy::new().jitter(0.0).max_attempts(None))
        .build()
        .unwrap()
}

async fn next(stream: &mut EventStream) -> Option<Result<Event, Error>> {
    tokio::time::timeout(Duration::from_secs(600), stream.next())
        .await
        .expect("the stream answered within 600 s of virtual time")
}

async fn next_event(stream: &mut EventStream) -> Event {
    match next(stream).await {
        Some(Ok(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Lets the other tasks (server, client connections) run without advancing the clock.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_event_split_over_time_arrives_once_complete() {
    let server = Server::start(vec![vec![
        Send(OK),
        Send("data: hel"),
        Wait(secs(1.0)),
        Send("lo\r"),
        Wait(secs(1.0)),
        Send("\n\r"),
        Wait(secs(1.0)),
        Send("\ndata: next\n\n"),
        Hold,
    ]])
    .await;
    let started = Instant::now();
    let mut stream = client(Some(secs(45.0)))
        .get(server.url())
        .connect()
        .unwrap();
    let event = next_event(&mut stream).await;
    assert_eq!(event.data(), "hello");
    // The blank line is "\r\n" split across the last two writes: complete after 2 s.
    assert_eq!(started.elapsed().as_secs(), 2);
    assert_eq!(next_event(&mut stream).await.data(), "next");
    assert_eq!(started.elapsed().as_secs(), 3);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_reconnects_with_the_last_event_id() {
    let server = Server::start(vec![
        vec![Send(OK), Send("id: 7\ndata: a\n\n"), Hold],
        vec![Send(OK), Send("data: b\n\n"), Hold],
    ])
    .await;
    let started = Instant::now();
    let mut stream = client(Some(secs(5.0))).get(server.url()).connect().unwrap();
    assert_eq!(next_event(&mut stream).await.data(), "a");
    let error = match next(&mut stream).await {
        Some(Err(error)) => error,
        other => panic!("expected the idle timeout, got {other:?}"),
    };
    assert!(error.is_timeout() && !error.is_terminal(), "{error}");
    assert_eq!(started.elapsed().as_secs(), 5);
    let b = next_event(&mut stream).await;
    assert_eq!((b.data(), b.id()), ("b", "7"));
    // 5 s idle + 1 s backoff.
    assert_eq!(started.elapsed().as_secs(), 6);
    assert_eq!(server.last_event_ids(), vec![None, Some("7".to_owned())]);
    settle().await;
    assert_eq!(server.closed_by_client.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_comments_keep_the_stream_alive() {
    let mut script = vec![Send(OK)];
    for _ in 0..6 {
        script.push(Wait(secs(4.0)));
        script.push(Send(": heartbeat\n"));
    }
    script.push(Send("data: still here\n\n"));
    script.push(Hold);
    let server = Server::start(vec![script]).await;
    let started = Instant::now();
    let mut stream = client(Some(secs(5.0))).get(server.url()).connect().unwrap();
    let mut comments = 0;
    loop {
        let item = tokio::time::timeout(secs(600.0), stream.messages().next())
            .await
            .unwrap();
        match item {
            Some(Ok(Message::Comment(text))) => {
                assert_eq!(text, " heartbeat");
                comments += 1;
            }
            Some(Ok(Message::Event(event))) => {
                assert_eq!(event.data(), "still here");
                break;
            }
            other => panic!("no error expected with heartbeats every 4 s: {other:?}"),
        }
    }
    assert_eq!(comments, 6);
    assert_eq!(started.elapsed().as_secs(), 24);
    assert_eq!(server.requests.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn backoff_schedule_is_exponential_and_capped() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut stream = SseClient::builder()
        .idle_timeout(None)
        .reconnect(
            ReconnectPolicy::new()
                .jitter(0.0)
                .max_delay(secs(4.0))
                .max_attempts(Some(6)),
        )
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/"))
        .connect()
        .unwrap();
    let state = stream.state();
    let mut last = Instant::now();
    let mut waits = Vec::new();
    let mut announced = Vec::new();
    loop {
        let error = match next(&mut stream).await {
            Some(Err(error)) => error,
            other => panic!("expected connection errors, got {other:?}"),
        };
        waits.push(last.elapsed());
        last = Instant::now();
        if error.is_retries_exhausted() {
            break;
        }
        assert!(error.is_connect(), "{error}");
        match &*state.borrow() {
            ConnectionState::Reconnecting { attempt, delay } => announced.push((*attempt, *delay)),
            other => panic!("expected Reconnecting, got {other:?}"),
        }
    }
    let schedule = [1.0, 1.5, 2.25, 3.375, 4.0];
    assert_eq!(
        announced,
        schedule
            .iter()
            .enumerate()
            .map(|(i, s)| (u32::try_from(i + 1).unwrap(), secs(*s)))
            .collect::<Vec<_>>()
    );
    // The first attempt is immediate; each later one waits the announced delay.
    let expected_waits: Vec<Duration> = [0.0].iter().chain(&schedule).map(|s| secs(*s)).collect();
    for (got, want) in waits.iter().zip(&expected_waits) {
        assert!(
            got.abs_diff(*want) < Duration::from_millis(5),
            "{waits:?} vs {expected_waits:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_are_reproducible_with_a_seed_and_within_range() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let mut stream = SseClient::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .idle_timeout(None)
            .reconnect(ReconnectPolicy::new().seed(42).max_attempts(Some(5)))
            .connect()
            .unwrap();
        let state = stream.state();
        let mut delays = Vec::new();
        while let Some(Err(error)) = next(&mut stream).await {
            if let ConnectionState::Reconnecting { delay, .. } = &*state.borrow()
                && !error.is_retries_exhausted()
            {
                delays.push(*delay);
            }
        }
        runs.push(delays);
    }
    assert_eq!(runs[0].len(), 4);
    assert_eq!(runs[0], runs[1]);
    for (delay, full) in runs[0].iter().zip([1.0, 1.5, 2.25, 3.375]) {
        assert!(
            *delay <= secs(full) && *delay >= secs(full / 2.0),
            "{delay:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn server_retry_field_sets_the_base_delay() {
    // With the floor lowered to zero, the server's value as sent.
    let server = Server::start(vec![vec![Send(OK), Send("retry: 250\ndata: a\n\n")]]).await;
    let started = Instant::now();
    let exact = ReconnectPolicy::new()
        .jitter(0.0)
        .min_server_retry(Duration::ZERO);
    let mut stream = server_client(exact).get(server.url()).connect().unwrap();
    let state = stream.state();
    assert_eq!(next_event(&mut stream).await.data(), "a");
    // The body ends; the client waits the server's 250 ms and reconnects (then gets 204).
    assert!(next(&mut stream).await.is_none());
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(
        *state.borrow(),
        ConnectionState::Closed {
            reason: CloseReason::NoContent
        }
    );

    // By default the server cannot ask for less than 1 s, nor for more than 5 minutes.
    for (retry, waited) in [("250", 1), ("3000", 3), ("86400000", 300)] {
        let body = format!("retry: {retry}\ndata: a\n\n");
        let server = Server::start(vec![vec![Send(OK), Send(body.leak())]]).await;
        let started = Instant::now();
        let mut stream = client(None).get(server.url()).connect().unwrap();
        assert_eq!(next_event(&mut stream).await.data(), "a");
        assert!(next(&mut stream).await.is_none());
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(waited),
            "retry: {retry}"
        );
    }
}

fn server_client(policy: ReconnectPolicy) -> SseClient {
    SseClient::builder().reconnect(policy).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn no_partial_event_or_uncommitted_id_crosses_a_reconnect() {
    let server = Server::start(vec![
        vec![Send(OK), Send("data: a\n\nid: 9\ndata: part")],
        vec![Send(OK), Send("al\n\ndata: b\n\n")],
    ])
    .await;
    let mut stream = client(None).get(server.url()).connect().unwrap();
    let mut got = Vec::new();
    while let Some(item) = next(&mut stream).await {
        let event = item.unwrap();
        got.push((event.data().to_owned(), event.id().to_owned()));
    }
    assert_eq!(
        got,
        vec![("a".into(), "".into()), ("b".into(), "".into())],
        "the cut-off block is dropped; \"al\" starts a fresh line"
    );
    assert_eq!(server.last_event_ids(), vec![None, None, None]);
}

#[tokio::test(start_paused = true)]
async fn reconnect_now_keeps_the_last_event_id_and_is_not_an_error() {
    let server = Server::start(vec![
        vec![Send(OK), Send("id: 1\ndata: a\n\n"), Hold],
        vec![Send(OK), Send("data: b\n\n"), Hold],
    ])
    .await;
    let mut stream = client(Some(secs(45.0)))
        .get(server.url())
        .connect()
        .unwrap();
    let handle = stream.handle();
    let started = Instant::now();
    assert_eq!(next_event(&mut stream).await.data(), "a");
    handle.reconnect_now();
    let b = next_event(&mut stream).await;
    assert_eq!((b.data(), b.id()), ("b", "1"));
    assert_eq!(started.elapsed(), Duration::ZERO, "no backoff wait");
    assert_eq!(server.last_event_ids(), vec![None, Some("1".to_owned())]);
    settle().await;
    assert_eq!(server.closed_by_client.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn close_and_drop_end_the_connection() {
    let server = Server::start(vec![
        vec![Send(OK), Send("data: a\n\n"), Hold],
        vec![Send(OK), Send("data: b\n\n"), Hold],
    ])
    .await;
    let mut stream = client(Some(secs(45.0)))
        .get(server.url())
        .connect()
        .unwrap();
    let state = stream.state();
    assert_eq!(next_event(&mut stream).await.data(), "a");
    stream.close();
    assert!(next(&mut stream).await.is_none());
    assert_eq!(
        *state.borrow(),
        ConnectionState::Closed {
            reason: CloseReason::Requested
        }
    );
    settle().await;
    assert_eq!(server.closed_by_client.load(Ordering::SeqCst), 1);

    let mut stream = client(Some(secs(45.0)))
        .get(server.url())
        .connect()
        .unwrap();
    let state = stream.state();
    assert_eq!(next_event(&mut stream).await.data(), "b");
    drop(stream);
    settle().await;
    assert_eq!(server.closed_by_client.load(Ordering::SeqCst), 2);
    assert_eq!(
        *state.borrow(),
        ConnectionState::Closed {
            reason: CloseReason::Requested
        }
    );
}

#[tokio::test(start_paused = true)]
async fn an_over_long_event_is_skipped_and_the_stream_goes_on() {
    let big: &'static str = Box::leak(format!("data: {}\n\n", "x".repeat(5000)).into_boxed_str());
    let server = Server::start(vec![vec![
        Send(OK),
        Send("data: small\n\n"),
        Send(big),
        Send("data: after\n\n"),
        Hold,
    ]])
    .await;
    let mut stream = client(None)
        .get(server.url())
        .max_event_size(1000)
        .connect()
        .unwrap();
    assert_eq!(next_event(&mut stream).await.data(), "small");
    match next(&mut stream).await {
        Some(Err(error)) => assert!(error.is_event_too_large() && !error.is_terminal()),
        other => panic!("expected the size error, got {other:?}"),
    }
    assert_eq!(next_event(&mut stream).await.data(), "after");
    assert_eq!(server.requests.lock().unwrap().len(), 1, "no reconnect");
}

#[tokio::test(start_paused = true)]
async fn states_follow_the_connection() {
    let server = Server::start(vec![vec![Send(OK), Send("data: a\n\n")]]).await;
    let mut stream = client(None).get(server.url()).connect().unwrap();
    let state = stream.state();
    assert_eq!(*state.borrow(), ConnectionState::Connecting);
    assert_eq!(next_event(&mut stream).await.data(), "a");
    assert_eq!(*state.borrow(), ConnectionState::Open);
    assert!(next(&mut stream).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_body_that_ends_before_any_data_counts_as_a_failed_attempt() {
    let server = Server::start(vec![vec![Send(OK)], vec![Send(OK)], vec![Send(OK)]]).await;
    let mut stream = client(None)
        .get(server.url())
        .reconnect(ReconnectPolicy::new().jitter(0.0).max_attempts(Some(3)))
        .connect()
        .unwrap();
    // Quiet ends are not reported; only giving up is.
    match next(&mut stream).await {
        Some(Err(error)) => {
            assert!(error.is_retries_exhausted(), "{error}");
            assert!(
                error.to_string().contains("ended before any data"),
                "{error}"
            );
        }
        other => panic!("expected giving up, got {other:?}"),
    }
    assert_eq!(server.requests.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_handle_wakes_a_stream_that_waits_for_data() {
    let server = Server::start(vec![
        vec![Send(OK), Send("data: a\n\n"), Hold],
        vec![Send(OK), Send("data: b\n\n"), Hold],
    ])
    .await;
    let mut stream = client(None).get(server.url()).connect().unwrap();
    let handle = stream.handle();
    let started = Instant::now();
    assert_eq!(next_event(&mut stream).await.data(), "a");
    let controller = tokio::spawn(async move {
        tokio::time::sleep(secs(2.0)).await;
        handle.reconnect_now();
        tokio::time::sleep(secs(2.0)).await;
        handle.close();
    });
    assert_eq!(next_event(&mut stream).await.data(), "b");
    assert_eq!(started.elapsed().as_secs(), 2);
    assert!(next(&mut stream).await.is_none());
    assert_eq!(started.elapsed().as_secs(), 4);
    controller.await.unwrap();
}

#[test]
fn streams_and_handles_can_move_between_threads() {
    fn assert_send<T: std::marker::Send + Unpin + 'static>() {}
    fn assert_shareable<T: std::marker::Send + Sync + Clone + 'static>() {}
    assert_send::<EventStream>();
    assert_shareable::<wot_sse::StreamHandle>();
    assert_shareable::<SseClient>();
    assert_shareable::<Error>();
    assert_shareable::<Event>();
}
